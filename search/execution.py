"""Where trials run: in this process's thread (one at a time), on a local Dask cluster of N
worker processes, or on an existing Dask cluster named by its scheduler address.

All three hand back futures and wait the same way, so a search or a bootstrap is written
once. A trial function (``search.trial.run_trial``) plans itself on the worker that runs it,
so a remote worker records its own hardware; trials run in child processes of their own
(``search.isolation``), which a daemonic Dask worker may start.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable

from kb.errors import KBError


class Executor:
    """``submit`` work, ``wait_first`` for any of it; a context manager that shuts down what
    it started (a scheduler given by address is left running)."""

    def __init__(self, workers: int = 1, scheduler: str | None = None):
        if not (isinstance(workers, int) and workers >= 1):
            raise KBError(f"workers must be a whole number >= 1, not {workers!r}")
        self.workers = workers
        self.scheduler = scheduler
        self._pool = None
        self._client = None
        self._cluster = None

    @property
    def description(self) -> str:
        if self.scheduler:
            return f"Dask cluster at {self.scheduler}"
        if self.workers > 1:
            return f"local Dask cluster, {self.workers} workers"
        return "this process, one trial at a time"

    @property
    def slots(self) -> int:
        """How many trials may run at once."""
        if self._client is not None and self.scheduler:
            return max(1, sum(w.get("nthreads", 1) for w in
                              self._client.scheduler_info()["workers"].values()))
        return self.workers

    def __enter__(self) -> Executor:
        if self.scheduler is None and self.workers == 1:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="metakb-trial")
            return self
        import logging

        from distributed import Client, LocalCluster

        # Dask's own INFO lines (worker start, nanny) would drown the search's progress.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        try:
            if self.scheduler:
                self._client = Client(self.scheduler, timeout="10s")
            else:
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                             processes=True, dashboard_address=":0",
                                             silence_logs=logging.WARNING)
                self._client = Client(self._cluster)
        except (OSError, TimeoutError) as e:
            self.__exit__(None, None, None)
            raise KBError(f"cannot reach the Dask scheduler {self.scheduler or '(local)'}: "
                          f"{e}") from None
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._pool = self._client = self._cluster = None

    def submit(self, function: Callable, /, *args, **kwargs):
        if self._pool is not None:
            return self._pool.submit(function, *args, **kwargs)
        # pure=False: the same trial submitted twice (a resumed search) runs twice, as asked.
        return self._client.submit(function, *args, pure=False, **kwargs)

    def wait_first(self, futures: Iterable) -> tuple[set, set]:
        """(done, not done): returns once at least one of ``futures`` has finished."""
        futures = list(futures)
        if self._pool is not None:
            done, pending = concurrent.futures.wait(
                futures, return_when=concurrent.futures.FIRST_COMPLETED)
        else:
            from distributed import wait

            done, pending = wait(futures, return_when="FIRST_COMPLETED")
        return set(done), set(pending)
