"""Dossier bundles: their names, and written complete or not at all.

Layout of ``OUT_DIR/<bundle name>/``::

    <code>.001.pdf, <code>.002.pdf …   signed PDF/A per component (R31 names sort in order)
    manifest.json                       the Manifest (canonical JSON)
    manifest.json.p7s                   detached CAdES signature over manifest.json (R32)
    checksums.sha256                    `sha256sum -c` compatible, every other file

Everything is written into a hidden staging folder next to the final one and renamed into
place when complete (rename is atomic on one file system). A crash or ``kill -9`` leaves at
most a ``.<name>.partial-<pid>-…`` folder, which the next run for the same dossier removes
when its process is gone. ``--zip`` also writes ``<name>.zip`` (fixed entry order and times,
only relative paths) the same way.

Names (R31): the bundle folder is ``bundle_name_for(dossier folder)``, the one rule that
``run_dossier`` names the bundle with and that batch, watch and the job layer use to find an
existing bundle before running; files inside are ``bundle_file_name(code, ordinal)``.
"""

from __future__ import annotations

import os
import shutil
import uuid
import zipfile
from pathlib import Path
from types import TracebackType

from digitize.errors import OutputError, QualityError
from digitize.manifest import (
    CHECKSUMS_FILE,
    MANIFEST_FILE,
    MANIFEST_SIGNATURE_FILE,
    OriginalEntry,
)
from digitize.models import SourceFile
from digitize.util import ascii_safe_name, current_umask, fsync_path, nfc, sha256_file

ZIP_DATE = (2000, 1, 1, 0, 0, 0)


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(out_dir: Path, name: str) -> list[Path]:
    """Remove staging folders of ``name`` left by processes that no longer exist."""
    removed = []
    for stale in out_dir.glob(f".{name}.*-*-*"):
        parts = stale.name.rsplit("-", 2)
        try:
            pid = int(parts[-2])
        except (ValueError, IndexError):
            continue
        if not _pid_alive(pid):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


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
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    with zipfile.ZipFile(tmp, "w") as archive:
        for path in sorted(folder.iterdir(), key=lambda p: p.name):
            info = zipfile.ZipInfo(f"{root_name}/{path.name}", date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            # PDFs hold compressed images already: deflating them again costs time, saves ~0.
            info.compress_type = (
                zipfile.ZIP_STORED if path.suffix == ".pdf" else zipfile.ZIP_DEFLATED
            )
            with open(path, "rb") as handle, archive.open(info, "w") as entry:
                shutil.copyfileobj(handle, entry, 1024 * 1024)
    fsync_path(tmp)
    os.replace(tmp, target)


class BundleWriter:
    """Stages a bundle and renames it into place on ``commit()``; cleans up on failure."""

    def __init__(self, out_dir: Path, name: str, *, overwrite: bool = False,
                 zip_copy: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.name = name
        self.final = self.out_dir / name
        self.overwrite = overwrite
        self.zip_copy = zip_copy
        token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.staging = self.out_dir / f".{name}.partial-{token}"
        self.work = self.out_dir / f".{name}.work-{token}"
        self._committed = False

    def __enter__(self) -> BundleWriter:
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_partials(self.out_dir, self.name)
            if self.final.exists() and not self.overwrite:
                raise OutputError(
                    "a bundle with this name already exists",
                    path=self.final,
                    hint="verify it with `digitize verify`, or re-run with --overwrite",
                )
            self.staging.mkdir()
            self.work.mkdir()
        except OSError as exc:
            raise OutputError(f"cannot create the bundle folder: {exc.strerror}",
                              path=self.out_dir) from None
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
        # Stage tools write private temp files (0600); a bundle is meant to be shared.
        mode = 0o666 & ~current_umask()
        for path in self.staging.iterdir():
            os.chmod(path, mode)
            fsync_path(path)
        fsync_path(self.staging)
        zip_path = None
        if self.zip_copy:
            zip_path = self.out_dir / f"{self.name}.zip"
            write_zip(self.staging, zip_path, self.name)
        trash = None
        if self.final.exists() and self.overwrite:
            trash = self.out_dir / f".{self.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(self.final, trash)
        try:
            os.rename(self.staging, self.final)
        except OSError as exc:
            raise OutputError(f"cannot move the bundle into place: {exc.strerror}",
                              path=self.final) from None
        fsync_path(self.out_dir)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        self._committed = True
        return self.final, zip_path

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        if not self._committed:
            shutil.rmtree(self.staging, ignore_errors=True)
