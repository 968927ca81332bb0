"""Page clean-up: orientation and deskew. OWNED BY THE CLEAN WORK; contract below is fixed."""

from __future__ import annotations

import numpy as np

from digitize.models import CleanRecord, FrozenModel


class CleanSettings(FrozenModel):
    orientation: bool = True
    deskew: bool = True
    min_skew_deg: float = 0.05  # below this the pixels are not resampled
    max_skew_deg: float = 15.0
    min_orientation_confidence: float = 0.5
    crop_background: bool = False  # remove scanner background outside the paper edge (R7)


def clean_page(
    pixels: np.ndarray, dpi: float, settings: CleanSettings | None = None
) -> tuple[np.ndarray, CleanRecord]:
    """Orient and deskew one page. Returns the same array object when nothing changed."""
    raise NotImplementedError
