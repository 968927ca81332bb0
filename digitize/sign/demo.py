"""The demo signing identity: a DEMO root CA and a DEMO personal certificate, created once per
machine (under the data folder) when no real signer is configured.

Its names say DEMO and its root is trusted by nobody but a verifier told to; it is not valid
for real use. The root key is discarded after issuing the one certificate. The folder is
created atomically (built in a 0700 temporary folder, then renamed), its files 0600.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from digitize.errors import SignerConfigError
from digitize.util import user_data_dir

DEMO_DIR_NAME = "demo-identity"
# The demo PKCS#12 is public demo material (its certificate says DEMO and chains to a DEMO root
# nobody trusts), so a fixed password is acceptable here and ONLY here.
DEMO_PKCS12_PASSWORD = b"digitize-demo-identity-not-secret"
DEMO_PERSON_NAME = "Nguyễn Văn Mẫu (DEMO)"
DEMO_ROOT_NAME = "DEMO digitize Root CA — NOT FOR REAL USE"


def demo_identity_dir(data_dir: Path | None = None) -> Path:
    return (Path(data_dir) if data_dir is not None else user_data_dir()) / DEMO_DIR_NAME


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
