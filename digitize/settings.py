"""Settings of every stage, in one light module (pydantic only).

A profile (``digitize.profiles``) composes these; the stage modules import their own settings
from here. Keeping them apart from the stage code means loading a profile never imports
OpenCV, pikepdf, tesseract or pyHanko, and a setting is still defined once. Every field has a
default, so an empty profile is valid.
"""

from __future__ import annotations

import string
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from digitize.models import FrozenModel, PadesLevel


class IngestSettings(FrozenModel):
    min_dpi: float = 200.0  # R10: refuse pages below this effective dpi
    allow_grayscale: bool = False  # R11: warn on gray/bilevel pages unless allowed
    blank_pages: Literal["keep", "drop"] = "keep"  # duplex backs: flagged either way
    # Per page; above this: TooLargeError. A3 at 600 dpi is 70 Mpx, the largest real capture;
    # Pillow's own bomb limit is set to the same number (its hard error comes at twice it).
    max_pixels: int = 80_000_000
    max_file_bytes: int = 2 * 1024**3
    pdf_with_text: Literal["refuse", "rescan"] = "refuse"  # already-signed / text PDFs
    max_pages_per_file: int = 5000  # a PDF/TIFF claiming more pages is refused (TooLargeError)
    detect_near_duplicates: bool = True
    # Decoded size of one PDF content stream (page or form). A scanner page draws one image in
    # a few dozen bytes; the densest text-layer page of the real scans is under 200 kB.
    max_content_stream_bytes: int = Field(16 * 1024**2, gt=0)
    # One page's decode (an external jbig2dec run; a page in the isolated runner).
    decode_timeout_s: float = Field(120.0, gt=0)
    # ingest_dossier_isolated: the decoding child's address-space limit and whole-run deadline.
    isolated_memory_mb: int = Field(4096, ge=512)
    isolated_timeout_s: float = Field(1800.0, gt=0)


class CleanSettings(FrozenModel):
    orientation: bool = True
    deskew: bool = True
    min_skew_deg: float = 0.05  # below this the pixels are not resampled
    max_skew_deg: float = 15.0
    min_orientation_confidence: float = 0.5
    crop_background: bool = False  # remove scanner background outside the paper edge (R7)
    min_skew_confidence: float = 0.3  # below this the skew estimate is not applied
    # The OCR engine (its orientation detector, and a reading of a text strip both ways up)
    # votes on up vs down when the line-shape cue alone is not sure, or the page is degraded.
    engine_votes: bool = True

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        # Profiles written before the engine seam named the vote after the engine.
        if isinstance(data, dict) and "tesseract_fallback" in data:
            data = dict(data)
            data.setdefault("engine_votes", data.pop("tesseract_fallback"))
        return data


class TesseractSettings(FrozenModel):
    """Options of the tesseract engine (``ocr.engine: tesseract``)."""

    tessdata_dir: str | None = None  # None: Debian's tessdata
    page_segmentation_mode: int = 3  # PSM; 3 (auto) measured best with our column split


class OcrSettings(FrozenModel):
    engine: str = "tesseract"  # a registered engine (digitize.ocr.engine)
    language: str = "vie"
    tesseract: TesseractSettings = TesseractSettings()
    engine_options: dict[str, str | int | float | bool] = {}  # options of another engine
    # Confidences are 0..100 (every engine reports on that scale).
    low_word_confidence: float = 60.0
    min_page_confidence: float = 70.0  # below: page flagged for review (R15)
    max_low_confidence_share: float = 0.25
    strict: bool = False  # True: an OCR failure aborts the dossier instead of flagging the page
    keep_hocr: bool = True
    drop_red_ink: bool = True  # colour pages: read the red channel so red seals fade (OCR only)
    # Restoration of the OCR input, decided per page from its measurements (OCR input only;
    # the stored image stays the faithful scan): see digitize.restore.
    restore: bool = True
    # A page that reads poorly is read again from another restoration; the better reading of
    # each line is kept (confidence and Vietnamese syllable validity).
    second_reading: bool = True
    remove_rules: bool = True  # erase long straight rules (stamp frames, table borders) for OCR
    rule_min_length_in: float = 0.3  # a straight ink run at least this long is a rule, not text
    page_label: str | None = None  # names the page in errors and flags (e.g. "scan.tif p3")

    @model_validator(mode="before")
    @classmethod
    def _legacy_keys(cls, data: Any) -> Any:
        # Profiles written before the engine seam kept tesseract's options at the top level.
        if not isinstance(data, dict):
            return data
        data = dict(data)
        moved = {k: data.pop(k) for k in ("tessdata_dir", "page_segmentation_mode") if k in data}
        if moved:
            tesseract = data.get("tesseract") or {}
            if isinstance(tesseract, TesseractSettings):
                tesseract = tesseract.model_dump()
            data["tesseract"] = {**moved, **dict(tesseract)}
        if "retry_binarised" in data:
            data.setdefault("second_reading", data.pop("retry_binarised"))
        return data


