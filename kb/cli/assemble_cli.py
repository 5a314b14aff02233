"""``kb fragments assemble``: new architectures of a space under a latency limit, from what
the KB knows (``fragments.assemble`` chooses; this module gathers its inputs and measures).
Attached to the ``fragments`` group."""

from __future__ import annotations

from dataclasses import dataclass

import click

from kb.cli.common import json_option, kb_option, open_kb, print_json, print_table

SPACE_NAMES = ("mlp", "cnn", "nb201")
SAMPLED_CANDIDATES = 2000  # members drawn from the mlp and cnn spaces (nb201: all 15,625)


@dataclass
class Candidates:
    """The members of a space considered, with their encodings."""

    names: list[str | None]
    arch_ids: list[str | None]  # None where the KB holds no row yet
    graphs: list  # DiGraph, or None where built only when wanted (nb201)
    fragment_lists: list[list[str]] | None  # mlp / cnn
    features: object
    feature_names: tuple[str, ...]


@dataclass
class LatencySource:
    kind: str  # "profile" (measurable here), "device" (samples), "recorded"
    description: str
    predicted_ms: object  # one per candidate, NaN where unknown
    profile: object = None


@click.command("assemble")
@click.option("--space", type=click.Choice(SPACE_NAMES), required=True,
              help="The architecture space to assemble from.")
@click.option("--hardware", "hardware_name", required=True, metavar="PROFILE",
              help="A profile of this machine (measured here), a device known by samples "
                   "(`kb latency fit`), or a hardware row with recorded latencies.")
@click.option("--max-latency-ms", "limit_ms", required=True, type=float,
              help="Latency limit (batch 1 where the hardware was measured so).")
@click.option("--dataset", default=None,
              help="Dataset whose trials say what each fragment contributes to the score "
                   "(default: cifar100 for nb201).")
@click.option("-k", "count", default=5, show_default=True, type=click.IntRange(1, 50),
              help="Candidates to propose (and, on a profile of this machine, measure).")
@click.option("--margin", default=0.05, show_default=True, type=click.FloatRange(0, 1),
              help="Predicted latency x (1 + margin) must fit the limit.")
@json_option
@kb_option
def assemble(space: str, hardware_name: str, limit_ms: float, dataset: str | None, count: int,
             margin: float, as_json: bool) -> None:
    """Propose new architectures whose fragments contributed most to score, under a latency limit.

    Each fragment's contribution to score is learned from the KB's trials of the space on
    the dataset (a recorded score is kept as it is); latency is predicted from fragment
    costs (a profile of this machine, after `kb fragments measure`), from a device's samples
    (`kb latency fit`) or read from recorded latencies. The best -k candidates that fit the
    limit are proposed; on a profile of this machine they are built, exported, measured end
    to end and written back (their costs then also refine later predictions), and the pick
    is the best one whose *measured* latency fits.

    \b
    Example:
      kb ingest ../shared/data/nb201 --format nb201
      kb fragments assemble --space nb201 --hardware pixel3 --max-latency-ms 12 -k 5
      kb fragments measure --hardware cpu-1t --space nb201
      kb fragments assemble --space nb201 --hardware cpu-1t --max-latency-ms 3 -k 3
    """
    import numpy as np

    from fragments.assemble import best_measured, predicted_scores, propose, score_contributions
    from kb.datasets import get as get_dataset
    from kb.errors import KBError

    if dataset is None and space != "nb201":
        raise KBError(f"say which dataset's trials to learn from: --dataset NAME (for {space})")
    kb = open_kb()
    record = get_dataset(kb, dataset or "cifar100")
    candidates = space_candidates(kb, space)
    latency = latency_source(kb, hardware_name, space, candidates)
    trained_on, trained_scores, recorded, metric = score_training(kb, record.dataset_id, space, candidates)
    contributions = score_contributions(trained_on, trained_scores)
    scores = predicted_scores(candidates.features, contributions, recorded)
    known = np.isfinite(latency.predicted_ms)
    chosen = propose(np.where(known, scores, -np.inf), np.where(known, latency.predicted_ms, np.inf),
                     limit_ms, count, margin=margin)
    if not len(chosen):
        raise KBError(f"no {space} architecture is predicted to fit {limit_ms:g} ms on {hardware_name} "
                      f"(with a {100 * margin:g} % margin); the fastest is predicted at "
                      f"{np.nanmin(latency.predicted_ms):.3g} ms")
    archs, graphs = architectures_of(candidates, chosen)
    if latency.kind == "profile":
        measured = measure_candidates(kb, latency.profile, space, archs, graphs)
    else:
        kb.append("architectures", archs, on_conflict="keep")
        # Recorded latencies are measurements; a device's samples-based ones are not.
        measured = ({a.arch_id: float(latency.predicted_ms[i]) for i, a in zip(chosen, archs)}
                    if latency.kind == "recorded" else {})
    pick = best_measured({i: measured[a.arch_id] for i, a in zip(chosen, archs) if a.arch_id in measured},
                         scores, limit_ms)
    result = {
        "space": space, "hardware": hardware_name, "latency_from": latency.description,
        "limit_ms": limit_ms, "dataset": record.name, "metric": metric,
        "pick": None if pick is None else archs[list(chosen).index(pick)].arch_id,
        "candidates": [{"rank": r + 1, "arch_id": a.arch_id, "name": a.name,
                        "score": float(scores[i]), "score_recorded": int(i) in recorded,
                        "predicted_ms": float(latency.predicted_ms[i]),
                        "measured_ms": measured.get(a.arch_id)}
                       for r, (i, a) in enumerate(zip(chosen, archs))],
    }
    if as_json:
        print_json(result)
        return
    click.echo(f"{space} on {hardware_name} under {limit_ms:g} ms ({latency.description}); "
               f"{metric} on {record.name}")
    print_table(result["candidates"], ["rank", "arch_id", "name", "score", "score_recorded",
                                       "predicted_ms", "measured_ms"])
    if latency.kind != "device":
        click.echo(f"pick: {result['pick']}" if pick is not None else
                   "none of the candidates measured under the limit; try a larger -k or --margin")
    else:
        click.echo(f"measure these on {hardware_name} and add them with `kb latency fit --device "
                   f"{hardware_name} --samples FILE.csv` (columns arch, latency_ms)")


