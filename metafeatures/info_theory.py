"""Information-theoretic meta-features: entropies, mutual information and what derives from them.

The attributes are the nominal columns plus every numeric column discretised as pymfe does it:
an equal-frequency histogram of floor(n^(1/3)) bins (numpy quantiles, cut points closer than
1e-8 merged). OpenML computes these qualities on nominal attributes only, which leaves them
undefined for most numeric datasets; discretising keeps them meaningful there and identical to
OpenML's on purely nominal data. Entropies are in bits. Joint entropies add 1e-8 to every
cell of the joint distribution before taking logs, exactly as pymfe 0.4.4 does, so that values
ingested under pymfe's names stay interchangeable (the bias is below 3e-7 bits per cell).
A value missing from a column leaves that row out of that column's counts only.
"""

from __future__ import annotations

import numpy as np

from metafeatures.collector import Collector
from metafeatures.context import Context
from metafeatures.quantiles import bin_levels
from metafeatures.summaries import SUMMARIES, SHORT_SUMMARIES
from metafeatures.table import Prepared

_EPSILON = 1e-8  # pymfe's smoothing of joint probabilities
_CUT_TOLERANCE = 1e-8  # pymfe merges histogram cut points closer than this


def info_theory(ctx: Context) -> Collector:
    data = ctx.data
    out = Collector()
    codes = attribute_codes(data)
    if codes.shape[1] == 0:
        out.note("info-theory: the dataset has no feature columns")
        return out
    attr_entropy = np.array([_entropy(np.bincount(c[c >= 0])) for c in codes.T])
    out.summary("AttributeEntropy", attr_entropy, SUMMARIES)
    if not data.is_classification:
        out.note("class entropy, mutual information and concentration: the target is not a class")
        return out
    class_entropy = _entropy(data.class_counts)
    out.put("ClassEntropy", class_entropy)
    joint, mutual, concentration = _with_class(codes, data.y, data.n_classes)
    out.summary("JointEntropy", joint, SHORT_SUMMARIES)
    out.summary("MutualInformation", mutual, SUMMARIES)
    out.summary("ClassConcentration", concentration, SHORT_SUMMARIES)
    mean_mi = float(np.mean(mutual[np.isfinite(mutual)])) if np.isfinite(mutual).any() else np.nan
    if mean_mi > 0:
        out.put("EquivalentNumberOfAtts", class_entropy / mean_mi)
        out.put("MeanNoiseToSignalRatio", (np.nanmean(attr_entropy) - mean_mi) / mean_mi)
    else:
        out.note("EquivalentNumberOfAtts and MeanNoiseToSignalRatio: no attribute carries "
                 "information about the class (mean mutual information is 0)")
    if np.isnan(concentration).any():
        out.note("ClassConcentration: attributes with a single value have none and are left out")
    return out


def attribute_codes(data: Prepared) -> np.ndarray:
    """Nominal codes and discretised numeric columns side by side (-1: missing)."""
    X = data.numeric
    levels = bin_levels(data.n_rows)
    discretised = np.empty(X.shape, dtype=np.int32)
    if X.shape[1] and not data.has_missing:
        cuts_all = np.array([data.quantiles[float(level)] for level in levels])
    for j in range(X.shape[1]):
        column = X[:, j]
        if data.has_missing:
            present = ~data.numeric_missing[:, j]
            if not present.any():
                discretised[:, j] = -1
                continue
            cuts = np.quantile(column[present], levels)
        else:
            cuts = cuts_all[:, j]
        cuts = np.unique(cuts[np.append(True, np.diff(cuts) > _CUT_TOLERANCE)])
        codes = np.searchsorted(cuts, column, side="left").astype(np.int32)
        if data.has_missing:
            codes[~present] = -1
        discretised[:, j] = codes
    return np.hstack([data.categorical, discretised]) if data.categorical.shape[1] else discretised


def _entropy(counts: np.ndarray) -> float:
    counts = np.asarray(counts, dtype=np.float64)
    counts = counts[counts > 0]
    if counts.size == 0:
        return np.nan
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / np.log(2))


def _with_class(codes: np.ndarray, y: np.ndarray, n_classes: int):
    """Per attribute: joint entropy with the class, mutual information, concentration."""
    q = codes.shape[1]
    joint, mutual, concentration = np.full(q, np.nan), np.full(q, np.nan), np.full(q, np.nan)
    for j in range(q):
        column = codes[:, j]
        present = column >= 0
        if not present.any():
            continue
        table = np.bincount(column[present] * n_classes + y[present],
                            minlength=(int(column.max()) + 1) * n_classes)
        table = table.reshape(-1, n_classes).astype(np.float64)
        # Like a crosstab: only the attribute values and classes that occur.
        table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
        total = table.sum()
        p = table / total + _EPSILON
        joint[j] = -(p * np.log2(p)).sum()
        mutual[j] = _entropy(table.sum(axis=1)) + _entropy(table.sum(axis=0)) - joint[j]
        if table.shape[0] >= 2:
            concentration[j] = _concentration(p)
    return joint, mutual, concentration


def _concentration(p: np.ndarray) -> float:
    """Goodman and Kruskal's concentration of the class given the attribute, as pymfe computes
    it (rows: attribute values, columns: classes, smoothed probabilities)."""
    class_sums = p.sum(axis=0)
    value_squares = np.sum(p.sum(axis=1) ** 2)
    return float((np.sum(p**2 / class_sums) - value_squares) / (1.0 - value_squares))
