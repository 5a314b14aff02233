"""Assembly of new architectures under a latency limit (pure computation).

Candidates are members of a space described by an encoding (``fragments.transfer``: the
operation on each NAS-Bench-201 edge, or fragment counts). Each fragment's *contribution to
score* is learned from the KB's trials of the space on a dataset (``score_contributions``:
ridge regression of the score on the encoding), so a candidate nobody trained still gets a
predicted score; a candidate with a recorded score keeps it. ``propose`` then keeps the
candidates whose predicted latency, widened by a safety margin, fits the limit, and returns
the best ``k`` by score: those get built and measured, and ``best_measured`` picks the winner
among what was actually measured, so a limit is never judged on a prediction alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kb.errors import KBError

SCORE_RIDGE = 1.0
DEFAULT_MARGIN = 0.05  # predicted latency x (1 + margin) must fit the limit


def score_contributions(features: np.ndarray, scores: np.ndarray, *,
                        ridge: float = SCORE_RIDGE) -> np.ndarray:
    """Per-feature contribution to score (the last feature is the intercept, not shrunk)."""
    features = np.asarray(features, float)
    scores = np.asarray(scores, float)
    if len(scores) < 2:
        raise KBError(f"learning what each fragment contributes to the score needs recorded "
                      f"trials of the space; the KB has {len(scores)}")
    penalty = np.full(features.shape[1], ridge)
    penalty[-1] = 0.0
    gram = features.T @ features + np.diag(penalty)
    return np.linalg.lstsq(gram, features.T @ scores, rcond=None)[0]


def predicted_scores(features: np.ndarray, contributions: np.ndarray,
                     recorded: Mapping[int, float] | None = None) -> np.ndarray:
    """Each candidate's score: recorded where the KB has one (by candidate index), else the
    sum of its fragments' contributions."""
    out = np.asarray(features, float) @ contributions
    for index, score in (recorded or {}).items():
        out[index] = score
    return out


def propose(scores: np.ndarray, latency_ms: np.ndarray, limit_ms: float, k: int, *,
            margin: float = DEFAULT_MARGIN, exclude=()) -> np.ndarray:
    """Indices of the ``k`` best-scoring candidates whose latency x (1 + margin) fits
    ``limit_ms``, best first (fewer when fewer fit); ``exclude`` are left out."""
    if limit_ms <= 0:
        raise KBError(f"the latency limit must be above 0 ms, not {limit_ms:g}")
    fits = np.asarray(latency_ms, float) * (1 + margin) <= limit_ms
    fits[list(exclude)] = False
    order = np.argsort(-np.where(fits, scores, -np.inf), kind="stable")
    return order[:min(k, int(fits.sum()))]


def best_measured(measured_ms: Mapping[int, float], scores: np.ndarray,
                  limit_ms: float) -> int | None:
    """The best-scoring candidate whose *measured* latency fits the limit, or None."""
    fitting = [i for i, ms in measured_ms.items() if ms <= limit_ms]
    return max(fitting, key=lambda i: (scores[i], -measured_ms[i])) if fitting else None
