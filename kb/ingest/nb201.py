"""The ``nb201`` format: NAS-Bench-201 cells with their latency on many devices and their
accuracy on three image datasets (the tables of ``../shared/data/nb201``).

Two files, in a folder or given one at a time:

- ``latency_ms.csv`` (``arch_idx, arch_str, <device>...``): each device column becomes a
  ``hardware`` row of kind ``external`` (source ``nb201``, named as the column is; a trailing
  power of two, ``_1``/``_32``/``_256``, is the batch size, in the row's details), each cell an
  ``architectures`` row (``fragments.graph.nb201_architecture``: the full CIFAR-sized
  network, named by its cell string) with its ``fragments`` rows, and each (cell, device) a
  trial: metric ``latency_ms`` (minimized), the latency as score and as
  ``latency_p50_ms`` (batch 1) or ``latency_batch_p50_ms`` with ``batch_size`` (batched).
  Its dataset is CIFAR-100, the input the network was timed on and the dataset HELP pairs
  these latencies with.
- ``accuracy.csv`` (``CIFAR10TestAccuracy200Epochs, CIFAR100TestAccuracy200Epochs,
  ImageNetTestAccuracy200Epochs, ArchitectureString``): each (cell, dataset) a trial with
  metric ``accuracy`` (a fraction; the file has percent), fidelity 1 (200 epochs), on the
  training machine the benchmark does not name (hardware "unknown (nb201)").

The datasets are known by reference (``reference_dataset_id("nb201", name)``, no data file).
A trial's configuration is ``{"family": "nb201", "cell": <cell string>}`` and its
``arch_id`` names the architecture; the same cell on any dataset names the one CIFAR-sized
architecture row. Each file is added whole or not at all; ingesting again adds nothing, and
an architecture the KB already has is not rebuilt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from kb.errors import KBError, ValidationError
from kb.ingest import FileReport
from kb.ingest.external import external_hardware, number_column, write_file_rows
from kb.keys import canonical_json
from kb.schema import Dataset, Hardware
from kb.tabular_io import check_content, read_csv_as_text

SOURCE = "nb201"
FAMILY = "nb201"
LATENCY_FILE = "latency_ms.csv"
ACCURACY_FILE = "accuracy.csv"
LATENCY_METRIC = "latency_ms"
CELL_COLUMN = "arch_str"


@dataclass(frozen=True)
class ImageSet:
    name: str  # the dataset's name in the KB and in reference_dataset_id
    column: str  # its accuracy column in accuracy.csv
    classes: int
    n_rows: int  # images, train and test
    n_features: int  # pixels x channels

    def record(self) -> Dataset:
        from kb.datasets import reference_dataset_id

        return Dataset(dataset_id=reference_dataset_id(SOURCE, self.name), name=self.name,
                       task="multiclass", target="label", n_rows=self.n_rows,
                       n_features=self.n_features, n_classes=self.classes, source=SOURCE,
                       origin=f"nas-bench-201:{self.name}", data_file=None)


IMAGE_SETS = (
    ImageSet("cifar10", "CIFAR10TestAccuracy200Epochs", 10, 60_000, 3 * 32 * 32),
    ImageSet("cifar100", "CIFAR100TestAccuracy200Epochs", 100, 60_000, 3 * 32 * 32),
    ImageSet("ImageNet16-120", "ImageNetTestAccuracy200Epochs", 120, 157_700, 3 * 16 * 16),
)
LATENCY_SET = IMAGE_SETS[1]  # the input the latencies were measured on
ACCURACY_CELL_COLUMN = "ArchitectureString"
_BATCH = re.compile(r"_(\d+)$")


def ingest_nb201(kb, path: Path, *, on_conflict: str = "error", progress) -> list[FileReport]:
    if path.is_file():
        if path.name not in (LATENCY_FILE, ACCURACY_FILE):
            raise KBError(f"{path}: the nb201 format reads {LATENCY_FILE} and {ACCURACY_FILE}; "
                          f"give one of them or their folder")
        files = [path]
    else:
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not any(p.name in (LATENCY_FILE, ACCURACY_FILE) for p in files):
            raise KBError(f"{path}: no {LATENCY_FILE} or {ACCURACY_FILE} here (a NAS-Bench-201 folder)")
    architectures = _Architectures(kb)
    reports = []
    for file in files:
        if file.name == LATENCY_FILE:
            report = _ingest(kb, file, read_latencies, architectures, on_conflict)
        elif file.name == ACCURACY_FILE:
            report = _ingest(kb, file, read_accuracies, architectures, on_conflict)
        else:
            report = FileReport(file, skipped="not a NAS-Bench-201 file read here")
        progress(report)
        reports.append(report)
    return reports


def _ingest(kb, path: Path, read, architectures: "_Architectures", on_conflict: str) -> FileReport:
    try:
        check_content(path, "text")
        rows = read(read_csv_as_text(path))
        arch_rows, fragment_rows, arch_ids = architectures.rows(rows.cells)
    except ValidationError as e:
        return FileReport(path, "trials", rejected=str(e.located(str(path))))
    except KBError as e:
        message = str(e)
        return FileReport(path, "trials", rejected=message if str(path) in message else f"{path}: {message}")
    tables = {"datasets": rows.datasets, "hardware": rows.hardware, "fragments": fragment_rows,
              "architectures": arch_rows, "trials": rows.trials(arch_ids)}
    return write_file_rows(kb, path, {name: rows for name, rows in tables.items() if len(rows)},
                           main_table="trials", on_conflict=on_conflict)


class _Architectures:
    """The architecture rows of the cells one ingest meets, built once (building 15,625
    networks takes a minute) and not at all for cells whose row the KB already holds."""

    def __init__(self, kb):
        self._kb = kb
        self._ids: dict[str, str] = {}
        self._built: dict[str, object] = {}
        self._fragments: list = []

    def rows(self, cells: list[str]) -> tuple[list, list, list[str]]:
        """(architecture rows to write, fragment rows to write, arch_id of each cell)."""
        from fragments.graph import NB201_SOURCE, fragment_records, nb201_architectures
        from fragments.spaces import SPACES

        if not self._ids:
            stored = self._kb.query("SELECT name, arch_id FROM architectures WHERE source = ?",
                                    [NB201_SOURCE]).to_pylist()
            self._ids = {r["name"]: r["arch_id"] for r in stored}
        new = sorted({c for c in cells if c not in self._ids and c not in self._built})
        if new:
            for record in nb201_architectures(new):
                self._built[record.name] = record
            if not self._fragments:
                self._fragments = fragment_records(SPACES["nb201"].fragments())
        wanted = {c: self._built[c] for c in set(cells) if c in self._built}
        ids = [self._ids[c] if c in self._ids else self._built[c].arch_id for c in cells]
        return list(wanted.values()), self._fragments if wanted else [], ids


@dataclass(frozen=True)
class _FileRows:
    """What one file says, before the architectures' ids are known."""

    cells: list[str]  # canonical cell strings, one per trial group
    datasets: list[Dataset]
    hardware: list[Hardware]
    # (dataset, hardware, metric, direction, score column, extra columns) per trial group
    groups: list[tuple[Dataset, Hardware, str, str, np.ndarray, dict[str, pa.Array]]]

    def trials(self, arch_ids: list[str]) -> pa.Table:
        configs = [canonical_json({"cell": c, "family": FAMILY}) for c in self.cells]
        parts = []
        n = len(self.cells)
        for dataset, hardware, metric, direction, scores, extra in self.groups:
            parts.append(pa.table({
                "dataset_id": pa.array([dataset.dataset_id] * n),
                "hardware_id": pa.array([hardware.hardware_id] * n),
                "config": pa.array(configs), "model_family": pa.array([FAMILY] * n),
                "metric": pa.array([metric] * n), "direction": pa.array([direction] * n),
                "status": pa.array(["ok"] * n), "source": pa.array([SOURCE] * n),
                "score": pa.array(scores, pa.float64()), "arch_id": pa.array(arch_ids),
                **{name: extra.get(name, pa.nulls(n, pa.float64()))
                   for name in ("latency_p50_ms", "latency_batch_p50_ms")},
                "batch_size": extra.get("batch_size", pa.nulls(n, pa.int64())),
            }))
        return pa.concat_tables(parts)


