"""Datasets: load them from files or scikit-learn, infer target and task, register them.

A dataset's id is the hash of its canonical content (column names, kinds and values, and the
target's name), so the same data read from CSV or Parquet, or registered twice, is one
dataset. The KB keeps its own Parquet copy under ``data/`` so later commands never depend on
the original file staying where it was.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from kb.errors import KBError, first_line
from kb.keys import KEY_LENGTH
from kb.schema import TASKS, Dataset
from kb.shards import read_verified, write_atomically
from kb.tabular_io import check_content, split_extension

SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")
DATASET_FORMATS = (".csv", ".tsv", ".parquet", ".pq", ".arff")
TARGET_NAMES = ("target", "class", "label", "y")
MAX_CLASSES_INFERRED = 20  # an integer target with more distinct values is taken as regression
DATA_DIR = "data"


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset in memory: the features, the target and what the KB records about it."""

    record: Dataset
    frame: pd.DataFrame  # all columns, in the order of the source
    dropped_rows: int = 0  # rows left out because their target was missing

    @property
    def X(self) -> pd.DataFrame:
        return self.frame.drop(columns=[self.record.target])

    @property
    def y(self) -> pd.Series:
        return self.frame[self.record.target]


# -- reading -----------------------------------------------------------------------------------


def read_frame(source: str | os.PathLike) -> pd.DataFrame:
    """Read ``source`` (a CSV, TSV, Parquet or ARFF file, optionally .gz, or ``sklearn:NAME``)."""
    text = str(source)
    if text.startswith("sklearn:"):
        return _read_sklearn(text.split(":", 1)[1])
    path = Path(source)
    if not path.exists():
        raise KBError(f"{path}: no such file")
    if path.is_dir():
        raise KBError(f"{path} is a folder, not a data file")
    extension, gz = split_extension(path)
    if extension not in DATASET_FORMATS:
        raise KBError(f"{path}: unsupported file type {extension or '(none)'!r}; use CSV, TSV, "
                      f"Parquet or ARFF (optionally .gz), or sklearn:NAME")
    is_parquet = extension in (".parquet", ".pq")
    check_content(path, "parquet" if is_parquet and not gz else "text", gz)
    try:
        if is_parquet:
            frame = pd.read_parquet(path)
        elif extension == ".arff":
            frame = _read_arff(path, gz)
        else:
            frame = pd.read_csv(path, sep="\t" if extension == ".tsv" else ",",
                                compression="gzip" if gz else None, low_memory=False)
    except KBError:
        raise
    except UnicodeDecodeError:
        raise KBError(f"{path} is not UTF-8 text") from None
    except pd.errors.EmptyDataError:
        raise KBError(f"{path} is empty") from None
    except Exception as e:
        raise KBError(f"{path} cannot be read as {extension.lstrip('.').upper()} "
                      f"({first_line(e)})") from None
    frame.columns = [str(c) for c in frame.columns]  # Parquet and the KB need text names
    if frame.shape[1] == 0:
        raise KBError(f"{path} has no columns")
    if frame.shape[0] == 0:
        raise KBError(f"{path} has a header but no rows")
    return frame


def _read_sklearn(name: str) -> pd.DataFrame:
    if name not in SKLEARN_DATASETS:
        raise KBError(f"unknown scikit-learn dataset {name!r}; bundled ones are: "
                      f"{', '.join(SKLEARN_DATASETS)}")
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
    return bunch.frame


def _read_arff(path: Path, gz: bool) -> pd.DataFrame:
    import gzip

    import arff  # liac-arff: a pure-Python reader, no evaluation of file contents

    with (gzip.open if gz else open)(path, "rt", encoding="utf-8") as f:
        try:
            data = arff.load(f)
        except arff.ArffException as e:
            raise KBError(f"{path} is not a valid ARFF file ({e})") from None
    names = [name for name, _ in data["attributes"]]
    frame = pd.DataFrame(data["data"], columns=names)
    for name, kind in data["attributes"]:
        if isinstance(kind, str) and kind.upper() in ("NUMERIC", "REAL", "INTEGER"):
            frame[name] = pd.to_numeric(frame[name])
        elif isinstance(kind, list):
            # Nominal: categories even when the labels look like numbers ({1,2,3}), as OpenML
            # counts them.
            frame[name] = pd.Categorical(frame[name], categories=kind)
    return frame


# -- target and task ---------------------------------------------------------------------------


def infer_target(frame: pd.DataFrame, given: str | None = None) -> str:
    """``given`` if it is a column; else a column named like a target; else the last column."""
    if given is not None:
        if given not in frame.columns:
            shown = ", ".join(map(str, frame.columns[:20])) + (", ..." if frame.shape[1] > 20 else "")
            raise KBError(f"no column {given!r}; the columns are: {shown}")
        return given
    lowered = {str(c).lower(): c for c in frame.columns}
    for name in TARGET_NAMES:
        if name in lowered:
            return str(lowered[name])
    return str(frame.columns[-1])


