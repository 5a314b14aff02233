"""Search spaces, configurations in and out of them, and limits."""

from __future__ import annotations

import json

import pytest

from kb.errors import KBError
from kb.schema import Trial
from kb.validation import derived_id, with_keys
from search.constraints import LIMIT_PREFIX, Limits, judge
from search.families import FAMILIES, normalize_config
from search.space import SEARCH_RANGES, build_space, fit_to_space, sample_configs, to_config


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_sampled_configuration_is_a_valid_complete_configuration(task):
    space = build_space(task, seed=3)
    families = set()
    for point in space.sample_configuration(60):
        config = to_config(point, task)
        assert config == normalize_config(config, task)  # complete and valid as it is
        families.add(config["family"])
        assert fit_to_space(config, space, task).changes == ()  # and back into the space
    assert families == set(SEARCH_RANGES) == set(FAMILIES)


def test_task_specific_keys_follow_the_task():
    assert "svm:epsilon" in build_space("regression") and "svm:epsilon" not in build_space("binary")
    assert "linear:max_iter" not in build_space("binary")  # valid, but not searched


def test_a_configuration_outside_the_space_is_adapted_and_says_how():
    space = build_space("binary")
    fitted = fit_to_space({"family": "random_forest", "n_estimators": 5000, "max_depth": None},
                          space, "binary")
    assert fitted.config["n_estimators"] == SEARCH_RANGES["random_forest"]["n_estimators"].high
    assert fitted.config["max_depth"] == SEARCH_RANGES["random_forest"]["max_depth"].default
    assert any("n_estimators 5000" in c for c in fitted.changes)
    assert any("max_depth None" in c for c in fitted.changes)


def test_a_configuration_of_another_family_or_task_is_refused_with_the_reason():
    with pytest.raises(KBError, match="not in this search space"):
        fit_to_space({"family": "autosklearn"}, build_space("binary"), "binary")
    with pytest.raises(KBError, match="not in this search space"):
        fit_to_space({"family": "mlp"}, build_space("binary", ["linear", "knn"]), "binary")


def test_a_lightgbm_configuration_is_translated_to_hist_gradient_boosting():
    fitted = fit_to_space({"family": "lightgbm", "learning_rate": 0.05, "num_leaves": 64,
                           "min_data_in_leaf": 7, "feature_fraction": 0.8},
                          build_space("multiclass"), "multiclass")
    assert fitted.config["family"] == "hist_gradient_boosting"
    assert (fitted.config["learning_rate"], fitted.config["max_leaf_nodes"],
            fitted.config["min_samples_leaf"]) == (0.05, 64, 7)
    assert "feature_fraction" in fitted.changes[0]


def test_a_portfolio_grows_without_changing_its_start():
    small, large = sample_configs("binary", 9, seed=4), sample_configs("binary", 30, seed=4)
    assert large[:9] == small and len({json.dumps(c, sort_keys=True) for c in large}) == 30
    assert [c["family"] for c in small[:len(FAMILIES)]] == list(SEARCH_RANGES)


def test_derived_id_is_the_id_the_store_gives():
    trial = with_keys(Trial(dataset_id="d", hardware_id="h", config='{"family":"knn"}',
                            model_family="knn", metric="rmse", direction="minimize",
                            status="failed", source="t", seed=3, fidelity=0.5))
    assert derived_id("trials", "trial_id", dataset_id="d", config='{"family":"knn"}',
                      metric="rmse", seed=3, fidelity=0.5, hardware_id="h") == trial.trial_id
    assert derived_id("trials", "trial_id", dataset_id="d", config='{"family":"knn"}',
                      metric="mae", seed=3, fidelity=0.5, hardware_id="h") != trial.trial_id


def _trial(**values) -> Trial:
    base = dict(dataset_id="d", hardware_id="h", config="{}", model_family="knn", metric="rmse",
                direction="minimize", status="ok", source="t", score=1.0, latency_p50_ms=2.0,
                peak_memory_mb=30.0, model_bytes=4096)
    return Trial(**{**base, **values})


def test_limits_make_a_trial_infeasible_and_a_looser_search_judges_it_again():
    strict = judge(_trial(), Limits(max_latency_ms=1.0, max_model_kb=2))
    assert strict.status == "infeasible" and strict.failure_reason.startswith(LIMIT_PREFIX)
    assert "latency p50 2 ms > 1 ms" in strict.failure_reason and "4 KB > 2 KB" in strict.failure_reason
    assert judge(strict, Limits(max_latency_ms=5.0)).status == "ok"
    assert judge(_trial(), Limits(max_memory_mb=29)).status == "infeasible"


def test_limits_leave_failures_and_the_profiles_own_ceiling_alone():
    failed = _trial(status="failed", failure_reason="parity: off")
    assert judge(failed, Limits(max_latency_ms=100)) == failed
    ceiling = _trial(status="infeasible", failure_reason="memory: above the profile's ceiling")
    assert judge(ceiling, Limits()) == ceiling


def test_limits_must_be_positive():
    with pytest.raises(KBError, match="max-latency-ms must be a positive number"):
        Limits(max_latency_ms=0)
