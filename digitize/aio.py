"""The one bridge from synchronous code to asyncio (pyHanko, certvalidator and aiohttp are
asynchronous; the pipeline, the CLI and the verifier are not).

``EventLoopThread`` is a private event loop in a daemon thread. It serves two needs:

- a long-lived owner of asyncio resources: an open signer keeps its aiohttp sessions and its
  CSC client on one loop, because aiohttp objects are bound to the loop that made them;
- a safe way to run a coroutine from code that may itself be called inside a running loop (an
  async host application): ``asyncio.run`` would refuse there, a separate thread never does.

``run_sync(coro)`` runs one coroutine to completion on a short-lived loop thread and returns
its result (or raises its exception): the verifier's entry point.

Contract: ``run`` blocks the caller until the coroutine finishes (or ``timeout`` seconds pass:
then the coroutine is cancelled and ``TimeoutError`` raised). ``stop`` is idempotent; after it
``run`` raises ``RuntimeError`` and closes the coroutine it was given (no "never awaited"
warning). The loop thread is a daemon, so a forgotten ``stop`` never keeps the process alive.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class EventLoopThread:
    """A private asyncio loop running in its own daemon thread."""

    def __init__(self, name: str = "digitize-aio") -> None:
        self.loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._stopped = False
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        with self._lock:
            if self._stopped:
                coro.close()
                raise RuntimeError("the event loop thread is stopped")
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no result within {timeout} s") from None

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        try:  # as asyncio.run does: let async generators run their finally blocks
            asyncio.run_coroutine_threadsafe(self.loop.shutdown_asyncgens(), self.loop).result(5)
        except Exception:  # noqa: BLE001, S110 - best effort on shutdown
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()

    def __enter__(self) -> EventLoopThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` to completion from synchronous code, inside a running loop or not."""
    with EventLoopThread("digitize-aio-once") as loop_thread:
        return loop_thread.run(coro, timeout)
