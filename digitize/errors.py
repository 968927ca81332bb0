"""One exception hierarchy with stable exit codes.

Every error the library raises on purpose is a ``DigitizeError``. Each subclass carries its
own exit code (``ExitCode``) so that the CLI maps exceptions to exit codes in one place and
scripts can rely on the numbers. The numbers are part of the public contract: never reuse or
renumber one; add new ones.

Messages are one line and name the file (and page, when there is one) and, where it helps,
what to do about it.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2

    INPUT = 10
    EMPTY_FILE = 11
    TRUNCATED_FILE = 12
    CORRUPT_FILE = 13
    UNSUPPORTED_FORMAT = 14
    TOO_LARGE = 15
    UNSAFE_PATH = 16
    ENCRYPTED_PDF = 17
    PDF_NOT_A_SCAN = 18
    EMPTY_DOSSIER = 19

    QUALITY = 20
    LOW_RESOLUTION = 21
    PAGE_COUNT_MISMATCH = 22
    SOURCE_CHANGED = 23

    OCR = 30

    PDF = 40

    SIGNING = 50
    CERT_REVOKED = 51
    CERT_EXPIRED = 52
    CERT_NOT_PERSONAL = 53
    BAD_PIN = 54
    TSA_UNAVAILABLE = 55
    SIGNER_CONFIG = 56
    SIGNER_UNAVAILABLE = 57
    PREPARED_MISMATCH = 58

    VERIFY = 60
    VERIFY_HASH = 61
    VERIFY_SIGNATURE = 62
    VERIFY_TRUST = 63
    VERIFY_STRUCTURE = 64
    VERIFY_PDFA = 65
    VERIFY_REVOCATION_UNKNOWN = 66
    VERIFY_REVIEW = 69  # the review record does not match the manifest or its signer

    CONFIG = 70

    OUTPUT = 80

    BATCH_PARTIAL = 90

    # input refused while decoding: hostile content found only once decoding starts
    DECOMPRESSION_BOMB = 101
    DECODE_TIMEOUT = 102
    DECODER_CRASHED = 103
    # deadlines and repeated crashes of the station while it works on one dossier
    PAGE_TIMEOUT = 104
    DOSSIER_TIMEOUT = 105
    DOSSIER_CRASHED = 106

    # a person's review of a bundle (digitize review)
    REVIEW = 110
    REVIEW_CORRECTIONS_FILE = 111  # unreadable or malformed corrections
    REVIEW_UNKNOWN_TARGET = 112  # a file, field or page the bundle does not have
    REVIEW_INVALID_VALUE = 113  # a value that fails its format (date, số, ký hiệu …)
    REVIEW_NOT_VERIFIED = 114  # the bundle does not verify: nothing is reviewed or written
    REVIEW_REMOTE_BIND = 115  # the review server would listen beyond this machine

    INTERRUPTED = 130


class DigitizeError(Exception):
    """Root of every error raised on purpose by ``digitize``."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        page: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.page = page
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.page is not None:
                where += f" (page {self.page})"
            where += ": "
        elif self.page is not None:
            where = f"page {self.page}: "
        text = f"{where}{self.message}"
        if self.hint:
            text += f" — {self.hint}"
        return text.replace("\n", " ")

    def to_dict(self) -> dict[str, object]:
        return {
            "error": type(self).__name__,
            "exit_code": int(self.exit_code),
            "message": self.one_line(),
            "path": self.path,
            "page": self.page,
        }


# --- input ---------------------------------------------------------------------------------
class InputError(DigitizeError):
    exit_code = ExitCode.INPUT


class EmptyFileError(InputError):
    exit_code = ExitCode.EMPTY_FILE


class TruncatedFileError(InputError):
    exit_code = ExitCode.TRUNCATED_FILE


class CorruptFileError(InputError):
    exit_code = ExitCode.CORRUPT_FILE


class UnsupportedFormatError(InputError):
    exit_code = ExitCode.UNSUPPORTED_FORMAT


class TooLargeError(InputError):
    """Decompression bombs, absurd dimensions, files over the size cap."""

    exit_code = ExitCode.TOO_LARGE


class UnsafePathError(InputError):
    """Symlinks leaving the input tree, overlapping inbox/output, FIFOs, devices and sockets
    named like scans, and similar set-ups."""

    exit_code = ExitCode.UNSAFE_PATH


class EncryptedPdfError(InputError):
    exit_code = ExitCode.ENCRYPTED_PDF


class PdfNotAScanError(InputError):
    """A PDF that already carries text or a digital signature (not a fresh scan)."""

    exit_code = ExitCode.PDF_NOT_A_SCAN


class EmptyDossierError(InputError):
    exit_code = ExitCode.EMPTY_DOSSIER


class DecompressionBombError(TooLargeError):
    """A compressed stream (PDF content, image, ICC profile, JBIG2 globals) inflates past the
    decoder limits: refused while decoding, before memory runs out."""

    exit_code = ExitCode.DECOMPRESSION_BOMB


class DecodeTimeoutError(InputError):
    """Decoding one page (or one dossier in the isolated runner) took longer than its deadline:
    a hostile page that makes a decoder hang."""

    exit_code = ExitCode.DECODE_TIMEOUT


class DecoderCrashedError(InputError):
    """The isolated decoding process died (a decoder crash, or killed at its memory limit)
    while reading the named input."""

    exit_code = ExitCode.DECODER_CRASHED


class PageTimeoutError(DecodeTimeoutError):
    """A page worker did not return one page within ``pipeline.page_timeout_s`` (decoding, clean-up
    or OCR hung on it): the page is named, the workers are replaced, the run goes on."""

    exit_code = ExitCode.PAGE_TIMEOUT


