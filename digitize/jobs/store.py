"""Job state in an append-only JSON-lines journal (``JobStore`` for one machine).

One JSON object per line, written with one ``write`` and fsync'ed before ``append`` returns:
a ``kill -9`` leaves every earlier record intact and at most one torn last line, which the
reader skips and the next writer closes with a newline. The same file holds the caller's own
records (batch's ``batch_started``/``finished``/``skipped``, watch's ``claimed``/``finished``/
``moved``); the job layer adds, per attempt:

* ``started``: ``job``, ``dossier``, ``bundle``, ``attempt``, ``content_sha256`` (when known);
* ``ended`` (kind, exit code, error, pages, seconds) or ``abandoned``;

plus the job's ``tags`` (batch's ``run``, watch's ``claim``) on every record. Each record also
carries ``time`` (ISO 8601 with offset, Vietnam time), ``pid`` and ``host``.

The file is opened without following links (``statefiles``) and created 0640. A write that
fails (disk full) raises ``OSError`` to the caller, which decides (watch pauses; batch stops).
Records are data from a file others may have written: counting ignores fields of the wrong
type instead of failing.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from digitize.jobs.models import Attempts, DossierJob, JobOutcome
from digitize.jobs.statefiles import STATE_DIR_MODE, open_state_file, read_state_file
from digitize.util import vn_now

_HOST = socket.gethostname()


class Journal:
    """Append-only JSON lines, one ``write`` + fsync per record (safe against kill -9)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._checked_tail = False

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {
            "event": event,
            "time": vn_now().isoformat(timespec="milliseconds"),
            "pid": os.getpid(),
            "host": _HOST,
            **fields,
        }
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
            fd = open_state_file(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
            try:
                if not self._checked_tail:
                    # A record torn by kill -9 must not swallow the next one: end its line.
                    size = os.fstat(fd).st_size
                    if size and os.pread(fd, 1, size - 1) != b"\n":
                        os.write(fd, b"\n")
                    self._checked_tail = True
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return record

    def records(self) -> list[dict[str, Any]]:
        return read_journal(self.path)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """All complete records; a torn last line (kill -9 mid-write) is ignored. A link planted
    in the journal's place is refused (``UnsafePathError``), never followed."""
    data = read_state_file(path)
    if data is None:
        return []
    records = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class JournalStore:
    """``JobStore`` over a ``Journal``. Attempt counts are read from the file once, then kept
    up to date in memory (one process writes a journal: batch per OUT_DIR, watch per inbox)."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] | None = None  # key → [started, ended]

    def _load(self) -> dict[str, list[int]]:
        if self._counts is None:
            counts: dict[str, list[int]] = {}
            for record in self.journal.records():
                self._count(counts, record)
            self._counts = counts
        return self._counts

    @staticmethod
    def _count(counts: dict[str, list[int]], record: dict[str, Any]) -> None:
        slot = {"started": 0, "ended": 1, "abandoned": 1}.get(str(record.get("event")))
        if slot is None or "attempt" not in record:
            return  # a caller's own record, or one written before attempts were counted
        keys = [record.get("job"), record.get("content_sha256")]
        for key in dict.fromkeys(k for k in keys if isinstance(k, str) and k):
            counts.setdefault(key, [0, 0])[slot] += 1

    def _append(self, event: str, **fields: Any) -> None:
        with self._lock:
            counts = self._load()  # before the append: the new record is counted once
            record = self.journal.append(event, **fields)
            self._count(counts, record)

    def attempts(self, key: str) -> Attempts:
        with self._lock:
            started, ended = self._load().get(key, (0, 0))
        return Attempts(started=started, ended=ended)

    def job_started(self, job: DossierJob, bundle: str, attempt: int) -> None:
        self._append("started", **_identity(job), bundle=bundle, attempt=attempt)

    def job_ended(self, job: DossierJob, outcome: JobOutcome) -> None:
        if outcome.kind == "abandoned":
            self._append(
                "abandoned", **_identity(job), bundle=outcome.bundle, attempt=outcome.attempt
            )
            return
        self._append(
            "ended",
            **_identity(job),
            bundle=outcome.bundle,
            attempt=outcome.attempt,
            kind=outcome.kind,
            exit_code=outcome.exit_code,
            error=outcome.error,
            pages=outcome.pages,
            seconds=outcome.seconds,
        )


def _identity(job: DossierJob) -> dict[str, Any]:
    fields: dict[str, Any] = {**job.tags, "job": job.job_id, "dossier": job.name}
    if job.content_sha256:
        fields["content_sha256"] = job.content_sha256
    return fields


__all__ = ["Journal", "JournalStore", "read_journal"]
