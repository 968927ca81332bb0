"""The content of a dossier report, as data: what the HTML shows and ``--json`` gives other
systems (the same model; the JSON carries no pictures, the HTML embeds them).

Built from a bundle folder and its verification report: dossier codes, digitiser, signatures,
the verify verdict, reviews and what still needs a person (``review.state.open_items``, in
plain words), then per component its pages (flags in plain words, regions to outline, page
decisions) and its fields (value, confidence, where read, who confirmed or changed it, the
Art. 9 block when the manifest has one). Times stay ``datetime`` here (ISO 8601 with offset in
JSON); the HTML shows them in Vietnam time, Vietnamese form.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from digitize.manifest import (
    DigitiserInfo,
    DocumentEntry,
    ExtractionEntry,
    Manifest,
    ReviewRecord,
)
from digitize.models import BBox, Flag, FrozenModel
from digitize.review.art9 import (
    CATALOGUE_VALUES,
    config_gaps,
    document_acceptances,
    fixable_gaps,
    gap_text,
    value_kind,
)
from digitize.review.save import read_manifest
from digitize.review.state import OpenItem, document_art9, open_items, page_decisions
from digitize.review.texts import (
    doubt_text,
    field_label,
    flag_text,
    severity_text,
    source_text,
    ui,
)
from digitize.util import vn_now

if TYPE_CHECKING:
    from digitize.extract.catalogue import Catalogue
    from digitize.verify import VerifyReport

REPORT_VERSION = "1"

# Flags whose place on the page is known, and the region outlined for them.
_BORDER_FLAGS = ("content_at_border",)
_PAGE_FLAGS = ("blank_page", "duplicate_page", "near_duplicate_page")
_STAMP_FLAGS = ("stamp_overlaps_text",)


class ReportFlag(FrozenModel):
    code: str
    severity: str
    severity_text: str
    page: int | None = None
    text: str  # plain words (Vietnamese, or English with lang="en")
    detail: str  # the manifest's technical message


class ReportRegion(FrozenModel):
    kind: Literal["field_review", "field_changed", "border", "stamp", "page"]
    label: str
    bbox: BBox | None = None  # page-image pixels; None: the whole page


class ReportPage(FrozenModel):
    index: int
    physical_page: int
    variant: str
    width_px: int
    height_px: int
    dpi: float
    ocr_mean_confidence: float | None = None
    flags: tuple[ReportFlag, ...] = ()
    regions: tuple[ReportRegion, ...] = ()
    decision: Literal["accept", "rescan"] | None = None
    decision_reason: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None


class ReportField(FrozenModel):
    name: str  # extraction field name or "art9.<key>"
    label: str
    value: str | None
    page: int | None = None
    bbox: BBox | None = None
    confidence: float | None = None
    source: str = "ocr"
    needs_review: bool = False
    state: Literal["read", "needs_review", "confirmed", "corrected", "manual"]
    machine_value: str | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    # Art. 9 values: the kind of value (its format rule), whether a person may change it,
    # who entered a manual value, and why the machine doubted it (plain words).
    kind: str | None = None
    editable: bool = True
    source_text: str | None = None
    entered_by: str | None = None
    doubts: str | None = None
    note: str | None = None


class ReportSignature(FrozenModel):
    pades_level: str
    signed_at: datetime
    scan_time_shown: datetime
    tsa_time: datetime | None = None


class ReportDocument(FrozenModel):
    ordinal: int
    component_name: str
    file: str | None
    sha256: str | None = None
    image_count: int
    page_amount: int
    pdfa_profile: str | None = None
    not_digitised_reason: str | None = None
    ocr_mean_confidence: float | None = None
    signature: ReportSignature | None = None
    flags: tuple[ReportFlag, ...] = ()
    pages: tuple[ReportPage, ...] = ()
    fields: tuple[ReportField, ...] = ()
    art9: tuple[ReportField, ...] = ()
    originals: tuple[str, ...] = ()
    # Art. 9: the paper type, the digitisation-result code, and what only the configuration
    # can give (plain words); a knowing acceptance without a result code, when there is one.
    paper_type_key: str | None = None
    result_code: str | None = None
    config_gaps: tuple[str, ...] = ()
    owner_unsettled: bool = False  # the result code also waits for the owner's ID
    accepted_by: str | None = None
    accepted_at: datetime | None = None
    accepted_reason: str | None = None


class ReportCheck(FrozenModel):
    name: str
    ok: bool
    message: str


class DossierReport(FrozenModel):
    report_version: str = REPORT_VERSION
    lang: Literal["vi", "en"]
    generated_at: datetime
    bundle: str  # folder name
    dossier_code: str
    dossier_code_format: str
    procedure_code: str | None = None
    receiving_organ_id: str | None = None
    received_at: datetime | None = None
    created_at: datetime
    profile: str
    tool_version: str
    digitiser: DigitiserInfo
    verified: bool | None  # None: not verified for this report
    verify_exit_code: int | None = None
    checks: tuple[ReportCheck, ...] = ()
    reviews: tuple[ReviewRecord, ...] = ()
    needs_review: bool
    open_reasons: tuple[str, ...] = ()  # why it still needs a person, in plain words
    flags: tuple[ReportFlag, ...] = ()
    documents: tuple[ReportDocument, ...]


def build_report(bundle: Path, verify_report: VerifyReport | None, lang: str = "vi",
                 manifest: Manifest | None = None, catalogue: Catalogue | None = None
                 ) -> DossierReport:
    """The report of a bundle folder; ``verify_report`` from ``verify_bundle`` (the caller's
    trust decision), or None to leave verification out. ``catalogue`` gives the kinds of the
    Art. 9 template fields (default: the starter catalogue)."""
    if manifest is None:
        manifest, _ = read_manifest(bundle)
    language: Literal["vi", "en"] = "en" if lang == "en" else "vi"
    items = open_items(manifest)
    checks = tuple(ReportCheck(name=c.name, ok=c.ok, message=c.message)
                   for c in (verify_report.checks if verify_report else ()))
    return DossierReport(
        lang=language,
        generated_at=vn_now().replace(microsecond=0),
        bundle=bundle.name,
        dossier_code=manifest.dossier_code,
        dossier_code_format=manifest.dossier_code_format,
        procedure_code=manifest.procedure_code,
        receiving_organ_id=manifest.receiving_organ_id,
        received_at=manifest.received_at,
        created_at=manifest.created_at,
        profile=manifest.profile,
        tool_version=manifest.tool_version,
        digitiser=manifest.digitiser,
        verified=verify_report.ok if verify_report else None,
        verify_exit_code=verify_report.exit_code if verify_report else None,
        checks=checks,
        reviews=manifest.reviews,
        needs_review=bool(items),
        open_reasons=tuple(open_reason_text(item, language) for item in items),
        flags=tuple(_flag(f, language) for f in manifest.flags),
        documents=tuple(_document(bundle, manifest, doc, language, catalogue)
                        for doc in manifest.documents),
    )


def open_reason_text(item: OpenItem, lang: str) -> str:
    file = item.file or ("hồ sơ" if lang != "en" else "dossier")
    page = ui("page", lang, page=item.page) if item.page else ""
    if item.kind == "field":
        return ui("open_field", lang, field=field_label(item.field or "", lang), file=file) + (
            f" ({page.strip()})" if page else "")
    if item.kind == "rescan":
        return ui("open_rescan", lang, file=file, page=item.page, reason=item.reason or "")
    if item.kind == "config":
        return ui("open_config", lang, file=file,
                  gaps="; ".join(gap_text(g, lang) for g in item.gaps))
    assert item.flag is not None
    return ui("open_flag", lang, file=file, page=page, message=flag_text(item.flag, lang))


def _flag(flag: Flag, lang: str) -> ReportFlag:
    return ReportFlag(code=flag.code, severity=flag.severity.value,
                      severity_text=severity_text(flag.severity.value, lang), page=flag.page,
                      text=flag_text(flag, lang), detail=flag.message)


def _document(bundle: Path, manifest: Manifest, doc: DocumentEntry, lang: str,
              catalogue: Catalogue | None) -> ReportDocument:
    fields = tuple(_entry_field(e, lang) for e in doc.extraction)
    art9 = tuple(_art9_field(name, item, manifest, doc, lang, catalogue)
                 for name, item in document_art9(doc))
    acceptance = document_acceptances(manifest).get(doc.file or "")
    decisions = page_decisions(manifest)
    stamp_box = None
    if doc.file and doc.pages and any(f.code in _STAMP_FLAGS for f in doc.flags):
        from digitize.review.render import signature_box_px

        stamp_box = signature_box_px(bundle / doc.file, doc.pages[0].width_px)
    pages = []
    for page in doc.pages:
        page_flags = [*page.flags, *(f for f in doc.flags if f.page == page.page_index)]
        regions = [ReportRegion(kind="field_review" if f.needs_review else "field_changed",
                                label=f.label, bbox=f.bbox)
                   for f in (*fields, *art9)
                   if f.page == page.page_index and f.bbox is not None
                   and (f.needs_review or f.state in ("corrected", "manual"))]
        for flag in page_flags:
            text = flag_text(flag, lang)
            if flag.code in _BORDER_FLAGS:
                regions.append(ReportRegion(kind="border", label=text))
            elif flag.code in _PAGE_FLAGS:
                regions.append(ReportRegion(kind="page", label=text))
            elif flag.code in _STAMP_FLAGS and stamp_box is not None and page.page_index == 1:
                regions.append(ReportRegion(kind="stamp", label=text, bbox=stamp_box))
        decision = decisions.get((doc.file or "", page.page_index))
        pages.append(ReportPage(
            index=page.page_index, physical_page=page.physical_page, variant=page.variant.value,
            width_px=page.width_px, height_px=page.height_px, dpi=page.dpi,
            ocr_mean_confidence=page.ocr_mean_confidence,
            flags=tuple(_flag(f, lang) for f in page_flags), regions=tuple(regions),
            decision=decision.decision if decision else None,
            decision_reason=decision.reason if decision else None,
            decided_by=decision.reviewer if decision else None,
            decided_at=datetime.fromisoformat(decision.reviewed_at) if decision else None,
        ))
    signature = None
    if doc.signature is not None:
        signature = ReportSignature(pades_level=doc.signature.pades_level.value,
                                    signed_at=doc.signature.signed_at,
                                    scan_time_shown=doc.signature.scan_time_shown,
                                    tsa_time=doc.signature.tsa_time)
    return ReportDocument(
        ordinal=doc.doc_ordinal, component_name=doc.component_name, file=doc.file,
        sha256=doc.sha256, image_count=doc.image_count, page_amount=doc.page_amount,
        pdfa_profile=doc.pdfa_profile,
        not_digitised_reason=doc.not_digitised_reason.value if doc.not_digitised_reason else None,
        ocr_mean_confidence=doc.ocr.mean_confidence if doc.ocr else None,
        signature=signature,
        flags=tuple(_flag(f, lang) for f in doc.flags if f.page is None),
        pages=tuple(pages), fields=fields, art9=art9,
        originals=tuple(o.file for o in (*doc.originals, *doc.masters)),
        paper_type_key=doc.art9.paper_type_key if doc.art9 else None,
        result_code=doc.digitization_result_code,
        config_gaps=tuple(gap_text(g, lang) for g in config_gaps(doc)),
        owner_unsettled=bool(fixable_gaps(doc)),
        accepted_by=acceptance.reviewer if acceptance else None,
        accepted_at=acceptance.reviewed_at if acceptance else None,
        accepted_reason=acceptance.change.reason if acceptance else None,
    )


def _state(needs: bool, source: str, machine: str | None, by: str | None) -> str:
    if needs:
        return "needs_review"
    if source == "manual":
        return "corrected" if machine is not None else "manual"
    return "confirmed" if by is not None else "read"


def _entry_field(entry: ExtractionEntry, lang: str) -> ReportField:
    return ReportField(
        name=entry.field, label=field_label(entry.field, lang), value=entry.value,
        page=entry.page, bbox=entry.bbox, confidence=entry.confidence, source=entry.source,
        needs_review=entry.needs_review,
        state=_state(entry.needs_review, entry.source, entry.machine_value,  # type: ignore[arg-type]
                     entry.reviewed_by),
        machine_value=entry.machine_value, reviewed_by=entry.reviewed_by,
        reviewed_at=entry.reviewed_at,
    )


def _art9_field(name: str, item: dict[str, Any], manifest: Manifest, doc: DocumentEntry,
                lang: str, catalogue: Catalogue | None) -> ReportField:
    """An Art. 9 value; who confirmed or entered it comes from the review records."""
    file = doc.file or ""
    by = at = machine = None
    for record in manifest.reviews:
        for change in record.changes:
            if change.file == file and change.field == name:
                by, at = record.reviewer.full_name, record.reviewed_at
                machine = change.machine_value if change.action == "correct" else machine
    value = item.get("value")
    raw_box = item.get("bbox") or item.get("box")
    box = tuple(int(v) for v in raw_box) if raw_box and len(raw_box) == 4 else None
    source = str(item.get("source") or "ocr")
    needs = bool(item.get("needs_review"))
    doubts = [str(d) for d in item.get("doubts") or ()]
    return ReportField(
        name=name, label=field_label(name, lang), value=None if value is None else str(value),
        page=item.get("page"), bbox=box, confidence=item.get("confidence"), source=source,
        needs_review=needs, state=_state(needs, source, machine, by),  # type: ignore[arg-type]
        machine_value=machine, reviewed_by=by, reviewed_at=at,
        kind=value_kind(doc, name, catalogue), editable=name not in CATALOGUE_VALUES,
        source_text=source_text(source, lang), entered_by=item.get("entered_by"),
        doubts=doubt_text(doubts, lang) if needs and doubts else None, note=item.get("note"),
    )
