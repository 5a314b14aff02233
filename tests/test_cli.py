"""The ``kb`` command line as a user meets it: help, exit codes, a first session end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import add_references, trial_table

from kb import KnowledgeBase
from kb.cli.main import cli as kb_cli
from kb.schema import SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("duckdb", "pyarrow", "pandas", "numpy", "sklearn", "torch", "onnxruntime", "smac", "rich")


def all_commands(group=kb_cli, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from all_commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_the_cli_imports_no_heavy_library_until_a_command_needs_it():
    code = f"import sys, kb.cli.main; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", list(all_commands()), ids=" ".join)
def test_every_command_has_help_with_an_example(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output, f"kb {' '.join(command)} --help has no example"


def test_usage_errors_exit_2_and_user_errors_exit_1_on_one_line(cli, tmp_path):
    assert cli("no-such-command").exit_code == 2
    assert cli("export").exit_code == 2
    result = cli("show", kb=tmp_path / "missing")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: no knowledge base at {tmp_path / 'missing'}; create one with `kb init --kb {tmp_path / 'missing'}`"


def test_kb_option_works_before_and_after_the_command(tmp_path):
    from click.testing import CliRunner

    runner = CliRunner()
    target = tmp_path / "here"
    assert runner.invoke(kb_cli, ["init", "--kb", str(target)]).exit_code == 0
    result = runner.invoke(kb_cli, ["show", "--json", "--kb", str(target)])
    assert json.loads(result.output)["path"] == str(target.resolve())
    result = runner.invoke(kb_cli, ["show", "--json"], env={"KB_PATH": str(target)})
    assert json.loads(result.output)["path"] == str(target.resolve())


def test_init_bundled_twice_adds_the_datasets_once(cli):
    first = cli("init", "--bundled")
    assert first.exit_code == 0 and "21 bundled dataset(s) added" in first.output
    second = cli("init", "--bundled")
    assert "opened existing" in second.output and "0 bundled dataset(s) added, 21 already present" in second.output
    assert json.loads(cli("show", "--json").output)["counts"]["datasets"] == 21


def test_a_new_user_round_trips_a_table_through_the_cli(cli, tmp_path):
    """init, datasets add, ingest, show, export: the exported table equals the ingested one."""
    assert cli("init").exit_code == 0
    assert cli("datasets", "add", "sklearn:wine").exit_code == 0
    source = KnowledgeBase.create(tmp_path / "source")
    add_references(source)
    source.append("trials", trial_table(40))
    source_file = tmp_path / "trials.parquet"
    assert cli("export", "trials", "--out", source_file, kb=source.root).exit_code == 0

    result = cli("ingest", source_file)
    assert result.exit_code == 0 and "40 added" in result.output
    counts = json.loads(cli("show", "--json").output)["counts"]
    assert counts["trials"] == 40 and counts["datasets"] == 1

    for fmt in ("parquet", "csv", "jsonl"):
        out = tmp_path / f"trials-back.{fmt}"
        assert cli("export", "trials", "--out", out).exit_code == 0
        other = tmp_path / f"other-{fmt}"
        cli("init", kb=other)
        assert cli("ingest", out, kb=other).exit_code == 0
        assert KnowledgeBase(other).read("trials").sort_by("trial_id").equals(
            source.read("trials").sort_by("trial_id"))


def test_query_binds_parameters_and_reports_bad_sql_on_one_line(cli):
    cli("init", "--bundled")
    result = cli("query", "SELECT name FROM datasets WHERE task = ? AND n_rows >= ? ORDER BY name",
                 "-p", "binary", "-p", "5000", "--json")
    assert result.exit_code == 0
    assert [r["name"] for r in json.loads(result.output)] == ["churn", "mushroom"]
    bad = cli("query", "SELEC nonsense")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: query failed") and bad.stderr.count("\n") == 1


def test_validate_and_compact_on_a_healthy_kb(cli):
    cli("init", "--bundled")
    result = cli("validate")
    assert result.exit_code == 0 and "no problems found" in result.output
    result = cli("compact", "datasets")
    assert result.exit_code == 0 and "datasets: 21 shards -> 1" in result.output
    assert json.loads(cli("show", "--json").output)["counts"]["datasets"] == 21
    assert "nothing to compact" in cli("compact").output


def test_migrate_on_a_current_kb_says_so(cli):
    cli("init")
    result = cli("migrate")
    assert result.exit_code == 0 and f"already at schema version {SCHEMA_VERSION}" in result.output


def test_the_readme_commands_are_the_ones_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    install = next(line for line in readme.splitlines() if "pip install" in line and "kb init" in line)
    test = next(line for line in readme.splitlines() if "pytest" in line and not line.startswith("#"))
    assert install.strip() in ci
    assert test.strip() in ci


def test_opening_a_kb_imports_neither_pandas_nor_the_cli_s_table_printer(cli):
    cli("init")
    code = (f"import sys; from kb import KnowledgeBase; KnowledgeBase({str(cli.kb_path)!r}).counts(); "
            "print([m for m in ('pandas', 'rich') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_file_that_cannot_be_written_is_a_one_line_error(cli, tmp_path):
    cli("init")
    (tmp_path / "afile").write_text("not a folder")
    result = cli("export", "datasets", "--out", tmp_path / "afile" / "datasets.csv")
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.stderr.count("\n") == 1


def test_json_output_of_init_export_compact_and_times_in_iso_8601(cli, tmp_path):
    made = json.loads(cli("init", "--json").output)
    assert made["created"] is True and made["schema_version"] == SCHEMA_VERSION
    cli("datasets", "add", "sklearn:iris")
    exported = json.loads(cli("export", "datasets", "--out", tmp_path / "datasets.jsonl", "--json").output)
    assert exported == {"table": "datasets", "rows": 1, "path": str(tmp_path / "datasets.jsonl"), "format": "jsonl"}
    assert json.loads(cli("compact", "--json").output) == {}
    [row] = json.loads(cli("query", "SELECT added_at FROM datasets", "--json").output)
    assert "T" in row["added_at"]
