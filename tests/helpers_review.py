"""Bundles for the review and report tests: real bundles from the pipeline, with the machine's
doubts the tests need written into the manifest and the manifest signed again with the demo
signer (as the pipeline signs it), so the bundle verifies like a fresh one."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from digitize.bundle import write_checksums
from digitize.manifest import MANIFEST_FILE, MANIFEST_SIGNATURE_FILE, Manifest
from digitize.util import sha256_file

REVIEW_FILES = (MANIFEST_FILE, MANIFEST_SIGNATURE_FILE, "checksums.sha256")


def resign_manifest(bundle: Path, mutate: Callable[[dict[str, Any]], None]) -> None:
    """Change the manifest with ``mutate`` and sign it again with the demo identity."""
    from digitize.settings import SigningSettings
    from digitize.sign import open_signer

    data = json.loads((bundle / MANIFEST_FILE).read_bytes())
    mutate(data)
    manifest_bytes = Manifest.model_validate(data).to_json_bytes()
    signer = open_signer(SigningSettings())
    try:
        signature = signer.sign_detached(manifest_bytes)
    finally:
        signer.close()
    (bundle / MANIFEST_FILE).write_bytes(manifest_bytes)
    (bundle / MANIFEST_SIGNATURE_FILE).write_bytes(signature)
    write_checksums(bundle)


def flag_sample(data: dict[str, Any]) -> None:
    """Doubts on the sample's third component as the extractor and ingest raise them: a
    handwritten number read wrong, a day not read, a notation read right with low confidence,
    a cut-off edge on page 2 (R7, R15)."""
    doc = data["documents"][2]
    for entry in doc["extraction"]:
        if entry["field"] == "code_number":
            entry.update(value="2l5", needs_review=True, confidence=0.31)
        if entry["field"] == "issued_date":
            entry.update(value="2025-10-??", needs_review=True, confidence=0.0)
        if entry["field"] == "code_notation":  # read right, but with low confidence
            entry.update(needs_review=True, confidence=0.47)
    doc["pages"][1]["flags"].append({"code": "content_at_border", "severity": "review",
                                     "message": "content reaches the image edge", "page": 2})
    data["needs_review"] = True


def flagged_copy(bundle: Path, target_dir: Path, name: str | None = None) -> Path:
    target = target_dir / (name or bundle.name)
    shutil.copytree(bundle, target)
    resign_manifest(target, flag_sample)
    return target


def bundle_state(bundle: Path) -> dict[str, bytes]:
    """Bytes of the files a review rewrites (to show an aborted save changed nothing)."""
    return {name: (bundle / name).read_bytes() for name in REVIEW_FILES}


def pdf_hashes(bundle: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in bundle.glob("*.pdf")}


def leftovers(parent: Path) -> list[str]:
    """Staging or set-aside folders a save may leave in the output folder."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))
