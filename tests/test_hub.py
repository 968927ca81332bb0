"""The hub (``digitize worker``/``submit``/``jobs``): real Redis (``redis-server``, AOF with
``appendfsync always``, a password), real ``digitize worker`` processes, real dossiers.

Covers: submission and outcomes through the CLI and the Python API (R8: a resubmitted dossier
is recognised by its content and skipped), the broker password never printed (logs, ``jobs``,
errors), a worker that cannot reach Redis retries and says so, a Redis restart loses no
submitted job, a large dossier's pages run on two machines' page workers, SIGTERM hands a
running dossier back without leaving anything partial, a dossier whose attempts keep dying
ends failed with its reason, and page work crossing the broker as JSON (inline and spooled).
The chaos test is ``test_hub_chaos.py``, signing at the station ``test_hub_station.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digitize.hub.config import mask_text, mask_url
from digitize.hub.pages import decode_page_work, encode_page_work
from digitize.hub.registry import Registry, connect
from digitize.sign import demo_trust_root
from digitize.verify import verify_bundle
from tests.helpers_redis import (
    HUB_PASSWORD,
    REPO,
    RedisServer,
    WorkerProcess,
    corrupt_dossier,
    hub_profile,
    require_redis,
    small_dossier,
    small_scan,
)

PASSWORD = HUB_PASSWORD  # conftest.redis_server's; distinctive: the leak checks grep for it
pytestmark = pytest.mark.slow


def cli(*args: str, url: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DIGITIZE_BROKER_URL": url, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "digitize", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=timeout)  # fmt: skip


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def wait_ready(worker: WorkerProcess, timeout: float = 120) -> None:
    """Both halves of the worker are consuming (Celery logs ``<node> ready.``)."""
    wait_for(lambda: worker.output().count(" ready.") >= 2 or not worker.alive, timeout,
             "the worker to be ready")  # fmt: skip
    assert worker.alive, worker.output()[-3000:]


def roots() -> tuple[Path, ...]:
    return (demo_trust_root(),)


def start_worker(server: RedisServer, dirs: dict[str, Path], name: str,
                 *extra: str) -> WorkerProcess:  # fmt: skip
    args = ("--profile", str(dirs["profile"]), "--concurrency", "1", "--pages", "1", *extra)
    return WorkerProcess(server.url, dirs["out"], dirs["out"].parent / f"{name}.log", args).start()


def registry(server: RedisServer) -> Registry:
    return Registry(connect(server.url), 3600)


def out_names(out: Path) -> set[str]:
    return {p.name for p in out.iterdir()} if out.exists() else set()


# --- no broker needed --------------------------------------------------------------------------
def test_broker_password_is_masked_everywhere_it_could_be_shown() -> None:
    url = f"redis://:{PASSWORD}@hub.example:6379/0"
    assert mask_url(url) == "redis://:***@hub.example:6379/0"
    assert mask_url("rediss://digitize:" + PASSWORD + "@10.0.0.5:6380/1") == \
        "rediss://digitize:***@10.0.0.5:6380/1"  # fmt: skip
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    text = f"Error connecting to {url}: refused; password was {PASSWORD}"
    assert PASSWORD not in mask_text(text, url)


def test_page_work_crosses_the_broker_as_json(tmp_path: Path) -> None:
    """A real page's work (clean, OCR, encoded image) survives JSON, inline or spooled; the
    spool file and folder are gone once read (nothing left on the shared storage)."""
    from digitize.ingest import ingest_dossier
    from digitize.pipeline import process_page
    from digitize.profiles import load_profile

    dossier = tmp_path / "HS"
    dossier.mkdir()
    small_scan(dossier / "trang-01.jpg", 7)
    profile = load_profile()
    page = ingest_dossier(dossier, profile.ingest).components[0].pages[0]
    work = process_page(page, 1, profile.ingest, profile.clean, profile.ocr, profile.pdfa)
    spool = tmp_path / "spool"
    for inline_max in (10**9, 0):
        data = json.loads(json.dumps(encode_page_work(work, spool, inline_max, "p.img")))
        assert (data["image"]["data"] is None) == (inline_max == 0)
        back = decode_page_work(data)
        assert back == work
        assert back.image.data == work.image.data and back.ocr.text == work.ocr.text
    assert not spool.exists()


# --- one hub, two workers ----------------------------------------------------------------------
def test_submit_wait_jobs_and_a_resubmitted_dossier(redis_server: RedisServer,
                                                    hub_dirs: dict[str, Path]) -> None:  # fmt: skip
    """submit --wait: one good dossier (bundle verifies), one corrupt (failed with the file
    named); exit 90. ``jobs --json`` shows state, worker, times and outcome. The same scans
    submitted again are skipped (R8: the bundle was made from them). The password is printed
    nowhere: not by submit, jobs, the workers' logs, or an error."""
    good = small_dossier(hub_dirs["in"] / "HS-0001", 2, 1)
    bad = corrupt_dossier(hub_dirs["in"] / "HS-hong")
    workers = [start_worker(redis_server, hub_dirs, f"w{i}") for i in (1, 2)]
    try:
        for worker in workers:
            wait_ready(worker)
        done = cli("submit", str(good), str(bad), "--wait", "--timeout", "400",
                   "--profile", str(hub_dirs["profile"]), url=redis_server.url, timeout=450)  # fmt: skip
        assert done.returncode == 90, done.stdout + done.stderr
        assert "done" in done.stdout and "bad_input" in done.stdout
        listed = cli("jobs", "--json", url=redis_server.url)
        assert listed.returncode == 0, listed.stderr
        jobs = {j["dossier"]: j for j in json.loads(listed.stdout)}
        assert jobs["HS-0001"]["state"] == "done" and jobs["HS-hong"]["state"] == "failed"
        assert "trang-01.jpg" in jobs["HS-hong"]["error"] and "truncated" in jobs["HS-hong"]["error"]
        for job in jobs.values():
            assert job["worker"] and job["submitted_at"] and job["started_at"] and job["ended_at"]
        bundle = hub_dirs["out"] / "HS-0001"
        assert verify_bundle(bundle, roots(), allow_demo=True).ok
        table = cli("jobs", url=redis_server.url)
        assert "HS-0001" in table.stdout and "done" in table.stdout

        again = cli("submit", str(good), "--wait", "--timeout", "300", "--profile",
                    str(hub_dirs["profile"]), url=redis_server.url)  # fmt: skip
        assert again.returncode == 0, again.stdout + again.stderr
        assert "skipped" in again.stdout
        assert out_names(hub_dirs["out"]) == {"HS-0001"}
    finally:
        WorkerProcess.terminate_all(workers)
    wrong = cli("jobs", url=f"redis://:{PASSWORD}@127.0.0.1:1/0")
    assert wrong.returncode == 80 and "***" in wrong.stderr
    for text in (done.stdout, done.stderr, listed.stdout, table.stdout, again.stdout,
                 wrong.stderr, *(w.output() for w in workers)):  # fmt: skip
        assert PASSWORD not in text


