"""The HTML report: one self-contained file (styles and SVG charts inline, nothing fetched),
laid out for A4 printing in black and white. Every value from a bundle is HTML-escaped."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from html import escape
from pathlib import Path

from digitize.stats import charts
from digitize.stats.aggregate import RATE_ITEMS, Grouping, StatsRow
from digitize.stats.export import SETTLEMENT_COLUMNS
from digitize.stats.report import StatsReport
from digitize.util import format_vn_time, write_atomic

LABELS = {
    "group": "Nhóm<br><small>group</small>",
    "digitiser": "Người số hóa<br><small>digitiser</small>",
    "office": "Cơ quan tiếp nhận<br><small>office</small>",
    "procedure": "Thủ tục<br><small>procedure</small>",
    "day": "Ngày<br><small>day</small>",
    "month": "Tháng<br><small>month</small>",
    "dossiers": "Hồ sơ<br><small>dossiers</small>",
    "redone": "Làm lại<br><small>redone</small>",
    "components": "Thành phần<br><small>components</small>",
    "not_digitised": "Không số hóa<br><small>not digitised</small>",
    "pages": "Trang giấy<br><small>pages</small>",
    "images": "Ảnh chụp<br><small>images</small>",
    "note_slip_images": "Ảnh phiếu ghi chú<br><small>note-slip images</small>",
    "pages_a4": "Trang A4", "pages_a3": "Trang A3", "pages_other": "Trang khác<br><small>other</small>",
    "images_a4": "Ảnh A4", "images_a3": "Ảnh A3", "images_other": "Ảnh khác<br><small>other</small>",
    "images_colour": "Màu<br><small>colour</small>",
    "images_gray": "Xám<br><small>gray</small>",
    "images_bilevel": "Đen trắng<br><small>bilevel</small>",
    "needs_review": "Cần xem lại<br><small>needs review</small>",
    "needs_review_share": "Tỷ lệ xem lại<br><small>review share</small>",
    "reviewed_fields": "Trường sửa tay<br><small>fields corrected</small>",
    "ocr_mean_confidence": "Độ tin cậy OCR<br><small>OCR confidence</small>",
    "signed_documents": "Tài liệu đã ký<br><small>signed documents</small>",
    "scan_to_signature_median_s": "Quét→ký trung vị<br><small>scan→signed median</small>",
    "scan_to_signature_p90_s": "Quét→ký p90<br><small>scan→signed p90</small>",
    "redone_unpaid": "Làm lại (không trả)<br><small>redone, unpaid</small>",
    "amount_dossiers": "Tiền hồ sơ<br><small>dossiers</small>",
    "amount_a4": "Tiền A4", "amount_a3": "Tiền A3",
    "amount_other": "Tiền trang khác<br><small>other</small>",
    "total": "Cộng<br><small>total</small>",
}
RATE_LABELS = {"per_dossier": "Mỗi hồ sơ / per dossier", "a4": "Mỗi trang A4 / per A4 page",
               "a3": "Mỗi trang A3 / per A3 page", "other": "Mỗi trang khác / per other page"}

CSS = """
body{font-family:"DejaVu Sans","Noto Sans",Arial,sans-serif;color:#000;background:#fff;
 margin:1.5em;font-size:11pt;line-height:1.35}
h1{font-size:17pt;margin:0 0 .3em}h2{font-size:13pt;border-bottom:1.5pt solid #000;
 margin-top:1.6em;padding-bottom:2px}
