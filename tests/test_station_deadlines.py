"""Deadlines (issue 15 point 7; security review R1, top-10 #9): no page and no dossier can hang
a station forever.

A page whose worker does not return within ``pipeline.page_timeout_s`` becomes
``PageTimeoutError`` (104) naming the file and page; the hung worker is killed and the pool
replaced; the batch goes on with the next dossier, and a dossier whose pages were on the
killed pool only because of the hung one runs again, unharmed. A dossier past its own deadline
becomes ``DossierTimeoutError`` (105). The hung worker is a real process that never returns
(``tests.helpers_station.HangingPagePool``): nothing in the library knows about it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from digitize.batch import batch_run
from digitize.errors import ExitCode
from digitize.jobs import (
    DossierJob,
    JobContext,
    Journal,
    JournalStore,
    PagePool,
    SerialSignerHandle,
    StationOptions,
    run_job,
)
from digitize.profiles import load_profile
from digitize.sign import open_signer
from tests.helpers_batch import page_jpeg, write_tiny_dossier
from tests.helpers_station import HANG_PIDS_ENV, bundle_verifies, hanging_pool, pid_gone

# Long enough for a cold worker (spawn, imports, tesseract start) on a loaded two-core machine;
# the deadline counts from the moment a worker says it started the page.
PAGE_TIMEOUT_S = 20.0


def _hanging_dossier(parent: Path, name: str) -> Path:
    folder = parent / name
    (folder / "c1").mkdir(parents=True)
    (folder / "c1" / "p01-hang.jpg").write_bytes(page_jpeg(404))
    return folder


def _run_in_thread(target, limit: float = 900.0):  # type: ignore[no-untyped-def]
    """Run ``target`` on a thread; fail (instead of hanging the suite) when it never returns,
    which is what a run without page deadlines does."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["result"] = target()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), "the run never ended: a hung page stopped it"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]


@pytest.mark.parametrize("workers", [1, 2])
def test_hung_page_is_named_its_worker_killed_and_the_batch_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """R1/top-10 #9: one hostile page (here a worker that never returns) must not stop a batch.
    With one worker, the next dossier's page waits behind the hung one and fails only because
    its pool is killed: it is run again on the new pool, not blamed. With two, both dossiers
    run side by side."""
    pids = tmp_path / "hung-pids.txt"
    monkeypatch.setenv(HANG_PIDS_ENV, str(pids))
    in_dir, out = tmp_path / "in", tmp_path / "out"
    _hanging_dossier(in_dir, "hs-1-treo")
    write_tiny_dossier(in_dir, "hs-2", 2)
    write_tiny_dossier(in_dir, "hs-3", 3)
    profile = load_profile(
        None, {"pipeline": {"workers": workers, "page_timeout_s": PAGE_TIMEOUT_S}}
    )
    pool = PagePool(workers, factory=hanging_pool)
    try:
        result = _run_in_thread(
            lambda: batch_run(in_dir, out, profile, station=StationOptions(pages=pool))
        )
    finally:
        pool.close()
    rows = {row.dossier: row for row in result.rows}
    hung = rows["hs-1-treo"]
    assert (hung.status, hung.exit_code) == ("failed", ExitCode.PAGE_TIMEOUT)
    assert "hs-1-treo/c1/p01-hang.jpg (page 1)" in hung.error
    assert "page_timeout_s" in hung.error
    for name in ("hs-2", "hs-3"):
        assert rows[name].status == "ok", rows[name]
        assert bundle_verifies(out / name)
    assert not (out / "hs-1-treo").exists()
    assert not [p for p in os.listdir(out) if ".partial-" in p or ".work-" in p]
    hung_pids = [int(line) for line in pids.read_text().split()]
    assert hung_pids and all(pid_gone(pid) for pid in hung_pids), "the hung worker still runs"


def test_dossier_past_its_deadline_is_refused_and_its_pool_replaced(tmp_path: Path) -> None:
    """R1: a dossier has a deadline of its own (``dossier_timeout_s`` + per page): past it the
    job is bad input with exit 105 naming the dossier, nothing is written, and the page pool
    is replaced (a page of it may still be running)."""
    profile = load_profile(
        None,
        {
            "pipeline": {
                "workers": 1,
                "dossier_timeout_s": 0.001,
                "dossier_timeout_per_page_s": 0,
            }
        },
    )
    source = write_tiny_dossier(tmp_path / "in", "hs-cham", 7)
    out = tmp_path / "out"
    signer = SerialSignerHandle(lambda: open_signer(profile.sign))
    with PagePool(1) as pool:
        before = pool.current()
        ctx = JobContext(
            profile=profile,
            pages=pool,
            store=JournalStore(Journal(tmp_path / "journal.jsonl")),
            signer=signer,
        )
        job = DossierJob(job_id="j1", source=source, out_dir=out, name="hs-cham")
        try:
            outcome = run_job(job, ctx)
        finally:
            signer.close()
        assert pool.current() is not before
    assert (outcome.kind, outcome.exit_code) == ("bad_input", ExitCode.DOSSIER_TIMEOUT)
    assert outcome.error_type == "DossierTimeoutError"
    assert "hs-cham" in outcome.error and "deadline" in outcome.error
    assert not (out / "hs-cham").exists()
    assert not [p for p in os.listdir(out) if ".partial-" in p or ".work-" in p]
