"""From packaged components to the manifest: the one place that decides what a manifest says.

``pipeline.package_component`` turns one component's pages into a signed PDF/A and returns a
``PackagedComponent`` (what was made: the PDF, its signature, per-page records, the fields
read after signing). This module maps those, in component order, into ``DocumentEntry``
models and the ``Manifest`` (the schema itself lives in ``digitize.manifest``). It computes
nothing and reads no file: every value comes from the stages' typed results.

Review (R15, R36): a document needs review when one of its flags or one of its pages' flags
is of severity ``review`` or ``error``. Every extracted field the reader is not sure of
(``needs_review``) becomes a ``field_review`` flag on its document, so such a field marks the
document and the dossier ``needs_review`` (and a strict profile refuses the dossier) like any
other doubt; its value stays out of the document's header fields (a person confirms it first).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from digitize._version import __version__
from digitize.manifest import (
    Art9Block,
    DigitiserInfo,
    DocumentEntry,
    ExtractionEntry,
    Manifest,
    OcrSummary,
    OriginalEntry,
    PageEntry,
    SignatureSummary,
)
from digitize.models import (
    CleanRecord,
    Component,
    DigitiserIdentity,
    Dossier,
    ExtractedField,
    Flag,
    FrozenModel,
    IngestedPage,
    PdfResult,
    Severity,
    SignatureRecord,
    make_flag,
)
from digitize.util import VN_TZ, nfc

REVIEW_SEVERITIES = (Severity.REVIEW, Severity.ERROR)


class PackagedPage(FrozenModel):
    """One page as it went into its component's PDF (no pixels, no words)."""

    page: IngestedPage
    clean: CleanRecord
    ocr_mean_confidence: float
    ocr_needs_review: bool
    ocr_flags: tuple[Flag, ...] = ()
    pdf_bytes: int  # bytes of the page's image stream (+ text) in the PDF
    passthrough: bool  # the scan bytes went into the PDF unchanged


class PackagedComponent(FrozenModel):
    """The typed result of packaging one component: PDF/A → signature → extraction."""

    component: Component
    file: str  # bundle-relative name of the signed PDF (R31)
    pdf: PdfResult  # of the unsigned PDF/A (flavour, per-page sizes)
    signature: SignatureRecord
    signed_sha256: str
    signed_size: int
    pages: tuple[PackagedPage, ...]
    ocr: OcrSummary
    fields: tuple[ExtractedField, ...] = ()
    art9: Art9Block | None = None  # the paper's Art. 9 data (R37)
    paper_flags: tuple[Flag, ...] = ()  # raised by classification and the Art. 9 reading
    extraction_started_at: datetime  # R1: after ``signature.signed_at``
    originals: tuple[OriginalEntry, ...] = ()  # received PDFs kept byte-identical
    masters: tuple[OriginalEntry, ...] = ()  # R14: the scan files, when the profile keeps them


def ocr_review_flag() -> Flag:
    return make_flag(
        "ocr_review",
        "one or more pages are under the OCR confidence threshold: check the text layer (R15)",
    )


def field_review_flags(fields: Sequence[ExtractedField]) -> tuple[Flag, ...]:
    """One ``field_review`` flag per field the reader is not sure of (its value is not in the
    message: it may be personal data, and the manifest's extraction block holds it)."""
    return tuple(
        make_flag(
            "field_review",
            f"extracted field {field.name!r} needs a person to confirm it"
            + (f": {field.note}" if field.note else " (read with low confidence)")
            + " (R36)",
            page=field.page,
        )
        for field in fields
        if field.needs_review
    )


def extraction_entries(
    fields: Sequence[ExtractedField], started_at: datetime
) -> tuple[ExtractionEntry, ...]:
    return tuple(
        ExtractionEntry(
            field=f.name,
            value=f.value,
            page=f.page,
            bbox=f.bbox,
            confidence=round(f.confidence, 3),
            source=f.source,
            needs_review=f.needs_review,
            started_at=started_at,
        )
        for f in fields
    )


def _field_value(fields: Sequence[ExtractionEntry], name: str) -> str | None:
    """A header field's value, only when the reader was sure of it."""
    for entry in fields:
        if entry.field == name and not entry.needs_review:
            return entry.value
    return None


def _issued_date(fields: Sequence[ExtractionEntry]) -> date | None:
    value = _field_value(fields, "issued_date")
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def header_fields(extraction: Sequence[ExtractionEntry]) -> dict[str, object]:
    """The ``DocumentEntry`` header fields the reader was sure of, from its extraction."""
    names = ("type_name", "code_number", "code_notation", "organ_name", "subject",
             "signer_position", "signer_full_name")  # fmt: skip
    return {
        **{name: _field_value(extraction, name) for name in names},
        "issued_date": _issued_date(extraction),
    }


def signature_summary(record: SignatureRecord) -> SignatureSummary:
    """What the manifest keeps of a PDF signature (the evidence itself once, by hash)."""
    return SignatureSummary(
        field_name=record.field_name,
        signed_at=record.signed_at,
        scan_time_shown=record.scan_time_shown,
        pades_level=record.pades_level,
        digest_alg=record.digest_algorithm,
        signature_alg=record.signature_algorithm,
        tsa_time=record.tsa_time,
        appearance_shrunk=record.appearance_shrunk,
        revocation_evidence=tuple(e.sha256 for e in record.revocation_evidence),
    )


