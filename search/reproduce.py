"""Re-measure known successes on this machine, for ``kb audit --rerun N``.

A success is re-run exactly as it was claimed: the same dataset (the KB's own copy), the
same configuration, metric, seed (hence the same folds) and full fidelity, under the profile
its hardware row names. The new measurement is written to the KB when it is a new trial (this
machine's fingerprint differs from the claim's); on the same hardware it has the claim's own
trial id, and the claim is kept as it was, so an audit never overwrites what it audits.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence

from kb.audit.provenance import OWN_SOURCE
from kb.audit.reproducibility import Rerun
from kb.audit.successes import KnownSuccess
from kb.errors import KBError, first_line

LEAD_SUSPICIOUS = 2.0  # a claim this many CV spreads above the runner-up is re-run first
CLAIMED_TIME_FACTOR = 3.0  # a re-run may take this many times what the claimed trial took


def rerun_reason(success: KnownSuccess, profiles: dict, machine) -> str | None:
    """Why ``success`` cannot be re-run on ``machine`` (this one's ``detect_machine()``), or
    None if it can."""
    trial = success.trial
    if trial.source != OWN_SOURCE:
        return f"ingested from {trial.source}: metakb did not measure it"
    if success.dataset is None or success.dataset.data_file is None:
        return "the KB holds no data for its dataset"
    if success.hardware is None or success.hardware.name not in profiles:
        name = success.hardware.name if success.hardware else trial.hardware_id
        return f"no profile named {name!r} here (`kb hardware list`)"
    from search.hardware import unusable_reason

    unusable = unusable_reason(profiles[success.hardware.name], machine)
    return f"this machine cannot run {success.hardware.name}: {unusable}" if unusable else None


def choose(successes: Sequence[KnownSuccess], n: int, seed: int,
           profiles: dict) -> tuple[list[KnownSuccess], int]:
    """Up to ``n`` re-runnable successes, and how many there were. Claims standing far above
    their runner-up (more than ``LEAD_SUSPICIOUS`` CV spreads) come first, largest lead
    first: they are the least corroborated, and a score edited upwards looks like one. The
    rest are a seeded random sample."""
    from search.hardware import detect_machine

    machine = detect_machine()
    candidates = [s for s in successes if rerun_reason(s, profiles, machine) is None]
    suspicious = sorted((s for s in candidates if (s.lead or 0) > LEAD_SUSPICIOUS),
                        key=lambda s: -s.lead)
    others = [s for s in candidates if s not in suspicious]
    random.Random(seed).shuffle(others)
    return (suspicious + others)[:n], len(candidates)


def rerun(kb, successes: Sequence[KnownSuccess], *, profiles: dict, run_id: str | None = None,
          trial_time_s: float = 600.0,
          on_rerun: Callable[[Rerun], None] = lambda r: None) -> list[Rerun]:
    """Re-run each success on this machine (one at a time, so latency is timed alone)."""
    from kb.datasets import load_registered
    from search.trial import TrialLimits, run_trial

    out = []
    for success in successes:
        claimed = success.trial
        # A claim that trained for longer than the limit gets the time it took, and some.
        limits = TrialLimits(time_s=max(trial_time_s, CLAIMED_TIME_FACTOR * _claimed_seconds(claimed)),
                             train_threads=1)
        try:
            result = run_trial(load_registered(kb, claimed.dataset_id), json.loads(claimed.config),
                               profiles[success.hardware.name], claimed.seed,
                               metric=claimed.metric, fidelity=1.0, limits=limits, run_id=run_id)
        except KBError as e:  # this machine cannot run the profile, the data is unreadable
            done = Rerun(success, None, first_line(e))
        else:
            if result.trial.trial_id != claimed.trial_id:
                result.write(kb, on_conflict="keep")
            done = Rerun(success, result.trial)
        on_rerun(done)
        out.append(done)
    return out


def _claimed_seconds(trial) -> float:
    return sum(s or 0.0 for s in (trial.train_seconds, trial.export_seconds, trial.measure_seconds))
