"""Unattended commands: ``batch`` (a folder of dossiers) and ``watch`` (a scanning station's inbox).

Signal handling lives here, not in the library: the first SIGINT/SIGTERM asks the library to
finish the dossier(s) in progress and stop; a second one abandons them at once (their
staging folders are removed; nothing partial appears under a final name).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click
from rich.progress import TaskID
from rich.table import Table

from digitize.cli.commands_pipeline import DEMO_WARNING, load_cli_profile, page_progress
from digitize.cli.main import (
    _json_dump,
    err_console,
    handle_errors,
    main,
    out_console,
    profile_option,
    shown,
)
from digitize.errors import ExitCode
from digitize.util import escape_control, format_vn_time, vn_now

if TYPE_CHECKING:  # the library modules are imported when a command runs: start-up stays fast
    from digitize.batch import BatchEvent, BatchResult
    from digitize.watch import WatchEvent


@contextmanager
def stop_on_signals(what: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """SIGINT/SIGTERM once: ``stop`` (finish current work); twice: ``abandon`` (give it up)."""
    stop, abandon = threading.Event(), threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not stop.is_set():
            stop.set()
            err_console.print(
                f"digitize: {name}: finishing the {what} in progress, then "
                "stopping (send it again to abandon it now)"
            )
        else:
            abandon.set()
            err_console.print(f"digitize: {name}: abandoning the {what} in progress")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop, abandon
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --- batch ---------------------------------------------------------------------------------------
def _batch_table(result: BatchResult) -> Table:
    table = Table(
        title=f"Batch {shown(result.in_dir)} → {shown(result.out_dir)}", title_justify="left"
    )
    table.add_column("dossier")
    table.add_column("status")
    table.add_column("pages", justify="right")
    table.add_column("time", justify="right")
    table.add_column("flags / error")
    colours = {"ok": "green", "skipped": "cyan", "failed": "bold red", "not_run": "yellow"}
    for row in result.rows:
        detail = row.error if row.status == "failed" else ", ".join(row.flags) or "—"
        if row.status == "failed":
            detail = f"[{row.exit_code}] {detail}"
        table.add_row(
            shown(row.dossier),
            f"[{colours[row.status]}]{row.status}[/]",
            str(row.pages),
            f"{row.seconds:.1f} s",
            shown(detail),
        )
    return table


@main.command("batch")
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out", "out_opt", type=click.Path(file_okay=False, path_type=Path), help="Same as OUT_DIR."
)
@profile_option
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Page workers shared by the whole batch (default: number of cores).",
)
@click.option(
    "--dossiers",
    "dossier_concurrency",
    type=click.IntRange(1, 8),
    default=None,
    help="Dossiers in flight over the shared page pool (2 keeps the pool busy while "
    "one dossier is being signed and bundled).",
)
@click.option(
    "--no-verify-existing",
    is_flag=True,
    help="Resume: skip existing bundles without verifying them first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@handle_errors
def batch_cmd(
    in_dir: Path,
    out_dir: Path | None,
    out_opt: Path | None,
    profile_name: str | None,
    workers: int | None,
    dossier_concurrency: int,
    no_verify_existing: bool,
    as_json: bool,
) -> None:
    """Digitise every dossier folder of IN_DIR into OUT_DIR (resumable).

    Each sub-folder of IN_DIR is one dossier (natural order; hidden folders and loose files
    are skipped). Inputs are never moved or changed. A re-run skips dossiers whose bundle
    exists and verifies; an existing bundle that fails verification is reported, never
    overwritten. Writes OUT_DIR/summary.json, OUT_DIR/summary.csv and the append-only journal
    OUT_DIR/.digitize-journal.jsonl.

    Exit code: 0 when every dossier is done (or was already), 90 when some failed, 130 when
    interrupted, 16 for an unsafe set-up (OUT_DIR inside IN_DIR or the reverse). A station
    fault (time-stamp or signing service down, disk full, certificate problem) fails the
    dossier it hit and starts no other: run the batch again once it is fixed.
    """
    from digitize.batch import batch_run

    target = out_opt or out_dir
    if target is None:
        raise click.UsageError("give OUT_DIR (or --out)")
    if out_opt is not None and out_dir is not None and out_opt != out_dir:
        raise click.UsageError("OUT_DIR and --out differ")
    overrides: dict = {}
    if workers is not None:
        overrides.setdefault("pipeline", {})["workers"] = workers
    profile = load_cli_profile(profile_name, overrides)
    given = {
        "dossier_concurrency": dossier_concurrency,
        "verify_existing": False if no_verify_existing else None,
    }
    settings = profile.batch.model_copy(update={k: v for k, v in given.items() if v is not None})
    progress = page_progress()
    overall: list[TaskID] = []
    per_dossier: dict[str, TaskID] = {}
    lock = threading.Lock()

    def on_event(event: BatchEvent) -> None:
        with lock:
            if event.kind == "batch_started":
                overall.append(
                    progress.add_task("batch", total=event.total_dossiers, unit="dossiers")
                )
            elif event.kind == "dossier_event" and event.event is not None:
                inner = event.event
                task = per_dossier.get(event.dossier)
                if inner.kind == "dossier_started":
                    per_dossier[event.dossier] = progress.add_task(
                        f"  {shown(event.dossier)}", total=inner.total_pages, unit="pages"
                    )
                elif inner.kind == "page_done" and task is not None:
                    progress.update(task, completed=inner.done_pages)
            elif event.kind == "dossier_finished" and event.row is not None:
                row = event.row
                task = per_dossier.pop(event.dossier, None)
                if task is not None:
                    progress.remove_task(task)
                if overall:
                    progress.advance(overall[0])
                if not err_console.is_terminal or row.status == "failed":
                    text = f"{row.status}: {row.dossier}"
                    if row.error:
                        text += f" [{row.exit_code}] {row.error}"
                    progress.console.print(escape_control(text), markup=False, highlight=False)
            elif event.kind == "notice":
                text = f"{event.dossier}: {event.message}" if event.dossier else event.message
                progress.console.print(escape_control(text), markup=False, highlight=False)

    with stop_on_signals("dossiers") as (stop, abandon), progress:
        result = batch_run(
            in_dir,
            target,
            profile,
            settings=settings,
            on_event=on_event,
            stop=stop,
            abandon=abandon,
        )
    if as_json:
        sys.stdout.write(_json_dump(result.model_dump(mode="json")) + "\n")
    else:
        out_console.print(_batch_table(result))
        pages = result.pages_processed
        rate = pages / result.seconds * 60 if result.seconds else 0.0
        out_console.print(
            f"ok {result.count('ok')}, skipped {result.count('skipped')}, failed "
            f"{result.count('failed')}, not run {result.count('not_run')}; {pages} pages in "
            f"{result.seconds:.1f} s ({rate:.0f} pages/min)"
        )
        out_console.print(
            f"Summary: {shown(result.summary_json)} and {shown(result.summary_csv)}"
        )
        if profile.sign.backend == "demo" and result.count("ok"):
            out_console.print(DEMO_WARNING)
    sys.exit(result.exit_code)


# --- watch ---------------------------------------------------------------------------------------
def _log(text: str) -> None:
    """One plain line per event, for journald/syslog and the person at the counter who reads
    it: Vietnam time in the Vietnamese form (``11:34:05 ngày 30/11/2026``), and the text with
    control characters escaped (a folder name cannot forge a second log line)."""
    stamp = format_vn_time(vn_now(), seconds=True)
    sys.stdout.write(f"{stamp} {escape_control(text)}\n")
    sys.stdout.flush()


@main.command("watch")
@click.argument("inbox", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder that receives the bundles (outside INBOX).",
)
@profile_option
@click.option(
    "--poll",
    is_flag=True,
    help="Poll the inbox instead of inotify (needed on CIFS/NFS network shares).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds between polls with --poll.",
)
@click.option(
    "--quiet",
    "quiet_seconds",
    type=click.FloatRange(min=0.1),
    default=None,
    help="A dossier without marker is complete after this many seconds without change.",
)
@click.option(
    "--require-marker",
    is_flag=True,
    help="Take a dossier only when its READY (or .ready) marker file exists.",
)
@click.option(
    "--rescan-every",
    "rescan_seconds",
    type=click.FloatRange(min=1),
    default=None,
    help="Seconds between full rescans of the inbox (safety net).",
)
@click.option(
    "--done",
    "done_dir",
    default=None,
    help="Where finished inputs go (relative to INBOX or absolute, same file system).",
)
@click.option(
    "--quarantine",
    "quarantine_dir",
    default=None,
    help="Where failed inputs go, each with <name>.reason.json.",
)
@click.option(
    "--duplicate",
    "duplicate_dir",
    default=None,
    help="Where inputs equal to an already-done dossier go, with <name>.reason.json.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Page workers (default: number of cores).",
)
@handle_errors
def watch_cmd(
    inbox: Path,
    out_dir: Path,
    profile_name: str | None,
    workers: int | None,
    **watch_options: Any,
) -> None:
    """Watch INBOX and digitise every dossier folder a scanning station drops into it.

    A dossier (a sub-folder of INBOX) is taken when a READY marker file is in it, or when
    nothing in it has changed for --quiet seconds. Its bundle goes to OUT/<code>/; the input
    then moves to INBOX/done/, or to INBOX/quarantine/ with a reason.json on failure, or to
    INBOX/duplicate/ when it equals a dossier already done. Inputs are never deleted or
    changed. Restart-safe: a journal in INBOX/.digitize/ makes a restart resume, not redo;
    a dossier the watcher died on twice is quarantined (a poison pill, exit code 106 in its
    reason.json). SIGTERM/SIGINT finish the current dossier and exit 0; a second signal
    abandons it.

    The signer is opened and checked before anything is taken. An outage (time-stamp,
    revocation or signing service, token absent, disk full) pauses the watcher: the dossier
    stays claimed and is finished when the station works again. It stops with the fault's
    exit code when a person must act: 54 wrong PIN (never tried twice), 51-53 certificate,
    56 signer set-up, 63 trust, 16 another watcher or host holds the inbox.
    """
    from digitize.settings import WatchSettings
    from digitize.watch import InboxWatcher

    overrides: dict = {}
    if workers is not None:
        overrides.setdefault("pipeline", {})["workers"] = workers
    profile = load_cli_profile(profile_name, overrides)
    # Options given on the command line win over the profile's `watch:` section; flags left
    # off and options not given (None) leave the profile's value.
    given = {key: value for key, value in watch_options.items() if value not in (None, False)}
    if "poll_interval" in given:
        given["poll_interval_ms"] = int(given.pop("poll_interval") * 1000)
    settings = WatchSettings.model_validate({**profile.watch.model_dump(), **given})

    def on_event(event: WatchEvent) -> None:
        if event.kind == "progress":
            inner = event.event
            if inner is not None and inner.kind == "bundle_written":
                _log(f"bundle {event.dossier}: {inner.message}")
            return
        if event.kind == "outcome":
            text = f"{event.outcome} {event.dossier} → {event.destination}"
            if event.outcome != "done":
                text += f" [{event.exit_code}] {event.message}"
            _log(text)
        elif event.kind == "taken":
            _log(f"taken {event.dossier} ({event.message})")
        else:
            _log(f"{event.kind} {event.dossier + ': ' if event.dossier else ''}{event.message}")

    watcher = InboxWatcher(inbox, out_dir, profile, settings, on_event=on_event)
    if profile.sign.backend == "demo":
        _log("signing with the built-in DEMO identity: not valid for real use")
    with stop_on_signals("dossier") as (stop, abandon):
        watcher.run(stop, abandon)
    sys.exit(int(ExitCode.OK))
