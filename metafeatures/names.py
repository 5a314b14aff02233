"""Every meta-feature metakb computes, and how the names of OpenML, auto-sklearn and pymfe
relate to it: the one mapping table of the project.

``FEATURES`` lists metakb's features (OpenML quality names where OpenML has one). ``ALIASES``
lists the names other tools use, each with the conversion that turns its value into metakb's
definition and whether that conversion is exact. Rows whose ``feature`` is None name a related
quality that cannot be converted (auto-sklearn's ``Symbols*`` leave the target out where
OpenML counts it); they are listed so that every one of auto-sklearn's 37 names is accounted
for. ``to_metakb`` applies the table to a ``{name: value}`` mapping from any of the sources.

The conversions need a little context: the number of instances (to turn auto-sklearn's
``DatasetRatio`` into OpenML's ``Dimensionality``, whose feature count includes the target),
the number of classes, or whether the task is classification (OpenML counts a nominal target
among the symbolic features, a numeric one among the numeric features). The context is read
from the same mapping (each source's own count names) or given as ``task``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from metafeatures.errors import MetaFeatureError
from metafeatures.summaries import OPENML_SUMMARIES, SUMMARIES

GROUPS = ("general", "statistical", "info-theory", "landmarking", "model-based")
SOURCES = ("openml", "autosklearn", "pymfe")


@dataclass(frozen=True)
class Feature:
    name: str
    group: str
    description: str
    # None: not an OpenML quality. "same": OpenML's definition. Otherwise how OpenML's differs.
    openml: str | None = None


@dataclass(frozen=True)
class Alias:
    source: str  # "openml", "autosklearn" or "pymfe"
    name: str  # the name in that source
    feature: str | None  # the metakb feature it converts to; None when it cannot be converted
    convert: str = "same"  # a key of CONVERTERS
    exact: bool = True  # the converted value is metakb's definition, not an approximation
    note: str = ""


# -- the table -----------------------------------------------------------------------------------

_PYMFE_SUMMARY = {"Mean": "mean", "Stdv": "sd", "Min": "min", "Max": "max", "Quartile2": "median"}
_WORDS = {"Mean": "mean", "Stdv": "standard deviation", "Min": "minimum", "Max": "maximum",
          "Quartile1": "first quartile", "Quartile2": "median", "Quartile3": "third quartile"}
_SKEW_OPENML = "same for classification; for regression OpenML also counts the numeric target"

FEATURES: list[Feature] = []
ALIASES: list[Alias] = []


def _feature(name, group, description, openml=None, pymfe=None, autosklearn=None, related=()):
    """One row: a metakb feature and the other names for it.

    ``pymfe`` and ``autosklearn`` are a bare name or a list of (name[, converter[, exact[,
    note]]]) tuples; ``related`` lists (auto-sklearn name, note) pairs that relate to this
    feature but cannot be converted to it.
    """
    FEATURES.append(Feature(name, group, description, openml))
    if openml is not None:
        ALIASES.append(Alias("openml", name, name, "same", openml == "same",
                             "" if openml == "same" else openml))
    for source, entries in (("pymfe", pymfe), ("autosklearn", autosklearn)):
        for entry in [entries] if isinstance(entries, str) else entries or ():
            entry = (entry,) if isinstance(entry, str) else tuple(entry)
            alias_name, convert, exact, note = entry + ("same", True, "")[len(entry) - 1:]
            ALIASES.append(Alias(source, alias_name, name, convert, exact, note))
    for alias_name, note in related:
        ALIASES.append(Alias("autosklearn", alias_name, None, "same", False, note))


def _summaries(measure, group, what, kinds, openml=None, pymfe=None, convert="same",
               stdv_convert=None, autosklearn=None, autosklearn_convert=None,
               autosklearn_stdv_convert=None, autosklearn_note=""):
    """The summary family ``{kind}{measure}`` (mean, deviation, quartiles of a per-column measure)."""
    for kind in kinds:
        aliases = []
        if pymfe and kind in _PYMFE_SUMMARY:
            conv = stdv_convert if kind == "Stdv" and stdv_convert else convert
            aliases.append((f"{pymfe}.{_PYMFE_SUMMARY[kind]}", conv, True, ""))
        askl = []
        if autosklearn and kind in ("Mean", "Stdv", "Min", "Max"):
            suffix = {"Mean": "Mean", "Stdv": "STD", "Min": "Min", "Max": "Max"}[kind]
            conv = autosklearn_stdv_convert if kind == "Stdv" else autosklearn_convert
            askl.append((f"{autosklearn}{suffix}", conv, False, autosklearn_note))
        _feature(f"{kind}{measure}", group, f"{_WORDS[kind]} of {what}",
                 openml if kind in OPENML_SUMMARIES else None, pymfe=aliases, autosklearn=askl)


def _build() -> None:
    g = "general"
    _feature("NumberOfInstances", g, "rows", "same", "nr_inst",
             [("NumberOfInstances",), ("LogNumberOfInstances", "exp")])
    _feature("NumberOfFeatures", g, "attributes, the target included (OpenML's count)", "same",
             [("nr_attr", "plus_one")],
             [("NumberOfFeatures", "plus_one"), ("LogNumberOfFeatures", "exp_plus_one")])
    _feature("NumberOfNumericFeatures", g, "numeric attributes, a numeric target included", "same",
             [("nr_num", "plus_one_if_regression")],
             [("NumberOfNumericFeatures", "plus_one_if_regression")])
    _feature("NumberOfSymbolicFeatures", g, "nominal attributes, a class target included", "same",
             [("nr_cat", "plus_one_if_classification")],
             [("NumberOfCategoricalFeatures", "plus_one_if_classification")])
    _feature("NumberOfBinaryFeatures", g, "nominal attributes with two values, a binary target included",
             "OpenML counts the values an ARFF header declares; metakb counts those that occur")
    for kind in ("Numeric", "Symbolic", "Binary"):
        _feature(f"PercentageOf{kind}Features", g,
                 f"{kind.lower()} attributes as a percentage of NumberOfFeatures",
                 "same" if kind != "Binary" else "see NumberOfBinaryFeatures")
    _feature("Dimensionality", g, "NumberOfFeatures / NumberOfInstances", "same",
             [("attr_to_inst", "dimensionality_from_ratio"),
              ("inst_to_attr", "dimensionality_from_inverse_ratio")],
             [("DatasetRatio", "dimensionality_from_ratio"),
              ("InverseDatasetRatio", "dimensionality_from_inverse_ratio"),
              ("LogDatasetRatio", "dimensionality_from_log_ratio"),
              ("LogInverseDatasetRatio", "dimensionality_from_log_inverse_ratio")])
    _feature("RatioNominalToNumerical", g, "nominal / numeric feature columns (target left out)", None,
             [("cat_to_num",), ("num_to_cat", "reciprocal")],
             [("RatioNominalToNumerical", "askl_ratio"),
              ("RatioNumericalToNominal", "askl_inverse_ratio")])
    _feature("NumberOfMissingValues", g, "missing cells", "same", None, [("NumberOfMissingValues",)])
    _feature("PercentageOfMissingValues", g, "missing cells as a percentage of all attribute cells",
             "same", None, [("PercentageOfMissingValues", "missing_fraction_to_percent")])
    _feature("NumberOfInstancesWithMissingValues", g, "rows with a missing value", "same", None,
             [("NumberOfInstancesWithMissingValues",)])
    _feature("PercentageOfInstancesWithMissingValues", g, "rows with a missing value, in percent",
             "same", None, [("PercentageOfInstancesWithMissingValues", "percent")])
    _feature("NumberOfFeaturesWithMissingValues", g, "feature columns with a missing value", None,
             None, [("NumberOfFeaturesWithMissingValues",)])
    _feature("PercentageOfFeaturesWithMissingValues", g, "feature columns with a missing value, in percent",
             None, None, [("PercentageOfFeaturesWithMissingValues", "percent")])
    _feature("NumberOfClasses", g, "classes", "same", "nr_class",
             [("NumberOfClasses",), ("ClassProbabilityMean", "reciprocal")])
    _feature("MajorityClassSize", g, "rows of the most frequent class", "same")
    _feature("MinorityClassSize", g, "rows of the least frequent class", "same")
    _feature("MajorityClassPercentage", g, "share of the most frequent class, in percent", "same",
             [("freq_class.max", "percent")], [("ClassProbabilityMax", "percent")])
    _feature("MinorityClassPercentage", g, "share of the least frequent class, in percent", "same",
             [("freq_class.min", "percent")], [("ClassProbabilityMin", "percent")])
    _feature("StdvClassPercentage", g, "standard deviation of the class shares, in percent", None,
             [("freq_class.sd", "percent")], [("ClassProbabilitySTD", "class_sd_ddof0_to_percent")])
    for kind in ("Mean", "Stdv", "Min", "Max"):
        _feature(f"{kind}NominalAttDistinctValues", g,
                 f"{_WORDS[kind]} of the distinct values of nominal attributes, a class target included",
                 "same" if kind != "Stdv" else "same, except that OpenML reports 0 for one nominal attribute",
                 related=[("Symbols" + ("STD" if kind == "Stdv" else kind),
                           "auto-sklearn leaves the target out, OpenML and metakb count it")])
    ALIASES.append(Alias("autosklearn", "SymbolsSum", None, "same", False,
                         "total distinct values of nominal features; no metakb equivalent"))
    ALIASES.append(Alias("pymfe", "nr_bin", None, "same", False,
                         "pymfe counts every column with two values, OpenML only nominal ones"))

    s = "statistical"
    numeric = "the numeric feature columns'"
    _summaries("MeansOfNumericAtts", s, f"{numeric} means", OPENML_SUMMARIES, _SKEW_OPENML, "mean")
    _summaries("StdDevOfNumericAtts", s, f"{numeric} standard deviations", OPENML_SUMMARIES, _SKEW_OPENML, "sd")
    _summaries("SkewnessOfNumericAtts", s, f"{numeric} skewness (G1; constant columns left out)",
               SUMMARIES, _SKEW_OPENML, "skewness", "skew_b1_to_G1", "skew_b1_to_G1",
               "Skewness", "skew_g1_to_G1", "skew_g1_std_to_G1_stdv",
               "auto-sklearn: biased g1, a constant column counted as 0, on its training split")
    _summaries("KurtosisOfNumericAtts", s, f"{numeric} excess kurtosis (G2; constant columns left out)",
               SUMMARIES, _SKEW_OPENML, "kurtosis", "kurt_b2_to_G2", "kurt_b2_to_G2_scale",
               "Kurtosis", "kurt_g2_to_G2", "kurt_g2_std_to_G2_stdv",
               "auto-sklearn: biased g2, a constant column counted as -3, on its training split")
    _feature("NumberOfNumericAttsWithOutliers", s,
             "numeric columns with a value beyond 1.5 IQR of the quartiles", None, "nr_outliers")
    _feature("MeanAbsCorrelationOfNumericAtts", s, "mean |Pearson r| over pairs of numeric columns",
             None, "cor.mean")
    _feature("StdvAbsCorrelationOfNumericAtts", s, "standard deviation of |r| over pairs", None, "cor.sd")
    _feature("PercentageOfCorrelatedAttributePairs", s, "pairs with |r| >= 0.5, in percent", None,
             [("nr_cor_attr", "percent")])
    _feature("PCAFractionOfComponentsFor95PercentVariance", s,
             "principal components (standardised columns) needed for 95% of the variance / columns",
             None, None, [("PCAFractionOfComponentsFor95PercentVariance", "same", False,
                           "auto-sklearn's PCA also sees one-hot encoded nominal columns")])
    _feature("PCASkewnessFirstPC", s, "skewness of the data projected on the first component", None,
             None, [("PCASkewnessFirstPC", "same", False, "auto-sklearn: biased g1, other preprocessing")])
    _feature("PCAKurtosisFirstPC", s, "kurtosis of the data projected on the first component", None,
             None, [("PCAKurtosisFirstPC", "same", False, "auto-sklearn: biased g2, other preprocessing")])
    _feature("TargetSkewness", s, "skewness of a regression target")
    _feature("TargetKurtosis", s, "excess kurtosis of a regression target")
    _feature("MeanAbsCorrelationWithTarget", s, "mean |r| between numeric columns and a regression target")
    _feature("MaxAbsCorrelationWithTarget", s, "largest |r| between a numeric column and a regression target")

    i = "info-theory"
    nominal_only = ("OpenML uses nominal attributes only; metakb also discretises numeric ones "
                    "(equal on purely nominal data)")
    _feature("ClassEntropy", i, "entropy of the class, in bits", "same", "class_ent",
             [("ClassEntropy",)])
    _summaries("AttributeEntropy", i, "the attributes' entropies (numeric ones discretised), in bits",
               SUMMARIES, nominal_only, "attr_ent")
    _summaries("MutualInformation", i, "the attributes' mutual information with the class, in bits",
               SUMMARIES, nominal_only, "mut_inf")
    _summaries("JointEntropy", i, "the attributes' joint entropies with the class", ("Mean", "Stdv"),
               None, "joint_ent")
    _summaries("ClassConcentration", i, "the attributes' concentration coefficients with the class",
               ("Mean", "Stdv"), None, "class_conc")
    _feature("EquivalentNumberOfAtts", i, "ClassEntropy / MeanMutualInformation", nominal_only, "eq_num_attr")
    _feature("MeanNoiseToSignalRatio", i,
             "(MeanAttributeEntropy - MeanMutualInformation) / MeanMutualInformation", nominal_only, "ns_ratio")

    weka = "OpenML runs Weka's learner of that name, with its own folds"
    for name, learner, pymfe, openml in (
        ("DecisionStumpErrRate", "a decision stump", "best_node", weka),
        ("NaiveBayesErrRate", "Gaussian naive Bayes", "naive_bayes", weka),
        ("kNN1NErrRate", "1-nearest neighbour", "one_nn", weka),
        ("LDAErrRate", "linear discriminant analysis", "linear_discr", None),
    ):
        _feature(name, "landmarking", f"10-fold cross-validated error rate of {learner}", openml,
                 [(f"{pymfe}.mean", "one_minus")])

    m = "model-based"
    tree = "of a fully grown decision tree"
    _feature("TreeNumberOfLeaves", m, f"leaves {tree}", None, "leaves")
    _feature("TreeNumberOfNodes", m, f"internal nodes {tree}", None, "nodes")
    _feature("TreeNodesPerAttribute", m, "internal nodes / design-matrix columns", None, "nodes_per_attr")
    _feature("TreeNodesPerInstance", m, "internal nodes / rows", None, "nodes_per_inst")
    _feature("TreeDepth", m, f"depth {tree}", None, "tree_depth.max")
    for measure, what, pymfe in (
        ("TreeNodeDepth", "the depths of all nodes", "tree_depth"),
        ("TreeLeafDepth", "the depths of the leaves", "leaves_branch"),
        ("TreeLeafCorroboration", "the share of rows each leaf holds", "leaves_corrob"),
        ("TreeLeavesPerClass", "the share of leaves predicting each class", "leaves_per_class"),
        ("TreeShape", "the leaves' random-walk arrival entropies", "tree_shape"),
        ("TreeLeafHomogeneity", "leaves / tree shape", "leaves_homo"),
        ("TreeNodesPerLevel", "the internal nodes per depth level", "nodes_per_level"),
        ("TreeAttributeRepetition", "how often each split attribute is used", "nodes_repeated"),
        ("TreeImbalance", "pymfe's tree imbalance per leaf depth", "tree_imbalance"),
    ):
        _summaries(measure, m, what, ("Mean", "Stdv"), None, pymfe)
    _summaries("TreeFeatureImportance", m, "the Gini importances of the columns", ("Stdv", "Max"),
               None, "var_importance")


# -- conversions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """What a conversion may need, read from the source's own names."""

    values: Mapping[str, float]
    n: float | None
    k: float | None
    p: float | None
    task: str | None

    @property
    def classification(self) -> bool | None:
        return None if self.task is None else self.task != "regression"


