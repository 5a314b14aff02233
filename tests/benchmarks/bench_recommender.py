"""Recommender quality, leave-one-task-out over TabRepo, and the latency of a query.

    python tests/benchmarks/bench_recommender.py [--quick] [--out bench-results/recommender.json]

TabRepo's matrix (``../shared/data/tabrepo``: 62 OpenML tasks x 104 LightGBM configurations)
is ingested into a fresh KB. Each task in turn is held out: every method ranks the 104
configurations for it from the other 61 tasks alone (their trials and their meta-features;
the held-out task contributes only its own meta-features, as the query). For k = 1, 3, 5
and 10 the table gives the mean over tasks of the best normalized error among the top k
(per task, (error - min) / (max - min) over its 104 configurations: 0 = its best) and, in
brackets, the mean rank of that best one among the 104 (1 = the task's best).

- metakb: ``kb.recommend.recommend(kb, dataset=task, exclude_datasets=[task])``, as
  ``kb search`` calls it, and the same with the kernel bandwidth halved and doubled (how much
  the result hangs on that one setting).
- (a) auto-sklearn 1.0: L1 distance on min-max-scaled meta-features (every OpenML quality the
  KB holds, scaled over the 61 tasks), the best configuration of each nearest task in turn.
- (b) FLAML zero-shot: the nearest task by Euclidean distance on 4 meta-features (instances,
  features, classes, share of numeric features), each centred on the 61 tasks' median and
  divided by their interquartile range; that task's configurations, best first.
- (c) TabRepo zero-shot: the greedy portfolio minimizing the mean normalized error of its
  best member over the 61 tasks, meta-features ignored (``kb.recommend.portfolio``).
- (d) single best: the configurations with the lowest mean normalized error over the 61.
- (e) random: the expectation over uniformly random top-k sets (exact, not sampled).

Then the latency of a query on the ingested KB: ``recommend`` called in a warm process (the
KB open, imports done), and ``kb recommend DATASET --json`` as a command (process start-up,
imports and the query; its first run, with cold caches, is reported apart).

``--quick`` holds out 6 tasks and repeats the timings less (the smoke test in tests/).
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
import time
from math import comb
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from kb import KnowledgeBase  # noqa: E402
from kb.ingest import ingest  # noqa: E402
from kb.metafeature_store import stored_vectors  # noqa: E402
from kb.recommend import portfolio, recommend  # noqa: E402
from kb.recommend.evidence import read_outcomes  # noqa: E402

SHARED_DATA = Path(os.environ.get("METAKB_SHARED_DATA", REPO.parent / "shared" / "data"))
KS = (1, 3, 5, 10)
BANDWIDTHS = (0.5, 2.0)  # beside the default, for the sensitivity rows
FLAML_FEATURES = ("NumberOfInstances", "NumberOfFeatures", "NumberOfClasses")


# -- the anchors: each ranks column indices of the matrix for the held-out task ---------------


def askl_anchor(train: list[int], held_out: int, matrix: np.ndarray, features: np.ndarray) -> list[int]:
    known = features[train]
    low, high = np.nanmin(known, axis=0), np.nanmax(known, axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = (features - low) / span
    distance = np.nansum(np.abs(scaled[train] - scaled[held_out]), axis=1)
    ranked: list[int] = []
    for task in np.array(train)[np.argsort(distance, kind="stable")]:
        best = int(np.argmin(matrix[task]))
        if best not in ranked:
            ranked.append(best)
    return ranked


def flaml_anchor(train: list[int], held_out: int, matrix: np.ndarray, features: np.ndarray) -> list[int]:
    known = features[train]
    centre = np.median(known, axis=0)
    iqr = np.percentile(known, 75, axis=0) - np.percentile(known, 25, axis=0)
    scaled = (features - centre) / np.where(iqr > 0, iqr, 1.0)
    distance = np.sqrt(((scaled[train] - scaled[held_out]) ** 2).sum(axis=1))
    neighbour = train[int(np.argmin(distance))]
    return list(np.argsort(matrix[neighbour], kind="stable"))


def single_best_anchor(train: list[int], matrix: np.ndarray) -> list[int]:
    return list(np.argsort(matrix[train].mean(axis=0), kind="stable"))


def random_expectation(errors: np.ndarray, ranks: np.ndarray, k: int) -> tuple[float, float]:
    """Expected best normalized error and best rank of a uniformly random k-subset:
    the j-th smallest of n is the best of the subset with probability C(n-j, k-1) / C(n, k)."""
    n = len(errors)
    p = np.array([comb(n - j, k - 1) for j in range(1, n + 1)], dtype=float) / comb(n, k)
    return float(p @ np.sort(errors)), float(p @ np.sort(ranks))


# -- the evaluation -----------------------------------------------------------------------------


def evaluate(kb, tasks: list[int] | None) -> dict:
    from scipy.stats import rankdata

    outcomes = read_outcomes(kb)
    datasets = {r["dataset_id"]: r
                for r in kb.query("SELECT dataset_id, name, task FROM datasets").to_pylist()}
    matrix = outcomes.error  # tasks x configs, normalized error
    ranks = np.vstack([rankdata(row, method="min") for row in matrix])  # 1 = the task's best
    vectors = stored_vectors(kb).vectors
    quality_names = sorted({name for v in vectors.values() for name in v})
    features = np.array([[vectors[d].get(q, np.nan) for q in quality_names] for d in outcomes.datasets])
    flaml = np.array([[vectors[d].get(q, 0.0) for q in FLAML_FEATURES]
                      + [vectors[d]["NumberOfNumericFeatures"] / vectors[d]["NumberOfFeatures"]]
                      for d in outcomes.datasets])
    column = {c: j for j, c in enumerate(outcomes.configs)}
    held_out = range(len(matrix)) if tasks is None else tasks
    methods = ["metakb"] + [f"metakb, bandwidth x{b:g}" for b in BANDWIDTHS] + [
        "(a) auto-sklearn 1.0", "(b) FLAML zero-shot", "(c) TabRepo portfolio",
        "(d) single best", "(e) random"]
    best = {m: {k: [] for k in KS} for m in methods}
    rank = {m: {k: [] for k in KS} for m in methods}
    for t in held_out:
        dataset_id = outcomes.datasets[t]
        train = [i for i in range(len(matrix)) if i != t]
        query = dict(dataset=dataset_id, task=datasets[dataset_id]["task"], k=max(KS),
                     exclude_datasets=[dataset_id])
        lists = {"metakb": [column[r.config_id] for r in recommend(kb, **query)]}
        for b in BANDWIDTHS:
            lists[f"metakb, bandwidth x{b:g}"] = [column[r.config_id] for r in
                                                  recommend(kb, **query, bandwidth=b)]
        lists["(a) auto-sklearn 1.0"] = askl_anchor(train, t, matrix, features)
        lists["(b) FLAML zero-shot"] = flaml_anchor(train, t, matrix, flaml)
        lists["(c) TabRepo portfolio"] = [column[r.config_id] for r in portfolio(
            kb, task=datasets[dataset_id]["task"], k=max(KS), exclude_datasets=[dataset_id])]
        lists["(d) single best"] = single_best_anchor(train, matrix)
        for k in KS:
            for method, ranked in lists.items():
                top = ranked[:k]
                best[method][k].append(float(matrix[t, top].min()))
                rank[method][k].append(float(ranks[t, top].min()))
            expected_best, expected_rank = random_expectation(matrix[t], ranks[t], k)
            best["(e) random"][k].append(expected_best)
            rank["(e) random"][k].append(expected_rank)
    return {"tasks": len(list(held_out)), "configs": len(outcomes.configs),
            "held_out": [datasets[outcomes.datasets[t]]["name"] for t in held_out],
            "methods": {m: {str(k): {"normalized_error": float(np.mean(best[m][k])),
                                     "rank": float(np.mean(rank[m][k]))} for k in KS}
                        for m in methods}}


def time_queries(kb, kb_path: Path, repeats: int) -> dict:
    rows = kb.query("SELECT dataset_id, name, task FROM datasets ORDER BY name").to_pylist()
    recommend(kb, dataset=rows[0]["dataset_id"], task=rows[0]["task"])  # imports, caches
    warm = []
    for i in range(repeats):
        row = rows[i % len(rows)]
        start = time.perf_counter()
        recommend(kb, dataset=row["dataset_id"], task=row["task"], k=10,
                  exclude_datasets=[row["dataset_id"]])
        warm.append(time.perf_counter() - start)
    command = [shutil.which("kb") or "kb", "--kb", str(kb_path), "recommend", rows[0]["name"], "--json"]
    cli = []
    for _ in range(max(2, repeats // 5) + 1):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        cli.append(time.perf_counter() - start)
    return {"api_warm_median_ms": 1000 * statistics.median(warm),
            "api_warm_max_ms": 1000 * max(warm), "api_repeats": repeats,
            "cli_first_ms": 1000 * cli[0], "cli_median_ms": 1000 * statistics.median(cli[1:]),
            "cli_repeats": len(cli) - 1}


def print_table(results: dict) -> None:
    quality, timing = results["quality"], results["latency"]
    methods = quality["methods"]
    print(f"\nleave-one-task-out over {quality['tasks']} TabRepo tasks x {quality['configs']} "
          f"LightGBM configurations: mean normalized error of the best of the top k (mean rank "
          f"of that one among {quality['configs']}); lower is better\n")
    print(f"{'method':<28}" + "".join(f"{'k=' + str(k):>17}" for k in KS))
    for method, by_k in methods.items():
        print(f"{method:<28}" + "".join(
            f"{by_k[str(k)]['normalized_error']:>10.4f} ({by_k[str(k)]['rank']:>4.1f})" for k in KS))
    anchors = [m for m in methods if m.startswith("(")]
    verdicts = []
    for k in KS:
        best_anchor = min(anchors, key=lambda m: methods[m][str(k)]["normalized_error"])
        ours = methods["metakb"][str(k)]["normalized_error"]
        theirs = methods[best_anchor][str(k)]["normalized_error"]
        verdicts.append(f"k={k}: {'ahead of' if ours < theirs else 'BEHIND'} {best_anchor} by "
                        f"{abs(theirs - ours):.4f}")
    print("\ntarget: metakb ahead of the best anchor at every k\n  " + "\n  ".join(verdicts))
    print(f"\nquery latency on the ingested KB (target < 200 ms warm; load average "
          f"{results['machine']['load_before']} before, {results['machine']['load_after']} after "
          f"on {results['machine']['cpu_count']} cores):")
    print(f"  recommend() in a warm process, median of {timing['api_repeats']}: "
          f"{timing['api_warm_median_ms']:.1f} ms (max {timing['api_warm_max_ms']:.1f} ms)")
    print(f"  `kb recommend DATASET --json` as a command, median of {timing['cli_repeats']}: "
          f"{timing['cli_median_ms']:.0f} ms (first run {timing['cli_first_ms']:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 held-out tasks, fewer timing repeats")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results" / "recommender.json")
    parser.add_argument("--data", type=Path, default=SHARED_DATA / "tabrepo")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"TabRepo data not found at {args.data} (set METAKB_SHARED_DATA or --data)")
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as folder:
        kb_path = Path(folder) / "kb"
        with KnowledgeBase.create(kb_path) as kb:
            rejected = [r.rejected for r in ingest(kb, args.data, format="tabrepo") if r.rejected]
            if rejected:
                sys.exit("ingest failed: " + "; ".join(rejected))
            quality = evaluate(kb, [0, 10, 20, 30, 40, 50] if args.quick else None)
            latency = time_queries(kb, kb_path, 10 if args.quick else 50)
    results = {"quality": quality, "latency": latency,
               "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version(), "quick": args.quick,
                           "load_before": load_before, "load_after": round(os.getloadavg()[0], 2)}}
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
