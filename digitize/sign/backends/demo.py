"""``demo``: the DEMO identity created once on this machine when nothing is configured.

Not valid for real use: its names say DEMO and it chains to a DEMO root that only this
machine's verifier trusts on request (``digitize.sign.demo``).
"""

from __future__ import annotations

from typing import Any

from digitize.sign.backends import KeyMaterial, OpenContext, SignerBackend
from digitize.sign.backends.pkcs12 import load_pkcs12
from digitize.sign.certs import load_certificates
from digitize.sign.demo import DEMO_PKCS12_PASSWORD, demo_trust_root, ensure_demo_identity


class DemoBackend(SignerBackend):
    name = "demo"
    is_demo = True

    async def open(self, ctx: OpenContext) -> KeyMaterial:
        path = ensure_demo_identity(ctx.data_dir) / "demo.p12"
        return load_pkcs12(path.read_bytes(), DEMO_PKCS12_PASSWORD, str(path), ctx.prefer_pss)

    def trust_roots(self, ctx: OpenContext) -> list[Any]:
        return load_certificates(demo_trust_root(ctx.data_dir))
