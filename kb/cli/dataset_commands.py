"""``kb datasets``: register datasets and list them."""

from __future__ import annotations

import click

from kb.cli.common import json_option, kb_option, open_kb, print_json, print_table
from kb.schema import TASKS


@click.group()
def datasets() -> None:
    """Register datasets (CSV, TSV, Parquet, ARFF, scikit-learn) and list them.

    \b
    Examples:
      kb datasets add churn.csv --target churned
      kb datasets list --task binary
    """


@datasets.command("add")
@click.argument("source", required=False)
@click.option("--target", help="Target column (default: one named target/class/label/y, else the last).")
@click.option("--task", type=click.Choice(TASKS), help="Task (default: inferred from the target).")
@click.option("--name", help="Name to list it under (default: the file name).")
@click.option("--licence", help="Licence of the data, recorded with it.")
@click.option("--bundled", is_flag=True, help="Register the datasets that ship with metakb.")
@json_option
@kb_option
def add(source: str | None, target: str | None, task: str | None, name: str | None,
        licence: str | None, bundled: bool, as_json: bool) -> None:
    """Register a dataset: SOURCE is a CSV, TSV, Parquet or ARFF file (optionally .gz) or
    sklearn:NAME (iris, wine, breast_cancer, digits, diabetes).

    The dataset's id is a hash of its content, so the same data added twice is one dataset.
    The KB keeps its own copy of the data.

    \b
    Examples:
      kb datasets add churn.csv --target churned
      kb datasets add measurements.parquet --target y --task regression
      kb datasets add sklearn:iris
      kb datasets add --bundled
    """
    if bundled == (source is not None):
        raise click.UsageError("give a SOURCE or --bundled (not both)")
    kb = open_kb()
    if bundled:
        if target or task or name or licence:
            raise click.UsageError("--target, --task, --name and --licence go with a SOURCE")
        records = add_bundled(kb, quiet=as_json)
        if as_json:
            print_json(records)
        return
    from kb.datasets import load, register

    loaded = load(source, target=target, task=task, name=name, licence=licence)
    record, added = register(kb, loaded)
    if as_json:
        print_json({"added": added, **_summary(record)})
        return
    if loaded.dropped_rows:
        click.echo(f"note: left out {loaded.dropped_rows} row(s) with no value in {record.target!r}")
    if added:
        click.echo(f"added {record.name} ({record.dataset_id}): {record.task}, target "
                   f"{record.target!r}, {record.n_rows} rows, {record.n_features} features"
                   + (f", {record.n_classes} classes" if record.n_classes else ""))
    else:
        click.echo(f"already present as {record.name} ({record.dataset_id})"
                   + (f"; the name {loaded.record.name!r} was not applied"
                      if record.name != loaded.record.name else ""))


def add_bundled(kb, quiet: bool = False) -> list[dict]:
    """Register every bundled dataset, one line each; returns their summaries."""
    from kb.datasets import bundled, load_bundled, register

    entries = bundled()
    out = []
    for i, entry in enumerate(entries, start=1):
        record, added = register(kb, load_bundled(entry))
        out.append({"added": added, **_summary(record)})
        if not quiet:
            click.echo(f"[{i:>2}/{len(entries)}] {'added' if added else 'present'} "
                       f"{record.name:<34} {record.task:<10} {record.n_rows:>6} rows "
                       f"{record.n_features:>4} features")
    if not quiet:
        n_added = sum(o["added"] for o in out)
        click.echo(f"{n_added} bundled dataset(s) added, {len(out) - n_added} already present")
    return out


def _summary(record) -> dict:
    return {k: getattr(record, k) for k in
            ("dataset_id", "name", "task", "target", "n_rows", "n_features", "n_classes", "source")}


@datasets.command("list")
@click.option("--task", type=click.Choice(TASKS), help="Only datasets of this task.")
@json_option
@kb_option
def list_(task: str | None, as_json: bool) -> None:
    """List the KB's datasets with their shape and how many trials each has.

    \b
    Example:
      kb datasets list --task binary
    """
    kb = open_kb()
    rows = kb.query(
        """SELECT d.dataset_id, d.name, d.task, d.target, d.n_rows, d.n_features, d.n_classes,
                  d.source, (SELECT count(*) FROM trials t WHERE t.dataset_id = d.dataset_id) AS trials
           FROM datasets d WHERE ? IS NULL OR d.task = ? ORDER BY d.task, d.name""",
        [task, task],
    ).to_pylist()
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo("no datasets" + (f" of task {task}" if task else "")
                   + "; add one with `kb datasets add PATH --target COL`")
    else:
        print_table(rows, ["name", "task", "target", "n_rows", "n_features", "n_classes",
                           "trials", "dataset_id"])


COMMANDS = (datasets,)