# --- the paper-type catalogue (TT 01/2023 Art. 9-10, R37-R38) --------------------------------
FieldKind = Literal["text", "id", "date", "year", "sex", "paragraph", "place", "name"]


class FieldTemplate(FrozenModel):
    """One business field of a paper type and how the form prints it.

    The value follows one of ``labels`` on the same line (after the colon) or, when nothing
    follows, on the next line; ``column`` names the heading of a table column the value sits
    under (forms with one column per person); ``between`` limits the search to the lines
    after the first phrase and before the second (a mother's ID after "… tên người mẹ");
    ``choices`` is a closed list of printed values (the value becomes the choice);
    ``pattern`` a regular expression the value is searched with when no label is given."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    labels: tuple[str, ...] = ()
    kind: FieldKind = "text"
    key: bool = False  # a business field worth extracting for reuse (the papers' bold fields)
    column: str | None = None
    between: tuple[str | None, str | None] = (None, None)
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    region: Literal["page", "signature"] = "page"
    from_header: str | None = None  # filled from this ND 30 header field (number_notation, …)
    internal: bool = False  # read only to fill an Art. 9 value, not listed among the fields
    # The field another layout of the same paper prints instead (the 2024 card's place of
    # birth registration for the 2021 card's place of origin): when that one is read, this
    # one's absence is no doubt.
    instead_of: str | None = None


class PaperRecognition(FrozenModel):
    """How a paper of the type is recognised: its title phrases (matched without diacritics,
    fuzzily, on the first page unless ``pages`` says otherwise) and other printed phrases that
    only this type carries (labels, section headings); ``layout`` ``nd30`` reads the
    administrative header (organ, ``Số:``, date) besides the field template."""

    titles: tuple[str, ...] = ()
    # The titles that are the paper's whole printed name (the others recognise it from a
    # part: "QUYỀN SỬ DỤNG ĐẤT"); empty: every title is a whole name.
    names: tuple[str, ...] = ()
    cues: tuple[str, ...] = ()
    pages: Literal["first", "any"] = "first"
    layout: Literal["form", "nd30"] = "form"
    fallback: bool = False  # considered only when no other type is recognised


class Art9Sources(FrozenModel):
    """Which template field (or ``header.X`` for an ND 30 header field, ``title`` for the
    printed title) fills each Art. 9 value of the type; None: the paper has no such value."""

    owner_id: str | None = None
    date_of_birth: str | None = None  # the owner's date of birth on the paper (R39 soft check)
    owner_name: str | None = None
    number_notation: str | None = None
    issued_date: str | None = None
    issuing_body: str | None = None
    summary: str | None = None
    valid_until: str | None = None
    validity_scope: str | None = None


class PaperType(FrozenModel):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")  # stable name (to_khai_khai_sinh, …)
    # Opaque code from the province's or the national TTHC catalogue (R38): never invented;
    # None until the office fills it in, and then no result code can be assigned.
    code: str | None = Field(default=None, max_length=60)
    name: str
    aliases: tuple[str, ...] = ()
    owner_kind: Literal["personal", "organisation"] = "personal"
    recognition: PaperRecognition = Field(default_factory=PaperRecognition)
    fields: tuple[FieldTemplate, ...] = ()
    art9: Art9Sources = Field(default_factory=Art9Sources)


class CatalogueSettings(FrozenModel):
    """The paper types an office meets. The built-in starter catalogue (``starter``) covers the
    common counter papers with their codes left empty; ``codes`` fills a type's code (the
    office's own list), ``types`` adds types or replaces a starter type of the same key."""

    starter: bool = True
    codes: dict[str, str | None] = Field(default_factory=dict)
    types: tuple[PaperType, ...] = ()
    min_confidence: float = Field(0.7, ge=0, le=1)  # below: type "other" and a review flag
    min_margin: float = Field(0.15, ge=0, le=1)  # the best type must lead the next by this
    # R38: the digitisation-result code; placeholders owner_id, procedure_code,
    # paper_type_code, dossier_code, ordinal and n (running number per code prefix).
    result_code_template: str = "{owner_id}.{procedure_code}.{paper_type_code}.{n:02d}"

    @field_validator("result_code_template")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        known = {"owner_id", "procedure_code", "paper_type_code", "dossier_code", "ordinal", "n"}
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        except ValueError as exc:
            raise ValueError(f"not a format template: {exc}") from None
        unknown = names - known
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; known: {sorted(known)}")
        return template


