"""State files a station keeps beside its work (journals, the lock, the lease, reason files).

They live in folders other people may write to (an inbox on a share): a planted symbolic link
must not make the station truncate, append to or read a file elsewhere, and the citizens'
names they hold are nobody else's business. So every state file is opened with
``O_NOFOLLOW | O_CLOEXEC`` (a link is refused, not followed; no child process inherits the
descriptor) and must be a regular file; files are created 0640 and folders 0750 whatever the
umask; replacements go through ``util.write_atomic`` (an unpredictable ``mkstemp`` name).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from digitize.errors import UnsafePathError
from digitize.util import write_atomic

STATE_FILE_MODE = 0o640
STATE_DIR_MODE = 0o750


def open_state_file(path: Path, flags: int) -> int:
    """``os.open`` of a state file that refuses symbolic links and anything not a regular
    file (``UnsafePathError``); created 0640. Other ``OSError``s (disk full…) propagate."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, STATE_FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(
                "this state file is a symbolic link: refused, not followed", path=path
            ) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePathError("this state file is not a regular file: refused", path=path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_state_file(path: Path, limit: int = 1 << 30) -> bytes | None:
    """The bytes of a state file (at most ``limit``), None when it does not exist."""
    try:
        fd = open_state_file(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        chunks = []
        size = 0
        while size < limit and (chunk := os.read(fd, min(1 << 20, limit - size))):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def ensure_state_dir(path: Path) -> None:
    """Create ``path`` (0750) if needed; refuse it when it is a link or not a folder."""
    if path.is_symlink():
        raise UnsafePathError("this state folder is a symbolic link: refused", path=path)
    if not path.exists():
        path.parent.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
        try:
            path.mkdir(mode=STATE_DIR_MODE)
        except FileExistsError:
            pass
    if path.is_symlink() or not path.is_dir():
        raise UnsafePathError("this state folder is not a folder: refused", path=path)


def write_state_file(path: Path, data: bytes) -> None:
    """Replace a state file atomically (0640, unpredictable temporary name, fsync'ed)."""
    write_atomic(path, data, mode=STATE_FILE_MODE)


__all__ = [
    "STATE_DIR_MODE",
    "STATE_FILE_MODE",
    "ensure_state_dir",
    "open_state_file",
    "read_state_file",
    "write_state_file",
]
