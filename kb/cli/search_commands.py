"""Commands that run many trials: bootstrap (the baseline KB) and search."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kb.cli.common import json_option, kb_option, open_kb, print_json, print_table


def _execution_options(command):
    command = click.option("--scheduler", metavar="ADDRESS",
                           help="Run trials on an existing Dask cluster (tcp://host:8786).")(command)
    command = click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                           help="Trials at once; above 1, on a local Dask cluster.")(command)
    return command


@click.command()
@click.option("--datasets", "names", default="bundled", show_default=True,
              help="Comma-separated dataset names or ids, or 'bundled' for every bundled dataset.")
@click.option("--hardware", "profile_name", default="cpu-1t", show_default=True,
              help="Hardware profile the models are measured on.")
@click.option("--portfolio", type=click.IntRange(min=1), default=16, show_default=True,
              help="Configurations per dataset: each family's default, then seeded random ones.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--trial-time-limit", type=click.FloatRange(min=1), default=180, show_default=True,
              help="Seconds one trial may take; a slower one is recorded as a timeout.")
@_execution_options
@json_option
@kb_option
def bootstrap(names: str, profile_name: str, portfolio: int, seed: int, trial_time_limit: float,
              workers: int, scheduler: str | None, as_json: bool) -> None:
    """Evaluate a portfolio of configurations on many datasets and record every outcome: the
    baseline that recommendations and warm starts draw on.

    Resumable: trials already in the KB are not run again, so re-running the same command
    after an interruption finishes the rest, and a larger --portfolio adds to a smaller one.

    \b
    Examples:
      kb bootstrap --portfolio 16 --workers 2          # the shipped baseline
      kb bootstrap --datasets haberman,sonar --portfolio 4
    """
    from kb.datasets import bundled, load_registered
    from search.bootstrap import bootstrap as run_bootstrap
    from search.execution import Executor
    from search.profiles import find_profile
    from search.trial import TrialLimits

    kb = open_kb()
    profile = find_profile(profile_name, kb.root)
    wanted = ([e.name for e in bundled()] if names == "bundled"
              else [n.strip() for n in names.split(",") if n.strip()])
    datasets = [load_registered(kb, name) for name in wanted]
    limits = TrialLimits(time_s=trial_time_limit, train_threads=1)
    progress = _Progress(enabled=not as_json)
    with Executor(workers, scheduler) as executor:
        if not as_json:
            click.echo(f"bootstrap: {len(datasets)} datasets x {portfolio} configurations under "
                       f"{profile.name}, on {executor.description}")
        summary = run_bootstrap(kb, datasets, profile, portfolio=portfolio, seed=seed,
                                limits=limits, executor=executor, on_result=progress.trial,
                                arguments={"datasets": wanted, "hardware": profile.name,
                                           "portfolio": portfolio, "seed": seed})
    progress.close()
    if as_json:
        print_json(summary.__dict__)
        return
    click.echo(f"run {summary.run_id}: {summary.planned} trials planned, "
               f"{summary.already_in_kb} already in the KB, "
               + ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) + " now")


class _Progress:
    """A progress bar on a terminal, a line per trial otherwise (logs, CI)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.live = enabled and sys.stdout.isatty()
        self._bar = None

    def trial(self, result, done: int, total: int) -> None:
        if not self.enabled:
            return
        trial = result.trial
        score = "" if trial.score is None else f" {trial.metric} {trial.score:.4g}"
        latency = "" if trial.latency_p50_ms is None else f" p50 {trial.latency_p50_ms:.3g} ms"
        line = f"[{done}/{total}] {trial.model_family:<22} {trial.status:<10}{score}{latency}"
        if not self.live:
            click.echo(line)
            return
        from rich.progress import Progress

        if self._bar is None:
            self._bar = Progress(transient=False)
            self._bar.start()
            self._task = self._bar.add_task("trials", total=total)
        self._bar.update(self._task, completed=done, description=line[:60])

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


COMMANDS = (bootstrap,)
