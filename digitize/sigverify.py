"""Validation of PDF signatures and detached manifest signatures (R23–R26): the facts.

This module says what a signature proves against the trust roots it is given; the policy of a
bundle (who must have signed, whether the DEMO identity is acceptable, whether revocation must
be proven) lives in ``digitize.verify``.

For every signature in a PDF, one ``Check`` that is ok only when all of these hold:

- integrity: the CMS signature is cryptographically valid over its byte range (exit code
  VERIFY_SIGNATURE otherwise);
- coverage: the signature covers the whole file, or the only later revisions are the ones
  PAdES allows for long-term validation (DSS and document timestamps, judged by pyHanko's
  difference analysis); anything else changed after signing, form filling included →
  VERIFY_SIGNATURE;
- trust: the signer chains to one of ``trust_roots`` (key usage non-repudiation) at the time of
  its signature timestamp when it has one, otherwise at the current time (``now``): the time a
  signer writes into its own signature is not evidence, so a backdated signature made with an
  expired certificate fails → VERIFY_TRUST;
- revocation: ``good`` when revocation data (embedded in the file, passed in as
  ``revocation_evidence`` — the manifest's R25 data — or fetched with ``offline=False``) shows
  the certificate unrevoked at that time; ``not verified`` when no such data could be had or
  the certificate names no OCSP responder or CRL (the check stays ok: the caller decides what
  that is worth); ``revoked`` → VERIFY_TRUST;
- timestamp: a signature timestamp, when present, is intact and its TSA trusted.

Document timestamps (B-LTA) get one ``Check`` each. ``details`` carry the machine-readable
facts: signer, ``signer_cert_sha256``, ``signer_serial``, ``personal_problem`` (R17, empty for a
personal certificate), ``demo`` (``true`` when the chain leads to the DEMO root, judged from the
certificates, never from what a manifest says), times, level B-B/B-T/B-LT/B-LTA, coverage,
modification level, ``revocation``. Messages are Vietnamese by default (R26), English with
``lang="en"``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import logging
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from digitize.errors import ExitCode
from digitize.models import Check, RevocationEvidence
from digitize.util import VN_TZ

REVOCATION_GOOD = "good"
REVOCATION_NOT_VERIFIED = "not verified"
REVOCATION_REVOKED = "revoked"
MAX_EVIDENCE_BYTES = 16 * 1024 * 1024  # one OCSP response or CRL; national CRLs stay below

_MESSAGES: dict[str, dict[str, str]] = {
    "ok": {
        "vi": "Chữ ký của {signer} hợp lệ ({level}, ký lúc {time}){extra}",
        "en": "Signature of {signer} is valid ({level}, signed at {time}){extra}",
    },
    "revocation_unverified": {
        "vi": "; CHƯA kiểm tra được tình trạng thu hồi (không có dữ liệu OCSP/CRL)",
        "en": "; revocation status NOT verified (no OCSP/CRL data)",
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
        "vi": "Chứng thư số của {signer} không hợp lệ tại thời điểm {at} ({why})",
        "en": "The certificate of {signer} is not valid at {at} ({why})",
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
        "vi": "Chứng thư ký bản kê (manifest) của {signer} không hợp lệ tại thời điểm {at} ({why})",
        "en": "The manifest signer certificate of {signer} is not valid at {at} ({why})",
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


def load_trust_roots(paths: Iterable[Path]) -> list[Any]:
    """Every certificate of the PEM (one or several) or DER files, as asn1crypto objects.

    Raises ``OSError`` or ``ValueError`` for a file that cannot be read as certificates.
    """
    from asn1crypto import pem, x509

    roots: list[Any] = []
    for p in paths:
        data = Path(p).read_bytes()
        if pem.detect(data):
            roots.extend(x509.Certificate.load(d) for _, _, d in pem.unarmor(data, multiple=True))
        else:
            roots.append(x509.Certificate.load(data))
    for root in roots:
        _ = root.subject.native  # force parsing: a garbage file fails here, not mid-validation
    return roots


def _cn(cert: Any) -> str:
    cn = cert.subject.native.get("common_name", "")
    text = str(cn[0] if isinstance(cn, list) and cn else cn) or cert.subject.human_friendly
    return unicodedata.normalize("NFC", text).strip()


def _indic_name(indic: object) -> str:
    return str(getattr(indic, "name", indic))


def _fmt_time(t: datetime | None) -> str:
    return t.astimezone(VN_TZ).isoformat() if t else "?"


def _sha256(cert: Any) -> str:
    return hashlib.sha256(cert.dump()).hexdigest()


def _declares_revocation(cert: Any) -> bool:
    return bool(cert.ocsp_urls or cert.crl_distribution_points)


# --- the DEMO identity, recognised from certificates -------------------------------------------
def local_demo_root() -> Path:
    """Where this machine's demo root certificate lives (it may not exist)."""
    from digitize.sign import demo_identity_dir

    return demo_identity_dir() / "root.pem"


