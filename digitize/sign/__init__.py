"""Digitiser signatures (R17–R27): PAdES baseline signatures made by the digitiser's own key.

One interface, ``DigitiserSigner`` (``base``), over back-ends registered in the
``digitize.signers`` entry-point group (``backends``): a PKCS#12 file, a PKCS#11 token (the USB
tokens Vietnamese CAs issue), a remote signing service speaking the Cloud Signature Consortium
API v1, and a ``demo`` identity created once on the machine when nothing is configured (its
names say DEMO; not valid for real use).

Contract of every back-end (SHALL):

- secrets come only from the environment variable named in ``SigningSettings`` (removed from
  the environment once read) or an interactive prompt; never argv, logs, exception messages
  or written files; key files are read in place, never copied; no core dump once a key is
  loaded (``secrets``);
- before signing (R17, R25, ``precheck``): a personal certificate
  (``personal_certificate_problem``), within its validity, chaining to ``trust_roots``, and —
  when ``check_revocation`` and the certificate names an OCSP responder or CRL — not revoked;
- PAdES baseline B-B … B-LTA (R23/R24, ``pades``); the visible note top-left of page 1
  (R18–R21, ``stamp``); network failures retried a bounded number of times (``retry``).

Modules: ``base`` (interface, ``PreparedPdf``), ``certs``, ``stamp``, ``demo``, ``secrets``,
``retry``, ``precheck``, ``prepare`` (two-phase, key-less half), ``pades`` (the signer),
``opening`` (``open_signer``, ``check_signer``), ``backends`` (registry + one module each).
Importing this package imports no pyHanko: that happens on first use.
"""

from __future__ import annotations

from pathlib import Path

from digitize.models import SignatureRecord
from digitize.settings import CscSettings, Pkcs11Settings, Pkcs12Settings, SigningSettings
from digitize.sign.backends import (
    BUILTIN_BACKENDS,
    ENTRY_POINT_GROUP,
    KeyMaterial,
    OpenContext,
    SignerBackend,
    backend_names,
    get_backend,
)
from digitize.sign.base import BBoxPt, DigitiserSigner, PreparedPdf
from digitize.sign.certs import (
    ORGANISATION_KEYWORDS,
    identity_of,
    load_certificate,
    load_certificates,
    personal_certificate_problem,
)
from digitize.sign.demo import (
    DEMO_DIR_NAME,
    DEMO_PERSON_NAME,
    DEMO_PKCS12_PASSWORD,
    DEMO_ROOT_NAME,
    demo_identity_dir,
    demo_trust_root,
    ensure_demo_identity,
)
from digitize.sign.opening import check_signer, open_signer
from digitize.sign.pades import PyHankoDigitiserSigner
from digitize.sign.prepare import prepare_pdf
from digitize.sign.stamp import (
    DEFAULT_FONT,
    MM,
    STAMP_MAX_H_PT,
    STAMP_MAX_W_PT,
    STAMP_MIN_SIZE_PT,
    STAMP_OFFSET_PT,
    STAMP_SIZES_PT,
    VIETNAMESE_PROBE,
    StampLayout,
    note_lines,
    plan_stamp,
    resolve_font,
    shown_time_text,
    text_width_pt,
)


def finish_prepared(
    prepared_pdf: Path, out_signed: Path, signer: DigitiserSigner, preparation: PreparedPdf
) -> SignatureRecord:
    """Station side of two-phase signing: ``signer.finish_prepared(...)`` (a SignatureRecord)."""
    return signer.finish_prepared(prepared_pdf, out_signed, preparation)


__all__ = [
    "BBoxPt", "BUILTIN_BACKENDS", "CscSettings", "DEFAULT_FONT", "DEMO_DIR_NAME",
    "DEMO_PERSON_NAME", "DEMO_PKCS12_PASSWORD", "DEMO_ROOT_NAME", "DigitiserSigner",
    "ENTRY_POINT_GROUP", "KeyMaterial", "MM", "ORGANISATION_KEYWORDS", "OpenContext",
    "Pkcs11Settings", "Pkcs12Settings", "PreparedPdf", "PyHankoDigitiserSigner",
    "STAMP_MAX_H_PT", "STAMP_MAX_W_PT", "STAMP_MIN_SIZE_PT", "STAMP_OFFSET_PT", "STAMP_SIZES_PT",
    "SignerBackend", "SigningSettings", "StampLayout", "VIETNAMESE_PROBE", "backend_names",
    "check_signer", "demo_identity_dir", "demo_trust_root", "ensure_demo_identity",
    "finish_prepared", "get_backend", "identity_of", "load_certificate", "load_certificates",
    "note_lines", "open_signer", "personal_certificate_problem", "plan_stamp", "prepare_pdf",
    "resolve_font", "shown_time_text", "text_width_pt",
]  # fmt: skip
