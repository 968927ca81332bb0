"""Fixed vocabulary of ND 30/2020 documents: the document types of Phụ lục III with their
abbreviations, the national motto, organ level words, signer-block prefixes."""

from __future__ import annotations

import re

from digitize.extract.text import fold

# --- document types (ND 30/2020 PL III) ----------------------------------------------------
DOC_TYPES: dict[str, tuple[str, ...]] = {
    "NGHỊ QUYẾT": ("NQ",),
    "QUYẾT ĐỊNH": ("QĐ",),
    "CHỈ THỊ": ("CT",),
    "QUY CHẾ": ("QC",),
    "QUY ĐỊNH": ("QyĐ",),
    "THÔNG CÁO": ("TC",),
    "THÔNG BÁO": ("TB",),
    "HƯỚNG DẪN": ("HD",),
    "CHƯƠNG TRÌNH": ("CTr",),
    "KẾ HOẠCH": ("KH",),
    "PHƯƠNG ÁN": ("PA",),
    "ĐỀ ÁN": ("ĐA",),
    "DỰ ÁN": ("DA",),
    "BÁO CÁO": ("BC",),
    "BIÊN BẢN": ("BB",),
    "TỜ TRÌNH": ("TTr",),
    "HỢP ĐỒNG": ("HĐ",),
    "CÔNG ĐIỆN": ("CĐ",),
    "BẢN GHI NHỚ": ("GN",),
    "BẢN THỎA THUẬN": ("TTh",),
    "GIẤY ỦY QUYỀN": ("GUQ",),
    "GIẤY MỜI": ("GM",),
    "GIẤY GIỚI THIỆU": ("GGT",),
    "GIẤY NGHỈ PHÉP": ("GNP",),
    "PHIẾU GỬI": ("PG",),
    "PHIẾU CHUYỂN": ("PC",),
    "PHIẾU BÁO": ("PB",),
    "THÔNG TƯ": ("TT",),
    "THÔNG TƯ LIÊN TỊCH": ("TTLT",),
    "NGHỊ ĐỊNH": ("NĐ",),
    "VĂN BẢN HỢP NHẤT": ("VBHN",),
}
CONG_VAN = "CÔNG VĂN"
ABBREVIATION_TYPES = {a: t for t, abbrs in DOC_TYPES.items() for a in abbrs}
# Folded abbreviation → its valid spellings. OCR often drops the bar of Đ or a diacritic; a
# spelling is repaired only when exactly one valid abbreviation folds to it (QD → QĐ, but
# HD stays HD: it is HƯỚNG DẪN, and HĐ is HỢP ĐỒNG).
_ABBREVIATION_SPELLINGS: dict[str, set[str]] = {}
for _abbrs in DOC_TYPES.values():
    for _a in _abbrs:
        _ABBREVIATION_SPELLINGS.setdefault(fold(_a), set()).add(_a)


def valid_abbreviation(text: str) -> str | None:
    if text in ABBREVIATION_TYPES:
        return text
    spellings = _ABBREVIATION_SPELLINGS.get(fold(text), set())
    return next(iter(spellings)) if len(spellings) == 1 else None


MOTTO = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO_2 = "Độc lập - Tự do - Hạnh phúc"
LEVEL_WORDS = ("tinh", "thanh pho", "huyen", "quan", "xa", "phuong", "thi xa", "thi tran")
SIGNER_PREFIX = re.compile(r"^\s*(tm|kt|q|tl|tuq)\s*[.,:]", re.IGNORECASE)
BODY_START = re.compile(r"^\s*(can cu|kinh gui|dieu \d|muc \d|chuong [ivx\d]|phan [ivx\d])")


VBHN = "VĂN BẢN HỢP NHẤT"