def test_a_large_dossier_runs_its_pages_on_both_workers(redis_server: RedisServer,
                                                        hub_dirs: dict[str, Path]) -> None:  # fmt: skip
    """Fan-out: the pages of one dossier are run by the page processes of both workers, the
    dossier's own worker fans them in and the bundle (all pages, in order, R5) verifies."""
    from digitize.hub import submit
    from digitize.manifest import Manifest

    dossier = small_dossier(hub_dirs["in"] / "HS-lon", 8, 3, one_document=True)
    workers = [start_worker(redis_server, hub_dirs, f"w{i}") for i in (1, 2)]
    try:
        for worker in workers:
            wait_ready(worker)
        (handle,) = submit([dossier], broker=redis_server.url, profile=str(hub_dirs["profile"]))
        outcome = handle.wait(400)
        assert outcome.kind == "done", outcome.error
    finally:
        WorkerProcess.terminate_all(workers)
    page_runs = [w.output().count("Task digitize.hub.page[") for w in workers]
    assert all(runs > 0 for runs in page_runs), page_runs
    bundle = hub_dirs["out"] / "HS-lon"
    assert verify_bundle(bundle, roots(), allow_demo=True).ok
    manifest = Manifest.model_validate_json((bundle / "manifest.json").read_bytes())
    assert [p.page_index for p in manifest.documents[0].pages] == list(range(1, 9))
    assert out_names(hub_dirs["out"]) == {"HS-lon"}


