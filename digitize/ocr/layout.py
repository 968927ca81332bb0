"""Layout of engine words: our lines, the two-column reading order, noise words dropped.

Tesseract merges the two columns of the administrative header (organ | national motto,
``Số:`` | place and date) and of the closing block (``Nơi nhận`` | signer) into single lines.
``layout`` splits such lines at wide gaps and reads two-column zones column by column, which
is both the reading order a person uses and what the header extractor needs (and the reading
order of the corpus ground truth). Engine-neutral: it needs word boxes, confidences and the
engine's line identity only.
"""

from __future__ import annotations

import html
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from digitize.models import OcrLine, PageOcr, Word
from digitize.ocr.engine import OcrEngine, RawWord


@dataclass
class _Segment:
    words: list[RawWord]
    block: int
    row: int  # index of the engine line it came from

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return (
            min(w.bbox[0] for w in self.words),
            min(w.bbox[1] for w in self.words),
            max(w.bbox[2] for w in self.words),
            max(w.bbox[3] for w in self.words),
        )


def _split_engine_line(words: list[RawWord], row: int) -> list[_Segment]:
    """Cut a line where the gap between words is much wider than the text is tall. Words
    that do not sit on the line (no vertical overlap with the line's middle word; an engine
    reading a degraded page as one block can string specks from far above or below into a
    line) become lines of their own."""
    words = sorted(words, key=lambda w: w.bbox[0])
    middle = sorted(words, key=lambda w: (w.bbox[1] + w.bbox[3]) / 2)[len(words) // 2]
    on_line = [w for w in words if _overlaps_vertically(w, middle)]
    stray = [w for w in words if not _overlaps_vertically(w, middle)]
    height = statistics.median(w.bbox[3] - w.bbox[1] for w in on_line)
    segments = [_Segment([on_line[0]], on_line[0].block, row)]
    for word in on_line[1:]:
        gap = word.bbox[0] - segments[-1].words[-1].bbox[2]
        if gap > max(2.5 * height, 12):
            segments.append(_Segment([word], word.block, row))
        else:
            segments[-1].words.append(word)
    segments.extend(_Segment([w], w.block, row) for w in stray)
    return segments


def _overlaps_vertically(a: RawWord, b: RawWord) -> bool:
    top, bottom = max(a.bbox[1], b.bbox[1]), min(a.bbox[3], b.bbox[3])
    return bottom - top > 0.3 * min(a.bbox[3] - a.bbox[1], b.bbox[3] - b.bbox[1])


def _visual_rows(segments: list[_Segment]) -> list[list[_Segment]]:
    """Group segments whose vertical extents overlap into rows, top to bottom (the engine may
    put the two halves of one printed row into different blocks)."""
    rows: list[list[_Segment]] = []
    spans: list[tuple[int, int]] = []
    for seg in sorted(segments, key=lambda s: (s.bbox[1] + s.bbox[3]) / 2):
        _, y0, _, y1 = seg.bbox
        if spans:
            r0, r1 = spans[-1]
            overlap = min(y1, r1) - max(y0, r0)
            if overlap > 0.5 * min(y1 - y0, r1 - r0):
                rows[-1].append(seg)
                spans[-1] = (min(r0, y0), max(r1, y1))
                continue
        rows.append([seg])
        spans.append((y0, y1))
    return [_tidy_row(row) for row in rows]


def _mean_confidence(seg: _Segment) -> float:
    return sum(w.confidence for w in seg.words) / len(seg.words)


def _tidy_row(row: list[_Segment]) -> list[_Segment]:
    """Within one printed row: drop a duplicate reading of the same place (the engine can read
    a line twice where a seal overlaps it), join pieces that sit close together (a bullet the
    engine put in its own line), and drop pieces without any letter or digit (seal and
    signature strokes)."""
    row = sorted(row, key=lambda s: s.bbox[0])
    out: list[_Segment] = []
    for seg in row:
        if out:
            last = out[-1]
            lx0, _, lx1, _ = last.bbox
            x0, _, x1, _ = seg.bbox
            overlap = min(lx1, x1) - max(lx0, x0)
            if overlap > 0.5 * min(lx1 - lx0, x1 - x0):
                if _mean_confidence(seg) > _mean_confidence(last):
                    out[-1] = seg
                continue
            height = statistics.median(w.bbox[3] - w.bbox[1] for w in last.words + seg.words)
            if x0 - lx1 <= max(2.5 * height, 12):
                out[-1] = _Segment(last.words + seg.words, last.block, last.row)
                continue
        out.append(seg)
    return [seg for seg in out if any(ch.isalnum() for w in seg.words for ch in w.text)]


def layout(words: Sequence[RawWord], page_width: int) -> list[_Segment]:
    """Segments (our lines) in reading order.

    Rows are printed lines top to bottom. A two-column zone starts at a row cut into a left and
    a right part and continues while rows stay on one side of the page centre; inside a zone
    the left column is read before the right one. A row cut in two after a one-sided row (or
    after a tall vertical gap) starts a new zone, so the header's 2×2 table (organ | motto,
    number | date) reads row by row."""
    by_line: dict[tuple[int, ...], list[RawWord]] = {}
    for word in words:
        by_line.setdefault(word.line_key, []).append(word)
    segments = [seg for i, ws in enumerate(by_line.values()) for seg in _split_engine_line(ws, i)]
    rows = [row for row in _visual_rows(segments) if row]  # a row of seal strokes only: gone
    line_height = statistics.median(w.bbox[3] - w.bbox[1] for w in words) if words else 0

    ordered: list[_Segment] = []
    zone_left: list[_Segment] = []
    zone_right: list[_Segment] = []
    left_end = right_start = 0  # extent of the zone's columns, from its two-part rows
    in_zone = False
    prev_split = False
    prev_bottom = 0

    def close_zone() -> None:
        ordered.extend(zone_left)
        ordered.extend(zone_right)
        zone_left.clear()
        zone_right.clear()

    for segs in rows:
        top = min(s.bbox[1] for s in segs)
        if len(segs) == 2:
            tall_gap = top - prev_bottom > 0.6 * line_height
            if in_zone and (not prev_split or tall_gap):
                close_zone()
            if not zone_left:
                left_end, right_start = segs[0].bbox[2], segs[1].bbox[0]
            left_end = max(left_end, segs[0].bbox[2])
            right_start = min(right_start, segs[1].bbox[0])
            zone_left.append(segs[0])
            zone_right.append(segs[1])
            in_zone, prev_split = True, True
        elif in_zone and len(segs) == 1 and segs[0].bbox[2] < right_start:
            zone_left.append(segs[0])
            prev_split = False
        elif in_zone and len(segs) == 1 and segs[0].bbox[0] > left_end:
            zone_right.append(segs[0])
            prev_split = False
        else:
            close_zone()
            ordered.extend(segs)
            in_zone, prev_split = False, False
        prev_bottom = max(s.bbox[3] for s in segs)
    close_zone()
    return ordered


_NOTATION_LIKE = re.compile(r"[/|][A-ZĐ][A-Za-zĐđ]{0,5}-[A-ZĐ][A-Za-zĐđ0-9]{1,8}")


def is_noise(word: RawWord) -> bool:
    """Engine output on seals, signatures and specks: very low confidence, or low confidence
    with hardly any letter or digit in it. Dropping it keeps the text layer clean."""
    alnum = sum(ch.isalnum() for ch in word.text)
    if _NOTATION_LIKE.search(word.text):
        # "/KH-UBND" with a handwritten number run into it: the scrawl drags the word's
        # confidence to nothing, but the typed notation in it is real text.
        return False
    return word.confidence < 15 or (word.confidence < 40 and alnum < 2)


def segments_of(words: Sequence[RawWord]) -> list[_Segment]:
    """One reading's lines, cut at wide gaps (no reading order): what readings are compared
    by when several are merged."""
    by_line: dict[tuple[int, ...], list[RawWord]] = {}
    for word in words:
        by_line.setdefault(word.line_key, []).append(word)
    return [seg for i, ws in enumerate(by_line.values()) for seg in _split_engine_line(ws, i)]


def _hocr(lines: Sequence[OcrLine], words: Sequence[Word], width: int, height: int) -> str:
    """hOCR of our lines and words (the text layer's own structure and page pixels)."""
    out = [f"<div class='ocr_page' id='page_1' title='bbox 0 0 {width} {height}'>\n"]
    for index, line in enumerate(lines):
        x0, y0, x1, y1 = line.bbox
        out.append(
            f" <span class='ocr_line' id='line_{index + 1}' title='bbox {x0} {y0} {x1} {y1}'>"
        )
        for w_index, word in enumerate(w for w in words if w.line == index):
            wx0, wy0, wx1, wy1 = word.bbox
            out.append(
                f"<span class='ocrx_word' id='word_{index + 1}_{w_index + 1}' "
                f"title='bbox {wx0} {wy0} {wx1} {wy1}; x_wconf {round(word.confidence)}'>"
                f"{html.escape(word.text)}</span> "
            )
        out.append("</span>\n")
    out.append("</div>\n")
    return "".join(out)


def assemble(
    words: Sequence[RawWord],
    engine: OcrEngine,
    size: tuple[int, int],
    dpi: float,
    keep_hocr: bool = True,
) -> PageOcr:
    """PageOcr from engine words (noise already dropped): our lines, reading order, NFC text,
    and, when asked, the matching hOCR (no QA yet). ``size`` is (width, height) in pixels."""
    width, height = size
    segments = layout(words, width) if words else []
    out_words: list[Word] = []
    out_lines: list[OcrLine] = []
    for index, seg in enumerate(segments):
        seg_words = sorted(seg.words, key=lambda w: w.bbox[0])
        for w in seg_words:
            out_words.append(Word(text=w.text, bbox=w.bbox, confidence=w.confidence, line=index))
        out_lines.append(
            OcrLine(
                text=" ".join(w.text for w in seg_words),
                bbox=seg.bbox,
                block=seg.block,
                confidence=round(sum(w.confidence for w in seg_words) / len(seg_words), 2),
            )
        )
    return PageOcr(
        engine=engine.name,
        engine_version=engine.version,
        language=engine.language,
        width_px=width,
        height_px=height,
        dpi=dpi,
        text="\n".join(line.text for line in out_lines),
        words=tuple(out_words),
        lines=tuple(out_lines),
        hocr=_hocr(out_lines, out_words, width, height) if keep_hocr else None,
    )
