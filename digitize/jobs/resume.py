"""Resume: is a bundle that already exists under a dossier's name that dossier's, done?

A bundle counts as done when it verifies (unless verification is off) and the dossier folder
holds EXACTLY what it was made from (R8): the same set of scan files with the same SHA-256 and
the same ``dossier.yaml`` (``Manifest.inputs``, compared with ``bundle.dossier_inputs`` of the
folder now). A re-sent dossier with a page added or removed, or a changed ``dossier.yaml``, is
not done: it is a conflict whose message says what differs (``c1/p02.jpg added``). Bundles
written before ``inputs`` was recorded are compared by their pages' scan files, which must be
all the scan files in the folder; a ``dossier.yaml`` in the folder cannot be proven unchanged
for them, so such a bundle is a conflict too. Anything else under the name — a damaged bundle
— is a conflict for a person, never overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

from digitize.bundle import dossier_inputs, input_differences
from digitize.errors import ExitCode
from digitize.manifest import MANIFEST_FILE, DossierInputs, InputFile, Manifest
from digitize.models import FrozenModel
from digitize.util import nfc, sha256_file
from digitize.verify import verify_bundle


class ExistingBundle(FrozenModel):
    """What an existing bundle under the expected name is worth for this dossier."""

    ok: bool  # verifies and was made from this dossier's scans
    reason: str = ""
    exit_code: int = 0
    pages: int = 0
    flags: tuple[str, ...] = ()
    needs_review: bool = False


def manifest_flag_codes(manifest: Manifest) -> tuple[str, ...]:
    """Every flag code anywhere in the manifest (dossier, documents, pages), sorted."""
    codes = {f.code for f in manifest.flags}
    for doc in manifest.documents:
        codes.update(f.code for f in doc.flags)
        for page in doc.pages:
            codes.update(f.code for f in page.flags)
    return tuple(sorted(codes))


def _file_by_nfc_name(dossier_dir: Path, relative: str) -> Path | None:
    """The file named ``relative`` (manifest names are NFC; the disk's may be NFD)."""
    direct = dossier_dir / relative
    if direct.is_file():
        return direct
    current = dossier_dir
    for part in Path(relative).parts:
        if not current.is_dir():
            return None
        with os.scandir(current) as entries:
            match = next((e for e in entries if nfc(e.name) == nfc(part)), None)
        if match is None:
            return None
        current = current / match.name
    return current if current.is_file() else None


def _page_sources(manifest: Manifest, dossier_dir: Path) -> str | None:
    """Bundles without ``inputs``: every scan named in the manifest is in ``dossier_dir`` with
    the same hash (the old subset rule; the caller adds the set rule)."""
    seen: dict[str, str] = {}
    for doc in manifest.documents:
        for page in doc.pages:
            seen.setdefault(page.source_file, page.source_sha256)
    for relative, digest in seen.items():
        path = _file_by_nfc_name(dossier_dir, relative)
        if path is None:
            return f"the bundle was made from {relative}, which is not in the dossier folder"
        if sha256_file(path) != digest:
            return f"the bundle was made from a different {relative} (hash differs)"
    return None


def _legacy_inputs(manifest: Manifest) -> DossierInputs:
    """The inputs a bundle without ``Manifest.inputs`` shows: its pages' scan files (names
    relative to the dossier folder, NFC)."""
    files: dict[str, str] = {}
    for doc in manifest.documents:
        for page in doc.pages:
            files.setdefault(nfc(page.source_file), page.source_sha256)
    scans = (InputFile(file=name, sha256=digest) for name, digest in sorted(files.items()))
    return DossierInputs(scans=tuple(scans))


def sources_match(manifest: Manifest, dossier_dir: Path) -> str | None:
    """None when ``dossier_dir`` holds exactly what the bundle of ``manifest`` was made from;
    else why not, naming the files that differ (see the module docstring)."""
    now = dossier_inputs(dossier_dir)
    made_from = manifest.inputs
    if made_from is None:
        subset = _page_sources(manifest, dossier_dir)
        if subset is not None:
            return subset
        made_from = _legacy_inputs(manifest)
        if now.dossier_yaml_sha256 is not None:
            return (
                "the bundle does not record which dossier.yaml it was made from (written by an "
                "older version); it cannot be shown to match this folder"
            )
        now = now.model_copy(update={"dossier_yaml_sha256": None})
    differences = input_differences(made_from, now)
    if differences:
        return "the bundle was made from other inputs than this folder holds: " + ", ".join(
            differences
        )
    return None


def check_existing_bundle(
    bundle: Path,
    dossier_dir: Path,
    trust_roots: tuple[Path, ...] | None = None,
    *,
    verify: bool = True,
    allow_demo: bool = False,
) -> ExistingBundle:
    """Verify an existing bundle and check it was made from ``dossier_dir``'s scans.

    ``allow_demo``: trust the DEMO root (only when the station itself signs with the demo
    identity: ``digitize.verify.demo_allowed_for(profile)``)."""
    if verify:
        report = verify_bundle(bundle, trust_roots, lang="en", allow_demo=allow_demo)
        if not report.ok:
            first = report.failures[0]
            return ExistingBundle(
                ok=False,
                reason=f"existing bundle fails verification: {first.name}: {first.message}",
                exit_code=report.exit_code,
            )
    try:
        manifest = Manifest.model_validate_json((bundle / MANIFEST_FILE).read_bytes())
    except (OSError, ValueError) as exc:
        return ExistingBundle(
            ok=False,
            reason=f"existing bundle has no readable manifest: {exc}",
            exit_code=int(ExitCode.VERIFY_STRUCTURE),
        )
    mismatch = sources_match(manifest, dossier_dir)
    if mismatch is not None:
        return ExistingBundle(
            ok=False,
            reason=f"a bundle of this name exists: {mismatch}; to replace it, move the old "
            "bundle out of the output folder and run the dossier again",
            exit_code=int(ExitCode.OUTPUT),
        )
    return ExistingBundle(
        ok=True,
        pages=sum(len(doc.pages) for doc in manifest.documents),
        flags=manifest_flag_codes(manifest),
        needs_review=manifest.needs_review,
    )


__all__ = [
    "ExistingBundle",
    "check_existing_bundle",
    "manifest_flag_codes",
    "sources_match",
]
