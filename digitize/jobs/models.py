"""What the job layer takes and returns: serialisable models, so a job can cross a queue.

A ``DossierJob`` says which dossier to run and where its bundle goes; a ``JobOutcome`` says what
happened, in one of seven kinds a caller can act on without reading messages:

==============  ==========================================================  ===============
kind            meaning                                                     watch / batch
==============  ==========================================================  ===============
done            bundle written, verified (unless verification is off)       done/ / ok
skipped         a bundle made from these scans exists and verifies          done/ / skipped
bad_input       the dossier itself is refused (exit codes 10–30, 70)        quarantine/ / failed
conflict        another bundle (or a damaged one) holds the name            quarantine/ / failed
station_fault   the station, not the dossier: signer, token, TSA/OCSP,      quarantine/ / failed
                disk, a dead page worker; ``retryable`` when a later
                attempt may succeed without a person
bug             anything else (an internal error; a new bundle that fails   quarantine/ / failed
                its own verification for a reason other than trust)
abandoned       given up on request; nothing was written                    stays / not_run
==============  ==========================================================  ===============
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from digitize.models import FrozenModel

OutcomeKind = Literal[
    "done", "skipped", "bad_input", "conflict", "station_fault", "bug", "abandoned"
]
FAILED_KINDS: frozenset[str] = frozenset({"bad_input", "conflict", "station_fault", "bug"})


class DossierJob(FrozenModel):
    """One dossier to digitise. Plain data: it can be queued, logged and re-read."""

    job_id: str  # the key attempts are counted under: watch's claim id, batch's dossier name
    source: Path  # the dossier folder (or a single scan file)
    out_dir: Path  # the bundle goes to ``out_dir/<bundle>``
    name: str  # display name (NFC) of the dossier, for messages and journal records
    bundle: str | None = None  # planned bundle name; None: ``bundle.bundle_name_for(source)``
    content_sha256: str | None = None  # watch's content hash (duplicates, attempts by content)
    tags: dict[str, str] = Field(default_factory=dict)  # copied into every journal record


class Attempts(FrozenModel):
    """How often a job (or a content hash) was started, and how often those attempts ended.

    ``started - ended`` attempts died with their process (kill -9, OOM in the parent, power
    cut): the count a poison-pill rule needs."""

    started: int = 0
    ended: int = 0

    @property
    def unfinished(self) -> int:
        return max(0, self.started - self.ended)


class JobOutcome(FrozenModel):
    """What ``run_job`` did with one ``DossierJob`` (see the module docstring for the kinds)."""

    job_id: str
    dossier: str  # the job's display name
    kind: OutcomeKind
    bundle: str | None = None  # bundle folder name under the job's out_dir
    bundle_path: Path | None = None  # the verified bundle (done, skipped)
    rejected_bundle: Path | None = None  # a new bundle that failed verification, moved aside
    exit_code: int = 0  # ``digitize.errors.ExitCode`` of the failure; 0 for done/skipped
    error: str = ""  # one line naming the file and page where known
    error_type: str = ""  # the error's class name (e.g. "TruncatedFileError")
    retryable: bool = False  # station faults a later attempt may cure without a person
    attempt: int = 0  # 1 for the first run of this job_id; 0 when nothing was run
    pages: int = 0
    flags: tuple[str, ...] = ()  # flag codes anywhere in the manifest, sorted
    needs_review: bool = False
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.kind in FAILED_KINDS


__all__ = ["Attempts", "DossierJob", "FAILED_KINDS", "JobOutcome", "OutcomeKind"]
