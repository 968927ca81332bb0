"""Wiring of the stages for one dossier: the only module that knows the whole pipeline.

::

    ingest_dossier                          Dossier: components → pages (located, hashed, QA'd)
      per page, in a bounded pool of page workers (``digitize.workers``):
        process_page: load → clean → ocr → image for the PDF          → PageWork
      per component, in the parent, in order, as soon as its pages are back:
        package_component: pdfa → sign → extract                      → PackagedComponent
      per dossier:
        re-hash the scans (R8) → Manifest (``digitize.assemble``) → manifest signature
        → BundleWriter.commit() (atomic rename)

Pages are the unit of parallel work, the dossier is the unit of output: the bundle appears
under its final name only when complete (``digitize.bundle``). Workers receive small models
and return small models plus the encoded page image; they never share state. At most
2 × workers pages are in flight and each component's images are dropped once it is packaged,
so memory stays bounded whatever the dossier size, and signing overlaps OCR.

``run_dossier`` is thread-safe and re-entrant (no global state; spawn-started workers), installs
no signal handlers, prints nothing: progress is reported through ``on_event`` as ``Event``
models. Running many dossiers (resume, journal, verification, a shared pool) is the job
layer's business (``digitize.jobs``), not this module's.

Deadlines (``pipeline.page_timeout_s``, ``dossier_timeout_s``, ``dossier_timeout_per_page_s``):
a page that a worker has not returned ``page_timeout_s`` after the worker took it raises
``PageTimeoutError`` (104) naming the file and page — whatever hung (an image decoder,
jbig2dec, clean-up, tesseract's Recognize), since the wait is here and not in any stage; the
caller then kills and replaces the pool (``workers.kill_pool``, ``PageExecutor.replace_broken``).
The dossier's deadline starts after ingest (which has its own, ``ingest.isolated_timeout_s``)
and is checked while waiting for pages and at every event: ``DossierTimeoutError`` (105).
Pages run in the calling thread (one worker, no executor) have no page deadline.

What a bundle is made from is recorded in its manifest (``Manifest.inputs``,
``bundle.dossier_inputs``), listed before ingest and checked against ingest's own hashes and
again at the end, so resume can tell whether a dossier folder still holds exactly that.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field

from digitize.assemble import (
    PackagedComponent,
    PackagedPage,
    build_manifest,
    document_entry,
    document_needs_review,
    not_digitised_entry,
)
from digitize.bundle import (
    BundleWriter,
    bundle_file_name,
    bundle_name_for,
    carry_file,
    dossier_inputs,
    master_file_name,
    original_file_name,
)
from digitize.clean import CleanSettings, clean_page, find_qr_codes
from digitize.errors import (
    DigitizeError,
    DossierTimeoutError,
    OcrError,
    PageTimeoutError,
    PageWorkerDiedError,
    QualityError,
    SourceChangedError,
)
from digitize.extract import DossierFacts, PaperContext, extract_paper, finish_dossier
from digitize.extract.handwriting import hand_ink_words
from digitize.ingest import (
    IngestSettings,
    ingest_dossier,
    ingest_dossier_isolated,
    load_page_pixels,
    read_page_encoded,
)
from digitize.manifest import DocumentEntry, DossierInputs, Manifest, OcrSummary, OriginalEntry
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
    SignatureRecord,
)
from digitize.ocr import OcrSettings, ocr_page
from digitize.pdfa import PdfaSettings, PdfMetadata, PdfPage, build_component_pdf, encode_pixels
from digitize.profiles import Profile, load_profile
from digitize.settings import PipelineSettings
from digitize.sign import DigitiserSigner, open_signer
from digitize.util import VN_TZ, nfc, sha256_file, user_data_dir
from digitize.workers import new_process_pool, page_pool, usable_cores

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


# --- per page (runs in worker processes) ------------------------------------------------------
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


@dataclass(frozen=True)
class DossierDeadline:
    """When a dossier must be bundled by (monotonic clock), and the page deadline."""

    at: float
    seconds: float
    pages: int
    source: Path
    page_seconds: float

    @classmethod
    def start(cls, settings: PipelineSettings, dossier: Dossier) -> DossierDeadline:
        pages = dossier.page_count
        seconds = settings.dossier_timeout_s + settings.dossier_timeout_per_page_s * pages
        return cls(
            at=time.monotonic() + seconds,
            seconds=seconds,
            pages=pages,
            source=dossier.source_dir,
            page_seconds=settings.page_timeout_s,
        )

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def check(self) -> None:
        if self.remaining() < 0:
            raise DossierTimeoutError(
                f"the dossier was not bundled within its deadline ({self.seconds:.0f} s for "
                f"{self.pages} pages: pipeline.dossier_timeout_s + dossier_timeout_per_page_s "
                "per page)",
                path=self.source,
            )


PAGE_WAIT_TICK_S = 1.0  # how often running pages are looked at while none completes


def _page_display(dossier: Dossier, page: IngestedPage) -> str:
    """``<dossier>/<relative file>`` as ingest names files in its messages."""
    rel = nfc(_shown_name(dossier, page.source))
    return f"{nfc(dossier.source_dir.name)}/{rel}" if dossier.source_dir.is_dir() else rel


def _hung_page(
    in_flight: dict[Future[PageWork], tuple[Dossier, IngestedPage]],
    running_since: dict[Future[PageWork], float],
    page_seconds: float,
    reports_starts: bool,
) -> None:
    """Raise ``PageTimeoutError`` for the first page (in submission order) that has been
    running for longer than ``page_seconds``. A page starts when a worker says it started it
    (``workers.PageProcessPool`` sets ``future.started_at``: ``reports_starts``); for other
    executors, when the future is first seen running (such a pool may mark a page running up
    to one page before a worker is free for it)."""
    now = time.monotonic()
    for future, (dossier, page) in in_flight.items():
        started = getattr(future, "started_at", None)
        if started is not None:
            since = running_since.setdefault(future, started)
        elif future.running() and not reports_starts:
            since = running_since.setdefault(future, now)
        else:
            continue
        if now - since > page_seconds:
            raise PageTimeoutError(
                f"the page was not done within {page_seconds:.0f} s "
                "(pipeline.page_timeout_s): decoding, clean-up or OCR hung on it; "
                "the page workers were stopped",
                path=_page_display(dossier, page),
                page=page.frame + 1,
            )


def _iter_page_works(
    dossier: Dossier,
    profile: Profile,
    executor: Executor | None,
    window: int,
    deadline: DossierDeadline | None = None,
) -> Iterator[PageWork]:
    """Page results in completion order, with at most ``window`` pages in flight, under the
    page and dossier deadlines (see the module docstring).

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
            if deadline is not None:
                deadline.check()
            yield process_page(page, component.ordinal, *args)
        return
    page_seconds = deadline.page_seconds if deadline is not None else profile.pipeline.page_timeout_s
    in_flight: dict[Future[PageWork], tuple[Dossier, IngestedPage]] = {}
    running_since: dict[Future[PageWork], float] = {}
    reports_starts = bool(getattr(executor, "reports_page_starts", False))

    def submit_next() -> None:
        job = next(jobs, None)
        if job is not None:
            component, page = job
            future = executor.submit(process_page, page, component.ordinal, *args)
            in_flight[future] = (dossier, page)

    try:
        for _ in range(max(1, window)):
            submit_next()
        while in_flight:
            tick = PAGE_WAIT_TICK_S
            if deadline is not None:
                tick = max(0.0, min(tick, deadline.remaining()))
            done, _pending = wait(in_flight, timeout=tick, return_when=FIRST_COMPLETED)
            for future in done:
                del in_flight[future]
                running_since.pop(future, None)
                work = future.result()
                submit_next()
                yield work
            _hung_page(in_flight, running_since, page_seconds, reports_starts)
            if deadline is not None:
                deadline.check()
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


