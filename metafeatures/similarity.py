"""How far apart two datasets are, judged by their meta-features.

1. Every value goes through a signed logarithm, sign(x) log(1 + |x|): counts, ratios and
   kurtoses span orders of magnitude, and a difference between 10 and 100 rows should weigh
   like one between 10,000 and 100,000.
2. Each feature is then scaled by statistics of the KB's datasets (not of the query): centred
   on their median and divided by their spread (interquartile range / 1.349, a standard
   deviation that outliers cannot inflate; the standard deviation when the quartiles
   coincide; 1 when every dataset has the same value).
3. The distance is the mean absolute difference over the features both datasets have (L1, as
   auto-sklearn's nearest datasets, divided by the number of features compared). A feature
   either side lacks is dropped for that pair, as auto-sklearn does, and the mean keeps pairs
   that share different numbers of features comparable. The count is reported with each
   distance: a distance over 5 features says less than one over 100.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scaling:
    """Per-feature centre and spread of the transformed values, fitted on a KB's datasets."""

    features: tuple[str, ...]
    centre: np.ndarray
    spread: np.ndarray

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.features)}


@dataclass(frozen=True)
class Neighbour:
    key: str  # the dataset's id
    distance: float
    shared: int  # features compared


def signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def _matrix(vectors: Mapping[str, Mapping[str, float]], features: tuple[str, ...]) -> np.ndarray:
    column = {name: j for j, name in enumerate(features)}
    out = np.full((len(vectors), len(features)), np.nan)
    for i, vector in enumerate(vectors.values()):
        for name, value in vector.items():
            j = column.get(name)
            if j is not None and value is not None and np.isfinite(value):
                out[i, j] = value
    return out


def fit_scaling(vectors: Mapping[str, Mapping[str, float]]) -> Scaling:
    """The scaling of every feature that at least one of ``vectors`` has."""
    features = tuple(sorted({name for vector in vectors.values() for name in vector}))
    M = signed_log(_matrix(vectors, features))
    centre = np.zeros(len(features))
    spread = np.ones(len(features))
    for j in range(len(features)):
        column = M[:, j][np.isfinite(M[:, j])]
        if column.size == 0:
            continue
        centre[j] = np.median(column)
        q1, q3 = np.quantile(column, [0.25, 0.75])
        robust = (q3 - q1) / 1.349
        sd = column.std(ddof=1) if column.size > 1 else 0.0
        spread[j] = robust if robust > 0 else sd if sd > 0 else 1.0
    return Scaling(features, centre, spread)


def nearest(query: Mapping[str, float], vectors: Mapping[str, Mapping[str, float]], *, k: int = 10,
            scaling: Scaling | None = None, features: Iterable[str] | None = None,
            min_shared: int = 1) -> list[Neighbour]:
    """The ``k`` datasets of ``vectors`` ({key: {feature: value}}) nearest to ``query``.

    ``scaling`` defaults to one fitted on ``vectors``; ``features`` restricts the features
    compared. Datasets sharing fewer than ``min_shared`` features with the query are left
    out. Ties in distance are broken by key, so the order is reproducible.
    """
    if not vectors:
        return []
    scaling = scaling or fit_scaling(vectors)
    allowed = set(scaling.features) if features is None else set(features) & set(scaling.features)
    used = tuple(name for name in scaling.features
                 if name in allowed and query.get(name) is not None and np.isfinite(query[name]))
    if not used:
        return []
    index = scaling.index()
    columns = np.array([index[name] for name in used])
    centre, spread = scaling.centre[columns], scaling.spread[columns]
    q = (signed_log(np.array([query[name] for name in used], dtype=np.float64)) - centre) / spread
    M = (signed_log(_matrix(vectors, used)) - centre) / spread
    present = np.isfinite(M)
    shared = present.sum(axis=1)
    total = np.where(present, np.abs(M - q), 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = total / shared
    keys = list(vectors)
    ranked = sorted((float(distance[i]), keys[i], int(shared[i])) for i in range(len(keys))
                    if shared[i] >= max(1, min_shared))
    return [Neighbour(key, d, s) for d, key, s in ranked[:k]]


def distance(a: Mapping[str, float], b: Mapping[str, float], scaling: Scaling) -> tuple[float, int]:
    """(distance, features compared) between two vectors under ``scaling``; (nan, 0) if none."""
    found = nearest(a, {"b": b}, k=1, scaling=scaling)
    return (found[0].distance, found[0].shared) if found else (float("nan"), 0)