class ExtractSettings(FrozenModel):
    enabled: bool = True
    min_confidence: float = 0.6  # below: field flagged for review
    min_number_confidence: float = 0.75  # digits read less surely than this look handwritten
    phrase_match: float = 0.8  # fuzzy ratio (0..1) for fixed phrases such as the motto
    # Printed header text (organ, trích yếu) reads at 90+ on a clean scan; a word under this
    # is a stamp, a seal or a misread diacritic: the field is flagged, not trusted.
    min_text_word_confidence: float = 0.8
    check_syllables: bool = True  # a word that is no Vietnamese syllable marks a misread field
    catalogue: CatalogueSettings = Field(default_factory=CatalogueSettings)
    # A value read with a word under this confidence (0..1) is not trusted as read (Art. 9):
    # printed values read at 93-97, a slipped diacritic shows as 85-90.
    min_value_confidence: float = Field(0.9, ge=0, le=1)
    # A personal ID read once, not confirmed by a second reading (the card's machine-readable
    # zone, another paper of the dossier), is trusted only with every digit this sure.
    min_id_confidence: float = Field(0.95, ge=0, le=1)


class PdfaSettings(FrozenModel):
    jpeg_quality: int = Field(90, ge=85, le=100)  # when re-encoding is needed (R14 floor: 85)
    # Gray pixels are stored lossless (Flate) when that costs at most this many times the JPEG
    # size; 0 disables the lossless attempt (always JPEG).
    lossless_gray_max_ratio: float = Field(1.25, ge=0.0)
    # Wrap passed-through JPEG data in Flate ([/FlateDecode /DCTDecode], as OCRmyPDF does) when
    # that saves ≥ 1 %: still lossless (one Flate decode gives the exact JPEG bytes) but no
    # longer the scan bytes verbatim in the file, so off by default.
    jpeg_flate_wrap: bool = False


class Pkcs12Settings(FrozenModel):
    """``sign.pkcs12``: a PKCS#12 (.p12/.pfx) file read in place, never copied."""

    path: str | None = None
    password_env: str = "DIGITIZE_PKCS12_PASSWORD"  # or a prompt; never argv or files


class Pkcs11Settings(FrozenModel):
    """``sign.pkcs11``: a USB token through its PKCS#11 module (the CA's driver)."""

    module: str | None = None
    token_label: str | None = None  # None: the only token present
    key_label: str | None = None
    cert_label: str | None = None  # None: same as key_label
    pin_env: str = "DIGITIZE_PKCS11_PIN"


class CscSettings(FrozenModel):
    """``sign.csc``: a remote signing service speaking the Cloud Signature Consortium API v1.

    ``url`` must be https (loopback excepted). The OTP of ``otp_env`` is a one-time password: it
    serves one authorisation (each signature is authorised on its own); a station that signs
    several documents needs a terminal (a prompt per authorisation) or a service that
    authorises without OTP.
    """

    url: str | None = None
    credential_id: str | None = None
    auth_env: str = "DIGITIZE_CSC_AUTH"  # OAuth2 bearer token (optional)
    pin_env: str = "DIGITIZE_CSC_PIN"  # credential PIN for credentials/authorize (optional)
    otp_env: str = "DIGITIZE_CSC_OTP"  # one-time password (optional; one authorisation)


