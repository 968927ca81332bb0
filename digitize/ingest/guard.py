"""One funnel for hostile input: decoder limits, and every library exception made typed.

``guard`` turns any PIL, qpdf, jbig2dec or OS exception raised while reading a scan into the
right ``DigitizeError`` naming the file and page; nothing else may leave ingest.

``ensure_decoder_limits`` (called by every entry point) sets, once per process:

* qpdf's decompression limits (``pikepdf.settings.set_qpdf_limits``): a Flate, RunLength, PNG
  or TIFF-predictor stream may inflate to at most ``STREAM_MAX_BYTES``. That is the largest
  legitimate page image (``max_pixels`` default 80 Mpx × 3 samples × 2 bytes, 16-bit RGB, plus
  predictor bytes); qpdf's default is no limit, so a 10 MB PDF could inflate to 10 GB. A host
  application's stricter limit is kept.
* Pillow's ``MAX_IMAGE_PIXELS`` to the default ``max_pixels`` (Pillow's hard error then comes
  at twice that; our own header check refuses above ``max_pixels`` first).
* pikepdf's JBIG2 decoder with a deadline on the ``jbig2dec`` run (``decode_timeout_s`` of the
  default settings): pikepdf's own runs it without one.
"""

from __future__ import annotations

import functools
import subprocess
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import pikepdf
import pikepdf.jbig2
from PIL import Image

from digitize.errors import (
    CorruptFileError,
    DecodeTimeoutError,
    DecompressionBombError,
    DigitizeError,
    EncryptedPdfError,
    TooLargeError,
    TruncatedFileError,
    UnsupportedFormatError,
)
from digitize.settings import IngestSettings

_DEFAULTS = IngestSettings()
STREAM_MAX_BYTES = 512 * 1024**2
_lock = threading.Lock()
_applied = False


def ensure_decoder_limits() -> None:
    """Apply the process-wide decoder limits once (idempotent, thread-safe)."""
    global _applied
    if _applied:
        return
    with _lock:
        if _applied:
            return
        current = pikepdf.settings.get_qpdf_limits()

        def limit(name: str) -> int:
            value = int(current.get(name, 0))
            return STREAM_MAX_BYTES if value == 0 or value > STREAM_MAX_BYTES else value

        pikepdf.settings.set_qpdf_limits(
            flate_max_memory=limit("flate_max_memory"),
            png_max_memory=limit("png_max_memory"),
            run_length_max_memory=limit("run_length_max_memory"),
            tiff_max_memory=limit("tiff_max_memory"),
        )
        Image.MAX_IMAGE_PIXELS = _DEFAULTS.max_pixels
        if type(pikepdf.jbig2.get_decoder()) is pikepdf.jbig2.JBIG2Decoder:
            timed_run = functools.partial(subprocess.run, timeout=_DEFAULTS.decode_timeout_s)
            pikepdf.jbig2.set_decoder(pikepdf.jbig2.JBIG2Decoder(subprocess_run=timed_run))
        _applied = True


_TRUNCATED_WORDS = (
    "truncat",
    "unexpected end",
    "premature end",
    "end of file",
    "eof",
    "unpack requires a buffer",
    "not enough data",
    "buffer is not large enough",
    "incomplete",
)


def classify_exception(exc: BaseException) -> type[DigitizeError]:
    if isinstance(exc, DigitizeError):
        return type(exc)
    if isinstance(exc, subprocess.TimeoutExpired):
        return DecodeTimeoutError
    text = str(exc).casefold()
    if "memory limit exceeded" in text:  # qpdf: "PL_Flate memory limit exceeded"
        return DecompressionBombError
    if isinstance(exc, MemoryError | Image.DecompressionBombError):
        return TooLargeError
    if isinstance(exc, EOFError):
        return TruncatedFileError
    if any(word in text for word in _TRUNCATED_WORDS):
        return TruncatedFileError
    if isinstance(exc, pikepdf.PasswordError):
        return EncryptedPdfError
    if isinstance(exc, pikepdf.DependencyError):
        return UnsupportedFormatError
    return CorruptFileError


_MESSAGES: dict[type[DigitizeError], str] = {
    TruncatedFileError: "file is truncated ({detail})",
    TooLargeError: "image too large to decode safely ({detail})",
    DecompressionBombError: "a compressed stream inflates past the decoder limit ({detail})",
    DecodeTimeoutError: "decoding did not finish in time ({detail})",
    UnsupportedFormatError: "cannot decode ({detail})",
}


@contextmanager
def guard(display: str, page: int | None = None, what: str = "cannot read") -> Iterator[None]:
    """Turn any library exception into the right ``DigitizeError`` naming the file."""
    try:
        yield
    except DigitizeError as exc:
        if exc.path is not None:
            raise
        # raised deep inside a reader that does not know the file: name it here
        raise type(exc)(exc.message, path=display, page=exc.page or page, hint=exc.hint) from exc
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - hostile input reaches deep into PIL/qpdf
        cls = classify_exception(exc)
        detail = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200]
        message = _MESSAGES.get(cls, what + ": corrupt data ({detail})").format(detail=detail)
        raise cls(message, path=display, page=page) from exc


@contextmanager
def pil_bomb_guard() -> Iterator[None]:
    # Our own header check (settings.max_pixels) runs right after open; PIL's warning would
    # only duplicate it. PIL's hard error (> 2 × MAX_IMAGE_PIXELS) is mapped by guard().
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def check_pixels(
    width: int, height: int, settings: IngestSettings, display: str, page: int
) -> None:
    if width <= 0 or height <= 0:
        raise CorruptFileError(f"image has no pixels ({width}×{height})", path=display, page=page)
    if width * height > settings.max_pixels:
        raise TooLargeError(
            f"{width}×{height} px ({width * height / 1e6:.0f} Mpx) exceeds the "
            f"{settings.max_pixels / 1e6:.0f} Mpx limit per page",
            path=display,
            page=page,
        )
