"""Native ingest and export: round trips, rejections that add nothing, folder reports."""

from __future__ import annotations

import csv
import json
import pickle
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import DATASET, HARDWARE, add_references, trial_row

from kb import KnowledgeBase, Trial
from kb.ingest import ingest
from kb.ingest.native import table_for_file

FORMATS = ("parquet", "csv", "jsonl")


@pytest.fixture
def filled(kb):
    """A KB with rows in several tables, including nulls, JSON, times and awkward text."""
    add_references(kb)
    kb.add(*[Trial(**trial_row(
        i,
        score=(i * 0.1) + 1e-17 * i,
        latency_p50_ms=None if i % 3 else 0.1 + 0.2,
        started_at=datetime(2026, 11, 21, 10, i, 5, 123456, tzinfo=timezone.utc),
        library_versions={"onnxruntime": "1.31.1", "scikit-learn": "1.9.1"},
        failure_reason='comma, "quote"\nnewline' if i == 2 else None,
    )) for i in range(6)])
    return kb


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("table", ["trials", "datasets", "hardware"])
def test_export_then_ingest_round_trips_unchanged(filled, tmp_path, cli, fmt, table):
    out = tmp_path / f"{table}.{fmt}"
    result = cli("export", table, "--out", out, kb=filled.root)
    assert result.exit_code == 0, result.output
    other = tmp_path / "other"
    assert cli("init", kb=other).exit_code == 0
    result = cli("ingest", out, kb=other)
    assert result.exit_code == 0, result.output
    original = filled.read(table).sort_by(TABLE_KEYS[table])
    copied = KnowledgeBase(other).read(table).sort_by(TABLE_KEYS[table])
    assert copied.equals(original)
    again = cli("ingest", out, kb=other)
    assert f"0 added, {original.num_rows} already present" in again.output


TABLE_KEYS = {"trials": "trial_id", "datasets": "dataset_id", "hardware": "hardware_id"}


def test_table_is_named_by_file_name():
    from pathlib import Path

    assert table_for_file(Path("trials.csv")) == "trials"
    assert table_for_file(Path("trials-2026.parquet")) == "trials"
    assert table_for_file(Path("fragment_costs_gpu.jsonl")) == "fragment_costs"
    assert table_for_file(Path("fragments.csv")) == "fragments"
    assert table_for_file(Path("results.csv")) is None


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("changes, where", [
    ({"seed": "three"}, "row 3, field 'seed': expected an integer"),
    ({"dataset_id": None}, "row 3, field 'dataset_id': missing required field"),
    ({"score": "NaN"}, "row 3, field 'score'"),
    ({"status": "done"}, "row 3, field 'status': unknown value 'done'"),
    ({"config": "{family: rf}"}, "row 3, field 'config': malformed JSON"),
])
def test_a_bad_row_rejects_the_whole_file_naming_file_row_and_field(kb, tmp_path, cli, changes, where):
    path = write_rows(tmp_path / "trials.jsonl",
                      [trial_row(0), trial_row(1), trial_row(2, **changes), trial_row(3)])
    result = cli("ingest", path, kb=kb.root)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in result.output
    assert str(path) in line and where in line
    assert kb.counts()["trials"] == 0


def test_a_bad_csv_cell_is_named_too(kb, tmp_path, cli):
    path = tmp_path / "datasets.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, ["dataset_id", "name", "task", "target", "n_rows", "n_features", "source"])
        writer.writeheader()
        writer.writerow(dict(dataset_id="a", name="a", task="binary", target="y", n_rows=5, n_features=2, source="s"))
        writer.writerow(dict(dataset_id="b", name="b", task="ranking", target="y", n_rows=5, n_features=2, source="s"))
    result = cli("ingest", path, kb=kb.root)
    assert result.exit_code == 1
    assert f"{path}: row 2, field 'task': unknown value 'ranking'" in result.stderr
    assert kb.counts()["datasets"] == 0


