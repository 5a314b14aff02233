"""The harness benchmark keeps working: it runs at its smallest size and writes its JSON.

No timing is asserted (timing belongs to the benchmark itself); only that every run of every
model is a complete, repeatable trial.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent / "benchmarks" / "bench_harness.py"


def test_harness_benchmark_runs_quick(tmp_path):
    out = tmp_path / "harness.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "max/min" in result.stdout and "target:" in result.stdout
    numbers = json.loads(out.read_text())
    assert [m["model"] for m in numbers["models"]] == [
        "random_forest", "hist_gradient_boosting", "mlp"]
    for model in numbers["models"]:
        assert model["ok"] == model["runs"] == 2, model["failures"]
        assert model["ratio_p50"] >= 1.0 and model["parity_max"] is not None
        assert len(model["score"]["values"]) == 1  # the same seed gives the same score
        assert None not in (model["train_s"], model["export_s"], model["measure_s"])
