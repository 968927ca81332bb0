"""Verification of digitiser signatures (issue 7 point 4; R23–R26).

Tampering after signing (one byte changed; an incremental update that changes page content),
wrong trust root, a revoked signer, a file without signature, and detached manifest signatures,
each with its verdict and exit code; allowed later revisions (DSS added afterwards) stay valid;
messages in Vietnamese by default and English on request.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digitize.errors import ExitCode
from digitize.models import PadesLevel
from digitize.sign import SigningSettings, open_signer
from digitize.sigverify import verify_detached_signature, verify_pdf_signatures
from tests import helpers_pki
from tests.helpers_pki import (
    NAMES,
    PFX_PASSWORD,
    PkiServices,
    make_pdfa_sample,
)

# session fixtures shared with other test modules (one PKI, one token, one CSC server)
vn_pki = helpers_pki.vn_pki

SCAN_TIME = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)


def _settings(pki: PkiServices, who: str, level: PadesLevel, **kw: object) -> SigningSettings:
    return SigningSettings(backend="pkcs12", pkcs12_path=str(pki.pkcs12_path(who)), level=level,
                           tsa_url=pki.tsa_url, trust_roots=(str(pki.root_cert),), **kw)  # fmt: skip


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, vn_pki: PkiServices) -> dict[str, Path]:
    os.environ["DIGITIZE_PKCS12_PASSWORD"] = PFX_PASSWORD
    d = tmp_path_factory.mktemp("verify")
    src = make_pdfa_sample(d / "in.pdf")
    out = {"unsigned": src}
    signer = open_signer(_settings(vn_pki, "hoa", PadesLevel.B_T))
    try:
        out["B-T"] = d / "bt.pdf"
        signer.sign_pdf(src, out["B-T"], scan_time=SCAN_TIME)
        out["manifest.p7s"] = d / "manifest.p7s"
        out["manifest.p7s"].write_bytes(signer.sign_detached(b'{"dossier": "H62-0001"}'))
    finally:
        signer.close()
    os.environ["DIGITIZE_PKCS12_PASSWORD"] = PFX_PASSWORD  # read once per open, then removed
    signer = open_signer(_settings(vn_pki, "hoa", PadesLevel.B_LTA))
    try:
        out["B-LTA"] = d / "blta.pdf"
        signer.sign_pdf(src, out["B-LTA"], scan_time=SCAN_TIME)
    finally:
        signer.close()
    # a revoked signer, signed without the pre-signing check (as an attacker or old tool would)
    os.environ["DIGITIZE_PKCS12_PASSWORD"] = PFX_PASSWORD
    signer = open_signer(_settings(vn_pki, "nam", PadesLevel.B_B, check_revocation=False))
    try:
        out["revoked"] = d / "revoked.pdf"
        signer.sign_pdf(src, out["revoked"], scan_time=SCAN_TIME)
    finally:
        signer.close()
    os.environ.pop("DIGITIZE_PKCS12_PASSWORD", None)
    return out


def _sig_check(checks: list) -> object:
    return next(c for c in checks if c.name.startswith("signature:"))


def test_valid_file_messages_vi_and_en(signed: dict[str, Path], vn_pki: PkiServices) -> None:
    """R26: Vietnamese report by default (signer, time, integrity), English on request."""
    vi = _sig_check(verify_pdf_signatures(signed["B-T"], (vn_pki.root_cert,)))
    en = _sig_check(verify_pdf_signatures(signed["B-T"], (vn_pki.root_cert,), lang="en"))
    assert vi.ok and en.ok and vi.exit_code == 0
    assert "Chữ ký" in vi.message and "hợp lệ" in vi.message and NAMES["hoa"] in vi.message
    assert "Signature of" in en.message and "valid" in en.message
    assert "+07:00" in vi.message
    assert vi.details["pades_level"] == "B-T" and vi.details["signature_timestamp"]


def test_byte_changed_after_signing(
    signed: dict[str, Path], vn_pki: PkiServices, tmp_path: Path
) -> None:
    """A single byte changed inside the signed range → VERIFY_SIGNATURE."""
    data = bytearray(signed["B-LTA"].read_bytes())
    pos = data.index(b"\xff\xd8\xff") + 2000  # inside the page's JPEG, covered by the signature
    data[pos] ^= 0x01
    bad = tmp_path / "flipped.pdf"
    bad.write_bytes(bytes(data))
    checks = verify_pdf_signatures(bad, (vn_pki.root_cert,))
    sig = _sig_check(checks)
    assert not sig.ok and sig.exit_code == ExitCode.VERIFY_SIGNATURE
    assert "thay đổi" in sig.message


def test_incremental_update_changing_page_content(
    signed: dict[str, Path], vn_pki: PkiServices, tmp_path: Path
) -> None:
    """An incremental update after signing that replaces page 1's content → VERIFY_SIGNATURE
    (the signature still covers its own revision intact: only difference analysis sees it)."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    bad = tmp_path / "edited.pdf"
    bad.write_bytes(signed["B-T"].read_bytes())
    with bad.open("r+b") as f:
        w = IncrementalPdfFileWriter(f)
        page_ref = w.root["/Pages"]["/Kids"][0]
        page = page_ref.get_object()
        forged = w.add_object(generic.StreamObject(stream_data=b"q 1 0 0 rg 100 400 300 80 re f Q"))
        page["/Contents"] = generic.ArrayObject([page.raw_get("/Contents"), forged])
        w.update_container(page)
        w.write_in_place()
    sig = _sig_check(verify_pdf_signatures(bad, (vn_pki.root_cert,), lang="en"))
    assert not sig.ok and sig.exit_code == ExitCode.VERIFY_SIGNATURE
    assert sig.details["coverage"] == "ENTIRE_REVISION"
    assert "modified" in sig.message


