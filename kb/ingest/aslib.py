"""The ``aslib`` format: ASlib scenario folders, such as the meta-learning knowledge auto-sklearn
ships (one folder per metric and task, ``<metric>_<task>_dense``).

A scenario folder holds four files, read as follows:

- ``feature_values.arff``: one row per instance, here an OpenML dataset known by name. Each
  becomes a ``datasets`` row known only by reference (the KB holds no data for it; n_rows,
  n_features and n_classes come from its meta-features, the task from NumberOfClasses) and
  its ``metafeatures`` rows, extractor ``autosklearn``. The rows keep auto-sklearn's names and
  values: the KB reads every extractor's rows in that extractor's vocabulary and converts
  them to OpenML's names (``metafeatures.names``) when it compares datasets, so a value is
  converted exactly once.
- ``algorithm_runs.arff``, ``configurations.csv``, ``description.txt``: one trial per run,
  its configuration ``{"family": "autosklearn", <hyperparameter>: <value>, ...}`` from the
  run's ``algorithm`` (the ``idx`` of configurations.csv; inactive hyperparameters, empty
  there, are left out). The score is the column of the description's first performance
  measure; auto-sklearn writes its loss there (1 - accuracy, the RMSE), and ``maximize:
  false`` makes the direction ``minimize``. runstatus ok, timeout, memout, crash and other
  become the statuses ok, timeout, failed, failed and failed; ``not_applicable`` runs (ROC AUC
  on a multiclass dataset) become no trial and are counted as left out. ``repetition`` is
  kept in the trial's details.

All or nothing: a folder is checked whole before anything is written, so a damaged file
rejects the folder, naming the file, row and attribute. It is then written as two units:
feature_values.arff (datasets, meta-features), then the runs (trials), which need the other
three files and the first unit's datasets. A rejected feature_values.arff adds no trials.

An instance's dataset id is ``reference_dataset_id("aslib-instance", "<task>/<name>")``: the
four classification scenarios name the same datasets, while a regression scenario's abalone
is another OpenML dataset than a classification scenario's abalone.

auto-sklearn's scenarios for two metrics often share a dataset's best configuration; a
trial's id names its metric, so those are two trials, one per metric.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from kb.datasets import reference_dataset_id
from kb.errors import KBError, ValidationError, first_line
from kb.ingest import FileReport
from kb.ingest.external import external_hardware, write_file_rows
from kb.keys import canonical_json
from kb.schema import Dataset, MetaFeature, Trial

DESCRIPTION, FEATURES, RUNS, CONFIGURATIONS = (
    "description.txt", "feature_values.arff", "algorithm_runs.arff", "configurations.csv")
SCENARIO_FILES = (DESCRIPTION, FEATURES, RUNS, CONFIGURATIONS)
FAMILY = "autosklearn"
EXTRACTOR = "autosklearn"
EXTRACTOR_VERSION = "unknown"  # ASlib scenarios do not say which auto-sklearn computed them
REFERENCE_SOURCE = "aslib-instance"
# ASlib runstatus -> (trial status, failure reason)
STATUSES = {
    "ok": ("ok", None),
    "timeout": ("timeout", "ran past the scenario's algorithm cutoff time"),
    "memout": ("failed", "ran out of memory (ASlib runstatus memout)"),
    "crash": ("failed", "crashed (ASlib runstatus crash)"),
    "other": ("failed", "failed (ASlib runstatus other)"),
}
NOT_APPLICABLE = "not_applicable"
NUMERIC_KINDS = ("NUMERIC", "REAL", "INTEGER")
_INTEGER = re.compile(r"[-+]?\d+")


# -- reading the files (pure: paths in, typed values or a located error out) --------------------


@dataclass(frozen=True)
class ArffTable:
    """An ARFF file's rows, each value typed by its attribute (None where missing)."""

    path: Path
    attributes: tuple[tuple[str, object], ...]  # (name, "NUMERIC" | "STRING" | [nominal values])
    rows: tuple[tuple, ...]
    lines: tuple[int, ...]  # the file line each row is on

    def index(self, name: str) -> int:
        for i, (attribute, _) in enumerate(self.attributes):
            if attribute == name:
                return i
        raise ValidationError("the file has no such attribute", source=str(self.path), field=name)

    def error(self, row: int, field: str | None, problem: str) -> ValidationError:
        """A problem with the row at index ``row``, named as row N (counted from 1) and line."""
        return ValidationError(f"{problem} (line {self.lines[row]})", source=str(self.path),
                               row=row + 1, field=field)


