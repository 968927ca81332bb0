"""Up or down: the vote of several signals on how a page is turned (used by ``clean``).

The line-shape cue of ``digitize.clean`` (Vietnamese lines are top-heavy: tone marks,
circumflexes, capitals and ascenders sit above the x-height band) is cheap and right on
clean pages, but specks, stains and ink bleed put ink on both sides of every line, and then
it can be weak or even point the wrong way. So on a page where it is not sure, or that looks
degraded, the OCR engine votes too, through the same engine object the OCR stage uses:

* ``reading``: a band of text is read as it stands and turned 180°; each reading scores
  letters × confidence × Vietnamese validity (``digitize.ocr.read.reading_quality``). Upside
  down, tesseract still returns words with confidences of 40–70, but hardly any of them is
  a Vietnamese syllable, so validity separates the two far better than confidence alone
  (the old check compared mean confidences and could be fooled by ten points on a blurred
  page).
* ``osd``: the engine's own orientation detector (tesseract OSD), consulted only when the
  two cues above disagree or are both weak, because it costs 0.5–3 s a page and on
  Vietnamese pages is right but unsure (confidence 1–14 of its 15 "sure").
* ``file``: the turn the file itself declares (a PDF's ``/Rotate`` or image matrix), as a
  weak prior: it counts only when the pixels' own votes are undecided (confidence under
  0.5); otherwise it is noted as overruled.

Each signal gives an evidence in −1..1 (positive: the page is upright as the axis step left
it; negative: it is upside down). The weighted mean decides; its size is the confidence,
except that two strong signals (|evidence| ≥ 0.3) pointing opposite ways cap the confidence
at 0.4, under the clean stage's 0.5 threshold: such a page is left as scanned and flagged for
review, never turned on a guess (R15).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitize.ocr.engine import OcrEngine, ReadingHints
from digitize.restore import flatten

WEIGHTS = {"lines": 1.0, "reading": 1.5, "osd": 0.7, "file": 0.5}
STRONG = 0.3
CONFLICT_CAP = 0.4
# The pixels' own votes at or above this confidence are not swayed by the file's declared turn.
DECIDED = 0.5
# A band reading with fewer letters than this (both ways) has no opinion.
MIN_LETTERS = 20
# A band that reads, as it stands, this many letters at this score per letter (confidence ×
# Vietnamese validity) is upright without reading it turned. Measured on the 70 DEV pages
# (corpus + corpus-harsh): bands read the right way up 0.54-0.96 (clean and normal pages
# 0.82-0.93), read upside down 0.14-0.32: no band read the wrong way comes near 0.75.
SURE_BAND_LETTERS = 3 * MIN_LETTERS
SURE_BAND = 0.75
# Bands are read as one block of horizontal lines: an engine's own layout analysis may find
# vertical text and turn it for itself (tesseract does), which would read a band cut across
# the lines, or turned on its side, as if it were upright.
BAND_HINTS = ReadingHints(degraded=True, uniform_block=True)


@dataclass(frozen=True)
class Vote:
    source: str  # "lines", "reading", "osd" or "file"
    evidence: float  # -1..1; > 0: upright as it stands, < 0: upside down
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    flipped: bool
    confidence: float  # 0..1
    note: str


def band_scores(engine: OcrEngine, band: np.ndarray, dpi: float) -> tuple[float, float, int]:
    """Reading scores of ``band`` (gray, lines horizontal) as it stands and turned 180°, and
    the letters of the better reading. When the band as it stands already reads as sure
    Vietnamese (``SURE_BAND``), the turned reading is skipped and scores 0: upside-down text
    never reads that way, and the second reading is half of the vote's cost on clean pages."""
    from digitize.ocr.layout import is_noise
    from digitize.ocr.read import word_validity

    image = flatten(band, dpi)
    scores = []
    letters = []
    for view in (image, np.ascontiguousarray(image[::-1, ::-1])):
        words = engine.recognise_raw(view, dpi, BAND_HINTS).words
        words = tuple(w for w in words if not is_noise(w))
        score = 0.0
        for w in words:
            validity = word_validity(w.text)
            weight = 1.0 if validity is None else (validity or 0.2)
            score += len(w.text) * w.confidence / 100.0 * weight
        scores.append(score)
        letters.append(sum(len(w.text) for w in words))
        if letters[0] >= SURE_BAND_LETTERS and score >= SURE_BAND * letters[0]:
            scores.append(0.0)
            break
    return scores[0], scores[1], max(letters)


def reading_vote(scores: tuple[float, float, int]) -> Vote | None:
    """Up vs down from ``band_scores``; None when neither way read enough letters."""
    upright, turned, letters = scores
    if letters < MIN_LETTERS or max(upright, turned) <= 0:
        return None
    evidence = (upright - turned) / max(upright, turned)
    return Vote("reading", evidence, f"band reads {upright:.0f} upright vs {turned:.0f} turned")


def osd_vote(engine: OcrEngine, gray: np.ndarray, dpi: float) -> Vote | None:
    """The engine's detector on the page as the axis step left it: 0° supports upright,
    180° upside down, a quarter turn has no say on up vs down."""
    found = engine.get_orientation(gray, dpi)
    if found is None:
        return None
    sign = {0: 1.0, 180: -1.0}.get(found.turn_deg, 0.0)
    return Vote("osd", sign * found.confidence, found.detail)


def file_vote(hint_turn: int | None, axis_turn: int) -> Vote | None:
    """The file's declared turn, when it lies on the axis the lines show."""
    if hint_turn is None:
        return None
    hint_turn %= 360
    if hint_turn == axis_turn:
        return Vote("file", 1.0, f"file declares {hint_turn}°")
    if hint_turn == (axis_turn + 180) % 360:
        return Vote("file", -1.0, f"file declares {hint_turn}°")
    return Vote("file", 0.0, f"file declares {hint_turn}°, off the line axis")


def combine(votes: list[Vote]) -> Verdict:
    """Weighted mean of the votes that have an opinion; conflicts cap the confidence. The
    file's declared turn counts only when the pixels' own votes are undecided (under
    ``DECIDED``); otherwise it is noted and overruled."""
    pixels = [v for v in votes if v.source != "file"]
    declared = [v for v in votes if v.source == "file"]
    verdict = _mean(pixels)
    if declared and verdict.confidence < DECIDED:
        return _mean(votes)
    if declared:
        return Verdict(verdict.flipped, verdict.confidence, verdict.note + "; file overruled")
    return verdict


def _mean(votes: list[Vote]) -> Verdict:
    heard = [v for v in votes if abs(v.evidence) > 0.05]
    note = "; ".join(
        f"{v.source} {v.evidence:+.2f}" + (f" ({v.note})" if v.note else "") for v in votes
    )
    if not heard:
        return Verdict(False, 0.0, note or "no signal")
    total = sum(WEIGHTS[v.source] for v in heard)
    mean = sum(WEIGHTS[v.source] * v.evidence for v in heard) / total
    confidence = min(1.0, abs(mean))
    strong = [v.evidence for v in heard if abs(v.evidence) >= STRONG and v.source != "file"]
    if strong and min(strong) < 0 < max(strong):
        confidence = min(confidence, CONFLICT_CAP)
        note += "; signals disagree"
    return Verdict(mean < 0, confidence, note)
