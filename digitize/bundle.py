"""Dossier bundles: their names, and written complete or not at all.

Layout of ``OUT_DIR/<bundle name>/``::

    <code>.001.pdf, <code>.002.pdf …   signed PDF/A per component (R31 names sort in order)
    manifest.json                       the Manifest (canonical JSON)
    manifest.json.p7s                   detached CAdES signature over manifest.json (R32)
    checksums.sha256                    `sha256sum -c` compatible, every other file

Everything is written into a hidden staging folder next to the final one and renamed into
place when complete (rename is atomic on one file system). A crash or ``kill -9`` leaves at
most a ``.<name>.partial-<host>-<pid>-…`` folder (and its ``.work-`` twin), which the next run
for the same dossier removes when it was made on this host by a process that is gone; another
host's staging folders (an OUT_DIR on a network share) are never touched, because a process id
means nothing across machines. ``--zip`` also writes ``<name>.zip`` (fixed entry order and
times, only relative paths): built beside the staging folder and renamed into place only after
the bundle itself, so a zip never stands without its bundle.

Personal data: bundle files are 0640 and bundle folders 0750 whatever the umask (the group is
how a bundle is shared; the world never reads a citizen's dossier); the work folder is 0700.

Replacing a bundle (``overwrite=True``) swaps the new one in atomically
(``renameat2(RENAME_EXCHANGE)``) where the file system supports it; elsewhere the old one is
renamed to ``.<name>.old-<host>-<pid>-…`` first, and a crash between the two renames is undone
by the next run (the old bundle is renamed back), never deleted.

``dossier_inputs(source)`` lists exactly what a bundle is made from (every scan-named file
below the dossier folder with its SHA-256, and ``dossier.yaml``'s SHA-256): the pipeline
records it in the manifest (``Manifest.inputs``) and resume compares it with the folder.

Names (R31): the bundle folder is ``bundle_name_for(dossier folder)``, the one rule that
``run_dossier`` names the bundle with and that batch, watch and the job layer use to find an
existing bundle before running; files inside are ``bundle_file_name(code, ordinal)``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import socket
import uuid
import zipfile
from pathlib import Path
from types import TracebackType

from digitize.errors import OutputError, QualityError
from digitize.manifest import (
    CHECKSUMS_FILE,
    MANIFEST_FILE,
    MANIFEST_SIGNATURE_FILE,
    DossierInputs,
    InputFile,
    OriginalEntry,
)
from digitize.models import SourceFile
from digitize.util import ascii_safe_name, fsync_path, nfc, sha256_file, sha256_regular

ZIP_DATE = (2000, 1, 1, 0, 0, 0)
FILE_MODE = 0o640  # bundle files, zips: owner and group (who shares bundles), never the world
DIR_MODE = 0o750
STAGING_KINDS = ("partial", "work", "old", "zip.partial")
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def host_token() -> str:
    """This machine's name as it appears in staging folder names (R31-safe characters)."""
    return ascii_safe_name(socket.gethostname()) or "host"


def staging_token() -> str:
    """``<host>-<pid>-<random>``: who made a staging folder, so that only that host judges
    whether it is stale."""
    return f"{host_token()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def output_error(what: str, exc: OSError, path: Path) -> OutputError:
    """``OutputError`` naming the cause; the operating system's words for a full, read-only or
    failing disk are kept so the job layer files it as the station's fault (retry later)."""
    return OutputError(f"{what}: {exc.strerror or exc}", path=path)


def safe_bundle_name(dossier_code: str) -> str:
    """R31: the bundle folder name of a dossier code (``[A-Za-z0-9._-]``, marks removed)."""
    return ascii_safe_name(dossier_code)


def dossier_code_for(source: Path, declared_code: str | None) -> str:
    """A dossier's code: the one ``dossier.yaml`` declares (R28), else the folder's name
    (a lone file: its stem), in NFC."""
    if declared_code is not None:
        return declared_code
    return nfc(source.name if source.is_dir() else source.stem)


