"""``kb metafeatures`` (compute, store, print) and ``kb similar`` (nearest KB datasets)."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli.common import json_option, kb_option, open_kb, print_json, print_table
from kb.schema import TASKS

GROUP_HELP = ("Comma-separated groups: general, statistical, info-theory, landmarking, "
              "model-based, or all.")


@click.command("metafeatures")
@click.argument("datasets", nargs=-1)
@click.option("--all", "all_datasets", is_flag=True, help="Every KB dataset that has data.")
@click.option("--groups", default="all", show_default=True, help=GROUP_HELP)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of every random choice (row sample, tree tie-breaks).")
@click.option("--max-rows", type=click.IntRange(min=0), default=None,
              help="Landmarking, the tree and pairwise statistics use a seeded sample of this "
                   "many rows when there are more (default: 10000; 0: every row, which --json "
                   "reports as max_rows 0).")
@json_option
@kb_option
def metafeatures_command(datasets: tuple[str, ...], all_datasets: bool, groups: str, seed: int,
                         max_rows: int | None, as_json: bool) -> None:
    """Compute meta-features of DATASET(s) (name or id), store them in the KB and print them.

    Names follow OpenML's qualities where OpenML has one (NumberOfInstances, ClassEntropy,
    ...). A feature that cannot exist for the data (class entropy of a regression target) is
    absent, and a note says why. Values are stored with the extractor's version, replacing
    what an earlier run stored.

    \b
    Examples:
      kb metafeatures iris
      kb metafeatures churn --groups general,statistical --json
      kb metafeatures --all
    """
    from kb.metafeature_store import characterise

    if all_datasets == bool(datasets):
        raise click.UsageError("give DATASET(s) or --all (not both)")
    kb = open_kb()
    if all_datasets:
        datasets = tuple(r["dataset_id"] for r in kb.query(
            "SELECT dataset_id FROM datasets WHERE data_file IS NOT NULL ORDER BY task, name").to_pylist())
        if not datasets:
            from kb.errors import KBError

            raise KBError("the KB has no dataset with data; add one with `kb datasets add PATH` "
                          "or `kb datasets add --bundled`")
    reports = []
    for i, dataset in enumerate(datasets, start=1):
        done = characterise(kb, dataset, groups=groups, seed=seed, max_rows=max_rows)
        record = done.record
        report = _report(record, done.extraction, done.stored)
        reports.append(report)
        if as_json:
            continue
        if len(datasets) == 1:
            _print_one(report)
        else:
            click.echo(f"[{i:>{len(str(len(datasets)))}}/{len(datasets)}] {record.name:<34} "
                       f"{done.stored:>4} meta-features  {report['seconds']:.2f} s")
    if as_json:
        print_json(reports[0] if len(datasets) == 1 and not all_datasets else reports)


def _report(record, extraction, stored: int) -> dict:
    return {
        "dataset_id": record.dataset_id, "name": record.name, "task": record.task,
        "extractor": extraction.extractor, "extractor_version": extraction.extractor_version,
        "groups": list(extraction.groups), "seed": extraction.seed,
        "max_rows": 0 if extraction.max_rows is None else extraction.max_rows,  # 0: every row
        "rows": extraction.n_rows, "seconds": round(extraction.wall_seconds, 4),
        "stored": stored, "metafeatures": extraction.values, "sample_rows": extraction.sample_rows,
        "notes": list(extraction.notes),
    }


def _print_one(report: dict) -> None:
    from metafeatures import group_of

    rows = [{"group": group_of(name), "name": name, "value": value,
             "rows": report["sample_rows"].get(name)} for name, value in report["metafeatures"].items()]
    print_table(rows, ["group", "name", "value"] + (["rows"] if report["sample_rows"] else []))
    click.echo(f"stored {report['stored']} meta-features of {report['name']} ({report['dataset_id']}), "
               f"extractor {report['extractor']} {report['extractor_version']}, "
               f"{report['seconds']:.2f} s")
    for note in report["notes"]:
        click.echo(f"note: {note}")


def metafeature_file_options(command):
    """``--metafeatures FILE.json`` (a query in place of a DATASET) and ``--vocabulary``."""
    command = click.option(
        "--vocabulary", type=click.Choice(["auto", "openml", "autosklearn", "pymfe"]),
        default="auto", show_default=True,
        help="Whose names the file uses (auto: detected from the names).")(command)
    return click.option(
        "--metafeatures", "metafeatures_file", type=click.Path(path_type=Path),
        help="A JSON object {name: value} to use instead of a DATASET; names may be OpenML's, "
             "auto-sklearn's, pymfe's or metakb's.")(command)


def read_query_file(path: Path, vocabulary: str, task: str | None, *, quiet: bool) -> dict[str, float]:
    """The file's meta-features under metakb's names; unrecognised names noted on stderr."""
    from kb.metafeature_store import read_metafeature_file

    converted = read_metafeature_file(path, vocabulary, task)
    if converted.unknown and not quiet:
        shown = ", ".join(converted.unknown[:5]) + (", ..." if len(converted.unknown) > 5 else "")
        click.echo(f"note: {len(converted.unknown)} name(s) not recognised and ignored: {shown}",
                   err=True)
    return converted.values


@click.command("similar")
@click.argument("dataset", required=False)
@metafeature_file_options
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many datasets to list.")
@click.option("--groups", default="all", show_default=True, help=f"Compare only these. {GROUP_HELP}")
@click.option("--task", type=click.Choice(TASKS), help="Only KB datasets of this task.")
@json_option
@kb_option
def similar(dataset: str | None, metafeatures_file: Path | None, vocabulary: str, k: int, groups: str,
            task: str | None, as_json: bool) -> None:
    """List the KB datasets nearest to DATASET (or to --metafeatures FILE.json), with distances.

    The distance is the mean absolute difference of log-scaled meta-features, each scaled by
    its spread over the KB's datasets, over the features both sides have (see
    metafeatures/README.md). A dataset in the KB is its own nearest neighbour (distance 0).

    \b
    Examples:
      kb similar churn -k 5
      kb similar --metafeatures task.json --task binary --json
      kb similar iris --groups general,statistical
    """
    from kb.datasets import get
    from kb.metafeature_store import dataset_query, require_comparable, similar as rank, stored_vectors

    if (dataset is None) == (metafeatures_file is None):
        raise click.UsageError("give a DATASET or --metafeatures FILE (not both)")
    kb = open_kb()
    record, exclude = None, None
    if dataset is not None:
        record = get(kb, dataset)
        exclude = record.dataset_id
    else:  # the user's file first: its problems are theirs to fix whatever the KB holds
        query = read_query_file(metafeatures_file, vocabulary, task, quiet=as_json)
    kb_vectors = stored_vectors(kb, task=task)
    require_comparable(kb_vectors, exclude=exclude, task=task)
    if record is not None:  # only now, once there is something to compare it with
        query, computed = dataset_query(kb, record, kb_vectors, groups=groups)
        if computed and not as_json:
            click.echo(f"note: {record.name} has no stored meta-features; computed them for this "
                       f"query (`kb metafeatures {record.name}` stores them)", err=True)
    rows = rank(kb_vectors, query, k=k, groups=groups, exclude=exclude)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        if row["itself"]:
            row["name"] += " (itself)"
    print_table(rows, ["rank", "name", "task", "distance", "shared_features", "dataset_id"])


COMMANDS = (metafeatures_command, similar)
