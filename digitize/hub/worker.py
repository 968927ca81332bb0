"""``digitize worker``: one machine's share of the hub.

A worker is one process consuming the ``dossiers`` queue (Celery, thread pool of
``concurrency`` dossiers sharing one signer and one ``HubPageExecutor``) plus one child
process consuming the ``pages`` queue (``pages`` page processes; ``solo`` pool for one,
``prefork`` for more), so a machine's cores serve every dossier of the hub, not only its own.
``concurrency 0`` makes a page-only machine (no signer, no dossier).

Start-up order matters: the signer is opened first (a refused PIN stops the worker at once,
and its secret leaves the environment before any child starts), then the page child, then the
dossier consumer. SIGTERM: Celery stops taking messages and waits for running dossiers; after
``hub.abandon_after_s`` the ones still running are abandoned (``run_job`` gives up at the
next event, nothing is written) and handed back to the queue for another worker. The page
child is stopped last, so this machine's pages still run while its dossiers finish.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery.signals import worker_shutting_down

from digitize.hub import tasks  # noqa: F401 - registers the tasks on the app
from digitize.hub.config import (
    BROKER_ENV,
    DOSSIER_QUEUE,
    DOSSIER_TASK,
    PAGE_QUEUE,
    PAGE_TASK,
    app,
    configure,
    mask_url,
)
from digitize.hub.lost import LostJobSweeper
from digitize.hub.pages import HubPageExecutor, spool_dir_for
from digitize.hub.registry import Registry, connect
from digitize.hub.state import WorkerState, install
from digitize.profiles import load_profile
from digitize.workers import usable_cores

log = logging.getLogger("digitize.hub")


@dataclass(frozen=True)
class WorkerOptions:
    url: str
    out_dir: Path
    prepared_dir: Path | None = None  # --sign-at station bundles; None: OUT_DIR/prepared
    concurrency: int = 1  # dossiers at once; 0: a page-only worker
    pages: int = 0  # page processes; 0: one per usable core
    profile: str | None = None
    events: bool = False  # Celery task events (Flower)
    loglevel: str = "INFO"
    data_dir: Path | None = None
    signer: bool = True  # False: no signer on this machine (--sign-at station jobs only)


def _node(role: str) -> str:
    return f"{role}@{socket.gethostname()}.{os.getpid()}"


def _celery(queue: str, pool: str, concurrency: int, role: str, options: WorkerOptions) -> None:
    argv = ["worker", "-Q", queue, "-P", pool, "-c", str(concurrency), "-n", _node(role),
            "-l", options.loglevel, "--without-gossip", "--without-mingle"]  # fmt: skip
    if options.events:
        argv.append("-E")
    try:
        app.worker_main(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


def run_worker(options: WorkerOptions) -> None:
    """Run until SIGTERM (see the module docstring). Raises ``DigitizeError`` for a set-up
    that cannot work (profile, signer)."""
    os.environ["OMP_THREAD_LIMIT"] = "1"  # page parallelism comes from processes
    # Celery sets the root logger to --loglevel: keep other libraries' chatter (font
    # subsetting, each task's whole result) out of the worker's log.
    for noisy in ("fontTools", "celery.app.trace", "pyhanko", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    profile = load_profile(options.profile)
    configure(app, options.url, profile.hub, events=options.events)
    client = connect(options.url, profile.hub.broker_timeout_s)
    out_dir = options.out_dir
    state = WorkerState(
        url=options.url, profile=profile, profile_name=options.profile, out_dir=out_dir,
        prepared_dir=options.prepared_dir or out_dir / "prepared", client=client,
        registry=Registry(client, profile.hub.result_expires_s), data_dir=options.data_dir,
        can_sign=options.signer,
    )  # fmt: skip
    install(state)
    pages = options.pages or usable_cores()
    log.info("digitize worker: broker %s, out %s", mask_url(options.url), out_dir)
    if options.concurrency == 0:
        _leave_with_parent()
        # A page hung past its deadline is given up by its dossier (PageTimeoutError); the
        # process running it is killed a little later by Celery's hard time limit (prefork:
        # the pool replaces the process). Prefork even for one process: that limit, and a
        # crashing decoder takes one pool process down, not the worker.
        limit = profile.pipeline.page_timeout_s + 30
        app.conf.task_annotations = {PAGE_TASK: {"time_limit": limit}}
        _celery(PAGE_QUEUE, "prefork", pages, "pages", options)
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    # Opened before anything else: a bad PIN stops here, and the secret has left the
    # environment before the page child is started.
    if options.signer:
        state.signer_for(profile).open()
    state.pages = HubPageExecutor(app, client, spool_dir_for(out_dir), profile.hub.page_window,
                                  profile.hub.inline_image_max_bytes,
                                  profile.hub.page_not_started_s,
                                  profile.hub.lost_check_s)  # fmt: skip
    child = _PageChild(options, pages)
    child.start()

    def send_again(job_id: str, message: dict[str, Any]) -> None:
        app.send_task(DOSSIER_TASK, args=[message], task_id=job_id, retry=True)

    LostJobSweeper(client, state.registry, send_again, profile.hub.lost_check_s).start(
        state.stopping)

    def on_shutdown(**_kwargs: Any) -> None:
        state.stopping.set()
        delay = profile.hub.abandon_after_s
        log.info("stopping: running dossiers get %.0f s before they are handed back", delay)

        def abandon_running() -> None:
            for event in list(state.active):
                event.set()

        def exit_now() -> None:
            # Celery's shutdown can stall (seen after a broker reconnection); nothing is
            # lost by leaving: what was not acknowledged goes back to the queue.
            log.warning("stopping takes too long: leaving now (unacknowledged work goes back "
                        "to the queue)")  # fmt: skip
            child.stop(timeout=10)
            os._exit(0)

        for seconds, action in ((delay, abandon_running), (delay + SHUTDOWN_GRACE_S, exit_now)):
            timer = threading.Timer(seconds, action)
            timer.daemon = True
            timer.start()

    worker_shutting_down.connect(on_shutdown, weak=False)
    try:
        _celery(DOSSIER_QUEUE, "threads", options.concurrency, "dossiers", options)
    finally:
        child.stop()
        state.close()


PARENT_ENV = "DIGITIZE_HUB_PARENT"
SHUTDOWN_GRACE_S = 30.0  # after abandoning, how long Celery may take to stop before we leave


def _leave_with_parent() -> None:
    """A page child whose worker died (kill -9, OOM) stops too (warm: its current page ends)
    rather than serve on as an orphan nobody supervises."""
    parent = os.environ.pop(PARENT_ENV, "")
    if not parent.isdigit():
        return  # started by hand as a page-only worker: nobody to follow

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        log.warning("the worker that started this page process is gone: stopping")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class _PageChild:
    """The page-worker child process, restarted when it dies while the worker runs."""

    def __init__(self, options: WorkerOptions, pages: int) -> None:
        self.options = options
        self.pages = pages
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def _spawn(self) -> None:
        argv = [sys.executable, "-m", "digitize", "worker", "--concurrency", "0",
                "--pages", str(self.pages), "--out", str(self.options.out_dir),
                "--loglevel", self.options.loglevel]  # fmt: skip
        if self.options.profile:
            argv += ["--profile", self.options.profile]
        if self.options.events:
            argv.append("--events")
        # The URL (and its password) never on a command line.
        env = {**os.environ, BROKER_ENV: self.options.url, PARENT_ENV: str(os.getpid())}
        with self._lock:
            self._proc = subprocess.Popen(argv, env=env)

    def start(self) -> None:
        self._spawn()
        threading.Thread(target=self._supervise, name="page-child", daemon=True).start()

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            code = proc.wait()
            if self._stopping.wait(2.0):
                return
            log.warning("page worker (pid %d) exited with %s; starting another", proc.pid, code)
            self._spawn()

    def stop(self, timeout: float = 60.0) -> None:
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


__all__ = ["WorkerOptions", "run_worker"]
