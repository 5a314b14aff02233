"""Hardware transfer: the predictor on real NAS-Bench-201 latencies (a device held out), its
properties on constructed devices, and `kb latency fit` / `kb latency predict --device`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import csv_head
from scipy.stats import spearmanr

from fragments.transfer import (choose_hyperparameters, fit_device, fragment_count_encoding,
                                learn_prior, nb201_encoding)
from kb.errors import KBError

BENCHMARKS = Path(__file__).parent / "benchmarks"


@pytest.fixture(scope="module")
def nb201_latency():
    from conftest import SHARED_DATA

    path = SHARED_DATA / "nb201" / "latency_ms.csv"
    if not path.is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    table = pd.read_csv(path).sample(3000, random_state=0)
    devices = [c for c in table.columns if c not in ("arch_idx", "arch_str")]
    return list(table["arch_str"]), devices, table[devices].to_numpy(float)


def _held_out(nb201_latency, device: str, k: int, seed: int):
    cells, devices, latencies = nb201_latency
    features, names = nb201_encoding(cells)
    d = devices.index(device)
    others = [j for j in range(len(devices)) if j != d]
    prior = learn_prior(features, latencies[:, others], [devices[j] for j in others], names)
    chosen = np.random.default_rng(seed).choice(len(cells), k, replace=False)
    rest = np.setdiff1d(np.arange(len(cells)), chosen)
    model = fit_device(prior, features[chosen], latencies[chosen, d])
    return model.predict(features)[rest], latencies[rest, d], features, chosen, latencies[:, d]


@pytest.mark.parametrize("device, floor", [("titan_rtx_1", 0.95), ("pixel3", 0.85)])
def test_ten_samples_rank_an_unseen_device(nb201_latency, device, floor):
    rhos = [spearmanr(*_held_out(nb201_latency, device, 10, seed)[:2]).statistic for seed in range(3)]
    assert np.mean(rhos) >= floor


def test_other_devices_help_where_samples_alone_do_not(nb201_latency):
    """pixel3 is unlike the GPUs; an additive model on its 10 samples alone ranks it worse."""
    from fragments.nb201 import OPS, parse_nb201

    ours, alone = [], []
    for seed in range(3):
        predicted, truth, _, chosen, column = _held_out(nb201_latency, "pixel3", 10, seed)
        cells = nb201_latency[0]
        counts = np.array([[sum(op == o for *_, op in parse_nb201(c)) for o in OPS[1:]] + [1]
                           for c in cells], float)
        coefficients = np.linalg.lstsq(counts[chosen], column[chosen], rcond=None)[0]
        rest = np.setdiff1d(np.arange(len(cells)), chosen)
        ours.append(spearmanr(predicted, truth).statistic)
        alone.append(spearmanr(counts[rest] @ coefficients, truth).statistic)
    assert np.mean(ours) > np.mean(alone)


def test_a_device_twice_as_slow_is_predicted_twice_as_slow(nb201_latency):
    cells, devices, latencies = nb201_latency
    features, names = nb201_encoding(cells)
    prior = learn_prior(features, latencies[:, 1:], devices[1:], names)
    rows = np.arange(12)
    once = fit_device(prior, features[rows], latencies[rows, 0])
    twice = fit_device(prior, features[rows], 2 * latencies[rows, 0])
    assert np.allclose(twice.predict(features), 2 * once.predict(features))


def _constructed_devices(rng, n_devices=6, n_archs=400):
    """Devices whose latency is additive in a cell's edge operations, all with costs close to
    one pattern; returns (features, names, latencies, pattern)."""
    from fragments.nb201 import EDGES, OPS, format_nb201

    cells = [format_nb201((to, frm, OPS[rng.integers(len(OPS))]) for to, frm in EDGES)
             for _ in range(n_archs)]
    features, names = nb201_encoding(cells)
    pattern = rng.uniform(0.1, 1.0, features.shape[1])
    costs = pattern[:, None] * rng.uniform(0.9, 1.1, (features.shape[1], n_devices)) * rng.uniform(1, 5, n_devices)
    return features, names, features @ costs, pattern


def test_a_device_unlike_the_known_ones_leans_on_its_samples():
    rng = np.random.default_rng(1)
    features, names, latencies, pattern = _constructed_devices(rng)
    prior = learn_prior(features, latencies, [f"d{j}" for j in range(latencies.shape[1])], names)
    rows = np.arange(20)
    like = features[rows] @ (pattern * 3.0)
    unlike = features[rows] @ rng.permutation(pattern)
    assert choose_hyperparameters(prior, features[rows], unlike)[0] > \
        choose_hyperparameters(prior, features[rows], like)[0]


def test_missing_latencies_and_bad_input():
    rng = np.random.default_rng(2)
    features, names, latencies, _ = _constructed_devices(rng)
    latencies[::3, 0] = np.nan  # device 0 measured two architectures in three
    prior = learn_prior(features, latencies, [f"d{j}" for j in range(latencies.shape[1])], names)
    assert np.all(np.isfinite(prior.mean))
    with pytest.raises(KBError, match="at least 2 known devices"):
        learn_prior(features, latencies[:, :1], ["d0"], names)
    with pytest.raises(KBError, match="at least 3"):
        fit_device(prior, features[:2], latencies[:2, 1])
    with pytest.raises(KBError, match="positive"):
        fit_device(prior, features[:5], -latencies[:5, 1])


def test_fragment_counts_with_a_vocabulary_mark_foreign_architectures():
    features, names = fragment_count_encoding([["a", "b", "a"], ["b", "z"]], ["a", "b"])
    assert names == ("a", "b", "intercept")
    assert features[0].tolist() == [2.0, 1.0, 1.0]
    assert np.isnan(features[1]).all()


# -- through the KB and the CLI ------------------------------------------------------------------

CELLS = 80


@pytest.fixture
def kb_without_pixel3(shared_data, cli, tmp_path):
    """A KB with 80 cells' latencies on every device but pixel3, and pixel3's as the truth."""
    folder = tmp_path / "nb201"
    folder.mkdir()
    csv_head(shared_data / "nb201" / "latency_ms.csv", folder / "latency_ms.csv", CELLS, drop=("pixel3",))
    assert cli("init").exit_code == 0
    assert cli("ingest", folder, "--format", "nb201").exit_code == 0
    truth = pd.read_csv(shared_data / "nb201" / "latency_ms.csv", nrows=CELLS)[["arch_str", "pixel3"]]
    return truth


def _samples(truth: pd.DataFrame, rows, path: Path, scale: float = 1.0) -> Path:
    pd.DataFrame({"arch": truth["arch_str"].iloc[rows],
                  "latency_ms": truth["pixel3"].iloc[rows] * scale}).to_csv(path, index=False)
    return path


def test_cli_fit_then_predict_a_new_device(cli, kb_without_pixel3, tmp_path):
    truth = kb_without_pixel3
    samples = _samples(truth, range(10), tmp_path / "s.csv")
    fitted = cli("latency", "fit", "--device", "my-pixel", "--samples", samples, "--json")
    assert fitted.exit_code == 0, fitted.output
    summary = json.loads(fitted.output)
    assert (summary["samples"], summary["known_devices"], summary["architectures"]) == (10, 20, CELLS)
    result = cli("latency", "predict", "--device", "my-pixel", "--json")
    assert result.exit_code == 0, result.output
    predictions = {p["name"]: p for p in json.loads(result.output)["predictions"]}
    unseen = truth.iloc[10:]
    predicted = [predictions[c]["predicted_ms"] for c in unseen["arch_str"]]
    assert spearmanr(predicted, unseen["pixel3"]).statistic > 0.7
    assert predictions[truth["arch_str"][0]]["measured_ms"] == pytest.approx(truth["pixel3"][0])


def test_measuring_again_replaces_a_sample(cli, kb_without_pixel3, tmp_path):
    truth = kb_without_pixel3
    cli("latency", "fit", "--device", "my-pixel", "--samples", _samples(truth, range(6), tmp_path / "a.csv"))
    again = cli("latency", "fit", "--device", "my-pixel", "--json",
                "--samples", _samples(truth, range(3, 8), tmp_path / "b.csv", scale=1.1))
    assert json.loads(again.output)["samples"] == 8
    one = json.loads(cli("latency", "predict", "--device", "my-pixel", "--arch",
                         truth["arch_str"][4], "--json").output)["predictions"]
    assert one[0]["measured_ms"] == pytest.approx(1.1 * truth["pixel3"][4])


def test_cli_errors_are_one_line(cli, kb_without_pixel3, tmp_path):
    missing = cli("latency", "predict", "--device", "nobody")
    assert missing.exit_code == 1 and "kb latency fit --device nobody" in missing.output
    bad = tmp_path / "bad.csv"
    bad.write_text("arch,latency_ms\n|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|,-3\n")
    result = cli("latency", "fit", "--device", "x", "--samples", bad)
    assert result.exit_code == 1 and "row 1" in result.output and "Traceback" not in result.output


def test_benchmark_runs_quick(shared_data, tmp_path):
    out = tmp_path / "transfer.json"
    result = subprocess.run([sys.executable, str(BENCHMARKS / "bench_transfer.py"), "--quick",
                             "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "HELP, published" in result.stdout and "raw sum" in result.stdout
    numbers = json.loads(out.read_text())
    assert len(numbers["nb201"]["devices"]) == 3 and "pixel4" in numbers["mobile_ops"]
