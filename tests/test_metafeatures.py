"""The pure meta-feature functions: definitions checked against independent computations,
robustness to ugly tables, determinism and row sampling."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats

import metafeatures
from metafeatures import MetaFeatureError, compute, extract
from metafeatures.table import MAX_ONE_HOT_LEVELS, prepare, sample_rows

CLASS_BASED = ("NumberOfClasses", "MajorityClassSize", "ClassEntropy", "MeanMutualInformation",
               "EquivalentNumberOfAtts", "DecisionStumpErrRate", "kNN1NErrRate", "TreeNumberOfLeaves")


def _blobs(n=240, p=4, k=3, seed=0):
    """Continuous, well separated classes: no distance ties, no equally good stumps."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = rng.normal(size=(n, p)) + y[:, None] * rng.uniform(0.5, 1.5, size=p)
    return pd.DataFrame(X, columns=[f"f{j}" for j in range(p)]), pd.Series(y, name="target")


def _finite(values: dict) -> bool:
    return all(isinstance(v, float) and math.isfinite(v) for v in values.values())


# -- definitions -------------------------------------------------------------------------------


def test_counts_follow_openml_which_counts_the_target_as_an_attribute():
    X = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "b": ["x", "y", "x", None],
                      "c": ["p", "p", "q", "q"]})
    v = extract(X, ["u", "v", "u", "u"], "binary", groups="general")
    assert v["NumberOfInstances"] == 4
    assert v["NumberOfFeatures"] == 4  # three columns and the target
    assert v["NumberOfNumericFeatures"] == 1
    assert v["NumberOfSymbolicFeatures"] == 3  # b, c and the nominal target
    assert v["NumberOfBinaryFeatures"] == 3  # b and c have two values each, so has the target
    assert v["NumberOfMissingValues"] == 2
    assert v["NumberOfInstancesWithMissingValues"] == 2
    assert v["PercentageOfMissingValues"] == pytest.approx(100 * 2 / (4 * 4))
    assert v["NumberOfFeaturesWithMissingValues"] == 2
    assert v["PercentageOfFeaturesWithMissingValues"] == pytest.approx(100 * 2 / 3)
    assert v["Dimensionality"] == pytest.approx(4 / 4)
    assert (v["MajorityClassSize"], v["MinorityClassSize"]) == (3, 1)
    assert v["MajorityClassPercentage"] == pytest.approx(75.0)
    assert v["MaxNominalAttDistinctValues"] == 2 and v["MinNominalAttDistinctValues"] == 2
    assert v["RatioNominalToNumerical"] == pytest.approx(2.0)


def test_counts_equal_openml_qualities_of_the_same_dataset(shared_data):
    """OpenML's own qualities (TabRepo's task metadata) for datasets PMLB also ships."""
    tasks = pd.read_csv(shared_data / "tabrepo" / "task_metadata.csv")
    for openml_name, pmlb_name, names in (
        ("wine-quality-white", "wine_quality_white",
         ("NumberOfInstances", "NumberOfFeatures", "NumberOfNumericFeatures",
          "NumberOfSymbolicFeatures", "NumberOfClasses", "NumberOfMissingValues",
          "MaxNominalAttDistinctValues", "MajorityClassSize", "MinorityClassSize")),
        # PMLB's yeast lacks 5 rows and a class of OpenML's; the column counts still agree.
        ("yeast", "yeast", ("NumberOfFeatures", "NumberOfNumericFeatures", "NumberOfSymbolicFeatures")),
    ):
        frame = pd.read_csv(shared_data / "pmlb" / f"{pmlb_name}.tsv.gz", sep="\t")
        ours = extract(frame.drop(columns="target"), frame["target"], "multiclass", groups="general")
        openml = tasks.loc[tasks["name"] == openml_name].iloc[0]
        converted = metafeatures.to_metakb({n: float(openml[n]) for n in names}, source="openml").values
        for name in names:
            assert ours[name] == converted[name], (openml_name, name)


