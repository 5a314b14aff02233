"""Find the architecture a user names: an ``arch_id`` stored in the KB, a NAS-Bench-201 cell
string, or a JSON file (a node-link graph, or an ``architectures`` row holding one)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import networkx as nx

from fragments.graph import architecture_graph, architecture_record, nb201_architecture
from kb.errors import KBError
from kb.keys import KEY_LENGTH
from kb.schema import Architecture

_ARCH_ID = re.compile(rf"^[0-9a-f]{{{KEY_LENGTH}}}$")


def find_architecture(kb, text: str) -> tuple[Architecture, nx.DiGraph]:
    """The architecture ``text`` names, with its graph of blocks; a KBError says why none."""
    text = text.strip()
    if "~" in text and "|" in text:
        arch = nb201_architecture(text)
        return arch, architecture_graph(arch)
    path = Path(text)
    if path.suffix.lower() == ".json" or path.is_file():
        return _from_file(path)
    if _ARCH_ID.match(text):
        rows = kb.query("SELECT * FROM architectures WHERE arch_id = ?", [text]).to_pylist()
        if not rows:
            raise KBError(f"no architecture {text} in {kb.root}")
        arch = Architecture(**rows[0])
        return arch, architecture_graph(arch)
    raise KBError(f"{text!r} is not an arch_id, a NAS-Bench-201 string or a JSON file")


def _from_file(path: Path) -> tuple[Architecture, nx.DiGraph]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KBError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KBError(f"{path} is not readable JSON ({e})") from None
    if isinstance(data, dict) and "graph" in data and "nodes" not in data:
        graph = data["graph"]  # an architectures row, as `kb export --format jsonl` writes it
        return _record(graph, data.get("name"), data.get("source"), path)
    return _record(data, None, None, path)


def _record(graph_json, name, source, path: Path) -> tuple[Architecture, nx.DiGraph]:
    try:
        graph = architecture_graph(graph_json)
    except KBError as e:
        raise KBError(f"{path}: {e}") from None
    return architecture_record(graph, name=name, source=source), graph
