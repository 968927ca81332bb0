"""The scan's own compressed image data for lossless PDF pass-through (img2pdf-style).

``read_page_encoded`` returns an ``EncodedImage`` whose image data was not re-encoded, or None
(the caller then encodes from pixels). What is passed, what is cleaned, what is refused:

==========================  ======================================================================
source                      result
==========================  ======================================================================
JPEG file / DCT PDF image   the JPEG with metadata removed (``digitize.jpeg.strip_jpeg_metadata``:
                            EXIF/XMP/IPTC, thumbnails, comments, bytes after EOI); tables, frame
                            and scan headers and entropy-coded data byte-identical; the ICC
                            profile travels separately (``icc_profile``)
G4 TIFF, one strip          the strip bytes, ``K=-1``, ``Columns``, ``Rows``, ``BlackIs1`` from
                            PhotometricInterpretation (multi-strip, tiled, LSB-first: None)
CCITT / Flate PDF image     the raw stream bytes with their decode parms (``/Decode [1 0]`` on
                            CCITT folded into ``BlackIs1``)
JBIG2 / JPX PDF image       None: re-encoded from the decoded pixels (G4 / Flate / JPEG). Their
                            decoders are the classic exploit targets of PDF viewers; raw copies
                            would carry such payloads into a signed archive, and the viewer
                            might show bytes other than those jbig2dec/OpenJPEG decoded for QA
PDF page shown turned       None (``pdf_rotation_deg``/``pdf_mirrored`` set): the stored image is
                            not the page as displayed
PNG, BMP, other TIFF        None (re-encoded)
==========================  ======================================================================

``passthrough`` is True on every result: the compressed image data is the scan's, unchanged.
The bytes read are checked against ingest's SHA-256 first (``SourceChangedError``, R8); any
other read problem gives None.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO

import pikepdf
from PIL import Image

from digitize.errors import SourceChangedError
from digitize.ingest.frames_pdf import MAX_ICC_BYTES, largest_page_image, pdf_encoding
from digitize.ingest.guard import ensure_decoder_limits
from digitize.ingest.pdf_checks import open_pdf
from digitize.ingest.pdf_content import bounded_stream_bytes
from digitize.ingest.pixels import verified_source
from digitize.ingest.probe import sniff_format
from digitize.jpeg import jpeg_frame, strip_jpeg_metadata
from digitize.models import ColourMode, EncodedImage, IngestedPage, SourceEncoding
from digitize.util import nfc


def jpeg_adobe_inverted(data: bytes) -> bool:
    """True when a CMYK JPEG carries an Adobe APP14 marker (Photoshop/scanner convention:
    the samples are stored inverted, so the PDF needs ``/Decode [1 0 1 0 1 0 1 0]``)."""
    try:
        return jpeg_frame(data).adobe
    except ValueError:
        return False


def encoded_from_jpeg_bytes(data: bytes, icc: bytes | None = None) -> EncodedImage | None:
    """A JPEG as DCTDecode data, metadata removed; None for JPEGs a PDF cannot hold."""
    stripped, _removed = strip_jpeg_metadata(data)
    frame = jpeg_frame(stripped)
    if frame.bits != 8 or frame.components not in (1, 3, 4):
        return None  # 12-bit or odd JPEGs are not valid DCTDecode in PDF
    return EncodedImage(
        data=stripped,
        filter="DCTDecode",
        colour_mode=ColourMode.GRAY if frame.components == 1 else ColourMode.RGB,
        width=frame.width,
        height=frame.height,
        bits_per_component=8,
        icc_profile=icc,
        cmyk=frame.components == 4,
        passthrough=True,
    )


def _encoded_from_tiff_g4(source: BinaryIO, frame: int) -> EncodedImage | None:
    with Image.open(source) as img:
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
    source.seek(offset)
    data = source.read(count)
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
        passthrough=True,
    )


def _colour_from_space(space: Any) -> tuple[int | None, bytes | None]:
    """(components, icc bytes) for device/ICC spaces; None for indexed/separation/Lab."""
    if isinstance(space, pikepdf.Name):
        return {"/DeviceGray": 1, "/DeviceRGB": 3, "/DeviceCMYK": 4}.get(str(space)), None
    if isinstance(space, pikepdf.Array) and len(space) >= 2:
        family = str(space[0])
        if family == "/ICCBased" and isinstance(space[1], pikepdf.Stream):
            stream = space[1]
            n = int(stream.get("/N", 0))
            icc = bounded_stream_bytes(stream, MAX_ICC_BYTES, "the ICC profile")
            return (n if n in (1, 3, 4) else None), icc
        if family == "/CalGray":
            return 1, None
        if family == "/CalRGB":
            return 3, None
    return None, None


def _decode_inverted(obj: pikepdf.Stream) -> bool | None:
    """True for ``/Decode [1 0]``, False for none or the default, None for anything else."""
    decode = obj.get("/Decode")
    if not isinstance(decode, pikepdf.Array):
        return False
    values = [float(v) for v in decode]
    if values == [1.0, 0.0]:
        return True
    return False if values == [0.0, 1.0] * (len(values) // 2) else None


def _parm_dict(parm: Any) -> dict[str, int | bool]:
    result: dict[str, int | bool] = {}
    if isinstance(parm, pikepdf.Dictionary):
        for key, value in parm.items():
            if isinstance(value, bool):
                result[key.lstrip("/")] = value
            elif isinstance(value, int):
                result[key.lstrip("/")] = int(value)
    return result


def _encoded_from_pdf(page: IngestedPage, source: BinaryIO, display: str) -> EncodedImage | None:
    with open_pdf(source, display, allow_encrypted=True) as pdf:
        image = largest_page_image(pdf.pages[page.frame])
        if image is None:
            return None
        obj = image.obj
        encoding, names, parms = pdf_encoding(obj)
        inverted = _decode_inverted(obj)
        if len(names) != 1 or obj.get("/SMask") is not None or obj.get("/Mask") is not None:
            return None
        if inverted is None or encoding in (SourceEncoding.JBIG2, SourceEncoding.JPEG2000):
            return None  # JBIG2/JPX: re-encoded from pixels (see the module docstring)
        image_mask = bool(obj.get("/ImageMask", False))
        bpc = 1 if image_mask else int(obj.get("/BitsPerComponent", 8))
        components, icc = (1, None) if image_mask else _colour_from_space(obj.get("/ColorSpace"))
        raw = bytes(obj.read_raw_bytes())
        if encoding == SourceEncoding.JPEG:
            return None if inverted else encoded_from_jpeg_bytes(raw, icc)
        if components is None or components == 4:
            return None
        parm_dict = _parm_dict(parms[0] if parms else None)
        if names == ["/CCITTFaxDecode"]:
            parm_dict.setdefault("Columns", image.width)
            parm_dict.setdefault("Rows", image.height)
            parm_dict.setdefault("K", 0)
            # ImageMask 0 paints black: same as DeviceGray 0; /Decode [1 0] flips: BlackIs1 does.
            parm_dict["BlackIs1"] = bool(parm_dict.get("BlackIs1", False)) != inverted
            return EncodedImage(
                data=raw,
                filter="CCITTFaxDecode",
                colour_mode=ColourMode.BILEVEL,
                width=image.width,
                height=image.height,
                bits_per_component=1,
                decode_parms=parm_dict,
                passthrough=True,
            )
        if inverted or encoding != SourceEncoding.FLATE or bpc not in (1, 8):
            return None
        mode = ColourMode.BILEVEL if bpc == 1 else ColourMode.GRAY if components == 1 else ColourMode.RGB
        return EncodedImage(
            data=raw,
            filter="FlateDecode",
            colour_mode=mode,
            width=image.width,
            height=image.height,
            bits_per_component=bpc,
            decode_parms=parm_dict,
            icc_profile=icc,
            passthrough=True,
        )


def _encoded(page: IngestedPage, source: BinaryIO, display: str) -> EncodedImage | None:
    fmt = sniff_format(source.read(4096))
    source.seek(0)
    if fmt == "pdf":
        return _encoded_from_pdf(page, source, display)
    if fmt == "tiff" and page.encoding == SourceEncoding.CCITT_G4:
        return _encoded_from_tiff_g4(source, page.frame)
    if fmt == "jpeg":
        data = source.read()
        with Image.open(io.BytesIO(data)) as img:
            icc = img.info.get("icc_profile")
        return encoded_from_jpeg_bytes(data, icc)
    return None


def read_page_encoded(page: IngestedPage) -> EncodedImage | None:
    """The page's compressed image data for lossless PDF pass-through, or None (re-encode).

    See the module docstring for what each source gives. ``colour_mode`` describes the stored
    data (a 3-component JPEG is RGB even when QA judged the page gray). Raises only
    ``SourceChangedError`` (the file is not the one ingest hashed, R8); any other problem
    reading the file gives None, and the caller re-encodes from pixels (and fails there).
    """
    if page.pdf_rotation_deg or page.pdf_mirrored:
        return None
    ensure_decoder_limits()
    display = nfc(Path(page.source).name)
    try:
        source = verified_source(page, display)
    except SourceChangedError:
        raise
    except Exception:  # noqa: BLE001 - unreadable now: the pixel path reports it
        return None
    try:
        return _encoded(page, source, display)
    except Exception:  # noqa: BLE001 - hostile or odd data: re-encode from pixels instead
        return None
    finally:
        source.close()
