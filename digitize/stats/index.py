"""Finding bundles, noticing when one changed, and remembering verdicts (the stats index).

Verifying a bundle costs tens of milliseconds to seconds (hashes, CMS and PDF signatures); a
year of work is 100,000 bundles. The index remembers, per bundle path and trust set, the
verdict of the last full verification together with a *fingerprint* of the bundle's files, and
the facts of every verified manifest keyed by the manifest's SHA-256.

Fingerprint
    For a folder: for every entry in it (files, links, sub-folders), its name and the
    ``stat`` of what it points to: device, inode, size, ``st_mtime_ns`` and ``st_ctime_ns``.
    For a zip: the same of the zip file.

Trust argument
    A verdict is reused only when the fingerprint is identical; any difference — a byte
    written, a file added, removed, renamed or replaced — means a full ``verify_bundle`` again.
    Writing a file changes its mtime and ctime; replacing it changes its inode; adding or
    removing one changes the set of names. ``st_ctime`` is set by the kernel on every change of
    content or metadata and cannot be set back by a user (``touch``/``utime`` move mtime, and
    in doing so move ctime to *now*), so an edit that restores size and mtime is still seen.
    What is not seen: a change made by someone who can reset the system clock or write the raw
    disk (root), and a change inside one kernel clock tick right after the fingerprint was taken
    (the fingerprint is taken again after verification and a bundle that moved in between is
    not remembered). The index itself is a cache in the user's own data folder: whoever can
    write it can also replace the program; ``--reverify`` ignores it.

    A verdict also depends on what is trusted: rows are keyed by a *trust key* (the hashes of
    the trust-root files, whether demo roots are allowed, the report language and the tool
    version, since verification rules change between versions). A different trust set, or an
    upgrade, verifies everything again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from digitize._version import __version__
from digitize.errors import ConfigError
from digitize.manifest import CHECKSUMS_FILE, MANIFEST_FILE, MANIFEST_SIGNATURE_FILE
from digitize.stats.facts import FACTS_VERSION
from digitize.util import user_data_dir

SCHEMA_VERSION = "1"
INDEX_FILE = "stats-index.sqlite"
_BUNDLE_MARKERS = frozenset({MANIFEST_FILE, MANIFEST_SIGNATURE_FILE, CHECKSUMS_FILE})


@dataclass(frozen=True, slots=True)
class BundleRef:
    """A bundle found on disk: a folder holding a manifest (or its signature or checksums),
    or a ``.zip``; ``fingerprint`` is taken when it was found."""

    path: str  # absolute, as found (links are not resolved)
    is_zip: bool
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Verdict:
    fingerprint: str
    ok: bool
    exit_code: int
    reason: str
    manifest_sha256: str | None


def default_index_path() -> Path:
    return user_data_dir() / INDEX_FILE


def _stat_line(name: str, st: os.stat_result) -> str:
    kind = "d" if stat.S_ISDIR(st.st_mode) else "f"
    return (f"{name}\0{kind}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0"
            f"{st.st_mtime_ns}\0{st.st_ctime_ns}")


def _folder_fingerprint(entries: Sequence[os.DirEntry[str]]) -> str:
    lines = []
    for entry in sorted(entries, key=lambda e: e.name):
        try:
            st = entry.stat()  # follows links: what verification reads
        except OSError:
            lines.append(f"{entry.name}\0missing")
            continue
        lines.append(_stat_line(entry.name, st))
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()


def fingerprint(path: str, is_zip: bool) -> str:
    """The fingerprint of a bundle now (see the module docstring); ``"missing"`` if gone."""
    try:
        if is_zip:
            return hashlib.sha256(
                _stat_line(os.path.basename(path), os.stat(path)).encode(
                    "utf-8", "surrogateescape")).hexdigest()
        with os.scandir(path) as it:
            return _folder_fingerprint(list(it))
    except OSError:
        return "missing"


def find_bundles(paths: Iterable[Path]) -> list[BundleRef]:
    """Every bundle under ``paths``, sorted by path. A folder holding ``manifest.json``,
    ``manifest.json.p7s`` or ``checksums.sha256`` is a bundle (a broken one is then reported,
    not skipped) and is not searched further; ``.zip`` files are bundles. Hidden entries (the
    pipeline's ``.name.partial-…`` staging folders) and links to folders are not followed."""
    found: dict[str, BundleRef] = {}
    for root in paths:
        top = os.path.abspath(root)
        if os.path.isfile(top):
            if top.lower().endswith(".zip"):
                found[top] = BundleRef(top, True, fingerprint(top, True))
            continue
        for ref in _walk(top):
            found[ref.path] = ref
    return [found[p] for p in sorted(found)]


def _walk(top: str) -> Iterator[BundleRef]:
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue
        if any(e.name in _BUNDLE_MARKERS for e in entries):
            yield BundleRef(folder, False, _folder_fingerprint(entries))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.name.lower().endswith(".zip") and entry.is_file():
                    yield BundleRef(entry.path, True, fingerprint(entry.path, True))
            except OSError:
                continue


def trust_key(roots: Sequence[Path], allow_demo: bool, lang: str) -> str:
    """What a verdict depends on besides the bundle's bytes (see the module docstring)."""
    digests = sorted(hashlib.sha256(Path(r).read_bytes()).hexdigest() for r in roots)
    text = "\n".join([f"digitize {__version__}", f"allow_demo={allow_demo}", f"lang={lang}",
                      "offline", *digests])
    return hashlib.sha256(text.encode()).hexdigest()


class StatsIndex:
    """The SQLite index (one file; safe for two readers/writers at once: WAL, busy timeout).

    Tables: ``verdicts(path, trust_key, fingerprint, ok, exit_code, reason, manifest_sha256)``
    and ``facts(manifest_sha256, facts_version, data)`` (``BundleFacts`` JSON, written only for
    manifests whose bundle verified).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                # It lists where bundles are: private to the user, like the demo identity.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._prepare()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot use the stats index: {exc}", path=self.path,
                              hint="delete the file, choose another with --index, or "
                                   "use --no-index") from None

    def _prepare(self) -> None:
        db = self._db
        db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is not None and row[0] == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        db.execute("DROP TABLE IF EXISTS verdicts")
        db.execute("DROP TABLE IF EXISTS facts")
        db.execute("""CREATE TABLE verdicts(
            path TEXT NOT NULL, trust_key TEXT NOT NULL, fingerprint TEXT NOT NULL,
            ok INTEGER NOT NULL, exit_code INTEGER NOT NULL, reason TEXT NOT NULL,
            manifest_sha256 TEXT, PRIMARY KEY(path, trust_key))""")
        db.execute("""CREATE TABLE facts(
            manifest_sha256 TEXT NOT NULL, facts_version INTEGER NOT NULL, data TEXT NOT NULL,
            PRIMARY KEY(manifest_sha256, facts_version))""")
        db.execute("INSERT OR REPLACE INTO meta VALUES('schema', ?)", (SCHEMA_VERSION,))
        db.execute("COMMIT")

    def verdicts(self, key: str) -> dict[str, Verdict]:
        rows = self._db.execute(
            "SELECT path, fingerprint, ok, exit_code, reason, manifest_sha256 FROM verdicts "
            "WHERE trust_key=?", (key,))
        return {path: Verdict(fp, bool(ok), code, reason, sha)
                for path, fp, ok, code, reason, sha in rows}

    def facts_json(self) -> dict[str, str]:
        rows = self._db.execute("SELECT manifest_sha256, data FROM facts WHERE facts_version=?",
                                (FACTS_VERSION,))
        return dict(rows.fetchall())

    def store(self, key: str, items: Sequence[tuple[str, Verdict, str | None]]) -> None:
        """Remember ``(path, verdict, facts JSON or None)`` rows in one transaction."""
        if not items:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO verdicts VALUES(?,?,?,?,?,?,?)",
                [(path, key, v.fingerprint, int(v.ok), v.exit_code, v.reason, v.manifest_sha256)
                 for path, v, _ in items])
            db.executemany(
                "INSERT OR IGNORE INTO facts VALUES(?,?,?)",
                [(v.manifest_sha256, FACTS_VERSION, data) for _, v, data in items
                 if data is not None and v.manifest_sha256 is not None])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def forget(self, key: str, paths: Iterable[str]) -> None:
        """Drop verdicts of bundles that are gone, and facts no verdict refers to any more."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("DELETE FROM verdicts WHERE path=? AND trust_key=?",
                           [(p, key) for p in paths])
            db.execute("DELETE FROM facts WHERE manifest_sha256 NOT IN "
                       "(SELECT manifest_sha256 FROM verdicts WHERE manifest_sha256 IS NOT NULL)")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StatsIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
