"""kb search end to end: limits, the deliverable, kill and resume, Dask workers, warm starts,
multi-fidelity and the bootstrap. Small searches over fast families keep this to about a
minute; what a search finds is the benchmark's business, not these tests'."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from kb.datasets import bundled_folder

HABERMAN = bundled_folder() / "haberman.tsv.gz"
BODYFAT = bundled_folder() / "560_bodyfat.tsv.gz"
# k-NN fails parity on haberman (tied distances), so a small search of it alone could find nothing.
FAST = "linear,random_forest"


@pytest.fixture
def kb_with_haberman(cli):
    assert cli("init").exit_code == 0
    assert cli("datasets", "add", HABERMAN, "--target", "target").exit_code == 0
    return cli


def _trials(kb_path, run_id=None):
    from kb import KnowledgeBase

    kb = KnowledgeBase(kb_path)
    sql = "SELECT * FROM trials" + (" WHERE run_id = ?" if run_id else "")
    return kb.query(sql, params=[run_id] if run_id else None).to_pylist()


def test_search_delivers_a_tested_model_that_meets_the_limit(kb_with_haberman, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "model"
    result = kb_with_haberman("search", "haberman", "--trials", 4, "--families", FAST,
                              "--max-latency-ms", 5, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    card = json.loads((out / "model_card.json").read_text())
    assert card["meets_limits"] and card["latency_ms"]["p50"] <= 5
    assert 0.0 <= card["test_score"] <= 1.0 and card["metric"] == "roc_auc"
    assert card["dataset"]["name"] == "haberman" and card["hardware"]["profile"] == "cpu-1t"
    for key in ("configuration", "cv_score", "peak_memory_mb", "model_bytes", "library_versions",
                "code_version", "seed", "evidence"):
        assert card[key] is not None, key
    stored = _trials(kb_with_haberman.kb_path, report["run_id"])
    assert len(stored) == 4 and {t["model_family"] for t in stored} <= {"linear", "random_forest"}
    assert card["evidence"]["trial_id"] in {t["trial_id"] for t in stored}
    # The delivered file is the model: raw columns in, probabilities out.
    session = ort.InferenceSession(str(out / "model.onnx"))
    numeric = np.array([[30, 64, 1], [70, 58, 20]], dtype=np.float32)
    probabilities = session.run(["probabilities"], {"numeric": numeric})[0]
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_an_impossible_limit_ends_with_no_feasible_model_and_records_why(kb_with_haberman, tmp_path):
    result = kb_with_haberman("search", "haberman", "--trials", 3, "--families", "linear",
                              "--max-latency-ms", 0.0001, "--out", tmp_path / "none")
    assert result.exit_code == 1
    assert "no feasible model: 3 trials, 3 infeasible" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "none" / "model.onnx").exists()
    stored = _trials(kb_with_haberman.kb_path)
    assert len(stored) == 3
    assert all(t["status"] == "infeasible" and t["failure_reason"].startswith("limit: latency p50")
               and t["latency_p50_ms"] is not None and t["score"] is not None for t in stored)


def test_a_search_killed_mid_way_resumes_with_every_trial_once(kb_with_haberman, tmp_path):
    kb_path = kb_with_haberman.kb_path
    command = [sys.executable, "-c", "from kb.cli.main import main; main()", "--kb", str(kb_path),
               "search", "haberman", "--trials", "5", "--families", FAST, "--cold",
               "--out", str(tmp_path / "m")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while len(_trials(kb_path)) < 2:
            assert process.poll() is None, "the search ended before it could be killed"
            assert time.monotonic() < deadline, "no trials after 240 s"
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    before = {t["trial_id"]: t["finished_at"] for t in _trials(kb_path)}
    (run_id,) = {t["run_id"] for t in _trials(kb_path)}
    assert 2 <= len(before) < 5

    result = kb_with_haberman("search", "--resume", run_id, "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    after = _trials(kb_path, run_id)
    assert len(after) == 5 == len({t["trial_id"] for t in after})
    assert all(before[t["trial_id"]] == t["finished_at"] for t in after if t["trial_id"] in before)
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    best = max(after, key=lambda t: t["score"] if t["status"] == "ok" else -1)
    assert card["cv_score"] == pytest.approx(best["score"])  # the best over both parts
    assert kb_with_haberman("search", "--resume", run_id).exit_code == 1  # finished now


def test_a_two_worker_dask_search_writes_every_trial(kb_with_haberman, tmp_path):
    result = kb_with_haberman("search", "haberman", "--trials", 4, "--families", FAST,
                              "--workers", 2, "--cold", "--out", tmp_path / "m", "--json")
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.output)["run_id"]
    assert len({t["trial_id"] for t in _trials(kb_with_haberman.kb_path, run_id)}) == 4


def test_a_search_runs_on_an_existing_dask_cluster_by_its_address(kb_with_haberman, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                      dashboard_address=":0") as cluster:
        result = kb_with_haberman("search", "haberman", "--trials", 3, "--families", "linear",
                                  "--cold", "--scheduler", cluster.scheduler_address,
                                  "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert f"Dask cluster at {cluster.scheduler_address}" in result.output
    assert len(_trials(kb_with_haberman.kb_path)) == 3


def test_an_unreachable_scheduler_is_a_one_line_error(kb_with_haberman):
    result = kb_with_haberman("search", "haberman", "--scheduler", "tcp://127.0.0.1:9")
    assert result.exit_code == 1 and "cannot reach the Dask scheduler" in result.output
    assert "Traceback" not in result.output


def test_warm_start_draws_on_other_datasets_and_reuses_what_the_kb_measured(kb_with_haberman, tmp_path):
    cli = kb_with_haberman
    assert cli("datasets", "add", bundled_folder() / "breast_cancer.tsv.gz", "--target", "target").exit_code == 0
    assert cli("bootstrap", "--datasets", "breast_cancer", "--portfolio", 3).exit_code == 0
    result = cli("search", "haberman", "--trials", 3, "--warm-start", 2, "--families",
                 "random_forest,extra_trees,hist_gradient_boosting,linear", "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    warm = [line for line in result.output.splitlines() if line.startswith("warm start")]
    assert len(warm) == 2, result.output
    # Searching again with the same seed finds the same warm configurations in the KB.
    again = cli("search", "haberman", "--trials", 2, "--warm-start", 2, "--families",
                "random_forest,extra_trees,hist_gradient_boosting,linear", "--out", tmp_path / "n")
    assert "2 trials (2 reused from the KB)" in again.output, again.output


def test_multi_fidelity_trains_on_fractions_of_the_rows(cli, tmp_path):
    assert cli("init").exit_code == 0
    assert cli("datasets", "add", BODYFAT, "--target", "target").exit_code == 0
    result = cli("search", "560_bodyfat", "--trials", 5, "--families", "linear", "--cold",
                 "--multi-fidelity", "--objective", "score+latency", "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    fidelities = {round(t["fidelity"], 3) for t in _trials(cli.kb_path)}
    assert min(fidelities) < 1.0 and {round(1 / 9, 3)} <= fidelities


def test_bootstrap_is_resumable(cli):
    assert cli("init").exit_code == 0
    assert cli("datasets", "add", HABERMAN, "--target", "target").exit_code == 0
    first = cli("bootstrap", "--datasets", "haberman", "--portfolio", 2, "--json")
    assert json.loads(first.output)["already_in_kb"] == 0
    second = json.loads(cli("bootstrap", "--datasets", "haberman", "--portfolio", 3, "--json").output)
    assert second["already_in_kb"] == 2 and sum(second["statuses"].values()) == 1
    assert len(_trials(cli.kb_path)) == 3


def test_bootstrap_from_best_spreads_each_datasets_best_over_its_task(cli):
    from kb import KnowledgeBase

    assert cli("init").exit_code == 0
    for path in (HABERMAN, bundled_folder() / "breast_cancer.tsv.gz"):
        assert cli("datasets", "add", path, "--target", "target").exit_code == 0
    # A search on haberman found its best configuration; breast_cancer never saw it.
    assert cli("bootstrap", "--datasets", "haberman", "--portfolio", 2).exit_code == 0
    best = max(_trials(cli.kb_path), key=lambda t: t["score"])
    assert cli("bootstrap", "--portfolio", 0).exit_code == 2  # nothing to run
    result = cli("bootstrap", "--datasets", "haberman,breast_cancer", "--portfolio", 0,
                 "--from-best", 1, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    # Haberman already holds its best; breast_cancer gets it, and its own best (it has none yet).
    assert summary["already_in_kb"] == 1 and sum(summary["statuses"].values()) == 1
    with KnowledgeBase(cli.kb_path) as kb:
        spread = kb.query("SELECT d.name FROM trials t JOIN datasets d USING (dataset_id) "
                          "WHERE config_id = ? ORDER BY 1", [best["config_id"]]).to_pylist()
    assert [r["name"] for r in spread] == ["breast_cancer", "haberman"]


def test_search_mistakes_are_one_line_errors(kb_with_haberman):
    for args, message in [
        (("search",), "name a DATASET"),
        (("search", "nosuch"), "no dataset 'nosuch'"),
        (("search", "haberman", "--families", "boosted_cats"), "unknown model families"),
        (("search", "haberman", "--hardware", "tpu-9"), "tpu-9"),
        (("search", "haberman", "--trials", 2, "--warm-start", 5), "more than the 2 trials"),
        (("search", "--resume", "0123456789abcdef"), "no search with run id"),
    ]:
        result = kb_with_haberman(*args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_an_mlp_predicted_over_the_limit_is_recorded_without_training(kb_with_haberman, tmp_path):
    result = kb_with_haberman("search", "haberman", "--trials", 2, "--families", "mlp", "--cold",
                              "--max-latency-ms", 0.0001, "--out", tmp_path / "m")
    assert result.exit_code == 1 and "no feasible model: 2 trials, 2 infeasible-predicted" in result.output
    stored = _trials(kb_with_haberman.kb_path)
    assert len(stored) == 2
    for trial in stored:
        assert trial["status"] == "infeasible-predicted" and trial["train_seconds"] is None
        assert trial["failure_reason"].startswith("limit: predicted latency p50")
        assert json.loads(trial["details"])["predicted_latency_p50_ms"] > 0.0001
    from kb import KnowledgeBase

    kb = KnowledgeBase(kb_with_haberman.kb_path)
    archs = {r["arch_id"] for r in kb.query("SELECT arch_id FROM architectures").to_pylist()}
    assert {t["arch_id"] for t in stored} <= archs  # each names a stored architecture
    costs = kb.query("SELECT count(*) AS n FROM fragment_costs").to_pylist()[0]["n"]
    assert costs >= 3  # the per-call overhead and the network's fragments were measured


def test_an_mlp_within_the_limit_is_trained_as_its_fragment_graph(kb_with_haberman, tmp_path):
    from kb import KnowledgeBase

    result = kb_with_haberman("search", "haberman", "--trials", 1, "--families", "mlp", "--cold",
                              "--max-latency-ms", 50, "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    (trial,) = _trials(kb_with_haberman.kb_path)
    assert trial["status"] == "ok" and trial["arch_id"]
    kb = KnowledgeBase(kb_with_haberman.kb_path)
    (arch,) = kb.query("SELECT * FROM architectures WHERE arch_id = ?", [trial["arch_id"]]).to_pylist()
    kinds = [node["kind"] for node in json.loads(arch["graph"])["nodes"]]
    config = json.loads(trial["config"])
    assert kinds == ["linear_act"] * config["n_layers"] + ["mlp_head"]


def test_the_same_search_in_two_fresh_processes_asks_the_same_configurations(tmp_path):
    """SMAC orders candidates through Python's string hashes, salted per process: `kb` fixes
    the salt, so a seed reproduces a search in another process, not only in this one."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    asked = []
    for attempt in ("a", "b"):
        kb_path = tmp_path / attempt
        for args in (["init"], ["search", HABERMAN, "--target", "target", "--trials", "7", "--families",
                                "linear", "--cold", "--seed", "3", "--out", str(tmp_path / f"m{attempt}")]):
            done = subprocess.run([sys.executable, "-c", "from kb.cli.main import main; main()",
                                   "--kb", str(kb_path), *args], env=env, capture_output=True, text=True,
                                  timeout=600)
            assert done.returncode == 0, done.stderr
        asked.append([t["config"] for t in sorted(_trials(kb_path), key=lambda t: t["started_at"])])
    assert len(asked[0]) == 7 and asked[0] == asked[1]
