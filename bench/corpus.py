"""Pages of ../shared/corpus, ../shared/corpus-harsh (and the real scans) as the scanner
delivered them, for benches.

Loaded here with Pillow/pikepdf rather than through ``digitize.ingest``, so that a stage bench
measures that stage on its own. The scan quality of a page (``clean`` / ``normal`` / ``harsh``)
comes from its ground truth (``degradation.profile``); it is used to group scores only, never
passed to the code under test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pikepdf
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpus"
CORPUS_HARSH = SHARED / "corpus-harsh"
REAL_SCANS = SHARED / "real-scans"
QUALITIES = ("clean", "normal", "harsh")


def require(path: Path) -> Path:
    """Stop with one clear line when the shared data the benches read is not beside the repo."""
    if not path.exists():
        raise SystemExit(
            f"bench data not found: {path} (the benches need ../shared beside the repo)"
        )
    return path


@dataclass(frozen=True)
class BenchPage:
    name: str
    source: Path  # the scan file holding the page
    page_index: int  # frame of a TIFF, page of a PDF
    dpi: float
    skew: float  # corpus convention: content turned counter-clockwise by this
    orientation: int
    truth: dict = field(default_factory=dict, compare=False)  # the page's ground-truth JSON
    gt_json: Path | None = None

    @property
    def gt_text(self) -> str:
        assert self.gt_json is not None, "not a corpus page"
        return (self.gt_json.parent / self.truth["gt_text"]).read_text(encoding="utf-8")

    @property
    def profile(self) -> str:
        return self.truth["degradation"]["profile"]

    @property
    def component(self) -> str:
        """``corpus/dossier/component``: the scan job the page belongs to."""
        return self.name.rsplit("/", 1)[0]


def corpus_pages(root: Path = CORPUS) -> list[BenchPage]:
    """Every page of one corpus, in dossier / component / page order."""
    pages = []
    for gt in sorted(require(root).glob("*/c*/p*.json")):
        truth = json.loads(gt.read_text(encoding="utf-8"))
        image = truth["image"]
        pages.append(
            BenchPage(
                name=f"{root.name}/{gt.parent.parent.name}/{gt.parent.name}/{gt.stem}",
                source=gt.parent / image["file"],
                page_index=int(image["page_index"]),
                dpi=float(image["dpi"]),
                skew=float(truth["skew_deg"]),
                orientation=int(truth["orientation_deg"]),
                truth=truth,
                gt_json=gt,
            )
        )
    return pages


def to_array(image: Image.Image) -> np.ndarray:
    """uint8 gray (bilevel as 0/255) or RGB, as the pipeline's stages take them."""
    if image.mode == "1":
        image = image.convert("L")
    elif image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    return np.array(image)


def pdf_page_image(path: Path, index: int) -> tuple[np.ndarray, float]:
    """The largest image of a PDF page, turned as the page's /Rotate shows it, and its dpi."""
    with pikepdf.open(path) as pdf:
        page = pdf.pages[index]
        images = [pikepdf.PdfImage(x) for x in page.get_images().values()]
        best = max(images, key=lambda im: im.width * im.height)
        pixels = to_array(best.as_pil_image())
        box = [float(v) for v in page.mediabox]
        rotate = int(page.obj.get("/Rotate", 0)) % 360
    width_pt = abs(box[3] - box[1]) if rotate in (90, 270) else abs(box[2] - box[0])
    across = pixels.shape[1] if rotate in (0, 180) else pixels.shape[0]
    dpi = across / (width_pt / 72.0)
    if rotate:
        # /Rotate turns the page clockwise when shown.
        pixels = np.ascontiguousarray(np.rot90(pixels, k=-(rotate // 90)))
    return pixels, dpi


def load_pixels(page: BenchPage) -> np.ndarray:
    if page.source.suffix.lower() == ".pdf":
        return pdf_page_image(page.source, page.page_index)[0]
    with Image.open(page.source) as image:
        if page.page_index:
            image.seek(page.page_index)
        return to_array(image)


def components(pages: list[BenchPage]) -> dict[str, list[BenchPage]]:
    """Pages grouped by scan job (one component = what one OCRmyPDF call gets), in order."""
    grouped: dict[str, list[BenchPage]] = {}
    for page in pages:
        grouped.setdefault(page.component, []).append(page)
    for group in grouped.values():
        group.sort(key=lambda p: p.truth.get("page", 0))
    return grouped


def component_pdf(group: list[BenchPage], target: Path) -> Path:
    """The component as one PDF, as a scanner's "scan to PDF" would give it: an image-only PDF
    as it is, image files and TIFF frames wrapped by img2pdf (no re-encoding: JPEG and CCITT G4
    data pass through, PNG is recompressed losslessly)."""
    import img2pdf

    sources = sorted({p.source for p in group})
    if len(sources) == 1 and sources[0].suffix.lower() == ".pdf":
        target.write_bytes(sources[0].read_bytes())
    else:
        target.write_bytes(img2pdf.convert([str(s) for s in sources]))
    return target


T = TypeVar("T")


def select_components(
    roots: list[Path], limit: int = 0
) -> tuple[list[BenchPage], dict[str, list[BenchPage]]]:
    """The pages of ``roots`` grouped by component; ``limit``: the first N components only."""
    pages = [p for root in roots for p in corpus_pages(root)]
    groups = components(pages)
    if limit:
        groups = dict(list(groups.items())[:limit])
        pages = [p for g in groups.values() for p in g]
    return pages, groups


def map_per_component(
    groups: dict[str, list[BenchPage]], work: Callable[[BenchPage], T], jobs: int
) -> tuple[dict[str, list[T]], dict[str, float]]:
    """``work`` over each component's pages on a fresh pool of ``jobs`` workers (as one
    ``digitize run`` would), components one after another; the wall time of each."""
    from digitize.pipeline import new_process_pool

    outs: dict[str, list[T]] = {}
    walls: dict[str, float] = {}
    for name, group in groups.items():
        started = time.perf_counter()
        if jobs <= 1:
            outs[name] = [work(p) for p in group]
        else:
            pool: Executor
            with new_process_pool(jobs) as pool:
                outs[name] = list(pool.map(work, group))
        walls[name] = time.perf_counter() - started
        print(f"  digitize {name}: {len(group)} p, {walls[name]:.1f} s", flush=True)
    return outs, walls
