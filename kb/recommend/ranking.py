"""The recommender's arithmetic, apart from the KB: normalized outcomes, a distance between
datasets whose feature weights are learned from the outcomes, and a portfolio chosen greedily
for the datasets nearest the query.

The method, a distance-weighted greedy portfolio:

1. Every (dataset, metric) is a *problem*. A configuration's score on it is normalized over
   the configurations tried there: 0 = the best, 1 = the worst (the normalized error).
2. Meta-features are compared as ``metafeatures.similarity`` compares them (signed log,
   centred and scaled by the KB's median and spread), but each feature's weight in the L1
   distance is learned from the KB: the correlation, over pairs of KB datasets, between the
   feature's gap and how differently the two rank the same configurations (mean absolute
   difference of normalized error). Features that do not tell datasets with different
   winners apart weigh 0. (Non-negative least squares instead did no better on TabRepo.)
3. Each KB dataset weighs ``exp(-distance / (bandwidth * median distance))``, split evenly
   over its problems.
4. Configurations are picked one at a time, each the one that most lowers the weighted mean,
   over problems, of the best normalized error among those picked so far (TabRepo's zero-shot
   portfolio, with weights). The list is therefore a portfolio: the second configuration is
   the one that best complements the first, not the second best on its own.

With equal weights step 4 is TabRepo's zero-shot portfolio, which is what ``portfolio``
returns. Left out on leave-one-task-out over TabRepo's 62 tasks (tests/benchmarks/
bench_recommender.py): restricting the KB to the query's task type, which made every k worse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_BANDWIDTH = 1.0  # times the median distance from the query to the KB's datasets
MAX_PAIRS = 5000  # dataset pairs the feature weights are fitted on (sampled beyond that)
MIN_SHARED_CONFIGS = 3  # two problems sharing fewer configurations say nothing of each other


@dataclass(frozen=True)
class Outcomes:
    """Normalized errors of configurations (columns) on problems (rows); NaN: not tried."""

    datasets: tuple[str, ...]  # the dataset of each problem
    metrics: tuple[str, ...]  # the metric of each problem
    configs: tuple[str, ...]  # config ids
    error: np.ndarray  # problems x configs, 0 = the problem's best configuration, 1 = its worst
    score: np.ndarray  # the raw (mean) scores, same shape
    trial_ids: np.ndarray  # a trial behind each score (None where not given), same shape

    def of_datasets(self, dataset_ids: Iterable[str]) -> Outcomes:
        """The problems of these datasets only."""
        wanted = set(dataset_ids)
        rows = np.array([d in wanted for d in self.datasets], dtype=bool)
        return Outcomes(tuple(d for d, r in zip(self.datasets, rows) if r),
                        tuple(m for m, r in zip(self.metrics, rows) if r), self.configs,
                        self.error[rows], self.score[rows], self.trial_ids[rows])


def normalize(datasets: Sequence[str], metrics: Sequence[str], directions: Sequence[str],
              configs: Sequence[str], scores: Sequence[float],
              trial_ids: Sequence[str] | None = None) -> Outcomes:
    """Outcomes from one row per (dataset, metric, config): its mean score, the metric's
    direction and (optionally) a trial that scored it. Problems where every configuration
    scored alike are left out (they rank nothing)."""
    datasets, metrics, configs = (np.asarray(v, dtype=object) for v in (datasets, metrics, configs))
    problem_keys = np.char.add(np.char.add(datasets.astype(str), "\x1f"), metrics.astype(str))
    _, first_row, problem_index = np.unique(problem_keys, return_index=True, return_inverse=True)
    config_ids, config_index = np.unique(configs.astype(str), return_inverse=True)
    shape = (len(first_row), len(config_ids))
    score = np.full(shape, np.nan)
    score[problem_index, config_index] = np.asarray(scores, dtype=np.float64)
    trials = np.full(shape, None, dtype=object)
    if trial_ids is not None:
        trials[problem_index, config_index] = np.asarray(trial_ids, dtype=object)
    if not len(first_row):
        return Outcomes((), (), (), np.zeros((0, 0)), np.zeros((0, 0)), np.zeros((0, 0), dtype=object))
    sign = np.ones(shape[0])
    sign[problem_index[np.asarray(directions) == "maximize"]] = -1.0  # error grows as score falls
    error_like = score * sign[:, None]
    best, worst = np.nanmin(error_like, axis=1), np.nanmax(error_like, axis=1)
    spread = worst - best
    keep = spread > 0
    error = (error_like[keep] - best[keep, None]) / spread[keep, None]
    return Outcomes(tuple(datasets[first_row[keep]]), tuple(metrics[first_row[keep]]),
                    tuple(config_ids.tolist()), error, score[keep], trials[keep])


# -- distances ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Space:
    """The KB datasets' meta-features, scaled, with a learned weight per feature."""

    dataset_ids: tuple[str, ...]
    features: tuple[str, ...]
    scaled: np.ndarray  # datasets x features, NaN where a dataset lacks the feature
    scaling: object  # metafeatures.similarity.Scaling
    weights: np.ndarray  # per feature, >= 0, not all 0
    learned: bool  # False: too little evidence to learn from, every feature weighs 1

    def scale(self, vector: Mapping[str, float]) -> np.ndarray:
        from metafeatures.similarity import signed_log

        raw = np.array([vector.get(f, np.nan) for f in self.features], dtype=np.float64)
        raw[~np.isfinite(raw)] = np.nan
        return (signed_log(raw) - self.scaling.centre) / self.scaling.spread

    def distances(self, vector: Mapping[str, float]) -> np.ndarray:
        """Weighted mean absolute difference to each dataset over the features both have;
        NaN for a dataset sharing no weighted feature with ``vector``."""
        diff = np.abs(self.scaled - self.scale(vector))
        present = np.isfinite(diff) & (self.weights > 0)
        total = np.where(present, diff, 0.0) @ self.weights
        weight = present @ self.weights
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(weight > 0, total / weight, np.nan)


