"""PDF content streams, read within bounds: where each image is drawn, and whether a page has
text.

A content stream is decoded before it is parsed, and that is where a Flate bomb sits (10 MB
that inflate to 10 GB). Page and form content streams are therefore inflated here with a cap
(``max_content_stream_bytes``): a plain Flate stream with ``zlib`` and ``max_length`` (never
more than the cap in memory), any other filter chain by qpdf under the process-wide limits of
``guard.ensure_decoder_limits``. Only the operators we need are parsed (``q Q cm Do`` and the
text-showing ones), so a long stream does not become millions of Python objects.

Matrices are PDF's ``[a b c d e f]`` (row-vector convention: ``cm`` pre-multiplies the CTM).
An image is drawn into the unit square of its CTM: its pixel columns run along ``(a, b)`` and
its rows along ``(c, d)`` in user space, whatever the page's /Rotate says.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import pikepdf

from digitize.errors import DecompressionBombError

Matrix = tuple[float, float, float, float, float, float]
IDENTITY_MATRIX: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
TEXT_OPERATORS = frozenset({"Tj", "TJ", "'", '"'})
_OPERATORS = "q Q cm Do Tj TJ ' \""
_MAX_FORM_DEPTH = 8
_MAX_STACK = 1024


def multiply(m: Matrix, n: Matrix) -> Matrix:
    """``m × n`` in PDF's row-vector convention (apply ``m`` first, then ``n``)."""
    a, b, c, d, e, f = m
    na, nb, nc, nd, ne, nf = n
    return (
        a * na + b * nc,
        a * nb + b * nd,
        c * na + d * nc,
        c * nb + d * nd,
        e * na + f * nc + ne,
        e * nb + f * nd + nf,
    )


def _filters(stream: pikepdf.Stream) -> tuple[list[str], Any]:
    filters = stream.get("/Filter")
    if isinstance(filters, pikepdf.Name):
        names = [str(filters)]
    elif isinstance(filters, pikepdf.Array):
        names = [str(f) for f in filters]
    else:
        names = []
    return names, stream.get("/DecodeParms")


def bounded_stream_bytes(stream: pikepdf.Stream, cap: int, what: str) -> bytes:
    """The decoded bytes of ``stream``, refused with ``DecompressionBombError`` past ``cap``."""
    names, parms = _filters(stream)
    too_big = DecompressionBombError(
        f"{what} inflates past {cap // 1024**2} MB (ingest.max_content_stream_bytes)"
    )
    if not names:
        data = bytes(stream.read_raw_bytes())
    elif names == ["/FlateDecode"] and not isinstance(parms, pikepdf.Dictionary):
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(bytes(stream.read_raw_bytes()), cap + 1)
        except zlib.error:
            data = bytes(stream.read_bytes())  # damaged: qpdf recovers what it can, bounded
        else:
            if inflater.unconsumed_tail:
                raise too_big
    else:
        data = bytes(stream.read_bytes())
    if len(data) > cap:
        raise too_big
    return data


@dataclass
class PageContent:
    """What one page draws: the CTM of each image the first time it is drawn, and text."""

    has_text: bool = False
    placements: dict[tuple[int, int], Matrix] = field(default_factory=dict)


def _content_streams(page_obj: pikepdf.Dictionary) -> list[pikepdf.Stream]:
    contents = page_obj.get("/Contents")
    if isinstance(contents, pikepdf.Stream):
        return [contents]
    if isinstance(contents, pikepdf.Array):
        return [s for s in contents if isinstance(s, pikepdf.Stream)]
    return []


class _Reader:
    def __init__(self, cap: int, label: str) -> None:
        self.cap = cap
        self.label = label
        self.scratch = pikepdf.new()  # holds decoded copies only, so qpdf parses bounded bytes
        self.result = PageContent()
        self.budget = cap  # decoded bytes left for this page and every form it draws

    def ops(self, streams: list[pikepdf.Stream], what: str) -> list[Any]:
        """Parsed operators; a damaged stream reads as empty (it draws nothing we can use),
        a stream past the limits is refused."""
        try:
            parts = [bounded_stream_bytes(s, self.budget, f"{what} of {self.label}") for s in streams]
            data = b"\n".join(parts)
            self.budget -= len(data)
            if self.budget < 0:
                raise DecompressionBombError(
                    f"content of {self.label} inflates past {self.cap // 1024**2} MB "
                    "(ingest.max_content_stream_bytes)"
                )
            stream = pikepdf.Stream(self.scratch, data)
            return list(pikepdf.parse_content_stream(stream, _OPERATORS))
        except pikepdf.PdfError as exc:
            if "memory limit exceeded" in str(exc):
                raise DecompressionBombError(f"{what} of {self.label}: {exc}") from exc
            return []

    def walk(self, ops: list[Any], resources: Any, ctm: Matrix, depth: int) -> None:
        xobjects = resources.get("/XObject") if isinstance(resources, pikepdf.Dictionary) else None
        stack: list[Matrix] = []
        for operands, operator in ops:
            op = str(operator)
            if op in TEXT_OPERATORS:
                self.result.has_text = True
            elif op == "q" and len(stack) < _MAX_STACK:
                stack.append(ctm)
            elif op == "Q" and stack:
                ctm = stack.pop()
            elif op == "cm" and len(operands) == 6:
                try:
                    ctm = multiply(tuple(float(v) for v in operands), ctm)  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    continue
            elif op == "Do" and operands and isinstance(xobjects, pikepdf.Dictionary):
                self._draw(xobjects.get(str(operands[0])), resources, ctm, depth)

    def _draw(self, xobj: Any, resources: Any, ctm: Matrix, depth: int) -> None:
        if not isinstance(xobj, pikepdf.Stream):
            return
        subtype = xobj.get("/Subtype")
        if subtype == "/Image":
            self.result.placements.setdefault(xobj.objgen, ctm)
        elif subtype == "/Form" and depth < _MAX_FORM_DEPTH:
            matrix = xobj.get("/Matrix")
            form: Matrix = IDENTITY_MATRIX
            if isinstance(matrix, pikepdf.Array) and len(matrix) == 6:
                try:
                    form = tuple(float(v) for v in matrix)  # type: ignore[assignment]
                except (TypeError, ValueError):
                    form = IDENTITY_MATRIX
            own = xobj.get("/Resources")
            inner = self.ops([xobj], "a form XObject")
            self.walk(inner, own if own is not None else resources, multiply(form, ctm), depth + 1)


def read_page_content(
    page: pikepdf.Page, resources: Any, cap: int, label: str
) -> PageContent:
    """Parse the page's content (and the forms it draws) within ``cap`` decoded bytes in all.

    ``label`` names the page in a refusal ("page 3")."""
    reader = _Reader(cap, label)
    streams = _content_streams(page.obj)
    if streams:
        reader.walk(reader.ops(streams, "the content stream"), resources, IDENTITY_MATRIX, 0)
    return reader.result
