"""Architecture spaces: the fragments a family of networks is built from, and random members.

``SPACES`` names them: ``mlp`` (tabular chains of 1-4 hidden blocks, 32 input features),
``cnn`` (a stem, three stages of 1-2 blocks at 16/32/64 channels joined by a reduction, a
classifier head; CIFAR-sized input) and ``nb201`` (NAS-Bench-201's networks). A space's
``fragments()`` lists every fragment instance its networks can contain, so measuring those
gives the cost of any member; ``sample(rng)`` draws a member as a fragment graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import numpy as np

from fragments import blocks as b
from fragments.graph import FragmentInstance, chain, instances, nb201_network, node_link
from fragments.nb201 import EDGES, OPS, format_nb201
from kb.keys import canonical_json

MLP_INPUT = (32,)
MLP_WIDTHS = (64, 128, 256)
MLP_CLASSES = 2
CNN_INPUT = (3, 32, 32)
CNN_WIDTHS = (16, 32, 64)
CLASSES = 10


def _mlp_hidden(width_in: int) -> list[b.Block]:
    """The blocks that may follow a layer of ``width_in`` features."""
    options: list[b.Block] = [cls(out=w) for cls in (b.LinearAct, b.LinearNormActDropout)
                              for w in MLP_WIDTHS]
    if width_in in MLP_WIDTHS:
        options.append(b.ResidualMLP(hidden=2 * width_in))
    return options


def _sample_mlp(rng: np.random.Generator) -> nx.DiGraph:
    layers, width = [], MLP_INPUT[0]
    for _ in range(rng.integers(1, 5)):
        options = _mlp_hidden(width)
        block = options[rng.integers(len(options))]
        layers.append(block)
        width = block.out_shape((width,))[0]
    return chain([*layers, b.MLPHead(out=MLP_CLASSES)], MLP_INPUT)


def _mlp_fragments() -> list[FragmentInstance]:
    out = [FragmentInstance(block, (w,)) for w in (MLP_INPUT[0], *MLP_WIDTHS)
           for block in _mlp_hidden(w)]
    return out + [FragmentInstance(b.MLPHead(out=MLP_CLASSES), (w,)) for w in MLP_WIDTHS]


def _cnn_stage_blocks(width: int) -> list[b.Block]:
    """Blocks that keep a stage's width and size."""
    return [*(b.ConvBnRelu(out=width, kernel=k) for k in (1, 3, 5)),
            *(b.DepthwiseSeparable(out=width, kernel=k) for k in (3, 5)),
            b.MBConv(out=width, kernel=3, expand=3), b.MBConv(out=width, kernel=3, expand=6),
            b.MBConv(out=width, kernel=5, expand=6)]


def _cnn_reductions(width: int) -> list[tuple[b.Block, ...]]:
    """Ways from one stage to the next: half the size, ``width`` channels."""
    return [(b.ConvBnRelu(out=width, kernel=3, stride=2),),
            (b.DepthwiseSeparable(out=width, kernel=3, stride=2),),
            (b.MBConv(out=width, kernel=3, stride=2, expand=6),),
            (b.Pool(op="max", kernel=2, stride=2), b.ConvBnRelu(out=width, kernel=1))]


def _cnn_stem() -> b.Block:
    return b.ConvBnRelu(out=CNN_WIDTHS[0], kernel=3)


def _sample_cnn(rng: np.random.Generator) -> nx.DiGraph:
    layers = [_cnn_stem()]
    for stage, width in enumerate(CNN_WIDTHS):
        if stage:
            reductions = _cnn_reductions(width)
            layers.extend(reductions[rng.integers(len(reductions))])
        options = _cnn_stage_blocks(width)
        layers.extend(options[i] for i in rng.integers(len(options), size=rng.integers(1, 3)))
    return chain([*layers, b.CNNHead(classes=CLASSES)], CNN_INPUT)


def _cnn_fragments() -> list[FragmentInstance]:
    # Every stage block and reduction occurs in some network: the union of those networks'
    # fragments is the space's.
    networks = []
    for i in range(max(len(_cnn_stage_blocks(1)), len(_cnn_reductions(1)))):
        layers = [_cnn_stem()]
        for stage, width in enumerate(CNN_WIDTHS):
            if stage:
                reductions = _cnn_reductions(width)
                layers.extend(reductions[i % len(reductions)])
            stage_blocks = _cnn_stage_blocks(width)
            layers.append(stage_blocks[i % len(stage_blocks)])
        networks.append(chain([*layers, b.CNNHead(classes=CLASSES)], CNN_INPUT))
    return _union(networks)


def _sample_nb201(rng: np.random.Generator) -> nx.DiGraph:
    return nb201_network(sample_nb201_string(rng))


def sample_nb201_string(rng: np.random.Generator) -> str:
    return format_nb201((to, frm, OPS[rng.integers(len(OPS))]) for to, frm in EDGES)


def _nb201_fragments() -> list[FragmentInstance]:
    return _union([nb201_network(format_nb201((to, frm, op) for to, frm in EDGES)) for op in OPS])


def _union(networks: list[nx.DiGraph]) -> list[FragmentInstance]:
    return list({f.key: f for g in networks for f in instances(g).values()}.values())


@dataclass(frozen=True)
class Space:
    name: str
    input_shape: tuple[int, ...]
    description: str
    _fragments: Callable[[], list[FragmentInstance]]
    _sample: Callable[[np.random.Generator], nx.DiGraph]

    def fragments(self) -> list[FragmentInstance]:
        return self._fragments()

    def sample(self, rng: np.random.Generator) -> nx.DiGraph:
        return self._sample(rng)

    def samples(self, count: int, rng: np.random.Generator) -> list[nx.DiGraph]:
        """``count`` different members (no two with one canonical graph), drawn with ``rng``."""
        seen, out = set(), []
        for _ in range(100 * count):
            if len(out) == count:
                break
            graph = self._sample(rng)
            key = canonical_json(node_link(graph))
            if key not in seen:
                seen.add(key)
                out.append(graph)
        return out


SPACES: dict[str, Space] = {
    s.name: s
    for s in (
        Space("mlp", MLP_INPUT, "tabular MLP chains: 1-4 hidden blocks, 32 features in",
              _mlp_fragments, _sample_mlp),
        Space("cnn", CNN_INPUT, "small CNNs: stem, 3 stages of 1-2 blocks, 32x32 RGB in",
              _cnn_fragments, _sample_cnn),
        Space("nb201", CNN_INPUT, "NAS-Bench-201 networks (C=16, N=5, CIFAR-10)",
              _nb201_fragments, _sample_nb201),
    )
}
