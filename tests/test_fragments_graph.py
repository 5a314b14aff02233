"""Architectures: canonical ids whatever the node names, NAS-Bench-201 networks as the benchmark
defines them, clear refusals of graphs that do not fit, and rows the store accepts."""

from __future__ import annotations

import dataclasses
import json
import random

import networkx as nx
import pytest

from fragments import blocks as b
from fragments.graph import (FragmentInstance, architecture_graph, architecture_record, chain,
                             fragment_records, instances, nb201_architecture, nb201_network,
                             succession_graph)
from fragments.nb201 import EDGES, OPS, format_nb201
from kb.schema import Fragment
from kb.validation import with_keys

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
MLP = [b.LinearAct(out=16), b.ResidualMLP(hidden=32), b.MLPHead(out=3)]


def relabelled(graph: nx.DiGraph, seed: int) -> nx.DiGraph:
    """The same network with other node names, inserted in another order."""
    names = list(graph)
    shuffled = random.Random(seed).sample(names, len(names))
    mapping = {n: f"node-{shuffled.index(n)}-{seed}" for n in names}
    out = nx.DiGraph(**graph.graph)
    for node in shuffled:
        out.add_node(mapping[node], **graph.nodes[node])
    edges = list(graph.edges)
    random.Random(seed + 1).shuffle(edges)
    out.add_edges_from((mapping[u], mapping[v]) for u, v in edges)
    return out


def uniform(op: str) -> str:
    return format_nb201((to, frm, op) for to, frm in EDGES)


def test_same_network_same_id_whatever_the_node_names():
    for graph in (chain(MLP, (8,)), nb201_network(EXAMPLE, cells_per_stage=1)):
        ids = {architecture_record(relabelled(graph, seed)).arch_id for seed in range(4)}
        assert ids == {architecture_record(graph).arch_id}


def test_different_networks_different_ids():
    ids = {architecture_record(chain(MLP, (8,))).arch_id,
           architecture_record(chain(MLP[::2], (8,))).arch_id,
           architecture_record(chain(MLP, (9,))).arch_id}
    # Moving one operation to another edge of the cell is another network.
    swapped = EXAMPLE.replace("|skip_connect~0|nor_conv_3x3~1|", "|nor_conv_3x3~0|skip_connect~1|")
    ids |= {nb201_architecture(EXAMPLE).arch_id, nb201_architecture(swapped).arch_id}
    assert len(ids) == 5


def test_ids_are_the_stores():
    arch = nb201_architecture(EXAMPLE, cells_per_stage=1)
    assert with_keys(dataclasses.replace(arch, arch_id="")) == arch
    fragment = fragment_records([FragmentInstance(b.MBConv(out=8), (4, 6, 6))])[0]
    assert with_keys(dataclasses.replace(fragment, fragment_id="")) == fragment


@pytest.mark.parametrize("op, params_m, macs_m", [
    # Published NAS-Bench-201 CIFAR-10 figures (parameters in millions, FLOPs in millions of
    # multiply-adds) of the largest and the smallest network.
    ("nor_conv_3x3", 1.531546, 220.11968),
    ("none", 0.073306, 7.78304),
])
def test_nb201_network_has_the_benchmarks_size(op, params_m, macs_m):
    nodes = instances(nb201_network(uniform(op))).values()
    assert sum(f.block.n_parameters(f.in_shape) for f in nodes) == round(params_m * 1e6)
    assert sum(f.block.flops(f.in_shape) for f in nodes) == round(2 * macs_m * 1e6)


