"""``run_job``: one dossier, start to outcome — the one way batch, watch (and a queue worker)
run a dossier.

In order, for a ``DossierJob`` under a ``JobContext``:

1. the bundle name: ``job.bundle``, else ``bundle.bundle_name_for(job.source)`` (the rule
   ``run_dossier`` names the bundle with);
2. resume: when something exists under that name, it is checked (``check_existing_bundle``):
   verifying and made from exactly the folder's current inputs (the same scan files with the
   same hashes and the same ``dossier.yaml``) → ``skipped``; anything else — a bundle of other
   or fewer scans, a changed ``dossier.yaml``, a damaged bundle → ``conflict``, whose message
   says what differs (left as found, never overwritten: replacing a signed bundle is a
   person's decision); staging and work folders that dead processes of this host left for
   that name are removed first (a run killed between its rename and its clean-up);
3. the attempt is recorded (``JobStore.job_started``, durable before the run starts);
4. ``run_dossier`` with the context's page executor and a signer leased for this job; setting
   ``ctx.abandon`` gives the run up at its next event (nothing appears under a final name);
5. the new bundle is verified (unless ``ctx.verify_new`` is off). **One policy when it does
   not verify:** the bundle (and its zip copy) is renamed aside to
   ``OUT/.rejected-<bundle>-<random>`` so nothing unverifiable ever sits under a final name,
   and the outcome names where it went (``rejected_bundle``);
6. any error becomes an outcome kind (``digitize.jobs.classify``); a dead page worker, or a
   page or dossier past its deadline (``PageTimeoutError``, ``DossierTimeoutError``: its
   worker may be hung), makes the executor kill and replace its pool, so the next job runs
   on a working one. A job whose pool was killed under it because of ANOTHER job (its pages
   fail with ``BrokenProcessPool`` after someone else replaced the pool) is run once more on
   the new pool: it was not at fault. A full, read-only or failing disk becomes exit code 80
   (``station_fault``, retry later);
7. the attempt's end is recorded (``JobStore.job_ended``).

``run_job`` never raises for a dossier's failure: every failure is an outcome. Only a failure
of the store itself (the journal cannot be written) propagates.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from digitize.bundle import bundle_name_for, remove_stale_partials
from digitize.errors import (
    BundleStructureError,
    DigitizeError,
    DossierTimeoutError,
    ExitCode,
    HashMismatchError,
    InterruptedRunError,
    OutputError,
    PageTimeoutError,
    PageWorkerDiedError,
    PdfaInvalidError,
    SignatureInvalidError,
    UntrustedError,
    VerifyError,
)
from digitize.jobs.classify import STORAGE_ERRNOS, classify
from digitize.jobs.interfaces import JobEventCallback, JobStore, PageExecutor, SignerHandle
from digitize.jobs.models import DossierJob, JobOutcome, OutcomeKind
from digitize.jobs.resume import check_existing_bundle, manifest_flag_codes
from digitize.jobs.station import trust_roots_for
from digitize.pipeline import DossierResult, Event, run_dossier
from digitize.profiles import Profile
from digitize.util import fsync_path
from digitize.verify import demo_allowed_for, verify_bundle

REJECTED_PREFIX = ".rejected-"


class AbandonedError(InterruptedRunError):
    """Raised from the progress callback to make ``run_dossier`` give up (staging removed)."""


@dataclass(frozen=True)
class JobContext:
    """Everything ``run_job`` needs besides the job: the station it runs on.

    Built once per batch, watcher or queue worker and shared by its jobs (thread-safe
    collaborators). ``trust_roots`` None means ``trust_roots_for(profile)`` at each
    verification (the demo root appears when the demo signer first opens).
    """

    profile: Profile
    pages: PageExecutor
    store: JobStore
    signer: SignerHandle
    trust_roots: tuple[Path, ...] | None = None
    verify_existing: bool = True  # resume: an existing bundle must verify to be skipped
    verify_new: bool = True  # a new bundle is verified before the job is done
    abandon: threading.Event = field(default_factory=threading.Event)
    on_event: JobEventCallback | None = None
    data_dir: Path | None = None  # the demo identity's folder (None: the user data folder)

    def roots(self) -> tuple[Path, ...]:
        return self.trust_roots if self.trust_roots is not None else trust_roots_for(self.profile)


_VERIFY_ERRORS: dict[int, type[VerifyError]] = {
    int(ExitCode.VERIFY_HASH): HashMismatchError,
    int(ExitCode.VERIFY_SIGNATURE): SignatureInvalidError,
    int(ExitCode.VERIFY_TRUST): UntrustedError,
    int(ExitCode.VERIFY_STRUCTURE): BundleStructureError,
    int(ExitCode.VERIFY_PDFA): PdfaInvalidError,
}


def _elapsed(started: float) -> float:
    return round(time.monotonic() - started, 2)


def _failure(
    job: DossierJob, error: BaseException, started: float, bundle: str | None = None
) -> JobOutcome:
    """The outcome of ``error`` (classified by its exit code, see ``classify``)."""
    if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
        # The disk, not the dossier: one stable code for "cannot write" (retry later).
        error = OutputError(
            f"cannot write: {error.strerror or error}", path=error.filename or job.out_dir
        )
    kind, retryable = classify(error)
    if isinstance(error, DigitizeError):
        message, code = error.one_line(), int(error.exit_code)
    else:
        text = " ".join(str(error).split())
        message = DigitizeError(
            f"internal error: {type(error).__name__}: {text}", path=job.name
        ).one_line()
        code = int(ExitCode.INTERNAL)
    return JobOutcome(
        job_id=job.job_id,
        dossier=job.name,
        kind=kind,
        exit_code=code,
        error=message,
        error_type=type(error).__name__,
        retryable=retryable,
        bundle=bundle,
        seconds=_elapsed(started),
    )


def run_job(job: DossierJob, ctx: JobContext) -> JobOutcome:
    """Run one dossier job to its outcome (see the module docstring). Thread-safe."""
    started = time.monotonic()
    try:
        bundle = job.bundle or bundle_name_for(job.source)
    except Exception as exc:  # noqa: BLE001 - a bad dossier.yaml is this job's outcome
        return _failure(job, exc, started)
    final = job.out_dir / bundle
    if os.path.lexists(final):
        try:
            return _resume(job, ctx, bundle, started)
        except Exception as exc:  # noqa: BLE001 - one dossier must not stop its caller
            return _failure(job, exc, started, bundle=bundle)
    attempt = ctx.store.attempts(job.job_id).started + 1
    ctx.store.job_started(job, bundle, attempt)
    outcome = _run(job, ctx, bundle, started).model_copy(update={"attempt": attempt})
    ctx.store.job_ended(job, outcome)
    return outcome


def _resume(job: DossierJob, ctx: JobContext, bundle: str, started: float) -> JobOutcome:
    final = job.out_dir / bundle
    # A run killed between its bundle's rename and the end of its clean-up left a work folder
    # beside the bundle; nothing runs this dossier again, so nothing else would remove it.
    # Only staging of this host's dead processes goes (a live writer's is left alone).
    try:
        remove_stale_partials(job.out_dir, bundle)
    except OSError:
        pass  # best effort: purge removes it later
    existing = check_existing_bundle(
        final,
        job.source,
        ctx.roots(),
        verify=ctx.verify_existing,
        allow_demo=demo_allowed_for(ctx.profile),
    )
    if existing.ok:
        return JobOutcome(
            job_id=job.job_id,
            dossier=job.name,
            kind="skipped",
            bundle=bundle,
            bundle_path=final,
            pages=existing.pages,
            flags=existing.flags,
            needs_review=existing.needs_review,
            seconds=_elapsed(started),
        )
    return JobOutcome(
        job_id=job.job_id,
        dossier=job.name,
        kind="conflict",
        bundle=bundle,
        exit_code=existing.exit_code or int(ExitCode.OUTPUT),
        error=OutputError(existing.reason, path=final).one_line(),
        error_type=OutputError.__name__,
        seconds=_elapsed(started),
    )


def _run(job: DossierJob, ctx: JobContext, bundle: str, started: float) -> JobOutcome:
    outcome, collateral = _run_once(job, ctx, bundle, started)
    if collateral and not ctx.abandon.is_set():
        # The pool was killed under this job because of another one: run it again, once.
        outcome, _ = _run_once(job, ctx, bundle, started)
    return outcome


def _run_once(
    job: DossierJob, ctx: JobContext, bundle: str, started: float
) -> tuple[JobOutcome, bool]:
    """One run on the current pool; True when its pool was replaced by another job meanwhile
    (this job failed only because of that)."""
    executor = ctx.pages.current()
    abandoned = JobOutcome(job_id=job.job_id, dossier=job.name, kind="abandoned", bundle=bundle)

    def on_event(event: Event) -> None:
        # Once the bundle is committed there is nothing left to abandon: let it finish.
        if ctx.abandon.is_set() and event.kind != "bundle_written":
            raise AbandonedError("abandoned on request", path=job.name)
        if ctx.on_event is not None:
            ctx.on_event(job, event)

    try:
        with ctx.signer.lease(job) as signer:
            result = run_dossier(
                job.source,
                job.out_dir,
                profile=ctx.profile,
                signer=signer,
                on_event=on_event,
                executor=executor,
                data_dir=ctx.data_dir,
            )
    except AbandonedError:
        return abandoned.model_copy(update={"seconds": _elapsed(started)}), False
    except (BrokenProcessPool, PageWorkerDiedError):
        replaced_by_another = executor is not None and ctx.pages.current() is not executor
        ctx.pages.replace_broken(executor)
        if ctx.abandon.is_set():
            return abandoned.model_copy(update={"seconds": _elapsed(started)}), False
        died = PageWorkerDiedError("a page worker died (out of memory or killed)", path=job.name)
        return _failure(job, died, started, bundle=bundle), replaced_by_another
    except (PageTimeoutError, DossierTimeoutError) as exc:
        ctx.pages.replace_broken(executor)  # a worker may be hung on the page: kill it
        return _failure(job, exc, started, bundle=bundle), False
    except Exception as exc:  # noqa: BLE001 - one dossier must not stop its caller
        return _failure(job, exc, started, bundle=bundle), False
    if ctx.verify_new:
        rejected = _verify_new(job, ctx, result, started)
        if rejected is not None:
            return rejected, False
    return JobOutcome(
        job_id=job.job_id,
        dossier=job.name,
        kind="done",
        bundle=result.bundle_path.name,
        bundle_path=result.bundle_path,
        pages=result.pages,
        flags=manifest_flag_codes(result.manifest),
        needs_review=result.needs_review,
        seconds=_elapsed(started),
    ), False


def _verify_new(
    job: DossierJob, ctx: JobContext, result: DossierResult, started: float
) -> JobOutcome | None:
    """None when the new bundle verifies; else it is moved aside and the outcome says why."""
    try:
        report = verify_bundle(
            result.bundle_path, ctx.roots(), lang="en", allow_demo=demo_allowed_for(ctx.profile)
        )
        if report.ok:
            return None
        first = report.failures[0]
        code = report.exit_code
        error: DigitizeError = _VERIFY_ERRORS.get(code, VerifyError)(
            f"the new bundle fails verification: {first.name}: {first.message}", path=job.name
        )
    except Exception as exc:  # noqa: BLE001 - a verifier that crashes did not verify it
        code = int(ExitCode.INTERNAL)
        error = DigitizeError(
            f"the new bundle could not be verified: {type(exc).__name__}: {exc}", path=job.name
        )
    # The station not trusting its own signer needs a person at the station; any other
    # failure means the tool's own output is wrong.
    kind: OutcomeKind = "station_fault" if code == ExitCode.VERIFY_TRUST else "bug"
    aside, move_error = _move_aside(result)
    message = error.one_line()
    if move_error:
        message += f" (and it could not be moved aside: {move_error})"
    return JobOutcome(
        job_id=job.job_id,
        dossier=job.name,
        kind=kind,
        bundle=result.bundle_path.name,
        rejected_bundle=aside,
        exit_code=code,
        error=message,
        error_type=type(error).__name__,
        pages=result.pages,
        seconds=_elapsed(started),
    )


def _move_aside(result: DossierResult) -> tuple[Path | None, str]:
    """Rename an unverifiable bundle (and its zip) to a hidden ``.rejected-…`` name."""
    out_dir = result.bundle_path.parent
    aside = out_dir / f"{REJECTED_PREFIX}{result.bundle_path.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(result.bundle_path, aside)
        if result.zip_path is not None and result.zip_path.exists():
            os.rename(result.zip_path, aside.with_name(aside.name + ".zip"))
        fsync_path(out_dir)
    except OSError as exc:
        return (aside if aside.exists() else None), exc.strerror or str(exc)
    return aside, ""


__all__ = ["AbandonedError", "JobContext", "REJECTED_PREFIX", "run_job"]
