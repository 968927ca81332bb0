"""Which OCR words stand in hand ink, from the page pixels (run where the pixels are: the page
worker, before the image is dropped).

Two cues, each from the page's own printed text as reference: on colour scans, ink that is
blue (printed forms are black); on colour and gray scans, strokes clearly lighter than the
printed words of the page (ballpoint ink through a scanner is lighter than toner). Bilevel
scans carry neither cue; there the extractor relies on the dotted lines and the confidence.
"""

from __future__ import annotations

import numpy as np

from digitize.models import PageOcr

_BLUE_MARGIN = 35  # blue channel over red, on the ink pixels of a word
_LIGHTER = 45  # median ink level over the page's printed words' median (0-255)
_MIN_INK = 12  # pixels: a word with less ink is not judged


def hand_ink_words(pixels: np.ndarray, page: PageOcr) -> tuple[int, ...]:
    """Indexes into ``page.words`` of the words written in hand ink."""
    if not page.words or pixels.ndim not in (2, 3):
        return ()
    colour = pixels.ndim == 3 and pixels.shape[2] >= 3
    gray = pixels.mean(axis=2) if colour else pixels.astype(np.float32)
    if gray.max() <= 1:  # bilevel (0/1): no ink levels to compare
        return ()
    stats: list[tuple[float, float] | None] = []
    for word in page.words:
        x0, y0, x1, y1 = (max(0, v) for v in word.bbox)
        patch = gray[y0:y1, x0:x1]
        if patch.size == 0:
            stats.append(None)
            continue
        threshold = min(float(np.percentile(patch, 30)), 170.0)
        ink = patch <= threshold
        if int(ink.sum()) < _MIN_INK:
            stats.append(None)
            continue
        level = float(np.median(patch[ink]))
        blue = 0.0
        if colour:
            rgb = pixels[y0:y1, x0:x1, :3][ink].astype(np.float32)
            blue = float(np.mean(rgb[:, 2]) - np.mean(rgb[:, 0]))
        stats.append((level, blue))
    levels = [s[0] for s in stats if s is not None]
    if not levels:
        return ()
    printed = float(np.percentile(levels, 25))  # most words of a form are printed
    return tuple(
        i
        for i, s in enumerate(stats)
        if s is not None and (s[1] >= _BLUE_MARGIN or s[0] >= printed + _LIGHTER)
    )
