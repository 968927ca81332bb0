"""Vietnamese syllable model (a word that is no syllable is a misread) and the administrative
names whose diacritics are restored when OCR lost or changed them."""

from __future__ import annotations

import unicodedata

from digitize.extract.text import fold

# --- Vietnamese syllables: a word that is none is a misread ---------------------------------
# Tone marks (combining, after NFD); the vowel-quality marks (circumflex, breve, horn) stay.
TONE_MARKS = {
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
    tones = [TONE_MARKS[ch] for ch in nfd if ch in TONE_MARKS]
    base = unicodedata.normalize("NFC", "".join(ch for ch in nfd if ch not in TONE_MARKS))
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
EDGE_PUNCT = ".,;:!?()[]\"'“”-–—_|"


def restore_admin_words(text: str) -> tuple[str, bool]:
    """``THÀNH PHÓ HÒ CHÍ MINH`` → ``THÀNH PHỐ HỒ CHÍ MINH``: words of a known administrative
    phrase get the phrase's diacritics (case as in ``text``). Returns the text and whether
    anything changed. Spelling variants (ỦY/UỶ, HÒA/HOÀ) are left as printed."""
    restored, changed, _ = restore_with_known(text)
    return restored, changed


def restore_with_known(text: str) -> tuple[str, bool, set[str]]:
    """``restore_admin_words`` plus the folded words that belong to a known phrase."""
    tokens = text.split()
    cores = [t.strip(EDGE_PUNCT) for t in tokens]
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
    base = unicodedata.normalize("NFC", "".join(ch for ch in nfd if ch not in TONE_MARKS))
    return base, tuple(sorted(ch for ch in nfd if ch in TONE_MARKS))
