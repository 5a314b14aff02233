"""Meta-features in the KB: compute and store them for a dataset, read them back as vectors
under metakb's names, and rank the KB's datasets by similarity to a query.

The ``metafeatures`` package computes and compares; this module is the only place that moves
its results in and out of the store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kb.datasets import load_registered
from kb.errors import KBError
from kb.schema import MetaFeature

@contextmanager
def user_errors():
    """Turn the metafeatures package's input errors into KBErrors (one line, exit status 1)."""
    from metafeatures import MetaFeatureError

    try:
        yield
    except MetaFeatureError as e:
        raise KBError(str(e)) from None


@dataclass(frozen=True)
class Characterised:
    record: object  # the dataset's ``kb.schema.Dataset``
    extraction: object  # the ``metafeatures.Extraction``
    stored: int  # meta-feature rows written to the KB (0 when not storing)


def characterise(kb, dataset: str, *, groups=None, seed: int = 0, max_rows: int | None = None,
                 store: bool = True) -> Characterised:
    """Compute a registered dataset's meta-features and (by default) store them, replacing
    the values an earlier extractor version stored. ``max_rows``: None for the extractor's
    default, 0 for no limit."""
    import metafeatures

    with user_errors():
        chosen = metafeatures.parse_groups(groups)
    loaded = load_registered(kb, dataset)
    record = loaded.record
    with user_errors():
        extraction = metafeatures.compute(
            loaded.X, loaded.y, record.task, groups=chosen, seed=seed,
            max_rows=metafeatures.DEFAULT_MAX_ROWS if max_rows is None else max_rows or None)
    rows = [MetaFeature(dataset_id=record.dataset_id, name=name, value=value,
                        extractor=extraction.extractor, extractor_version=extraction.extractor_version,
                        sample_rows=extraction.sample_rows.get(name))
            for name, value in extraction.values.items()]
    if store and rows:
        kb.append("metafeatures", rows, on_conflict="replace")
    return Characterised(record, extraction, len(rows) if store else 0)


@dataclass(frozen=True)
class KBVectors:
    """The KB's meta-features as {dataset_id: {metakb name: value}}, with names and tasks."""

    vectors: dict[str, dict[str, float]]
    names: dict[str, str]
    tasks: dict[str, str | None]
    task: str | None = None  # only datasets of this task were read (None: every task)


def stored_vectors(kb, *, task: str | None = None, dataset_id: str | None = None) -> KBVectors:
    """Every dataset's stored meta-features (of ``task``; only ``dataset_id``'s if given),
    converted to metakb's names (ingested ones may be named by OpenML, auto-sklearn or pymfe)."""
    rows = kb.query(
        """SELECT m.dataset_id, m.extractor, m.name, m.value, d.name AS dataset_name, d.task
           FROM metafeatures m LEFT JOIN datasets d USING (dataset_id)
           WHERE (? IS NULL OR d.task = ?) AND (? IS NULL OR m.dataset_id = ?)
           ORDER BY m.dataset_id, m.extractor, m.name""",
        [task, task, dataset_id, dataset_id]).to_pylist()
    raw: dict[str, dict[str, dict[str, float]]] = {}
    names: dict[str, str] = {}
    tasks: dict[str, str | None] = {}
    for row in rows:
        by_extractor = raw.setdefault(row["dataset_id"], {})
        by_extractor.setdefault(row["extractor"], {})[row["name"]] = row["value"]
        names[row["dataset_id"]] = row["dataset_name"] or row["dataset_id"]
        tasks[row["dataset_id"]] = row["task"]
    vectors = {}
    for key, by_extractor in raw.items():
        converted = _as_metakb(by_extractor, tasks[key])
        if converted:
            vectors[key] = converted
    return KBVectors(vectors, names, tasks, task)


