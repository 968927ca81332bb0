"""JPEG marker walk (ITU-T T.81 Annex B), shared by ingest and pdfa: one parser, stdlib only.

``jpeg_frame`` gives what a PDF ``DCTDecode`` image needs from the file (size, components,
sample precision, Adobe APP14 transform); ``strip_jpeg_metadata`` removes what an archive copy
must not carry from a scan (EXIF with GPS and device serials, XMP, embedded thumbnails of the
uncropped image, comments, bytes after the end-of-image marker) while every segment that the
decoder reads — quantisation and Huffman tables, frame and scan headers, the entropy-coded data
and restart markers — stays byte-for-byte as scanned.

Why a walk of our own rather than Pillow's header read: the stripper has to visit every marker
anyway to cut segments out at their exact byte offsets, and the same walk yields the frame facts
at no extra cost; Pillow would parse the same header a second time and says nothing about
segment offsets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

SOI = 0xD8
EOI = 0xD9
SOS = 0xDA
APP0 = 0xE0
APP14 = 0xEE
COM = 0xFE
# Start-of-frame markers (baseline, extended, progressive, lossless; Huffman and arithmetic).
SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE})
_STANDALONE = frozenset({SOI, 0x01, *range(0xD0, 0xD8)})  # no length field follows these


class JpegFormatError(ValueError):
    """The bytes are not a JPEG whose markers can be walked."""


@dataclass(frozen=True)
class JpegSegment:
    marker: int
    start: int  # offset of the 0xFF of the marker
    end: int  # offset just past the segment (past the entropy-coded data for SOS)


@dataclass(frozen=True)
class JpegFrame:
    width: int
    height: int
    components: int
    bits: int  # sample precision (8 for every DCTDecode image a PDF may hold)
    adobe: bool  # Adobe APP14 present: CMYK samples are stored inverted
    adobe_transform: int | None  # APP14 colour transform byte (0 none, 1 YCbCr, 2 YCCK)


def _entropy_end(data: bytes, pos: int) -> int:
    """Offset of the first marker after entropy-coded data starting at ``pos`` (restart markers
    and stuffed 0xFF00 bytes belong to the data)."""
    end = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= end:
            raise JpegFormatError("entropy-coded data runs past the end (no EOI marker)")
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos += 1 if following == 0xFF else 2
            continue
        return pos


def iter_segments(data: bytes) -> Iterator[JpegSegment]:
    """Every marker segment from SOI to EOI, in file order; bytes after EOI are not visited."""
    if data[:2] != b"\xff\xd8":
        raise JpegFormatError("not a JPEG (no SOI marker)")
    yield JpegSegment(SOI, 0, 2)
    pos = 2
    end = len(data)
    while pos < end:
        if data[pos] != 0xFF:
            raise JpegFormatError(f"bad JPEG marker at byte {pos}")
        marker = data[pos + 1] if pos + 1 < end else None
        if marker is None:
            break
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == EOI:
            yield JpegSegment(EOI, pos, pos + 2)
            return
        if marker in _STANDALONE:
            yield JpegSegment(marker, pos, pos + 2)
            pos += 2
            continue
        if pos + 4 > end:
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > end:
            raise JpegFormatError(f"JPEG segment at byte {pos} runs past the end")
        stop = pos + 2 + length
        if marker == SOS:
            stop = _entropy_end(data, stop)
        yield JpegSegment(marker, pos, stop)
        pos = stop
    raise JpegFormatError("no EOI marker")


def jpeg_frame(data: bytes) -> JpegFrame:
    """Frame facts from the SOF header and the Adobe APP14 segment (raises ``JpegFormatError``).

    Only the header is walked: the scan data is not needed for these facts."""
    if data[:2] != b"\xff\xd8":
        raise JpegFormatError("not a JPEG (no SOI marker)")
    adobe_transform: int | None = None
    adobe = False
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            raise JpegFormatError(f"bad JPEG marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == APP14 and data[pos + 4 : pos + 9] == b"Adobe":
            adobe = True
            if pos + 15 < end and length >= 12:
                adobe_transform = data[pos + 15]
        if marker in SOF_MARKERS:
            if pos + 10 > end:
                break
            bits = data[pos + 4]
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return JpegFrame(width, height, data[pos + 9], bits, adobe, adobe_transform)
        if marker in (SOS, EOI) or length < 2:
            break
        pos += 2 + length
    raise JpegFormatError("no SOF marker")


def _is_kept(data: bytes, segment: JpegSegment) -> bool:
    marker = segment.marker
    if marker == COM:
        return False
    if marker == APP0:  # JFIF (density, YCbCr convention) stays; JFXX thumbnails go
        return data[segment.start + 4 : segment.start + 9] == b"JFIF\x00"
    if marker == APP14:  # Adobe: colour transform flag that decoders need
        return data[segment.start + 4 : segment.start + 9] == b"Adobe"
    return not 0xE1 <= marker <= 0xEF  # APP1 EXIF/XMP, APP2 ICC/FlashPix, APP13 IPTC, …


def _jfif_without_thumbnail(segment: bytes) -> bytes:
    """The JFIF APP0 segment with its (optional) thumbnail removed: same version, units and
    density, thumbnail size 0×0."""
    if len(segment) < 18:
        return segment
    header = bytearray(segment[:18])
    header[2:4] = (16).to_bytes(2, "big")
    header[16] = header[17] = 0
    return bytes(header)


def strip_jpeg_metadata(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The JPEG without metadata, and what was removed (for the record).

    Kept unchanged: SOI, JFIF APP0 (minus a thumbnail), Adobe APP14, DQT, DHT, DRI, SOF, SOS and
    its entropy-coded data, restart markers, EOI. Removed: APP1–APP15 other than Adobe APP14
    (EXIF, XMP, ICC — the caller carries the ICC profile separately —, IPTC, maker notes), JFXX
    thumbnails, COM, and anything after EOI. Raises ``JpegFormatError`` when the markers cannot
    be walked."""
    kept: list[bytes] = []
    removed: list[str] = []
    last_end = 0
    for segment in iter_segments(data):
        last_end = segment.end
        chunk = data[segment.start : segment.end]
        if not _is_kept(data, segment):
            removed.append("COM" if segment.marker == COM else f"APP{segment.marker - APP0}")
            continue
        if segment.marker == APP0:
            trimmed = _jfif_without_thumbnail(chunk)
            if trimmed != chunk:
                removed.append("JFIF thumbnail")
            chunk = trimmed
        kept.append(chunk)
    if last_end < len(data):
        removed.append(f"{len(data) - last_end} bytes after EOI")
    return b"".join(kept), tuple(removed)


def scan_data(data: bytes) -> bytes:
    """The decoder-relevant bytes: every segment except APPn and COM, in order (what must stay
    byte-identical when metadata is stripped)."""
    parts = [
        data[s.start : s.end]
        for s in iter_segments(data)
        if not (APP0 <= s.marker <= 0xEF or s.marker == COM)
    ]
    return b"".join(parts)


__all__ = [
    "JpegFormatError",
    "JpegFrame",
    "JpegSegment",
    "iter_segments",
    "jpeg_frame",
    "scan_data",
    "strip_jpeg_metadata",
]