def _skew_factor_b1(n):  # pymfe's b1 = g1 ((n-1)/n)^1.5 to G1 = g1 sqrt(n(n-1))/(n-2)
    return (n / (n - 1)) ** 1.5 * math.sqrt(n * (n - 1)) / (n - 2) if n and n > 2 else None


def _skew_factor_g1(n):
    return math.sqrt(n * (n - 1)) / (n - 2) if n and n > 2 else None


def _kurt_scale(n):  # dG2/dg2
    return (n + 1) * (n - 1) / ((n - 2) * (n - 3)) if n and n > 3 else None


def _times(factor, v):
    return None if factor is None or v is None else v * factor


def _b2_to_g2(v, n):
    return (v + 3.0) / (1.0 - 1.0 / n) ** 2 - 3.0


def _g2_to_G2(g2, n):
    return ((n + 1) * g2 + 6.0) * (n - 1) / ((n - 2) * (n - 3)) if n and n > 3 else None


def _plus_target(v, is_target_kind: bool | None):
    return None if is_target_kind is None else v + (1.0 if is_target_kind else 0.0)


def _sd_ddof0_to_ddof1(count):
    return math.sqrt(count / (count - 1)) if count and count > 1 else None


# key: (conversion, how the parity and mapping tables of the README describe it)
CONVERSIONS: dict[str, tuple[Callable[[float, _Context], float | None], str]] = {
    "same": (lambda v, c: v, "same value"),
    "percent": (lambda v, c: 100.0 * v, "× 100"),
    "one_minus": (lambda v, c: 1.0 - v, "1 − value"),
    "reciprocal": (lambda v, c: 1.0 / v if v else None, "1 / value"),
    "exp": (lambda v, c: math.exp(v), "exp(value)"),
    "plus_one": (lambda v, c: v + 1.0, "+ 1 (the target)"),
    "exp_plus_one": (lambda v, c: math.exp(v) + 1.0, "exp(value) + 1"),
    "plus_one_if_classification": (lambda v, c: _plus_target(v, c.classification),
                                   "+ 1 when the target is a class"),
    "plus_one_if_regression": (lambda v, c: _plus_target(
        v, None if c.classification is None else not c.classification), "+ 1 when the target is numeric"),
    # OpenML's Dimensionality counts the target as a feature: (p + 1) / n = p / n + 1 / n.
    "dimensionality_from_ratio": (lambda v, c: v + 1.0 / c.n if c.n else None, "value + 1/n"),
    "dimensionality_from_inverse_ratio": (lambda v, c: 1.0 / v + 1.0 / c.n if c.n and v else None,
                                          "1/value + 1/n"),
    "dimensionality_from_log_ratio": (lambda v, c: math.exp(v) + 1.0 / c.n if c.n else None,
                                      "exp(value) + 1/n"),
    "dimensionality_from_log_inverse_ratio": (lambda v, c: math.exp(-v) + 1.0 / c.n if c.n else None,
                                              "exp(−value) + 1/n"),
    # auto-sklearn writes 0 for a ratio whose denominator is 0; the ratio does not exist then.
    "askl_ratio": (lambda v, c: v if c.values.get("NumberOfNumericFeatures", 1) != 0 else None,
                   "same value (dropped when there is no numeric column)"),
    "askl_inverse_ratio": (lambda v, c: 1.0 / v if v else None, "1 / value"),
    # auto-sklearn divides by the feature cells, OpenML by all attribute cells (target included).
    "missing_fraction_to_percent": (lambda v, c: None if c.p is None else 100.0 * v * c.p / (c.p + 1),
                                    "× 100 p/(p+1)"),
    "class_sd_ddof0_to_percent": (lambda v, c: _times(_sd_ddof0_to_ddof1(c.k), 100.0 * v),
                                  "× 100 √(k/(k−1))"),
    "skew_b1_to_G1": (lambda v, c: _times(_skew_factor_b1(c.n), v), "× (n/(n−1))^1.5 · √(n(n−1))/(n−2)"),
    "skew_g1_to_G1": (lambda v, c: _times(_skew_factor_g1(c.n), v), "× √(n(n−1))/(n−2)"),
    "skew_g1_std_to_G1_stdv": (lambda v, c: _times(_skew_factor_g1(c.n), _times(
        _sd_ddof0_to_ddof1(c.values.get("NumberOfNumericFeatures")), v)), "× √(m/(m−1)) · √(n(n−1))/(n−2)"),
    "kurt_b2_to_G2": (lambda v, c: _g2_to_G2(_b2_to_g2(v, c.n), c.n) if c.n and c.n > 3 else None,
                      "b2 → g2 = (b2+3)/(1−1/n)² − 3 → G2"),
    "kurt_b2_to_G2_scale": (lambda v, c: _times(
        None if not c.n or c.n <= 3 else _kurt_scale(c.n) / (1.0 - 1.0 / c.n) ** 2, v),
        "× (n+1)(n−1)/((n−2)(n−3)(1−1/n)²)"),
    "kurt_g2_to_G2": (lambda v, c: _g2_to_G2(v, c.n), "G2 = ((n+1) g2 + 6)(n−1)/((n−2)(n−3))"),
    "kurt_g2_std_to_G2_stdv": (lambda v, c: _times(_kurt_scale(c.n), _times(
        _sd_ddof0_to_ddof1(c.values.get("NumberOfNumericFeatures")), v)),
        "× √(m/(m−1)) · (n+1)(n−1)/((n−2)(n−3))"),
}
CONVERTERS = {key: fn for key, (fn, _) in CONVERSIONS.items()}

