"""The baseline KB: one portfolio of configurations evaluated on every dataset under a profile.

The same configurations on every dataset of a task is what lets the recommender compare
datasets and configurations at all. The portfolio is each family's space default followed
by seeded random points of the search space (``search.space.sample_configs``), so a larger
portfolio extends a smaller one. With ``from_best`` K it also holds the K best
configurations the KB knows on each of the task's datasets (found by searches there), so a
configuration tuned on one dataset is measured on all the others: that is what tells the
recommender whether it travels. A trial already in the KB (same dataset, configuration,
seed, fidelity and hardware) is not run again, which makes a bootstrap resumable.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kb.datasets import LoadedDataset
from kb.keys import canonical_json
from kb.validation import derived_id
from search.execution import Executor
from search.profiles import Profile
from search.runs import finish_run, start_run
from search.space import sample_configs
from search.trial import TrialLimits, TrialResult, plan_trial, run_trial


@dataclass(frozen=True)
class PlannedTrial:
    dataset: LoadedDataset
    config: dict
    trial_id: str


@dataclass(frozen=True)
class BootstrapSummary:
    run_id: str
    planned: int
    already_in_kb: int
    statuses: dict  # status -> trials run now


def best_configs(kb, dataset_ids: Sequence[str], k: int) -> list[dict]:
    """The ``k`` best configurations of each of these datasets (ok, full fidelity, by mean
    score under the dataset's metric), without repeats, in a stable order."""
    if k <= 0 or not dataset_ids:
        return []
    rows = kb.query("""
        WITH scored AS (
            SELECT dataset_id, metric, config_id, any_value(config) AS config,
                   avg(CASE WHEN direction = 'maximize' THEN -score ELSE score END) AS cost
            FROM trials
            WHERE status = 'ok' AND fidelity = 1 AND score IS NOT NULL AND source = 'metakb'
              AND list_contains(?, dataset_id)
            GROUP BY dataset_id, metric, config_id
        )
        SELECT config_id, any_value(config) AS config FROM (
            SELECT *, row_number() OVER (PARTITION BY dataset_id, metric ORDER BY cost, config_id) AS rank
            FROM scored) WHERE rank <= ?
        GROUP BY config_id ORDER BY config_id""", [list(dataset_ids), k]).to_pylist()
    return [json.loads(r["config"]) for r in rows]


def plan_bootstrap(kb, datasets: Sequence[LoadedDataset], profile: Profile, portfolio: int,
                   seed: int, limits: TrialLimits, from_best: int = 0) -> tuple[list[PlannedTrial], int]:
    """(trials to run, trials already in the KB) for ``portfolio`` configurations per dataset,
    and the ``from_best`` best configurations of every dataset of the same task."""
    stored = {r["trial_id"] for r in kb.query("SELECT trial_id FROM trials").to_pylist()}
    todo, present = [], 0
    by_task: dict[str, list[str]] = {}
    for dataset in datasets:
        by_task.setdefault(dataset.record.task, []).append(dataset.record.dataset_id)
    tuned = {task: best_configs(kb, ids, from_best) for task, ids in by_task.items()}
    for dataset in datasets:
        task = dataset.record.task
        configs = sample_configs(task, portfolio, seed) if portfolio else []  # complete, valid
        sampled = {canonical_json(c) for c in configs}
        configs += [c for c in tuned[task] if canonical_json(c) not in sampled]
        if not configs:
            continue
        # Planning one checks the profile, metric and seed here, before anything runs, and
        # names the hardware row every trial of the dataset will have on this machine.
        plan = plan_trial(dataset, configs[0], profile, seed, limits=limits)
        for config in configs:
            trial_id = derived_id("trials", "trial_id", dataset_id=dataset.record.dataset_id,
                                  config=canonical_json(config), metric=plan.metric,
                                  seed=seed, fidelity=1.0, hardware_id=plan.hardware.hardware_id)
            if trial_id in stored:
                present += 1
            else:
                todo.append(PlannedTrial(dataset, config, trial_id))
    return todo, present


def _characterise_missing(kb, datasets: Sequence[LoadedDataset]) -> None:
    """Meta-features for every dataset that lacks them: what makes its trials evidence the
    recommender can use for other datasets."""
    from kb.metafeature_store import characterise

    have = {r["dataset_id"] for r in kb.query(
        "SELECT DISTINCT dataset_id FROM metafeatures WHERE extractor = 'metakb'").to_pylist()}
    for dataset in datasets:
        if dataset.record.dataset_id not in have:
            characterise(kb, dataset.record.dataset_id)


def bootstrap(kb, datasets: Sequence[LoadedDataset], profile: Profile, *, portfolio: int,
              from_best: int = 0, seed: int = 0, limits: TrialLimits = TrialLimits(time_s=180.0, train_threads=1),
              executor: Executor, on_result: Callable[[TrialResult, int, int], None] = lambda *a: None,
              arguments: dict | None = None) -> BootstrapSummary:
    """Run the portfolio on ``datasets``; each trial is written to the KB as it finishes.

    ``on_result(result, done, total)`` is called after each write (for progress).
    """
    todo, present = plan_bootstrap(kb, datasets, profile, portfolio, seed, limits, from_best)
    _characterise_missing(kb, datasets)
    run = start_run(kb, "bootstrap", arguments or {
        "datasets": [d.record.dataset_id for d in datasets], "hardware": profile.name,
        "portfolio": portfolio, "from_best": from_best, "seed": seed})
    statuses: Counter = Counter()
    status = "interrupted"
    try:
        queue = list(todo)
        running: dict = {}
        while queue or running:
            while queue and len(running) < executor.slots:
                item = queue.pop(0)
                future = executor.submit(run_trial, item.dataset, item.config, profile, seed,
                                         limits=limits, run_id=run.run_id)
                running[future] = item
            done, _ = executor.wait_first(running)
            for future in done:
                running.pop(future)
                result = future.result()
                result.write(kb, on_conflict="keep")
                statuses[result.trial.status] += 1
                on_result(result, sum(statuses.values()), len(todo))
        status = "finished"
    finally:
        finish_run(kb, run, status, {"planned": len(todo) + present, "already_in_kb": present,
                                     **statuses})
    return BootstrapSummary(run.run_id, len(todo) + present, present, dict(statuses))
