"""The package installs cleanly: `digitize` and `digitize.cli`, never a top-level `cli`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_editable_install_imports_library_and_cli() -> None:
    code = "import digitize, digitize.cli, digitize.cli.main; print(digitize.__version__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd="/")
    assert done.returncode == 0, done.stderr
    assert subprocess.run([sys.executable, "-c", "import cli"], capture_output=True,
                          cwd="/").returncode != 0


@pytest.mark.slow
def test_wheel_holds_digitize_cli_and_no_top_level_cli(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("digitize-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "digitize/cli/main.py" in names
    assert "digitize/bundled_profiles/default.yaml" in names
    assert not any(n.startswith("cli/") for n in names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    code = ("import digitize, digitize.cli.main, digitize.profiles as p; "
            "print(digitize.__file__); print(p.list_profiles())")
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(str(target))
    assert "xa-mot-cua" in done.stdout
