"""What reaches the signed PDF from a scan, and whether it is still the scan (R8, R14).

Covers: metadata stripped from pass-through JPEGs with the scan data byte-identical; received
originals (--rescan) with active content flagged for review; page workers detecting a scan
swapped after ingest; ``ingest_dossier_isolated`` returning the same Dossier as in-process and
turning a dead or hung decoding child into a typed error.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image, ImageCms

from digitize.errors import (
    DecoderCrashedError,
    DecodeTimeoutError,
    ExitCode,
    LowResolutionError,
    SourceChangedError,
)
from digitize.ingest import (
    IngestSettings,
    forget_verified_sources,
    ingest_dossier,
    ingest_dossier_isolated,
    load_page_pixels,
    read_page_encoded,
)
from tests.helpers_images import (
    PdfImage,
    a4_px,
    jpeg_bytes,
    save_jpeg,
    save_png,
    save_tiff,
    text_page,
    write_scan_pdf,
)

W200, H200 = a4_px(200)


def segments(data: bytes) -> list[tuple[int, bytes]]:
    """An independent JPEG marker walk for the tests: (marker, bytes) up to EOI inclusive."""
    out = [(0xD8, data[:2])]
    pos = 2
    while True:
        while data[pos + 1] == 0xFF:
            pos += 1
        marker = data[pos + 1]
        if marker == 0xD9:
            out.append((marker, data[pos : pos + 2]))
            return out
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        end = pos + 2 + length
        if marker == 0xDA:  # scan data runs to the next marker that is not RST or stuffing
            while not (data[end] == 0xFF and data[end + 1] not in (0x00, *range(0xD0, 0xD8))):
                end += 1
        out.append((marker, data[pos:end]))
        pos = end


def decoder_bytes(data: bytes) -> bytes:
    """Everything a JPEG decoder reads: every segment but APPn and COM."""
    return b"".join(seg for m, seg in segments(data) if not (0xE0 <= m <= 0xEF or m == 0xFE))


# --- pass-through JPEG -----------------------------------------------------------------------
def test_passthrough_jpeg_loses_metadata_keeps_scan_data(tmp_path: Path) -> None:
    """EXIF (with GPS), XMP, a comment and bytes after EOI never reach the PDF; the tables,
    frame, scan headers and entropy-coded data are byte-identical; the ICC profile is carried
    separately; the pixels decode exactly as the scan's."""
    colour = text_page(W200, H200, seed=4, colour=True, seal=True)
    exif = Image.Exif()
    exif[306] = "2025:03:19 09:15:02"
    exif[0x8825] = {1: "N", 2: (21.0, 1.0, 30.0)}  # GPS position of the counter
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    Image.fromarray(colour).save(
        buffer, "JPEG", quality=90, dpi=(200, 200), exif=exif.tobytes(), icc_profile=icc,
        comment=b"scanned by CANON-SERIAL-123", xmp=b"<x:xmpmeta>secret</x:xmpmeta>",
    )
    original = buffer.getvalue() + b"TRAILING-BYTES-AFTER-EOI"
    path = tmp_path / "scan.jpg"
    path.write_bytes(original)
    page = ingest_dossier(path).components[0].pages[0]
    encoded = read_page_encoded(page)
    assert encoded is not None and encoded.filter == "DCTDecode" and encoded.passthrough
    for secret in (b"Exif", b"GPS", b"CANON-SERIAL", b"xmpmeta", b"TRAILING", b"ICC_PROFILE"):
        assert secret not in encoded.data, secret
    assert decoder_bytes(encoded.data) == decoder_bytes(original)
    assert encoded.data.endswith(b"\xff\xd9")
    kept = {m for m, _ in segments(encoded.data)}
    assert 0xE1 not in kept and 0xFE not in kept and 0xE2 not in kept
    assert encoded.icc_profile == icc
    with Image.open(io.BytesIO(encoded.data)) as stripped, Image.open(path) as scan:
        assert np.array_equal(np.asarray(stripped), np.asarray(scan))


