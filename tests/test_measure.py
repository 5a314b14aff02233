"""Timing and memory measurement: how series are timed and summarised (pure parts), and a real
measurement of a small model."""

from __future__ import annotations

import numpy as np

from search.measure import MIN_TIMED_RUNS, _BackgroundLoad, time_runs, typical


def test_typical_latency_is_the_quietest_stretch():
    quiet = np.full(400, 1.0)
    stalled = np.concatenate([np.full(200, 1.4), np.full(200, 1.0)])  # a stall, then quiet
    assert typical(quiet) == 1.0
    assert typical(stalled) == 1.0
    assert np.median(stalled) == 1.2  # what a plain median would have said
    assert typical(np.array([3.0, 1.0])) == 1.0  # fewer runs than stretches


def test_time_runs_honours_repeats_and_time_floor():
    calls = []

    def run(feed):
        calls.append(feed)

    times = time_runs(run, ["a", "b", "c"], warmup=2, repeats=25, min_seconds=0, max_seconds=10)
    assert len(times) == 25 and len(calls) == 27 and calls[:3] == ["a", "b", "a"]
    floor = time_runs(run, ["a"], warmup=0, repeats=10, min_seconds=0.05, max_seconds=10)
    assert len(floor) > 10 and (floor >= 0).all()


def test_time_runs_stops_at_the_ceiling_after_the_minimum():
    import time

    times = time_runs(lambda _: time.sleep(0.01), ["a"], warmup=0, repeats=1000, min_seconds=0,
                      max_seconds=0.05)
    assert len(times) == MIN_TIMED_RUNS
    assert times.min() >= 10  # milliseconds


def test_background_load_is_measured_on_linux():
    import sys

    load = _BackgroundLoad()
    sum(range(10**6))
    cores = load.cores()
    if sys.platform.startswith("linux"):
        assert cores is not None and cores >= 0


def test_the_measuring_process_loads_only_numpy_and_onnxruntime():
    import subprocess
    import sys

    # What the measuring process imports before ONNX Runtime: its runner and this module.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, search.isolation, search.measure; print(*sys.modules)"],
        capture_output=True, text=True, check=True).stdout.split()
    heavy = {"pandas", "sklearn", "scipy", "torch", "pyarrow", "duckdb", "onnx", "skl2onnx",
             "metafeatures", "psutil", "kb.store", "kb.schema"}
    assert "numpy" in loaded and not heavy & set(loaded)


def test_a_model_onnx_runtime_refuses_is_a_measure_error(tmp_path):
    import pytest

    from search.measure import MeasureError, MeasureRequest, measure_in_fresh_process
    from search.profiles import BUILTIN_PROFILES

    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a model")
    request = MeasureRequest(model_path=str(path), profile=BUILTIN_PROFILES["cpu-1t"], threads=1,
                             single_rows=[{}], batch={}, parity_rows={}, output="variable")
    with pytest.raises(MeasureError, match=r"^ONNX Runtime cannot load the model: \w+: ") as raised:
        measure_in_fresh_process(request, timeout_s=60)
    assert "\n" not in str(raised.value) and " at measure.py" not in str(raised.value)


def test_a_provider_onnx_runtime_falls_back_from_is_a_measure_error(tmp_path):
    """Where the CUDA provider cannot load, ONNX Runtime runs on the CPU: no CPU timing may be
    recorded under the cuda profile."""
    import onnxruntime
    import pytest
    from onnx import TensorProto, helper

    from search.measure import MeasureError, MeasureRequest, measure
    from search.profiles import BUILTIN_PROFILES

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this ONNX Runtime has a CUDA provider: nothing falls back")
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "relu.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    row = {"x": np.ones((1, 4), dtype=np.float32)}
    request = MeasureRequest(model_path=str(path), profile=BUILTIN_PROFILES["cuda"], threads=1,
                             single_rows=[row], batch=None, parity_rows=row, output="y")
    with pytest.raises(MeasureError, match="CUDAExecutionProvider is not usable here"):
        measure(request)
    cpu = measure(MeasureRequest(model_path=str(path), profile=BUILTIN_PROFILES["cpu-1t"], threads=1,
                                 single_rows=[row], batch=None, parity_rows=row, output="y"))
    assert cpu.latency_p50_ms > 0
