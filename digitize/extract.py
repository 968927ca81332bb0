"""Header-field extraction for documents in the ND 30/2020 administrative layout
(requirements §8; issue 5 item 4, issue 10 item 3).

Reads the OCR lines and word boxes of a component's pages: the left header column (organ,
``Số:``), the right one (national motto, place and date), the centred type heading and
trích yếu, the signature block and ``Nơi nhận`` on the last page. Anchors are matched without
diacritics and with fuzzy matching, so OCR slips (``S6:``, ``ngay``) do not lose a field.

Every value carries its page, box and a confidence; a value that looks handwritten (low word
confidence), disagrees with another field (notation vs type heading) or is missing a part is
flagged for review: a flagged field is better than a confident wrong one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from difflib import SequenceMatcher

from digitize.models import BBox, ExtractedField, FrozenModel, PageOcr, Word


class ExtractSettings(FrozenModel):
    enabled: bool = True
    min_confidence: float = 0.6  # below: field flagged for review
    min_number_confidence: float = 0.75  # digits read less surely than this look handwritten
    phrase_match: float = 0.8  # fuzzy ratio (0..1) for fixed phrases such as the motto
    # Printed header text (organ, trích yếu) reads at 90+ on a clean scan; a word under this
    # is a stamp, a seal or a misread diacritic: the field is flagged, not trusted.
    min_text_word_confidence: float = 0.8
    check_syllables: bool = True  # a word that is no Vietnamese syllable marks a misread field


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
_TONE_MARKS = {"\u0300": "grave", "\u0301": "acute", "\u0303": "tilde", "\u0309": "hook",
               "\u0323": "dot"}
_INITIALS = ("ngh", "ng", "nh", "ch", "gh", "gi", "kh", "ph", "qu", "th", "tr",
             "b", "c", "d", "đ", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x", "")
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
    tokens = text.split()
    cores = [t.strip(_EDGE) for t in tokens]
    folded = [fold(c) for c in cores]
    changed = False
    i = 0
    while i < len(tokens):
        for key, words in _PHRASES:
            n = len(key)
            if tuple(folded[i : i + n]) != key:
                continue
            for j, word in enumerate(words):
                core = cores[i + j]
                want = word if core.isupper() or not core[1:] else word.capitalize()
                if core.islower():
                    want = word.lower()
                if _spelling_key(core) == _spelling_key(want):
                    continue
                tokens[i + j] = tokens[i + j].replace(core, want, 1)
                changed = True
            i += n - 1
            break
        i += 1
    return " ".join(tokens), changed


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
    number: str | None  # None: the number was not printed/read (handwritten gap)
    year: str | None
    notation: str
    span: tuple[int, int]  # of the whole "Số: …" match in the input text
    number_span: tuple[int, int] | None
    notation_span: tuple[int, int]
    corrected: bool = False  # notation spelling fixed (e.g. QD→QĐ)


# "Số" as OCR gives it, folded: so, s6, s0, sô→so; then ":" or a look-alike.
_NUMBER_RE = re.compile(
    r"(?<![a-z0-9])s\s?[o06]\s*[:;.,]?\s*"
    r"(?P<number>[0-9a-z]{1,8})?\s*[/|]\s*"
    r"(?:(?P<year>(?:19|20)\d\d)\s*[/|]\s*)?"
    r"(?P<notation>[a-z][a-z0-9&.]*(?:\s?-\s?[a-z0-9&.]+)*)",
)


def parse_number_line(text: str) -> NumberParse | None:
    """``Số: 60/KH-UBND``, ``Số:09/2025/TT-BKHCN``, ``S6: 60/KH-UBND``, ``Số: /UBND-TTHC``."""
    text = unicodedata.normalize("NFC", text)
    folded = fold(text)
    match = _NUMBER_RE.search(folded)
    # "Số" opens the number line; "… Nghị quyết số 19/NQ-CP …" in prose is a reference.
    if match is None or re.search(r"[^\W_]", folded[: match.start()]):
        return None
    number = match.group("number")
    number_value = None
    if number:
        number_value = number.translate(str.maketrans("oli", "011"))
        if not number_value.isdigit():  # handwriting read as letters: no number, flagged
            number_value, number = None, None
    n0, n1 = match.span("notation")
    notation = re.sub(r"\s+", "", text[n0:n1]).rstrip(".")
    parts = notation.split("-")
    corrected = False
    spelled = _valid_abbreviation(parts[0])
    if spelled and spelled != parts[0]:
        parts[0] = spelled
        corrected = True
    notation = "-".join(parts)
    return NumberParse(
        number=number_value,
        year=match.group("year"),
        notation=notation,
        span=match.span(),
        number_span=match.span("number") if number else None,
        notation_span=(n0, n1),
        corrected=corrected,
    )


@dataclass(frozen=True)
class DateParse:
    place: str | None
    date: date | None  # None: day/month/year do not make a date
    day_text: str
    month_text: str
    year_text: str
    span: tuple[int, int]
    place_span: tuple[int, int] | None
    leading_zero_ok: bool  # ND 30: day < 10 and months 1–2 are written with a leading 0


_DATE_RE = re.compile(
    r"(?:(?P<place>[^\W\d_][^,;:]*?)\s*[,.]?\s*)?"
    r"ng[aà]y\s*(?P<day>[0-9oOlI]{1,2})\s*[,.]?\s*"
    r"th[aá]ng\s*(?P<month>[0-9oOlI]{1,2})\s*[,.]?\s*"
    r"n[aă]m\s*(?P<year>[0-9oOlI]{4})"
)


def parse_date_line(text: str) -> DateParse | None:
    """``Vĩnh Phúc, ngày 19 tháng 03 năm 2025`` → place and 2025-03-19, diacritics optional."""
    text = unicodedata.normalize("NFC", text)
    folded = fold(text)
    match = _DATE_RE.search(folded)
    if match is None:
        return None
    digits = str.maketrans("oOlI", "0011")
    day_t, month_t, year_t = (match.group(g).translate(digits) for g in ("day", "month", "year"))
    try:
        value: date | None = date(int(year_t), int(month_t), int(day_t))
    except ValueError:
        value = None
    place = place_span = None
    if match.group("place"):
        p0, p1 = match.span("place")
        place = text[p0:p1].strip(" ,.-")
        place_span = (p0, p1)
        if not place:
            place = place_span = None
    zero_ok = (int(day_t) >= 10 or len(day_t) == 2) and (int(month_t) >= 3 or len(month_t) == 2)
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


def _lines_of(page: PageOcr, page_no: int) -> list[_Line]:
    lines = [_Line(page_no, i, line.text, line.bbox) for i, line in enumerate(page.lines)]
    for word in page.words:
        if 0 <= word.line < len(lines):
            lines[word.line].words.append(word)
    for line in lines:
        line.words.sort(key=lambda w: w.bbox[0])
        # Rebuild text from the words so that character offsets are exact.
        if line.words:
            pos, offsets = 0, []
            for w in line.words:
                offsets.append((pos, pos + len(w.text)))
                pos += len(w.text) + 1
            line.text = " ".join(w.text for w in line.words)
            line.offsets = offsets
    return [line for line in lines if line.text.strip()]


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
    lines = _lines_of(page, page_no)
    width, height = page.width_px or 1, page.height_px or 1
    motto = None
    for line in lines:
        if line.bbox[1] < 0.5 * height and similarity(line.text, MOTTO) >= settings.phrase_match:
            motto = line
            break
    numbers: list[tuple[float, _Line, NumberParse]] = []
    for line in lines:
        parsed = parse_number_line(line.text)
        if parsed is None:
            continue
        score = 0.0
        if line.centre_x < 0.5 * width:
            score += 2  # the number sits in the left header column
        if motto is not None and motto.bbox[1] <= line.bbox[1] <= motto.bbox[3] + 8 * motto.height:
            score += 2
        if _near_received_stamp(line, lines):
            score -= 4
        if parsed.number is None:
            score -= 0.5
        numbers.append((score, line, parsed))
    dates: list[tuple[float, _Line, DateParse]] = []
    for line in lines:
        parsed_date = parse_date_line(line.text)
        if parsed_date is None:
            continue
        score = 0.0
        if line.centre_x > 0.45 * width:
            score += 1
        if motto is not None and motto.bbox[1] <= line.bbox[1] <= motto.bbox[3] + 8 * motto.height:
            score += 2
        if parsed_date.date is not None:
            score += 1
        if _near_received_stamp(line, lines):
            score -= 4
        dates.append((score, line, parsed_date))
    best_number = max(numbers, key=lambda t: t[0], default=None)
    best_date = max(dates, key=lambda t: t[0], default=None)
    if best_number is not None and best_number[0] < 0:
        best_number = None
    if best_date is not None and best_date[0] < 0:
        best_date = None
    # Same row as the number is the strongest date evidence: prefer it when present.
    if best_number is not None:
        row = [
            t
            for t in dates
            if abs(t[1].bbox[1] - best_number[1].bbox[1]) < 1.5 * best_number[1].height
        ]
        if row:
            best_date = max(row, key=lambda t: t[0])
    return _Header(
        page=page_no,
        lines=lines,
        width=width,
        height=height,
        motto=motto,
        number=(best_number[1], best_number[2]) if best_number else None,
        date=(best_date[1], best_date[2]) if best_date else None,
    )


# --- field readers -------------------------------------------------------------------------
def _read_number(header: _Header, out: _Fields) -> None:
    if header.number is None:
        return
    line, parsed = header.number
    settings = out.settings
    notation_words = line.words_in(parsed.notation_span)
    note = "notation spelling corrected (Đ)" if parsed.corrected else None
    out.add("code_notation", parsed.notation, header.page, notation_words, note=note)
    if parsed.number is None:
        out.add(
            "code_number",
            "",
            header.page,
            line.words_in(parsed.span),
            confidence=0.0,
            review=True,
            note="number not read (handwritten or blank)",
        )
    else:
        words = line.words_in(parsed.number_span or parsed.span)
        conf = _confidence(words)
        review = conf < settings.min_number_confidence
        out.add(
            "code_number",
            parsed.number,
            header.page,
            words,
            review=review,
            note="digits read with low confidence (handwritten?)" if review else None,
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
        out.add(
            "issued_place",
            parsed.place,
            header.page,
            line.words_in(parsed.place_span or parsed.span),
        )
    number_words = [w for w in words if any(ch.isdigit() for ch in w.text)]
    digits_conf = _confidence(number_words)
    if parsed.date is None:
        out.add(
            "issued_date",
            f"{parsed.year_text}-{parsed.month_text}-{parsed.day_text}",
            header.page,
            words,
            confidence=0.0,
            review=True,
            note="not a valid date",
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
    out.add(
        "issued_date",
        parsed.date.isoformat(),
        header.page,
        words,
        confidence=min(_confidence(words), 1.0),
        review=review,
        note="; ".join(notes) or None,
    )


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
    block = [
        line
        for line in header.lines
        if line.bbox[3] <= bottom + 2
        and line.bbox[1] >= top_limit
        and line.bbox[2] < 0.62 * header.width
        and line.centre_x < 0.45 * header.width
        and _is_caps(line.text)
        and line is not header.motto
        and not re.search(r"[/:]|\bden\b", line.folded)  # number line, received stamp
    ]
    block.sort(key=lambda line: line.bbox[1])
    if not block:
        return
    texts = [_strip_marks(line.text) for line in block]
    # "ỦY BAN NHÂN DÂN / TỈNH X" is one organ over two lines; otherwise the first line is the
    # parent organ (cơ quan chủ quản) and the rest the issuing organ.
    one_organ = (
        len(block) >= 2
        and fold(texts[1]).startswith(_LEVEL_WORDS)
        and re.fullmatch(r"(uy ban nhan dan|hoi dong nhan dan|ubnd|hdnd)", fold(texts[0]).strip())
    )
    if len(block) == 1 or one_organ:
        organ_lines, parent = block, None
    else:
        parent, organ_lines = block[0], block[1:]
    if parent is not None:
        out.add("parent_organ", _strip_marks(parent.text), header.page, parent.words)
    organ_words = [w for line in organ_lines for w in line.words]
    out.add(
        "organ_name",
        " ".join(_strip_marks(line.text) for line in organ_lines),
        header.page,
        organ_words,
    )


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
        for line in candidates:
            if re.match(r"\s*v\s*/\s*v\b", line.folded) and line.centre_x < 0.5 * width:
                subject_lines = [line]
                for nxt in candidates[candidates.index(line) + 1 :]:
                    if (
                        nxt.centre_x >= 0.5 * width
                        or nxt.bbox[1] - subject_lines[-1].bbox[3] > 1.2 * max(line.height, 1)
                        or _BODY_START.match(nxt.folded)
                    ):
                        break
                    subject_lines.append(nxt)
                break
        if subject_lines:
            out.add("type_name", CONG_VAN, header.page, subject_lines[0].words[:1], confidence=0.9)
    if subject_lines:
        words = [w for line in subject_lines for w in line.words]
        out.add(
            "subject",
            " ".join(line.text.strip() for line in subject_lines),
            header.page,
            words,
            confidence=sum(w.confidence for w in words) / len(words) / 100 if words else 0.0,
        )


def _check_notation_type(out: _Fields) -> None:
    notation = out.items.get("code_notation")
    type_field = out.items.get("type_name")
    if notation is None:
        return
    implied = type_of_notation(notation.value)
    if type_field is None:
        if implied is not None:
            # No heading read: the notation says which type it is, but a human should confirm.
            out.add(
                "type_name",
                implied,
                notation.page,
                (),
                confidence=0.5,
                review=True,
                note=f"type inferred from notation {notation.value}",
                bbox=notation.bbox,
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
    if first.number is None or first.date is None:
        for index in order[1:]:
            other = _find_header(pages[index], index + 1, settings)
            if other.number is not None and (other.date is not None or first.number is None):
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