def read_arff(path: Path) -> ArffTable:
    """Read an ARFF file with liac-arff, checking each value against its attribute here so
    that a bad value is reported with its row and attribute."""
    import arff

    lines = _read_text(path).splitlines()
    at = next((i for i, line in enumerate(lines) if line.strip().lower().startswith("@data")),
              None)
    if at is None:
        raise KBError(f"{path} is not an ARFF file (it has no @DATA line)")
    try:
        attributes = arff.loads("\n".join(lines[:at + 1]) + "\n")["attributes"]
    except arff.ArffException as e:
        raise KBError(f"{path}: the ARFF header does not parse ({e})") from None
    # liac-arff splits the rows (quotes, '?', comments); every attribute read as text first.
    as_text = arff.dumps({"relation": "rows", "data": [[None] * len(attributes)],
                          "attributes": [(name, "STRING") for name, _ in attributes]})
    as_text = as_text[:as_text.rindex("@DATA")] + "@DATA\n"
    data_lines = [at + 2 + i for i, line in enumerate(lines[at + 1:])
                  if line.strip() and not line.lstrip().startswith("%")]
    try:
        raw = arff.loads(as_text + "\n".join(lines[at + 1:]) + "\n")["data"]
    except arff.ArffException as e:
        problem = re.sub(r",? (at|in) line \d+.*", "", str(e), flags=re.DOTALL).strip()
        if not getattr(e, "line", None):
            raise ValidationError(problem, source=str(path)) from None
        line = e.line - as_text.count("\n") + at + 1
        raise ValidationError(f"{problem} (line {line})", source=str(path),
                              row=sum(1 for n in data_lines if n <= line)) from None
    table = ArffTable(path, tuple((name, kind) for name, kind in attributes), (), tuple(data_lines))
    rows = []
    for r, values in enumerate(raw):
        typed = []
        for value, (name, kind) in zip(values, attributes):
            try:
                typed.append(_typed(value, kind))
            except ValueError as e:
                raise table.error(r, name, str(e)) from None
        rows.append(tuple(typed))
    return replace(table, rows=tuple(rows))


def _typed(value, kind):
    if value is None:
        return None
    if isinstance(kind, list):
        if value not in kind:
            raise ValueError(f"{value!r} is not one of {', '.join(kind)}")
        return value
    if str(kind).upper() in NUMERIC_KINDS:
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    return value


@dataclass(frozen=True)
class Description:
    """What ``description.txt`` says that the trials need."""

    scenario_id: str
    measure: str  # the first performance measure: the column of algorithm_runs.arff scored
    maximize: bool

    @property
    def source(self) -> str:
        return f"aslib:{self.scenario_id}"


def read_description(path: Path) -> Description:
    """``description.txt``: YAML, whose lists may also be written as comma-separated text."""
    import yaml

    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as e:
        raise KBError(f"{path} is not a valid ASlib description ({first_line(e)})") from None
    if not isinstance(data, dict):
        raise KBError(f"{path} is not a valid ASlib description (expected 'key: value' lines)")

    wrong = partial(ValidationError, source=str(path))
    measures = _as_list(data.get("performance_measures"))
    if not measures or not isinstance(measures[0], str):
        raise wrong(field="performance_measures",
                    problem=f"missing: it names the column of {RUNS} that holds each run's score")
    maximize = _as_list(data.get("maximize"))
    if not maximize or not isinstance(maximize[0], bool):
        raise wrong(field="maximize",
                    problem=f"expected true or false, got {data.get('maximize')!r}")
    return Description(scenario_id=str(data.get("scenario_id") or path.parent.name),
                       measure=measures[0], maximize=maximize[0])


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value) if isinstance(value, list) else [value]


