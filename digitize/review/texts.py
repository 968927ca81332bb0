"""Words a person reads in the report and on the review page: field names and every flag in
plain Vietnamese (English with ``lang="en"``).

Flags in the manifest carry a stable ``code`` and an English technical ``message``; a clerk at
the counter reads the sentence of this table for the code instead (R15: a doubt must reach a
person in words that person understands). A code missing here (a newer tool wrote it) is shown
with its code and the manifest's own message, never dropped.
"""

from __future__ import annotations

from typing import Literal

from digitize.models import Flag

Lang = Literal["vi", "en"]

# code -> (Vietnamese, English): what the machine noticed, and what the person should do.
FLAG_TEXT: dict[str, tuple[str, str]] = {
    # page capture (ingest)
    "dpi_inferred": (
        "Tệp quét không ghi độ phân giải; độ phân giải được suy ra từ khổ giấy.",
        "The scan did not state its resolution; it was inferred from the paper size.",
    ),
    "dpi_unknown": (
        "Không xác định được độ phân giải của trang: kiểm tra khổ giấy và chất lượng ảnh.",
        "The page resolution is unknown: check the paper size and image quality.",
    ),
    "dpi_non_square": (
        "Độ phân giải ngang và dọc khác nhau.",
        "Horizontal and vertical resolution differ.",
    ),
    "grayscale_capture": (
        "Trang được quét đen trắng/xám trong khi hồ sơ yêu cầu quét màu.",
        "The page was scanned in gray or black and white where colour is required.",
    ),
    "blank_page": (
        "Trang trắng (có thể là mặt sau để trống).",
        "Blank page (possibly an empty back side).",
    ),
    "blank_page_dropped": (
        "Một trang trắng đã được bỏ ra khỏi tệp.",
        "A blank page was left out of the file.",
    ),
    "content_at_border": (
        "Nội dung chạm mép ảnh: có thể bị cắt mất khi quét. Xem mép trang.",
        "Content touches the image edge: it may have been cut off. Check the page edges.",
    ),
    "duplicate_page": (
        "Trang giống hệt một trang trước đó: có thể bị quét hai lần.",
        "The page is identical to an earlier page: possibly scanned twice.",
    ),
    "near_duplicate_page": (
        "Trang gần giống một trang trước đó: có thể bị quét hai lần.",
        "The page is nearly identical to an earlier page: possibly scanned twice.",
    ),
    "cross_component_duplicate": (
        "Một trang trùng với trang của thành phần hồ sơ khác.",
        "A page duplicates a page of another component.",
    ),
    "extension_mismatch": (
        "Đuôi tệp không khớp với định dạng thật của tệp.",
        "The file extension does not match the file's real format.",
    ),
    "exif_orientation": (
        "Tệp ảnh có ghi hướng xoay; ảnh được giữ như khi quét.",
        "The image file states an orientation; the pixels were kept as scanned.",
    ),
    "pdf_rescanned": (
        "Trang lấy từ một tệp PDF đã có chữ/chữ ký (không phải bản quét mới); tệp gốc được giữ nguyên.",
        "Page taken from a PDF that already had text or signatures; the original is kept as it was.",
    ),
    "pdf_extra_images": (
        "Trang PDF có nhiều ảnh; chỉ ảnh lớn nhất được dùng.",
        "The PDF page holds several images; only the largest was used.",
    ),
    "pdf_page_rotate": (
        "Trang PDF có lệnh xoay; ảnh được giữ như khi lưu.",
        "The PDF page has a rotation setting; the image was kept as stored.",
    ),
    "pdf_encrypted": (
        "Tệp PDF nhận được có mã hóa quyền; chỉ ảnh trang được lấy.",
        "The received PDF is permission-encrypted; only its page images were taken.",
    ),
    "captured_at_mtime": (
        "Tệp quét không ghi thời điểm chụp; dùng thời điểm sửa tệp.",
        "The scan did not record when it was taken; the file time was used.",
    ),
    "tiff_thumbnail_skipped": (
        "Ảnh thu nhỏ trong tệp TIFF không được tính là trang.",
        "Thumbnail images inside the TIFF were not counted as pages.",
    ),
    "not_digitised_has_scans": (
        "Thành phần ghi là không số hóa nhưng thư mục lại có bản quét.",
        "The component is marked as not digitised but its folder holds scans.",
    ),
    "empty_folder_ignored": (
        "Một thư mục không có bản quét đã được bỏ qua.",
        "A folder without scans was ignored.",
    ),
    "dossier_code_format_unknown": (
        "Mã hồ sơ không theo dạng quy định: kiểm tra lại mã.",
        "The dossier code is not in a known format: check it.",
    ),
    "procedure_code_format_unknown": (
        "Mã thủ tục hành chính không theo dạng quy định.",
        "The procedure code is not in a known format.",
    ),
    "receiving_organ_id_format": (
        "Mã định danh cơ quan tiếp nhận không đúng dạng.",
        "The receiving organ identifier is not in the expected format.",
    ),
    # clean-up
    "orientation_uncertain": (
        "Không chắc hướng trang: trang được giữ nguyên, xem trang có bị ngược không.",
        "Page orientation is unclear: the page was left as scanned; check it is upright.",
    ),
    "skew_uncertain": (
        "Không đo được độ nghiêng: trang không được chỉnh thẳng.",
        "The skew could not be measured: the page was not straightened.",
    ),
    # OCR
    "no_text": (
        "Không nhận dạng được chữ nào trên trang.",
        "No text was recognised on the page.",
    ),
    "low_ocr_confidence": (
        "Nhiều dòng chữ được nhận dạng với độ tin cậy thấp: kiểm tra lớp chữ của trang.",
        "Many lines were read with low confidence: check the page's text layer.",
    ),
    "ocr_failed": (
        "Nhận dạng chữ (OCR) thất bại trên trang này.",
        "Text recognition (OCR) failed on this page.",
    ),
    "ocr_review": (
        "Một số trang có độ tin cậy nhận dạng chữ dưới ngưỡng: cần người kiểm tra.",
        "Some pages are under the OCR confidence threshold: a person must check them.",
    ),
    # signature
    "demo_signer": (
        "Ký bằng danh tính DEMO: không có giá trị sử dụng thật.",
        "Signed with the DEMO identity: not valid for real use.",
    ),
    "no_timestamp": (
        "Chữ ký không có dấu thời gian (mức PAdES B-B).",
        "The signature has no time-stamp (PAdES B-B).",
    ),
    "revocation_not_checkable": (
        "Chứng thư số không cho phép kiểm tra thu hồi.",
        "The certificate allows no revocation check.",
    ),
    "stamp_on_rotated_page": (
        "Trang 1 bị xoay: dòng ghi chú chữ ký nằm ở góc trên bên trái chưa xoay.",
        "Page 1 is rotated: the signature note sits at the unrotated top-left corner.",
    ),
    "stamp_overlaps_text": (
        "Dòng ghi chú chữ ký số đè lên chữ ở góc trên bên trái trang 1: xem chữ bị che.",
        "The signature note overlaps text at the top-left of page 1: check what it covers.",
    ),
}

