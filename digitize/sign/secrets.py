"""Secrets (PKCS#12 password, token PIN, CSC token/PIN/OTP) and the process that holds a key.

Contract (SHALL):

- A secret comes from the environment variable named in the settings, or from a no-echo
  prompt when stdin is a terminal; never from argv or files, and it never appears in logs,
  exception messages or written files.
- A secret read from the environment is **removed** from ``os.environ`` at once, before any
  page worker or subprocess starts (pikepdf's ``jbig2dec``, ``fc-match``, spawned workers): a
  child never inherits it. So an environment secret serves one ``open_signer`` per process;
  open the signer once and keep it open (a second open finds nothing and prompts, or fails
  with ``SignerConfigError``). Limit: Linux keeps the process's *initial* environment block
  readable in ``/proc/<pid>/environ`` (same user or root only); a systemd
  ``EnvironmentFile=`` readable by root only limits who can set it.
- While a key is loaded the process writes no core dump (``RLIMIT_CORE`` 0) and is not
  dumpable (``prctl(PR_SET_DUMPABLE, 0)``: no core, no ptrace attach by the same user). Both
  stay in force until the process ends: freed key material may still sit in memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import getpass
import os
import sys

from digitize.errors import SignerConfigError

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def read_secret(env_var: str, what: str, *, required: bool = True) -> str | None:
    """The secret from ``env_var`` (then removed from the environment), else a no-echo prompt
    on a terminal; ``None`` when not ``required`` and neither gives one."""
    value = os.environ.pop(env_var, None)
    if value:
        return value
    if sys.stdin is not None and sys.stdin.isatty():
        value = getpass.getpass(f"{what}: ")
        if value:
            return value
    if not required:
        return None
    raise SignerConfigError(
        f"no {what} available",
        hint=f"set the environment variable {env_var} (read once per process) "
        "or run from a terminal to be prompted",
    )


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def disable_core_dumps() -> None:
    """No core dump and no dumpable process from now on (a key or PIN must not reach a core
    file or another process of the same user). Best effort where the platform lacks either."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    if sys.platform.startswith("linux"):
        libc = _libc()
        if libc is not None:
            libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def process_dumpable() -> bool | None:
    """Whether the kernel would write a core for this process (None: cannot tell here)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = _libc()
    if libc is None:
        return None
    return bool(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
