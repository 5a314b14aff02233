"""The aslib ingest format on auto-sklearn's real ASlib scenarios (slices copied to tmp)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from kb.errors import KBError
from kb.ingest import ingest
from kb.metafeature_store import stored_vectors

ACCURACY = "accuracy_binary.classification_dense"
BALANCED = "balanced_accuracy_multiclass.classification_dense"
ROC_AUC = "roc_auc_binary.classification_dense"
R2 = "r2_regression_dense"
SCENARIO_FILES = ("description.txt", "feature_values.arff", "algorithm_runs.arff", "configurations.csv")


def data_lines(path: Path) -> tuple[list[str], list[str]]:
    """(header lines up to @DATA, data lines) of an ARFF file, as text."""
    lines = path.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.lower().startswith("@data"))
    return lines[:at + 1], [line for line in lines[at + 1:] if line.strip()]


def slice_scenario(source: Path, target: Path, instances=8) -> Path:
    """A copy of a real scenario keeping the rows of ``instances`` (names, or the first N
    instances with runs) and the configurations their runs use."""
    target.mkdir(parents=True)
    (target / "description.txt").write_text((source / "description.txt").read_text())
    header, runs = data_lines(source / "algorithm_runs.arff")
    if isinstance(instances, int):
        instances = list(dict.fromkeys(line.split(",")[0] for line in runs))[:instances]
    runs = [line for line in runs if line.split(",")[0] in instances]
    (target / "algorithm_runs.arff").write_text("\n".join(header + runs) + "\n")
    header, features = data_lines(source / "feature_values.arff")
    features = [line for line in features if line.split(",")[0] in instances]
    (target / "feature_values.arff").write_text("\n".join(header + features) + "\n")
    used = {line.split(",")[2] for line in runs}
    lines = (source / "configurations.csv").read_text().splitlines()
    kept = [line for line in lines[1:] if line.split(",")[0] in used]
    (target / "configurations.csv").write_text("\n".join(lines[:1] + kept) + "\n")
    return target


def run_rows(folder: Path) -> list[list[str]]:
    return [line.split(",") for line in data_lines(folder / "algorithm_runs.arff")[1]]


def configurations(folder: Path) -> dict[str, dict[str, str]]:
    with open(folder / "configurations.csv", newline="") as f:
        return {row["idx"]: row for row in csv.DictReader(f)}


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def accuracy(shared_data, tmp_path) -> Path:
    return slice_scenario(shared_data / "autosklearn" / ACCURACY, tmp_path / "scenarios" / ACCURACY)


def test_a_scenario_becomes_datasets_meta_features_and_trials(kb, accuracy):
    reports = ingest(kb, accuracy, format="aslib")
    assert [(r.path.name, r.table, r.rejected) for r in reports] == [
        ("feature_values.arff", "metafeatures", None), ("algorithm_runs.arff", "trials", None)]
    runs, configs = run_rows(accuracy), configurations(accuracy)
    trials = kb.query("SELECT t.*, d.name AS instance FROM trials t JOIN datasets d USING (dataset_id)"
                      ).to_pylist()
    assert reports[1].added == len(trials) == len(runs)
    by_run = {(t["instance"], t["score"]): t for t in trials}
    for instance, repetition, algorithm, loss, status in runs:
        trial = by_run[(instance, float(loss))]
        assert (trial["metric"], trial["direction"], trial["status"]) == ("accuracy", "minimize", "ok")
        assert trial["model_family"] == "autosklearn"
        assert json.loads(trial["details"]) == {"repetition": int(float(repetition))}
        config = json.loads(trial["config"])
        active = {k: v for k, v in configs[algorithm].items() if v != "" and k != "idx"}
        assert config.pop("family") == "autosklearn"
        assert {k: str(v) for k, v in config.items()} == active


def test_datasets_are_known_by_reference_with_size_and_task_from_meta_features(kb, accuracy):
    ingest(kb, accuracy, format="aslib")
    header, rows = data_lines(accuracy / "feature_values.arff")
    names = [line.split()[1] for line in header if line.upper().startswith("@ATTRIBUTE")]
    for row in rows:
        values = dict(zip(names, row.split(",")))
        stored = kb.query("SELECT * FROM datasets WHERE name = ?", [values["instance_id"]]).to_pylist()
        assert len(stored) == 1
        dataset = stored[0]
        classes = int(float(values["NumberOfClasses"]))
        assert dataset["task"] == ("binary" if classes == 2 else "multiclass")
        assert (dataset["n_rows"], dataset["n_features"], dataset["n_classes"]) == (
            int(float(values["NumberOfInstances"])), int(float(values["NumberOfFeatures"])), classes)
        assert dataset["data_file"] is None


def test_meta_features_keep_auto_sklearn_names_and_are_read_as_openml_ones_once(kb, accuracy):
    ingest(kb, accuracy, format="aslib")
    dataset_id = kb.query("SELECT min(dataset_id) FROM datasets").column(0)[0].as_py()
    stored = kb.query("SELECT name, value, extractor FROM metafeatures WHERE dataset_id = ?",
                      [dataset_id]).to_pylist()
    raw = {r["name"]: r["value"] for r in stored}
    assert {r["extractor"] for r in stored} == {"autosklearn"}
    assert "LogNumberOfInstances" in raw  # auto-sklearn's own name, as the file has it
    vector = stored_vectors(kb).vectors[dataset_id]
    # OpenML counts the target among the features, auto-sklearn does not: converted once.
    assert vector["NumberOfFeatures"] == raw["NumberOfFeatures"] + 1
    assert vector["MajorityClassPercentage"] == pytest.approx(100 * raw["ClassProbabilityMax"])


def test_a_second_ingest_adds_nothing(kb, accuracy):
    first = ingest(kb, accuracy, format="aslib")
    counts = kb.counts()
    again = ingest(kb, accuracy, format="aslib")
    assert kb.counts() == counts
    assert [r.added for r in again] == [0, 0]
    assert [r.already_present for r in again] == [r.added for r in first]


def test_not_applicable_runs_are_left_out_and_counted(kb, shared_data, tmp_path):
    source = shared_data / "autosklearn" / ROC_AUC
    runs = run_rows(source)
    chosen = ([r[0] for r in runs if r[-1] == "not_applicable"][:3]
              + [r[0] for r in runs if r[-1] == "ok"][:3])
    folder = slice_scenario(source, tmp_path / ROC_AUC, chosen)
    not_applicable = sum(r[-1] == "not_applicable" for r in run_rows(folder))
    trials = ingest(kb, folder, format="aslib")[1]
    assert not_applicable >= 3
    assert trials.added == len(run_rows(folder)) - not_applicable
    assert trials.rows_left_out == not_applicable
    assert trials.left_out_because == f"{not_applicable} not_applicable"


def test_failed_runs_keep_their_status_and_reason(kb, accuracy):
    runs = data_lines(accuracy / "algorithm_runs.arff")[1]
    replace_in(accuracy / "algorithm_runs.arff", runs[0], runs[0].rsplit(",", 1)[0] + ",timeout")
    replace_in(accuracy / "algorithm_runs.arff", runs[1], runs[1].rsplit(",", 2)[0] + ",?,memout")
    assert not ingest(kb, accuracy, format="aslib")[1].rejected
    rows = kb.query("SELECT status, score, failure_reason FROM trials WHERE status <> 'ok' "
                    "ORDER BY status").to_pylist()
    assert [(r["status"], r["score"]) for r in rows] == [("failed", None), ("timeout", None)]
    assert "memout" in rows[0]["failure_reason"]


def test_one_name_in_classification_and_regression_scenarios_is_two_datasets(kb, shared_data, tmp_path):
    for scenario in (ACCURACY, R2):
        folder = slice_scenario(shared_data / "autosklearn" / scenario, tmp_path / scenario, ["abalone"])
        assert not any(r.rejected for r in ingest(kb, folder, format="aslib"))
    tasks = kb.query("SELECT task FROM datasets WHERE name = 'abalone' ORDER BY task")
    assert tasks.column(0).to_pylist() == ["multiclass", "regression"]


def test_one_configuration_scored_under_two_metrics_is_two_trials(kb, shared_data, tmp_path):
    # auto-sklearn's accuracy and balanced-accuracy scenarios often share a dataset's best
    # configuration; a trial's id names its metric, so neither overwrites the other.
    instances = [r[0] for r in run_rows(shared_data / "autosklearn" / ACCURACY)[:40]]
    first = slice_scenario(shared_data / "autosklearn" / ACCURACY, tmp_path / ACCURACY, instances)
    second = slice_scenario(shared_data / "autosklearn" / BALANCED, tmp_path / BALANCED, instances)
    ingest(kb, first, format="aslib")
    before = kb.read("trials").to_pylist()
    report = ingest(kb, second, format="aslib")[1]
    assert not report.rejected
    assert report.added + (report.rows_left_out or 0) == len(run_rows(second))
    stored = {t["trial_id"]: t for t in kb.read("trials").to_pylist()}
    assert all(stored[t["trial_id"]] == t for t in before)
    assert sum(t["metric"] == "balanced_accuracy" for t in stored.values()) == report.added
    shared = {t["config_id"] for t in before} & {t["config_id"] for t in stored.values()
                                                  if t["metric"] == "balanced_accuracy"}
    assert shared, "the two scenarios share no configuration on these instances"



def damage(path: Path, row: int, column: int | None, value: str | None) -> None:
    """Set value ``column`` of data row ``row`` (from 1) of an ARFF or CSV file to ``value``;
    with ``column`` None, drop the row's last value."""
    lines = data_lines(path)[1] if path.suffix == ".arff" else path.read_text().splitlines()[1:]
    values = lines[row - 1].split(",")
    values = values[:-1] if column is None else values[:column] + [value] + values[column + 1:]
    replace_in(path, lines[row - 1], ",".join(values))