@pytest.mark.parametrize("name, content, message", [
    ("trials.parquet", b"a,b\n1,2\n", "named as Parquet but is text"),
    ("trials.csv", b"PAR1\x00\x01binary", "named as a text file but is a Parquet file"),
    ("trials.csv", b"", "is empty"),
    ("trials.jsonl", b"{not json}\n", "row 1: not valid JSON"),
    ("trials.jsonl", b"[1, 2]\n", "expected a JSON object"),
    ("trials.csv.gz", b"plain text", "named .gz but is text"),
])
def test_files_that_are_not_what_they_claim_are_rejected(kb, tmp_path, cli, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    result = cli("ingest", path, kb=kb.root)
    assert result.exit_code == 1
    assert message in result.stderr


def test_ingest_never_unpickles(kb, tmp_path):
    # A "Parquet" file that is really a pickle whose loading would run code.
    class Boom:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('ran')" % str(tmp_path / "ran.txt"),))

    (tmp_path / "trials.parquet").write_bytes(pickle.dumps(Boom()))
    (tmp_path / "trials.jsonl").write_text(json.dumps(trial_row(0, source="__import__('os').system('true')")) + "\n")
    reports = ingest(kb, tmp_path)
    assert not (tmp_path / "ran.txt").exists()
    rejected = [r for r in reports if r.rejected]
    assert len(rejected) == 1 and rejected[0].path.name == "trials.parquet"
    assert kb.query("SELECT source FROM trials").column(0).to_pylist() == ["__import__('os').system('true')"]


def test_a_folder_is_ingested_file_by_file_with_a_report_each(kb, tmp_path, cli):
    folder = tmp_path / "results"
    folder.mkdir()
    # Trials come first alphabetically, but datasets and hardware must be loaded before them.
    write_rows(folder / "a_trials.jsonl", [trial_row(9)])  # no table in its name: skipped, said so
    write_rows(folder / "trials-good.jsonl", [trial_row(0), trial_row(1)])
    write_rows(folder / "trials-bad.jsonl", [trial_row(2), trial_row(3, status="??")])
    pq.write_table(pa.Table.from_pylist([DATASET.__dict__]), folder / "datasets.parquet")
    write_rows(folder / "hardware.jsonl", [{k: v for k, v in HARDWARE.__dict__.items() if v is not None}])
    (folder / "README.md").write_text("notes")

    order = []
    reports = ingest(kb, folder, progress=lambda r: order.append(r.path.name))
    assert order.index("datasets.parquet") < order.index("trials-good.jsonl")
    by_name = {r.path.name: r for r in reports}
    assert by_name["trials-good.jsonl"].added == 2
    assert "field 'status'" in by_name["trials-bad.jsonl"].rejected
    assert by_name["README.md"].skipped and by_name["a_trials.jsonl"].skipped
    assert kb.counts()["trials"] == 2 and kb.counts()["datasets"] == 1

    result = cli("ingest", folder, kb=kb.root)
    assert result.exit_code == 1  # a file was rejected
    assert "0 added, 2 already present" in result.output
    assert "1 rejected, 2 skipped" in result.output


def test_ingest_reports_json(kb, tmp_path, cli):
    path = write_rows(tmp_path / "trials.jsonl", [trial_row(0), trial_row(0), trial_row(1)])
    result = cli("ingest", path, "--json", kb=kb.root)
    assert result.exit_code == 0
    [report] = json.loads(result.output)
    assert (report["table"], report["added"], report["already_present"]) == ("trials", 2, 1)


def test_on_conflict_replace_from_the_cli(kb, tmp_path, cli):
    write_rows(tmp_path / "trials.jsonl", [trial_row(0)])
    assert cli("ingest", tmp_path / "trials.jsonl", kb=kb.root).exit_code == 0
    write_rows(tmp_path / "trials.jsonl", [trial_row(0, score=0.99)])
    refused = cli("ingest", tmp_path / "trials.jsonl", kb=kb.root)
    assert refused.exit_code == 1 and "different score" in refused.stderr
    replaced = cli("ingest", tmp_path / "trials.jsonl", "--on-conflict", "replace", kb=kb.root)
    assert replaced.exit_code == 0 and "1 replaced" in replaced.output
    assert kb.query("SELECT score FROM trials").column(0).to_pylist() == [0.99]


def test_export_to_an_unknown_extension_is_a_user_error(filled, tmp_path, cli):
    result = cli("export", "trials", "--out", tmp_path / "t.xlsx", kb=filled.root)
    assert result.exit_code == 1 and "cannot tell the format" in result.stderr
    assert not (tmp_path / "t.xlsx").exists()
