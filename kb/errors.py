"""Errors a user can act on. The CLI prints their message on one line and exits with status 1."""

from __future__ import annotations


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
        where = [p for p in (source, f"row {row}" if row is not None else None,
                             f"field {field!r}" if field else None) if p]
        super().__init__(f"{', '.join(where)}: {problem}" if where else problem)

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
