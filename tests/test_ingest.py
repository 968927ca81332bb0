"""Ingest and page QA (issue 3; requirements R3–R12).

Covers: every input format written by Pillow/OpenCV/pikepdf (JPEG, PNG, BMP, TIFF G4/LZW/
deflate/packbits/none single and multi-page, scanner-style image-only PDFs with DCT, CCITT,
Flate and JBIG2 images); byte-exact pass-through (``read_page_encoded``) proven against an
independent TIFF reader, the JPEG file bytes, the PDF stream bytes and a poppler rendering;
dossier structure (natural sort, ignored files, dossier.yaml, note slips, declared counts);
dpi from file and inferred from paper size; colour mode; blank, border and duplicate pages;
hostile input (each error class, exit code, one line naming the file, nothing modified); the
synthetic corpus against its ground truth; real scans r01, r04, r11.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitize.errors import (
    ConfigError,
    CorruptFileError,
    DigitizeError,
    EmptyDossierError,
    EmptyFileError,
    EncryptedPdfError,
    ExitCode,
    LowResolutionError,
    PageCountMismatchError,
    PdfNotAScanError,
    TooLargeError,
    TruncatedFileError,
    UnsafePathError,
    UnsupportedFormatError,
)
from digitize.ingest import (
    IngestSettings,
    fit_paper,
    ingest_dossier,
    load_page_pixels,
    natural_key,
    read_page_encoded,
)
from digitize.models import ColourMode, PageVariant, SourceEncoding
from tests.conftest import shared_dir, shared_item
from tests.helpers_images import (
    PdfImage,
    a4_px,
    bilevel,
    blank_page,
    g4_bytes,
    jbig2_mmr,
    jpeg_bytes,
    save_bmp,
    save_jpeg,
    save_png,
    save_tiff,
    sha256_file,
    text_page,
    tiff_strips,
    tree_hashes,
    write_scan_pdf,
)

REPO = Path(__file__).resolve().parents[1]
W200, H200 = a4_px(200)
W300, H300 = a4_px(300)


def _corpus_root() -> Path:
    return shared_dir("corpus", complete=True)


def flag_codes(page) -> set[str]:
    return {f.code for f in page.flags}


@pytest.fixture(scope="module")
def pages200() -> list[np.ndarray]:
    return [text_page(W200, H200, seed=i) for i in range(4)]


@pytest.fixture(scope="module")
def colour200() -> np.ndarray:
    return text_page(W200, H200, seed=11, colour=True, seal=True)


# --- formats ---------------------------------------------------------------------------------
def _without_exif(data: bytes) -> bytes:
    """The JPEG minus its one APP1 (EXIF) segment, located by hand: what pass-through keeps."""
    start = data.index(b"\xff\xe1")
    length = int.from_bytes(data[start + 2 : start + 4], "big")
    return data[:start] + data[start + 2 + length :]


def test_jpeg_colour_dpi_exif_and_passthrough(tmp_path: Path, colour200: np.ndarray) -> None:
    """R10/R11/R21: JFIF dpi, colour, EXIF capture time; the JPEG data passes through, its EXIF
    block (capture metadata) is not carried into the PDF."""
    path = save_jpeg(tmp_path / "scan.jpg", colour200, dpi=200, exif_datetime="2025:03:19 09:15:02")
    dossier = ingest_dossier(path)
    (component,) = dossier.components
    (page,) = component.pages
    assert component.name == "scan" and dossier.code == "scan"
    assert page.encoding == SourceEncoding.JPEG
    assert page.qa.dpi_x == pytest.approx(200) and page.qa.dpi_source == "file"
    assert page.qa.colour_mode == ColourMode.RGB
    assert "grayscale_capture" not in flag_codes(page)
    assert page.captured_at is not None and page.captured_at_source == "exif"
    assert page.captured_at.isoformat() == "2025-03-19T09:15:02+07:00"
    assert component.sources[0].sha256 == sha256_file(path)
    encoded = read_page_encoded(page)
    assert encoded is not None and encoded.filter == "DCTDecode"
    assert encoded.data == _without_exif(path.read_bytes()) and encoded.passthrough
    assert (encoded.width, encoded.height, encoded.colour_mode) == (W200, H200, ColourMode.RGB)
    pixels = load_page_pixels(page)
    assert pixels.shape == (H200, W200, 3) and pixels.dtype == np.uint8
    assert np.array_equal(pixels, np.asarray(Image.open(path).convert("RGB")))


def test_png_gray_and_bmp(tmp_path: Path, pages200: list[np.ndarray]) -> None:
    """PNG pHYs and BMP resolution; lossless pixels come back unchanged; no pass-through."""
    folder = tmp_path / "HS-01"
    (folder / "c1").mkdir(parents=True)
    save_png(folder / "c1" / "p1.png", pages200[0], dpi=200)
    save_bmp(folder / "c1" / "p2.bmp", pages200[1], dpi=200)
    dossier = ingest_dossier(folder)
    pages = dossier.components[0].pages
    assert [p.encoding for p in pages] == [SourceEncoding.PNG, SourceEncoding.BMP]
    for page, original in zip(pages, pages200[:2], strict=True):
        assert page.qa.dpi == pytest.approx(200, abs=0.5)
        assert page.qa.colour_mode == ColourMode.GRAY
        assert "grayscale_capture" in flag_codes(page)  # R11 warning
        assert read_page_encoded(page) is None
        assert np.array_equal(load_page_pixels(page), original)


def test_g4_tiff_three_frames_byte_identical(tmp_path: Path, pages200: list[np.ndarray]) -> None:
    """3-frame CCITT G4 TIFF: three bilevel pages, strip bytes passed through unchanged."""
    frames = [text_page(W300, H300, seed=20 + i) for i in range(3)]
    path = save_tiff(tmp_path / "scan.tif", frames, dpi=300, compression="group4")
    dossier = ingest_dossier(path)
    pages = dossier.components[0].pages
    assert [p.frame for p in pages] == [0, 1, 2]
    assert [p.index for p in pages] == [1, 2, 3]
    independent = tiff_strips(path)
    for page, original, (tags, strips) in zip(pages, frames, independent, strict=True):
        assert page.encoding == SourceEncoding.CCITT_G4
        assert page.qa.dpi == pytest.approx(300) and page.qa.colour_mode == ColourMode.BILEVEL
        encoded = read_page_encoded(page)
        assert encoded is not None and encoded.filter == "CCITTFaxDecode"
        assert encoded.data == strips[0]
        assert encoded.decode_parms["K"] == -1
        assert (encoded.decode_parms["Columns"], encoded.decode_parms["Rows"]) == (W300, H300)
        assert encoded.decode_parms["BlackIs1"] is (tags[262][0] == 1)
        pixels = load_page_pixels(page)
        assert pixels.shape == (H300, W300) and set(np.unique(pixels)) <= {0, 255}
        assert np.array_equal(pixels, bilevel(original))


def test_g4_passthrough_decodes_like_the_scan(tmp_path: Path) -> None:
    """The CCITT parameters are right: poppler's own CCITT decoder (pdfimages) gives back the
    scan's pixels from the passed-through strip, with the right polarity (BlackIs1)."""
    if shutil.which("pdfimages") is None:
        pytest.fail("pdfimages (poppler-utils) is needed for this test")
    w, h = 800, 1000
    original = bilevel(text_page(w, h, seed=5))
    path = save_tiff(tmp_path / "one.tif", [original], dpi=100, compression="group4")
    page = ingest_dossier(path, IngestSettings(min_dpi=50)).components[0].pages[0]
    encoded = read_page_encoded(page)
    assert encoded is not None
    spec = PdfImage(
        encoded.data, "/CCITTFaxDecode", w, h, 100, "/DeviceGray", 1, dict(encoded.decode_parms)
    )
    pdf_path = write_scan_pdf(tmp_path / "out.pdf", [spec])
    subprocess.run(["pdfimages", "-png", str(pdf_path), str(tmp_path / "x")], check=True)
    decoded = np.asarray(Image.open(tmp_path / "x-000.png").convert("L"))
    assert np.array_equal(decoded, original)


