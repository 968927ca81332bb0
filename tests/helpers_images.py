"""Generators of real scan-like test files (JPEG, PNG, TIFF, BMP, image-only PDF).

Other test modules may reuse these. Everything is written with Pillow/OpenCV/pikepdf, never
with ``digitize`` code, so tests that read the files back check ``digitize`` against an
independent writer. ``tiff_strips`` is a small independent TIFF reader (struct only) used to
prove that pass-through bytes are the bytes in the file.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pikepdf
from PIL import Image

MM_PER_INCH = 25.4
WORDS = (
    "UBND tinh Vinh Phuc ke hoach so hoa ho so thu tuc hanh chinh tiep nhan tra ket qua "
    "cong van chi thi quyet dinh bao cao"
).split()


def a4_px(dpi: float, landscape: bool = False) -> tuple[int, int]:
    """(width, height) in pixels of an A4 page at ``dpi``."""
    w, h = round(210 / MM_PER_INCH * dpi), round(297 / MM_PER_INCH * dpi)
    return (h, w) if landscape else (w, h)


def text_page(
    width: int,
    height: int,
    *,
    seed: int = 0,
    colour: bool = False,
    seal: bool = False,
    margin: float = 0.1,
    lines: int = 30,
    paper: int = 250,
) -> np.ndarray:
    """A page of word-like text inside margins (uint8 gray HxW, or RGB HxWx3)."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width), paper, np.uint8)
    scale = max(0.3, width / 1654 * 1.1)
    thick = max(1, round(width / 1654 * 2))
    x0, x1 = int(width * margin), int(width * (1 - margin))
    y = int(height * margin)
    step = max(8, int((height * (1 - 2 * margin)) / lines))
    for _ in range(lines):
        x = x0
        while True:
            word = str(rng.choice(WORDS))
            (tw, _th), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            if x + tw > x1:
                break
            cv2.putText(page, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 20, thick, cv2.LINE_AA)
            x += tw + int(12 * scale)
        y += step
        if y > height * (1 - margin):
            break
    if not colour:
        return page
    rgb = np.dstack([page, page, np.clip(page.astype(int) - 8, 0, 255).astype(np.uint8)])
    if seal:
        centre = (int(width * 0.65), int(height * 0.8))
        cv2.circle(rgb, centre, int(width * 0.08), (200, 30, 30), max(2, thick * 2))
    return rgb


