"""Does warm-starting from the KB pay? Leave-one-dataset-out over PMLB datasets no part of
metakb was built or tuned on.

For every dataset and seed, a fresh KB holds the shipped baseline (``kb init --bundled``)
and the dataset, which has no trials: the baseline without the held-out dataset. Three
searches then spend the same budget of trials on it under cpu-1t:

- ``warm``: SMAC warm-started with the recommender's configurations (``kb search``);
- ``cold``: SMAC from its Sobol design alone (``kb search --cold``);
- ``random``: SMAC's random search (``kb search --cold --optimizer random``);

then the same three again under a latency limit (p50 at batch 1 on cpu-1t). Reported per
dataset, averaged over seeds: the best cross-validated score after 5, 10 and the full budget
of trials; how many trials warm and random need to reach cold's final best; wins, ties and
losses of warm against cold at the end; under the limit, the feasible models found and their
best score. The target: warm reaches cold's full-budget best within 10 trials on at least
70% of the datasets. Writes bench-results/warmstart.json.

    python tests/benchmarks/bench_warmstart.py                      # 22 datasets x 3 seeds x 25 trials x 6 searches
    python tests/benchmarks/bench_warmstart.py --datasets hepatitis,tae --seeds 0
    python tests/benchmarks/bench_warmstart.py --work /tmp/ws       # keep the KBs: re-running reuses finished trials
    python tests/benchmarks/bench_warmstart.py --quick              # 1 dataset, 4 trials: a smoke test
    python tests/benchmarks/bench_warmstart.py --work /tmp/ws --report-only   # the tables of the jobs finished so far

Each (dataset, seed) is one job in a process of its own (``--jobs`` at once); its searches
run their trials one at a time in that process (no per-trial child process: the datasets are
small, and the scores are the same), so every search is reproducible from its seed. Trials
already in a job's KB (same dataset, configuration, seed and hardware) are reused, not re-run:
an interrupted benchmark given the same --work folder picks up where it stopped, and a job
that finished leaves its result beside its KB, so it is not run again.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PMLB = REPO.parent / "shared" / "data" / "pmlb"
# Small and mid-sized PMLB datasets of each task that are neither bundled (the baseline holds
# them) nor used while building metakb (bench_search.py's and the warm-start pilot's).
DATASETS = (
    "hepatitis", "glass2", "backache", "prnn_crabs", "analcatdata_lawsuit", "spect", "profb", "tokyo1",
    "tae", "flags", "new_thyroid", "penguins", "analcatdata_germangss", "soybean",
    "695_chatfield_4", "556_analcatdata_apnea2", "557_analcatdata_apnea1", "210_cloud",
    "678_visualizing_environmental", "579_fri_c0_250_5", "613_fri_c3_250_5", "631_fri_c1_500_5",
)
USED_BEFORE = ("bupa", "collins", "1030_ERA", "saheart", "monk2", "schizo", "analcatdata_dmft",
               "690_visualizing_galaxy", "607_fri_c4_1000_50")
STRATEGIES = {"warm": dict(warm_start=5), "cold": dict(warm_start=0),
              "random": dict(warm_start=0, optimizer="random")}
CHECKPOINTS = (5, 10, 25)
REACH_WITHIN = 10
RESULT_FILE = "result.json"
TARGET_SHARE = 0.70
LATENCY_LIMIT_MS = 0.015  # on this 2-core machine about 1.4x a linear model: excludes k-NN, large forests and SVMs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--latency-ms", type=float, default=LATENCY_LIMIT_MS,
                        help="the latency limit of the constrained searches (0: skip them)")
    parser.add_argument("--limit-seeds", help="the seeds of the constrained searches (default: --seeds); "
                                              "fewer halves the run time")
    parser.add_argument("--jobs", type=int, default=2, help="(dataset, seed) jobs at once")
    parser.add_argument("--work", type=Path, help="keep the per-job KBs here (resumable)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/warmstart.json"))
    parser.add_argument("--quick", action="store_true", help="1 dataset, 1 seed, 4 trials, fast families")
    parser.add_argument("--warm-start", type=int, default=STRATEGIES["warm"]["warm_start"],
                        help="configurations the warm search starts from")
    parser.add_argument("--base", type=Path, help="a KB to start every job from instead of the "
                                                  "shipped baseline (which must not hold the datasets)")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: the tables of the jobs already finished in --work")
    parser.add_argument("--tuning", action="store_true",
                        help="allow the datasets metakb was tuned on: a development run, not a result")
    args = parser.parse_args(argv)
    if not PMLB.is_dir():
        print(f"skipped: {PMLB} not found (the shared data)")
        return 0
    names = [n for n in args.datasets.split(",") if n]
    seeds = [int(s) for s in args.seeds.split(",")]
    limit_seeds = seeds if args.limit_seeds is None else [int(s) for s in args.limit_seeds.split(",") if s]
    families = None
    if args.quick:
        names, seeds, args.trials, families = names[:1], seeds[:1], 4, ("linear", "random_forest")
    used = set(names) & (set(USED_BEFORE) | _bundled_names())
    strategies = {**STRATEGIES, "warm": {**STRATEGIES["warm"], "warm_start": args.warm_start}}
    if used and args.tuning:
        print(f"a development run on {', '.join(sorted(used))}, which metakb was tuned on: "
              f"not a held-out result", file=sys.stderr)
    elif used:
        print(f"refused: {', '.join(sorted(used))} helped build metakb; a benchmark must hold out "
              f"datasets nothing was tuned on", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="metakb-bench-warmstart-"))
    base = args.base or _base_kb(work / "base")
    jobs = [dict(base=str(base), folder=str(work / f"{name}-seed{seed}"), dataset=name, seed=seed,
                 trials=args.trials, families=families,
                 latency_ms=(args.latency_ms or None) if seed in limit_seeds else None,
                 strategies=strategies)
            for name in names for seed in seeds]
    started = time.perf_counter()
    results = [r for r in map(finished, jobs) if r is not None]
    todo = [j for j in jobs if finished(j) is None]
    not_run = []
    if results:
        print(f"{len(results)} of {len(jobs)} jobs already finished in {work}", file=sys.stderr)
    if args.report_only:
        if not results:
            print(f"nothing to report: no finished job in {work}", file=sys.stderr)
            return 1
        if todo:
            print(f"a partial report: {len(todo)} jobs not run: "
                  + ", ".join(f"{j['dataset']} seed {j['seed']}" for j in todo), file=sys.stderr)
        not_run, todo = [{"dataset": j["dataset"], "seed": j["seed"]} for j in todo], []
    # Each job's process starts with a fixed hash salt, which SMAC's order of candidates
    # depends on (as `kb` itself does): a job is reproducible from its seed.
    os.environ["PYTHONHASHSEED"] = "0"
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs, maxtasksperchild=1) as pool:
        for ran, result in enumerate(pool.imap_unordered(run_job, todo), start=1):
            results.append(result)
            done, elapsed = len(results), time.perf_counter() - started
            print(f"[{done}/{len(jobs)}] {result['dataset']} seed {result['seed']}: "
                  + ", ".join(f"{k} {_fmt(v['curve'][-1])}" for k, v in result["searches"].items())
                  + f" ({result['seconds']:.0f} s; {elapsed / 60:.0f} min so far, about "
                    f"{elapsed / ran * (len(jobs) - done) / 60:.0f} min to go)",
                  file=sys.stderr, flush=True)
    # The budget is always the last checkpoint: the target and the wins are judged there.
    summary = summarise(results, args.trials, sorted({c for c in CHECKPOINTS if c < args.trials} | {args.trials}))
    print_tables(summary, args.latency_ms)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"trials": args.trials, "seeds": seeds, "latency_limit_ms": args.latency_ms,
                                    "limit_seeds": limit_seeds, "not_run": not_run,
                                    "seconds": time.perf_counter() - started, "summary": summary,
                                    "jobs": results}, indent=2, default=str))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _bundled_names() -> set[str]:
    from kb.datasets import bundled

    return {e.name for e in bundled()}


def _base_kb(folder: Path) -> Path:
    """The shipped baseline, as `kb init --bundled` installs it (made once, copied per job)."""
    if (folder / "meta").is_dir():
        return folder
    from kb import KnowledgeBase
    from kb.cli.dataset_commands import add_bundled
    from kb.datasets import baseline_folder
    from kb.ingest import ingest

    with KnowledgeBase.create(folder) as kb:
        add_bundled(kb, quiet=True)
        ingest(kb, baseline_folder(), format="native", on_conflict="keep")
    return folder


def run_job(job: dict) -> dict:
    """Every search of one dataset and seed, in one KB: the baseline and this dataset."""
    from kb import KnowledgeBase
    from kb.audit.value import best_feasible_so_far
    from kb.datasets import load, register
    from search.constraints import Limits
    from search.execution import Executor
    from search.smac_search import SearchSettings, run_search

    import warnings

    # A pool's processes are daemonic, so scikit-learn runs forests on one thread (as every
    # trial does anyway, train_threads=1) and says so on every fit.
    warnings.filterwarnings("ignore", message="Loky-backed parallel loops")
    folder = Path(job["folder"])
    if not (folder / "meta").is_dir():
        shutil.copytree(job["base"], folder, dirs_exist_ok=True)
    started = time.perf_counter()
    out = {"dataset": job["dataset"], "seed": job["seed"], "searches": {}}
    with KnowledgeBase(folder) as kb, Executor(1) as executor:
        loaded = load(PMLB / f"{job['dataset']}.tsv.gz", target="target")
        record, _ = register(kb, loaded)
        out.update(task=record.task, rows=record.n_rows, features=record.n_features)
        variants = [("", Limits())]
        if job["latency_ms"]:
            variants.append(("@limit", Limits(max_latency_ms=job["latency_ms"])))
        for suffix, limits in variants:
            for strategy, options in job["strategies"].items():
                options = {**options, "warm_start": min(options["warm_start"], job["trials"] // 2)}
                settings = SearchSettings(dataset_id=record.dataset_id, trials=job["trials"],
                                          seed=job["seed"], families=job["families"], limits=limits,
                                          exclude_own_dataset=True, trial_time_s=600.0, **options)
                began = time.perf_counter()
                outcome = run_search(kb, settings, executor=executor, isolate_trials=False)
                first = outcome.trials[0]
                out["metric"], out["direction"] = first.metric, first.direction
                out["searches"][strategy + suffix] = {
                    "curve": best_feasible_so_far(outcome.trials),
                    "spread": _best_spread(outcome.trials),
                    "feasible": len(outcome.feasible), "reused": outcome.reused,
                    "seconds": time.perf_counter() - began,
                    "warm_sources": sorted({w.source for w in outcome.warm_starts}),
                    "families": [t.model_family for t in outcome.trials]}
    out["seconds"] = time.perf_counter() - started
    # Kept beside the job's KB: a re-run (or --report-only) with the same --work takes it as done.
    (folder / RESULT_FILE).write_text(json.dumps({"settings": _settings(job), **out}, default=str))
    return out


def _settings(job: dict) -> dict:
    """What a job's result depends on besides its dataset and seed."""
    return json.loads(json.dumps({k: job[k] for k in ("base", "trials", "latency_ms", "families", "strategies")}))


