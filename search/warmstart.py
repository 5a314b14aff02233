"""The known-good configurations a search starts from.

They come from the recommender (``kb.recommend``) where it is installed, and otherwise from
the configurations with the best mean normalized score over the KB's other datasets of the
task. Either way each is fitted to the search space (``search.space.fit_to_space``): one that
needs changes is adapted and says how, one that cannot fit is left out and says why, and one
known to break a limit on the search's hardware is not proposed at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from kb.errors import KBError
from kb.keys import canonical_json
from search.constraints import LIMIT_PREFIX, Limits
from search.space import fit_to_space


@dataclass(frozen=True)
class WarmStart:
    config: dict  # complete, inside the space
    source: str  # "recommender" or "kb-best"
    predicted_score: float | None  # normalized, 1 = best known
    changes: tuple[str, ...] = ()  # what fitting it to the space changed
    evidence: tuple = ()  # dicts naming datasets and trials

    def to_json(self) -> dict:
        return {"config": self.config, "source": self.source,
                "predicted_score": self.predicted_score, "changes": list(self.changes),
                "evidence": list(self.evidence)}

    @classmethod
    def from_json(cls, value: dict) -> WarmStart:
        return cls(config=value["config"], source=value["source"],
                   predicted_score=value["predicted_score"], changes=tuple(value["changes"]),
                   evidence=tuple(value["evidence"]))


@dataclass(frozen=True)
class Refused:
    config: dict
    reason: str


def warm_start(kb, *, dataset_id: str, task: str, space, k: int, hardware_id: str | None,
               limits: Limits, exclude_datasets: Iterable[str] = ()) -> tuple[list[WarmStart], list[Refused]]:
    """Up to ``k`` configurations to start from, and the candidates refused on the way."""
    if k <= 0:
        return [], []
    exclude = tuple(exclude_datasets)
    candidates = _from_recommender(kb, dataset_id, task, 4 * k, hardware_id, limits, exclude,
                                   tuple(space["family"].choices))
    source = "recommender"
    if candidates is None:
        candidates = best_in_kb(kb, task, 4 * k, hardware_id, limits, exclude)
        source = "kb-best"
    chosen, refused, seen = [], [], set()
    for config, predicted, evidence in candidates:
        try:
            fitted = fit_to_space(config, space, task)
        except KBError as e:
            refused.append(Refused(config, str(e)))
            continue
        key = canonical_json(fitted.config)
        if key in seen:
            continue
        seen.add(key)
        chosen.append(WarmStart(fitted.config, source, predicted, fitted.changes, tuple(evidence)))
        if len(chosen) == k:
            break
    return chosen, refused


def _from_recommender(kb, dataset_id, task, n, hardware_id, limits, exclude, space_families):
    try:
        from kb.recommend import recommend
    except ImportError:  # the recommender is optional: fall back to the KB's best
        return None
    families = list(space_families)
    if "hist_gradient_boosting" in families:
        families.append("lightgbm")  # TabRepo's configurations, translated by fit_to_space
    try:
        found = recommend(kb, dataset=dataset_id, task=task, k=n, hardware_id=hardware_id,
                          families=families,
                          max_latency_ms=limits.max_latency_ms,
                          max_memory_mb=limits.max_memory_mb, exclude_datasets=exclude)
    except KBError:
        # Nothing comparable for the recommender (no other dataset has meta-features and
        # trials): the KB's best configurations are still a better start than none.
        return None
    return [(r.config, r.predicted_score, r.evidence) for r in found]


def best_in_kb(kb, task: str, n: int, hardware_id: str | None, limits: Limits,
               exclude: tuple[str, ...]) -> list[tuple[dict, float, list]]:
    """The ``n`` configurations with the best mean normalized score over the KB's datasets of
    ``task`` (per dataset and metric: 1 = its best trial, 0 = its worst), leaving out those
    whose measured median latency or memory on ``hardware_id`` breaks ``limits``."""
    rows = kb.query(f"""
        WITH scored AS (
            SELECT t.dataset_id, d.name AS dataset, t.trial_id, t.config, t.metric, t.score,
                   t.direction, t.hardware_id, t.latency_p50_ms, t.peak_memory_mb
            FROM trials t JOIN datasets d USING (dataset_id)
            WHERE d.task = ? AND t.fidelity = 1 AND t.score IS NOT NULL
              AND (t.status = 'ok' OR (t.status = 'infeasible'
                                       AND starts_with(t.failure_reason, '{LIMIT_PREFIX}')))
              AND NOT list_contains(?, t.dataset_id)
        ), normalized AS (
            SELECT *, CASE WHEN max(score) OVER w = min(score) OVER w THEN 1.0
                           WHEN direction = 'maximize'
                           THEN (score - min(score) OVER w) / (max(score) OVER w - min(score) OVER w)
                           ELSE (max(score) OVER w - score) / (max(score) OVER w - min(score) OVER w)
                      END AS normalized
            FROM scored WINDOW w AS (PARTITION BY dataset_id, metric)
        )
        SELECT config, avg(normalized) AS predicted,
               median(latency_p50_ms) FILTER (WHERE hardware_id = ?) AS latency_ms,
               median(peak_memory_mb) FILTER (WHERE hardware_id = ?) AS memory_mb,
               list({{'dataset': dataset, 'trial_id': trial_id, 'normalized': normalized}}
                    ORDER BY normalized DESC) AS evidence
        FROM normalized GROUP BY config
        ORDER BY predicted DESC, config
        """, params=[task, list(exclude), hardware_id, hardware_id]).to_pylist()
    out = []
    for row in rows:
        if limits.max_latency_ms is not None and row["latency_ms"] is not None \
                and row["latency_ms"] > limits.max_latency_ms:
            continue
        if limits.max_memory_mb is not None and row["memory_mb"] is not None \
                and row["memory_mb"] > limits.max_memory_mb:
            continue
        out.append((json.loads(row["config"]), row["predicted"], row["evidence"][:5]))
        if len(out) == n:
            break
    return out
