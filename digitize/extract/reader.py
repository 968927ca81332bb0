"""Reading one template field of a paper: where the value is (label, column, closing block,
pattern, closed list, ND 30 header), its normal form by kind, and the doubts that keep it from
being trusted (unread, handwritten, low confidence, misread, layout, single reading)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from digitize.extract.forms import PaperText, RawValue, read_labelled
from digitize.extract.regions import read_choice, read_column, read_pattern, read_signature
from digitize.extract.text import fold
from digitize.extract.values import (
    Normalised,
    clean_text,
    normalise_date,
    normalise_id,
    normalise_name,
    normalise_place,
    normalise_sex,
    normalise_year,
    sentence_case,
    surname_doubt,
)
from digitize.extract.vietnamese import misread_words
from digitize.manifest import Art9Block, Art9Value
from digitize.models import ExtractedField
from digitize.settings import ExtractSettings, FieldTemplate, PaperType

# Doubts a second reading can lift (the dossier pass); the others stay for a person.
LIFTABLE = frozenset({"handwritten", "low_confidence", "single_reading"})


@dataclass(frozen=True)
class PaperContext:
    """What the pipeline knows of the component besides its pages."""

    declared_type: str | None = None  # dossier.yaml ``paper_type`` (the clerk's word)
    hand_words: tuple[frozenset[int], ...] = ()  # per page: indexes of words in hand ink


class FieldReader:
    """Reads one paper's template fields: raw value, normal form, doubts."""

    def __init__(
        self,
        text: PaperText,
        paper_type: PaperType,
        header: tuple[ExtractedField, ...],
        settings: ExtractSettings,
        context: PaperContext,
    ):
        self.text = text
        self.type = paper_type
        self.header = {f.name: f for f in header}
        self.settings = settings
        self.context = context
        self.labels = [lb for t in paper_type.fields for lb in t.labels]
        self.doubts: dict[str, set[str]] = {}
        self.templates = {t.name: t for t in paper_type.fields}

    # --- one field -------------------------------------------------------------------------
    def read(self, template: FieldTemplate) -> Art9Value:
        if template.from_header:
            return self._from_header(template.from_header)
        if template.choices:
            raw, ratio = read_choice(self.text, template.choices)
            if raw.text:
                return Art9Value(
                    value=raw.text,
                    confidence=round(ratio, 3),
                    needs_review=ratio < 0.9,
                    note=None if ratio >= 0.9 else "printed name matched loosely",
                )
            return self._missing(template, "not found on the paper")
        if template.region == "signature":
            raw = read_signature(self.text, template)
        elif template.column:
            raw = read_column(self.text, template, self.labels)
        elif template.labels:
            raw = read_labelled(self.text, template, self.labels)
            if not raw.label_found and template.kind in ("date", "place"):
                raw = read_signature(self.text, template)  # the label itself was not read
            unread = not clean_text(raw.text)[0] or (
                template.kind == "id" and not normalise_id(raw.text).value
            )
            if template.pattern and unread:
                by_pattern = read_pattern(self.text, template.pattern)
                if by_pattern.text:
                    raw = by_pattern
        elif template.pattern:
            raw = read_pattern(self.text, template.pattern)
        else:
            return self._missing(template, "no way to read it in the catalogue")
        return self._judge(template, raw)

    def _missing(self, template: FieldTemplate, note: str) -> Art9Value:
        return Art9Value(
            value=None, needs_review=template.key or self._is_art9(template), note=note
        )

    def _judge(self, template: FieldTemplate, raw: RawValue) -> Art9Value:
        if not raw.label_found and not raw.text:
            return self._missing(template, "label not found")
        text, dotted = clean_text(raw.text)
        dotted = dotted or raw.dotted
        result = self._normalise(template, text, raw)
        words = raw.words
        confidence = min((w.confidence for w in words), default=0.0) / 100
        hand = dotted or self._in_hand_ink(raw)
        doubts: set[str] = set()
        notes: list[str] = []
        if result.value is None:
            if not text and not template.key and not dotted and not self._is_art9(template):
                return Art9Value(value=None, page=raw.page, note="left empty")
            if template.kind == "date" and "khong thoi han" in fold(text):
                return Art9Value(
                    value=None, page=raw.page, confidence=confidence, note="no time limit"
                )
            doubts.add("unread")
            notes.append(result.note or "not read")
        elif result.note:
            notes.append(result.note)
        if hand:
            doubts.add("handwritten")
            notes.append("handwritten")
        floor = self.settings.min_value_confidence
        if result.value is not None and confidence < floor:
            doubts.add("low_confidence")
            notes.append(f"read with confidence {confidence:.2f}")
        if result.value is not None and template.kind in ("text", "name", "place", "paragraph"):
            bad = misread_words(result.value) if self.settings.check_syllables else []
            if bad:
                doubts.add("misread")
                notes.append("not Vietnamese syllables: " + ", ".join(bad[:3]))
        if result.value is not None and raw.below and template.kind in ("text", "name", "place"):
            doubts.add("layout")
            notes.append("read from the line under the label, or may go on there")
        if result.value is not None and template.kind == "name":
            doubt = surname_doubt(result.value)
            if doubt:
                doubts.add("misread")
                notes.append(doubt)
        if result.value is not None and template.kind == "id":
            if confidence < self.settings.min_id_confidence and not hand:
                doubts.add("single_reading")
                notes.append("digits not read surely enough to trust one reading")
        self.doubts[f"fields.{template.name}"] = doubts
        if result.value is None and not doubts:
            doubts.add("unread")
        return Art9Value(
            value=result.value,
            page=raw.page,
            bbox=union_box([w.bbox for w in words]),
            confidence=round(confidence, 3),
            needs_review=bool(doubts),
            handwritten=hand,
            note="; ".join(notes) or None,
            doubts=tuple(sorted(doubts)),
        )

    def _is_art9(self, template: FieldTemplate) -> bool:
        return template.name in self.type.art9.model_dump().values()

    def _normalise(self, template: FieldTemplate, text: str, raw: RawValue) -> Normalised:
        kind = template.kind
        if kind == "id":
            return normalise_id(text)
        if kind == "date":
            if raw.parsed_date is not None and raw.parsed_date.date is not None:
                return Normalised(raw.parsed_date.date.isoformat())
            return normalise_date(text)
        if kind == "year":
            return normalise_year(text)
        if kind == "sex":
            return normalise_sex(text)
        if kind == "name":
            return normalise_name(text)
        if kind == "place":
            if raw.parsed_date is not None and raw.parsed_date.place:
                return Normalised(clean_text(raw.parsed_date.place)[0] or None)
            return normalise_place(text)
        return Normalised(text or None, None if text else "not read")

    def _in_hand_ink(self, raw: RawValue) -> bool:
        if raw.page is None or raw.page > len(self.context.hand_words):
            return False
        hand = self.context.hand_words[raw.page - 1]
        if not hand or not raw.words:
            return False
        page = self.text.pages[raw.page - 1]
        index = {id(w): i for i, w in enumerate(page.words)}
        marked = sum(1 for w in raw.words if index.get(id(w)) in hand)
        return marked >= 0.5 * len(raw.words)

    def _from_header(self, name: str) -> Art9Value:
        if name == "number_notation":
            notation = self.header.get("code_notation")
            number = self.header.get("code_number")
            if notation is None:
                return Art9Value(value=None, needs_review=True, note="number not read")
            parts = [number.value if number and number.value else "?"]
            year = self.header.get("code_year")
            if year is not None:
                parts.append(year.value)
            value = "/".join([*parts, notation.value])
            review = (
                notation.needs_review or number is None or number.needs_review or not number.value
            )
            return Art9Value(
                value=None if "?" in parts else value,
                page=notation.page,
                bbox=union_box([b for b in (number.bbox if number else None, notation.bbox) if b]),
                confidence=min(notation.confidence, number.confidence if number else 0.0),
                needs_review=review,
                note="; ".join(n for n in ((number.note if number else None), notation.note) if n)
                or None,
            )
        found = self.header.get(name)
        if found is None:
            return Art9Value(value=None, needs_review=True, note=f"header {name} not read")
        value = found.value
        if name in ("organ_name", "type_name"):
            value = sentence_case(value)
        if name == "issued_date" and not re.fullmatch(r"\d{4}-\d\d-\d\d", value):
            return Art9Value(
                value=None,
                page=found.page,
                bbox=found.bbox,
                needs_review=True,
                note=found.note or "date not read",
            )
        return Art9Value(
            value=value,
            page=found.page,
            bbox=found.bbox,
            confidence=found.confidence,
            needs_review=found.needs_review,
            note=found.note,
        )


_DEFAULT_DOUBT = {
    "paper_type_code": "no_code",
    "paper_type_name": "unrecognised",
    "paper_name": "unrecognised",
}


def with_doubt_codes(block: Art9Block) -> Art9Block:
    """Every flagged value names at least one doubt code, and the block's ``needs_review``
    says whether any value is flagged."""
    updates: dict[str, object] = {}
    for key, value in block.values().items():
        if value.needs_review and not value.doubts:
            code = _DEFAULT_DOUBT.get(key, "unread" if value.value is None else "low_confidence")
            if key == "owner_id" and block.owner_id_kind.value == "organisation":
                code = "not_printed"
            updates[key] = value.model_copy(update={"doubts": (code,)})
    fields = {
        name: value.model_copy(
            update={"doubts": ("unread" if value.value is None else "low_confidence",)}
        )
        if value.needs_review and not value.doubts
        else value
        for name, value in block.fields.items()
    }
    block = block.model_copy(update={**updates, "fields": fields})
    review = any(v.needs_review for v in block.values().values()) or any(
        v.needs_review for v in block.fields.values()
    )
    return block.model_copy(update={"needs_review": review})


def union_box(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int] | None:
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
