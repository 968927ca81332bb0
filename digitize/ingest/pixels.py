"""One page, on demand, in a page worker: the bytes are checked against ingest's SHA-256
before anything is decoded (R8), then decoded and shown as the page is displayed.

Page workers read a scan again by path, long after ingest hashed it. Between the two, anyone
who can write the inbox could swap the file (and restore it before the bundle's final check).
``verified_source`` therefore reads the file through one descriptor (``O_NOFOLLOW``, regular
files only), hashes exactly the bytes it will hand to the decoder, and raises
``SourceChangedError`` when they are not the bytes ingest recorded. Files up to
``IN_MEMORY_MAX_BYTES`` are decoded from that verified copy in memory (nothing on disk can
change them afterwards); the last verified file is kept per process so the pages of one
multi-page TIFF or PDF are hashed once. Larger files are hashed and then decoded through the
same open descriptor.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
from PIL import Image

from digitize.errors import (
    CorruptFileError,
    PdfNotAScanError,
    SourceChangedError,
    UnsupportedFormatError,
)
from digitize.ingest.files import open_regular
from digitize.ingest.frame import DisplayTransform
from digitize.ingest.frames_pdf import largest_page_image, pdf_image_to_pil
from digitize.ingest.guard import check_pixels, ensure_decoder_limits, guard, pil_bomb_guard
from digitize.ingest.pdf_checks import open_pdf
from digitize.ingest.probe import sniff_format
from digitize.ingest.qa import to_array
from digitize.models import ColourMode, IngestedPage
from digitize.settings import IngestSettings
from digitize.util import nfc

IN_MEMORY_MAX_BYTES = 512 * 1024**2
_cache_lock = threading.Lock()
_cache: tuple[tuple[str, str], bytes] | None = None


def _changed(page: IngestedPage, display: str, why: str) -> SourceChangedError:
    return SourceChangedError(
        f"{why} since ingest (R8: SHA-256 recorded {page.source_sha256[:12]}…)",
        path=display,
        page=page.frame + 1,
        hint="the scan was replaced or edited while the dossier was processed; run it again",
    )


def verified_source(page: IngestedPage, display: str) -> BinaryIO:
    """A readable binary stream of the page's source file whose bytes have the SHA-256 that
    ingest recorded; ``SourceChangedError`` otherwise (also when the file is gone)."""
    global _cache
    key = (str(page.source), page.source_sha256)
    with _cache_lock:
        if _cache is not None and _cache[0] == key:
            return io.BytesIO(_cache[1])
    try:
        real = Path(page.source).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise _changed(page, display, "the scan is no longer there") from exc
    handle = open_regular(real, display)
    try:
        digest = hashlib.sha256()
        if os.fstat(handle.fileno()).st_size <= IN_MEMORY_MAX_BYTES:
            data = handle.read(IN_MEMORY_MAX_BYTES + 1)
            digest.update(data)
            if digest.hexdigest() != page.source_sha256:
                raise _changed(page, display, "the scan's content changed")
            handle.close()
            with _cache_lock:
                _cache = (key, data)
            return io.BytesIO(data)
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
        if digest.hexdigest() != page.source_sha256:
            raise _changed(page, display, "the scan's content changed")
        handle.seek(0)
        return handle
    except BaseException:
        handle.close()
        raise


def forget_verified_sources() -> None:
    """Drop the per-process copy of the last verified file (memory back, e.g. after a dossier)."""
    global _cache
    with _cache_lock:
        _cache = None


def _open_page_image(
    page: IngestedPage, source: BinaryIO, settings: IngestSettings, display: str
) -> tuple[Image.Image, Any]:
    """The PIL image of one page (and what must stay open while it is used)."""
    head = source.read(4096)
    source.seek(0)
    fmt = sniff_format(head)
    if fmt is None:
        raise UnsupportedFormatError("not a supported scan", path=display)
    if fmt == "pdf":
        # ingest_dossier already accepted (or refused) this file: no second policy decision here
        pdf = open_pdf(source, display, allow_encrypted=True)
        try:
            if page.frame >= len(pdf.pages):
                raise CorruptFileError("page no longer exists", path=display, page=page.frame + 1)
            image = largest_page_image(pdf.pages[page.frame])
            if image is None:
                raise PdfNotAScanError("page has no image", path=display, page=page.frame + 1)
            check_pixels(image.width, image.height, settings, display, page.frame + 1)
            img = pdf_image_to_pil(image.obj)
        except BaseException:
            pdf.close()
            raise
        return img, pdf
    img = Image.open(source)
    try:
        if page.frame:
            img.seek(page.frame)
        check_pixels(img.width, img.height, settings, display, page.frame + 1)
    except BaseException:
        img.close()
        raise
    return img, img


def load_page_pixels(page: IngestedPage, settings: IngestSettings | None = None) -> np.ndarray:
    """Decode one page: uint8 array, HxW for gray/bilevel (0/255), HxWx3 RGB for colour.

    The bytes are first checked against ``page.source_sha256`` (``SourceChangedError``).
    The shape follows ``page.qa.colour_mode`` (an RGB file with equal channels is returned as
    HxW). Raster pixels are as scanned (no EXIF rotation, no clean-up); a PDF page is shown as
    the PDF displays it (``page.pdf_rotation_deg``/``pdf_mirrored`` applied), so the array is
    ``page.height_px`` × ``page.width_px`` in every case.
    """
    settings = settings or IngestSettings()
    ensure_decoder_limits()
    display = nfc(Path(page.source).name)
    transform = DisplayTransform(page.pdf_rotation_deg, page.pdf_mirrored)
    with guard(display, page.frame + 1), pil_bomb_guard():
        source = verified_source(page, display)
        try:
            img, keep = _open_page_image(page, source, settings, display)
            try:
                img.load()
                arr, one_bit = to_array(img)
            finally:
                keep.close()
        finally:
            source.close()
        arr = transform.apply(arr)
        mode = page.qa.colour_mode
        if mode == ColourMode.RGB:
            if arr.ndim == 2:
                arr = np.ascontiguousarray(np.dstack([arr, arr, arr]))
            return np.ascontiguousarray(arr)
        if arr.ndim == 3:
            arr = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2GRAY)
        if mode == ColourMode.BILEVEL and not one_bit:
            arr = np.where(arr >= 128, 255, 0).astype(np.uint8)
        return np.ascontiguousarray(arr)
