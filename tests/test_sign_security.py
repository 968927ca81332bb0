"""Hardening of the signing stage (R25, R27; security review S1–S5, S7, W3/W4 and R4).

Covers: secrets removed from the environment once read, so no child process inherits them
(S1); no core dump once a key is loaded (S2); CSC only over https, loopback excepted (S3); a
one-time OTP is used once (S4); real back-ends need configured trust roots (S5); bare profile
names resolve only to bundled profiles (S7); transient TSA/CSC/OCSP failures retried a
bounded number of times, then a "retry later" code (55/57); a wrong PIN causes exactly one
login (SoftHSM2 through OpenSC's PKCS#11 spy); start-up check of the signer (``check_signer``).

Settings are written in the flat form older profiles use (still accepted) so that these tests
also run, and fail, against the code before the fixes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digitize.errors import (
    BadPinError,
    ExitCode,
    SignerConfigError,
    SignerUnavailableError,
    TimestampUnavailableError,
)
from digitize.models import PadesLevel
from digitize.sign import SigningSettings, open_signer
from tests import helpers_pki
from tests.helpers_flaky import FlakyProxy
from tests.helpers_pki import (
    NAMES,
    PFX_PASSWORD,
    CscServer,
    PkiServices,
    SoftHsmToken,
    free_port,
    make_pdfa_sample,
)
from tests.helpers_spy import run_through_spy

csc_server = helpers_pki.csc_server
softhsm_token = helpers_pki.softhsm_token
vn_pki = helpers_pki.vn_pki

SCAN_TIME = datetime(2026, 11, 30, 4, 34, 5, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


def _pkcs12(pki: PkiServices, who: str = "hoa", **kw: object) -> SigningSettings:
    return SigningSettings(backend="pkcs12", pkcs12_path=str(pki.pkcs12_path(who)),
                           trust_roots=(str(pki.root_cert),), **kw)  # fmt: skip


def _csc(url: str, csc: CscServer, pki: PkiServices, **kw: object) -> SigningSettings:
    return SigningSettings(backend="csc", csc_url=url, csc_credential_id=csc.credential_id("hoa"),
                           trust_roots=(str(pki.root_cert),), **kw)  # fmt: skip


@pytest.fixture(scope="module")
def sample_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pdfa_sample(tmp_path_factory.mktemp("in") / "component.pdf")


@pytest.fixture
def pkcs12_password(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DIGITIZE_PKCS12_PASSWORD", PFX_PASSWORD)
    yield


def _child_env(name: str) -> str | None:
    return os.environ.get(name)


# --- S1, S2: secrets and the key-holding process -----------------------------------------------
def test_env_secret_is_removed_and_children_never_see_it(
    vn_pki: PkiServices, pkcs12_password: None, sample_pdf: Path, tmp_path: Path
) -> None:
    """S1/R27: once the signer is open, the password is gone from os.environ; a subprocess and a
    spawned worker started afterwards do not inherit it; the open signer still signs."""
    signer = open_signer(_pkcs12(vn_pki, level=PadesLevel.B_B))
    try:
        assert "DIGITIZE_PKCS12_PASSWORD" not in os.environ
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.environ.get('DIGITIZE_PKCS12_PASSWORD', '-'))"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert child.stdout.strip() == "-"
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            assert pool.apply(_child_env, ("DIGITIZE_PKCS12_PASSWORD",)) is None
        record = signer.sign_pdf(sample_pdf, tmp_path / "out.pdf", scan_time=SCAN_TIME)
        assert record.signer.full_name == NAMES["hoa"]
    finally:
        signer.close()


def test_no_core_dump_once_a_key_is_loaded(tmp_path: Path) -> None:
    """S2: after open_signer the process has RLIMIT_CORE (0, 0) and is not dumpable (read back
    with getrlimit and prctl(PR_GET_DUMPABLE) in a fresh process)."""
    code = (
        "import ctypes, json, resource, sys; from pathlib import Path;"
        "from digitize.sign import open_signer, SigningSettings;"
        "libc = ctypes.CDLL(None);"
        "before = [resource.getrlimit(resource.RLIMIT_CORE), libc.prctl(3, 0, 0, 0, 0)];"
        "s = open_signer(SigningSettings(), data_dir=Path(sys.argv[1]));"
        "after = [resource.getrlimit(resource.RLIMIT_CORE), libc.prctl(3, 0, 0, 0, 0)];"
        "s.close(); print(json.dumps({'before': before, 'after': after}))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["before"][1] == 1  # dumpable to start with: the change is ours
    assert result["after"] == [[0, 0], 0]


# --- S3, S4: CSC ------------------------------------------------------------------------------
def test_csc_url_must_be_https(vn_pki: PkiServices, csc_server: CscServer) -> None:
    """S3: a non-loopback http:// CSC URL is refused before any request (token, PIN and OTP
    would travel in clear); loopback http (the test service) and https are accepted."""
    with pytest.raises(SignerConfigError) as exc:
        open_signer(_csc("http://csc.example.invalid/csc/v1", csc_server, vn_pki))
    assert "https" in str(exc.value) and exc.value.exit_code == ExitCode.SIGNER_CONFIG
    from digitize.sign.backends.csc import check_csc_url

    for ok in ("https://csc.example.vn/csc/v1/", "http://127.0.0.1:8080", "http://[::1]:9/x",
               "http://localhost:9"):  # fmt: skip
        assert check_csc_url(ok) == ok.rstrip("/")


def test_csc_otp_from_the_environment_is_used_once(
    vn_pki: PkiServices, csc_server: CscServer, sample_pdf: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """S4: a one-time password from the environment leaves the environment at open, goes with
    the first authorisation only and is never replayed (read from the requests themselves)."""
    monkeypatch.setenv("DIGITIZE_CSC_OTP", "246810")
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # no terminal: no prompt
    proxy = FlakyProxy(csc_server.url).start()
    try:
        signer = open_signer(_csc(proxy.url, csc_server, vn_pki, level=PadesLevel.B_B))
        try:
            assert "DIGITIZE_CSC_OTP" not in os.environ
            signer.sign_pdf(sample_pdf, tmp_path / "a.pdf", scan_time=SCAN_TIME)
            signer.sign_pdf(sample_pdf, tmp_path / "b.pdf", scan_time=SCAN_TIME)
        finally:
            signer.close()
    finally:
        proxy.stop()
    authorisations = [json.loads(body) for path, body in proxy.bodies
                      if path.endswith("credentials/authorize")]  # fmt: skip
    assert [a.get("OTP") for a in authorisations] == ["246810", None]


# --- S5, S7: what the signer trusts and loads --------------------------------------------------
def test_real_backend_needs_trust_roots(vn_pki: PkiServices, pkcs12_password: None) -> None:
    """S5/R25: without trust_roots a PKCS#12 file would vouch for itself (its own root):
    refused with a config error before the password is even read; the explicit opt-out opens."""
    settings = SigningSettings(backend="pkcs12", pkcs12_path=str(vn_pki.pkcs12_path("hoa")),
                               level=PadesLevel.B_B)  # fmt: skip
    with pytest.raises(SignerConfigError) as exc:
        open_signer(settings)
    assert "trust_roots" in str(exc.value) and exc.value.exit_code == ExitCode.SIGNER_CONFIG
    assert os.environ.get("DIGITIZE_PKCS12_PASSWORD") == PFX_PASSWORD  # no login attempted
    opted = settings.model_copy(update={"trust_key_source_root": True})
    open_signer(opted).close()


def test_bare_profile_name_never_reads_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S7: `--profile so-tu-phap` is the bundled profile even when the current folder holds a
    file of that name (a profile chooses the PKCS#11 module to load); a path reads the file."""
    from digitize.profiles import load_profile

    monkeypatch.chdir(tmp_path)
    (tmp_path / "so-tu-phap").write_text("description: planted in the current folder\n")
    assert "planted" not in load_profile("so-tu-phap").description
    assert load_profile("./so-tu-phap").description == "planted in the current folder"


