"""What ``digitize ocr`` writes: plain-text sidecar, hOCR, JSON of words, lines and fields."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from digitize.errors import OutputError
from digitize.models import ExtractedField, PageOcr
from digitize.util import write_atomic


def write_sidecar(pages: Sequence[PageOcr], path: Path) -> Path:
    """Plain text of all pages, pages separated by a form feed (OCRmyPDF's sidecar shape)."""
    text = "\f".join(page.text for page in pages)
    return _write_text(path, text + "\n")


def write_hocr(page: PageOcr, path: Path) -> Path:
    """The engine's hOCR for one page (audit copy)."""
    if page.hocr is None:
        raise OutputError("no hOCR kept for this page (keep_hocr is off)", path=path)
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="vi" lang="vi">\n'
        "<head><title>hOCR</title>"
        '<meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>'
        f'<meta name="ocr-system" content="{html.escape(page.engine)} {html.escape(page.engine_version)}"/>'
        '<meta name="ocr-capabilities" content="ocr_page ocr_carea ocr_par ocr_line ocrx_word"/>'
        f"</head>\n<body>\n{page.hocr}</body>\n</html>\n"
    )
    return _write_text(path, document)


def ocr_json(pages: Sequence[PageOcr], fields: Sequence[ExtractedField] = ()) -> dict[str, object]:
    """Words, lines, quality and extracted fields of a page list, JSON-ready."""
    return {
        "pages": [
            {
                "page": number,
                **page.model_dump(mode="json", exclude={"hocr"}),
            }
            for number, page in enumerate(pages, start=1)
        ],
        "fields": [field.model_dump(mode="json") for field in fields],
    }


def write_ocr_json(
    pages: Sequence[PageOcr], path: Path, fields: Sequence[ExtractedField] = ()
) -> Path:
    return _write_text(path, json.dumps(ocr_json(pages, fields), ensure_ascii=False, indent=1))


def _write_text(path: Path, text: str) -> Path:
    path = Path(path)
    try:
        write_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise OutputError(f"cannot write {exc.strerror or exc}", path=path) from exc
    return path
