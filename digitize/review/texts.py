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
    "pdf_orientation_applied": (
        "Ảnh trong tệp PDF đã được xoay/lật để trang hiện ra như khi mở tệp.",
        "The image in the PDF was turned or mirrored to show the page as the file displays it.",
    ),
    "original_active_content": (
        "Tệp PDF gốc được giữ nguyên có chứa nội dung tự chạy (mã lệnh, hành động, tệp đính kèm "
        "hoặc biểu mẫu động): kiểm tra tệp gốc trước khi dùng gói hồ sơ.",
        "A received PDF kept as it was carries active content (scripts, actions, attached "
        "files or dynamic forms): check the original before the bundle is relied on.",
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
    "ocr_restored": (
        "Trang quét kém nên được đọc lại từ bản làm rõ (ảnh lưu trong tệp vẫn là bản quét gốc).",
        "The scan read poorly, so the page was read again from cleaned-up copies (the stored "
        "image is still the original scan).",
    ),
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
    # extraction (ND 30 header fields, Art. 9 data of every paper)
    "field_review": (
        "Máy đọc chưa chắc một thông tin của văn bản: xem ảnh và xác nhận hoặc sửa.",
        "A document field was not read surely: look at the page and confirm or correct it.",
    ),
    "art9_review": (
        "Một số thông tin theo Điều 9 (loại giấy tờ, số định danh chủ sở hữu, ngày cấp…) máy "
        "chưa đọc được hoặc đọc chưa chắc: xác nhận hoặc nhập lại từ giấy tờ.",
        "Some Art. 9 data (paper type, owner's identifier, date of issue…) was not read or not "
        "read surely: confirm it or enter it from the paper.",
    ),
    "paper_type_review": (
        "Máy không nhận ra loại giấy tờ, hoặc loại ghi trong hồ sơ khác với loại đọc được trên "
        "trang: xác nhận tên loại giấy tờ.",
        "The paper type was not recognised, or the declared type differs from what the page "
        "reads: confirm the paper type.",
    ),
    "result_code_missing": (
        "Chưa lập được mã kết quả số hóa của giấy tờ này",
        "No digitisation-result code could be made for this paper",
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

# Why an Art. 9 value needs a person (``Art9Value.doubts``), in plain words.
DOUBT_TEXT: dict[str, tuple[str, str]] = {
    "unread": ("chưa đọc được", "not read"),
    "handwritten": ("viết tay", "handwritten"),
    "low_confidence": ("đọc chưa chắc", "read with low confidence"),
    "misread": ("có thể đọc sai chữ", "may be misread"),
    "layout": ("có thể lấy nhầm dòng", "may be taken from the wrong line"),
    "single_reading": ("chỉ đọc được một lần, chưa đối chiếu", "read once, not cross-checked"),
    "soft_check": ("không khớp ngày sinh trên giấy tờ (kiểm tra mềm R39)",
                   "does not fit the date of birth on the paper (R39 soft check)"),
    "conflict": ("mâu thuẫn với giấy tờ khác trong hồ sơ", "conflicts with another paper"),
    "no_code": ("chưa cấu hình mã loại giấy tờ (extract.catalogue.codes)",
                "no paper-type code configured (extract.catalogue.codes)"),
    "unrecognised": ("không nhận ra loại giấy tờ", "paper type not recognised"),
    "not_printed": ("không in trên giấy tờ: nhập khi rà soát",
                    "not printed on the paper: enter it at review"),
}

SOURCE_TEXT: dict[str, tuple[str, str]] = {
    "ocr": ("máy đọc", "machine reading"),
    "manual": ("người nhập", "entered by a person"),
    "dossier.yaml": ("khai trong hồ sơ", "declared in dossier.yaml"),
    "catalogue": ("danh mục loại giấy tờ", "paper-type catalogue"),
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
    "open_config": ("{file}: chưa có mã kết quả số hóa vì {gaps}; người rà soát có thể chấp "
                    "nhận thành phần khi biết rõ điều này",
                    "{file}: no digitisation-result code because {gaps}; a reviewer may accept "
                    "the component knowing this"),
    "accepted_doc": ("Đã chấp nhận khi chưa có mã kết quả số hóa: {name}, {time}",
                     "Accepted without a digitisation-result code: {name}, {time}"),
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
    """The flag in plain words; an unknown code keeps the manifest's own message. A missing
    result code says what is missing."""
    if flag.code == "result_code_missing":
        from digitize.extract.dossier import missing_parts_in
        from digitize.review.art9 import gap_text

        parts = missing_parts_in(flag)
        words = pick(FLAG_TEXT[flag.code], lang)
        if parts:
            words += ": " + "; ".join(gap_text(p, lang) for p in parts)
        return words + "."
    if flag.code in FLAG_TEXT:
        return pick(FLAG_TEXT[flag.code], lang)
    return f"{flag.code}: {flag.message}"


def doubt_text(codes: tuple[str, ...] | list[str], lang: str) -> str:
    """Why a value needs a person, in plain words (unknown codes as they are)."""
    return ", ".join(pick(DOUBT_TEXT[c], lang) if c in DOUBT_TEXT else c for c in codes)


def source_text(source: str, lang: str) -> str:
    return pick(SOURCE_TEXT.get(source, (source, source)), lang)


def severity_text(severity: str, lang: str) -> str:
    return pick(SEVERITY_TEXT.get(severity, (severity, severity)), lang)
