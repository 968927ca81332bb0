"""Digitiser signatures (R17–R27). OWNED BY THE SIGNING WORK; contract below is fixed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from pathlib import Path
from typing import Literal

from digitize.models import DigitiserIdentity, FrozenModel, PadesLevel, SignatureRecord

BBoxPt = tuple[float, float, float, float]


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
    csc_auth_env: str = "DIGITIZE_CSC_AUTH"
    # PAdES
    level: PadesLevel | None = None  # None: B-T when a TSA is configured, else B-B (+ warning)
    tsa_url: str | None = None
    trust_roots: tuple[str, ...] = ()  # PEM/DER files; the demo root is added for the demo backend
    digest_algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"
    rsa_padding: Literal["pkcs1v15", "pss"] = "pkcs1v15"
    check_revocation: bool = True  # R25, before signing
    timezone: str = "Asia/Ho_Chi_Minh"
    font_path: str | None = None  # OpenType font with Vietnamese coverage; None: found via fontconfig


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


def open_signer(settings: SigningSettings, data_dir: Path | None = None) -> DigitiserSigner:
    """Build the configured back-end; ``demo`` creates a DEMO identity under ``data_dir`` once."""
    raise NotImplementedError


def demo_trust_root(data_dir: Path | None = None) -> Path:
    """Path of the demo root certificate (PEM), creating the demo PKI if needed."""
    raise NotImplementedError
