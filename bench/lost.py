"""What the hub's lost-message search costs Redis (``digitize.hub.lost.present_in_broker``).

    .venv/bin/python bench/lost.py [--backlog 0 1000 10000 50000] [--ids 16] [--rounds 20]

A real ``redis-server`` (AOF ``appendfsync always``, as the hub runs it) gets a backlog of
real Celery messages — page tasks (a real page task's arguments: a page reference and every
stage setting) or dossier tasks (a real ``HubJob``, as ``digitize submit`` sends it) — and a
few hundred more held in kombu's unacknowledged set by a consumer. Then
``present_in_broker`` looks for ``--ids`` task ids (a dossier's page window) — the worst case:
ids that are nowhere, so every list item and every unacked entry is scanned — ``--rounds``
times. Reported: the median and the slowest call (milliseconds), during which Redis serves
nobody else (a Lua script is atomic), and the messages' total size. A dossier process makes
at most one such call per ``hub.lost_check_s`` (30 s by default), and only while one of its
pages has waited that long; the lost-job sweep makes one per round for the whole hub. The
``pages`` queue is short by construction (dossiers in flight × ``hub.page_window``: 640 for
20 workers running 2 dossiers of 16 pages in flight); the ``dossiers`` queue holds the
whole backlog.

No other tool is compared: nothing else does this. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.results import markdown_table, write_results  # noqa: E402
from tests.helpers_redis import RedisServer, small_dossier  # noqa: E402

HELD = 200  # messages a consumer holds unacknowledged (running pages, ETA retries)


def page_args(folder: Path) -> dict:  # type: ignore[type-arg]
    """A real page task's arguments: a small scan ingested, with the default stage settings."""
    from digitize.hub.pages import page_task_args
    from digitize.ingest import ingest_dossier
    from digitize.settings import CleanSettings, IngestSettings, OcrSettings, PdfaSettings

    dossier = ingest_dossier(small_dossier(folder / "HS-000001", 1, 1), IngestSettings())
    page = dossier.components[0].pages[0]
    return page_task_args(page, 1, IngestSettings(), CleanSettings(), OcrSettings(),
                          PdfaSettings(), folder / ".digitize-spool", 8 << 20)  # fmt: skip


def job_args(folder: Path) -> dict:  # type: ignore[type-arg]
    """A real dossier task's argument (``HubJob``), as ``digitize submit`` sends it."""
    from digitize.hub.hubjob import HubJob
    from digitize.hub.submit import dossier_content_hash
    from digitize.util import vn_now

    source = small_dossier(folder / "HS-000002", 2, 2)
    return HubJob(job_id="job-0123456789abcdef", source=source, name=source.name,
                  content_sha256=dossier_content_hash(source),
                  submitted_at=vn_now().replace(microsecond=0)).model_dump(mode="json")  # fmt: skip


def run(kind: str, backlogs: list[int], ids: int, rounds: int) -> list[list[object]]:
    from celery import Celery

    from digitize.hub.config import DOSSIER_QUEUE, DOSSIER_TASK, PAGE_QUEUE, PAGE_TASK, configure
    from digitize.hub.lost import UNACKED_KEY, present_in_broker
    from digitize.hub.registry import connect
    from digitize.settings import HubSettings

    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer.start_new(Path(tmp) / "redis")
        try:
            app = Celery("bench-lost")
            configure(app, server.url, HubSettings())
            client = connect(server.url)
            queue, task = (PAGE_QUEUE, PAGE_TASK) if kind == "pages" else (DOSSIER_QUEUE, DOSSIER_TASK)
            args = page_args(Path(tmp)) if kind == "pages" else job_args(Path(tmp))
            sent = 0
            with app.connection_for_read() as conn:
                channel = conn.default_channel
                for n in range(HELD):
                    app.send_task(task, args=[args], task_id=f"held-{n}")
                    assert channel.basic_get(queue, no_ack=False) is not None
                for backlog in backlogs:
                    while sent < backlog:
                        app.send_task(task, args=[args], task_id=f"queued-{sent}")
                        sent += 1
                    size = sum(client.memory_usage(k) or 0 for k in (queue, UNACKED_KEY))
                    missing = [f"nowhere-{i:032d}" for i in range(ids)]
                    times = []
                    for _ in range(rounds):
                        start = time.perf_counter()
                        found = present_in_broker(client, queue, missing)
                        times.append((time.perf_counter() - start) * 1000)
                        assert not found
                    rows.append([kind, backlog, HELD, ids, f"{size / 1e6:.1f}",
                                 f"{statistics.median(times):.1f}", f"{max(times):.1f}"])  # fmt: skip
                    print(rows[-1], flush=True)
        finally:
            server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backlog", type=int, nargs="+", default=[0, 1000, 10000, 50000])
    parser.add_argument("--ids", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=20)
    options = parser.parse_args()
    rows = [row for kind in ("pages", "dossiers")
            for row in run(kind, sorted(options.backlog), options.ids, options.rounds)]  # fmt: skip
    table = markdown_table(["queue", "queued messages", "held unacknowledged", "ids looked for",
                            "messages (MB in Redis)", "median ms", "slowest ms"], rows)  # fmt: skip
    server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    broker = ", ".join([f"celery {version('celery')}", f"kombu {version('kombu')}",
                        f"redis-py {version('redis')}", server.stdout.strip()])  # fmt: skip
    path = write_results("lost", "Lost-message search: cost in Redis", [
        ("Worst case: ids that are nowhere (every message scanned)", table),
        ("Broker", broker)])  # fmt: skip
    print(f"written: {path}")


if __name__ == "__main__":
    main()
