"""Page clean-up: orientation (0/90/180/270) and deskew that never make a page worse.

Contract (fixed): ``clean_page(pixels, dpi, settings, *, engine=None, orientation_hint=None)
-> (pixels, CleanRecord)``.

How it works, and why:

* Everything is *measured* on a small binarised copy of the page (about 100 dpi) and only the
  final rotation touches the full-resolution pixels. That keeps estimation well under 150 ms for
  a clean 300-dpi A4 page on one core.
* The small copy is first divided by its own paper brightness (``digitize.restore.flatten``):
  shadows, stains and a dark scanner rim otherwise binarise as ink and bury the lines (a
  stained harsh DEV page measured its 3.5° skew right but too unsure to apply it).
* Ink that does not sit on text lines (seals, signatures, photos, page borders, shadows) is
  removed before measuring: connected components thicker than a text line or touching the
  image edge are dropped. ``cv2.minAreaRect`` over all ink is known to be pulled off by them.
* Skew is the angle that maximises the sum of squared row ink counts (projection profile),
  searched coarse-to-fine by rotating the ink *coordinates* (no image rotation per candidate).
* Text direction: the same search along columns; horizontal text gives a far more peaked
  row profile than column profile, so rows-vs-columns decides 0/180 vs 90/270. When both
  profiles are peaked (vertical bands of toner specks line up like columns of text: 1.3–1.7
  against ≤ 1.06 on every clean page) or neither is clearly ahead, the OCR engine reads a band
  along each axis as one block of lines and the axis that reads as more Vietnamese wins.
* Up vs down is a vote (``digitize.orientation``): Vietnamese is strongly top-heavy inside each
  text line (tone marks and circumflexes sit above the x-height band, capitals and ascenders
  too; only g p q y descend), which alone decides clean pages. On a page where that cue is
  not sure, or that looks degraded (over 12 % of the small page binarises as ink), the OCR
  engine reads a band both ways up and the reading that is more confident *and* more
  Vietnamese votes; the engine's own orientation detector votes when the two still leave the
  page unsure; the turn the file declares counts only when the pixels cannot decide.
  Strong signals that disagree leave the page as scanned, flagged for review. All engine
  reads go through the OCR stage's engine object (``engine=``), never a second tesseract.
* Low confidence (blank page, photo-only page) leaves the pixels untouched and flags the page
  (R15: never silently accepted).
* Rotations by 90/180/270 are lossless (``np.rot90``). Skew rotation is about the centre on a
  canvas grown just enough to keep every pixel (R7), at 100 % scale (R12), filled with the
  scan's own background colour; bilevel input stays bilevel (threshold after interpolation).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from digitize.models import CleanRecord, Flag, FrozenModel, Severity
from digitize.orientation import (
    MIN_LETTERS,
    Vote,
    band_scores,
    combine,
    file_vote,
    osd_vote,
    reading_vote,
)
from digitize.restore import SHADING_DEGRADED, paper_map, paper_shading
from digitize.settings import CleanSettings

if TYPE_CHECKING:
    from digitize.ocr.engine import OcrEngine

# Pages are measured at about this resolution (dots per inch).
_WORK_DPI = 100.0
_COARSE_DPI = 50.0
# Height of the text band the engine reads both ways up when it votes on orientation.
_BAND_INCH = 1.2
# The engine votes on up vs down when the line-shape cue is under this (0..1) ...
LINES_SURE = 0.8
# ... or the page looks degraded: more than this share of the small page binarises as ink
# (clean and normal DEV scans: 0.02–0.12; half the degraded ones above it, up to 0.27).
DEGRADED_INK_SHARE = 0.12
# The engine's orientation detector is asked only when the other votes leave the
# confidence under this.
OSD_BELOW = 0.6
# Line geometry cannot settle the axis when the profile along both axes is this peaked
# (clean and normal scans: the weaker axis stays ≤ 1.06; vertical speck stripes: 1.3–1.7) ...
AXIS_BOTH = 1.2
# ... and the engine's band readings settle it when the better axis reads this much more.
AXIS_READING_MARGIN = 0.3


# --- small helpers -------------------------------------------------------------------------
def _to_gray(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        return pixels
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        return pixels[:, :, 0]
    raise ValueError(f"unsupported pixel array shape {pixels.shape}")


def is_bilevel(pixels: np.ndarray) -> bool:
    """True when a 2-D uint8 page holds only 0 and 255 (a 1-bit scan decoded to 8 bits)."""
    if pixels.ndim != 2:
        return False
    # Sampling first keeps this cheap on gray pages, which fail on the first few rows.
    sample = pixels[:: max(1, pixels.shape[0] // 64)]
    if np.count_nonzero((sample != 0) & (sample != 255)):
        return False
    return not np.count_nonzero((pixels != 0) & (pixels != 255))


def _resize_to_dpi(gray: np.ndarray, dpi: float, target_dpi: float) -> np.ndarray:
    factor = target_dpi / dpi
    if factor >= 1.0:
        return gray
    w = max(1, round(gray.shape[1] * factor))
    h = max(1, round(gray.shape[0] * factor))
    return cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)


def _effective_dpi(pixels: np.ndarray, dpi: float | None) -> float:
    if dpi and dpi > 0:
        return float(dpi)
    # Unknown dpi: assume the long side is an A4 long side (297 mm).
    return max(pixels.shape[:2]) / (297 / 25.4)


class _Ink:
    """Text-like ink of a page at the working resolution: a 0/1 mask and its coordinates."""

    def __init__(self, mask: np.ndarray, dpi: float) -> None:
        self.mask = mask
        self.dpi = dpi
        ys, xs = np.nonzero(mask)
        # Centre the coordinates so rotated positions stay in a small, known range.
        self.cy = (mask.shape[0] - 1) / 2
        self.cx = (mask.shape[1] - 1) / 2
        # Sub-pixel jitter (fixed seed: results are reproducible) breaks the pixel lattice:
        # without it every point falls on a whole row at 0° and the profile score jumps
        # there, pulling small skews to exactly 0.
        rng = np.random.default_rng(12345)
        jitter = rng.random((2, xs.size), dtype=np.float32) - np.float32(0.5)
        self.x = xs.astype(np.float32) - np.float32(self.cx) + jitter[0]
        self.y = ys.astype(np.float32) - np.float32(self.cy) + jitter[1]
        self.count = int(xs.size)
        self.half_diag = 0.5 * math.hypot(*mask.shape)


def _text_ink(gray_small: np.ndarray, dpi: float) -> tuple[_Ink, dict[str, float]]:
    """Binarise a small page and keep only components that can be text."""
    # Shadows, stains, lighting falloff and a dark scanner rim first: divided by the paper's
    # own brightness they vanish, so the global split below no longer takes them for ink.
    # An even page is measured as it is (its estimate stays exactly what it was).
    paper = paper_map(gray_small, dpi)
    if paper_shading(paper) > SHADING_DEGRADED:
        gray_small = cv2.divide(gray_small, np.maximum(paper, 1), scale=255)
    block = int(dpi * 0.35) | 1  # local window wider than a character, narrower than a column
    local = cv2.adaptiveThreshold(
        gray_small, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 12
    )
    # Adaptive thresholding alone turns paper texture into specks; ink must also be darker
    # than the page's own global split (Otsu), pushed a bit towards the paper.
    otsu, _ = cv2.threshold(gray_small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    level = min(255.0, otsu + 0.25 * (255.0 - otsu))
    mask = local & (gray_small < level).astype(np.uint8)

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    h_img, w_img = mask.shape
    x, y, w, h, area = (stats[:, i] for i in range(5))
    thick = np.minimum(w, h) > 0.3 * dpi  # seals, signatures, photos, shadows
    long_ = np.maximum(w, h) > 3.0 * dpi  # frame lines, paper edges, long merged blobs
    edge = (x == 0) | (y == 0) | (x + w >= w_img) | (y + h >= h_img)
    tiny = area < max(2, int((dpi / 100.0) ** 2 * 3))
    keep = ~(thick | long_ | edge | tiny)
    keep[0] = False
    text_mask = keep[labels].astype(np.uint8)
    kept = int(np.count_nonzero(keep))
    info = {
        "components": float(kept),
        "ink_share": float(np.count_nonzero(mask)) / mask.size,
        "text_share": float(np.count_nonzero(text_mask)) / mask.size,
    }
    return _Ink(text_mask, dpi), info


def _profile_score(
    a: np.ndarray, b: np.ndarray, angle_deg: float, half: float, bin_px: float
) -> float:
    """Sum of squared bin counts of ink projected on the axis at ``angle_deg``.

    ``a`` is the coordinate across the lines (rows: y), ``b`` along them (x). Content turned
    counter-clockwise by θ (image y axis pointing down) has its lines at y + x·tanθ = const.
    """
    t = math.radians(angle_deg)
    proj = a * np.float32(math.cos(t)) + b * np.float32(math.sin(t))
    idx = ((proj + half) / bin_px).astype(np.int32)
    counts = np.bincount(idx, minlength=int(2 * half / bin_px) + 2).astype(np.float64)
    return float(np.dot(counts, counts))


def _search(
    a: np.ndarray,
    b: np.ndarray,
    half: float,
    lo: float,
    hi: float,
    step: float,
    bin_px: float,
) -> tuple[float, np.ndarray, np.ndarray]:
    angles = np.arange(lo, hi + step / 2, step)
    scores = np.array([_profile_score(a, b, float(t), half, bin_px) for t in angles])
    best = float(angles[int(np.argmax(scores))])
    return best, angles, scores


def _parabolic_peak(angles: np.ndarray, scores: np.ndarray) -> float:
    i = int(np.argmax(scores))
    if 0 < i < len(scores) - 1:
        y0, y1, y2 = scores[i - 1], scores[i], scores[i + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            offset = 0.5 * (y0 - y2) / denom
            return float(angles[i] + offset * (angles[1] - angles[0]))
    return float(angles[i])


class _AxisFit:
    """Best skew along one axis and how clearly the ink forms lines there."""

    def __init__(self, angle: float, ratio: float, contrast: float) -> None:
        self.angle = angle
        # Profile score at the best angle over its median across the searched range: how
        # much better this angle is than a random one (decides rows vs columns too).
        self.ratio = ratio
        # Profile at the best angle against itself smoothed over about one line pitch:
        # text lines alternate with empty gaps, a photo's or a blank page's profile does not.
        self.contrast = contrast


def _line_contrast(a: np.ndarray, b: np.ndarray, angle_deg: float, ink: _Ink) -> float:
    t = math.radians(angle_deg)
    proj = a * np.float32(math.cos(t)) + b * np.float32(math.sin(t))
    counts = np.bincount((proj + ink.half_diag).astype(np.int32)).astype(np.float64)
    window = max(3, round(0.3 * ink.dpi))
    smooth = np.convolve(counts, np.full(window, 1.0 / window), mode="same")
    denom = float(np.dot(smooth, smooth))
    return float(np.dot(counts, counts)) / denom if denom > 0 else 1.0


def _fit_axis(ink: _Ink, coarse: _Ink, across: Literal["rows", "cols"], max_deg: float) -> _AxisFit:
    if across == "rows":
        ca, cb, fa, fb = coarse.y, coarse.x, ink.y, ink.x
    else:
        # Columns: swap roles; an x-axis "line" of a page turned 90° is a column here.
        ca, cb, fa, fb = coarse.x, -coarse.y, ink.x, -ink.y
    # Coarse: 0.5° steps on a 50-dpi copy find the peak's neighbourhood.
    best, _, scores = _search(ca, cb, coarse.half_diag, -max_deg, max_deg, 0.5, 1.0)
    median = float(np.median(scores))
    ratio = float(scores.max()) / median if median > 0 else 1.0
    # Fine: 100-dpi ink, half-pixel bins, 0.1° then 0.02° steps, then a parabola.
    best, _, _ = _search(fa, fb, ink.half_diag, best - 0.6, best + 0.6, 0.1, 0.5)
    best, angles, scores = _search(fa, fb, ink.half_diag, best - 0.12, best + 0.12, 0.02, 0.5)
    angle = _parabolic_peak(angles, scores)
    return _AxisFit(angle, ratio, _line_contrast(fa, fb, angle, ink))


def _measure(pixels: np.ndarray, dpi: float) -> tuple[_Ink, _Ink, dict[str, float]]:
    dpi = _effective_dpi(pixels, dpi)
    gray = _to_gray(pixels)
    small = _resize_to_dpi(gray, dpi, _WORK_DPI)
    work_dpi = dpi * small.shape[1] / gray.shape[1]
    ink, info = _text_ink(small, work_dpi)
    coarse_mask = cv2.resize(
        ink.mask,
        (max(1, small.shape[1] // 2), max(1, small.shape[0] // 2)),
        interpolation=cv2.INTER_AREA,
    )
    coarse = _Ink((coarse_mask > 0).astype(np.uint8), work_dpi / 2)
    return ink, coarse, info


def _skew_confidence(fit: _AxisFit, info: dict[str, float], ink: _Ink) -> float:
    """0..1 from two independent signs of text lines; both must be present. Text pages of
    the corpus and the real scans reach ratio ≥ 1.6 and contrast ≥ 1.55 (a sparse page with
    a dozen short lines: 1.38 / 1.56); smooth photos, paper texture and blank pages stay
    under 1.05 / 1.12."""
    if ink.count < 200 or info["components"] < 30:
        return 0.0
    by_ratio = min(1.0, max(0.0, (fit.ratio - 1.05) / 0.45))
    by_contrast = min(1.0, max(0.0, (fit.contrast - 1.1) / 0.4))
    return by_ratio * by_contrast


def estimate_skew(pixels: np.ndarray, dpi: float, max_deg: float = 15.0) -> tuple[float, float]:
    """Skew of upright text in degrees (positive = content turned counter-clockwise; rotate by
    minus this to fix) and a confidence in 0..1."""
    ink, coarse, info = _measure(pixels, dpi)
    if ink.count == 0:
        return 0.0, 0.0
    fit = _fit_axis(ink, coarse, "rows", max_deg)
    return fit.angle, _skew_confidence(fit, info, ink)


# --- up vs down ----------------------------------------------------------------------------
def _line_asymmetry(mask: np.ndarray, dpi: float) -> tuple[float, float, int, int]:
    """Ink above vs below the x-height band of each text line of an upright, deskewed 0/1
    mask. Returns (ink above, ink below, lines voting top-heavy, lines voting bottom-heavy);
    a line votes by which side holds more ink.

    The x-height band is the run of rows holding at least half the line's peak row ink:
    lowercase bodies. Capital-only lines have no such band and cast no vote.
    """
    prof = mask.sum(axis=1).astype(np.float64)
    if prof.size == 0 or prof.max() <= 0:
        return 0.0, 0.0, 0, 0
    on = prof > 0.02 * prof.max()
    # Runs of rows with ink: starts/ends of True stretches.
    edges = np.flatnonzero(np.diff(np.concatenate(([0], on.astype(np.int8), [0]))))
    above = below = 0.0
    up = down = 0
    min_h, max_h = 0.06 * dpi, 0.6 * dpi
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        seg = prof[start:stop]
        if not (min_h <= len(seg) <= max_h):
            continue
        idx = np.flatnonzero(seg >= 0.5 * seg.max())
        top, bottom = int(idx[0]), int(idx[-1])
        a = float(seg[:top].sum())
        b = float(seg[bottom + 1 :].sum())
        above += a
        below += b
        if a > 1.2 * b + 1:
            up += 1
        elif b > 1.2 * a + 1:
            down += 1
    return above, below, up, down


def _densest_band(level: np.ndarray, dpi: float) -> float:
    """Top of the band of ``_BAND_INCH`` holding the most text ink, as a share of height."""
    prof = level.sum(axis=1).astype(np.float64)
    band = max(1, int(_BAND_INCH * dpi))
    if band >= len(prof):
        return 0.0
    sums = np.convolve(prof, np.ones(band), mode="valid")
    return float(np.argmax(sums)) / len(prof)


# --- orientation ---------------------------------------------------------------------------
def _rotate_small(mask: np.ndarray, angle_deg: float) -> np.ndarray:
    """Deskew a small 0/1 mask (expand canvas, nearest neighbour: it is only measured)."""
    return _rotate_expand(mask, -angle_deg, 0, cv2.INTER_NEAREST)


class PageGeometry(FrozenModel):
    """What the estimators found on one page (nothing applied yet)."""

    orientation_deg: Literal[0, 90, 180, 270] = 0  # counter-clockwise turn the content has
    orientation_confidence: float = 0.0  # 0..1
    skew_deg: float = 0.0  # after undoing the orientation; positive = counter-clockwise
    skew_confidence: float = 0.0  # 0..1
    notes: tuple[str, ...] = ()  # how the decision was reached (for logs and debugging)


class _Decision:
    def __init__(self) -> None:
        self.orientation: int = 0
        self.orientation_confidence: float = 0.0
        self.skew: float = 0.0
        self.skew_confidence: float = 0.0
        self.notes: list[str] = []


@dataclass(frozen=True)
class _VoteContext:
    """What the orientation vote may use beyond the pixels."""

    engine_votes: bool = True
    engine: OcrEngine | None = None  # None: the default engine (``ocr.engine`` default)
    orientation_hint: int | None = None  # turn the file declares (same convention)


def _decide(
    pixels: np.ndarray,
    dpi: float,
    max_deg: float,
    want_orientation: bool,
    ctx: _VoteContext,
) -> _Decision:
    d = _Decision()
    ink, coarse, info = _measure(pixels, dpi)
    if ink.count == 0:
        return d
    rows = _fit_axis(ink, coarse, "rows", max_deg)
    turn = 0
    axis_uncertain = False
    if want_orientation:
        cols = _fit_axis(ink, coarse, "cols", max_deg)
        axis_margin = math.log(max(rows.ratio, 1e-6) / max(cols.ratio, 1e-6))
        if axis_margin < 0:
            fit = cols
        else:
            fit = rows
        # How clearly one axis carries the lines: log ratio 0.4 (≈1.5×) counts as certain.
        axis_conf = min(1.0, abs(axis_margin) / 0.4)
        if axis_conf < 0.5 and abs(rows.angle - cols.angle) > 0.2:
            # Neither axis clearly holds the lines and they disagree on the angle (a grid
            # would agree): the skew is as uncertain as the axis.
            d.notes.append(f"line axis unclear ({axis_margin:+.2f})")
            axis_uncertain = True
    else:
        fit, axis_conf, axis_margin = rows, 1.0, 1.0
    d.skew = fit.angle
    d.skew_confidence = _skew_confidence(fit, info, ink)
    if axis_uncertain:
        d.skew_confidence = min(d.skew_confidence, axis_conf)
    if not want_orientation:
        return d

    engine = (ctx.engine or _default_engine()) if ctx.engine_votes else None
    # Both axes line up (speck stripes, a table, a grid) or neither clearly does: the line
    # geometry cannot tell 0/180 from 90/270, so the engine reads a band along each axis
    # and the axis whose better reading scores higher wins.
    axis_scores: dict[int, tuple[float, float, int]] = {}
    if engine is not None and (min(rows.ratio, cols.ratio) > AXIS_BOTH or axis_conf < 1.0):
        for axis_turn, axis_fit in ((0, rows), (90, cols)):
            level = _level(ink.mask, axis_turn, axis_fit.angle)
            gray, small_dpi = _upright_gray(pixels, dpi, axis_turn, axis_fit.angle)
            band = _band(gray, _densest_band(level, ink.dpi), small_dpi)
            axis_scores[axis_turn] = band_scores(engine, band, small_dpi)
        best = {t: max(v[0], v[1]) for t, v in axis_scores.items()}
        chosen = max(best, key=lambda t: best[t])
        margin = (best[chosen] - best[90 - chosen]) / max(best[chosen], 1e-6)
        d.notes.append(f"axis by reading: {best[0]:.0f} along rows, {best[90]:.0f} along columns")
        if axis_scores[chosen][2] >= MIN_LETTERS and margin >= AXIS_READING_MARGIN:
            axis_margin = 1.0 if chosen == 0 else -1.0
            fit = rows if chosen == 0 else cols
            axis_conf = min(1.0, margin / (2 * AXIS_READING_MARGIN))
            d.skew = fit.angle
            d.skew_confidence = _skew_confidence(fit, info, ink)

    # Bring the lines horizontal on the small mask, then decide up vs down.
    if axis_margin < 0:
        # Lines run vertically: the page was turned 90 or 270. Turn it back 90 first
        # (clockwise, i.e. undo a 90° counter-clockwise turn); up/down below picks 90 vs 270.
        turn = 90
    level = _level(ink.mask, turn, fit.angle)
    votes = [_lines_vote(level, ink.dpi)]
    hint = file_vote(ctx.orientation_hint, turn)
    if hint is not None:
        votes.append(hint)
    degraded = info["ink_share"] > DEGRADED_INK_SHARE
    lines_sure = abs(votes[0].evidence) >= LINES_SURE
    if engine is not None and d.skew_confidence > 0 and (degraded or not lines_sure):
        gray, small_dpi = _upright_gray(pixels, dpi, turn, fit.angle)
        scores = axis_scores.get(turn)
        if scores is None:
            scores = band_scores(
                engine, _band(gray, _densest_band(level, ink.dpi), small_dpi), small_dpi
            )
        reading = reading_vote(scores)
        if reading is not None:
            votes.append(reading)
        if combine(votes).confidence < OSD_BELOW:
            osd = osd_vote(engine, gray, small_dpi)
            if osd is not None:
                votes.append(osd)
    verdict = combine(votes)
    d.notes.append(f"axis {axis_margin:+.2f}; {verdict.note}")
    if verdict.flipped:
        turn = (turn + 180) % 360
    d.orientation = turn
    d.orientation_confidence = (
        float(min(axis_conf, verdict.confidence)) if d.skew_confidence else 0.0
    )
    return d


def _level(mask: np.ndarray, turn: int, angle: float) -> np.ndarray:
    """The small text mask with its lines horizontal (axis turn, then skew undone)."""
    if turn == 90:
        mask = np.rot90(mask, -1)
    return _rotate_small(mask, angle)


def _lines_vote(level: np.ndarray, dpi: float) -> Vote:
    """The line-shape cue as a vote: two cues from the same lines, the ink mass ratio
    (|log| 0.5 ≈ 1.65× counts as certain; Vietnamese body text sits near 2×) and the line
    vote (3 standard deviations of a fair coin counts as certain); their mean."""
    above, below, up, down = _line_asymmetry(level, dpi)
    if up + down < 3 or above + below <= 0:
        return Vote("lines", 0.0, "too few text lines")
    mass = max(-1.0, min(1.0, math.log((above + 1.0) / (below + 1.0)) / 0.5))
    vote = max(-1.0, min(1.0, (up - down) / math.sqrt(up + down) / 3.0))
    return Vote("lines", 0.5 * (mass + vote), f"mass {mass:+.2f}, {up}:{down} lines")


def _default_engine() -> OcrEngine:
    from digitize.ocr.engine import get_engine

    return get_engine()


def _upright_gray(
    pixels: np.ndarray, dpi: float, turn: int, skew: float
) -> tuple[np.ndarray, float]:
    """The page as gray, at most 200 dpi, axis turn and skew undone (for engine votes)."""
    source_dpi = _effective_dpi(pixels, dpi)
    small_dpi = min(source_dpi, 200.0)
    gray = _resize_to_dpi(_to_gray(pixels), source_dpi, small_dpi)
    if turn == 90:
        gray = np.ascontiguousarray(np.rot90(gray, -1))
    return _rotate_expand(gray, -skew, 255, cv2.INTER_LINEAR), small_dpi


def _band(gray: np.ndarray, top_share: float, dpi: float) -> np.ndarray:
    h = gray.shape[0]
    band_h = int(min(h, _BAND_INCH * dpi))
    top = min(max(0, int(top_share * h)), h - band_h)
    return np.ascontiguousarray(gray[top : top + band_h])


def estimate_page(
    pixels: np.ndarray,
    dpi: float,
    max_skew_deg: float = 15.0,
    engine_votes: bool = True,
    *,
    engine: OcrEngine | None = None,
    orientation_hint: int | None = None,
) -> PageGeometry:
    """Orientation and skew of one page in one pass (the two share the measurement).
    ``engine``: the OCR engine whose readings vote on up vs down (default: the default
    engine); ``orientation_hint``: the turn the file declares, if any (a weak prior)."""
    ctx = _VoteContext(engine_votes, engine, orientation_hint)
    d = _decide(pixels, dpi, max_skew_deg, True, ctx)
    return PageGeometry(
        orientation_deg=d.orientation,  # type: ignore[arg-type]
        orientation_confidence=d.orientation_confidence,
        skew_deg=d.skew,
        skew_confidence=d.skew_confidence,
        notes=tuple(d.notes),
    )


def estimate_orientation(pixels: np.ndarray, dpi: float) -> tuple[int, float]:
    """Counter-clockwise turn (0/90/180/270) the page content has been given, and a
    confidence in 0..1. Undo it with ``rotate_orientation(pixels, deg)``."""
    g = estimate_page(pixels, dpi)
    return g.orientation_deg, g.orientation_confidence


# --- pixel operations ----------------------------------------------------------------------
def rotate_orientation(pixels: np.ndarray, deg: int) -> np.ndarray:
    """Undo a counter-clockwise turn of ``deg`` (0/90/180/270) losslessly."""
    deg = int(deg) % 360
    if deg not in (0, 90, 180, 270):
        raise ValueError(f"orientation must be 0, 90, 180 or 270, not {deg}")
    if deg == 0:
        return pixels
    # np.rot90 with k turns counter-clockwise; undoing a CCW turn of deg needs -deg/90.
    return np.ascontiguousarray(np.rot90(pixels, k=-(deg // 90)))


def _rotate_expand(
    pixels: np.ndarray,
    angle_ccw_deg: float,
    fill: int | tuple[int, ...],
    interpolation: int,
) -> np.ndarray:
    """Turn pixels counter-clockwise about the centre, canvas grown to keep every pixel."""
    h, w = pixels.shape[:2]
    t = math.radians(angle_ccw_deg)
    c, s = abs(math.cos(t)), abs(math.sin(t))
    # Tiny epsilon: a bounding box that is already integral must not gain a pixel.
    new_w = int(math.ceil(w * c + h * s - 1e-6))
    new_h = int(math.ceil(w * s + h * c - 1e-6))
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle_ccw_deg, 1.0)
    m[0, 2] += (new_w - w) / 2
    m[1, 2] += (new_h - h) / 2
    if isinstance(fill, int):
        border: tuple[float, ...] = (float(fill),) * 4
    else:
        border = tuple(float(v) for v in fill) + (0.0,) * (4 - len(fill))
    return cv2.warpAffine(
        pixels,
        m,
        (new_w, new_h),
        flags=interpolation,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )


def background_colour(pixels: np.ndarray) -> int | tuple[int, ...]:
    """The scan's background colour: the median of a thin ring along the image edge (scanner
    lid or paper margin), per channel."""
    h, w = pixels.shape[:2]
    ring = max(2, min(h, w) // 100)
    parts = [
        pixels[:ring].reshape(-1, *pixels.shape[2:]),
        pixels[-ring:].reshape(-1, *pixels.shape[2:]),
        pixels[:, :ring].reshape(-1, *pixels.shape[2:]),
        pixels[:, -ring:].reshape(-1, *pixels.shape[2:]),
    ]
    edge = np.concatenate(parts)[::7]
    med = np.median(edge, axis=0)
    if pixels.ndim == 2:
        return int(round(float(med)))
    return tuple(int(round(float(v))) for v in np.atleast_1d(med))


def deskew_page(
    pixels: np.ndarray,
    angle_deg: float,
    background: int | tuple[int, ...] | None = None,
) -> np.ndarray:
    """Remove a skew of ``angle_deg`` (positive = content turned counter-clockwise).

    The canvas grows just enough to keep every pixel (R7), the scale stays 100 % (R12) and
    the new corners take the scan's background colour. Bilevel stays bilevel, gray stays
    gray, RGB stays RGB.
    """
    if angle_deg == 0:
        return pixels
    bilevel = is_bilevel(pixels)
    if background is None:
        background = background_colour(pixels)
    if bilevel:
        bg = 255 if int(np.atleast_1d(background)[0]) >= 128 else 0
        out = _rotate_expand(pixels, -angle_deg, bg, cv2.INTER_LINEAR)
        # Threshold after interpolation: the output must stay strictly 0/255.
        return np.where(out >= 128, np.uint8(255), np.uint8(0))
    return _rotate_expand(pixels, -angle_deg, background, cv2.INTER_CUBIC)


def find_paper_box(pixels: np.ndarray, dpi: float) -> tuple[int, int, int, int] | None:
    """The paper inside a uniform scanner background, as ``(x0, y0, x1, y1)``, or None.

    Conservative on purpose (R7: never inside the paper edge): only whole rows and columns
    along the image edge that are all scanner background are given up, the box keeps a
    safety margin of about 1 mm of background, and nothing is cropped unless the edge ring is
    uniform and clearly unlike the paper. Use it on a level (deskewed) page.
    """
    dpi = _effective_dpi(pixels, dpi)
    gray = _to_gray(pixels)
    small = _resize_to_dpi(gray, dpi, _COARSE_DPI)
    f = gray.shape[1] / small.shape[1]
    h, w = small.shape
    if h < 20 or w < 20:
        return None
    ring = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]]).astype(np.float64)
    bg = float(np.median(ring))
    if float(np.median(np.abs(ring - bg))) > 6:
        return None  # the edge is not one uniform lid colour
    centre = small[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    paper = float(np.percentile(centre, 75))
    if abs(paper - bg) < 25:
        return None
    is_bg = np.abs(small.astype(np.int16) - int(round(bg))) <= abs(paper - bg) / 2
    row_bg = is_bg.mean(axis=1) >= 0.98
    col_bg = is_bg.mean(axis=0) >= 0.98

    def run(flags: np.ndarray) -> int:
        stop = np.flatnonzero(~flags)
        return int(stop[0]) if stop.size else len(flags)

    top, bottom = run(row_bg), run(row_bg[::-1])
    left, right = run(col_bg), run(col_bg[::-1])
    if top + bottom >= h or left + right >= w:
        return None  # all background: a blank scan, nothing to keep
    margin = 2  # small pixels (1 mm at 50 dpi) of background kept outside the paper edge
    top, bottom, left, right = (max(0, v - margin) for v in (top, bottom, left, right))
    if max(top, bottom, left, right) == 0:
        return None
    x0, y0 = int(left * f), int(top * f)
    x1 = gray.shape[1] - int(right * f)
    y1 = gray.shape[0] - int(bottom * f)
    return x0, y0, x1, y1


# --- the stage -----------------------------------------------------------------------------
# R19/R20: the digitiser's note sits 5 mm from the top-left corner, at most 70 × 20 mm; look a
# little wider so a code that only grazes the box is found too.
QR_SEARCH_MM = (110.0, 60.0)


def find_qr_codes(pixels: np.ndarray, dpi: float) -> tuple[tuple[int, int, int, int], ...]:
    """Boxes (pixels of ``pixels``) of QR codes in the top-left corner of a page.

    System-issued papers print a QR code where the digitiser's note goes; the signer must know
    so it keeps the corner but shrinks the note and asks for review (R20).
    """
    width = min(pixels.shape[1], int(QR_SEARCH_MM[0] / 25.4 * dpi))
    height = min(pixels.shape[0], int(QR_SEARCH_MM[1] / 25.4 * dpi))
    corner = _to_gray(pixels[:height, :width])
    detector = cv2.QRCodeDetector()
    found, points = detector.detectMulti(corner)
    if not found or points is None:
        single, point = detector.detect(corner)
        if not single or point is None:
            return ()
        points = point.reshape(1, -1, 2)
    boxes = []
    for quad in points.reshape(-1, 4, 2):
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
        boxes.append((max(0, int(x0)), max(0, int(y0)), int(x1), int(y1)))
    return tuple(boxes)


def _flag(code: str, message: str) -> Flag:
    return Flag(code=code, severity=Severity.REVIEW, message=message)


def clean_page(
    pixels: np.ndarray,
    dpi: float,
    settings: CleanSettings | None = None,
    *,
    engine: OcrEngine | None = None,
    orientation_hint: int | None = None,
) -> tuple[np.ndarray, CleanRecord]:
    """Orient and deskew one page. Returns the same array object when nothing changed.

    ``engine`` is the OCR engine whose readings vote on orientation (pass the OCR stage's,
    ``digitize.ocr.get_engine(profile.ocr)``; None: the default engine). ``orientation_hint``
    is the counter-clockwise turn (0/90/180/270) the file declares for the page, if any (a
    PDF's ``/Rotate`` or image matrix): a weak prior, never stronger than what the pixels show.

    The returned pixels are ``pixels`` itself (``out is pixels``) exactly when the record
    shows ``orientation_deg == 0``, ``resampled is False`` and ``crop_box is None``: then the
    caller may place the original scan bytes in the PDF. A page that was only turned by
    90/180/270 is a lossless turn of the source (``resampled`` False), so its source bytes
    could also be kept with a page /Rotate. ``crop_box`` is in pixels of the oriented and
    deskewed page (equal to source pixels when neither happened).

    Low confidence never changes the page: it is left as scanned and flagged
    ``orientation_uncertain`` / ``skew_uncertain`` (severity review, R15).
    """
    started = time.perf_counter()
    settings = settings or CleanSettings()
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError(f"clean_page needs uint8 HxW or HxWx3 pixels, got {pixels.dtype}")
    flags: list[Flag] = []
    out = pixels
    if not (settings.orientation or settings.deskew):
        d = _Decision()
    else:
        ctx = _VoteContext(settings.engine_votes, engine, orientation_hint)
        d = _decide(pixels, dpi, settings.max_skew_deg, settings.orientation, ctx)
    orientation = 0
    if settings.orientation:
        if d.orientation_confidence >= settings.min_orientation_confidence:
            orientation = d.orientation
        else:
            flags.append(
                _flag(
                    "orientation_uncertain",
                    f"orientation unclear (best guess {d.orientation}°, confidence "
                    f"{d.orientation_confidence:.2f}); page left as scanned",
                )
            )
    if orientation:
        out = rotate_orientation(out, orientation)

    applied = 0.0
    if settings.deskew:
        if d.skew_confidence < settings.min_skew_confidence:
            flags.append(
                _flag(
                    "skew_uncertain",
                    f"no reliable text lines to measure skew (confidence "
                    f"{d.skew_confidence:.2f}); page not deskewed",
                )
            )
        elif abs(d.skew) > settings.max_skew_deg - 0.5:
            flags.append(
                _flag(
                    "skew_uncertain",
                    f"skew {d.skew:+.2f}° at the edge of the searched range; page not deskewed",
                )
            )
        elif abs(d.skew) >= settings.min_skew_deg:
            out = deskew_page(out, d.skew, background_colour(pixels))
            applied = -d.skew

    crop_box = None
    if settings.crop_background:
        crop_box = find_paper_box(out, dpi)
        if crop_box is not None:
            x0, y0, x1, y1 = crop_box
            out = np.ascontiguousarray(out[y0:y1, x0:x1])

    h, w = out.shape[:2]
    record = CleanRecord(
        orientation_deg=orientation,  # type: ignore[arg-type]
        orientation_confidence=round(d.orientation_confidence, 3),
        skew_deg=round(d.skew, 3),
        skew_confidence=round(d.skew_confidence, 3),
        rotation_applied_deg=round(applied - orientation, 3) if (orientation or applied) else 0.0,
        resampled=applied != 0.0,
        crop_box=crop_box,
        width_px=w,
        height_px=h,
        seconds=round(time.perf_counter() - started, 4),
        flags=tuple(flags),
    )
    return out, record
