"""Signing where the digitiser is (R17–R27, R1): a hub without keys prepares, the station's
token signs.

The "hub" is a real ``digitize worker --no-signer`` (no key, no secret in its environment)
on a real Redis; ``digitize submit --sign-at station --signer-cert`` gives it the digitiser's
certificate. Its output is a prepared bundle: marked, its PDFs carrying the reserved field and
note but no signature, and ``digitize verify`` refuses it. The "station" runs
``digitize finish`` with the SoftHSM2 token behind OpenSC's PKCS#11 spy: one ``C_Login`` signs
every document and the manifest; the bundle is committed and verifies (pyHanko through
``digitize verify``, the test PKI root as trust root); extraction ran after each signature
(R1). A prepared bundle changed on the way is refused before anything is signed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pikepdf
import pytest
import yaml

from digitize.errors import ExitCode, HashMismatchError
from digitize.hub.prepared import PREPARED_MARKER, PreparedBundle, finish_prepared_bundle
from digitize.manifest import Manifest
from digitize.profiles import load_profile
from digitize.sign import open_signer
from tests import helpers_pki
from tests.helpers_pki import PkiServices, SoftHsmToken
from tests.helpers_redis import (
    REPO,
    RedisServer,
    WorkerProcess,
    hub_profile,
    require_redis,
    small_dossier,
)
from tests.helpers_spy import pkcs11_spy
from tests.test_hub import cli, wait_ready

softhsm_token = helpers_pki.softhsm_token
vn_pki = helpers_pki.vn_pki
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, vn_pki: PkiServices) -> dict[str, Path]:
    """One dossier (two documents) prepared by a key-less worker."""
    require_redis()
    work = tmp_path_factory.mktemp("hub-station")
    server = RedisServer.start_new(work / "redis")
    profile = hub_profile(work / "hub.yaml")
    dossier = small_dossier(work / "in" / "HS-TRAM-01", 2, 42)
    hub_data = work / "hub-data"  # the hub's data folder: no demo identity may appear in it
    worker = WorkerProcess(server.url, work / "out", work / "hub.log",
                           ("--profile", str(profile), "--no-signer", "--pages", "1"),
                           env={"DIGITIZE_DATA_DIR": str(hub_data)}).start()  # fmt: skip
    try:
        wait_ready(worker)
        done = cli("submit", str(dossier), "--sign-at", "station", "--signer-cert",
                   str(vn_pki.cert_path("hoa")), "--wait", "--timeout", "400", "--profile",
                   str(profile), url=server.url, timeout=450)  # fmt: skip
    finally:
        worker.terminate()
        server.stop()
    assert done.returncode == 0, done.stdout + done.stderr + worker.output()[-4000:]
    assert not hub_data.exists() or not any(hub_data.iterdir())
    return {"work": work, "bundle": work / "out" / "prepared" / "HS-TRAM-01"}


def test_the_hub_makes_a_marked_prepared_bundle_without_any_signature(
    prepared: dict[str, Path], vn_pki: PkiServices
) -> None:
    """The marker names the digitiser the notes were drawn for; each PDF holds the reserved
    field with its note (R18–R20) and no signature value; the manifest is not signed."""
    bundle = prepared["bundle"]
    marker = PreparedBundle.model_validate_json((bundle / PREPARED_MARKER).read_bytes())
    assert marker.signed is False and marker.bundle == "HS-TRAM-01"
    assert marker.digitiser.full_name == helpers_pki.NAMES["hoa"]
    assert [d.file for d in marker.documents] == ["HS-TRAM-01.001.pdf", "HS-TRAM-01.002.pdf"]
    for item in marker.documents:
        with pikepdf.open(bundle / item.file) as pdf:
            fields = [f for f in pdf.Root.AcroForm.Fields if f.get("/FT") == "/Sig"]
            assert len(fields) == 1 and "/V" not in fields[0] and "/N" in fields[0].AP
        assert (bundle / f"{item.file}.ocr.json").is_file()
    assert b"NOT SIGNED" in (bundle / "manifest.json.p7s").read_bytes()
    manifest = Manifest.model_validate_json((bundle / "manifest.json").read_bytes())
    assert all(doc.extraction == () for doc in manifest.documents)  # R1: not before signing


def test_a_prepared_bundle_never_passes_verify(prepared: dict[str, Path],
                                               vn_pki: PkiServices) -> None:  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "digitize", "verify", str(prepared["bundle"]),
                             "--trust", str(vn_pki.root_cert), "--lang", "en"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)  # fmt: skip
    assert result.returncode != 0
    assert "INVALID" in result.stdout and "no digital signature" in result.stdout


def test_a_prepared_bundle_changed_on_the_way_is_refused(prepared: dict[str, Path],
                                                         tmp_path: Path) -> None:  # fmt: skip
    """A byte changed in a prepared PDF: refused (61) before any signature, nothing in OUT."""
    copy = tmp_path / "HS-TRAM-01"
    shutil.copytree(prepared["bundle"], copy)
    pdf = copy / "HS-TRAM-01.001.pdf"
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    pdf.write_bytes(bytes(data))
    signer = open_signer(load_profile().sign, tmp_path / "data")
    try:
        with pytest.raises(HashMismatchError) as caught:
            finish_prepared_bundle(copy, tmp_path / "out", load_profile(), signer)
    finally:
        signer.close()
    assert caught.value.exit_code == ExitCode.VERIFY_HASH and "HS-TRAM-01.001.pdf" in str(caught.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_station_finishes_with_one_pin_entry_and_the_bundle_verifies(
    prepared: dict[str, Path], vn_pki: PkiServices, softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    """``digitize finish`` at the station: one C_Login for both documents and the manifest;
    the bundle verifies with the test PKI root (PAdES B-LT, pyHanko); R1 holds in the
    manifest; the prepared bundle is left as it was."""
    station = tmp_path / "station.yaml"
    station.write_text(yaml.safe_dump({"sign": {
        "backend": "pkcs11", "level": "B-LT", "tsa_url": vn_pki.tsa_url,
        "trust_roots": [str(vn_pki.root_cert)],
        "pkcs11": {"module": pkcs11_spy(), "token_label": softhsm_token.label,
                   "key_label": softhsm_token.key_label}}}))  # fmt: skip
    spy_log = tmp_path / "spy.log"
    before = {p.name: p.read_bytes() for p in prepared["bundle"].iterdir()}
    env = {**os.environ, **softhsm_token.env, "PKCS11SPY": softhsm_token.module,
           "PKCS11SPY_OUTPUT": str(spy_log), "DIGITIZE_PKCS11_PIN": softhsm_token.pin}  # fmt: skip
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "digitize", "finish", str(prepared["bundle"]),
                           "--out", str(out), "--profile", str(station)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(re.findall(r"\bC_Login\b", spy_log.read_text(errors="replace"))) == 1
    assert softhsm_token.pin not in done.stdout + done.stderr
    bundle = out / "HS-TRAM-01"
    check = subprocess.run([sys.executable, "-m", "digitize", "verify", str(bundle), "--trust",
                            str(vn_pki.root_cert), "--json"],
                           capture_output=True, text=True, cwd=REPO, timeout=300)  # fmt: skip
    report = json.loads(check.stdout)
    assert check.returncode == 0 and report["ok"], report
    manifest = Manifest.model_validate_json((bundle / "manifest.json").read_bytes())
    assert manifest.digitiser.full_name == helpers_pki.NAMES["hoa"]
    for doc in manifest.documents:
        assert doc.signature is not None and doc.signature.pades_level.value == "B-LT"
        assert doc.extraction, "the station ran extraction on the signed documents"
        assert all(e.started_at > doc.signature.signed_at for e in doc.extraction)  # R1
    assert sorted(p.name for p in out.iterdir()) == ["HS-TRAM-01"]
    assert {p.name: p.read_bytes() for p in prepared["bundle"].iterdir()} == before


def test_a_prepared_bundle_naming_files_outside_itself_is_refused(
    prepared: dict[str, Path], tmp_path: Path
) -> None:
    """The hub's manifest names the files the station copies and signs: a name that leaves
    the folder (even with checksums made to match) is refused before anything is read."""
    from digitize.bundle import write_checksums
    from digitize.errors import BundleStructureError

    copy = tmp_path / "HS-TRAM-01"
    shutil.copytree(prepared["bundle"], copy)
    data = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    data["documents"][0]["masters"] = [{"file": "../../etc/passwd", "source_file": "x",
                                        "sha256": "0" * 64, "size_bytes": 1, "reason": "x"}]  # fmt: skip
    (copy / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    write_checksums(copy)
    signer = open_signer(load_profile().sign, tmp_path / "data")
    try:
        with pytest.raises(BundleStructureError, match="not in the prepared bundle"):
            finish_prepared_bundle(copy, tmp_path / "out", load_profile(), signer)
    finally:
        signer.close()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