@pytest.mark.parametrize("file, row, column, value, what", [
    ("algorithm_runs.arff", 3, 3, "0.1x", ", field 'accuracy': expected a number"),
    ("algorithm_runs.arff", 5, 2, "99999", ", field 'algorithm': '99999' is not an idx of configur"),
    ("algorithm_runs.arff", 2, 3, "?", ", field 'accuracy': expected a finite number for a run"),
    ("algorithm_runs.arff", 1, 4, "finished", ", field 'runstatus': 'finished' is not one of"),
    ("feature_values.arff", 6, 2, "high", ", field 'ClassEntropy': expected a number, got 'high'"),
    ("feature_values.arff", 4, None, None, ": Bad @DATA instance format (line"),
    ("configurations.csv", 3, 0, "", ", field 'idx': missing"),
])
def test_a_damaged_file_rejects_the_scenario_naming_file_row_and_field(kb, accuracy, file, row,
                                                                      column, value, what):
    damage(accuracy / file, row, column, value)
    reports = ingest(kb, accuracy, format="aslib")
    rejected = [r.rejected for r in reports if r.rejected]
    assert len(rejected) == 1 and len(reports) == 1
    assert f"{accuracy / file}: row {row}{what}" in rejected[0]
    assert not any(kb.counts().values())


