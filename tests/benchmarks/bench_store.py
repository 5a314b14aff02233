"""Store benchmark: ingest rate, a warm nearest-datasets query, concurrent ingest, CLI start-up.

Prints metakb's numbers beside their targets and beside an anchor measured in the same run
(the same work done by pyarrow or DuckDB directly, without the store), and writes JSON.

    python tests/benchmarks/bench_store.py                # full size: 1M trials, 10k datasets
    python tests/benchmarks/bench_store.py --quick        # small sizes, to check it runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kb import KnowledgeBase
from kb.ingest import ingest

N_FEATURES = 20
N_CONFIGS = 2000

# The question a recommender asks: the best 20 trials of each of the 50 datasets nearest to a
# query's meta-features (Euclidean on min-max-scaled values; names either side lacks drop out).
NEAREST_BEST_SQL = """
WITH q(name, value) AS (SELECT unnest(?::VARCHAR[]), unnest(?::DOUBLE[])),
ranges AS (SELECT name, min(value) AS lo, max(value) - min(value) AS span
           FROM {metafeatures} GROUP BY name),
near AS (
    SELECT m.dataset_id, sqrt(sum(((m.value - q.value) / nullif(r.span, 0)) ^ 2)) AS distance
    FROM {metafeatures} m JOIN q USING (name) JOIN ranges r USING (name)
    GROUP BY m.dataset_id ORDER BY distance LIMIT 50)
SELECT * FROM (
    SELECT t.dataset_id, near.distance, t.trial_id, t.config, t.score,
           row_number() OVER (PARTITION BY t.dataset_id ORDER BY
               CASE t.direction WHEN 'maximize' THEN t.score ELSE -t.score END DESC) AS rank
    FROM {trials} t JOIN near USING (dataset_id) WHERE t.status = 'ok')
