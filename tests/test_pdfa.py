"""PDF/A-2 packaging (digitize.pdfa), checked with outside tools only.

Covers: veraPDF PDF/A-2b/2u conformance before and after a pyHanko signature (R13, R16) for a
JPEG colour page, a gray page, a G4 bilevel page and a page without text; the invisible text
layer (pdftotext boxes and NFC text, R15/R16); byte-exact pass-through of JPEG, G4 and PNG Flate
data and 100 % page size (R12, R14); re-encoding rules of ``encode_pixels`` (R14); XMP/Info
metadata with the declared ``hoso`` extension schema; determinism and atomic writing.

Images come from the shared corpus (real scanner-like files) or are drawn here with Pillow and a
Noto font, so the true word boxes are known without running OCR. veraPDF runs once for every
file (one JVM, tests/helpers_verapdf.py); a missing veraPDF, pdftotext or qpdf fails the tests.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pikepdf
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydantic import ValidationError

from digitize.errors import OutputError, PdfError
from digitize.models import ColourMode, EncodedImage, PageOcr, PdfResult, Word
from digitize.pdfa import (
    DOSSIER_NAMESPACE,
    PdfaSettings,
    PdfMetadata,
    PdfPage,
    build_component_pdf,
    encode_pixels,
)
from tests.helpers_verapdf import VeraPdfReport, verapdf_validate_many

RENDER_DPI = 200
TEXT_LINES = (
    "Nguyễn Thị Hoa, Ủy ban nhân dân, ngày 19 tháng 03 năm 2025",
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "Số: 60/KH-UBND về việc tiếp nhận, số hóa hồ sơ thủ tục hành chính",
    "Quyết định này có hiệu lực kể từ ngày ký; ông Đỗ Đức Quý chịu trách nhiệm thi hành.",
)
META = PdfMetadata(
    title="Kế hoạch 60/KH-UBND",
    component_name="Kế hoạch thực hiện cơ chế giao doanh nghiệp bưu chính",
    dossier_code="000.00.10.H62-250319-0001",
    procedure_code="1.001234",
    digitiser="Nguyễn Thị Hoa",
    created_at=datetime(2025, 3, 19, 1, 30, 15, tzinfo=UTC),  # 08:30:15 in Vietnam
)


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"'{tool}' not found on PATH: apt-get install {package}")
    return path


def _noto_serif() -> Path:
    """fonts-noto-core (a declared Debian dependency), found via fontconfig or its Debian path."""
    if shutil.which("fc-match"):
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", "Noto Serif:style=Regular"],
            capture_output=True,
            text=True,
        ).stdout
        if found.endswith("NotoSerif-Regular.ttf") and Path(found).is_file():
            return Path(found)
    path = Path("/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf")
    if not path.is_file():
        pytest.fail("Noto Serif not found: apt-get install fonts-noto-core")
    return path


# --- inputs ---------------------------------------------------------------------------------
def _ink_box(text: str, font: ImageFont.FreeTypeFont, origin: tuple[int, int], size) -> tuple:
    """The word's true box: bounding box of the pixels it inks, drawn alone."""
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).text(origin, text, font=font, fill=255, anchor="ls")
    return mask.getbbox()


def render_known_page() -> tuple[Image.Image, list[Word]]:
    """A4 at 200 dpi, TEXT_LINES in Noto Serif 14 pt; words with their true (ink) boxes."""
    font = ImageFont.truetype(str(_noto_serif()), round(14 * RENDER_DPI / 72))
    size = (1654, 2339)
    page = Image.new("RGB", size, (250, 248, 240))
    draw = ImageDraw.Draw(page)
    words: list[Word] = []
    baseline = 250
    for line_no, line in enumerate(TEXT_LINES):
        x = 160
        for text in line.split(" "):
            box = _ink_box(text, font, (x, baseline), size)
            draw.text((x, baseline), text, font=font, fill=(20, 20, 30), anchor="ls")
            words.append(Word(text=text, bbox=box, confidence=95.0, line=line_no))
            x += round(draw.textlength(text + " ", font=font))
        baseline += 90
    return page, words


def page_ocr(words: list[Word], width: int, height: int, dpi: float) -> PageOcr:
    lines = {}
    for word in words:
        lines.setdefault(word.line, []).append(word.text)
    return PageOcr(
        engine="hand-made",
        engine_version="0",
        language="vie",
        width_px=width,
        height_px=height,
        dpi=dpi,
        text="\n".join(" ".join(v) for _, v in sorted(lines.items())),
        words=tuple(words),
    )


