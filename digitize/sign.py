"""Digitiser signatures (R17–R27): PAdES baseline signatures made by the digitiser's own key.

One interface, ``DigitiserSigner``, over four back-ends (R27): a PKCS#12 file, a PKCS#11 token
(the USB tokens Vietnamese CAs issue), a remote signing service speaking the Cloud Signature
Consortium API v1, and a ``demo`` identity created once on the machine when nothing is
configured (its names say DEMO; not valid for real use).

Contract of every back-end (SHALL):

- secrets (PKCS#12 password, token PIN, CSC token/PIN/OTP) come only from the environment
  variable named in ``SigningSettings`` or from an interactive prompt when stdin is a terminal;
  they never appear in argv, logs, exception messages or written files. Key files are read in
  place, never copied.
- before signing (R17, R25): the certificate is a personal one (``personal_certificate_problem``),
  within its validity period, and — when ``check_revocation`` and the certificate names an
  OCSP responder or CRL distribution point — not revoked. A certificate with no revocation
  pointers (the demo identity) skips the revocation check; an unreachable responder is an error.
- PAdES baseline (R23/R24): SubFilter ETSI.CAdES.detached, ESS signing-certificate-v2,
  SHA-256/384/512, RSA PKCS#1 v1.5 by default or PSS by settings, ECDSA keys as they come.
  Levels: B-B; B-T adds an RFC 3161 signature timestamp; B-LT adds certificates, OCSP responses
  and CRLs to the DSS (fetched now, hard-fail); B-LTA adds a document timestamp. ``level=None``
  means B-T when a TSA URL is set, else B-B with a ``no_timestamp`` warning flag. When the TSA
  cannot be reached the signature fails with ``TimestampUnavailableError``: there is no silent
  fallback; a profile that wants to sign offline chooses level B-B.
- visible note (R18–R21): a signature field on page 1, its box anchored 5 mm from the top and
  left edges of the page (crop box), at most 70 × 20 mm, text
  ``Người số hóa: <name>`` / ``Thời gian sao chụp: <YYYY-MM-DDThh:mm:ss+07:00>`` in black
  8.5–10 pt, drawn with an embedded subset of an OpenType font with Vietnamese coverage (Noto
  Sans by default) so the file stays PDF/A-2. If the box overlaps detected text the corner is
  kept, the text drops to 8 pt in a tighter box, and a ``stamp_overlaps_text`` review flag is
  raised (R20); the note never moves to another corner.

A signer owns a private event loop thread (pyHanko is asynchronous, and CSC/aiohttp sessions
are bound to one loop). It is not picklable: open one per process and ``close()`` it.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import getpass
import hashlib
import io
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from digitize.errors import (
    BadPinError,
    CertificateExpiredError,
    CertificateNotPersonalError,
    CertificateRevokedError,
    DigitizeError,
    SignerConfigError,
    SigningError,
    TimestampUnavailableError,
)
from digitize.models import (
    DigitiserIdentity,
    Flag,
    FrozenModel,
    PadesLevel,
    RevocationEvidence,
    Severity,
    SignatureRecord,
)
from digitize.settings import SigningSettings

BBoxPt = tuple[float, float, float, float]
T = TypeVar("T")

MM = 72 / 25.4
STAMP_OFFSET_PT = 5 * MM  # R19: 5 mm from the top and left page edges
STAMP_MAX_W_PT = 70 * MM
STAMP_MAX_H_PT = 20 * MM
STAMP_SIZES_PT = (10.0, 9.5, 9.0, 8.5)  # tried largest first; 8 pt is the shrunk size (R20)
STAMP_MIN_SIZE_PT = 8.0
DEFAULT_FONT = "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"
VIETNAMESE_PROBE = "ĂăÂâĐđÊêÔôƠơƯưẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹ"

DEMO_DIR_NAME = "demo-identity"
# The demo PKCS#12 is public demo material (its certificate says DEMO and chains to a DEMO root
# nobody trusts), so a fixed password is acceptable here and ONLY here.
DEMO_PKCS12_PASSWORD = b"digitize-demo-identity-not-secret"
DEMO_PERSON_NAME = "Nguyễn Văn Mẫu (DEMO)"
DEMO_ROOT_NAME = "DEMO digitize Root CA — NOT FOR REAL USE"

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


class DigitiserSigner(ABC):
    """One signer back-end (file, token, remote): same interface for every one (R27)."""

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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release tokens/sessions."""


# --- secrets --------------------------------------------------------------------------------
def _read_secret(env_var: str, what: str, *, required: bool = True) -> str | None:
    """The secret from ``env_var``, else a no-echo prompt on a terminal; never logged."""
    value = os.environ.get(env_var)
    if value:
        return value
    if not required:
        return None
    if sys.stdin is not None and sys.stdin.isatty():
        value = getpass.getpass(f"{what}: ")
        if value:
            return value
    raise SignerConfigError(
        f"no {what} available",
        hint=f"set the environment variable {env_var} or run from a terminal to be prompted",
    )


