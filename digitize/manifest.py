"""The bundle manifest (requirements §7): what a bundle holds, with hashes and provenance.

The JSON Schema published at ``docs/manifest.schema.json`` is generated from ``Manifest``
(``python -m digitize.manifest > docs/manifest.schema.json``); a test keeps it current.
``MANIFEST_VERSION`` changes whenever the schema does.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import ClassVar, Literal

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
    confidence: float  # the machine's confidence in its reading (kept after a review)
    source: Literal["ocr", "manual"] = "ocr"  # "manual": a person entered the value (R36)
    needs_review: bool = False
    started_at: datetime  # R1: after the signature's signed_at
    # Set by a review (``Manifest.reviews``): the machine reading kept beside a person's value,
    # and who confirmed or entered the value and when.
    machine_value: str | None = None  # only when a person changed the value
    reviewed_by: str | None = None  # reviewer's name, from the certificate that re-signed
    reviewed_at: datetime | None = None


Art9Source = Literal["ocr", "manual", "dossier.yaml", "catalogue"]


class Art9Value(FrozenModel):
    """One Art. 9 value (TT 01/2023 Art. 9 k2, R36-R37) or template field of a paper.

    ``value`` is None when the paper has no such value or it could not be read; a value that
    should be there and was not read is None **and** ``needs_review``. ``source`` says where it
    came from: ``ocr`` (read from the page), ``manual`` (entered at review, ``entered_by``),
    ``dossier.yaml`` (declared by the clerk), ``catalogue`` (the profile's catalogue, e.g. a
    paper-type code)."""

    value: str | None = None
    page: int | None = None  # 1-based image index within the component
    bbox: BBox | None = None  # pixels of the cleaned page image
    confidence: float = 0.0  # 0..1
    source: Art9Source = "ocr"
    needs_review: bool = False
    handwritten: bool = False  # read from a handwritten area
    note: str | None = None  # why it needs review, or how it was confirmed
    # Why it needs review, as stable codes: unread, handwritten, low_confidence, misread,
    # layout, single_reading, soft_check, conflict, no_code, unrecognised, not_printed.
    doubts: tuple[str, ...] = ()
    entered_by: str | None = None  # source "manual": who entered it


class Art9Block(FrozenModel):
    """The data Art. 9 asks of every digitised paper, plus the fields of its type's template.

    Key names are stable (published in the JSON Schema). Dates are ISO ``YYYY-MM-DD``; the
    owner's personal ID is exactly 12 digits (R39). ``paper_type_key`` is the catalogue key
    (``other`` when the paper was not recognised)."""

    paper_type_key: str
    classification_confidence: float = 0.0
    paper_type_code: Art9Value = Field(default_factory=Art9Value)
    paper_type_name: Art9Value = Field(default_factory=Art9Value)
    owner_id: Art9Value = Field(default_factory=Art9Value)
    owner_id_kind: Art9Value = Field(default_factory=Art9Value)  # personal | organisation
    paper_name: Art9Value = Field(default_factory=Art9Value)
    number_notation: Art9Value = Field(default_factory=Art9Value)
    issued_date: Art9Value = Field(default_factory=Art9Value)
    issuing_body: Art9Value = Field(default_factory=Art9Value)
    summary: Art9Value = Field(default_factory=Art9Value)
    valid_until: Art9Value = Field(default_factory=Art9Value)
    validity_scope: Art9Value = Field(default_factory=Art9Value)
    fields: dict[str, Art9Value] = Field(default_factory=dict)
    needs_review: bool = False  # any value above (or a field) needs review

    ART9_KEYS: ClassVar[tuple[str, ...]] = (
        "paper_type_code",
        "paper_type_name",
        "owner_id",
        "owner_id_kind",
        "paper_name",
        "number_notation",
        "issued_date",
        "issuing_body",
        "summary",
        "valid_until",
        "validity_scope",
    )

    def values(self) -> dict[str, Art9Value]:
        """The Art. 9 values by key (without the template fields)."""
        return {key: getattr(self, key) for key in self.ART9_KEYS}


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
    art9: Art9Block | None = None  # TT 01/2023 Art. 9: paper type, owner, the paper's data
    originals: tuple[OriginalEntry, ...] = ()
    masters: tuple[OriginalEntry, ...] = ()  # R14: the scan files, when the profile keeps them
    flags: tuple[Flag, ...] = ()


class ReviewChange(FrozenModel):
    """One decision of a person in a review: a field confirmed or corrected, a page accepted
    or sent back for a new scan."""

    file: str  # component PDF name (DocumentEntry.file)
    action: Literal["confirm", "correct", "accept", "rescan"]
    field: str | None = None  # extraction field name, or "art9.<key>" / "art9.fields.<key>"
    page: int | None = None  # 1-based page_index (page decisions)
    machine_value: str | None = None  # what the machine read (fields)
    previous_value: str | None = None  # the value before this review (fields)
    value: str | None = None  # the value after this review (fields)
    reason: str | None = Field(default=None, max_length=500)  # why a rescan is needed


class ReviewRecord(FrozenModel):
    """A person's review, saved by re-signing the manifest with the reviewer's certificate: the
    manifest signature's signer is the reviewer of the last record."""

    reviewer: DigitiserInfo  # from the certificate that signed manifest.json.p7s
    reviewed_at: datetime
    previous_manifest_sha256: str  # the manifest this review started from
    changes: tuple[ReviewChange, ...] = ()


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
    reviews: tuple[ReviewRecord, ...] = ()  # oldest first; the last one signed the manifest
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
