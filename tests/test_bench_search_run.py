"""The warm-versus-cold search benchmark keeps working at its smallest size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent / "benchmarks" / "bench_search.py"


def test_search_benchmark_runs_quick(tmp_path, shared_data):
    out = tmp_path / "search.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "warm@4 | cold@4" in result.stdout
    numbers = json.loads(out.read_text())
    (row,) = numbers["datasets"]
    assert numbers["baseline_trials"] > 0  # the shipped baseline is what warm starts draw on
    for mode in ("warm", "cold"):
        assert len(row[mode]["curve"]) == 4 and row[mode]["curve"][-1] is not None
    assert row["warm"]["warm_sources"] and not row["cold"]["warm_sources"]
