"""Page pictures for people, drawn from the SIGNED component PDFs (what the bundle vouches
for, with the visible signature note), never from the scans.

``pdftoppm`` (poppler-utils, a runtime package of ``scripts/setup.sh``) renders one page per
call to stdout; Pillow cuts the crops. Coordinates in the manifest (extraction boxes) are pixels
of the page image as it went into the PDF (``PageEntry.width_px``/``height_px``); a page is
rendered at a chosen width and boxes are scaled by ``width / width_px``. A render cache keeps
the last pages (keyed by the file's identity and size) so the review page and its crops do
not render a page twice.
"""

from __future__ import annotations

import io
import subprocess
import threading
from collections import OrderedDict
from pathlib import Path

from PIL import Image

from digitize.errors import PdfError
from digitize.models import BBox

RENDER_TIMEOUT_S = 120
CROP_MARGIN = 0.35  # of the box height, around a field's box: the words beside it give context


class PageRenderer:
    """Renders pages of signed PDFs to JPEG/PNG bytes; thread-safe, with a small cache."""

    def __init__(self, cache_pages: int = 24) -> None:
        self._cache: OrderedDict[tuple[object, ...], Image.Image] = OrderedDict()
        self._cache_pages = cache_pages
        self._lock = threading.Lock()

    def page_image(self, pdf: Path, page: int, width: int) -> Image.Image:
        """Page ``page`` (1-based) of ``pdf`` as an RGB image ``width`` pixels wide."""
        stat = pdf.stat()
        key = (str(pdf), stat.st_ino, stat.st_size, stat.st_mtime_ns, page, width)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        image = _render(pdf, page, width)
        with self._lock:
            self._cache[key] = image
            while len(self._cache) > self._cache_pages:
                self._cache.popitem(last=False)
        return image

    def page_jpeg(self, pdf: Path, page: int, width: int, quality: int = 78) -> bytes:
        return _encode(self.page_image(pdf, page, width), "JPEG", quality)

    def crop(self, pdf: Path, page: int, bbox: BBox, page_width_px: int,
             render_width: int = 1400, max_width: int = 900) -> bytes:
        """The region ``bbox`` (pixels of a page ``page_width_px`` wide) with a margin, as PNG
        at most ``max_width`` wide."""
        image = self.page_image(pdf, page, render_width)
        scale = image.width / max(page_width_px, 1)
        x0, y0, x1, y1 = bbox
        margin = max(8.0, (y1 - y0) * CROP_MARGIN)
        box = (
            max(0, int((x0 - margin) * scale)),
            max(0, int((y0 - margin) * scale)),
            min(image.width, int((x1 + margin) * scale) + 1),
            min(image.height, int((y1 + margin) * scale) + 1),
        )
        if box[2] <= box[0] or box[3] <= box[1]:
            box = (0, 0, image.width, min(image.height, 40))
        part = image.crop(box)
        if part.width > max_width:
            part = part.resize((max_width, max(1, round(part.height * max_width / part.width))))
        return _encode(part, "PNG")


def _render(pdf: Path, page: int, width: int) -> Image.Image:
    command = ["pdftoppm", "-f", str(page), "-l", str(page), "-scale-to-x", str(width),
               "-scale-to-y", "-1", "-png", "-singlefile", str(pdf)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=RENDER_TIMEOUT_S,
                              check=False)
    except FileNotFoundError:
        raise PdfError("pdftoppm is missing (Debian package poppler-utils)", path=pdf) from None
    except subprocess.TimeoutExpired:
        raise PdfError(f"rendering took over {RENDER_TIMEOUT_S} s", path=pdf, page=page) from None
    if done.returncode != 0 or not done.stdout:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise PdfError(f"cannot render the page: {detail[0][:160]}", path=pdf, page=page)
    image = Image.open(io.BytesIO(done.stdout))
    return image.convert("RGB")


def _encode(image: Image.Image, fmt: str, quality: int = 80) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=quality, optimize=True)
    else:
        image.save(out, "PNG", optimize=True)
    return out.getvalue()


def signature_box_px(pdf: Path, page_width_px: int) -> BBox | None:
    """The visible signature note's box on page 1, in page-image pixels (from the signed PDF's
    signature widget), for outlining ``stamp_overlaps_text``."""
    import pikepdf

    try:
        with pikepdf.open(pdf) as doc:
            first = doc.pages[0]
            width_pt = float(first.mediabox[2]) - float(first.mediabox[0])
            height_pt = float(first.mediabox[3]) - float(first.mediabox[1])
            for annot in first.obj.get("/Annots", []):
                if annot.get("/FT") == "/Sig" or (annot.get("/Parent") is not None
                                                  and annot.Parent.get("/FT") == "/Sig"):
                    x0, y0, x1, y1 = (float(v) for v in annot.Rect)
                    scale = page_width_px / width_pt
                    return (round(min(x0, x1) * scale), round((height_pt - max(y0, y1)) * scale),
                            round(max(x0, x1) * scale), round((height_pt - min(y0, y1)) * scale))
    except (pikepdf.PdfError, OSError, ValueError, AttributeError, IndexError):
        return None
    return None
