"""Vietnamese OCR. OWNED BY THE OCR WORK; contract below is fixed."""

from __future__ import annotations

import numpy as np

from digitize.models import FrozenModel, PageOcr


class OcrSettings(FrozenModel):
    language: str = "vie"
    tessdata_dir: str | None = None  # None: Debian's tessdata
    low_word_confidence: float = 60.0
    min_page_confidence: float = 70.0  # below: page flagged for review (R15)
    max_low_confidence_share: float = 0.25
    strict: bool = False  # True: an OCR failure aborts the dossier instead of flagging the page
    keep_hocr: bool = True


def ocr_page(pixels: np.ndarray, dpi: float, settings: OcrSettings | None = None) -> PageOcr:
    """Read one cleaned page. Never raises for a page that merely has no text."""
    raise NotImplementedError
