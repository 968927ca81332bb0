"""Settings of every stage, in one light module (pydantic only).

A profile (``digitize.profiles``) composes these; the stage modules import their own settings
from here. Keeping them apart from the stage code means loading a profile never imports
OpenCV, pikepdf, tesseract or pyHanko, and a setting is still defined once. Every field has a
default, so an empty profile is valid.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from digitize.models import FrozenModel, PadesLevel


class IngestSettings(FrozenModel):
    min_dpi: float = 200.0  # R10: refuse pages below this effective dpi
    allow_grayscale: bool = False  # R11: warn on gray/bilevel pages unless allowed
    blank_pages: Literal["keep", "drop"] = "keep"  # duplex backs: flagged either way
    max_pixels: int = 150_000_000  # per page; above this: TooLargeError (decompression bombs)
    max_file_bytes: int = 2 * 1024**3
    pdf_with_text: Literal["refuse", "rescan"] = "refuse"  # already-signed / text PDFs
    max_pages_per_file: int = 5000  # a PDF/TIFF claiming more pages is refused (TooLargeError)
    detect_near_duplicates: bool = True


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


class ExtractSettings(FrozenModel):
    enabled: bool = True
    min_confidence: float = 0.6  # below: field flagged for review
    min_number_confidence: float = 0.75  # digits read less surely than this look handwritten
    phrase_match: float = 0.8  # fuzzy ratio (0..1) for fixed phrases such as the motto
    # Printed header text (organ, trích yếu) reads at 90+ on a clean scan; a word under this
    # is a stamp, a seal or a misread diacritic: the field is flagged, not trusted.
    min_text_word_confidence: float = 0.8
    check_syllables: bool = True  # a word that is no Vietnamese syllable marks a misread field


class PdfaSettings(FrozenModel):
    jpeg_quality: int = Field(90, ge=85, le=100)  # when re-encoding is needed (R14 floor: 85)
    # Gray pixels are stored lossless (Flate) when that costs at most this many times the JPEG
    # size; 0 disables the lossless attempt (always JPEG).
    lossless_gray_max_ratio: float = Field(1.25, ge=0.0)
    # Wrap passed-through JPEG data in Flate ([/FlateDecode /DCTDecode], as OCRmyPDF does) when
    # that saves ≥ 1 %: still lossless (one Flate decode gives the exact JPEG bytes) but no
    # longer the scan bytes verbatim in the file, so off by default.
    jpeg_flate_wrap: bool = False


class SigningSettings(FrozenModel):
    backend: Literal["demo", "pkcs12", "pkcs11", "csc"] = "demo"
    # pkcs12: the password comes from the env var named here, or a prompt; never argv/files.
    pkcs12_path: str | None = None
    pkcs12_password_env: str = "DIGITIZE_PKCS12_PASSWORD"
    # pkcs11 (USB token)
    pkcs11_module: str | None = None
    pkcs11_token_label: str | None = None
    pkcs11_key_label: str | None = None
    pkcs11_cert_label: str | None = None
    pkcs11_pin_env: str = "DIGITIZE_PKCS11_PIN"
    # CSC remote signing
    csc_url: str | None = None
    csc_credential_id: str | None = None
    csc_auth_env: str = "DIGITIZE_CSC_AUTH"  # OAuth2 bearer token (optional)
    csc_pin_env: str = "DIGITIZE_CSC_PIN"  # credential PIN for credentials/authorize (optional)
    csc_otp_env: str = "DIGITIZE_CSC_OTP"  # one-time password (optional)
    # PAdES
    level: PadesLevel | None = None  # None: B-T when a TSA is configured, else B-B (+ warning)
    tsa_url: str | None = None
    trust_roots: tuple[str, ...] = ()  # PEM/DER files; the demo root is added for the demo backend
    digest_algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"
    rsa_padding: Literal["pkcs1v15", "pss"] = "pkcs1v15"
    check_revocation: bool = True  # R25, before signing
    timezone: str = "Asia/Ho_Chi_Minh"
    font_path: str | None = (
        None  # OpenType font with Vietnamese coverage; None: found via fontconfig
    )
    field_name: str = "ChuKyNguoiSoHoa"
    reason: str = "Số hóa hồ sơ (Thông tư 01/2023/TT-VPCP, Điều 8)"
    location: str | None = None
    network_timeout_s: float = 10.0
    revocation_recheck_s: float = 600.0  # a long batch re-checks the certificate this often


class BundleSettings(FrozenModel):
    zip: bool = False  # also write one .zip (fixed order, no absolute or .. paths)
    keep_masters: bool = False  # R14: the scan files travel in the bundle, hashed, unsigned


class PipelineSettings(FrozenModel):
    workers: int = 0  # page workers; 0 = number of usable cores
    strict: bool = False  # True: any page flagged for review fails the dossier


class BatchSettings(FrozenModel):
    """``digitize batch`` (``Profile.batch``)."""

    workers: int = 0  # page workers shared by the batch; 0 = number of usable cores
    dossier_concurrency: int = Field(default=2, ge=1, le=8)  # dossiers in flight over the pool
    verify_existing: bool = True  # resume: an existing bundle must verify to be skipped


class WatchSettings(FrozenModel):
    """``digitize watch`` (``Profile.watch``)."""

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
    workers: int = 0  # page workers; 0 = number of usable cores
    verify: bool = True  # verify every new bundle before the input moves to done/
