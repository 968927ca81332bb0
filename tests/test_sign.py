"""Digitiser signatures (R17–R27) on a real test PKI modelled on Vietnam's.

Covers: the three key sources (PKCS#12 file, SoftHSM2 token through PKCS#11, CSC remote
signing) × the four PAdES baseline levels, checked by our verifier AND by poppler's pdfsig
(NSS) with the test root; offline long-term validation with the OCSP/CRL/TSA services stopped;
refusals (revoked, expired, organisation certificate, wrong PIN/password, TSA down, OCSP down);
the visible note (OCR of the rendered corner, embedded font, overlap rule); PDF/A-2b kept
(veraPDF); the demo identity; secrets never written or logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
import pytest
from asn1crypto import cms

from digitize.errors import (
    BadPinError,
    CertificateExpiredError,
    CertificateNotPersonalError,
    CertificateRevokedError,
    ExitCode,
    SignerConfigError,
    SignerUnavailableError,
    TimestampUnavailableError,
)
from digitize.models import PadesLevel, Severity
from digitize.sign import (
    STAMP_MAX_H_PT,
    STAMP_MAX_W_PT,
    SigningSettings,
    open_signer,
    plan_stamp,
    resolve_font,
)
from digitize.sigverify import verify_pdf_signatures
from tests import helpers_pki
from tests.helpers_pki import (
    NAMES,
    PFX_PASSWORD,
    CscServer,
    PkiServices,
    SoftHsmToken,
    free_port,
    make_nss_db,
    make_pdfa_sample,
    require_tool,
    run_pdfsig,
)

# session fixtures shared with other test modules (one PKI, one token, one CSC server)
csc_server = helpers_pki.csc_server
softhsm_token = helpers_pki.softhsm_token
vn_pki = helpers_pki.vn_pki

SCAN_TIME = datetime(2026, 11, 24, 2, 30, 5, tzinfo=UTC)  # 09:30:05 in Hà Nội
BACKENDS = ("pkcs12", "pkcs11", "csc")
LEVELS = tuple(PadesLevel)


def backend_settings(
    backend: str,
    pki: PkiServices,
    token: SoftHsmToken | None,
    csc: CscServer | None,
    who: str = "hoa",
) -> dict[str, object]:
    if backend == "pkcs12":
        return {"backend": "pkcs12", "pkcs12": {"path": str(pki.pkcs12_path(who))}}
    if backend == "pkcs11":
        assert token is not None
        return {"backend": "pkcs11", "pkcs11": {"module": token.module, "token_label": token.label,
                                                "key_label": token.key_label}}  # fmt: skip
    assert csc is not None
    return {"backend": "csc", "csc": {"url": csc.url, "credential_id": csc.credential_id(who)}}


def put_secrets(token: SoftHsmToken) -> None:
    """A secret in the environment serves one open_signer (it is removed once read)."""
    os.environ["DIGITIZE_PKCS12_PASSWORD"] = PFX_PASSWORD
    os.environ["DIGITIZE_PKCS11_PIN"] = token.pin


@pytest.fixture
def secrets_env(softhsm_token: SoftHsmToken) -> Iterator[None]:
    put_secrets(softhsm_token)
    yield
    os.environ.pop("DIGITIZE_PKCS12_PASSWORD", None)
    os.environ.pop("DIGITIZE_PKCS11_PIN", None)


@pytest.fixture(scope="module")
def sample_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pdfa_sample(tmp_path_factory.mktemp("in") / "component-001.pdf")


@pytest.fixture(scope="module")
def nss_db(tmp_path_factory: pytest.TempPathFactory, vn_pki: PkiServices) -> Path:
    return make_nss_db(tmp_path_factory.mktemp("nss"), vn_pki.root_cert)


@pytest.fixture(scope="module")
def matrix(
    tmp_path_factory: pytest.TempPathFactory,
    vn_pki: PkiServices,
    softhsm_token: SoftHsmToken,
    csc_server: CscServer,
    sample_pdf: Path,
) -> dict[tuple[str, PadesLevel], tuple[Path, object]]:
    """The same component signed by each back-end at each level (one signer per back-end)."""
    out = tmp_path_factory.mktemp("signed")
    results = {}
    for backend in BACKENDS:
        for level in LEVELS:
            settings = SigningSettings(
                **backend_settings(backend, vn_pki, softhsm_token, csc_server),
                level=level, tsa_url=vn_pki.tsa_url, trust_roots=(str(vn_pki.root_cert),),
            )  # fmt: skip
            put_secrets(softhsm_token)
            signer = open_signer(settings)
            try:
                path = out / f"{backend}_{level.value}.pdf"
                results[(backend, level)] = (
                    path,
                    signer.sign_pdf(sample_pdf, path, scan_time=SCAN_TIME),
                )
            finally:
                signer.close()
    return results


CASES = [(b, lv) for b in BACKENDS for lv in LEVELS]
IDS = [f"{b}-{lv.value}" for b, lv in CASES]


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "level"), CASES, ids=IDS)
def test_signed_component_validates_with_sigverify_and_pdfsig(
    matrix: dict, backend: str, level: PadesLevel, vn_pki: PkiServices, nss_db: Path
) -> None:
    """R23/R26: every back-end × level validates with our verifier and with NSS (pdfsig)."""
    path, record = matrix[(backend, level)]
    assert record.pades_level == level
    assert record.signer.full_name == NAMES["hoa"]
    checks = verify_pdf_signatures(path, (vn_pki.root_cert,), offline=False, lang="en")
    regular = [c for c in checks if c.name.startswith("signature:")]
    assert len(regular) == 1 and all(c.ok for c in checks), [c.message for c in checks]
    assert regular[0].details["pades_level"] == level.value
    assert regular[0].details["revocation"] == "good"
    # pdfsig: the digitiser's signature is valid and trusted (it ignores doc timestamps)
    result = run_pdfsig(path, nss_db)
    assert result.valid >= 1 and result.trusted >= 1, result.output
    assert NAMES["hoa"] in result.output
    assert "ETSI.CAdES.detached" in result.output


@pytest.mark.slow
def test_levels_have_the_structure_their_name_promises(matrix: dict) -> None:
    """R23: read back with pikepdf/asn1crypto (not our code): timestamp, DSS, document timestamp."""
    for (backend, level), (path, record) in matrix.items():
        with pikepdf.open(path) as pdf:
            fields = pdf.Root.AcroForm.Fields
            sig_fields = [f for f in fields if f.get("/FT") == "/Sig"]
            kinds = [str(f.V.get("/Type")) for f in sig_fields]
            digitiser = next(f for f in sig_fields if str(f.V.get("/Type")) == "/Sig")
            assert str(digitiser.V.SubFilter) == "/ETSI.CAdES.detached"
            signed_data = cms.ContentInfo.load(bytes(digitiser.V.Contents))["content"]
            si = signed_data["signer_infos"][0]
            signed_attrs = {a["type"].native for a in si["signed_attrs"]}
            unsigned = (
                {a["type"].native for a in si["unsigned_attrs"]}
                if si["unsigned_attrs"].native
                else set()
            )
            assert "signing_certificate_v2" in signed_attrs
            assert si["digest_algorithm"]["algorithm"].native == "sha256"
            has_dss = "/DSS" in pdf.Root
            has_doc_ts = "/DocTimeStamp" in kinds
        has_ts = "signature_time_stamp_token" in unsigned
        assert has_ts == (level != PadesLevel.B_B), (backend, level)
        assert (record.tsa_time is not None) == has_ts
        assert has_dss == (level in (PadesLevel.B_LT, PadesLevel.B_LTA)), (backend, level)
        assert has_doc_ts == (level == PadesLevel.B_LTA), (backend, level)


@pytest.mark.slow
def test_long_term_levels_validate_with_services_stopped(matrix: dict, vn_pki: PkiServices) -> None:
    """R23 target B-LT: with OCSP, CRL and TSA down, B-LT/B-LTA still prove non-revocation."""
    with vn_pki.services_stopped():
        for (backend, level), (path, _) in matrix.items():
            checks = verify_pdf_signatures(path, (vn_pki.root_cert,), offline=True, lang="en")
            assert all(c.ok for c in checks), (backend, level, [c.message for c in checks])
            sig = next(c for c in checks if c.name.startswith("signature:"))
            expected = "good" if level in (PadesLevel.B_LT, PadesLevel.B_LTA) else "not verified"
            assert sig.details["revocation"] == expected, (backend, level)


# --- refusals (R17, R25) -----------------------------------------------------------------------
def pkcs12_settings(pki: PkiServices, who: str, **kw: object) -> SigningSettings:
    return SigningSettings(backend="pkcs12", pkcs12={"path": str(pki.pkcs12_path(who))},
                           trust_roots=(str(pki.root_cert),), tsa_url=pki.tsa_url, **kw)  # fmt: skip


def test_revoked_certificate_is_refused(vn_pki: PkiServices, secrets_env: None) -> None:
    """R25: Trần Văn Nam's certificate was revoked (OCSP says so) → exit code CERT_REVOKED."""
    with pytest.raises(CertificateRevokedError) as exc:
        open_signer(pkcs12_settings(vn_pki, "nam"))
    assert exc.value.exit_code == ExitCode.CERT_REVOKED == 51
    assert NAMES["nam"] in str(exc.value)


