"""A real Redis for the hub's tests (Debian ``redis-server``), and real ``digitize worker``s.

- ``RedisServer.start(workdir, password=...)``: ``redis-server`` on a free port of 127.0.0.1,
  its files in ``workdir``, persistence as a hub runs it (AOF, ``appendfsync always``),
  password through ``requirepass``. ``restart()`` keeps port and files (a Redis restart),
  ``stop()`` ends it (SIGTERM, then SIGKILL).
- ``WorkerProcess``: ``python -m digitize worker ...`` in its own process group with the
  broker URL in ``DIGITIZE_BROKER_URL``; ``kill()`` SIGKILLs the whole group (the machine
  dies: dossier consumer and page child at once), ``terminate()`` sends SIGTERM to the main
  process as systemd would (KillMode=mixed).
- ``small_dossier(folder, pages)``: a dossier of tiny real scans (JPEG, 300 dpi, text).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers_pki import free_port, require_tool

REPO = Path(__file__).resolve().parents[1]
HUB_PASSWORD = "Hub-pw-51c0ffee"  # the hub tests' Redis password (conftest.redis_server)


@dataclass
class RedisServer:
    workdir: Path
    port: int
    password: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @classmethod
    def start_new(cls, workdir: Path, password: str | None = None) -> RedisServer:
        require_tool("redis-server")
        workdir.mkdir(parents=True, exist_ok=True)
        server = cls(workdir=workdir, port=free_port(), password=password)
        server.start()
        return server

    def _config(self) -> Path:
        lines = [
            "bind 127.0.0.1",
            f"port {self.port}",
            f"dir {self.workdir}",
            "appendonly yes",
            "appendfsync always",
            'save ""',
            "daemonize no",
            "protected-mode yes",
            f"logfile {self.workdir / 'redis.log'}",
        ]
        if self.password:
            lines.append(f"requirepass {self.password}")
        conf = self.workdir / "redis.conf"
        conf.write_text("\n".join(lines) + "\n")
        os.chmod(conf, 0o600)
        return conf

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", str(self._config())],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        self.wait_ready()

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                           decode_responses=True, socket_timeout=5)  # fmt: skip

    def wait_ready(self, timeout: float = 20.0) -> None:
        import redis

        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                pass
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.workdir / 'redis.log').read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not become ready")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def hub_profile(path: Path, **hub: object) -> Path:
    """A profile file with short hub timings, so redelivery happens within a test."""
    import yaml

    settings = {"visibility_timeout_s": 12, "restore_interval_s": 1, "lease_ttl_s": 6,
                "defer_s": 1, "max_attempts": 3, "retry_backoff_s": 1, "abandon_after_s": 0,
                "broker_timeout_s": 3, "lost_check_s": 2, **hub}  # fmt: skip
    data = {"pipeline": {"isolate_ingest": False}, "ocr": {"keep_hocr": False},
            "hub": settings}  # fmt: skip
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class WorkerProcess:
    """One ``digitize worker`` (the whole machine's share: dossier consumer + page child)."""

    url: str
    out_dir: Path
    log: Path
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        argv = [sys.executable, "-m", "digitize", "worker", "--out", str(self.out_dir), *self.args]
        env = {**os.environ, "DIGITIZE_BROKER_URL": self.url, "OMP_THREAD_LIMIT": "1", **self.env}
        handle = open(self.log, "ab")  # noqa: SIM115 - the child writes it until it ends
        self.proc = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                     cwd=REPO, start_new_session=True)  # fmt: skip
        handle.close()
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its children at once (the machine died)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def terminate(self, timeout: float = 120.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.kill()  # anything left in its group

    @staticmethod
    def terminate_all(workers: list[WorkerProcess], timeout: float = 120.0) -> None:
        """SIGTERM every worker at once, then wait for each: their shutdowns overlap."""
        for worker in workers:
            if worker.alive:
                assert worker.proc is not None
                worker.proc.send_signal(signal.SIGTERM)
        for worker in workers:
            if worker.proc is None:
                continue
            try:
                worker.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
            worker.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


SCAN_LINES = ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
              "ĐƠN ĐỀ NGHỊ CẤP BẢN SAO")  # fmt: skip


def small_scan(path: Path, seed: int) -> Path:
    """A small real 'scan': A6 at 300 dpi, JPEG, a few printed Vietnamese lines."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", (1240, 1748), 250)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf", 40)
    y = 200
    for line in (*SCAN_LINES, f"Số: {seed:04d}/UBND"):
        draw.text((120, y), line, fill=20, font=font)
        y += 90
    img.save(path, "JPEG", quality=80, dpi=(300, 300))
    return path


def small_dossier(folder: Path, pages: int, seed: int = 0, *, one_document: bool = False) -> Path:
    """``pages`` small scans: one document each, or all pages of one document (a subfolder)."""
    target = folder / "01-don-de-nghi" if one_document else folder
    target.mkdir(parents=True, exist_ok=True)
    for index in range(1, pages + 1):
        small_scan(target / f"trang-{index:02d}.jpg", seed * 10 + index)
    return folder


def corrupt_dossier(folder: Path) -> Path:
    """A dossier whose only scan is a truncated JPEG (refused by ingest: bad input)."""
    folder.mkdir(parents=True, exist_ok=True)
    scan = small_scan(folder / "trang-01.jpg", 99)
    data = scan.read_bytes()
    scan.write_bytes(data[: len(data) // 3])
    return folder


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


def require_redis() -> None:
    if not redis_available():
        pytest.fail("redis-server is not installed (scripts/setup.sh --test installs it)")