def _as_metakb(by_extractor: Mapping[str, Mapping[str, float]], task: str | None) -> dict[str, float]:
    """One dataset's stored values, {extractor: {name: value}}, under metakb's names.

    Each extractor's rows are read in its own vocabulary: OpenML's, auto-sklearn's and pymfe's
    are converted; metakb's (and any other extractor's) are kept where the name is a metakb
    feature. Where several give one feature, metakb's value wins, then OpenML's, auto-sklearn's,
    pymfe's and the others' (by name).
    """
    from metafeatures import to_metakb
    from metafeatures.names import BY_NAME, SOURCES

    rank = {"metakb": 0, **{source: i + 1 for i, source in enumerate(SOURCES)}}
    out: dict[str, float] = {}
    for extractor in sorted(by_extractor, key=lambda e: (rank.get(e, len(rank)), e)):
        values = by_extractor[extractor]
        if extractor in SOURCES:
            converted = to_metakb(values, source=extractor, task=task).values
        else:
            converted = {name: value for name, value in values.items()
                         if name in BY_NAME and value is not None and math.isfinite(value)}
        for name, value in converted.items():
            out.setdefault(name, value)
    return out


def read_metafeature_file(path: Path, vocabulary: str = "auto", task: str | None = None):
    """A JSON object {name: number} read and converted to metakb's names (a ``Converted``)."""
    from metafeatures import to_metakb

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KBError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise KBError(f"{path} is a folder, not a JSON file") from None
    except UnicodeDecodeError:
        raise KBError(f"{path} is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise KBError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(data, dict):
        raise KBError(f"{path} must hold a JSON object of meta-feature names and numbers, "
                      f"not a {type(data).__name__}")
    for name, value in data.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise KBError(f"{path}: the value of {name!r} is {value!r}, not a number")
    values = {k: float(v) for k, v in data.items() if v is not None and math.isfinite(float(v))}
    with user_errors():
        converted = to_metakb(values, source=None if vocabulary == "auto" else vocabulary, task=task)
    if not converted.values:
        shown = ", ".join(sorted(data)[:5]) + (", ..." if len(data) > 5 else "")
        raise KBError(f"{path}: no meta-feature name is recognised (found: {shown or 'none'}); "
                      f"names may be OpenML's, auto-sklearn's, pymfe's or metakb's")
    return converted


def require_comparable(kb_vectors: KBVectors, *, exclude: str | None = None,
                       task: str | None = None) -> None:
    """A KBError unless some dataset other than ``exclude`` has meta-features to compare with."""
    if not any(d != exclude for d in kb_vectors.vectors):
        where = f" of task {task}" if task else ""
        raise KBError(f"the KB holds no meta-features of other datasets{where} to compare with; "
                      f"run `kb metafeatures --all` (or ingest some) first")


def similar(kb_vectors: KBVectors, query: Mapping[str, float], *, k: int = 10, groups=None,
            exclude: str | None = None) -> list[dict]:
    """The ``k`` KB datasets nearest to ``query`` (metakb names), as rows for printing.
    ``kb_vectors`` must hold something to compare with (check with ``require_comparable``).

    ``exclude`` names the query's own dataset when it is in the KB; it is still ranked (a
    dataset is its own nearest neighbour) but does not count as something to compare with.
    """
    from metafeatures import FEATURES, parse_groups
    from metafeatures.similarity import fit_scaling, nearest

    with user_errors():
        chosen = set(parse_groups(groups))
    features = [f.name for f in FEATURES if f.group in chosen]
    scaling = fit_scaling(kb_vectors.vectors)
    found = nearest(query, kb_vectors.vectors, k=k, scaling=scaling, features=features)
    if not found:
        raise KBError("the query shares no meta-feature with the KB's datasets"
                      + (f" in the groups {', '.join(sorted(chosen))}" if groups else ""))
    return [{"rank": i, "dataset_id": n.key, "name": kb_vectors.names.get(n.key, n.key),
             "task": kb_vectors.tasks.get(n.key), "distance": n.distance, "shared_features": n.shared,
             "itself": n.key == exclude}
            for i, n in enumerate(found, start=1)]


def dataset_query(kb, record, kb_vectors: KBVectors, *, groups=None, seed: int = 0,
                  max_rows: int | None = None):
    """A registered dataset's meta-features for a similarity query: the stored ones (taken
    from ``kb_vectors`` when it holds them), or computed now (not stored) when it has none.
    Returns (vector, computed?)."""
    stored = kb_vectors.vectors.get(record.dataset_id)
    if stored is None and kb_vectors.task not in (None, record.task):  # left out by task
        stored = stored_vectors(kb, dataset_id=record.dataset_id).vectors.get(record.dataset_id)
    if stored:
        return stored, False
    done = characterise(kb, record.dataset_id, groups=groups, seed=seed, max_rows=max_rows, store=False)
    return done.extraction.values, True
