"""Loading, identifying and registering datasets."""

from __future__ import annotations

import csv
import gzip
import json
import re

import numpy as np
import pandas as pd
import pytest

from kb.datasets import (
    bundled, fingerprint, infer_target, infer_task, load, load_bundled, load_registered, register,
)
from kb.errors import KBError


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "age": rng.integers(18, 90, 60),
        "income": rng.normal(50, 10, 60).round(3),
        "city": rng.choice(["Oslo", "Lima", "Pune"], 60),
        "churned": rng.choice(["yes", "no"], 60),
    })


def save(frame, path):
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.name.endswith(".tsv.gz"):
        frame.to_csv(path, sep="\t", index=False, compression="gzip")
    else:
        frame.to_csv(path, index=False)
    return path


def test_the_same_data_in_any_format_is_one_dataset(frame, tmp_path):
    ids = {load(save(frame, tmp_path / name), target="churned").record.dataset_id
           for name in ("d.csv", "d.parquet", "d.tsv.gz")}
    assert len(ids) == 1


def test_the_id_changes_with_any_value_column_name_or_target(frame):
    base = fingerprint(frame, "churned")
    changed = frame.copy()
    changed.loc[7, "income"] += 1e-9
    assert fingerprint(changed, "churned") != base
    assert fingerprint(frame.rename(columns={"age": "years"}), "churned") != base
    assert fingerprint(frame, "city") != base


def test_arff_files_load_with_their_types(tmp_path):
    path = tmp_path / "weather.arff"
    path.write_text(
        "% comment\n@RELATION weather\n@ATTRIBUTE outlook {sunny, rainy}\n"
        "@ATTRIBUTE temperature NUMERIC\n@ATTRIBUTE note STRING\n@ATTRIBUTE play {yes, no}\n"
        "@DATA\nsunny,85,'hot, dry',no\nrainy,?,'mild',yes\nsunny,70,'x',yes\n")
    loaded = load(path)
    assert loaded.record.target == "play" and loaded.record.task == "binary"
    assert loaded.frame["temperature"].dtype.kind == "f" and loaded.frame["temperature"].isna().sum() == 1
    assert loaded.frame["note"].tolist() == ["hot, dry", "mild", "x"]


@pytest.mark.parametrize("name, task, classes", [
    ("iris", "multiclass", 3), ("breast_cancer", "binary", 2), ("diabetes", "regression", None),
])
def test_scikit_learn_datasets_load(name, task, classes):
    loaded = load(f"sklearn:{name}")
    assert (loaded.record.task, loaded.record.n_classes, loaded.record.target) == (task, classes, "target")
    assert loaded.record.source == "scikit-learn"


def test_target_inference_prefers_a_target_like_name_then_the_last_column(frame):
    assert infer_target(frame) == "churned"
    assert infer_target(frame.assign(label=1)) == "label"
    assert infer_target(frame, "city") == "city"


@pytest.mark.parametrize("values, task", [
    (["a", "b", "a"], "binary"),
    ([0, 1, 1, 0], "binary"),
    ([1.0, 0.0, 1.0], "binary"),
    ([1, 2, 3, 1, 2], "multiclass"),
    ([0.5, 1.25, 3.0, 2.0], "regression"),
    (list(range(100)), "regression"),
    ([True, False, True], "binary"),
])
def test_task_inference(values, task):
    assert infer_task(pd.Series(values, name="y")) == task


def test_a_given_task_overrides_inference_when_it_fits():
    assert infer_task(pd.Series([1, 2, 3, 4, 5], name="y"), "regression") == "regression"
    with pytest.raises(KBError, match="3 classes, so the task is multiclass, not binary"):
        infer_task(pd.Series([1, 2, 3], name="y"), "binary")


@pytest.mark.parametrize("make, target, task, message", [
    (lambda f: f, "colour", None, "no column 'colour'; the columns are: age, income, city, churned"),
    (lambda f: f.assign(churned="yes"), "churned", None, "single class ('yes')"),
    (lambda f: f.assign(churned=np.nan), "churned", None, "has no values"),
    (lambda f: f, "city", "regression", "is not numeric"),
    (lambda f: f.assign(income=np.inf), "income", "regression", "infinite values"),
    (lambda f: f[["churned"]], "churned", None, "no feature columns"),
])
def test_bad_targets_get_clear_errors(frame, tmp_path, make, target, task, message):
    path = save(make(frame), tmp_path / "d.csv")
    with pytest.raises(KBError, match=re.escape(message)):
        load(path, target=target, task=task)


def test_rows_without_a_target_are_left_out_and_counted(frame, tmp_path):
    frame.loc[[3, 9], "churned"] = None
    loaded = load(save(frame, tmp_path / "d.csv"), target="churned")
    assert loaded.dropped_rows == 2 and loaded.record.n_rows == 58


@pytest.mark.parametrize("name, content, message", [
    ("d.csv", b"", "is empty"),
    ("d.csv", b"a,b,c\n", "has a header but no rows"),
    ("d.parquet", b"a,b\n1,2\n", "named as Parquet but is text"),
    ("d.csv", b"PAR1\x00\x00\x00", "is a Parquet file"),
    ("d.csv", b"\x89PNG\r\n\x1a\n\x00\x00", "binary data"),
    ("d.csv.gz", b"a,b\n1,2\n", "named .gz but is text"),
    ("d.arff", b"@RELATION x\n@ATTRIBUTE a NUMERIC\n@DATA\n1,2,3\n", "not a valid ARFF"),
    ("d.xlsx", b"PK\x03\x04", "unsupported file type '.xlsx'"),
])
def test_unreadable_files_get_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(KBError, match=re.escape(message)):
        load(path)


