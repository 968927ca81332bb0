"""Job state in Redis: the job registry, attempts counted across machines, and leases.

Keys (all under ``digitize:``; Redis is the broker too, with AOF persistence on):

=================================  =========  ==============================================
key                                type       holds
=================================  =========  ==============================================
``digitize:job:<job id>``          hash       the ``JobRecord`` (state, worker, times, outcome)
                                              and the job's message (``message``, JSON)
``digitize:jobs``                  zset       job ids by submission time (``digitize jobs``)
``digitize:open-jobs``             set        ids of the jobs that have not ended
``digitize:attempts:<key>``        hash       ``started``/``ended`` per job id and per content
                                              hash (``JobStore.attempts``)
``digitize:lease:<name>``          string     the holder's token, with a TTL (``Lease``)
``digitize:page-attempts:<id>``    string     deliveries of one page task (poison pages)
``digitize:page-cancel:<id>``      string     a page nobody waits for any more
``digitize:lost-jobs``             hash       job id → when its message was first missed
``digitize:lost-sweep``            string     the worker sweeping for lost jobs now (TTL)
=================================  =========  ==============================================

``RedisJobStore`` is the job layer's ``JobStore``: every write is one Redis command (or one
MULTI), and with ``appendfsync always`` Redis has it on disk before it answers, so
``job_started`` is durable before it returns, as the contract asks.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import redis

from digitize.hub.config import KEY_PREFIX
from digitize.jobs import Attempts, DossierJob, JobOutcome
from digitize.models import FrozenModel
from digitize.util import vn_now

log = logging.getLogger("digitize.hub")
T = TypeVar("T")

JobState = Literal["queued", "running", "retrying", "done", "skipped", "failed"]
FINAL_STATES: frozenset[str] = frozenset({"done", "skipped", "failed"})
SignAt = Literal["worker", "station"]


def connect(url: str, timeout_s: float = 10.0) -> redis.Redis:
    """A Redis client for ``url`` (the broker's URL: same server, same database)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry_on_timeout=True,
        health_check_interval=30,
        decode_responses=True,
    )


def worker_name() -> str:
    """This process as the registry names it: ``host/pid``."""
    return f"{socket.gethostname()}/{os.getpid()}"


def _now() -> str:
    return vn_now().isoformat(timespec="seconds")


class JobRecord(FrozenModel):
    """One submitted dossier as ``digitize jobs`` shows it."""

    job_id: str
    dossier: str  # display name
    source: str  # the dossier folder, as every worker sees it
    content_sha256: str
    sign_at: SignAt = "worker"
    profile: str | None = None
    state: JobState = "queued"
    worker: str = ""
    attempt: int = 0
    submitted_at: str = ""
    started_at: str = ""
    ended_at: str = ""
    kind: str = ""  # the outcome kind once ended
    bundle: str = ""  # bundle path (or prepared bundle path) once ended
    error: str = ""
    outcome: JobOutcome | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def job_key(job_id: str) -> str:
    return f"{KEY_PREFIX}job:{job_id}"


JOBS_KEY = f"{KEY_PREFIX}jobs"
OPEN_KEY = f"{KEY_PREFIX}open-jobs"  # ids of the jobs that have not ended
MESSAGE_FIELD = "message"  # the job's message (JSON) beside its record, not part of it


def retrying(what: str, call: Callable[[], T], patience_s: float = 60.0) -> T:
    """``call()``, tried again while Redis cannot be reached (a restart takes seconds), for
    up to ``patience_s``: a finished dossier's outcome is not lost to a Redis restart."""
    deadline = time.monotonic() + patience_s
    delay = 0.2
    while True:
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("cannot reach Redis to %s (%s); retrying in %.1f s", what,
                        type(exc).__name__, delay)  # fmt: skip
            time.sleep(delay)
            delay = min(2.0, delay * 2)


