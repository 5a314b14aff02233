"""Architectures as NetworkX graphs of fragments, and their canonical stored form.

An architecture is a ``networkx.DiGraph`` whose nodes carry a ``block`` (a
``fragments.blocks.Block``) and whose graph attribute ``input_shape`` is the network's input
shape without the batch. An edge u -> v feeds u's output to v. A node without predecessors
takes the network input; a node with several predecessors must be an ``add`` block (with
``inputs`` equal to their number), which sums them; exactly one node has no successors: the
output. A chain (``chain(blocks, input_shape)``) is the special case of a path.

What callers can rely on:

- ``architecture_record(graph)`` gives the ``kb.schema.Architecture`` row with its ids
  derived by the store's rules (``kb.validation.with_keys``). ``graph`` is canonical
  node-link JSON (``networkx.node_link_data(..., edges="edges")``: nodes ``{"id", "kind",
  "params", "in_shape"}`` numbered 0..n-1 in a canonical topological order, edges
  ``{"source", "target"}`` sorted, graph attribute ``input_shape``), so the same network built
  with any node names or insertion order gets the same ``arch_id``. ``fragments`` is the list
  of the nodes' fragment ids in node order, repeats included (a fragment used 15 times appears
  15 times), so costs can be summed over it.
- ``fragment_records(instances)`` gives the ``Fragment`` rows (ids, out_shape, parameters,
  FLOPs) to store beside an architecture.
- ``architecture_graph(arch)`` reads an ``Architecture`` (or its graph JSON) back into a
  DiGraph of blocks, checking every shape.
- ``nb201_architecture(arch_str)`` is the full NAS-Bench-201 network of a cell string:
  stem conv_bn, three stages of ``cells_per_stage`` cells joined by ``resnet_basic`` stride-2
  blocks, and a ``cnn_head`` with pre-activation; its ``name`` is the cell string in
  canonical form (``format_nb201``) and ``source`` is ``"nas-bench-201"``.
- ``succession_graph(instances)``: the fragment graph of a library, an edge wherever one
  fragment's output shape is the next one's input shape.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import networkx as nx
import pyarrow as pa

from fragments import blocks as b
from fragments.blocks import Block, FragmentError, Shape
from fragments.nb201 import format_nb201, parse_nb201
from kb.keys import canonical_json, derive_key
from kb.schema import TABLES, Architecture, Fragment

NB201_SOURCE = "nas-bench-201"


@dataclass(frozen=True)
class FragmentInstance:
    """A block applied to inputs of one shape: what the ``fragments`` table keys a row by."""

    block: Block
    in_shape: Shape

    @cached_property
    def out_shape(self) -> Shape:
        return self.block.out_shape(self.in_shape)

    @cached_property
    def key(self) -> str:
        """Canonical text of (kind, params, in_shape): equal exactly when the ids are."""
        return canonical_json([self.block.kind, self.block.params(), list(self.in_shape)])

    def record(self) -> Fragment:
        """The fragment's row, its id not yet derived (``fragment_records`` derives ids)."""
        return Fragment(kind=self.block.kind, params=canonical_json(self.block.params()),
                        in_shape=canonical_json(list(self.in_shape)),
                        out_shape=canonical_json(list(self.out_shape)),
                        n_parameters=self.block.n_parameters(self.in_shape),
                        flops=self.block.flops(self.in_shape))


def chain(blocks: Sequence[Block], input_shape: Shape) -> nx.DiGraph:
    """The architecture that applies ``blocks`` one after the other."""
    graph = nx.DiGraph(input_shape=tuple(input_shape))
    for i, block in enumerate(blocks):
        graph.add_node(i, block=block)
        if i:
            graph.add_edge(i - 1, i)
    return graph


def instances(graph: nx.DiGraph) -> dict:
    """Every node's ``FragmentInstance``, its input shape inferred from the network input;
    a FragmentError says which node does not fit where."""
    if graph.number_of_nodes() == 0:
        raise FragmentError("an architecture needs at least one fragment")
    if "input_shape" not in graph.graph:
        raise FragmentError("an architecture graph needs its input shape (graph attribute input_shape)")
    if not nx.is_directed_acyclic_graph(graph):
        raise FragmentError("an architecture graph must not have cycles")
    outputs = [n for n in graph if graph.out_degree(n) == 0]
    if len(outputs) != 1:
        raise FragmentError(f"an architecture has one output node, not {len(outputs)} "
                            f"({', '.join(map(str, outputs[:5]))})")
    out: dict = {}
    for node in nx.topological_sort(graph):
        block = graph.nodes[node].get("block")
        if not isinstance(block, Block):
            raise FragmentError(f"node {node!r} has no block (node attribute 'block')")
        predecessors = list(graph.predecessors(node))
        shapes = [out[p].out_shape for p in predecessors] or [tuple(graph.graph["input_shape"])]
        if isinstance(block, b.Add):
            if len(predecessors) != block.inputs:
                raise FragmentError(f"node {node!r}: add of {block.inputs} inputs has "
                                    f"{len(predecessors)} predecessor(s)")
            if len(set(shapes)) != 1:
                raise FragmentError(f"node {node!r}: add of inputs shaped "
                                    f"{', '.join(str(list(s)) for s in shapes)}")
        elif len(predecessors) > 1:
            raise FragmentError(f"node {node!r} ({block.kind}) has {len(predecessors)} "
                                f"predecessors; join paths with an add node")
        try:
            instance = FragmentInstance(block, tuple(shapes[0]))
            instance.out_shape  # noqa: B018 - checks that the block takes the shape
        except FragmentError as e:
            raise FragmentError(f"node {node!r}: {e}") from None
        out[node] = instance
    return out


