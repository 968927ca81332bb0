"""Output size over the shared corpus: what ``digitize run`` really writes, beside OCRmyPDF;
and the packaging step on its own.

    .venv/bin/python bench/size.py                          # every dossier, both tables
    .venv/bin/python bench/size.py --only dev-d02,dev-d03   # some dossiers
    .venv/bin/python bench/size.py --no-ocrmypdf            # ours only
    .venv/bin/python bench/size.py --no-packaging           # the first table only

Writes ``bench/results/size.md`` (machine, versions, date, the tables) and prints the tables.
Needs ``.venv/bin/pip install -e '.[bench]'`` and Debian ``ghostscript`` (OCRmyPDF's PDF/A).

**1. ``digitize run`` output vs OCRmyPDF** (the figure to quote). Each dossier goes through
``digitize run DOSSIER --out OUT`` with the default profile, as a clerk runs it: pages turned
and deskewed (a straightened page is re-encoded: JPEG q90 for colour/gray, G4 for bilevel;
an untouched page keeps its scan bytes), OCR text layer, PDF/A-2u (2b when a page has no
text), the visible signature note and the PAdES B-B signature (demo identity: the
certificate chain is in the signature; B-T/LT/LTA would add a timestamp and revocation
data). Sizes are the signed component PDFs listed in the manifest; a second table adds the
bundle's other files (manifest.json, its detached signature, checksums). OCRmyPDF gets the
same pages the same way: one call per component (``bench/baseline.py``: scanner PDFs as
they are, images and TIFF frames joined losslessly by img2pdf), ``ocrmypdf -l vie --deskew
--rotate-pages --output-type pdfa`` with its default optimisation (``-O1``): its own text
layer, PDF/A-2b, its own deskew; no signature, no bundle. "scan" is the bytes of the
component's scan files as delivered.

**2. Packaging only** (``--no-packaging`` skips it): ``build_component_pdf`` on the pages as
ingest would hand them over *without* cleaning (no deskew, so no re-encoding where ingest
passes the scan through: JPEG files, PDF JPEG images, single-strip G4; PNG and multi-strip
G4 are re-encoded as the pipeline does, marked ``*``), with a text layer made from the
ground-truth lines in ``pNN.json`` (no OCR: this isolates packaging; the text layer costs
about the same whatever OCR produced it), unsigned. Beside it OCRmyPDF without deskew
(``-l vie --output-type pdfa``), so that neither side straightens pages. ``wrap/scan`` is the
same with the opt-in ``jpeg_flate_wrap`` setting. Packaging time = ``build_component_pdf``
best of 3 per page, excluding loading and OCR.

Fairness: the same pages, one OCRmyPDF call per component (never per image file), both sides'
deskew or neither's. OCRmyPDF outputs are cached in
``$XDG_CACHE_HOME/digitize-bench/ocrmypdf-sizes.json`` keyed on the scan bytes, OCRmyPDF's and
img2pdf's versions, the flags and the tessdata (a change of any of them runs it again).
Time is not compared here (``bench/batch.py`` does that).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pikepdf  # noqa: E402
from PIL import Image  # noqa: E402

from bench.baseline import (  # noqa: E402
    OCRMYPDF_FLAGS,
    OCRMYPDF_OK,
    component_dirs,
    component_input,
    component_scans,
    helper_versions,
    ocrmypdf_command,
    ocrmypdf_env,
    output_pages,
    sources_key,
)
from bench.results import markdown_table, write_results  # noqa: E402
from digitize.models import ColourMode, EncodedImage, PageOcr, Word  # noqa: E402
from digitize.pdfa import (  # noqa: E402
    PdfaSettings,
    PdfMetadata,
    PdfPage,
    build_component_pdf,
    encode_pixels,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
# Packaging-only comparison: neither side straightens pages.
OCRMYPDF_NO_DESKEW = ("-l", "vie", "--output-type", "pdfa")


# --- OCRmyPDF ------------------------------------------------------------------------------
def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "digitize-bench" / "ocrmypdf-sizes.json"


def ocrmypdf_bytes(
    component: Path, flags: tuple[str, ...], work: Path, cache: dict[str, int], cores: int
) -> int:
    """OCRmyPDF's output bytes for the component (one call; cached, see the docstring)."""
    args = (*flags, "--jobs", str(cores))
    key = sources_key(component_scans(component), args)
    if key in cache:
        return cache[key]
    source, _ = component_input(component, work / "ocrmypdf-in.pdf")
    out = work / "ocrmypdf-out.pdf"
    proc = subprocess.run(
        [*ocrmypdf_command(), "-q", *args, str(source.pdf), str(out)],
        capture_output=True,
        text=True,
        env=ocrmypdf_env(),
    )
    if proc.returncode not in OCRMYPDF_OK or output_pages(out) != source.pages:
        raise RuntimeError(f"ocrmypdf failed on {source.name}: {proc.stderr.strip()[-500:]}")
    cache[key] = out.stat().st_size
    return cache[key]


