"""OCR benchmark: our OCR vs OCRmyPDF on the DEV corpus, plus header-field accuracy.

    .venv/bin/python bench/ocr.py [--limit N] [--no-ocrmypdf] [-v]

Pages are loaded here (JPEG/PNG, multi-page TIFF frames, PDF page images via pikepdf), not
through ``digitize.ingest``, so that OCR is measured on its own. Our pages are deskewed by
``digitize.clean.clean_page`` when it is implemented, else by undoing the corpus's true
orientation and skew (the output says which). OCRmyPDF gets the original scan files and does
its own ``--deskew --rotate-pages``. Seconds per page are wall time with the same number of
workers (2) for both, including decode and deskew.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rapidfuzz.distance import Levenshtein

from bench.corpus import CORPUS, BenchPage, corpus_pages, load_pixels  # noqa: E402
from digitize.clean import clean_page  # noqa: E402

TESSDATA = "/usr/share/tesseract-ocr/5/tessdata"


# --- metrics -------------------------------------------------------------------------------
def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def _base(ch: str) -> str:
    if ch in "đĐ":
        return "d"
    return unicodedata.normalize("NFD", ch)[0].lower()


def _tokens(text: str) -> list[str]:
    return [t.strip(PUNCT) for t in normalise(text).split(" ") if t.strip(PUNCT)]


PUNCT = ".,;:!?()[]{}\"'“”‘’«»…"


@dataclass
class Score:
    ref_chars: int = 0
    char_errors: int = 0
    diacritic_errors: int = 0
    ref_words: int = 0
    word_errors: int = 0
    missed_words: int = 0
    seconds: float = 0.0
    pages: int = 0

    def add(self, hyp: str, ref: str) -> None:
        h, r = normalise(hyp), normalise(ref)
        self.ref_chars += len(r)
        self.char_errors += Levenshtein.distance(h, r)
        for op in Levenshtein.editops(r, h):
            if op.tag == "replace" and _base(r[op.src_pos]) == _base(h[op.dest_pos]):
                self.diacritic_errors += 1
        hw, rw = h.split(" "), r.split(" ")
        self.ref_words += len(rw)
        self.word_errors += Levenshtein.distance(hw, rw)
        missed = Counter(_tokens(ref)) - Counter(_tokens(hyp))
        self.missed_words += sum(missed.values())
        self.pages += 1

    def row(self) -> list[str]:
        rc, rw = max(1, self.ref_chars), max(1, self.ref_words)
        return [
            f"{100 * self.char_errors / rc:.2f}",
            f"{100 * self.word_errors / rw:.2f}",
            f"{100 * self.diacritic_errors / rc:.2f}",
            f"{100 * self.missed_words / rw:.2f}",
            f"{self.seconds / max(1, self.pages):.2f}",
        ]


# --- our pipeline --------------------------------------------------------------------------
def _ours(page: BenchPage):
    from digitize.ocr import ocr_page

    started = time.perf_counter()
    pixels = load_pixels(page)
    cleaned, _record = clean_page(pixels, page.dpi)
    how = "digitize.clean"
    result = ocr_page(cleaned, page.dpi)
    seconds = time.perf_counter() - started
    return result.model_copy(update={"hocr": None}), how, seconds


# --- OCRmyPDF ------------------------------------------------------------------------------
def _ocrmypdf(source: Path, workdir: Path) -> tuple[list[str], float]:
    out_pdf = workdir / (source.stem + ".pdf")
    sidecar = workdir / (source.stem + ".txt")
    env = {**os.environ, "OMP_THREAD_LIMIT": "1", "TESSDATA_PREFIX": TESSDATA}
    cmd = [
        sys.executable, "-m", "ocrmypdf", "-l", "vie", "--deskew", "--rotate-pages", "--jobs", "2",
        "--output-type", "pdf", "--sidecar", str(sidecar), str(source), str(out_pdf),
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0 or not sidecar.exists():
        print(f"ocrmypdf failed on {source}: {proc.stderr.strip().splitlines()[-1:]}")
        return [], seconds
    return sidecar.read_text(encoding="utf-8").split("\f"), seconds


# --- header fields -------------------------------------------------------------------------
def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", "".join(_base(c) for c in normalise(text)))


def header_checks(fields, truth: dict) -> dict[str, tuple[bool, bool]]:
    """field → (correct, flagged for review)."""
    got = {f.name: f for f in fields}

    def value(name: str) -> str:
        return got[name].value if name in got else ""

    def review(*names: str) -> bool:
        return any(got[n].needs_review for n in names if n in got) or any(
            n not in got for n in names
        )

    number = value("code_number")
    if "code_year" in got:
        number += "/" + value("code_year")
    number_symbol = f"{number}/{value('code_notation')}"
    organ = " ".join(v for v in (value("parent_organ"), value("organ_name")) if v)
    return {
        "number/notation": (
            number_symbol == truth["number_symbol"],
            review("code_number", "code_notation"),
        ),
        "date": (value("issued_date") == truth["date"], review("issued_date")),
        "doc type": (value("type_name") == truth["doc_type"], review("type_name")),
        "issuing body": (_fold(organ) == _fold(truth["agency"]), review("organ_name")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="first N pages only")
    parser.add_argument("--no-ocrmypdf", action="store_true", help="skip the OCRmyPDF run")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--verbose", "-v", action="store_true", help="per-page CER")
    args = parser.parse_args()

    pages = corpus_pages()[: args.limit]
    print(f"{len(pages)} pages from {CORPUS}, {args.jobs} workers")

    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_ours, pages))
    ours_wall = time.perf_counter() - started
    how = sorted({r[1] for r in results})
    print(f"deskew for our OCR: {', '.join(how)}")
    ours = {"all": Score(), "clean": Score(), "normal": Score()}
    for page, (ocr, _how, _s) in zip(pages, results, strict=True):
        for key in ("all", page.profile):
            ours[key].add(ocr.text, page.gt_text)
    for score in ours.values():
        score.seconds = ours_wall * score.pages / max(1, len(pages))

    theirs: dict[str, Score] = {}
    if not args.no_ocrmypdf:
        theirs = {"all": Score(), "clean": Score(), "normal": Score()}
        by_source: dict[Path, list[BenchPage]] = {}
        for page in pages:
            by_source.setdefault(page.source, []).append(page)
        with tempfile.TemporaryDirectory() as tmp:
            for n, (source, group) in enumerate(by_source.items()):
                workdir = Path(tmp) / str(n)
                workdir.mkdir()
                texts, seconds = _ocrmypdf(source, workdir)
                for page in group:
                    text = texts[page.page_index] if page.page_index < len(texts) else ""
                    for key in ("all", page.profile):
                        theirs[key].add(text, page.gt_text)
                        theirs[key].seconds += seconds / len(group)

    if args.verbose:
        for page, (ocr, _how, seconds) in zip(pages, results, strict=True):
            one = Score()
            one.add(ocr.text, page.gt_text)
            print(
                f"  {page.name:18} {page.profile:7} CER {one.row()[0]:>6} %  "
                f"conf {ocr.mean_confidence:5.1f}  review {ocr.needs_review}  {seconds:.2f} s"
            )

    header = ["CER %", "WER %", "diacritic %", "missed words %", "s/page"]
    print("\nOCR accuracy (NFC, whitespace-normalised; errors / reference length)")
    print(f"{'pipeline':<24}" + "".join(f"{h:>16}" for h in header))
    for name, table in (("ours", ours), ("OCRmyPDF", theirs)):
        for key, score in table.items():
            if score.pages:
                label = f"{name} [{key}, {score.pages} p]"
                print(f"{label:<24}" + "".join(f"{v:>16}" for v in score.row()))

    # Header fields: one extraction per component over its pages.
    from digitize.extract import extract_fields

    components: dict[Path, list[tuple[BenchPage, object]]] = {}
    for page, (ocr, _how, _s) in zip(pages, results, strict=True):
        components.setdefault(page.gt_json.parent, []).append((page, ocr))
    tally: dict[str, list[int]] = {}
    for folder, items in components.items():
        first_page = items[0][0]
        if not first_page.truth.get("has_header_block") or first_page.truth["page"] != 1:
            continue
        fields = extract_fields([ocr for _p, ocr in items])
        for name, (correct, flagged) in header_checks(fields, first_page.truth["header"]).items():
            counts = tally.setdefault(name, [0, 0, 0, 0])
            counts[0] += 1
            counts[1] += correct
            counts[2] += (not correct) and flagged
            counts[3] += (not correct) and not flagged
            if args.verbose and not correct:
                got = {f.name: f.value for f in fields}
                print(f"  {folder.parent.name}/{folder.name} {name}: got {got}")
    print("\nHeader fields (pages with a header block)")
    print(f"{'field':<18}{'pages':>8}{'correct %':>12}{'flagged':>10}{'wrong':>8}")
    total = [0, 0, 0, 0]
    for name, counts in tally.items():
        total = [a + b for a, b in zip(total, counts, strict=True)]
        print(
            f"{name:<18}{counts[0]:>8}{100 * counts[1] / counts[0]:>12.1f}{counts[2]:>10}{counts[3]:>8}"
        )
    if total[0]:
        print(
            f"{'all':<18}{total[0]:>8}{100 * total[1] / total[0]:>12.1f}{total[2]:>10}{total[3]:>8}"
        )


if __name__ == "__main__":
    main()
