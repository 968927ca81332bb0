"""Batch runs: every dossier folder of IN_DIR into OUT_DIR, resumable, nothing processed twice.

Concurrency (decided, measured in ``bench/batch.py``): ONE bounded pool of page workers (one
process per core, one tesseract thread each) is shared by the whole batch, and at most
``dossier_concurrency`` dossiers (default 2) run at once in threads over it. The pool bounds
the CPU-heavy work, so two dossiers never oversubscribe the cores: the second dossier's pages
simply queue behind the first's. The second dossier exists to keep the pool busy while the
first one is in its serial, parent-side tail (PDF/A assembly, signing, bundling, verification):
with one dossier at a time the page workers idle during that tail, which on small dossiers is
most of the time. More than two in flight only holds more page images in memory.

Guarantees:

* Inputs are never moved, modified or deleted (only ``digitize watch`` moves inputs).
* A bundle appears under its final name complete or not at all (``digitize.bundle``).
* Resume: a dossier whose bundle already exists, verifies, and was made from the same scans
  (every source hash in its manifest matches the file in the dossier) is skipped. An existing
  bundle that fails verification or belongs to other scans is reported as failed, never
  overwritten.
* ``OUT_DIR/.digitize-journal.jsonl`` is append-only (one JSON object per line, fsync'ed):
  ``started``/``finished``/``skipped`` per dossier with time, pid and run id. A dossier is
  processed twice only if two ``finished`` records with status ``ok`` exist for it: the tests
  check that there never are.
* ``OUT_DIR/summary.json`` and ``summary.csv`` describe the last run (rewritten atomically
  after every dossier, so an interrupted batch still leaves an up-to-date summary).

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
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures.thread import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from digitize import __version__
from digitize.bundle import safe_bundle_name
from digitize.errors import (
    ConfigError,
    DigitizeError,
    ExitCode,
    InterruptedRunError,
    OutputError,
    PageWorkerDiedError,
    UnsafePathError,
)
from digitize.ingest import DOSSIER_YAML, load_dossier_yaml, natural_key
from digitize.manifest import MANIFEST_FILE, Manifest
from digitize.models import FrozenModel
from digitize.pipeline import Event, new_process_pool, run_dossier, usable_cores
from digitize.profiles import BatchSettings, Profile, load_profile
from digitize.sign import DigitiserSigner, open_signer
from digitize.util import sha256_file, write_atomic
from digitize.verify import demo_allowed_for

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


# --- set-up checks ----------------------------------------------------------------------------
def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def paths_overlap(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` are the same folder or one lies inside the other."""
    ra, rb = _real(a), _real(b)
    return ra == rb or ra in rb.parents or rb in ra.parents


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
    """Dossier folders of ``in_dir`` in natural order; hidden entries and loose files skipped."""
    found = []
    with os.scandir(in_dir) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=True):
                found.append(in_dir / entry.name)
    return sorted(found, key=lambda p: natural_key(p.name))


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def expected_bundle_name(dossier_dir: Path) -> str:
    """The bundle folder name ``run_dossier`` will use: dossier.yaml's code, else the name."""
    yaml_path = dossier_dir / DOSSIER_YAML
    if yaml_path.is_file():
        spec = load_dossier_yaml(yaml_path)
        if spec.dossier_code:
            return safe_bundle_name(spec.dossier_code)
    return safe_bundle_name(nfc(dossier_dir.name))


# --- existing bundles (resume) -----------------------------------------------------------------
class ExistingBundle(FrozenModel):
    """What an existing bundle under the expected name is worth for this dossier."""

    ok: bool  # verifies and was made from this dossier's scans
    reason: str = ""
    exit_code: int = 0
    pages: int = 0
    flags: tuple[str, ...] = ()
    needs_review: bool = False


def manifest_flag_codes(manifest: Manifest) -> tuple[str, ...]:
    codes = {f.code for f in manifest.flags}
    for doc in manifest.documents:
        codes.update(f.code for f in doc.flags)
        for page in doc.pages:
            codes.update(f.code for f in page.flags)
    return tuple(sorted(codes))


