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

from collections.abc import Sequence
from dataclasses import dataclass

from digitize.extract.catalogue import OTHER, Catalogue, load_catalogue
from digitize.extract.classify import Classification, classify
from digitize.extract.forms import PaperText
from digitize.extract.nd30 import extract_fields
from digitize.extract.owner_id import mrz_personal_id, soft_check
from digitize.extract.reader import (
    LIFTABLE,
    FieldReader,
    PaperContext,
    with_doubt_codes,
)
from digitize.extract.values import sentence_case
from digitize.manifest import Art9Block, Art9Value
from digitize.models import ExtractedField, Flag, PageOcr, make_flag
from digitize.settings import ExtractSettings, PaperType

__all__ = ["LIFTABLE", "PaperContext", "PaperExtraction", "extract_paper", "with_doubt_codes"]


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


class _Reader(FieldReader):
    """Builds the Art. 9 block from the fields read."""

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


def _capitalise(title: str) -> str:
    """A printed caps title in sentence case ("TỜ KHAI ĐĂNG KÝ KHAI SINH" → "Tờ khai đăng ký
    khai sinh")."""
    if title.isupper():
        lower = title.lower()
        return lower[:1].upper() + lower[1:]
    return title
