"""Bench result files: one Markdown file per bench run under ``bench/results/``.

Every figure a note quotes must be traceable to the machine, the versions and the date it was
measured on, so each bench writes its tables through :func:`write_results`, which puts that
header (CPU model, usable cores, load average at the end of the run, digitize / tesseract /
ocrmypdf / Python / OpenCV versions, the command line) above the tables. The file is written
atomically; commit it with the change whose effect it shows.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-style table; numbers and strings as given."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _tool_version(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    if out.returncode != 0:
        return "unknown"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def versions() -> dict[str, str]:
    """Versions of everything a bench figure depends on."""
    from digitize._version import __version__

    found = {
        "digitize": __version__,
        # An exported copy of a commit (to bench it while the checkout changes) names it in
        # DIGITIZE_BENCH_COMMIT.
        "git commit": os.environ.get("DIGITIZE_BENCH_COMMIT")
        or _tool_version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "python": platform.python_version(),
        "tesseract": _tool_version(["tesseract", "--version"]).removeprefix("tesseract "),
        "ocrmypdf": _tool_version([sys.executable, "-m", "ocrmypdf", "--version"]),
        "ghostscript": _tool_version(["gs", "--version"]),
    }
    try:
        import cv2

        found["opencv"] = cv2.__version__
    except ImportError:  # pragma: no cover - a core dependency
        found["opencv"] = "not installed"
    dirty = _tool_version(["git", "-C", str(REPO), "status", "--porcelain", "--", "digitize"])
    if dirty not in ("", "unknown", "not installed") and "DIGITIZE_BENCH_COMMIT" not in os.environ:
        found["git commit"] += " (digitize/ has uncommitted changes)"
    return found


def machine() -> dict[str, str]:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return {
        "cpu": _cpu_model(),
        "usable cores": str(_usable_cores()),
        "os": f"{platform.system()} {platform.release()}",
        "load average at the end (1/5/15 min)": load,
    }


def write_results(name: str, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """Write ``bench/results/<name>.md``: title, when/where/what versions, then each
    ``(heading, markdown body)`` section. Returns the path."""
    from digitize.util import write_atomic

    now = datetime.now().astimezone()
    lines = [f"# {title}", ""]
    lines.append(f"- date: {now.isoformat(timespec='seconds')}")
    lines.append(f"- command: `{shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`")
    for key, value in machine().items():
        lines.append(f"- {key}: {value}")
    lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    lines.append("")
    for heading, body in sections:
        lines += [f"## {heading}", "", body.rstrip(), ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    write_atomic(path, "\n".join(lines).encode("utf-8"))
    return path