def test_expired_certificate_is_refused(vn_pki: PkiServices, secrets_env: None) -> None:
    """R25: Lê Văn Cũ's certificate expired on 2025-01-01 → exit code CERT_EXPIRED."""
    with pytest.raises(CertificateExpiredError) as exc:
        open_signer(pkcs12_settings(vn_pki, "cu"))
    assert exc.value.exit_code == ExitCode.CERT_EXPIRED
    assert "2025-01-01" in str(exc.value)


def test_organisation_certificate_is_refused(vn_pki: PkiServices, secrets_env: None) -> None:
    """R17: a company certificate (CN = O, MST in UID) cannot sign as the digitiser."""
    with pytest.raises(CertificateNotPersonalError) as exc:
        open_signer(pkcs12_settings(vn_pki, "org"))
    assert exc.value.exit_code == ExitCode.CERT_NOT_PERSONAL


def test_wrong_token_pin(
    vn_pki: PkiServices, softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R27: a wrong PIN on the USB token → BadPinError, and the PIN is not in the message."""
    wrong = "999999"
    monkeypatch.setenv("DIGITIZE_PKCS11_PIN", wrong)
    settings = SigningSettings(**backend_settings("pkcs11", vn_pki, softhsm_token, None),
                               trust_roots=(str(vn_pki.root_cert),))  # fmt: skip
    with pytest.raises(BadPinError) as exc:
        open_signer(settings)
    assert exc.value.exit_code == ExitCode.BAD_PIN
    assert wrong not in str(exc.value)


def test_wrong_pkcs12_password(vn_pki: PkiServices, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "not-the-password-42"
    monkeypatch.setenv("DIGITIZE_PKCS12_PASSWORD", wrong)
    with pytest.raises(BadPinError) as exc:
        open_signer(pkcs12_settings(vn_pki, "hoa"))
    assert wrong not in str(exc.value)


def test_missing_password_names_the_env_var(
    vn_pki: PkiServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No secret in the environment and no terminal: a config error saying what to set."""
    monkeypatch.delenv("DIGITIZE_PKCS12_PASSWORD", raising=False)
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # never a TTY, even under `pytest -s`
    with pytest.raises(SignerConfigError) as exc:
        open_signer(pkcs12_settings(vn_pki, "hoa"))
    assert "DIGITIZE_PKCS12_PASSWORD" in str(exc.value)
    assert exc.value.exit_code == ExitCode.SIGNER_CONFIG


def test_tsa_down_is_a_clear_error(
    vn_pki: PkiServices, secrets_env: None, sample_pdf: Path, tmp_path: Path
) -> None:
    """No silent fallback: B-T with an unreachable TSA → TimestampUnavailableError, no output file."""
    dead = f"http://127.0.0.1:{free_port()}/tsa"
    signer = open_signer(
        pkcs12_settings(vn_pki, "hoa", level=PadesLevel.B_T).model_copy(update={"tsa_url": dead})
    )
    try:
        with pytest.raises(TimestampUnavailableError) as exc:
            signer.sign_pdf(sample_pdf, tmp_path / "out.pdf", scan_time=SCAN_TIME)
    finally:
        signer.close()
    assert exc.value.exit_code == ExitCode.TSA_UNAVAILABLE
    assert dead in str(exc.value)
    assert not (tmp_path / "out.pdf").exists()


def test_revocation_unreachable_refuses_to_sign(vn_pki: PkiServices, secrets_env: None) -> None:
    """R25: a certificate with OCSP/CRL pointers whose responders are down is not signed with;
    after the retries it is a station fault to retry later (57), not bad input."""
    settings = pkcs12_settings(vn_pki, "hoa", level=PadesLevel.B_B, network_retry_backoff_s=0.01)
    with vn_pki.services_stopped(), pytest.raises(SignerUnavailableError) as exc:
        open_signer(settings)
    assert exc.value.exit_code == ExitCode.SIGNER_UNAVAILABLE == 57
    assert "revoked" in str(exc.value) and "OCSP" in str(exc.value)


# --- algorithms (R24) -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("who", "extra", "algo"),
    [
        ("en", {}, "ecdsa"),
        ("hoa", {"rsa_padding": "pss"}, "rsassa_pss"),
        ("hoa", {"digest_algorithm": "sha384"}, "rsassa_pkcs1v15"),
    ],  # fmt: skip
    ids=["ecdsa-p256", "rsa-pss", "sha384"],
)
def test_algorithms(vn_pki: PkiServices, secrets_env: None, sample_pdf: Path, tmp_path: Path,
                    who: str, extra: dict, algo: str) -> None:  # fmt: skip
    signer = open_signer(pkcs12_settings(vn_pki, who, level=PadesLevel.B_B, **extra))
    try:
        rec = signer.sign_pdf(sample_pdf, tmp_path / "out.pdf", scan_time=SCAN_TIME)
    finally:
        signer.close()
    assert rec.signature_algorithm == algo
    checks = verify_pdf_signatures(tmp_path / "out.pdf", (vn_pki.root_cert,))
    assert checks[0].ok, checks[0].message
    with pikepdf.open(tmp_path / "out.pdf") as pdf:
        sig = next(f.V for f in pdf.Root.AcroForm.Fields if f.get("/FT") == "/Sig")
        si = cms.ContentInfo.load(bytes(sig.Contents))["content"]["signer_infos"][0]
    assert si["digest_algorithm"]["algorithm"].native == extra.get("digest_algorithm", "sha256")
    assert si["signature_algorithm"].signature_algo == algo


