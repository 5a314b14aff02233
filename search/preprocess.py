"""The model's input: which columns are numbers and which are text, and how they are prepared.

Every exported model takes at most two inputs, whatever the dataset's width: ``numeric``, a
float32 matrix of the number columns, and ``categorical``, a string matrix of the text
columns, each in the order ``FeatureLayout`` lists them. The scikit-learn pipeline is trained
on exactly the values the ONNX model receives (numbers already cast to float32, missing text
as ""), so parity checks compare two implementations of one function, not two inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

NUMERIC_INPUT = "numeric"
CATEGORICAL_INPUT = "categorical"
MISSING_TEXT = ""  # ONNX string tensors cannot hold a null; it becomes a category of its own
# Categories kept per text column (the most frequent); rarer values encode like unseen ones.
# skl2onnx 1.20 cannot convert scikit-learn's own "infrequent categories", so the cut is
# made here, as an explicit category list that both libraries understand.
MAX_CATEGORIES = 32

IMPUTATIONS = ("mean", "median", "most_frequent")
SCALINGS = ("none", "standard", "minmax")
ENCODINGS = ("onehot", "ordinal")


@dataclass(frozen=True)
class FeatureLayout:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]  # the kept categories of each text column

    def model_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` as the scikit-learn pipeline sees it: number columns (float32), then text."""
        numeric = pd.DataFrame(self._numbers(X), columns=list(self.numeric), index=X.index)
        text = pd.DataFrame(self._texts(X), columns=list(self.categorical), index=X.index)
        return pd.concat([numeric, text], axis=1)

    def onnx_inputs(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """``X`` as the ONNX model's inputs."""
        out = {}
        if self.numeric:
            out[NUMERIC_INPUT] = self._numbers(X)
        if self.categorical:
            out[CATEGORICAL_INPUT] = self._texts(X)
        return out

    def _numbers(self, X: pd.DataFrame) -> np.ndarray:
        columns = [X[c].to_numpy(dtype=np.float32, na_value=np.nan) for c in self.numeric]
        return np.column_stack(columns) if columns else np.empty((len(X), 0), np.float32)

    def _texts(self, X: pd.DataFrame) -> np.ndarray:
        columns = [_as_text(X[c]) for c in self.categorical]
        return np.column_stack(columns) if columns else np.empty((len(X), 0), object)


def feature_layout(X: pd.DataFrame) -> FeatureLayout:
    """Numbers (and booleans) are numeric; anything else (``category`` columns included) is
    text with its top categories."""
    numeric = tuple(c for c in X.columns if _is_number(X[c]))
    categorical = tuple(c for c in X.columns if c not in numeric)
    categories = tuple(_top_categories(_as_text(X[c])) for c in categorical)
    return FeatureLayout(numeric, categorical, categories)


def build_preprocessor(layout: FeatureLayout, *, imputation: str, scaling: str, encoding: str):
    """A ColumnTransformer over ``layout.model_frame`` columns, addressed by position.

    Positions, not names, because skl2onnx maps positions across the two ONNX inputs.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

    parts = []
    if layout.numeric:
        steps = [("impute", SimpleImputer(strategy=imputation, keep_empty_features=True))]
        if scaling != "none":
            steps.append(("scale", StandardScaler() if scaling == "standard" else MinMaxScaler()))
        parts.append(("numeric", Pipeline(steps), list(range(len(layout.numeric)))))
    if layout.categorical:
        categories = [list(c) for c in layout.categories]
        encoder = (OneHotEncoder(categories=categories, handle_unknown="ignore",
                                 sparse_output=False, dtype=np.float32)
                   if encoding == "onehot" else
                   OrdinalEncoder(categories=categories, handle_unknown="use_encoded_value",
                                  unknown_value=-1, dtype=np.float32))
        start = len(layout.numeric)
        parts.append(("categorical", encoder, list(range(start, start + len(layout.categorical)))))
    return ColumnTransformer(parts, sparse_threshold=0.0)


def _is_number(series: pd.Series) -> bool:
    # Booleans count as numbers here; a ``category`` column is text even when its labels look
    # like numbers (an ARFF nominal attribute {1,2,3}), as OpenML counts it symbolic.
    return pd.api.types.is_numeric_dtype(series)


def _as_text(series: pd.Series) -> np.ndarray:
    return series.astype(object).where(series.notna(), MISSING_TEXT).astype(str).to_numpy(object)


def _top_categories(values: np.ndarray) -> tuple[str, ...]:
    counts = pd.Series(values).value_counts(sort=False)
    # Most frequent first, ties by value, so the same data always keeps the same categories.
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CATEGORIES]
    return tuple(sorted(value for value, _ in ranked))
