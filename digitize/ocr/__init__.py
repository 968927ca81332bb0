"""Vietnamese OCR of cleaned pages (R15), behind an engine seam.

* ``engine``: the ``OcrEngine`` protocol (words, orientation), engine registry and
  ``get_engine`` (one engine per process and settings, shared with the clean stage's
  orientation check);
* ``tesseract``: the default engine (tesseract ``vie`` in-process through tesserocr);
* ``read``: ``ocr_page``, the stage: restoration for OCR (``digitize.restore``), a second
  reading where it pays, the better line kept, quality flags;
* ``layout``: our lines, the two-column reading order, hOCR;
* ``output``: sidecar text, hOCR and JSON writers for ``digitize ocr``.

The public names below are the import paths other modules and the CLI use.
"""

from digitize.ocr import tesseract as _tesseract  # noqa: F401  (registers the default engine)
from digitize.ocr.engine import (
    ENTRY_POINT_GROUP,
    OcrEngine,
    OrientationReading,
    RawPage,
    RawWord,
    ReadingHints,
    engine_names,
    get_engine,
    register_engine,
)
from digitize.ocr.layout import assemble
from digitize.ocr.output import ocr_json, write_hocr, write_ocr_json, write_sidecar
from digitize.ocr.read import (
    has_ink,
    merge_readings,
    ocr_page,
    prepare_for_ocr,
    reading_quality,
    remove_rules,
    word_validity,
)
from digitize.ocr.tesseract import DEBIAN_TESSDATA, TesseractEngine
from digitize.settings import OcrSettings

__all__ = [
    "DEBIAN_TESSDATA",
    "ENTRY_POINT_GROUP",
    "OcrEngine",
    "OcrSettings",
    "OrientationReading",
    "RawPage",
    "RawWord",
    "ReadingHints",
    "TesseractEngine",
    "assemble",
    "engine_names",
    "get_engine",
    "has_ink",
    "merge_readings",
    "ocr_json",
    "ocr_page",
    "prepare_for_ocr",
    "reading_quality",
    "register_engine",
    "remove_rules",
    "word_validity",
    "write_hocr",
    "write_ocr_json",
    "write_sidecar",
]
