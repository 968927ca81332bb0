"""The visible note (R18–R21): its text, where it goes, how big, and the font it is drawn with.

- Text: ``Người số hóa: <name>`` / ``Thời gian sao chụp: <scan time>``, the scan time in
  Vietnam time as a person reads it (``11:34 ngày 30/11/2026``, ``sign.time_format: vn``, the
  default) or ISO 8601 with the offset (``iso``).
- Box: on page 1, anchored 5 mm from the top and left edges of the crop box, at most
  70 × 20 mm; black text 8.5–10 pt (the largest that fits unwrapped). If the box overlaps
  detected text, the corner is kept, the text drops to 8 pt in a tighter box and the caller
  raises a ``stamp_overlaps_text`` review flag (R20); the note never moves to another corner.
- Font (R16): an embedded subset of an OpenType font with full Vietnamese coverage, checked
  glyph by glyph. Default: a serif face (Noto Serif from Debian ``fonts-noto-core``; the
  fontconfig ``serif`` match, then DejaVu Serif, then Noto Sans when no serif covers
  Vietnamese); ``sign.font_path`` chooses another.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from digitize.errors import SignerConfigError, SigningError
from digitize.models import Flag, FrozenModel, Severity, make_flag
from digitize.sign.base import BBoxPt
from digitize.util import format_vn_time, nfc

MM = 72 / 25.4
STAMP_OFFSET_PT = 5 * MM  # R19: 5 mm from the top and left page edges
STAMP_MAX_W_PT = 70 * MM
STAMP_MAX_H_PT = 20 * MM
STAMP_SIZES_PT = (10.0, 9.5, 9.0, 8.5)  # tried largest first; 8 pt is the shrunk size (R20)
STAMP_MIN_SIZE_PT = 8.0
DEFAULT_FONT = "/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf"
# Tried in order when no font_path is set: serif faces first (R16), a sans as the last resort.
FONT_QUERIES = ("Noto Serif:lang=vi", "serif:lang=vi")
FALLBACK_FONTS = (
    DEFAULT_FONT,
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
)
VIETNAMESE_PROBE = "ĂăÂâĐđÊêÔôƠơƯưẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹ"

TimeFormat = Literal["vn", "iso"]


def shown_time_text(scan_time: datetime, time_format: TimeFormat = "vn") -> str:
    """The scan time as the note shows it, in Vietnam time (R21)."""
    return format_vn_time(scan_time, time_format)


def note_lines(name: str, scan_time_text: str) -> tuple[str, str]:
    """The two lines of the note (R19)."""
    return f"Người số hóa: {nfc(name)}", f"Thời gian sao chụp: {scan_time_text}"


# --- fonts -----------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _font_metrics(font_path: str) -> tuple[dict[int, int], int]:
    """Advance widths by code point (per-process cache) and units per em."""
    from fontTools.ttLib import TTFont

    font = TTFont(font_path, lazy=True)
    cmap = font.getBestCmap()
    hmtx = font["hmtx"]
    widths = {cp: hmtx[glyph][0] for cp, glyph in cmap.items()}
    return widths, int(font["head"].unitsPerEm)


def text_width_pt(text: str, font_path: str, size: float) -> float:
    widths, upm = _font_metrics(font_path)
    default = widths.get(ord("n"), upm // 2)
    return sum(widths.get(ord(c), default) for c in nfc(text)) * size / upm


def _fontconfig_candidates() -> list[str]:
    fc = shutil.which("fc-match")
    found: list[str] = []
    for query in FONT_QUERIES if fc else ():
        p = subprocess.run([str(fc), "-f", "%{file}", query], capture_output=True, text=True)
        if p.returncode == 0 and p.stdout.strip():
            found.append(p.stdout.strip())
    return found


@lru_cache(maxsize=4)
def resolve_font(font_path: str | None) -> str:
    """An OpenType/TrueType file with full Vietnamese coverage (checked), else SignerConfigError."""
    candidates = [font_path] if font_path else [*_fontconfig_candidates(), *FALLBACK_FONTS]
    for cand in candidates:
        if not cand or not Path(cand).is_file() or not cand.lower().endswith((".ttf", ".otf")):
            continue
        widths, _ = _font_metrics(cand)
        missing = [c for c in VIETNAMESE_PROBE if ord(c) not in widths]
        if not missing:
            return cand
        if font_path:
            raise SignerConfigError(
                f"font lacks Vietnamese glyphs ({''.join(missing[:8])}…)", path=font_path
            )
    raise SignerConfigError(
        "no OpenType font with Vietnamese coverage found",
        path=font_path,
        hint="install fonts-noto-core or set font_path",
    )


# Code points the note can need: ASCII, Latin-1, Latin Extended-A/B, combining marks, the
# Vietnamese block. Names outside it still render (pyHanko subsets from the full font then).
_STAMP_REPERTOIRE = [
    *range(0x20, 0x7F),
    *range(0xA0, 0x250),
    *range(0x300, 0x370),
    *range(0x1EA0, 0x1F00),
] + [0x2010, 0x2011, 0x2013, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2026]
_STAMP_REPERTOIRE_SET = frozenset(_STAMP_REPERTOIRE)


@lru_cache(maxsize=4)
def font_for_stamp(font_path: str) -> bytes:
    """The font cut down once per process to the repertoire above, layout features kept.

    pyHanko subsets the font for every signature; on a full Noto face, fontTools spends most
    of a B-B signature parsing layout tables. Subsetting a 60 kB cut is a few ms.
    """
    from fontTools import subset

    options = subset.Options()
    # no kerning: precomposed Vietnamese letters need no GPOS pairs, and parsing them is the cost
    options.layout_features = ["ccmp", "locl", "mark", "mkmk", "liga", "rlig"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    font = subset.load_font(font_path, options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=_STAMP_REPERTOIRE)
    subsetter.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    return buf.getvalue()


def _glyph_factory(font_path: str, size: float, text: str) -> Any:
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory

    use_cut = all(ord(c) in _STAMP_REPERTOIRE_SET or c == "\n" for c in text)

    class CachedCutFactory(GlyphAccumulatorFactory):
        def create_font_engine(self, writer: Any, obj_stream: Any = None) -> Any:
            if not use_cut:
                return super().create_font_engine(writer, obj_stream)
            if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
                obj_stream = writer.prepare_object_stream()
            return GlyphAccumulator(
                writer=writer,
                font_handle=io.BytesIO(font_for_stamp(self.font_file)),
                font_size=self.font_size,
                ot_script_tag=self.ot_script_tag,
                ot_language_tag=self.ot_language_tag,
                writing_direction=self.writing_direction,
                bcp47_lang_code=self.bcp47_lang_code,
                obj_stream=obj_stream,
            )

    return CachedCutFactory(
        font_path,
        font_size=size,  # type: ignore[arg-type]  # pyHanko says int; fractional sizes work
        ot_script_tag="latn",
        ot_language_tag="VIT ",  # pyHanko wants the 4-character OpenType tag
    )


# --- layout ----------------------------------------------------------------------------------
class StampLayout(FrozenModel):
    box: BBoxPt  # x0, y0, x1, y1 in PDF points (page space)
    font_size: float
    margin: int
    lines: tuple[str, ...]
    shrunk: bool = False
    overlaps_text: bool = False


def _wrap(line: str, font_path: str, size: float, max_w: float) -> list[str]:
    if text_width_pt(line, font_path, size) <= max_w:
        return [line]
    words, out, cur = line.split(" "), [], ""
    for word in words:
        trial = f"{cur} {word}".strip()
        if cur and text_width_pt(trial, font_path, size) > max_w:
            out.append(cur)
            cur = "  " + word
        else:
            cur = trial if not cur.startswith("  ") else f"{cur} {word}"
    out.append(cur)
    return out


def _leading(size: float) -> int:
    # pyHanko's layout works with Fractions: leading (and margins) must be integers
    return int(round(size * 1.25))


def _overlaps(a: BBoxPt, b: BBoxPt) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def plan_stamp(
    page_box: BBoxPt,
    name: str,
    scan_time_text: str,
    font_path: str,
    text_boxes_pt: tuple[BBoxPt, ...] = (),
) -> StampLayout:
    """Where and how big the note is: top-left corner of ``page_box``, never elsewhere (R18–R20)."""
    lines = note_lines(name, scan_time_text)

    def layout(sizes: tuple[float, ...], margin: int) -> StampLayout:
        # the largest size at which every line fits unwrapped; else wrap at the smallest size
        max_text_w = STAMP_MAX_W_PT - 2 * margin - 1
        size = next(
            (s for s in sizes if all(text_width_pt(x, font_path, s) <= max_text_w for x in lines)),
            sizes[-1],
        )
        wrapped = [w for line in lines for w in _wrap(line, font_path, size, max_text_w)]
        text_w = max(math.ceil(text_width_pt(w, font_path, size)) for w in wrapped)
        width = min(text_w + 2 * margin + 1, STAMP_MAX_W_PT)
        height = min(len(wrapped) * _leading(size) + 2 * margin + 2, STAMP_MAX_H_PT)
        x0 = page_box[0] + STAMP_OFFSET_PT
        y1 = page_box[3] - STAMP_OFFSET_PT
        box = (round(x0, 2), round(y1 - height, 2), round(x0 + width, 2), round(y1, 2))
        return StampLayout(box=box, font_size=size, margin=margin, lines=tuple(wrapped))

    normal = layout(STAMP_SIZES_PT + (STAMP_MIN_SIZE_PT,), 4)
    if not any(_overlaps(normal.box, t) for t in text_boxes_pt):
        return normal
    small = layout((STAMP_MIN_SIZE_PT,), 2)
    still = any(_overlaps(small.box, t) for t in text_boxes_pt)
    return small.model_copy(update={"shrunk": True, "overlaps_text": still})


def layout_flags(layout: StampLayout, rotate: int) -> list[Flag]:
    """Review flags the note's placement calls for (R20; a rotated page 1)."""
    flags = []
    if rotate % 360:
        flags.append(
            make_flag(
                "stamp_on_rotated_page",
                f"page 1 has /Rotate {rotate}: the note sits at the unrotated top-left",
                Severity.REVIEW,
                page=1,
            )
        )
    if layout.shrunk:
        flags.append(
            make_flag(
                "stamp_overlaps_text",
                "the signature note overlaps detected text at the top-left of page 1; "
                "it was shrunk to 8 pt"
                + (" and still overlaps" if layout.overlaps_text else "")
                + " (R20)",
                Severity.REVIEW,
                page=1,
            )
        )
    return flags


