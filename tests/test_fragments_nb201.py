"""NAS-Bench-201 strings: exact round trips, clear refusals, and the real 15,625 cells."""

from __future__ import annotations

import csv
import itertools

import pytest

from fragments.nb201 import EDGES, OPS, NB201FormatError, example, format_nb201, parse_nb201
from kb.errors import KBError

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_parse_gives_target_source_op_in_string_order():
    assert parse_nb201(EXAMPLE) == (
        (1, 0, "nor_conv_3x3"), (2, 0, "nor_conv_3x3"), (2, 1, "avg_pool_3x3"),
        (3, 0, "skip_connect"), (3, 1, "nor_conv_3x3"), (3, 2, "skip_connect"))
    assert [(to, frm) for to, frm, _ in parse_nb201(EXAMPLE)] == list(EDGES)


def test_format_round_trips_and_ignores_edge_order():
    edges = parse_nb201(EXAMPLE)
    assert format_nb201(edges) == EXAMPLE
    assert format_nb201(reversed(edges)) == EXAMPLE
    assert example() == EXAMPLE


def test_every_op_combination_round_trips():
    strings = set()
    for ops in itertools.islice(itertools.product(OPS, repeat=6), 0, None, 37):
        text = format_nb201((to, frm, op) for (to, frm), op in zip(EDGES, ops))
        assert parse_nb201(text) == tuple((to, frm, op) for (to, frm), op in zip(EDGES, ops))
        strings.add(text)
    assert len(strings) == len(range(0, 5 ** 6, 37))


@pytest.mark.parametrize("text, words", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "3 node groups"),
    ("|conv_7x7~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     "conv_7x7~0"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~1|avg_pool_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     "must come from node 0"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "needs 2 edge"),
    ("nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     "start and end with '|'"),
    ("|nor_conv_3x3|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     "OP~NODE"),
])
def test_malformed_strings_are_refused_naming_the_problem(text, words):
    with pytest.raises(NB201FormatError, match=None) as caught:
        parse_nb201(text)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, KBError)  # the CLI prints it on one line


def test_format_refuses_incomplete_or_repeated_edges():
    edges = list(parse_nb201(EXAMPLE))
    with pytest.raises(NB201FormatError, match="missing 3<-2"):
        format_nb201(edges[:-1])
    with pytest.raises(NB201FormatError, match="given twice"):
        format_nb201(edges + [edges[0]])
    with pytest.raises(NB201FormatError, match="not a NAS-Bench-201 edge"):
        format_nb201(edges[:-1] + [(3, 3, "none")])


def test_all_real_nas_bench_201_strings_round_trip(shared_data):
    with open(shared_data / "nb201" / "latency_ms.csv", newline="") as f:
        strings = [row["arch_str"] for row in csv.DictReader(f)]
    assert len(strings) == 15625
    assert len(set(strings)) == 15625
    for text in strings:
        assert format_nb201(parse_nb201(text)) == text