def gt_words(page_json: Path, width: int, height: int) -> list[Word]:
    """Words for a corpus page from its ground-truth lines (boxes split by character count)."""
    data = json.loads(page_json.read_text(encoding="utf-8"))
    words = []
    for line_no, line in enumerate(data["lines"]):
        xs = [p[0] for p in line["quad"]]
        ys = [p[1] for p in line["quad"]]
        x0, x1 = max(0, min(xs)), min(width, max(xs))
        y0, y1 = max(0, min(ys)), min(height, max(ys))
        parts = line["text"].split()
        total = max(1, sum(len(p) + 1 for p in parts) - 1)
        cursor = x0
        for part in parts:
            w = (x1 - x0) * len(part) / total
            box = (int(cursor), int(y0), max(int(cursor) + 1, int(cursor + w)), int(y1))
            words.append(Word(text=part, bbox=box, confidence=90.0, line=line_no))
            cursor += w + (x1 - x0) / total
    return words


def jpeg_file_image(path: Path) -> tuple[EncodedImage, float]:
    with Image.open(path) as im:
        mode = {"RGB": ColourMode.RGB, "L": ColourMode.GRAY}[im.mode]
        dpi = float(im.info["dpi"][0])
        size = im.size
    return (
        EncodedImage(
            data=path.read_bytes(),
            filter="DCTDecode",
            colour_mode=mode,
            width=size[0],
            height=size[1],
            bits_per_component=8,
        ),
        dpi,
    )


def png_gray_image(path: Path) -> tuple[EncodedImage, float]:
    """A non-interlaced 8-bit gray PNG's IDAT as a Flate stream with PNG predictors."""
    data = path.read_bytes()
    with Image.open(path) as im:
        assert im.mode == "L" and not im.info.get("interlace")
        size, dpi = im.size, float(im.info["dpi"][0])
    idat, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    parms = {"Predictor": 15, "Colors": 1, "BitsPerComponent": 8, "Columns": size[0]}
    return (
        EncodedImage(
            data=b"".join(idat),
            filter="FlateDecode",
            colour_mode=ColourMode.GRAY,
            width=size[0],
            height=size[1],
            bits_per_component=8,
            decode_parms=parms,
        ),
        dpi,
    )


def g4_tiff_image(bilevel: Image.Image) -> EncodedImage:
    """A single-strip G4 TIFF written by libtiff (via Pillow); its strip is the CCITT stream."""
    buf = io.BytesIO()
    bilevel.save(buf, "TIFF", compression="group4", tiffinfo={278: bilevel.height})
    with Image.open(io.BytesIO(buf.getvalue())) as tiff:
        (offset,), (count,) = tiff.tag_v2[273], tiff.tag_v2[279]
        black_is_zero = tiff.tag_v2[262] == 1
    return EncodedImage(
        data=buf.getvalue()[offset : offset + count],
        filter="CCITTFaxDecode",
        colour_mode=ColourMode.BILEVEL,
        width=bilevel.width,
        height=bilevel.height,
        bits_per_component=1,
        # TIFF BlackIsZero G4 codes black pixels as 1-bits
        decode_parms={
            "K": -1,
            "Columns": bilevel.width,
            "Rows": bilevel.height,
            "BlackIs1": black_is_zero,
        },
    )


@pytest.fixture(scope="module")
def known_page() -> tuple[Image.Image, list[Word]]:
    return render_known_page()


