"""Header-field extraction (requirements §8; issue 5 item 4, issue 10 item 3).

Parsers on OCR-noisy strings, and ``extract_fields`` on PageOcr built by hand with the
standard administrative layout (left header column, right motto column, centred type heading,
closing block). Covers: fuzzy/diacritic-insensitive anchors, notation vs type checks, flags for
handwritten or missing numbers, received stamps not read as the header, and a document whose
number and date are only on its last page.
"""

from __future__ import annotations

from datetime import date

import pytest

from digitize.extract import (
    ExtractSettings,
    extract_fields,
    is_vietnamese_syllable,
    match_doc_type,
    misread_words,
    parse_date_line,
    parse_number_line,
    restore_admin_words,
    type_of_notation,
)
from digitize.models import OcrLine, PageOcr, Word

W, H = 2480, 3508  # A4 at 300 dpi


# --- parsers -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "number", "year", "notation"),
    [
        ("Số: 60/KH-UBND", "60", None, "KH-UBND"),
        ("S6: 60/KH-UBND", "60", None, "KH-UBND"),
        ("Số:09/2025/TT-BKHCN", "09", "2025", "TT-BKHCN"),
        ("So: 1028/QD-UBND", "1028", None, "QĐ-UBND"),  # OCR lost the bar of Đ
        ("Số : 172 / HD-UBND", "172", None, "HD-UBND"),  # HD is HƯỚNG DẪN: not "repaired"
        ("Sô: 6589/HTQTCT-PC", "6589", None, "HTQTCT-PC"),
        ("Số: 22/TTr-UBND", "22", None, "TTr-UBND"),
    ],
)
def test_parse_number_line(text: str, number: str, year: str | None, notation: str) -> None:
    parsed = parse_number_line(text)
    assert parsed is not None
    assert (parsed.number, parsed.year, parsed.notation) == (number, year, notation)


def test_parse_number_line_handwritten_gap_has_no_number() -> None:
    parsed = parse_number_line("Số: /UBND-TTHC")
    assert parsed is not None and parsed.number is None and parsed.notation == "UBND-TTHC"


def test_parse_number_line_rejects_prose() -> None:
    assert parse_number_line("Số lượng hồ sơ tiếp nhận trong năm") is None


@pytest.mark.parametrize(
    ("text", "place", "iso", "zero_ok"),
    [
        ("Vĩnh Phúc, ngày 19 tháng 03 năm 2025", "Vĩnh Phúc", "2025-03-19", True),
        ("Vinh Phuc, ngay 19 thang 03 nam 2025", "Vinh Phuc", "2025-03-19", True),
        ("Tam Đảo, ngày 5 tháng 3 năm 2025", "Tam Đảo", "2025-03-05", False),
        ("Hà Nội, ngày 02 tháng 5 năm 2026", "Hà Nội", "2026-05-02", True),
        ("Phú Thọ, ngàyl0 tháng 01 năm 2024", "Phú Thọ", "2024-01-10", True),
    ],
)
def test_parse_date_line(text: str, place: str, iso: str, zero_ok: bool) -> None:
    parsed = parse_date_line(text)
    assert parsed is not None
    assert parsed.place == place
    assert parsed.date == date.fromisoformat(iso)
    assert parsed.leading_zero_ok is zero_ok


def test_parse_date_line_impossible_date() -> None:
    parsed = parse_date_line("Hà Nội, ngày 31 tháng 02 năm 2025")
    assert parsed is not None and parsed.date is None


def test_doc_type_matching_and_notation_types() -> None:
    assert match_doc_type("QUYÉT ĐINH") == ("QUYẾT ĐỊNH", pytest.approx(1.0))
    assert match_doc_type("KE HOACH")[0] == "KẾ HOẠCH"
    assert match_doc_type("Kế hoạch thực hiện") is None  # body text, not a heading
    assert type_of_notation("QĐ-UBND") == "QUYẾT ĐỊNH"
    assert type_of_notation("TTr-SNV") == "TỜ TRÌNH"
    assert type_of_notation("UBND-PC") is None  # công văn: organ abbreviation first


