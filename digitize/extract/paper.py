"""``extract_paper``: the pipeline's one extraction call per component, after signing (R1).

It reads the ND 30 header (as ``extract_fields`` always did), classifies the paper against the
catalogue (or takes the type the clerk declared in ``dossier.yaml``), reads the type's field
template and fills the Art. 9 block (TT 01/2023 Art. 9 k2, R36-R39). Every value carries page,
box, confidence and source; a value that should be there and was not read is None and flagged;
a value read from a handwritten area or with weak confidence is flagged unless a second,
independent reading confirms it (the card's machine-readable zone here, another paper of the
dossier in ``digitize.extract.dossier``). Never a guess presented as read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from digitize.extract.catalogue import OTHER, Catalogue, load_catalogue
from digitize.extract.classify import Classification, classify
from digitize.extract.forms import (
    PaperText,
    RawValue,
    read_choice,
    read_column,
    read_labelled,
    read_pattern,
    read_signature,
)
from digitize.extract.nd30 import extract_fields
from digitize.extract.owner_id import mrz_personal_id, soft_check
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
from digitize.models import ExtractedField, Flag, PageOcr, make_flag
from digitize.settings import ExtractSettings, FieldTemplate, PaperType

# Doubts a second reading can lift (the dossier pass); the others stay for a person.
LIFTABLE = frozenset({"handwritten", "low_confidence", "single_reading"})


@dataclass(frozen=True)
class PaperContext:
    """What the pipeline knows of the component besides its pages."""

    declared_type: str | None = None  # dossier.yaml ``paper_type`` (the clerk's word)
    hand_words: tuple[frozenset[int], ...] = ()  # per page: indexes of words in hand ink


@dataclass
class PaperExtraction:
    """The header fields (ND 30 layout) and the Art. 9 block of one paper, and the document
    flags they raise."""

    header: tuple[ExtractedField, ...]
    art9: Art9Block
    id_fields: tuple[str, ...] = ()  # template fields holding personal IDs
    flags: tuple[Flag, ...] = ()


def extract_paper(
    pages: Sequence[PageOcr],
    settings: ExtractSettings | None = None,
    catalogue: Catalogue | None = None,
    context: PaperContext | None = None,
) -> PaperExtraction:
    """Header fields and the Art. 9 block of one component from its pages' OCR."""
    settings = settings or ExtractSettings()
    catalogue = catalogue or load_catalogue(settings.catalogue)
    context = context or PaperContext()
    header = extract_fields(pages, settings) if pages else ()
    text = PaperText(pages)
    found = classify(text, header, catalogue, settings.catalogue)
    paper_type, type_value, type_note = _settle_type(found, catalogue, context)
    reader = _Reader(text, paper_type, header, settings, context)
    values = {t.name: reader.read(t) for t in paper_type.fields}
    block = reader.block(found, type_value, values)
    flags: list[Flag] = []
    if type_note:
        flags.append(make_flag("paper_type_review", type_note))
    if block.needs_review:
        keys = [k for k, v in block.values().items() if v.needs_review]
        keys += [f"fields.{k}" for k, v in block.fields.items() if v.needs_review]
        flags.append(make_flag("art9_review", "Art. 9 values to check: " + ", ".join(keys)))
    return PaperExtraction(
        header=header,
        art9=block,
        id_fields=tuple(t.name for t in paper_type.fields if t.kind == "id"),
        flags=tuple(flags),
    )


def _settle_type(
    found: Classification, catalogue: Catalogue, context: PaperContext
) -> tuple[PaperType, Art9Value, str | None]:
    """The paper's type: the clerk's declaration wins (a disagreement with what the page
    shows is flagged); otherwise the classification, ``other`` flagged."""
    declared = context.declared_type
    if declared is not None:
        paper_type = catalogue.get(declared)
        if paper_type is None:
            unknown = f"dossier.yaml paper_type {declared!r} is not in the catalogue"
            return catalogue.other, _type_value(catalogue.other, found, unknown), unknown
        note: str | None = None
        if found.key not in (declared, OTHER) and found.confidence >= 0.9:
            note = f"declared {declared}, but the page reads as {found.key}"
        value = Art9Value(
            value=paper_type.key,
            confidence=1.0,
            source="dossier.yaml",
            needs_review=note is not None,
            note=note,
        )
        return paper_type, value, note
    paper_type = catalogue.get(found.key) or catalogue.other
    if found.key == OTHER:
        note = "paper type not recognised" + (f" ({found.note})" if found.note else "")
        return paper_type, _type_value(paper_type, found, note), note
    return paper_type, _type_value(paper_type, found, None), None


def _type_value(paper_type: PaperType, found: Classification, note: str | None) -> Art9Value:
    return Art9Value(
        value=paper_type.key,
        page=found.page,
        bbox=found.bbox,
        confidence=found.confidence,
        needs_review=note is not None,
        note=note,
    )