@pytest.mark.parametrize("compression", ["tiff_lzw", "tiff_adobe_deflate", "packbits", "raw"])
def test_tiff_other_compressions(tmp_path: Path, compression: str, colour200) -> None:
    """LZW/deflate/packbits/none, gray and RGB frames in one file; pixels exact; no pass-through."""
    small_gray = text_page(W200, H200, seed=3)
    path = save_tiff(tmp_path / "s.tiff", [small_gray, colour200], dpi=200, compression=compression)
    pages = ingest_dossier(path).components[0].pages
    assert [p.qa.colour_mode for p in pages] == [ColourMode.GRAY, ColourMode.RGB]
    assert all(p.encoding == SourceEncoding.TIFF for p in pages)
    assert all(read_page_encoded(p) is None for p in pages)
    assert np.array_equal(load_page_pixels(pages[0]), small_gray)
    assert np.array_equal(load_page_pixels(pages[1]), colour200)


def test_tiff_resolution_in_centimetres(tmp_path: Path, pages200) -> None:
    path = save_tiff(
        tmp_path / "cm.tif", [pages200[0]], dpi=300, compression="group4", unit_cm=True
    )
    page = ingest_dossier(path).components[0].pages[0]
    assert page.qa.dpi == pytest.approx(300, abs=0.1)


