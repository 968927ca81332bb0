"""Real signed bundles with known facts, for ``digitize stats`` tests and ``bench/stats.py``.

- ``issue_person(pki, label, name, cccd)``: one more personal certificate from the test PKI's
  CA (like the demo identity: a natural person, CCCD in UID, no revocation pointers) as a
  PKCS#12 file with the test password.
- ``open_pkcs12_signer(path, roots)``: a signer on such a file. The password is put in the
  environment for this one open: the signer reads an environment secret once and removes it
  (``digitize.sign.secrets``), so each open needs it set again.
- ``signing_clock(moment)``: PDF signatures made inside read their time as if the clock had
  started at ``moment`` (a bundle of an earlier day; the certificates are valid then). Only the
  signing time is moved: a clock in the past cannot be had otherwise in one test process.
- ``PageSpec``/``DossierSpec`` and ``write_dossier``: a small dossier folder (scans written by
  Pillow through ``tests.helpers_images``; colour JPEGs carry the capture time in EXIF, gray PNG
  and bilevel G4 TIFF pages carry it as their file time) and its ``dossier.yaml``.
- ``resign_manifest(bundle, signer, mutate)``: the digitiser re-signs an edited manifest (what a
  review does, or a bundle made on another day); ``rename_copy`` makes a new bundle of a new
  dossier code from an existing one (PDFs hard-linked under their new names), re-signed.
- ``tamper_copy``: a copy whose manifest was edited after signing (must be excluded).
Checksums are written here with hashlib, independently of ``digitize.bundle``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml

from digitize.util import VN_TZ
from tests.helpers_images import save_jpeg, save_png, save_tiff, text_page
from tests.helpers_pki import PFX_PASSWORD, PkiServices

MM_PER_INCH = 25.4
PAPER_MM = {"A4": (210, 297), "A3": (297, 420), "A5": (148, 210)}
DPI = 200
CHECKSUMS = "checksums.sha256"


def open_pkcs12_signer(path: Path, roots: tuple[Path, ...]) -> Any:
    """A PKCS#12 signer (PAdES B-B) on ``path``; the test password serves this open only."""
    from digitize.models import PadesLevel
    from digitize.settings import SigningSettings
    from digitize.sign import open_signer

    settings = SigningSettings(backend="pkcs12", pkcs12_path=str(path), level=PadesLevel.B_B,
                               trust_roots=tuple(str(r) for r in roots))
    variable = settings.pkcs12.password_env
    os.environ[variable] = PFX_PASSWORD
    try:
        return open_signer(settings)
    finally:
        os.environ.pop(variable, None)  # already removed by the open, unless it failed early


@contextmanager
def signing_clock(moment: datetime | None) -> Iterator[None]:
    """Inside, ``digitize.sign.pades`` reads the time as ``moment`` plus the time elapsed since
    entering (None: the real clock). The signatures are real; only their time is moved."""
    import digitize.sign.pades as pades

    if moment is None:
        yield
        return
    real = pades.datetime
    shift = moment - real.now(UTC)

    class Shifted(real):  # type: ignore[valid-type,misc]
        @classmethod
        def now(cls, tz: Any = None) -> datetime:
            return real.now(tz) + shift

    pades.datetime = Shifted  # type: ignore[misc]
    try:
        yield
    finally:
        pades.datetime = real  # type: ignore[misc]


def paper_px(paper: str, dpi: int = DPI) -> tuple[int, int]:
    w, h = PAPER_MM[paper]
    return round(w / MM_PER_INCH * dpi), round(h / MM_PER_INCH * dpi)


