"""Signer back-ends: where the key is (R27). One module per back-end, one registry.

A back-end turns ``SigningSettings`` into ``KeyMaterial``: a pyHanko ``Signer`` (which makes
the raw signature), the signing certificate, the CA chain it supplies, and clean-up steps.
Everything else — the R17/R25 pre-checks, PAdES, the visible note, time-stamps, retries —
is common code (``digitize.sign.pades``), so a new back-end is one module and one line of
packaging metadata; no other file changes.

Registering a back-end (in any installed distribution)::

    [project.entry-points."digitize.signers"]
    smartca = "vnpt_digitize.smartca:SmartCaBackend"

and the profile says ``sign: {backend: smartca, backend_options: {...}}``; the back-end
validates ``backend_options`` with its own ``options_model``. The built-in names (``demo``,
``pkcs12``, ``pkcs11``, ``csc``) always resolve to the modules here, with or without
installed metadata (an in-tree or editable checkout finds them too), and an entry point
cannot replace them.

Contract of ``SignerBackend.open`` (SHALL): read secrets only through
``digitize.sign.secrets.read_secret``; map a refused PIN/password to ``BadPinError`` (never
retried), an unreachable service to ``SignerUnavailableError`` (after ``ctx.retry``), a wrong
setting to ``SignerConfigError``; register every session it opens in ``cleanup``.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from digitize.errors import SignerConfigError
from digitize.settings import SigningSettings
from digitize.sign.retry import RetryPolicy

ENTRY_POINT_GROUP = "digitize.signers"
BUILTIN_BACKENDS = {
    "demo": "digitize.sign.backends.demo:DemoBackend",
    "pkcs12": "digitize.sign.backends.pkcs12:Pkcs12Backend",
    "pkcs11": "digitize.sign.backends.pkcs11:Pkcs11Backend",
    "csc": "digitize.sign.backends.csc:CscBackend",
}


@dataclass
class KeyMaterial:
    """What a back-end hands the common signing code."""

    signer: Any  # pyhanko.sign.signers.Signer
    cert: Any  # asn1crypto x509.Certificate of the digitiser
    chain: list[Any]  # CA certificates the key source supplies (not the digitiser's)
    cleanup: list[Callable[[], Any]] = field(default_factory=list)  # sync or async


@dataclass(frozen=True)
class OpenContext:
    """Everything ``SignerBackend.open`` may use."""

    settings: SigningSettings
    data_dir: Path | None  # the tool's data folder (demo identity); None: the default
    retry: RetryPolicy

    @property
    def prefer_pss(self) -> bool:
        return self.settings.rsa_padding == "pss"


class SignerBackend(ABC):
    """One way to reach the digitiser's key."""

    name: ClassVar[str]
    is_demo: ClassVar[bool] = False  # demo identity: chains to the local DEMO root
    options_model: ClassVar[type[BaseModel] | None] = None  # for a plug-in's backend_options

    def options(self, settings: SigningSettings) -> Any:
        """This back-end's settings: ``backend_options`` validated by ``options_model``."""
        if self.options_model is None:
            return None
        try:
            return self.options_model.model_validate(settings.backend_options)
        except ValidationError as e:
            first = e.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise SignerConfigError(
                f"sign.backend_options.{key}: {first['msg']} (backend {self.name})"
            ) from None

    @abstractmethod
    async def open(self, ctx: OpenContext) -> KeyMaterial:
        """Log into the key source and return the key material (see the module contract)."""

    def trust_roots(self, ctx: OpenContext) -> list[Any]:
        """Roots trusted for this back-end on top of ``settings.trust_roots``."""
        return []


def _load(target: str) -> type[SignerBackend]:
    module_name, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(obj, type) and issubclass(obj, SignerBackend)):
        raise SignerConfigError(f"{target} is not a digitize signer back-end")
    return obj


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def backend_names() -> list[str]:
    """Every back-end this installation can open (built-ins and entry points)."""
    return sorted({*BUILTIN_BACKENDS, *_entry_points()})


def get_backend(name: str) -> SignerBackend:
    """The back-end registered as ``name``, instantiated; ``SignerConfigError`` if unknown."""
    target = BUILTIN_BACKENDS.get(name) or _entry_points().get(name)
    if target is None:
        raise SignerConfigError(
            f"unknown signer back-end {name!r} (known: {', '.join(backend_names())})",
            hint=f"install the package that provides it (entry point group {ENTRY_POINT_GROUP})",
        )
    try:
        return _load(target)()
    except SignerConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - a broken plug-in is a configuration problem
        raise SignerConfigError(
            f"cannot load signer back-end {name!r} from {target}: {type(e).__name__}: {e}"
        ) from None