def test_scanner_pdf_two_pages_byte_identical(tmp_path: Path, colour200) -> None:
    """Image-only PDF (DCT page + CCITT page): dpi = pixels / page size; raw streams kept."""
    jpeg = jpeg_bytes(colour200)
    g4, photometric = g4_bytes(text_page(W300, H300, seed=8), tmp_path)
    pdf_path = write_scan_pdf(
        tmp_path / "scan.pdf",
        [
            PdfImage(jpeg, "/DCTDecode", W200, H200, 200),
            PdfImage(
                g4,
                "/CCITTFaxDecode",
                W300,
                H300,
                300,
                "/DeviceGray",
                1,
                {"K": -1, "Columns": W300, "Rows": H300, "BlackIs1": photometric == 1},
            ),
        ],
    )
    pages = ingest_dossier(pdf_path).components[0].pages
    assert [p.encoding for p in pages] == [SourceEncoding.JPEG, SourceEncoding.CCITT_G4]
    assert pages[0].qa.dpi == pytest.approx(200, abs=0.1)
    assert pages[1].qa.dpi == pytest.approx(300, abs=0.1)
    assert [p.qa.colour_mode for p in pages] == [ColourMode.RGB, ColourMode.BILEVEL]
    first, second = (read_page_encoded(p) for p in pages)
    assert first is not None and first.filter == "DCTDecode" and first.data == jpeg
    assert second is not None and second.filter == "CCITTFaxDecode" and second.data == g4
    assert second.decode_parms["K"] == -1 and second.decode_parms["BlackIs1"] is (photometric == 1)
    # the raw stream bytes as pikepdf reads them from the file (independent check)
    import pikepdf

    with pikepdf.open(pdf_path) as pdf:
        raws = [
            bytes(next(iter(pg.Resources.XObject.values())).read_raw_bytes()) for pg in pdf.pages
        ]
    assert [first.data, second.data] == raws
    assert load_page_pixels(pages[1]).shape == (H300, W300)


def test_pdf_flate_gray_page(tmp_path: Path, pages200) -> None:
    import zlib

    data = zlib.compress(pages200[0].tobytes())
    pdf_path = write_scan_pdf(
        tmp_path / "flate.pdf", [PdfImage(data, "/FlateDecode", W200, H200, 200, "/DeviceGray")]
    )
    page = ingest_dossier(pdf_path).components[0].pages[0]
    assert page.encoding == SourceEncoding.FLATE and page.qa.colour_mode == ColourMode.GRAY
    encoded = read_page_encoded(page)
    assert encoded is not None and encoded.filter == "FlateDecode" and encoded.data == data
    assert np.array_equal(load_page_pixels(page), pages200[0])


def test_pdf_jbig2_with_globals_is_reencoded(tmp_path: Path) -> None:
    """JBIG2 page image with JBIG2Globals: decoded exactly, but never copied raw into the
    signed PDF (a JBIG2 payload aimed at viewers' decoders would be laundered): read_page_encoded
    gives None and the page is re-encoded losslessly as G4 from the decoded pixels."""
    if shutil.which("jbig2dec") is None:
        pytest.fail("jbig2dec (Debian package jbig2dec) is needed to decode JBIG2 scans")
    original = bilevel(text_page(W200, H200, seed=9))
    stream, globals_ = jbig2_mmr(original, tmp_path)
    spec = PdfImage(stream, "/JBIG2Decode", W200, H200, 200, "/DeviceGray", 1, {}, globals_)
    page = ingest_dossier(write_scan_pdf(tmp_path / "jb.pdf", [spec])).components[0].pages[0]
    assert page.encoding == SourceEncoding.JBIG2 and page.qa.colour_mode == ColourMode.BILEVEL
    assert np.array_equal(load_page_pixels(page), original)
    assert read_page_encoded(page) is None
    from digitize.pdfa import encode_pixels
    from digitize.settings import PdfaSettings

    again = encode_pixels(load_page_pixels(page), page.qa.colour_mode, PdfaSettings())
    assert again.filter == "CCITTFaxDecode" and not again.passthrough
    assert stream not in again.data


def test_pdf_jbig2_from_real_scan() -> None:
    """JBIG2 page images (r13, bilevel 200 ppi) decode; it is a signed PDF, so rescan mode."""
    if shutil.which("jbig2dec") is None:
        pytest.fail("jbig2dec (Debian package jbig2dec) is needed to decode JBIG2 scans")
    path = next(shared_item("real-scans", "r13").glob("*.pdf"))
    dossier = ingest_dossier(path, IngestSettings(pdf_with_text="rescan"))
    pages = dossier.components[0].pages
    assert len(pages) == 4
    assert all(p.encoding == SourceEncoding.JBIG2 for p in pages)
    assert all(p.qa.dpi == pytest.approx(200, abs=1) for p in pages)
    pixels = load_page_pixels(pages[0])
    assert pixels.shape == (2338, 1664)
    assert 0.01 < float(np.mean(pixels == 0)) < 0.3  # black text on white, not inverted


