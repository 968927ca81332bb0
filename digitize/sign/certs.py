"""Certificates: loading (pyHanko's PEM/DER loader), the digitiser's identity, the R17
personal-certificate rule, the validity period and revocation pointers.

Pure functions over asn1crypto certificates; nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from digitize.errors import CertificateExpiredError, CertificateNotPersonalError, SignerConfigError
from digitize.models import DigitiserIdentity
from digitize.util import nfc

# R17: words that make a CN look like an organisation rather than a person.
ORGANISATION_KEYWORDS = (
    "CÔNG TY", "CONG TY", "TỔNG CÔNG TY", "UBND", "ỦY BAN", "UỶ BAN", "SỞ", "BỘ", "CỤC",
    "TRUNG TÂM", "NGÂN HÀNG", "BỆNH VIỆN", "TRƯỜNG", "VĂN PHÒNG", "CHI NHÁNH", "HỢP TÁC XÃ",
    "CO.,LTD", "CO., LTD", "LTD", "JSC", "CORP", "COMPANY", "BANK", "HOSPITAL", "MINISTRY",
    "DEPARTMENT", "AGENCY", "CENTER", "CENTRE", "BRANCH",
)  # fmt: skip
_ORG_RE = re.compile(
    r"(?<![\w])(" + "|".join(re.escape(k) for k in ORGANISATION_KEYWORDS) + r")(?![\w])"
)
_PERSONAL_ID_RE = re.compile(
    r"^\s*(CCCD|CMND|CMT|HC|HO CHIEU|PASSPORT|PID|DDCN|SĐDCN)\s*[:\-]", re.I
)
_ORG_ID_RE = re.compile(r"^\s*(MST|MNS|MDN|TIN|GPKD)\s*[:\-]", re.I)


def load_certificates(path: str | Path) -> list[Any]:
    """Every certificate of a PEM (possibly several) or DER file, as asn1crypto objects."""
    from pyhanko.keys import load_certs_from_pemder

    try:
        return list(load_certs_from_pemder([str(path)]))
    except OSError as e:
        raise SignerConfigError(f"cannot read certificate file: {e.strerror}", path=path) from None
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad certificate file
        raise SignerConfigError(f"not a certificate file ({type(e).__name__})", path=path) from None


def load_certificate(source: str | Path | bytes | Any) -> Any:
    """One certificate from a file path, PEM/DER bytes, or an asn1crypto certificate as is.

    A file or PEM holding several certificates gives its first (the end-entity certificate
    comes first in a chain file)."""
    from asn1crypto import x509
    from pyhanko.keys import load_certs_from_pemder_data

    if isinstance(source, x509.Certificate):
        return source
    if isinstance(source, bytes):
        try:
            certs = list(load_certs_from_pemder_data(source))
        except Exception as e:  # noqa: BLE001
            raise SignerConfigError(f"not a certificate ({type(e).__name__})") from None
    else:
        certs = load_certificates(source)
    if not certs:
        raise SignerConfigError("no certificate found", path=None if isinstance(source, bytes) else source)
    return certs[0]


def common_name(cert: Any) -> str:
    cn = cert.subject.native.get("common_name", "")
    if isinstance(cn, list):
        cn = cn[0] if cn else ""
    return nfc(str(cn)).strip()


def _rfc4514(der: bytes, which: Literal["subject", "issuer"]) -> str:
    from cryptography import x509 as cx509

    cert = cx509.load_der_x509_certificate(der)
    return (cert.subject if which == "subject" else cert.issuer).rfc4514_string()


def identity_of(cert: Any, *, is_demo: bool = False) -> DigitiserIdentity:
    der = cert.dump()
    return DigitiserIdentity(
        full_name=common_name(cert),
        cert_serial=format(cert.serial_number, "x"),
        cert_issuer=_rfc4514(der, "issuer"),
        cert_subject=_rfc4514(der, "subject"),
        cert_sha256=hashlib.sha256(der).hexdigest(),
        is_demo=is_demo,
    )


def personal_certificate_problem(cert: Any) -> str | None:
    """Why ``cert`` is not a natural person's certificate (R17), or None when it is.

    The rule (Vietnamese CAs put the citizen ID in UID as ``CCCD:``/``CMND:`` for persons and
    the tax code as ``MST:`` for organisations):

    1. the subject has no CN → refused;
    2. CN equals O (an organisation certificate names the organisation twice) → refused;
    3. the subject carries an organisation identifier (UID/serialNumber ``MST:``, ``MNS:`` …)
       and no personal identifier (``CCCD:``, ``CMND:``, ``HC:``/passport, pseudonym) → refused;
    4. the subject has neither a personal identifier nor givenName/surname, and the CN contains
       an organisation word (CÔNG TY, UBND, SỞ, BỘ, TRUNG TÂM, CO.,LTD, JSC …) → refused.
    A person's certificate that also names their employer in O/OU passes.
    """
    native = cert.subject.native
    cn = common_name(cert)
    if not cn:
        return "the certificate subject has no common name"
    orgs = native.get("organization_name", [])
    orgs = [orgs] if isinstance(orgs, str) else list(orgs)
    cn_key = cn.casefold()
    if any(nfc(o).strip().casefold() == cn_key for o in orgs):
        return f"the certificate names an organisation ('{cn}' is both CN and O)"
    ids: list[str] = []
    for attr in ("user_id", "serial_number"):
        v = native.get(attr)
        if v:
            ids.extend([v] if isinstance(v, str) else list(v))
    personal_id = any(_PERSONAL_ID_RE.match(i) for i in ids) or bool(native.get("pseudonym"))
    org_id = any(_ORG_ID_RE.match(i) for i in ids)
    if org_id and not personal_id:
        return (
            f"the certificate of '{cn}' carries an organisation identifier (MST/MNS), no CCCD/CMND"
        )
    has_person_name = bool(native.get("given_name") or native.get("surname"))
    if not personal_id and not has_person_name and _ORG_RE.search(cn.upper()):
        return (
            f"'{cn}' looks like an organisation name and the certificate has no personal identifier"
        )
    return None


def require_personal(cert: Any) -> None:
    """R17: raise ``CertificateNotPersonalError`` unless ``cert`` is a natural person's."""
    problem = personal_certificate_problem(cert)
    if problem:
        raise CertificateNotPersonalError(
            f"{problem}: the digitiser must sign with a personal certificate (R17)"
        )