class DossierTimeoutError(DecodeTimeoutError):
    """A dossier was not bundled within its deadline (``pipeline.dossier_timeout_s`` plus
    ``pipeline.dossier_timeout_per_page_s`` per page, counted from the end of ingest)."""

    exit_code = ExitCode.DOSSIER_TIMEOUT


class DossierCrashedError(DecoderCrashedError):
    """The station process died (killed, out of memory, a crash) every time it worked on this
    dossier: after ``watch.crash_limit`` unfinished attempts it is quarantined, not retried."""

    exit_code = ExitCode.DOSSIER_CRASHED


# --- quality -------------------------------------------------------------------------------
class QualityError(DigitizeError):
    exit_code = ExitCode.QUALITY


class LowResolutionError(QualityError):
    exit_code = ExitCode.LOW_RESOLUTION


class PageCountMismatchError(QualityError):
    exit_code = ExitCode.PAGE_COUNT_MISMATCH


class SourceChangedError(QualityError):
    """R8: a scan no longer has the SHA-256 recorded at ingest (replaced or edited between
    ingest and the page worker that reads it again)."""

    exit_code = ExitCode.SOURCE_CHANGED


# --- stages --------------------------------------------------------------------------------
class OcrError(DigitizeError):
    exit_code = ExitCode.OCR


class PdfError(DigitizeError):
    exit_code = ExitCode.PDF


class SigningError(DigitizeError):
    exit_code = ExitCode.SIGNING


class CertificateRevokedError(SigningError):
    exit_code = ExitCode.CERT_REVOKED


class CertificateExpiredError(SigningError):
    exit_code = ExitCode.CERT_EXPIRED


class CertificateNotPersonalError(SigningError):
    exit_code = ExitCode.CERT_NOT_PERSONAL


class BadPinError(SigningError):
    exit_code = ExitCode.BAD_PIN


class SignerUnavailableError(SigningError):
    """A signing service could not be reached after the retries (OCSP/CRL responder, CSC
    service, the token absent): a station fault, not bad input — retry later."""

    exit_code = ExitCode.SIGNER_UNAVAILABLE


class TimestampUnavailableError(SignerUnavailableError):
    """The time-stamp service could not be reached after the retries: retry later."""

    exit_code = ExitCode.TSA_UNAVAILABLE


class SignerConfigError(SigningError):
    exit_code = ExitCode.SIGNER_CONFIG


class PreparedDocumentError(SigningError):
    """A prepared (two-phase) document is not the one prepared, not for this digitiser, or
    already signed."""

    exit_code = ExitCode.PREPARED_MISMATCH


# --- verification --------------------------------------------------------------------------
class VerifyError(DigitizeError):
    exit_code = ExitCode.VERIFY


class HashMismatchError(VerifyError):
    exit_code = ExitCode.VERIFY_HASH


class SignatureInvalidError(VerifyError):
    exit_code = ExitCode.VERIFY_SIGNATURE


class UntrustedError(VerifyError):
    exit_code = ExitCode.VERIFY_TRUST


class BundleStructureError(VerifyError):
    exit_code = ExitCode.VERIFY_STRUCTURE


class PdfaInvalidError(VerifyError):
    exit_code = ExitCode.VERIFY_PDFA


class RevocationUnknownError(VerifyError):
    """Every check passed, but nothing showed the signer's certificate unrevoked at signing
    time (no OCSP/CRL in the bundle, offline): valid as far as could be checked, not proven."""

    exit_code = ExitCode.VERIFY_REVOCATION_UNKNOWN


# --- configuration and output --------------------------------------------------------------
class ConfigError(DigitizeError):
    exit_code = ExitCode.CONFIG


class OutputError(DigitizeError):
    exit_code = ExitCode.OUTPUT


class PageWorkerDiedError(DigitizeError):
    """A page worker process died (OOM killer, kill -9): the pool is broken and a long-running
    caller (batch, watch) must replace it before the next dossier."""

    exit_code = ExitCode.INTERNAL


class BatchPartialError(DigitizeError):
    exit_code = ExitCode.BATCH_PARTIAL


# --- review --------------------------------------------------------------------------------
class ReviewError(DigitizeError):
    exit_code = ExitCode.REVIEW


class CorrectionsFileError(ReviewError):
    exit_code = ExitCode.REVIEW_CORRECTIONS_FILE


class UnknownReviewTargetError(ReviewError):
    exit_code = ExitCode.REVIEW_UNKNOWN_TARGET


class InvalidReviewValueError(ReviewError):
    exit_code = ExitCode.REVIEW_INVALID_VALUE


class BundleNotVerifiedError(ReviewError):
    exit_code = ExitCode.REVIEW_NOT_VERIFIED


class RemoteBindError(ReviewError):
    exit_code = ExitCode.REVIEW_REMOTE_BIND


class InterruptedRunError(DigitizeError):
    exit_code = ExitCode.INTERRUPTED


def all_error_classes() -> list[type[DigitizeError]]:
    """Every error class, root first (used by docs and the exit-code table test)."""
    seen: list[type[DigitizeError]] = []
    stack: list[type[DigitizeError]] = [DigitizeError]
    while stack:
        cls = stack.pop(0)
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


def error_for_code(code: int, message: str) -> DigitizeError:
    """A ``DigitizeError`` of the first class that carries exit code ``code`` (so a caller that
    only has an outcome's code can still exit with it)."""
    for cls in all_error_classes():
        if int(cls.exit_code) == code and cls is not DigitizeError:
            return cls(message)
    return DigitizeError(message)
