"""Parsers of single header lines (public: unit-tested on OCR-noisy strings): the ``Số:``
number line, the place-and-date line, the type heading, the type a notation implies."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from digitize.extract.text import fold, is_caps, similarity
from digitize.extract.vocab import ABBREVIATION_TYPES, DOC_TYPES, valid_abbreviation


@dataclass(frozen=True)
class NumberParse:
    number: str | None  # None: the number was not printed/read (handwritten gap or scrawl)
    year: str | None
    notation: str
    span: tuple[int, int]  # of the whole "Số: …" match in the input text
    number_span: tuple[int, int] | None
    notation_span: tuple[int, int]
    corrected: bool = False  # notation spelling fixed (e.g. QD→QĐ)
    number_text: str = ""  # what stands between "Số:" and the notation, as read
    anchored: bool = True  # False: "Số" itself was not read, only "/NOTATION"
    # "Số: 23 /BC-UBND": a space before the slash means the number was written or stamped
    # into the blank the typed template leaves (typed numbers read "Số: 23/BC-UBND").
    number_in_blank: bool = False


# Folded text. "Số" as OCR gives it (so, s6, s0, sô→so), then ":" or a look-alike; the number
# is whatever stands before the last "/" that opens the notation (handwriting reads as any
# scrawl: "0+", "đ@", "4/35"), the notation is letters, digits and hyphens to the line end.
_NUMBER_ANCHOR_RE = re.compile(r"^\W*s\s?[o06]\s*[:;.,]?")
_NOTATION_RE = re.compile(
    r"[/|]\s*(?:(?P<year>(?:19|20)\d\d)\s*[/|]\s*)?"
    r"(?P<notation>[a-z][^\s/|-]*(?:\s?-\s?[^\s/|-]+)*?)[\W_]*$"
)


def parse_number_line(text: str) -> NumberParse | None:
    """``Số: 60/KH-UBND``, ``Số:09/2025/TT-BKHCN``, ``S6: 60/KH-UBND``, ``Số: /UBND-TTHC``,
    ``Số: 0+ /QĐ-BCĐ138`` (scrawl: no number), ``/CT-UBND`` (``Số`` lost: not anchored)."""
    text = unicodedata.normalize("NFC", text)
    folded = fold(text)
    anchor = _NUMBER_ANCHOR_RE.match(folded)
    if anchor is None:
        # Only "/NOTATION" was read: the anchor and a handwritten number were lost.
        if not re.match(r"^\W{0,2}[/|]", folded):
            return None
        start = 0
    else:
        start = anchor.end()
    notation_match = _NOTATION_RE.search(folded, start)
    if notation_match is None:
        return None
    # "Số lượng …", "số 15/2020/TT-BGDĐT ngày …" in prose: the notation must end the line and
    # only a short number may stand between the anchor and it.
    middle_span = (start, notation_match.start())
    middle = text[middle_span[0] : middle_span[1]].strip()
    if len(middle) > 12 or len(middle.split()) > 3:
        return None
    n0, n1 = notation_match.span("notation")
    notation = re.sub(r"\s+", "", text[n0:n1]).rstrip(".,;:!?)'\"")
    if anchor is None and "-" not in notation:
        return None
    parts = notation.split("-")
    corrected = False
    spelled = valid_abbreviation(parts[0])
    if spelled and spelled != parts[0]:
        parts[0] = spelled
        corrected = True
    notation = "-".join(parts)
    digits = middle.replace(" ", "").translate(str.maketrans("oOlI", "0011"))
    number_value = digits if re.fullmatch(r"\d{1,6}", digits) else None
    number_span = None
    if middle:
        m0 = text.index(middle, middle_span[0])
        number_span = (m0, m0 + len(middle))
    return NumberParse(
        number=number_value,
        year=notation_match.group("year"),
        notation=notation,
        span=(anchor.start() if anchor else notation_match.start(), notation_match.end()),
        number_span=number_span,
        notation_span=(n0, n1),
        corrected=corrected,
        number_text=middle,
        anchored=anchor is not None,
        number_in_blank=bool(middle) and bool(re.search(r"\s[/|]", folded[start:n0])),
    )


@dataclass(frozen=True)
class DateParse:
    place: str | None
    date: date | None  # None: day/month/year were not all read or do not make a date
    day_text: str  # as read ("" when lost; a scrawl such as "Ø3" when handwritten)
    month_text: str
    year_text: str
    span: tuple[int, int]
    place_span: tuple[int, int] | None
    leading_zero_ok: bool  # ND 30: day < 10 and months 1–2 are written with a leading 0

    @property
    def partial(self) -> str:
        """ISO-like value with ``??`` for the parts that were not read: ``2025-02-??``."""
        day = self.day_text if re.fullmatch(r"\d{1,2}", self.day_text) else "??"
        month = self.month_text if re.fullmatch(r"\d{1,2}", self.month_text) else "??"
        return f"{self.year_text}-{month.zfill(2)}-{day.zfill(2)}"


DIGIT_LOOKALIKES = str.maketrans("oOlI", "0011")

# "ngày … tháng … năm YYYY": day and month are often handwritten into printed gaps, so they
# may be lost or read as any short scrawl; "ngày" itself may be lost with a handwritten day.
_DATE_RE = re.compile(
    r"(?:(?P<place>[^\W\d_](?:[^\W\d_]|[ .\-])*?)\s*[,.]?\s*)?"
    r"(?:ng[aà]?[yw]?(?![a-km-np-z])(?P<day>[^\s]{0,3}(?:\s+[^\s]{1,3})??)\s*[,.]?\s*)?"
    r"th[aá]ng(?P<month>\s*[^\s]{0,3}?)\s*[,.]?\s*"
    r"n[aă]m\s*(?P<year>[0-9oOlI]{4})(?!\d)"
)


def parse_date_line(text: str) -> DateParse | None:
    """``Vĩnh Phúc, ngày 19 tháng 03 năm 2025`` → place and 2025-03-19, diacritics optional.
    ``Quảng Ngãi, tháng 02 năm 2025`` (handwritten day lost) → date None, day_text ""."""
    text = unicodedata.normalize("NFC", text)
    folded = fold(text)
    match = _DATE_RE.search(folded)
    if match is None:
        return None
    digits = str.maketrans("oOlI", "0011")

    def part(name: str) -> str:
        raw = (match.group(name) or "").strip(" ,.")
        as_digits = raw.translate(digits)
        if not raw or as_digits.isdigit():
            return as_digits
        return text[match.start(name) : match.end(name)].strip(" ,.")

    day_t, month_t, year_t = part("day"), part("month"), match.group("year").translate(digits)
    value: date | None = None
    if day_t.isdigit() and month_t.isdigit():
        try:
            value = date(int(year_t), int(month_t), int(day_t))
        except ValueError:
            value = None
    place = place_span = None
    if match.group("place"):
        p0, p1 = match.span("place")
        place = text[p0:p1].strip(" ,.-")
        place_span = (p0, p1)
        if not place:
            place = place_span = None
    zero_ok = (not day_t.isdigit() or int(day_t) >= 10 or len(day_t) == 2) and (
        not month_t.isdigit() or int(month_t) >= 3 or len(month_t) == 2
    )
    return DateParse(
        place=place,
        date=value,
        day_text=day_t,
        month_text=month_t,
        year_text=year_t,
        span=match.span(),
        place_span=place_span,
        leading_zero_ok=zero_ok,
    )


def match_doc_type(text: str, threshold: float = 0.8) -> tuple[str, float] | None:
    """The ND 30 document type a heading line names, with the match ratio."""
    if not is_caps(text) or len(text) > 40:
        return None
    best, best_ratio = None, 0.0
    for name in DOC_TYPES:
        ratio = similarity(text, name)
        if ratio > best_ratio:
            best, best_ratio = name, ratio
    if best is None or best_ratio < threshold:
        return None
    return best, best_ratio


def type_of_notation(notation: str) -> str | None:
    """Document type implied by a notation's first part (``KH-UBND`` → KẾ HOẠCH); None for a
    công văn notation (organ abbreviation first) or an unknown abbreviation."""
    abbreviation = valid_abbreviation(notation.split("-")[0])
    return ABBREVIATION_TYPES[abbreviation] if abbreviation else None
