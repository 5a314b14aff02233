"""The mapping table between metakb's, OpenML's, auto-sklearn's and pymfe's names."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

import metafeatures
from metafeatures import ALIASES, FEATURE_NAMES, MetaFeatureError, detect_source, to_metakb
from metafeatures.names import CONVERTERS


def _autosklearn_rows(shared_data):
    """(names, rows) of every auto-sklearn feature_values.arff in the shared data."""
    import arff

    out = []
    for path in sorted((shared_data / "autosklearn").glob("*/feature_values.arff")):
        with open(path, encoding="utf-8") as f:
            data = arff.load(f)
        names = [n for n, _ in data["attributes"]][2:]  # instance_id, repetition
        out.append((path.parent.name, names, [row[2:] for row in data["data"]]))
    return out


def test_the_table_is_consistent():
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert {f.group for f in metafeatures.FEATURES} == set(metafeatures.GROUPS)
    for alias in ALIASES:
        assert alias.feature is None or alias.feature in FEATURE_NAMES, alias
        assert alias.convert in CONVERTERS, alias
    keys = [(a.source, a.name) for a in ALIASES]
    assert len(keys) == len(set(keys)), "a source name maps twice"


def test_every_auto_sklearn_name_is_related(shared_data):
    askl = {a.name for a in ALIASES if a.source == "autosklearn"}
    files = _autosklearn_rows(shared_data)
    names = {n for _, file_names, _ in files for n in file_names}
    assert len(names) == 37
    assert names <= askl


def test_auto_sklearn_redundant_names_convert_to_the_same_value(shared_data):
    """auto-sklearn stores some quantities several ways (a ratio, its inverse, their logs);
    each, converted, must give the same metakb value on every real row."""
    groups = {"Dimensionality": ("DatasetRatio", "InverseDatasetRatio", "LogDatasetRatio",
                                 "LogInverseDatasetRatio"),
              "NumberOfFeatures": ("NumberOfFeatures", "LogNumberOfFeatures"),
              "NumberOfInstances": ("NumberOfInstances", "LogNumberOfInstances"),
              "NumberOfClasses": ("NumberOfClasses", "ClassProbabilityMean")}
    checked = 0
    for _, names, rows in _autosklearn_rows(shared_data):
        for row in rows:
            vector = dict(zip(names, row))
            for feature, sources in groups.items():
                values = []
                for source_name in sources:
                    if vector.get(source_name) is None:
                        continue
                    keep = {k: v for k, v in vector.items() if k not in sources or k == source_name}
                    converted = to_metakb(keep, source="autosklearn").values
                    if feature in converted:
                        values.append(converted[feature])
                if len(values) > 1:
                    assert max(values) == pytest.approx(min(values), rel=1e-6), (feature, vector)
                    checked += 1
    assert checked > 500


def test_auto_sklearn_counts_leave_the_target_out_and_fractions_become_percentages():
    converted = to_metakb({"NumberOfFeatures": 10.0, "NumberOfInstances": 100.0,
                           "NumberOfNumericFeatures": 7.0, "NumberOfCategoricalFeatures": 3.0,
                           "NumberOfClasses": 2.0, "ClassProbabilityMax": 0.75,
                           "PercentageOfMissingValues": 0.1, "SymbolsMax": 4.0},
                          source="autosklearn").values
    assert converted["NumberOfFeatures"] == 11
    assert converted["NumberOfSymbolicFeatures"] == 4  # a class target is nominal
    assert converted["NumberOfNumericFeatures"] == 7
    assert converted["MajorityClassPercentage"] == pytest.approx(75.0)
    assert converted["PercentageOfMissingValues"] == pytest.approx(100 * 0.1 * 10 / 11)
    assert "MaxNominalAttDistinctValues" not in converted  # related, not convertible


def test_task_dependent_conversions_need_the_task():
    counts = {"NumberOfNumericFeatures": 5.0, "NumberOfCategoricalFeatures": 1.0,
              "NumberOfFeatures": 6.0}
    unknown = to_metakb(counts, source="autosklearn")
    assert "NumberOfNumericFeatures" not in unknown.values
    assert "NumberOfNumericFeatures" in unknown.unconverted
    regression = to_metakb(counts, source="autosklearn", task="regression").values
    assert regression["NumberOfNumericFeatures"] == 6 and regression["NumberOfSymbolicFeatures"] == 1


def test_pymfe_moments_convert_to_the_unbiased_ones():
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, size=50)
    n = x.size
    b1 = scipy.stats.skew(x) * ((n - 1) / n) ** 1.5  # pymfe's default skewness
    b2 = (scipy.stats.kurtosis(x) + 3) * (1 - 1 / n) ** 2 - 3  # and kurtosis
    converted = to_metakb({"nr_inst": float(n), "skewness.mean": b1, "kurtosis.mean": b2},
                          source="pymfe").values
    assert converted["MeanSkewnessOfNumericAtts"] == pytest.approx(scipy.stats.skew(x, bias=False), rel=1e-12)
    assert converted["MeanKurtosisOfNumericAtts"] == pytest.approx(
        scipy.stats.kurtosis(x, bias=False), rel=1e-12)


def test_landmarker_accuracy_becomes_an_error_rate():
    converted = to_metakb({"one_nn.mean": 0.9, "best_node.mean": 0.6}, source="pymfe").values
    assert converted == {"kNN1NErrRate": pytest.approx(0.1), "DecisionStumpErrRate": pytest.approx(0.4)}


def test_openml_negative_entropy_placeholder_is_dropped():
    # OpenML writes -1 as the mean attribute entropy of a dataset without nominal attributes.
    converted = to_metakb({"MeanAttributeEntropy": -1.0, "NumberOfInstances": 10.0}, source="openml")
    assert "MeanAttributeEntropy" not in converted.values
    assert converted.values["NumberOfInstances"] == 10


def test_exact_only_leaves_approximations_out():
    values = {"MeanAttributeEntropy": 1.5, "NumberOfInstances": 10.0}
    assert "MeanAttributeEntropy" in to_metakb(values, source="openml").values
    assert to_metakb(values, source="openml").approximate == ("MeanAttributeEntropy",)
    assert set(to_metakb(values, source="openml", exact_only=True).values) == {"NumberOfInstances"}


def test_source_is_detected_from_the_names():
    assert detect_source(["nr_inst", "skewness.mean"]) == "pymfe"
    assert detect_source(["LogNumberOfInstances", "NumberOfInstances"]) == "autosklearn"
    assert detect_source(["MeanSkewnessOfNumericAtts", "NumberOfInstances"]) == "openml"
    assert detect_source(["NumberOfInstances"]) == "openml"  # shared names default to OpenML's
    with pytest.raises(MetaFeatureError, match="mix"):
        detect_source(["nr_inst", "SkewnessMean"])


def test_unknown_and_non_finite_values_are_reported_not_converted():
    converted = to_metakb({"NumberOfInstances": 5.0, "Astrology": 1.0, "ClassEntropy": math.nan})
    assert converted.values == {"NumberOfInstances": 5.0}
    assert converted.unknown == ("Astrology",)


def test_the_readme_holds_the_generated_tables():
    from pathlib import Path

    from metafeatures.tables import markdown_tables

    text = (Path(metafeatures.__file__).parent / "README.md").read_text(encoding="utf-8")
    stale = [title for title, table in markdown_tables().items() if table not in text]
    assert not stale, f"regenerate with `python -m metafeatures.tables`: {stale}"
    assert all(f"`{name}`" in text for name in FEATURE_NAMES)