# --- per component (parent process) ---------------------------------------------------------
@dataclass(frozen=True)
class PackageContext:
    """What packaging a component needs besides the component: one per ``run_dossier`` call."""

    dossier: Dossier
    profile: Profile
    signer: DigitiserSigner
    writer: BundleWriter
    emit: Callable[..., None]
    timings: dict[str, float]  # seconds per step, summed over components


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
    """R21: the capture time of page 1 (scanner metadata, else now)."""
    first = component.pages[0]
    when = first.captured_at or datetime.now(VN_TZ)
    if when.tzinfo is None:
        when = when.replace(tzinfo=VN_TZ)
    return when.astimezone(VN_TZ).replace(microsecond=0)


def _timed(ctx: PackageContext, step: str, started: float) -> None:
    ctx.timings[step] = ctx.timings.get(step, 0.0) + time.monotonic() - started


def _ocr_summary(ocrs: Sequence[PageOcr]) -> OcrSummary:
    return OcrSummary(
        engine=ocrs[0].engine,
        version=ocrs[0].engine_version,
        language=ocrs[0].language,
        mean_confidence=round(sum(o.mean_confidence for o in ocrs) / len(ocrs), 2),
        review_flag=any(o.needs_review for o in ocrs),
    )


def package_component(
    component: Component, works: Sequence[PageWork], ctx: PackageContext
) -> PackagedComponent:
    """One digitised component: PDF/A → signature → extraction (R1: after the signature).

    ``works`` are its pages' results in page order. Writes the signed PDF (and any kept
    originals and masters) into the bundle's staging folder.
    """
    dossier, profile = ctx.dossier, ctx.profile
    ocrs = [w.ocr for w in works]
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
        digitiser=ctx.signer.identity.full_name,
        created_at=datetime.now(VN_TZ).replace(microsecond=0),
    )
    pdf_pages = [
        PdfPage(image=w.image, dpi_x=p.qa.dpi_x, dpi_y=p.qa.dpi_y, ocr=w.ocr)
        for p, w in zip(component.pages, works, strict=True)
    ]
    t = time.monotonic()
    unsigned = ctx.writer.work_path(f"{component.ordinal:03d}.unsigned.pdf")
    pdf = build_component_pdf(pdf_pages, meta, unsigned, profile.pdfa)
    _timed(ctx, "pdfa", t)
    ctx.emit("component_packaged", component=component.ordinal)

    t = time.monotonic()
    signed_path = ctx.writer.path(file_name)
    signature = ctx.signer.sign_pdf(
        unsigned,
        signed_path,
        scan_time=_scan_time(component),
        text_boxes_pt=_stamp_area_obstacles(ocrs[0], works[0].qr_boxes),
    )
    unsigned.unlink()
    _timed(ctx, "sign", t)
    ctx.emit("component_signed", component=component.ordinal, message=file_name)

    # R1: extraction runs on the signed copy's content, after the signature exists.
    t = time.monotonic()
    extraction_started = datetime.now(VN_TZ)
    paper = (
        extract_paper(
            ocrs,
            profile.extract,
            context=PaperContext(
                component.paper_type, tuple(frozenset(w.hand_words) for w in works)
            ),
        )
        if profile.extract.enabled
        else None
    )
    fields = paper.header if paper is not None else ()
    _timed(ctx, "extract", t)
    return PackagedComponent(
        component=component,
        file=file_name,
        pdf=pdf,
        signature=signature,
        signed_sha256=sha256_file(signed_path),
        signed_size=signed_path.stat().st_size,
        pages=tuple(
            PackagedPage(
                page=page,
                clean=work.clean,
                ocr_mean_confidence=work.ocr.mean_confidence,
                ocr_needs_review=work.ocr.needs_review,
                ocr_flags=work.ocr.flags,
                pdf_bytes=size,
                passthrough=passthrough,
            )
            for page, work, size, passthrough in zip(
                component.pages, works, pdf.page_bytes, pdf.passthrough_pages, strict=True
            )
        ),
        ocr=_ocr_summary(ocrs),
        fields=tuple(fields),
        art9=paper.art9 if paper is not None else None,
        paper_flags=paper.flags if paper is not None else (),
        extraction_started_at=extraction_started,
        originals=_keep_originals(component, ctx),
        masters=_keep_masters(component, ctx) if profile.bundle.keep_masters else (),
    )


