"""Validation of PDF signatures and detached manifest signatures (R23–R26).

For every signature in a PDF, one ``Check`` that is ok only when all of these hold:

- integrity: the CMS signature is cryptographically valid over its byte range (exit code
  VERIFY_SIGNATURE otherwise);
- coverage: the signature covers the whole file, or the only later revisions are the ones
  PAdES allows (DSS and document timestamps, judged by pyHanko's difference analysis); page
  content, annotations or other objects changed after signing → VERIFY_SIGNATURE;
- trust: the signer chains to one of ``trust_roots`` at the best known signing time (signature
  timestamp, else the claimed time) → VERIFY_TRUST;
- revocation: not revoked at that time, judged from the revocation data embedded in the file
  (DSS, CMS) when ``offline`` (the default), or also fetched when ``offline=False``; when no
  revocation data can be had (B-B/B-T offline) the check stays ok and says "not verified";
- timestamp: a signature timestamp, when present, is intact and its TSA trusted.

Document timestamps (B-LTA) get one ``Check`` each. ``details`` carry the machine-readable
facts (signer, times, level B-B/B-T/B-LT/B-LTA, coverage, modification level, revocation).
Messages are Vietnamese by default (R26) and English with ``lang="en"``.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from digitize.errors import ExitCode
from digitize.models import Check

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

_MESSAGES: dict[str, dict[str, str]] = {
    "ok": {
        "vi": "Chữ ký của {signer} hợp lệ ({level}, ký lúc {time}){extra}",
        "en": "Signature of {signer} is valid ({level}, signed at {time}){extra}",
    },
    "revocation_unverified": {
        "vi": "; chưa kiểm tra được tình trạng thu hồi (tệp không chứa dữ liệu OCSP/CRL)",
        "en": "; revocation status not verified (no OCSP/CRL data in the file)",
    },
    "unreadable": {
        "vi": "Không đọc được tệp PDF để kiểm tra chữ ký: {error}",
        "en": "Cannot read the PDF to check its signatures: {error}",
    },
    "no_signature": {
        "vi": "Tệp không có chữ ký số",
        "en": "The file has no digital signature",
    },
    "broken": {
        "vi": "Chữ ký của {signer} không hợp lệ: nội dung đã bị thay đổi sau khi ký",
        "en": "Signature of {signer} is invalid: the content was changed after signing",
    },
    "modified": {
        "vi": "Tệp đã bị sửa đổi sau khi {signer} ký (mức sửa đổi: {mod})",
        "en": "The file was modified after {signer} signed it (modification level: {mod})",
    },
    "not_covered": {
        "vi": "Chữ ký của {signer} không bao trùm toàn bộ tệp",
        "en": "Signature of {signer} does not cover the whole file",
    },
    "revoked": {
        "vi": "Chứng thư số của {signer} đã bị thu hồi ({when})",
        "en": "The certificate of {signer} was revoked ({when})",
    },
    "untrusted": {
        "vi": "Chứng thư số của {signer} không dẫn tới chứng thư gốc tin cậy ({why})",
        "en": "The certificate of {signer} does not chain to a trusted root ({why})",
    },
    "timestamp_bad": {
        "vi": "Dấu thời gian của chữ ký {signer} không hợp lệ hoặc không tin cậy",
        "en": "The signature timestamp of {signer} is invalid or untrusted",
    },
    "error": {
        "vi": "Không kiểm tra được chữ ký {field}: {error}",
        "en": "Could not validate signature {field}: {error}",
    },
    "doc_ts_ok": {
        "vi": "Dấu thời gian tài liệu hợp lệ (lúc {time}, {tsa})",
        "en": "Document timestamp is valid (at {time}, {tsa})",
    },
    "doc_ts_bad": {
        "vi": "Dấu thời gian tài liệu không hợp lệ ({why})",
        "en": "Document timestamp is invalid ({why})",
    },
    "detached_ok": {
        "vi": "Chữ ký trên bản kê (manifest) của {signer} hợp lệ (ký lúc {time}){extra}",
        "en": "Manifest signature of {signer} is valid (signed at {time}){extra}",
    },
    "detached_bad": {
        "vi": "Chữ ký trên bản kê (manifest) không hợp lệ: {why}",
        "en": "Manifest signature is invalid: {why}",
    },
    "detached_untrusted": {
        "vi": "Chứng thư ký bản kê (manifest) của {signer} không tin cậy ({why})",
        "en": "The manifest signer certificate of {signer} is not trusted ({why})",
    },
    "detached_unreadable": {
        "vi": "Chữ ký bản kê (manifest) không đọc được (không phải CMS/DER): {error}",
        "en": "Manifest signature unreadable (not CMS/DER): {error}",
    },
}


def _msg(key: str, lang: str, **kw: object) -> str:
    table = _MESSAGES[key]
    return table.get(lang, table["en"]).format(**kw)


@contextmanager
def _quiet_pyhanko() -> Iterator[None]:
    # pyHanko logs every expected failure (tampered file, untrusted root) with a traceback
    loggers = [logging.getLogger(n) for n in ("pyhanko", "pyhanko_certvalidator")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, old, strict=True):
            lg.setLevel(lvl)


def _load_roots(paths: tuple[Path, ...]) -> list[Any]:
    from asn1crypto import pem, x509

    roots: list[Any] = []
    for p in paths:
        data = Path(p).read_bytes()
        if pem.detect(data):
            roots.extend(x509.Certificate.load(d) for _, _, d in pem.unarmor(data, multiple=True))
        else:
            roots.append(x509.Certificate.load(data))
    return roots


def _cn(cert: Any) -> str:
    cn = cert.subject.native.get("common_name", "")
    return str(cn[0] if isinstance(cn, list) else cn) or cert.subject.human_friendly


def _indic_name(indic: object) -> str:
    return str(getattr(indic, "name", indic))


def _fmt_time(t: datetime | None) -> str:
    return t.astimezone(VN_TZ).isoformat() if t else "?"


class _Material:
    """Certificates and revocation data found in the file (DSS)."""

    def __init__(self, reader: Any) -> None:
        from pyhanko.sign.validation.dss import DocumentSecurityStore
        from pyhanko.sign.validation.errors import NoDSSFoundError

        self.certs: list[Any] = []
        self.ocsps: list[Any] = []
        self.crls: list[Any] = []
        self.has_dss = False
        try:
            dss = DocumentSecurityStore.read_dss(reader)
        except NoDSSFoundError:
            return
        self.has_dss = True
        self.certs = list(dss.load_certs())
        self.ocsps = [o.get_object().data for o in dss.ocsps]
        self.crls = [c.get_object().data for c in dss.crls]

    @classmethod
    def extra(cls, base: _Material | None, certs: list[Any]) -> _Material:
        mat = cls.__new__(cls)
        mat.certs = [*(base.certs if base else []), *certs]
        mat.ocsps = list(base.ocsps) if base else []
        mat.crls = list(base.crls) if base else []
        mat.has_dss = base.has_dss if base else False
        return mat


def _vc(
    roots: list[Any], mat: _Material, *, offline: bool, hard_fail: bool, moment: datetime | None
) -> Any:
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(
        trust_roots=roots,
        other_certs=mat.certs,
        ocsps=mat.ocsps,
        crls=mat.crls,
        allow_fetching=not offline,
        revocation_mode="hard-fail" if hard_fail else "soft-fail",
        # OCSP/CRL fetched right after signing (B-LT) count as evidence for the signing time
        retroactive_revinfo=True,
        moment=moment,
    )


def _dss_in_revision(reader: Any, revision: int) -> bool:
    try:
        return "/DSS" in reader.get_historical_root(revision)
    except Exception:  # noqa: BLE001 - a revision we cannot read has no usable DSS
        return False


def _signature_ts_time(sig: Any) -> datetime | None:
    from pyhanko.sign.validation.generic_cms import extract_tst_data_iter

    for tst in extract_tst_data_iter(sig.signer_info, signed=False):
        return tst["encap_content_info"]["content"].parsed["gen_time"].native
    return None


def pades_level(reader: Any, sig: Any, doc_timestamps: list[Any], mat: _Material) -> str | None:
    """Structural PAdES baseline level (ETSI EN 319 142-1) reached by ``sig``, or None."""
    subfilter = str(sig.sig_object.get("/SubFilter"))
    attrs = {a["type"].native for a in sig.signer_info["signed_attrs"]}
    if subfilter != "/ETSI.CAdES.detached" or not attrs & {
        "signing_certificate_v2",
        "signing_certificate",
    }:
        return None
    later_ts = [t for t in doc_timestamps if t.signed_revision > sig.signed_revision]
    if _signature_ts_time(sig) is None and not later_ts:
        return "B-B"
    if not (mat.has_dss and (mat.ocsps or mat.crls)):
        return "B-T"
    if any(_dss_in_revision(reader, t.signed_revision) for t in later_ts):
        return "B-LTA"
    return "B-LT"


async def _check_signature(
    reader: Any,
    sig: Any,
    doc_ts: list[Any],
    later_sigs: bool,
    mat: _Material,
    roots: list[Any],
    name: str,
    offline: bool,
    lang: str,
) -> Check:
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    signer = _cn(sig.signer_cert)
    ts_time = _signature_ts_time(sig)
    claimed = sig.self_reported_timestamp
    moment = ts_time or claimed
    level = pades_level(reader, sig, doc_ts, mat)
    details: dict[str, str] = {
        "field": sig.field_name or "",
        "signer": signer,
        "signer_subject": sig.signer_cert.subject.human_friendly,
        "signing_time_claimed": _fmt_time(claimed),
        "signature_timestamp": _fmt_time(ts_time) if ts_time else "",
        "pades_level": level or "not PAdES baseline",
        "validated_at": _fmt_time(moment),
        "offline": str(offline).lower(),
    }

    def fail(key: str, code: ExitCode, **kw: object) -> Check:
        return Check(
            name=name,
            ok=False,
            message=_msg(key, lang, signer=signer, **kw),
            exit_code=int(code),
            details=details,
        )

    # Certomancer-style TSAs put only their own certificate in the token: let the signature's
    # certificates (the CA chain) help build the TSA's path too.
    cms_certs = [c.chosen for c in sig.signed_data["certificates"] or []]
    ts_mat = _Material.extra(mat, cms_certs)

    async def run(hard_fail: bool) -> Any:
        vc = _vc(roots, mat, offline=offline, hard_fail=hard_fail, moment=moment)
        ts_vc = _vc(roots, ts_mat, offline=offline, hard_fail=False, moment=None)
        return await async_validate_pdf_signature(
            sig, signer_validation_context=vc, ts_validation_context=ts_vc
        )

    try:
        status = await run(hard_fail=True)
    except Exception as e:  # noqa: BLE001 - a broken CMS blob is an integrity failure
        details["error"] = f"{type(e).__name__}: {e}"[:300]
        return fail(
            "error", ExitCode.VERIFY_SIGNATURE, field=sig.field_name, error=type(e).__name__
        )
    details["coverage"] = status.coverage.name if status.coverage else ""
    details["modification_level"] = (
        status.modification_level.name if status.modification_level is not None else ""
    )
    if not (status.intact and status.valid):
        return fail("broken", ExitCode.VERIFY_SIGNATURE)
    if status.coverage == SignatureCoverageLevel.ENTIRE_FILE:
        pass
    elif status.coverage == SignatureCoverageLevel.ENTIRE_REVISION:
        mod = status.modification_level
        allowed = mod is not None and (
            mod <= ModificationLevel.LTA_UPDATES
            or (mod == ModificationLevel.FORM_FILLING and later_sigs and status.docmdp_ok)
        )
        if not allowed:
            return fail("modified", ExitCode.VERIFY_SIGNATURE, mod=details["modification_level"])
    else:
        return fail("not_covered", ExitCode.VERIFY_SIGNATURE)
    revocation = "good"
    if status.revoked:
        rd = status.revocation_details
        details["revocation"] = "revoked"
        return fail("revoked", ExitCode.VERIFY_TRUST, when=_fmt_time(rd.revocation_date))
    if not status.trusted:
        try:
            soft = await run(hard_fail=False)
        except Exception:  # noqa: BLE001
            soft = None
        if soft is not None and soft.revoked:
            details["revocation"] = "revoked"
            return fail(
                "revoked",
                ExitCode.VERIFY_TRUST,
                when=_fmt_time(soft.revocation_details.revocation_date),
            )
        if soft is None or not soft.trusted:
            indic = (soft or status).trust_problem_indic
            details["trust_problem"] = _indic_name(indic) if indic else "no path"
            return fail("untrusted", ExitCode.VERIFY_TRUST, why=details["trust_problem"])
        status = soft
        revocation = "not verified"
    details["revocation"] = revocation
    tsv = status.timestamp_validity
    if tsv is not None and not (tsv.intact and tsv.valid and tsv.trusted):
        details["timestamp_problem"] = (
            _indic_name(tsv.trust_problem_indic) if tsv.trust_problem_indic else ""
        )
        code = (
            ExitCode.VERIFY_SIGNATURE if not (tsv.intact and tsv.valid) else ExitCode.VERIFY_TRUST
        )
        return fail("timestamp_bad", code)
    extra = _msg("revocation_unverified", lang) if revocation != "good" else ""
    return Check(
        name=name,
        ok=True,
        message=_msg(
            "ok", lang, signer=signer, level=level or "?", time=_fmt_time(moment), extra=extra
        ),
        details=details,
    )


async def _check_doc_timestamp(
    ts: Any, mat: _Material, roots: list[Any], name: str, offline: bool, lang: str
) -> Check:
    from pyhanko.sign.validation import async_validate_pdf_timestamp

    tst = ts.signed_data["encap_content_info"]["content"].parsed
    gen_time = tst["gen_time"].native
    tsa = _cn(ts.signer_cert)
    details = {"field": ts.field_name or "", "time": _fmt_time(gen_time), "tsa": tsa}
    try:
        # the newest document timestamp's own revocation data can only come later: soft-fail
        status = await async_validate_pdf_timestamp(
            ts, validation_context=_vc(roots, mat, offline=offline, hard_fail=False, moment=None)
        )
    except Exception as e:  # noqa: BLE001
        details["error"] = f"{type(e).__name__}: {e}"[:300]
        return Check(
            name=name,
            ok=False,
            message=_msg("doc_ts_bad", lang, why=type(e).__name__),
            exit_code=int(ExitCode.VERIFY_SIGNATURE),
            details=details,
        )
    if not (status.intact and status.valid):
        return Check(name=name, ok=False, message=_msg("doc_ts_bad", lang, why="integrity"),
                     exit_code=int(ExitCode.VERIFY_SIGNATURE), details=details)  # fmt: skip
    if not status.trusted:
        why = _indic_name(status.trust_problem_indic) if status.trust_problem_indic else "untrusted"
        return Check(name=name, ok=False, message=_msg("doc_ts_bad", lang, why=why),
                     exit_code=int(ExitCode.VERIFY_TRUST), details=details)  # fmt: skip
    return Check(
        name=name,
        ok=True,
        message=_msg("doc_ts_ok", lang, time=details["time"], tsa=tsa),
        details=details,
    )


async def _verify_pdf(path: Path, roots: list[Any], offline: bool, lang: str) -> list[Check]:
    from pyhanko.pdf_utils.reader import PdfFileReader

    base = f"signature:{path.name}"
    try:
        reader = PdfFileReader(io.BytesIO(path.read_bytes()), strict=False)
        sigs = list(reader.embedded_signatures)
    except Exception as e:  # noqa: BLE001 - unreadable is a verification failure, not a crash
        return [
            Check(name=base, ok=False, message=_msg("unreadable", lang, error=type(e).__name__),
                  exit_code=int(ExitCode.VERIFY_SIGNATURE), details={"error": str(e)[:300]})
        ]  # fmt: skip
    if not sigs:
        return [Check(name=base, ok=False, message=_msg("no_signature", lang),
                      exit_code=int(ExitCode.VERIFY_SIGNATURE))]  # fmt: skip
    mat = _Material(reader)
    doc_ts = [s for s in sigs if s.sig_object_type == "/DocTimeStamp"]
    regular = [s for s in sigs if s.sig_object_type != "/DocTimeStamp"]
    checks = []
    for i, sig in enumerate(regular):
        later = any(o.signed_revision > sig.signed_revision for o in regular)
        name = base if len(regular) == 1 else f"{base}#{i + 1}"
        checks.append(
            await _check_signature(reader, sig, doc_ts, later, mat, roots, name, offline, lang)
        )
    for i, ts in enumerate(doc_ts):
        checks.append(
            await _check_doc_timestamp(
                ts, mat, roots, f"timestamp:{path.name}#{i + 1}", offline, lang
            )
        )
    return checks


def _run(coro: Any) -> Any:
    # our own loop in a worker thread when the caller already runs one (async pipelines)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, coro).result()


def verify_pdf_signatures(
    path: Path, trust_roots: tuple[Path, ...], *, offline: bool = True, lang: str = "vi"
) -> list[Check]:
    """One Check per signature: integrity, whole-file coverage, chain, revocation, timestamp, level."""
    roots = _load_roots(tuple(trust_roots))
    with _quiet_pyhanko():
        return _run(_verify_pdf(Path(path), roots, offline, lang))


async def _verify_detached(data: bytes, signature: bytes, roots: list[Any], lang: str) -> Check:
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms

    name = "manifest_signature"
    try:
        content_info = cms.ContentInfo.load(signature)
        signed_data = content_info["content"]
        signer_info = signed_data["signer_infos"][0]
        _ = signer_info["signed_attrs"].native  # force parsing: garbage fails here
    except Exception as e:  # noqa: BLE001
        return Check(name=name, ok=False, message=_msg("detached_unreadable", lang, error=type(e).__name__),
                     exit_code=int(ExitCode.VERIFY_SIGNATURE))  # fmt: skip
    mat = _Material.extra(None, [c.chosen for c in signed_data["certificates"] or []])
    try:
        status = await async_validate_detached_cms(
            data, signed_data,
            signer_validation_context=_vc(roots, mat, offline=True, hard_fail=False, moment=None),
            ts_validation_context=_vc(roots, mat, offline=True, hard_fail=False, moment=None),
        )  # fmt: skip
    except Exception as e:  # noqa: BLE001
        return Check(name=name, ok=False, message=_msg("detached_bad", lang, why=type(e).__name__),
                     exit_code=int(ExitCode.VERIFY_SIGNATURE), details={"error": str(e)[:300]})  # fmt: skip
    signer = _cn(status.signing_cert)
    details = {"signer": signer, "signing_time": _fmt_time(status.signer_reported_dt)}
    if not (status.intact and status.valid):
        why = "nội dung không khớp" if lang == "vi" else "content does not match"
        return Check(name=name, ok=False, message=_msg("detached_bad", lang, why=why),
                     exit_code=int(ExitCode.VERIFY_SIGNATURE), details=details)  # fmt: skip
    if not status.trusted or status.revoked:
        why = _indic_name(status.trust_problem_indic) if status.trust_problem_indic else "no path"
        return Check(name=name, ok=False, message=_msg("detached_untrusted", lang, signer=signer, why=why),
                     exit_code=int(ExitCode.VERIFY_TRUST), details=details)  # fmt: skip
    tsv = status.timestamp_validity
    if tsv is not None:
        details["timestamp"] = _fmt_time(tsv.timestamp)
        if not (tsv.intact and tsv.valid and tsv.trusted):
            return Check(name=name, ok=False, message=_msg("timestamp_bad", lang, signer=signer),
                         exit_code=int(ExitCode.VERIFY_TRUST), details=details)  # fmt: skip
    return Check(
        name=name,
        ok=True,
        message=_msg("detached_ok", lang, signer=signer, time=details["signing_time"], extra=""),
        details=details,
    )


def verify_detached_signature(
    data: bytes, signature: bytes, trust_roots: tuple[Path, ...], *, lang: str = "vi"
) -> Check:
    """Check a detached CMS signature over ``data`` (the manifest)."""
    roots = _load_roots(tuple(trust_roots))
    with _quiet_pyhanko():
        return _run(_verify_detached(data, signature, roots, lang))
