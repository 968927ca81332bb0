"""The OCR engine seam: what every reader of text (OCR, orientation) goes through.

An engine is chosen by name (``ocr.engine`` in a profile, default ``tesseract``) and built by
a registered factory from the ``OcrSettings``; ``get_engine`` keeps one engine per process
and settings, so the OCR stage and the clean stage's orientation check use the same object
(and the same loaded model). A new engine plugs in without touching the pipeline:

* in code: ``register_engine("name", factory)``;
* as a separate distribution: an entry point in the group ``digitize.ocr_engines`` whose
  object is such a factory (looked up the first time the name is asked for).

Engine-specific options live with the engine (``OcrSettings.tesseract`` for tesseract);
everything else in ``OcrSettings`` (thresholds, restoration, second readings) is
engine-neutral, except that word confidences are on a 0–100 scale, which an engine SHALL
report (rescale if its native scale differs).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol, runtime_checkable

import numpy as np

from digitize.errors import OcrError
from digitize.settings import OcrSettings

ENTRY_POINT_GROUP = "digitize.ocr_engines"


@dataclass(frozen=True)
class RawWord:
    """A word as the engine reports it, before our layout analysis."""

    text: str
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the image given
    confidence: float  # 0..100
    block: int
    line_key: tuple[int, ...]  # the engine's own line identity (tesseract: block, par, line)


@dataclass(frozen=True)
class RawPage:
    words: tuple[RawWord, ...]


@dataclass(frozen=True)
class ReadingHints:
    """What the OCR stage knows about the image it hands over; an engine MAY use it.

    ``degraded``: a restored copy of a poor scan (uneven paper, specks, faint ink): use the
    engine's robust mode if it has one. ``uniform_block``: read the image as one block of
    text lines without the engine's own page layout analysis (a second reading of a page
    whose layout analysis dropped text).
    """

    degraded: bool = False
    uniform_block: bool = False


@dataclass(frozen=True)
class OrientationReading:
    """An engine's own opinion of how a page is turned.

    ``turn_deg`` uses the clean stage's convention: the counter-clockwise turn the content
    has been given (0/90/180/270); ``rotate_orientation(pixels, turn_deg)`` undoes it.
    ``confidence`` is 0..1 on the engine's own evidence (1 = as sure as the engine gets).
    """

    turn_deg: int
    confidence: float
    detail: str = ""


@runtime_checkable
class OcrEngine(Protocol):
    """An OCR engine.

    Implementations SHALL return words in pixels of the given image with confidences on a
    0–100 scale, SHALL NOT raise for a page without text (empty result), SHALL raise
    ``OcrError`` when the engine itself fails (bad model, crash), and SHALL be usable from
    several threads of one process (e.g. one native handle per thread).
    ``get_orientation`` SHALL return None when the engine has no opinion (no orientation
    model, too little text) rather than guess. ``hints`` MAY be ignored.
    """

    name: str
    version: str
    language: str

    def recognise_raw(
        self, pixels: np.ndarray, dpi: float, hints: ReadingHints | None = None
    ) -> RawPage: ...

    def get_orientation(self, pixels: np.ndarray, dpi: float) -> OrientationReading | None: ...


EngineFactory = Callable[[OcrSettings], OcrEngine]

_FACTORIES: dict[str, EngineFactory] = {}
_ENGINES: dict[str, OcrEngine] = {}
_LOCK = threading.Lock()


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make ``ocr.engine: name`` build engines with ``factory(settings)``."""
    with _LOCK:
        _FACTORIES[name] = factory
        for key in [k for k in _ENGINES if json.loads(k)["engine"] == name]:
            del _ENGINES[key]


def engine_names() -> tuple[str, ...]:
    """Engines available now: registered ones and installed entry points."""
    found = set(_FACTORIES)
    found.update(ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))
    return tuple(sorted(found))


def _factory(name: str) -> EngineFactory:
    if name in _FACTORIES:
        return _FACTORIES[name]
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            factory = ep.load()
            _FACTORIES[name] = factory
            return factory  # type: ignore[no-any-return]
    raise OcrError(
        f"unknown OCR engine {name!r}",
        hint=f"set ocr.engine to one of: {', '.join(engine_names()) or 'none installed'}",
    )


def _key(settings: OcrSettings) -> str:
    # Only what builds the engine: thresholds and restoration choices do not.
    if settings.engine == "tesseract":
        options: object = settings.tesseract.model_dump(mode="json")
    else:
        options = settings.engine_options
    return json.dumps(
        {"engine": settings.engine, "language": settings.language, "options": options},
        sort_keys=True,
    )


def get_engine(settings: OcrSettings | None = None) -> OcrEngine:
    """The per-process engine for these settings (built on first use, then reused)."""
    settings = settings or OcrSettings()
    key = _key(settings)
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _factory(settings.engine)(settings)
            _ENGINES[key] = engine
        return engine
