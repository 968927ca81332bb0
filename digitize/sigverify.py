"""Validation of PDF signatures and detached manifest signatures. OWNED BY THE SIGNING WORK."""

from __future__ import annotations

from pathlib import Path

from digitize.models import Check


def verify_pdf_signatures(
    path: Path, trust_roots: tuple[Path, ...], *, offline: bool = True, lang: str = "vi"
) -> list[Check]:
    """One Check per signature: integrity, whole-file coverage, chain, revocation, timestamp, level."""
    raise NotImplementedError


def verify_detached_signature(
    data: bytes, signature: bytes, trust_roots: tuple[Path, ...], *, lang: str = "vi"
) -> Check:
    """Check a detached CMS signature over ``data`` (the manifest)."""
    raise NotImplementedError