RESCAN_FLAGS = {"pdf_rescanned", "pdf_encrypted"}


def _shown_name(dossier: Dossier, path: Path) -> str:
    try:
        return str(path.relative_to(dossier.source_dir))
    except ValueError:
        return path.name


def _keep_originals(component: Component, ctx: PackageContext) -> tuple[OriginalEntry, ...]:
    """Received PDFs that were not fresh scans travel unchanged beside the new copy, so their
    own signatures stay verifiable: never dropped or silently invalidated."""
    reasons = [f.message for f in component.flags if f.code in RESCAN_FLAGS]
    if not reasons:
        return ()
    code = ctx.dossier.code
    pdfs = [s for s in component.sources if s.format == "pdf"]
    return tuple(
        carry_file(
            source,
            ctx.writer.path(original_file_name(code, component.ordinal, index)),
            _shown_name(ctx.dossier, source.path),
            "; ".join(reasons),
        )
        for index, source in enumerate(pdfs, 1)
    )


def _keep_masters(component: Component, ctx: PackageContext) -> tuple[OriginalEntry, ...]:
    """R14: the scan files themselves, hashed, outside the signed PDF."""
    code = ctx.dossier.code
    return tuple(
        carry_file(
            source,
            ctx.writer.path(
                master_file_name(code, component.ordinal, index, source.path.suffix)
            ),
            _shown_name(ctx.dossier, source.path),
            "master scan (R14)",
        )
        for index, source in enumerate(component.sources, 1)
    )