@pytest.fixture(scope="module")
def built(tmp_path_factory, known_page, corpus_dir) -> dict[str, tuple[PdfResult, list[PdfPage]]]:
    """Every PDF the conformance tests look at, keyed by case name."""
    out = tmp_path_factory.mktemp("pdfa")
    page_image, words = known_page
    cases: dict[str, list[PdfPage]] = {}

    colour_path = corpus_dir / "dev-d04" / "c3" / "p01.jpg"
    colour, dpi = jpeg_file_image(colour_path)
    ocr = page_ocr(
        gt_words(colour_path.with_suffix(".json"), colour.width, colour.height),
        colour.width,
        colour.height,
        dpi,
    )
    cases["jpeg_colour"] = [PdfPage(image=colour, dpi_x=dpi, dpi_y=dpi, ocr=ocr)]

    gray_path = corpus_dir / "dev-d03" / "c2" / "p01.jpg"
    gray, dpi = jpeg_file_image(gray_path)
    ocr = page_ocr(
        gt_words(gray_path.with_suffix(".json"), gray.width, gray.height),
        gray.width,
        gray.height,
        dpi,
    )
    cases["jpeg_gray"] = [PdfPage(image=gray, dpi_x=dpi, dpi_y=dpi, ocr=ocr)]

    png_path = corpus_dir / "dev-d01" / "c3" / "p01.png"
    png, dpi = png_gray_image(png_path)
    ocr = page_ocr(
        gt_words(png_path.with_suffix(".json"), png.width, png.height), png.width, png.height, dpi
    )
    cases["png_gray_flate"] = [PdfPage(image=png, dpi_x=dpi, dpi_y=dpi, ocr=ocr)]

    bilevel = page_image.convert("L").point(lambda v: 255 if v > 128 else 0).convert("1")
    g4 = g4_tiff_image(bilevel)
    ocr = page_ocr(words, g4.width, g4.height, RENDER_DPI)
    cases["g4_bilevel"] = [PdfPage(image=g4, dpi_x=RENDER_DPI, dpi_y=RENDER_DPI, ocr=ocr)]

    buf = io.BytesIO()
    page_image.save(buf, "JPEG", quality=88)
    rendered = EncodedImage(
        data=buf.getvalue(),
        filter="DCTDecode",
        colour_mode=ColourMode.RGB,
        width=page_image.width,
        height=page_image.height,
        bits_per_component=8,
    )
    ocr = page_ocr(words, page_image.width, page_image.height, RENDER_DPI)
    cases["text_layer"] = [PdfPage(image=rendered, dpi_x=RENDER_DPI, dpi_y=RENDER_DPI, ocr=ocr)]

    wrapped = PdfaSettings(jpeg_flate_wrap=True)
    wrap_path = corpus_dir / "dev-d03" / "c4" / "p01.jpg"  # its JPEG deflates by ~3 %
    wrap_image, dpi = jpeg_file_image(wrap_path)
    wrap_pages = [PdfPage(image=wrap_image, dpi_x=dpi, dpi_y=dpi)]

    # JPEG 2000 as a scan-to-PDF source may carry it (PDF/A-2 allows JPXDecode, 6.2.8.3)
    small = Image.open(colour_path).convert("RGB").resize((827, 1170))
    buf = io.BytesIO()
    small.save(buf, "JPEG2000", irreversible=False)
    jpx = EncodedImage(
        data=buf.getvalue(),
        filter="JPXDecode",
        colour_mode=ColourMode.RGB,
        width=small.width,
        height=small.height,
        bits_per_component=8,
    )
    cases["jpx_colour"] = [PdfPage(image=jpx, dpi_x=100, dpi_y=100)]

    # a scan whose JPEG embeds an ICC profile keeps it as the image's ICCBased colour space
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    with_icc = colour.model_copy(update={"icc_profile": profile})
    cases["jpeg_icc_no_text"] = [PdfPage(image=with_icc, dpi_x=dpi, dpi_y=dpi)]

    cases["no_text"] = [PdfPage(image=colour, dpi_x=200, dpi_y=200)]
    # A component whose second page has no text: 2b for the file, text kept on page 1.
    reencoded = encode_pixels(np.asarray(page_image.convert("L")), ColourMode.GRAY)
    cases["mixed_reencoded"] = [
        PdfPage(image=rendered, dpi_x=RENDER_DPI, dpi_y=RENDER_DPI, ocr=ocr),
        PdfPage(image=reencoded, dpi_x=RENDER_DPI, dpi_y=RENDER_DPI),
        PdfPage(image=g4, dpi_x=RENDER_DPI, dpi_y=RENDER_DPI, ocr=ocr),
    ]
    results = {
        name: (build_component_pdf(pages, META, out / f"{name}.pdf"), pages)
        for name, pages in cases.items()
    }
    results["jpeg_flate_wrapped"] = (
        build_component_pdf(wrap_pages, META, out / "jpeg_flate_wrapped.pdf", wrapped),
        wrap_pages,
    )
    return results


# --- signing (as the sign stage will do it: incremental, PAdES) ----------------------------
def _self_signed_signer():
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Nguyễn Thị Hoa (test)")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_asn1 = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    key_asn1 = asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return signers.SimpleSigner(
        signing_cert=cert_asn1,
        signing_key=key_asn1,
        cert_registry=SimpleCertificateStore.from_certs([cert_asn1]),
    )


