"""A device known by a few measured architectures: its samples in the KB, and its latency for
every other architecture predicted from what the KB knows of other devices
(``fragments.transfer`` does the arithmetic; this module reads and writes the KB).

Storage: the device is a ``hardware`` row of kind ``external`` (source ``samples``, named as
the user names it) and each sample a trial on it with ``source = "samples"``, metric
``latency_ms`` (the latency as score and as ``latency_p50_ms``) and the architecture's
``arch_id``. No fitted model is stored: it is refitted from the samples whenever asked (a
fraction of a second), so it always draws on every device the KB knows by then.

The architectures a device is predicted for are its samples' *space*: every NAS-Bench-201
network the KB holds when the samples are NAS-Bench-201 cells (encoded by the operation on
each edge), otherwise every other architecture with a fragment list (encoded by fragment
counts). Known devices are the other hardware rows with latencies of enough of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from fragments.graph import NB201_SOURCE
from fragments.transfer import (DeviceModel, Prior, fit_device, fragment_count_encoding,
                                learn_prior, nb201_encoding)
from kb.errors import KBError
from kb.keys import canonical_json
from kb.schema import Architecture, Hardware, Trial

SAMPLES_SOURCE = "samples"
LATENCY_METRIC = "latency_ms"
# A trial's latency: batch 1 where measured so, else the batch latency (one hardware row is
# one batch size, so a device's column is never a mix).
LATENCY_SQL = "coalesce(t.latency_p50_ms, t.latency_batch_p50_ms)"


@dataclass(frozen=True)
class Space:
    """The architectures predictions cover, with their encodings."""

    nb201: bool
    arch_ids: tuple[str, ...]
    names: tuple[str | None, ...]
    features: np.ndarray
    feature_names: tuple[str, ...]

    def rows(self, arch_ids) -> np.ndarray:
        index = {a: i for i, a in enumerate(self.arch_ids)}
        return np.array([index[a] for a in arch_ids], int)


@dataclass(frozen=True)
class FittedDevice:
    device: Hardware
    model: DeviceModel
    prior: Prior
    space: Space
    sample_ids: tuple[str, ...]
    sample_ms: np.ndarray
    loo_relative_errors: np.ndarray  # each sample predicted from the others

    def predict(self) -> np.ndarray:
        return self.model.predict(self.space.features)


def device_row(name: str) -> Hardware:
    from kb.ingest.external import external_hardware

    return external_hardware(SAMPLES_SOURCE, name)


def find_device(kb, name: str) -> Hardware:
    """The hardware row named ``name`` that holds samples, or a KBError saying what to run."""
    rows = kb.query("SELECT h.* FROM hardware h WHERE h.name = ? AND EXISTS (SELECT 1 FROM trials t "
                    "WHERE t.hardware_id = h.hardware_id AND t.source = ?)",
                    [name, SAMPLES_SOURCE]).to_pylist()
    if not rows:
        raise KBError(f"no device {name!r} with samples in {kb.root}; measure a few architectures "
                      f"on it and run `kb latency fit --device {name} --samples FILE.csv`")
    return Hardware(**rows[0])


def add_samples(kb, name: str, samples: list[tuple[Architecture, list, float]]) -> int:
    """Store ``(architecture, its fragment rows, latency ms)`` samples of device ``name``; a
    sample of an architecture already stored for it replaces the old one. Returns how many
    samples the device now has."""
    nb201 = _all_nb201([a for a, _, _ in samples])
    space = load_space(kb, nb201)
    dataset_id = _latency_dataset(kb, space)
    device = device_row(name)
    trials = [Trial(dataset_id=dataset_id, hardware_id=device.hardware_id,
                    config=canonical_json(_config(arch)), model_family=_family(arch),
                    metric=LATENCY_METRIC, direction="minimize", status="ok",
                    source=SAMPLES_SOURCE, score=ms, latency_p50_ms=ms, arch_id=arch.arch_id)
              for arch, _, ms in samples]
    kb.append("hardware", [device], on_conflict="keep")
    fragments = {f.fragment_id: f for _, rows, _ in samples for f in rows}
    if fragments:
        kb.append("fragments", list(fragments.values()), on_conflict="keep")
    kb.append("architectures", [a for a, _, _ in samples], on_conflict="keep")
    kb.append("trials", trials, on_conflict="replace")
    return len(device_samples(kb, device)[0])


def _all_nb201(archs: list[Architecture]) -> bool:
    kinds = {a.source == NB201_SOURCE for a in archs}
    if len(kinds) > 1:
        raise KBError("samples mix NAS-Bench-201 cells with other architectures; a device's "
                      "samples come from one space")
    return kinds == {True}


def _config(arch: Architecture) -> dict:
    return ({"cell": arch.name, "family": "nb201"} if arch.source == NB201_SOURCE
            else {"arch_id": arch.arch_id, "family": "architecture"})


def _family(arch: Architecture) -> str:
    return _config(arch)["family"]


def device_samples(kb, device: Hardware) -> tuple[list[str], np.ndarray]:
    rows = kb.query(f"SELECT t.arch_id, {LATENCY_SQL} AS ms FROM trials t WHERE t.hardware_id = ? "
                    "AND t.source = ? AND t.arch_id IS NOT NULL ORDER BY t.arch_id",
                    [device.hardware_id, SAMPLES_SOURCE]).to_pylist()
    return [r["arch_id"] for r in rows], np.array([r["ms"] for r in rows], float)


def load_space(kb, nb201: bool) -> Space:
    if nb201:
        rows = kb.query("SELECT arch_id, name FROM architectures WHERE source = ? ORDER BY arch_id",
                        [NB201_SOURCE]).to_pylist()
        features, names = nb201_encoding([r["name"] for r in rows])
    else:
        rows = kb.query("SELECT arch_id, name, fragments FROM architectures "
                        "WHERE source IS DISTINCT FROM ? ORDER BY arch_id", [NB201_SOURCE]).to_pylist()
        features, names = fragment_count_encoding([json.loads(r["fragments"]) for r in rows])
    if not rows:
        raise KBError("the KB holds no architectures of this space; ingest or measure some first "
                      "(`kb ingest ../shared/data/nb201 --format nb201`)")
    return Space(nb201, tuple(r["arch_id"] for r in rows), tuple(r["name"] for r in rows),
                 features, names)


def _latency_dataset(kb, space: Space) -> str:
    """The dataset latency trials of this space are recorded under (the most common one)."""
    kb_rows = kb.query(f"SELECT t.dataset_id, count(*) AS n FROM trials t JOIN architectures a "
                       f"USING (arch_id) WHERE {LATENCY_SQL} IS NOT NULL AND "
                       f"coalesce(a.source = ?, false) = ? GROUP BY 1 ORDER BY n DESC, 1 LIMIT 1",
                       [NB201_SOURCE, space.nb201]).to_pylist()
    if not kb_rows:
        raise KBError("no other device has latencies of architectures of this space in the KB, "
                      "so there is nothing to transfer from")
    return kb_rows[0]["dataset_id"]


def known_latencies(kb, space: Space, exclude_hardware_id: str) -> tuple[np.ndarray, list[str]]:
    """(architectures x devices) latencies of every other hardware row with latencies of at
    least as many architectures of ``space`` as the encoding has features; NaN where none."""
    rows = kb.query(f"SELECT t.arch_id, t.hardware_id, h.name, median({LATENCY_SQL}) AS ms "
                    f"FROM trials t JOIN hardware h USING (hardware_id) "
                    f"WHERE t.arch_id IS NOT NULL AND t.status = 'ok' AND {LATENCY_SQL} > 0 "
                    f"AND t.hardware_id <> ? GROUP BY 1, 2, 3", [exclude_hardware_id],
                    output="pandas")
    index = {a: i for i, a in enumerate(space.arch_ids)}
    rows = rows[rows["arch_id"].isin(index.keys())]
    counts = rows.groupby("hardware_id").size()
    wanted = sorted(counts[counts >= space.features.shape[1]].index)
    matrix = np.full((len(space.arch_ids), len(wanted)), np.nan)
    column = {h: j for j, h in enumerate(wanted)}
    rows = rows[rows["hardware_id"].isin(column.keys())]
    matrix[rows["arch_id"].map(index).to_numpy(), rows["hardware_id"].map(column).to_numpy()] = rows["ms"]
    names = rows.drop_duplicates("hardware_id").set_index("hardware_id")["name"]
    return matrix, [f"{names[h]} ({h})" for h in wanted]


def fit(kb, name: str) -> FittedDevice:
    """Device ``name``'s model from its samples and the KB's other devices."""
    device = find_device(kb, name)
    sample_ids, sample_ms = device_samples(kb, device)
    nb201 = bool(kb.query("SELECT count(*) AS n FROM architectures WHERE arch_id = ? AND source = ?",
                          [sample_ids[0], NB201_SOURCE]).to_pylist()[0]["n"])
    space = load_space(kb, nb201)
    latencies, devices = known_latencies(kb, space, device.hardware_id)
    prior = learn_prior(space.features, latencies, devices, space.feature_names)
    x = space.features[space.rows(sample_ids)]
    model = fit_device(prior, x, sample_ms)
    return FittedDevice(device, model, prior, space, tuple(sample_ids), sample_ms,
                        leave_one_out_errors(prior, x, sample_ms))


def leave_one_out_errors(prior: Prior, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each sample's relative error when predicted from the others (an honest estimate of
    the model's error on architectures it has not seen)."""
    errors = []
    for i in range(len(y)):
        others = np.arange(len(y)) != i
        if others.sum() < 3:
            return np.array([])
        model = fit_device(prior, x[others], y[others])
        errors.append(float(model.predict(x[i:i + 1])[0] / y[i] - 1))
    return np.array(errors)