# --- dossier structure -----------------------------------------------------------------------
def test_natural_sort_ignored_files_and_components(tmp_path: Path, pages200) -> None:
    """R3/R5: one component per sub-folder or file, natural order; non-scans listed, not fatal."""
    folder = tmp_path / "HS-2025-7"
    for name in ("c10", "c2"):
        (folder / name).mkdir(parents=True)
    small = [p[::4, ::4] for p in pages200]
    for i, name in enumerate(("p10.png", "p2.png", "p1.png")):
        save_png(folder / "c2" / name, small[i], dpi=50)
    save_png(folder / "c10" / "p1.png", small[3], dpi=50)
    save_png(folder / "c1.png", small[0][::-1].copy(), dpi=50)
    (folder / "notes.txt").write_text("ghi chú")
    (folder / "c2" / "Thumbs.db").write_bytes(b"\x00" * 10)
    (folder / "c2" / ".DS_Store").write_bytes(b"\x00" * 10)
    (folder / "c2" / "p1.json").write_text("{}")
    (folder / "empty").mkdir()
    dossier = ingest_dossier(folder, IngestSettings(min_dpi=40))
    assert dossier.code == "HS-2025-7" and dossier.code_format == "folder_name"
    assert [c.name for c in dossier.components] == ["c1", "c2", "c10"]
    assert [c.ordinal for c in dossier.components] == [1, 2, 3]
    assert [Path(p.source).name for p in dossier.components[1].pages] == [
        "p1.png",
        "p2.png",
        "p10.png",
    ]
    ignored = {p.name for p in dossier.ignored_files}
    assert {"notes.txt", "Thumbs.db", ".DS_Store", "p1.json"} <= ignored
    assert any(f.code == "empty_folder_ignored" for f in dossier.flags)
    assert natural_key("p2") < natural_key("p10") < natural_key("P11")


def _yaml_dossier(tmp_path: Path, pages: list[np.ndarray], yaml_text: str) -> Path:
    folder = tmp_path / "dossier"
    (folder / "don").mkdir(parents=True)
    (folder / "giay-to").mkdir()
    for i, arr in enumerate(pages[:3], start=1):
        save_png(folder / "don" / f"p{i}.png", arr[::4, ::4], dpi=50)
    save_png(folder / "giay-to" / "p1.png", pages[3][::4, ::4], dpi=50)
    (folder / "dossier.yaml").write_text(yaml_text, encoding="utf-8")
    return folder


def test_dossier_yaml_codes_note_slips_and_reasons(tmp_path: Path, pages200) -> None:
    """R5/R6/R9/R28/R29: codes validated, note-slip variants, not-digitised component."""
    folder = _yaml_dossier(
        tmp_path,
        pages200,
        """
dossier_code: 000.00.12.H62-201105-0004
procedure_code: 1.001612.000.00.00.H48
receiving_organ_id: 000.00.12.H62
received_at: 2025-03-19T08:00:00
components:
  - path: don
    name: Đơn đề nghị
    declared_pages: 2
    note_slip_pages: [1]
  - path: giay-to
    name: Giấy tờ kèm theo
    declared_pages: 1
  - name: Bản khai trực tuyến
    not_digitised_reason: filed_online
""",
    )
    dossier = ingest_dossier(folder, IngestSettings(min_dpi=40))
    assert dossier.code == "000.00.12.H62-201105-0004" and dossier.code_format == "legacy"
    assert dossier.procedure_code == "1.001612.000.00.00.H48"
    assert (
        dossier.received_at is not None
        and dossier.received_at.utcoffset().total_seconds() == 7 * 3600
    )
    first, second, third = dossier.components
    assert first.name == "Đơn đề nghị" and first.declared_pages == 2
    assert [(p.physical_page, p.variant) for p in first.pages] == [
        (1, PageVariant.WITH_NOTE),
        (1, PageVariant.NOTE_REMOVED),
        (2, PageVariant.SINGLE),
    ]
    assert len(second.pages) == 1
    assert third.not_digitised_reason is not None and third.pages == ()
    assert not [f for f in dossier.flags if f.code.endswith("format_unknown")]


def test_dossier_yaml_unknown_code_shape_is_a_warning(tmp_path: Path, pages200) -> None:
    folder = _yaml_dossier(
        tmp_path,
        pages200,
        "dossier_code: HS-ABC\nprocedure_code: 1.23\ncomponents:\n  - path: don\n  - path: giay-to\n",
    )
    dossier = ingest_dossier(folder, IngestSettings(min_dpi=40))
    assert dossier.code == "HS-ABC" and dossier.code_format == "unknown"
    codes = {f.code for f in dossier.flags}
    assert {"dossier_code_format_unknown", "procedure_code_format_unknown"} <= codes


