"""PDF/A-2 packaging: one PDF per component, built object by object with pikepdf (R12–R14, R16).

Every page is its scan image drawn at 100 % scale (page size = pixels / dpi × 72 pt, R12) with
an invisible OCR text layer on top. The file is PDF/A-2u when every page has OCR text and
PDF/A-2b otherwise (R13), written directly in conforming form: no Ghostscript, no conversion
pass. Conformance is proven in the test suite with veraPDF, before and after signing.

What happens to each image (the guarantee, img2pdf-style)
--------------------------------------------------------

Pass-through (``EncodedImage.passthrough``, from ingest): the compressed bytes become the image
stream unchanged (the test suite compares them byte for byte). With the opt-in
``jpeg_flate_wrap`` setting, JPEG data is wrapped in Flate when that saves ≥ 1 % (about 0.9 %
on the corpus): decoding the Flate layer gives the scan bytes exactly.

===========================  ===================================================================
input                        in the PDF
===========================  ===================================================================
JPEG gray / RGB              passed through as ``DCTDecode`` (baseline or progressive); SOF
                             size and component count must match the model, else refused
JPEG CMYK                    passed through with its embedded ICC profile (``ICCBased``, Adobe
                             inverted data gets ``/Decode``); **refused** without a profile
                             (DeviceCMYK is not allowed beside an sRGB output intent)
CCITT G3/G4 bilevel          passed through as ``CCITTFaxDecode`` with the given DecodeParms
                             (from TIFF: one strip only, since strips are separate CCITT
                             streams; ``BlackIs1`` true when Photometric is BlackIsZero)
JBIG2 (from PDFs)            passed through as ``JBIG2Decode`` with its globals stream when
                             given (ingest never gives it: it re-encodes JBIG2 from pixels)
JPEG 2000 (from PDFs)        passed through as ``JPXDecode`` (colour from the codestream) when
                             given (ingest never gives it: it re-encodes JPX from pixels)
Flate (PNG IDAT, TIFF zip)   passed through as ``FlateDecode`` with the given DecodeParms
                             (PNG predictors 10–15)
embedded ICC profile         kept as the image's ``ICCBased`` colour space when its colour
                             space matches the image; otherwise ``DeviceGray``/``DeviceRGB``
                             under the document's sRGB output intent
===========================  ===================================================================

Re-encoded (``encode_pixels``: the clean stage changed the pixels, or the source cannot be
passed through, e.g. BMP, LZW TIFF, interlaced or palette PNG):

===========================  ===================================================================
pixels                       encoding
===========================  ===================================================================
bilevel, or gray holding     CCITT G4 (lossless, R14 "bitonal CCITT G4"); bilevel pixels
only 0 and 255               with gray levels are thresholded at 128
gray                         Flate with PNG predictors (lossless) when that is at most
                             ``lossless_gray_max_ratio`` × the JPEG size (a 1/8 row-band
                             sample decides first whether trying is worth it), else JPEG
                             ``jpeg_quality`` (≥ 85, R14)
RGB                          JPEG ``jpeg_quality`` (≥ 85, R14), 4:2:0, optimised Huffman tables
===========================  ===================================================================

Refused with ``PdfError`` (message names file and page): JPEG whose frame size or component
count disagrees with the model; CMYK without a usable ICC profile; dpi ≤ 0; a page side outside
PDF/A's 3–14 400 pt (check the dpi); a component without pages.

Never: downsampling (R14), colour conversion, transparency (no SMask), Ghostscript.
Fixed cost per file, beside the pages: about 5.5 kB (XMP with the extension schema, kept
uncompressed so any XMP scanner finds it; sRGB ICC; the glyph-less font and its ToUnicode).

Text layer
----------
Words are drawn in text render mode 3 (invisible) with a "glyph-less" font, as tesseract's own
PDF renderer does: a CIDFontType2 whose embedded TrueType program has one blank glyph of width
500/1000 em. Each distinct character of the document gets a CID (1…n, by code point) that maps
to that glyph, and the ToUnicode CMap maps every CID back to exactly one character, so text
extraction returns the OCR text (NFC, Vietnamese letters as precomposed code points) unchanged.
The font is a few hundred bytes whatever the script, and nothing can be mis-shaped because
nothing is drawn. Per line, one font size and baseline are taken from the median top and bottom
of its words (a robust line box, so a short word and a tall accented word both overlap it);
per word, the start is its left edge (to 1/100 pt) and horizontal scaling (``Tz``) stretches
it to its right edge, so selection highlights the word. Words follow the OCR's reading order, a space glyph
between words, one text line per OCR line.

Metadata
--------
XMP: ``pdfaid`` part 2 / conformance U or B; ``dc:title``, ``dc:creator`` (the digitiser),
``dc:language``; ``xmp:CreateDate``/``ModifyDate``/``MetadataDate`` and the Info dates from
``PdfMetadata.created_at`` in +07:00; ``pdf:Producer`` and ``xmp:CreatorTool`` equal to the
Info entries; ``xmpMM:DocumentID``/``InstanceID`` derived from a hash of the content and the
metadata. The dossier fields use the custom schema below, declared in a ``pdfaExtension``
block as PDF/A requires (ISO 19005-2 6.6.2.3.2):

    namespace ``https://digitize.example/ns/dossier/1.0/``, prefix ``hoso``, all Text:
    ``dossierCode`` (mã hồ sơ), ``procedureCode`` (mã thủ tục hành chính), ``componentName``
    (tên thành phần hồ sơ), ``digitiser`` (người số hóa).

Output is deterministic: the same pages, metadata and settings give the same bytes (no clock,
no random IDs; the trailer ``/ID`` is qpdf's content hash). The file is written to a temporary
name in the target folder, fsynced and renamed into place.
"""

