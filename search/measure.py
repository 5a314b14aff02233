"""Measure an ONNX model on a profile: latency at batch 1 and batch N, peak memory, outputs.

Measurement runs in a fresh process (``measure_in_fresh_process``, through
``search.isolation``) that imports only numpy and ONNX Runtime: the memory figure is then the
model's own (session, weights, activations) rather than whatever training left in the heap, and
each measurement starts from the same state, which is what makes latencies repeatable across
processes. Its parent only waits meanwhile (no memory limit is set, so nothing is sampled).

Settings that make timings comparable: one session per profile, intra-op threads as the
profile says, one inter-op thread, sequential execution, thread spinning off (a spinning pool
burns a core between runs and makes the next run look fast), untimed warm-up runs, garbage
collection paused while timing, and batch-1 runs cycling through real rows so a tree's
latency is not that of a single path.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kb.errors import first_line
from search.profiles import CPU_PROVIDER, Profile

MIN_TIMED_RUNS = 10
TIMING_BLOCKS = 5
# Other processes using this much CPU while latency was timed (shared caches and memory
# bandwidth) make it a measurement on a busy machine, which is flagged.
BUSY_CORES = 0.25


class MeasureError(Exception):
    """The model could not be loaded or run on the profile; the message says why."""


@dataclass(frozen=True)
class MeasureRequest:
    model_path: str
    profile: Profile
    threads: int  # intra-op threads, resolved for this machine
    single_rows: list[dict[str, np.ndarray]]  # batch-1 inputs, cycled through
    batch: dict[str, np.ndarray] | None  # the batch-N input; None: batch 1 only
    parity_rows: dict[str, np.ndarray]
    output: str  # the output read for parity
    # "wall" (what a user waits) or "cpu": the calling thread's CPU time, which a busy machine
    # does not inflate; it equals the wall time of a one-thread session on a quiet machine
    # and misses the work of other threads, so it is for one-thread profiles only.
    clock: str = "wall"


@dataclass(frozen=True)
class Measurement:
    latency_p50_ms: float
    latency_p95_ms: float
    batch_p50_ms: float | None  # None when the request has no batch-N input
    batch_p95_ms: float | None
    peak_memory_mb: float  # resident memory of loading and running, above the bare runtime
    background_cpu: float | None  # CPU other processes used while timing (None: unknown)
    outputs: np.ndarray  # the output on the parity rows


def session_options(threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only; warnings would reach the user's terminal
    return options


def providers(profile: Profile) -> list[str]:
    # Operators an accelerator lacks (the ai.onnx.ml tree and SVM operators, for one) fall
    # back to the CPU, as they would in deployment.
    return [profile.execution_provider] + (
        [CPU_PROVIDER] if profile.execution_provider != CPU_PROVIDER else [])


def measure(request: MeasureRequest) -> Measurement:
    """Measure in this process (``measure_in_fresh_process`` is what trials use)."""
    import onnxruntime as ort

    profile = request.profile
    memory = _PeakMemory()
    try:
        session = ort.InferenceSession(request.model_path, sess_options=session_options(request.threads),
                                       providers=providers(profile))
    except Exception as e:
        raise MeasureError(f"ONNX Runtime cannot load the model: {_error(e)}") from e
    if profile.execution_provider not in session.get_providers():
        # ONNX Runtime falls back to the CPU with only a warning when an accelerator's provider
        # cannot load (a missing CUDA library, say): timing that would be a CPU measurement
        # recorded under the accelerator's profile.
        raise MeasureError(f"{profile.execution_provider} is not usable here (ONNX Runtime fell back "
                           f"to {', '.join(session.get_providers())}); install its runtime "
                           f"(onnxruntime-gpu and the CUDA libraries for CUDAExecutionProvider) or "
                           f"measure under another profile")
    try:
        def run(feed):
            session.run(None, feed)

        background = _BackgroundLoad()
        # Warm-up passes over every batch-1 input at least once, so no timed run is the first
        # to walk its row's path through the model (a cold start, several times slower).
        single = time_runs(run, request.single_rows, max(profile.warmup, len(request.single_rows)),
                           profile.repeats, profile.min_measure_seconds, profile.max_measure_seconds,
                           clock=CLOCKS[request.clock])
        batch = None if request.batch is None else time_runs(
            run, [request.batch], max(1, profile.warmup // 3),
            max(MIN_TIMED_RUNS, profile.repeats // 3),
            profile.min_measure_seconds / 2, profile.max_measure_seconds,
            clock=CLOCKS[request.clock])
        peak_mb = memory.peak_mb()
        background_cpu = background.cores()
        outputs = session.run([request.output], request.parity_rows)[0]
    except Exception as e:
        raise MeasureError(f"ONNX Runtime cannot run the model: {_error(e)}") from e
    return Measurement(
        latency_p50_ms=typical(single), latency_p95_ms=float(np.percentile(single, 95)),
        batch_p50_ms=None if batch is None else typical(batch),
        batch_p95_ms=None if batch is None else float(np.percentile(batch, 95)),
        peak_memory_mb=peak_mb, background_cpu=background_cpu, outputs=np.asarray(outputs))


CLOCKS = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}


def time_runs(run, feeds: list, warmup: int, repeats: int, min_seconds: float,
              max_seconds: float, clock=time.perf_counter_ns) -> np.ndarray:
    """Milliseconds of calls of ``run`` after ``warmup`` untimed ones, cycling through
    ``feeds``: at least ``repeats`` calls and ``min_seconds`` of them, and no more once
    ``max_seconds`` have passed (``MIN_TIMED_RUNS`` calls at the least). ``clock``: a
    nanosecond clock, wall time unless told (``CLOCKS``).

    A time floor matters for fast models: a hundred 10-microsecond runs last a millisecond, and
    one stall of the machine in that millisecond moves the median.
    """
    for i in range(warmup):
        run(feeds[i % len(feeds)])
    times = []
    started = time.perf_counter()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        i = 0
        while True:
            start = clock()
            run(feeds[i % len(feeds)])
            times.append(clock() - start)
            i += 1
            elapsed = time.perf_counter() - started
            if len(times) >= MIN_TIMED_RUNS and elapsed > max_seconds:
                break
            if len(times) >= repeats and elapsed >= min_seconds:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return np.asarray(times, dtype=np.float64) / 1e6


def typical(times_ms: np.ndarray) -> float:
    """The median of the quietest of ``TIMING_BLOCKS`` consecutive stretches of runs.

    A stall of the machine (another virtual machine on the host, a kernel thread) slows a
    whole stretch of runs, up to a third for a model whose weights outgrow the CPU caches,
    without the process or its neighbours using more CPU. The quietest stretch's median is
    what repeats from one process to the next; p95, over all runs, keeps the stalls.
    """
    blocks = np.array_split(times_ms, min(TIMING_BLOCKS, len(times_ms)))
    return float(min(np.median(block) for block in blocks))


class _PeakMemory:
    """Peak resident memory from now on, above the resident memory now.

    On Linux the kernel's high-water mark is reset first (``/proc/self/clear_refs``), so the
    peak is that of what follows; elsewhere the process-lifetime peak is used, which in a
    fresh measuring process is the same up to the imports.
    """

    def __init__(self):
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._linux = True
        except OSError:
            self._linux = False
        self._start = self._status("VmRSS") if self._linux else _resident_bytes()

    def peak_mb(self) -> float:
        peak = self._status("VmHWM") if self._linux else _lifetime_peak_bytes()
        return max(0.0, (peak - self._start) / 2**20)

    @staticmethod
    def _status(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise MeasureError(f"/proc/self/status has no {field}")


class _BackgroundLoad:
    """CPU time other processes (and the hypervisor, as steal) take from now on, in cores.

    Latency measured next to a busy neighbour is slower (shared caches, memory bandwidth, a
    stolen core); this says how busy the machine was, so such measurements can be told
    apart. Linux only: elsewhere it is None.
    """

    def __init__(self):
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
        except OSError:
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields)
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
        own = resource.getrusage(resource.RUSAGE_SELF)
        return time.perf_counter(), busy, own.ru_utime + own.ru_stime

    def cores(self) -> float | None:
        end = self._sample()
        if self._start is None or end is None:
            return None
        wall = end[0] - self._start[0]
        others = (end[1] - self._start[1]) - (end[2] - self._start[2])
        # The kernel counts in clock ticks (10 ms): below that, a quiet machine reads as 0.
        return max(0.0, others / wall) if wall > 0 else None


def _resident_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _lifetime_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def _error(error: Exception) -> str:
    return first_line(error, with_type=True, limit=300)


# -- the measuring process ---------------------------------------------------------------------


def measure_in_fresh_process(request: MeasureRequest, timeout_s: float) -> Measurement:
    """``measure(request)`` in a new Python process; MeasureError if it fails or times out."""
    from search.isolation import Limits, run_isolated

    finished = run_isolated(_measure_there, {"request": request},
                            Limits(time_s=max(1.0, timeout_s)), what="measuring")
    value = _returned(finished, timeout_s)
    if isinstance(value, str):
        raise MeasureError(value)
    return value


def measure_all_in_fresh_process(requests: list[MeasureRequest],
                                 timeout_s: float) -> list[Measurement | str]:
    """``measure`` of each request in turn, in one new Python process: one process start for
    many small models (network fragments). Each entry is the measurement or why that model
    could not be measured; MeasureError if the process fails or times out."""
    from search.isolation import Limits, run_isolated

    finished = run_isolated(_measure_all_there, {"requests": requests},
                            Limits(time_s=max(1.0, timeout_s)), what="measuring")
    return _returned(finished, timeout_s)


def _returned(finished, timeout_s: float):
    if finished.ended == "returned":
        return finished.value
    if finished.ended == "timeout":
        raise MeasureError(f"measuring took longer than {timeout_s:.0f} s")
    raise MeasureError(finished.error)  # died (or raised past _measure_there)


def _measure_all_there(requests: list[MeasureRequest], report) -> list[Measurement | str]:
    return [_measure_there(request, report) for request in requests]


def _measure_there(request: MeasureRequest, report) -> Measurement | str:
    """In the measuring process: the measurement, or why there is none."""
    try:
        return measure(request)
    except MeasureError as e:
        return str(e)
    except Exception as e:  # anything else is reported, not lost with the process
        return _error(e)
