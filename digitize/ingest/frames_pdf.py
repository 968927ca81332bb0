"""Page frames of image-only PDFs (scanner "scan to PDF"), read with pikepdf.

Each page's scan is its largest image. Its effective resolution is measured in the image's own
axes against the size it is drawn at (the CTM of its ``Do``): pixels along its columns over the
length of ``(a, b)``, pixels along its rows over the length of ``(c, d)``. Office scanners store
a landscape image on a landscape page and show it portrait with ``/Rotate 90``, or draw the
image with a turning matrix; measuring against the displayed page size would read a 200-dpi
page as 141 dpi and refuse it under R10.

The page is handed on as displayed: the turn (and mirror) that the page's ``/Rotate`` and the
image's matrix apply together is recorded (``FrameInfo.transform`` → ``IngestedPage.
pdf_rotation_deg``/``pdf_mirrored``) and applied by ``load_page_pixels``; width, height and dpi
describe the displayed page. A matrix a few degrees off the axes is snapped to the nearest
quarter turn; the remaining tilt is the clean stage's deskew.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import pikepdf
from pikepdf.models.metadata import decode_pdf_date
from PIL import Image

from digitize.errors import CorruptFileError, PdfNotAScanError, TooLargeError
from digitize.ingest.frame import DisplayTransform, FrameInfo
from digitize.ingest.guard import check_pixels
from digitize.ingest.pdf_checks import (
    PdfScanCheck,
    active_content,
    fonts_in,
    inherited,
    open_pdf,
    signature_fields,
)
from digitize.ingest.pdf_content import Matrix, bounded_stream_bytes, read_page_content
from digitize.ingest.pdf_geometry import page_geometry, rotate_of
from digitize.models import Flag, Severity, SourceEncoding, make_flag
from digitize.settings import IngestSettings
from digitize.util import VN_TZ


@dataclass
class PdfPageImage:
    obj: pikepdf.Stream
    width: int
    height: int
    count: int  # images found on the page


def _iter_xobject_images(
    resources: Any, seen: set[tuple[int, int]], depth: int = 0
) -> Iterator[pikepdf.Stream]:
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


def largest_page_image(page: pikepdf.Page) -> PdfPageImage | None:
    best: PdfPageImage | None = None
    count = 0
    for obj in _iter_xobject_images(inherited(page, "/Resources"), set()):
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


def pdf_encoding(obj: pikepdf.Object) -> tuple[SourceEncoding, list[str], list[Any]]:
    filters = obj.get("/Filter")
    parms = obj.get("/DecodeParms")
    names = [str(f) for f in filters] if isinstance(filters, pikepdf.Array) else []
    if isinstance(filters, pikepdf.Name):
        names = [str(filters)]
    parm_list: list[Any] = (
        list(parms) if isinstance(parms, pikepdf.Array) else [parms] * max(1, len(names))
    )
    last = names[-1] if names else None
    by_filter = {
        "/DCTDecode": SourceEncoding.JPEG,
        "/JBIG2Decode": SourceEncoding.JBIG2,
        "/JPXDecode": SourceEncoding.JPEG2000,
        "/FlateDecode": SourceEncoding.FLATE,
    }
    enc = by_filter.get(last or "", SourceEncoding.OTHER)
    if last == "/CCITTFaxDecode":
        p = parm_list[-1] if parm_list else None
        k = int(p.get("/K", 0)) if isinstance(p, pikepdf.Dictionary) else 0
        enc = SourceEncoding.CCITT_G4 if k < 0 else SourceEncoding.OTHER
    return enc, names, parm_list


def _pdf_datetime(value: Any) -> datetime | None:
    try:
        moment = decode_pdf_date(str(value))
    except (ValueError, TypeError, IndexError):
        return None
    # A PDF date without an offset is the counter's local time.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=VN_TZ)


@dataclass
class _PageScan:
    image: PdfPageImage | None
    matrix: Matrix | None
    has_text: bool


def _scan_pages(pdf: pikepdf.Pdf, settings: IngestSettings) -> list[_PageScan]:
    scans = []
    for number, page in enumerate(pdf.pages, start=1):
        resources = inherited(page, "/Resources")
        content = read_page_content(page, resources, settings.max_content_stream_bytes, f"page {number}")
        image = largest_page_image(page)
        matrix = content.placements.get(image.obj.objgen) if image is not None else None
        has_text = content.has_text or fonts_in(resources, set())
        scans.append(_PageScan(image, matrix, has_text))
    return scans


def _document_flags(
    pdf: pikepdf.Pdf, check: PdfScanCheck, settings: IngestSettings, display: str
) -> list[Flag]:
    """Component flags; raises when the PDF is not a scan and rescan mode is off."""
    flags: list[Flag] = []
    if pdf.is_encrypted:
        flags.append(
            make_flag(
                "pdf_encrypted",
                f"{display} is encrypted (readable without a password); only its page "
                "images were taken",
                Severity.WARNING,
            )
        )
    if check.is_scan:
        return flags
    if settings.pdf_with_text != "rescan":
        raise PdfNotAScanError(
            f"PDF is not a fresh scan: it carries {check.describe()}",
            path=display,
            hint='set ingest.pdf_with_text: "rescan" to take its page images',
        )
    flags.append(
        make_flag(
            "pdf_rescanned",
            f"{display} carried {check.describe()}; only its page images were taken",
            Severity.WARNING,
        )
    )
    active = active_content(pdf)
    if active:
        flags.append(
            make_flag(
                "original_active_content",
                f"{display} is kept byte-identical as a received original and carries "
                f"{', '.join(active)}: check it before the bundle is relied on",
            )
        )
    return flags


def _page_flags(
    number: int, image: PdfPageImage, rotate: int, transform: DisplayTransform, off_axis: float
) -> list[Flag]:
    flags = []
    if image.count > 1:
        flags.append(
            make_flag(
                "pdf_extra_images",
                f"{image.count} images on the page; the largest is the scan",
                Severity.INFO,
                number,
            )
        )
    if rotate:
        flags.append(
            make_flag(
                "pdf_page_rotate",
                f"page has /Rotate {rotate}; the page is taken as displayed",
                Severity.INFO,
                number,
            )
        )
    if not transform.is_identity:
        tilt = f"; the image is drawn {off_axis:.1f}° off the axes" if off_axis >= 0.1 else ""
        flags.append(
            make_flag(
                "pdf_orientation_applied",
                f"stored image {transform.describe()} to show the page as the PDF displays "
                f"it{tilt}",
                Severity.INFO,
                number,
            )
        )
    return flags


def iter_pdf_frames(
    source: Path | BinaryIO,
    settings: IngestSettings,
    display: str,
    has_byte_range: bool,
    component_flags: list[Flag],
) -> Generator[tuple[FrameInfo, pikepdf.Stream], None, None]:
    rescan_allowed = settings.pdf_with_text == "rescan"
    with open_pdf(source, display, allow_encrypted=rescan_allowed) as pdf:
        npages = len(pdf.pages)
        if npages == 0:
            raise CorruptFileError("PDF has no pages", path=display)
        if npages > settings.max_pages_per_file:
            raise TooLargeError(
                f"{npages} pages exceed the limit of {settings.max_pages_per_file}", path=display
            )
        scans = _scan_pages(pdf, settings)
        check = PdfScanCheck(
            text_pages=[i + 1 for i, s in enumerate(scans) if s.has_text],
            signatures=signature_fields(pdf),
            byte_range=has_byte_range,
        )
        component_flags.extend(_document_flags(pdf, check, settings, display))
        try:
            created = _pdf_datetime(pdf.docinfo.get("/CreationDate", ""))
        except pikepdf.PdfError:  # a damaged Info dictionary is no reason to refuse a scan
            created = None
        for index, (page, scan) in enumerate(zip(pdf.pages, scans, strict=True)):
            number = index + 1
            image = scan.image
            if image is None:
                raise PdfNotAScanError(
                    "PDF page has no scanned image (vector or empty page)",
                    path=display,
                    page=number,
                )
            check_pixels(image.width, image.height, settings, display, number)
            transform, file_dpi, off_axis = page_geometry(page, image, scan.matrix)
            encoding, _names, _parms = pdf_encoding(image.obj)
            width, height = image.width, image.height
            if transform.swaps_axes:
                width, height = height, width
            info = FrameInfo(
                frame=index,
                encoding=encoding,
                width=width,
                height=height,
                file_dpi=file_dpi,
                lossy=encoding in (SourceEncoding.JPEG, SourceEncoding.JPEG2000),
                transform=transform,
            )
            if created is not None:
                info.captured_at, info.captured_at_source = created, "pdf"
            if not check.is_scan:
                info.flags.append(
                    make_flag(
                        "pdf_rescanned",
                        "page image taken from a PDF that was not a fresh scan",
                        Severity.WARNING,
                        number,
                    )
                )
            info.flags.extend(_page_flags(number, image, rotate_of(page), transform, off_axis))
            yield info, image.obj


# Side streams an image decode reads whole: an ICC profile (the largest real ones, printer
# LUTs, are about 1 MB) and JBIG2 globals (shared symbol dictionaries, tens of kB).
MAX_ICC_BYTES = 4 * 1024**2
MAX_JBIG2_GLOBALS_BYTES = 16 * 1024**2


def _check_side_streams(obj: pikepdf.Stream) -> None:
    """Inflate the ICC profile and JBIG2 globals within their caps before the decoder reads
    them whole (``DecompressionBombError`` past the cap)."""
    space = obj.get("/ColorSpace")
    if isinstance(space, pikepdf.Array) and len(space) >= 2 and str(space[0]) == "/ICCBased":
        if isinstance(space[1], pikepdf.Stream):
            bounded_stream_bytes(space[1], MAX_ICC_BYTES, "the image's ICC profile")
    parms = obj.get("/DecodeParms")
    for parm in parms if isinstance(parms, pikepdf.Array) else [parms]:
        if isinstance(parm, pikepdf.Dictionary):
            glob = parm.get("/JBIG2Globals")
            if isinstance(glob, pikepdf.Stream):
                bounded_stream_bytes(glob, MAX_JBIG2_GLOBALS_BYTES, "the JBIG2 globals")


def pdf_image_to_pil(obj: pikepdf.Stream) -> Image.Image:
    _check_side_streams(obj)
    pdf_image = pikepdf.PdfImage(obj)
    img = pdf_image.as_pil_image()
    if pdf_image.image_mask:
        # Stencil mask: sample 0 paints the fill colour (black on a scan), 1 leaves paper.
        img = img.convert("L")
    return img
