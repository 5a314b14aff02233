"""The store: shards, keys, conflicts, queries, compaction, schema versions."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import trial_row, trial_table

from kb import Dataset, KnowledgeBase, Trial
from kb.errors import KBError, SchemaVersionError, ValidationError
from kb.meta import read_meta, write_meta
from kb.schema import SCHEMA_VERSION, TABLES
from kb.shards import list_shards


def shards(kb, table="trials"):
    return list_shards(kb.root / table)


def test_create_makes_a_folder_per_table_and_meta(tmp_path):
    kb = KnowledgeBase.create(tmp_path / "new")
    assert all((kb.root / t).is_dir() for t in TABLES)
    assert read_meta(kb.root)["schema_version"] == str(SCHEMA_VERSION)
    assert kb.query("SELECT value FROM meta WHERE key = 'schema_version'").column(0)[0].as_py() == str(SCHEMA_VERSION)


def test_create_is_idempotent_and_refuses_a_foreign_folder(tmp_path):
    KnowledgeBase.create(tmp_path / "k").add(Trial(**trial_row(0)))
    again = KnowledgeBase.create(tmp_path / "k")
    assert again.counts()["trials"] == 1
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(KBError, match="not empty and is not a knowledge base"):
        KnowledgeBase.create(tmp_path / "other")


def test_opening_a_missing_kb_says_how_to_create_one(tmp_path):
    with pytest.raises(KBError, match="kb init"):
        KnowledgeBase(tmp_path / "nothing")


def test_append_writes_one_shard_and_the_same_rows_again_add_nothing(kb):
    first = kb.append("trials", trial_table(100))
    assert (first.added, first.already_present) == (100, 0)
    again = kb.append("trials", trial_table(100))
    assert (again.added, again.already_present, again.shard) == (0, 100, None)
    overlapping = kb.append("trials", trial_table(100, start=50))
    assert (overlapping.added, overlapping.already_present) == (50, 50)
    assert kb.counts()["trials"] == 150
    assert len(shards(kb)) == 2


def test_a_row_whose_key_is_stored_with_other_content_is_a_conflict(kb):
    kb.append("trials", [trial_row(0), trial_row(1)])
    changed = [trial_row(2), trial_row(1, score=0.01)]
    with pytest.raises(ValidationError, match="already in the KB with a different score") as e:
        kb.append("trials", changed)
    assert e.value.row == 2
    assert kb.counts()["trials"] == 2  # nothing of the rejected batch was written

    kept = kb.append("trials", changed, on_conflict="keep")
    assert (kept.added, kept.already_present) == (1, 1)
    assert kb.query("SELECT score FROM trials WHERE config_id = ?",
                    [_config_id(kb, 1)]).column(0)[0].as_py() == trial_row(1)["score"]

    replaced = kb.append("trials", changed, on_conflict="replace")
    assert (replaced.added, replaced.replaced, replaced.already_present) == (0, 1, 1)
    assert kb.query("SELECT score FROM trials WHERE config_id = ?",
                    [_config_id(kb, 1)]).column(0)[0].as_py() == 0.01
    assert kb.counts()["trials"] == 3


def _config_id(kb, i):
    return kb.query("SELECT config_id FROM trials WHERE config = ?",
                    [f'{{"family":"random_forest","n_estimators":{i}}}']).column(0)[0].as_py()


def test_add_takes_records_of_one_table(kb):
    kb.add(Trial(**trial_row(0)), Trial(**trial_row(1)))
    assert kb.counts()["trials"] == 2
    with pytest.raises(TypeError, match="one table"):
        kb.add(Trial(**trial_row(2)), Dataset(dataset_id="x", name="x", task="binary",
                                               target="y", n_rows=1, n_features=1, source="s"))


def test_read_returns_the_table_schema_even_when_empty(kb):
    assert kb.read("trials").schema == TABLES["trials"].arrow_schema
    assert kb.read("trials").num_rows == 0
    kb.append("trials", trial_table(3))
    assert kb.read("trials").schema == TABLES["trials"].arrow_schema


def test_query_binds_parameters_and_returns_arrow_or_pandas(kb):
    kb.append("trials", trial_table(10))
    hostile = "x' OR '1'='1"
    assert kb.query("SELECT count(*) FROM trials WHERE dataset_id = ?", [hostile]).column(0)[0].as_py() == 0
    frame = kb.query("SELECT score FROM trials WHERE score >= ? ORDER BY score", [0.0], output="pandas")
    assert len(frame) == 10 and frame["score"].is_monotonic_increasing
    assert isinstance(kb.query("SELECT 1 AS one"), pa.Table)


def test_another_process_s_appends_are_seen_on_the_next_query(kb):
    other = KnowledgeBase(kb.root)
    assert kb.counts()["trials"] == 0
    other.append("trials", trial_table(5))
    assert kb.counts()["trials"] == 5


def test_duplicate_shards_are_read_once(kb):
    kb.append("trials", trial_table(20))
    # Two writers racing on the same rows both write them; readers keep one of each key.
    other = KnowledgeBase(kb.root)
    from kb.shards import write_shard
    write_shard(kb.root / "trials", kb.read("trials"))
    assert len(shards(other)) == 2
    assert other.counts()["trials"] == 20
    assert other.query("SELECT count(DISTINCT trial_id) FROM trials").column(0)[0].as_py() == 20


def test_compact_merges_shards_and_keeps_the_newest_version(kb):
    for start in range(0, 50, 10):
        kb.append("trials", trial_table(10, start=start))
    kb.append("trials", [trial_row(0, score=0.123)], on_conflict="replace")  # a new version
    before = kb.read("trials").sort_by("trial_id")
    assert len(shards(kb)) == 6
    assert kb.compact() == {"trials": (6, 1)}
    assert len(shards(kb)) == 1
    after = kb.read("trials").sort_by("trial_id")
    assert after.equals(before)
    assert kb.compact() == {}
    assert not [p for p in kb.validate() if p.table == "trials" and p.check == "superseded_rows"]


def test_shards_of_an_older_schema_read_with_missing_columns_as_null(kb):
    old = trial_table(3).drop_columns(["latency_p50_ms"])
    table = kb.append("trials", old)
    narrow = pq.read_table(table.shard).drop_columns(["score_std", "parity_error"])
    table.shard.unlink()
    pq.write_table(narrow, kb.root / "trials" / table.shard.name)
    rows = KnowledgeBase(kb.root).read("trials")
    assert rows.num_rows == 3
    assert rows.column("parity_error").null_count == 3


def test_meta_of_an_older_version_is_refused_with_what_to_run(tmp_path):
    kb = KnowledgeBase.create(tmp_path / "old")
    meta = read_meta(kb.root)
    write_meta(kb.root, {**meta, "schema_version": "0"})
    with pytest.raises(SchemaVersionError, match="cannot be migrated"):
        KnowledgeBase(kb.root)
    from kb.meta import MIGRATIONS

    migrations = {**MIGRATIONS, 0: lambda root: (root / "trials" / "migrated.flag").write_text("done")}
    with pytest.raises(SchemaVersionError, match=r"run `kb migrate --kb"):
        KnowledgeBase(kb.root, migrations=migrations)

    from kb.meta import migrate
    assert migrate(kb.root, migrations) == (0, SCHEMA_VERSION)
    assert (kb.root / "trials" / "migrated.flag").exists()
    assert KnowledgeBase(kb.root).schema_version == SCHEMA_VERSION
    assert "migrated_at" in read_meta(kb.root)


def test_migration_to_2_gives_trials_ids_that_name_their_metric(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kb.keys import derive_key
    from kb.meta import migrate

    kb = KnowledgeBase.create(tmp_path / "v1")
    kb.append("trials", trial_table(3))
    (shard,) = list((kb.root / "trials").glob("part-*.parquet"))
    table = pq.read_table(shard)
    old_ids = derive_key(table, ("dataset_id", "config", "seed", "fidelity", "hardware_id"))
    pq.write_table(table.set_column(table.schema.get_field_index("trial_id"), "trial_id", old_ids), shard)
    write_meta(kb.root, {**read_meta(kb.root), "schema_version": "1"})
    with pytest.raises(SchemaVersionError, match="run `kb migrate"):
        KnowledgeBase(kb.root)
    assert migrate(kb.root) == (1, 2)
    migrated = KnowledgeBase(kb.root).read("trials")
    assert migrated.num_rows == 3
    assert sorted(migrated.column("trial_id").to_pylist()) == sorted(table.column("trial_id").to_pylist())
    assert not set(migrated.column("trial_id").to_pylist()) & set(old_ids.to_pylist())
    assert migrate(kb.root) == (2, 2)  # nothing left to do


def test_a_newer_kb_is_refused(tmp_path):
    kb = KnowledgeBase.create(tmp_path / "new")
    write_meta(kb.root, {**read_meta(kb.root), "schema_version": str(SCHEMA_VERSION + 1)})
    with pytest.raises(SchemaVersionError, match="upgrade metakb"):
        KnowledgeBase(kb.root)


def test_validate_reports_unknown_references_and_conflicting_keys(kb):
    kb.append("trials", trial_table(4, dataset_id="nowhere"))
    checks = {p.check for p in kb.validate()}
    assert "unknown_reference" in checks
    # A second writer stored the same key with different content (not via replace).
    from kb.shards import write_shard
    rows = kb.read("trials")
    scores = pa.array([-1.0] * rows.num_rows)
    write_shard(kb.root / "trials", rows.set_column(rows.schema.get_field_index("score"), "score", scores))
    problems = [p for p in kb.validate() if p.check == "conflicting_keys"]
    assert problems and "4 key(s)" in problems[0].detail


def test_validate_finds_a_dataset_whose_data_file_is_gone(kb):
    from kb.datasets import load, register

    record, _ = register(kb, load("sklearn:iris"))
    assert not [p for p in kb.validate() if p.check == "missing_data_file"]
    (kb.root / record.data_file).unlink()
    assert [p for p in kb.validate() if p.check == "missing_data_file"]


def test_unknown_table_names_are_user_errors(kb):
    with pytest.raises(KBError, match="unknown table 'trial'; the tables are"):
        kb.append("trial", [])


def test_threads_can_share_one_knowledge_base(kb):
    from concurrent.futures import ThreadPoolExecutor

    def work(i):
        kb.append("trials", trial_table(50, start=50 * i))
        return kb.query("SELECT count(*) FROM trials").column(0)[0].as_py()

    with ThreadPoolExecutor(4) as pool:
        seen = list(pool.map(work, range(8)))
    assert all(n >= 50 for n in seen)
    assert kb.counts()["trials"] == 400


def test_storage_reports_shards_so_users_know_when_to_compact(kb):
    for start in (0, 10, 20):
        kb.append("trials", trial_table(10, start=start))
    assert kb.storage()["trials"]["shards"] == 3 and kb.storage()["trials"]["bytes"] > 0
    kb.compact()
    assert kb.storage()["trials"]["shards"] == 1


def test_temporary_files_of_other_hosts_count_as_left_over_only_when_old(kb):
    import os
    import time

    from kb.shards import leftover_temporaries

    folder = kb.root / "trials"
    recent = folder / ".tmp-other-host-77-abcdef123456.parquet"
    old = folder / ".tmp-other-host-78-abcdef123457.parquet"
    dead_here = folder / f".tmp-{__import__('socket').gethostname()}-999999999-abcdef123458.parquet"
    for path in (recent, old, dead_here):
        path.write_bytes(b"partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert leftover_temporaries(folder) == sorted([old, dead_here])