class Registry:
    """Reads and writes ``JobRecord``s and attempt counts. Thread-safe (redis-py's pool);
    every call is retried while Redis restarts (``retrying``)."""

    def __init__(self, client: redis.Redis, expire_s: float) -> None:
        self.client = client
        self.expire_s = int(expire_s)

    def create(self, record: JobRecord, message: dict[str, Any] | None = None) -> None:
        """Register a submitted job (before its message is sent: a fast worker finds it).
        ``message``: the dossier task's argument, kept to send again should the broker lose
        the message (``digitize.hub.lost``)."""
        fields = _flat(record.model_dump(mode="json"))
        if message is not None:
            fields[MESSAGE_FIELD] = json.dumps(message, ensure_ascii=False)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(job_key(record.job_id), mapping=fields)
        pipe.expire(job_key(record.job_id), self.expire_s)
        pipe.zadd(JOBS_KEY, {record.job_id: time.time()})
        if not record.final:
            pipe.sadd(OPEN_KEY, record.job_id)
        retrying("register a job", pipe.execute)

    def update(self, job_id: str, **fields: Any) -> None:
        flat = _flat(fields)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(job_key(job_id), mapping=flat)
        if fields.get("state") in FINAL_STATES:
            pipe.srem(OPEN_KEY, job_id)
        retrying("update a job", pipe.execute)

    def open_ids(self) -> list[str]:
        """Jobs that have not ended, oldest first; ids whose record expired are dropped."""
        members: Any = retrying("list open jobs", lambda: self.client.smembers(OPEN_KEY))
        ids = sorted(str(i) for i in members)
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(job_key(job_id), "state", "submitted_at")
        rows = pipe.execute()
        gone = [i for i, (state, _) in zip(ids, rows, strict=True) if state is None]
        if gone:
            self.client.srem(OPEN_KEY, *gone)
        alive = [(at or "", i) for i, (state, at) in zip(ids, rows, strict=True)
                 if state is not None and state not in FINAL_STATES]  # fmt: skip
        return [i for _, i in sorted(alive)]

    def message(self, job_id: str) -> dict[str, Any] | None:
        """The job's message as submitted (``create``), or None."""
        raw = retrying("read a job", lambda: self.client.hget(job_key(job_id), MESSAGE_FIELD))
        return json.loads(raw) if raw else None

    def get(self, job_id: str) -> JobRecord | None:
        raw = retrying("read a job", lambda: self.client.hgetall(job_key(job_id)))
        return _record(raw) if raw else None

    def all(self, limit: int = 1000) -> list[JobRecord]:
        """The newest ``limit`` jobs, oldest first; ids whose record expired are dropped."""
        ids: list[Any] = list(self.client.zrange(JOBS_KEY, -limit, -1))
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(job_key(job_id))
        records, gone = [], []
        for job_id, raw in zip(ids, pipe.execute(), strict=True):
            if raw:
                records.append(_record(raw))
            else:
                gone.append(job_id)
        if gone:
            self.client.zrem(JOBS_KEY, *gone)
        return records

    def attempts(self, key: str) -> Attempts:
        started, ended = retrying("read attempts", lambda: self.client.hmget(
            f"{KEY_PREFIX}attempts:{key}", "started", "ended"))  # fmt: skip
        return Attempts(started=int(started or 0), ended=int(ended or 0))

    def count(self, keys: set[str], slot: Literal["started", "ended"]) -> None:
        pipe = self.client.pipeline(transaction=True)
        for key in sorted(keys):
            pipe.hincrby(f"{KEY_PREFIX}attempts:{key}", slot, 1)
            pipe.expire(f"{KEY_PREFIX}attempts:{key}", self.expire_s)
        retrying("count an attempt", pipe.execute)


def _flat(fields: dict[str, Any]) -> dict[Any, Any]:
    """Hash fields as strings; the outcome as JSON, None as an empty string."""
    flat = {}
    for name, value in fields.items():
        if isinstance(value, JobOutcome):
            value = value.model_dump_json()
        elif isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False, default=str)
        flat[name] = "" if value is None else str(value)
    return flat