# --- 1. digitize run -----------------------------------------------------------------------
@dataclass(frozen=True)
class RunRow:
    component: str
    formats: str
    pages: int
    kept: int  # pages whose scan bytes are in the PDF unchanged
    profile: str
    scan: int
    ours: int
    theirs: int | None


def run_dossier(dossier: Path, out: Path, cores: int) -> tuple[dict, Path]:
    """``digitize run`` as a clerk runs it; returns the manifest and the bundle folder."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "digitize", "run", str(dossier), "--out", str(out),
         "--workers", str(cores), "--json"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"digitize run {dossier.name} failed ({proc.returncode}): "
                         f"{proc.stderr.strip()[-1500:]}")  # fmt: skip
    bundle = Path(json.loads(proc.stdout)["bundle_path"])
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8")), bundle


def run_rows(
    dossiers: Sequence[Path], args: argparse.Namespace, work: Path, cache: dict[str, int]
) -> tuple[list[RunRow], list[list[str]]]:
    rows, bundles = [], []
    for dossier in dossiers:
        manifest, bundle = run_dossier(dossier, work / "runs", args.cores)
        documents = {d["component_name"]: d for d in manifest["documents"]}
        for component in sorted(c for c in dossier.iterdir() if c.is_dir()):
            if not component_scans(component):
                continue
            doc = documents[component.name]
            scans = component_scans(component)
            theirs = None
            if not args.no_ocrmypdf:
                theirs = ocrmypdf_bytes(component, OCRMYPDF_FLAGS, work, cache, args.cores)
            rows.append(
                RunRow(
                    component=f"{dossier.name}/{component.name}",
                    formats=",".join(sorted({s.suffix[1:] for s in scans})),
                    pages=len(doc["pages"]),
                    kept=sum(1 for p in doc["pages"] if p["passthrough"]),
                    profile=doc["pdfa_profile"].removeprefix("PDF/A-"),
                    scan=sum(s.stat().st_size for s in scans),
                    ours=(bundle / doc["file"]).stat().st_size,
                    theirs=theirs,
                )
            )
            print(".", end="", flush=True, file=sys.stderr)
        pdfs = sum((bundle / d["file"]).stat().st_size for d in manifest["documents"])
        everything = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        scan = sum(s.stat().st_size for c in dossier.iterdir() if c.is_dir()
                   for s in component_scans(c))  # fmt: skip
        bundles.append([dossier.name, f"{scan / 1000:.1f}", f"{pdfs / 1000:.1f}",
                        f"{(everything - pdfs) / 1000:.1f}", f"{everything / 1000:.1f}",
                        f"{everything / scan:.3f}"])  # fmt: skip
    print(file=sys.stderr)
    return rows, bundles


def run_table(rows: Sequence[RunRow]) -> tuple[list[str], list[list[str]], str]:
    head = ["component", "scan files", "pages", "pages kept as scanned", "PDF/A", "scan kB",
            "ours kB (signed)", "ours/scan", "OCRmyPDF kB", "OCRmyPDF/scan", "ours/OCRmyPDF"]  # fmt: skip
    body = []
    for r in rows:
        theirs = (
            [f"{r.theirs / 1000:.1f}", f"{r.theirs / r.scan:.3f}", f"{r.ours / r.theirs:.3f}"]
            if r.theirs
            else ["-", "-", "-"]
        )
        body.append([r.component, r.formats, str(r.pages), f"{r.kept}/{r.pages}", r.profile,
                     f"{r.scan / 1000:.1f}", f"{r.ours / 1000:.1f}", f"{r.ours / r.scan:.3f}",
                     *theirs])  # fmt: skip
    scan, ours = sum(r.scan for r in rows), sum(r.ours for r in rows)
    pages, kept = sum(r.pages for r in rows), sum(r.kept for r in rows)
    summary = (
        f"all {pages} pages ({kept} kept as scanned, {pages - kept} re-encoded after "
        f"cleaning): scan {scan / 1e6:.2f} MB, ours {ours / 1e6:.2f} MB ({ours / scan:.3f}x scan)"
    )
    compared = [r for r in rows if r.theirs]
    if compared:
        s = sum(r.scan for r in compared)
        o = sum(r.ours for r in compared)
        t = sum(r.theirs or 0 for r in compared)
        smaller = sum(r.ours < (r.theirs or 0) for r in compared)
        body.append(["all compared", "", str(sum(r.pages for r in compared)), "", "",
                     f"{s / 1000:.1f}", f"{o / 1000:.1f}", f"{o / s:.3f}", f"{t / 1000:.1f}",
                     f"{t / s:.3f}", f"{o / t:.3f}"])  # fmt: skip
        summary += (
            f"; vs OCRmyPDF on {len(compared)} components: ours {o / s:.3f}x scan, OCRmyPDF "
            f"{t / s:.3f}x scan, ours smaller on {smaller}/{len(compared)}"
        )
    return head, body, summary


# --- 2. packaging only ---------------------------------------------------------------------
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


def _tiff_pages(tif: Path) -> list[tuple[EncodedImage, float, float, int]]:
    pages = []
    raw = tif.read_bytes()
    with Image.open(tif) as im:
        for frame in range(im.n_frames):
            im.seek(frame)
            offsets, counts = im.tag_v2[273], im.tag_v2[279]
            dpi = im.info.get("dpi", (300, 300))
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
            else:  # strips are separate CCITT streams: re-encoded, as ingest does
                image = encode_pixels(np.asarray(im.convert("L")), ColourMode.BILEVEL)
            pages.append((image, float(dpi[0]), float(dpi[1]), sum(counts)))
    return pages


def _pdf_pages(pdf: Path) -> list[tuple[EncodedImage, float, float, int]]:
    pages = []
    with pikepdf.open(pdf) as doc:
        for page in doc.pages:
            (xobject,) = [page.Resources.XObject[k] for k in page.Resources.XObject.keys()]
            raw = xobject.read_raw_bytes()
            width, height = int(xobject.Width), int(xobject.Height)
            box = [float(v) for v in page.MediaBox]
            mode = ColourMode.RGB if xobject.ColorSpace == "/DeviceRGB" else ColourMode.GRAY
            image = EncodedImage(data=raw, filter="DCTDecode", colour_mode=mode, width=width,
                                 height=height, bits_per_component=8)  # fmt: skip
            dpi_x, dpi_y = width / (box[2] - box[0]) * 72, height / (box[3] - box[1]) * 72
            pages.append((image, dpi_x, dpi_y, len(raw)))
    return pages


def load_pages(component: Path) -> list[tuple[EncodedImage, float, float, int]]:
    """(image, dpi_x, dpi_y, scan image bytes) per page, in page order, as ingest would pass
    them on without cleaning (pass-through where ingest passes through, else re-encoded)."""
    tif, pdf = component / "scan.tif", component / "scan.pdf"
    if tif.exists():
        return _tiff_pages(tif)
    if pdf.exists():
        return _pdf_pages(pdf)
    pages = []
    for path in sorted(component.glob("p[0-9][0-9].*")):
        if path.suffix not in (".jpg", ".png"):
            continue
        data = path.read_bytes()
        with Image.open(path) as im:
            dpi = im.info.get("dpi", (300, 300))
            mode = {"RGB": ColourMode.RGB, "L": ColourMode.GRAY}[im.mode]
            if path.suffix == ".jpg":
                image = EncodedImage(data=data, filter="DCTDecode", colour_mode=mode,
                                     width=im.width, height=im.height, bits_per_component=8)  # fmt: skip
            else:  # ingest never passes PNG through: the pipeline re-encodes it
                image = encode_pixels(np.asarray(im), mode)
        pages.append((image, float(dpi[0]), float(dpi[1]), len(data)))
    return pages


def packaging_rows(
    components: Sequence[Path], args: argparse.Namespace, work: Path, cache: dict[str, int]
) -> tuple[list[dict], list[float]]:
    rows, speeds = [], []
    for component in components:
        loaded = load_pages(component)
        pdf_pages = []
        for index, (image, dpi_x, dpi_y, _) in enumerate(loaded, 1):
            words, text = gt_words(component / f"p{index:02d}.json", image.width, image.height)
            ocr = PageOcr(engine="ground-truth", engine_version="0", language="vie",
                          width_px=image.width, height_px=image.height, dpi=dpi_x, text=text,
                          words=tuple(words))  # fmt: skip
            pdf_pages.append(PdfPage(image=image, dpi_x=dpi_x, dpi_y=dpi_y, ocr=ocr))
        meta = PdfMetadata(title=component.name, component_name=component.name,
                           dossier_code=component.parent.name, digitiser="Nguyễn Thị Hoa",
                           created_at=datetime(2025, 3, 19, 1, 30, tzinfo=UTC))  # fmt: skip
        timings = []
        for _ in range(3):
            result = build_component_pdf(pdf_pages, meta, work / "ours.pdf")
            timings.append(result.seconds)
        speeds.append(min(timings) / len(pdf_pages))
        wrapped = build_component_pdf(
            pdf_pages, meta, work / "wrapped.pdf", PdfaSettings(jpeg_flate_wrap=True)
        ).size_bytes
        image_bytes = sum(len(p.image.data) for p in pdf_pages)
        theirs = None
        if not args.no_ocrmypdf:
            theirs = ocrmypdf_bytes(component, OCRMYPDF_NO_DESKEW, work, cache, args.cores)
        rows.append({
            "component": f"{component.parent.name}/{component.name}",
            "format": component_scans(component)[0].suffix[1:]
            + ("" if all(result.passthrough_pages) else "*"),
            "pages": len(pdf_pages), "scan": sum(p[3] for p in loaded),
            "ours": result.size_bytes, "text": sum(result.page_bytes) - image_bytes,
            "overhead": result.size_bytes - sum(result.page_bytes), "theirs": theirs,
            "wrapped": wrapped, "ms_page": 1000 * min(timings) / len(pdf_pages),
        })  # fmt: skip
        print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    return rows, speeds


def packaging_table(
    rows: Sequence[dict], speeds: Sequence[float]
) -> tuple[list[str], list[list[str]], str]:
    head = ["component", "fmt", "pages", "scan kB", "ours kB", "ours/scan", "text kB",
            "fixed kB", "wrap/scan", "OCRmyPDF kB (no deskew)", "OCRmyPDF/scan", "ms/page"]  # fmt: skip
    body = []
    for r in rows:
        theirs = ([f"{r['theirs'] / 1000:.1f}", f"{r['theirs'] / r['scan']:.3f}"]
                  if r["theirs"] else ["-", "-"])  # fmt: skip
        body.append([r["component"], r["format"], str(r["pages"]), f"{r['scan'] / 1000:.1f}",
                     f"{r['ours'] / 1000:.1f}", f"{r['ours'] / r['scan']:.3f}",
                     f"{r['text'] / 1000:.1f}", f"{r['overhead'] / 1000:.1f}",
                     f"{r['wrapped'] / r['scan']:.3f}", *theirs, f"{r['ms_page']:.1f}"])  # fmt: skip
    scan = sum(r["scan"] for r in rows)
    ours = sum(r["ours"] for r in rows)
    text = sum(r["text"] for r in rows)
    pages = sum(r["pages"] for r in rows)
    summary = (
        f"all {pages} pages: scan image data {scan / 1e6:.2f} MB, ours {ours / 1e6:.2f} MB "
        f"({ours / scan:.3f}x scan; {(ours - text) / scan:.3f}x without the text layer; "
        f"target <= 1.05x scan + text: {ours / (1.05 * scan + text):.3f} of the budget)"
    )
    compared = [r for r in rows if r["theirs"]]
    if compared:
        s = sum(r["scan"] for r in compared)
        o = sum(r["ours"] for r in compared)
        w = sum(r["wrapped"] for r in compared)
        t = sum(r["theirs"] for r in compared)
        summary += (
            f"; vs OCRmyPDF without deskew on {len(compared)} components: ours {o / s:.3f}x "
            f"scan (smaller on {sum(r['ours'] < r['theirs'] for r in compared)}), with "
            f"jpeg_flate_wrap {w / s:.3f}x, OCRmyPDF {t / s:.3f}x"
        )
    per_page = [1000 * s for s in speeds]
    summary += (
        f". Packaging time per page (build_component_pdf, best of 3, no OCR): median "
        f"{statistics.median(per_page):.1f} ms, max {max(per_page):.1f} ms"
    )
    return head, body, summary


# --- main ----------------------------------------------------------------------------------
def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--only", default="", help="comma-separated dossier folder names")
    parser.add_argument("--cores", type=int, default=2, help="page workers / OCRmyPDF --jobs")
    parser.add_argument("--no-ocrmypdf", action="store_true")
    parser.add_argument("--no-packaging", action="store_true", help="skip the second table")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        raise SystemExit(f"corpus not found: {args.corpus} (../shared beside the repository)")
    only = {d for d in args.only.split(",") if d}
    dossiers = sorted(p for p in args.corpus.iterdir() if p.is_dir()
                      and not p.name.startswith(".") and (not only or p.name in only))  # fmt: skip
    if not dossiers or (only and len(dossiers) != len(only)):
        raise SystemExit(f"dossiers not found in {args.corpus}: {args.only or 'any'}")
    os.environ.setdefault("DIGITIZE_DATA_DIR", tempfile.mkdtemp(prefix="digitize-bench-data-"))
    cache_path = _cache_file()
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    with tempfile.TemporaryDirectory(prefix="digitize-bench-size-") as tmp:
        work = Path(tmp)
        try:
            rows, bundles = run_rows(dossiers, args, work, cache)
            packaging = None
            if not args.no_packaging:
                components = [c for c in component_dirs(args.corpus) if c.parent in dossiers]
                packaging = packaging_rows(components, args, work, cache)
        finally:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_text(json.dumps(cache, indent=1))

    head, body, summary = run_table(rows)
    bundle_head = ["dossier", "scan kB", "signed PDFs kB",
                   "manifest + signature + checksums kB", "bundle kB", "bundle/scan"]  # fmt: skip
    what = (
        "Ours: signed PDF/A (text layer from our OCR, visible signature note, PAdES B-B with the "
        "demo identity), pages deskewed and re-encoded as `digitize run` does. OCRmyPDF: "
        f"`{' '.join(OCRMYPDF_FLAGS)}`, one call per component ({helper_versions(with_parallel=False)}), "
        "PDF/A-2b with its text layer, unsigned. Rules and exclusions: the docstring of "
        "`bench/size.py`."
    )
    print(what + "\n")
    print_table(head, body)
    print(summary + "\n")
    print_table(bundle_head, bundles)
    sections = [
        ("What each side includes", what),
        ("digitize run output vs OCRmyPDF", markdown_table(head, body) + "\n\n" + summary),
        ("Whole bundles", markdown_table(bundle_head, bundles)),
    ]
    if packaging is not None:
        p_head, p_body, p_summary = packaging_table(*packaging)
        print()
        print_table(p_head, p_body)
        print(p_summary)
        note = (
            "Unsigned, ground-truth text layer, no cleaning (`*`: a page re-encoded as the "
            "pipeline would, PNG or multi-strip G4); OCRmyPDF here without `--deskew "
            "--rotate-pages`. 'scan' is the scan's compressed image data."
        )
        sections.append(
            ("Packaging only (build_component_pdf)",
             note + "\n\n" + markdown_table(p_head, p_body) + "\n\n" + p_summary)
        )  # fmt: skip
    path = write_results("size", "Output size: digitize run vs OCRmyPDF", sections)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
