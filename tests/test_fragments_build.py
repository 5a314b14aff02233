"""Architectures build to torch modules that export to ONNX and compute the same outputs."""

from __future__ import annotations

import numpy as np
import pytest

from fragments.build import build, random_inputs, parity_error, to_onnx
from fragments.graph import architecture_record, nb201_network
from fragments.spaces import SPACES

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def networks():
    rng = np.random.default_rng(3)
    yield "mlp", SPACES["mlp"].sample(rng)
    yield "cnn", SPACES["cnn"].sample(rng)
    yield "nb201", nb201_network(EXAMPLE, cells_per_stage=2)


@pytest.mark.parametrize("name, graph", list(networks()), ids=lambda v: v if isinstance(v, str) else "")
def test_network_exports_to_onnx_with_parity_at_any_batch(name, graph):
    module = build(graph)
    model = to_onnx(module, [graph.graph["input_shape"]])
    rng = np.random.default_rng(0)
    for batch in (1, 5):
        assert parity_error(module, model, random_inputs([graph.graph["input_shape"]], batch, rng)) < 1e-5


def test_stored_record_builds_the_same_network():
    graph = nb201_network(EXAMPLE, cells_per_stage=1)
    feed = random_inputs([(3, 32, 32)], 2, np.random.default_rng(1))
    from fragments.build import torch_outputs

    from_graph = torch_outputs(build(graph, seed=4), feed)
    from_record = torch_outputs(build(architecture_record(graph), seed=4), feed)
    other_seed = torch_outputs(build(graph, seed=5), feed)
    np.testing.assert_allclose(from_record, from_graph, rtol=1e-6)
    assert not np.allclose(other_seed, from_graph)
