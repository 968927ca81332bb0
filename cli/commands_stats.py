"""``digitize stats``: supervision and settlement figures from signed bundles.

A thin layer over ``digitize.stats``: it parses options, picks the trust roots and the index,
shows progress, prints the tables and writes the requested files.
"""

from __future__ import annotations

import calendar
import re
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import click
from rich.markup import escape as rich_escape
from rich.table import Table

from digitize.cli.commands_pipeline import load_cli_profile, page_progress
from digitize.cli.main import _json_dump, err_console, handle_errors, main, out_console
from digitize.errors import OutputError
from digitize.util import escape_control

_DATE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2}))?")
MAX_EXCLUDED_SHOWN = 20
# digitize.stats.GROUP_KEYS, spelled out so `digitize --help` does not import the stats models
GROUP_CHOICES = ("digitiser", "office", "procedure", "day", "month")
# The console keeps the columns a supervisor reads first; CSV/XLSX/JSON carry all of them.
CONSOLE_COLUMNS = (("dossiers", "dossiers"), ("redone", "redone"), ("pages", "pages"),
                   ("images", "images"), ("pages_a4", "A4"), ("pages_a3", "A3"),
                   ("pages_other", "other"), ("needs_review_share", "review"),
                   ("reviewed_fields", "fixed by hand"), ("ocr_mean_confidence", "OCR conf."),
                   ("scan_to_signature_median_s", "scan→sign median"),
                   ("scan_to_signature_p90_s", "scan→sign p90"))


def _parse_date(value: str | None, *, end: bool) -> date | None:
    """``YYYY-MM-DD``, or ``YYYY-MM`` (its first day for --from, its last for --to)."""
    if value is None:
        return None
    option = "--to" if end else "--from"
    match = _DATE.fullmatch(value.strip())
    if not match:
        raise click.BadParameter(f"{value!r} is not YYYY-MM-DD or YYYY-MM", param_hint=option)
    year, month = int(match.group(1)), int(match.group(2))
    try:
        if match.group(3):
            return date(year, month, int(match.group(3)))
        return date(year, month, calendar.monthrange(year, month)[1] if end else 1)
    except (ValueError, calendar.IllegalMonthError):
        raise click.BadParameter(f"{value!r} is not a calendar date (YYYY-MM-DD or YYYY-MM)",
                                 param_hint=option) from None


@dataclass(frozen=True)
class _Options:
    date_from: str | None
    date_to: str | None
    by: tuple[str, ...]
    csv_path: Path | None
    xlsx_path: Path | None
    html_path: Path | None
    as_json: bool
    profile_name: str | None
    no_verify: bool
    trust: tuple[Path, ...]
    allow_demo: bool
    index_path: Path | None
    no_index: bool
    reverify: bool
    workers: int | None
    lang: str


def _short(text: str) -> str:
    return rich_escape(escape_control(text))


def _number(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _short(str(value))


def _group_table(report: Any) -> Table:
    from digitize.stats.html import duration_text

    grouping = report.main
    table = Table(title="digitize stats" + ("" if report.verified else " — UNVERIFIED"))
    table.add_column("group")
    for _, label in CONSOLE_COLUMNS:
        table.add_column(label, justify="right")
    for row in (*grouping.rows, grouping.total):
        cells = [_short(row.group)]
        for name, _ in CONSOLE_COLUMNS:
            value = getattr(row, name)
            if name == "needs_review_share" and value is not None:
                cells.append(f"{value:.1%}")
            elif name.startswith("scan_to_signature") and value is not None:
                cells.append(duration_text(value))
            else:
                cells.append(_number(value))
        table.add_row(*cells, style="bold" if row is grouping.total else None)
    return table


def _settlement_table(report: Any) -> Table:
    from digitize.stats.export import SETTLEMENT_COLUMNS

    s = report.settlement
    unit = "images" if s.page_basis == "images" else "physical pages"
    table = Table(title=f"Settlement (quyết toán), {s.currency}; pages counted as {unit}")
    for name in SETTLEMENT_COLUMNS:
        table.add_column(name, justify="left" if name in ("office", "month") else "right")
    for line in (*s.lines, s.total):
        month = line.month or ("total" if line is s.total else "subtotal")
        table.add_row(_short(line.office), month,
                      *(_number(getattr(line, n)) for n in SETTLEMENT_COLUMNS[2:]),
                      style="bold" if not line.month else None)
    return table


def _print_report(report: Any) -> None:
    if report.banner:
        out_console.print(f"[bold reverse] {rich_escape(report.banner)} [/]")
    out_console.print(_group_table(report))
    out_console.print(_settlement_table(report))
    s = report.settlement
    if s.missing_rates:
        out_console.print("[bold]rates missing:[/] " + ", ".join(s.missing_rates)
                          + " — quantities only; set stats.rates in the profile "
                            "(each with its legal source)")
    for item, rate in s.rates.items():
        if rate is not None:
            out_console.print(f"rate {item}: {rate.amount} {s.currency} — {_short(rate.source)}")
    if report.demo_bundles:
        out_console.print(f"[bold yellow]{report.demo_bundles} bundle(s) signed with a DEMO "
                          "identity are counted (--allow-demo): not valid for payment[/]")
    if report.excluded:
        out_console.print(f"[bold]Excluded ({len(report.excluded)}), not counted:[/]")
        for item in report.excluded[:MAX_EXCLUDED_SHOWN]:
            out_console.print(f"  {_short(item.path)}: {_short(item.reason)}")
        if len(report.excluded) > MAX_EXCLUDED_SHOWN:
            out_console.print(f"  … {len(report.excluded) - MAX_EXCLUDED_SHOWN} more "
                              "(all of them in --json, --xlsx and --html)")
    if report.copies:
        out_console.print(f"{len(report.copies)} copies of counted bundles (same signed "
                          "manifest) were counted once")
    out_console.print(f"{report.bundles_found:,} bundles found; {report.verified_now:,} "
                      f"verified now, {report.reused_verdicts:,} verdicts reused from the index")


def _write(path: Path, writer: Any, report: Any) -> None:
    try:
        writer(report, path)
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror or exc}", path=path) from None


