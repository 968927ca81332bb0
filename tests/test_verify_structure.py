"""The bundle's file set, its size limits and its names (issue 15 points 3 and 5; R8, R31, R32).

A bundle is exactly the manifest's files plus ``manifest.json``, ``manifest.json.p7s`` and
``checksums.sha256``; anything else fails, whatever its case or extension, also when someone
adds a matching line to the (unsigned) ``checksums.sha256``. Oversized or deeply nested
manifests, bad zips and hostile names give a failed check with its exit code — never a
traceback — and a name from an unverified manifest never makes the verifier open a file
outside the bundle.

The bundles are real pipeline output (``bundle_copy``), signed with the test run's DEMO
identity, verified with ``allow_demo=True``; where a test must change the manifest it re-signs
it with that same DEMO key, as anyone could (the DEMO key's password is public).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import pytest

from digitize.bundle import write_zip
from digitize.errors import ExitCode
from digitize.util import sha256_file
from digitize.verify import MAX_MANIFEST_BYTES, verify_bundle
from tests.helpers_bundle import demo_identity, resign_manifest


def _verify(path: Path) -> Any:
    return verify_bundle(path, lang="en", allow_demo=True)


def _failed(report: Any) -> dict[str, tuple[int, str]]:
    return {c.name: (c.exit_code, c.message) for c in report.failures}


def _add_checksum_line(bundle: Path, name: str) -> None:
    with open(bundle / "checksums.sha256", "a", encoding="utf-8") as handle:
        handle.write(f"{sha256_file(bundle / name)}  {name}\n")


# --- point 3: exactly the manifest's files ---------------------------------------------------
@pytest.mark.parametrize("extra", ["notes.txt", "EXTRA.PDF", "x.pdf.js", "Manifest.JSON",
                                   "000.00.12.H62-251125-0001.001.PDF", "readme"])
def test_extra_file_with_its_checksum_line_fails(bundle_copy: Path, extra: str) -> None:
    """V3: an added file plus a matching line in checksums.sha256 → 64, naming the file, in
    both the file-set and the checksums check. Failed before: only ``*.pdf`` (lower case) was
    compared with the manifest, and the added line made every other file pass."""
    (bundle_copy / extra).write_bytes(b"not part of the signed bundle\n")
    _add_checksum_line(bundle_copy, extra)
    report = _verify(bundle_copy)
    failed = _failed(report)
    assert report.exit_code == ExitCode.VERIFY_STRUCTURE
    assert failed[f"file:{extra}"][0] == ExitCode.VERIFY_STRUCTURE
    assert extra in failed[f"checksums:{extra}"][1]


def test_folder_and_link_entries_fail(bundle_copy: Path, tmp_path: Path) -> None:
    """A sub-folder is not part of a bundle; a component replaced by a link (even to an
    identical copy) is not a regular file and is never followed."""
    (bundle_copy / "sub").mkdir()
    pdf = sorted(bundle_copy.glob("*.pdf"))[0]
    outside = tmp_path / "outside.pdf"
    shutil.copy(pdf, outside)
    pdf.unlink()
    pdf.symlink_to(outside)
    report = _verify(bundle_copy)
    failed = _failed(report)
    assert "file:sub" in failed
    assert failed[f"file:{pdf.name}"][0] == ExitCode.VERIFY_STRUCTURE
    assert "not a regular file" in failed[f"file:{pdf.name}"][1]


def test_checksums_must_list_every_file_once(bundle_copy: Path) -> None:
    lines = (bundle_copy / "checksums.sha256").read_text(encoding="utf-8").splitlines()
    (bundle_copy / "checksums.sha256").write_text("\n".join([*lines[1:], lines[2]]) + "\n",
                                                  encoding="utf-8")  # fmt: skip
    failed = _failed(_verify(bundle_copy))
    missing = lines[0].split("  ", 1)[1]
    twice = lines[2].split("  ", 1)[1]
    assert "no line" in failed[f"checksums:{missing}"][1]
    assert "twice" in failed[f"checksums:{twice}"][1]


# --- point 5: names from an unverified manifest stay inside the bundle ----------------------
_OPENED: list[str] = []
_RECORDING: list[bool] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _RECORDING and event in ("open", "os.listdir", "os.scandir") and args:
        _OPENED.append(os.fsdecode(args[0]) if isinstance(args[0], (str, bytes, os.PathLike))
                       else str(args[0]))  # fmt: skip


sys.addaudithook(_audit)


@pytest.mark.parametrize("hostile", ["../outside.txt", "{outside}", "sub/outside.txt",
                                     "..\\outside.txt", "..", "other.001.original.pdf"])
def test_manifest_names_never_leave_the_bundle(bundle_copy: Path, tmp_path: Path,
                                               hostile: str) -> None:  # fmt: skip
    """P6: a manifest (here even validly re-signed) naming a file outside the bundle, or one
    off its R31 pattern, fails 64 before anything is opened: no open() of that path happens.
    Failed before: the name was joined to the folder, stat'ed and hashed (an oracle)."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"a local file\n")
    name = hostile.format(outside=outside)

    def add_original(data: dict[str, Any]) -> None:
        data["documents"][0]["originals"] = [{
            "file": name, "source_file": "x.pdf", "sha256": sha256_file(outside),
            "size_bytes": outside.stat().st_size, "reason": "test"}]  # fmt: skip

    resign_manifest(bundle_copy, demo_identity(), add_original)
    _OPENED.clear()
    _RECORDING.append(True)
    try:
        report = _verify(bundle_copy)
    finally:
        _RECORDING.clear()
    assert report.exit_code == ExitCode.VERIFY_STRUCTURE
    assert any(n.startswith("name:") and code == ExitCode.VERIFY_STRUCTURE
               for n, (code, _) in _failed(report).items())  # fmt: skip
    touched = [p for p in _OPENED if "outside" in p]
    assert touched == [], touched
    assert not any(c.ok and "outside" in c.name for c in report.checks)


