"""The ``smac`` format: SMAC 2.x output folders, as ``smac``'s facades write them
(``<output_directory>/<name>/<seed>/``), attached to a registered dataset given by the caller.

A run folder holds the three files read here; the other files SMAC writes there
(intensifier.json, optimization.json) say nothing about trials and are ignored.

- ``runhistory.json``: each finished SMAC trial (configuration, instance, seed, budget, cost,
  status) becomes a ``trials`` row on the given dataset. The configuration is the one the
  run history stores under the trial's ``config_id``, checked against ``configspace.json``.
  In metakb's own spaces (a ``family`` hyperparameter, the others named ``family:key``) the
  chosen family's keys lose their prefix, so the configuration reads as everywhere else in
  the KB; in other spaces it is kept as SMAC has it. The model family is the configuration's
  ``family``, or "unknown".
- ``scenario.json``: the metric is the (first) objective's name; SMAC minimizes the cost, so
  the score is the cost and the direction ``minimize``. Further objectives are kept in the
  trial's details under their names. A budget becomes the fidelity ``budget / max_budget``.
  Trials of one configuration, seed and budget on several instances (folds, say) are one KB
  trial: the mean cost is the score, its spread ``score_std``, each instance's cost in the
  details. One instance is kept in the details too; the seed is the trial's seed.
- Status: SMAC's SUCCESS, CRASHED, TIMEOUT and MEMORYOUT become ok, failed, timeout and
  failed (with SMAC's error as the reason, where it gave one); trials still RUNNING when the
  run history was saved are left out and counted. A trial's ``additional_info`` is kept in
  its details, without tracebacks.

The trials are measured on an external machine that is not known ("unknown (smac)") unless
the caller names a hardware row the KB holds. All or nothing: the three files of a folder
are checked whole before anything is written; a problem rejects the folder, naming the file,
row (a run history entry, counted from 1) and field.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from kb.errors import KBError, ValidationError
from kb.ingest import FileReport
from kb.ingest.external import external_hardware, write_file_rows
from kb.keys import canonical_json
from kb.schema import Hardware, Trial

RUNHISTORY, SCENARIO, CONFIGSPACE = "runhistory.json", "scenario.json", "configspace.json"
RUN_FILES = (RUNHISTORY, SCENARIO, CONFIGSPACE)
SOURCE = "smac"
# smac.runhistory.enumerations.StatusType, by value (importing smac takes seconds):
# value -> (name, trial status, failure reason when SMAC gives none)
STATUSES = {
    1: ("SUCCESS", "ok", None),
    2: ("CRASHED", "failed", "crashed"),
    3: ("TIMEOUT", "timeout", "ran past the trial time limit"),
    4: ("MEMORYOUT", "failed", "ran out of memory"),
}
RUNNING = 0


# -- reading the files (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """What ``scenario.json`` says that the trials need."""

    objectives: tuple[str, ...]
    max_budget: float | None


@dataclass(frozen=True)
class Entry:
    """One run history entry, checked."""

    row: int  # counted from 1
    config_id: str
    instance: str | None
    seed: int
    fidelity: float
    status: int
    costs: tuple[float, ...] | None  # one per objective; None unless the trial succeeded
    started: float | None
    finished: float | None
    info: dict


def read_json(path: Path):
    """A JSON file as SMAC writes it (``Infinity`` and ``NaN`` included)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KBError(f"{path} is missing; a SMAC run folder holds {', '.join(RUN_FILES)}") from None
    except UnicodeDecodeError:
        raise KBError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise KBError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, "
                      f"column {e.colno})") from None


def read_scenario(path: Path) -> Scenario:
    data = read_json(path)
    if not isinstance(data, dict):
        raise KBError(f"{path} is not a SMAC scenario (expected a JSON object)")
    objectives = data.get("objectives", "cost")
    objectives = [objectives] if isinstance(objectives, str) else objectives
    if not (isinstance(objectives, list) and objectives
            and all(isinstance(name, str) for name in objectives)):
        raise ValidationError(f"expected a name or a list of names, got {data.get('objectives')!r}",
                              source=str(path), field="objectives")
    max_budget = data.get("max_budget")
    if max_budget is not None and (not _is_number(max_budget) or not 0 < max_budget < math.inf):
        raise ValidationError(f"expected a positive number, got {max_budget!r}", source=str(path),
                              field="max_budget")
    return Scenario(tuple(objectives), None if max_budget is None else float(max_budget))


def read_space(path: Path):
    """``configspace.json`` as a ConfigSpace ``ConfigurationSpace``."""
    from ConfigSpace import ConfigurationSpace

    read_json(path)  # a JSON error is reported as such, with its line
    try:
        return ConfigurationSpace.from_json(path)
    except Exception as e:  # ConfigSpace raises many kinds for a description it cannot use
        raise KBError(f"{path} is not a ConfigSpace description ({_one_line(e)})") from None


