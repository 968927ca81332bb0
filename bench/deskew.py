"""Benchmark: orientation + deskew on the corpus, ours vs OCRmyPDF side by side.

Run: /tmp/venv/bin/python bench/deskew.py [--limit N] [--no-ocrmypdf] [--real-scans]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pikepdf
from PIL import Image

from digitize.clean import CleanSettings, clean_page, estimate_orientation, estimate_skew

CORPUS = Path("/work/shared/corpus")
REAL_SCANS = Path("/work/shared/real-scans")


@dataclass(frozen=True)
class Page:
    name: str
    source: Path
    index: int
    dpi: float
    skew: float  # corpus convention: content turned counter-clockwise by this
    orientation: int


def corpus_pages(root: Path = CORPUS) -> list[Page]:
    pages = []
    for gt in sorted(root.glob("*/c*/p*.json")):
        t = json.loads(gt.read_text(encoding="utf-8"))
        img = t["image"]
        name = f"{gt.parent.parent.name}/{gt.parent.name}/{gt.stem}"
        pages.append(
            Page(
                name,
                gt.parent / img["file"],
                int(img["page_index"]),
                float(img["dpi"]),
                float(t["skew_deg"]),
                int(t["orientation_deg"]),
            )
        )
    return pages


def _array(image: Image.Image) -> np.ndarray:
    if image.mode == "1":
        image = image.convert("L")
    elif image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return np.array(image)


def pdf_page_image(path: Path, index: int) -> tuple[np.ndarray, float]:
    """The largest image of a PDF page, turned as the page's /Rotate shows it, and its dpi."""
    with pikepdf.open(path) as pdf:
        page = pdf.pages[index]
        images = [pikepdf.PdfImage(x) for x in page.images.values()]
        best = max(images, key=lambda im: im.width * im.height)
        pil = best.as_pil_image()
        pixels = _array(pil)
        box = [float(v) for v in page.mediabox]
        width_pt = abs(box[2] - box[0])
        rotate = int(page.obj.get("/Rotate", 0)) % 360
    if rotate in (90, 270):
        width_pt = abs(box[3] - box[1])
    dpi = pixels.shape[1] / (width_pt / 72.0) if rotate in (0, 180) else pixels.shape[0] / (
        width_pt / 72.0
    )
    if rotate:
        # /Rotate turns the page clockwise when shown.
        pixels = np.ascontiguousarray(np.rot90(pixels, k=-(rotate // 90)))
    return pixels, dpi


def load(page: Page) -> np.ndarray:
    if page.source.suffix.lower() == ".pdf":
        return pdf_page_image(page.source, page.index)[0]
    with Image.open(page.source) as im:
        if page.index:
            im.seek(page.index)
        return _array(im)
