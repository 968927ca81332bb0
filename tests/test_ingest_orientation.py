"""Scanner PDFs whose page image lies sideways (R10, R12): /Rotate and turning image matrices.

Office scanners store landscape pixels on a landscape page and show it portrait with
``/Rotate 90``/``270``, or draw the image with a turning matrix (``cm`` with b, c ≠ 0). Each case
here builds such an image-only PDF with pikepdf from a known *displayed* page, then checks that
ingest measures 200 dpi in the image's own axes (not 133), records the turn it applied, and that
``load_page_pixels`` returns the page as displayed. poppler's ``pdftoppm`` renders every PDF as
the independent oracle that the file really displays that page.
"""

from __future__ import annotations

import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image

from digitize.errors import LowResolutionError
from digitize.ingest import IngestSettings, ingest_dossier, load_page_pixels, read_page_encoded
from tests.helpers_images import jpeg_bytes

DPI = 200
SETTINGS = IngestSettings(allow_grayscale=True)


def displayed_page(width: int, height: int) -> np.ndarray:
    """The page a reader sees: a black block top-left, a gray bar top-right, text-like rows."""
    page = np.full((height, width), 255, np.uint8)
    page[10:90, 10:90] = 0  # top-left marker
    page[12:32, width - 70 : width - 12] = 128  # top-right marker (tells a mirror apart)
    rng = np.random.default_rng(3)
    for row in range(130, height - 40, 24):
        for col in range(30, width - 60, 50):
            if rng.random() < 0.7:
                page[row : row + 10, col : col + 36] = 40
    return page


def write_pdf(path: Path, stored: np.ndarray, user_w: int, user_h: int, matrix_kind: str,
              rotate: int, jpeg: bool = False) -> Path:
    """An image-only PDF: the page's user space is ``user_w``×``user_h`` px at 200 dpi; the stored
    image is drawn into it upright, turned 90° counter-clockwise, or mirrored left-right."""
    sh, sw = stored.shape
    bw, bh = user_w / DPI * 72, user_h / DPI * 72
    matrix = {
        "upright": (bw, 0, 0, bh, 0, 0),
        "turned": (0, bh, -bw, 0, bw, 0),  # columns run up the page, rows run right
        "mirrored": (-bw, 0, 0, bh, bw, 0),
    }[matrix_kind]
    pdf = pikepdf.new()
    image = pikepdf.Stream(pdf, jpeg_bytes(stored) if jpeg else zlib.compress(stored.tobytes()))
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height = sw, sh
    image.ColorSpace, image.BitsPerComponent = pikepdf.Name.DeviceGray, 8
    image.Filter = pikepdf.Name.DCTDecode if jpeg else pikepdf.Name.FlateDecode
    content = "q {} {} {} {} {} {} cm /Im0 Do Q\n".format(*(f"{v:.4f}" for v in matrix))
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page,
        MediaBox=[0, 0, bw, bh],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
        Contents=pikepdf.Stream(pdf, content.encode()),
    )
    if rotate:
        page.Rotate = rotate
    pdf.pages.append(pikepdf.Page(page))
    pdf.save(path)
    return path


