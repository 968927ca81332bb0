"""The decisions of one review, as the page's form and ``--apply CORRECTIONS.json`` give them::

    {"fields": [
       {"file": "<component PDF name>", "field": "issued_date", "value": "2025-02-05"},
       {"file": "<component PDF name>", "field": "code_number", "confirm": true}],
     "pages": [{"file": "<component PDF name>", "page": 2, "decision": "accept"}],
     "documents": [{"file": "<component PDF name>", "decision": "accept"}]}

``field`` is the manifest's extraction field name (``issued_date``, ``code_number`` …) or an
Art. 9 value (``art9.owner_id``, ``art9.fields.<key>``). A field entry either gives a ``value``
(a correction) or ``"confirm": true``; a page decision is ``accept`` or ``rescan`` with a
``reason``. A document decision ``accept`` takes the component knowingly without a
digitisation-result code when only the configuration can give what is missing (``review.art9``);
its optional ``reason`` replaces the recorded default. Anything else is refused as a whole
before the bundle is touched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from digitize.errors import CorrectionsFileError
from digitize.models import FrozenModel

MAX_CORRECTIONS_BYTES = 4 * 1024 * 1024


class FieldCorrection(FrozenModel):
    file: str = Field(min_length=1, max_length=255)
    field: str = Field(min_length=1, max_length=200)
    value: str | None = Field(default=None, max_length=5000)
    confirm: bool = False

    @model_validator(mode="after")
    def _one_decision(self) -> FieldCorrection:
        if (self.value is None) == (not self.confirm):
            raise ValueError('give either "value" (a correction) or "confirm": true')
        return self


class PageCorrection(FrozenModel):
    file: str = Field(min_length=1, max_length=255)
    page: int = Field(ge=1)
    decision: Literal["accept", "rescan"]
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _reason_for_rescan(self) -> PageCorrection:
        if self.decision == "rescan" and not (self.reason or "").strip():
            raise ValueError('a "rescan" decision needs a "reason"')
        return self


class DocumentCorrection(FrozenModel):
    file: str = Field(min_length=1, max_length=255)
    decision: Literal["accept"]
    reason: str | None = Field(default=None, max_length=500)


class Corrections(FrozenModel):
    fields: tuple[FieldCorrection, ...] = ()
    pages: tuple[PageCorrection, ...] = ()
    documents: tuple[DocumentCorrection, ...] = ()

    @model_validator(mode="after")
    def _each_target_once(self) -> Corrections:
        seen_fields = [f"field {c.field} of {c.file}" for c in self.fields]
        seen_pages = [f"page {c.page} of {c.file}" for c in self.pages]
        seen_docs = [f"document {c.file}" for c in self.documents]
        for seen in (seen_fields, seen_pages, seen_docs):
            dupes = sorted({t for t in seen if seen.count(t) > 1})
            if dupes:
                raise ValueError(f"{dupes[0]} is given more than once")
        return self

    @property
    def empty(self) -> bool:
        return not self.fields and not self.pages and not self.documents


def parse_corrections(data: object, *, source: str | Path | None = None) -> Corrections:
    """Validate decoded JSON; ``CorrectionsFileError`` names the first problem and where."""
    try:
        corrections = Corrections.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "top level"
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise CorrectionsFileError(f"{where}: {message}", path=source) from None
    if corrections.empty:
        raise CorrectionsFileError("no field, page or document decision to apply", path=source)
    return corrections


def load_corrections(path: Path) -> Corrections:
    """Read a corrections file (UTF-8 JSON, at most 4 MB)."""
    try:
        size = path.stat().st_size
        if size > MAX_CORRECTIONS_BYTES:
            raise CorrectionsFileError(f"{size} bytes is too large for a corrections file",
                                       path=path)
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CorrectionsFileError(f"cannot read: {exc.strerror}", path=path) from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CorrectionsFileError(f"not valid UTF-8 JSON: {exc}", path=path) from None
    return parse_corrections(data, source=path)
