"""``kb hardware`` (detect this machine, list and add profiles) and ``kb bench`` (one trial)."""

from __future__ import annotations

import click

from kb.cli.common import json_option, kb_option, kb_path, open_kb, print_json, print_table


@click.group()
def hardware() -> None:
    """This machine's fingerprint and the profiles models are measured under.

    A profile is how a model runs here: ONNX Runtime threads, execution provider, int8
    quantization, the batch size of the batch-N latency and a memory ceiling. Built in:
    cpu-1t, cpu-all, cpu-1t-int8, and cuda where a CUDA device is usable. Your own profiles
    live in <kb>/hardware.toml, shared by everyone using that KB.

    \b
    Example:
      kb hardware detect
      kb hardware add edge-2t --threads 2 --memory-limit-mb 256
      kb hardware list
      kb bench haberman --config '{"family": "linear"}' --hardware edge-2t
    """


@hardware.command("detect")
@click.option("--save", is_flag=True,
              help="Also record the hardware rows of the usable profiles in the KB.")
@json_option
@kb_option
def detect(save: bool, as_json: bool) -> None:
    """Show this machine's fingerprint and the hardware id of each profile on it.

    The id is a hash of the fingerprint (CPU model, cores, memory, OS, ONNX Runtime version)
    and the profile, so trials measured the same way on the same machine share it.

    \b
    Example:
      kb hardware detect
      kb hardware detect --json | jq '.profiles[].hardware_id'
    """
    from search.hardware import (detect_machine, hardware_record, machine_summary, offered,
                                 unusable_reason)
    from search.profiles import all_profiles

    kb = open_kb() if save else None  # --save needs a KB: the store says so if there is none
    machine = detect_machine(probe_torch=True)
    profiles = all_profiles(kb.root if kb is not None else _kb_root_if_any())
    entries = [(hardware_record(machine, p), unusable_reason(p, machine))
               for p in profiles.values() if offered(p, machine)]
    rows = [{"profile": record.name, "hardware_id": record.hardware_id, "kind": record.kind,
             "threads": record.threads, "execution_provider": record.execution_provider,
             "quantization": record.quantization or "none", "usable": reason is None,
             "why_not": reason}
            for record, reason in entries]
    saved = 0
    if save:
        usable = [record for record, reason in entries if reason is None]
        saved = kb.append("hardware", usable, on_conflict="keep").added if usable else 0
    if as_json:
        print_json({"machine": machine_summary(machine), "profiles": rows,
                    **({"saved": saved} if save else {})})
        return
    _echo_machine(machine)
    print_table(rows, ["profile", "hardware_id", "kind", "threads", "execution_provider",
                       "quantization", "why_not"])
    if save:
        click.echo(f"{saved} new hardware row(s) recorded in {kb_path()}")


def _echo_machine(machine) -> None:
    torch = (f"{machine.torch_version}"
             + ("" if machine.torch_cuda is None else
                " (CUDA device)" if machine.torch_cuda else " (no CUDA device)")
             if machine.torch_version else "torch not installed")
    click.echo(f"cpu       {machine.cpu_model}: {machine.cores} usable core(s)"
               + (f", {machine.physical_cores} physical" if machine.physical_cores else "")
               + (f"; {' '.join(machine.cpu_flags)}" if machine.cpu_flags else ""))
    click.echo(f"memory    {machine.memory_mb / 1024:.1f} GiB")
    click.echo(f"system    {machine.os} ({machine.os_release}), Python {machine.python}")
    click.echo(f"runtime   onnxruntime {machine.runtime_version}: {', '.join(machine.providers)}")
    click.echo(f"torch     {torch}" + (f"; GPU {machine.gpu}" if machine.gpu else ""))


def _kb_root_if_any():
    """The KB folder if a KB is there (its profiles count too), else None."""
    from kb.meta import meta_path

    root = kb_path()
    return root if meta_path(root).exists() else None


@hardware.command("list")
@json_option
@kb_option
def list_(as_json: bool) -> None:
    """List the profiles (and whether this machine can run each), then the hardware the KB
    holds trials from.

    \b
    Example:
      kb hardware list
      kb hardware list --json | jq '.profiles[] | select(.usable)'
    """
    from search.hardware import detect_machine, offered, unusable_reason
    from search.profiles import all_profiles

    root = _kb_root_if_any()
    machine = detect_machine(probe_torch=True)
    profiles = []
    for profile in all_profiles(root).values():
        if not offered(profile, machine):
            continue
        reason = unusable_reason(profile, machine)
        profiles.append({"name": profile.name, **profile.settings(), "source": profile.source,
                         "usable": reason is None, "why_not": reason})
    recorded = []
    if root is not None:
        recorded = open_kb().query(
            """SELECT h.name, h.hardware_id, h.kind, h.cpu_model, h.threads, h.runtime,
                      h.runtime_version, h.execution_provider, h.quantization, h.source,
                      (SELECT count(*) FROM trials t WHERE t.hardware_id = h.hardware_id) AS trials
               FROM hardware h ORDER BY h.name, h.hardware_id""").to_pylist()
    if as_json:
        print_json({"profiles": profiles, "recorded": recorded})
        return
    print_table(profiles, ["name", "threads", "execution_provider", "quantization",
                           "batch_size", "memory_limit_mb", "source", "why_not"], title="profiles")
    if recorded:
        print_table(recorded, ["name", "hardware_id", "kind", "cpu_model", "threads",
                               "runtime_version", "trials"], title="hardware in the KB")


