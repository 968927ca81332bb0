"""The repository stands alone (issue 15 point 12): the vendored fixtures and the fallback.

``tests/data`` holds a byte-identical subset of ``../shared`` (7 corpus pages with their ground
truth, 2 real scans) under 5 MB; ``tests/conftest.py`` falls back to it when ``../shared`` is
absent and skips, with a one-line reason, what it does not hold. Before this change a clone
without ``../shared`` failed (``pytest.fail``) in every test touching the corpus.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from digitize.errors import PdfNotAScanError
from digitize.ingest import ingest_dossier
from digitize.models import ColourMode
from digitize.settings import IngestSettings
from digitize.util import sha256_file
from tests.conftest import VENDORED, shared_dir, shared_item, shared_root

LIMIT_BYTES = 5_000_000


def _listed() -> dict[str, tuple[str, int]]:
    """The hash table of tests/data/README.md: path → (sha256, bytes)."""
    text = (VENDORED / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^([0-9a-f]{64})  (\d+)  (.+)$", text, flags=re.M)
    return {path: (digest, int(size)) for digest, size, path in rows}


def _data_files() -> list[Path]:
    return [p for p in VENDORED.rglob("*") if p.is_file()
            and not p.name.endswith(".md") and not p.name.startswith("LICENSE")]  # fmt: skip


def test_vendored_files_are_the_listed_ones_and_small() -> None:
    """Every data file is listed with its hash and size, nothing else is there, and the whole
    folder (READMEs and licence included) stays under 5 MB."""
    listed = _listed()
    found = {str(p.relative_to(VENDORED)): (sha256_file(p), p.stat().st_size)
             for p in _data_files()}  # fmt: skip
    assert found == listed
    assert sum(p.stat().st_size for p in VENDORED.rglob("*") if p.is_file()) < LIMIT_BYTES


def test_vendored_files_equal_the_shared_originals() -> None:
    """Byte-identical copies: each file equals its original in ../shared (checked when the
    shared data is there, as in CI)."""
    root = shared_root()
    if not (root / "corpus").is_dir() or not (root / "real-scans").is_dir():
        pytest.skip(f"shared data not found at {root}: nothing to compare the copies with")
    for relative, (digest, _) in _listed().items():
        assert sha256_file(root / relative) == digest, relative


def test_real_scans_truth_matches_the_copies() -> None:
    """The copied truth.json of each real scan names the copied file's own hash."""
    for doc in ("r03", "r05"):
        folder = VENDORED / "real-scans" / doc
        truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))["files"][0]
        assert sha256_file(folder / truth["name"]) == truth["sha256"]


def test_signed_real_scan_refused_then_rescanned() -> None:
    """A real, already-signed scan PDF (r03: 3 G4 bilevel pages, one PAdES signature) is
    refused as not a fresh scan, and ingested with rescan: pages, pixel sizes and modes as the
    truth (read by eye) says; the file is only read (R8)."""
    folder = shared_item("real-scans", "r03")
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))["files"][0]
    path = folder / truth["name"]
    assert truth["pdf_signatures"]
    with pytest.raises(PdfNotAScanError, match="signature"):
        ingest_dossier(path)
    dossier = ingest_dossier(path, IngestSettings(pdf_with_text="rescan"))
    pages = dossier.components[0].pages
    assert len(pages) == truth["pages"] == 3
    for page, expected in zip(pages, truth["page_images"], strict=True):
        assert [page.width_px, page.height_px] == expected["px"]
        assert page.qa.colour_mode == ColourMode.BILEVEL
    assert sha256_file(path) == truth["sha256"]


def test_fallback_and_skip_without_shared(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:  # fmt: skip
    """No ../shared: the vendored subset is used, a test needing the complete set or an item
    not vendored is skipped with a reason, and under DIGITIZE_REQUIRE_SHARED=1 (CI) it fails."""
    monkeypatch.setenv("DIGITIZE_SHARED", str(tmp_path / "nowhere"))
    monkeypatch.delenv("DIGITIZE_REQUIRE_SHARED", raising=False)
    assert shared_dir("corpus") == VENDORED / "corpus"
    assert shared_item("real-scans", "r05").is_dir()
    with pytest.raises(pytest.skip.Exception, match="complete shared corpus"):
        shared_dir("corpus", complete=True)
    with pytest.raises(pytest.skip.Exception, match="r01"):
        shared_item("real-scans", "r01")
    monkeypatch.setenv("DIGITIZE_REQUIRE_SHARED", "1")
    with pytest.raises(pytest.fail.Exception, match="DIGITIZE_REQUIRE_SHARED"):
        shared_item("real-scans", "r01")