def blank_page(width: int, height: int, *, seed: int = 0, bleed: bool = True) -> np.ndarray:
    """A duplex back: paper with specks and a faint seal bleed-through (gray HxW)."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width), 246, np.uint8)
    noise = rng.normal(0, 2.0, page.shape)
    page = np.clip(page + noise, 0, 255).astype(np.uint8)
    for _ in range(25):  # dust specks
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        cv2.circle(page, (x, y), 1, 60, -1)
    if bleed:
        cv2.circle(page, (width // 3, int(height * 0.75)), width // 12, 225, max(2, width // 200))
    return page


def bilevel(arr: np.ndarray, threshold: int = 128) -> np.ndarray:
    gray = arr if arr.ndim == 2 else cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    return np.where(gray >= threshold, 255, 0).astype(np.uint8)


def _pil(arr: np.ndarray, mode: str | None = None) -> Image.Image:
    img = Image.fromarray(arr)
    return img.convert(mode) if mode else img


def save_jpeg(
    path: Path,
    arr: np.ndarray,
    *,
    dpi: float | None = 300,
    quality: int = 90,
    exif_datetime: str | None = None,
) -> Path:
    kwargs: dict[str, object] = {"quality": quality}
    if dpi is not None:
        kwargs["dpi"] = (dpi, dpi)
    if exif_datetime is not None:
        exif = Image.Exif()
        exif[306] = exif_datetime
        exif.get_ifd(0x8769)[36867] = exif_datetime
        kwargs["exif"] = exif.tobytes()
    _pil(arr).save(path, "JPEG", **kwargs)
    return path


def save_png(path: Path, arr: np.ndarray, *, dpi: float | None = 300) -> Path:
    kwargs: dict[str, object] = {}
    if dpi is not None:
        kwargs["dpi"] = (dpi, dpi)
    _pil(arr).save(path, "PNG", **kwargs)
    return path


def save_bmp(path: Path, arr: np.ndarray, *, dpi: float = 300) -> Path:
    _pil(arr).save(path, "BMP", dpi=(dpi, dpi))
    return path


def save_tiff(
    path: Path,
    frames: list[np.ndarray],
    *,
    dpi: float = 300,
    compression: str = "group4",
    unit_cm: bool = False,
) -> Path:
    """Multi-page TIFF; ``group4``/``group3`` frames are written 1-bit, one strip each."""
    images = []
    for arr in frames:
        img = _pil(bilevel(arr)).convert("1") if compression.startswith("group") else _pil(arr)
        images.append(img)
    kwargs: dict[str, object] = {"compression": compression}
    if unit_cm:
        kwargs["resolution_unit"] = 3
        kwargs["resolution"] = dpi / 2.54
    else:
        kwargs["dpi"] = (dpi, dpi)
    if compression.startswith("group"):
        kwargs["tiffinfo"] = {278: max(img.height for img in images)}  # one strip per frame
    images[0].save(path, "TIFF", save_all=True, append_images=images[1:], **kwargs)
    return path


def tiff_strips(path: Path) -> list[tuple[dict[int, tuple[int, ...]], list[bytes]]]:
    """Independent little TIFF reader: per IFD its tags (ints) and its strip bytes."""
    data = path.read_bytes()
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    sizes = {1: 1, 3: 2, 4: 4, 5: 8, 16: 8}
    codes = {1: "B", 3: "H", 4: "I", 16: "Q"}
    result = []
    while offset:
        (count,) = struct.unpack(order + "H", data[offset : offset + 2])
        tags: dict[int, tuple[int, ...]] = {}
        for i in range(count):
            entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, typ, n = struct.unpack(order + "HHI", entry[:8])
            if typ not in codes:
                continue
            size = sizes[typ] * n
            raw = entry[8:12] if size <= 4 else data[struct.unpack(order + "I", entry[8:12])[0] :]
            tags[tag] = struct.unpack(order + codes[typ] * n, raw[:size])
        strips = [
            data[o : o + c] for o, c in zip(tags.get(273, ()), tags.get(279, ()), strict=True)
        ]
        result.append((tags, strips))
        (offset,) = struct.unpack(
            order + "I", data[offset + 2 + 12 * count : offset + 6 + 12 * count]
        )
    return result


@dataclass
class PdfImage:
    """One page of a scanner-style PDF: an image XObject filling the page."""

    data: bytes
    filter: str | None  # "/DCTDecode", "/CCITTFaxDecode", "/FlateDecode", "/JBIG2Decode"
    width: int
    height: int
    dpi: float
    colorspace: str = "/DeviceRGB"
    bpc: int = 8
    decode_parms: dict[str, object] = field(default_factory=dict)
    jbig2_globals: bytes | None = None


def write_scan_pdf(
    path: Path,
    pages: list[PdfImage],
    *,
    text: bool = False,
    signature_field: bool = False,
    encrypt: bool = False,
) -> Path:
    """An image-only PDF like a scanner's "scan to PDF" (optionally with text/sig/encryption)."""
    pdf = pikepdf.new()
    for number, spec in enumerate(pages):
        w_pt, h_pt = spec.width / spec.dpi * 72, spec.height / spec.dpi * 72
        image = pikepdf.Stream(pdf, spec.data)
        image.Type = pikepdf.Name.XObject
        image.Subtype = pikepdf.Name.Image
        image.Width, image.Height = spec.width, spec.height
        image.ColorSpace = pikepdf.Name(spec.colorspace)
        image.BitsPerComponent = spec.bpc
        if spec.filter:
            image.Filter = pikepdf.Name(spec.filter)
        parms = {f"/{k}": v for k, v in spec.decode_parms.items()}
        if spec.jbig2_globals is not None:
            parms["/JBIG2Globals"] = pikepdf.Stream(pdf, spec.jbig2_globals)
        if parms:
            image.DecodeParms = pikepdf.Dictionary(parms)
        content = f"q {w_pt:.4f} 0 0 {h_pt:.4f} 0 0 cm /Im{number} Do Q\n"
        resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary({f"/Im{number}": image}))
        if text:
            font = pikepdf.Dictionary(
                Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
            )
            resources.Font = pikepdf.Dictionary(F1=font)
            content += "BT 3 Tr /F1 12 Tf 72 720 Td (OCR text) Tj ET\n"
        page = pikepdf.Dictionary(
            Type=pikepdf.Name.Page,
            MediaBox=[0, 0, w_pt, h_pt],
            Resources=resources,
            Contents=pikepdf.Stream(pdf, content.encode()),
        )
        pdf.pages.append(pikepdf.Page(page))
    if signature_field:
        sig = pikepdf.Dictionary(
            Type=pikepdf.Name.Sig,
            Filter=pikepdf.Name("/Adobe.PPKLite"),
            SubFilter=pikepdf.Name("/ETSI.CAdES.detached"),
            ByteRange=[0, 0, 0, 0],
            Contents=pikepdf.String(b"\x00" * 64),
        )
        widget = pdf.make_indirect(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Annot,
                Subtype=pikepdf.Name.Widget,
                FT=pikepdf.Name.Sig,
                T=pikepdf.String("Signature1"),
                V=pdf.make_indirect(sig),
                Rect=[0, 0, 0, 0],
                F=132,
                P=pdf.pages[0].obj,
            )
        )
        pdf.pages[0].obj.Annots = pikepdf.Array([widget])
        pdf.Root.AcroForm = pikepdf.Dictionary(Fields=[widget], SigFlags=3)
    kwargs: dict[str, object] = {}
    if encrypt:
        kwargs["encryption"] = pikepdf.Encryption(user="", owner="owner-secret", R=6)
    pdf.save(path, **kwargs)
    return path