class _Reader:
    """Reads one paper's template fields and builds its Art. 9 block."""

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
            bbox=_union([w.bbox for w in words]),
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
                bbox=_union([b for b in (number.bbox if number else None, notation.bbox) if b]),
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

    # --- the block ---------------------------------------------------------------------------
    def block(
        self, found: Classification, type_value: Art9Value, values: dict[str, Art9Value]
    ) -> Art9Block:
        paper_type = self.type
        source = type_value.source
        code = Art9Value(
            value=paper_type.code,
            confidence=1.0 if paper_type.code else 0.0,
            source="catalogue",
            needs_review=paper_type.code is None,
            note=None
            if paper_type.code
            else f"no code configured for {paper_type.key} (extract.catalogue.codes)",
        )
        name = type_value.model_copy(update={"value": paper_type.name, "source": source})
        art9 = paper_type.art9
        date_of_birth = values.get(art9.date_of_birth or "")
        owner = self._owner(values, date_of_birth.value if date_of_birth else None)
        kind = Art9Value(value=paper_type.owner_kind, confidence=1.0, source="catalogue")
        mapped = {
            key: self._mapped(getattr(art9, key), values)
            for key in (
                "number_notation",
                "issued_date",
                "issuing_body",
                "summary",
                "valid_until",
                "validity_scope",
            )
        }
        fields = {
            name_: value
            for name_, value in values.items()
            if not self.templates[name_].internal
            and (value.value is not None or value.needs_review or value.note == "left empty")
            and not self._replaced(name_, values)
        }
        block = Art9Block(
            paper_type_key=paper_type.key,
            classification_confidence=found.confidence,
            paper_type_code=code,
            paper_type_name=name,
            owner_id=owner,
            owner_id_kind=kind,
            paper_name=self._paper_name(found),
            fields=fields,
            **mapped,
        )
        return with_doubt_codes(block)

    def _replaced(self, name: str, values: dict[str, Art9Value]) -> bool:
        """A field this paper's layout does not print: its alternative was read instead."""
        if values[name].value is not None:
            return False
        other = self.templates[name].instead_of
        if other is None:
            other = next((t.name for t in self.templates.values() if t.instead_of == name), None)
        return other is not None and other in values and values[other].value is not None

    def _mapped(self, source: str | None, values: dict[str, Art9Value]) -> Art9Value:
        if self.type.key == OTHER:
            return Art9Value(value=None, needs_review=True, note="paper not recognised")
        if source is None:
            return Art9Value(value=None, confidence=1.0, note="not on this paper type")
        if source.startswith("header."):
            return self._from_header(source.removeprefix("header."))
        return values.get(source) or Art9Value(value=None, needs_review=True, note="not read")

    def _owner(self, values: dict[str, Art9Value], date_of_birth: str | None) -> Art9Value:
        paper_type = self.type
        source = paper_type.art9.owner_id
        if paper_type.owner_kind == "organisation":
            return Art9Value(
                value=None,
                needs_review=True,
                note="the organisation's electronic ID is not printed on the paper: "
                "enter it at review",
            )
        if source is None:
            return Art9Value(
                value=None, needs_review=True, note="no owner ID on a paper of unknown type"
            )
        value = values.get(source) or Art9Value(value=None, needs_review=True, note="not read")
        doubts = set(self.doubts.get(f"fields.{source}", set()))
        notes = [value.note] if value.note else []
        if value.value is not None:
            doubt = soft_check(value.value, date_of_birth)
            if doubt:
                doubts.add("soft_check")
                notes.append(f"R39 soft check: {doubt}")
            mrz = mrz_personal_id([line.text for line in self.text.lines])
            if mrz is not None and mrz == value.value:
                doubts -= LIFTABLE
                notes.append("confirmed by the machine-readable zone")
            elif mrz is not None:
                doubts.add("conflict")
                notes.append("the machine-readable zone reads another number")
        else:
            doubts.add("unread")
        self.doubts["owner_id"] = doubts
        return value.model_copy(
            update={
                "needs_review": bool(doubts),
                "note": "; ".join(notes) or None,
                "doubts": tuple(sorted(doubts)),
            }
        )

    def _paper_name(self, found: Classification) -> Art9Value:
        paper_type = self.type
        if paper_type.recognition.layout == "nd30" and paper_type.recognition.fallback:
            heading = self.header.get("type_name")
            if heading is None:
                return Art9Value(value=None, needs_review=True, note="type heading not read")
            return Art9Value(
                value=sentence_case(heading.value),
                page=heading.page,
                bbox=heading.bbox,
                confidence=heading.confidence,
                needs_review=heading.needs_review,
                note=heading.note,
            )
        names = paper_type.recognition.names or paper_type.recognition.titles
        if found.key == paper_type.key and found.title_phrase in names:
            sure = found.title_ratio >= 0.95
            return Art9Value(
                value=_capitalise(found.title_phrase or ""),
                page=found.page,
                bbox=found.bbox,
                confidence=found.title_ratio,
                needs_review=not sure,
                note=None if sure else "title read in part",
            )
        if paper_type.key == OTHER:
            return Art9Value(value=None, needs_review=True, note="paper not recognised")
        return Art9Value(
            value=paper_type.name,
            source="catalogue",
            needs_review=True,
            note="title not read: the type's name from the catalogue",
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


def _capitalise(title: str) -> str:
    """A printed caps title in sentence case ("TỜ KHAI ĐĂNG KÝ KHAI SINH" → "Tờ khai đăng ký
    khai sinh")."""
    if title.isupper():
        lower = title.lower()
        return lower[:1].upper() + lower[1:]
    return title


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int] | None:
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
