"""Run a function in a child process under a wall-clock limit and a memory limit.

The child is a fresh ``python -m search.isolation`` started with ``subprocess`` (not
``multiprocessing``), so it also works inside daemonic processes such as Dask workers, which
may not have multiprocessing children, and it imports only what the function's module does.
Under a memory limit the parent samples the resident memory of the child and its descendants;
past either limit it kills the child's process group and every descendant: a limit holds
however the function misbehaves (a C extension that never returns, a runaway allocation).
Without a memory limit the parent only waits, so it takes no CPU from a child that is timing
something (``search.measure``).

The function is called as ``fn(**kwargs, report=report)``; ``report(**values)`` records what
it has reached so far (a stage name, a score), so a run cut short still says where it was.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kb.errors import first_line

POLL_SECONDS = 0.1  # how often memory is sampled under a memory limit


@dataclass(frozen=True)
class Limits:
    time_s: float | None = None
    memory_mb: float | None = None  # resident memory of the child and its descendants


@dataclass(frozen=True)
class Finished:
    ended: str  # "returned", "raised", "timeout", "memory" or "died"
    seconds: float
    # The largest resident memory seen: of the whole process tree where sampled (under a
    # memory limit), and of the child itself (or of its largest finished descendant).
    peak_memory_mb: float
    value: object = None  # what the function returned
    error: str | None = None  # the exception ("raised") or how the process died ("died")
    reported: dict = field(default_factory=dict)  # the last values passed to report()


def run_isolated(fn: Callable, kwargs: dict, limits: Limits, *, what: str = "trial") -> Finished:
    """Call ``fn(**kwargs, report=...)`` in a child process; ``fn`` and ``kwargs`` must pickle.
    ``what`` names the process in messages ("the trial process was killed by SIGKILL")."""
    import psutil

    with tempfile.TemporaryDirectory(prefix=f"metakb-{what}-") as folder:
        folder = Path(folder)
        (folder / "call.pkl").write_bytes(pickle.dumps((fn, kwargs), protocol=pickle.HIGHEST_PROTOCOL))
        started = time.perf_counter()
        with open(folder / "stderr", "wb") as stderr:
            process = subprocess.Popen([sys.executable, "-m", "search.isolation", str(folder)],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=stderr, start_new_session=True)
        peak = 0.0
        ended = None
        try:
            if limits.memory_mb is None:
                own_peak = _wait(process, limits.time_s)
                if own_peak is None:
                    ended = "timeout"
                    _kill_tree(psutil, process)
                else:
                    peak = own_peak
            else:
                while (own_peak := _reap(process)) is None:
                    resident = _tree_resident_mb(psutil, process.pid)
                    peak = max(peak, resident)
                    if resident > limits.memory_mb:
                        ended = "memory"
                    elif limits.time_s is not None and time.perf_counter() - started > limits.time_s:
                        ended = "timeout"
                    if ended:
                        _kill_tree(psutil, process)
                        break
                    time.sleep(POLL_SECONDS)
                else:
                    peak = max(peak, own_peak)
        except BaseException:  # interrupted (Ctrl-C, a cancelled Dask task): leave no orphans
            _kill_tree(psutil, process)
            raise
        seconds = time.perf_counter() - started
        reported = _read_pickle(folder / "reported.pkl") or {}
        if ended:
            return Finished(ended, seconds, peak, reported=reported)
        result = _read_pickle(folder / "result.pkl")
        if result is None:
            return Finished("died", seconds, peak, error=_death(process.returncode, folder, what),
                            reported=reported)
        outcome, value = result
        if outcome == "raised":
            return Finished("raised", seconds, peak, error=value, reported=reported)
        return Finished("returned", seconds, peak, value=value, reported=reported)


def _tree_resident_mb(psutil, pid: int) -> float:
    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for p in processes:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # exited between listing and reading
            pass
    return total / 2**20


def _reap(process: subprocess.Popen, *, block: bool = False) -> float | None:
    """None while the child runs; once it has exited, its peak resident memory in MB (the
    kernel's, which also covers descendants it waited for), its exit status recorded."""
    pid, status, usage = os.wait4(process.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)  # bytes or KiB


def _wait(process: subprocess.Popen, timeout_s: float | None) -> float | None:
    """Block until the child exits (its peak memory, as ``_reap``) or ``timeout_s`` passes
    (None). The parent sleeps in the kernel meanwhile: a poll loop would wake it fifty times a
    second beside a child that may be timing a model on the next core."""
    outcome: list[float] = []

    def reap() -> None:
        try:
            outcome.append(_reap(process, block=True))
        except ChildProcessError:  # reaped by _kill_tree after a timeout
            pass

    waiter = threading.Thread(target=reap, daemon=True)
    waiter.start()
    waiter.join(timeout_s)
    return outcome[0] if outcome else None


def _kill_tree(psutil, process: subprocess.Popen) -> None:
    """Kill the child, its process group and its descendants, which may have left the group
    (a nested ``run_isolated`` starts its own)."""
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for descendant in descendants:
        try:
            descendant.kill()
        except psutil.Error:
            pass
    process.wait()


def _read_pickle(path: Path):
    try:
        return pickle.loads(path.read_bytes())
    except (OSError, EOFError, pickle.UnpicklingError):
        return None


def _death(returncode: int, folder: Path, what: str) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (the system may have run out of memory)" if name == "SIGKILL" else ""
        return f"the {what} process was killed by {name}{hint}"
    lines = (folder / "stderr").read_text(errors="replace").strip().splitlines()
    return f"the {what} process exited with status {returncode}" + (f": {lines[-1][:300]}" if lines else "")


# -- the child ---------------------------------------------------------------------------------


class _Reporter:
    """``report(**values)`` for the child: keeps every value reported so far on disk."""

    def __init__(self, path: Path):
        self.path = path
        self.values: dict = {}

    def __call__(self, **values) -> None:
        self.values.update(values)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(pickle.dumps(self.values, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(temporary, self.path)  # the parent never reads half a file


def _child(folder: Path) -> None:
    fn, kwargs = pickle.loads((folder / "call.pkl").read_bytes())
    try:
        result = ("returned", fn(**kwargs, report=_Reporter(folder / "reported.pkl")))
    except Exception as e:
        last = traceback.extract_tb(e.__traceback__)[-1:]
        where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
        result = ("raised", f"{first_line(e, with_type=True, limit=500)}{where}")
    (folder / "result.pkl").write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    # The imported module's copy, so pickled classes resolve to their real module names.
    from search.isolation import _child as child

    child(Path(sys.argv[1]))