@hardware.command("add")
@click.argument("name")
@click.option("--threads", help='ONNX Runtime intra-op threads, or "all" (default 1).')
@click.option("--provider", "execution_provider",
              help="ONNX Runtime execution provider (default CPUExecutionProvider).")
@click.option("--quantization", help='"none" (default) or "int8" (dynamic int8 weights).')
@click.option("--batch-size", type=int, help="Batch of the batch-N latency (default 64).")
@click.option("--memory-limit-mb", type=float,
              help="Peak inference memory above this makes a trial infeasible.")
@click.option("--repeats", type=int, help="Timed runs at batch 1 (default 100).")
@click.option("--warmup", type=int, help="Untimed runs before timing (default 10).")
@click.option("--min-measure-seconds", type=float,
              help="Time batch-1 runs at least this long (default 0.5; batch N: half).")
@click.option("--max-measure-seconds", type=float,
              help="Stop a timed series past this, after at least 10 runs (default 10).")
@click.option("--parity-tolerance", type=float,
              help="Largest output difference allowed (default 1e-4; 0.05 with int8).")
@click.option("--description", help="What the profile stands for.")
@kb_option
def add(name: str, threads: str | None, **settings) -> None:
    """Define a profile NAME in <kb>/hardware.toml.

    Only the settings given are written; the rest keep their defaults. To change a
    profile later, edit the file: it is plain TOML with one [profiles.NAME] table each.

    \b
    Example:
      kb hardware add edge-2t-int8 --threads 2 --quantization int8 --batch-size 16 \\
          --memory-limit-mb 256 --description "our 2-core edge box"
      kb bench haberman --config '{"family": "linear"}' --hardware edge-2t-int8
    """
    from kb.meta import check_version
    from search.hardware import detect_machine, unusable_reason
    from search.profiles import PROFILES_FILE, append_profile, profile_from_settings

    root = kb_path()
    check_version(root)  # a KB must be there, and one this metakb can use
    path = root / PROFILES_FILE
    given = {k: v for k, v in settings.items() if v is not None}
    if threads is not None:
        given["threads"] = int(threads) if threads.strip().isdigit() else threads
    profile = profile_from_settings(name, given, str(path))
    append_profile(path, profile)
    click.echo(f"added profile {name} to {path}")
    reason = unusable_reason(profile, detect_machine())
    if reason:
        click.echo(f"note: this machine cannot run it: {reason}")


def _show_families(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    import json

    from search.families import FAMILIES

    rows = [{"family": f.name, "key": p.name, "default": json.dumps(p.default), "valid": p.describe(),
             "tasks": "all" if len(p.tasks) == 3 else ", ".join(p.tasks), "meaning": p.help}
            for f in FAMILIES.values() for p in f.all_params()]
    print_table(rows, ["family", "key", "default", "valid", "tasks", "meaning"])
    ctx.exit()


@click.command()
@click.argument("dataset")
@click.option("--families", is_flag=True, is_eager=True, expose_value=False,
              callback=_show_families,
              help="List the model families and their configuration keys, then exit.")
@click.option("--config", "config_text", required=True,
              help='The configuration: a JSON object such as \'{"family": "random_forest", '
                   '"n_estimators": 200}\', or @FILE holding one.')
@click.option("--hardware", "profile_name", default="cpu-1t", show_default=True,
              help="The profile to measure on (`kb hardware list`).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seeds folds, models and the rows measured.")
@click.option("--metric", help="Score to report (default: roc_auc, log_loss or rmse by task).")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="Cross-validation folds.")
@click.option("--fidelity", type=click.FloatRange(0, 1, min_open=True), default=1.0,
              show_default=True, help="Fraction of the training rows models learn from.")
@click.option("--time-limit", type=click.FloatRange(0, min_open=True), default=600.0,
              show_default=True, help="Seconds the whole trial may take.")
@click.option("--memory-limit", type=click.FloatRange(0, min_open=True),
              help="MB the trial's processes may hold together, training included "
                   "(the Python libraries alone take 250-400 MB).")
@click.option("--train-threads", type=click.IntRange(min=1),
              help="Threads for training (default: every core).")
@click.option("--save-model", type=click.Path(dir_okay=False),
              help="Also write the ONNX model, as measured, to this file.")
