"""Which catalogue type a paper is, from its printed title and the phrases only that type
carries, with a confidence; unknown or ambiguous → ``other`` with the reason (R37: a paper-type
code is never guessed silently)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from digitize.extract.catalogue import OTHER, Catalogue
from digitize.extract.forms import PaperText
from digitize.extract.text import fold
from digitize.models import ExtractedField
from digitize.settings import CatalogueSettings, PaperType


@dataclass(frozen=True)
class Classification:
    key: str
    confidence: float
    page: int | None = None
    bbox: tuple[int, int, int, int] | None = None
    title: str | None = None  # the title line as read
    title_phrase: str | None = None  # the catalogue's title phrase it matched
    title_ratio: float = 0.0
    note: str | None = None  # why it is "other", or the runner-up


def _title_score(paper_type: PaperType, text: PaperText) -> tuple[float, int | None, str | None]:
    """Best ratio of a title phrase against a heading line (or two consecutive lines: long
    titles wrap) in the upper half of the first page (or of any page)."""
    best, where, phrase = 0.0, None, None
    pages = {1} if paper_type.recognition.pages == "first" else set(range(1, len(text.pages) + 1))
    candidates = []
    for index, line in enumerate(text.lines):
        page_height = text.pages[line.page - 1].height_px or 1
        if line.page in pages and line.bbox[1] < 0.55 * page_height:
            candidates.append(index)
    titles = [(fold(t), t) for t in paper_type.recognition.titles]
    for index in candidates:
        folded = text.folded[index].strip(" '\"_.:-")
        joined = folded
        if index + 1 < len(text.lines) and text.lines[index + 1].page == text.lines[index].page:
            joined = folded + " " + text.folded[index + 1].strip(" '\"_.:-")
        for title, printed in titles:
            for candidate in (folded, joined):
                if abs(len(candidate) - len(title)) > max(4, 0.25 * len(title)):
                    continue
                ratio = fuzz.ratio(candidate, title) / 100
                if ratio > best:
                    best, where, phrase = ratio, index, printed
    return best, where, phrase


def _cue_count(paper_type: PaperType, joined: str, raw: str) -> int:
    """How many of the type's cues the paper carries: phrases matched without diacritics
    (fuzzily when long), or ``re:`` regular expressions on the text as read."""
    count = 0
    for cue in paper_type.recognition.cues:
        if cue.startswith("re:"):
            count += bool(re.search(cue[3:], raw))
            continue
        folded = fold(cue)
        if folded in joined or (len(folded) >= 8 and fuzz.partial_ratio(folded, joined) >= 82):
            count += 1
    return count


def _nd30_score(header: tuple[ExtractedField, ...]) -> float:
    names = {f.name for f in header}
    score = 0.0
    if "code_notation" in names:
        score += 0.45
    if "issued_date" in names:
        score += 0.2
    if "organ_name" in names:
        score += 0.2
    if "type_name" in names:
        score += 0.15
    return score


def classify(
    text: PaperText,
    header: tuple[ExtractedField, ...],
    catalogue: Catalogue,
    settings: CatalogueSettings,
) -> Classification:
    """Score every type: a title that matches (ratio ≥ 0.8) gives up to 0.7 and the type's
    cues the rest; without a title, three or more cues (0.25 each) can still reach the floor (an ID card
    copy whose title was lost). Fallback types (the ND 30 layout) count only when no other
    type reaches the floor."""
    joined = " ".join(text.folded)
    raw = "\n".join(line.text for line in text.lines)
    scores: list[tuple[float, PaperType, int | None, str | None]] = []
    ratios: dict[str, float] = {}
    for paper_type in catalogue.types:
        if paper_type.recognition.fallback:
            continue
        title, where, phrase = _title_score(paper_type, text)
        cues = _cue_count(paper_type, joined, raw)
        cue_share = min(1.0, cues / 3) if paper_type.recognition.cues else 1.0
        if title >= 0.8:
            score = 0.7 * title + 0.3 * cue_share
        else:
            score, where, phrase = min(0.8, 0.25 * cues), None, None
        ratios[paper_type.key] = title
        scores.append((score, paper_type, where, phrase))
    scores.sort(key=lambda item: -item[0])
    floor = settings.min_confidence
    if scores and scores[0][0] >= floor:
        best, paper_type, where, phrase = scores[0]
        runner = scores[1] if len(scores) > 1 else None
        if runner is not None and best - runner[0] < settings.min_margin:
            return Classification(
                OTHER,
                round(best, 3),
                note=f"ambiguous: {paper_type.key} ({best:.2f}) or {runner[1].key} "
                f"({runner[0]:.2f})",
            )
        line = text.lines[where] if where is not None else None
        return Classification(
            paper_type.key,
            round(min(best, 1.0), 3),
            page=line.page if line else None,
            bbox=line.bbox if line else None,
            title=line.text if line else None,
            title_phrase=phrase,
            title_ratio=ratios.get(paper_type.key, 0.0),
        )
    for paper_type in catalogue.types:
        if paper_type.recognition.fallback and paper_type.recognition.layout == "nd30":
            score = _nd30_score(header)
            if score >= floor:
                return Classification(paper_type.key, round(score, 3))
    best_note = f"best guess {scores[0][1].key} ({scores[0][0]:.2f})" if scores else "empty"
    return Classification(OTHER, round(scores[0][0], 3) if scores else 0.0, note=best_note)