@main.command("stats")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--from", "date_from", metavar="DATE",
              help="First work date counted (YYYY-MM-DD or YYYY-MM), Vietnam time.")
@click.option("--to", "date_to", metavar="DATE",
              help="Last work date counted (YYYY-MM-DD or YYYY-MM: its last day).")
@click.option("--by", "by", multiple=True, type=click.Choice(GROUP_CHOICES),
              help="Group by this key; repeat for combined groups (e.g. --by digitiser "
                   "--by month).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the rows as CSV (UTF-8, formula-safe).")
@click.option("--xlsx", "xlsx_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an XLSX workbook (one sheet per grouping, settlement, exclusions).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a self-contained HTML report with charts.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--profile", "profile_name", metavar="NAME|FILE", default=None,
              help="Profile holding stats.rates (unit rates and their legal sources) and "
                   "sign.trust_roots.")
@click.option("--no-verify", is_flag=True,
              help="Count manifests without verifying them: the figures are marked UNVERIFIED "
                   "everywhere and are not valid for payment.")
@click.option("--trust", "trust", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Trusted root certificate (PEM/DER); repeatable. Also used: "
                   "DIGITIZE_TRUST_ROOTS and the profile's sign.trust_roots.")
@click.option("--allow-demo", is_flag=True,
              help="Also count bundles signed with this machine's DEMO identity (tests, "
                   "training); never for payment.")
@click.option("--index", "index_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Index of verified bundles (default: the profile's stats.index_path, else "
                   "<user data dir>/stats-index.sqlite).")
@click.option("--no-index", is_flag=True, help="Verify every bundle; remember nothing.")
@click.option("--reverify", is_flag=True,
              help="Verify every bundle again even if unchanged (the index is refreshed).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Verifying processes (default: the profile's stats.workers, else cores).")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True,
              help="Language of the exclusion reasons.")
@handle_errors
def stats_cmd(paths: tuple[Path, ...], **raw: Any) -> None:
    """Count dossiers, pages and review work per digitiser, office, procedure, day or month,
    from the bundles (folders and .zip) under PATHS, and the settlement per office and month.

    Only bundles that verify are counted; the others are listed with their reason. Copies of
    a bundle count once; a dossier digitised again counts as redone. Work dates are the
    bundles' signing dates in Vietnam time. Exit code 0 when the report was produced.
    """
    from digitize.stats import (
        StatsRequest,
        TrustOptions,
        build_report,
        default_index_path,
        stats_trust_roots,
    )
    from digitize.stats.export import to_json_data, write_csv, write_xlsx

    opts = _Options(**raw)
    date_from = _parse_date(opts.date_from, end=False)
    date_to = _parse_date(opts.date_to, end=True)
    if date_from and date_to and date_from > date_to:
        raise click.BadParameter("--from is after --to", param_hint="--from")
    profile = load_cli_profile(opts.profile_name)
    settings = profile.stats
    roots = stats_trust_roots(opts.trust, profile.sign.trust_roots)
    verify = not opts.no_verify
    if verify and not roots and not opts.allow_demo:
        err_console.print("digitize: notice: no trust root given: every bundle will fail the "
                          "trust check (use --trust ROOT.pem, DIGITIZE_TRUST_ROOTS or "
                          "sign.trust_roots in the profile)")
    index_path = None
    if not opts.no_index:
        index_path = opts.index_path or (Path(settings.index_path) if settings.index_path
                                         else default_index_path())
    # A missing optional library fails now, not after minutes of verification.
    if opts.html_path is not None:
        from digitize.stats.charts import require_matplotlib

        require_matplotlib()
    if opts.xlsx_path is not None:
        from digitize.stats.export import require_openpyxl

        require_openpyxl()

    with page_progress() as progress:
        task = progress.add_task("stats", total=None, unit="bundles")

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = build_report(StatsRequest(
            paths=tuple(paths),
            trust=TrustOptions(roots=roots, allow_demo=opts.allow_demo, lang=opts.lang),
            by=opts.by,  # type: ignore[arg-type]
            date_from=date_from,
            date_to=date_to,
            settings=settings,
            verify=verify,
            index_path=index_path,
            reverify=opts.reverify,
            workers=opts.workers or 0,
            on_progress=on_progress,
        ))
    if opts.csv_path is not None:
        _write(opts.csv_path, write_csv, report)
    if opts.xlsx_path is not None:
        _write(opts.xlsx_path, write_xlsx, report)
    if opts.html_path is not None:
        from digitize.stats.html import write_html

        _write(opts.html_path, write_html, report)
    if opts.as_json:
        if report.banner:
            err_console.print(f"digitize: {report.banner}")
        sys.stdout.write(_json_dump(to_json_data(report)) + "\n")
        return
    _print_report(report)