def _record(raw: dict[Any, Any]) -> JobRecord:
    data: dict[str, Any] = {k: v for k, v in raw.items() if k in JobRecord.model_fields}
    data["outcome"] = JobOutcome.model_validate_json(raw["outcome"]) if raw.get("outcome") else None
    data["profile"] = raw.get("profile") or None
    data["attempt"] = int(raw.get("attempt") or 0)
    return JobRecord.model_validate(data)


class RedisJobStore:
    """The job layer's ``JobStore`` over the registry: attempts are counted in Redis, per job
    id and per content hash, so every machine sees the same numbers."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def attempts(self, key: str) -> Attempts:
        return self.registry.attempts(key)

    def job_started(self, job: DossierJob, bundle: str, attempt: int) -> None:
        self.registry.count(_keys(job), "started")
        self.registry.update(job.job_id, state="running", worker=worker_name(), attempt=attempt,
                             started_at=_now(), bundle="")  # fmt: skip

    def job_ended(self, job: DossierJob, outcome: JobOutcome) -> None:
        # The registry's state is set by the task, which knows whether it retries.
        self.registry.count(_keys(job), "ended")


def _keys(job: DossierJob) -> set[str]:
    return {k for k in (job.job_id, job.content_sha256) if k}


# --- leases -----------------------------------------------------------------------------------
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Lease:
    """A Redis lock with a TTL, kept alive by a heartbeat thread while its holder works.

    Protocol: ``SET key token NX PX ttl`` takes it; every ``ttl/3`` the holder extends it only
    if the key still holds its token (one Lua script, atomic); ``release`` deletes it only if
    it still holds the token. A holder that dies stops renewing and the lease lapses after
    ``ttl``. A holder that cannot renew — the key now names another holder, or Redis could
    not be reached for a whole ``ttl`` (another may have taken over) — calls ``on_lost``
    and stops: it must give its work up (the job is abandoned and handed back).
    """

    def __init__(self, client: redis.Redis, name: str, ttl_s: float,
                 on_lost: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.client = client
        self.key = f"{KEY_PREFIX}lease:{name}"
        self.ttl_ms = max(1000, int(ttl_s * 1000))
        self.token = f"{worker_name()}/{uuid.uuid4().hex[:12]}"
        self.on_lost = on_lost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = ""

    def acquire(self) -> bool:
        if not self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.key}", daemon=True)
        self._thread.start()
        return True

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return str(value) if value is not None else None

    def _beat(self) -> None:
        interval = self.ttl_ms / 3000
        last_ok = time.monotonic()
        while not self._stop.wait(interval):
            try:
                if self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms):
                    last_ok = time.monotonic()
                    continue
                # Lapsed (Redis restarted from an older file, or we were stalled): take it
                # again if nobody else did.
                if self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
                    log.warning("lease %s had lapsed; taken again", self.key)
                    last_ok = time.monotonic()
                    continue
                self._lose(f"the lease is now held by {self.holder()}")
                return
            except redis.RedisError as exc:
                log.warning("lease %s: cannot reach Redis to renew it (%s); retrying",
                            self.key, type(exc).__name__)  # fmt: skip
                if time.monotonic() - last_ok > self.ttl_ms / 1000:
                    self._lose("Redis unreachable for longer than the lease")
                    return

    def _lose(self, why: str) -> None:
        self.lost = why
        log.warning("lease %s lost: %s", self.key, why)
        if self.on_lost is not None:
            self.on_lost(why)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.client.eval(_RELEASE, 1, self.key, self.token)
        except redis.RedisError as exc:  # it lapses by itself after the TTL
            log.warning("lease %s: not released (%s); it lapses by itself",
                        self.key, type(exc).__name__)  # fmt: skip


__all__ = [
    "FINAL_STATES",
    "JOBS_KEY",
    "JobRecord",
    "JobState",
    "Lease",
    "Registry",
    "RedisJobStore",
    "SignAt",
    "connect",
    "retrying",
    "job_key",
    "worker_name",
]
