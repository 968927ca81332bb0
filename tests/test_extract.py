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
    match_doc_type,
    parse_date_line,
    parse_number_line,
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
