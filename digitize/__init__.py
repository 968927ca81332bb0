"""digitize: paper dossiers of Vietnamese administrative procedures → signed PDF/A bundles.

Library entry points (each stage is importable on its own too)::

    import digitize
    result = digitize.run_dossier("samples/ho-so-cap-ban-sao", "out/")
    report = digitize.verify_bundle(result.bundle_path, allow_demo=True)  # demo profile
"""

from __future__ import annotations

from digitize._version import __version__
from digitize.errors import DigitizeError, ExitCode


def __getattr__(name: str) -> object:
    # Lazy: `import digitize` stays cheap (no OpenCV/tesseract/pyHanko import) for CLI start-up
    # and for systems that only want the models or the verifier.
    if name in {"run_dossier", "DossierResult", "Event", "page_pool"}:
        from digitize import pipeline

        return getattr(pipeline, name)
    if name in {"verify_bundle", "VerifyReport"}:
        from digitize import verify

        return getattr(verify, name)
    if name in {"load_profile", "Profile"}:
        from digitize import profiles

        return getattr(profiles, name)
    if name in {"open_signer", "SigningSettings"}:
        from digitize import sign

        return getattr(sign, name)
    if name in {"batch_run"}:
        from digitize import batch

        return getattr(batch, name)
    raise AttributeError(f"module 'digitize' has no attribute {name!r}")


__all__ = [
    "DigitizeError",
    "DossierResult",
    "Event",
    "ExitCode",
    "Profile",
    "VerifyReport",
    "__version__",
    "load_profile",
    "open_signer",
    "run_dossier",
    "verify_bundle",
]
