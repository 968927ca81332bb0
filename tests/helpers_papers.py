"""Citizens' papers rendered for the tests with Pillow and the Noto fonts: the printed layout of
a form or certificate (motto, title, "label: value" rows, closing block), values typed or
"handwritten" (blue italic on a dotted line), an ID card's machine-readable zone with its check
digits computed here (ICAO 9303), independently of ``digitize``.

People, numbers and places are made up in each test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONTS = Path("/usr/share/fonts/truetype/noto")
SERIF = FONTS / "NotoSerif-Regular.ttf"
SERIF_BOLD = FONTS / "NotoSerif-Bold.ttf"
HAND = FONTS / "NotoSans-Italic.ttf"
MOTTO = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO_2 = "Độc lập - Tự do - Hạnh phúc"
INK_BLUE = (25, 45, 160)


@dataclass(frozen=True)
class Row:
    """One printed line: a label and its value (several (label, value) pairs share a line)."""

    pairs: tuple[tuple[str, str], ...]
    hand: bool = False  # values written by hand: blue italic on a dotted line
    bold: bool = False
    centre: bool = False
    mono: bool = False  # the machine-readable zone of a card


def row(label: str, value: str = "", *, hand: bool = False) -> Row:
    return Row(((label, value),), hand=hand)


def text_row(text: str, *, bold: bool = False, centre: bool = False, mono: bool = False) -> Row:
    return Row(((text, ""),), bold=bold, centre=centre, mono=mono)


def _font(path: Path, pt: float, dpi: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), round(pt * dpi / 72))


def render_paper(
    title: str,
    rows: list[Row],
    *,
    dpi: int = 300,
    header_left: tuple[str, ...] = (),
    header_right: str | None = None,
    closing: tuple[str, ...] = (),
    subtitle: str | None = None,
) -> np.ndarray:
    """An A4 page (RGB array): the motto (right column when ``header_left`` is given), the
    title, the rows, and a closing block on the right (place and date, position, name)."""
    width, height = round(210 / 25.4 * dpi), round(297 / 25.4 * dpi)
    page = Image.new("RGB", (width, height), (250, 249, 244))
    draw = ImageDraw.Draw(page)
    mm = dpi / 25.4
    left = int(25 * mm)
    body = _font(SERIF, 12.5, dpi)
    bold = _font(SERIF_BOLD, 12.5, dpi)
    hand = _font(HAND, 13, dpi)
    line_h = int(body.size * 1.75)
    y = int(18 * mm)
    if header_left:
        centre_left, centre_right = int(55 * mm), int(140 * mm)
        for i, text in enumerate(header_left):
            fnt = bold if i < len(header_left) - 1 or not text.startswith("Số") else body
            draw.text((centre_left, y + i * line_h), text, font=fnt, fill="black", anchor="mt")
        draw.text((centre_right, y), MOTTO, font=bold, fill="black", anchor="mt")
        draw.text((centre_right, y + line_h), MOTTO_2, font=bold, fill="black", anchor="mt")
        if header_right:
            italic = _font(FONTS / "NotoSerif-Italic.ttf", 12.5, dpi)
            draw.text((centre_right, y + 3 * line_h), header_right, font=italic, fill="black",
                      anchor="mt")
        y += (max(len(header_left), 4) + 1) * line_h
    else:
        draw.text((width // 2, y), MOTTO, font=bold, fill="black", anchor="mt")
        draw.text((width // 2, y + line_h), MOTTO_2, font=bold, fill="black", anchor="mt")
        y += 3 * line_h
    title_font = _font(SERIF_BOLD, 15, dpi)
    draw.text((width // 2, y), title, font=title_font, fill="black", anchor="mt")
    y += int(1.6 * line_h)
    if subtitle:
        draw.text((width // 2, y), subtitle, font=body, fill="black", anchor="mt")
        y += int(1.4 * line_h)
    y += line_h // 2
    for item in rows:
        x = left
        if item.centre:
            label = item.pairs[0][0]
            draw.text((width // 2, y), label, font=bold if item.bold else body, fill="black",
                      anchor="mt")
            y += line_h
            continue
        for label, value in item.pairs:
            fnt = bold if item.bold else body
            if item.mono:
                fnt = _font(FONTS / "NotoMono-Regular.ttf", 12.5, dpi)
            shown = f"{label}: " if value or item.hand else label
            draw.text((x, y), shown, font=fnt, fill="black")
            x += int(draw.textlength(shown, font=fnt))
            if item.hand:
                dots_end = x + int(draw.textlength(value, font=hand)) + int(12 * mm)
                dot = x
                while dot < dots_end:  # the printed dotted line, under the written value
                    draw.text((dot, y), ".", font=body, fill="black")
                    dot += int(draw.textlength(" . ", font=body))
                draw.text((x + int(2 * mm), y - int(0.8 * mm)), value, font=hand, fill=INK_BLUE)
                x = dots_end + int(4 * mm)
            elif value:
                draw.text((x, y), value, font=body, fill="black")
                x += int(draw.textlength(value + "    ", font=body))
        y += line_h
    if closing:
        y += line_h
        centre = int(145 * mm)
        for i, text in enumerate(closing):
            fnt = bold if text.isupper() else body
            draw.text((centre, y + i * line_h * (3 if i == len(closing) - 1 else 1)), text,
                      font=fnt, fill="black", anchor="mt")
    return np.asarray(page)


def icao_check(data: str) -> str:
    """ICAO 9303 check digit: weights 7, 3, 1; digits as such, A-Z as 10-35, '<' as 0."""
    total = 0
    for i, ch in enumerate(data):
        value = int(ch) if ch.isdigit() else (ord(ch) - 55 if ch.isalpha() else 0)
        total += value * (7, 3, 1)[i % 3]
    return str(total % 10)


def card_mrz(personal_id: str, birth: str, sex: str, expiry: str, name: str) -> list[str]:
    """The three TD1 lines of a Vietnamese chip card: document number = the ID's last nine
    digits, the 12-digit ID in the optional data; ``birth``/``expiry`` as YYMMDD."""
    document = personal_id[3:]
    line1 = f"IDVNM{document}{icao_check(document)}{personal_id}<<"
    line1 = line1.ljust(29, "<")
    line1 += icao_check(line1[5:30])[:1] if len(line1) < 30 else ""
    line2 = f"{birth}{icao_check(birth)}{sex}{expiry}{icao_check(expiry)}VNM".ljust(29, "<")
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    line2 += icao_check(composite)
    line3 = name.upper().replace(" ", "<", 1).replace(" ", "<").ljust(30, "<")
    return [line1[:30], line2[:30], line3[:30]]