def bundle_name_for(source: Path) -> str:
    """The bundle folder name a dossier gets under OUT_DIR, known before it is run.

    Raises ``ConfigError`` for an unreadable ``dossier.yaml`` (as ingest would).
    """
    source = Path(source)
    declared: str | None = None
    if source.is_dir():
        # Imported here: ingest pulls in OpenCV and pikepdf, which bundle writing and
        # verification never need; the name rule only reads dossier.yaml.
        from digitize.ingest import DOSSIER_YAML, load_dossier_yaml

        if (source / DOSSIER_YAML).is_file():
            declared = load_dossier_yaml(source / DOSSIER_YAML).dossier_code
    return safe_bundle_name(dossier_code_for(source, declared))


def bundle_file_name(dossier_code: str, ordinal: int) -> str:
    """R31: ``<dossier_code>.<doc_ordinal:03d>.pdf``, unsafe characters replaced by ``_``."""
    return f"{ascii_safe_name(dossier_code)}.{ordinal:03d}.pdf"


def original_file_name(dossier_code: str, ordinal: int, index: int = 1) -> str:
    """Name of a received file kept as it was: ``<code>.<ordinal:03d>.original[-N].pdf``."""
    suffix = "" if index == 1 else f"-{index}"
    return f"{ascii_safe_name(dossier_code)}.{ordinal:03d}.original{suffix}.pdf"


def master_file_name(dossier_code: str, ordinal: int, index: int, suffix: str) -> str:
    """Name of a scan file carried as a master (R14): ``<code>.<ordinal:03d>.master-N<ext>``."""
    return f"{ascii_safe_name(dossier_code)}.{ordinal:03d}.master-{index}{suffix.lower()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_owner(entry: str, name: str) -> tuple[str, str | None, int] | None:
    """(kind, host, pid) of a staging entry ``.<name>.<kind>-[<host>-]<pid>-<hex>`` of bundle
    ``name``; host None for names written before hosts were recorded. None: not one of ours."""
    for kind in STAGING_KINDS:
        prefix = f".{name}.{kind}-"
        if not entry.startswith(prefix):
            continue
        parts = entry[len(prefix) :].rsplit("-", 2)
        try:
            if len(parts) == 3:
                return kind, parts[0], int(parts[1])
            if len(parts) == 2:
                return kind, None, int(parts[0])
        except ValueError:
            return None
    return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_partials(out_dir: Path, name: str) -> list[Path]:
    """Clean up what dead processes of THIS host left for bundle ``name``: staging and work
    folders and zip temporaries are removed; an ``.old-`` bundle (a crash between the two
    renames of an overwrite) is renamed back when no bundle stands under the final name, and
    removed only when one does. Entries of other hosts are never touched (P4); entries
    without a host (older versions) are judged by the local process id as before."""
    removed = []
    me = host_token()
    final = out_dir / name
    for stale in sorted(out_dir.glob(f".{name}.*-*")):
        owner = staging_owner(stale.name, name)
        if owner is None:
            continue
        kind, host, pid = owner
        if (host is not None and host != me) or pid_alive(pid):
            continue
        if kind == "old" and not os.path.lexists(final):
            os.rename(stale, final)
            fsync_path(out_dir)
            continue
        _remove(stale)
        removed.append(stale)
    return removed


# --- what a bundle is made from -----------------------------------------------------------------
def _hash_regular(path: Path) -> str | None:
    """``sha256_regular``, with a file that cannot be opened counted as no regular file."""
    try:
        return sha256_regular(path)
    except OSError:
        return None


def _link_entry(root: Path, path: Path, rel: str) -> InputFile:
    """A symbolic link inside the dossier: where it points, and the content it leads to when
    that is a regular file inside the dossier (ingest refuses links leaving it)."""
    target = os.readlink(path)
    real = Path(os.path.realpath(path))
    real_root = Path(os.path.realpath(root))
    digest = ""
    if real_root in real.parents and real.is_file():
        digest = _hash_regular(real) or ""
    return InputFile(file=rel, sha256=digest, link=target)