# Where each source keeps the counts the conversions need.
_CONTEXT_NAMES = {
    "openml": ("NumberOfInstances", "NumberOfClasses", "NumberOfFeatures", -1.0),
    "autosklearn": ("NumberOfInstances", "NumberOfClasses", "NumberOfFeatures", 0.0),
    "pymfe": ("nr_inst", "nr_class", "nr_attr", 0.0),
}

_build()

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
_BY_SOURCE: dict[str, dict[str, Alias]] = {s: {} for s in SOURCES}
for _alias in ALIASES:
    _BY_SOURCE[_alias.source][_alias.name] = _alias


def aliases(source: str) -> dict[str, Alias]:
    """The names of ``source`` ("openml", "autosklearn" or "pymfe") and what they map to."""
    if source not in SOURCES:
        raise MetaFeatureError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    return dict(_BY_SOURCE[source])


def group_of(name: str) -> str | None:
    feature = BY_NAME.get(name)
    return None if feature is None else feature.group


@dataclass(frozen=True)
class Converted:
    """The result of ``to_metakb``: values under metakb's names, and what was not used."""

    values: dict[str, float]
    source: str
    unknown: tuple[str, ...] = ()  # names no source defines
    unconverted: tuple[str, ...] = ()  # known names that could not be converted here
    approximate: tuple[str, ...] = ()  # metakb names whose value is approximate


