"""The one sync→async bridge (``digitize.aio``): from plain code and from inside a running
event loop, with a timeout that cancels, and a clean stop."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from digitize.aio import EventLoopThread, run_sync


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def test_run_sync_from_plain_code_and_from_a_running_loop() -> None:
    assert run_sync(_double(21)) == 42

    async def host() -> int:  # an async application calling the synchronous API
        return run_sync(_double(5))

    assert asyncio.run(host()) == 10


def test_timeout_cancels_and_errors_propagate() -> None:
    cancelled = []

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def boom() -> None:
        raise ValueError("from the loop")

    with EventLoopThread() as loop_thread:
        with pytest.raises(TimeoutError):
            loop_thread.run(slow(), timeout=0.05)
        with pytest.raises(ValueError, match="from the loop"):
            loop_thread.run(boom())
        loop_thread.run(asyncio.sleep(0.05))
    assert cancelled == [True]


def test_run_after_stop_refuses_without_leaking_the_coroutine() -> None:
    loop_thread = EventLoopThread()
    loop_thread.stop()
    loop_thread.stop()  # idempotent
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would be an error
        with pytest.raises(RuntimeError):
            loop_thread.run(_double(1))
    assert not loop_thread.thread.is_alive()
