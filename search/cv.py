"""Cross-validation, row sampling and predictions in the form the metrics read.

Targets arrive encoded: class codes 0..C-1 for classification (so every model's classes are
the same integers, whatever the labels were) and floats for regression.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from search.metrics import Metric


@dataclass(frozen=True)
class CVResult:
    score: float  # mean over folds
    score_std: float


def predictions(model, frame: pd.DataFrame, n_classes: int | None) -> np.ndarray:
    """Probabilities with one column per class of the dataset (``n_classes``), or values.

    A model fitted on rows that lacked a class has fewer columns; they are put in place and
    the missing class gets probability 0.
    """
    if n_classes is None:
        return np.asarray(model.predict(frame), dtype=np.float64).ravel()
    probabilities = np.asarray(model.predict_proba(frame), dtype=np.float64)
    full = np.zeros((len(frame), n_classes))
    full[:, np.asarray(model.classes_, dtype=int)] = probabilities
    return full


def fit(model, frame: pd.DataFrame, y: np.ndarray):
    """``model`` fitted with all its threads; a forest is then set to predict on one.

    A forest adds its trees' votes in parallel in whichever order threads finish, so the last
    bits of a prediction vary between runs, and a ranking metric breaks ties differently.
    Predicting sequentially makes a seed's score reproducible.
    """
    model.fit(frame, y)
    if hasattr(model[-1], "estimators_") and "n_jobs" in model[-1].get_params():
        model[-1].set_params(n_jobs=1)
    return model


def sample_keeping_classes(indices: np.ndarray, codes: np.ndarray | None, size: int,
                rng: np.random.Generator) -> np.ndarray:
    """``size`` of ``indices`` at random, with every class among them kept at least once."""
    if size >= len(indices):
        return np.sort(indices)
    if codes is None:
        return np.sort(rng.choice(indices, size, replace=False))
    shuffled = rng.permutation(indices)
    # The first row of each class in a random order, then the rest in that order.
    _, first = np.unique(codes[shuffled], return_index=True)
    rest = np.delete(shuffled, first)
    return np.sort(np.concatenate([shuffled[first], rest])[:max(size, len(first))])


TEST_FRACTION = 0.2


def test_split(codes: np.ndarray | None, n_rows: int, dataset_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(search rows, test rows) of a dataset: the test rows (a fifth, every class kept on the
    search side and stratified where classes allow) are the same for every trial of the
    dataset, on any machine, so the final model's test score comes from rows no trial, no
    bootstrap and no warm start has seen. Seeded by the dataset id, not the trial seed."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(n_rows)
    n_test = int(round(TEST_FRACTION * n_rows))
    if n_test < 1 or n_rows - n_test < 2:
        raise ValueError(f"{n_rows} rows are too few to hold out a test split")
    seed = int(dataset_id[:8], 16) if len(dataset_id) >= 8 else 0
    stratify = None
    if codes is not None:
        counts = np.bincount(codes)
        counts = counts[counts > 0]
        if counts.min() >= 2 and n_test >= len(counts):
            stratify = codes
    search, test = train_test_split(rows, test_size=n_test, random_state=seed, stratify=stratify)
    return np.sort(search), np.sort(test)


def fidelity_rows(indices: np.ndarray, codes: np.ndarray | None, fidelity: float,
                  rng: np.random.Generator) -> np.ndarray:
    """The training rows a trial at ``fidelity`` (a fraction of the data) learns from."""
    return sample_keeping_classes(indices, codes, math.ceil(fidelity * len(indices)), rng)


def cross_validate(make_model: Callable[[], object], frame: pd.DataFrame, y: np.ndarray,
                   n_classes: int | None, metric: Metric, folds: int, seed: int,
                   fidelity: float, on_fold: Callable[[int, int], None]) -> CVResult:
    """Mean and spread of ``metric`` over ``folds`` folds (stratified for classification).

    Each fold trains on ``fidelity`` of its training rows and is scored on all its
    validation rows, so scores at different fidelities are comparable.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    n_splits = min(folds, len(frame))
    splitter = (KFold(n_splits, shuffle=True, random_state=seed) if n_classes is None
                else StratifiedKFold(n_splits, shuffle=True, random_state=seed))
    codes = None if n_classes is None else y
    rng = np.random.default_rng(seed)
    scores = []
    for fold, (train, valid) in enumerate(splitter.split(frame, y)):
        on_fold(fold + 1, n_splits)
        train = fidelity_rows(train, codes, fidelity, rng)
        model = fit(make_model(), frame.iloc[train], y[train])
        score = float(metric.compute(y[valid], predictions(model, frame.iloc[valid], n_classes)))
        if not math.isfinite(score):
            raise ValueError(f"{metric.name} is {score} on fold {fold + 1}")
        scores.append(score)
    return CVResult(float(np.mean(scores)), float(np.std(scores)))
