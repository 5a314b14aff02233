"""Latency composition (pure): the correction learned from calibration networks, the breakdown,
and refusals when costs are missing."""

from __future__ import annotations

import numpy as np
import pytest

from fragments.latency import (IDENTITY, CalibrationNetwork, CostTable, fit_correction, predict,
                               shares)
from kb.errors import KBError

SHAPE = "[3,32,32]"
# Three fragments of two kinds, and how much slower (or faster) each kind runs inside a network
# than alone: the truth the correction should find.
COSTS = {"conv-a": 0.05, "conv-b": 0.02, "pool-a": 0.004}
KINDS = {"conv-a": "conv", "conv-b": "conv", "pool-a": "pool"}
TRUE_SCALE = {"conv": 1.3, "pool": 3.0}


def in_network_ms(fragments) -> float:
    return sum(TRUE_SCALE[KINDS[f]] * COSTS[f] for f in fragments)


def network(i: int, counts: dict[str, int]) -> CalibrationNetwork:
    fragments = tuple(f for f, n in counts.items() for _ in range(n))
    return CalibrationNetwork(f"net{i}", fragments, in_network_ms(fragments))


def table(networks=()) -> CostTable:
    return CostTable(hardware_id="hw", overhead_ms={SHAPE: 0.005, "[8]": 0.003}, costs=COSTS,
                     kinds=KINDS, networks=tuple(networks))


def calibration(n: int, seed: int = 0) -> list[CalibrationNetwork]:
    rng = np.random.default_rng(seed)
    return [network(i, {f: int(rng.integers(0, 6)) + 1 for f in COSTS}) for i in range(n)]


def test_correction_learns_how_kinds_behave_inside_networks():
    correction = fit_correction(table(calibration(12)))
    assert correction.n_networks == 12
    # Pulled towards 1 a little (the prior: the raw sum is right), but the direction is clear.
    assert correction.scale["conv"] == pytest.approx(TRUE_SCALE["conv"], rel=0.1)
    assert correction.scale["pool"] > 2 * correction.scale["conv"]
    unseen = ("conv-a",) * 7 + ("pool-a",) * 11
    corrected = predict(unseen, SHAPE, table(calibration(12)), correction)
    raw = predict(unseen, SHAPE, table(), IDENTITY)
    truth = 0.005 + in_network_ms(unseen)
    assert abs(corrected.p50_ms / truth - 1) < 0.05
    assert abs(raw.p50_ms / truth - 1) > 0.2  # the plain sum is far off, as measured networks are


def test_breakdown_adds_up():
    fragments = ("conv-a", "pool-a", "conv-a", "conv-b")
    prediction = predict(fragments, SHAPE, table(calibration(6)), fit_correction(table(calibration(6))))
    assert prediction.overhead_ms == 0.005
    assert prediction.raw_ms == pytest.approx(0.005 + 2 * 0.05 + 0.02 + 0.004)
    assert prediction.p50_ms == pytest.approx(prediction.raw_ms + prediction.correction_ms)
    assert [(s.fragment_id, s.count) for s in prediction.fragments] == [
        ("conv-a", 2), ("conv-b", 1), ("pool-a", 1)]  # largest share first
    assert sum(s.total_ms for s in prediction.fragments) == pytest.approx(prediction.raw_ms - 0.005)


def test_without_calibration_the_raw_sum_stands():
    assert fit_correction(table()) == IDENTITY
    prediction = predict(("conv-a",), SHAPE, table(), fit_correction(table()))
    assert prediction.p50_ms == prediction.raw_ms and prediction.correction_ms == 0


def test_overhead_of_another_shape_is_the_median():
    assert table().overhead("[16]") == pytest.approx(0.004)
    with pytest.raises(KBError, match="no per-call overhead"):
        CostTable("hw", {}, COSTS, KINDS, ()).overhead(SHAPE)


def test_missing_costs_are_named_with_the_command_that_measures_them():
    with pytest.raises(KBError) as caught:
        shares(("conv-a", "conv-z"), table())
    assert "conv-z" in str(caught.value) and "kb fragments measure" in str(caught.value)


def test_calibration_networks_with_unmeasured_fragments_are_left_out():
    networks = calibration(5) + [CalibrationNetwork("odd", ("conv-z",), 1.0)]
    assert fit_correction(table(networks)).n_networks == 5
