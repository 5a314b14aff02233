"""One trial's outcomes: every way it can end is a record with its status and reason."""

from __future__ import annotations

import dataclasses
import json
import pickle

import onnx
import pytest

from kb.errors import KBError
from search.profiles import BUILTIN_PROFILES, Profile
from search.trial import TrialLimits, run_trial

QUICK_TIMING = {"repeats": 10, "warmup": 1, "min_measure_seconds": 0}
FAST = dataclasses.replace(BUILTIN_PROFILES["cpu-1t"], **QUICK_TIMING)
IN_PROCESS = TrialLimits(isolate=False)
FOREST = {"family": "random_forest", "n_estimators": 5}


@pytest.fixture(scope="module")
def haberman():
    from kb.datasets import bundled, load_bundled

    return next(load_bundled(e) for e in bundled() if e.name == "haberman")


def test_a_trial_in_its_own_process_matches_one_in_this_process(haberman):
    here = run_trial(haberman, FOREST, FAST, seed=3, folds=3, limits=IN_PROCESS).trial
    apart = run_trial(haberman, FOREST, FAST, seed=3, folds=3, limits=TrialLimits(time_s=120)).trial
    assert (apart.status, apart.trial_id, apart.score) == ("ok", here.trial_id, here.score)


def test_inputs_and_result_pickle_for_dask_workers(haberman):
    result = run_trial(haberman, FOREST, FAST, folds=3, limits=IN_PROCESS)
    assert pickle.loads(pickle.dumps(result)) == result
    assert pickle.loads(pickle.dumps((haberman, FAST))) is not None


def test_config_is_stored_complete_so_spellings_of_one_model_are_one_config(haberman):
    short = run_trial(haberman, FOREST, FAST, folds=3, limits=IN_PROCESS).trial
    spelled = run_trial(haberman, {**FOREST, "bootstrap": True, "max_depth": None,
                                   "scaling": "none"}, FAST, folds=3, limits=IN_PROCESS).trial
    assert short.config_id == spelled.config_id and short.trial_id == spelled.trial_id
    config = json.loads(short.config)
    assert config["family"] == "random_forest" and config["min_samples_leaf"] == 1


def test_seed_and_fidelity_change_the_trial(haberman):
    base = run_trial(haberman, FOREST, FAST, folds=3, limits=IN_PROCESS).trial
    half = run_trial(haberman, FOREST, FAST, folds=3, fidelity=0.5, limits=IN_PROCESS).trial
    seeded = run_trial(haberman, FOREST, FAST, seed=7, folds=3, limits=IN_PROCESS).trial
    assert half.status == seeded.status == "ok"
    assert len({base.trial_id, half.trial_id, seeded.trial_id}) == 3
    assert half.fidelity == 0.5


def test_other_metric_is_named_with_its_direction(haberman):
    trial = run_trial(haberman, FOREST, FAST, folds=3, metric="log_loss", limits=IN_PROCESS).trial
    assert (trial.metric, trial.direction) == ("log_loss", "minimize")


def test_export_failure_is_recorded_with_the_score(haberman, monkeypatch):
    import skl2onnx

    def refuse(*args, **kwargs):
        raise RuntimeError("Unable to find a shape calculator for type 'Mystery'")

    monkeypatch.setattr(skl2onnx, "convert_sklearn", refuse)
    trial = run_trial(haberman, FOREST, FAST, folds=3, limits=IN_PROCESS).trial
    assert trial.status == "failed"
    assert trial.failure_reason.startswith("export: random_forest does not convert to ONNX "
                                           "(RuntimeError: Unable to find a shape calculator")
    assert trial.score is not None and trial.train_seconds is not None
    assert trial.latency_p50_ms is None and trial.model_bytes is None


def test_parity_failure_is_recorded_with_its_measurements(haberman):
    strict = Profile(name="strict", parity_tolerance=1e-12, **QUICK_TIMING)
    trial = run_trial(haberman, FOREST, strict, folds=3, limits=IN_PROCESS).trial
    assert trial.status == "failed" and trial.failure_reason.startswith("parity: ")
    assert "the profile allows 1e-12" in trial.failure_reason
    assert trial.parity_error > 1e-12
    assert None not in (trial.score, trial.latency_p50_ms, trial.peak_memory_mb, trial.model_bytes)


def test_memory_ceiling_makes_a_trial_infeasible(haberman):
    tight = Profile(name="tight", memory_limit_mb=0.5, **QUICK_TIMING)
    trial = run_trial(haberman, FOREST, tight, folds=3, limits=IN_PROCESS).trial
    assert trial.status == "infeasible"
    assert trial.failure_reason.startswith("memory: inference peaked at ")
    assert "0.5 MB ceiling of profile tight" in trial.failure_reason
    assert trial.peak_memory_mb > 0.5 and trial.score is not None and trial.parity_error is not None


