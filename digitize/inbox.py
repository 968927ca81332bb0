"""A watch station's inbox: its folders, the checks that make moving inputs safe, how a dossier
in it is looked at (snapshots, links, content hash), and which journal records may be trusted.

``digitize.watch`` is the state machine; this module holds what it stands on, so each stays
readable on its own.

Journal records are data in a folder other people may write to (an inbox on a share). A
``finished`` record decides where a dossier is renamed to and where its ``reason.json`` is
written, and a ``done`` record makes later dossiers of the same content duplicates. So a record
is used only when it fits (``valid_finished``): a known status, a destination that is a direct
child of the folder configured for that status, a reason that is an object, a content hash and
a bundle name of the right shape. Anything else is ignored (and reported), never followed:
a forged record can neither move a file elsewhere nor crash the watcher.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from digitize._version import __version__
from digitize.errors import ConfigError, DigitizeError, OutputError, UnsafePathError
from digitize.jobs import JobOutcome, paths_overlap
from digitize.jobs.statefiles import STATE_DIR_MODE, ensure_state_dir
from digitize.settings import WatchSettings
from digitize.util import nfc, sha256_regular, vn_now

STATE_DIR = ".digitize"
JOURNAL_NAME = "journal.jsonl"
LOCK_NAME = "lock"
PROCESSING = "processing"
REASON_SUFFIX = ".reason.json"

Outcome = Literal["done", "quarantined", "duplicate"]
OUTCOMES: tuple[Outcome, ...] = ("done", "quarantined", "duplicate")


def installation_dirs() -> tuple[Path, ...]:
    """The installed package folder, and the source tree when running from a checkout."""
    package = Path(__file__).resolve().parent
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

    def folder_of(self, outcome: Outcome) -> Path:
        return {"done": self.done, "quarantined": self.quarantine, "duplicate": self.duplicate}[
            outcome
        ]


def resolve_folder(inbox: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else inbox / path


def inbox_layout(inbox: Path, out_dir: Path, settings: WatchSettings) -> InboxLayout:
    """Where everything of ``inbox`` lives (nothing is created or checked)."""
    return InboxLayout(
        inbox=inbox,
        out_dir=out_dir,
        done=resolve_folder(inbox, settings.done_dir),
        quarantine=resolve_folder(inbox, settings.quarantine_dir),
        duplicate=resolve_folder(inbox, settings.duplicate_dir),
        state=inbox / STATE_DIR,
        processing=inbox / STATE_DIR / PROCESSING,
        journal=inbox / STATE_DIR / JOURNAL_NAME,
    )


def check_watch_setup(inbox: Path, out_dir: Path, settings: WatchSettings) -> InboxLayout:
    """Refuse set-ups where moving inputs or writing bundles could damage something; create
    the folders (0750; the state folder refused when it is a link)."""
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
    layout = inbox_layout(inbox, out_dir, settings)
    for folder in (layout.done, layout.quarantine, layout.duplicate):
        if paths_overlap(folder, out_dir):
            raise UnsafePathError(
                "a done/quarantine/duplicate folder overlaps the output", path=folder
            )
    try:
        out_dir.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
        ensure_state_dir(layout.state)
        ensure_state_dir(layout.processing)
        for folder in (layout.done, layout.quarantine, layout.duplicate):
            folder.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
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
    """(relative path, kind, size, mtime_ns) of everything below ``folder``, links not followed.
    Kinds: ``file`` (regular), ``dir``, ``link``, ``other`` (FIFO, device, socket)."""
    items: list[tuple[str, str, int, int]] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        base = Path(root)
        for name in dirs + files:
            path = base / name
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            mode = st.st_mode
            kind = (
                "link"
                if stat.S_ISLNK(mode)
                else "dir"
                if stat.S_ISDIR(mode)
                else "file"
                if stat.S_ISREG(mode)
                else "other"
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
    """SHA-256 over (relative NFC path, file SHA-256) of every regular file; marker files, links
    and special files (never opened: a FIFO would block) left out.

    The folder's own name is not part of it: the same scans re-sent under another name are
    a duplicate. Raises ``OSError`` for a file that cannot be read.
    """
    digest = hashlib.sha256()
    entries = []
    for root, _dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            path = Path(root) / name
            rel = nfc(path.relative_to(folder).as_posix())
            if rel in markers or not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            file_hash = sha256_regular(path)
            if file_hash is not None:
                entries.append((rel, file_hash))
    for rel, file_hash in sorted(entries):
        digest.update(f"{rel}\0{file_hash}\n".encode())
    return digest.hexdigest()


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


def inbox_changes(
    layout: InboxLayout, settings: WatchSettings, stop: threading.Event
) -> Iterator[set[str]]:
    """Top-level names of the inbox that changed, at least once per tick (empty set on a quiet
    tick), until ``stop`` is set.

    Only INBOX itself is watched (not recursively): inotify needs one watch per folder
    and ``done/`` grows without bound; changes inside a dossier are caught by comparing
    snapshots when its quiet period ends, events only make new arrivals show up at once.
    """
    import watchfiles

    reserved = layout.reserved_names()
    inbox = str(layout.inbox)

    def interesting(_change: Any, path: str) -> bool:
        rel = os.path.relpath(path, inbox)
        top = rel.split(os.sep, 1)[0]
        return top not in reserved and not top.startswith(".")

    for changes in watchfiles.watch(
        layout.inbox,
        watch_filter=interesting,
        debounce=settings.tick_ms,
        step=min(50, settings.tick_ms),
        stop_event=stop,
        rust_timeout=settings.tick_ms,
        yield_on_timeout=True,
        force_polling=settings.poll,
        poll_delay_ms=settings.poll_interval_ms,
        recursive=False,
        raise_interrupt=False,
        ignore_permission_denied=True,
    ):
        yield {os.path.relpath(path, inbox).split(os.sep, 1)[0] for _c, path in changes}
        if stop.is_set():
            return


# --- reason.json --------------------------------------------------------------------------------
def _now() -> str:
    return vn_now().isoformat(timespec="seconds")


def reason_for_error(error: DigitizeError) -> dict[str, Any]:
    """``reason.json`` of a dossier refused before it reached the job layer."""
    return {
        "status": "quarantined",
        "kind": "bad_input",
        "error": type(error).__name__,
        "exit_code": int(error.exit_code),
        "message": error.one_line(),
        "time": _now(),
        "tool_version": __version__,
    }


def reason_for_outcome(outcome: JobOutcome) -> dict[str, Any]:
    """``reason.json`` of a failed job: the outcome kind tells whose fault it was
    (``bad_input``, ``conflict``, ``station_fault`` with ``retryable``, ``bug``)."""
    reason: dict[str, Any] = {
        "status": "quarantined",
        "kind": outcome.kind,
        "retryable": outcome.retryable,
        "error": outcome.error_type,
        "exit_code": outcome.exit_code,
        "message": outcome.error,
        "time": _now(),
        "tool_version": __version__,
    }
    if outcome.rejected_bundle is not None:
        reason["rejected_bundle"] = str(outcome.rejected_bundle)
    return reason


# --- which journal records may be trusted -------------------------------------------------------
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BUNDLE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


def safe_entry_name(name: object) -> bool:
    """A single path component that names something inside a folder (no separator, not
    ``.``/``..``, no NUL)."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\0" not in name
    )


