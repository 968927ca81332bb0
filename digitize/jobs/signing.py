"""How a station signs today: one signer, opened once, one signature at a time.

A PKCS#11 token or a remote CSC credential is one session; interleaving two signatures on it
is not something every back-end supports, and signing is not the bottleneck. So the dossiers
in flight share one signer behind a lock (``SerialSigner``), handed out by a
``SerialSignerHandle`` (the job layer's ``SignerHandle``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from digitize.errors import BadPinError
from digitize.jobs.models import DossierJob
from digitize.models import DigitiserIdentity, SignatureRecord
from digitize.sign import BBoxPt, DigitiserSigner, PreparedPdf


class SerialSigner(DigitiserSigner):
    """One signer shared by dossier threads: every call goes through one lock."""

    def __init__(self, inner: DigitiserSigner) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    @property
    def identity(self) -> DigitiserIdentity:
        return self._inner.identity

    def sign_pdf(
        self,
        in_path: Path,
        out_path: Path,
        *,
        scan_time: datetime,
        text_boxes_pt: tuple[BBoxPt, ...] = (),
    ) -> SignatureRecord:
        with self._lock:
            return self._inner.sign_pdf(
                in_path, out_path, scan_time=scan_time, text_boxes_pt=text_boxes_pt
            )

    def sign_detached(self, data: bytes) -> bytes:
        with self._lock:
            return self._inner.sign_detached(data)

    def finish_prepared(
        self, prepared_pdf: Path, out_signed: Path, preparation: PreparedPdf
    ) -> SignatureRecord:
        with self._lock:
            return self._inner.finish_prepared(prepared_pdf, out_signed, preparation)

    def check(self) -> DigitiserIdentity:
        with self._lock:
            return self._inner.check()

    def close(self) -> None:
        self._inner.close()


class SerialSignerHandle:
    """The station's one signer, opened on first use (an idle watcher holds no token session)
    or on ``open()``, shared through a lock, closed by ``close()`` when this handle opened it.

    A refused PIN is remembered and raised again without asking the token a second time:
    tokens lock after a few wrong PINs, so one process tries a PIN once. Other failures to
    open (token unplugged, service down) are tried again on the next use.
    """

    def __init__(
        self,
        opener: Callable[[], DigitiserSigner] | None = None,
        *,
        signer: DigitiserSigner | None = None,
    ) -> None:
        if (opener is None) == (signer is None):
            raise ValueError("give either an opener or an open signer")
        self._opener = opener
        self._owned = signer is None
        self._signer = SerialSigner(signer) if signer is not None else None
        self._refused: BadPinError | None = None
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self._signer is not None

    def open(self) -> DigitiserSigner:
        """The shared signer, opening it now if needed (raises the signer's errors)."""
        with self._lock:
            if self._signer is None:
                if self._refused is not None:
                    raise self._refused
                assert self._opener is not None
                try:
                    self._signer = SerialSigner(self._opener())
                except BadPinError as exc:
                    self._refused = exc
                    raise
            return self._signer

    @contextmanager
    def lease(self, job: DossierJob) -> Iterator[DigitiserSigner]:
        yield self.open()

    def close(self) -> None:
        """Close the signer if this handle opened it (a lent signer is its owner's to close)."""
        with self._lock:
            if self._signer is not None and self._owned:
                self._signer.close()
                self._signer = None


__all__ = ["SerialSigner", "SerialSignerHandle"]
