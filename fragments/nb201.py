"""NAS-Bench-201 architecture strings: parsing and formatting, nothing else (pure).

A NAS-Bench-201 cell has four nodes; node 0 is the cell's input and node ``j`` is the sum of
one operation applied to each earlier node. Its string lists the six edges by target node::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

What callers can rely on: ``parse_nb201`` returns the six edges as ``(to_node, from_node, op)``
in the string's order, ``EDGES`` gives that order, ``format_nb201`` turns any such sequence
back into exactly the string it came from, and a malformed string raises ``NB201FormatError``
(a ``KBError``: one line naming what is wrong and where).
"""

from __future__ import annotations

from collections.abc import Iterable

from kb.errors import KBError

# The five edge operations, in the order of the NAS-Bench-201 paper and its API.
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
N_NODES = 4
# (to_node, from_node) of the six edges, in the order a string lists them.
EDGES = tuple((to, frm) for to in range(1, N_NODES) for frm in range(to))


class NB201FormatError(KBError):
    """A NAS-Bench-201 string or edge list that does not describe a cell."""


def parse_nb201(text: str) -> tuple[tuple[int, int, str], ...]:
    """The six ``(to_node, from_node, op)`` edges of ``text``, in ``EDGES`` order."""
    if not isinstance(text, str):
        raise NB201FormatError(f"a NAS-Bench-201 string is text, not {type(text).__name__}")
    stripped = text.strip()
    groups = stripped.split("+")
    if len(groups) != N_NODES - 1:
        raise NB201FormatError(
            f"{text!r} is not a NAS-Bench-201 string: it needs {N_NODES - 1} node groups "
            f"joined by '+', like {example()!r}")
    edges = []
    for to_node, group in enumerate(groups, start=1):
        if not (group.startswith("|") and group.endswith("|") and len(group) > 1):
            raise NB201FormatError(f"{text!r}: node {to_node}'s group {group!r} must start and "
                                   f"end with '|'")
        entries = group[1:-1].split("|")
        if len(entries) != to_node:
            raise NB201FormatError(f"{text!r}: node {to_node} needs {to_node} edge(s), one from "
                                   f"each earlier node, not {len(entries)}")
        for expected_from, entry in enumerate(entries):
            op, sep, source = entry.partition("~")
            if not sep or op not in OPS:
                raise NB201FormatError(f"{text!r}: edge {entry!r} into node {to_node} must be "
                                       f"OP~NODE with OP one of {', '.join(OPS)}")
            if source != str(expected_from):
                raise NB201FormatError(f"{text!r}: edge {entry!r} into node {to_node} must come "
                                       f"from node {expected_from} (edges are listed in order)")
            edges.append((to_node, expected_from, op))
    return tuple(edges)


def format_nb201(edges: Iterable[tuple[int, int, str]]) -> str:
    """The NAS-Bench-201 string of six ``(to_node, from_node, op)`` edges, in any order."""
    by_edge = {}
    for edge in edges:
        try:
            to_node, from_node, op = edge
        except (TypeError, ValueError):
            raise NB201FormatError(f"an edge is (to_node, from_node, op), not {edge!r}") from None
        if (to_node, from_node) not in EDGES or op not in OPS:
            raise NB201FormatError(f"edge {edge!r} is not a NAS-Bench-201 edge: nodes 0-3, "
                                   f"from an earlier node, op one of {', '.join(OPS)}")
        if (to_node, from_node) in by_edge:
            raise NB201FormatError(f"edge {to_node}<-{from_node} is given twice")
        by_edge[(to_node, from_node)] = op
    missing = [f"{to}<-{frm}" for to, frm in EDGES if (to, frm) not in by_edge]
    if missing:
        raise NB201FormatError(f"a NAS-Bench-201 cell needs all six edges; missing {', '.join(missing)}")
    return "+".join(
        "|" + "|".join(f"{by_edge[(to, frm)]}~{frm}" for frm in range(to)) + "|"
        for to in range(1, N_NODES))


def example() -> str:
    """A valid string, for messages and help texts."""
    return "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