# extraction field name -> (Vietnamese, English) label
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "parent_organ": ("Cơ quan chủ quản", "Parent organ"),
    "organ_name": ("Cơ quan ban hành", "Issuing organ"),
    "code_number": ("Số", "Number"),
    "code_year": ("Năm (trong số văn bản)", "Year (in the number)"),
    "code_notation": ("Ký hiệu", "Notation"),
    "issued_place": ("Địa danh", "Place"),
    "issued_date": ("Ngày ban hành", "Date of issue"),
    "type_name": ("Tên loại văn bản", "Document type"),
    "subject": ("Trích yếu", "Subject"),
    "recipients": ("Nơi nhận", "Recipients"),
    "signer_position": ("Chức vụ người ký", "Signer's position"),
    "signer_full_name": ("Họ tên người ký", "Signer's name"),
    # Art. 9 block (TT 01/2023 Art 9 k2, requirements §9a)
    "art9.paper_type_code": ("Mã loại giấy tờ", "Paper-type code"),
    "art9.paper_type_name": ("Loại giấy tờ", "Paper type"),
    "art9.owner_id": ("Số định danh chủ sở hữu", "Owner's identifier"),
    "art9.owner_id_kind": ("Loại định danh", "Identifier kind"),
    "art9.paper_name": ("Tên giấy tờ", "Paper name"),
    "art9.number_notation": ("Số, ký hiệu", "Number and notation"),
    "art9.issued_date": ("Ngày cấp/ban hành", "Date of issue"),
    "art9.issuing_body": ("Cơ quan cấp", "Issuing body"),
    "art9.summary": ("Trích yếu nội dung", "Summary"),
    "art9.valid_until": ("Có hiệu lực đến", "Valid until"),
    "art9.validity_scope": ("Phạm vi hiệu lực", "Validity scope"),
}

SEVERITY_TEXT: dict[str, tuple[str, str]] = {
    "info": ("thông tin", "info"),
    "warning": ("lưu ý", "warning"),
    "review": ("cần người xem", "needs review"),
    "error": ("lỗi", "error"),
}

UI: dict[str, tuple[str, str]] = {
    "needs_review": ("Cần rà soát", "Needs review"),
    "reviewed": ("Đã rà soát xong", "Review complete"),
    "confirmed": ("Đã xác nhận", "Confirmed"),
    "corrected": ("Đã sửa", "Corrected"),
    "machine": ("Máy đọc", "Machine reading"),
    "accept": ("Chấp nhận", "Accept"),
    "rescan": ("Cần quét lại", "Needs rescan"),
    "open_field": ("Trường {field} của {file} chưa được xác nhận",
                   "Field {field} of {file} is not confirmed"),
    "open_flag": ("{file}{page}: {message}", "{file}{page}: {message}"),
    "open_rescan": ("{file} trang {page} cần quét lại: {reason}",
                    "{file} page {page} needs a new scan: {reason}"),
    "page": (" trang {page}", " page {page}"),
}


def pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def ui(key: str, lang: str, **values: object) -> str:
    return pick(UI[key], lang).format(**values)


def field_label(name: str, lang: str) -> str:
    """A field's name for people; ``art9.fields.<key>`` template fields show their key."""
    if name in FIELD_LABELS:
        return pick(FIELD_LABELS[name], lang)
    return name.removeprefix("art9.fields.").removeprefix("art9.").replace("_", " ")


def flag_text(flag: Flag, lang: str) -> str:
    """The flag in plain words; an unknown code keeps the manifest's own message."""
    if flag.code in FLAG_TEXT:
        return pick(FLAG_TEXT[flag.code], lang)
    return f"{flag.code}: {flag.message}"


def severity_text(severity: str, lang: str) -> str:
    return pick(SEVERITY_TEXT.get(severity, (severity, severity)), lang)
