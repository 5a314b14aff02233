"""Does the KB's memory pay? Leave-one-dataset-out replays over the trials the KB holds.

For each dataset with enough scored configurations, the dataset is removed from the KB and
each way of choosing ranks the configurations that were run on it (so every choice has a
known score there):

- ``recommender``: ``kb recommend`` for the dataset's meta-features;
- ``zero-shot portfolio``: the portfolio that does best over the other datasets, blind to
  this one (``kb recommend --portfolio``);
- ``family default``: the default configuration of the recommender's first pick's family
  (the same family, without the KB's choice of hyperparameters);
- ``random order``: what trying them in a random order is expected to give (exactly, not
  sampled).

The first picks feed the ``value`` check; the whole orders give best-so-far curves, warm
against cold, for the report. Regret is normalized per dataset: 0 = the best configuration
known there, 1 = the worst.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kb.audit.value import (DEFAULT, PORTFOLIO, RANDOM, RECOMMENDER, HeldOut, Pick,
                            best_feasible_so_far, best_so_far, expected_best_regret, regret)
from kb.errors import KBError

MIN_CONFIGS = 5  # a dataset with fewer scored configurations ranks too little to judge by


@dataclass(frozen=True)
class Replay:
    """One held-out dataset: the first picks and each method's best-so-far regret curve."""

    held_out: HeldOut
    curves: Mapping[str, tuple[float, ...]]  # method -> best regret after 1, 2, ... trials


def scored_configs(kb, dataset_id: str) -> tuple[str, str, dict[str, float]] | None:
    """(metric, direction, {config_id: mean score}) of a dataset's scored full-fidelity
    trials under its most used metric, over every hardware row (training does not depend on
    where a model is measured); None if it has none."""
    rows = kb.query("""
        SELECT metric, any_value(direction) AS direction, config_id, avg(score) AS score
        FROM trials WHERE dataset_id = ? AND status = 'ok' AND fidelity = 1 AND score IS NOT NULL
        GROUP BY metric, config_id""", [dataset_id]).to_pylist()
    if not rows:
        return None
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["metric"]] = counts.get(r["metric"], 0) + 1
    metric = max(sorted(counts), key=counts.get)
    mine = [r for r in rows if r["metric"] == metric]
    return metric, mine[0]["direction"], {r["config_id"]: r["score"] for r in mine}


def _scored_elsewhere(kb, dataset_id: str) -> set[str]:
    return {r["config_id"] for r in kb.query(
        """SELECT DISTINCT config_id FROM trials WHERE dataset_id != ? AND status = 'ok'
           AND fidelity = 1 AND score IS NOT NULL""", [dataset_id]).to_pylist()}


def replay(kb, dataset, family_defaults: Mapping[tuple[str, str], str]) -> Replay | None:
    """The replay of one dataset (a ``Dataset`` record), or None when it has fewer than
    ``MIN_CONFIGS`` scored configurations or the recommender has nothing to go on without it.
    ``family_defaults``: (task, family) -> the config id of that family's default."""
    from kb.recommend import portfolio, recommend

    found = scored_configs(kb, dataset.dataset_id)
    if found is None or len(found[2]) < MIN_CONFIGS:
        return None
    metric, direction, scores = found
    regrets = {c: regret(s, list(scores.values()), direction) for c, s in scores.items()}
    # Only configurations the KB also knows elsewhere can be ranked without this dataset;
    # regret still counts against the best known here (a search's find included).
    candidates = sorted(set(scores) & _scored_elsewhere(kb, dataset.dataset_id))
    if len(candidates) < MIN_CONFIGS:
        return None
    options = dict(task=dataset.task, k=len(candidates), exclude_datasets=[dataset.dataset_id],
                   candidates=candidates)
    try:
        ranked = recommend(kb, dataset=dataset.dataset_id, **options)
        zero_shot = portfolio(kb, **options)
    except KBError:  # nothing else in the KB to learn from
        return None
    if not ranked:
        return None
    orders = {RECOMMENDER: [r.config_id for r in ranked], PORTFOLIO: [r.config_id for r in zero_shot]}
    curves = {name: tuple(best_so_far(order, regrets)) for name, order in orders.items() if order}
    curves[RANDOM] = tuple(expected_best_regret([regrets[c] for c in candidates]))

    def pick(config_id: str | None) -> Pick:
        if config_id is None or config_id not in scores:
            return Pick(config_id, None, None)
        return Pick(config_id, scores[config_id], regrets[config_id])

    first = ranked[0]
    picks = {RECOMMENDER: pick(first.config_id),
             DEFAULT: pick(family_defaults.get((dataset.task, first.model_family)))}
    if orders[PORTFOLIO]:
        picks[PORTFOLIO] = pick(orders[PORTFOLIO][0])
    return Replay(HeldOut(dataset.name, metric, direction, picks), curves)


def replay_all(kb, datasets: Sequence, family_defaults: Mapping[tuple[str, str], str],
               on_dataset=lambda name: None) -> list[Replay]:
    out = []
    for dataset in datasets:
        on_dataset(dataset.name)
        found = replay(kb, dataset, family_defaults)
        if found is not None:
            out.append(found)
    return out


@dataclass(frozen=True)
class SearchPair:
    """A warm-started and a cold ``kb search`` on one dataset with the same seed and limits:
    the best feasible score after each trial, in the order the trials finished."""

    dataset: str
    metric: str
    direction: str
    warm: tuple[float | None, ...]
    cold: tuple[float | None, ...]


def search_pairs(kb) -> list[SearchPair]:
    """Every (warm, cold) pair of finished searches the KB holds (the latest of each kind),
    over the trials each search ran itself, in the order they finished."""
    from kb.schema import Trial

    runs = kb.query("""SELECT run_id, arguments, started_at FROM runs
                       WHERE command = 'search' AND status = 'finished' ORDER BY started_at""").to_pylist()
    latest: dict = {}
    for run in runs:
        args = json.loads(run["arguments"])
        if args.get("multi_fidelity") or args.get("optimizer", "smac") != "smac":
            continue
        # Only searches alike but for the warm start make a pair: same budget, metric, families.
        key = (args["dataset_id"], args.get("seed"), json.dumps(args.get("limits"), sort_keys=True),
               args.get("hardware"), args.get("trials"), args.get("metric"),
               json.dumps(args.get("families"), sort_keys=True))
        latest[(key, args.get("warm_start", 0) > 0)] = run["run_id"]
    names = {r["dataset_id"]: r["name"] for r in kb.query("SELECT dataset_id, name FROM datasets").to_pylist()}
    out = []
    for (key, warm), run_id in sorted(latest.items()):
        if not warm or (key, False) not in latest:
            continue
        warm_trials, cold_trials = ([Trial(**r) for r in kb.query(
            "SELECT * FROM trials WHERE run_id = ? ORDER BY finished_at", [rid]).to_pylist()]
            for rid in (run_id, latest[(key, False)]))
        if warm_trials and cold_trials:
            first = warm_trials[0]
            out.append(SearchPair(names.get(key[0], key[0]), first.metric, first.direction,
                                  tuple(best_feasible_so_far(warm_trials)),
                                  tuple(best_feasible_so_far(cold_trials))))
    return out
