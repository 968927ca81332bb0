"""A real HTTP proxy on 127.0.0.1 that fails on purpose, for retry tests of the signing
services (TSA, CSC): it answers ``503`` to the first ``fail_first`` requests whose path
contains ``fail_path`` (every one when ``fail_first`` is negative) and forwards everything
else to ``target``, counting requests per path. Real sockets, real HTTP: only the failures
are staged.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


@dataclass
class FlakyProxy:
    target: str  # e.g. http://127.0.0.1:1234/vn-test (no trailing slash)
    fail_path: str = ""  # fail only requests whose path contains this
    fail_first: int = 0  # how many matching requests fail; negative: all of them
    requests: Counter[str] = field(default_factory=Counter)
    bodies: list[tuple[str, bytes]] = field(default_factory=list)  # (path, request body)
    failed: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _should_fail(self, path: str, body: bytes) -> bool:
        with self._lock:
            self.requests[path] += 1
            self.bodies.append((path, body))
            if self.fail_path not in path:
                return False
            if self.fail_first < 0 or self.failed < self.fail_first:
                self.failed += 1
                return True
            return False

    def start(self) -> FlakyProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy._should_fail(self.path, body or b""):
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                req = urllib.request.Request(proxy.target + self.path, data=body,
                                             headers=headers, method=self.command)  # fmt: skip
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
                        status, rheaders, data = resp.status, resp.headers, resp.read()
                except urllib.error.HTTPError as e:
                    status, rheaders, data = e.code, e.headers, e.read()
                self.send_response(status)
                for k, v in rheaders.items():
                    if k.lower() not in HOP_HEADERS:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _relay  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def count(self, fragment: str) -> int:
        with self._lock:
            return sum(n for path, n in self.requests.items() if fragment in path)
