"""Offline verification of a bundle folder or zip: one verdict per check, one overall code.

A bundle is accepted only when it proves *who* signed *what*. Checks, in order (each failure
is a ``Check`` with its exit code; ``verify_bundle`` never raises):

1. zip safety (for a zip): no absolute, ``..``, backslash or drive names, no links, no
   directories inside the bundle folder, no duplicate or case/NFC-colliding names, one top
   folder, a plausible size (count, total, ratio, free space), intact data (CRC);
2. ``manifest.json``: a regular file under ``MAX_MANIFEST_BYTES``, JSON (any nesting depth is
   refused cleanly), the manifest schema;
3. names: every file the (not yet verified) manifest names matches the R31 pattern of its kind
   (``<code>.NNN.pdf``, ``.original[-N].pdf``, ``.master-N.<ext>``), checked *before* anything
   is opened, so a hostile manifest cannot make the verifier read outside the bundle (P6);
4. the file set is *exactly* the manifest's files plus ``manifest.json``,
   ``manifest.json.p7s`` and ``checksums.sha256``: any other entry (any case, any extension,
   folders, links) fails;
5. ``checksums.sha256`` lists exactly those files (an added line does not make an added file
   acceptable), each hash equal;
6. the manifest's detached signature (integrity; chain at its timestamp, else now; revocation
   from the manifest's own R25 evidence);
7. per document: a ``sha256`` for every listed file (V9), hash and size equal, page count,
   PDF/A essentials, every PDF signature (``digitize.sigverify``);
8. identity (R17, V1): the manifest's ``digitiser`` certificate, the manifest signer and every
   component's signer are one and the same certificate (fingerprint), its name and serial
   are the manifest's, and it is a natural person's certificate;
9. DEMO (V2): a chain that leads to the DEMO root is accepted only with ``allow_demo``; demo is
   judged from the certificates, and a manifest whose ``is_demo`` disagrees fails;
10. times (V10, R1): the manifest's signing and timestamp times are the PDFs' own, and every
    extracted field was read after its document was signed.

Revocation is reported as its own state: when every check passed but some signature's
certificate could not be shown unrevoked (B-B/B-T without OCSP/CRL data, offline), the report
is ok with ``revocation_checked=False`` and exit code ``VERIFY_REVOCATION_UNKNOWN`` (66), never
0; with ``require_revocation=True`` that state is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from digitize.bundle import bundle_file_name
from digitize.errors import (
    BundleStructureError,
    CorruptFileError,
    DigitizeError,
    ExitCode,
    InputError,
    TooLargeError,
    UnsafePathError,
)
from digitize.manifest import (
    CHECKSUMS_FILE,
    MANIFEST_FILE,
    MANIFEST_SIGNATURE_FILE,
    DigitiserInfo,
    Manifest,
)
from digitize.models import Check, FrozenModel
from digitize.util import ascii_safe_name, escape_control, nfc, sha256_file

if TYPE_CHECKING:
    from digitize.manifest import DocumentEntry
    from digitize.profiles import Profile

MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_BYTES = 8 * 1024**3
MAX_ZIP_RATIO = 200  # uncompressed/compressed per entry: more is a zip bomb, not a bundle
ZIP_FREE_SPACE_MARGIN = 256 * 1024**2  # never fill the temp file system to the last byte
MAX_MANIFEST_BYTES = 32 * 1024**2  # ~10 000 pages with their flags and R25 evidence
MAX_CHECKSUMS_BYTES = 1024**2  # one ~100-byte line per file
MAX_SIGNATURE_BYTES = 1024**2  # a CAdES signature with its chain and timestamp is ~10 kB
TIME_SLACK = timedelta(seconds=2)  # the manifest keeps whole seconds

BUNDLE_FILES = (MANIFEST_FILE, MANIFEST_SIGNATURE_FILE, CHECKSUMS_FILE)
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")

_TEXT = {
    "ok": ("đạt", "ok"),
    "manifest_missing": ("thiếu manifest.json", "manifest.json is missing"),
    "manifest_invalid": ("manifest.json không hợp lệ: {detail}", "manifest.json is invalid: {detail}"),
    "not_regular": ("{name} không phải tệp thường (thư mục, liên kết…)",
                    "{name} is not a regular file (folder, link…)"),
    "too_big": ("{name} quá lớn ({size} byte, tối đa {limit})",
                "{name} is too large ({size} bytes, at most {limit})"),
    "checksums_bad_line": ("checksums.sha256 dòng {line} sai định dạng",
                           "checksums.sha256 line {line} is malformed"),
    "checksums_extra": ("checksums.sha256 liệt kê {name}, tệp không có trong manifest",
                        "checksums.sha256 lists {name}, which the manifest does not name"),
    "checksums_unlisted": ("checksums.sha256 thiếu dòng cho {name}",
                           "checksums.sha256 has no line for {name}"),
    "checksums_duplicate": ("checksums.sha256 liệt kê {name} hai lần",
                            "checksums.sha256 lists {name} twice"),
    "file_missing": ("thiếu tệp {name}", "file {name} is missing"),
    "hash_mismatch": ("mã băm của {name} không khớp (tệp đã bị thay đổi)",
                      "hash of {name} does not match (the file was changed)"),
    "size_mismatch": ("{name}: {found} byte, manifest ghi {expected}",
                      "{name}: {found} bytes, the manifest says {expected}"),
    "no_hash": ("manifest không ghi mã băm cho {name}", "the manifest gives no sha256 for {name}"),
    "unexpected_file": ("tệp lạ trong gói: {name}", "unexpected file in bundle: {name}"),
    "bad_name": ("manifest ghi tên tệp không hợp lệ {name} (R31): {why}",
                 "the manifest names an invalid file {name} (R31): {why}"),
    "duplicate_name": ("manifest ghi tệp {name} hai lần", "the manifest names {name} twice"),
    "order": ("thứ tự/tên tài liệu sai: {detail}", "document order/name is wrong: {detail}"),
    "pages": ("{name}: {found} trang, manifest ghi {expected}",
              "{name}: {found} pages, the manifest says {expected}"),
    "pdfa": ("{name}: thiếu yếu tố PDF/A: {detail}", "{name}: PDF/A essentials missing: {detail}"),
    "pdf_unreadable": ("{name}: không đọc được PDF: {detail}", "{name}: cannot read PDF: {detail}"),
    "unsigned": ("{name}: không có chữ ký số", "{name}: has no digital signature"),
    "identity_manifest": (
        "bản kê (manifest) do chứng thư {found} ký, nhưng ghi người số hóa là chứng thư {expected}",
        "manifest.json.p7s is signed with certificate {found}, but the manifest names the "
        "digitiser's certificate {expected}"),
    "identity_pdf": (
        "{name} do chứng thư {found} ({signer}) ký, không phải chứng thư người số hóa {expected}",
        "{name} is signed with certificate {found} ({signer}), not the digitiser's "
        "certificate {expected}"),
    "identity_unknown": ("không xác định được chứng thư đã ký {name}",
                         "cannot tell which certificate signed {name}"),
    "identity_name": ("manifest ghi người số hóa {field} = {expected}, chứng thư ghi {found}",
                      "the manifest gives the digitiser's {field} as {expected}, the "
                      "certificate says {found}"),
    "not_personal": ("chứng thư của người số hóa không phải chứng thư cá nhân (R17): {why}",
                     "the digitiser's certificate is not a personal certificate (R17): {why}"),
    "demo_refused": (
        "{name} được ký bằng danh tính DEMO (không có giá trị thực tế); dùng --allow-demo "
        "nếu chỉ để thử",
        "{name} is signed with the DEMO identity (not valid for real use); pass --allow-demo "
        "to accept demo bundles"),
    "demo_mismatch": ("manifest ghi is_demo={claimed}, nhưng chuỗi chứng thư {chain} DEMO",
                      "the manifest says is_demo={claimed}, but the certificate chain {chain} "
                      "the DEMO root"),
    "time_signed": ("{name}: manifest ghi ký lúc {expected}, chữ ký ghi {found}",
                    "{name}: the manifest says signed at {expected}, the signature says {found}"),
    "time_tsa": ("{name}: manifest ghi dấu thời gian {expected}, chữ ký có {found}",
                 "{name}: the manifest gives timestamp {expected}, the signature has {found}"),
    "time_field": ("{name}: manifest không tả chữ ký {field} có trong tệp",
                   "{name}: the manifest describes signature {field}, which the file lacks"),
    "time_extraction": ("{name}: trường {field} được trích lúc {started}, trước khi ký {signed} (R1)",
                        "{name}: field {field} was extracted at {started}, before signing at "
                        "{signed} (R1)"),
    "time_created": ("manifest lập lúc {created}, trước khi ký {name} lúc {signed}",
                     "the manifest was created at {created}, before {name} was signed at "
                     "{signed}"),
    "revocation_required": (
        "chưa chứng minh được chứng thư chưa bị thu hồi: {names} (cần --online hoặc gói B-LT)",
        "revocation not proven for: {names} (verify --online, or sign at B-LT)"),
    "trust_roots": ("không đọc được chứng thư gốc tin cậy: {detail}",
                    "cannot read the trust roots: {detail}"),
    "aborted": ("không kiểm tra hết được: {detail}", "verification could not finish: {detail}"),
}


def _t(key: str, lang: str, **values: object) -> str:
    vi, en = _TEXT[key]
    return (en if lang == "en" else vi).format(**values)


class VerifyReport(FrozenModel):
    """The verdict on one bundle.

    ``ok``: no check failed. ``revocation_checked``: every signature's certificate was shown
    unrevoked. ``exit_code``: the first failure's code; else ``VERIFY_REVOCATION_UNKNOWN`` (66)
    when revocation was not checked; 0 only when everything was proven.
    ``signed_with_demo_identity`` comes from the certificate chains, never from the manifest.
    """

    path: Path
    ok: bool
    exit_code: int
    checks: tuple[Check, ...]
    signed_with_demo_identity: bool = False
    revocation_checked: bool = True

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    @property
    def fully_verified(self) -> bool:
        return self.ok and self.revocation_checked


def default_trust_roots() -> tuple[Path, ...]:
    """Roots from ``DIGITIZE_TRUST_ROOTS`` (an ``os.pathsep`` list of PEM/DER files).

    The local DEMO root is never among them: it is trusted only when a caller asks for it
    (``allow_demo``), see ``demo_root_for``.
    """
    roots = [Path(p) for p in os.environ.get("DIGITIZE_TRUST_ROOTS", "").split(os.pathsep) if p]
    return tuple(r for r in roots if r.is_file())


def demo_root_for(allow_demo: bool) -> tuple[Path, ...]:
    """This machine's demo root when demo bundles are accepted and the root exists (verifying
    must never create an identity), else nothing."""
    from digitize.sigverify import local_demo_root

    root = local_demo_root()
    return (root,) if allow_demo and root.is_file() else ()


def demo_allowed_for(profile: Profile) -> bool:
    """What batch and watch pass as ``allow_demo``: a station whose profile signs with the
    demo back-end checks its own demo bundles; any other profile refuses them."""
    return profile.sign.backend == "demo"


# --- zip -------------------------------------------------------------------------------------
def _zip_name_problem(name: str) -> str | None:
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or ".." in parts \
            or "\\" in name or (parts and ":" in parts[0]):
        return "escapes the bundle"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "has control characters"
    return None


def safe_extract_zip(archive_path: Path, target: Path) -> Path:
    """Extract a bundle zip into ``target`` and return the bundle folder.

    Refused (as ``DigitizeError`` subclasses, nothing written outside ``target``): zip-slip names,
    links, nested folders or directory entries inside the bundle folder, duplicate names and
    names equal after case folding and NFC, encrypted entries, more than one top folder, bombs
    (entry count, total size, ratio, the free space of ``target``), and corrupt data (CRC).
    """
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"not a readable zip: {exc}", path=archive_path) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise TooLargeError(f"zip has {len(infos)} entries", path=archive_path)
        total = 0
        roots: set[str] = set()
        seen: set[str] = set()
        files: list[zipfile.ZipInfo] = []
        for info in infos:
            shown = escape_control(repr(info.filename))
            problem = _zip_name_problem(info.filename)
            if problem:
                raise UnsafePathError(f"zip entry {shown} {problem}", path=archive_path)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UnsafePathError(f"zip entry {shown} is a link", path=archive_path)
            if info.flag_bits & 0x1:
                raise BundleStructureError(f"zip entry {shown} is encrypted", path=archive_path)
            parts = PurePosixPath(info.filename).parts
            if not parts:
                raise BundleStructureError(f"zip entry {shown} has no name", path=archive_path)
            roots.add(parts[0])
            if info.is_dir():
                if len(parts) != 1:
                    raise BundleStructureError(f"zip entry {shown} is a folder inside the bundle",
                                               path=archive_path)  # fmt: skip
                continue
            if len(parts) != 2:
                raise BundleStructureError(f"zip entry {shown} is not a file of the bundle folder",
                                           path=archive_path)  # fmt: skip
            key = nfc(info.filename).casefold()
            if key in seen:
                raise BundleStructureError(f"zip entry {shown} appears twice (names equal "
                                           "up to case or Unicode form)", path=archive_path)
            seen.add(key)
            total += info.file_size
            if total > MAX_ZIP_BYTES or (
                info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO
                and info.file_size > 10 * 1024**2
            ):
                raise TooLargeError("zip expands to an implausible size (zip bomb?)",
                                    path=archive_path)
            files.append(info)
        if len(roots) != 1:
            raise BundleStructureError("a bundle zip holds exactly one top folder",
                                       path=archive_path)
        free = shutil.disk_usage(target).free
        if total + ZIP_FREE_SPACE_MARGIN > free:
            raise TooLargeError(f"zip expands to {total} bytes; only {free} free in {target}",
                                path=archive_path)
        root = target / roots.pop()
        root.mkdir()
        for info in files:
            dest = root / PurePosixPath(info.filename).name
            try:
                # the declared size bounds what zipfile yields; the CRC is checked at its end
                with archive.open(info) as src, open(dest, "xb") as out:
                    shutil.copyfileobj(src, out, 1024 * 1024)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError,
                    RuntimeError, ValueError) as exc:  # fmt: skip
                raise CorruptFileError(f"zip entry {escape_control(repr(info.filename))} is "
                                       f"corrupt: {exc}", path=archive_path) from None
            except FileExistsError:
                raise BundleStructureError(f"zip entry {escape_control(repr(info.filename))} "
                                           "appears twice", path=archive_path) from None
    return root


# --- one verification run ----------------------------------------------------------------------
@dataclass
class _Run:
    """Everything one verification carries: options, the folder, the verdicts so far."""

    folder: Path
    roots: tuple[Path, ...]
    lang: str
    offline: bool
    allow_demo: bool
    now: datetime | None
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, message: str, code: int = 0,
            details: dict[str, str] | None = None) -> None:  # fmt: skip
        self.checks.append(Check(name=name, ok=ok, message=message, exit_code=0 if ok else code,
                                 details=details or {}))  # fmt: skip

    def text(self, key: str, **values: object) -> str:
        return _t(key, self.lang, **values)


def verify_bundle(
    path: str | Path,
    trust_roots: tuple[Path, ...] | None = None,
    *,
    lang: str = "vi",
    offline: bool = True,
    allow_demo: bool = False,
    require_revocation: bool = False,
    now: datetime | None = None,
) -> VerifyReport:
    """Verify a bundle folder or ``.zip`` (see the module docstring for every check).

    ``trust_roots``: the roots to trust (default ``default_trust_roots()``). ``allow_demo``:
    accept bundles signed with the DEMO identity and trust this machine's demo root — only
    when asked (``digitize verify --allow-demo``) or when the caller's own profile signs with
    the demo back-end (batch and watch pass ``demo_allowed_for(profile)``). ``offline=False``
    fetches revocation data. ``require_revocation``: unproven revocation is a failure instead
    of the distinct code 66. ``now``: the validation time of signatures without a timestamp
    (default: the clock).

    Never raises: a bad bundle, a bad zip or an unreadable trust root is a failed check.
    """
    path = Path(path)
    roots = (default_trust_roots() if trust_roots is None else tuple(trust_roots))
    roots = roots + tuple(r for r in demo_root_for(allow_demo) if r not in roots)
    run = _Run(folder=path, roots=roots, lang=lang, offline=offline, allow_demo=allow_demo,
               now=now)  # fmt: skip
    try:
        from digitize.sigverify import load_trust_roots

        load_trust_roots(roots)
    except (OSError, ValueError, TypeError) as exc:
        run.add("trust_roots", False, run.text("trust_roots", detail=escape_control(str(exc))[:200]),
                ExitCode.CONFIG)  # fmt: skip
        return _report(path, run.checks, require_revocation)
    try:
        if path.is_file() and zipfile.is_zipfile(path):
            with tempfile.TemporaryDirectory(prefix="digitize-verify-") as tmp:
                try:
                    run.folder = safe_extract_zip(path, Path(tmp))
                except DigitizeError as exc:
                    run.add("zip", False, escape_control(exc.one_line()), int(exc.exit_code))
                else:
                    _verify_folder(run)
        else:
            _verify_folder(run)
    except Exception as exc:  # noqa: BLE001 - the contract: a verdict, never a traceback
        run.add("verify", False, run.text("aborted", detail=f"{type(exc).__name__}: "
                                          f"{escape_control(str(exc))[:200]}"), ExitCode.VERIFY)
    return _report(path, run.checks, require_revocation)


def _read_capped(run: _Run, name: str, limit: int, missing: str) -> bytes | None:
    """The bytes of a bundle file that is a regular file (not a link) of at most ``limit``
    bytes; None after reporting (as check ``missing`` when absent) when it cannot be used."""
    target = run.folder / name
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        run.add(missing, False, run.text("file_missing", name=name), ExitCode.VERIFY_STRUCTURE)
        return None
    if not stat.S_ISREG(st.st_mode):
        run.add(f"file:{name}", False, run.text("not_regular", name=name),
                ExitCode.VERIFY_STRUCTURE)
        return None
    if st.st_size > limit:
        run.add(f"file:{name}", False, run.text("too_big", name=name, size=st.st_size, limit=limit),
                ExitCode.VERIFY_STRUCTURE)  # fmt: skip
        return None
    fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        return handle.read(limit + 1)[:limit]


def _load_manifest(run: _Run) -> tuple[Manifest | None, bytes]:
    if not run.folder.is_dir():
        run.add("bundle", False, run.text("manifest_missing"), ExitCode.VERIFY_STRUCTURE)
        return None, b""
    data = _read_capped(run, MANIFEST_FILE, MAX_MANIFEST_BYTES, "manifest")
    if data is None:
        return None, b""
    try:
        manifest = Manifest.model_validate(json.loads(data))
    except RecursionError:
        detail = "nested too deeply"
    except (ValueError, ValidationError) as exc:  # JSON, UTF-8 and schema errors
        detail = escape_control(str(exc).splitlines()[0])[:200]
    else:
        run.add("manifest", True, run.text("ok"))
        return manifest, data
    run.add("manifest", False, run.text("manifest_invalid", detail=detail),
            ExitCode.VERIFY_STRUCTURE)
    return None, data


def _name_patterns(manifest: Manifest, doc: DocumentEntry) -> tuple[str, re.Pattern[str], re.Pattern[str]]:
    code = re.escape(ascii_safe_name(manifest.dossier_code))
    ordinal = f"{doc.doc_ordinal:03d}"
    original = re.compile(rf"{code}\.{ordinal}\.original(-[1-9][0-9]{{0,3}})?\.pdf")
    master = re.compile(rf"{code}\.{ordinal}\.master-[1-9][0-9]{{0,3}}(\.[a-z0-9]{{1,5}})?")
    return bundle_file_name(manifest.dossier_code, doc.doc_ordinal), original, master


def _manifest_names(run: _Run, manifest: Manifest) -> set[str]:
    """The bundle files the manifest names, each checked against its R31 pattern before the
    file system is touched; a name that fails is reported and never opened."""
    good: set[str] = set()
    seen: set[str] = set()

    def accept(name: str, pattern_ok: bool, why: str) -> None:
        shown = escape_control(repr(name))
        if not (_SAFE_NAME.fullmatch(name) and pattern_ok) or name in BUNDLE_FILES:
            run.add(f"name:{shown}", False, run.text("bad_name", name=shown, why=why),
                    ExitCode.VERIFY_STRUCTURE)
            return
        if name in seen:
            run.add(f"name:{name}", False, run.text("duplicate_name", name=name),
                    ExitCode.VERIFY_STRUCTURE)
            return
        seen.add(name)
        good.add(name)

    ordinals = [d.doc_ordinal for d in manifest.documents]
    if ordinals != sorted(set(ordinals)):
        run.add("order", False, run.text("order", detail=f"doc_ordinal {ordinals}"),
                ExitCode.VERIFY_STRUCTURE)
    for doc in manifest.documents:
        expected, original, master = _name_patterns(manifest, doc)
        for entry in doc.originals:
            accept(entry.file, bool(original.fullmatch(entry.file)),
                   f"not {expected.removesuffix('.pdf')}.original[-N].pdf")
        for entry in doc.masters:
            accept(entry.file, bool(master.fullmatch(entry.file)),
                   f"not {expected.removesuffix('.pdf')}.master-N.<ext>")
        if doc.file is not None:
            accept(doc.file, doc.file == expected, f"not {expected}")
    return good


def _shown_name(name: str) -> str:
    """A folder entry's name as one safe line: bytes that are not UTF-8 (kept by the OS as
    surrogate escapes) as ``\\xNN``, control and bidi characters escaped."""
    return escape_control(os.fsencode(name).decode("utf-8", "backslashreplace"))


def _check_file_set(run: _Run, expected: set[str]) -> set[str]:
    """Exactly the expected entries, each a regular file; returns those present and regular."""
    present: dict[str, int] = {}
    with os.scandir(run.folder) as entries:
        for entry in entries:
            present[entry.name] = entry.stat(follow_symlinks=False).st_mode
    usable = set()
    for name in sorted(present):
        shown = _shown_name(name)
        if name not in expected:
            run.add(f"file:{shown}", False, run.text("unexpected_file", name=shown),
                    ExitCode.VERIFY_STRUCTURE)
        elif not stat.S_ISREG(present[name]):
            run.add(f"file:{name}", False, run.text("not_regular", name=name),
                    ExitCode.VERIFY_STRUCTURE)
        else:
            usable.add(name)
    return usable


def _check_checksums(run: _Run, expected: set[str], usable: set[str]) -> None:
    data = _read_capped(run, CHECKSUMS_FILE, MAX_CHECKSUMS_BYTES, "checksums")
    if data is None:
        return
    entries: dict[str, str] = {}
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        lines = ["\x00"]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or not _HEX64.fullmatch(digest) or not _SAFE_NAME.fullmatch(name):
            run.add("checksums", False, run.text("checksums_bad_line", line=number),
                    ExitCode.VERIFY_STRUCTURE)
            continue
        if name in entries:
            run.add(f"checksums:{name}", False, run.text("checksums_duplicate", name=name),
                    ExitCode.VERIFY_STRUCTURE)
            continue
        entries[name] = digest.lower()
    for name in sorted(entries.keys() - expected):
        run.add(f"checksums:{name}", False, run.text("checksums_extra", name=name),
                ExitCode.VERIFY_STRUCTURE)
    for name in sorted(expected - {CHECKSUMS_FILE}):
        if name not in entries:
            run.add(f"checksums:{name}", False, run.text("checksums_unlisted", name=name),
                    ExitCode.VERIFY_STRUCTURE)
        elif name not in usable:
            run.add(f"hash:{name}", False, run.text("file_missing", name=name),
                    ExitCode.VERIFY_STRUCTURE)
        elif sha256_file(run.folder / name) != entries[name]:
            run.add(f"hash:{name}", False, run.text("hash_mismatch", name=name),
                    ExitCode.VERIFY_HASH)
        else:
            run.add(f"hash:{name}", True, run.text("ok"))


def _verify_folder(run: _Run) -> None:
    manifest, manifest_bytes = _load_manifest(run)
    if manifest is None:
        return  # without a manifest there is nothing to hold the files to
    names = _manifest_names(run, manifest)
    expected = names | set(BUNDLE_FILES)
    usable = _check_file_set(run, expected)
    _check_checksums(run, expected, usable)
    manifest_check = _check_manifest_signature(run, manifest, manifest_bytes, usable)
    signatures = _check_documents(run, manifest, names, usable)
    _check_identity(run, manifest, manifest_check, signatures)
    _check_times(run, manifest, signatures)


def _check_manifest_signature(run: _Run, manifest: Manifest, data: bytes,
                              usable: set[str]) -> Check | None:  # fmt: skip
    from digitize.sigverify import verify_detached_signature

    if MANIFEST_SIGNATURE_FILE not in usable:
        run.add("manifest_signature", False, run.text("file_missing", name=MANIFEST_SIGNATURE_FILE),
                ExitCode.VERIFY_STRUCTURE)  # fmt: skip
        return None
    signature = _read_capped(run, MANIFEST_SIGNATURE_FILE, MAX_SIGNATURE_BYTES,
                             "manifest_signature")  # fmt: skip
    if signature is None:
        return None
    check = verify_detached_signature(data, signature, run.roots, lang=run.lang, now=run.now,
                                      revocation_evidence=manifest.revocation_evidence,
                                      offline=run.offline)  # fmt: skip
    check = _demo_policy(run, check.model_copy(update={"name": "manifest_signature"}),
                         MANIFEST_SIGNATURE_FILE)  # fmt: skip
    run.checks.append(check)
    return check


def _demo_policy(run: _Run, check: Check, name: str) -> Check:
    """A chain to the DEMO root passes only when the caller allowed demo bundles."""
    if check.details.get("demo") != "true" or run.allow_demo:
        return check
    return check.model_copy(update={"ok": False, "exit_code": int(ExitCode.VERIFY_TRUST),
                                    "message": run.text("demo_refused", name=name)})


def _check_documents(run: _Run, manifest: Manifest, names: set[str],
                     usable: set[str]) -> dict[str, list[Check]]:  # fmt: skip
    """Per document: hashes, sizes, pages, PDF/A, signatures; returns each PDF's signature
    checks (for the identity and time checks). Names that failed their pattern were reported
    already and are never opened."""
    from digitize.sigverify import verify_pdf_signatures

    signatures: dict[str, list[Check]] = {}
    for doc in manifest.documents:
        for original in (*doc.originals, *doc.masters):
            if original.file not in names:
                continue
            if original.file in usable:
                _check_hash(run, f"original:{original.file}", original.file, original.sha256,
                            original.size_bytes)  # fmt: skip
            else:
                run.add(f"original:{escape_control(original.file)}", False,
                        run.text("file_missing", name=escape_control(original.file)),
                        ExitCode.VERIFY_STRUCTURE)
        if doc.file is None or doc.file not in names:
            continue
        if doc.sha256 is None:
            run.add(f"document:{doc.file}", False, run.text("no_hash", name=doc.file),
                    ExitCode.VERIFY_STRUCTURE)
            continue
        if doc.file not in usable:
            run.add(f"document:{escape_control(doc.file)}", False,
                    run.text("file_missing", name=escape_control(doc.file)),
                    ExitCode.VERIFY_STRUCTURE)
            continue
        if not _check_hash(run, f"document:{doc.file}", doc.file, doc.sha256, doc.size_bytes):
            continue
        if not _check_pdf(run, doc.file, doc.image_count):
            continue
        checks = verify_pdf_signatures(run.folder / doc.file, run.roots, offline=run.offline,
                                       lang=run.lang, now=run.now,
                                       revocation_evidence=manifest.revocation_evidence)  # fmt: skip
        if not checks:
            run.add(f"signature:{doc.file}", False, run.text("unsigned", name=doc.file),
                    ExitCode.VERIFY_SIGNATURE)
        named = []
        for check in checks:
            name = check.name if doc.file in check.name else f"signature:{doc.file}:{check.name}"
            named.append(_demo_policy(run, check.model_copy(update={"name": name}), doc.file))
        run.checks.extend(named)
        signatures[doc.file] = named
    return signatures


def _check_hash(run: _Run, check_name: str, name: str, sha256: str, size: int | None) -> bool:
    target = run.folder / name
    if size is not None and target.stat().st_size != size:
        run.add(check_name, False, run.text("size_mismatch", name=name,
                                            found=target.stat().st_size, expected=size),
                ExitCode.VERIFY_HASH)  # fmt: skip
        return False
    if sha256_file(target) != sha256.lower():
        run.add(check_name, False, run.text("hash_mismatch", name=name), ExitCode.VERIFY_HASH)
        return False
    if check_name.startswith("original:"):
        run.add(check_name, True, run.text("ok"))
    return True


def _check_pdf(run: _Run, name: str, image_count: int) -> bool:
    import pikepdf

    try:
        with pikepdf.open(run.folder / name) as pdf:
            pages = len(pdf.pages)
            missing = _pdfa_essentials(pdf)
    except (pikepdf.PdfError, OSError, ValueError, RecursionError) as exc:
        run.add(f"pdf:{name}", False,
                run.text("pdf_unreadable", name=name, detail=escape_control(str(exc))[:120]),
                ExitCode.VERIFY_STRUCTURE)
        return False
    if pages != image_count:
        run.add(f"pages:{name}", False,
                run.text("pages", name=name, found=pages, expected=image_count),
                ExitCode.VERIFY_STRUCTURE)
    else:
        run.add(f"pages:{name}", True, run.text("ok"))
    if missing:
        run.add(f"pdfa:{name}", False, run.text("pdfa", name=name, detail=", ".join(missing)),
                ExitCode.VERIFY_PDFA)
    else:
        run.add(f"pdfa:{name}", True, run.text("ok"))
    return True


def _pdfa_essentials(pdf: Any) -> list[str]:
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


def _regular(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.name.startswith("signature:") and "signer" in c.details]


def _check_identity(run: _Run, manifest: Manifest, manifest_check: Check | None,
                    signatures: dict[str, list[Check]]) -> None:  # fmt: skip
    """One certificate signs every component and is the one the manifest names as digitiser
    (V1, R17); the manifest is signed by that digitiser or, after a person's review, by the
    last reviewer, whose certificate must be personal too and named in the review record."""
    from digitize.review.check import expected_manifest_signer_sha256

    digitiser = manifest.digitiser
    failures_before = len([c for c in run.checks if not c.ok])
    expected = digitiser.cert_sha256.lower()
    short = expected[:16]
    manifest_signer = expected_manifest_signer_sha256(manifest).lower()
    reviewed = manifest_signer != expected or bool(manifest.reviews)
    bound: list[tuple[str, Check]] = []
    if manifest_check is not None:
        found = manifest_check.details.get("signer_cert_sha256")
        if found is None:
            run.add("identity:manifest.json.p7s", False,
                    run.text("identity_unknown", name=MANIFEST_SIGNATURE_FILE), ExitCode.VERIFY_TRUST)
        elif found != manifest_signer:
            run.add("identity:manifest.json.p7s", False,
                    run.text("identity_manifest", found=found[:16], expected=manifest_signer[:16]),
                    ExitCode.VERIFY_TRUST)
        elif reviewed:
            _check_reviewer(run, manifest, manifest_check)
        else:
            bound.append((MANIFEST_SIGNATURE_FILE, manifest_check))
    for name, checks in signatures.items():
        for check in _regular(checks):
            found = check.details["signer_cert_sha256"]
            if found != expected:
                signer = escape_control(check.details.get("signer", "?"))
                run.add(f"identity:{name}", False,
                        run.text("identity_pdf", name=name, found=found[:16], signer=signer,
                                 expected=short), ExitCode.VERIFY_TRUST)  # fmt: skip
            else:
                bound.append((name, check))
    if bound:
        _check_named_person(run, "digitiser", digitiser, bound[0][1].details)
    if len([c for c in run.checks if not c.ok]) == failures_before:
        run.add("identity", True, run.text("ok"))


def _check_named_person(run: _Run, role: str, person: DigitiserInfo,
                        facts: dict[str, str]) -> None:  # fmt: skip
    """The manifest's name, serial and demo claim for ``person`` agree with the certificate
    that signed, and that certificate is a personal one (R17)."""
    if nfc(person.full_name).strip() != facts["signer"]:
        run.add(f"identity:{role}", False, run.text(
            "identity_name", field="full_name", expected=escape_control(person.full_name),
            found=escape_control(facts["signer"])), ExitCode.VERIFY_TRUST)  # fmt: skip
    if person.cert_serial.lower().lstrip("0") != facts["signer_serial"].lstrip("0"):
        run.add(f"identity:{role}", False, run.text(
            "identity_name", field="cert_serial", expected=escape_control(person.cert_serial),
            found=facts["signer_serial"]), ExitCode.VERIFY_TRUST)  # fmt: skip
    prefix = "identity" if role == "digitiser" else f"identity:{role}"
    if facts.get("personal_problem"):
        run.add(f"{prefix}:personal", False,
                run.text("not_personal", why=escape_control(facts["personal_problem"])),
                ExitCode.VERIFY_TRUST)
    demo = facts.get("demo") == "true"
    if demo != person.is_demo:
        run.add(f"{prefix}:demo", False, run.text(
            "demo_mismatch", claimed=str(person.is_demo).lower(),
            chain=("leads to" if demo else "does not lead to") if run.lang == "en"
            else ("dẫn tới" if demo else "không dẫn tới")), ExitCode.VERIFY_TRUST)  # fmt: skip


def _check_reviewer(run: _Run, manifest: Manifest, manifest_check: Check) -> None:
    """After a review the manifest carries the reviewer's signature: the reviewer named in the
    last review record is the person whose personal certificate signed it; the review record
    itself (what changed, by whom, when) is checked by ``digitize.review.check``."""
    from digitize.review.check import check_review

    if manifest.reviews:
        _check_named_person(run, "reviewer", manifest.reviews[-1].reviewer, manifest_check.details)
    signature = run.folder / MANIFEST_SIGNATURE_FILE
    run.checks.extend(check_review(manifest, signature.read_bytes(), run.lang))


def _parse_time(text: str | None) -> datetime | None:
    if not text or text == "?":
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _check_times(run: _Run, manifest: Manifest, signatures: dict[str, list[Check]]) -> None:
    """The manifest's times are the signatures' own, and extraction followed signing (R1)."""
    for doc in manifest.documents:
        summary = doc.signature
        if doc.file is None or summary is None or doc.file not in signatures:
            continue
        name = doc.file
        regular = _regular(signatures[name])
        if not regular:
            continue  # no readable signature: already a failure of its own
        match = [c for c in regular if c.details.get("field") == summary.field_name]
        if not match:
            run.add(f"time:{name}", False, run.text("time_field", name=name,
                                                    field=summary.field_name),
                    ExitCode.VERIFY_STRUCTURE)  # fmt: skip
            continue
        details = match[0].details
        claimed = _parse_time(details.get("signing_time_claimed"))
        if claimed is None or abs(claimed - summary.signed_at) > TIME_SLACK:
            run.add(f"time:{name}", False, run.text(
                "time_signed", name=name, expected=summary.signed_at.isoformat(),
                found=claimed.isoformat() if claimed else "?"), ExitCode.VERIFY_STRUCTURE)
        tst = _parse_time(details.get("signature_timestamp"))
        if (tst is None) != (summary.tsa_time is None) or (
            tst is not None and summary.tsa_time is not None
            and abs(tst - summary.tsa_time) > TIME_SLACK
        ):
            run.add(f"time:{name}", False, run.text(
                "time_tsa", name=name,
                expected=summary.tsa_time.isoformat() if summary.tsa_time else "-",
                found=tst.isoformat() if tst else "-"), ExitCode.VERIFY_STRUCTURE)  # fmt: skip
        for entry in doc.extraction:
            if entry.started_at < summary.signed_at:
                run.add(f"time:{name}", False, run.text(
                    "time_extraction", name=name, field=escape_control(entry.field),
                    started=entry.started_at.isoformat(), signed=summary.signed_at.isoformat()),
                    ExitCode.VERIFY_STRUCTURE)  # fmt: skip
                break
        if manifest.created_at + TIME_SLACK < summary.signed_at:
            run.add(f"time:{name}", False, run.text(
                "time_created", name=name, created=manifest.created_at.isoformat(),
                signed=summary.signed_at.isoformat()), ExitCode.VERIFY_STRUCTURE)  # fmt: skip


def revocation_unproven(checks: tuple[Check, ...] | list[Check]) -> list[str]:
    """Names of the passing signature checks whose certificate was not shown unrevoked."""
    from digitize.sigverify import REVOCATION_GOOD

    return [c.name for c in checks
            if c.ok and "revocation" in c.details and c.details["revocation"] != REVOCATION_GOOD]


def _report(path: Path, checks: list[Check], require_revocation: bool) -> VerifyReport:
    unproven = revocation_unproven(checks)
    if unproven and require_revocation:
        checks.append(Check(name="revocation", ok=False, exit_code=int(
            ExitCode.VERIFY_REVOCATION_UNKNOWN), message=_t(
            "revocation_required", "en", names=", ".join(unproven))))  # fmt: skip
    failures = [c for c in checks if not c.ok]
    code = failures[0].exit_code if failures else 0
    if failures and not code:
        code = int(ExitCode.VERIFY)
    if not failures and unproven:
        code = int(ExitCode.VERIFY_REVOCATION_UNKNOWN)
    demo = any(c.details.get("demo") == "true" for c in checks)
    return VerifyReport(path=path, ok=not failures, exit_code=code, checks=tuple(checks),
                        signed_with_demo_identity=demo, revocation_checked=not unproven)


def verify_signed_pdf(
    path: Path,
    trust_roots: tuple[Path, ...] | None = None,
    *,
    lang: str = "vi",
    offline: bool = True,
    allow_demo: bool = False,
) -> VerifyReport:
    """Verify one signed PDF on its own (``digitize verify file.pdf``): its signatures, with the
    same DEMO policy and revocation state as a bundle. Never raises."""
    from digitize.sigverify import verify_pdf_signatures

    roots = (default_trust_roots() if trust_roots is None else tuple(trust_roots))
    roots = roots + tuple(r for r in demo_root_for(allow_demo) if r not in roots)
    run = _Run(folder=path.parent, roots=roots, lang=lang, offline=offline,
               allow_demo=allow_demo, now=None)  # fmt: skip
    try:
        checks = verify_pdf_signatures(path, roots, offline=offline, lang=lang)
    except Exception as exc:  # noqa: BLE001 - unreadable roots or file: a verdict, not a crash
        run.add("verify", False, run.text("aborted", detail=f"{type(exc).__name__}: "
                                          f"{escape_control(str(exc))[:200]}"), ExitCode.VERIFY)
        return _report(path, run.checks, False)
    if not checks:
        run.add("signature", False, run.text("unsigned", name=path.name), ExitCode.VERIFY_SIGNATURE)
    run.checks.extend(_demo_policy(run, c, path.name) for c in checks)
    return _report(path, run.checks, False)
