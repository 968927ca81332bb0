"""A provincial hub: dossiers run on workers of several machines over Celery + Redis.

::

    stations ── digitize submit ──▶ Redis (broker + result store + job registry, AOF on)
                                       │  queue "dossiers"            queue "pages"
                                       ▼                                   ▲   │
    worker (any machine) ── dossier task: run_job(DossierJob, JobContext) ─┘   ▼
       RedisJobStore (attempts in Redis)     HubPageExecutor: pages fan out, any worker's
       Lease on the bundle's final path      page processes run them, results fan in
       SignerHandle: the worker's signer, or a PreparingSigner (--sign-at station)
                                       │
                                       ▼
    shared storage: OUT/<bundle> (atomic rename) or OUT/prepared/<bundle> → digitize finish

Needs the ``celery`` extra (``pip install digitize[celery]``). Modules: ``config`` (broker URL,
masking, the Celery app), ``registry`` (job records, attempts, leases), ``hubjob`` (the dossier
task's body), ``pages`` (page fan-out), ``prepared`` (prepared bundles and ``finish``),
``lost`` (messages the broker lost, found and sent again), ``tasks`` (the Celery tasks),
``state`` and ``worker`` (``digitize worker``), ``submit`` (``digitize submit``/``jobs`` and
the Python API).

Python API::

    from digitize.hub import submit
    handles = submit(["/srv/scans/HS-0001"], broker="redis://:pw@hub:6379/0")
    outcome = handles[0].wait(timeout=600)        # a digitize.jobs.JobOutcome
"""

from __future__ import annotations

from digitize.hub.config import BROKER_ENV, broker_url, mask_url
from digitize.hub.prepared import (
    PREPARED_MARKER,
    FinishResult,
    NotAPreparedBundleError,
    PreparedBundle,
    PreparingSigner,
    finish_prepared_bundle,
)
from digitize.hub.registry import JobRecord
from digitize.hub.submit import (
    BrokerUnavailableError,
    JobHandle,
    JobWaitTimeoutError,
    handles_for,
    list_jobs,
    outcome_ok,
    submit,
)
from digitize.hub.worker import WorkerOptions, run_worker

__all__ = [
    "BROKER_ENV",
    "PREPARED_MARKER",
    "BrokerUnavailableError",
    "FinishResult",
    "JobHandle",
    "JobRecord",
    "JobWaitTimeoutError",
    "NotAPreparedBundleError",
    "PreparedBundle",
    "PreparingSigner",
    "WorkerOptions",
    "broker_url",
    "finish_prepared_bundle",
    "handles_for",
    "list_jobs",
    "mask_url",
    "outcome_ok",
    "run_worker",
    "submit",
]