# --- retries: transient failures, bounded, then retry-later codes ---------------------------------
def test_transient_tsa_failures_are_retried(
    vn_pki: PkiServices, pkcs12_password: None, sample_pdf: Path, tmp_path: Path
) -> None:
    """R4/W4: two 503 answers from the TSA, then success: the signature gets its time-stamp."""
    proxy = FlakyProxy(vn_pki.base_url, fail_path="/tsa", fail_first=2).start()
    try:
        settings = _pkcs12(vn_pki, level=PadesLevel.B_T, tsa_url=proxy.url + "/tsa/tsa",
                           network_retry_backoff_s=0.01)  # fmt: skip
        signer = open_signer(settings)
        try:
            record = signer.sign_pdf(sample_pdf, tmp_path / "out.pdf", scan_time=SCAN_TIME)
        finally:
            signer.close()
    finally:
        proxy.stop()
    assert proxy.failed == 2 and record.tsa_time is not None


def test_tsa_down_gives_up_after_the_retries(
    vn_pki: PkiServices, pkcs12_password: None, sample_pdf: Path, tmp_path: Path
) -> None:
    """R4/W4: a TSA that keeps failing is asked 1 + network_retries times, then exit 55."""
    proxy = FlakyProxy(vn_pki.base_url, fail_path="/tsa", fail_first=-1).start()
    try:
        settings = _pkcs12(vn_pki, level=PadesLevel.B_T, tsa_url=proxy.url + "/tsa/tsa",
                           network_retries=2, network_retry_backoff_s=0.01)  # fmt: skip
        signer = open_signer(settings)
        try:
            with pytest.raises(TimestampUnavailableError) as exc:
                signer.sign_pdf(sample_pdf, tmp_path / "out.pdf", scan_time=SCAN_TIME)
        finally:
            signer.close()
    finally:
        proxy.stop()
    assert exc.value.exit_code == ExitCode.TSA_UNAVAILABLE
    assert proxy.count("/tsa") == 3
    assert not (tmp_path / "out.pdf").exists()