def valid_finished(record: dict[str, Any], layout: InboxLayout) -> str | None:
    """None when a ``finished`` record fits (see the module docstring); else why not."""
    status = record.get("status")
    if status not in OUTCOMES:
        return f"unknown status {status!r}"
    if not isinstance(record.get("claim"), str) or not record.get("claim"):
        return "no claim id"
    if not safe_entry_name(record.get("dossier")):
        return "the dossier name is not a single folder name"
    destination = record.get("destination")
    if not isinstance(destination, str) or not destination:
        return "no destination"
    target = Path(destination)
    folder = layout.folder_of(status)
    if not safe_entry_name(target.name) or os.path.realpath(target.parent) != os.path.realpath(
        folder
    ):
        return f"destination {destination!r} is not directly in {folder}"
    if not isinstance(record.get("reason", {}), dict):
        return "the reason is not an object"
    digest = record.get("content_sha256") or ""
    if not isinstance(digest, str) or (digest and not _SHA256.fullmatch(digest)):
        return "the content hash is not a SHA-256"
    bundle = record.get("bundle") or ""
    if not isinstance(bundle, str) or (bundle and not _BUNDLE.fullmatch(bundle)):
        return "the bundle is not a bundle folder name"
    return None


def valid_claim(record: dict[str, Any]) -> bool:
    return (
        isinstance(record.get("claim"), str)
        and bool(record.get("claim"))
        and safe_entry_name(record.get("dossier"))
    )


__all__ = [
    "JOURNAL_NAME",
    "LOCK_NAME",
    "OUTCOMES",
    "PROCESSING",
    "REASON_SUFFIX",
    "STATE_DIR",
    "InboxLayout",
    "Outcome",
    "Snapshot",
    "check_watch_setup",
    "content_hash",
    "inbox_changes",
    "inbox_layout",
    "installation_dirs",
    "reason_for_error",
    "reason_for_outcome",
    "resolve_folder",
    "safe_entry_name",
    "snapshot",
    "unique_destination",
    "unsafe_links",
    "valid_claim",
    "valid_finished",
]
