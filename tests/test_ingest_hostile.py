"""Hostile input at ingest (R8, R10 and the safety rules of the ingest contract).

Covers: dossier.yaml alias bombs, anchors, size/node/depth caps and a hypothesis fuzz of
``load_dossier_yaml``; Flate bombs in every kind of PDF stream (content, image, ICC profile,
JBIG2 globals) refused with exit code 101 in bounded memory; FIFOs named like scans; 16-bit gray
pages without a float copy; a TIFF strip table with millions of entries; the 80 Mpx default.
Memory is asserted from a child's peak RSS (``tests.helpers_hostile.run_measured``); the time a
refusal takes is printed for information only.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from digitize.errors import (
    ConfigError,
    CorruptFileError,
    DecompressionBombError,
    ExitCode,
    TooLargeError,
    UnsafePathError,
)
from digitize.ingest import IngestSettings, ingest_dossier, load_dossier_yaml, load_page_pixels
from digitize.ingest.spec import DossierSpec
from tests.helpers_hostile import alias_bomb_yaml, flate_bomb, run_measured
from tests.helpers_images import jbig2_mmr, save_png, text_page

# --- dossier.yaml ----------------------------------------------------------------------------
_LOAD_YAML = """
import json, sys, time
from pathlib import Path
from digitize.errors import DigitizeError
from digitize.ingest import load_dossier_yaml
start = time.monotonic()
try:
    load_dossier_yaml(Path(sys.argv[1] if len(sys.argv) > 1 else {path!r}))
    print(json.dumps({{"error": None}}))
except DigitizeError as exc:
    print(json.dumps({{"error": type(exc).__name__, "message": str(exc),
                      "seconds": time.monotonic() - start}}))
"""


def test_yaml_alias_bomb_refused_quickly_in_little_memory(tmp_path: Path) -> None:
    """A sub-1 kB billion-laughs dossier.yaml is a ConfigError, and the process reading it
    stays small (a naive load builds ~10^9 objects and runs out of memory)."""
    bomb = alias_bomb_yaml()
    assert len(bomb.encode()) < 1024
    path = tmp_path / "dossier.yaml"
    path.write_text(bomb)
    run = run_measured(_LOAD_YAML.format(path=str(path)), address_space_mb=3072, timeout_s=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["error"] == "ConfigError" and "aliases" in result["message"]
    assert run.max_rss_mb < 200, run.max_rss_mb
    print(f"alias bomb refused in {result['seconds']:.3f} s, peak {run.max_rss_mb:.0f} MB")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("dossier_code: &c X\nprocedure_code: *c\n", "aliases"),
        ("components:\n  - &one {path: a}\n", "aliases"),
        ("x: " + "[" * 40 + "]" * 40 + "\n", "nested deeper"),
        ("components:\n" + "  - {path: p}\n" * 12_000, "YAML nodes"),
        ("dossier_code: " + "A" * 300_000 + "\n", "larger than"),
    ],
    ids=["anchor", "anchor-in-list", "deep", "many-nodes", "big"],
)
def test_yaml_shapes_refused(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "dossier.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words) as info:
        load_dossier_yaml(path)
    assert info.value.exit_code == ExitCode.CONFIG and "dossier.yaml" in str(info.value)


def test_yaml_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    folder = tmp_path / "hs"
    folder.mkdir()
    os.mkfifo(folder / "dossier.yaml")
    with pytest.raises(ConfigError, match="FIFO"):
        load_dossier_yaml(folder / "dossier.yaml")


_YAML_TEXT = st.recursive(
    st.one_of(
        st.sampled_from(["", "~", "null", "1.001612", "000.00.12.H62-201105-0004", "2025-03-19"]),
        st.text(max_size=20),
        st.integers(-5, 5).map(str),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(map(json.dumps, xs)) + "]"),
        st.dictionaries(
            st.sampled_from(
                ["dossier_code", "components", "path", "name", "declared_pages", "note_slip_pages",
                 "not_digitised_reason", "received_at", "x", "&a", "*a"]
            ),
            inner,
            max_size=4,
        ).map(lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=2000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(_YAML_TEXT, st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_fuzz_load_dossier_yaml(tmp_path: Path, body: str) -> None:
    """Whatever the text, the reader gives a DossierSpec or a one-line ConfigError."""
    path = tmp_path / "dossier.yaml"
    path.write_bytes(body.encode("utf-8", "surrogatepass"))
    try:
        assert isinstance(load_dossier_yaml(path), DossierSpec)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "dossier.yaml" in str(exc)


# --- Flate bombs in PDFs ---------------------------------------------------------------------
def _bomb_pdf(path: Path, where: str, tmp: Path) -> Path:
    """An otherwise valid scanner PDF with one stream that inflates to gigabytes."""
    pdf = pikepdf.new()
    width, height = 800, 1100  # 4×5.5 in at 200 dpi
    image_data = zlib.compress(text_page(width, height, seed=1).tobytes())
    image = pikepdf.Stream(pdf, image_data)
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height, image.BitsPerComponent = width, height, 8
    image.ColorSpace, image.Filter = pikepdf.Name.DeviceGray, pikepdf.Name.FlateDecode
    content = b"q 288 0 0 396 0 0 cm /Im0 Do Q\n"
    contents = pikepdf.Stream(pdf, content)
    if where == "content":  # 10 MB that inflate to 10 GB of spaces after the real operators
        contents = pikepdf.Stream(pdf, flate_bomb(10 * 1024**3))
        contents.Filter = pikepdf.Name.FlateDecode
    elif where == "image":
        image.write(flate_bomb(4 * 1024**3, b"\x00"), filter=pikepdf.Name.FlateDecode)
    elif where == "icc":
        icc = pikepdf.Stream(pdf, flate_bomb(4 * 1024**3, b"\x00"))
        icc.Filter, icc.N = pikepdf.Name.FlateDecode, 1
        image.ColorSpace = pikepdf.Array([pikepdf.Name.ICCBased, icc])
    elif where == "jbig2_globals":
        stream, _globals = jbig2_mmr(text_page(width, height, seed=2), tmp)
        image.write(stream, filter=pikepdf.Name.JBIG2Decode)
        image.BitsPerComponent = 1
        globals_stream = pikepdf.Stream(pdf, flate_bomb(4 * 1024**3, b"\x00"))
        globals_stream.Filter = pikepdf.Name.FlateDecode
        image.DecodeParms = pikepdf.Dictionary(JBIG2Globals=globals_stream)
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page,
        MediaBox=[0, 0, 288, 396],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
        Contents=contents,
    )
    pdf.pages.append(pikepdf.Page(page))
    pdf.save(path, compress_streams=False)
    return path


_INGEST = """
import json, sys, time
from pathlib import Path
from digitize.errors import DigitizeError
from digitize.ingest import IngestSettings, ingest_dossier
start = time.monotonic()
try:
    ingest_dossier(Path({path!r}), IngestSettings(allow_grayscale=True))
    print(json.dumps({{"error": None}}))
