"""Finds the ND 30 header block of a page: the national motto, the ``Số:`` line in the left
column and the place-and-date line in the right one, scored by position so that received
stamps, references in the body and annex numbers lose."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from digitize.extract.lines import Line, lines_of, row_pieces
from digitize.extract.parsers import DateParse, NumberParse, parse_date_line, parse_number_line
from digitize.extract.text import similarity
from digitize.extract.vocab import MOTTO
from digitize.models import PageOcr
from digitize.settings import ExtractSettings


@dataclass
class Header:
    page: int
    lines: list[Line]
    width: int
    height: int
    motto: Line | None
    number: tuple[Line, NumberParse] | None
    date: tuple[Line, DateParse] | None
    split_x: float = 0.0  # x between the left (organ, number) and right (motto, date) columns

    @property
    def found(self) -> bool:
        return self.motto is not None or self.number is not None or self.date is not None


def _near_received_stamp(line: Line, lines: Sequence[Line]) -> bool:
    """A received stamp ("CÔNG VĂN ĐẾN", "ĐẾN Số: … Ngày: …") sits around its own "Số"."""
    reach = 3 * max(line.height, 1)
    for other in lines:
        if other is line:
            continue
        close = abs(other.bbox[1] - line.bbox[1]) <= reach and not (
            other.bbox[2] < line.bbox[0] - reach or other.bbox[0] > line.bbox[2] + reach
        )
        if close and re.search(r"\bden\b|\bchuyen\b", other.folded):
            return True
    return bool(re.search(r"\bden\b|ngay\s*:", line.folded))


def find_header(page: PageOcr, page_no: int, settings: ExtractSettings) -> Header:
    lines = lines_of(page, page_no, settings.phrase_match)
    width, height = page.width_px or 1, page.height_px or 1
    motto = None
    for line in lines:
        if line.bbox[1] < 0.5 * height and similarity(line.text, MOTTO) >= settings.phrase_match:
            motto = line
            break
    heights = sorted(line.height for line in lines) or [1]
    line_height = max(heights[len(heights) // 2], 1)
    # The motto column starts where the right header column starts; without it, mid-page.
    split_x = 0.5 * width
    if motto is not None and 0.25 * width < motto.bbox[0] < 0.6 * width:
        split_x = motto.bbox[0] - 0.02 * width

    def in_zone(line: Line) -> bool:
        # Number and date stand a few lines under the motto, never far below it.
        return motto is not None and (
            motto.bbox[1] - 2 * line_height <= line.bbox[1] <= motto.bbox[3] + 7 * line_height
        )

    pieces = row_pieces(lines, width, split_x)
    numbers: list[tuple[float, Line, NumberParse]] = []
    for line in pieces:
        parsed = parse_number_line(line.text)
        # The number line is short: "số 15/2020/TT-BGDĐT" inside a body line is a reference.
        if parsed is None or line.bbox[2] - line.bbox[0] > 0.55 * width:
            continue
        score = 2.0 if line.centre_x < split_x else -2.0  # the left header column
        if motto is not None:
            score += 2 if in_zone(line) else -3
        if _near_received_stamp(line, lines):
            score -= 4
        if parsed.number is None:
            score -= 0.5
        if not parsed.anchored:
            score -= 1
        score += 0.01 * len(line.words)  # the joined row over its pieces
        numbers.append((score, line, parsed))
    dates: list[tuple[float, Line, DateParse]] = []
    for line in pieces:
        parsed_date = parse_date_line(line.text)
        if parsed_date is None or line.bbox[2] - line.bbox[0] > 0.6 * width:
            continue
        if parsed_date.place is not None and len(parsed_date.place.split()) > 6:
            continue  # "Căn cứ Luật … ngày …": prose, not a place
        score = 1.0 if line.centre_x > split_x else -1.0
        if motto is not None:
            score += 2 if in_zone(line) else -3
        if parsed_date.date is not None:
            score += 1
        if parsed_date.place is not None:
            score += 0.5
        if _near_received_stamp(line, lines):
            score -= 4
        score += 0.01 * len(line.words)
        dates.append((score, line, parsed_date))
    best_number = max(numbers, key=lambda t: t[0], default=None)
    best_date = max(dates, key=lambda t: t[0], default=None)
    if best_number is not None and best_number[0] < 0:
        best_number = None
    if best_date is not None and best_date[0] < 0:
        best_date = None
    # Same row as the number is the strongest date evidence: prefer it when present.
    if best_number is not None:
        number_line = best_number[1]
        row = [
            t
            for t in dates
            if abs(t[1].bbox[1] - number_line.bbox[1]) < 1.5 * number_line.height
            and t[1].centre_x > split_x
        ]
        if row:
            best_date = max(row, key=lambda t: t[0])
    if motto is None and best_number is not None and best_date is None:
        # Away from a motto, a lone "Số: …" line is as likely a reference or an annex.
        best_number = None
    return Header(
        page=page_no,
        lines=lines,
        width=width,
        height=height,
        motto=motto,
        number=(best_number[1], best_number[2]) if best_number else None,
        date=(best_date[1], best_date[2]) if best_date else None,
        split_x=split_x,
    )
