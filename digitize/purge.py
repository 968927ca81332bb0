"""Retention: remove what a station keeps about citizens once it is old enough.

A watch station keeps every input it handled (``done/``, ``quarantine/``, ``duplicate/``) and
every new bundle that failed verification (``OUT/.rejected-…``); a killed run can leave
staging folders with unsigned PDFs. All hold personal data; none is the archive (the archive
is the verified bundle in OUT, never touched here). ``plan_purge`` lists what is older than a
retention period, ``purge`` removes it.

What is considered, and nothing else:

* ``INBOX/done/*``, ``INBOX/quarantine/*``, ``INBOX/duplicate/*`` (the folders the watch settings
  name), each with its ``<name>.reason.json``; a ``reason.json`` whose entry is gone is removed
  on its own age;
* ``OUT/.rejected-<bundle>-<random>`` folders and their ``.zip``;
* staging left by dead processes in OUT: ``.<bundle>.partial-…``, ``.work-…``, ``.zip.partial-…``
  written by THIS host whose process is gone (whatever their age: they are never finished);
  written before hosts were recorded: when older than the period and no local process has
  their pid. Another host's staging is never touched (it may be alive). An ``.old-…`` bundle is
  removed only when a bundle stands under its final name; otherwise it is the only copy and is
  kept (the next run of the dossier renames it back).

Age: for an inbox entry, the time of the journal's last ``moved`` (else ``finished``) record
whose destination is that entry — when the station finished with it; without one, the entry's
own modification time (``lstat``; a folder's changes when files are added or removed in it).
For OUT entries, their modification time. Symbolic links are never followed: a link is
removed as a link (its target untouched), folders are removed with ``shutil.rmtree``'s
descriptor-based walk (links inside are unlinked, not followed), and a configured folder that
is itself a link is refused (``UnsafePathError``).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from digitize.bundle import host_token, pid_alive, staging_owner
from digitize.errors import ConfigError, UnsafePathError
from digitize.inbox import REASON_SUFFIX, inbox_layout
from digitize.jobs import REJECTED_PREFIX, read_journal
from digitize.models import FrozenModel
from digitize.settings import WatchSettings
from digitize.util import VN_TZ, vn_now

PurgeKind = Literal["done", "quarantine", "duplicate", "reason", "rejected", "staging"]
_AGE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([dhwm]?)\s*")
_UNITS = {"": "days", "d": "days", "h": "hours", "w": "weeks", "m": "minutes"}


class PurgeItem(FrozenModel):
    path: Path
    kind: PurgeKind
    since: datetime  # when the station finished with it (or its modification time)
    age_source: Literal["journal", "mtime", "dead_process"]
    removed: bool = False
    error: str = ""

    @property
    def age_days(self) -> float:
        return (vn_now() - self.since).total_seconds() / 86400


def parse_age(text: str) -> timedelta:
    """``90d`` (days, also the unit when none is given), ``12h``, ``2w``, ``30m`` (minutes)."""
    match = _AGE.fullmatch(text or "")
    if match is None:
        raise ConfigError(
            f"cannot read the age {text!r}: write a number and a unit, e.g. 90d, 12h, 2w"
        )
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(os.lstat(path).st_mtime, VN_TZ)


def _finish_times(journal: Path) -> dict[str, datetime]:
    """Real path of each destination → when the station last moved (or decided) it there."""
    times: dict[str, datetime] = {}
    moved: set[str] = set()
    for record in read_journal(journal):
        event = record.get("event")
        destination, when = record.get("destination"), record.get("time")
        if event not in ("moved", "finished") or not isinstance(destination, str):
            continue
        if not isinstance(when, str):
            continue
        try:
            moment = datetime.fromisoformat(when)
        except ValueError:
            continue
        key = os.path.realpath(destination)
        if event == "moved":
            moved.add(key)
            times[key] = moment
        elif key not in moved:
            times[key] = moment
    return times


def _checked_folder(folder: Path) -> bool:
    """True when ``folder`` exists as a real folder; a link in its place is refused."""
    if folder.is_symlink():
        raise UnsafePathError("this folder is a symbolic link: refused, not followed", path=folder)
    return folder.is_dir()


def _inbox_items(
    inbox: Path, settings: WatchSettings, cutoff: datetime
) -> list[PurgeItem]:
    layout = inbox_layout(inbox, inbox, settings)
    finished = _finish_times(layout.journal) if layout.journal.is_file() else {}
    items: list[PurgeItem] = []
    folders: tuple[tuple[PurgeKind, Path], ...] = (
        ("done", layout.done),
        ("quarantine", layout.quarantine),
        ("duplicate", layout.duplicate),
    )
    for kind, folder in folders:
        if not _checked_folder(folder):
            continue
        names = sorted(os.listdir(folder))
        entries = [n for n in names if not n.endswith(REASON_SUFFIX)]
        for name in entries:
            path = folder / name
            when = finished.get(os.path.realpath(path))
            source: Literal["journal", "mtime"] = "journal" if when else "mtime"
            since = when or _mtime(path)
            if since <= cutoff:
                items.append(PurgeItem(path=path, kind=kind, since=since, age_source=source))
                reason = folder / (name + REASON_SUFFIX)
                if os.path.lexists(reason):
                    items.append(PurgeItem(path=reason, kind="reason", since=since,
                                           age_source=source))
        for name in names:
            if not name.endswith(REASON_SUFFIX) or name[: -len(REASON_SUFFIX)] in entries:
                continue
            path = folder / name
            since = _mtime(path)
            if since <= cutoff:
                items.append(PurgeItem(path=path, kind="reason", since=since, age_source="mtime"))
    return items


def _staging_item(out_dir: Path, name: str, cutoff: datetime) -> PurgeItem | None:
    """A stale staging entry ``.<bundle>.<kind>-…`` of OUT (see the module docstring)."""
    if not name.startswith("."):
        return None
    body = name[1:]
    for marker in (".zip.partial-", ".partial-", ".work-", ".old-"):
        if marker not in body:
            continue
        bundle = body[: body.index(marker)]
        owner = staging_owner(name, bundle)
        if owner is None:
            return None
        kind, host, pid = owner
        path = out_dir / name
        since = _mtime(path)
        if host is not None and host != host_token():
            return None  # another machine's: it may be alive
        if pid_alive(pid) or (host is None and since > cutoff):
            return None
        if kind == "old" and not (out_dir / bundle).is_dir():
            return None  # the only copy of that bundle: the next run renames it back
        return PurgeItem(path=path, kind="staging", since=since, age_source="dead_process")
    return None


def _out_items(out_dir: Path, cutoff: datetime) -> list[PurgeItem]:
    if not _checked_folder(out_dir):
        return []
    items: list[PurgeItem] = []
    for name in sorted(os.listdir(out_dir)):
        path = out_dir / name
        if name.startswith(REJECTED_PREFIX):
            since = _mtime(path)
            if since <= cutoff:
                items.append(PurgeItem(path=path, kind="rejected", since=since, age_source="mtime"))
            continue
        staging = _staging_item(out_dir, name, cutoff)
        if staging is not None:
            items.append(staging)
    return items


def plan_purge(
    inbox: Path,
    out_dir: Path | None,
    older_than: timedelta,
    settings: WatchSettings | None = None,
) -> list[PurgeItem]:
    """What ``purge`` would remove (nothing is changed). ``settings``: where done/quarantine/
    duplicate are (the profile's ``watch:``; default folders without it)."""
    inbox = Path(inbox)
    if not inbox.is_dir() or inbox.is_symlink():
        raise ConfigError("inbox folder not found (or not a folder)", path=inbox)
    cutoff = vn_now() - older_than
    items = _inbox_items(inbox, settings or WatchSettings(), cutoff)
    if out_dir is not None:
        items += _out_items(Path(out_dir), cutoff)
    return items


def _remove(path: Path) -> None:
    mode = os.lstat(path).st_mode
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)  # descriptor-based on Linux: links inside are not followed
    else:
        os.unlink(path)  # a file, or a link (its target is left alone)


def purge(items: list[PurgeItem]) -> list[PurgeItem]:
    """Remove each item; the result says, per item, whether it was removed or why not."""
    done = []
    for item in items:
        try:
            _remove(item.path)
        except FileNotFoundError:
            done.append(item.model_copy(update={"removed": True}))
        except OSError as exc:
            done.append(item.model_copy(update={"error": exc.strerror or str(exc)}))
        else:
            done.append(item.model_copy(update={"removed": True}))
    return done


__all__ = ["PurgeItem", "PurgeKind", "parse_age", "plan_purge", "purge"]
