"""Scan ingest and page QA (R3–R12): locate every page of a dossier, measure it, refuse what a
counter must not accept, and say why in one line.

Contract (fixed): ``ingest_dossier``, ``ingest_dossier_isolated``, ``load_page_pixels``,
``read_page_encoded``. Light names (``natural_key``, ``DOSSIER_YAML``, ``load_dossier_yaml``,
``DossierSpec``, ``SCAN_EXTENSIONS``) import without OpenCV, pikepdf or Pillow; the others are
loaded on first use.

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
    ``path``, ``name``, ``declared_pages``, ``note_slip_pages``, ``not_digitised_reason``);
    anchors/aliases are refused, and size, node count and depth are capped (``spec``).

Guarantees
    * Inputs are opened read-only and never modified; each source file is hashed (SHA-256, R8).
    * Only regular files are read: a FIFO, device or socket named like a scan is refused from
      ``stat`` without being opened; files are opened ``O_NONBLOCK|O_NOFOLLOW`` and checked with
      ``fstat`` (``files``).
    * Pages are decoded one at a time and released (a 300-page TIFF never sits in memory).
    * Image dimensions are checked from the header before any pixel is decoded (bombs);
      compressed streams are decoded under limits (qpdf's Flate/RunLength/predictor limits,
      a cap on PDF content streams, ICC profiles): past them ``DecompressionBombError`` (101).
    * ``jbig2dec`` runs with a deadline (``decode_timeout_s``); the isolated runner also
      enforces it per page and per dossier (``DecodeTimeoutError``, 102).
    * Only ``DigitizeError`` subclasses leave ``ingest_dossier``/``load_page_pixels``; every
      message is one line naming the file (and page).
    * Raster pixels are left as scanned (EXIF orientation is recorded as a flag, not applied).
      A PDF page is taken as displayed: its /Rotate and the image's drawing matrix are applied
      (``IngestedPage.pdf_rotation_deg``/``pdf_mirrored`` say what), and its dpi is measured in
      the image's own axes against the size it is drawn at (``frames_pdf``).
    * Page workers check the bytes they read again against the recorded SHA-256
      (``SourceChangedError``, 23) and decode exactly the bytes they checked (``pixels``).
    * Pass-through (``read_page_encoded``, ``passthrough``): JPEG metadata is removed, the
      image data kept byte-identical; JBIG2 and JPX are re-encoded, never copied.

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
      ``pdf_page_rotate``     (info) the PDF page has /Rotate; the page is taken as displayed
      ``pdf_orientation_applied`` (info) the stored image was turned/mirrored to show the page
                              as displayed (/Rotate and the image matrix together)
      ``captured_at_mtime``   (info) no capture time in the file; file modification time used
    component level:
      ``pdf_rescanned``       (warning) which PDF and what it carried (text, signatures)
      ``pdf_encrypted``       (warning) permissions-only encrypted PDF read in rescan mode
      ``original_active_content`` (review) a PDF kept byte-identical as a received original
                              carries JavaScript, actions (/OpenAction, /AA, /Launch), embedded
                              files, XFA or RichMedia: listed in the message
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
    * ``max_pixels`` 80 Mpx: A3 at 600 dpi is 70 Mpx, the largest real capture; Pillow's limit
      is set to match. Decoded PDF streams: 512 MB each (16-bit RGB at 80 Mpx), content streams
      16 MB per page (a scanner page draws its image in a few dozen bytes).
    * Blank page below 0.25 % ink (measured: blank backs ~0.09 %, sparsest real page 1.2 %).

Layout
    ``spec`` dossier.yaml · ``walk`` folders and names · ``files`` safe opening · ``probe``
    hash, type, truncation · ``guard`` decoder limits and the exception funnel · ``dpi`` ·
    ``frame`` · ``frames_raster`` / ``frames_pdf`` / ``pdf_content`` / ``pdf_checks`` page
    frames · ``qa`` page analysis and duplicates · ``assemble`` ``ingest_dossier`` ·
    ``pixels`` ``load_page_pixels`` and the source check · ``passthrough``
    ``read_page_encoded`` · ``isolated`` ``ingest_dossier_isolated``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from digitize.ingest.spec import (
    CENTRALISED_DOSSIER_CODE,
    DOSSIER_YAML,
    LEGACY_DOSSIER_CODE,
    PROCEDURE_CODE,
    ComponentSpec,
    DossierSpec,
    dossier_code_format,
    load_dossier_yaml,
)
from digitize.ingest.walk import SCAN_EXTENSIONS, natural_key
from digitize.settings import IngestSettings

if TYPE_CHECKING:  # the heavy names, for type checkers; loaded lazily at run time
    from digitize.ingest.assemble import ingest_dossier
    from digitize.ingest.dpi import (
        PAPER_SIZES_MM,
        STANDARD_DPIS,
        DpiDecision,
        PaperFit,
        decide_dpi,
        fit_paper,
    )
    from digitize.ingest.isolated import ingest_dossier_isolated
    from digitize.ingest.passthrough import jpeg_adobe_inverted, read_page_encoded
    from digitize.ingest.pixels import forget_verified_sources, load_page_pixels
    from digitize.ingest.probe import header_size, sniff_format
    from digitize.ingest.qa import PageAnalysis, analyse_page, is_near_duplicate

_LAZY = {
    "ingest_dossier": "assemble",
    "ingest_dossier_isolated": "isolated",
    "load_page_pixels": "pixels",
    "forget_verified_sources": "pixels",
    "read_page_encoded": "passthrough",
    "jpeg_adobe_inverted": "passthrough",
    "fit_paper": "dpi",
    "decide_dpi": "dpi",
    "PaperFit": "dpi",
    "DpiDecision": "dpi",
    "PAPER_SIZES_MM": "dpi",
    "STANDARD_DPIS": "dpi",
    "analyse_page": "qa",
    "is_near_duplicate": "qa",
    "PageAnalysis": "qa",
    "sniff_format": "probe",
    "header_size": "probe",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'digitize.ingest' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"digitize.ingest.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CENTRALISED_DOSSIER_CODE",
    "DOSSIER_YAML",
    "LEGACY_DOSSIER_CODE",
    "PAPER_SIZES_MM",
    "PROCEDURE_CODE",
    "SCAN_EXTENSIONS",
    "STANDARD_DPIS",
    "ComponentSpec",
    "DossierSpec",
    "DpiDecision",
    "IngestSettings",
    "PageAnalysis",
    "PaperFit",
    "analyse_page",
    "decide_dpi",
    "dossier_code_format",
    "fit_paper",
    "forget_verified_sources",
    "header_size",
    "ingest_dossier",
    "ingest_dossier_isolated",
    "is_near_duplicate",
    "jpeg_adobe_inverted",
    "load_dossier_yaml",
    "load_page_pixels",
    "natural_key",
    "read_page_encoded",
    "sniff_format",
]