def test_declared_page_count_mismatch(tmp_path: Path, pages200) -> None:
    """R4/R5: 3 images for 1 declared page + 1 note slip → blocked, says which and how much."""
    folder = _yaml_dossier(
        tmp_path,
        pages200,
        "components:\n  - path: don\n    name: Đơn\n    declared_pages: 1\n"
        "    note_slip_pages: [1]\n  - path: giay-to\n    declared_pages: 1\n",
    )
    with pytest.raises(PageCountMismatchError) as info:
        ingest_dossier(folder, IngestSettings(min_dpi=40))
    message = str(info.value)
    assert "component 1 'Đơn'" in message and "3 images, expected 2" in message
    assert "1 more" in message and info.value.exit_code == ExitCode.PAGE_COUNT_MISMATCH


def test_dossier_yaml_unknown_key(tmp_path: Path, pages200) -> None:
    folder = _yaml_dossier(
        tmp_path, pages200, "dossier_code: X\ncomponents:\n  - path: don\n    pages: 3\n"
    )
    with pytest.raises(ConfigError) as info:
        ingest_dossier(folder)
    assert "unknown key 'pages'" in str(info.value) and "dossier.yaml" in str(info.value)


def test_dossier_yaml_must_list_every_scan(tmp_path: Path, pages200) -> None:
    folder = _yaml_dossier(tmp_path, pages200, "components:\n  - path: don\n")
    with pytest.raises(ConfigError, match="giay-to"):
        ingest_dossier(folder, IngestSettings(min_dpi=40))


def test_nfd_vietnamese_names(tmp_path: Path, pages200) -> None:
    """Names written in NFD (macOS) display in NFC; the real on-disk name is kept."""
    nfd_dir = unicodedata.normalize("NFD", "Hồ sơ Đăng ký")
    nfd_file = unicodedata.normalize("NFD", "Giấy khai sinh.png")
    folder = tmp_path / nfd_dir
    (folder / unicodedata.normalize("NFD", "Thành phần 1")).mkdir(parents=True)
    path = save_png(
        folder / unicodedata.normalize("NFD", "Thành phần 1") / nfd_file, pages200[0], dpi=200
    )
    dossier = ingest_dossier(folder, IngestSettings(allow_grayscale=True))
    assert dossier.code == "Hồ sơ Đăng ký"
    component = dossier.components[0]
    assert component.name == "Thành phần 1"
    assert component.sources[0].display_name == "Giấy khai sinh.png"
    assert component.sources[0].path.name == nfd_file  # real bytes, not normalised
    assert component.pages[0].source == path and path.exists()


# --- dpi, colour, blank, border, duplicates --------------------------------------------------
def test_paper_fit() -> None:
    fit = fit_paper(*a4_px(300))
    assert fit is not None and (fit.paper, fit.dpi) == ("A4", 300)
    fit = fit_paper(576, 960)  # r11: a Legal-shaped re-post
    assert fit is not None and fit.paper == "Legal" and 65 < fit.dpi < 72
    assert fit_paper(1000, 1000) is None


def test_dpi_inferred_when_missing_or_screen_default(tmp_path: Path, colour200) -> None:
    """R10: no dpi / 72-dpi default / absurd dpi → inferred from A4 and flagged, never silent."""
    folder = tmp_path / "d"
    folder.mkdir()
    save_jpeg(folder / "a.jpg", colour200, dpi=None)
    save_jpeg(folder / "b.jpg", colour200, dpi=72)
    save_png(folder / "c.png", colour200, dpi=5000)
    dossier = ingest_dossier(folder)
    for component in dossier.components:
        page = component.pages[0]
        assert page.qa.dpi_source == "inferred", component.name
        assert page.qa.inferred_paper == "A4" and page.qa.dpi == 200
        assert "dpi_inferred" in flag_codes(page)


def test_dpi_unknown_without_paper_fit_is_refused(tmp_path: Path) -> None:
    path = save_jpeg(tmp_path / "square.jpg", text_page(1500, 1500, colour=True), dpi=None)
    with pytest.raises(LowResolutionError) as info:
        ingest_dossier(path)
    assert "square.jpg (page 1)" in str(info.value)


def test_low_resolution_names_page_and_dpi(tmp_path: Path) -> None:
    """R10: a 150-dpi page inside a TIFF is refused naming file, page and measured dpi."""
    folder = tmp_path / "dossier"
    (folder / "c1").mkdir(parents=True)
    w, h = a4_px(150)
    frames = [text_page(w, h, seed=i) for i in range(2)]
    img = [Image.fromarray(f) for f in frames]
    img[0].save(
        folder / "c1" / "scan.tif",
        save_all=True,
        append_images=img[1:],
        compression="tiff_lzw",
        dpi=(150, 150),
    )
    with pytest.raises(LowResolutionError) as info:
        ingest_dossier(folder)
    message = str(info.value)
    assert message.startswith("dossier/c1/scan.tif (page 1): 150 dpi")
    assert "below the 200 dpi floor" in message and "\n" not in message
    assert info.value.exit_code == ExitCode.LOW_RESOLUTION


