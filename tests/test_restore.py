"""Restoration for OCR (digitize.restore) and the multi-reading merge (digitize.ocr.read).

Every crop here is made in the test: Vietnamese lines rendered with Noto Serif (Pillow), then
degraded the way poor scans are (shadow gradient, low ink, sensor noise and specks, JPEG at
quality 20, broken thin strokes, small type at 200 dpi). Each restoration step is checked on
image measurements against the undegraded render (never against output of the code under
test), and where OCR is involved, against the text that was rendered.

R11 (the stored image stays the scan): restoration returns a new array and never writes into
its input. R15: a degraded page is measured and read from a restored copy; a clean one is not
touched at all.
"""

from __future__ import annotations

import io
import re
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from rapidfuzz.distance import Levenshtein

from digitize.ocr import RawWord, merge_readings, ocr_page, word_validity
from digitize.restore import (
    RestorationPlan,
    apply_plan,
    flatten,
    join_broken_strokes,
    measure_page,
    plan_restoration,
    stretch_contrast,
)
from digitize.settings import OcrSettings

FONT = Path("/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf")
LINES = [
    "Ủy ban nhân dân tỉnh Vĩnh Phúc ban hành kế hoạch",
    "thực hiện thủ tục hành chính trên địa bàn tỉnh",
    "Bảo đảm sự phối hợp chặt chẽ giữa các cơ quan",
    "trong việc tiếp nhận và trả kết quả giải quyết",
    "hồ sơ của tổ chức và công dân theo quy định",
]


def render(dpi: int = 300, size_pt: float = 13, lines: list[str] = LINES) -> np.ndarray:
    """A gray crop, white paper, black Vietnamese text."""
    if not FONT.is_file():
        pytest.fail(f"font {FONT} missing: install fonts-noto-core")
    font = ImageFont.truetype(str(FONT), round(size_pt * dpi / 72))
    step = round(size_pt * dpi / 72 * 1.6)
    margin = dpi // 3
    width = int(6.5 * dpi)
    image = Image.new("L", (width, 2 * margin + step * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * step), line, font=font, fill=0)
    return np.asarray(image).copy()


def ink_mask(gray: np.ndarray) -> np.ndarray:
    return gray < 128


def shadow(gray: np.ndarray, depth: float = 0.65) -> np.ndarray:
    """A cast shadow: brightness falls to ``1 - depth`` towards the right edge."""
    ramp = np.linspace(1.0, 1.0 - depth, gray.shape[1], dtype=np.float32)[None, :]
    return np.clip(gray.astype(np.float32) * ramp, 0, 255).astype(np.uint8)


def low_ink(gray: np.ndarray, ink_level: int = 170, paper: int = 235) -> np.ndarray:
    """Faint print on grey paper: ink at ``ink_level`` instead of black."""
    scale = (paper - ink_level) / 255.0
    return (ink_level + gray.astype(np.float32) * scale).astype(np.uint8)


def speckle(gray: np.ndarray, share: float = 0.01, seed: int = 3) -> np.ndarray:
    """Toner dust: isolated dark dots of 1–2 pixels plus sensor noise."""
    rng = np.random.default_rng(seed)
    out = gray.astype(np.float32) + rng.normal(0, 12, gray.shape)
    dots = rng.random(gray.shape) < share
    out[dots] = 20
    out[:, 1:][dots[:, :-1] & (rng.random(gray.shape)[:, 1:] < 0.5)] = 20
    return np.clip(out, 0, 255).astype(np.uint8)


def jpeg(gray: np.ndarray, quality: int = 20) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L")).copy()


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def cer(read: str, truth: list[str]) -> float:
    reference = norm(" ".join(truth))
    return Levenshtein.distance(norm(read), reference) / len(reference)


# --- measurements and the clean-page guarantee ------------------------------------------------
def test_clean_render_measures_clean_and_is_not_restored() -> None:
    """A clean page is read exactly as it is (the guarantee that clean pages are neither
    changed nor slowed by restoration)."""
    page = render()
    m = measure_page(page, 300)
    assert m.shading < 0.05 and m.specks < 0.15 and m.contrast > 200
    assert 20 <= m.text_height_px <= 60  # 13 pt at 300 dpi
    assert plan_restoration(m).is_identity and not plan_restoration(m).degraded


def test_measurements_see_each_degradation() -> None:
    page = render()
    clean = measure_page(page, 300)
    assert measure_page(shadow(page), 300).shading > clean.shading + 0.3
    assert measure_page(low_ink(page), 300).contrast < clean.contrast - 100
    assert measure_page(speckle(page), 300).specks > clean.specks + 0.3
    small = render(dpi=200, size_pt=10)
    assert measure_page(small, 200).text_height_px < clean.text_height_px * 0.6


