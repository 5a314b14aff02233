"""Concurrent writers, writers killed mid-write, and damaged shards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import add_references, trial_table

from kb import KnowledgeBase
from kb.errors import CorruptShardError
from kb.shards import QUARANTINE, TMP_PREFIX, list_shards

TESTS = Path(__file__).parent


def integrity_problems(kb, **kwargs):
    return [p for p in kb.validate(**kwargs) if p.serious]


@pytest.fixture
def kb(kb):
    add_references(kb)
    return kb


def run_python(code: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_four_processes_appending_at_once_lose_nothing_and_duplicate_nothing(kb):
    # Each writer appends 6 batches of its own rows and, in between, a batch every writer
    # also appends (so the same new rows race each other).
    code = """
        import sys
        from helpers import trial_table
        from kb import KnowledgeBase
        kb = KnowledgeBase(sys.argv[1])
        worker = int(sys.argv[2])
        for batch in range(6):
            kb.append("trials", trial_table(500, start=100_000 * (worker + 1) + 500 * batch))
            kb.append("trials", trial_table(200, start=200 * batch))
        print("done")
    """
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(kb.root), str(w)],
                              env={**os.environ, "PYTHONPATH": str(TESTS)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert out.strip() == "done"
    expected = 4 * 6 * 500 + 6 * 200
    total, distinct = kb.query("SELECT count(*), count(DISTINCT trial_id) FROM trials").to_pylist()[0].values()
    assert (total, distinct) == (expected, expected)
    assert not integrity_problems(kb)


def test_a_writer_killed_between_writing_and_renaming_leaves_the_kb_whole(kb):
    kb.append("trials", trial_table(100))
    # The child dies by SIGKILL at the worst moment: its shard is on disk under its
    # temporary name and not yet renamed into place.
    child = run_python(f"""
        import os, signal
        import kb.shards
        from helpers import trial_table
        from kb import KnowledgeBase
        kb.shards.os.rename = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
        KnowledgeBase({str(kb.root)!r}).append("trials", trial_table(100, start=1000))
    """)
    child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL
    leftovers = [p for p in (kb.root / "trials").iterdir() if p.name.startswith(TMP_PREFIX)]
    assert len(leftovers) == 1

    fresh = KnowledgeBase(kb.root)
    assert fresh.counts()["trials"] == 100
    assert [p.check for p in integrity_problems(fresh)] == ["leftover_temporary"]
    assert all(p.repaired for p in integrity_problems(fresh, repair=True))
    assert (kb.root / QUARANTINE / "trials" / leftovers[0].name).exists()
    assert not integrity_problems(fresh)


def test_a_writer_killed_at_random_keeps_every_completed_write(kb):
    child = run_python(f"""
        from helpers import trial_table
        from kb import KnowledgeBase
        kb = KnowledgeBase({str(kb.root)!r})
        for batch in range(1000):
            kb.append("trials", trial_table(20_000, start=20_000 * batch))
            print(batch, flush=True)
    """)
    completed = -1
    deadline = time.monotonic() + 120
    while completed < 3 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        completed = int(line)
    time.sleep(0.15)  # land somewhere inside the next write
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=60)
    completed = max([completed, *map(int, rest.split())])
    assert completed >= 3, "the writer did not get going"

    fresh = KnowledgeBase(kb.root)
    count = fresh.counts()["trials"]
    # Every acknowledged write is there; at most the one in flight may also be.
    assert count in ((completed + 1) * 20_000, (completed + 2) * 20_000)
    fresh.validate(repair=True)
    assert not integrity_problems(fresh)
    assert fresh.counts()["trials"] == count


def test_a_truncated_shard_is_named_and_can_be_moved_aside(kb, cli):
    kb.append("trials", trial_table(50))
    damaged = kb.append("trials", trial_table(50, start=50)).shard
    kb.append("trials", trial_table(50, start=100))
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])

    fresh = KnowledgeBase(kb.root)
    with pytest.raises(CorruptShardError, match=str(damaged)) as e:
        fresh.counts()
    assert "kb validate --repair" in str(e.value)

    result = cli("validate", kb=kb.root)
    assert result.exit_code == 1
    assert "unreadable_shard" in result.output and damaged.name in result.output

    result = cli("validate", "--repair", kb=kb.root)
    assert result.exit_code == 0, result.output
    moved = kb.root / QUARANTINE / "trials" / damaged.name
    assert moved.read_bytes() == data[: len(data) // 2]  # set aside, not deleted
    assert KnowledgeBase(kb.root).counts()["trials"] == 100
    assert len(list_shards(kb.root / "trials")) == 2


def test_a_shard_damaged_inside_is_named_when_read(kb):
    shard = kb.append("trials", trial_table(2000)).shard
    data = bytearray(shard.read_bytes())
    # Scramble the middle of the file (column data) but keep the footer intact. 0xFF, not
    # zeros: zeroed bytes inside plain-encoded text can still decode (as other text).
    middle = len(data) // 2
    data[middle - 200: middle + 200] = b"\xff" * 400
    shard.write_bytes(bytes(data))
    fresh = KnowledgeBase(kb.root)
    with pytest.raises(CorruptShardError, match=str(shard)):
        fresh.read("trials")
    problems = [p for p in fresh.validate() if p.check == "unreadable_shard"]
    assert len(problems) == 1 and str(shard) in problems[0].detail


def test_damage_that_still_decodes_is_caught_by_page_checksums(kb, cli):
    shard = kb.append("trials", trial_table(2000)).shard
    data = bytearray(shard.read_bytes())
    middle = len(data) // 2
    data[middle - 200: middle + 200] = bytes(400)  # zeros: plain-encoded text may still decode
    shard.write_bytes(bytes(data))
    result = cli("validate", kb=kb.root)
    assert result.exit_code == 1
    assert "unreadable_shard" in result.output and "checksum" in result.output
