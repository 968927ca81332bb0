"""WSGI wrapper around Certomancer's Animator (OCSP, CRL, RFC 3161 TSA, certificate repository).

Why not the Animator as is — two interoperability problems found with poppler's ``pdfsig`` (NSS):

1. The Animator stamps OCSP/CRL/TSA responses with ``datetime.now()``, microseconds included,
   which asn1crypto writes as fractional GeneralizedTime. NSS rejects such OCSP responses
   ("Unknown issue with Certificate"), and RFC 5280 forbids fractional seconds in certificates
   and CRLs anyway. We set the Animator's own fake-time header to "now, whole seconds" unless the
   client sent one (tests use it for time travel).
2. NSS sends OCSP over GET first (RFC 6960 A.1: ``/<base64 request>`` after the responder URL);
   the Animator routes only POST. We turn such a GET into the equivalent POST.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import urllib.parse
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from certomancer.integrations.animator import Animator, AnimatorArchStore
from certomancer.registry import CertomancerConfig

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_OCSP_GET = re.compile(r"^(/[^/]+/ocsp/[^/]+)/(.+)$")
_FAKE_TIME = "HTTP_X_CERTOMANCER_FAKE_TIME"


def animator_app(config: CertomancerConfig) -> WsgiApp:
    """The Animator for every PKI architecture of ``config``, wrapped (see module docstring)."""
    app = Animator(AnimatorArchStore(config.pki_archs), with_web_ui=False, allow_time_override=True)
    return wrap_animator(app)


def wrap_animator(app: WsgiApp) -> WsgiApp:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if _FAKE_TIME not in environ:
            environ[_FAKE_TIME] = datetime.now(UTC).replace(microsecond=0).isoformat()
        if environ.get("REQUEST_METHOD") == "GET":
            raw = (
                environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
            )
            match = _OCSP_GET.match(raw.split("?")[0])
            if match:
                b64 = urllib.parse.unquote(match.group(2))
                try:
                    body = base64.b64decode(b64 + "=" * (-len(b64) % 4))
                except (binascii.Error, ValueError):
                    body = b""
                if body:
                    environ["REQUEST_METHOD"] = "POST"
                    environ["PATH_INFO"] = match.group(1)
                    environ["CONTENT_TYPE"] = "application/ocsp-request"
                    environ["CONTENT_LENGTH"] = str(len(body))
                    environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, start_response)

    return wrapped


def main() -> None:
    """Run the test PKI by hand: ``python -m tests.pki.animator_wsgi WORKDIR [PORT]``.

    Generates keys/certificates/PKCS#12 files under WORKDIR (see tests/helpers_pki.py) and
    serves OCSP, CRL, TSA and certificates on 127.0.0.1 until interrupted.
    """
    import sys
    import time
    from pathlib import Path

    from tests.helpers_pki import PFX_PASSWORD, start_test_pki

    workdir = Path(sys.argv[1])
    pki = start_test_pki(workdir, int(sys.argv[2]) if len(sys.argv) > 2 else None)
    print(f"TSA  {pki.tsa_url}\nOCSP {pki.ocsp_url}\nCRL  {pki.crl_url}")
    print(f"root {pki.root_cert}\nPKCS#12 {pki.pkcs12_path('hoa')} (password {PFX_PASSWORD})")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pki.stop()


if __name__ == "__main__":
    main()
