"""``kb fragments``: measure what network fragments cost on a hardware profile."""

from __future__ import annotations

import click

from kb.cli.assemble_cli import assemble
from kb.cli.common import json_option, kb_option, open_kb, print_json, print_table

SPACE_NAMES = ("mlp", "cnn", "nb201")  # fragments.spaces.SPACES, named here so --help stays fast


@click.group()
def fragments() -> None:
    """Network fragments (blocks such as conv-bn-relu or a residual MLP block at one input
    shape) and what each costs on a hardware profile.

    \b
    Example:
      kb fragments measure --hardware cpu-1t --space nb201
      kb latency predict --hardware cpu-1t --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'
    """


@fragments.command("measure")
@click.option("--hardware", "profile_name", required=True, metavar="PROFILE",
              help="Hardware profile to measure under (`kb hardware list`).")
@click.option("--space", type=click.Choice(SPACE_NAMES), default=None,
              help="Measure every fragment of this architecture space.")
@click.option("--arch", "archs", multiple=True, metavar="ARCH",
              help="Measure the fragments of this architecture (an arch_id, a NAS-Bench-201 "
                   "string or a node-link JSON file); repeatable.")
@click.option("--networks", default=12, show_default=True, type=click.IntRange(0, 200),
              help="Whole networks of --space measured end to end, to learn the latency "
                   "correction from.")
@click.option("--seed", default=0, show_default=True, help="Seed that draws the networks.")
@click.option("--again", is_flag=True, help="Measure fragments this hardware already has costs for.")
@json_option
@kb_option
def measure(profile_name: str, space: str | None, archs: tuple[str, ...], networks: int,
            seed: int, again: bool, as_json: bool) -> None:
    """Time each fragment alone in ONNX Runtime on a profile and store its cost.

    The per-call overhead (an identity model) is measured too and subtracted from every
    fragment; with --space, a few whole networks of the space are measured end to end so
    `kb latency predict` can correct the sum of fragment costs. Timing is batch 1, in a fresh
    process, as `kb bench` measures.

    \b
    Example:
      kb fragments measure --hardware cpu-1t --space mlp
      kb fragments measure --hardware cpu-1t --space cnn --networks 12
      kb fragments measure --hardware cpu-1t --arch 3f2a9c0d1e4b5a6f --json
    """
    import numpy as np

    from fragments.costs import measure_costs
    from fragments.graph import instances
    from fragments.lookup import find_architecture
    from fragments.spaces import SPACES
    from kb.errors import KBError
    from search.profiles import find_profile

    if space is None and not archs:
        raise KBError("say what to measure: --space mlp|cnn|nb201, or --arch ARCH")
    kb = open_kb()
    profile = find_profile(profile_name, kb.root)
    graphs = [find_architecture(kb, text)[1] for text in archs]
    fragment_list = [f for g in graphs for f in instances(g).values()]
    calibration = []
    if space is not None:
        fragment_list = SPACES[space].fragments() + fragment_list
        calibration = SPACES[space].samples(networks, np.random.default_rng(seed))
    input_shapes = {tuple(g.graph["input_shape"]) for g in graphs}
    input_shape = SPACES[space].input_shape if space else sorted(input_shapes)[0]

    def progress(done: int, total: int) -> None:
        if not as_json:
            click.echo(f"measured {done}/{total}", err=True)

    summary = measure_costs(kb, profile, fragment_list, input_shape=input_shape,
                            networks=calibration, again=again, progress=progress)
    result = {"hardware": profile.name, "hardware_id": summary.hardware_id,
              "overhead_ms": summary.overhead_ms, "measured": summary.measured,
              "already_stored": summary.already_stored, "networks": summary.networks,
              "failed": [{"what": w, "why": y} for w, y in summary.failed],
              "background_cpu": summary.background_cpu}
    if as_json:
        print_json(result)
        return
    print_table([{k: v for k, v in result.items() if k != "failed"}])
    for what, why in summary.failed:
        click.echo(f"not measured: {what}: {why}", err=True)
    from search.measure import BUSY_CORES

    if summary.background_cpu is not None and summary.background_cpu > BUSY_CORES:
        click.echo(f"note: other processes used {summary.background_cpu:.1f} core(s) while timing; "
                   f"latencies on a busy machine run high", err=True)


fragments.add_command(assemble)
COMMANDS = (fragments,)
