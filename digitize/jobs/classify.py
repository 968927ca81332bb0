"""Which outcome kind an error means: the dossier's fault, the station's, or a bug.

Decided by the error's stable exit code (``digitize.errors.ExitCode``), so a new error class
is classified by the code it is given:

* bad input — 10–19 (refused input), 20–23 (quality, R4–R5, R10; a scan changed under the
  run, R8), 101–102 (a decompression bomb, a decode past its deadline), 30 (OCR failed under a
  strict profile), 70 (a job's only configuration is its own ``dossier.yaml``: the station's
  profile is loaded before any job);
* station fault, retryable — 50 (signing: OCSP/CRL or the CSC service unreachable), 55 (TSA
  unavailable), 57 (OCSP/CRL, CSC service or token unavailable after retries), 56 (signer set-up: token unplugged, service refused the credential), 80
  (output: cannot write), a dead page worker, and the operating system saying the disk is
  full, read-only or failing, or memory ran out;
* station fault, needs a person — 51–54 (certificate revoked, expired, not personal; wrong
  PIN: never retried, tokens lock) and 63 (the station does not trust its own signer);
* bug — everything else: 1 (internal), 40 (PDF/A packaging), other verification failures
  of a bundle the tool just made, and any exception that is not a ``DigitizeError``.
"""

from __future__ import annotations

import errno
from concurrent.futures.process import BrokenProcessPool

from digitize.errors import DigitizeError, ExitCode, PageWorkerDiedError
from digitize.jobs.models import OutcomeKind

BAD_INPUT_CODES = frozenset(
    {*range(int(ExitCode.INPUT), int(ExitCode.EMPTY_DOSSIER) + 1)}
    | {int(ExitCode.QUALITY), int(ExitCode.LOW_RESOLUTION), int(ExitCode.PAGE_COUNT_MISMATCH)}
    | {int(ExitCode.SOURCE_CHANGED), int(ExitCode.DECOMPRESSION_BOMB), int(ExitCode.DECODE_TIMEOUT)}
    | {int(ExitCode.OCR), int(ExitCode.CONFIG)}
)
RETRY_LATER_CODES = frozenset(
    {
        int(ExitCode.SIGNING),
        int(ExitCode.TSA_UNAVAILABLE),
        int(ExitCode.SIGNER_CONFIG),
        int(ExitCode.SIGNER_UNAVAILABLE),
        int(ExitCode.OUTPUT),
    }
)
NEEDS_PERSON_CODES = frozenset(
    {
        int(ExitCode.CERT_REVOKED),
        int(ExitCode.CERT_EXPIRED),
        int(ExitCode.CERT_NOT_PERSONAL),
        int(ExitCode.BAD_PIN),
        int(ExitCode.VERIFY_TRUST),
    }
)
STATION_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.ENOMEM})


def kind_of_code(code: int) -> tuple[OutcomeKind, bool]:
    """(kind, retryable) for an exit code."""
    if code in BAD_INPUT_CODES:
        return "bad_input", False
    if code in RETRY_LATER_CODES:
        return "station_fault", True
    if code in NEEDS_PERSON_CODES:
        return "station_fault", False
    return "bug", False


def classify(exc: BaseException) -> tuple[OutcomeKind, bool]:
    """(kind, retryable) for an exception raised while running a job."""
    if isinstance(exc, PageWorkerDiedError | BrokenProcessPool | MemoryError):
        return "station_fault", True
    if isinstance(exc, DigitizeError):
        return kind_of_code(int(exc.exit_code))
    if isinstance(exc, OSError) and exc.errno in STATION_ERRNOS:
        return "station_fault", True
    return "bug", False


__all__ = ["classify", "kind_of_code"]