def _file_by_nfc_name(dossier_dir: Path, relative: str) -> Path | None:
    direct = dossier_dir / relative
    if direct.is_file():
        return direct
    current = dossier_dir
    for part in Path(relative).parts:
        if not current.is_dir():
            return None
        match = next((e for e in os.scandir(current) if nfc(e.name) == nfc(part)), None)
        if match is None:
            return None
        current = current / match.name
    return current if current.is_file() else None


def sources_match(manifest: Manifest, dossier_dir: Path) -> str | None:
    """None when every scan named in the manifest is in ``dossier_dir`` with the same hash."""
    seen: dict[str, str] = {}
    for doc in manifest.documents:
        for page in doc.pages:
            seen.setdefault(page.source_file, page.source_sha256)
    for relative, digest in seen.items():
        path = _file_by_nfc_name(dossier_dir, relative)
        if path is None:
            return f"the bundle was made from {relative}, which is not in the dossier folder"
        if sha256_file(path) != digest:
            return f"the bundle was made from a different {relative} (hash differs)"
    return None


def check_existing_bundle(
    bundle: Path,
    dossier_dir: Path,
    trust_roots: tuple[Path, ...] | None = None,
    *,
    verify: bool = True,
    allow_demo: bool = False,
) -> ExistingBundle:
    """Verify an existing bundle and check it was made from ``dossier_dir``'s scans."""
    from digitize.verify import verify_bundle

    if verify:
        report = verify_bundle(bundle, trust_roots, lang="en", allow_demo=allow_demo)
        if not report.ok:
            first = report.failures[0]
            return ExistingBundle(
                ok=False,
                reason=f"existing bundle fails verification: {first.name}: {first.message}",
                exit_code=report.exit_code,
            )
    try:
        manifest = Manifest.model_validate_json((bundle / MANIFEST_FILE).read_bytes())
    except (OSError, ValueError) as exc:
        return ExistingBundle(
            ok=False,
            reason=f"existing bundle has no readable manifest: {exc}",
            exit_code=int(ExitCode.VERIFY_STRUCTURE),
        )
    mismatch = sources_match(manifest, dossier_dir)
    if mismatch is not None:
        return ExistingBundle(
            ok=False,
            reason=f"a bundle of this name exists: {mismatch}",
            exit_code=int(ExitCode.OUTPUT),
        )
    pages = sum(len(doc.pages) for doc in manifest.documents)
    return ExistingBundle(
        ok=True,
        pages=pages,
        flags=manifest_flag_codes(manifest),
        needs_review=manifest.needs_review,
    )


# --- journal -----------------------------------------------------------------------------------
class Journal:
    """Append-only JSON lines, one ``write`` + fsync per record (safe against kill -9)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._checked_tail = False

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {
            "event": event,
            "time": datetime.now().astimezone().isoformat(timespec="milliseconds"),
            "pid": os.getpid(),
            **fields,
        }
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if not self._checked_tail:
                    # A record torn by kill -9 must not swallow the next one: end its line.
                    size = os.fstat(fd).st_size
                    if size and os.pread(fd, 1, size - 1) != b"\n":
                        os.write(fd, b"\n")
                    self._checked_tail = True
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return record

    def records(self) -> list[dict[str, Any]]:
        return read_journal(self.path)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """All complete records; a torn last line (kill -9 mid-write) is ignored."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