def jpeg_bytes(arr: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg",
        arr if arr.ndim == 2 else cv2.cvtColor(arr, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, quality],
    )
    assert ok
    return buf.tobytes()


def g4_bytes(arr: np.ndarray, tmp_dir: Path) -> tuple[bytes, int]:
    """CCITT G4 data of a bilevel page (via a one-strip libtiff TIFF) and its Photometric."""
    path = save_tiff(tmp_dir / "g4-source.tif", [arr], compression="group4")
    tags, strips = tiff_strips(path)[0]
    return strips[0], tags[262][0]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every regular file under ``root`` (to prove ingest modified nothing)."""
    return {
        str(p.relative_to(root)): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _jbig2_segment(number: int, kind: int, page: int, data: bytes) -> bytes:
    # T.88 7.2 segment header: number, flags (type), no referred-to segments, page, length
    return struct.pack(">IBBBI", number, kind, 0, page, len(data)) + data


def jbig2_mmr(arr: np.ndarray, tmp_dir: Path) -> tuple[bytes, bytes]:
    """A PDF-embedded JBIG2 stream (page info + immediate lossless generic region coded with
    MMR = G4 from libtiff + end of page) and a JBIG2Globals stream (a comment extension
    segment), for a bilevel page. No JBIG2 encoder is packaged in Debian; MMR needs none."""
    height, width = arr.shape
    # JBIG2 codes 1 = black, while libtiff codes the '1'-image bits as they are: invert first.
    g4, _ = g4_bytes(255 - bilevel(arr), tmp_dir)
    page_info = struct.pack(">IIIIBH", width, height, 0, 0, 0, 0)
    region = struct.pack(">IIIIB", width, height, 0, 0, 0) + bytes([1]) + g4  # MMR flag
    stream = (
        _jbig2_segment(1, 48, 1, page_info)
        + _jbig2_segment(2, 39, 1, region)
        + _jbig2_segment(3, 49, 1, b"")
    )
    comment = struct.pack(">I", 0x20000000) + b"digitize test globals\x00"
    return stream, _jbig2_segment(0, 62, 0, comment)