def _demo_fingerprints() -> set[str]:
    try:
        return {_sha256(c) for c in load_trust_roots([local_demo_root()])}
    except (OSError, ValueError):
        return set()


def _names_demo_root(cert: Any) -> bool:
    from digitize.sign import DEMO_ROOT_NAME

    for name in (cert.subject, cert.issuer):
        cn = name.native.get("common_name", "")
        values = cn if isinstance(cn, list) else [cn]
        if any(unicodedata.normalize("NFC", str(v)).strip() == DEMO_ROOT_NAME for v in values):
            return True
    return False


def chain_is_demo(certs: Iterable[Any]) -> bool:
    """True when any certificate of the chain is (or is issued by) a DEMO root: by the demo
    root's name, or by the fingerprint of this machine's demo root."""
    certs = list(certs)
    if any(_names_demo_root(c) for c in certs):
        return True
    local = _demo_fingerprints()
    return bool(local) and any(_sha256(c) in local for c in certs)


def _signer_facts(cert: Any, chain: Iterable[Any]) -> dict[str, str]:
    from digitize.sign import personal_certificate_problem

    try:
        problem = personal_certificate_problem(cert) or ""
    except Exception as e:  # noqa: BLE001 - an unparsable subject is not a person's certificate
        problem = f"the certificate subject cannot be read ({type(e).__name__})"
    return {
        "signer": _cn(cert),
        "signer_subject": cert.subject.human_friendly,
        "signer_cert_sha256": _sha256(cert),
        "signer_serial": format(cert.serial_number, "x"),
        "personal_problem": problem,
        "demo": str(chain_is_demo([cert, *chain])).lower(),
    }


# --- validation material ----------------------------------------------------------------------
@dataclass
class _Material:
    """Certificates and revocation data a validation may use."""

    certs: list[Any] = field(default_factory=list)
    ocsps: list[Any] = field(default_factory=list)
    crls: list[Any] = field(default_factory=list)
    has_dss: bool = False

    @classmethod
    def from_dss(cls, reader: Any) -> _Material:
        from pyhanko.sign.validation.dss import DocumentSecurityStore
        from pyhanko.sign.validation.errors import NoDSSFoundError

        try:
            dss = DocumentSecurityStore.read_dss(reader)
        except NoDSSFoundError:
            return cls()
        return cls(
            certs=list(dss.load_certs()),
            ocsps=[o.get_object().data for o in dss.ocsps],
            crls=[c.get_object().data for c in dss.crls],
            has_dss=True,
        )

    def plus(self, *, certs: Iterable[Any] = (), ocsps: Iterable[Any] = (),
             crls: Iterable[Any] = ()) -> _Material:  # fmt: skip
        return _Material([*self.certs, *certs], [*self.ocsps, *ocsps], [*self.crls, *crls],
                         self.has_dss)  # fmt: skip


def decode_evidence(evidence: Iterable[RevocationEvidence]) -> _Material:
    """The manifest's R25 OCSP responses and CRLs, each parsed once; an entry that is not
    valid base64 DER of its kind is left out (it can only fail to prove anything)."""
    from asn1crypto import crl, ocsp

    mat = _Material()
    for item in evidence:
        if len(item.der_base64) > MAX_EVIDENCE_BYTES * 4 // 3 + 4:
            continue
        try:
            der = base64.b64decode(item.der_base64, validate=True)
            if item.kind == "ocsp":
                parsed: Any = ocsp.OCSPResponse.load(der)
                _ = parsed.native
                mat.ocsps.append(parsed)
            else:
                parsed = crl.CertificateList.load(der)
                _ = parsed.native
                mat.crls.append(parsed)
        except (binascii.Error, ValueError, TypeError, KeyError):
            continue
    return mat