# --- synthetic pages -----------------------------------------------------------------------
def page(rows: list[tuple[str, int, int, float]], width: int = W, height: int = H) -> PageOcr:
    """A PageOcr from (text, x, y, word confidence) rows; words 30 px per character."""
    words: list[Word] = []
    lines: list[OcrLine] = []
    for index, (text, x, y, conf) in enumerate(rows):
        cursor = x
        line_words = []
        for token in text.split(" "):
            box = (cursor, y, cursor + 30 * len(token), y + 50)
            line_words.append(Word(text=token, bbox=box, confidence=conf, line=index))
            cursor = box[2] + 15
        words.extend(line_words)
        lines.append(OcrLine(text=text, bbox=(x, y, cursor - 15, y + 50), confidence=conf))
    return PageOcr(
        engine="tesseract",
        engine_version="test",
        language="vie",
        width_px=width,
        height_px=height,
        dpi=300,
        text="\n".join(r[0] for r in rows),
        words=tuple(words),
        lines=tuple(lines),
    )


def header_rows(
    number_line: str = "Số: 60/KH-UBND",
    date_line: str = "Vĩnh Phúc, ngày 19 tháng 03 năm 2025",
    type_line: str | None = "KẾ HOẠCH",
    number_conf: float = 95,
) -> list[tuple[str, int, int, float]]:
    rows = [
        ("UBND TỈNH PHÚ THỌ", 420, 230, 95),
        ("SỞ NỘI VỤ", 520, 290, 95),
        ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 1120, 230, 95),
        ("Độc lập - Tự do - Hạnh phúc", 1280, 300, 95),
        (number_line, 470, 410, number_conf),
        (date_line, 1200, 410, 93),
    ]
    if type_line:
        rows += [
            (type_line, 1100, 600, 96),
            ("Về việc tổ chức lập hồ sơ", 900, 660, 95),
            ("và nộp lưu hồ sơ, tài liệu", 920, 720, 95),
        ]
    rows += [("Căn cứ Luật Lưu trữ ngày 21 tháng 6 năm 2024;", 500, 850, 95)]
    rows += [
        ("Nội dung của văn bản được trình bày ở đây cho đủ dài.", 360, 920 + i * 70, 95)
        for i in range(5)
    ]
    return rows


def closing_rows() -> list[tuple[str, int, int, float]]:
    return [
        ("Nơi nhận:", 350, 2300, 95),
        ("KT. GIÁM ĐỐC", 1500, 2290, 95),
        ("- Như trên;", 350, 2360, 95),
        ("PHÓ GIÁM ĐỐC", 1490, 2350, 95),
        ("- UBND các xã, phường;", 350, 2420, 95),
        ("- Lưu: VT, VP.", 350, 2480, 95),
        ("Nguyễn Văn An", 1520, 2700, 92),
    ]


def by_name(fields) -> dict:
    return {f.name: f for f in fields}


def test_standard_header_fields() -> None:
    fields = by_name(extract_fields([page(header_rows() + closing_rows())]))
    assert fields["parent_organ"].value == "UBND TỈNH PHÚ THỌ"
    assert fields["organ_name"].value == "SỞ NỘI VỤ"
    assert fields["code_number"].value == "60"
    assert fields["code_notation"].value == "KH-UBND"
    assert fields["issued_place"].value == "Vĩnh Phúc"
    assert fields["issued_date"].value == "2025-03-19"
    assert fields["type_name"].value == "KẾ HOẠCH"
    assert fields["subject"].value == "Về việc tổ chức lập hồ sơ và nộp lưu hồ sơ, tài liệu"
    assert fields["signer_position"].value == "KT. GIÁM ĐỐC / PHÓ GIÁM ĐỐC"
    assert fields["signer_full_name"].value == "Nguyễn Văn An"
    assert fields["recipients"].value.splitlines() == [
        "Như trên;",
        "UBND các xã, phường;",
        "Lưu: VT, VP.",
    ]
    for name in ("code_number", "code_notation", "issued_date", "type_name", "organ_name"):
        assert not fields[name].needs_review, name
        assert fields[name].page == 1 and fields[name].confidence > 0.9
    # The number's box is the box of the word holding it ("60/KH-UBND", after "Số:").
    assert fields["code_number"].bbox == (575, 410, 875, 460)


