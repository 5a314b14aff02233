"""Errors a user can act on. The CLI prints their message on one line and exits with status 1."""

from __future__ import annotations


def first_line(error: BaseException, *, with_type: bool = False, limit: int = 400) -> str:
    """An exception's message cut to its first line (and ``limit`` characters), for one-line
    reports; the exception's type name where the message is empty or ``with_type`` is set."""
    text = str(error).strip()
    line = text.splitlines()[0][:limit] if text else ""
    name = type(error).__name__
    if not line:
        return name
    return f"{name}: {line}" if with_type else line


class KBError(Exception):
    """A problem with the user's input or knowledge base, stated so they know what to do."""


class ValidationError(KBError):
    """A row of an input file breaks the table's rules."""

    def __init__(self, problem: str, *, source: str | None = None, row: int | None = None,
                 field: str | None = None):
        self.problem = problem
        self.source = source
        self.row = row
        self.field = field
        where = ", ".join(p for p in (f"row {row}" if row is not None else None,
                                      f"field {field!r}" if field else None) if p)
        message = f"{where}: {problem}" if where else problem
        super().__init__(f"{source}: {message}" if source else message)

    def located(self, source: str) -> "ValidationError":
        """The same error, naming the file it came from."""
        return ValidationError(self.problem, source=source, row=self.row, field=self.field)


class CorruptShardError(KBError):
    """A shard file cannot be read."""

    def __init__(self, path: str, reason: str):
        self.path = path
        super().__init__(
            f"shard {path} is unreadable ({reason}); run `kb validate --repair` to move it aside"
        )


class SchemaVersionError(KBError):
    """The KB was written by another schema version than this code reads."""
