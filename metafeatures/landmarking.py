"""Landmarking: 10-fold cross-validated error rates of four cheap learners.

The folds are scikit-learn's ``StratifiedKFold(10)`` without shuffling, the folds pymfe uses,
so the error rates are comparable with pymfe's (error = 1 - its mean fold accuracy). Each
rate is the mean over folds of the fold's error. Fewer than 10 folds are used only when no
class has 10 rows. Classification only: for a regression target these features do not exist.
"""

from __future__ import annotations

import numpy as np

from metafeatures.collector import Collector
from metafeatures.context import Context
from metafeatures.learners import StumpData, decision_stumps, lda, naive_bayes
from metafeatures.nearest import one_nn

N_FOLDS = 10
NAMES = ("DecisionStumpErrRate", "NaiveBayesErrRate", "kNN1NErrRate", "LDAErrRate")


def landmarking(ctx: Context) -> Collector:
    out = Collector()
    sample = ctx.class_sample("landmarking", out)
    if sample is None:
        return out
    X, y, k = sample.design, sample.y, sample.n_classes
    if np.count_nonzero(np.bincount(y, minlength=k)) < 2:
        out.note("landmarking: needs two classes")
        return out
    folds = _folds(y, out)
    if folds is None:
        return out
    stumps = StumpData(X)
    fold_of_row = np.empty(y.shape[0], dtype=np.int64)
    for f, (_, test) in enumerate(folds):
        fold_of_row[test] = f
    nearest = one_nn(X, y, fold_of_row, k)  # every fold at once: one search serves all
    accuracy = {name: [] for name in NAMES}
    for train, test in folds:
        truth = y[test]
        predictions = {
            "DecisionStumpErrRate": decision_stumps(stumps, y, k, train, test),
            "NaiveBayesErrRate": naive_bayes(X[train], y[train], X[test]),
            "kNN1NErrRate": nearest[test],
            "LDAErrRate": lda(X[train], y[train], X[test]),
        }
        for name, predicted in predictions.items():
            accuracy[name].append(np.mean(predicted == truth))
    for name in NAMES:
        out.put(name, 1.0 - np.mean(accuracy[name]))
    out.sampled(ctx.sample_size, NAMES)
    return out


def _folds(y: np.ndarray, out: Collector) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """(train, test) masks of scikit-learn's unshuffled ``StratifiedKFold``, the folds pymfe
    uses, computed as it computes them (without its import or its warning about small classes)."""
    _, first, inverse = np.unique(y, return_index=True, return_inverse=True)
    encoded = np.argsort(np.argsort(first))[inverse.reshape(-1)]  # classes by first appearance
    counts = np.bincount(encoded)
    n_splits = min(N_FOLDS, int(counts.max()), y.shape[0])
    if n_splits < 2:
        out.note("landmarking: too few rows for cross-validation")
        return None
    if n_splits < N_FOLDS:
        out.note(f"landmarking: {n_splits}-fold cross-validation (no class has {N_FOLDS} rows)")
    ordered = np.sort(encoded)
    allocation = np.array([np.bincount(ordered[i::n_splits], minlength=counts.size)
                           for i in range(n_splits)])
    test_fold = np.empty(y.shape[0], dtype=np.int64)
    for c in range(counts.size):
        test_fold[encoded == c] = np.repeat(np.arange(n_splits), allocation[:, c])
    return [(test_fold != f, test_fold == f) for f in range(n_splits)]
