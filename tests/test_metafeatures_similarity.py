"""Distances between datasets: scaling fitted on the KB, features either side lacks dropped."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from metafeatures import extract
from metafeatures.similarity import distance, fit_scaling, nearest, signed_log


def _kb(shared_data, names):
    vectors = {}
    for name in names:
        frame = pd.read_csv(shared_data / "pmlb" / f"{name}.tsv.gz", sep="\t")
        y = frame["target"]
        task = "binary" if y.nunique() == 2 else "multiclass"
        vectors[name] = extract(frame.drop(columns="target"), y, task)
    return vectors


def test_a_dataset_is_nearest_to_itself_then_to_its_shuffled_copy(shared_data):
    names = ["wine_recognition", "ecoli", "haberman", "sonar", "new_thyroid", "glass2"]
    vectors = _kb(shared_data, names)
    frame = pd.read_csv(shared_data / "pmlb" / "ecoli.tsv.gz", sep="\t")
    shuffled = frame.sample(frac=1.0, random_state=1)
    vectors["ecoli shuffled"] = extract(shuffled.drop(columns="target"), shuffled["target"], "multiclass")
    found = nearest(vectors["ecoli"], vectors, k=3)
    assert [n.key for n in found[:2]] == ["ecoli", "ecoli shuffled"]
    assert found[0].distance == 0 and found[0].shared == len(vectors["ecoli"])
    assert found[1].distance < 0.1 * found[2].distance


def test_features_either_side_lacks_are_dropped():
    kb = {"a": {"x": 1.0, "y": 10.0, "z": 5.0}, "b": {"x": 2.0, "y": 20.0}, "c": {"x": 3.0, "z": 1.0}}
    scaling = fit_scaling(kb)
    query = {"x": 1.5, "y": 12.0}
    base = {n.key: n for n in nearest(query, kb, scaling=scaling)}
    assert (base["a"].shared, base["b"].shared, base["c"].shared) == (2, 2, 1)
    # A feature only the candidate has changes nothing; one only the query has neither.
    kb_more = {**kb, "b": {**kb["b"], "w": 99.0}}
    assert distance(query, kb_more["b"], scaling)[0] == pytest.approx(base["b"].distance)
    assert distance({**query, "v": 7.0}, kb["b"], scaling)[0] == pytest.approx(base["b"].distance)


def test_scaling_is_fitted_on_the_kb_and_tolerates_constant_features():
    kb = {str(i): {"rows": float(10 ** (i + 2)), "same": 4.0, "share": 0.1 * i} for i in range(5)}
    scaling = fit_scaling(kb)
    assert np.all(np.isfinite(scaling.spread)) and np.all(scaling.spread > 0)
    index = scaling.index()
    assert scaling.centre[index["rows"]] == pytest.approx(np.median(signed_log(np.array([10.0 ** (i + 2) for i in range(5)]))))
    # Ten times more rows moves a dataset about as far as 0.1 more of the share does.
    d_rows = distance({"rows": 1e4}, {"rows": 1e5}, scaling)[0]
    d_share = distance({"share": 0.1}, {"share": 0.2}, scaling)[0]
    assert 0.2 < d_rows / d_share < 5


def test_order_is_reproducible_and_empty_cases_are_empty():
    kb = {"b": {"x": 1.0}, "a": {"x": 1.0}, "c": {"x": 2.0}}
    assert [n.key for n in nearest({"x": 1.0}, kb)] == ["a", "b", "c"]
    assert nearest({"nothing": 1.0}, kb) == []
    assert nearest({"x": 1.0}, {}) == []
    d, shared = distance({"y": 1.0}, {"x": 1.0}, fit_scaling(kb))
    assert math.isnan(d) and shared == 0