def test_listed_file_without_hash_fails(bundle_copy: Path) -> None:
    """V9: a document with ``file`` but no ``sha256`` (validly re-signed) → 64. Failed before:
    its hash check was silently skipped."""

    def drop_hash(data: dict[str, Any]) -> None:
        data["documents"][0]["sha256"] = None

    resign_manifest(bundle_copy, demo_identity(), drop_hash)
    report = _verify(bundle_copy)
    name = json.loads((bundle_copy / "manifest.json").read_text())["documents"][0]["file"]
    code, message = _failed(report)[f"document:{name}"]
    assert code == ExitCode.VERIFY_STRUCTURE and "sha256" in message


# --- point 5: size caps and nesting ----------------------------------------------------------
def test_oversized_manifest_is_refused_unread(bundle_copy: Path) -> None:
    """H8: a manifest over the cap fails 64 without being read (a sparse file: reading it
    would take gigabytes of memory in a real attack)."""
    with open(bundle_copy / "manifest.json", "r+b") as handle:
        handle.truncate(MAX_MANIFEST_BYTES + 1)
    report = _verify(bundle_copy)
    code, message = _failed(report)["file:manifest.json"]
    assert code == ExitCode.VERIFY_STRUCTURE and "too large" in message


@pytest.mark.parametrize("payload", [b"[" * 200_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                                     b"\xff\xfe not utf-8", b""])
def test_hostile_manifest_json_is_a_failed_check(bundle_copy: Path, payload: bytes) -> None:
    """H8: deep nesting (RecursionError), bad UTF-8, empty: a failed check, never a raise.
    Failed before: RecursionError escaped verify_bundle."""
    (bundle_copy / "manifest.json").write_bytes(payload)
    report = _verify(bundle_copy)
    assert report.exit_code == ExitCode.VERIFY_STRUCTURE
    assert "manifest" in _failed(report)


def test_oversized_checksums_file(bundle_copy: Path) -> None:
    with open(bundle_copy / "checksums.sha256", "ab") as handle:
        handle.write(b"#" * (2 * 1024**2))
    assert "too large" in _failed(_verify(bundle_copy))["file:checksums.sha256"][1]