def fit_space(vectors: Mapping[str, Mapping[str, float]], outcomes: Outcomes, *, seed: int = 0) -> Space:
    """Scale the datasets' meta-features and learn the feature weights from ``outcomes``."""
    from metafeatures.similarity import fit_scaling, signed_log

    scaling = fit_scaling(vectors)
    features = scaling.features
    ids = tuple(vectors)
    raw = np.array([[vectors[d].get(f, np.nan) for f in features] for d in ids], dtype=np.float64)
    raw[~np.isfinite(raw)] = np.nan
    scaled = (signed_log(raw) - scaling.centre) / scaling.spread
    weights = learn_feature_weights(ids, scaled, outcomes, seed=seed)
    learned = weights is not None
    return Space(ids, features, scaled, scaling, weights if learned else np.ones(len(features)), learned)


def learn_feature_weights(dataset_ids: Sequence[str], scaled: np.ndarray, outcomes: Outcomes, *,
                          seed: int = 0) -> np.ndarray | None:
    """Each feature's weight: the correlation, over pairs of KB datasets, between the gap in
    that feature |z_if - z_jf| and how differently the two rank configurations (mean absolute
    difference of normalized error), 0 where it is not positive. None when there is too
    little to learn from, or no feature tells datasets with different winners apart."""
    row_of = {d: i for i, d in enumerate(dataset_ids)}
    problems = [p for p, d in enumerate(outcomes.datasets) if d in row_of]
    if len(problems) < 3 or scaled.shape[1] == 0:
        return None
    first, second = np.triu_indices(len(problems), 1)
    if len(first) > MAX_PAIRS:
        pick = np.random.default_rng(seed).choice(len(first), MAX_PAIRS, replace=False)
        first, second = first[pick], second[pick]
    problems = np.array(problems)
    a, b = outcomes.error[problems[first]], outcomes.error[problems[second]]
    shared = np.isfinite(a) & np.isfinite(b)
    n_shared = shared.sum(axis=1)
    rows_a = np.array([row_of[outcomes.datasets[p]] for p in problems[first]])
    rows_b = np.array([row_of[outcomes.datasets[p]] for p in problems[second]])
    usable = (n_shared >= MIN_SHARED_CONFIGS) & (rows_a != rows_b)
    if usable.sum() < 10:
        return None
    dissimilar = np.where(shared, np.abs(a - b), 0.0).sum(axis=1)[usable] / n_shared[usable]
    gaps = np.abs(scaled[rows_a[usable]] - scaled[rows_b[usable]])
    # A feature one side lacks says nothing of that pair: its typical gap stands in.
    typical = np.nanmean(np.where(np.isfinite(gaps), gaps, np.nan), axis=0)
    typical = np.where(np.isfinite(typical), typical, 0.0)
    gaps = np.where(np.isfinite(gaps), gaps, typical)
    gaps = gaps - gaps.mean(axis=0)
    dissimilar = dissimilar - dissimilar.mean()
    norms = np.sqrt((gaps ** 2).sum(axis=0) * (dissimilar ** 2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.where(norms > 0, gaps.T @ dissimilar / norms, 0.0).clip(min=0.0)
    return weights / weights.sum() if weights.sum() > 0 else None


def kernel_weights(distances: np.ndarray, bandwidth: float = DEFAULT_BANDWIDTH) -> np.ndarray:
    """exp(-d / (bandwidth x median d)); 0 where the distance is unknown (NaN)."""
    known = np.isfinite(distances)
    if not known.any():
        return np.zeros_like(distances)
    scale = bandwidth * np.median(distances[known])
    if not scale > 0:
        return known.astype(np.float64)
    return np.where(known, np.exp(-np.where(known, distances, 0.0) / scale), 0.0)


# -- the portfolio -----------------------------------------------------------------------------


def greedy_portfolio(error: np.ndarray, problem_weights: np.ndarray, k: int,
                     tiers: np.ndarray | None = None) -> list[int]:
    """Up to ``k`` columns of ``error`` (problems x configs, NaN: not tried), each the one that
    most lowers the weighted mean over problems of the best error picked so far.

    A configuration not tried on a problem counts as that problem's median there (neither
    good nor bad). ``tiers`` (an int per config) picks from lower tiers before any higher one
    (configurations with cost evidence before those without); ties go to the lower column.
    """
    n_configs = error.shape[1]
    if n_configs == 0 or k <= 0:
        return []
    # A problem none of these configurations was tried on tells them apart in nothing: it
    # counts 0 for every one (left as NaN it would make every objective NaN).
    tried = np.isfinite(error).any(axis=1)
    typical = np.zeros(error.shape[0])
    if tried.any():
        typical[tried] = np.nanmedian(error[tried], axis=1)
    filled = np.where(np.isfinite(error), error, typical[:, None])
    weights = problem_weights / problem_weights.sum() if problem_weights.sum() > 0 \
        else np.full(len(problem_weights), 1.0 / max(len(problem_weights), 1))
    tiers = np.zeros(n_configs, dtype=np.int64) if tiers is None else np.asarray(tiers)
    best_so_far = np.full(error.shape[0], np.inf)
    available = np.ones(n_configs, dtype=bool)
    chosen: list[int] = []
    while len(chosen) < min(k, n_configs):
        tier = tiers[available].min()
        objective = weights @ np.minimum(best_so_far[:, None], filled)
        objective[~(available & (tiers == tier))] = np.inf
        pick = int(np.argmin(objective))
        chosen.append(pick)
        available[pick] = False
        best_so_far = np.minimum(best_so_far, filled[:, pick])
    return chosen


@dataclass(frozen=True)
class Prediction:
    score: float  # weighted mean normalized score (1 = best) where the configuration was tried
    uncertainty: float
    problems: np.ndarray  # the problems it was tried on, heaviest (nearest) first, then best


def predict(outcomes: Outcomes, problem_weights: np.ndarray, column: int) -> Prediction:
    """A configuration's predicted normalized score from the problems it was tried on.

    The uncertainty is the weighted standard deviation of its normalized score over those
    problems, shrunk towards the spread of all scores in ``outcomes`` when there are few of
    them (one problem alone says nothing of how much the score varies).
    """
    scores = 1.0 - outcomes.error[:, column]
    tried = np.flatnonzero(np.isfinite(scores) & (problem_weights > 0))
    if tried.size == 0:
        tried = np.flatnonzero(np.isfinite(scores))
        weights = np.ones(tried.size)
    else:
        weights = problem_weights[tried]
    if tried.size == 0:
        return Prediction(float("nan"), float("nan"), tried)
    values = scores[tried]
    mean = float(np.average(values, weights=weights))
    variance = float(np.average((values - mean) ** 2, weights=weights))
    effective = weights.sum() ** 2 / (weights ** 2).sum()
    prior = float(np.nanvar(outcomes.error))
    uncertainty = float(np.sqrt((effective * variance + prior) / (effective + 1.0)))
    order = tried[np.lexsort((-values, -weights))]  # heaviest first, then best
    return Prediction(mean, uncertainty, order)


def weighted_cost(entries: Sequence[tuple[str, float | None, float | None]], position: int,
                  dataset_weights: Mapping[str, float]) -> float | None:
    """The weighted mean of one measure (1: latency, 2: memory) over the datasets it was taken
    on; a dataset without a weight (no meta-features) weighs as the lightest one that has one."""
    values = [(entry[0], entry[position]) for entry in entries if entry[position] is not None]
    if not values:
        return None
    positive = [w for w in dataset_weights.values() if w > 0]
    floor = min(positive) if positive else 1.0
    weights = np.array([dataset_weights.get(d, 0.0) or floor for d, _ in values])
    return float(np.average([v for _, v in values], weights=weights))


@dataclass(frozen=True)
class CostJudgement:
    latency_ms: list[float | None]  # predicted, per configuration
    memory_mb: list[float | None]
    keep: np.ndarray  # False: breaks a limit
    tiers: np.ndarray  # 1: a limit it cannot be judged on (never measured), 0 otherwise


def judge_costs(configs: Sequence[str], costs: Mapping[str, Sequence], dataset_weights: Mapping[str, float],
                max_latency_ms: float | None, max_memory_mb: float | None) -> CostJudgement:
    """Predict each configuration's latency and memory from ``costs`` ({config_id:
    [(dataset_id, latency, memory)]}) and judge them against the limits."""
    latencies = [weighted_cost(costs.get(c, ()), 1, dataset_weights) for c in configs]
    memories = [weighted_cost(costs.get(c, ()), 2, dataset_weights) for c in configs]
    keep = np.ones(len(configs), dtype=bool)
    tiers = np.zeros(len(configs), dtype=np.int64)
    for column, measured in enumerate(zip(latencies, memories)):
        checks = list(zip((max_latency_ms, max_memory_mb), measured))
        keep[column] = not any(limit is not None and value is not None and value > limit
                               for limit, value in checks)
        tiers[column] = any(limit is not None and value is None for limit, value in checks)
    return CostJudgement(latencies, memories, keep, tiers)