# --- shared resources --------------------------------------------------------------------------
class PagePool:
    """The batch's one page pool, replaced when a worker dies (OOM killer, kill -9).

    A dead worker breaks a ``ProcessPoolExecutor`` for good; without a replacement every
    later dossier of a long batch or of a watch folder would fail the same way.
    """

    def __init__(self, workers: int = 0) -> None:
        self.count = workers or usable_cores()
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = (
            new_process_pool(self.count) if self.count > 1 else None
        )

    @property
    def executor(self) -> Executor | None:
        with self._lock:
            return self._pool

    def replace_broken(self, broken: Executor | None) -> None:
        with self._lock:
            if broken is None or self._pool is not broken:
                return  # another thread replaced it already
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = new_process_pool(self.count)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def __enter__(self) -> PagePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialSigner(DigitiserSigner):
    """One signer shared by dossier threads: calls go through one lock.

    A PKCS#11 token or a remote CSC credential is one session; interleaving two signatures
    on it is not something every back-end supports, and signing is not the bottleneck.
    """

    def __init__(self, inner: DigitiserSigner) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    @property
    def identity(self):  # type: ignore[no-untyped-def]
        return self._inner.identity

    def sign_pdf(
        self, in_path: Path, out_path: Path, *, scan_time: datetime, text_boxes_pt: tuple = ()
    ):  # type: ignore[no-untyped-def,type-arg]
        with self._lock:
            return self._inner.sign_pdf(
                in_path, out_path, scan_time=scan_time, text_boxes_pt=text_boxes_pt
            )

    def sign_detached(self, data: bytes) -> bytes:
        with self._lock:
            return self._inner.sign_detached(data)

    def close(self) -> None:
        self._inner.close()


class AbandonedError(InterruptedRunError):
    """Raised from the progress callback to make ``run_dossier`` give up (staging removed)."""


