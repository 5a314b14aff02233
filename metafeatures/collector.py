"""Where a group puts what it found: finite values, and notes on what could not exist."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from metafeatures.summaries import SUMMARIES, summarize


@dataclass
class Collector:
    values: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sample_rows: dict[str, int] = field(default_factory=dict)

    def put(self, name: str, value) -> None:
        """Record ``value`` if it is a finite number; an undefined one (0/0, log 0) is absent."""
        if value is None:
            return
        value = float(value)
        if math.isfinite(value):
            self.values[name] = value

    def summary(self, measure: str, values, kinds: tuple[str, ...] = SUMMARIES) -> None:
        """``{kind}{measure}`` for each summary kind, e.g. ``MeanSkewnessOfNumericAtts``."""
        for kind, value in summarize(values, kinds).items():
            self.put(f"{kind}{measure}", value)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def sampled(self, rows: int | None, names) -> None:
        """Record that ``names`` were computed on a sample of ``rows`` rows."""
        if rows is not None:
            for name in names:
                if name in self.values:
                    self.sample_rows[name] = rows

    def merge(self, other: "Collector") -> None:
        self.values.update(other.values)
        self.sample_rows.update(other.sample_rows)
        for text in other.notes:
            self.note(text)