def output_shape(graph: nx.DiGraph) -> Shape:
    nodes = instances(graph)
    (output,) = (n for n in graph if graph.out_degree(n) == 0)
    return nodes[output].out_shape


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


def canonical_order(graph: nx.DiGraph, nodes: dict | None = None) -> list:
    """The nodes in canonical order: by depth, then by a hash of what flows into each node
    (its fragment and, recursively, its predecessors'), then of what it flows into.

    Nodes that tie on all three compute the same thing from the same inputs for the same
    consumers, so swapping them gives the same labelled graph. ``nodes``: ``instances(graph)``
    where the caller has it.
    """
    nodes = instances(graph) if nodes is None else nodes
    order = list(nx.topological_sort(graph))
    depth, upstream, downstream = {}, {}, {}
    for node in order:
        predecessors = list(graph.predecessors(node))
        depth[node] = 1 + max((depth[p] for p in predecessors), default=-1)
        upstream[node] = _digest(nodes[node].key, *sorted(upstream[p] for p in predecessors))
    for node in reversed(order):
        downstream[node] = _digest(nodes[node].key,
                                   *sorted(downstream[s] for s in graph.successors(node)))
    return sorted(order, key=lambda n: (depth[n], upstream[n], downstream[n]))


def _canonical(graph: nx.DiGraph) -> tuple[dict, list[FragmentInstance]]:
    """The canonical node-link form of ``graph`` and its fragments in canonical node order."""
    nodes = instances(graph)
    order = canonical_order(graph, nodes)
    label = {node: i for i, node in enumerate(order)}
    canonical = nx.DiGraph(input_shape=list(graph.graph["input_shape"]))
    for i, node in enumerate(order):
        instance = nodes[node]
        canonical.add_node(i, kind=instance.block.kind, params=instance.block.params(),
                           in_shape=list(instance.in_shape))
    canonical.add_edges_from(sorted((label[u], label[v]) for u, v in graph.edges))
    return nx.node_link_data(canonical, edges="edges"), [nodes[n] for n in order]


def node_link(graph: nx.DiGraph) -> dict:
    """The canonical node-link form of ``graph`` (see the module docstring)."""
    return _canonical(graph)[0]


def derived_ids(table: str, records: list) -> list[str]:
    """The derived key of each record of ``table`` (``fragments`` or ``architectures``: one
    key from text columns, values already canonical), by the store's rule (``derive_key`` over
    the spec's source columns, as ``with_keys`` does), for many records in one pass."""
    ((_, sources),) = TABLES[table].derived.items()
    columns = {name: pa.array([getattr(r, name) for r in records], pa.string()) for name in sources}
    return derive_key(pa.table(columns), sources).to_pylist()


def fragment_records(fragments: Iterable[FragmentInstance]) -> list[Fragment]:
    """The ``Fragment`` rows of ``fragments`` with their ids, one per distinct fragment, in
    order of first appearance."""
    records = [f.record() for f in {f.key: f for f in fragments}.values()]
    if not records:
        return []
    return [replace(r, fragment_id=i) for r, i in zip(records, derived_ids("fragments", records))]


def architecture_record(graph: nx.DiGraph, *, name: str | None = None,
                        source: str | None = None) -> Architecture:
    """The ``Architecture`` row of ``graph``, with ``arch_id`` derived (see the docstring)."""
    return architecture_records([graph], names=[name], source=source)[0]


