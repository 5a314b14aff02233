"""The ``kb`` command group and its error handling."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from pathlib import Path

import click

import kb.cli
from kb.cli.common import Settings


class KBGroup(click.Group):
    """Turns a user error (``KBError``, or a file that cannot be read or written) into one
    line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context):
        from kb.errors import KBError  # light: no third-party imports

        try:
            return super().invoke(ctx)
        except KBError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            # A file the user named cannot be read or written (missing, a folder, no space,
            # no permission): their problem to fix, so one line, not a traceback.
            where = f"{e.filename}: " if e.filename else ""
            raise click.ClickException(f"{where}{e.strerror or e}") from None


@click.group(cls=KBGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--kb", "kb_path", type=click.Path(file_okay=False, path_type=Path),
              default=lambda: os.environ.get("KB_PATH", ".kb"), show_default="$KB_PATH or ./.kb",
              help="Knowledge base folder.")
@click.version_option(package_name="metakb", prog_name="metakb")
@click.pass_context
def cli(ctx: click.Context, kb_path: Path) -> None:
    """metakb: a knowledge base of benchmarked model outcomes, per dataset and hardware.

    \b
    Start here:
      kb init --bundled          create ./.kb with the bundled datasets
      kb show                    what the KB holds
      kb datasets add data.csv --target label
      kb ingest results/ --format native
    """
    ctx.obj = Settings(kb_path=kb_path)


# Every ``kb/cli/*_commands.py`` module contributes its ``COMMANDS``; a new verb is a new module.
for _info in sorted(pkgutil.iter_modules(kb.cli.__path__), key=lambda m: m.name):
    if _info.name.endswith("_commands"):
        for command in importlib.import_module(f"kb.cli.{_info.name}").COMMANDS:
            cli.add_command(command)


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") is None:
        # SMAC orders candidate configurations through Python's string hashes, which every
        # process salts at random: a search is reproducible from its seed only under a fixed
        # salt. It must be set before the interpreter starts, so kb starts again with one
        # (a salt the user set is kept).
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, "-c", "from kb.cli.main import main; main()", *sys.argv[1:]])
    cli(prog_name="kb")
