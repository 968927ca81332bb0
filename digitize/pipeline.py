"""Wiring of the stages for one dossier: the only module that knows the whole pipeline.

ingest → (per page, in a bounded worker pool) clean → ocr → image for the PDF
       → (per component) pdfa → sign → extract → bundle

Pages are the unit of parallel work, the dossier is the unit of output: the bundle appears
under its final name only when complete (see ``digitize.bundle``). Workers receive small
models and return small models plus the encoded page image; they never share state.
The library installs no signal handlers and prints nothing: progress is reported through
``on_event`` callbacks as ``Event`` models.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from digitize import __version__
from digitize.bundle import (
    BundleWriter,
    bundle_file_name,
    master_file_name,
    original_file_name,
    safe_bundle_name,
)
from digitize.clean import CleanSettings, clean_page, find_qr_codes
from digitize.errors import DigitizeError, OcrError, PageWorkerDiedError, QualityError
from digitize.extract import DossierFacts, PaperContext, extract_paper, finish_dossier
from digitize.extract.handwriting import hand_ink_words
from digitize.ingest import IngestSettings, ingest_dossier, load_page_pixels, read_page_encoded
from digitize.manifest import (
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
    BBox,
    CleanRecord,
    ColourMode,
    Component,
    Dossier,
    EncodedImage,
    Flag,
    FrozenModel,
    IngestedPage,
    PageOcr,
    PdfResult,
    Severity,
    SignatureRecord,
    SourceFile,
)
from digitize.ocr import OcrSettings, ocr_page
from digitize.pdfa import PdfaSettings, PdfMetadata, PdfPage, build_component_pdf, encode_pixels
from digitize.profiles import Profile, load_profile
from digitize.sign import DigitiserSigner, open_signer
from digitize.util import sha256_file, user_data_dir

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

EventKind = Literal[
    "dossier_started",
    "page_done",
    "component_packaged",
    "component_signed",
    "bundle_written",
    "notice",
]


class Event(FrozenModel):
    kind: EventKind
    dossier: str
    component: int | None = None
    page: int | None = None
    done_pages: int = 0
    total_pages: int = 0
    message: str = ""


EventCallback = Callable[[Event], None]


class PageWork(FrozenModel):
    """What a worker returns for one page."""

    component: int
    page: int
    clean: CleanRecord
    ocr: PageOcr
    image: EncodedImage
    colour_mode: ColourMode
    qr_boxes: tuple[BBox, ...] = ()  # page 1 only: QR codes where the note goes (R20)
    hand_words: tuple[int, ...] = ()  # indexes into ocr.words written in hand ink (Art. 9)


class ComponentResult(FrozenModel):
    ordinal: int
    name: str
    file: str | None  # bundle-relative file name; None when not digitised (R9)
    pages: int
    mean_confidence: float | None
    needs_review: bool
    pdf: PdfResult | None = None
    signature: SignatureRecord | None = None


class DossierResult(FrozenModel):
    dossier_code: str
    bundle_path: Path
    zip_path: Path | None = None
    manifest: Manifest
    components: tuple[ComponentResult, ...]
    pages: int
    mean_confidence: float | None
    needs_review: bool
    flags: tuple[Flag, ...] = ()
    signed_with_demo_identity: bool
    seconds: float
    timings: dict[str, float] = Field(default_factory=dict)


# --- per-page work (runs in worker processes) -----------------------------------------------
def _init_worker() -> None:
    # One tesseract thread per worker: parallelism comes from the pool (facts.md: 4x faster).
    os.environ["OMP_THREAD_LIMIT"] = "1"
    # Ctrl-C belongs to the parent: a terminal sends SIGINT to the whole process group, and a
    # worker dying of it would break the pool under the dossier the parent is finishing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A parent killed with SIGKILL cannot shut its pool down; workers notice the orphaning and
    # leave instead of waiting forever on a queue nobody will write to.
    parent = os.getppid()

    def watch_parent() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()


def process_page(
    page: IngestedPage,
    component: int,
    ingest_settings: IngestSettings,
    clean_settings: CleanSettings,
    ocr_settings: OcrSettings,
    pdfa_settings: PdfaSettings,
) -> PageWork:
    """Decode, clean, OCR one page and produce the image that goes into the PDF."""
    pixels = load_page_pixels(page, ingest_settings)
    cleaned, record = clean_page(pixels, page.qa.dpi, clean_settings)
    result = ocr_page(cleaned, page.qa.dpi, ocr_settings)
    image: EncodedImage | None = None
    if cleaned is pixels:
        # Untouched by clean-up (no turn, no deskew, no crop): the scan bytes go in as they are.
        image = read_page_encoded(page)
    if image is None:
        image = encode_pixels(cleaned, page.qa.colour_mode, pdfa_settings)
    return PageWork(
        component=component,
        page=page.index,
        clean=record,
        ocr=result,
        image=image,
        colour_mode=page.qa.colour_mode,
        qr_boxes=find_qr_codes(cleaned, page.qa.dpi) if page.index == 1 else (),
        hand_words=hand_ink_words(cleaned, result),
    )


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def page_pool(workers: int = 0) -> Iterator[Executor | None]:
    """A bounded pool of page workers; ``None`` (in-process) for a single worker.

    ``spawn`` keeps workers independent of the caller's threads and locks (fork in a threaded
    process can deadlock), which is what makes ``run_dossier`` safe to call from threads.
    """
    count = workers or usable_cores()
    if count <= 1:
        yield None
        return
    with new_process_pool(count) as pool:
        yield pool


def new_process_pool(count: int) -> ProcessPoolExecutor:
    """``count`` spawn-started page workers (see ``page_pool`` for why spawn)."""
    return ProcessPoolExecutor(
        max_workers=count, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
    )


def _iter_page_works(
    dossier: Dossier,
    profile: Profile,
    executor: Executor | None,
    window: int,
) -> Iterator[PageWork]:
    """Page results in completion order, with at most ``window`` pages in flight.

    Submitting lazily in component order keeps memory bounded (finished components are packaged
    and dropped while later pages are still being read) and lets early components be signed
    while the pool works on the rest.
    """
    args = (profile.ingest, profile.clean, profile.ocr, profile.pdfa)
    jobs = iter(
        [
            (component, page)
            for component in dossier.components
            if component.not_digitised_reason is None
            for page in component.pages
        ]
    )
    if executor is None:
        for component, page in jobs:
            yield process_page(page, component.ordinal, *args)
        return
    in_flight: dict[Future[PageWork], int] = {}

    def submit_next() -> None:
        job = next(jobs, None)
        if job is not None:
            component, page = job
            in_flight[executor.submit(process_page, page, component.ordinal, *args)] = page.index

    try:
        for _ in range(max(1, window)):
            submit_next()
        while in_flight:
            done, _pending = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                del in_flight[future]
                work = future.result()
                submit_next()
                yield work
    except BrokenProcessPool:
        # A dead worker breaks the whole pool, whether seen at submit or at result time.
        raise PageWorkerDiedError(
            "a page worker stopped abruptly (killed, or out of memory)",
            path=dossier.source_dir,
            hint="run again; with --workers 1 if memory is short",
        ) from None
    finally:
        for future in in_flight:
            future.cancel()


# --- per-component work (parent process) ---------------------------------------------------
def _flag(
    code: str, message: str, severity: Severity = Severity.REVIEW, page: int | None = None
) -> Flag:
    return Flag(code=code, severity=severity, message=message, page=page)


def _stamp_area_obstacles(
    ocr: PageOcr, qr_boxes: tuple[BBox, ...]
) -> tuple[tuple[float, float, float, float], ...]:
    """Words and QR codes of page 1 in PDF points (origin bottom-left), for the R20 check."""
    scale = 72.0 / ocr.dpi
    height_pt = ocr.height_px * scale
    boxes = []
    for x0, y0, x1, y1 in (*(word.bbox for word in ocr.words), *qr_boxes):
        boxes.append((x0 * scale, height_pt - y1 * scale, x1 * scale, height_pt - y0 * scale))
    return tuple(boxes)


def _scan_time(component: Component) -> datetime:
    """R21: the capture time of page 1 (scanner metadata, else the file's time)."""
    first = component.pages[0]
    when = first.captured_at or datetime.now(VN_TZ)
    if when.tzinfo is None:
        when = when.replace(tzinfo=VN_TZ)
    return when.astimezone(VN_TZ).replace(microsecond=0)


def _page_entries(
    component: Component, works: Sequence[PageWork], pdf: PdfResult, source_root: Path
) -> tuple[PageEntry, ...]:
    entries = []
    for page, work, size, passthrough in zip(
        component.pages, works, pdf.page_bytes, pdf.passthrough_pages, strict=True
    ):
        try:
            source_name = str(page.source.relative_to(source_root))
        except ValueError:
            source_name = page.source.name
        entries.append(
            PageEntry(
                page_index=page.index,
                physical_page=page.physical_page,
                variant=page.variant,
                source_file=_nfc(source_name),
                source_frame=page.frame,
                source_sha256=page.source_sha256,
                width_px=work.clean.width_px,
                height_px=work.clean.height_px,
                dpi=round(page.qa.dpi, 2),
                dpi_source=page.qa.dpi_source,
                colour_mode=page.qa.colour_mode,
                orientation_deg=work.clean.orientation_deg,
                skew_deg=round(work.clean.skew_deg, 3),
                rotation_applied_deg=round(work.clean.rotation_applied_deg, 3),
                passthrough=passthrough,
                pdf_bytes=size,
                ocr_mean_confidence=round(work.ocr.mean_confidence, 2),
                ocr_needs_review=work.ocr.needs_review,
                captured_at=page.captured_at,
                flags=page.flags + work.clean.flags + work.ocr.flags,
            )
        )
    return tuple(entries)


def _nfc(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFC", text)


def _field_value(fields: Sequence[ExtractionEntry], name: str) -> str | None:
    for entry in fields:
        if entry.field == name and not entry.needs_review:
            return entry.value
    return None


def _issued_date(fields: Sequence[ExtractionEntry]):  # type: ignore[no-untyped-def]
    from datetime import date

    value = _field_value(fields, "issued_date")
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


RESCAN_FLAGS = {"pdf_rescanned", "pdf_encrypted"}


def _carry_file(dossier: Dossier, source: SourceFile, target: Path, reason: str) -> OriginalEntry:
    """Copy a received file into the bundle unchanged, checking it is what was ingested."""
    shutil.copyfile(source.path, target)
    digest = sha256_file(target)
    if digest != source.sha256:  # R8: the copy must be the file that was ingested
        raise QualityError(
            "the file changed while the dossier was being processed", path=source.path
        )
    try:
        shown = str(source.path.relative_to(dossier.source_dir))
    except ValueError:
        shown = source.path.name
    return OriginalEntry(
        file=target.name,
        source_file=_nfc(shown),
        sha256=digest,
        size_bytes=target.stat().st_size,
        reason=reason,
    )


def _keep_originals(
    dossier: Dossier, component: Component, writer: BundleWriter
) -> tuple[OriginalEntry, ...]:
    """Received PDFs that were not fresh scans travel unchanged beside the new copy, so their
    own signatures stay verifiable (issue 10: never drop or silently invalidate them)."""
    reasons = [f.message for f in component.flags if f.code in RESCAN_FLAGS]
    if not reasons:
        return ()
    pdfs = [s for s in component.sources if s.format == "pdf"]
    return tuple(
        _carry_file(
            dossier,
            source,
            writer.path(original_file_name(dossier.code, component.ordinal, index)),
            "; ".join(reasons),
        )
        for index, source in enumerate(pdfs, 1)
    )


def _keep_masters(
    dossier: Dossier, component: Component, writer: BundleWriter
) -> tuple[OriginalEntry, ...]:
    """R14: the scan files themselves, hashed, outside the signed PDF."""
    return tuple(
        _carry_file(
            dossier,
            source,
            writer.path(
                master_file_name(dossier.code, component.ordinal, index, source.path.suffix)
            ),
            "master scan (R14)",
        )
        for index, source in enumerate(component.sources, 1)
    )


def _reverify_sources(dossier: Dossier) -> None:
    """R8: the scans must still be what was ingested when the bundle closes."""
    for component in dossier.components:
        for source in component.sources:
            if sha256_file(source.path) != source.sha256:
                raise QualityError(
                    "the scan changed while the dossier was being processed; run it again",
                    path=source.path,
                )


def run_dossier(
    source: str | Path,
    out_dir: str | Path,
    *,
    profile: Profile | None = None,
    signer: DigitiserSigner | None = None,
    on_event: EventCallback | None = None,
    executor: Executor | None = None,
    overwrite: bool = False,
    data_dir: Path | None = None,
) -> DossierResult:
    """Digitise one dossier folder into a signed bundle under ``out_dir``.

    Thread-safe and re-entrant: no global state; each call has its own staging folder and,
    unless ``executor`` is given (batch shares one), its own bounded worker pool.
    """
    started = time.monotonic()
    timings: dict[str, float] = {}
    profile = profile or load_profile()
    source = Path(source)
    out_dir = Path(out_dir)

    t = time.monotonic()
    dossier = ingest_dossier(source, profile.ingest)
    timings["ingest"] = time.monotonic() - t
    name = safe_bundle_name(dossier.code)

    def emit(kind: EventKind, **fields: object) -> None:
        if on_event is not None:
            on_event(Event(kind=kind, dossier=name, **fields))  # type: ignore[arg-type]

    emit(
        "dossier_started",
        total_pages=_pages_to_digitise(dossier),
        message=f"{len(dossier.components)} components",
    )
    for ignored in dossier.ignored_files:
        emit("notice", message=f"ignored (not a scan): {ignored}")

    own_signer = signer is None
    if signer is None:
        signer = open_signer(profile.sign, data_dir or user_data_dir())
    try:
        with BundleWriter(
            out_dir, name, overwrite=overwrite, zip_copy=profile.bundle.zip
        ) as writer:
            t = time.monotonic()
            if executor is not None:
                documents, components = _process_and_package(
                    dossier, profile, executor, 2 * usable_cores(), signer, writer, emit, timings
                )
            else:
                # No more workers than pages: each spawned worker costs its start-up.
                workers = max(
                    1, min(profile.pipeline.workers or usable_cores(), dossier.page_count)
                )
                with page_pool(workers) as pool:
                    documents, components = _process_and_package(
                        dossier, profile, pool, 2 * workers, signer, writer, emit, timings
                    )
            timings["pages"] = time.monotonic() - t
            _reverify_sources(dossier)
            if profile.extract.enabled:  # cross-paper checks and result codes (Art. 7, 9)
                facts = DossierFacts(dossier.code, dossier.procedure_code)
                documents = finish_dossier(documents, facts, profile.extract)
            manifest = _build_manifest(dossier, documents, profile, signer, components)
            if profile.pipeline.strict and manifest.needs_review:
                raise QualityError(
                    "pages or fields need review and the profile is strict: no bundle written",
                    path=source,
                    hint="see `digitize ingest`/`digitize ocr` for the flags",
                )
            writer.write_manifest(manifest, signer)
            bundle_path, zip_path = writer.commit()
    finally:
        if own_signer:
            signer.close()
    emit("bundle_written", message=str(bundle_path))

    confidences = [c.mean_confidence for c in components if c.mean_confidence is not None]
    return DossierResult(
        dossier_code=dossier.code,
        bundle_path=bundle_path,
        zip_path=zip_path,
        manifest=manifest,
        components=tuple(components),
        pages=dossier.page_count,
        mean_confidence=(sum(confidences) / len(confidences)) if confidences else None,
        needs_review=manifest.needs_review,
        flags=manifest.flags,
        signed_with_demo_identity=signer.identity.is_demo,
        seconds=time.monotonic() - started,
        timings=timings,
    )


def _pages_to_digitise(dossier: Dossier) -> int:
    return sum(len(c.pages) for c in dossier.components if c.not_digitised_reason is None)


def _process_and_package(
    dossier: Dossier,
    profile: Profile,
    executor: Executor | None,
    window: int,
    signer: DigitiserSigner,
    writer: BundleWriter,
    emit: Callable[..., None],
    timings: dict[str, float],
) -> tuple[list[DocumentEntry], list[ComponentResult]]:
    """Run the pages through the pool; package each component, in order, once its pages are
    all back (its page images are dropped then)."""
    documents: list[DocumentEntry] = []
    results: list[ComponentResult] = []
    works: dict[tuple[int, int], PageWork] = {}
    waiting = list(dossier.components)
    done_pages = 0

    def package_ready() -> None:
        def ready(component: Component) -> bool:
            return component.not_digitised_reason is not None or all(
                (component.ordinal, p.index) in works for p in component.pages
            )

        while waiting and ready(waiting[0]):
            component = waiting.pop(0)
            docs, comps = _package_components(
                dossier, [component], works, profile, signer, writer, emit, timings
            )
            documents.extend(docs)
            results.extend(comps)
            for page in component.pages:
                works.pop((component.ordinal, page.index), None)

    package_ready()  # leading components that were not digitised (R9)
    for work in _iter_page_works(dossier, profile, executor, window):
        works[(work.component, work.page)] = work
        done_pages += 1
        emit(
            "page_done",
            component=work.component,
            page=work.page,
            done_pages=done_pages,
            total_pages=_pages_to_digitise(dossier),
        )
        package_ready()
    package_ready()
    if waiting:  # pragma: no cover - would be a bug: every page came back or raised
        raise DigitizeError(f"component {waiting[0].ordinal} was never packaged")
    return documents, results


def _package_components(
    dossier: Dossier,
    ready: Sequence[Component],
    works: dict[tuple[int, int], PageWork],
    profile: Profile,
    signer: DigitiserSigner,
    writer: BundleWriter,
    emit: Callable[..., None],
    timings: dict[str, float],
) -> tuple[list[DocumentEntry], list[ComponentResult]]:
    documents: list[DocumentEntry] = []
    results: list[ComponentResult] = []
    timings.setdefault("pdfa", 0.0)
    timings.setdefault("sign", 0.0)
    timings.setdefault("extract", 0.0)
    for component in ready:
        physical = len({p.physical_page for p in component.pages})
        if component.not_digitised_reason is not None:
            documents.append(
                DocumentEntry(
                    doc_ordinal=component.ordinal,
                    component_name=component.name,
                    page_amount=component.declared_pages or 0,
                    image_count=0,
                    not_digitised_reason=component.not_digitised_reason,
                    flags=component.flags,
                )
            )
            results.append(
                ComponentResult(
                    ordinal=component.ordinal,
                    name=component.name,
                    file=None,
                    pages=0,
                    mean_confidence=None,
                    needs_review=False,
                )
            )
            continue
        page_works = [works[(component.ordinal, p.index)] for p in component.pages]
        ocrs = [w.ocr for w in page_works]
        if profile.ocr.strict:
            for page, ocr in zip(component.pages, ocrs, strict=True):
                if any(f.code == "ocr_failed" for f in ocr.flags):
                    raise OcrError(
                        "OCR failed and the profile is strict", path=page.source, page=page.index
                    )
        file_name = bundle_file_name(dossier.code, component.ordinal)
        meta = PdfMetadata(
            title=f"{dossier.code} — {component.name}",
            component_name=component.name,
            dossier_code=dossier.code,
            procedure_code=dossier.procedure_code,
            digitiser=signer.identity.full_name,
            created_at=datetime.now(VN_TZ).replace(microsecond=0),
        )
        pdf_pages = [
            PdfPage(image=w.image, dpi_x=p.qa.dpi_x, dpi_y=p.qa.dpi_y, ocr=w.ocr)
            for p, w in zip(component.pages, page_works, strict=True)
        ]
        t = time.monotonic()
        unsigned = writer.work_path(f"{component.ordinal:03d}.unsigned.pdf")
        pdf = build_component_pdf(pdf_pages, meta, unsigned, profile.pdfa)
        timings["pdfa"] += time.monotonic() - t
        emit("component_packaged", component=component.ordinal)

        t = time.monotonic()
        signed_path = writer.path(file_name)
        signature = signer.sign_pdf(
            unsigned,
            signed_path,
            scan_time=_scan_time(component),
            text_boxes_pt=_stamp_area_obstacles(ocrs[0], page_works[0].qr_boxes),
        )
        unsigned.unlink()
        timings["sign"] += time.monotonic() - t
        emit("component_signed", component=component.ordinal, message=file_name)

        # R1: extraction runs on the signed copy's content, after the signature exists.
        t = time.monotonic()
        extraction_started = datetime.now(VN_TZ)
        paper = (
            extract_paper(
                ocrs,
                profile.extract,
                context=PaperContext(
                    component.paper_type, tuple(frozenset(w.hand_words) for w in page_works)
                ),
            )
            if profile.extract.enabled
            else None
        )
        fields = paper.header if paper is not None else ()
        timings["extract"] += time.monotonic() - t
        extraction = tuple(
            ExtractionEntry(
                field=f.name,
                value=f.value,
                page=f.page,
                bbox=f.bbox,
                confidence=round(f.confidence, 3),
                source=f.source,
                needs_review=f.needs_review,
                started_at=extraction_started,
            )
            for f in fields
        )
        mean_conf = sum(o.mean_confidence for o in ocrs) / len(ocrs)
        ocr_review = any(o.needs_review for o in ocrs)
        flags = list(component.flags) + list(signature.flags) + list(paper.flags if paper else ())
        if ocr_review:
            flags.append(
                _flag(
                    "ocr_review",
                    "one or more pages are under the OCR confidence "
                    "threshold: check the text layer (R15)",
                )
            )
        signed_sha = sha256_file(signed_path)
        documents.append(
            DocumentEntry(
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
                pages=_page_entries(component, page_works, pdf, dossier.source_dir),
                file=file_name,
                sha256=signed_sha,
                size_bytes=signed_path.stat().st_size,
                pdfa_profile="PDF/A-2u" if pdf.pdfa_part == "2u" else "PDF/A-2b",
                ocr=OcrSummary(
                    engine=ocrs[0].engine,
                    version=ocrs[0].engine_version,
                    language=ocrs[0].language,
                    mean_confidence=round(mean_conf, 2),
                    review_flag=ocr_review,
                ),
                signature=SignatureSummary(
                    field_name=signature.field_name,
                    signed_at=signature.signed_at,
                    scan_time_shown=signature.scan_time_shown,
                    pades_level=signature.pades_level,
                    digest_alg=signature.digest_algorithm,
                    signature_alg=signature.signature_algorithm,
                    tsa_time=signature.tsa_time,
                    appearance_shrunk=signature.appearance_shrunk,
                    revocation_evidence=tuple(e.sha256 for e in signature.revocation_evidence),
                ),
                extraction=extraction,
                art9=paper.art9 if paper is not None else None,
                originals=_keep_originals(dossier, component, writer),
                masters=(
                    _keep_masters(dossier, component, writer) if profile.bundle.keep_masters else ()
                ),
                flags=tuple(flags),
            )
        )
        results.append(
            ComponentResult(
                ordinal=component.ordinal,
                name=component.name,
                file=file_name,
                pages=len(component.pages),
                mean_confidence=round(mean_conf, 2),
                needs_review=ocr_review or any(f.severity is Severity.REVIEW for f in flags),
                pdf=pdf,
                signature=signature,
            )
        )
    return documents, results


def _build_manifest(
    dossier: Dossier,
    documents: list[DocumentEntry],
    profile: Profile,
    signer: DigitiserSigner,
    components: list[ComponentResult],
) -> Manifest:
    identity = signer.identity
    flags = list(dossier.flags)
    if identity.is_demo:
        flags.append(
            _flag(
                "demo_signer",
                "signed with the built-in DEMO identity: not valid for real use",
                Severity.WARNING,
            )
        )
    review = any(
        f.severity in (Severity.REVIEW, Severity.ERROR)
        for doc in documents
        for f in (*doc.flags, *(pf for page in doc.pages for pf in page.flags))
    ) or any(f.severity in (Severity.REVIEW, Severity.ERROR) for f in flags)
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
        profile=profile.name,
        documents=tuple(documents),
        revocation_evidence=tuple(
            {
                evidence.sha256: evidence
                for result in components
                if result.signature is not None
                for evidence in result.signature.revocation_evidence
            }.values()
        ),
        flags=tuple(flags),
        needs_review=review,
        created_at=datetime.now(VN_TZ).replace(microsecond=0),
        tool_version=__version__,
    )


__all__ = [
    "ComponentResult",
    "DigitizeError",
    "DossierResult",
    "Event",
    "PageWork",
    "page_pool",
    "process_page",
    "run_dossier",
    "usable_cores",
]
