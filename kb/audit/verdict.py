"""What every audit check ends in: a status, findings, and the numbers behind them.

- ``fail``: the baseline cannot be trusted as it stands (a claim is incomplete, altered, or
  does not reproduce; the KB holds no success at all; recommendations do significantly worse
  than starting cold);
- ``warn``: worth knowing, not wrong (claims measured with older libraries, gaps in
  coverage, latency measured on other hardware);
- ``pass``, or ``skipped`` when there was nothing to check (no re-runs asked for).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

PASS, WARN, FAIL, SKIPPED = "pass", "warn", "fail", "skipped"
STATUS_ORDER = (PASS, SKIPPED, WARN, FAIL)


@dataclass(frozen=True)
class Finding:
    subject: str  # the success, dataset, profile or region concerned
    problem: str
    severity: str = FAIL  # FAIL or WARN


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    summary: str  # one line for the terminal table
    findings: tuple[Finding, ...] = ()
    data: dict = field(default_factory=dict)  # the numbers behind the summary (JSON, report)

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "summary": self.summary,
                "findings": [f.__dict__ for f in self.findings], "data": self.data}


def worst(statuses: Sequence[str]) -> str:
    return max(statuses, key=STATUS_ORDER.index, default=PASS)