def _reverify_sources(dossier: Dossier, inputs: DossierInputs | None = None) -> None:
    """R8: the scans (and ``dossier.yaml``) must still be what was ingested when the bundle
    closes."""
    for component in dossier.components:
        for source in component.sources:
            if sha256_file(source.path) != source.sha256:
                raise QualityError(
                    "the scan changed while the dossier was being processed; run it again",
                    path=source.path,
                )
    if inputs is not None and dossier.source_dir.is_dir():
        yaml = dossier.source_dir / "dossier.yaml"
        now = sha256_file(yaml) if yaml.is_file() else None
        if now != inputs.dossier_yaml_sha256:
            raise SourceChangedError(
                "dossier.yaml changed while the dossier was being processed; run it again",
                path=yaml,
            )


def _check_inputs_ingested(inputs: DossierInputs, dossier: Dossier, source: Path) -> None:
    """The input list was taken before ingest: every file ingest read must have the hash listed
    (a file swapped in between would otherwise be recorded as what the bundle was made from)."""
    listed = {f.file: f.sha256 for f in inputs.scans}
    base = Path(os.path.realpath(source if source.is_dir() else source.parent))
    for component in dossier.components:
        for scan in component.sources:
            try:
                rel = nfc(Path(os.path.realpath(scan.path)).relative_to(base).as_posix())
            except ValueError:
                continue  # not below the dossier folder: ingest refuses such links
            if rel in listed and listed[rel] != scan.sha256:
                raise SourceChangedError(
                    "the scan changed while the dossier was being read; run it again",
                    path=scan.path,
                )


def _pages_to_digitise(dossier: Dossier) -> int:
    return sum(len(c.pages) for c in dossier.components if c.not_digitised_reason is None)


Packaged = list[tuple[Component, PackagedComponent | None]]  # None: not digitised (R9)


def _process_and_package(
    executor: Executor | None, window: int, ctx: PackageContext, deadline: DossierDeadline
) -> Packaged:
    """Run the pages through ``executor``; package each component, in order, once its pages
    are all back (its page images are dropped then)."""
    dossier = ctx.dossier
    packaged: Packaged = []
    works: dict[tuple[int, int], PageWork] = {}
    waiting = list(dossier.components)
    total = _pages_to_digitise(dossier)

    def ready(component: Component) -> bool:
        return component.not_digitised_reason is not None or all(
            (component.ordinal, p.index) in works for p in component.pages
        )

    def package_ready() -> None:
        while waiting and ready(waiting[0]):
            component = waiting.pop(0)
            if component.not_digitised_reason is not None:
                packaged.append((component, None))
                continue
            page_works = [works.pop((component.ordinal, p.index)) for p in component.pages]
            packaged.append((component, package_component(component, page_works, ctx)))

    package_ready()  # leading components that were not digitised (R9)
    works_in = _iter_page_works(dossier, ctx.profile, executor, window, deadline)
    for done, work in enumerate(works_in, 1):
        works[(work.component, work.page)] = work
        ctx.emit(
            "page_done",
            component=work.component,
            page=work.page,
            done_pages=done,
            total_pages=total,
        )
        package_ready()
    package_ready()
    if waiting:  # pragma: no cover - would be a bug: every page came back or raised
        raise DigitizeError(f"component {waiting[0].ordinal} was never packaged")
    return packaged


def _component_result(
    component: Component, packaged: PackagedComponent | None, document: DocumentEntry
) -> ComponentResult:
    if packaged is None:
        return ComponentResult(
            ordinal=component.ordinal,
            name=component.name,
            file=None,
            pages=0,
            mean_confidence=None,
            needs_review=False,
        )
    return ComponentResult(
        ordinal=component.ordinal,
        name=component.name,
        file=packaged.file,
        pages=len(component.pages),
        mean_confidence=packaged.ocr.mean_confidence,
        needs_review=document_needs_review(document),
        pdf=packaged.pdf,
        signature=packaged.signature,
    )


