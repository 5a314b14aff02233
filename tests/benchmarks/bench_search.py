"""Warm-started versus cold SMAC search on datasets the shipped baseline does not contain.

For each dataset (PMLB, from ../shared/data/pmlb, none of them bundled): a KB with the
shipped baseline (``kb init --bundled``) registers the dataset; a cold search and a search
warm-started with the baseline's top configurations (the dataset itself holds no trials, so
this is leave-one-dataset-out by construction) run the same number of trials with the same
seed under cpu-1t. Prints the best cross-validated score after 5, 10 and 25 trials, side by
side, and writes bench-results/search.json.

    python tests/benchmarks/bench_search.py                  # 3 datasets x 25 trials
    python tests/benchmarks/bench_search.py --datasets bupa,collins --trials 10
    python tests/benchmarks/bench_search.py --quick          # 1 dataset, 4 trials: a smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PMLB = REPO.parent / "shared" / "data" / "pmlb"
DATASETS = ("bupa", "collins", "1030_ERA")  # binary, multiclass, regression; none bundled
CHECKPOINTS = (5, 10, 25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--warm-start", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench-results/search.json"))
    parser.add_argument("--quick", action="store_true", help="one dataset, 4 trials, fast families")
    args = parser.parse_args(argv)
    if not PMLB.is_dir():
        print(f"skipped: {PMLB} not found (the shared data)")
        return 0

    from kb import KnowledgeBase
    from kb.audit.value import best_feasible_so_far
    from kb.cli.dataset_commands import add_bundled
    from kb.datasets import baseline_folder, bundled, load, register
    from kb.ingest import ingest
    from search.execution import Executor
    from search.smac_search import SearchSettings, run_search

    names = args.datasets.split(",")
    families = None
    if args.quick:
        names, args.trials, args.warm_start, families = names[:1], 4, 2, ("linear", "knn")
    bundled_names = {e.name for e in bundled()}
    assert not bundled_names & set(names), "a benchmark dataset is in the shipped baseline"
    checkpoints = [c for c in CHECKPOINTS if c <= args.trials] or [args.trials]
    rows = []
    with tempfile.TemporaryDirectory(prefix="metakb-bench-search-") as folder:
        kb = KnowledgeBase.create(Path(folder) / "kb")
        add_bundled(kb, quiet=True)
        ingest(kb, baseline_folder(), format="native", on_conflict="keep")
        baseline_trials = kb.counts()["trials"]
        with Executor(args.workers) as executor:
            for name in names:
                record, _ = register(kb, load(PMLB / f"{name}.tsv.gz", target="target"))
                result = {"dataset": name, "task": record.task, "rows": record.n_rows}
                for mode, warm in (("cold", 0), ("warm", args.warm_start)):
                    settings = SearchSettings(dataset_id=record.dataset_id, trials=args.trials,
                                              warm_start=warm, seed=args.seed, families=families,
                                              exclude_own_dataset=True)
                    started = time.perf_counter()
                    outcome = run_search(kb, settings, executor=executor)
                    curve = best_feasible_so_far(outcome.trials)
                    result["metric"] = outcome.trials[0].metric
                    result["direction"] = outcome.trials[0].direction
                    result[mode] = {"curve": curve, "seconds": time.perf_counter() - started,
                                    "feasible": len(outcome.feasible), "reused": outcome.reused,
                                    "warm_sources": sorted({w.source for w in outcome.warm_starts})}
                    print(f"{name} {mode}: best {curve[-1]} after {len(curve)} trials, "
                          f"{result[mode]['seconds']:.0f} s", file=sys.stderr, flush=True)
                rows.append(result)
    print_table(rows, checkpoints)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"trials": args.trials, "warm_start": args.warm_start,
                                    "seed": args.seed, "baseline_trials": baseline_trials,
                                    "checkpoints": checkpoints, "datasets": rows}, indent=2))
    return 0


def print_table(rows: list[dict], checkpoints: list[int]) -> None:
    header = ["dataset", "metric"] + [f"{m}@{c}" for c in checkpoints for m in ("warm", "cold")]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    wins = 0
    for r in rows:
        cells = [r["dataset"], f"{r['metric']} ({'higher' if r['direction'] == 'maximize' else 'lower'} is better)"]
        for c in checkpoints:
            for mode in ("warm", "cold"):
                value = r[mode]["curve"][min(c, len(r[mode]["curve"])) - 1]
                cells.append("-" if value is None else f"{value:.4f}")
        print(" | ".join(cells))
        warm, cold = r["warm"]["curve"][-1], r["cold"]["curve"][-1]
        if warm is not None and cold is not None:
            wins += (warm >= cold) if r["direction"] == "maximize" else (warm <= cold)
    print(f"\nwarm at least as good as cold after {checkpoints[-1]} trials on {wins} of {len(rows)} datasets")
    for r in rows:
        print(f"{r['dataset']}: warm {r['warm']['seconds']:.0f} s ({r['warm']['reused']} reused, "
              f"from {', '.join(r['warm']['warm_sources']) or 'nothing'}), cold {r['cold']['seconds']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
