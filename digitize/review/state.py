"""What still needs a person in a bundle, before and after reviews.

A bundle needs review while any of these is open:

* a field read with doubt: an extraction entry (or an Art. 9 value) with ``needs_review``;
  a person's confirmation or correction clears it;
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

OPEN_SEVERITIES = (Severity.REVIEW, Severity.ERROR)


@dataclass(frozen=True)
class PageDecision:
    decision: Literal["accept", "rescan"]
    reason: str | None
    reviewer: str
    reviewed_at: str  # ISO 8601


@dataclass(frozen=True)
class OpenItem:
    kind: Literal["field", "flag", "rescan"]
    file: str | None  # component PDF (None: the dossier)
    page: int | None = None
    field: str | None = None
    flag: Flag | None = None
    reason: str | None = None


def page_decisions(manifest: Manifest) -> dict[tuple[str, int], PageDecision]:
    """The latest decision per (component file, page index), over all reviews in order."""
    decisions: dict[tuple[str, int], PageDecision] = {}
    for record in manifest.reviews:
        for change in record.changes:
            if change.action in ("accept", "rescan") and change.page is not None:
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
        for entry in doc.extraction:
            if entry.needs_review:
                items.append(OpenItem("field", file, entry.page, field=entry.field))
        for name, value in document_art9(doc):
            if value.get("needs_review"):
                items.append(OpenItem("field", file, value.get("page"), field=name))
        for page in doc.pages:
            decision = decisions.get((file, page.page_index))
            if decision is not None and decision.decision == "rescan":
                items.append(OpenItem("rescan", file, page.page_index, reason=decision.reason))
        for page in doc.pages:
            for flag in page.flags:
                if flag.severity in OPEN_SEVERITIES and page.page_index not in accepted:
                    items.append(OpenItem("flag", file, page.page_index, flag=flag))
        for flag in doc.flags:
            if flag.severity not in OPEN_SEVERITIES:
                continue
            resolved = flag.page in accepted if flag.page is not None else all_accepted
            if not resolved:
                items.append(OpenItem("flag", file, flag.page, flag=flag))
    for flag in manifest.flags:
        if flag.severity in OPEN_SEVERITIES and not every_page_accepted:
            items.append(OpenItem("flag", None, flag.page, flag=flag))
    return items


def needs_review(manifest: Manifest) -> bool:
    return bool(open_items(manifest))
