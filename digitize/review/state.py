"""What still needs a person in a bundle, before and after reviews.

A bundle needs review while any of these is open:

* a field read with doubt: an extraction entry (or an Art. 9 value) with ``needs_review``;
  a person's confirmation or correction clears it. Flags that only restate such a doubt
  (``field_review``, ``art9_review``, ``paper_type_review``) are not items of their own;
* a gap of the configuration (``review.art9``): a paper-type code the catalogue does not
  have, and a missing digitisation-result code (``result_code_missing``). Page decisions do
  not resolve them; a knowing acceptance of the document does, when nothing the page can fix
  (the owner's ID) is among the reasons;
* a flag of severity review/error that no page decision covers. A page flag (on the page, or
  on its component with that page number) is resolved when the page's latest decision is
  "accept"; a component flag without a page when every page of the component is accepted; a
  dossier flag when every page of the dossier is accepted (a person has then looked at all of
  it);
* a page whose latest decision is "rescan": it stays open with the person's reason until the
  paper is scanned again (a new bundle).

``Manifest.needs_review`` is recomputed from this list when a review is saved, so a dossier
whose doubts are all resolved no longer needs review and the report can say why one still does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from digitize.manifest import DocumentEntry, Manifest
from digitize.models import Flag, Severity
from digitize.review.art9 import (
    CATALOGUE_VALUES,
    VALUE_FLAGS,
    config_gaps,
    document_acceptances,
    fixable_gaps,
)

OPEN_SEVERITIES = (Severity.REVIEW, Severity.ERROR)


@dataclass(frozen=True)
class PageDecision:
    decision: Literal["accept", "rescan"]
    reason: str | None
    reviewer: str
    reviewed_at: str  # ISO 8601


@dataclass(frozen=True)
class OpenItem:
    kind: Literal["field", "flag", "rescan", "config"]
    file: str | None  # component PDF (None: the dossier)
    page: int | None = None
    field: str | None = None
    flag: Flag | None = None
    reason: str | None = None
    gaps: tuple[str, ...] = ()  # "config": what only the configuration can give


def page_decisions(manifest: Manifest) -> dict[tuple[str, int], PageDecision]:
    """The latest decision per (component file, page index), over all reviews in order."""
    decisions: dict[tuple[str, int], PageDecision] = {}
    for record in manifest.reviews:
        for change in record.changes:
            if change.action in ("accept", "rescan") and change.page is not None and \
                    change.field is None:
                decisions[(change.file, change.page)] = PageDecision(
                    decision=change.action,  # type: ignore[arg-type]
                    reason=change.reason,
                    reviewer=record.reviewer.full_name,
                    reviewed_at=record.reviewed_at.isoformat(),
                )
    return decisions


def art9_values(art9: Any) -> list[tuple[str, dict[str, Any]]]:
    """The values of a document's Art. 9 block as ``("art9.<key>", value dict)`` pairs,
    template fields as ``art9.fields.<key>``. Read generically: any key whose value is a dict
    with a ``value`` is a value (the block's own model may grow keys)."""
    if art9 is None:
        return []
    data = art9.model_dump(mode="json") if hasattr(art9, "model_dump") else art9
    if not isinstance(data, dict):
        return []
    out: list[tuple[str, dict[str, Any]]] = []
    for key, item in data.items():
        if isinstance(item, dict) and "value" in item:
            out.append((f"art9.{key}", item))
        elif key == "fields" and isinstance(item, dict):
            out.extend((f"art9.fields.{sub}", val) for sub, val in item.items()
                       if isinstance(val, dict) and "value" in val)
    return out


def document_art9(doc: DocumentEntry) -> list[tuple[str, dict[str, Any]]]:
    return art9_values(getattr(doc, "art9", None))


def open_items(manifest: Manifest) -> list[OpenItem]:
    """Everything that still needs a person, in dossier order (see the module docstring)."""
    decisions = page_decisions(manifest)
    accepted_docs = document_acceptances(manifest)
    items: list[OpenItem] = []
    every_page_accepted = bool(decisions)  # no review yet: nobody has looked
    for doc in manifest.documents:
        if doc.file is None:
            continue
        file = doc.file
        accepted = {p.page_index for p in doc.pages
                    if (d := decisions.get((file, p.page_index))) and d.decision == "accept"}
        all_accepted = bool(doc.pages) and len(accepted) == len(doc.pages)
        every_page_accepted = every_page_accepted and all_accepted
        # a knowing acceptance holds while nothing the page can fix keeps the code missing
        knowingly = file in accepted_docs and not fixable_gaps(doc)
        for entry in doc.extraction:
            if entry.needs_review:
                items.append(OpenItem("field", file, entry.page, field=entry.field))
        for name, value in document_art9(doc):
            if value.get("needs_review") and name not in CATALOGUE_VALUES:
                items.append(OpenItem("field", file, value.get("page"), field=name))
        gaps = config_gaps(doc)
        code_flag = any(f.code == "result_code_missing" for f in doc.flags)
        if gaps and not knowingly and not (code_flag and fixable_gaps(doc)):
            # (with the owner's ID missing too, the result_code_missing flag names it all)
            items.append(OpenItem("config", file, gaps=tuple(gaps)))
        for page in doc.pages:
            decision = decisions.get((file, page.page_index))
            if decision is not None and decision.decision == "rescan":
                items.append(OpenItem("rescan", file, page.page_index, reason=decision.reason))
        for page in doc.pages:
            for flag in page.flags:
                if flag.severity in OPEN_SEVERITIES and page.page_index not in accepted:
                    items.append(OpenItem("flag", file, page.page_index, flag=flag))
        for flag in doc.flags:
            if flag.severity not in OPEN_SEVERITIES or flag.code in VALUE_FLAGS:
                continue
            if flag.code == "result_code_missing":
                if not knowingly and not (gaps and not fixable_gaps(doc)):
                    items.append(OpenItem("flag", file, flag.page, flag=flag))
                continue  # a configuration-only gap is the "config" item above
            resolved = flag.page in accepted if flag.page is not None else all_accepted
            if not resolved:
                items.append(OpenItem("flag", file, flag.page, flag=flag))
    for flag in manifest.flags:
        if flag.severity in OPEN_SEVERITIES and not every_page_accepted:
            items.append(OpenItem("flag", None, flag.page, flag=flag))
    return items


def needs_review(manifest: Manifest) -> bool:
    return bool(open_items(manifest))