def dossier_inputs(source: Path) -> DossierInputs:
    """What a bundle of ``source`` is made from: every scan-named file (any depth, names NFC and
    relative) with its SHA-256, symbolic links with their targets, and ``dossier.yaml``'s
    SHA-256. FIFOs and devices are left out unopened (ingest refuses them anyway)."""
    # Imported here: ingest's walk module is light, but the package pulls in decoders lazily.
    from digitize.ingest.walk import is_scan_name

    source = Path(source)
    if not source.is_dir():
        digest = _hash_regular(source) or ""
        return DossierInputs(scans=(InputFile(file=nfc(source.name), sha256=digest),))
    scans: list[InputFile] = []
    for root, dirs, files in os.walk(source, followlinks=False):
        base = Path(root)
        for entry in (*dirs, *files):
            path = base / entry
            rel = nfc(path.relative_to(source).as_posix())
            if path.is_symlink():
                if entry in dirs or is_scan_name(entry):
                    scans.append(_link_entry(source, path, rel))
                continue
            if entry in files and is_scan_name(entry):
                file_digest = _hash_regular(path)
                if file_digest is not None:
                    scans.append(InputFile(file=rel, sha256=file_digest))
    yaml = source / "dossier.yaml"
    yaml_digest = _hash_regular(yaml) if os.path.lexists(yaml) else None
    return DossierInputs(
        scans=tuple(sorted(scans, key=lambda f: f.file)), dossier_yaml_sha256=yaml_digest
    )


def input_differences(made_from: DossierInputs, now: DossierInputs, limit: int = 5) -> list[str]:
    """What differs between the inputs a bundle was made from and a folder now, in words
    (``c1/p02.jpg added``, ``c1/p01.jpg changed``, ``dossier.yaml removed``)."""
    before = {f.file: (f.sha256, f.link) for f in made_from.scans}
    after = {f.file: (f.sha256, f.link) for f in now.scans}
    changes = [f"{name} added" for name in sorted(after.keys() - before.keys())]
    changes += [f"{name} removed" for name in sorted(before.keys() - after.keys())]
    changes += [
        f"{name} changed" for name in sorted(before.keys() & after.keys())
        if before[name] != after[name]
    ]
    old_yaml, new_yaml = made_from.dossier_yaml_sha256, now.dossier_yaml_sha256
    if old_yaml != new_yaml:
        state = "added" if old_yaml is None else "removed" if new_yaml is None else "changed"
        changes.append(f"dossier.yaml {state}")
    if len(changes) > limit:
        changes = [*changes[:limit], f"and {len(changes) - limit} more"]
    return changes


def carry_file(source: SourceFile, target: Path, shown_name: str, reason: str) -> OriginalEntry:
    """Copy a received file into the bundle unchanged (a received PDF kept beside its new copy,
    or a master scan, R14), checking the copy is the file that was ingested (R8)."""
    shutil.copyfile(source.path, target)
    digest = sha256_file(target)
    if digest != source.sha256:
        raise QualityError(
            "the file changed while the dossier was being processed", path=source.path
        )
    return OriginalEntry(
        file=target.name,
        source_file=nfc(shown_name),
        sha256=digest,
        size_bytes=target.stat().st_size,
        reason=reason,
    )


def write_checksums(folder: Path) -> Path:
    lines = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name == CHECKSUMS_FILE or not path.is_file():
            continue
        lines.append(f"{sha256_file(path)}  {path.name}\n")
    target = folder / CHECKSUMS_FILE
    target.write_text("".join(lines), encoding="utf-8")
    return target


def write_zip(folder: Path, target: Path, root_name: str) -> None:
    """A zip of ``folder`` with entries ``root_name/<file>`` in a fixed order and fixed times."""
    tmp = build_zip(folder, target, root_name)
    os.replace(tmp, target)