def sign_copy(source: Path, target: Path, signer, visible: bool) -> None:
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.sign import fields, signers
    from pyhanko.stamp import TextStampStyle

    meta = signers.PdfSignatureMetadata(
        field_name="ChuKySo1", subfilter=fields.SigSeedSubFilter.PADES
    )
    if visible:
        with pikepdf.open(source) as pdf:
            height = float(pdf.pages[0].MediaBox[3])
        spec = fields.SigFieldSpec("ChuKySo1", on_page=0, box=(20, height - 80, 260, height - 20))
        style = TextStampStyle(
            stamp_text="Người số hóa: %(signer)s\nThời gian: %(ts)s",
            text_box_style=TextBoxStyle(
                font=GlyphAccumulatorFactory(str(_noto_serif()), font_size=9)
            ),
            border_width=0,
        )
        pdf_signer = signers.PdfSigner(meta, signer, stamp_style=style, new_field_spec=spec)
    else:
        pdf_signer = signers.PdfSigner(meta, signer)
    with source.open("rb") as handle:
        writer = IncrementalPdfFileWriter(handle, strict=False)
        with target.open("wb") as out:
            pdf_signer.sign_pdf(writer, output=out)


def broken_copies(source: Path, folder: Path) -> dict[str, Path]:
    """Negative controls: our file with one PDF/A essential removed (veraPDF must catch each)."""
    copies = {}
    with pikepdf.open(source) as pdf:
        del pdf.Root.OutputIntents
        copies["no_output_intent"] = folder / "no_output_intent.pdf"
        pdf.save(copies["no_output_intent"])
    with pikepdf.open(source) as pdf:
        xmp = pdf.Root.Metadata.read_bytes()
        start = xmp.index(b"<pdfaExtension:schemas>")
        end = xmp.index(b"</pdfaExtension:schemas>") + len(b"</pdfaExtension:schemas>")
        pdf.Root.Metadata.write(xmp[:start] + xmp[end:])
        copies["undeclared_schema"] = folder / "undeclared_schema.pdf"
        pdf.save(copies["undeclared_schema"])
    return copies


@pytest.fixture(scope="module")
def verapdf_reports(built, tmp_path_factory) -> dict[tuple[str, str, str], VeraPdfReport]:
    """One veraPDF run over all files: (case, "unsigned"|"signed"|"broken", flavour) → report."""
    signed_dir = tmp_path_factory.mktemp("signed")
    signer = _self_signed_signer()
    jobs, keys = [], []
    for name, (result, _) in built.items():
        signed = signed_dir / f"{name}.pdf"
        sign_copy(result.path, signed, signer, visible=name in VISIBLY_SIGNED)
        flavours = ["2b", "2u"] if result.pdfa_part == "2u" else ["2b"]
        for state, path in (("unsigned", result.path), ("signed", signed)):
            for flavour in flavours:
                jobs.append((path, flavour))
                keys.append((name, state, flavour))
    for name, path in broken_copies(built["jpeg_gray"][0].path, signed_dir).items():
        jobs.append((path, "2b"))
        keys.append((name, "broken", "2b"))
    reports = verapdf_validate_many(jobs)
    return dict(zip(keys, reports, strict=True))


VISIBLY_SIGNED = ("jpeg_colour", "no_text")
CONFORMANCE_CASES = [
    "jpeg_colour",
    "jpeg_gray",
    "png_gray_flate",
    "g4_bilevel",
    "jpx_colour",
    "jpeg_flate_wrapped",
    "jpeg_icc_no_text",
    "no_text",
    "mixed_reencoded",
]
TWO_B_CASES = (  # some page without text
    "jpx_colour",
    "jpeg_flate_wrapped",
    "jpeg_icc_no_text",
    "no_text",
    "mixed_reencoded",
)


@pytest.mark.parametrize("state", ["unsigned", "signed"])
@pytest.mark.parametrize("case", CONFORMANCE_CASES)
def test_verapdf_passes_before_and_after_signing(case, state, built, verapdf_reports):
    """R13: every output passes veraPDF (its claimed part and 2b), also after a PAdES signature."""
    result, _ = built[case]
    expected = "2b" if case in TWO_B_CASES else "2u"
    assert result.pdfa_part == expected
    for flavour in ["2b", "2u"] if expected == "2u" else ["2b"]:
        report = verapdf_reports[(case, state, flavour)]
        assert report.flavour == flavour
        assert report.checks > 0
        assert report.compliant, report.summary()


@pytest.mark.parametrize(
    ("broken", "rule"),
    [("no_output_intent", "6.2.4.3"), ("undeclared_schema", "6.6.2.3")],
)
def test_verapdf_catches_what_we_guard_against(broken, rule, verapdf_reports):
    """Negative control: the validator run is real and sees a missing essential."""
    report = verapdf_reports[(broken, "broken", "2b")]
    assert not report.compliant
    assert any(f" {rule}" in r.rule for r in report.failed_rules), report.summary()


