"""Verification binds who signed what (issue 15 points 1, 2 and 4; R1, R17, R23–R26, R32).

Bundles here are made by hand (``tests/helpers_bundle.py``) with real keys of the test PKI,
so each test can build exactly the bundle an attacker holding *some* trusted certificate, or
the public DEMO key, could build. Before this change every bundle below verified: nothing
compared the manifest's digitiser with the manifest signer or the PDF signers, the DEMO root
was trusted by default and ``is_demo`` came from the manifest itself, and a signature without a
timestamp was validated at the time its signer claimed.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digitize.errors import ExitCode
from digitize.verify import demo_allowed_for, verify_bundle, verify_signed_pdf
from tests import helpers_pki
from tests.helpers_bundle import (
    demo_identity,
    demo_root,
    digitiser_info,
    forge_bundle,
    pki_identity,
    resign_manifest,
    sign_pdf,
)
from tests.helpers_pki import PkiServices, make_pdfa_sample

vn_pki = helpers_pki.vn_pki

AFTER_HOA_EXPIRES = datetime(2031, 1, 1, tzinfo=UTC)  # hoa's certificate ends 2030-06-01


def _failed(report) -> dict[str, tuple[int, str]]:  # type: ignore[no-untyped-def]
    return {c.name: (c.exit_code, c.message) for c in report.failures}


def _roots(pki: PkiServices) -> tuple[Path, ...]:
    return (pki.root_cert,)


@pytest.fixture(scope="module")
def ids(vn_pki: PkiServices) -> dict:  # type: ignore[type-arg]
    return {label: pki_identity(vn_pki, label) for label in ("hoa", "en", "org", "cu", "nam")}


@pytest.fixture(scope="module")
def good_bt(tmp_path_factory: pytest.TempPathFactory, vn_pki: PkiServices, ids: dict) -> Path:  # type: ignore[type-arg]
    """Two components and the manifest, all signed by hoa at B-T (timestamped)."""
    return forge_bundle(tmp_path_factory.mktemp("good"), [ids["hoa"], ids["hoa"]],
                        tsa_url=vn_pki.tsa_url)  # fmt: skip


def test_consistent_bundle_verifies(good_bt: Path, vn_pki: PkiServices) -> None:
    """Positive control: one personal certificate signs everything and is the one named."""
    report = verify_bundle(good_bt, _roots(vn_pki), lang="en")
    assert report.ok, _failed(report)
    assert any(c.name == "identity" and c.ok for c in report.checks)
    assert not report.signed_with_demo_identity


# --- point 1: one certificate, the one the manifest names, a person's (R17) -----------------
def test_manifest_resigned_by_another_trusted_person(good_bt: Path, vn_pki: PkiServices,
                                                     ids: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    """R32/V1: en (trusted, personal) re-signs hoa's manifest unchanged → 63, naming the file.
    Failed before: any certificate chaining to a trusted root was accepted."""
    import shutil

    bundle = tmp_path / good_bt.name
    shutil.copytree(good_bt, bundle)
    resign_manifest(bundle, ids["en"], tsa_url=vn_pki.tsa_url)
    report = verify_bundle(bundle, _roots(vn_pki), lang="en")
    failed = _failed(report)
    assert report.exit_code == ExitCode.VERIFY_TRUST
    code, message = failed["identity:manifest.json.p7s"]
    assert code == ExitCode.VERIFY_TRUST and "manifest.json.p7s" in message
    assert report.checks[[c.name for c in report.checks].index("manifest_signature")].ok


def test_manifest_names_another_digitiser_than_the_pdf_signer(
    vn_pki: PkiServices, ids: dict, tmp_path: Path  # type: ignore[type-arg]
) -> None:
    """V1: PDFs signed by hoa, the manifest names en and is signed by en → 63 for each PDF,
    the message naming the file. Failed before (no comparison)."""
    bundle = forge_bundle(tmp_path, [ids["hoa"], ids["hoa"]], manifest_signer=ids["en"],
                          digitiser=digitiser_info(ids["en"]), tsa_url=vn_pki.tsa_url)  # fmt: skip
    report = verify_bundle(bundle, _roots(vn_pki), lang="en")
    failed = _failed(report)
    assert report.exit_code == ExitCode.VERIFY_TRUST
    for ordinal in (1, 2):
        name = f"HS-TEST-0001.00{ordinal}.pdf"
        code, message = failed[f"identity:{name}"]
        assert code == ExitCode.VERIFY_TRUST and name in message and "Hoa" in message


def test_one_component_signed_by_someone_else(vn_pki: PkiServices, ids: dict,
                                              tmp_path: Path) -> None:  # type: ignore[type-arg]
    """V1: every component's signer must be the digitiser: component 2 signed by en → 63."""
    bundle = forge_bundle(tmp_path, [ids["hoa"], ids["en"]], tsa_url=vn_pki.tsa_url)
    report = verify_bundle(bundle, _roots(vn_pki), lang="en")
    failed = _failed(report)
    assert set(n for n in failed if n.startswith("identity:")) == {"identity:HS-TEST-0001.002.pdf"}
    assert report.exit_code == ExitCode.VERIFY_TRUST


