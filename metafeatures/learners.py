"""The cheap learners of the landmarking group, written for cross-validation in numpy.

Each reproduces the scikit-learn estimator pymfe 0.4.4 uses, down to the arithmetic that
decides a prediction, so that error rates agree with pymfe's; each is several times faster
because it skips scikit-learn's validation and, for the stump, sorts the data once for all
folds instead of once per fold.

- ``naive_bayes``: ``GaussianNB()`` (variance smoothing 1e-9 of the largest variance).
- ``lda``: ``LinearDiscriminantAnalysis()`` with its default SVD solver: within-class
  standardisation, singular values at or below 1e-4 dropped, class priors from the data.
- ``decision_stumps``: ``DecisionTreeClassifier(max_depth=1)``: Gini, split thresholds halfway
  between float32 values more than 1e-7 apart, the first best split of a feature. When two
  features split equally well scikit-learn picks one at random; here the first column wins.
"""

from __future__ import annotations

import numpy as np

_FEATURE_THRESHOLD = np.float32(1e-7)  # scikit-learn's tie tolerance between feature values
_LDA_TOL = 1e-4


def naive_bayes(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray) -> np.ndarray:
    classes = np.unique(y_train)
    epsilon = 1e-9 * np.var(X_train, axis=0).max()
    scores = np.empty((X_test.shape[0], classes.size))
    for i, c in enumerate(classes):
        rows = X_train[y_train == c]
        mean = np.mean(rows, axis=0)
        var = np.var(rows, axis=0) + epsilon
        with np.errstate(divide="ignore", invalid="ignore"):
            log_likelihood = -0.5 * np.sum(np.log(2.0 * np.pi * var))
            log_likelihood = log_likelihood - 0.5 * np.sum(((X_test - mean) ** 2) / var, 1)
        scores[:, i] = np.log(rows.shape[0] / X_train.shape[0]) + log_likelihood
    scores = np.where(np.isnan(scores), -np.inf, scores)
    return classes[np.argmax(scores, axis=1)]


def lda(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray) -> np.ndarray:
    classes, index, counts = np.unique(y_train, return_inverse=True, return_counts=True)
    n, k = X_train.shape[0], classes.size
    if k == 1:
        return np.full(X_test.shape[0], classes[0])
    priors = counts / float(n)
    one_hot = np.zeros((k, n))
    one_hot[index, np.arange(n)] = 1.0
    means = (one_hot @ X_train) / counts[:, None]
    centred = X_train - means[index]
    xbar = priors @ means
    std = centred.std(axis=0)
    std[std == 0] = 1.0
    S, Vt = _svd(np.sqrt(1.0 / n) * (centred / std))
    rank = int(np.sum(S > _LDA_TOL))
    if rank == 0:
        return np.full(X_test.shape[0], classes[np.argmax(priors)])
    scalings = (Vt[:rank, :] / std).T / S[:rank]
    fac = 1.0 / (k - 1)
    between = ((np.sqrt((n * priors) * fac)) * (means - xbar).T).T @ scalings
    _, S2, Vt2 = np.linalg.svd(between, full_matrices=False)
    rank2 = int(np.sum(S2 > _LDA_TOL * S2[0])) if S2.size and S2[0] > 0 else 0
    projection = scalings @ Vt2.T[:, :rank2]
    coef = (means - xbar) @ projection
    intercept = -0.5 * np.sum(coef**2, axis=1) + np.log(priors)
    coef = coef @ projection.T
    intercept -= xbar @ coef.T
    return classes[np.argmax(X_test @ coef.T + intercept, axis=1)]