def issue_person(pki: PkiServices, label: str, name: str, cccd: str) -> Path:
    """A personal certificate for ``name`` issued by the test PKI's CA, as PKCS#12."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(pki.cert_path("ca").read_bytes())
    ca_key = serialization.load_pem_private_key(pki.key_path("ca").read_bytes(), None)
    root = x509.load_pem_x509_certificate(pki.root_cert.read_bytes())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tổng công ty Bưu điện Việt Nam"),
        x509.NameAttribute(NameOID.USER_ID, f"CCCD:{cccd}"),
        x509.NameAttribute(NameOID.COMMON_NAME, name),
    ])
    now = datetime.now(UTC) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_cert.public_key()), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    data = pkcs12.serialize_key_and_certificates(
        label.encode(), key, cert, [ca_cert, root],
        serialization.BestAvailableEncryption(PFX_PASSWORD.encode()))
    path = pki.workdir / "certs" / f"{label}.extra.p12"
    path.write_bytes(data)
    return path


@dataclass(frozen=True)
class PageSpec:
    colour: Literal["rgb", "gray", "bilevel"]
    paper: Literal["A4", "A3", "A5"]
    captured: datetime  # aware; written as EXIF (rgb) or as the file time (gray, bilevel)
    note_slip: bool = False  # captured twice (R6): with the slip, then without


@dataclass(frozen=True)
class DossierSpec:
    code: str
    procedure: str | None
    office: str | None
    components: tuple[tuple[PageSpec, ...], ...]  # an empty tuple: not digitised (filed online)
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _write_page(path_stem: Path, page: PageSpec, seed: int) -> Path:
    w, h = paper_px(page.paper)
    arr = text_page(w, h, seed=seed, colour=page.colour == "rgb", seal=page.colour == "rgb",
                    lines=6)
    if page.colour == "rgb":
        local = page.captured.astimezone(VN_TZ)
        return save_jpeg(path_stem.with_suffix(".jpg"), arr, dpi=DPI,
                         exif_datetime=local.strftime("%Y:%m:%d %H:%M:%S"))
    if page.colour == "gray":
        path = save_png(path_stem.with_suffix(".png"), arr, dpi=DPI)
    else:
        path = save_tiff(path_stem.with_suffix(".tif"), [arr], dpi=DPI)
    stamp = page.captured.timestamp()
    os.utime(path, (stamp, stamp))
    return path


def write_dossier(root: Path, spec: DossierSpec) -> Path:
    """The dossier folder ``root/<code>`` with its scans and ``dossier.yaml``."""
    folder = root / spec.code
    folder.mkdir(parents=True)
    components: list[dict[str, Any]] = []
    seed = spec.seed
    for number, pages in enumerate(spec.components, 1):
        if not pages:
            components.append({"name": f"Thành phần {number}", "not_digitised_reason":
                               "filed_online"})
            continue
        sub = folder / f"c{number}"
        sub.mkdir()
        image = 0
        notes = []
        for physical, page in enumerate(pages, 1):
            seed += 1
            image += 1
            _write_page(sub / f"p{image:02d}", page, seed)
            if page.note_slip:
                notes.append(physical)
                image += 1
                _write_page(sub / f"p{image:02d}", page, seed)  # slip removed: same paper
        components.append({"path": f"c{number}", "name": f"Thành phần {number}",
                           "declared_pages": len(pages), "note_slip_pages": notes})
    data: dict[str, Any] = {"dossier_code": spec.code, "components": components, **spec.extra}
    if spec.procedure is not None:
        data["procedure_code"] = spec.procedure
    if spec.office is not None:
        data["receiving_organ_id"] = spec.office
    (folder / "dossier.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                         encoding="utf-8")
    return folder


def write_checksums(bundle: Path) -> None:
    lines = []
    for path in sorted(bundle.iterdir(), key=lambda p: p.name):
        if path.name != CHECKSUMS and path.is_file():
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    (bundle / CHECKSUMS).write_text("".join(lines), encoding="utf-8")


def resign_manifest(bundle: Path, signer: Any, mutate: Callable[[dict[str, Any]], None]) -> None:
    """Edit ``manifest.json`` with ``mutate`` and have ``signer`` (the bundle's digitiser)
    sign it again: the bundle verifies, as one made that way would."""
    from digitize.manifest import Manifest

    data = json.loads((bundle / "manifest.json").read_bytes())
    mutate(data)
    manifest_bytes = Manifest.model_validate(data).to_json_bytes()
    (bundle / "manifest.json").write_bytes(manifest_bytes)
    (bundle / "manifest.json.p7s").write_bytes(signer.sign_detached(manifest_bytes))
    write_checksums(bundle)


def rename_copy(bundle: Path, target: Path, new_code: str, signer: Any,
                mutate: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """A bundle of dossier ``new_code`` made from ``bundle``: the signed PDFs hard-linked
    under their R31 names for the new code, the manifest edited and re-signed."""
    from digitize.bundle import bundle_file_name

    data = json.loads((bundle / "manifest.json").read_bytes())
    target.mkdir(parents=True)
    renames = {}
    for doc in data["documents"]:
        if doc.get("file"):
            new = bundle_file_name(new_code, doc["doc_ordinal"])
            os.link(bundle / doc["file"], target / new)
            renames[doc["file"]] = new
            doc["file"] = new

    def edit(manifest: dict[str, Any]) -> None:
        manifest.update({"dossier_code": new_code, "documents": data["documents"]})
        if mutate is not None:
            mutate(manifest)

    shutil.copy2(bundle / "manifest.json", target / "manifest.json")
    resign_manifest(target, signer, edit)
    return target


def tamper_copy(bundle: Path, target: Path, mutate: Callable[[dict[str, Any]], None]) -> Path:
    """A copy whose manifest was edited after signing (signature and checksums left alone)."""
    shutil.copytree(bundle, target)
    data = json.loads((target / "manifest.json").read_bytes())
    mutate(data)
    (target / "manifest.json").write_text(json.dumps(data, ensure_ascii=False, indent=2,
                                                     sort_keys=True) + "\n", encoding="utf-8")
    return target


def zip_copy(bundle: Path, target: Path) -> Path:
    """The bundle as a zip with one top folder (as ``digitize run --zip`` writes it)."""
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(bundle.iterdir()):
            archive.write(path, f"{bundle.name}/{path.name}")
    return target


def raw_manifest(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "manifest.json").read_bytes())
