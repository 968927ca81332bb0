"""Two-phase signing (R17–R27): prepare on a machine without the key, finish at the station.

The "hub" prepares two components with only the digitiser's certificate (no key, no secret,
no network: the PKI services are stopped meanwhile); the "station" — a separate process whose
PKCS#11 calls go through OpenSC's spy to the SoftHSM2 token — finishes both and signs the
manifest after one login. Checked with pyHanko (our verifier), poppler's ``pdfsig`` (NSS) and
veraPDF: the finished files are PAdES B-LT, trusted, PDF/A-2b, their note the one drawn at the
hub; the prepared files carry the note and no signature, and never validate as signed; a
prepared file that changed, belongs to another digitiser or is already signed is refused (58).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from asn1crypto import cms

from digitize.errors import (
    CertificateExpiredError,
    CertificateNotPersonalError,
    ExitCode,
    PreparedDocumentError,
)
from digitize.models import PadesLevel, Severity
from digitize.sign import PreparedPdf, SigningSettings, open_signer, prepare_pdf
from digitize.sigverify import verify_detached_signature, verify_pdf_signatures
from tests import helpers_pki
from tests.helpers_pki import (
    NAMES,
    PFX_PASSWORD,
    PkiServices,
    SoftHsmToken,
    make_nss_db,
    make_pdfa_sample,
    require_tool,
    run_pdfsig,
)
from tests.helpers_spy import run_through_spy

softhsm_token = helpers_pki.softhsm_token
vn_pki = helpers_pki.vn_pki

SCAN_TIME = datetime(2026, 11, 30, 4, 34, 5, tzinfo=UTC)  # 11:34:05 in Hà Nội
TEXT_IN_CORNER = (18.0, 800.0, 400.0, 815.0)  # a printed organ name under the note, in points
MANIFEST = b'{"dossier": "H62.22-251130-0001"}'

STATION = """
import json, sys
from pathlib import Path
from digitize.sign import PreparedPdf, SigningSettings, open_signer
module, label, key, root, tsa, work = sys.argv[1:7]
settings = SigningSettings(backend="pkcs11", trust_roots=(root,), level="B-LT", tsa_url=tsa,
                           pkcs11={"module": module, "token_label": label, "key_label": key})
work = Path(work)
signer = open_signer(settings)
records = {}
try:
    for record in sorted(work.glob("hub/*.prepared.json")):
        preparation = PreparedPdf.model_validate_json(record.read_text())
        name = record.name.removesuffix(".prepared.json")
        signed = signer.finish_prepared(work / "hub" / f"{name}.prepared.pdf",
                                        work / "station" / f"{name}.pdf", preparation)
        records[name] = json.loads(signed.model_dump_json())
    (work / "station" / "manifest.json.p7s").write_bytes(signer.sign_detached(MANIFEST_BYTES))
finally:
    signer.close()
print(json.dumps(records))
""".replace("MANIFEST_BYTES", repr(MANIFEST))


def hub_settings() -> SigningSettings:
    """The hub's view of the profile: no key source at all (the demo default is never opened)."""
    return SigningSettings()


@pytest.fixture(scope="module")
def dossier(
    tmp_path_factory: pytest.TempPathFactory, vn_pki: PkiServices, softhsm_token: SoftHsmToken
) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("twophase")
    (work / "hub").mkdir()
    (work / "station").mkdir()
    plain = make_pdfa_sample(work / "001.pdf")
    crowded = make_pdfa_sample(work / "002.pdf", text_near_top=True)
    preparations = {}
    assert not any(k.startswith("DIGITIZE_PKCS") for k in os.environ)  # no secret at the hub
    with vn_pki.services_stopped():  # preparing needs no network
        for name, src, boxes in (("001", plain, ()), ("002", crowded, (TEXT_IN_CORNER,))):
            prepared = prepare_pdf(src, work / "hub" / f"{name}.prepared.pdf",
                                   vn_pki.cert_path("hoa"), SCAN_TIME, hub_settings(), boxes)  # fmt: skip
            (work / "hub" / f"{name}.prepared.json").write_text(prepared.model_dump_json())
            preparations[name] = prepared
    records, logins = run_through_spy(
        softhsm_token, vn_pki, work / "spy.log", softhsm_token.pin, STATION,
        vn_pki.tsa_url, str(work),
    )  # fmt: skip
    return {"work": work, "preparations": preparations, "records": records, "logins": logins}


@pytest.fixture(scope="module")
def nss_db(tmp_path_factory: pytest.TempPathFactory, vn_pki: PkiServices) -> Path:
    return make_nss_db(tmp_path_factory.mktemp("nss"), vn_pki.root_cert)


def _sig_field(pdf: pikepdf.Pdf) -> pikepdf.Dictionary:
    return next(f for f in pdf.Root.AcroForm.Fields if f.get("/FT") == "/Sig"
                and str(f.get("/T")) == "ChuKyNguoiSoHoa")  # fmt: skip


