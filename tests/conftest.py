"""Fixtures shared by the tests: a fresh KB, the shared real data, and a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("METAKB_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real public data); tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set METAKB_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def kb(tmp_path):
    from kb import KnowledgeBase

    with KnowledgeBase.create(tmp_path / "kb") as knowledge_base:
        yield knowledge_base


@pytest.fixture
def cli(tmp_path):
    """Run ``kb`` with arguments against a KB in ``tmp_path``: ``cli("show", "--json")``."""
    from click.testing import CliRunner

    from kb.cli.main import cli as kb_cli

    runner = CliRunner()
    kb_path = tmp_path / "kb"

    def run(*args: str, kb: Path | None = None):
        return runner.invoke(kb_cli, ["--kb", str(kb or kb_path), *map(str, args)],
                             catch_exceptions=False)

    run.kb_path = kb_path
    return run
