"""A user's table turned into the arrays every group works on.

Numeric columns become one float matrix with NaN for missing values; everything else (text,
booleans, categories, columns mixing numbers and words) becomes integer codes with -1 for
missing. Infinite numbers carry no usable magnitude, so they are counted and then treated as
missing. The target becomes class codes (0..k-1 in sorted label order, the order scikit-learn
uses, so folds and trees match pymfe's) or floats for regression.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd

from metafeatures.errors import MetaFeatureError

TASKS = ("binary", "multiclass", "regression")
# Categorical columns are one-hot encoded for the learners; beyond this many levels the rarest
# are pooled, so a column of ids cannot blow the design matrix up to one column per row.
MAX_ONE_HOT_LEVELS = 32


@dataclass(frozen=True)
class Prepared:
    """The arrays of one dataset (or of a row sample of it)."""

    numeric: np.ndarray  # (n, p_num) float64, NaN where missing or infinite
    categorical: np.ndarray  # (n, p_cat) int32 codes, -1 where missing
    levels: np.ndarray  # (p_cat,) distinct values seen per categorical column
    numeric_names: tuple[str, ...]
    categorical_names: tuple[str, ...]
    y: np.ndarray  # class codes (int64) or target values (float64)
    task: str
    n_classes: int  # 0 for regression
    n_infinite: int = 0  # infinite numeric cells, counted then treated as missing
    dropped_rows: int = 0  # rows left out because their target was missing

    @property
    def n_rows(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_features(self) -> int:
        return self.numeric.shape[1] + self.categorical.shape[1]

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    @cached_property
    def class_counts(self) -> np.ndarray:
        if not self.is_classification:
            return np.zeros(0, dtype=np.int64)
        return np.bincount(self.y, minlength=self.n_classes)

    @cached_property
    def numeric_missing(self) -> np.ndarray:
        return np.isnan(self.numeric)

    @cached_property
    def has_missing(self) -> bool:
        return bool(self.numeric_missing.any() or (self.categorical < 0).any())

    @cached_property
    def quantiles(self) -> dict[float, np.ndarray]:
        """Per-column quantiles of the numeric columns at the levels the groups use (complete
        data only; with missing values each group takes its columns' quantiles itself)."""
        from metafeatures.quantiles import column_quantiles

        return column_quantiles(self.numeric, self.n_rows)

    @cached_property
    def design(self) -> np.ndarray:
        """The matrix the learners see: numeric columns with missing values set to the column
        mean, then each categorical column one-hot encoded (missing: all zeros)."""
        numeric = self.numeric
        if self.numeric_missing.any():
            present = ~self.numeric_missing
            counts = present.sum(axis=0)
            means = np.where(present, numeric, 0.0).sum(axis=0) / np.maximum(counts, 1)
            numeric = np.where(self.numeric_missing, means[None, :], numeric)
        blocks = [numeric] + [_one_hot(self.categorical[:, j]) for j in range(self.categorical.shape[1])]
        return np.ascontiguousarray(np.hstack(blocks)) if len(blocks) > 1 else np.ascontiguousarray(numeric)

    def take(self, rows: np.ndarray) -> "Prepared":
        """The same dataset restricted to ``rows`` (class codes keep their meaning)."""
        return replace(self, numeric=self.numeric[rows], categorical=self.categorical[rows], y=self.y[rows])


def _one_hot(codes: np.ndarray) -> np.ndarray:
    valid = codes >= 0
    counts = np.bincount(codes[valid], minlength=0)
    kept = np.flatnonzero(counts)
    if kept.size > MAX_ONE_HOT_LEVELS:
        # Keep the most frequent levels (ties: lower code) and pool the rest in one column.
        order = kept[np.lexsort((kept, -counts[kept]))]
        kept = np.sort(order[: MAX_ONE_HOT_LEVELS - 1])
        column = np.full(counts.size, kept.size, dtype=np.int64)
    else:
        column = np.full(counts.size, -1, dtype=np.int64)
    column[kept] = np.arange(kept.size)
    width = int(column.max()) + 1 if column.size else 0
    out = np.zeros((codes.shape[0], width))
    rows = np.flatnonzero(valid)
    targets = column[codes[valid]]
    hit = targets >= 0
    out[rows[hit], targets[hit]] = 1.0
    return out


def prepare(X, y, task: str) -> Prepared:
    """Check and encode ``X`` (a DataFrame or a 2-D array) and ``y`` for ``task``."""
    if task not in TASKS:
        raise MetaFeatureError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    frame = _as_frame(X)
    target = _as_target(y, frame.shape[0])
    keep = _usable_target(target, task)
    dropped = int((~keep).sum())
    if dropped:
        frame = frame.loc[keep].reset_index(drop=True)
        target = target[keep]
    if target.shape[0] == 0:
        raise MetaFeatureError("no rows with a target value; there is nothing to characterise")
    numeric, numeric_names, categorical, categorical_names, levels = _encode_columns(frame)
    infinite = np.isinf(numeric)
    n_infinite = int(infinite.sum())
    if n_infinite:
        numeric = np.where(infinite, np.nan, numeric)
    if task == "regression":
        y_out = target.astype(np.float64)
        n_classes = 0
    else:
        y_out, n_classes = _class_codes(target)
    return Prepared(
        numeric=numeric, categorical=categorical, levels=levels,
        numeric_names=numeric_names, categorical_names=categorical_names,
        y=y_out, task=task, n_classes=n_classes, n_infinite=n_infinite, dropped_rows=dropped,
    )


def _as_frame(X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        array = np.asarray(X)
        if array.ndim != 2:
            raise MetaFeatureError(f"X must be a table (2-D), not an array of shape {array.shape}")
        frame = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
    if frame.columns.duplicated().any():
        frame = frame.set_axis([f"{c}#{i}" for i, c in enumerate(frame.columns)], axis=1)
    return frame


def _as_target(y, n_rows: int) -> np.ndarray:
    target = y.to_numpy() if isinstance(y, (pd.Series, pd.Index)) else np.asarray(y)
    if target.ndim == 2 and 1 in target.shape:
        target = target.reshape(-1)
    if target.ndim != 1:
        raise MetaFeatureError(f"y must be one column, not an array of shape {target.shape}")
    if target.shape[0] != n_rows:
        raise MetaFeatureError(f"X has {n_rows} rows but y has {target.shape[0]} values")
    return target


def _usable_target(target: np.ndarray, task: str) -> np.ndarray:
    missing = pd.isna(target)
    if task == "regression":
        values = pd.to_numeric(pd.Series(target), errors="coerce").to_numpy(dtype=float)
        if np.isnan(values[~missing]).any():
            raise MetaFeatureError("a regression target must be numeric")
        return ~missing & np.isfinite(values)
    return ~missing


def _class_codes(target: np.ndarray) -> tuple[np.ndarray, int]:
    if target.dtype == object:
        kinds = {type(v) for v in target}
        if len(kinds) > 1:  # 1 and "1" would not sort together; compare them as text
            target = target.astype(str)
    _, codes = np.unique(target, return_inverse=True)
    codes = codes.astype(np.int64).reshape(-1)
    return codes, int(codes.max()) + 1


def _encode_columns(frame: pd.DataFrame):
    numeric_cols, categorical_cols = [], []
    converted: dict[str, np.ndarray] = {}
    for name, column in frame.items():
        kind, values = _column_kind(column)
        if kind == "numeric":
            numeric_cols.append(name)
            if values is not None:
                converted[name] = values
        else:
            categorical_cols.append((name, values))
    n = frame.shape[0]
    plain = [c for c in numeric_cols if c not in converted]
    numeric = np.empty((n, len(numeric_cols)), dtype=np.float64)
    if plain:
        block = frame[plain].to_numpy(dtype=np.float64, na_value=np.nan)
        positions = [numeric_cols.index(c) for c in plain]
        numeric[:, positions] = block
    for name, values in converted.items():
        numeric[:, numeric_cols.index(name)] = values
    categorical = np.empty((n, len(categorical_cols)), dtype=np.int32)
    levels = np.empty(len(categorical_cols), dtype=np.int64)
    for j, (_, codes) in enumerate(categorical_cols):
        categorical[:, j] = codes
        levels[j] = int(codes.max()) + 1 if codes.size and codes.max() >= 0 else 0
    return (numeric, tuple(map(str, numeric_cols)), categorical,
            tuple(str(name) for name, _ in categorical_cols), levels)


def _column_kind(column: pd.Series) -> tuple[str, np.ndarray | None]:
    """("numeric", float values or None to convert in bulk) or ("categorical", codes)."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical", _codes(column)
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric", None
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        ns = column.to_numpy(dtype="datetime64[ns]" if pd.api.types.is_datetime64_any_dtype(dtype)
                             else "timedelta64[ns]").astype(np.int64).astype(np.float64)
        return "numeric", np.where(column.isna().to_numpy(), np.nan, ns / 1e9)
    missing = column.isna()
    present = column[~missing]
    parsed = pd.to_numeric(present, errors="coerce")
    if present.size and parsed.notna().all() and not present.map(lambda v: isinstance(v, bool)).any():
        values = np.full(column.shape[0], np.nan)
        values[~missing.to_numpy()] = parsed.to_numpy(dtype=np.float64)
        return "numeric", values
    return "categorical", _codes(column.where(~missing))


def _codes(column: pd.Series) -> np.ndarray:
    text = column.map(lambda v: v if pd.isna(v) else str(v))
    codes, _ = pd.factorize(text, use_na_sentinel=True)
    return codes.astype(np.int32)


def sample_rows(n_rows: int, max_rows: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of a seeded uniform sample of ``max_rows`` rows, or None to keep all.

    Sorted so that a sample keeps the original row order, which unshuffled folds depend on.
    """
    if max_rows is None or n_rows <= max_rows:
        return None
    if max_rows < 1:
        raise MetaFeatureError(f"max_rows must be at least 1, not {max_rows}")
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False))