# --- the hub's output ---------------------------------------------------------------------------
def test_prepared_file_holds_the_note_and_no_signature(
    dossier: dict[str, Any], vn_pki: PkiServices, nss_db: Path
) -> None:
    """R18–R20 at the hub: the field on page 1 top-left with the note drawn (name, Vietnam time)
    and no signature value; neither our verifier nor pdfsig sees a signature."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    for name, preparation in dossier["preparations"].items():
        path = dossier["work"] / "hub" / f"{name}.prepared.pdf"
        assert preparation.prepared_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert preparation.signer_name == NAMES["hoa"]
        assert preparation.note_lines[-1] == "Thời gian sao chụp: 11:34 ngày 30/11/2026"
        with pikepdf.open(path) as pdf:
            field = _sig_field(pdf)
            assert "/V" not in field  # reserved, not signed
            assert "/N" in field.AP
            assert field.P.objgen == pdf.pages[0].obj.objgen
            assert [round(float(v), 2) for v in field.Rect] == list(preparation.appearance_box_pt)
        assert PdfFileReader(io.BytesIO(path.read_bytes()), strict=False).embedded_signatures == []
        checks = verify_pdf_signatures(path, (vn_pki.root_cert,), lang="en")
        assert checks and not any(c.ok for c in checks), [c.message for c in checks]
        assert run_pdfsig(path, nss_db).valid == 0
    crowded = dossier["preparations"]["002"]
    assert crowded.appearance_shrunk and crowded.font_size == 8.0
    assert [f.code for f in crowded.flags] == ["stamp_overlaps_text"]


def test_prepare_refuses_an_organisation_or_expired_certificate(
    vn_pki: PkiServices, tmp_path: Path
) -> None:
    """R17/R25 already at the hub: the note must name a person whose certificate is valid."""
    src = make_pdfa_sample(tmp_path / "in.pdf")
    with pytest.raises(CertificateNotPersonalError):
        prepare_pdf(src, tmp_path / "org.pdf", vn_pki.cert_path("org"), SCAN_TIME)
    with pytest.raises(CertificateExpiredError):
        prepare_pdf(src, tmp_path / "cu.pdf", vn_pki.cert_path("cu"), SCAN_TIME)
    assert not (tmp_path / "org.pdf").exists() and not (tmp_path / "cu.pdf").exists()


# --- the station's output -----------------------------------------------------------------------
def test_one_login_signs_every_component_and_the_manifest(
    dossier: dict[str, Any], vn_pki: PkiServices
) -> None:
    """One PIN entry per dossier: the token saw exactly one C_Login for two components and the
    manifest; the manifest signature validates (detached CAdES)."""
    assert dossier["logins"] == 1
    assert sorted(dossier["records"]) == ["001", "002"]
    p7s = (dossier["work"] / "station" / "manifest.json.p7s").read_bytes()
    check = verify_detached_signature(MANIFEST, p7s, (vn_pki.root_cert,), lang="en")
    assert check.ok, check.message


def test_finished_files_validate_with_pyhanko_and_pdfsig(
    dossier: dict[str, Any], vn_pki: PkiServices, nss_db: Path
) -> None:
    """R23/R26: each finished component is a trusted PAdES B-LT signature of Nguyễn Thị Hoa
    (pyHanko through our verifier, and NSS through pdfsig); the record keeps the hub's note."""
    for name, record in dossier["records"].items():
        path = dossier["work"] / "station" / f"{name}.pdf"
        checks = verify_pdf_signatures(path, (vn_pki.root_cert,), offline=False, lang="en")
        assert len(checks) == 1 and checks[0].ok, [c.message for c in checks]
        assert checks[0].details["pades_level"] == "B-LT"
        assert checks[0].details["revocation"] == "good"
        result = run_pdfsig(path, nss_db)
        assert result.valid == 1 and result.trusted == 1, result.output
        assert "ETSI.CAdES.detached" in result.output and NAMES["hoa"] in result.output
        preparation = dossier["preparations"][name]
        assert record["pades_level"] == PadesLevel.B_LT.value
        assert record["signer"]["full_name"] == NAMES["hoa"]
        assert tuple(record["appearance_box_pt"]) == preparation.appearance_box_pt
        assert datetime.fromisoformat(record["scan_time_shown"]) == SCAN_TIME
        assert record["revocation_evidence"], "R25: the pre-check's OCSP response is kept"
    flags = dossier["records"]["002"]["flags"]
    assert any(f["code"] == "stamp_overlaps_text" and f["severity"] == Severity.REVIEW.value
               for f in flags)  # fmt: skip


