"""Records as the store will hold them, built before they reach a store.

A trial runs far from the KB (in a subprocess or on a Dask worker) and must hand back rows
that the store accepts and whose ids are already known. The store's own validation does both,
so it is reused here rather than repeated.
"""

from __future__ import annotations

from kb.schema import RECORD_TABLES, TABLES
from kb.validation import prepare_rows


def with_keys(record):
    """``record`` with its derived ids filled in and its values in canonical form.

    Raises ``kb.errors.ValidationError`` for a value the store would refuse (a NaN score, an
    unknown status), so such a record never leaves the code that made it.
    """
    spec = TABLES[RECORD_TABLES[type(record)]]
    row = prepare_rows([record], spec).table.to_pylist()[0]
    return type(record)(**row)
