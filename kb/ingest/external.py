"""What adapters for other tools' results share: the hardware row for results measured
elsewhere, and writing the rows one source file yields, checked whole before any is added."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from kb.errors import KBError, ValidationError
from kb.ingest import FileReport
from kb.schema import TABLE_ORDER, Hardware, table_spec
from kb.validation import prepare_rows, prepare_table, with_keys


def external_hardware(source: str, name: str | None = None, **fingerprint) -> Hardware:
    """The hardware row for results measured on a machine the KB knows only by what ``source``
    says of it; ``fingerprint`` takes any other ``Hardware`` field (cpu_model, details, ...).
    With no name it is "unknown (<source>)": the id hashes the fingerprint, not the source, so
    two sources' unknown machines would otherwise be one row claimed by both."""
    return with_keys(Hardware(name=name or f"unknown ({source})", kind="external",
                              source=source, **fingerprint))


def write_file_rows(kb, path: Path, rows_by_table: Mapping[str, Iterable], *,
                    main_table: str, on_conflict: str = "keep") -> FileReport:
    """Add the rows read from one file to their tables, all or nothing as far as checking goes:
    every row of every table is validated before the first is written, so a bad row rejects
    the file with its table, row and field named and adds nothing. Tables are written in
    reference order (datasets and hardware before trials). The report counts ``main_table``.
    A table's rows may be an Arrow table (many rows: validated column-wise).
    """
    rows_by_table = {table: rows if isinstance(rows, pa.Table) else list(rows)
                     for table, rows in rows_by_table.items()}
    try:
        for table, rows in rows_by_table.items():
            try:
                (prepare_table if isinstance(rows, pa.Table) else prepare_rows)(rows, table_spec(table))
            except ValidationError as e:
                raise ValidationError(f"{table}: {e.problem}", row=e.row, field=e.field) from None
        results = {table: kb.append(table, rows_by_table[table], on_conflict=on_conflict)
                   for table in sorted(rows_by_table, key=TABLE_ORDER.index) if rows_by_table[table]}
    except ValidationError as e:
        return FileReport(path, main_table, rejected=str(e.located(str(path))))
    except KBError as e:
        message = str(e)
        return FileReport(path, main_table,
                          rejected=message if str(path) in message else f"{path}: {message}")
    main = results.get(main_table)
    return FileReport(path, main_table, added=main.added if main else 0,
                      already_present=main.already_present if main else 0,
                      replaced=main.replaced if main else 0)


def number_column(table: pa.Table, column: str, *, positive: bool = False,
                  minimum: float | None = None, maximum: float | None = None) -> np.ndarray:
    """A text column of a CSV (``read_csv_as_text``) as finite numbers; the first bad cell is
    a ValidationError naming its row (counted from 1) and the column."""
    if column not in table.column_names:
        raise KBError(f"lacks the column {column!r}")
    values = np.empty(table.num_rows)
    for row, text in enumerate(table.column(column).to_pylist(), start=1):
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise ValidationError(f"{text!r} is not a number", row=row, field=column) from None
        problem = ("is not a finite number" if not math.isfinite(value) else
                   "must be above 0" if positive and value <= 0 else
                   f"is below {minimum:g}" if minimum is not None and value < minimum else
                   f"is above {maximum:g}" if maximum is not None and value > maximum else None)
        if problem:
            raise ValidationError(f"{text!r} {problem}", row=row, field=column)
        values[row - 1] = value
    return values
