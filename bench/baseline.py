"""OCRmyPDF as the benches' baseline: the same pages as ours, given the same way.

A component (``dossier/cN/``: one document, one scan job) is what we turn into one PDF, so
OCRmyPDF gets one call per component too, never one per image file (which would charge it
its start-up once per page). Its input is the component as one PDF: an image-only scanner
PDF as it is, images and TIFF frames joined losslessly with img2pdf (JPEG and G4 strips are
passed through, other images are stored losslessly); that conversion is timed and reported,
never charged to OCRmyPDF. OCRmyPDF reads the same Debian tessdata as ``digitize.ocr``
(``TESSDATA_PREFIX``) and chooses tesseract's threads itself (``OMP_THREAD_LIMIT`` removed
from its environment: it then gives tesseract ``jobs // pages`` threads, 1..3).

Used by ``bench/batch.py`` and ``bench/size.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pikepdf

from digitize.ocr import DEBIAN_TESSDATA

SCAN_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".pdf"}
# What OCRmyPDF is asked to do: what ``digitize run`` does short of signing and bundling
# (Vietnamese OCR, pages turned upright and straightened, PDF/A).
OCRMYPDF_FLAGS = ("-l", "vie", "--deskew", "--rotate-pages", "--output-type", "pdfa")
# Exit 10: output written, but OCRmyPDF could not confirm PDF/A (it says so on stderr).
OCRMYPDF_OK = (0, 10)


@dataclass(frozen=True)
class ComponentInput:
    """One component as OCRmyPDF gets it."""

    name: str  # dossier/cN
    pdf: Path  # the component as one PDF
    pages: int
    scans: tuple[Path, ...]  # the scan files it was made from, in page order
    scan_bytes: int  # their size on disk: what the scanner delivered
    converted: bool  # made with img2pdf (False: a scanner PDF, copied)


def ocrmypdf_command() -> list[str]:
    """OCRmyPDF from this interpreter's environment (``pip install -e '.[bench]'``)."""
    return [sys.executable, "-m", "ocrmypdf"]


@cache
def ocrmypdf_version() -> str:
    """The installed OCRmyPDF version; exits with a clear line when it is missing."""
    proc = subprocess.run(
        [*ocrmypdf_command(), "--version"], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise SystemExit(
            "ocrmypdf is not installed: .venv/bin/pip install -e '.[bench]' "
            "(and apt-get install ghostscript)"
        )
    return proc.stdout.strip()


def ocrmypdf_env() -> dict[str, str]:
    env = {**os.environ, "TESSDATA_PREFIX": DEBIAN_TESSDATA}
    env.pop("OMP_THREAD_LIMIT", None)  # OCRmyPDF sets tesseract's threads itself
    return env


def component_scans(component: Path) -> list[Path]:
    return sorted(p for p in component.iterdir() if p.suffix.lower() in SCAN_SUFFIXES)


def component_dirs(in_dir: Path) -> list[Path]:
    """``dossier/cN`` folders holding scans, in order."""
    return sorted(p for p in in_dir.glob("*/*") if p.is_dir() and component_scans(p))


def component_input(component: Path, target: Path) -> tuple[ComponentInput, float]:
    """``component`` as one PDF at ``target``; returns it and the img2pdf seconds spent."""
    import img2pdf

    scans = component_scans(component)
    spent = 0.0
    converted = not (len(scans) == 1 and scans[0].suffix.lower() == ".pdf")
    if converted:
        started = time.monotonic()
        target.write_bytes(img2pdf.convert([str(s) for s in scans]))
        spent = time.monotonic() - started
    else:
        shutil.copyfile(scans[0], target)
    with pikepdf.open(target) as pdf:
        pages = len(pdf.pages)
    made = ComponentInput(
        name=f"{component.parent.name}/{component.name}",
        pdf=target,
        pages=pages,
        scans=tuple(scans),
        scan_bytes=sum(s.stat().st_size for s in scans),
        converted=converted,
    )
    return made, spent


def component_inputs(in_dir: Path, work: Path) -> tuple[list[ComponentInput], float]:
    """Every component of ``in_dir`` as one PDF under ``work``; and the img2pdf seconds."""
    work.mkdir(parents=True, exist_ok=True)
    made, spent = [], 0.0
    for component in component_dirs(in_dir):
        target = work / f"{component.parent.name}-{component.name}.pdf"
        one, seconds = component_input(component, target)
        made.append(one)
        spent += seconds
    return made, spent


def output_pages(pdf: Path) -> int:
    with pikepdf.open(pdf) as doc:
        return len(doc.pages)


def sources_key(scans: tuple[Path, ...] | list[Path], flags: tuple[str, ...]) -> str:
    """A cache key that changes with the input bytes, OCRmyPDF's version and its flags."""
    digest = hashlib.sha256()
    for scan in scans:
        digest.update(scan.name.encode())
        with open(scan, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    recipe = {
        "ocrmypdf": ocrmypdf_version(),
        "img2pdf": _img2pdf_version(),
        "flags": list(flags),
        "tessdata": DEBIAN_TESSDATA,
    }
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    return digest.hexdigest()


def _img2pdf_version() -> str:
    import img2pdf

    return str(getattr(img2pdf, "__version__", "unknown"))


def helper_versions(with_parallel: bool = True) -> str:
    """Versions of the helpers on OCRmyPDF's side that ``bench.results`` does not list."""
    found = [f"img2pdf {_img2pdf_version()}"]
    if not with_parallel:
        return found[0]
    try:
        out = subprocess.run(["parallel", "--version"], capture_output=True, text=True)
        found.append(out.stdout.splitlines()[0] if out.stdout else "GNU parallel unknown")
    except OSError:
        found.append("GNU parallel not installed")
    return ", ".join(found)