def finished(job: dict) -> dict | None:
    """The result a job with these settings left in its folder, if any."""
    path = Path(job["folder"]) / RESULT_FILE
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    return result if result.pop("settings", None) == _settings(job) else None


def _best_spread(trials) -> float | None:
    """The CV standard error (fold spread / sqrt(5)) of the search's final best trial."""
    feasible = [t for t in trials if t.status == "ok" and t.score is not None]
    if not feasible:
        return None
    sign = 1 if feasible[0].direction == "maximize" else -1
    best = max(feasible, key=lambda t: sign * t.score)
    return (best.score_std or 0.0) / 5 ** 0.5


# -- the tables --------------------------------------------------------------------------------


def _better(a, b, direction: str) -> bool:
    """a at least as good as b (None is worse than anything)."""
    if a is None:
        return False
    if b is None:
        return True
    return a >= b if direction == "maximize" else a <= b


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _fmt(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def trials_to_reach(curve, target, direction) -> int | None:
    for i, value in enumerate(curve, start=1):
        if _better(value, target, direction):
            return i
    return None


def summarise(results: list[dict], trials: int, checkpoints: list[int]) -> dict:
    """Per dataset: seed-averaged best-so-far curves of every search, and the comparisons."""
    by_dataset: dict = {}
    for r in results:
        by_dataset.setdefault(r["dataset"], []).append(r)
    rows = []
    for name, runs in sorted(by_dataset.items(), key=lambda kv: (kv[1][0]["task"], kv[0])):
        direction = runs[0]["direction"]
        row = {"dataset": name, "task": runs[0]["task"], "metric": runs[0]["metric"],
               "direction": direction, "seeds": len(runs), "searches": {}}
        # Every search of every seed; the constrained ones may run on fewer seeds (--limit-seeds).
        for search in dict.fromkeys(k for r in runs for k in r["searches"]):
            having = [r for r in runs if search in r["searches"]]
            curves = [r["searches"][search]["curve"] for r in having]
            # None until every seed has a feasible model: a mean over whichever seeds have one
            # so far would let one lucky seed stand for all.
            mean_curve = [None if any((c[i] if i < len(c) else c[-1]) is None for c in curves)
                          else _mean([c[i] if i < len(c) else c[-1] for c in curves]) for i in range(trials)]
            row["searches"][search] = {
                "mean_curve": mean_curve,
                "seeds": len(having),
                "feasible": _mean([r["searches"][search]["feasible"] for r in having]),
                "seconds": sum(r["searches"][search]["seconds"] for r in having),
                "reused": sum(r["searches"][search]["reused"] for r in having)}
        for suffix in ("", "@limit"):
            cold = row["searches"].get("cold" + suffix)
            if cold is None:
                continue
            target = cold["mean_curve"][-1]
            for strategy in ("warm", "random"):
                mine = row["searches"][strategy + suffix]
                mine["to_reach_cold"] = trials_to_reach(mine["mean_curve"], target, direction)
                # Per seed: warm against cold at the end of the budget, and within REACH_WITHIN.
                outcome = {"wins": 0, "ties": 0, "losses": 0, "reached": 0, "reached_within_se": 0}
                for r in (r for r in runs if "cold" + suffix in r["searches"]):
                    a = r["searches"][strategy + suffix]["curve"]
                    b = r["searches"]["cold" + suffix]["curve"]
                    end_a, end_b = a[-1], b[-1]
                    if end_a == end_b:
                        outcome["ties"] += 1
                    elif _better(end_a, end_b, direction):
                        outcome["wins"] += 1
                    else:
                        outcome["losses"] += 1
                    early = a[min(REACH_WITHIN, len(a)) - 1]
                    outcome["reached"] += _better(early, end_b, direction)
                    se = r["searches"]["cold" + suffix]["spread"] or 0.0
                    slack = None if end_b is None else end_b - se if direction == "maximize" else end_b + se
                    outcome["reached_within_se"] += _better(early, slack, direction)
                mine["per_seed"] = outcome
        rows.append(row)
    n = len(rows)
    reached = sum(1 for r in rows if (r["searches"]["warm"]["to_reach_cold"] or 10**9) <= REACH_WITHIN)
    return {"checkpoints": checkpoints, "datasets": rows,
            "warm_reached_within": REACH_WITHIN, "warm_reached": reached, "n_datasets": n,
            "target_share": TARGET_SHARE, "met": n > 0 and reached / n >= TARGET_SHARE}


def print_tables(summary: dict, latency_ms: float) -> None:
    checkpoints = summary["checkpoints"]
    rows = summary["datasets"]
    header = (["dataset", "task", "metric", "seeds"]
              + [f"{s}@{c}" for c in checkpoints for s in ("warm", "cold", "random")]
              + ["warm→cold@end", "random→cold@end", "warm W/T/L"])
    print("\nBest CV score, mean over seeds (higher is better for roc_auc, lower for log_loss and rmse)")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in rows:
        s = r["searches"]
        cells = [r["dataset"], r["task"], r["metric"], str(r["seeds"])]
        for c in checkpoints:
            cells += [_fmt(s[k]["mean_curve"][c - 1]) for k in ("warm", "cold", "random")]
        cells += [str(s["warm"]["to_reach_cold"] or "never"), str(s["random"]["to_reach_cold"] or "never")]
        w = s["warm"]["per_seed"]
        cells.append(f"{w['wins']}/{w['ties']}/{w['losses']}")
        print(" | ".join(cells))
    n = summary["n_datasets"]
    per_seed = [r["searches"]["warm"]["per_seed"] for r in rows]
    total = sum(r["seeds"] for r in rows)
    wins = sum(p["wins"] for p in per_seed)
    ties = sum(p["ties"] for p in per_seed)
    losses = sum(p["losses"] for p in per_seed)
    print(f"\nwarm reaches cold's {checkpoints[-1]}-trial best (seed mean) within "
          f"{summary['warm_reached_within']} trials on {summary['warm_reached']} of {n} datasets "
          f"({summary['warm_reached'] / max(n, 1):.0%}; target {summary['target_share']:.0%}: "
          f"{'met' if summary['met'] else 'not met'})")
    print(f"per seed: within {summary['warm_reached_within']} trials on "
          f"{sum(p['reached'] for p in per_seed)} of {total} runs, or "
          f"{sum(p['reached_within_se'] for p in per_seed)} within one CV standard error of cold's best")
    print(f"warm against cold after {checkpoints[-1]} trials, per seed: {wins} wins, {ties} ties, {losses} losses")
    random_reached = sum(1 for r in rows if (r["searches"]["random"]["to_reach_cold"] or 10**9) <= REACH_WITHIN)
    print(f"random search reaches it within {REACH_WITHIN} trials on {random_reached} of {n}")
    for c in checkpoints:
        ahead = [_better(r["searches"]["warm"]["mean_curve"][c - 1], r["searches"]["cold"]["mean_curve"][c - 1],
                         r["direction"]) for r in rows]
        print(f"after {c} trials warm is at least as good as cold (seed mean) on {sum(ahead)} of {n} datasets")
    rows = [r for r in rows if "cold@limit" in r["searches"]]
    if not rows:
        return
    n = len(rows)
    print(f"\nUnder a latency limit of {latency_ms} ms (p50, batch 1, cpu-1t), "
          f"{rows[0]['searches']['cold@limit']['seeds']} seed(s): feasible models found "
          f"(mean over seeds) and best feasible CV score after {checkpoints[-1]} trials")
    header = ["dataset", "metric", "warm feasible", "cold feasible", "random feasible",
              "warm best", "cold best", "random best", "warm@10", "cold@10", "warm→cold@end"]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in rows:
        s = r["searches"]
        print(" | ".join([r["dataset"], r["metric"]]
                         + [_fmt(s[k + "@limit"]["feasible"], 1) for k in STRATEGIES]
                         + [_fmt(s[k + "@limit"]["mean_curve"][-1]) for k in STRATEGIES]
                         + [_fmt(s[k + "@limit"]["mean_curve"][min(10, len(s[k + '@limit']['mean_curve'])) - 1])
                            for k in ("warm", "cold")]
                         + [str(s["warm@limit"]["to_reach_cold"] or "never")]))
    limited = [r["searches"]["warm@limit"] for r in rows]
    reached = sum(1 for m in limited if (m["to_reach_cold"] or 10**9) <= REACH_WITHIN)
    print(f"\nunder the limit, warm reaches cold's best within {REACH_WITHIN} trials on {reached} of {n} datasets; "
          f"feasible models per search: warm {_fmt(_mean([m['feasible'] for m in limited]), 1)}, "
          f"cold {_fmt(_mean([r['searches']['cold@limit']['feasible'] for r in rows]), 1)}, "
          f"random {_fmt(_mean([r['searches']['random@limit']['feasible'] for r in rows]), 1)}")


if __name__ == "__main__":
    sys.exit(main())
