"""Turn untrusted rows into a table's typed, canonical rows, or say exactly what is wrong.

Two entry points, both pure:

- ``prepare_table(raw, spec)`` for Arrow tables read from Parquet or CSV (CSV columns arrive
  as text and are parsed here);
- ``prepare_rows(rows, spec)`` for Python mappings: JSONL lines and typed records.

Both return a ``Prepared`` table that has the table's exact Arrow schema, canonical JSON,
derived keys filled in and rows repeated within the input removed; or raise a
``ValidationError`` naming the row (counted from 1, header excluded) and the field. Checks
run over whole columns; values are looked at one by one only to locate an error.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kb.errors import ValidationError
from kb.keys import canonical_json, derive_key
from kb.schema import RECORD_TABLES, TABLES, Column, TableSpec

_UTC = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Prepared:
    table: pa.Table
    repeated_in_input: int  # rows dropped because an earlier row of the input was identical


def prepare_rows(rows: Iterable[Mapping | object], spec: TableSpec) -> Prepared:
    """Validate Python rows: mappings (a parsed JSONL line) or the table's dataclass records."""
    rows = [_as_mapping(r, spec) for r in rows]
    _reject_unknown_fields({name for r in rows for name in r}, spec)
    columns = {}
    for col in spec.columns:
        if not any(col.name in r for r in rows):
            continue
        values = []
        for i, r in enumerate(rows, start=1):
            try:
                values.append(_python_value(r.get(col.name), col))
            except ValueError as e:
                raise ValidationError(str(e), row=i, field=col.name) from None
        columns[col.name] = pa.array(values, col.arrow_type)
    return _finish(columns, len(rows), spec)


def prepare_table(raw: pa.Table, spec: TableSpec) -> Prepared:
    """Validate an Arrow table whose columns may have other types than the table's."""
    _reject_unknown_fields(set(raw.column_names), spec)
    columns = {
        col.name: _coerce_column(raw.column(col.name), col)
        for col in spec.columns
        if col.name in raw.column_names
    }
    return _finish(columns, raw.num_rows, spec)


def _as_mapping(row, spec: TableSpec) -> Mapping:
    if isinstance(row, Mapping):
        return row
    if dataclasses.is_dataclass(row) and isinstance(row, spec.record):
        return {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}
    raise TypeError(f"a {spec.name} row must be a mapping or a {spec.record.__name__}, "
                    f"not {type(row).__name__}")


def _reject_unknown_fields(names: set[str], spec: TableSpec) -> None:
    unknown = sorted(names - set(spec.column_names))
    if unknown:
        raise ValidationError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"table {spec.name} has: {', '.join(spec.column_names)}"
        )


# -- one value at a time: JSONL and records, and locating a bad value in a column --------------


def _python_value(value, col: Column):
    """``value`` converted to the column's Python type; ``ValueError`` says why it can't be."""
    if value is None or (isinstance(value, str) and value == "" and col.python_type is not str):
        return None
    kind = col.python_type
    if col.is_json:
        if isinstance(value, (dict, list)):
            return canonical_json(value)
        if not isinstance(value, str):
            raise ValueError(f"expected JSON text, got {_describe(value)}")
        return value  # parsed and canonicalized column-wise in _canonicalize_json
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {_describe(value)}")
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        raise ValueError(f"expected true or false, got {_describe(value)}")
    if kind is int:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {_describe(value)}")
        if isinstance(value, int):
            return value
        number = _parse_number(value, "an integer")
        if not math.isfinite(number) or number != int(number):
            raise ValueError(f"expected an integer, got {_describe(value)}")
        return int(number)
    if kind is float:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {_describe(value)}")
        return _parse_number(value, "a number")
    if kind is datetime:
        return _parse_datetime(value)
    raise AssertionError(f"no conversion for {kind}")


def _parse_number(value, expected: str) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"expected {expected}, got {_describe(value)}")


def _parse_datetime(value) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"expected an ISO 8601 time, got {_describe(value)}") from None
    else:
        raise ValueError(f"expected an ISO 8601 time, got {_describe(value)}")
    # A time without a zone is taken to be UTC, as everything in the KB is.
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def _describe(value) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}" if not isinstance(value, str) else text


# -- whole columns: Parquet and CSV ------------------------------------------------------------


