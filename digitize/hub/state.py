"""A hub worker process's shared state: its folders, Redis, profiles, signers, page executor.

Built once by ``digitize.hub.worker`` before Celery starts consuming, read by the tasks (the
dossier tasks run in threads of this process; a page-worker process builds its own).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from digitize.errors import SignerConfigError
from digitize.hub.pages import HubPageExecutor, JobPageExecutor
from digitize.hub.registry import RedisJobStore, Registry
from digitize.jobs import JobContext, SerialSignerHandle, SignerHandle
from digitize.pipeline import PageWork
from digitize.profiles import Profile, load_profile
from digitize.settings import HubSettings
from digitize.sign import open_signer


@dataclass
class WorkerState:
    url: str
    profile: Profile  # the worker's own profile (``--profile``)
    profile_name: str | None
    out_dir: Path
    prepared_dir: Path
    client: redis.Redis
    registry: Registry
    pages: HubPageExecutor | None = None
    data_dir: Path | None = None
    can_sign: bool = True  # False: --no-signer, only --sign-at station jobs
    active: set[threading.Event] = field(default_factory=set)  # abandon events of running jobs
    stopping: threading.Event = field(default_factory=threading.Event)
    _profiles: dict[str, Profile] = field(default_factory=dict)
    _signers: dict[str, SerialSignerHandle] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def settings(self) -> HubSettings:
        """Delivery settings are the worker's (every worker of a hub should share them)."""
        return self.profile.hub

    def profile_for(self, name: str | None) -> Profile:
        """The job's profile (loaded once per name); the worker's own when the job names none."""
        if name is None or name == self.profile_name:
            return self.profile
        with self._lock:
            if name not in self._profiles:
                self._profiles[name] = load_profile(name)
            return self._profiles[name]

    def signer_for(self, profile: Profile) -> SerialSignerHandle:
        """One signer per signing set-up, opened on first use and kept (one login)."""
        if not self.can_sign:
            raise SignerConfigError(
                "this worker holds no signer (--no-signer): it only prepares bundles for "
                "--sign-at station jobs", hint="submit with --sign-at station, or run a "
                "worker with a signer")  # fmt: skip
        key = profile.sign.model_dump_json()
        with self._lock:
            if key not in self._signers:
                sign = profile.sign
                self._signers[key] = SerialSignerHandle(lambda: open_signer(sign, self.data_dir))
            return self._signers[key]

    def signer_cert_pem(self) -> str | None:
        path = self.profile.hub.signer_cert
        return Path(path).read_text(encoding="ascii") if path else None

    def context(self, profile: Profile, abandon: threading.Event, *,
                signer: SignerHandle | None = None,
                on_work: Callable[[PageWork], None] | None = None,
                verify: bool = True) -> JobContext:  # fmt: skip
        assert self.pages is not None, "a page-only worker runs no dossier"
        pages: Any = self.pages if on_work is None else JobPageExecutor(self.pages, on_work)
        return JobContext(profile=profile, pages=pages, store=RedisJobStore(self.registry),
                          signer=signer or self.signer_for(profile), verify_existing=verify,
                          verify_new=verify, abandon=abandon, data_dir=self.data_dir)  # fmt: skip

    def close(self) -> None:
        with self._lock:
            for handle in self._signers.values():
                handle.close()
            self._signers.clear()


_current: WorkerState | None = None


def install(state: WorkerState) -> None:
    global _current
    _current = state


def current() -> WorkerState:
    if _current is None:
        raise RuntimeError("this process is not a digitize hub worker (no state installed)")
    return _current


__all__ = ["WorkerState", "current", "install"]