def test_transient_csc_failures_are_retried(
    vn_pki: PkiServices, csc_server: CscServer, sample_pdf: Path, tmp_path: Path
) -> None:
    """R4/W4: signHash answers 503 twice; each attempt is authorised afresh (SCAL 2: a SAD is
    bound to its hash and used once) and the third succeeds."""
    proxy = FlakyProxy(csc_server.url, fail_path="signatures/signHash", fail_first=2).start()
    try:
        settings = _csc(proxy.url, csc_server, vn_pki, level=PadesLevel.B_B,
                        network_retry_backoff_s=0.01)  # fmt: skip
        signer = open_signer(settings)
        try:
            record = signer.sign_pdf(sample_pdf, tmp_path / "out.pdf", scan_time=SCAN_TIME)
        finally:
            signer.close()
    finally:
        proxy.stop()
    assert record.signer.full_name == NAMES["hoa"]
    assert proxy.count("signatures/signHash") == 3
    assert proxy.count("credentials/authorize") == 3


def test_csc_service_down_at_open_is_retry_later(
    vn_pki: PkiServices, csc_server: CscServer
) -> None:
    """W4: the CSC service answering 503 to the credential request is a station fault (57),
    asked 1 + network_retries times."""
    proxy = FlakyProxy(csc_server.url, fail_path="credentials/info", fail_first=-1).start()
    try:
        with pytest.raises(SignerUnavailableError) as exc:
            open_signer(_csc(proxy.url, csc_server, vn_pki, network_retries=1,
                             network_retry_backoff_s=0.01))  # fmt: skip
    finally:
        proxy.stop()
    assert exc.value.exit_code == ExitCode.SIGNER_UNAVAILABLE
    assert proxy.count("credentials/info") == 2


