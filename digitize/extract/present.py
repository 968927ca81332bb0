"""The Art. 9 block as consoles, logs and summaries show it: personal ID numbers and dates of
birth masked (``0012••••5678``, ``1990-••-••``). The manifest keeps them in full (the law needs
them); only the report and the review page show them unmasked."""

from __future__ import annotations

import re
from typing import Any

from digitize.manifest import Art9Block
from digitize.util import mask_date, mask_id

_ID = re.compile(r"\d{12}")
_BIRTH_DATE = re.compile(r"(^|_)(dob|date_of_birth|birth_date)($|_)")


def masked_art9(block: Art9Block) -> dict[str, Any]:
    """``block`` as JSON data with every 12-digit number and every date of birth masked."""
    data = block.model_dump(mode="json")
    for key in Art9Block.ART9_KEYS:
        _mask_value(key, data[key])
    for name, value in data["fields"].items():
        _mask_value(name, value)
    return data


def _mask_value(name: str, value: dict[str, Any]) -> None:
    text = value.get("value")
    if not isinstance(text, str):
        return
    if _BIRTH_DATE.search(name):
        value["value"] = mask_date(text)
    elif _ID.search(text):
        value["value"] = _ID.sub(lambda m: mask_id(m.group(0)), text)


def art9_lines(block: Art9Block) -> list[str]:
    """One line per Art. 9 value and field for a console (masked), ``(review)`` where flagged."""
    data = masked_art9(block)
    lines = [f"paper type: {block.paper_type_key} ({block.classification_confidence:.2f})"]
    for key in Art9Block.ART9_KEYS:
        lines.append(_line(key, data[key]))
    for name, value in data["fields"].items():
        lines.append(_line(f"  {name}", value))
    return lines


def _line(name: str, value: dict[str, Any]) -> str:
    shown = value["value"] if value["value"] is not None else "—"
    mark = " (review)" if value["needs_review"] else ""
    return f"{name}: {shown}{mark}"


def mask_ids_in(text: str | None) -> str | None:
    """Every 12-digit number in ``text`` masked (a result code starts with the owner's ID)."""
    return _ID.sub(lambda m: mask_id(m.group(0)), text) if text else text


def masked_documents(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Manifest document entries (JSON data) for a console: Art. 9 blocks and result codes
    masked, everything else as it is."""
    out = []
    for entry in documents:
        entry = dict(entry)
        if entry.get("art9"):
            entry["art9"] = masked_art9(Art9Block.model_validate(entry["art9"]))
        entry["digitization_result_code"] = mask_ids_in(entry.get("digitization_result_code"))
        out.append(entry)
    return out