def test_organisation_certificate_is_refused_at_verify(vn_pki: PkiServices, ids: dict,
                                                       tmp_path: Path) -> None:  # type: ignore[type-arg]
    """R17 at verify time: a bundle signed throughout (consistently) with an organisation's
    certificate (MST in UID, CN = O) fails 63. Failed before: R17 was only checked at signing."""
    bundle = forge_bundle(tmp_path, [ids["org"]], tsa_url=vn_pki.tsa_url)
    report = verify_bundle(bundle, _roots(vn_pki), lang="en")
    code, message = _failed(report)["identity:personal"]
    assert code == ExitCode.VERIFY_TRUST and "R17" in message and "organisation" in message
    assert not report.ok


def test_digitiser_name_edited_keeping_the_fingerprint(good_bt: Path, vn_pki: PkiServices,
                                                       ids: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    """The manifest's digitiser name must be the certificate's: renamed and re-signed by the
    very same person → 63 (the manifest says who digitised; it must say it truthfully)."""
    import shutil

    bundle = tmp_path / good_bt.name
    shutil.copytree(good_bt, bundle)

    def rename(data: dict) -> None:  # type: ignore[type-arg]
        data["digitiser"]["full_name"] = "Người Khác"

    resign_manifest(bundle, ids["hoa"], rename, tsa_url=vn_pki.tsa_url)
    report = verify_bundle(bundle, _roots(vn_pki), lang="en")
    code, message = _failed(report)["identity:digitiser"]
    assert code == ExitCode.VERIFY_TRUST and "full_name" in message


# --- point 2: DEMO only when asked, judged from the chain ------------------------------------
@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return forge_bundle(tmp_path_factory.mktemp("demo"), [demo_identity()])


def test_demo_bundle_refused_unless_asked(demo_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """V2: the DEMO root is not trusted by default, not even when a caller lists it among the
    trust roots (or DIGITIZE_TRUST_ROOTS does): 63 saying DEMO and --allow-demo. Failed
    before: the local demo root was a default root and the bundle verified."""
    for roots in (None, (demo_root(),)):
        report = verify_bundle(demo_bundle, roots, lang="en")
        assert report.exit_code == ExitCode.VERIFY_TRUST, _failed(report)
        assert report.signed_with_demo_identity
        code, message = _failed(report)["manifest_signature"]
        assert "DEMO" in message and "--allow-demo" in message
    monkeypatch.setenv("DIGITIZE_TRUST_ROOTS", str(demo_root()))
    assert verify_bundle(demo_bundle, lang="en").exit_code == ExitCode.VERIFY_TRUST
    allowed = verify_bundle(demo_bundle, lang="en", allow_demo=True)
    assert allowed.ok, _failed(allowed)
    assert allowed.signed_with_demo_identity


def test_is_demo_false_with_a_demo_chain_is_reported_as_demo(tmp_path: Path) -> None:
    """V2: demo is decided from the certificate chain: a manifest claiming ``is_demo: false``
    but signed with the DEMO key is reported as demo, and the false claim fails (63) even with
    allow_demo. Failed before: the report's demo flag was the manifest's own field."""
    who = demo_identity()
    bundle = forge_bundle(tmp_path, [who], digitiser=digitiser_info(who, is_demo=False))
    report = verify_bundle(bundle, lang="en", allow_demo=True)
    assert report.signed_with_demo_identity
    code, message = _failed(report)["identity:demo"]
    assert code == ExitCode.VERIFY_TRUST and "is_demo=false" in message


def test_demo_trust_follows_the_profile_backend() -> None:
    """What batch and watch pass as allow_demo: only a demo-signing profile accepts demo."""
    from digitize.profiles import load_profile

    assert demo_allowed_for(load_profile(None))
    assert not demo_allowed_for(load_profile("so-tu-phap"))
    assert not demo_allowed_for(load_profile("xa-mot-cua"))


def test_single_pdf_follows_the_same_demo_policy(tmp_path: Path) -> None:
    """``digitize verify file.pdf``: a DEMO signature is refused without allow_demo."""
    src = make_pdfa_sample(tmp_path / "in.pdf")
    sign_pdf(src, tmp_path / "demo.pdf", demo_identity())
    refused = verify_signed_pdf(tmp_path / "demo.pdf", (demo_root(),), lang="en")
    assert refused.exit_code == ExitCode.VERIFY_TRUST and refused.signed_with_demo_identity
    allowed = verify_signed_pdf(tmp_path / "demo.pdf", lang="en", allow_demo=True)
    assert allowed.ok and allowed.exit_code == ExitCode.VERIFY_REVOCATION_UNKNOWN


# --- point 4: trusted time, revocation as its own state ---------------------------------------
def test_backdated_signature_with_an_expired_certificate(vn_pki: PkiServices, ids: dict,
                                                         tmp_path: Path) -> None:  # type: ignore[type-arg]
    """V4: cu's certificate expired 2025-01-01; a B-B signature claiming 2024-06-01 is
    validated now (the claim is not evidence) → 63. Failed before: validated at the claim."""
    claimed = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
    bundle = forge_bundle(tmp_path, [ids["cu"]], signing_time=claimed)
    report = verify_bundle(bundle, _roots(vn_pki), lang="en")
    failed = _failed(report)
    assert report.exit_code == ExitCode.VERIFY_TRUST
    code, message = failed["signature:HS-TEST-0001.001.pdf"]
    assert code == ExitCode.VERIFY_TRUST and "not valid at" in message
    sig = next(c for c in report.checks if c.name == "signature:HS-TEST-0001.001.pdf")
    assert sig.details["validation_time"] == "current time"


def test_revocation_not_checked_is_its_own_state(vn_pki: PkiServices, ids: dict,
                                                 tmp_path: Path) -> None:  # type: ignore[type-arg]
    """V5: a B-B bundle offline with no OCSP/CRL anywhere is not PASS: ok (nothing failed) but
    exit 66 and revocation_checked False; required → a failure with 66. Failed before: 0."""
    bundle = forge_bundle(tmp_path, [ids["hoa"]])
    report = verify_bundle(bundle, _roots(vn_pki), lang="en")
    assert report.ok and not report.revocation_checked and not report.fully_verified
    assert report.exit_code == ExitCode.VERIFY_REVOCATION_UNKNOWN
    sigs = [c for c in report.checks if c.name.startswith(("signature:", "manifest_signature"))]
    assert sigs and all(c.details["revocation"] == "not verified" for c in sigs)
    strict = verify_bundle(bundle, _roots(vn_pki), lang="en", require_revocation=True)
    assert not strict.ok and strict.exit_code == ExitCode.VERIFY_REVOCATION_UNKNOWN
    assert "revocation" in _failed(strict)


def test_revoked_signer_fails_online(vn_pki: PkiServices, ids: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    """R25: nam's certificate was revoked 2026-01-15; online the bundle fails 63 (revoked),
    offline it is never reported as fully verified."""
    bundle = forge_bundle(tmp_path, [ids["nam"]])
    online = verify_bundle(bundle, _roots(vn_pki), lang="en", offline=False)
    assert online.exit_code == ExitCode.VERIFY_TRUST
    assert any("revoked" in m for _, m in _failed(online).values())
    offline = verify_bundle(bundle, _roots(vn_pki), lang="en")
    assert offline.exit_code != 0


@pytest.fixture(scope="module")
def pipeline_bt(tmp_path_factory: pytest.TempPathFactory, vn_pki: PkiServices) -> Path:
    """A real pipeline run signed by hoa at B-T, the pre-signing OCSP/CRL in the manifest (R25)."""
    from digitize.pipeline import run_dossier
    from digitize.profiles import load_profile
    from tests.conftest import SAMPLE_DOSSIER_2

    os.environ["DIGITIZE_PKCS12_PASSWORD"] = helpers_pki.PFX_PASSWORD
    try:
        profile = load_profile(None, {"pipeline": {"workers": 1}, "sign": {
            "backend": "pkcs12", "pkcs12_path": str(vn_pki.pkcs12_path("hoa")), "level": "B-T",
            "tsa_url": vn_pki.tsa_url, "trust_roots": [str(vn_pki.root_cert)]}})  # fmt: skip
        result = run_dossier(SAMPLE_DOSSIER_2, tmp_path_factory.mktemp("bt"), profile=profile)
    finally:
        os.environ.pop("DIGITIZE_PKCS12_PASSWORD", None)
    return result.bundle_path


def test_manifest_evidence_proves_revocation_offline(pipeline_bt: Path, vn_pki: PkiServices) -> None:
    """R25/V5: with the services down, the manifest's stored OCSP/CRL show hoa unrevoked at the
    timestamps: the B-T bundle is fully verified offline (exit 0). Failed before: the stored
    evidence was never used and the manifest signature never checked revocation."""
    manifest = json.loads((pipeline_bt / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["revocation_evidence"], "the pipeline keeps its pre-signing evidence"
    with vn_pki.services_stopped():
        report = verify_bundle(pipeline_bt, _roots(vn_pki), lang="en")
    assert report.ok and report.revocation_checked and report.exit_code == 0, _failed(report)
    sig = next(c for c in report.checks if c.name == "manifest_signature")
    assert sig.details["revocation"] == "good"
    assert sig.details["validation_time"] == "signature timestamp"


def test_bundle_keeps_verifying_after_the_certificate_expires(
    pipeline_bt: Path, vn_pki: PkiServices, ids: dict, tmp_path: Path  # type: ignore[type-arg]
) -> None:
    """V6: verified in 2031, after hoa's certificate ended, the timestamped bundle still
    verifies (manifest and PDFs validated at their timestamps); a B-B bundle of the same
    signer does not (63). Failed before: the manifest was validated now → 63 for every old
    bundle."""
    with vn_pki.services_stopped():
        later = verify_bundle(pipeline_bt, _roots(vn_pki), lang="en", now=AFTER_HOA_EXPIRES)
    assert later.ok and later.exit_code == 0, _failed(later)
    bb = forge_bundle(tmp_path, [ids["hoa"]])
    expired = verify_bundle(bb, _roots(vn_pki), lang="en", now=AFTER_HOA_EXPIRES)
    assert expired.exit_code == ExitCode.VERIFY_TRUST


# --- V10: the manifest's times are the signatures' own -----------------------------------------
def test_manifest_times_cross_checked(good_bt: Path, vn_pki: PkiServices, ids: dict,
                                      tmp_path: Path) -> None:  # type: ignore[type-arg]
    """V10/R1: signed_at moved an hour, tsa_time moved, extraction before signing: each fails
    (64) though the manifest is re-signed by the right person. Failed before: not compared."""
    import shutil

    cases = {
        "signed_at": lambda d: d["documents"][0]["signature"].update(
            signed_at="2026-01-01T08:00:00+07:00"),
        "tsa_time": lambda d: d["documents"][0]["signature"].update(
            tsa_time="2026-01-01T08:00:00+07:00"),
        "R1": lambda d: d["documents"][1]["extraction"][0].update(
            started_at="2020-01-01T08:00:00+07:00"),
    }  # fmt: skip
    for label, edit in cases.items():
        bundle = tmp_path / label / good_bt.name
        shutil.copytree(good_bt, bundle)
        resign_manifest(bundle, ids["hoa"], edit, tsa_url=vn_pki.tsa_url)
        report = verify_bundle(bundle, _roots(vn_pki), lang="en")
        times = {n: v for n, v in _failed(report).items() if n.startswith("time:")}
        assert times, (label, _failed(report))
        assert all(code == ExitCode.VERIFY_STRUCTURE for code, _ in times.values())
        if label == "R1":
            assert any("R1" in m for _, m in times.values())
