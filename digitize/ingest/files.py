"""Opening input files without being fooled: regular files only, never a FIFO or a device.

A FIFO named ``p1.jpg`` blocks ``open()`` forever, a device can be read forever, and a symlink
swapped in after the walk can point anywhere. Every input is therefore opened with
``O_NONBLOCK | O_NOFOLLOW`` (a FIFO opens at once, a symlink is refused) and checked with
``fstat`` on the open descriptor — what is read is what was checked. Stdlib only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from digitize.errors import CorruptFileError, UnsafePathError

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def refuse_non_regular(path: Path, display: str) -> None:
    """Raise ``UnsafePathError`` unless ``path`` (a symlink followed by ``stat``, which opens
    nothing) is a regular file."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise UnsafePathError(f"cannot stat ({exc.strerror})", path=display) from exc
    if not stat.S_ISREG(mode):
        raise UnsafePathError(
            f"{kind_of(mode)}, not a regular file: refused without reading it", path=display
        )


def open_regular(path: Path, display: str) -> BinaryIO:
    """Open ``path`` read-only as a regular file: no symlink in the last component (resolve it
    first), no FIFO/device/socket — checked on the open descriptor."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafePathError(
                "the file became a symbolic link after it was checked", path=display
            ) from exc
        raise CorruptFileError(f"cannot read ({exc.strerror or exc})", path=display) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafePathError(
                f"{kind_of(mode)}, not a regular file: refused without reading it", path=display
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
