"""PDF/A output size and packaging speed over the shared corpus, beside OCRmyPDF.

    .venv/bin/python bench/size.py                 # ours + OCRmyPDF on every component
    .venv/bin/python bench/size.py --limit 3       # OCRmyPDF on the first 3 components only
    .venv/bin/python bench/size.py --no-ocrmypdf   # ours only (seconds)

Per component: the scan bytes (the compressed image data of each page as stored in its source:
JPEG/PNG file's image data, the TIFF frame's strips, the PDF page's image stream), our PDF/A
size, and OCRmyPDF's (`ocrmypdf -l vie --output-type pdfa`, default optimisation, run on the
component's source file(s)). Our text layer comes from the ground-truth lines in ``pNN.json``
(line quads split into words by character count), not from OCR: this measures packaging, and
the text layer costs about the same whatever OCR produced it. OCRmyPDF's text layer is its own
tesseract output.

Pages are loaded here (not with digitize.ingest): JPEG files, PDF JPEG images and single-strip
G4 TIFF frames are passed through; 8-bit gray/RGB non-interlaced PNG IDAT is passed through as
Flate; multi-strip G4 frames cannot be one CCITT stream, so they are decoded and re-encoded as
lossless G4 (``encode_pixels``), which the table marks with ``*``.

``wrap/scan``: the same with the opt-in ``jpeg_flate_wrap`` setting (JPEG inside Flate when
that saves >= 1 %, as OCRmyPDF does). OCRmyPDF sizes are cached in
``$XDG_CACHE_HOME/digitize-bench/ocrmypdf-sizes.json`` (it needs Ghostscript for
``--output-type pdfa``: apt-get install ghostscript; a bench-only dependency).

Packaging speed = wall time of ``build_component_pdf`` (best of 3) per page, excluding image
loading and OCR.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pikepdf
from PIL import Image

from digitize.models import ColourMode, EncodedImage, PageOcr, Word
from digitize.pdfa import PdfaSettings, PdfMetadata, PdfPage, build_component_pdf, encode_pixels

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def gt_words(page_json: Path, width: int, height: int) -> tuple[list[Word], str]:
    data = json.loads(page_json.read_text(encoding="utf-8"))
    words = []
    for line_no, line in enumerate(data["lines"]):
        xs = [p[0] for p in line["quad"]]
        ys = [p[1] for p in line["quad"]]
        x0, x1 = max(0, min(xs)), min(width, max(xs))
        y0, y1 = max(0, min(ys)), min(height, max(ys))
        parts = line["text"].split()
        total = max(1, sum(len(p) + 1 for p in parts) - 1)
        cursor = x0
        for part in parts:
            w = (x1 - x0) * len(part) / total
            box = (int(cursor), int(y0), max(int(cursor) + 1, int(cursor + w)), int(y1))
            words.append(Word(text=part, bbox=box, confidence=90.0, line=line_no))
            cursor += w + (x1 - x0) / total
    return words, "\n".join(line["text"] for line in data["lines"])


def _png_idat(data: bytes) -> bytes:
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"IDAT":
            chunks.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return b"".join(chunks)


def load_pages(component: Path) -> list[tuple[EncodedImage, float, float, int]]:
    """(image, dpi_x, dpi_y, scan bytes) per page, in page order."""
    pages = []
    tif, pdf = component / "scan.tif", component / "scan.pdf"
    if tif.exists():
        raw = tif.read_bytes()
        with Image.open(tif) as im:
            for frame in range(im.n_frames):
                im.seek(frame)
                offsets, counts = im.tag_v2[273], im.tag_v2[279]
                dpi = im.info.get("dpi", (300, 300))
                scan_bytes = sum(counts)
                if im.info.get("compression") == "group4" and len(offsets) == 1:
                    image = EncodedImage(
                        data=raw[offsets[0] : offsets[0] + counts[0]],
                        filter="CCITTFaxDecode",
                        colour_mode=ColourMode.BILEVEL,
                        width=im.width,
                        height=im.height,
                        bits_per_component=1,
                        decode_parms={
                            "K": -1,
                            "Columns": im.width,
                            "Rows": im.height,
                            "BlackIs1": im.tag_v2.get(262, 0) == 1,
                        },
                    )
                else:
                    pixels = np.asarray(im.convert("L"))
                    image = encode_pixels(pixels, ColourMode.BILEVEL)
                pages.append((image, float(dpi[0]), float(dpi[1]), scan_bytes))
        return pages
    if pdf.exists():
        with pikepdf.open(pdf) as doc:
            for page in doc.pages:
                (xobject,) = [page.Resources.XObject[k] for k in page.Resources.XObject.keys()]
                raw = xobject.read_raw_bytes()
                width, height = int(xobject.Width), int(xobject.Height)
                box = [float(v) for v in page.MediaBox]
                mode = ColourMode.RGB if xobject.ColorSpace == "/DeviceRGB" else ColourMode.GRAY
                image = EncodedImage(
                    data=raw,
                    filter="DCTDecode",
                    colour_mode=mode,
                    width=width,
                    height=height,
                    bits_per_component=8,
                )
                pages.append(
                    (
                        image,
                        width / (box[2] - box[0]) * 72,
                        height / (box[3] - box[1]) * 72,
                        len(raw),
                    )
                )
        return pages
    for path in sorted(component.glob("p[0-9][0-9].*")):
        if path.suffix not in (".jpg", ".png"):
            continue
        data = path.read_bytes()
        with Image.open(path) as im:
            dpi = im.info.get("dpi", (300, 300))
            mode = {"RGB": ColourMode.RGB, "L": ColourMode.GRAY}[im.mode]
            if path.suffix == ".jpg":
                image = EncodedImage(
                    data=data,
                    filter="DCTDecode",
                    colour_mode=mode,
                    width=im.width,
                    height=im.height,
                    bits_per_component=8,
                )
                scan_bytes = len(data)
            elif not im.info.get("interlace"):
                idat = _png_idat(data)
                image = EncodedImage(
                    data=idat,
                    filter="FlateDecode",
                    colour_mode=mode,
                    width=im.width,
                    height=im.height,
                    bits_per_component=8,
                    decode_parms={
                        "Predictor": 15,
                        "Colors": 3 if mode is ColourMode.RGB else 1,
                        "BitsPerComponent": 8,
                        "Columns": im.width,
                    },
                )
                scan_bytes = len(idat)
            else:
                image = encode_pixels(np.asarray(im), mode)
                scan_bytes = len(data)
        pages.append((image, float(dpi[0]), float(dpi[1]), scan_bytes))
    return pages


def source_files(component: Path) -> list[Path]:
    for name in ("scan.tif", "scan.pdf"):
        if (component / name).exists():
            return [component / name]
    return sorted(p for p in component.glob("p[0-9][0-9].*") if p.suffix in (".jpg", ".png"))


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "digitize-bench" / "ocrmypdf-sizes.json"


def ocrmypdf_bytes(files: list[Path], work: Path, cache: dict[str, int]) -> int:
    """OCRmyPDF output bytes for the files (cached by path, size and mtime: it is slow)."""
    exe = str(Path(sys.executable).with_name("ocrmypdf"))
    if not Path(exe).exists():
        exe = shutil.which("ocrmypdf") or "ocrmypdf"
    total = 0
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    for i, source in enumerate(files):
        stat = source.stat()
        key = f"{source}:{stat.st_size}:{stat.st_mtime_ns}"
        if key not in cache:
            out = work / f"ocrmypdf-{i}.pdf"
            proc = subprocess.run(
                [
                    exe,
                    "-q",
                    "-l",
                    "vie",
                    "--output-type",
                    "pdfa",
                    "--jobs",
                    "2",
                    str(source),
                    str(out),
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"ocrmypdf failed on {source}: {proc.stderr.strip()[-500:]}")
            cache[key] = out.stat().st_size
        total += cache[key]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--limit", type=int, default=None, help="OCRmyPDF on the first N components"
    )
    parser.add_argument("--no-ocrmypdf", action="store_true")
    args = parser.parse_args()

    components = sorted(p.parent for p in args.corpus.glob("dev-*/c*/component.json"))
    cache_path = _cache_file()
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    rows = []
    speeds = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n, component in enumerate(components):
            loaded = load_pages(component)
            pdf_pages = []
            text_chars = 0
            for index, (image, dpi_x, dpi_y, _) in enumerate(loaded, 1):
                words, text = gt_words(component / f"p{index:02d}.json", image.width, image.height)
                text_chars += len(text)
                ocr = PageOcr(
                    engine="ground-truth",
                    engine_version="0",
                    language="vie",
                    width_px=image.width,
                    height_px=image.height,
                    dpi=dpi_x,
                    text=text,
                    words=tuple(words),
                )
                pdf_pages.append(PdfPage(image=image, dpi_x=dpi_x, dpi_y=dpi_y, ocr=ocr))
            meta = PdfMetadata(
                title=component.name,
                component_name=component.name,
                dossier_code=component.parent.name,
                digitiser="Nguyễn Thị Hoa",
                created_at=datetime(2025, 3, 19, 1, 30, tzinfo=UTC),
            )
            timings = []
            for _ in range(3):
                result = build_component_pdf(pdf_pages, meta, work / "ours.pdf")
                timings.append(result.seconds)
            speeds.append(min(timings) / len(pdf_pages))
            wrapped = build_component_pdf(
                pdf_pages, meta, work / "wrapped.pdf", PdfaSettings(jpeg_flate_wrap=True)
            ).size_bytes
            scan = sum(p[3] for p in loaded)
            image_bytes = sum(len(p.image.data) for p in pdf_pages)
            text_bytes = sum(result.page_bytes) - image_bytes
            theirs = None
            if not args.no_ocrmypdf and (args.limit is None or n < args.limit):
                try:
                    theirs = ocrmypdf_bytes(source_files(component), work, cache)
                except RuntimeError as exc:  # e.g. Ghostscript missing: say so, keep going
                    print(f"\n{exc}", file=sys.stderr)
            rows.append(
                {
                    "component": f"{component.parent.name}/{component.name}",
                    "format": source_files(component)[0].suffix[1:]
                    + ("" if all(result.passthrough_pages) else "*"),
                    "pages": len(pdf_pages),
                    "scan": scan,
                    "ours": result.size_bytes,
                    "text": text_bytes,
                    "overhead": result.size_bytes - sum(result.page_bytes),
                    "theirs": theirs,
                    "wrapped": wrapped,
                    "ms_page": 1000 * min(timings) / len(pdf_pages),
                    "part": result.pdfa_part,
                }
            )
            print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cache_path.write_text(json.dumps(cache, indent=1))

    head = (
        f"{'component':<12} {'fmt':<5} {'pg':>2} {'scan kB':>8} {'ours kB':>8} {'ours/scan':>9} "
        f"{'text kB':>7} {'fixed kB':>8} {'wrap/scan':>9} {'OCRmyPDF kB':>11} {'theirs/scan':>11} "
        f"{'ms/page':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        theirs = (
            f"{r['theirs'] / 1000:>11.1f} {r['theirs'] / r['scan']:>11.3f}"
            if r["theirs"]
            else f"{'-':>11} {'-':>11}"
        )
        print(
            f"{r['component']:<12} {r['format']:<5} {r['pages']:>2} {r['scan'] / 1000:>8.1f} "
            f"{r['ours'] / 1000:>8.1f} {r['ours'] / r['scan']:>9.3f} {r['text'] / 1000:>7.1f} "
            f"{r['overhead'] / 1000:>8.1f} {r['wrapped'] / r['scan']:>9.3f} {theirs} "
            f"{r['ms_page']:>7.1f}"
        )
    scan = sum(r["scan"] for r in rows)
    ours = sum(r["ours"] for r in rows)
    text = sum(r["text"] for r in rows)
    pages = sum(r["pages"] for r in rows)
    print("-" * len(head))
    print(
        f"all {pages} pages: scan {scan / 1e6:.2f} MB, ours {ours / 1e6:.2f} MB "
        f"({ours / scan:.3f}x scan; {(ours - text) / scan:.3f}x without the text layer; "
        f"target <= 1.05x scan + text: {(ours) / (1.05 * scan + text):.3f} of the budget)"
    )
    compared = [r for r in rows if r["theirs"]]
    if compared:
        s = sum(r["scan"] for r in compared)
        o = sum(r["ours"] for r in compared)
        w = sum(r["wrapped"] for r in compared)
        t = sum(r["theirs"] for r in compared)
        smaller = sum(r["ours"] < r["theirs"] for r in compared)
        smaller_wrapped = sum(r["wrapped"] < r["theirs"] for r in compared)
        print(
            f"vs OCRmyPDF on {len(compared)} components ({sum(r['pages'] for r in compared)} pages): "
            f"ours {o / s:.3f}x scan (smaller on {smaller}/{len(compared)}), with "
            f"jpeg_flate_wrap {w / s:.3f}x (smaller on {smaller_wrapped}/{len(compared)}), "
            f"OCRmyPDF {t / s:.3f}x scan"
        )
    per_page = [1000 * s for s in speeds]
    print(
        f"packaging time per page (build_component_pdf, best of 3, no OCR): median "
        f"{statistics.median(per_page):.1f} ms, max {max(per_page):.1f} ms"
    )


if __name__ == "__main__":
    main()