def architecture_records(graphs: Sequence[nx.DiGraph], *, names: Sequence[str | None] | None = None,
                         source: str | None = None) -> list[Architecture]:
    """``architecture_record`` of many graphs at once: ids are derived in one pass for all
    of them (deriving them is most of the time one record takes)."""
    names = [None] * len(graphs) if names is None else list(names)
    if len(names) != len(graphs):
        raise ValueError(f"{len(graphs)} graphs but {len(names)} names")
    canonical = [_canonical(g) for g in graphs]
    every_fragment = [f for _, fragments in canonical for f in fragments]
    distinct_keys = list({f.key: None for f in every_fragment})
    ids = {key: record.fragment_id
           for key, record in zip(distinct_keys, fragment_records(every_fragment), strict=True)}
    records = [Architecture(graph=canonical_json(data),
                            fragments=canonical_json([ids[f.key] for f in fragments]),
                            name=name, source=source)
               for (data, fragments), name in zip(canonical, names, strict=True)]
    if not records:
        return []
    return [replace(r, arch_id=i) for r, i in zip(records, derived_ids("architectures", records))]


def architecture_graph(arch: Architecture | str | dict) -> nx.DiGraph:
    """The DiGraph of blocks an ``Architecture`` (or its graph JSON) describes; every stored
    input shape is checked against the one the network input gives."""
    data = arch.graph if isinstance(arch, Architecture) else arch
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as e:
            raise FragmentError(f"an architecture graph is node-link JSON ({e})") from None
    try:
        stored = nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")
    except (KeyError, TypeError, nx.NetworkXError) as e:
        raise FragmentError(f"not a node-link architecture graph ({type(e).__name__}: {e})") from None
    if "input_shape" not in stored.graph:
        raise FragmentError("an architecture graph needs its input shape (graph attribute input_shape)")
    graph = nx.DiGraph(input_shape=tuple(stored.graph["input_shape"]))
    for node, attrs in stored.nodes(data=True):
        if "kind" not in attrs:
            raise FragmentError(f"node {node!r} has no kind")
        graph.add_node(node, block=b.block_from(attrs["kind"], attrs.get("params", {})))
    graph.add_edges_from(stored.edges)
    for node, instance in instances(graph).items():
        stored_shape = stored.nodes[node].get("in_shape")
        if stored_shape is not None and tuple(stored_shape) != instance.in_shape:
            raise FragmentError(f"node {node!r}: stored input shape {stored_shape} but the "
                                f"network gives it {list(instance.in_shape)}")
    return graph


def succession_graph(fragments: Iterable[FragmentInstance]) -> nx.DiGraph:
    """The fragment graph: a node per distinct fragment, an edge a -> b wherever b can take
    a's output (b's input shape is a's output shape)."""
    graph = nx.DiGraph()
    by_input: dict[Shape, list[FragmentInstance]] = {}
    for fragment in {f.key: f for f in fragments}.values():
        graph.add_node(fragment)
        by_input.setdefault(fragment.in_shape, []).append(fragment)
    for fragment in list(graph):
        graph.add_edges_from((fragment, nxt) for nxt in by_input.get(fragment.out_shape, ()))
    return graph


# -- NAS-Bench-201 ------------------------------------------------------------------------------

_NB201_OPS = {cls.kind: cls for cls in (b.NB201None, b.NB201Skip, b.NB201AvgPool,
                                         b.NB201Conv1x1, b.NB201Conv3x3)}


def nb201_network(arch_str: str, *, channels: int = 16, cells_per_stage: int = 5,
                  classes: int = 10, input_shape: Shape = (3, 32, 32)) -> nx.DiGraph:
    """The NAS-Bench-201 network of a cell string (defaults: the benchmark's CIFAR-10 setting)."""
    edges = parse_nb201(arch_str)
    graph = nx.DiGraph(input_shape=tuple(input_shape))

    def add(block: Block, *predecessors: int) -> int:
        node = graph.number_of_nodes()
        graph.add_node(node, block=block)
        graph.add_edges_from((p, node) for p in predecessors)
        return node

    previous = add(b.ConvBn(out=channels, kernel=3, stride=1))
    for stage in range(3):
        if stage:
            previous = add(b.ResNetBasic(out=channels * 2 ** stage, stride=2), previous)
        for _ in range(cells_per_stage):
            cell_nodes = [previous]
            for to_node in range(1, 4):
                into = [add(_NB201_OPS[op](), cell_nodes[frm])
                        for to, frm, op in edges if to == to_node]
                cell_nodes.append(into[0] if len(into) == 1 else add(b.Add(inputs=len(into)), *into))
            previous = cell_nodes[-1]
    add(b.CNNHead(classes=classes, pre_activation=True), previous)
    return graph


def nb201_architecture(arch_str: str, **network_options) -> Architecture:
    """The ``Architecture`` row of a NAS-Bench-201 cell string (see ``nb201_network``)."""
    return nb201_architectures([arch_str], **network_options)[0]


def nb201_architectures(arch_strs: Sequence[str], **network_options) -> list[Architecture]:
    """``nb201_architecture`` of many strings, ids derived in one pass (15,625 cells: minutes)."""
    return architecture_records([nb201_network(s, **network_options) for s in arch_strs],
                                names=[format_nb201(parse_nb201(s)) for s in arch_strs],
                                source=NB201_SOURCE)
