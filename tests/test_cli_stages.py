"""Single-stage commands (ingest, deskew, ocr, package, sign) on a real sample page."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pytest
from click.testing import CliRunner
from PIL import Image

from digitize.cli.main import main, run_main  # noqa: F401
from digitize.errors import ExitCode
from tests.conftest import SAMPLE_DOSSIER_2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    from digitize.cli import commands_pipeline, commands_stages  # noqa: F401

    return CliRunner()


@pytest.fixture
def one_page(tmp_path: Path) -> Path:
    """A dossier with one component: the sample's skewed decision page (a copy)."""
    dossier = tmp_path / "hs"
    (dossier / "c1").mkdir(parents=True)
    shutil.copy(SAMPLE_DOSSIER_2 / "2-quyet-dinh" / "p1.jpg", dossier / "c1" / "p1.jpg")
    return dossier


def test_ingest_json_and_refusal(runner: CliRunner, one_page: Path, tmp_path: Path) -> None:
    done = runner.invoke(main, ["ingest", str(one_page), "--json"])
    assert done.exit_code == 0, done.output
    model = json.loads(done.output)
    assert model["components"][0]["pages"][0]["qa"]["dpi_x"] == pytest.approx(200, abs=1)
    low = tmp_path / "low"
    (low / "c1").mkdir(parents=True)
    Image.new("RGB", (827, 1169), "white").save(low / "c1" / "p1.jpg", dpi=(100, 100))
    refused = runner.invoke(main, ["ingest", str(low)])
    assert refused.exit_code == int(ExitCode.LOW_RESOLUTION)
    assert "100 dpi" in refused.output


def test_deskew_writes_level_pages(runner: CliRunner, one_page: Path, tmp_path: Path) -> None:
    done = runner.invoke(main, ["deskew", str(one_page), str(tmp_path / "clean")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "clean" / "c01-p001.png").is_file()
    assert "+1.4" in done.output or "-1.4" in done.output  # the sample page is skewed 1.4°


def test_ocr_sidecar_hocr_json(runner: CliRunner, one_page: Path, tmp_path: Path) -> None:
    done = runner.invoke(main, ["ocr", str(one_page), "--sidecar", str(tmp_path / "t.txt"),
                                "--hocr", str(tmp_path / "hocr"), "--json",
                                str(tmp_path / "o.json")])
    assert done.exit_code == 0, done.output
    text = (tmp_path / "t.txt").read_text(encoding="utf-8")
    assert "QUYẾT ĐỊNH" in text and "Tam Dương" in text  # printed on the page
    assert (tmp_path / "hocr" / "c01-p001.hocr").read_text(encoding="utf-8").count("ocrx_word")
    fields = {f["name"]: f["value"] for f in json.loads((tmp_path / "o.json").read_text())[0]
              ["fields"]}
    assert fields.get("code_number") == "215" and fields.get("issued_date") == "2025-10-14"


def test_package_then_sign(runner: CliRunner, one_page: Path, tmp_path: Path) -> None:
    done = runner.invoke(main, ["package", str(one_page), "--out", str(tmp_path / "pdf")])
    assert done.exit_code == 0, done.output
    unsigned = tmp_path / "pdf" / "hs.001.pdf"
    with pikepdf.open(unsigned) as pdf:
        assert len(pdf.pages) == 1
        assert "/AcroForm" not in pdf.Root
    signed = tmp_path / "signed.pdf"
    done = runner.invoke(main, ["sign", str(unsigned), str(signed), "--scan-time",
                                "2026-11-25T08:30:00+0700"])
    assert done.exit_code == 0, done.output
    assert "DEMO" in done.output
    verified = runner.invoke(main, ["verify", str(signed), "--lang", "en", "--allow-demo"])
    # demo signature, B-B, no revocation data: valid, revocation not checked (66)
    assert verified.exit_code == int(ExitCode.VERIFY_REVOCATION_UNKNOWN), verified.output
    text = subprocess.run(["pdftotext", str(signed), "-"], capture_output=True, text=True).stdout
    assert "08:30 ngày 25/11/2026" in text  # the scan time shown in the note (R19, Vietnam time)
