"""Offline verification of a bundle folder or zip: one verdict per check, one overall code.

Checks, in order: zip safety (for a zip), manifest schema, ``checksums.sha256`` (every file
listed, hash equal, nothing extra), the manifest's detached signature, then per document: the
file exists with the manifest's hash and name/order (R31), page count, PDF/A essentials, and
every PDF signature (integrity, coverage, chain to the trust roots, level).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import pikepdf
from pydantic import ValidationError

from digitize.bundle import bundle_file_name
from digitize.errors import (
    BundleStructureError,
    ExitCode,
    InputError,
    TooLargeError,
    UnsafePathError,
)
from digitize.manifest import CHECKSUMS_FILE, MANIFEST_FILE, MANIFEST_SIGNATURE_FILE, Manifest
from digitize.models import Check, FrozenModel
from digitize.util import sha256_file, user_data_dir

MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_BYTES = 8 * 1024**3
MAX_ZIP_RATIO = 200  # uncompressed/compressed per entry: more is a zip bomb, not a bundle

_TEXT = {
    "ok": ("đạt", "ok"),
    "manifest_missing": ("thiếu manifest.json", "manifest.json is missing"),
    "manifest_invalid": ("manifest.json không hợp lệ: {detail}", "manifest.json is invalid: {detail}"),
    "checksums_missing": ("thiếu checksums.sha256", "checksums.sha256 is missing"),
    "checksums_bad_line": ("checksums.sha256 dòng {line} sai định dạng",
                           "checksums.sha256 line {line} is malformed"),
    "file_missing": ("thiếu tệp {name}", "file {name} is missing"),
    "hash_mismatch": ("mã băm của {name} không khớp (tệp đã bị thay đổi)",
                      "hash of {name} does not match (the file was changed)"),
    "unexpected_file": ("tệp lạ trong gói: {name}", "unexpected file in bundle: {name}"),
    "order": ("thứ tự/tên tài liệu sai: {detail}", "document order/name is wrong: {detail}"),
    "pages": ("{name}: {found} trang, manifest ghi {expected}",
              "{name}: {found} pages, the manifest says {expected}"),
    "pdfa": ("{name}: thiếu yếu tố PDF/A: {detail}", "{name}: PDF/A essentials missing: {detail}"),
    "pdf_unreadable": ("{name}: không đọc được PDF: {detail}", "{name}: cannot read PDF: {detail}"),
    "unsigned": ("{name}: không có chữ ký số", "{name}: has no digital signature"),
}


def _t(key: str, lang: str, **values: object) -> str:
    vi, en = _TEXT[key]
    return (en if lang == "en" else vi).format(**values)


class VerifyReport(FrozenModel):
    path: Path
    ok: bool
    exit_code: int
    checks: tuple[Check, ...]
    signed_with_demo_identity: bool = False

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)


def default_trust_roots() -> tuple[Path, ...]:
    """Roots from ``DIGITIZE_TRUST_ROOTS`` (path list), plus the local demo root if present."""
    roots = [Path(p) for p in os.environ.get("DIGITIZE_TRUST_ROOTS", "").split(os.pathsep) if p]
    # Only an existing demo root is trusted: verifying must never create an identity.
    roots.append(user_data_dir() / "demo-identity" / "root.pem")
    return tuple(r for r in roots if r.is_file())


def safe_extract_zip(archive_path: Path, target: Path) -> Path:
    """Extract a bundle zip refusing zip-slip, links, bombs; returns the bundle folder."""
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"not a readable zip: {exc}", path=archive_path) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise TooLargeError(f"zip has {len(infos)} entries", path=archive_path)
        total = 0
        roots = set()
        for info in infos:
            name = PurePosixPath(info.filename)
            if info.filename.startswith(("/", "\\")) or name.is_absolute() or ".." in name.parts \
                    or "\\" in info.filename or (len(name.parts) and ":" in name.parts[0]):
                raise UnsafePathError(f"zip entry {info.filename!r} escapes the bundle",
                                      path=archive_path)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UnsafePathError(f"zip entry {info.filename!r} is a link", path=archive_path)
            total += info.file_size
            if total > MAX_ZIP_BYTES or (
                info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO
                and info.file_size > 10 * 1024**2
            ):
                raise TooLargeError("zip expands to an implausible size (zip bomb?)",
                                    path=archive_path)
            roots.add(name.parts[0] if name.parts else "")
        if len(roots) != 1:
            raise BundleStructureError("a bundle zip holds exactly one top folder",
                                       path=archive_path)
        for info in infos:
            if info.is_dir():
                continue
            dest = target / info.filename
            dest.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1024 * 1024)
    return target / roots.pop()


def _parse_checksums(path: Path, lang: str) -> tuple[dict[str, str], list[Check]]:
    entries: dict[str, str] = {}
    checks: list[Check] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or "/" in name or name in ("", ".", ".."):
            checks.append(Check(name="checksums", ok=False,
                                message=_t("checksums_bad_line", lang, line=number),
                                exit_code=ExitCode.VERIFY_STRUCTURE))
            continue
        entries[name] = digest.lower()
    return entries, checks


def _pdfa_essentials(pdf: pikepdf.Pdf) -> list[str]:
    missing = []
    try:
        with pdf.open_metadata() as meta:
            if str(meta.get("pdfaid:part", "")) != "2":
                missing.append("XMP pdfaid:part=2")
    except Exception:  # noqa: BLE001 - any XMP parsing problem is a missing essential
        missing.append("readable XMP")
    if "/OutputIntents" not in pdf.Root or len(pdf.Root.OutputIntents) == 0:
        missing.append("OutputIntent")
    if pdf.is_encrypted:
        missing.append("no encryption")
    return missing


def verify_bundle(
    path: str | Path,
    trust_roots: tuple[Path, ...] | None = None,
    *,
    lang: str = "vi",
    offline: bool = True,
) -> VerifyReport:
    """Verify a bundle folder or ``.zip``. Never raises for a bad bundle: failures are checks."""
    path = Path(path)
    roots = default_trust_roots() if trust_roots is None else trust_roots
    if path.is_file() and zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="digitize-verify-") as tmp:
            try:
                folder = safe_extract_zip(path, Path(tmp))
            except InputError as exc:
                check = Check(name="zip", ok=False, message=exc.one_line(),
                              exit_code=int(exc.exit_code))
                return VerifyReport(path=path, ok=False, exit_code=int(exc.exit_code),
                                    checks=(check,))
            report = _verify_folder(folder, roots, lang, offline)
            return report.model_copy(update={"path": path})
    return _verify_folder(path, roots, lang, offline)


def _verify_folder(folder: Path, roots: tuple[Path, ...], lang: str, offline: bool
                   ) -> VerifyReport:
    from digitize.sigverify import verify_detached_signature, verify_pdf_signatures

    checks: list[Check] = []

    def add(name: str, ok: bool, message: str, code: int = 0) -> None:
        checks.append(Check(name=name, ok=ok, message=message, exit_code=0 if ok else code))

    if not folder.is_dir():
        add("bundle", False, _t("manifest_missing", lang), ExitCode.VERIFY_STRUCTURE)
        return _report(folder, checks, False)
    manifest_path = folder / MANIFEST_FILE
    manifest: Manifest | None = None
    manifest_bytes = b""
    if not manifest_path.is_file():
        add("manifest", False, _t("manifest_missing", lang), ExitCode.VERIFY_STRUCTURE)
    else:
        manifest_bytes = manifest_path.read_bytes()
        try:
            manifest = Manifest.model_validate(json.loads(manifest_bytes))
            add("manifest", True, _t("ok", lang))
        except (ValueError, ValidationError) as exc:
            detail = str(exc).splitlines()[0][:200]
            add("manifest", False, _t("manifest_invalid", lang, detail=detail),
                ExitCode.VERIFY_STRUCTURE)

    # checksums.sha256: every file listed, equal, nothing extra
    checksum_path = folder / CHECKSUMS_FILE
    if not checksum_path.is_file():
        add("checksums", False, _t("checksums_missing", lang), ExitCode.VERIFY_STRUCTURE)
    else:
        entries, bad = _parse_checksums(checksum_path, lang)
        checks.extend(bad)
        present = {p.name for p in folder.iterdir()} - {CHECKSUMS_FILE}
        for name in sorted(present - entries.keys()):
            add(f"file:{name}", False, _t("unexpected_file", lang, name=name),
                ExitCode.VERIFY_STRUCTURE)
        for name, digest in sorted(entries.items()):
            target = folder / name
            if not target.is_file():
                add(f"hash:{name}", False, _t("file_missing", lang, name=name),
                    ExitCode.VERIFY_STRUCTURE)
            elif sha256_file(target) != digest:
                add(f"hash:{name}", False, _t("hash_mismatch", lang, name=name),
                    ExitCode.VERIFY_HASH)
            else:
                add(f"hash:{name}", True, _t("ok", lang))

    signature_path = folder / MANIFEST_SIGNATURE_FILE
    if manifest_path.is_file():
        if not signature_path.is_file():
            add("manifest_signature", False, _t("file_missing", lang,
                                                name=MANIFEST_SIGNATURE_FILE),
                ExitCode.VERIFY_STRUCTURE)
        else:
            check = verify_detached_signature(manifest_bytes, signature_path.read_bytes(), roots,
                                              lang=lang)
            checks.append(check.model_copy(update={"name": "manifest_signature"}))
    if manifest is not None:  # a person's review: who re-signed, which fields they changed
        from digitize.review.check import check_review

        sig = signature_path.read_bytes() if signature_path.is_file() else None
        checks.extend(check_review(manifest, sig, lang))

    demo = False
    if manifest is not None:
        demo = manifest.digitiser.is_demo
        _check_documents(folder, manifest, roots, lang, offline, add, checks,
                         verify_pdf_signatures)
    return _report(folder, checks, demo)


def _check_documents(folder, manifest, roots, lang, offline, add, checks,  # type: ignore[no-untyped-def]
                     verify_pdf_signatures) -> None:
    ordinals = [d.doc_ordinal for d in manifest.documents]
    if ordinals != sorted(set(ordinals)):
        add("order", False, _t("order", lang, detail=f"doc_ordinal {ordinals}"),
            ExitCode.VERIFY_STRUCTURE)
    listed = set()
    for doc in manifest.documents:
        for original in (*doc.originals, *doc.masters):
            listed.add(original.file)
            target = folder / original.file
            if not target.is_file():
                add(f"original:{original.file}", False,
                    _t("file_missing", lang, name=original.file), ExitCode.VERIFY_STRUCTURE)
            elif sha256_file(target) != original.sha256:
                add(f"original:{original.file}", False,
                    _t("hash_mismatch", lang, name=original.file), ExitCode.VERIFY_HASH)
            else:
                add(f"original:{original.file}", True, _t("ok", lang))
        if doc.file is None:
            continue
        listed.add(doc.file)
        expected = bundle_file_name(manifest.dossier_code, doc.doc_ordinal)
        if doc.file != expected:
            add(f"name:{doc.file}", False, _t("order", lang, detail=f"{doc.file} ≠ {expected}"),
                ExitCode.VERIFY_STRUCTURE)
        target = folder / doc.file
        if not target.is_file():
            add(f"document:{doc.file}", False, _t("file_missing", lang, name=doc.file),
                ExitCode.VERIFY_STRUCTURE)
            continue
        if doc.sha256 is not None and sha256_file(target) != doc.sha256:
            add(f"document:{doc.file}", False, _t("hash_mismatch", lang, name=doc.file),
                ExitCode.VERIFY_HASH)
            continue
        try:
            with pikepdf.open(target) as pdf:
                pages = len(pdf.pages)
                missing = _pdfa_essentials(pdf)
        except pikepdf.PdfError as exc:
            add(f"pdf:{doc.file}", False,
                _t("pdf_unreadable", lang, name=doc.file, detail=str(exc)[:120]),
                ExitCode.VERIFY_STRUCTURE)
            continue
        if pages != doc.image_count:
            add(f"pages:{doc.file}", False,
                _t("pages", lang, name=doc.file, found=pages, expected=doc.image_count),
                ExitCode.VERIFY_STRUCTURE)
        else:
            add(f"pages:{doc.file}", True, _t("ok", lang))
        if missing:
            add(f"pdfa:{doc.file}", False,
                _t("pdfa", lang, name=doc.file, detail=", ".join(missing)), ExitCode.VERIFY_PDFA)
        else:
            add(f"pdfa:{doc.file}", True, _t("ok", lang))
        sig_checks = verify_pdf_signatures(target, roots, offline=offline, lang=lang)
        if not sig_checks:
            add(f"signature:{doc.file}", False, _t("unsigned", lang, name=doc.file),
                ExitCode.VERIFY_SIGNATURE)
        for check in sig_checks:
            name = check.name if doc.file in check.name else f"signature:{doc.file}:{check.name}"
            checks.append(check.model_copy(update={"name": name}))
    pdfs_present = {p.name for p in folder.glob("*.pdf")}
    for name in sorted(pdfs_present - listed):
        add(f"document:{name}", False, _t("unexpected_file", lang, name=name),
            ExitCode.VERIFY_STRUCTURE)


def _report(folder: Path, checks: list[Check], demo: bool) -> VerifyReport:
    failures = [c for c in checks if not c.ok]
    code = failures[0].exit_code if failures else 0
    if failures and not code:
        code = int(ExitCode.VERIFY)
    return VerifyReport(path=folder, ok=not failures, exit_code=code, checks=tuple(checks),
                        signed_with_demo_identity=demo)