# Flat keys of profiles written before the per-back-end blocks, and where they live now.
_LEGACY_SIGN_KEYS = {
    "pkcs12_path": ("pkcs12", "path"),
    "pkcs12_password_env": ("pkcs12", "password_env"),
    "pkcs11_module": ("pkcs11", "module"),
    "pkcs11_token_label": ("pkcs11", "token_label"),
    "pkcs11_key_label": ("pkcs11", "key_label"),
    "pkcs11_cert_label": ("pkcs11", "cert_label"),
    "pkcs11_pin_env": ("pkcs11", "pin_env"),
    "csc_url": ("csc", "url"),
    "csc_credential_id": ("csc", "credential_id"),
    "csc_auth_env": ("csc", "auth_env"),
    "csc_pin_env": ("csc", "pin_env"),
    "csc_otp_env": ("csc", "otp_env"),
}
_VIETNAM_ZONE_NAMES = {"Asia/Ho_Chi_Minh", "Asia/Saigon", "+07:00", "UTC+07:00", "UTC+7"}


class SigningSettings(FrozenModel):
    """``sign:`` in a profile. ``backend`` names a signer back-end of the ``digitize.signers``
    registry (built in: ``demo``, ``pkcs12``, ``pkcs11``, ``csc``); each built-in has its own
    block (``pkcs12:``, ``pkcs11:``, ``csc:``); a back-end from another package reads its
    settings from ``backend_options``. The flat keys of older profiles (``pkcs11_module`` …)
    are still accepted and moved into their block.
    """

    backend: str = Field("demo", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    pkcs12: Pkcs12Settings = Field(default_factory=Pkcs12Settings)
    pkcs11: Pkcs11Settings = Field(default_factory=Pkcs11Settings)
    csc: CscSettings = Field(default_factory=CscSettings)
    backend_options: dict[str, Any] = Field(default_factory=dict)
    # PAdES
    level: PadesLevel | None = None  # None: B-T when a TSA is configured, else B-B (+ warning)
    tsa_url: str | None = None
    # PEM/DER files the certificate must chain to before signing (R25). Required for every
    # back-end but demo: without them the check would trust whatever root the key file, token
    # or remote service hands over.
    trust_roots: tuple[str, ...] = ()
    # Opt out of the rule above: trust the self-signed root the key source supplies. Only for
    # closed set-ups where the key source itself is trusted.
    trust_key_source_root: bool = False
    digest_algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"
    rsa_padding: Literal["pkcs1v15", "pss"] = "pkcs1v15"
    check_revocation: bool = True  # R25, before signing
    # The visible note (R18–R21): scan time in Vietnam time, as a person reads it
    # ("11:34 ngày 30/11/2026") or ISO 8601 ("2026-11-30T11:34:05+07:00").
    time_format: Literal["vn", "iso"] = "vn"
    # OpenType font with Vietnamese coverage; None: a serif found via fontconfig (R16)
    font_path: str | None = None
    field_name: str = "ChuKyNguoiSoHoa"
    reason: str = "Số hóa hồ sơ (Thông tư 01/2023/TT-VPCP, Điều 8)"
    location: str | None = None
    network_timeout_s: float = Field(10.0, gt=0)  # per request: TSA, OCSP/CRL, CSC
    # Transient network failures (connection refused, timeout, HTTP 5xx) of the TSA, OCSP/CRL
    # responders and the CSC service are retried this many times, waiting backoff, 2×backoff …
    # A refused PIN or password is never retried (tokens lock after a few wrong PINs).
    network_retries: int = Field(2, ge=0, le=10)
    network_retry_backoff_s: float = Field(0.5, ge=0)
    revocation_recheck_s: float = 600.0  # a long batch re-checks the certificate this often

    @model_validator(mode="before")
    @classmethod
    def _accept_flat_keys(cls, data: Any) -> Any:
        """Move the flat keys of older profiles into their back-end block."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for flat, (block, key) in _LEGACY_SIGN_KEYS.items():
            if flat in data:
                value = data.pop(flat)
                current = data.get(block)
                if isinstance(current, BaseModel):
                    current = current.model_dump()
                data[block] = {**(current or {}), key: value}
        zone = data.pop("timezone", None)
        if zone is not None and str(zone) not in _VIETNAM_ZONE_NAMES:
            raise ValueError(
                f"timezone {zone!r}: the note and the signing time are in Vietnam time "
                "(Asia/Ho_Chi_Minh); the setting is no longer needed"
            )
        return data


class BundleSettings(FrozenModel):
    zip: bool = False  # also write one .zip (fixed order, no absolute or .. paths)
    keep_masters: bool = False  # R14: the scan files travel in the bundle, hashed, unsigned


class PipelineSettings(FrozenModel):
    # Page workers, the one setting for every command (run, batch, watch): batch and watch
    # share one pool of this many across their dossiers. 0 = number of usable cores.
    workers: int = Field(default=0, ge=0)
    strict: bool = False  # True: any page, document or field flagged for review fails the dossier
    # Decode and QA the scans at ingest in a short-lived child process (deadlines, memory cap,
    # no secrets in its environment), never in the process that holds the signer's key.
    isolate_ingest: bool = True
    # Deadlines (a hostile page can hang a decoder or tesseract; a stuck token can hang signing).
    # A page: from the moment a worker takes it to its result; past it the page is refused
    # (PageTimeoutError, 104) and the workers are killed and replaced. A real page takes 1-10 s.
    # Enforced whenever pages run in worker processes (always under batch and watch).
    page_timeout_s: float = Field(300.0, gt=0)
    # A dossier: from the end of ingest to its bundle, this base plus the per-page allowance
    # (DossierTimeoutError, 105). Generous: a real dossier needs a few seconds per page.
    dossier_timeout_s: float = Field(1800.0, gt=0)
    dossier_timeout_per_page_s: float = Field(120.0, ge=0)


class BatchSettings(FrozenModel):
    """``digitize batch`` (``Profile.batch``); page workers are ``pipeline.workers``."""

    dossier_concurrency: int = Field(default=2, ge=1, le=8)  # dossiers in flight over the pool
    verify_existing: bool = True  # resume: an existing bundle must verify to be skipped


class WatchSettings(FrozenModel):
    """``digitize watch`` (``Profile.watch``); page workers are ``pipeline.workers``."""

    quiet_seconds: float = Field(default=30.0, gt=0)  # no change this long = complete
    markers: tuple[str, ...] = ("READY", ".ready")  # written last by the station
    marker_settle_seconds: float = Field(default=2.0, ge=0)
    require_marker: bool = False  # ignore the quiet-period rule
    rescan_seconds: float = Field(default=60.0, gt=0)  # full rescan: the safety net
    poll: bool = False  # stat polling instead of inotify (CIFS/NFS deliver no events)
    poll_interval_ms: int = Field(default=1000, ge=100)
    tick_ms: int = Field(default=1000, ge=50)  # how often pending dossiers are looked at
    done_dir: str = "done"  # relative to INBOX, or absolute on the same file system
    quarantine_dir: str = "quarantine"
    duplicate_dir: str = "duplicate"
    verify: bool = True  # verify every new bundle before the input moves to done/
    # Poison pill: a dossier whose processing the watcher did not survive this many times
    # (kill -9, out of memory, a crash) is quarantined at start-up before anything else runs.
    crash_limit: int = Field(default=2, ge=1)
    # Retry later (time-stamp, revocation or signing service unreachable, token missing, disk
    # full): no new dossier is taken; the station is checked again after retry_backoff_s,
    # doubling up to retry_backoff_max_s. A dossier that keeps failing that way although the
    # station's own check passes is quarantined after station_retry_limit attempts.
    retry_backoff_s: float = Field(default=10.0, gt=0)
    retry_backoff_max_s: float = Field(default=600.0, gt=0)
    station_retry_limit: int = Field(default=3, ge=1)
    # One watcher per inbox, also across machines sharing it: INBOX/.digitize/lease.json holds
    # host, pid and a heartbeat; another host's lease younger than lease_expiry_s is respected.
    lease_heartbeat_s: float = Field(default=15.0, gt=0)
    lease_expiry_s: float = Field(default=120.0, gt=0)


class Rate(FrozenModel):
    """One unit price of the settlement and the text that sets it (a payment cites its basis).

    ``amount`` is in đồng (VND) per unit and may carry fractions of a đồng (norms are often
    computed to decimals); amounts are rounded once per settlement line (``digitize.stats``).
    """

    amount: Decimal = Field(ge=0, max_digits=18, decimal_places=4)
    source: str = Field(min_length=1, max_length=500)  # e.g. "QĐ 123/QĐ-UBND, Phụ lục II, mục 3"


class StatsRates(FrozenModel):
    """Unit rates of ``digitize stats`` (``Profile.stats.rates``). Nothing is built in: a rate
    that is not configured leaves its amount empty and the settlement says so."""

    currency: Literal["VND"] = "VND"
    # What a per-page rate is paid on: every captured image (a page with a note slip is
    # captured twice, R6) or each physical page once.
    page_basis: Literal["images", "physical"] = "images"
    per_dossier: Rate | None = None
    a4: Rate | None = None
    a3: Rate | None = None
    other: Rate | None = None  # any page that is neither A4 nor A3
    # A re-digitised dossier (same dossier code, later bundle) is paid again only when true.
    pay_redone: bool = False


class StatsSettings(FrozenModel):
    """``digitize stats`` (``Profile.stats``)."""

    rates: StatsRates = Field(default_factory=StatsRates)
    # A page is A4/A3 when both sides are within this share of 210×297 / 297×420 mm (scanners
    # crop a few millimetres; Letter, 216×279 mm, falls outside at 5 %).
    paper_tolerance: float = Field(default=0.05, gt=0, le=0.2)
    index_path: str | None = None  # None: <user data dir>/stats-index.sqlite
    workers: int = Field(default=0, ge=0)  # verifying processes on a first run; 0 = cores


class HubSettings(FrozenModel):
    """``hub:`` in a profile: workers on several machines over Celery + Redis
    (``digitize.hub``). Times in seconds."""

    # The Redis transport hands an unacknowledged message to another worker this long after
    # it was delivered (a dead worker's dossier comes back then). Longer than the usual
    # dossier keeps duplicates rare; a duplicate delivery is deferred by the lease anyway.
    visibility_timeout_s: float = Field(3600.0, gt=0)
    restore_interval_s: float = Field(10.0, gt=0)  # how often workers look for such messages
    lease_ttl_s: float = Field(60.0, gt=0)  # a dossier's lease dies this long after its holder
    defer_s: float = Field(5.0, gt=0)  # a delivery finding the lease held is retried after this
    max_attempts: int = Field(3, ge=1)  # per dossier content: attempts that died, or retries
    retry_backoff_s: float = Field(30.0, ge=0)  # retryable station faults: 30 s, 60 s, …
    page_window: int = Field(16, ge=1)  # pages of one dossier in flight on the hub at once
    # A page no worker has started this long after it was sent is sent once more; after
    # twice this it fails its dossier (retryable): a lost message never stalls a dossier.
    # (A page that started and hangs is pipeline.page_timeout_s's business.)
    page_not_started_s: float = Field(3600.0, gt=0)
    # How often workers look for dossier and page messages the broker lost (a worker killed,
    # or Redis stopped, in the instant a message moves from its queue to "unacknowledged"):
    # one absent at two such checks is sent again (``digitize.hub.lost``).
    lost_check_s: float = Field(30.0, gt=0)
    inline_image_max_bytes: int = Field(8 * 1024**2, ge=0)  # larger page images: spool file
    abandon_after_s: float = Field(60.0, ge=0)  # after SIGTERM, give a dossier this long
    result_expires_s: float = Field(7 * 24 * 3600.0, gt=0)  # job records and results kept
    broker_timeout_s: float = Field(10.0, gt=0)  # one connection attempt / one command
    # --sign-at station: the digitiser's certificate (PEM) the notes are drawn for, when the
    # job does not bring one (``digitize submit --signer-cert``).
    signer_cert: str | None = None
