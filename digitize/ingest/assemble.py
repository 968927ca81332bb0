"""``ingest_dossier``: walk, probe, decode and QA every page, then assemble the ``Dossier``.

Pages are decoded one at a time and released; only hashes, small fingerprints and typed
drafts (``PageDraft``) live until the component is assembled.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image

from digitize.errors import (
    CorruptFileError,
    DigitizeError,
    EmptyDossierError,
    LowResolutionError,
    PageCountMismatchError,
    UnsafePathError,
)
from digitize.ingest.dpi import DPI_FLOOR_TOLERANCE, decide_dpi
from digitize.ingest.files import open_regular
from digitize.ingest.frame import FrameInfo
from digitize.ingest.frames_pdf import iter_pdf_frames, pdf_image_to_pil
from digitize.ingest.frames_raster import iter_pil_frames
from digitize.ingest.guard import check_pixels, ensure_decoder_limits, guard, pil_bomb_guard
from digitize.ingest.probe import FileFacts, read_facts, sniff
from digitize.ingest.qa import (
    DuplicateMemory,
    PageAnalysis,
    PagePlace,
    analyse_page,
    duplicate_flags,
    qa_flags,
    to_array,
)
from digitize.ingest.spec import (
    DOSSIER_YAML,
    DossierSpec,
    code_flags,
    dossier_code_format,
    load_dossier_yaml,
)
from digitize.ingest.walk import (
    ComponentPlan,
    DossierWalk,
    assign_physical_pages,
    plan_components,
)
from digitize.models import (
    Component,
    Dossier,
    Flag,
    IngestedPage,
    PageQA,
    PageVariant,
    Severity,
    SourceFile,
    make_flag,
)
from digitize.settings import IngestSettings
from digitize.util import VN_TZ, nfc

PageProgress = Callable[[str, int], None]
"""Called with (file shown in messages, 1-based page) before each page is decoded."""


@dataclass
class IngestRun:
    """Everything one ``ingest_dossier`` call shares across files and components."""

    settings: IngestSettings
    walk: DossierWalk
    memory: DuplicateMemory = field(default_factory=DuplicateMemory)
    dossier_flags: list[Flag] = field(default_factory=list)
    progress: PageProgress | None = None


@dataclass
class PageDraft:
    source: SourceFile
    info: FrameInfo
    analysis: PageAnalysis


def _decoded_frames(
    path: Path, fmt: str, facts: FileFacts, run: IngestRun, component_flags: list[Flag]
) -> Generator[tuple[FrameInfo, Image.Image], None, None]:
    display = run.walk.display(path)
    settings = run.settings
    if fmt == "pdf":
        with guard(display, what="cannot read PDF"), open_regular(path, display) as handle:
            frames = iter_pdf_frames(
                handle, settings, display, facts.has_byte_range, component_flags
            )
            with closing(frames):
                for info, obj in frames:
                    with guard(display, info.frame + 1), pil_bomb_guard():
                        if run.progress is not None:
                            run.progress(display, info.frame + 1)
                        img = pdf_image_to_pil(obj)
                        check_pixels(img.width, img.height, settings, display, info.frame + 1)
                    yield info, img
        return
    with guard(display):
        frames_pil = iter_pil_frames(path, fmt, settings, display, facts.size)
        with closing(frames_pil):
            while True:
                with guard(display):
                    try:
                        item = next(frames_pil)
                    except StopIteration:
                        break
                if isinstance(item, Flag):
                    component_flags.append(item)
                    continue
                if run.progress is not None:
                    run.progress(display, item[0].frame + 1)
                yield item


def _check_and_analyse(
    info: FrameInfo,
    img: Image.Image,
    run: IngestRun,
    display: str,
    facts: FileFacts,
    mismatch: Flag | None,
) -> PageAnalysis:
    settings = run.settings
    page = info.frame + 1
    decision = decide_dpi(info.file_dpi, info.width, info.height, page)
    dpi = min(decision.dpi_x, decision.dpi_y)
    if dpi < settings.min_dpi * (1 - DPI_FLOOR_TOLERANCE):
        how = "inferred" if decision.source == "inferred" else "measured"
        paper = f" as {decision.paper}" if decision.paper else ""
        raise LowResolutionError(
            f"{dpi:.0f} dpi ({how}{paper}, {info.width}×{info.height} px) is below the "
            f"{settings.min_dpi:.0f} dpi floor (R10)",
            path=display,
            page=page,
            hint="rescan at 300 dpi",
        )
    with guard(display, page), pil_bomb_guard():
        img.load()
        arr, one_bit = to_array(img)
        analysis = analyse_page(info.transform.apply(arr), one_bit, info.lossy, dpi)
    del arr
    info.flags.extend(decision.flags)
    info.decision = decision
    if mismatch is not None:
        info.flags.append(mismatch.model_copy(update={"page": None}))
    if info.captured_at is None:
        info.captured_at, info.captured_at_source = facts.mtime, "file_mtime"
        info.flags.append(
            make_flag(
                "captured_at_mtime",
                "no capture time in the file; file modification time used",
                Severity.INFO,
                page,
            )
        )
    return analysis


def _ingest_file(
    path: Path, run: IngestRun, component_flags: list[Flag]
) -> tuple[SourceFile, list[PageDraft]]:
    walk = run.walk
    display = walk.display(path)
    real = walk.check_inside(path) if path.is_symlink() else path
    if run.progress is not None:
        run.progress(display, 0)
    facts = read_facts(real, display, run.settings)
    fmt, mismatch = sniff(real, facts, display, run.settings)
    source = SourceFile(
        path=path,
        display_name=nfc(path.name),
        sha256=facts.sha256,
        size_bytes=facts.size,
        format=fmt,  # type: ignore[arg-type]
        modified_at=facts.mtime,
    )
    drafts: list[PageDraft] = []
    frames = _decoded_frames(real, fmt, facts, run, component_flags)
    with closing(frames):  # a refused page closes the file at once, not at garbage collection
        for info, img in frames:
            analysis = _check_and_analyse(info, img, run, display, facts, mismatch)
            drafts.append(PageDraft(source, info, analysis))
    if not drafts:
        raise CorruptFileError("file holds no page image", path=display)
    return source, drafts


def _drop_blank(
    ordinal: int, plan: ComponentPlan, drafts: list[PageDraft], run: IngestRun
) -> list[PageDraft]:
    if run.settings.blank_pages != "drop":
        return drafts
    kept = []
    for draft in drafts:
        if not draft.analysis.is_blank:
            kept.append(draft)
            continue
        run.dossier_flags.append(
            make_flag(
                "blank_page_dropped",
                f"component {ordinal} '{plan.name}': blank page dropped: "
                f"{run.walk.display(draft.source.path)} page {draft.info.frame + 1} "
                f"(ink {draft.analysis.ink_share:.3%})",
                Severity.WARNING,
            )
        )
    return kept


def _check_declared(ordinal: int, plan: ComponentPlan, count: int, run: IngestRun) -> None:
    spec = plan.spec
    if spec is None or spec.declared_pages is None:
        return
    expected = spec.declared_pages + len(spec.note_slip_pages)
    if expected != count:
        diff = count - expected
        word = "more" if diff > 0 else "fewer"
        notes = f" + {len(spec.note_slip_pages)} note-slip page(s)" if spec.note_slip_pages else ""
        raise PageCountMismatchError(
            f"component {ordinal} '{plan.name}': {count} images, expected "
            f"{expected} ({spec.declared_pages} declared{notes}): {abs(diff)} {word} (R4–R5)",
            path=run.walk.label or None,
        )


def _page(
    draft: PageDraft, place: PagePlace, variant: PageVariant, run: IngestRun
) -> IngestedPage:
    info, analysis = draft.info, draft.analysis
    decision = info.decision
    assert decision is not None
    flags = [f.model_copy(update={"page": place.index}) for f in info.flags]
    flags.extend(qa_flags(analysis, place, run.settings))
    dup_flags, duplicate_of = duplicate_flags(
        analysis, place, run.memory, run.settings, run.dossier_flags
    )
    flags.extend(dup_flags)
    return IngestedPage(
        index=place.index,
        physical_page=place.physical,
        variant=variant,
        source=draft.source.path,
        source_sha256=draft.source.sha256,
        frame=info.frame,
        encoding=info.encoding,
        width_px=info.width,
        height_px=info.height,
        qa=PageQA(
            dpi_x=decision.dpi_x,
            dpi_y=decision.dpi_y,
            dpi_source=decision.source,
            inferred_paper=decision.paper,
            colour_mode=analysis.colour_mode,
            is_blank=analysis.is_blank,
            touches_border=analysis.touches_border,
            duplicate_of=duplicate_of,
        ),
        captured_at=info.captured_at,
        captured_at_source=info.captured_at_source,
        flags=tuple(flags),
        pdf_rotation_deg=info.transform.rotation_deg,
        pdf_mirrored=info.transform.mirrored,
    )


def _build_component(ordinal: int, plan: ComponentPlan, run: IngestRun) -> Component:
    component_flags = list(plan.flags)
    sources: list[SourceFile] = []
    drafts: list[PageDraft] = []
    for path in plan.files:
        source, file_drafts = _ingest_file(path, run, component_flags)
        sources.append(source)
        drafts.extend(file_drafts)
    kept = _drop_blank(ordinal, plan, drafts, run)
    _check_declared(ordinal, plan, len(kept), run)
    physical = assign_physical_pages(len(kept), plan.spec, plan.name, run.walk)
    pages = [
        _page(draft, PagePlace(ordinal, index, phys), variant, run)
        for index, (draft, (phys, variant)) in enumerate(zip(kept, physical, strict=True), 1)
    ]
    spec = plan.spec
    return Component(
        ordinal=ordinal,
        name=plan.name,
        sources=tuple(sources),
        declared_pages=spec.declared_pages if spec is not None else None,
        pages=tuple(pages),
        not_digitised_reason=spec.not_digitised_reason if spec is not None else None,
        paper_type=spec.paper_type if spec is not None else None,
        flags=tuple(component_flags),
    )


def _plan(
    source: Path, label: str
) -> tuple[DossierWalk, list[ComponentPlan], DossierSpec | None, bool]:
    if not os.path.lexists(source):
        raise EmptyDossierError("dossier not found", path=label)
    try:
        is_dir = source.is_dir()
        root = source.resolve(strict=True) if is_dir else source.parent.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise UnsafePathError("path cannot be resolved", path=label) from exc
    if not is_dir:
        walk = DossierWalk(root=root, label="")
        return walk, [ComponentPlan(nfc(source.stem), [root / source.name])], None, False
    walk = DossierWalk(root=root, label=label)
    spec = None
    yaml_path = source / DOSSIER_YAML
    if os.path.lexists(yaml_path):
        if yaml_path.is_symlink():
            walk.check_inside(yaml_path)
        spec = load_dossier_yaml(yaml_path)
    try:
        plans = plan_components(root, spec, walk)
    except DigitizeError:
        raise
    except OSError as exc:
        raise UnsafePathError(f"cannot list the folder ({exc.strerror})", path=label) from exc
    return walk, plans, spec, True


def run_ingest(
    source: Path, settings: IngestSettings, progress: PageProgress | None = None
) -> Dossier:
    """``ingest_dossier`` with a per-page progress hook (used by the isolated runner)."""
    ensure_decoder_limits()
    source = Path(source)
    label = nfc(source.name)
    walk, plans, spec, is_dir = _plan(source, label)
    run = IngestRun(settings, walk, dossier_flags=list(walk.flags), progress=progress)
    components = [_build_component(ordinal, plan, run) for ordinal, plan in enumerate(plans, 1)]
    for component, plan in zip(components, plans, strict=True):
        if not component.pages and component.not_digitised_reason is None:
            raise EmptyDossierError(
                f"component {component.ordinal} '{plan.name}' has no page images", path=label
            )
    if not any(c.pages for c in components) and not (
        components and all(c.not_digitised_reason for c in components)
    ):
        raise EmptyDossierError("no scanned pages found in the dossier", path=label)
    code = label if is_dir else nfc(source.stem)
    code_format: Literal["legacy", "centralised", "unknown", "folder_name"] = "folder_name"
    received_at = None
    if spec is not None:
        run.dossier_flags.extend(code_flags(spec))
        if spec.dossier_code is not None:
            code = spec.dossier_code
            code_format = dossier_code_format(code)
        received_at = spec.received_at
        if received_at is not None and received_at.tzinfo is None:
            received_at = received_at.replace(tzinfo=VN_TZ)
    return Dossier(
        code=code,
        code_format=code_format,
        procedure_code=spec.procedure_code if spec is not None else None,
        receiving_organ_id=spec.receiving_organ_id if spec is not None else None,
        received_at=received_at,
        source_dir=source if is_dir else source.parent,
        components=tuple(components),
        ignored_files=tuple(walk.ignored),
        flags=tuple(run.dossier_flags),
    )


def ingest_dossier(source: Path, settings: IngestSettings | None = None) -> Dossier:
    """Locate and QA every page of a dossier folder (or a single file = one component), in
    this process. Only ``DigitizeError`` subclasses leave it. For hostile input in a process
    that holds a signing key, use ``ingest_dossier_isolated`` (same result, decoded in a
    short-lived child)."""
    return run_ingest(Path(source), settings or IngestSettings())


__all__ = ["IngestRun", "PageDraft", "PageProgress", "ingest_dossier", "run_ingest"]
