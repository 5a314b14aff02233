"""The ``coverage`` check: where the KB holds no known success (datasets, tasks, hardware
profiles, and regions of a grid over task, rows and features)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from kb.audit.successes import KnownSuccess
from kb.audit.verdict import FAIL, PASS, WARN, CheckResult, Finding
from kb.schema import Dataset

# The region grid: decades of rows and features, per task.
ROW_EDGES = (1_000, 10_000, 100_000)
FEATURE_EDGES = (10, 100)


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