def test_missing_file_and_unknown_sklearn_name(tmp_path):
    with pytest.raises(KBError, match="no such file"):
        load(tmp_path / "absent.csv")
    with pytest.raises(KBError, match="unknown scikit-learn dataset 'titanic'"):
        load("sklearn:titanic")


def test_register_keeps_a_copy_and_the_same_data_twice_is_one_dataset(kb, frame, tmp_path):
    path = save(frame, tmp_path / "d.csv")
    record, added = register(kb, load(path, target="churned"))
    assert added and (kb.root / record.data_file).is_file()
    again, added_again = register(kb, load(save(frame, tmp_path / "copy.parquet"), target="churned"))
    assert not added_again and again.dataset_id == record.dataset_id and again.name == "d"
    assert kb.counts()["datasets"] == 1
    path.unlink()  # the KB no longer needs the original
    loaded = load_registered(kb, "d")
    pd.testing.assert_frame_equal(loaded.frame, frame, check_dtype=False)
    assert fingerprint(loaded.frame, "churned") == record.dataset_id


def test_the_bundled_manifest_matches_its_files():
    entries = bundled()
    assert len(entries) >= 15
    assert {e.task for e in entries} == {"binary", "multiclass", "regression"}
    for entry in entries:
        loaded = load_bundled(entry)
        assert (loaded.record.n_rows, loaded.record.n_features, loaded.record.n_classes) == \
            (entry.n_rows, entry.n_features, entry.n_classes), entry.name
        assert loaded.record.licence and loaded.record.source == "pmlb"


def test_datasets_cli_add_list_and_errors(cli, frame, tmp_path):
    assert cli("init").exit_code == 0
    path = save(frame, tmp_path / "shop.csv")
    result = cli("datasets", "add", path, "--target", "churned")
    assert result.exit_code == 0 and "added shop" in result.output and "binary" in result.output
    result = cli("datasets", "add", path, "--target", "churned")
    assert "already present as shop" in result.output
    listed = json.loads(cli("datasets", "list", "--json").output)
    assert [d["name"] for d in listed] == ["shop"]
    assert listed[0]["n_rows"] == 60 and listed[0]["trials"] == 0

    result = cli("datasets", "add", path, "--target", "colour")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: no column 'colour'; the columns are: age, income, "
                                     "city, churned")
    assert cli("datasets", "add", path, "--task", "ranking").exit_code == 2
    assert cli("datasets", "add").exit_code == 2


def test_datasets_list_on_an_empty_kb_says_how_to_add(cli):
    cli("init")
    result = cli("datasets", "list")
    assert result.exit_code == 0 and "kb datasets add" in result.output


def test_pmlb_files_from_shared_data_load_with_summary_shapes(shared_data):
    with open(shared_data / "pmlb" / "summary_stats.tsv") as f:
        stats = {r["dataset"]: r for r in csv.DictReader(f, delimiter="\t")}
    for name in ("analcatdata_aids", "flags", "labor", "1030_ERA", "prnn_synth"):
        path = shared_data / "pmlb" / f"{name}.tsv.gz"
        with gzip.open(path, "rt") as f:
            header = f.readline().rstrip("\n").split("\t")
        target = "target" if "target" in header else header[-1]
        loaded = load(path, target=target, task=None if stats[name]["task"] == "classification" else "regression")
        assert loaded.record.n_rows == int(stats[name]["n_instances"]), name
        assert loaded.record.n_features == int(stats[name]["n_features"]), name


def test_missing_cells_of_mixed_columns_stay_missing_in_the_kb_copy(kb):
    frame = pd.DataFrame({"code": [1, "a", None, 2.5, "b", None], "y": [0, 1, 0, 1, 0, 1]})
    record, _ = register(kb, load_frame_for_test(frame))
    stored = load_registered(kb, record.dataset_id).frame
    assert stored["code"].isna().tolist() == [False, False, True, False, False, True]
    assert stored["code"].dropna().tolist() == ["1", "a", "2.5", "b"]
    assert fingerprint(stored, "y") == record.dataset_id


def load_frame_for_test(frame):
    from kb.datasets import LoadedDataset
    from kb.schema import Dataset

    record = Dataset(dataset_id=fingerprint(frame, "y"), name="mixed", task="binary", target="y",
                     n_rows=len(frame), n_features=1, source="test")
    return LoadedDataset(record, frame)


def test_a_damaged_data_file_is_a_one_line_error_and_validate_reports_it(kb, cli, tmp_path):
    record, _ = register(kb, load("sklearn:iris"))
    path = kb.root / record.data_file
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(KBError, match="is unreadable"):
        load_registered(kb, "iris")
    result = cli("validate", kb=kb.root)
    assert result.exit_code == 1 and "unreadable_data_file" in result.output


def test_arff_nominal_attributes_stay_categories_even_when_they_look_like_numbers(tmp_path):
    path = tmp_path / "sizes.arff"
    path.write_text("@RELATION s\n@ATTRIBUTE size {1,2,3}\n@ATTRIBUTE x NUMERIC\n"
                    "@ATTRIBUTE class {a,b}\n@DATA\n1,0.5,a\n3,1.5,b\n2,?,a\n")
    frame = load(path).frame
    assert frame["size"].dtype == "category" and list(frame["size"].cat.categories) == ["1", "2", "3"]
    assert frame["x"].dtype.kind == "f"
