"""kb fragments measure and kb latency predict, end to end on a quick profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fragments import blocks as b
from fragments.graph import chain, node_link

QUICK_PROFILE = """[profiles.quick]
threads = 1
warmup = 1
repeats = 10
min_measure_seconds = 0
max_measure_seconds = 1
"""
CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"


@pytest.fixture
def quick_kb(cli):
    assert cli("init").exit_code == 0
    (cli.kb_path / "hardware.toml").write_text(QUICK_PROFILE)
    return cli


def test_measure_arch_then_predict_with_breakdown(quick_kb, tmp_path):
    cli = quick_kb
    arch_file = tmp_path / "net.json"
    # The second and third layers are one fragment (same block, same input shape).
    graph = chain([b.LinearAct(out=16), b.LinearAct(out=16), b.LinearAct(out=16),
                   b.ResidualMLP(hidden=32), b.MLPHead(out=3)], (8,))
    arch_file.write_text(json.dumps(node_link(graph)))

    before = cli("latency", "predict", "--hardware", "quick", "--arch", str(arch_file))
    assert before.exit_code == 1
    assert "no per-call overhead" in before.output or "no cost" in before.output

    measured = cli("fragments", "measure", "--hardware", "quick", "--arch", str(arch_file), "--json")
    assert measured.exit_code == 0, measured.output
    summary = json.loads(measured.output)
    assert summary["measured"] == 4 and summary["failed"] == [] and summary["overhead_ms"] > 0

    again = json.loads(cli("fragments", "measure", "--hardware", "quick", "--arch", str(arch_file),
                           "--json").output)
    assert again["measured"] == 0 and again["already_stored"] == 4

    result = cli("latency", "predict", "--hardware", "quick", "--arch", str(arch_file), "--json")
    assert result.exit_code == 0, result.output
    prediction = json.loads(result.output)
    parts = prediction["fragments"]
    assert sorted((p["kind"], p["in_shape"], p["count"]) for p in parts) == [
        ("linear_act", [8], 1), ("linear_act", [16], 2), ("mlp_head", [16], 1),
        ("residual_mlp", [16], 1)]
    assert prediction["fragments_ms"] == pytest.approx(sum(p["total_ms"] for p in parts))
    assert prediction["p50_ms"] == pytest.approx(
        prediction["overhead_ms"] + prediction["fragments_ms"] + prediction["correction_ms"])
    assert prediction["correction"]["calibration_networks"] == 0  # none measured: the raw sum
    assert cli("validate").exit_code == 0

    text = cli("latency", "predict", "--hardware", "quick", "--arch", str(arch_file))
    assert "predicted p50" in text.output and "residual_mlp" in text.output


def test_measure_space_with_calibration_networks(quick_kb):
    cli = quick_kb
    measured = cli("fragments", "measure", "--hardware", "quick", "--space", "mlp", "--networks", "2",
                   "--json")
    assert measured.exit_code == 0, measured.output
    summary = json.loads(measured.output)
    assert summary["networks"] == 2 and summary["measured"] == 30
    arch_id = json.loads(cli("query", "SELECT arch_id FROM architectures LIMIT 1", "--json").output)[0]["arch_id"]
    prediction = json.loads(cli("latency", "predict", "--hardware", "quick", "--arch", arch_id,
                                "--json").output)
    # Both networks were measured (above); the correction learns from those slower than the
    # per-call overhead, which these tiny networks on a busy machine may not be (net time 0).
    assert prediction["correction"]["calibration_networks"] <= summary["networks"]
    assert prediction["measured_p50_ms"] > 0  # it is one of the calibration networks
    kinds = {r["kind"] for r in json.loads(cli("query", "SELECT DISTINCT f.kind FROM fragment_costs "
                                               "JOIN fragments f USING (fragment_id)", "--json").output)}
    assert {"identity", "network", "residual_mlp", "mlp_head"} <= kinds


@pytest.mark.parametrize("args, words", [
    (("fragments", "measure", "--hardware", "quick"), "--space"),
    (("fragments", "measure", "--hardware", "nope", "--space", "mlp"), "no hardware profile 'nope'"),
    (("latency", "predict", "--hardware", "quick", "--arch", "|nor_conv_3x3~0|+|"), "NAS-Bench-201"),
    (("latency", "predict", "--hardware", "quick", "--arch", "0123456789abcdef"), "no architecture"),
    (("latency", "predict", "--hardware", "quick", "--arch", "missing.json"), "no such file"),
    (("latency", "predict", "--hardware", "quick", "--arch", CELL), "have no cost"),
])
def test_user_errors_are_one_line(quick_kb, args, words):
    result = quick_kb(*args)
    assert result.exit_code == 1
    assert words in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_help_has_examples(cli):
    for group, command in (("fragments", "measure"), ("latency", "predict")):
        result = cli(group, command, "--help")
        assert result.exit_code == 0 and "Example:" in result.output


def test_shipped_gpu_costs_predict_for_that_gpu_on_any_machine(cli):
    """datasets/hardware/nvidia-h200 holds costs measured on a GPU; its hardware_id names them."""
    import pyarrow.parquet as pq

    folder = Path(__file__).resolve().parents[1] / "datasets" / "hardware" / "nvidia-h200"
    assert cli("init").exit_code == 0
    assert cli("ingest", str(folder), "--format", "native").exit_code == 0
    # A calibration network: the prediction from its fragments against its own measurement.
    arch_id = pq.read_table(folder / "architectures.parquet").column("arch_id")[0].as_py()
    result = cli("latency", "predict", "--hardware", "d022c25c896e8f82", "--arch", arch_id, "--json")
    assert result.exit_code == 0, result.output
    prediction = json.loads(result.output)
    assert prediction["hardware"] == "cuda" and prediction["hardware_id"] == "d022c25c896e8f82"
    assert prediction["correction"]["calibration_networks"] == 36
    parts = prediction["overhead_ms"] + prediction["fragments_ms"] + prediction["correction_ms"]
    assert prediction["p50_ms"] == pytest.approx(parts)
    # On the GPU the sum of NB-201 fragments over-predicts (kernels of a whole network overlap):
    # within x2 of the network's own measurement, not closer.
    assert 0.5 < prediction["p50_ms"] / prediction["measured_p50_ms"] < 2
    # This machine's CPU has no costs in that KB: a one-line error that says how to measure them.
    result = cli("latency", "predict", "--hardware", "cpu-1t", "--arch", arch_id)
    assert result.exit_code == 1 and "kb fragments measure" in result.output