def test_passthrough_jpeg_in_pdf_is_stripped_too(tmp_path: Path) -> None:
    colour = text_page(W200, H200, seed=5, colour=True)
    exif = Image.Exif()
    exif[0x010F] = "Scanner maker"
    buffer = io.BytesIO()
    Image.fromarray(colour).save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    data = buffer.getvalue()
    pdf = write_scan_pdf(tmp_path / "s.pdf", [PdfImage(data, "/DCTDecode", W200, H200, 200)])
    page = ingest_dossier(pdf).components[0].pages[0]
    encoded = read_page_encoded(page)
    assert encoded is not None and b"Scanner maker" not in encoded.data
    assert decoder_bytes(encoded.data) == decoder_bytes(data)


# --- received originals with active content --------------------------------------------------
def _with_active_content(path: Path) -> Path:
    arr = text_page(W200, H200, colour=True)
    write_scan_pdf(path, [PdfImage(jpeg_bytes(arr), "/DCTDecode", W200, H200, 200)], text=True)
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        js = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
        pdf.Root.OpenAction = pdf.make_indirect(js)
        spec = pikepdf.AttachedFileSpec(pdf, b"payload", filename="x.exe")
        pdf.attachments["x.exe"] = spec
        pdf.pages[0].obj.AA = pikepdf.Dictionary(
            O=pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("cmd.exe"))
        )
        pdf.save(path)
    return path


def test_rescan_original_with_active_content_is_flagged(tmp_path: Path) -> None:
    """H6: a received PDF kept byte-identical (--rescan) that carries JavaScript, a launch
    action and an embedded file gets a review flag listing them; a plain one does not."""
    settings = IngestSettings(pdf_with_text="rescan")
    active = _with_active_content(tmp_path / "active.pdf")
    component = ingest_dossier(active, settings).components[0]
    (flag,) = [f for f in component.flags if f.code == "original_active_content"]
    assert flag.severity == "review"
    for words in ("JavaScript", "/OpenAction", "/Launch", "embedded files", "/AA"):
        assert words in flag.message, words
    assert "pdf_rescanned" in {f.code for f in component.flags}  # kept as an original
    plain = write_scan_pdf(
        tmp_path / "plain.pdf",
        [PdfImage(jpeg_bytes(text_page(W200, H200, colour=True)), "/DCTDecode", W200, H200, 200)],
        text=True,
    )
    codes = {f.code for f in ingest_dossier(plain, settings).components[0].flags}
    assert "original_active_content" not in codes and "pdf_rescanned" in codes


# --- the scan changes after ingest (TOCTOU) --------------------------------------------------
def test_swapped_scan_is_detected_by_the_page_worker(tmp_path: Path) -> None:
    """R8: a file replaced between ingest and the page worker (same name, other content, or a
    symlink to another citizen's scan) raises SourceChangedError (23) in both readers; bytes
    already verified are decoded as they were, whatever is on disk now."""
    forget_verified_sources()
    path = save_jpeg(tmp_path / "p1.jpg", text_page(W200, H200, seed=1, colour=True), dpi=200)
    other = save_jpeg(tmp_path / "other.jpg", text_page(W200, H200, seed=2, colour=True), dpi=200)
    page = ingest_dossier(path).components[0].pages[0]
    original = path.read_bytes()
    path.write_bytes(other.read_bytes())
    with pytest.raises(SourceChangedError) as info:
        load_page_pixels(page)
    assert info.value.exit_code == ExitCode.SOURCE_CHANGED == 23 and "p1.jpg" in str(info.value)
    with pytest.raises(SourceChangedError):
        read_page_encoded(page)
    path.unlink()
    path.symlink_to(other)
    with pytest.raises(SourceChangedError):
        load_page_pixels(page)
    path.unlink()
    path.write_bytes(original)
    good = load_page_pixels(page)  # restored: verified and decoded
    path.write_bytes(other.read_bytes())  # swapped after verification
    assert np.array_equal(load_page_pixels(page), good)  # decodes the verified bytes
    forget_verified_sources()
    with pytest.raises(SourceChangedError):
        load_page_pixels(page)


