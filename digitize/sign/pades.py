"""The one ``DigitiserSigner`` implementation: a back-end's key material + PAdES (pyHanko).

PAdES baseline (R23/R24): SubFilter ETSI.CAdES.detached, ESS signing-certificate-v2,
SHA-256/384/512, RSA PKCS#1 v1.5 by default or PSS by settings, ECDSA keys as they come.
Levels: B-B; B-T adds an RFC 3161 signature time-stamp; B-LT adds certificates, OCSP
responses and CRLs to the DSS (fetched now, hard-fail); B-LTA adds a document time-stamp.
``level=None`` means B-T when a TSA URL is set, else B-B with a ``no_timestamp`` warning flag.
An unreachable TSA is retried, then ``TimestampUnavailableError`` (55): there is no silent
fallback; a profile that wants to sign offline chooses level B-B.

Times: the signing time (``/M``) and the CMS times are Vietnam time (+07:00), whatever the
process time zone.

A signer owns a private event loop thread (pyHanko is asynchronous, and aiohttp/CSC sessions
are bound to one loop). It is not picklable: open one per process and ``close()`` it.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Coroutine
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from digitize.aio import EventLoopThread
from digitize.errors import (
    DigitizeError,
    SignerConfigError,
    SigningError,
    TimestampUnavailableError,
)
from digitize.models import (
    DigitiserIdentity,
    Flag,
    PadesLevel,
    Severity,
    SignatureRecord,
    make_flag,
)
from digitize.settings import SigningSettings
from digitize.sign.backends import KeyMaterial
from digitize.sign.base import BBoxPt, DigitiserSigner, PreparedPdf
from digitize.sign.certs import has_revocation_pointers, identity_of, signature_algorithm_name
from digitize.sign.precheck import CertificateGuard, short
from digitize.sign.prepare import check_prepared, read_input, write_output
from digitize.sign.retry import RetryPolicy, is_transient, with_retries
from digitize.sign.stamp import (
    font_for_stamp,
    layout_flags,
    page_one_box,
    plan_stamp,
    resolve_font,
    shown_time_text,
    stamp_style,
)
from digitize.util import VN_TZ

T = TypeVar("T")


def choose_level(settings: SigningSettings) -> tuple[PadesLevel, list[Flag]]:
    level = settings.level
    if level is None:
        if settings.tsa_url:
            return PadesLevel.B_T, []
        return PadesLevel.B_B, [
            make_flag("no_timestamp", "no time-stamp service configured: signed at PAdES B-B (R23)",
                      Severity.WARNING)  # fmt: skip
        ]
    if level != PadesLevel.B_B and not settings.tsa_url:
        raise SignerConfigError(f"PAdES {level.value} needs tsa_url (a time-stamp service)")
    return level, []


def find_digitize_error(exc: BaseException) -> DigitizeError | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, DigitizeError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


@lru_cache(maxsize=1)
def tz_pdf_signer_class() -> type:
    """A PdfSigner whose clock reads Vietnam time (defined lazily: pyHanko imports are slow)."""
    from pyhanko.sign.signers import PdfSigner

    class TzPdfSigner(PdfSigner):
        """pyHanko reads the clock in the process time zone; we want +07:00 in /M and the CMS
        without touching the process-wide TZ."""

        def __init__(self, *args: Any, system_time: datetime, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._system_time = system_time

        def init_signing_session(self, pdf_out: Any, existing_fields_only: bool = False) -> Any:
            session = super().init_signing_session(pdf_out, existing_fields_only)
            session.system_time = self._system_time
            return session

    return TzPdfSigner


class PyHankoDigitiserSigner(DigitiserSigner):
    """A back-end's pyHanko ``Signer`` + the pre-check, PAdES and the visible note."""

    def __init__(
        self,
        settings: SigningSettings,
        material: KeyMaterial,
        loop: EventLoopThread,
        *,
        is_demo: bool,
        trust_roots: list[Any],
    ) -> None:
        self.settings = settings
        self._material = material
        self._loop = loop
        self._identity = identity_of(material.cert, is_demo=is_demo)
        self._retry = RetryPolicy(settings.network_retries, settings.network_retry_backoff_s)
        self._http: Any = None
        self._stamper: Any = None
        self._closed = False
        self._guard = CertificateGuard(material, trust_roots, settings, self._session, self._retry)
        self._font = resolve_font(settings.font_path)
        font_for_stamp(self._font)  # pay the one-off font cut at open, not on the first file
        self._level, self._level_flags = choose_level(settings)

    # -- public ---------------------------------------------------------------------------------
    @property
    def identity(self) -> DigitiserIdentity:
        return self._identity

    @property
    def level(self) -> PadesLevel:
        return self._level

    def sign_pdf(
        self,
        in_path: Path,
        out_path: Path,
        *,
        scan_time: datetime,
        text_boxes_pt: tuple[BBoxPt, ...] = (),
    ) -> SignatureRecord:
        return self._call(
            self._sign_pdf(Path(in_path), Path(out_path), scan_time, text_boxes_pt), in_path
        )

    def finish_prepared(
        self, prepared_pdf: Path, out_signed: Path, preparation: PreparedPdf
    ) -> SignatureRecord:
        return self._call(
            self._finish_prepared(Path(prepared_pdf), Path(out_signed), preparation), prepared_pdf
        )

    def sign_detached(self, data: bytes) -> bytes:
        return self._call(self._sign_detached(data), None)

    def check(self) -> DigitiserIdentity:
        self._call(self._check(), None)
        return self._identity

    def check_certificate(self) -> None:
        """Personal certificate, validity period, revocation: raise when signing must not happen."""
        self._call(self._guard.check(force=True), None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def cleanup() -> None:
            for fn in reversed(self._material.cleanup):
                try:
                    r = fn()
                    if asyncio.iscoroutine(r):
                        await r
                except Exception:  # noqa: BLE001, S110 - best effort on shutdown
                    pass
            if self._http is not None:
                await self._http.close()

        try:
            self._loop.run(cleanup())
        finally:
            self._loop.stop()

    def __enter__(self) -> PyHankoDigitiserSigner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T], path: Path | None) -> T:
        if self._closed:
            coro.close()
            raise SigningError("the signer is closed")
        try:
            return self._loop.run(coro)
        except DigitizeError:
            raise
        except Exception as e:  # noqa: BLE001 - map pyHanko's failures to our errors
            found = find_digitize_error(e)
            if found is not None:
                if found.path is None and path is not None:
                    found.path = str(path)
                    found.args = (found.one_line(),)
                raise found from None
            raise SigningError(f"signing failed: {type(e).__name__}: {short(e)}", path=path) from e

    def _session(self) -> Any:
        import aiohttp

        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.network_timeout_s)
            )
        return self._http

    def _timestamper(self) -> Any:
        """One time-stamp client per signer (it caches the size-estimate token), retrying
        transient failures, then ``TimestampUnavailableError``."""
        if self._stamper is not None:
            return self._stamper
        from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper

        url, policy = self.settings.tsa_url, self._retry
        assert url is not None

        class Stamper(HTTPTimeStamper):
            async def async_request_tsa_response(self, req: Any) -> Any:
                ask = super().async_request_tsa_response
                try:
                    return await with_retries(lambda: ask(req), policy, is_transient)
                except Exception as e:  # noqa: BLE001
                    raise TimestampUnavailableError(
                        f"time-stamp service unavailable ({type(e).__name__}: {short(e)})",
                        path=url,
                        hint="retry later, or choose level B-B in the profile to sign without a time-stamp",
                    ) from None

        self._stamper = Stamper(url, session=self._session(), timeout=self.settings.network_timeout_s)
        return self._stamper

    async def _check(self) -> None:
        await self._guard.check(force=True)
        if self._level != PadesLevel.B_B:
            from pyhanko.sign.timestamps.common_utils import dummy_digest

            digest = self.settings.digest_algorithm
            await self._timestamper().async_timestamp(dummy_digest(digest), digest)

    def _flags(self) -> list[Flag]:
        flags = list(self._level_flags)
        if (
            self.settings.check_revocation
            and not has_revocation_pointers(self._material.cert)
            and not self._identity.is_demo
        ):
            flags.append(make_flag(
                "revocation_not_checkable",
                "the certificate names no OCSP responder or CRL: revocation not checked",
                Severity.INFO,
            ))  # fmt: skip
        return flags

    # -- signing --------------------------------------------------------------------------------
    async def _sign_writer(
        self, writer: Any, style: Any, field: str, field_box: BBoxPt | None, signed_at: datetime
    ) -> bytes:
        """Sign ``writer``'s document in ``field``: a new field at ``field_box`` on page 1
        drawn with ``style``, or (``field_box`` None) the existing empty field as it is."""
        from pyhanko.sign import fields, signers

        level = self._level
        lt = level in (PadesLevel.B_LT, PadesLevel.B_LTA)
        meta = signers.PdfSignatureMetadata(
            field_name=field,
            md_algorithm=self.settings.digest_algorithm,
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=self.settings.reason,
            location=self.settings.location,
            name=self._identity.full_name,
            embed_validation_info=lt,
            use_pades_lta=level == PadesLevel.B_LTA,
            validation_context=(
                self._guard.validation_context(
                    fetch=True, hard_fail=has_revocation_pointers(self._material.cert)
                )
                if lt
                else None
            ),
            signer_key_usage={"non_repudiation"},
        )
        new_field = (
            fields.SigFieldSpec(field, on_page=0, box=field_box)  # type: ignore[arg-type]
            if field_box is not None
            else None
        )
        pdf_signer = tz_pdf_signer_class()(
            meta,
            signer=self._material.signer,
            timestamper=self._timestamper() if level != PadesLevel.B_B else None,
            stamp_style=style,
            new_field_spec=new_field,
            system_time=signed_at,
        )
        out = io.BytesIO()
        await pdf_signer.async_sign_pdf(writer, existing_fields_only=new_field is None, output=out)
        return out.getvalue()

    def _record(self, signed: bytes, field: str, t0: float, **fields: Any) -> SignatureRecord:
        from pyhanko.pdf_utils.reader import PdfFileReader

        reader = PdfFileReader(io.BytesIO(signed), strict=False)
        embedded = next(s for s in reader.embedded_regular_signatures if s.field_name == field)
        tsa_time = _signature_timestamp_time(embedded) if self._level != PadesLevel.B_B else None
        mechanism = self._material.signer.get_signature_mechanism_for_digest(
            self.settings.digest_algorithm
        )
        return SignatureRecord(
            field_name=field,
            signer=self._identity,
            pades_level=self._level,
            digest_algorithm=self.settings.digest_algorithm,
            signature_algorithm=signature_algorithm_name(mechanism),
            tsa_time=tsa_time.astimezone(VN_TZ) if tsa_time else None,
            revocation_evidence=self._guard.evidence,
            seconds=round(time.perf_counter() - t0, 3),
            **fields,
        )

    async def _sign_pdf(
        self, in_path: Path, out_path: Path, scan_time: datetime, text_boxes_pt: tuple[BBoxPt, ...]
    ) -> SignatureRecord:
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

        t0 = time.perf_counter()
        await self._guard.check()
        if scan_time.tzinfo is None:
            raise SigningError("scan_time must be timezone-aware (R21)", path=in_path)
        shown = scan_time.astimezone(VN_TZ).replace(microsecond=0)
        writer = IncrementalPdfFileWriter(io.BytesIO(read_input(in_path)), strict=False)
        page_box, rotate = page_one_box(writer.prev)
        layout = plan_stamp(
            page_box,
            self._identity.full_name,
            shown_time_text(shown, self.settings.time_format),
            self._font,
            text_boxes_pt,
        )
        flags = self._flags() + layout_flags(layout, rotate)
        field, signed_at = self.settings.field_name, datetime.now(VN_TZ).replace(microsecond=0)
        style = stamp_style(layout, self._font)
        signed = await self._sign_writer(writer, style, field, layout.box, signed_at)
        write_output(out_path, signed)
        return self._record(
            signed, field, t0, signed_at=signed_at, scan_time_shown=shown, appearance_box_pt=layout.box,
            appearance_shrunk=layout.shrunk, flags=tuple(flags),
        )  # fmt: skip

    async def _finish_prepared(
        self, prepared_pdf: Path, out_signed: Path, preparation: PreparedPdf
    ) -> SignatureRecord:
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.stamp import NoOpStampStyle

        t0 = time.perf_counter()
        data = read_input(prepared_pdf)
        check_prepared(data, prepared_pdf, preparation, self._identity)
        await self._guard.check()
        field, signed_at = preparation.field_name, datetime.now(VN_TZ).replace(microsecond=0)
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        signed = await self._sign_writer(writer, NoOpStampStyle(), field, None, signed_at)
        write_output(out_signed, signed)
        return self._record(
            signed, field, t0, signed_at=signed_at, scan_time_shown=preparation.scan_time_shown,
            appearance_box_pt=preparation.appearance_box_pt,
            appearance_shrunk=preparation.appearance_shrunk,
            flags=tuple(self._flags() + list(preparation.flags)),
        )  # fmt: skip

    async def _sign_detached(self, data: bytes) -> bytes:
        from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

        await self._guard.check()
        content_info = await self._material.signer.async_sign_general_data(
            data,
            self.settings.digest_algorithm,
            detached=True,
            use_cades=True,
            timestamper=self._timestamper() if self._level != PadesLevel.B_B else None,
            signed_attr_settings=PdfCMSSignedAttributes(
                signing_time=datetime.now(VN_TZ).replace(microsecond=0)
            ),
        )
        return bytes(content_info.dump())


def _signature_timestamp_time(embedded: Any) -> datetime | None:
    from pyhanko.sign.validation.generic_cms import extract_tst_data_iter

    for tst in extract_tst_data_iter(embedded.signer_info, signed=False):
        return tst["encap_content_info"]["content"].parsed["gen_time"].native
    return None
