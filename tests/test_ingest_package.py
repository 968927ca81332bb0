"""The ingest package keeps every public import path, and its light names stay light.

batch and watch need only ``natural_key``, ``DOSSIER_YAML`` and ``load_dossier_yaml`` while
planning, in the process that holds the signer: importing them must not load a decoder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import digitize.ingest

REPO = Path(__file__).resolve().parents[1]

# Every name the single-module ingest exported or other modules, tests and bench import.
FORMER_PUBLIC = [
    "IngestSettings", "ingest_dossier", "load_page_pixels", "read_page_encoded",
    "load_dossier_yaml", "fit_paper", "decide_dpi", "analyse_page", "natural_key",
    "sniff_format", "jpeg_adobe_inverted", "DOSSIER_YAML", "SCAN_EXTENSIONS", "DossierSpec",
    "ComponentSpec", "dossier_code_format", "header_size", "is_near_duplicate", "PaperFit",
    "DpiDecision", "PAPER_SIZES_MM", "STANDARD_DPIS", "LEGACY_DOSSIER_CODE",
    "CENTRALISED_DOSSIER_CODE", "PROCEDURE_CODE",
]


def test_every_public_name_resolves() -> None:
    for name in FORMER_PUBLIC + list(digitize.ingest.__all__):
        assert getattr(digitize.ingest, name) is not None, name
    assert digitize.ingest.natural_key("p2") < digitize.ingest.natural_key("p10")


def test_light_names_import_no_decoder() -> None:
    code = (
        "import sys\n"
        "from digitize.ingest import natural_key, DOSSIER_YAML, load_dossier_yaml, DossierSpec\n"
        "heavy = [m for m in ('cv2', 'pikepdf', 'PIL', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert done.stdout.strip() == ""
