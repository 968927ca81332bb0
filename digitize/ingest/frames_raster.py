"""Page frames of raster files (JPEG, PNG, TIFF, BMP) read with Pillow, one frame at a time:
size, file dpi, encoding, capture time (EXIF/TIFF), EXIF orientation (recorded, not applied).
"""

from __future__ import annotations

import re
from collections.abc import Generator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from digitize.errors import TooLargeError, TruncatedFileError
from digitize.ingest.files import open_regular
from digitize.ingest.frame import FrameInfo
from digitize.ingest.guard import check_pixels, pil_bomb_guard
from digitize.models import Flag, Severity, SourceEncoding, make_flag
from digitize.settings import IngestSettings
from digitize.util import VN_TZ


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


def _pil_frame_info(
    img: Image.Image, fmt: str, frame: int, settings: IngestSettings, display: str, size: int
) -> FrameInfo:
    page = frame + 1
    check_pixels(img.width, img.height, settings, display, page)
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
            make_flag(
                "exif_orientation",
                f"EXIF orientation {orientation}: pixels left as scanned, clean-up decides",
                Severity.INFO,
                page,
            )
        )
    return info


def _is_reduced_resolution(img: Image.Image) -> bool:
    try:
        return bool(int(img.tag_v2.get(254, 0)) & 1)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return False


def iter_pil_frames(
    path: Path, fmt: str, settings: IngestSettings, display: str, size: int
) -> Generator[tuple[FrameInfo, Image.Image] | Flag, None, None]:
    """Yield each page with its (lazily decodable) PIL image, one frame at a time."""
    with pil_bomb_guard(), open_regular(path, display) as handle, Image.open(handle) as img:
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
            yield make_flag(
                "tiff_thumbnail_skipped",
                f"{display}: {skipped} reduced-resolution TIFF sub-image(s) are not pages",
                Severity.INFO,
            )
