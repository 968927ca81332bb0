"""tesseract behind the engine seam, in-process through tesserocr.

Measured on the DEV corpus (30 pages, 2 workers): tesserocr 0.76 s/page vs 1.14 s/page for
one tesseract CLI process per page (model reload + image hand-over), same CER, so the
in-process API is the engine. Each (process, thread) keeps its own API objects: the model loads
once per worker, and tesseract's API is not thread-safe.

Threads: tesseract built with OpenMP runs 4× slower on a small machine with its default
threading than with ``OMP_THREAD_LIMIT=1`` (facts.md), and OpenMP reads that variable once,
when the library is loaded. So the first import of tesserocr happens with the variable set to 1
unless the caller set it, and the caller's environment is restored right after: nothing leaks
into a library caller's process environment. (The PyPI wheel of tesserocr bundles its own
libtesseract, 5.5.4 without OpenMP today; the guard matters for builds against Debian's.)

Orientation: tesseract's OSD model (``osd.traineddata``, Debian ``tesseract-ocr-osd``, a
dependency of ``tesseract-ocr``). It names the turn with a confidence where about 15 is "sure";
on Vietnamese pages it usually finds the right turn but with confidence 1–14 (facts.md), so the
clean stage takes it as one vote among several, never alone.
"""

from __future__ import annotations

import os
import sys
import threading
import unicodedata
from pathlib import Path
from types import ModuleType

import numpy as np

from digitize.errors import OcrError
from digitize.ocr.engine import (
    OrientationReading,
    RawPage,
    RawWord,
    ReadingHints,
    register_engine,
)
from digitize.settings import OcrSettings

DEBIAN_TESSDATA = "/usr/share/tesseract-ocr/5/tessdata"
# OSD's own "reasonably confident" level (tesserocr documentation): maps to confidence 1.0.
OSD_SURE = 15.0
# tesseract's ``thresholding_method`` values (tesseract ≥ 5.0).
OTSU, SAUVOLA = "0", "2"
UNIFORM_BLOCK_PSM = 6

_IMPORT_LOCK = threading.Lock()


def import_tesserocr() -> ModuleType:
    """tesserocr, loaded with one OpenMP thread unless the caller chose otherwise."""
    module = sys.modules.get("tesserocr")
    if module is not None:
        return module
    with _IMPORT_LOCK:
        unset = "OMP_THREAD_LIMIT" not in os.environ
        if unset:
            os.environ["OMP_THREAD_LIMIT"] = "1"
        try:
            import tesserocr
        except ImportError as exc:  # pragma: no cover - dependency of the package
            raise OcrError(f"tesserocr is not installed ({exc})") from exc
        finally:
            if unset:
                os.environ.pop("OMP_THREAD_LIMIT", None)
        return tesserocr


def _parse_tsv(tsv: str) -> tuple[RawWord, ...]:
    words = []
    for row in tsv.splitlines():
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = unicodedata.normalize("NFC", cols[11]).strip()
        if not text:
            continue
        left, top, w, h = (int(c) for c in cols[6:10])
        words.append(
            RawWord(
                text=text,
                bbox=(left, top, left + w, top + h),
                confidence=max(0.0, float(cols[10])),
                block=int(cols[2]),
                line_key=(int(cols[2]), int(cols[3]), int(cols[4])),
            )
        )
    return tuple(words)


def _set_image(api: object, pixels: np.ndarray, dpi: float) -> None:
    image = np.ascontiguousarray(pixels)
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    api.SetImageBytes(image.tobytes(), width, height, channels, width * channels)  # type: ignore[attr-defined]
    api.SetSourceResolution(max(70, int(round(dpi))))  # type: ignore[attr-defined]


