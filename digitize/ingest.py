"""Scan ingest and page QA (R3–R12): locate every page of a dossier, measure it, refuse what a
counter must not accept, and say why in one line.

Contract (fixed): ``ingest_dossier``, ``load_page_pixels``, ``read_page_encoded``.

Inputs
    JPEG, PNG, TIFF (single/multi-page; G4, G3, LZW, deflate, packbits, none, JPEG-in-TIFF),
    BMP, image-only PDFs (DCT, CCITT, JBIG2 with globals, JPX, Flate page images), a single file
    (= one-component dossier) or a dossier folder: one sub-folder or one file per component,
    natural sort (``p2`` < ``p10``) for components and for pages inside a component folder.
    File types are sniffed from magic bytes; the extension only decides whether a file is meant
    to be a scan. Anything else (``.txt``, ``.json``, ``Thumbs.db``, ``.DS_Store``, hidden and
    partial-download files) is listed in ``Dossier.ignored_files``, never fatal.
    ``dossier.yaml`` (optional, in the dossier folder) may give ``dossier_code``,
    ``procedure_code``, ``receiving_organ_id``, ``received_at`` and ``components`` (each:
    ``path``, ``name``, ``declared_pages``, ``note_slip_pages``, ``not_digitised_reason``).

Guarantees
    * Inputs are opened read-only and never modified; each source file is hashed (SHA-256, R8).
    * Pages are decoded one at a time and released (a 300-page TIFF never sits in memory).
    * Image dimensions are checked from the header before any pixel is decoded (bombs).
    * Only ``DigitizeError`` subclasses leave ``ingest_dossier``/``load_page_pixels``; every
      message is one line naming the file (and page).
    * Pixels are left as scanned (EXIF orientation is recorded as a flag, not applied).

Flag codes (``Flag.code``)
    page level:
      ``dpi_inferred``        (warning) dpi missing/implausible/screen default; inferred from the
                              pixel size and the nearest standard paper (A3/A4/A5/Letter/Legal)
      ``dpi_unknown``         (review) dpi missing or implausible and no paper size fits
      ``dpi_non_square``      (info) horizontal and vertical dpi differ by more than 2 %
      ``grayscale_capture``   (warning) gray or bilevel page while colour is required (R11)
      ``blank_page``          (warning) no content (duplex back); kept or dropped per settings
      ``content_at_border``   (review) content reaches the image edge: possible cut-off (R7)
      ``duplicate_page``      (review) pixel-identical to an earlier page
      ``near_duplicate_page`` (review) nearly identical to an earlier page (re-saved copy)
      ``extension_mismatch``  (info) content type differs from the file extension
      ``exif_orientation``    (info) EXIF orientation tag present; pixels left as scanned
      ``pdf_rescanned``       (warning) page image taken from a PDF that had text/signatures
      ``pdf_extra_images``    (info) the PDF page has more than one image; the largest is used
      ``pdf_page_rotate``     (info) the PDF page has /Rotate; pixels left as stored
      ``captured_at_mtime``   (info) no capture time in the file; file modification time used
    component level:
      ``pdf_rescanned``       (warning) which PDF and what it carried (text, signatures)
      ``pdf_encrypted``       (warning) permissions-only encrypted PDF read in rescan mode
      ``not_digitised_has_scans`` (warning) a "not digitised" component folder holds scans
      ``tiff_thumbnail_skipped`` (info) reduced-resolution TIFF sub-images are not pages
    dossier level:
      ``blank_page_dropped``  (warning) which component/file/page was dropped (blank_pages=drop)
      ``dossier_code_format_unknown``, ``procedure_code_format_unknown``,
      ``receiving_organ_id_format`` (warning) codes not in the shapes of requirements §6
      ``empty_folder_ignored`` (info) a sub-folder without scans (convention mode)
      ``cross_component_duplicate`` (review) a page duplicates a page of another component

Thresholds (why these numbers)
    * dpi floor with 1 % tolerance: PDF page sizes are rounded to whole points, so a true
      200-dpi scan can measure 199.5 dpi; R12 allows ±1 % on page size as well.
    * Paper fit tolerance 8 %: scanners crop a few millimetres; A-series pages share one aspect
      ratio, so ties prefer A4, then Letter, Legal, A3, A5 (what counters scan most).
    * Inferred dpi snaps to a standard scanner setting when within 4 % of it.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import struct
import unicodedata
import warnings
import zlib
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import pikepdf
import yaml
from PIL import Image
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from digitize.errors import (
    ConfigError,
    CorruptFileError,
    DigitizeError,
    EmptyDossierError,
    EmptyFileError,
    EncryptedPdfError,
    LowResolutionError,
    PageCountMismatchError,
    PdfNotAScanError,
    TooLargeError,
    TruncatedFileError,
    UnsafePathError,
    UnsupportedFormatError,
)
from digitize.models import (
    ColourMode,
    Component,
    Dossier,
    EncodedImage,
    Flag,
    IngestedPage,
    NotDigitisedReason,
    PageQA,
    PageVariant,
    Severity,
    SourceEncoding,
    SourceFile,
)
from digitize.settings import IngestSettings

VN_TZ = timezone(timedelta(hours=7))  # capture times without an offset are counter-local time

SCAN_EXTENSIONS = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".jfif": "jpeg",
    ".png": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".bmp": "bmp",
    ".dib": "bmp",
    ".pdf": "pdf",
}
DOSSIER_YAML = "dossier.yaml"

# requirements §6
LEGACY_DOSSIER_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}-\d{6}-\d{4}$")
CENTRALISED_DOSSIER_CODE = re.compile(r"^[A-Z]\d{2}\.\d{3}\.\d{2}-\d{6}-\d{6,}$")
PROCEDURE_CODE = re.compile(r"^\d\.\d{6}(\.\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})?$")

# (name, short side mm, long side mm); order = preference when aspect ratios tie
PAPER_SIZES_MM: tuple[tuple[str, float, float], ...] = (
    ("A4", 210.0, 297.0),
    ("Letter", 215.9, 279.4),
    ("Legal", 215.9, 355.6),
    ("A3", 297.0, 420.0),
    ("A5", 148.0, 210.0),
)
STANDARD_DPIS = (100, 150, 200, 240, 300, 400, 600, 1200)
PAPER_TOLERANCE = 0.08
SCREEN_DPIS = (72.0, 96.0)
PLAUSIBLE_DPI = (50.0, 1200.0)
DPI_FLOOR_TOLERANCE = 0.01

_QA_DPI = 100.0  # blank/border/duplicate analysis works on a copy at about this resolution
_DUP_WIDTH = 128
BLANK_INK_SHARE = 0.0025  # share of the page covered by ink below which a page is blank  # near-duplicate fingerprint width (px)

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"II*\x00", 0, "tiff"),
    (b"MM\x00*", 0, "tiff"),
    (b"II+\x00", 0, "tiff"),  # BigTIFF
    (b"MM\x00+", 0, "tiff"),
    (b"BM", 0, "bmp"),
)
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"GIF8", "GIF"),
    (b"RIFF", "RIFF/WebP"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"PK\x03\x04", "ZIP/Office"),
    (b"\xd0\xcf\x11\xe0", "OLE/Office"),
)


# --- small helpers ---------------------------------------------------------------------------
def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """``p2`` < ``p10``; case- and normalisation-insensitive."""
    parts = re.split(r"(\d+)", nfc(name).casefold())
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p != "")


def _flag(code: str, severity: Severity, message: str, page: int | None = None) -> Flag:
    return Flag(code=code, severity=severity, message=message, page=page)


def sniff_format(head: bytes) -> str | None:
    """Real content type from magic bytes: jpeg/png/tiff/bmp/pdf, or None."""
    for magic, offset, fmt in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            if fmt == "bmp" and len(head) >= 18 and head[14] not in (12, 40, 52, 56, 64, 108, 124):
                continue  # "BM" text files: the DIB header size must be a known one
            return fmt
    if b"%PDF-" in head[:1024]:
        return "pdf"
    return None


def header_size(fmt: str, head: bytes) -> tuple[int, int] | None:
    """Pixel size from the first bytes of a PNG/JPEG/BMP, before any decoder runs."""
    try:
        if fmt == "png" and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if fmt == "bmp" and len(head) >= 26:
            if int.from_bytes(head[14:18], "little") == 12:
                w, h = struct.unpack("<HH", head[18:22])
            else:
                w, h = struct.unpack("<ii", head[18:26])
            return abs(w), abs(h)
        if fmt == "jpeg":
            sof = _jpeg_components(head)
            if sof is not None:
                return sof[2], sof[3]
    except struct.error:
        return None
    return None


def _describe_unknown(head: bytes) -> str:
    for magic, name in _OTHER_MAGIC:
        if head.startswith(magic):
            return name
    sample = head[:1024]
    for cut in range(4):  # a multi-byte UTF-8 character may be cut at the end of the sample
        try:
            text = sample[: len(sample) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text and all(ch.isprintable() or ch in "\t\r\n" for ch in text):
            return "text"
        break
    return "unknown content"


def _is_ignorable_name(name: str) -> bool:
    lowered = name.casefold()
    return (
        name.startswith(".")
        or name.startswith("~$")
        or lowered in ("thumbs.db", "desktop.ini")
        or lowered.endswith((".part", ".tmp", ".crdownload", ".partial"))
    )


def _classify_exception(exc: BaseException) -> type[DigitizeError]:
    if isinstance(exc, DigitizeError):
        return type(exc)
    if isinstance(exc, MemoryError | Image.DecompressionBombError):
        return TooLargeError
    if isinstance(exc, EOFError):
        return TruncatedFileError
    text = str(exc).casefold()
    truncated_words = (
        "truncat",
        "unexpected end",
        "premature end",
        "end of file",
        "eof",
        "unpack requires a buffer",
        "not enough data",
        "buffer is not large enough",
        "incomplete",
    )
    if any(word in text for word in truncated_words):
        return TruncatedFileError
    if isinstance(exc, pikepdf.PasswordError):
        return EncryptedPdfError
    if isinstance(exc, pikepdf.DependencyError):
        return UnsupportedFormatError
    return CorruptFileError


@contextmanager
def _guard(display: str, page: int | None = None, what: str = "cannot read") -> Iterator[None]:
    """Turn any library exception into the right ``DigitizeError`` naming the file."""
    try:
        yield
    except DigitizeError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # hostile input reaches deep into PIL/qpdf: never leak
        cls = _classify_exception(exc)
        detail = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200]
        if cls is TruncatedFileError:
            message = f"file is truncated ({detail})"
        elif cls is TooLargeError:
            message = f"image too large to decode safely ({detail})"
        elif cls is UnsupportedFormatError:
            message = f"cannot decode ({detail})"
        else:
            message = f"{what}: corrupt data ({detail})"
        raise cls(message, path=display, page=page) from exc


@contextmanager
def _pil_bomb_guard() -> Iterator[None]:
    # Our own header check (settings.max_pixels) runs right after open; PIL's warning would
    # only duplicate it. PIL's hard error (> 2 × MAX_IMAGE_PIXELS) is mapped by _guard.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


# --- dpi -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PaperFit:
    paper: str
    dpi: float
    mismatch: float  # relative difference between horizontal and vertical dpi


def fit_paper(width_px: int, height_px: int) -> PaperFit | None:
    """Nearest standard paper for this pixel size (either orientation), or None."""
    if width_px <= 0 or height_px <= 0:
        return None
    fits: list[tuple[float, int, PaperFit]] = []
    for rank, (name, short_mm, long_mm) in enumerate(PAPER_SIZES_MM):
        for w_mm, h_mm in ((short_mm, long_mm), (long_mm, short_mm)):
            dx = width_px / (w_mm / 25.4)
            dy = height_px / (h_mm / 25.4)
            mismatch = abs(dx - dy) / ((dx + dy) / 2)
            if mismatch <= PAPER_TOLERANCE:
                dpi = (dx + dy) / 2
                for std in STANDARD_DPIS:
                    if abs(dpi - std) / std <= 0.04:
                        dpi = float(std)
                        break
                fits.append((mismatch, rank, PaperFit(name, dpi, mismatch)))
    if not fits:
        return None
    best = min(f[0] for f in fits)
    # A-series sizes share one aspect ratio: within 1 % of the best fit, prefer the usual paper.
    close = [f for f in fits if f[0] <= best + 0.01]
    return min(close, key=lambda f: (f[1], f[0]))[2]


@dataclass(frozen=True)
class DpiDecision:
    dpi_x: float
    dpi_y: float
    source: Literal["file", "inferred"]
    paper: str | None
    flags: tuple[Flag, ...]


def decide_dpi(
    file_dpi: tuple[float, float] | None, width_px: int, height_px: int, page: int
) -> DpiDecision:
    """R10: dpi from the file; when missing or implausible, inferred from the paper size."""
    fit = fit_paper(width_px, height_px)
    reason: str | None = None
    if file_dpi is None or not all(math.isfinite(v) and v > 0 for v in file_dpi):
        reason = "no resolution in the file"
    else:
        lo, hi = min(file_dpi), max(file_dpi)
        if lo < PLAUSIBLE_DPI[0] or hi > PLAUSIBLE_DPI[1]:
            reason = f"implausible resolution {lo:g}×{hi:g} dpi in the file"
        elif (
            any(abs(lo - s) < 0.5 and abs(hi - s) < 0.5 for s in SCREEN_DPIS)
            and fit is not None
            and fit.dpi > hi * 1.25
        ):
            reason = f"{hi:g} dpi is a screen default, the pixel size says {fit.paper}"
    flags: list[Flag] = []
    if reason is None:
        assert file_dpi is not None
        dx, dy = float(file_dpi[0]), float(file_dpi[1])
        if abs(dx - dy) / max(dx, dy) > 0.02:
            flags.append(
                _flag(
                    "dpi_non_square",
                    Severity.INFO,
                    f"resolution differs by axis: {dx:g}×{dy:g} dpi",
                    page,
                )
            )
        # PDF page sizes and cm units leave float noise (199.99999): two decimals are plenty.
        return DpiDecision(round(dx, 2), round(dy, 2), "file", None, tuple(flags))
    if fit is not None:
        flags.append(
            _flag(
                "dpi_inferred",
                Severity.WARNING,
                f"{reason}; inferred {fit.dpi:.0f} dpi from {width_px}×{height_px} px "
                f"as {fit.paper} paper",
                page,
            )
        )
        return DpiDecision(fit.dpi, fit.dpi, "inferred", fit.paper, tuple(flags))
    # No paper fits: keep what the file said (or a 0 that the floor check refuses).
    dx, dy = file_dpi if file_dpi is not None else (0.0, 0.0)
    flags.append(
        _flag(
            "dpi_unknown",
            Severity.REVIEW,
            f"{reason}; {width_px}×{height_px} px matches no standard paper size",
            page,
        )
    )
    return DpiDecision(float(dx), float(dy), "file", None, tuple(flags))


# --- located frames --------------------------------------------------------------------------
@dataclass
class FrameInfo:
    """One page image inside a source file, as read from headers (pixels not yet decoded)."""

    frame: int
    encoding: SourceEncoding
    width: int
    height: int
    file_dpi: tuple[float, float] | None
    captured_at: datetime | None = None
    captured_at_source: Literal["exif", "tiff", "pdf", "file_mtime"] | None = None
    lossy: bool = False
    flags: list[Flag] = field(default_factory=list)
    decision: DpiDecision | None = None


def _exif_datetime(text: Any, offset: Any = None) -> datetime | None:
    if not isinstance(text, str):
        return None
    text = text.strip().rstrip("\x00")
    try:
        value = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    tz = VN_TZ
    if isinstance(offset, str):
        match = re.fullmatch(r"([+-])(\d{2}):(\d{2})", offset.strip().rstrip("\x00"))
        if match:
            sign = 1 if match.group(1) == "+" else -1
            tz = timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    return value.replace(tzinfo=tz)


def _pil_captured_at(img: Image.Image) -> tuple[datetime | None, str | None]:
    try:
        exif = img.getexif()
        sub = exif.get_ifd(0x8769)
        original = _exif_datetime(sub.get(36867), sub.get(36881))
        if original is not None:
            return original, "exif"
        plain = _exif_datetime(exif.get(306), sub.get(36880))
        if plain is not None:
            return plain, "tiff" if img.format == "TIFF" else "exif"
    except Exception:  # malformed EXIF is not a reason to refuse a scan
        return None, None
    return None, None


def _pil_orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(274)
        return int(value) if value else 1
    except Exception:
        return 1


def _pil_file_dpi(img: Image.Image) -> tuple[float, float] | None:
    if img.format == "TIFF":
        tags = img.tag_v2  # type: ignore[attr-defined]
        x, y = tags.get(282), tags.get(283)
        unit = tags.get(296, 2)
        if x is None or y is None:
            return None
        try:
            fx, fy = float(x), float(y)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        if unit == 3:
            return fx * 2.54, fy * 2.54
        if unit == 1:
            return None  # no absolute unit: aspect ratio only
        return fx, fy
    if img.format == "JPEG":
        # JFIF units 1 (inch) / 2 (cm); unit 0 is an aspect ratio only.
        unit = img.info.get("jfif_unit")
        density = img.info.get("jfif_density")
        if unit in (1, 2) and density:
            factor = 2.54 if unit == 2 else 1.0
            return float(density[0]) * factor, float(density[1]) * factor
        if "dpi" in img.info and unit is None:  # EXIF resolution (no JFIF segment)
            dpi = img.info["dpi"]
            return float(dpi[0]), float(dpi[1])
        return None
    dpi = img.info.get("dpi")
    if dpi:
        try:
            return float(dpi[0]), float(dpi[1])
        except (TypeError, ValueError, IndexError):
            return None
    return None


def _pil_encoding(img: Image.Image, fmt: str) -> SourceEncoding:
    if fmt == "jpeg":
        return SourceEncoding.JPEG
    if fmt == "png":
        return SourceEncoding.PNG
    if fmt == "bmp":
        return SourceEncoding.BMP
    compression = img.tag_v2.get(259, 1)  # type: ignore[attr-defined]
    return SourceEncoding.CCITT_G4 if compression == 4 else SourceEncoding.TIFF


def _check_pixels(width: int, height: int, settings: IngestSettings, display: str, page: int):
    if width <= 0 or height <= 0:
        raise CorruptFileError(f"image has no pixels ({width}×{height})", path=display, page=page)
    if width * height > settings.max_pixels:
        raise TooLargeError(
            f"{width}×{height} px ({width * height / 1e6:.0f} Mpx) exceeds the "
            f"{settings.max_pixels / 1e6:.0f} Mpx limit per page",
            path=display,
            page=page,
        )


def _check_tiff_strips(img: Image.Image, size: int, display: str, page: int) -> None:
    """A strip or tile past the end of the file means the file is still being written."""
    tags = img.tag_v2  # type: ignore[attr-defined]
    offsets = tags.get(273) or tags.get(324)
    counts = tags.get(279) or tags.get(325)
    if offsets is None or counts is None:
        return
    offsets = offsets if isinstance(offsets, tuple) else (offsets,)
    counts = counts if isinstance(counts, tuple) else (counts,)
    for offset, count in zip(offsets, counts, strict=False):
        if int(offset) + int(count) > size:
            raise TruncatedFileError(
                "file is truncated (image data ends past the end of the file)",
                path=display,
                page=page,
            )


def _check_png_chunks(path: Path, display: str) -> None:
    """Pillow does not verify image-data CRCs; a damaged PNG would decode as garbage."""
    with open(path, "rb") as handle:
        handle.seek(8)
        while True:
            header = handle.read(8)
            if len(header) < 8:
                raise TruncatedFileError(
                    "file is truncated (PNG ends inside a chunk)", path=display
                )
            length, kind = struct.unpack(">I4s", header)
            if length > 2**31 - 1:
                raise CorruptFileError("corrupt PNG chunk length", path=display)
            crc = zlib.crc32(kind)
            remaining = length
            while remaining:
                block = handle.read(min(remaining, 1 << 20))
                if not block:
                    raise TruncatedFileError(
                        "file is truncated (PNG ends inside a chunk)", path=display
                    )
                crc = zlib.crc32(block, crc)
                remaining -= len(block)
            stored = handle.read(4)
            if len(stored) < 4:
                raise TruncatedFileError(
                    "file is truncated (PNG ends inside a chunk)", path=display
                )
            if struct.unpack(">I", stored)[0] != crc & 0xFFFFFFFF:
                name = kind.decode("latin-1")
                raise CorruptFileError(f"corrupt PNG: CRC mismatch in {name} chunk", path=display)
            if kind == b"IEND":
                return


def _check_tiff_layout(path: Path, size: int, display: str) -> None:
    """Walk the IFD chain with struct only: an IFD or strip beyond the end of the file means
    the file was cut (still being copied, or a broken transfer), not corrupt."""
    with open(path, "rb") as handle:
        head = handle.read(16)
        order = "<" if head[:2] == b"II" else ">"
        big = head[2:4] in (b"+\x00", b"\x00+")
        if big:
            return  # BigTIFF: left to the decoder
        offset = struct.unpack(order + "I", head[4:8])[0]
        seen: set[int] = set()
        while offset and len(seen) < 100_000:
            if offset in seen:
                raise CorruptFileError("TIFF directory chain loops", path=display)
            seen.add(offset)
            if offset + 2 > size:
                raise TruncatedFileError(
                    "file is truncated (TIFF directory past the end of the file)", path=display
                )
            handle.seek(offset)
            (count,) = struct.unpack(order + "H", handle.read(2))
            table = handle.read(12 * count + 4)
            if len(table) < 12 * count + 4:
                raise TruncatedFileError(
                    "file is truncated (TIFF directory cut short)", path=display
                )
            values: dict[int, tuple[int, ...]] = {}
            for i in range(count):
                tag, typ, n = struct.unpack(order + "HHI", table[12 * i : 12 * i + 8])
                if tag in (273, 279, 324, 325) and typ in (3, 4):
                    width = 2 if typ == 3 else 4
                    raw = table[12 * i + 8 : 12 * i + 12]
                    if n * width > 4:
                        pointer = struct.unpack(order + "I", raw)[0]
                        if pointer + n * width > size:
                            raise TruncatedFileError(
                                "file is truncated (TIFF strip table past the end)", path=display
                            )
                        handle.seek(pointer)
                        raw = handle.read(n * width)
                    values[tag] = struct.unpack(
                        order + ("H" if typ == 3 else "I") * n, raw[: n * width]
                    )
            for offsets_tag, counts_tag in ((273, 279), (324, 325)):
                for start, length in zip(
                    values.get(offsets_tag, ()), values.get(counts_tag, ()), strict=False
                ):
                    if start + length > size:
                        raise TruncatedFileError(
                            "file is truncated (image data ends past the end of the file)",
                            path=display,
                        )
            (offset,) = struct.unpack(order + "I", table[12 * count : 12 * count + 4])


def _pil_frame_info(
    img: Image.Image, fmt: str, frame: int, settings: IngestSettings, display: str, size: int
) -> FrameInfo:
    page = frame + 1
    _check_pixels(img.width, img.height, settings, display, page)
    if fmt == "tiff":
        _check_tiff_strips(img, size, display, page)
    info = FrameInfo(
        frame=frame,
        encoding=_pil_encoding(img, fmt),
        width=img.width,
        height=img.height,
        file_dpi=_pil_file_dpi(img),
        lossy=fmt == "jpeg" or (fmt == "tiff" and img.tag_v2.get(259) in (6, 7)),  # type: ignore[attr-defined]
    )
    info.captured_at, source = _pil_captured_at(img)
    if source is not None:
        info.captured_at_source = source  # type: ignore[assignment]
    orientation = _pil_orientation(img)
    if orientation != 1:
        info.flags.append(
            _flag(
                "exif_orientation",
                Severity.INFO,
                f"EXIF orientation {orientation}: pixels left as scanned, clean-up decides",
                page,
            )
        )
    return info


def _is_reduced_resolution(img: Image.Image) -> bool:
    try:
        return bool(int(img.tag_v2.get(254, 0)) & 1)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return False


def _iter_pil_frames(
    path: Path, fmt: str, settings: IngestSettings, display: str, size: int
) -> Iterator[tuple[FrameInfo, Image.Image] | Flag]:
    """Yield each page with its (lazily decodable) PIL image, one frame at a time."""
    with _pil_bomb_guard(), Image.open(path) as img:
        frame = 0
        skipped = 0
        while True:
            if fmt == "tiff" and _is_reduced_resolution(img):
                skipped += 1
            else:
                yield _pil_frame_info(img, fmt, frame, settings, display, size), img
            if fmt != "tiff":
                break
            frame += 1
            if frame > settings.max_pages_per_file:
                raise TooLargeError(
                    f"more than {settings.max_pages_per_file} pages in one file", path=display
                )
            try:
                img.seek(frame)
            except EOFError:
                break
        if skipped:
            yield _flag(
                "tiff_thumbnail_skipped",
                Severity.INFO,
                f"{display}: {skipped} reduced-resolution TIFF sub-image(s) are not pages",
            )


# --- PDF -------------------------------------------------------------------------------------
@dataclass
class PdfPageImage:
    obj: pikepdf.Object
    width: int
    height: int
    count: int  # images found on the page


def _iter_xobject_images(
    resources: Any, seen: set[tuple[int, int]], depth: int = 0
) -> Iterator[pikepdf.Object]:
    if depth > 8 or not isinstance(resources, pikepdf.Dictionary):
        return
    xobjects = resources.get("/XObject")
    if not isinstance(xobjects, pikepdf.Dictionary):
        return
    for _, xobj in xobjects.items():
        if not isinstance(xobj, pikepdf.Stream):
            continue
        key = xobj.objgen
        if key != (0, 0):
            if key in seen:
                continue
            seen.add(key)
        subtype = xobj.get("/Subtype")
        if subtype == "/Image":
            yield xobj
        elif subtype == "/Form":
            yield from _iter_xobject_images(xobj.get("/Resources"), seen, depth + 1)


def _largest_page_image(page: pikepdf.Page) -> PdfPageImage | None:
    best: PdfPageImage | None = None
    count = 0
    for obj in _iter_xobject_images(_inherited(page, "/Resources"), set()):
        try:
            w, h = int(obj.get("/Width", 0)), int(obj.get("/Height", 0))
        except (TypeError, ValueError):
            continue
        if w <= 0 or h <= 0:
            continue
        count += 1
        if best is None or w * h > best.width * best.height:
            best = PdfPageImage(obj, w, h, 0)
    if best is not None:
        best.count = count
    return best


_TEXT_OPERATORS = {"Tj", "TJ", "'", '"'}


def _fonts_in(resources: Any, seen: set[tuple[int, int]], depth: int = 0) -> bool:
    if depth > 8 or not isinstance(resources, pikepdf.Dictionary):
        return False
    fonts = resources.get("/Font")
    if isinstance(fonts, pikepdf.Dictionary) and len(fonts.keys()) > 0:
        return True
    xobjects = resources.get("/XObject")
    if isinstance(xobjects, pikepdf.Dictionary):
        for _, xobj in xobjects.items():
            if isinstance(xobj, pikepdf.Stream) and xobj.get("/Subtype") == "/Form":
                key = xobj.objgen
                if key in seen:
                    continue
                seen.add(key)
                if _fonts_in(xobj.get("/Resources"), seen, depth + 1):
                    return True
    return False


def _page_has_text(page: pikepdf.Page) -> bool:
    if _fonts_in(_inherited(page, "/Resources"), set()):
        return True
    try:
        for instruction in pikepdf.parse_content_stream(page):
            if str(instruction.operator) in _TEXT_OPERATORS:
                return True
    except pikepdf.PdfError:
        return False
    return False


def _signature_fields(pdf: pikepdf.Pdf) -> int:
    count = 0
    acroform = pdf.Root.get("/AcroForm")
    stack: list[Any] = []
    if isinstance(acroform, pikepdf.Dictionary):
        fields = acroform.get("/Fields")
        if isinstance(fields, pikepdf.Array):
            stack.extend(fields)
    seen: set[tuple[int, int]] = set()
    while stack and len(seen) < 10_000:
        node = stack.pop()
        if not isinstance(node, pikepdf.Dictionary):
            continue
        if node.objgen != (0, 0):
            if node.objgen in seen:
                continue
            seen.add(node.objgen)
        value = node.get("/V")
        if node.get("/FT") == "/Sig" and isinstance(value, pikepdf.Dictionary):
            count += 1
        kids = node.get("/Kids")
        if isinstance(kids, pikepdf.Array):
            stack.extend(kids)
    return count


def _pdf_datetime(value: Any) -> datetime | None:
    match = re.match(
        r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?([Zz+\-])?(\d{2})?'?(\d{2})?",
        str(value),
    )
    if not match:
        return None
    g = match.groups()
    try:
        moment = datetime(
            int(g[0]),
            int(g[1] or 1),
            int(g[2] or 1),
            int(g[3] or 0),
            int(g[4] or 0),
            int(g[5] or 0),
        )
    except ValueError:
        return None
    if g[6] in ("Z", "z"):
        tz = UTC
    elif g[6] in ("+", "-"):
        sign = 1 if g[6] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(g[7] or 0), minutes=int(g[8] or 0)))
    else:
        tz = VN_TZ
    return moment.replace(tzinfo=tz)


def _pdf_encoding(obj: pikepdf.Object) -> tuple[SourceEncoding, list[str], list[Any]]:
    filters = obj.get("/Filter")
    parms = obj.get("/DecodeParms")
    names = [str(f) for f in filters] if isinstance(filters, pikepdf.Array) else []
    if isinstance(filters, pikepdf.Name):
        names = [str(filters)]
    parm_list: list[Any] = (
        list(parms) if isinstance(parms, pikepdf.Array) else [parms] * max(1, len(names))
    )
    last = names[-1] if names else None
    if last == "/DCTDecode":
        enc = SourceEncoding.JPEG
    elif last == "/CCITTFaxDecode":
        k = 0
        p = parm_list[-1] if parm_list else None
        if isinstance(p, pikepdf.Dictionary):
            k = int(p.get("/K", 0))
        enc = SourceEncoding.CCITT_G4 if k < 0 else SourceEncoding.OTHER
    elif last == "/JBIG2Decode":
        enc = SourceEncoding.JBIG2
    elif last == "/JPXDecode":
        enc = SourceEncoding.JPEG2000
    elif last == "/FlateDecode":
        enc = SourceEncoding.FLATE
    else:
        enc = SourceEncoding.OTHER
    return enc, names, parm_list


def _inherited(page: pikepdf.Page, key: str) -> Any:
    """Page attributes (Resources, MediaBox, Rotate) may sit on an ancestor Pages node."""
    node: Any = page.obj
    for _ in range(64):
        if not isinstance(node, pikepdf.Dictionary):
            return None
        value = node.get(key)
        if value is not None:
            return value
        node = node.get("/Parent")
    return None


def _page_size_in(page: pikepdf.Page) -> tuple[float, float, int]:
    box = _inherited(page, "/MediaBox")
    if not isinstance(box, pikepdf.Array) or len(box) != 4:
        return 0.0, 0.0, 0
    x0, y0, x1, y1 = (float(v) for v in box)
    unit = float(page.obj.get("/UserUnit", 1))
    width, height = abs(x1 - x0) * unit / 72.0, abs(y1 - y0) * unit / 72.0
    rotate = int(_inherited(page, "/Rotate") or 0) % 360
    if rotate in (90, 270):
        width, height = height, width
    return width, height, rotate


@dataclass
class PdfScanCheck:
    text_pages: list[int]
    signatures: int
    byte_range: bool

    @property
    def is_scan(self) -> bool:
        return not self.text_pages and not self.signatures and not self.byte_range

    def describe(self) -> str:
        found = []
        if self.text_pages:
            pages = ", ".join(str(p) for p in self.text_pages[:5])
            more = "…" if len(self.text_pages) > 5 else ""
            found.append(f"a text layer (fonts/text operators on page {pages}{more})")
        if self.signatures or self.byte_range:
            found.append(f"{max(self.signatures, 1)} digital signature(s)")
        return " and ".join(found)


def _open_pdf(path: Path, display: str, *, allow_encrypted: bool = False) -> pikepdf.Pdf:
    """Open a PDF read-only. Encryption is refused unless ``allow_encrypted`` (rescan mode),
    and even then only when no password is needed to read it (permissions-only encryption,
    common on e-copies issued by document systems)."""
    try:
        pdf = pikepdf.open(path)
    except pikepdf.PasswordError as exc:
        raise EncryptedPdfError(
            "PDF is encrypted (password protected)",
            path=display,
            hint="ask for an unprotected scan",
        ) from exc
    if pdf.is_encrypted and not allow_encrypted:
        pdf.close()
        raise EncryptedPdfError(
            "PDF is encrypted; encrypted files are not accepted as scans",
            path=display,
            hint='ask for an unprotected scan, or set ingest.pdf_with_text: "rescan" (--rescan) '
            "to take its page images",
        )
    return pdf


def _iter_pdf_frames(
    path: Path,
    settings: IngestSettings,
    display: str,
    has_byte_range: bool,
    component_flags: list[Flag],
) -> Iterator[tuple[FrameInfo, pikepdf.Object]]:
    rescan_allowed = settings.pdf_with_text == "rescan"
    with _open_pdf(path, display, allow_encrypted=rescan_allowed) as pdf:
        npages = len(pdf.pages)
        if npages == 0:
            raise CorruptFileError("PDF has no pages", path=display)
        if npages > settings.max_pages_per_file:
            raise TooLargeError(
                f"{npages} pages exceed the limit of {settings.max_pages_per_file}", path=display
            )
        check = PdfScanCheck(
            text_pages=[i + 1 for i, p in enumerate(pdf.pages) if _page_has_text(p)],
            signatures=_signature_fields(pdf),
            byte_range=has_byte_range,
        )
        rescanned = False
        if pdf.is_encrypted:
            component_flags.append(
                _flag(
                    "pdf_encrypted",
                    Severity.WARNING,
                    f"{display} is encrypted (readable without a password); only its page "
                    "images were taken",
                )
            )
        if not check.is_scan:
            if settings.pdf_with_text != "rescan":
                raise PdfNotAScanError(
                    f"PDF is not a fresh scan: it carries {check.describe()}",
                    path=display,
                    hint='set ingest.pdf_with_text: "rescan" to take its page images',
                )
            rescanned = True
            component_flags.append(
                _flag(
                    "pdf_rescanned",
                    Severity.WARNING,
                    f"{display} carried {check.describe()}; only its page images were taken",
                )
            )
        created = None
        try:
            created = _pdf_datetime(pdf.docinfo.get("/CreationDate", ""))
        except Exception:
            created = None
        for index, page in enumerate(pdf.pages):
            number = index + 1
            image = _largest_page_image(page)
            if image is None:
                raise PdfNotAScanError(
                    "PDF page has no scanned image (vector or empty page)",
                    path=display,
                    page=number,
                )
            _check_pixels(image.width, image.height, settings, display, number)
            width_in, height_in, rotate = _page_size_in(page)
            file_dpi = None
            if width_in > 0 and height_in > 0:
                file_dpi = (image.width / width_in, image.height / height_in)
            encoding, _names, _parms = _pdf_encoding(image.obj)
            info = FrameInfo(
                frame=index,
                encoding=encoding,
                width=image.width,
                height=image.height,
                file_dpi=file_dpi,
                lossy=encoding in (SourceEncoding.JPEG, SourceEncoding.JPEG2000),
            )
            if created is not None:
                info.captured_at, info.captured_at_source = created, "pdf"
            if rescanned:
                info.flags.append(
                    _flag(
                        "pdf_rescanned",
                        Severity.WARNING,
                        "page image taken from a PDF that was not a fresh scan",
                        number,
                    )
                )
            if image.count > 1:
                info.flags.append(
                    _flag(
                        "pdf_extra_images",
                        Severity.INFO,
                        f"{image.count} images on the page; the largest is the scan",
                        number,
                    )
                )
            if rotate:
                info.flags.append(
                    _flag(
                        "pdf_page_rotate",
                        Severity.INFO,
                        f"page has /Rotate {rotate}; pixels left as stored",
                        number,
                    )
                )
            yield info, image.obj


def _pdf_image_to_pil(obj: pikepdf.Object) -> Image.Image:
    pdf_image = pikepdf.PdfImage(obj)  # type: ignore[arg-type]
    img = pdf_image.as_pil_image()
    if pdf_image.image_mask:
        # Stencil mask: sample 0 paints the fill colour (black on a scan), 1 leaves paper.
        img = img.convert("L")
    return img


# --- pixels ----------------------------------------------------------------------------------
def _to_array(img: Image.Image) -> tuple[np.ndarray, bool]:
    """Decoded pixels as uint8 HxW (gray/bilevel) or HxWx3; and whether the source was 1-bit."""
    mode = img.mode
    if mode == "1":
        return np.asarray(img.convert("L")), True
    if mode == "L":
        return np.asarray(img), False
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        return np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), False
    if mode in ("LA", "La"):
        base = Image.new("L", img.size, 255)
        base.paste(img.convert("L"), mask=img.getchannel("A"))
        return np.asarray(base), False
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        base = Image.new("RGB", img.size, (255, 255, 255))
        base.paste(rgba.convert("RGB"), mask=rgba.getchannel("A"))
        return np.asarray(base), False
    if mode == "P":
        palette_img = img.convert("RGB")
        return np.asarray(palette_img), False
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img), False


def _colour_mode(arr: np.ndarray, one_bit: bool, lossy: bool) -> tuple[ColourMode, np.ndarray]:
    """R11: RGB/gray/bilevel; colour images whose channels are equal count as gray."""
    if one_bit:
        return ColourMode.BILEVEL, arr
    if arr.ndim == 3:
        r, g, b = (arr[..., i] for i in range(3))
        if lossy:
            # JPEG chroma noise: a gray page re-encoded in colour is never exactly equal.
            sample = arr[::2, ::2].astype(np.int16)
            spread = sample.max(axis=2) - sample.min(axis=2)
            # A faint red seal covers well under 0.1 % of a page: count saturated pixels.
            is_gray = float(np.mean(spread > 24)) < 5e-5 and float(spread.mean()) < 3.0
        else:
            is_gray = bool(np.array_equal(r, g) and np.array_equal(g, b))
        if not is_gray:
            return ColourMode.RGB, arr
        arr = np.ascontiguousarray(g) if not lossy else cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    if not lossy:
        hist = np.bincount(arr.ravel(), minlength=256)
        if hist[1:255].sum() == 0:
            return ColourMode.BILEVEL, arr
    return ColourMode.GRAY, arr


@dataclass
class PageAnalysis:
    colour_mode: ColourMode
    is_blank: bool
    touches_border: bool
    pixel_hash: str
    fingerprint: np.ndarray | None
    ink_share: float


def _qa_gray(gray: np.ndarray, dpi: float) -> np.ndarray:
    scale = min(1.0, _QA_DPI / dpi) if dpi > 0 else min(1.0, 1200 / max(gray.shape))
    if scale >= 1.0:
        return gray
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def analyse_page(arr: np.ndarray, one_bit: bool, lossy: bool, dpi: float) -> PageAnalysis:
    """Colour mode, blank page, content at the border, fingerprints (one decoded page)."""
    mode, plane = _colour_mode(arr, one_bit, lossy)
    digest = hashlib.sha256()
    digest.update(f"{mode.value}:{plane.shape}".encode())
    digest.update(np.ascontiguousarray(plane).data)
    gray = plane if plane.ndim == 2 else cv2.cvtColor(plane, cv2.COLOR_RGB2GRAY)
    small = _qa_gray(gray, dpi)
    h, w = small.shape
    paper = float(np.percentile(small, 90))
    # Ink: clearly darker than the paper. Seal bleed-through and show-through stay lighter.
    threshold = paper - max(50.0, 0.3 * paper)
    ink = (small < threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    min_area = 3  # about 0.5 mm² at 100 dpi: specks and dust are not content
    kept_area = 0
    touches = False
    margin = 1
    for label in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[label])
        if area < min_area:
            continue
        at_edge = x <= margin or y <= margin or x + bw >= w - margin or y + bh >= h - margin
        if at_edge:
            # Scanner background or an edge shadow runs along a side: not page content.
            # (a skewed page leaves dark wedges along every side)
            on_top_bottom = y <= margin or y + bh >= h - margin
            on_left_right = x <= margin or x + bw >= w - margin
            along_x = on_top_bottom and bw >= 0.2 * w and bh <= 0.1 * h
            along_y = on_left_right and bh >= 0.2 * h and bw <= 0.1 * w
            huge = area >= 0.25 * w * h
            if along_x or along_y or huge:
                continue
            touches = True
        kept_area += area
    ink_share = kept_area / float(w * h)
    # Measured: blank duplex backs with seal bleed-through and specks ~0.09 % ink; the
    # emptiest real content page (a signature-only last page) 1.2 %.
    is_blank = ink_share < BLANK_INK_SHARE
    fingerprint = None
    if not is_blank:
        fh = max(1, round(_DUP_WIDTH * h / w))
        fingerprint = cv2.resize(small, (_DUP_WIDTH, fh), interpolation=cv2.INTER_AREA)
    return PageAnalysis(
        colour_mode=mode,
        is_blank=is_blank,
        touches_border=touches and not is_blank,
        pixel_hash=digest.hexdigest(),
        fingerprint=fingerprint,
        ink_share=ink_share,
    )


def is_near_duplicate(a: np.ndarray, b: np.ndarray) -> bool:
    """Same page re-saved/re-encoded: tiny mean difference and no local difference."""
    if a.shape != b.shape:
        return False
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(diff.mean()) < 2.0 and float(np.percentile(diff, 99.5)) < 24.0


# --- dossier description ---------------------------------------------------------------------
class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentSpec(_Spec):
    path: str | None = None
    name: str | None = None
    declared_pages: int | None = None
    note_slip_pages: tuple[int, ...] = ()
    not_digitised_reason: NotDigitisedReason | None = None
    paper_type: str | None = None  # catalogue key of the paper handed in (Art. 9 paper type)

    @field_validator("declared_pages")
    @classmethod
    def _non_negative(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("must be >= 0")
        return value


class DossierSpec(_Spec):
    dossier_code: str | None = None
    procedure_code: str | None = None
    receiving_organ_id: str | None = None
    received_at: datetime | None = None
    components: tuple[ComponentSpec, ...] | None = None


def _nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulls(v) for v in value]
    if isinstance(value, str) and value in ("", "~", "null", "Null", "NULL"):
        return None
    return value


def load_dossier_yaml(path: Path) -> DossierSpec:
    """Read ``dossier.yaml``; unknown keys and bad values are a ``ConfigError`` naming them."""
    display = nfc(path.name)
    try:
        if path.stat().st_size > 1024 * 1024:
            raise ConfigError("dossier.yaml is larger than 1 MB", path=display)
        with open(path, "rb") as handle:
            # BaseLoader keeps every scalar a string: codes such as 1.001612 or 000.00.12.H62
            # must not become floats; pydantic then converts counts and dates explicitly.
            data = _nulls(yaml.load(handle, Loader=yaml.BaseLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"invalid YAML{where}", path=display) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read ({exc.strerror})", path=display) from exc
    if data is None:
        return DossierSpec()
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping of keys to values", path=display)
    try:
        return DossierSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            message = f"unknown key '{error['loc'][-1]}' (at {loc})"
        else:
            message = f"invalid value for '{loc}': {error['msg']}"
        raise ConfigError(message, path=display) from exc


def dossier_code_format(code: str) -> Literal["legacy", "centralised", "unknown"]:
    if LEGACY_DOSSIER_CODE.match(code):
        return "legacy"
    if CENTRALISED_DOSSIER_CODE.match(code):
        return "centralised"
    return "unknown"


# --- walking the tree ------------------------------------------------------------------------
@dataclass
class _Walk:
    root: Path  # the dossier folder (or the parent of a single file), resolved
    label: str  # NFC name shown in messages (the dossier folder name)
    ignored: list[Path] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)

    def display(self, path: Path) -> str:
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            rel = Path(path.name)
        return nfc(f"{self.label}/{rel.as_posix()}") if self.label else nfc(rel.as_posix())

    def check_inside(self, path: Path) -> None:
        """Symlinks may point anywhere inside the dossier tree, never outside it."""
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise UnsafePathError(
                "path cannot be resolved (broken or looping link)", path=self.display(path)
            ) from exc
        if real != self.root and self.root not in real.parents:
            raise UnsafePathError(
                "symbolic link points outside the dossier folder", path=self.display(path)
            )


def _list_dir(directory: Path) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as entries:
        return sorted(entries, key=lambda e: natural_key(e.name))


def _is_scan_name(name: str) -> bool:
    return not _is_ignorable_name(name) and Path(name).suffix.casefold() in SCAN_EXTENSIONS


def _scan_files_in(directory: Path, walk: _Walk) -> list[Path]:
    files: list[Path] = []
    for entry in _list_dir(directory):
        path = directory / entry.name
        if entry.is_symlink():
            walk.check_inside(path)
        if entry.is_dir():
            walk.ignored.append(path)  # pages of a component sit directly in its folder
            continue
        if _is_scan_name(entry.name):
            files.append(path)
        else:
            walk.ignored.append(path)
    return files


@dataclass
class _ComponentPlan:
    name: str
    files: list[Path]
    spec: ComponentSpec | None = None
    flags: list[Flag] = field(default_factory=list)


def _find_entry(root: Path, wanted: str) -> Path | None:
    """The entry named in dossier.yaml; names are compared in NFC (yaml typed in NFC, folder
    written by macOS in NFD), the real on-disk name is what we keep."""
    direct = root / wanted
    if os.path.lexists(direct):
        return direct
    current = root
    for part in Path(wanted).parts:
        if not current.is_dir():
            return None
        matches = [e.name for e in os.scandir(current) if nfc(e.name) == nfc(part)]
        if not matches:
            return None
        current = current / matches[0]
    return current


def _plan_components(root: Path, spec: DossierSpec | None, walk: _Walk) -> list[_ComponentPlan]:
    entries = _list_dir(root)
    candidates: dict[str, Path] = {}
    for entry in entries:
        path = root / entry.name
        if entry.name == DOSSIER_YAML:
            continue
        if entry.is_symlink():
            walk.check_inside(path)
        if entry.is_dir() or _is_scan_name(entry.name):
            candidates[entry.name] = path
        else:
            walk.ignored.append(path)
    plans: list[_ComponentPlan] = []
    if spec is not None and spec.components is not None:
        used: set[Path] = set()
        for number, cspec in enumerate(spec.components, start=1):
            files: list[Path] = []
            flags: list[Flag] = []
            if cspec.path is not None:
                rel = Path(cspec.path)
                if rel.is_absolute() or ".." in rel.parts:
                    raise UnsafePathError(
                        f"component {number} path '{cspec.path}' leaves the dossier folder",
                        path=walk.display(root / DOSSIER_YAML),
                    )
                found = _find_entry(root, cspec.path)
                if found is None:
                    raise ConfigError(
                        f"component {number}: '{cspec.path}' does not exist",
                        path=walk.display(root / DOSSIER_YAML),
                    )
                walk.check_inside(found)
                used.add(found)
                if found.is_dir():
                    files = _scan_files_in(found, walk)
                elif _is_scan_name(found.name):
                    files = [found]
                else:
                    raise ConfigError(
                        f"component {number}: '{cspec.path}' is not a scan file or folder",
                        path=walk.display(root / DOSSIER_YAML),
                    )
            elif cspec.not_digitised_reason is None:
                raise ConfigError(
                    f"component {number} needs a 'path' (or a not_digitised_reason)",
                    path=walk.display(root / DOSSIER_YAML),
                )
            name = cspec.name or (Path(cspec.path).stem if cspec.path else f"component {number}")
            if cspec.not_digitised_reason is not None and files:
                flags.append(
                    _flag(
                        "not_digitised_has_scans",
                        Severity.WARNING,
                        f"component '{nfc(name)}' is marked not digitised "
                        f"({cspec.not_digitised_reason.value}); its {len(files)} file(s) are "
                        "not used",
                    )
                )
                files = []
            plans.append(_ComponentPlan(nfc(name), files, cspec, flags))
        for name, path in candidates.items():
            if path not in used:
                has_scans = path.is_file() or bool(_scan_files_in(path, _Walk(walk.root, "")))
                if has_scans:
                    raise ConfigError(
                        f"'{nfc(name)}' holds scans but is not listed in components",
                        path=walk.display(root / DOSSIER_YAML),
                    )
                walk.ignored.append(path)
        return plans
    for name, path in candidates.items():
        if path.is_dir():
            files = _scan_files_in(path, walk)
            if not files:
                walk.flags.append(
                    _flag(
                        "empty_folder_ignored",
                        Severity.INFO,
                        f"{walk.display(path)}: folder holds no scans",
                    )
                )
                continue
            plans.append(_ComponentPlan(nfc(name), files))
        else:
            plans.append(_ComponentPlan(nfc(Path(name).stem), [path]))
    return plans


# --- files -----------------------------------------------------------------------------------
@dataclass
class _FileFacts:
    sha256: str
    size: int
    head: bytes
    tail: bytes
    has_byte_range: bool
    mtime: datetime


def _read_facts(path: Path, display: str, settings: IngestSettings) -> _FileFacts:
    try:
        stat = path.stat()
        if stat.st_size > settings.max_file_bytes:
            raise TooLargeError(
                f"{stat.st_size} bytes exceed the {settings.max_file_bytes} byte limit",
                path=display,
            )
        digest = hashlib.sha256()
        head = b""
        tail = b""
        byte_range = False
        previous = b""
        with open(path, "rb") as handle:  # read-only, never modified
            while chunk := handle.read(1024 * 1024):
                if not head:
                    head = chunk[:262144]  # JPEG SOF can sit behind a large EXIF block
                digest.update(chunk)
                window = previous[-16:] + chunk
                if not byte_range and b"/ByteRange" in window:
                    byte_range = True
                tail = (tail + chunk)[-4096:]
                previous = chunk
        size = stat.st_size
    except DigitizeError:
        raise
    except OSError as exc:
        raise CorruptFileError(f"cannot read ({exc.strerror or exc})", path=display) from exc
    if size == 0:
        raise EmptyFileError("file is empty (0 bytes)", path=display)
    mtime = datetime.fromtimestamp(stat.st_mtime, tz=UTC).astimezone(VN_TZ)
    return _FileFacts(digest.hexdigest(), size, head, tail, byte_range, mtime)


def _sniff(
    path: Path, facts: _FileFacts, display: str, settings: IngestSettings
) -> tuple[str, Flag | None]:
    fmt = sniff_format(facts.head)
    expected = SCAN_EXTENSIONS.get(path.suffix.casefold())
    if fmt is None:
        raise UnsupportedFormatError(
            f"not a supported scan ({_describe_unknown(facts.head)}; expected "
            "JPEG, PNG, TIFF, BMP or PDF)",
            path=display,
        )
    flag = None
    if expected is not None and expected != fmt:
        flag = _flag(
            "extension_mismatch",
            Severity.INFO,
            f"{display} is {fmt.upper()} content named {path.suffix}; read as {fmt.upper()}",
        )
    size = header_size(fmt, facts.head)
    if size is not None and size[0] * size[1] > settings.max_pixels:
        _check_pixels(size[0], size[1], settings, display, 1)
    if fmt == "tiff":
        _check_tiff_layout(path, facts.size, display)
    if fmt == "png":
        _check_png_chunks(path, display)
    if fmt == "pdf" and b"%%EOF" not in facts.tail[-2048:]:
        raise TruncatedFileError("file is truncated (no %%EOF at the end of the PDF)", path=display)
    if fmt == "png" and b"IEND" not in facts.tail[-64:]:
        raise TruncatedFileError("file is truncated (PNG has no IEND chunk)", path=display)
    if fmt == "jpeg" and b"\xff\xd9" not in facts.tail:
        raise TruncatedFileError(
            "file is truncated (JPEG has no end-of-image marker)", path=display
        )
    return fmt, flag


@dataclass
class _DossierState:
    """Cross-page memory of one ingest run: hashes and fingerprints, never pixels."""

    exact: dict[str, tuple[int, int]] = field(default_factory=dict)  # hash → (component, index)
    prints: list[tuple[int, int, int, np.ndarray]] = field(default_factory=list)


def _decoded_frames(
    path: Path,
    fmt: str,
    facts: _FileFacts,
    settings: IngestSettings,
    display: str,
    component_flags: list[Flag],
) -> Generator[tuple[FrameInfo, Image.Image], None, None]:
    if fmt == "pdf":
        with _guard(display, what="cannot read PDF"):
            frames = _iter_pdf_frames(
                path, settings, display, facts.has_byte_range, component_flags
            )
            while True:
                try:
                    info, obj = next(frames)
                except StopIteration:
                    break
                with _guard(display, info.frame + 1), _pil_bomb_guard():
                    img = _pdf_image_to_pil(obj)
                    _check_pixels(img.width, img.height, settings, display, info.frame + 1)
                yield info, img
        return
    with _guard(display):
        frames_pil = _iter_pil_frames(path, fmt, settings, display, facts.size)
        while True:
            with _guard(display):
                try:
                    item = next(frames_pil)
                except StopIteration:
                    break
            if isinstance(item, Flag):
                component_flags.append(item)
                continue
            yield item


def _ingest_file(
    path: Path,
    walk: _Walk,
    settings: IngestSettings,
    component_flags: list[Flag],
) -> tuple[SourceFile, list[tuple[FrameInfo, PageAnalysis]]]:
    display = walk.display(path)
    if path.is_symlink():
        walk.check_inside(path)
    facts = _read_facts(path, display, settings)
    fmt, mismatch = _sniff(path, facts, display, settings)
    source = SourceFile(
        path=path,
        display_name=nfc(path.name),
        sha256=facts.sha256,
        size_bytes=facts.size,
        format=fmt,  # type: ignore[arg-type]
        modified_at=facts.mtime,
    )
    results: list[tuple[FrameInfo, PageAnalysis]] = []
    frames = _decoded_frames(path, fmt, facts, settings, display, component_flags)
    with closing(frames):  # a refused page closes the file at once, not at garbage collection
        for info, img in frames:
            results.append(_check_and_analyse(info, img, settings, display, facts, mismatch))
    if not results:
        raise CorruptFileError("file holds no page image", path=display)
    return source, results


def _check_and_analyse(
    info: FrameInfo,
    img: Image.Image,
    settings: IngestSettings,
    display: str,
    facts: _FileFacts,
    mismatch: Flag | None,
) -> tuple[FrameInfo, PageAnalysis]:
    page = info.frame + 1
    decision = decide_dpi(info.file_dpi, info.width, info.height, page)
    dpi = min(decision.dpi_x, decision.dpi_y)
    if dpi < settings.min_dpi * (1 - DPI_FLOOR_TOLERANCE):
        how = "inferred" if decision.source == "inferred" else "measured"
        paper = f" as {decision.paper}" if decision.paper else ""
        raise LowResolutionError(
            f"{dpi:.0f} dpi ({how}{paper}, {info.width}×{info.height} px) is below the "
            f"{settings.min_dpi:.0f} dpi floor (R10)",
            path=display,
            page=page,
            hint="rescan at 300 dpi",
        )
    with _guard(display, page), _pil_bomb_guard():
        img.load()
        arr, one_bit = _to_array(img)
        analysis = analyse_page(arr, one_bit, info.lossy, dpi)
    del arr
    info.flags.extend(decision.flags)
    info.decision = decision
    if mismatch is not None:
        info.flags.append(mismatch.model_copy(update={"page": None}))
    if info.captured_at is None:
        info.captured_at, info.captured_at_source = facts.mtime, "file_mtime"
        info.flags.append(
            _flag(
                "captured_at_mtime",
                Severity.INFO,
                "no capture time in the file; file modification time used",
                page,
            )
        )
    return info, analysis


def _assign_physical_pages(
    count: int, spec: ComponentSpec | None, name: str, walk: _Walk
) -> list[tuple[int, PageVariant]]:
    notes = set(spec.note_slip_pages) if spec is not None else set()
    if spec is not None:
        if len(notes) != len(spec.note_slip_pages):
            raise ConfigError(
                f"component '{name}': note_slip_pages lists a page twice",
                path=walk.display(walk.root / DOSSIER_YAML),
            )
        limit = spec.declared_pages
        bad = [p for p in notes if p < 1 or (limit is not None and p > limit)]
        if bad:
            raise ConfigError(
                f"component '{name}': note_slip_pages {sorted(bad)} outside 1..{limit or '∞'}",
                path=walk.display(walk.root / DOSSIER_YAML),
            )
    result: list[tuple[int, PageVariant]] = []
    physical = 1
    while len(result) < count:
        if physical in notes:
            result.append((physical, PageVariant.WITH_NOTE))
            if len(result) < count:
                result.append((physical, PageVariant.NOTE_REMOVED))
        else:
            result.append((physical, PageVariant.SINGLE))
        physical += 1
    return result


def _build_component(
    ordinal: int,
    plan: _ComponentPlan,
    walk: _Walk,
    settings: IngestSettings,
    state: _DossierState,
    dossier_flags: list[Flag],
) -> Component:
    component_flags = list(plan.flags)
    sources: list[SourceFile] = []
    drafts: list[dict[str, Any]] = []
    for path in plan.files:
        source, frames = _ingest_file(path, walk, settings, component_flags)
        sources.append(source)
        for info, analysis in frames:
            drafts.append({"source": source, "info": info, "analysis": analysis})

    kept: list[dict[str, Any]] = []
    for draft in drafts:
        if draft["analysis"].is_blank and settings.blank_pages == "drop":
            info, analysis = draft["info"], draft["analysis"]
            dossier_flags.append(
                _flag(
                    "blank_page_dropped",
                    Severity.WARNING,
                    f"component {ordinal} '{plan.name}': blank page dropped: "
                    f"{walk.display(draft['source'].path)} page {info.frame + 1} "
                    f"(ink {analysis.ink_share:.3%})",
                )
            )
            continue
        kept.append(draft)

    spec = plan.spec
    if spec is not None and spec.declared_pages is not None:
        expected = spec.declared_pages + len(spec.note_slip_pages)
        if expected != len(kept):
            diff = len(kept) - expected
            word = "more" if diff > 0 else "fewer"
            notes = (
                f" + {len(spec.note_slip_pages)} note-slip page(s)" if spec.note_slip_pages else ""
            )
            raise PageCountMismatchError(
                f"component {ordinal} '{plan.name}': {len(kept)} images, expected "
                f"{expected} ({spec.declared_pages} declared{notes}): {abs(diff)} {word} (R4–R5)",
                path=walk.label or None,
            )
    physical = _assign_physical_pages(len(kept), spec, plan.name, walk)
    pages: list[IngestedPage] = []
    for index, (draft, (phys, variant)) in enumerate(zip(kept, physical, strict=True), start=1):
        info = draft["info"]
        analysis = draft["analysis"]
        source = draft["source"]
        decision = info.decision
        assert decision is not None
        flags = [f.model_copy(update={"page": index}) for f in info.flags]
        duplicate_of: int | None = None
        if analysis.is_blank:
            flags.append(
                _flag(
                    "blank_page",
                    Severity.WARNING,
                    f"page looks blank (ink {analysis.ink_share:.3%}); kept",
                    index,
                )
            )
        if analysis.touches_border:
            flags.append(
                _flag(
                    "content_at_border",
                    Severity.REVIEW,
                    "content reaches the image edge: check nothing was cut off (R7)",
                    index,
                )
            )
        if analysis.colour_mode != ColourMode.RGB and not settings.allow_grayscale:
            flags.append(
                _flag(
                    "grayscale_capture",
                    Severity.WARNING,
                    f"page captured as {analysis.colour_mode.value}; colour capture is "
                    "required (R11)",
                    index,
                )
            )
        earlier = state.exact.get(analysis.pixel_hash)
        if earlier is not None:
            flags.append(
                _flag(
                    "duplicate_page",
                    Severity.REVIEW,
                    f"pixel-identical to component {earlier[0]} page {earlier[1]}",
                    index,
                )
            )
            if earlier[0] == ordinal:
                duplicate_of = earlier[1]
            else:
                dossier_flags.append(
                    _flag(
                        "cross_component_duplicate",
                        Severity.REVIEW,
                        f"component {ordinal} page {index} is identical to component "
                        f"{earlier[0]} page {earlier[1]}",
                    )
                )
        else:
            state.exact[analysis.pixel_hash] = (ordinal, index)
            if settings.detect_near_duplicates and analysis.fingerprint is not None:
                for comp, other, other_phys, fp in state.prints:
                    if comp == ordinal and other_phys == phys:
                        continue  # R6 note-slip pairs are meant to look alike
                    if is_near_duplicate(fp, analysis.fingerprint):
                        flags.append(
                            _flag(
                                "near_duplicate_page",
                                Severity.REVIEW,
                                f"nearly identical to component {comp} page {other}",
                                index,
                            )
                        )
                        if comp == ordinal:
                            duplicate_of = other
                        break
        if analysis.fingerprint is not None:
            state.prints.append((ordinal, index, phys, analysis.fingerprint))
        pages.append(
            IngestedPage(
                index=index,
                physical_page=phys,
                variant=variant,
                source=source.path,
                source_sha256=source.sha256,
                frame=info.frame,
                encoding=info.encoding,
                width_px=info.width,
                height_px=info.height,
                qa=PageQA(
                    dpi_x=decision.dpi_x,
                    dpi_y=decision.dpi_y,
                    dpi_source=decision.source,
                    inferred_paper=decision.paper,
                    colour_mode=analysis.colour_mode,
                    is_blank=analysis.is_blank,
                    touches_border=analysis.touches_border,
                    duplicate_of=duplicate_of,
                ),
                captured_at=info.captured_at,
                captured_at_source=info.captured_at_source,
                flags=tuple(flags),
            )
        )
    return Component(
        ordinal=ordinal,
        name=plan.name,
        sources=tuple(sources),
        declared_pages=spec.declared_pages if spec is not None else None,
        pages=tuple(pages),
        not_digitised_reason=spec.not_digitised_reason if spec is not None else None,
        flags=tuple(component_flags),
        paper_type=spec.paper_type if spec is not None else None,
    )


def _code_flags(spec: DossierSpec, walk: _Walk) -> list[Flag]:
    flags: list[Flag] = []
    if spec.procedure_code is not None and not PROCEDURE_CODE.match(spec.procedure_code):
        flags.append(
            _flag(
                "procedure_code_format_unknown",
                Severity.WARNING,
                f"procedure code '{spec.procedure_code}' is not in the national format "
                "(R29: 1.001612 or 1.001612.000.00.00.H48)",
            )
        )
    organ = spec.receiving_organ_id
    if organ is not None and (len(organ) > 13 or not re.fullmatch(r"[A-Za-z0-9.\-]+", organ)):
        flags.append(
            _flag(
                "receiving_organ_id_format",
                Severity.WARNING,
                f"receiving organ id '{organ}' is not a 13-character agency code (§7)",
            )
        )
    return flags


def ingest_dossier(source: Path, settings: IngestSettings | None = None) -> Dossier:
    """Locate and QA every page of a dossier folder (or a single file = one component)."""
    settings = settings or IngestSettings()
    source = Path(source)
    label = nfc(source.name)
    if not os.path.lexists(source):
        raise EmptyDossierError("dossier not found", path=label)
    try:
        is_dir = source.is_dir()
        root = source.resolve(strict=True) if is_dir else source.parent.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise UnsafePathError("path cannot be resolved", path=label) from exc
    spec: DossierSpec | None = None
    if is_dir:
        walk = _Walk(root=root, label=label)
        yaml_path = source / DOSSIER_YAML
        if yaml_path.is_file():
            spec = load_dossier_yaml(yaml_path)
        try:
            plans = _plan_components(root, spec, walk)
        except DigitizeError:
            raise
        except OSError as exc:
            raise UnsafePathError(f"cannot list the folder ({exc.strerror})", path=label) from exc
        source_dir = source
    else:
        walk = _Walk(root=root, label="")
        plans = [_ComponentPlan(nfc(source.stem), [root / source.name])]
        source_dir = source.parent
    state = _DossierState()
    dossier_flags: list[Flag] = list(walk.flags)
    components: list[Component] = []
    for ordinal, plan in enumerate(plans, start=1):
        components.append(_build_component(ordinal, plan, walk, settings, state, dossier_flags))
    for component, plan in zip(components, plans, strict=True):
        if not component.pages and component.not_digitised_reason is None:
            raise EmptyDossierError(
                f"component {component.ordinal} '{plan.name}' has no page images",
                path=label,
            )
    if not any(c.pages for c in components) and not (
        components and all(c.not_digitised_reason for c in components)
    ):
        raise EmptyDossierError("no scanned pages found in the dossier", path=label)

    code = label if is_dir else nfc(source.stem)
    code_format: Literal["legacy", "centralised", "unknown", "folder_name"] = "folder_name"
    if spec is not None:
        dossier_flags.extend(_code_flags(spec, walk))
        if spec.dossier_code is not None:
            code = spec.dossier_code
            code_format = dossier_code_format(code)
            if code_format == "unknown":
                dossier_flags.append(
                    _flag(
                        "dossier_code_format_unknown",
                        Severity.WARNING,
                        f"dossier code '{code}' matches neither the legacy nor the centralised "
                        "format (R28); stored as given",
                    )
                )
    received_at = spec.received_at if spec is not None else None
    if received_at is not None and received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=VN_TZ)
    return Dossier(
        code=code,
        code_format=code_format,
        procedure_code=spec.procedure_code if spec is not None else None,
        receiving_organ_id=spec.receiving_organ_id if spec is not None else None,
        received_at=received_at,
        source_dir=source_dir,
        components=tuple(components),
        ignored_files=tuple(walk.ignored),
        flags=tuple(dossier_flags),
    )


# --- one page, on demand ---------------------------------------------------------------------
def _open_page_image(
    page: IngestedPage, settings: IngestSettings, display: str
) -> tuple[Image.Image, Any]:
    """The PIL image of one page (and what must stay open while it is used)."""
    path = Path(page.source)
    with open(path, "rb") as handle:
        head = handle.read(4096)
    fmt = sniff_format(head)
    if fmt is None:
        raise UnsupportedFormatError("not a supported scan", path=display)
    if fmt == "pdf":
        # ingest_dossier already accepted (or refused) this file: no second policy decision here
        pdf = _open_pdf(path, display, allow_encrypted=True)
        try:
            if page.frame >= len(pdf.pages):
                raise CorruptFileError("page no longer exists", path=display, page=page.frame + 1)
            image = _largest_page_image(pdf.pages[page.frame])
            if image is None:
                raise PdfNotAScanError("page has no image", path=display, page=page.frame + 1)
            _check_pixels(image.width, image.height, settings, display, page.frame + 1)
            img = _pdf_image_to_pil(image.obj)
        except BaseException:
            pdf.close()
            raise
        return img, pdf
    img = Image.open(path)
    try:
        if page.frame:
            img.seek(page.frame)
        _check_pixels(img.width, img.height, settings, display, page.frame + 1)
    except BaseException:
        img.close()
        raise
    return img, img


def load_page_pixels(page: IngestedPage, settings: IngestSettings | None = None) -> np.ndarray:
    """Decode one page: uint8 array, HxW for gray/bilevel (0/255), HxWx3 RGB for colour.

    The shape follows ``page.qa.colour_mode`` (an RGB file with equal channels is returned as
    HxW). Pixels are as scanned: no EXIF rotation, no clean-up.
    """
    settings = settings or IngestSettings()
    display = nfc(Path(page.source).name)
    with _guard(display, page.frame + 1), _pil_bomb_guard():
        img, keep = _open_page_image(page, settings, display)
        try:
            img.load()
            arr, one_bit = _to_array(img)
        finally:
            keep.close()
        mode = page.qa.colour_mode
        if mode == ColourMode.RGB:
            if arr.ndim == 2:
                arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
            return np.ascontiguousarray(arr)
        if arr.ndim == 3:
            arr = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
        if mode == ColourMode.BILEVEL and not one_bit:
            arr = np.where(arr >= 128, 255, 0).astype(np.uint8)
        return np.ascontiguousarray(arr)


# --- encoded pass-through --------------------------------------------------------------------
def jpeg_adobe_inverted(data: bytes) -> bool:
    """True when a CMYK JPEG carries an Adobe APP14 marker (Photoshop/scanner convention:
    the samples are stored inverted, so the PDF needs ``/Decode [1 0 1 0 1 0 1 0]``)."""
    return b"\xff\xeeAdobe" in data[:65536]


def _jpeg_components(data: bytes) -> tuple[int, int, int, int] | None:
    """(components, bits, width, height) from the first SOF marker, or None."""
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE):
            if pos + 10 > end:
                return None
            bits = data[pos + 4]
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return data[pos + 9], bits, width, height
        pos += 2 + length
    return None


def _encoded_from_jpeg_bytes(data: bytes, icc: bytes | None = None) -> EncodedImage | None:
    sof = _jpeg_components(data)
    if sof is None:
        return None
    components, bits, width, height = sof
    if bits != 8 or components not in (1, 3, 4):
        return None  # 12-bit or odd JPEGs are not valid DCTDecode in PDF
    return EncodedImage(
        data=data,
        filter="DCTDecode",
        colour_mode=ColourMode.GRAY if components == 1 else ColourMode.RGB,
        width=width,
        height=height,
        bits_per_component=8,
        icc_profile=icc,
        cmyk=components == 4,
    )


def _encoded_from_tiff_g4(path: Path, frame: int) -> EncodedImage | None:
    with Image.open(path) as img:
        if frame:
            img.seek(frame)
        tags = img.tag_v2  # type: ignore[attr-defined]
        if tags.get(259) != 4:
            return None
        offsets, counts = tags.get(273), tags.get(279)
        if offsets is None or counts is None or 324 in tags:
            return None
        offsets = offsets if isinstance(offsets, tuple) else (offsets,)
        counts = counts if isinstance(counts, tuple) else (counts,)
        if len(offsets) != 1 or len(counts) != 1:
            return None  # each G4 strip restarts from a white line: no byte-exact join
        if tags.get(266, 1) != 1:  # FillOrder 2 (LSB first) is not what PDF reads
            return None
        if tags.get(293, 0) & 1:  # uncompressed mode
            return None
        photometric = tags.get(262, 0)
        width, height = img.width, img.height
        offset, count = int(offsets[0]), int(counts[0])
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(count)
    if len(data) != count:
        return None
    return EncodedImage(
        data=data,
        filter="CCITTFaxDecode",
        colour_mode=ColourMode.BILEVEL,
        width=width,
        height=height,
        bits_per_component=1,
        # TIFF WhiteIsZero (0): coded black runs are black, the PDF default. BlackIsZero (1):
        # the same runs display white, which PDF expresses with BlackIs1.
        decode_parms={"K": -1, "Columns": width, "Rows": height, "BlackIs1": photometric == 1},
    )


def _colour_from_space(space: Any) -> tuple[int | None, bytes | None]:
    """(components, icc bytes) for device/ICC spaces; None for indexed/separation/Lab."""
    if isinstance(space, pikepdf.Name):
        return {"/DeviceGray": 1, "/DeviceRGB": 3, "/DeviceCMYK": 4}.get(str(space)), None
    if isinstance(space, pikepdf.Array) and len(space) >= 2:
        family = str(space[0])
        if family == "/ICCBased":
            stream = space[1]
            n = int(stream.get("/N", 0))
            return (n if n in (1, 3, 4) else None), bytes(stream.read_bytes())
        if family == "/CalGray":
            return 1, None
        if family == "/CalRGB":
            return 3, None
    return None, None


def _encoded_from_pdf(page: IngestedPage) -> EncodedImage | None:
    display = nfc(Path(page.source).name)
    with _open_pdf(Path(page.source), display, allow_encrypted=True) as pdf:
        image = _largest_page_image(pdf.pages[page.frame])
        if image is None:
            return None
        obj = image.obj
        encoding, names, parms = _pdf_encoding(obj)
        if len(names) != 1 or obj.get("/SMask") is not None or obj.get("/Mask") is not None:
            return None
        raw = bytes(obj.read_raw_bytes())
        parm = parms[0] if parms else None
        parm_dict: dict[str, int | bool] = {}
        if isinstance(parm, pikepdf.Dictionary):
            for key, value in parm.items():
                if isinstance(value, bool):
                    parm_dict[key.lstrip("/")] = value
                elif isinstance(value, int):
                    parm_dict[key.lstrip("/")] = int(value)
        image_mask = bool(obj.get("/ImageMask", False))
        bpc = 1 if image_mask else int(obj.get("/BitsPerComponent", 8))
        components, icc = (1, None) if image_mask else _colour_from_space(obj.get("/ColorSpace"))
        decode = obj.get("/Decode")
        inverted = False
        if isinstance(decode, pikepdf.Array):
            values = [float(v) for v in decode]
            if values == [1.0, 0.0]:
                inverted = True
            elif values != [0.0, 1.0] * (len(values) // 2):
                return None
        if encoding == SourceEncoding.JPEG:
            if inverted:
                return None
            encoded = _encoded_from_jpeg_bytes(raw, icc)
            return encoded
        if encoding == SourceEncoding.JPEG2000:
            if inverted:
                return None
            return EncodedImage(
                data=raw,
                filter="JPXDecode",
                colour_mode=ColourMode.GRAY if components == 1 else ColourMode.RGB,
                width=image.width,
                height=image.height,
                bits_per_component=bpc,
                icc_profile=icc,
            )
        if components is None or components == 4:
            return None
        mode = (
            ColourMode.BILEVEL
            if bpc == 1
            else ColourMode.GRAY
            if components == 1
            else ColourMode.RGB
        )
        if encoding == SourceEncoding.CCITT_G4 or names == ["/CCITTFaxDecode"]:
            parm_dict.setdefault("Columns", image.width)
            parm_dict.setdefault("Rows", image.height)
            parm_dict.setdefault("K", 0)
            black_is_1 = bool(parm_dict.get("BlackIs1", False))
            # ImageMask 0 paints black: same as DeviceGray 0; /Decode [1 0] flips: BlackIs1 does.
            parm_dict["BlackIs1"] = black_is_1 != inverted
            return EncodedImage(
                data=raw,
                filter="CCITTFaxDecode",
                colour_mode=ColourMode.BILEVEL,
                width=image.width,
                height=image.height,
                bits_per_component=1,
                decode_parms=parm_dict,
            )
        if inverted:
            return None
        if encoding == SourceEncoding.JBIG2:
            globals_stream = (
                parm.get("/JBIG2Globals") if isinstance(parm, pikepdf.Dictionary) else None
            )
            parm_dict.pop("JBIG2Globals", None)
            return EncodedImage(
                data=raw,
                filter="JBIG2Decode",
                colour_mode=ColourMode.BILEVEL,
                width=image.width,
                height=image.height,
                bits_per_component=1,
                decode_parms=parm_dict,
                jbig2_globals=bytes(globals_stream.read_bytes())
                if isinstance(globals_stream, pikepdf.Stream)
                else None,
            )
        if encoding == SourceEncoding.FLATE and bpc in (1, 8):
            return EncodedImage(
                data=raw,
                filter="FlateDecode",
                colour_mode=mode,
                width=image.width,
                height=image.height,
                bits_per_component=bpc,
                decode_parms=parm_dict,
                icc_profile=icc,
            )
        return None


def read_page_encoded(page: IngestedPage) -> EncodedImage | None:
    """The page's original compressed bytes for lossless PDF pass-through, or None.

    * JPEG file: the whole file as DCTDecode data (``cmyk`` set for 4-component JPEGs; see
      ``jpeg_adobe_inverted`` for the Adobe inversion the PDF must declare).
    * G4 TIFF frame stored in one strip: the strip bytes, ``K=-1``, ``Columns``, ``Rows``,
      ``BlackIs1`` from PhotometricInterpretation. Multi-strip/tiled/LSB-first: None.
    * PDF page image with a single filter: its raw stream bytes, the filter and decode parms
      (+ JBIG2Globals bytes; a ``/Decode [1 0]`` on CCITT is folded into ``BlackIs1``).
    * PNG, BMP, other TIFF compressions, filter chains, indexed colour: None (re-encode).

    ``colour_mode`` describes the stored data (a 3-component JPEG is RGB even when QA judged
    the page gray). Read errors give None: the caller re-encodes from pixels instead.
    """
    path = Path(page.source)
    try:
        if page.encoding == SourceEncoding.JPEG and path.suffix.casefold() != ".pdf":
            with open(path, "rb") as handle:
                head = handle.read(4096)
            if sniff_format(head) == "jpeg":
                data = path.read_bytes()
                icc = None
                with Image.open(io.BytesIO(data)) as img:
                    icc = img.info.get("icc_profile")
                return _encoded_from_jpeg_bytes(data, icc)
        with open(path, "rb") as handle:
            fmt = sniff_format(handle.read(4096))
        if fmt == "pdf":
            return _encoded_from_pdf(page)
        if fmt == "tiff" and page.encoding == SourceEncoding.CCITT_G4:
            return _encoded_from_tiff_g4(path, page.frame)
        if fmt == "jpeg":
            data = path.read_bytes()
            return _encoded_from_jpeg_bytes(data)
    except Exception:  # unreadable now: the caller re-encodes from pixels (and fails there)
        return None
    return None


__all__ = [
    "IngestSettings",
    "ingest_dossier",
    "load_page_pixels",
    "read_page_encoded",
    "load_dossier_yaml",
    "fit_paper",
    "decide_dpi",
    "analyse_page",
    "natural_key",
    "sniff_format",
    "jpeg_adobe_inverted",
]
