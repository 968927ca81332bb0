"""Tiny real dossiers for the batch and watch tests (one A6 page with two printed lines).

OCR costs about a second per full page; an A6 page at 200 dpi with two lines keeps a whole
dossier (ingest → OCR → PDF/A → signature → bundle → verify) well under that, so the tests
can afford dozens of real dossiers on two cores.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from digitize.jobs import REJECTED_PREFIX
from digitize.models import DigitiserIdentity, SignatureRecord
from digitize.sign import BBoxPt, DigitiserSigner

FONT = Path("/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf")
A6_200DPI = (827, 583)  # landscape A6 (148 × 105 mm) at 200 dpi: small and fast to OCR

LINES = (
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Giấy xác nhận số {n} của Ủy ban nhân dân phường",
)


def page_jpeg(number: int) -> bytes:
    """A 200-dpi A6 JPEG whose second line differs per ``number`` (distinct content hash)."""
    if not FONT.is_file():
        raise AssertionError(f"{FONT} is missing: install fonts-noto-core")
    img = Image.new("L", A6_200DPI, 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(FONT), 30)
    draw.text((60, 180), LINES[0], font=font, fill=0)
    draw.text((60, 260), LINES[1].format(n=number), font=font, fill=0)
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=85, dpi=(200, 200))
    return buffer.getvalue()


def write_tiny_dossier(parent: Path, name: str, number: int, *, marker: bool = False) -> Path:
    """``parent/name/c1/p01.jpg`` (one component, one page); ``READY`` written last if asked."""
    folder = parent / name
    (folder / "c1").mkdir(parents=True)
    (folder / "c1" / "p01.jpg").write_bytes(page_jpeg(number))
    if marker:
        (folder / "READY").write_bytes(b"")
    return folder


def write_corrupt_dossier(parent: Path, name: str, *, marker: bool = False) -> Path:
    """A dossier whose only scan is a JPEG cut after its header: ingest must refuse it."""
    folder = parent / name
    (folder / "c1").mkdir(parents=True)
    (folder / "c1" / "p01.jpg").write_bytes(page_jpeg(9999)[:600])
    if marker:
        (folder / "READY").write_bytes(b"")
    return folder


def write_slowly(parent: Path, name: str, number: int, *, seconds: float, chunks: int = 5) -> Path:
    """Write a dossier the way a slow network scanner does: the page file grows in pauses."""
    data = page_jpeg(number)
    folder = parent / name
    (folder / "c1").mkdir(parents=True)
    step = max(1, len(data) // chunks + 1)
    with open(folder / "c1" / "p01.jpg", "wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start : start + step])
            handle.flush()
            os.fsync(handle.fileno())
            time.sleep(seconds / chunks)
    return folder


def cli_command() -> list[str]:
    """``python -m digitize`` (the real entry point) with the batch/watch commands attached.

    The lead registers ``digitize.cli.commands_batch`` in ``cli/main.py::_register``; until
    that lands the same entry point is reached through ``run_main`` after importing it.
    """
    from digitize.cli import main as cli_main

    cli_main._register()
    if "watch" in cli_main.main.commands:
        return [sys.executable, "-m", "digitize"]
    return [
        sys.executable,
        "-c",
        "import sys; import digitize.cli.commands_batch; "
        "from digitize.cli.main import run_main; sys.argv[0] = 'digitize'; run_main()",
    ]


def run_cli(
    args: list[str], *, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


class ManifestSignedOverOtherBytes(DigitiserSigner):
    """A real signer (it wraps one) whose manifest signature covers other bytes than the
    manifest it is given, as a faulty signing service's might: every bundle it helps write is
    complete but fails verification (manifest signature, exit 62)."""

    def __init__(self, inner: DigitiserSigner) -> None:
        self.inner = inner

    @property
    def identity(self) -> DigitiserIdentity:
        return self.inner.identity

    def sign_pdf(
        self,
        in_path: Path,
        out_path: Path,
        *,
        scan_time: datetime,
        text_boxes_pt: tuple[BBoxPt, ...] = (),
    ) -> SignatureRecord:
        return self.inner.sign_pdf(
            in_path, out_path, scan_time=scan_time, text_boxes_pt=text_boxes_pt
        )

    def sign_detached(self, data: bytes) -> bytes:
        return self.inner.sign_detached(data + b"\n")

    def close(self) -> None:
        self.inner.close()


def rejected_bundles(out_dir: Path, bundle: str) -> list[Path]:
    """Bundles of ``bundle`` the job layer moved aside because they failed verification."""
    return sorted(out_dir.glob(f"{REJECTED_PREFIX}{bundle}-*"))
