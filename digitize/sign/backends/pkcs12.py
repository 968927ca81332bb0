"""``pkcs12``: a PKCS#12 (.p12/.pfx) key file, read in place, never copied.

The password comes from ``sign.pkcs12.password_env`` or a prompt; a wrong password (or a
damaged file: the format cannot tell them apart) is ``BadPinError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from digitize.errors import BadPinError, SignerConfigError
from digitize.sign.backends import KeyMaterial, OpenContext, SignerBackend
from digitize.sign.secrets import read_secret


def load_pkcs12(data: bytes, password: bytes, path: str, prefer_pss: bool) -> KeyMaterial:
    """Key material from PKCS#12 bytes (also the demo identity's file)."""
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

    signer: Any = LoadedKeySigner(
        signing_cert=signing_cert,
        signing_key=key_info,
        cert_registry=SimpleCertificateStore.from_certs(chain),
        prefer_pss=prefer_pss,
    )
    return KeyMaterial(signer, signing_cert, chain)


class Pkcs12Backend(SignerBackend):
    name = "pkcs12"

    async def open(self, ctx: OpenContext) -> KeyMaterial:
        options = ctx.settings.pkcs12
        if not options.path:
            raise SignerConfigError("backend pkcs12 needs sign.pkcs12.path")
        try:
            data = Path(options.path).read_bytes()  # read in place, never copied
        except OSError as e:
            raise SignerConfigError(
                f"cannot read the PKCS#12 file: {e.strerror}", path=options.path
            ) from None
        password = read_secret(options.password_env, "PKCS#12 password")
        assert password is not None
        return load_pkcs12(data, password.encode(), options.path, ctx.prefer_pss)