except DigitizeError as exc:
    print(json.dumps({{"error": type(exc).__name__, "code": int(exc.exit_code),
                      "message": str(exc), "seconds": time.monotonic() - start}}))
"""


@pytest.mark.parametrize("where", ["content", "image", "icc", "jbig2_globals"])
def test_pdf_flate_bomb_refused_in_bounded_memory(tmp_path: Path, where: str) -> None:
    """A stream inflating to gigabytes is refused as a decompression bomb (exit 101) naming the
    file, and the process that read it peaks under 1 GB (qpdf alone would inflate it all)."""
    path = _bomb_pdf(tmp_path / f"bomb-{where}.pdf", where, tmp_path)
    run = run_measured(_INGEST.format(path=str(path)), timeout_s=240)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["error"] == "DecompressionBombError", result
    assert result["code"] == ExitCode.DECOMPRESSION_BOMB == 101
    assert path.name in result["message"]
    assert run.max_rss_mb < 1024, run.max_rss_mb
    size_mb = path.stat().st_size / 1e6
    print(f"{where}: {size_mb:.1f} MB file refused in {result['seconds']:.1f} s, "
          f"peak {run.max_rss_mb:.0f} MB")


def test_decompression_bomb_is_a_too_large_error() -> None:
    """Callers catching TooLargeError (15) still catch the new, more precise error."""
    assert issubclass(DecompressionBombError, TooLargeError)


# --- non-regular files -----------------------------------------------------------------------
_INGEST_FIFO = """
from pathlib import Path
from digitize.errors import UnsafePathError
from digitize.ingest import ingest_dossier
try:
    ingest_dossier(Path({path!r}))
except UnsafePathError as exc:
    print(exc)
