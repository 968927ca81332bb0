"""Orientation and deskew benchmark: digitize vs OCRmyPDF, both judged by one estimator.

    .venv/bin/python bench/deskew.py [--jobs 2] [--corpus DIR ...] [--no-ocrmypdf]
                                     [--real-scans] [--limit-components N] [--results deskew] [-v]

What runs, and how the two sides are kept even:

* Pages: every page of ``../shared/corpus`` and ``../shared/corpus-harsh`` (or ``--corpus``),
  grouped by component; with ``--real-scans`` also the real scans whose truth has a skew.
* digitize: each component on a fresh pool of ``--jobs`` page workers (the pipeline's
  ``new_process_pool``), each page decoded and put through ``clean_page`` with default
  settings, as ``digitize.pipeline.process_page`` does before OCR.
* OCRmyPDF: one ``ocrmypdf --deskew --rotate-pages -l vie --jobs N --output-type pdf
  --tesseract-timeout T`` call per component (image pages wrapped into one PDF by img2pdf first,
  not timed). ``T`` defaults to 0: OCR is skipped, which leaves its orientation detection (run
  under ``--tesseract-non-ocr-timeout``) and its deskew as they are, and saves the time.
* Warm-up: neither side; each component's wall time includes its start-up.
* Residual skew and orientation are measured the SAME way on both outputs, by an estimator that
  is not the code under test: the output page is registered to the input scan (SIFT key points
  matched between the two, a rotation + scale + shift fitted with RANSAC, both images at
  150 dpi), which gives the rotation R the tool applied; the corpus truth says the content was
  turned by ``skew + orientation`` counter-clockwise, so what is left is
  ``R + skew + orientation`` (wrapped to ±180°). A page is upright when that is under 45°.
  On our own outputs this matches the analytic residual (truth − our applied angle) to
  0.002° (checked when the bench was written), so the registration itself adds no error worth
  speaking of. Real scans: their truth skew is itself an estimate rounded to 0.1°.
* Failures: a component OCRmyPDF fails on is listed and left out of its rows; a page whose
  registration finds too few matches is listed and left out (never scored as 0 or 90°).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench.corpus import (  # noqa: E402
    CORPUS,
    CORPUS_HARSH,
    REAL_SCANS,
    BenchPage,
    component_pdf,
    load_pixels,
    map_per_component,
    pdf_page_image,
    select_components,
    to_array,
)
from bench.results import markdown_table, write_results  # noqa: E402

REGISTRATION_DPI = 150.0


# --- the shared judge: registration of the output to the input ------------------------------
def small_gray(pixels: np.ndarray, dpi: float, target: float = REGISTRATION_DPI) -> np.ndarray:
    gray = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    factor = min(1.0, target / dpi)
    if factor >= 1.0:
        return np.ascontiguousarray(gray)
    return cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def applied_rotation(source: np.ndarray, output: np.ndarray) -> tuple[float, int] | None:
    """Counter-clockwise rotation (degrees) that turns ``source`` into ``output`` (both small
    gray images at the same dpi) and the number of matched points supporting it; None when
    fewer than 20 points agree. SIFT is rotation-invariant, so any angle is found."""
    sift = cv2.SIFT_create(nfeatures=4000)
    ka, da = sift.detectAndCompute(source, None)
    kb, db = sift.detectAndCompute(output, None)
    if da is None or db is None or len(ka) < 20 or len(kb) < 20:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(da, db, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.75 * m[1].distance]
    if len(good) < 20:
        return None
    pa = np.float32([ka[g.queryIdx].pt for g in good])
    pb = np.float32([kb[g.trainIdx].pt for g in good])
    matrix, inliers = cv2.estimateAffinePartial2D(
        pa, pb, method=cv2.RANSAC, ransacReprojThreshold=2.0, maxIters=5000, confidence=0.999
    )
    if matrix is None or int(inliers.sum()) < 20:
        return None
    # Image y points down: a visual counter-clockwise turn has a negative matrix[1, 0].
    return math.degrees(math.atan2(-matrix[1, 0], matrix[0, 0])), int(inliers.sum())


@dataclass
class Judged:
    page: BenchPage
    residual: float | None  # signed skew left on the output page, degrees; None = not judged
    upright: bool
    matches: int
    seconds: float = 0.0  # the side's time for this page (component wall / pages)
    note: str = ""


def judge(page: BenchPage, source_small: np.ndarray, output_small: np.ndarray) -> Judged:
    found = applied_rotation(source_small, output_small)
    if found is None:
        return Judged(page, None, False, 0, note="registration failed")
    rotation, matches = found
    left = (rotation + page.skew + page.orientation + 180.0) % 360.0 - 180.0
    upright = abs(left) < 45.0
    return Judged(page, left if upright else None, upright, matches)


# --- digitize --------------------------------------------------------------------------------
def _ours(page: BenchPage) -> tuple[np.ndarray, np.ndarray, float, str]:
    """Clean one page in a worker; returns the input and output at the judge's dpi, the
    seconds ``clean_page`` took, and its flags."""
    from digitize.clean import clean_page

    pixels = load_pixels(page)
    started = time.perf_counter()
    out, record = clean_page(pixels, page.dpi)
    seconds = time.perf_counter() - started
    flags = ",".join(f.code for f in record.flags)
    return small_gray(pixels, page.dpi), small_gray(out, page.dpi), seconds, flags


def run_ours(groups: dict[str, list[BenchPage]], jobs: int) -> dict[str, Judged]:
    judged: dict[str, Judged] = {}
    outs, walls = map_per_component(groups, _ours, jobs)
    for name, group in groups.items():
        for page, (src, out, clean_s, flags) in zip(group, outs[name], strict=True):
            result = judge(page, src, out)
            result.seconds = walls[name] / len(group)
            result.note = " ".join(v for v in (result.note, flags, f"clean {clean_s:.2f}s") if v)
            judged[page.name] = result
    return judged


# --- OCRmyPDF --------------------------------------------------------------------------------
def run_ocrmypdf(
    groups: dict[str, list[BenchPage]], jobs: int, timeout: float, work: Path
) -> tuple[dict[str, Judged], list[str]]:
    env = dict(os.environ)
    env.pop("OMP_THREAD_LIMIT", None)  # OCRmyPDF sets tesseract's thread count itself
    judged: dict[str, Judged] = {}
    failed: list[str] = []
    for n, (name, group) in enumerate(groups.items()):
        source = component_pdf(group, work / f"in-{n}.pdf")
        out = work / f"out-{n}.pdf"
        cmd = [
            sys.executable, "-m", "ocrmypdf", "--deskew", "--rotate-pages", "-l", "vie",
            "--jobs", str(jobs), "--output-type", "pdf", "--tesseract-timeout", str(timeout),
            "--quiet", str(source), str(out),
        ]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - started
        print(f"  OCRmyPDF {name}: {len(group)} p, {wall:.1f} s, exit {proc.returncode}")
        if proc.returncode != 0:
            failed.append(f"{name}: exit {proc.returncode} {proc.stderr.strip()[-160:]}")
            continue
        for page in group:
            index = page.truth.get("page", 1) - 1
            pixels, dpi = pdf_page_image(out, index)
            result = judge(
                page,
                small_gray(load_pixels(page), page.dpi),
                small_gray(pixels, dpi),
            )
            result.seconds = wall / len(group)
            judged[page.name] = result
    return judged, failed


# --- report ----------------------------------------------------------------------------------
def summary_row(results: list[Judged]) -> list[str]:
    if not results:
        return ["0", "-", "-", "-", "-", "-", "-"]
    scored = [abs(r.residual) for r in results if r.residual is not None]
    res = np.array(scored) if scored else np.array([np.nan])
    unjudged = sum(r.note == "registration failed" for r in results)
    return [
        str(len(results)),
        f"{sum(r.upright for r in results)}/{len(results) - unjudged}",
        f"{np.nanmean(res):.3f}",
        f"{np.nanmax(res):.3f}",
        f"{sum(v > 0.5 for v in scored)}",
        f"{np.mean([r.seconds for r in results]):.2f}",
        str(unjudged),
    ]


SUMMARY_HEADER = [
    "pages",
    "upright",
    "mean |residual| °",
    "max |residual| °",
    "pages > 0.5°",
    "s/page",
    "not judged",
]


def real_scan_pages() -> list[tuple[BenchPage, np.ndarray]]:
    """Real scans with a skew truth (orientation 0 throughout), page images via pikepdf."""
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
                print(f"  real scan {truth_file.parent.name} p{i + 1} not decoded: {exc}")
                out.append(
                    (
                        BenchPage(
                            f"{truth_file.parent.name}/p{i + 1:02d}",
                            source,
                            i,
                            0.0,
                            float(skew),
                            int(orient),
                        ),
                        np.zeros((0, 0), np.uint8),
                    )
                )
                continue
            name = f"{truth_file.parent.name}/p{i + 1:02d}"
            out.append((BenchPage(name, source, i, dpi, float(skew), int(orient)), pixels))
    return out


def real_scans_table() -> tuple[str, list[str]]:
    from digitize.clean import clean_page

    rows = []
    lines = []
    results = []
    for page, pixels in real_scan_pages():
        if pixels.size == 0:
            lines.append(f"- {page.name}: not decoded here, not scored")
            continue
        dpi = page.dpi or max(pixels.shape[:2]) / (297 / 25.4)
        started = time.perf_counter()
        out, record = clean_page(pixels, dpi)
        seconds = time.perf_counter() - started
        result = judge(page, small_gray(pixels, dpi), small_gray(out, dpi))
        result.seconds = seconds
        results.append(result)
        res = "-" if result.residual is None else f"{result.residual:+.2f}"
        flags = ",".join(f.code for f in record.flags) or "-"
        rows.append([page.name, f"{page.skew:+.1f}", res, flags])
    table = markdown_table(SUMMARY_HEADER, [summary_row(results)])
    detail = markdown_table(["page", "truth skew °", "residual °", "flags"], rows)
    return table + "\n\n" + detail, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, action="append", help="default: corpus + harsh")
    parser.add_argument("--jobs", type=int, default=2, help="page workers, both sides")
    parser.add_argument("--no-ocrmypdf", action="store_true", help="skip the OCRmyPDF side")
    parser.add_argument(
        "--tesseract-timeout", type=float, default=0, help="OCRmyPDF OCR timeout; 0 skips OCR"
    )
    parser.add_argument("--real-scans", action="store_true", help="also the real scans (ours)")
    parser.add_argument("--limit-components", type=int, default=0, help="first N components")
    parser.add_argument("--results", default="deskew", help="bench/results/<NAME>.md")
    parser.add_argument("-v", "--verbose", action="store_true", help="per-page table on stdout")
    args = parser.parse_args()

    roots = args.corpus or [CORPUS, CORPUS_HARSH]
    pages, groups = select_components(roots, args.limit_components)
    print(f"{len(pages)} pages in {len(groups)} components, {args.jobs} workers each side")
    ours = run_ours(groups, args.jobs)
    theirs: dict[str, Judged] = {}
    failed: list[str] = []
    if not args.no_ocrmypdf:
        with tempfile.TemporaryDirectory(prefix="bench-deskew-") as tmp:
            theirs, failed = run_ocrmypdf(groups, args.jobs, args.tesseract_timeout, Path(tmp))

    rows = []
    for side, judged in (("digitize", ours), ("OCRmyPDF", theirs)):
        if not judged:
            continue
        for quality in ("clean", "normal", "harsh", "all"):
            chosen = [r for r in judged.values() if quality in ("all", r.page.profile)]
            if chosen:
                rows.append([side, quality, *summary_row(chosen)])
    table = markdown_table(["side", "scan quality", *SUMMARY_HEADER], rows)
    print("\n" + table)

    per_page = []
    for page in pages:
        row = [page.name, page.profile, f"{page.skew:+.2f}", str(page.orientation)]
        for judged in (ours, theirs):
            r = judged.get(page.name)
            if r is None:
                row.append("-")
            elif not r.upright:
                row.append(f"NOT UPRIGHT {r.note}".strip())
            else:
                row.append(f"{r.residual:+.3f} {r.note}".strip())
        per_page.append(row)
    detail = markdown_table(
        ["page", "quality", "true skew °", "true turn °", "digitize residual", "OCRmyPDF residual"],
        per_page,
    )
    if args.verbose:
        print("\n" + detail)
    how = (
        f"{len(pages)} pages from " + ", ".join(f"`{r}`" for r in roots) + f"; {args.jobs} "
        f"workers / `--jobs {args.jobs}`, one fresh pool / one OCRmyPDF call per component, no "
        f"warm-up; OCRmyPDF `--tesseract-timeout {args.tesseract_timeout:g}`. Residual and "
        "orientation of BOTH sides measured by registering the output to the input scan "
        "(SIFT + RANSAC similarity, 150 dpi) and subtracting the true turn; see the docstring. "
        "s/page: digitize = clean only, OCRmyPDF = its whole run without OCR; timing on a shared "
        "machine needs a quiet re-run."
    )
    sections = [("Orientation and residual skew", table)]
    if failed:
        sections.append(("OCRmyPDF failures (left out)", "\n".join(f"- {f}" for f in failed)))
    sections.append(("How measured", how))
    if args.real_scans:
        real, notes = real_scans_table()
        print("\nreal scans (digitize)\n" + real)
        sections.append(
            ("Real scans (digitize only, truth rounded to 0.1°)", real + "\n" + "\n".join(notes))
        )
    sections.append(("Per page", detail))
    path = write_results(args.results, "Orientation and deskew: digitize vs OCRmyPDF", sections)
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
