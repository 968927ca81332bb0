"""The hub's cost and its gain: pages per minute over Celery + Redis against ``digitize batch``.

    .venv/bin/python bench/scale.py [--corpus DIR] [--repeat N] [--out bench/results/scale.md]

1. **Queue cost.** The corpus's dossiers (``../shared/corpus``, repeated ``--repeat`` times
   under new names) through ``batch_run`` (2 page workers, 2 dossiers in flight: the
   defaults on this machine), then through a hub of 2 workers × 1 page process
   (``digitize worker --concurrency 1 --pages 1``, a real Redis with AOF ``appendfsync
   always``). Pages per minute of each; the target is hub ≥ 0.9 × batch. The workers are
   started and ready before the clock starts (they are long-lived); batch's clock includes
   its page pool's start, as a batch run does.
2. **One large dossier.** Every component of the corpus in one dossier, run by a hub of one
   worker (1 page process) and then of two (1 page process each): the second worker's page
   process takes the dossier's pages (fan-out), the first fans them in and signs.

Every bundle is verified (the job layer does it). Writes a Markdown report (machine,
versions, date, figures). Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.batch import copy_dossiers, dossier_dirs  # noqa: E402
from tests.helpers_redis import RedisServer, WorkerProcess  # noqa: E402


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    tess = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
    return {
        "cpu": cpu,
        "cores": str(len(os.sched_getaffinity(0))),
        "load average at start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "celery": version("celery"),
        "kombu": version("kombu"),
        "redis-py": version("redis"),
        "redis-server": redis.split()[2] if redis else "?",
        "tesseract": (tess.stdout or tess.stderr).splitlines()[0],
        "digitize": version("digitize"),
    }


def pages_of(folder: Path) -> int:
    from digitize.ingest import ingest_dossier

    return sum(ingest_dossier(d).page_count for d in sorted(folder.iterdir()) if d.is_dir())


def run_batch(in_dir: Path, out: Path) -> float:
    from digitize.batch import batch_run
    from digitize.profiles import load_profile

    started = time.monotonic()
    result = batch_run(in_dir, out, load_profile())
    seconds = time.monotonic() - started
    failed = [r for r in result.rows if r.status not in ("ok", "skipped")]
    assert not failed, failed
    return seconds


def run_hub(server: RedisServer, dossiers: list[Path], out: Path, workers: int,
            logs: Path) -> float:  # fmt: skip
    from digitize.hub import submit

    procs = [WorkerProcess(server.url, out, logs / f"worker-{out.name}-{i}.log",
                           ("--concurrency", "1", "--pages", "1")).start()
             for i in range(workers)]  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while any(p.output().count(" ready.") < 2 for p in procs):
            assert time.monotonic() < deadline and all(p.alive for p in procs), "workers not ready"
            time.sleep(0.2)
        started = time.monotonic()
        handles = submit(dossiers, broker=server.url)
        outcomes = [h.wait(3600) for h in handles]
        seconds = time.monotonic() - started
    finally:
        for p in procs:
            p.terminate()
    bad = [o for o in outcomes if o.kind != "done"]
    assert not bad, [(o.dossier, o.kind, o.error) for o in bad]
    return seconds


def large_dossier(corpus_copy: Path, target: Path) -> Path:
    """Every component of the corpus as one dossier (components renamed in order)."""
    target.mkdir(parents=True)
    n = 0
    for dossier in sorted(corpus_copy.iterdir()):
        for component in sorted(p for p in dossier.iterdir() if p.is_dir()):
            n += 1
            shutil.copytree(component, target / f"c{n:02d}",
                            ignore=shutil.ignore_patterns("*.json", "*.txt"))  # fmt: skip
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--repeat", type=int, default=1, help="corpus copies in the batch")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scale.md")
    args = parser.parse_args()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="digitize-scale-") as tmp:
        work = Path(tmp)
        os.environ["DIGITIZE_DATA_DIR"] = str(work / "data")
        os.environ["OMP_THREAD_LIMIT"] = "1"
        from digitize.sign import ensure_demo_identity

        ensure_demo_identity(work / "data")
        corpus = work / "in"
        copy_dossiers(dossier_dirs(args.corpus), corpus, args.repeat)
        pages = pages_of(corpus)
        batch_s = run_batch(corpus, work / "out-batch")
        server = RedisServer.start_new(work / "redis")
        try:
            dossiers = sorted(d for d in corpus.iterdir() if d.is_dir())
            hub_s = run_hub(server, dossiers, work / "out-hub", 2, work)
            big = large_dossier(corpus, work / "big" / "HS-LON")
            big_pages = pages_of(work / "big")
            one_s = run_hub(server, [big], work / "out-big1", 1, work)
            two_s = run_hub(server, [big], work / "out-big2", 2, work)
        finally:
            server.stop()
    per_min = lambda n, s: 60.0 * n / s  # noqa: E731
    rows = [
        ("digitize batch (2 page workers, 2 dossiers in flight)", pages, batch_s),
        ("hub: 2 workers × 1 page process", pages, hub_s),
        ("large dossier, hub of 1 worker (1 page process)", big_pages, one_s),
        ("large dossier, hub of 2 workers (1 page process each)", big_pages, two_s),
    ]
    lines = [
        "# Hub scaling (`bench/scale.py`)",
        "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M %Z')}. Command: `.venv/bin/python bench/scale.py"
        f" --repeat {args.repeat}`.",
        "",
        "| machine | |", "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        "",
        "| run | pages | seconds | pages/min |", "|---|---:|---:|---:|",
        *(f"| {name} | {n} | {s:.1f} | {per_min(n, s):.1f} |" for name, n, s in rows),
        "",
        f"Hub / batch throughput: **{batch_s / hub_s:.2f}×** (target ≥ 0.9). "
        f"Large dossier, 2 workers / 1 worker: **{one_s / two_s:.2f}×** faster.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines)
    if args.out.exists():
        notes = args.out.read_text(encoding="utf-8").split("<!-- notes -->", 1)
        if len(notes) == 2:
            text += "\n<!-- notes -->" + notes[1]
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
