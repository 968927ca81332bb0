"""What a hub job is, and the body of the dossier task: a thin caller of ``run_job``.

A ``HubJob`` is the message (JSON) for one dossier. ``run_hub_job`` is what a worker does
with a delivery of it:

1. a job whose record already ended (a second delivery: Redis restored the message, or
   the worker was killed between the end and the acknowledgement) is not run again;
2. **poison**: when ``max_attempts`` attempts on this dossier's content died without an
   outcome (``started - ended`` in Redis), the job ends ``failed`` with that reason;
3. **lease**: the bundle's final path is leased (``Lease``); a delivery that finds the lease
   held by a live holder is **deferred** (``retry`` after ``defer_s``), never run beside it;
4. under the lease, staging left by a dead holder of the same bundle is removed and
   ``run_job`` runs — the same resume check, journal semantics (``RedisJobStore``), outcome
   rules and verification as batch and watch;
5. the outcome: ``abandoned`` (SIGTERM, lost lease) hands the message back (``Reject``,
   requeue); a retryable station fault is retried with back-off while attempts remain;
   everything else is final and written to the registry.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from celery.exceptions import Reject

from digitize.bundle import bundle_name_for
from digitize.errors import DigitizeError, SignerConfigError
from digitize.hub.prepared import (
    ExtractionInputs,
    PreparingSigner,
    check_prepared_files,
    declared_paper_types,
)
from digitize.hub.registry import JobRecord, Lease, SignAt, worker_name
from digitize.hub.state import WorkerState
from digitize.jobs import DossierJob, JobOutcome, SerialSignerHandle, run_job
from digitize.jobs.classify import classify
from digitize.models import FrozenModel
from digitize.pipeline import PageWork
from digitize.util import nfc, vn_now

log = logging.getLogger("digitize.hub")


class HubJob(FrozenModel):
    """One dossier submitted to the hub (the dossier task's only argument, as JSON)."""

    job_id: str
    source: Path  # the dossier folder on the storage every worker sees
    name: str
    content_sha256: str
    sign_at: SignAt = "worker"
    profile: str | None = None  # a bundled name or a file every worker sees; None: the worker's
    signer_cert_pem: str | None = None  # --sign-at station: the digitiser's certificate
    submitted_at: datetime


def _now() -> str:
    return vn_now().isoformat(timespec="seconds")


def _final(state: WorkerState, job: HubJob, outcome: JobOutcome) -> dict[str, Any]:
    kind = outcome.kind
    registry_state = "done" if kind == "done" else "skipped" if kind == "skipped" else "failed"
    state.registry.update(
        job.job_id, state=registry_state, ended_at=_now(), kind=kind, error=outcome.error,
        bundle=str(outcome.bundle_path or outcome.rejected_bundle or ""), outcome=outcome,
    )  # fmt: skip
    log.info("job %s (%s): %s%s", job.job_id, nfc(job.name), kind,
             f": {outcome.error}" if outcome.error else "")  # fmt: skip
    return outcome.model_dump(mode="json")


def _failed(job: HubJob, error: DigitizeError, attempt: int = 0) -> JobOutcome:
    kind, retryable = classify(error)
    return JobOutcome(job_id=job.job_id, dossier=job.name, kind=kind, exit_code=int(error.exit_code),
                      error=error.one_line(), error_type=type(error).__name__,
                      retryable=retryable, attempt=attempt)  # fmt: skip


def end_with_internal_error(job: HubJob, exc: BaseException, state: WorkerState) -> dict[str, Any]:
    """A failure outside the job layer's outcomes (a bug): the job ends ``failed`` with it."""
    text = " ".join(str(exc).split())
    error = DigitizeError(f"internal error: {type(exc).__name__}: {text}", path=job.name)
    return _final(state, job, _failed(job, error))


def remove_staging(out_dir: Path, bundle: str) -> list[Path]:
    """Staging of ``bundle`` (``.<bundle>.partial-…``, ``.<bundle>.work-…``, the zip's
    ``.<bundle>.zip.partial-…``) left by a holder that died: called only under the bundle's lease, so none of them is in use (on a
    shared storage the writer's pid says nothing about another machine)."""
    removed = []
    for kind in ("partial", "work", "zip.partial"):
        for stale in out_dir.glob(f".{bundle}.{kind}-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def deliver_later(task: Any, countdown: float) -> NoReturn:
    """Hand this delivery back to be delivered again after ``countdown`` seconds (Celery's
    ``retry``: a new message with an ETA, then this one is acknowledged).

    Celery drops the message for good when the new one cannot be published (the broker is
    restarting): ``retry`` raises ``Reject(requeue=False)``. Rejected *with* requeue instead,
    the message goes back to its queue, or, if Redis is still away, stays unacknowledged
    and comes back after the visibility timeout: never lost."""
    try:
        raise task.retry(countdown=countdown)
    except Reject as exc:
        if exc.requeue:
            raise
        log.warning("%s: cannot publish its deferred delivery (%s): handed back instead",
                    task.request.id, exc.reason)  # fmt: skip
        raise Reject(str(exc.reason), requeue=True) from None


def lease_name(out_dir: Path, bundle: str) -> str:
    return "bundle:" + hashlib.sha256(str(out_dir / bundle).encode()).hexdigest()[:32]


def run_hub_job(task: Any, job: HubJob, state: WorkerState) -> dict[str, Any]:
    """One delivery of ``job`` (see the module docstring). ``task`` is the bound Celery task."""
    record = state.registry.get(job.job_id)
    if record is not None and record.final and record.outcome is not None:
        log.info("job %s already ended (%s): delivery ignored", job.job_id, record.state)
        return record.outcome.model_dump(mode="json")
    if record is None:  # submitted before its record expired, or by hand: register it now
        state.registry.create(JobRecord(job_id=job.job_id, dossier=job.name, source=str(job.source),
                                        content_sha256=job.content_sha256, sign_at=job.sign_at,
                                        profile=job.profile, submitted_at=_now()),
                              job.model_dump(mode="json"))  # fmt: skip
    try:
        profile = state.profile_for(job.profile)
    except DigitizeError as exc:
        return _final(state, job, _failed(job, exc))
    out_dir = state.out_dir if job.sign_at == "worker" else state.prepared_dir
    dossier_job = DossierJob(job_id=job.job_id, source=job.source, out_dir=out_dir,
                             name=job.name, content_sha256=job.content_sha256,
                             tags={"hub_job": job.job_id})  # fmt: skip
    try:
        bundle = bundle_name_for(job.source)
    except DigitizeError as exc:  # an unreadable dossier.yaml: the dossier's own fault
        return _final(state, job, _failed(job, exc))
    abandon = threading.Event()
    lease = Lease(state.client, lease_name(out_dir, bundle), state.settings.lease_ttl_s,
                  on_lost=lambda _why: abandon.set())  # fmt: skip
    if not lease.acquire():
        log.info("job %s: %s is being built by %s: delivery deferred %.0f s", job.job_id,
                 bundle, lease.holder(), state.settings.defer_s)  # fmt: skip
        deliver_later(task, state.settings.defer_s)
    try:
        record = state.registry.get(job.job_id)
        if record is not None and record.final and record.outcome is not None:
            return record.outcome.model_dump(mode="json")  # ended while we waited
        for stale in remove_staging(out_dir, bundle):
            log.warning("job %s: removed staging left by a dead holder: %s", job.job_id, stale.name)
        # Under the lease nobody else runs this bundle: unfinished attempts are dead ones.
        died = state.registry.attempts(job.content_sha256)
        if died.unfinished >= state.settings.max_attempts:
            error = DigitizeError(
                f"{died.unfinished} attempts on this dossier died without an outcome (the "
                "worker was killed or crashed each time): given up", path=job.name,
                hint="look at the workers' logs for what kills them on this dossier",
            )  # fmt: skip
            return _final(state, job, _failed(job, error, died.started))
        state.active.add(abandon)
        if state.stopping.is_set():
            abandon.set()
        outcome = _run(job, dossier_job, profile, state, abandon)
    finally:
        state.active.discard(abandon)
        lease.release()
    return _after(task, job, outcome, state)


def _run(job: HubJob, dossier_job: DossierJob, profile: Any, state: WorkerState,
         abandon: threading.Event) -> JobOutcome:  # fmt: skip
    if job.sign_at == "worker":
        try:
            return run_job(dossier_job, state.context(profile, abandon))
        except SignerConfigError as exc:  # a worker without a signer (--no-signer)
            return _failed(job, exc)
    cert = job.signer_cert_pem or state.signer_cert_pem()
    if not cert:
        return _failed(job, SignerConfigError(
            "--sign-at station needs the digitiser's certificate: submit with --signer-cert, "
            "or set hub.signer_cert in the worker's profile", path=job.name))  # fmt: skip
    # Extraction waits for the signature (R1): it runs at the station, on the OCR kept here.
    profile = profile.model_copy(update={"extract": profile.extract.model_copy(
        update={"enabled": False})})  # fmt: skip
    bundle = bundle_name_for(job.source)
    try:
        inputs = ExtractionInputs(declared_paper_types(job.source))
        preparing = PreparingSigner(bundle, cert.encode(), profile.sign, inputs.inputs_of)
    except DigitizeError as exc:
        return _failed(job, exc)

    def on_work(work: PageWork) -> None:
        inputs.record(work.component, work.page, work.ocr, work.hand_words)

    ctx = state.context(profile, abandon, signer=SerialSignerHandle(signer=preparing),
                        on_work=on_work, verify=False)  # fmt: skip
    outcome = run_job(dossier_job, ctx)
    if outcome.kind in ("done", "skipped") and outcome.bundle_path is not None:
        try:
            from digitize.hub.prepared import PREPARED_MARKER, write_marker

            if not (outcome.bundle_path / PREPARED_MARKER).is_file():  # no component to sign
                write_marker(outcome.bundle_path, preparing.marker())
            check_prepared_files(outcome.bundle_path)
        except DigitizeError as exc:
            return _failed(job, exc, outcome.attempt)
    return outcome


def _after(task: Any, job: HubJob, outcome: JobOutcome, state: WorkerState) -> dict[str, Any]:
    if outcome.kind == "abandoned":
        state.registry.update(job.job_id, state="queued", worker="")
        log.warning("job %s abandoned (%s): handed back to the queue", job.job_id,
                    "worker stopping" if state.stopping.is_set() else "lease lost")  # fmt: skip
        raise Reject("abandoned", requeue=True)
    if outcome.failed and outcome.retryable:
        attempts = state.registry.attempts(job.job_id).started
        if attempts < state.settings.max_attempts:
            delay = state.settings.retry_backoff_s * 2 ** max(0, attempts - 1)
            state.registry.update(job.job_id, state="retrying", kind=outcome.kind,
                                  error=outcome.error, worker="")  # fmt: skip
            log.warning("job %s: %s; retry %d of %d in %.0f s", job.job_id, outcome.error,
                        attempts + 1, state.settings.max_attempts, delay)  # fmt: skip
            deliver_later(task, delay)
    return _final(state, job, outcome)


__all__ = [
    "HubJob",
    "deliver_later",
    "end_with_internal_error",
    "lease_name",
    "remove_staging",
    "run_hub_job",
    "worker_name",
]
