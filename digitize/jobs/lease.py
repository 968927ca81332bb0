"""One station per inbox, also across machines: a host lease with a heartbeat.

``flock`` keeps a second watcher on the same machine out, but on CIFS (and on NFS without a
working lock daemon) a lock taken on one machine is not seen on another, and a dead client's
lock can linger. So a watcher also writes ``lease.json`` in its state folder: host, pid, start
time and a heartbeat (wall-clock seconds, refreshed every ``heartbeat_s`` by a thread, so a
long dossier does not let it age). A watcher on another host refuses to start while that
heartbeat is younger than ``expiry_s``; an older lease (the host died or lost the share) is
taken over, and so is a lease of this host whose process is gone. Clocks of the two machines
must agree to within a fraction of ``expiry_s`` (NTP).

The lease is advice between cooperating watchers, not security: anyone who can write the
state folder can forge it (keep ``.digitize`` writable by the service account only).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from digitize.bundle import pid_alive
from digitize.errors import UnsafePathError
from digitize.jobs.statefiles import read_state_file, write_state_file
from digitize.util import vn_now

LEASE_NAME = "lease.json"


class HostLease:
    """The lease file at ``path``; ``acquire()`` then ``release()`` (or use as a context)."""

    def __init__(
        self,
        path: Path,
        *,
        heartbeat_s: float,
        expiry_s: float,
        on_error: Callable[[OSError], None] | None = None,
    ) -> None:
        self.path = path
        self.heartbeat_s = heartbeat_s
        self.expiry_s = expiry_s
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._started = vn_now().isoformat(timespec="seconds")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_error = on_error
        self._failing = False

    def holder(self) -> dict[str, Any] | None:
        """The lease as written, or None (no file, or not a lease: unreadable JSON)."""
        data = read_state_file(self.path, limit=64 * 1024)
        if data is None:
            return None
        try:
            lease = json.loads(data)
        except ValueError:
            return None
        return lease if isinstance(lease, dict) else None

    def acquire(self) -> None:
        """Take the lease, or raise ``UnsafePathError`` naming who holds it."""
        lease = self.holder()
        if lease is not None:
            host, pid = str(lease.get("host", "")), lease.get("pid")
            beat = lease.get("heartbeat")
            age = time.time() - beat if isinstance(beat, int | float) else float("inf")
            if host != self.host and age < self.expiry_s:
                raise UnsafePathError(
                    f"a watcher on host {host!r} (pid {pid}) holds this inbox: its last "
                    f"heartbeat was {max(age, 0):.0f} s ago (taken over after "
                    f"{self.expiry_s:.0f} s); one watcher per inbox",
                    path=self.path.parent.parent,
                )
            if (
                host == self.host
                and isinstance(pid, int)
                and pid != self.pid
                and pid_alive(pid)
                and age < self.expiry_s
            ):
                raise UnsafePathError(
                    f"another digitize watch (pid {pid}) holds this inbox",
                    path=self.path.parent.parent,
                )
        self._write()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def _write(self) -> None:
        lease = {
            "host": self.host,
            "pid": self.pid,
            "started": self._started,
            "heartbeat": time.time(),
            "heartbeat_at": vn_now().isoformat(timespec="seconds"),
        }
        write_state_file(self.path, (json.dumps(lease) + "\n").encode())

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self._write()
                self._failing = False
            except OSError as exc:  # disk full: the watcher pauses; say it once
                if not self._failing and self._on_error is not None:
                    self._on_error(exc)
                self._failing = True

    def release(self) -> None:
        """Stop the heartbeat and remove the lease if it is still this process's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            lease = self.holder()
            if lease and lease.get("host") == self.host and lease.get("pid") == self.pid:
                self.path.unlink(missing_ok=True)
        except (OSError, UnsafePathError):
            pass  # a lease left behind ages out

    def __enter__(self) -> HostLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


__all__ = ["LEASE_NAME", "HostLease"]
