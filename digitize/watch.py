"""A station-grade watch folder: every dossier dropped into INBOX ends in exactly one place, and
no dossier — nor an outage of the station — stops the station for good.

Life of a dossier (a sub-folder of INBOX written by a scanning station)::

    INBOX/<name>/                     arriving; taken only when complete (see below)
    INBOX/.digitize/processing/<name> claimed by an atomic rename, then digitised
    INBOX/done/<name>                 its bundle OUT/<bundle>/ was written and verifies
    INBOX/quarantine/<name>           failed; INBOX/quarantine/<name>.reason.json says why
    INBOX/duplicate/<name>            same content as a dossier already done; the
                                      ``.reason.json`` beside it names the original

Complete means: a marker file ``READY`` (or ``.ready``) exists in the dossier folder (the
station writes it last; the folder must then stay unchanged for ``marker_settle_seconds``), or,
without a marker, the names, sizes and modification times of all its files have not changed
for ``quiet_seconds``. An empty folder is never complete. ``require_marker`` disables the
quiet-period rule for stations that always write a marker.

A claimed dossier that is neither a link nor a duplicate runs through the job layer
(``digitize.jobs.run_job``, as batch does): resume check, pipeline, verification, outcome.
``done`` and ``skipped`` (a bundle made from exactly these inputs exists) move it to
``done/``; ``bad_input``, ``conflict`` (e.g. a re-sent dossier with a page added: its old
bundle is not replaced) and ``bug`` to ``quarantine/``, with the kind in ``reason.json``. A new
bundle that fails verification is moved aside to ``OUT/.rejected-<bundle>-<random>``.

Station faults never quarantine good input (``digitize.jobs.classify``):

* retry later (exit 50, 55, 57: a signing, revocation or time-stamp service unreachable, the
  token absent; 80: the disk full or read-only; or a state write of the watcher failing): the
  dossier stays claimed in ``processing/``, no new dossier is taken, the station is checked
  again (signer ``check()``, a test write in OUT and the state folder) after a back-off that
  doubles from ``retry_backoff_s`` to ``retry_backoff_max_s``, and the dossier is run again once
  the check passes. Only a dossier that fails that way ``station_retry_limit`` times while the
  check in between passes is quarantined (it is then the dossier, not the station);
* a person must act (51–54, 56, 63: certificate revoked, expired or not personal, a wrong PIN,
  a wrong signer set-up, the station not trusting its own signer): the watcher stops with that
  exit code, the dossier stays in ``processing/`` and is taken again at the next start. A
  wrong PIN is never tried twice (tokens lock): the systemd unit must not restart on these
  codes (``RestartPreventExitStatus``, docs/watch.md).

The signer is opened and checked at start-up, before anything is claimed or recovered.

Crash safety (SIGKILL at any instant):

* the bundle appears under its final name complete or not at all (``digitize.bundle``);
* the journal ``INBOX/.digitize/journal.jsonl`` (append-only, fsync'ed) records ``claimed``
  before the claim rename, the job layer's ``started``/``ended`` around each attempt, and
  ``finished`` (outcome and destination) before the move out of ``processing/``;
  ``reason.json`` is written after the move and re-written at start-up from the journal when
  missing;
* at start-up, before anything else: a dossier left in ``processing/`` whose claim has
  ``crash_limit`` (2) attempts that never ended — the watcher died under it each time: a
  poison pill — is quarantined (``DossierCrashedError``, 106); then a dossier with a
  ``finished`` record is moved as recorded; the others are resumed (moved to ``done/`` without
  re-running when a bundle of exactly their inputs exists and verifies, else digitised again).

Journal records are checked before use (``digitize.inbox.valid_finished``); state files are
opened without following links (``digitize.jobs.statefiles``). One watcher per inbox: an
``flock`` on ``INBOX/.digitize/lock`` on this machine, and ``INBOX/.digitize/lease.json`` (host,
pid, heartbeat) respected by watchers on other machines sharing the inbox. Inputs are never
deleted or modified: they are only renamed inside one file system. The library installs no
signal handlers: ``stop`` finishes the current dossier and returns, ``abandon`` gives it up
at once (it stays in ``processing/`` and is redone on restart).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from digitize._version import __version__
from digitize.errors import (
    DigitizeError,
    DossierCrashedError,
    InputError,
    UnsafePathError,
    error_for_code,
)
from digitize.inbox import (
    LOCK_NAME,
    REASON_SUFFIX,
    InboxLayout,
    Outcome,
    Snapshot,
    check_watch_setup,
    content_hash,
    inbox_changes,
    installation_dirs,
    reason_for_error,
    reason_for_outcome,
    snapshot,
    unique_destination,
    unsafe_links,
    valid_claim,
    valid_finished,
)
from digitize.ingest import natural_key
from digitize.jobs import (
    Backoff,
    DossierJob,
    HostLease,
    JobContext,
    JobOutcome,
    Journal,
    JournalStore,
    Liveness,
    PagePool,
    SerialSignerHandle,
    StationOptions,
    check_storage,
    classify,
    needs_person,
    read_journal,
    retry_later,
    run_job,
    sd_notify,
)
from digitize.jobs.classify import STORAGE_ERRNOS
from digitize.jobs.lease import LEASE_NAME
from digitize.jobs.statefiles import (
    STATE_DIR_MODE,
    ensure_state_dir,
    open_state_file,
    write_state_file,
)
from digitize.models import FrozenModel
from digitize.pipeline import Event
from digitize.profiles import Profile, load_profile
from digitize.settings import WatchSettings
from digitize.sign import open_signer
from digitize.util import fsync_path, nfc, vn_now

WatchEventKind = Literal[
    "started", "taken", "progress", "outcome", "notice", "paused", "resumed", "stopped"
]
TICK_GRACE_S = 120.0  # the main loop beats at least this often while it runs


class WatchEvent(FrozenModel):
    kind: WatchEventKind
    dossier: str = ""
    outcome: Outcome | None = None
    destination: str = ""
    bundle: str = ""
    exit_code: int = 0
    message: str = ""
    event: Event | None = None


WatchEventCallback = Callable[[WatchEvent], None]


class WatchStats(FrozenModel):
    done: int = 0
    quarantined: int = 0
    duplicate: int = 0
    recovered: int = 0  # finished from a previous process's work


class _Candidate:
    def __init__(self, path: Path, snap: Snapshot, since: float) -> None:
        self.path = path
        self.snapshot = snap
        self.since = since  # monotonic time of the last observed change
        self.has_marker = False


def _now() -> str:
    return vn_now().isoformat(timespec="seconds")


# --- the watcher --------------------------------------------------------------------------------
class InboxWatcher:
    """Watches one inbox; ``run(stop, abandon)`` until ``stop`` is set. See the module docstring.

    ``run`` raises ``DigitizeError`` when a person must act (its exit code: 54 wrong PIN, 51–53
    certificate, 56 signer set-up, 63 trust, 16 another watcher holds the inbox)."""

    def __init__(
        self,
        inbox: str | Path,
        out_dir: str | Path,
        profile: Profile | None = None,
        settings: WatchSettings | None = None,
        *,
        on_event: WatchEventCallback | None = None,
        station: StationOptions | None = None,
    ) -> None:
        self.profile = profile or load_profile()
        self.settings = settings or self.profile.watch
        self.layout = check_watch_setup(Path(inbox), Path(out_dir), self.settings)
        self.on_event = on_event
        self.station = station or StationOptions()
        self.journal = Journal(self.layout.journal)
        self._store = JournalStore(self.journal)
        self._signer: SerialSignerHandle | None = None
        self._pool: PagePool | None = None
        self._ctx: JobContext | None = None
        self._done_hashes: dict[str, tuple[str, str, str]] = {}  # hash → (dossier, dest, bundle)
        self._candidates: dict[str, _Candidate] = {}
        self._noticed: set[str] = set()
        self._liveness = Liveness()
        self._stop = threading.Event()
        self._abandon = threading.Event()
        self._identity_shown = False
        self.stats = {"done": 0, "quarantined": 0, "duplicate": 0, "recovered": 0}

    # -- events and state writes ----------------------------------------------------------------
    def _emit(self, kind: WatchEventKind, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event(WatchEvent(kind=kind, **fields))

    def _notice_once(self, key: str, message: str) -> None:
        if key not in self._noticed:
            self._noticed.add(key)
            self._emit("notice", message=message)

    def _record_quietly(self, event: str, **fields: Any) -> None:
        """A journal record that is information only: a failed write is reported, not fatal
        (the writes that decide something raise, and the watcher pauses)."""
        try:
            self.journal.append(event, **fields)
        except OSError as exc:
            self._notice_once(
                f"journal:{exc.errno}", f"cannot write the journal: {exc.strerror or exc}"
            )
        except DigitizeError as exc:  # a journal replaced by a link: the next real write stops
            self._notice_once("journal:unsafe", exc.one_line())

    def _stopping(self) -> bool:
        return self._stop.is_set() or self._abandon.is_set()

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopped; True when stopped."""
        deadline = time.monotonic() + seconds
        while not self._stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._liveness.beat(TICK_GRACE_S)
            self._stop.wait(min(0.2, left))
        return True

    # -- main loop ------------------------------------------------------------------------------
    def run(self, stop: threading.Event, abandon: threading.Event | None = None) -> WatchStats:
        self._stop, self._abandon = stop, abandon or threading.Event()
        with self._locked():
            lease = HostLease(
                self.layout.state / LEASE_NAME,
                heartbeat_s=self.settings.lease_heartbeat_s,
                expiry_s=self.settings.lease_expiry_s,
                on_error=lambda exc: self._emit(
                    "notice", message=f"cannot refresh the lease: {exc.strerror or exc}"
                ),
            )
            lease.acquire()
            self._liveness.start()
            try:
                self._record_quietly(
                    "watch_started",
                    tool_version=__version__,
                    inbox=str(self.layout.inbox),
                    out=str(self.layout.out_dir),
                )
                self._emit(
                    "started",
                    message=f"watching {self.layout.inbox} → "
                    f"{self.layout.out_dir} ({'polling' if self.settings.poll else 'inotify'})",
                )
                if self._wait_until_ready(None):
                    sd_notify("READY=1")
                    self._load_journal()
                    self._serve()
            finally:
                self._liveness.stop()
                self._close()
                self._record_quietly("watch_stopped", **self.stats)
                self._emit("stopped", message=", ".join(f"{k} {v}" for k, v in self.stats.items()))
                lease.release()
        return WatchStats(**self.stats)

    def _serve(self) -> None:
        """Recover, then watch; a failed state write (disk full) pauses, then recovers again."""
        while not self._stopping():
            try:
                self._recover()
                self._watch()
                return
            except OSError as exc:
                reason = f"cannot write the watcher's state: {exc.strerror or exc}"
                if exc.filename:
                    reason += f" ({exc.filename})"
                if not self._wait_until_ready(reason):
                    return

    def _watch(self) -> None:
        self._full_scan()
        last_scan = time.monotonic()
        for changes in inbox_changes(self.layout, self.settings, self._stop):
            self._liveness.beat(TICK_GRACE_S)
            for name in changes:
                self._refresh(name)
            if time.monotonic() - last_scan >= self.settings.rescan_seconds:
                self._full_scan()
                last_scan = time.monotonic()
            for candidate in self._complete():
                if self._stopping():
                    break
                self._take(candidate)
            if self._stopping():
                break

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Opened without following links: a link planted as the lock must not make us
        # truncate whatever file it points to.
        fd = open_state_file(self.layout.state / LOCK_NAME, os.O_RDWR | os.O_CREAT)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UnsafePathError(
                    "another digitize watch is already running on this inbox",
                    path=self.layout.inbox,
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            os.close(fd)

    def _close(self) -> None:
        if self._pool is not None:
            if self._abandon.is_set():
                self._pool.kill()
            else:
                self._pool.close()
            self._pool = None
        if self._signer is not None:
            self._signer.close()  # closes only a signer it opened itself
            self._signer = None
        self._ctx = None

    # -- the station: signer, storage, pauses ---------------------------------------------------
    def _signer_handle(self) -> SerialSignerHandle:
        if self._signer is None:
            given = self.station.signer
            self._signer = (
                SerialSignerHandle(signer=given)
                if given is not None
                else SerialSignerHandle(
                    lambda: open_signer(self.profile.sign, self.station.data_dir)
                )
            )
        return self._signer

    def _check_station(self) -> None:
        """Raise unless the station can sign and write: the signer opens and passes its checks
        (certificate, revocation, time-stamp service), and OUT and the state folder take a
        test write."""
        identity = self._signer_handle().open().check()
        if not self._identity_shown:
            self._identity_shown = True
            self._emit("notice", message=f"signing as {identity.full_name}")
        for folder in (self.layout.state, self.layout.processing):
            ensure_state_dir(folder)  # a folder someone removed meanwhile is made again
        self.layout.out_dir.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
        check_storage((self.layout.out_dir, self.layout.state, self.layout.processing))

    def _wait_until_ready(self, reason: str | None) -> bool:
        """Check the station (after waiting first when ``reason`` says why it failed) until it
        can work; True when it can, False when stopped meanwhile. A fault that needs a person
        is raised (the watcher stops with its exit code)."""
        backoff = Backoff(self.settings.retry_backoff_s, self.settings.retry_backoff_max_s)
        paused = reason is not None
        while not self._stopping():
            if reason is not None:
                wait = backoff.next()
                self._emit(
                    "paused",
                    message=f"retry later: {reason}; no new dossier is taken; the station "
                    f"is checked again in {wait:.0f} s",
                )
                self._record_quietly("paused", reason=reason, next_check_s=wait)
                sd_notify(f"STATUS=paused, retry later: {reason[:200]}")
                if self._sleep(wait):
                    return False
            try:
                self._check_station()
            except DigitizeError as exc:
                kind, retryable = classify(exc)
                if kind != "station_fault" or not retryable:
                    self._record_quietly(
                        "halted", exit_code=int(exc.exit_code), error=exc.one_line()
                    )
                    raise
                reason, paused = exc.one_line(), True
                continue
            except OSError as exc:
                reason, paused = f"cannot write: {exc.strerror or exc} ({exc.filename})", True
                continue
            if paused:
                self._emit("resumed", message="the station works again; taking dossiers")
                self._record_quietly("resumed")
            sd_notify("STATUS=watching")
            return True
        return False

    def _context(self) -> JobContext:
        """The job context, made once (the signer is already open: ``_check_station``)."""
        if self._ctx is None:
            pages = self.station.pages
            if pages is None:
                if self._pool is None:
                    self._pool = PagePool(self.profile.pipeline.workers)
                pages = self._pool
            grace = (
                max(self.profile.ingest.isolated_timeout_s, self.profile.pipeline.page_timeout_s)
                + 600.0
            )

            def on_event(job: DossierJob, event: Event) -> None:
                self._liveness.beat(grace)
                self._emit("progress", dossier=job.name, event=event)

            self._ctx = JobContext(
                profile=self.profile,
                pages=pages,
                store=self._store,
                signer=self._signer_handle(),
                trust_roots=self.station.trust_roots,
                verify_existing=self.settings.verify,
                verify_new=self.settings.verify,
                abandon=self._abandon,
                on_event=on_event,
                data_dir=self.station.data_dir,
            )
            self._liveness.beat(grace)
        return self._ctx

    # -- scanning -------------------------------------------------------------------------------
    def _is_dossier_name(self, name: str) -> bool:
        return not name.startswith(".") and name not in self.layout.reserved_names()

    def _full_scan(self) -> None:
        present = set()
        with os.scandir(self.layout.inbox) as entries:
            for entry in entries:
                if not self._is_dossier_name(entry.name):
                    continue
                if entry.is_symlink() or entry.is_dir(follow_symlinks=False):
                    present.add(entry.name)
                    self._refresh(entry.name)
                else:
                    self._notice_once(
                        f"file:{entry.name}",
                        f"ignored a loose file in the "
                        f"inbox (dossiers are folders): {nfc(entry.name)}",
                    )
        for name in list(self._candidates):
            if name not in present:
                del self._candidates[name]

    def _refresh(self, name: str) -> None:
        if not self._is_dossier_name(name):
            return
        path = self.layout.inbox / name
        if not os.path.lexists(path) or not (path.is_symlink() or path.is_dir()):
            self._candidates.pop(name, None)
            return
        now = time.monotonic()
        snap = snapshot(path) if not path.is_symlink() else (("", "link", 0, 0),)
        known = self._candidates.get(name)
        if known is None or known.snapshot != snap:
            self._candidates[name] = _Candidate(path, snap, now)

    def _complete(self) -> list[_Candidate]:
        """Candidates that are complete now, in natural order (re-snapshotted to be sure)."""
        ready = []
        now = time.monotonic()
        for name in sorted(self._candidates, key=natural_key):
            candidate = self._candidates[name]
            path = candidate.path
            if path.is_symlink():
                ready.append(candidate)  # quarantined at once, never followed
                continue
            candidate.has_marker = any((path / m).is_file() for m in self.settings.markers)
            if candidate.has_marker:
                wait_for = self.settings.marker_settle_seconds
            elif self.settings.require_marker:
                continue
            else:
                wait_for = self.settings.quiet_seconds
            if now - candidate.since < wait_for:
                continue
            snap = snapshot(path)
            if snap != candidate.snapshot:
                candidate.snapshot, candidate.since = snap, now
                continue
            if not any(kind in ("file", "other") for _rel, kind, _size, _mtime in snap):
                self._notice_once(f"empty:{name}:{snap}", f"waiting: {nfc(name)} holds no file")
                continue
            ready.append(candidate)
        return ready

    # -- journal --------------------------------------------------------------------------------
    def _records(self) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
        """(dossier name → its last claim id, claim id → its ``finished`` record), from the
        records that fit; the others are reported once and ignored."""
        claims: dict[str, str] = {}
        finished: dict[str, dict[str, Any]] = {}
        for number, record in enumerate(read_journal(self.layout.journal), 1):
            event = record.get("event")
            if event == "claimed" and valid_claim(record):
                claims[record["dossier"]] = record["claim"]
            elif event == "finished" and (record.get("claim") or record.get("status")):
                problem = valid_finished(record, self.layout)
                if problem is not None:
                    self._notice_once(
                        f"record:{number}",
                        f"ignored journal record {number} ({problem}): it does not fit this "
                        "inbox's folders",
                    )
                    continue
                finished[record["claim"]] = record
        return claims, finished

    def _load_journal(self) -> None:
        _claims, finished = self._records()
        for record in finished.values():
            if record["status"] == "done" and record.get("content_sha256"):
                self._done_hashes[record["content_sha256"]] = (
                    nfc(record["dossier"]),
                    record["destination"],
                    record.get("bundle") or "",
                )
        # reason.json files lost to a crash between the move and the write
        for record in finished.values():
            if record["status"] == "done":
                continue
            destination = Path(record["destination"])
            reason = destination.with_name(destination.name + REASON_SUFFIX)
            if os.path.lexists(destination) and not os.path.lexists(reason):
                self._write_reason(reason, record.get("reason") or {})

    # -- recovery -------------------------------------------------------------------------------
    def _recover(self) -> None:
        """What a previous process (or a pause) left in ``processing/``: poison pills are
        quarantined and recorded outcomes moved BEFORE anything is run again."""
        claims, finished = self._records()
        resume: list[tuple[Path, str, str]] = []
        for name in sorted(os.listdir(self.layout.processing), key=natural_key):
            path = self.layout.processing / name
            claim_id = claims.get(name)
            if claim_id is not None and claim_id in finished:
                record = finished[claim_id]
                self._move(path, record["status"], name, claim_id, record.get("reason") or {},
                           recorded=record)
                self.stats["recovered"] += 1
                continue
            claim_id = claim_id or f"recovered-{uuid.uuid4().hex[:8]}"
            crashed = self._store.attempts(claim_id).unfinished
            if crashed >= self.settings.crash_limit:
                self._quarantine_poison(path, name, claim_id, crashed)
                continue
            resume.append((path, name, claim_id))
        for path, name, claim_id in resume:
            if self._stopping():
                return
            self._emit(
                "notice",
                dossier=nfc(name),
                message="resuming a dossier left in processing by a previous run",
            )
            self._process_claimed(path, name, claim_id, recovering=True)

    def _quarantine_poison(self, path: Path, name: str, claim_id: str, crashed: int) -> None:
        error = DossierCrashedError(
            f"the watcher stopped {crashed} times while working on this dossier (killed, out "
            "of memory or a crash) and never finished it: quarantined, not tried again",
            path=nfc(name),
            hint="look for a hostile or huge file; to retry, move it back into the inbox",
        )
        reason = reason_for_error(error)
        reason["attempts"] = crashed
        self._finish(path, name, claim_id, "quarantined", reason)

    # -- taking one dossier ---------------------------------------------------------------------
    def _take(self, candidate: _Candidate) -> None:
        name = candidate.path.name
        self._candidates.pop(name, None)
        claimed = self.layout.processing / name
        if os.path.lexists(claimed):
            self._notice_once(
                f"busy:{name}",
                f"{nfc(name)}: a dossier of the same name is still in processing; it waits",
            )
            return
        claim_id = uuid.uuid4().hex[:12]
        self.journal.append(
            "claimed",
            claim=claim_id,
            dossier=name,
            marker=candidate.has_marker,
            files=len(candidate.snapshot),
        )
        try:
            os.rename(candidate.path, claimed)
        except FileNotFoundError:
            return  # the station took it back
        except OSError as exc:
            if exc.errno in STORAGE_ERRNOS:
                raise
            self._notice_once(f"claim:{name}", f"{nfc(name)}: cannot claim: {exc.strerror}")
            return
        fsync_path(self.layout.processing)
        why = (
            "symbolic link"
            if claimed.is_symlink()
            else "marker found"
            if candidate.has_marker
            else "quiet period over"
        )
        self._emit("taken", dossier=nfc(name), message=why)
        self._process_claimed(claimed, name, claim_id)

    def _refused(self, path: Path, name: str, claim_id: str) -> bool:
        """Quarantine a dossier that must not be read (a link, links leaving it); True if so."""
        error: DigitizeError | None = None
        if path.is_symlink() or not path.is_dir():
            error = UnsafePathError(
                "the dossier is a symbolic link (or not a folder); it was not followed",
                path=nfc(name),
            )
        elif links := unsafe_links(path):
            error = UnsafePathError(
                f"symbolic link leads outside the dossier: {links[0]}", path=nfc(name)
            )
        if error is None:
            return False
        self._finish(path, name, claim_id, "quarantined", reason_for_error(error))
        return True

    def _duplicate_of(self, digest: str) -> tuple[str, str, str] | None:
        """The dossier done before with this content, while its bundle is still in OUT."""
        original = self._done_hashes.get(digest)
        if original is None or not original[2]:
            return None
        return original if (self.layout.out_dir / original[2]).is_dir() else None

    def _process_claimed(
        self, path: Path, name: str, claim_id: str, *, recovering: bool = False
    ) -> None:
        if self._refused(path, name, claim_id):
            return
        try:
            digest = content_hash(path, self.settings.markers)
        except OSError as exc:
            if exc.errno in STORAGE_ERRNOS:
                raise
            error = InputError(f"a file cannot be read: {exc.strerror}", path=nfc(name))
            self._finish(path, name, claim_id, "quarantined", reason_for_error(error))
            return
        original = self._duplicate_of(digest)
        if original is not None:
            reason = {
                "status": "duplicate",
                "original": original[0],
                "original_path": original[1],
                "content_sha256": digest,
                "message": f"same content as {original[0]}, already done",
                "time": _now(),
                "tool_version": __version__,
            }
            self._finish(path, name, claim_id, "duplicate", reason, content_sha256=digest)
            return
        job = DossierJob(
            job_id=claim_id,
            source=path,
            out_dir=self.layout.out_dir,
            name=nfc(name),
            content_sha256=digest,
            tags={"claim": claim_id},
        )
        station_failures = 0
        while True:
            outcome = run_job(job, self._context())
            if outcome.kind == "abandoned":
                self._emit("notice", dossier=nfc(name), message="abandoned; redone on restart")
                return
            if retry_later(outcome):
                station_failures += 1
                if station_failures < self.settings.station_retry_limit:
                    self._record_quietly(
                        "deferred", claim=claim_id, dossier=name, exit_code=outcome.exit_code,
                        error=outcome.error,
                    )
                    if not self._wait_until_ready(outcome.error):
                        return  # stopped: it stays claimed and is resumed at the next start
                    continue
            elif needs_person(outcome):
                self._record_quietly(
                    "held", claim=claim_id, dossier=name, exit_code=outcome.exit_code,
                    error=outcome.error,
                )
                raise error_for_code(
                    outcome.exit_code,
                    f"{outcome.error} — the dossier stays in {self.layout.processing} and is "
                    "taken again at the next start",
                )
            elif outcome.kind == "station_fault" and (
                self._store.attempts(claim_id).started < self.settings.crash_limit
            ):
                self._emit("notice", dossier=nfc(name), message=f"trying again: {outcome.error}")
                continue
            self._conclude(path, name, claim_id, outcome, digest, recovering=recovering,
                           station_failures=station_failures)
            return

    def _conclude(
        self,
        path: Path,
        name: str,
        claim_id: str,
        outcome: JobOutcome,
        digest: str,
        *,
        recovering: bool,
        station_failures: int,
    ) -> None:
        if outcome.kind == "done":
            done = "bundle written and verified" if self.settings.verify else "bundle written"
            reason: dict[str, Any] = {
                "message": done,
                "pages": outcome.pages,
                "seconds": outcome.seconds,
            }
        elif outcome.kind == "skipped":
            self.stats["recovered"] += int(recovering)
            reason = {"message": "bundle already written (from exactly these inputs) and verified"}
        else:
            reason = reason_for_outcome(outcome)
            if station_failures:
                reason["message"] += (
                    f" (failed {station_failures} times this way although the station's own "
                    "check passed in between: taken to be the dossier's fault)"
                )
        status: Outcome = "done" if outcome.kind in ("done", "skipped") else "quarantined"
        self._finish(path, name, claim_id, status, reason, content_sha256=digest,
                     bundle=outcome.bundle or "")

    # -- outcomes -------------------------------------------------------------------------------
    def _finish(
        self,
        path: Path,
        name: str,
        claim_id: str,
        outcome: Outcome,
        reason: dict[str, Any],
        *,
        content_sha256: str = "",
        bundle: str = "",
    ) -> None:
        destination = unique_destination(self.layout.folder_of(outcome), name)
        reason = {"dossier": nfc(name), **reason}
        if bundle:
            reason.setdefault("bundle", str(self.layout.out_dir / bundle))
        record = self.journal.append(
            "finished",
            claim=claim_id,
            dossier=name,
            status=outcome,
            destination=str(destination),
            reason=reason,
            content_sha256=content_sha256,
            bundle=bundle,
        )
        if outcome == "done" and content_sha256:
            self._done_hashes[content_sha256] = (nfc(name), str(destination), bundle)
        self._move(path, outcome, name, claim_id, reason, recorded=record)

    def _move(
        self,
        path: Path,
        outcome: Outcome,
        name: str,
        claim_id: str,
        reason: dict[str, Any],
        *,
        recorded: dict[str, Any],
    ) -> None:
        destination = Path(recorded.get("destination") or "")
        if not destination.name or os.path.lexists(destination):
            destination = unique_destination(self.layout.folder_of(outcome), name)
        try:
            os.rename(path, destination)
        except OSError as exc:
            if exc.errno in STORAGE_ERRNOS:
                raise
            self._emit(
                "notice",
                dossier=nfc(name),
                message=f"cannot move to {destination}: "
                f"{exc.strerror}; it stays in {path.parent} until the next start",
            )
            return
        fsync_path(destination.parent)
        fsync_path(path.parent)
        if outcome != "done":
            self._write_reason(destination.with_name(destination.name + REASON_SUFFIX), reason)
        self._record_quietly(
            "moved", claim=claim_id, dossier=name, status=outcome, destination=str(destination)
        )
        self.stats[outcome] += 1
        self._emit(
            "outcome",
            dossier=nfc(name),
            outcome=outcome,
            destination=str(destination),
            bundle=str(recorded.get("bundle") or ""),
            exit_code=int(reason.get("exit_code", 0) or 0),
            message=str(reason.get("message", "")),
        )

    def _write_reason(self, target: Path, reason: dict[str, Any]) -> None:
        data = (json.dumps(reason, ensure_ascii=False, indent=2) + "\n").encode()
        try:
            write_state_file(target, data)
        except OSError as exc:  # the journal holds it; re-written at the next start
            self._notice_once(
                f"reason:{target}", f"cannot write {target.name}: {exc.strerror or exc}"
            )


def watch_inbox(
    inbox: str | Path,
    out_dir: str | Path,
    profile: Profile | None = None,
    settings: WatchSettings | None = None,
    *,
    stop: threading.Event,
    abandon: threading.Event | None = None,
    on_event: WatchEventCallback | None = None,
    station: StationOptions | None = None,
) -> WatchStats:
    """Watch ``inbox`` until ``stop`` is set (see ``InboxWatcher``)."""
    watcher = InboxWatcher(inbox, out_dir, profile, settings, on_event=on_event, station=station)
    return watcher.run(stop, abandon)


__all__ = [
    "InboxLayout",
    "InboxWatcher",
    "WatchEvent",
    "WatchSettings",
    "WatchStats",
    "check_watch_setup",
    "content_hash",
    "error_for_code",
    "installation_dirs",
    "snapshot",
    "unique_destination",
    "unsafe_links",
    "watch_inbox",
]
