"""Where page work runs: bounded pools of spawn-started page worker processes.

``run_dossier`` sends each page to an ``Executor`` (``concurrent.futures``). This module makes
the local ones:

* ``page_pool(workers)``: a pool for one call (``None``, i.e. in-process, for one worker);
* ``PagePool``: a long-lived pool for batch and watch, replaced when a worker dies. It is the
  local implementation of ``digitize.jobs.PageExecutor``.

Why ``spawn``: workers are independent of the caller's threads and locks (``fork`` in a
threaded process can deadlock), which is what makes ``run_dossier`` safe to call from threads.
Why one OCR thread per worker: parallelism comes from the pool; tesseract's default OpenMP
threading on top of it oversubscribes a small machine (5.1 s/page by default against 1.3 s/page
with ``OMP_THREAD_LIMIT=1``, identical text). The limit is set in the worker processes only,
never in the caller's environment.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager


def _init_worker() -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"
    # Ctrl-C belongs to the parent: a terminal sends SIGINT to the whole process group, and a
    # worker dying of it would break the pool under the dossier the parent is finishing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A parent killed with SIGKILL cannot shut its pool down; workers notice the orphaning and
    # leave instead of waiting forever on a queue nobody will write to.
    parent = os.getppid()

    def watch_parent() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def new_process_pool(count: int) -> ProcessPoolExecutor:
    """``count`` spawn-started page workers (see the module docstring for why spawn)."""
    return ProcessPoolExecutor(
        max_workers=count, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
    )


@contextmanager
def page_pool(workers: int = 0) -> Iterator[Executor | None]:
    """A bounded pool of page workers for one run; ``None`` (in-process) for a single worker.

    ``workers`` 0 means one per usable core.
    """
    count = workers or usable_cores()
    if count <= 1:
        yield None
        return
    with new_process_pool(count) as pool:
        yield pool


class PagePool:
    """One long-lived page pool shared by many dossiers, replaced when a worker dies.

    A worker killed by the OOM killer (or ``kill -9``) breaks a ``ProcessPoolExecutor`` for
    good; without a replacement every later dossier of a long batch or of a watch folder
    would fail the same way. Thread-safe: dossier threads share one instance.
    """

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or usable_cores()
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = (
            new_process_pool(self.workers) if self.workers > 1 else None
        )

    def current(self) -> Executor | None:
        """The executor for the next dossier; ``None`` runs its pages in the calling thread."""
        with self._lock:
            return self._pool

    def replace_broken(self, broken: Executor | None) -> None:
        """Replace ``broken`` (what ``current()`` returned) unless another thread already did."""
        with self._lock:
            if broken is None or self._pool is not broken:
                return
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = new_process_pool(self.workers)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def __enter__(self) -> PagePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["PagePool", "new_process_pool", "page_pool", "usable_cores"]
