"""The latency benchmark keeps working: it runs at its smallest size and writes its JSON.

No timing or accuracy is asserted (that is the benchmark's own report); only that the three
predictors are scored on networks none of which was used for fitting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).parent / "benchmarks" / "bench_latency.py"


def test_latency_benchmark_runs_quick(tmp_path):
    out = tmp_path / "latency.json"
    result = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for words in ("metakb", "raw sum", "FLOPs-proportional", "within"):
        assert words in result.stdout
    numbers = json.loads(out.read_text())
    assert set(numbers["summary"]) == {"metakb", "raw sum", "FLOPs-proportional"}
    assert len(numbers["networks"]) == numbers["evaluated_per_space"] == 4
    # Fitted on calibration networks only; one whose end-to-end time is within the per-call
    # overhead's noise (net time 0) carries no cost, and fragments.latency.fit_correction
    # leaves it out: at --quick's tiny sizes that happens on a busy machine.
    assert numbers["calibration_per_space"] == 4
    assert 1 <= numbers["correction"]["n_networks"] <= 4
    assert all(r["measured_ms"] > 0 and r["metakb_ms"] > 0 for r in numbers["networks"])
