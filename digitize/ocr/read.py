"""Reading one cleaned page: as scanned first, restored copies only where that reads poorly.

``ocr_page`` is the OCR stage (R15). What it does, and why:

1. The engine gets a gray copy: the red channel of a colour page (red seals and stamps fade
   there, black print stays), long straight rules erased (``remove_rules``).
2. The page is measured (``digitize.restore.measure_page``, 30–100 ms) and read once *as it
   came*. That reading is good when its letter-weighted mean word confidence is ≥ 90, ≥ 92 %
   of its letters are in words that can be Vietnamese (syllables, numbers, acronyms), and its
   word boxes cover ≥ 95 % of the page's character-sized ink. Every clean and normal DEV page
   and the first page of every real scan passed (lowest: confidence 91.4, validity 0.934,
   coverage 0.972), so they are read once, exactly as before. Coverage is what catches
   *dropped* text: a page whose shadowed half the engine skipped still reads its other half at
   confidence 91; 20 of the 25 degraded DEV pages had coverage 0.10–0.89.
3. A poor page is read again from restored copies (paper flattened first, then the steps its
   measurements call for, see ``digitize.restore``): the measured restoration, and, when the
   merged result is still poor, a deliberately different one (``alternative_plan``: denoised
   harder, read as one uniform block of lines). At most three readings, only on poor pages.
4. The readings are merged line by line (``merge_readings``): lines that overlap on the page
   form one region, and each region is taken whole from the reading with the higher score,
   where a line's score is the sum over its words of letters × confidence × validity (a word
   that cannot be Vietnamese counts a fifth). Summing rather than averaging lets the reading
   that found *more* valid text win: most errors on degraded pages are dropped lines, and a
   line found by one reading only is kept when it is not junk. The scan-as-it-came reading
   takes part, so restoration never costs a line that read well without it.
5. Junk is dropped from every reading (speck clouds, seals and signatures read as "k", "4è",
   "®Ệ", "{"): a line of punctuation only; a line of at most two words and three letters or
   digits, unless it is digits read with confidence ≥ 90 (a page number) or holds a valid
   word of two letters read with confidence ≥ 80 (the anchor "Số:"); a line of at most two
   words without one valid word of two or more letters and a mean confidence under 70; any
   line whose confidence-and-validity average is under 0.25. Before that, a "word" more than
   three times as tall as the reading's median word goes when it is read unsurely (< 80) or
   is not Vietnamese (a vertical speck stripe or a seal read as letters; the layout would
   otherwise take the rows beside it for one row); a sure, valid word whose box a stamp or a
   scrawl stretched stays.

The result's words are in pixels of the page given (an upscaled reading is mapped back). A
page read more than once carries an ``ocr_restored`` info flag naming the steps and how many
lines each reading gave.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from digitize.errors import OcrError
from digitize.extract import is_vietnamese_syllable
from digitize.models import Flag, PageOcr, Severity
from digitize.ocr.engine import OcrEngine, RawWord, ReadingHints, get_engine
from digitize.ocr.layout import assemble, is_noise, segments_of
from digitize.restore import (
    PageMeasures,
    RestorationPlan,
    alternative_plan,
    apply_plan,
    coverage,
    flatten,
    measure_page,
    plan_restoration,
)
from digitize.settings import OcrSettings

# A reading is good when all three hold (see the module docstring); otherwise the page is
# read again from restored copies.
GOOD_CONFIDENCE = 90.0
GOOD_VALIDITY = 0.92
GOOD_COVERAGE = 0.95
INVALID_WORD_WEIGHT = 0.2
JUNK_SCORE = 0.25
# A "word" this many times taller than the reading's median word is a speck stripe, a seal
# or a signature read as text: it would also glue the printed rows beside it into one row.
TALL_WORD = 3.0
# A word read at least this surely and valid is text even when short or oddly boxed.
SURE_WORD = 80.0
_MACHINE_CODE = re.compile(r"[A-Z0-9<]{10,}")
_PUNCT = ".,;:!?()[]{}\"'“”‘’«»…*"
_VOWELS = set("aăâeêioôơuưyAĂÂEÊIOÔƠUƯY")


# --- the gray input ------------------------------------------------------------------------
def prepare_for_ocr(pixels: np.ndarray, drop_red_ink: bool = True) -> np.ndarray:
    """Gray image for the engine. Colour pages use the red channel when asked: red seals and
    red stamps become nearly white there while black print stays black."""
    if pixels.dtype != np.uint8:
        raise OcrError(f"page pixels must be uint8, got {pixels.dtype}")
    if pixels.ndim == 2:
        return pixels
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        rgb = pixels[:, :, :3]
        if drop_red_ink:
            return np.ascontiguousarray(rgb[:, :, 0])
        return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    raise OcrError(f"unsupported page pixel shape {pixels.shape}")


def remove_rules(gray: np.ndarray, dpi: float, min_length_in: float = 0.3) -> np.ndarray:
    """Erase frames and grids (OCR input only) on a page that has a vertical rule: a received
    stamp's box ("CV ĐẾN", "Số: … Ngày: …") printed over the body, or a table. Their rules make
    the engine take the text they cross for a picture and drop whole lines. Then every long
    straight ink run goes; letter strokes are far shorter than ``min_length_in`` (0.3 in is
    about ten times the stem height of 13 pt type). A page with horizontal rules only
    (underlines, signature lines) is left as it is: the engine copes with those, and erasing
    them only changes how it segments the page (measured on the synthetic corpus).
    """
    _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    length = max(15, int(round(dpi * min_length_in)))
    # Scanned frame sides are a pixel or two out of plumb and broken: bridge that before
    # looking for vertical runs (a letter stem stays far shorter than ``length``).
    vertical = cv2.morphologyEx(
        cv2.dilate(ink, np.ones((1, 3), np.uint8)),
        cv2.MORPH_OPEN,
        cv2.getStructuringElement(cv2.MORPH_RECT, (1, length)),
    )
    vertical = cv2.bitwise_and(vertical, ink)
    # Scanner shadows and paper edges run along the image border: not a frame, left alone.
    margin_x = int(0.03 * gray.shape[1])
    vertical[:, :margin_x] = 0
    vertical[:, gray.shape[1] - margin_x :] = 0
    if not vertical.any():
        return gray
    horizontal = cv2.morphologyEx(
        ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1))
    )
    margin_y = int(0.03 * gray.shape[0])
    horizontal[:margin_y] = 0
    horizontal[gray.shape[0] - margin_y :] = 0
    # Fill a rule with the paper around it (a closing across the rule), not with white: a
    # white streak on grey or textured paper is itself an edge the engine trips over.
    across = max(5, int(round(dpi / 25)) | 1)
    out = gray.copy()
    for rule, kernel in ((horizontal, (1, across)), (vertical, (across, 1))):
        mask = cv2.dilate(rule, np.ones((3, 3), np.uint8)) > 0
        if not mask.any():
            continue
        paper = cv2.morphologyEx(
            out, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, kernel)
        )
        out[mask] = paper[mask]
    return out


def has_ink(gray: np.ndarray) -> bool:
    """Dark marks on a subsampled copy, relative to the paper's brightness."""
    small = gray[:: max(1, gray.shape[0] // 400), :: max(1, gray.shape[1] // 300)]
    background = float(np.percentile(small, 90))
    return float(np.mean(small < background - 60)) > 0.003


# --- Vietnamese word validity --------------------------------------------------------------
# Pure and asked for every word of every reading (and the same words recur on every page).
@lru_cache(maxsize=1 << 16)
def word_validity(text: str) -> float | None:
    """1.0 when a word can be Vietnamese text as printed in administrative papers (a
    syllable, a number or date, an acronym such as UBND, an abbreviation such as TTr, a
    notation such as 23/2015/NĐ-CP), 0.0 when it cannot (``4k``, ``®Ệ``, a syllable with two
    tone marks), None for punctuation alone (no evidence either way). A machine-readable code
    (an ID card's MRZ line, a serial number: capitals, digits and ``<`` filler, ten characters
    or more with at least six digits) is valid too: specks never read that long and regular."""
    core = text.strip(_PUNCT)
    if not core:
        return None
    if _MACHINE_CODE.fullmatch(core) and sum(ch.isdigit() for ch in core) >= 6:
        return 1.0
    parts = [p for p in re.split(r"[/\-–.,:;()]", core) if p]
    if not parts:
        return None
    for part in parts:
        if part.isdigit():
            continue
        if not part.isalpha():
            return 0.0  # letters mixed with digits or symbols
        if part.isupper() and sum(ch in _VOWELS for ch in part) <= 1:
            continue  # acronym
        if not part.isupper() and any(ch.isupper() for ch in part[1:]):
            continue  # abbreviation with inner capitals
        if not is_vietnamese_syllable(part):
            return 0.0
    return 1.0


def _weight(word: RawWord) -> float:
    validity = word_validity(word.text)
    if validity is None:
        return 1.0
    return validity if validity else INVALID_WORD_WEIGHT


@dataclass(frozen=True)
class ReadingQuality:
    """Letter-weighted mean confidence (0..100) and valid share (0..1) of a reading."""

    confidence: float
    validity: float
    letters: int


def reading_quality(words: list[RawWord]) -> ReadingQuality:
    letters = conf = valid = 0.0
    for word in words:
        n = len(word.text)
        letters += n
        conf += n * word.confidence
        validity = word_validity(word.text)
        valid += n * (1.0 if validity is None else validity)
    if not letters:
        return ReadingQuality(0.0, 0.0, 0)
    return ReadingQuality(conf / letters, valid / letters, int(letters))


def _line_score(words: list[RawWord]) -> float:
    return sum(len(w.text) * w.confidence / 100.0 * _weight(w) for w in words)


def _doubtful(word: RawWord) -> bool:
    """Read unsurely or not Vietnamese."""
    return word.confidence < SURE_WORD or word_validity(word.text) == 0.0


def _is_notation(word: RawWord) -> bool:
    """A word ending in a valid notation such as ``/TTg-CĐS``, ``185/TB-VPCP`` or ``J9/KH-DCT``
    (a handwritten number read as letters): read unsurely (a handwritten number beside it, a
    stamp over it) it is still the document's số/ký hiệu, which the extractor must see to
    flag; specks do not read as a slash followed by a valid acronym."""
    if "/" not in word.text:
        return False
    tail = word.text.split("/", 1)[1]
    return sum(ch.isalnum() for ch in tail) >= 4 and word_validity(tail) == 1.0


def _is_junk(words: list[RawWord]) -> bool:
    """A line that is engine output on specks, seals or signatures rather than text."""
    alnum = sum(ch.isalnum() for w in words for ch in w.text)
    if not alnum:
        return True  # punctuation and symbols only
    letters = sum(len(w.text) for w in words)
    if _line_score(words) / letters < JUNK_SCORE and not any(_is_notation(w) for w in words):
        return True
    mean = sum(w.confidence for w in words) / len(words)
    if len(words) <= 2 and alnum <= 3:
        # Short lines are mostly specks read as "4", "L", "bã"; but a page number ("2") or
        # an anchor such as "Số:" is short too, and read surely.
        digits = all(ch.isdigit() for w in words for ch in w.text if ch.isalnum())
        if digits:
            return mean < 90
        return not any(
            word_validity(w.text) == 1.0
            and sum(ch.isalpha() for ch in w.text) >= 2
            and w.confidence >= SURE_WORD
            for w in words
        )
    if len(words) > 2:
        return False
    has_valid_word = any(
        word_validity(w.text) == 1.0 and sum(ch.isalpha() for ch in w.text) >= 2 for w in words
    )
    return not has_valid_word and mean < 70


# --- readings ------------------------------------------------------------------------------
def _read(
    engine: OcrEngine, gray: np.ndarray, dpi: float, plan: RestorationPlan, index: int
) -> list[RawWord]:
    """One reading of ``plan``'s restoration, words in page pixels, noise dropped, line keys
    tagged with ``index`` so lines of different readings never join."""
    image = gray if plan.is_identity else apply_plan(gray, dpi, plan)
    raw = engine.recognise_raw(
        image, dpi * plan.scale, ReadingHints(plan.degraded, plan.uniform_block)
    )
    height, width = gray.shape[:2]
    heights = [w.bbox[3] - w.bbox[1] for w in raw.words]
    tallest = TALL_WORD * float(np.median(heights)) if heights else 0.0
    words = []
    for word in raw.words:
        if is_noise(word) or (word.bbox[3] - word.bbox[1] > tallest and _doubtful(word)):
            continue
        if plan.scale != 1.0:
            x0, y0, x1, y1 = (v / plan.scale for v in word.bbox)
            box = (
                max(0, int(x0)),
                max(0, int(y0)),
                min(width, int(round(x1))),
                min(height, int(round(y1))),
            )
            word = replace(word, bbox=box)
        words.append(replace(word, line_key=(index, *word.line_key)))
    return words


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Same printed line: heights overlap by half the shorter one, widths by a third."""
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    dy = min(ay1, by1) - max(ay0, by0)
    dx = min(ax1, bx1) - max(ax0, bx0)
    return dy > 0.5 * min(ay1 - ay0, by1 - by0) and dx > 0.3 * min(ax1 - ax0, bx1 - bx0)


def merge_readings(readings: list[list[RawWord]]) -> tuple[list[RawWord], dict[int, int]]:
    """Words of the better reading of every region (see the module docstring), junk lines
    dropped, and how many lines each reading contributed."""
    lines = [
        (r, seg.words)
        for r, words in enumerate(readings)
        for seg in segments_of(words)
        if not _is_junk(seg.words)
    ]
    boxes = [
        (
            min(w.bbox[0] for w in ws),
            min(w.bbox[1] for w in ws),
            max(w.bbox[2] for w in ws),
            max(w.bbox[3] for w in ws),
        )
        for _, ws in lines
    ]
    parent = list(range(len(lines)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = sorted(range(len(lines)), key=lambda i: boxes[i][1])
    for pos, i in enumerate(order):
        for j in order[pos + 1 :]:
            if boxes[j][1] >= boxes[i][3]:
                break  # sorted by top: nothing further down can overlap line i
            if lines[i][0] != lines[j][0] and _overlap(boxes[i], boxes[j]):
                parent[root(i)] = root(j)
    regions: dict[int, list[int]] = {}
    for i in range(len(lines)):
        regions.setdefault(root(i), []).append(i)
    kept: list[RawWord] = []
    used: dict[int, int] = {}
    for members in regions.values():
        scores: dict[int, float] = {}
        for i in members:
            scores[lines[i][0]] = scores.get(lines[i][0], 0.0) + _line_score(lines[i][1])
        # Ties go to the earlier reading (the first is the page as measured best).
        best = max(scores, key=lambda r: (scores[r], -r))
        for i in members:
            if lines[i][0] == best:
                kept.extend(lines[i][1])
                used[best] = used.get(best, 0) + 1
    return kept, used


def _poor_reading(
    words: list[RawWord], measures: PageMeasures | None, gray: np.ndarray
) -> str | None:
    """Why a reading is poor enough to read the page again, or None when it is good."""
    quality = reading_quality(words)
    if not quality.letters:
        return "no text read" if has_ink(gray) else None
    if quality.confidence < GOOD_CONFIDENCE:
        return f"confidence {quality.confidence:.0f}"
    if quality.validity < GOOD_VALIDITY:
        return f"{quality.validity:.0%} valid Vietnamese"
    if measures is not None:
        covered = coverage(measures, [w.bbox for w in words])
        if covered < GOOD_COVERAGE:
            return f"{covered:.0%} of the text ink read"
    return None


# --- the stage -----------------------------------------------------------------------------
def _with_quality(
    page: PageOcr, settings: OcrSettings, page_no: int | None, has_ink: bool = False
) -> PageOcr:
    if not page.words:
        # A blank page is fine; a page with visible ink and no text needs a human (R15).
        flag = Flag(
            code="no_text",
            severity=Severity.REVIEW if has_ink else Severity.INFO,
            message="OCR found no text on the page"
            + (" although it carries ink" if has_ink else ""),
            page=page_no,
        )
        return page.model_copy(update={"flags": (*page.flags, flag), "needs_review": has_ink})
    confidences = [w.confidence for w in page.words]
    mean = sum(confidences) / len(confidences)
    low_share = sum(c < settings.low_word_confidence for c in confidences) / len(confidences)
    flags = list(page.flags)
    reasons = []
    if mean < settings.min_page_confidence:
        reasons.append(f"mean word confidence {mean:.0f} < {settings.min_page_confidence:.0f}")
    if low_share > settings.max_low_confidence_share:
        reasons.append(
            f"{low_share:.0%} of words under confidence {settings.low_word_confidence:.0f}"
            f" (> {settings.max_low_confidence_share:.0%})"
        )
    if reasons:
        flags.append(
            Flag(
                code="low_ocr_confidence",
                severity=Severity.REVIEW,
                message="OCR needs review: " + "; ".join(reasons),
                page=page_no,
            )
        )
    return page.model_copy(
        update={
            "mean_confidence": round(mean, 2),
            "low_confidence_share": round(low_share, 4),
            "needs_review": bool(reasons),
            "flags": tuple(flags),
        }
    )


def _failed_page(
    pixels: np.ndarray, dpi: float, settings: OcrSettings, reason: str, page_no: int | None
) -> PageOcr:
    flag = Flag(code="ocr_failed", severity=Severity.REVIEW, message=reason, page=page_no)
    return PageOcr(
        engine=settings.engine,
        engine_version="unknown",
        language=settings.language,
        width_px=int(pixels.shape[1]) if pixels.ndim >= 2 else 0,
        height_px=int(pixels.shape[0]) if pixels.ndim >= 1 else 0,
        dpi=dpi,
        text="",
        needs_review=True,
        flags=(flag,),
    )


def _restoration_note(
    plans: list[RestorationPlan], used: dict[int, int], why: str | None, page_no: int | None
) -> Flag | None:
    if len(plans) == 1:
        return None
    steps = "; ".join(r for plan in plans[1:] for r in plan.reasons)
    kept = ", ".join(f"{used.get(i, 0)} from reading {i + 1}" for i in range(len(plans)))
    return Flag(
        code="ocr_restored",
        severity=Severity.INFO,
        message=(
            f"OCR read the page {len(plans)} times (the scan read poorly: {why}), from restored "
            f"copies (stored image unchanged): {steps}; lines kept: {kept}"
        ),
        page=page_no,
    )


def ocr_page(
    pixels: np.ndarray,
    dpi: float,
    settings: OcrSettings | None = None,
    *,
    page: int | None = None,
) -> PageOcr:
    """Read one cleaned page. Never raises for a page that merely has no text.

    An engine failure raises ``OcrError`` when ``settings.strict``; otherwise the page comes
    back empty with an ``ocr_failed`` flag naming the reason (R15: never silently accepted)."""
    settings = settings or OcrSettings()
    started = time.perf_counter()
    label = settings.page_label
    try:
        engine = get_engine(settings)
        gray = prepare_for_ocr(pixels, settings.drop_red_ink)
        measures: PageMeasures | None = measure_page(gray, dpi) if settings.restore else None
        plan = plan_restoration(measures) if measures else RestorationPlan()
        plans = [RestorationPlan(reasons=("the scan as it came",))]
        as_scanned = (
            remove_rules(gray, dpi, settings.rule_min_length_in) if settings.remove_rules else gray
        )
        readings = [_read(engine, as_scanned, dpi, plans[0], 0)]
        why = _poor_reading(readings[0], measures, gray) if settings.second_reading else None
        if why is not None:
            # The paper first: under a shadow a global threshold takes the paper for ink,
            # and rule removal would then erase the text there as "rules".
            restored = flatten(gray, dpi)
            if settings.remove_rules:
                restored = remove_rules(restored, dpi, settings.rule_min_length_in)
            plan = replace(plan, flatten=False)
            enough = False
            if plan.degraded:
                plans.append(plan)
                readings.append(_read(engine, restored, dpi, plan, len(readings)))
                enough = _poor_reading(merge_readings(readings)[0], measures, gray) is None
            if not enough:
                second = (
                    alternative_plan(measures, plan)
                    if measures
                    else RestorationPlan(
                        degraded=True, uniform_block=True, reasons=("uniform-block layout",)
                    )
                )
                plans.append(replace(second, flatten=False))
                readings.append(_read(engine, restored, dpi, plans[-1], len(readings)))
        words, used = merge_readings(readings)
        result = assemble(
            words, engine, (gray.shape[1], gray.shape[0]), dpi, keep_hocr=settings.keep_hocr
        )
        note = _restoration_note(plans, used, why, page)
        if note is not None:
            result = result.model_copy(update={"flags": (*result.flags, note)})
    except OcrError as exc:
        if settings.strict:
            raise OcrError(exc.message, path=label, page=page, hint=exc.hint) from exc
        return _failed_page(pixels, dpi, settings, exc.one_line(), page).model_copy(
            update={"seconds": round(time.perf_counter() - started, 3)}
        )
    except Exception as exc:  # an engine crash must not abort the dossier unless strict
        if settings.strict:
            raise OcrError(
                f"OCR failed: {type(exc).__name__}: {exc}", path=label, page=page
            ) from exc
        reason = f"OCR failed: {type(exc).__name__}: {exc}"
        return _failed_page(pixels, dpi, settings, reason, page)
    result = _with_quality(result, settings, page, has_ink=not result.words and has_ink(gray))
    return result.model_copy(update={"seconds": round(time.perf_counter() - started, 3)})
