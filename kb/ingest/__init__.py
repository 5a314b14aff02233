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
    rows_left_out: int = 0  # rows read but not added on purpose (why: left_out_because)
    left_out_because: str | None = None


def _adapter(module: str, function: str) -> Callable[..., list[FileReport]]:
    """An adapter imported when used, so ``kb --help`` never pays for its imports. An option
    the adapter does not take is refused by name (``--dataset`` given to ``native``)."""

    def run(kb, path, **options):
        import importlib
        import inspect

        from kb.errors import KBError

        adapter = getattr(importlib.import_module(module), function)
        parameters = inspect.signature(adapter).parameters.values()
        takes = [p.name for p in parameters if p.kind is p.KEYWORD_ONLY]
        unknown = [name for name in options if name not in takes]
        if unknown and not any(p.kind is p.VAR_KEYWORD for p in parameters):  # **options: its own check
            usable = ", ".join(_flag(name) for name in takes if name != "progress") or "none"
            raise KBError(f"{', '.join(map(_flag, unknown))} does not apply to this format "
                          f"(its options: {usable})")
        return adapter(kb, path, **options)

    return run


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


# format name -> adapter(kb, path, progress=..., **options) -> [FileReport]
ADAPTERS: dict[str, Callable[..., list[FileReport]]] = {
    "native": _adapter("kb.ingest.native", "ingest_native"),
    "aslib": _adapter("kb.ingest.aslib", "ingest_aslib"),
    "smac": _adapter("kb.ingest.smac", "ingest_smac"),
    "tabrepo": _adapter("kb.ingest.tabrepo", "ingest_tabrepo"),
    "nb201": _adapter("kb.ingest.nb201", "ingest_nb201"),
    "mobile-ops": _adapter("kb.ingest.mobile_ops", "ingest_mobile_ops"),
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
