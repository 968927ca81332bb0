"""Batch on a station in trouble (issue 15 points 8 and 11; security review W4, P7).

* A station fault (here the time-stamp service unreachable, exit 55) fails the dossier it hit
  and starts no other: the rest stay ``not_run`` for the next run, instead of all failing.
* A symbolic link in IN_DIR is reported (16), never followed (it may point into OUT_DIR).
"""

from __future__ import annotations

import os
from pathlib import Path

from digitize.batch import batch_run
from digitize.errors import ExitCode
from digitize.profiles import load_profile
from tests.helpers_batch import write_tiny_dossier
from tests.helpers_pki import free_port


def test_a_station_fault_stops_the_batch_instead_of_failing_every_dossier(
    tmp_path: Path,
) -> None:
    """W4: TSA down → the first dossier fails with 55 (station_fault, retryable), the other
    two are not started; the exit code says some failed (90)."""
    dead = f"http://127.0.0.1:{free_port()}/tsa"
    profile = load_profile(
        None, {"pipeline": {"workers": 1}, "sign": {"level": "B-T", "tsa_url": dead}}
    )
    in_dir, out = tmp_path / "in", tmp_path / "out"
    for number in (1, 2, 3):
        write_tiny_dossier(in_dir, f"hs-{number}", number)
    result = batch_run(in_dir, out, profile)
    statuses = [(row.dossier, row.status, row.exit_code) for row in result.rows]
    assert statuses == [
        ("hs-1", "failed", ExitCode.TSA_UNAVAILABLE),
        ("hs-2", "not_run", 0),
        ("hs-3", "not_run", 0),
    ]
    assert result.exit_code == ExitCode.BATCH_PARTIAL
    assert not [p for p in os.listdir(out) if not p.startswith((".", "summary"))]


def test_a_linked_dossier_folder_is_reported_not_followed(tmp_path: Path) -> None:
    """P7: IN_DIR/hs-link → OUT_DIR/… would otherwise be digitised from the output side."""
    in_dir, out, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    write_tiny_dossier(elsewhere, "hs-x", 9)
    in_dir.mkdir()
    os.symlink(elsewhere / "hs-x", in_dir / "hs-link")
    result = batch_run(in_dir, out, load_profile(None, {"pipeline": {"workers": 1}}))
    row = result.rows[0]
    assert (row.dossier, row.status, row.exit_code) == ("hs-link", "failed", ExitCode.UNSAFE_PATH)
    assert "symbolic link" in row.error
    assert not (out / "hs-x").exists() and not (out / "hs-link").exists()
