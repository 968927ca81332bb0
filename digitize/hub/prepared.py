"""Signing where the digitiser is: prepared bundles made on the hub, finished at the station.

A hub has no USB token. For a ``--sign-at station`` job the worker runs the dossier with a
``PreparingSigner``: each component PDF/A gets its signature field and visible note reserved
for the digitiser's certificate (``digitize.sign.prepare_pdf``; no key, no network) and the
result is committed atomically as a **prepared bundle**::

    <bundle>/                                 under the worker's prepared folder
      PREPARED-NOT-SIGNED.json                the marker (``PreparedBundle``): what to finish
      <code>.001.pdf                          PDF/A, field and note reserved, NO signature
      <code>.001.pdf.prepared.json            its ``PreparedPdf`` record
      <code>.001.pdf.ocr.json                 its pages' OCR: extraction runs after signing (R1)
      manifest.json                           unsigned draft (no extraction, placeholder
                                              signature summaries)
      manifest.json.p7s                       a text saying NOT SIGNED (no CMS)
      checksums.sha256

It never passes ``digitize verify`` (no signature in any PDF, no manifest signature).
``finish_prepared_bundle`` — ``digitize finish PREPARED --out OUT`` — runs at the station:
it checks every file against ``checksums.sha256``, opens the station's signer once (one PIN
entry), signs each reserved field (``finish_prepared``: hash, digitiser and field checked
first), runs extraction on the signed documents' OCR (R1: after the signature), completes the
manifest (hashes, signature summaries, extracted fields, review), signs it, writes the
checksums, commits the bundle atomically under its final name and verifies it.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Literal

from digitize.assemble import (
    REVIEW_SEVERITIES,
    document_needs_review,
    extraction_entries,
    field_review_flags,
    header_fields,
    signature_summary,
)
from digitize.bundle import BundleWriter
from digitize.errors import (
    BundleStructureError,
    DigitizeError,
    ExitCode,
    HashMismatchError,
    InputError,
    PreparedDocumentError,
    QualityError,
    SignatureInvalidError,
    UntrustedError,
    VerifyError,
)
from digitize.manifest import (
    CHECKSUMS_FILE,
    MANIFEST_FILE,
    DocumentEntry,
    Manifest,
)
from digitize.models import (
    DigitiserIdentity,
    FrozenModel,
    PadesLevel,
    PageOcr,
    RevocationEvidence,
    SignatureRecord,
)
from digitize.profiles import Profile
from digitize.settings import SigningSettings
from digitize.sign import BBoxPt, DigitiserSigner, PreparedPdf, identity_of, load_certificate
from digitize.sign import prepare_pdf as reserve_field
from digitize.util import VN_TZ, sha256_file, write_atomic

PREPARED_MARKER = "PREPARED-NOT-SIGNED.json"
PREPARED_P7S = (
    b"digitize: PREPARED BUNDLE, NOT SIGNED. Nothing here is signed; finish it at the "
    b"station with `digitize finish`.\n"
)
PREPARATION_SUFFIX = ".prepared.json"
OCR_SUFFIX = ".ocr.json"
_ORDINAL = re.compile(r"\.(\d{3})\.pdf$")


class ExtractionInput(FrozenModel):
    """What extraction reads for one document (``<file>.ocr.json``): it runs at the station,
    after the signature (R1), on exactly what the hub read."""

    paper_type: str | None = None  # dossier.yaml's declared paper type (Art. 9)
    pages: tuple[PageOcr, ...] = ()  # in page order, without hOCR
    hand_words: tuple[tuple[int, ...], ...] = ()  # per page: words in hand ink


class NotAPreparedBundleError(InputError):
    """``digitize finish`` was given a folder without the prepared-bundle marker."""


class PreparedDocument(FrozenModel):
    file: str  # bundle-relative name of the prepared PDF (its final name)
    preparation: PreparedPdf


class PreparedBundle(FrozenModel):
    """The marker of a prepared bundle (``PREPARED-NOT-SIGNED.json``)."""

    kind: Literal["digitize-prepared-bundle"] = "digitize-prepared-bundle"
    signed: Literal[False] = False
    bundle: str  # the bundle's final folder name
    digitiser: DigitiserIdentity  # the certificate the notes were drawn for
    documents: tuple[PreparedDocument, ...] = ()
    prepared_at: datetime
    note: str = "Prepared on the hub. NOT a signed bundle: finish it with `digitize finish`."


def write_marker(folder: Path, marker: PreparedBundle) -> None:
    write_atomic(folder / PREPARED_MARKER, marker.model_dump_json(indent=2).encode())


def read_marker(folder: Path) -> PreparedBundle:
    path = Path(folder) / PREPARED_MARKER
    if not path.is_file():
        raise NotAPreparedBundleError(
            f"not a prepared bundle (no {PREPARED_MARKER})", path=folder,
            hint="`digitize finish` takes what a hub made for --sign-at station",
        )  # fmt: skip
    try:
        return PreparedBundle.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise NotAPreparedBundleError(f"unreadable {PREPARED_MARKER}: {exc}", path=folder) from None


class PreparingSigner(DigitiserSigner):
    """A ``DigitiserSigner`` for the hub that reserves instead of signing (see the module
    docstring). One per job; ``inputs_of(ordinal)`` gives what extraction will read of that
    component (its pages' OCR)."""

    def __init__(self, bundle: str, certificate: bytes, settings: SigningSettings,
                 inputs_of: Callable[[int], ExtractionInput]) -> None:  # fmt: skip
        self._cert = load_certificate(certificate)
        self._identity = identity_of(self._cert)
        self._settings = settings
        self._inputs_of = inputs_of
        self._bundle = bundle
        self._documents: list[PreparedDocument] = []
        self._lock = threading.Lock()

    @property
    def identity(self) -> DigitiserIdentity:
        return self._identity

    def marker(self) -> PreparedBundle:
        with self._lock:
            return PreparedBundle(bundle=self._bundle, digitiser=self._identity,
                                  documents=tuple(self._documents),
                                  prepared_at=datetime.now(VN_TZ).replace(microsecond=0))  # fmt: skip

    def sign_pdf(self, in_path: Path, out_path: Path, *, scan_time: datetime,
                 text_boxes_pt: tuple[BBoxPt, ...] = ()) -> SignatureRecord:  # fmt: skip
        out_path = Path(out_path)
        found = _ORDINAL.search(out_path.name)
        if found is None:
            raise PreparedDocumentError("not a component file name", path=out_path)
        preparation = reserve_field(in_path, out_path, self._cert, scan_time, self._settings,
                                    text_boxes_pt)  # fmt: skip
        staging = out_path.parent
        inputs = self._inputs_of(int(found.group(1)))
        write_atomic(staging / f"{out_path.name}{OCR_SUFFIX}", inputs.model_dump_json().encode())
        write_atomic(staging / f"{out_path.name}{PREPARATION_SUFFIX}",
                     preparation.model_dump_json(indent=2).encode())  # fmt: skip
        with self._lock:
            self._documents.append(PreparedDocument(file=out_path.name, preparation=preparation))
        # The marker goes into the staging folder with the first document, so the prepared
        # bundle appears with it in one rename: never an unmarked prepared bundle.
        write_marker(staging, self.marker())
        return SignatureRecord(
            field_name=preparation.field_name,
            signer=self._identity,
            signed_at=preparation.prepared_at,
            scan_time_shown=preparation.scan_time_shown,
            pades_level=self._settings.level or PadesLevel.B_B,
            digest_algorithm=self._settings.digest_algorithm,
            signature_algorithm="none: prepared, not signed",
            appearance_box_pt=preparation.appearance_box_pt,
            appearance_shrunk=preparation.appearance_shrunk,
            flags=preparation.flags,
        )

    def sign_detached(self, data: bytes) -> bytes:
        return PREPARED_P7S


# --- the station ------------------------------------------------------------------------------
class FinishResult(FrozenModel):
    bundle_path: Path
    zip_path: Path | None = None
    documents: int
    needs_review: bool
    verified: bool


def check_prepared_files(folder: Path) -> set[str]:
    """Every file of the prepared bundle is in ``checksums.sha256`` with its hash, and every
    listed file is there (a copy damaged on the way is refused before anything is signed).
    Returns the names: the only ones the manifest and marker may name."""
    listed: dict[str, str] = {}
    path = folder / CHECKSUMS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BundleStructureError(f"cannot read {CHECKSUMS_FILE}: {exc.strerror}",
                                   path=folder) from None  # fmt: skip
    for line in lines:
        digest, sep, name = line.partition("  ")
        if not sep or "/" in name or name in ("", ".", ".."):
            raise BundleStructureError(f"malformed line in {CHECKSUMS_FILE}", path=folder)
        listed[name] = digest.lower()
    present = {p.name for p in folder.iterdir() if p.name != CHECKSUMS_FILE}
    for name in sorted(present ^ set(listed)):
        raise BundleStructureError(
            f"{name} is {'not listed in' if name in present else 'missing but listed in'} "
            f"{CHECKSUMS_FILE}", path=folder)  # fmt: skip
    for name, digest in sorted(listed.items()):
        if not (folder / name).is_file() or (folder / name).is_symlink():
            raise BundleStructureError(f"{name} is not a plain file", path=folder)
        if sha256_file(folder / name) != digest:
            raise HashMismatchError(f"{name} changed since the hub prepared it", path=folder)
    return set(listed)


def _named_files(manifest: Manifest, marker: PreparedBundle) -> set[str]:
    """Every file the manifest and the marker name, with the OCR and preparation records."""
    names = {item.file for item in marker.documents}
    for doc in manifest.documents:
        if doc.file is not None:
            names.update({doc.file, f"{doc.file}{OCR_SUFFIX}", f"{doc.file}{PREPARATION_SUFFIX}"})
        names.update(entry.file for entry in (*doc.originals, *doc.masters))
    return names


def _finish_document(doc: DocumentEntry, prepared: Path, item: PreparedDocument,
                     signer: DigitiserSigner, writer: BundleWriter,
                     profile: Profile) -> tuple[DocumentEntry, SignatureRecord]:  # fmt: skip
    from digitize.extract import PaperContext, extract_paper

    assert doc.file is not None
    signed = writer.path(doc.file)
    record = signer.finish_prepared(prepared / doc.file, signed, item.preparation)
    # R1: extraction reads the signed document's text, after its signature exists.
    started = datetime.now(VN_TZ)
    inputs = ExtractionInput.model_validate_json(
        (prepared / f"{doc.file}{OCR_SUFFIX}").read_bytes())  # fmt: skip
    paper = None
    if profile.extract.enabled and inputs.pages:
        context = PaperContext(inputs.paper_type, tuple(frozenset(h) for h in inputs.hand_words))
        paper = extract_paper(inputs.pages, profile.extract, context=context)
    fields = paper.header if paper is not None else ()
    extraction = extraction_entries(fields, started)
    update: dict[str, object] = {
        **header_fields(extraction),
        "sha256": sha256_file(signed),
        "size_bytes": signed.stat().st_size,
        "signature": signature_summary(record),
        "extraction": extraction,
        "art9": paper.art9 if paper is not None else None,
        "flags": (*doc.flags, *(paper.flags if paper is not None else ()),
                  *field_review_flags(fields)),  # fmt: skip
    }
    return doc.model_copy(update=update), record


def _carry(doc: DocumentEntry, prepared: Path, writer: BundleWriter) -> None:
    """Received PDFs and master scans travel unchanged (their hashes are in the manifest)."""
    for entry in (*doc.originals, *doc.masters):
        shutil.copyfile(prepared / entry.file, writer.path(entry.file))
        if sha256_file(writer.path(entry.file)) != entry.sha256:
            raise HashMismatchError(f"{entry.file} differs from the manifest", path=prepared)


def finish_prepared_bundle(
    prepared: str | Path,
    out_dir: str | Path,
    profile: Profile,
    signer: DigitiserSigner,
    *,
    trust_roots: tuple[Path, ...] | None = None,
    verify: bool = True,
) -> FinishResult:
    """Sign a prepared bundle at the station into ``out_dir/<bundle>`` (module docstring).

    ``signer`` is the station's open signer (one login for every document and the
    manifest; not closed here). Raises ``PreparedDocumentError`` (58) when a document is not
    the one prepared or not for this digitiser, ``HashMismatchError``/``BundleStructureError``
    when the prepared bundle was damaged, a ``VerifyError`` when the result does not verify
    (it is then removed: nothing unverifiable stays under a final name).
    """
    from digitize.jobs import trust_roots_for
    from digitize.verify import demo_allowed_for, verify_bundle

    prepared, out_dir = Path(prepared), Path(out_dir)
    marker = read_marker(prepared)
    present = check_prepared_files(prepared)
    manifest = Manifest.model_validate_json((prepared / MANIFEST_FILE).read_bytes())
    # Names come from the hub: only files of this folder, listed in its checksums (no path
    # leaves the folder, nothing is read or written elsewhere).
    unknown = sorted(_named_files(manifest, marker) - present)
    if unknown:
        raise BundleStructureError(f"names a file that is not in the prepared bundle: "
                                   f"{unknown[0]!r}", path=prepared)  # fmt: skip
    if signer.identity.cert_sha256 != marker.digitiser.cert_sha256:
        raise PreparedDocumentError(
            f"prepared for '{marker.digitiser.full_name}', but this station signs as "
            f"'{signer.identity.full_name}': the notes would name someone else", path=prepared,
        )  # fmt: skip
    items = {item.file: item for item in marker.documents}
    with BundleWriter(out_dir, marker.bundle, zip_copy=profile.bundle.zip) as writer:
        documents: list[DocumentEntry] = []
        evidence: dict[str, RevocationEvidence] = {}
        for doc in manifest.documents:
            if doc.file is None:
                documents.append(doc)  # R9: listed, not digitised
                continue
            if doc.file not in items:
                raise PreparedDocumentError("no preparation record for this document",
                                            path=prepared / doc.file)  # fmt: skip
            finished, record = _finish_document(doc, prepared, items[doc.file], signer, writer,
                                                profile)  # fmt: skip
            _carry(doc, prepared, writer)
            documents.append(finished)
            evidence.update((e.sha256, e) for e in record.revocation_evidence)
        if profile.extract.enabled:  # cross-paper checks and result codes (Art. 7, 9)
            from digitize.extract import DossierFacts, finish_dossier

            facts = DossierFacts(manifest.dossier_code, manifest.procedure_code)
            documents = finish_dossier(documents, facts, profile.extract)
        review = any(document_needs_review(d) for d in documents) or any(
            f.severity in REVIEW_SEVERITIES for f in manifest.flags
        )
        # The manifest is completed here, after every signature: it is created now.
        final = manifest.model_copy(update={"documents": tuple(documents),
                                            "revocation_evidence": tuple(evidence.values()),
                                            "needs_review": review,
                                            "created_at": datetime.now(VN_TZ).replace(
                                                microsecond=0)})  # fmt: skip
        if profile.pipeline.strict and review:
            raise QualityError("pages or fields need review and the profile is strict: "
                               "no bundle written", path=prepared)  # fmt: skip
        data = final.to_json_bytes()
        writer.write_manifest(data, signer.sign_detached(data))
        bundle_path, zip_path = writer.commit()
    if verify:
        roots = trust_roots if trust_roots is not None else trust_roots_for(profile)
        report = verify_bundle(bundle_path, roots, lang="en", allow_demo=demo_allowed_for(profile))
        if not report.ok:
            _remove(bundle_path, zip_path)
            first = report.failures[0]
            raise _verify_error(report.exit_code)(
                f"the finished bundle fails verification ({first.name}: {first.message}); "
                "it was removed", path=bundle_path)  # fmt: skip
    return FinishResult(bundle_path=bundle_path, zip_path=zip_path,
                        documents=sum(d.file is not None for d in documents),
                        needs_review=review, verified=verify)  # fmt: skip


def _verify_error(code: int) -> type[DigitizeError]:
    return {int(ExitCode.VERIFY_HASH): HashMismatchError,
            int(ExitCode.VERIFY_SIGNATURE): SignatureInvalidError,
            int(ExitCode.VERIFY_TRUST): UntrustedError,
            int(ExitCode.VERIFY_STRUCTURE): BundleStructureError}.get(code, VerifyError)  # fmt: skip


def _remove(bundle: Path, zip_path: Path | None) -> None:
    shutil.rmtree(bundle, ignore_errors=True)
    if zip_path is not None:
        zip_path.unlink(missing_ok=True)


class ExtractionInputs:
    """Keeps each page's OCR (without hOCR) and hand-ink words as its result comes back, until
    its component is prepared; then hands them over in page order and forgets them."""

    def __init__(self, paper_types: dict[int, str | None]) -> None:
        self._paper_types = paper_types  # declared per component ordinal (dossier.yaml)
        self._kept: dict[int, dict[int, tuple[PageOcr, tuple[int, ...]]]] = {}
        self._lock = threading.Lock()

    def record(self, component: int, page: int, ocr: PageOcr, hand_words: tuple[int, ...]) -> None:
        with self._lock:
            self._kept.setdefault(component, {})[page] = (ocr.model_copy(update={"hocr": None}),
                                                          hand_words)  # fmt: skip

    def inputs_of(self, component: int) -> ExtractionInput:
        with self._lock:
            pages = self._kept.pop(component, {})
        ordered = [pages[i] for i in sorted(pages)]
        return ExtractionInput(paper_type=self._paper_types.get(component),
                               pages=tuple(o for o, _h in ordered),
                               hand_words=tuple(h for _o, h in ordered))  # fmt: skip


def declared_paper_types(source: Path) -> dict[int, str | None]:
    """Component ordinal → the paper type ``dossier.yaml`` declares for it (components are
    numbered in the order the file lists them; without that list nothing is declared)."""
    from digitize.ingest import DOSSIER_YAML, load_dossier_yaml

    path = Path(source) / DOSSIER_YAML
    if not path.is_file():
        return {}
    spec = load_dossier_yaml(path)
    components = getattr(spec, "components", None) or ()
    return {number: c.paper_type for number, c in enumerate(components, start=1)}


__all__ = [
    "FinishResult",
    "NotAPreparedBundleError",
    "OCR_SUFFIX",
    "PREPARATION_SUFFIX",
    "PREPARED_MARKER",
    "PREPARED_P7S",
    "PreparedBundle",
    "PreparedDocument",
    "PreparingSigner",
    "check_prepared_files",
    "finish_prepared_bundle",
    "ExtractionInput",
    "ExtractionInputs",
    "declared_paper_types",
    "read_marker",
    "write_marker",
]
