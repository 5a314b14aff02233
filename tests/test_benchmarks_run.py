"""The benchmark scripts keep working: each runs at its smallest size and writes its JSON.

No timing is asserted here (timing belongs to the benchmarks themselves); only that they run
and that what they check along the way (no rows lost, every row found) holds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parent / "benchmarks"


def test_store_benchmark_runs_quick(tmp_path):
    out = tmp_path / "store.json"
    result = subprocess.run([sys.executable, str(BENCHMARKS / "bench_store.py"), "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "warm query" in result.stdout and "anchor" in result.stdout
    numbers = json.loads(out.read_text())
    assert numbers["concurrent"]["lost_or_duplicated"] == 0
    assert numbers["ingest"]["rows"] == numbers["concurrent"]["distinct_trial_ids"]
