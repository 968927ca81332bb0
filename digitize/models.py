"""Typed models passed between the pipeline stages (frozen pydantic, ``extra="forbid"``).

In the order ``digitize.pipeline`` runs them::

    ingest   ─▶ ``Dossier`` (components → ``IngestedPage``: located, hashed, QA'd; no pixels)
    per page, in a page worker:
      clean  ─▶ ``CleanRecord`` (the cleaned pixels stay in the worker)
      ocr    ─▶ ``PageOcr``
      image  ─▶ ``EncodedImage`` (the scan bytes passed through, or the cleaned page encoded)
    per component, in the parent:
      pdfa   ─▶ ``PdfResult``
      sign   ─▶ ``SignatureRecord`` (R1: before extraction)
      extract ▶ ``ExtractedField`` per header field
    per dossier: ``digitize.assemble`` maps these into the ``Manifest`` (``digitize.manifest``)

Models are frozen: a stage returns new models, it never edits the ones it was given. Raw
pixel arrays never travel in these models; a worker returns its page's encoded image (a few
hundred kB) so the parent can build the PDF without re-reading the scan.
Coordinates are pixels of the image they describe, origin top-left, ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

BBox = tuple[int, int, int, int]


class FrozenModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    REVIEW = "review"  # a human must look at it before the bundle is relied on
    ERROR = "error"


class Flag(FrozenModel):
    """A QA observation that does not stop the pipeline (R15: never silently accepted)."""

    code: str  # stable, machine-readable, e.g. "dpi_inferred", "blank_page", "low_ocr_confidence"
    severity: Severity
    message: str
    page: int | None = None  # 1-based image index within the component, when page-specific


def make_flag(
    code: str, message: str, severity: Severity = Severity.REVIEW, page: int | None = None
) -> Flag:
    """The one flag constructor: a review flag unless told otherwise (R15: a doubt goes to a
    person by default, never silently accepted)."""
    return Flag(code=code, severity=severity, message=message, page=page)


class ColourMode(StrEnum):
    RGB = "rgb"
    GRAY = "gray"
    BILEVEL = "bilevel"


class PageVariant(StrEnum):
    """R6: a page with a note slip is captured twice, same ``physical_page``."""

    SINGLE = "single"
    WITH_NOTE = "with_note"
    NOTE_REMOVED = "note_removed"


class NotDigitisedReason(StrEnum):
    """R9 (TT 03/2025 Art 5 k2)."""

    FILED_ONLINE = "filed_online"
    INSPECTION_ONLY = "inspection_only"
    INTER_AGENCY_RESULT = "inter_agency_result"
    CLASSIFIED = "classified"


class SourceEncoding(StrEnum):
    """How a page's pixels are stored in its source file (decides PDF pass-through)."""

    JPEG = "jpeg"  # baseline/progressive JPEG: DCTDecode pass-through
    CCITT_G4 = "ccitt_g4"  # bilevel G4: CCITTFaxDecode pass-through
    PNG = "png"
    TIFF = "tiff"  # any other TIFF compression (LZW, deflate, none, packbits, G3, JPEG-in-TIFF)
    BMP = "bmp"
    JBIG2 = "jbig2"  # only from PDFs
    JPEG2000 = "jpeg2000"  # only from PDFs
    FLATE = "flate"  # raw image XObject from a PDF
    OTHER = "other"


class SourceFile(FrozenModel):
    path: Path  # the real path, exactly as on disk (never normalised)
    display_name: str  # NFC form of the name, for messages and the manifest
    sha256: str
    size_bytes: int
    format: Literal["jpeg", "png", "tiff", "bmp", "pdf"]
    modified_at: datetime


class PageQA(FrozenModel):
    dpi_x: float
    dpi_y: float
    dpi_source: Literal["file", "inferred"]
    inferred_paper: str | None = None  # e.g. "A4" when the dpi was inferred from pixel size
    colour_mode: ColourMode
    is_blank: bool = False
    touches_border: bool = False  # R7: content reaches the image edge (possible cut-off)
    duplicate_of: int | None = None  # 1-based page index of an (near-)identical earlier page

    @property
    def dpi(self) -> float:
        return min(self.dpi_x, self.dpi_y)