# --- each restoration step --------------------------------------------------------------------
def test_flatten_evens_a_shadow_and_keeps_the_ink() -> None:
    page = render()
    dark = shadow(page)
    paper = ~ink_mask(page) & (cv2.erode(page, np.ones((9, 9), np.uint8)) > 200)
    before = dark[paper].astype(np.float32)
    after = flatten(dark, 300)[paper].astype(np.float32)
    assert before.std() > 30 and after.std() < 6
    assert after.mean() > 240
    restored = flatten(dark, 300)
    text = ink_mask(page)
    # Strokes in the deepest shadow stay dark against the paper beside them.
    right = np.s_[:, int(0.7 * page.shape[1]) :]
    assert float(restored[right][text[right]].mean()) < 120
    assert (ink_mask(restored) & text).sum() >= 0.9 * text.sum()


def test_stretch_restores_contrast_of_faint_ink() -> None:
    page = render()
    faint = low_ink(page)
    text = ink_mask(page)
    before = float(faint[~text].mean() - faint[text].mean())
    out = stretch_contrast(faint)
    after = float(out[~text].mean() - out[text].mean())
    assert before < 70 and after > 2 * before
    assert measure_page(out, 300).contrast > measure_page(faint, 300).contrast + 60


def test_median_removes_specks_and_keeps_strokes() -> None:
    page = render()
    dusty = speckle(page)
    m = measure_page(dusty, 300)
    plan = plan_restoration(m)
    assert plan.denoise_kernel in (3, 5), plan
    out = apply_plan(dusty, 300, plan)
    text = ink_mask(page)
    paper = cv2.dilate(text.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
    assert (ink_mask(dusty) & paper).sum() > 1000
    assert (ink_mask(out) & paper).sum() < 0.05 * (ink_mask(dusty) & paper).sum()
    assert (ink_mask(out) & text).sum() >= 0.85 * text.sum()  # strokes kept


def test_heavy_jpeg_artefacts_are_smoothed_towards_the_scan() -> None:
    page = render()
    blocky = jpeg(speckle(page, share=0.004), quality=20)
    plan = plan_restoration(measure_page(blocky, 300))
    assert plan.degraded and plan.denoise_kernel
    out = apply_plan(blocky, 300, plan)
    paper = cv2.dilate(ink_mask(page).astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
    noise_before = float(np.abs(blocky[paper].astype(int) - 255).mean())
    noise_after = float(np.abs(out[paper].astype(int) - 255).mean())
    assert noise_after < 0.5 * noise_before


def test_broken_thin_strokes_are_joined() -> None:
    """A 200-dpi bilevel page of thin type with one-pixel breaks (a tired fax or a low-ink
    laser): the measure finds the thin strokes, joining reconnects pieces of letters."""
    page = render(dpi=200, size_pt=11)
    thin = np.where(cv2.dilate(page, np.ones((2, 2), np.uint8)) < 100, 0, 255).astype(np.uint8)
    rng = np.random.default_rng(7)
    cuts = (rng.random(thin.shape) < 0.06).astype(np.uint8)
    cuts = cv2.dilate(cuts, np.ones((1, 1), np.uint8)) > 0
    broken = np.where(cuts, 255, thin).astype(np.uint8)

    def pieces(img: np.ndarray) -> int:
        return cv2.connectedComponents((img < 128).astype(np.uint8))[0]

    m = measure_page(broken, 200)
    assert m.bilevel and 0 < m.stroke_px < 1.6, m
    plan = plan_restoration(m)
    assert plan.join_strokes
    joined = join_broken_strokes(broken)
    assert pieces(broken) > 1.2 * pieces(thin)  # the damage is real
    assert pieces(joined) < pieces(broken) * 0.85
    # Joined ink stays where the letters are: not smeared into the paper.
    grown = cv2.dilate((thin < 128).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert ((joined < 128) & ~grown).sum() < 0.02 * (joined < 128).sum()


def test_small_type_at_200_dpi_is_upscaled_when_degraded() -> None:
    small = speckle(render(dpi=200, size_pt=10), share=0.006)
    m = measure_page(small, 200)
    plan = plan_restoration(m)
    assert plan.degraded and plan.scale > 1.0
    out = apply_plan(small, 200, plan)
    assert out.shape[0] == round(small.shape[0] * plan.scale)


def test_restoration_never_writes_into_the_scan() -> None:
    dark = shadow(speckle(render()))
    before = dark.copy()
    plan = RestorationPlan(
        flatten=True, denoise_kernel=3, stretch=True, join_strokes=True, scale=1.5
    )
    out = apply_plan(dark, 300, plan)
    assert np.array_equal(dark, before) and out is not dark


# --- OCR of known text gets better ----------------------------------------------------------
@pytest.mark.parametrize(
    "degrade",
    [
        pytest.param(lambda p: shadow(p, 0.8), id="shadow"),
        pytest.param(lambda p: jpeg(speckle(shadow(p, 0.5), share=0.01), 25), id="dust-jpeg"),
    ],
)
def test_restored_reading_of_a_known_text_is_better(degrade) -> None:  # type: ignore[no-untyped-def]
    """The expected text is the string rendered; restoration must bring the reading closer."""
    scan = degrade(render())
    plain = ocr_page(scan, 300, OcrSettings(restore=False, second_reading=False))
    restored = ocr_page(scan, 300)
    assert cer(restored.text, LINES) < cer(plain.text, LINES)
    assert cer(restored.text, LINES) < 0.10
    assert any(f.code == "ocr_restored" for f in restored.flags)


# --- Vietnamese validity and the merge of readings ---------------------------------------------
@pytest.mark.parametrize(
    "word, expected",
    [
        ("nghiêng", 1.0),
        ("Việt", 1.0),
        ("quyết", 1.0),
        ("UBND", 1.0),
        ("TTr", 1.0),
        ("23/2015/NĐ-CP", 1.0),
        ("27/3/2021", 1.0),
        ("(hai)", 1.0),
        ("Nam,", 1.0),
        ("4k", 0.0),
        ("®Ệ", 0.0),
        ("thựcc", 0.0),
        ("ngàỳ", 0.0),
        ("Šghị", 0.0),
        ("IDVNM0123456789001234567890<<1", 1.0),  # an ID card's machine-readable zone
        ("A4B7<<", 0.0),  # short and few digits: a speck cloud, not a code
        ("9K3L", 0.0),
        ("-", None),
        ("…", None),
    ],
)
def test_word_validity(word: str, expected: float | None) -> None:
    assert word_validity(word) == expected


def _line(y: int, texts: list[str], conf: float, key: int, x: int = 100) -> list[RawWord]:
    words = []
    for i, text in enumerate(texts):
        x0 = x + 120 * i
        words.append(RawWord(text, (x0, y, x0 + 100, y + 30), conf, 1, (1, 1, key)))
    return words


def test_merge_keeps_a_line_only_the_second_reading_found() -> None:
    first = _line(100, ["Ủy", "ban", "nhân", "dân"], 95, 1)
    second = _line(100, ["Ủy", "ban", "nhân", "dân"], 90, 1) + _line(200, ["kế", "hoạch"], 90, 2)
    words, used = merge_readings([first, second])
    texts = {w.text for w in words}
    assert {"kế", "hoạch"} <= texts
    assert sum(w.text == "Ủy" for w in words) == 1  # one reading of the shared line
    assert used == {0: 1, 1: 1}


def test_merge_prefers_the_valid_reading_of_a_line() -> None:
    """Same place, two readings: the one that is Vietnamese wins even at lower confidence."""
    garbled = _line(100, ["Šghị", "địnlÏ", "nàỳ"], 93, 1)
    right = _line(100, ["Nghị", "định", "này"], 85, 1)
    words, _ = merge_readings([garbled, right])
    assert [w.text for w in words] == ["Nghị", "định", "này"]


def test_merge_drops_junk_lines() -> None:
    text = _line(100, ["Điều", "1.", "Phạm", "vi"], 95, 1)
    specks = _line(400, ["4"], 88, 2) + _line(500, ["{"], 90, 3) + _line(600, ["®Ệ"], 60, 4)
    page_number = _line(20, ["2"], 96, 5)
    words, _ = merge_readings([text + specks + page_number])
    assert sorted(w.text for w in words) == sorted(["Điều", "1.", "Phạm", "vi", "2"])


def test_merge_keeps_an_unsure_notation_line() -> None:
    """The số/ký hiệu line read unsurely (a handwritten number glued to the notation, a stamp
    over it) stays for the extractor to flag; a speck line of the same confidence goes."""
    number = _line(100, ["số:", "J9/KH-DCT"], 20, 1)
    bare = _line(200, ["/TTg-CĐS"], 23, 2)
    speck = _line(300, ["J9/kk"], 20, 3)
    words, _ = merge_readings([number + bare + speck])
    assert sorted(w.text for w in words) == sorted(["số:", "J9/KH-DCT", "/TTg-CĐS"])