def stamp_style(layout: StampLayout, font_path: str) -> Any:
    """The pyHanko text stamp drawing ``layout`` with the embedded font."""
    from pyhanko.pdf_utils.layout import AxisAlignment, InnerScaling, Margins, SimpleBoxLayoutRule
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.stamp import TextStampStyle

    m = layout.margin
    return TextStampStyle(
        stamp_text="\n".join(line.replace("%", "%%") for line in layout.lines),
        text_box_style=TextBoxStyle(
            font=_glyph_factory(font_path, layout.font_size, "\n".join(layout.lines)),
            font_size=layout.font_size,  # type: ignore[arg-type]
            leading=_leading(layout.font_size),
            # no extra 10 pt padding around the text: the stamp's own margins apply
            box_layout_rule=SimpleBoxLayoutRule(
                x_align=AxisAlignment.ALIGN_MIN,
                y_align=AxisAlignment.ALIGN_MIN,
                margins=Margins.uniform(0),
            ),
        ),
        inner_content_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MIN,
            y_align=AxisAlignment.ALIGN_MID,
            margins=Margins(left=m, right=m, top=m, bottom=m),
            inner_content_scaling=InnerScaling.SHRINK_TO_FIT,
        ),
        border_width=1,
        background=None,
    )


def page_one_box(reader: Any) -> tuple[BBoxPt, int]:
    """Crop box (else media box) and /Rotate of page 1, following inherited attributes."""
    node = reader.root["/Pages"]
    inherited: dict[str, Any] = {}
    while True:
        for key in ("/MediaBox", "/CropBox", "/Rotate"):
            if key in node:
                inherited[key] = node[key]
        if node.get("/Type") == "/Page" or "/Kids" not in node:
            break
        node = node["/Kids"][0].get_object()
    raw = inherited.get("/CropBox", inherited.get("/MediaBox"))
    if raw is None:
        raise SigningError("page 1 has no MediaBox")
    x0, y0, x1, y1 = (float(v) for v in raw)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), int(inherited.get("/Rotate", 0))