def check_validity(cert: Any, at: datetime, name: str) -> None:
    """R25: ``CertificateExpiredError`` when ``at`` is outside the certificate's validity."""
    validity = cert["tbs_certificate"]["validity"]
    not_before = validity["not_before"].native
    not_after = validity["not_after"].native
    if at < not_before:
        raise CertificateExpiredError(
            f"certificate of '{name}' is not valid before {not_before.isoformat()}"
        )
    if at > not_after:
        raise CertificateExpiredError(
            f"certificate of '{name}' expired on {not_after.isoformat()}",
            hint="renew the certificate with your CA",
        )


def has_revocation_pointers(cert: Any) -> bool:
    """The certificate names an OCSP responder or a CRL distribution point."""
    return bool(cert.ocsp_urls or cert.crl_distribution_points)


def is_self_signed(cert: Any) -> bool:
    return cert.self_signed in ("maybe", "yes")


def signature_algorithm_name(mechanism: Any) -> str:
    """``rsassa_pkcs1v15``, ``rsassa_pss`` or ``ecdsa`` for a pyHanko signature mechanism."""
    algo = mechanism.signature_algo
    return {"rsassa_pkcs1v15": "rsassa_pkcs1v15", "rsassa_pss": "rsassa_pss"}.get(
        algo, "ecdsa" if "ecdsa" in algo else algo
    )
