"""kb audit on the shipped baseline: it passes as shipped, fails when a success is tampered
with, and its HTML report renders in headless Chromium with its plots and tables."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

CHECKS = ["complete", "current", "reproducible", "coverage", "value"]
FAILED = 3  # kb audit's exit status when a check fails


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """The shipped baseline (`kb init --bundled`) and `kb audit --rerun 5 --html`, as the
    README's done-when reads."""
    from click.testing import CliRunner

    from kb.cli.main import cli

    folder = tmp_path_factory.mktemp("audit")
    kb_path, html = folder / "kb", folder / "report.html"
    runner = CliRunner()
    assert runner.invoke(cli, ["--kb", str(kb_path), "init", "--bundled"]).exit_code == 0
    result = runner.invoke(cli, ["--kb", str(kb_path), "audit", "--rerun", "5", "--html", str(html),
                                 "--json"], catch_exceptions=False)
    return kb_path, html, result


def _copy(kb_path: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "kb"
    shutil.copytree(kb_path, copy)
    return copy


def test_the_shipped_baseline_passes_with_five_reruns(audited):
    _, html, result = audited
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [c["name"] for c in report["checks"]] == CHECKS
    assert report["passed"] and html.is_file()
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["complete"]["status"] == "pass"
    reruns = checks["reproducible"]["data"]["reruns"]
    assert len(reruns) == 5
    for rerun in reruns:  # the same seed draws the same folds: the same score
        assert rerun["rerun_score"] == pytest.approx(rerun["claimed_score"], abs=rerun["score_std"])
        assert rerun["rerun_latency_ms"] > 0
    value = checks["value"]["data"]
    assert value["datasets"] >= 15 and set(value["regret"]) >= {"recommender", "zero-shot portfolio"}
    assert len(report["successes"]) >= 21


def test_a_tampered_score_is_rerun_first_and_fails_the_audit(audited, tmp_path, cli):
    from kb import KnowledgeBase
    from kb.audit.successes import known_successes

    kb_path = _copy(audited[0], tmp_path)
    with KnowledgeBase(kb_path) as kb:
        successes = known_successes(kb)
        target = next(s for s in successes if s.trial.metric == "roc_auc" and s.runner_up is not None
                      and s.runner_up < 0.95)
        others = max((s.lead or 0.0) for s in successes if s is not target)
        # A better score than was measured, and a spread small enough to look like a standout.
        score = min(1.0, target.runner_up + 0.04)
        forged = replace(target.trial, score=score,
                         score_std=(score - target.runner_up) / (others + 10))
        kb.append("trials", [forged], on_conflict="replace")
    result = cli("audit", "--rerun", "1", "--json", kb=kb_path)
    assert result.exit_code == FAILED, result.output
    report = json.loads(result.stdout)
    reproducible = next(c for c in report["checks"] if c["name"] == "reproducible")
    assert reproducible["status"] == "fail"
    assert reproducible["findings"][0]["subject"] == target.name
    assert "beyond the claim's CV spread" in reproducible["findings"][0]["problem"]


def test_changed_data_fails_the_audit_without_any_rerun(audited, tmp_path, cli):
    import pyarrow.parquet as pq

    from kb import KnowledgeBase
    from kb.datasets import get

    kb_path = _copy(audited[0], tmp_path)
    with KnowledgeBase(kb_path) as kb:
        record = get(kb, "haberman")
    path = kb_path / record.data_file
    table = pq.read_table(path)
    column = table.column(0).to_pylist()
    column[0] = column[0] + 1  # one value of one row
    pq.write_table(table.set_column(0, table.column_names[0], [column]), path)
    result = cli("audit", "--json", kb=kb_path)
    assert result.exit_code == FAILED, result.output
    complete = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "complete")
    assert complete["status"] == "fail"
    assert any("haberman" in f["subject"] and "the data was changed" in f["problem"]
               for f in complete["findings"])


def test_strict_counts_warnings_as_failures(audited, cli):
    # The shipped baseline measured nothing under cpu-1t-int8: coverage warns.
    result = cli("audit", "--strict", kb=audited[0])
    assert result.exit_code == FAILED
    assert "audit failed" in result.output


def test_an_unknown_hardware_row_is_a_one_line_error(audited, cli):
    result = cli("audit", "--hardware", "no-such-profile", kb=audited[0])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "no-such-profile" in result.output


def test_a_report_folder_that_does_not_exist_is_said_before_any_rerun(cli, tmp_path):
    assert cli("init").exit_code == 0
    result = cli("audit", "--rerun", "3", "--html", str(tmp_path / "no" / "report.html"))
    assert result.exit_code == 1 and "no folder" in result.output
    assert "re-running" not in result.output


def test_hardware_judges_coverage_over_that_profile_only(audited, cli):
    result = cli("audit", "--hardware", "cpu-1t", "--json", kb=audited[0])
    coverage = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "coverage")
    assert not any(f["subject"].startswith("profile ") for f in coverage["findings"])


def test_the_report_renders_in_headless_chromium(audited):
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e '.[test]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    _, html, _ = audited
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            page.goto(html.as_uri(), wait_until="load")
            figures = page.evaluate("""[...document.querySelectorAll('figure svg')].map(svg => {
                const box = svg.getBoundingClientRect();
                return {width: box.width, height: box.height,
                        marks: svg.querySelectorAll('path, use').length};
            })""")
            headings = page.evaluate("[...document.querySelectorAll('h2')].map(h => h.id)")
            check_rows = page.evaluate(
                "[...document.querySelectorAll('#checks + table tbody tr')].map(r => r.cells[0].innerText)")
            tables = page.evaluate("document.querySelectorAll('table').length")
        finally:
            browser.close()
    assert errors == []
    # Pareto fronts, warm against cold, reproducibility, the coverage map: each drawn.
    assert len(figures) >= 4
    assert all(f["width"] > 200 and f["height"] > 150 and f["marks"] > 10 for f in figures)
    assert {"pareto", "warm-cold", "reproducibility", "coverage"} <= set(headings)
    assert check_rows == CHECKS
    assert tables >= 5
