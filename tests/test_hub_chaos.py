"""Chaos on the hub: exactly one verifying bundle per dossier, whatever dies.

Three real ``digitize worker`` processes (each a dossier consumer and a page process) share
a real Redis (password, AOF ``appendfsync always``). Twenty small dossiers are submitted —
eighteen good ones (one or two pages) and two corrupt ones (a truncated JPEG, an empty
file). While they run, two workers are SIGKILLed (whole process group: the machine dies)
at random points while they hold a dossier, and restarted; Redis is restarted once.

Then (R8, R31; the guarantees of ``digitize.hub``): every good dossier ends ``done`` or
``skipped`` with exactly one bundle under its final name that verifies; each corrupt one
ends ``failed`` (bad input) with the file named; the output folder holds those bundles and
nothing else (no staging, no duplicate, no spool). The random points come from a seeded
generator, printed on failure.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from digitize.hub import submit
from digitize.hub.registry import Registry, connect
from digitize.sign import demo_trust_root, ensure_demo_identity
from digitize.verify import verify_bundle
from tests.helpers_redis import (
    RedisServer,
    WorkerProcess,
    corrupt_dossier,
    hub_profile,
    require_redis,
    small_dossier,
)
from tests.test_hub import wait_for, wait_ready

PASSWORD = "Chaos-pw-7e11"
SEED = int(os.environ.get("DIGITIZE_CHAOS_SEED", "20261130"))  # override to explore
pytestmark = pytest.mark.slow


def test_workers_killed_and_redis_restarted_leave_one_bundle_per_dossier(
    tmp_path: Path, isolated_data_dir: Path, request: pytest.FixtureRequest
) -> None:
    require_redis()
    rng = random.Random(SEED)
    ensure_demo_identity(isolated_data_dir)
    server = RedisServer.start_new(tmp_path / "redis", password=PASSWORD)
    request.addfinalizer(server.stop)  # whatever happens below
    profile = hub_profile(tmp_path / "hub.yaml", visibility_timeout_s=10, lease_ttl_s=5,
                          max_attempts=4)  # fmt: skip
    out = tmp_path / "out"
    good = [small_dossier(tmp_path / "in" / f"HS-C{i:02d}", 1 + i % 2, 100 + i)
            for i in range(18)]  # fmt: skip
    truncated = corrupt_dossier(tmp_path / "in" / "HS-X01")
    empty = tmp_path / "in" / "HS-X02"
    empty.mkdir()
    (empty / "trang-01.jpg").write_bytes(b"")
    starts = 0

    def start() -> WorkerProcess:
        nonlocal starts
        starts += 1
        args = ("--profile", str(profile), "--concurrency", "1", "--pages", "1")
        return WorkerProcess(server.url, out, tmp_path / f"worker-{starts}.log", args).start()

    workers = [start() for _ in range(3)]
    registry = Registry(connect(server.url), 3600)
    events: list[str] = []
    try:
        for worker in workers:
            wait_ready(worker)
        handles = submit([*good, truncated, empty], broker=server.url, profile=str(profile))

        def running_on(worker: WorkerProcess) -> bool:
            assert worker.proc is not None
            return any(r.state == "running" and r.worker.endswith(f"/{worker.proc.pid}")
                       for r in registry.all())  # fmt: skip

        def all_ended() -> bool:
            return all(r.final for r in registry.all())

        for victim in rng.sample(range(3), 2):
            time.sleep(rng.uniform(0.5, 4.0))
            try:
                wait_for(lambda v=victim: running_on(workers[v]) or all_ended(), 90,
                         "a dossier on the victim")  # fmt: skip
            except AssertionError:
                events.append(f"worker {victim} never held a dossier")
            if all_ended():
                events.append(f"every job had ended before worker {victim} was killed")
            time.sleep(rng.uniform(0.0, 1.5))
            workers[victim].kill()
            events.append(f"killed worker {victim} at {time.monotonic():.1f}")
            time.sleep(rng.uniform(0.2, 1.5))
            workers[victim] = start()
        time.sleep(rng.uniform(0.5, 3.0))
        server.restart()
        events.append(f"restarted Redis at {time.monotonic():.1f}")
        try:
            outcomes = {h.dossier: h.wait(480) for h in handles}
        except Exception:
            print(_worker_logs(tmp_path))  # what the workers saw, for whoever reads the failure
            raise
    finally:
        WorkerProcess.terminate_all(workers)
    _check(good, outcomes, handles, out, registry, f"seed {SEED}, events {events}")


def _worker_logs(folder: Path, tail: int = 60) -> str:
    parts = []
    for log in sorted(folder.glob("worker-*.log")):
        lines = log.read_text(errors="replace").splitlines()
        interesting = [x for x in lines if "WARNING" in x or "ERROR" in x or "job-" in x]
        parts.append(f"--- {log.name} ({len(lines)} lines; warnings, errors, jobs) ---")
        parts.extend(interesting[-tail:])
    return "\n".join(parts)


def _check(good: list[Path], outcomes: dict, handles: list, out: Path,  # type: ignore[type-arg]
           registry: Registry, context: str) -> None:  # fmt: skip
    for dossier in good:
        outcome = outcomes[dossier.name]
        assert outcome.kind in ("done", "skipped"), (dossier.name, outcome.error, context)
        report = verify_bundle(out / dossier.name, (demo_trust_root(),), allow_demo=True)
        assert report.ok, (dossier.name, report.failures, context)
    assert outcomes["HS-X01"].kind == "bad_input" and "trang-01.jpg" in outcomes["HS-X01"].error
    assert outcomes["HS-X02"].kind == "bad_input" and "trang-01.jpg" in outcomes["HS-X02"].error
    assert {h.state() for h in handles if h.dossier.startswith("HS-X")} == {"failed"}
    assert sorted(p.name for p in out.iterdir()) == sorted(d.name for d in good), context
    redelivered = [h.dossier for h in handles if registry.attempts(h.id).started >= 2]
    print(f"chaos: {context}; dossiers run more than once: {redelivered}")
