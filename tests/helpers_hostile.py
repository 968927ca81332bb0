"""Hostile inputs built on the fly (alias bombs, Flate bombs) and a way to run code in a child
process and read its peak memory.

``run_measured`` starts an intermediate Python process whose only child runs the code; the
intermediate reports ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` — the child's peak resident set,
untouched by anything else this test session ever ran. The child gets an address-space limit
so that a regression cannot take the (shared) machine down with it; hitting that limit shows as
a failed run, never as a pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_WRAPPER = r"""
import json, resource, subprocess, sys
limit, code, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=cap)
    result = {"rc": done.returncode, "out": done.stdout, "err": done.stderr[-3000:]}
except subprocess.TimeoutExpired:
    result = {"rc": None, "out": "", "err": "timeout"}
result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps(result))
"""


@dataclass
class Measured:
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str
    max_rss_mb: float


def run_measured(code: str, *, address_space_mb: int = 6144, timeout_s: float = 300) -> Measured:
    """Run ``code`` (Python source) in a fresh child; its output and its peak RSS."""
    wrapper = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(address_space_mb * 1024**2), code, str(timeout_s)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    result = json.loads(wrapper.stdout)
    return Measured(result["rc"], result["out"], result["err"], result["max_rss_mb"])


def alias_bomb_yaml(levels: int = 9, width: int = 9) -> str:
    """The classic "billion laughs" in YAML: each level lists the previous one ``width`` times
    (under 1 kB; ``width ** levels`` ≈ 3.9e8 leaves once expanded)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        refs = ",".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def flate_bomb(inflated_bytes: int, fill: bytes = b" ") -> bytes:
    """A valid zlib stream that inflates to ``inflated_bytes`` copies of ``fill`` (one byte),
    built from one full-flushed 1 MiB block repeated, so it costs seconds, not a real inflate.
    About 1 kB per MiB: 10 GB of output in a 10 MB stream."""
    block = 1024 * 1024
    count = max(1, inflated_bytes // block)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = compressor.compress(fill * block) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush(zlib.Z_FINISH)  # the final (empty) block
    total = count * block
    # Adler-32 of `total` equal bytes: A = 1 + n·b, B = n + b·n(n+1)/2 (mod 65521).
    value = fill[0]
    a = (1 + total * value) % 65521
    b = (total + value * total * (total + 1) // 2) % 65521
    header = b"\x78\xda"
    return header + chunk * count + tail + ((b << 16) | a).to_bytes(4, "big")
