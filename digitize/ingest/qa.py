"""Page QA on decoded pixels (R7, R11): colour mode, blank page, content at the border, and
fingerprints for duplicates. Only hashes and small fingerprints outlive a page.

Thresholds (measured): blank below 0.25 % ink — blank duplex backs with seal bleed-through and
specks measure about 0.09 %, the emptiest real content page (a signature-only last page)
1.2 %; ink is anything darker than the paper by max(50, 30 %), so show-through stays paper;
analysis runs on a copy at about 100 dpi.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from digitize.models import ColourMode, Flag, Severity, make_flag
from digitize.settings import IngestSettings

_QA_DPI = 100.0  # blank/border/duplicate analysis works on a copy at about this resolution
_DUP_WIDTH = 128  # near-duplicate fingerprint width (px)
BLANK_INK_SHARE = 0.0025  # share of the page covered by ink below which a page is blank


def to_array(img: Image.Image) -> tuple[np.ndarray, bool]:
    """Decoded pixels as uint8 HxW (gray/bilevel) or HxWx3; and whether the source was 1-bit."""
    mode = img.mode
    if mode == "1":
        return np.asarray(img.convert("L")), True
    if mode == "L":
        return np.asarray(img), False
    if mode.startswith("I;16"):
        # 16-bit gray: keep the high byte (integer shift, no float copy of the page)
        wide = np.asarray(img)
        return (wide >> 8).astype(np.uint8), False
    if mode == "I":
        wide = np.asarray(img)
        if int(wide.max(initial=0)) > 255:
            return (np.clip(wide, 0, 65535) >> 8).astype(np.uint8), False
        return np.clip(wide, 0, 255).astype(np.uint8), False
    if mode == "F":
        floats = np.asarray(img, dtype=np.float32)
        top = np.float32(65535.0 if float(floats.max(initial=0)) > 255 else 255.0)
        return np.clip(floats * (np.float32(255.0) / top) + np.float32(0.5), 0, 255).astype(
            np.uint8
        ), False
    if mode in ("LA", "La"):
        base = Image.new("L", img.size, 255)
        base.paste(img.convert("L"), mask=img.getchannel("A"))
        return np.asarray(base), False
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        base = Image.new("RGB", img.size, (255, 255, 255))
        base.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
        return np.asarray(base), False
    if mode == "P":
        palette_img = img.convert("RGB")
        return np.asarray(palette_img), False
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img), False


def _colour_mode(arr: np.ndarray, one_bit: bool, lossy: bool) -> tuple[ColourMode, np.ndarray]:
    """R11: RGB/gray/bilevel; colour images whose channels are equal count as gray."""
    if one_bit:
        return ColourMode.BILEVEL, arr
    if arr.ndim == 3:
        r, g, b = (arr[..., i] for i in range(3))
        if lossy:
            # JPEG chroma noise: a gray page re-encoded in colour is never exactly equal.
            sample = arr[::2, ::2].astype(np.int16)
            spread = sample.max(axis=2) - sample.min(axis=2)
            # A faint red seal covers well under 0.1 % of a page: count saturated pixels.
            is_gray = float(np.mean(spread > 24)) < 5e-5 and float(spread.mean()) < 3.0
        else:
            is_gray = bool(np.array_equal(r, g) and np.array_equal(g, b))
        if not is_gray:
            return ColourMode.RGB, arr
        arr = np.ascontiguousarray(g) if not lossy else cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    if not lossy:
        hist = np.bincount(arr.ravel(), minlength=256)
        if hist[1:255].sum() == 0:
            return ColourMode.BILEVEL, arr
    return ColourMode.GRAY, arr


@dataclass
class PageAnalysis:
    colour_mode: ColourMode
    is_blank: bool
    touches_border: bool
    pixel_hash: str
    fingerprint: np.ndarray | None
    ink_share: float


def _qa_gray(gray: np.ndarray, dpi: float) -> np.ndarray:
    scale = min(1.0, _QA_DPI / dpi) if dpi > 0 else min(1.0, 1200 / max(gray.shape))
    if scale >= 1.0:
        return gray
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def analyse_page(arr: np.ndarray, one_bit: bool, lossy: bool, dpi: float) -> PageAnalysis:
    """Colour mode, blank page, content at the border, fingerprints (one decoded page)."""
    mode, plane = _colour_mode(arr, one_bit, lossy)
    digest = hashlib.sha256()
    digest.update(f"{mode.value}:{plane.shape}".encode())
    digest.update(np.ascontiguousarray(plane).data)
    gray = plane if plane.ndim == 2 else cv2.cvtColor(plane, cv2.COLOR_RGB2GRAY)
    small = _qa_gray(gray, dpi)
    h, w = small.shape
    paper = float(np.percentile(small, 90))
    # Ink: clearly darker than the paper. Seal bleed-through and show-through stay lighter.
    threshold = paper - max(50.0, 0.3 * paper)
    ink = (small < threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    min_area = 3  # about 0.5 mm² at 100 dpi: specks and dust are not content
    kept_area = 0
    touches = False
    margin = 1
    for label in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[label])
        if area < min_area:
            continue
        at_edge = x <= margin or y <= margin or x + bw >= w - margin or y + bh >= h - margin
        if at_edge:
            # Scanner background or an edge shadow runs along a side: not page content.
            # (a skewed page leaves dark wedges along every side)
            on_top_bottom = y <= margin or y + bh >= h - margin
            on_left_right = x <= margin or x + bw >= w - margin
            along_x = on_top_bottom and bw >= 0.2 * w and bh <= 0.1 * h
            along_y = on_left_right and bh >= 0.2 * h and bw <= 0.1 * w
            huge = area >= 0.25 * w * h
            if along_x or along_y or huge:
                continue
            touches = True
        kept_area += area
    ink_share = kept_area / float(w * h)
    # Measured: blank duplex backs with seal bleed-through and specks ~0.09 % ink; the
    # emptiest real content page (a signature-only last page) 1.2 %.
    is_blank = ink_share < BLANK_INK_SHARE
    fingerprint = None
    if not is_blank:
        fh = max(1, round(_DUP_WIDTH * h / w))
        fingerprint = cv2.resize(small, (_DUP_WIDTH, fh), interpolation=cv2.INTER_AREA)
    return PageAnalysis(
        colour_mode=mode,
        is_blank=is_blank,
        touches_border=touches and not is_blank,
        pixel_hash=digest.hexdigest(),
        fingerprint=fingerprint,
        ink_share=ink_share,
    )


def is_near_duplicate(a: np.ndarray, b: np.ndarray) -> bool:
    """Same page re-saved/re-encoded: tiny mean difference and no local difference."""
    if a.shape != b.shape:
        return False
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(diff.mean()) < 2.0 and float(np.percentile(diff, 99.5)) < 24.0


@dataclass
class DuplicateMemory:
    """Cross-page memory of one ingest run: hashes and fingerprints, never pixels."""

    exact: dict[str, tuple[int, int]] = field(default_factory=dict)  # hash → (component, index)
    prints: list[tuple[int, int, int, np.ndarray]] = field(default_factory=list)


@dataclass(frozen=True)
class PagePlace:
    component: int  # ordinal
    index: int  # 1-based image index in the component
    physical: int  # physical page (R6 note-slip pairs share one)


def qa_flags(
    analysis: PageAnalysis, place: PagePlace, settings: IngestSettings
) -> list[Flag]:
    """Flags that depend on this page alone (R7, R11, blank pages)."""
    flags: list[Flag] = []
    if analysis.is_blank:
        flags.append(
            make_flag(
                "blank_page",
                f"page looks blank (ink {analysis.ink_share:.3%}); kept",
                Severity.WARNING,
                place.index,
            )
        )
    if analysis.touches_border:
        flags.append(
            make_flag(
                "content_at_border",
                "content reaches the image edge: check nothing was cut off (R7)",
                Severity.REVIEW,
                place.index,
            )
        )
    if analysis.colour_mode != ColourMode.RGB and not settings.allow_grayscale:
        flags.append(
            make_flag(
                "grayscale_capture",
                f"page captured as {analysis.colour_mode.value}; colour capture is required (R11)",
                Severity.WARNING,
                place.index,
            )
        )
    return flags


def duplicate_flags(
    analysis: PageAnalysis,
    place: PagePlace,
    memory: DuplicateMemory,
    settings: IngestSettings,
    dossier_flags: list[Flag],
) -> tuple[list[Flag], int | None]:
    """Exact and near duplicates of earlier pages: page flags and ``duplicate_of`` (same
    component only); a duplicate in another component is also a dossier flag."""
    flags: list[Flag] = []
    duplicate_of: int | None = None
    earlier = memory.exact.get(analysis.pixel_hash)
    if earlier is not None:
        flags.append(
            make_flag(
                "duplicate_page",
                f"pixel-identical to component {earlier[0]} page {earlier[1]}",
                Severity.REVIEW,
                place.index,
            )
        )
        if earlier[0] == place.component:
            duplicate_of = earlier[1]
        else:
            dossier_flags.append(
                make_flag(
                    "cross_component_duplicate",
                    f"component {place.component} page {place.index} is identical to "
                    f"component {earlier[0]} page {earlier[1]}",
                    Severity.REVIEW,
                )
            )
    else:
        memory.exact[analysis.pixel_hash] = (place.component, place.index)
        if settings.detect_near_duplicates and analysis.fingerprint is not None:
            for comp, other, other_phys, fp in memory.prints:
                if comp == place.component and other_phys == place.physical:
                    continue  # R6 note-slip pairs are meant to look alike
                if is_near_duplicate(fp, analysis.fingerprint):
                    flags.append(
                        make_flag(
                            "near_duplicate_page",
                            f"nearly identical to component {comp} page {other}",
                            Severity.REVIEW,
                            place.index,
                        )
                    )
                    if comp == place.component:
                        duplicate_of = other
                    break
    if analysis.fingerprint is not None:
        memory.prints.append((place.component, place.index, place.physical, analysis.fingerprint))
    return flags, duplicate_of
