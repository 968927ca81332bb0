"""First look at a file, before any decoder runs: hash, real type, size from the header, and
whether the file is complete (a file still being copied is truncated, not corrupt).

Every check here reads bytes with the standard library (or Pillow's chunk verifier for PNG);
pixel data is never decoded.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from digitize.errors import (
    CorruptFileError,
    DigitizeError,
    EmptyFileError,
    TooLargeError,
    TruncatedFileError,
    UnsupportedFormatError,
)
from digitize.ingest.files import open_regular
from digitize.ingest.guard import check_pixels
from digitize.ingest.walk import SCAN_EXTENSIONS
from digitize.jpeg import JpegFormatError, jpeg_frame
from digitize.models import Flag, Severity, make_flag
from digitize.settings import IngestSettings
from digitize.util import VN_TZ

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
    (b"BM", "bmp"),
)
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"GIF8", "GIF"),
    (b"RIFF", "RIFF/WebP"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"PK\x03\x04", "ZIP/Office"),
    (b"\xd0\xcf\x11\xe0", "OLE/Office"),
)
# A TIFF strip/tile table longer than this is not a scan (a 600-dpi A3 page in one-row strips
# has 9 921); a hostile one with 50 M entries would cost gigabytes to unpack.
MAX_TIFF_STRIPS = 1_000_000


def sniff_format(head: bytes) -> str | None:
    """Real content type from magic bytes: jpeg/png/tiff/bmp/pdf, or None."""
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
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
            width, height = struct.unpack(">II", head[16:24])
            return int(width), int(height)
        if fmt == "bmp" and len(head) >= 26:
            if int.from_bytes(head[14:18], "little") == 12:
                w, h = struct.unpack("<HH", head[18:22])
            else:
                w, h = struct.unpack("<ii", head[18:26])
            return abs(w), abs(h)
        if fmt == "jpeg":
            frame = jpeg_frame(head)
            return frame.width, frame.height
    except (struct.error, JpegFormatError):
        return None
    return None


def describe_unknown(head: bytes) -> str:
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


@dataclass(frozen=True)
class FileFacts:
    sha256: str
    size: int
    head: bytes
    tail: bytes
    has_byte_range: bool
    mtime: datetime


def read_facts(path: Path, display: str, settings: IngestSettings) -> FileFacts:
    """Hash the file (R8) and keep its first and last bytes; refuses non-regular files and
    files over ``max_file_bytes`` before reading them."""
    try:
        with open_regular(path, display) as handle:  # read-only, never modified
            info = os.fstat(handle.fileno())
            if info.st_size > settings.max_file_bytes:
                raise TooLargeError(
                    f"{info.st_size} bytes exceed the {settings.max_file_bytes} byte limit",
                    path=display,
                )
            digest = hashlib.sha256()
            head = tail = previous = b""
            byte_range = False
            size = 0
            while chunk := handle.read(1024 * 1024):
                if not head:
                    head = chunk[:262144]  # JPEG SOF can sit behind a large EXIF block
                digest.update(chunk)
                size += len(chunk)
                if not byte_range and b"/ByteRange" in previous[-16:] + chunk:
                    byte_range = True
                tail = (tail + chunk)[-4096:]
                previous = chunk
    except DigitizeError:
        raise
    except OSError as exc:
        raise CorruptFileError(f"cannot read ({exc.strerror or exc})", path=display) from exc
    if size == 0:
        raise EmptyFileError("file is empty (0 bytes)", path=display)
    mtime = datetime.fromtimestamp(info.st_mtime, tz=UTC).astimezone(VN_TZ)
    return FileFacts(digest.hexdigest(), size, head, tail, byte_range, mtime)


def check_png_chunks(path: Path, display: str) -> None:
    """Pillow's decoder does not verify chunk CRCs, so a damaged PNG would decode as garbage;
    its ``verify()`` walks every chunk up to IEND and checks each CRC."""
    try:
        with open_regular(path, display) as handle, Image.open(handle, formats=["PNG"]) as img:
            img.verify()
    except DigitizeError:
        raise
    except SyntaxError as exc:  # Pillow: "broken PNG file (bad header checksum in b'IDAT')"
        raise CorruptFileError(f"corrupt PNG: {exc}", path=display) from exc
    except (OSError, EOFError, struct.error, ValueError) as exc:
        text = str(exc).casefold()
        if "truncat" in text or isinstance(exc, EOFError | struct.error):
            raise TruncatedFileError(
                "file is truncated (PNG ends inside a chunk)", path=display
            ) from exc
        raise CorruptFileError(f"corrupt PNG ({exc})", path=display) from exc


def _strip_table(
    handle: BinaryIO, order: str, typ: int, n: int, raw: bytes, size: int, display: str
) -> np.ndarray:
    width = 2 if typ == 3 else 4
    if n > MAX_TIFF_STRIPS:
        raise CorruptFileError(f"TIFF strip table with {n} entries", path=display)
    if n * width > 4:
        (pointer,) = struct.unpack(order + "I", raw)
        if pointer + n * width > size:
            raise TruncatedFileError(
                "file is truncated (TIFF strip table past the end)", path=display
            )
        handle.seek(pointer)
        raw = handle.read(n * width)
    dtype = np.dtype(("<" if order == "<" else ">") + ("u2" if typ == 3 else "u4"))
    return np.frombuffer(raw[: n * width], dtype=dtype, count=n).astype(np.int64)


def check_tiff_layout(path: Path, size: int, display: str) -> None:
    """Walk the IFD chain with struct only: an IFD or strip beyond the end of the file means
    the file was cut (still being copied, or a broken transfer), not corrupt."""
    with open_regular(path, display) as handle:
        head = handle.read(16)
        order = "<" if head[:2] == b"II" else ">"
        if head[2:4] in (b"+\x00", b"\x00+"):
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
            values: dict[int, np.ndarray] = {}
            for i in range(count):
                tag, typ, n = struct.unpack(order + "HHI", table[12 * i : 12 * i + 8])
                if tag in (273, 279, 324, 325) and typ in (3, 4):
                    raw = table[12 * i + 8 : 12 * i + 12]
                    values[tag] = _strip_table(handle, order, typ, n, raw, size, display)
            for offsets_tag, counts_tag in ((273, 279), (324, 325)):
                starts = values.get(offsets_tag)
                lengths = values.get(counts_tag)
                if starts is None or lengths is None:
                    continue
                common = min(len(starts), len(lengths))
                if common and bool(np.any(starts[:common] + lengths[:common] > size)):
                    raise TruncatedFileError(
                        "file is truncated (image data ends past the end of the file)",
                        path=display,
                    )
            (offset,) = struct.unpack(order + "I", table[12 * count : 12 * count + 4])


def sniff(
    path: Path, facts: FileFacts, display: str, settings: IngestSettings
) -> tuple[str, Flag | None]:
    """The real format (magic bytes), an ``extension_mismatch`` flag, and the completeness and
    size checks that need no decoder."""
    fmt = sniff_format(facts.head)
    if fmt is None:
        raise UnsupportedFormatError(
            f"not a supported scan ({describe_unknown(facts.head)}; expected "
            "JPEG, PNG, TIFF, BMP or PDF)",
            path=display,
        )
    expected = SCAN_EXTENSIONS.get(path.suffix.casefold())
    flag = None
    if expected is not None and expected != fmt:
        flag = make_flag(
            "extension_mismatch",
            f"{display} is {fmt.upper()} content named {path.suffix}; read as {fmt.upper()}",
            Severity.INFO,
        )
    size = header_size(fmt, facts.head)
    if size is not None and size[0] * size[1] > settings.max_pixels:
        check_pixels(size[0], size[1], settings, display, 1)
    if fmt == "pdf" and b"%%EOF" not in facts.tail[-2048:]:
        raise TruncatedFileError("file is truncated (no %%EOF at the end of the PDF)", path=display)
    if fmt == "png" and b"IEND" not in facts.tail[-64:]:
        raise TruncatedFileError("file is truncated (PNG has no IEND chunk)", path=display)
    if fmt == "jpeg" and b"\xff\xd9" not in facts.tail:
        raise TruncatedFileError(
            "file is truncated (JPEG has no end-of-image marker)", path=display
        )
    if fmt == "tiff":
        check_tiff_layout(path, facts.size, display)
    if fmt == "png":
        check_png_chunks(path, display)
    return fmt, flag
