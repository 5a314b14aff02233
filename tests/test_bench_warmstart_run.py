"""The leave-one-dataset-out warm-start benchmark keeps working at its smallest size, and
refuses datasets metakb was built or tuned on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent / "benchmarks" / "bench_warmstart.py"


def test_warmstart_benchmark_runs_quick(tmp_path, shared_data):
    out = tmp_path / "warmstart.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--jobs", "1", "--latency-ms", "5",
                             "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "warm@4 | cold@4 | random@4" in result.stdout
    assert "Under a latency limit of 5.0 ms" in result.stdout
    numbers = json.loads(out.read_text())
    (job,) = numbers["jobs"]
    assert set(job["searches"]) == {"warm", "cold", "random", "warm@limit", "cold@limit", "random@limit"}
    for name, search in job["searches"].items():
        assert len(search["curve"]) == 4, name
    assert job["searches"]["warm"]["warm_sources"] and not job["searches"]["cold"]["warm_sources"]
    (row,) = numbers["summary"]["datasets"]
    assert row["searches"]["warm"]["per_seed"]["wins"] + row["searches"]["warm"]["per_seed"]["ties"] \
        + row["searches"]["warm"]["per_seed"]["losses"] == 1


def test_warmstart_benchmark_refuses_a_dataset_used_to_build_metakb(tmp_path, shared_data):
    result = subprocess.run([sys.executable, str(SCRIPT), "--datasets", "haberman", "--out",
                             str(tmp_path / "x.json")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "helped build metakb" in result.stderr