def infer_task(y: pd.Series, given: str | None = None) -> str:
    """The task for target ``y``: ``given`` if set (checked), else inferred from the values.

    Text, boolean and categorical targets are classification; numbers with two values are
    binary; whole numbers with at most 20 values are multiclass; other numbers regression.
    """
    values = y.dropna()
    if given is not None and given not in TASKS:
        raise KBError(f"unknown task {given!r}; expected one of {', '.join(TASKS)}")
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    n_classes = values.nunique()
    if given == "regression" or (given is None and numeric and _looks_continuous(values)):
        if not numeric:
            example = values.iloc[0]
            raise KBError(f"target {y.name!r} is not numeric (e.g. {example!r}); regression "
                          f"needs numbers, or choose --task binary/multiclass")
        if not np.isfinite(values.to_numpy(dtype=float)).all():
            raise KBError(f"target {y.name!r} has infinite values")
        if n_classes < 2:
            raise KBError(f"target {y.name!r} has a single value; there is nothing to predict")
        return "regression"
    if n_classes < 2:
        raise KBError(f"target {y.name!r} has a single class ({values.iloc[0]!r}); "
                      f"classification needs at least two")
    task = "binary" if n_classes == 2 else "multiclass"
    if given is not None and given != task:
        raise KBError(f"target {y.name!r} has {n_classes} classes, so the task is {task}, "
                      f"not {given}")
    return task


def _looks_continuous(values: pd.Series) -> bool:
    n = values.nunique()
    if n <= 2:
        return False
    if pd.api.types.is_float_dtype(values):
        return True
    return n > MAX_CLASSES_INFERRED


# -- identity and registration -----------------------------------------------------------------


def fingerprint(frame: pd.DataFrame, target: str) -> str:
    """The dataset id: a hash of column names and kinds, all values in order, and the target.

    Numbers hash by their float64 value, so the same data read as int32 from Parquet or
    int64 from CSV has one id; text hashes by its characters.
    """
    h = hashlib.sha256()
    kinds = [[str(c), "number" if _is_number(frame[c]) else "text"] for c in frame.columns]
    h.update(json.dumps({"target": target, "columns": kinds}).encode())
    for column in frame.columns:
        series = frame[column]
        if _is_number(series):
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            values = np.where(np.isnan(values), np.nan, values)  # one NaN bit pattern
            h.update(np.ascontiguousarray(values, dtype="<f8").tobytes())
        else:
            h.update("\x1f".join("\x00" if pd.isna(v) else str(v) for v in series).encode())
    return h.hexdigest()[:KEY_LENGTH]


def reference_dataset_id(source: str, identifier: str | int) -> str:
    """The id of a dataset known only by reference (an OpenML task, a NAS-Bench-201 image
    set) whose data the KB does not hold: a hash of where it is from and its name there, so
    every adapter that meets ``("openml-task", 3)`` gives the same row."""
    h = hashlib.sha256(json.dumps({"source": source, "id": str(identifier)}).encode())
    return h.hexdigest()[:KEY_LENGTH]


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series)


def load(source: str | os.PathLike, *, target: str | None = None, task: str | None = None,
         name: str | None = None, source_label: str | None = None,
         licence: str | None = None) -> LoadedDataset:
    """Read a dataset, settle its target and task, and describe it as a ``Dataset`` record."""
    frame = read_frame(source)
    target = infer_target(frame, target)
    missing = frame[target].isna()
    if missing.all():
        raise KBError(f"target {target!r} has no values")
    frame = frame.loc[~missing].reset_index(drop=True)
    if frame.shape[1] < 2:
        raise KBError(f"there are no feature columns besides the target {target!r}")
    task = infer_task(frame[target], task)
    text = str(source)
    origin = text if text.startswith("sklearn:") else str(Path(source).resolve())
    record = Dataset(
        dataset_id=fingerprint(frame, target),
        name=name or _default_name(text),
        task=task,
        target=target,
        n_rows=int(frame.shape[0]),
        n_features=int(frame.shape[1] - 1),
        n_classes=None if task == "regression" else int(frame[target].nunique()),
        source=source_label or ("scikit-learn" if text.startswith("sklearn:") else "file"),
        licence=licence,
        origin=origin,
    )
    return LoadedDataset(record, frame, int(missing.sum()))


def _default_name(source: str) -> str:
    if source.startswith("sklearn:"):
        return source.split(":", 1)[1]
    return Path(source).name.split(".")[0]


