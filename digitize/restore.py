"""Restoration of a page image for OCR only (R11: the image stored in the PDF stays the scan).

A poor scan loses text in OCR mostly by *dropping* it: the engine's page analysis takes a
shadow, a stain or a cloud of toner specks for a picture and skips the lines inside it
(three quarters of all edits on degraded pages were deletions). Restoration gives the engine a
copy on which the text stands out again. Nothing is switched on globally: each step is decided
per page from measurements of that page, and a page that measures clean goes to the engine
exactly as it came (clean pages must neither read worse nor slower).

Measurements (``measure_page``), all on the gray OCR input, on a copy decimated to about
150 dpi where a full-resolution pass is not needed (about 40 ms on a 300-dpi A4 page):

* ``shading``: spread of the paper brightness over the page, from a paper map (the page with
  its ink closed away at ~25 dpi, kernel 0.45 in, median-smoothed): (p98 − p2) / p98. Shadows,
  lighting falloff, stains and a dark scanner rim raise it. Even scans of the corpus measure
  0.02–0.08; pages with a cast shadow or a dark rim 0.15–0.7.
* ``contrast``: paper level minus ink level (0.5th percentile) after flattening, 0..255.
* ``noise``: robust sigma (1.4826 × MAD) of the difference to a 3×3 median, over paper
  pixels of full-resolution stripes. Sensor noise, paper texture and heavy JPEG ringing
  (q ≤ 50) all land here; the JPEG block grid itself cannot be measured directly because
  deskew has usually rotated it away. Clean scans: 1–3 gray levels; harsh ones: 5–15.
* ``specks``: share of dark connected components (binarised copy) far smaller than a
  character — toner dust, "dirty drum" clouds, salt noise. Clean pages 0.2–0.5; speckled
  0.6–0.9.
* ``text_height_px``: median height of character-sized components (x-height to cap height),
  in page pixels; ``stroke_px``: median stroke width (twice the median distance-transform value
  on stroke centres), in page pixels.

Decisions (``plan_restoration``), each with the reason measured on the DEV corpora (harsh:
25 degraded pages; CER of the first reading, tesseract 5.5):

* flatten (divide by the paper map) when ``shading`` > 0.10: on the shadowed/stained pages
  this alone took CER from 36.7 % to 25.4 %, by giving back whole paragraphs the engine had
  dropped inside a shadow; the map's 0.45-in kernel bridges speck clouds so it does not wash
  text out inside them (a 0.12-in kernel did). Even pages are not touched.
* denoise with a median filter when ``noise`` > 4.5 or ``specks`` > 0.55: the kernel is the
  largest odd size not wider than 1.5 stroke widths (3 at 200 dpi, 5 at 300 dpi for 13-pt
  type), so stems survive while single specks and JPEG ringing go. On the six most speckled
  pages: 57.7 % → 45.8 % CER. Non-local means did no better and costs 2–8 s per page.
* contrast stretch (ink to 0, paper to 255) only when ``contrast`` < 90: faint low-ink
  pages. Stretching pages of normal contrast measured neutral to slightly worse.
* join broken strokes (a 2×2 gray closing of the ink, i.e. a minimum filter then a maximum
  filter on the dark strokes) when ``stroke_px`` < 1.6 px: thin, broken 200-dpi bilevel and
  low-ink type; thicker strokes are left alone because the same closing fills the counters of
  small letters (e, a, ơ) and merges diacritics into them.
* upscale when ``text_height_px`` < 20: tesseract's page analysis finds small type less
  reliably; the factor brings the median character height to about 28 px (capped at 2×).
  Word boxes come back in page pixels.
* mark the reading ``degraded`` (the engine may then switch to its robust mode: tesseract
  uses Sauvola local thresholding instead of Otsu) when any of the above fired. Sauvola on
  flattened harsh pages: 25.4 % → 22.8 %; on clean pages it changes single lines both ways,
  so clean pages keep the engine's default.

``alternative_plan`` gives the second reading a deliberately different view of a degraded
page (a stronger denoise and the engine's uniform-block layout); the OCR stage keeps, line by
line, whichever reading is more confident and more Vietnamese (see ``digitize.ocr.read``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

# Thresholds of the rules above (gray levels, shares, pixels).
SHADING_DEGRADED = 0.13
SPECKS_DEGRADED = 0.15
NOISE_DEGRADED = 3.0
CONTRAST_STRETCH = 120.0
STROKE_JOIN_PX = 1.6
TEXT_HEIGHT_MIN_PX = 20.0
TEXT_HEIGHT_TARGET_PX = 28.0
MAX_UPSCALE = 2.0
# The paper map's closing kernel: wider than a speck cloud or a bold word, narrower than a
# shadow's or a falloff's extent.
PAPER_KERNEL_IN = 0.45
_ANALYSIS_DPI = 150.0


@dataclass(frozen=True)
class PageMeasures:
    """What ``measure_page`` found (see the module docstring for each measure)."""

    dpi: float
    bilevel: bool
    shading: float
    contrast: float
    noise: float
    specks: float
    text_height_px: float
    stroke_px: float


@dataclass(frozen=True)
class RestorationPlan:
    """Steps for one reading, and why (human-readable reasons, kept in the page notes)."""

    flatten: bool = False
    denoise_kernel: int = 0  # odd median size; 0 = none
    stretch: bool = False
    join_strokes: bool = False
    scale: float = 1.0
    degraded: bool = False  # tells the engine to use its robust mode
    uniform_block: bool = False  # tells the engine to skip its page layout analysis
    reasons: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_identity(self) -> bool:
        return (
            not (self.flatten or self.denoise_kernel or self.stretch or self.join_strokes)
            and self.scale == 1.0
        )


# --- measurements --------------------------------------------------------------------------
def is_bilevel(gray: np.ndarray) -> bool:
    sample = gray[:: max(1, gray.shape[0] // 64)]
    if np.count_nonzero((sample != 0) & (sample != 255)):
        return False
    return not np.count_nonzero((gray != 0) & (gray != 255))


def paper_map(gray: np.ndarray, dpi: float, kernel_in: float = PAPER_KERNEL_IN) -> np.ndarray:
    """The paper's brightness at every pixel, ink closed away (same size as ``gray``)."""
    h, w = gray.shape
    factor = max(1, int(round(dpi / 25.0)))
    small = cv2.resize(
        gray, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA
    )
    size = max(3, int(round(kernel_in * dpi / factor)) | 1)
    paper = cv2.morphologyEx(
        small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    )
    paper = cv2.medianBlur(paper, 5)
    return cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)