def read_configurations(path: Path) -> dict[str, dict]:
    """``configurations.csv``: {idx: configuration}; empty cells (inactive) are left out, numbers
    become numbers, other values ("True", "None", "gini") stay the text auto-sklearn's space
    uses."""
    missing = object()
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, restval=missing)
            if "idx" not in (reader.fieldnames or ()):
                raise ValidationError("missing column", source=str(path), field="idx")
            configurations: dict[str, dict] = {}
            first_row: dict[str, int] = {}
            for row_number, row in enumerate(reader, start=1):
                wrong = partial(ValidationError, source=str(path), row=row_number)
                if None in row:
                    raise wrong(field=None, problem="more values than the header has columns")
                short = [name for name, value in row.items() if value is missing]
                if short:
                    raise wrong(field=short[0],
                                problem="missing: the row has fewer values than the header")
                idx = row["idx"].strip()
                if not idx:
                    raise wrong(field="idx", problem="missing")
                if idx in first_row:
                    raise wrong(field="idx",
                                problem=f"{idx} is also the idx of row {first_row[idx]}")
                first_row[idx] = row_number
                configurations[idx] = {"family": FAMILY, **{
                    name: _config_value(value) for name, value in row.items()
                    if name != "idx" and value.strip() != ""}}
    except FileNotFoundError:
        raise _missing(path) from None
    except UnicodeDecodeError:
        raise KBError(f"{path} is not UTF-8 text") from None
    except csv.Error as e:
        raise KBError(f"{path} is not valid CSV ({e})") from None
    return configurations


def _config_value(text: str):
    text = text.strip()
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _missing(path) from None
    except UnicodeDecodeError:
        raise KBError(f"{path} is not UTF-8 text") from None


def _missing(path: Path) -> KBError:
    return KBError(f"{path} is missing; a scenario folder holds {', '.join(SCENARIO_FILES)}")


# -- rows for the KB (pure) --------------------------------------------------------------------


@dataclass(frozen=True)
class Instances:
    """The datasets and meta-features of ``feature_values.arff``."""

    datasets: dict[str, Dataset]  # by instance name
    metafeatures: list[MetaFeature]


def instance_rows(table: ArffTable, source: str) -> Instances:
    name_at = table.index("instance_id")
    features = [(i, name, kind) for i, (name, kind) in enumerate(table.attributes)
                if name not in ("instance_id", "repetition")]
    for _, name, kind in features:
        if str(kind).upper() not in NUMERIC_KINDS:
            raise ValidationError(f"a meta-feature must be NUMERIC, not {kind}",
                                  source=str(table.path), field=name)
    has_classes = any(name == "NumberOfClasses" for _, name, _ in features)
    datasets: dict[str, Dataset] = {}
    first_row: dict[str, int] = {}
    metafeatures = []
    for r, row in enumerate(table.rows):
        instance = row[name_at]
        if not instance:
            raise table.error(r, "instance_id", "missing")
        if instance in first_row:
            raise table.error(r, "instance_id", f"{instance!r} already has a row (row "
                              f"{first_row[instance] + 1}); one row per instance is read")
        first_row[instance] = r
        values = {name: row[i] for i, name, _ in features
                  if row[i] is not None and math.isfinite(row[i])}
        task, n_classes = _task(values, has_classes, table, r)
        dataset = Dataset(
            dataset_id=reference_dataset_id(REFERENCE_SOURCE, f"{task}/{instance}"),
            name=instance, task=task, target="", source=source, n_classes=n_classes,
            n_rows=_count(values, "NumberOfInstances", table, r),
            n_features=_count(values, "NumberOfFeatures", table, r))
        datasets[instance] = dataset
        metafeatures += [MetaFeature(dataset_id=dataset.dataset_id, name=name, value=value,
                                     extractor=EXTRACTOR, extractor_version=EXTRACTOR_VERSION)
                         for name, value in values.items()]
    return Instances(datasets, metafeatures)


def _task(values: dict, has_classes: bool, table: ArffTable, r: int) -> tuple[str, int | None]:
    """The task from NumberOfClasses; auto-sklearn's regression scenarios have no such column."""
    if not has_classes:
        return "regression", None
    classes = values.get("NumberOfClasses")
    if classes is None or classes < 2 or classes != int(classes):
        raise table.error(r, "NumberOfClasses", f"expected a whole number of at least 2, got "
                          f"{classes}; the dataset's task is told from it")
    return ("binary" if classes == 2 else "multiclass"), int(classes)


def _count(values: dict, name: str, table: ArffTable, r: int) -> int:
    """A count (NumberOfInstances) from its meta-feature, or from its log (LogNumberOfInstances)."""
    if name in values:
        return round(values[name])
    if f"Log{name}" in values:
        return round(math.exp(values[f"Log{name}"]))
    raise table.error(r, name, "missing; the dataset's size is read from it")