def test_signed_copies_carry_a_signature(built, verapdf_reports, tmp_path_factory):
    """The "after signing" files really are signed (visible ones with an embedded font)."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    folder = verapdf_reports[("jpeg_colour", "signed", "2b")].path.parent
    for name in built:
        with (folder / f"{name}.pdf").open("rb") as handle:
            reader = PdfFileReader(handle)
            assert len(reader.embedded_signatures) == 1
            field = reader.embedded_signatures[0].sig_field
            rect = [float(v) for v in field.get("/Rect", [0, 0, 0, 0])]
            visible = rect[2] > rect[0]
            assert visible == (name in VISIBLY_SIGNED)
        with pikepdf.open(folder / f"{name}.pdf") as pdf:
            type0 = [
                obj
                for obj in pdf.objects
                if isinstance(obj, pikepdf.Dictionary) and obj.get("/Subtype") == "/Type0"
            ]
            has_text = name not in TWO_B_CASES or name == "mixed_reencoded"
            assert len(type0) == has_text + (name in VISIBLY_SIGNED)
            for font in type0:
                descriptor = font.DescendantFonts[0].FontDescriptor
                assert "/FontFile2" in descriptor or "/FontFile3" in descriptor


def test_missing_verapdf_fails_with_a_clear_message(tmp_path, monkeypatch):
    """The helper never skips: a missing engine is an error naming what to install."""
    from tests.helpers_verapdf import VeraPdfUnavailableError, verapdf_validate

    pdf = tmp_path / "any.pdf"
    pdf.write_bytes(b"%PDF-1.7\n")
    monkeypatch.setenv("DIGITIZE_VERAPDF_JAR", str(tmp_path / "missing.jar"))
    with pytest.raises(VeraPdfUnavailableError, match="missing.jar"):
        verapdf_validate(pdf)
    monkeypatch.delenv("DIGITIZE_VERAPDF_JAR")
    monkeypatch.setenv("DIGITIZE_JAXB_DIR", str(tmp_path))
    with pytest.raises(VeraPdfUnavailableError, match="libjaxb-java"):
        verapdf_validate(pdf)


def test_signed_copy_is_an_incremental_update(built, verapdf_reports, tmp_path):
    """The signature appends to our file: the signed file starts with our exact bytes."""
    result, _ = built["jpeg_gray"]
    signed = tmp_path / "signed.pdf"
    sign_copy(result.path, signed, _self_signed_signer(), visible=False)
    original = result.path.read_bytes()
    assert signed.read_bytes()[: len(original)] == original


# --- text layer -----------------------------------------------------------------------------
def _pdftotext_words(path: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
    html = subprocess.run(
        [_require("pdftotext", "poppler-utils"), "-bbox", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8")
    words = []
    for match in re.finditer(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>', html
    ):
        box = tuple(float(match.group(i)) for i in range(1, 5))
        text = match.group(5).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
        words.append((text, box))
    return words


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_text_layer_boxes_overlap_true_word_boxes(built, known_page):
    """R15/R16: pdftotext -bbox boxes match the drawn words (IoU ≥ 0.5 for ≥ 95 % of words)."""
    _, words = known_page
    result, _ = built["text_layer"]
    extracted = _pdftotext_words(result.path)
    assert [t for t, _ in extracted] == [w.text for w in words]
    scale = 72.0 / RENDER_DPI
    ious = [
        _iou(box, tuple(v * scale for v in word.bbox))
        for (_, box), word in zip(extracted, words, strict=True)
    ]
    good = sum(iou >= 0.5 for iou in ious)
    assert good >= 0.95 * len(words), sorted(ious)[:5]
    # only bare punctuation (a dash is a few pixels high) may fall under: every word with a
    # letter or digit is found at its place
    assert all(
        iou >= 0.5 for iou, w in zip(ious, words, strict=True) if any(c.isalnum() for c in w.text)
    )


def test_text_layer_text_is_exact_nfc_vietnamese(built):
    """pdftotext returns the OCR text: same letters, NFC, one printed line per OCR line."""
    result, _ = built["text_layer"]
    text = subprocess.run(
        [_require("pdftotext", "poppler-utils"), "-enc", "UTF-8", str(result.path), "-"],
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8")
    assert unicodedata.is_normalized("NFC", text)
    lines = [line for line in text.splitlines() if line.strip() and line != "\f"]
    assert [line.strip() for line in lines] == list(TEXT_LINES)
    assert "Nguyễn Thị Hoa, Ủy ban nhân dân, ngày 19 tháng 03 năm 2025" in text


def test_text_layer_is_invisible(built, tmp_path):
    """Render mode 3: the page renders exactly as the image alone would (no drawn glyphs)."""
    result, pages = built["text_layer"]
    bare = build_component_pdf(
        [pages[0].model_copy(update={"ocr": None})], META, tmp_path / "bare.pdf"
    )
    pdftoppm = _require("pdftoppm", "poppler-utils")
    for path, stem in ((result.path, "with"), (bare.path, "without")):
        subprocess.run([pdftoppm, "-r", "50", "-png", str(path), str(tmp_path / stem)], check=True)
    with_text = np.asarray(Image.open(tmp_path / "with-1.png"))
    without = np.asarray(Image.open(tmp_path / "without-1.png"))
    assert np.array_equal(with_text, without)


# --- pass-through, page size, structure -----------------------------------------------------
@pytest.mark.parametrize(
    "case", ["jpeg_colour", "jpeg_gray", "png_gray_flate", "g4_bilevel", "jpx_colour"]
)
def test_scan_bytes_pass_through_unchanged(case, built):
    """R14: the image stream in the PDF holds the source bytes exactly (no re-encoding)."""
    result, pages = built[case]
    assert result.passthrough_pages == (True,)
    with pikepdf.open(result.path) as pdf:
        image = pdf.pages[0].Resources.XObject.Im0
        assert image.read_raw_bytes() == pages[0].image.data
        assert str(image.Filter) == "/" + pages[0].image.filter
        assert "/SMask" not in image and "/Interpolate" not in image


def test_embedded_icc_profile_becomes_the_colour_space(built):
    result, pages = built["jpeg_icc_no_text"]
    with pikepdf.open(result.path) as pdf:
        space = pdf.pages[0].Resources.XObject.Im0.ColorSpace
        assert space[0] == "/ICCBased" and space[1].N == 3
        assert space[1].read_bytes() == pages[0].image.icc_profile


def test_opt_in_flate_wrap_keeps_the_jpeg_bytes_inside(built):
    """jpeg_flate_wrap: [/FlateDecode /DCTDecode]; one Flate decode gives the scan bytes."""
    import zlib

    result, pages = built["jpeg_flate_wrapped"]
    with pikepdf.open(result.path) as pdf:
        image = pdf.pages[0].Resources.XObject.Im0
        assert list(image.Filter) == ["/FlateDecode", "/DCTDecode"]
        raw = image.read_raw_bytes()
    assert zlib.decompress(raw) == pages[0].image.data
    assert len(raw) < 0.99 * len(pages[0].image.data)
    assert 0 < result.page_bytes[0] - len(raw) < 100  # + the page content stream
    assert result.passthrough_pages == (True,)


@pytest.mark.parametrize("case", list(CONFORMANCE_CASES) + ["text_layer"])
def test_page_size_is_pixels_over_dpi(case, built):
    """R12: 100 % scale, page size = pixels / dpi within ±1 %."""
    result, pages = built[case]
    with pikepdf.open(result.path) as pdf:
        assert len(pdf.pages) == len(pages)
        for page, source in zip(pdf.pages, pages, strict=True):
            box = [float(v) for v in page.MediaBox]
            expected_w = source.image.width / source.dpi_x * 72
            expected_h = source.image.height / source.dpi_y * 72
            assert box[:2] == [0.0, 0.0]
            assert abs(box[2] - expected_w) <= 0.01 * expected_w
            assert abs(box[3] - expected_h) <= 0.01 * expected_h


def test_page_size_with_unequal_dpi(tmp_path):
    pixels = np.full((600, 400), 255, dtype=np.uint8)
    image = encode_pixels(pixels, ColourMode.BILEVEL)
    result = build_component_pdf(
        [PdfPage(image=image, dpi_x=200, dpi_y=300)], META, tmp_path / "a.pdf"
    )
    with pikepdf.open(result.path) as pdf:
        box = [float(v) for v in pdf.pages[0].MediaBox]
    assert box == pytest.approx([0, 0, 144.0, 144.0], rel=0.01)


@pytest.mark.parametrize("case", ["jpeg_colour", "mixed_reencoded", "no_text"])
def test_qpdf_check_passes(case, built):
    result, _ = built[case]
    proc = subprocess.run(
        [_require("qpdf", "qpdf"), "--check", str(result.path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No syntax or stream encoding errors" in proc.stdout


def test_result_records_sizes_and_hash(built):
    import hashlib

    result, pages = built["mixed_reencoded"]
    data = result.path.read_bytes()
    assert result.size_bytes == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.passthrough_pages == (True, False, True)
    assert len(result.page_bytes) == 3
    for recorded, page in zip(result.page_bytes, pages, strict=True):
        assert len(page.image.data) < recorded < len(page.image.data) + 20_000
    # no hidden overhead: the file is its images, text streams and a few kB of structure
    assert result.size_bytes - sum(result.page_bytes) < 12_000


# --- encode_pixels --------------------------------------------------------------------------
def _decoded(image: EncodedImage, tmp_path: Path) -> np.ndarray:
    """Pixels of the image XObject as poppler's own decoders read them (pdfimages)."""
    result = build_component_pdf(
        [PdfPage(image=image, dpi_x=72, dpi_y=72)], META, tmp_path / "decode.pdf"
    )
    subprocess.run(
        [_require("pdfimages", "poppler-utils"), "-png", str(result.path), str(tmp_path / "d")],
        check=True,
    )
    return np.asarray(Image.open(tmp_path / "d-000.png").convert("L"))


