"""Ingest adapters: read results from files and other tools into the KB.

Each adapter turns a path into rows of KB tables and appends them through the store, one
file at a time and all or nothing per file. ``ingest`` picks the adapter by format name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileReport:
    """What ingesting one file did. ``rejected`` holds the reason when nothing was added."""

    path: Path
    table: str | None = None
    added: int = 0
    already_present: int = 0
    replaced: int = 0
    rejected: str | None = None
    skipped: str | None = None  # a file in a folder that is not for this format, and why


def _adapter(module: str, function: str) -> Callable[..., list[FileReport]]:
    """An adapter imported when used, so ``kb --help`` never pays for its imports."""

    def run(kb, path, **options):
        import importlib

        return getattr(importlib.import_module(module), function)(kb, path, **options)

    return run


# format name -> adapter(kb, path, progress=..., **options) -> [FileReport]
ADAPTERS: dict[str, Callable[..., list[FileReport]]] = {
    "native": _adapter("kb.ingest.native", "ingest_native"),
}


def ingest(kb, path: str | Path, *, format: str = "native", progress=None, **options) -> list[FileReport]:
    """Ingest ``path`` (a file or folder) in ``format``; one report per file looked at.

    ``progress``, if given, is called with each ``FileReport`` as soon as it is known.
    """
    from kb.errors import KBError

    if format not in ADAPTERS:
        raise KBError(f"unknown ingest format {format!r}; expected one of {', '.join(ADAPTERS)}")
    path = Path(path)
    if not path.exists():
        raise KBError(f"{path}: no such file or folder")
    return ADAPTERS[format](kb, path, progress=progress or (lambda report: None), **options)
