"""What the recommender reads from the KB: the scored trials as normalized outcomes, what
configurations cost on a hardware row, and the stored configurations themselves.

A trial counts as evidence of a score when it ran at full fidelity and was scored: ``ok``, or
``infeasible`` only under some search's own limits (``limit:``, see search/constraints.py),
whose measurements are as good as an ok trial's. Trials of one configuration on one dataset
and metric (seeds, hardware) are averaged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from kb.recommend.ranking import Outcomes, normalize

SCORED = """fidelity = 1 AND score IS NOT NULL
            AND (status = 'ok' OR (status = 'infeasible' AND starts_with(failure_reason, ?)))"""


def read_outcomes(kb, *, exclude: Sequence[str] = (), families: Iterable[str] | None = None) -> Outcomes:
    from search.constraints import LIMIT_PREFIX

    family_filter, params = "", [LIMIT_PREFIX, list(exclude)]
    if families is not None:
        family_filter = "AND list_contains(?, model_family)"
        params.append(sorted(families))
    rows = kb.query(f"""
        SELECT dataset_id, metric, any_value(direction) AS direction, config_id,
               avg(score) AS score, min(trial_id) AS trial_id
        FROM trials
        WHERE {SCORED} AND NOT list_contains(?, dataset_id) {family_filter}
        GROUP BY dataset_id, metric, config_id""", params)
    columns = {name: rows.column(name).to_numpy(zero_copy_only=False) for name in rows.column_names}
    return normalize(columns["dataset_id"], columns["metric"], columns["direction"],
                     columns["config_id"], columns["score"], columns["trial_id"])


def cost_hardware(kb, hardware_id: str) -> list[str]:
    """The hardware rows whose measurements stand for ``hardware_id``'s: the row itself where
    it holds any measured trial; otherwise every row of the same profile name and kind (the
    same way of running a model, on other machines: the ranking of costs carries over even
    where their values do not), so a fresh install is not blind to what the KB measured."""
    measured = kb.query("SELECT 1 FROM trials WHERE hardware_id = ? AND latency_p50_ms IS NOT NULL "
                        "LIMIT 1", [hardware_id]).num_rows
    if measured:
        return [hardware_id]
    rows = kb.query("""SELECT other.hardware_id FROM hardware own JOIN hardware other
                       ON other.name = own.name AND other.kind = own.kind
                       WHERE own.hardware_id = ? ORDER BY other.hardware_id""", [hardware_id]).to_pylist()
    return [r["hardware_id"] for r in rows] or [hardware_id]


def read_costs(kb, hardware_id: str, config_ids: Sequence[str],
               exclude: Sequence[str] = ()) -> dict[str, list[tuple[str, float | None, float | None]]]:
    """Median latency (ms, p50 at batch 1) and peak memory (MB) of configurations on a
    hardware row (or the rows that stand for it, ``cost_hardware``), per dataset they ran
    on: {config_id: [(dataset_id, latency, memory)]}."""
    rows = kb.query("""
        SELECT config_id, dataset_id, median(latency_p50_ms) AS latency, median(peak_memory_mb) AS memory
        FROM trials
        WHERE list_contains(?, hardware_id) AND fidelity = 1 AND status IN ('ok', 'infeasible')
          AND list_contains(?, config_id) AND NOT list_contains(?, dataset_id)
          AND (latency_p50_ms IS NOT NULL OR peak_memory_mb IS NOT NULL)
        GROUP BY config_id, dataset_id ORDER BY config_id, dataset_id""",
                    [cost_hardware(kb, hardware_id), list(config_ids), list(exclude)]).to_pylist()
    by_config: dict[str, list] = {}
    for row in rows:
        by_config.setdefault(row["config_id"], []).append((row["dataset_id"], row["latency"], row["memory"]))
    return by_config


def read_configs(kb, config_ids: Sequence[str]) -> dict[str, tuple[dict, str]]:
    """{config_id: (configuration, model family)}."""
    rows = kb.query("""SELECT config_id, any_value(config) AS config, any_value(model_family) AS family
                       FROM trials WHERE list_contains(?, config_id) GROUP BY config_id""",
                    [list(config_ids)]).to_pylist()
    return {r["config_id"]: (json.loads(r["config"]), r["family"]) for r in rows}


def dataset_names(kb, dataset_ids: Iterable[str]) -> dict[str, str]:
    rows = kb.query("SELECT dataset_id, name FROM datasets WHERE list_contains(?, dataset_id)",
                    [sorted(set(dataset_ids))]).to_pylist()
    return {r["dataset_id"]: r["name"] for r in rows}