def test_nb201_record_lists_every_node_and_reads_back():
    arch = nb201_architecture(" " + EXAMPLE)
    assert arch.name == EXAMPLE and arch.source == "nas-bench-201"
    fragments = json.loads(arch.fragments)
    # stem + 2 reductions + head, and per cell 6 edges and the adds of nodes 2 and 3.
    assert len(fragments) == 4 + 15 * 8
    graph = json.loads(arch.graph)
    assert [n["id"] for n in graph["nodes"]] == list(range(len(fragments)))
    assert graph["graph"]["input_shape"] == [3, 32, 32]
    back = architecture_graph(arch)
    assert architecture_record(back, name=arch.name, source=arch.source) == arch
    kinds = {n["kind"] for n in graph["nodes"]}
    assert kinds == {"conv_bn", "resnet_basic", "cnn_head", "add", "nor_conv_3x3", "avg_pool_3x3",
                     "skip_connect"}


def test_records_store_and_validate(kb):
    archs = [nb201_architecture(uniform(op), cells_per_stage=1) for op in OPS]
    fragments = fragment_records(f for a in archs for f in instances(architecture_graph(a)).values())
    kb.append("fragments", fragments)
    kb.append("architectures", archs)
    assert kb.append("architectures", archs, on_conflict="keep").already_present == len(archs)
    assert kb.validate() == []
    stored = set(kb.query("SELECT fragment_id FROM fragments").column(0).to_pylist())
    assert all(set(json.loads(a.fragments)) <= stored for a in archs)


def dag(*edges, blocks) -> nx.DiGraph:
    graph = nx.DiGraph(input_shape=(4, 8, 8))
    for node, block in blocks.items():
        graph.add_node(node, block=block)
    graph.add_edges_from(edges)
    return graph


@pytest.mark.parametrize("graph, words", [
    (chain([b.LinearAct(out=4), b.ConvBnRelu(out=4)], (8,)), "node 1: conv_bn_relu: takes inputs"),
    (dag(("a", "c"), ("b", "c"), blocks={"a": b.ConvBnRelu(out=4), "b": b.ConvBnRelu(out=8),
                                         "c": b.Add(inputs=2)}), "add of inputs shaped"),
    (dag(("a", "c"), ("b", "c"), blocks={"a": b.ConvBnRelu(out=4), "b": b.ConvBnRelu(out=4),
                                         "c": b.ConvBnRelu(out=4)}), "join paths with an add"),
    (dag(("a", "c"), blocks={"a": b.ConvBnRelu(out=4), "c": b.Add(inputs=3)}), "has 1 predecessor"),
    (dag(("a", "b"), ("b", "a"), blocks={"a": b.Identity(), "b": b.Identity()}), "cycles"),
    (dag(("a", "b"), ("a", "c"), blocks={"a": b.Identity(), "b": b.Identity(), "c": b.Identity()}),
     "one output node, not 2"),
])
def test_graphs_that_do_not_fit_are_refused(graph, words):
    with pytest.raises(b.FragmentError) as caught:
        architecture_record(graph)
    assert words in str(caught.value)


def test_stored_graph_with_a_wrong_shape_is_refused():
    arch = architecture_record(chain(MLP, (8,)))
    graph = json.loads(arch.graph)
    graph["nodes"][1]["in_shape"] = [17]
    with pytest.raises(b.FragmentError, match="stored input shape"):
        architecture_graph(json.dumps(graph))
    with pytest.raises(b.FragmentError, match="node-link JSON"):
        architecture_graph("{not json")


def test_succession_graph_links_exactly_the_fitting_fragments():
    fragments = [FragmentInstance(b.LinearAct(out=16), (8,)), FragmentInstance(b.LinearAct(out=8), (16,)),
                 FragmentInstance(b.MLPHead(out=2), (16,)), FragmentInstance(b.MLPHead(out=2), (8,))]
    graph = succession_graph(fragments + fragments[:1])
    assert graph.number_of_nodes() == 4
    expected = {(a.key, c.key) for a in fragments for c in fragments if a.out_shape == c.in_shape}
    assert {(u.key, v.key) for u, v in graph.edges} == expected
    assert graph.has_edge(fragments[0], fragments[1]) and graph.has_edge(fragments[1], fragments[0])
    assert not graph.has_edge(fragments[2], fragments[0])  # a head's 2 outputs feed nothing
