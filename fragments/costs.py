"""Per-fragment costs: measure fragments alone on a profile and store them; read them back.

What ``fragment_costs`` rows written here mean (batch 1, ``source`` = ``SOURCE``):

- the ``identity`` fragment's latency is the per-call overhead: what one ONNX Runtime call
  costs on the profile when the model does nothing (measured on the network input's shape);
- every other fragment's latency is its time alone minus that overhead (never below 0), so a
  network's raw estimate is the overhead plus the sum of its fragments;
- a ``network`` fragment (``NETWORK_KIND``, params ``{"arch_id": ...}``) is a whole
  architecture measured end to end, minus the overhead: the calibration networks the latency
  correction is learned from (``fragments.latency``). It is not a block: no ``build``.

Measuring skips what this hardware already has, unless asked to measure again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import networkx as nx

from fragments import blocks as b
from fragments.graph import (FragmentInstance, derived_ids, architecture_records,
                             fragment_records, instances, output_shape)
from fragments.latency import CalibrationNetwork, CostTable
from kb.errors import KBError
from kb.keys import canonical_json
from kb.schema import Architecture, Fragment, FragmentCost
from search.profiles import Profile

SOURCE = "metakb fragments measure"
NETWORK_KIND = "network"
BATCH = 1


@dataclass(frozen=True)
class MeasureSummary:
    hardware_id: str
    overhead_ms: float
    measured: int  # fragments measured now
    already_stored: int  # fragments this hardware had costs for (not measured again)
    networks: int  # calibration networks measured now
    failed: tuple[tuple[str, str], ...]  # (what, why) for each one that could not be measured
    background_cpu: float | None  # the most CPU others used during any timing (cores)


def network_fragment(arch: Architecture, graph: nx.DiGraph) -> Fragment:
    """A whole architecture as a row of ``fragments`` (kind ``network``), id derived."""
    nodes = instances(graph).values()
    record = Fragment(kind=NETWORK_KIND, params=canonical_json({"arch_id": arch.arch_id}),
                      in_shape=canonical_json(list(graph.graph["input_shape"])),
                      out_shape=canonical_json(list(output_shape(graph))),
                      n_parameters=sum(f.block.n_parameters(f.in_shape) for f in nodes),
                      flops=sum(f.block.flops(f.in_shape) for f in nodes))
    return replace(record, fragment_id=derived_ids("fragments", [record])[0])


def measure_costs(kb, profile: Profile, fragments: Sequence[FragmentInstance], *,
                  input_shape: tuple[int, ...], networks: Sequence[nx.DiGraph] = (),
                  again: bool = False, clock: str = "wall",
                  progress: Callable[[int, int], None] | None = None) -> MeasureSummary:
    """Measure ``fragments`` (and whole ``networks``, for calibration) on ``profile`` on this
    machine, and store them with the overhead, the hardware row and the architectures."""
    from fragments.build import build, fragment_inputs, fragment_module
    from fragments.timing import ModelToTime, time_models
    from search.hardware import detect_machine, hardware_record, require_usable, threads_used

    machine = detect_machine()
    require_usable(profile, machine)
    hardware = hardware_record(machine, profile)
    identity = FragmentInstance(b.Identity(), tuple(input_shape))
    # Each distinct fragment once, the identity first: its time is the overhead.
    distinct = list({f.key: f for f in [identity, *fragments]}.values())
    records = fragment_records(distinct)
    stored = set() if again else _costed(kb, hardware.hardware_id, [r.fragment_id for r in records])
    todo = [(f, r) for f, r in zip(distinct, records, strict=True)
            if f is identity or r.fragment_id not in stored]
    archs = architecture_records(list(networks), source=SOURCE) if networks else []
    models = [ModelToTime(r.fragment_id, fragment_module(f), tuple(fragment_inputs(f)))
              for f, r in todo]
    models += [ModelToTime(a.arch_id, build(g), (tuple(g.graph["input_shape"]),))
               for a, g in zip(archs, networks, strict=True)]
    timed = time_models(models, profile, threads_used(profile, machine), clock=clock,
                        progress=progress)
    overhead = timed[0]
    if overhead.p50_ms is None:
        raise KBError(f"the per-call overhead could not be measured on {profile.name}: {overhead.error}")

    now = datetime.now(timezone.utc)
    costs, fragment_rows, arch_rows = [], [], []
    descriptions = [f"{f.block.kind} {list(f.in_shape)}" for f, _ in todo]
    descriptions += [f"network {a.arch_id}" for a in archs]
    rows = [r for _, r in todo] + [network_fragment(a, g) for a, g in zip(archs, networks)]
    for i, (t, row) in enumerate(zip(timed, rows, strict=True)):
        if t.p50_ms is None:
            continue
        # The identity (first) keeps its time: it is the overhead the others are net of.
        subtract = 0.0 if i == 0 else overhead.p50_ms
        costs.append(FragmentCost(
            fragment_id=row.fragment_id, hardware_id=hardware.hardware_id,
            input_shape=row.in_shape, batch=BATCH,
            latency_p50_ms=max(0.0, t.p50_ms - subtract),
            latency_p95_ms=max(0.0, t.p95_ms - subtract), memory_mb=t.memory_mb,
            flops=row.flops, n_parameters=row.n_parameters, source=SOURCE, measured_at=now))
        fragment_rows.append(row)
        if i >= len(todo):
            arch_rows.append(archs[i - len(todo)])
    kb.append("hardware", [hardware], on_conflict="keep")
    kb.append("fragments", fragment_rows, on_conflict="keep")
    if arch_rows:
        kb.append("architectures", arch_rows, on_conflict="keep")
    kb.append("fragment_costs", costs, on_conflict="replace")
    loads = [t.background_cpu for t in timed if t.background_cpu is not None]
    return MeasureSummary(
        hardware_id=hardware.hardware_id, overhead_ms=overhead.p50_ms,
        measured=sum(1 for t in timed[:len(todo)] if t.p50_ms is not None) - 1,
        already_stored=len(records) - len(todo),
        networks=sum(1 for t in timed[len(todo):] if t.p50_ms is not None),
        failed=tuple((d, t.error) for d, t in zip(descriptions, timed) if t.p50_ms is None),
        background_cpu=max(loads) if loads else None)


def _costed(kb, hardware_id: str, fragment_ids: list[str]) -> set[str]:
    rows = kb.query("SELECT DISTINCT fragment_id FROM fragment_costs WHERE hardware_id = ? "
                    "AND batch = ? AND list_contains(?, fragment_id)",
                    [hardware_id, BATCH, fragment_ids]).column("fragment_id").to_pylist()
    return set(rows)


def load_costs(kb, hardware_id: str) -> CostTable:
    """The batch-1 costs ``hardware_id`` has: per fragment, the overhead, the calibration
    networks (each with its fragment list)."""
    rows = kb.query(
        "SELECT c.fragment_id, f.kind, f.params, c.input_shape, c.latency_p50_ms, c.measured_at "
        "FROM fragment_costs c JOIN fragments f USING (fragment_id) "
        "WHERE c.hardware_id = ? AND c.batch = ? ORDER BY c.measured_at",
        [hardware_id, BATCH]).to_pylist()
    costs, kinds, overheads, network_costs = {}, {}, {}, {}
    for row in rows:
        if row["kind"] == b.Identity.kind:
            overheads[row["input_shape"]] = row["latency_p50_ms"]
        elif row["kind"] == NETWORK_KIND:
            network_costs[json.loads(row["params"])["arch_id"]] = row["latency_p50_ms"]
        else:
            costs[row["fragment_id"]] = row["latency_p50_ms"]
            kinds[row["fragment_id"]] = row["kind"]
    networks = []
    if network_costs:
        for arch in kb.query("SELECT arch_id, fragments FROM architectures "
                             "WHERE list_contains(?, arch_id) ORDER BY arch_id",
                             [list(network_costs)]).to_pylist():
            networks.append(CalibrationNetwork(arch["arch_id"], tuple(json.loads(arch["fragments"])),
                                               network_costs[arch["arch_id"]]))
    return CostTable(hardware_id=hardware_id, overhead_ms=overheads, costs=costs, kinds=kinds,
                     networks=tuple(networks))
