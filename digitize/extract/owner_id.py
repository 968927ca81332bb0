"""The owner's personal ID number (R39): exactly 12 digits; the older layout ``PPP G YY
RRRRRR`` (province of birth registration, century and sex, year of birth) is used only for a
soft consistency check, never to reject. The machine-readable zone of an ID card (ICAO 9303
TD1) carries the number a second time, with check digits: a second, independent reading."""

from __future__ import annotations

import re

# Province and city codes of the older layout (001 Hà Nội … 096 Cà Mau): the 63 provinces'
# administrative codes as they were before the 2025 merger.
PROVINCE_CODES = frozenset(
    """001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031 033 034
    035 036 037 038 040 042 044 045 046 048 049 051 052 054 056 058 060 062 064 066 067 068 070
    072 074 075 077 079 080 082 083 084 086 087 089 091 092 093 094 095 096""".split()
)


def soft_check(personal_id: str, date_of_birth: str | None = None) -> str | None:
    """Why ``personal_id`` does not fit the older layout (or the date of birth read on the same
    paper), or None when it fits. A doubt for a person to look at, never a rejection."""
    if not re.fullmatch(r"\d{12}", personal_id):
        return "not 12 digits"
    if personal_id[:3] not in PROVINCE_CODES:
        return f"first three digits {personal_id[:3]} are no province code"
    if date_of_birth and re.match(r"\d{4}-", date_of_birth):
        year = int(date_of_birth[:4])
        century = int(personal_id[3]) // 2  # 0/1: 1900s, 2/3: 2000s, …
        if 1900 + 100 * century != year // 100 * 100 or personal_id[4:6] != f"{year % 100:02d}":
            return "century/sex and year digits do not match the date of birth on the paper"
    return None


def _check_digit(data: str) -> int:
    total = 0
    for i, ch in enumerate(data):
        if ch.isdigit():
            value = int(ch)
        elif ch.isalpha():
            value = ord(ch.upper()) - 55
        else:
            value = 0
        total += value * (7, 3, 1)[i % 3]
    return total % 10


_MRZ_LINE1 = re.compile(r"[I1l]?[D0O]VNM([0-9OQDIl]{9})([0-9OQDIl])([0-9OQDIl]{12})")


def mrz_personal_id(lines: list[str]) -> str | None:
    """The 12-digit number in the first line of an ID card's machine-readable zone, when the
    document number's check digit holds and the document number is the ID's last nine digits
    (as on Vietnamese cards): then it is a verified second reading."""
    digits = str.maketrans("OQDIl", "00011")
    for line in lines:
        compact = re.sub(r"\s+", "", line)
        match = _MRZ_LINE1.search(compact)
        if match is None:
            continue
        document, check, personal_id = (g.translate(digits) for g in match.groups())
        if not (document.isdigit() and check.isdigit() and personal_id.isdigit()):
            continue
        if _check_digit(document) == int(check) and document == personal_id[3:]:
            return personal_id
    return None
