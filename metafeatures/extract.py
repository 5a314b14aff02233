"""``extract``: run the requested groups on one dataset and gather what they found."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from metafeatures.collector import Collector
from metafeatures.context import DEFAULT_MAX_ROWS, Context
from metafeatures.errors import MetaFeatureError
from metafeatures.general import general
from metafeatures.info_theory import info_theory
from metafeatures.landmarking import landmarking
from metafeatures.model_based import model_based
from metafeatures.names import FEATURE_NAMES, GROUPS
from metafeatures.statistical import statistical
from metafeatures.table import prepare
from metafeatures.threads import limit_threads

EXTRACTOR = "metakb"
# Bump when any value can change: a new definition, a fix, a different default.
EXTRACTOR_VERSION = "1.0"

_RUNNERS = {
    "general": general,
    "statistical": statistical,
    "info-theory": info_theory,
    "landmarking": landmarking,
    "model-based": model_based,
}
_BLAS_USERS = ("scipy.linalg", "scipy.spatial")  # load every BLAS the groups call before limiting
_BACKGROUND_CELLS = 50_000  # rows x columns below which a thread costs more than it saves
_ORDER = {name: i for i, name in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True)
class Extraction:
    """Everything one extraction found, and what it could not."""

    values: dict[str, float]  # metakb name -> finite value, in catalogue order
    sample_rows: dict[str, int]  # features computed on a row sample: name -> rows used
    notes: tuple[str, ...]  # why features are absent, and how the data was treated
    groups: tuple[str, ...]
    seconds: dict[str, float]  # time per group (the tree's group overlaps the others)
    wall_seconds: float  # the whole extraction, preparation included
    n_rows: int  # rows characterised (rows without a target are left out)
    task: str
    seed: int
    max_rows: int | None
    extractor: str = EXTRACTOR
    extractor_version: str = EXTRACTOR_VERSION


def parse_groups(groups=None) -> tuple[str, ...]:
    """Group names from None/"all", a comma-separated string, or an iterable, in GROUPS order."""
    if groups is None:
        return GROUPS
    items = groups.split(",") if isinstance(groups, str) else list(groups)
    wanted = set()
    for item in items:
        name = str(item).strip().lower().replace("_", "-")
        if not name:
            continue
        if name == "all":
            return GROUPS
        if name not in GROUPS:
            raise MetaFeatureError(f"unknown group {str(item).strip()!r}; the groups are: "
                                   f"{', '.join(GROUPS)} (or all)")
        wanted.add(name)
    if not wanted:
        raise MetaFeatureError(f"no group given; the groups are: {', '.join(GROUPS)} (or all)")
    return tuple(g for g in GROUPS if g in wanted)


def compute(X, y, task: str, *, groups=None, seed: int = 0,
            max_rows: int | None = DEFAULT_MAX_ROWS) -> Extraction:
    """Characterise the dataset ``X``, ``y`` (a ``task`` of binary, multiclass or regression).

    ``groups`` picks the groups (default: all). ``seed`` fixes every random choice: the row
    sample, the tree's tie-breaking, column samples. Landmarking, the tree and the pairwise
    statistics use a seeded sample of ``max_rows`` rows when there are more (None: all rows).
    """
    start = time.perf_counter()
    chosen = parse_groups(groups)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise MetaFeatureError(f"seed must be a non-negative integer, not {seed!r}")
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise MetaFeatureError(f"max_rows must be a positive integer or None, not {max_rows!r}")
    data = prepare(X, y, task)
    ctx = Context(data, seed, max_rows)
    found = Collector()
    _describe_input(ctx, chosen, found)
    seconds: dict[str, float] = {}
    results: dict[str, Collector] = {}
    # The tree is the slowest piece and scikit-learn releases the GIL while growing it, so on
    # data big enough to repay a thread it grows in a second thread while the rest runs here.
    background = ("model-based" in chosen and data.is_classification
                  and ctx.sample.n_rows * ctx.sample.n_features >= _BACKGROUND_CELLS)
    if background:
        _ = ctx.sample.design  # build shared arrays before two threads can race for them
    # One BLAS thread: the matrices here are small or already split across our two threads,
    # and on a busy machine BLAS threads waiting for a core cost more than they save.
    with (limit_threads(1, "blas", load=_BLAS_USERS),
          ThreadPoolExecutor(max_workers=1) as pool):
        future = pool.submit(_timed, model_based, ctx) if background else None
        for group in chosen:
            if group == "model-based" and background:
                continue
            results[group], seconds[group] = _timed(_RUNNERS[group], ctx)
        if future is not None:
            results["model-based"], seconds["model-based"] = future.result()
    for group in chosen:
        found.merge(results[group])
    values = dict(sorted(found.values.items(), key=lambda item: _ORDER.get(item[0], len(_ORDER))))
    return Extraction(values=values, sample_rows=found.sample_rows, notes=tuple(found.notes),
                      groups=chosen, seconds=seconds, wall_seconds=time.perf_counter() - start, n_rows=data.n_rows, task=task, seed=seed,
                      max_rows=max_rows)


def extract(X, y, task: str, *, groups=None, seed: int = 0,
            max_rows: int | None = DEFAULT_MAX_ROWS) -> dict[str, float]:
    """``{name: value}`` of the dataset's meta-features; see ``compute`` for the arguments."""
    return compute(X, y, task, groups=groups, seed=seed, max_rows=max_rows).values


def _timed(runner, ctx: Context) -> tuple[Collector, float]:
    start = time.perf_counter()
    result = runner(ctx)
    return result, time.perf_counter() - start


def _describe_input(ctx: Context, groups: tuple[str, ...], out: Collector) -> None:
    data = ctx.data
    if data.dropped_rows:
        out.note(f"{data.dropped_rows} row(s) without a usable target value were left out")
    if data.n_infinite:
        out.note(f"{data.n_infinite} infinite value(s) were treated as missing")
    if ctx.sample_size is not None and {"landmarking", "model-based", "statistical"} & set(groups):
        out.note(f"landmarking, the tree and pairwise statistics used a seeded sample of "
                 f"{ctx.sample_size} of {data.n_rows} rows")
