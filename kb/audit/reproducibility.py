"""The ``reproducible`` check: known successes re-run on this machine against their claims."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from kb.audit.successes import KnownSuccess
from kb.audit.verdict import FAIL, PASS, SKIPPED, WARN, CheckResult, Finding, worst
from kb.schema import Trial

LATENCY_RATIO_LIMIT = 2.0  # same hardware: a re-measured p50 beyond x2 or /2 does not reproduce


@dataclass(frozen=True)
class Rerun:
    """A success measured again on this machine."""

    success: KnownSuccess
    trial: Trial | None  # the new measurement; None when it could not be made
    problem: str | None = None  # why there is no measurement

    @property
    def same_hardware(self) -> bool:
        return self.trial is not None and self.trial.hardware_id == self.success.trial.hardware_id

    @property
    def score_delta(self) -> float | None:
        if self.trial is None or self.trial.score is None:
            return None
        return self.trial.score - self.success.trial.score

    @property
    def latency_ratio(self) -> float | None:
        new, old = (self.trial.latency_p50_ms if self.trial else None), self.success.trial.latency_p50_ms
        return new / old if new and old else None

    def to_json(self) -> dict:
        claimed, new = self.success.trial, self.trial
        return {"success": self.success.name, "trial_id": claimed.trial_id,
                "claimed_score": claimed.score, "score_std": claimed.score_std,
                "rerun_score": new.score if new else None,
                "rerun_status": new.status if new else None,
                "claimed_latency_ms": claimed.latency_p50_ms,
                "rerun_latency_ms": new.latency_p50_ms if new else None,
                "latency_ratio": self.latency_ratio, "same_hardware": self.same_hardware,
                "rerun_hardware_id": new.hardware_id if new else None, "problem": self.problem}


def score_tolerance(trial: Trial) -> float:
    """How far a re-run's score may move: the claim's spread across CV folds (a re-run with
    the same seed draws the same folds, so anything beyond it is not the same result)."""
    return max(trial.score_std or 0.0, 1e-9)


def judge_rerun(rerun: Rerun) -> list[Finding]:
    claimed, subject = rerun.success.trial, rerun.success.name
    if rerun.trial is None:
        return [Finding(subject, f"could not be re-run: {rerun.problem}", WARN)]
    new = rerun.trial
    if new.status == "timeout":
        # The audit's own time limit, not the claim, stopped it: nothing was compared.
        return [Finding(subject, f"could not be re-run within the time limit ({new.failure_reason})",
                        WARN)]
    if new.status != "ok" or new.score is None:
        return [Finding(subject, f"claimed ok with {claimed.metric} {claimed.score:.4g}; the re-run "
                                 f"ended {new.status}: {new.failure_reason}")]
    found = []
    delta = rerun.score_delta
    if abs(delta) > score_tolerance(claimed):
        found.append(Finding(subject, f"{claimed.metric} {claimed.score:.4g} claimed, {new.score:.4g} "
                                      f"re-measured: off by {abs(delta):.3g}, beyond the claim's CV "
                                      f"spread of {score_tolerance(claimed):.3g}"))
    ratio = rerun.latency_ratio
    if ratio is not None:
        if not rerun.same_hardware:
            found.append(Finding(subject, f"latency x{ratio:.2f} ({claimed.latency_p50_ms:.3g} -> "
                                          f"{new.latency_p50_ms:.3g} ms) on other hardware "
                                          f"({new.hardware_id}, claimed on {claimed.hardware_id}): "
                                          f"reported, not judged", WARN))
        elif not 1 / LATENCY_RATIO_LIMIT <= ratio <= LATENCY_RATIO_LIMIT:
            found.append(Finding(subject, f"latency p50 {claimed.latency_p50_ms:.3g} ms claimed, "
                                          f"{new.latency_p50_ms:.3g} ms re-measured on the same "
                                          f"hardware (x{ratio:.2f})"))
    return found


def check_reproducible(reruns: Sequence[Rerun], asked: int, rerunnable: int) -> CheckResult:
    if asked == 0:
        return CheckResult("reproducible", SKIPPED, "not checked; --rerun N re-measures N successes")
    if not reruns:
        return CheckResult("reproducible", WARN, "no success can be re-run here (none has its data "
                                                 "in the KB and a profile this machine runs)")
    judged = [(r, judge_rerun(r)) for r in reruns]
    findings = [f for _, found in judged for f in found]
    reproduced = sum(r.trial is not None and not any(f.severity == FAIL for f in found)
                     for r, found in judged)
    measured = [r for r in reruns if r.trial is not None and r.trial.score is not None]
    ratios = [r.latency_ratio for r in measured if r.latency_ratio]
    other = sum(not r.same_hardware for r in measured)
    summary = (f"{reproduced} of {len(reruns)} re-run successes reproduce"
               + (f" ({rerunnable} could be re-run)" if rerunnable > len(reruns) else "")
               + (f"; latency x{_geomean(ratios):.2f} (geometric mean)" if ratios else "")
               + (f", {other} on other hardware" if other else ""))
    status = worst([f.severity for f in findings]) if findings else PASS
    return CheckResult("reproducible", status, summary, tuple(findings),
                       {"reruns": [r.to_json() for r in reruns], "asked": asked,
                        "rerunnable": rerunnable})


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))
