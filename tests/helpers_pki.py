"""Reusable test PKI for signing tests: Certomancer PKI modelled on Vietnam's, served on 127.0.0.1.

Plain functions (usable from any test module or a bench script):

- ``start_test_pki(workdir)`` → ``PkiServices``: generates keys in ``workdir``, loads
  ``tests/pki/config.yml``, exports certificates and PKCS#12 files, starts the Animator (OCSP,
  CRL, TSA, certificate repository) on a free port of 127.0.0.1 in a background thread.
  ``pki.stop()`` / ``pki.start()`` (same port: the URLs are baked into the certificates);
  ``with pki.services_stopped(): ...`` for offline checks.
- ``start_csc_dummy(pki)`` → ``CscServer``: certomancer-csc-dummy (CSC API v1, SCAL 2) on a free
  port of 127.0.0.1; ``credential_id("hoa")``.
- ``setup_softhsm_token(workdir, pki, "hoa")`` → ``SoftHsmToken``: a SoftHSM2 token in
  ``workdir`` holding the person's key (imported, sensitive), certificate and the CA chain, like a
  CA-issued USB token; sets ``SOFTHSM2_CONF`` in ``os.environ`` (the module reads it once).
- ``make_nss_db(dir, root_pem)`` and ``run_pdfsig(pdf, nssdir)`` for poppler's ``pdfsig``.
- ``make_pdfa_sample(path)``: a one-page PDF/A-2b (JPEG scan, sRGB OutputIntent, XMP pdfaid).

Session fixtures ``vn_pki``, ``csc_server``, ``softhsm_token`` are defined here so that a
``conftest.py`` can re-export them (``from tests.helpers_pki import vn_pki, ...``).
Identities: ``hoa`` (good, RSA), ``nam`` (revoked), ``cu`` (expired), ``en`` (good, ECDSA P-256),
``org`` (organisation certificate). PKCS#12 password: ``PFX_PASSWORD`` (test material).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PKI_DIR = Path(__file__).resolve().parent / "pki"
ARCH = "vn-test"
PERSONS = ("hoa", "nam", "cu", "en", "org")
PFX_PASSWORD = "Pfx-test-7f3a9c2e"  # test-only; distinctive so leak tests can grep for it
TOKEN_PIN = "24681357"
TOKEN_SO_PIN = "13579135"
NAMES = {
    "hoa": "Nguyễn Thị Hoa",
    "nam": "Trần Văn Nam",
    "cu": "Lê Văn Cũ",
    "en": "Phạm Thị Én",
    "org": "CÔNG TY TNHH SỐ HÓA MẪU",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"required tool '{name}' is not installed (see README test set-up)")
    return path


def _generate_keys(key_dir: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key_dir.mkdir(parents=True, exist_ok=True)
    for label in ("root", "ca", "ca-ocsp", "tsa", *PERSONS):
        path = key_dir / f"{label}.key.pem"
        if path.exists():
            continue
        if label == "en":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            # 2048 bits everywhere keeps start-up short; real national roots use 4096.
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)


@dataclass
class PkiServices:
    """The test PKI: files in ``workdir``, services on 127.0.0.1:``port``."""

    workdir: Path
    port: int
    config: object  # certomancer.registry.CertomancerConfig
    _server: object | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ARCH}"

    @property
    def tsa_url(self) -> str:
        return f"{self.base_url}/tsa/tsa"

    @property
    def ocsp_url(self) -> str:
        return f"{self.base_url}/ocsp/ca"

    @property
    def crl_url(self) -> str:
        return f"{self.base_url}/crls/ca/latest.crl"

    @property
    def root_cert(self) -> Path:
        return self.cert_path("root")

    def cert_path(self, label: str) -> Path:
        return self.workdir / "certs" / f"{label}.cert.pem"

    def key_path(self, label: str) -> Path:
        return self.workdir / "keys" / f"{label}.key.pem"

    def pkcs12_path(self, label: str) -> Path:
        return self.workdir / "certs" / f"{label}.p12"

    @property
    def arch(self):  # certomancer PKIArchitecture
        return self.config.get_pki_arch(ARCH)  # type: ignore[attr-defined]

    def start(self) -> None:
        if self._server is not None:
            return
        from werkzeug.serving import WSGIRequestHandler, make_server

        from tests.pki.animator_wsgi import animator_app

        class QuietHandler(WSGIRequestHandler):
            def log(self, type: str, message: str, *args: object) -> None:  # noqa: A002
                pass  # one line per OCSP/TSA request would drown the test output

        server = make_server(
            "127.0.0.1",
            self.port,
            animator_app(self.config),
            threaded=True,
            request_handler=QuietHandler,
        )
        thread = threading.Thread(target=server.serve_forever, name="test-pki", daemon=True)
        thread.start()
        self._server, self._thread = server, thread
        _wait_http(f"{self.base_url}/crls/ca/latest.crl")

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()  # type: ignore[attr-defined]
        self._server.server_close()  # type: ignore[attr-defined]
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    @property
    def running(self) -> bool:
        return self._server is not None

    @contextlib.contextmanager
    def services_stopped(self) -> Iterator[None]:
        """OCSP, CRL and TSA down for the block (offline LTV checks), then back up."""
        was_running = self.running
        self.stop()
        try:
            yield
        finally:
            if was_running:
                self.start()


def _wait_http(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                resp.read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start_test_pki(workdir: Path, port: int | None = None) -> PkiServices:
    """Create the PKI under ``workdir`` (keys, certificates, PKCS#12) and start its services."""
    from certomancer.registry import CertomancerConfig
    from cryptography.hazmat.primitives.serialization import pkcs12

    workdir = Path(workdir)
    _generate_keys(workdir / "keys")
    port = port or free_port()
    config = CertomancerConfig.from_yaml(
        (PKI_DIR / "config.yml").read_text(encoding="utf-8"),
        key_search_dir=str(workdir / "keys"),
        external_url_prefix=f"http://127.0.0.1:{port}",
    )
    pki = PkiServices(workdir=workdir, port=port, config=config)
    arch = pki.arch
    certs_dir = workdir / "certs"
    certs_dir.mkdir(parents=True, exist_ok=True)
    # Issue every certificate now, in this thread: the servers then only read them.
    for label in ("root", "ca", "ca-ocsp", "tsa", *PERSONS):
        cert = arch.get_cert(label)
        (certs_dir / f"{label}.cert.pem").write_bytes(_pem(cert.dump()))
    (certs_dir / "chain.pem").write_bytes(
        _pem(arch.get_cert("ca").dump()) + _pem(arch.get_cert("root").dump())
    )
    for label in PERSONS:
        data = arch.package_pkcs12(label, password=PFX_PASSWORD.encode())
        pkcs12.load_key_and_certificates(data, PFX_PASSWORD.encode())  # sanity: it opens
        pki.pkcs12_path(label).write_bytes(data)
    pki.start()
    return pki


def stop_test_pki(pki: PkiServices) -> None:
    pki.stop()


def _pem(der: bytes) -> bytes:
    from asn1crypto import pem

    return pem.armor("CERTIFICATE", der)


# --- CSC dummy -----------------------------------------------------------------------------
@dataclass
class CscServer:
    url: str
    _loop: asyncio.AbstractEventLoop
    _runner: object
    _thread: threading.Thread

    @staticmethod
    def credential_id(label: str) -> str:
        return f"{ARCH}/{label}"

    def stop(self) -> None:
        async def _cleanup() -> None:
            await self._runner.cleanup()  # type: ignore[attr-defined]

        fut = asyncio.run_coroutine_threadsafe(_cleanup(), self._loop)
        fut.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def start_csc_dummy(pki: PkiServices, *, hash_pinning: bool = True) -> CscServer:
    """certomancer-csc-dummy on 127.0.0.1 (free port), SCAL 2 (SAD bound to the hashes)."""
    from aiohttp import web
    from csc_dummy.csc_dummy_server import CSCWithCertomancer, DummyServiceParams

    csc_app = CSCWithCertomancer(
        pki.config, service_params=DummyServiceParams(hash_pinning_required=hash_pinning)
    )
    csc_app.register_routes()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict[str, object] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(csc_app.app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        box["runner"] = runner
        box["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="csc-dummy", daemon=True)
    thread.start()
    if not started.wait(timeout=15):
        raise RuntimeError("CSC dummy server did not start")
    return CscServer(
        url=f"http://127.0.0.1:{box['port']}", _loop=loop, _runner=box["runner"], _thread=thread
    )


# --- SoftHSM2 token ------------------------------------------------------------------------
SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


@dataclass
class SoftHsmToken:
    conf: Path
    module: str
    label: str
    key_label: str
    pin: str
    env: dict[str, str] = field(default_factory=dict)


def softhsm_module() -> str:
    for m in SOFTHSM_MODULES:
        if Path(m).is_file():
            return m
    pytest.fail("libsofthsm2.so not found: apt-get install softhsm2")


def setup_softhsm_token(
    workdir: Path, pki: PkiServices, who: str = "hoa", *, label: str = "VNPOST-TEST"
) -> SoftHsmToken:
    """A SoftHSM2 token like the USB token a Vietnamese CA hands out (key + cert + chain).

    Sets ``SOFTHSM2_CONF`` in ``os.environ``: the module reads it when first loaded in a process.
    """
    require_tool("softhsm2-util")
    require_tool("pkcs11-tool")
    module = softhsm_module()
    workdir = Path(workdir)
    (workdir / "tokens").mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o700)
    conf = workdir / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {workdir / 'tokens'}\n"
        "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}

    def run(cmd: list[str]) -> None:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {p.stderr.strip() or p.stdout.strip()}")

    run(["softhsm2-util", "--init-token", "--free", "--label", label,
         "--pin", TOKEN_PIN, "--so-pin", TOKEN_SO_PIN])  # fmt: skip
    run(["softhsm2-util", "--import", str(pki.key_path(who)), "--token", label,
         "--label", who, "--id", "01", "--pin", TOKEN_PIN])  # fmt: skip
    from asn1crypto import pem

    for i, cert_label in enumerate((who, "ca", "root"), start=1):
        der_path = workdir / f"{cert_label}.der"
        der_path.write_bytes(pem.unarmor(pki.cert_path(cert_label).read_bytes())[2])
        run(["pkcs11-tool", "--module", module, "--token-label", label, "--login",
             "--pin", TOKEN_PIN, "--write-object", str(der_path), "--type", "cert",
             "--id", f"{i:02x}", "--label", cert_label])  # fmt: skip
        der_path.unlink()
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return SoftHsmToken(
        conf=conf, module=module, label=label, key_label=who, pin=TOKEN_PIN,
        env={"SOFTHSM2_CONF": str(conf)},
    )  # fmt: skip


# --- poppler pdfsig with an NSS database ---------------------------------------------------
def make_nss_db(nss_dir: Path, root_pem: Path, nickname: str = "VN Test Root") -> Path:
    require_tool("certutil")
    nss_dir = Path(nss_dir)
    nss_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss_dir}", "--empty-password"],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["certutil", "-A", "-d", f"sql:{nss_dir}", "-n", nickname, "-t", "CT,C,C",
                    "-i", str(root_pem)], check=True, capture_output=True)  # fmt: skip
    return nss_dir