def read_configurations(path: Path, data: dict, space) -> dict[str, dict]:
    """The run history's configurations {config id: values}, each checked against ``space``."""
    from ConfigSpace import Configuration

    configs = data.get("configs")
    if not isinstance(configs, dict):
        raise ValidationError("missing, or not an object of configurations by id",
                              source=str(path), field="configs")
    for config_id, values in configs.items():
        try:
            Configuration(space, values=values)
        except Exception as e:  # ConfigSpace's errors for values its space does not allow
            raise ValidationError(f"configuration {config_id} does not fit {CONFIGSPACE}: "
                                  f"{_one_line(e)}", source=str(path), field="configs") from None
    return configs


def read_entries(path: Path, data: dict, configs: dict, scenario: Scenario) -> list[Entry]:
    if not isinstance(data.get("data"), list):
        raise ValidationError("missing, or not a list of trials", source=str(path), field="data")
    entries = []
    for row, item in enumerate(data["data"], start=1):
        wrong = partial(ValidationError, source=str(path), row=row)
        if not isinstance(item, dict):
            raise wrong(field=None, problem=f"expected an object, got {type(item).__name__}")
        config_id, status = str(item.get("config_id")), item.get("status")
        if config_id not in configs:
            raise wrong(field="config_id",
                        problem=f"{item.get('config_id')!r} is not the id of a configuration in "
                                f"configs")
        if status != RUNNING and status not in STATUSES:
            known = ", ".join(f"{value} ({name})" for value, (name, *_) in STATUSES.items())
            raise wrong(field="status", problem=f"{status!r} is not a SMAC status value: {known} "
                                                f"or {RUNNING} (RUNNING)")
        costs = None
        if status in STATUSES and STATUSES[status][1] == "ok":
            costs = _costs(item.get("cost"), len(scenario.objectives))
            if costs is None:
                raise wrong(field="cost", problem=f"expected {_expected_costs(scenario)} for a "
                                                  f"successful trial, got {item.get('cost')!r}")
        seed = item.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise wrong(field="seed", problem=f"expected an integer, got {seed!r}")
        instance = item.get("instance")
        if instance is not None and not isinstance(instance, str):
            raise wrong(field="instance", problem=f"expected a name, got {instance!r}")
        info = item.get("additional_info") or {}
        if not isinstance(info, dict):
            raise wrong(field="additional_info",
                        problem=f"expected an object, got {type(info).__name__}")
        entries.append(Entry(row, config_id, instance, seed or 0,
                             _fidelity(item.get("budget"), scenario, wrong), status, costs,
                             _time(item.get("starttime")), _time(item.get("endtime")), info))
    return entries



def _costs(cost, n_objectives: int) -> tuple[float, ...] | None:
    values = [cost] if n_objectives == 1 else cost
    if not isinstance(values, list) or len(values) != n_objectives:
        return None
    if not all(_is_number(v) and math.isfinite(v) for v in values):
        return None
    return tuple(float(v) for v in values)


def _expected_costs(scenario: Scenario) -> str:
    n = len(scenario.objectives)
    if n == 1:
        return "a finite number"
    return f"a list of {n} finite numbers ({', '.join(scenario.objectives)})"


def _fidelity(budget, scenario: Scenario, wrong) -> float:
    if budget is None:
        return 1.0
    if not _is_number(budget) or not 0 < budget < math.inf:
        raise wrong(field="budget", problem=f"expected a positive number, got {budget!r}")
    if scenario.max_budget is None:
        raise wrong(field="budget",
                    problem=f"{budget} is given, but {SCENARIO} has no max_budget to scale it by")
    if budget > scenario.max_budget * (1 + 1e-9):
        raise wrong(field="budget",
                    problem=f"{budget} is above the scenario's max_budget {scenario.max_budget}")
    return min(1.0, budget / scenario.max_budget)


def _time(value) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(value) else None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _one_line(error: object) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__


# -- rows for the KB (pure) --------------------------------------------------------------------


def flat_config(values: dict) -> dict:
    """A configuration of metakb's spaces (``family`` + ``family:key``) as the KB writes it:
    the chosen family's keys without the prefix. Other spaces' configurations are unchanged."""
    family = values.get("family")
    if not isinstance(family, str):
        return dict(values)
    prefix = f"{family}:"  # SMAC stores active values only: no other family's keys are here
    return {name.removeprefix(prefix): value for name, value in values.items()}


def trial_rows(entries: list[Entry], configs: dict, scenario: Scenario, *, dataset_id: str,
               hardware_id: str) -> tuple[list[Trial], int]:
    """(one trial per configuration, seed and budget, the number of entries still running)."""
    groups: dict[tuple, list[Entry]] = defaultdict(list)
    for entry in entries:
        groups[(entry.config_id, entry.seed, entry.fidelity)].append(entry)
    trials, running = [], 0
    for (config_id, seed, fidelity), group in groups.items():
        if any(e.status == RUNNING for e in group):
            running += len(group)
            continue
        config = flat_config(configs[config_id])
        status, reason, score, spread, details = _outcome(group, scenario)
        started = [e.started for e in group if e.started is not None]
        finished = [e.finished for e in group if e.finished is not None]
        trials.append(Trial(
            dataset_id=dataset_id, hardware_id=hardware_id, config=canonical_json(config),
            model_family=family if isinstance(family := config.get("family"), str) else "unknown",
            metric=scenario.objectives[0], direction="minimize", status=status, source=SOURCE,
            seed=seed, fidelity=fidelity, score=score, score_std=spread, failure_reason=reason,
            started_at=_utc(min(started)) if started else None,
            finished_at=_utc(max(finished)) if finished else None,
            details=canonical_json(details) if details else None))
    return trials, running


