"""The check before every signature (R17, R25): a personal certificate, within its validity,
chaining to a configured trust root, and — when ``check_revocation`` and the certificate names
an OCSP responder or CRL distribution point — not revoked.

- Trust roots (S5): ``sign.trust_roots`` plus what the back-end adds (the demo root). A real
  back-end without ``trust_roots`` is refused at open (``SignerConfigError``), unless
  ``trust_key_source_root`` opts into trusting the self-signed root the key source supplies;
  otherwise a PKCS#12 file, a token or a CSC answer could vouch for itself.
- The chain is checked on every pre-check; revocation is fetched (hard-fail) when asked for
  and possible, and re-fetched after ``revocation_recheck_s``. An unreachable responder is
  retried (``sign.network_retries``), then ``SignerUnavailableError`` (retry later).
- The OCSP responses and CRLs that proved the certificate unrevoked are kept (R25): they go
  into the manifest.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from digitize.errors import (
    CertificateExpiredError,
    CertificateRevokedError,
    SignerConfigError,
    SignerUnavailableError,
    SigningError,
)
from digitize.models import RevocationEvidence
from digitize.settings import SigningSettings
from digitize.sign.backends import KeyMaterial
from digitize.sign.certs import (
    check_validity,
    common_name,
    has_revocation_pointers,
    is_self_signed,
    require_personal,
)
from digitize.sign.retry import RetryPolicy, with_retries
from digitize.util import VN_TZ


def short(e: BaseException) -> str:
    """One line of an exception's text, at most 200 characters."""
    text = str(e).replace("\n", " ").strip()
    return text[:200] or type(e).__name__


def require_trust_roots(settings: SigningSettings, backend_roots: list[Any]) -> None:
    """S5: a real back-end needs configured trust roots (or the explicit opt-out)."""
    if settings.trust_roots or backend_roots or settings.trust_key_source_root:
        return
    raise SignerConfigError(
        f"backend {settings.backend} needs sign.trust_roots to check the certificate chain "
        "before signing",
        hint="set trust_roots to the national root (and CA) certificate files, or "
        "trust_key_source_root: true to trust the root the key source supplies",
    )


class CertificateGuard:
    """R17/R25 checks of one signer's certificate, with the evidence they produced."""

    def __init__(
        self,
        material: KeyMaterial,
        trust_roots: list[Any],
        settings: SigningSettings,
        session: Callable[[], Any],
        retry: RetryPolicy,
    ) -> None:
        self._material = material
        self._settings = settings
        self._session = session
        self._retry = retry
        self._roots = list(trust_roots)
        if not self._roots and settings.trust_key_source_root:
            self._roots = [c for c in material.chain if is_self_signed(c)]
        if not self._roots:
            raise SignerConfigError(
                "no trust root to check the certificate against",
                hint="set trust_roots (e.g. the national root certificate)",
            )
        self._checked_at: float | None = None
        self.evidence: tuple[RevocationEvidence, ...] = ()

    @property
    def checks_revocation(self) -> bool:
        return self._settings.check_revocation and has_revocation_pointers(self._material.cert)

    def validation_context(self, *, fetch: bool, hard_fail: bool) -> Any:
        from pyhanko_certvalidator import ValidationContext
        from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

        fetcher = (
            AIOHttpFetcherBackend(
                self._session(), per_request_timeout=self._settings.network_timeout_s
            )
            if fetch
            else None
        )
        return ValidationContext(
            trust_roots=self._roots,
            other_certs=[c for c in self._material.chain if not is_self_signed(c)],
            allow_fetching=fetch,
            revocation_mode="hard-fail" if hard_fail else "soft-fail",
            fetcher_backend=fetcher,
        )

    async def check(self, *, force: bool = False) -> None:
        """Raise the typed error that forbids signing now; a no-op when all is well."""
        cert = self._material.cert
        name = common_name(cert)
        require_personal(cert)
        check_validity(cert, datetime.now(UTC), name)
        now = time.monotonic()
        if (
            not force
            and self._checked_at is not None
            and (
                not self.checks_revocation
                or now - self._checked_at < self._settings.revocation_recheck_s
            )
        ):
            return
        context = await self._validate(name)
        self._checked_at = now
        if self.checks_revocation:
            checked_at = datetime.now(VN_TZ).replace(microsecond=0)
            found = [*(("ocsp", o.dump()) for o in context.ocsps),
                     *(("crl", c.dump()) for c in context.crls)]  # fmt: skip
            self.evidence = tuple(
                RevocationEvidence(kind=kind, sha256=hashlib.sha256(der).hexdigest(),
                                   der_base64=base64.b64encode(der).decode("ascii"),
                                   checked_at=checked_at)
                for kind, der in found
            )  # fmt: skip

    async def _validate(self, name: str) -> Any:
        from pyhanko_certvalidator import CertificateValidator
        from pyhanko_certvalidator.errors import (
            ExpiredError,
            InsufficientRevinfoError,
            PathBuildingError,
            PathValidationError,
            RevokedError,
        )

        revocation = self.checks_revocation
        used: list[Any] = []

        async def attempt() -> None:
            context = self.validation_context(fetch=revocation, hard_fail=revocation)
            used.append(context)
            validator = CertificateValidator(
                self._material.cert,
                intermediate_certs=self._material.chain,
                validation_context=context,
            )
            await validator.async_validate_usage(set())

        try:
            await with_retries(
                attempt, self._retry, lambda e: isinstance(e, InsufficientRevinfoError)
            )
        except RevokedError as e:
            raise CertificateRevokedError(
                f"certificate of '{name}' is revoked ({short(e)})", hint="use a valid certificate"
            ) from None
        except ExpiredError:
            raise CertificateExpiredError(
                f"certificate of '{name}' (or its CA) has expired"
            ) from None
        except InsufficientRevinfoError as e:
            raise SignerUnavailableError(
                f"cannot check whether the certificate of '{name}' is revoked: OCSP/CRL "
                f"unreachable or unusable ({short(e)})",
                hint="retry later; check the network, or set check_revocation: false",
            ) from None
        except PathBuildingError:
            raise SignerConfigError(
                f"certificate of '{name}' does not chain to a configured trust root",
                hint="add the CA root certificate to trust_roots",
            ) from None
        except PathValidationError as e:
            raise SigningError(f"certificate of '{name}' failed validation ({short(e)})") from None
        return used[-1]