class TesseractEngine:
    """tesseract via tesserocr; API objects per (process, thread)."""

    name = "tesseract"

    def __init__(self, language: str = "vie", tessdata_dir: str | None = None, psm: int = 3):
        self.language = language
        self.tessdata_dir = tessdata_dir or DEBIAN_TESSDATA
        self.psm = psm
        self._local = threading.local()
        tesserocr = import_tesserocr()
        self.version = str(tesserocr.tesseract_version().split()[1])

    def _thread_state(self) -> threading.local:
        # A forked worker must not reuse the parent's API objects.
        if getattr(self._local, "pid", None) != os.getpid():
            self._local.api = None
            self._local.osd = None
            self._local.pid = os.getpid()
        return self._local

    def _api(self):  # -> tesserocr.PyTessBaseAPI
        state = self._thread_state()
        if state.api is None:
            tesserocr = import_tesserocr()
            model = Path(self.tessdata_dir)
            for lang in self.language.split("+"):
                if not (model / f"{lang}.traineddata").is_file():
                    raise OcrError(
                        f"tesseract model {lang!r} not found in {self.tessdata_dir}",
                        hint="install tesseract-ocr-vie or set ocr.tesseract.tessdata_dir",
                    )
            try:
                state.api = tesserocr.PyTessBaseAPI(
                    path=self.tessdata_dir,
                    lang=self.language,
                    psm=self.psm,
                    oem=tesserocr.OEM.LSTM_ONLY,
                )
            except RuntimeError as exc:
                raise OcrError(
                    f"tesseract failed to load {self.language!r} from {self.tessdata_dir}: {exc}"
                ) from exc
        return state.api

    def _osd_api(self):  # -> tesserocr.PyTessBaseAPI | None
        state = self._thread_state()
        if state.osd is None:
            if not (Path(self.tessdata_dir) / "osd.traineddata").is_file():
                return None
            tesserocr = import_tesserocr()
            try:
                state.osd = tesserocr.PyTessBaseAPI(
                    path=self.tessdata_dir, lang="osd", psm=tesserocr.PSM.OSD_ONLY
                )
            except RuntimeError:
                return None
        return state.osd

    def recognise_raw(
        self, pixels: np.ndarray, dpi: float, hints: ReadingHints | None = None
    ) -> RawPage:
        """Words of one image. Hints: ``degraded`` switches tesseract's binarisation (which
        drives its page analysis) from global Otsu to Sauvola, local and tolerant of uneven
        paper; ``uniform_block`` reads with PSM 6 (one uniform block of text) instead of the
        configured automatic layout. Both are reset after the call."""
        api = self._api()
        hints = hints or ReadingHints()
        if hints.degraded:
            api.SetVariable("thresholding_method", SAUVOLA)
        if hints.uniform_block:
            api.SetPageSegMode(UNIFORM_BLOCK_PSM)
        try:
            _set_image(api, pixels, dpi)
            if not api.Recognize():
                raise OcrError("tesseract could not recognise the page")
            words = _parse_tsv(api.GetTSVText(0))
        finally:
            api.Clear()
            if hints.degraded:
                api.SetVariable("thresholding_method", OTSU)
            if hints.uniform_block:
                api.SetPageSegMode(self.psm)
        return RawPage(words)

    def get_orientation(self, pixels: np.ndarray, dpi: float) -> OrientationReading | None:
        """tesseract's OSD. Its ``orient_deg`` is the clockwise turn that was applied to the
        image, i.e. our counter-clockwise content turn read the other way round."""
        api = self._osd_api()
        if api is None:
            return None
        _set_image(api, pixels, dpi)
        try:
            found = api.DetectOrientationScript()
        except RuntimeError:
            found = None
        api.Clear()
        if not found:
            return None
        turn = (360 - int(found["orient_deg"])) % 360
        conf = float(found["orient_conf"])
        return OrientationReading(
            turn_deg=turn,
            confidence=max(0.0, min(1.0, conf / OSD_SURE)),
            detail=f"osd {found['orient_deg']}° conf {conf:.1f} {found.get('script_name', '')}",
        )


def tesseract_factory(settings: OcrSettings) -> TesseractEngine:
    options = settings.tesseract
    return TesseractEngine(settings.language, options.tessdata_dir, options.page_segmentation_mode)


register_engine("tesseract", tesseract_factory)
