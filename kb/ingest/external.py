"""What adapters for other tools' results share: the hardware row for results measured
elsewhere, and writing the rows one source file yields, checked whole before any is added."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from kb.errors import KBError, ValidationError
from kb.ingest import FileReport
from kb.schema import TABLE_ORDER, Hardware, table_spec
from kb.validation import prepare_rows, with_keys


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
    """
    rows_by_table = {table: list(rows) for table, rows in rows_by_table.items()}
    try:
        for table, rows in rows_by_table.items():
            try:
                prepare_rows(rows, table_spec(table))
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
