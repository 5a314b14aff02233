"""The ``runs`` row of a command that writes trials: started, updated, finished."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timezone

from kb.keys import canonical_json
from kb.meta import code_version
from kb.schema import Run


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def start_run(kb, command: str, arguments: dict, run_id: str | None = None) -> Run:
    """Record a run as ``running`` (a killed run stays so; ``--resume`` continues it)."""
    run = Run(run_id=run_id or new_run_id(), command=command, status="running",
              started_at=datetime.now(timezone.utc), arguments=canonical_json(arguments),
              code_version=code_version())
    kb.append("runs", [run], on_conflict="replace")
    return run


def finish_run(kb, run: Run, status: str, counts: dict) -> Run:
    done = replace(run, status=status, finished_at=datetime.now(timezone.utc),
                   counts=canonical_json(counts))
    kb.append("runs", [done], on_conflict="replace")
    return done


def find_run(kb, run_id: str) -> Run | None:
    rows = kb.query("SELECT * FROM runs WHERE run_id = ?", params=[run_id]).to_pylist()
    return Run(**rows[0]) if rows else None
