"""The recommender benchmark keeps working: it runs in its quick mode and writes its JSON.

No timing or quality is asserted (both belong to the benchmark itself); only that every method
ranked every held-out task and that the numbers are what they claim to be.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent / "benchmarks" / "bench_recommender.py"


def test_recommender_benchmark_runs_quick(tmp_path, shared_data):
    out = tmp_path / "recommender.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out),
                             "--data", str(shared_data / "tabrepo")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "target: metakb ahead of the best anchor" in result.stdout and "(e) random" in result.stdout
    numbers = json.loads(out.read_text())
    quality = numbers["quality"]
    assert quality["tasks"] == len(quality["held_out"]) == 6 and quality["configs"] == 104
    for method, by_k in quality["methods"].items():
        errors = [by_k[k]["normalized_error"] for k in ("1", "3", "5", "10")]
        ranks = [by_k[k]["rank"] for k in ("1", "3", "5", "10")]
        # The best of a longer list can only be as good or better, in error and in rank.
        assert all(0 <= e <= 1 for e in errors) and errors == sorted(errors, reverse=True), method
        assert all(1 <= r <= 104 for r in ranks) and ranks == sorted(ranks, reverse=True), method
    assert numbers["latency"]["api_warm_median_ms"] > 0
