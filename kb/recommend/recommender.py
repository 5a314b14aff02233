"""``recommend`` (configurations for a dataset or a meta-feature vector) and ``portfolio``
(zero-shot, for no dataset in particular): the KB's evidence in, ``Recommendation``s out.
The method is described in ``kb/recommend/ranking.py``.

Limits are judged on the given hardware row: a configuration whose predicted latency (p50 at
batch 1) or peak memory there breaks a limit is not recommended. One the KB never measured
there cannot be judged; it is still recommended, after every measured one that keeps the
limits, with ``predicted_latency_ms`` / ``predicted_memory_mb`` None to say so. A hardware id
with no trials at all (a profile not measured yet) leaves every configuration unmeasured.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

from kb.errors import KBError
from kb.recommend import evidence as kb_evidence
from kb.recommend.ranking import (DEFAULT_BANDWIDTH, Outcomes, fit_space, greedy_portfolio,
                                  judge_costs, kernel_weights, predict)
from kb.schema import TASKS

EVIDENCE_SHOWN = 5  # datasets listed as evidence per recommendation, nearest first


@dataclass(frozen=True)
class Recommendation:
    config_id: str
    config: dict  # the stored canonical config, "family" key included
    model_family: str
    predicted_score: float  # normalized: 1 = best known on comparable datasets, 0 = worst
    uncertainty: float
    predicted_latency_ms: float | None  # on the requested hardware, where the KB can say
    predicted_memory_mb: float | None
    evidence: tuple  # dicts: dataset_id, dataset, trial_id, metric, score, normalized_score, distance, weight

    def to_json(self) -> dict:
        out = asdict(self)
        out["evidence"] = list(self.evidence)
        return out


@dataclass(frozen=True)
class _Limits:
    hardware_id: str | None
    max_latency_ms: float | None
    max_memory_mb: float | None

    @property
    def any(self) -> bool:
        return self.max_latency_ms is not None or self.max_memory_mb is not None


def recommend(kb, *, dataset: str | None = None, metafeatures: Mapping[str, float] | None = None,
              task: str, k: int = 10, hardware_id: str | None = None,
              max_latency_ms: float | None = None, max_memory_mb: float | None = None,
              families: Iterable[str] | None = None, exclude_datasets: Iterable[str] = (),
              candidates: Iterable[str] | None = None,
              bandwidth: float = DEFAULT_BANDWIDTH) -> list[Recommendation]:
    """The ``k`` configurations to try first on ``dataset`` (a registered name or id; its
    meta-features are computed and stored if it has none) or on a dataset described by
    ``metafeatures`` (OpenML, auto-sklearn, pymfe or metakb names) of ``task``.

    ``exclude_datasets`` (ids) contribute nothing: not their trials, not their meta-features.
    ``candidates`` (config ids), if given, are the only configurations recommended; every
    other one still counts as evidence of how the datasets compare.
    """
    limits = _check(task, k, hardware_id, max_latency_ms, max_memory_mb)
    if (dataset is None) == (metafeatures is None):
        raise KBError("give a dataset or its meta-features (one of them)")
    if not bandwidth > 0:
        raise KBError(f"the bandwidth must be positive, not {bandwidth!r}")
    from kb.metafeature_store import stored_vectors

    exclude = tuple(exclude_datasets)
    outcomes = kb_evidence.read_outcomes(kb, exclude=exclude, families=families)
    kb_vectors = stored_vectors(kb)
    query = _query_vector(kb, dataset, metafeatures, task, kb_vectors)
    tried = set(outcomes.datasets)
    vectors = {d: v for d, v in kb_vectors.vectors.items() if d in tried and d not in exclude}
    if not vectors:
        raise KBError("the KB holds no scored trials on datasets with meta-features"
                      + (" of these families" if families is not None else "")
                      + "; ingest some (`kb ingest ... --format tabrepo`) or run `kb metafeatures --all`")
    space = fit_space(vectors, outcomes)
    distances = space.distances(query)
    if not np.isfinite(distances).any():
        raise KBError("the query shares no meta-feature with the KB's datasets that have trials")
    weights = dict(zip(space.dataset_ids, kernel_weights(distances, bandwidth)))
    return _rank(kb, outcomes, weights, dict(zip(space.dataset_ids, distances)), k, limits, exclude,
                 candidates)


def portfolio(kb, *, task: str, k: int, hardware_id: str | None = None,
              max_latency_ms: float | None = None, max_memory_mb: float | None = None,
              families: Iterable[str] | None = None, exclude_datasets: Iterable[str] = (),
              candidates: Iterable[str] | None = None) -> list[Recommendation]:
    """``k`` configurations that together do best over every dataset in the KB, each dataset
    counting once (TabRepo's zero-shot portfolio): where to start with no dataset in hand.
    ``candidates`` as for ``recommend``."""
    limits = _check(task, k, hardware_id, max_latency_ms, max_memory_mb)
    exclude = tuple(exclude_datasets)
    outcomes = kb_evidence.read_outcomes(kb, exclude=exclude, families=families)
    if not outcomes.datasets:
        raise KBError("the KB holds no scored trials to build a portfolio from"
                      + (" in these families" if families is not None else ""))
    weights = {d: 1.0 for d in outcomes.datasets}
    return _rank(kb, outcomes, weights, {}, k, limits, exclude, candidates)


def _check(task, k, hardware_id, max_latency_ms, max_memory_mb) -> _Limits:
    if task not in TASKS:
        raise KBError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if not isinstance(k, int) or k < 1:
        raise KBError(f"k must be a positive whole number, not {k!r}")
    for name, value in (("max-latency-ms", max_latency_ms), ("max-memory-mb", max_memory_mb)):
        if value is not None and not value > 0:
            raise KBError(f"{name} must be a positive number, not {value!r}")
    limits = _Limits(hardware_id, max_latency_ms, max_memory_mb)
    if limits.any and hardware_id is None:
        raise KBError("a latency or memory limit needs a hardware row to judge it on "
                      "(latency and memory are measured per hardware profile)")
    return limits


def _query_vector(kb, dataset, metafeatures, task, kb_vectors) -> dict[str, float]:
    from kb.metafeature_store import characterise, user_errors

    if dataset is not None:
        from kb.datasets import get

        record = get(kb, dataset)
        if record.task != task:
            raise KBError(f"{record.name} is a {record.task} dataset, not {task}")
        stored = kb_vectors.vectors.get(record.dataset_id)
        return stored if stored else dict(characterise(kb, record.dataset_id).extraction.values)
    from metafeatures import to_metakb

    with user_errors():
        converted = to_metakb(metafeatures, task=task).values
    if not converted:
        shown = ", ".join(sorted(metafeatures)[:5]) or "none"
        raise KBError(f"no meta-feature name is recognised (found: {shown}); names may be "
                      f"OpenML's, auto-sklearn's, pymfe's or metakb's")
    return converted


def _rank(kb, outcomes: Outcomes, dataset_weights: dict[str, float],
          distances: dict[str, float], k: int, limits: _Limits,
          exclude: tuple[str, ...], candidates: Iterable[str] | None = None) -> list[Recommendation]:
    outcomes = outcomes.of_datasets(dataset_weights)
    problem_weights = _problem_weights(outcomes, dataset_weights)
    costs = (kb_evidence.read_costs(kb, limits.hardware_id, outcomes.configs, exclude)
             if limits.hardware_id is not None else {})
    judged = judge_costs(outcomes.configs, costs, dataset_weights, limits.max_latency_ms,
                         limits.max_memory_mb)
    keep = judged.keep
    if candidates is not None:
        allowed = set(candidates)
        keep = keep & np.array([c in allowed for c in outcomes.configs], dtype=bool)
    columns = np.flatnonzero(keep)
    picked = [int(columns[i]) for i in greedy_portfolio(outcomes.error[:, columns], problem_weights,
                                                        k, judged.tiers[columns])]
    configs = kb_evidence.read_configs(kb, [outcomes.configs[c] for c in picked])
    names = kb_evidence.dataset_names(kb, outcomes.datasets)
    out = []
    for column in picked:
        config, family = configs[outcomes.configs[column]]
        prediction = predict(outcomes, problem_weights, column)
        evidence = [_evidence(outcomes, names, distances, problem_weights, problem, column)
                    for problem in prediction.problems[:EVIDENCE_SHOWN]]
        out.append(Recommendation(
            config_id=outcomes.configs[column], config=config, model_family=family,
            predicted_score=prediction.score, uncertainty=prediction.uncertainty,
            predicted_latency_ms=judged.latency_ms[column], predicted_memory_mb=judged.memory_mb[column],
            evidence=tuple(evidence)))
    return out


def _problem_weights(outcomes: Outcomes, dataset_weights: Mapping[str, float]) -> np.ndarray:
    """Each dataset's weight split over its problems, so a dataset scored under two metrics
    counts once."""
    per_dataset = Counter(outcomes.datasets)
    return np.array([dataset_weights[d] / per_dataset[d] for d in outcomes.datasets])


def _evidence(outcomes: Outcomes, names, distances, problem_weights, problem: int,
              column: int) -> dict:
    dataset_id, metric = outcomes.datasets[problem], outcomes.metrics[problem]
    distance = distances.get(dataset_id)
    return {"dataset_id": dataset_id, "dataset": names.get(dataset_id, dataset_id),
            "trial_id": outcomes.trial_ids[problem, column], "metric": metric,
            "score": float(outcomes.score[problem, column]),
            "normalized_score": float(1.0 - outcomes.error[problem, column]),
            "distance": None if distance is None else float(distance),
            "weight": float(problem_weights[problem])}