def test_per_column_statistics_match_scipy():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.gamma(2.0, size=200), "b": rng.normal(size=200),
                      "c": rng.exponential(size=200), "d": rng.uniform(size=200)})
    v = extract(X, rng.integers(0, 2, 200), "binary", groups="statistical")
    skew = scipy.stats.skew(X, bias=False)
    kurt = scipy.stats.kurtosis(X, bias=False)
    assert v["MeanSkewnessOfNumericAtts"] == pytest.approx(np.mean(skew), rel=1e-10)
    assert v["MaxKurtosisOfNumericAtts"] == pytest.approx(np.max(kurt), rel=1e-10)
    assert v["StdvSkewnessOfNumericAtts"] == pytest.approx(np.std(skew, ddof=1), rel=1e-10)
    # OpenML's quartiles (Commons Math): position p (n + 1), i.e. numpy's "weibull" method.
    assert v["Quartile1StdDevOfNumericAtts"] == pytest.approx(
        np.quantile(X.std(ddof=1), 0.25, method="weibull"), rel=1e-12)
    r = np.abs(np.corrcoef(X.to_numpy(), rowvar=False)[np.tril_indices(4, -1)])
    assert v["MeanAbsCorrelationOfNumericAtts"] == pytest.approx(r.mean(), rel=1e-10)
    assert v["PercentageOfCorrelatedAttributePairs"] == pytest.approx(100 * np.mean(r >= 0.5))


def test_missing_values_are_left_out_of_column_statistics():
    rng = np.random.default_rng(4)
    a = rng.gamma(2.0, size=300)
    with_gaps = a.copy()
    with_gaps[::7] = np.nan
    v = extract(pd.DataFrame({"a": with_gaps, "b": rng.normal(size=300)}), rng.integers(0, 2, 300),
                "binary", groups="statistical")
    present = with_gaps[~np.isnan(with_gaps)]
    assert v["MaxMeansOfNumericAtts"] == pytest.approx(max(present.mean(), v["MinMeansOfNumericAtts"]))
    assert scipy.stats.skew(present, bias=False) in (
        pytest.approx(v["MaxSkewnessOfNumericAtts"]), pytest.approx(v["MinSkewnessOfNumericAtts"]))


def test_entropies_on_nominal_data_are_the_textbook_ones():
    rng = np.random.default_rng(5)
    a = rng.choice(["x", "y", "z"], size=400, p=[0.5, 0.3, 0.2])
    y = np.where(a == "x", 0, rng.integers(0, 2, 400))
    v = extract(pd.DataFrame({"a": a}), y, "binary", groups="info-theory")

    def entropy(labels):
        _, counts = np.unique(labels, return_counts=True)
        p = counts / counts.sum()
        return -(p * np.log2(p)).sum()

    assert v["ClassEntropy"] == pytest.approx(entropy(y), rel=1e-12)
    assert v["MeanAttributeEntropy"] == pytest.approx(entropy(a), rel=1e-12)
    from sklearn.metrics import mutual_info_score

    # pymfe's 1e-8 smoothing of joint probabilities moves the value by well under 1e-6 bits.
    assert v["MeanMutualInformation"] == pytest.approx(mutual_info_score(a, y) / np.log(2), abs=1e-6)
    assert v["EquivalentNumberOfAtts"] == pytest.approx(v["ClassEntropy"] / v["MeanMutualInformation"])


def test_landmarkers_match_scikit_learn_cross_validation():
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.tree import DecisionTreeClassifier

    X, y = _blobs(n=300, p=5, k=3, seed=6)
    v = extract(X, y, "multiclass", groups="landmarking")
    folds = StratifiedKFold(10)
    for name, model in (("NaiveBayesErrRate", GaussianNB()),
                        ("LDAErrRate", LinearDiscriminantAnalysis()),
                        ("kNN1NErrRate", KNeighborsClassifier(1)),
                        ("DecisionStumpErrRate", DecisionTreeClassifier(max_depth=1, random_state=0))):
        expected = 1 - cross_val_score(model, X, y, cv=folds).mean()
        assert v[name] == pytest.approx(expected, abs=1e-12), name