def test_rgb_with_equal_channels_counts_as_gray(tmp_path: Path, pages200) -> None:
    """R11: an RGB file whose channels are equal is a gray capture (warned unless allowed)."""
    rgb = np.dstack([pages200[0]] * 3)
    path = save_png(tmp_path / "gray-in-rgb.png", rgb, dpi=200)
    page = ingest_dossier(path).components[0].pages[0]
    assert page.qa.colour_mode == ColourMode.GRAY and "grayscale_capture" in flag_codes(page)
    assert load_page_pixels(page).shape == (H200, W200)
    allowed = ingest_dossier(path, IngestSettings(allow_grayscale=True)).components[0].pages[0]
    assert "grayscale_capture" not in flag_codes(allowed)


def test_blank_pages_flagged_kept_or_dropped(tmp_path: Path, pages200) -> None:
    """Duplex backs (specks + seal bleed-through) are blank; drop keeps a dossier-level note."""
    folder = tmp_path / "duplex"
    (folder / "c1").mkdir(parents=True)
    save_png(folder / "c1" / "p1.png", pages200[0], dpi=200)
    save_png(folder / "c1" / "p2.png", blank_page(W200, H200), dpi=200)
    save_png(folder / "c1" / "p3.png", pages200[1], dpi=200)
    kept = ingest_dossier(folder, IngestSettings(allow_grayscale=True))
    pages = kept.components[0].pages
    assert [p.qa.is_blank for p in pages] == [False, True, False]
    assert "blank_page" in flag_codes(pages[1]) and "blank_page" not in flag_codes(pages[0])
    dropped = ingest_dossier(folder, IngestSettings(allow_grayscale=True, blank_pages="drop"))
    pages = dropped.components[0].pages
    assert len(pages) == 2 and [Path(p.source).name for p in pages] == ["p1.png", "p3.png"]
    assert [p.index for p in pages] == [1, 2]
    notes = [f for f in dropped.flags if f.code == "blank_page_dropped"]
    assert len(notes) == 1 and "duplex/c1/p2.png page 1" in notes[0].message


