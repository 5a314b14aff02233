"""Scores: each metric's name, direction and the tasks it applies to.

The defaults follow the AutoML Benchmark: ROC AUC for binary tasks, log loss for multiclass,
RMSE for regression. Classifiers are scored on probabilities with one column per class of the
whole dataset, so a fold that lacks a rare class still scores against every class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kb.errors import KBError

CLASSIFICATION = ("binary", "multiclass")
DEFAULT_METRICS = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str  # "maximize" or "minimize"
    tasks: tuple[str, ...]
    # (true labels as codes 0..C-1 or true values, probabilities [n, C] or predicted values)
    compute: Callable[[np.ndarray, np.ndarray], float]


def _roc_auc(y, probabilities):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, probabilities[:, 1])


def _log_loss(y, probabilities):
    from sklearn.metrics import log_loss

    return log_loss(y, probabilities, labels=np.arange(probabilities.shape[1]))


def _accuracy(y, probabilities):
    return float(np.mean(np.argmax(probabilities, axis=1) == y))


def _balanced_accuracy(y, probabilities):
    from sklearn.metrics import balanced_accuracy_score

    return balanced_accuracy_score(y, np.argmax(probabilities, axis=1))


def _rmse(y, predicted):
    return float(np.sqrt(np.mean((y - predicted) ** 2)))


def _mae(y, predicted):
    return float(np.mean(np.abs(y - predicted)))


def _r2(y, predicted):
    from sklearn.metrics import r2_score

    return r2_score(y, predicted)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", "maximize", ("binary",), _roc_auc),
        Metric("log_loss", "minimize", CLASSIFICATION, _log_loss),
        Metric("accuracy", "maximize", CLASSIFICATION, _accuracy),
        Metric("balanced_accuracy", "maximize", CLASSIFICATION, _balanced_accuracy),
        Metric("rmse", "minimize", ("regression",), _rmse),
        Metric("mae", "minimize", ("regression",), _mae),
        Metric("r2", "maximize", ("regression",), _r2),
    )
}


def metric_for(task: str, name: str | None = None) -> Metric:
    """The metric ``name`` (default: the task's), checked to apply to ``task``."""
    name = name or DEFAULT_METRICS[task]
    metric = METRICS.get(name)
    if metric is None or task not in metric.tasks:
        valid = [m.name for m in METRICS.values() if task in m.tasks]
        raise KBError(f"metric {name!r} does not apply to {task} tasks; use one of "
                      f"{', '.join(valid)}")
    return metric
