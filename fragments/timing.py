"""Time ONNX models of fragments and whole networks on a hardware profile.

The timer is the search's (``search.measure``: a fresh process that imports only numpy and
ONNX Runtime, warm-up, the quietest stretch's median, threads as the profile says); here it
times many small models in one process (``measure_all_in_fresh_process``), since a process
start costs more than timing a fragment. Every model is also checked for parity: ONNX
Runtime's output against the torch module's on the same input.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fragments.blocks import Shape
from fragments.build import relative_difference
from kb.errors import KBError
from search.profiles import Profile

SINGLE_INPUTS = 4  # distinct batch-1 inputs cycled through while timing
# Models per measuring process: enough to amortise its start, few enough that one crash or
# timeout loses little.
CHUNK = 20


@dataclass(frozen=True)
class ModelToTime:
    name: str
    module: object  # the torch module the ONNX model was exported from (for parity)
    input_shapes: tuple[Shape, ...]


@dataclass(frozen=True)
class Timed:
    name: str
    p50_ms: float | None  # None when it could not be measured (error says why)
    p95_ms: float | None = None
    memory_mb: float | None = None
    background_cpu: float | None = None
    parity_error: float | None = None
    error: str | None = None


def time_models(models: Sequence[ModelToTime], profile: Profile, threads: int, *,
                clock: str = "wall", seed: int = 0,
                progress: Callable[[int, int], None] | None = None) -> list[Timed]:
    """Batch-1 latency of each model on ``profile`` with ``threads`` intra-op threads, in
    order; a model that fails to export, load, run or match its torch module gets ``error``.
    ``clock``: "wall", or "cpu" for a one-thread profile on a busy machine (see
    ``search.measure.MeasureRequest``)."""
    if clock == "cpu" and threads != 1:
        raise KBError(f"CPU-time latency is only meaningful with one thread; profile "
                      f"{profile.name} runs {threads}")
    out: list[Timed] = []
    for start in range(0, len(models), CHUNK):
        out.extend(_time_chunk(models[start:start + CHUNK], profile, threads, clock, seed + start))
        if progress is not None:
            progress(len(out), len(models))
    return out


def _time_chunk(models: Sequence[ModelToTime], profile: Profile, threads: int, clock: str,
                seed: int) -> list[Timed]:
    from fragments.build import OUTPUT, random_inputs, to_onnx, torch_outputs
    from search.export import ExportError, quantize_int8
    from search.measure import MeasureError, MeasureRequest, measure_all_in_fresh_process

    rng = np.random.default_rng(seed)
    prepared: list[tuple[ModelToTime, MeasureRequest | None, np.ndarray | None, str | None]] = []
    with tempfile.TemporaryDirectory(prefix="metakb-fragments-") as folder:
        for i, item in enumerate(models):
            parity_feed = random_inputs(item.input_shapes, 2, rng)
            try:
                model = to_onnx(item.module, item.input_shapes)
                if profile.quantization == "int8":
                    model = quantize_int8(model)[0]
            except (ExportError, RuntimeError, ValueError) as e:
                prepared.append((item, None, None, f"export failed: {e}"))
                continue
            path = Path(folder) / f"{i}.onnx"
            path.write_bytes(model.SerializeToString())
            request = MeasureRequest(
                model_path=str(path), profile=profile, threads=threads,
                single_rows=[random_inputs(item.input_shapes, 1, rng) for _ in range(SINGLE_INPUTS)],
                batch=None, parity_rows=parity_feed, output=OUTPUT, clock=clock)
            prepared.append((item, request, torch_outputs(item.module, parity_feed), None))
        requests = [request for _, request, _, _ in prepared if request is not None]
        timeout = len(requests) * (2 * profile.max_measure_seconds + 5) + 30
        try:
            measured = iter(measure_all_in_fresh_process(requests, timeout) if requests else [])
        except MeasureError as e:
            measured = iter([str(e)] * len(requests))
        return [_timed(item, next(measured) if request is not None else None, expected, error,
                       profile)
                for item, request, expected, error in prepared]


def _timed(item: ModelToTime, measurement, expected, error: str | None, profile: Profile) -> Timed:
    if error is not None:
        return Timed(item.name, None, error=error)
    if isinstance(measurement, str):
        return Timed(item.name, None, error=measurement)
    parity = relative_difference(measurement.outputs, expected)
    # int8 weights move outputs by design; the parity is reported, not held against them.
    mismatch = parity > profile.tolerance and profile.quantization == "none"
    return Timed(item.name, measurement.latency_p50_ms, measurement.latency_p95_ms,
                 measurement.peak_memory_mb, measurement.background_cpu, parity,
                 error=f"ONNX output differs from torch by {parity:.2g} (relative; tolerance "
                       f"{profile.tolerance:g})" if mismatch else None)
