"""Resolution (R10, R12): dpi from the file, or inferred from the pixel size and the nearest
standard paper when the file says nothing usable — never guessed without a flag.

Thresholds: inferred dpi snaps to a standard scanner setting within 4 %; paper fit tolerance
8 % (scanners crop a few millimetres; A-series pages share one aspect ratio, so ties prefer A4,
then Letter, Legal, A3, A5 — what counters scan most); the floor allows 1 % (PDF page sizes are
rounded to whole points, so a true 200-dpi scan can measure 199.5 dpi; R12 allows ±1 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from digitize.models import Flag, Severity, make_flag

# (name, short side mm, long side mm); order = preference when aspect ratios tie
PAPER_SIZES_MM: tuple[tuple[str, float, float], ...] = (
    ("A4", 210.0, 297.0),
    ("Letter", 215.9, 279.4),
    ("Legal", 215.9, 355.6),
    ("A3", 297.0, 420.0),
    ("A5", 148.0, 210.0),
)
STANDARD_DPIS = (100, 150, 200, 240, 300, 400, 600, 1200)
PAPER_TOLERANCE = 0.08
SCREEN_DPIS = (72.0, 96.0)
PLAUSIBLE_DPI = (50.0, 1200.0)
DPI_FLOOR_TOLERANCE = 0.01


@dataclass(frozen=True)
class PaperFit:
    paper: str
    dpi: float
    mismatch: float  # relative difference between horizontal and vertical dpi


def fit_paper(width_px: int, height_px: int) -> PaperFit | None:
    """Nearest standard paper for this pixel size (either orientation), or None."""
    if width_px <= 0 or height_px <= 0:
        return None
    fits: list[tuple[float, int, PaperFit]] = []
    for rank, (name, short_mm, long_mm) in enumerate(PAPER_SIZES_MM):
        for w_mm, h_mm in ((short_mm, long_mm), (long_mm, short_mm)):
            dx = width_px / (w_mm / 25.4)
            dy = height_px / (h_mm / 25.4)
            mismatch = abs(dx - dy) / ((dx + dy) / 2)
            if mismatch <= PAPER_TOLERANCE:
                dpi = (dx + dy) / 2
                for std in STANDARD_DPIS:
                    if abs(dpi - std) / std <= 0.04:
                        dpi = float(std)
                        break
                fits.append((mismatch, rank, PaperFit(name, dpi, mismatch)))
    if not fits:
        return None
    best = min(f[0] for f in fits)
    # A-series sizes share one aspect ratio: within 1 % of the best fit, prefer the usual paper.
    close = [f for f in fits if f[0] <= best + 0.01]
    return min(close, key=lambda f: (f[1], f[0]))[2]


@dataclass(frozen=True)
class DpiDecision:
    dpi_x: float
    dpi_y: float
    source: Literal["file", "inferred"]
    paper: str | None
    flags: tuple[Flag, ...]


def decide_dpi(
    file_dpi: tuple[float, float] | None, width_px: int, height_px: int, page: int
) -> DpiDecision:
    """R10: dpi from the file; when missing or implausible, inferred from the paper size."""
    fit = fit_paper(width_px, height_px)
    reason: str | None = None
    if file_dpi is None or not all(math.isfinite(v) and v > 0 for v in file_dpi):
        reason = "no resolution in the file"
    else:
        lo, hi = min(file_dpi), max(file_dpi)
        if lo < PLAUSIBLE_DPI[0] or hi > PLAUSIBLE_DPI[1]:
            reason = f"implausible resolution {lo:g}×{hi:g} dpi in the file"
        elif (
            any(abs(lo - s) < 0.5 and abs(hi - s) < 0.5 for s in SCREEN_DPIS)
            and fit is not None
            and fit.dpi > hi * 1.25
        ):
            reason = f"{hi:g} dpi is a screen default, the pixel size says {fit.paper}"
    flags: list[Flag] = []
    if reason is None:
        assert file_dpi is not None
        dx, dy = float(file_dpi[0]), float(file_dpi[1])
        if abs(dx - dy) / max(dx, dy) > 0.02:
            flags.append(
                make_flag(
                    "dpi_non_square",
                    f"resolution differs by axis: {dx:g}×{dy:g} dpi",
                    Severity.INFO,
                    page,
                )
            )
        # PDF page sizes and cm units leave float noise (199.99999): two decimals are plenty.
        return DpiDecision(round(dx, 2), round(dy, 2), "file", None, tuple(flags))
    if fit is not None:
        flags.append(
            make_flag(
                "dpi_inferred",
                f"{reason}; inferred {fit.dpi:.0f} dpi from {width_px}×{height_px} px "
                f"as {fit.paper} paper",
                Severity.WARNING,
                page,
            )
        )
        return DpiDecision(fit.dpi, fit.dpi, "inferred", fit.paper, tuple(flags))
    # No paper fits: keep what the file said (or a 0 that the floor check refuses).
    dx, dy = file_dpi if file_dpi is not None else (0.0, 0.0)
    flags.append(
        make_flag(
            "dpi_unknown",
            f"{reason}; {width_px}×{height_px} px matches no standard paper size",
            Severity.REVIEW,
            page,
        )
    )
    return DpiDecision(float(dx), float(dy), "file", None, tuple(flags))
