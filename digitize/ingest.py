"""Scan ingest and page QA (R3–R12). OWNED BY THE INGEST WORK; contract below is fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from digitize.models import Dossier, EncodedImage, FrozenModel, IngestedPage


class IngestSettings(FrozenModel):
    min_dpi: float = 200.0  # R10: refuse pages below this effective dpi
    allow_grayscale: bool = False  # R11: warn on gray/bilevel pages unless allowed
    blank_pages: Literal["keep", "drop"] = "keep"  # duplex backs: flagged either way
    max_pixels: int = 150_000_000  # per page; above this: TooLargeError (decompression bombs)
    max_file_bytes: int = 2 * 1024**3
    pdf_with_text: Literal["refuse", "rescan"] = "refuse"  # already-signed / text PDFs


def ingest_dossier(source: Path, settings: IngestSettings | None = None) -> Dossier:
    """Locate and QA every page of a dossier folder (or a single file = one component)."""
    raise NotImplementedError


def load_page_pixels(page: IngestedPage, settings: IngestSettings | None = None) -> np.ndarray:
    """Decode one page: uint8 array, HxW for gray/bilevel (0/255), HxWx3 RGB for colour."""
    raise NotImplementedError


def read_page_encoded(page: IngestedPage) -> EncodedImage | None:
    """The page's original compressed bytes for lossless PDF pass-through, or None."""
    raise NotImplementedError
