"""The limited child process every isolated trial runs in: each way a run can end."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from search.isolation import Limits, run_isolated


@pytest.fixture(autouse=True)
def importable_from_the_child(monkeypatch):
    # The child unpickles these functions by module name, so it must find this file.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))


def add(a, b, report):
    report(stage="adding")
    return a + b


def fail(report):
    report(stage="failing", score=0.5)
    raise ValueError("no good")


def sleep_forever(report):
    report(stage="sleeping", score=0.25)
    time.sleep(600)


def hog_memory(report):
    report(stage="allocating")
    blocks = []
    while True:
        blocks.append(bytearray(50 * 2**20))
        for i in range(0, len(blocks[-1]), 4096):  # touch every page so it is resident
            blocks[-1][i] = 1
        time.sleep(0.02)


def fail_on_two_lines(report):
    raise ValueError("first line\nsecond line")


def nest(pid_file, report):
    """A run_isolated inside a run_isolated, as a trial's measurement is."""
    return run_isolated(record_pid_then_sleep, {"pid_file": pid_file}, Limits(time_s=600))


def record_pid_then_sleep(pid_file, report):
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(600)


def die(report):
    report(stage="dying")
    os.kill(os.getpid(), signal.SIGKILL)


def test_returned():
    finished = run_isolated(add, {"a": 2, "b": 3}, Limits(time_s=60))
    assert (finished.ended, finished.value, finished.reported) == ("returned", 5, {"stage": "adding"})
    assert finished.peak_memory_mb > 0


def test_raised_keeps_what_was_reported():
    finished = run_isolated(fail, {}, Limits(time_s=60))
    assert finished.ended == "raised"
    assert finished.error.startswith("ValueError: no good at test_isolation.py:")
    assert finished.reported == {"stage": "failing", "score": 0.5}


def test_timeout_kills_the_child():
    started = time.perf_counter()
    finished = run_isolated(sleep_forever, {}, Limits(time_s=1.5))
    assert finished.ended == "timeout"
    assert finished.reported == {"stage": "sleeping", "score": 0.25}
    assert time.perf_counter() - started < 20


def test_memory_limit_kills_the_child():
    finished = run_isolated(hog_memory, {}, Limits(time_s=60, memory_mb=400))
    assert finished.ended == "memory"
    assert finished.reported == {"stage": "allocating"}
    assert finished.peak_memory_mb > 400


def test_a_killed_child_is_reported_as_died():
    finished = run_isolated(die, {}, Limits(time_s=60))
    assert finished.ended == "died"
    assert "SIGKILL" in finished.error and "out of memory" in finished.error


def test_an_error_is_reported_on_one_line():
    finished = run_isolated(fail_on_two_lines, {}, Limits(time_s=60))
    assert finished.ended == "raised"
    assert finished.error.startswith("ValueError: first line at test_isolation.py:")
    assert "\n" not in finished.error


def test_a_timeout_kills_a_nested_child_in_its_own_session_too(tmp_path):
    import psutil

    pid_file = tmp_path / "pid"
    finished = run_isolated(nest, {"pid_file": str(pid_file)}, Limits(time_s=4))
    assert finished.ended == "timeout" and pid_file.exists()
    grandchild = int(pid_file.read_text())
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        try:
            if psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        os.kill(grandchild, signal.SIGKILL)
        pytest.fail("the nested child outlived the timeout")