def test_later_dss_revision_is_allowed(
    signed: dict[str, Path], vn_pki: PkiServices, tmp_path: Path
) -> None:
    """Adding validation data after signing (what B-LT/B-LTA do) is not tampering."""
    from asn1crypto import pem, x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import add_validation_info
    from pyhanko_certvalidator import ValidationContext

    root = x509.Certificate.load(pem.unarmor(vn_pki.root_cert.read_bytes())[2])
    later = tmp_path / "ltv-later.pdf"
    later.write_bytes(signed["B-T"].read_bytes())
    with later.open("r+b") as f:
        sig = PdfFileReader(f).embedded_signatures[0]
        add_validation_info(
            sig, ValidationContext(trust_roots=[root], allow_fetching=True), in_place=True
        )
    check = _sig_check(verify_pdf_signatures(later, (vn_pki.root_cert,)))
    assert check.ok, check.message
    assert check.details["coverage"] == "ENTIRE_REVISION" and check.details["revocation"] == "good"
    assert IncrementalPdfFileWriter  # imported for symmetry with the tampering test


def test_untrusted_root(signed: dict[str, Path], tmp_path: Path) -> None:
    """R26: a signature that does not chain to the configured roots → VERIFY_TRUST."""
    from digitize.sign import demo_trust_root

    other_root = demo_trust_root(tmp_path / "data")
    sig = _sig_check(verify_pdf_signatures(signed["B-T"], (other_root,)))
    assert not sig.ok and sig.exit_code == ExitCode.VERIFY_TRUST


def test_revoked_signer_detected_online(signed: dict[str, Path], vn_pki: PkiServices) -> None:
    """R25/R26: signed after the revocation date → not valid, VERIFY_TRUST, message says revoked."""
    sig = _sig_check(verify_pdf_signatures(signed["revoked"], (vn_pki.root_cert,), offline=False))
    assert not sig.ok and sig.exit_code == ExitCode.VERIFY_TRUST
    assert "thu hồi" in sig.message and NAMES["nam"] in sig.message


def test_unsigned_and_unreadable_files(
    signed: dict[str, Path], vn_pki: PkiServices, tmp_path: Path
) -> None:
    checks = verify_pdf_signatures(signed["unsigned"], (vn_pki.root_cert,))
    assert (
        len(checks) == 1 and not checks[0].ok and checks[0].exit_code == ExitCode.VERIFY_SIGNATURE
    )
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"%PDF-1.7\nnot really\n")
    checks = verify_pdf_signatures(junk, (vn_pki.root_cert,))
    assert not checks[0].ok and checks[0].exit_code == ExitCode.VERIFY_SIGNATURE


def test_detached_manifest_signature(
    signed: dict[str, Path], vn_pki: PkiServices, tmp_path: Path
) -> None:
    """The manifest's detached CMS: valid; edited manifest → VERIFY_SIGNATURE; garbage →
    VERIFY_SIGNATURE; foreign root → VERIFY_TRUST."""
    sig = signed["manifest.p7s"].read_bytes()
    manifest = b'{"dossier": "H62-0001"}'
    ok = verify_detached_signature(manifest, sig, (vn_pki.root_cert,))
    assert ok.ok and NAMES["hoa"] in ok.message and ok.details.get("timestamp")
    edited = verify_detached_signature(
        manifest.replace(b"0001", b"0002"), sig, (vn_pki.root_cert,), lang="en"
    )
    assert not edited.ok and edited.exit_code == ExitCode.VERIFY_SIGNATURE
    garbage = verify_detached_signature(manifest, sig[:50] + b"\x00" * 10, (vn_pki.root_cert,))
    assert not garbage.ok and garbage.exit_code == ExitCode.VERIFY_SIGNATURE
    from digitize.sign import demo_trust_root

    foreign = verify_detached_signature(manifest, sig, (demo_trust_root(tmp_path / "d"),))
    assert not foreign.ok and foreign.exit_code == ExitCode.VERIFY_TRUST