def test_finished_file_is_the_prepared_file_plus_the_signature(dossier: dict[str, Any]) -> None:
    """The station only appends: the prepared bytes are the start of the signed file, the note
    is the hub's (same appearance stream, not redrawn), and /M is the station's signing time,
    after the preparation (PAdES puts the claimed signing time there)."""
    for name, preparation in dossier["preparations"].items():
        prepared = (dossier["work"] / "hub" / f"{name}.prepared.pdf").read_bytes()
        finished = (dossier["work"] / "station" / f"{name}.pdf").read_bytes()
        assert finished.startswith(prepared) and len(finished) > len(prepared)
        with pikepdf.open(io.BytesIO(prepared)) as before, pikepdf.open(io.BytesIO(finished)) as after:
            drawn = _sig_field(before).AP.N.read_bytes()
            kept = _sig_field(after).AP.N.read_bytes()
            sig = _sig_field(after).V
            assert str(sig.SubFilter) == "/ETSI.CAdES.detached"
            signed_at = datetime.strptime(str(sig.M)[2:16], "%Y%m%d%H%M%S")
        assert kept == drawn
        assert signed_at >= preparation.prepared_at.replace(tzinfo=None)
        signer_info = cms.ContentInfo.load(bytes(sig.Contents))["content"]["signer_infos"][0]
        attrs = {a["type"].native for a in signer_info["signed_attrs"]}
        assert "signing_certificate_v2" in attrs and "signing_time" not in attrs


def test_finished_note_reads_back(dossier: dict[str, Any], tmp_path: Path) -> None:
    """R18/R19: tesseract reads the name and the Vietnamese-form time from the signed page."""
    require_tool("pdftoppm")
    require_tool("tesseract")
    from PIL import Image

    path = dossier["work"] / "station" / "001.pdf"
    x0, y0, x1, y1 = dossier["preparations"]["001"].appearance_box_pt
    subprocess.run(["pdftoppm", "-r", "300", "-f", "1", "-l", "1", "-png", str(path),
                    str(tmp_path / "page")], check=True, capture_output=True)  # fmt: skip
    page = Image.open(next(tmp_path.glob("page*.png")))
    s, height = 300 / 72, page.height * 72 / 300
    page.crop((int(x0 * s) - 10, int((height - y1) * s) - 10, int(x1 * s) + 10,
               int((height - y0) * s) + 10)).save(tmp_path / "note.png")  # fmt: skip
    out = subprocess.run(["tesseract", str(tmp_path / "note.png"), "-", "-l", "vie", "--psm", "6"],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_THREAD_LIMIT": "1"}).stdout  # fmt: skip
    text = unicodedata.normalize("NFC", " ".join(out.split()))
    assert NAMES["hoa"] in text and "11:34 ngày 30/11/2026" in text, text


@pytest.mark.slow
def test_prepared_and_finished_files_are_pdfa_2b(dossier: dict[str, Any]) -> None:
    """R13: veraPDF passes PDF/A-2b on the prepared files and on the signed ones."""
    from tests.helpers_verapdf import verapdf_validate_many

    work = dossier["work"]
    jobs = [(work / "hub" / f"{n}.prepared.pdf", "2b") for n in ("001", "002")]
    jobs += [(work / "station" / f"{n}.pdf", "2b") for n in ("001", "002")]
    reports = verapdf_validate_many(jobs)
    assert all(r.compliant for r in reports), "\n".join(r.summary() for r in reports)


# --- refusals at the station --------------------------------------------------------------------
def test_station_refuses_what_was_not_prepared_for_it(
    dossier: dict[str, Any], vn_pki: PkiServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """58: a prepared file changed after preparation, one prepared for another digitiser, one
    already signed, or a field moved — nothing is signed and no output is written."""
    work = dossier["work"]
    preparation: PreparedPdf = dossier["preparations"]["001"]
    prepared = work / "hub" / "001.prepared.pdf"
    tampered = tmp_path / "tampered.pdf"
    data = bytearray(prepared.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    en = prepare_pdf(make_pdfa_sample(tmp_path / "in.pdf"), tmp_path / "en.prepared.pdf",
                     vn_pki.cert_path("en"), SCAN_TIME)  # fmt: skip
    finished = work / "station" / "001.pdf"
    already = preparation.model_copy(
        update={"prepared_sha256": hashlib.sha256(finished.read_bytes()).hexdigest()}
    )
    moved = preparation.model_copy(update={"appearance_box_pt": (30.0, 793.72, 230.0, 827.72)})
    cases = [(tampered, preparation, "SHA-256"), (tmp_path / "en.prepared.pdf", en, NAMES["en"]),
             (finished, already, "already signed"), (prepared, moved, "where the note")]  # fmt: skip
    monkeypatch.setenv("DIGITIZE_PKCS12_PASSWORD", PFX_PASSWORD)
    signer = open_signer(SigningSettings(backend="pkcs12", level="B-B",
                                         pkcs12={"path": str(vn_pki.pkcs12_path("hoa"))},
                                         trust_roots=(str(vn_pki.root_cert),)))  # fmt: skip
    try:
        for i, (path, prep, words) in enumerate(cases):
            with pytest.raises(PreparedDocumentError) as exc:
                signer.finish_prepared(path, tmp_path / f"out{i}.pdf", prep)
            assert exc.value.exit_code == ExitCode.PREPARED_MISMATCH == 58
            assert words in str(exc.value)
            assert not (tmp_path / f"out{i}.pdf").exists()
    finally:
        signer.close()


def test_preparation_record_round_trips_as_json(dossier: dict[str, Any]) -> None:
    """The record travels with the file (e.g. in a prepared bundle): JSON in, the same out."""
    preparation = dossier["preparations"]["002"]
    again = PreparedPdf.model_validate(json.loads(preparation.model_dump_json()))
    assert again == preparation
