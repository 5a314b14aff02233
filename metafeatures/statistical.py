"""Statistical meta-features of the numeric feature columns.

Per column: mean, standard deviation, skewness and kurtosis (the unbiased G1 and G2 that
OpenML reports), over the column's present values; a column with one distinct value has no
skewness or kurtosis and is left out of those summaries rather than counted as 0. Pairwise:
absolute Pearson correlations (pairwise-complete when values are missing) and a principal
component analysis of the standardised columns. For regression, the target's shape and its
correlation with the features. The target is never one of the columns summarised.
"""

from __future__ import annotations

import numpy as np

from metafeatures.collector import Collector
from metafeatures.context import MAX_PAIRWISE_COLUMNS, Context
from metafeatures.quantiles import OUTLIER_LEVELS
from metafeatures.summaries import OPENML_SUMMARIES, SUMMARIES, kurtosis, skewness

_CELLS_PER_BLOCK = 4_000_000  # bounds the temporaries of the per-column moments
_CORRELATED = 0.5  # |r| at or above which a pair counts as correlated (pymfe's threshold)
_PCA_VARIANCE = 0.95
_PAIRWISE_NAMES = (
    "MeanAbsCorrelationOfNumericAtts", "StdvAbsCorrelationOfNumericAtts",
    "PercentageOfCorrelatedAttributePairs", "PCAFractionOfComponentsFor95PercentVariance",
    "PCASkewnessFirstPC", "PCAKurtosisFirstPC",
)


def statistical(ctx: Context) -> Collector:
    data = ctx.data
    out = Collector()
    X = data.numeric
    if X.shape[1] == 0:
        out.note("statistical: the dataset has no numeric feature")
    else:
        moments = column_moments(X, data.numeric_missing if data.has_missing else None)
        out.summary("MeansOfNumericAtts", moments.mean, OPENML_SUMMARIES)
        out.summary("StdDevOfNumericAtts", moments.sd, OPENML_SUMMARIES)
        out.summary("SkewnessOfNumericAtts", moments.skewness, SUMMARIES)
        out.summary("KurtosisOfNumericAtts", moments.kurtosis, SUMMARIES)
        if moments.constant.any():
            out.note(f"skewness and kurtosis: {int(moments.constant.sum())} constant numeric "
                     f"column(s) have none and are left out")
        out.put("NumberOfNumericAttsWithOutliers", _attributes_with_outliers(data, moments.count > 0))
        _pairwise(ctx, ~moments.constant, out)
    if data.task == "regression":
        _target(data.y, X, data.numeric_missing if data.has_missing else None, out)
    return out


class Moments:
    """Per-column count, mean, sd (n-1), G1, G2, and whether the column is constant."""

    def __init__(self, p: int):
        self.count = np.zeros(p)
        self.mean = np.full(p, np.nan)
        self.sd = np.full(p, np.nan)
        self.skewness = np.full(p, np.nan)
        self.kurtosis = np.full(p, np.nan)
        self.constant = np.zeros(p, dtype=bool)


