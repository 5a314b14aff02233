"""Model families and their configuration keys.

A configuration is a flat JSON object: ``family`` plus that family's keys plus the
preprocessing keys every family shares (``imputation``, ``scaling``, ``encoding``), e.g.
``{"family": "random_forest", "n_estimators": 200, "max_depth": 12}``. ``normalize_config``
checks one and fills in every default, so two spellings of one model are one configuration
(one ``config_id``) in the KB. The ranges here are what is *valid*; a search space chooses
narrower ones over the same keys.

Every family here exports to ONNX (``search.export``). HistGradientBoosting exports only with
protobuf < 7 (pinned in pyproject.toml): skl2onnx 1.20 writes a Python bool into an integer
ONNX attribute, which protobuf 7 rejects; with protobuf 6 it converts and matches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kb.errors import KBError
from kb.schema import TASKS
from search.metrics import CLASSIFICATION
from search.preprocess import ENCODINGS, IMPUTATIONS, SCALINGS


@dataclass(frozen=True)
class Param:
    """One configuration key: its type, default and the values that are valid."""

    name: str
    kind: type  # int, float, str or bool
    default: object
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None
    choices: tuple | None = None
    nullable: bool = False  # null is valid and means what `help` says
    tasks: tuple[str, ...] = TASKS
    help: str = ""

    def check(self, value):
        """``value`` in canonical form; ValueError says what is valid."""
        if value is None:
            if self.nullable:
                return None
            raise ValueError(f"must not be null; {self.describe()}")
        if hasattr(value, "item") and not isinstance(value, (list, dict)):
            value = value.item()  # numpy scalars from a search space
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"must be true or false, not {value!r}")
            return value
        if self.kind is str:
            if value not in self.choices:
                raise ValueError(f"must be one of {', '.join(map(repr, self.choices))}, "
                                 f"not {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number, not {value!r}; {self.describe()}")
        if self.kind is int:
            if value != int(value):
                raise ValueError(f"must be a whole number, not {value!r}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"must be finite, not {value!r}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValueError(f"must be in [{_number(self.low)}, {_number(self.high)}], not {value!r}")
        return value

    def describe(self) -> str:
        if self.choices:
            text = "one of " + ", ".join(map(repr, self.choices))
        elif self.kind is bool:
            text = "true or false"
        else:
            text = (f"{'a whole number' if self.kind is int else 'a number'} in "
                    f"[{_number(self.low)}, {_number(self.high)}]")
        return text + (" or null" if self.nullable else "")


def _number(value) -> str:
    return "inf" if value is None else f"{value:g}"


@dataclass(frozen=True)
class Family:
    name: str
    params: tuple[Param, ...]
    build: Callable[[dict, str, int, int], object]  # (config, task, seed, threads) -> estimator
    scaling: str = "none"  # default preprocessing for the family
    encoding: str = "ordinal"
    tasks: tuple[str, ...] = TASKS
    help: str = ""

    def all_params(self) -> tuple[Param, ...]:
        return (
            Param("imputation", str, "median", choices=IMPUTATIONS,
                  help="how missing numbers are filled"),
            Param("scaling", str, self.scaling, choices=SCALINGS, help="how numbers are scaled"),
            Param("encoding", str, self.encoding, choices=ENCODINGS,
                  help="how text columns become numbers"),
            *self.params,
        )

    def params_for(self, task: str) -> tuple[Param, ...]:
        return tuple(p for p in self.all_params() if task in p.tasks)


# -- builders: (config, task, seed, threads) -> an unfitted estimator --------------------------


def _forest(extra: bool):
    def build(c: dict, task: str, seed: int, threads: int):
        from sklearn import ensemble

        name = ("ExtraTrees" if extra else "RandomForest") + (
            "Regressor" if task == "regression" else "Classifier")
        max_features = c["max_features"]
        if max_features is None:
            max_features = 1.0 if task == "regression" else "sqrt"
        return getattr(ensemble, name)(
            n_estimators=c["n_estimators"], max_depth=c["max_depth"],
            min_samples_leaf=c["min_samples_leaf"], max_features=max_features,
            bootstrap=c["bootstrap"], random_state=seed, n_jobs=threads)

    return build


def _hist_gradient_boosting(c: dict, task: str, seed: int, threads: int):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    # No early stopping: it would hold out rows of its own and make max_iter a ceiling.
    return model(max_iter=c["max_iter"], learning_rate=c["learning_rate"],
                 max_leaf_nodes=c["max_leaf_nodes"], max_depth=c["max_depth"],
                 min_samples_leaf=c["min_samples_leaf"],
                 l2_regularization=c["l2_regularization"], early_stopping=False,
                 random_state=seed)


def _linear(c: dict, task: str, seed: int, threads: int):
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "regression":
        return Ridge(alpha=c["alpha"])
    # One key for both tasks: regularisation strength, so a larger alpha is always simpler.
    return LogisticRegression(C=1.0 / c["alpha"], max_iter=c["max_iter"], random_state=seed)


def _knn(c: dict, task: str, seed: int, threads: int):
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    model = KNeighborsRegressor if task == "regression" else KNeighborsClassifier
    return model(n_neighbors=c["n_neighbors"], weights=c["weights"], p=c["p"], n_jobs=threads)


# libsvm's default is no limit: a linear kernel on unscaled features (scaling "none", values
# up to 3e7 on tokyo1) never converges and trains for hours. Fits that converge take a few
# hundred to thousands of iterations; a million (about 4 s on 760 rows) changes none of them.
SVM_MAX_ITER = 1_000_000


def _svm(c: dict, task: str, seed: int, threads: int):
    from sklearn.svm import SVC, SVR

    gamma = "scale" if c["gamma"] is None else c["gamma"]
    if task == "regression":
        return SVR(C=c["C"], kernel=c["kernel"], gamma=gamma, epsilon=c["epsilon"], max_iter=SVM_MAX_ITER)
    # Probabilities (Platt scaling) are what the scores and the parity check read.
    return SVC(C=c["C"], kernel=c["kernel"], gamma=gamma, probability=True, random_state=seed,
               max_iter=SVM_MAX_ITER)


def _mlp(c: dict, task: str, seed: int, threads: int):
    from search.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

    model = TorchMLPRegressor if task == "regression" else TorchMLPClassifier
    return model(n_layers=c["n_layers"], width=c["width"], dropout=c["dropout"],
                 learning_rate=c["learning_rate"], weight_decay=c["weight_decay"],
                 epochs=c["epochs"], batch_size=c["batch_size"], random_state=seed,
                 n_threads=threads)


_FOREST_PARAMS = (
    Param("n_estimators", int, 100, 1, 5000, help="trees"),
    Param("max_depth", int, None, 1, 1000, nullable=True, help="null: grow until leaves are pure"),
    Param("min_samples_leaf", int, 1, 1, 10000),
    Param("max_features", float, None, 0.01, 1.0, nullable=True,
          help="fraction of features per split; null: sqrt (classification), all (regression)"),
)

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("random_forest", (*_FOREST_PARAMS, Param("bootstrap", bool, True)), _forest(False),
               help="scikit-learn RandomForest"),
        Family("extra_trees", (*_FOREST_PARAMS, Param("bootstrap", bool, False)), _forest(True),
               help="scikit-learn ExtraTrees"),
        Family("hist_gradient_boosting", (
            Param("max_iter", int, 100, 1, 10000, help="boosting rounds"),
            Param("learning_rate", float, 0.1, 1e-4, 1.0),
            Param("max_leaf_nodes", int, 31, 2, 4096),
            Param("max_depth", int, None, 1, 1000, nullable=True),
            Param("min_samples_leaf", int, 20, 1, 10000),
            Param("l2_regularization", float, 0.0, 0.0, 1e6),
        ), _hist_gradient_boosting, help="scikit-learn HistGradientBoosting (needs protobuf < 7)"),
        Family("linear", (
            Param("alpha", float, 1.0, 1e-8, 1e8,
                  help="regularisation strength: Ridge alpha, 1/C of LogisticRegression"),
            Param("max_iter", int, 1000, 10, 100000, tasks=CLASSIFICATION),
        ), _linear, scaling="standard", encoding="onehot",
            help="LogisticRegression (classification), Ridge (regression)"),
        Family("knn", (
            Param("n_neighbors", int, 5, 1, 1000),
            Param("weights", str, "uniform", choices=("uniform", "distance")),
            Param("p", int, 2, 1, 2, help="1: Manhattan, 2: Euclidean distance"),
        ), _knn, scaling="standard", encoding="onehot", help="k-nearest neighbours"),
        Family("svm", (
            Param("C", float, 1.0, 1e-6, 1e6),
            Param("kernel", str, "rbf", choices=("rbf", "linear", "poly", "sigmoid")),
            Param("gamma", float, None, 1e-8, 1e4, nullable=True, help="null: 'scale'"),
            Param("epsilon", float, 0.1, 0.0, 1e6, tasks=("regression",)),
        ), _svm, scaling="standard", encoding="onehot",
            help="libsvm SVC with Platt probabilities (classification), SVR (regression)"),
        Family("mlp", (
            Param("n_layers", int, 2, 0, 8, help="hidden layers"),
            Param("width", int, 64, 1, 4096, help="units per hidden layer"),
            Param("dropout", float, 0.0, 0.0, 0.9),
            Param("learning_rate", float, 1e-3, 1e-6, 1.0),
            Param("weight_decay", float, 0.0, 0.0, 1.0),
            Param("epochs", int, 50, 1, 10000),
            Param("batch_size", int, 64, 1, 65536, help="training batch"),
        ), _mlp, scaling="standard", encoding="onehot", help="torch multilayer perceptron"),
    )
}


def family_of(config: Mapping) -> Family:
    name = config.get("family")
    if name not in FAMILIES:
        raise KBError(f"configuration needs \"family\": one of {', '.join(FAMILIES)}"
                      + (f" (not {name!r})" if name is not None else ""))
    return FAMILIES[name]


def normalize_config(config: Mapping, task: str) -> dict:
    """``config`` complete and checked for ``task``: every key of its family, defaults filled.

    Raises KBError naming the key, what was given and what is valid.
    """
    if not isinstance(config, Mapping):
        raise KBError(f"a configuration is a JSON object, not {type(config).__name__}")
    family = family_of(config)
    if task not in family.tasks:
        raise KBError(f"family {family.name} does not do {task}")
    params = {p.name: p for p in family.params_for(task)}
    for key in config:
        if key != "family" and key not in params:
            other_task = any(p.name == key for p in family.all_params())
            raise KBError(
                f"{family.name}: {key!r} " + (f"does not apply to {task}" if other_task else
                                              "is not one of its keys")
                + f"; its keys are: {', '.join(params)}")
    out = {"family": family.name}
    for name, param in params.items():
        try:
            out[name] = param.check(config.get(name, param.default))
        except ValueError as e:
            raise KBError(f"{family.name}: {name} {e}") from None
    return out


def build_estimator(config: dict, task: str, seed: int, threads: int):
    """The unfitted estimator of a normalized ``config``."""
    return FAMILIES[config["family"]].build(config, task, seed, threads)