# --- the visible note (R18–R21) --------------------------------------------------------------
A4 = (0.0, 0.0, 595.276, 841.89)


def test_stamp_box_top_left_within_limits() -> None:
    """R18/R19: 5 mm from top and left, ≤ 70 × 20 mm, 8.5–10 pt when nothing is in the way."""
    font = resolve_font(None)
    lay = plan_stamp(A4, "Tôn Nữ Thị Phương Thảo", "09:30 ngày 24/11/2026", font)
    x0, y0, x1, y1 = lay.box
    assert x0 == pytest.approx(5 * 72 / 25.4, abs=0.01)
    assert A4[3] - y1 == pytest.approx(5 * 72 / 25.4, abs=0.01)
    assert x1 - x0 <= STAMP_MAX_W_PT + 0.01 and y1 - y0 <= STAMP_MAX_H_PT + 0.01
    assert 8.5 <= lay.font_size <= 10 and not lay.shrunk
    assert lay.lines == (
        "Người số hóa: Tôn Nữ Thị Phương Thảo",
        "Thời gian sao chụp: 09:30 ngày 24/11/2026",
    )


def test_stamp_over_text_shrinks_in_the_same_corner(
    vn_pki: PkiServices, secrets_env: None, tmp_path: Path
) -> None:
    """R20: text under the box → same corner, 8 pt, tighter box, review flag; never moved."""
    src = make_pdfa_sample(tmp_path / "in.pdf", text_near_top=True)
    text_box = (18.0, 800.0, 400.0, 815.0)  # the organ name printed in the corner, in points
    signer = open_signer(pkcs12_settings(vn_pki, "hoa", level=PadesLevel.B_B))
    try:
        plain = signer.sign_pdf(src, tmp_path / "plain.pdf", scan_time=SCAN_TIME)
        shrunk = signer.sign_pdf(
            src, tmp_path / "shrunk.pdf", scan_time=SCAN_TIME, text_boxes_pt=(text_box,)
        )
    finally:
        signer.close()
    assert not plain.appearance_shrunk and shrunk.appearance_shrunk
    assert shrunk.appearance_box_pt[0] == plain.appearance_box_pt[0]  # left edge kept
    assert shrunk.appearance_box_pt[3] == plain.appearance_box_pt[3]  # top edge kept
    w = lambda b: b[2] - b[0]  # noqa: E731
    h = lambda b: b[3] - b[1]  # noqa: E731
    assert w(shrunk.appearance_box_pt) < w(plain.appearance_box_pt)
    assert h(shrunk.appearance_box_pt) < h(plain.appearance_box_pt)
    flag = next(f for f in shrunk.flags if f.code == "stamp_overlaps_text")
    assert flag.severity == Severity.REVIEW and flag.page == 1
    with pikepdf.open(tmp_path / "shrunk.pdf") as pdf:  # the field itself sits in that corner
        annot = next(a for a in pdf.pages[0].Annots if a.get("/FT") == "/Sig")
        assert [round(float(v), 1) for v in annot.Rect] == [
            round(v, 1) for v in shrunk.appearance_box_pt
        ]