def build(tmp_path: Path, displayed: np.ndarray, rotate: int, kind: str, jpeg: bool = False):
    """The stored image and PDF that display ``displayed`` (computed with numpy, not digitize)."""
    user = np.rot90(displayed, rotate // 90)  # /Rotate turns user space clockwise for display
    stored = {
        "upright": user,
        "turned": np.rot90(user, -1),  # drawn turned 90° counter-clockwise
        "mirrored": user[:, ::-1],
    }[kind]
    stored = np.ascontiguousarray(stored)
    path = tmp_path / f"r{rotate}-{kind}.pdf"
    return write_pdf(path, stored, user.shape[1], user.shape[0], kind, rotate, jpeg), stored


def render(pdf: Path, tmp_path: Path) -> np.ndarray:
    if shutil.which("pdftoppm") is None:
        pytest.fail("pdftoppm (poppler-utils) is needed as the rendering oracle")
    out = tmp_path / "render"
    subprocess.run(
        ["pdftoppm", "-r", str(DPI), "-gray", "-png", "-singlefile", str(pdf), str(out)],
        check=True,
    )
    return np.asarray(Image.open(f"{out}.png").convert("L"))


EXPECTED_TURN = {  # what ingest must record: (clockwise turn, mirrored)
    ("upright", 0): (0, False), ("upright", 90): (90, False),
    ("upright", 180): (180, False), ("upright", 270): (270, False),
    ("turned", 0): (270, False), ("turned", 90): (0, False),
    ("turned", 180): (90, False), ("turned", 270): (180, False),
    ("mirrored", 0): (0, True), ("mirrored", 90): (90, True),
    ("mirrored", 180): (180, True), ("mirrored", 270): (270, True),
}


@pytest.mark.parametrize("landscape", [False, True], ids=["portrait", "landscape"])
@pytest.mark.parametrize("kind", ["upright", "turned", "mirrored"])
@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_pdf_page_is_measured_and_loaded_as_displayed(
    tmp_path: Path, rotate: int, kind: str, landscape: bool
) -> None:
    """R10/R12: 200 dpi measured along the image's own axes whatever /Rotate and the matrix say;
    the loaded pixels are the displayed page (pdftoppm agrees), the turn applied is recorded."""
    width, height = (600, 400) if landscape else (400, 600)
    displayed = displayed_page(width, height)
    pdf, stored = build(tmp_path, displayed, rotate, kind)
    oracle = render(pdf, tmp_path)
    assert oracle.shape == displayed.shape  # the file really displays this page
    assert float(np.abs(oracle.astype(int) - displayed).mean()) < 4.0
    assert oracle[20:80, 20:80].mean() < 30  # marker top-left in poppler's rendering too

    page = ingest_dossier(pdf, SETTINGS).components[0].pages[0]
    assert page.qa.dpi_x == pytest.approx(DPI, abs=0.5)
    assert page.qa.dpi_y == pytest.approx(DPI, abs=0.5)
    assert (page.width_px, page.height_px) == (width, height)
    assert (page.pdf_rotation_deg, page.pdf_mirrored) == EXPECTED_TURN[(kind, rotate)]
    codes = {f.code for f in page.flags}
    assert ("pdf_page_rotate" in codes) == bool(rotate)
    assert ("pdf_orientation_applied" in codes) == (EXPECTED_TURN[(kind, rotate)] != (0, False))
    pixels = load_page_pixels(page, SETTINGS)
    assert np.array_equal(pixels, displayed)
    assert pixels[20:80, 20:80].max() == 0  # the marker is top-left of the loaded page
    if EXPECTED_TURN[(kind, rotate)] != (0, False):
        assert read_page_encoded(page) is None  # stored bytes are not the displayed page
    else:
        encoded = read_page_encoded(page)
        assert encoded is not None and encoded.data == zlib.compress(stored.tobytes())


def test_sideways_a4_scan_at_200_dpi_is_accepted(tmp_path: Path) -> None:
    """The office-scanner case of R10: A4 landscape pixels on a landscape page shown portrait by
    /Rotate 90. Measured against the displayed page it would be 141 dpi and refused; measured in
    the image's own axes it is the 200 dpi it was scanned at."""
    displayed = displayed_page(1654, 2339)
    pdf, _stored = build(tmp_path, displayed, 90, "upright", jpeg=True)
    page = ingest_dossier(pdf, SETTINGS).components[0].pages[0]
    assert page.qa.dpi == pytest.approx(200, abs=0.5)
    assert (page.width_px, page.height_px, page.pdf_rotation_deg) == (1654, 2339, 90)
    pixels = load_page_pixels(page, SETTINGS)
    assert pixels.shape == (2339, 1654) and pixels[20:80, 20:80].mean() < 30


def test_sideways_page_below_floor_is_still_refused(tmp_path: Path) -> None:
    """Measuring in the image's axes does not let a 100-dpi page through (R10)."""
    displayed = displayed_page(400, 600)
    pdf, stored = build(tmp_path, displayed, 90, "turned")
    # the same pixels drawn twice as large: 100 dpi along both image axes
    user = np.rot90(displayed, 1)
    write_pdf(pdf, stored, user.shape[1] * 2, user.shape[0] * 2, "turned", 90)
    with pytest.raises(LowResolutionError, match="100 dpi"):
        ingest_dossier(pdf, SETTINGS)