def test_training_exception_becomes_a_failed_record(haberman):
    # A valid configuration that the data cannot satisfy: more neighbours than training rows.
    trial = run_trial(haberman, {"family": "knn", "n_neighbors": 1000}, FAST, folds=3,
                      limits=IN_PROCESS).trial
    assert trial.status == "failed" and trial.failure_reason.startswith("training: ValueError")
    assert trial.score is None


def test_timeout_is_recorded_with_the_stage_it_reached(haberman):
    slow = {"family": "random_forest", "n_estimators": 5000}
    trial = run_trial(haberman, slow, FAST, folds=3, limits=TrialLimits(time_s=2.5)).trial
    assert trial.status == "timeout"
    assert trial.failure_reason.startswith("timeout: the trial took longer than 2.5 s (it was in ")
    assert trial.score is None


def test_trial_memory_limit_is_recorded(haberman):
    trial = run_trial(haberman, FOREST, FAST, folds=3,
                      limits=TrialLimits(time_s=120, memory_mb=60)).trial
    assert trial.status == "failed"
    assert trial.failure_reason.startswith("memory limit: the trial's processes used more than 60 MB")


def test_model_is_saved_with_what_a_user_needs_to_feed_it(haberman, tmp_path):
    path = tmp_path / "model.onnx"
    trial = run_trial(haberman, FOREST, FAST, folds=3, model_path=path, limits=IN_PROCESS).trial
    model = onnx.load(path)
    assert trial.model_bytes == path.stat().st_size
    metadata = {p.key: p.value for p in model.metadata_props}
    assert json.loads(metadata["metakb.config"])["n_estimators"] == 5
    assert json.loads(metadata["metakb.numeric_columns"]) == list(haberman.X.columns)
    assert json.loads(metadata["metakb.classes"]) == ["1", "2"]
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]


def test_text_columns_with_missing_values_train_export_and_match(tmp_path):
    import numpy as np
    import pandas as pd

    from kb.datasets import load

    rng = np.random.default_rng(0)
    n = 240
    colour = rng.choice(["red", "green", "blue", None], n)
    size = rng.normal(size=n)
    size[::11] = np.nan
    label = np.where((colour == "red") ^ (np.nan_to_num(size) > 0.5), "yes", "no")
    path = tmp_path / "shop.csv"
    pd.DataFrame({"colour": colour, "size": size, "shop": rng.choice(list("abcdefgh"), n),
                  "bought": label}).to_csv(path, index=False)
    data = load(path, target="bought")
    for config in ({"family": "linear", "encoding": "onehot"},
                   {"family": "hist_gradient_boosting", "max_iter": 10, "encoding": "ordinal"},
                   {"family": "mlp", "epochs": 5, "encoding": "onehot"}):
        trial = run_trial(data, config, FAST, folds=3, limits=IN_PROCESS).trial
        assert trial.status == "ok", (config, trial.failure_reason)


@pytest.mark.parametrize("config, kwargs, message", [
    ({"family": "forest"}, {}, "configuration needs \"family\": one of random_forest"),
    ({"n_estimators": 3}, {}, "configuration needs \"family\""),
    ({"family": "random_forest", "trees": 3}, {}, "'trees' is not one of its keys"),
    ({"family": "random_forest", "n_estimators": 0}, {}, r"n_estimators must be in \[1, 5000\]"),
    ({"family": "random_forest", "n_estimators": 2.5}, {}, "must be a whole number"),
    ({"family": "svm", "kernel": "rbf2"}, {}, "kernel must be one of"),
    ({"family": "svm", "epsilon": 0.2}, {}, "'epsilon' does not apply to binary"),
    ({"family": "linear", "alpha": float("nan")}, {}, "alpha must be finite"),
    (FOREST, {"metric": "rmse"}, "metric 'rmse' does not apply to binary tasks"),
    (FOREST, {"fidelity": 0.0}, "fidelity is the fraction"),
    (FOREST, {"folds": 1}, "folds must be a whole number >= 2"),
    (FOREST, {"seed": -1}, "seed must be a whole number"),
])
def test_a_callers_mistake_raises_before_any_work(haberman, config, kwargs, message):
    with pytest.raises(KBError, match=message):
        run_trial(haberman, config, FAST, limits=IN_PROCESS, **kwargs)


def test_a_profile_this_machine_cannot_run_is_refused(haberman):
    with pytest.raises(KBError, match="cannot run here: ONNX Runtime here has no "
                                      "CUDAExecutionProvider"):
        run_trial(haberman, FOREST, BUILTIN_PROFILES["cuda"], limits=IN_PROCESS)
    with pytest.raises(KBError, match="threads"):
        run_trial(haberman, FOREST, Profile(name="many", threads=4096), limits=IN_PROCESS)
