"""The bundle manifest (requirements §7): what a bundle holds, with hashes and provenance.

The JSON Schema published at ``docs/manifest.schema.json`` is generated from ``Manifest``
(``python -m digitize.manifest > docs/manifest.schema.json``); a test keeps it current.
``MANIFEST_VERSION`` changes whenever the schema does.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Literal

from pydantic import Field

from digitize.models import (
    BBox,
    ColourMode,
    Flag,
    FrozenModel,
    NotDigitisedReason,
    PadesLevel,
    PageVariant,
    RevocationEvidence,
)

MANIFEST_VERSION = "1.1"
# 1.1 adds optional blocks only (review, Art. 9 data, evidence): a 1.0 manifest still reads.
MANIFEST_FILE = "manifest.json"
CHECKSUMS_FILE = "checksums.sha256"
MANIFEST_SIGNATURE_FILE = "manifest.json.p7s"


class DigitiserInfo(FrozenModel):
    full_name: str = Field(max_length=200)
    cert_serial: str = Field(max_length=64)
    cert_issuer: str = Field(max_length=400)
    cert_sha256: str
    is_demo: bool = False


class PageEntry(FrozenModel):
    page_index: int  # 1-based, strictly increasing (R5)
    physical_page: int
    variant: PageVariant
    source_file: str  # display name (NFC) of the scan file, relative to the dossier folder
    source_frame: int
    source_sha256: str  # R8: hash of the scan file as received
    width_px: int
    height_px: int
    dpi: float
    dpi_source: Literal["file", "inferred"]
    colour_mode: ColourMode
    orientation_deg: int
    skew_deg: float
    rotation_applied_deg: float
    passthrough: bool  # scan bytes placed in the PDF unchanged
    pdf_bytes: int
    ocr_mean_confidence: float | None = None
    ocr_needs_review: bool = False
    captured_at: datetime | None = None
    flags: tuple[Flag, ...] = ()


class OcrSummary(FrozenModel):
    engine: str
    version: str
    language: str
    mean_confidence: float
    review_flag: bool


class SignatureSummary(FrozenModel):
    field_name: str
    signed_at: datetime
    scan_time_shown: datetime
    pades_level: PadesLevel
    digest_alg: str
    signature_alg: str
    tsa_time: datetime | None = None
    appearance_shrunk: bool = False
    revocation_evidence: tuple[str, ...] = ()  # sha256 of entries in Manifest.revocation_evidence


class ExtractionEntry(FrozenModel):
    field: str
    value: str
    page: int
    bbox: BBox | None = None
    confidence: float
    source: Literal["ocr", "manual"] = "ocr"
    needs_review: bool = False
    started_at: datetime  # R1: after the signature's signed_at


class OriginalEntry(FrozenModel):
    """A received file kept byte-identical in the bundle: a PDF that already carried text or
    signatures (taken with --rescan; its signatures stay verifiable, never silently lost), or
    a scan file kept as a master (R14)."""

    file: str  # bundle-relative name
    source_file: str  # the name it had in the dossier folder (NFC)
    sha256: str
    size_bytes: int
    reason: str  # what it carried, from the ingest flag


class InputFile(FrozenModel):
    """One file of the dossier folder a bundle was made from."""

    file: str  # relative to the dossier folder, NFC, "/"-separated
    sha256: str  # "" for a link that does not lead to a regular file inside the dossier
    link: str | None = None  # a symbolic link: its target as written (not followed outside)


class DossierInputs(FrozenModel):
    """Exactly what a bundle was made from: every scan-named file below the dossier folder and
    ``dossier.yaml``. A dossier counts as done only while its folder holds exactly these."""

    scans: tuple[InputFile, ...] = ()
    dossier_yaml_sha256: str | None = None


class DocumentEntry(FrozenModel):
    doc_ordinal: int = Field(ge=1, le=999)
    doc_code: str | None = None
    component_name: str = Field(max_length=500)
    type_name: str | None = None
    code_number: str | None = None
    code_notation: str | None = None
    issued_date: date | None = None
    organ_name: str | None = None
    subject: str | None = None
    signer_position: str | None = None
    signer_full_name: str | None = None
    language: str = "vi"
    page_amount: int  # physical pages
    image_count: int  # images incl. note-slip variants (R5)
    pages: tuple[PageEntry, ...] = ()
    description: str | None = None
    not_digitised_reason: NotDigitisedReason | None = None  # R9: then no file
    digitization_result_code: str | None = None  # R30: opaque, from the provincial system
    file: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    pdfa_profile: Literal["PDF/A-2b", "PDF/A-2u"] | None = None
    ocr: OcrSummary | None = None
    signature: SignatureSummary | None = None
    extraction: tuple[ExtractionEntry, ...] = ()
    originals: tuple[OriginalEntry, ...] = ()
    masters: tuple[OriginalEntry, ...] = ()  # R14: the scan files, when the profile keeps them
    flags: tuple[Flag, ...] = ()


class Manifest(FrozenModel):
    manifest_version: Literal["1.0", "1.1"] = "1.1"  # new bundles: MANIFEST_VERSION
    dossier_code: str = Field(max_length=40)
    dossier_code_format: Literal["legacy", "centralised", "unknown", "folder_name"]
    procedure_code: str | None = Field(default=None, max_length=30)
    receiving_organ_id: str | None = None
    received_at: datetime | None = None
    digitiser: DigitiserInfo
    profile: str
    documents: tuple[DocumentEntry, ...]
    revocation_evidence: tuple[RevocationEvidence, ...] = ()  # R25, each once (by sha256)
    flags: tuple[Flag, ...] = ()
    needs_review: bool = False
    created_at: datetime
    tool: str = "digitize"
    tool_version: str
    inputs: DossierInputs | None = None  # 1.1, optional: resume compares it with the folder

    def to_json_bytes(self) -> bytes:
        """Canonical bytes: sorted keys, UTF-8, 2-space indent, trailing newline."""
        data = self.model_dump(mode="json")
        return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def manifest_json_schema() -> dict[str, object]:
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://digitize.example/schema/manifest/{MANIFEST_VERSION}"
    return schema


if __name__ == "__main__":
    print(json.dumps(manifest_json_schema(), ensure_ascii=False, indent=2, sort_keys=True))