from __future__ import annotations

import hashlib
import io
import os
import statistics
import struct
import time
import unicodedata
import uuid
import zlib
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pikepdf
from PIL import Image, TiffImagePlugin

from digitize.errors import OutputError, PdfError
from digitize.jpeg import jpeg_frame
from digitize.models import ColourMode, EncodedImage, FrozenModel, PageOcr, PdfResult
from digitize.settings import PdfaSettings

VIETNAM_TZ = timezone(timedelta(hours=7))
DOSSIER_NAMESPACE = "https://digitize.example/ns/dossier/1.0/"
DOSSIER_PREFIX = "hoso"
DOSSIER_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("dossierCode", "Dossier code (mã hồ sơ)"),
    ("procedureCode", "Procedure code (mã thủ tục)"),
    ("componentName", "Component name (thành phần hồ sơ)"),
    ("digitiser", "Digitiser's full name (người số hóa)"),
)
SRGB_ICC_PATH = Path(__file__).parent / "data" / "sRGB-v4.icc"

# Glyph-less font geometry, in 1/1000 em. Ascent + |descent| = 1 em, so the font size of a line
# is simply the height of its box.
_GLYPH_WIDTH = 500
_ASCENT = 800
_DESCENT = -200
# PDF/A-2 implementation limits (ISO 19005-2 6.1.13 / ISO 32000-1 Annex C): page sides.
_MIN_PAGE_PT = 3.0
_MAX_PAGE_PT = 14400.0


class PdfPage(FrozenModel):
    image: EncodedImage
    dpi_x: float
    dpi_y: float
    ocr: PageOcr | None = None  # words in pixels of ``image``


class PdfMetadata(FrozenModel):
    title: str
    component_name: str
    dossier_code: str
    procedure_code: str | None = None
    digitiser: str | None = None
    created_at: datetime
    language: str = "vi"


# --- encoding -------------------------------------------------------------------------------
def encode_pixels(
    pixels: np.ndarray, colour_mode: ColourMode, settings: PdfaSettings | None = None
) -> EncodedImage:
    """Encode cleaned pixels for the PDF (JPEG for colour/gray photos, G4 for bilevel).

    ``pixels``: uint8 HxWx3 for RGB, uint8 HxW (0..255) for gray, uint8 0/255 or bool HxW for
    bilevel. The rule per input is the table in the module docstring.
    """
    settings = settings or PdfaSettings()
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if colour_mode is ColourMode.RGB:
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise PdfError(f"RGB pixels must be uint8 HxWx3, got {pixels.dtype} {pixels.shape}")
        return _encode_jpeg(Image.fromarray(pixels, "RGB"), ColourMode.RGB, settings)
    if pixels.ndim != 2:
        raise PdfError(f"{colour_mode.value} pixels must be HxW, got shape {pixels.shape}")
    if pixels.dtype == np.bool_:
        return _encode_g4(pixels)
    if pixels.dtype != np.uint8:
        raise PdfError(f"{colour_mode.value} pixels must be uint8 or bool, got {pixels.dtype}")
    only_black_white = not np.any((pixels != 0) & (pixels != 255))
    if colour_mode is ColourMode.BILEVEL or only_black_white:
        if not only_black_white:  # "bilevel" pixels with gray levels: threshold at mid-gray
            pixels = np.where(pixels >= 128, 255, 0).astype(np.uint8)
        return _encode_g4(pixels == 255)
    gray = Image.fromarray(pixels, "L")
    jpeg = _encode_jpeg(gray, ColourMode.GRAY, settings)
    budget = settings.lossless_gray_max_ratio * len(jpeg.data)
    # Flate on a noisy scan is slow (seconds) and big: estimate from a 1/8 sample of row bands
    # first, and only encode the whole page when lossless has a chance.
    if budget > 0 and _estimate_flate_gray(pixels) <= 1.2 * budget:
        flate = _encode_flate_gray(gray)
        if len(flate.data) <= budget:
            return flate
    return jpeg


