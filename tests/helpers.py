"""Builders of valid rows, shared by the tests (importable from child processes too)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from kb.schema import TABLES, Dataset, Hardware
from kb.validation import prepare_rows

DATASET = Dataset(dataset_id="d0", name="d0", task="binary", target="y", n_rows=10,
                  n_features=2, source="test")
HARDWARE = Hardware(name="test-cpu", kind="cpu", source="test", cores=2, threads=1)
HARDWARE_ID = prepare_rows([HARDWARE], TABLES["hardware"]).table.column("hardware_id")[0].as_py()


def add_references(kb) -> None:
    """The dataset and hardware the builders' trials refer to, so the KB validates clean."""
    kb.add(DATASET, on_conflict="keep")
    kb.add(HARDWARE, on_conflict="keep")


def trial_table(n: int, start: int = 0, *, dataset_id: str = "d0", hardware_id: str = HARDWARE_ID,
                seed: int = 0) -> pa.Table:
    """``n`` valid trials whose configs are numbered from ``start`` (so ranges never collide)."""
    numbers = np.arange(start, start + n)
    return pa.table({
        "dataset_id": pa.array([dataset_id] * n),
        "hardware_id": pa.array([hardware_id] * n),
        "config": pa.array([f'{{"family":"random_forest","n_estimators":{i}}}' for i in numbers]),
        "model_family": pa.array(["random_forest"] * n),
        "metric": pa.array(["accuracy"] * n),
        "direction": pa.array(["maximize"] * n),
        "status": pa.array(["ok"] * n),
        "source": pa.array(["test"] * n),
        "seed": pa.array([seed] * n, pa.int64()),
        # Values follow from the config number, so overlapping ranges hold identical rows.
        "score": pa.array((numbers % 97) / 97.0),
        "latency_p50_ms": pa.array(1.0 + (numbers % 13) / 3.0),
    })


def trial_row(i: int = 0, **changes) -> dict:
    """One valid trial as a mapping (as a JSONL line would give it)."""
    row = {
        "dataset_id": "d0", "hardware_id": HARDWARE_ID,
        "config": {"family": "random_forest", "n_estimators": i},
        "model_family": "random_forest", "metric": "accuracy", "direction": "maximize",
        "status": "ok", "source": "test", "score": 0.5 + i / 1000,
    }
    row.update(changes)
    return row


def csv_head(source, target, rows: int, change=None, drop=()) -> None:
    """The header and first ``rows`` rows of the CSV ``source`` written to ``target``, without
    the columns ``drop``; ``change(i, cells, header)`` may edit row i's cells (from 1)."""
    import csv
    import itertools

    with open(source, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        body = [list(r) for r in itertools.islice(reader, rows)]
    for i, cells in enumerate(body, start=1):
        if change:
            change(i, cells, header)
    keep = [j for j, name in enumerate(header) if name not in drop]
    with open(target, "w", newline="") as f:
        csv.writer(f).writerows([[r[j] for j in keep] for r in [header, *body]])
