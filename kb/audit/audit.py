"""``audit``: read what the checks need from the KB, run them, and keep what the report shows.

Re-running successes trains models, which ``kb`` does not do: the caller (``kb audit``)
re-runs them with ``search.reproduce`` and hands the re-runs in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from kb.audit.coverage import check_coverage
from kb.audit.provenance import Identity, check_complete, check_current
from kb.audit.replay import Replay, replay_all, search_pairs
from kb.audit.reproducibility import Rerun, check_reproducible
from kb.audit.successes import KnownSuccess
from kb.audit.value import check_value
from kb.audit.verdict import CheckResult, worst
from kb.schema import TASKS, Dataset


@dataclass(frozen=True)
class MapPoint:
    """A dataset on the coverage map: its first two principal components of meta-features."""

    name: str
    task: str
    x: float
    y: float
    has_success: bool


@dataclass(frozen=True)
class AuditReport:
    successes: tuple[KnownSuccess, ...]
    checks: tuple[CheckResult, ...]
    replays: tuple[Replay, ...] = ()
    coverage_map: tuple[MapPoint, ...] = ()
    search_pairs: tuple = ()  # SearchPair: warm and cold searches the KB ran on one dataset
    trials_by_hardware: Mapping = field(default_factory=dict)  # for the Pareto fronts

    @property
    def status(self) -> str:
        return worst([c.status for c in self.checks])

    def to_json(self) -> dict:
        return {"status": self.status, "checks": [c.to_json() for c in self.checks],
                "successes": [success_json(s) for s in self.successes],
                "coverage_map": [p.__dict__ for p in self.coverage_map]}


def success_json(success: KnownSuccess) -> dict:
    t = success.trial
    return {"success": success.name, "trial_id": t.trial_id, "dataset_id": t.dataset_id,
            "hardware_id": t.hardware_id, "model_family": t.model_family, "metric": t.metric,
            "direction": t.direction, "score": t.score, "score_std": t.score_std,
            "latency_p50_ms": t.latency_p50_ms, "peak_memory_mb": t.peak_memory_mb,
            "model_bytes": t.model_bytes, "source": t.source, "config": json.loads(t.config),
            "runner_up": success.runner_up, "lead": success.lead,
            "feasible_trials": success.feasible_trials}


def audit(kb, successes: Sequence[KnownSuccess], *, profiles: Sequence[str],
          family_defaults: Mapping[tuple[str, str], str], code_version: str,
          libraries: Mapping[str, str], reruns: Sequence[Rerun] = (), rerun_asked: int = 0,
          rerunnable: int = 0, hardware_ids: Sequence[str] | None = None,
          on_step: Callable[[str], None] = lambda step: None) -> AuditReport:
    """Every check over ``successes`` (``known_successes(kb)``). ``profiles``: the hardware
    profile names this KB is used with; ``family_defaults``: (task, family) -> config id of
    that family's default; ``code_version`` / ``libraries``: this installation's;
    ``hardware_ids``: the rows the successes were chosen from (None: all)."""
    datasets = [Dataset(**r) for r in kb.query("SELECT * FROM datasets ORDER BY name").to_pylist()]
    on_step("complete: re-hashing ids and data files")
    checks = [check_complete(successes, identities(kb, successes)),
              check_current(successes, code_version, libraries),
              check_reproducible(reruns, rerun_asked, rerunnable)]
    on_step("coverage")
    on_rows = "" if hardware_ids is None else "WHERE list_contains(?, hardware_id)"
    tried = {r["dataset_id"]: r["n"] for r in kb.query(
        f"SELECT dataset_id, count(*) AS n FROM trials {on_rows} GROUP BY dataset_id",
        [] if hardware_ids is None else [list(hardware_ids)]).to_pylist()}
    checks.append(check_coverage(successes, datasets, tried, profiles, TASKS))
    on_step("value: leave-one-dataset-out")
    with_data = [d for d in datasets if d.data_file is not None
                 and any(s.trial.dataset_id == d.dataset_id for s in successes)]
    replays = replay_all(kb, with_data, family_defaults,
                         on_dataset=lambda name: on_step(f"value: without {name}"))
    checks.append(check_value([r.held_out for r in replays]))
    return AuditReport(tuple(successes), tuple(checks), tuple(replays),
                       tuple(coverage_map(kb, {s.trial.dataset_id for s in successes})),
                       tuple(search_pairs(kb)), trials_by_hardware(kb, successes))


def identities(kb, successes: Sequence[KnownSuccess]) -> list[Identity]:
    """Each success's ids recomputed from its content, and its data file's hash."""
    from kb.keys import canonical_json
    from kb.validation import derived_id

    hashes: dict[str, tuple[str | None, str | None]] = {}
    out = []
    for success in successes:
        t = success.trial
        config = canonical_json(json.loads(t.config))
        trial_id = derived_id("trials", "trial_id", dataset_id=t.dataset_id, config=config,
                              metric=t.metric, seed=t.seed, fidelity=t.fidelity,
                              hardware_id=t.hardware_id)
        config_id = derived_id("trials", "config_id", config=config)
        if t.dataset_id not in hashes:
            hashes[t.dataset_id] = _data_hash(kb, success.dataset)
        data_hash, problem = hashes[t.dataset_id]
        out.append(Identity(trial_id, config_id, data_hash, problem))
    return out


def _data_hash(kb, dataset: Dataset | None) -> tuple[str | None, str | None]:
    from kb.datasets import fingerprint, read_data_file
    from kb.errors import first_line

    if dataset is None or dataset.data_file is None:
        return None, None
    path = kb.root / dataset.data_file
    if not path.is_file():
        return None, f"the dataset's data file is missing ({path})"
    try:
        return fingerprint(read_data_file(path), dataset.target), None
    except Exception as e:  # damaged: the claim's data can no longer be checked
        return None, f"the dataset's data file is unreadable ({first_line(e)})"


def coverage_map(kb, succeeded: set[str]) -> list[MapPoint]:
    """The KB's datasets placed by the first two principal components of their scaled
    meta-features (features a dataset lacks count as the KB's median)."""
    from kb.metafeature_store import stored_vectors
    from metafeatures.similarity import fit_scaling, signed_log

    vectors = stored_vectors(kb).vectors
    if len(vectors) < 3:
        return []
    scaling = fit_scaling(vectors)
    ids = sorted(vectors)
    raw = np.array([[vectors[d].get(f, np.nan) for f in scaling.features] for d in ids], dtype=float)
    raw[~np.isfinite(raw)] = np.nan
    scaled = (signed_log(raw) - scaling.centre) / scaling.spread
    scaled = np.where(np.isfinite(scaled), scaled, 0.0)
    scaled = scaled[:, scaled.std(axis=0) > 0]
    if scaled.shape[1] < 2:
        return []
    centred = scaled - scaled.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ components[:2].T
    records = {r["dataset_id"]: r for r in kb.query(
        "SELECT dataset_id, name, task FROM datasets").to_pylist()}
    return [MapPoint(records[d]["name"], records[d]["task"], float(x), float(y), d in succeeded)
            for d, (x, y) in zip(ids, xy) if d in records]


def trials_by_hardware(kb, successes: Sequence[KnownSuccess]) -> dict:
    """{hardware row label: {problem label: [(latency ms, score, is the success)]}} with each
    problem's metric direction, for the score-latency Pareto fronts: the scored, measured
    trials on each hardware row that holds a success."""
    ids = sorted({s.trial.trial_id for s in successes})
    rows = kb.query("""
        SELECT t.hardware_id, h.name AS hardware, h.cpu_model, h.runtime_version,
               d.name AS dataset, t.metric, t.direction, t.latency_p50_ms AS latency, t.score,
               list_contains(?, t.trial_id) AS success
        FROM trials t JOIN hardware h USING (hardware_id) JOIN datasets d USING (dataset_id)
        WHERE t.status = 'ok' AND t.fidelity = 1 AND t.score IS NOT NULL
          AND t.latency_p50_ms > 0
        ORDER BY h.name, t.hardware_id, d.name, t.latency_p50_ms""", [ids]).to_pylist()
    out: dict = {}
    for r in rows:
        machine = ", ".join(str(v) for v in (r["cpu_model"], r["runtime_version"] and
                                             f"onnxruntime {r['runtime_version']}") if v)
        hardware = f"{r['hardware']} ({machine}; {r['hardware_id'][:8]})"
        problem = out.setdefault(hardware, {}).setdefault(
            f"{r['dataset']} ({r['metric']})", {"direction": r["direction"], "points": []})
        problem["points"].append((r["latency"], r["score"], bool(r["success"])))
    return out
