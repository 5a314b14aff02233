"""The audit's checks as pure functions: records and measurements in, a ``CheckResult`` out.

Each check ends in one status:

- ``fail``: the baseline cannot be trusted as it stands (a claim is incomplete, altered, or
  does not reproduce; the KB holds no success at all; recommendations do worse than either
  cold start);
- ``warn``: worth knowing, not wrong (claims measured with older libraries, gaps in
  coverage, latency measured on other hardware);
- ``pass``, or ``skipped`` when there was nothing to check (no re-runs asked for).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kb.audit.successes import KnownSuccess
from kb.schema import Dataset, Trial

PASS, WARN, FAIL, SKIPPED = "pass", "warn", "fail", "skipped"
STATUS_ORDER = (PASS, SKIPPED, WARN, FAIL)
OWN_SOURCE = "metakb"  # trials metakb measured itself; others were ingested from other tools
SIGNIFICANCE = 0.05  # value: an anchor must beat the recommender this surely to fail it
LATENCY_RATIO_LIMIT = 2.0  # same hardware: a re-measured p50 beyond x2 or /2 does not reproduce
# The region grid of coverage: decades of rows and features, per task.
ROW_EDGES = (1_000, 10_000, 100_000)
FEATURE_EDGES = (10, 100)


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


# -- complete ----------------------------------------------------------------------------------


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


# -- current -----------------------------------------------------------------------------------


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


# -- reproducible ------------------------------------------------------------------------------


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


# -- coverage ----------------------------------------------------------------------------------


def _bin(value: int | None, edges: Sequence[int], unit: str) -> str:
    if value is None:
        return "unknown"
    names = [f"<{_short(edges[0])}"] + [f"{_short(a)}-{_short(b)}" for a, b in zip(edges, edges[1:])] \
        + [f">={_short(edges[-1])}"]
    return f"{names[sum(value >= e for e in edges)]} {unit}"


def _short(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 else str(n)


def region(dataset: Dataset) -> str:
    """The coverage grid's cell of a dataset: task x decade of rows x decade of features."""
    return (f"{dataset.task}, {_bin(dataset.n_rows, ROW_EDGES, 'rows')}, "
            f"{_bin(dataset.n_features, FEATURE_EDGES, 'features')}")


def all_regions(tasks: Sequence[str]) -> list[str]:
    rows = [_bin(v, ROW_EDGES, "rows") for v in (0, *ROW_EDGES)]
    features = [_bin(v, FEATURE_EDGES, "features") for v in (0, *FEATURE_EDGES)]
    return [f"{t}, {r}, {f}" for t in tasks for r in rows for f in features]


def check_coverage(successes: Sequence[KnownSuccess], datasets: Sequence[Dataset],
                   tried: Mapping[str, int], profiles: Sequence[str], tasks: Sequence[str]) -> CheckResult:
    """Datasets, tasks, hardware profiles and grid regions with no known success.
    ``tried``: trials per dataset id; ``profiles``: the profile names this KB knows."""
    succeeded = {s.trial.dataset_id for s in successes}
    findings = []
    for d in datasets:
        if d.dataset_id not in succeeded:
            why = (f"{tried[d.dataset_id]} trials, none ok at full fidelity"
                   if tried.get(d.dataset_id) else "never benchmarked")
            findings.append(Finding(f"dataset {d.name}", f"no known success: {why}", WARN))
    success_tasks = {s.dataset.task for s in successes if s.dataset}
    findings += [Finding(f"task {t}", "no known success", WARN) for t in tasks if t not in success_tasks]
    success_profiles = {s.hardware.name for s in successes if s.hardware}
    findings += [Finding(f"profile {p}", "no known success measured under it", WARN)
                 for p in profiles if p not in success_profiles]
    cells = Counter(region(s.dataset) for s in successes if s.dataset)
    empty = [r for r in all_regions(tasks) if not cells[r]]
    findings += [Finding(f"region {r}", "no known success", WARN) for r in empty]
    if not successes:
        return CheckResult("coverage", FAIL, "the KB holds no known success: nothing to start from",
                           tuple(findings), {"regions": {}, "empty_regions": empty})
    without = len(datasets) - len({d.dataset_id for d in datasets} & succeeded)
    bare = [p for p in profiles if p not in success_profiles]
    summary = (f"successes on {len(datasets) - without} of {len(datasets)} datasets, "
               f"{len(success_tasks)} of {len(tasks)} tasks, "
               f"{len(success_profiles & set(profiles))} of {len(profiles)} profiles"
               + (f" (none under {', '.join(bare)})" if bare else "")
               + f"; {len(empty)} of {len(all_regions(tasks))} regions (task x rows x features) empty")
    return CheckResult("coverage", WARN if findings else PASS, summary, tuple(findings),
                       {"regions": dict(cells), "empty_regions": empty,
                        "datasets_without_success": without, "profiles_without_success": bare})


