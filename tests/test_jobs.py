"""The job layer on its own (issue 16): ``run_job`` over collaborators written here.

The page executor and the job store below are fakes that only record what ``run_job`` asks of
them: that is the seam under test. Everything else is real: tiny real dossiers, the whole
pipeline, the demo signer, the test PKI (certomancer) for certificate faults, a real page pool
whose workers are killed.

Covers every outcome kind — done, skipped, bad_input (a truncated scan, a broken
``dossier.yaml``), conflict (a bundle of other scans, a tampered bundle), station_fault that a
retry may cure (time-stamp service down, revocation unreachable, a dead page pool, which is
replaced) and that needs a person (revoked certificate, a signer the station does not trust),
bug (a failing event callback, a manifest signature that does not verify), abandoned — plus the
one policy for a new bundle that fails verification (moved aside, never under its final name),
attempt counting in the JSONL store, the one-PIN-try rule of the signer handle, the bundle-name
rule shared with ingest (R31), and the serialisability of jobs and outcomes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import unicodedata
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path

import pytest

from digitize.bundle import bundle_name_for, safe_bundle_name
from digitize.errors import BadPinError, ExitCode, SignerConfigError
from digitize.ingest import ingest_dossier
from digitize.jobs import (
    Attempts,
    DossierJob,
    JobContext,
    JobOutcome,
    Journal,
    JournalStore,
    PagePool,
    SerialSignerHandle,
    run_job,
)
from digitize.models import PadesLevel
from digitize.pipeline import Event
from digitize.profiles import load_profile
from digitize.settings import SigningSettings
from digitize.sign import DigitiserSigner, open_signer
from digitize.verify import verify_bundle
from tests import helpers_pki
from tests.helpers_batch import (
    ManifestSignedOverOtherBytes,
    page_jpeg,
    rejected_bundles,
    write_corrupt_dossier,
    write_tiny_dossier,
)
from tests.helpers_pki import PFX_PASSWORD, PkiServices, free_port

vn_pki = helpers_pki.vn_pki

PROFILE = load_profile(None, {"pipeline": {"workers": 1}})


# --- the fakes: they record, run_job decides ----------------------------------------------------
class RecordingPages:
    """PageExecutor: hands out ``executor`` (None: pages run in the calling thread) and records
    which executors it was told were broken."""

    def __init__(self, executor: Executor | None = None) -> None:
        self.executor = executor
        self.replaced: list[Executor | None] = []

    def current(self) -> Executor | None:
        return self.executor

    def replace_broken(self, broken: Executor | None) -> None:
        self.replaced.append(broken)


class MemoryStore:
    """JobStore in a list: (event, job id, attempt or outcome kind)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, object]] = []

    def attempts(self, key: str) -> Attempts:
        started = sum(1 for e, job, _ in self.records if e == "started" and job == key)
        ended = sum(1 for e, job, _ in self.records if e == "ended" and job == key)
        return Attempts(started=started, ended=ended)

    def job_started(self, job: DossierJob, bundle: str, attempt: int) -> None:
        self.records.append(("started", job.job_id, attempt))

    def job_ended(self, job: DossierJob, outcome: JobOutcome) -> None:
        self.records.append(("ended", job.job_id, outcome.kind))


@pytest.fixture
def demo_signer() -> Iterator[SerialSignerHandle]:
    handle = SerialSignerHandle(lambda: open_signer(PROFILE.sign))
    yield handle
    handle.close()


def _context(signer: SerialSignerHandle, **fields: object) -> JobContext:
    values: dict[str, object] = {
        "profile": PROFILE,
        "pages": RecordingPages(),
        "store": MemoryStore(),
        "signer": signer,
    }
    values.update(fields)
    return JobContext(**values)  # type: ignore[arg-type]


def _job(source: Path, out: Path, job_id: str | None = None) -> DossierJob:
    return DossierJob(
        job_id=job_id or source.name, source=source, out_dir=out, name=source.name
    )


def _leftovers(out: Path) -> list[str]:
    """Staging or work folders left in ``out`` (none may survive a run, whatever its end)."""
    names = os.listdir(out) if out.is_dir() else []
    return [name for name in names if ".partial-" in name or ".work-" in name]