class IngestedPage(FrozenModel):
    """One page image as it came from the scanner, located but not decoded."""

    index: int  # 1-based image index within the component (R5: order kept)
    physical_page: int  # 1-based physical page (equal to index unless note-slip variants)
    variant: PageVariant = PageVariant.SINGLE
    source: Path  # the file holding the page
    source_sha256: str
    frame: int = 0  # frame of a multi-page TIFF, or page index of a PDF (0-based)
    encoding: SourceEncoding
    width_px: int
    height_px: int
    qa: PageQA
    captured_at: datetime | None = None  # from EXIF/TIFF DateTime or file mtime (R21)
    captured_at_source: Literal["exif", "tiff", "pdf", "file_mtime"] | None = None
    flags: tuple[Flag, ...] = ()
    # PDF sources: the turn (clockwise, after an optional left-right mirror) that ingest applied
    # to the stored image so that the pixels show the page as a PDF viewer displays it — from
    # the page's /Rotate and the image's drawing matrix together. Width, height and dpi above
    # describe the page as displayed. A hint for orientation: the PDF's author said this way up.
    pdf_rotation_deg: Literal[0, 90, 180, 270] = 0
    pdf_mirrored: bool = False


class Component(FrozenModel):
    """One paper document (thành phần hồ sơ): becomes one signed PDF/A file (R3)."""

    ordinal: int  # 1-based order in the dossier (doc_ordinal)
    name: str  # component name (NFC), e.g. folder name or from dossier.yaml
    sources: tuple[SourceFile, ...] = ()
    declared_pages: int | None = None  # operator-declared physical pages (R4/R5)
    pages: tuple[IngestedPage, ...] = ()
    not_digitised_reason: NotDigitisedReason | None = None  # R9: no PDF for this component
    flags: tuple[Flag, ...] = ()
    paper_type: str | None = None  # dossier.yaml: the paper type the clerk declared (catalogue key)


class Dossier(FrozenModel):
    code: str  # dossier code (mã hồ sơ) or, without one, the folder name
    code_format: Literal["legacy", "centralised", "unknown", "folder_name"] = "folder_name"
    procedure_code: str | None = None
    receiving_organ_id: str | None = None
    received_at: datetime | None = None
    source_dir: Path
    components: tuple[Component, ...]
    ignored_files: tuple[Path, ...] = ()  # non-scan files noticed and skipped (Thumbs.db, .txt …)
    flags: tuple[Flag, ...] = ()

    @property
    def page_count(self) -> int:
        return sum(len(c.pages) for c in self.components)


# --- clean ---------------------------------------------------------------------------------
class CleanRecord(FrozenModel):
    """What page clean-up decided and did (recorded in the manifest)."""

    orientation_deg: Literal[0, 90, 180, 270] = 0  # counter-clockwise turn that was undone
    orientation_confidence: float = 0.0  # 0..1
    skew_deg: float = 0.0  # estimated skew (positive = content turned counter-clockwise)
    skew_confidence: float = 0.0  # 0..1
    rotation_applied_deg: float = 0.0  # total rotation applied to the pixels
    resampled: bool = False  # False: pixels untouched (pass-through possible)
    crop_box: BBox | None = None  # scanner background removed, in pixels of the oriented and
    # deskewed page (source pixels when neither happened)
    width_px: int  # of the cleaned image
    height_px: int
    seconds: float = 0.0
    flags: tuple[Flag, ...] = ()


# --- ocr -----------------------------------------------------------------------------------
class Word(FrozenModel):
    text: str  # NFC
    bbox: BBox  # pixels of the cleaned image
    confidence: float  # 0..100
    line: int  # index into PageOcr.lines


class OcrLine(FrozenModel):
    text: str  # NFC, words joined by single spaces
    bbox: BBox
    block: int = 0
    confidence: float = 0.0


