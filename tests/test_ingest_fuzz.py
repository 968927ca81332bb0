"""Fuzzing ingest with mutated scans (issue 3, hostile input; R8).

Valid JPEG, PNG, BMP, G4/LZW TIFF, BigTIFF and image-only PDF files (DCT + CCITT pages, a
JBIG2 page with globals, a JPX page, a Flate page) are truncated, bit-flipped, spliced and
overwritten by hypothesis; every result goes through ``ingest_dossier``, ``load_page_pixels``
and ``read_page_encoded``. Only ``DigitizeError`` subclasses may escape (never a raw PIL,
pikepdf, OSError, struct or zlib exception), each example finishes within the deadline (no
hang), and the mutated input file is never modified.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from digitize.errors import DigitizeError
from digitize.ingest import IngestSettings, ingest_dossier, load_page_pixels, read_page_encoded
from tests.helpers_images import (
    PdfImage,
    bilevel,
    g4_bytes,
    jbig2_mmr,
    jpeg_bytes,
    save_bmp,
    save_jpeg,
    save_png,
    save_tiff,
    text_page,
    write_scan_pdf,
)

# Pillow warns (and carries on) about damaged TIFF tags: expected on mutated input.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning"),
    pytest.mark.filterwarnings("ignore:Tag data larger than file:UserWarning"),
]

W, H = 350, 495  # A4-shaped, small: keeps each example fast
SETTINGS = IngestSettings(min_dpi=100, allow_grayscale=True, max_pixels=20_000_000)


def _seeds() -> dict[str, tuple[str, bytes]]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        gray = text_page(W, H, seed=1)
        colour = text_page(W, H, seed=2, colour=True, seal=True)
        g4, photometric = g4_bytes(gray, d)
        jbig2, jbig2_globals = jbig2_mmr(bilevel(gray), d)
        jpx = io.BytesIO()
        Image.fromarray(colour).save(jpx, "JPEG2000", irreversible=False)
        big = io.BytesIO()
        Image.fromarray(gray).save(big, "TIFF", big_tiff=True, dpi=(300, 300))
        return {
            "bmp": (".bmp", save_bmp(d / "a.bmp", colour, dpi=300).read_bytes()),
            "bigtiff": (".tif", big.getvalue()),
            "pdf_jbig2": (
                ".pdf",
                write_scan_pdf(
                    d / "j.pdf",
                    [PdfImage(jbig2, "/JBIG2Decode", W, H, 300, "/DeviceGray", 1, {},
                              jbig2_globals)],
                ).read_bytes(),
            ),
            "pdf_jpx": (
                ".pdf",
                write_scan_pdf(
                    d / "x.pdf", [PdfImage(jpx.getvalue(), "/JPXDecode", W, H, 300)]
                ).read_bytes(),
            ),
            "pdf_flate": (
                ".pdf",
                write_scan_pdf(
                    d / "f.pdf",
                    [PdfImage(zlib.compress(gray.tobytes()), "/FlateDecode", W, H, 300,
                              "/DeviceGray")],
                ).read_bytes(),
            ),
            "jpeg": (".jpg", save_jpeg(d / "a.jpg", colour, dpi=300).read_bytes()),
            "png": (".png", save_png(d / "a.png", gray, dpi=300).read_bytes()),
            "tiff_g4": (
                ".tif",
                save_tiff(d / "a.tif", [gray, gray[::-1].copy()], dpi=300).read_bytes(),
            ),
            "tiff_lzw": (
                ".tif",
                save_tiff(d / "b.tif", [gray], dpi=300, compression="tiff_lzw").read_bytes(),
            ),
            "pdf": (
                ".pdf",
                write_scan_pdf(
                    d / "a.pdf",
                    [
                        PdfImage(jpeg_bytes(colour), "/DCTDecode", W, H, 300),
                        PdfImage(
                            g4,
                            "/CCITTFaxDecode",
                            W,
                            H,
                            300,
                            "/DeviceGray",
                            1,
                            {"K": -1, "Columns": W, "Rows": H, "BlackIs1": photometric == 1},
                        ),
                    ],
                ).read_bytes(),
            ),
        }


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "overwrite", "delete"]))
        if not buf:
            break
        pos = draw(st.integers(0, len(buf) - 1))
        if op == "truncate":
            del buf[pos:]
        elif op == "flip":
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=256))
            buf[pos : pos + len(chunk)] = chunk
        else:
            del buf[pos : pos + draw(st.integers(1, 512))]
    return bytes(buf)


def _ingest_only_typed_errors(name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{name}"
        path.write_bytes(data)
        before = hashlib.sha256(data).hexdigest()
        try:
            dossier = ingest_dossier(path, SETTINGS)
            for component in dossier.components:
                for page in component.pages:
                    pixels = load_page_pixels(page, SETTINGS)
                    assert pixels.dtype == np.uint8 and pixels.ndim in (2, 3)
                    read_page_encoded(page)  # None or bytes, never an exception
        except DigitizeError as exc:
            text = str(exc)
            assert "\n" not in text and path.name in text, text
        except Exception as exc:  # pragma: no cover - this is the failure being hunted
            pytest.fail(f"raw {type(exc).__name__} escaped ingest: {exc}")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_seed_files_are_valid(kind: str) -> None:
    """The unmutated seeds ingest cleanly (otherwise the fuzzing proves nothing)."""
    suffix, data = SEEDS[kind]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"seed{suffix}"
        path.write_bytes(data)
        dossier = ingest_dossier(path, SETTINGS)
        assert dossier.page_count >= 1


def _fuzz(kind: str):
    suffix, data = SEEDS[kind]

    @settings(
        max_examples=60,
        deadline=5000,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(blob=mutated(data))
    def run(blob: bytes) -> None:
        _ingest_only_typed_errors(suffix, blob)

    return run


test_fuzz_jpeg = _fuzz("jpeg")
test_fuzz_png = _fuzz("png")
test_fuzz_tiff_g4 = _fuzz("tiff_g4")
test_fuzz_tiff_lzw = _fuzz("tiff_lzw")
test_fuzz_pdf = _fuzz("pdf")
test_fuzz_bmp = _fuzz("bmp")
test_fuzz_bigtiff = _fuzz("bigtiff")
test_fuzz_pdf_jbig2 = _fuzz("pdf_jbig2")
test_fuzz_pdf_jpx = _fuzz("pdf_jpx")
test_fuzz_pdf_flate = _fuzz("pdf_flate")
