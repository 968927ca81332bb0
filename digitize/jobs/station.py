"""The station a job runs on: its folders, trust roots, what a caller may lend it, and how a
long-running station (watch) waits out its own faults.

* ``StationOptions``: an open signer, the demo data folder, trust roots, a page executor.
* ``Backoff``: exponential, capped waits between checks of a station that cannot work now.
* ``check_storage``: can these folders be written (a small file written, fsync'ed, removed)?
* ``Liveness``/``sd_notify``: systemd ``Type=notify`` and ``WatchdogSec``: ``READY=1`` once
  the station works, ``WATCHDOG=1`` pings from a thread only while the station's main loop
  says it is alive — a main thread stuck outside every deadline (a hung token call, a
  stalled network file system) stops the pings and systemd restarts the service.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from digitize.jobs.interfaces import PageExecutor
from digitize.profiles import Profile
from digitize.sign import DigitiserSigner
from digitize.verify import default_trust_roots


@dataclass(frozen=True)
class StationOptions:
    """Local resources a caller of ``batch_run``/``InboxWatcher`` may supply instead of the
    defaults: an open signer (not closed by the callee), the data folder of the demo identity,
    the trust roots new and existing bundles are verified against, and the page executor
    (default: a ``workers.PagePool`` of ``pipeline.workers`` processes; not closed by the
    callee when given)."""

    signer: DigitiserSigner | None = None
    data_dir: Path | None = None
    trust_roots: tuple[Path, ...] | None = None  # None: ``trust_roots_for(profile)``
    pages: PageExecutor | None = None


def paths_overlap(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` are the same folder or one lies inside the other."""
    ra, rb = Path(os.path.realpath(a)), Path(os.path.realpath(b))
    return ra == rb or ra in rb.parents or rb in ra.parents


def trust_roots_for(profile: Profile) -> tuple[Path, ...]:
    """What new bundles are verified against: ``DIGITIZE_TRUST_ROOTS``, the local demo root
    when it exists, and the profile's ``sign.trust_roots``. Looked up at each call: the demo
    root appears when the demo signer is first opened."""
    return tuple(default_trust_roots()) + tuple(Path(p) for p in profile.sign.trust_roots)


class Backoff:
    """``first``, 2×, 4×… seconds, never more than ``cap``; ``reset()`` after a success."""

    def __init__(self, first: float, cap: float) -> None:
        self.first, self.cap = first, max(cap, first)
        self._next = first

    def next(self) -> float:
        wait = self._next
        self._next = min(self._next * 2, self.cap)
        return wait

    def reset(self) -> None:
        self._next = self.first


def check_storage(folders: tuple[Path, ...], size: int = 64 * 1024) -> None:
    """Raise ``OSError`` unless a ``size``-byte file can be written, fsync'ed and removed in
    each folder (a full, read-only or failing disk says so here)."""
    block = b"\0" * size
    for folder in folders:
        fd, name = tempfile.mkstemp(prefix=".digitize-space-", dir=folder)
        try:
            os.write(fd, block)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)


def sd_notify(message: str) -> bool:
    """Send ``message`` to systemd (``NOTIFY_SOCKET``); False when not run by systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True


class Liveness:
    """Watchdog pings for systemd while the owner keeps saying it is alive (``beat``).

    ``beat(grace_s)``: the owner promises its next beat within ``grace_s`` seconds (a tick of
    the main loop: a few seconds; a dossier between two pipeline events: its deadlines). A
    thread sends ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` while that promise holds.
    Without ``WATCHDOG_USEC`` (not under systemd's watchdog) nothing is started.
    """

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC", "")
        self.interval = int(usec) / 2_000_000 if usec.isdigit() and int(usec) > 0 else None
        self._until = time.monotonic() + 60.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self, grace_s: float) -> None:
        self._until = time.monotonic() + grace_s

    def start(self) -> None:
        if self.interval is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            if time.monotonic() < self._until:
                sd_notify("WATCHDOG=1")

    def stop(self) -> None:
        self._stop.set()


__all__ = [
    "Backoff",
    "Liveness",
    "StationOptions",
    "check_storage",
    "paths_overlap",
    "sd_notify",
    "trust_roots_for",
]