def space_candidates(kb, space: str) -> Candidates:
    import itertools
    import json

    import numpy as np

    from fragments.graph import NB201_SOURCE, architecture_records, fragment_records
    from fragments.nb201 import EDGES, OPS, format_nb201
    from fragments.spaces import SPACES
    from fragments.transfer import fragment_count_encoding, nb201_encoding

    if space == "nb201":
        cells = [format_nb201((to, frm, op) for (to, frm), op in zip(EDGES, ops))
                 for ops in itertools.product(OPS, repeat=len(EDGES))]
        stored = {r["name"]: r["arch_id"] for r in kb.query(
            "SELECT name, arch_id FROM architectures WHERE source = ?", [NB201_SOURCE]).to_pylist()}
        features, names = nb201_encoding(cells)
        return Candidates(cells, [stored.get(c) for c in cells], [None] * len(cells), None,
                          features, names)
    graphs = SPACES[space].samples(SAMPLED_CANDIDATES, np.random.default_rng(0))
    archs = architecture_records(graphs, source="metakb assemble")
    fragment_lists = [json.loads(a.fragments) for a in archs]
    vocabulary = [f.fragment_id for f in fragment_records(SPACES[space].fragments())]
    features, names = fragment_count_encoding(fragment_lists, vocabulary)
    return Candidates([a.name for a in archs], [a.arch_id for a in archs], graphs, fragment_lists,
                      features, names)


def score_training(kb, dataset_id: str, space: str, candidates: Candidates):
    """What the KB's trials of the space on the dataset say: (encodings, mean scores) of every
    scored architecture of the space, {candidate index: recorded score}, and the metric
    (the most common one but latency)."""
    import json

    import numpy as np

    from fragments.graph import NB201_SOURCE
    from fragments.transfer import fragment_count_encoding, nb201_encoding
    from kb.errors import KBError

    rows = kb.query("SELECT t.arch_id, t.metric, avg(t.score) AS score, any_value(a.name) AS name, "
                    "any_value(a.source) AS source, any_value(CASE WHEN a.source = ? THEN NULL "
                    "ELSE a.fragments END) AS fragments FROM trials t JOIN architectures a USING (arch_id) "
                    "WHERE t.dataset_id = ? AND t.status = 'ok' AND t.metric <> 'latency_ms' "
                    "AND t.score IS NOT NULL GROUP BY 1, 2", [NB201_SOURCE, dataset_id],
                    output="pandas")
    rows = rows[(rows["source"] == NB201_SOURCE) == (space == "nb201")]
    if space == "nb201":
        features = nb201_encoding(list(rows["name"]))[0] if len(rows) else np.empty((0, 0))
    else:
        features = fragment_count_encoding([json.loads(f) for f in rows["fragments"]],
                                           candidates.feature_names[:-1])[0]
    in_space = np.isfinite(features).all(axis=1) if len(rows) else np.array([], bool)
    rows, features = rows[in_space], features[in_space]
    if rows.empty:
        raise KBError("the KB has no scored trials of this space's architectures on that dataset, "
                      "so nothing to learn fragment contributions from; train some first")
    metric = rows["metric"].value_counts().index[0]
    keep = (rows["metric"] == metric).to_numpy()
    rows, features = rows[keep], features[keep]
    index = {a: i for i, a in enumerate(candidates.arch_ids) if a is not None}
    recorded = {index[a]: float(s) for a, s in zip(rows["arch_id"], rows["score"]) if a in index}
    return features, rows["score"].to_numpy(float), recorded, metric