@dataclass(frozen=True)
class _Options:
    roots: list[Any]
    offline: bool
    lang: str
    now: datetime | None
    evidence: _Material


def _vc(opts: _Options, mat: _Material, *, hard_fail: bool, moment: datetime | None) -> Any:
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(
        trust_roots=opts.roots,
        other_certs=mat.certs,
        ocsps=mat.ocsps,
        crls=mat.crls,
        allow_fetching=not opts.offline,
        revocation_mode="hard-fail" if hard_fail else "soft-fail",
        # OCSP/CRL fetched right after the trusted signing time (B-LT) count as evidence for it
        retroactive_revinfo=True,
        moment=moment or opts.now,
    )


def _dss_in_revision(reader: Any, revision: int) -> bool:
    try:
        return "/DSS" in reader.get_historical_root(revision)
    except Exception:  # noqa: BLE001 - a revision we cannot read has no usable DSS
        return False


def _tst_time(signer_info: Any) -> datetime | None:
    from pyhanko.sign.validation.generic_cms import extract_tst_data_iter

    for tst in extract_tst_data_iter(signer_info, signed=False):
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
    if _tst_time(sig.signer_info) is None and not later_ts:
        return "B-B"
    if not (mat.has_dss and (mat.ocsps or mat.crls)):
        return "B-T"
    if any(_dss_in_revision(reader, t.signed_revision) for t in later_ts):
        return "B-LTA"
    return "B-LT"


async def _validate_twice(run: Any) -> tuple[Any, str]:
    """Hard-fail first (declared revocation sources must answer), then soft-fail: returns the
    status to judge and the revocation state it proves."""
    status = await run(True)
    if status.revoked:
        return status, REVOCATION_REVOKED
    if status.trusted:
        declared = _declares_revocation(status.signing_cert)
        return status, REVOCATION_GOOD if declared else REVOCATION_NOT_VERIFIED
    try:
        soft = await run(False)
    except Exception:  # noqa: BLE001 - the hard-fail verdict stands
        return status, ""
    if soft.revoked:
        return soft, REVOCATION_REVOKED
    if soft.trusted:
        return soft, REVOCATION_NOT_VERIFIED
    return status, ""


