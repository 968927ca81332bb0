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
kinds, ``classify`` for which errors are the dossier's, the station's, or a bug.
"""

from __future__ import annotations

from digitize.jobs.classify import classify, kind_of_code
from digitize.jobs.interfaces import JobEventCallback, JobStore, PageExecutor, SignerHandle
from digitize.jobs.models import FAILED_KINDS, Attempts, DossierJob, JobOutcome, OutcomeKind
from digitize.jobs.resume import (
    ExistingBundle,
    check_existing_bundle,
    manifest_flag_codes,
    sources_match,
)
from digitize.jobs.runner import REJECTED_PREFIX, AbandonedError, JobContext, run_job
from digitize.jobs.signing import SerialSigner, SerialSignerHandle
from digitize.jobs.station import StationOptions, paths_overlap, trust_roots_for
from digitize.jobs.store import Journal, JournalStore, read_journal
from digitize.workers import PagePool

__all__ = [
    "FAILED_KINDS",
    "REJECTED_PREFIX",
    "AbandonedError",
    "Attempts",
    "DossierJob",
    "ExistingBundle",
    "JobContext",
    "JobEventCallback",
    "JobOutcome",
    "JobStore",
    "Journal",
    "JournalStore",
    "OutcomeKind",
    "PageExecutor",
    "PagePool",
    "SerialSigner",
    "SerialSignerHandle",
    "SignerHandle",
    "StationOptions",
    "check_existing_bundle",
    "classify",
    "kind_of_code",
    "manifest_flag_codes",
    "paths_overlap",
    "read_journal",
    "run_job",
    "sources_match",
    "trust_roots_for",
]
