"""What a person may enter for a field: one rule per kind of value, shared by the review page,
``--apply`` and the page's script (which gets the same patterns as data attributes).

* dates (``issued_date``, Art. 9 dates): ISO ``2025-02-05`` or ``05/02/2025`` (``5/2/2025``), a
  real calendar day; stored as ISO 8601 (requirements §7: IssuedDate is YYYY-MM-DD).
* ``code_number`` (số): digits only, at most 11 (§7 CodeNumber ≤ 11; §8 ``Số:\\s*(\\d+)``).
* ``code_year``: four digits (the year form ``09/2025/TT-BKHCN``, §8).
* ``code_notation`` (ký hiệu): §8 ``[A-ZĐ][A-Za-zĐđ0-9&\\-.]*``, at most 30 (§7), e.g.
  ``QĐ-STP``, ``TTr-UBND``, ``SGDĐT-CTrTT``.
* ``art9.owner_id``: a personal identification number is exactly 12 digits (R39); an
  organisation's electronic identifier (``owner_id_kind`` organisation) is kept as entered.
* Art. 9 template fields follow their kind in the paper-type catalogue: ``id`` 12 digits (a
  personal ID, R39), ``date`` a date, ``name`` a person's name (two to seven words of letters,
  as the extractor reads names), ``sex`` Nam/Nữ, ``year`` four digits, others text.
* text: not empty, NFC, no control characters (a line break only in ``recipients``), at most the
  length §7 gives the field (organ 200, subject 500, type 100, position 100, signer 50).

A value that breaks its rule raises ``InvalidReviewValueError`` naming the field and the rule,
so a wrong value never reaches a signed manifest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from digitize.errors import InvalidReviewValueError
from digitize.util import nfc


@dataclass(frozen=True)
class ValueRule:
    kind: str  # "date", "digits", "notation", "owner_id", "text", "multiline"
    pattern: str  # for the browser (HTML pattern attribute syntax, whole value)
    hint_vi: str
    hint_en: str
    max_length: int = 500

    def hint(self, lang: str) -> str:
        return self.hint_en if lang == "en" else self.hint_vi


DATE_PATTERN = r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4}"
NOTATION_PATTERN = r"[A-ZĐ][A-Za-zĐđ0-9&.\-]*"

DATE_RULE = ValueRule("date", DATE_PATTERN, "Ngày dạng 2025-02-05 hoặc 05/02/2025",
                      "A date as 2025-02-05 or 05/02/2025", 10)
RULES: dict[str, ValueRule] = {
    "issued_date": DATE_RULE,
    "code_number": ValueRule("digits", r"\d{1,11}", "Chỉ chữ số, tối đa 11 (ví dụ 05)",
                             "Digits only, at most 11 (e.g. 05)", 11),
    "code_year": ValueRule("digits", r"\d{4}", "Năm 4 chữ số", "A four-digit year", 4),
    "code_notation": ValueRule("notation", NOTATION_PATTERN,
                               "Ký hiệu như QĐ-STP: chữ hoa đầu, rồi chữ, số, - . &",
                               "A notation like QĐ-STP: capital first, then letters, digits, - . &",
                               30),
    "art9.owner_id": ValueRule("owner_id", r"\d{12}|.*\D.*",
                               "Số định danh cá nhân gồm đúng 12 chữ số",
                               "A personal identification number has exactly 12 digits", 64),
    "art9.issued_date": DATE_RULE,
    "art9.valid_until": DATE_RULE,
    "organ_name": ValueRule("text", "", "Không để trống", "Must not be empty", 200),
    "parent_organ": ValueRule("text", "", "Không để trống", "Must not be empty", 200),
    "subject": ValueRule("text", "", "Không để trống", "Must not be empty", 500),
    "type_name": ValueRule("text", "", "Không để trống", "Must not be empty", 100),
    "signer_position": ValueRule("text", "", "Không để trống", "Must not be empty", 100),
    "signer_full_name": ValueRule("text", "", "Không để trống", "Must not be empty", 50),
    "recipients": ValueRule("multiline", "", "Không để trống", "Must not be empty", 2000),
}
TEXT_RULE = ValueRule("text", "", "Không để trống", "Must not be empty", 500)
PERSONAL_ID_RULE = ValueRule("personal_id", r"\d{12}", "Số định danh cá nhân gồm đúng 12 chữ số",
                             "A personal identification number has exactly 12 digits", 12)
ORGANISATION_ID_RULE = ValueRule("text", "", "Mã định danh điện tử của tổ chức, không để trống",
                                 "The organisation's electronic identifier, not empty", 64)
NAME_RULE = ValueRule("name", r"[^\d\s]+(?: [^\d\s]+){1,6}",
                      "Họ và tên: 2 đến 7 chữ, không có chữ số",
                      "A full name: two to seven words, no digits", 100)
# By the kind of an Art. 9 template field (``FieldTemplate.kind`` in the catalogue).
KIND_RULES: dict[str, ValueRule] = {
    "id": PERSONAL_ID_RULE,
    "date": DATE_RULE,
    "name": NAME_RULE,
    "sex": ValueRule("sex", "Nam|Nữ|nam|nữ|NAM|NỮ", "Nam hoặc Nữ", "Nam (male) or Nữ (female)", 3),
    "year": ValueRule("digits", r"\d{4}", "Năm 4 chữ số", "A four-digit year", 4),
    "paragraph": ValueRule("text", "", "Không để trống", "Must not be empty", 2000),
    "organisation_id": ORGANISATION_ID_RULE,
    "personal_id": PERSONAL_ID_RULE,
}

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def rule_for(field: str, kind: str | None = None) -> ValueRule:
    """The rule of a field. ``kind`` (the catalogue kind of an Art. 9 template field, or
    ``personal_id``/``organisation_id`` for ``art9.owner_id``) wins when it has a rule;
    otherwise Art. 9 values whose key names a date are dates."""
    if kind is not None and kind in KIND_RULES:
        return KIND_RULES[kind]
    if field in RULES:
        return RULES[field]
    key = field.rsplit(".", 1)[-1]
    if field.startswith("art9.") and (key.endswith("date") or key in ("valid_until",
                                                                        "date_of_birth")):
        return DATE_RULE
    return TEXT_RULE


def parse_date(text: str) -> date | None:
    """ISO ``YYYY-MM-DD`` or Vietnamese ``dd/mm/yyyy``; None when it is neither or no real day."""
    iso = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text)
    dmy = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
    if iso:
        year, month, day = (int(g) for g in iso.groups())
    elif dmy:
        day, month, year = (int(g) for g in dmy.groups())
    else:
        return None
    if not 1800 <= year <= 2199:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def normalise_value(field: str, value: str, *, where: str | None = None,
                    kind: str | None = None) -> str:
    """The value as it will be stored, or ``InvalidReviewValueError`` naming the rule broken.

    ``where`` (e.g. the component file name) goes into the error's path; ``kind`` as in
    ``rule_for``.
    """
    rule = rule_for(field, kind)
    text = nfc(value).strip()
    if rule.kind != "multiline":
        text = re.sub(r"\s+", " ", text)
    else:
        text = "\n".join(line.strip() for line in text.replace("\r\n", "\n").split("\n")
                         if line.strip())

    def bad(why: str) -> InvalidReviewValueError:
        shown = text if len(text) <= 60 else text[:57] + "…"
        return InvalidReviewValueError(f"{field}: {shown!r} is not valid: {why}", path=where,
                                       hint=rule.hint_en)

    if not text:
        raise bad("empty")
    if _CONTROL.search(text):
        raise bad("control characters")
    if len(text) > rule.max_length:
        raise bad(f"longer than {rule.max_length} characters")
    if rule.kind == "date":
        parsed = parse_date(text)
        if parsed is None:
            raise bad("not a date (ISO 2025-02-05 or 05/02/2025)")
        return parsed.isoformat()
    if rule.pattern and not re.fullmatch(rule.pattern, text):
        raise bad("wrong format")
    if rule.kind == "name" and not all(w.replace("-", "").isalpha() for w in text.split()):
        raise bad("a name is words of letters")
    if rule.kind == "sex":
        return "Nam" if text.lower() == "nam" else "Nữ"
    return text