def column_moments(X: np.ndarray, missing: np.ndarray | None = None) -> Moments:
    """Moments of each column of ``X`` over its present values (``missing`` marks the rest)."""
    n, p = X.shape
    out = Moments(p)
    step = max(1, _CELLS_PER_BLOCK // max(n, 1))
    for start in range(0, p, step):
        cols = slice(start, min(p, start + step))
        block = X[:, cols]
        if missing is None:
            count = np.full(block.shape[1], float(n))
            mean = block.mean(axis=0)
            sd = block.std(axis=0, ddof=1) if n > 1 else np.full(block.shape[1], np.nan)
            lo, hi = block.min(axis=0), block.max(axis=0)
            d = block - mean
        else:
            present = ~missing[:, cols]
            count = present.sum(axis=0).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(count > 0, np.where(present, block, 0.0).sum(axis=0) / count, np.nan)
            d = np.where(present, block - mean, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                sd = np.sqrt((d * d).sum(axis=0) / (count - 1))
            sd = np.where(count > 1, sd, np.nan)
            lo = np.where(present, block, np.inf).min(axis=0)
            hi = np.where(present, block, -np.inf).max(axis=0)
        d2 = d * d
        with np.errstate(invalid="ignore", divide="ignore"):
            m2 = d2.sum(axis=0) / count
            m3 = (d2 * d).sum(axis=0) / count
            m4 = (d2 * d2).sum(axis=0) / count
        constant = (count > 0) & (hi <= lo)
        out.count[cols], out.mean[cols], out.sd[cols] = count, mean, np.where(constant, 0.0, sd)
        out.constant[cols] = constant
        out.skewness[cols] = np.where(constant, np.nan, skewness(count, m2, m3))
        out.kurtosis[cols] = np.where(constant, np.nan, kurtosis(count, m2, m4))
    return out


def _attributes_with_outliers(data, seen: np.ndarray) -> int:
    """Columns with a value beyond 1.5 interquartile ranges of the quartiles (pymfe's rule)."""
    if not seen.any():
        return 0
    if data.has_missing:
        lowest, q1, q3, highest = np.nanpercentile(data.numeric[:, seen], (0, 25, 75, 100), axis=0)
    else:
        lowest, q1, q3, highest = (data.quantiles[level][seen] for level in OUTLIER_LEVELS)
    reach = 1.5 * (q3 - q1)
    return int(np.sum((q1 - reach > lowest) | (q3 + reach < highest)))


def _pairwise(ctx: Context, varying: np.ndarray, out: Collector) -> None:
    """Correlations and PCA, on the row sample and at most MAX_PAIRWISE_COLUMNS columns."""
    columns = np.flatnonzero(varying)
    if columns.size > MAX_PAIRWISE_COLUMNS:
        columns = np.sort(ctx.rng(1).choice(columns, MAX_PAIRWISE_COLUMNS, replace=False))
        out.note(f"correlations and PCA: on {MAX_PAIRWISE_COLUMNS} of {int(varying.sum())} "
                 f"numeric columns, chosen with the seed")
    if columns.size == 0:
        out.note("correlations and PCA: no numeric column varies")
        return
    sample = ctx.sample
    X = sample.numeric[:, columns]
    missing = sample.numeric_missing[:, columns] if sample.has_missing else None
    n = X.shape[0]
    if missing is None:
        mean = X.mean(axis=0)
        sd = X.std(axis=0, ddof=1) if n > 1 else np.zeros(X.shape[1])
    else:
        moments = column_moments(X, missing)
        mean, sd = np.nan_to_num(moments.mean), np.nan_to_num(moments.sd)
    usable = sd > 0  # a column constant within the sample has no correlation
    if columns.size >= 2 and n >= 3:
        r = _abs_correlations(X[:, usable], None if missing is None else missing[:, usable])
        if r.size:
            out.put("MeanAbsCorrelationOfNumericAtts", r.mean())
            if r.size >= 2:
                out.put("StdvAbsCorrelationOfNumericAtts", r.std(ddof=1))
            out.put("PercentageOfCorrelatedAttributePairs", 100.0 * np.mean(r >= _CORRELATED))
    if usable.any() and n >= 2:
        Z = (X[:, usable] - mean[usable]) / sd[usable]
        if missing is not None:
            Z = np.where(missing[:, usable], 0.0, Z)  # mean imputation, in standard units
        _pca(Z, out)
    out.sampled(ctx.sample_size, _PAIRWISE_NAMES)


def _abs_correlations(X: np.ndarray, missing: np.ndarray | None) -> np.ndarray:
    """|Pearson r| of every pair of columns (the strict lower triangle), defined pairs only."""
    p = X.shape[1]
    if p < 2:
        return np.zeros(0)
    if missing is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.corrcoef(X, rowvar=False)
    else:
        # Pairwise-complete correlation from sums over the rows where both columns are present.
        present = (~missing).astype(np.float64)
        centred = np.where(missing, 0.0, X - column_moments(X, missing).mean)
        count = present.T @ present
        sums = centred.T @ present  # [i, j]: sum of column i over rows where j is present
        squares = (centred * centred).T @ present
        products = centred.T @ centred
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = products - sums * sums.T / count
            var_i = squares - sums * sums / count
            r = cov / np.sqrt(var_i * var_i.T)
        r = np.where(count >= 3, r, np.nan)
    lower = np.abs(r[np.tril_indices(p, k=-1)])
    lower = lower[np.isfinite(lower)]
    return np.minimum(lower, 1.0)


def _pca(Z: np.ndarray, out: Collector) -> None:
    n, p = Z.shape
    if p <= n:
        eigenvalues, vectors = np.linalg.eigh(Z.T @ Z)
        first = vectors[:, -1]
    else:  # fewer rows than columns: the same nonzero spectrum from the n x n Gram matrix
        eigenvalues, vectors = np.linalg.eigh(Z @ Z.T)
        first = Z.T @ vectors[:, -1]
        first /= np.linalg.norm(first) or 1.0
    eigenvalues = np.clip(eigenvalues[::-1], 0.0, None)
    total = eigenvalues.sum()
    if total <= 0:
        return
    needed = int(np.searchsorted(np.cumsum(eigenvalues) / total, _PCA_VARIANCE - 1e-12) + 1)
    out.put("PCAFractionOfComponentsFor95PercentVariance", min(needed, p) / p)
    # The sign of a component is arbitrary; fix it as scikit-learn's svd_flip does (largest
    # loading positive) so the skewness of the scores is reproducible.
    first = first * (np.sign(first[np.argmax(np.abs(first))]) or 1.0)
    scores = Z @ first
    moments = column_moments(scores[:, None])
    out.put("PCASkewnessFirstPC", moments.skewness[0])
    out.put("PCAKurtosisFirstPC", moments.kurtosis[0])


def _target(y: np.ndarray, X: np.ndarray, missing: np.ndarray | None, out: Collector) -> None:
    moments = column_moments(y[:, None])
    out.put("TargetSkewness", moments.skewness[0])
    out.put("TargetKurtosis", moments.kurtosis[0])
    if X.shape[1] == 0 or moments.constant[0]:
        return
    present = np.ones(X.shape, dtype=bool) if missing is None else ~missing
    count = present.sum(axis=0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = np.where(present, X, 0.0).sum(axis=0) / count
        dx = np.where(present, X - xm, 0.0)
        ym = (present * y[:, None]).sum(axis=0) / count
        dy = np.where(present, y[:, None] - ym, 0.0)
        r = (dx * dy).sum(axis=0) / np.sqrt((dx * dx).sum(axis=0) * (dy * dy).sum(axis=0))
    r = np.abs(r[np.isfinite(r) & (count >= 3)])
    if r.size:
        out.put("MeanAbsCorrelationWithTarget", r.mean())
        out.put("MaxAbsCorrelationWithTarget", r.max())
