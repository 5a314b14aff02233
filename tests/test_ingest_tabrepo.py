"""The ``tabrepo`` ingest format on TabRepo's real files: what it stores, that a second ingest
adds nothing, and that a damaged file is rejected whole, naming its row and field."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from kb.datasets import reference_dataset_id
from kb.ingest import ingest

RESULTS, TASKS, CONFIGS = "lgbm_results_by_task.csv", "task_metadata.csv", "configs_lightgbm.json"


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def small_tabrepo(shared_data, tmp_path):
    """A TabRepo folder holding the real files cut to three tasks (one of each problem type)."""
    source = shared_data / "tabrepo"
    results = _read_csv(source / RESULTS)
    chosen = []
    for kind in ("binary", "multiclass", "regression"):
        chosen.append(next(r["dataset"] for r in results if r["problem_type"] == kind))
    folder = tmp_path / "tabrepo"
    folder.mkdir()
    _write_csv(folder / RESULTS, [r for r in results if r["dataset"] in chosen])
    _write_csv(folder / TASKS, [r for r in _read_csv(source / TASKS) if r["tid"] in chosen])
    shutil.copy(source / CONFIGS, folder / CONFIGS)
    return folder


def _by_name(reports):
    return {r.path.name: r for r in reports}


def test_ingests_the_shared_data_once(shared_data, kb):
    source = shared_data / "tabrepo"
    reports = _by_name(ingest(kb, source, format="tabrepo"))
    results = _read_csv(source / RESULTS)
    tasks = _read_csv(source / TASKS)
    assert reports[RESULTS].added == len(results) and not reports[RESULTS].rejected
    assert reports[TASKS].added == len(tasks)
    assert reports["automl_results_by_fold.csv"].skipped and reports[CONFIGS].skipped
    counts = kb.counts()
    assert counts["trials"] == len(results) and counts["datasets"] == len(tasks)
    assert counts["metafeatures"] > 5 * len(tasks)  # the OpenML qualities of each task
    assert kb.validate() == []

    again = _by_name(ingest(kb, source, format="tabrepo"))
    assert again[RESULTS].added == 0 and again[RESULTS].already_present == len(results)
    assert again[TASKS].added == 0
    assert kb.counts() == counts

    configs = json.loads((source / CONFIGS).read_text())
    distinct = kb.query("SELECT count(DISTINCT config_id) AS n FROM trials").column("n")[0].as_py()
    assert distinct == len(configs)
    hardware = kb.read("hardware").to_pylist()
    assert [(h["kind"], h["source"]) for h in hardware] == [("external", "tabrepo")]


def test_trials_keep_tabrepo_values_under_metakb_metrics(small_tabrepo, kb):
    ingest(kb, small_tabrepo, format="tabrepo")
    tasks = {r["tid"]: r for r in _read_csv(small_tabrepo / TASKS)}
    for row in _read_csv(small_tabrepo / RESULTS)[::40]:
        dataset_id = reference_dataset_id("openml-task", row["dataset"])
        trial = kb.query("""SELECT t.*, d.name AS dataset_name, d.task FROM trials t JOIN datasets d
                            USING (dataset_id) WHERE dataset_id = ? AND json_extract_string(details,
                            '$.tabrepo_config') = ?""", [dataset_id, row["framework"]]).to_pylist()
        assert len(trial) == 1
        trial = trial[0]
        error = float(row["metric_error"])
        assert trial["task"] == row["problem_type"]
        assert trial["dataset_name"] == tasks[row["dataset"]]["name"]
        if row["problem_type"] == "binary":  # TabRepo's error is 1 - ROC AUC
            assert (trial["metric"], trial["direction"]) == ("roc_auc", "maximize")
            assert trial["score"] == pytest.approx(1 - error)
        else:
            assert trial["direction"] == "minimize" and trial["score"] == pytest.approx(error)
        details = json.loads(trial["details"])
        assert details["time_infer_s"] == pytest.approx(float(row["time_infer_s"]))
        assert trial["train_seconds"] == pytest.approx(float(row["time_train_s"]))
        assert json.loads(trial["config"])["family"] == "lightgbm"
        assert "ag_args" not in trial["config"]


def test_a_damaged_results_row_rejects_the_file_and_adds_no_trial(small_tabrepo, kb):
    rows = _read_csv(small_tabrepo / RESULTS)
    rows[6]["metric_error"] = "n/a"
    _write_csv(small_tabrepo / RESULTS, rows)
    reports = _by_name(ingest(kb, small_tabrepo, format="tabrepo"))
    rejected = reports[RESULTS].rejected
    assert str(small_tabrepo / RESULTS) in rejected
    assert "row 7" in rejected and "field 'metric_error'" in rejected
    assert kb.counts()["trials"] == 0
    assert reports[TASKS].added == 3  # the tasks file is sound and stands on its own


@pytest.mark.parametrize("field, value, message", [
    ("framework", "LightGBM_c999", "no configuration"),
    ("dataset", "424242", "not in task_metadata.csv"),
    ("problem_type", "regression", "makes task"),
])
def test_rows_that_name_what_is_not_there_are_rejected(small_tabrepo, kb, field, value, message):
    rows = _read_csv(small_tabrepo / RESULTS)
    if rows[0]["problem_type"] == value:
        value = "binary"
    rows[0][field] = value
    _write_csv(small_tabrepo / RESULTS, rows)
    rejected = _by_name(ingest(kb, small_tabrepo, format="tabrepo"))[RESULTS].rejected
    assert "row 1" in rejected and f"field {field!r}" in rejected and message in rejected
    assert kb.counts()["trials"] == 0


def test_a_damaged_configuration_rejects_the_results_naming_the_file(small_tabrepo, kb):
    configs = json.loads((small_tabrepo / CONFIGS).read_text())
    configs["LightGBM_r5"]["hyperparameters"]["learning_rate"] = [0.1]
    (small_tabrepo / CONFIGS).write_text(json.dumps(configs))
    rejected = _by_name(ingest(kb, small_tabrepo, format="tabrepo"))[RESULTS].rejected
    assert CONFIGS in rejected and "LightGBM_r5" in rejected and "learning_rate" in rejected
    assert kb.counts()["trials"] == 0


def test_a_damaged_task_rejects_the_tasks_and_the_results(small_tabrepo, kb):
    rows = _read_csv(small_tabrepo / TASKS)
    rows[1]["NumberOfInstances"] = "many"
    _write_csv(small_tabrepo / TASKS, rows)
    reports = _by_name(ingest(kb, small_tabrepo, format="tabrepo"))
    assert "row 2" in reports[TASKS].rejected and "field 'NumberOfInstances'" in reports[TASKS].rejected
    assert TASKS in reports[RESULTS].rejected
    assert kb.counts()["datasets"] == 0 and kb.counts()["metafeatures"] == 0


def test_results_need_their_companions_beside_them(small_tabrepo, kb):
    (small_tabrepo / CONFIGS).unlink()
    [report] = ingest(kb, small_tabrepo / RESULTS, format="tabrepo")
    assert "needs configs_lightgbm.json" in report.rejected


def test_options_of_other_formats_are_refused(small_tabrepo, cli):
    assert cli("init").exit_code == 0
    result = cli("ingest", small_tabrepo, "--format", "tabrepo", "--table", "trials")
    assert result.exit_code == 1 and "--table does not apply" in result.output
    result = cli("ingest", small_tabrepo, "--format", "tabrepo")
    assert result.exit_code == 0, result.output
    assert "0 rejected" in result.output
