"""The installed `digitize` command: help on every command, run on a sample, one-line errors
with stable exit codes, nothing modified."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from digitize.errors import ExitCode
from digitize.util import sha256_file
from tests.conftest import SAMPLE_DOSSIER_2

DIGITIZE = [sys.executable, "-m", "digitize"]
COMMANDS = ["run", "verify", "profile", "exit-codes", "ingest", "deskew", "ocr", "package", "sign",
            "batch", "watch", "report", "review", "stats", "purge", "worker", "submit",
            "jobs", "finish"]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DIGITIZE, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    done = _run(command, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout


def test_the_command_list_is_the_one_tested() -> None:
    """A new command gets its help checked too: the top-level list is exactly COMMANDS."""
    done = _run("--help")
    assert done.returncode == 0, done.stderr
    shown = {line.split()[0] for line in done.stdout.split("Commands:", 1)[1].splitlines()
             if line.startswith("  ") and not line.startswith("   ")}
    assert shown == set(COMMANDS)


@pytest.mark.slow
def test_run_sample_prints_demo_warning_and_bundle_path(tmp_path: Path) -> None:
    before = {p: sha256_file(p) for p in SAMPLE_DOSSIER_2.rglob("*") if p.is_file()}
    done = _run("run", str(SAMPLE_DOSSIER_2), "--out", str(tmp_path / "out"), "--workers", "2")
    assert done.returncode == 0, done.stderr + done.stdout
    bundle = tmp_path / "out" / "ho-so-cap-ban-sao"
    assert f"Bundle: {bundle}" in " ".join(done.stdout.split())
    assert "DEMO" in done.stdout
    assert (bundle / "manifest.json").is_file()
    # the upside-down page was turned back (orientation recorded in the manifest)
    manifest = (bundle / "manifest.json").read_text(encoding="utf-8")
    assert '"orientation_deg": 180' in manifest
    assert {p: sha256_file(p) for p in before} == before  # inputs untouched
    again = _run("run", str(SAMPLE_DOSSIER_2), "--out", str(tmp_path / "out"))
    assert again.returncode == int(ExitCode.OUTPUT)
    assert "already exists" in again.stderr
    verified = _run("verify", str(bundle), "--lang", "en", "--allow-demo")
    # a demo bundle is B-B with no revocation data: valid, revocation not checked (66)
    assert verified.returncode == int(ExitCode.VERIFY_REVOCATION_UNKNOWN), verified.stdout


def test_corrupt_scan_gives_one_line_and_its_exit_code(tmp_path: Path) -> None:
    dossier = tmp_path / "hs"
    (dossier / "c1").mkdir(parents=True)
    good = next(SAMPLE_DOSSIER_2.glob("2-quyet-dinh/p1.jpg"))
    shutil.copy(good, dossier / "c1" / "p1.jpg")
    data = good.read_bytes()
    (dossier / "c1" / "p2.jpg").write_bytes(data[: len(data) // 3])  # truncated JPEG
    done = _run("run", str(dossier), "--out", str(tmp_path / "out"))
    assert done.returncode == int(ExitCode.TRUNCATED_FILE), done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "p2.jpg" in lines[0]
    assert not (tmp_path / "out" / "hs").exists()


def test_missing_dossier_is_a_usage_error(tmp_path: Path) -> None:
    done = _run("run", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert done.returncode == int(ExitCode.USAGE)
