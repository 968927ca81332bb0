"""One self-contained HTML file per bundle: opens offline, every picture embedded as a
``data:`` URI, no script, no external link or font, prints on A4 (print CSS in the file).

Every value is escaped by Jinja's autoescape (file names, OCR text and certificate names are
untrusted). Page thumbnails and field crops are rendered from the signed PDFs
(``review.render``); flagged regions are outlined with boxes positioned in percent of the page,
so the outline sits on the same place at any size and on paper.
"""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader

from digitize._version import __version__
from digitize.report.build import DossierReport
from digitize.review.render import PageRenderer
from digitize.review.texts import field_label, ui
from digitize.util import format_vn_time

THUMB_WIDTH = 300
CROP_RENDER_WIDTH = 1400


def display_time(moment: datetime | None, lang: str = "vi") -> str:
    """Vietnam time for people: ``11:34 ngày 30/11/2026``; in English ``11:34, 30/11/2026
    (Vietnam time)``."""
    if moment is None:
        return "—"
    text = format_vn_time(moment)
    if lang == "en":
        clock, _, day = text.partition(" ngày ")
        return f"{clock}, {day} (Vietnam time)"
    return text


# Words of the report page (Vietnamese, English).
TEXT: dict[str, tuple[str, str]] = {
    "title": ("Báo cáo số hóa hồ sơ", "Dossier digitisation report"),
    "dossier_code": ("Mã hồ sơ", "Dossier code"),
    "procedure_code": ("Mã thủ tục hành chính", "Procedure code"),
    "receiving_organ": ("Mã cơ quan tiếp nhận", "Receiving organ"),
    "received_at": ("Thời điểm tiếp nhận", "Received at"),
    "digitiser": ("Người số hóa", "Digitiser"),
    "cert": ("Chứng thư số", "Certificate"),
    "serial": ("số sê-ri", "serial"),
    "issuer": ("cấp bởi", "issued by"),
    "demo": ("DEMO — không có giá trị sử dụng thật", "DEMO — not valid for real use"),
    "created_at": ("Thời điểm đóng gói", "Bundle made at"),
    "profile": ("Cấu hình", "Profile"),
    "verify": ("Kiểm tra gói hồ sơ", "Bundle verification"),
    "valid": ("HỢP LỆ", "VALID"),
    "invalid": ("KHÔNG HỢP LỆ", "INVALID"),
    "not_verified": ("chưa kiểm tra", "not verified"),
    "exit_code": ("mã thoát", "exit code"),
    "checks": ("{n} mục kiểm tra", "{n} checks"),
    "pass": ("đạt", "pass"),
    "fail": ("không đạt", "fail"),
    "status": ("Tình trạng rà soát", "Review status"),
    "why": ("Lý do", "Why"),
    "reviews": ("Các lần rà soát", "Reviews"),
    "reviewer": ("Người rà soát", "Reviewer"),
    "when": ("Thời điểm", "When"),
    "changes": ("Thay đổi", "Changes"),
    "dossier_flags": ("Ghi nhận của máy về cả hồ sơ", "Machine notes on the dossier"),
    "file": ("Tệp", "File"),
    "pages": ("Số trang", "Pages"),
    "images": ("số ảnh", "images"),
    "ocr": ("OCR trung bình", "OCR mean"),
    "signature": ("Chữ ký số", "Signature"),
    "signed_at": ("ký lúc", "signed at"),
    "scan_time": ("thời gian sao chụp", "scan time"),
    "not_digitised": ("Không số hóa", "Not digitised"),
    "originals": ("Tệp gốc giữ nguyên", "Originals kept as received"),
    "page": ("Trang", "Page"),
    "fields": ("Thông tin trích xuất", "Extracted fields"),
    "art9": ("Dữ liệu theo Điều 9 Thông tư 01/2023", "Art. 9 data (Circular 01/2023)"),
    "field": ("Trường", "Field"),
    "paper_type": ("Loại giấy tờ", "Paper type"),
    "result_code": ("Mã kết quả số hóa", "Digitisation-result code"),
    "no_result_code": ("chưa có", "none yet"),
    "config_gaps": ("Cấu hình còn thiếu (người rà soát không sửa được)",
                    "Missing from the configuration (a reviewer cannot fix it)"),
    "source": ("nguồn", "source"),
    "entered_by": ("người nhập", "entered by"),
    "doubt": ("máy nghi ngờ", "machine's doubt"),
    "value": ("Giá trị", "Value"),
    "confidence": ("Độ tin cậy", "Confidence"),
    "state": ("Tình trạng", "State"),
    "where": ("Vùng đọc", "Where it was read"),
    "state_read": ("máy đọc", "read by the machine"),
    "state_needs_review": ("cần người xác nhận", "needs a person"),
    "state_confirmed": ("đã xác nhận", "confirmed"),
    "state_corrected": ("đã sửa", "corrected"),
    "state_manual": ("nhập tay", "entered by hand"),
    "machine": ("máy đọc", "machine read"),
    "by": ("bởi", "by"),
    "at": ("lúc", "at"),
    "no_fields": ("Không có trường nào được trích xuất.", "No field was extracted."),
    "legend": ("Chú giải khung", "Outline legend"),
    "legend_review": ("trường cần xác nhận", "field to confirm"),
    "legend_changed": ("trường người đã sửa", "field changed by a person"),
    "legend_stamp": ("ghi chú chữ ký đè chữ", "signature note over text"),
    "legend_border": ("nội dung chạm mép", "content at the edge"),
    "legend_page": ("cả trang", "whole page"),
    "generated": ("Báo cáo tạo lúc", "Report made at"),
    "no_flags": ("không có", "none"),
    "action_confirm": ("xác nhận", "confirmed"),
    "action_correct": ("sửa", "corrected"),
    "action_accept": ("chấp nhận trang", "page accepted"),
    "action_accept_document": ("chấp nhận khi chưa có mã kết quả số hóa",
                               "accepted without a digitisation-result code"),
    "action_rescan": ("cần quét lại", "needs rescan"),
}


