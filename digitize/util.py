"""Small shared helpers: hashing, atomic writes, names."""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import Path

_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_path(path: Path) -> None:
    """Flush a file or directory to disk (a crash must not leave a renamed-but-empty file)."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` under a temporary name in the same folder, then rename into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def ascii_safe_name(text: str) -> str:
    """R31: keep ``[A-Za-z0-9._-]``; Vietnamese letters lose their marks first (đ → d)."""
    text = unicodedata.normalize("NFC", text).replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    safe = _UNSAFE.sub("_", stripped).strip("._")
    return safe or "dossier"


def user_data_dir() -> Path:
    """Where the tool keeps its own state (demo identity): ``$DIGITIZE_DATA_DIR`` or the
    platform's user data folder."""
    override = os.environ.get("DIGITIZE_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("digitize"))


def current_umask() -> int:
    """The process umask, read without changing it (os.umask() would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022
