"""One BLAS thread for a block of code, without rescanning the process's libraries each time.

``threadpoolctl.threadpool_limits`` finds the loaded BLAS libraries by reading the process's
memory map on every call (milliseconds, a third of a small dataset's extraction); a controller
built once remembers them.
"""

from __future__ import annotations

import functools


@functools.cache
def _controller():
    import scipy.linalg  # noqa: F401  load every BLAS the package calls before looking for them
    import scipy.spatial  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS calls use a single thread."""
    return _controller().limit(limits=1, user_api="blas")
