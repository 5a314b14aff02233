"""The one error the package raises for input it cannot characterise."""

from __future__ import annotations


class MetaFeatureError(ValueError):
    """Input that cannot be characterised: no rows, an unknown task or group, a ragged target."""
