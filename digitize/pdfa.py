"""PDF/A-2 packaging. OWNED BY THE PDFA WORK; contract below is fixed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import numpy as np

from digitize.models import ColourMode, EncodedImage, FrozenModel, PageOcr, PdfResult


class PdfaSettings(FrozenModel):
    jpeg_quality: int = 90  # when re-encoding is needed (R14 floor: 85)


class PdfPage(FrozenModel):
    image: EncodedImage
    dpi_x: float
    dpi_y: float
    ocr: PageOcr | None = None  # words in pixels of ``image``


class PdfMetadata(FrozenModel):
    title: str
    component_name: str
    dossier_code: str
    procedure_code: str | None = None
    digitiser: str | None = None
    created_at: datetime
    language: str = "vi"


def encode_pixels(
    pixels: np.ndarray, colour_mode: ColourMode, settings: PdfaSettings | None = None
) -> EncodedImage:
    """Encode cleaned pixels for the PDF (JPEG for colour/gray photos, G4 for bilevel)."""
    raise NotImplementedError


def build_component_pdf(
    pages: Iterable[PdfPage], meta: PdfMetadata, out_path: Path, settings: PdfaSettings | None = None
) -> PdfResult:
    """Write one PDF/A-2 file (2u when every page has text, else 2b) at ``out_path``."""
    raise NotImplementedError
