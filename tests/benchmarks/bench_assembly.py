"""Assembly under a latency limit on a device the KB has not seen, leave-one-device-out.

    python tests/benchmarks/bench_assembly.py [--quick] [--out bench-results/assembly.json]

NAS-Bench-201 (``../shared/data/nb201``): each of the 21 devices in turn is the new device.
The best CIFAR-100 architecture is wanted under three latency limits on it (its 25th, 50th
and 75th latency percentiles: the problem statement, not something a method sees). Every
method may measure at most ``BUDGET`` = 10 architectures on the held-out device, in all,
for the three limits together; its other latencies are never read except to score the
picks. CIFAR-100 accuracies are the KB's recorded ones (they do not depend on the device).

- metakb, measure candidates: 4 random architectures measured, then for each limit
  ``fragments.assemble.propose`` gives the best candidate whose predicted latency (the
  transfer model, refitted after every measurement) x 1.05 fits, it is measured, twice; the
  pick is the best *measured* architecture under the limit (``best_measured``).
- metakb, predicted only: 10 random architectures measured, the pick is ``propose``'s first.
- additive per-op and FLOPs-linear, fitted on the same 10 random architectures, pick the
  same way.
- oracle: the best accuracy among architectures whose true latency fits.

Reported over devices x limits x draws: violations (true latency above the limit; target
0), mean true latency / limit, mean accuracy below the oracle (points), share of oracle
picks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from bench_transfer import (QUICK_DEVICES, cell_flops, finish, held_out,  # noqa: E402
                            least_squares, load_nb201, op_counts, start)
from fragments.assemble import DEFAULT_MARGIN, best_measured, propose  # noqa: E402
from fragments.transfer import fit_device, nb201_encoding  # noqa: E402

BUDGET = 10
FIRST_SAMPLES = 4
CANDIDATES_PER_LIMIT = 2
PERCENTILES = (25, 50, 75)
DRAWS = 5


def load_accuracy(data: Path, cells: list[str]) -> np.ndarray:
    import pandas as pd

    table = pd.read_csv(data / "nb201" / "accuracy.csv").set_index("ArchitectureString")
    return table.loc[cells, "CIFAR100TestAccuracy200Epochs"].to_numpy(float)


def measure_candidates(prior, features, truth, accuracy, limits, rng) -> list[int | None]:
    """metakb's assembly loop: picks for each limit, never exceeding the budget."""
    measured = {int(i): truth[i] for i in rng.choice(len(truth), FIRST_SAMPLES, replace=False)}
    picks = []
    for limit in limits:
        for _ in range(CANDIDATES_PER_LIMIT):
            rows = np.array(list(measured))
            model = fit_device(prior, features[rows], truth[rows])
            candidates = propose(accuracy, model.predict(features), limit, 1, exclude=rows)
            if not len(candidates):
                break
            measured[int(candidates[0])] = truth[candidates[0]]
        picks.append(best_measured(measured, accuracy, limit))
    assert len(measured) <= BUDGET
    return picks


def predicted_pick(predicted: np.ndarray, accuracy: np.ndarray, limit: float) -> int | None:
    chosen = propose(accuracy, predicted, limit, 1, margin=DEFAULT_MARGIN)
    return int(chosen[0]) if len(chosen) else None


def run(data: Path, devices_to_test: list[str] | None, draws: int) -> dict:
    cells, devices, latencies = load_nb201(data)
    features, names = nb201_encoding(cells)
    accuracy = load_accuracy(data, cells)
    counts = op_counts(cells)
    flops_x = np.c_[cell_flops(cells), np.ones(len(cells))]
    outcomes = {m: [] for m in ("metakb_measured", "metakb_predicted", "additive", "flops")}
    for d, device, truth, prior in held_out(devices, latencies, features, names, devices_to_test):
        limits = [float(np.percentile(truth, p)) for p in PERCENTILES]
        oracle = [float(accuracy[truth <= limit].max()) for limit in limits]
        for draw in range(draws):
            rng = np.random.default_rng(100 * draw + d)
            picks = {"metakb_measured": measure_candidates(prior, features, truth, accuracy, limits, rng)}
            chosen = rng.choice(len(cells), BUDGET, replace=False)
            predictions = {
                "metakb_predicted": fit_device(prior, features[chosen], truth[chosen]).predict(features),
                "additive": counts @ least_squares(counts[chosen], truth[chosen]),
                "flops": flops_x @ least_squares(flops_x[chosen], truth[chosen]),
            }
            for name, predicted in predictions.items():
                picks[name] = [predicted_pick(predicted, accuracy, limit) for limit in limits]
            for name, chosen_per_limit in picks.items():
                for limit, best, pick in zip(limits, oracle, chosen_per_limit):
                    outcomes[name].append({
                        "device": device, "limit_ms": limit, "oracle_accuracy": best,
                        "pick": None if pick is None else cells[pick],
                        "true_ms": None if pick is None else float(truth[pick]),
                        "accuracy": None if pick is None else float(accuracy[pick])})
        print(f"  {device:<15} limits " + ", ".join(f"{x:.2f}" for x in limits) + " ms", flush=True)
    return {name: {"picks": rows, **summarise(rows)} for name, rows in outcomes.items()}


def summarise(rows: list[dict]) -> dict:
    picked = [r for r in rows if r["pick"] is not None]
    return {
        "cases": len(rows), "no_pick": len(rows) - len(picked),
        "violations": sum(r["true_ms"] > r["limit_ms"] for r in picked),
        "mean_latency_over_limit": float(np.mean([r["true_ms"] / r["limit_ms"] for r in picked])),
        "mean_accuracy_below_oracle": float(np.mean([r["oracle_accuracy"] - r["accuracy"] for r in picked])),
        "oracle_share": float(np.mean([r["accuracy"] >= r["oracle_accuracy"] for r in picked])),
    }


LABELS = {"metakb_measured": f"metakb: {FIRST_SAMPLES} samples + {CANDIDATES_PER_LIMIT} measured/limit",
          "metakb_predicted": f"metakb: {BUDGET} samples, predicted pick",
          "additive": f"additive per-op, {BUDGET} samples", "flops": f"FLOPs-linear, {BUDGET} samples"}


def print_table(result: dict) -> None:
    cases = next(iter(result.values()))["cases"]
    print(f"\nNAS-Bench-201 assembly, leave-one-device-out: best CIFAR-100 cell under 3 limits "
          f"per device, {cases} cases, at most {BUDGET} measurements per device")
    header = (f"{'method':<44}{'violations':>11}{'latency/limit':>14}{'acc. below oracle':>19}"
              f"{'oracle picks':>14}")
    print(header)
    print("-" * len(header))
    for name, r in result.items():
        print(f"{LABELS[name]:<44}{r['violations']:>11d}{r['mean_latency_over_limit']:>14.3f}"
              f"{r['mean_accuracy_below_oracle']:>16.2f} pt{r['oracle_share']:>14.2f}"
              + (f"  ({r['no_pick']} without a pick)" if r["no_pick"] else ""))
    print(f"target: 0 violations: {'met' if result['metakb_measured']['violations'] == 0 else 'NOT met'}")


def main() -> None:
    args, started = start("assembly", __doc__, "three devices, one draw")
    result = run(args.data, QUICK_DEVICES if args.quick else None, 1 if args.quick else DRAWS)
    print_table(result)
    finish(args.out, {"methods": result, "budget": BUDGET, "percentiles": PERCENTILES,
                      "quick": args.quick}, started)


if __name__ == "__main__":
    main()
