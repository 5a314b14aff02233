"""Commands on the store itself: init, show, ingest, export, query, validate, compact, migrate."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli.common import json_option, kb_option, kb_path, open_kb, print_json, print_table
from kb.schema import ON_CONFLICT, TABLE_FORMATS, TABLES

TABLE_NAMES = tuple(TABLES)


@click.command()
@click.option("--bundled", is_flag=True, help="Also register the datasets that ship with metakb.")
@json_option
@kb_option
def init(bundled: bool, as_json: bool) -> None:
    """Create a knowledge base (or open the one that is there).

    \b
    Example:
      kb init --bundled            # ./.kb with the 21 bundled datasets
      kb --kb /data/team.kb init
    """
    from kb.meta import meta_path
    from kb.store import KnowledgeBase

    existed = meta_path(kb_path()).exists()
    kb = KnowledgeBase.create(kb_path())
    if not as_json:
        click.echo(f"{'opened existing' if existed else 'created'} knowledge base at {kb.root} "
                   f"(schema version {kb.schema_version})")
    added, baseline = [], []
    if bundled:
        from kb.cli.dataset_commands import add_bundled
        from kb.datasets import baseline_folder
        from kb.errors import KBError
        from kb.ingest import ingest as run_ingest

        added = add_bundled(kb, quiet=as_json)
        # The shipped baseline: trials of a portfolio on the bundled datasets, their
        # meta-features and the hardware they were measured on (datasets/baseline/README.md).
        baseline = run_ingest(kb, baseline_folder(), format="native", on_conflict="keep")
        rejected = [r.rejected for r in baseline if r.rejected]
        if rejected:
            raise KBError("the shipped baseline did not load: " + "; ".join(rejected))
        if not as_json:
            click.echo("baseline: " + ", ".join(
                f"{r.table} {r.added} added" + (f" ({r.already_present} present)" if r.already_present else "")
                for r in baseline if not r.skipped))
    if as_json:
        print_json({"path": str(kb.root.resolve()), "created": not existed,
                    "schema_version": kb.schema_version, "bundled": added,
                    "baseline": {r.table: r.added for r in baseline if not r.skipped}})


@click.command()
@json_option
@kb_option
def show(as_json: bool) -> None:
    """Show the KB's location, schema version and the rows in each table.

    \b
    Example:
      kb show
      kb show --json | jq .counts.trials
    """
    kb = open_kb()
    meta = kb.meta
    counts = kb.counts()
    storage = kb.storage()
    if as_json:
        print_json({"path": str(kb.root.resolve()), "schema_version": kb.schema_version,
                    "created_at": meta.get("created_at"), "created_by": meta.get("created_by"),
                    "counts": counts, "storage": storage})
        return
    click.echo(f"knowledge base {kb.root.resolve()}")
    click.echo(f"schema version {kb.schema_version}, created {meta.get('created_at', '?')} "
               f"by {meta.get('created_by', '?')}")
    print_table([{"table": t, "rows": n, "shards": storage[t]["shards"],
                  "MB": round(storage[t]["bytes"] / 1e6, 2)} for t, n in counts.items()])


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--format", "fmt", default="native", show_default=True,
              help="What wrote the files (the formats are listed above).")
@click.option("--table", type=click.Choice(TABLE_NAMES), default=None,
              help="native: the table the file holds (default: from the file name).")
@click.option("--file-format", type=click.Choice(TABLE_FORMATS), default=None,
              help="native: file format (default: from the extension).")
@click.option("--on-conflict", type=click.Choice(ON_CONFLICT), default=None,
              help="A row whose key is stored with other content: reject the file (the "
                   "default), keep the stored row, or replace it.")
@click.option("--dataset", default=None,
              help="smac: the registered dataset (name or id) the run optimised on.")
@click.option("--hardware", default=None,
              help="smac: the hardware row (name or id, see `kb hardware list`) the run was "
                   "measured on (default: an external, unknown machine).")
@json_option
@kb_option
def ingest(path: Path, fmt: str, as_json: bool, **given) -> None:
    """Add results from a file or a folder of files to the KB.

    Each file is added whole or not at all. Rows already present add nothing, so ingesting
    the same file twice is safe. The exit status is 1 if any file was rejected.

    \b
    Formats:
      native   Parquet, CSV or JSONL files whose columns are a table's fields
      aslib    ASlib scenario folders (description.txt, feature_values.arff,
               algorithm_runs.arff, configurations.csv), e.g. auto-sklearn's
               meta-data: datasets by name with their meta-features, and each
               run as a trial (family "autosklearn"); all or nothing per folder
      smac     SMAC 2.x output folders (runhistory.json, scenario.json,
               configspace.json): each run as a trial on --dataset, cost as
               score (minimized), budget as fidelity; all or nothing per folder
      tabrepo  TabRepo's folder (lgbm_results_by_task.csv, configs_lightgbm.json,
               task_metadata.csv): OpenML tasks with their qualities, and each
               LightGBM configuration's error as a trial (family "lightgbm")
      nb201    NAS-Bench-201 (latency_ms.csv, accuracy.csv): each device a
               hardware row (external), each cell an architecture, latencies
               and CIFAR-10/100, ImageNet16-120 accuracies as trials
      mobile-ops  mobile-ml-benchmark (tflite/torch_cnn_ops_gpu.csv, *_e2e.csv):
               per-operator costs per phone GPU, whole-model latencies as trials

    \b
    Examples:
      kb ingest trials.parquet                 # table from the file name
      kb ingest results.csv --table trials
      kb ingest exported/                      # every table file in a folder
      kb ingest ../shared/data/autosklearn --format aslib
      kb ingest ../shared/data/tabrepo --format tabrepo
      kb ingest ../shared/data/nb201 --format nb201
      kb ingest smac3_output/ --format smac --dataset haberman
    """
    from kb.ingest import ingest as run_ingest

    kb = open_kb()
    options = {name: value for name, value in given.items() if value is not None}

    def progress(report):
        if as_json:
            return
        if report.skipped:
            click.echo(f"skipped   {report.path}: {report.skipped}")
        elif report.rejected:
            click.echo(f"rejected  {report.rejected}", err=True)
        else:
            click.echo(f"{report.table:<14} {report.path}: {report.added} added, "
                       f"{report.already_present} already present"
                       + (f", {report.replaced} replaced" if report.replaced else "")
                       + (f", {report.rows_left_out} left out ({report.left_out_because})"
                          if report.rows_left_out else ""))

    reports = run_ingest(kb, path, format=fmt, progress=progress, **options)
    rejected = [r for r in reports if r.rejected]
    if as_json:
        print_json([r.__dict__ for r in reports])
    elif len(reports) > 1:
        done = [r for r in reports if not r.rejected and not r.skipped]
        left_out = sum(r.rows_left_out for r in done)
        click.echo(f"{len(done)} file(s) ingested ({sum(r.added for r in done)} rows added, "
                   f"{sum(r.already_present for r in done)} already present"
                   + (f", {left_out} left out" if left_out else "") + "), "
                   f"{len(rejected)} rejected, {sum(bool(r.skipped) for r in reports)} skipped")
    if rejected:
        raise SystemExit(1)


@click.command()
@click.argument("table", type=click.Choice(TABLE_NAMES))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write; .parquet, .csv or .jsonl.")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default=None,
              help="File format (default: from the extension).")
@json_option
@kb_option
def export(table: str, out: Path, fmt: str | None, as_json: bool) -> None:
    """Write a table to a Parquet, CSV or JSONL file that `kb ingest` reads back unchanged.

    \b
    Example:
      kb export trials --out trials.parquet
      kb --kb other.kb ingest trials.parquet
    """
    from kb.tabular_io import table_format, write_table_file

    kb = open_kb()
    fmt = table_format(out, fmt)
    rows = kb.read(table)
    write_table_file(rows, out, fmt)
    if as_json:
        print_json({"table": table, "rows": rows.num_rows, "path": str(out), "format": fmt})
    else:
        click.echo(f"wrote {rows.num_rows} {table} rows to {out}")


@click.command()
@click.argument("sql")
@click.option("-p", "--param", "params", multiple=True,
              help="A value for the next ? in the SQL (repeatable).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@json_option
@kb_option
def query(sql: str, params: tuple[str, ...], as_csv: bool, as_json: bool) -> None:
    """Run a SQL query (DuckDB) over the KB's tables.

    \b
    Example:
      kb query "SELECT model_family, count(*) FROM trials GROUP BY 1"
      kb query "SELECT * FROM trials WHERE dataset_id = ?" -p 3f2a9c0d1e4b5a6c --json
    """
    import duckdb

    kb = open_kb()
    try:
        result = kb.query(sql, list(params) if params else None)
    except duckdb.Error as e:
        from kb.errors import KBError, first_line

        raise KBError(f"query failed: {first_line(e)}") from None
    rows = result.to_pylist()
    if as_json:
        print_json(rows)
    elif as_csv:
        import sys

        import pyarrow.csv as pcsv

        pcsv.write_csv(result, sys.stdout.buffer)
    else:
        print_table(rows)


@click.command()
@click.option("--repair", is_flag=True,
              help="Move unreadable shards and leftover temporary files to _quarantine/.")
@json_option
@kb_option
def validate(repair: bool, as_json: bool) -> None:
    """Check the KB's integrity; the exit status is 1 if a problem remains.

    Finds unreadable shards, leftovers of interrupted writes, keys stored with different
    contents, trials or costs that refer to unknown datasets, hardware or fragments, and
    datasets whose data file is gone.

    \b
    Example:
      kb validate
      kb validate --repair      # set bad shards aside; nothing is deleted
    """
    kb = open_kb()
    problems = kb.validate(repair=repair)
    remaining = [p for p in problems if p.serious and not p.repaired]
    if as_json:
        print_json([p.__dict__ for p in problems])
    else:
        for p in problems:
            state = "repaired" if p.repaired else ("problem" if p.serious else "note")
            click.echo(f"{state:<9}{p.check:<20}{p.table:<15}{p.detail}")
        click.echo("no problems found" if not problems else
                   f"{len(remaining)} problem(s) remain" if remaining else "nothing left to fix")
    if remaining:
        raise SystemExit(1)


@click.command()
@click.argument("tables", nargs=-1, type=click.Choice(TABLE_NAMES))
@json_option
@kb_option
def compact(tables: tuple[str, ...], as_json: bool) -> None:
    """Merge each table's shards into one (all tables unless named).

    Safe while other processes append: shards written meanwhile are kept.

    \b
    Example:
      kb compact
      kb compact trials
    """
    kb = open_kb()
    changed = kb.compact(tables or None)
    if as_json:
        print_json({t: {"shards_before": b, "shards_after": a} for t, (b, a) in changed.items()})
        return
    for table, (before, after) in changed.items():
        click.echo(f"{table}: {before} shards -> {after}")
    if not changed:
        click.echo("nothing to compact")


@click.command()
@json_option
@kb_option
def migrate(as_json: bool) -> None:
    """Upgrade an older KB to the schema this metakb uses.

    \b
    Example:
      kb migrate --kb old.kb
    """
    from kb.meta import migrate as run_migrate

    start, end = run_migrate(kb_path())
    if as_json:
        print_json({"path": str(kb_path()), "from_version": start, "to_version": end})
    elif start == end:
        click.echo(f"{kb_path()} is already at schema version {end}")
    else:
        click.echo(f"migrated {kb_path()} from schema version {start} to {end}")


COMMANDS = (init, show, ingest, export, query, validate, compact, migrate)