async def _check_signature(
    reader: Any, sig: Any, doc_ts: list[Any], mat: _Material, name: str, opts: _Options
) -> Check:
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    cms_certs = [c.chosen for c in sig.signed_data["certificates"] or []]
    facts = _signer_facts(sig.signer_cert, cms_certs)
    signer = facts["signer"]
    ts_time = _tst_time(sig.signer_info)
    claimed = sig.self_reported_timestamp
    # The signer's own clock proves nothing; only a timestamp (checked below) moves the time.
    moment = ts_time or opts.now
    level = pades_level(reader, sig, doc_ts, mat)
    details: dict[str, str] = {
        "field": sig.field_name or "",
        **facts,
        "signing_time_claimed": _fmt_time(claimed),
        "signature_timestamp": _fmt_time(ts_time) if ts_time else "",
        "pades_level": level or "not PAdES baseline",
        "validation_time": "signature timestamp" if ts_time else "current time",
        "offline": str(opts.offline).lower(),
    }

    def fail(key: str, code: ExitCode, **kw: object) -> Check:
        return Check(name=name, ok=False, message=_msg(key, opts.lang, signer=signer, **kw),
                     exit_code=int(code), details=details)  # fmt: skip

    # Certomancer-style TSAs put only their own certificate in the token: let the signature's
    # certificates (the CA chain) help build the TSA's path too. The manifest's evidence is
    # about the digitiser, not the TSA: it stays out of the TSA's context.
    ts_mat = mat.plus(certs=cms_certs)
    signer_mat = mat.plus(ocsps=opts.evidence.ocsps, crls=opts.evidence.crls)

    async def run(hard_fail: bool) -> Any:
        return await async_validate_pdf_signature(
            sig,
            signer_validation_context=_vc(opts, signer_mat, hard_fail=hard_fail, moment=moment),
            ts_validation_context=_vc(opts, ts_mat, hard_fail=False, moment=None),
        )

    try:
        status, revocation = await _validate_twice(run)
    except Exception as e:  # noqa: BLE001 - a broken CMS blob is an integrity failure
        details["error"] = f"{type(e).__name__}: {e}"[:300]
        return fail("error", ExitCode.VERIFY_SIGNATURE, field=sig.field_name, error=type(e).__name__)
    details["validated_at"] = _fmt_time(status.validation_time)
    details["coverage"] = status.coverage.name if status.coverage else ""
    details["modification_level"] = (
        status.modification_level.name if status.modification_level is not None else ""
    )
    if status.validation_path is not None:
        anchor = status.validation_path.trust_anchor
        if getattr(anchor, "certificate", None) is not None:
            details["trust_anchor_sha256"] = _sha256(anchor.certificate)
            path_certs = list(status.validation_path.iter_certs(include_root=True))
            details["demo"] = str(chain_is_demo([sig.signer_cert, *path_certs])).lower()
    if not (status.intact and status.valid):
        return fail("broken", ExitCode.VERIFY_SIGNATURE)
    if status.coverage == SignatureCoverageLevel.ENTIRE_FILE:
        pass
    elif status.coverage == SignatureCoverageLevel.ENTIRE_REVISION:
        # Only what long-term validation adds (DSS, document timestamps) may follow: a bundle
        # PDF never gets form filling or a second signature after the digitiser's.
        mod = status.modification_level
        if mod is None or mod > ModificationLevel.LTA_UPDATES:
            return fail("modified", ExitCode.VERIFY_SIGNATURE, mod=details["modification_level"])
    else:
        return fail("not_covered", ExitCode.VERIFY_SIGNATURE)
    details["revocation"] = revocation or "unknown"
    if revocation == REVOCATION_REVOKED:
        rd = status.revocation_details
        return fail("revoked", ExitCode.VERIFY_TRUST,
                    when=_fmt_time(rd.revocation_date) if rd else "?")  # fmt: skip
    if not status.trusted:
        indic = status.trust_problem_indic
        details["trust_problem"] = _indic_name(indic) if indic else "no path"
        return fail("untrusted", ExitCode.VERIFY_TRUST, why=details["trust_problem"],
                    at=details["validated_at"])  # fmt: skip
    tsv = status.timestamp_validity
    if ts_time is not None and (tsv is None or not (tsv.intact and tsv.valid and tsv.trusted)):
        details["timestamp_problem"] = (
            _indic_name(tsv.trust_problem_indic) if tsv and tsv.trust_problem_indic else ""
        )
        intact = tsv is not None and tsv.intact and tsv.valid
        return fail("timestamp_bad", ExitCode.VERIFY_TRUST if intact else ExitCode.VERIFY_SIGNATURE)
    extra = _msg("revocation_unverified", opts.lang) if revocation != REVOCATION_GOOD else ""
    return Check(
        name=name,
        ok=True,
        message=_msg("ok", opts.lang, signer=signer, level=level or "?",
                     time=_fmt_time(ts_time or claimed), extra=extra),  # fmt: skip
        details=details,
    )


async def _check_doc_timestamp(ts: Any, mat: _Material, name: str, opts: _Options) -> Check:
    from pyhanko.sign.validation import async_validate_pdf_timestamp

    tst = ts.signed_data["encap_content_info"]["content"].parsed
    gen_time = tst["gen_time"].native
    tsa = _cn(ts.signer_cert)
    details = {"field": ts.field_name or "", "time": _fmt_time(gen_time), "tsa": tsa}

    def bad(why: str, code: ExitCode) -> Check:
        return Check(name=name, ok=False, message=_msg("doc_ts_bad", opts.lang, why=why),
                     exit_code=int(code), details=details)  # fmt: skip

    try:
        # the newest document timestamp's own revocation data can only come later: soft-fail
        status = await async_validate_pdf_timestamp(
            ts, validation_context=_vc(opts, mat, hard_fail=False, moment=None)
        )
    except Exception as e:  # noqa: BLE001
        details["error"] = f"{type(e).__name__}: {e}"[:300]
        return bad(type(e).__name__, ExitCode.VERIFY_SIGNATURE)
    if not (status.intact and status.valid):
        return bad("integrity", ExitCode.VERIFY_SIGNATURE)
    if not status.trusted:
        why = _indic_name(status.trust_problem_indic) if status.trust_problem_indic else "untrusted"
        return bad(why, ExitCode.VERIFY_TRUST)
    return Check(name=name, ok=True, message=_msg("doc_ts_ok", opts.lang, time=details["time"],
                                                  tsa=tsa), details=details)  # fmt: skip


