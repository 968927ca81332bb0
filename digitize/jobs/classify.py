"""Which outcome kind an error means: the dossier's fault, the station's, or a bug.

Decided by the error's stable exit code (``digitize.errors.ExitCode``), so a new error class
is classified by the code it is given:

* bad input — 10–19 (refused input), 20–23 (quality, R4–R5, R10; a scan that changed while it
  was processed), 30 (OCR failed under a strict profile), 70 (a job's only configuration is its
  own ``dossier.yaml``: the station's profile is loaded before any job), 101–106 (a bomb, a
  decoder or page that hangs or crashes, a dossier past its deadline or that kept killing the
  station);
* station fault, retry later — 50 (signing: OCSP/CRL or a signing service unreachable), 55
  (TSA unavailable), 57 (signer unavailable: token absent, service down), 80 (output: cannot
  write; a full, read-only or failing disk is reported with this code), a dead page worker,
  memory exhausted. Nothing about the dossier is wrong: a station keeps it and tries again
  once the station is well (``retry_later``);
* station fault, needs a person — 51–54 (certificate revoked, expired, not personal; wrong
  PIN: never retried, tokens lock), 56 (signer set-up: the profile or the key source is
  wrong) and 63 (the station does not trust its own signer). A station stops with the code
  (``needs_person``): retrying cannot help and a PIN must not be tried again;
* bug — everything else: 1 (internal), 40 (PDF/A packaging), other verification failures
  of a bundle the tool just made, and any exception that is not a ``DigitizeError``.
"""

from __future__ import annotations

import errno
from concurrent.futures.process import BrokenProcessPool

from digitize.errors import DigitizeError, ExitCode, PageWorkerDiedError
from digitize.jobs.models import JobOutcome, OutcomeKind

BAD_INPUT_CODES = frozenset(
    {*range(int(ExitCode.INPUT), int(ExitCode.EMPTY_DOSSIER) + 1)}
    | {*range(int(ExitCode.QUALITY), int(ExitCode.SOURCE_CHANGED) + 1)}
    | {int(ExitCode.OCR), int(ExitCode.CONFIG)}
    | {*range(int(ExitCode.DECOMPRESSION_BOMB), int(ExitCode.DOSSIER_CRASHED) + 1)}
)
RETRY_LATER_CODES = frozenset(
    {
        int(ExitCode.SIGNING),
        int(ExitCode.TSA_UNAVAILABLE),
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
        int(ExitCode.SIGNER_CONFIG),
        int(ExitCode.VERIFY_TRUST),
    }
)
# Exit codes a supervisor (systemd's RestartPreventExitStatus) must not restart a station on:
# a person must act first — the codes above, an unsafe set-up or another watcher holding the
# inbox (16), a configuration error (70).
NO_RESTART_EXIT_CODES = NEEDS_PERSON_CODES | {int(ExitCode.UNSAFE_PATH), int(ExitCode.CONFIG)}
# The operating system saying the station, not the dossier, is in trouble.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
STATION_ERRNOS = STORAGE_ERRNOS | {errno.ENOMEM}


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


def retry_later(outcome: JobOutcome) -> bool:
    """The station cannot sign or write right now (codes 50, 55, 57, 80): keep the dossier,
    take no new one, check the station again after a pause. A dead page worker is retryable
    too but not a reason to pause (the pool is already replaced): not included."""
    return (
        outcome.kind == "station_fault"
        and outcome.retryable
        and outcome.exit_code in RETRY_LATER_CODES
    )


def needs_person(outcome: JobOutcome) -> bool:
    """A station fault no retry can cure (51–54, 56, 63): stop with the code, keep the dossier."""
    return outcome.kind == "station_fault" and not outcome.retryable


__all__ = [
    "BAD_INPUT_CODES",
    "NEEDS_PERSON_CODES",
    "NO_RESTART_EXIT_CODES",
    "RETRY_LATER_CODES",
    "STATION_ERRNOS",
    "STORAGE_ERRNOS",
    "classify",
    "kind_of_code",
    "needs_person",
    "retry_later",
]