def test_one_organ_over_two_lines() -> None:
    rows = header_rows()
    rows[0] = ("ỦY BAN NHÂN DÂN", 440, 230, 95)
    rows[1] = ("TỈNH VĨNH PHÚC", 460, 290, 95)
    fields = by_name(extract_fields([page(rows)]))
    assert "parent_organ" not in fields
    assert fields["organ_name"].value == "ỦY BAN NHÂN DÂN TỈNH VĨNH PHÚC"


def test_ocr_noise_without_diacritics_still_reads() -> None:
    rows = header_rows("S6: 60/KH-UBND", "Vinh Phuc, ngay 19 thang 03 nam 2025", "KE HOACH")
    rows[2] = ("CONG HOA XA HOI CHU NGHIA VIET NAM", 1120, 230, 80)
    fields = by_name(extract_fields([page(rows)]))
    assert fields["code_number"].value == "60"
    assert fields["issued_date"].value == "2025-03-19"
    assert fields["type_name"].value == "KẾ HOẠCH"


def test_notation_type_disagreement_is_flagged() -> None:
    fields = by_name(extract_fields([page(header_rows("Số: 60/QĐ-UBND", type_line="KẾ HOẠCH"))]))
    assert fields["code_notation"].needs_review and fields["type_name"].needs_review
    assert "QUYẾT ĐỊNH" in (fields["code_notation"].note or "")


def test_handwritten_gap_in_number_is_flagged() -> None:
    fields = by_name(extract_fields([page(header_rows("Số: /UBND-TTHC", type_line=None))]))
    assert fields["code_number"].needs_review and fields["code_number"].value == ""
    assert fields["code_notation"].value == "UBND-TTHC"


def test_low_confidence_digits_are_flagged_not_trusted() -> None:
    fields = by_name(extract_fields([page(header_rows(number_conf=41))]))
    assert fields["code_number"].needs_review
    assert fields["code_number"].confidence < 0.6


def test_day_without_leading_zero_is_flagged() -> None:
    fields = by_name(
        extract_fields([page(header_rows(date_line="Phú Thọ, ngày 5 tháng 3 năm 2025"))])
    )
    assert fields["issued_date"].value == "2025-03-05"
    assert fields["issued_date"].needs_review


def test_cong_van_from_vv_subject() -> None:
    rows = header_rows("Số: 717/UBND-PC", type_line=None)
    rows += [
        ("V/v hướng dẫn thực hiện tiếp", 350, 480, 95),
        ("nhận hồ sơ thủ tục hành chính", 380, 540, 95),
        ("Kính gửi: Các sở, ban, ngành tỉnh;", 880, 720, 95),
    ]
    fields = by_name(extract_fields([page(rows)]))
    assert fields["type_name"].value == "CÔNG VĂN" and not fields["type_name"].needs_review
    assert fields["subject"].value == "V/v hướng dẫn thực hiện tiếp nhận hồ sơ thủ tục hành chính"
    assert not fields["code_notation"].needs_review


def test_received_stamp_number_is_not_the_header() -> None:
    """Issue 10: a "CÔNG VĂN ĐẾN" stamp's "Số" must not replace the document number."""
    rows = header_rows("Số: 299/UBND-TTHC", type_line=None)
    rows += [
        ("CÔNG VĂN ĐẾN", 300, 1500, 60),
        ("Số: 1234/CV-ĐẾN", 300, 1560, 45),
        ("Ngày: 17/01/2025", 300, 1620, 45),
    ]
    fields = by_name(extract_fields([page(rows)]))
    assert fields["code_number"].value == "299"


