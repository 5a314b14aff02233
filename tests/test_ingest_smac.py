"""The smac ingest format on the output folders of real (tiny) SMAC 2.x runs."""

from __future__ import annotations

import json
import shutil
import statistics
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import pytest

from kb.datasets import load, register
from kb.errors import KBError
from kb.ingest import ingest
from kb.ingest.smac import RUNNING, STATUSES
from kb.keys import canonical_json
from kb.schema import Hardware

# SMAC's random forest averages empty slices on a run this small; harmless, and not ours.
pytestmark = [pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")]


def toy_space():
    """A space written the way metakb's are: a ``family`` and ``family:key`` hyperparameters."""
    from ConfigSpace import Categorical, ConfigurationSpace, EqualsCondition, Float, Integer

    space = ConfigurationSpace(seed=0)
    family, x, n = Categorical("family", ["a", "b"]), Float("a:x", (-5, 5)), Integer("b:n", (1, 10))
    space.add([family, x, n, Categorical("scaling", ["none", "std"])])
    space.add([EqualsCondition(x, family, "a"), EqualsCondition(n, family, "b")])
    return space


def toy_cost(config, instance: str | None = None, seed: int = 0, budget: float | None = None) -> float:
    if config["family"] == "b" and config["b:n"] > 5:
        raise ValueError("n is too large")
    base = (config["a:x"] - 1) ** 2 if config["family"] == "a" else float(config["b:n"])
    return base + (0.5 if instance == "fold1" else 0.0) + (1.0 / budget if budget else 0.0)


@pytest.fixture(scope="module")
def smac_runs(tmp_path_factory) -> Path:
    """Two real SMAC runs: one on two instances (folds), one with budgets (Hyperband)."""
    from smac import HyperparameterOptimizationFacade, MultiFidelityFacade, Scenario

    out = tmp_path_factory.mktemp("smac")
    folds = Scenario(toy_space(), name="folds", output_directory=out / "folds", deterministic=True,
                     n_trials=12, crash_cost=100.0, seed=1, instances=["fold0", "fold1"],
                     instance_features={"fold0": [0.0], "fold1": [1.0]})
    HyperparameterOptimizationFacade(folds, toy_cost, overwrite=True, logging_level=40).optimize()
    budgets = Scenario(toy_space(), name="budgets", output_directory=out / "budgets",
                       deterministic=True, n_trials=12, crash_cost=100.0, seed=2,
                       min_budget=1, max_budget=9)
    MultiFidelityFacade(budgets, toy_cost, overwrite=True, logging_level=40).optimize()
    return out


@pytest.fixture
def runs(smac_runs, tmp_path) -> Path:
    """A writable copy of the SMAC output."""
    return Path(shutil.copytree(smac_runs, tmp_path / "smac"))


@pytest.fixture
def iris(kb) -> str:
    record, _ = register(kb, load("sklearn:iris"))
    return record.dataset_id


def history(runs: Path, name: str) -> Path:
    return next(runs.glob(f"{name}/**/runhistory.json"))


@contextmanager
def edited(path: Path):
    """A JSON file's content to change in place; written back when the block ends."""
    data = json.loads(path.read_text())
    yield data
    path.write_text(json.dumps(data))


def stored_trials(kb) -> list[dict]:
    return kb.query("SELECT * FROM trials ORDER BY trial_id").to_pylist()


def test_each_configuration_seed_and_budget_becomes_a_trial_on_the_dataset(kb, runs, iris):
    reports = ingest(kb, runs, format="smac", dataset="iris")
    assert [r.rejected for r in reports] == [None, None]
    expected = 0
    for name in ("budgets", "folds"):
        data = json.loads(history(runs, name).read_text())
        expected += len({(e["config_id"], e["seed"], e["budget"]) for e in data["data"]})
    trials = stored_trials(kb)
    assert len(trials) == sum(r.added for r in reports) == expected
    assert {(t["dataset_id"], t["metric"], t["direction"], t["source"]) for t in trials} == {
        (iris, "cost", "minimize", "smac")}
    hardware = kb.read("hardware").to_pylist()
    assert [(h["kind"], h["name"]) for h in hardware] == [("external", "unknown (smac)")]
    assert {t["hardware_id"] for t in trials} == {hardware[0]["hardware_id"]}


def test_configurations_of_metakb_spaces_lose_the_family_prefix(kb, runs, iris):
    ingest(kb, runs, format="smac", dataset=iris)
    for trial in stored_trials(kb):
        config = json.loads(trial["config"])
        assert trial["model_family"] == config["family"]
        keys = {"a": {"family", "scaling", "x"}, "b": {"family", "scaling", "n"}}[config["family"]]
        assert set(config) == keys


def test_costs_on_several_instances_are_one_trial_scored_by_their_mean(kb, runs, iris):
    path = history(runs, "folds")
    ingest(kb, path.parent, format="smac", dataset=iris)
    data = json.loads(path.read_text())
    costs = defaultdict(dict)
    for entry in data["data"]:
        costs[entry["config_id"]][entry["instance"]] = (entry["status"], entry["cost"])
    several = {config_id: {fold: cost for fold, (_, cost) in by_fold.items()}
               for config_id, by_fold in costs.items()
               if len(by_fold) > 1 and all(status == 1 for status, _ in by_fold.values())}
    assert several, "SMAC's intensifier runs its incumbent on both folds"
    by_config = {t["config"]: t for t in stored_trials(kb)}
    for config_id, by_fold in several.items():
        flat = {name.split(":")[-1]: value for name, value in data["configs"][str(config_id)].items()}
        trial = by_config[canonical_json(flat)]
        assert trial["score"] == pytest.approx(statistics.fmean(by_fold.values()))
        assert trial["score_std"] == pytest.approx(statistics.pstdev(by_fold.values()))
        assert json.loads(trial["details"])["instance_costs"] == pytest.approx(by_fold)


def test_budgets_become_fidelities_scaled_by_the_max_budget(kb, runs, iris):
    path = history(runs, "budgets")
    ingest(kb, path.parent, format="smac", dataset=iris)
    budgets = sorted({e["budget"] for e in json.loads(path.read_text())["data"]})
    fidelities = sorted({t["fidelity"] for t in stored_trials(kb)})
    assert len(budgets) > 1 and budgets[-1] == 9
    assert fidelities == pytest.approx([b / 9 for b in budgets])


def test_crashed_trials_fail_with_smac_s_error_as_reason(kb, runs, iris):
    ingest(kb, runs, format="smac", dataset=iris)
    failed = [t for t in stored_trials(kb) if t["status"] != "ok"]
    assert failed, "the toy runs crash whenever n > 5"
    for trial in failed:
        assert trial["status"] == "failed" and trial["score"] is None
        assert "n is too large" in trial["failure_reason"]
        assert json.loads(trial["config"])["n"] > 5
        assert "traceback" not in json.loads(trial["details"])


def test_a_second_ingest_adds_nothing(kb, runs, iris):
    first = ingest(kb, runs, format="smac", dataset=iris)
    again = ingest(kb, runs, format="smac", dataset=iris)
    assert [r.added for r in again] == [0, 0]
    assert [r.already_present for r in again] == [r.added for r in first]


def test_the_status_values_are_smac_s():
    from smac.runhistory.enumerations import StatusType

    assert {value: name for value, (name, *_) in STATUSES.items()} == {
        s.value: s.name for s in StatusType if s.value in STATUSES}
    assert StatusType(RUNNING).name == "RUNNING"
    unmapped = {s.name for s in StatusType} - {name for name, *_ in STATUSES.values()}
    assert unmapped <= {"RUNNING", "DONOTADVANCE", "CAPPED"}


def test_trials_still_running_are_left_out_and_counted(kb, runs, iris):
    path = history(runs, "budgets")
    with edited(path) as data:
        data["data"][0]["status"] = RUNNING
    report = next(r for r in ingest(kb, runs, format="smac", dataset=iris) if r.path == path)
    assert (report.rows_left_out, report.left_out_because) == (1, "still running when saved")


def test_a_named_hardware_row_is_used(kb, runs, iris):
    kb.add(Hardware(name="edge-box", kind="cpu", source="measured", cores=2, threads=1))
    ingest(kb, runs, format="smac", dataset=iris, hardware="edge-box")
    hardware = kb.read("hardware").to_pylist()
    assert [h["name"] for h in hardware] == ["edge-box"]
    assert {t["hardware_id"] for t in stored_trials(kb)} == {hardware[0]["hardware_id"]}


def test_more_objectives_score_the_first_and_keep_the_others(kb, runs, iris):
    folder = history(runs, "budgets").parent
    with edited(folder / "scenario.json") as scenario:
        scenario["objectives"] = ["cost", "latency_ms"]
    with edited(folder / "runhistory.json") as data:
        for entry in data["data"]:
            entry["cost"] = [entry["cost"], 2.5]
    report = ingest(kb, folder, format="smac", dataset=iris)[0]
    assert not report.rejected
    ok = [t for t in stored_trials(kb) if t["status"] == "ok"]
    assert ok and all(json.loads(t["details"])["objectives"]["latency_ms"] == 2.5 for t in ok)
    assert all(t["score"] == json.loads(t["details"])["objectives"]["cost"] for t in ok)


def _break_json(folder: Path) -> str:
    text = (folder / "runhistory.json").read_text()
    (folder / "runhistory.json").write_text(text[: len(text) // 2])
    return "/runhistory.json is not valid JSON ("


def _unknown_config(folder: Path) -> str:
    with edited(folder / "runhistory.json") as data:
        data["data"][2]["config_id"] = 999
    return "/runhistory.json: row 3, field 'config_id': 999 is not the id of a configuration"


def _text_cost(folder: Path) -> str:
    with edited(folder / "runhistory.json") as data:
        row = next(i for i, e in enumerate(data["data"]) if e["status"] == 1)
        data["data"][row]["cost"] = "low"
    return f"/runhistory.json: row {row + 1}, field 'cost': expected a finite number"


def _budget_above_max(folder: Path) -> str:
    with edited(folder / "runhistory.json") as data:
        data["data"][0]["budget"] = 27
    return "/runhistory.json: row 1, field 'budget': 27 is above the scenario's max_budget 9.0"


def _config_outside_space(folder: Path) -> str:
    with edited(folder / "runhistory.json") as data:
        config_id, values = next((k, v) for k, v in data["configs"].items() if v["family"] == "a")
        values["a:x"] = 50.0
    return f"/runhistory.json: field 'configs': configuration {config_id} does not fit"


def _missing_space(folder: Path) -> str:
    (folder / "configspace.json").unlink()
    return "/configspace.json is missing"


@pytest.mark.parametrize("damage", [_break_json, _unknown_config, _text_cost, _budget_above_max,
                                    _config_outside_space, _missing_space])
def test_a_damaged_run_is_rejected_naming_file_row_and_field(kb, runs, iris, damage):
    folder = history(runs, "budgets").parent
    expected = damage(folder)
    report = ingest(kb, folder, format="smac", dataset=iris)[0]
    assert report.rejected and f"{folder}{expected}" in report.rejected
    assert kb.counts()["trials"] == 0 and kb.counts()["hardware"] == 0


def test_the_dataset_must_be_registered_and_the_folder_hold_a_run(kb, runs, iris, tmp_path):
    with pytest.raises(KBError, match="needs --dataset"):
        ingest(kb, runs, format="smac")
    with pytest.raises(KBError, match="no dataset 'nope'"):
        ingest(kb, runs, format="smac", dataset="nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KBError, match="no SMAC run"):
        ingest(kb, tmp_path / "empty", format="smac", dataset=iris)


def test_the_cli_ingests_a_run_folder(cli, runs):
    assert cli("init").exit_code == 0
    assert cli("datasets", "add", "sklearn:iris").exit_code == 0
    result = cli("ingest", runs, "--format", "smac", "--dataset", "iris", "--json")
    assert result.exit_code == 0, result.output
    assert sum(r["added"] for r in json.loads(result.output)) > 0
    missing = cli("ingest", runs, "--format", "smac")
    assert missing.exit_code == 1 and "needs --dataset" in missing.output
    wrong = cli("ingest", runs, "--format", "smac", "--dataset", "iris", "--table", "trials")
    assert wrong.exit_code == 1 and "--table does not apply to this format" in wrong.output