def latency_source(kb, name: str, space: str, candidates: Candidates) -> LatencySource:
    import numpy as np

    from kb.errors import KBError
    from search.profiles import all_profiles

    profiles = all_profiles(kb.root)
    if name in profiles:
        return _profile_latency(kb, profiles[name], space, candidates)
    from fragments import device_latency

    try:
        fitted = device_latency.fit(kb, name)
    except KBError:
        fitted = None
    if fitted is not None:
        predicted = fitted.model.predict(_encode_like(fitted.space, candidates))
        return LatencySource("device", f"predicted from {len(fitted.sample_ids)} samples and "
                             f"{fitted.prior.n_devices} known devices", predicted)
    rows = kb.query("SELECT t.arch_id, median(coalesce(t.latency_p50_ms, t.latency_batch_p50_ms)) AS ms "
                    "FROM trials t JOIN hardware h USING (hardware_id) WHERE h.name = ? AND "
                    "t.arch_id IS NOT NULL GROUP BY 1", [name]).to_pylist()
    recorded = {r["arch_id"]: r["ms"] for r in rows if r["ms"] is not None}
    if not recorded:
        raise KBError(f"{name!r} is no hardware profile ({', '.join(profiles)}), no device with "
                      f"samples and no hardware with recorded latencies of {space} architectures")
    predicted = np.array([recorded.get(a, np.nan) for a in candidates.arch_ids], float)
    return LatencySource("recorded", f"recorded latencies of {len(recorded)} architectures", predicted)


def _encode_like(space, candidates: Candidates):
    """The candidates in a fitted device's encoding (a fragment it never saw: unknown)."""
    from fragments.transfer import fragment_count_encoding, nb201_encoding

    if space.nb201:
        return nb201_encoding(candidates.names)[0]
    return fragment_count_encoding(candidates.fragment_lists, space.feature_names[:-1])[0]


def _profile_latency(kb, profile, space: str, candidates: Candidates) -> LatencySource:
    import json

    import numpy as np

    from fragments.costs import load_costs
    from fragments.graph import nb201_architecture
    from fragments.latency import fit_correction, predict
    from kb.errors import KBError
    from kb.keys import canonical_json
    from search.hardware import detect_machine, hardware_record

    hardware_id = hardware_record(detect_machine(), profile).hardware_id
    table = load_costs(kb, hardware_id)
    if not table.costs:
        raise KBError(f"no fragment costs on {profile.name} here; run `kb fragments measure "
                      f"--hardware {profile.name} --space {space}` first")
    correction = fit_correction(table)
    if space == "nb201":
        # Cells differ only in their six edges' operations and the composition is linear in
        # fragment counts, so one network per operation gives every cell exactly: the
        # all-none network plus, per edge, a sixth of (all-op network - all-none network).
        from fragments.nb201 import EDGES, OPS, format_nb201

        base = {op: nb201_architecture(format_nb201((to, frm, op) for to, frm in EDGES)) for op in OPS}
        shape = canonical_json(json.loads(base[OPS[0]].graph)["graph"]["input_shape"])
        whole = {op: predict(json.loads(a.fragments), shape, table, correction).p50_ms
                 for op, a in base.items()}
        per_edge = {op: (whole[op] - whole["none"]) / len(EDGES) for op in OPS}
        predicted = np.array([whole["none"] + sum(per_edge[op] for op in _ops(c))
                              for c in candidates.names])
    else:
        shape = canonical_json(list(candidates.graphs[0].graph["input_shape"]))
        predicted = np.array([predict(f, shape, table, correction).p50_ms if not table.missing(f)
                              else np.nan for f in candidates.fragment_lists])
    return LatencySource("profile", f"fragment costs on {profile.name}, corrected by "
                         f"{correction.n_networks} measured networks", predicted, profile)


def _ops(cell: str) -> list[str]:
    from fragments.nb201 import parse_nb201

    return [op for _, _, op in parse_nb201(cell)]


def architectures_of(candidates: Candidates, chosen) -> tuple[list, list]:
    """The architecture rows and graphs of the chosen candidates (nb201: built now)."""
    from fragments.graph import architecture_graph, architecture_records, nb201_architecture

    archs, graphs = [], []
    for i in chosen:
        if candidates.graphs[i] is None:
            arch = nb201_architecture(candidates.names[i])
            archs.append(arch)
            graphs.append(architecture_graph(arch))
        else:
            graphs.append(candidates.graphs[i])
            archs.append(architecture_records([candidates.graphs[i]], source="metakb assemble")[0])
    return archs, graphs


def measure_candidates(kb, profile, space: str, archs: list, graphs: list) -> dict[str, float]:
    """Build, export and time the candidates end to end on ``profile``; their costs are
    written back (as calibration networks). {arch_id: measured p50 ms}."""
    from fragments.costs import load_costs, measure_costs
    from fragments.spaces import SPACES
    from kb.keys import canonical_json

    summary = measure_costs(kb, profile, [], input_shape=SPACES[space].input_shape, networks=graphs)
    table = load_costs(kb, summary.hardware_id)
    wanted = {a.arch_id for a in archs}
    overhead = table.overhead(canonical_json(list(SPACES[space].input_shape)))
    return {n.arch_id: n.net_ms + overhead for n in table.networks if n.arch_id in wanted}