# --- one dossier ------------------------------------------------------------------------------
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
    """Digitise one dossier folder into a signed bundle ``out_dir/<bundle_name_for(source)>``.

    Thread-safe and re-entrant: no global state; each call has its own staging folder and,
    unless ``executor`` is given (batch and watch share one), its own bounded worker pool.
    ``signer``: an open signer to use (not closed here); else one is opened from the profile
    and closed on return. Raises ``DigitizeError`` subclasses; an exception raised by
    ``on_event`` stops the run (the staging folder is removed, nothing appears).
    """
    started = time.monotonic()
    timings: dict[str, float] = {}
    profile = profile or load_profile()
    source, out_dir = Path(source), Path(out_dir)

    t = time.monotonic()
    inputs = dossier_inputs(source)
    if profile.pipeline.isolate_ingest:
        dossier = ingest_dossier_isolated(source, profile.ingest)
    else:
        dossier = ingest_dossier(source, profile.ingest)
    _check_inputs_ingested(inputs, dossier, source)
    timings["ingest"] = time.monotonic() - t
    name = bundle_name_for(source)
    deadline = DossierDeadline.start(profile.pipeline, dossier)

    def emit(kind: EventKind, **fields: object) -> None:
        if kind != "bundle_written":  # once committed, the bundle stands
            deadline.check()
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
            ctx = PackageContext(dossier, profile, signer, writer, emit, timings)
            t = time.monotonic()
            if executor is not None:
                # An executor spanning machines says how many pages it wants in flight.
                window = getattr(executor, "max_in_flight", 0) or 2 * usable_cores()
                packaged = _process_and_package(executor, window, ctx, deadline)
            else:
                # No more workers than pages: each spawned worker costs its start-up.
                workers = max(
                    1, min(profile.pipeline.workers or usable_cores(), dossier.page_count)
                )
                with page_pool(workers) as pool:
                    packaged = _process_and_package(pool, 2 * workers, ctx, deadline)
            timings["pages"] = time.monotonic() - t
            _reverify_sources(dossier, inputs)
            documents = [
                document_entry(done, dossier) if done is not None else not_digitised_entry(c)
                for c, done in packaged
            ]
            if profile.extract.enabled:  # cross-paper checks and result codes (Art. 7, 9)
                facts = DossierFacts(dossier.code, dossier.procedure_code)
                documents = finish_dossier(documents, facts, profile.extract)
            manifest = build_manifest(
                dossier,
                documents,
                [done for _c, done in packaged if done is not None],
                signer.identity,
                profile.name,
            ).model_copy(update={"inputs": inputs})
            if profile.pipeline.strict and manifest.needs_review:
                raise QualityError(
                    "pages or fields need review and the profile is strict: no bundle written",
                    path=source,
                    hint="see `digitize ingest`/`digitize ocr` for the flags",
                )
            deadline.check()
            manifest_bytes = manifest.to_json_bytes()
            writer.write_manifest(manifest_bytes, signer.sign_detached(manifest_bytes))
            bundle_path, zip_path = writer.commit()
    finally:
        if own_signer:
            signer.close()
    emit("bundle_written", message=str(bundle_path))

    components = tuple(
        _component_result(component, done, document)
        for (component, done), document in zip(packaged, documents, strict=True)
    )
    confidences = [c.mean_confidence for c in components if c.mean_confidence is not None]
    return DossierResult(
        dossier_code=dossier.code,
        bundle_path=bundle_path,
        zip_path=zip_path,
        manifest=manifest,
        components=components,
        pages=dossier.page_count,
        mean_confidence=(sum(confidences) / len(confidences)) if confidences else None,
        needs_review=manifest.needs_review,
        flags=manifest.flags,
        signed_with_demo_identity=signer.identity.is_demo,
        seconds=time.monotonic() - started,
        timings=timings,
    )


__all__ = [
    "VN_TZ",
    "ComponentResult",
    "DigitizeError",
    "DossierDeadline",
    "DossierResult",
    "Event",
    "EventCallback",
    "PackageContext",
    "PageWork",
    "new_process_pool",
    "package_component",
    "page_pool",
    "process_page",
    "run_dossier",
    "usable_cores",
]
