"""The Art. 9 block at review: what a person may change, what follows from the change, and
what only the office's configuration can give (TT 01/2023 Art. 7 step 3, Art. 9; R36-R39).

Rules (the contract ``save``, ``state``, ``check``, the page and the report share):

* **Values a person settles.** Every Art. 9 value read from the paper (or declared in
  ``dossier.yaml``) may be confirmed or corrected; a corrected value becomes
  ``source: "manual"`` with ``entered_by`` (the reviewer's name from the signing certificate),
  and the review record keeps the machine reading (``reviews[].changes[].machine_value``).
* **Values of the configuration.** ``paper_type_code`` and ``owner_id_kind`` come from the
  profile's paper-type catalogue (``source: "catalogue"``): they are no review target. A paper
  type without a code is a gap of the configuration (``extract.catalogue.codes``), never
  filled in by hand: codes come from the TTHC catalogue (R38).
* **What follows.** After a review touches a document's Art. 9 values, the extract package's
  own functions recompute what depends on them: the block's ``needs_review``
  (``with_doubt_codes``), the ``art9_review`` flag (``art9_flag``, or none), the
  ``paper_type_review`` flag (dropped once the paper type's name is settled), and the
  digitisation-result code (``result_code_parts`` + the profile's template, running number
  the smallest one free in the bundle) or its ``result_code_missing`` flag naming what is
  missing.
* **Flags that restate a doubtful value** (``field_review``, ``art9_review``,
  ``paper_type_review``) are resolved by settling the value: they are never open items of
  their own (the values are).
* **Accepting a document knowingly.** ``result_code_missing`` is not resolved by accepting
  pages. When all that is missing is configuration (the paper-type code, the dossier's
  procedure code), the reviewer may accept the document without a result code: the review
  record keeps that decision (``action: "accept"`` with no page and no field, and a reason
  saying what was accepted), the document no longer keeps the dossier open, its flag stays in
  the manifest and ``digitize verify`` lists the acceptance. While the owner's ID is not settled
  (a thing the page can fix), no such acceptance is taken.
* **Values read from the header.** Art. 9 values the catalogue fills from the ND 30 header
  (``header.issued_date`` …) follow a person's decision on those header fields in the same
  review (``header_followers``), each as a change of its own in the review record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from digitize.extract.dossier import (
    DossierFacts,
    art9_flag,
    build_result_code,
    missing_parts_in,
    missing_result_code_parts,
    result_code_flag,
    result_code_parts,
)
from digitize.extract.reader import with_doubt_codes
from digitize.manifest import Art9Value, DocumentEntry, Manifest, ReviewChange

if TYPE_CHECKING:
    from digitize.extract.catalogue import Catalogue

# Values the profile's catalogue gives: not review targets.
CATALOGUE_VALUES = frozenset({"art9.paper_type_code", "art9.owner_id_kind"})
# Flags that only say a value is doubtful: the value is the open item.
VALUE_FLAGS = frozenset({"field_review", "art9_review", "paper_type_review"})
# Parts of a result code only the configuration or the intake can give.
CONFIG_PARTS = frozenset({"paper_type_code", "procedure_code", "dossier_code", "ordinal"})
DERIVED_FLAGS = ("art9_review", "result_code_missing")

# Plain words for what is missing (Vietnamese, English).
GAP_TEXT: dict[str, tuple[str, str]] = {
    "paper_type_code": ("chưa cấu hình mã loại giấy tờ (extract.catalogue.codes)",
                        "no paper-type code configured (extract.catalogue.codes)"),
    "procedure_code": ("hồ sơ không có mã thủ tục hành chính (procedure_code trong dossier.yaml)",
                       "the dossier has no procedure code (procedure_code in dossier.yaml)"),
    "owner_id": ("số định danh của chủ sở hữu chưa được nhập hoặc xác nhận",
                 "the owner's identifier is not entered or confirmed"),
    "dossier_code": ("không có mã hồ sơ", "no dossier code"),
    "ordinal": ("không có số thứ tự", "no ordinal"),
}
ACCEPT_REASON = "accepted without a digitisation-result code"


def gap_text(part: str, lang: str) -> str:
    vi, en = GAP_TEXT.get(part, (part, part))
    return en if lang == "en" else vi


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    from digitize.extract.catalogue import load_catalogue
    from digitize.settings import CatalogueSettings

    return load_catalogue(CatalogueSettings())


def value_kind(doc: DocumentEntry, field: str, catalogue: Catalogue | None = None) -> str | None:
    """The kind of value an Art. 9 field holds, for its format rule (``values.rule_for``):
    ``personal_id``/``organisation_id`` for the owner, the catalogue kind of a template field."""
    block = doc.art9
    if block is None or not field.startswith("art9."):
        return None
    if field == "art9.owner_id":
        return "organisation_id" if block.owner_id_kind.value == "organisation" else "personal_id"
    if field.startswith("art9.fields."):
        paper_type = (catalogue or default_catalogue()).get(block.paper_type_key)
        name = field.removeprefix("art9.fields.")
        for template in paper_type.fields if paper_type else ():
            if template.name == name:
                return template.kind
    return None


def missing_code_parts(doc: DocumentEntry) -> list[str] | None:
    """What the document's ``result_code_missing`` flag says is missing (None: no flag)."""
    flag = next((f for f in doc.flags if f.code == "result_code_missing"), None)
    return None if flag is None else missing_parts_in(flag)