async def _verify_pdf(path: Path, opts: _Options) -> list[Check]:
    from pyhanko.pdf_utils.reader import PdfFileReader

    base = f"signature:{path.name}"
    try:
        reader = PdfFileReader(io.BytesIO(path.read_bytes()), strict=False)
        sigs = list(reader.embedded_signatures)
        mat = _Material.from_dss(reader)
    except Exception as e:  # noqa: BLE001 - unreadable is a verification failure, not a crash
        return [
            Check(name=base, ok=False, message=_msg("unreadable", opts.lang, error=type(e).__name__),
                  exit_code=int(ExitCode.VERIFY_SIGNATURE), details={"error": str(e)[:300]})
        ]  # fmt: skip
    if not sigs:
        return [Check(name=base, ok=False, message=_msg("no_signature", opts.lang),
                      exit_code=int(ExitCode.VERIFY_SIGNATURE))]  # fmt: skip
    doc_ts = [s for s in sigs if s.sig_object_type == "/DocTimeStamp"]
    regular = [s for s in sigs if s.sig_object_type != "/DocTimeStamp"]
    checks = []
    for i, sig in enumerate(regular):
        name = base if len(regular) == 1 else f"{base}#{i + 1}"
        try:
            checks.append(await _check_signature(reader, sig, doc_ts, mat, name, opts))
        except Exception as e:  # noqa: BLE001 - a malformed signature dictionary or CMS
            checks.append(Check(name=name, ok=False, exit_code=int(ExitCode.VERIFY_SIGNATURE),
                                message=_msg("error", opts.lang, field=name, error=type(e).__name__),
                                details={"error": str(e)[:300]}))  # fmt: skip
    for i, ts in enumerate(doc_ts):
        name = f"timestamp:{path.name}#{i + 1}"
        try:
            checks.append(await _check_doc_timestamp(ts, mat, name, opts))
        except Exception as e:  # noqa: BLE001
            checks.append(Check(name=name, ok=False, exit_code=int(ExitCode.VERIFY_SIGNATURE),
                                message=_msg("doc_ts_bad", opts.lang, why=type(e).__name__)))  # fmt: skip
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
    path: Path,
    trust_roots: tuple[Path, ...],
    *,
    offline: bool = True,
    lang: str = "vi",
    now: datetime | None = None,
    revocation_evidence: tuple[RevocationEvidence, ...] = (),
) -> list[Check]:
    """One Check per signature: integrity, whole-file coverage, chain, revocation, timestamp,
    level (see the module docstring). ``now`` is the validation time of signatures without a
    timestamp (default: the clock); ``revocation_evidence`` adds OCSP/CRL data known to belong
    to the signer (the manifest's R25 evidence). Never raises for a bad file."""
    opts = _Options(load_trust_roots(trust_roots), offline, lang, now,
                    decode_evidence(revocation_evidence))  # fmt: skip
    with _quiet_pyhanko():
        return _run(_verify_pdf(Path(path), opts))  # type: ignore[no-any-return]