def test_a_missing_file_or_bad_description_is_named(kb, accuracy):
    (accuracy / "configurations.csv").unlink()
    assert "configurations.csv is missing" in ingest(kb, accuracy, format="aslib")[0].rejected
    slice_dir = accuracy.parent / "other"
    slice_dir.mkdir()
    for name in SCENARIO_FILES:
        (slice_dir / name).write_text("")
    (slice_dir / "description.txt").write_text("performance_measures: accuracy\nmaximize: perhaps\n")
    assert "description.txt: field 'maximize': expected true or false" in \
        ingest(kb, slice_dir, format="aslib")[0].rejected
    assert not any(kb.counts().values())


def test_a_path_without_a_scenario_is_a_user_error(kb, tmp_path):
    with pytest.raises(KBError, match="no ASlib scenario"):
        ingest(kb, tmp_path, format="aslib")


def test_the_cli_ingests_scenarios_and_refuses_other_formats_options(cli, accuracy, shared_data):
    slice_scenario(shared_data / "autosklearn" / R2, accuracy.parent / R2, 4)
    assert cli("init").exit_code == 0
    result = cli("ingest", accuracy.parent, "--format", "aslib", "--json")
    assert result.exit_code == 0, result.output
    reports = json.loads(result.output)
    assert [Path(r["path"]).parent.name for r in reports] == [ACCURACY, ACCURACY, R2, R2]
    refused = cli("ingest", accuracy, "--format", "aslib", "--dataset", "iris")
    assert refused.exit_code == 1
    assert "--dataset does not apply to this format" in refused.output
    damage(accuracy / "algorithm_runs.arff", 3, 3, "0.1x")
    damaged = cli("ingest", accuracy, "--format", "aslib")
    assert damaged.exit_code == 1 and "rejected" in damaged.output


@pytest.mark.slow
def test_all_of_auto_sklearn_s_scenarios_ingest_and_a_second_ingest_adds_nothing(kb, shared_data):
    reports = ingest(kb, shared_data / "autosklearn", format="aslib")
    assert not [r.rejected for r in reports if r.rejected]
    assert kb.counts()["trials"] > 500 and kb.counts()["datasets"] > 300
    again = ingest(kb, shared_data / "autosklearn", format="aslib")
    assert sum(r.added for r in again) == 0