def _cells(table: pa.Table, column: str) -> list[str]:
    """The canonical cell strings of ``column``; a malformed one is rejected by row."""
    from fragments.nb201 import format_nb201, parse_nb201

    if column not in table.column_names:
        raise KBError(f"lacks the column {column!r} (NAS-Bench-201 cell strings)")
    cells = []
    for row, text in enumerate(table.column(column).to_pylist(), start=1):
        try:
            cells.append(format_nb201(parse_nb201(text or "")))
        except KBError as e:
            raise ValidationError(str(e), row=row, field=column) from None
    seen: dict[str, int] = {}
    for row, cell in enumerate(cells, start=1):
        if cell in seen:
            raise ValidationError(f"cell {cell} is listed twice (rows {seen[cell]} and {row})",
                                  row=row, field=column)
        seen[cell] = row
    if not cells:
        raise KBError("has a header but no rows")
    return cells


def batch_size(device: str) -> int:
    """The batch a NAS-Bench-201 device column was timed at: a trailing power of two
    (``2080ti_32``: 32, ``essential_ph_1``: 1), else 1 (``gold_6240`` is a CPU model)."""
    batch = _BATCH.search(device)
    size = int(batch.group(1)) if batch else 1
    return size if size & (size - 1) == 0 else 1


def device_hardware(device: str) -> Hardware:
    """The hardware row of a NAS-Bench-201 device column."""
    details = {"batch_size": batch_size(device), "measured_by": "HW-NAS-Bench / HELP"}
    return external_hardware(SOURCE, device, details=canonical_json(details))


