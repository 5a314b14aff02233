"""A constraint-aware SMAC search that writes every outcome to the KB as it arrives.

SMAC 2 proposes (``ask``) and learns (``tell``); trials run on an ``Executor`` (this process,
or a Dask cluster), each in a child process of its own. The order of events is the point:

1. a finished trial is judged against the limits (``search.constraints``),
2. written to the KB,
3. told to SMAC, whose state (runhistory, intensifier) is saved in ``<kb>/searches/<run_id>``,
4. only then is the next trial submitted.

So a search killed at any moment loses no finished trial, and ``resume`` continues from
SMAC's saved state and the KB: a trial the KB holds but SMAC never heard of is told, not run
again. A trial already in the KB from any run (same dataset, configuration, seed, fidelity
and hardware) is reused, not re-run: the KB remembers every measured outcome.

Costs for SMAC: ``1 - score`` for metrics to maximize (all bounded by 1), the score for those
to minimize. A failed, timed-out or infeasible trial costs the crash cost: twice the cost of a
model that predicts the class frequencies or the mean. ``score+latency`` adds the batch-1
latency as a second objective, combined by ParEGO.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from kb.datasets import LoadedDataset, load_registered
from kb.errors import KBError
from kb.keys import canonical_json
from kb.schema import Trial
from kb.validation import derived_id
from search.constraints import Limits, is_feasible, judge
from search.execution import Executor
from search.metrics import METRICS
from search.predicted import PREDICTED, predict_mlp_latency, predicted_infeasible_trial
from search.profiles import find_profile
from search.runs import finish_run, find_run, start_run
from search.space import build_space, fit_to_space, to_config
from search.trial import (TrialLimits, encode_target, plan_trial, run_trial,
                          write_architecture_rows)
from search.warmstart import Refused, WarmStart, warm_start

OBJECTIVES = ("score", "score+latency")
# "random": SMAC's random search (the space's default, then uniform random points), the
# anchor a model-based search has to beat.
OPTIMIZERS = ("smac", "random")
MIN_FIDELITY = 1 / 9  # Hyperband with eta 3: fractions 1/9, 1/3 and 1 of the training rows


@dataclass(frozen=True)
class SearchSettings:
    """What a search is: everything that decides its outcome (how it is executed is not here,
    so a resumed search may use other workers)."""

    dataset_id: str
    trials: int = 25
    time_limit_s: float | None = None
    hardware: str = "cpu-1t"
    limits: Limits = field(default_factory=Limits)
    objective: str = "score"
    warm_start: int = 5  # known-good configurations to start from; 0 starts cold
    multi_fidelity: bool = False
    seed: int = 0
    families: tuple[str, ...] | None = None
    metric: str | None = None
    folds: int = 5
    trial_time_s: float = 300.0
    exclude_own_dataset: bool = False  # warm start from other datasets only (benchmarks)
    optimizer: str = "smac"

    def __post_init__(self):
        if not (isinstance(self.trials, int) and self.trials >= 1):
            raise KBError(f"trials must be a whole number >= 1, not {self.trials!r}")
        if self.objective not in OBJECTIVES:
            raise KBError(f"objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
        if not (isinstance(self.warm_start, int) and self.warm_start >= 0):
            raise KBError(f"warm-start must be a whole number >= 0, not {self.warm_start!r}")
        if self.warm_start > self.trials:
            raise KBError(f"warm-start {self.warm_start} is more than the {self.trials} trials")
        if self.optimizer not in OPTIMIZERS:
            raise KBError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}")
        if self.optimizer == "random" and self.multi_fidelity:
            raise KBError("random search has no multi-fidelity schedule; use the smac optimizer")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise KBError(f"time-limit must be positive, not {self.time_limit_s!r}")

    def to_json(self) -> dict:
        return {**asdict(self), "limits": asdict(self.limits),
                "families": list(self.families) if self.families else None}

    @classmethod
    def from_json(cls, value: dict) -> SearchSettings:
        value = dict(value)
        value["limits"] = Limits(**value["limits"])
        value["families"] = tuple(value["families"]) if value.get("families") else None
        return cls(**value)


@dataclass(frozen=True)
class TrialEvent:
    """One trial told to SMAC, for progress displays."""

    trial: Trial  # as this search's limits judge it
    reused: bool  # taken from the KB, not run
    done: int
    total: int
    best: Trial | None
    feasible: int
    elapsed_s: float


@dataclass(frozen=True)
class SearchOutcome:
    run_id: str
    settings: SearchSettings
    dataset: LoadedDataset
    trials: tuple[Trial, ...]  # every trial of the search, judged, in the order told
    reused: int
    best: Trial | None  # the best feasible trial at the highest fidelity reached
    warm_starts: tuple[WarmStart, ...]
    refused: tuple[Refused, ...]
    stopped_by: str  # "trials", "time limit"

    @property
    def feasible(self) -> list[Trial]:
        return [t for t in self.trials if is_feasible(t)]


def search_folder(kb_root: Path, run_id: str) -> Path:
    return Path(kb_root) / "searches" / run_id


def run_search(kb, settings: SearchSettings, *, executor: Executor, resume: str | None = None,
               on_trial: Callable[[TrialEvent], None] = lambda event: None,
               run_id: str | None = None, isolate_trials: bool = True) -> SearchOutcome:
    """Search, or with ``resume=RUN_ID`` continue a search (its stored settings win).

    ``isolate_trials=False`` runs each trial in the executor's own process, without the
    child process that enforces ``trial_time_s`` (see ``search.trial.TrialLimits``): the
    same results two to three seconds sooner per trial, for benchmarks on small datasets."""
    if resume:
        settings, run = _resumed(kb, resume)
    dataset = load_registered(kb, settings.dataset_id)
    task = dataset.record.task
    profile = find_profile(settings.hardware, kb.root)
    trial_limits = TrialLimits(time_s=settings.trial_time_s, train_threads=1, isolate=isolate_trials)
    space = build_space(task, settings.families, settings.seed)
    # Planning the space's default checks the profile, metric and folds before anything runs.
    probe = plan_trial(dataset, to_config(space.get_default_configuration(), task), profile,
                       settings.seed, metric=settings.metric, folds=settings.folds,
                       limits=trial_limits)
    hardware_id, metric = probe.hardware.hardware_id, METRICS[probe.metric]
    if not resume:
        run = start_run(kb, "search", settings.to_json(), run_id=run_id)
    folder = search_folder(kb.root, run.run_id)
    warm, refused = _warm_start(kb, settings, dataset, space, hardware_id, folder, resumed=bool(resume))
    crash = _crash_cost(dataset, metric)
    smac = _facade(settings, space, task, folder, warm, crash, resume=bool(resume))

    started = time.monotonic()
    told: list[Trial] = []
    reused = 0

    def tell(info, trial: Trial, was_reused: bool) -> None:
        smac.tell(info, _trial_value(trial, metric, crash, settings), save=True)
        told.append(trial)
        best = _best(told, metric)
        on_trial(TrialEvent(trial, was_reused, smac.runhistory.finished, settings.trials, best,
                            sum(map(is_feasible, told)), time.monotonic() - started))

    stored_here = _stored_trials(kb, run.run_id)
    rerun = []
    if resume:
        earlier, rerun = _reconcile(kb, smac, stored_here, settings, task, tell)
        told[:0] = earlier
    stopped_by = "trials"
    status = "interrupted"
    try:
        pending: dict = {}
        while True:
            timed_out = settings.time_limit_s is not None and \
                time.monotonic() - started > settings.time_limit_s
            while not timed_out and len(pending) < executor.slots and \
                    smac.runhistory.finished + len(pending) < settings.trials:
                info = rerun.pop(0) if rerun else _ask(smac)
                config = to_config(info.config, task)
                fidelity = float(info.budget) if info.budget is not None else 1.0
                trial_id = derived_id("trials", "trial_id", dataset_id=dataset.record.dataset_id,
                                      config=canonical_json(config), metric=metric.name,
                                      seed=settings.seed,
                                      fidelity=fidelity, hardware_id=hardware_id)
                known = stored_here.get(trial_id) or _stored_trial(kb, trial_id)
                # A prediction is judged again under each search's limits, so never reused.
                if known is not None and known.status != PREDICTED:
                    reused += known.run_id != run.run_id
                    tell(info, judge(known, settings.limits), known.run_id != run.run_id)
                    continue
                skipped = _predicted_over_limit(kb, settings, dataset, config, profile,
                                                hardware_id, metric, fidelity, run.run_id)
                if skipped is not None:
                    kb.append("trials", [skipped], on_conflict="replace")
                    tell(info, skipped, False)
                    continue
                future = executor.submit(
                    run_trial, dataset, config, profile, settings.seed, metric=metric.name,
                    folds=settings.folds, fidelity=fidelity, limits=trial_limits,
                    run_id=run.run_id)
                pending[future] = info
            if timed_out:
                stopped_by = "time limit"
            if not pending:
                break
            done, _ = executor.wait_first(pending)
            for future in done:
                info = pending.pop(future)
                result = future.result()
                trial = judge(result.trial, settings.limits)
                kb.append("hardware", [result.hardware], on_conflict="keep")
                write_architecture_rows(kb, result.architecture_rows)
                # "replace" supersedes only an earlier prediction of this trial: a trial that
                # was run is never run again, so it cannot be in the KB already.
                kb.append("trials", [trial], on_conflict="replace")
                tell(info, trial, False)
        status = "finished"
    finally:
        all_trials = list(told)
        finish_run(kb, run, status, {
            "trials": len(all_trials), "reused": reused,
            "feasible": sum(map(is_feasible, all_trials)),
            **{s: sum(t.status == s for t in all_trials) for s in ("failed", "timeout", "infeasible")}})
    return SearchOutcome(run.run_id, settings, dataset, tuple(told), reused, _best(told, metric),
                         tuple(warm), tuple(refused), stopped_by)


# -- SMAC wiring -----------------------------------------------------------------------------


def _facade(settings: SearchSettings, space, task: str, folder: Path, warm: list[WarmStart],
            crash: float, *, resume: bool):
    from smac import HyperparameterOptimizationFacade, MultiFidelityFacade, RandomFacade, Scenario
    from smac.multi_objective.parego import ParEGO

    two = settings.objective == "score+latency"
    scenario = Scenario(
        space, name=folder.name, output_directory=folder.parent, deterministic=True,
        n_trials=settings.trials, seed=settings.seed,
        objectives=["cost", "latency_ms"] if two else "cost",
        crash_cost=[crash, _crash_latency(settings)] if two else crash,
        **({"min_budget": MIN_FIDELITY, "max_budget": 1.0} if settings.multi_fidelity else {}))
    facade = (RandomFacade if settings.optimizer == "random" else
              MultiFidelityFacade if settings.multi_fidelity else HyperparameterOptimizationFacade)
    saved = folder / str(settings.seed)
    if resume:
        if not (saved / "scenario.json").exists():
            raise KBError(f"search {folder.name}: SMAC's saved state is missing from {saved}")
        if not _same_scenario(Scenario.load(saved), scenario):
            raise KBError(f"search {folder.name}: the saved SMAC scenario differs from this "
                          f"metakb's; it cannot be resumed")
    # The same initial budget warm or cold: a quarter of the trials, warm configurations first.
    n_initial = max(1, settings.trials // 4)
    additional = [fit_to_space(w.config, space, task).configuration for w in warm]
    if settings.optimizer == "random":  # the default, then random points
        initial = facade.get_initial_design(scenario, additional_configs=additional)
    else:
        # SMAC runs a design's own points before the additional ones; the warm configurations
        # go first, so the design's points fill the rest of the initial budget after them.
        filler = [_plain_configuration(c) for c in (
            facade.get_initial_design(scenario, n_configs=n_initial - len(additional))
            .select_configurations() if n_initial > len(additional) else [])]
        initial = facade.get_initial_design(scenario, n_configs=0,
                                            additional_configs=additional + filler)
    return facade(scenario, _asked_not_called, initial_design=initial,
                  multi_objective_algorithm=ParEGO(scenario, seed=settings.seed) if two else None,
                  overwrite=not resume, logging_level=40)


def _plain_configuration(config):
    """``config`` with Python values: SMAC saves its additional configurations as JSON, which
    the NumPy booleans a Sobol design yields are not."""
    from ConfigSpace import Configuration

    values = {k: v.item() if hasattr(v, "item") else v for k, v in dict(config).items()}
    return Configuration(config.config_space, values=values, origin=config.origin)


def _same_scenario(saved, scenario) -> bool:
    """The scenario as the search defines it; ``_meta`` is what SMAC's facade adds (its
    components), compared by SMAC itself once the facade is built the same way again."""
    from smac import Scenario

    def plain(s):
        return {k: v for k, v in Scenario.make_serializable(s).items() if k != "_meta"}

    return plain(saved) == plain(scenario)


def _ask(smac):
    import warnings

    with warnings.catch_warnings():
        # SMAC's surrogate averages empty slices while only crashed trials are known.
        warnings.simplefilter("ignore", RuntimeWarning)
        return smac.ask()


def _asked_not_called(config, seed: int = 0, budget: float | None = None) -> float:
    raise RuntimeError("metakb runs trials itself (ask and tell); SMAC never calls this")


def _trial_value(trial: Trial, metric, crash: float, settings: SearchSettings):
    from smac.runhistory.dataclasses import TrialValue
    from smac.runhistory.enumerations import StatusType

    if is_feasible(trial):
        cost, status = _cost(trial.score, metric), StatusType.SUCCESS
    else:
        cost = crash
        status = StatusType.TIMEOUT if trial.status == "timeout" else StatusType.CRASHED
    if settings.objective == "score+latency":
        latency = trial.latency_p50_ms if is_feasible(trial) else _crash_latency(settings)
        cost = [cost, latency]
    return TrialValue(cost=cost, time=float(trial.train_seconds or 0.0), status=status,
                      additional_info={"trial_id": trial.trial_id, "status": trial.status})


def _cost(score: float, metric) -> float:
    return 1.0 - score if metric.direction == "maximize" else score


def _crash_cost(dataset: LoadedDataset, metric) -> float:
    """Twice the cost of a model with no skill (class frequencies, or the mean)."""
    y, classes = encode_target(dataset.y, dataset.record.task)
    if classes is None:
        predictions = np.full(len(y), float(np.mean(y)))
    else:
        prior = np.bincount(y, minlength=len(classes)) / len(y)
        predictions = np.tile(prior, (len(y), 1))
    no_skill = _cost(float(metric.compute(y, predictions)), metric)
    return 2 * no_skill if math.isfinite(no_skill) and no_skill > 0 else 1.0


def _crash_latency(settings: SearchSettings) -> float:
    limit = settings.limits.max_latency_ms
    return 2 * limit if limit is not None else 1000.0


def _best(trials: list[Trial], metric) -> Trial | None:
    """The best feasible trial at the highest fidelity any feasible trial reached."""
    feasible = [t for t in trials if is_feasible(t)]
    if not feasible:
        return None
    top = max(t.fidelity for t in feasible)
    return min((t for t in feasible if t.fidelity == top), key=lambda t: _cost(t.score, metric))


# -- the KB side -----------------------------------------------------------------------------


def _predicted_over_limit(kb, settings, dataset, config, profile, hardware_id, metric,
                          fidelity, run_id) -> Trial | None:
    """The ``infeasible-predicted`` record of a fragment-built candidate whose predicted
    latency breaks the limit (its fragments and architecture stored too), else None."""
    limit = settings.limits.max_latency_ms
    if limit is None or config["family"] != "mlp":
        return None
    predicted = predict_mlp_latency(kb, dataset, config, profile, hardware_id)
    if predicted.p50_ms <= limit:
        return None
    write_architecture_rows(kb, predicted.rows)
    return predicted_infeasible_trial(
        dataset=dataset, config=config, metric=metric, seed=settings.seed, fidelity=fidelity,
        hardware_id=hardware_id, run_id=run_id, predicted=predicted, limit_ms=limit)



def _warm_start(kb, settings, dataset, space, hardware_id, folder: Path, *, resumed: bool):
    """The warm-start configurations, chosen once and kept in the search's folder, so that a
    resumed search starts from the same ones whatever the KB has learned since."""
    path = folder / "warm_start.json"
    if resumed and path.exists():
        saved = json.loads(path.read_text())
        return ([WarmStart.from_json(w) for w in saved["warm_start"]],
                [Refused(r["config"], r["reason"]) for r in saved["refused"]])
    warm, refused = warm_start(
        kb, dataset_id=dataset.record.dataset_id, task=dataset.record.task, space=space,
        k=settings.warm_start, hardware_id=hardware_id, limits=settings.limits,
        exclude_datasets=(dataset.record.dataset_id,) if settings.exclude_own_dataset else ())
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"warm_start": [w.to_json() for w in warm],
                                "refused": [asdict(r) for r in refused]}, indent=2, default=str))
    return warm, refused


def _stored_trial(kb, trial_id: str) -> Trial | None:
    rows = kb.query("SELECT * FROM trials WHERE trial_id = ?", params=[trial_id]).to_pylist()
    return Trial(**rows[0]) if rows else None


def _stored_trials(kb, run_id: str) -> dict[str, Trial]:
    rows = kb.query("SELECT * FROM trials WHERE run_id = ?", params=[run_id]).to_pylist()
    return {r["trial_id"]: Trial(**r) for r in rows}


def _resumed(kb, run_id: str) -> tuple[SearchSettings, object]:
    run = find_run(kb, run_id)
    if run is None or run.command != "search":
        raise KBError(f"no search with run id {run_id!r} in this KB "
                      f"(`kb query \"SELECT * FROM runs WHERE command = 'search'\"` lists them)")
    if run.status == "finished":
        raise KBError(f"search {run_id} has finished; there is nothing to resume")
    return SearchSettings.from_json(json.loads(run.arguments)), replace(run, status="running")


def _reconcile(kb, smac, stored: dict[str, Trial], settings: SearchSettings, task: str,
               tell) -> tuple[list[Trial], list]:
    """Bring SMAC's saved state up to the KB. Returns the trials SMAC was told before the
    interruption (read back from the KB by the trial ids SMAC kept) and the trials SMAC
    handed out that never finished, to run first; trials written but not told are told now."""
    from ConfigSpace import Configuration
    from smac.runhistory.dataclasses import TrialInfo
    from smac.runhistory.enumerations import StatusType

    history = smac.runhistory
    by_config = {(t.config, t.fidelity): t for t in stored.values()}
    earlier, unfinished, late = [], [], []
    for key, value in list(history.items()):
        config = history.get_config(key.config_id)
        budget = key.budget
        mine = by_config.pop((canonical_json(to_config(config, task)),
                              float(budget) if budget is not None else 1.0), None)
        if value.status != StatusType.RUNNING:
            trial = mine or _stored_trial(kb, value.additional_info.get("trial_id", ""))
            if trial is not None:
                earlier.append(judge(trial, settings.limits))
            continue
        info = TrialInfo(config=config, seed=key.seed, budget=budget, instance=key.instance)
        if mine is not None:
            late.append((info, mine))
        else:
            unfinished.append(info)
    space = smac.scenario.configspace
    for (config_json, fidelity), trial in by_config.items():
        # Finished and written, but the search was killed before SMAC heard of it.
        config = fit_to_space(json.loads(config_json), space, task).configuration
        info = TrialInfo(config=Configuration(space, values=dict(config)), seed=settings.seed,
                         budget=fidelity if settings.multi_fidelity else None)
        late.append((info, trial))
    for info, trial in late:
        tell(info, judge(trial, settings.limits), False)
    return earlier, unfinished
