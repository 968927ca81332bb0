"""The signer interface every back-end is used through (R27), and the record of a prepared
(not yet signed) document for two-phase signing.

A ``DigitiserSigner`` is opened once (``digitize.sign.open_signer``): the key source is logged
into and the certificate checked then, so one PIN entry serves every component of a dossier
and its manifest. It is not picklable and not shared between processes; ``close()`` it.

Two-phase signing (a hub without the key prepares, the station with the key signs):

1. ``digitize.sign.prepare_pdf(...)`` — on any machine, with only the digitiser's certificate:
   adds the signature field on page 1 with the visible note drawn (R18–R20) as an incremental
   update. The file is PDF/A and carries **no** signature. Returns a ``PreparedPdf``.
2. ``signer.finish_prepared(prepared_pdf, out_signed, preparation)`` — at the station: checks
   the file is the one prepared (hash), for this digitiser (certificate), with its field still
   empty and where the note says, then signs that field (PAdES, same level rules as
   ``sign_pdf``) without redrawing the note.

Wrappers (a lock, a queue) SHALL forward every method, including ``finish_prepared`` and
``check``; the defaults below exist only so that a wrapper written before them still works.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from pathlib import Path

from digitize.errors import SigningError
from digitize.models import DigitiserIdentity, Flag, FrozenModel, SignatureRecord

BBoxPt = tuple[float, float, float, float]  # x0, y0, x1, y1 in PDF points (page space)


class PreparedPdf(FrozenModel):
    """What ``prepare_pdf`` made: travels with the prepared file (JSON) to the station."""

    field_name: str
    signer_name: str  # the name drawn in the note (certificate CN, NFC)
    signer_cert_sha256: str  # the certificate the note was drawn for
    scan_time_shown: datetime  # +07:00, to the second; the note shows it per ``time_format``
    note_lines: tuple[str, ...]
    appearance_box_pt: BBoxPt
    font_size: float
    appearance_shrunk: bool = False
    prepared_sha256: str  # of the prepared file: the station signs exactly these bytes
    prepared_at: datetime
    flags: tuple[Flag, ...] = ()


class DigitiserSigner(ABC):
    """One signer back-end (file, token, remote): the same interface for every one (R27)."""

    @property
    @abstractmethod
    def identity(self) -> DigitiserIdentity: ...

    @abstractmethod
    def sign_pdf(
        self,
        in_path: Path,
        out_path: Path,
        *,
        scan_time: datetime,
        text_boxes_pt: tuple[BBoxPt, ...] = (),
    ) -> SignatureRecord:
        """PAdES-sign ``in_path`` into ``out_path`` with the visible note top-left of page 1."""

    @abstractmethod
    def sign_detached(self, data: bytes) -> bytes:
        """Detached CAdES (DER CMS SignedData) over ``data`` (the manifest)."""

    def finish_prepared(
        self, prepared_pdf: Path, out_signed: Path, preparation: PreparedPdf
    ) -> SignatureRecord:
        """Sign the field ``prepare_pdf`` reserved in ``prepared_pdf`` into ``out_signed``."""
        raise SigningError(
            f"the {type(self).__name__} signer cannot finish prepared documents",
            path=prepared_pdf,
        )

    def check(self) -> DigitiserIdentity:
        """Re-run the start-up checks now (certificate, revocation, time-stamp service) and
        return the identity; raises the typed error a station acts on (55/57: retry later)."""
        return self.identity

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release tokens/sessions."""
