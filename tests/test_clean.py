"""Page clean-up (digitize.clean): orientation and deskew that never make a page worse.

Covers:
- skew recovered within 0.1° on synthetic Vietnamese pages turned by ±0.1° … ±10° (issue 4);
- 90/180/270 turns combined with a small skew: orientation exact, skew within 0.1°;
- the cleaned page really is level and upright (coloured markers, located independently);
- blank and photo-only pages are left untouched (same array, not resampled) and flagged (R15);
- bilevel stays bilevel, gray stays gray, RGB stays RGB (R11);
- nothing is cut off (R7) and the scale stays 100 % (R12): canvas grows only as geometry needs;
- real corpus pages (including the 90/180/270 ones) within 0.2° of their ground truth;
- the orientation vote: a band read both ways through the OCR engine, the combination of
  signals (agreement, conflict → flagged, the file's declared turn as a weak prior), degraded
  pages (speck bands, shadow, noise) turned 0/90/180/270 oriented right, and the votes going
  through the engine object the caller passes (no second tesseract path).

Synthetic pages are rotated with Pillow (``Image.rotate``), a code path independent of the
OpenCV rotation used by the module, and turned with ``np.rot90`` as the corpus generator does.
"""

from __future__ import annotations

import json
import math
import os
import random
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from digitize.clean import (
    CleanSettings,
    clean_page,
    deskew_page,
    estimate_orientation,
    estimate_skew,
    rotate_orientation,
)
from tests.conftest import shared_item

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

FONT = Path("/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf")
DPI = 150

WORDS = (
    "Ủy ban nhân dân tỉnh thực hiện kế hoạch về công tác văn thư lưu trữ của cơ quan "
    "tổ chức trong năm đồng thời hướng dẫn các đơn vị trực thuộc triển khai việc số hóa "
    "hồ sơ thủ tục hành chính theo quy định của Chính phủ người đứng đầu chịu trách nhiệm "
    "bảo đảm chất lượng bản sao điện tử chứng thực từ bản chính giấy tờ văn bản được cấp "
    "những nội dung sau đây phải được kiểm tra kỹ lưỡng trước khi ký ban hành quyết định"
).split()


def _font(pt: float) -> ImageFont.FreeTypeFont:
    if not FONT.exists():
        pytest.fail(f"font {FONT} missing: install fonts-noto-core")
    return ImageFont.truetype(str(FONT), size=round(pt * DPI / 72))