# -- value -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pick:
    """What one way of choosing a first configuration chose on a held-out dataset."""

    config_id: str | None
    score: float | None  # its score there; None where the KB never ran it there
    regret: float | None  # normalized: 0 = the dataset's best known, 1 = its worst


@dataclass(frozen=True)
class HeldOut:
    """One dataset left out of the KB: the first pick of the recommender and of the anchors."""

    dataset: str
    metric: str
    direction: str
    picks: Mapping[str, Pick]  # "recommender", "family default", "zero-shot portfolio"


def regret(score: float, scores: Sequence[float], direction: str) -> float:
    best, worst_ = (max(scores), min(scores)) if direction == "maximize" else (min(scores), max(scores))
    return 0.0 if best == worst_ else (best - score) / (best - worst_)


def beats(a: Pick, b: Pick, direction: str) -> int:
    """1 if ``a`` scored better than ``b``, 0 on a tie, -1 if worse."""
    if a.score == b.score:
        return 0
    return 1 if (a.score > b.score) == (direction == "maximize") else -1


def value_summary(held_out: Sequence[HeldOut], method: str = "recommender") -> dict:
    """Wins, ties and losses of ``method`` against each anchor and every method's regrets,
    over the held-out datasets where both were scored."""
    anchors = sorted({name for h in held_out for name in h.picks} - {method})
    out: dict = {"datasets": len(held_out), "regret": {}, "against": {}}
    for name in [method, *anchors]:
        values = sorted(h.picks[name].regret for h in held_out
                        if name in h.picks and h.picks[name].regret is not None)
        out["regret"][name] = {"n": len(values), "values": values,
                               "mean": sum(values) / len(values) if values else None,
                               "median": _quantile(values, 0.5), "p90": _quantile(values, 0.9)}
    for anchor in anchors:
        outcome = Counter()
        for h in held_out:
            a, b = h.picks.get(method), h.picks.get(anchor)
            if a and b and a.score is not None and b.score is not None:
                outcome[("losses", "ties", "wins")[beats(a, b, h.direction) + 1]] += 1
        out["against"][anchor] = {k: outcome[k] for k in ("wins", "ties", "losses")}
    return out


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    position = q * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def check_value(held_out: Sequence[HeldOut], method: str = "recommender") -> CheckResult:
    """Leave-one-dataset-out: does the recommender's first pick beat starting cold? It fails
    when an anchor beats it on significantly more datasets than it loses on (one-sided sign
    test, ties left out, p < ``SIGNIFICANCE``), and warns when its mean regret is only
    higher than an anchor's: a difference the datasets cannot tell from chance."""
    from scipy.stats import binomtest

    if not held_out:
        return CheckResult("value", WARN, "no dataset has enough scored configurations shared "
                                          "with the rest of the KB to hold out and replay")
    summary = value_summary(held_out, method)
    mine = summary["regret"][method]["mean"]
    if mine is None:
        return CheckResult("value", WARN, "the recommender's picks were never run on the held-out "
                                          "datasets, so they cannot be scored", data=summary)
    findings = []
    for anchor, record in summary["against"].items():
        theirs = summary["regret"][anchor]["mean"]
        decided = record["wins"] + record["losses"]
        p = binomtest(record["losses"], decided, 0.5, alternative="greater").pvalue if decided else 1.0
        record["p_worse"] = p
        if p < SIGNIFICANCE:
            findings.append(Finding(f"recommender vs {anchor}", f"loses on {record['losses']} "
                                    f"datasets and wins on {record['wins']} (sign test p = {p:.3f})"))
        elif theirs is not None and theirs < mine:
            findings.append(Finding(f"recommender vs {anchor}", f"mean regret {mine:.3f} is higher "
                                    f"than {theirs:.3f}, though not significantly (wins/ties/losses "
                                    f"{record['wins']}/{record['ties']}/{record['losses']}, p = {p:.2f})",
                                    WARN))
    parts = [f"{a} {r['wins']}/{r['ties']}/{r['losses']}" for a, r in summary["against"].items()]
    means = ", ".join(f"{a} {summary['regret'][a]['mean']:.3f}" for a in summary["against"]
                      if summary["regret"][a]["mean"] is not None)
    text = (f"first pick over {len(held_out)} held-out datasets, wins/ties/losses vs "
            + ", ".join(parts) + f"; mean regret {mine:.3f} ({means})")
    status = worst([f.severity for f in findings]) if findings else PASS
    return CheckResult("value", status, text, tuple(findings), summary)