# --- done, skipped, conflict --------------------------------------------------------------------
def test_done_then_skipped_then_conflicts(tmp_path: Path, demo_signer: SerialSignerHandle) -> None:
    source = write_tiny_dossier(tmp_path / "in", "hs-1", 1)
    out = tmp_path / "out"
    ctx = _context(demo_signer)
    store: MemoryStore = ctx.store  # type: ignore[assignment]

    done = run_job(_job(source, out), ctx)
    assert (done.kind, done.exit_code, done.attempt, done.pages) == ("done", 0, 1, 1)
    assert done.bundle_path == out / "hs-1" and verify_bundle(done.bundle_path, allow_demo=True).ok
    assert "demo_signer" in done.flags
    assert store.records == [("started", "hs-1", 1), ("ended", "hs-1", "done")]

    # Resume: the bundle exists, verifies and was made from these scans — nothing is run.
    skipped = run_job(_job(source, out), ctx)
    assert (skipped.kind, skipped.bundle_path, skipped.pages) == ("skipped", out / "hs-1", 1)
    assert len(store.records) == 2

    # A re-scan under the same name: the bundle is someone else's now, left as found.
    scan = source / "c1" / "p01.jpg"
    scan.write_bytes(scan.read_bytes() + b"\0")
    other = run_job(_job(source, out), ctx)
    assert (other.kind, other.exit_code) == ("conflict", ExitCode.OUTPUT)
    assert "c1/p01.jpg changed" in other.error and not other.retryable

    # A damaged bundle under the name: reported with the verifier's code, never overwritten.
    pdf = out / "hs-1" / "hs-1.001.pdf"
    damaged = bytearray(pdf.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    pdf.write_bytes(bytes(damaged))
    broken = run_job(_job(source, out), ctx)
    assert (broken.kind, broken.exit_code) == ("conflict", ExitCode.VERIFY_HASH)
    assert pdf.read_bytes() == bytes(damaged)
    assert len(store.records) == 2  # a conflict is found before anything is started


def test_skipping_a_bundle_removes_the_work_folder_a_killed_run_left(
    tmp_path: Path, demo_signer: SerialSignerHandle
) -> None:
    """A run killed between its bundle's rename and its clean-up leaves ``.<bundle>.work-…``;
    the next runs skip the dossier, so the skip must remove it (this host, dead process
    only: a live writer's staging stays)."""
    import subprocess
    import sys

    from digitize.bundle import host_token

    source = write_tiny_dossier(tmp_path / "in", "hs-1", 1)
    out = tmp_path / "out"
    ctx = _context(demo_signer)
    assert run_job(_job(source, out), ctx).kind == "done"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is dead now
    dead = out / f".hs-1.work-{host_token()}-{gone.pid}-0a1b2c3d"
    live = out / f".hs-1.work-{host_token()}-{os.getpid()}-4e5f6a7b"
    other_host = out / f".hs-1.partial-otherhost-{gone.pid}-8c9d0e1f"
    for folder in (dead, live, other_host):
        folder.mkdir()
        (folder / "page.png").write_bytes(b"left behind")
    assert run_job(_job(source, out), ctx).kind == "skipped"
    assert not dead.exists()
    assert live.exists() and other_host.exists()


# --- bad input ----------------------------------------------------------------------------------
def test_bad_input(tmp_path: Path, demo_signer: SerialSignerHandle) -> None:
    out = tmp_path / "out"
    ctx = _context(demo_signer)
    store: MemoryStore = ctx.store  # type: ignore[assignment]
    truncated = run_job(_job(write_corrupt_dossier(tmp_path / "in", "hs-cut"), out), ctx)
    assert (truncated.kind, truncated.exit_code) == ("bad_input", ExitCode.TRUNCATED_FILE)
    assert truncated.error_type == "TruncatedFileError"
    assert "hs-cut/c1/p01.jpg" in truncated.error and truncated.attempt == 1
    assert store.records[-1] == ("ended", "hs-cut", "bad_input")

    yaml_broken = write_tiny_dossier(tmp_path / "in", "hs-yaml", 2)
    (yaml_broken / "dossier.yaml").write_text("dossier_code: [unclosed\n", encoding="utf-8")
    refused = run_job(_job(yaml_broken, out), ctx)
    assert (refused.kind, refused.exit_code) == ("bad_input", ExitCode.CONFIG)
    assert refused.attempt == 0 and not any(job == "hs-yaml" for _e, job, _x in store.records)
    assert not out.exists() or not any(p for p in out.iterdir() if not p.name.startswith("."))


# --- station faults -----------------------------------------------------------------------------
def test_time_stamp_service_down_is_a_station_fault_to_retry(tmp_path: Path) -> None:
    """R23: B-T with the TSA unreachable fails the dossier as the station's fault (exit 55),
    retryable; no bundle and no staging folder remain."""
    dead = f"http://127.0.0.1:{free_port()}/tsa"
    profile = load_profile(
        None, {"pipeline": {"workers": 1}, "sign": {"level": "B-T", "tsa_url": dead}}
    )
    handle = SerialSignerHandle(lambda: open_signer(profile.sign))
    try:
        outcome = run_job(
            _job(write_tiny_dossier(tmp_path / "in", "hs-tsa", 3), tmp_path / "out"),
            _context(handle, profile=profile),
        )
    finally:
        handle.close()
    assert (outcome.kind, outcome.retryable) == ("station_fault", True)
    assert outcome.exit_code == ExitCode.TSA_UNAVAILABLE and dead in outcome.error
    assert not (tmp_path / "out" / "hs-tsa").exists() and _leftovers(tmp_path / "out") == []


def _pkcs12(pki: PkiServices, who: str) -> SigningSettings:
    return SigningSettings(
        backend="pkcs12",
        pkcs12_path=str(pki.pkcs12_path(who)),
        trust_roots=(str(pki.root_cert),),
        level=PadesLevel.B_B,
    )


def test_certificate_faults_are_the_stations(
    tmp_path: Path, vn_pki: PkiServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R25: a revoked certificate needs a person (not retryable, exit 51); revocation that
    cannot be checked (OCSP/CRL down) is retried later (exit 57). Neither is the dossier's."""
    monkeypatch.setenv("DIGITIZE_PKCS12_PASSWORD", PFX_PASSWORD)
    source = write_tiny_dossier(tmp_path / "in", "hs-cert", 4)
    revoked = SerialSignerHandle(lambda: open_signer(_pkcs12(vn_pki, "nam")))
    outcome = run_job(_job(source, tmp_path / "out"), _context(revoked))
    assert (outcome.kind, outcome.retryable) == ("station_fault", False)
    assert outcome.exit_code == ExitCode.CERT_REVOKED

    # A secret from the environment serves one open per process (it is removed once read).
    monkeypatch.setenv("DIGITIZE_PKCS12_PASSWORD", PFX_PASSWORD)
    unreachable = SerialSignerHandle(lambda: open_signer(_pkcs12(vn_pki, "hoa")))
    with vn_pki.services_stopped():
        outcome = run_job(_job(source, tmp_path / "out"), _context(unreachable))
    assert (outcome.kind, outcome.retryable) == ("station_fault", True)
    assert outcome.exit_code == ExitCode.SIGNER_UNAVAILABLE
    assert not (tmp_path / "out" / "hs-cert").exists()


def test_dead_page_pool_is_replaced_and_the_next_job_runs(
    tmp_path: Path, demo_signer: SerialSignerHandle
) -> None:
    """A page worker killed under a dossier (the OOM killer): the dossier is a retryable
    station fault, the pool is replaced, and the next dossier runs on the new pool."""
    profile = load_profile(None, {"pipeline": {"workers": 2}})
    out = tmp_path / "out"
    with PagePool(2) as pool:
        broken = pool.current()
        assert broken is not None
        assert broken.submit(os.getpid).result(timeout=120) > 0  # workers are up
        for process in list(broken._processes.values()):  # type: ignore[attr-defined]  # noqa: SLF001
            os.kill(process.pid, signal.SIGKILL)
        time.sleep(0.5)
        ctx = _context(demo_signer, profile=profile, pages=pool)
        died = run_job(_job(write_tiny_dossier(tmp_path / "in", "hs-a", 5), out), ctx)
        assert (died.kind, died.retryable, died.exit_code) == ("station_fault", True, 1)
        assert died.error_type == "PageWorkerDiedError"
        assert pool.current() is not broken and pool.current() is not None
        after = run_job(_job(write_tiny_dossier(tmp_path / "in", "hs-b", 6), out), ctx)
    assert after.kind == "done" and verify_bundle(out / "hs-b", allow_demo=True).ok
    assert not (out / "hs-a").exists()


# --- one policy for a new bundle that fails verification ---------------------------------------
def test_untrusted_signer_bundle_is_moved_aside(
    tmp_path: Path, vn_pki: PkiServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A station that does not trust its own signer (a real certificate, no trust root): the
    bundle is complete but unverifiable here — moved aside, never under its final name; a
    person must fix the station (exit 63, not retryable). (A DEMO-signing station trusts its
    own demo root, so the signer here is a test-PKI person.)"""
    out = tmp_path / "out"
    monkeypatch.setenv("DIGITIZE_PKCS12_PASSWORD", PFX_PASSWORD)
    signer = SerialSignerHandle(lambda: open_signer(_pkcs12(vn_pki, "hoa")))
    ctx = _context(signer, trust_roots=())
    try:
        outcome = run_job(_job(write_tiny_dossier(tmp_path / "in", "hs-trust", 7), out), ctx)
    finally:
        signer.close()
    assert (outcome.kind, outcome.retryable) == ("station_fault", False)
    assert outcome.exit_code == ExitCode.VERIFY_TRUST
    assert outcome.error_type == "UntrustedError" and "fails verification" in outcome.error
    assert not (out / "hs-trust").exists()
    assert outcome.rejected_bundle is not None
    assert rejected_bundles(out, "hs-trust") == [outcome.rejected_bundle]
    assert (outcome.rejected_bundle / "manifest.json").is_file()


def test_bugs(tmp_path: Path, demo_signer: SerialSignerHandle) -> None:
    out = tmp_path / "out"

    def failing(_job: DossierJob, event: Event) -> None:
        if event.kind == "page_done":
            raise RuntimeError("callback broke")

    ctx = _context(demo_signer, on_event=failing)
    crashed = run_job(_job(write_tiny_dossier(tmp_path / "in", "hs-cb", 8), out), ctx)
    assert (crashed.kind, crashed.exit_code, crashed.retryable) == ("bug", 1, False)
    assert "internal error: RuntimeError: callback broke" in crashed.error
    assert not (out / "hs-cb").exists() and _leftovers(out) == []

    # R32: a manifest signature that does not cover manifest.json — the tool's own output is
    # wrong: a bug, and the bundle is moved aside like any unverifiable one.
    inner = open_signer(PROFILE.sign)
    bad = SerialSignerHandle(signer=ManifestSignedOverOtherBytes(inner))
    try:
        unsigned = run_job(
            _job(write_tiny_dossier(tmp_path / "in", "hs-sig", 9), out), _context(bad)
        )
    finally:
        inner.close()
    assert (unsigned.kind, unsigned.exit_code) == ("bug", ExitCode.VERIFY_SIGNATURE)
    assert not (out / "hs-sig").exists()
    assert rejected_bundles(out, "hs-sig") == [unsigned.rejected_bundle]


def test_abandoned(tmp_path: Path, demo_signer: SerialSignerHandle) -> None:
    """Abandon set mid-run (after the page is read, before its PDF is built): given up at the
    next event, the staging folder removed, the attempt recorded as ended."""
    abandon = threading.Event()

    def abandon_after_the_page(_job: DossierJob, event: Event) -> None:
        if event.kind == "page_done":
            abandon.set()

    ctx = _context(demo_signer, abandon=abandon, on_event=abandon_after_the_page)
    out = tmp_path / "out"
    outcome = run_job(_job(write_tiny_dossier(tmp_path / "in", "hs-stop", 10), out), ctx)
    assert outcome.kind == "abandoned" and not outcome.failed
    assert ctx.store.records == [  # type: ignore[attr-defined]
        ("started", "hs-stop", 1),
        ("ended", "hs-stop", "abandoned"),
    ]
    assert not (out / "hs-stop").exists() and _leftovers(out) == []


# --- the store and the signer handle ------------------------------------------------------------
def test_journal_store_counts_attempts_by_job_and_by_content(tmp_path: Path) -> None:
    """Attempts that never ended (the process died) stay visible to a new process: what a
    limit on crashed attempts (poison pills) needs."""
    path = tmp_path / "journal.jsonl"
    job = DossierJob(
        job_id="claim-1",
        source=tmp_path,
        out_dir=tmp_path,
        name="hs-1",
        content_sha256="c0ffee",
        tags={"claim": "claim-1"},
    )
    first = JournalStore(Journal(path))
    first.job_started(job, "hs-1", 1)
    # a crash: a new process reads the file
    second = JournalStore(Journal(path))
    assert second.attempts("claim-1") == Attempts(started=1, ended=0)
    assert second.attempts("claim-1").unfinished == 1
    with open(path, "ab") as handle:
        handle.write(b'{"event": "started", "job": "claim-1", "att')  # torn by kill -9
    third = JournalStore(Journal(path))
    third.job_started(job, "hs-1", 2)
    outcome = JobOutcome(job_id="claim-1", dossier="hs-1", kind="bad_input", attempt=2)
    third.job_ended(job, outcome)
    assert third.attempts("claim-1") == Attempts(started=2, ended=1)
    assert third.attempts("c0ffee") == Attempts(started=2, ended=1)  # by content hash
    assert JournalStore(Journal(path)).attempts("claim-1").unfinished == 1
    records = Journal(path).records()
    assert [r["event"] for r in records] == ["started", "started", "ended"]
    assert all(r["claim"] == "claim-1" and r["time"].endswith("+07:00") for r in records)


def test_signer_handle_asks_for_a_refused_pin_once(
    vn_pki: PkiServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R27: tokens lock after a few wrong PINs — a refused PIN is not tried again by the same
    process; a signer that could not open for another reason is tried again."""
    calls: list[str] = []

    def opener() -> DigitiserSigner:
        calls.append("open")
        return open_signer(_pkcs12(vn_pki, "hoa"))

    monkeypatch.setenv("DIGITIZE_PKCS12_PASSWORD", "wrong-password")
    refused = SerialSignerHandle(opener)
    for _ in range(3):
        with pytest.raises(BadPinError):
            refused.open()
    assert calls == ["open"]

    calls.clear()
    monkeypatch.delenv("DIGITIZE_PKCS12_PASSWORD", raising=False)  # removed once read
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # no terminal to prompt on
    missing = SerialSignerHandle(opener)
    for _ in range(2):
        with pytest.raises(SignerConfigError):
            missing.open()
    assert calls == ["open", "open"]


# --- names and serialisation --------------------------------------------------------------------
def test_bundle_name_rule_is_the_one_ingest_names_the_dossier_by(tmp_path: Path) -> None:
    """R31: the name batch and watch plan with is the name ``run_dossier`` writes — for a
    declared code, a folder name in NFD, and a single scan file."""
    declared = write_tiny_dossier(tmp_path, "hs-code", 11)
    (declared / "dossier.yaml").write_text("dossier_code: HS/Đắk Lắk 01\n", encoding="utf-8")
    nfd_name = unicodedata.normalize("NFD", "Hồ sơ Đăng ký 2")
    folder = write_tiny_dossier(tmp_path, nfd_name, 12)
    single = tmp_path / "Giấy tờ lẻ.jpg"
    single.write_bytes(page_jpeg(13))
    for source in (declared, folder, single):
        assert bundle_name_for(source) == safe_bundle_name(ingest_dossier(source).code), source
    assert bundle_name_for(declared) == "HS_Dak_Lak_01"


def test_jobs_and_outcomes_cross_a_queue_unchanged(tmp_path: Path) -> None:
    """A queue worker receives the job as JSON and returns the outcome as JSON."""
    job = DossierJob(
        job_id="a1", source=tmp_path / "in" / "hs-1", out_dir=tmp_path / "out", name="hs-1",
        tags={"run": "r1"},
    )
    assert DossierJob.model_validate_json(job.model_dump_json()) == job
    outcome = JobOutcome(
        job_id="a1", dossier="hs-1", kind="station_fault", retryable=True, exit_code=55,
        rejected_bundle=tmp_path / ".rejected-hs-1-0000", flags=("demo_signer",),
    )
    assert JobOutcome.model_validate_json(outcome.model_dump_json()) == outcome

