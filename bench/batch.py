"""Batch throughput against OCRmyPDF on the same dossiers, and peak memory as the batch grows.

    .venv/bin/python bench/batch.py [--corpus DIR] [--only dev-d01,dev-d03] [--repeat 2]
                                    [--cores 2] [--rss-sizes 10,40] [--skip-ocrmypdf]

Writes ``bench/results/batch.md`` (machine, versions, date, the tables) and prints the tables.
Not run by the test suite. Needs ``.venv/bin/pip install -e '.[bench]'`` and the Debian
packages ``ghostscript`` (OCRmyPDF's PDF/A) and ``parallel`` (GNU Parallel, how OCRmyPDF's
documentation runs batches).

What each side does, on the same pages (the corpus dossiers, ``DOSSIER/cN/`` = one component
= one document; the ground-truth files beside the scans are ignored by ingest):

* ours: ``digitize batch IN OUT --workers CORES --dossiers D --json`` as a child process
  (``OMP_THREAD_LIMIT=1``: one tesseract thread per page worker), with 1 and with 2 dossiers
  in flight. It ingests, cleans (orientation, deskew), OCRs, builds PDF/A, **signs** (PAdES
  B-B, demo identity), extracts fields, **bundles** (manifest, detached CAdES signature,
  checksums) and **verifies** every new bundle. The same with verification turned off (the
  bench sets ``JobContext.verify_new=False`` in the child; the CLI has no such switch) shows
  what verifying costs.
* OCRmyPDF: one call per component (``ocrmypdf -l vie --deskew --rotate-pages --output-type
  pdfa``), the component given as one PDF (see ``bench/baseline.py``: scanner PDFs as they
  are, images/TIFF frames joined with img2pdf; the conversion is timed and shown, not
  charged), the calls run by GNU Parallel as its batch documentation recommends
  (``parallel --tag -j J ocrmypdf ... --jobs K``). Both splits of the cores are measured,
  ``J x K`` = ``CORES x 1`` (a component per core) and ``1 x CORES`` (one component at a
  time, its pages over the cores); the faster one is OCRmyPDF's figure. OCRmyPDF signs
  nothing, extracts nothing and writes no bundle.

Fairness rules:

* same pages: the same dossiers, every page of every component; both sides' outputs are
  checked (our rows ``ok`` with every page, every OCRmyPDF output PDF with its input's page
  count, every OCRmyPDF exit 0 or 10);
* same cores: ``--cores`` (default 2) page workers for us, ``J x K = CORES`` for OCRmyPDF;
  nothing is pinned, both see the same CPUs; tesseract reads the same Debian tessdata;
* same warm-up: one untimed run of each side on the smallest dossier first (Python imports,
  tessdata and Ghostscript in the OS cache; our demo signing identity is created there);
* best of ``--repeat`` N for both: the settings alternate within each round, so load from
  other processes falls on all of them alike; every run's time is shown beside the best;
* peak RSS for both, sampled from /proc every 0.1 s: "parent" is the ``digitize batch``
  process (orchestration, signing, bundling, verification) for us, the largest single
  ``ocrmypdf`` process for OCRmyPDF; "tree" is everything under the launched process (our
  page workers; GNU Parallel, every ocrmypdf process with its tesseract/Ghostscript children).

Excluded: copying the corpus, and making OCRmyPDF's inputs with img2pdf (its own row, and a
speed-up row that charges it to OCRmyPDF). Included on both sides: process start-up, as each
tool is used (one ``digitize batch`` process for the whole batch; one ``ocrmypdf`` process
per component). Issue target checked here: our batch pages/min >= 5x OCRmyPDF's (the
side-by-side per-page target, >= 3x, is ``bench/ocr.py``'s).

Peak RSS as the batch grows: our batch alone on 10 and 40 dossiers (the corpus dossiers
repeated under new names), 2 in flight.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import (  # noqa: E402
    OCRMYPDF_FLAGS,
    OCRMYPDF_OK,
    ComponentInput,
    component_inputs,
    helper_versions,
    ocrmypdf_command,
    ocrmypdf_env,
    ocrmypdf_version,
    output_pages,
)
from bench.results import markdown_table, write_results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
TARGET_SPEEDUP = 5.0  # issue 13: batch >= 5x OCRmyPDF's pages/min


# --- the corpus ----------------------------------------------------------------------------
def dossier_dirs(corpus: Path, only: Sequence[str] = ()) -> list[Path]:
    found = sorted(p for p in corpus.iterdir() if p.is_dir() and not p.name.startswith("."))
    if only:
        missing = sorted(set(only) - {p.name for p in found})
        if missing:
            raise SystemExit(f"not in {corpus}: {', '.join(missing)}")
        found = [p for p in found if p.name in only]
    if not found:
        raise SystemExit(f"no dossier folders in {corpus}")
    return found


def page_count(dossier: Path) -> int:
    """Pages of a corpus dossier, from its ground truth (one ``pNN.json`` per page)."""
    return len(list(dossier.glob("*/p[0-9][0-9].json")))


def copy_dossiers(dossiers: Sequence[Path], target: Path, copies: int = 1) -> int:
    """Copy the dossiers (``copies`` times, under new names); return the page count."""
    target.mkdir(parents=True, exist_ok=True)
    total = 0
    for copy in range(copies):
        for dossier in dossiers:
            name = dossier.name if copies == 1 else f"r{copy:02d}-{dossier.name}"
            shutil.copytree(dossier, target / name)
            total += page_count(dossier)
    return total


# --- process-tree memory -------------------------------------------------------------------
def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                kids.extend(int(x) for x in handle.read().split())
    except OSError:
        pass
    return kids


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [a.decode(errors="replace") for a in handle.read().split(b"\0") if a]
    except OSError:
        return []


def is_ocrmypdf(argv: list[str]) -> bool:
    return "ocrmypdf" in argv[:3] or any(a.endswith("/ocrmypdf") for a in argv[:2])


@dataclass
class Peaks:
    """Peak RSS in kB: the launched process, the whole tree, the largest "main" process."""

    root: int = 0
    tree: int = 0
    main: int = 0


def sample_tree(pid: int, peaks: Peaks, is_main: Callable[[list[str]], bool] | None) -> None:
    """One /proc sample of ``pid``'s tree into ``peaks``. A main process is one matching
    ``is_main`` whose parent does not (OCRmyPDF's own pool workers are not separate mains)."""
    total = 0
    stack = [(pid, False)]
    while stack:
        current, parent_main = stack.pop()
        rss = _rss_kb(current)
        total += rss
        main = False
        if is_main is not None and not parent_main and is_main(_cmdline(current)):
            main = True
            peaks.main = max(peaks.main, rss)
        stack.extend((kid, parent_main or main) for kid in _children(current))
    peaks.root = max(peaks.root, _rss_kb(pid))
    peaks.tree = max(peaks.tree, total)


@dataclass
class Run:
    wall: float
    peaks: Peaks
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0


def run_sampled(
    args: list[str], env: dict[str, str], is_main: Callable[[list[str]], bool] | None = None
) -> Run:
    """Run ``args``; wall time from just before the start to the exit, peak RSS every 0.1 s."""
    peaks = Peaks()
    started = time.monotonic()
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            sample_tree(proc.pid, peaks, is_main)
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    return Run(wall, peaks, stdout, stderr, proc.returncode)


# --- the two sides -------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    label: str
    side: str  # "ours" | "ocrmypdf"
    in_flight: int = 2  # ours: dossiers in flight
    verify: bool = True  # ours: verify each new bundle
    parallel_jobs: int = 1  # ocrmypdf: GNU Parallel -j
    ocrmypdf_jobs: int = 1  # ocrmypdf: --jobs


@dataclass
class Result:
    setting: Setting
    walls: list[float] = field(default_factory=list)
    best: Run | None = None


def run_ours(in_dir: Path, out_dir: Path, cores: int, setting: Setting, pages: int) -> Run:
    """``digitize batch`` in a child process; checks every dossier is ``ok`` with its pages."""
    patch = ""
    if not setting.verify:
        # Bench-only: the CLI always verifies; this measures what the verification costs.
        patch = (
            "import functools, digitize.batch as b; "
            "b.JobContext = functools.partial(b.JobContext, verify_new=False); "
        )
    code = f"import sys; {patch}from digitize.cli.main import run_main; sys.argv[0] = 'digitize'; run_main()"
    args = [sys.executable, "-c", code, "batch", str(in_dir), str(out_dir), "--workers",
            str(cores), "--dossiers", str(setting.in_flight), "--json"]  # fmt: skip
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    run = run_sampled(args, env)
    if run.returncode != 0:
        raise SystemExit(f"digitize batch failed ({run.returncode}): {run.stderr[-2000:]}")
    rows = json.loads(run.stdout)["rows"]
    bad = [r["dossier"] for r in rows if r["status"] != "ok"]
    done = sum(r["pages"] for r in rows if r["status"] == "ok")
    if bad or (pages and done != pages):
        raise SystemExit(f"digitize batch: not ok: {bad}; pages {done} of {pages}")
    return run


def run_ocrmypdf(inputs: Sequence[ComponentInput], out: Path, setting: Setting) -> Run:
    """The components through GNU Parallel, in name order (as ``::: *.pdf`` gives them)."""
    if shutil.which("parallel") is None:
        raise SystemExit("GNU Parallel is not installed (apt-get install parallel)")
    out.mkdir(parents=True, exist_ok=True)
    listing = out / "inputs.txt"
    listing.write_text("".join(f"{i.pdf}\n" for i in inputs), encoding="utf-8")
    joblog = out / "joblog.tsv"
    args = ["parallel", "--will-cite", "--tag", "-j", str(setting.parallel_jobs),
            "--joblog", str(joblog), *ocrmypdf_command(), *OCRMYPDF_FLAGS,
            "--jobs", str(setting.ocrmypdf_jobs), "--quiet", "{}", f"{out}/{{/}}",
            "::::", str(listing)]  # fmt: skip
    run = run_sampled(args, ocrmypdf_env(), is_ocrmypdf)
    exits = [line.split("\t")[6] for line in joblog.read_text().splitlines()[1:]]
    failed = [e for e in exits if int(e) not in OCRMYPDF_OK]
    if len(exits) != len(inputs) or failed:
        raise SystemExit(
            f"ocrmypdf: {len(exits)} of {len(inputs)} jobs logged, exit codes {exits}: "
            f"{(run.stdout + run.stderr)[-2000:]}"
        )
    for one in inputs:
        written = out / one.pdf.name
        if not written.exists() or output_pages(written) != one.pages:
            raise SystemExit(f"ocrmypdf: {written.name} missing or not {one.pages} pages")
    return run


# --- the bench -----------------------------------------------------------------------------
def settings_for(cores: int, skip_ocrmypdf: bool) -> list[Setting]:
    found = [
        Setting(f"digitize batch, 1 dossier in flight, {cores} workers", "ours", in_flight=1),
        Setting(f"digitize batch, 2 dossiers in flight, {cores} workers", "ours", in_flight=2),
        Setting(
            f"digitize batch, 2 dossiers in flight, {cores} workers, no verification",
            "ours",
            in_flight=2,
            verify=False,
        ),
    ]
    if not skip_ocrmypdf:
        splits = [(cores, 1), (1, cores)] if cores > 1 else [(1, 1)]
        for jobs, each in splits:
            found.append(
                Setting(
                    f"ocrmypdf, parallel -j {jobs} x --jobs {each}",
                    "ocrmypdf",
                    parallel_jobs=jobs,
                    ocrmypdf_jobs=each,
                )
            )
    return found


def measure(
    settings: Sequence[Setting],
    in_dir: Path,
    inputs: Sequence[ComponentInput],
    work: Path,
    cores: int,
    repeat: int,
    pages: int,
) -> list[Result]:
    results = [Result(s) for s in settings]
    for attempt in range(repeat):
        for result in results:
            setting = result.setting
            out = work / f"out-{attempt}-{len(result.walls)}-{setting.side}"
            if setting.side == "ours":
                run = run_ours(in_dir, out, cores, setting, pages)
            else:
                run = run_ocrmypdf(inputs, out, setting)
            shutil.rmtree(out)
            result.walls.append(run.wall)
            if result.best is None or run.wall < result.best.wall:
                result.best = run
            print(f"  round {attempt + 1}: {setting.label}: {run.wall:.1f} s", file=sys.stderr)
    return results


def warm_up(
    dossier: Path, inputs: Sequence[ComponentInput], work: Path, cores: int, with_ocrmypdf: bool
) -> None:
    """One untimed run of each side on one dossier."""
    warm_in = work / "warm-in"
    pages = copy_dossiers([dossier], warm_in)
    run_ours(warm_in, work / "warm-ours", cores, Setting("warm-up", "ours"), pages)
    if with_ocrmypdf:
        mine = [i for i in inputs if i.name.split("/")[0] == dossier.name]
        warm = Setting("warm-up", "ocrmypdf", parallel_jobs=cores, ocrmypdf_jobs=1)
        run_ocrmypdf(mine, work / "warm-ocrmypdf", warm)
    for name in ("warm-in", "warm-ours", "warm-ocrmypdf"):
        shutil.rmtree(work / name, ignore_errors=True)


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f}"


