"""Batch throughput against OCRmyPDF, and peak memory as the batch grows.

    .venv/bin/python bench/batch.py [--corpus DIR] [--rss-sizes 10,40] [--skip-ocrmypdf]

1. The corpus's dossiers (``dev-dNN/cN/`` = our dossier/component convention; the
   ``.gt.txt``/``.json`` files beside the scans are ignored by ingest) run through
   ``digitize batch`` on 2 page workers, once with one dossier in flight and once with two
   (the default), including signing, bundling and verification of every bundle.
2. The same pages through OCRmyPDF as its docs advise for batches: one file at a time,
   ``ocrmypdf -l vie --deskew --rotate-pages --output-type pdfa --jobs 2``; each component is
   first made into one PDF (image-only PDFs as they are, images through img2pdf — that
   conversion is timed separately and not charged to OCRmyPDF).
3. Peak RSS of the batch process (and of the whole process tree: parent + page workers),
   sampled from /proc every 0.1 s, for batches of 10 and 40 dossiers (corpus dossiers
   repeated under new names).

Prints a table; the figures go in the report. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
SCAN_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".pdf"}
PAGE_WORKERS = 2


def copy_corpus(corpus: Path, target: Path, copies: int = 1) -> int:
    """Copy the corpus dossiers (``copies`` times under new names); return the page count."""
    manifest = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    pages_per = _pages_per_dossier(manifest, corpus)
    total = 0
    target.mkdir(parents=True, exist_ok=True)
    dossiers = sorted(p for p in corpus.iterdir() if p.is_dir() and p.name.startswith("dev-"))
    for copy in range(copies):
        for dossier in dossiers:
            name = dossier.name if copies == 1 else f"r{copy:02d}-{dossier.name}"
            shutil.copytree(dossier, target / name)
            total += pages_per[dossier.name]
    return total


def _pages_per_dossier(manifest: dict, corpus: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    text = json.dumps(manifest)
    for dossier in corpus.iterdir():
        if dossier.is_dir() and dossier.name.startswith("dev-"):
            counts[dossier.name] = len(list(dossier.rglob("p[0-9][0-9].json")))
    assert sum(counts.values()) > 0, f"no pages found in {corpus} ({len(text)} bytes manifest)"
    return counts


def _tree_rss_kb(pid: int) -> tuple[int, int]:
    """(RSS of pid, RSS of pid and all its descendants) in kB, from /proc."""

    def rss(p: int) -> int:
        try:
            with open(f"/proc/{p}/status", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return 0
        return 0

    def children(p: int) -> list[int]:
        kids: list[int] = []
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as handle:
                    kids.extend(int(x) for x in handle.read().split())
        except OSError:
            pass
        return kids

    own = rss(pid)
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss(current)
        stack.extend(children(current))
    return own, total


def run_batch(in_dir: Path, out_dir: Path, dossiers_in_flight: int) -> dict:
    """``digitize batch`` as a child process; wall time, exit code, peak RSS (parent/tree)."""
    code = (
        "import sys; import digitize.cli.commands_batch; from digitize.cli.main import run_main;"
        " sys.argv[0] = 'digitize'; run_main()"
    )
    args = [
        sys.executable,
        "-c",
        code,
        "batch",
        str(in_dir),
        str(out_dir),
        "--workers",
        str(PAGE_WORKERS),
        "--dossiers",
        str(dossiers_in_flight),
        "--json",
    ]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    peaks = [0, 0]
    started = time.monotonic()
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            own, tree = _tree_rss_kb(proc.pid)
            peaks[0], peaks[1] = max(peaks[0], own), max(peaks[1], tree)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"digitize batch failed ({proc.returncode}): {stderr[-2000:]}")
    result = json.loads(stdout)
    pages = sum(row["pages"] for row in result["rows"] if row["status"] == "ok")
    return {
        "wall": wall,
        "pages": pages,
        "rss_parent_mb": peaks[0] / 1024,
        "rss_tree_mb": peaks[1] / 1024,
        "dossiers": len(result["rows"]),
    }


def component_pdfs(in_dir: Path, work: Path) -> tuple[list[Path], float]:
    """One PDF per component for OCRmyPDF; returns the files and the img2pdf time."""
    import img2pdf

    pdfs: list[Path] = []
    spent = 0.0
    work.mkdir(parents=True, exist_ok=True)
    for component in sorted(p for p in in_dir.glob("*/*") if p.is_dir()):
        scans = sorted(p for p in component.iterdir() if p.suffix.lower() in SCAN_SUFFIXES)
        target = work / f"{component.parent.name}-{component.name}.pdf"
        if len(scans) == 1 and scans[0].suffix.lower() == ".pdf":
            shutil.copyfile(scans[0], target)
        else:
            t = time.monotonic()
            target.write_bytes(img2pdf.convert([str(s) for s in scans]))
            spent += time.monotonic() - t
        pdfs.append(target)
    return pdfs, spent


def run_ocrmypdf(pdfs: list[Path], out: Path) -> float:
    ocrmypdf = shutil.which("ocrmypdf", path=str(Path(sys.executable).parent)) or shutil.which(
        "ocrmypdf"
    )
    if ocrmypdf is None:
        raise SystemExit("ocrmypdf is not installed (pip install ocrmypdf)")
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ}
    env.pop("OMP_THREAD_LIMIT", None)  # OCRmyPDF sets tesseract's threads itself
    started = time.monotonic()
    for pdf in pdfs:  # one file at a time, as its batch documentation shows
        proc = subprocess.run(
            [
                ocrmypdf,
                "-l",
                "vie",
                "--deskew",
                "--rotate-pages",
                "--output-type",
                "pdfa",
                "--jobs",
                str(PAGE_WORKERS),
                "--quiet",
                str(pdf),
                str(out / pdf.name),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        if proc.returncode not in (0, 10):  # 10: PDF/A conversion warning, output written
            raise SystemExit(f"ocrmypdf failed on {pdf.name}: {proc.stderr[-1500:]}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument(
        "--rss-sizes",
        default="10,40",
        help="batch sizes (dossiers) for the peak-RSS rows; '' to skip",
    )
    parser.add_argument("--skip-ocrmypdf", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each digitize setting (best kept)"
    )
    args = parser.parse_args()
    if not args.corpus.is_dir():
        raise SystemExit(f"corpus not found: {args.corpus}")
    os.environ.setdefault("DIGITIZE_DATA_DIR", tempfile.mkdtemp(prefix="digitize-bench-data-"))

    rows: list[tuple[str, str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="digitize-bench-batch-") as tmp:
        tmp_path = Path(tmp)
        in_dir = tmp_path / "in"
        pages = copy_corpus(args.corpus, in_dir)
        # warm-up (creates the demo identity, fills the OS cache) so both runs start equal
        run_batch(in_dir, tmp_path / "warm", 2)
        ours: dict[int, dict] = {}
        # alternate the two settings and keep each one's best run: other load on a shared
        # machine then hits both alike
        for attempt in range(args.repeat):
            for in_flight in (1, 2):
                out = tmp_path / f"out-{in_flight}-{attempt}"
                result = run_batch(in_dir, out, in_flight)
                shutil.rmtree(out)
                assert result["pages"] == pages, (result, pages)
                if in_flight not in ours or result["wall"] < ours[in_flight]["wall"]:
                    ours[in_flight] = result
        for in_flight, result in sorted(ours.items()):
            rows.append(
                (
                    f"digitize batch, {in_flight} dossier(s) in flight (best of {args.repeat})",
                    str(pages),
                    f"{result['wall']:.1f}",
                    f"{pages / result['wall'] * 60:.1f}",
                    f"{result['rss_parent_mb']:.0f} / {result['rss_tree_mb']:.0f}",
                )
            )
        if not args.skip_ocrmypdf:
            pdfs, convert_s = component_pdfs(in_dir, tmp_path / "pdf-in")
            wall = run_ocrmypdf(pdfs, tmp_path / "ocrmypdf-out")
            rows.append(
                (
                    f"ocrmypdf --jobs {PAGE_WORKERS}, one file at a time ({len(pdfs)} files)",
                    str(pages),
                    f"{wall:.1f}",
                    f"{pages / wall * 60:.1f}",
                    "—",
                )
            )
            rows.append(
                ("  (img2pdf conversion before it, not charged)", "", f"{convert_s:.1f}", "", "")
            )
            best = max(pages / r["wall"] for r in ours.values())
            rows.append(
                ("speed-up (best digitize / ocrmypdf)", "", "", f"{best / (pages / wall):.2f}x", "")
            )
        for size in [int(s) for s in args.rss_sizes.split(",") if s.strip()]:
            copies = -(-size // 4)
            big_in = tmp_path / f"in-{size}"
            big_pages = copy_corpus(args.corpus, big_in, copies)
            for extra in sorted(big_in.iterdir())[size:]:
                shutil.rmtree(extra)
                big_pages = None  # counted from the run below
            result = run_batch(big_in, tmp_path / f"out-rss-{size}", 2)
            rows.append(
                (
                    f"batch of {result['dossiers']} dossiers (peak RSS)",
                    str(result["pages"] if big_pages is None else big_pages),
                    f"{result['wall']:.1f}",
                    f"{result['pages'] / result['wall'] * 60:.1f}",
                    f"{result['rss_parent_mb']:.0f} / {result['rss_tree_mb']:.0f}",
                )
            )
            shutil.rmtree(big_in)
            shutil.rmtree(tmp_path / f"out-rss-{size}")

    header = ("run", "pages", "wall s", "pages/min", "peak RSS MB parent / tree")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    print(
        f"cores: {len(os.sched_getaffinity(0))}, page workers: {PAGE_WORKERS}, "
        f"OMP_THREAD_LIMIT=1 for digitize"
    )
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