def test_nearest_neighbour_ties_take_the_majority_whatever_the_row_order():
    # Row 0 (class 0) has three training rows at distance 1 in other folds: two of class 1.
    from metafeatures.nearest import one_nn

    X = np.array([[0.0], [1.0], [-1.0], [1.0], [5.0], [6.0]])
    y = np.array([0, 1, 1, 0, 0, 1])
    fold = np.array([0, 1, 1, 1, 1, 1])
    assert one_nn(X, y, fold, 2)[0] == 1
    order = np.array([0, 3, 2, 1, 5, 4])
    assert one_nn(X[order], y[order], fold[order], 2)[0] == 1


def test_nearest_neighbour_matches_a_naive_search_on_tie_heavy_data():
    """Duplicates and equidistant rows everywhere: the merged, fold-aware search must give
    what comparing every pair and voting among the exactly nearest gives."""
    from metafeatures.nearest import one_nn

    rng = np.random.default_rng(13)
    for p, levels in ((2, 3), (4, 2), (3, 5)):
        X = rng.integers(0, levels, size=(600, p)).astype(float)
        y = rng.integers(0, 3, 600)
        fold = rng.integers(0, 10, 600)
        expected = np.empty(600, dtype=np.int64)
        for i in range(600):
            other = fold != fold[i]
            d = ((X[other] - X[i]) ** 2).sum(axis=1)
            expected[i] = np.argmax(np.bincount(y[other][d == d.min()], minlength=3))
        assert np.array_equal(one_nn(X, y, fold, 3), expected), (p, levels)


def test_both_neighbour_searches_agree(monkeypatch):
    from metafeatures import nearest

    rng = np.random.default_rng(14)
    for scale in (1.0, 1e6, 1e-6):  # the float32 bound must hold at any magnitude
        X = np.vstack([rng.normal(size=(1500, 6)), rng.integers(0, 2, size=(500, 6))]) * scale + 3 * scale
        y = rng.integers(0, 3, X.shape[0])
        fold = rng.integers(0, 10, X.shape[0])
        answers = []
        for tree in (True, False):
            from scipy.spatial import cKDTree

            monkeypatch.setattr(nearest, "_tree_if_faster",
                                lambda distinct, *args, tree=tree: cKDTree(distinct) if tree else None)
            answers.append(nearest.one_nn(X, y, fold, 3))
        assert np.array_equal(*answers), scale


def test_tree_features_describe_the_scikit_learn_tree():
    from sklearn.tree import DecisionTreeClassifier

    X, y = _blobs(seed=7)
    v = extract(X, y, "multiclass", groups="model-based", seed=3)
    tree = DecisionTreeClassifier(random_state=3).fit(X.to_numpy(), y)
    assert v["TreeNumberOfLeaves"] == tree.get_n_leaves()
    assert v["TreeDepth"] == tree.get_depth()
    assert v["TreeNumberOfNodes"] == tree.tree_.node_count - tree.get_n_leaves()
    assert v["TreeNodesPerInstance"] == pytest.approx(v["TreeNumberOfNodes"] / len(y))


# -- robustness --------------------------------------------------------------------------------


