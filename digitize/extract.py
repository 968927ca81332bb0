"""Header-field extraction for documents in the ND 30/2020 administrative layout
(requirements §8; issue 5 item 4, issue 10 item 3).

Reads the OCR lines and word boxes of a component's pages: the left header column (organ,
``Số:``), the right one (national motto, place and date), the centred type heading and
trích yếu, the signature block and ``Nơi nhận`` on the last page. Anchors are matched without
diacritics and with fuzzy matching, so OCR slips (``S6:``, ``ngay``) do not lose a field.

Every value carries its page, box and a confidence; a value that looks handwritten (low word
confidence), disagrees with another field (notation vs type heading) or is missing a part is
flagged for review: a flagged field is better than a confident wrong one.

Real scans (issue 10) add: a number or day written by hand into the typed template's blank
("Số:    /UBND-X", "ngày    tháng 02") is read as a scrawl, lost, or run into its neighbours, so
number and date lines are parsed from the pieces of one printed row and tolerate gaps (the
value is then flagged, e.g. ``2025-02-??``); a number set apart from its slash or digits taller
than the printed year mark handwriting; number and date must sit in the header zone under the
motto, in short lines (a "số …" reference in the body is no header); words that are no
Vietnamese syllable or were read with low confidence flag organ and trích yếu, and known
administrative names (organ types, ministries, provinces) get lost diacritics back.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from difflib import SequenceMatcher

from digitize.models import BBox, ExtractedField, PageOcr, Word
from digitize.settings import ExtractSettings


# --- text helpers --------------------------------------------------------------------------
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
    """Fuzzy ratio of two strings compared without diacritics, case and spacing."""
    a2, b2 = re.sub(r"\s+", " ", fold(a)).strip(), re.sub(r"\s+", " ", fold(b)).strip()
    if not a2 or not b2:
        return 0.0
    return SequenceMatcher(None, a2, b2, autojunk=False).ratio()


def _strip_marks(text: str) -> str:
    """Drop rule-line and speck readings ("_", "—", "|") around a value; a line-end comma is
    part of a name that continues on the next line, so it stays."""
    return text.strip().lstrip("_-–—|~.,;:'\"`").rstrip("_–—|~'\"`").strip()


def _is_caps(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(ch.isupper() for ch in letters) >= 0.8 * len(letters)


# --- Vietnamese syllables: a word that is none is a misread ---------------------------------
# Tone marks (combining, after NFD); the vowel-quality marks (circumflex, breve, horn) stay.
_TONE_MARKS = {
    "\u0300": "grave",
    "\u0301": "acute",
    "\u0303": "tilde",
    "\u0309": "hook",
    "\u0323": "dot",
}
_INITIALS = (
    "ngh",
    "ng",
    "nh",
    "ch",
    "gh",
    "gi",
    "kh",
    "ph",
    "qu",
    "th",
    "tr",
    "b",
    "c",
    "d",
    "đ",
    "g",
    "h",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "x",
    "",
)
_RHYMES = frozenset(
    """a ai ao au ay ac ach am an ang anh ap at ăc ăm ăn ăng ăp ăt âc âm ân âng âp ât âu ây
    e eo ec em en eng ep et ê êch êm ên ênh êp êt êu
    i ia iu ich im in inh ip it iêc iêm iên iêng iêp iêt iêu
    o oa oai oao oay oac oach oam oan oang oanh oap oat oăc oăm oăn oăng oăp oăt
    oe oen oeo oet oi oc om on ong op ot ooc oong ô ôi ôc ôm ôn ông ôp ôt ơ ơi ơm ơn ơp ơt
    u ua uân uâng uât uây uê uêch uênh uêt ui uy uya uych uyên uyêt uyn uynh uyp uyt uyu
    uc um un ung up ut uôc uôi uôm uôn uông uôt uơ uơn
    ư ưa ưi ưu ưc ưng ưt ưm ưn ươc ươi ươm ươn ương ươp ươt ươu
    y yêm yên yêt yêu ynh yt ych""".split()
)
_VOWELS = set("aăâeêioôơuưy")


def is_vietnamese_syllable(word: str) -> bool:
    """True when ``word`` (one token, any case) is a possible Vietnamese syllable: initial +
    rhyme, at most one tone mark, and a stop final (-p -t -c -ch) only with sắc or nặng."""
    nfd = unicodedata.normalize("NFD", word.lower())
    tones = [_TONE_MARKS[ch] for ch in nfd if ch in _TONE_MARKS]
    base = unicodedata.normalize("NFC", "".join(ch for ch in nfd if ch not in _TONE_MARKS))
    if len(tones) > 1 or not base.isalpha():
        return False
    for initial in _INITIALS:
        if not base.startswith(initial):
            continue
        rhyme = base[len(initial) :]
        if rhyme == "" and initial == "gi":  # "gì"
            return True
        if rhyme in _RHYMES:
            stop_final = rhyme.endswith(("p", "t", "c", "ch"))
            return not stop_final or (tones[0] if tones else "") in ("acute", "dot")
    return False


def misread_words(text: str) -> list[str]:
    """Words of ``text`` that cannot be Vietnamese syllables. Acronyms (upper case with at
    most one vowel: UBND, TTHC, HĐND), numbers and tokens with digits or symbols are skipped."""
    bad = []
    for token in text.split():
        word = token.strip(".,;:!?()[]{}\"'“”‘’«»-–—…")
        if not word or not word.isalpha():
            continue
        if word.isupper() and sum(ch in _VOWELS for ch in fold(word)) <= 1:
            continue
        if not word.isupper() and any(ch.isupper() for ch in word[1:]):
            continue  # capitals inside a word: an abbreviation such as TTr, CTrTT
        if not is_vietnamese_syllable(word):
            bad.append(word)
    return bad


# --- administrative vocabulary: diacritics restored where OCR lost or changed them -------------
# Fixed names that head documents (ND 30/2020 organ names, levels, provinces). A phrase is
# restored only when the OCR words equal it without diacritics, word for word.
_ADMIN_PHRASES = """
ỦY BAN NHÂN DÂN|HỘI ĐỒNG NHÂN DÂN|CHÍNH PHỦ|THỦ TƯỚNG|VĂN PHÒNG|THÀNH PHỐ|THỊ XÃ|THỊ TRẤN
TỈNH|HUYỆN|QUẬN|PHƯỜNG|SỞ|BỘ|CỤC|TỔNG CỤC|CHI CỤC|CÔNG AN|BAN CHỈ ĐẠO|THANH TRA|KHO BẠC NHÀ NƯỚC
NGÂN HÀNG NHÀ NƯỚC|ĐẠI HỌC|TRƯỜNG|VIỆN|TRUNG TÂM|NỘI VỤ|TƯ PHÁP|TÀI CHÍNH|CÔNG THƯƠNG
QUỐC PHÒNG|NGOẠI GIAO|Y TẾ|XÂY DỰNG|GIÁO DỤC VÀ ĐÀO TẠO|KHOA HỌC VÀ CÔNG NGHỆ|THUẾ|HẢI QUAN
NÔNG NGHIỆP VÀ PHÁT TRIỂN NÔNG THÔN|NÔNG NGHIỆP VÀ MÔI TRƯỜNG|TÀI NGUYÊN VÀ MÔI TRƯỜNG
GIAO THÔNG VẬN TẢI|THÔNG TIN VÀ TRUYỀN THÔNG|LAO ĐỘNG - THƯƠNG BINH VÀ XÃ HỘI
VĂN HÓA, THỂ THAO VÀ DU LỊCH|KẾ HOẠCH VÀ ĐẦU TƯ|DÂN TỘC VÀ TÔN GIÁO|CÔNG AN NHÂN DÂN
HÀ NỘI|HỒ CHÍ MINH|HẢI PHÒNG|ĐÀ NẴNG|CẦN THƠ|HUẾ|AN GIANG|BÀ RỊA - VŨNG TÀU|BẮC GIANG|BẮC KẠN
BẠC LIÊU|BẮC NINH|BẾN TRE|BÌNH ĐỊNH|BÌNH DƯƠNG|BÌNH PHƯỚC|BÌNH THUẬN|CÀ MAU|CAO BẰNG|ĐẮK LẮK
ĐẮK NÔNG|ĐIỆN BIÊN|ĐỒNG NAI|ĐỒNG THÁP|GIA LAI|HÀ GIANG|HÀ NAM|HÀ TĨNH|HẢI DƯƠNG|HẬU GIANG
HÒA BÌNH|HƯNG YÊN|KHÁNH HÒA|KIÊN GIANG|KON TUM|LAI CHÂU|LÂM ĐỒNG|LẠNG SƠN|LÀO CAI|LONG AN
NAM ĐỊNH|NGHỆ AN|NINH BÌNH|NINH THUẬN|PHÚ THỌ|PHÚ YÊN|QUẢNG BÌNH|QUẢNG NAM|QUẢNG NGÃI
QUẢNG NINH|QUẢNG TRỊ|SÓC TRĂNG|SƠN LA|TÂY NINH|THÁI BÌNH|THÁI NGUYÊN|THANH HÓA|THỪA THIÊN HUẾ
TIỀN GIANG|TRÀ VINH|TUYÊN QUANG|VĨNH LONG|VĨNH PHÚC|YÊN BÁI
"""
_PHRASES: list[tuple[tuple[str, ...], tuple[str, ...]]] = sorted(
    (
        (tuple(fold(w) for w in words), words)
        for words in (
            tuple(p.replace(",", "").split())
            for p in _ADMIN_PHRASES.replace("\n", "|").split("|")
            if p.strip()
        )
    ),
    key=lambda item: -len(item[0]),
)
_EDGE = ".,;:!?()[]\"'“”-–—_|"


def restore_admin_words(text: str) -> tuple[str, bool]:
    """``THÀNH PHÓ HÒ CHÍ MINH`` → ``THÀNH PHỐ HỒ CHÍ MINH``: words of a known administrative
    phrase get the phrase's diacritics (case as in ``text``). Returns the text and whether
    anything changed. Spelling variants (ỦY/UỶ, HÒA/HOÀ) are left as printed."""
    restored, changed, _ = _restore(text)
    return restored, changed


def _restore(text: str) -> tuple[str, bool, set[str]]:
    """``restore_admin_words`` plus the folded words that belong to a known phrase."""
    tokens = text.split()
    cores = [t.strip(_EDGE) for t in tokens]
    folded = [fold(c) for c in cores]
    changed = False
    covered: set[str] = set()
    i = 0
    while i < len(tokens):
        for key, words in _PHRASES:
            n = len(key)
            if tuple(folded[i : i + n]) != key:
                continue
            covered.update(key)
            for j, word in enumerate(words):
                core = cores[i + j]
                if core.islower():
                    want = word.lower()
                elif core.isupper():
                    want = word
                else:
                    want = word.capitalize()
                if _spelling_key(core) == _spelling_key(want):
                    continue
                tokens[i + j] = tokens[i + j].replace(core, want, 1)
                changed = True
            i += n - 1
            break
        i += 1
    return " ".join(tokens), changed, covered


def _spelling_key(word: str) -> tuple[str, tuple[str, ...]]:
    """Letters with their vowel marks, plus the tone marks as a set: the old and new tone
    placements (ỦY/UỶ, HÒA/HOÀ) compare equal, PHÓ/PHỐ do not."""
    nfd = unicodedata.normalize("NFD", word.upper())
    base = unicodedata.normalize("NFC", "".join(ch for ch in nfd if ch not in _TONE_MARKS))
    return base, tuple(sorted(ch for ch in nfd if ch in _TONE_MARKS))


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
_ABBREVIATION_TYPES = {a: t for t, abbrs in DOC_TYPES.items() for a in abbrs}
# Folded abbreviation → its valid spellings. OCR often drops the bar of Đ or a diacritic; a
# spelling is repaired only when exactly one valid abbreviation folds to it (QD → QĐ, but
# HD stays HD: it is HƯỚNG DẪN, and HĐ is HỢP ĐỒNG).
_ABBREVIATION_SPELLINGS: dict[str, set[str]] = {}
for _abbrs in DOC_TYPES.values():
    for _a in _abbrs:
        _ABBREVIATION_SPELLINGS.setdefault(fold(_a), set()).add(_a)


def _valid_abbreviation(text: str) -> str | None:
    if text in _ABBREVIATION_TYPES:
        return text
    spellings = _ABBREVIATION_SPELLINGS.get(fold(text), set())
    return next(iter(spellings)) if len(spellings) == 1 else None


MOTTO = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO_2 = "Độc lập - Tự do - Hạnh phúc"
_LEVEL_WORDS = ("tinh", "thanh pho", "huyen", "quan", "xa", "phuong", "thi xa", "thi tran")
_SIGNER_PREFIX = re.compile(r"^\s*(tm|kt|q|tl|tuq)\s*[.,:]", re.IGNORECASE)
_BODY_START = re.compile(r"^\s*(can cu|kinh gui|dieu \d|muc \d|chuong [ivx\d]|phan [ivx\d])")


# --- parsers (public: unit-tested on OCR-noisy strings) ------------------------------------
@dataclass(frozen=True)
class NumberParse:
    number: str | None  # None: the number was not printed/read (handwritten gap or scrawl)
    year: str | None
    notation: str
    span: tuple[int, int]  # of the whole "Số: …" match in the input text
    number_span: tuple[int, int] | None
    notation_span: tuple[int, int]
    corrected: bool = False  # notation spelling fixed (e.g. QD→QĐ)
    number_text: str = ""  # what stands between "Số:" and the notation, as read
    anchored: bool = True  # False: "Số" itself was not read, only "/NOTATION"
    # "Số: 23 /BC-UBND": a space before the slash means the number was written or stamped
    # into the blank the typed template leaves (typed numbers read "Số: 23/BC-UBND").
    number_in_blank: bool = False


# Folded text. "Số" as OCR gives it (so, s6, s0, sô→so), then ":" or a look-alike; the number
# is whatever stands before the last "/" that opens the notation (handwriting reads as any
# scrawl: "0+", "đ@", "4/35"), the notation is letters, digits and hyphens to the line end.
_NUMBER_ANCHOR_RE = re.compile(r"^\W*s\s?[o06]\s*[:;.,]?")
_NOTATION_RE = re.compile(
    r"[/|]\s*(?:(?P<year>(?:19|20)\d\d)\s*[/|]\s*)?"
    r"(?P<notation>[a-z][^\s/|-]*(?:\s?-\s?[^\s/|-]+)*?)[\W_]*$"
)


def parse_number_line(text: str) -> NumberParse | None:
    """``Số: 60/KH-UBND``, ``Số:09/2025/TT-BKHCN``, ``S6: 60/KH-UBND``, ``Số: /UBND-TTHC``,
    ``Số: 0+ /QĐ-BCĐ138`` (scrawl: no number), ``/CT-UBND`` (``Số`` lost: not anchored)."""
    text = unicodedata.normalize("NFC", text)
    folded = fold(text)
    anchor = _NUMBER_ANCHOR_RE.match(folded)
    if anchor is None:
        # Only "/NOTATION" was read: the anchor and a handwritten number were lost.
        if not re.match(r"^\W{0,2}[/|]", folded):
            return None
        start = 0
    else:
        start = anchor.end()
    notation_match = _NOTATION_RE.search(folded, start)
    if notation_match is None:
        return None
    # "Số lượng …", "số 15/2020/TT-BGDĐT ngày …" in prose: the notation must end the line and
    # only a short number may stand between the anchor and it.
    middle_span = (start, notation_match.start())
    middle = text[middle_span[0] : middle_span[1]].strip()
    if len(middle) > 12 or len(middle.split()) > 3:
        return None
    n0, n1 = notation_match.span("notation")
    notation = re.sub(r"\s+", "", text[n0:n1]).rstrip(".,;:!?)'\"")
    if anchor is None and "-" not in notation:
        return None
    parts = notation.split("-")
    corrected = False
    spelled = _valid_abbreviation(parts[0])
    if spelled and spelled != parts[0]:
        parts[0] = spelled
        corrected = True
    notation = "-".join(parts)
    digits = middle.replace(" ", "").translate(str.maketrans("oOlI", "0011"))
    number_value = digits if re.fullmatch(r"\d{1,6}", digits) else None
    number_span = None
    if middle:
        m0 = text.index(middle, middle_span[0])
        number_span = (m0, m0 + len(middle))
    return NumberParse(
        number=number_value,
        year=notation_match.group("year"),
        notation=notation,
        span=(anchor.start() if anchor else notation_match.start(), notation_match.end()),
        number_span=number_span,
        notation_span=(n0, n1),
        corrected=corrected,
        number_text=middle,
        anchored=anchor is not None,
        number_in_blank=bool(middle) and bool(re.search(r"\s[/|]", folded[start:n0])),
    )


@dataclass(frozen=True)
class DateParse:
    place: str | None
    date: date | None  # None: day/month/year were not all read or do not make a date
    day_text: str  # as read ("" when lost; a scrawl such as "Ø3" when handwritten)
    month_text: str
    year_text: str
    span: tuple[int, int]
    place_span: tuple[int, int] | None
    leading_zero_ok: bool  # ND 30: day < 10 and months 1–2 are written with a leading 0

    @property
    def partial(self) -> str:
        """ISO-like value with ``??`` for the parts that were not read: ``2025-02-??``."""
        day = self.day_text if re.fullmatch(r"\d{1,2}", self.day_text) else "??"
        month = self.month_text if re.fullmatch(r"\d{1,2}", self.month_text) else "??"
        return f"{self.year_text}-{month.zfill(2)}-{day.zfill(2)}"


_DIGIT_LOOKALIKES = str.maketrans("oOlI", "0011")

# "ngày … tháng … năm YYYY": day and month are often handwritten into printed gaps, so they
# may be lost or read as any short scrawl; "ngày" itself may be lost with a handwritten day.
_DATE_RE = re.compile(
    r"(?:(?P<place>[^\W\d_](?:[^\W\d_]|[ .\-])*?)\s*[,.]?\s*)?"
    r"(?:ng[aà]?[yw]?(?![a-km-np-z])(?P<day>[^\s]{0,3}(?:\s+[^\s]{1,3})??)\s*[,.]?\s*)?"
    r"th[aá]ng(?P<month>\s*[^\s]{0,3}?)\s*[,.]?\s*"
    r"n[aă]m\s*(?P<year>[0-9oOlI]{4})(?!\d)"
)


def parse_date_line(text: str) -> DateParse | None:
    """``Vĩnh Phúc, ngày 19 tháng 03 năm 2025`` → place and 2025-03-19, diacritics optional.
    ``Quảng Ngãi, tháng 02 năm 2025`` (handwritten day lost) → date None, day_text ""."""
    text = unicodedata.normalize("NFC", text)
    folded = fold(text)
    match = _DATE_RE.search(folded)
    if match is None:
        return None
    digits = str.maketrans("oOlI", "0011")

    def part(name: str) -> str:
        raw = (match.group(name) or "").strip(" ,.")
        as_digits = raw.translate(digits)
        if not raw or as_digits.isdigit():
            return as_digits
        return text[match.start(name) : match.end(name)].strip(" ,.")

    day_t, month_t, year_t = part("day"), part("month"), match.group("year").translate(digits)
    value: date | None = None
    if day_t.isdigit() and month_t.isdigit():
        try:
            value = date(int(year_t), int(month_t), int(day_t))
        except ValueError:
            value = None
    place = place_span = None
    if match.group("place"):
        p0, p1 = match.span("place")
        place = text[p0:p1].strip(" ,.-")
        place_span = (p0, p1)
        if not place:
            place = place_span = None
    zero_ok = (not day_t.isdigit() or int(day_t) >= 10 or len(day_t) == 2) and (
        not month_t.isdigit() or int(month_t) >= 3 or len(month_t) == 2
    )
    return DateParse(
        place=place,
        date=value,
        day_text=day_t,
        month_text=month_t,
        year_text=year_t,
        span=match.span(),
        place_span=place_span,
        leading_zero_ok=zero_ok,
    )


def match_doc_type(text: str, threshold: float = 0.8) -> tuple[str, float] | None:
    """The ND 30 document type a heading line names, with the match ratio."""
    if not _is_caps(text) or len(text) > 40:
        return None
    best, best_ratio = None, 0.0
    for name in DOC_TYPES:
        ratio = similarity(text, name)
        if ratio > best_ratio:
            best, best_ratio = name, ratio
    if best is None or best_ratio < threshold:
        return None
    return best, best_ratio


def type_of_notation(notation: str) -> str | None:
    """Document type implied by a notation's first part (``KH-UBND`` → KẾ HOẠCH); None for a
    công văn notation (organ abbreviation first) or an unknown abbreviation."""
    abbreviation = _valid_abbreviation(notation.split("-")[0])
    return _ABBREVIATION_TYPES[abbreviation] if abbreviation else None


# --- page model used by the extractor ----------------------------------------------------------
@dataclass
class _Line:
    page: int
    index: int
    text: str
    bbox: BBox
    words: list[Word] = field(default_factory=list)
    offsets: list[tuple[int, int]] = field(default_factory=list)  # char span of each word

    @property
    def folded(self) -> str:
        return fold(self.text)

    @property
    def centre_x(self) -> float:
        return (self.bbox[0] + self.bbox[2]) / 2

    @property
    def height(self) -> int:
        return self.bbox[3] - self.bbox[1]

    def words_in(self, span: tuple[int, int]) -> list[Word]:
        return [
            w
            for w, (a, b) in zip(self.words, self.offsets, strict=True)
            if a < span[1] and b > span[0]
        ]


def _line_from_words(
    page_no: int, index: int, words: list[Word], bbox: BBox | None = None
) -> _Line:
    words = sorted(words, key=lambda w: w.bbox[0])
    pos, offsets = 0, []
    for w in words:
        offsets.append((pos, pos + len(w.text)))
        pos += len(w.text) + 1
    box = bbox or _union([w.bbox for w in words]) or (0, 0, 0, 0)
    return _Line(page_no, index, " ".join(w.text for w in words), box, words, offsets)


def _motto_start(words: Sequence[Word], threshold: float) -> int | None:
    """Index of the word where the national motto starts inside a longer line (the engine can
    join "UBND TỈNH X" and "CỘNG HÒA XÃ HỘI …" on one row when the gap is narrow)."""
    for k in range(1, len(words)):
        if fold(words[k].text).startswith("cong"):
            rest = " ".join(w.text for w in words[k : k + 8])
            if similarity(rest, MOTTO) >= threshold:
                return k
    return None


def _lines_of(page: PageOcr, page_no: int, threshold: float = 0.8) -> list[_Line]:
    lines = [_Line(page_no, i, line.text, line.bbox) for i, line in enumerate(page.lines)]
    for word in page.words:
        if 0 <= word.line < len(lines):
            lines[word.line].words.append(word)
    out: list[_Line] = []
    for line in lines:
        if not line.words:
            if line.text.strip():
                out.append(line)
            continue
        # Rebuild text from the words so that character offsets are exact.
        words = sorted(line.words, key=lambda w: w.bbox[0])
        cut = _motto_start(words, threshold)
        if cut is not None:
            out.append(_line_from_words(page_no, line.index, words[:cut]))
            out.append(_line_from_words(page_no, line.index, words[cut:]))
        else:
            out.append(_line_from_words(page_no, line.index, words, line.bbox))
    return [line for line in out if line.text.strip()]


def _same_row(a: _Line, b: _Line) -> bool:
    overlap = min(a.bbox[3], b.bbox[3]) - max(a.bbox[1], b.bbox[1])
    return overlap > 0.4 * min(a.height, b.height)


def _row_pieces(lines: Sequence[_Line], width: int, split_x: float) -> list[_Line]:
    """Each line, plus the join of pieces of one printed row on the same side of the header's
    column split: a handwritten day or number the engine dropped leaves "Số:" | "/UBND-X"
    or "Quảng Ngãi," | "tháng 02 năm 2025" as separate pieces of one row."""
    out = list(lines)
    for line in lines:
        side = line.centre_x < split_x
        row = [
            other
            for other in lines
            if _same_row(line, other)
            and (other.centre_x < split_x) == side
            and other.bbox[2] - other.bbox[0] < 0.6 * width
        ]
        if len(row) < 2 or line is not min(row, key=lambda ln: ln.bbox[0]):
            continue
        row.sort(key=lambda ln: ln.bbox[0])
        if any(b.bbox[0] - a.bbox[2] > 0.15 * width for a, b in zip(row, row[1:], strict=False)):
            continue
        words = [w for piece in row for w in piece.words]
        if words:
            out.append(_line_from_words(line.page, line.index, words))
    return out


def _union(boxes: Sequence[BBox]) -> BBox | None:
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _confidence(words: Sequence[Word]) -> float:
    if not words:
        return 0.0
    return round(min(w.confidence for w in words) / 100, 3)


class _Fields:
    """Collects fields; a field under the confidence floor is flagged for review."""

    def __init__(self, settings: ExtractSettings):
        self.settings = settings
        self.items: dict[str, ExtractedField] = {}

    def add(
        self,
        name: str,
        value: str,
        page: int,
        words: Sequence[Word],
        *,
        confidence: float | None = None,
        review: bool = False,
        note: str | None = None,
        bbox: BBox | None = None,
    ) -> None:
        conf = _confidence(words) if confidence is None else confidence
        notes = [note] if note else []
        if conf < self.settings.min_confidence:
            review = True
            notes.append(f"low OCR confidence {conf:.2f}")
        self.items[name] = ExtractedField(
            name=name,
            value=value,
            page=page,
            bbox=bbox or _union([w.bbox for w in words]),
            confidence=round(max(0.0, min(1.0, conf)), 3),
            needs_review=review,
            note="; ".join(notes) or None,
        )

    def flag(self, name: str, note: str) -> None:
        item = self.items.get(name)
        if item is None:
            return
        joined = f"{item.note}; {note}" if item.note else note
        self.items[name] = item.model_copy(update={"needs_review": True, "note": joined})


# --- header detection ----------------------------------------------------------------------
@dataclass
class _Header:
    page: int
    lines: list[_Line]
    width: int
    height: int
    motto: _Line | None
    number: tuple[_Line, NumberParse] | None
    date: tuple[_Line, DateParse] | None
    split_x: float = 0.0  # x between the left (organ, number) and right (motto, date) columns

    @property
    def found(self) -> bool:
        return self.motto is not None or self.number is not None or self.date is not None


def _near_received_stamp(line: _Line, lines: Sequence[_Line]) -> bool:
    """A received stamp ("CÔNG VĂN ĐẾN", "ĐẾN Số: … Ngày: …") sits around its own "Số"."""
    reach = 3 * max(line.height, 1)
    for other in lines:
        if other is line:
            continue
        close = abs(other.bbox[1] - line.bbox[1]) <= reach and not (
            other.bbox[2] < line.bbox[0] - reach or other.bbox[0] > line.bbox[2] + reach
        )
        if close and re.search(r"\bden\b|\bchuyen\b", other.folded):
            return True
    return bool(re.search(r"\bden\b|ngay\s*:", line.folded))


def _find_header(page: PageOcr, page_no: int, settings: ExtractSettings) -> _Header:
    lines = _lines_of(page, page_no, settings.phrase_match)
    width, height = page.width_px or 1, page.height_px or 1
    motto = None
    for line in lines:
        if line.bbox[1] < 0.5 * height and similarity(line.text, MOTTO) >= settings.phrase_match:
            motto = line
            break
    heights = sorted(line.height for line in lines) or [1]
    line_height = max(heights[len(heights) // 2], 1)
    # The motto column starts where the right header column starts; without it, mid-page.
    split_x = 0.5 * width
    if motto is not None and 0.25 * width < motto.bbox[0] < 0.6 * width:
        split_x = motto.bbox[0] - 0.02 * width

    def in_zone(line: _Line) -> bool:
        # Number and date stand a few lines under the motto, never far below it.
        return motto is not None and (
            motto.bbox[1] - 2 * line_height <= line.bbox[1] <= motto.bbox[3] + 7 * line_height
        )

    pieces = _row_pieces(lines, width, split_x)
    numbers: list[tuple[float, _Line, NumberParse]] = []
    for line in pieces:
        parsed = parse_number_line(line.text)
        # The number line is short: "số 15/2020/TT-BGDĐT" inside a body line is a reference.
        if parsed is None or line.bbox[2] - line.bbox[0] > 0.55 * width:
            continue
        score = 2.0 if line.centre_x < split_x else -2.0  # the left header column
        if motto is not None:
            score += 2 if in_zone(line) else -3
        if _near_received_stamp(line, lines):
            score -= 4
        if parsed.number is None:
            score -= 0.5
        if not parsed.anchored:
            score -= 1
        score += 0.01 * len(line.words)  # the joined row over its pieces
        numbers.append((score, line, parsed))
    dates: list[tuple[float, _Line, DateParse]] = []
    for line in pieces:
        parsed_date = parse_date_line(line.text)
        if parsed_date is None or line.bbox[2] - line.bbox[0] > 0.6 * width:
            continue
        if parsed_date.place is not None and len(parsed_date.place.split()) > 6:
            continue  # "Căn cứ Luật … ngày …": prose, not a place
        score = 1.0 if line.centre_x > split_x else -1.0
        if motto is not None:
            score += 2 if in_zone(line) else -3
        if parsed_date.date is not None:
            score += 1
        if parsed_date.place is not None:
            score += 0.5
        if _near_received_stamp(line, lines):
            score -= 4
        score += 0.01 * len(line.words)
        dates.append((score, line, parsed_date))
    best_number = max(numbers, key=lambda t: t[0], default=None)
    best_date = max(dates, key=lambda t: t[0], default=None)
    if best_number is not None and best_number[0] < 0:
        best_number = None
    if best_date is not None and best_date[0] < 0:
        best_date = None
    # Same row as the number is the strongest date evidence: prefer it when present.
    if best_number is not None:
        number_line = best_number[1]
        row = [
            t
            for t in dates
            if abs(t[1].bbox[1] - number_line.bbox[1]) < 1.5 * number_line.height
            and t[1].centre_x > split_x
        ]
        if row:
            best_date = max(row, key=lambda t: t[0])
    if motto is None and best_number is not None and best_date is None:
        # Away from a motto, a lone "Số: …" line is as likely a reference or an annex.
        best_number = None
    return _Header(
        page=page_no,
        lines=lines,
        width=width,
        height=height,
        motto=motto,
        number=(best_number[1], best_number[2]) if best_number else None,
        date=(best_date[1], best_date[2]) if best_date else None,
        split_x=split_x,
    )


# --- field readers -------------------------------------------------------------------------
def _read_number(header: _Header, out: _Fields) -> None:
    if header.number is None:
        return
    line, parsed = header.number
    settings = out.settings
    notation_words = line.words_in(parsed.notation_span)
    notes = ["notation spelling corrected (Đ)"] if parsed.corrected else []
    review = False
    if not parsed.anchored:
        review = True
        notes.append('"Số:" not read')
    odd = sorted({ch for ch in parsed.notation if not (ch.isalnum() or ch in "&.-")})
    if odd or not re.fullmatch(r"[^\W\d_][\w&.]*(-[\w&.]+)*", parsed.notation):
        review = True
        notes.append("unexpected characters in the notation: " + "".join(odd))
    out.add(
        "code_notation",
        parsed.notation,
        header.page,
        notation_words,
        review=review,
        note="; ".join(notes) or None,
    )
    if parsed.number is None:
        read = f" (read as {parsed.number_text!r})" if parsed.number_text else ""
        out.add(
            "code_number",
            "",
            header.page,
            line.words_in(parsed.number_span or parsed.span),
            confidence=0.0,
            review=True,
            note=f"number not read (handwritten or blank){read}",
        )
    else:
        words = line.words_in(parsed.number_span or parsed.span)
        notes = []
        if _confidence(words) < settings.min_number_confidence:
            notes.append("digits read with low confidence (handwritten?)")
        if parsed.number_in_blank:
            notes.append("number filled into the blank before the slash (handwritten or stamped)")
        out.add(
            "code_number",
            parsed.number,
            header.page,
            words,
            review=bool(notes),
            note="; ".join(notes) or None,
        )
    if parsed.year:
        out.add("code_year", parsed.year, header.page, line.words_in(parsed.span))


def _read_date(header: _Header, out: _Fields) -> None:
    if header.date is None:
        return
    line, parsed = header.date
    settings = out.settings
    words = line.words_in(parsed.span)
    if parsed.place:
        place, restored = restore_admin_words(parsed.place)
        out.add(
            "issued_place",
            place,
            header.page,
            line.words_in(parsed.place_span or parsed.span),
            note="diacritics restored from the place-name list" if restored else None,
        )
    number_words = [w for w in words if any(ch.isdigit() for ch in w.text)]
    digits_conf = _confidence(number_words)
    if parsed.date is None:
        unread = [
            part
            for part, text in (("day", parsed.day_text), ("month", parsed.month_text))
            if not text.isdigit()
        ]
        note = f"{' and '.join(unread)} not read (handwritten?)" if unread else "not a valid date"
        out.add(
            "issued_date",
            parsed.partial,
            header.page,
            words,
            confidence=0.0,
            review=True,
            note=note,
        )
        return
    notes = []
    review = False
    if digits_conf < settings.min_number_confidence:
        review = True
        notes.append("digits read with low confidence (handwritten?)")
    if not parsed.leading_zero_ok:
        review = True
        notes.append("day < 10 or month 1–2 without a leading zero (ND 30)")
    # Handwritten day or month digits stand taller than the printed year beside them.
    year_words = [w for w in words if parsed.year_text in w.text.translate(_DIGIT_LOOKALIKES)]
    if year_words:
        printed = year_words[-1].bbox[3] - year_words[-1].bbox[1]
        filled = [
            w
            for w in words
            if w not in year_words
            and re.fullmatch(r"\W*\d{1,2}\W*", w.text)
            and w.bbox[3] - w.bbox[1] > 1.15 * printed
        ]
        if filled:
            review = True
            notes.append("day/month digits taller than the printed year (handwritten?)")
    if not 1945 <= parsed.date.year <= date.today().year + 1:
        review = True
        notes.append(f"year {parsed.date.year} out of range")
    out.add(
        "issued_date",
        parsed.date.isoformat(),
        header.page,
        words,
        confidence=min(_confidence(words), 1.0),
        review=review,
        note="; ".join(notes) or None,
    )


def _text_field(
    out: _Fields,
    name: str,
    lines: Sequence[_Line],
    page: int,
    *,
    restore: bool = False,
    confidence: float | None = None,
    note: str | None = None,
    review: bool = False,
) -> None:
    """A field made of printed text lines: flagged when a word was read with low confidence
    or is no Vietnamese syllable (a lost or changed diacritic); known administrative names
    get their diacritics back first (a word so restored is trusted)."""
    settings = out.settings
    texts: list[str] = []
    weak: list[Word] = []
    restored_any = False
    for line in lines:
        text, known = _strip_marks(line.text), set[str]()
        if restore:
            text, restored, known = _restore(text)
            restored_any |= restored
        texts.append(text)
        for word in line.words:
            if word.confidence / 100 < settings.min_text_word_confidence:
                if fold(word.text.strip(_EDGE)) not in known:
                    weak.append(word)
    value = " ".join(t for t in texts if t)
    notes = [note] if note else []
    if restored_any:
        notes.append("diacritics restored from the administrative-name list")
    if weak:
        review = True
        notes.append("low-confidence words: " + ", ".join(repr(w.text) for w in weak[:4]))
    bad = misread_words(value) if settings.check_syllables else []
    if bad:
        review = True
        notes.append("not Vietnamese syllables (misread?): " + ", ".join(bad[:4]))
    words = [w for line in lines for w in line.words]
    conf = confidence
    if conf is None:
        conf = sum(w.confidence for w in words) / len(words) / 100 if words else 0.0
    out.add(name, value, page, words, confidence=conf, review=review, note="; ".join(notes) or None)


def _read_organ(header: _Header, out: _Fields) -> None:
    """Caps lines of the left header column, above the number line."""
    top_limit = header.motto.bbox[1] - 2 * header.motto.height if header.motto else 0
    bottom = None
    if header.number is not None:
        bottom = header.number[0].bbox[1]
    elif header.motto is not None:
        bottom = header.motto.bbox[3] + 4 * header.motto.height
    if bottom is None:
        return
    right_edge = min(0.62 * header.width, header.split_x + 0.05 * header.width)
    block = [
        line
        for line in header.lines
        if line.bbox[3] <= bottom + 2
        and line.bbox[1] >= top_limit
        and line.bbox[2] < right_edge
        and line.centre_x < 0.45 * header.width
        and _is_caps(line.text)
        and line is not header.motto
        and not re.search(r"[/:]|\bden\b", fold(_strip_marks(line.text)))  # "Số:", stamp
    ]
    if not block:
        return
    # Specks and seal strokes read as one capital ("R") are not organ lines.
    tallest = max(line.height for line in block)
    block = [
        line
        for line in block
        if line.height >= 0.5 * tallest and sum(ch.isalpha() for ch in line.text) >= 2
    ]
    block.sort(key=lambda line: line.bbox[1])
    if not block:
        return
    texts = [fold(_strip_marks(line.text)) for line in block]
    # "ỦY BAN NHÂN DÂN / TỈNH X" is one organ over two lines; otherwise the first line is the
    # parent organ (cơ quan chủ quản) and the rest the issuing organ.
    one_organ = (
        len(block) >= 2
        and texts[1].startswith(_LEVEL_WORDS)
        and re.fullmatch(r"(uy ban nhan dan|hoi dong nhan dan|ubnd|hdnd)", texts[0].strip())
    )
    if len(block) == 1 or one_organ:
        organ_lines, parent = block, None
    else:
        parent, organ_lines = block[0], block[1:]
    if parent is not None:
        _text_field(out, "parent_organ", [parent], header.page, restore=True)
    _text_field(out, "organ_name", organ_lines, header.page, restore=True)


_VV = re.compile(r"^\W*v\s*[/|l1]\s*[vwy]\b")


def _read_type_and_subject(header: _Header, out: _Fields) -> None:
    below = (
        header.number[0].bbox[3] if header.number else (header.motto.bbox[3] if header.motto else 0)
    )
    if header.date is not None:
        below = max(below, header.date[0].bbox[3])
    candidates = [
        line
        for line in header.lines
        if line.bbox[1] >= below - 2 and line.bbox[1] < below + 0.35 * header.height
    ]
    candidates.sort(key=lambda line: line.bbox[1])
    width = header.width
    type_line = None
    for line in candidates[:8]:
        if abs(line.centre_x - width / 2) > 0.12 * width:
            continue
        matched = match_doc_type(line.text, out.settings.phrase_match)
        if matched:
            type_line = (line, matched)
            break
    subject_lines: list[_Line] = []
    subject_note = None
    if type_line is not None:
        line, (name, ratio) = type_line
        out.add(
            "type_name",
            name,
            header.page,
            line.words,
            confidence=min(ratio, _confidence(line.words)),
        )
        previous = line
        for nxt in candidates[candidates.index(line) + 1 :]:
            gap = nxt.bbox[1] - previous.bbox[3]
            if (
                gap > 1.2 * max(previous.height, 1)
                or abs(nxt.centre_x - width / 2) > 0.12 * width
                or _BODY_START.match(nxt.folded)
                or (subject_lines and _is_caps(nxt.text) and not _is_caps(subject_lines[0].text))
                or len(subject_lines) >= 6
            ):
                break
            subject_lines.append(nxt)
            previous = nxt
    else:
        left = [line for line in candidates if line.centre_x < header.split_x]
        start = next((line for line in left if _VV.match(line.folded)), None)
        if start is None and header.number is not None:
            # Công văn whose "V/v" was lost (stamp, faint print): the lines right under the
            # number in the left column, flagged.
            number_line = header.number[0]
            start = next(
                (
                    line
                    for line in left
                    if 0 <= line.bbox[1] - number_line.bbox[3] < 1.5 * max(number_line.height, 1)
                    and not _is_caps(line.text)
                    and not _BODY_START.match(line.folded)
                ),
                None,
            )
            subject_note = '"V/v" not read'
        if start is not None:
            subject_lines = [start]
            for nxt in left[left.index(start) + 1 :]:
                if nxt.bbox[1] - subject_lines[-1].bbox[3] > 1.2 * max(start.height, 1) or (
                    _BODY_START.match(nxt.folded)
                ):
                    break
                subject_lines.append(nxt)
        if subject_lines and subject_note is None:
            out.add("type_name", CONG_VAN, header.page, subject_lines[0].words[:1], confidence=0.9)
    if subject_lines:
        _text_field(
            out,
            "subject",
            subject_lines,
            header.page,
            note=subject_note,
            review=subject_note is not None,
        )


VBHN = "VĂN BẢN HỢP NHẤT"


def _check_notation_type(out: _Fields) -> None:
    notation = out.items.get("code_notation")
    type_field = out.items.get("type_name")
    if notation is None:
        return
    implied = type_of_notation(notation.value)
    if type_field is None:
        # No heading read: the notation says which type it is (a notation without a type
        # abbreviation is a công văn's), but a human should confirm.
        out.add(
            "type_name",
            implied or CONG_VAN,
            notation.page,
            (),
            confidence=0.5,
            review=True,
            note=f"no type heading read; type inferred from notation {notation.value}",
            bbox=notation.bbox,
        )
        return
    if implied == VBHN and type_field.value not in (VBHN, CONG_VAN):
        # A consolidated text keeps the heading of the type it consolidates (Luật Ban hành
        # VBQPPL, hợp nhất văn bản): "THÔNG TƯ" + VBHN-… is a consolidated thông tư.
        out.items["type_name"] = type_field.model_copy(
            update={"value": f"{type_field.value} ({VBHN})"}
        )
        return
    if implied is None and type_field.value != CONG_VAN:
        note = f"notation {notation.value} has no type abbreviation for {type_field.value}"
    elif implied is not None and implied != type_field.value:
        note = f"notation {notation.value} implies {implied}, heading reads {type_field.value}"
    else:
        return
    out.flag("code_notation", note)
    out.flag("type_name", note)


def _read_closing(page: PageOcr, page_no: int, out: _Fields) -> None:
    """Signature block (right) and "Nơi nhận" list (left) of the last page."""
    lines = _lines_of(page, page_no)
    width = page.width_px or 1
    anchor = None
    for line in lines:
        head = fold(line.text)[:12]
        if similarity(head[:9], "noi nhan:") >= 0.8 or re.match(r"\s*noi\s*nhan\b", head):
            anchor = line
    if anchor is not None:
        items: list[_Line] = []
        for line in sorted(lines, key=lambda ln: ln.bbox[1]):
            if line.bbox[1] <= anchor.bbox[1] or line.centre_x >= 0.5 * width:
                continue
            if items and line.bbox[1] - items[-1].bbox[3] > 2.0 * max(line.height, 1):
                break
            items.append(line)
        if items:
            words = [w for line in items for w in line.words]
            values = [re.sub(r"^\s*[-–•+]\s*", "", line.text).strip() for line in items]
            out.add("recipients", "\n".join(values), page_no, words)
    top = anchor.bbox[1] - 3 * anchor.height if anchor else 0.45 * (page.height_px or 1)
    right = [
        line
        for line in lines
        if line.bbox[0] >= 0.4 * width and line.bbox[1] >= top and line.centre_x > 0.5 * width
    ]
    right.sort(key=lambda ln: ln.bbox[1])
    start = next(
        (i for i, ln in enumerate(right) if _SIGNER_PREFIX.match(ln.folded) or _is_caps(ln.text)),
        None,
    )
    if start is None:
        return
    position = [ln for ln in right[start:] if _is_caps(ln.text)][:4]
    names = [
        ln
        for ln in right[start:]
        if not _is_caps(ln.text)
        and 2 <= len(ln.text.split()) <= 6
        and all(w[:1].isupper() for w in ln.text.split() if w[:1].isalpha())
    ]
    if position:
        words = [w for ln in position for w in ln.words]
        out.add("signer_position", " / ".join(ln.text.strip() for ln in position), page_no, words)
    if names:
        name = names[-1]
        out.add("signer_full_name", name.text.strip(), page_no, name.words)


def extract_fields(
    pages: Sequence[PageOcr], settings: ExtractSettings | None = None
) -> tuple[ExtractedField, ...]:
    """Header fields of one component from its pages' OCR.

    Applies only when a page shows the national motto or a ``Số:``/date line (requirements §8:
    other papers use per-type templates). Page 1 is read first; without a header there, the
    last page and then the others are searched (consolidated texts carry number and date in
    the closing block)."""
    settings = settings or ExtractSettings()
    if not settings.enabled or not pages:
        return ()
    order = [0] + ([len(pages) - 1] if len(pages) > 1 else []) + list(range(1, len(pages) - 1))
    out = _Fields(settings)
    first = _find_header(pages[0], 1, settings)
    header = first
    if first.number is None:
        for index in order[1:]:
            other = _find_header(pages[index], index + 1, settings)
            if other.number is not None and other.date is not None:
                header = other
                break
    if not (first.found or header.found):
        return ()
    # Organ, type and subject live on page 1 when it has the header block; number and date
    # where they were found.
    layout_page = first if first.motto is not None or first.number is not None else header
    _read_organ(header if header.number else layout_page, out)
    if "organ_name" not in out.items and layout_page is not header:
        _read_organ(layout_page, out)
    _read_number(header, out)
    if first.date is not None and header is first:
        _read_date(first, out)
    else:
        _read_date(header if header.date else first, out)
    _read_type_and_subject(layout_page, out)
    if header is not first:
        # Outside page 1's header the "Số:" may belong to an attachment or a reference: a
        # human confirms it.
        for name in [n for n, f in out.items.items() if f.page == header.page]:
            out.flag(name, f"found on page {header.page}, not in a page-1 header")
    _check_notation_type(out)
    _read_closing(pages[-1], len(pages), out)
    return tuple(out.items.values())
