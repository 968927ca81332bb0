"""Is a PDF a fresh scan, and what else does it carry?

* Text and signatures decide whether a PDF is a scan (refused otherwise, or taken in rescan
  mode and kept byte-identical beside the new copy).
* Active content — JavaScript, actions that run on opening or on events (``/OpenAction`` with
  an action, ``/AA``, ``/Launch``, form submission), embedded files, XFA forms, RichMedia — is
  listed so that a received original carrying it is flagged for review: the digitiser's signed
  manifest must not vouch for it silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pikepdf

from digitize.errors import EncryptedPdfError

# What each finding is called in the flag message.
_ACTIVE_KEYS = {
    "/JS": "JavaScript",
    "/JavaScript": "JavaScript",
    "/AA": "additional actions (/AA)",
    "/EmbeddedFiles": "embedded files",
    "/EmbeddedFile": "embedded files",
    "/XFA": "XFA form",
    "/RichMedia": "RichMedia",
    "/RichMediaContent": "RichMedia",
}
_ACTIVE_ACTIONS = {
    "/JavaScript": "JavaScript",
    "/Launch": "launch action (/Launch)",
    "/SubmitForm": "form submission",
    "/ImportData": "data import action",
    "/GoToE": "embedded-file link (/GoToE)",
    "/Rendition": "media rendition",
}
_ACTIVE_SUBTYPES = {
    "/RichMedia": "RichMedia",
    "/FileAttachment": "embedded files",
    "/Screen": "media (Screen annotation)",
    "/Movie": "media (Movie annotation)",
    "/Sound": "media (Sound annotation)",
}
_MAX_NODES = 500_000


@dataclass
class PdfScanCheck:
    text_pages: list[int]
    signatures: int
    byte_range: bool

    @property
    def is_scan(self) -> bool:
        return not self.text_pages and not self.signatures and not self.byte_range

    def describe(self) -> str:
        found = []
        if self.text_pages:
            pages = ", ".join(str(p) for p in self.text_pages[:5])
            more = "…" if len(self.text_pages) > 5 else ""
            found.append(f"a text layer (fonts/text operators on page {pages}{more})")
        if self.signatures or self.byte_range:
            found.append(f"{max(self.signatures, 1)} digital signature(s)")
        return " and ".join(found)


def open_pdf(
    source: Path | BinaryIO, display: str, *, allow_encrypted: bool = False
) -> pikepdf.Pdf:
    """Open a PDF read-only. Encryption is refused unless ``allow_encrypted`` (rescan mode),
    and even then only when no password is needed to read it (permissions-only encryption,
    common on e-copies issued by document systems)."""
    try:
        pdf = pikepdf.open(source)
    except pikepdf.PasswordError as exc:
        raise EncryptedPdfError(
            "PDF is encrypted (password protected)",
            path=display,
            hint="ask for an unprotected scan",
        ) from exc
    if pdf.is_encrypted and not allow_encrypted:
        pdf.close()
        raise EncryptedPdfError(
            "PDF is encrypted; encrypted files are not accepted as scans",
            path=display,
            hint='ask for an unprotected scan, or set ingest.pdf_with_text: "rescan" (--rescan) '
            "to take its page images",
        )
    return pdf


def inherited(page: pikepdf.Page, key: str) -> Any:
    """Page attributes (Resources, MediaBox, Rotate) may sit on an ancestor Pages node."""
    node: Any = page.obj
    for _ in range(64):
        if not isinstance(node, pikepdf.Dictionary):
            return None
        value = node.get(key)
        if value is not None:
            return value
        node = node.get("/Parent")
    return None


def fonts_in(resources: Any, seen: set[tuple[int, int]], depth: int = 0) -> bool:
    """A font in the page's resources (or a form's) means a text layer, drawn or not."""
    if depth > 8 or not isinstance(resources, pikepdf.Dictionary):
        return False
    fonts = resources.get("/Font")
    if isinstance(fonts, pikepdf.Dictionary) and len(fonts.keys()) > 0:
        return True
    xobjects = resources.get("/XObject")
    if isinstance(xobjects, pikepdf.Dictionary):
        for _, xobj in xobjects.items():
            if isinstance(xobj, pikepdf.Stream) and xobj.get("/Subtype") == "/Form":
                key = xobj.objgen
                if key in seen:
                    continue
                seen.add(key)
                if fonts_in(xobj.get("/Resources"), seen, depth + 1):
                    return True
    return False


def signature_fields(pdf: pikepdf.Pdf) -> int:
    count = 0
    acroform = pdf.Root.get("/AcroForm")
    stack: list[Any] = []
    if isinstance(acroform, pikepdf.Dictionary):
        fields = acroform.get("/Fields")
        if isinstance(fields, pikepdf.Array):
            stack.extend(fields)
    seen: set[tuple[int, int]] = set()
    while stack and len(seen) < 10_000:
        node = stack.pop()
        if not isinstance(node, pikepdf.Dictionary):
            continue
        if node.objgen != (0, 0):
            if node.objgen in seen:
                continue
            seen.add(node.objgen)
        value = node.get("/V")
        if node.get("/FT") == "/Sig" and isinstance(value, pikepdf.Dictionary):
            count += 1
        kids = node.get("/Kids")
        if isinstance(kids, pikepdf.Array):
            stack.extend(kids)
    return count


def _note(node: pikepdf.Dictionary | pikepdf.Stream, found: set[str]) -> list[Any]:
    """Record active content in one dictionary; return its direct children to visit."""
    children: list[Any] = []
    for key in node.keys():
        value = node.get(key)
        if key in _ACTIVE_KEYS:
            found.add(_ACTIVE_KEYS[key])
        elif key == "/OpenAction" and isinstance(value, pikepdf.Dictionary):
            kind = str(value.get("/S", "action"))
            found.add(f"an action run on opening (/OpenAction {kind})")
        elif key == "/S" and str(value) in _ACTIVE_ACTIONS:
            found.add(_ACTIVE_ACTIONS[str(value)])
        elif key == "/Subtype" and str(value) in _ACTIVE_SUBTYPES:
            found.add(_ACTIVE_SUBTYPES[str(value)])
        if isinstance(value, pikepdf.Dictionary | pikepdf.Array) and not value.is_indirect:
            children.append(value)
    return children


def active_content(pdf: pikepdf.Pdf) -> list[str]:
    """Every kind of active content in the file (sorted names), from the object table: each
    indirect object and the direct dictionaries inside it. No stream is decoded."""
    found: set[str] = set()
    visited = 0
    for obj in pdf.objects:
        stack: list[Any] = [obj]
        while stack and visited < _MAX_NODES:
            node = stack.pop()
            visited += 1
            if isinstance(node, pikepdf.Dictionary | pikepdf.Stream):
                stack.extend(_note(node, found))
            elif isinstance(node, pikepdf.Array):
                stack.extend(v for v in node if isinstance(v, pikepdf.Dictionary | pikepdf.Array)
                             and not v.is_indirect)
    return sorted(found)