class PageOcr(FrozenModel):
    engine: str  # e.g. "tesseract"
    engine_version: str
    language: str  # e.g. "vie"
    width_px: int  # of the image that was read (the cleaned image)
    height_px: int
    dpi: float
    text: str  # NFC, lines in reading order separated by "\n"
    words: tuple[Word, ...] = ()
    lines: tuple[OcrLine, ...] = ()
    mean_confidence: float = 0.0  # 0..100, over words
    low_confidence_share: float = 0.0  # share of words under the profile's word threshold
    needs_review: bool = False
    hocr: str | None = None  # for audit
    seconds: float = 0.0
    flags: tuple[Flag, ...] = ()


# --- extract -------------------------------------------------------------------------------
class ExtractedField(FrozenModel):
    """One value read from the page (requirements §8); never a confident guess."""

    name: str  # organ_name, parent_organ, code_number, code_notation, issued_place, issued_date,
    # type_name, subject, signer_position, signer_full_name, recipients, …
    value: str
    page: int  # 1-based image index
    bbox: BBox | None = None
    confidence: float  # 0..1
    source: Literal["ocr", "manual"] = "ocr"
    needs_review: bool = False
    note: str | None = None


# --- pdfa ----------------------------------------------------------------------------------
class PdfResult(FrozenModel):
    path: Path
    sha256: str
    size_bytes: int
    pdfa_part: Literal["2b", "2u"]
    page_bytes: tuple[int, ...]  # bytes of each page's image stream (+ text) in the file
    passthrough_pages: tuple[bool, ...]  # True where the scan bytes went in unchanged
    seconds: float = 0.0


# --- sign ----------------------------------------------------------------------------------
class PadesLevel(StrEnum):
    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"


class DigitiserIdentity(FrozenModel):
    full_name: str  # from the certificate subject CN (NFC)
    cert_serial: str  # hex
    cert_issuer: str  # RFC 4514 string
    cert_subject: str
    cert_sha256: str
    is_demo: bool = False


class RevocationEvidence(FrozenModel):
    """An OCSP response or CRL that showed the certificate unrevoked before signing (R25)."""

    kind: Literal["ocsp", "crl"]
    sha256: str  # of the DER bytes
    der_base64: str
    checked_at: datetime


class SignatureRecord(FrozenModel):
    field_name: str
    signer: DigitiserIdentity
    signed_at: datetime  # signing time claimed in the CMS (+07:00)
    scan_time_shown: datetime  # the time printed in the visible note (R19, R21)
    pades_level: PadesLevel
    digest_algorithm: str  # e.g. "sha256"
    signature_algorithm: str  # e.g. "rsassa_pkcs1v15", "rsassa_pss", "ecdsa"
    tsa_time: datetime | None = None
    appearance_box_pt: tuple[float, float, float, float]  # x0, y0, x1, y1 in PDF points
    appearance_shrunk: bool = False  # R20: box overlapped text and was shrunk
    revocation_evidence: tuple[RevocationEvidence, ...] = ()  # R25: what the pre-check used
    seconds: float = 0.0
    flags: tuple[Flag, ...] = ()


class Check(FrozenModel):
    """One verdict line of a verification report."""

    name: str  # e.g. "hash:001.pdf", "signature:001.pdf", "manifest_signature"
    ok: bool
    message: str  # human readable (Vietnamese or English per the caller's choice)
    exit_code: int = 0  # ExitCode of the failure kind, 0 when ok
    details: dict[str, str] = Field(default_factory=dict)


# --- encoded images (ingest pass-through → pdfa) --------------------------------------------
class EncodedImage(FrozenModel):
    """Compressed image data ready to become a PDF image XObject, unchanged from its source
    when ``passthrough`` is True (img2pdf-style guarantee: scan bytes kept)."""

    data: bytes
    filter: Literal["DCTDecode", "CCITTFaxDecode", "FlateDecode", "JBIG2Decode", "JPXDecode"]
    colour_mode: ColourMode
    width: int
    height: int
    bits_per_component: int
    decode_parms: dict[str, int | bool] = Field(default_factory=dict)
    jbig2_globals: bytes | None = None
    icc_profile: bytes | None = None  # embedded profile of the source, if any
    cmyk: bool = False  # DCT data in CMYK (rare scanner output)
    passthrough: bool = True