@dataclass(frozen=True)
class PdfsigResult:
    signatures: int
    valid: int  # "Signature is Valid."
    trusted: int  # "Certificate is Trusted."
    output: str


def run_pdfsig(pdf: Path, nss_dir: Path, *, no_ocsp: bool = False) -> PdfsigResult:
    require_tool("pdfsig")
    cmd = ["pdfsig", "-nssdir", f"sql:{nss_dir}"]
    if no_ocsp:
        cmd.append("-no-ocsp")
    p = subprocess.run([*cmd, str(pdf)], capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    return PdfsigResult(
        signatures=out.count("Signature #"),
        valid=out.count("Signature Validation: Signature is Valid."),
        trusted=out.count("Certificate Validation: Certificate is Trusted."),
        output=out,
    )


# --- a small PDF/A-2b input ----------------------------------------------------------------
A4_PT = (595.276, 841.890)
NOTO_SANS = "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"


def make_pdfa_sample(path: Path, *, dpi: int = 100, text_near_top: bool = False) -> Path:
    """One A4 page: an RGB JPEG "scan" with Vietnamese text, sRGB OutputIntent, XMP pdfaid 2B.

    ``text_near_top`` puts a line of text where the signature note goes (R20 tests).
    """
    import pikepdf
    from PIL import Image, ImageCms, ImageDraw, ImageFont

    w, h = int(A4_PT[0] / 72 * dpi), int(A4_PT[1] / 72 * dpi)
    img = Image.new("RGB", (w, h), (250, 249, 244))
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(NOTO_SANS, max(10, dpi // 7))
    y = int(h * 0.2)
    if text_near_top:
        d.text(
            (int(dpi * 0.25), int(dpi * 0.12)),
            "ỦY BAN NHÂN DÂN PHƯỜNG HÀNG TRỐNG",
            fill=(20, 20, 30),
            font=font,
        )
    for line in ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
                 "ĐƠN ĐỀ NGHỊ CẤP BẢN SAO TRÍCH LỤC HỘ TỊCH"):  # fmt: skip
        d.text((int(w * 0.15), y), line, fill=(20, 20, 30), font=font)
        y += int(dpi * 0.4)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=75, dpi=(dpi, dpi))

    pdf = pikepdf.new()
    image = pdf.make_stream(buf.getvalue())
    image.Type = pikepdf.Name.XObject
    image.Subtype = pikepdf.Name.Image
    image.Width, image.Height = w, h
    image.ColorSpace = pikepdf.Name.DeviceRGB
    image.BitsPerComponent = 8
    image.Filter = pikepdf.Name.DCTDecode
    content = f"q {A4_PT[0]:.3f} 0 0 {A4_PT[1]:.3f} 0 0 cm /Im0 Do Q".encode()
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page,
        MediaBox=[0, 0, A4_PT[0], A4_PT[1]],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
        Contents=pdf.make_stream(content),
    )
    pdf.pages.append(pikepdf.Page(page))
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    icc_stream = pdf.make_stream(icc)
    icc_stream.N = 3
    pdf.Root.OutputIntents = pikepdf.Array(
        [
            pikepdf.Dictionary(
                Type=pikepdf.Name.OutputIntent,
                S=pikepdf.Name.GTS_PDFA1,
                OutputConditionIdentifier=pikepdf.String("sRGB IEC61966-2.1"),
                DestOutputProfile=icc_stream,
            )
        ]
    )
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["pdfaid:part"] = "2"
        meta["pdfaid:conformance"] = "B"
        meta["dc:title"] = "Hồ sơ mẫu"
        meta["xmp:CreatorTool"] = "tests/helpers_pki.py"
    pdf.save(path, min_version="1.7", object_stream_mode=pikepdf.ObjectStreamMode.disable)
    return Path(path)


# --- session fixtures (conftest.py may re-export them) ---------------------------------------
# Several test modules import these fixtures; one PKI, one CSC server and one token serve them
# all (SoftHSM reads SOFTHSM2_CONF once per process, and start-up costs seconds).
_SHARED: dict[str, Any] = {}


@pytest.fixture(scope="session")
def vn_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PkiServices]:
    if "pki" not in _SHARED:
        _SHARED["pki"] = start_test_pki(tmp_path_factory.mktemp("pki"))
    pki = _SHARED["pki"]
    pki.start()  # a test may have left it stopped
    yield pki
    pki.stop()


@pytest.fixture(scope="session")
def csc_server(vn_pki: PkiServices) -> Iterator[CscServer]:
    if "csc" not in _SHARED:
        _SHARED["csc"] = start_csc_dummy(vn_pki)
    yield _SHARED["csc"]
    server = _SHARED.pop("csc", None)
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory, vn_pki: PkiServices) -> SoftHsmToken:
    if "token" not in _SHARED:
        _SHARED["token"] = setup_softhsm_token(tmp_path_factory.mktemp("softhsm"), vn_pki, "hoa")
    return _SHARED["token"]