# --- point 3 and 5: zips -----------------------------------------------------------------------
def _zip_from(bundle: Path, target: Path, entries: list[tuple[str, bytes, int | None]]) -> Path:
    """A zip of the bundle's files plus ``entries`` (name, data, unix mode or None)."""
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(bundle.iterdir()):
            archive.write(path, f"{bundle.name}/{path.name}")
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            archive.writestr(info, data)
    return target


def test_genuine_zip_verifies(bundle_copy: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    write_zip(bundle_copy, good, bundle_copy.name)
    assert _verify(good).ok


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
@pytest.mark.parametrize(("label", "code"), [
    ("duplicate", ExitCode.VERIFY_STRUCTURE),
    ("case", ExitCode.VERIFY_STRUCTURE),
    ("nfd", ExitCode.VERIFY_STRUCTURE),
    ("folder", ExitCode.VERIFY_STRUCTURE),
    ("nested", ExitCode.VERIFY_STRUCTURE),
    ("link", ExitCode.UNSAFE_PATH),
    ("slip", ExitCode.UNSAFE_PATH),
])  # fmt: skip
def test_hostile_zip_entries(bundle_copy: Path, tmp_path: Path, label: str, code: int) -> None:
    """V8: duplicate names (another unzip would show the other copy), names equal up to case or
    NFC, folders and nesting inside the bundle, links, zip-slip → refused with their code,
    nothing written outside. Failed before: duplicates passed (last one won), a directory
    entry raised IsADirectoryError out of verify_bundle."""
    root = bundle_copy.name
    pdf = sorted(bundle_copy.glob("*.pdf"))[0].name
    vietnamese = unicodedata.normalize("NFC", "hồ sơ.txt")
    entries = {
        "duplicate": [(f"{root}/{pdf}", b"%PDF-1.7 another copy", None)],
        "case": [(f"{root}/{pdf.upper()}", b"x", None)],
        "nfd": [(f"{root}/{vietnamese}", b"x", None),
                (f"{root}/{unicodedata.normalize('NFD', vietnamese)}", b"y", None)],
        "folder": [(f"{root}/extra/", b"", stat.S_IFDIR | 0o755)],
        "nested": [(f"{root}/extra/x.pdf", b"x", None)],
        "link": [(f"{root}/evil", b"/etc/passwd", stat.S_IFLNK | 0o777)],
        "slip": [("../../escape.txt", b"pwned", None)],
    }[label]  # fmt: skip
    report = _verify(_zip_from(bundle_copy, tmp_path / f"{label}.zip", entries))
    assert not report.ok and report.exit_code == code, _failed(report)
    assert not (tmp_path.parent / "escape.txt").exists()


def test_corrupt_and_bomb_zips(bundle_copy: Path, tmp_path: Path) -> None:
    """A CRC error, a truncated archive, an encrypted entry and a 1000:1 bomb entry: each a
    failed check with its code, never a raise."""
    good = tmp_path / "good.zip"
    write_zip(bundle_copy, good, bundle_copy.name)
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(".pdf"))
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 1000] ^= 0xFF  # stored PDF data: only the CRC notices
    crc = tmp_path / "crc.zip"
    crc.write_bytes(bytes(data))
    assert _verify(crc).exit_code == ExitCode.CORRUPT_FILE
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert not _verify(truncated).ok
    encrypted = tmp_path / "encrypted.zip"
    encrypted.write_bytes(good.read_bytes())
    with zipfile.ZipFile(encrypted, "a") as archive:
        info = zipfile.ZipInfo(f"{bundle_copy.name}/secret.txt")
        info.flag_bits |= 0x1
        archive.writestr(info, b"x")
    assert _verify(encrypted).exit_code == ExitCode.VERIFY_STRUCTURE
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{bundle_copy.name}/zeros.bin", b"\0" * (20 * 1024**2))
    assert _verify(bomb).exit_code == ExitCode.TOO_LARGE


def test_odd_targets_never_raise(tmp_path: Path) -> None:
    """verify_bundle's contract: a verdict for anything it is pointed at."""
    empty = tmp_path / "empty"
    empty.mkdir()
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"PK\x03\x04 nothing")
    for target in (empty, not_zip, tmp_path / "missing", Path("/dev/null")):
        report = verify_bundle(target, lang="en")
        assert not report.ok and report.exit_code != 0