@json_option
@kb_option
def bench(dataset: str, config_text: str, profile_name: str, seed: int, metric: str | None,
          folds: int, fidelity: float, time_limit: float, memory_limit: float | None,
          train_threads: int | None, save_model: str | None, as_json: bool) -> None:
    """Run one trial: cross-validate a configuration on DATASET, refit, export to ONNX,
    measure on a hardware profile, and record the trial in the KB.

    The trial is recorded whatever its outcome; the exit status is 0 if its status is ok,
    1 if it failed, timed out or broke the profile's memory ceiling (the reason is printed).
    Running the same trial again replaces the earlier measurement.

    \b
    `kb bench --families` lists the families and their configuration keys.
    Examples:
      kb bench haberman --config '{"family": "random_forest", "n_estimators": 200}'
      kb bench 230_machine_cpu --config '{"family": "mlp", "width": 32}' --hardware cpu-1t-int8
      kb bench wine_recognition --config @best.json --metric accuracy --json
    """
    from kb.datasets import load_registered
    from search.profiles import find_profile
    from search.runs import finish_run, start_run
    from search.trial import TrialLimits, plan_trial, run_planned

    kb = open_kb()
    loaded = load_registered(kb, dataset)
    profile = find_profile(profile_name, kb.root)
    # Mistakes are reported before a trial starts, not after it has run.
    plan = plan_trial(loaded, _parse_config(config_text), profile, seed, metric=metric,
                      folds=folds, fidelity=fidelity, model_path=save_model,
                      limits=TrialLimits(time_s=time_limit, memory_mb=memory_limit,
                                         train_threads=train_threads))
    config = plan.config
    run = start_run(kb, "bench", {"dataset": loaded.record.dataset_id, "config": config,
                                  "hardware": profile.name, "seed": seed, "metric": metric,
                                  "folds": folds, "fidelity": fidelity})
    if not as_json:
        click.echo(f"running {config.get('family')} on {loaded.record.name} "
                   f"({loaded.record.n_rows} rows) under {profile.name} ...")
    result = run_planned(plan, run_id=run.run_id)
    written = result.write(kb, on_conflict="replace")
    trial = result.trial
    finish_run(kb, run, "finished", {"trials": 1, trial.status: 1})
    if as_json:
        from dataclasses import asdict

        print_json({"trial": asdict(trial), "hardware": asdict(result.hardware),
                    "replaced": bool(written.replaced)})
    else:
        _echo_trial(trial, loaded.record.name, result.hardware, save_model)
        if written.replaced:
            click.echo("note: replaced the earlier measurement of this trial in the KB")
    if trial.status != "ok":
        click.echo(f"trial {trial.status}: {trial.failure_reason}", err=True)
        raise SystemExit(1)


def _parse_config(text: str) -> dict:
    import json
    from pathlib import Path

    from kb.errors import KBError

    source = "--config"
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise KBError(f"--config {text}: no such file")
        source, text = str(path), path.read_text(encoding="utf-8")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise KBError(f"{source} is not JSON ({e.msg} at character {e.pos}); write it like "
                      f"'{{\"family\": \"random_forest\", \"n_estimators\": 200}}'") from None
    if not isinstance(config, dict):
        raise KBError(f"{source} must be a JSON object ({{...}}), not {type(config).__name__}")
    return config


def _echo_trial(trial, dataset_name: str, hardware, model_path: str | None) -> None:
    from pathlib import Path

    from search.measure import BUSY_CORES

    def ms(value):
        return "-" if value is None else f"{value:.4g} ms"

    def seconds(value):
        return "-" if value is None else f"{value:.2f} s"

    click.echo(f"trial     {trial.trial_id}: {trial.status}, {trial.model_family} on {dataset_name}, "
               f"profile {hardware.name} ({hardware.hardware_id})")
    if trial.score is not None:
        click.echo(f"score     {trial.metric} {trial.score:.4f} ± {trial.score_std or 0:.4f} "
                   f"({trial.direction}, cross-validated)")
    if trial.latency_p50_ms is not None:
        click.echo(f"latency   batch 1: p50 {ms(trial.latency_p50_ms)}, p95 {ms(trial.latency_p95_ms)}; "
                   f"batch {trial.batch_size}: p50 {ms(trial.latency_batch_p50_ms)}, "
                   f"p95 {ms(trial.latency_batch_p95_ms)}")
        click.echo(f"memory    {trial.peak_memory_mb:.1f} MB peak inference")
        if trial.background_cpu is not None and trial.background_cpu >= BUSY_CORES:
            click.echo(f"note: other processes used {trial.background_cpu:.2f} core(s) while "
                       f"latency was timed; on a quieter machine it may be lower")
    if trial.model_bytes is not None:
        click.echo(f"model     {trial.model_bytes / 1024:.1f} KiB, {trial.n_parameters} parameters"
                   + (f", {trial.quantized_weights} int8 weight tensor(s)"
                      if trial.quantized_weights is not None else "")
                   + (f", saved to {model_path}" if model_path and Path(model_path).is_file() else ""))
    if trial.parity_error is not None:
        click.echo(f"parity    {trial.parity_error:.3g} largest difference from the trained model")
    click.echo(f"time      train {seconds(trial.train_seconds)}, export {seconds(trial.export_seconds)}, "
               f"measure {seconds(trial.measure_seconds)}")


COMMANDS = (hardware, bench)
