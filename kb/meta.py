"""The ``meta`` table (schema version and provenance of a KB) and schema migrations.

``meta`` is the one table that is rewritten rather than appended to: it holds a handful of
key/value rows in ``meta/meta.parquet``, replaced atomically when a migration bumps the version.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from kb.errors import KBError, SchemaVersionError
from kb.schema import SCHEMA_VERSION
from kb.shards import write_atomically

META_DIR = "meta"
META_FILE = "meta.parquet"

# from_version -> function that upgrades a KB folder from that version to the next one.
Migration = Callable[[Path], None]
def _trial_ids_name_their_metric(root: Path) -> None:
    """Schema 1 -> 2: a trial's id hashes its metric too, so one configuration scored under
    two metrics (auto-sklearn's scenarios share runs between accuracy and balanced accuracy)
    is two trials. Each trials shard is rewritten with the new ids, then the old one removed;
    a step cut short leaves the old shard, which the next run converts to the same ids."""
    import pyarrow as pa

    from kb.schema import table_spec
    from kb.shards import list_shards, read_verified, write_shard
    from kb.validation import prepare_table

    folder = root / "trials"
    for shard in list_shards(folder):
        table = read_verified(shard.path)
        old = table.column("trial_id")
        table = table.set_column(table.schema.get_field_index("trial_id"), "trial_id",
                                 pa.array([""] * table.num_rows, pa.string()))
        table = prepare_table(table, table_spec("trials")).table
        if table.column("trial_id").equals(old):
            continue
        timestamp = int(shard.path.name.split("-")[1])
        write_shard(folder, table, replacing=shard.replacing, timestamp_ns=timestamp)
        shard.path.unlink()


MIGRATIONS: dict[int, Migration] = {1: _trial_ids_name_their_metric}


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None if it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def code_version() -> str:
    return package_version("metakb") or "unknown"


def meta_path(root: Path) -> Path:
    return root / META_DIR / META_FILE


def read_meta(root: Path) -> dict[str, str]:
    path = meta_path(root)
    try:
        table = pq.ParquetFile(path).read()  # not read_table: that loads pyarrow.dataset and pandas
    except (FileNotFoundError, NotADirectoryError):
        raise KBError(f"no knowledge base at {root}; create one with `kb init --kb {root}`") from None
    except Exception as e:  # a damaged meta file: nothing else can be trusted either
        raise KBError(f"the meta table of {root} ({path}) is unreadable: {e}") from None
    return dict(zip(table.column("key").to_pylist(), table.column("value").to_pylist()))


def write_meta(root: Path, meta: dict[str, str]) -> None:
    table = pa.table({"key": list(meta), "value": [str(v) for v in meta.values()]})
    write_atomically(table, root / META_DIR, META_FILE)


def new_meta() -> dict[str, str]:
    return {
        "schema_version": str(SCHEMA_VERSION),
        "created_at": datetime.now(timezone.utc).isoformat(),
        "created_by": f"metakb {code_version()}",
    }


def schema_version(meta: dict[str, str], root: Path) -> int:
    try:
        return int(meta["schema_version"])
    except (KeyError, ValueError):
        raise KBError(f"the meta table of {root} has no valid schema_version") from None


def check_version(root: Path, migrations: dict[int, Migration] = MIGRATIONS, *,
                  meta: dict[str, str] | None = None) -> int:
    """The KB's schema version if this code can use it; otherwise say what to do."""
    version = schema_version(meta if meta is not None else read_meta(root), root)
    if version == SCHEMA_VERSION:
        return version
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the knowledge base at {root} has schema version {version}, newer than the "
            f"{SCHEMA_VERSION} this metakb ({code_version()}) reads; upgrade metakb")
    if _migration_path(version, migrations) is None:
        raise SchemaVersionError(
            f"the knowledge base at {root} has schema version {version} and cannot be migrated "
            f"to {SCHEMA_VERSION}; export its tables with the metakb that wrote it and ingest "
            f"them into a new KB")
    raise SchemaVersionError(
        f"the knowledge base at {root} has schema version {version}; this metakb needs "
        f"{SCHEMA_VERSION}: run `kb migrate --kb {root}`")


def _migration_path(version: int, migrations: dict[int, Migration]) -> list[Migration] | None:
    steps = []
    while version < SCHEMA_VERSION:
        if version not in migrations:
            return None
        steps.append(migrations[version])
        version += 1
    return steps


def migrate(root: Path, migrations: dict[int, Migration] = MIGRATIONS) -> tuple[int, int]:
    """Upgrade the KB at ``root`` to this code's schema version; returns (from, to)."""
    meta = read_meta(root)
    start = schema_version(meta, root)
    if start > SCHEMA_VERSION:
        check_version(root, migrations)  # raises with the message for a newer KB
    steps = _migration_path(start, migrations)
    if steps is None:
        check_version(root, migrations)  # raises with the message for an unmigratable KB
    version = start
    for step in steps:
        step(root)
        version += 1
        # Record each step as it completes, so an interrupted migration resumes where it was.
        meta = {**meta, "schema_version": str(version),
                "migrated_at": datetime.now(timezone.utc).isoformat(),
                "migrated_by": f"metakb {code_version()}"}
        write_meta(root, meta)
    return start, version
