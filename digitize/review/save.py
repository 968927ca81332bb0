"""Saving a review: corrected values into the manifest, re-signed by the reviewer, atomically.

One function, ``save_review``, serves the review page and ``digitize review --apply``:

1. lock the output folder (one save at a time), read the manifest; with
   ``expected_manifest_sha256`` (the page's copy) refuse when someone saved in between;
2. resolve every decision against the manifest and check every value (``values.py``):
   an unknown file, field or page, or a bad value, stops here with its own exit code;
3. the bundle must verify as it is (``verify``, the caller's trust decision): a bundle that
   does not verify is never reviewed, and nothing is written;
4. build the new manifest: each corrected value with the machine reading kept beside it
   (``machine_value``), ``source: "manual"``, who and when (``reviewed_by``/``reviewed_at``,
   from the reviewer's signing certificate; an Art. 9 value gets ``entered_by``), the
   document's header fields (ND 30) updated, what depends on Art. 9 values recomputed with the
   extract package's functions (``review.art9``: flags, the digitisation-result code), a
   ``ReviewRecord`` appended, ``needs_review`` recomputed (``state.open_items``);
5. stage a complete new bundle folder beside the old one: component PDFs hard-linked (same
   bytes, never rewritten; copied where links are impossible), the new ``manifest.json``, its
   detached signature by the reviewer (``signer.sign_detached``) and ``checksums.sha256``;
   fsync; the staged bundle must verify too;
6. swap the staged folder and the bundle in one step (``renameat2(RENAME_EXCHANGE)``), so a
   crash or an error at any point leaves the old manifest and signature in place, never a mix.
   Where the kernel or file system cannot exchange, two renames are used and an interrupted
   swap is put back by the next review of that bundle (``recover_interrupted_swap``).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from digitize.bundle import remove_stale_partials, write_checksums, write_zip
from digitize.errors import (
    BundleNotVerifiedError,
    BundleStructureError,
    InvalidReviewValueError,
    OutputError,
    ReviewError,
    UnknownReviewTargetError,
)
from digitize.manifest import (
    CHECKSUMS_FILE,
    MANIFEST_FILE,
    MANIFEST_SIGNATURE_FILE,
    DigitiserInfo,
    Manifest,
    ReviewChange,
    ReviewRecord,
)
from digitize.review.art9 import (
    CATALOGUE_VALUES,
    accepted_reason,
    config_gaps,
    fixable_gaps,
    gap_text,
    header_followers,
    is_document_acceptance,
    recompute,
    value_kind,
)
from digitize.review.corrections import Corrections
from digitize.review.state import OpenItem, art9_values, open_items
from digitize.review.values import normalise_value
from digitize.settings import ExtractSettings
from digitize.util import fsync_path, sha256_bytes, vn_now

if TYPE_CHECKING:
    from digitize.extract.catalogue import Catalogue
    from digitize.sign import DigitiserSigner
    from digitize.verify import VerifyReport

Verifier = Callable[[Path], "VerifyReport"]

# ND 30 header fields a document entry repeats from its extraction (see pipeline).
HEADER_FIELDS = ("type_name", "code_number", "code_notation", "issued_date", "organ_name",
                 "subject", "signer_position", "signer_full_name")
_BUNDLE_FILES = (MANIFEST_FILE, MANIFEST_SIGNATURE_FILE, CHECKSUMS_FILE)


@dataclass(frozen=True)
class ReviewOutcome:
    bundle: Path
    manifest: Manifest
    record: ReviewRecord
    open_items: tuple[OpenItem, ...]

    @property
    def needs_review(self) -> bool:
        return bool(self.open_items)


def read_manifest(bundle: Path) -> tuple[Manifest, bytes]:
    path = bundle / MANIFEST_FILE
    try:
        data = path.read_bytes()
        return Manifest.model_validate(json.loads(data)), data
    except OSError as exc:
        raise BundleStructureError(f"cannot read {MANIFEST_FILE}: {exc.strerror}",
                                   path=bundle) from None
    except (ValueError, ValidationError, RecursionError) as exc:
        detail = str(exc).splitlines()[0][:160]
        raise BundleStructureError(f"{MANIFEST_FILE} is invalid: {detail}", path=bundle) from None


# --- decisions -> changes ------------------------------------------------------------------
def plan_changes(manifest: Manifest, corrections: Corrections,
                 catalogue: Catalogue | None = None) -> tuple[ReviewChange, ...]:
    """Resolve and check every decision against the manifest (nothing is changed here).
    ``catalogue`` gives the kinds of Art. 9 template fields (default: the starter catalogue)."""
    docs = {d.file: d for d in manifest.documents if d.file is not None}
    changes: list[ReviewChange] = []
    for fix in corrections.fields:
        doc = docs.get(fix.file)
        if doc is None:
            raise UnknownReviewTargetError(f"no component file {fix.file!r} in this bundle",
                                           hint=f"files: {', '.join(sorted(docs)) or 'none'}")
        if fix.field in CATALOGUE_VALUES:
            raise UnknownReviewTargetError(
                f"{fix.field} comes from the profile's paper-type catalogue, not from the "
                "paper: it is not changed at review", path=fix.file,
                hint="paper-type codes are configured in extract.catalogue.codes")
        current, machine = _current_value(manifest, doc, fix.field)
        kind = value_kind(doc, fix.field, catalogue)
        if fix.confirm:
            if current is None:
                raise UnknownReviewTargetError(
                    f"{fix.field} was not read: nothing to confirm, give its value", path=fix.file)
            # a bad reading is no answer
            normalise_value(fix.field, current, where=fix.file, kind=kind)
            value, action = current, "confirm"
        else:
            value = normalise_value(fix.field, fix.value or "", where=fix.file, kind=kind)
            action = "confirm" if value == current else "correct"
        changes.append(ReviewChange(file=fix.file, action=action, field=fix.field,
                                    machine_value=machine, previous_value=current, value=value))
    explicit = {(c.file, c.field) for c in changes}
    for file, doc in docs.items():
        header = [c for c in changes if c.file == file and c.field in HEADER_FIELDS + (
            "code_year",)]
        changes += header_followers(doc, header, {f for d, f in explicit if d == file and f},
                                    catalogue)
    for decision in corrections.pages:
        doc = docs.get(decision.file)
        if doc is None:
            raise UnknownReviewTargetError(f"no component file {decision.file!r} in this bundle")
        if decision.page not in {p.page_index for p in doc.pages}:
            raise UnknownReviewTargetError(
                f"page {decision.page} does not exist (the file has {len(doc.pages)})",
                path=decision.file)
        reason = None
        if decision.decision == "rescan":
            reason = normalise_value("reason", decision.reason or "", where=decision.file)
        changes.append(ReviewChange(file=decision.file, action=decision.decision,
                                    page=decision.page, reason=reason))
    for accept in corrections.documents:
        doc = docs.get(accept.file)
        if doc is None:
            raise UnknownReviewTargetError(f"no component file {accept.file!r} in this bundle")
        gaps = config_gaps(doc)
        if not gaps:
            raise UnknownReviewTargetError(
                "nothing to accept knowingly: the component misses nothing only the "
                "configuration can give", path=accept.file)
        reason = accepted_reason(gaps)
        if accept.reason and accept.reason.strip():
            reason = normalise_value("reason", accept.reason, where=accept.file)
        changes.append(ReviewChange(file=accept.file, action="accept", reason=reason))
    return tuple(changes)


def _current_value(manifest: Manifest, doc: Any, field: str) -> tuple[str | None, str | None]:
    """(current value, first machine reading) of an extraction field or Art. 9 value."""
    if field.startswith("art9."):
        for name, item in art9_values(getattr(doc, "art9", None)):
            if name == field:
                value = item.get("value")
                text = None if value is None else str(value)
                if item.get("source", "ocr") == "ocr":
                    return text, text
                # a person's value: the machine reading is in the review that replaced it
                earlier = [c.machine_value for r in manifest.reviews for c in r.changes
                           if (c.file, c.field) == (doc.file, field) and c.machine_value]
                return text, earlier[0] if earlier else None
        raise UnknownReviewTargetError(f"no Art. 9 value {field!r} in this component",
                                       path=doc.file)
    for entry in doc.extraction:
        if entry.field == field:
            machine = entry.machine_value
            if machine is None and entry.source == "ocr":
                machine = entry.value
            return entry.value, machine
    names = ", ".join(e.field for e in doc.extraction) or "none"
    raise UnknownReviewTargetError(f"no extracted field {field!r} in this component",
                                   path=doc.file, hint=f"fields: {names}")


def apply_changes(manifest: Manifest, changes: tuple[ReviewChange, ...],
                  reviewer: DigitiserInfo, reviewed_at: datetime,
                  previous_manifest_sha256: str, result_code_template: str | None = None
                  ) -> Manifest:
    """The manifest after a review (pure: the same inputs give the same manifest).

    ``result_code_template`` (default: the profile default) rebuilds the result codes of the
    documents whose Art. 9 values changed. A knowing acceptance of a document whose owner's
    ID is still unsettled raises ``InvalidReviewValueError`` (nothing is written)."""
    template = result_code_template or ExtractSettings().catalogue.result_code_template
    data = manifest.model_dump(mode="json")
    when = reviewed_at.isoformat()
    by_file = {d["file"]: d for d in data["documents"] if d.get("file")}
    art9_files: set[str] = set()
    for change in changes:
        doc = by_file[change.file]
        if change.field is None:
            continue
        if change.field.startswith("art9."):
            target = _art9_target(doc, change.field)
            if change.action == "correct":
                target["value"] = change.value
                target["source"] = "manual"
                target["entered_by"] = reviewer.full_name
            target["needs_review"] = False
            art9_files.add(change.file)
            continue
        entry = next(e for e in doc["extraction"] if e["field"] == change.field)
        if change.action == "correct":
            entry["machine_value"] = change.machine_value
            entry["value"] = change.value
            entry["source"] = "manual"
        entry["needs_review"] = False
        entry["reviewed_by"] = reviewer.full_name
        entry["reviewed_at"] = when
        if change.field in HEADER_FIELDS:
            doc[change.field] = _header_value(change.field, change.value)
    record = ReviewRecord(reviewer=reviewer, reviewed_at=reviewed_at,
                          previous_manifest_sha256=previous_manifest_sha256, changes=changes)
    data["reviews"] = [*data.get("reviews", []), record.model_dump(mode="json")]
    reviewed = recompute(Manifest.model_validate(data), art9_files, template)
    docs = {d.file: d for d in reviewed.documents}
    for change in changes:
        if is_document_acceptance(change):
            unsettled = fixable_gaps(docs[change.file])
            if unsettled:
                raise InvalidReviewValueError(
                    "cannot accept the component without a result code: "
                    + "; ".join(gap_text(g, "en") for g in unsettled), path=change.file,
                    hint="enter or confirm art9.owner_id first (in the same review is fine)")
    return reviewed.model_copy(update={"needs_review": bool(open_items(reviewed))})


def _art9_target(doc: dict[str, Any], field: str) -> dict[str, Any]:
    parts = field.split(".")
    node: Any = doc["art9"]
    for key in parts[1:]:
        node = node[key]
    return node  # type: ignore[no-any-return]


def _header_value(field: str, value: str | None) -> str | None:
    if field == "issued_date" and value is not None:
        return date.fromisoformat(value).isoformat()
    return value


# --- saving --------------------------------------------------------------------------------
def save_review(
    bundle: Path,
    corrections: Corrections,
    signer: DigitiserSigner,
    verify: Verifier,
    *,
    expected_manifest_sha256: str | None = None,
    extract: ExtractSettings | None = None,
) -> ReviewOutcome:
    """Apply ``corrections`` to the bundle folder and re-sign its manifest (module docstring).

    ``verify`` decides trust (roots, whether a demo identity is accepted): it is called on the
    bundle before anything is written and on the staged bundle before the swap. ``extract``
    (the reviewer's profile; default settings otherwise) gives the paper-type catalogue (the
    kinds of Art. 9 fields) and the result-code template.
    """
    from digitize.extract.catalogue import load_catalogue

    extract = extract or ExtractSettings()
    bundle = Path(bundle)
    if not bundle.is_dir():
        recover_interrupted_swap(bundle)
    if not (bundle / MANIFEST_FILE).is_file():
        raise BundleStructureError("not a bundle folder (no manifest.json)", path=bundle)
    with _folder_lock(bundle.parent):
        recover_interrupted_swap(bundle)
        remove_stale_partials(bundle.parent, bundle.name)  # left by a killed save
        manifest, old_bytes = read_manifest(bundle)
        old_sha = sha256_bytes(old_bytes)
        if expected_manifest_sha256 is not None and expected_manifest_sha256 != old_sha:
            raise ReviewError("the bundle was changed since this review began: reload it",
                              path=bundle)
        changes = plan_changes(manifest, corrections, load_catalogue(extract.catalogue))
        report = verify(bundle)
        if not report.ok:
            first = report.failures[0]
            raise BundleNotVerifiedError(
                f"does not verify ({first.name}: {first.message}); nothing was changed",
                path=bundle)
        identity = signer.identity
        reviewer = DigitiserInfo(full_name=identity.full_name, cert_serial=identity.cert_serial,
                                 cert_issuer=identity.cert_issuer,
                                 cert_sha256=identity.cert_sha256, is_demo=identity.is_demo)
        reviewed = apply_changes(manifest, changes, reviewer, vn_now().replace(microsecond=0),
                                 old_sha, extract.catalogue.result_code_template)
        data = reviewed.to_json_bytes()
        staging = _stage(bundle, data, signer.sign_detached(data))
        try:
            staged_report = verify(staging)
            if not staged_report.ok:
                first = staged_report.failures[0]
                raise ReviewError(
                    f"the re-signed bundle would not verify ({first.name}: {first.message}); "
                    "nothing was changed", path=bundle,
                    hint="is the reviewer's certificate trusted (--trust)?")
            _exchange(staging, bundle)
            fsync_path(bundle.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # after the swap: the old bundle
        zip_copy = bundle.parent / f"{bundle.name}.zip"
        if zip_copy.is_file():
            write_zip(bundle, zip_copy, bundle.name)
    record = reviewed.reviews[-1]
    return ReviewOutcome(bundle=bundle, manifest=reviewed, record=record,
                         open_items=tuple(open_items(reviewed)))


def _stage(bundle: Path, manifest_bytes: bytes, signature: bytes) -> Path:
    """A complete copy of the bundle with the new manifest, in a hidden sibling folder."""
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging = bundle.parent / f".{bundle.name}.review-{token}"
    staging.mkdir()
    try:
        for path in bundle.iterdir():
            if path.name in _BUNDLE_FILES:
                continue
            if not path.is_file() or path.is_symlink():
                raise BundleStructureError(f"unexpected entry {path.name!r}", path=bundle)
            try:
                os.link(path, staging / path.name)
            except OSError:
                shutil.copy2(path, staging / path.name)
        mode = (bundle / MANIFEST_FILE).stat().st_mode & 0o777
        (staging / MANIFEST_FILE).write_bytes(manifest_bytes)
        (staging / MANIFEST_SIGNATURE_FILE).write_bytes(signature)
        write_checksums(staging)
        for name in _BUNDLE_FILES:
            os.chmod(staging / name, mode)
            fsync_path(staging / name)
        os.chmod(staging, bundle.stat().st_mode & 0o777)
        fsync_path(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(staged: Path, bundle: Path) -> None:
    """Put ``staged`` at ``bundle``'s name and the old bundle at ``staged``'s, atomically."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                              ctypes.c_uint]
        done = renameat2(_AT_FDCWD, os.fsencode(staged), _AT_FDCWD, os.fsencode(bundle),
                         _RENAME_EXCHANGE)
        if done == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OutputError(f"cannot swap in the reviewed bundle: {os.strerror(err)}",
                              path=bundle)
    # Two renames: between them the bundle sits at its ".previous" name (recovered later).
    aside = bundle.parent / f".{bundle.name}.previous-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.rename(bundle, aside)
    try:
        os.rename(staged, bundle)
    except OSError:
        os.rename(aside, bundle)
        raise
    os.rename(aside, staged)


def recover_interrupted_swap(bundle: Path) -> bool:
    """Put a bundle back under its name when a two-rename swap was cut between its renames."""
    if bundle.exists():
        return False
    for aside in sorted(bundle.parent.glob(f".{bundle.name}.previous-*")):
        if (aside / MANIFEST_FILE).is_file():
            os.rename(aside, bundle)
            return True
    return False


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on the output folder itself (no lock file is left behind)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def manifest_sha256(bundle: Path) -> str:
    return hashlib.sha256((bundle / MANIFEST_FILE).read_bytes()).hexdigest()
