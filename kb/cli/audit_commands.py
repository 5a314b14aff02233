"""``kb audit``: can the known successes be trusted, and does starting from them pay?"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kb.cli.common import json_option, kb_option, open_kb, print_json, print_table

FAILED_EXIT = 3  # the audit ran and a check failed (1 stays a user error, 2 a usage error)


@click.command("audit")
@click.option("--rerun", "rerun_n", type=click.IntRange(min=0), default=0, show_default=True,
              help="Re-run N successes on this machine and compare score and latency with "
                   "their claims (the least corroborated first, then a seeded sample).")
@click.option("--hardware", "hardware", default=None,
              help="Only successes on this hardware profile (a name, as `kb hardware list` "
                   "shows, or a hardware id).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as one self-contained HTML page with plots.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which successes a re-run samples.")
@click.option("--strict", is_flag=True, help="Warnings fail the audit too.")
@click.option("--trial-time-limit", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds one re-run may take; a slower one is recorded as a timeout.")
@json_option
@kb_option
def audit_command(rerun_n: int, hardware: str | None, html_path: Path | None, seed: int,
                  strict: bool, trial_time_limit: float, as_json: bool) -> None:
    """Audit the known successes (the best feasible trial of each dataset, metric and hardware
    row) that recommendations and warm starts start from:

    \b
    - complete:     configuration, seed, code and library versions, dataset hash and hardware
                    fingerprint all present, and ids and data that still match their content;
    - current:      which were measured with older metakb or library versions;
    - reproducible: with --rerun N, N of them re-run here: the score must come back within
                    the claim's CV spread, the latency within x2 on the same hardware (on
                    other hardware the ratio is reported, not judged);
    - coverage:     datasets, tasks, hardware profiles and regions of meta-feature space
                    with no known success;
    - value:        leave-one-dataset-out, how often the recommender's first pick beats the
                    family default and the zero-shot portfolio, with the regret distribution.

    Exit status 0 when no check fails (warnings allowed, unless --strict), 3 when one does,
    so the audit can gate a pipeline; 1 and 2 are user and usage errors, as everywhere.

    \b
    Examples:
      kb audit                                   # the checks that need no training
      kb audit --rerun 5 --html report.html      # re-measure five, and a page with plots
      kb audit --hardware cpu-1t --json > audit.json
    """
    from kb.audit.audit import audit
    from kb.audit.verdict import FAIL, WARN
    from kb.audit.successes import known_successes
    from kb.meta import code_version
    from search.profiles import all_profiles
    from search.reproduce import choose, rerun
    from search.runs import finish_run, start_run
    from search.trial import library_versions

    if html_path is not None and not html_path.parent.is_dir():
        # Said before the re-runs, not after them.
        from kb.errors import KBError

        raise KBError(f"--html {html_path}: no folder {html_path.parent}")
    kb = open_kb()
    profiles = all_profiles(kb.root)
    rows = _hardware_rows(kb, hardware)
    hardware_ids = None if rows is None else [r["hardware_id"] for r in rows]
    successes = known_successes(kb, hardware_ids=hardware_ids)
    say = (lambda text: click.echo(text, err=True))
    run = start_run(kb, "audit", {"rerun": rerun_n, "hardware": hardware, "seed": seed,
                                  "strict": strict})
    status = "interrupted"
    try:
        chosen, rerunnable = choose(successes, rerun_n, seed, profiles)
        if rerun_n:
            say(f"re-running {len(chosen)} of {rerunnable} re-runnable successes on this machine")
        reruns = rerun(kb, chosen, profiles=profiles, run_id=run.run_id,
                       trial_time_s=trial_time_limit,
                       on_rerun=lambda r: say(_rerun_line(r, len(chosen))))
        report = audit(kb, successes, profiles=_profile_names(profiles, rows),
                       hardware_ids=hardware_ids,
                       family_defaults=_family_defaults(), code_version=code_version(),
                       libraries=library_versions(), reruns=reruns, rerun_asked=rerun_n,
                       rerunnable=rerunnable, on_step=lambda step: say(f"  {step}"))
        status = "finished"
    finally:
        finish_run(kb, run, status, {"successes": len(successes)})
    if html_path is not None:
        from kb.audit.report import render_html

        html_path.write_text(render_html(report, kb_path=str(kb.root)), encoding="utf-8")
    failed = report.status == FAIL or (strict and report.status == WARN)
    if as_json:
        print_json({**report.to_json(), "strict": strict, "passed": not failed,
                    "html": str(html_path) if html_path else None})
    else:
        print_table([{"check": c.name, "status": c.status, "summary": c.summary}
                     for c in report.checks], ["check", "status", "summary"],
                    title=f"audit of {len(successes)} known successes in {kb.root}")
        for check in (c for c in report.checks if c.status == FAIL):
            failing = [f for f in check.findings if f.severity == FAIL]
            for finding in failing[:10]:
                click.echo(f"FAIL {check.name}: {finding.subject}: {finding.problem}")
            if len(failing) > 10:
                click.echo(f"FAIL {check.name}: ... and {len(failing) - 10} more (--json lists all)")
            if not failing:
                click.echo(f"FAIL {check.name}: {check.summary}")
        if html_path is not None:
            click.echo(f"wrote {html_path}")
        click.echo("audit " + ("failed" if failed else "passed")
                   + (" (warnings count as failures with --strict)" if strict and failed
                      and report.status == WARN else ""))
    if failed:
        sys.exit(FAILED_EXIT)


def _rerun_line(rerun, total: int) -> str:
    claimed = rerun.success.trial
    if rerun.trial is None:
        return f"  {rerun.success.name}: not re-run ({rerun.problem})"
    new = rerun.trial
    score = f"{new.score:.4g}" if new.score is not None else new.status
    latency = f", p50 {claimed.latency_p50_ms:.3g} -> {new.latency_p50_ms:.3g} ms" \
        if claimed.latency_p50_ms and new.latency_p50_ms else ""
    return f"  {rerun.success.name}: {claimed.metric} {claimed.score:.4g} claimed, {score} now{latency}"


def _hardware_rows(kb, hardware: str | None) -> list[dict] | None:
    """The hardware rows --hardware names (by name or id), with their ids and names."""
    if hardware is None:
        return None
    rows = kb.query("SELECT hardware_id, name FROM hardware WHERE hardware_id = ? OR name = ?",
                    [hardware, hardware]).to_pylist()
    if not rows:
        from kb.errors import KBError

        raise KBError(f"no hardware row named {hardware!r} in the KB; `kb hardware list` shows them")
    return rows


def _profile_names(profiles: dict, rows: list[dict] | None) -> list[str]:
    """The profiles coverage is judged over: those offered on this machine (a CUDA profile
    only where CUDA exists), or the one --hardware names (by name or by a row's id)."""
    if rows is not None:
        return sorted({r["name"] for r in rows})
    from search.hardware import detect_machine, offered

    machine = detect_machine()
    return [name for name, p in profiles.items() if offered(p, machine)]


def _family_defaults() -> dict[tuple[str, str], str]:
    """(task, family) -> the config id of the family's default in the search space."""
    from kb.keys import canonical_json
    from kb.schema import TASKS
    from kb.validation import derived_id
    from search.space import build_space, fit_to_space

    out = {}
    for task in TASKS:
        space = build_space(task)
        for family in space["family"].choices:
            config = fit_to_space({"family": family}, space, task).config
            out[(task, family)] = derived_id("trials", "config_id", config=canonical_json(config))
    return out


COMMANDS = (audit_command,)
