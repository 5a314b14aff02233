"""Repeatability of the benchmark harness: the same three models, each measured five times in
separate processes.

Each run is a whole trial in its own process (train, export, measure; the measurement in a
fresh process of its own), rounds interleaved so drift over time spreads over all models.
Reports, per model: the median batch-1 and batch-N latency of every run and their max/min
ratio (target <= 1.15), the largest parity error, the time per trial split into train,
export and measure, and whether the score repeats exactly.

    python tests/benchmarks/bench_harness.py                   # 3 models x 5 runs, cpu-1t
    python tests/benchmarks/bench_harness.py --hardware cpu-all --out bench-results/all.json
    python tests/benchmarks/bench_harness.py --quick           # 2 runs of tiny models: a smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

from search.measure import BUSY_CORES  # runs on a busy machine are shown, never dropped

TARGET_RATIO = 1.15
# One tree ensemble, one boosted ensemble and one network, over the three tasks.
MODELS = (
    ("spambase", {"family": "random_forest", "n_estimators": 100}),
    ("wine_quality_red", {"family": "hist_gradient_boosting", "max_iter": 100}),
    ("225_puma8NH", {"family": "mlp", "n_layers": 2, "width": 64, "epochs": 20}),
)
QUICK = {"random_forest": {"n_estimators": 10}, "hist_gradient_boosting": {"max_iter": 10},
         "mlp": {"epochs": 2}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hardware", default="cpu-1t", help="built-in profile to measure on")
    parser.add_argument("--out", type=Path, default=Path("bench-results/harness.json"))
    parser.add_argument("--quick", action="store_true",
                        help="2 runs of small models with few timing repeats (checks it works)")
    args = parser.parse_args(argv)

    from kb.datasets import bundled, load_bundled
    from search.hardware import detect_machine, machine_summary
    from search.profiles import BUILTIN_PROFILES
    from search.trial import TrialLimits, run_trial

    profile = BUILTIN_PROFILES[args.hardware]
    models = MODELS
    if args.quick:
        args.runs = min(args.runs, 2)
        profile = dataclasses.replace(profile, repeats=20, warmup=2, min_measure_seconds=0.05)
        models = tuple((d, {**c, **QUICK[c["family"]]}) for d, c in MODELS)
    data = {e.name: load_bundled(e) for e in bundled() if e.name in {d for d, _ in models}}
    runs: dict[int, list] = {i: [] for i in range(len(models))}
    started = time.perf_counter()
    for round_ in range(1, args.runs + 1):
        for i, (dataset, config) in enumerate(models):
            # One training thread, as a search with a worker per core runs; with more, a
            # busy machine can stretch one trial's OpenMP training many times over, which
            # says nothing about the harness.
            trial = run_trial(data[dataset], config, profile, seed=0,
                              limits=TrialLimits(time_s=900, train_threads=1)).trial
            runs[i].append(trial)
            print(f"round {round_}/{args.runs} {config['family']:<22} {dataset:<17} "
                  f"{trial.status:<6} p50 {_ms(trial.latency_p50_ms)}", file=sys.stderr, flush=True)

    summaries = [_summary(dataset, config, runs[i]) for i, (dataset, config) in enumerate(models)]
    _print_table(summaries, profile.name, args.runs, time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "profile": asdict(profile), "machine": machine_summary(detect_machine()),
        "target_ratio": TARGET_RATIO, "models": summaries,
        "runs": [[asdict(t) for t in runs[i]] for i in range(len(models))],
    }, indent=2, default=str))
    print(f"\nwrote {args.out}")
    return 0


def _summary(dataset: str, config: dict, trials: list) -> dict:
    ok = [t for t in trials if t.status == "ok"]

    def each(name):
        return [getattr(t, name) for t in ok]

    def ratio(values):
        return max(values) / min(values) if values else None

    def median(name):
        return statistics.median(each(name)) if ok else None

    return {
        "model": config["family"], "dataset": dataset, "config": config,
        "runs": len(trials), "ok": len(ok),
        "failures": [t.failure_reason for t in trials if t.status != "ok"],
        "p50_ms_per_run": each("latency_p50_ms"), "ratio_p50": ratio(each("latency_p50_ms")),
        "batch_size": ok[0].batch_size if ok else None,
        "batch_p50_ms_per_run": each("latency_batch_p50_ms"),
        "ratio_batch_p50": ratio(each("latency_batch_p50_ms")),
        "p95_ms_median": median("latency_p95_ms"),
        "parity_max": max(each("parity_error")) if ok else None,
        "peak_memory_mb_per_run": each("peak_memory_mb"),
        "background_cpu_per_run": each("background_cpu"),
        "ratio_p50_quiet_runs": ratio([t.latency_p50_ms for t in ok
                                       if (t.background_cpu or 0.0) < BUSY_CORES]),
        "train_s": median("train_seconds"), "export_s": median("export_seconds"),
        "measure_s": median("measure_seconds"),
        "score": {"metric": ok[0].metric, "values": sorted(set(each("score")))} if ok else None,
        "model_kib": ok[0].model_bytes / 1024 if ok else None,
    }


def _ms(value) -> str:
    return "-" if value is None else f"{value:.4f} ms"


def _print_table(summaries: list[dict], profile: str, runs: int, seconds: float) -> None:
    print(f"\nharness repeatability on {profile}: {runs} runs per model, each a separate process "
          f"({seconds / 60:.1f} min)\n")
    header = (f"{'model':<22} {'dataset':<17} {'batch-1 p50 per run (ms)':<44} {'max/min':>7} "
              f"{'batch-N max/min':>15} {'parity max':>10} {'train s':>7} {'export s':>8} "
              f"{'measure s':>9} {'score repeats':>13} {'busy max':>8}")
    print(header)
    print("-" * len(header))
    for s in summaries:
        per_run = " ".join(f"{v:.4f}" for v in s["p50_ms_per_run"])
        scores = s["score"]["values"] if s["score"] else []
        print(f"{s['model']:<22} {s['dataset']:<17} {per_run:<44} {_num(s['ratio_p50'], '.3f'):>7} "
              f"{_num(s['ratio_batch_p50'], '.3f'):>15} {_num(s['parity_max'], '.2g'):>10} "
              f"{_num(s['train_s'], '.2f'):>7} {_num(s['export_s'], '.2f'):>8} "
              f"{_num(s['measure_s'], '.2f'):>9} {('yes' if len(scores) == 1 else 'NO') if scores else '-':>13} "
              f"{_num(max(s['background_cpu_per_run'], default=None), '.2f'):>8}")
        for reason in s["failures"]:
            print(f"    not ok: {reason}")
    ratios = [s["ratio_p50"] for s in summaries if s["ratio_p50"] is not None]
    worst = max(ratios) if ratios else None
    verdict = ("met" if worst is not None and worst <= TARGET_RATIO and
               all(s["ok"] == s["runs"] for s in summaries) else "MISSED")
    print(f"\ntarget: batch-1 median latency max/min <= {TARGET_RATIO} for every model; "
          f"worst {_num(worst, '.3f')}: {verdict}")
    print(f"busy max: the most CPU (in cores) other processes used while a run was timed")
    for s in summaries:
        busy = [round(b, 2) for b in s["background_cpu_per_run"] if b is not None and b >= BUSY_CORES]
        if busy:
            print(f"  {s['model']}: {len(busy)} run(s) timed beside other processes {busy}; "
                  f"max/min over the other runs {_num(s['ratio_p50_quiet_runs'], '.3f')}")


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


if __name__ == "__main__":
    sys.exit(main())
