"""What every command shares: the KB location, opening the KB, and printing results."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import click


@dataclass
class Settings:
    kb_path: Path


def _set_kb_path(ctx: click.Context, _param, value):
    if value is not None:
        ctx.find_object(Settings).kb_path = value
    return value


def kb_option(command):
    """``--kb PATH`` on a subcommand too (``kb show --kb X`` as well as ``kb --kb X show``)."""
    return click.option(
        "--kb", "kb_path", type=click.Path(file_okay=False, path_type=Path), default=None,
        expose_value=False, is_eager=True, callback=_set_kb_path,
        help="Knowledge base folder (default: $KB_PATH or ./.kb).",
    )(command)


def kb_path() -> Path:
    return click.get_current_context().find_object(Settings).kb_path


def open_kb():
    from kb.store import KnowledgeBase

    return KnowledgeBase(kb_path())


def json_option(command):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for programs to read.")(command)


def print_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=_json_default, ensure_ascii=False))


def _json_default(value):
    # Times as ISO 8601 (as `kb export` writes them); paths and the rest as text.
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def print_table(rows: list[dict], columns: list[str] | None = None, title: str | None = None) -> None:
    """Rows as an aligned table (rich on a terminal, plain text otherwise)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    columns = columns or (list(rows[0]) if rows else [])
    table = Table(title=title, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for name in columns:
        numeric = bool(rows) and all(isinstance(r.get(name), (int, float)) or r.get(name) is None
                                     for r in rows)
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else _cell(row[c]) for c in columns))
    Console(width=None if sys.stdout.isatty() else 200, soft_wrap=False).print(table)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
