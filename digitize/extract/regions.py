"""Values read by their place on the paper rather than after a label: table cells under a
column heading, the closing block (place and date of signing, issuing organ, signer), patterns
printed without a label, and closed lists of printed values."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rapidfuzz import fuzz

from digitize.extract.forms import PaperText, RawValue, undot
from digitize.extract.lines import Line
from digitize.extract.parsers import DateParse, parse_date_line
from digitize.extract.text import fold, is_caps
from digitize.settings import FieldTemplate

_SIGNER_PREFIX = re.compile(r"^\W*(tm|kt|q|tl|tuq)\s*[.,:]\s*", re.IGNORECASE)
_POSITION_WORDS = re.compile(r"\b(chu tich|giam doc|truong|pho|thu truong|chanh|cuc truong)\b")


# --- table columns ---------------------------------------------------------------------------
def read_column(text: PaperText, template: FieldTemplate, labels: Sequence[str]) -> RawValue:
    """A table cell: the row is the band from this label to the next row label in the first
    column; the column is the band under the heading ``template.column``."""
    assert template.column is not None
    heads = _column_heads(text)
    head = heads.get(fold(template.column))
    if head is None:
        return RawValue("", label_found=False)
    page = text.lines[head].page
    head_line = text.lines[head]
    centres = sorted(
        (text.lines[i].centre_x, key) for key, i in heads.items() if text.lines[i].page == page
    )
    first_x = min(text.lines[i].bbox[0] for i in heads.values() if text.lines[i].page == page)
    mine = {fold(lb).strip() for lb in template.labels}
    all_labels = {fold(lb).strip() for lb in labels}
    row_starts: list[tuple[int, str]] = []
    for index, line in enumerate(text.lines):
        if line.page != page or line.bbox[1] <= head_line.bbox[1] or line.centre_x >= first_x:
            continue
        folded = text.folded[index].strip(" :;(0123456789)")
        label = max(all_labels, key=lambda lb: fuzz.partial_ratio(lb, folded) if folded else 0)
        if folded and fuzz.partial_ratio(label, folded) >= 88 and len(folded) >= 0.5 * len(label):
            row_starts.append((line.bbox[1], label))
    row_starts.sort()
    for k, (top, label) in enumerate(row_starts):
        if label not in mine:
            continue
        bottom = row_starts[k + 1][0] if k + 1 < len(row_starts) else top + 4 * text.line_height
        position = [c for _, c in centres].index(fold(template.column))
        xs = [x for x, _ in centres]
        left = (xs[position - 1] + xs[position]) / 2 if position else first_x
        right = (xs[position] + xs[position + 1]) / 2 if position + 1 < len(xs) else 1e9
        words = [
            w
            for w in text.pages[page - 1].words
            if top - 0.3 * text.line_height
            <= (w.bbox[1] + w.bbox[3]) / 2
            < bottom - 0.3 * text.line_height
            and left <= (w.bbox[0] + w.bbox[2]) / 2 < right
        ]
        words.sort(key=lambda w: (round(w.bbox[1] / text.line_height), w.bbox[0]))
        raw = " ".join(w.text for w in words)
        return RawValue(raw, words, page, bool(re.search(r"\.{2,}|…", raw)))
    return RawValue("", label_found=False)


def _column_heads(text: PaperText) -> dict[str, int]:
    heads: dict[str, int] = {}
    for index, folded in enumerate(text.folded):
        core = folded.strip(" :;.")
        if len(core.split()) <= 3 and core.startswith("ben "):
            heads.setdefault(core, index)
    return heads


# --- the closing block -----------------------------------------------------------------------
def closing_date_line(text: PaperText) -> tuple[int, DateParse] | None:
    """The last place-and-date line of the paper ("Quảng Nam, ngày 17 tháng 10 năm 2024")."""
    found = None
    for index, line in enumerate(text.lines):
        parsed = parse_date_line(undot(line.text))
        if parsed is not None and (parsed.place is not None or "ngay" in text.folded[index]):
            if len((parsed.place or "").split()) <= 6:
                found = (index, parsed)
    return found


def read_signature(text: PaperText, template: FieldTemplate) -> RawValue:
    """Closing block values: the place or date of signing, the signer's name (the last name
    line under the signature), the issuing organ (caps lines over the signer's position)."""
    closing = closing_date_line(text)
    if template.kind in ("date", "place"):
        if closing is None:
            return RawValue("", label_found=False)
        index, parsed = closing
        line = text.lines[index]
        return RawValue(
            line.text,
            line.words,
            line.page,
            bool(re.search(r"\.{2,}", line.text)),
            parsed_date=parsed,
        )
    start = closing[0] + 1 if closing else max(0, len(text.lines) - 12)
    block = text.lines[start:]
    if template.kind == "name":
        names = [
            ln
            for ln in block
            if 2 <= len(ln.text.split()) <= 6
            and not is_caps(ln.text)
            and all(w[:1].isupper() for w in ln.text.split())
            and all(w.isalpha() for w in ln.text.split())
        ]
        if not names:
            return RawValue("", label_found=False)
        return RawValue(names[-1].text, names[-1].words, names[-1].page)
    organ: list[Line] = []
    for ln in block:
        folded = fold(ln.text)
        if not is_caps(ln.text) or "(" in ln.text:
            if organ:
                break
            continue
        if organ and (_SIGNER_PREFIX.match(folded) and not folded.lstrip(" .").startswith("tm")):
            break
        if _POSITION_WORDS.search(folded) and not organ:
            break
        organ.append(ln)
    if not organ:
        return RawValue("", label_found=False)
    joined = " ".join(_SIGNER_PREFIX.sub("", ln.text).strip() for ln in organ)
    return RawValue(joined, [w for ln in organ for w in ln.words], organ[0].page)


# --- patterns and closed lists -------------------------------------------------------------
def read_pattern(text: PaperText, pattern: str) -> RawValue:
    regex = re.compile(pattern)
    for line in text.lines:
        match = regex.search(line.text)
        if match:
            group = "value" if "value" in regex.groupindex else 0
            return RawValue(match.group(group), line.words_in(match.span(group)), line.page)
    return RawValue("", label_found=False)


def read_choice(text: PaperText, choices: Sequence[str]) -> tuple[RawValue, float]:
    """The printed value among ``choices`` that the paper carries, matched over joined
    lines (a name printed over two lines), with the match ratio 0..1."""
    joined = " ".join(text.folded)
    best, best_score = None, 0.0
    for choice in choices:
        alignment = fuzz.partial_ratio_alignment(fold(choice), joined, score_cutoff=80)
        if alignment is not None and alignment.score > best_score:
            best, best_score = choice, alignment.score
    if best is None:
        return RawValue("", label_found=False), 0.0
    return RawValue(best), best_score / 100
