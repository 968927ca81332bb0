"""Restoration of a page image for OCR only (R11: the image stored in the PDF stays the scan).

A poor scan loses text in OCR mostly by *dropping* it: the engine's page analysis takes a
shadow, a stain or a cloud of toner specks for a picture and skips the lines inside it
(deletions were 84 % of all character edits on the degraded DEV pages). Restoration gives the
engine a copy on which the text stands out again. Nothing is switched on globally: the OCR
stage reads every page as it came first and restores only a page that read poorly
(``digitize.ocr.read``); which steps it gets is decided from measurements of that page.

Measurements (``measure_page``), on the gray OCR input decimated to about 150 dpi except the
noise (full-resolution stripes); 30–100 ms a page. Ranges measured on the DEV corpora
(``../shared/corpus`` + ``corpus-harsh``: 45 clean/normal pages, 25 degraded ones):

* ``shading``: spread of the paper brightness, from a paper map (the page with its ink closed
  away at ~25 dpi, kernel 0.45 in, median-smoothed): (p98 − p2) / p98. Shadows, lighting
  falloff, stains and a dark scanner rim raise it. Clean/normal 0.00–0.12, degraded 0.05–0.39.
* ``specks``: share of dark components (Otsu on the flattened copy) under 0.02 in, i.e. far
  smaller than a character: toner dust, "dirty drum" clouds, salt noise. Clean/normal
  0.00–0.10, degraded 0.01–0.89.
* ``noise``: sigma of paper pixels by Immerkær's Laplacian estimator. Heavy JPEG (q 30–55)
  smooths sensor noise away, so on the corpus it stays ≤ 1.3 everywhere; it is kept for scans
  delivered losslessly with visible grain. (The JPEG block grid itself is not measured:
  deskew has usually rotated it away; its ringing shows up as specks.)
* ``contrast``: paper level minus ink level (0.5th percentile) after flattening; clean/normal
  207–255, degraded 161–228.
* ``text_height_px``: median height of character-sized components (x-height to cap height):
  17–23 px at 200 dpi, 28–34 px at 300 dpi for 13–14 pt type.
* ``stroke_px``: mean stroke width, twice the ink area over its outline in pixel edges:
  2.3–3.8 px at 200 dpi, 3.5–6.2 px at 300 dpi.

Decisions (``plan_restoration``). A page is *degraded* when shading > 0.13 or specks > 0.15 or
noise > 3 (each above every clean/normal DEV page), or its ink is faint (contrast < 120 with
text on the page) or its strokes thin (< 1.6 px). A poorly read page that measures degraded is
read from a copy that is (CER: the 25 degraded DEV pages, tesseract 5.5, that reading alone
unless said); one that measures clean gets only the alternative view:

* flattened, i.e. divided by the paper map: 36.7 % → 25.4 %, by giving back whole paragraphs
  the engine had dropped in a shadow. It is done before rule removal, which on a shadowed page
  took the dark paper for ink and erased the text there as "rules" (with the whole method:
  20.8 % → 15.8 %). The map's 0.45-in kernel bridges speck clouds; a 0.12-in kernel washed
  text out inside them.
* denoised with a median filter when speckled (specks > 0.15 or noise > 3): 3×3 for strokes
  of 2–3.5 px, 5×5 above (a k×k median keeps lines about k/2 wide), none under 2 px, so stems
  survive while specks go (a real 200-dpi page of 1.7-px broken strokes lost a quarter of its
  words to a 3×3 median). On the six most speckled pages 57.7 % → 45.8 %; non-local means did no better (45.3 %)
  at 2–8 s a page.
* contrast-stretched (ink to 0, paper to 255) only when faint: on pages of normal contrast
  the stretch measured worse (25.4 % → 26.3 %).
* stroke-joined (a 2×2 minimum then maximum filter on the dark strokes) only when strokes are
  under 1.6 px: on thicker type the same closing fills the counters of e, a, ơ and merges tone
  marks into letters. No DEV page is that thin; real 200-dpi fax-like pages can be.
* upscaled when its characters are under 20 px tall, to about 28 px (quarter steps, at most
  2×): on twelve degraded 200-dpi pages 19.7 % → 19.0 % (page mean). On clean and normal
  200-dpi pages it gained nothing and costs 2.25× the pixels, so only degraded pages get it.
* read in the engine's robust mode (``ReadingHints.degraded``: tesseract binarises with Sauvola
  instead of Otsu): 25.4 % → 22.8 %. On clean pages Sauvola changed single lines both ways
  (clean 1.8 % → 2.2 %), so clean pages keep the engine's default.

``alternative_plan`` gives the second reading (``digitize.ocr.read``) a deliberately different
view of the page: denoised one step harder and read as one uniform block of lines, which finds
lines the engine's page analysis dropped.
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
    # Character-sized ink at ``text_mask_dpi`` (what a reading should cover with words).
    text_mask: np.ndarray | None = field(default=None, compare=False, repr=False)
    text_mask_dpi: float = 0.0


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


def paper_shading(paper: np.ndarray) -> float:
    """Spread of a paper map's brightness: (p98 − p2) / p98."""
    p2, p98 = np.percentile(paper[::4, ::4], (2, 98))
    return float((p98 - p2) / max(p98, 1.0))


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
    shading = paper_shading(paper)
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
        text_mask=char_mask,
        text_mask_dpi=small_dpi,
    )


def coverage(m: PageMeasures, boxes: list[tuple[int, int, int, int]]) -> float:
    """Share of the page's character-sized ink that lies inside the given word boxes (page
    pixels): a reading that dropped lines leaves their ink uncovered. 1.0 without ink."""
    if m.text_mask is None or not m.text_mask.any():
        return 1.0
    factor = m.text_mask_dpi / m.dpi
    covered = np.zeros_like(m.text_mask)
    for x0, y0, x1, y1 in boxes:
        covered[
            int(y0 * factor) : int(y1 * factor) + 1, int(x0 * factor) : int(x1 * factor) + 1
        ] = 1
    return float(np.count_nonzero(covered & m.text_mask)) / float(np.count_nonzero(m.text_mask))


# --- decisions -----------------------------------------------------------------------------
def _median_kernel(m: PageMeasures) -> int:
    """A median size that keeps strokes: a k×k median keeps a line about k/2 wide or wider, so
    3 needs strokes of 2 px, 5 strokes of 3.5 px; 0 (no median) under 2 px (thin type, as on
    200-dpi fax-like scans, would be erased, not cleaned)."""
    if m.stroke_px and m.stroke_px < 2.0:
        return 0
    return 5 if m.stroke_px >= 3.5 else 3


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
    most = _median_kernel(m) and _median_kernel(m) + 2
    kernel = min(first.denoise_kernel + 2 if first.denoise_kernel else 3, most)
    if m.bilevel and not first.denoise_kernel:
        kernel = 0
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
