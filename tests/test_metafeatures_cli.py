"""``kb metafeatures`` and ``kb similar``: what they store and print, and how they fail."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import metafeatures


@pytest.fixture
def kb_with_data(cli):
    assert cli("init").exit_code == 0
    for source in ("sklearn:iris", "sklearn:wine", "sklearn:breast_cancer", "sklearn:diabetes"):
        assert cli("datasets", "add", source).exit_code == 0
    return cli


def _stored(kb_path, dataset_id=None):
    from kb import KnowledgeBase

    kb = KnowledgeBase(kb_path)
    sql = "SELECT * FROM metafeatures" + (" WHERE dataset_id = ?" if dataset_id else "")
    return kb.query(sql, [dataset_id] if dataset_id else None).to_pylist()


def _one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_metafeatures_stores_prints_and_matches_the_package(kb_with_data):
    cli = kb_with_data
    result = cli("metafeatures", "iris")
    assert result.exit_code == 0, result.output
    assert "ClassEntropy" in result.output and "stored" in result.output
    report = json.loads(cli("metafeatures", "iris", "--json").output)
    rows = _stored(cli.kb_path, report["dataset_id"])
    assert len(rows) == report["stored"] == len(report["metafeatures"])
    assert {r["name"]: r["value"] for r in rows} == report["metafeatures"]
    assert {r["extractor_version"] for r in rows} == {metafeatures.EXTRACTOR_VERSION}
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    assert report["metafeatures"] == pytest.approx(metafeatures.extract(X, y, "multiclass"))


def test_recomputing_replaces_and_groups_limit_what_is_computed(kb_with_data):
    cli = kb_with_data
    first = json.loads(cli("metafeatures", "wine", "--groups", "general,info_theory", "--json").output)
    assert {metafeatures.group_of(n) for n in first["metafeatures"]} == {"general", "info-theory"}
    again = json.loads(cli("metafeatures", "wine", "--groups", "general,info_theory", "--json").output)
    assert len(_stored(cli.kb_path, first["dataset_id"])) == again["stored"]


def test_regression_dataset_notes_what_cannot_exist(kb_with_data):
    report = json.loads(kb_with_data("metafeatures", "diabetes", "--json").output)
    assert "ClassEntropy" not in report["metafeatures"] and "TargetSkewness" in report["metafeatures"]
    assert any("not a class" in note for note in report["notes"])


def test_sampled_features_record_their_rows(kb_with_data):
    report = json.loads(kb_with_data("metafeatures", "breast_cancer", "--max-rows", "200",
                                     "--json").output)
    rows = {r["name"]: r["sample_rows"] for r in _stored(kb_with_data.kb_path, report["dataset_id"])}
    assert rows["kNN1NErrRate"] == 200 and rows["NumberOfInstances"] is None


def test_all_datasets_then_similar_lists_itself_first(kb_with_data):
    cli = kb_with_data
    result = cli("metafeatures", "--all")
    assert result.exit_code == 0 and "[4/4]" in result.output
    rows = json.loads(cli("similar", "iris", "-k", "3", "--json").output)
    assert rows[0]["name"] == "iris" and rows[0]["distance"] == 0 and rows[0]["itself"]
    assert len(rows) == 3 and rows[1]["distance"] <= rows[2]["distance"]
    text = cli("similar", "iris", "-k", "2")
    assert text.exit_code == 0 and "iris (itself)" in text.output
    only_regression = json.loads(cli("similar", "iris", "--task", "regression", "--json").output)
    assert {r["task"] for r in only_regression} == {"regression"}


def test_similar_reads_other_tools_names_from_a_file(kb_with_data, tmp_path):
    cli = kb_with_data
    cli("metafeatures", "--all")
    report = json.loads(cli("metafeatures", "wine", "--json").output)
    v = report["metafeatures"]
    pymfe_file = tmp_path / "pymfe.json"
    pymfe_file.write_text(json.dumps({"nr_inst": v["NumberOfInstances"], "nr_attr": v["NumberOfFeatures"] - 1,
                                      "nr_class": v["NumberOfClasses"], "class_ent": v["ClassEntropy"],
                                      "one_nn.mean": 1 - v["kNN1NErrRate"]}))
    rows = json.loads(cli("similar", "--metafeatures", pymfe_file, "-k", "1", "--json").output)
    assert rows[0]["name"] == "wine" and rows[0]["distance"] == pytest.approx(0, abs=1e-12)
    askl_file = tmp_path / "askl.json"
    askl_file.write_text(json.dumps({"NumberOfInstances": v["NumberOfInstances"],
                                     "LogNumberOfFeatures": 2.5649493574615367,  # log(13)
                                     "ClassEntropy": v["ClassEntropy"], "SkewnessMean": 0.3}))
    result = cli("similar", "--metafeatures", askl_file, "-k", "1", "--json")
    assert result.exit_code == 0 and json.loads(result.output)[0]["name"] == "wine"


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"NumberOfInstances": "many"}', "not a number"),
    ('{"Astrology": 1}', "no meta-feature name is recognised"),
    ('{"nr_inst": 10, "SkewnessMean": 1}', "mix vocabularies"),
])
def test_similar_rejects_bad_files_on_one_line(kb_with_data, tmp_path, content, message):
    path = tmp_path / "q.json"
    path.write_text(content)
    _one_line_error(kb_with_data("similar", "--metafeatures", path), message)


def test_user_errors_exit_1_with_one_line(kb_with_data, tmp_path):
    cli = kb_with_data
    _one_line_error(cli("metafeatures", "nosuchdataset"), "no dataset 'nosuchdataset'")
    _one_line_error(cli("metafeatures", "iris", "--groups", "astrology"), "unknown group 'astrology'")
    _one_line_error(cli("similar", "--metafeatures", tmp_path / "missing.json"), "no such file")
    _one_line_error(cli("similar", "iris"), "no meta-features of other datasets")
    _one_line_error(cli("metafeatures", "--all", kb=tmp_path / "empty"), "no knowledge base")


def test_usage_errors_exit_2(kb_with_data, tmp_path):
    cli = kb_with_data
    for args in (("metafeatures",), ("metafeatures", "iris", "--all"), ("metafeatures", "iris", "--seed", "-1"),
                 ("metafeatures", "iris", "--max-rows", "-5"), ("similar",), ("similar", "iris", "-k", "0"),
                 ("similar", "iris", "--metafeatures", tmp_path / "q.json")):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)


def test_help_has_examples_and_the_default_row_limit():
    from click.testing import CliRunner

    from kb.cli.main import cli

    for command in ("metafeatures", "similar"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output
    assert f"default: {metafeatures.DEFAULT_MAX_ROWS}" in CliRunner().invoke(cli, ["metafeatures", "--help"]).output


def test_cli_import_stays_light():
    code = ("import sys, kb.cli.main; "
            "print(sorted(m for m in ('numpy', 'pandas', 'sklearn', 'scipy', 'pyarrow', 'duckdb', "
            "'metafeatures') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_bundled_dataset_is_characterised(cli):
    assert cli("init", "--bundled").exit_code == 0
    result = cli("metafeatures", "--all", "--json")
    assert result.exit_code == 0, result.output
    reports = json.loads(result.output)
    assert len(reports) == 21
    for report in reports:
        assert report["stored"] >= 50, report["name"]
        expected = 108 if report["task"] != "regression" else 60
        assert abs(report["stored"] - expected) <= 6, (report["name"], report["stored"])


def test_max_rows_0_is_reported_as_0_not_null(kb_with_data):
    report = json.loads(kb_with_data("metafeatures", "iris", "--groups", "general", "--max-rows", "0",
                                     "--json").output)
    assert report["max_rows"] == 0
    default = json.loads(kb_with_data("metafeatures", "iris", "--groups", "general", "--json").output)
    assert default["max_rows"] == metafeatures.DEFAULT_MAX_ROWS


def test_stored_rows_are_read_in_their_extractors_vocabulary(kb):
    from kb.metafeature_store import stored_vectors
    from kb.schema import Dataset, MetaFeature

    kb.append("datasets", [Dataset(dataset_id="0123456789abcdef", name="flowers", task="multiclass",
                                   target="species", n_rows=150, n_features=4, source="test")])

    def rows(extractor, values):
        return [MetaFeature(dataset_id="0123456789abcdef", name=name, value=value,
                            extractor=extractor, extractor_version="1") for name, value in values.items()]

    # metakb's own values beside one tool's: neither may hide the other.
    kb.append("metafeatures", rows("metakb", {"NumberOfInstances": 150.0, "ClassEntropy": 1.58})
              + rows("pymfe", {"nr_attr": 4.0, "attr_ent.mean": 1.9, "class_ent": 1.5})
              + rows("openml", {"MaxNominalAttDistinctValues": 3.0}))
    vector = stored_vectors(kb).vectors["0123456789abcdef"]
    assert vector["NumberOfInstances"] == 150.0
    assert vector["ClassEntropy"] == 1.58  # metakb's value wins over pymfe's class_ent
    assert vector["NumberOfFeatures"] == 5.0  # pymfe's nr_attr, the target counted as OpenML does
    assert vector["MeanAttributeEntropy"] == 1.9
    assert vector["MaxNominalAttDistinctValues"] == 3.0
    assert stored_vectors(kb, task="binary").vectors == {}
