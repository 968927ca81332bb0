"""Batch runs: every dossier folder of IN_DIR into OUT_DIR, resumable, nothing processed twice.

This module discovers the dossiers, plans them (bundle names, clashes), runs them through the
job layer (``digitize.jobs.run_job``: resume check, journal, pipeline, verification, error
classification) and writes the summary.

Concurrency (decided, measured in ``bench/batch.py``): ONE bounded pool of page workers
(``pipeline.workers``, one process per core by default, one tesseract thread each) is shared
by the whole batch, and at most ``dossier_concurrency`` dossiers (default 2) run at once in
threads over it. The pool bounds the CPU-heavy work, so two dossiers never oversubscribe the
cores: the second dossier's pages simply queue behind the first's. The second dossier exists
to keep the pool busy while the first one is in its serial, parent-side tail (PDF/A assembly,
signing, bundling, verification): with one dossier at a time the page workers idle during
that tail, which on small dossiers is most of the time. More than two in flight only holds
more page images in memory.

Guarantees:

* Inputs are never moved, modified or deleted (only ``digitize watch`` moves inputs).
* A bundle appears under its final name complete and verified, or not at all: a new bundle
  that fails verification is moved aside to ``OUT_DIR/.rejected-<bundle>-<random>`` and its
  dossier reported as failed (the job layer's one policy, shared with watch).
* Resume: a dossier whose bundle already exists, verifies, and was made from exactly the
  folder's current inputs (the same scan files with the same hashes and the same
  ``dossier.yaml``, ``Manifest.inputs``) is skipped. An existing bundle that fails
  verification or was made from other inputs (a page added or removed, a changed
  ``dossier.yaml``) is reported as failed with what differs, never overwritten: replacing a
  signed bundle is a person's decision (move the old one away, run again).
* Station faults stop the batch instead of failing every dossier after them: when a dossier
  fails because the station cannot sign or write (a time-stamp, revocation or signing service
  down, the token absent, the disk full: exit 50, 55, 57, 80) or needs a person (51–54, 56,
  63), no new dossier is started; those not started stay ``not_run`` and a re-run resumes
  them. A journal or summary that cannot be written (disk full) is reported, not a crash.
* A symbolic link in IN_DIR is not followed (it may lead into OUT_DIR or anywhere): it is a
  failed row (exit 16).
* ``OUT_DIR/.digitize-journal.jsonl`` is append-only (one JSON object per line, fsync'ed):
  the job layer's ``started``/``ended`` per attempt, and this module's ``finished`` (status
  ``ok``/``failed``) or ``skipped`` per dossier, each with time, pid and run id. A dossier is
  processed twice only if two ``finished`` records with status ``ok`` exist for it: the tests
  check that there never are.
* ``OUT_DIR/summary.json`` and ``summary.csv`` describe the last run (rewritten atomically
  after every dossier, so an interrupted batch still leaves an up-to-date summary). CSV cells
  are neutralised against spreadsheet formulas (``util.csv_safe``). Journal and summaries hold
  citizens' folder names: 0640, like the bundles.

The library installs no signal handlers: callers pass ``stop`` (finish running dossiers, start
no new one) and ``abandon`` (give up running dossiers now; their staging folders are removed)
events, which the CLI sets from SIGINT/SIGTERM.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Literal

from digitize._version import __version__
from digitize.bundle import bundle_name_for
from digitize.errors import (
    ConfigError,
    DigitizeError,
    ExitCode,
    OutputError,
    UnsafePathError,
)
from digitize.ingest import natural_key
from digitize.jobs import (
    DossierJob,
    JobContext,
    JobOutcome,
    Journal,
    JournalStore,
    PagePool,
    SerialSignerHandle,
    StationOptions,
    needs_person,
    paths_overlap,
    retry_later,
    run_job,
)
from digitize.jobs.statefiles import STATE_DIR_MODE, STATE_FILE_MODE
from digitize.models import FrozenModel
from digitize.pipeline import Event
from digitize.profiles import Profile, load_profile
from digitize.settings import BatchSettings
from digitize.sign import open_signer
from digitize.util import csv_safe, nfc, vn_now, write_atomic

JOURNAL_FILE = ".digitize-journal.jsonl"
SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"
SUMMARY_COLUMNS = (
    "dossier",
    "bundle",
    "status",
    "pages",
    "flags",
    "needs_review",
    "seconds",
    "error",
    "exit_code",
)

RowStatus = Literal["ok", "skipped", "failed", "not_run"]


class BatchRow(FrozenModel):
    """One line of ``summary.json``/``summary.csv``."""

    dossier: str  # input folder name (NFC)
    bundle: str | None = None  # bundle folder name under OUT_DIR
    status: RowStatus
    pages: int = 0
    flags: tuple[str, ...] = ()  # flag codes found anywhere in the manifest, sorted
    needs_review: bool = False
    seconds: float = 0.0
    error: str = ""
    exit_code: int = 0


class BatchResult(FrozenModel):
    in_dir: Path
    out_dir: Path
    run_id: str
    rows: tuple[BatchRow, ...]
    seconds: float
    interrupted: bool = False
    summary_json: Path
    summary_csv: Path
    journal: Path

    def count(self, status: RowStatus) -> int:
        return sum(1 for row in self.rows if row.status == status)

    @property
    def pages_processed(self) -> int:
        return sum(row.pages for row in self.rows if row.status == "ok")

    @property
    def exit_code(self) -> int:
        """0 all done (or skipped as already done), 90 some failed, 130 interrupted."""
        if self.count("failed"):
            return int(ExitCode.BATCH_PARTIAL)
        if self.interrupted or self.count("not_run"):
            return int(ExitCode.INTERRUPTED)
        return int(ExitCode.OK)


BatchEventKind = Literal["batch_started", "dossier_event", "dossier_finished", "notice"]


class BatchEvent(FrozenModel):
    kind: BatchEventKind
    dossier: str = ""  # input folder name
    total_dossiers: int = 0
    event: Event | None = None  # the pipeline's event, for ``dossier_event``
    row: BatchRow | None = None  # for ``dossier_finished``
    message: str = ""


BatchEventCallback = Callable[[BatchEvent], None]


# --- set-up and discovery -----------------------------------------------------------------------
def check_batch_setup(in_dir: Path, out_dir: Path) -> None:
    if not in_dir.is_dir():
        raise ConfigError("input folder not found (or not a folder)", path=in_dir)
    if paths_overlap(in_dir, out_dir):
        raise UnsafePathError(
            "the output folder overlaps the input folder (one is inside the other)",
            path=out_dir,
            hint="choose an output folder outside the input folder",
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError("output path exists and is not a folder", path=out_dir)


def discover_dossiers(in_dir: Path) -> list[Path]:
    """Dossier folders of ``in_dir`` in natural order; hidden entries and loose files skipped.
    Symbolic links to folders are listed (``plan_jobs`` refuses them, so they are reported)."""
    found = []
    with os.scandir(in_dir) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=True):
                found.append(in_dir / entry.name)
    return sorted(found, key=lambda p: natural_key(p.name))


def plan_jobs(
    dossiers: Sequence[Path], out_dir: Path, run_id: str
) -> tuple[list[DossierJob], list[BatchRow]]:
    """One job per dossier, in order, with its bundle name; rows for those that cannot run.

    Two inputs that would write the same bundle name: the first (natural order) wins, the
    other is failed (its bundle would otherwise be taken for the first one's on resume).
    """
    jobs: list[DossierJob] = []
    failed: list[BatchRow] = []
    owners: dict[str, str] = {}
    for folder in dossiers:
        name = nfc(folder.name)
        if folder.is_symlink():
            link = UnsafePathError(
                "the dossier is a symbolic link; it was not followed", path=name
            )
            failed.append(
                BatchRow(
                    dossier=name,
                    status="failed",
                    error=link.one_line(),
                    exit_code=int(link.exit_code),
                )
            )
            continue
        try:
            bundle = bundle_name_for(folder)
        except DigitizeError as exc:
            failed.append(
                BatchRow(
                    dossier=name,
                    status="failed",
                    error=exc.one_line(),
                    exit_code=int(exc.exit_code),
                )
            )
            continue
        if bundle in owners:
            failed.append(
                BatchRow(
                    dossier=name,
                    bundle=bundle,
                    status="failed",
                    error=f"same bundle name {bundle!r} as dossier {owners[bundle]!r}",
                    exit_code=int(ExitCode.OUTPUT),
                )
            )
            continue
        owners[bundle] = name
        jobs.append(
            DossierJob(
                job_id=name,
                source=folder,
                out_dir=out_dir,
                name=name,
                bundle=bundle,
                tags={"run": run_id},
            )
        )
    return jobs, failed


def row_of(outcome: JobOutcome) -> BatchRow | None:
    """The summary row of a job's outcome; None for an abandoned job (it stays ``not_run``)."""
    if outcome.kind == "abandoned":
        return None
    status: RowStatus = (
        "ok" if outcome.kind == "done" else "skipped" if outcome.kind == "skipped" else "failed"
    )
    return BatchRow(
        dossier=outcome.dossier,
        bundle=outcome.bundle,
        status=status,
        pages=outcome.pages,
        flags=outcome.flags,
        needs_review=outcome.needs_review,
        seconds=outcome.seconds,
        error=outcome.error,
        exit_code=outcome.exit_code,
    )


# --- summary -----------------------------------------------------------------------------------
def write_summary(out_dir: Path, result_fields: dict[str, Any], rows: Sequence[BatchRow]) -> None:
    payload = {
        **result_fields,
        "tool_version": __version__,
        "counts": {
            s: sum(1 for r in rows if r.status == s) for s in ("ok", "skipped", "failed", "not_run")
        },
        "dossiers": [row.model_dump(mode="json") for row in rows],
    }
    write_atomic(
        out_dir / SUMMARY_JSON,
        (json.dumps(payload, ensure_ascii=False, indent=2) + "\n").encode("utf-8"),
        mode=STATE_FILE_MODE,
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for row in rows:
        cells = [
            row.dossier,
            row.bundle or "",
            row.status,
            row.pages,
            ";".join(row.flags),
            "yes" if row.needs_review else "no",
            f"{row.seconds:.2f}",
            row.error,
            row.exit_code,
        ]
        # A folder name or an error message starting with "=" must not run as a formula.
        writer.writerow([csv_safe(cell) for cell in cells])
    # utf-8-sig: Excel (what offices open CSVs with) needs the BOM to show Vietnamese.
    write_atomic(out_dir / SUMMARY_CSV, buffer.getvalue().encode("utf-8-sig"), mode=STATE_FILE_MODE)


# --- the batch ---------------------------------------------------------------------------------
class _Rows:
    """The summary rows, kept in input order and written out after every change."""

    def __init__(
        self,
        names: Sequence[str],
        out_dir: Path,
        fields: Callable[[], dict],
        on_error: Callable[[OSError], None],
    ) -> None:
        self.names = list(names)
        self.out_dir = out_dir
        self._fields = fields
        self._on_error = on_error
        self._rows = {name: BatchRow(dossier=name, status="not_run") for name in names}
        self._lock = threading.Lock()

    def set(self, row: BatchRow) -> None:
        with self._lock:
            self._rows[row.dossier] = row
            try:
                write_summary(self.out_dir, self._fields(), list(self._rows.values()))
            except OSError as exc:  # disk full: the final summary is tried again at the end
                self._on_error(exc)

    def final(self) -> tuple[BatchRow, ...]:
        with self._lock:
            return tuple(self._rows[name] for name in self.names)


def batch_run(
    in_dir: str | Path,
    out_dir: str | Path,
    profile: Profile | None = None,
    *,
    settings: BatchSettings | None = None,
    on_event: BatchEventCallback | None = None,
    stop: threading.Event | None = None,
    abandon: threading.Event | None = None,
    station: StationOptions | None = None,
) -> BatchResult:
    """Run every dossier folder of ``in_dir`` into ``out_dir``; see the module docstring.

    ``settings`` default to ``profile.batch``; ``station`` may lend an open signer, the data
    folder and the trust roots. Never raises for a failed dossier (it is a row with status
    ``failed``); raises ``DigitizeError`` only for a set-up that cannot work (unsafe paths,
    a signer that cannot be opened).
    """
    started = time.monotonic()
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    profile = profile or load_profile()
    settings = settings or profile.batch
    station = station or StationOptions()
    stop = stop or threading.Event()
    abandon = abandon or threading.Event()
    check_batch_setup(in_dir, out_dir)
    try:
        out_dir.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the output folder: {exc.strerror}", path=out_dir
        ) from None
    dossiers = discover_dossiers(in_dir)
    run_id = f"{vn_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    started_at = vn_now().isoformat(timespec="seconds")
    journal = Journal(out_dir / JOURNAL_FILE)
    try:
        journal.append(
            "batch_started",
            run=run_id,
            in_dir=str(in_dir),
            dossiers=len(dossiers),
            tool_version=__version__,
        )
    except OSError as exc:
        raise OutputError(
            f"cannot write the journal: {exc.strerror or exc}", path=journal.path
        ) from None

    def summary_fields(interrupted: bool = False) -> dict[str, Any]:
        return {
            "run": run_id,
            "in_dir": str(in_dir),
            "out_dir": str(out_dir),
            "started_at": started_at,
            "seconds": round(time.monotonic() - started, 2),
            "interrupted": interrupted,
        }

    def emit(event: BatchEvent) -> None:
        if on_event is not None:
            on_event(event)

    def summary_trouble(exc: OSError) -> None:
        emit(BatchEvent(kind="notice", message=f"cannot write the summary: {exc.strerror or exc}"))

    rows = _Rows([nfc(d.name) for d in dossiers], out_dir, summary_fields, summary_trouble)

    def finish(row: BatchRow) -> None:
        rows.set(row)
        emit(BatchEvent(kind="dossier_finished", dossier=row.dossier, row=row))

    emit(BatchEvent(kind="batch_started", total_dossiers=len(dossiers)))
    jobs, unplanned = plan_jobs(dossiers, out_dir, run_id)
    for row in unplanned:
        finish(row)

    if station.signer is not None:
        signer = SerialSignerHandle(signer=station.signer)
    else:
        signer = SerialSignerHandle(lambda: open_signer(profile.sign, station.data_dir))
    if jobs:
        # Opened before anything else: a bad PIN or a revoked certificate stops the batch at
        # once, and the demo identity (and with it the demo trust root) exists from here on.
        signer.open()
    own_pool = PagePool(profile.pipeline.workers) if station.pages is None else None
    pages = station.pages or own_pool
    assert pages is not None
    try:
        ctx = JobContext(
            profile=profile,
            pages=pages,
            store=JournalStore(journal),
            signer=signer,
            trust_roots=station.trust_roots,
            verify_existing=settings.verify_existing,
            abandon=abandon,
            on_event=lambda job, event: emit(
                BatchEvent(kind="dossier_event", dossier=job.name, event=event)
            ),
            data_dir=station.data_dir,
        )

        halted = threading.Event()  # a station fault: start no new dossier

        def record(outcome: JobOutcome) -> None:
            try:
                _journal_outcome(journal, run_id, outcome)
            except OSError as exc:
                summary_trouble(exc)
                halted.set()
            if retry_later(outcome) or needs_person(outcome):
                if not halted.is_set():
                    emit(
                        BatchEvent(
                            kind="notice",
                            dossier=outcome.dossier,
                            message="the station cannot go on (" + outcome.error + "): no "
                            "new dossier is started; run the batch again once it is fixed",
                        )
                    )
                halted.set()
            row = row_of(outcome)
            if row is not None:
                finish(row)

        workers = getattr(pages, "workers", profile.pipeline.workers or 2)
        in_flight = settings.dossier_concurrency if workers > 1 else 1
        _run_jobs(jobs, ctx, in_flight, stop, halted, record)
    finally:
        if own_pool is not None:
            if abandon.is_set():
                own_pool.kill()  # pages of abandoned dossiers are not waited for
            else:
                own_pool.close()
        signer.close()

    interrupted = stop.is_set() or abandon.is_set()
    final_rows = rows.final()
    try:
        write_summary(out_dir, summary_fields(interrupted), final_rows)
        journal.append(
            "batch_finished",
            run=run_id,
            interrupted=interrupted,
            ok=sum(r.status == "ok" for r in final_rows),
            failed=sum(r.status == "failed" for r in final_rows),
        )
    except OSError as exc:
        raise OutputError(
            f"cannot write the summary or the journal: {exc.strerror or exc}", path=out_dir
        ) from None
    return BatchResult(
        in_dir=in_dir,
        out_dir=out_dir,
        run_id=run_id,
        rows=final_rows,
        seconds=round(time.monotonic() - started, 2),
        interrupted=interrupted,
        summary_json=out_dir / SUMMARY_JSON,
        summary_csv=out_dir / SUMMARY_CSV,
        journal=journal.path,
    )


def _journal_outcome(journal: Journal, run_id: str, outcome: JobOutcome) -> None:
    """The batch's own record of a dossier: ``skipped``, or ``finished`` with its status."""
    if outcome.kind == "abandoned":
        return  # the job layer recorded it; the dossier stays not_run
    common = {"run": run_id, "dossier": outcome.dossier, "bundle": outcome.bundle}
    if outcome.kind == "skipped":
        journal.append("skipped", **common, reason="bundle exists and verifies")
        return
    journal.append(
        "finished",
        **common,
        status="ok" if outcome.kind == "done" else "failed",
        kind=outcome.kind,
        exit_code=outcome.exit_code,
        error=outcome.error,
        pages=outcome.pages,
        rejected_bundle=str(outcome.rejected_bundle or ""),
    )


def _run_jobs(
    jobs: Sequence[DossierJob],
    ctx: JobContext,
    in_flight: int,
    stop: threading.Event,
    halted: threading.Event,
    record: Callable[[JobOutcome], None],
) -> None:
    """At most ``in_flight`` jobs at once, in order; none started once stop, abandon or halted
    is set. A job whose journal could not be written (run_job raises only for its store) is a
    failed outcome of the station (exit 80), and the batch halts."""
    queue = list(jobs)
    started: dict[Future[JobOutcome], DossierJob] = {}
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="dossier") as threads:
        pending: set[Future[JobOutcome]] = set()
        while queue or pending:
            while queue and len(pending) < in_flight and not (
                stop.is_set() or ctx.abandon.is_set() or halted.is_set()
            ):
                job = queue.pop(0)
                future = threads.submit(run_job, job, ctx)
                started[future] = job
                pending.add(future)
            if not pending:
                break
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    outcome = future.result()
                except OSError as exc:
                    job = started[future]
                    error = OutputError(
                        f"cannot write the journal: {exc.strerror or exc}", path=job.name
                    )
                    outcome = JobOutcome(
                        job_id=job.job_id,
                        dossier=job.name,
                        kind="station_fault",
                        retryable=True,
                        bundle=job.bundle,
                        exit_code=int(error.exit_code),
                        error=error.one_line(),
                        error_type=type(error).__name__,
                    )
                record(outcome)


__all__ = [
    "BatchEvent",
    "BatchResult",
    "BatchRow",
    "BatchSettings",
    "JOURNAL_FILE",
    "SUMMARY_CSV",
    "SUMMARY_JSON",
    "batch_run",
    "check_batch_setup",
    "discover_dossiers",
    "plan_jobs",
    "row_of",
    "write_summary",
]
