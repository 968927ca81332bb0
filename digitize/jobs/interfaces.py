"""The job layer's collaborators, as small protocols: where pages run, where job state lives,
how signing happens. ``run_job`` knows only these; today's implementations are local (a spawn
process pool, a JSONL journal, one signer behind a lock), and a queue-based deployment swaps
them without touching ``run_job``.

Contracts (SHALL):

* ``PageExecutor.current()`` returns the ``concurrent.futures.Executor`` the next dossier's
  pages are submitted to, or ``None`` to run them in the calling thread (then no page
  deadline can be enforced: a station should always give an executor of processes).
  ``replace_broken(broken)`` is called with what ``current()`` returned when that executor
  broke (a dead worker) or when one of its workers is stuck past the page deadline; it SHALL
  stop the old executor's workers (kill them: a hung page never returns) and afterwards
  ``current()`` returns a working one. Pages of other jobs still on the old executor then
  fail with ``BrokenProcessPool``; ``run_job`` runs such a job once more. Both are
  thread-safe.
* ``JobStore.job_started`` is durable before it returns (the record survives kill -9 right
  after); ``job_ended`` records the outcome of that attempt. ``attempts(key)`` counts
  attempts whose job id *or* content hash is ``key``; an attempt abandoned on request counts
  as ended. Thread-safe.
* ``SignerHandle.lease(job)`` is a context manager giving the ``DigitiserSigner`` that signs
  this job's documents and manifest for the duration of the block; it MAY open the signer on
  first use and raises the signer's ``SigningError`` subclasses when it cannot. A two-phase or
  batched signer (prepare every document of the dossier, one approval, finish) fits behind the
  same lease: the lease is the scope of one dossier's signatures. Thread-safe: leases may
  overlap (two dossiers in flight); serialising signatures is the handle's business.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from digitize.jobs.models import Attempts, DossierJob, JobOutcome

if TYPE_CHECKING:
    from digitize.pipeline import Event
    from digitize.sign import DigitiserSigner


class PageExecutor(Protocol):
    """Where page work runs (today: ``digitize.workers.PagePool``)."""

    def current(self) -> Executor | None: ...

    def replace_broken(self, broken: Executor | None) -> None: ...


class JobStore(Protocol):
    """Where job state lives (today: ``digitize.jobs.JournalStore`` over a JSONL journal)."""

    def attempts(self, key: str) -> Attempts: ...

    def job_started(self, job: DossierJob, bundle: str, attempt: int) -> None: ...

    def job_ended(self, job: DossierJob, outcome: JobOutcome) -> None: ...


class SignerHandle(Protocol):
    """How signing happens (today: ``digitize.jobs.SerialSignerHandle``)."""

    def lease(self, job: DossierJob) -> AbstractContextManager[DigitiserSigner]: ...


JobEventCallback = Callable[[DossierJob, "Event"], None]
"""Receives every pipeline ``Event`` of a job, tagged with the job."""

__all__ = ["JobEventCallback", "JobStore", "PageExecutor", "SignerHandle"]