def _ocr_stamp(
    pdf: Path, box: tuple[float, float, float, float], tmp: Path, png_out: Path | None = None
) -> str:
    require_tool("pdftoppm")
    require_tool("tesseract")
    from PIL import Image

    subprocess.run(["pdftoppm", "-r", "300", "-f", "1", "-l", "1", "-png", str(pdf), str(tmp / "page")],
                   check=True, capture_output=True)  # fmt: skip
    page_png = next(tmp.glob("page*.png"))
    with pikepdf.open(pdf) as doc:
        page_h = float(doc.pages[0].MediaBox[3])
    s = 300 / 72
    x0, y0, x1, y1 = box
    crop = Image.open(page_png).crop((int(x0 * s) - 10, int((page_h - y1) * s) - 10,
                                      int(x1 * s) + 10, int((page_h - y0) * s) + 10))  # fmt: skip
    crop_path = png_out or tmp / "stamp.png"
    crop.save(crop_path)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    p = subprocess.run(["tesseract", str(crop_path), "-", "-l", "vie", "--psm", "6"],
                       capture_output=True, text=True, env=env, check=True)  # fmt: skip
    return unicodedata.normalize("NFC", " ".join(p.stdout.split()))


@pytest.mark.slow
def test_rendered_note_shows_the_vietnamese_name(matrix: dict, tmp_path: Path) -> None:
    """R18/R19, R21: OCR (tesseract vie) of the rendered top-left box reads the configured name
    and the scan time in Vietnam time, Vietnamese form, diacritics included."""
    path, record = matrix[("pkcs12", PadesLevel.B_B)]
    text = _ocr_stamp(path, record.appearance_box_pt, tmp_path)
    assert NAMES["hoa"] in text, text  # expected = the name we configured in the test PKI
    assert "Người số hóa" in text, text
    # SCAN_TIME is 02:30:05 UTC = 09:30 in Hà Nội, written here by hand
    assert "09:30 ngày 24/11/2026" in text, text