WHERE rank <= 20 ORDER BY distance, rank
"""


def trial_batch(n: int, start: int, n_datasets: int, hardware_id: str, seed: int) -> pa.Table:
    """``n`` distinct, complete trials (rows ``start``..``start+n``) over ``n_datasets`` datasets."""
    rng = np.random.default_rng(seed)
    configs = np.array([f'{{"family":"random_forest","max_depth":{i % 30},"n_estimators":{(i // 30) * 10 + 10}}}'
                        for i in range(N_CONFIGS)])
    rows = np.arange(start, start + n)
    return pa.table({
        "dataset_id": pa.array(np.char.mod("%016x", rows % n_datasets)),
        "hardware_id": pa.array([hardware_id] * n),
        "config": pa.array(configs[rng.integers(0, N_CONFIGS, n)]),
        "model_family": pa.array(["random_forest"] * n),
        "metric": pa.array(["accuracy"] * n),
        "direction": pa.array(["maximize"] * n),
        "status": pa.array(["ok"] * n),
        "source": pa.array(["bench"] * n),
        "seed": pa.array(rows, pa.int64()),  # unique: every row is its own trial
        "score": rng.random(n),
        "score_std": rng.random(n) / 10,
        "train_seconds": rng.random(n) * 10,
        "latency_p50_ms": rng.random(n),
        "latency_p95_ms": rng.random(n) * 2,
        "peak_memory_mb": rng.random(n) * 100,
        "model_bytes": pa.array(rng.integers(1_000, 10_000_000, n), pa.int64()),
        "library_versions": pa.array(['{"onnxruntime":"1.31.1","scikit-learn":"1.9.1"}'] * n),
    })


def hardware_id(kb: KnowledgeBase) -> str:
    kb.append("hardware", [{"name": "bench-cpu", "kind": "cpu", "source": "bench"}], on_conflict="keep")
    return kb.query("SELECT hardware_id FROM hardware WHERE name = 'bench-cpu'").column(0)[0].as_py()


def bench_ingest(work: Path, n_trials: int, n_datasets: int) -> dict:
    kb = KnowledgeBase.create(work / "ingest.kb")
    source = work / "trials.parquet"
    pq.write_table(trial_batch(n_trials, 0, n_datasets, hardware_id(kb), seed=1), source)

    start = time.perf_counter()
    [report] = ingest(kb, source)
    seconds = time.perf_counter() - start
    assert report.added == n_trials, report

    start = time.perf_counter()
    [again] = ingest(kb, source)
    again_seconds = time.perf_counter() - start
    assert again.already_present == n_trials and again.added == 0, again

    # Anchor: the least any ingest does, reading the file and writing it back as Parquet.
    start = time.perf_counter()
    pq.write_table(pq.read_table(source), work / "copy.parquet", compression="snappy")
    copy_seconds = time.perf_counter() - start
    return {
        "rows": n_trials,
        "seconds": seconds,
        "rows_per_s": n_trials / seconds,
        "reingest_seconds": again_seconds,
        "reingest_rows_per_s": n_trials / again_seconds,
        "anchor_read_write_rows_per_s": n_trials / copy_seconds,
    }


def bench_query(work: Path, n_trials: int, n_datasets: int, n_shards: int) -> dict:
    kb = KnowledgeBase.create(work / "query.kb")
    hw = hardware_id(kb)
    rng = np.random.default_rng(7)
    ids = np.char.mod("%016x", np.arange(n_datasets))
    kb.append("datasets", pa.table({
        "dataset_id": ids, "name": np.char.add("dataset-", ids), "task": ["binary"] * n_datasets,
        "target": ["target"] * n_datasets, "n_rows": rng.integers(100, 100_000, n_datasets),
        "n_features": rng.integers(2, 500, n_datasets), "source": ["bench"] * n_datasets,
    }))
    names = [f"feature_{j:02d}" for j in range(N_FEATURES)]
    kb.append("metafeatures", pa.table({
        "dataset_id": np.repeat(ids, N_FEATURES), "name": np.tile(names, n_datasets),
        "value": rng.lognormal(0, 2, n_datasets * N_FEATURES),
        "extractor": ["bench"] * (n_datasets * N_FEATURES),
        "extractor_version": ["1"] * (n_datasets * N_FEATURES),
    }))
    per_shard = n_trials // n_shards
    for shard in range(n_shards):  # as if written by n_shards separate runs
        kb.append("trials", trial_batch(per_shard, shard * per_shard, n_datasets, hw, seed=100 + shard))

    query = rng.lognormal(0, 2, N_FEATURES)
    params = [names, query.tolist()]
    sql = NEAREST_BEST_SQL.format(metafeatures="metafeatures", trials="trials")
    fresh = KnowledgeBase(kb.root)
    start = time.perf_counter()
    first = fresh.query(sql, params)
    cold_ms = (time.perf_counter() - start) * 1000
    warm = []
    for _ in range(10):
        start = time.perf_counter()
        result = fresh.query(sql, params)
        warm.append((time.perf_counter() - start) * 1000)
    assert result.num_rows == first.num_rows == 50 * 20, result.num_rows

    # Anchor: the same SQL in plain DuckDB over one Parquet file per table, no store around it.
    for table in ("trials", "metafeatures"):
        pq.write_table(kb.read(table), work / f"{table}.parquet")
    con = duckdb.connect()
    plain = NEAREST_BEST_SQL.format(metafeatures=f"read_parquet('{work / 'metafeatures.parquet'}')",
                                    trials=f"read_parquet('{work / 'trials.parquet'}')")
    con.execute(plain, params).fetchall()
    anchor = []
    for _ in range(10):
        start = time.perf_counter()
        con.execute(plain, params).fetchall()
        anchor.append((time.perf_counter() - start) * 1000)
    return {
        "datasets": n_datasets, "trials": n_trials, "trial_shards": n_shards,
        "cold_ms": cold_ms, "warm_median_ms": statistics.median(warm), "warm_max_ms": max(warm),
        "anchor_plain_duckdb_median_ms": statistics.median(anchor),
    }


def bench_concurrent(work: Path, n_trials: int, n_datasets: int, n_workers: int = 4) -> dict:
    kb = KnowledgeBase.create(work / "concurrent.kb")
    hw = hardware_id(kb)
    per_worker = n_trials // n_workers
    files = []
    for w in range(n_workers):
        path = work / f"trials-worker{w}.parquet"
        pq.write_table(trial_batch(per_worker, w * per_worker, n_datasets, hw, seed=200 + w), path)
        files.append(path)
    code = textwrap.dedent("""
        import sys
        from kb import KnowledgeBase
        from kb.ingest import ingest
        [report] = ingest(KnowledgeBase(sys.argv[1]), sys.argv[2])
        assert report.added == int(sys.argv[3]), report
    """)
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code, str(kb.root), str(f), str(per_worker)])
             for f in files]
    codes = [p.wait() for p in procs]
    seconds = time.perf_counter() - start
    assert codes == [0] * n_workers, codes
    total, distinct = KnowledgeBase(kb.root).query(
        "SELECT count(*), count(DISTINCT trial_id) FROM trials").to_pylist()[0].values()

    # Anchor: the same files ingested one after another by one process.
    serial = KnowledgeBase.create(work / "serial.kb")
    start = time.perf_counter()
    for f in files:
        ingest(serial, f)
    serial_seconds = time.perf_counter() - start
    return {
        "workers": n_workers, "rows": n_workers * per_worker, "seconds": seconds,
        "rows_per_s": n_workers * per_worker / seconds, "rows_stored": total,
        "distinct_trial_ids": distinct, "lost_or_duplicated": (n_workers * per_worker) - distinct + (total - distinct),
        "anchor_serial_rows_per_s": n_workers * per_worker / serial_seconds,
    }


def bench_startup(repeats: int = 10) -> dict:
    kb_script = shutil.which("kb")
    if kb_script is None:
        raise SystemExit("the `kb` command is not on PATH; install metakb first (see README)")

    def median_seconds(cmd):
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            runs.append(time.perf_counter() - start)
        return statistics.median(runs)

    return {
        "kb_help_median_s": median_seconds([kb_script, "--help"]),
        "anchor_python_startup_median_s": median_seconds([sys.executable, "-c", "pass"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: check that it runs")
    parser.add_argument("--out", type=Path, default=Path("bench-results/store.json"))
    args = parser.parse_args()
    n_trials, n_datasets = (20_000, 500) if args.quick else (1_000_000, 10_000)

    with tempfile.TemporaryDirectory(prefix="metakb-bench-") as tmp:
        work = Path(tmp)
        results = {
            "ingest": bench_ingest(work, n_trials, n_datasets),
            "query": bench_query(work, n_trials, n_datasets, n_shards=10),
            "concurrent": bench_concurrent(work, n_trials, n_datasets),
            "startup": bench_startup(3 if args.quick else 10),
        }
    results["machine"] = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version(), "duckdb": duckdb.__version__,
                          "pyarrow": pa.__version__, "quick": args.quick}
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")


def report(r: dict) -> None:
    i, q, c, s = r["ingest"], r["query"], r["concurrent"], r["startup"]
    rows = [
        ("ingest trials from Parquet (rows/s)", f"{i['rows_per_s']:,.0f}", ">= 300,000",
         f"{i['anchor_read_write_rows_per_s']:,.0f} (read + write Parquet, no checks)",
         i["rows_per_s"] >= 300_000),
        ("re-ingest, all already present (rows/s)", f"{i['reingest_rows_per_s']:,.0f}", "-", "-", None),
        (f"warm query: best 20 of 50 nearest ({q['datasets']:,} datasets, {q['trials']:,} trials, "
         f"{q['trial_shards']} shards), median ms", f"{q['warm_median_ms']:.1f}", "< 100",
         f"{q['anchor_plain_duckdb_median_ms']:.1f} (plain DuckDB on one file)", q["warm_median_ms"] < 100),
        ("  same query, cold (first in a new process), ms", f"{q['cold_ms']:.1f}", "-", "-", None),
        (f"{c['workers']}-process concurrent ingest (rows/s)", f"{c['rows_per_s']:,.0f}", "no loss",
         f"{c['anchor_serial_rows_per_s']:,.0f} (one process, files in turn)", c["lost_or_duplicated"] == 0),
        ("  rows lost or duplicated", f"{c['lost_or_duplicated']}", "0", "-", c["lost_or_duplicated"] == 0),
        ("`kb --help` start-up, median s", f"{s['kb_help_median_s']:.3f}", "< 0.5",
         f"{s['anchor_python_startup_median_s']:.3f} (python -c pass)", s["kb_help_median_s"] < 0.5),
    ]
    widths = [max(len(str(row[k])) for row in rows) for k in range(4)]
    header = ("measure", "metakb", "target", "anchor")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    print(f"store benchmark on {r['machine']['cpu_count']} cores ({'quick' if r['machine']['quick'] else 'full'})")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  met")
    for row in rows:
        met = "" if row[4] is None else ("yes" if row[4] else "NO")
        print("  ".join(str(v).ljust(w) for v, w in zip(row[:4], widths)) + f"  {met}")


if __name__ == "__main__":
    main()
