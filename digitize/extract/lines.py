"""The page model the extractor reads: OCR lines rebuilt from their words (exact character
offsets per word), the motto split off a joined row, pieces of one printed row joined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from digitize.extract.text import fold, similarity
from digitize.extract.vocab import MOTTO
from digitize.models import BBox, PageOcr, Word


@dataclass
class Line:
    page: int
    index: int
    text: str
    bbox: BBox
    words: list[Word] = field(default_factory=list)
    offsets: list[tuple[int, int]] = field(default_factory=list)  # char span of each word

    @property
    def folded(self) -> str:
        return fold(self.text)

    @property
    def centre_x(self) -> float:
        return (self.bbox[0] + self.bbox[2]) / 2

    @property
    def height(self) -> int:
        return self.bbox[3] - self.bbox[1]

    def words_in(self, span: tuple[int, int]) -> list[Word]:
        return [
            w
            for w, (a, b) in zip(self.words, self.offsets, strict=True)
            if a < span[1] and b > span[0]
        ]


def line_from_words(page_no: int, index: int, words: list[Word], bbox: BBox | None = None) -> Line:
    words = sorted(words, key=lambda w: w.bbox[0])
    pos, offsets = 0, []
    for w in words:
        offsets.append((pos, pos + len(w.text)))
        pos += len(w.text) + 1
    box = bbox or union_box([w.bbox for w in words]) or (0, 0, 0, 0)
    return Line(page_no, index, " ".join(w.text for w in words), box, words, offsets)


def motto_start(words: Sequence[Word], threshold: float) -> int | None:
    """Index of the word where the national motto starts inside a longer line (the engine can
    join "UBND TỈNH X" and "CỘNG HÒA XÃ HỘI …" on one row when the gap is narrow)."""
    for k in range(1, len(words)):
        if fold(words[k].text).startswith("cong"):
            rest = " ".join(w.text for w in words[k : k + 8])
            if similarity(rest, MOTTO) >= threshold:
                return k
    return None


def lines_of(page: PageOcr, page_no: int, threshold: float = 0.8) -> list[Line]:
    lines = [Line(page_no, i, line.text, line.bbox) for i, line in enumerate(page.lines)]
    for word in page.words:
        if 0 <= word.line < len(lines):
            lines[word.line].words.append(word)
    out: list[Line] = []
    for line in lines:
        if not line.words:
            if line.text.strip():
                out.append(line)
            continue
        # Rebuild text from the words so that character offsets are exact.
        words = sorted(line.words, key=lambda w: w.bbox[0])
        cut = motto_start(words, threshold)
        if cut is not None:
            out.append(line_from_words(page_no, line.index, words[:cut]))
            out.append(line_from_words(page_no, line.index, words[cut:]))
        else:
            out.append(line_from_words(page_no, line.index, words, line.bbox))
    return [line for line in out if line.text.strip()]


def same_row(a: Line, b: Line) -> bool:
    overlap = min(a.bbox[3], b.bbox[3]) - max(a.bbox[1], b.bbox[1])
    return overlap > 0.4 * min(a.height, b.height)


def row_pieces(lines: Sequence[Line], width: int, split_x: float) -> list[Line]:
    """Each line, plus the join of pieces of one printed row on the same side of the header's
    column split: a handwritten day or number the engine dropped leaves "Số:" | "/UBND-X"
    or "Quảng Ngãi," | "tháng 02 năm 2025" as separate pieces of one row."""
    out = list(lines)
    for line in lines:
        side = line.centre_x < split_x
        row = [
            other
            for other in lines
            if same_row(line, other)
            and (other.centre_x < split_x) == side
            and other.bbox[2] - other.bbox[0] < 0.6 * width
        ]
        if len(row) < 2 or line is not min(row, key=lambda ln: ln.bbox[0]):
            continue
        row.sort(key=lambda ln: ln.bbox[0])
        if any(b.bbox[0] - a.bbox[2] > 0.15 * width for a, b in zip(row, row[1:], strict=False)):
            continue
        words = [w for piece in row for w in piece.words]
        if words:
            out.append(line_from_words(line.page, line.index, words))
    return out


def union_box(boxes: Sequence[BBox]) -> BBox | None:
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def min_word_confidence(words: Sequence[Word]) -> float:
    if not words:
        return 0.0
    return round(min(w.confidence for w in words) / 100, 3)
