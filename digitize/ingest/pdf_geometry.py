"""Where a PDF page's scan image lies: its size in the image's own axes and the turn that shows
it as displayed (see ``frames_pdf`` for why dpi is measured this way)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pikepdf

from digitize.ingest.frame import DisplayTransform, Rotation
from digitize.ingest.pdf_checks import inherited
from digitize.ingest.pdf_content import Matrix

if TYPE_CHECKING:
    from digitize.ingest.frames_pdf import PdfPageImage


def media_box_pt(page: pikepdf.Page) -> tuple[float, float, float]:
    """(width, height, UserUnit) of the unrotated MediaBox, in points."""
    box = inherited(page, "/MediaBox")
    unit = float(page.obj.get("/UserUnit", 1))
    if not isinstance(box, pikepdf.Array) or len(box) != 4:
        return 0.0, 0.0, unit
    x0, y0, x1, y1 = (float(v) for v in box)
    return abs(x1 - x0), abs(y1 - y0), unit


def rotate_of(page: pikepdf.Page) -> Rotation:
    try:
        value = int(inherited(page, "/Rotate") or 0)
    except (TypeError, ValueError):
        value = 0
    return (value // 90 % 4 * 90)  # type: ignore[return-value]


def display_transform(matrix: Matrix, rotate: Rotation) -> tuple[DisplayTransform, float]:
    """The mirror/turn that shows stored pixels as displayed, and how far (degrees) the image's
    columns lie off the nearest axis (left to deskew)."""
    a, b, c, d = matrix[:4]
    col = (a, -b)  # screen coordinates (y down) of the image's column and row directions
    row = (-c, d)
    for _ in range(rotate // 90):  # /Rotate turns the page clockwise for display
        col, row = (-col[1], col[0]), (-row[1], row[0])

    def snap(v: tuple[float, float]) -> tuple[int, int]:
        if abs(v[0]) >= abs(v[1]):
            return (1 if v[0] > 0 else -1, 0) if v[0] else (0, 0)
        return (0, 1 if v[1] > 0 else -1)

    col_axis, row_axis = snap(col), snap(row)
    # angle between the image's columns and the axis they are snapped to, 0…45°
    cross = col[0] * col_axis[1] - col[1] * col_axis[0]
    dot = col[0] * col_axis[0] + col[1] * col_axis[1]
    off_axis = abs(math.degrees(math.atan2(cross, dot)))
    for mirrored in (False, True):
        c0, r0 = ((-1, 0) if mirrored else (1, 0)), (0, 1)
        for quarter in range(4):
            if (c0, r0) == (col_axis, row_axis):
                return DisplayTransform(quarter * 90, mirrored), off_axis  # type: ignore[arg-type]
            c0, r0 = (-c0[1], c0[0]), (-r0[1], r0[0])
    return DisplayTransform(rotate), 0.0  # degenerate matrix: trust /Rotate alone


def page_geometry(
    page: pikepdf.Page, image: PdfPageImage, matrix: Matrix | None
) -> tuple[DisplayTransform, tuple[float, float] | None, float]:
    """Display transform, displayed (dpi_x, dpi_y), degrees off-axis."""
    rotate = rotate_of(page)
    width_pt, height_pt, unit = media_box_pt(page)
    if matrix is None:
        # The image is not drawn by the page content we can read: assume it fills the
        # MediaBox the way its shape fits best.
        if width_pt <= 0 or height_pt <= 0:
            return DisplayTransform(rotate), None, 0.0
        upright = abs(image.width / width_pt - image.height / height_pt)
        across = abs(image.width / height_pt - image.height / width_pt)
        if across < upright:
            width_pt, height_pt = height_pt, width_pt
        matrix = (width_pt, 0.0, 0.0, height_pt, 0.0, 0.0)
    transform, off_axis = display_transform(matrix, rotate)
    along_cols = math.hypot(matrix[0], matrix[1]) * unit / 72.0  # inches
    along_rows = math.hypot(matrix[2], matrix[3]) * unit / 72.0
    if along_cols <= 0 or along_rows <= 0:
        return transform, None, off_axis
    dpi = (image.width / along_cols, image.height / along_rows)
    if transform.swaps_axes:
        dpi = (dpi[1], dpi[0])
    return transform, dpi, off_axis
