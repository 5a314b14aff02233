"""A network's latency predicted before it is trained, from its fragments' measured costs.

A search with a latency limit asks this for every MLP candidate: the network is built as a
fragment graph (``search.torch_mlp.mlp_architecture``) for the dataset's input width after
preprocessing, the fragments the KB has no cost for on this hardware are measured (one short
process, far cheaper than training), and ``fragments.latency`` composes the prediction. The
prediction covers the network alone, not the preprocessing in front of it, so a model
predicted over the limit cannot meet it: that candidate is recorded as
``infeasible-predicted`` and never trained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from kb.datasets import LoadedDataset
from kb.keys import canonical_json
from kb.meta import code_version
from kb.schema import Architecture, Trial
from kb.validation import with_keys
from search.constraints import LIMIT_PREFIX
from search.profiles import Profile

PREDICTED = "infeasible-predicted"


@dataclass(frozen=True)
class PredictedLatency:
    p50_ms: float
    architecture: Architecture
    rows: tuple  # the Architecture and Fragment rows, for the KB


def input_width(dataset: LoadedDataset, config: dict) -> int:
    """How many numbers the network receives once ``config``'s preprocessing has run."""
    from search.preprocess import build_preprocessor, feature_layout

    X = dataset.X
    layout = feature_layout(X)
    preprocess = build_preprocessor(layout, imputation=config["imputation"],
                                    scaling=config["scaling"], encoding=config["encoding"])
    return int(preprocess.fit_transform(layout.model_frame(X)).shape[1])


def predict_mlp_latency(kb, dataset: LoadedDataset, config: dict, profile: Profile,
                        hardware_id: str) -> PredictedLatency:
    """The batch-1 p50 of ``config``'s network on ``profile``, measuring missing fragments."""
    from fragments.costs import load_costs, measure_costs
    from fragments.graph import architecture_record, fragment_records, instances
    from fragments.latency import fit_correction, predict
    from search.torch_mlp import mlp_architecture

    n_in = input_width(dataset, config)
    n_classes = dataset.record.n_classes
    graph = mlp_architecture(n_in, n_classes if n_classes else 1, config["n_layers"],
                             config["width"])
    nodes = list(instances(graph).values())
    architecture = architecture_record(graph, source="metakb")
    fragment_ids = json.loads(architecture.fragments)
    table = load_costs(kb, hardware_id)
    if table.missing(fragment_ids) or not table.overhead_ms:
        measure_costs(kb, profile, nodes, input_shape=(n_in,))
        table = load_costs(kb, hardware_id)
    prediction = predict(fragment_ids, canonical_json([n_in]), table, fit_correction(table))
    return PredictedLatency(prediction.p50_ms, architecture,
                            (architecture, *fragment_records(nodes)))


def predicted_infeasible_trial(*, dataset: LoadedDataset, config: dict, metric, seed: int,
                               fidelity: float, hardware_id: str, run_id: str,
                               predicted: PredictedLatency, limit_ms: float) -> Trial:
    """The record of a candidate not trained because its predicted latency breaks the limit."""
    now = datetime.now(timezone.utc)
    return with_keys(Trial(
        dataset_id=dataset.record.dataset_id, hardware_id=hardware_id,
        config=canonical_json(config), model_family=config["family"], metric=metric.name,
        direction=metric.direction, status=PREDICTED, source="metakb", seed=seed,
        fidelity=fidelity, run_id=run_id, arch_id=predicted.architecture.arch_id,
        failure_reason=(f"{LIMIT_PREFIX} predicted latency p50 {predicted.p50_ms:.3g} ms > "
                        f"{limit_ms:g} ms from its fragments' costs (the network alone); "
                        f"not trained"),
        details=canonical_json({"predicted_latency_p50_ms": predicted.p50_ms}),
        code_version=code_version(), started_at=now, finished_at=now))
