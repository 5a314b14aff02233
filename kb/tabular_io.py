"""Reading and writing table files (Parquet, CSV, JSONL) safely.

Nothing here unpickles or evaluates what it reads. Files are checked against what their
extension claims before they are parsed, so a Parquet file named ``.csv`` is reported as such
rather than read as garbage. CSV columns are read as text and typed later, by the table's
schema (``kb.validation``), so a bad value is reported with its row and field.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from kb.errors import KBError, first_line
from kb.schema import TABLE_FORMATS

TABLE_EXTENSIONS = {
    ".parquet": "parquet", ".pq": "parquet",
    ".csv": "csv", ".tsv": "csv",
    ".jsonl": "jsonl", ".ndjson": "jsonl",
}

_MAGIC = {b"PAR1": "a Parquet file", b"\x1f\x8b": "gzip-compressed", b"PK\x03\x04": "a zip archive"}


def split_extension(path: Path) -> tuple[str, bool]:
    """The file's extension without ``.gz`` (lower case), and whether it is gzip-compressed."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    return (suffixes[-1] if suffixes else ""), gz


def table_format(path: Path, given: str | None = None) -> str:
    """The table file format of ``path``: ``given`` if set, else its extension's."""
    if given:
        if given not in TABLE_FORMATS:
            raise KBError(f"unknown file format {given!r}; expected one of {', '.join(TABLE_FORMATS)}")
        return given
    extension, _ = split_extension(path)
    if extension not in TABLE_EXTENSIONS:
        raise KBError(f"{path}: cannot tell the format from the extension {extension or '(none)'!r}; "
                      f"use .parquet, .csv or .jsonl, or name the format")
    return TABLE_EXTENSIONS[extension]


def sniff(path: Path) -> str:
    """What the file's first bytes say it is: a description, or ``"text"``."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except IsADirectoryError:
        raise KBError(f"{path} is a folder, not a file") from None
    except FileNotFoundError:
        raise KBError(f"{path}: no such file") from None
    except OSError as e:
        raise KBError(f"{path}: cannot read ({e.strerror})") from None
    if not head:
        return "empty"
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return what
    if b"\x00" in head:
        return "binary data"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # a multi-byte character cut at the end of the sample is fine
            return "binary data"
    return "text"


def check_content(path: Path, expected: str, gz: bool = False) -> None:
    """Raise a KBError unless the file's bytes match ``expected`` ("parquet" or "text")."""
    found = sniff(path)
    if found == "empty":
        raise KBError(f"{path} is empty")
    if gz:
        if found != "gzip-compressed":
            raise KBError(f"{path} is named .gz but is {found}")
        with gzip.open(path, "rb") as f:
            try:
                head = f.read(4096)
            except (OSError, EOFError) as e:
                raise KBError(f"{path} is not a valid gzip file ({e})") from None
        if not head:
            raise KBError(f"{path} is empty")
        if b"\x00" in head or head.startswith(b"PAR1"):
            raise KBError(f"{path} does not hold text once decompressed")
        return
    if expected == "parquet" and found != "a Parquet file":
        raise KBError(f"{path} is named as Parquet but is {found}")
    if expected == "text" and found != "text":
        raise KBError(f"{path} is named as a text file but is {found}")


def read_table_file(path: Path, fmt: str) -> pa.Table | list[dict]:
    """Read a table file: an Arrow table (Parquet; CSV with every column as text) or, for
    JSONL, a list of row mappings."""
    _, gz = split_extension(path)
    if fmt == "parquet":
        check_content(path, "parquet")
        try:
            return pq.read_table(path)
        except Exception as e:
            raise KBError(f"{path} is not a readable Parquet file ({first_line(e)})") from None
    check_content(path, "text", gz)
    if fmt == "csv":
        return read_csv_as_text(path)
    if fmt == "jsonl":
        return read_jsonl(path)
    raise KBError(f"unknown file format {fmt!r}")


def read_csv_as_text(path: Path, delimiter: str | None = None) -> pa.Table:
    """A CSV (or TSV) file with every column as text; empty cells are nulls."""
    extension, gz = split_extension(path)
    delimiter = delimiter or ("\t" if extension == ".tsv" else ",")
    try:
        with (gzip.open if gz else open)(path, "rt", encoding="utf-8", newline="") as f:
            header = next(csv.reader(f, delimiter=delimiter), None)
    except UnicodeDecodeError:
        raise KBError(f"{path} is not UTF-8 text") from None
    if not header:
        raise KBError(f"{path} has no header row")
    if len(set(header)) != len(header):
        duplicated = sorted({h for h in header if header.count(h) > 1})
        raise KBError(f"{path}: the header names {', '.join(map(repr, duplicated))} more than once")
    try:
        return pcsv.read_csv(
            path,
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                # Only empty cells are missing: "nan" or "NULL" stay text, so validation can
                # name the row instead of a value quietly disappearing.
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as e:
        raise KBError(f"{path} is not a readable CSV file ({first_line(e)})") from None


def read_jsonl(path: Path) -> list[dict]:
    _, gz = split_extension(path)
    opener = gzip.open if gz else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line, parse_constant=_keep_constant)
        except json.JSONDecodeError as e:
            raise KBError(f"{path}: row {number}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise KBError(f"{path}: row {number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    if not rows:
        raise KBError(f"{path} is empty")
    return rows


def _keep_constant(name: str) -> float:
    # NaN and Infinity are not JSON, but some writers emit them; let validation name the row.
    return float(name.replace("Infinity", "inf"))


def write_table_file(table: pa.Table, path: Path, fmt: str) -> None:
    """Write ``table`` to ``path`` atomically: a failed write leaves no partial file."""
    from kb.shards import atomic_write

    def write(tmp: Path) -> None:
        if fmt == "parquet":
            pq.write_table(table, tmp, compression="zstd")
        elif fmt == "csv":
            pcsv.write_csv(table, tmp)
        elif fmt == "jsonl":
            with open(tmp, "w", encoding="utf-8") as f:
                for row in table.to_pylist():
                    f.write(json.dumps(row, ensure_ascii=False, default=_json_value) + "\n")
        else:
            raise KBError(f"unknown file format {fmt!r}")

    if path.is_dir():
        raise KBError(f"{path} is a folder; give a file name")
    atomic_write(path.parent, path.name, write)


def _json_value(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


