"""OCR benchmark: digitize vs OCRmyPDF side by side, CER by scan quality, seconds per page.

    .venv/bin/python bench/ocr.py [--jobs 2] [--corpus DIR ...] [--no-ocrmypdf]
                                  [--results ocr] [--limit-components N] [-v]

What runs, and how the two sides are kept even:

* Pages: every page of ``../shared/corpus`` and ``../shared/corpus-harsh`` (or the ``--corpus``
  folders), grouped by component (one scan job: a multi-page TIFF or PDF, or a run of page
  images). The scan quality (clean / normal / harsh) comes from the ground truth and only
  groups the scores.
* digitize: each component's pages go to a fresh pool of ``--jobs`` page workers (the
  pipeline's own ``new_process_pool``: spawn start, one tesseract thread per worker), each page
  through the same calls as ``digitize.pipeline.process_page``: decode, ``clean_page``,
  ``ocr_page``. Pages are decoded here with Pillow/pikepdf (``bench/corpus.py``), not through
  ingest, so OCR is measured on its own.
* OCRmyPDF: one ``ocrmypdf -l vie --deskew --rotate-pages --jobs N --output-type pdf --sidecar``
  call per component, N = ``--jobs``. A component made of page images is first wrapped into one
  PDF with img2pdf (no re-encoding; not timed), an image-only PDF is given as it is.
  ``OMP_THREAD_LIMIT`` is not set for it: OCRmyPDF sizes tesseract's threads itself.
* Warm-up: neither side. Each component's wall time includes starting its workers (our pool
  spawn and model load; OCRmyPDF's process start), so both pay start-up once per component.
  Seconds per page of a quality class = the summed wall time of its components / its pages.
  Components are run one after another, ours first, then OCRmyPDF's, on the same machine; on a
  shared machine, compare the two columns of one run, not runs of different days.
* Failures: a component OCRmyPDF fails on (non-zero exit, no sidecar) is listed and its pages
  are left out of OCRmyPDF's scores (not scored as empty text); a page we flag ``ocr_failed``
  is scored as read (its empty text counts), since that is what our output holds.
* Reading order: the ground truth reads the two-column header block row by row (corpus README).
  ``digitize.ocr`` orders lines that way on purpose; OCRmyPDF keeps tesseract's own order (often
  the whole left column first), which costs it CER and WER without losing text. The order-free
  "missed words" column (reference words absent from the output, counted as a multiset) shows
  the text each side dropped regardless of order.

Metrics: text NFC-normalised, whitespace runs collapsed to one space. CER = character
Levenshtein distance / reference length; WER the same over space-separated words; "del share"
= deletions / all character edits (dropped text); "diacritic" = substitutions between letters
with the same base letter. The table goes to ``bench/results/<--results>.md``.
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
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rapidfuzz.distance import Levenshtein  # noqa: E402

from bench.corpus import (  # noqa: E402
    CORPUS,
    CORPUS_HARSH,
    QUALITIES,
    BenchPage,
    component_pdf,
    load_pixels,
    map_per_component,
    select_components,
)
from bench.results import markdown_table, write_results  # noqa: E402

TESSDATA = "/usr/share/tesseract-ocr/5/tessdata"
PUNCT = ".,;:!?()[]{}\"'“”‘’«»…"


# --- metrics -------------------------------------------------------------------------------
def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def _base(ch: str) -> str:
    if ch in "đĐ":
        return "d"
    return unicodedata.normalize("NFD", ch)[0].lower()


def _tokens(text: str) -> list[str]:
    return [t.strip(PUNCT) for t in normalise(text).split(" ") if t.strip(PUNCT)]


@dataclass
class Score:
    ref_chars: int = 0
    char_errors: int = 0
    deletions: int = 0
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
            if op.tag == "delete":
                self.deletions += 1
            elif op.tag == "replace" and _base(r[op.src_pos]) == _base(h[op.dest_pos]):
                self.diacritic_errors += 1
        hw, rw = h.split(" "), r.split(" ")
        self.ref_words += len(rw)
        self.word_errors += Levenshtein.distance(hw, rw)
        missed = Counter(_tokens(ref)) - Counter(_tokens(hyp))
        self.missed_words += sum(missed.values())
        self.pages += 1

    @property
    def cer(self) -> float:
        return 100 * self.char_errors / max(1, self.ref_chars)

    def row(self) -> list[str]:
        rc, rw = max(1, self.ref_chars), max(1, self.ref_words)
        return [
            str(self.pages),
            f"{self.cer:.2f}",
            f"{100 * self.word_errors / rw:.2f}",
            f"{100 * self.missed_words / rw:.2f}",
            f"{100 * self.deletions / max(1, self.char_errors):.0f}",
            f"{100 * self.diacritic_errors / rc:.2f}",
            f"{self.seconds / max(1, self.pages):.2f}",
        ]


SCORE_HEADER = [
    "pages",
    "CER %",
    "WER %",
    "missed words % (order-free)",
    "del share %",
    "diacritic %",
    "s/page",
]


# --- digitize ------------------------------------------------------------------------------
@dataclass
class OurPage:
    text: str
    mean_confidence: float
    needs_review: bool
    flags: tuple[str, ...]
    orientation: int
    seconds: float
    fields: object = None  # the PageOcr, for header extraction (hOCR dropped)


def _ours(page: BenchPage) -> OurPage:
    """One page exactly as ``digitize.pipeline.process_page`` treats it (default settings)."""
    from digitize.clean import clean_page
    from digitize.ocr import ocr_page

    started = time.perf_counter()
    pixels = load_pixels(page)
    cleaned, record = clean_page(pixels, page.dpi)
    result = ocr_page(cleaned, page.dpi)
    return OurPage(
        text=result.text,
        mean_confidence=result.mean_confidence,
        needs_review=result.needs_review,
        flags=tuple(f.code for f in (*record.flags, *result.flags)),
        orientation=record.orientation_deg,
        seconds=time.perf_counter() - started,
        fields=result.model_copy(update={"hocr": None}),
    )


def run_ours(groups: dict[str, list[BenchPage]], jobs: int) -> tuple[dict[str, OurPage], dict]:
    """All components, one after another, each on a fresh pool of ``jobs`` workers."""
    outs, walls = map_per_component(groups, _ours, jobs)
    results = {page.name: out for name, group in groups.items()
               for page, out in zip(group, outs[name], strict=True)}  # fmt: skip
    return results, walls


# --- OCRmyPDF ------------------------------------------------------------------------------
@dataclass
class TheirComponent:
    texts: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""


def run_ocrmypdf(groups: dict[str, list[BenchPage]], jobs: int, work: Path) -> dict:
    env = {**os.environ, "TESSDATA_PREFIX": TESSDATA}
    env.pop("OMP_THREAD_LIMIT", None)  # OCRmyPDF sets tesseract's thread count itself
    out: dict[str, TheirComponent] = {}
    for n, (name, group) in enumerate(groups.items()):
        source = component_pdf(group, work / f"in-{n}.pdf")
        out_pdf, sidecar = work / f"out-{n}.pdf", work / f"out-{n}.txt"
        cmd = [
            sys.executable, "-m", "ocrmypdf", "-l", "vie", "--deskew", "--rotate-pages",
            "--jobs", str(jobs), "--output-type", "pdf", "--sidecar", str(sidecar),
            str(source), str(out_pdf),
        ]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        result = TheirComponent(seconds=time.perf_counter() - started)
        if proc.returncode != 0 or not sidecar.exists():
            tail = proc.stderr.strip().splitlines()[-1:] or ["no message"]
            result.error = f"exit {proc.returncode}: {tail[0][:200]}"
        else:
            result.texts = sidecar.read_text(encoding="utf-8").split("\f")
        out[name] = result
        status = result.error or "ok"
        print(f"  OCRmyPDF {name}: {len(group)} p, {result.seconds:.1f} s, {status}", flush=True)
    return out


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


def header_table(groups: dict[str, list[BenchPage]], ours: dict[str, OurPage]) -> str:
    from digitize.extract import extract_fields

    tally: dict[str, list[int]] = {}
    wrong: list[str] = []
    for component, group in groups.items():
        first = group[0]
        if not first.truth.get("has_header_block") or first.truth.get("page") != 1:
            continue
        fields = extract_fields([ours[p.name].fields for p in group])  # type: ignore[misc]
        for name, (correct, flagged) in header_checks(fields, first.truth["header"]).items():
            counts = tally.setdefault(name, [0, 0, 0, 0])
            counts[0] += 1
            counts[1] += correct
            counts[2] += (not correct) and flagged
            counts[3] += (not correct) and not flagged
            if not correct and not flagged:
                wrong.append(f"{component}: {name}")
    rows = []
    total = [0, 0, 0, 0]
    for name, counts in tally.items():
        total = [a + b for a, b in zip(total, counts, strict=True)]
        rows.append([name, counts[0], f"{100 * counts[1] / counts[0]:.1f}", counts[2], counts[3]])
    if total[0]:
        rows.append(["all", total[0], f"{100 * total[1] / total[0]:.1f}", total[2], total[3]])
    table = markdown_table(["field", "n", "right %", "flagged", "wrong"], rows)
    if wrong:
        table += "\n\nConfidently wrong (read, not flagged, not the truth): " + "; ".join(wrong)
    return table


# --- report --------------------------------------------------------------------------------
def _classes() -> list[str]:
    return [*QUALITIES, "clean+normal", "all"]


def _keys(page: BenchPage) -> tuple[str, ...]:
    keys = [page.profile, "all"]
    if page.profile in ("clean", "normal"):
        keys.append("clean+normal")
    return tuple(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, action="append", help="default: corpus + harsh")
    parser.add_argument("--jobs", type=int, default=2, help="page workers, both sides")
    parser.add_argument("--no-ocrmypdf", action="store_true", help="skip the OCRmyPDF side")
    parser.add_argument("--limit-components", type=int, default=0, help="first N components")
    parser.add_argument("--results", default="ocr", help="bench/results/<NAME>.md")
    parser.add_argument("--verbose", "-v", action="store_true", help="per-page table too")
    args = parser.parse_args()

    roots = args.corpus or [CORPUS, CORPUS_HARSH]
    pages, groups = select_components(roots, args.limit_components)
    print(f"{len(pages)} pages in {len(groups)} components, {args.jobs} workers each side")

    ours, our_walls = run_ours(groups, args.jobs)
    theirs: dict[str, TheirComponent] = {}
    if not args.no_ocrmypdf:
        with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
            theirs = run_ocrmypdf(groups, args.jobs, Path(tmp))

    our_scores = {k: Score() for k in _classes()}
    their_scores = {k: Score() for k in _classes()}
    per_page = []
    failed = []
    for name, group in groups.items():
        their = theirs.get(name)
        if their is not None and their.error:
            failed.append(f"{name} ({len(group)} p): {their.error}")
        for page in group:
            ref = page.gt_text
            mine = ours[page.name]
            for key in _keys(page):
                our_scores[key].add(mine.text, ref)
                our_scores[key].seconds += our_walls[name] / len(group)
            one = Score()
            one.add(mine.text, ref)
            row = [page.name, page.profile, f"{one.cer:.2f}", f"{mine.mean_confidence:.0f}"]
            row.append(",".join(sorted(set(mine.flags))) or "-")
            if their is not None and not their.error:
                index = page.truth["page"] - 1
                text = their.texts[index] if index < len(their.texts) else ""
                for key in _keys(page):
                    their_scores[key].add(text, ref)
                    their_scores[key].seconds += their.seconds / len(group)
                other = Score()
                other.add(text, ref)
                row.append(f"{other.cer:.2f}")
            else:
                row.append("failed" if their is not None else "-")
            per_page.append(row)

    rows = []
    for side, scores in (("digitize", our_scores), ("OCRmyPDF", their_scores)):
        for key in _classes():
            if scores[key].pages:
                rows.append([side, key, *scores[key].row()])
    table = markdown_table(["side", "scan quality", *SCORE_HEADER], rows)
    print("\n" + table)

    summary = []
    for key in ("harsh", "clean+normal", "clean", "all"):
        a, b = our_scores[key], their_scores[key]
        if a.pages and b.pages:
            ratio = (b.seconds / b.pages) / max(1e-9, a.seconds / a.pages)
            summary.append(
                f"- {key}: digitize CER {a.cer:.2f} % vs OCRmyPDF {b.cer:.2f} % "
                f"(ratio {a.cer / max(1e-9, b.cer):.2f}); digitize {ratio:.2f}× OCRmyPDF's pages/min"
            )
    if failed:
        summary.append("- OCRmyPDF failed (pages left out of its scores): " + "; ".join(failed))
    print("\n".join(summary))

    fields = header_table(groups, ours)
    print("\n" + fields)
    sections = [
        ("CER by scan quality", table),
        ("Side by side", "\n".join(summary) or "(OCRmyPDF not run)"),
        ("Header fields (digitize, components with a header block)", fields),
        (
            "How measured",
            f"{len(pages)} pages, {len(groups)} components from "
            + ", ".join(f"`{r}`" for r in roots)
            + f"; {args.jobs} page workers for digitize and `--jobs {args.jobs}` for OCRmyPDF, "
            "one call / one fresh pool per component, no warm-up on either side; s/page = "
            "summed component wall time / pages. Reading order: the ground truth reads the "
            "two-column header row by row, as digitize orders it; OCRmyPDF's native order costs "
            "it CER/WER, not missed words. Timing on a shared machine: compare the two sides of "
            "this run only; a quiet re-run gives the absolute figures. See the bench docstring.",
        ),
    ]
    per_page_table = markdown_table(
        ["page", "quality", "digitize CER %", "mean conf", "digitize flags", "OCRmyPDF CER %"],
        per_page,
    )
    if args.verbose:
        print("\n" + per_page_table)
    sections.append(("Per page", per_page_table))
    path = write_results(args.results, "OCR: digitize vs OCRmyPDF by scan quality", sections)
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
