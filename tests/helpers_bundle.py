"""Bundles built by hand for verification tests: who signs each PDF, who signs the manifest and
whom the manifest names are chosen independently, so a test can make every mismatch an
attacker could (re-signed manifests, swapped components, organisation certificates, DEMO
chains, backdated signatures).

The pieces are real: one-page PDF/A files (``helpers_pki.make_pdfa_sample``), PAdES signatures
and detached CAdES signatures made by pyHanko with the test PKI's keys (or the DEMO identity),
timestamps from the test PKI's TSA, the manifest model of ``digitize.manifest`` and its
canonical bytes, ``checksums.sha256`` written by ``digitize.bundle.write_checksums``.
Nothing here goes through ``digitize.sign``'s checks: that is the point (an attacker's tool
would not run them either).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from digitize import __version__
from digitize.bundle import bundle_file_name, write_checksums
from digitize.manifest import (
    MANIFEST_FILE,
    MANIFEST_SIGNATURE_FILE,
    DigitiserInfo,
    DocumentEntry,
    ExtractionEntry,
    Manifest,
    SignatureSummary,
)
from digitize.models import PadesLevel
from digitize.util import VN_TZ, sha256_file
from tests.helpers_pki import PFX_PASSWORD, PkiServices, make_pdfa_sample

FIELD = "ChuKyNguoiSoHoa"


@dataclass(frozen=True)
class Identity:
    """A key and certificate that can sign (pyHanko ``SimpleSigner``)."""

    label: str
    signer: Any

    @property
    def cert(self) -> Any:
        return self.signer.signing_cert


def pki_identity(pki: PkiServices, label: str) -> Identity:
    from pyhanko.sign import signers

    signer = signers.SimpleSigner.load_pkcs12(
        str(pki.pkcs12_path(label)), passphrase=PFX_PASSWORD.encode()
    )
    return Identity(label, signer)


def demo_identity() -> Identity:
    """This machine's (the test run's) DEMO identity, created on first use."""
    from pyhanko.sign import signers

    from digitize.sign import DEMO_PKCS12_PASSWORD, ensure_demo_identity

    folder = ensure_demo_identity()
    signer = signers.SimpleSigner.load_pkcs12(str(folder / "demo.p12"),
                                              passphrase=DEMO_PKCS12_PASSWORD)  # fmt: skip
    return Identity("demo", signer)


def demo_root() -> Path:
    from digitize.sign import ensure_demo_identity

    return ensure_demo_identity() / "root.pem"


def _timestamper(tsa_url: str | None) -> Any:
    if tsa_url is None:
        return None
    from pyhanko.sign.timestamps import HTTPTimeStamper

    return HTTPTimeStamper(tsa_url)


def sign_pdf(src: Path, dst: Path, who: Identity, *, tsa_url: str | None = None,
             signing_time: datetime | None = None) -> tuple[datetime, datetime | None]:  # fmt: skip
    """PAdES-sign ``src`` into ``dst``; ``signing_time`` is the time written into the signature
    (the signer's own claim, backdating allowed). Returns (claimed time, timestamp time)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.validation.generic_cms import extract_tst_data_iter

    claimed = (signing_time or datetime.now(VN_TZ)).replace(microsecond=0)

    class ClockedSigner(signers.PdfSigner):
        def init_signing_session(self, pdf_out: Any, existing_fields_only: bool = False) -> Any:
            session = super().init_signing_session(pdf_out, existing_fields_only)
            session.system_time = claimed
            return session

    meta = signers.PdfSignatureMetadata(field_name=FIELD, md_algorithm="sha256",
                                        subfilter=SigSeedSubFilter.PADES)  # fmt: skip
    pdf_signer = ClockedSigner(meta, signer=who.signer, timestamper=_timestamper(tsa_url))
    out = io.BytesIO()

    async def go() -> None:
        writer = IncrementalPdfFileWriter(io.BytesIO(src.read_bytes()), strict=False)
        await pdf_signer.async_sign_pdf(writer, output=out)

    asyncio.run(go())
    dst.write_bytes(out.getvalue())
    sig = PdfFileReader(io.BytesIO(out.getvalue()), strict=False).embedded_signatures[0]
    tst = next(iter(extract_tst_data_iter(sig.signer_info, signed=False)), None)
    tst_time = tst["encap_content_info"]["content"].parsed["gen_time"].native if tst else None
    return claimed, tst_time


def sign_detached(data: bytes, who: Identity, *, tsa_url: str | None = None) -> bytes:
    from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

    async def go() -> bytes:
        info = await who.signer.async_sign_general_data(
            data, "sha256", detached=True, use_cades=True, timestamper=_timestamper(tsa_url),
            signed_attr_settings=PdfCMSSignedAttributes(signing_time=datetime.now(VN_TZ)),
        )
        return bytes(info.dump())

    return asyncio.run(go())


def digitiser_info(who: Identity, *, is_demo: bool | None = None) -> DigitiserInfo:
    from digitize.sign import identity_of

    identity = identity_of(who.cert)
    return DigitiserInfo(full_name=identity.full_name, cert_serial=identity.cert_serial,
                         cert_issuer=identity.cert_issuer, cert_sha256=identity.cert_sha256,
                         is_demo=(who.label == "demo") if is_demo is None else is_demo)  # fmt: skip


def forge_bundle(
    out_dir: Path,
    pdf_signers: list[Identity],
    *,
    manifest_signer: Identity | None = None,
    digitiser: DigitiserInfo | None = None,
    tsa_url: str | None = None,
    signing_time: datetime | None = None,
    code: str = "HS-TEST-0001",
) -> Path:
    """A bundle of ``len(pdf_signers)`` one-page components, component N signed by
    ``pdf_signers[N-1]``, the manifest naming ``digitiser`` (default: the first PDF signer)
    and signed by ``manifest_signer`` (default: the first PDF signer)."""
    folder = out_dir / code
    folder.mkdir(parents=True)
    work = out_dir / f".{code}.work"
    work.mkdir()
    documents = []
    for ordinal, who in enumerate(pdf_signers, 1):
        src = make_pdfa_sample(work / f"{ordinal}.pdf")
        name = bundle_file_name(code, ordinal)
        claimed, tst = sign_pdf(src, folder / name, who, tsa_url=tsa_url,
                                signing_time=signing_time)  # fmt: skip
        documents.append(DocumentEntry(
            doc_ordinal=ordinal, component_name=f"Thành phần {ordinal}", page_amount=1,
            image_count=1, file=name, sha256=sha256_file(folder / name),
            size_bytes=(folder / name).stat().st_size, pdfa_profile="PDF/A-2b",
            signature=SignatureSummary(
                field_name=FIELD, signed_at=claimed, scan_time_shown=claimed,
                pades_level=PadesLevel.B_T if tst else PadesLevel.B_B, digest_alg="sha256",
                signature_alg="test", tsa_time=tst.astimezone(VN_TZ) if tst else None),
            extraction=(ExtractionEntry(field="subject", value="Về việc thử", page=1,
                                        confidence=90.0,
                                        started_at=claimed + timedelta(seconds=1)),),
        ))  # fmt: skip
    manifest = Manifest(
        dossier_code=code, dossier_code_format="folder_name",
        digitiser=digitiser or digitiser_info(pdf_signers[0]), profile="test",
        documents=tuple(documents),
        created_at=max(d.signature.signed_at for d in documents if d.signature)
        + timedelta(seconds=2),
        tool_version=__version__,
    )  # fmt: skip
    data = manifest.to_json_bytes()
    (folder / MANIFEST_FILE).write_bytes(data)
    (folder / MANIFEST_SIGNATURE_FILE).write_bytes(
        sign_detached(data, manifest_signer or pdf_signers[0], tsa_url=tsa_url)
    )
    write_checksums(folder)
    return folder


def resign_manifest(folder: Path, who: Identity,
                    edit: Callable[[dict[str, Any]], None] | None = None, *,
                    tsa_url: str | None = None, validate: bool = True) -> None:  # fmt: skip
    """Rewrite ``manifest.json`` (after ``edit`` on its JSON), sign it as ``who`` and recompute
    ``checksums.sha256``: what someone holding a trusted key could do to a bundle.
    ``validate=False`` keeps JSON the schema would refuse."""
    data = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    if edit is not None:
        edit(data)
    if validate:
        raw = Manifest.model_validate(data).to_json_bytes()
    else:
        raw = (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
    (folder / MANIFEST_FILE).write_bytes(raw)
    (folder / MANIFEST_SIGNATURE_FILE).write_bytes(sign_detached(raw, who, tsa_url=tsa_url))
    write_checksums(folder)
