"""Corpus page loading for the OCR benchmark (kept apart from ``digitize.ingest`` on purpose:
the benchmark must measure OCR even while ingest is being written)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pikepdf
from PIL import Image

CORPUS = Path("/work/shared/corpus")


@dataclass(frozen=True)
class CorpusPage:
    gt_json: Path
    truth: dict
    source: Path  # the scan file holding the page
    page_index: int

    @property
    def name(self) -> str:
        return f"{self.gt_json.parent.parent.name}/{self.gt_json.parent.name}/{self.gt_json.stem}"

    @property
    def dpi(self) -> float:
        return float(self.truth["image"]["dpi"])

    @property
    def gt_text(self) -> str:
        return (self.gt_json.parent / self.truth["gt_text"]).read_text(encoding="utf-8")

    @property
    def profile(self) -> str:
        return self.truth["degradation"]["profile"]


def corpus_pages(root: Path = CORPUS) -> list[CorpusPage]:
    pages = []
    for gt in sorted(root.glob("*/c*/p*.json")):
        truth = json.loads(gt.read_text(encoding="utf-8"))
        image = truth["image"]
        pages.append(CorpusPage(gt, truth, gt.parent / image["file"], int(image["page_index"])))
    return pages


def _to_array(image: Image.Image) -> np.ndarray:
    if image.mode == "1":
        image = image.convert("L")
    elif image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return np.asarray(image).copy()


def load_pixels(page: CorpusPage) -> np.ndarray:
    """The page as the scanner delivered it (uint8 gray or RGB)."""
    suffix = page.source.suffix.lower()
    if suffix == ".pdf":
        with pikepdf.open(page.source) as pdf:
            pdf_page = pdf.pages[page.page_index]
            images = list(pdf_page.images.values())
            largest = max(images, key=lambda im: int(im.Width) * int(im.Height))
            return _to_array(pikepdf.PdfImage(largest).as_pil_image())
    with Image.open(page.source) as image:
        image.seek(page.page_index)
        image.load()
        return _to_array(image)


def undo_truth_geometry(pixels: np.ndarray, truth: dict) -> np.ndarray:
    """Undo the corpus generator's rotation and skew from the ground truth (fallback used only
    when ``digitize.clean.clean_page`` is not implemented yet)."""
    quarter_turns = int(truth["orientation_deg"]) // 90
    if quarter_turns:
        pixels = np.ascontiguousarray(np.rot90(pixels, -quarter_turns))
    skew = float(truth["skew_deg"])
    if abs(skew) > 0.01:
        h, w = pixels.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), -skew, 1.0)
        border = (255, 255, 255) if pixels.ndim == 3 else 255
        pixels = cv2.warpAffine(
            pixels, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=border
        )
    return pixels
