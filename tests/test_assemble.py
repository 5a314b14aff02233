"""Assembly under a latency limit: choosing candidates (pure), `kb fragments assemble` on a
KB of NAS-Bench-201 cells, and the benchmark's quick run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import csv_head

from fragments.assemble import best_measured, predicted_scores, propose, score_contributions
from kb.errors import KBError

BENCHMARKS = Path(__file__).parent / "benchmarks"


def test_propose_keeps_the_best_that_fit_with_the_margin():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    latency = np.array([10.0, 9.6, 9.0, 5.0, 1.0])
    # 9.6 x 1.05 = 10.08 > 10: the margin rules the second one out as well as the first.
    assert propose(scores, latency, 10.0, 2, margin=0.05).tolist() == [2, 3]
    assert propose(scores, latency, 10.0, 2, margin=0.0).tolist() == [0, 1]
    assert propose(scores, latency, 10.0, 9, margin=0.0, exclude=[0]).tolist() == [1, 2, 3, 4]
    assert propose(scores, latency, 0.5, 3).tolist() == []
    with pytest.raises(KBError):
        propose(scores, latency, 0.0, 1)


def test_the_pick_is_judged_on_measured_latency():
    scores = np.array([0.9, 0.8, 0.7])
    assert best_measured({0: 10.5, 1: 9.0, 2: 3.0}, scores, 10.0) == 1
    assert best_measured({0: 10.5}, scores, 10.0) is None


def test_contributions_recover_an_additive_score_and_recorded_scores_win():
    rng = np.random.default_rng(0)
    features = np.c_[rng.integers(0, 2, (200, 6)).astype(float), np.ones(200)]
    truth = np.array([0.05, -0.02, 0.01, 0.03, 0.0, -0.04, 0.6])
    contributions = score_contributions(features, features @ truth, ridge=1e-6)
    assert np.allclose(contributions, truth, atol=1e-4)
    scores = predicted_scores(features[:3], contributions, {1: 0.99})
    assert scores[1] == 0.99 and scores[0] == pytest.approx(features[0] @ truth, abs=1e-4)


CELLS = 120


@pytest.fixture
def nb201_kb(shared_data, cli, tmp_path):
    folder = tmp_path / "nb201"
    folder.mkdir()
    for name in ("latency_ms.csv", "accuracy.csv"):
        csv_head(shared_data / "nb201" / name, folder / name, CELLS)
    assert cli("init").exit_code == 0
    assert cli("ingest", folder, "--format", "nb201").exit_code == 0
    latency = pd.read_csv(folder / "latency_ms.csv")
    accuracy = pd.read_csv(folder / "accuracy.csv")
    return latency.assign(cifar100=accuracy["CIFAR100TestAccuracy200Epochs"] / 100)


def test_assemble_on_recorded_latencies_picks_the_best_that_fits(cli, nb201_kb):
    limit = float(nb201_kb["pixel3"].median())
    result = cli("fragments", "assemble", "--space", "nb201", "--hardware", "pixel3",
                 "--max-latency-ms", limit, "-k", "3", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    fitting = nb201_kb[nb201_kb["pixel3"] * 1.05 <= limit]
    best = fitting.sort_values("cifar100", ascending=False)["arch_str"].head(3).tolist()
    assert [c["name"] for c in out["candidates"]] == best
    assert all(c["score_recorded"] for c in out["candidates"])
    assert out["pick"] == out["candidates"][0]["arch_id"]


def test_assemble_for_a_device_known_by_samples(cli, nb201_kb, tmp_path):
    samples = tmp_path / "s.csv"
    pd.DataFrame({"arch": nb201_kb["arch_str"][:10],
                  "latency_ms": nb201_kb["pixel3"][:10] * 2}).to_csv(samples, index=False)
    assert cli("latency", "fit", "--device", "slow-phone", "--samples", samples).exit_code == 0
    result = cli("fragments", "assemble", "--space", "nb201", "--hardware", "slow-phone",
                 "--max-latency-ms", 25, "-k", "4", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["pick"] is None  # nothing is measured on a device that is not here
    assert len(out["candidates"]) == 4
    assert all(c["predicted_ms"] * 1.05 <= 25 for c in out["candidates"])
    # Cells the KB has no accuracy for get one from their edges' learned contributions.
    assert not all(c["score_recorded"] for c in out["candidates"])


def test_assemble_errors(cli, nb201_kb):
    no_dataset = cli("fragments", "assemble", "--space", "mlp", "--hardware", "cpu-1t",
                     "--max-latency-ms", 1)
    assert no_dataset.exit_code == 1 and "--dataset" in no_dataset.output
    impossible = cli("fragments", "assemble", "--space", "nb201", "--hardware", "pixel3",
                     "--max-latency-ms", 0.001)
    assert impossible.exit_code == 1 and "fastest" in impossible.output


def test_benchmark_runs_quick(shared_data, tmp_path):
    out = tmp_path / "assembly.json"
    result = subprocess.run([sys.executable, str(BENCHMARKS / "bench_assembly.py"), "--quick",
                             "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    numbers = json.loads(out.read_text())
    measured = numbers["methods"]["metakb_measured"]
    assert measured["cases"] == 9 and measured["violations"] == 0