def _encode_jpeg(image: Image.Image, mode: ColourMode, settings: PdfaSettings) -> EncodedImage:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=settings.jpeg_quality, optimize=True, subsampling="4:2:0")
    return EncodedImage(
        data=buf.getvalue(),
        filter="DCTDecode",
        colour_mode=mode,
        width=image.width,
        height=image.height,
        bits_per_component=8,
        passthrough=False,
    )


def _encode_flate_gray(image: Image.Image) -> EncodedImage:
    """PNG-filtered Flate: Pillow's PNG encoder picks a filter per row; IDAT is the stream."""
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=6)
    return EncodedImage(
        data=_png_idat(buf.getvalue()),
        filter="FlateDecode",
        colour_mode=ColourMode.GRAY,
        width=image.width,
        height=image.height,
        bits_per_component=8,
        decode_parms={"Predictor": 15, "Colors": 1, "BitsPerComponent": 8, "Columns": image.width},
        passthrough=False,
    )


def _estimate_flate_gray(pixels: np.ndarray, band: int = 32, every: int = 256) -> float:
    height = pixels.shape[0]
    if height <= 4 * every:
        return float(len(_encode_flate_gray(Image.fromarray(pixels, "L")).data))
    sample = np.concatenate([pixels[y : y + band] for y in range(0, height, every)])
    size = len(_encode_flate_gray(Image.fromarray(sample, "L")).data)
    return size * height / sample.shape[0]


