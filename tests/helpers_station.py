"""Misbehaviour on purpose, for the station tests — all of it lives here, none in the library.

* ``HangingPagePool``: a real spawn-started page pool (a ``digitize.workers.PageProcessPool``
  subclass) whose worker, for a page whose file name holds
  ``hang``, runs ``hang_forever`` instead of ``process_page``: a real worker process that never
  returns, as one stuck in a decoder or in tesseract's Recognize would. The worker writes its
  pid to the file named by ``DIGITIZE_TEST_HANG_PIDS`` so a test can check it was killed.
* ``poison_pill_watch_command``: the real ``digitize watch`` CLI in a subprocess, with
  ``digitize.watch.run_job`` wrapped so that the process SIGKILLs itself when the dossier named
  by ``DIGITIZE_TEST_KILL_ON`` reaches ``dossier_started`` — a dossier that kills the station
  every time it is processed (as an OOM in the parent or a decoder crash would). The wrapper
  is installed by the ``-c`` program below, only in that subprocess.
* ``tmpfs``: a small real file system that can be filled (disk full), mounted for a test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from digitize.pipeline import process_page
from digitize.workers import PageProcessPool

HANG_PIDS_ENV = "DIGITIZE_TEST_HANG_PIDS"
KILL_ON_ENV = "DIGITIZE_TEST_KILL_ON"


def hang_forever(name: str) -> None:
    """Run in a page worker: record this worker's pid, then never return."""
    record = os.environ.get(HANG_PIDS_ENV)
    if record:
        with open(record, "a", encoding="ascii") as handle:
            handle.write(f"{os.getpid()}\n")
    while True:
        time.sleep(3600)


class HangingPagePool(PageProcessPool):
    """See the module docstring."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if fn is process_page and "hang" in args[0].source.name:
            return super().submit(hang_forever, args[0].source.name)
        return super().submit(fn, *args, **kwargs)


def hanging_pool(count: int) -> PageProcessPool:
    """A ``PagePool`` factory: ``PagePool(2, factory=hanging_pool)``."""
    return HangingPagePool(count)


def pid_gone(pid: int) -> bool:
    """True when no process (or only a zombie) has ``pid``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


_POISON_PROGRAM = f"""
import dataclasses, os, signal, sys
import digitize.cli.commands_batch
import digitize.watch as watch
real_run_job = watch.run_job
target = os.environ[{KILL_ON_ENV!r}]

def run_job(job, ctx):
    if job.name == target:
        inner = ctx.on_event
        def on_event(j, event):
            if event.kind == "dossier_started":
                os.kill(os.getpid(), signal.SIGKILL)
            if inner is not None:
                inner(j, event)
        ctx = dataclasses.replace(ctx, on_event=on_event)
    return real_run_job(job, ctx)

watch.run_job = run_job
from digitize.cli.main import run_main
sys.argv[0] = "digitize"
run_main()
"""


def poison_pill_watch_command() -> list[str]:
    """``digitize …`` with the self-killing wrapper (see the module docstring)."""
    return [sys.executable, "-c", _POISON_PROGRAM]


@contextmanager
def tmpfs(where: Path, size: str = "8m") -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``where`` (skips the test when mounting is not
    permitted: it needs CAP_SYS_ADMIN)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file in ``folder`` until its file system is full; returns the file."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1024 * 1024, 4096, 1):
            block = b"\0" * size
            while True:
                try:
                    if os.write(fd, block) < size:
                        break
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


class RunningWatcher:
    """An in-process ``InboxWatcher`` on a thread, stopped (and joined) on exit; its events in
    ``events``, an exception it raised in ``error`` (re-raised on exit unless ``expect_error``)."""

    def __init__(
        self,
        inbox: Path,
        out: Path,
        profile: Any,
        settings: Any,
        station: Any = None,
        *,
        expect_error: bool = False,
    ) -> None:
        from digitize.watch import InboxWatcher

        self.events: list[Any] = []
        self.watcher = InboxWatcher(
            inbox, out, profile, settings, on_event=self.events.append, station=station
        )
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.expect_error = expect_error
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.watcher.run(self.stop)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            self.error = exc

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]

    def ready(self) -> bool:
        """The start-up check passed (the signer's identity was announced)."""
        return any(e.kind == "notice" and e.message.startswith("signing as") for e in self.events)

    def __enter__(self) -> RunningWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the watcher did not stop"
        if self.error is not None and not self.expect_error:
            raise self.error


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def entries(folder: Path) -> set[str]:
    """Dossier names in ``folder`` (reason files and temporary hidden names left out)."""
    if not folder.is_dir():
        return set()
    return {
        p.name
        for p in folder.iterdir()
        if not p.name.endswith(".reason.json") and not p.name.startswith(".")
    }


def bundle_verifies(path: Path, roots: tuple[Path, ...] | None = None) -> bool:
    """``verify_bundle(path, roots).ok``, trusting the DEMO root these tests sign with (where
    the verifier asks for that explicitly, ``allow_demo``)."""
    import inspect

    from digitize.verify import verify_bundle

    if "allow_demo" in inspect.signature(verify_bundle).parameters:
        return verify_bundle(path, roots, allow_demo=True).ok  # type: ignore[call-arg]
    return verify_bundle(path, roots).ok