def trust_roots_for(profile: Profile) -> tuple[Path, ...]:
    from digitize.verify import default_trust_roots

    return tuple(default_trust_roots()) + tuple(Path(p) for p in profile.sign.trust_roots)


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
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for row in rows:
        writer.writerow(
            [
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
        )
    # utf-8-sig: Excel (what offices open CSVs with) needs the BOM to show Vietnamese.
    write_atomic(out_dir / SUMMARY_CSV, buffer.getvalue().encode("utf-8-sig"))


# --- the batch ---------------------------------------------------------------------------------
def batch_run(
    in_dir: str | Path,
    out_dir: str | Path,
    profile: Profile | None = None,
    *,
    settings: BatchSettings | None = None,
    signer: DigitiserSigner | None = None,
    on_event: BatchEventCallback | None = None,
    stop: threading.Event | None = None,
    abandon: threading.Event | None = None,
    data_dir: Path | None = None,
    trust_roots: tuple[Path, ...] | None = None,
) -> BatchResult:
    """Run every dossier folder of ``in_dir`` into ``out_dir``; see the module docstring.

    Never raises for a failed dossier (it is a row with status ``failed``); raises
    ``DigitizeError`` only for a set-up that cannot work (unsafe paths, bad signer).
    """
    started = time.monotonic()
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    profile = profile or load_profile()
    settings = settings or profile.batch.model_copy(update={"workers": profile.pipeline.workers})
    stop = stop or threading.Event()
    abandon = abandon or threading.Event()
    check_batch_setup(in_dir, out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the output folder: {exc.strerror}", path=out_dir
        ) from None
    dossiers = discover_dossiers(in_dir)
    run_id = f"{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    journal = Journal(out_dir / JOURNAL_FILE)
    journal.append(
        "batch_started",
        run=run_id,
        in_dir=str(in_dir),
        dossiers=len(dossiers),
        tool_version=__version__,
    )
    names = [nfc(d.name) for d in dossiers]
    rows: dict[str, BatchRow] = {name: BatchRow(dossier=name, status="not_run") for name in names}
    rows_lock = threading.Lock()

    def emit(event: BatchEvent) -> None:
        if on_event is not None:
            on_event(event)

    def summary_fields(interrupted: bool) -> dict[str, Any]:
        return {
            "run": run_id,
            "in_dir": str(in_dir),
            "out_dir": str(out_dir),
            "started_at": started_at,
            "seconds": round(time.monotonic() - started, 2),
            "interrupted": interrupted,
        }

    def finish(row: BatchRow) -> None:
        with rows_lock:
            rows[row.dossier] = row
            write_summary(out_dir, summary_fields(False), list(rows.values()))
        emit(BatchEvent(kind="dossier_finished", dossier=row.dossier, row=row))

    started_at = datetime.now().astimezone().isoformat(timespec="seconds")
    emit(BatchEvent(kind="batch_started", total_dossiers=len(dossiers)))

    # Two inputs that would write the same bundle name: the first (natural order) wins.
    planned: list[tuple[Path, str, str]] = []
    owners: dict[str, str] = {}
    for folder, name in zip(dossiers, names, strict=True):
        try:
            bundle = expected_bundle_name(folder)
        except DigitizeError as exc:
            finish(
                BatchRow(
                    dossier=name,
                    status="failed",
                    error=exc.one_line(),
                    exit_code=int(exc.exit_code),
                )
            )
            continue
        if bundle in owners:
            finish(
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
        planned.append((folder, name, bundle))

    own_signer = signer is None
    if planned and signer is None:
        # Opened before anything else: a bad PIN or a revoked certificate stops the batch at
        # once, and the demo identity (and with it the demo trust root) exists from here on.
        signer = open_signer(profile.sign, data_dir)
    roots = trust_roots if trust_roots is not None else trust_roots_for(profile)
    todo: list[tuple[Path, str, str]] = []
    for folder, name, bundle in planned:
        if stop.is_set() or abandon.is_set():
            break  # the rest stays "not_run"
        final = out_dir / bundle
        if not os.path.lexists(final):
            todo.append((folder, name, bundle))
            continue
        t = time.monotonic()
        existing = check_existing_bundle(final, folder, roots, verify=settings.verify_existing,
                                         allow_demo=demo_allowed_for(profile))
        if existing.ok:
            journal.append(
                "skipped",
                run=run_id,
                dossier=name,
                bundle=bundle,
                reason="bundle exists and verifies",
            )
            finish(
                BatchRow(
                    dossier=name,
                    bundle=bundle,
                    status="skipped",
                    pages=existing.pages,
                    flags=existing.flags,
                    needs_review=existing.needs_review,
                    seconds=round(time.monotonic() - t, 2),
                )
            )
        else:
            journal.append(
                "finished",
                run=run_id,
                dossier=name,
                bundle=bundle,
                status="failed",
                exit_code=existing.exit_code,
                error=existing.reason,
            )
            finish(
                BatchRow(
                    dossier=name,
                    bundle=bundle,
                    status="failed",
                    error=existing.reason,
                    exit_code=existing.exit_code or int(ExitCode.OUTPUT),
                )
            )

    shared_signer = SerialSigner(signer) if signer is not None else None
    try:
        if todo:
            assert shared_signer is not None
            _run_todo(
                todo,
                out_dir,
                profile,
                settings,
                shared_signer,
                journal,
                run_id,
                roots,
                stop,
                abandon,
                emit,
                finish,
                data_dir,
            )
    finally:
        if own_signer and signer is not None:
            signer.close()

    interrupted = stop.is_set() or abandon.is_set()
    final_rows = tuple(rows[name] for name in names)
    write_summary(out_dir, summary_fields(interrupted), final_rows)
    journal.append(
        "batch_finished",
        run=run_id,
        interrupted=interrupted,
        ok=sum(r.status == "ok" for r in final_rows),
        failed=sum(r.status == "failed" for r in final_rows),
    )
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


def _run_todo(
    todo: list[tuple[Path, str, str]],
    out_dir: Path,
    profile: Profile,
    settings: BatchSettings,
    signer: DigitiserSigner,
    journal: Journal,
    run_id: str,
    roots: tuple[Path, ...],
    stop: threading.Event,
    abandon: threading.Event,
    emit: BatchEventCallback,
    finish: Callable[[BatchRow], None],
    data_dir: Path | None,
) -> None:
    workers = settings.workers or usable_cores()
    in_flight = settings.dossier_concurrency if workers > 1 else 1
    with (
        PagePool(workers) as pool,
        ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="dossier") as threads,
    ):
        pending: set[Future[None]] = set()
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < in_flight and not stop.is_set() and not abandon.is_set():
                folder, name, bundle = queue.pop(0)
                pending.add(
                    threads.submit(
                        _one_dossier,
                        folder,
                        name,
                        bundle,
                        out_dir,
                        profile,
                        signer,
                        pool,
                        journal,
                        run_id,
                        roots,
                        abandon,
                        emit,
                        finish,
                        data_dir,
                    )
                )
            if not pending:
                break
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # _one_dossier records its own failures; re-raise bugs


def _one_dossier(
    folder: Path,
    name: str,
    bundle: str,
    out_dir: Path,
    profile: Profile,
    signer: DigitiserSigner,
    pool: PagePool,
    journal: Journal,
    run_id: str,
    roots: tuple[Path, ...],
    abandon: threading.Event,
    emit: BatchEventCallback,
    finish: Callable[[BatchRow], None],
    data_dir: Path | None,
) -> None:
    t = time.monotonic()

    def on_event(event: Event) -> None:
        if abandon.is_set() and event.kind != "bundle_written":
            raise AbandonedError("abandoned on request", path=name)
        emit(BatchEvent(kind="dossier_event", dossier=name, event=event))

    journal.append("started", run=run_id, dossier=name, bundle=bundle)
    row: BatchRow
    executor = pool.executor
    try:
        result = run_dossier(
            folder,
            out_dir,
            profile=profile,
            signer=signer,
            on_event=on_event,
            executor=executor,
            data_dir=data_dir,
        )
        report = _verify_new(result.bundle_path, roots, demo_allowed_for(profile))
        if report is not None:
            row = BatchRow(
                dossier=name,
                bundle=bundle,
                status="failed",
                pages=result.pages,
                seconds=round(time.monotonic() - t, 2),
                error=report[0],
                exit_code=report[1],
            )
        else:
            row = BatchRow(
                dossier=name,
                bundle=bundle,
                status="ok",
                pages=result.pages,
                flags=manifest_flag_codes(result.manifest),
                needs_review=result.needs_review,
                seconds=round(time.monotonic() - t, 2),
            )
    except AbandonedError:
        journal.append("abandoned", run=run_id, dossier=name, bundle=bundle)
        return
    except (BrokenProcessPool, PageWorkerDiedError):
        pool.replace_broken(executor)
        if abandon.is_set():
            journal.append("abandoned", run=run_id, dossier=name, bundle=bundle)
            return
        row = BatchRow(
            dossier=name,
            bundle=bundle,
            status="failed",
            error="a page worker died (out of memory or killed)",
            exit_code=int(ExitCode.INTERNAL),
            seconds=round(time.monotonic() - t, 2),
        )
    except DigitizeError as exc:
        row = BatchRow(
            dossier=name,
            bundle=bundle,
            status="failed",
            error=exc.one_line(),
            exit_code=int(exc.exit_code),
            seconds=round(time.monotonic() - t, 2),
        )
    except Exception as exc:  # noqa: BLE001 - one bad dossier must not stop the batch
        row = BatchRow(
            dossier=name,
            bundle=bundle,
            status="failed",
            error=f"internal error: {type(exc).__name__}: {_one_line(exc)}",
            exit_code=int(ExitCode.INTERNAL),
            seconds=round(time.monotonic() - t, 2),
        )
    journal.append(
        "finished",
        run=run_id,
        dossier=name,
        bundle=bundle,
        status=row.status,
        exit_code=row.exit_code,
        error=row.error,
        pages=row.pages,
    )
    finish(row)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _verify_new(bundle: Path, roots: tuple[Path, ...], allow_demo: bool) -> tuple[str, int] | None:
    from digitize.verify import verify_bundle

    report = verify_bundle(bundle, roots, lang="en", allow_demo=allow_demo)
    if report.ok:
        return None
    first = report.failures[0]
    return f"the new bundle fails verification: {first.name}: {first.message}", report.exit_code


__all__ = [
    "AbandonedError",
    "BatchEvent",
    "BatchResult",
    "BatchRow",
    "BatchSettings",
    "ExistingBundle",
    "Journal",
    "JOURNAL_FILE",
    "SUMMARY_CSV",
    "SUMMARY_JSON",
    "PagePool",
    "SerialSigner",
    "batch_run",
    "check_batch_setup",
    "check_existing_bundle",
    "discover_dossiers",
    "expected_bundle_name",
    "manifest_flag_codes",
    "paths_overlap",
    "read_journal",
    "sources_match",
    "trust_roots_for",
]