def throughput_rows(results: Sequence[Result], pages: int, convert_s: float) -> list[list[str]]:
    rows = []
    for result in results:
        best = result.best
        assert best is not None
        parent = best.peaks.root if result.setting.side == "ours" else best.peaks.main
        rows.append([
            result.setting.label, str(pages), f"{best.wall:.1f}",
            ", ".join(f"{w:.1f}" for w in result.walls),
            f"{pages / best.wall * 60:.1f}", f"{mb(parent)} / {mb(best.peaks.tree)}",
        ])  # fmt: skip
    if any(r.setting.side == "ocrmypdf" for r in results):
        rows.append(["img2pdf joining the image components for OCRmyPDF (not charged)", "",
                     f"{convert_s:.1f}", "", "", ""])  # fmt: skip
    return rows


def speedup_rows(results: Sequence[Result], pages: int, convert_s: float) -> list[list[str]]:
    def rate(wall: float) -> float:
        return pages / wall * 60

    def best_of(pred: Callable[[Setting], bool]) -> Result | None:
        found = [r for r in results if pred(r.setting)]
        return min(found, key=lambda r: r.best.wall if r.best else float("inf"), default=None)

    theirs = best_of(lambda s: s.side == "ocrmypdf")
    ours = best_of(lambda s: s.side == "ours" and s.verify)
    unverified = best_of(lambda s: s.side == "ours" and not s.verify)
    if theirs is None or ours is None or theirs.best is None or ours.best is None:
        return []
    base = rate(theirs.best.wall)
    rows = [["OCRmyPDF's best configuration", theirs.setting.label, f"{base:.1f}", "1.00x", ""]]
    verdict = "PASS" if rate(ours.best.wall) / base >= TARGET_SPEEDUP else "FAIL"
    rows.append([
        "digitize batch, best, signed + bundled + verified", ours.setting.label,
        f"{rate(ours.best.wall):.1f}", f"{rate(ours.best.wall) / base:.2f}x",
        f">= {TARGET_SPEEDUP:.0f}x: {verdict}",
    ])  # fmt: skip
    if unverified is not None and unverified.best is not None:
        r = rate(unverified.best.wall)
        rows.append(["digitize batch without verification", unverified.setting.label,
                     f"{r:.1f}", f"{r / base:.2f}x", ""])  # fmt: skip
    with_convert = rate(theirs.best.wall + convert_s)
    rows.append(["OCRmyPDF charged with img2pdf too", theirs.setting.label,
                 f"{with_convert:.1f}", f"{rate(ours.best.wall) / with_convert:.2f}x (ours / it)",
                 ""])  # fmt: skip
    return rows


