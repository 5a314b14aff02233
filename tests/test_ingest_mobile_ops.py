"""The mobile-ops adapter on the first models of the real mobile-ml-benchmark tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import csv_head

from kb.ingest import ingest

MODELS = 4  # the first models of the operator tables (their rows, whole)
NAS_ROWS = 10


def _first_models(source: Path, target: Path, damage_row: int | None = None) -> list[str]:
    """The rows of the source's first models; row ``damage_row`` (from 1) gets a feature
    that is code, not a shape description."""
    table = pd.read_csv(source)
    models = list(dict.fromkeys(table["model"]))[:MODELS]
    subset = table[table["model"].isin(models)].reset_index(drop=True)
    if damage_row is not None:
        subset.loc[damage_row - 1, "feature"] = "__import__('os')"
    subset.to_csv(target, index=False)
    return models


@pytest.fixture
def mobile_folder(shared_data, tmp_path) -> Path:
    source, folder = shared_data / "mobile_ops", tmp_path / "mobile_ops"
    folder.mkdir()
    models = _first_models(source / "tflite_cnn_ops_gpu.csv", folder / "tflite_cnn_ops_gpu.csv")
    _first_models(source / "torch_cnn_ops_gpu.csv", folder / "torch_cnn_ops_gpu.csv")
    e2e = pd.read_csv(source / "tflite_cnn_e2e.csv")
    e2e[e2e["model"].isin(models)].to_csv(folder / "tflite_cnn_e2e.csv", index=False)
    csv_head(source / "tflite_nas_e2e.csv", folder / "tflite_nas_e2e.csv", NAS_ROWS)
    return folder


def test_operators_become_fragment_costs_in_ms(kb, mobile_folder):
    reports = ingest(kb, mobile_folder, format="mobile-ops")
    assert [r.rejected for r in reports] == [None] * 4
    ops = pd.read_csv(mobile_folder / "tflite_cnn_ops_gpu.csv")
    # An operator shape met more than once costs its median occurrence.
    repeated = ops.groupby(["operation", "feature"])["pixel4|gpu|float"].agg(["count", "median"])
    (operation, feature), row = next((k, r) for k, r in repeated.iterrows() if r["count"] >= 3)
    stored = kb.query(
        "SELECT c.latency_p50_ms, f.params FROM fragment_costs c JOIN fragments f USING (fragment_id) "
        "JOIN hardware h USING (hardware_id) WHERE f.kind = ? AND h.name = 'pixel4 gpu' "
        "AND h.runtime = 'tflite'", [f"tflite:{operation}"]).to_pylist()
    size = eval(feature)["Input_shape"]  # noqa: S307 - the test's own reading of the source text
    matches = [r for r in stored if str(json.loads(r["params"])["Input_shape"]) == str(size)
               and json.loads(r["params"]).get("Input_channel") == eval(feature)["Input_channel"]]  # noqa: S307
    assert any(r["latency_p50_ms"] == pytest.approx(row["median"] / 1000) for r in matches)


def test_whole_model_latency_names_the_models_operators(kb, mobile_folder):
    ingest(kb, mobile_folder, format="mobile-ops")
    e2e = pd.read_csv(mobile_folder / "tflite_cnn_e2e.csv").set_index("model")
    model = e2e.index[0]
    rows = kb.query(
        "SELECT t.latency_p50_ms, t.score, t.model_bytes, a.name, a.fragments FROM trials t "
        "JOIN hardware h USING (hardware_id) JOIN architectures a USING (arch_id) "
        "WHERE h.name = 'pixel4 gpu' AND h.quantization IS NULL AND t.config = ?",
        [json.dumps({"family": "tflite-cnn", "model": model}, separators=(",", ":"), sort_keys=True)]
    ).to_pylist()
    assert len(rows) == 1
    assert rows[0]["latency_p50_ms"] == pytest.approx(e2e.loc[model, "pixel4|gpu|float|mean"] / 1000)
    assert rows[0]["model_bytes"] == e2e.loc[model, "size"]
    ops = pd.read_csv(mobile_folder / "tflite_cnn_ops_gpu.csv")
    assert len(json.loads(rows[0]["fragments"])) == int((ops["model"] == model).sum())
    assert model in rows[0]["name"].split(" = ")
    quantized = kb.query("SELECT count(*) AS n FROM hardware WHERE quantization = 'int8'").to_pylist()
    assert quantized[0]["n"] > 0
    assert kb.validate() == []


def test_ingesting_again_adds_nothing(kb, mobile_folder):
    first = ingest(kb, mobile_folder, format="mobile-ops")
    again = ingest(kb, mobile_folder, format="mobile-ops")
    assert [r.added for r in again] == [0] * 4
    assert [r.already_present for r in again] == [r.added for r in first]


def test_whole_model_table_needs_its_operators(kb, mobile_folder):
    (mobile_folder / "tflite_cnn_ops_gpu.csv").unlink()
    reports = {r.path.name: r for r in ingest(kb, mobile_folder, format="mobile-ops")}
    assert "tflite_cnn_ops_gpu.csv" in reports["tflite_cnn_e2e.csv"].rejected
    assert reports["tflite_nas_e2e.csv"].added == NAS_ROWS * 60


def test_a_damaged_operator_rejects_its_file(kb, mobile_folder, shared_data):
    _first_models(shared_data / "mobile_ops" / "tflite_cnn_ops_gpu.csv",
                  mobile_folder / "tflite_cnn_ops_gpu.csv", damage_row=3)
    (report,) = ingest(kb, mobile_folder / "tflite_cnn_ops_gpu.csv", format="mobile-ops")
    assert "row 3" in report.rejected and "feature" in report.rejected
    assert kb.counts()["fragment_costs"] == 0
