"""The recommender: its arithmetic on small matrices, its behaviour on small KBs whose right
answer is known by construction, and ``kb recommend`` on the real TabRepo data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import HARDWARE, HARDWARE_ID

from kb.datasets import reference_dataset_id
from kb.errors import KBError
from kb.recommend import portfolio, recommend
from kb.recommend.ranking import (greedy_portfolio, kernel_weights, learn_feature_weights,
                                  normalize, predict)
from kb.schema import Dataset, MetaFeature, Trial

# -- the arithmetic ----------------------------------------------------------------------------


def test_normalize_puts_each_problems_best_at_zero_whatever_the_direction():
    outcomes = normalize(
        datasets=["d1", "d1", "d1", "d2", "d2", "d3", "d3"],
        metrics=["auc", "auc", "auc", "rmse", "rmse", "auc", "auc"],
        directions=["maximize"] * 3 + ["minimize"] * 2 + ["maximize"] * 2,
        configs=["a", "b", "c", "a", "b", "a", "b"],
        scores=[0.9, 0.7, 0.8, 3.0, 1.0, 0.5, 0.5])
    assert outcomes.datasets == ("d1", "d2")  # d3 ranks nothing: every score alike
    column = {c: j for j, c in enumerate(outcomes.configs)}
    d1, d2 = outcomes.error
    assert d1[column["a"]] == 0 and d1[column["b"]] == 1 and d1[column["c"]] == pytest.approx(0.5)
    assert d2[column["b"]] == 0 and d2[column["a"]] == 1 and np.isnan(d2[column["c"]])


def test_greedy_portfolio_complements_rather_than_repeats():
    # a: best on p1, worst on p2; b: the reverse; c: best on average; d: c's near twin.
    error = np.array([[0.0, 1.0, 0.40, 0.41],
                      [1.0, 0.0, 0.40, 0.41]])
    first, second = greedy_portfolio(error, np.ones(2), 2)
    assert first == 2 and second in (0, 1)  # d, second best on its own, adds nothing to c
    assert greedy_portfolio(error, np.array([1.0, 0.0]), 1) == [0]  # all weight on p1


def test_greedy_portfolio_takes_lower_tiers_first_and_treats_untried_as_typical():
    error = np.array([[0.0, 0.5, 1.0],
                      [0.0, 0.5, 1.0]])
    assert greedy_portfolio(error, np.ones(2), 3, tiers=np.array([1, 0, 0])) == [1, 2, 0]
    untried = np.array([[np.nan, 0.2, 0.6, 1.0],
                        [np.nan, 0.2, 0.6, 1.0]])
    assert greedy_portfolio(untried, np.ones(2), 1) == [1]  # no free pass for the unknown
    # A problem none of them was tried on decides nothing (it must not make every choice NaN).
    blank = np.array([[0.9, 0.1, 0.5],
                      [np.nan, np.nan, np.nan]])
    assert greedy_portfolio(blank, np.ones(2), 1) == [1]


def test_kernel_weights_fall_with_distance_and_ignore_the_unknown():
    weights = kernel_weights(np.array([0.0, 1.0, 2.0, np.nan]))
    assert weights[0] == 1.0 and weights[0] > weights[1] > weights[2] > 0 and weights[3] == 0


def test_feature_weights_follow_the_feature_that_separates_outcomes():
    rng = np.random.default_rng(0)
    n = 30
    informative = rng.normal(size=n)
    noise = rng.normal(size=n)
    # Two configurations whose normalized errors swap as the informative feature grows.
    error_a = 1 / (1 + np.exp(-3 * informative))
    outcomes = normalize(
        datasets=[f"d{i}" for i in range(n) for _ in range(3)],
        metrics=["m"] * 3 * n, directions=["minimize"] * 3 * n,
        configs=["a", "b", "c"] * n,
        scores=[v for i in range(n) for v in (error_a[i], 1 - error_a[i], 2.0)])
    scaled = np.column_stack([informative, noise])
    weights = learn_feature_weights([f"d{i}" for i in range(n)], scaled, outcomes)
    assert weights[0] > 0.8 and weights[0] > 4 * weights[1]


def test_one_problem_alone_leaves_the_uncertainty_open():
    outcomes = normalize(["d1", "d1", "d2", "d2"], ["m"] * 4, ["minimize"] * 4, ["a", "b", "a", "b"],
                         [1.0, 2.0, 1.0, 3.0])
    both = predict(outcomes, np.array([1.0, 1.0]), 0)
    one = predict(outcomes, np.array([1.0, 0.0]), 0)
    assert both.score == 1.0 and one.score == 1.0
    assert one.uncertainty > both.uncertainty > 0


# -- a small KB whose right answers are known ---------------------------------------------------

CONFIG_SMALL = {"family": "random_forest", "n_estimators": 10}  # wins on small datasets
CONFIG_LARGE = {"family": "random_forest", "n_estimators": 500}  # wins on large ones
CONFIG_STEADY = {"family": "random_forest", "n_estimators": 100}  # a little worse than middling
CONFIG_SVM = {"family": "svm", "C": 1.0}  # a little better than the steady one everywhere


def _dataset_id(name):
    return reference_dataset_id("test", name)


def _add_dataset(kb, name, rows, *, extra=None, latency=None):
    """A dataset of ``rows`` rows, 10 features, and one trial per configuration whose AUC
    favours CONFIG_SMALL below 5,000 rows and CONFIG_LARGE above."""
    dataset_id = _dataset_id(name)
    kb.add(Dataset(dataset_id=dataset_id, name=name, task="binary", target="y", n_rows=rows,
                   n_features=10, n_classes=2, source="test"), on_conflict="keep")
    kb.add(*[MetaFeature(dataset_id=dataset_id, name=q, value=v, extractor="openml",
                         extractor_version="test")
             for q, v in (("NumberOfInstances", rows), ("NumberOfFeatures", 11), ("NumberOfClasses", 2))])
    small = rows < 5000
    scores = [(CONFIG_SMALL, 0.90 if small else 0.60), (CONFIG_LARGE, 0.60 if small else 0.90),
              (CONFIG_STEADY, 0.74), *(extra or [])]
    latency = latency or {}
    kb.add(*[Trial(dataset_id=dataset_id, hardware_id=HARDWARE_ID, config=config,
                   model_family=config["family"], metric="roc_auc", direction="maximize",
                   status="ok", source="test", score=score,
                   latency_p50_ms=latency.get(config["n_estimators"] if "n_estimators" in config else None))
             for config, score in scores])
    return dataset_id


SIZES = {"s1": 150, "s2": 300, "s3": 600, "s4": 1200, "l1": 40000, "l2": 80000, "l3": 160000, "l4": 320000}


@pytest.fixture
def clustered(kb):
    kb.add(HARDWARE, on_conflict="keep")
    for name, rows in SIZES.items():
        _add_dataset(kb, name, rows, latency={10: 0.2, 500: 20.0})
    return kb


def _query(rows):
    return {"NumberOfInstances": rows, "NumberOfFeatures": 11, "NumberOfClasses": 2}


def test_the_winner_of_the_nearest_datasets_comes_first(clustered):
    assert recommend(clustered, metafeatures=_query(250), task="binary", k=1)[0].config == CONFIG_SMALL
    top = recommend(clustered, metafeatures=_query(100000), task="binary", k=3)
    assert top[0].config == CONFIG_LARGE
    assert top[0].predicted_score > 0.8  # it won on the nearest, lost on the far ones
    assert {e["dataset"] for e in top[0].evidence[:4]} == {"l1", "l2", "l3", "l4"}
    stored = {r["trial_id"] for r in clustered.read("trials").to_pylist()}
    assert all(e["trial_id"] in stored for r in top for e in r.evidence)


def test_a_registered_dataset_is_its_own_nearest_unless_excluded(clustered):
    found = recommend(clustered, dataset="s2", task="binary", k=1)[0]
    assert found.evidence[0]["dataset"] == "s2" and found.evidence[0]["distance"] == 0
    left_out = recommend(clustered, dataset="s2", task="binary", k=3, exclude_datasets=[_dataset_id("s2")])
    assert all(e["dataset"] != "s2" for r in left_out for e in r.evidence)
    with pytest.raises(KBError, match="binary dataset, not regression"):
        recommend(clustered, dataset="s2", task="regression")


def test_an_excluded_dataset_counts_for_nothing(tmp_path):
    """Leaving a dataset out gives what a KB that never held it gives: its meta-features
    shape neither the scaling nor the learned weights."""
    from kb import KnowledgeBase

    results = []
    for with_outlier in (True, False):
        with KnowledgeBase.create(tmp_path / f"kb{with_outlier}") as kb:
            kb.add(HARDWARE)
            for name, rows in SIZES.items():
                _add_dataset(kb, name, rows)
            if with_outlier:
                _add_dataset(kb, "outlier", 10**9, extra=[(CONFIG_SVM, 0.99)])
            found = recommend(kb, metafeatures=_query(3000), task="binary", k=3,
                              exclude_datasets=[_dataset_id("outlier")])
            results.append([(r.config_id, r.predicted_score, r.uncertainty, r.evidence) for r in found])
    assert results[0] == results[1]


def test_limits_drop_what_breaks_them_and_rank_the_unmeasured_last(clustered):
    found = recommend(clustered, metafeatures=_query(100000), task="binary", k=3,
                      hardware_id=HARDWARE_ID, max_latency_ms=1.0)
    assert [r.config for r in found] == [CONFIG_SMALL, CONFIG_STEADY]  # the large one is too slow
    assert found[0].predicted_latency_ms == pytest.approx(0.2)
    assert found[1].predicted_latency_ms is None  # never measured: after the measured one
    unlimited = recommend(clustered, metafeatures=_query(100000), task="binary", k=1,
                          hardware_id=HARDWARE_ID)
    assert unlimited[0].config == CONFIG_LARGE and unlimited[0].predicted_latency_ms == pytest.approx(20.0)
    with pytest.raises(KBError, match="needs a hardware row"):
        recommend(clustered, metafeatures=_query(100), task="binary", max_latency_ms=1.0)
    unmeasured = recommend(clustered, metafeatures=_query(100000), task="binary", k=3,
                           hardware_id="never-measured", max_latency_ms=1.0)
    assert unmeasured[0].config == CONFIG_LARGE and unmeasured[0].predicted_latency_ms is None


def test_a_machine_new_to_the_kb_borrows_the_costs_measured_under_its_profile(clustered):
    from dataclasses import replace

    from kb.validation import with_keys

    # The same profile on another machine: no trial of its own yet.
    other = with_keys(replace(HARDWARE, hardware_id="", cpu_model="another CPU"))
    clustered.add(other)
    found = recommend(clustered, metafeatures=_query(100000), task="binary", k=3,
                      hardware_id=other.hardware_id, max_latency_ms=1.0)
    assert [r.config for r in found] == [CONFIG_SMALL, CONFIG_STEADY]
    assert found[0].predicted_latency_ms == pytest.approx(0.2)


def test_candidates_restrict_the_choice_but_not_the_evidence(clustered):
    from kb.validation import derived_id
    from kb.keys import canonical_json

    steady = derived_id("trials", "config_id", config=canonical_json(CONFIG_STEADY))
    found = recommend(clustered, metafeatures=_query(100000), task="binary", k=3, candidates=[steady])
    assert [r.config for r in found] == [CONFIG_STEADY]


def test_families_restrict_the_candidates(clustered):
    for name, rows in SIZES.items():  # the same datasets, with an svm trial better than all
        _add_dataset(clustered, name, rows, extra=[(CONFIG_SVM, 0.95)], latency={10: 0.2, 500: 20.0})
    everything = recommend(clustered, metafeatures=_query(200), task="binary", k=1)
    assert everything[0].config == CONFIG_SVM
    forests = recommend(clustered, metafeatures=_query(200), task="binary", k=4,
                        families=["random_forest"])
    assert forests and all(r.model_family == "random_forest" for r in forests)


def test_the_portfolio_ignores_any_query_and_covers_both_clusters(clustered):
    found = portfolio(clustered, task="binary", k=2)
    assert {r.config_id for r in found} == {recommend(clustered, metafeatures=_query(q), task="binary",
                                                      k=1)[0].config_id for q in (200, 100000)}
    assert all(e["distance"] is None for r in found for e in r.evidence)


def test_queries_that_cannot_be_answered_say_why(clustered):
    with pytest.raises(KBError, match="one of them"):
        recommend(clustered, task="binary")
    with pytest.raises(KBError, match="no meta-feature name is recognised"):
        recommend(clustered, metafeatures={"colour": 3.0}, task="binary")
    with pytest.raises(KBError, match="unknown task"):
        portfolio(clustered, task="ranking", k=3)


def test_an_empty_kb_says_what_to_do(tmp_path):
    from kb import KnowledgeBase

    with KnowledgeBase.create(tmp_path / "empty") as empty:
        with pytest.raises(KBError, match="no scored trials"):
            recommend(empty, metafeatures=_query(100), task="binary")
        with pytest.raises(KBError, match="no scored trials"):
            portfolio(empty, task="binary", k=3)


# -- kb recommend on TabRepo --------------------------------------------------------------------


@pytest.fixture
def tabrepo_cli(cli, shared_data):
    assert cli("init").exit_code == 0
    assert cli("ingest", shared_data / "tabrepo", "--format", "tabrepo").exit_code == 0
    return cli


def test_recommend_for_a_bundled_dataset_characterises_it_and_answers(tabrepo_cli):
    from kb import KnowledgeBase
    from kb.datasets import bundled, load_bundled, register

    with KnowledgeBase(tabrepo_cli.kb_path) as kb:
        record, _ = register(kb, load_bundled(next(b for b in bundled() if b.name == "haberman")))
    result = tabrepo_cli("recommend", "haberman", "-k", "4", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert len(found) == 4 and len({r["config_id"] for r in found}) == 4
    for row in found:
        assert {"config_id", "config", "predicted_score", "predicted_latency_ms", "evidence"} <= set(row)
        assert row["config"]["family"] == "lightgbm" and 0 <= row["predicted_score"] <= 1
        assert row["evidence"] and row["evidence"][0]["distance"] is not None
    with KnowledgeBase(tabrepo_cli.kb_path) as kb:  # characterised on the way, and kept
        assert kb.query("SELECT count(*) AS n FROM metafeatures WHERE dataset_id = ?",
                        [record.dataset_id]).column("n")[0].as_py() > 10
    table = tabrepo_cli("recommend", "haberman", "-k", "2")
    assert table.exit_code == 0 and "lightgbm" in table.output


def test_recommend_for_a_metafeature_file_in_pymfe_names(tabrepo_cli, tmp_path):
    query = tmp_path / "task.json"
    query.write_text(json.dumps({"nr_inst": 5000, "nr_attr": 20, "nr_class": 2, "nr_num": 18, "nr_cat": 2}))
    result = tabrepo_cli("recommend", "--metafeatures", query, "--task", "binary", "-k", "3", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 3
    portfolio_result = tabrepo_cli("recommend", "--portfolio", "5", "--task", "regression", "--json")
    assert portfolio_result.exit_code == 0 and len(json.loads(portfolio_result.output)) == 5


def test_recommend_usage_and_user_errors(tabrepo_cli, tmp_path):
    assert tabrepo_cli("recommend").exit_code == 2
    query = tmp_path / "task.json"
    query.write_text(json.dumps({"NumberOfInstances": 100}))
    assert tabrepo_cli("recommend", "--metafeatures", query).exit_code == 2  # needs --task
    result = tabrepo_cli("recommend", "--portfolio", "3", "--task", "binary", "--max-latency-ms", "5")
    assert result.exit_code == 1 and "needs a hardware row" in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
