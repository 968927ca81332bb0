"""Commands for single stages: ingest, deskew, ocr, package, sign.

Each runs the library's stage functions on their own (the same functions `digitize run`
wires together), so an integrator can inspect or reuse one step.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click
from rich.table import Table

from digitize.cli.commands_pipeline import DEMO_WARNING, load_cli_profile
from digitize.cli.main import _json_dump, handle_errors, main, out_console, profile_option


def _flags_text(flags) -> str:  # type: ignore[no-untyped-def]
    return ", ".join(sorted({f.code for f in flags})) or "—"


def _iter_pages(dossier):  # type: ignore[no-untyped-def]
    for component in dossier.components:
        for page in component.pages:
            yield component, page


@main.command("ingest")
@click.argument("dossier", type=click.Path(exists=True, path_type=Path))
@profile_option
@click.option("--rescan", is_flag=True, help="Accept PDFs with text/signatures as fresh scans.")
@click.option("--json", "as_json", is_flag=True, help="Print the dossier model as JSON.")
@handle_errors
def ingest_cmd(dossier: Path, profile_name: str | None, rescan: bool, as_json: bool) -> None:
    """Check a dossier folder (or one scan file) and show what would be digitised.

    Prints one row per page (component, page, dpi, colour, flags). Exit code non-zero when
    the dossier cannot be accepted (e.g. 21 below 200 dpi, 22 page count mismatch).
    """
    from digitize.ingest import ingest_dossier

    overrides = {"ingest": {"pdf_with_text": "rescan"}} if rescan else None
    profile = load_cli_profile(profile_name, overrides)
    model = ingest_dossier(dossier, profile.ingest)
    if as_json:
        sys.stdout.write(_json_dump(model.model_dump(mode="json")) + "\n")
        return
    table = Table(title=f"Dossier {model.code} ({model.code_format})", title_justify="left")
    for column in ("component", "page", "source", "px", "dpi", "colour", "flags"):
        table.add_column(column)
    for component, page in _iter_pages(model):
        dpi = f"{page.qa.dpi:.0f}" + ("*" if page.qa.dpi_source == "inferred" else "")
        table.add_row(f"{component.ordinal}. {component.name}", str(page.index),
                      page.source.name + (f"#{page.frame + 1}" if page.frame else ""),
                      f"{page.width_px}×{page.height_px}", dpi, page.qa.colour_mode.value,
                      _flags_text(page.flags))
    for component in model.components:
        if component.not_digitised_reason is not None:
            table.add_row(f"{component.ordinal}. {component.name}", "—", "—", "—", "—", "—",
                          f"not digitised: {component.not_digitised_reason.value}")
    out_console.print(table)
    for ignored in model.ignored_files:
        out_console.print(f"[dim]ignored (not a scan): {ignored}[/]")
    if model.flags:
        out_console.print(f"dossier flags: {_flags_text(model.flags)}")
    out_console.print(f"{model.page_count} pages in {len(model.components)} components "
                      "(* = dpi inferred from the paper size)")


@main.command("deskew")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@profile_option
@handle_errors
def deskew_cmd(source: Path, out_dir: Path, profile_name: str | None) -> None:
    """Orient and deskew the pages of an image or dossier folder into OUT_DIR (PNG, lossless).

    Prints the orientation and skew found for every page.
    """
    import cv2

    from digitize.clean import clean_page
    from digitize.ingest import ingest_dossier, load_page_pixels
    from digitize.util import write_atomic

    profile = load_cli_profile(profile_name)
    dossier = ingest_dossier(source, profile.ingest)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = Table(title="Page clean-up", title_justify="left")
    for column in ("page", "orientation", "conf.", "skew °", "conf.", "rotated °", "flags", "file"):
        table.add_column(column)
    for component, page in _iter_pages(dossier):
        pixels = load_page_pixels(page, profile.ingest)
        cleaned, record = clean_page(pixels, page.qa.dpi, profile.clean)
        if cleaned.ndim == 3:
            cleaned = cv2.cvtColor(cleaned, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".png", cleaned)
        name = f"c{component.ordinal:02d}-p{page.index:03d}.png"
        write_atomic(out_dir / name, data.tobytes())
        table.add_row(f"{component.ordinal}.{page.index}", f"{record.orientation_deg}°",
                      f"{record.orientation_confidence:.2f}", f"{record.skew_deg:+.2f}",
                      f"{record.skew_confidence:.2f}", f"{record.rotation_applied_deg:+.2f}",
                      _flags_text(record.flags), name)
    out_console.print(table)


@main.command("ocr")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@profile_option
@click.option("--sidecar", type=click.Path(path_type=Path),
              help="Write the text of all pages to this file (pages separated by form feeds).")
@click.option("--hocr", "hocr_dir", type=click.Path(path_type=Path),
              help="Write one hOCR file per page into this folder.")
@click.option("--json", "json_path", type=click.Path(path_type=Path),
              help="Write words (with boxes and confidence) and fields as JSON to this file.")
@handle_errors
def ocr_cmd(source: Path, profile_name: str | None, sidecar: Path | None, hocr_dir: Path | None,
            json_path: Path | None) -> None:
    """OCR the pages of an image or dossier folder (after orientation and deskew).

    Prints per-page confidence, the header fields and the Art. 9 data found per component
    (personal ID numbers and birth dates masked, here and in the JSON).
    """
    from digitize.clean import clean_page
    from digitize.extract import PaperContext, extract_paper
    from digitize.extract.handwriting import hand_ink_words
    from digitize.extract.present import art9_lines, masked_art9
    from digitize.ingest import ingest_dossier, load_page_pixels
    from digitize.ocr import ocr_json, ocr_page, write_hocr, write_sidecar
    from digitize.util import write_atomic

    profile = load_cli_profile(profile_name)
    dossier = ingest_dossier(source, profile.ingest)
    table = Table(title="OCR", title_justify="left")
    for column in ("page", "words", "mean conf.", "low-conf. share", "review", "flags"):
        table.add_column(column)
    every_page = []
    export: list[dict] = []
    if hocr_dir:
        hocr_dir.mkdir(parents=True, exist_ok=True)
    for component in dossier.components:
        results = []
        hands = []
        for page in component.pages:
            pixels = load_page_pixels(page, profile.ingest)
            cleaned, _ = clean_page(pixels, page.qa.dpi, profile.clean)
            result = ocr_page(cleaned, page.qa.dpi, profile.ocr)
            results.append(result)
            hands.append(frozenset(hand_ink_words(cleaned, result)))
            table.add_row(f"{component.ordinal}.{page.index}", str(len(result.words)),
                          f"{result.mean_confidence:.1f}", f"{result.low_confidence_share:.0%}",
                          "yes" if result.needs_review else "no", _flags_text(result.flags))
            if hocr_dir and result.hocr:
                write_hocr(result, hocr_dir / f"c{component.ordinal:02d}-p{page.index:03d}.hocr")
        every_page.extend(results)
        context = PaperContext(component.paper_type, tuple(hands))
        paper = extract_paper(results, profile.extract, context=context) if results else None
        fields = paper.header if paper is not None else ()
        export.append({"component": component.ordinal, "name": component.name,
                       **ocr_json(results, fields),
                       # Art. 9 data: personal IDs and birth dates masked, as on the console.
                       **({"art9": masked_art9(paper.art9)} if paper is not None else {})})
        if fields:
            out_console.print(f"[bold]{component.ordinal}. {component.name}[/]")
            for field in fields:
                mark = " [yellow](review)[/]" if field.needs_review else ""
                out_console.print(f"  {field.name}: {field.value} "
                                  f"(p.{field.page}, {field.confidence:.2f}){mark}")
        if paper is not None:
            out_console.print(f"[bold]{component.ordinal}. Art. 9[/]")
            for line in art9_lines(paper.art9):
                out_console.print(f"  {line}", markup=False, highlight=False)
    out_console.print(table)
    if sidecar:
        write_sidecar(every_page, sidecar)
    if json_path:
        write_atomic(json_path, json.dumps(export, ensure_ascii=False, indent=1).encode())


@main.command("package")
@click.argument("dossier", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder for the unsigned PDF/A files.")
@profile_option
@handle_errors
def package_cmd(dossier: Path, out_dir: Path, profile_name: str | None) -> None:
    """Build the unsigned PDF/A-2 file of every component (no signature, no bundle).

    Prints bytes per page and whether the scan bytes went in unchanged.
    """
    from digitize.bundle import bundle_file_name
    from digitize.ingest import ingest_dossier
    from digitize.pdfa import PdfMetadata, PdfPage, build_component_pdf
    from digitize.pipeline import VN_TZ, process_page

    profile = load_cli_profile(profile_name)
    model = ingest_dossier(dossier, profile.ingest)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = Table(title="PDF/A packaging", title_justify="left")
    for column in ("file", "page", "bytes", "scan bytes kept", "PDF/A"):
        table.add_column(column)
    for component in model.components:
        if component.not_digitised_reason is not None:
            continue
        works = [process_page(p, component.ordinal, profile.ingest, profile.clean, profile.ocr,
                              profile.pdfa) for p in component.pages]
        pages = [PdfPage(image=w.image, dpi_x=p.qa.dpi_x, dpi_y=p.qa.dpi_y, ocr=w.ocr)
                 for p, w in zip(component.pages, works, strict=True)]
        meta = PdfMetadata(title=f"{model.code} — {component.name}", component_name=component.name,
                           dossier_code=model.code, procedure_code=model.procedure_code,
                           created_at=datetime.now(VN_TZ).replace(microsecond=0))
        name = bundle_file_name(model.code, component.ordinal)
        result = build_component_pdf(pages, meta, out_dir / name, profile.pdfa)
        for index, (size, kept) in enumerate(zip(result.page_bytes, result.passthrough_pages,
                                                 strict=True), 1):
            table.add_row(name if index == 1 else "", str(index), f"{size:,}",
                          "yes" if kept else "re-encoded",
                          f"PDF/A-{result.pdfa_part}" if index == 1 else "")
    out_console.print(table)


@main.command("sign")
@click.argument("in_pdf", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out_pdf", type=click.Path(dir_okay=False, path_type=Path))
@profile_option
@click.option("--scan-time", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
              default=None, help="Scan time shown in the note (default: now, +07:00).")
@handle_errors
def sign_cmd(in_pdf: Path, out_pdf: Path, profile_name: str | None,
             scan_time: datetime | None) -> None:
    """Sign one PDF/A file as the digitiser (visible note top-left of page 1).

    Secrets come from the environment variables named in the profile, or a prompt.
    """
    from digitize.pipeline import VN_TZ
    from digitize.sign import open_signer
    from digitize.util import user_data_dir

    profile = load_cli_profile(profile_name)
    when = scan_time or datetime.now(VN_TZ)
    if when.tzinfo is None:
        when = when.replace(tzinfo=VN_TZ)
    signer = open_signer(profile.sign, user_data_dir())
    try:
        record = signer.sign_pdf(in_pdf, out_pdf, scan_time=when.replace(microsecond=0))
    finally:
        signer.close()
    out_console.print(f"signed {out_pdf}: {record.pades_level.value}, "
                      f"{record.signer.full_name}, {record.signed_at.isoformat()}")
    for flag in record.flags:
        out_console.print(f"[yellow]{flag.code}[/]: {flag.message}")
    if record.signer.is_demo:
        out_console.print(DEMO_WARNING)