def _page_entry(packaged: PackagedPage, shown_source: str) -> PageEntry:
    page, clean = packaged.page, packaged.clean
    return PageEntry(
        page_index=page.index,
        physical_page=page.physical_page,
        variant=page.variant,
        source_file=nfc(shown_source),
        source_frame=page.frame,
        source_sha256=page.source_sha256,
        width_px=clean.width_px,
        height_px=clean.height_px,
        dpi=round(page.qa.dpi, 2),
        dpi_source=page.qa.dpi_source,
        colour_mode=page.qa.colour_mode,
        orientation_deg=clean.orientation_deg,
        skew_deg=round(clean.skew_deg, 3),
        rotation_applied_deg=round(clean.rotation_applied_deg, 3),
        passthrough=packaged.passthrough,
        pdf_bytes=packaged.pdf_bytes,
        ocr_mean_confidence=round(packaged.ocr_mean_confidence, 2),
        ocr_needs_review=packaged.ocr_needs_review,
        captured_at=page.captured_at,
        flags=page.flags + clean.flags + packaged.ocr_flags,
    )


def _shown_source(page: IngestedPage, dossier: Dossier) -> str:
    """The scan's name relative to the dossier folder (as the manifest lists it)."""
    try:
        return str(page.source.relative_to(dossier.source_dir))
    except ValueError:
        return page.source.name


def document_entry(packaged: PackagedComponent, dossier: Dossier) -> DocumentEntry:
    """The manifest entry of a digitised component."""
    component = packaged.component
    signature = packaged.signature
    extraction = extraction_entries(packaged.fields, packaged.extraction_started_at)
    flags = [*component.flags, *signature.flags, *packaged.paper_flags]
    if packaged.ocr.review_flag:
        flags.append(ocr_review_flag())
    flags.extend(field_review_flags(packaged.fields))
    physical = len({p.physical_page for p in component.pages})
    return DocumentEntry(
        doc_ordinal=component.ordinal,
        component_name=component.name,
        type_name=_field_value(extraction, "type_name"),
        code_number=_field_value(extraction, "code_number"),
        code_notation=_field_value(extraction, "code_notation"),
        issued_date=_issued_date(extraction),
        organ_name=_field_value(extraction, "organ_name"),
        subject=_field_value(extraction, "subject"),
        signer_position=_field_value(extraction, "signer_position"),
        signer_full_name=_field_value(extraction, "signer_full_name"),
        page_amount=component.declared_pages or physical,
        image_count=len(component.pages),
        pages=tuple(_page_entry(p, _shown_source(p.page, dossier)) for p in packaged.pages),
        file=packaged.file,
        sha256=packaged.signed_sha256,
        size_bytes=packaged.signed_size,
        pdfa_profile="PDF/A-2u" if packaged.pdf.pdfa_part == "2u" else "PDF/A-2b",
        ocr=packaged.ocr,
        signature=signature_summary(signature),
        extraction=extraction,
        art9=packaged.art9,
        originals=packaged.originals,
        masters=packaged.masters,
        flags=tuple(flags),
    )


def not_digitised_entry(component: Component) -> DocumentEntry:
    """R9: a component listed with its reason and no file."""
    return DocumentEntry(
        doc_ordinal=component.ordinal,
        component_name=component.name,
        page_amount=component.declared_pages or 0,
        image_count=0,
        not_digitised_reason=component.not_digitised_reason,
        flags=component.flags,
    )


def document_needs_review(document: DocumentEntry) -> bool:
    return any(
        f.severity in REVIEW_SEVERITIES
        for f in (*document.flags, *(pf for page in document.pages for pf in page.flags))
    )


def build_manifest(
    dossier: Dossier,
    documents: Sequence[DocumentEntry],
    packaged: Sequence[PackagedComponent],
    identity: DigitiserIdentity,
    profile_name: str,
) -> Manifest:
    """The dossier's manifest; ``needs_review`` when any document or dossier flag asks for it."""
    flags = list(dossier.flags)
    if identity.is_demo:
        flags.append(
            make_flag(
                "demo_signer",
                "signed with the built-in DEMO identity: not valid for real use",
                Severity.WARNING,
            )
        )
    review = any(document_needs_review(doc) for doc in documents) or any(
        f.severity in REVIEW_SEVERITIES for f in flags
    )
    # R25: each piece of revocation evidence once, in the order the signatures used it.
    evidence = {
        item.sha256: item for result in packaged for item in result.signature.revocation_evidence
    }
    return Manifest(
        dossier_code=dossier.code,
        dossier_code_format=dossier.code_format,
        procedure_code=dossier.procedure_code,
        receiving_organ_id=dossier.receiving_organ_id,
        received_at=dossier.received_at,
        digitiser=DigitiserInfo(
            full_name=identity.full_name,
            cert_serial=identity.cert_serial,
            cert_issuer=identity.cert_issuer,
            cert_sha256=identity.cert_sha256,
            is_demo=identity.is_demo,
        ),
        profile=profile_name,
        documents=tuple(documents),
        revocation_evidence=tuple(evidence.values()),
        flags=tuple(flags),
        needs_review=review,
        created_at=datetime.now(VN_TZ).replace(microsecond=0),
        tool_version=__version__,
    )


__all__ = [
    "PackagedComponent",
    "PackagedPage",
    "build_manifest",
    "document_entry",
    "document_needs_review",
    "extraction_entries",
    "field_review_flags",
    "header_fields",
    "not_digitised_entry",
]
