"""Collects extracted fields: a value under the confidence floor, with low-confidence words or
with words that are no Vietnamese syllable is flagged for review, never trusted."""

from __future__ import annotations

from collections.abc import Sequence

from digitize.extract.lines import Line, min_word_confidence, union_box
from digitize.extract.text import fold, strip_marks
from digitize.extract.vietnamese import EDGE_PUNCT, misread_words, restore_with_known
from digitize.models import BBox, ExtractedField, Word
from digitize.settings import ExtractSettings


class FieldCollector:
    """Collects fields; a field under the confidence floor is flagged for review."""

    def __init__(self, settings: ExtractSettings):
        self.settings = settings
        self.items: dict[str, ExtractedField] = {}

    def add(
        self,
        name: str,
        value: str,
        page: int,
        words: Sequence[Word],
        *,
        confidence: float | None = None,
        review: bool = False,
        note: str | None = None,
        bbox: BBox | None = None,
    ) -> None:
        conf = min_word_confidence(words) if confidence is None else confidence
        notes = [note] if note else []
        if conf < self.settings.min_confidence:
            review = True
            notes.append(f"low OCR confidence {conf:.2f}")
        self.items[name] = ExtractedField(
            name=name,
            value=value,
            page=page,
            bbox=bbox or union_box([w.bbox for w in words]),
            confidence=round(max(0.0, min(1.0, conf)), 3),
            needs_review=review,
            note="; ".join(notes) or None,
        )

    def flag(self, name: str, note: str) -> None:
        item = self.items.get(name)
        if item is None:
            return
        joined = f"{item.note}; {note}" if item.note else note
        self.items[name] = item.model_copy(update={"needs_review": True, "note": joined})


def text_field(
    out: FieldCollector,
    name: str,
    lines: Sequence[Line],
    page: int,
    *,
    restore: bool = False,
    confidence: float | None = None,
    note: str | None = None,
    review: bool = False,
) -> None:
    """A field made of printed text lines: flagged when a word was read with low confidence
    or is no Vietnamese syllable (a lost or changed diacritic); known administrative names
    get their diacritics back first (a word so restored is trusted)."""
    settings = out.settings
    texts: list[str] = []
    weak: list[Word] = []
    restored_any = False
    for line in lines:
        text, known = strip_marks(line.text), set[str]()
        if restore:
            text, restored, known = restore_with_known(text)
            restored_any |= restored
        texts.append(text)
        for word in line.words:
            if word.confidence / 100 < settings.min_text_word_confidence:
                if fold(word.text.strip(EDGE_PUNCT)) not in known:
                    weak.append(word)
    value = " ".join(t for t in texts if t)
    notes = [note] if note else []
    if restored_any:
        notes.append("diacritics restored from the administrative-name list")
    if weak:
        review = True
        notes.append("low-confidence words: " + ", ".join(repr(w.text) for w in weak[:4]))
    bad = misread_words(value) if settings.check_syllables else []
    if bad:
        review = True
        notes.append("not Vietnamese syllables (misread?): " + ", ".join(bad[:4]))
    words = [w for line in lines for w in line.words]
    conf = confidence
    if conf is None:
        conf = sum(w.confidence for w in words) / len(words) / 100 if words else 0.0
    out.add(name, value, page, words, confidence=conf, review=review, note="; ".join(notes) or None)