table{border-collapse:collapse;margin:.5em 0;font-size:9pt}
th,td{border:.75pt solid #000;padding:3px 5px;vertical-align:top}
th{background:#e6e6e6;text-align:center;font-weight:bold}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:bold;border-top:2pt solid #000}
tr.subtotal td{font-style:italic;font-weight:bold}
small{font-weight:normal;color:#333}
.banner{border:3pt solid #000;padding:.6em 1em;font-weight:bold;font-size:12pt;margin:.8em 0;
 background:repeating-linear-gradient(45deg,#fff,#fff 8px,#eee 8px,#eee 16px)}
.note{border-left:3pt solid #000;padding:.2em .8em;margin:.6em 0}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:.4em 0}
dl.meta dt{font-weight:bold}dl.meta dd{margin:0}
figure{margin:.8em 0;page-break-inside:avoid}figure svg{max-width:100%;height:auto}
figcaption{font-size:9pt}
.kpi{display:flex;flex-wrap:wrap;gap:10px;margin:.5em 0}
.kpi div{border:1pt solid #000;padding:6px 12px;min-width:7em}
.kpi b{display:block;font-size:15pt}
@media print{body{margin:0;font-size:9.5pt}.banner{background:none}
 h2{page-break-after:avoid}table{page-break-inside:auto}tr{page-break-inside:avoid}}
@page{size:A4 landscape;margin:12mm}
"""


def _cell(value: object) -> str:
    if value is None:
        return '<td class="n">—</td>'
    if isinstance(value, bool):
        return f"<td>{'có / yes' if value else 'không / no'}</td>"
    if isinstance(value, Decimal):
        return f'<td class="n">{value:,.0f}</td>'
    if isinstance(value, float):
        return f'<td class="n">{value:,.2f}</td>'
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    if isinstance(value, date):
        return f"<td>{value.strftime('%d/%m/%Y')}</td>"
    return f"<td>{escape(str(value))}</td>"


# The printed table keeps the columns a supervisor reads; CSV/XLSX carry all of them.
HTML_COLUMNS = ("dossiers", "redone", "components", "pages", "images", "note_slip_images",
                "pages_a4", "pages_a3", "pages_other", "images_colour", "images_gray",
                "images_bilevel", "needs_review_share", "reviewed_fields", "ocr_mean_confidence",
                "scan_to_signature_median_s", "scan_to_signature_p90_s")
_DURATIONS = ("scan_to_signature_median_s", "scan_to_signature_p90_s")


def duration_text(seconds: float) -> str:
    """``95 s`` → ``1 min 35 s``; ``90061`` → ``1 d 1 h 01 min`` (readable on paper)."""
    sign = "-" if seconds < 0 else ""
    total = int(round(abs(seconds)))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours} h {minutes:02d} min"
    if hours:
        return f"{sign}{hours} h {minutes:02d} min"
    if minutes:
        return f"{sign}{minutes} min {secs:02d} s"
    return f"{sign}{secs} s"


def _share(value: float | None) -> str:
    return '<td class="n">—</td>' if value is None else f'<td class="n">{value:.1%}</td>'


def _group_table(grouping: Grouping) -> str:
    names = ["group", *grouping.by, *HTML_COLUMNS]
    head = "".join(f"<th>{LABELS.get(n, escape(n))}</th>" for n in names)
    body = []

    def row_html(row: StatsRow, css: str = "") -> str:
        values = dict(row.keys)
        cells = []
        for n in names:
            if n == "group":
                cells.append(_cell(row.group))
            elif n in grouping.by:
                cells.append(_cell(values.get(n, "")))
            elif n == "needs_review_share":
                cells.append(_share(row.needs_review_share))
            elif n in _DURATIONS:
                value = getattr(row, n)
                cells.append(_cell(None) if value is None
                             else f'<td class="n">{duration_text(value)}</td>')
            else:
                cells.append(_cell(getattr(row, n)))
        return f'<tr class="{css}">{"".join(cells)}</tr>'

    for row in grouping.rows:
        body.append(row_html(row))
    body.append(row_html(grouping.total, "total"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _settlement(report: StatsReport) -> str:
    s = report.settlement
    basis = "ảnh chụp / images" if s.page_basis == "images" else "trang giấy / physical pages"
    parts = [f"<p>Đơn vị tính trang: <b>{basis}</b>. Đơn vị tiền: <b>{escape(s.currency)}</b>. "
             f"Làm tròn: {escape(s.rounding)}. Hồ sơ làm lại "
             f"{'được' if s.pay_redone else 'không được'} thanh toán lại "
             f"(re-dos {'paid' if s.pay_redone else 'not paid'}).</p>"]
    rates = ["<table><thead><tr><th>Đơn giá / rate</th><th>VND</th>"
             "<th>Căn cứ / legal source</th></tr></thead><tbody>"]
    for item in RATE_ITEMS:
        rate = s.rates[item]
        amount = _cell(rate.amount if rate else None)
        source = escape(rate.source) if rate else "<i>chưa cấu hình / not configured</i>"
        rates.append(f"<tr><td>{RATE_LABELS[item]}</td>{amount}<td>{source}</td></tr>")
    rates.append("</tbody></table>")
    parts.append("".join(rates))
    if s.missing_rates:
        missing = ", ".join(RATE_LABELS[m] for m in s.missing_rates)
        parts.append(f'<p class="note"><b>Thiếu đơn giá — rates missing:</b> {missing}. '
                     "Bảng chỉ có khối lượng cho các mục này; tổng tiền để trống "
                     "(quantities only; totals left empty). Set them in the profile "
                     "(<code>stats.rates</code>).</p>")
    head = "".join(f"<th>{LABELS.get(n, escape(n))}</th>" for n in SETTLEMENT_COLUMNS)
    rows = []
    for line in (*s.lines, s.total):
        css = "total" if line is s.total else ("subtotal" if not line.month else "")
        month = line.month or ("Cộng / subtotal" if line is not s.total else "Tổng / total")
        cells = [_cell(line.office), _cell(month)]
        cells += [_cell(getattr(line, n)) for n in SETTLEMENT_COLUMNS[2:]]
        rows.append(f'<tr class="{css}">{"".join(cells)}</tr>')
    parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    return "".join(parts)


def _figure(svg: str | None, caption: str) -> str:
    if svg is None:
        return f"<p><i>{escape(caption)}: không có dữ liệu / no data</i></p>"
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def to_html(report: StatsReport) -> str:
    g = report.main
    t = g.total
    period = " – ".join(d.strftime("%d/%m/%Y") if d else "…"
                        for d in (report.period_from, report.period_to))
    banner = (f'<div class="banner">⚠ {escape(report.banner)}</div>' if report.banner else "")
    demo = (f'<p class="note">{report.demo_bundles} bundle(s) signed with a DEMO identity are '
            "counted (--allow-demo): not valid for payment.</p>" if report.demo_bundles else "")
    kpis = [("Hồ sơ / dossiers", t.dossiers), ("Trang / pages", t.pages),
            ("Ảnh / images", t.images), ("Cần xem lại / review", t.needs_review),
            ("Làm lại / redone", t.redone), ("Bị loại / excluded", len(report.excluded))]
    kpi_html = "".join(f"<div>{label}<b>{value:,}</b></div>" for label, value in kpis)
    meta = [
        ("Kỳ / period", period),
        ("Lập lúc / generated", format_vn_time(report.generated_at)),
        ("Theo / grouped by", " + ".join(g.by) or "(tất cả / all)"),
        ("Gói tìm thấy / bundles found", f"{report.bundles_found:,}"),
        ("Đã xác minh / verified", "có / yes" if report.verified else "KHÔNG / NO"),
        ("Gốc tin cậy / trust roots",
         ", ".join(d[:16] for d in report.trust_roots_sha256) or "—"),
        ("Phiên bản / version", f"digitize {report.tool_version}"),
    ]
    meta_html = "".join(f"<dt>{k}</dt><dd>{escape(v)}</dd>" for k, v in meta)
    excluded = "".join(f"<tr><td>{escape(e.path)}</td><td>{escape(e.reason)}</td>"
                       f'<td class="n">{e.exit_code}</td></tr>' for e in report.excluded)
    copies = "".join(f"<tr><td>{escape(c.path)}</td><td>{escape(c.copy_of)}</td></tr>"
                     for c in report.copies)
    sections = [
        f"<h1>Thống kê số hóa hồ sơ — Digitisation statistics</h1>{banner}{demo}",
        f'<dl class="meta">{meta_html}</dl><div class="kpi">{kpi_html}</div>',
        "<h2>Biểu đồ — Charts</h2>",
        _figure(charts.pages_per_day_chart(report.charts),
                "Trang giấy mỗi ngày theo người số hóa (pages per day per digitiser)"),
        _figure(charts.review_share_chart(report.charts),
                "Tỷ lệ hồ sơ cần xem lại (review share per digitiser)"),
        _figure(charts.scan_to_signature_chart(report.charts),
                "Phân bố thời gian từ quét đến ký (scan-to-signature time)"),
        "<h2>Số liệu — Figures</h2>", _group_table(g),
        "<h2>Quyết toán — Settlement (per office and month)</h2>", _settlement(report),
        f"<h2>Gói bị loại — Excluded bundles ({len(report.excluded)})</h2>",
        ("<table><thead><tr><th>Gói / bundle</th><th>Lý do / reason</th><th>Mã / code</th>"
         f"</tr></thead><tbody>{excluded}</tbody></table>") if excluded
        else "<p>Không có / none.</p>",
    ]
    if copies:
        sections += [f"<h2>Bản sao không tính — Copies not counted ({len(report.copies)})</h2>",
                     "<table><thead><tr><th>Bản sao / copy</th><th>Bản được tính / counted"
                     f"</th></tr></thead><tbody>{copies}</tbody></table>"]
    return ("<!DOCTYPE html>\n<html lang=\"vi\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width\">"
            f"<meta name=\"generator\" content=\"digitize {escape(report.tool_version)}\">"
            f"<meta name=\"verified\" content=\"{str(report.verified).lower()}\">"
            "<title>Thống kê số hóa — digitize stats</title>"
            f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>\n")


def write_html(report: StatsReport, path: Path) -> None:
    write_atomic(path, to_html(report).encode("utf-8"))

