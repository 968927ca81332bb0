"""Text helpers of the extractor: diacritic-free folding (one output character per input
character, so positions carry over), fuzzy similarity, edge clean-up, all-caps test."""

from __future__ import annotations

import re
import unicodedata

from rapidfuzz.distance import Indel


def fold(text: str) -> str:
    """Lower case without diacritics, one output character per NFC input character (so
    match positions in the folded text are positions in the original)."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in "đĐ":
            out.append("d")
            continue
        base = unicodedata.normalize("NFD", ch)[0]
        out.append(base.lower() if len(base.lower()) == 1 else base)
    return "".join(out)


def similarity(a: str, b: str) -> float:
    """Fuzzy ratio of two strings compared without diacritics, case and spacing: the
    normalised indel similarity 2·LCS/(len a + len b), computed by rapidfuzz (fast enough to
    run on every OCR line of a page)."""
    a2, b2 = re.sub(r"\s+", " ", fold(a)).strip(), re.sub(r"\s+", " ", fold(b)).strip()
    if not a2 or not b2:
        return 0.0
    return float(Indel.normalized_similarity(a2, b2))


def strip_marks(text: str) -> str:
    """Drop rule-line and speck readings ("_", "—", "|") around a value; a line-end comma is
    part of a name that continues on the next line, so it stays."""
    return text.strip().lstrip("_-–—|~.,;:'\"`").rstrip("_–—|~'\"`").strip()


def is_caps(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(ch.isupper() for ch in letters) >= 0.8 * len(letters)