def _coerce_column(column: pa.ChunkedArray, col: Column) -> pa.ChunkedArray | pa.Array:
    if column.type == col.arrow_type:
        return column  # the common case for Parquet: keep its chunks, copy nothing
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if array.type == col.arrow_type:
        return array
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), col.arrow_type)
    source = array.type
    textual = pa.types.is_string(source) or pa.types.is_large_string(source)
    try:
        if col.python_type is str:
            if not textual:
                raise _TypeMismatch
            return array.cast(pa.string())
        if textual:
            return _parse_text_column(array, col)
        if col.python_type is datetime and pa.types.is_timestamp(source):
            return array.cast(col.arrow_type)  # a time without a zone is taken as UTC
        if col.python_type in (int, float) and (
            pa.types.is_integer(source) or pa.types.is_floating(source)
        ):
            return array.cast(col.arrow_type)  # safe: a fractional value fails an int cast
        if col.python_type is bool and pa.types.is_boolean(source):
            return array
        raise _TypeMismatch
    except _TypeMismatch:
        raise ValidationError(
            f"expected {_expected(col)}, found a column of {source}", field=col.name
        ) from None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        raise _locate_bad_value(array, col) from None


class _TypeMismatch(Exception):
    pass


def _expected(col: Column) -> str:
    return {str: "text", int: "integers", float: "numbers", bool: "true/false",
            datetime: "times"}[col.python_type]


def _parse_text_column(array: pa.Array, col: Column) -> pa.Array:
    array = array.cast(pa.string())
    # CSV leaves empty cells as empty text; they are missing values.
    array = pc.if_else(pc.equal(pc.utf8_trim_whitespace(array), ""), None, array)
    if col.python_type is datetime:
        try:
            return array.cast(col.arrow_type)
        except pa.ArrowInvalid:
            # Times without a zone are UTC; values with mixed forms go one by one.
            try:
                return array.cast(pa.timestamp("us")).cast(col.arrow_type)
            except pa.ArrowInvalid:
                return pa.array([_python_value(v, col) for v in array.to_pylist()], col.arrow_type)
    if col.python_type is int:
        try:
            return array.cast(pa.int64())
        except pa.ArrowInvalid:
            return array.cast(pa.float64()).cast(pa.int64())  # "3.0" is 3; "3.5" fails here
    if col.python_type is bool:
        return pc.utf8_lower(pc.utf8_trim_whitespace(array)).cast(pa.bool_())
    return array.cast(col.arrow_type)


def _locate_bad_value(array: pa.Array, col: Column) -> ValidationError:
    for i, value in enumerate(array.to_pylist(), start=1):
        try:
            _python_value(value, col)
        except ValueError as e:
            return ValidationError(str(e), row=i, field=col.name)
    return ValidationError(f"cannot be read as {_expected(col)}", field=col.name)


# -- the rules every table's rows obey ---------------------------------------------------------


def _finish(columns: dict[str, pa.Array | pa.ChunkedArray], n_rows: int, spec: TableSpec) -> Prepared:
    for col in spec.columns:
        array = columns.get(col.name)
        if array is None:
            if not col.nullable and col.name not in spec.defaults and col.name not in spec.derived:
                raise ValidationError("missing required column", field=col.name)
            array = pa.nulls(n_rows, col.arrow_type)
        if col.name in spec.defaults and array.null_count:
            array = pc.fill_null(array, pa.scalar(spec.defaults[col.name], col.arrow_type))
        if col.is_json:
            array = _canonicalize_json(array, col)
        columns[col.name] = array
    table = pa.Table.from_arrays([_chunked(columns[c]) for c in spec.column_names],
                                 schema=spec.arrow_schema)
    for col in spec.columns:
        _check_values(table.column(col.name), col, spec)
    _check_required_when(table, spec)
    table = _fill_derived(table, spec)
    return _drop_repeats(table, spec)


