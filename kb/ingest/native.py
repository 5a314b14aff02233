"""The native format: Parquet, CSV or JSONL files whose columns are a table's fields.

The table is named by the caller or by the file name (``trials.csv``, ``trials-2024.parquet``,
``fragment_costs_gpu.jsonl``). A folder is ingested file by file, tables that others refer
to first (datasets and hardware before trials).
"""

from __future__ import annotations

from pathlib import Path

from kb.errors import KBError, ValidationError
from kb.ingest import FileReport
from kb.schema import TABLE_ORDER, table_spec
from kb.tabular_io import TABLE_EXTENSIONS, read_table_file, split_extension, table_format


def table_for_file(path: Path) -> str | None:
    """The table a file's name points at, or None."""
    stem = path.name.split(".")[0]
    for name in sorted(TABLE_ORDER, key=len, reverse=True):
        if stem == name or stem.startswith((name + "-", name + "_")):
            return name
    return None


def ingest_native(kb, path: Path, *, table: str | None = None, on_conflict: str = "error",
                  file_format: str | None = None, progress) -> list[FileReport]:
    if table is not None:
        table_spec(table)  # fail early on an unknown table name
    if path.is_file():
        report = ingest_file(kb, path, table=table, on_conflict=on_conflict, file_format=file_format)
        progress(report)
        return [report]
    planned, reports = [], []
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        extension, _ = split_extension(file)
        name = table or table_for_file(file)
        if extension not in TABLE_EXTENSIONS:
            reports.append(FileReport(file, skipped="not a Parquet, CSV or JSONL file"))
        elif name is None:
            reports.append(FileReport(file, skipped="its name does not start with a table name"))
        else:
            planned.append((TABLE_ORDER.index(name), str(file), file, name))
    for report in reports:
        progress(report)
    for _, _, file, name in sorted(planned):
        report = ingest_file(kb, file, table=name, on_conflict=on_conflict, file_format=file_format)
        progress(report)
        reports.append(report)
    if not planned:
        raise KBError(f"{path}: no Parquet, CSV or JSONL files named after a table "
                      f"({', '.join(TABLE_ORDER)})")
    return reports


def ingest_file(kb, path: Path, *, table: str | None, on_conflict: str = "error",
                file_format: str | None = None) -> FileReport:
    """Ingest one file, all or nothing; a bad file gives a report with ``rejected`` set."""
    name = table or table_for_file(path)
    try:
        if name is None:
            raise KBError(f"{path}: cannot tell the table from the file name; name it with --table "
                          f"(one of {', '.join(TABLE_ORDER)})")
        rows = read_table_file(path, table_format(path, file_format))
        result = kb.append(name, rows, on_conflict=on_conflict)
    except ValidationError as e:
        return FileReport(path, name, rejected=str(e.located(str(path))))
    except KBError as e:
        message = str(e)  # file-level problems already name the file
        return FileReport(path, name, rejected=message if str(path) in message else f"{path}: {message}")
    return FileReport(path, name, added=result.added, already_present=result.already_present,
                      replaced=result.replaced)
