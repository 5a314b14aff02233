"""Quantiles of the numeric columns that two groups need, computed in one pass.

The outlier rule (statistical) wants each column's quartiles and extremes; the discretisation
(info-theory) wants its equal-frequency cut points. One ``np.quantile`` call at the union of
the levels partitions each column once instead of twice, and gives the same values as
separate calls (each level is interpolated on its own).
"""

from __future__ import annotations

import numpy as np

OUTLIER_LEVELS = (0.0, 0.25, 0.75, 1.0)


def bin_levels(n_rows: int) -> np.ndarray:
    """pymfe's cut levels: int(n ** (1/3)) equal-frequency bins. The float expression (not an
    exact integer cube root) is pymfe's, floating point included: 1000 rows give 9 bins."""
    bins = max(1, int(n_rows ** (1 / 3)))
    return np.linspace(0, 1, bins + 1)[1:]


def all_levels(n_rows: int) -> np.ndarray:
    return np.union1d(OUTLIER_LEVELS, bin_levels(n_rows))


def column_quantiles(X: np.ndarray, n_rows: int) -> dict[float, np.ndarray]:
    """{level: quantile of each column} for complete columns (no missing values)."""
    levels = all_levels(n_rows)
    values = np.quantile(X, levels, axis=0) if X.shape[1] else np.zeros((levels.size, 0))
    return {float(level): values[i] for i, level in enumerate(levels)}
