"""Value normalisers of the citizens' papers: one function per field kind, each returning the
normal form (ISO dates, 12-digit IDs, ``Nam``/``Nữ``) or None with the reason it failed.

They never repair a value by guessing: a date that is no calendar date, an ID with 11 digits, a
year outside the plausible range come back as None with a note, and the caller flags them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from digitize.extract.text import fold

# Letters OCR gives for digits inside a digit run (O/o → 0, l/I/| → 1); applied only to
# tokens that are already mostly digits.
_DIGIT_LIKE = str.maketrans({"O": "0", "o": "0", "D": "0", "l": "1", "I": "1", "|": "1"})
_DOTS = re.compile(r"(?:\.{2,}|…+|_{2,}|·{2,})")
_FOOTNOTE = re.compile(r"^\s*\(\s*\d{1,2}\s*\)\s*")
_DATE_NUMERIC = re.compile(r"(?<!\d)(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})(?!\d)")
_DATE_WORDS = re.compile(
    r"ng[aà]y\s*(\d{1,2})\s*[,.]?\s*th[aá]ng\s*(\d{1,2})\s*[,.]?\s*n[aă]m\s*(\d{4})", re.IGNORECASE
)


@dataclass(frozen=True)
class Normalised:
    value: str | None
    note: str | None = None  # why the value is None, or a doubt about it


def clean_text(raw: str) -> tuple[str, bool]:
    """Value text without footnote marks ``(2)``, dotted leaders and edge punctuation.
    Returns the text and whether dotted leaders were seen (a value written on a form's
    dotted line: filled in by hand, usually)."""
    text = unicodedata.normalize("NFC", raw)
    dotted = bool(_DOTS.search(text))
    text = _FOOTNOTE.sub("", text)
    if dotted:
        # On a dotted line single dots stick to the words as well ("..Số. 14 đường").
        text = re.sub(r"(?<!\d)\.(?!\d)", " ", _DOTS.sub(" ", text))
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"(\d)\s*m2\b", "\\1 m²", text)  # the raised 2 of m² reads as a plain 2
    text = text.strip(" .,;:-–—_|'\"`~•*")
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    elif text.endswith(")") and "(" not in text:
        text = text[:-1].rstrip()
    return text, dotted


def normalise_id(raw: str) -> Normalised:
    """The 12-digit personal ID in ``raw`` ("CCCD số 074083726096", digit boxes read as
    "0 7 4 0 …"). Exactly one run of 12 digits, else None (R39: 12 digits exactly)."""
    tokens = [t.translate(_DIGIT_LIKE) if _mostly_digits(t) else t for t in raw.split()]
    runs = re.findall(r"\d+", " ".join(tokens))
    joined = "".join(t for t in tokens if t.isdigit())
    candidates = [r for r in runs if len(r) == 12]
    if len(candidates) == 1:
        return Normalised(candidates[0])
    if not candidates and len(joined) == 12 and all(len(r) <= 4 for r in runs):
        return Normalised(joined, "digits read apart (digit boxes?)")
    if len(candidates) > 1:
        return Normalised(None, "several 12-digit numbers")
    longest = max((len(r) for r in runs), default=0)
    return Normalised(None, f"a 12-digit number was expected, read {longest} digits")


def _mostly_digits(token: str) -> bool:
    core = token.strip(".,;:")
    return len(core) >= 3 and sum(ch.isdigit() for ch in core) >= 0.7 * len(core)


def normalise_date(raw: str) -> Normalised:
    """``13/02/2025``, ``13.02.2025``, ``ngày 13 tháng 02 năm 2025`` → ``2025-02-13``."""
    text = unicodedata.normalize("NFC", raw)
    match = _DATE_NUMERIC.search(text) or _DATE_WORDS.search(fold(text))
    if match is None:
        return Normalised(None, "no date read")
    day, month, year = (int(g) for g in match.groups())
    try:
        value = date(year, month, day)
    except ValueError:
        return Normalised(None, f"not a calendar date: {match.group(0)}")
    if not 1900 <= value.year <= 2100:
        return Normalised(None, f"year {value.year} out of range")
    return Normalised(value.isoformat())


def normalise_year(raw: str) -> Normalised:
    match = re.search(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)", raw)
    if match is None:
        return Normalised(None, "no year read")
    return Normalised(match.group(1))


def normalise_sex(raw: str) -> Normalised:
    word = re.findall(r"[a-z]+", fold(raw))[:1]
    if word and word[0] in ("nam", "male", "m"):
        return Normalised("Nam")
    if word and word[0] in ("nu", "female", "f"):
        return Normalised("Nữ")
    return Normalised(None, f"sex not read: {raw!r}" if raw else "sex not read")


def normalise_name(raw: str) -> Normalised:
    """A person's name: two to seven words of letters."""
    words = raw.split()
    if not 2 <= len(words) <= 7 or not all(w.replace("-", "").isalpha() for w in words):
        return Normalised(None, f"not a name: {raw!r}" if raw else "name not read")
    return Normalised(" ".join(words))


def normalise_place(raw: str) -> Normalised:
    """The place before ``, ngày …`` on a place-and-date line."""
    folded = fold(raw)
    cut = re.search(r"[,.]?\s*ng[aà]?y\b", folded)
    place = raw[: cut.start()] if cut else raw
    place = place.strip(" ,.-")
    return Normalised(place or None, None if place else "place not read")


_LEVEL_WORDS = ("tỉnh", "thành phố", "huyện", "quận", "xã", "phường", "thị xã", "thị trấn")


def sentence_case(text: str) -> str:
    """``SỞ TÀI NGUYÊN VÀ MÔI TRƯỜNG TỈNH QUẢNG NAM`` → ``Sở tài nguyên và môi trường tỉnh
    Quảng Nam``: a caps organ name in running text, place names after a level word keep
    their capitals. Mixed-case text is returned unchanged."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters or sum(ch.isupper() for ch in letters) < 0.8 * len(letters):
        return text
    words = text.lower().split()
    out: list[str] = []
    capital = False  # inside a place name (after a level word)
    i = 0
    while i < len(words):
        pair = " ".join(words[i : i + 2])
        step = 2 if pair in _LEVEL_WORDS else 1 if words[i] in _LEVEL_WORDS else 0
        if step:
            out.extend(words[i : i + step])
            capital = True
            i += step
            continue
        out.append(words[i].capitalize() if capital or not out else words[i])
        i += 1
    return " ".join(out)


# The most common family names: a name whose first word folds to one of them but is spelled
# otherwise ("NGUYÊN" for "NGUYỄN") is more likely a misread diacritic than a rare name.
_COMMON_SURNAMES = (
    "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Đinh Trương Đoàn"
).split()
_SURNAME_BY_FOLD = {fold(name): name for name in _COMMON_SURNAMES}


def surname_doubt(name: str) -> str | None:
    first = name.split()[0] if name.split() else ""
    common = _SURNAME_BY_FOLD.get(fold(first))
    if common is None or first.lower() == common.lower():
        return None
    return f"family name reads {first!r}: {common!r} is far more common (misread diacritic?)"