def test_bilevel_pixels_become_lossless_g4(tmp_path, known_page):
    gray = np.asarray(known_page[0].convert("L"))[:800, :1000]
    bilevel = np.where(gray > 128, 255, 0).astype(np.uint8)
    image = encode_pixels(bilevel, ColourMode.BILEVEL)
    assert image.filter == "CCITTFaxDecode" and image.bits_per_component == 1
    assert not image.passthrough
    assert np.array_equal(_decoded(image, tmp_path), bilevel)
    # gray pixels that are only black and white are bilevel too (R14: bitonal as G4)
    assert encode_pixels(bilevel, ColourMode.GRAY).filter == "CCITTFaxDecode"


def test_gray_pixels_lossless_when_cheap_else_jpeg(tmp_path, known_page):
    flat = np.asarray(known_page[0].convert("L"))[:800, :1000]
    image = encode_pixels(flat, ColourMode.GRAY)
    assert image.filter == "FlateDecode"  # clean text page: Flate costs less than 1.25 × JPEG
    assert np.array_equal(_decoded(image, tmp_path), flat)
    noisy = np.random.default_rng(1).integers(0, 256, (300, 400), dtype=np.uint8)
    assert encode_pixels(noisy, ColourMode.GRAY).filter == "DCTDecode"
    assert (
        encode_pixels(flat, ColourMode.GRAY, PdfaSettings(lossless_gray_max_ratio=0)).filter
        == "DCTDecode"
    )