"""


def test_fifo_named_like_a_scan_is_refused_without_hanging(tmp_path: Path) -> None:
    """A FIFO named p1.jpg would block open() forever: it is refused from stat alone (run in a
    child with a timeout, so a regression fails instead of hanging the suite)."""
    folder = tmp_path / "hs"
    (folder / "c1").mkdir(parents=True)
    save_png(folder / "c1" / "p0.png", text_page(200, 283), dpi=50)
    os.mkfifo(folder / "c1" / "p1.jpg")
    done = subprocess.run(
        [sys.executable, "-c", _INGEST_FIFO.format(path=str(folder))],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr
    assert "hs/c1/p1.jpg" in done.stdout and "FIFO" in done.stdout
    with pytest.raises(UnsafePathError) as info:  # the same in-process, for the exit code
        ingest_dossier(folder)
    assert info.value.exit_code == ExitCode.UNSAFE_PATH


def test_single_fifo_argument_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "scan.pdf"
    os.mkfifo(fifo)
    with pytest.raises(UnsafePathError, match="FIFO"):
        ingest_dossier(fifo)


# --- memory and size limits ------------------------------------------------------------------
_SIXTEEN = """
import resource
from pathlib import Path
from digitize.ingest import IngestSettings, ingest_dossier, load_page_pixels
settings = IngestSettings(allow_grayscale=True, min_dpi=50)
page = ingest_dossier(Path({path!r}), settings).components[0].pages[0]
pixels = load_page_pixels(page, settings)
print(pixels.dtype, pixels.shape, int(pixels[0, 0]), int(pixels[0, -1]))
"""


def test_sixteen_bit_gray_page_decoded_without_a_float_copy(tmp_path: Path) -> None:
    """A 48 Mpx 16-bit gray page: integer scaling keeps the peak near the 16-bit image itself
    (a float64 copy would add 8 bytes per pixel: over 1 GB here)."""
    width, height = 6000, 8000
    ramp = np.linspace(0, 65535, width, dtype=np.uint32).astype(np.uint16)
    wide = np.broadcast_to(ramp, (height, width)).copy()
    wide[1000:7000:40, 500:5500] = 2000  # some "text" so the page is not blank
    path = tmp_path / "gray16.png"
    Image.fromarray(wide).save(path, dpi=(300, 300))
    del wide
    run = run_measured(_SIXTEEN.format(path=str(path)), timeout_s=240)
    assert run.returncode == 0, run.stderr
    dtype, shape_h, shape_w, first, last = run.stdout.replace("(", "").replace(")", "").replace(
        ",", ""
    ).split()
    assert (dtype, int(shape_h), int(shape_w)) == ("uint8", height, width)
    assert (int(first), int(last)) == (0, 255)
    assert run.max_rss_mb < 900, run.max_rss_mb


def _tiff_with_huge_strip_table(path: Path, entries: int) -> Path:
    """A little-endian TIFF whose StripOffsets/StripByteCounts claim ``entries`` strips."""
    width, height = 64, 64
    table_bytes = 4 * entries
    ifd_offset = 8
    tags = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
        (262, 3, 1, 1), (273, 4, entries, 0), (277, 3, 1, 1), (278, 4, 1, 1),
        (279, 4, entries, 0),
    ]
    ifd_size = 2 + 12 * len(tags) + 4
    offsets_at = ifd_offset + ifd_size
    counts_at = offsets_at + table_bytes
    pixels_at = counts_at + table_bytes
    entries_bytes = b""
    for tag, typ, count, value in tags:
        if tag == 273:
            value = offsets_at
        elif tag == 279:
            value = counts_at
        entries_bytes += struct.pack("<HHII", tag, typ, count, value)
    offsets = np.full(entries, pixels_at, "<u4").tobytes()
    counts = np.ones(entries, "<u4").tobytes()
    data = (b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(tags))
            + entries_bytes + b"\x00\x00\x00\x00" + offsets + counts + b"\x00" * 64)
    path.write_bytes(data)
    return path


def test_tiff_strip_table_with_millions_of_entries_is_refused(tmp_path: Path) -> None:
    """The TIFF layout walker caps the strip table instead of unpacking 2 M entries."""
    path = _tiff_with_huge_strip_table(tmp_path / "strips.tif", 2_000_000)
    with pytest.raises(CorruptFileError, match="strip table with 2000000 entries"):
        ingest_dossier(path)


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100_000, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_default_pixel_limit_is_80_megapixels(tmp_path: Path) -> None:
    """An 85 Mpx page (over A3 at 600 dpi) is refused by default from its header; Pillow's own
    bomb limit is set to the same number."""
    assert IngestSettings().max_pixels == 80_000_000
    path = tmp_path / "huge.png"
    path.write_bytes(_png_claiming(9000, 9500))
    with pytest.raises(TooLargeError, match="80 Mpx limit"):
        ingest_dossier(path)
    assert Image.MAX_IMAGE_PIXELS == 80_000_000


def test_load_page_pixels_keeps_the_limit(tmp_path: Path) -> None:
    """The worker-side decode applies the same per-page limit as ingest."""
    path = save_png(tmp_path / "p.png", text_page(400, 566), dpi=50)
    page = ingest_dossier(path, IngestSettings(min_dpi=40, allow_grayscale=True))
    with pytest.raises(TooLargeError):
        load_page_pixels(page.components[0].pages[0], IngestSettings(max_pixels=1000))