# --- things that die ----------------------------------------------------------------------------
def test_worker_without_broker_retries_and_says_so(tmp_path: Path,
                                                   hub_dirs: dict[str, Path]) -> None:  # fmt: skip
    """Redis not there yet: the worker keeps trying with back-off and logs it (masked URL);
    once Redis is up it takes the job."""
    require_redis()
    server = RedisServer(workdir=tmp_path / "redis", port=__import__(
        "tests.helpers_pki", fromlist=["free_port"]).free_port(), password=PASSWORD)  # fmt: skip
    server.workdir.mkdir()
    worker = start_worker(server, hub_dirs, "w1")
    try:
        wait_for(lambda: "Cannot connect to redis://" in worker.output(), 120,
                 "the worker to say it cannot connect")  # fmt: skip
        assert "Trying again in" in worker.output()
        assert worker.alive
        server.start()
        from digitize.hub import submit

        dossier = small_dossier(hub_dirs["in"] / "HS-0002", 1, 2)
        (handle,) = submit([dossier], broker=server.url, profile=str(hub_dirs["profile"]))
        assert handle.wait(300).kind == "done"
    finally:
        worker.terminate()
        server.stop()
    assert PASSWORD not in worker.output()
    assert "redis://:**@127.0.0.1" in worker.output() or "redis://:***@127.0.0.1" in worker.output()


def test_redis_restart_loses_no_submitted_job(redis_server: RedisServer,
                                              hub_dirs: dict[str, Path]) -> None:  # fmt: skip
    """Jobs submitted while no worker runs survive a Redis restart (AOF, fsync always) and
    are run by the worker that starts afterwards."""
    from digitize.hub import submit

    dossiers = [small_dossier(hub_dirs["in"] / f"HS-10{i}", 1, 10 + i) for i in range(2)]
    handles = submit(dossiers, broker=redis_server.url, profile=str(hub_dirs["profile"]))
    redis_server.restart()
    assert {h.state() for h in handles} == {"queued"}
    worker = start_worker(redis_server, hub_dirs, "w1")
    try:
        outcomes = [h.wait(400) for h in handles]
    finally:
        worker.terminate()
    assert [o.kind for o in outcomes] == ["done", "done"]
    assert out_names(hub_dirs["out"]) == {"HS-100", "HS-101"}


def test_sigterm_hands_a_running_dossier_back(redis_server: RedisServer,
                                              hub_dirs: dict[str, Path]) -> None:  # fmt: skip
    """SIGTERM while a dossier runs (abandon_after_s 0): the worker gives it up, removes its
    staging, exits 0, and the job goes back to the queue; another worker makes the one bundle."""
    from digitize.hub import submit

    dossier = small_dossier(hub_dirs["in"] / "HS-0003", 4, 4)
    first = start_worker(redis_server, hub_dirs, "w1")
    wait_ready(first)
    (handle,) = submit([dossier], broker=redis_server.url, profile=str(hub_dirs["profile"]))
    wait_for(lambda: handle.state() == "running", 300, "the job to start")
    assert first.terminate() == 0
    assert "handed back to the queue" in first.output()
    assert handle.state() == "queued"
    assert not [p for p in out_names(hub_dirs["out"]) if "HS-0003" in p]
    second = start_worker(redis_server, hub_dirs, "w2")
    try:
        outcome = handle.wait(400)
    finally:
        second.terminate()
    assert outcome.kind == "done"
    assert out_names(hub_dirs["out"]) == {"HS-0003"}
    assert verify_bundle(hub_dirs["out"] / "HS-0003", roots(), allow_demo=True).ok


def test_a_dossier_whose_attempts_keep_dying_ends_failed(redis_server: RedisServer,
                                                          hub_dirs: dict[str, Path]) -> None:  # fmt: skip
    """A dossier during which the worker dies each time (kill -9 twice, max_attempts 2) is not
    tried forever: the next worker ends it ``failed`` with the reason; nothing is left in OUT."""
    from digitize.hub import submit

    hub_profile(hub_dirs["profile"], max_attempts=2, visibility_timeout_s=6)
    dossier = small_dossier(hub_dirs["in"] / "HS-0004", 2, 5)
    (handle,) = submit([dossier], broker=redis_server.url, profile=str(hub_dirs["profile"]))
    reg = registry(redis_server)
    for round_ in (1, 2):
        worker = start_worker(redis_server, hub_dirs, f"w{round_}")
        wait_for(lambda r=round_: reg.attempts(handle.id).started >= r, 300,
                 f"attempt {round_} to start")  # fmt: skip
        worker.kill()
    last = start_worker(redis_server, hub_dirs, "w3")
    try:
        outcome = handle.wait(300)
    finally:
        last.terminate()
    assert outcome.kind == "bug" and "attempts on this dossier died" in outcome.error
    assert handle.record().state == "failed"  # type: ignore[union-attr]
    assert reg.attempts(handle.id).started == 2
    assert not [p for p in out_names(hub_dirs["out"]) if "HS-0004" in p]


