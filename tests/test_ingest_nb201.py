"""The nb201 adapter on the first rows of the real NAS-Bench-201 tables (the whole benchmark
takes a minute or two to ingest, most of it building 15,625 networks)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from helpers import csv_head

from kb.errors import KBError
from kb.ingest import ingest

CELLS = 12


@pytest.fixture
def nb201_folder(shared_data, tmp_path) -> Path:
    folder = tmp_path / "nb201"
    folder.mkdir()
    for name in ("latency_ms.csv", "accuracy.csv"):
        csv_head(shared_data / "nb201" / name, folder / name, CELLS)
    return folder


def _source_rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_ingest_makes_devices_architectures_and_trials(kb, nb201_folder):
    from fragments.graph import nb201_architecture

    reports = ingest(kb, nb201_folder, format="nb201")
    assert [r.rejected for r in reports] == [None, None]
    latency = _source_rows(nb201_folder / "latency_ms.csv")
    devices = [c for c in latency[0] if c not in ("arch_idx", "arch_str")]
    assert sum(r.added for r in reports) == CELLS * (len(devices) + 3)

    hardware = kb.query("SELECT name, kind FROM hardware").to_pylist()
    assert {h["name"] for h in hardware} == set(devices) | {"unknown (nb201)"}
    assert {h["kind"] for h in hardware} == {"external"}

    # The architecture row is the fragment graph the fragments package builds for the cell.
    cell = latency[3]["arch_str"]
    expected_id = nb201_architecture(cell).arch_id
    stored = kb.query("SELECT arch_id FROM architectures WHERE name = ?", [cell]).to_pylist()
    assert stored == [{"arch_id": expected_id}]

    # Batch-1 devices fill latency_p50_ms, batched ones the batch columns; gold_6240 is a CPU.
    by_device = {r["name"]: r for r in kb.query(
        "SELECT h.name, t.latency_p50_ms, t.latency_batch_p50_ms, t.batch_size, t.score "
        "FROM trials t JOIN hardware h USING (hardware_id) WHERE t.arch_id = ?",
        [expected_id]).to_pylist()}
    assert by_device["1080ti_32"]["batch_size"] == 32
    assert by_device["1080ti_32"]["latency_batch_p50_ms"] == pytest.approx(float(latency[3]["1080ti_32"]))
    assert by_device["1080ti_32"]["latency_p50_ms"] is None
    assert by_device["gold_6240"]["latency_p50_ms"] == pytest.approx(float(latency[3]["gold_6240"]))
    assert by_device["gold_6240"]["batch_size"] is None

    accuracy = _source_rows(nb201_folder / "accuracy.csv")
    row = next(r for r in accuracy if r["ArchitectureString"] == cell)
    scores = {r["name"]: r["score"] for r in kb.query(
        "SELECT d.name, t.score FROM trials t JOIN datasets d USING (dataset_id) "
        "WHERE t.arch_id = ? AND t.metric = 'accuracy'", [expected_id]).to_pylist()}
    assert scores["cifar100"] == pytest.approx(float(row["CIFAR100TestAccuracy200Epochs"]) / 100)
    assert scores["ImageNet16-120"] == pytest.approx(float(row["ImageNetTestAccuracy200Epochs"]) / 100)
    assert kb.validate() == []


def test_ingesting_again_adds_nothing(kb, nb201_folder):
    first = ingest(kb, nb201_folder, format="nb201")
    again = ingest(kb, nb201_folder, format="nb201")
    assert [r.rejected for r in again] == [None, None]
    assert [r.added for r in again] == [0, 0]
    assert [r.already_present for r in again] == [r.added for r in first]


def test_a_damaged_latency_rejects_that_file_only(kb, nb201_folder, shared_data):
    def damage(i, cells, header):
        if i == 5:
            cells[header.index("pixel3")] = "fast"

    csv_head(shared_data / "nb201" / "latency_ms.csv", nb201_folder / "latency_ms.csv", CELLS, damage)
    reports = {r.path.name: r for r in ingest(kb, nb201_folder, format="nb201")}
    rejected = reports["latency_ms.csv"].rejected
    assert "latency_ms.csv" in rejected and "row 5" in rejected and "pixel3" in rejected
    assert reports["accuracy.csv"].added == 3 * CELLS
    assert kb.query("SELECT count(*) AS n FROM trials WHERE metric = 'latency_ms'").to_pylist() == [{"n": 0}]


def test_a_malformed_cell_is_rejected_by_row(kb, nb201_folder, shared_data):
    def damage(i, cells, header):
        if i == 2:
            cells[header.index("ArchitectureString")] = "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"

    csv_head(shared_data / "nb201" / "accuracy.csv", nb201_folder / "accuracy.csv", CELLS, damage)
    (report,) = ingest(kb, nb201_folder / "accuracy.csv", format="nb201")
    assert "row 2" in report.rejected and "ArchitectureString" in report.rejected
    assert kb.counts()["trials"] == 0


def test_options_of_other_formats_are_refused(kb, nb201_folder):
    with pytest.raises(KBError, match="--table"):
        ingest(kb, nb201_folder, format="nb201", table="trials")


def test_cli_ingest(cli, nb201_folder):
    assert cli("init").exit_code == 0
    result = cli("ingest", nb201_folder, "--format", "nb201")
    assert result.exit_code == 0, result.output
    assert f"{CELLS * 21} added" in result.output
