"""The job layer: one way to run a dossier, under batch, watch and any later queue worker.

::

    batch.py (discovery, plan, summary)   watch.py (inbox state machine)   a queue task
                  └──────────────┬───────────────────┘                          │
                                 ▼                                              ▼
              run_job(DossierJob, JobContext) -> JobOutcome   (digitize.jobs.runner)
                 bundle name → resume check → journal → run_dossier → verify → outcome
                                 │
          ┌──────────────────────┼───────────────────────────┐
     PageExecutor            JobStore                   SignerHandle
     where pages run         where job state lives      how signing happens
     (workers.PagePool)      (JournalStore: JSONL)      (SerialSignerHandle: one signer, a lock)

``DossierJob`` and ``JobOutcome`` are plain pydantic models (they cross a queue); the context
holds the station's collaborators and is built where the job runs. See ``runner`` for the
steps and the one policy for a bundle that fails verification, ``models`` for the outcome
kinds, ``classify`` for which errors are the dossier's, the station's, or a bug (and, for a
long-running station, which station faults mean "pause and retry later" and which "stop for a
person"), ``statefiles``/``lease`` for the station's own files, ``station`` for back-off,
storage checks and the systemd watchdog.
"""

from __future__ import annotations

from digitize.jobs.classify import (
    NO_RESTART_EXIT_CODES,
    classify,
    kind_of_code,
    needs_person,
    retry_later,
)
from digitize.jobs.interfaces import JobEventCallback, JobStore, PageExecutor, SignerHandle
from digitize.jobs.lease import HostLease
from digitize.jobs.models import FAILED_KINDS, Attempts, DossierJob, JobOutcome, OutcomeKind
from digitize.jobs.resume import (
    ExistingBundle,
    check_existing_bundle,
    manifest_flag_codes,
    sources_match,
)
from digitize.jobs.runner import REJECTED_PREFIX, AbandonedError, JobContext, run_job
from digitize.jobs.signing import SerialSigner, SerialSignerHandle
from digitize.jobs.station import (
    Backoff,
    Liveness,
    StationOptions,
    check_storage,
    paths_overlap,
    sd_notify,
    trust_roots_for,
)
from digitize.jobs.store import Journal, JournalStore, read_journal
from digitize.workers import PagePool

__all__ = [
    "FAILED_KINDS",
    "NO_RESTART_EXIT_CODES",
    "REJECTED_PREFIX",
    "AbandonedError",
    "Attempts",
    "Backoff",
    "DossierJob",
    "ExistingBundle",
    "HostLease",
    "JobContext",
    "JobEventCallback",
    "JobOutcome",
    "JobStore",
    "Journal",
    "JournalStore",
    "Liveness",
    "OutcomeKind",
    "PageExecutor",
    "PagePool",
    "SerialSigner",
    "SerialSignerHandle",
    "SignerHandle",
    "StationOptions",
    "check_existing_bundle",
    "check_storage",
    "classify",
    "kind_of_code",
    "manifest_flag_codes",
    "needs_person",
    "paths_overlap",
    "read_journal",
    "retry_later",
    "run_job",
    "sd_notify",
    "sources_match",
    "trust_roots_for",
]