def _chunked(array: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def _first(mask: pa.ChunkedArray | pa.Array) -> int | None:
    """1-based row of the first true value of ``mask``, or None."""
    position = pc.index(pc.fill_null(mask, False), True).as_py()
    return None if position < 0 else position + 1


def _check_values(array, col: Column, spec: TableSpec) -> None:
    if not col.nullable and col.name not in spec.derived:
        row = _first(pc.is_null(array))
        if row is not None:
            raise ValidationError("missing required field", row=row, field=col.name)
    if col.choices is not None:
        outside = pc.invert(pc.is_in(array, value_set=pa.array(col.choices)))
        row = _first(pc.and_(pc.is_valid(array), outside))
        if row is not None:
            raise ValidationError(
                f"unknown value {array[row - 1].as_py()!r}; expected one of "
                f"{', '.join(col.choices)}", row=row, field=col.name)
    if col.python_type is float:
        row = _first(pc.invert(pc.is_finite(array)))
        if row is not None:
            raise ValidationError(
                f"{array[row - 1].as_py()} is not a finite number", row=row, field=col.name)


def _check_required_when(table: pa.Table, spec: TableSpec) -> None:
    for name, (other, values) in spec.required_when.items():
        applies = pc.is_in(table.column(other), value_set=pa.array(values))
        row = _first(pc.and_(applies, pc.is_null(table.column(name))))
        if row is not None:
            raise ValidationError(
                f"missing, but required when {other} is {table.column(other)[row - 1].as_py()}",
                row=row, field=name)


def _canonicalize_json(array: pa.Array, col: Column) -> pa.Array:
    distinct = pc.unique(array)
    canonical = []
    for text in distinct.to_pylist():
        if text is None:
            canonical.append(None)
            continue
        try:
            value = canonical_json(text)
            if col.json_object and not value.startswith("{"):
                raise ValueError("expected a JSON object ({...})")
        except ValueError as e:
            row = _first(pc.equal(array, text))
            raise ValidationError(f"malformed JSON: {e}", row=row, field=col.name) from None
        canonical.append(value)
    if canonical == distinct.to_pylist():
        return array
    return pc.take(pa.array(canonical, pa.string()), pc.index_in(array, value_set=distinct))


def _fill_derived(table: pa.Table, spec: TableSpec) -> pa.Table:
    for name, sources in spec.derived.items():
        computed = derive_key(table, sources)
        given = table.column(name)
        given_set = pc.and_(pc.is_valid(given), pc.not_equal(given, ""))
        row = _first(pc.and_(given_set, pc.not_equal(given, computed)))
        if row is not None:
            raise ValidationError(
                f"{given[row - 1].as_py()!r} does not match the hash of "
                f"({', '.join(sources)}), {computed[row - 1].as_py()!r}; leave it empty to have "
                f"it computed", row=row, field=name)
        table = table.set_column(table.schema.get_field_index(name), name, computed)
    return table


def _drop_repeats(table: pa.Table, spec: TableSpec) -> Prepared:
    key = _key_text(table, spec)
    counts = pc.value_counts(key)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    if len(repeated) == 0:
        return Prepared(table, 0)
    # Only rows whose key repeats are looked at one by one.
    candidates = pc.indices_nonzero(pc.is_in(key, value_set=repeated)).to_pylist()
    rows = table.take(candidates).to_pylist()
    first: dict[str, int] = {}
    drop = []
    for position, (row_index, row, row_key) in enumerate(
            zip(candidates, rows, key.take(candidates).to_pylist())):
        earlier = first.setdefault(row_key, position)
        if earlier == position:
            continue
        if rows[earlier] != row:
            differing = next(k for k in row if row[k] != rows[earlier][k])
            raise ValidationError(
                f"same key as row {candidates[earlier] + 1} ({', '.join(spec.key)}) but a "
                f"different {differing!r}", row=row_index + 1, field=differing)
        drop.append(row_index)
    keep = np.ones(table.num_rows, dtype=bool)
    keep[drop] = False
    return Prepared(table.filter(keep), len(drop))


def _key_text(table: pa.Table, spec: TableSpec) -> pa.Array:
    """Each row's key as one text value (composite keys joined by the unit separator)."""
    if len(spec.key) == 1:
        return table.column(spec.key[0]).combine_chunks().cast(pa.string())
    parts = [table.column(k).combine_chunks().cast(pa.string()) for k in spec.key]
    return pc.binary_join_element_wise(*parts, "\x1f")


def with_keys(record):
    """``record`` with its derived ids filled in and its values in canonical form.

    A record built far from the KB (a trial in a subprocess or on a Dask worker, a row an
    adapter reads) then carries the ids the store will give it. Raises ``ValidationError``
    for a value the store would refuse (a NaN score, an unknown status), so such a record
    never leaves the code that made it.
    """
    spec = TABLES[RECORD_TABLES[type(record)]]
    row = prepare_rows([record], spec).table.to_pylist()[0]
    return type(record)(**row)


def derived_id(table: str, name: str, **values) -> str:
    """The id the store derives for ``name`` (``trial_id``, ``config_id``, ...) from the given
    source values, without building a whole row: to ask the KB whether a row exists before
    the work that makes it (a trial) is done. JSON sources are given as canonical JSON."""
    spec = TABLES[table]
    sources = spec.derived[name]
    row = pa.table({s: pa.array([values[s]], spec.column(s).arrow_type) for s in sources})
    return derive_key(row, sources)[0].as_py()
