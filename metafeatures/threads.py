"""Limit the thread pools of native libraries (BLAS, OpenMP) for a block of code.

A limit reaches only the libraries loaded when the block starts, so ``load`` names modules to
import first (SciPy for its BLAS, scikit-learn for its OpenMP). Finding the loaded libraries
means walking the process's shared objects (milliseconds, a quarter of a small dataset's
extraction), so the search is kept and redone only once modules have been imported since:
a library arrives with the module that loads it, as torch's or scikit-learn's OpenMP does in
a long-lived worker that imports them later.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_found: tuple[int, object] | None = None  # (len(sys.modules) when searched, the controller)


@contextmanager
def limit_threads(limit: int, user_api: str | None = None, *,
                  load: Iterable[str] = ()) -> Iterator[None]:
    """Within the block, native thread pools use at most ``limit`` threads: those of
    ``user_api`` ("blas" or "openmp"), or all of them. ``load``: modules to import first."""
    for module in load:
        importlib.import_module(module)
    with _controller().limit(limits=limit, user_api=user_api):
        yield


def _controller():
    global _found
    from threadpoolctl import ThreadpoolController

    with _lock:
        if _found is None or _found[0] != len(sys.modules):
            count = len(sys.modules)  # before: the search itself may import modules
            _found = (count, ThreadpoolController())
        return _found[1]
