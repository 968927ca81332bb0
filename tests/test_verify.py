"""Bundle verification (R8, R32): the untouched bundle verifies; every kind of tampering is
caught with its own verdict and exit code."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from digitize.cli.main import main
from digitize.errors import ExitCode
from digitize.verify import verify_bundle as _verify_bundle


def verify_bundle(path: Path) -> object:
    # The sample bundles are signed with the test run's DEMO identity: accepted on request.
    return _verify_bundle(path, allow_demo=True)


def _pdfs(bundle: Path) -> list[Path]:
    return sorted(bundle.glob("*.pdf"))


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_fresh_bundle_verifies(bundle_copy: Path) -> None:
    report = verify_bundle(bundle_copy)
    assert report.ok, [c.message for c in report.failures]
    # every check passed; the DEMO certificate names no OCSP/CRL: revocation not checked (66)
    assert report.exit_code == ExitCode.VERIFY_REVOCATION_UNKNOWN and not report.revocation_checked
    names = {c.name.split(":")[0] for c in report.checks}
    assert {"manifest", "hash", "manifest_signature", "pages", "pdfa", "signature"} <= names


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_one_byte_flipped_in_a_pdf(bundle_copy: Path, where: str) -> None:
    pdf = _pdfs(bundle_copy)[1]
    size = pdf.stat().st_size
    _flip(pdf, {"start": 20, "middle": size // 2, "end": size - 10}[where])
    report = verify_bundle(bundle_copy)
    assert not report.ok
    assert report.exit_code == ExitCode.VERIFY_HASH
    assert any(pdf.name in c.name and not c.ok for c in report.checks)


def test_manifest_edited(bundle_copy: Path) -> None:
    path = bundle_copy / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["digitiser"]["full_name"] = "Người Khác"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    report = verify_bundle(bundle_copy)
    assert not report.ok
    assert any(c.name == "hash:manifest.json" and not c.ok for c in report.checks)


def test_manifest_edited_and_checksums_recomputed_breaks_its_signature(bundle_copy: Path) -> None:
    """An attacker who also fixes checksums.sha256 is still caught by the manifest signature."""
    from digitize.bundle import write_checksums

    path = bundle_copy / "manifest.json"
    path.write_bytes(path.read_bytes().replace(b'"profile": "default"', b'"profile": "xxxxxxx"'))
    write_checksums(bundle_copy)
    report = verify_bundle(bundle_copy)
    assert not report.ok
    failed = {c.name for c in report.failures}
    assert "manifest_signature" in failed


def test_signature_file_flipped(bundle_copy: Path) -> None:
    sig = bundle_copy / "manifest.json.p7s"
    _flip(sig, sig.stat().st_size // 2)
    report = verify_bundle(bundle_copy)
    assert not report.ok
    assert any(c.name == "hash:manifest.json.p7s" and not c.ok for c in report.checks)


def test_component_deleted(bundle_copy: Path) -> None:
    _pdfs(bundle_copy)[0].unlink()
    report = verify_bundle(bundle_copy)
    assert not report.ok
    assert report.exit_code == ExitCode.VERIFY_STRUCTURE


def test_component_renamed(bundle_copy: Path) -> None:
    pdf = _pdfs(bundle_copy)[1]
    pdf.rename(pdf.with_name(pdf.name.replace(".002.", ".009.")))
    report = verify_bundle(bundle_copy)
    assert not report.ok
    assert report.exit_code == ExitCode.VERIFY_STRUCTURE
    failed = " ".join(c.name for c in report.failures)
    assert ".002.pdf" in failed and ".009.pdf" in failed  # missing one, unexpected other


def test_component_renamed_and_reordered(bundle_copy: Path) -> None:
    first, second = _pdfs(bundle_copy)[:2]
    tmp = bundle_copy / "swap.tmp"
    first.rename(tmp)
    second.rename(first)
    tmp.rename(second)
    report = verify_bundle(bundle_copy)
    assert not report.ok
    assert report.exit_code == ExitCode.VERIFY_HASH


def test_stray_file_added(bundle_copy: Path) -> None:
    shutil.copy(_pdfs(bundle_copy)[0], bundle_copy / "extra.pdf")
    report = verify_bundle(bundle_copy)
    assert not report.ok
    assert any("extra.pdf" in c.name for c in report.failures)
    assert report.exit_code == ExitCode.VERIFY_STRUCTURE


def test_zip_of_the_bundle_verifies_and_zip_slip_is_refused(bundle_copy: Path,
                                                          tmp_path: Path) -> None:
    from digitize.bundle import write_zip

    good = tmp_path / "good.zip"
    write_zip(bundle_copy, good, bundle_copy.name)
    assert verify_bundle(good).ok
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        for path in sorted(bundle_copy.iterdir()):
            archive.write(path, f"{bundle_copy.name}/{path.name}")
        archive.writestr("../../escape.txt", "pwned")
    report = verify_bundle(evil)
    assert not report.ok
    assert report.exit_code == ExitCode.UNSAFE_PATH
    assert not (tmp_path.parent / "escape.txt").exists()


def test_cli_verify_exit_codes(bundle_copy: Path) -> None:
    from digitize.cli import commands_pipeline  # noqa: F401

    runner = CliRunner()
    refused = runner.invoke(main, ["verify", str(bundle_copy), "--lang", "en"])
    assert refused.exit_code == int(ExitCode.VERIFY_TRUST), refused.output
    assert "--allow-demo" in refused.output and "INVALID" in refused.output
    ok = runner.invoke(main, ["verify", str(bundle_copy), "--lang", "en", "--allow-demo"])
    assert ok.exit_code == int(ExitCode.VERIFY_REVOCATION_UNKNOWN), ok.output
    assert "VALID EXCEPT REVOCATION: NOT CHECKED" in ok.output
    assert "\nWARN signature:" in ok.output and "\nPASS hash:" in ok.output
    _flip(_pdfs(bundle_copy)[0], 100)
    bad = runner.invoke(main, ["verify", str(bundle_copy), "--json", "--allow-demo"])
    assert bad.exit_code == int(ExitCode.VERIFY_HASH)
    assert json.loads(bad.output)["ok"] is False