# --- certificates ---------------------------------------------------------------------------
def _load_cert_file(path: str | Path) -> list[Any]:
    """All certificates of a PEM (possibly several) or DER file, as asn1crypto objects."""
    from asn1crypto import pem, x509

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise SignerConfigError(f"cannot read trust root: {e.strerror}", path=path) from None
    try:
        if pem.detect(data):
            return [x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
        return [x509.Certificate.load(data)]
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad trust root file
        raise SignerConfigError(f"not a certificate file ({type(e).__name__})", path=path) from None


def _cn(cert: Any) -> str:
    native = cert.subject.native
    cn = native.get("common_name", "")
    if isinstance(cn, list):
        cn = cn[0] if cn else ""
    return unicodedata.normalize("NFC", str(cn)).strip()


def _rfc4514(der: bytes, which: Literal["subject", "issuer"]) -> str:
    from cryptography import x509 as cx509

    cert = cx509.load_der_x509_certificate(der)
    return (cert.subject if which == "subject" else cert.issuer).rfc4514_string()


def identity_of(cert: Any, *, is_demo: bool = False) -> DigitiserIdentity:
    der = cert.dump()
    return DigitiserIdentity(
        full_name=_cn(cert),
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
    cn = _cn(cert)
    if not cn:
        return "the certificate subject has no common name"
    orgs = native.get("organization_name", [])
    orgs = [orgs] if isinstance(orgs, str) else list(orgs)
    cn_key = cn.casefold()
    if any(unicodedata.normalize("NFC", o).strip().casefold() == cn_key for o in orgs):
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


def _revocation_pointers(cert: Any) -> bool:
    return bool(cert.ocsp_urls or cert.crl_distribution_points)


def _self_signed(cert: Any) -> bool:
    return cert.self_signed in ("maybe", "yes")


def _check_validity(cert: Any, at: datetime, name: str) -> None:
    not_before = cert["tbs_certificate"]["validity"]["not_before"].native
    not_after = cert["tbs_certificate"]["validity"]["not_after"].native
    if at < not_before:
        raise CertificateExpiredError(
            f"certificate of '{name}' is not valid before {not_before.isoformat()}"
        )
    if at > not_after:
        raise CertificateExpiredError(
            f"certificate of '{name}' expired on {not_after.isoformat()}",
            hint="renew the certificate with your CA",
        )


def _signature_algorithm_name(mechanism: Any) -> str:
    algo = mechanism.signature_algo
    return {"rsassa_pkcs1v15": "rsassa_pkcs1v15", "rsassa_pss": "rsassa_pss"}.get(
        algo, "ecdsa" if "ecdsa" in algo else algo
    )


# --- the visible note (R18–R21) --------------------------------------------------------------
@lru_cache(maxsize=4)
def _font_metrics(font_path: str) -> tuple[dict[int, int], int]:
    """Advance widths by code point (per-process cache) and units per em."""
    from fontTools.ttLib import TTFont

    font = TTFont(font_path, lazy=True)
    cmap = font.getBestCmap()
    hmtx = font["hmtx"]
    widths = {cp: hmtx[glyph][0] for cp, glyph in cmap.items()}
    return widths, int(font["head"].unitsPerEm)


def text_width_pt(text: str, font_path: str, size: float) -> float:
    widths, upm = _font_metrics(font_path)
    default = widths.get(ord("n"), upm // 2)
    return sum(widths.get(ord(c), default) for c in unicodedata.normalize("NFC", text)) * size / upm


@lru_cache(maxsize=4)
def resolve_font(font_path: str | None) -> str:
    """An OpenType/TrueType file with full Vietnamese coverage (checked), else SignerConfigError."""
    candidates = [font_path] if font_path else []
    if not font_path:
        fc = shutil.which("fc-match")
        if fc:
            p = subprocess.run(
                [fc, "-f", "%{file}", "Noto Sans:lang=vi"], capture_output=True, text=True
            )
            if p.returncode == 0 and p.stdout.strip():
                candidates.append(p.stdout.strip())
        candidates.append(DEFAULT_FONT)
    for cand in candidates:
        if not cand or not Path(cand).is_file() or not cand.lower().endswith((".ttf", ".otf")):
            continue
        widths, _ = _font_metrics(cand)
        missing = [c for c in VIETNAMESE_PROBE if ord(c) not in widths]
        if not missing:
            return cand
        if font_path:
            raise SignerConfigError(
                f"font lacks Vietnamese glyphs ({''.join(missing[:8])}…)", path=font_path
            )
    raise SignerConfigError(
        "no OpenType font with Vietnamese coverage found",
        path=font_path,
        hint="install fonts-noto-core or set font_path",
    )


class StampLayout(FrozenModel):
    box: BBoxPt  # x0, y0, x1, y1 in PDF points (page space)
    font_size: float
    margin: int
    lines: tuple[str, ...]
    shrunk: bool = False
    overlaps_text: bool = False


def _wrap(line: str, font_path: str, size: float, max_w: float) -> list[str]:
    if text_width_pt(line, font_path, size) <= max_w:
        return [line]
    words, out, cur = line.split(" "), [], ""
    for word in words:
        trial = f"{cur} {word}".strip()
        if cur and text_width_pt(trial, font_path, size) > max_w:
            out.append(cur)
            cur = "  " + word
        else:
            cur = trial if not cur.startswith("  ") else f"{cur} {word}"
    out.append(cur)
    return out


def _leading(size: float) -> int:
    # pyHanko's layout works with Fractions: leading (and margins) must be integers
    return int(round(size * 1.25))


def _overlaps(a: BBoxPt, b: BBoxPt) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def plan_stamp(
    page_box: BBoxPt,
    name: str,
    scan_time_text: str,
    font_path: str,
    text_boxes_pt: tuple[BBoxPt, ...] = (),
) -> StampLayout:
    """Where and how big the note is: top-left corner of ``page_box``, never elsewhere (R18–R20)."""
    lines = (f"Người số hóa: {name}", f"Thời gian sao chụp: {scan_time_text}")

    def layout(sizes: tuple[float, ...], margin: int) -> StampLayout:
        # the largest size at which both lines fit unwrapped; else wrap at the smallest size
        max_text_w = STAMP_MAX_W_PT - 2 * margin - 1
        size = next(
            (s for s in sizes if all(text_width_pt(x, font_path, s) <= max_text_w for x in lines)),
            sizes[-1],
        )
        wrapped = [w for line in lines for w in _wrap(line, font_path, size, max_text_w)]
        text_w = max(math.ceil(text_width_pt(w, font_path, size)) for w in wrapped)
        width = min(text_w + 2 * margin + 1, STAMP_MAX_W_PT)
        height = min(len(wrapped) * _leading(size) + 2 * margin + 2, STAMP_MAX_H_PT)
        x0 = page_box[0] + STAMP_OFFSET_PT
        y1 = page_box[3] - STAMP_OFFSET_PT
        box = (round(x0, 2), round(y1 - height, 2), round(x0 + width, 2), round(y1, 2))
        return StampLayout(box=box, font_size=size, margin=margin, lines=tuple(wrapped))

    normal = layout(STAMP_SIZES_PT + (STAMP_MIN_SIZE_PT,), 4)
    if not any(_overlaps(normal.box, t) for t in text_boxes_pt):
        return normal
    small = layout((STAMP_MIN_SIZE_PT,), 2)
    still = any(_overlaps(small.box, t) for t in text_boxes_pt)
    return small.model_copy(update={"shrunk": True, "overlaps_text": still})


# Code points the note can need: ASCII, Latin-1, Latin Extended-A/B, combining marks, the
# Vietnamese block. Names outside it still render (pyHanko subsets from the full font then).
_STAMP_REPERTOIRE = [
    *range(0x20, 0x7F),
    *range(0xA0, 0x250),
    *range(0x300, 0x370),
    *range(0x1EA0, 0x1F00),
] + [0x2010, 0x2011, 0x2013, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2026]


_STAMP_REPERTOIRE_SET = frozenset(_STAMP_REPERTOIRE)


@lru_cache(maxsize=4)
def _font_for_stamp(font_path: str) -> bytes:
    """The font cut down once per process to the repertoire above, layout features kept.

    pyHanko subsets the font for every signature; on the full Noto Sans, fontTools spends
    most of a B-B signature parsing layout tables. Subsetting a 60 kB cut is a few ms.
    """
    from fontTools import subset

    options = subset.Options()
    # no kerning: precomposed Vietnamese letters need no GPOS pairs, and parsing them is the cost
    options.layout_features = ["ccmp", "locl", "mark", "mkmk", "liga", "rlig"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    font = subset.load_font(font_path, options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=_STAMP_REPERTOIRE)
    subsetter.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    return buf.getvalue()


def _glyph_factory(font_path: str, size: float, text: str) -> Any:
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory

    use_cut = all(ord(c) in _STAMP_REPERTOIRE_SET or c == "\n" for c in text)

    class CachedCutFactory(GlyphAccumulatorFactory):
        def create_font_engine(self, writer: Any, obj_stream: Any = None) -> Any:
            if not use_cut:
                return super().create_font_engine(writer, obj_stream)
            if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
                obj_stream = writer.prepare_object_stream()
            return GlyphAccumulator(
                writer=writer,
                font_handle=io.BytesIO(_font_for_stamp(self.font_file)),
                font_size=self.font_size,
                ot_script_tag=self.ot_script_tag,
                ot_language_tag=self.ot_language_tag,
                writing_direction=self.writing_direction,
                bcp47_lang_code=self.bcp47_lang_code,
                obj_stream=obj_stream,
            )

    return CachedCutFactory(
        font_path,
        font_size=size,  # type: ignore[arg-type]  # pyHanko says int; fractional sizes work
        ot_script_tag="latn",
        ot_language_tag="VIT ",  # pyHanko wants the 4-character OpenType tag
    )


def _stamp_style(layout: StampLayout, font_path: str) -> Any:
    from pyhanko.pdf_utils.layout import AxisAlignment, InnerScaling, Margins, SimpleBoxLayoutRule
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.stamp import TextStampStyle

    m = layout.margin
    return TextStampStyle(
        stamp_text="\n".join(line.replace("%", "%%") for line in layout.lines),
        text_box_style=TextBoxStyle(
            font=_glyph_factory(font_path, layout.font_size, "\n".join(layout.lines)),
            font_size=layout.font_size,  # type: ignore[arg-type]
            leading=_leading(layout.font_size),
            # no extra 10 pt padding around the text: the stamp's own margins apply
            box_layout_rule=SimpleBoxLayoutRule(
                x_align=AxisAlignment.ALIGN_MIN,
                y_align=AxisAlignment.ALIGN_MIN,
                margins=Margins.uniform(0),
            ),
        ),
        inner_content_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MIN,
            y_align=AxisAlignment.ALIGN_MID,
            margins=Margins(left=m, right=m, top=m, bottom=m),
            inner_content_scaling=InnerScaling.SHRINK_TO_FIT,
        ),
        border_width=1,
        background=None,
    )


def _page_one_box(reader: Any) -> tuple[BBoxPt, int]:
    """Crop box (else media box) and /Rotate of page 1, following inherited attributes."""
    node = reader.root["/Pages"]
    inherited: dict[str, Any] = {}
    while True:
        for key in ("/MediaBox", "/CropBox", "/Rotate"):
            if key in node:
                inherited[key] = node[key]
        if node.get("/Type") == "/Page" or "/Kids" not in node:
            break
        node = node["/Kids"][0].get_object()
    raw = inherited.get("/CropBox", inherited.get("/MediaBox"))
    if raw is None:
        raise SigningError("page 1 has no MediaBox")
    x0, y0, x1, y1 = (float(v) for v in raw)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), int(inherited.get("/Rotate", 0))


# --- demo identity (issue 2 point 5) --------------------------------------------------------
def _default_data_dir() -> Path:
    env = os.environ.get("DIGITIZE_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("digitize"))


def demo_identity_dir(data_dir: Path | None = None) -> Path:
    return (Path(data_dir) if data_dir is not None else _default_data_dir()) / DEMO_DIR_NAME


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _build_demo_identity(folder: Path) -> None:
    """Demo root CA + demo personal certificate (PKCS#12); the root key is not kept."""
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    person_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def attr(oid: Any, value: str) -> cx509.NameAttribute:
        return cx509.NameAttribute(oid, value)

    root_name = cx509.Name(
        [
            attr(NameOID.COUNTRY_NAME, "VN"),
            attr(NameOID.ORGANIZATION_NAME, "DEMO digitize (NOT FOR REAL USE)"),
            attr(NameOID.COMMON_NAME, DEMO_ROOT_NAME),
        ]
    )
    person_name = cx509.Name(
        [
            attr(NameOID.COUNTRY_NAME, "VN"),
            attr(NameOID.ORGANIZATION_NAME, "DEMO digitize (NOT FOR REAL USE)"),
            attr(NameOID.SURNAME, "Nguyễn"),
            attr(NameOID.GIVEN_NAME, "Văn Mẫu"),
            attr(NameOID.PSEUDONYM, "DEMO"),
            attr(NameOID.USER_ID, "CCCD:000000000000-DEMO"),
            attr(NameOID.COMMON_NAME, DEMO_PERSON_NAME),
        ]
    )
    root_ski = cx509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root_cert = (
        cx509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3653))
        .add_extension(cx509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            cx509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(root_ski, critical=False)
        .sign(root_key, hashes.SHA256())
    )
    person_cert = (
        cx509.CertificateBuilder()
        .subject_name(person_name)
        .issuer_name(root_name)
        .public_key(person_key.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=5 * 365 + 1))
        .add_extension(cx509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            # digitalSignature + nonRepudiation (contentCommitment)
            cx509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            cx509.SubjectKeyIdentifier.from_public_key(person_key.public_key()), critical=False
        )
        .add_extension(
            cx509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    p12 = pkcs12.serialize_key_and_certificates(
        b"demo",
        person_key,
        person_cert,
        [root_cert],
        serialization.BestAvailableEncryption(DEMO_PKCS12_PASSWORD),
    )
    _write_private(folder / "root.pem", root_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(folder / "demo.p12", p12)
    _write_private(
        folder / "README.txt",
        (
            "DEMO signing identity created by digitize because no signing back-end is configured.\n"
            "It is NOT valid for real use: the root certificate is trusted by nobody.\n"
            f"Root: {DEMO_ROOT_NAME}\nPerson: {DEMO_PERSON_NAME}\n"
            "demo.p12 uses a fixed, public password (see digitize.sign.DEMO_PKCS12_PASSWORD).\n"
            "Delete this folder to get a new demo identity.\n"
        ).encode(),
    )


def ensure_demo_identity(data_dir: Path | None = None) -> Path:
    """The demo identity folder, created once, atomically (create in a temp dir, then rename).

    Two processes racing both build a candidate; the first rename wins, the loser discards its
    own and uses the winner's, so the folder is never half-written.
    """
    folder = demo_identity_dir(data_dir)
    if (folder / "demo.p12").is_file() and (folder / "root.pem").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{DEMO_DIR_NAME}-", dir=folder.parent))  # mode 0700
    try:
        _build_demo_identity(tmp)
        try:
            os.rename(tmp, folder)  # atomic; replaces only an empty directory
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    except OSError as e:
        raise SignerConfigError(
            f"cannot create the demo identity: {e.strerror}", path=folder
        ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if not ((folder / "demo.p12").is_file() and (folder / "root.pem").is_file()):
        raise SignerConfigError(
            "demo identity folder is incomplete", path=folder, hint="delete it to recreate it"
        )
    return folder


def demo_trust_root(data_dir: Path | None = None, *, create: bool = True) -> Path:
    """Path of the demo root certificate (PEM), creating the demo PKI if needed.

    With ``create=False`` a missing demo identity raises ``SignerConfigError`` instead (a
    verifier must not mint a root just to trust it).
    """
    if not create:
        root = demo_identity_dir(data_dir) / "root.pem"
        if not root.is_file():
            raise SignerConfigError("no demo identity on this machine", path=root)
        return root
    return ensure_demo_identity(data_dir) / "root.pem"


# --- back-end material -----------------------------------------------------------------------
class _Backend:
    """What a back-end hands the common signing code: a pyHanko signer and its chain."""

    def __init__(self, signer: Any, cert: Any, chain: list[Any], cleanup: list[Callable[[], Any]]):
        self.signer = signer
        self.cert = cert
        self.chain = chain
        self.cleanup = cleanup


def _load_pkcs12(data: bytes, password: bytes, path: str, prefer_pss: bool) -> _Backend:
    from asn1crypto import keys, x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
    from pyhanko.sign.signers import SimpleSigner
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError:
        # cryptography says "Invalid password or PKCS12 data": do not echo anything else
        raise BadPinError(
            "cannot open the PKCS#12 file: wrong password or damaged file", path=path
        ) from None
    if key is None or cert is None:
        raise SignerConfigError("the PKCS#12 file holds no private key and certificate", path=path)
    key_info = keys.PrivateKeyInfo.load(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signing_cert = x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    chain = [x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in extra or []]

    class LoadedKeySigner(SimpleSigner):
        """pyHanko re-parses the key (with cryptography's slow RSA consistency check) for every
        raw signature, twice per PDF; sign with the key object loaded once instead."""

        def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
            from cryptography.hazmat.primitives.asymmetric import ec, rsa
            from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
            from pyhanko_certvalidator.util import get_pyca_cryptography_hash, process_pss_params

            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
            algo = mechanism.signature_algo
            if algo == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPrivateKey):
                return key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
            if algo == "rsassa_pss" and isinstance(key, rsa.RSAPrivateKey):
                padding, hash_algo = process_pss_params(mechanism["parameters"])
                return key.sign(data, padding, hash_algo)
            if algo == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
                return key.sign(data, ec.ECDSA(get_pyca_cryptography_hash(digest_algorithm)))
            return super().sign_raw(data, digest_algorithm)

    signer = LoadedKeySigner(
        signing_cert=signing_cert,
        signing_key=key_info,
        cert_registry=SimpleCertificateStore.from_certs(chain),
        prefer_pss=prefer_pss,
    )
    return _Backend(signer, signing_cert, chain, [])


async def _open_pkcs12(settings: SigningSettings) -> _Backend:
    if not settings.pkcs12_path:
        raise SignerConfigError("backend pkcs12 needs pkcs12_path")
    path = settings.pkcs12_path
    try:
        data = Path(path).read_bytes()  # read in place, never copied
    except OSError as e:
        raise SignerConfigError(f"cannot read the PKCS#12 file: {e.strerror}", path=path) from None
    password = _read_secret(settings.pkcs12_password_env, "PKCS#12 password")
    assert password is not None
    return _load_pkcs12(data, password.encode(), path, settings.rsa_padding == "pss")


async def _open_demo(data_dir: Path | None, prefer_pss: bool) -> _Backend:
    folder = ensure_demo_identity(data_dir)
    path = folder / "demo.p12"
    return _load_pkcs12(path.read_bytes(), DEMO_PKCS12_PASSWORD, str(path), prefer_pss)


async def _open_pkcs11(settings: SigningSettings) -> _Backend:
    import pkcs11.exceptions as p11e
    from pyhanko.config.pkcs11 import TokenCriteria
    from pyhanko.sign import pkcs11 as p11

    module = settings.pkcs11_module
    key_label = settings.pkcs11_key_label or settings.pkcs11_cert_label
    cert_label = settings.pkcs11_cert_label or settings.pkcs11_key_label
    if not module or not key_label:
        raise SignerConfigError("backend pkcs11 needs pkcs11_module and pkcs11_key_label")
    if not Path(module).is_file():
        raise SignerConfigError("PKCS#11 module not found", path=module)
    pin = _read_secret(settings.pkcs11_pin_env, "token PIN")
    criteria = (
        TokenCriteria(label=settings.pkcs11_token_label) if settings.pkcs11_token_label else None
    )
    try:
        session = p11.open_pkcs11_session(module, token_criteria=criteria, user_pin=pin)
    except (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange) as e:
        raise BadPinError(
            f"the token refused the PIN ({type(e).__name__})",
            path=module,
            hint=f"check {settings.pkcs11_pin_env}; tokens lock after a few wrong PINs",
        ) from None
    except p11e.PinLocked:
        raise BadPinError("the token PIN is locked", path=module) from None
    except p11e.PKCS11Error as e:
        raise SignerConfigError(f"cannot open the token: {type(e).__name__}", path=module) from None
    except Exception as e:  # noqa: BLE001 - pyHanko's "no token matching" and friends
        raise SignerConfigError(f"cannot open the token: {e}", path=module) from None
    finally:
        pin = None  # noqa: F841 - drop the reference early
    signer = p11.PKCS11Signer(
        session,
        key_label=key_label,
        cert_label=cert_label,
        other_certs_to_pull=None,  # the CA chain stored on the token, like CA-issued tokens
        prefer_pss=settings.rsa_padding == "pss",
    )
    try:
        await signer.ensure_objects_loaded()
    except Exception as e:  # noqa: BLE001
        session.close()
        raise SignerConfigError(
            f"key/certificate '{key_label}' not found on the token ({type(e).__name__})",
            path=module,
        ) from None
    cert = signer.signing_cert
    chain = [c for c in signer.cert_registry if c.dump() != cert.dump()]
    return _Backend(signer, cert, chain, [session.close])


async def _open_csc(settings: SigningSettings) -> _Backend:
    import aiohttp
    from pyhanko.sign.signers import csc_signer as csc

    if not settings.csc_url or not settings.csc_credential_id:
        raise SignerConfigError("backend csc needs csc_url and csc_credential_id")
    token = _read_secret(settings.csc_auth_env, "CSC access token", required=False)
    info = csc.CSCServiceSessionInfo(
        service_url=settings.csc_url.rstrip("/"),
        credential_id=settings.csc_credential_id,
        oauth_token=token,
    )
    timeout = aiohttp.ClientTimeout(total=settings.network_timeout_s)
    http = aiohttp.ClientSession(timeout=timeout)
    try:
        cred = await csc.fetch_certs_in_csc_credential(http, info)
    except Exception as e:  # noqa: BLE001 - connection refused, HTTP 4xx, bad JSON …
        await http.close()
        raise SignerConfigError(
            f"cannot read credential '{settings.csc_credential_id}' from the CSC service "
            f"({type(e).__name__})",
            path=settings.csc_url,
        ) from None
    pin_env, otp_env = settings.csc_pin_env, settings.csc_otp_env

    class Authorizer(csc.CSCAuthorizationManager):
        """credentials/authorize with the hashes (SCAL 2: the SAD is bound to them)."""

        async def authorize_signature(self, hash_b64s: list[str]) -> Any:
            req = self.format_csc_auth_request(
                hash_b64s=hash_b64s,
                pin=_read_secret(pin_env, "CSC PIN", required=False),
                otp=_read_secret(otp_env, "CSC OTP", required=False),
            )
            url = self.csc_session_info.endpoint_url("credentials/authorize")
            async with http.post(url, json=req, headers=self.auth_headers) as resp:
                if resp.status in (401, 403):
                    raise BadPinError("the CSC service refused the authorisation", path=url)
                if resp.status >= 400:
                    raise SigningError(f"CSC authorisation failed (HTTP {resp.status})", path=url)
                return self.parse_csc_auth_response(await resp.json())

    signer = csc.CSCSigner(http, Authorizer(info, cred), prefer_pss=settings.rsa_padding == "pss")
    cert = cred.signing_cert
    chain = [c for c in cred.chain if c.dump() != cert.dump()]
    return _Backend(signer, cert, chain, [http.close])


# --- the signer ------------------------------------------------------------------------------
class _LoopThread:
    """A private asyncio loop in a daemon thread: sync callers, one loop for sessions."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="digitize-sign", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


def _find_digitize_error(exc: BaseException) -> DigitizeError | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, DigitizeError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


class PyHankoDigitiserSigner(DigitiserSigner):
    """The one implementation: a back-end's pyHanko ``Signer`` + PAdES/appearance logic."""

    def __init__(
        self,
        settings: SigningSettings,
        backend: _Backend,
        loop: _LoopThread,
        *,
        is_demo: bool,
        extra_trust_roots: list[Any],
    ) -> None:
        self.settings = settings
        self._backend = backend
        self._loop = loop
        self._identity = identity_of(backend.cert, is_demo=is_demo)
        self._tz = ZoneInfo(settings.timezone)
        self._trust_roots = list(extra_trust_roots)
        for path in settings.trust_roots:
            self._trust_roots.extend(_load_cert_file(path))
        self._font = resolve_font(settings.font_path)
        _font_for_stamp(self._font)  # pay the one-off font cut at open, not on the first file
        self._level, self._level_flags = self._choose_level()
        self._revocation_checked_at: float | None = None
        self._revocation_evidence: tuple[RevocationEvidence, ...] = ()
        self._http: Any = None
        self._closed = False

    # -- public ---------------------------------------------------------------------------
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

    def sign_detached(self, data: bytes) -> bytes:
        return self._call(self._sign_detached(data), None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def _cleanup() -> None:
            for fn in reversed(self._backend.cleanup):
                try:
                    r = fn()
                    if asyncio.iscoroutine(r):
                        await r
                except Exception:  # noqa: BLE001, S110 - best effort on shutdown
                    pass
            if self._http is not None:
                await self._http.close()

        try:
            self._loop.run(_cleanup())
        finally:
            self._loop.stop()

    def __enter__(self) -> PyHankoDigitiserSigner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checks (R17, R25) -------------------------------------------------------------------
    def check_certificate(self) -> None:
        """Personal certificate, validity period, revocation: raise when signing must not happen."""
        self._call(self._precheck(force=True), None)

    def _choose_level(self) -> tuple[PadesLevel, list[Flag]]:
        level = self.settings.level
        if level is None:
            if self.settings.tsa_url:
                return PadesLevel.B_T, []
            return PadesLevel.B_B, [
                Flag(
                    code="no_timestamp",
                    severity=Severity.WARNING,
                    message="no time-stamp service configured: signed at PAdES B-B (R23)",
                )
            ]
        if level != PadesLevel.B_B and not self.settings.tsa_url:
            raise SignerConfigError(f"PAdES {level.value} needs tsa_url (a time-stamp service)")
        return level, []

    def _session(self) -> Any:
        import aiohttp

        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.network_timeout_s)
            )
        return self._http

    def _validation_context(self, *, hard_fail: bool) -> Any:
        from pyhanko_certvalidator import ValidationContext
        from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

        roots = list(self._trust_roots) or [c for c in self._backend.chain if _self_signed(c)]
        if not roots:
            raise SignerConfigError(
                "no trust root to check the certificate against",
                hint="set trust_roots (e.g. the national root certificate)",
            )
        return ValidationContext(
            trust_roots=roots,
            other_certs=[c for c in self._backend.chain if not _self_signed(c)],
            allow_fetching=True,
            revocation_mode="hard-fail" if hard_fail else "soft-fail",
            fetcher_backend=AIOHttpFetcherBackend(
                self._session(), per_request_timeout=self.settings.network_timeout_s
            ),
        )

    async def _precheck(self, *, force: bool = False) -> None:
        cert = self._backend.cert
        name = self._identity.full_name
        problem = personal_certificate_problem(cert)
        if problem:
            raise CertificateNotPersonalError(
                f"{problem}: the digitiser must sign with a personal certificate (R17)"
            )
        _check_validity(cert, datetime.now(UTC), name)
        if not self.settings.check_revocation or not _revocation_pointers(cert):
            return
        now = time.monotonic()
        if (
            not force
            and self._revocation_checked_at is not None
            and now - self._revocation_checked_at < self.settings.revocation_recheck_s
        ):
            return
        from pyhanko_certvalidator import CertificateValidator
        from pyhanko_certvalidator.errors import (
            ExpiredError,
            InsufficientRevinfoError,
            PathBuildingError,
            PathValidationError,
            RevokedError,
        )

        context = self._validation_context(hard_fail=True)
        validator = CertificateValidator(
            cert,
            intermediate_certs=self._backend.chain,
            validation_context=context,
        )
        try:
            await validator.async_validate_usage(set())
        except RevokedError as e:
            raise CertificateRevokedError(
                f"certificate of '{name}' is revoked ({_short(e)})", hint="use a valid certificate"
            ) from None
        except ExpiredError:
            raise CertificateExpiredError(
                f"certificate of '{name}' (or its CA) has expired"
            ) from None
        except InsufficientRevinfoError as e:
            raise SigningError(
                f"cannot check whether the certificate of '{name}' is revoked: OCSP/CRL "
                f"unreachable or unusable ({_short(e)})",
                hint="check the network or set check_revocation: false in the profile",
            ) from None
        except PathBuildingError:
            raise SignerConfigError(
                f"certificate of '{name}' does not chain to a configured trust root",
                hint="add the CA root certificate to trust_roots",
            ) from None
        except PathValidationError as e:
            raise SigningError(f"certificate of '{name}' failed validation ({_short(e)})") from None
        self._revocation_checked_at = now
        # R25: keep what proved the certificate unrevoked; it goes into the manifest.
        checked_at = datetime.now(self._tz).replace(microsecond=0)
        self._revocation_evidence = tuple(
            RevocationEvidence(kind=kind, sha256=hashlib.sha256(der).hexdigest(),
                               der_base64=base64.b64encode(der).decode("ascii"),
                               checked_at=checked_at)
            for kind, der in [*(("ocsp", o.dump()) for o in context.ocsps),
                              *(("crl", c.dump()) for c in context.crls)]
        )

    # -- signing ------------------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T], path: Path | None) -> T:
        if self._closed:
            coro.close()
            raise SigningError("the signer is closed")
        try:
            return self._loop.run(coro)
        except DigitizeError:
            raise
        except Exception as e:  # noqa: BLE001 - map pyHanko's failures to our errors
            found = _find_digitize_error(e)
            if found is not None:
                if found.path is None and path is not None:
                    found.path = str(path)
                    found.args = (found.one_line(),)
                raise found from None
            raise SigningError(f"signing failed: {type(e).__name__}: {_short(e)}", path=path) from e

    def _timestamper(self) -> Any:
        from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper

        url = self.settings.tsa_url
        assert url is not None

        class Stamper(HTTPTimeStamper):
            async def async_request_tsa_response(self, req: Any) -> Any:
                try:
                    return await super().async_request_tsa_response(req)
                except Exception as e:  # noqa: BLE001
                    raise TimestampUnavailableError(
                        f"time-stamp service unavailable ({type(e).__name__}: {_short(e)})",
                        path=url,
                        hint="retry later, or choose level B-B in the profile to sign without a time-stamp",
                    ) from None

        return Stamper(url, session=self._session(), timeout=self.settings.network_timeout_s)

    async def _sign_pdf(
        self,
        in_path: Path,
        out_path: Path,
        scan_time: datetime,
        text_boxes_pt: tuple[BBoxPt, ...],
    ) -> SignatureRecord:
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import fields, signers
        from pyhanko.sign.fields import SigSeedSubFilter

        t0 = time.perf_counter()
        await self._precheck()
        flags = list(self._level_flags)
        if self.settings.check_revocation and not _revocation_pointers(self._backend.cert):
            if not self._identity.is_demo:
                flags.append(
                    Flag(
                        code="revocation_not_checkable",
                        severity=Severity.INFO,
                        message="the certificate names no OCSP responder or CRL: revocation not checked",
                    )
                )
        if scan_time.tzinfo is None:
            raise SigningError("scan_time must be timezone-aware (R21)", path=in_path)
        shown = scan_time.astimezone(self._tz).replace(microsecond=0)
        shown_text = shown.isoformat()
        level = self._level
        try:
            data = in_path.read_bytes()
        except OSError as e:
            raise SigningError(f"cannot read: {e.strerror}", path=in_path) from None
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        page_box, rotate = _page_one_box(writer.prev)
        if rotate % 360:
            flags.append(
                Flag(
                    code="stamp_on_rotated_page",
                    severity=Severity.REVIEW,
                    message=f"page 1 has /Rotate {rotate}: the note sits at the unrotated top-left",
                    page=1,
                )
            )
        layout = plan_stamp(
            page_box, self._identity.full_name, shown_text, self._font, text_boxes_pt
        )
        if layout.shrunk:
            flags.append(
                Flag(
                    code="stamp_overlaps_text",
                    severity=Severity.REVIEW,
                    message="the signature note overlaps detected text at the top-left of page 1; "
                    "it was shrunk to 8 pt"
                    + (" and still overlaps" if layout.overlaps_text else "")
                    + " (R20)",
                    page=1,
                )
            )
        lt = level in (PadesLevel.B_LT, PadesLevel.B_LTA)
        vc = (
            self._validation_context(hard_fail=_revocation_pointers(self._backend.cert))
            if lt
            else None
        )
        meta = signers.PdfSignatureMetadata(
            field_name=self.settings.field_name,
            md_algorithm=self.settings.digest_algorithm,
            subfilter=SigSeedSubFilter.PADES,
            reason=self.settings.reason,
            location=self.settings.location,
            name=self._identity.full_name,
            embed_validation_info=lt,
            use_pades_lta=level == PadesLevel.B_LTA,
            validation_context=vc,
            signer_key_usage={"non_repudiation"},
        )
        signed_at = datetime.now(self._tz).replace(microsecond=0)
        pdf_signer = _tz_pdf_signer_class()(
            meta,
            signer=self._backend.signer,
            timestamper=self._timestamper() if level != PadesLevel.B_B else None,
            stamp_style=_stamp_style(layout, self._font),
            new_field_spec=fields.SigFieldSpec(
                sig_field_name=self.settings.field_name,
                on_page=0,
                box=layout.box,  # type: ignore[arg-type]  # points need not be integers
            ),
            system_time=signed_at,
        )
        out = io.BytesIO()
        await pdf_signer.async_sign_pdf(writer, output=out)
        signed = out.getvalue()
        _atomic_write(out_path, signed)
        tsa_time = _signature_timestamp_time(signed) if level != PadesLevel.B_B else None
        mechanism = self._backend.signer.get_signature_mechanism_for_digest(
            self.settings.digest_algorithm
        )
        return SignatureRecord(
            field_name=self.settings.field_name,
            signer=self._identity,
            signed_at=signed_at,
            scan_time_shown=shown,
            pades_level=level,
            digest_algorithm=self.settings.digest_algorithm,
            signature_algorithm=_signature_algorithm_name(mechanism),
            tsa_time=tsa_time.astimezone(self._tz) if tsa_time else None,
            appearance_box_pt=layout.box,
            appearance_shrunk=layout.shrunk,
            revocation_evidence=self._revocation_evidence,
            seconds=round(time.perf_counter() - t0, 3),
            flags=tuple(flags),
        )

    async def _sign_detached(self, data: bytes) -> bytes:
        from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes

        await self._precheck()
        timestamper = self._timestamper() if self._level != PadesLevel.B_B else None
        content_info = await self._backend.signer.async_sign_general_data(
            data,
            self.settings.digest_algorithm,
            detached=True,
            use_cades=True,
            timestamper=timestamper,
            signed_attr_settings=PdfCMSSignedAttributes(
                signing_time=datetime.now(self._tz).replace(microsecond=0)
            ),
        )
        return bytes(content_info.dump())


def _short(e: BaseException) -> str:
    text = str(e).replace("\n", " ").strip()
    return text[:200] or type(e).__name__


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _signature_timestamp_time(signed_pdf: bytes) -> datetime | None:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.generic_cms import extract_tst_data_iter

    reader = PdfFileReader(io.BytesIO(signed_pdf), strict=False)
    sigs = reader.embedded_regular_signatures
    if not sigs:
        return None
    for tst in extract_tst_data_iter(sigs[-1].signer_info, signed=False):
        return tst["encap_content_info"]["content"].parsed["gen_time"].native
    return None


@lru_cache(maxsize=1)
def _tz_pdf_signer_class() -> type:
    """A PdfSigner whose clock reads Asia/Ho_Chi_Minh (defined lazily: pyHanko imports are slow)."""
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


def open_signer(settings: SigningSettings, data_dir: Path | None = None) -> DigitiserSigner:
    """Build the configured back-end; ``demo`` creates a DEMO identity under ``data_dir`` once.

    ``data_dir`` is the application data folder (default: ``$DIGITIZE_DATA_DIR``, else
    platformdirs ``user_data_dir("digitize")``); the demo identity lives in
    ``data_dir/demo-identity``.
    The certificate is checked here (R17 personal, validity, revocation) so a run fails before
    any work is done.
    """
    prefer_pss = settings.rsa_padding == "pss"
    openers: dict[str, Callable[[], Coroutine[Any, Any, _Backend]]] = {
        "demo": lambda: _open_demo(data_dir, prefer_pss),
        "pkcs12": lambda: _open_pkcs12(settings),
        "pkcs11": lambda: _open_pkcs11(settings),
        "csc": lambda: _open_csc(settings),
    }
    loop = _LoopThread()
    try:
        backend = loop.run(openers[settings.backend]())
    except DigitizeError:
        loop.stop()
        raise
    except Exception as e:
        loop.stop()
        raise SignerConfigError(
            f"cannot open the {settings.backend} signer: {type(e).__name__}: {_short(e)}"
        ) from e
    except BaseException:
        loop.stop()
        raise
    extra_roots: list[Any] = []
    if settings.backend == "demo":
        extra_roots = _load_cert_file(demo_trust_root(data_dir))
    try:
        signer = PyHankoDigitiserSigner(
            settings,
            backend,
            loop,
            is_demo=settings.backend == "demo",
            extra_trust_roots=extra_roots,
        )
    except BaseException:

        async def _cleanup() -> None:
            for fn in backend.cleanup:
                r = fn()
                if asyncio.iscoroutine(r):
                    await r

        loop.run(_cleanup())
        loop.stop()
        raise
    try:
        signer.check_certificate()
    except BaseException:
        signer.close()
        raise
    return signer
