"""The visible note (R16, R18–R21): scan time in Vietnam time and Vietnamese form by default
(ISO 8601 on request), a serif face with Vietnamese coverage, the box within 70 × 20 mm at
8–10 pt whatever the name's length, the manifest's time kept in ISO 8601 with the offset.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digitize.errors import SignerConfigError, SigningError
from digitize.sign import (
    STAMP_MAX_H_PT,
    STAMP_MAX_W_PT,
    SigningSettings,
    plan_stamp,
    prepare_pdf,
    resolve_font,
    shown_time_text,
    text_width_pt,
)
from tests import helpers_pki
from tests.helpers_pki import PkiServices, make_pdfa_sample

vn_pki = helpers_pki.vn_pki

A4 = (0.0, 0.0, 595.276, 841.89)
SCAN_TIME = datetime(2026, 11, 30, 4, 34, 5, tzinfo=UTC)  # 11:34:05 in Hà Nội


def test_scan_time_shown_in_vietnam_time() -> None:
    """R21 + issue 14: ``11:34 ngày 30/11/2026`` by default, ISO 8601 with +07:00 on request."""
    assert shown_time_text(SCAN_TIME) == "11:34 ngày 30/11/2026"
    assert shown_time_text(SCAN_TIME, "iso") == "2026-11-30T11:34:05+07:00"
    late = datetime(2026, 12, 31, 17, 5, tzinfo=UTC)  # already 1 January in Vietnam
    assert shown_time_text(late) == "00:05 ngày 01/01/2027"


@pytest.mark.parametrize("time_format", ["vn", "iso"])
def test_profile_chooses_the_time_format(
    vn_pki: PkiServices, tmp_path: Path, time_format: str
) -> None:
    """``sign.time_format`` decides the note; the record keeps the exact time (+07:00)."""
    prepared = prepare_pdf(make_pdfa_sample(tmp_path / "in.pdf"), tmp_path / "p.pdf",
                           vn_pki.cert_path("hoa"), SCAN_TIME,
                           SigningSettings(time_format=time_format))  # fmt: skip
    expected = "11:34 ngày 30/11/2026" if time_format == "vn" else "2026-11-30T11:34:05+07:00"
    assert prepared.note_lines[-1] == f"Thời gian sao chụp: {expected}"
    assert prepared.scan_time_shown.isoformat() == "2026-11-30T11:34:05+07:00"


def test_naive_scan_time_is_refused(vn_pki: PkiServices, tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="timezone"):
        prepare_pdf(make_pdfa_sample(tmp_path / "in.pdf"), tmp_path / "p.pdf",
                    vn_pki.cert_path("hoa"), datetime(2026, 11, 30, 11, 34))  # fmt: skip


@pytest.mark.parametrize(
    "name",
    ["Lê Hoa", "Tôn Nữ Thị Phương Thảo", "Nguyễn Hoàng Bảo Khánh Tôn Nữ Thị Phương Thảo Linh"],
)
def test_note_fits_its_box(name: str) -> None:
    """R19/R20: whatever the name's length, the box stays ≤ 70 × 20 mm at the top-left corner,
    the text 8–10 pt, every line inside the box's margins."""
    font = resolve_font(None)
    layout = plan_stamp(A4, name, shown_time_text(SCAN_TIME), font)
    x0, y0, x1, y1 = layout.box
    assert x1 - x0 <= STAMP_MAX_W_PT + 0.01 and y1 - y0 <= STAMP_MAX_H_PT + 0.01
    assert 8.0 <= layout.font_size <= 10.0
    for line in layout.lines:
        assert text_width_pt(line, font, layout.font_size) <= x1 - x0 - 2 * layout.margin
    assert len(layout.lines) * layout.font_size * 1.25 <= y1 - y0


def test_note_face_is_a_vietnamese_serif(tmp_path: Path) -> None:
    """R16: a serif face by default (Noto Serif, from fonts-noto-core), every Vietnamese letter
    present; a font without Vietnamese is refused by name."""
    from fontTools.ttLib import TTFont

    font = resolve_font(None)
    assert "Serif" in Path(font).name, font
    family = TTFont(font)["name"].getDebugName(1)
    assert family is not None and "Serif" in family
    latin_only = tmp_path / "latin.ttf"
    subset_font(font, latin_only)
    with pytest.raises(SignerConfigError, match="Vietnamese"):
        resolve_font(str(latin_only))


def subset_font(source: str, target: Path) -> None:
    from fontTools import subset

    options = subset.Options()
    f = subset.load_font(source, options)
    sub = subset.Subsetter(options)
    sub.populate(unicodes=range(0x20, 0x7F))
    sub.subset(f)
    f.save(str(target))
