"""``KnowledgeBase``: the one interface through which every part of metakb reads and writes.

A knowledge base is a folder holding ``meta/`` and one sub-folder of immutable Parquet shards
per table (see ``kb.shards``). Queries run in an in-memory DuckDB connection over views of the
shards; the views are rebuilt only when a table's set of shards changes. Rows are identified
by their key (``kb.schema``): appending a row whose key is present with the same content adds
nothing, and readers that meet two versions of a key keep the newer one.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa

from kb import meta as kb_meta
from kb.errors import CorruptShardError, KBError, ValidationError, first_line
from kb.schema import ON_CONFLICT, RECORD_TABLES, TABLES, TableSpec, table_spec
from kb.shards import (
    Shard, leftover_temporaries, list_shards, quarantine, read_footer, read_verified, write_shard,
)
from kb.validation import Prepared, prepare_rows, prepare_table

OnConflict = Literal["error", "keep", "replace"]
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


@dataclass(frozen=True)
class AppendResult:
    table: str
    added: int = 0
    already_present: int = 0
    replaced: int = 0
    shard: Path | None = None


@dataclass(frozen=True)
class Problem:
    """One finding of ``KnowledgeBase.validate``."""

    check: str  # unreadable_shard, leftover_temporary, conflicting_keys, superseded_rows, ...
    table: str
    detail: str
    path: Path | None = None
    serious: bool = True  # False for findings that need no action to keep the KB sound
    repaired: bool = False


@dataclass
class _View:
    shards: tuple[Shard, ...] = ()
    duplicates: bool = False
    schemas: dict[Path, pa.Schema] = field(default_factory=dict)


class KnowledgeBase:
    """A knowledge base folder.

    >>> kb = KnowledgeBase.create(".kb")                           # doctest: +SKIP
    >>> kb.append("trials", [Trial(...)])                          # doctest: +SKIP
    >>> kb.query("SELECT count(*) FROM trials WHERE status = ?", ["ok"])  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, *, migrations=kb_meta.MIGRATIONS):
        self.root = Path(path)
        self._meta = kb_meta.read_meta(self.root)
        self.schema_version = kb_meta.check_version(self.root, migrations, meta=self._meta)
        self._con = duckdb.connect()
        self._con.execute("SET TimeZone = 'UTC'")
        # One DuckDB connection serves every call; the lock lets threads share a KnowledgeBase.
        self._lock = threading.RLock()
        self._views: dict[str, _View] = {}
        for name, spec in TABLES.items():
            self._con.execute(f'CREATE VIEW "{name}" AS {_empty_select(spec)}')
            self._views[name] = _View()
        meta_file = _sql_list([str(kb_meta.meta_path(self.root))])
        self._con.execute(f"CREATE VIEW meta AS SELECT * FROM read_parquet({meta_file})")

    @classmethod
    def create(cls, path: str | os.PathLike) -> "KnowledgeBase":
        """Create the KB at ``path``, or open it if it is already there."""
        root = Path(path)
        if not kb_meta.meta_path(root).exists():
            if root.exists() and not root.is_dir():
                raise KBError(f"{root} exists and is not a folder")
            if root.exists() and any(root.iterdir()):
                raise KBError(f"{root} exists, is not empty and is not a knowledge base; "
                              f"choose another path")
            for name in TABLES:
                (root / name).mkdir(parents=True, exist_ok=True)
            kb_meta.write_meta(root, kb_meta.new_meta())
        return cls(root)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KnowledgeBase({str(self.root)!r})"

    @property
    def meta(self) -> dict[str, str]:
        return dict(self._meta)

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        table: str,
        rows: pa.Table | Iterable[Mapping[str, Any] | object],
        *,
        on_conflict: OnConflict = "error",
    ) -> AppendResult:
        """Validate ``rows`` and add those the table does not hold yet, as one new shard.

        ``rows`` is an Arrow table or an iterable of mappings or the table's records. A row
        whose key is present with the same content counts as already present. One whose key
        is present with other content is an error (``on_conflict="error"``, nothing is
        written), is left out (``"keep"``) or supersedes the stored row (``"replace"``).
        """
        spec = table_spec(table)
        prepared = prepare_table(rows, spec) if isinstance(rows, pa.Table) else prepare_rows(rows, spec)
        return self._append_prepared(spec, prepared, on_conflict)

    def add(self, *records: object, on_conflict: OnConflict = "error") -> AppendResult:
        """Append records of one table (``Trial``, ``Dataset``, ...)."""
        if not records:
            raise ValueError("add() needs at least one record")
        tables = {RECORD_TABLES.get(type(r)) for r in records}
        if None in tables or len(tables) != 1:
            raise TypeError("add() takes records of one table: "
                            + ", ".join(sorted(c.__name__ for c in RECORD_TABLES)))
        return self.append(tables.pop(), records, on_conflict=on_conflict)

    def _append_prepared(self, spec: TableSpec, prepared: Prepared,
                         on_conflict: OnConflict) -> AppendResult:
        if on_conflict not in ON_CONFLICT:
            raise ValueError(f"on_conflict must be error, keep or replace, not {on_conflict!r}")
        new = prepared.table
        present, differing = self._match_existing(spec, new)
        if differing and on_conflict == "error":
            row = differing[0]
            fields = self._differing_fields(spec, new, row)
            raise ValidationError(
                f"key ({', '.join(f'{k}={new.column(k)[row].as_py()}' for k in spec.key)}) "
                f"is already in the KB with a different {', '.join(fields)}",
                row=row + 1, field=fields[0])
        skip = set(present) | (set(differing) if on_conflict == "keep" else set())
        replaced = len(differing) if on_conflict == "replace" else 0
        if skip:
            keep = np.ones(new.num_rows, dtype=bool)
            keep[list(skip)] = False
            new = new.filter(keep)
        shard = write_shard(self.root / spec.name, new, replacing=replaced > 0) if new.num_rows else None
        return AppendResult(
            table=spec.name,
            added=new.num_rows - replaced,
            already_present=prepared.repeated_in_input + len(present)
            + (len(differing) if on_conflict == "keep" else 0),
            replaced=replaced,
            shard=shard,
        )

    def _match_existing(self, spec: TableSpec, new: pa.Table) -> tuple[list[int], list[int]]:
        """Rows of ``new`` whose key is stored: (those with the same content, those with other)."""
        if new.num_rows == 0 or not self._refresh(spec.name).shards:
            return [], []
        keys = ", ".join(f'"{k}"' for k in spec.key)
        same = " AND ".join(f'n."{c}" IS NOT DISTINCT FROM e."{c}"'
                            for c in spec.column_names if c not in spec.key)
        with self._lock:  # "_new_rows" is a name on the shared connection
            self._con.register("_new_rows", new.append_column("_row", pa.array(range(new.num_rows), pa.int64())))
            try:
                matches = self._run(
                    f"""SELECT n._row AS row, {same} AS same
                        FROM _new_rows n JOIN "{spec.name}" e USING ({keys}) ORDER BY n._row""",
                    fetch="arrow")
            finally:
                self._con.unregister("_new_rows")
        rows = matches.column("row").to_numpy()
        identical = matches.column("same").to_numpy(zero_copy_only=False)
        return rows[identical].tolist(), rows[~identical].tolist()

    def _differing_fields(self, spec: TableSpec, new: pa.Table, row: int) -> list[str]:
        incoming = new.slice(row, 1).to_pylist()[0]
        where = " AND ".join(f'"{k}" = ?' for k in spec.key)
        stored = self._run(f'SELECT * FROM "{spec.name}" WHERE {where}',
                           [incoming[k] for k in spec.key], fetch="arrow").to_pylist()[0]
        return [c for c in spec.column_names if stored[c] != incoming[c]]

    # -- reading ---------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None, *,
              output: Literal["arrow", "pandas"] = "arrow"):
        """Run ``sql`` over the tables (as views of the same names); values go in ``params``."""
        # Only the tables the SQL names are brought up to date: noticing a new shard of a big
        # table costs a scan, which a query of another table should not pay. A name that only
        # appears in a string or comment refreshes a table needlessly, which is harmless.
        for name in TABLES.keys() & {word.lower() for word in _WORD.findall(sql)}:
            self._refresh(name)
        if output not in ("arrow", "pandas"):
            raise ValueError(f"output must be 'arrow' or 'pandas', not {output!r}")
        result = self._run(sql, params, fetch=output)
        return pa.table({}) if result is None else result

    def read(self, table: str) -> pa.Table:
        """Every row of ``table`` (one version per key), with the table's Arrow schema."""
        spec = table_spec(table)
        self._refresh(table)
        return self._run(f'SELECT * FROM "{table}"', fetch="arrow").cast(spec.arrow_schema)

    def storage(self) -> dict[str, dict[str, int]]:
        """Per table: its shards and their bytes on disk (many shards: time to compact)."""
        out = {}
        for name in TABLES:
            shards = list_shards(self.root / name)
            out[name] = {"shards": len(shards), "bytes": sum(s.path.stat().st_size for s in shards)}
        return out

    def counts(self) -> dict[str, int]:
        for name in TABLES:
            self._refresh(name)
        return {name: self._run(f'SELECT count(*) FROM "{name}"', fetch="one")[0] for name in TABLES}

    def _run(self, sql: str, params=None, *, fetch: str = "all"):
        """Run ``sql`` and fetch its result: ``all`` rows, ``one`` row, ``arrow`` or ``pandas``.

        An error that names one of the KB's shards becomes a ``CorruptShardError``.
        """
        with self._lock:
            return self._run_locked(sql, params, fetch)

    def _run_locked(self, sql: str, params, fetch: str):
        try:
            relation = self._con.sql(sql, params=params)
            if relation is None:
                return None
            if fetch == "arrow":
                return relation.to_arrow_table()
            if fetch == "pandas":
                return relation.df()
            rows = relation.fetchall()
            return (rows[0] if rows else None) if fetch == "one" else rows
        except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException):
            raise  # a mistake in the SQL, not in the data
        except duckdb.Error as e:
            shard = self._shard_named_in(str(e)) or self._find_unreadable_shard()
            if shard is not None:
                raise CorruptShardError(str(shard), first_line(e)) from None
            raise

    def _shard_named_in(self, message: str) -> Path | None:
        for view in self._views.values():
            for shard in view.shards:
                if str(shard.path) in message:
                    return shard.path
        return None

    def _find_unreadable_shard(self) -> Path | None:
        """The first shard that does not read whole: DuckDB's errors for damaged pages
        ("Out of buffer", a bad zstd frame) do not always say which file they came from."""
        for name, view in self._views.items():
            for shard in view.shards:
                if _unreadable(shard.path, TABLES[name]):
                    return shard.path
        return None

    def _refresh(self, table: str) -> _View:
        """Point the table's view at its current shards, if they changed since last time."""
        with self._lock:
            return self._refresh_locked(table)

    def _refresh_locked(self, table: str) -> _View:
        view = self._views[table]
        shards = tuple(list_shards(self.root / table))
        if shards == view.shards:
            return view
        spec = TABLES[table]
        schemas = {}
        for shard in shards:
            schemas[shard.path] = view.schemas.get(shard.path) or self._footer(shard.path)
        files = [str(s.path) for s in shards]
        new_view = _View(shards=shards, schemas=schemas)
        if shards:
            present = {name for s in schemas.values() for name in s.names}
            select = ", ".join(
                f'"{c.name}"' if c.name in present else f'NULL::{_DUCKDB_TYPES[c.arrow_type]} AS "{c.name}"'
                for c in spec.columns
            )
            source = f"read_parquet({_sql_list(files)}, union_by_name = true, filename = true)"
            keys = ", ".join(f'"{k}"' for k in spec.key)
            n_rows, n_keys = self._run(
                f"SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT {keys} FROM {source})) "
                f"FROM {source}", fetch="one")
            new_view.duplicates = n_rows != n_keys
            if new_view.duplicates:
                body = (f"SELECT {select} FROM {source} QUALIFY row_number() OVER "
                        f"(PARTITION BY {keys} ORDER BY filename DESC) = 1")
            else:
                body = f"SELECT {select} FROM {source}"
        else:
            body = _empty_select(spec)
        self._run(f'CREATE OR REPLACE VIEW "{table}" AS {body}')
        self._views[table] = new_view
        return new_view

    @staticmethod
    def _footer(path: Path) -> pa.Schema:
        try:
            return read_footer(path)
        except FileNotFoundError:
            raise
        except Exception as e:
            raise CorruptShardError(str(path), first_line(e)) from None

    # -- maintenance -----------------------------------------------------------------------

    def compact(self, tables: Iterable[str] | None = None) -> dict[str, tuple[int, int]]:
        """Merge each table's shards into one, keeping one version of each key.

        Returns ``{table: (shards before, shards after)}`` for the tables that changed. Shards
        written while this runs are left as they are, so no concurrent append is lost.
        """
        out = {}
        for name in tables or TABLES:
            spec = table_spec(name)
            view = self._refresh(name)
            if len(view.shards) <= 1 and not view.duplicates:
                continue
            merged = self._run(f'SELECT * FROM "{name}"', fetch="arrow").cast(spec.arrow_schema)
            newest = int(view.shards[-1].name.split("-")[1])
            # The merged shard sorts with the newest shard it replaces, so shards appended while
            # this ran stay newer than it.
            write_shard(self.root / name, merged, timestamp_ns=newest)
            for shard in view.shards:
                shard.path.unlink(missing_ok=True)
            out[name] = (len(view.shards), 1)
        return out

    def validate(self, *, repair: bool = False) -> list[Problem]:
        """Integrity findings; with ``repair``, unreadable shards and leftover temporary files
        are moved to ``_quarantine/`` (never deleted) so the rest stays usable."""
        problems: list[Problem] = []
        for name in TABLES:
            folder = self.root / name
            for tmp in leftover_temporaries(folder):
                moved = quarantine(self.root, tmp) if repair else None
                problems.append(Problem(
                    "leftover_temporary", name,
                    f"{tmp} was left by an interrupted write"
                    + (f"; moved to {moved}" if moved else ""), tmp, repaired=bool(moved)))
            for shard in list_shards(folder):
                reason = _unreadable(shard.path, TABLES[name])
                if reason:
                    moved = quarantine(self.root, shard.path) if repair else None
                    problems.append(Problem(
                        "unreadable_shard", name,
                        f"{shard.path}: {reason}" + (f"; moved to {moved}" if moved else ""),
                        shard.path, repaired=bool(moved)))
        if any(p.check == "unreadable_shard" and not p.repaired for p in problems):
            return problems  # the checks below read every table and would stop at the bad shard
        problems += self._key_problems()
        problems += self._reference_problems()
        problems += self._data_file_problems()
        return problems

    def _key_problems(self) -> list[Problem]:
        out = []
        for name, spec in TABLES.items():
            view = self._refresh(name)
            if not view.duplicates:
                continue
            keys = ", ".join(f'"{k}"' for k in spec.key)
            cols = ", ".join(f'"{c}"' for c in spec.column_names)
            files = _sql_list([str(s.path) for s in view.shards])
            versions = self._run(
                f"""SELECT {keys}, count(*) AS n, bool_or(filename LIKE '%-replacing.parquet') AS replaced
                    FROM (SELECT DISTINCT ON ({cols}) {cols}, filename
                          FROM read_parquet({files}, union_by_name = true, filename = true)
                          ORDER BY filename DESC)
                    GROUP BY {keys} HAVING count(*) > 1"""
            )
            conflicting = [v for v in versions if not v[-1]]
            superseded = [v for v in versions if v[-1]]
            if conflicting:
                example = ", ".join(map(str, conflicting[0][:len(spec.key)]))
                out.append(Problem(
                    "conflicting_keys", name,
                    f"{len(conflicting)} key(s) stored with different contents (e.g. {example}); "
                    f"readers use the newest"))
            if superseded:
                out.append(Problem(
                    "superseded_rows", name,
                    f"{len(superseded)} key(s) have older versions replaced on purpose; "
                    f"`kb compact` drops them", serious=False))
        return out

    def _reference_problems(self) -> list[Problem]:
        checks = [
            ("trials", "dataset_id", "datasets", "dataset_id"),
            ("trials", "hardware_id", "hardware", "hardware_id"),
            ("metafeatures", "dataset_id", "datasets", "dataset_id"),
            ("fragment_costs", "fragment_id", "fragments", "fragment_id"),
            ("fragment_costs", "hardware_id", "hardware", "hardware_id"),
        ]
        out = []
        for table, column, target, target_column in checks:
            self._refresh(table), self._refresh(target)
            n, example = self._run(
                f"""SELECT count(*), min(t."{column}") FROM "{table}" t
                    WHERE NOT EXISTS (SELECT 1 FROM "{target}" x WHERE x."{target_column}" = t."{column}")""",
                fetch="one")
            if n:
                out.append(Problem(
                    "unknown_reference", table,
                    f"{n} row(s) refer to a {column} not in {target} (e.g. {example})"))
        return out

    def _data_file_problems(self) -> list[Problem]:
        from kb.datasets import read_data_file

        self._refresh("datasets")
        rows = self._run(
            "SELECT dataset_id, data_file FROM datasets WHERE data_file IS NOT NULL")
        out = []
        missing = [(d, f) for d, f in rows if not (self.root / f).is_file()]
        if missing:
            out.append(Problem("missing_data_file", "datasets",
                               f"{len(missing)} dataset(s) lack their data file (e.g. "
                               f"{missing[0][1]} for {missing[0][0]})"))
        for dataset_id, data_file in rows:
            path = self.root / data_file
            if not path.is_file():
                continue
            try:
                read_data_file(path)
            except Exception as e:
                out.append(Problem("unreadable_data_file", "datasets",
                                   f"{path} (dataset {dataset_id}): {first_line(e)}", path))
        return out


def _unreadable(path: Path, spec: TableSpec) -> str | None:
    """Why the shard at ``path`` cannot be used, or None if it reads and fits the table."""
    try:
        table = read_verified(path)
    except Exception as e:
        return first_line(e)
    for f in table.schema:
        if f.name not in spec.column_names:
            return f"unknown column {f.name!r}"
        expected = spec.column(f.name).arrow_type
        if f.type != expected:
            return f"column {f.name!r} is {f.type}, the table needs {expected}"
    return None


def _empty_select(spec: TableSpec) -> str:
    """A query with the table's columns and types and no rows (the view of an empty table)."""
    columns = ", ".join(f'NULL::{_DUCKDB_TYPES[c.arrow_type]} AS "{c.name}"' for c in spec.columns)
    return f"SELECT {columns} WHERE false"


def _sql_list(values: list[str]) -> str:
    # Shard paths are the KB's own file names, not user values; quoting guards odd folders.
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"
