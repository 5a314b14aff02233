"""``kb hardware`` and ``kb bench``: output, records written, and exit codes (0 ok, 1 a user
error in one line without a traceback, 2 a usage error)."""

from __future__ import annotations

import json

import pytest

FOREST = '{"family": "random_forest", "n_estimators": 5}'


@pytest.fixture
def kb_with_data(cli):
    assert cli("init").exit_code == 0
    result = cli("datasets", "add", "sklearn:iris")
    assert result.exit_code == 0, result.output
    return cli


def _one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(("Error: ", "trial failed: ")), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_detect_works_without_a_kb(cli):
    result = cli("hardware", "detect", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["machine"]["cores"] >= 1
    names = [p["profile"] for p in shown["profiles"]]
    assert names[:3] == ["cpu-1t", "cpu-all", "cpu-1t-int8"]
    has_cuda = shown["machine"]["torch_cuda"] or "CUDAExecutionProvider" in shown["machine"]["providers"]
    assert ("cuda" in names) == bool(has_cuda)
    text = cli("hardware", "detect")
    assert text.exit_code == 0 and "onnxruntime" in text.output and "cpu-1t-int8" in text.output


def test_detect_save_records_hardware_rows(cli):
    _one_line_error(cli("hardware", "detect", "--save"), "no knowledge base")
    assert cli("init").exit_code == 0
    saved = json.loads(cli("hardware", "detect", "--save", "--json").output)["saved"]
    assert saved >= 3
    assert json.loads(cli("hardware", "detect", "--save", "--json").output)["saved"] == 0
    recorded = json.loads(cli("hardware", "list", "--json").output)["recorded"]
    assert {r["name"] for r in recorded} >= {"cpu-1t", "cpu-all", "cpu-1t-int8"}


def test_add_then_list_a_profile(cli):
    assert cli("init").exit_code == 0
    result = cli("hardware", "add", "edge", "--threads", "1", "--quantization", "int8",
                 "--batch-size", "8", "--memory-limit-mb", "300", "--description", "edge box")
    assert result.exit_code == 0, result.output
    assert (cli.kb_path / "hardware.toml").is_file()
    profiles = {p["name"]: p for p in json.loads(cli("hardware", "list", "--json").output)["profiles"]}
    edge = profiles["edge"]
    assert (edge["quantization"], edge["batch_size"], edge["memory_limit_mb"], edge["usable"]) == (
        "int8", 8, 300.0, True)
    assert edge["source"].endswith("hardware.toml") and profiles["cpu-1t"]["source"] == "built-in"


@pytest.mark.parametrize("args, fragment", [
    (["edge", "--quantization", "int4"], 'quantization must be "none" or "int8"'),
    (["edge", "--threads", "many"], "threads must be"),
    (["edge", "--batch-size", "0"], "batch_size must be a whole number >= 1"),
    (["cpu-1t"], "built in"),
    (["Edge Box"], "a profile name is"),
])
def test_add_rejects_bad_profiles_in_one_line(cli, args, fragment):
    assert cli("init").exit_code == 0
    _one_line_error(cli("hardware", "add", *args), fragment)


def test_a_refused_name_leaves_the_kb_usable(cli):
    assert cli("init").exit_code == 0
    _one_line_error(cli("hardware", "add", "edge.v2", "--threads", "1"),
                    "a profile name is", "'_' or '-'")
    assert not (cli.kb_path / "hardware.toml").exists()
    assert cli("hardware", "list").exit_code == 0
    assert cli("hardware", "add", "edge-v2", "--threads", "1").exit_code == 0
    assert cli("hardware", "list").exit_code == 0


def test_hardware_help_has_examples(cli):
    for args in (["hardware", "--help"], ["hardware", "add", "--help"]):
        result = cli(*args)
        assert result.exit_code == 0 and "Example" in result.output, args


def test_add_refuses_a_duplicate_and_needs_a_kb(cli):
    _one_line_error(cli("hardware", "add", "edge"), "no knowledge base")
    assert cli("init").exit_code == 0
    assert cli("hardware", "add", "edge").exit_code == 0
    _one_line_error(cli("hardware", "add", "edge", "--threads", "2"), "already exists", "edit")


def test_a_broken_profiles_file_is_one_line(cli):
    assert cli("init").exit_code == 0
    (cli.kb_path / "hardware.toml").write_text("[profiles.edge]\nthreds = 2\n")
    _one_line_error(cli("hardware", "list"), "unknown setting 'thred")


def test_bench_runs_prints_and_records_a_trial(kb_with_data, tmp_path):
    model = tmp_path / "iris.onnx"
    result = kb_with_data("bench", "iris", "--config", FOREST, "--hardware", "cpu-1t-int8",
                          "--folds", "3", "--save-model", str(model), "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    trial = shown["trial"]
    assert trial["status"] == "ok" and trial["metric"] == "log_loss"
    assert shown["hardware"]["name"] == "cpu-1t-int8" and model.is_file()
    rows = json.loads(kb_with_data("query", "SELECT t.status, h.name, r.command FROM trials t "
                                   "JOIN hardware h USING (hardware_id) JOIN runs r USING (run_id)",
                                   "--json").output)
    assert rows == [{"status": "ok", "name": "cpu-1t-int8", "command": "bench"}]
    again = kb_with_data("bench", "iris", "--config", FOREST, "--hardware", "cpu-1t-int8",
                         "--folds", "3")
    assert again.exit_code == 0, again.output
    assert "replaced the earlier measurement" in again.output and "latency" in again.output
    count = json.loads(kb_with_data("query", "SELECT count(*) AS n FROM trials", "--json").output)
    assert count == [{"n": 1}]


def test_bench_records_a_failed_trial_and_exits_1(kb_with_data):
    assert kb_with_data("hardware", "add", "strict", "--parity-tolerance", "1e-12").exit_code == 0
    result = kb_with_data("bench", "iris", "--config", FOREST, "--hardware", "strict",
                          "--folds", "3")
    _one_line_error(result, "trial failed: parity: ")
    rows = json.loads(kb_with_data("query", "SELECT status FROM trials", "--json").output)
    assert rows == [{"status": "failed"}]


@pytest.mark.parametrize("args, fragment", [
    (["iris", "--config", '{"family": "random_forest"'], "--config is not JSON"),
    (["iris", "--config", "[1]"], "must be a JSON object"),
    (["iris", "--config", '{"family": "boosted"}'], 'needs "family": one of'),
    (["iris", "--config", '{"family": "knn", "k": 3}'], "'k' is not one of its keys"),
    (["iris", "--config", FOREST, "--metric", "rmse"], "metric 'rmse' does not apply"),
    (["iris", "--config", FOREST, "--hardware", "phone"], "no hardware profile 'phone'"),
    (["iris", "--config", "@missing.json"], "no such file"),
    (["tulips", "--config", FOREST], "no dataset 'tulips'"),
])
def test_bench_user_errors_exit_1_before_running(kb_with_data, args, fragment):
    result = kb_with_data("bench", *args)
    _one_line_error(result, fragment)
    assert "running" not in result.output


@pytest.mark.parametrize("args", [
    ["iris"],  # no --config
    ["iris", "--config", FOREST, "--folds", "1"],
    ["iris", "--config", FOREST, "--fidelity", "0"],
    ["iris", "--config", FOREST, "--bogus"],
])
def test_bench_usage_errors_exit_2(kb_with_data, args):
    assert kb_with_data("bench", *args).exit_code == 2


def test_bench_lists_families_and_keys(cli):
    result = cli("bench", "--families")
    assert result.exit_code == 0
    for family in ("random_forest", "hist_gradient_boosting", "mlp", "svm", "knn", "linear"):
        assert family in result.output


def test_help_has_examples(cli):
    for args in (["hardware", "--help"], ["hardware", "detect", "--help"],
                 ["hardware", "add", "--help"], ["bench", "--help"]):
        result = cli(*args)
        assert result.exit_code == 0 and ("Example" in result.output or "hardware.toml" in result.output)
    assert "bench" in cli("--help").output and "hardware" in cli("--help").output