def flatten(gray: np.ndarray, dpi: float) -> np.ndarray:
    """Divide by the paper map: even paper at 255, ink keeps its darkness relative to it."""
    return cv2.divide(gray, np.maximum(paper_map(gray, dpi), 1), scale=255)


def _decimate(gray: np.ndarray, dpi: float) -> tuple[np.ndarray, float]:
    step = max(1, int(dpi // _ANALYSIS_DPI))
    if step == 1:
        return gray, dpi
    # Linear at an integer factor averages neighbours like INTER_AREA at a third of its cost.
    small = cv2.resize(
        gray, (gray.shape[1] // step, gray.shape[0] // step), interpolation=cv2.INTER_LINEAR
    )
    return small, dpi / step


def _noise_sigma(gray: np.ndarray, paper_level: float) -> float:
    """Noise sigma over paper pixels of 16 full-resolution stripes (Immerkær's Laplacian
    difference estimator: edges excluded by keeping paper pixels only)."""
    h = gray.shape[0]
    rows = max(16, h // 64)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    total, count = 0.0, 0
    for top in np.linspace(0.1 * h, 0.9 * h - rows, 16).astype(int):
        stripe = gray[top : top + rows]
        response = np.abs(cv2.filter2D(stripe.astype(np.float32), -1, kernel))
        # Paper: bright, and not within a pixel of ink (the 3×3 minimum is bright too).
        paper = cv2.erode(stripe, np.ones((3, 3), np.uint8)) > paper_level - 40
        total += float(response[paper].sum())
        count += int(np.count_nonzero(paper))
    if count < 100:
        return 0.0
    return math.sqrt(math.pi / 2) * total / count / 6.0


def _components(ink: np.ndarray, dpi: float) -> tuple[float, float, np.ndarray]:
    """(speck share, median character height px, mask of character-sized components)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if n <= 1:
        return 0.0, 0.0, np.zeros_like(ink)
    h = stats[1:, cv2.CC_STAT_HEIGHT]
    w = stats[1:, cv2.CC_STAT_WIDTH]
    area = stats[1:, cv2.CC_STAT_AREA]
    # A character of 8–16 pt body is 0.04–0.25 in tall; a speck is under 0.02 in.
    speck = np.maximum(h, w) < 0.02 * dpi
    char = (h >= 0.04 * dpi) & (h <= 0.25 * dpi) & (w <= 0.6 * dpi) & (area >= 0.2 * h * h / 4)
    specks = float(np.count_nonzero(speck)) / max(1, len(h))
    height = float(np.median(h[char])) if np.count_nonzero(char) >= 20 else 0.0
    keep = np.concatenate(([False], char))
    return specks, height, keep[labels].astype(np.uint8)


def _stroke_width(char_mask: np.ndarray) -> float:
    """Mean stroke width of character ink: twice its area over its outline length (the
    outline counted in pixel edges, so a one-pixel stroke measures 1, not 2)."""
    area = int(np.count_nonzero(char_mask))
    if area == 0:
        return 0.0
    ink = char_mask.astype(bool)
    edges = int(
        np.count_nonzero(ink[:, 1:] != ink[:, :-1])
        + np.count_nonzero(ink[1:, :] != ink[:-1, :])
        + np.count_nonzero(ink[:, 0])
        + np.count_nonzero(ink[:, -1])
        + np.count_nonzero(ink[0, :])
        + np.count_nonzero(ink[-1, :])
    )
    return 2.0 * area / max(1, edges)


def measure_page(gray: np.ndarray, dpi: float) -> PageMeasures:
    """Measure a gray OCR input page (see the module docstring)."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"measure_page needs a 2-D uint8 image, got {gray.shape} {gray.dtype}")
    bilevel = is_bilevel(gray)
    small, small_dpi = _decimate(gray, dpi)
    paper = paper_map(small, small_dpi)
    p2, p98 = np.percentile(paper[::4, ::4], (2, 98))
    shading = float((p98 - p2) / max(p98, 1.0))
    flat = cv2.divide(small, np.maximum(paper, 1), scale=255)
    ink_level, paper_level = np.percentile(flat[::2, ::2], (0.5, 60))
    contrast = float(paper_level - ink_level)
    noise = 0.0 if bilevel else _noise_sigma(gray, float(np.percentile(gray[::8, ::8], 60)))
    _, ink = cv2.threshold(flat, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    specks, height, char_mask = _components(ink, small_dpi)
    stroke = _stroke_width(char_mask)
    factor = dpi / small_dpi
    return PageMeasures(
        dpi=float(dpi),
        bilevel=bilevel,
        shading=round(shading, 4),
        contrast=round(contrast, 1),
        noise=round(noise, 2),
        specks=round(specks, 3),
        text_height_px=round(height * factor, 1),
        stroke_px=round(stroke * factor, 2),
    )


# --- decisions -----------------------------------------------------------------------------
def _median_kernel(m: PageMeasures) -> int:
    """Largest odd median size not wider than a stroke (3 or 5): stems survive it."""
    stroke = int(m.stroke_px or 3.0)
    return max(3, min(5, stroke if stroke % 2 else stroke - 1))


def plan_restoration(m: PageMeasures) -> RestorationPlan:
    """The first reading's restoration for a page with these measures."""
    reasons: list[str] = []
    if m.shading > SHADING_DEGRADED:
        reasons.append(f"uneven paper (shading {m.shading:.2f})")
    speckled = m.specks > SPECKS_DEGRADED or m.noise > NOISE_DEGRADED
    if speckled:
        reasons.append(f"specks {m.specks:.2f} / noise {m.noise:.1f}")
    # Faint ink needs ink: a blank page has no contrast either, and nothing to stretch.
    stretch = m.contrast < CONTRAST_STRETCH and m.text_height_px > 0
    if stretch:
        reasons.append(f"faint ink (contrast {m.contrast:.0f})")
    join = 0 < m.stroke_px < STROKE_JOIN_PX
    if join:
        reasons.append(f"thin strokes ({m.stroke_px:.1f} px)")
    if not reasons:
        return RestorationPlan()
    kernel = _median_kernel(m) if speckled else 0
    steps = ["flatten"]
    if kernel:
        steps.append(f"median {kernel}×{kernel}")
    if stretch:
        steps.append("stretch")
    if join:
        steps.append("join strokes")
    scale = 1.0
    if 0 < m.text_height_px < TEXT_HEIGHT_MIN_PX:
        scale = math.floor(min(MAX_UPSCALE, TEXT_HEIGHT_TARGET_PX / m.text_height_px) * 4) / 4
        if scale > 1.0:
            steps.append(f"upscale ×{scale:g} (text {m.text_height_px:.0f} px)")
    return RestorationPlan(
        flatten=True,
        denoise_kernel=kernel,
        stretch=stretch,
        join_strokes=join,
        scale=max(1.0, scale),
        degraded=True,
        reasons=(", ".join(reasons) + ": " + ", ".join(steps),),
    )


def alternative_plan(m: PageMeasures, first: RestorationPlan) -> RestorationPlan:
    """A different view of the same page for a second reading: always flattened, denoised one
    step stronger than the first reading (or at all), the engine's robust mode, and its
    uniform-block layout (which reads lines the page analysis dropped)."""
    kernel = first.denoise_kernel + 2 if first.denoise_kernel else (0 if m.bilevel else 3)
    kernel = min(kernel, max(3, _median_kernel(m) + 2)) if kernel else 0
    reasons = ["second reading: flatten, stronger denoise, uniform-block layout"]
    return replace(
        first,
        flatten=True,
        denoise_kernel=kernel,
        degraded=True,
        uniform_block=True,
        reasons=tuple(reasons),
    )


# --- steps ---------------------------------------------------------------------------------
def stretch_contrast(gray: np.ndarray) -> np.ndarray:
    """Ink (0.5th percentile) to black, paper (60th) to white, linearly."""
    lo, hi = np.percentile(gray[::2, ::2], (0.5, 60))
    if hi - lo < 10:
        return gray
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) * (255.0 / (hi - lo)), 0, 255)
    return cv2.LUT(gray, lut.astype(np.uint8))


def join_broken_strokes(gray: np.ndarray) -> np.ndarray:
    """Close one-pixel breaks in dark strokes: minimum then maximum over 2×2."""
    kernel = np.ones((2, 2), np.uint8)
    return cv2.dilate(cv2.erode(gray, kernel), kernel)


def apply_plan(gray: np.ndarray, dpi: float, plan: RestorationPlan) -> np.ndarray:
    """The restored copy (new array; ``gray`` is never changed). Order: flatten (the paper
    map wants the raw page), denoise, stretch, join, then scale."""
    out = gray
    if plan.flatten:
        out = flatten(out, dpi)
    if plan.denoise_kernel:
        out = cv2.medianBlur(out, plan.denoise_kernel)
    if plan.stretch:
        out = stretch_contrast(out)
    if plan.join_strokes:
        out = join_broken_strokes(out)
    if plan.scale != 1.0:
        out = cv2.resize(out, None, fx=plan.scale, fy=plan.scale, interpolation=cv2.INTER_CUBIC)
    return out if out is not gray else gray.copy()