def test_stamp_font_embedded_subset(matrix: dict) -> None:
    """R16/R19 / PDF/A: the note's font is an embedded subset (pdffonts: emb yes, sub yes, uni
    yes) of a serif face (Noto Serif, installed by scripts/setup.sh)."""
    require_tool("pdffonts")
    path, _ = matrix[("pkcs12", PadesLevel.B_B)]
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    rows = [r.split() for r in out.splitlines()[2:] if r.strip()]
    assert rows and all(r[-5:-2] == ["yes", "yes", "yes"] for r in rows), out
    assert any("NotoSerif" in r[0] for r in rows), out


@pytest.mark.slow
def test_signed_files_stay_pdfa_2b(matrix: dict, sample_pdf: Path) -> None:
    """R13 + issue 7: veraPDF passes PDF/A-2b on the input and every signed level."""
    from tests.helpers_verapdf import verapdf_validate_many

    jobs = [(sample_pdf, "2b")] + [(matrix[("pkcs12", lv)][0], "2b") for lv in LEVELS]
    jobs.append((matrix[("pkcs11", PadesLevel.B_LTA)][0], "2b"))
    reports = verapdf_validate_many(jobs)
    assert all(r.compliant for r in reports), "\n".join(r.summary() for r in reports)


# --- demo identity ----------------------------------------------------------------------------
def test_demo_identity_created_once_and_signs(tmp_path: Path, sample_pdf: Path) -> None:
    data = tmp_path / "data"
    signer = open_signer(SigningSettings(), data_dir=data)
    try:
        rec = signer.sign_pdf(sample_pdf, tmp_path / "demo.pdf", scan_time=SCAN_TIME)
        manifest_sig = signer.sign_detached(b'{"dossier": "demo"}')
    finally:
        signer.close()
    folder = data / "demo-identity"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert (
        rec.signer.is_demo and "DEMO" in rec.signer.full_name and "DEMO" in rec.signer.cert_issuer
    )
    assert rec.pades_level == PadesLevel.B_B and any(f.code == "no_timestamp" for f in rec.flags)
    assert cms.ContentInfo.load(manifest_sig)["content_type"].native == "signed_data"
    first = (folder / "root.pem").read_bytes()
    again = open_signer(SigningSettings(), data_dir=data)  # second run: same identity
    try:
        assert again.identity.cert_sha256 == rec.signer.cert_sha256
    finally:
        again.close()
    assert (folder / "root.pem").read_bytes() == first
    checks = verify_pdf_signatures(tmp_path / "demo.pdf", (folder / "root.pem",))
    assert checks[0].ok, checks[0].message


