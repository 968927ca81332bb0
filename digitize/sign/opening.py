"""Opening a signer: the one place a back-end is chosen, logged into and checked.

``open_signer`` is also the start-up check a station needs before it claims any work: it
validates the settings (back-end known, trust roots present, TSA set for the level), logs
into the key source once (one PIN entry for the life of the signer), and runs the R17/R25
pre-check eagerly. Every failure is a typed error: 53/51/52 for the certificate, 54 for a
refused PIN (never retried), 56 for settings, 57/55 for an unreachable service (retry later).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from digitize.aio import EventLoopThread
from digitize.errors import DigitizeError, SignerConfigError, SignerUnavailableError
from digitize.models import DigitiserIdentity
from digitize.settings import SigningSettings
from digitize.sign.backends import KeyMaterial, OpenContext, SignerBackend, get_backend
from digitize.sign.base import DigitiserSigner
from digitize.sign.certs import load_certificates
from digitize.sign.pades import PyHankoDigitiserSigner, choose_level
from digitize.sign.precheck import require_trust_roots, short
from digitize.sign.retry import RetryPolicy, is_transient
from digitize.sign.secrets import disable_core_dumps


def _open_material(loop: EventLoopThread, backend: SignerBackend, ctx: OpenContext) -> KeyMaterial:
    try:
        return loop.run(backend.open(ctx))
    except DigitizeError:
        raise
    except Exception as e:  # noqa: BLE001 - a back-end's unexpected failure, named
        kind = SignerUnavailableError if is_transient(e) else SignerConfigError
        raise kind(
            f"cannot open the {backend.name} signer: {type(e).__name__}: {short(e)}"
        ) from e


async def _release(material: KeyMaterial) -> None:
    for fn in reversed(material.cleanup):
        result = fn()
        if asyncio.iscoroutine(result):
            await result


def open_signer(settings: SigningSettings, data_dir: Path | None = None) -> DigitiserSigner:
    """Build, log into and check the configured back-end (see the module docstring).

    ``data_dir`` is the application data folder (default ``digitize.util.user_data_dir()``);
    the demo back-end creates its DEMO identity in ``data_dir/demo-identity`` once.
    From here on the process writes no core dump (``digitize.sign.secrets``).
    """
    backend = get_backend(settings.backend)
    backend.options(settings)  # a plug-in's own settings, refused before any login
    ctx = OpenContext(
        settings=settings,
        data_dir=data_dir,
        retry=RetryPolicy(settings.network_retries, settings.network_retry_backoff_s),
    )
    roots: list[Any] = backend.trust_roots(ctx)
    require_trust_roots(settings, roots)
    for path in settings.trust_roots:
        roots.extend(load_certificates(path))
    choose_level(settings)
    disable_core_dumps()  # before the key (or PIN) is in memory
    loop = EventLoopThread("digitize-sign")
    material: KeyMaterial | None = None
    try:
        material = _open_material(loop, backend, ctx)
        signer = PyHankoDigitiserSigner(
            settings, material, loop, is_demo=backend.is_demo, trust_roots=roots
        )
    except BaseException:
        if material is not None:
            loop.run(_release(material))
        loop.stop()
        raise
    try:
        signer.check_certificate()
    except BaseException:
        signer.close()
        raise
    return signer


def check_signer(settings: SigningSettings, data_dir: Path | None = None) -> DigitiserIdentity:
    """Open the signer, run every start-up check (certificate, revocation, time-stamp service)
    and close it; return who would sign. A station that then signs should rather keep the
    signer ``open_signer`` gave it and call ``signer.check()``: a secret read from the
    environment serves one open per process."""
    signer = open_signer(settings, data_dir)
    try:
        return signer.check()
    finally:
        signer.close()
