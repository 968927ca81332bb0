"""Submitting dossiers to the hub, and following them.

``submit(dossiers, broker=...)`` registers one job per dossier (``JobRecord``, state
``queued``) and then sends its message to the ``dossiers`` queue; it returns ``JobHandle``s
(``.id``, ``.state()``, ``.record()``, ``.wait(timeout)`` → ``JobOutcome``). Paths are made
absolute: every worker must see the dossier at the same path (shared storage). The content
hash (SHA-256 over the dossier's files) is computed here; it names the dossier for attempt
counting and poison detection across resubmissions.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from digitize.errors import (
    DigitizeError,
    ExitCode,
    InputError,
    InterruptedRunError,
    SignerConfigError,
)
from digitize.hub.config import (
    DOSSIER_TASK,
    BrokerUnavailableError,
    configure,
    mask_text,
    mask_url,
)
from digitize.hub.hubjob import HubJob
from digitize.hub.registry import JobRecord, Registry, SignAt, connect
from digitize.jobs import JobOutcome
from digitize.settings import HubSettings
from digitize.util import nfc, sha256_file, vn_now


class JobWaitTimeoutError(InterruptedRunError):
    """``wait`` ran out of time before the job ended (it goes on on the hub)."""


def dossier_content_hash(source: Path) -> str:
    """SHA-256 over (relative NFC path, file SHA-256) of the dossier's files (a single scan
    file: its own SHA-256); links and special files are left out (ingest refuses them)."""
    if source.is_file():
        return sha256_file(source)
    from digitize.watch import content_hash

    return content_hash(source, ())


@dataclass
class Hub:
    """A connection to the hub's Redis for submitting and reading jobs."""

    url: str
    settings: HubSettings

    def __post_init__(self) -> None:
        # Its own Celery object: a process may talk to several hubs (tasks are sent by name,
        # so this one needs none registered).
        self.app = Celery("digitize-submit")
        configure(self.app, self.url, self.settings)
        self.client = connect(self.url, self.settings.broker_timeout_s)
        self.registry = Registry(self.client, self.settings.result_expires_s)

    def guard(self, what: str) -> _Guard:
        return _Guard(self.url, what)


class _Guard:
    """Broker failures become one masked ``BrokerUnavailableError`` line."""

    def __init__(self, url: str, what: str) -> None:
        self.url = url
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, redis.RedisError | OperationalError | OSError) and not isinstance(
            exc, DigitizeError
        ):
            raise BrokerUnavailableError(
                f"cannot {self.what}: {mask_text(f'{type(exc).__name__}: {exc}', self.url)}",
                path=mask_url(self.url), hint="is Redis running and reachable? retry later",
            ) from None  # fmt: skip


class JobHandle:
    """A submitted job: its id, state and outcome, read from the hub's registry."""

    def __init__(self, hub: Hub, job_id: str, dossier: str) -> None:
        self.hub = hub
        self.id = job_id
        self.dossier = dossier

    def record(self) -> JobRecord | None:
        with self.hub.guard("read the job"):
            return self.hub.registry.get(self.id)

    def state(self) -> str:
        record = self.record()
        return record.state if record is not None else "unknown"

    def wait(self, timeout: float | None = None, poll_s: float = 0.5) -> JobOutcome:
        """The job's outcome once it has ended; ``JobWaitTimeoutError`` after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self.record()
            if record is not None and record.final and record.outcome is not None:
                return record.outcome
            if deadline is not None and time.monotonic() > deadline:
                raise JobWaitTimeoutError(
                    f"job {self.id} has not ended after {timeout:.0f} s "
                    f"(state {record.state if record else 'unknown'})", path=self.dossier)  # fmt: skip
            time.sleep(poll_s)

    def __repr__(self) -> str:
        return f"JobHandle({self.id!r}, {self.dossier!r})"


def submit(
    dossiers: Sequence[str | Path],
    *,
    broker: str,
    settings: HubSettings | None = None,
    sign_at: SignAt = "worker",
    profile: str | None = None,
    signer_cert: str | Path | None = None,
) -> list[JobHandle]:
    """Queue one job per dossier folder; see the module docstring. Raises ``InputError`` for
    a dossier that does not exist (nothing is queued then), ``BrokerUnavailableError`` when
    Redis cannot be reached."""
    hub = Hub(broker, settings or HubSettings())
    sources = [Path(d).expanduser().absolute() for d in dossiers]
    for source in sources:
        if not source.exists():
            raise InputError("no such dossier folder", path=source)
    cert_pem = _certificate_pem(signer_cert) if signer_cert is not None else None
    jobs = [
        HubJob(job_id=f"job-{uuid.uuid4().hex[:16]}", source=source, name=nfc(source.name),
               content_sha256=dossier_content_hash(source), sign_at=sign_at, profile=profile,
               signer_cert_pem=cert_pem, submitted_at=vn_now().replace(microsecond=0))
        for source in sources
    ]  # fmt: skip
    handles = []
    for job in jobs:
        record = JobRecord(job_id=job.job_id, dossier=job.name, source=str(job.source),
                           content_sha256=job.content_sha256, sign_at=job.sign_at,
                           profile=job.profile, submitted_at=job.submitted_at.isoformat())  # fmt: skip
        with hub.guard("submit the job"):
            message = job.model_dump(mode="json")
            hub.registry.create(record, message)
            hub.app.send_task(DOSSIER_TASK, args=[message], task_id=job.job_id, retry=True)
        handles.append(JobHandle(hub, job.job_id, job.name))
    return handles


def _certificate_pem(path: str | Path) -> str:
    from asn1crypto import pem

    from digitize.sign import load_certificate

    cert = load_certificate(Path(path))  # SignerConfigError for what is not a certificate
    if cert is None:
        raise SignerConfigError("no certificate", path=path)
    return pem.armor("CERTIFICATE", cert.dump()).decode("ascii")


def list_jobs(broker: str, settings: HubSettings | None = None, limit: int = 1000) -> list[JobRecord]:
    hub = Hub(broker, settings or HubSettings())
    with hub.guard("list the jobs"):
        return hub.registry.all(limit)


def handles_for(broker: str, job_ids: Sequence[str],
                settings: HubSettings | None = None) -> list[JobHandle]:  # fmt: skip
    hub = Hub(broker, settings or HubSettings())
    return [JobHandle(hub, job_id, job_id) for job_id in job_ids]


def outcome_ok(outcome: JobOutcome) -> bool:
    """A job ended with a bundle that verified (or exists, made from these scans, and verifies)."""
    return outcome.kind in ("done", "skipped") and outcome.exit_code == int(ExitCode.OK)


__all__ = [
    "BrokerUnavailableError",
    "Hub",
    "JobHandle",
    "JobWaitTimeoutError",
    "dossier_content_hash",
    "handles_for",
    "list_jobs",
    "outcome_ok",
    "submit",
]
