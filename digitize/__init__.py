"""digitize: paper dossiers of Vietnamese administrative procedures → signed PDF/A bundles.

Library entry points (each stage is importable on its own too)::

    import digitize
    result = digitize.run_dossier("samples/ho-so-cap-ban-sao", "out/")
    report = digitize.verify_bundle(result.bundle_path, allow_demo=True)  # demo profile

Many dossiers: ``digitize.batch_run`` (a folder of dossiers), ``digitize.watch.InboxWatcher``
(a scanning station's inbox), both over the job layer ``digitize.jobs`` (``run_job``).
Importing the package, or loading a profile, changes nothing in the caller's process
(environment, logging, signal handlers).
"""

from __future__ import annotations

from digitize._version import __version__
from digitize.errors import DigitizeError, ExitCode

# Lazy: `import digitize` stays cheap (no OpenCV/tesseract/pyHanko import) for CLI start-up
# and for systems that only want the models or the verifier.
_LAZY = {
    "run_dossier": "digitize.pipeline",
    "DossierResult": "digitize.pipeline",
    "Event": "digitize.pipeline",
    "page_pool": "digitize.workers",
    "verify_bundle": "digitize.verify",
    "VerifyReport": "digitize.verify",
    "load_profile": "digitize.profiles",
    "Profile": "digitize.profiles",
    "open_signer": "digitize.sign",
    "SigningSettings": "digitize.settings",
    "batch_run": "digitize.batch",
    "watch_inbox": "digitize.watch",
    "run_job": "digitize.jobs",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'digitize' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)


__all__ = [
    "DigitizeError",
    "DossierResult",
    "Event",
    "ExitCode",
    "Profile",
    "SigningSettings",
    "VerifyReport",
    "__version__",
    "batch_run",
    "load_profile",
    "open_signer",
    "page_pool",
    "run_dossier",
    "run_job",
    "verify_bundle",
    "watch_inbox",
]
