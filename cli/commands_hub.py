"""Hub commands: ``worker``, ``submit``, ``jobs`` (Celery + Redis) and ``finish`` (the station's
half of ``--sign-at station``). Thin layers over ``digitize.hub``; they need the ``celery``
extra, imported when a command runs.

The broker URL may hold a password: ``--broker`` or ``DIGITIZE_BROKER_URL`` (preferred: a
command line is visible to every user through ``ps``); it is only ever printed masked.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from digitize.cli.main import (
    _json_dump,
    err_console,
    handle_errors,
    main,
    out_console,
    profile_option,
    shown,
)
from digitize.errors import ConfigError, ExitCode

if TYPE_CHECKING:
    from digitize.hub import JobRecord
    from digitize.jobs import JobOutcome


def _broker(given: str | None) -> str:
    try:
        from digitize.hub.config import broker_url
    except ImportError as exc:  # celery or redis missing
        raise ConfigError(f"the hub needs the celery extra ({exc.name} is not installed)",
                          hint="pip install 'digitize[celery]'") from None  # fmt: skip
    return broker_url(given)


def broker_option(func):  # type: ignore[no-untyped-def]
    return click.option(
        "--broker", "broker", metavar="URL", default=None,
        help="Redis URL of the hub (redis://[:PASSWORD@]HOST:PORT/DB, rediss:// for TLS). "
             "Default: DIGITIZE_BROKER_URL, the place for a password.",
    )(func)  # fmt: skip


@main.command("worker")
@broker_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Bundles go here (the storage every worker and station sees).")
@click.option("--prepared-out", "prepared_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Prepared bundles of --sign-at station jobs (default OUT/prepared).")
@click.option("--concurrency", type=click.IntRange(0, 64), default=1, show_default=True,
              help="Dossiers at once on this machine; 0: page work only.")
@click.option("--pages", type=click.IntRange(0, 256), default=0,
              help="Page processes on this machine, for any dossier of the hub (0: one per core).")
@click.option("--no-signer", "no_signer", is_flag=True,
              help="Hold no signer: prepare --sign-at station jobs only (a hub without keys).")
@click.option("--events", is_flag=True, help="Send Celery task events (for Flower).")
@click.option("--loglevel", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
              default="INFO", show_default=True)
@profile_option
@handle_errors
def worker_cmd(broker: str | None, out_dir: Path, prepared_dir: Path | None, concurrency: int,
               pages: int, no_signer: bool, events: bool, loglevel: str,
               profile_name: str | None) -> None:
    """Run dossiers and pages of the hub until SIGTERM.

    On SIGTERM it takes no new work, lets running dossiers finish for hub.abandon_after_s
    seconds, then hands the rest back to the queue (nothing partial is left).
    """
    from digitize.hub import WorkerOptions, run_worker

    run_worker(WorkerOptions(url=_broker(broker), out_dir=out_dir.expanduser().absolute(),
                             prepared_dir=prepared_dir.expanduser().absolute() if prepared_dir
                             else None, concurrency=concurrency, pages=pages,
                             profile=profile_name, events=events, loglevel=loglevel,
                             signer=not no_signer))  # fmt: skip


def _outcome_line(job_id: str, outcome: JobOutcome) -> str:
    colour = {"done": "green", "skipped": "cyan"}.get(outcome.kind, "bold red")
    where = outcome.bundle_path or outcome.error
    return f"{shown(job_id)} [{colour}]{outcome.kind}[/] {shown(outcome.dossier)}: {shown(where)}"


@main.command("submit")
@click.argument("dossiers", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@broker_option
@click.option("--wait", is_flag=True, help="Wait for every job; exit 0 only if all verified.")
@click.option("--timeout", type=click.FloatRange(0), default=None,
              help="With --wait: give up waiting after this many seconds (the jobs go on).")
@click.option("--sign-at", "sign_at", type=click.Choice(["worker", "station"]), default="worker",
              show_default=True, help="worker: the worker signs; station: a prepared bundle "
              "to finish with `digitize finish` where the digitiser's token is.")
@click.option("--signer-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="--sign-at station: the digitiser's certificate (PEM/DER).")
@profile_option
@handle_errors
def submit_cmd(dossiers: tuple[Path, ...], broker: str | None, wait: bool,
               timeout: float | None, sign_at: str, signer_cert: Path | None,
               profile_name: str | None) -> None:
    """Queue one job per DOSSIER folder (on storage every worker sees); print the job ids.

    PROFILE names the profile the workers run the job with (a bundled name or a file they
    see); the hub's delivery settings come from it here too.
    """
    import time

    from digitize.hub import JobWaitTimeoutError, outcome_ok, submit
    from digitize.profiles import load_profile

    settings = load_profile(profile_name).hub
    handles = submit(list(dossiers), broker=_broker(broker), settings=settings,
                     sign_at=sign_at, profile=profile_name,  # type: ignore[arg-type]
                     signer_cert=signer_cert)  # fmt: skip
    for handle in handles:
        out_console.print(f"{shown(handle.id)} {shown(handle.dossier)}")
    if not wait:
        return
    deadline = None if timeout is None else time.monotonic() + timeout
    failed = 0
    for handle in handles:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            outcome = handle.wait(left)
        except JobWaitTimeoutError as exc:
            err_console.print(f"digitize: {shown(exc.one_line())}")
            failed += 1
            continue
        out_console.print(_outcome_line(handle.id, outcome))
        failed += not outcome_ok(outcome)
    if failed:
        err_console.print(f"digitize: {failed} of {len(handles)} jobs did not end with a "
                          "verified bundle")  # fmt: skip
        sys.exit(int(ExitCode.BATCH_PARTIAL))


def _jobs_table(records: list[JobRecord]) -> Table:
    table = Table(title="digitize hub jobs", title_justify="left")
    for column in ("job", "dossier", "state", "worker", "submitted", "started", "ended",
                   "outcome"):  # fmt: skip
        table.add_column(column)
    for r in records:
        detail = r.error or r.bundle or ""
        table.add_row(shown(r.job_id), shown(r.dossier), shown(r.state), shown(r.worker),
                      shown(r.submitted_at), shown(r.started_at), shown(r.ended_at),
                      shown(f"{r.kind} {detail}".strip()))  # fmt: skip
    return table


@main.command("jobs")
@broker_option
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True)
@handle_errors
def jobs_cmd(broker: str | None, as_json: bool, limit: int) -> None:
    """List the hub's jobs: state, worker, times and outcome."""
    from digitize.hub import list_jobs

    records = list_jobs(_broker(broker), limit=limit)
    if as_json:
        sys.stdout.write(_json_dump([r.model_dump(mode="json") for r in records]) + "\n")
        return
    out_console.print(_jobs_table(records))


