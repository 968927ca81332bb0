"""Field extraction (requirements §8, §9a): after signing, the data of every paper.

Two readers share this package:

* ``extract_fields`` reads the header of a document in the ND 30/2020 administrative layout
  (organ, ``Số:``, place and date, type heading and trích yếu, signer block, ``Nơi nhận``).
  Anchors are matched without diacritics and fuzzily, so OCR slips (``S6:``, ``ngay``) do not
  lose a field; a value that looks handwritten, disagrees with another field or misses a part
  is flagged for review: a flagged field is better than a confident wrong one.
* ``extract_paper`` is the pipeline's one call per component: it classifies the paper against
  the profile's paper-type catalogue, reads the type's field template, and returns the header
  fields together with the Art. 9 block (TT 01/2023 Art. 9 k2, R36–R39).

Layout: ``text`` (folding, similarity), ``vietnamese`` (syllables, administrative names),
``vocab`` (ND 30 types, motto), ``parsers`` (single header lines), ``lines`` (the page model),
``fields`` (the collector that flags), ``header`` + ``nd30`` (the ND 30 template); for the
citizens' papers ``catalogue`` (paper types), ``classify``, ``forms`` (labels and values),
``regions`` (columns, closing block, patterns), ``values`` (normal forms), ``owner_id`` (R39,
machine-readable zone), ``reader`` (one field and its doubts), ``paper`` (the Art. 9 block),
``dossier`` (cross-paper checks, result codes), ``present`` (masked display).
"""

from __future__ import annotations

from digitize.extract.catalogue import OTHER, Catalogue, load_catalogue, starter_types
from digitize.extract.dossier import DossierFacts, build_result_code, finish_dossier
from digitize.extract.nd30 import extract_fields
from digitize.extract.paper import PaperContext, PaperExtraction, extract_paper
from digitize.extract.parsers import (
    DateParse,
    NumberParse,
    match_doc_type,
    parse_date_line,
    parse_number_line,
    type_of_notation,
)
from digitize.extract.text import fold, similarity
from digitize.extract.vietnamese import (
    is_vietnamese_syllable,
    misread_words,
    restore_admin_words,
)
from digitize.extract.vocab import CONG_VAN, DOC_TYPES, MOTTO, MOTTO_2, VBHN
from digitize.settings import ExtractSettings

__all__ = [
    "OTHER",
    "Catalogue",
    "DossierFacts",
    "PaperContext",
    "PaperExtraction",
    "build_result_code",
    "extract_paper",
    "finish_dossier",
    "load_catalogue",
    "starter_types",
    "CONG_VAN",
    "DOC_TYPES",
    "MOTTO",
    "MOTTO_2",
    "VBHN",
    "DateParse",
    "ExtractSettings",
    "NumberParse",
    "extract_fields",
    "fold",
    "is_vietnamese_syllable",
    "match_doc_type",
    "misread_words",
    "parse_date_line",
    "parse_number_line",
    "restore_admin_words",
    "similarity",
    "type_of_notation",
]
