"""The report for other systems: CSV rows, a JSON document and an XLSX workbook.

Stable columns (CSV and the JSON ``rows``): ``verified``, ``group`` (the grouping values
joined by `` / ``), one column per ``--by`` key, then ``MEASURES`` in their fixed order
(``dossiers``, ``redone``, ``components``, …, ``needs_review``, ``reviewed_fields``, …).
New columns are only ever appended. Every CSV cell goes through ``csv_safe`` (a value
starting with ``= + - @`` cannot become a formula); XLSX strings are written as strings,
never formulas. CSV is UTF-8 with a byte-order mark so Excel shows Vietnamese correctly.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from digitize.errors import ConfigError
from digitize.stats.aggregate import MEASURES, RATE_ITEMS, Grouping, SettlementLine, StatsRow
from digitize.stats.report import StatsReport
from digitize.util import csv_safe, write_atomic

SETTLEMENT_COLUMNS = ("office", "month", "dossiers", "redone_unpaid", "pages_a4", "pages_a3",
                      "pages_other", "amount_dossiers", "amount_a4", "amount_a3",
                      "amount_other", "total")


def columns(grouping: Grouping) -> list[str]:
    return ["verified", "group", *grouping.by, *MEASURES]


def row_record(row: StatsRow, verified: bool) -> dict[str, Any]:
    """One row as plain values (dates stay ``date``; ``None`` where nothing was measured)."""
    record: dict[str, Any] = {"verified": verified, "group": row.group}
    record.update(dict(row.keys))
    for name in MEASURES:
        record[name] = getattr(row, name)
    return record


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    return value


def to_csv(report: StatsReport) -> bytes:
    grouping = report.main
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    names = columns(grouping)
    writer.writerow(names)
    for row in (*grouping.rows, grouping.total):
        record = row_record(row, report.verified)
        cells = []
        for name in names:
            value = _plain(record.get(name))
            if isinstance(value, bool):
                value = "true" if value else "false"
            cells.append(csv_safe("" if value is None else value))
        writer.writerow(cells)
    return out.getvalue().encode("utf-8-sig")


def settlement_record(line: SettlementLine) -> dict[str, Any]:
    return {name: _plain(getattr(line, name)) for name in SETTLEMENT_COLUMNS}


def to_json_data(report: StatsReport) -> dict[str, Any]:
    """The ``--json`` document: metadata, ``rows`` (stable columns), ``total``,
    ``settlement``, ``excluded`` (path, reason, exit_code) and ``copies``."""
    grouping = report.main
    s = report.settlement
    return {
        "verified": report.verified,
        "banner": report.banner,
        "generated_at": report.generated_at.isoformat(),
        "tool_version": report.tool_version,
        "period": {"from": _plain(report.period_from), "to": _plain(report.period_to)},
        "by": list(grouping.by),
        "allow_demo": report.allow_demo,
        "trust_roots_sha256": list(report.trust_roots_sha256),
        "paper_tolerance": report.paper_tolerance,
        "bundles_found": report.bundles_found,
        "verified_now": report.verified_now,
        "reused_verdicts": report.reused_verdicts,
        "demo_bundles": report.demo_bundles,
        "rows": [{k: _plain(v) for k, v in row_record(r, report.verified).items()}
                 for r in grouping.rows],
        "total": {k: _plain(v) for k, v in row_record(grouping.total, report.verified).items()},
        "settlement": {
            "currency": s.currency,
            "page_basis": s.page_basis,
            "pay_redone": s.pay_redone,
            "rounding": s.rounding,
            "rates": {item: (None if rate is None else
                             {"amount": str(rate.amount), "source": rate.source})
                      for item, rate in s.rates.items()},
            "missing_rates": list(s.missing_rates),
            "lines": [settlement_record(line) for line in s.lines],
            "total": settlement_record(s.total),
        },
        "excluded": [e.model_dump() for e in report.excluded],
        "copies": [c.model_dump() for c in report.copies],
    }


def write_csv(report: StatsReport, path: Path) -> None:
    write_atomic(path, to_csv(report))


# --- XLSX ------------------------------------------------------------------------------------
_INT_FORMAT = "#,##0"
_FORMATS = {
    "needs_review_share": "0.0%",
    "ocr_mean_confidence": "0.00",
    "scan_to_signature_median_s": "#,##0.0",
    "scan_to_signature_p90_s": "#,##0.0",
}


def require_openpyxl() -> Any:
    """The ``openpyxl`` module, or ``ConfigError`` (with the install hint) without the
    ``stats`` extra."""
    try:
        import openpyxl
    except ImportError:
        raise ConfigError("--xlsx needs openpyxl", hint="pip install 'digitize[stats]'") from None
    return openpyxl


def _put(ws: Any, row: int, col: int, value: Any, number_format: str | None = None) -> None:
    cell = ws.cell(row=row, column=col)
    if isinstance(value, bool):
        cell.value = value
    elif isinstance(value, datetime):
        cell.value = value.replace(tzinfo=None)  # Excel has no zones: Vietnam wall time
        cell.number_format = "yyyy-mm-dd hh:mm:ss"
    elif isinstance(value, date):
        cell.value = value
        cell.number_format = "yyyy-mm-dd"
    elif isinstance(value, str):
        cell.value = value
        cell.data_type = "s"  # a value starting with "=" stays text, never a formula
    else:
        cell.value = value
    if number_format and value is not None:
        cell.number_format = number_format


def _table(ws: Any, header: list[str], rows: list[list[Any]],
           formats: dict[int, str] | None = None) -> None:
    from openpyxl.styles import Font

    formats = formats or {}
    for col, name in enumerate(header, 1):
        _put(ws, 1, col, name)
        ws.cell(row=1, column=col).font = Font(bold=True)
    for r, values in enumerate(rows, 2):
        for col, value in enumerate(values, 1):
            _put(ws, r, col, value, formats.get(col))
    ws.freeze_panes = "A2"
    for col, name in enumerate(header, 1):
        ws.column_dimensions[ws.cell(row=1, column=col).column_letter].width = max(
            10, min(40, len(name) + 2))


def _month_cell(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 7 and value[4] == "-":
        return date(int(value[:4]), int(value[5:]), 1)
    return value


def _sheet_title(by: tuple[str, ...]) -> str:
    return ("by " + "+".join(by))[:31] if by else "all"


def to_xlsx(report: StatsReport) -> bytes:
    """The workbook: ``about``, one sheet per grouping, ``settlement``, ``excluded``,
    ``copies``. Numbers are numbers, dates are dates (a month is its first day shown
    ``yyyy-mm``), header rows are frozen."""
    openpyxl = require_openpyxl()
    wb = openpyxl.Workbook()
    about = wb.active
    about.title = "about"
    _about_sheet(about, report)
    for grouping in report.groupings:
        ws = wb.create_sheet(_sheet_title(grouping.by))
        header = columns(grouping)
        formats = {i: _FORMATS.get(name, _INT_FORMAT) for i, name in enumerate(header, 1)
                   if name in MEASURES}
        for i, name in enumerate(header, 1):
            if name == "month":
                formats[i] = "yyyy-mm"
        rows = [[_month_cell(row_record(r, report.verified).get(name)) for name in header]
                for r in (*grouping.rows, grouping.total)]
        _table(ws, header, rows, formats)
    ws = wb.create_sheet("settlement")
    lines = [*report.settlement.lines, report.settlement.total]
    money = {i: _INT_FORMAT for i, name in enumerate(SETTLEMENT_COLUMNS, 1)
             if name not in ("office", "month")}
    money[2] = "yyyy-mm"
    _table(ws, list(SETTLEMENT_COLUMNS),
           [[_month_cell(getattr(line, name)) or None if name == "month" else getattr(line, name)
             for name in SETTLEMENT_COLUMNS] for line in lines], money)
    ws = wb.create_sheet("excluded")
    _table(ws, ["path", "reason", "exit_code"],
           [[e.path, e.reason, e.exit_code] for e in report.excluded])
    ws = wb.create_sheet("copies")
    _table(ws, ["path", "copy_of"], [[c.path, c.copy_of] for c in report.copies])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _about_sheet(ws: Any, report: StatsReport) -> None:
    s = report.settlement
    rows: list[list[Any]] = [
        ["verified", report.verified],
        ["banner", report.banner or ""],
        ["generated_at", report.generated_at],
        ["tool_version", report.tool_version],
        ["period_from", report.period_from],
        ["period_to", report.period_to],
        ["bundles_found", report.bundles_found],
        ["excluded", len(report.excluded)],
        ["copies", len(report.copies)],
        ["allow_demo", report.allow_demo],
        ["demo_bundles", report.demo_bundles],
        ["paper_tolerance", report.paper_tolerance],
        ["page_basis", s.page_basis],
        ["pay_redone", s.pay_redone],
        ["currency", s.currency],
        ["rounding", s.rounding],
        ["missing_rates", ", ".join(s.missing_rates)],
    ]
    for item in RATE_ITEMS:
        rate = s.rates[item]
        rows.append([f"rate_{item}", rate.amount if rate else None])
        rows.append([f"rate_{item}_source", rate.source if rate else "(not configured)"])
    rows += [["trust_root_sha256", digest] for digest in report.trust_roots_sha256]
    _table(ws, ["item", "value"], rows)
    ws.column_dimensions["B"].width = 70


def write_xlsx(report: StatsReport, path: Path) -> None:
    write_atomic(path, to_xlsx(report))
