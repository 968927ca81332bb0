"""Reading a paper's field template from its OCR lines: the lines in reading order, printed
labels and the values after them (on the same line, wrapped, or under the label), headed
paragraphs. ``regions`` reads what has no label (table cells, the closing block, patterns).

Only the structure of the form is used (labels, headings, columns, the closing block): nothing
here knows a person, a place or a number. Each value comes back raw, with the words it was read
from (page, box, confidence) and whether it stood on a dotted line; ``paper`` normalises and
judges it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from digitize.extract.lines import Line, line_from_words, lines_of
from digitize.extract.parsers import DateParse, parse_date_line
from digitize.extract.text import fold
from digitize.models import PageOcr, Word
from digitize.settings import FieldTemplate

Position = tuple[int, int]  # (line index in reading order, character offset)
_COLON = ":;"
_LABEL_TAIL = re.compile(r"^[^\d:;]{0,24}[:;]")  # "…tên người làm đơn:" after a shorter label
_OTHER_LABEL = re.compile(r"\s[A-ZĐ][^\s:;]*(?:\s[^\s:;]+){0,4}\s?[:;]\s")


@dataclass
class RawValue:
    """What was read for one field, before normalisation."""

    text: str
    words: list[Word] = field(default_factory=list)
    page: int | None = None
    dotted: bool = False  # stood on a dotted line (filled in by hand, usually)
    label_found: bool = True
    below: bool = False  # taken from the lines under the label, not beside it
    parsed_date: DateParse | None = None


@dataclass(frozen=True)
class _Hit:
    line: int
    start: int
    end: int  # where the value starts
    label: str
    score: float  # 100 for an exact match


class PaperText:
    """The lines of a paper's pages in reading order (rows top to bottom, left to right)."""

    def __init__(self, pages: Sequence[PageOcr]):
        self.pages = list(pages)
        self.lines: list[Line] = []
        for number, page in enumerate(pages, start=1):
            self.lines.extend(_reading_order(lines_of(page, number), page.width_px or 1))
        self.folded = [fold(line.text) for line in self.lines]
        heights = sorted(line.height for line in self.lines) or [1]
        self.line_height = max(heights[len(heights) // 2], 1)

    def width(self, page: int) -> int:
        return self.pages[page - 1].width_px or 1

    def find(self, phrases: str | None, after: Position = (0, 0)) -> Position | None:
        """First position at or after ``after`` where one of ``phrases`` ("a|b") is printed,
        matched without diacritics (exactly, else fuzzily on long phrases)."""
        if not phrases:
            return None
        options = [fold(p).strip() for p in phrases.split("|") if p.strip()]
        best: Position | None = None
        for index in range(after[0], len(self.lines)):
            text = self.folded[index]
            offset = after[1] if index == after[0] else 0
            for option in options:
                at = text.find(option, offset)
                if at < 0 and len(option) >= 12:
                    match = fuzz.partial_ratio_alignment(option, text[offset:], score_cutoff=88)
                    at = offset + match.dest_start if match is not None else -1
                if at >= 0 and (best is None or (index, at) < best):
                    best = (index, at)
            if best is not None:
                return best
        return None

    def span(self, between: tuple[str | None, str | None]) -> tuple[Position, Position]:
        start = self.find(between[0]) if between[0] else (0, 0)
        if start is None:
            start = (len(self.lines), 0)  # the opening phrase is not on the paper
        end = self.find(between[1], start) if between[1] else None
        return start, end or (len(self.lines), 0)


def _reading_order(lines: list[Line], width: int) -> list[Line]:
    """Rows top to bottom (lines whose middles lie within half a line of each other), each
    row left to right; pieces of one row closer than 8 % of the page width are one line (the
    engine cuts a label from its handwritten value, or a value in two)."""
    if not lines:
        return []
    heights = sorted(line.height for line in lines)
    half = max(heights[len(heights) // 2], 1) / 2
    ordered = sorted(lines, key=lambda ln: (ln.bbox[1] + ln.bbox[3]) / 2)
    rows: list[list[Line]] = []
    for line in ordered:
        middle = (line.bbox[1] + line.bbox[3]) / 2
        if rows and abs(middle - _row_middle(rows[-1])) <= half:
            rows[-1].append(line)
        else:
            rows.append([line])
    out: list[Line] = []
    for row in rows:
        pieces = sorted(row, key=lambda ln: ln.bbox[0])
        group = [pieces[0]]
        for piece in pieces[1:]:
            if piece.bbox[0] - group[-1].bbox[2] < 0.08 * width and piece.words and group[-1].words:
                group.append(piece)
                continue
            out.append(_join(group))
            group = [piece]
        out.append(_join(group))
    return out


def _join(pieces: list[Line]) -> Line:
    if len(pieces) == 1:
        return pieces[0]
    words = [w for piece in pieces for w in piece.words]
    return line_from_words(pieces[0].page, pieces[0].index, words)


def _row_middle(row: list[Line]) -> float:
    return sum((ln.bbox[1] + ln.bbox[3]) / 2 for ln in row) / len(row)


def undot(text: str) -> str:
    """Dotted leaders and specks out of a line before it is parsed as a date ("ngày 26...
    tháng 05... năm .2023.." → "ngày 26 tháng 05 năm 2023")."""
    return re.sub(r"\s+", " ", re.sub(r"(?<!\d)[.…_]+|[.…_]+(?!\d)", " ", text)).strip()


# --- labels ----------------------------------------------------------------------------------
def _label_hits(text: PaperText, index: int, labels: Sequence[str]) -> list[_Hit]:
    """Every printed label of ``labels`` on line ``index``: exact (without diacritics, at word
    bounds) or, before a colon, fuzzy; a one-word label needs its colon. Overlaps keep the
    longer label."""
    folded = text.folded[index].replace("⁄", "/")
    hits: list[_Hit] = []
    for label in {fold(lb).strip() for lb in labels if lb.strip()}:
        one_word = " " not in label and "/" not in label
        for match in re.finditer(re.escape(label), folded):
            a, b = match.span()
            if (a and folded[a - 1].isalnum()) or (b < len(folded) and folded[b].isalnum()):
                continue
            rest = folded[b:]
            colon = re.match(r"\s*[:;]", rest)
            if one_word and colon is None:
                continue
            hits.append(_Hit(index, a, b + (colon.end() if colon else 0), label, 100.0))
        if len(label) < 6:
            continue
        if len(label) >= 12 and not any(h.label == label for h in hits):
            # A long label with a slip and no colon ("Ngày, thắng, năm / Date, tnonth, year").
            found = fuzz.partial_ratio_alignment(label, folded, score_cutoff=88)
            if found is not None and found.dest_end - found.dest_start >= 0.8 * len(label):
                tail = re.match(r"\s*[:;]?", folded[found.dest_end :])
                end = found.dest_end + (tail.end() if tail else 0)
                hits.append(_Hit(index, found.dest_start, end, label, found.score - 1))
        for colon_at in (i for i, ch in enumerate(folded) if ch in _COLON):
            before = folded[:colon_at].rstrip(" .")
            window = before[-len(label) :]
            score = fuzz.ratio(window, label)
            if score >= 86:
                hits.append(_Hit(index, len(before) - len(window), colon_at + 1, label, score))
    # The best match first (a fuzzy "… người cha" must not take the "… người mẹ" line), then
    # the longer label ("Họ, chữ đệm, tên người mẹ" over "Họ, chữ đệm, tên").
    hits.sort(key=lambda h: (-h.score, -len(h.label)))
    kept: list[_Hit] = []
    for hit in hits:
        if all(hit.end <= k.start or hit.start >= k.end for k in kept):
            kept.append(hit)
    return sorted(kept, key=lambda h: h.start)


def _value_after(text: PaperText, hit: _Hit, hits_on_line: list[_Hit]) -> tuple[int, int]:
    """Character span of the value that follows a label on its own line."""
    line = text.lines[hit.line].text
    start = hit.end
    tail = _LABEL_TAIL.match(fold(line[start:]))
    if (
        tail
        and not any(ch.isdigit() for ch in tail.group(0))
        and ":" not in line[hit.start : start]
    ):
        start += tail.end()
    stops = [h.start for h in hits_on_line if h.start >= start]
    other = _OTHER_LABEL.search(line, start)
    if other:
        stops.append(other.start())
    end = min(stops) if stops else len(line)
    return start, end


def _continuation(text: PaperText, index: int) -> list[int]:
    """Lines that continue a wrapped value on line ``index``: same page, right under it,
    starting at the left text margin, the line before reaching the right margin."""
    out: list[int] = []
    current = text.lines[index]
    width = text.width(current.page)
    margin = min(ln.bbox[0] for ln in text.lines if ln.page == current.page)
    for nxt_index in range(index + 1, min(index + 4, len(text.lines))):
        nxt = text.lines[nxt_index]
        gap = nxt.bbox[1] - current.bbox[3]
        if (
            nxt.page != current.page
            or gap > 0.9 * text.line_height
            or gap < -0.3 * text.line_height
            or current.bbox[2] < 0.7 * width
            or nxt.bbox[0] > margin + 0.08 * width
            or re.match(r"^\W*([ivx]+\.|\d+\.|[a-zđ]\)|-\s)", text.folded[nxt_index])
            or ":" in nxt.text[:40]
        ):
            break
        out.append(nxt_index)
        current = nxt
    return out


def read_labelled(text: PaperText, template: FieldTemplate, labels: Sequence[str]) -> RawValue:
    """The value after the template's label, within its ``between`` span.

    ``labels`` are all labels of the paper type, so a value stops where the next one starts."""
    lo, hi = text.span(template.between)
    for index in range(lo[0], min(hi[0] + 1, len(text.lines))):
        hits = _label_hits(text, index, labels)
        mine = {fold(lb).strip() for lb in template.labels}
        for hit in hits:
            if hit.label not in mine or (index, hit.start) < lo or (index, hit.start) >= hi:
                continue
            return _value_of_hit(text, hit, hits, template)
    return RawValue("", label_found=False)


def _value_of_hit(
    text: PaperText, hit: _Hit, hits: list[_Hit], template: FieldTemplate
) -> RawValue:
    line = text.lines[hit.line]
    a, b = _value_after(text, hit, hits)
    raw = line.text[a:b]
    words = line.words_in((a, b))
    if template.kind == "paragraph" or not re.search(r"[^\W_]", raw.replace("(", "")):
        return _value_below(text, hit, template, words, raw)
    maybe_more = False
    if template.kind in ("text", "paragraph") and b >= len(line.text.rstrip()) - 1:
        taken = _continuation(text, hit.line)
        for extra in taken:
            raw += " " + text.lines[extra].text
            words += text.lines[extra].words
        last = taken[-1] if taken else hit.line
        long_value = len(raw.strip(" .…_")) >= 20  # a short value ending a row does not wrap
        maybe_more = _line_right_under(text, last) or (
            not taken and long_value and _fills_its_line(text, last)
        )
    dotted = bool(re.search(r"\.{2,}|…", line.text[a:]))
    parsed = (
        parse_date_line(undot(line.text[hit.start :]))
        if template.kind in ("date", "place")
        else None
    )
    return RawValue(raw, words, line.page, dotted, parsed_date=parsed, below=maybe_more)


def _fills_its_line(text: PaperText, index: int) -> bool:
    """The line runs to the right edge of the text around it: a value there may wrap onto
    a line the engine lost or placed elsewhere."""
    line = text.lines[index]
    reach = 6 * text.line_height
    near = [
        ln.bbox[2]
        for ln in text.lines
        if ln.page == line.page and abs(ln.bbox[1] - line.bbox[1]) <= reach and ln.words
    ]
    return line.bbox[2] >= max(near, default=0) - 0.03 * text.width(line.page)


def _line_right_under(text: PaperText, index: int) -> bool:
    """A line right under line ``index`` that no label opens: the value may go on there
    (ID cards wrap an address under its label, not under the value)."""
    if index + 1 >= len(text.lines):
        return False
    line, nxt = text.lines[index], text.lines[index + 1]
    gap = nxt.bbox[1] - line.bbox[3]
    overlaps = nxt.bbox[0] < line.bbox[2] and nxt.bbox[2] > line.bbox[0]
    return (
        nxt.page == line.page
        and -0.3 * text.line_height < gap < 0.9 * text.line_height
        and overlaps
        and ":" not in nxt.text[:40]
        and not re.match(r"^\W*([ivx]+\.|\d+\.|[a-zđ]\)|-\s)", text.folded[index + 1])
    )


def _value_below(
    text: PaperText, hit: _Hit, template: FieldTemplate, words: list[Word], raw: str
) -> RawValue:
    """Nothing readable after the label: the value stands on the lines below (ID cards print
    the label above the value, with an English caption between)."""
    line = text.lines[hit.line]
    own = {fold(lb).strip() for lb in template.labels}
    texts = [raw] if raw.strip(" .…_") else []
    found: list[Word] = list(words)
    limit = 12 if template.kind == "paragraph" else 3
    lo, hi = text.span(template.between)
    previous = line
    for index in range(hit.line + 1, min(hit.line + 1 + limit, len(text.lines))):
        nxt = text.lines[index]
        if nxt.page != line.page or nxt.bbox[1] - previous.bbox[3] > 4 * text.line_height:
            break
        previous = nxt
        if template.kind == "paragraph" and index >= hi[0]:
            break
        folded = text.folded[index].strip(" :;./")
        if any(fuzz.ratio(folded, label) >= 85 for label in own):
            continue  # the caption of the same label ("Date of expiry")
        if template.kind != "paragraph" and ":" in nxt.text and not re.search(r"\d[:]\d", nxt.text):
            break  # the next label
        texts.append(nxt.text)
        found.extend(nxt.words)
        if template.kind != "paragraph":
            break
    return RawValue(
        " ".join(texts),
        found,
        line.page,
        bool(re.search(r"\.{3,}|…", raw)),
        below=len(texts) > (1 if raw.strip(" .…_") else 0),
    )
