"""Small shared helpers, one of each: hashing, atomic writes, Vietnam time, NFC, safe text for
consoles and spreadsheets, masking of personal identifiers, the tool's data folder.

Every module uses these instead of its own copy, so a fix (a directory fsync, a time format)
lands everywhere at once.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
import unicodedata
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Literal

_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_regular(path: Path) -> str | None:
    """SHA-256 of a regular file opened without following a link and without blocking (a
    FIFO named like a scan is never read); None when it is not a regular file. An open that
    fails raises ``OSError``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest = hashlib.sha256()
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


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


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that a reader (or a crash) sees the old file or the new
    one, never a part: an unpredictable temporary name in the same folder (``mkstemp``: created
    ``O_EXCL``, never follows a planted symlink), fsync of the file, rename, fsync of the folder.

    ``mode`` defaults to what ``open()`` would give (0666 & ~umask).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode if mode is not None else 0o666 & ~current_umask())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def _vietnam_zone() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Ho_Chi_Minh")
    except Exception:  # noqa: BLE001 - no tz database (minimal containers): Vietnam keeps +07:00
        return timezone(timedelta(hours=7), "ICT")


VN_TZ: tzinfo = _vietnam_zone()
"""Vietnam time (UTC+07:00, no daylight saving since 1975): counter-local time of scans,
signatures and every time a person reads."""

TimeStyle = Literal["vn", "iso"]


def vn_now() -> datetime:
    return datetime.now(VN_TZ)


def format_vn_time(moment: datetime, style: TimeStyle = "vn", seconds: bool = False) -> str:
    """A time as a person at the counter reads it, in Vietnam time.

    ``vn``: ``11:34 ngày 30/11/2026`` (the Vietnamese administrative form: hour first, then
    ``ngày dd/mm/yyyy``); ``iso``: ``2026-11-30T11:34:00+07:00``. A naive ``moment`` is taken
    as Vietnam time. Machine-readable files keep ISO 8601 with the offset.
    """
    local = moment.replace(tzinfo=VN_TZ) if moment.tzinfo is None else moment.astimezone(VN_TZ)
    if style == "iso":
        return local.isoformat(timespec="seconds")
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    return f"{clock} ngày {local.strftime('%d/%m/%Y')}"


def nfc(text: str) -> str:
    """Unicode NFC: the one normal form for Vietnamese text, names and file names."""
    return unicodedata.normalize("NFC", text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_control(text: str) -> str:
    """Make untrusted text (file names, certificate names, OCR text) safe for one log or
    console line: control and bidi characters become ``\\xNN``/``\\uNNNN`` escapes, so a name
    with a newline or an ANSI sequence cannot forge a second line or recolour the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(cell: object) -> object:
    """Neutralise a spreadsheet formula (CSV injection): text starting with ``= + - @`` (or a
    tab/CR) gets a leading apostrophe; numbers and other values pass unchanged."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_START):
        return "'" + cell
    return cell


def mask_id(value: str | None) -> str:
    """Mask a personal identifier (CCCD number, date of birth) for consoles and logs:
    ``001234565678`` → ``0012••••5678``; short values keep only their last two characters.
    The full value lives only in the manifest, the report and the review page."""
    if not value:
        return ""
    text = str(value)
    if len(text) >= 10:
        return text[:4] + "\u2022" * 4 + text[-4:]
    if len(text) > 2:
        return "\u2022" * (len(text) - 2) + text[-2:]
    return "\u2022" * len(text)


def mask_date(value: str | None) -> str:
    """Mask a date of birth for consoles and logs: ``1990-05-17`` → ``1990-••-••`` (the year
    alone does not single a person out; day and month with a name would)."""
    if not value:
        return ""
    text = str(value)
    match = re.fullmatch(r"(\d{4})-\d{2}-\d{2}", text)
    if match:
        return f"{match.group(1)}-\u2022\u2022-\u2022\u2022"
    return re.sub(r"\d", "\u2022", text[:-4]) + text[-4:] if len(text) > 4 else text


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