def _svd(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values (descending) and right singular vectors of ``A`` from the smaller Gram
    matrix: the learner needs only these, and an n x p SVD costs far more than a p x p one."""
    n, p = A.shape
    if p <= n:
        eigenvalues, V = np.linalg.eigh(A.T @ A)
        order = np.argsort(eigenvalues)[::-1]
        return np.sqrt(np.clip(eigenvalues[order], 0.0, None)), V[:, order].T
    eigenvalues, U = np.linalg.eigh(A @ A.T)
    order = np.argsort(eigenvalues)[::-1]
    S = np.sqrt(np.clip(eigenvalues[order], 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        Vt = (A.T @ U[:, order] / np.where(S > 0, S, 1.0)).T
    return S, Vt


class StumpData:
    """The design matrix as scikit-learn's tree sees it (float32), sorted once per column."""

    def __init__(self, X: np.ndarray):
        values = X.astype(np.float32)
        self.values = values
        self.order = np.ascontiguousarray(np.argsort(values, axis=0, kind="stable").T)
        self.sorted = np.take_along_axis(values.T, self.order, axis=1)


def decision_stumps(data: StumpData, y: np.ndarray, n_classes: int, train: np.ndarray,
                    test: np.ndarray) -> np.ndarray:
    """Predictions for the ``test`` rows of a depth-1 Gini tree fit on the ``train`` rows."""
    p = data.order.shape[0]
    n_train = int(train.sum())
    totals = np.bincount(y[train], minlength=n_classes)
    if p == 0 or n_train < 2:
        return np.full(int(test.sum()), np.argmax(totals))
    kept = train[data.order]
    rows = data.order[kept].reshape(p, n_train)
    values = data.sorted[kept].reshape(p, n_train)
    labels = y[rows]
    # A split after position t needs a next value more than the tolerance above this one.
    valid = values[:, 1:] > values[:, :-1] + _FEATURE_THRESHOLD
    if valid.sum() * 4 < valid.size:
        split = _best_split_grouped(valid, labels, totals, n_classes)
    else:
        split = _best_split_everywhere(valid, labels, totals, n_classes)
    if split is None:
        return np.full(int(test.sum()), np.argmax(totals))
    feature, t = split
    threshold = np.float64(values[feature, t]) / 2.0 + np.float64(values[feature, t + 1]) / 2.0
    left_counts = np.bincount(labels[feature, : t + 1], minlength=n_classes)
    left_class, right_class = np.argmax(left_counts), np.argmax(totals - left_counts)
    goes_left = data.values[test, feature].astype(np.float64) <= threshold
    return np.where(goes_left, left_class, right_class)


def _proxy(sq_left, sq_right, n_left, n_right):
    """scikit-learn's Gini proxy, in its order of operations so that ties stay ties."""
    with np.errstate(divide="ignore", invalid="ignore"):
        impurity_left = 1.0 - sq_left / (n_left * n_left)
        impurity_right = 1.0 - sq_right / (n_right * n_right)
        return -n_right * impurity_right - n_left * impurity_left


def _best_split_everywhere(valid, labels, totals, n_classes):
    """(feature, position) of the best split, evaluating every position of every column."""
    p, n_train = labels.shape
    sq_left, sq_right = _squared_counts(labels, totals, n_classes)
    n_left = np.arange(1, n_train + 1, dtype=np.float64)
    proxy = _proxy(sq_left, sq_right, n_left, n_train - n_left)[:, :-1]
    proxy = np.where(valid, proxy, -np.inf)
    best_position = np.argmax(proxy, axis=1)
    best_proxy = proxy[np.arange(p), best_position]
    feature = int(np.argmax(best_proxy))  # the first column among equals
    if not np.isfinite(best_proxy[feature]):
        return None
    return feature, int(best_position[feature])


def _best_split_grouped(valid, labels, totals, n_classes):
    """The same split when few positions are valid (columns with few distinct values): class
    counts per run of equal values, then the proxy at the end of each run only."""
    p, n_train = labels.shape
    ends = np.ones((p, n_train), dtype=bool)
    ends[:, :-1] = valid  # a run ends where a split may follow, and at the column's end
    run = np.cumsum(ends, axis=1) - ends  # run number of each position within its column
    runs_per_column = ends.sum(axis=1)
    offset = np.concatenate([[0], np.cumsum(runs_per_column)[:-1]])
    total_runs = int(runs_per_column.sum())
    index = (offset[:, None] + run) * n_classes + labels
    counts = np.bincount(index.ravel(), minlength=total_runs * n_classes).reshape(total_runs, n_classes)
    cumulative = np.cumsum(counts, axis=0)
    column_start = np.concatenate([np.zeros((1, n_classes), dtype=np.int64), cumulative[offset[1:] - 1]])
    column_of_run = np.repeat(np.arange(p), runs_per_column)
    left = cumulative - column_start[column_of_run]
    right = totals - left
    n_left = left.sum(axis=1).astype(np.float64)
    proxy = _proxy((left * left).sum(axis=1).astype(np.float64),
                   (right * right).sum(axis=1).astype(np.float64), n_left, n_train - n_left)
    last_run = np.zeros(total_runs, dtype=bool)
    last_run[offset + runs_per_column - 1] = True  # nothing to split after a column's last run
    proxy[last_run] = -np.inf
    best = int(np.argmax(proxy))  # runs are in column order: the first column among equals
    if not np.isfinite(proxy[best]):
        return None
    return int(column_of_run[best]), int(n_left[best]) - 1


def _squared_counts(labels: np.ndarray, totals: np.ndarray, n_classes: int):
    """Sum over classes of the squared class counts left and right of every position."""
    if n_classes == 2:  # one running count gives both classes' counts on both sides
        ones = np.cumsum(labels, axis=1, dtype=np.int64)
        zeros = np.arange(1, labels.shape[1] + 1) - ones
        right_ones, right_zeros = totals[1] - ones, totals[0] - zeros
        return ((zeros * zeros + ones * ones).astype(np.float64),
                (right_zeros * right_zeros + right_ones * right_ones).astype(np.float64))
    if n_classes <= 6:
        sq_left = np.zeros(labels.shape)
        sq_right = np.zeros(labels.shape)
        for c in range(n_classes):
            left = np.cumsum(labels == c, axis=1, dtype=np.int64)
            sq_left += left * left
            right = totals[c] - left
            sq_right += right * right
        return sq_left, sq_right
    # Many classes: adding a row of class c to the left raises sum(L^2) by 2 L_c + 1, where L_c
    # is how many rows of class c precede it; one stable sort by class gives every L_c at once.
    small = labels.astype(np.int16 if n_classes < 2**15 else np.int64)
    perm = np.argsort(small, axis=1, kind="stable")
    starts = np.concatenate([[0], np.cumsum(totals)[:-1]])
    sorted_labels = np.take_along_axis(labels, perm, axis=1)
    before = np.empty_like(labels)
    np.put_along_axis(before, perm, np.arange(labels.shape[1])[None, :] - starts[sorted_labels], axis=1)
    sq_left = np.cumsum(2 * before + 1, axis=1)
    weighted = np.cumsum(totals[labels], axis=1)  # sum over classes of N_c * L_c
    sq_right = np.sum(totals.astype(np.int64) ** 2) - 2 * weighted + sq_left
    return sq_left.astype(np.float64), sq_right.astype(np.float64)