def test_demo_identity_concurrent_creation(tmp_path: Path) -> None:
    """Two processes creating the demo identity at once end with one, intact identity."""
    code = (
        "import sys; from pathlib import Path; from digitize.sign import open_signer, SigningSettings;"
        "s = open_signer(SigningSettings(), data_dir=Path(sys.argv[1])); print(s.identity.cert_sha256); s.close()"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1] and len(outs[0]) == 64
    assert sorted(os.listdir(tmp_path)) == ["demo-identity"]  # no temp folders left behind
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

    from digitize.sign import DEMO_PKCS12_PASSWORD

    p12 = (tmp_path / "demo-identity" / "demo.p12").read_bytes()
    _, cert, _ = pkcs12.load_key_and_certificates(p12, DEMO_PKCS12_PASSWORD)
    assert cert is not None
    assert hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest() == outs[0]


# --- secrets --------------------------------------------------------------------------------
def test_secrets_never_written_or_logged(
    vn_pki: PkiServices, softhsm_token: SoftHsmToken, secrets_env: None, sample_pdf: Path,
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """R27: the PKCS#12 password and token PIN appear in no written file and no log record."""
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    for backend in ("pkcs12", "pkcs11"):
        put_secrets(softhsm_token)
        settings = SigningSettings(**backend_settings(backend, vn_pki, softhsm_token, None),
                                   level=PadesLevel.B_LT, tsa_url=vn_pki.tsa_url,
                                   trust_roots=(str(vn_pki.root_cert),))  # fmt: skip
        signer = open_signer(settings, data_dir=tmp_path / "data")
        try:
            signer.sign_pdf(sample_pdf, out / f"{backend}.pdf", scan_time=SCAN_TIME)
            (out / f"{backend}.p7s").write_bytes(signer.sign_detached(b"manifest"))
        finally:
            signer.close()
    secrets = [PFX_PASSWORD.encode(), softhsm_token.pin.encode()]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 4
    for p in written:
        data = p.read_bytes()
        for s in secrets:
            assert s not in data, f"secret found in {p}"
    log_text = "\n".join(r.getMessage() for r in caplog.records)
    assert PFX_PASSWORD not in log_text and softhsm_token.pin not in log_text


# --- the R17 rule on synthetic subjects ---------------------------------------------------------
def _cert_with_subject(attrs: list[tuple[object, str]]) -> object:
    from asn1crypto import x509
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = cx509.Name([cx509.NameAttribute(oid, value) for oid, value in attrs])  # type: ignore[arg-type]
    now = datetime.now(UTC)
    cert = (
        cx509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now.replace(year=now.year + 1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


@pytest.mark.parametrize(
    ("subject", "personal"),
    [
        (
            [
                ("CN", "Nguyễn Thị Hoa"),
                ("UID", "CCCD:001190000001"),
                ("O", "Tổng công ty Bưu điện Việt Nam"),
            ],
            True,
        ),
        ([("CN", "Trần Văn Bộ"), ("GN", "Bộ"), ("SN", "Trần")], True),  # "Bộ" as a given name
        ([("CN", "UBND PHƯỜNG HÀNG TRỐNG")], False),  # organisation keyword, no personal data
        ([("CN", "CÔNG TY CP ABC"), ("O", "CÔNG TY CP ABC"), ("UID", "MST:0101234567")], False),
        ([("CN", "Phạm Văn An"), ("UID", "MST:0101234567")], False),  # only an organisation id
        ([("CN", "ABC TECHNOLOGY JSC"), ("C", "VN")], False),
    ],
    ids=[
        "person-with-employer",
        "person-name-with-keyword",
        "ubnd",
        "company-cn-eq-o",
        "mst-only",
        "jsc",
    ],
)
def test_personal_certificate_rule(subject: list[tuple[str, str]], personal: bool) -> None:
    """R17: the documented rule (digitize.sign.personal_certificate_problem) on typical subjects."""
    from cryptography.x509.oid import NameOID

    from digitize.sign import personal_certificate_problem

    oids = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "UID": NameOID.USER_ID,
            "GN": NameOID.GIVEN_NAME, "SN": NameOID.SURNAME, "C": NameOID.COUNTRY_NAME}  # fmt: skip
    cert = _cert_with_subject([(oids[k], v) for k, v in subject])
    problem = personal_certificate_problem(cert)
    assert (problem is None) == personal, problem


@pytest.mark.slow
def test_revocation_evidence_of_the_precheck_is_kept(matrix: dict) -> None:
    """R25: the OCSP response that showed the certificate unrevoked before signing is kept
    (it goes into the manifest), also at B-B where the PDF itself carries none."""
    import base64
    import hashlib

    from asn1crypto import ocsp

    _path, record = matrix[("pkcs12", PadesLevel.B_B)]
    responses = [e for e in record.revocation_evidence if e.kind == "ocsp"]
    assert responses, record.revocation_evidence
    for evidence in responses:
        der = base64.b64decode(evidence.der_base64)
        assert hashlib.sha256(der).hexdigest() == evidence.sha256
        response = ocsp.OCSPResponse.load(der)
        assert response["response_status"].native == "successful"
        single = response.basic_ocsp_response["tbs_response_data"]["responses"][0]
        assert single["cert_status"].name == "good"