# --- the token: one login, never a retried wrong PIN, absent token ---------------------------------
SPY_SCRIPT = """
import json, sys
from digitize.errors import DigitizeError
from digitize.sign import SigningSettings, open_signer
module, label, key, root = sys.argv[1:5]
settings = SigningSettings(backend="pkcs11", pkcs11_module=module, pkcs11_token_label=label,
                           pkcs11_key_label=key, trust_roots=(root,), level="B-B",
                           network_retries=5, network_retry_backoff_s=0.01)
try:
    open_signer(settings).close()
    print(json.dumps({"opened": True}))
except DigitizeError as e:
    print(json.dumps({"error": type(e).__name__, "exit_code": int(e.exit_code)}))
"""


def test_wrong_pin_is_tried_exactly_once(
    vn_pki: PkiServices, softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    """R27/W3: a wrong PIN costs one login attempt (a token locks after a few), even with
    network_retries set high: BadPinError (54) at once, never retried."""
    answer, logins = run_through_spy(softhsm_token, vn_pki, tmp_path / "spy.log", "999999",
                                     SPY_SCRIPT)  # fmt: skip
    assert answer == {"error": "BadPinError", "exit_code": int(ExitCode.BAD_PIN)}
    assert logins == 1


def test_absent_token_is_retry_later(
    vn_pki: PkiServices, softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    """W4: no token with the configured label (unplugged) is a station fault (57), not a
    configuration error, and no PIN is sent anywhere."""
    monkeypatch.setenv("DIGITIZE_PKCS11_PIN", softhsm_token.pin)
    settings = SigningSettings(backend="pkcs11", pkcs11_module=softhsm_token.module,
                               pkcs11_token_label="NOT-PLUGGED-IN", pkcs11_key_label="hoa",
                               trust_roots=(str(vn_pki.root_cert),))  # fmt: skip
    with pytest.raises(SignerUnavailableError) as exc:
        open_signer(settings)
    assert exc.value.exit_code == ExitCode.SIGNER_UNAVAILABLE
    assert "NOT-PLUGGED-IN" in str(exc.value)


# --- start-up check ------------------------------------------------------------------------------
def test_check_signer_at_start_up(vn_pki: PkiServices, monkeypatch: pytest.MonkeyPatch) -> None:
    """W3: a station checks its signer before claiming work: login, certificate, revocation and
    the time-stamp service; a TSA outage shows there (55), not on the first dossier."""
    from digitize.sign import check_signer

    monkeypatch.setenv("DIGITIZE_PKCS12_PASSWORD", PFX_PASSWORD)
    identity = check_signer(_pkcs12(vn_pki, level=PadesLevel.B_T, tsa_url=vn_pki.tsa_url))
    assert identity.full_name == NAMES["hoa"] and not identity.is_demo
    dead = f"http://127.0.0.1:{free_port()}/tsa"
    settings = _pkcs12(vn_pki, level=PadesLevel.B_T, tsa_url=dead, network_retry_backoff_s=0.01)
    monkeypatch.setenv("DIGITIZE_PKCS12_PASSWORD", PFX_PASSWORD)
    with pytest.raises(TimestampUnavailableError):
        check_signer(settings)


def test_bad_pin_error_is_not_transient() -> None:
    """The retry predicate never treats a refused PIN as a network blip, whatever wraps it."""
    import aiohttp

    from digitize.sign.retry import TransientHttpError, is_transient

    try:
        try:
            raise aiohttp.ClientConnectionError("reset")
        except aiohttp.ClientConnectionError as inner:
            raise BadPinError("the token refused the PIN") from inner
    except BadPinError as outer:
        assert not is_transient(outer)
    assert is_transient(TransientHttpError(503, "x"))
    assert not is_transient(ValueError("bad answer"))
