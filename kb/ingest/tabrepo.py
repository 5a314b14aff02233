"""The ``tabrepo`` format: TabRepo's matrix of past trials (autogluon/tabrepo), LightGBM
configurations evaluated on OpenML tasks.

A TabRepo folder holds four files; three are read:

- ``task_metadata.csv``: one row per OpenML task. Each task becomes a ``datasets`` row known
  only by reference (``reference_dataset_id("openml-task", tid)``, no data file), named as
  OpenML names it, and its OpenML qualities (NumberOfInstances, MajorityClassSize, ...)
  become ``metafeatures`` rows of extractor "openml".
- ``lgbm_results_by_task.csv``: one row per (task, configuration), the mean over TabRepo's
  folds. Each becomes a ``trials`` row of family "lightgbm". TabRepo's ``metric_error`` is
  1 - ROC AUC (binary), log loss (multiclass) or RMSE (regression); it is stored as metakb's
  metrics: ``roc_auc`` maximized, ``log_loss`` and ``rmse`` minimized. ``time_train_s`` is the
  training time; ``time_infer_s`` (inference on the whole test fold, not a per-row latency),
  the error as TabRepo gives it, its rank and the configuration's TabRepo name go in the
  trial's details. The machine is not known: hardware "unknown (tabrepo)", kind external.
- ``configs_lightgbm.json``: the hyperparameters of each configuration, read with the
  results (a trial's configuration is ``{"family": "lightgbm", **hyperparameters}``, without
  AutoGluon's naming arguments ``ag_args``). The results also need ``task_metadata.csv``
  beside them, for the tasks their trials refer to.
- ``automl_results_by_fold.csv`` is not read: it holds seven AutoML systems' scores per fold,
  with no configuration that could be recommended or searched from, on hardware and time
  budgets of their own.

Each file is added whole or not at all; a damaged one is rejected naming its row (counted
from 1, the header not counted) and field, and so are the results when a file they need is
damaged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from kb.errors import KBError, ValidationError
from kb.ingest import FileReport
from kb.ingest.external import external_hardware, write_file_rows
from kb.keys import canonical_json
from kb.schema import Dataset, MetaFeature, Trial
from kb.tabular_io import check_content, read_csv_as_text

SOURCE = "tabrepo"
FAMILY = "lightgbm"
TASKS_FILE = "task_metadata.csv"
RESULTS_FILE = "lgbm_results_by_task.csv"
CONFIGS_FILE = "configs_lightgbm.json"
AUTOML_FILE = "automl_results_by_fold.csv"
QUALITIES_VERSION = "tabrepo task_metadata"
# TabRepo's problem type -> metakb's metric for its metric_error, its direction, and the
# score that error is (binary: the error is 1 - ROC AUC).
METRICS = {
    "binary": ("roc_auc", "maximize", lambda error: 1.0 - error),
    "multiclass": ("log_loss", "minimize", lambda error: error),
    "regression": ("rmse", "minimize", lambda error: error),
}
OPENML_TASK_TYPES = {"Supervised Classification": "classification",
                     "Supervised Regression": "regression"}
NOT_READ = {
    CONFIGS_FILE: f"read with {RESULTS_FILE} (the configurations its trials name)",
    AUTOML_FILE: "AutoML systems' scores per fold name no configuration to recommend; not ingested",
}


@dataclass(frozen=True)
class Task:
    """One OpenML task of ``task_metadata.csv``: its dataset row and its qualities."""

    tid: int
    dataset: Dataset
    qualities: tuple[MetaFeature, ...]


def ingest_tabrepo(kb, path: Path, *, on_conflict: str = "error", progress) -> list[FileReport]:
    if path.is_file():
        files = [path]
        if path.name not in (TASKS_FILE, RESULTS_FILE):
            raise KBError(f"{path}: the tabrepo format reads {TASKS_FILE} and {RESULTS_FILE} "
                          f"(with {CONFIGS_FILE} beside it); give one of them or their folder")
    else:
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not any(p.name in (TASKS_FILE, RESULTS_FILE) for p in files):
            raise KBError(f"{path}: no {TASKS_FILE} or {RESULTS_FILE} here (a TabRepo folder)")
    # The tasks first: the trials refer to them.
    files.sort(key=lambda p: (p.name != TASKS_FILE, p.name))
    reports = []
    for file in files:
        if file.name == TASKS_FILE:
            report = _ingest_tasks(kb, file, on_conflict)
        elif file.name == RESULTS_FILE:
            report = _ingest_results(kb, file, on_conflict)
        else:
            report = FileReport(file, skipped=NOT_READ.get(file.name, "not a TabRepo file read here"))
        progress(report)
        reports.append(report)
    return reports


def _ingest_tasks(kb, path: Path, on_conflict: str) -> FileReport:
    try:
        tasks = _located(read_tasks, path)
    except KBError as e:
        return FileReport(path, "datasets", rejected=str(e))
    return write_file_rows(kb, path, {"datasets": [t.dataset for t in tasks.values()],
                                      "metafeatures": [q for t in tasks.values() for q in t.qualities]},
                           main_table="datasets", on_conflict=on_conflict)


def _ingest_results(kb, path: Path, on_conflict: str) -> FileReport:
    needed = {name: path.with_name(name) for name in (TASKS_FILE, CONFIGS_FILE)}
    missing = [name for name, file in needed.items() if not file.is_file()]
    if missing:
        return FileReport(path, "trials", rejected=f"{path}: needs {' and '.join(missing)} beside it "
                                                   f"(the tasks and configurations its rows name)")
    try:
        tasks = _located(read_tasks, needed[TASKS_FILE])
        configs = _located(read_configs, needed[CONFIGS_FILE])
    except KBError as e:
        return FileReport(path, "trials", rejected=f"{path}: a file it needs is damaged: {e}")
    hardware = external_hardware(SOURCE)
    try:
        trials = _located(lambda file: read_results(file, tasks, configs, hardware.hardware_id), path)
    except KBError as e:
        return FileReport(path, "trials", rejected=str(e))
    return write_file_rows(kb, path, {"datasets": [t.dataset for t in tasks.values()],
                                      "hardware": [hardware], "trials": trials},
                           main_table="trials", on_conflict=on_conflict)


def _located(read, path: Path):
    """``read(path)``, its errors naming ``path`` (a rejection names the file)."""
    try:
        return read(path)
    except ValidationError as e:
        raise e if e.source else e.located(str(path)) from None
    except KBError as e:
        raise e if str(path) in str(e) else KBError(f"{path}: {e}") from None


# -- reading (no KB here) ----------------------------------------------------------------------


def read_tasks(path: Path) -> dict[int, Task]:
    """``task_metadata.csv`` as {OpenML task id: Task}."""
    from kb.datasets import reference_dataset_id
    from metafeatures import ALIASES

    qualities = sorted({a.name for a in ALIASES if a.source == "openml"})
    rows = _csv_rows(path, ("tid", "name", "task_type", "target_feature", "NumberOfInstances",
                            "NumberOfFeatures", "NumberOfClasses"))
    tasks: dict[int, Task] = {}
    for number, row in enumerate(rows, start=1):
        tid = int(_number(row, "tid", number, minimum=0, integer=True))
        if tid in tasks:
            raise ValidationError(f"task {tid} is listed twice", row=number, field="tid")
        kind = OPENML_TASK_TYPES.get(row["task_type"])
        if kind is None:
            raise ValidationError(f"{row['task_type']!r} is not one of "
                                  f"{', '.join(map(repr, OPENML_TASK_TYPES))}", row=number, field="task_type")
        for field in ("name", "target_feature"):
            if not row[field]:
                raise ValidationError("is empty", row=number, field=field)
        classes = int(_number(row, "NumberOfClasses", number, minimum=0, integer=True))
        if kind == "classification" and classes < 2:
            raise ValidationError(f"a classification task needs at least 2 classes, not {classes}",
                                  row=number, field="NumberOfClasses")
        task = "regression" if kind == "regression" else "binary" if classes == 2 else "multiclass"
        dataset_id = reference_dataset_id("openml-task", tid)
        dataset = Dataset(
            dataset_id=dataset_id, name=row["name"], task=task, target=row["target_feature"],
            n_rows=int(_number(row, "NumberOfInstances", number, minimum=1, integer=True)),
            # OpenML counts the target among the features; the KB does not.
            n_features=int(_number(row, "NumberOfFeatures", number, minimum=2, integer=True)) - 1,
            n_classes=classes if task != "regression" else None,
            source="openml", origin=f"openml-task:{tid}", data_file=None)
        values = {name: _number(row, name, number, required=False)
                  for name in qualities if name in row}
        tasks[tid] = Task(tid, dataset, tuple(
            MetaFeature(dataset_id=dataset_id, name=name, value=value, extractor="openml",
                        extractor_version=QUALITIES_VERSION)
            for name, value in values.items() if value is not None))
    if not tasks:
        raise KBError(f"{path} has a header but no rows")
    return tasks


def read_configs(path: Path) -> dict[str, dict]:
    """``configs_lightgbm.json`` as {TabRepo name: canonical configuration}."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise KBError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise KBError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(data, dict) or not data:
        raise KBError(f"{path} must hold a JSON object of configurations by name")
    configs = {}
    for name, entry in data.items():
        hyperparameters = entry.get("hyperparameters") if isinstance(entry, dict) else None
        if not isinstance(hyperparameters, dict):
            raise ValidationError(f"configuration {name!r} has no object 'hyperparameters'",
                                  source=str(path), field="hyperparameters")
        config = {"family": FAMILY}
        for key, value in hyperparameters.items():
            if key == "ag_args":  # AutoGluon's naming of the model, not a hyperparameter
                continue
            if isinstance(value, (dict, list)) or value is None or (
                    isinstance(value, float) and not math.isfinite(value)):
                raise ValidationError(f"configuration {name!r}: {json.dumps(value)} is not a number, "
                                      f"boolean or text", source=str(path), field=key)
            config[key] = value
        configs[name] = json.loads(canonical_json(config))
    return configs