@main.command("finish")
@click.argument("prepared", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--trust", "trust", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Trusted root for the final verification; repeatable (default: the "
                   "profile's sign.trust_roots, DIGITIZE_TRUST_ROOTS).")
@profile_option
@handle_errors
def finish_cmd(prepared: Path, out_dir: Path, trust: tuple[Path, ...],
               profile_name: str | None) -> None:
    """Sign a PREPARED bundle from the hub with this station's signer (one PIN entry for every
    document and the manifest), commit it under OUT and verify it."""
    from digitize.hub import finish_prepared_bundle
    from digitize.hub.prepared import check_prepared_files, read_marker
    from digitize.profiles import load_profile
    from digitize.sign import open_signer

    profile = load_profile(profile_name)
    read_marker(prepared)  # a wrong or damaged folder is refused before the PIN is asked
    check_prepared_files(prepared)
    signer = open_signer(profile.sign)
    try:
        result = finish_prepared_bundle(prepared, out_dir, profile, signer,
                                        trust_roots=tuple(trust) or None)  # fmt: skip
    finally:
        signer.close()
    out_console.print(f"Bundle: [bold]{shown(result.bundle_path)}[/] ({result.documents} "
                      f"documents signed, verified{', needs review' if result.needs_review else ''})")  # fmt: skip