def build_zip(folder: Path, target: Path, root_name: str) -> Path:
    """The zip of ``write_zip`` under a temporary name beside ``target`` (0640, fsync'ed);
    the caller renames it into place."""
    tmp = target.with_name(f".{target.name}.partial-{staging_token()}")
    try:
        _write_zip_file(folder, tmp, root_name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _write_zip_file(folder: Path, tmp: Path, root_name: str) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
        for path in sorted(folder.iterdir(), key=lambda p: p.name):
            info = zipfile.ZipInfo(f"{root_name}/{path.name}", date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            # PDFs hold compressed images already: deflating them again costs time, saves ~0.
            info.compress_type = (
                zipfile.ZIP_STORED if path.suffix == ".pdf" else zipfile.ZIP_DEFLATED
            )
            with open(path, "rb") as source, archive.open(info, "w") as entry:
                shutil.copyfileobj(source, entry, 1024 * 1024)
    fsync_path(tmp)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``). False when the
    C library or the file system does not offer it (the caller renames in two steps)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


class BundleWriter:
    """Stages a bundle and renames it into place on ``commit()``; cleans up on failure."""

    def __init__(self, out_dir: Path, name: str, *, overwrite: bool = False,
                 zip_copy: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.name = name
        self.final = self.out_dir / name
        self.overwrite = overwrite
        self.zip_copy = zip_copy
        self.token = staging_token()
        self.staging = self.out_dir / f".{name}.partial-{self.token}"
        self.work = self.out_dir / f".{name}.work-{self.token}"
        self._committed = False
        self._zip_tmp: Path | None = None

    def __enter__(self) -> BundleWriter:
        try:
            if not self.out_dir.is_dir():
                self.out_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            remove_stale_partials(self.out_dir, self.name)
            if os.path.lexists(self.final) and not self.overwrite:
                raise OutputError(
                    "a bundle with this name already exists",
                    path=self.final,
                    hint="verify it with `digitize verify`, or re-run with --overwrite",
                )
            self.staging.mkdir(mode=DIR_MODE)
            self.work.mkdir(mode=0o700)
        except OSError as exc:
            raise output_error("cannot create the bundle folder", exc, self.out_dir) from None
        return self

    def path(self, file_name: str) -> Path:
        return self.staging / file_name

    def work_path(self, file_name: str) -> Path:
        return self.work / file_name

    def write_manifest(self, manifest_bytes: bytes, signature: bytes) -> None:
        """``manifest.json`` (its canonical bytes), the detached signature over exactly those
        bytes (R32), then ``checksums.sha256``. The writer never signs: the caller does, so
        how signing happens (token, remote, two-phase) is not the writer's concern."""
        (self.staging / MANIFEST_FILE).write_bytes(manifest_bytes)
        (self.staging / MANIFEST_SIGNATURE_FILE).write_bytes(signature)
        write_checksums(self.staging)

    def commit(self) -> tuple[Path, Path | None]:
        """Rename the complete bundle into place (then its zip); see the module docstring for
        modes, overwrite and crash behaviour. Raises ``OutputError``."""
        try:
            # Stage tools write private temp files (0600); a bundle is shared with the group.
            for path in self.staging.iterdir():
                os.chmod(path, FILE_MODE)
                fsync_path(path)
            os.chmod(self.staging, DIR_MODE)
            fsync_path(self.staging)
            zip_path = self.out_dir / f"{self.name}.zip" if self.zip_copy else None
            if zip_path is not None:
                self._zip_tmp = build_zip(self.staging, zip_path, self.name)
            self._swap_in()
            if zip_path is not None and self._zip_tmp is not None:
                os.replace(self._zip_tmp, zip_path)
                self._zip_tmp = None
            fsync_path(self.out_dir)
        except OSError as exc:
            raise output_error("cannot move the bundle into place", exc, self.final) from None
        return self.final, zip_path

    def _swap_in(self) -> None:
        replacing = os.path.lexists(self.final)
        if replacing and not self.overwrite:
            raise OutputError("a bundle with this name already exists", path=self.final)
        if replacing and _exchange(self.staging, self.final):
            # The old bundle now sits under the staging name: a crash from here on leaves a
            # stale staging folder (removed by the next run), never a missing bundle.
            self._committed = True
            fsync_path(self.out_dir)
            shutil.rmtree(self.staging, ignore_errors=True)
            return
        trash = None
        if replacing:
            trash = self.out_dir / f".{self.name}.old-{self.token}"
            os.rename(self.final, trash)
        try:
            os.rename(self.staging, self.final)
        except OSError:
            if trash is not None:
                os.rename(trash, self.final)
            raise
        self._committed = True
        if trash is not None:
            fsync_path(self.out_dir)
            shutil.rmtree(trash, ignore_errors=True)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        if self._zip_tmp is not None:
            self._zip_tmp.unlink(missing_ok=True)
        if not self._committed:
            shutil.rmtree(self.staging, ignore_errors=True)