def test_number_and_date_on_last_page_only() -> None:
    """Issue 10: consolidated texts carry number and date in the closing block."""
    first = page(
        [
            ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 1120, 230, 95),
            ("Độc lập - Tự do - Hạnh phúc", 1280, 300, 95),
            ("THÔNG TƯ", 1150, 600, 95),
            ("Quy định và hướng dẫn tổ chức lễ tang", 800, 660, 95),
        ]
        + [
            ("Nội dung của văn bản được trình bày ở đây cho đủ dài.", 360, 900 + i * 70, 95)
            for i in range(5)
        ]
    )
    middle = page([("Nội dung tiếp theo của văn bản.", 360, 300, 95)])
    last = page(
        [
            ("BỘ QUỐC PHÒNG", 450, 1800, 95),
            ("XÁC THỰC VĂN BẢN HỢP NHẤT", 1200, 1800, 95),
            ("Số: 46/VBHN-BQP", 450, 1870, 90),
            ("Hà Nội, ngày 04 tháng 5 năm 2026", 1200, 1870, 90),
        ]
    )
    fields = by_name(extract_fields([first, middle, last]))
    assert fields["code_number"].value == "46" and fields["code_number"].page == 3
    assert fields["issued_date"].value == "2026-05-04" and fields["issued_date"].page == 3
    assert fields["code_number"].needs_review  # off page 1: a human confirms it


def test_no_header_means_no_fields() -> None:
    """Requirements §8: not in the administrative layout → the extractor does not apply."""
    body = page([("Giấy chứng nhận quyền sử dụng đất", 600, 400, 95)])
    assert extract_fields([body]) == ()
    assert extract_fields([page(header_rows())], ExtractSettings(enabled=False)) == ()


# --- issue 10: real-document patterns ----------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "notation", "read_as"),
    [
        ("Số: 0+ /QĐ-BCĐ138", "QĐ-BCĐ138", "0+"),  # handwritten number read as a scrawl
        ("Số: 4/35 /SGDĐT-CTrTT", "SGDĐT-CTrTT", "4/35"),  # its stroke read as a slash
        ("Só:#4 /TTr-UBND", "TTr-UBND", "#4"),
    ],
)
def test_scrawled_number_gives_no_number(text: str, notation: str, read_as: str) -> None:
    parsed = parse_number_line(text)
    assert parsed is not None
    assert (parsed.number, parsed.notation, parsed.number_text) == (None, notation, read_as)


def test_number_line_without_so_anchor_and_prose_reference() -> None:
    lone = parse_number_line("/CT-UBND")
    assert lone is not None and not lone.anchored and lone.notation == "CT-UBND"
    assert parse_number_line("số 15/2020/TT-BGDĐT ngày 26 tháng 5 năm 2020 và được") is None
    assert parse_number_line("Số: 23 /BC-UBND").number_in_blank
    assert not parse_number_line("Số: 23/BC-UBND").number_in_blank


@pytest.mark.parametrize(
    ("text", "place", "partial"),
    [
        ("Quảng Ngãi, tháng 02 năm 2025", "Quảng Ngãi", "2025-02-??"),  # day and "ngày" lost
        ("Quảng Ngãi, ngày0B tháng 02 năm 2025", "Quảng Ngãi", "2025-02-??"),
        ("Hà Nội ngày 0? tháng 2# năm 2026", "Hà Nội", "2026-??-??"),
        ("Hà Nội, ngày ØJ) tháng năm 2026", "Hà Nội", "2026-??-??"),
    ],
)
def test_date_with_handwritten_gaps_parses_without_a_date(
    text: str, place: str, partial: str
) -> None:
    parsed = parse_date_line(text)
    assert parsed is not None and parsed.date is None
    assert parsed.place == place and parsed.partial == partial


def test_vietnamese_syllables_and_misreads() -> None:
    for word in ("quyết", "nghĩa", "khuya", "gì", "Ủy", "uỷ", "hoà", "quỳnh", "THUẾ"):
        assert is_vietnamese_syllable(word), word
    # a stop final without sắc/nặng, "ue" after th, two tone marks
    for word in ("quyêt", "THUE", "tiếpp", "hoảà"):
        assert not is_vietnamese_syllable(word), word
    assert misread_words("V/v công bô TTHC và giải quyêt UBND-TTHC") == ["quyêt"]


def test_admin_names_get_their_diacritics_back() -> None:
    assert restore_admin_words("THÀNH PHÓ HÒ CHÍ MINH") == ("THÀNH PHỐ HỒ CHÍ MINH", True)
    assert restore_admin_words("TĨNH QUANG NGAI") == ("TỈNH QUẢNG NGÃI", True)
    assert restore_admin_words("UỶ BAN NHÂN DÂN") == ("UỶ BAN NHÂN DÂN", False)  # variant kept
    assert restore_admin_words("Quảng Ngõi") == ("Quảng Ngõi", False)  # not a known name