def read_latencies(table: pa.Table) -> _FileRows:
    """``latency_ms.csv`` as trial groups, one per device (no KB here)."""
    cells = _cells(table, CELL_COLUMN)
    devices = [c for c in table.column_names if c not in ("arch_idx", CELL_COLUMN)]
    if not devices:
        raise KBError("has no device columns besides arch_idx and arch_str")
    dataset = LATENCY_SET.record()
    groups, hardware = [], []
    for device in devices:
        latency = number_column(table, device, positive=True)
        row = device_hardware(device)
        size = batch_size(device)
        values = pa.array(latency, pa.float64())
        extra = ({"latency_p50_ms": values} if size == 1 else
                 {"latency_batch_p50_ms": values,
                  "batch_size": pa.array([size] * len(cells), pa.int64())})
        hardware.append(row)
        groups.append((dataset, row, LATENCY_METRIC, "minimize", latency, extra))
    return _FileRows(cells, [dataset], hardware, groups)


def read_accuracies(table: pa.Table) -> _FileRows:
    """``accuracy.csv`` as trial groups, one per dataset (no KB here)."""
    cells = _cells(table, ACCURACY_CELL_COLUMN)
    trainer = external_hardware(SOURCE)
    groups = []
    for image_set in IMAGE_SETS:
        if image_set.column not in table.column_names:
            raise KBError(f"lacks the column {image_set.column!r}")
        percent = number_column(table, image_set.column, minimum=0.0, maximum=100.0)
        groups.append((image_set.record(), trainer, "accuracy", "maximize", percent / 100.0, {}))
    return _FileRows(cells, [s.record() for s in IMAGE_SETS], [trainer], groups)