@pytest.fixture
def ugly():
    rng = np.random.default_rng(8)
    n = 200
    frame = pd.DataFrame({
        "number": rng.normal(size=n),
        "constant": np.full(n, 3.0),
        "gaps": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        "infinite": np.where(rng.random(n) < 0.05, np.inf, rng.normal(size=n)),
        "text": rng.choice(["a", "b", "c"], n),
        "mixed": np.array([1, "x", 2.5, None] * (n // 4), dtype=object),
        "ids": [f"id{i}" for i in range(n)],
        "flag": rng.random(n) < 0.5,
        "empty": np.full(n, np.nan),
        "category": pd.Categorical(rng.choice(["u", "v"], n)),
        "numbers_as_text": [str(v) for v in rng.integers(0, 50, n)],
    })
    y = np.array(["rare"] + ["common"] * (n - 1))  # a class with one row
    return frame, y


def test_ugly_table_gives_finite_values_without_warnings(ugly):
    X, y = ugly
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e = compute(X, y, "binary")
    assert _finite(e.values)
    assert set(metafeatures.GROUPS) == {metafeatures.group_of(n) for n in e.values}
    v = e.values
    assert v["MinorityClassSize"] == 1
    # numeric: number, constant, gaps, infinite, empty and numbers_as_text
    assert v["NumberOfNumericFeatures"] == 6
    # nominal: text, mixed, ids, flag, category, and the class target
    assert v["NumberOfSymbolicFeatures"] == 6
    assert v["MaxNominalAttDistinctValues"] == 200  # the id column
    infinite = int(np.isinf(X["infinite"]).sum())
    none_in_mixed = len(X) // 4
    assert v["NumberOfMissingValues"] == X["gaps"].isna().sum() + infinite + len(X) + none_in_mixed
    assert any("infinite" in note for note in e.notes)
    assert any("constant" in note for note in e.notes)


def test_mixed_column_is_nominal_and_numbers_in_text_are_numeric(ugly):
    X, _ = ugly
    data = prepare(X, np.zeros(len(X)), "regression")
    assert "mixed" in data.categorical_names and "numbers_as_text" in data.numeric_names
    assert "flag" in data.categorical_names and "category" in data.categorical_names


def test_a_category_column_is_symbolic_even_with_numeric_labels():
    # An ARFF nominal attribute {1,2,3} arrives as a category column; OpenML counts it symbolic.
    X = pd.DataFrame({"size": pd.Categorical(["1", "2", "3", "1"] * 10, categories=["1", "2", "3"]),
                      "code": pd.Categorical([1, 2, 1, 2] * 10), "x": np.arange(40.0)})
    data = prepare(X, np.arange(40) % 2, "binary")
    assert data.categorical_names == ("size", "code") and data.numeric_names == ("x",)
    assert list(data.levels) == [3, 2]
    values = metafeatures.extract(X, np.arange(40) % 2, "binary", groups="general")
    assert (values["NumberOfSymbolicFeatures"], values["NumberOfNumericFeatures"]) == (3, 1)


def test_many_categories_do_not_blow_up_the_design_matrix():
    n = 5000
    X = pd.DataFrame({"id": [f"row{i}" for i in range(n)], "x": np.arange(n, dtype=float)})
    data = prepare(X, np.arange(n) % 2, "binary")
    assert data.design.shape[1] <= 1 + MAX_ONE_HOT_LEVELS
    v = extract(X, np.arange(n) % 2, "binary", groups=["general", "landmarking"])
    assert v["MaxNominalAttDistinctValues"] == n and _finite(v)


def test_more_columns_than_rows():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(25, 1500))
    e = compute(X, rng.integers(0, 3, 25), "multiclass")
    assert _finite(e.values)
    assert e.values["Dimensionality"] == pytest.approx(1501 / 25)
    assert 0 < e.values["PCAFractionOfComponentsFor95PercentVariance"] <= 1
    assert any("1000 of 1500" in note for note in e.notes)


def test_regression_has_no_class_based_features_and_says_why():
    rng = np.random.default_rng(10)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.gamma(2, size=300), "c": rng.choice(["p", "q"], 300)})
    target = 3 * X["a"] + rng.normal(size=300)
    e = compute(X, target, "regression")
    assert not set(CLASS_BASED) & set(e.values)
    assert e.values["NumberOfNumericFeatures"] == 3  # a, b and the numeric target
    assert e.values["MaxAbsCorrelationWithTarget"] > 0.9
    assert "MeanAttributeEntropy" in e.values  # not class-based: still there
    assert any("landmarking" in note for note in e.notes)


def test_rows_without_a_target_are_left_out_with_a_note():
    X, y = _blobs()
    y = y.astype(float).to_numpy().copy()
    y[:5] = np.nan
    e = compute(X, y, "multiclass", groups="general")
    assert e.values["NumberOfInstances"] == len(y) - 5
    assert any("without a usable target" in note for note in e.notes)


