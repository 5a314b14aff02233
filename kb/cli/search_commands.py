"""Commands that run many trials: bootstrap (the baseline KB) and search."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kb.cli.common import json_option, kb_option, open_kb, print_json


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
@click.option("--portfolio", type=click.IntRange(min=0), default=16, show_default=True,
              help="Configurations per dataset: each family's default, then seeded random ones "
                   "(0: only --from-best).")
@click.option("--from-best", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also the K best configurations the KB knows on each dataset (from earlier "
                   "searches), run on every dataset of the same task.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--trial-time-limit", type=click.FloatRange(min=1), default=180, show_default=True,
              help="Seconds one trial may take; a slower one is recorded as a timeout.")
@_execution_options
@json_option
@kb_option
def bootstrap(names: str, profile_name: str, portfolio: int, from_best: int, seed: int,
              trial_time_limit: float,
              workers: int, scheduler: str | None, as_json: bool) -> None:
    """Evaluate a portfolio of configurations on many datasets and record every outcome: the
    baseline that recommendations and warm starts draw on.

    Resumable: trials already in the KB are not run again, so re-running the same command
    after an interruption finishes the rest, and a larger --portfolio adds to a smaller one.

    \b
    Examples:
      kb bootstrap --portfolio 16 --workers 2          # the shipped baseline
      kb bootstrap --datasets haberman,sonar --portfolio 4
      kb bootstrap --portfolio 16 --from-best 2        # spread each dataset's tuned best
    """
    from kb.datasets import bundled, load_registered
    from search.bootstrap import bootstrap as run_bootstrap
    from search.execution import Executor
    from search.profiles import find_profile
    from search.trial import TrialLimits

    if portfolio == 0 and from_best == 0:
        raise click.UsageError("nothing to run: give --portfolio N or --from-best K")
    kb = open_kb()
    profile = find_profile(profile_name, kb.root)
    wanted = ([e.name for e in bundled()] if names == "bundled"
              else [n.strip() for n in names.split(",") if n.strip()])
    datasets = [load_registered(kb, name) for name in wanted]
    limits = TrialLimits(time_s=trial_time_limit, train_threads=1)
    progress = _Progress(enabled=not as_json)
    with Executor(workers, scheduler) as executor:
        if not as_json:
            best = f" and the {from_best} best known on each dataset of its task" if from_best else ""
            click.echo(f"bootstrap: {len(datasets)} datasets x {portfolio} configurations{best} "
                       f"under {profile.name}, on {executor.description}")
        summary = run_bootstrap(kb, datasets, profile, portfolio=portfolio, from_best=from_best,
                                seed=seed,
                                limits=limits, executor=executor, on_result=progress.trial,
                                arguments={"datasets": wanted, "hardware": profile.name,
                                           "portfolio": portfolio, "from_best": from_best,
                                           "seed": seed})
    progress.close()
    if as_json:
        print_json(summary.__dict__)
        return
    click.echo(f"run {summary.run_id}: {summary.planned} trials planned, "
               f"{summary.already_in_kb} already in the KB, "
               + ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) + " now")


@click.command()
@click.argument("dataset", required=False)
@click.option("--target", help="Target column, when DATASET is a file to register first.")
@click.option("--trials", type=click.IntRange(min=1), default=25, show_default=True,
              help="Trials to run (or reuse from the KB).")
@click.option("--time-limit", type=click.FloatRange(min=1), help="Seconds; no new trial starts after.")
@click.option("--hardware", "profile_name", default="cpu-1t", show_default=True,
              help="Hardware profile the models must run on (`kb hardware list`).")
@click.option("--max-latency-ms", type=float, help="Hard limit on p50 latency at batch 1.")
@click.option("--max-memory-mb", type=float, help="Hard limit on peak inference memory.")
@click.option("--max-model-kb", type=float, help="Hard limit on the model file's size.")
@click.option("--objective", type=click.Choice(["score", "score+latency"]), default="score",
              show_default=True, help="score+latency: ParEGO over score and latency.")
@click.option("--warm-start", type=click.IntRange(min=0), default=5, show_default=True,
              help="Known-good configurations from the KB to start from.")
@click.option("--cold", is_flag=True, help="Start cold (same as --warm-start 0).")
@click.option("--optimizer", type=click.Choice(["smac", "random"]), default="smac",
              show_default=True, help="random: SMAC's random search (the default, then random points).")
@click.option("--multi-fidelity", is_flag=True,
              help="Hyperband over the fraction of training rows (1/9, 1/3, 1).")
@click.option("--families", help="Comma-separated model families to search (default: all).")
@click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=0, show_default=True)
@click.option("--resume", "resume_id", metavar="RUN_ID",
              help="Continue an interrupted search; its stored settings are used.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where model.onnx and model_card.json go [default: ./models/<dataset>-<run>].")
@click.option("--trial-time-limit", type=click.FloatRange(min=1), default=300, show_default=True,
              help="Seconds one trial may take; a slower one is recorded as a timeout.")
@_execution_options
@json_option
@kb_option
def search(dataset: str | None, target: str | None, trials: int, time_limit: float | None,
           profile_name: str, max_latency_ms, max_memory_mb, max_model_kb, objective: str,
           warm_start: int, cold: bool, optimizer: str, multi_fidelity: bool,
           families: str | None, seed: int,
           resume_id: str | None, out_dir: Path | None, trial_time_limit: float, workers: int,
           scheduler: str | None, as_json: bool) -> None:
    """Search for the best model of DATASET that runs within the limits on a hardware profile,
    starting from the KB's known-good configurations; write model.onnx and model_card.json.

    Every trial is written to the KB as it finishes. A trial that breaks a limit is recorded
    as infeasible and never delivered. The final model is refitted on all training rows and
    scored once on a test split that no trial saw.

    \b
    Examples:
      kb search haberman --max-latency-ms 0.05 --trials 20
      kb search data.csv --target label --hardware cpu-1t-int8 --max-model-kb 512
      kb search churn --workers 2 --multi-fidelity --objective score+latency
      kb search --resume 3f9c0a1b2d4e5f60                 # after an interruption
    """
    from kb.errors import KBError
    from search.constraints import Limits
    from search.deliver import NoFeasibleModel, deliver
    from search.execution import Executor
    from search.smac_search import SearchSettings, run_search

    kb = open_kb()
    if resume_id:
        settings = None
    else:
        if dataset is None:
            raise KBError("name a DATASET to search (a registered name or id, or a file with "
                          "--target), or --resume RUN_ID")
        record = _dataset_for_search(kb, dataset, target)
        if click.get_current_context().get_parameter_source("warm_start").name == "DEFAULT":
            warm_start = min(warm_start, trials)  # the default adapts to a short search
        settings = SearchSettings(
            dataset_id=record.dataset_id, trials=trials, time_limit_s=time_limit,
            hardware=profile_name,
            limits=Limits(max_latency_ms, max_memory_mb, max_model_kb), objective=objective,
            warm_start=0 if cold else warm_start, multi_fidelity=multi_fidelity, seed=seed,
            families=tuple(f.strip() for f in families.split(",")) if families else None,
            trial_time_s=trial_time_limit, optimizer=optimizer)
    display = _SearchDisplay(enabled=not as_json)
    with Executor(workers, scheduler) as executor:
        if not as_json:
            click.echo("resuming search " + resume_id if resume_id else
                       f"search: {record.name} ({record.n_rows} rows, {record.task}), "
                       f"{trials} trials under {profile_name}, on {executor.description}")
        try:
            outcome = run_search(kb, settings, executor=executor, resume=resume_id,
                                 on_trial=display.trial)
        finally:
            display.close()
    out_dir = out_dir or Path("models") / f"{outcome.dataset.record.name}-{outcome.run_id}"
    if not as_json:
        _echo_warm_start(outcome)
        click.echo(f"run {outcome.run_id}: {len(outcome.trials)} trials "
                   f"({outcome.reused} reused from the KB), {len(outcome.feasible)} feasible; "
                   f"stopped by {outcome.stopped_by}")
    try:
        delivered = deliver(kb, outcome, out_dir)
    except NoFeasibleModel as e:
        if as_json:
            print_json({"run_id": outcome.run_id, "model": None, "error": str(e)})
        raise
    card = delivered.card
    if as_json:
        print_json({"run_id": outcome.run_id, "model": str(delivered.model_path),
                    "model_card": str(delivered.card_path), **card})
        return
    latency = card["latency_ms"]
    click.echo(f"best: {card['model_family']}  CV {card['metric']} {card['cv_score']:.4g}, "
               f"test {card['test_score']:.4g}; p50 {latency['p50']:.3g} ms, "
               f"p95 {latency['p95']:.3g} ms, {card['peak_memory_mb']:.3g} MB, "
               f"{card['model_bytes'] / 1024:.4g} KB on {card['hardware']['profile']}")
    click.echo(f"wrote {delivered.model_path} and {delivered.card_path}")


def _dataset_for_search(kb, dataset: str, target: str | None):
    """The registered dataset DATASET names, or the file DATASET registered now."""
    from kb.datasets import find, load, register
    from kb.errors import KBError

    record = find(kb, dataset)
    if record is not None:
        if target is not None and target != record.target:
            raise KBError(f"dataset {record.name} is registered with target {record.target!r}, "
                          f"not {target!r}")
        return record
    if not Path(dataset).exists() and not dataset.startswith("sklearn:"):
        raise KBError(f"no dataset {dataset!r} in the KB and no such file; "
                      f"`kb datasets list` shows what is registered")
    record, _ = register(kb, load(dataset, target=target))
    return record


def _echo_warm_start(outcome) -> None:
    for w in outcome.warm_starts:
        note = f" ({'; '.join(w.changes)})" if w.changes else ""
        predicted = "" if w.predicted_score is None else f" predicted {w.predicted_score:.2f}"
        click.echo(f"warm start [{w.source}]{predicted}: {w.config['family']}{note}")
    for r in outcome.refused:
        click.echo(f"warm start refused: {r.config.get('family')}: {r.reason}")


class _SearchDisplay:
    """A live panel on a terminal (trials, best feasible score, feasible count, elapsed, ticking
    between trials); a line per trial otherwise."""

    def __init__(self, enabled: bool):
        import time

        self.enabled = enabled
        self.is_tty = enabled and sys.stdout.isatty()
        self.live = None
        self.started = time.monotonic()
        self.event = None
        if self.is_tty:
            from rich.live import Live

            self.live = Live(self, refresh_per_second=2)
            self.live.start()

    def __rich__(self):
        import time

        from rich.table import Table

        event = self.event
        best = "none yet" if event is None or event.best is None else f"{event.best.score:.4g}"
        table = Table.grid(padding=(0, 2))
        table.add_row("trials", f"{event.done if event else 0}/{event.total if event else '?'}",
                      "best feasible", best, "feasible", str(event.feasible if event else 0),
                      "elapsed", f"{time.monotonic() - self.started:.0f} s")
        return table

    def trial(self, event) -> None:
        if not self.enabled:
            return
        self.event = event
        t = event.trial
        score = "-" if t.score is None else f"{t.score:.4g}"
        latency = "-" if t.latency_p50_ms is None else f"{t.latency_p50_ms:.3g} ms"
        line = (f"[{event.done}/{event.total}] {t.model_family:<22} {t.status:<10} "
                f"{t.metric} {score:<8} p50 {latency:<10}"
                + (" (from KB)" if event.reused else "")
                + (f" {t.failure_reason}" if t.failure_reason else ""))
        if not self.is_tty:
            best = "none yet" if event.best is None else f"{event.best.score:.4g}"
            click.echo(f"{line} | best {best}, {event.feasible} feasible, {event.elapsed_s:.0f} s")
            return
        self.live.console.print(line[:160])

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


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


COMMANDS = (bootstrap, search)