def test_real_layout_merged_motto_lost_day_and_scrawled_number() -> None:
    """Issue 10: organ and motto on one engine line, "Số:" and the notation as two pieces with
    the handwritten number lost between them, the date row cut where the day was written."""
    rows = [
        ("UBND TỈNH QUẢNG NGÃI CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 410, 240, 94),
        ("BAN CHỈ ĐẠO 138", 506, 305, 93),
        ("Độc lập - Tự do - Hạnh phúc", 1309, 318, 95),
        ("Số:", 494, 418, 96),
        ("/QĐ-BCĐ138", 700, 418, 47),
        ("Quảng Ngãi,", 1224, 434, 95),
        ("tháng 02 năm 2025", 1738, 434, 96),
        ("QUYẾT ĐỊNH", 1119, 584, 93),
        ("Về việc công nhận địa bàn trọng điểm", 720, 654, 96),
        ("Căn cứ Quyết định số 1667/QĐ-UBND ngày 08/11/2023 của Chủ tịch", 551, 800, 95),
    ]
    fields = by_name(extract_fields([page(rows)]))
    assert fields["parent_organ"].value == "UBND TỈNH QUẢNG NGÃI"
    assert fields["organ_name"].value == "BAN CHỈ ĐẠO 138"
    assert fields["code_notation"].value == "QĐ-BCĐ138" and fields["code_notation"].needs_review
    assert fields["code_number"].value == "" and fields["code_number"].needs_review
    assert fields["issued_date"].value == "2025-02-??" and fields["issued_date"].needs_review
    assert fields["issued_place"].value == "Quảng Ngãi"
    assert fields["type_name"].value == "QUYẾT ĐỊNH" and not fields["type_name"].needs_review


def test_number_written_into_the_blank_is_flagged() -> None:
    fields = by_name(extract_fields([page(header_rows("Số: 23 /KH-UBND"))]))
    assert fields["code_number"].value == "23" and fields["code_number"].needs_review


def test_prose_reference_is_not_the_number_line() -> None:
    """A body line starting "số 15/2020/TT-…" must not replace a header number left blank."""
    rows = header_rows("/KH-UBND")
    rows.append(("số 15/2020/TT-BGDĐT ngày 26 tháng 5 năm 2020 và được sửa đổi", 360, 1400, 95))
    fields = by_name(extract_fields([page(rows)]))
    assert fields["code_notation"].value == "KH-UBND" and fields["code_notation"].needs_review
    assert fields["issued_date"].value == "2025-03-19"


def test_misread_subject_and_organ_words_are_flagged() -> None:
    rows = header_rows("Số: 717/UBND-PC", type_line=None)
    rows[1] = ("CỤC THUE", 520, 290, 90)
    rows += [("V/v công bố và giải quyêt TTHC", 350, 480, 93)]
    fields = by_name(extract_fields([page(rows)]))
    assert fields["organ_name"].value == "CỤC THUẾ"  # restored from the organ names
    assert not fields["organ_name"].needs_review
    assert fields["subject"].needs_review and "quyêt" in (fields["subject"].note or "")


def test_cong_van_without_vv_is_inferred_and_flagged() -> None:
    rows = header_rows("Số: 464/TTg-CĐS", type_line=None)
    rows += [("triển khai các Nghị quyết cắt giảm,", 350, 480, 95)]
    fields = by_name(extract_fields([page(rows)]))
    assert fields["type_name"].value == "CÔNG VĂN" and fields["type_name"].needs_review
    assert fields["subject"].value.startswith("triển khai") and fields["subject"].needs_review


def test_consolidated_text_keeps_its_heading_type() -> None:
    rows = header_rows("Số: 46/VBHN-BQP", type_line="THÔNG TƯ")
    fields = by_name(extract_fields([page(rows)]))
    assert fields["type_name"].value == "THÔNG TƯ (VĂN BẢN HỢP NHẤT)"
    assert not fields["code_notation"].needs_review
