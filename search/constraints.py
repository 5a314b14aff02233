"""Hard limits on a model (latency, memory, size) and what a broken one makes of a trial.

A search's limits are the user's, not the model's: a trial that breaks one is stored as
``infeasible`` with the reason prefixed ``limit:``, so a later search with looser limits can
tell it apart from a model the profile itself cannot hold (``memory:``) and judge it again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kb.errors import KBError
from kb.schema import Trial

LIMIT_PREFIX = "limit:"


@dataclass(frozen=True)
class Limits:
    max_latency_ms: float | None = None  # p50 at batch 1 on the profile
    max_memory_mb: float | None = None  # peak inference memory
    max_model_kb: float | None = None  # the model file as measured

    def __post_init__(self):
        for name in ("max_latency_ms", "max_memory_mb", "max_model_kb"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise KBError(f"{name.replace('_', '-')} must be a positive number, not {value!r}")

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_latency_ms, self.max_memory_mb, self.max_model_kb))

    def broken(self, trial: Trial) -> str | None:
        """Why ``trial`` breaks these limits, or None. A measure the trial lacks breaks
        nothing here: a trial that never got measured has failed for that reason already."""
        found = []
        if self.max_latency_ms is not None and trial.latency_p50_ms is not None \
                and trial.latency_p50_ms > self.max_latency_ms:
            found.append(f"latency p50 {trial.latency_p50_ms:.3g} ms > {self.max_latency_ms:g} ms")
        if self.max_memory_mb is not None and trial.peak_memory_mb is not None \
                and trial.peak_memory_mb > self.max_memory_mb:
            found.append(f"peak memory {trial.peak_memory_mb:.3g} MB > {self.max_memory_mb:g} MB")
        if self.max_model_kb is not None and trial.model_bytes is not None \
                and trial.model_bytes / 1024 > self.max_model_kb:
            found.append(f"model {trial.model_bytes / 1024:.4g} KB > {self.max_model_kb:g} KB")
        return "; ".join(found) or None


def judge(trial: Trial, limits: Limits) -> Trial:
    """``trial`` as these limits see it: an ``ok`` trial (or one infeasible only under some
    other search's limits) that breaks them becomes ``infeasible``; one that keeps them is
    ``ok``. Failures, timeouts and the profile's own ceilings stand as they are."""
    earlier_limit = trial.status == "infeasible" and (trial.failure_reason or "").startswith(LIMIT_PREFIX)
    if trial.status != "ok" and not earlier_limit:
        return trial
    reason = limits.broken(trial)
    if reason:
        return replace(trial, status="infeasible", failure_reason=f"{LIMIT_PREFIX} {reason}")
    return replace(trial, status="ok", failure_reason=None)


def is_feasible(trial: Trial) -> bool:
    return trial.status == "ok" and trial.score is not None
