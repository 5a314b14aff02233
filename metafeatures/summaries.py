"""Summaries of a per-attribute measure (one value per column) and the moments behind them.

Quartiles use the estimator of OpenML's quality calculator (Apache Commons Math's default,
Hyndman & Fan type 6, position p·(n+1)), so ``Quartile1...`` values mean what OpenML's do.
Standard deviations are sample ones (n-1), like OpenML's ``Stdv...`` and pymfe's ``.sd``.
"""

from __future__ import annotations

import numpy as np

SUMMARIES = ("Mean", "Stdv", "Min", "Max", "Quartile1", "Quartile2", "Quartile3")
OPENML_SUMMARIES = ("Mean", "Min", "Max", "Quartile1", "Quartile2", "Quartile3")
SHORT_SUMMARIES = ("Mean", "Stdv")


def summarize(values, kinds: tuple[str, ...] = SUMMARIES) -> dict[str, float]:
    """``{kind: value}`` over the finite entries of ``values``; a kind that needs more values
    than there are (a deviation of one value) is left out."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {}
    out: dict[str, float] = {}
    for kind in kinds:
        if kind == "Mean":
            out[kind] = float(np.mean(v))
        elif kind == "Stdv":
            if v.size >= 2:
                out[kind] = float(np.std(v, ddof=1))
        elif kind == "Min":
            out[kind] = float(np.min(v))
        elif kind == "Max":
            out[kind] = float(np.max(v))
        elif kind.startswith("Quartile"):
            q = int(kind[-1]) / 4
            out[kind] = float(np.quantile(v, q, method="weibull"))
        else:
            raise ValueError(f"unknown summary {kind!r}")
    return out


def skewness(n: np.ndarray, m2: np.ndarray, m3: np.ndarray) -> np.ndarray:
    """Adjusted Fisher-Pearson skewness G1 (scipy ``skew(bias=False)``, Commons Math,
    OpenML) from central moments; NaN where undefined (n < 3 or no spread)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        g1 = m3 / m2**1.5
        out = g1 * np.sqrt(n * (n - 1.0)) / (n - 2.0)
    return np.where((n >= 3) & (m2 > 0), out, np.nan)


def kurtosis(n: np.ndarray, m2: np.ndarray, m4: np.ndarray) -> np.ndarray:
    """Unbiased excess kurtosis G2 (scipy ``kurtosis(bias=False)``, Commons Math, OpenML);
    NaN where undefined (n < 4 or no spread)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        g2 = m4 / m2**2 - 3.0
        out = ((n + 1.0) * g2 + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
    return np.where((n >= 4) & (m2 > 0), out, np.nan)