def rss_growth(
    dossiers: Sequence[Path], sizes: Sequence[int], work: Path, cores: int
) -> list[list[str]]:
    rows = []
    for size in sizes:
        copies = -(-size // len(dossiers))
        big_in = work / f"in-{size}"
        copy_dossiers(dossiers, big_in, copies)
        for extra in sorted(big_in.iterdir())[size:]:
            shutil.rmtree(extra)
        pages = sum(page_count(d) for d in big_in.iterdir())
        setting = Setting("rss", "ours", in_flight=2)
        run = run_ours(big_in, work / f"out-rss-{size}", cores, setting, pages)
        rows.append([
            f"digitize batch, {size} dossiers, 2 in flight", str(pages), f"{run.wall:.1f}",
            f"{pages / run.wall * 60:.1f}", f"{mb(run.peaks.root)} / {mb(run.peaks.tree)}",
        ])  # fmt: skip
        shutil.rmtree(big_in)
        shutil.rmtree(work / f"out-rss-{size}")
    return rows


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--only", default="", help="comma-separated dossier folder names")
    parser.add_argument("--cores", type=int, default=2, help="cores each side may use")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of every setting")
    parser.add_argument(
        "--rss-sizes", default="10,40", help="batch sizes (dossiers) for the RSS rows; '' skips"
    )
    parser.add_argument("--skip-ocrmypdf", action="store_true")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        raise SystemExit(f"corpus not found: {args.corpus} (../shared beside the repository)")
    dossiers = dossier_dirs(args.corpus, [d for d in args.only.split(",") if d])
    sizes = [int(s) for s in args.rss_sizes.split(",") if s.strip()]
    if not args.skip_ocrmypdf:
        ocrmypdf_version()  # a clear line now rather than after our runs
    os.environ.setdefault("DIGITIZE_DATA_DIR", tempfile.mkdtemp(prefix="digitize-bench-data-"))

    with tempfile.TemporaryDirectory(prefix="digitize-bench-batch-") as tmp:
        work = Path(tmp)
        in_dir = work / "in"
        pages = copy_dossiers(dossiers, in_dir)
        inputs, convert_s = component_inputs(in_dir, work / "pdf-in")
        assert sum(i.pages for i in inputs) == pages, "component PDFs do not hold every page"
        smallest = min(dossiers, key=page_count)
        print(f"warm-up on {smallest.name} (both sides, untimed)", file=sys.stderr)
        warm_up(smallest, inputs, work, args.cores, not args.skip_ocrmypdf)
        settings = settings_for(args.cores, args.skip_ocrmypdf)
        results = measure(settings, in_dir, inputs, work, args.cores, args.repeat, pages)
        growth = rss_growth(dossiers, sizes, work, args.cores)

    head = ["run", "pages", f"best wall s (of {args.repeat})", "every run s", "pages/min",
            "peak RSS MB parent / tree"]  # fmt: skip
    rows = throughput_rows(results, pages, convert_s)
    speed_head = ["comparison", "setting", "pages/min", "vs OCRmyPDF", "target"]
    speed = speedup_rows(results, pages, convert_s)
    growth_head = ["run", "pages", "wall s", "pages/min", "peak RSS MB parent / tree"]
    setup = (
        f"{len(dossiers)} dossiers ({', '.join(d.name for d in dossiers)}), {len(inputs)} "
        f"components, {pages} pages from `{args.corpus}`; {args.cores} cores for each side; "
        f"warm-up: one untimed run of each side on {smallest.name}; best of {args.repeat} "
        f"alternating rounds. OCRmyPDF flags: `{' '.join(OCRMYPDF_FLAGS)}`, one call per "
        f"component, run by GNU Parallel ({helper_versions()}). Ours includes signing, bundling and (unless said) "
        "verifying every bundle; OCRmyPDF signs and bundles nothing. Parent RSS: the "
        "`digitize batch` process / the largest single `ocrmypdf` process; tree: everything "
        "under the launched process. Rules and exclusions: the docstring of `bench/batch.py`."
    )
    print(setup + "\n")
    print_table(head, rows)
    if speed:
        print_table(speed_head, speed)
    if growth:
        print_table(growth_head, growth)
    sections = [("Setup", setup), ("Throughput", markdown_table(head, rows))]
    if speed:
        sections.append(("Speed-up", markdown_table(speed_head, speed)))
    if growth:
        sections.append(("Peak RSS as the batch grows (ours)", markdown_table(growth_head, growth)))
    path = write_results("batch", "Batch throughput: digitize batch vs OCRmyPDF", sections)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
