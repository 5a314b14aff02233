"""Canonical JSON and the content hashes that make row keys stable.

A derived key is the first 16 hex digits of the MD5 of the key's source columns, each
rendered as text and joined by the unit separator. MD5 is used for speed and spread, not for
security. Every derived key (trial, config, hardware, fragment, architecture ids) is computed
here (``derive_key``), over whole Arrow columns, so a record built in Python and the same row
ingested from a file get the same key. A dataset's id is not derived from its row but from
its data (``kb.datasets.fingerprint``), with the same length.
"""

from __future__ import annotations

import json
import math
from typing import Any

import duckdb
import pyarrow as pa

KEY_LENGTH = 16


def canonical_json(value: Any) -> str:
    """``value`` (JSON text or a JSON-able object) as canonical JSON: sorted keys, no spaces.

    Raises ``ValueError`` for text that is not JSON and for NaN or infinite numbers, which
    JSON cannot carry.
    """
    if isinstance(value, (str, bytes)):
        value = json.loads(value, parse_constant=_reject_constant)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
        default=_json_default,
    )


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


def _json_default(value: Any):
    # numpy scalars and arrays reach here from configurations built with numpy.
    if hasattr(value, "tolist"):
        out = value.tolist()
        if isinstance(out, float) and not math.isfinite(out):
            raise ValueError(f"{out} is not a valid JSON number")
        return out
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _render(name: str, arrow_type: pa.DataType) -> str:
    quoted = f'"{name}"'
    if pa.types.is_floating(arrow_type):
        # 17 significant digits identify every double exactly, whatever the library.
        text = f"printf('%.17g', {quoted})"
    elif pa.types.is_timestamp(arrow_type):
        text = f"CAST(epoch_us({quoted}) AS VARCHAR)"
    else:
        text = f"CAST({quoted} AS VARCHAR)"
    return f"coalesce({text}, chr(0))"


def derive_key(table: pa.Table, sources: tuple[str, ...]) -> pa.Array:
    """The key of every row of ``table``, hashed from its ``sources`` columns."""
    if table.num_rows == 0:
        return pa.array([], pa.string())
    if len(sources) == 1:
        # One source column (a config, a graph) repeats a lot: hash each distinct value once.
        import pyarrow.compute as pc

        column = table.column(sources[0])
        distinct = pc.unique(column)
        hashed = _hash_rows(pa.table({sources[0]: distinct}), sources)
        return pc.take(hashed, pc.index_in(column, value_set=distinct)).combine_chunks()
    return _hash_rows(table, sources)


def _hash_rows(table: pa.Table, sources: tuple[str, ...]) -> pa.Array:
    parts = ", ".join(_render(name, table.schema.field(name).type) for name in sources)
    sql = f"SELECT left(md5(concat_ws(chr(31), {parts})), {KEY_LENGTH}) AS key FROM source"
    with duckdb.connect() as con:
        con.register("source", table.select(list(sources)))
        return con.sql(sql).to_arrow_table().column("key").combine_chunks()
