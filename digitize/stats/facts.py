"""What the statistics need from one verified manifest, in a small record the index keeps.

``facts_from_manifest`` reads a ``Manifest`` once (when its bundle has just been verified) and
keeps only counts, times and page sizes; ``BundleFacts`` round-trips through JSON so the index
(``digitize.stats.index``) can hand it back without parsing the manifest again. No value read
from the papers (extraction values, names of citizens, identifiers) is kept: the statistics
never carry personal data; the digitiser's name and certificate hash are the staff's.

Definitions (the contract of every figure in the report)
    * physical page: one ``(doc_ordinal, physical_page)`` of a document; its size is the size
      of its first image.
    * image: one ``PageEntry`` (a page with a note slip is captured twice, R6:
      ``note_slip_images`` = images − physical pages).
    * page size: millimetres = pixels ÷ dpi × 25.4 of the image as stored (after clean-up),
      orientation ignored; classified later (``paper_class``) so the tolerance stays a setting.
    * colour: the page's ``colour_mode`` (RGB, gray, bilevel), per image.
    * fields corrected by a person: ``fields_corrected_by_person`` (the one place to adapt
      when reviews record corrections differently).
    * OCR confidence: per image ``ocr_mean_confidence`` (0–100); the mean is over images.
    * scan-to-signature: per signed document, from the earliest ``captured_at`` of its pages
      (the scan, R21) — or ``signature.scan_time_shown`` when no page has one — to
      ``signature.signed_at``, in seconds.
    * work date: the manifest's ``created_at`` (the moment the digitiser signed the bundle),
      read in Vietnam time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any, Literal

from digitize.manifest import Manifest
from digitize.models import ColourMode
from digitize.util import VN_TZ

FACTS_VERSION = 3  # bump when BundleFacts or a definition above changes: the index re-derives

PaperClass = Literal["A4", "A3", "other"]
PAPER_CLASSES: tuple[PaperClass, ...] = ("A4", "A3", "other")
_PAPER_MM: dict[PaperClass, tuple[float, float]] = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}


def fields_corrected_by_person(manifest: Manifest) -> int:
    """How many extracted values a person entered or corrected (R36: ``source == "manual"``).

    Counted once per (file, field): the review record's ``correct`` changes (header fields and
    Art. 9 values alike, across every review of the bundle), plus any extraction entry or Art. 9
    value whose ``source`` is ``manual`` without a review record (entered by another system).
    Art. 9 values are named as the review record names them (``art9.<key>``,
    ``art9.fields.<key>``), so a value both recorded and marked manual counts once. Confirming
    a machine reading is not a correction.
    """
    corrected = {
        (change.file, change.field)
        for review in manifest.reviews
        for change in review.changes
        if change.action == "correct" and change.field
    }
    for doc in manifest.documents:
        for entry in doc.extraction:
            if entry.source == "manual":
                corrected.add((doc.file or "", entry.field))
        if doc.art9 is not None:
            named = [(f"art9.{key}", value) for key, value in doc.art9.values().items()]
            named += [(f"art9.fields.{key}", value) for key, value in doc.art9.fields.items()]
            corrected.update((doc.file or "", name) for name, value in named
                             if value.source == "manual")
    return len(corrected)


def paper_class(short_mm: float, long_mm: float, tolerance: float) -> PaperClass:
    """A4 or A3 when both sides are within ``tolerance`` (a share) of the ISO size."""
    for name, (short_ref, long_ref) in _PAPER_MM.items():
        if (abs(short_mm - short_ref) <= short_ref * tolerance
                and abs(long_mm - long_ref) <= long_ref * tolerance):
            return name
    return "other"


def _local(moment: datetime) -> datetime:
    return moment.replace(tzinfo=VN_TZ) if moment.tzinfo is None else moment.astimezone(VN_TZ)


@dataclass(frozen=True, slots=True)
class BundleFacts:
    """The counted facts of one verified bundle. A slotted dataclass rather than a pydantic
    model: an indexed run rebuilds 100,000 of these and validation would dominate its time;
    the values were validated once, as a ``Manifest``, before they were stored."""

    manifest_sha256: str
    dossier_code: str
    procedure_code: str | None
    receiving_organ_id: str | None
    profile: str
    digitiser: str
    digitiser_cert_sha256: str
    digitiser_is_demo: bool
    created_at: datetime  # Vietnam time
    components: int
    not_digitised: int
    pages: int  # physical pages
    images: int
    # (short side, long side in tenths of a millimetre, physical pages, images) per size seen
    sizes: tuple[tuple[int, int, int, int], ...]
    images_colour: int
    images_gray: int
    images_bilevel: int
    needs_review: bool
    reviewed_fields: int
    ocr_confidence_sum: float
    ocr_confidence_images: int
    scan_to_signature_s: tuple[float, ...]  # one per signed document

    @property
    def work_date(self) -> date:
        return self.created_at.date()

    def to_json(self) -> str:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> BundleFacts:
        data: dict[str, Any] = json.loads(text)
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        data["sizes"] = tuple(tuple(s) for s in data["sizes"])
        data["scan_to_signature_s"] = tuple(data["scan_to_signature_s"])
        return cls(**data)

    def pages_by_class(self, tolerance: float, basis: Literal["images", "physical"]
                       ) -> dict[PaperClass, int]:
        counts: dict[PaperClass, int] = dict.fromkeys(PAPER_CLASSES, 0)
        for short10, long10, physical, images in self.sizes:
            name = paper_class(short10 / 10, long10 / 10, tolerance)
            counts[name] += images if basis == "images" else physical
        return counts


def facts_from_manifest(manifest: Manifest, manifest_sha256: str) -> BundleFacts:
    """The facts of one manifest (see the module docstring for every definition)."""
    sizes: dict[tuple[int, int], list[int]] = {}
    pages = images = colour = gray = bilevel = conf_n = 0
    conf_sum = 0.0
    durations: list[float] = []
    not_digitised = 0
    for doc in manifest.documents:
        if doc.not_digitised_reason is not None:
            not_digitised += 1
        seen_physical: set[int] = set()
        for page in doc.pages:
            images += 1
            key = _size_key(page.width_px, page.height_px, page.dpi)
            slot = sizes.setdefault(key, [0, 0])
            slot[1] += 1
            if page.physical_page not in seen_physical:
                seen_physical.add(page.physical_page)
                pages += 1
                slot[0] += 1
            if page.colour_mode == ColourMode.RGB:
                colour += 1
            elif page.colour_mode == ColourMode.GRAY:
                gray += 1
            else:
                bilevel += 1
            if page.ocr_mean_confidence is not None:
                conf_sum += page.ocr_mean_confidence
                conf_n += 1
        if doc.signature is not None:
            captured = [_local(p.captured_at) for p in doc.pages if p.captured_at is not None]
            start = min(captured) if captured else _local(doc.signature.scan_time_shown)
            durations.append((_local(doc.signature.signed_at) - start).total_seconds())
    return BundleFacts(
        manifest_sha256=manifest_sha256,
        dossier_code=manifest.dossier_code,
        procedure_code=manifest.procedure_code,
        receiving_organ_id=manifest.receiving_organ_id,
        profile=manifest.profile,
        digitiser=manifest.digitiser.full_name,
        digitiser_cert_sha256=manifest.digitiser.cert_sha256,
        digitiser_is_demo=manifest.digitiser.is_demo,
        created_at=_local(manifest.created_at),
        components=len(manifest.documents),
        not_digitised=not_digitised,
        pages=pages,
        images=images,
        sizes=tuple((s, lg, c[0], c[1]) for (s, lg), c in sorted(sizes.items())),
        images_colour=colour,
        images_gray=gray,
        images_bilevel=bilevel,
        needs_review=manifest.needs_review,
        reviewed_fields=fields_corrected_by_person(manifest),
        ocr_confidence_sum=conf_sum,
        ocr_confidence_images=conf_n,
        scan_to_signature_s=tuple(durations),
    )


def _size_key(width_px: int, height_px: int, dpi: float) -> tuple[int, int]:
    if dpi <= 0:
        return (0, 0)
    a, b = (round(v / dpi * 254) for v in (width_px, height_px))  # tenths of a millimetre
    return (min(a, b), max(a, b))

