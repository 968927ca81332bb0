"""Peak memory and time of ingesting one 300-page multi-page TIFF (target < 400 MB), in-process
and isolated (``ingest_dossier_isolated``: decoding in a child, the caller stays small).

    .venv/bin/python bench/ingest_memory.py [--pages 300] [--dpi 300]

Writes an A4 bilevel CCITT G4 TIFF (one strip per page, realistic text pages with a page
number so no page is a duplicate) in a temporary folder, then ingests it in a fresh child
process that reports its own peak RSS (``getrusage``) and, in a second child, the peak of
Python/numpy allocations (``tracemalloc``); a third child runs the isolated ingest and reports
its own peak (the caller's) and its decoding child's (``RUSAGE_CHILDREN``). Prints a table and
writes it to ``bench/results/ingest_memory.md`` (machine, versions, date).

How the figures are taken: each measurement is a fresh process (no warm-up, no memory left
over from another measurement), on the same generated file; the imports' own peak is measured
alone in another fresh process so the ingest's share can be read off. Excluded: generating the
TIFF (its own process; its time is shown but its memory is not counted), and everything after
ingest (cleaning, OCR, PDF). No comparison with another tool; one core (ingest is
sequential). Times on a shared machine are indicative only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.results import markdown_table, write_results  # noqa: E402


def generate(path: Path, pages: int, dpi: int) -> None:
    import cv2
    import numpy as np
    from PIL import Image

    from tests.helpers_images import a4_px, bilevel, text_page

    width, height = a4_px(dpi)
    bases = [bilevel(text_page(width, height, seed=seed)) for seed in range(8)]
    frames = []
    for number in range(pages):
        page = bases[number % len(bases)].copy()
        scale = dpi / 100
        cv2.putText(
            page,
            f"- {number + 1} -",
            (width // 2 - int(60 * scale), int(60 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            1.2 * scale / 1.5,
            0,
            max(1, int(2 * scale / 1.5)),
        )
        frames.append(Image.fromarray(np.ascontiguousarray(page)).convert("1"))
    frames[0].save(
        path,
        "TIFF",
        save_all=True,
        append_images=frames[1:],
        compression="group4",
        dpi=(dpi, dpi),
        tiffinfo={278: height},
    )


def isolated_child(path: Path) -> dict[str, float]:
    from digitize.ingest import ingest_dossier_isolated

    start = time.perf_counter()
    dossier = ingest_dossier_isolated(path)
    return {
        "pages": float(dossier.page_count),
        "seconds": time.perf_counter() - start,
        "caller_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "decoder_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def ingest_child(path: Path, trace: bool) -> dict[str, float]:
    from digitize.ingest import ingest_dossier

    if trace:
        import tracemalloc

        tracemalloc.start()
    start = time.perf_counter()
    dossier = ingest_dossier(path)
    seconds = time.perf_counter() - start
    result = {
        "pages": float(dossier.page_count),
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if trace:
        import tracemalloc

        result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1024**2
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument(
        "--child", choices=["generate", "ingest", "trace", "isolated"], help=argparse.SUPPRESS
    )
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "generate":
        generate(args.path, args.pages, args.dpi)
        return
    if args.child == "isolated":
        print(json.dumps(isolated_child(args.path)))
        return
    if args.child in ("ingest", "trace"):
        print(json.dumps(ingest_child(args.path, args.child == "trace")))
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scan.tif"
        t = time.perf_counter()
        me = [sys.executable, __file__, "--path", str(path)]
        subprocess.run(
            [*me, "--child", "generate", "--pages", str(args.pages), "--dpi", str(args.dpi)],
            check=True,
        )
        generated = time.perf_counter() - t
        size_mb = path.stat().st_size / 1024**2
        baseline = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import json,resource,digitize.ingest.assemble;"
                    "print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024))",
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        run = json.loads(
            subprocess.run(
                [*me, "--child", "ingest"], check=True, capture_output=True, text=True
            ).stdout
        )
        traced = json.loads(
            subprocess.run(
                [*me, "--child", "trace"], check=True, capture_output=True, text=True
            ).stdout
        )
        isolated = json.loads(
            subprocess.run(
                [*me, "--child", "isolated"], check=True, capture_output=True, text=True
            ).stdout
        )
    rows = [
        ("pages", f"{run['pages']:.0f}"),
        (
            f"TIFF size (G4, A4, {args.dpi} dpi)",
            f"{size_mb:.1f} MB (generated in {generated:.1f} s)",
        ),
        (
            "ingest time",
            f"{run['seconds']:.1f} s ({1000 * run['seconds'] / run['pages']:.0f} ms/page)",
        ),
        ("peak RSS (whole process)", f"{run['peak_rss_mb']:.0f} MB"),
        ("peak RSS of the imports alone", f"{baseline:.0f} MB"),
        ("peak Python+numpy allocations", f"{traced['tracemalloc_peak_mb']:.0f} MB (tracemalloc)"),
        ("target", "peak RSS < 400 MB: " + ("PASS" if run["peak_rss_mb"] < 400 else "FAIL")),
        ("isolated ingest time", f"{isolated['seconds']:.1f} s (includes the child's start)"),
        ("isolated: caller peak RSS", f"{isolated['caller_peak_rss_mb']:.0f} MB"),
        ("isolated: decoding child peak RSS", f"{isolated['decoder_peak_rss_mb']:.0f} MB"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}} | value")
    print(f"{'-' * width}-|-{'-' * 40}")
    for key, value in rows:
        print(f"{key:<{width}} | {value}")
    path = write_results(
        "ingest_memory",
        f"Ingest memory: one {args.pages}-page TIFF",
        [("Measures", markdown_table(["measure", "value"], rows))],
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
