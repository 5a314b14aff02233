"""The CPU clock the fragment timings may use: it ignores time spent waiting, the wall clock
does not; and it is refused where other threads do the work."""

from __future__ import annotations

import time

import pytest

from fragments.timing import time_models
from kb.errors import KBError
from search.measure import CLOCKS, time_runs
from search.profiles import BUILTIN_PROFILES


def test_cpu_clock_ignores_waiting_that_the_wall_clock_counts():
    def wait(_):
        time.sleep(0.004)

    wall = time_runs(wait, ["x"], warmup=0, repeats=10, min_seconds=0, max_seconds=5)
    cpu = time_runs(wait, ["x"], warmup=0, repeats=10, min_seconds=0, max_seconds=5,
                    clock=CLOCKS["cpu"])
    assert wall.min() >= 4.0
    assert cpu.max() < 2.0


def test_cpu_clock_is_refused_with_several_threads():
    with pytest.raises(KBError, match="only meaningful with one thread"):
        time_models([], BUILTIN_PROFILES["cpu-all"], threads=2, clock="cpu")
