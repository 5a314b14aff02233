"""Search spaces (ConfigSpace) over the model families, and configurations in and out of them.

A space is narrower than what is valid (``search.families``): the ranges worth searching on
tabular data of the sizes metakb sees. Hyperparameters are named ``family:key`` and active
only when ``family`` is chosen; the preprocessing keys are shared. ``to_config`` turns a
sampled ``Configuration`` into the flat, complete configuration the KB stores;
``fit_to_space`` goes the other way for a configuration from the KB or another tool, saying
what had to change, or refusing with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kb.errors import KBError
from search.families import FAMILIES, normalize_config
from search.preprocess import ENCODINGS, IMPUTATIONS, SCALINGS


@dataclass(frozen=True)
class Range:
    """One key's search range: numbers between ``low`` and ``high`` (``log``: searched on a log
    scale), or ``choices``; ``default`` is where the space starts."""

    default: object
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None


_FOREST = {
    "n_estimators": Range(100, 10, 300, log=True),
    "max_depth": Range(20, 2, 40, log=True),
    "min_samples_leaf": Range(1, 1, 20, log=True),
    "max_features": Range(0.5, 0.05, 1.0),
}

SEARCH_RANGES: dict[str, dict[str, Range]] = {
    "random_forest": {**_FOREST, "bootstrap": Range(True, choices=(True, False))},
    "extra_trees": {**_FOREST, "bootstrap": Range(False, choices=(True, False))},
    "hist_gradient_boosting": {
        "max_iter": Range(100, 10, 500, log=True),
        "learning_rate": Range(0.1, 0.01, 0.5, log=True),
        "max_leaf_nodes": Range(31, 4, 128, log=True),
        "min_samples_leaf": Range(20, 1, 100, log=True),
        "l2_regularization": Range(1e-6, 1e-8, 10.0, log=True),
    },
    "linear": {"alpha": Range(1.0, 1e-4, 1e4, log=True)},
    "knn": {
        "n_neighbors": Range(5, 1, 50, log=True),
        "weights": Range("uniform", choices=("uniform", "distance")),
        "p": Range(2, choices=(1, 2)),
    },
    "svm": {
        "C": Range(1.0, 0.01, 1000.0, log=True),
        "kernel": Range("rbf", choices=("rbf", "linear")),
        "gamma": Range(0.1, 1e-4, 10.0, log=True),
        "epsilon": Range(0.1, 1e-3, 1.0, log=True),
    },
    "mlp": {
        "n_layers": Range(2, 1, 3),
        "width": Range(64, 16, 256, log=True),
        "dropout": Range(0.0, 0.0, 0.5),
        "learning_rate": Range(1e-3, 1e-4, 1e-2, log=True),
        "weight_decay": Range(1e-5, 1e-7, 1e-2, log=True),
        "epochs": Range(30, 10, 100, log=True),
        "batch_size": Range(64, choices=(32, 64, 128)),
    },
}

PREPROCESSING: dict[str, Range] = {
    "imputation": Range("median", choices=IMPUTATIONS),
    "scaling": Range("standard", choices=SCALINGS),
    "encoding": Range("onehot", choices=ENCODINGS),
}

# Keys a family has that its search range leaves at the family's default (HistGradientBoosting's
# max_depth: max_leaf_nodes already bounds a tree; linear max_iter: a solver setting).
FIXED_KEYS = {"hist_gradient_boosting": ("max_depth",), "linear": ("max_iter",)}


def build_space(task: str, families: Iterable[str] | None = None, seed: int = 0):
    """The ConfigSpace of ``families`` (default: all) for ``task``."""
    from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition

    chosen = list(families) if families is not None else list(SEARCH_RANGES)
    unknown = [f for f in chosen if f not in SEARCH_RANGES]
    if unknown or not chosen:
        raise KBError(f"unknown model families {', '.join(unknown) or '(none given)'}; "
                      f"expected some of {', '.join(SEARCH_RANGES)}")
    space = ConfigurationSpace(seed=seed)
    family = Categorical("family", chosen, default=chosen[0])
    space.add(family)
    space.add([_hyperparameter(name, r) for name, r in PREPROCESSING.items()])
    for name in chosen:
        keys = {p.name for p in FAMILIES[name].params_for(task)}
        for key, r in SEARCH_RANGES[name].items():
            if key in keys:
                hp = _hyperparameter(f"{name}:{key}", r)
                space.add(hp)
                if len(chosen) > 1:
                    space.add(EqualsCondition(hp, family, name))
    return space


def _hyperparameter(name: str, r: Range):
    from ConfigSpace import Categorical, Float, Integer

    if r.choices is not None:
        return Categorical(name, list(r.choices), default=r.default)
    if isinstance(r.default, int) and isinstance(r.low, int) and isinstance(r.high, int):
        return Integer(name, (r.low, r.high), default=r.default, log=r.log)
    return Float(name, (float(r.low), float(r.high)), default=float(r.default), log=r.log)


def to_config(configuration: Mapping, task: str) -> dict:
    """The complete configuration (``search.families`` form) of a sampled one."""
    values = dict(configuration)
    family = values.pop("family")
    config = {"family": family}
    for key, value in values.items():
        owner, _, name = key.rpartition(":")
        if not owner:
            config[key] = value
        elif owner == family:
            config[name] = value
    return normalize_config(_plain(config), task)


def _plain(config: dict) -> dict:
    """numpy scalars from a sampled configuration as Python values."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in config.items()}


