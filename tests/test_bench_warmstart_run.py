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


def _job(seed: int, curves: dict, spread: float = 0.0) -> dict:
    return {"dataset": "d", "task": "binary", "seed": seed, "metric": "roc_auc", "direction": "maximize",
            "searches": {name: {"curve": curve, "spread": spread, "feasible": len(curve), "reused": 0,
                                "seconds": 1.0} for name, curve in curves.items()}}


def _bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_warmstart", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _summarise(jobs, trials):
    return _bench().summarise(jobs, trials, [trials])


def test_constrained_searches_on_fewer_seeds_are_compared_on_those_seeds_only():
    # Seed 0 ran the constrained searches too (--limit-seeds 0); seed 1 did not.
    plain = {"warm": [0.8, 0.9, 0.9], "cold": [0.7, 0.8, 0.85], "random": [0.6, 0.7, 0.7]}
    limited = {"warm@limit": [None, 0.6, 0.6], "cold@limit": [0.5, 0.7, 0.7], "random@limit": [None, None, None]}
    summary = _summarise([_job(0, {**plain, **limited}), _job(1, plain)], trials=3)
    (row,) = summary["datasets"]
    assert row["searches"]["warm"]["seeds"] == 2 and row["searches"]["warm@limit"]["seeds"] == 1
    assert row["searches"]["warm"]["per_seed"] == {"wins": 2, "ties": 0, "losses": 0, "reached": 2,
                                                   "reached_within_se": 2}
    assert row["searches"]["warm@limit"]["per_seed"]["losses"] == 1
    assert row["searches"]["warm@limit"]["to_reach_cold"] is None


def test_a_dataset_warm_never_reaches_is_not_counted_as_reached_on_a_short_budget():
    summary = _summarise([_job(0, {"warm": [0.5, 0.6], "cold": [0.7, 0.8], "random": [0.5, 0.5]})], trials=2)
    assert summary["warm_reached"] == 0 and not summary["met"]


def test_report_only_tables_the_finished_jobs_and_names_the_rest(tmp_path, shared_data, capsys):
    bench = _bench()
    work, out = tmp_path / "work", tmp_path / "out.json"
    curves = {"warm": [0.8] * 25, "cold": [0.7] * 25, "random": [0.6] * 25}
    settings = {"base": str(tmp_path), "trials": 25, "latency_ms": None, "families": None,
                "strategies": bench.STRATEGIES}
    for seed, trials in ((0, 25), (1, 4)):  # seed 1 ran with other settings: not taken as done
        (work / f"hepatitis-seed{seed}").mkdir(parents=True)
        (work / f"hepatitis-seed{seed}" / bench.RESULT_FILE).write_text(json.dumps(
            {"settings": {**settings, "trials": trials}, **_job(seed, curves)}))
    rc = bench.main(["--datasets", "hepatitis", "--seeds", "0,1", "--latency-ms", "0", "--work", str(work),
                     "--base", str(tmp_path), "--report-only", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0 and "jobs not run: hepatitis seed 1" in captured.err
    assert "d | binary | roc_auc | 1 |" in captured.out
    assert json.loads(out.read_text())["not_run"] == [{"dataset": "hepatitis", "seed": 1}]