def config_gaps(doc: DocumentEntry) -> list[str]:
    """What only the configuration or the intake can give this document: its paper-type code
    when the catalogue has none, and the configuration parts its result code misses."""
    gaps: list[str] = []
    block = doc.art9
    if block is not None and block.paper_type_code.value is None and \
            block.paper_type_code.needs_review:
        gaps.append("paper_type_code")
    for part in missing_code_parts(doc) or ():
        if part in CONFIG_PARTS and part not in gaps:
            gaps.append(part)
    return gaps


def fixable_gaps(doc: DocumentEntry) -> list[str]:
    """What the result code misses that a person can settle on the page (the owner's ID)."""
    return [p for p in missing_code_parts(doc) or () if p not in CONFIG_PARTS]


@dataclass(frozen=True)
class DocumentAcceptance:
    change: ReviewChange
    reviewer: str
    reviewed_at: datetime


def document_acceptances(manifest: Manifest) -> dict[str, DocumentAcceptance]:
    """The latest knowing acceptance per component file (a change ``accept`` with no page and
    no field), over every review in order."""
    found: dict[str, DocumentAcceptance] = {}
    for record in manifest.reviews:
        for change in record.changes:
            if is_document_acceptance(change):
                found[change.file] = DocumentAcceptance(change, record.reviewer.full_name,
                                                        record.reviewed_at)
    return found


def is_document_acceptance(change: ReviewChange) -> bool:
    return change.action == "accept" and change.page is None and change.field is None


def accepted_reason(gaps: Iterable[str]) -> str:
    """The reason recorded with a knowing acceptance (English, like the flags' messages)."""
    parts = [GAP_TEXT[g][1] for g in gaps if g in GAP_TEXT]
    return ACCEPT_REASON + (": " + "; ".join(parts) if parts else "")