def test_colour_pixels_become_jpeg_at_the_quality_floor_or_above(known_page):
    rgb = np.asarray(known_page[0])[:600, :800]
    image = encode_pixels(rgb, ColourMode.RGB)
    assert image.filter == "DCTDecode" and image.colour_mode is ColourMode.RGB
    decoded = np.asarray(Image.open(io.BytesIO(image.data)).convert("RGB")).astype(float)
    psnr = 10 * np.log10(255**2 / np.mean((decoded - rgb) ** 2))
    assert psnr > 35, psnr
    with pytest.raises(ValidationError):
        PdfaSettings(jpeg_quality=80)  # R14: never below 85


def test_refuses_inconsistent_or_forbidden_images(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(buf, "JPEG")
    wrong_size = EncodedImage(
        data=buf.getvalue(),
        filter="DCTDecode",
        colour_mode=ColourMode.RGB,
        width=65,
        height=48,
        bits_per_component=8,
    )
    with pytest.raises(PdfError, match=r"x\.pdf \(page 1\): JPEG is 64x48"):
        build_component_pdf(
            [PdfPage(image=wrong_size, dpi_x=200, dpi_y=200)], META, tmp_path / "x.pdf"
        )
    buf = io.BytesIO()
    Image.new("CMYK", (64, 48), (0, 0, 0, 0)).save(buf, "JPEG")
    cmyk = EncodedImage(
        data=buf.getvalue(),
        filter="DCTDecode",
        colour_mode=ColourMode.RGB,
        cmyk=True,
        width=64,
        height=48,
        bits_per_component=8,
    )
    with pytest.raises(PdfError, match="DeviceCMYK"):
        build_component_pdf([PdfPage(image=cmyk, dpi_x=200, dpi_y=200)], META, tmp_path / "y.pdf")
    with pytest.raises(PdfError, match="at least one page"):
        build_component_pdf([], META, tmp_path / "z.pdf")
    assert not list(tmp_path.iterdir())  # nothing half-written


# --- metadata -------------------------------------------------------------------------------
NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "hoso": DOSSIER_NAMESPACE,
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#",
}


