"""``kb latency``: predict a network's latency on a hardware profile from its fragments' costs."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli.common import json_option, kb_option, open_kb, print_json, print_table
from kb.cli.transfer_cli import fit, predict_on_device


@click.group()
def latency() -> None:
    """Latency of architectures, predicted from measured fragment costs (first run
    `kb fragments measure` on the same profile).

    \b
    Example:
      kb latency predict --hardware cpu-1t --arch my_net.json
      kb latency predict --hardware cpu-1t --arch 3f2a9c0d1e4b5a6f --json
      kb latency fit --device my-phone --samples my_phone_10.csv   # a device not here
      kb latency predict --device my-phone --out my_phone_all.csv
    """


@latency.command("predict")
@click.option("--hardware", "profile_name", default=None, metavar="PROFILE",
              help="Hardware profile of this machine whose measured fragment costs to use, or "
                   "the hardware_id of a KB row measured on another machine.")
@click.option("--device", default=None, metavar="NAME",
              help="Instead of --hardware: a device known by samples (`kb latency fit`); "
                   "without --arch, every architecture of its space is predicted.")
@click.option("--arch", "arch_text", default=None, metavar="ARCH",
              help="An arch_id in the KB, a NAS-Bench-201 cell string, or a JSON file with a "
                   "node-link graph.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --device: also write every prediction to this CSV file.")
@json_option
@kb_option
def predict(profile_name: str | None, device: str | None, arch_text: str | None, out: Path | None,
            as_json: bool) -> None:
    """Predict an architecture's batch-1 p50 latency on a profile of this machine or on hardware
    whose fragment costs the KB holds (or, with --device, every architecture's latency on a
    device known by samples: `kb latency fit`).

    The prediction is the per-call overhead plus the architecture's fragment costs, corrected
    by what the calibration networks measured end to end showed (`kb fragments measure
    --space`); the breakdown lists each part. Fragments without a cost are named, with the
    command that measures them.

    \b
    Example:
      kb latency predict --hardware cpu-1t --arch '|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|'
      kb latency predict --hardware cpu-1t --arch my_net.json --json
      kb latency predict --hardware d022c25c896e8f82 --arch my_net.json   # the H200 of datasets/hardware
      kb latency predict --device my-phone --out my_phone_all.csv
    """
    from kb.errors import KBError

    if device is not None:
        return predict_on_device(device, arch_text, out, as_json)
    if profile_name is None or arch_text is None:
        raise KBError("give --hardware PROFILE and --arch ARCH, or --device NAME")
    import json

    from fragments.costs import load_costs
    from fragments.graph import fragment_records, instances
    from fragments.latency import fit_correction, predict as predict_latency
    from fragments.lookup import find_architecture
    from kb.keys import canonical_json

    kb = open_kb()
    hardware_name, hardware_id = _costs_hardware(kb, profile_name)
    arch, graph = find_architecture(kb, arch_text)
    table = load_costs(kb, hardware_id)
    fragment_ids = json.loads(arch.fragments)
    correction = fit_correction(table)
    prediction = predict_latency(fragment_ids, canonical_json(list(graph.graph["input_shape"])),
                                 table, correction)
    described = {r.fragment_id: r for r in fragment_records(instances(graph).values())}
    measured = next((n.net_ms + prediction.overhead_ms for n in table.networks
                     if n.arch_id == arch.arch_id), None)
    parts = [{"kind": s.kind, "fragment_id": s.fragment_id,
              "params": json.loads(described[s.fragment_id].params),
              "in_shape": json.loads(described[s.fragment_id].in_shape), "count": s.count,
              "each_ms": s.each_ms, "total_ms": s.total_ms} for s in prediction.fragments]
    result = {
        "arch_id": arch.arch_id, "name": arch.name, "hardware": hardware_name,
        "hardware_id": hardware_id, "p50_ms": prediction.p50_ms,
        "overhead_ms": prediction.overhead_ms, "fragments_ms": prediction.raw_ms - prediction.overhead_ms,
        "correction_ms": prediction.correction_ms, "raw_sum_ms": prediction.raw_ms,
        "correction": {"calibration_networks": correction.n_networks, "scale": correction.scale,
                       "default_scale": correction.default_scale,
                       "per_node_ms": correction.per_node_ms},
        "fragments": parts,
        # A calibration network's own measurement, where the architecture is one.
        "measured_p50_ms": measured,
    }
    if as_json:
        print_json(result)
        return
    click.echo(f"architecture {arch.arch_id}" + (f" ({arch.name})" if arch.name else ""))
    click.echo(f"hardware     {hardware_name} ({hardware_id})")
    print_table([{"kind": p["kind"], "in_shape": str(p["in_shape"]), "params": canonical_json(p["params"]),
                  "count": p["count"], "each_ms": p["each_ms"], "total_ms": p["total_ms"]}
                 for p in parts])
    click.echo(f"overhead        {prediction.overhead_ms:10.4f} ms")
    click.echo(f"fragments       {result['fragments_ms']:10.4f} ms")
    click.echo(f"correction      {prediction.correction_ms:+10.4f} ms "
               f"(from {correction.n_networks} calibration network(s))")
    click.echo(f"predicted p50   {prediction.p50_ms:10.4f} ms")
    if measured is not None:
        click.echo(f"measured p50    {measured:10.4f} ms (a calibration network)")


def _costs_hardware(kb, name: str) -> tuple[str, str]:
    """(name, hardware_id) of a profile of this machine, or of a KB hardware row given by its
    id: costs measured on another machine (a GPU box, a phone) predict for that machine."""
    from search.hardware import detect_machine, hardware_record
    from search.profiles import find_profile

    stored = kb.query("SELECT name FROM hardware WHERE hardware_id = ?", [name]).to_pylist()
    if stored:
        return stored[0]["name"], name
    profile = find_profile(name, kb.root)
    return profile.name, hardware_record(detect_machine(), profile).hardware_id


latency.add_command(fit)
COMMANDS = (latency,)