def trial_rows(runs: ArffTable, configurations: dict[str, dict], description: Description,
               datasets: dict[str, Dataset], hardware_id: str) -> tuple[list[Trial], int]:
    """(a trial per applicable run, the number of not_applicable runs)."""
    at = {name: runs.index(name)
          for name in ("instance_id", "repetition", "algorithm", description.measure, "runstatus")}
    trials, not_applicable = [], 0
    first_row: dict[tuple[str, str], int] = {}
    for r, row in enumerate(runs.rows):
        instance, algorithm, status, repetition, score = (
            row[at[name]] for name in ("instance_id", "algorithm", "runstatus", "repetition",
                                       description.measure))
        if status == NOT_APPLICABLE:
            not_applicable += 1
            continue
        if status not in STATUSES:
            raise runs.error(r, "runstatus", f"{status!r} is not one of {', '.join(STATUSES)}, "
                             f"{NOT_APPLICABLE}")
        if instance not in datasets:
            raise runs.error(r, "instance_id", f"{instance!r} has no row in {FEATURES}")
        config = configurations.get(str(algorithm).strip())
        if config is None:
            raise runs.error(r, "algorithm", f"{algorithm!r} is not an idx of {CONFIGURATIONS}")
        if repetition is None or repetition != int(repetition):
            raise runs.error(r, "repetition", f"expected a whole number, got {repetition}")
        trial_status, reason = STATUSES[status]
        if trial_status == "ok" and (score is None or not math.isfinite(score)):
            raise runs.error(r, description.measure, f"expected a finite number for a run whose "
                             f"runstatus is ok, got {'nothing' if score is None else score}")
        config_json = canonical_json(config)
        key = (instance, config_json)
        if key in first_row:
            raise runs.error(r, "algorithm", f"the same configuration on the same instance as row "
                             f"{first_row[key] + 1}; a trial is one configuration on one dataset")
        first_row[key] = r
        trials.append(Trial(
            dataset_id=datasets[instance].dataset_id, hardware_id=hardware_id, config=config_json,
            model_family=FAMILY, metric=description.measure,
            direction="maximize" if description.maximize else "minimize",
            status=trial_status, source=description.source,
            score=score if trial_status == "ok" else None, failure_reason=reason,
            details=canonical_json({"repetition": int(repetition)})))
    return trials, not_applicable


# -- ingesting ---------------------------------------------------------------------------------


def ingest_aslib(kb, path: Path, *, on_conflict: str = "error", progress) -> list[FileReport]:
    reports = []
    for folder in scenario_folders(path):
        for report in ingest_scenario(kb, folder, on_conflict=on_conflict):
            progress(report)
            reports.append(report)
    return reports


def scenario_folders(path: Path) -> list[Path]:
    """``path`` if it is a scenario folder, else the scenario folders under it."""
    if path.is_file():
        raise KBError(f"{path}: the aslib format reads scenario folders (holding "
                      f"{', '.join(SCENARIO_FILES)}), not single files")
    found = sorted({file.parent for name in SCENARIO_FILES for file in path.rglob(name)})
    if not found:
        raise KBError(f"{path}: no ASlib scenario here (a folder holding "
                      f"{', '.join(SCENARIO_FILES)})")
    return found


def ingest_scenario(kb, folder: Path, *, on_conflict: str = "error") -> list[FileReport]:
    """Ingest one scenario folder: a report for its meta-features and one for its trials."""
    try:
        description = read_description(folder / DESCRIPTION)
        instances = instance_rows(read_arff(folder / FEATURES), description.source)
        hardware = external_hardware(description.source, name=f"unknown ({description.source})")
        trials, not_applicable = trial_rows(
            read_arff(folder / RUNS), read_configurations(folder / CONFIGURATIONS), description,
            instances.datasets, hardware.hardware_id)
    except KBError as e:  # ValidationErrors name their file, row and field already
        return [FileReport(folder, rejected=str(e) if str(folder) in str(e) else f"{folder}: {e}")]
    features = write_file_rows(kb, folder / FEATURES, {"datasets": instances.datasets.values(),
                                                        "metafeatures": instances.metafeatures},
                               main_table="metafeatures", on_conflict=on_conflict)
    if features.rejected:
        return [features, FileReport(folder / RUNS, "trials", rejected=(
            f"{folder / RUNS}: not read, as the datasets of {FEATURES} were rejected"))]
    tables = {"hardware": [hardware], **({"trials": trials} if trials else {})}
    report = write_file_rows(kb, folder / RUNS, tables, main_table="trials",
                             on_conflict=on_conflict)
    if report.rejected or not not_applicable:
        return [features, report]
    return [features, replace(report, rows_left_out=not_applicable,
                              left_out_because=f"{not_applicable} {NOT_APPLICABLE}")]
