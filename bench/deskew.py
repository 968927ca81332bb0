"""Benchmark: orientation + deskew on the corpus, ours vs OCRmyPDF side by side.

Run: .venv/bin/python bench/deskew.py [--limit N] [--no-ocrmypdf] [--real-scans]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pikepdf  # noqa: E402
from PIL import Image  # noqa: E402

from bench.corpus import (
    CORPUS,
    REAL_SCANS,
    BenchPage,
    corpus_pages,
    load_pixels,
    pdf_page_image,
    to_array,
)
from digitize.clean import clean_page, estimate_page


# --- ours ------------------------------------------------------------------------------------
@dataclass
class Result:
    page: BenchPage
    orientation_ok: bool
    residual: float  # |skew left on the page| after cleaning, degrees
    worse: bool
    ms_estimate: float = 0.0
    ms_clean: float = 0.0
    note: str = ""


def _residual_after(true_skew: float, applied_correction: float) -> float:
    """Skew left on the page: the content was turned by ``true_skew`` and we turned it by
    ``applied_correction`` (both counter-clockwise)."""
    return abs(true_skew + applied_correction)


def run_ours(page: BenchPage, pixels: np.ndarray, tolerance: float = 0.01) -> Result:
    """``tolerance``: how much above the input skew counts as "made worse" (the corpus truth
    is exact; the real-scan truth is rounded to 0.1° and itself an estimate)."""
    t = time.perf_counter()
    geometry = estimate_page(pixels, page.dpi)
    ms_estimate = 1000 * (time.perf_counter() - t)
    t = time.perf_counter()
    _, record = clean_page(pixels, page.dpi)
    ms_clean = 1000 * (time.perf_counter() - t)
    orientation_ok = record.orientation_deg == page.orientation
    skew_correction = -record.skew_deg if record.resampled else 0.0
    residual = _residual_after(page.skew, skew_correction)
    worse = (page.orientation == 0 and not orientation_ok) or residual > abs(page.skew) + tolerance
    note = ",".join(f.code for f in record.flags)
    if geometry.orientation_deg != record.orientation_deg:
        note += " estimate/clean disagree"
    return Result(page, orientation_ok, residual, worse, ms_estimate, ms_clean, note)


# --- OCRmyPDF --------------------------------------------------------------------------------
def _single_page_input(page: BenchPage, work: Path) -> Path:
    """The page as a one-page file in its scanner format (OCRmyPDF reads whole files)."""
    suffix = page.source.suffix.lower()
    if suffix in (".jpg", ".jpeg", ".png"):
        return page.source
    target = work / f"{page.name.replace('/', '_')}{suffix}"
    if suffix == ".pdf":
        with pikepdf.open(page.source) as src:
            out = pikepdf.new()
            out.pages.append(src.pages[page.page_index])
            out.save(target)
        return target
    with Image.open(page.source) as im:
        im.seek(page.page_index)
        im.save(target, compression="group4", dpi=(page.dpi, page.dpi))
    return target


def run_ocrmypdf(
    page: BenchPage, work: Path, timeout: float
) -> tuple[np.ndarray | None, float, str]:
    src = _single_page_input(page, work)
    out = work / f"{page.name.replace('/', '_')}.ocrmypdf.pdf"
    cmd = [
        sys.executable,
        "-m",
        "ocrmypdf",
        "--deskew",
        "--rotate-pages",
        "-l",
        "vie",
        "--output-type",
        "pdf",
        "--jobs",
        "1",
        "--tesseract-timeout",
        str(timeout),
        "--quiet",
        str(src),
        str(out),
    ]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        return None, seconds, f"ocrmypdf exit {proc.returncode}: {proc.stderr.strip()[-200:]}"
    pixels, _ = pdf_page_image(out, 0)
    return pixels, seconds, ""


def judge_output(page: BenchPage, pixels: np.ndarray) -> Result:
    """Judge someone else's output page with our estimators: it is upright when we find no
    turn, and its residual skew is the skew we measure on it."""
    g = estimate_page(pixels, page.dpi, tesseract_fallback=True)
    orientation_ok = g.orientation_deg == 0
    residual = abs(g.skew_deg)
    worse = (page.orientation == 0 and not orientation_ok) or residual > abs(page.skew) + 0.05
    return Result(page, orientation_ok, residual, worse, note=f"found turn {g.orientation_deg}")


# --- report ----------------------------------------------------------------------------------
def summarise(results: list[Result]) -> dict[str, str]:
    if not results:
        return {}
    res = np.array([r.residual for r in results])
    row = {
        "pages": str(len(results)),
        "orientation": f"{sum(r.orientation_ok for r in results)}/{len(results)}",
        "mean |res|": f"{res.mean():.3f}°",
        "p95 |res|": f"{np.percentile(res, 95):.3f}°",
        "max |res|": f"{res.max():.3f}°",
        "<=0.2°": f"{100 * np.mean(res <= 0.2):.0f} %",
        "worse": str(sum(r.worse for r in results)),
    }
    return row


def print_table(columns: dict[str, dict[str, str]]) -> None:
    keys = list(next(iter(columns.values())).keys())
    names = list(columns)
    width = max(len(k) for k in keys) + 2
    print("".ljust(width) + "".join(n.rjust(16) for n in names))
    for k in keys:
        print(k.ljust(width) + "".join(columns[n].get(k, "").rjust(16) for n in names))


def real_scan_pages() -> list[tuple[BenchPage, np.ndarray]]:
    """Real scans with their measured skew (truth rounded to 0.1°), page images via pikepdf."""
    out = []
    for truth_file in sorted(REAL_SCANS.glob("r*/truth.json")):
        t = json.loads(truth_file.read_text(encoding="utf-8"))
        source = truth_file.parent / t["files"][0]["name"]
        for i, (skew, orient) in enumerate(
            zip(t["layout"]["skew_deg"], t["layout"]["orientation_deg"], strict=True)
        ):
            if skew is None:
                continue
            try:
                if source.suffix.lower() == ".pdf":
                    pixels, dpi = pdf_page_image(source, i)
                else:
                    with Image.open(source) as im:
                        pixels = to_array(im)
                        dpi = float(im.info.get("dpi", (0, 0))[0]) or 0.0
            except Exception as exc:  # an undecodable page (e.g. JBIG2 without a decoder)
                print(f"  skipped {truth_file.parent.name} p{i + 1}: {exc}", file=sys.stderr)
                continue
            name = f"{truth_file.parent.name}/p{i + 1:02d}"
            out.append((BenchPage(name, source, i, dpi, float(skew), int(orient)), pixels))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=0, help="only the first N corpus pages")
    parser.add_argument("--no-ocrmypdf", action="store_true", help="skip the OCRmyPDF column")
    parser.add_argument("--jobs", type=int, default=2, help="OCRmyPDF processes side by side")
    parser.add_argument(
        "--tesseract-timeout",
        type=float,
        default=0,
        help="OCRmyPDF OCR timeout; 0 skips OCR (deskew and rotation still run)",
    )
    parser.add_argument("--real-scans", action="store_true", help="also the real scans")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per page")
    args = parser.parse_args()

    # One core for our timings, as the target says; OpenCV would otherwise use both.
    cv2.setNumThreads(1)
    os.environ["OMP_THREAD_LIMIT"] = "1"
    pages = corpus_pages()
    if args.limit:
        pages = pages[: args.limit]
    loaded = [(p, load_pixels(p)) for p in pages]
    estimate_page(loaded[0][1], loaded[0][0].dpi)  # warm-up (imports, tesseract load)

    ours = [run_ours(p, px) for p, px in loaded]
    theirs: list[Result] = []
    ocrmypdf_seconds: list[float] = []
    if not args.no_ocrmypdf:
        with tempfile.TemporaryDirectory(prefix="bench-deskew-") as tmp:
            work = Path(tmp)

            def one(
                item: tuple[BenchPage, np.ndarray],
            ) -> tuple[BenchPage, np.ndarray | None, float, str]:
                page, _ = item
                pixels, seconds, err = run_ocrmypdf(page, work, args.tesseract_timeout)
                return page, pixels, seconds, err

            with ThreadPoolExecutor(max_workers=args.jobs) as pool:
                for page, pixels, seconds, err in pool.map(one, loaded):
                    ocrmypdf_seconds.append(seconds)
                    if pixels is None:
                        print(f"  OCRmyPDF failed on {page.name}: {err}", file=sys.stderr)
                        theirs.append(Result(page, False, abs(page.skew), False, note=err))
                    else:
                        theirs.append(judge_output(page, pixels))

    if args.verbose:
        print(f"{'page':18s} {'true':>8s} {'turn':>4s}  {'ours res':>8s} {'OCRmyPDF res':>12s}")
        for i, r in enumerate(ours):
            t = theirs[i] if theirs else None
            print(
                f"{r.page.name:18s} {r.page.skew:+8.3f} {r.page.orientation:4d}  "
                f"{r.residual:8.3f}{'' if r.orientation_ok else ' TURN!'}"
                + (
                    f" {t.residual:12.3f}{'' if t.orientation_ok else ' TURN!'} {t.note}"
                    if t
                    else ""
                )
                + (f"  {r.note}" if r.note else "")
            )
    columns = {"ours": summarise(ours)}
    columns["ours"]["ms/page est."] = f"{np.mean([r.ms_estimate for r in ours]):.0f}"
    columns["ours"]["ms/page clean"] = f"{np.mean([r.ms_clean for r in ours]):.0f}"
    if theirs:
        columns["OCRmyPDF"] = summarise(theirs)
        columns["OCRmyPDF"]["ms/page est."] = "-"
        columns["OCRmyPDF"]["ms/page clean"] = f"{1000 * np.mean(ocrmypdf_seconds):.0f}"
    print(f"\ncorpus {CORPUS} ({len(loaded)} pages); residual = |true skew - correction|")
    if theirs:
        print(
            "OCRmyPDF: --deskew --rotate-pages -l vie --output-type pdf --jobs 1 "
            f"--tesseract-timeout {args.tesseract_timeout:g}; its output page judged by OUR "
            "estimators (turn found, skew measured)"
        )
    print_table(columns)
    slow = [r for r in ours if r.ms_estimate > 150]
    if slow:
        print(f"pages over 150 ms estimate: {', '.join(r.page.name for r in slow)}")

    if args.real_scans:
        real = real_scan_pages()
        results = [run_ours(p, px, tolerance=0.2) for p, px in real]
        if args.verbose:
            for r in results:
                print(f"{r.page.name:18s} {r.page.skew:+6.1f}  res {r.residual:.3f} {r.note}")
        print(
            f"\nreal scans {REAL_SCANS} ({len(results)} pages with a skew truth, truth is itself "
            "a 100-dpi projection estimate rounded to 0.1°):"
        )
        row = summarise(results)
        row["ms/page est."] = f"{np.mean([r.ms_estimate for r in results]):.0f}"
        print_table({"ours": row})


if __name__ == "__main__":
    main()
