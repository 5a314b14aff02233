"""``kb recommend``: configurations to try first on a dataset, or a zero-shot portfolio."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli.common import json_option, kb_option, open_kb, print_json, print_table
from kb.cli.metafeature_commands import metafeature_file_options, read_query_file
from kb.schema import TASKS


@click.command("recommend")
@click.argument("dataset", required=False)
@metafeature_file_options
@click.option("--portfolio", "portfolio_k", type=click.IntRange(min=1), default=None,
              help="No dataset: the K configurations that together do best over the whole KB.")
@click.option("--task", type=click.Choice(TASKS),
              help="The task (default: DATASET's; needed with --metafeatures and --portfolio).")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many configurations to recommend.")
@click.option("--hardware", default=None,
              help="Hardware row (id or name, `kb hardware list`) to predict latency and memory "
                   "on and to judge the limits on.")
@click.option("--max-latency-ms", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Leave out configurations whose predicted p50 latency at batch 1 on "
                   "--hardware is above this.")
@click.option("--max-memory-mb", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Leave out configurations whose predicted peak memory on --hardware is above this.")
@click.option("--family", "families", multiple=True,
              help="Only configurations of this model family (repeatable).")
@click.option("--exclude", "excluded", multiple=True,
              help="Leave this dataset's trials and meta-features out (name or id; repeatable).")
@json_option
@kb_option
def recommend_command(dataset: str | None, metafeatures_file: Path | None, vocabulary: str,
                      portfolio_k: int | None, task: str | None, k: int, hardware: str | None,
                      max_latency_ms: float | None, max_memory_mb: float | None,
                      families: tuple[str, ...], excluded: tuple[str, ...], as_json: bool) -> None:
    """Recommend configurations for DATASET (or --metafeatures FILE.json), best first, each
    with a predicted normalized score (1 = the best known on comparable datasets, 0 = the
    worst), its uncertainty, latency and memory on --hardware where the KB measured them, and
    the datasets and trials it rests on.

    The list is a portfolio: each configuration is the one that adds most to those above it
    on the KB datasets nearest the query (see kb/recommend/ranking.py). Under a limit, a
    configuration never measured on --hardware comes after every measured one that keeps
    the limits, with no latency shown.

    \b
    Examples:
      kb recommend haberman -k 5
      kb recommend --metafeatures task.json --task binary --json
      kb recommend churn --hardware cpu-1t --max-latency-ms 1 --family random_forest
      kb recommend --portfolio 8 --task multiclass
    """
    from kb.datasets import get
    from kb.recommend import portfolio, recommend

    given = [name for name, value in (("DATASET", dataset), ("--metafeatures", metafeatures_file),
                                      ("--portfolio", portfolio_k)) if value is not None]
    if len(given) != 1:
        raise click.UsageError("give one of DATASET, --metafeatures FILE or --portfolio K")
    if dataset is None and task is None:
        raise click.UsageError(f"{given[0]} needs --task ({', '.join(TASKS)})")
    kb = open_kb()
    options = dict(hardware_id=_hardware_id(kb, hardware), max_latency_ms=max_latency_ms,
                   max_memory_mb=max_memory_mb, families=families or None,
                   exclude_datasets=[get(kb, name).dataset_id for name in excluded])
    if portfolio_k is not None:
        found = portfolio(kb, task=task, k=portfolio_k, **options)
    elif dataset is not None:
        record = get(kb, dataset)
        found = recommend(kb, dataset=record.dataset_id, task=task or record.task, k=k, **options)
    else:
        found = recommend(kb, metafeatures=read_query_file(metafeatures_file, vocabulary, task,
                                                           quiet=as_json),
                          task=task, k=k, **options)
    if as_json:
        print_json([r.to_json() for r in found])
        return
    print_table([_row(i, r) for i, r in enumerate(found, start=1)],
                ["rank", "family", "predicted_score", "uncertainty", "latency_ms", "memory_mb",
                 "nearest_evidence", "config"])


def _hardware_id(kb, hardware: str | None) -> str | None:
    if hardware is None:
        return None
    from kb.ingest.smac import stored_hardware

    return stored_hardware(kb, hardware).hardware_id


def _row(rank: int, recommendation) -> dict:
    import json

    config = {key: value for key, value in recommendation.config.items() if key != "family"}
    nearest = ", ".join(e["dataset"] for e in recommendation.evidence[:3])
    return {"rank": rank, "family": recommendation.model_family,
            "predicted_score": recommendation.predicted_score,
            "uncertainty": recommendation.uncertainty,
            "latency_ms": recommendation.predicted_latency_ms,
            "memory_mb": recommendation.predicted_memory_mb,
            "nearest_evidence": nearest, "config": json.dumps(config, separators=(",", ":"))}


COMMANDS = (recommend_command,)