@cache
def _upright_page() -> np.ndarray:
    """A4 at 150 dpi, gray: a centred title and several justified-ish paragraphs, with a red
    marker at the top left and a blue one at the top right of the text block (RGB)."""
    w, h = round(8.27 * DPI), round(11.69 * DPI)
    img = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    rng = random.Random(4)
    title = _font(14)
    body = _font(13)
    margin_l, margin_r = round(1.2 * DPI), w - round(0.8 * DPI)
    y = round(1.0 * DPI)
    draw.text((w // 2, y), "KẾ HOẠCH SỐ HÓA HỒ SƠ", font=title, fill=(0, 0, 0), anchor="mt")
    y += round(0.5 * DPI)
    line_h = round(13 * DPI / 72 * 1.5)
    for _ in range(7):
        first = True
        for _ in range(rng.randint(3, 5)):
            x = margin_l + (round(0.4 * DPI) if first else 0)
            first = False
            words = []
            while True:
                word = rng.choice(WORDS)
                trial = " ".join([*words, word])
                if x + draw.textlength(trial, font=body) > margin_r:
                    break
                words.append(word)
            draw.text((x, y), " ".join(words), font=body, fill=(0, 0, 0))
            y += line_h
        y += line_h // 2
    marker = round(0.08 * DPI)
    draw.rectangle((margin_l, 40, margin_l + marker, 40 + marker), fill=(255, 0, 0))
    draw.rectangle((margin_r - marker, 40, margin_r, 40 + marker), fill=(0, 0, 255))
    return np.array(img)


def _scan(skew: float, orientation: int = 0, mode: str = "RGB") -> np.ndarray:
    """The synthetic page as a scanner would give it: content turned counter-clockwise by
    ``skew`` about the centre (corpus convention), then turned by ``orientation``."""
    img = Image.fromarray(_upright_page())
    if skew:
        img = img.rotate(skew, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))
    if mode == "L":
        img = img.convert("L")
    elif mode == "1":
        img = img.convert("L").point(lambda v: 255 if v >= 128 else 0)
    pixels = np.array(img)
    if orientation:
        pixels = np.ascontiguousarray(np.rot90(pixels, k=orientation // 90))
    return pixels


def _marker_centres(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r, g, b = (rgb[:, :, i].astype(int) for i in range(3))
    red = (r > 180) & (g < 90) & (b < 90)
    blue = (b > 180) & (r < 90) & (g < 90)
    assert red.sum() > 20 and blue.sum() > 20, "markers lost"
    return (
        np.array(np.nonzero(red)[::-1]).mean(axis=1),
        np.array(np.nonzero(blue)[::-1]).mean(axis=1),
    )


def _ink(pixels: np.ndarray) -> int:
    gray = pixels if pixels.ndim == 2 else pixels.mean(axis=2)
    return int(np.count_nonzero(gray < 128))


# --- skew ------------------------------------------------------------------------------------
@pytest.mark.parametrize("skew", [0.1, -0.1, 0.5, -0.5, 2.0, -2.0, 5.0, -5.0, 10.0, -10.0])
def test_skew_recovered_within_a_tenth_of_a_degree(skew: float) -> None:
    pixels = _scan(skew, mode="L")
    angle, confidence = estimate_skew(pixels, DPI)
    assert abs(angle - skew) <= 0.1, f"estimated {angle:+.3f}°, true {skew:+.3f}°"
    assert confidence >= 0.5


@pytest.mark.parametrize(("orientation", "skew"), [(90, 1.3), (180, -0.8), (270, 2.4), (0, -3.1)])
def test_orientation_exact_and_page_level_after_cleaning(orientation: int, skew: float) -> None:
    pixels = _scan(skew, orientation)
    deg, confidence = estimate_orientation(pixels, DPI)
    assert deg == orientation and confidence >= 0.5

    out, record = clean_page(pixels, DPI)
    assert record.orientation_deg == orientation
    assert abs(record.skew_deg - skew) <= 0.1
    assert record.resampled and out.ndim == 3
    assert out.shape[0] > out.shape[1], "A4 page must come out portrait"
    # Located independently of the estimator: the two markers sit on one printed row, red
    # left of blue, in the top part of the page.
    red, blue = _marker_centres(out)
    assert red[0] < blue[0]
    assert red[1] < out.shape[0] * 0.2 and blue[1] < out.shape[0] * 0.2
    rise = math.degrees(math.atan2(blue[1] - red[1], blue[0] - red[0]))
    assert abs(rise) <= 0.1, f"page still tilted by {rise:.3f}° after cleaning"
    assert record.rotation_applied_deg == pytest.approx(-orientation - record.skew_deg, abs=1e-3)


def test_lossless_quarter_turns_undo_each_other() -> None:
    pixels = _scan(0.0, 0, mode="L")
    for deg in (90, 180, 270):
        turned = np.rot90(pixels, k=deg // 90)
        assert np.array_equal(rotate_orientation(turned, deg), pixels)
    with pytest.raises(ValueError):
        rotate_orientation(pixels, 45)


# --- pages that must be left alone -----------------------------------------------------------
def _blank_page() -> np.ndarray:
    rng = np.random.default_rng(1)
    page = np.full((1754, 1240), 246, np.uint8)
    return np.clip(page + rng.normal(0, 3, page.shape), 0, 255).astype(np.uint8)


def _photo_page() -> np.ndarray:
    """A photograph-like page: smooth random blotches on a gradient, in colour."""
    import cv2

    rng = np.random.default_rng(7)
    h, w = 1754, 1240
    noise = rng.random((h // 16, w // 16, 3)).astype(np.float32)
    smooth = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    smooth = cv2.GaussianBlur(smooth, (0, 0), 12)
    gradient = np.linspace(0.2, 0.9, h, dtype=np.float32)[:, None, None]
    photo = 255 * np.clip(0.6 * smooth + 0.4 * gradient, 0, 1)
    return photo.astype(np.uint8)


@pytest.mark.parametrize("page", ["blank", "photo"])
def test_pages_without_text_are_left_as_is_and_flagged(page: str) -> None:
    pixels = _blank_page() if page == "blank" else _photo_page()
    out, record = clean_page(pixels, DPI)
    assert out is pixels, "a page without text lines must not be touched"
    assert not record.resampled
    assert record.orientation_deg == 0 and record.rotation_applied_deg == 0.0
    codes = {f.code for f in record.flags}
    assert {"orientation_uncertain", "skew_uncertain"} <= codes
    assert (record.width_px, record.height_px) == (pixels.shape[1], pixels.shape[0])


def test_straight_page_is_passed_through_untouched() -> None:
    pixels = _scan(0.0, mode="L")
    out, record = clean_page(pixels, DPI)
    assert out is pixels and not record.resampled
    assert abs(record.skew_deg) < CleanSettings().min_skew_deg
    assert record.skew_confidence >= 0.5 and record.flags == ()


# --- pixel guarantees ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["1", "L", "RGB"])
def test_colour_mode_kept(mode: str) -> None:
    pixels = _scan(3.0, mode=mode)
    out, record = clean_page(pixels, DPI)
    assert record.resampled
    assert out.dtype == np.uint8 and out.ndim == pixels.ndim
    if mode == "1":
        assert set(np.unique(out).tolist()) <= {0, 255}, "bilevel page must stay 0/255"
    if mode == "L":
        assert len(np.unique(out)) > 2, "gray page must stay gray"
    if mode == "RGB":
        assert out.shape[2] == 3


@pytest.mark.parametrize("angle", [4.0, -7.5])
def test_no_content_cut_and_scale_kept(angle: float) -> None:
    """R7: every ink pixel survives; R12: the canvas grows exactly as the rotation needs and
    distances on the page are unchanged (no scaling)."""
    pixels = _scan(0.0, mode="1")
    # Put ink right into the corners: they are what a cropping rotation would lose.
    pixels = pixels.copy()
    pixels[:30, :30] = 0
    pixels[-30:, -30:] = 0
    h, w = pixels.shape
    out = deskew_page(pixels, angle, background=255)
    t = math.radians(angle)
    assert out.shape[1] <= math.ceil(w * abs(math.cos(t)) + h * abs(math.sin(t))) + 1
    assert out.shape[0] <= math.ceil(w * abs(math.sin(t)) + h * abs(math.cos(t))) + 1
    assert out.shape[1] >= w * abs(math.cos(t)) + h * abs(math.sin(t)) - 1
    assert _ink(out) == pytest.approx(_ink(pixels), rel=0.03)
    # The corner blocks are still whole: ink can't touch the new canvas edge except at the
    # four rotated page corners, and the block diagonals keep their length (100 % scale).
    back = deskew_page(out, -angle, background=255)
    assert _ink(back) == pytest.approx(_ink(pixels), rel=0.05)
    red, blue = _marker_centres(deskew_page(_scan(0.0), angle, background=(255, 255, 255)))
    red0, blue0 = _marker_centres(_scan(0.0))
    assert np.hypot(*(blue - red)) == pytest.approx(np.hypot(*(blue0 - red0)), abs=1.0)


def test_fill_uses_scan_background() -> None:
    pixels = np.full((800, 600), 200, np.uint8)
    pixels[300:320, 100:500] = 20
    out = deskew_page(pixels, 5.0)
    assert out[0, 0] == 200 and out[-1, -1] == 200, "new corners must take the paper colour"


# --- real corpus pages -----------------------------------------------------------------------
REAL_PAGES = ["dev-d01/c1/p01", "dev-d04/c1/p01", "dev-d04/c3/p02", "dev-d01/c3/p02"]


def _corpus_page(name: str) -> tuple[np.ndarray, float, dict]:
    gt = shared_item("corpus", f"{name}.json")
    truth = json.loads(gt.read_text(encoding="utf-8"))
    image = truth["image"]
    with Image.open(gt.parent / image["file"]) as im:
        im.seek(int(image["page_index"]))
        im = im.convert("L") if im.mode == "1" else im
        pixels = np.array(im)
    return pixels, float(image["dpi"]), truth


@pytest.mark.parametrize("name", REAL_PAGES)
def test_real_corpus_pages_within_two_tenths(name: str) -> None:
    pixels, dpi, truth = _corpus_page(name)
    out, record = clean_page(pixels, dpi)
    assert record.orientation_deg == truth["orientation_deg"]
    assert abs(record.skew_deg - truth["skew_deg"]) <= 0.2
    assert record.resampled and out.shape[0] > out.shape[1]
    assert record.seconds < 2.0


# --- scanner background, tesseract up/down check -----------------------------------------------
def test_scanner_background_cropped_outside_the_paper_only() -> None:
    """R7: only scanner background goes; the box stays outside the paper edge."""
    paper = _scan(0.0, mode="L")
    h, w = paper.shape
    pad = 60
    scan = np.full((h + 2 * pad, w + 2 * pad), 70, np.uint8)  # dark scanner lid
    scan[pad : pad + h, pad : pad + w] = paper
    out, record = clean_page(scan, DPI, CleanSettings(crop_background=True))
    assert record.crop_box is not None
    x0, y0, x1, y1 = record.crop_box
    assert 0 < x0 <= pad and 0 < y0 <= pad, "crop must stop outside the paper edge"
    assert w + pad <= x1 < w + 2 * pad and h + pad <= y1 < h + 2 * pad
    assert pad - x0 <= 0.1 * DPI and pad - y0 <= 0.1 * DPI, "too much background left"
    assert out.shape == (y1 - y0, x1 - x0)
    assert np.array_equal(out[pad - y0 : pad - y0 + h, pad - x0 : pad - x0 + w], paper)
    # A page filling the whole image has nothing to crop.
    same, record = clean_page(paper, DPI, CleanSettings(crop_background=True))
    assert record.crop_box is None and same is paper


# --- the orientation vote (engine signals through the OCR engine seam) --------------------------
def _degraded(pixels: np.ndarray, seed: int = 11) -> np.ndarray:
    """A poor scan of the page: vertical bands of toner specks (a dirty drum), a shadow over
    one side and sensor noise; gray."""
    gray = pixels if pixels.ndim == 2 else pixels.mean(axis=2)
    rng = np.random.default_rng(seed)
    h, w = gray.shape
    out = gray.astype(np.float32) * np.linspace(1.0, 0.55, w, dtype=np.float32)[None, :]
    for centre in rng.uniform(0.1, 0.9, 7) * w:
        band = np.exp(-(((np.arange(w) - centre) / (0.05 * DPI)) ** 2))[None, :]
        dots = rng.random((h, w)) < 0.25 * band
        out[dots] *= 0.25
    out += rng.normal(0, 6, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def _band(page: np.ndarray) -> np.ndarray:
    gray = page if page.ndim == 2 else page.mean(axis=2).astype(np.uint8)
    return np.ascontiguousarray(gray[round(1.4 * DPI) : round(2.6 * DPI)])


def test_band_read_both_ways_votes_for_upright() -> None:
    """The reading signal: a band of text reads as Vietnamese upright, as noise turned."""
    from digitize.ocr import get_engine
    from digitize.orientation import band_scores, reading_vote

    band = _band(_upright_page())
    upright = reading_vote(band_scores(get_engine(), band, DPI))
    turned = reading_vote(band_scores(get_engine(), np.ascontiguousarray(band[::-1, ::-1]), DPI))
    assert upright is not None and upright.evidence > 0.5
    assert turned is not None and turned.evidence < -0.5


def test_a_band_that_reads_surely_upright_is_not_read_turned() -> None:
    """Half the vote's cost on clean pages: a band that reads as sure Vietnamese as it stands
    is not read again upside down (one engine call), one that does not is read both ways."""
    from digitize.ocr import get_engine
    from digitize.orientation import band_scores

    calls: list[tuple[int, ...]] = []
    engine = get_engine()

    class Counting:
        def __getattr__(self, name: str) -> object:
            return getattr(engine, name)

        def recognise_raw(self, image, dpi, hints):  # type: ignore[no-untyped-def]
            calls.append(image.shape)
            return engine.recognise_raw(image, dpi, hints)

    band = _band(_upright_page())
    upright, skipped, _ = band_scores(Counting(), band, DPI)  # type: ignore[arg-type]
    assert len(calls) == 1 and skipped == 0.0 and upright > 0
    calls.clear()
    down, up, _ = band_scores(Counting(), np.ascontiguousarray(band[::-1, ::-1]), DPI)  # type: ignore[arg-type]
    assert len(calls) == 2 and up > down


def test_combine_agreement_conflict_and_the_file_hint() -> None:
    """The vote: agreeing signals decide, strong signals that disagree leave the page under
    the turning threshold (flagged, never a silent guess), the file's declared turn only
    decides between otherwise undecided signals."""
    from digitize.orientation import Vote, combine, file_vote

    agree = combine([Vote("lines", 0.6), Vote("reading", 0.8)])
    assert not agree.flipped and agree.confidence > 0.6
    flipped = combine([Vote("lines", -0.4), Vote("reading", -0.9), Vote("osd", -0.5)])
    assert flipped.flipped and flipped.confidence > 0.5
    conflict = combine([Vote("lines", 0.9), Vote("reading", -0.8)])
    assert conflict.confidence <= 0.4 < CleanSettings().min_orientation_confidence
    weak = [Vote("lines", 0.02), Vote("reading", 0.0)]
    assert combine(weak).confidence == 0.0
    hint = file_vote(180, 0)
    assert hint is not None and combine([*weak, hint]).flipped
    assert file_vote(90, 0) == Vote("file", 0.0, "file declares 90°, off the line axis")
    assert combine([Vote("lines", 0.9), file_vote(180, 0)]).flipped is False  # type: ignore[list-item]


@pytest.mark.parametrize("orientation", [0, 90, 180, 270])
def test_degraded_page_turned_each_way_is_oriented_and_level(orientation: int) -> None:
    """Specks in bands, a shadow and noise (which fool the line-shape cue and make both
    axes look lined) on a page turned 0/90/180/270 with a small skew: orientation exact and
    confident, skew within 0.2°."""
    scan = _degraded(_scan(1.5, orientation))
    out, record = clean_page(scan, DPI)
    assert record.orientation_deg == orientation
    assert record.orientation_confidence >= CleanSettings().min_orientation_confidence
    assert abs(record.skew_deg - 1.5) <= 0.2
    assert not [f for f in record.flags if f.code == "orientation_uncertain"]


def test_orientation_votes_go_through_the_given_engine() -> None:
    """Issue 16: orientation uses the OCR stage's engine object (no second tesseract path in
    clean); a degraded page makes the engine vote."""
    import inspect

    import digitize.clean
    from digitize.ocr import TesseractEngine

    class Counting(TesseractEngine):
        calls = 0

        def recognise_raw(self, pixels, dpi, hints=None):  # type: ignore[no-untyped-def]
            Counting.calls += 1
            return super().recognise_raw(pixels, dpi, hints)

    scan = _degraded(_scan(-1.0, 180))
    _, record = clean_page(scan, DPI, engine=Counting())
    assert record.orientation_deg == 180 and Counting.calls >= 2
    assert "tesserocr" not in inspect.getsource(digitize.clean)
    # Engine votes off: the engine is never asked.
    Counting.calls = 0
    clean_page(scan, DPI, CleanSettings(engine_votes=False), engine=Counting())
    assert Counting.calls == 0


def test_a_declared_turn_never_overrides_clear_pixels() -> None:
    """The file's /Rotate is a weak prior: a plainly upright page stays upright."""
    _, record = clean_page(_scan(0.8, 0, mode="L"), DPI, orientation_hint=180)
    assert record.orientation_deg == 0 and record.orientation_confidence >= 0.5


def test_find_qr_codes_in_the_note_corner_only() -> None:
    """R20 support: a QR code in the top-left corner is found with its box; one far from the
    corner, or none, gives nothing."""
    import cv2

    from digitize.clean import find_qr_codes

    dpi = 200
    code = cv2.QRCodeEncoder.create().encode("hs-0001")
    qr = cv2.resize(code, (160, 160), interpolation=cv2.INTER_NEAREST)
    page = np.full((2339, 1654), 255, np.uint8)
    assert find_qr_codes(page, dpi) == ()
    page[60:220, 80:240] = qr
    boxes = find_qr_codes(page, dpi)
    assert len(boxes) == 1
    x0, y0, x1, y1 = boxes[0]
    assert 80 <= x0 < 120 and 60 <= y0 < 100 and 200 < x1 <= 240 and 180 < y1 <= 220
    far = np.full((2339, 1654), 255, np.uint8)
    far[1800:1960, 1300:1460] = qr
    assert find_qr_codes(far, dpi) == ()
