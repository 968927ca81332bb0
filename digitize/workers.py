"""Where page work runs: bounded pools of spawn-started page worker processes.

``run_dossier`` sends each page to an ``Executor`` (``concurrent.futures``). This module makes
the local ones:

* ``page_pool(workers)``: a pool for one call (``None``, i.e. in-process, for one worker);
* ``PagePool``: a long-lived pool for batch and watch, replaced when a worker dies or hangs
  past its page deadline. It is the local implementation of ``digitize.jobs.PageExecutor``.
  It always uses worker processes, even for one worker: a page deadline can only be enforced
  on a process that can be killed, and hostile scans are then never decoded in the process
  that holds the signing key.
* ``kill_pool(executor)``: a pool whose worker hangs (a page past its deadline) cannot be shut
  down politely — ``shutdown(wait=True)`` would wait for the hung page forever; its workers
  are killed instead.

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
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

_STARTS: Any = None  # in a worker: where it says which task it has just started


def _init_worker(starts: Any = None) -> None:
    global _STARTS
    _STARTS = starts
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


def _run_marked(task: int, fn: Callable[..., Any], *args: Any) -> Any:
    """In a worker: announce that ``task`` starts now, then run it."""
    if _STARTS is not None:
        _STARTS.put(task)
    return fn(*args)


class PageProcessPool(ProcessPoolExecutor):
    """A spawn-started process pool whose futures learn when a worker really started them:
    ``future.started_at`` (parent's monotonic clock) is set as soon as the worker says so.

    Why: ``Future.running()`` turns true when the pool queues the task for a worker, up to one
    task ahead of a free worker. With every worker stuck on a hung page, the next queued page
    would look as old as the hung one and be blamed with it; a page deadline must count from
    the real start (``pipeline._iter_page_works`` reads ``started_at``).
    """

    reports_page_starts = True

    def __init__(self, max_workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._starts = context.SimpleQueue()
        self._tasks: dict[int, Future[Any]] = {}
        self._task_lock = threading.Lock()
        self._next_task = 0
        super().__init__(
            max_workers=max_workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(self._starts,),
        )
        threading.Thread(target=self._receive_starts, name="page-starts", daemon=True).start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if kwargs:
            return super().submit(fn, *args, **kwargs)
        with self._task_lock:
            self._next_task += 1
            task = self._next_task
            future: Future[Any] = super().submit(_run_marked, task, fn, *args)
            self._tasks[task] = future
        future.add_done_callback(lambda _f: self._forget(task))
        return future

    def _forget(self, task: int) -> None:
        with self._task_lock:
            self._tasks.pop(task, None)

    def _receive_starts(self) -> None:
        while True:
            try:
                task = self._starts.get()
            except (EOFError, OSError):
                return
            if task is None:
                return
            with self._task_lock:
                future = self._tasks.get(task)
            if future is not None:
                future.started_at = time.monotonic()  # type: ignore[attr-defined]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        try:
            self._starts.put(None)  # ends the receiving thread
        except (OSError, ValueError):
            pass


def new_process_pool(
    count: int, cls: type[PageProcessPool] = PageProcessPool
) -> ProcessPoolExecutor:
    """``count`` spawn-started page workers (see the module docstring for why spawn) that
    report when they start a page; ``cls`` lets a test make a pool of a subclass that
    misbehaves on purpose (``PagePool(factory=…)``)."""
    return cls(count)


def kill_pool(executor: Executor | None) -> None:
    """Stop a process pool now: its workers are killed (a hung page never returns), queued
    pages are cancelled, and futures still pending fail with ``BrokenProcessPool``."""
    if not isinstance(executor, ProcessPoolExecutor):
        return
    # The executor keeps its worker processes in ``_processes`` (CPython 3.9+; 3.14 adds a
    # public ``kill_workers``); a snapshot, because the pool's manager thread edits it.
    killer = getattr(executor, "kill_workers", None)
    if callable(killer):
        killer()
    else:
        processes = dict(getattr(executor, "_processes", None) or {})
        for process in processes.values():
            try:
                process.kill()
            except (OSError, ValueError):
                continue  # already gone or closed
    executor.shutdown(wait=False, cancel_futures=True)


@contextmanager
def page_pool(workers: int = 0) -> Iterator[Executor | None]:
    """A bounded pool of page workers for one run; ``None`` (in-process) for a single worker.

    ``workers`` 0 means one per usable core. Left by an exception (a page past its deadline,
    an interrupt), the workers are killed rather than waited for.
    """
    count = workers or usable_cores()
    if count <= 1:
        yield None
        return
    pool = new_process_pool(count)
    try:
        yield pool
    except BaseException:
        kill_pool(pool)
        raise
    pool.shutdown(wait=True)


PoolFactory = Callable[[int], ProcessPoolExecutor]


class PagePool:
    """One long-lived page pool shared by many dossiers, replaced when a worker dies or hangs.

    A worker killed by the OOM killer (or ``kill -9``) breaks a ``ProcessPoolExecutor`` for
    good, and a worker stuck on a hostile page past its deadline never comes back; without a
    replacement every later dossier of a long batch or of a watch folder would fail the same
    way. Always worker processes, even for ``workers=1`` (see the module docstring).
    ``factory`` makes each pool (``new_process_pool``; tests give one whose workers misbehave
    on purpose). Thread-safe: dossier threads share one instance.
    """

    def __init__(self, workers: int = 0, *, factory: PoolFactory | None = None) -> None:
        self.workers = workers or usable_cores()
        self._factory: PoolFactory = factory or new_process_pool
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = self._factory(self.workers)

    def current(self) -> Executor | None:
        """The executor for the next dossier."""
        with self._lock:
            return self._pool

    def replace_broken(self, broken: Executor | None) -> None:
        """Replace ``broken`` (what ``current()`` returned) unless another thread already did.
        Its workers are killed: one may be hung on a page (never returning), and pages of other
        dossiers still on it fail with ``BrokenProcessPool`` (the job layer runs those again)."""
        with self._lock:
            if broken is None or self._pool is not broken:
                return
            kill_pool(self._pool)
            self._pool = self._factory(self.workers)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def kill(self) -> None:
        """Stop now (an abandoned run, a hung page): workers killed, nothing waited for."""
        with self._lock:
            if self._pool is not None:
                kill_pool(self._pool)
                self._pool = None

    def __enter__(self) -> PagePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "PagePool",
    "PageProcessPool",
    "PoolFactory",
    "kill_pool",
    "new_process_pool",
    "page_pool",
    "usable_cores",
]
