"""Latency composition: a network's latency from its fragments' costs (pure computation).

raw estimate   = per-call overhead + the sum of the network's fragment costs
metakb         = per-call overhead + the correction applied to the fragment costs

Fragments timed alone are wrong in sum, by -30 % to +200 %: in a network ONNX Runtime fuses
operators across fragment boundaries, skips copies between them, and keeps activations in
cache, while each fragment timed alone pays its own input and output copies and cold
starts. The correction is learned from a few whole networks measured end to end on the same
hardware (``CostTable.networks``); see ``fit_correction``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kb.errors import KBError


@dataclass(frozen=True)
class CalibrationNetwork:
    arch_id: str
    fragments: tuple[str, ...]  # fragment ids, one per node
    net_ms: float  # measured end to end, minus the per-call overhead


@dataclass(frozen=True)
class CostTable:
    """What one hardware row has measured, as ``fragments.costs.load_costs`` reads it."""

    hardware_id: str
    overhead_ms: dict[str, float]  # per input shape (canonical JSON) of the identity measured
    costs: dict[str, float]  # fragment id -> latency alone minus the overhead (ms)
    kinds: dict[str, str]  # fragment id -> kind
    networks: tuple[CalibrationNetwork, ...]

    def overhead(self, input_shape: str) -> float:
        """The overhead measured on ``input_shape``, else the median of those measured."""
        if not self.overhead_ms:
            raise KBError(f"hardware {self.hardware_id} has no per-call overhead measured; run "
                          f"`kb fragments measure --hardware PROFILE` first")
        if input_shape in self.overhead_ms:
            return self.overhead_ms[input_shape]
        return float(np.median(list(self.overhead_ms.values())))

    def missing(self, fragment_ids: Sequence[str]) -> list[str]:
        return sorted(set(fragment_ids) - set(self.costs))


@dataclass(frozen=True)
class FragmentShare:
    fragment_id: str
    kind: str
    count: int  # nodes of the network that are this fragment
    each_ms: float  # its cost alone (overhead subtracted)

    @property
    def total_ms(self) -> float:
        return self.count * self.each_ms


@dataclass(frozen=True)
class Correction:
    """net latency = sum over kinds of ``scale[kind]`` x that kind's fragment costs
    + ``per_node_ms`` x nodes. Kinds the calibration did not see get ``default_scale``."""

    scale: dict[str, float]
    default_scale: float
    per_node_ms: float
    n_networks: int  # how many calibration networks it was fitted on

    def apply(self, shares: Sequence[FragmentShare]) -> float:
        nodes = sum(s.count for s in shares)
        return max(0.0, sum(self.scale.get(s.kind, self.default_scale) * s.total_ms for s in shares)
                   + self.per_node_ms * nodes)


IDENTITY = Correction(scale={}, default_scale=1.0, per_node_ms=0.0, n_networks=0)


@dataclass(frozen=True)
class Prediction:
    p50_ms: float
    overhead_ms: float
    raw_ms: float  # overhead + the plain sum of fragment costs
    correction_ms: float  # p50_ms - raw_ms
    fragments: tuple[FragmentShare, ...]
    correction: Correction


def shares(fragment_ids: Sequence[str], table: CostTable) -> tuple[FragmentShare, ...]:
    """Each distinct fragment of a network with its count and cost, largest total first."""
    missing = table.missing(fragment_ids)
    if missing:
        raise KBError(f"{len(missing)} fragment(s) of this architecture have no cost on hardware "
                      f"{table.hardware_id} ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); "
                      f"measure them with `kb fragments measure --hardware PROFILE --arch ARCH`")
    counts = Counter(fragment_ids)
    out = [FragmentShare(f, table.kinds[f], n, table.costs[f]) for f, n in counts.items()]
    return tuple(sorted(out, key=lambda s: (-s.total_ms, s.fragment_id)))


def predict(fragment_ids: Sequence[str], input_shape: str, table: CostTable,
            correction: Correction) -> Prediction:
    parts = shares(fragment_ids, table)
    overhead = table.overhead(input_shape)
    raw = overhead + sum(s.total_ms for s in parts)
    p50 = overhead + correction.apply(parts)
    return Prediction(p50_ms=p50, overhead_ms=overhead, raw_ms=raw, correction_ms=p50 - raw,
                      fragments=parts, correction=correction)


# Pull towards "the raw sum is right" (scale 1, no per-node term), so a kind seen in one or
# two calibration networks moves only as far as they show it should.
RIDGE = 0.05


def fit_correction(table: CostTable) -> Correction:
    """The correction that best turns the calibration networks' fragment sums into their
    measured latencies, in relative terms (a 1 ms network counts as much as a 10 ms one)."""
    usable = [n for n in table.networks if not table.missing(n.fragments) and n.net_ms > 0]
    if not usable:
        return IDENTITY
    kinds = sorted({table.kinds[f] for n in usable for f in n.fragments})
    rows, targets = [], []
    for network in usable:
        parts = shares(network.fragments, table)
        by_kind = {k: sum(s.total_ms for s in parts if s.kind == k) for k in kinds}
        nodes = len(network.fragments)
        # Relative error: each row divided by the measured latency.
        rows.append([by_kind[k] / network.net_ms for k in kinds] + [nodes / network.net_ms])
        targets.append(1.0)
    design = np.asarray(rows)
    prior = np.ones(len(kinds) + 1)
    prior[-1] = 0.0
    # Ridge towards the prior, in the relative scale of each column.
    weights = RIDGE * np.sqrt(len(usable)) * np.maximum(np.abs(design).mean(axis=0), 1e-12)
    augmented = np.vstack([design, np.diag(weights)])
    target = np.concatenate([targets, weights * prior])
    solution, *_ = np.linalg.lstsq(augmented, target, rcond=None)
    scale = {k: float(max(0.0, s)) for k, s in zip(kinds, solution[:-1])}
    return Correction(scale=scale, default_scale=float(np.median(list(scale.values()))),
                      per_node_ms=float(solution[-1]), n_networks=len(usable))
