"""A station-grade watch folder: every dossier dropped into INBOX ends in exactly one place.

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

Why the claim rename: once a dossier is in ``processing/`` a late write by the station to
``INBOX/<name>`` lands in a new folder (a new dossier, caught as a duplicate or a name
collision) instead of changing scans under the pipeline's feet; and the file system itself
records which dossier was being worked on when the process died.

Crash safety (SIGKILL at any instant):

* the bundle appears under its final name complete or not at all (``digitize.bundle``);
* the journal ``INBOX/.digitize/journal.jsonl`` (append-only, fsync'ed) records ``claimed``
  before the claim rename and ``finished`` (outcome and destination) before the move out of
  ``processing/``; ``reason.json`` is written after the move and re-written at start-up
  from the journal when missing;
* at start-up, a dossier left in ``processing/`` is finished from its journal record if it
  has one, moved to ``done/`` without re-running if its bundle exists, verifies and was
  made from the same scans, and digitised again otherwise.

Inputs are never deleted or modified: they are only renamed inside one file system.
One watcher per inbox (``INBOX/.digitize/lock``, an flock released by the kernel on death).
The library installs no signal handlers: ``stop`` finishes the current dossier and returns,
``abandon`` gives it up at once (it stays in ``processing/`` and is redone on restart).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import digitize
from digitize import __version__
from digitize.batch import (
    AbandonedError,
    Journal,
    PagePool,
    SerialSigner,
    check_existing_bundle,
    expected_bundle_name,
    nfc,
    paths_overlap,
    read_journal,
    trust_roots_for,
)
from digitize.errors import (
    ConfigError,
    DigitizeError,
    ExitCode,
    OutputError,
    PageWorkerDiedError,
    UnsafePathError,
)
from digitize.ingest import natural_key
from digitize.models import FrozenModel
from digitize.pipeline import Event, run_dossier
from digitize.profiles import Profile, WatchSettings, load_profile
from digitize.sign import DigitiserSigner, open_signer
from digitize.util import fsync_path, sha256_file, write_atomic
from digitize.verify import demo_allowed_for

STATE_DIR = ".digitize"
JOURNAL_NAME = "journal.jsonl"
LOCK_NAME = "lock"
PROCESSING = "processing"
REASON_SUFFIX = ".reason.json"

Outcome = Literal["done", "quarantined", "duplicate"]


WatchEventKind = Literal["started", "taken", "progress", "outcome", "notice", "stopped"]


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


# --- set-up checks ----------------------------------------------------------------------------
def installation_dirs() -> tuple[Path, ...]:
    """The installed package folder, and the source tree when running from a checkout."""
    package = Path(digitize.__file__).resolve().parent
    dirs = [package]
    repo = package.parent
    if (repo / "pyproject.toml").is_file() and (repo / "digitize").is_dir():
        dirs.append(repo)
    return tuple(dirs)


def _same_filesystem(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


@dataclass(frozen=True)
class InboxLayout:
    inbox: Path
    out_dir: Path
    done: Path
    quarantine: Path
    duplicate: Path
    state: Path
    processing: Path
    journal: Path

    def reserved_names(self) -> set[str]:
        """Top-level names of INBOX that are ours, not dossiers."""
        names = {STATE_DIR}
        for folder in (self.done, self.quarantine, self.duplicate):
            try:
                names.add(folder.relative_to(self.inbox).parts[0])
            except (ValueError, IndexError):
                continue  # configured outside the inbox
        return names


def _resolve_folder(inbox: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else inbox / path


def check_watch_setup(inbox: Path, out_dir: Path, settings: WatchSettings) -> InboxLayout:
    """Refuse set-ups where moving inputs or writing bundles could damage something."""
    if not inbox.is_dir():
        raise ConfigError("inbox folder not found (or not a folder)", path=inbox)
    real_inbox = Path(os.path.realpath(inbox))
    if real_inbox == Path(real_inbox.anchor) or real_inbox == Path.home().resolve():
        raise UnsafePathError(
            "the inbox is a file-system root or a home folder: every "
            "folder in it would be taken as a dossier and moved",
            path=inbox,
        )
    if paths_overlap(inbox, out_dir):
        raise UnsafePathError(
            "the output folder overlaps the inbox (one is inside the other)",
            path=out_dir,
            hint="keep OUT outside INBOX: bundles must never be taken as dossiers",
        )
    for installed in installation_dirs():
        if paths_overlap(inbox, installed):
            raise UnsafePathError(
                f"the inbox overlaps the digitize installation ({installed}): its folders "
                "would be moved",
                path=inbox,
            )
        if paths_overlap(out_dir, installed):
            raise UnsafePathError(
                f"the output folder overlaps the digitize installation ({installed})", path=out_dir
            )
    layout = InboxLayout(
        inbox=inbox,
        out_dir=out_dir,
        done=_resolve_folder(inbox, settings.done_dir),
        quarantine=_resolve_folder(inbox, settings.quarantine_dir),
        duplicate=_resolve_folder(inbox, settings.duplicate_dir),
        state=inbox / STATE_DIR,
        processing=inbox / STATE_DIR / PROCESSING,
        journal=inbox / STATE_DIR / JOURNAL_NAME,
    )
    for folder in (layout.done, layout.quarantine, layout.duplicate):
        if paths_overlap(folder, out_dir):
            raise UnsafePathError(
                "a done/quarantine/duplicate folder overlaps the output", path=folder
            )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for folder in (layout.processing, layout.done, layout.quarantine, layout.duplicate):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create a working folder: {exc.strerror}", path=exc.filename or inbox
        ) from None
    for folder in (layout.done, layout.quarantine, layout.duplicate):
        if not _same_filesystem(folder, inbox):
            raise ConfigError(
                "this folder is on another file system than the inbox: moves would not be atomic",
                path=folder,
            )
    return layout


# --- looking at dossiers ------------------------------------------------------------------------
Snapshot = tuple[tuple[str, str, int, int], ...]


def snapshot(folder: Path) -> Snapshot:
    """(relative path, kind, size, mtime_ns) of everything below ``folder``, links not followed."""
    items: list[tuple[str, str, int, int]] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        base = Path(root)
        for name in dirs + files:
            path = base / name
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            kind = (
                "link"
                if stat.S_ISLNK(st.st_mode)
                else "dir"
                if stat.S_ISDIR(st.st_mode)
                else "file"
            )
            size = st.st_size if kind == "file" else 0
            items.append((path.relative_to(folder).as_posix(), kind, size, st.st_mtime_ns))
    return tuple(sorted(items))


def unsafe_links(folder: Path) -> list[str]:
    """Symbolic links below ``folder`` that resolve outside it (or nowhere)."""
    real_root = Path(os.path.realpath(folder))
    bad = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            if path.is_symlink():
                target = Path(os.path.realpath(path))
                if not target.exists() or (target != real_root and real_root not in target.parents):
                    bad.append(path.relative_to(folder).as_posix())
    return bad


def content_hash(folder: Path, markers: tuple[str, ...]) -> str:
    """SHA-256 over (relative NFC path, file SHA-256) of every file; marker files left out.

    The folder's own name is not part of it: the same scans re-sent under another name are
    a duplicate.
    """
    digest = hashlib.sha256()
    entries = []
    for root, _dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            path = Path(root) / name
            rel = nfc(path.relative_to(folder).as_posix())
            if rel in markers or path.is_symlink():
                continue
            entries.append((rel, sha256_file(path)))
    for rel, file_hash in sorted(entries):
        digest.update(f"{rel}\0{file_hash}\n".encode())
    return digest.hexdigest()


@dataclass
class _Candidate:
    path: Path
    snapshot: Snapshot
    since: float  # monotonic time of the last observed change
    has_marker: bool = False


def unique_destination(folder: Path, name: str) -> Path:
    """``folder/name``, or ``name-2``, ``name-3``…: never rename onto something that exists
    (a rename onto an empty folder would silently replace it)."""
    candidate = folder / name
    number = 1
    while os.path.lexists(candidate) or os.path.lexists(
        candidate.with_name(candidate.name + REASON_SUFFIX)
    ):
        number += 1
        candidate = folder / f"{name}-{number}"
    return candidate


# --- the watcher --------------------------------------------------------------------------------
class InboxWatcher:
    """Watches one inbox; ``run(stop, abandon)`` until ``stop`` is set. See the module docstring."""

    def __init__(
        self,
        inbox: str | Path,
        out_dir: str | Path,
        profile: Profile | None = None,
        settings: WatchSettings | None = None,
        *,
        on_event: WatchEventCallback | None = None,
        signer: DigitiserSigner | None = None,
        data_dir: Path | None = None,
        trust_roots: tuple[Path, ...] | None = None,
    ) -> None:
        self.profile = profile or load_profile()
        self.settings = settings or self.profile.watch.model_copy(
            update={"workers": self.profile.pipeline.workers}
        )
        self.layout = check_watch_setup(Path(inbox), Path(out_dir), self.settings)
        self.on_event = on_event
        self.data_dir = data_dir
        self._trust_roots = trust_roots
        self.journal = Journal(self.layout.journal)
        self._given_signer = signer
        self._signer: SerialSigner | None = None
        self._pool: PagePool | None = None
        self._done_hashes: dict[str, tuple[str, str]] = {}  # content hash → (dossier, dest)
        self._candidates: dict[str, _Candidate] = {}
        self._noticed: set[str] = set()
        self.stats = {"done": 0, "quarantined": 0, "duplicate": 0, "recovered": 0}

    @property
    def roots(self) -> tuple[Path, ...]:
        # Looked up each time: the demo trust root appears when the demo signer first opens.
        if self._trust_roots is not None:
            return self._trust_roots
        return trust_roots_for(self.profile)

    # -- events ---------------------------------------------------------------------------------
    def _emit(self, kind: WatchEventKind, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event(WatchEvent(kind=kind, **fields))

    def _notice_once(self, key: str, message: str) -> None:
        if key not in self._noticed:
            self._noticed.add(key)
            self._emit("notice", message=message)

    # -- main loop ------------------------------------------------------------------------------
    def run(self, stop: threading.Event, abandon: threading.Event | None = None) -> WatchStats:
        abandon = abandon or threading.Event()
        with self._locked():
            self.journal.append(
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
            try:
                self._load_journal()
                self._recover(stop, abandon)
                self._full_scan()
                last_scan = time.monotonic()
                for changes in self._changes(stop):
                    for name in changes:
                        self._refresh(name)
                    if time.monotonic() - last_scan >= self.settings.rescan_seconds:
                        self._full_scan()
                        last_scan = time.monotonic()
                    for candidate in self._complete():
                        if stop.is_set() or abandon.is_set():
                            break
                        self._take(candidate, stop, abandon)
                    if stop.is_set() or abandon.is_set():
                        break
            finally:
                self._close()
                self.journal.append("watch_stopped", **self.stats)
                self._emit("stopped", message=", ".join(f"{k} {v}" for k, v in self.stats.items()))
        return WatchStats(**self.stats)

    def _changes(self, stop: threading.Event) -> Iterator[set[str]]:
        """Top-level names that changed, at least once per tick (empty set on a quiet tick).

        Only INBOX itself is watched (not recursively): inotify needs one watch per folder
        and ``done/`` grows without bound; changes inside a dossier are caught by comparing
        snapshots when its quiet period ends, events only make new arrivals show up at once.
        """
        import watchfiles

        reserved = self.layout.reserved_names()
        inbox = str(self.layout.inbox)

        def interesting(_change: Any, path: str) -> bool:
            rel = os.path.relpath(path, inbox)
            top = rel.split(os.sep, 1)[0]
            return top not in reserved and not top.startswith(".")

        for changes in watchfiles.watch(
            self.layout.inbox,
            watch_filter=interesting,
            debounce=self.settings.tick_ms,
            step=min(50, self.settings.tick_ms),
            stop_event=stop,
            rust_timeout=self.settings.tick_ms,
            yield_on_timeout=True,
            force_polling=self.settings.poll,
            poll_delay_ms=self.settings.poll_interval_ms,
            recursive=False,
            raise_interrupt=False,
            ignore_permission_denied=True,
        ):
            yield {os.path.relpath(path, inbox).split(os.sep, 1)[0] for _c, path in changes}
            if stop.is_set():
                return

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.layout.state / LOCK_NAME
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
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
            self._pool.close()
            self._pool = None
        if self._signer is not None:
            if self._given_signer is None:
                self._signer.close()
            self._signer = None

    def _resources(self) -> tuple[DigitiserSigner, PagePool]:
        """Signer and page pool are opened on first use (an idle watcher holds no token)."""
        if self._signer is None:
            inner = self._given_signer or open_signer(self.profile.sign, self.data_dir)
            self._signer = SerialSigner(inner)
        if self._pool is None:
            self._pool = PagePool(self.settings.workers)
        return self._signer, self._pool

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
            self._candidates[name] = _Candidate(path=path, snapshot=snap, since=now)

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
            if not any(kind == "file" for _rel, kind, _size, _mtime in snap):
                self._notice_once(f"empty:{name}:{snap}", f"waiting: {nfc(name)} holds no file")
                continue
            ready.append(candidate)
        return ready

    # -- journal --------------------------------------------------------------------------------
    def _load_journal(self) -> None:
        records = read_journal(self.layout.journal)
        for record in records:
            if (
                record.get("event") == "finished"
                and record.get("status") == "done"
                and record.get("content_sha256")
            ):
                self._done_hashes[record["content_sha256"]] = (
                    record.get("dossier", ""),
                    record.get("destination", ""),
                )
        # reason.json files lost to a crash between the move and the write
        for record in records:
            if record.get("event") != "finished" or record.get("status") not in (
                "quarantined",
                "duplicate",
            ):
                continue
            destination = Path(record.get("destination", ""))
            reason = destination.with_name(destination.name + REASON_SUFFIX)
            if destination.name and os.path.lexists(destination) and not reason.exists():
                self._write_reason(reason, record.get("reason", {}))

    def _last_claim(self, name: str) -> dict[str, Any] | None:
        claim = None
        finished: dict[str, dict[str, Any]] = {}
        for record in read_journal(self.layout.journal):
            if record.get("event") == "claimed" and record.get("dossier") == name:
                claim = record
            elif record.get("event") == "finished" and record.get("claim"):
                finished[record["claim"]] = record
        if claim is None:
            return None
        return {"claim": claim["claim"], "finished": finished.get(claim["claim"])}

    # -- recovery -------------------------------------------------------------------------------
    def _recover(self, stop: threading.Event, abandon: threading.Event) -> None:
        leftovers = sorted(os.listdir(self.layout.processing), key=natural_key)
        for name in leftovers:
            if stop.is_set() or abandon.is_set():
                return
            path = self.layout.processing / name
            info = self._last_claim(name)
            claim_id = info["claim"] if info else f"recovered-{uuid.uuid4().hex[:8]}"
            if info and info["finished"] is not None:
                record = info["finished"]
                self._move(
                    path,
                    record["status"],
                    name,
                    claim_id,
                    record.get("reason", {}),
                    recorded=record,
                )
                self.stats["recovered"] += 1
                continue
            self._emit(
                "notice",
                dossier=nfc(name),
                message="resuming a dossier left in processing by a previous run",
            )
            self._process_claimed(path, name, claim_id, stop, abandon, recovering=True)

    # -- taking one dossier ---------------------------------------------------------------------
    def _take(self, candidate: _Candidate, stop: threading.Event, abandon: threading.Event) -> None:
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
        self._process_claimed(claimed, name, claim_id, stop, abandon)

    def _process_claimed(
        self,
        path: Path,
        name: str,
        claim_id: str,
        stop: threading.Event,
        abandon: threading.Event,
        *,
        recovering: bool = False,
    ) -> None:
        # A symbolic link as the dossier itself, or links leaving it: never followed.
        error: DigitizeError
        if path.is_symlink() or not path.is_dir():
            error = UnsafePathError(
                "the dossier is a symbolic link (or not a folder); it was not followed",
                path=nfc(name),
            )
            self._finish(path, name, claim_id, "quarantined", self._error_reason(error))
            return
        links = unsafe_links(path)
        if links:
            error = UnsafePathError(
                f"symbolic link leads outside the dossier: {links[0]}", path=nfc(name)
            )
            self._finish(path, name, claim_id, "quarantined", self._error_reason(error))
            return
        digest = content_hash(path, self.settings.markers)
        original = self._done_hashes.get(digest)
        if original is not None:
            reason: dict[str, Any] = {
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
        try:
            bundle = expected_bundle_name(path)
        except DigitizeError as exc:
            self._finish(
                path, name, claim_id, "quarantined", self._error_reason(exc), content_sha256=digest
            )
            return
        final = self.layout.out_dir / bundle
        if os.path.lexists(final):
            existing = check_existing_bundle(final, path, self.roots, verify=self.settings.verify,
                                             allow_demo=demo_allowed_for(self.profile))
            if existing.ok:
                self.stats["recovered"] += int(recovering)
                self._finish(
                    path,
                    name,
                    claim_id,
                    "done",
                    {"message": "bundle already written and verified"},
                    content_sha256=digest,
                    bundle=bundle,
                )
                return
            taken = OutputError(existing.reason, path=final)
            reason = self._error_reason(taken)
            reason["exit_code"] = existing.exit_code or int(ExitCode.OUTPUT)
            self._finish(
                path, name, claim_id, "quarantined", reason, content_sha256=digest, bundle=bundle
            )
            return
        self._run(path, name, claim_id, digest, bundle, abandon)

    def _run(
        self,
        path: Path,
        name: str,
        claim_id: str,
        digest: str,
        bundle: str,
        abandon: threading.Event,
    ) -> None:
        signer, pool = self._resources()
        executor = pool.executor

        def on_event(event: Event) -> None:
            if abandon.is_set() and event.kind != "bundle_written":
                raise AbandonedError("abandoned on request", path=name)
            self._emit("progress", dossier=nfc(name), event=event)

        self.journal.append("started", claim=claim_id, dossier=name, bundle=bundle)
        started = time.monotonic()
        try:
            result = run_dossier(
                path,
                self.layout.out_dir,
                profile=self.profile,
                signer=signer,
                on_event=on_event,
                executor=executor,
                data_dir=self.data_dir,
            )
        except AbandonedError:
            self.journal.append("abandoned", claim=claim_id, dossier=name)
            self._emit("notice", dossier=nfc(name), message="abandoned; redone on restart")
            return
        except (BrokenProcessPool, PageWorkerDiedError):
            pool.replace_broken(executor)
            if abandon.is_set():
                self.journal.append("abandoned", claim=claim_id, dossier=name)
                return
            error = DigitizeError("a page worker died (out of memory or killed)", path=nfc(name))
            self._finish(
                path,
                name,
                claim_id,
                "quarantined",
                self._error_reason(error),
                content_sha256=digest,
                bundle=bundle,
            )
            return
        except DigitizeError as exc:
            self._finish(
                path,
                name,
                claim_id,
                "quarantined",
                self._error_reason(exc),
                content_sha256=digest,
                bundle=bundle,
            )
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the station
            text = " ".join(str(exc).split())
            error = DigitizeError(f"internal error: {type(exc).__name__}: {text}", path=nfc(name))
            self._finish(
                path,
                name,
                claim_id,
                "quarantined",
                self._error_reason(error),
                content_sha256=digest,
                bundle=bundle,
            )
            return
        if self.settings.verify:
            from digitize.verify import verify_bundle

            report = verify_bundle(result.bundle_path, self.roots, lang="en",
                                   allow_demo=demo_allowed_for(self.profile))
            if not report.ok:
                # Never leave an unverifiable bundle under a final name for a quarantined input.
                aside = self.layout.out_dir / f".rejected-{bundle}-{uuid.uuid4().hex[:8]}"
                os.rename(result.bundle_path, aside)
                first = report.failures[0]
                reason = self._error_reason(
                    DigitizeError(
                        f"the new bundle fails verification: {first.name}: {first.message}",
                        path=nfc(name),
                    )
                )
                reason["exit_code"] = report.exit_code
                reason["rejected_bundle"] = str(aside)
                self._finish(
                    path,
                    name,
                    claim_id,
                    "quarantined",
                    reason,
                    content_sha256=digest,
                    bundle=bundle,
                )
                return
        self._finish(
            path,
            name,
            claim_id,
            "done",
            {
                "message": "bundle written and verified",
                "pages": result.pages,
                "seconds": round(time.monotonic() - started, 2),
            },
            content_sha256=digest,
            bundle=bundle,
        )

    # -- outcomes -------------------------------------------------------------------------------
    def _error_reason(self, error: DigitizeError) -> dict[str, Any]:
        return {
            "status": "quarantined",
            "error": type(error).__name__,
            "exit_code": int(error.exit_code),
            "message": error.one_line(),
            "time": _now(),
            "tool_version": __version__,
        }

    def _destination_folder(self, outcome: Outcome) -> Path:
        return {
            "done": self.layout.done,
            "quarantined": self.layout.quarantine,
            "duplicate": self.layout.duplicate,
        }[outcome]

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
        destination = unique_destination(self._destination_folder(outcome), name)
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
            self._done_hashes[content_sha256] = (nfc(name), str(destination))
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
            destination = unique_destination(self._destination_folder(outcome), name)
        try:
            os.rename(path, destination)
        except OSError as exc:
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
        self.journal.append(
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

    @staticmethod
    def _write_reason(target: Path, reason: dict[str, Any]) -> None:
        write_atomic(target, (json.dumps(reason, ensure_ascii=False, indent=2) + "\n").encode())


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def watch_inbox(
    inbox: str | Path,
    out_dir: str | Path,
    profile: Profile | None = None,
    settings: WatchSettings | None = None,
    *,
    stop: threading.Event,
    abandon: threading.Event | None = None,
    on_event: WatchEventCallback | None = None,
    data_dir: Path | None = None,
) -> WatchStats:
    """Watch ``inbox`` until ``stop`` is set (see ``InboxWatcher``)."""
    watcher = InboxWatcher(inbox, out_dir, profile, settings, on_event=on_event, data_dir=data_dir)
    return watcher.run(stop, abandon)


__all__ = [
    "InboxLayout",
    "InboxWatcher",
    "WatchEvent",
    "WatchSettings",
    "WatchStats",
    "check_watch_setup",
    "content_hash",
    "installation_dirs",
    "snapshot",
    "unique_destination",
    "unsafe_links",
    "watch_inbox",
]