def register(kb, loaded: LoadedDataset) -> tuple[Dataset, bool]:
    """Store the dataset's data and record in ``kb``; returns (the stored record, was it new).

    Registering data the KB already holds (same id) adds nothing and returns the stored record.
    """
    existing = find(kb, loaded.record.dataset_id, by_name=False)
    if existing is not None:
        return existing, False
    relative = f"{DATA_DIR}/{loaded.record.dataset_id}.parquet"
    if not (kb.root / relative).exists():
        write_atomically(_as_arrow(loaded.frame), kb.root / DATA_DIR, f"{loaded.record.dataset_id}.parquet")
    record = replace(loaded.record, data_file=relative, added_at=datetime.now(timezone.utc))
    kb.append("datasets", [record], on_conflict="keep")
    return record, True


def _as_arrow(frame: pd.DataFrame) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Columns mixing numbers and text are stored as text; missing cells stay missing.
        mixed = [c for c in frame.columns if frame[c].dtype == object]
        frame = frame.assign(**{c: frame[c].map(lambda v: v if pd.isna(v) else str(v)) for c in mixed})
        return pa.Table.from_pandas(frame, preserve_index=False)


def find(kb, dataset: str, *, by_name: bool = True) -> Dataset | None:
    """The dataset whose id (or, with ``by_name``, name) is ``dataset``; None if there is none."""
    sql = "SELECT * FROM datasets WHERE dataset_id = ?" + (" OR name = ?" if by_name else "")
    rows = kb.query(sql, [dataset, dataset] if by_name else [dataset]).to_pylist()
    if not rows:
        return None
    exact = [r for r in rows if r["dataset_id"] == dataset]
    if len(rows) > 1 and not exact:
        ids = ", ".join(r["dataset_id"] for r in rows)
        raise KBError(f"{len(rows)} datasets are named {dataset!r} ({ids}); use the id")
    return Dataset(**(exact or rows)[0])


def get(kb, dataset: str) -> Dataset:
    found = find(kb, dataset)
    if found is None:
        raise KBError(f"no dataset {dataset!r} in the KB; `kb datasets list` shows them, "
                      f"`kb datasets add PATH --target COL` adds one")
    return found


def read_data_file(path: Path) -> pd.DataFrame:
    """A KB data file as the frame it was registered from; raises if the file is damaged
    (its pages fail their checksums, or its column metadata no longer parses)."""
    return read_verified(path).to_pandas()


def load_registered(kb, dataset: str) -> LoadedDataset:
    """A registered dataset's data, read from the KB's own copy."""
    record = get(kb, dataset)
    if record.data_file is None:
        raise KBError(f"dataset {record.name} ({record.dataset_id}) is known by its results only; "
                      f"the KB holds no data for it")
    path = kb.root / record.data_file
    if not path.is_file():
        raise KBError(f"the data file of dataset {record.name} is missing ({path}); "
                      f"`kb validate` lists what else is")
    try:
        frame = read_data_file(path)
    except Exception as e:
        raise KBError(f"the data file of dataset {record.name} ({path}) is unreadable "
                      f"({first_line(e)}); register the data again with `kb datasets add`") from None
    return LoadedDataset(record, frame)


# -- the datasets that ship with metakb --------------------------------------------------------


@dataclass(frozen=True)
class BundledDataset:
    name: str
    file: str
    task: str
    target: str
    n_rows: int
    n_features: int
    n_classes: int | None
    source: str
    licence: str


def bundled_folder() -> Path:
    """Where the bundled datasets are: ``$METAKB_DATASETS``, else ``datasets/`` of the checkout."""
    folder = Path(os.environ.get("METAKB_DATASETS") or Path(__file__).resolve().parents[1] / "datasets")
    if not (folder / "manifest.csv").is_file():
        raise KBError(f"the bundled datasets are not at {folder}; install metakb from its source "
                      f"checkout (pip install -e .) or set METAKB_DATASETS")
    return folder


def baseline_folder() -> Path:
    """The shipped baseline KB tables (native Parquet files), installed by ``kb init --bundled``."""
    return bundled_folder() / "baseline"


def bundled() -> list[BundledDataset]:
    folder = bundled_folder()
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [
        BundledDataset(
            name=r["name"], file=r["file"], task=r["task"], target=r["target"],
            n_rows=int(r["n_rows"]), n_features=int(r["n_features"]),
            n_classes=int(r["n_classes"]) if r["n_classes"] else None,
            source=r["source"], licence=r["licence"],
        )
        for r in rows
    ]


def load_bundled(entry: BundledDataset) -> LoadedDataset:
    return load(bundled_folder() / entry.file, target=entry.target, task=entry.task,
                name=entry.name, source_label=entry.source, licence=entry.licence)
