"""The known successes the audit examines: the best feasible trial of each dataset, metric
and hardware row, with the dataset and hardware records it names and the runner-up's score
(how far the claim stands above the next-best evidence on the same problem)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kb.schema import Dataset, Hardware, Trial


@dataclass(frozen=True)
class KnownSuccess:
    trial: Trial
    dataset: Dataset | None  # None: the trial names a dataset the KB does not hold
    hardware: Hardware | None  # None: the trial names a hardware row the KB does not hold
    runner_up: float | None  # the second-best feasible score on the same problem, if any
    feasible_trials: int  # feasible trials on the same problem, the success included

    @property
    def name(self) -> str:
        dataset = self.dataset.name if self.dataset else self.trial.dataset_id
        # Two machines' rows share a profile name (cpu-1t): the id's head tells them apart.
        hardware = f"{self.hardware.name} {self.trial.hardware_id[:8]}" if self.hardware \
            else self.trial.hardware_id
        return f"{dataset} / {self.trial.metric} / {hardware}"

    @property
    def lead(self) -> float | None:
        """How far the success stands above the runner-up, in units of its own CV spread
        (None when there is no runner-up or no spread)."""
        if self.runner_up is None or not self.trial.score_std:
            return None
        gap = self.trial.score - self.runner_up
        return (gap if self.trial.direction == "maximize" else -gap) / self.trial.score_std


# One row per (dataset, metric, hardware): the best feasible full-fidelity trial. Ties go to
# the lower trial id, so the same KB always names the same successes.
_RANKED = """
    WITH feasible AS (
        SELECT *, CASE WHEN direction = 'maximize' THEN -score ELSE score END AS cost
        FROM trials
        WHERE status = 'ok' AND fidelity = 1 AND score IS NOT NULL {where}
    ), ranked AS (
        SELECT *, row_number() OVER w AS position, count(*) OVER p AS n_feasible,
               lead(score) OVER w AS next_score
        FROM feasible
        WINDOW p AS (PARTITION BY dataset_id, metric, hardware_id),
               w AS (PARTITION BY dataset_id, metric, hardware_id ORDER BY cost, trial_id)
    )
    SELECT * EXCLUDE (cost, position, n_feasible, next_score),
           n_feasible, next_score
    FROM ranked WHERE position = 1
    ORDER BY dataset_id, metric, hardware_id
"""


def known_successes(kb, *, hardware_ids: Iterable[str] | None = None) -> list[KnownSuccess]:
    """Every known success in ``kb`` (on the given hardware rows only, if any are given)."""
    params: list = []
    where = ""
    if hardware_ids is not None:
        where, params = "AND list_contains(?, hardware_id)", [sorted(hardware_ids)]
    rows = kb.query(_RANKED.format(where=where), params).to_pylist()
    datasets = {r["dataset_id"]: Dataset(**r) for r in kb.query("SELECT * FROM datasets").to_pylist()}
    hardware = {r["hardware_id"]: Hardware(**r) for r in kb.query("SELECT * FROM hardware").to_pylist()}
    out = []
    for row in rows:
        n_feasible, runner_up = row.pop("n_feasible"), row.pop("next_score")
        trial = Trial(**row)
        out.append(KnownSuccess(trial, datasets.get(trial.dataset_id),
                                hardware.get(trial.hardware_id), runner_up, int(n_feasible)))
    return out