async def _verify_detached(data: bytes, signature: bytes, opts: _Options) -> Check:
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms

    name = "manifest_signature"
    try:
        content_info = cms.ContentInfo.load(signature)
        signed_data = content_info["content"]
        signer_info = signed_data["signer_infos"][0]
        _ = signer_info["signed_attrs"].native  # force parsing: garbage fails here
        cms_certs = [c.chosen for c in signed_data["certificates"] or []]
        ts_time = _tst_time(signer_info)
    except Exception as e:  # noqa: BLE001
        return Check(name=name, ok=False, message=_msg("detached_unreadable", opts.lang, error=type(e).__name__),
                     exit_code=int(ExitCode.VERIFY_SIGNATURE))  # fmt: skip
    # Validated at its timestamp when it has one, with the revocation evidence the manifest
    # stores (R25): a bundle keeps verifying after the digitiser's certificate has expired.
    moment = ts_time or opts.now
    mat = _Material(certs=cms_certs)
    signer_mat = mat.plus(ocsps=opts.evidence.ocsps, crls=opts.evidence.crls)

    async def run(hard_fail: bool) -> Any:
        return await async_validate_detached_cms(
            data, signed_data,
            signer_validation_context=_vc(opts, signer_mat, hard_fail=hard_fail, moment=moment),
            ts_validation_context=_vc(opts, mat, hard_fail=False, moment=None),
        )  # fmt: skip

    try:
        status, revocation = await _validate_twice(run)
    except Exception as e:  # noqa: BLE001
        return Check(name=name, ok=False, message=_msg("detached_bad", opts.lang, why=type(e).__name__),
                     exit_code=int(ExitCode.VERIFY_SIGNATURE), details={"error": str(e)[:300]})  # fmt: skip
    details = _signer_facts(status.signing_cert, cms_certs)
    signer = details["signer"]
    details.update(
        signing_time=_fmt_time(status.signer_reported_dt),
        timestamp=_fmt_time(ts_time) if ts_time else "",
        validation_time="signature timestamp" if ts_time else "current time",
        validated_at=_fmt_time(status.validation_time),
        revocation=revocation or "unknown",
    )
    if status.validation_path is not None:
        anchor = getattr(status.validation_path.trust_anchor, "certificate", None)
        if anchor is not None:
            details["trust_anchor_sha256"] = _sha256(anchor)
            path_certs = list(status.validation_path.iter_certs(include_root=True))
            details["demo"] = str(chain_is_demo([status.signing_cert, *path_certs])).lower()

    def fail(key: str, code: ExitCode, **kw: object) -> Check:
        return Check(name=name, ok=False, message=_msg(key, opts.lang, **kw), exit_code=int(code),
                     details=details)  # fmt: skip

    if not (status.intact and status.valid):
        why = "nội dung không khớp" if opts.lang == "vi" else "content does not match"
        return fail("detached_bad", ExitCode.VERIFY_SIGNATURE, why=why)
    if revocation == REVOCATION_REVOKED:
        return fail("revoked", ExitCode.VERIFY_TRUST, signer=signer, when="?")
    if not status.trusted:
        why = _indic_name(status.trust_problem_indic) if status.trust_problem_indic else "no path"
        details["trust_problem"] = why
        return fail("detached_untrusted", ExitCode.VERIFY_TRUST, signer=signer, why=why,
                    at=details["validated_at"])  # fmt: skip
    tsv = status.timestamp_validity
    if ts_time is not None and (tsv is None or not (tsv.intact and tsv.valid and tsv.trusted)):
        intact = tsv is not None and tsv.intact and tsv.valid
        return fail("timestamp_bad", ExitCode.VERIFY_TRUST if intact else ExitCode.VERIFY_SIGNATURE,
                    signer=signer)  # fmt: skip
    extra = _msg("revocation_unverified", opts.lang) if revocation != REVOCATION_GOOD else ""
    return Check(
        name=name,
        ok=True,
        message=_msg("detached_ok", opts.lang, signer=signer,
                     time=details["timestamp"] or details["signing_time"], extra=extra),  # fmt: skip
        details=details,
    )


def verify_detached_signature(
    data: bytes,
    signature: bytes,
    trust_roots: tuple[Path, ...],
    *,
    lang: str = "vi",
    now: datetime | None = None,
    revocation_evidence: tuple[RevocationEvidence, ...] = (),
    offline: bool = True,
) -> Check:
    """Check a detached CMS signature over ``data`` (the manifest): integrity, chain at its
    timestamp (else at ``now``), revocation from ``revocation_evidence`` (the manifest's R25
    data) or, with ``offline=False``, fetched. Never raises for a bad signature."""
    opts = _Options(load_trust_roots(trust_roots), offline, lang, now,
                    decode_evidence(revocation_evidence))  # fmt: skip
    with _quiet_pyhanko():
        return _run(_verify_detached(data, signature, opts))  # type: ignore[no-any-return]
