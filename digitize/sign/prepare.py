"""Two-phase signing, the key-less half: reserve the signature field and draw the visible note
on a machine that has the digitiser's certificate but not the key (a hub), and check at the
station that a prepared file is what was prepared before signing it.

Why a reserved field rather than pyHanko's interrupted signing (``PdfTBSDocument``): PAdES
puts the claimed signing time in the signature dictionary's ``/M`` and forbids the CMS
signing-time attribute, and interrupted signing fixes ``/M`` (and the byte range) when the
digest is taken. Preparing only the field and its appearance leaves the signature dictionary
to the station, so ``/M`` is the time the digitiser actually signed, and the station hashes
exactly the bytes it signs. The signed file is the prepared file plus one incremental update
holding the signature (pyHanko's "sign an existing empty field" path), PAdES as ``sign_pdf``
makes it, PDF/A kept.

A prepared file holds an empty signature field and no signature: it never validates as
signed (pyHanko and ``pdfsig`` see no signature).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digitize.errors import PreparedDocumentError, SigningError
from digitize.models import DigitiserIdentity
from digitize.settings import SigningSettings
from digitize.sign.base import BBoxPt, PreparedPdf
from digitize.sign.certs import check_validity, identity_of, load_certificate, require_personal
from digitize.sign.stamp import (
    layout_flags,
    page_one_box,
    plan_stamp,
    resolve_font,
    shown_time_text,
    stamp_style,
)
from digitize.util import VN_TZ, sha256_bytes, write_atomic


def read_input(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise SigningError(f"cannot read: {e.strerror}", path=path) from None


def write_output(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def prepare_pdf(
    in_pdf: Path,
    out_prepared: Path,
    certificate: str | Path | bytes | Any,
    scan_time: datetime,
    settings: SigningSettings | None = None,
    text_boxes_pt: tuple[BBoxPt, ...] = (),
) -> PreparedPdf:
    """Write ``out_prepared``: ``in_pdf`` plus the signature field on page 1 with the visible
    note for the holder of ``certificate`` (a PEM/DER file, its bytes, or an asn1crypto
    certificate) and ``scan_time`` drawn in it (R18–R20) — and no signature. No key and no
    network are used. The certificate must be a person's (R17) and valid now (R25).

    ``settings`` gives the field name, font and time format (a profile's ``sign`` block; the
    defaults otherwise). The returned ``PreparedPdf`` goes with the file to the station.
    """
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.fields import SigFieldSpec, append_signature_field

    settings = settings or SigningSettings()
    if scan_time.tzinfo is None:
        raise SigningError("scan_time must be timezone-aware (R21)", path=in_pdf)
    cert = load_certificate(certificate)
    identity = identity_of(cert)
    require_personal(cert)
    check_validity(cert, datetime.now(UTC), identity.full_name)
    font = resolve_font(settings.font_path)
    shown = scan_time.astimezone(VN_TZ).replace(microsecond=0)
    writer = IncrementalPdfFileWriter(io.BytesIO(read_input(in_pdf)), strict=False)
    page_box, rotate = page_one_box(writer.prev)
    layout = plan_stamp(
        page_box,
        identity.full_name,
        shown_time_text(shown, settings.time_format),
        font,
        text_boxes_pt,
    )
    append_signature_field(
        writer,
        SigFieldSpec(
            sig_field_name=settings.field_name,
            on_page=0,
            box=layout.box,  # type: ignore[arg-type]  # points need not be integers
        ),
    )
    _draw_note(writer, settings.field_name, stamp_style(layout, font))
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    write_output(out_prepared, data)
    return PreparedPdf(
        field_name=settings.field_name,
        signer_name=identity.full_name,
        signer_cert_sha256=identity.cert_sha256,
        scan_time_shown=shown,
        note_lines=layout.lines,
        appearance_box_pt=layout.box,
        font_size=layout.font_size,
        appearance_shrunk=layout.shrunk,
        prepared_sha256=sha256_bytes(data),
        prepared_at=datetime.now(VN_TZ).replace(microsecond=0),
        flags=tuple(layout_flags(layout, rotate)),
    )


def _draw_note(writer: Any, field_name: str, style: Any) -> None:
    """Draw the note into the widget of ``field_name``, as pyHanko does when it signs."""
    from pyhanko.pdf_utils.form_tools import annot_width_height, get_single_field_annot
    from pyhanko.pdf_utils.layout import BoxConstraints
    from pyhanko.sign.fields import enumerate_sig_fields

    field_ref = next(ref for name, _, ref in enumerate_sig_fields(writer) if name == field_name)
    annot = get_single_field_annot(field_ref.get_object())
    width, height = annot_width_height(annot)
    stamp = style.create_stamp(writer, BoxConstraints(width=width, height=height), {})
    stamp.apply_appearance(annot)
    writer.update_container(annot)


def check_prepared(
    data: bytes, path: Path, preparation: PreparedPdf, identity: DigitiserIdentity
) -> None:
    """Station side, before signing: ``data`` is the prepared file (hash), prepared for this
    digitiser (certificate), its field still empty and on page 1 where the note was drawn.
    Any difference is ``PreparedDocumentError``; nothing is signed then."""
    from pyhanko.pdf_utils.form_tools import get_single_field_annot
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import enumerate_sig_fields

    if sha256_bytes(data) != preparation.prepared_sha256:
        raise PreparedDocumentError(
            "the file is not the one prepared (its SHA-256 differs from the preparation record)",
            path=path,
        )
    if preparation.signer_cert_sha256 != identity.cert_sha256:
        raise PreparedDocumentError(
            f"prepared for '{preparation.signer_name}', but this signer is "
            f"'{identity.full_name}' (another certificate): the note would name someone else",
            path=path,
        )
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    found = [(value, ref) for name, value, ref in enumerate_sig_fields(reader)
             if name == preparation.field_name]  # fmt: skip
    if not found:
        raise PreparedDocumentError(
            f"no signature field '{preparation.field_name}' in the prepared file", path=path
        )
    value, ref = found[0]
    if value is not None:
        raise PreparedDocumentError(
            f"signature field '{preparation.field_name}' is already signed", path=path
        )
    annot = get_single_field_annot(ref.get_object())
    page_one = reader.root["/Pages"]
    while "/Kids" in page_one:
        page_one = page_one["/Kids"][0].get_object()
    on_page_one = annot.get_value_as_reference("/P") == page_one.container_ref if "/P" in annot else False
    rect = [float(v) for v in annot["/Rect"]]
    box = preparation.appearance_box_pt
    if not on_page_one or any(abs(a - b) > 0.01 for a, b in zip(rect, box, strict=True)):
        raise PreparedDocumentError(
            "the reserved field is not where the note was drawn (page 1, top-left)", path=path
        )