def read_results(path: Path, tasks: dict[int, Task], configs: dict[str, dict],
                 hardware_id: str) -> list[Trial]:
    """``lgbm_results_by_task.csv`` as trials of ``tasks`` and ``configs`` on ``hardware_id``."""
    rows = _csv_rows(path, ("dataset", "framework", "problem_type", "metric_error"))
    trials = []
    for number, row in enumerate(rows, start=1):
        tid = int(_number(row, "dataset", number, minimum=0, integer=True))
        task = tasks.get(tid)
        if task is None:
            raise ValidationError(f"task {tid} is not in {TASKS_FILE}", row=number, field="dataset")
        name = row["framework"]
        if name not in configs:
            raise ValidationError(f"no configuration {name!r} in {CONFIGS_FILE}", row=number,
                                  field="framework")
        if row["problem_type"] != task.dataset.task:
            raise ValidationError(f"{row['problem_type']!r}, but {TASKS_FILE} makes task {tid} "
                                  f"{task.dataset.task}", row=number, field="problem_type")
        metric, direction, score_of = METRICS[task.dataset.task]
        error = _number(row, "metric_error", number, minimum=0.0)
        extras = {field: _number(row, field, number, required=False, minimum=0.0)
                  for field in ("time_train_s", "time_infer_s", "rank") if field in row}
        details = {"tabrepo_config": name, "metric_error": error,
                   **{k: v for k, v in extras.items() if k != "time_train_s" and v is not None}}
        trials.append(Trial(
            dataset_id=task.dataset.dataset_id, hardware_id=hardware_id, config=configs[name],
            model_family=FAMILY, metric=metric, direction=direction, status="ok", source=SOURCE,
            score=score_of(error), train_seconds=extras.get("time_train_s"), details=details))
    if not trials:
        raise KBError(f"{path} has a header but no rows")
    return trials


def _csv_rows(path: Path, required: tuple[str, ...]) -> list[dict]:
    check_content(path, "text")
    table = read_csv_as_text(path)
    missing = [name for name in required if name not in table.column_names]
    if missing:
        raise KBError(f"{path} lacks the column(s) {', '.join(missing)}")
    return [{k: (v or "").strip() for k, v in row.items()} for row in table.to_pylist()]


def _number(row: dict, field: str, number: int, *, required: bool = True, minimum: float | None = None,
            integer: bool = False) -> float | None:
    text = row.get(field) or ""
    if not text:
        if required:
            raise ValidationError("is empty", row=number, field=field)
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(f"{text!r} is not a number", row=number, field=field) from None
    if not math.isfinite(value):
        raise ValidationError(f"{text!r} is not a finite number", row=number, field=field)
    if integer and not value.is_integer():
        raise ValidationError(f"{text!r} is not a whole number", row=number, field=field)
    if minimum is not None and value < minimum:
        raise ValidationError(f"{text!r} is below {minimum:g}", row=number, field=field)
    return value