# --- after a review ------------------------------------------------------------------------
def recompute(manifest: Manifest, files: set[str], template: str) -> Manifest:
    """The manifest with what depends on the Art. 9 values of ``files`` recomputed (module
    docstring): block ``needs_review``, the ``art9_review``/``paper_type_review``/
    ``result_code_missing`` flags and the result code. Other documents are left as they are."""
    if not files:
        return manifest
    facts = DossierFacts(manifest.dossier_code, manifest.procedure_code)
    documents = list(manifest.documents)
    for index, doc in enumerate(documents):
        if doc.file not in files or doc.art9 is None:
            continue
        block = with_doubt_codes(doc.art9)
        flags = [f for f in doc.flags if f.code not in DERIVED_FLAGS]
        if not block.paper_type_name.needs_review:
            flags = [f for f in flags if f.code != "paper_type_review"]
        if block.needs_review:
            flags.append(art9_flag(block))
        parts = result_code_parts(block, doc.doc_ordinal, facts)
        missing = missing_result_code_parts(template, parts)
        code = doc.digitization_result_code
        if missing:
            flags.append(result_code_flag(missing))
        else:
            taken = {d.digitization_result_code for i, d in enumerate(documents)
                     if i != index and d.digitization_result_code}
            code = _code_for(template, parts, code, taken)
        documents[index] = doc.model_copy(update={"art9": block, "flags": tuple(flags),
                                                  "digitization_result_code": code})
    return manifest.model_copy(update={"documents": tuple(documents)})


def _code_for(template: str, parts: dict[str, object], current: str | None,
              taken: set[str]) -> str | None:
    """The document's code from ``parts``: its current one when these parts make it (with
    some running number) and no other document has it, else the one with the smallest
    running number no other document of the bundle uses."""
    candidates = [build_result_code(template, {**parts, "n": n}) for n in range(1, len(taken) + 2)]
    if current is not None and current in candidates and current not in taken:
        return current
    return next((c for c in candidates if c not in taken), candidates[-1])


# --- Art. 9 values read from the ND 30 header ------------------------------------------------
_HEADER_KEYS = ("number_notation", "issued_date", "issuing_body", "summary", "valid_until",
                "validity_scope", "paper_name")


def header_followers(doc: DocumentEntry, header: list[ReviewChange], explicit: set[str],
                     catalogue: Catalogue | None = None) -> list[ReviewChange]:
    """The Art. 9 values the catalogue fills from header fields (``header.issued_date`` …)
    that follow a person's decisions on those header fields in the same review: an Art. 9
    value the review does not decide itself takes the settled header value, as a change of
    its own in the review record (a corrected header value makes it a person's value).
    Values whose header fields are not all settled are left for the person."""
    block = doc.art9
    if block is None or not header:
        return []
    paper_type = (catalogue or default_catalogue()).get(block.paper_type_key)
    if paper_type is None:
        return []
    decided = {c.field: c for c in header if c.field}
    entries = {e.field: (decided[e.field].value if e.field in decided else e.value,
                         e.needs_review and e.field not in decided) for e in doc.extraction}
    follows: list[ReviewChange] = []
    for key in _HEADER_KEYS:
        source = getattr(paper_type.art9, key, None)
        name = f"art9.{key}"
        if not source or not source.startswith("header.") or name in explicit:
            continue
        header_name = source.removeprefix("header.")
        used = ("code_number", "code_year", "code_notation") \
            if header_name == "number_notation" else (header_name,)
        if not any(u in decided for u in used) or any(entries.get(u, (None, False))[1]
                                                      for u in used):
            continue
        value = _header_value(header_name, entries)
        current: Art9Value = getattr(block, key)
        if value is None or (value == current.value and not current.needs_review):
            continue
        action = "confirm" if value == current.value else "correct"
        follows.append(ReviewChange(
            file=doc.file or "", action=action, field=name,
            machine_value=current.value if current.source == "ocr" else None,
            previous_value=current.value, value=value))
    return follows


def _header_value(name: str, entries: dict[str, tuple[str | None, bool]]) -> str | None:
    """An Art. 9 value from header values as the extractor builds it (``FieldReader``)."""
    from digitize.extract.values import sentence_case

    def value(field: str) -> str | None:
        return entries.get(field, (None, False))[0]

    if name == "number_notation":
        notation, number = value("code_notation"), value("code_number")
        if not notation or not number:
            return None
        year = value("code_year")
        return "/".join([number, *([year] if year else []), notation])
    found = value(name)
    if found is None:
        return None
    if name in ("organ_name", "type_name"):
        return sentence_case(found)
    if name == "issued_date" and not re.fullmatch(r"\d{4}-\d\d-\d\d", found):
        return None
    return found