@dataclass(frozen=True)
class Fitted:
    """A configuration made to fit a space: the ``Configuration``, the complete configuration
    it stands for, and what was changed to get there (empty when it fitted as it was)."""

    configuration: object
    config: dict
    changes: tuple[str, ...]


def fit_to_space(config: Mapping, space, task: str) -> Fitted:
    """``config`` as a point of ``space``: a value outside its range is moved to the nearest
    end, a null or an unknown choice takes the space's default, a key the space does not search
    keeps the family default, and each such change is named. A family the space lacks (or that
    cannot do ``task``) is refused with a KBError saying why. A LightGBM configuration (TabRepo)
    is first translated to HistGradientBoosting."""
    from ConfigSpace import Configuration

    config = dict(config)
    changes: list[str] = []
    if config.get("family") == "lightgbm":
        config, translated = _from_lightgbm(config)
        changes.append(translated)
    family = config.get("family")
    families = list(space["family"].choices)
    if family not in families:
        raise KBError(f"family {family!r} is not in this search space "
                      f"({', '.join(map(str, families))})")
    if task not in FAMILIES[family].tasks:
        raise KBError(f"family {family} does not do {task}")
    searched = {p.name: p for p in FAMILIES[family].params_for(task)}
    values: dict = {"family": family}
    for key, r in {**PREPROCESSING, **SEARCH_RANGES[family]}.items():
        if key not in searched:
            continue
        name = key if key in PREPROCESSING else f"{family}:{key}"
        if name not in space:
            continue
        given = config.get(key, searched[key].default)
        value, change = _into_range(key, given, r)
        if change:
            changes.append(change)
        values[name] = value
    for key, given in config.items():
        if key == "family" or key in values or f"{family}:{key}" in values:
            continue
        default = searched[key].default if key in searched else None
        if key not in searched:
            changes.append(f"{key} dropped: {family} has no such key")
        elif given != default:
            changes.append(f"{key} {given!r} -> {default!r}: the space does not search it")
    configuration = Configuration(space, values=values)  # raises if still invalid: a bug here
    return Fitted(configuration, to_config(configuration, task), tuple(changes))


def _into_range(key: str, given, r: Range) -> tuple[object, str | None]:
    if r.choices is not None:
        if given in r.choices:
            return given, None
        return r.default, f"{key} {given!r} -> {r.default!r}: not one of {list(r.choices)}"
    if given is None or isinstance(given, bool) or not isinstance(given, (int, float)) \
            or not math.isfinite(given):
        return r.default, f"{key} {given!r} -> {r.default!r}: the space searches numbers only"
    integer = isinstance(r.default, int)
    value = min(max(given, r.low), r.high)
    value = int(round(value)) if integer else float(value)
    if value != given:
        return value, f"{key} {given!r} -> {value!r}: outside the searched [{r.low:g}, {r.high:g}]"
    return value, None


# TabRepo's LightGBM keys and the HistGradientBoosting keys that do the same job.
_LIGHTGBM_KEYS = {"learning_rate": "learning_rate", "num_leaves": "max_leaf_nodes",
                  "min_data_in_leaf": "min_samples_leaf", "lambda_l2": "l2_regularization",
                  "num_boost_round": "max_iter", "n_estimators": "max_iter"}


def _from_lightgbm(config: dict) -> tuple[dict, str]:
    out = {"family": "hist_gradient_boosting"}
    dropped = []
    for key, value in config.items():
        if key == "family":
            continue
        if key in _LIGHTGBM_KEYS:
            out[_LIGHTGBM_KEYS[key]] = value
        else:
            dropped.append(key)
    note = "LightGBM translated to hist_gradient_boosting"
    return out, note + (f" (no counterpart for {', '.join(sorted(dropped))})" if dropped else "")


def sample_configs(task: str, n: int, seed: int, families: Iterable[str] | None = None) -> list[dict]:
    """``n`` distinct configurations: each family's space default first, then random points
    of the space (seeded), as complete configurations. The first ``n`` are the same whatever
    larger ``n`` is asked for, so a portfolio can grow without re-running what it had."""
    space = build_space(task, families, seed)
    defaults = []
    for family in space["family"].choices:
        point = {"family": family}
        defaults.append(fit_to_space(point, space, task).config)
    configs: list[dict] = []
    seen: set[str] = set()
    from kb.keys import canonical_json

    for config in [*defaults, *(to_config(c, task) for c in space.sample_configuration(max(4 * n, 400)))]:
        key = canonical_json(config)
        if key not in seen:
            seen.add(key)
            configs.append(config)
        if len(configs) == n:
            break
    return configs