def text(key: str, lang: str, **values: object) -> str:
    vi, en = TEXT[key]
    return (en if lang == "en" else vi).format(**values)


def template_environment() -> Environment:
    env = Environment(loader=PackageLoader("digitize.report", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = display_time
    env.filters["pct"] = lambda v: "—" if v is None else f"{float(v) * 100:.0f} %"
    env.globals["ui"] = ui
    env.globals["text"] = text
    env.globals["field_label"] = field_label
    env.globals["version"] = __version__
    return env


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def report_images(report: DossierReport, bundle: Path,
                  renderer: PageRenderer | None = None) -> dict[str, str]:
    """``thumb:<ordinal>:<page>`` and ``crop:<ordinal>:<field>`` → data URI."""
    renderer = renderer or PageRenderer()
    images: dict[str, str] = {}
    for doc in report.documents:
        if doc.file is None:
            continue
        pdf = bundle / doc.file
        widths = {p.index: p.width_px for p in doc.pages}
        for page in doc.pages:
            jpeg = renderer.page_jpeg(pdf, page.index, THUMB_WIDTH, quality=72)
            images[f"thumb:{doc.ordinal}:{page.index}"] = data_uri(jpeg, "image/jpeg")
        for field in (*doc.fields, *doc.art9):
            if field.bbox is None or field.page not in widths:
                continue
            png = renderer.crop(pdf, field.page, field.bbox, widths[field.page],
                                render_width=CROP_RENDER_WIDTH, max_width=700)
            images[f"crop:{doc.ordinal}:{field.name}"] = data_uri(png, "image/png")
    return images


def render_report_html(report: DossierReport, bundle: Path,
                       renderer: PageRenderer | None = None) -> str:
    images = report_images(report, bundle, renderer)
    template = template_environment().get_template("report.html")
    return template.render(r=report, images=images, lang=report.lang)