def _xmp(path: Path) -> tuple[ElementTree.Element, dict[str, str]]:
    with pikepdf.open(path) as pdf:
        stream = pdf.Root.Metadata
        assert "/Filter" not in stream  # readable without decoding, as archives expect
        info = {str(k)[1:]: str(v) for k, v in pdf.docinfo.items()}
        return ElementTree.fromstring(stream.read_bytes()), info


def _xmp_value(root: ElementTree.Element, xpath: str) -> str | None:
    """A property written as an element or, for simple ones, as an rdf:Description attribute."""
    found = root.find(xpath, NS)
    if found is not None:
        return found.text
    prefix, name = xpath.removeprefix(".//").split(":")
    key = "{" + NS[prefix] + "}" + name
    for description in root.iter("{" + NS["rdf"] + "}Description"):
        if key in description.attrib:
            return description.attrib[key]
    return None


@pytest.mark.parametrize("case", ["jpeg_colour", "no_text"])
def test_xmp_and_info_agree_and_declare_the_dossier_schema(case, built):
    result, _ = built[case]
    root, info = _xmp(result.path)
    one = lambda xpath: _xmp_value(root, xpath)  # noqa: E731
    assert one(".//pdfaid:part") == "2"
    assert one(".//pdfaid:conformance") == result.pdfa_part[-1].upper()
    assert one(".//dc:title/rdf:Alt/rdf:li") == META.title == info["Title"]
    assert one(".//dc:creator/rdf:Seq/rdf:li") == META.digitiser == info["Author"]
    assert one(".//dc:language/rdf:Bag/rdf:li") == "vi"
    assert one(".//xmp:CreateDate") == "2025-03-19T08:30:15+07:00"
    assert one(".//xmp:ModifyDate") == one(".//xmp:MetadataDate") == one(".//xmp:CreateDate")
    assert info["CreationDate"] == "D:20250319083015+07'00'"
    assert one(".//pdf:Producer") == info["Producer"]
    assert one(".//xmp:CreatorTool") == info["Creator"]
    assert one(".//xmpMM:DocumentID").startswith("uuid:")
    assert one(".//hoso:dossierCode") == META.dossier_code
    assert one(".//hoso:procedureCode") == META.procedure_code
    assert one(".//hoso:componentName") == META.component_name
    assert one(".//hoso:digitiser") == META.digitiser
    declared = {e.text for e in root.iterfind(".//pdfaProperty:name", NS)}
    used = {
        name.split("}")[1]
        for element in root.iter()
        for name in [element.tag, *element.attrib]
        if name.startswith("{" + DOSSIER_NAMESPACE)
    }
    assert used == {"dossierCode", "procedureCode", "componentName", "digitiser"}
    assert used <= declared
    assert one(".//pdfaSchema:namespaceURI") == DOSSIER_NAMESPACE
    with pikepdf.open(result.path) as pdf:
        intent = pdf.Root.OutputIntents[0]
        assert intent.S == "/GTS_PDFA1" and intent.DestOutputProfile.N == 3
        assert len(pdf.trailer.ID) == 2 and not pdf.is_encrypted


def test_same_input_gives_same_bytes(built, tmp_path):
    """Deterministic output: no clock, no random IDs."""
    for case in ("text_layer", "mixed_reencoded"):
        result, pages = built[case]
        again = build_component_pdf(pages, META, tmp_path / f"{case}.pdf")
        assert again.path.read_bytes() == result.path.read_bytes()
    other = build_component_pdf(
        built["text_layer"][1], META.model_copy(update={"dossier_code": "X-2"}), tmp_path / "o.pdf"
    )
    root_a, _ = _xmp(built["text_layer"][0].path)
    root_b, _ = _xmp(other.path)
    assert _xmp_value(root_a, ".//xmpMM:DocumentID") != _xmp_value(root_b, ".//xmpMM:DocumentID")


def test_atomic_write_replaces_and_leaves_no_temp_file(built, tmp_path):
    target = tmp_path / "out.pdf"
    target.write_bytes(b"old")
    result = build_component_pdf(built["no_text"][1], META, target)
    assert target.read_bytes()[:8] == b"%PDF-1.7"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pdf"]
    assert result.size_bytes == target.stat().st_size
    with pytest.raises(OutputError, match="missing-folder"):
        build_component_pdf(built["no_text"][1], META, tmp_path / "missing-folder" / "x.pdf")