def test_content_at_border(tmp_path: Path) -> None:
    """R7: text running off the right edge is flagged; a page with margins is not."""
    inside = text_page(W200, H200, seed=4)
    cut = text_page(W200, H200, seed=4, margin=0.1)
    cut = np.concatenate([cut[:, W200 // 5 :], np.full((H200, W200 // 5), 250, np.uint8)], axis=1)
    cut = np.roll(cut, W200 // 3, axis=1)
    cut[:, : W200 // 3] = 250
    folder = tmp_path / "b"
    folder.mkdir()
    save_png(folder / "a.png", inside, dpi=200)
    save_png(folder / "b.png", cut, dpi=200)
    a, b = (
        c.pages[0] for c in ingest_dossier(folder, IngestSettings(allow_grayscale=True)).components
    )
    assert not a.qa.touches_border and "content_at_border" not in flag_codes(a)
    assert b.qa.touches_border and "content_at_border" in flag_codes(b)


def test_exact_and_near_duplicates(tmp_path: Path, pages200) -> None:
    """Same pixels twice → duplicate_of; the same page re-saved as JPEG → near duplicate."""
    folder = tmp_path / "dup"
    (folder / "c1").mkdir(parents=True)
    save_png(folder / "c1" / "p1.png", pages200[0], dpi=200)
    save_png(folder / "c1" / "p2.png", pages200[1], dpi=200)
    save_bmp(folder / "c1" / "p3.bmp", pages200[0], dpi=200)
    save_jpeg(folder / "c1" / "p4.jpg", pages200[1], dpi=200, quality=80)
    pages = ingest_dossier(folder, IngestSettings(allow_grayscale=True)).components[0].pages
    assert pages[0].qa.duplicate_of is None and pages[1].qa.duplicate_of is None
    assert pages[2].qa.duplicate_of == 1 and "duplicate_page" in flag_codes(pages[2])
    assert pages[3].qa.duplicate_of == 2 and "near_duplicate_page" in flag_codes(pages[3])


# --- hostile input ---------------------------------------------------------------------------
def _expect(path: Path, cls: type[DigitizeError], settings: IngestSettings | None = None) -> str:
    before = tree_hashes(path.parent)
    with pytest.raises(cls) as info:
        ingest_dossier(path, settings)
    assert type(info.value) is cls
    message = str(info.value)
    assert "\n" not in message and unicodedata.normalize("NFC", path.name) in message
    assert info.value.exit_code == cls.exit_code
    assert tree_hashes(path.parent) == before  # R8: input untouched
    return message


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("valid")
    arr = text_page(W200, H200, seed=7)
    return {
        "jpg": save_jpeg(d / "a.jpg", arr, dpi=200).read_bytes(),
        "png": save_png(d / "a.png", arr, dpi=200).read_bytes(),
        "tif": save_tiff(d / "a.tif", [arr, arr[::-1].copy()], dpi=200).read_bytes(),
        "pdf": write_scan_pdf(
            d / "a.pdf", [PdfImage(jpeg_bytes(arr), "/DCTDecode", W200, H200, 200, "/DeviceGray")]
        ).read_bytes(),
    }


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    _expect(path, EmptyFileError)


@pytest.mark.parametrize("kind", ["jpg", "png", "tif", "pdf"])
def test_truncated_files(tmp_path: Path, valid_files, kind: str) -> None:
    data = valid_files[kind]
    path = tmp_path / f"half.{kind}"
    path.write_bytes(data[: len(data) * 2 // 3])
    _expect(path, TruncatedFileError)


@pytest.mark.parametrize("kind", ["jpg", "png", "tif"])
def test_corrupt_files(tmp_path: Path, valid_files, kind: str) -> None:
    data = bytearray(valid_files[kind])
    rng = np.random.default_rng(1)
    # JPEG/PNG: scramble the compressed data; TIFF: scramble the first directory
    start = 200 if kind != "tif" else int.from_bytes(data[4:8], "little") + 2
    data[start : start + 3000] = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    path = tmp_path / f"bad.{kind}"
    path.write_bytes(bytes(data))
    with pytest.raises((CorruptFileError, TruncatedFileError)) as info:
        ingest_dossier(path)
    assert path.name in str(info.value) and "\n" not in str(info.value)


def test_wrong_extension(tmp_path: Path, valid_files) -> None:
    """A PNG named .jpg is read as PNG (info flag); text named .jpg is unsupported."""
    png = tmp_path / "really-png.jpg"
    png.write_bytes(valid_files["png"])
    page = ingest_dossier(png, IngestSettings(allow_grayscale=True)).components[0].pages[0]
    assert page.encoding == SourceEncoding.PNG and "extension_mismatch" in flag_codes(page)
    text = tmp_path / "letter.jpg"
    text.write_text("Kính gửi: UBND tỉnh\n")
    message = _expect(text, UnsupportedFormatError)
    assert "text" in message


def _png_claiming(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # 1 MB of zeros compresses to ~1 kB: the classic bomb shape
    idat = zlib.compress(b"\x00" * 1_000_000, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    """A 2 kB PNG claiming 60000×60000 px is refused from its header (TooLargeError)."""
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(60000, 60000))
    message = _expect(path, TooLargeError)
    assert "60000×60000" in message
    # under PIL's own limit but over ours: still refused by our per-page cap
    path.write_bytes(_png_claiming(12000, 12000))
    assert "12000×12000" in _expect(path, TooLargeError, IngestSettings(max_pixels=100_000_000))


def test_absurd_tiff_dimensions(tmp_path: Path, valid_files) -> None:
    data = bytearray(valid_files["tif"])
    tags, _ = tiff_strips_from_bytes(bytes(data), tmp_path)
    path = tmp_path / "huge.tif"
    # patch ImageWidth/ImageLength of the first IFD to 100000
    offset = int.from_bytes(data[4:8], "little")
    count = int.from_bytes(data[offset : offset + 2], "little")
    for i in range(count):
        entry = offset + 2 + 12 * i
        tag = int.from_bytes(data[entry : entry + 2], "little")
        typ = int.from_bytes(data[entry + 2 : entry + 4], "little")
        if tag in (256, 257):
            size = 2 if typ == 3 else 4
            data[entry + 8 : entry + 8 + size] = (60000).to_bytes(size, "little")
    path.write_bytes(bytes(data))
    _expect(path, TooLargeError)


def tiff_strips_from_bytes(data: bytes, tmp: Path):
    p = tmp / "probe.tif"
    p.write_bytes(data)
    return tiff_strips(p)[0]


def test_symlink_outside_dossier(tmp_path: Path, valid_files) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(valid_files["png"])
    folder = tmp_path / "dossier"
    (folder / "c1").mkdir(parents=True)
    (folder / "c1" / "p1.png").symlink_to(outside)
    with pytest.raises(UnsafePathError) as info:
        ingest_dossier(folder)
    assert "dossier/c1/p1.png" in str(info.value)
    # a link inside the tree is fine
    (folder / "c1" / "p1.png").unlink()
    (folder / "c0").mkdir()
    (folder / "c0" / "real.png").write_bytes(valid_files["png"])
    (folder / "c1" / "p1.png").symlink_to(folder / "c0" / "real.png")
    assert ingest_dossier(folder, IngestSettings(allow_grayscale=True)).page_count == 2


def test_encrypted_pdf(tmp_path: Path) -> None:
    arr = text_page(W200, H200, colour=True)
    path = write_scan_pdf(
        tmp_path / "locked.pdf",
        [PdfImage(jpeg_bytes(arr), "/DCTDecode", W200, H200, 200)],
        encrypt=True,
    )
    _expect(path, EncryptedPdfError)


def test_pdf_with_text_or_signature(tmp_path: Path) -> None:
    """A PDF with a text layer or a signature is not a scan; "rescan" takes its images."""
    arr = text_page(W200, H200, colour=True, seal=True)
    image = PdfImage(jpeg_bytes(arr), "/DCTDecode", W200, H200, 200)
    text_pdf = write_scan_pdf(tmp_path / "ocr.pdf", [image], text=True)
    assert "text layer" in _expect(text_pdf, PdfNotAScanError)
    signed = write_scan_pdf(tmp_path / "signed.pdf", [image], signature_field=True)
    assert "signature" in _expect(signed, PdfNotAScanError)
    page = ingest_dossier(signed, IngestSettings(pdf_with_text="rescan")).components[0].pages[0]
    assert "pdf_rescanned" in flag_codes(page)
    assert read_page_encoded(page).data == image.data  # type: ignore[union-attr]


def test_empty_dossier(tmp_path: Path) -> None:
    folder = tmp_path / "nothing"
    folder.mkdir()
    (folder / "readme.txt").write_text("x")
    with pytest.raises(EmptyDossierError):
        ingest_dossier(folder)


# --- corpus and real scans -------------------------------------------------------------------
_MODES = {
    "1": {ColourMode.BILEVEL},
    "L": {ColourMode.GRAY},
    "RGB": {ColourMode.RGB, ColourMode.GRAY},
}


def test_corpus_matches_ground_truth() -> None:
    """Every corpus page: component structure, page count, pixel size, dpi and mode (R3–R11)."""
    root = _corpus_root()
    dossiers = sorted(p for p in root.iterdir() if (p / "dossier.json").is_file())
    assert dossiers, f"no dossiers in {root}"
    pages_seen = 0
    for folder in dossiers:
        truth = json.loads((folder / "dossier.json").read_text())
        dossier = ingest_dossier(folder)
        assert dossier.code == folder.name
        assert [c.name for c in dossier.components] == [c["dir"] for c in truth["components"]]
        for component, ctruth in zip(dossier.components, truth["components"], strict=True):
            cjson = json.loads((folder / ctruth["dir"] / "component.json").read_text())
            assert len(component.pages) == ctruth["pages"] == cjson["pages"]
            for page in component.pages:
                ptruth = json.loads(
                    (folder / ctruth["dir"] / f"p{page.index:02d}.json").read_text()
                )["image"]
                where = f"{folder.name}/{ctruth['dir']} page {page.index}"
                assert Path(page.source).name == ptruth["file"], where
                assert page.frame == ptruth["page_index"], where
                assert (page.width_px, page.height_px) == (ptruth["width_px"], ptruth["height_px"])
                assert page.qa.dpi_source == "file", where
                assert page.qa.dpi_x == pytest.approx(ptruth["dpi"], abs=0.5), where
                assert page.qa.dpi_y == pytest.approx(ptruth["dpi"], abs=0.5), where
                assert page.qa.colour_mode in _MODES[ptruth["mode"]], where
                assert not page.qa.is_blank and page.qa.duplicate_of is None, where
                pages_seen += 1
    assert pages_seen == 30


def _real(name: str) -> Path:
    return next(
        p for p in shared_item("real-scans", name).iterdir() if p.suffix.lower() in (".pdf", ".jpg")
    )


def test_real_scan_r04_is_100_dpi() -> None:
    """r04: a signed 100-ppi PDF; refused as not a scan, and as a rescan refused for R10."""
    path = _real("r04")
    with pytest.raises(PdfNotAScanError):
        ingest_dossier(path)
    with pytest.raises(LowResolutionError) as info:
        ingest_dossier(path, IngestSettings(pdf_with_text="rescan"))
    assert f"{path.name} (page 1): 100 dpi" in str(info.value)


def test_real_scan_r11_without_dpi() -> None:
    """r11: 576×960 JPEG re-post, no dpi: inferred ~68 dpi (Legal) and refused (R10)."""
    path = _real("r11")
    with pytest.raises(LowResolutionError) as info:
        ingest_dossier(path)
    message = str(info.value)
    assert f"{path.name} (page 1): 68 dpi" in message and "inferred" in message


def test_real_scan_r01_signed_pdf() -> None:
    """r01 already carries two signatures: refused by default, ingested with rescan."""
    path = _real("r01")
    truth = json.loads((path.parent / "truth.json").read_text())["files"][0]
    with pytest.raises(PdfNotAScanError, match="signature"):
        ingest_dossier(path)
    dossier = ingest_dossier(path, IngestSettings(pdf_with_text="rescan"))
    pages = dossier.components[0].pages
    assert len(pages) == truth["pages"] == 2
    for page, ptruth in zip(pages, truth["page_images"], strict=True):
        assert [page.width_px, page.height_px] == ptruth["px"]
        assert page.qa.dpi == pytest.approx(ptruth["ppi"][0], abs=1)
        assert page.qa.colour_mode == ColourMode.RGB
    assert any(f.code == "pdf_rescanned" for f in dossier.components[0].flags)
    assert sha256_file(path) == truth["sha256"]  # read-only
