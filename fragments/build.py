"""Architectures and single fragments as torch modules and ONNX models.

``build(arch)`` gives the torch module of an architecture (random weights from ``seed``, eval
mode); ``to_onnx`` exports a module with the TorchScript exporter, as the search exports its
MLPs (``search.export``: opset ``ONNX_OPSET``, a dynamic batch axis), and ``parity_error``
compares the two on the same inputs. A model's inputs are named ``x0``, ``x1``, ... (several
only for an ``add`` fragment) and its output ``y``.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import networkx as nx
import numpy as np
import onnx

from fragments.blocks import Shape
from fragments.graph import FragmentInstance, architecture_graph, canonical_order, instances
from kb.schema import Architecture
from search.export import ONNX_OPSET

OUTPUT = "y"


def input_names(count: int) -> list[str]:
    return [f"x{i}" for i in range(count)]


def build(arch: nx.DiGraph | Architecture, *, seed: int = 0):
    """The torch module of ``arch`` (a graph or a stored record), in eval mode, its random
    weights drawn from ``seed``."""
    import torch

    from fragments.modules import GraphModule

    graph = architecture_graph(arch) if isinstance(arch, Architecture) else arch
    nodes = instances(graph)
    # The canonical order (a topological one) draws the weights, so a graph and its stored
    # record give the same network for a seed.
    order = canonical_order(graph, nodes)
    (output,) = (n for n in graph if graph.out_degree(n) == 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # Positions, not node names, index the modules: names may be anything hashable.
        position = {node: i for i, node in enumerate(order)}
        module = GraphModule({position[n]: nodes[n].block.module(nodes[n].in_shape) for n in order},
                             [position[n] for n in order],
                             {position[n]: [position[p] for p in graph.predecessors(n)] for n in order},
                             position[output])
    return module.eval()


def fragment_inputs(fragment: FragmentInstance) -> list[Shape]:
    """The input shapes a fragment alone takes: one, or one per summed input of an ``add``."""
    return [fragment.in_shape] * getattr(fragment.block, "inputs", 1)


def fragment_module(fragment: FragmentInstance, *, seed: int = 0):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fragment.block.module(fragment.in_shape).eval()


def to_onnx(module, input_shapes: Sequence[Shape]) -> onnx.ModelProto:
    """``module`` exported for inputs of ``input_shapes`` (batch excluded; any batch runs)."""
    import torch

    from metafeatures.threads import limit_threads

    names = input_names(len(input_shapes))
    example = tuple(torch.zeros(2, *shape) for shape in input_shapes)
    buffer = io.BytesIO()
    # Tracing runs the network once; on a machine others keep busy, torch's thread pool
    # waits on them and one small export takes seconds instead of tens of milliseconds.
    with warnings.catch_warnings(), torch.no_grad(), limit_threads(1, load=("torch",)):
        # The TorchScript exporter is deprecated in favour of one that needs onnxscript (see
        # search.export); it handles these networks fully.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, buffer, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=names, output_names=[OUTPUT],
                          dynamic_axes={n: {0: "N"} for n in [*names, OUTPUT]})
    return onnx.load_from_string(buffer.getvalue())


def identity_onnx(shape: Shape) -> onnx.ModelProto:
    """A model that returns its input: what a call costs when the model does nothing."""
    from onnx import TensorProto, helper

    tensor = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *shape])
              for name in ("x0", OUTPUT)]
    graph = helper.make_graph([helper.make_node("Identity", ["x0"], [OUTPUT])], "identity",
                              [tensor[0]], [tensor[1]])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])


def random_inputs(input_shapes: Sequence[Shape], batch: int, rng: np.random.Generator) -> dict:
    return {name: rng.standard_normal((batch, *shape)).astype(np.float32)
            for name, shape in zip(input_names(len(input_shapes)), input_shapes, strict=True)}


def torch_outputs(module, feed: dict[str, np.ndarray]) -> np.ndarray:
    import torch

    from metafeatures.threads import limit_threads

    with torch.no_grad(), limit_threads(1, load=("torch",)):
        return module(*(torch.from_numpy(feed[n]) for n in input_names(len(feed)))).numpy()


def relative_difference(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest difference relative to the largest expected value (at least 1), so deep
    networks with large activations compare as fairly as small ones."""
    return float(np.max(np.abs(actual - expected)) / max(1.0, float(np.max(np.abs(expected)))))


def parity_error(module, model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> float:
    """``relative_difference`` of ONNX Runtime's outputs from torch's on ``feed``."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return relative_difference(session.run([OUTPUT], feed)[0], torch_outputs(module, feed))
