"""The audit's checks on hand-made records: what makes each pass, warn or fail."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest

from kb.audit.coverage import check_coverage, region
from kb.audit.provenance import Identity, check_complete, check_current, provenance_gaps, staleness
from kb.audit.reproducibility import Rerun, check_reproducible
from kb.audit.successes import KnownSuccess
from kb.audit.value import HeldOut, Pick, best_so_far, check_value, expected_best_regret
from kb.audit.verdict import FAIL, PASS, SKIPPED, WARN
from kb.schema import Dataset, Hardware, Trial

DATASET = Dataset(dataset_id="d1", name="small", task="binary", target="y", n_rows=300,
                  n_features=5, source="test", data_file="data/d1.parquet")
HARDWARE = Hardware(hardware_id="h1", name="cpu-1t", kind="cpu", source="measured",
                    cpu_model="AMD EPYC", runtime_version="1.32.0")
VERSIONS = {"scikit-learn": "1.9.1", "onnxruntime": "1.32.0"}


def trial(**changes) -> Trial:
    values = dict(trial_id="t1", dataset_id="d1", hardware_id="h1", config='{"family":"linear"}',
                  config_id="c1", model_family="linear", metric="roc_auc", direction="maximize",
                  status="ok", source="metakb", seed=0, score=0.8, score_std=0.02,
                  latency_p50_ms=0.01, code_version="0.1.0",
                  library_versions=json.dumps(VERSIONS))
    values.update(changes)
    return Trial(**values)


def success(**changes) -> KnownSuccess:
    return KnownSuccess(trial(**changes), DATASET, HARDWARE, runner_up=0.79, feasible_trials=3)


SOUND = Identity(trial_id="t1", config_id="c1", data_hash="d1")


def test_a_complete_unaltered_success_passes():
    assert provenance_gaps(success(), SOUND) == []
    assert check_complete([success()], [SOUND]).status == PASS


@pytest.mark.parametrize("changes, missing", [
    ({"code_version": None}, "code version"),
    ({"library_versions": "{}"}, "library versions"),
    ({"seed": None}, "seed"),
    ({"config": "{}"}, "configuration"),
])
def test_missing_provenance_fails_a_claim_metakb_made(changes, missing):
    result = check_complete([success(**changes)], [SOUND])
    assert result.status == FAIL
    assert missing in result.findings[0].problem


def test_missing_provenance_only_warns_for_ingested_evidence():
    ingested = success(source="tabrepo", code_version=None, library_versions=None)
    result = check_complete([ingested], [SOUND])
    assert result.status == WARN and "ingested from tabrepo" in result.findings[0].problem


def test_an_external_hardware_row_is_no_fingerprint():
    external = KnownSuccess(trial(), DATASET, replace(HARDWARE, kind="external"), None, 1)
    assert "hardware fingerprint" in provenance_gaps(external, SOUND)[0].problem


@pytest.mark.parametrize("identity, words", [
    (replace(SOUND, trial_id="other"), "does not match its content"),
    (replace(SOUND, config_id="other"), "config id"),
    (replace(SOUND, data_hash="changed"), "the data was changed"),
    (replace(SOUND, data_hash=None, data_problem="the dataset's data file is missing (x)"), "missing"),
])
def test_altered_ids_or_data_fail_even_for_ingested_claims(identity, words):
    result = check_complete([success(source="tabrepo")], [identity])
    assert result.status == FAIL and any(words in f.problem for f in result.findings)


def test_staleness_names_each_older_library_and_ignores_newer_ones():
    old = trial(library_versions=json.dumps({"scikit-learn": "1.9.1", "onnxruntime": "1.31.1",
                                             "numpy": "3.0.0"}), code_version="0.0.9")
    found = staleness(old, "0.1.0", {**VERSIONS, "numpy": "2.4.6"})
    assert found == ["metakb 0.0.9 < 0.1.0", "onnxruntime 1.31.1 < 1.32.0"]
    result = check_current([KnownSuccess(old, DATASET, HARDWARE, None, 1)], "0.1.0", VERSIONS)
    assert result.status == WARN and "onnxruntime (1)" in result.summary
    assert check_current([success()], "0.1.0", VERSIONS).status == PASS


def rerun(score=0.8, latency=0.01, hardware_id="h1", status="ok") -> Rerun:
    return Rerun(success(), trial(score=score, latency_p50_ms=latency, hardware_id=hardware_id,
                                  status=status, failure_reason=None if status == "ok" else "parity: x"))


def test_a_rerun_within_the_cv_spread_reproduces():
    result = check_reproducible([rerun(score=0.81)], asked=1, rerunnable=1)
    assert result.status == PASS and "1 of 1" in result.summary


def test_a_score_beyond_the_cv_spread_fails():
    result = check_reproducible([rerun(score=0.75)], asked=1, rerunnable=1)
    assert result.status == FAIL and "beyond the claim's CV spread" in result.findings[0].problem


def test_latency_is_judged_on_the_same_hardware_and_only_reported_on_other_hardware():
    assert check_reproducible([rerun(latency=0.05)], 1, 1).status == FAIL
    elsewhere = check_reproducible([rerun(latency=0.05, hardware_id="h2")], 1, 1)
    assert elsewhere.status == WARN and "reported, not judged" in elsewhere.findings[0].problem


def test_a_claimed_success_that_now_fails_does_not_reproduce():
    result = check_reproducible([rerun(status="failed", score=None)], 1, 1)
    assert result.status == FAIL and "ended failed" in result.findings[0].problem


def test_no_rerun_asked_is_skipped_not_passed():
    assert check_reproducible([], asked=0, rerunnable=3).status == SKIPPED


def test_coverage_names_what_has_no_success():
    unbenchmarked = replace(DATASET, dataset_id="d2", name="fresh", n_rows=50_000, task="regression")
    result = check_coverage([success()], [DATASET, unbenchmarked], {"d1": 3},
                            ["cpu-1t", "cpu-1t-int8"], ("binary", "multiclass", "regression"))
    subjects = {f.subject for f in result.findings}
    assert result.status == WARN
    assert {"dataset fresh", "task multiclass", "task regression", "profile cpu-1t-int8"} <= subjects
    assert f"region {region(DATASET)}" not in subjects
    assert f"region {region(unbenchmarked)}" in subjects
    assert check_coverage([], [DATASET], {"d1": 2}, ["cpu-1t"], ("binary",)).status == FAIL


def test_expected_best_regret_is_the_exact_mean_over_orders():
    regrets = [0.0, 0.2, 0.5, 1.0, 0.7]
    orders = list(itertools.permutations(regrets))
    brute = [sum(min(o[:t]) for o in orders) / len(orders) for t in range(1, 6)]
    assert expected_best_regret(regrets) == pytest.approx(brute)
    assert best_so_far(["b", "a", "c"], {"a": 0.1, "b": 0.5, "c": 0.0}) == [0.5, 0.1, 0.0]


def held_out(mine: float, theirs: float) -> HeldOut:
    return HeldOut("d", "roc_auc", "maximize",
                   {"recommender": Pick("a", mine, 1 - mine), "family default": Pick("b", theirs, 1 - theirs)})


def test_value_fails_only_when_an_anchor_is_significantly_better():
    losing = [held_out(0.5, 0.9)] * 8
    assert check_value(losing).status == FAIL
    winning = [held_out(0.9, 0.5)] * 8
    result = check_value(winning)
    assert result.status == PASS and result.data["against"]["family default"]["wins"] == 8
    close = [held_out(0.5, 0.9), held_out(0.9, 0.8), held_out(0.7, 0.7)]
    assert check_value(close).status == WARN  # worse on average, not significantly
    assert check_value([]).status == WARN


def test_a_rerun_the_audits_own_time_limit_stopped_only_warns():
    result = check_reproducible([rerun(status="timeout", score=None)], 1, 1)
    assert result.status == WARN and "within the time limit" in result.findings[0].problem


def test_two_machines_rows_of_one_profile_name_two_successes():
    other = KnownSuccess(trial(hardware_id="h2"), DATASET, replace(HARDWARE, hardware_id="h2"), None, 1)
    assert success().name != other.name and success().name.startswith("small / roc_auc / cpu-1t")


def test_value_compares_mean_regret_only_where_both_were_scored():
    # The default ran on one easy dataset only; there the recommender did as well.
    only_mine = HeldOut("d", "roc_auc", "maximize", {"recommender": Pick("a", 0.6, 0.4)})
    held = [held_out(0.9, 0.9), only_mine, only_mine]
    result = check_value(held)
    paired = result.data["against"]["family default"]["paired_mean_regret"]
    assert paired == {"n": 1, "mine": pytest.approx(0.1), "theirs": pytest.approx(0.1)}
    assert result.status == PASS and "the sign test cannot fail" in result.summary


def test_the_report_escapes_names_from_the_kb():
    from kb.audit.audit import AuditReport
    from kb.audit.report import render_html

    hostile = replace(DATASET, name="<span><script>alert(1)</script>")
    claim = KnownSuccess(trial(), hostile, HARDWARE, None, 1)
    report = AuditReport((claim,), (check_complete([claim], [SOUND]), check_current([claim], "0.1.0", VERSIONS),
                                    check_reproducible([], asked=0, rerunnable=0),
                                    check_coverage([claim], [hostile], {}, ["cpu-1t"], ("binary",)),
                                    check_value([])))
    page = render_html(report, kb_path="/tmp/kb")
    assert "<script>" not in page and "&lt;span&gt;&lt;script&gt;" in page
