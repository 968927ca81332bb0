"""OCR stage (R15): real tesseract on small rendered crops, through the engine seam.

Covers: text read back equals the text we rendered (the expected value is the renderer's input,
never OCR output), word boxes where the words were drawn, NFC, confidence flags on a degraded
crop, ``no_text`` on a blank page, the failure path (flag, or ``OcrError`` when strict), the
two-column reading order, the sidecar/hOCR/JSON writers, and the engine seam: engines chosen
by name from the settings (registry), the same engine object reused, engine options living
with the engine (legacy flat keys still accepted), the OSD orientation reading mapped to our
turn convention, and importing or using the OCR package leaving the caller's environment as
it was (no ``OMP_THREAD_LIMIT`` leak).
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from digitize.errors import OcrError
from digitize.models import Severity
from digitize.ocr import (
    OcrSettings,
    RawWord,
    TesseractEngine,
    assemble,
    engine_names,
    get_engine,
    ocr_page,
    register_engine,
    remove_rules,
    write_hocr,
    write_ocr_json,
    write_sidecar,
)
from digitize.settings import TesseractSettings

FONT = Path("/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf")
TESSDATA = Path("/usr/share/tesseract-ocr/5/tessdata")
DPI = 300
LINES = [
    "Ủy ban nhân dân tỉnh Vĩnh Phúc",
    "Kế hoạch thực hiện thủ tục hành chính",
    "Bảo đảm sự phối hợp chặt chẽ giữa các cơ quan",
]


@pytest.fixture(scope="module", autouse=True)
def _tools_present() -> None:
    if not FONT.is_file():
        pytest.fail(f"font {FONT} missing: install fonts-noto-core")
    if not (TESSDATA / "vie.traineddata").is_file():
        pytest.fail(f"{TESSDATA}/vie.traineddata missing: install tesseract-ocr-vie")


def render(
    lines: list[str], size_pt: float = 13, width: int = 1900, left: int = 120, top: int = 120
) -> tuple[np.ndarray, list[tuple[str, tuple[int, int, int, int]]]]:
    """A 300-dpi gray crop with the lines drawn, and the true box of every word drawn."""
    font = ImageFont.truetype(str(FONT), round(size_pt * DPI / 72))
    step = round(size_pt * DPI / 72 * 1.6)
    image = Image.new("L", (width, top * 2 + step * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    boxes = []
    space = draw.textlength(" ", font=font)
    for i, line in enumerate(lines):
        x, y = left, top + i * step
        for word in line.split(" "):
            draw.text((x, y), word, font=font, fill=0)
            boxes.append((word, tuple(int(v) for v in draw.textbbox((x, y), word, font=font))))
            x += draw.textlength(word, font=font) + space
    return np.asarray(image).copy(), boxes


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def test_reads_rendered_vietnamese_lines_in_nfc() -> None:
    """R15: printed Vietnamese with stacked diacritics comes back exactly, in NFC."""
    pixels, _ = render(LINES)
    page = ocr_page(pixels, DPI)
    assert norm(page.text) == norm(" ".join(LINES))
    assert page.text == unicodedata.normalize("NFC", page.text)
    assert [line.text for line in page.lines] == LINES
    assert page.engine == "tesseract" and page.language == "vie"
    assert (page.width_px, page.height_px) == (pixels.shape[1], pixels.shape[0])
    assert page.mean_confidence > 80 and not page.needs_review and not page.flags
    assert page.hocr and "ocrx_word" in page.hocr


def test_word_boxes_lie_on_the_rendered_words() -> None:
    pixels, truth = render(LINES)
    page = ocr_page(pixels, DPI)
    assert len(page.words) == len(truth)
    for word, (text, box) in zip(page.words, truth, strict=True):
        assert word.text == text
        ix = min(word.bbox[2], box[2]) - max(word.bbox[0], box[0])
        iy = min(word.bbox[3], box[3]) - max(word.bbox[1], box[1])
        inter = max(0, ix) * max(0, iy)
        union = (
            (word.bbox[2] - word.bbox[0]) * (word.bbox[3] - word.bbox[1])
            + (box[2] - box[0]) * (box[3] - box[1])
            - inter
        )
        assert inter / union > 0.5, (text, word.bbox, box)
        assert page.lines[word.line].text.split(" ").count(text) >= 1


def test_colour_page_with_red_stamp_reads_the_black_text() -> None:
    """A red seal over colour text is dropped for OCR (red channel); the words stay."""
    gray, _ = render(LINES[:1])
    rgb = np.stack([gray] * 3, axis=2).copy()
    h, w = gray.shape
    yy, xx = np.ogrid[:h, :w]
    ring = np.abs(np.hypot(yy - h / 2, xx - w / 3) - h / 2.5) < 12
    rgb[ring] = np.minimum(rgb[ring], (220, 30, 40))  # ink multiplies, as a real seal
    page = ocr_page(rgb, DPI)
    assert norm(page.text) == norm(LINES[0])


def test_degraded_crop_is_flagged_for_review() -> None:
    """R15: a page the engine reads poorly is flagged, never silently accepted."""
    pixels, _ = render(LINES, size_pt=6)
    small = np.asarray(Image.fromarray(pixels).resize((pixels.shape[1] // 3, pixels.shape[0] // 3)))
    rng = np.random.default_rng(5)
    noisy = np.clip(small.astype(int) + rng.normal(0, 70, small.shape), 0, 255).astype(np.uint8)
    page = ocr_page(noisy, DPI / 3, OcrSettings(second_reading=False))
    assert page.needs_review
    assert any(f.code in ("low_ocr_confidence", "no_text") for f in page.flags)
    if page.words:
        assert page.mean_confidence < 70 or page.low_confidence_share > 0.25


def test_thresholds_come_from_settings() -> None:
    pixels, _ = render(LINES[:2])
    strict_floor = OcrSettings(min_page_confidence=99.9)
    page = ocr_page(pixels, DPI, strict_floor)
    assert page.needs_review
    flag = next(f for f in page.flags if f.code == "low_ocr_confidence")
    assert flag.severity == Severity.REVIEW and "mean word confidence" in flag.message


def test_blank_page_gives_no_text_flag_not_error() -> None:
    blank = np.full((800, 600), 255, np.uint8)
    page = ocr_page(blank, DPI, page=3)
    assert page.text == "" and page.words == ()
    assert [f.code for f in page.flags] == ["no_text"]
    assert page.flags[0].page == 3


def test_engine_failure_becomes_a_flag(tmp_path: Path) -> None:
    pixels, _ = render(LINES[:1])
    settings = OcrSettings(
        tesseract=TesseractSettings(tessdata_dir=str(tmp_path)), page_label="scan.tif"
    )
    page = ocr_page(pixels, DPI, settings, page=2)
    assert page.text == "" and page.needs_review
    assert page.flags[0].code == "ocr_failed" and str(tmp_path) in page.flags[0].message


def test_engine_failure_raises_when_strict(tmp_path: Path) -> None:
    pixels, _ = render(LINES[:1])
    shutil.copy(TESSDATA / "osd.traineddata", tmp_path / "osd.traineddata")
    (tmp_path / "vie.traineddata").write_bytes(b"not a model")
    settings = OcrSettings(tessdata_dir=str(tmp_path), strict=True, page_label="scan.tif")
    with pytest.raises(OcrError) as info:
        ocr_page(pixels, DPI, settings, page=4)
    assert "scan.tif (page 4)" in str(info.value)


def test_two_column_rows_read_column_by_column() -> None:
    """Header layout: organ | motto on the same rows are not merged into one line."""
    font = ImageFont.truetype(str(FONT), round(13 * DPI / 72))
    image = Image.new("L", (2480, 700), 255)
    draw = ImageDraw.Draw(image)
    left = ["ỦY BAN NHÂN DÂN", "TỈNH VĨNH PHÚC"]
    right = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        draw.text((300, 150 + 70 * i), a, font=font, fill=0)
        draw.text((1250, 150 + 70 * i), b, font=font, fill=0)
    page = ocr_page(np.asarray(image).copy(), DPI)
    assert [line.text for line in page.lines] == left + right


def test_engine_reports_version_and_is_reused() -> None:
    engine = TesseractEngine()
    assert engine.name == "tesseract" and re.match(r"\d+\.\d+", engine.version)
    pixels, _ = render(LINES[:1])
    first = engine.recognise_raw(pixels, DPI)
    assert norm(" ".join(w.text for w in first.words)) == norm(LINES[0])
    assert engine._api() is engine._api()
    assert get_engine(OcrSettings()) is get_engine(OcrSettings(min_page_confidence=50))


def test_output_writers(tmp_path: Path) -> None:
    pixels, _ = render(LINES[:2])
    pages = [ocr_page(pixels, DPI), ocr_page(np.full((300, 300), 255, np.uint8), DPI)]
    sidecar = write_sidecar(pages, tmp_path / "out.txt").read_text(encoding="utf-8")
    assert sidecar.split("\f")[0].splitlines() == LINES[:2]
    hocr = write_hocr(pages[0], tmp_path / "p1.hocr").read_text(encoding="utf-8")
    assert "ocr_page" in hocr and "Vĩnh" in hocr
    data = json.loads(write_ocr_json(pages, tmp_path / "ocr.json").read_text(encoding="utf-8"))
    assert [p["page"] for p in data["pages"]] == [1, 2]
    assert data["pages"][0]["words"][0]["text"] == LINES[0].split()[0]
    assert data["pages"][1]["flags"][0]["code"] == "no_text"


def test_stamp_frame_is_erased_for_ocr_and_underlines_are_not() -> None:
    """Issue 10: a received stamp's box printed over the body (vertical + horizontal rules)
    is erased from the OCR input; its text reads. A page with only an underline is untouched."""
    pixels, boxes = render(LINES)
    framed = pixels.copy()
    x0, y0 = boxes[0][1][0] - 30, boxes[0][1][1] - 40
    x1, y1 = x0 + 700, y0 + 260  # crosses the first two lines, like a "CV ĐẾN" box
    framed[y0 : y0 + 4, x0:x1] = 0
    framed[y1 - 4 : y1, x0:x1] = 0
    framed[y0:y1, x0 : x0 + 4] = 0
    framed[y0:y1, x1 - 4 : x1] = 0
    cleaned = remove_rules(framed, DPI)
    assert cleaned[y0 + 2, x0 + 300] > 128 and cleaned[y0 + 100, x1 - 2] > 128  # frame gone
    text_ink = (pixels < 128).sum()
    assert abs(int((cleaned < 128).sum()) - int(text_ink)) < 0.05 * text_ink  # text kept
    page = ocr_page(framed, DPI)
    assert norm(page.text) == norm(" ".join(LINES))

    underlined = pixels.copy()
    underlined[y1 : y1 + 4, 100:1500] = 0
    assert remove_rules(underlined, DPI) is underlined


def test_row_of_only_seal_strokes_does_not_break_layout() -> None:
    """A printed row whose pieces are all strokes without letters (seal, signature) is
    dropped; it used to leave an empty row that crashed the reading-order pass."""
    from types import SimpleNamespace

    words = (
        RawWord("Kính", (100, 100, 200, 140), 95, 1, (1, 1, 1)),
        RawWord("gửi", (210, 100, 300, 140), 95, 1, (1, 1, 1)),
        RawWord("~~", (100, 300, 160, 340), 50, 2, (2, 1, 1)),
        RawWord("—", (900, 300, 960, 340), 50, 3, (3, 1, 1)),
    )
    engine = SimpleNamespace(name="tesseract", version="test", language="vie")
    page = assemble(words, engine, (1200, 600), 300)  # type: ignore[arg-type]
    assert page.text == "Kính gửi"


# --- the engine seam ----------------------------------------------------------------------------
class _CountingEngine:
    """A second engine registered by name: real tesseract underneath, counting its calls."""

    name = "counting"
    language = "vie"

    def __init__(self, settings: OcrSettings) -> None:
        self.inner = TesseractEngine(settings.language)
        self.version = f"counting-{self.inner.version}"
        self.calls = 0
        self.options = dict(settings.engine_options)

    def recognise_raw(self, pixels, dpi, hints=None):  # type: ignore[no-untyped-def]
        self.calls += 1
        return self.inner.recognise_raw(pixels, dpi, hints)

    def get_orientation(self, pixels, dpi):  # type: ignore[no-untyped-def]
        return self.inner.get_orientation(pixels, dpi)


def test_a_registered_engine_is_chosen_by_the_settings() -> None:
    """A new engine plugs in by name; the stage uses it without any change elsewhere."""
    register_engine("counting", _CountingEngine)
    assert "counting" in engine_names()
    settings = OcrSettings(engine="counting", engine_options={"mode": "fast"})
    pixels, _ = render(LINES[:2])
    page = ocr_page(pixels, DPI, settings)
    engine = get_engine(settings)
    assert isinstance(engine, _CountingEngine) and engine.calls >= 1
    assert engine.options == {"mode": "fast"}
    assert page.engine == "counting" and page.engine_version.startswith("counting-")
    assert norm(page.text) == norm(" ".join(LINES[:2]))


def test_unknown_engine_is_a_flag_or_an_error_naming_the_choices() -> None:
    pixels, _ = render(LINES[:1])
    page = ocr_page(pixels, DPI, OcrSettings(engine="no-such-engine"))
    assert page.flags[0].code == "ocr_failed" and "no-such-engine" in page.flags[0].message
    with pytest.raises(OcrError) as info:
        ocr_page(pixels, DPI, OcrSettings(engine="no-such-engine", strict=True))
    assert "tesseract" in (info.value.hint or "")


def test_engine_options_live_with_the_engine_and_old_keys_still_load() -> None:
    old = OcrSettings.model_validate({"tessdata_dir": "/x", "page_segmentation_mode": 4})
    assert old.tesseract == TesseractSettings(tessdata_dir="/x", page_segmentation_mode=4)
    assert OcrSettings.model_validate({"retry_binarised": False}).second_reading is False
    assert "tessdata_dir" not in OcrSettings.model_fields


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_osd_turn_matches_our_convention(turn: int) -> None:
    """The engine's orientation reading of a page turned counter-clockwise by ``turn``
    (np.rot90, as the corpus generator turns pages) names that turn."""
    lines = [
        "Ủy ban nhân dân tỉnh Vĩnh Phúc ban hành kế hoạch thực hiện",
        "thủ tục hành chính trên địa bàn tỉnh trong năm hai nghìn",
        "Bảo đảm sự phối hợp chặt chẽ giữa các cơ quan chuyên môn",
    ] * 4
    pixels, _ = render(lines, size_pt=12, width=2400)
    turned = np.ascontiguousarray(np.rot90(pixels, k=turn // 90))
    reading = get_engine().get_orientation(turned, DPI)
    assert reading is not None and reading.turn_deg == turn
    assert 0.0 < reading.confidence <= 1.0


def test_ocr_package_leaves_the_callers_environment_alone(tmp_path: Path) -> None:
    """Importing the package, building the engine and reading a page never sets
    OMP_THREAD_LIMIT in the caller's process environment (only the worker set-up of the
    pipeline does, for its own processes)."""
    import os
    import subprocess
    import sys

    script = (
        "import os, numpy as np\n"
        "from digitize.ocr import get_engine, ocr_page\n"
        "assert 'OMP_THREAD_LIMIT' not in os.environ, 'set on import'\n"
        "get_engine().recognise_raw(np.full((200, 400), 255, np.uint8), 300)\n"
        "ocr_page(np.full((200, 400), 255, np.uint8), 300)\n"
        "assert 'OMP_THREAD_LIMIT' not in os.environ, 'set by the engine'\n"
        "print('clean')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"
