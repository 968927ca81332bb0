"""``csc``: a remote signing service speaking the Cloud Signature Consortium API v1 (SCAL 2:
each signature is authorised for its own hash with ``credentials/authorize``).

- ``sign.csc.url`` must be ``https://`` — the bearer token, PIN and OTP travel in the requests.
  Plain ``http://`` is accepted only on the loopback interface (127.0.0.1, ::1, localhost).
- The bearer token, the PIN and an OTP are read at open (so they leave the environment
  before anything else starts). The OTP is one-time: it serves the first authorisation only;
  later ones prompt on a terminal, and without one are sent without OTP (a service that
  requires it refuses: ``BadPinError``).
- Unreachable service, timeouts, HTTP 5xx/429: retried (``sign.network_retries``), then
  ``SignerUnavailableError`` (retry later). HTTP 401/403 on authorisation: ``BadPinError``,
  never retried.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

from digitize.errors import (
    BadPinError,
    DigitizeError,
    SignerConfigError,
    SignerUnavailableError,
    SigningError,
)
from digitize.sign.backends import KeyMaterial, OpenContext, SignerBackend
from digitize.sign.retry import RetryPolicy, TransientHttpError, is_transient, with_retries
from digitize.sign.secrets import read_secret

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


def check_csc_url(url: str) -> str:
    """``url`` without a trailing slash, if https (or http on loopback); else SignerConfigError."""
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in ("https", "http"):
        raise SignerConfigError("sign.csc.url is not an http(s) URL", path=url)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise SignerConfigError(
            "sign.csc.url must use https: the access token, PIN and OTP would travel in clear",
            path=url,
            hint="use the service's https:// address (http is allowed on 127.0.0.1 only)",
        )
    return url.rstrip("/")


def _status_error(status: int, url: str, what: str) -> Exception:
    if status >= 500 or status == 429:
        return TransientHttpError(status, url)
    return SigningError(f"CSC {what} failed (HTTP {status})", path=url)


def _unavailable(what: str, url: str, exc: BaseException) -> SignerUnavailableError:
    return SignerUnavailableError(
        f"the CSC service did not answer the {what} ({type(exc).__name__}: {exc})"[:300],
        path=url,
        hint="retry later",
    )


class CscBackend(SignerBackend):
    name = "csc"

    async def open(self, ctx: OpenContext) -> KeyMaterial:
        import aiohttp
        from pyhanko.sign.signers import csc_signer as csc

        options = ctx.settings.csc
        if not options.url or not options.credential_id:
            raise SignerConfigError("backend csc needs sign.csc.url and sign.csc.credential_id")
        url = check_csc_url(options.url)
        token = read_secret(options.auth_env, "CSC access token", required=False)
        pin = read_secret(options.pin_env, "CSC PIN", required=False)
        first_otp = read_secret(options.otp_env, "CSC OTP", required=False)
        info = csc.CSCServiceSessionInfo(
            service_url=url, credential_id=options.credential_id, oauth_token=token
        )
        timeout = aiohttp.ClientTimeout(total=ctx.settings.network_timeout_s)
        http = aiohttp.ClientSession(timeout=timeout)
        try:
            cred = await with_retries(
                lambda: csc.fetch_certs_in_csc_credential(http, info), ctx.retry
            )
        except Exception as e:  # noqa: BLE001 - connection refused, HTTP 4xx/5xx, bad JSON …
            await http.close()
            if is_transient(e):
                raise _unavailable("credential request", url, e) from None
            raise SignerConfigError(
                f"cannot read credential '{options.credential_id}' from the CSC service "
                f"({type(e).__name__})",
                path=url,
            ) from None
        authorizer = _authorizer_class()(info, cred)
        authorizer.setup(http, pin, options.otp_env, first_otp)
        signer = _signer_class()(http, authorizer, prefer_pss=ctx.prefer_pss)
        signer.retry_policy = ctx.retry
        cert = cred.signing_cert
        chain = [c for c in cred.chain if c.dump() != cert.dump()]
        return KeyMaterial(signer, cert, chain, [http.close])


def _authorizer_class() -> type:
    from pyhanko.sign.signers import csc_signer as csc

    class Authorizer(csc.CSCAuthorizationManager):
        """credentials/authorize with the hashes (SCAL 2: the SAD is bound to them)."""

        def setup(self, http: Any, pin: str | None, otp_env: str, otp: str | None) -> None:
            self.http, self.pin, self.otp_env, self.otp = http, pin, otp_env, otp

        async def authorize_signature(self, hash_b64s: list[str]) -> Any:
            otp, self.otp = self.otp, None  # one-time: never sent twice
            if otp is None:
                otp = read_secret(self.otp_env, "CSC OTP", required=False)
            req = self.format_csc_auth_request(hash_b64s=hash_b64s, pin=self.pin, otp=otp)
            url = self.csc_session_info.endpoint_url("credentials/authorize")
            async with self.http.post(url, json=req, headers=self.auth_headers) as resp:
                if resp.status in (401, 403):
                    raise BadPinError(
                        "the CSC service refused the authorisation (PIN/OTP)", path=url,
                        hint="a one-time password serves one authorisation only",
                    )  # fmt: skip
                if resp.status >= 400:
                    raise _status_error(resp.status, url, "authorisation")
                return self.parse_csc_auth_response(await resp.json())

    return Authorizer


def _signer_class() -> type:
    from pyhanko.sign.signers import csc_signer as csc

    class RetryingCscSigner(csc.CSCSigner):
        """One ``signatures/signHash`` per signature, authorised afresh and retried as a
        whole on transient failures (a SAD is single-use and bound to its hash)."""

        retry_policy: RetryPolicy = RetryPolicy()

        async def async_sign_raw(
            self, data: bytes, digest_algorithm: str, dry_run: bool = False
        ) -> bytes:
            if dry_run:
                return bytes(self.est_raw_signature_size)
            tbs_hash = csc.base64_digest(data, digest_algorithm)
            url = self.auth_manager.csc_session_info.endpoint_url("signatures/signHash")

            async def once() -> bytes:
                req = await self.format_csc_signing_req([tbs_hash], digest_algorithm)
                async with self.session.post(
                    url, headers=self.auth_manager.auth_headers, json=req
                ) as resp:
                    if resp.status >= 400:
                        raise _status_error(resp.status, url, "signature")
                    body = await resp.json()
                try:
                    return base64.b64decode(body["signatures"][0])
                except (KeyError, IndexError, TypeError, ValueError):
                    raise SigningError(
                        "CSC signHash answered without a signature", path=url
                    ) from None

            try:
                return await with_retries(once, self.retry_policy)
            except DigitizeError:
                raise
            except Exception as e:  # noqa: BLE001
                if is_transient(e):
                    raise _unavailable("signature request", url, e) from None
                raise

    return RetryingCscSigner