def test_a_redelivery_while_the_holder_lives_is_deferred_not_run(
    redis_server: RedisServer, hub_dirs: dict[str, Path]
) -> None:
    """A dossier outliving the visibility timeout (1.5 s here) is handed out again while its
    first worker still builds it: the second delivery finds the bundle's lease held and
    defers, so the dossier runs once (one attempt in Redis) and one bundle appears."""
    from digitize.hub import submit

    hub_profile(hub_dirs["profile"], visibility_timeout_s=1.5, lease_ttl_s=6)
    # Long enough to outlive the visibility timeout and a redelivery on a quiet machine too
    # (ten of these pages took 1.3 s there: done before anything was handed out again).
    dossier = small_dossier(hub_dirs["in"] / "HS-0005", 60, 6, one_document=True)
    workers = [start_worker(redis_server, hub_dirs, f"w{i}") for i in (1, 2)]
    try:
        for worker in workers:
            wait_ready(worker)
        (handle,) = submit([dossier], broker=redis_server.url, profile=str(hub_dirs["profile"]))
        outcome = handle.wait(400)
    finally:
        WorkerProcess.terminate_all(workers)
    assert outcome.kind == "done", outcome.error
    logs = "".join(w.output() for w in workers)
    assert "HS-0005 is being built by" in logs and "delivery deferred" in logs
    assert registry(redis_server).attempts(handle.id).started == 1
    assert out_names(hub_dirs["out"]) == {"HS-0005"}
    assert verify_bundle(hub_dirs["out"] / "HS-0005", roots(), allow_demo=True).ok


def test_a_page_process_does_not_outlive_its_worker(redis_server: RedisServer,
                                                    hub_dirs: dict[str, Path]) -> None:  # fmt: skip
    """Only the worker's main process is killed (the OOM killer picks one): its page child
    notices and stops instead of serving on unsupervised."""
    import re
    import signal

    worker = start_worker(redis_server, hub_dirs, "w1")
    try:
        wait_ready(worker)
        found = re.search(r"pages@[^ ]*\.(\d+) ready\.", worker.output())
        assert found, worker.output()[-2000:]
        child = int(found.group(1))
        assert worker.proc is not None
        os.kill(worker.proc.pid, signal.SIGKILL)

        def gone() -> bool:
            try:
                status = Path(f"/proc/{child}/status").read_text()
            except FileNotFoundError:
                return True
            return "State:\tZ" in status

        wait_for(gone, 90, "the page child to stop")
    finally:
        worker.kill()
    assert "is gone: stopping" in worker.output()


def test_lost_page_messages_are_sent_again(redis_server: RedisServer,
                                           hub_dirs: dict[str, Path]) -> None:  # fmt: skip
    """A dossier's page messages vanish from Redis (a Redis that lost data): no worker starts
    them, so after hub.page_not_started_s the dossier sends them again and still ends done."""
    import re
    import signal

    from digitize.hub import submit

    hub_profile(hub_dirs["profile"], page_not_started_s=3)
    worker = start_worker(redis_server, hub_dirs, "w1")
    try:
        wait_ready(worker)
        found = re.search(r"pages@[^ ]*\.(\d+) ready\.", worker.output())
        assert found
        child = int(found.group(1))
        os.kill(child, signal.SIGSTOP)  # page work cannot start meanwhile
        try:
            dossier = small_dossier(hub_dirs["in"] / "HS-0006", 3, 8, one_document=True)
            (handle,) = submit([dossier], broker=redis_server.url,
                               profile=str(hub_dirs["profile"]))  # fmt: skip
            client = redis_server.client()
            wait_for(lambda: client.llen("pages") >= 1, 120, "page messages in the queue")
            client.delete("pages")  # lost
        finally:
            os.kill(child, signal.SIGCONT)
        outcome = handle.wait(300)
    finally:
        worker.terminate()
    assert outcome.kind == "done", outcome.error
    assert "sent again as" in worker.output()
    assert out_names(hub_dirs["out"]) == {"HS-0006"}
