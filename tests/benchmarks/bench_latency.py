"""Latency composition: networks' batch-1 latency predicted from their fragments' costs,
against the same networks measured end to end.

For each architecture space (mlp, cnn, nb201) on one profile, in one run: every fragment of
the space is timed alone (``kb fragments measure``'s code, into a fresh KB) with a few
calibration networks; then other networks of the space, none of them a calibration network,
are measured end to end and predicted three ways:

- metakb: overhead + fragment costs corrected as ``kb latency predict`` does (fitted on the
  calibration networks of all spaces);
- raw sum: overhead + the plain sum of fragment costs;
- FLOPs-proportional: overhead + k x FLOPs, k fitted per space on the same calibration networks.

Printed side by side: share of networks within +-10 % of the measurement (target >= 90 %) and
the median absolute error. ``--clock cpu`` times the calling thread's CPU time instead of the
wall clock (one-thread profiles only): on a machine others keep busy, wall-clock timings of
millisecond networks are inflated by waiting for a core, and the CPU clock shows what the
composition itself gets right.

    python tests/benchmarks/bench_latency.py                # 3 spaces, 12 + 20 networks each
    python tests/benchmarks/bench_latency.py --clock cpu
    python tests/benchmarks/bench_latency.py --quick        # mlp only, few networks, short timings
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOLERANCE = 0.10
TARGET_SHARE = 0.90


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hardware", default="cpu-1t", help="built-in profile to measure on")
    parser.add_argument("--spaces", nargs="+", default=["mlp", "cnn", "nb201"])
    parser.add_argument("--calibration", type=int, default=12, help="calibration networks per space")
    parser.add_argument("--evaluate", type=int, default=20, help="evaluated networks per space")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench-results/latency.json"))
    parser.add_argument("--quick", action="store_true",
                        help="mlp only, 4 + 4 networks, short timings (checks it works)")
    args = parser.parse_args(argv)

    from fragments.build import build
    from fragments.costs import load_costs, measure_costs
    from fragments.graph import architecture_records, instances
    from fragments.latency import fit_correction, predict
    from fragments.spaces import SPACES
    from fragments.timing import ModelToTime, time_models
    from kb import KnowledgeBase
    from kb.keys import canonical_json
    from search.hardware import detect_machine, machine_summary, threads_used
    from search.measure import BUSY_CORES
    from search.profiles import BUILTIN_PROFILES

    profile = BUILTIN_PROFILES[args.hardware]
    if args.quick:
        args.spaces, args.calibration, args.evaluate = ["mlp"], 4, 4
        profile = dataclasses.replace(profile, repeats=20, warmup=2, min_measure_seconds=0.05)
    started = time.perf_counter()
    machine = detect_machine()
    draws = {}
    for name in args.spaces:
        networks = SPACES[name].samples(args.calibration + args.evaluate,
                                        np.random.default_rng(args.seed))
        draws[name] = (networks[:args.calibration], networks[args.calibration:])

    with tempfile.TemporaryDirectory(prefix="metakb-bench-latency-") as folder:
        kb = KnowledgeBase.create(Path(folder) / "kb")
        loads = []
        for name, (calibration, _) in draws.items():
            space = SPACES[name]
            summary = measure_costs(kb, profile, space.fragments(), input_shape=space.input_shape,
                                    networks=calibration, clock=args.clock)
            if summary.failed:
                print(f"not measured: {summary.failed}", file=sys.stderr)
            loads.append(summary.background_cpu)
        table = load_costs(kb, summary.hardware_id)
        correction = fit_correction(table)
        # The evaluated networks, measured end to end in the same run; none is a calibration
        # network (they were drawn distinct, and are checked against the KB below).
        evaluated = [(name, g) for name, (_, networks) in draws.items() for g in networks]
        archs = architecture_records([g for _, g in evaluated])
        calibration_ids = {n.arch_id for n in table.networks}
        assert not calibration_ids & {a.arch_id for a in archs}, "an evaluated network was fitted on"
        timed = time_models([ModelToTime(a.arch_id, build(g), (tuple(g.graph["input_shape"]),))
                             for a, (_, g) in zip(archs, evaluated)],
                            profile, threads_used(profile, machine), clock=args.clock)
        kb.close()

    flops_rate = _flops_rates(table, draws, architecture_records)
    rows = []
    for arch, (name, graph), measured in zip(archs, evaluated, timed):
        if measured.p50_ms is None:
            print(f"not measured: {name} {arch.arch_id}: {measured.error}", file=sys.stderr)
            continue
        loads.append(measured.background_cpu)
        ids = json.loads(arch.fragments)
        shape = canonical_json(list(graph.graph["input_shape"]))
        prediction = predict(ids, shape, table, correction)
        flops = sum(f.block.flops(f.in_shape) for f in instances(graph).values())
        rows.append({"space": name, "arch_id": arch.arch_id, "measured_ms": measured.p50_ms,
                     "metakb_ms": prediction.p50_ms, "raw_sum_ms": prediction.raw_ms,
                     "flops_ms": prediction.overhead_ms + flops_rate[name] * flops})

    methods = {"metakb": "metakb_ms", "raw sum": "raw_sum_ms", "FLOPs-proportional": "flops_ms"}
    groups = {**{name: [r for r in rows if r["space"] == name] for name in draws}, "all": rows}
    summary_rows = {
        method: {group: _score(members, column) for group, members in groups.items()}
        for method, column in methods.items()}
    busy = max((x for x in loads if x is not None), default=None)
    print(f"latency composition on {profile.name} ({args.clock} clock), "
          f"{len(rows)} evaluated networks not used for fitting, {len(table.networks)} calibration "
          f"networks; target: >= {TARGET_SHARE:.0%} within +-{TOLERANCE:.0%}")
    header = f"{'method':<20}" + "".join(f"{g + ' n=' + str(len(m)):>24}" for g, m in groups.items())
    print(header)
    for method, scores in summary_rows.items():
        cells = "".join(f"{s['within']:>10.0%} within, {s['median_error']:>5.1%} med"
                        for s in scores.values())
        print(f"{method:<20}" + cells)
    if busy is not None and busy > BUSY_CORES:
        print(f"note: other processes used up to {busy:.1f} core(s) while timing (busy machine)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "profile": profile.name, "clock": args.clock, "machine": machine_summary(machine),
        "calibration_per_space": args.calibration, "evaluated_per_space": args.evaluate,
        "tolerance": TOLERANCE, "target_share": TARGET_SHARE, "background_cpu": busy,
        "summary": summary_rows,
        "correction": dataclasses.asdict(correction), "networks": rows,
        "seconds": time.perf_counter() - started}, indent=2, default=str))
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0


def _score(rows: list[dict], column: str) -> dict:
    if not rows:
        return {"within": float("nan"), "median_error": float("nan")}
    errors = np.array([abs(r[column] / r["measured_ms"] - 1) for r in rows])
    return {"within": float(np.mean(errors <= TOLERANCE)), "median_error": float(np.median(errors))}


def _flops_rates(table, draws, architecture_records) -> dict[str, float]:
    """Per space: ms per FLOP that best fits its calibration networks' measured latency above
    the overhead, in relative terms (the FLOPs-proportional anchor)."""
    from fragments.graph import instances

    # As fragments.latency does: a network no slower than the per-call overhead (its net
    # time measured as 0 on a busy machine) says nothing of a rate.
    measured = {n.arch_id: n.net_ms for n in table.networks if n.net_ms > 0}
    rates = {}
    for name, (calibration, _) in draws.items():
        archs = architecture_records(calibration)
        pairs = [(sum(f.block.flops(f.in_shape) for f in instances(g).values()), measured[a.arch_id])
                 for a, g in zip(archs, calibration) if a.arch_id in measured]
        x = np.array([f / ms for f, ms in pairs])
        rates[name] = float(np.sum(x) / np.sum(x * x))  # least squares of k * x = 1
    return rates


if __name__ == "__main__":
    sys.exit(main())