def _outcome(group: list[Entry], scenario: Scenario):
    """(status, failure reason, score, score spread, details) of a trial's entries."""
    failed = [e for e in group if STATUSES[e.status][1] != "ok"]
    details: dict = {}
    for entry in group:  # SMAC's tracebacks are long and name files of the machine it ran on
        details.update({k: v for k, v in entry.info.items() if k != "traceback"})
    if len(group) == 1 and group[0].instance is not None:
        details["instance"] = group[0].instance
    if failed:
        name, status, default_reason = STATUSES[failed[0].status]
        error = failed[0].info.get("error")
        reason = f"SMAC {name}: {_one_line(error) if error else default_reason}"
        return status, reason, None, None, details
    means = [statistics.fmean(e.costs[i] for e in group) for i in range(len(scenario.objectives))]
    if len(scenario.objectives) > 1:
        details["objectives"] = dict(zip(scenario.objectives, means))
    if len(group) > 1:
        details["instance_costs"] = {str(e.instance): e.costs[0] for e in group}
    spread = statistics.pstdev(e.costs[0] for e in group) if len(group) > 1 else None
    return "ok", None, means[0], spread, details


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


# -- ingesting ---------------------------------------------------------------------------------


def ingest_smac(kb, path: Path, *, dataset: str | None = None, hardware: str | None = None,
                on_conflict: str = "error", progress) -> list[FileReport]:
    from kb.datasets import get

    if dataset is None:
        raise KBError("the smac format needs --dataset NAME_OR_ID: the registered dataset the run "
                      "optimised on (`kb datasets list` shows them)")
    dataset_id = get(kb, dataset).dataset_id
    measured_on = external_hardware(SOURCE, name=f"unknown ({SOURCE})") if hardware is None \
        else stored_hardware(kb, hardware)
    reports = []
    for folder in run_folders(path):
        report = ingest_run(kb, folder, dataset_id=dataset_id, hardware=measured_on,
                            on_conflict=on_conflict)
        progress(report)
        reports.append(report)
    return reports


def stored_hardware(kb, name_or_id: str) -> Hardware:
    """The hardware row whose id (or else name) is ``name_or_id``."""
    rows = kb.query("SELECT * FROM hardware WHERE hardware_id = ? OR name = ?",
                    [name_or_id, name_or_id]).to_pylist()
    exact = [r for r in rows if r["hardware_id"] == name_or_id]
    if not rows:
        raise KBError(f"no hardware {name_or_id!r} in the KB; `kb hardware list` shows the rows it "
                      f"holds, `kb hardware detect --save` records this machine's profiles")
    if len(rows) > 1 and not exact:
        raise KBError(f"{len(rows)} hardware rows are named {name_or_id!r} "
                      f"({', '.join(r['hardware_id'] for r in rows)}); give the id")
    return Hardware(**(exact or rows)[0])


def run_folders(path: Path) -> list[Path]:
    """``path`` if it is a SMAC run folder, else the run folders under it."""
    if path.is_file():
        raise KBError(f"{path}: the smac format reads SMAC output folders (holding "
                      f"{', '.join(RUN_FILES)}), not single files")
    found = sorted(file.parent for file in path.rglob(RUNHISTORY))
    if not found:
        raise KBError(f"{path}: no SMAC run here (a folder holding {', '.join(RUN_FILES)})")
    return found


def ingest_run(kb, folder: Path, *, dataset_id: str, hardware: Hardware,
               on_conflict: str = "error") -> FileReport:
    """Ingest one SMAC run folder, all or nothing."""
    history = folder / RUNHISTORY
    try:
        scenario = read_scenario(folder / SCENARIO)
        space = read_space(folder / CONFIGSPACE)
        data = read_json(history)
        if not isinstance(data, dict):
            raise KBError(f"{history} is not a SMAC run history (expected a JSON object)")
        configs = read_configurations(history, data, space)
        entries = read_entries(history, data, configs, scenario)
    except KBError as e:  # ValidationErrors name their file, row and field already
        named = str(e) if str(folder) in str(e) else f"{folder}: {e}"
        return FileReport(history, "trials", rejected=named)
    trials, running = trial_rows(entries, configs, scenario, dataset_id=dataset_id,
                                 hardware_id=hardware.hardware_id)
    tables = {"hardware": [hardware], **({"trials": trials} if trials else {})}
    report = write_file_rows(kb, history, tables, main_table="trials", on_conflict=on_conflict)
    if report.rejected or not running:
        return report
    return replace(report, rows_left_out=running, left_out_because="still running when saved")
