"""metakb's knowledge base: ``from kb import KnowledgeBase``.

Names are imported on first use so that ``kb --help`` does not pay for DuckDB and Arrow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "KnowledgeBase": "kb.store",
    "AppendResult": "kb.store",
    "Problem": "kb.store",
    "KBError": "kb.errors",
    "ValidationError": "kb.errors",
    "CorruptShardError": "kb.errors",
    "SchemaVersionError": "kb.errors",
    "Dataset": "kb.schema",
    "MetaFeature": "kb.schema",
    "Hardware": "kb.schema",
    "Trial": "kb.schema",
    "Fragment": "kb.schema",
    "FragmentCost": "kb.schema",
    "Architecture": "kb.schema",
    "Run": "kb.schema",
    "TABLES": "kb.schema",
    "SCHEMA_VERSION": "kb.schema",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kb' has no attribute {name!r}")