def _png_idat(png: bytes) -> bytes:
    chunks = []
    pos = 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        if kind == b"IDAT":
            chunks.append(png[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return b"".join(chunks)


def _encode_g4(white: np.ndarray) -> EncodedImage:
    """CCITT G4 via libtiff (through Pillow), as one strip so its bytes are the whole stream."""
    height, width = white.shape
    image = Image.fromarray(white.astype(bool))
    buf = io.BytesIO()
    image.save(buf, "TIFF", compression="group4", tiffinfo={278: height})
    with TiffImagePlugin.TiffImageFile(io.BytesIO(buf.getvalue())) as tiff:
        offsets = tiff.tag_v2[273]
        counts = tiff.tag_v2[279]
        photometric = tiff.tag_v2.get(262, 0)
    if len(offsets) != 1:
        raise PdfError(f"G4 encoder wrote {len(offsets)} strips, expected one")
    data = buf.getvalue()[offsets[0] : offsets[0] + counts[0]]
    # libtiff codes 0-bits as "white" runs; Pillow's mode "1" stores white as 1 and labels the
    # TIFF BlackIsZero, so in PDF terms black pixels were coded as 1-bits: BlackIs1.
    return EncodedImage(
        data=data,
        filter="CCITTFaxDecode",
        colour_mode=ColourMode.BILEVEL,
        width=width,
        height=height,
        bits_per_component=1,
        decode_parms={"K": -1, "Columns": width, "Rows": height, "BlackIs1": photometric == 1},
        passthrough=False,
    )


# --- text layer -----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def glyphless_font_program() -> bytes:
    """A TrueType program with .notdef and one blank glyph, both 500/1000 em wide."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    builder = FontBuilder(1000, isTTF=True)
    builder.font.recalcTimestamp = False  # deterministic bytes
    builder.setupGlyphOrder([".notdef", "blank"])
    builder.setupCharacterMap({0x20: "blank"})
    builder.setupGlyf({".notdef": TTGlyphPen(None).glyph(), "blank": TTGlyphPen(None).glyph()})
    builder.setupHorizontalMetrics({".notdef": (_GLYPH_WIDTH, 0), "blank": (_GLYPH_WIDTH, 0)})
    builder.setupHorizontalHeader(ascent=_ASCENT, descent=_DESCENT)
    builder.setupNameTable({"familyName": "GlyphLessFont", "styleName": "Regular"})
    builder.setupOS2(
        sTypoAscender=_ASCENT,
        sTypoDescender=_DESCENT,
        usWinAscent=_ASCENT,
        usWinDescent=-_DESCENT,
        sxHeight=_ASCENT // 2,
        sCapHeight=_ASCENT,
    )
    builder.setupPost()
    head = builder.font["head"]
    head.created = head.modified = 3786825600  # 2024-01-01, fixed: same font bytes every run
    buf = io.BytesIO()
    builder.font.save(buf)
    return buf.getvalue()


def _clean_word(text: str) -> str:
    """NFC, no whitespace or control characters, nothing ToUnicode may not map to (2u)."""
    text = unicodedata.normalize("NFC", text)
    return "".join(
        ch
        for ch in text
        if not ch.isspace()
        and unicodedata.category(ch) not in ("Cc", "Cs", "Cn")
        and ch not in "\ufeff\ufffe"
    )


class _LaidOutWord:
    __slots__ = ("text", "x_pt", "width_pt")

    def __init__(self, text: str, x_pt: float, width_pt: float) -> None:
        self.text = text
        self.x_pt = x_pt
        self.width_pt = width_pt


class _LaidOutLine:
    __slots__ = ("words", "baseline_pt", "size_pt")

    def __init__(self, words: list[_LaidOutWord], baseline_pt: float, size_pt: float) -> None:
        self.words = words
        self.baseline_pt = baseline_pt
        self.size_pt = size_pt


def _layout_text(page: PdfPage, page_height_pt: float) -> list[_LaidOutLine]:
    """OCR words → lines in PDF points (origin bottom-left), in the OCR's reading order."""
    ocr = page.ocr
    if ocr is None or not ocr.words:
        return []
    # Words are in pixels of the image OCR read; normally that is ``page.image`` itself.
    sx = page.image.width / ocr.width_px if ocr.width_px else 1.0
    sy = page.image.height / ocr.height_px if ocr.height_px else 1.0
    px_to_pt_x = 72.0 / page.dpi_x
    px_to_pt_y = 72.0 / page.dpi_y
    by_line: dict[int, list[tuple[str, tuple[int, int, int, int]]]] = {}
    for word in ocr.words:
        text = _clean_word(word.text)
        if text:
            by_line.setdefault(word.line, []).append((text, word.bbox))
    lines = []
    for line_index in sorted(by_line):
        entries = by_line[line_index]
        top_px = statistics.median(b[1] for _, b in entries) * sy
        bottom_px = statistics.median(b[3] for _, b in entries) * sy
        size_pt = max((bottom_px - top_px) * px_to_pt_y, 1.0)
        top_pt = page_height_pt - top_px * px_to_pt_y
        baseline_pt = top_pt - size_pt * _ASCENT / 1000.0
        words = [
            _LaidOutWord(text, b[0] * sx * px_to_pt_x, max((b[2] - b[0]) * sx * px_to_pt_x, 0.1))
            for text, b in entries
        ]
        lines.append(_LaidOutLine(words, baseline_pt, size_pt))
    return lines


def _num(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _hundredths(value: int) -> str:
    """An integer count of 1/100 pt as a short PDF number (exact: no float drift in Td sums)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 100)
    return f"{sign}{whole}.{frac:02d}".rstrip("0").rstrip(".") if frac else f"{sign}{whole}"


def _text_operators(lines: list[_LaidOutLine], cids: dict[str, int]) -> bytes:
    """Invisible text: one Tf per line, per word a Td to its left edge and a Tz to its width.

    Positions are rounded to 1/100 pt and written as Td differences of the rounded values, so
    they never drift; a word's width is exact to 0.1 % through Tz.
    """
    space = f"{cids[' ']:04X}" if " " in cids else ""
    out = ["BT", "3 Tr"]
    at_x = at_y = 0  # current line-matrix origin, 1/100 pt
    for line in lines:
        out.append(f"/F1 {_num(line.size_pt)} Tf")
        y = round(line.baseline_pt * 100)
        last = len(line.words) - 1
        for i, word in enumerate(line.words):
            x = round(word.x_pt * 100)
            natural = len(word.text) * _GLYPH_WIDTH / 1000.0 * line.size_pt
            scale = f"{max(100.0 * word.width_pt / natural, 1.0):.1f}".rstrip("0").rstrip(".")
            codes = "".join(f"{cids[ch]:04X}" for ch in word.text)
            if i < last:
                codes += space  # explicit spaces: extraction and copy-paste need no guessing
            out.append(
                f"{scale} Tz {_hundredths(x - at_x)} {_hundredths(y - at_y)} Td <{codes}> Tj"
            )
            at_x, at_y = x, y
    out.append("ET")
    return ("\n".join(out) + "\n").encode("ascii")


def _to_unicode_cmap(cids: dict[str, int]) -> bytes:
    """CID → character, as bfrange runs where CIDs and code points both step by one."""
    entries = sorted((cid, ord(ch)) for ch, cid in cids.items())
    ranges: list[list[int]] = []  # [first cid, last cid, first code point]
    for cid, code in entries:
        if ranges:
            first, last, start = ranges[-1]
            if (
                cid == last + 1
                and code == start + cid - first
                and code <= 0xFFFF
                and cid >> 8 == first >> 8  # a bfrange may only vary the last source byte
                and code >> 8 == start >> 8  # … and must not carry into the destination's
            ):
                ranges[-1][1] = cid
                continue
        ranges.append([cid, cid, code])
    body = []
    for offset in range(0, len(ranges), 100):  # at most 100 entries per block
        chunk = ranges[offset : offset + 100]
        body.append(f"{len(chunk)} beginbfrange")
        for first, last, code in chunk:
            body.append(
                f"<{first:04X}> <{last:04X}> <{chr(code).encode('utf-16-be').hex().upper()}>"
            )
        body.append("endbfrange")
    text = "\n".join(
        [
            "/CIDInit /ProcSet findresource begin",
            "12 dict begin",
            "begincmap",
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
            "/CMapName /Adobe-Identity-UCS def",
            "/CMapType 2 def",
            "1 begincodespacerange",
            "<0000> <FFFF>",
            "endcodespacerange",
            *body,
            "endcmap",
            "CMapName currentdict /CMap defineresource pop",
            "end",
            "end",
        ]
    )
    return (text + "\n").encode("ascii")


def _make_font(pdf: pikepdf.Pdf, cids: dict[str, int]) -> pikepdf.Dictionary:
    program = glyphless_font_program()
    font_file = pikepdf.Stream(pdf, zlib.compress(program, 9))
    font_file.Filter = pikepdf.Name.FlateDecode
    font_file.Length1 = len(program)
    descriptor = pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor,
        FontName=pikepdf.Name("/GlyphLessFont"),
        Flags=5,  # fixed pitch, symbolic
        FontBBox=[0, _DESCENT, _GLYPH_WIDTH, _ASCENT],
        ItalicAngle=0,
        Ascent=_ASCENT,
        Descent=_DESCENT,
        CapHeight=_ASCENT,
        StemV=80,
        FontFile2=font_file,
    )
    # Every CID in use (1…n) draws the one blank glyph: GID 1, never .notdef (6.2.11.8).
    cid_to_gid = _flate_stream(pdf, b"\x00\x01" * (max(cids.values()) + 1))
    cid_font = pikepdf.Dictionary(
        Type=pikepdf.Name.Font,
        Subtype=pikepdf.Name.CIDFontType2,
        BaseFont=pikepdf.Name("/GlyphLessFont"),
        CIDSystemInfo=pikepdf.Dictionary(
            Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"), Supplement=0
        ),
        FontDescriptor=pdf.make_indirect(descriptor),
        DW=_GLYPH_WIDTH,
        CIDToGIDMap=cid_to_gid,
    )
    return pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type0,
            BaseFont=pikepdf.Name("/GlyphLessFont"),
            Encoding=pikepdf.Name("/Identity-H"),
            DescendantFonts=[pdf.make_indirect(cid_font)],
            ToUnicode=_flate_stream(pdf, _to_unicode_cmap(cids)),
        )
    )


def _flate_stream(pdf: pikepdf.Pdf, data: bytes) -> pikepdf.Stream:
    stream = pikepdf.Stream(pdf, zlib.compress(data, 9))
    stream.Filter = pikepdf.Name.FlateDecode
    return stream


# --- images ---------------------------------------------------------------------------------
def _icc_colour_space(icc: bytes | None) -> tuple[str, int] | None:
    """(ICC data colour space, N) when ``icc`` looks like a usable input/display profile."""
    if not icc or len(icc) < 132 or icc[36:40] != b"acsp":
        return None
    space = icc[16:20]
    n = {b"GRAY": 1, b"RGB ": 3, b"CMYK": 4}.get(space)
    if n is None or icc[12:16] not in (b"scnr", b"mntr", b"prtr", b"spac"):
        return None
    return space.decode().strip(), n


def _image_xobject(
    pdf: pikepdf.Pdf,
    image: EncodedImage,
    icc_cache: dict[bytes, pikepdf.Object],
    where: tuple[Path, int],
    settings: PdfaSettings,
) -> pikepdf.Stream:
    expected_components = {ColourMode.RGB: 3, ColourMode.GRAY: 1, ColourMode.BILEVEL: 1}[
        image.colour_mode
    ]
    decode: list[int] | None = None
    if image.filter == "DCTDecode":
        try:
            frame = jpeg_frame(image.data)
        except ValueError as exc:
            raise PdfError(f"unreadable JPEG data ({exc})", path=where[0], page=where[1]) from None
        width, height, components, adobe = frame.width, frame.height, frame.components, frame.adobe
        if (width, height) != (image.width, image.height):
            raise PdfError(
                f"JPEG is {width}x{height} px but the page says {image.width}x{image.height}",
                path=where[0],
                page=where[1],
            )
        if image.cmyk or components == 4:
            expected_components = 4
            if adobe:  # Adobe CMYK JPEGs store inverted values
                decode = [1, 0] * 4
        if components != expected_components:
            raise PdfError(
                f"JPEG has {components} components, {image.colour_mode.value} needs "
                f"{expected_components}",
                path=where[0],
                page=where[1],
            )
    components = 4 if image.cmyk else expected_components
    data = image.data
    filters = [pikepdf.Name("/" + image.filter)]
    if image.filter == "DCTDecode" and settings.jpeg_flate_wrap:
        wrapped = zlib.compress(data, 6)
        if len(wrapped) <= 0.99 * len(data):  # a filter chain only when it pays
            data = wrapped
            filters.insert(0, pikepdf.Name.FlateDecode)
    stream = pikepdf.Stream(pdf, data)
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Image
    stream.Width = image.width
    stream.Height = image.height
    stream.Filter = filters[0] if len(filters) == 1 else pikepdf.Array(filters)
    if image.filter != "JPXDecode":  # JPEG 2000 carries its own colour and depth
        stream.BitsPerComponent = image.bits_per_component
        stream.ColorSpace = _colour_space(pdf, image, components, icc_cache, where)
    if decode is not None:
        stream.Decode = decode
    parms = dict(image.decode_parms)
    if image.filter == "CCITTFaxDecode":
        parms.setdefault("K", -1)
        parms.setdefault("Columns", image.width)
        parms.setdefault("Rows", image.height)
    decode_parms = pikepdf.Dictionary({"/" + k: v for k, v in sorted(parms.items())})
    if image.filter == "JBIG2Decode" and image.jbig2_globals:
        decode_parms.JBIG2Globals = pdf.make_indirect(pikepdf.Stream(pdf, image.jbig2_globals))
    if len(decode_parms):
        stream.DecodeParms = (
            decode_parms if len(filters) == 1 else pikepdf.Array([None, decode_parms])
        )
    return stream


def _colour_space(
    pdf: pikepdf.Pdf,
    image: EncodedImage,
    components: int,
    icc_cache: dict[bytes, pikepdf.Object],
    where: tuple[Path, int],
) -> pikepdf.Object:
    icc = _icc_colour_space(image.icc_profile)
    if icc is not None and icc[1] == components and image.bits_per_component > 1:
        assert image.icc_profile is not None
        key = hashlib.sha256(image.icc_profile).digest()
        if key not in icc_cache:
            profile = pikepdf.Stream(pdf, zlib.compress(image.icc_profile, 9))
            profile.Filter = pikepdf.Name.FlateDecode
            profile.N = components
            icc_cache[key] = pdf.make_indirect(pikepdf.Array([pikepdf.Name.ICCBased, profile]))
        return icc_cache[key]
    if components == 3:
        return pikepdf.Name.DeviceRGB
    if components == 1:
        return pikepdf.Name.DeviceGray
    raise PdfError(
        "CMYK image without a usable embedded ICC profile; PDF/A forbids DeviceCMYK "
        "beside the sRGB output intent",
        hint="re-encode the page with encode_pixels() as RGB",
        path=where[0],
        page=where[1],
    )


# --- metadata -------------------------------------------------------------------------------
def _vn_time(value: datetime) -> datetime:
    """Times are shown in Vietnam time; naive values are taken to be Vietnam time already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=VIETNAM_TZ, microsecond=0)
    return value.astimezone(VIETNAM_TZ).replace(microsecond=0)


def _pdf_date(value: datetime) -> str:
    return value.strftime("D:%Y%m%d%H%M%S+07'00'")


def _xmp_date(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S+07:00")


def _xml_text(value: str, quote: bool = False) -> str:
    value = unicodedata.normalize("NFC", value)
    value = "".join(ch for ch in value if ch in "\t\n" or unicodedata.category(ch) != "Cc")
    return escape(value, {'"': "&quot;"} if quote else {})


def _software() -> tuple[str, str]:
    try:
        version = importlib_metadata.version("digitize")
    except importlib_metadata.PackageNotFoundError:
        version = "unknown"
    creator = f"digitize {version}"
    return creator, f"{creator}; pikepdf {pikepdf.__version__}"


def _xmp_packet(
    meta: PdfMetadata,
    part: str,
    created: datetime,
    creator_tool: str,
    producer: str,
    document_id: str,
    instance_id: str,
) -> bytes:
    """One compact rdf:Description: simple properties as attributes (valid RDF/XML, and the
    packet stays uncompressed so any XMP scanner finds it, at about 1.7 kB)."""
    date = _xmp_date(created)
    simple = [
        ("pdfaid:part", "2"),
        ("pdfaid:conformance", part[-1].upper()),
        ("xmp:CreateDate", date),
        ("xmp:ModifyDate", date),
        ("xmp:MetadataDate", date),
        ("xmp:CreatorTool", creator_tool),
        ("pdf:Producer", producer),
        ("xmpMM:DocumentID", document_id),
        ("xmpMM:InstanceID", instance_id),
        (f"{DOSSIER_PREFIX}:dossierCode", meta.dossier_code),
        (f"{DOSSIER_PREFIX}:procedureCode", meta.procedure_code),
        (f"{DOSSIER_PREFIX}:componentName", meta.component_name),
        (f"{DOSSIER_PREFIX}:digitiser", meta.digitiser),
    ]
    attributes = "".join(
        f' {name}="{_xml_text(value, quote=True)}"' for name, value in simple if value
    )
    creator = (
        f"<dc:creator><rdf:Seq><rdf:li>{_xml_text(meta.digitiser)}</rdf:li></rdf:Seq></dc:creator>"
        if meta.digitiser
        else ""
    )
    properties = "".join(
        "<rdf:li rdf:parseType='Resource'>"
        f"<pdfaProperty:name>{name}</pdfaProperty:name>"
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{_xml_text(description)}</pdfaProperty:description>"
        "</rdf:li>"
        for name, description in DOSSIER_PROPERTIES
    )
    xml = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about=""'
        ' xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        ' xmlns:pdf="http://ns.adobe.com/pdf/1.3/"'
        ' xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"'
        f' xmlns:{DOSSIER_PREFIX}="{DOSSIER_NAMESPACE}"'
        ' xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"'
        ' xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#"'
        ' xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#"'
        f"{attributes}>"
        "<dc:format>application/pdf</dc:format>"
        f"<dc:title><rdf:Alt><rdf:li xml:lang='x-default'>{_xml_text(meta.title)}</rdf:li>"
        f"</rdf:Alt></dc:title>{creator}"
        f"<dc:language><rdf:Bag><rdf:li>{_xml_text(meta.language)}</rdf:li></rdf:Bag></dc:language>"
        "<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType='Resource'>"
        "<pdfaSchema:schema>digitize dossier metadata</pdfaSchema:schema>"
        f"<pdfaSchema:namespaceURI>{DOSSIER_NAMESPACE}</pdfaSchema:namespaceURI>"
        f"<pdfaSchema:prefix>{DOSSIER_PREFIX}</pdfaSchema:prefix>"
        f"<pdfaSchema:property><rdf:Seq>{properties}</rdf:Seq></pdfaSchema:property>"
        "</rdf:li></rdf:Bag></pdfaExtension:schemas>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    )
    return xml.encode("utf-8")


@lru_cache(maxsize=1)
def srgb_icc_profile() -> bytes:
    """The bundled sRGB profile (made by LittleCMS through Pillow, see ``make_srgb_icc``)."""
    return SRGB_ICC_PATH.read_bytes()


def make_srgb_icc() -> bytes:
    """Re-create ``data/sRGB-v4.icc``: Pillow's ``ImageCms.createProfile("sRGB")`` with the
    creation date fixed (LittleCMS stamps the current time) so the shipped bytes are stable."""
    from PIL import ImageCms

    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    data[24:36] = struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
    data[84:100] = bytes(16)  # profile ID: "not computed" (it would hash the date too)
    return bytes(data)


def _output_intent(pdf: pikepdf.Pdf) -> pikepdf.Dictionary:
    icc = srgb_icc_profile()
    profile = pikepdf.Stream(pdf, zlib.compress(icc, 9))
    profile.Filter = pikepdf.Name.FlateDecode
    profile.N = 3
    return pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.OutputIntent,
            S=pikepdf.Name.GTS_PDFA1,
            OutputConditionIdentifier=pikepdf.String("sRGB IEC61966-2.1"),
            Info=pikepdf.String("sRGB IEC61966-2.1"),
            RegistryName=pikepdf.String("http://www.color.org"),
            DestOutputProfile=profile,
        )
    )


# --- the component file ---------------------------------------------------------------------
def _page_size_pt(page: PdfPage, where: tuple[Path, int]) -> tuple[float, float]:
    if page.dpi_x <= 0 or page.dpi_y <= 0:
        raise PdfError(
            f"dpi must be positive, got {page.dpi_x}x{page.dpi_y}", path=where[0], page=where[1]
        )
    if page.image.width <= 0 or page.image.height <= 0:
        raise PdfError(
            f"empty image {page.image.width}x{page.image.height}", path=where[0], page=where[1]
        )
    width = page.image.width / page.dpi_x * 72.0
    height = page.image.height / page.dpi_y * 72.0
    for side in (width, height):
        if not _MIN_PAGE_PT <= side <= _MAX_PAGE_PT:
            raise PdfError(
                f"page side {side:.1f} pt is outside PDF/A's {_MIN_PAGE_PT:g}–"
                f"{_MAX_PAGE_PT:g} pt (check the dpi)",
                path=where[0],
                page=where[1],
            )
    return width, height


def build_component_pdf(
    pages: Iterable[PdfPage],
    meta: PdfMetadata,
    out_path: Path,
    settings: PdfaSettings | None = None,
) -> PdfResult:
    """Write one PDF/A-2 file (2u when every page has text, else 2b) at ``out_path``."""
    started = time.perf_counter()
    settings = settings or PdfaSettings()
    pages = list(pages)
    out_path = Path(out_path)
    if not pages:
        raise PdfError("a component PDF needs at least one page", path=out_path)
    sizes = [_page_size_pt(p, (out_path, i)) for i, p in enumerate(pages, 1)]
    layouts = [_layout_text(p, h) for p, (_, h) in zip(pages, sizes, strict=True)]
    part = "2u" if all(layouts) else "2b"
    characters = sorted(
        {ch for lines in layouts for ln in lines for w in ln.words for ch in w.text}
    )
    if any(len(line.words) > 1 for lines in layouts for line in lines):
        characters = sorted(set(characters) | {" "})
    if len(characters) > 0xFFFE:  # two-byte codes, CID 0 unused
        raise PdfError(f"{len(characters)} distinct characters do not fit one font", path=out_path)
    cids = {ch: i for i, ch in enumerate(characters, 1)}

    pdf = pikepdf.new()
    font = _make_font(pdf, cids) if cids else None
    icc_cache: dict[bytes, pikepdf.Object] = {}
    content_hash = hashlib.sha256()
    page_bytes = []
    for index, (page, (width, height), lines) in enumerate(
        zip(pages, sizes, layouts, strict=True), 1
    ):
        where = (out_path, index)
        image = pdf.make_indirect(_image_xobject(pdf, page.image, icc_cache, where, settings))
        ops = f"q {_num(width)} 0 0 {_num(height)} 0 0 cm /Im0 Do Q\n".encode("ascii")
        if lines:
            ops += _text_operators(lines, cids)
        content = _flate_stream(pdf, ops)
        resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
        if lines and font is not None:
            resources.Font = pikepdf.Dictionary(F1=font)
        pdf.pages.append(
            pikepdf.Page(
                pikepdf.Dictionary(
                    Type=pikepdf.Name.Page,
                    MediaBox=[0, 0, float(_num(width)), float(_num(height))],
                    Resources=resources,
                    Contents=pdf.make_indirect(content),
                )
            )
        )
        page_bytes.append(len(image.read_raw_bytes()) + len(content.read_raw_bytes()))
        content_hash.update(hashlib.sha256(page.image.data).digest())
        content_hash.update(hashlib.sha256(ops).digest())

    created = _vn_time(meta.created_at)
    creator_tool, producer = _software()
    content_hash.update(meta.model_dump_json().encode())
    content_hash.update(settings.model_dump_json().encode())
    content_hash.update(part.encode())
    digest = content_hash.digest()
    document_id = f"uuid:{uuid.UUID(bytes=digest[:16], version=4)}"
    instance_id = f"uuid:{uuid.UUID(bytes=digest[16:32], version=4)}"
    xmp = pikepdf.Stream(
        pdf, _xmp_packet(meta, part, created, creator_tool, producer, document_id, instance_id)
    )
    xmp.Type = pikepdf.Name.Metadata
    xmp.Subtype = pikepdf.Name.XML
    pdf.Root.Metadata = pdf.make_indirect(xmp)
    pdf.Root.OutputIntents = [_output_intent(pdf)]
    pdf.Root.Lang = pikepdf.String(meta.language)
    pdf.Root.ViewerPreferences = pikepdf.Dictionary(DisplayDocTitle=True)
    info = pikepdf.Dictionary(
        Title=pikepdf.String(unicodedata.normalize("NFC", meta.title)),
        Creator=pikepdf.String(creator_tool),
        Producer=pikepdf.String(producer),
        CreationDate=pikepdf.String(_pdf_date(created)),
        ModDate=pikepdf.String(_pdf_date(created)),
    )
    if meta.digitiser:
        info.Author = pikepdf.String(unicodedata.normalize("NFC", meta.digitiser))
    pdf.trailer.Info = pdf.make_indirect(info)

    buf = io.BytesIO()
    pdf.save(
        buf,
        deterministic_id=True,
        object_stream_mode=pikepdf.ObjectStreamMode.generate,
        compress_streams=True,
        min_version="1.7",
        fix_metadata_version=False,  # else pikepdf re-serialises (and pads) our XMP packet
    )
    data = buf.getvalue()
    _write_atomically(out_path, data)
    return PdfResult(
        path=out_path,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        pdfa_part=part,
        page_bytes=tuple(page_bytes),
        passthrough_pages=tuple(p.image.passthrough for p in pages),
        seconds=time.perf_counter() - started,
    )


def _write_atomically(out_path: Path, data: bytes) -> None:
    """Temporary name in the same folder, fsync, rename: readers see no file or the whole."""
    folder = out_path.parent
    temp = folder / f".{out_path.name}.{os.getpid()}.tmp"
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, out_path)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(f"cannot write the PDF ({exc.strerror or exc})", path=out_path) from None
