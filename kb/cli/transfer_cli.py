"""``kb latency fit`` and ``kb latency predict --device``: a device known only by a few
measured architectures (``fragments.device_latency``); attached to the ``latency`` group."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli.common import json_option, kb_option, open_kb, print_json, print_table

SAMPLE_COLUMNS = ("arch", "latency_ms")


@click.command("fit")
@click.option("--device", required=True, metavar="NAME",
              help="The new device's name (a hardware row of kind external is made for it).")
@click.option("--samples", "samples_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="CSV with columns arch (an arch_id, a NAS-Bench-201 cell string or a "
                   "node-link JSON file) and latency_ms, measured on the device.")
@json_option
@kb_option
def fit(device: str, samples_path: Path, as_json: bool) -> None:
    """Learn a device's latency from a few measured architectures and every device the KB knows.

    The samples are stored as trials on the device (source "samples"; measuring an
    architecture again replaces its sample). The model puts a prior on the device's
    per-operation costs learned from the other devices' latencies and updates it with the
    samples; the fit reports each sample's error when predicted from the others. Then
    `kb latency predict --device NAME` predicts every architecture of the samples' space.

    \b
    Example:
      kb ingest ../shared/data/nb201 --format nb201
      kb latency fit --device my-phone --samples my_phone_10.csv
      kb latency predict --device my-phone --out my_phone_all.csv
    """
    import numpy as np

    from fragments import device_latency

    kb = open_kb()
    added = device_latency.add_samples(kb, device, read_samples(kb, samples_path))
    fitted = device_latency.fit(kb, device)
    errors = fitted.loo_relative_errors
    similar = sorted(zip(fitted.prior.devices, _similarity(fitted)), key=lambda p: -p[1])[:3]
    result = {"device": device, "hardware_id": fitted.device.hardware_id, "samples": added,
              "known_devices": fitted.prior.n_devices, "architectures": len(fitted.space.arch_ids),
              "space": "nb201" if fitted.space.nb201 else "fragments",
              "spread": fitted.model.spread, "noise": fitted.model.noise,
              "loo_median_abs_error": float(np.median(np.abs(errors))) if len(errors) else None,
              "loo_max_abs_error": float(np.max(np.abs(errors))) if len(errors) else None,
              "most_similar_devices": [{"device": d, "correlation": c} for d, c in similar]}
    if as_json:
        print_json(result)
        return
    click.echo(f"device {device} ({fitted.device.hardware_id}): {added} sample(s), "
               f"{fitted.prior.n_devices} known device(s), {len(fitted.space.arch_ids)} "
               f"architectures to predict")
    if len(errors):
        click.echo(f"each sample predicted from the others: median error "
                   f"{100 * result['loo_median_abs_error']:.1f} %, largest "
                   f"{100 * result['loo_max_abs_error']:.1f} %")
    click.echo("most like: " + ", ".join(f"{d} (r={c:.3f})" for d, c in similar))


def _similarity(fitted) -> list[float]:
    """Correlation of the device's predicted latencies with each known device's fitted ones."""
    import numpy as np

    predicted = fitted.predict()
    known = fitted.space.features @ (fitted.prior.mean[:, None] + fitted.prior.deviations)
    return [float(np.corrcoef(predicted, known[:, j])[0, 1]) for j in range(known.shape[1])]


def read_samples(kb, path: Path) -> list:
    """The samples file as (Architecture, its fragment rows, latency ms); a bad row is named."""
    from fragments.graph import fragment_records, instances
    from fragments.lookup import find_architecture
    from kb.errors import KBError
    from kb.ingest.external import number_column
    from kb.tabular_io import check_content, read_csv_as_text

    check_content(path, "text")
    table = read_csv_as_text(path)
    missing = [c for c in SAMPLE_COLUMNS if c not in table.column_names]
    if missing:
        raise KBError(f"{path} needs the columns {', '.join(SAMPLE_COLUMNS)}; it lacks "
                      f"{', '.join(missing)}")
    try:
        latencies = number_column(table, "latency_ms", positive=True)
    except KBError as e:
        raise KBError(f"{path}: {e}") from None
    samples = []
    for row, text in enumerate(table.column("arch").to_pylist(), start=1):
        try:
            arch, graph = find_architecture(kb, text or "")
        except KBError as e:
            raise KBError(f"{path}: row {row}, field arch: {e}") from None
        samples.append((arch, fragment_records(instances(graph).values()), float(latencies[row - 1])))
    if not samples:
        raise KBError(f"{path} has a header but no samples")
    return samples


def predict_on_device(device: str, arch_text: str | None, out: Path | None, as_json: bool) -> None:
    """``kb latency predict --device``: every architecture of the device's space (or one)."""
    import numpy as np
    import pandas as pd

    from fragments import device_latency
    from fragments.lookup import find_architecture
    from kb.errors import KBError

    kb = open_kb()
    fitted = device_latency.fit(kb, device)
    predicted = fitted.predict()
    measured = dict(zip(fitted.sample_ids, fitted.sample_ms))
    frame = pd.DataFrame({"arch_id": fitted.space.arch_ids, "name": fitted.space.names,
                          "predicted_ms": predicted,
                          "measured_ms": [measured.get(a, np.nan) for a in fitted.space.arch_ids]})
    if arch_text is not None:
        arch, _ = find_architecture(kb, arch_text)
        frame = frame[frame["arch_id"] == arch.arch_id]
        if frame.empty:
            raise KBError(f"architecture {arch.arch_id} is not in the KB's "
                          f"{'NAS-Bench-201' if fitted.space.nb201 else 'fragment'} space; "
                          f"ingest or measure it first")
    frame = frame.sort_values("predicted_ms")
    if out is not None:
        frame.to_csv(out, index=False)
    records = frame.replace({np.nan: None}).to_dict("records")
    if as_json:
        print_json({"device": device, "hardware_id": fitted.device.hardware_id,
                    "samples": len(fitted.sample_ids), "known_devices": fitted.prior.n_devices,
                    "predictions": records})
        return
    click.echo(f"{device}: {len(frame)} architecture(s) predicted from {len(fitted.sample_ids)} "
               f"sample(s) and {fitted.prior.n_devices} known device(s)"
               + (f"; all written to {out}" if out else ""))
    shown = records if len(records) <= 10 else records[:5] + records[-5:]
    print_table(shown, ["arch_id", "name", "predicted_ms", "measured_ms"],
                title=None if len(records) <= 10 else "fastest 5 and slowest 5")