@pytest.mark.parametrize("call, message", [
    (lambda X, y: compute(X, y, "clustering"), "unknown task"),
    (lambda X, y: compute(X, y, "multiclass", groups="general,astrology"), "unknown group 'astrology'"),
    (lambda X, y: compute(X, y[:-1], "multiclass"), "rows but y has"),
    (lambda X, y: compute(X.iloc[:0], y[:0], "multiclass"), "no rows"),
    (lambda X, y: compute(X, y, "multiclass", seed=-1), "seed"),
    (lambda X, y: compute(X, y, "multiclass", max_rows=0), "max_rows"),
    (lambda X, y: compute(X, ["a"] * len(y), "regression"), "numeric"),
])
def test_bad_input_raises_a_clear_error(call, message):
    X, y = _blobs(n=60)
    with pytest.raises(MetaFeatureError, match=message):
        call(X, y)


# -- determinism and sampling -----------------------------------------------------------------


def test_same_seed_same_values_and_row_order_does_not_matter_for_row_free_groups():
    X, y = _blobs(n=500, p=6, seed=11)
    assert extract(X, y, "multiclass", seed=4) == extract(X, y, "multiclass", seed=4)
    order = np.random.default_rng(0).permutation(len(y))
    groups = ["general", "statistical", "info-theory"]
    a = extract(X, y, "multiclass", groups=groups)
    b = extract(X.iloc[order], y.iloc[order], "multiclass", groups=groups)
    assert a.keys() == b.keys()
    for name in a:
        assert b[name] == pytest.approx(a[name], rel=1e-9, abs=1e-12), name


def test_rows_beyond_max_rows_are_sampled_with_the_seed_and_the_size_recorded():
    X, y = _blobs(n=1200, p=5, seed=12)
    e = compute(X, y, "multiclass", max_rows=400, seed=7)
    for name in ("kNN1NErrRate", "TreeNumberOfLeaves", "MeanAbsCorrelationOfNumericAtts"):
        assert e.sample_rows[name] == 400
    assert "NumberOfInstances" not in e.sample_rows and e.values["NumberOfInstances"] == 1200
    assert "MeanSkewnessOfNumericAtts" not in e.sample_rows  # cheap: every row
    rows = sample_rows(1200, 400, 7)
    direct = extract(X.iloc[rows], y.iloc[rows], "multiclass", groups=["landmarking", "model-based"],
                     max_rows=None, seed=7)
    for name, value in direct.items():
        assert e.values[name] == value, name
    other = compute(X, y, "multiclass", max_rows=400, seed=8)
    assert other.values["MeanSkewnessOfNumericAtts"] == e.values["MeanSkewnessOfNumericAtts"]
    assert any(other.values[n] != e.values[n] for n in e.sample_rows)


def test_groups_select_features_and_every_feature_is_in_the_catalogue():
    X, y = _blobs()
    for group in metafeatures.GROUPS:
        names = extract(X, y, "multiclass", groups=[group])
        assert names and {metafeatures.group_of(n) for n in names} == {group}
    mixed = pd.concat([X, pd.DataFrame({"c": np.where(y > 0, "a", "b")})], axis=1)
    produced = set(extract(mixed, y, "multiclass")) | set(extract(mixed, X["f0"] * 2 + 1, "regression"))
    assert produced == set(metafeatures.FEATURE_NAMES)


def test_thread_limit_reaches_libraries_loaded_after_its_first_use():
    import subprocess
    import sys

    # A long-lived process (a Dask worker) limits threads, then imports scikit-learn, whose
    # OpenMP pool the next limit must reach too.
    code = """
import threadpoolctl
from metafeatures.threads import limit_threads
with limit_threads(1):
    pass
import sklearn.ensemble
threadpoolctl.threadpool_limits(3, user_api="openmp")  # so that 1 means limited, on any machine
with limit_threads(1):
    inside = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "openmp"]
print(inside)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() not in ("", "[]") and set(eval(out.stdout)) == {1}
