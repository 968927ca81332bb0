"""``ingest_dossier_isolated``: the same ``Dossier`` as ``ingest_dossier``, decoded in a
short-lived child process.

Ingest decodes every page of hostile input (libjpeg, libtiff, libpng, qpdf, OpenJPEG,
jbig2dec). In batch and watch the calling process also holds the open signer — a PKCS#12 key
in memory or a logged-in token — so a decoder bug there is a bug next to the key. The isolated
runner keeps all of that out of the caller:

* the child is a fresh interpreter (``python -m digitize.ingest.isolated``), started with a
  minimal environment (no PIN, password or token variables), core dumps off, and an
  address-space limit (``IngestSettings.isolated_memory_mb``): a bomb that gets past the
  decoder limits ends in ``MemoryError`` → ``TooLargeError`` inside the child;
* the child reports each page before decoding it; the parent kills it when one page takes
  longer than ``decode_timeout_s`` or the whole dossier longer than ``isolated_timeout_s``
  (``DecodeTimeoutError``, naming the file and page), and turns a child that dies (crash,
  kernel OOM kill) into ``DecoderCrashedError`` naming what it was reading;
* a typed error raised in the child is raised again in the parent, same class, same message.

The child's stdout carries one JSON object per line (the decoders' own output is sent to
stderr, of which the last 4 kB are kept for an internal error's message).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

import digitize
from digitize.errors import (
    DecoderCrashedError,
    DecodeTimeoutError,
    DigitizeError,
    all_error_classes,
)
from digitize.models import Dossier
from digitize.settings import IngestSettings
from digitize.util import nfc

# Starting the child's interpreter and importing the decoders (not a page's decode time).
_START_ALLOWANCE_S = 30.0
# Variables the child may see; everything else (PINs, passwords, CSC tokens) stays behind.
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "OMP_THREAD_LIMIT")


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP}
    package_root = str(Path(digitize.__file__).resolve().parents[1])
    env["PYTHONPATH"] = package_root
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("OMP_THREAD_LIMIT", "1")
    return env


def _reader(stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _drain(stream: IO[bytes], tail: deque[bytes]) -> None:
    for chunk in iter(lambda: stream.read(4096), b""):
        tail.append(chunk)


def _error_from(report: dict[str, Any], where: tuple[str, int]) -> DigitizeError:
    """The child's error as the same class; one without a file names what was being read."""
    classes = {cls.__name__: cls for cls in all_error_classes()}
    cls = classes.get(str(report.get("class")), DigitizeError)
    path, page = report.get("path"), report.get("page")
    if path is None:
        path, page = where[0], page or where[1] or None
    return cls(str(report.get("message", "")), path=path, page=page, hint=report.get("hint"))


class _Supervisor:
    """Reads the child's reports and enforces the per-page and whole-run deadlines."""

    def __init__(self, process: subprocess.Popen[bytes], settings: IngestSettings, label: str):
        self.process = process
        self.settings = settings
        self.label = label
        self.where: tuple[str, int] = (label, 0)
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.stderr: deque[bytes] = deque(maxlen=2)
        assert process.stdout is not None and process.stderr is not None
        threading.Thread(target=_reader, args=(process.stdout, self.lines), daemon=True).start()
        threading.Thread(target=_drain, args=(process.stderr, self.stderr), daemon=True).start()

    def _timeout(self, why: str) -> DecodeTimeoutError:
        self.process.kill()
        path, page = self.where
        return DecodeTimeoutError(
            f"{why}; the decoding process was stopped",
            path=path,
            page=page or None,
            hint="the file may be built to make a decoder hang: ask for a new scan",
        )

    def _died(self) -> DigitizeError:
        code = self.process.wait()
        path, page = self.where
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return DecoderCrashedError(
                f"the decoding process died ({name}) while reading this file",
                path=path,
                page=page or None,
                hint="a decoder crash or an out-of-memory kill: the file is refused",
            )
        tail = b"".join(self.stderr).decode("utf-8", "replace")[-400:].replace("\n", " ")
        return DigitizeError(f"isolated ingest ended without a result (exit {code}): {tail}")

    def result(self) -> Dossier:
        settings = self.settings
        deadline = time.monotonic() + settings.isolated_timeout_s
        allowance = _START_ALLOWANCE_S  # the first report comes after the interpreter starts
        while True:
            now = time.monotonic()
            wait = min(settings.decode_timeout_s + allowance, deadline - now)
            allowance = 0.0
            if wait <= 0:
                raise self._timeout(f"ingest took longer than {settings.isolated_timeout_s:g} s")
            try:
                line = self.lines.get(timeout=wait)
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise self._timeout(
                        f"ingest took longer than {settings.isolated_timeout_s:g} s"
                    ) from None
                raise self._timeout(
                    f"one page took longer than {settings.decode_timeout_s:g} s to decode"
                ) from None
            if line is None:
                raise self._died()
            report = json.loads(line)
            if "page" in report:
                self.where = (str(report["page"][0]), int(report["page"][1]))
            elif "dossier" in report:
                self.process.wait()
                return Dossier.model_validate(report["dossier"])
            elif "error" in report:
                self.process.wait()
                raise _error_from(report["error"], self.where)


def ingest_dossier_isolated(source: Path | str, settings: IngestSettings | None = None) -> Dossier:
    """``ingest_dossier`` run in a short-lived child process (see the module docstring).

    Returns a ``Dossier`` equal to what ``ingest_dossier`` returns in-process. Raises the
    child's ``DigitizeError`` unchanged, ``DecodeTimeoutError`` past a deadline,
    ``DecoderCrashedError`` when the child dies. Costs one interpreter start (about a second).
    """
    settings = settings or IngestSettings()
    source = Path(source)
    request = {
        "source": str(source.absolute()),
        "settings": settings.model_dump(mode="json"),
        "memory_bytes": settings.isolated_memory_mb * 1024**2,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "digitize.ingest.isolated"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_env(),
        close_fds=True,
    )
    try:
        assert process.stdin is not None
        process.stdin.write(json.dumps(request).encode())
        process.stdin.close()
        return _Supervisor(process, settings, nfc(source.name)).result()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


# --- the child --------------------------------------------------------------------------------
def _limit_resources(memory_bytes: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core dump of a scan's pages
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _child_main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    # The protocol gets a private copy of stdout; anything a decoder prints goes to stderr.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    _limit_resources(int(request["memory_bytes"]))

    def send(obj: dict[str, Any]) -> None:
        protocol.write(json.dumps(obj, ensure_ascii=True) + "\n")
        protocol.flush()

    from digitize.ingest.assemble import run_ingest

    try:
        settings = IngestSettings.model_validate(request["settings"])
        dossier = run_ingest(
            Path(request["source"]), settings, progress=lambda f, p: send({"page": [f, p]})
        )
    except DigitizeError as exc:
        error = {"class": type(exc).__name__, "message": exc.message, "path": exc.path}
        send({"error": {**error, "page": exc.page, "hint": exc.hint}})
        return 0
    except MemoryError:
        message = "ran out of memory while decoding (isolated ingest limit)"
        send({"error": {"class": "TooLargeError", "message": message, "path": None}})
        return 0
    send({"dossier": dossier.model_dump(mode="json")})
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
