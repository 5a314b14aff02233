"""The ``complete`` and ``current`` checks: does each known success carry its provenance,
unaltered, and was it measured with this installation's versions?"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kb.audit.successes import KnownSuccess
from kb.audit.verdict import FAIL, PASS, WARN, CheckResult, Finding
from kb.schema import Trial

OWN_SOURCE = "metakb"  # trials metakb measured itself; others were ingested from other tools


@dataclass(frozen=True)
class Identity:
    """What the audit recomputed about one success: its ids from its content, and the hash of
    the dataset's data file (None where the KB holds no data for it)."""

    trial_id: str
    config_id: str
    data_hash: str | None
    data_problem: str | None = None  # the data file is missing or unreadable


def provenance_gaps(success: KnownSuccess, identity: Identity) -> list[Finding]:
    """What the success lacks to be a complete, unaltered claim. Alterations (ids or data
    that no longer match the content) always fail; missing provenance fails for metakb's own
    trials and warns for ingested ones, which are evidence rather than reproducible claims."""
    trial, subject = success.trial, success.name
    own = trial.source == OWN_SOURCE
    missing = []
    config = json.loads(trial.config) if trial.config else {}
    if not config.get("family"):
        missing.append("configuration")
    if trial.seed is None:
        missing.append("seed")
    if not trial.code_version or trial.code_version == "unknown":
        missing.append("code version")
    if not trial.library_versions or not json.loads(trial.library_versions):
        missing.append("library versions")
    if success.dataset is None:
        missing.append("dataset record")
    hardware = success.hardware
    if hardware is None:
        missing.append("hardware row")
    elif hardware.kind == "external" or not (hardware.cpu_model and hardware.runtime_version):
        missing.append("hardware fingerprint")
    found = []
    if missing:
        found.append(Finding(subject, "missing " + ", ".join(missing)
                             + ("" if own else f" (ingested from {trial.source})"),
                             FAIL if own else WARN))
    if identity.trial_id != trial.trial_id:
        found.append(Finding(subject, f"trial id {trial.trial_id} does not match its content "
                                      f"(dataset, configuration, metric, seed, fidelity, hardware "
                                      f"hash to {identity.trial_id}): the record was altered"))
    if identity.config_id != trial.config_id:
        found.append(Finding(subject, f"config id {trial.config_id} does not match the "
                                      f"configuration (it hashes to {identity.config_id})"))
    if identity.data_problem:
        found.append(Finding(subject, identity.data_problem))
    elif identity.data_hash is not None and identity.data_hash != trial.dataset_id:
        found.append(Finding(subject, f"the dataset's data file hashes to {identity.data_hash}, "
                                      f"not to its id {trial.dataset_id}: the data was changed"))
    return found


def check_complete(successes: Sequence[KnownSuccess], identities: Sequence[Identity]) -> CheckResult:
    findings = [f for s, i in zip(successes, identities) for f in provenance_gaps(s, i)]
    subjects = {f.subject for f in findings}
    failing = {f.subject for f in findings if f.severity == FAIL}
    status = FAIL if failing else WARN if findings else PASS
    summary = (f"{len(successes) - len(subjects)} of {len(successes)} successes complete"
               + (f"; {len(failing)} fail" if failing else "")
               + (f"; {len(subjects - failing)} ingested without full provenance"
                  if subjects - failing else ""))
    return CheckResult("complete", status, summary, tuple(findings),
                       {"successes": len(successes), "complete": len(successes) - len(subjects),
                        "failing": len(failing)})


def _older(stored: str, installed: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(stored) < Version(installed)
    except InvalidVersion:
        return False  # not comparable (a local build name): not known to be older


def staleness(trial: Trial, code_version: str, libraries: Mapping[str, str]) -> list[str]:
    """``"onnxruntime 1.31.1 < 1.32.0"`` for each library (and metakb itself) the trial was
    measured with an older version of than this installation has."""
    stale = []
    if trial.code_version and _older(trial.code_version, code_version):
        stale.append(f"metakb {trial.code_version} < {code_version}")
    stored = json.loads(trial.library_versions) if trial.library_versions else {}
    for name, version in sorted(stored.items()):
        if name in libraries and _older(str(version), libraries[name]):
            stale.append(f"{name} {version} < {libraries[name]}")
    return stale


def check_current(successes: Sequence[KnownSuccess], code_version: str,
                  libraries: Mapping[str, str]) -> CheckResult:
    findings = []
    by_library: Counter = Counter()
    for success in successes:
        stale = staleness(success.trial, code_version, libraries)
        if stale:
            findings.append(Finding(success.name, "measured with " + ", ".join(stale), WARN))
            by_library.update(s.split(" ", 1)[0] for s in stale)
    if not findings:
        return CheckResult("current", PASS, f"all {len(successes)} successes measured with "
                                            f"this metakb and these libraries or newer")
    which = ", ".join(f"{name} ({n})" for name, n in by_library.most_common())
    return CheckResult("current", WARN, f"{len(findings)} of {len(successes)} successes measured "
                                        f"with older versions: {which}", tuple(findings),
                       {"stale": len(findings), "by_library": dict(by_library)})