def detect_source(names: Iterable[str]) -> str:
    """Which vocabulary ``names`` are in: "pymfe", "autosklearn", or "openml" (OpenML's and
    metakb's names, the default where names are shared, such as ``NumberOfInstances``)."""
    names = set(names)
    pymfe = names & set(_BY_SOURCE["pymfe"])
    metakb_only = names & (set(FEATURE_NAMES) - set(_BY_SOURCE["autosklearn"]))
    askl_only = names & (set(_BY_SOURCE["autosklearn"]) - set(FEATURE_NAMES))
    found = [s for s, hit in (("pymfe", pymfe), ("autosklearn", askl_only), ("openml", metakb_only)) if hit]
    if len(found) > 1:
        examples = "; ".join(f"{s}: {sorted(h)[0]}" for s, h in (("pymfe", pymfe), ("autosklearn", askl_only),
                                                               ("openml/metakb", metakb_only)) if h)
        raise MetaFeatureError(f"the names mix vocabularies ({examples}); give the source explicitly")
    return found[0] if found else "openml"


def to_metakb(values: Mapping[str, float], source: str | None = None, task: str | None = None,
              exact_only: bool = False) -> Converted:
    """``values`` (named by OpenML, auto-sklearn, pymfe or metakb) as metakb features.

    ``source`` is detected from the names when not given. Non-finite values are dropped. When
    two source names convert to one feature, the exact conversion wins, then the first name.
    """
    clean = {str(k): float(v) for k, v in values.items()
             if isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) and math.isfinite(v)}
    source = source or detect_source(clean)
    table = aliases(source)
    context = _context(clean, source, task)
    out: dict[str, float] = {}
    exactness: dict[str, bool] = {}
    unknown, unconverted = [], []
    for name, value in clean.items():
        alias = table.get(name)
        if alias is None and source == "openml" and name in BY_NAME:
            alias = Alias("openml", name, name)  # a metakb feature OpenML does not define
        if alias is None:
            unknown.append(name)
            continue
        if alias.feature is None or (exact_only and not alias.exact):
            unconverted.append(name)
            continue
        converted = CONVERTERS[alias.convert](value, context)
        if converted is None or not math.isfinite(converted) or (
                source == "openml" and alias.feature in _OPENML_PLACEHOLDERS and converted < 0):
            unconverted.append(name)
            continue
        if alias.feature in out and (exactness[alias.feature] or not alias.exact):
            continue
        out[alias.feature] = converted
        exactness[alias.feature] = alias.exact
    return Converted(out, source, tuple(unknown), tuple(unconverted),
                     tuple(sorted(k for k, exact in exactness.items() if not exact)))


# OpenML writes -1 for the mean attribute entropy of a dataset without nominal attributes.
_OPENML_PLACEHOLDERS = frozenset(f"{kind}{measure}" for kind in SUMMARIES
                         for measure in ("AttributeEntropy", "MutualInformation"))


def _context(values: Mapping[str, float], source: str, task: str | None) -> _Context:
    n_name, k_name, p_name, p_offset = _CONTEXT_NAMES[source]
    n = values.get(n_name)
    if n is None and source == "autosklearn" and "LogNumberOfInstances" in values:
        n = math.exp(values["LogNumberOfInstances"])
    k = values.get(k_name)
    p = values.get(p_name)
    if task is None and k is not None:
        task = "regression" if k == 0 and source == "openml" else (
            "binary" if k == 2 else "multiclass" if k > 2 else None)
    return _Context(values, n, k, None if p is None else p + p_offset, task)

