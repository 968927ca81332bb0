"""OpenSC's PKCS#11 spy in front of the SoftHSM2 token: every PKCS#11 call a process makes is
logged, so a test can count logins (``C_Login``) exactly. The spy is a real PKCS#11 module
(Debian ``opensc``) that forwards to the module named in ``PKCS11SPY``.

``run_through_spy(token, pki, log, pin, script, *args)`` runs ``script`` in a fresh Python
process (``python -c script MODULE LABEL KEY ROOT *args``, MODULE being the spy) with the
PIN in ``DIGITIZE_PKCS11_PIN``; it returns the JSON the script printed last and the number of
``C_Login`` calls it made.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers_pki import PkiServices, SoftHsmToken

REPO = Path(__file__).resolve().parents[1]
PKCS11_SPY = ("/usr/lib/x86_64-linux-gnu/pkcs11-spy.so", "/usr/lib/aarch64-linux-gnu/pkcs11-spy.so",
              "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so", "/usr/lib/pkcs11/pkcs11-spy.so")  # fmt: skip


def pkcs11_spy() -> str:
    for path in PKCS11_SPY:
        if Path(path).is_file():
            return path
    pytest.fail("OpenSC's pkcs11-spy.so not found: apt-get install opensc")


def run_through_spy(token: SoftHsmToken, pki: PkiServices, log: Path, pin: str, script: str,
                    *args: str) -> tuple[Any, int]:  # fmt: skip
    env = {**os.environ, **token.env, "PKCS11SPY": token.module, "PKCS11SPY_OUTPUT": str(log),
           "DIGITIZE_PKCS11_PIN": pin}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script, pkcs11_spy(), token.label, token.key_label,
         str(pki.root_cert), *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    logins = len(re.findall(r"\bC_Login\b", log.read_text(errors="replace")))
    return json.loads(done.stdout.splitlines()[-1]), logins