def test_deleted_scan_is_a_source_change(tmp_path: Path) -> None:
    forget_verified_sources()
    path = save_png(tmp_path / "p.png", text_page(400, 566), dpi=50)
    page = ingest_dossier(path, IngestSettings(min_dpi=40, allow_grayscale=True))
    path.unlink()
    with pytest.raises(SourceChangedError, match="no longer there"):
        load_page_pixels(page.components[0].pages[0])


# --- isolated ingest -------------------------------------------------------------------------
def _mixed_dossier(tmp_path: Path) -> Path:
    folder = tmp_path / "HS-ISO"
    (folder / "c1").mkdir(parents=True)
    save_jpeg(folder / "c1" / "p1.jpg", text_page(W200, H200, seed=1, colour=True), dpi=200)
    save_tiff(folder / "c2.tif", [text_page(W200, H200, seed=s) for s in (2, 3)], dpi=200)
    arr = text_page(W200, H200, seed=4, colour=True)
    write_scan_pdf(folder / "c3.pdf", [PdfImage(jpeg_bytes(arr), "/DCTDecode", W200, H200, 200)])
    (folder / "dossier.yaml").write_text("dossier_code: 000.00.12.H62-201105-0004\n")
    return folder


def test_isolated_ingest_returns_the_same_dossier(tmp_path: Path) -> None:
    folder = _mixed_dossier(tmp_path)
    settings = IngestSettings(allow_grayscale=True)
    assert ingest_dossier_isolated(folder, settings) == ingest_dossier(folder, settings)


def test_isolated_ingest_raises_the_childs_typed_error(tmp_path: Path) -> None:
    path = save_png(tmp_path / "low.png", text_page(400, 566), dpi=50)
    with pytest.raises(LowResolutionError) as info:
        ingest_dossier_isolated(path)
    assert str(info.value).startswith("low.png (page 1): 50 dpi")


def _children_running_isolated() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid")), "")
        if ppid == str(os.getpid()) and b"digitize.ingest.isolated" in cmdline:
            found.append(int(entry.name))
    return found


def test_isolated_child_killed_becomes_a_typed_error(tmp_path: Path) -> None:
    """The decoding child killed mid-dossier (as the kernel's OOM killer would) is a clean
    DecoderCrashedError (103) naming the dossier being read, never a hang or a raw error."""
    folder = tmp_path / "big"
    folder.mkdir()
    for number in range(60):
        save_png(folder / f"p{number:02d}.png", text_page(W200, H200, seed=number), dpi=200)
    result: dict[str, BaseException] = {}

    def run() -> None:
        try:
            ingest_dossier_isolated(folder, IngestSettings(allow_grayscale=True))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    for _ in range(600):
        children = _children_running_isolated()
        if children:
            break
        time.sleep(0.05)
    assert children, "the isolated child never started"
    # Killed soon after it starts: a quiet CI machine reads 30 pages in under two seconds, and a
    # child that already finished cannot be killed. Dying during imports or during the pages is
    # the same crash to the parent.
    time.sleep(0.3)
    os.kill(children[0], signal.SIGKILL)
    thread.join(timeout=120)
    error = result.get("error")
    assert isinstance(error, DecoderCrashedError), error
    assert error.exit_code == ExitCode.DECODER_CRASHED == 103
    assert "SIGKILL" in str(error) and "big" in str(error)


def test_isolated_page_deadline(tmp_path: Path) -> None:
    """A page that takes longer than decode_timeout_s stops the child: DecodeTimeoutError (102)
    naming the file and page (a hostile page that makes a decoder hang ends the same way)."""
    huge = text_page(7000, 9900, seed=1)  # 69 Mpx: decoding and QA take well over 0.3 s
    path = save_png(tmp_path / "slow.png", huge, dpi=600)
    settings = IngestSettings(allow_grayscale=True, decode_timeout_s=0.3)
    with pytest.raises(DecodeTimeoutError) as info:
        ingest_dossier_isolated(path, settings)
    assert info.value.exit_code == ExitCode.DECODE_TIMEOUT == 102
    assert "slow.png" in str(info.value)
