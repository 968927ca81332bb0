"""Bundle writing: R31 names, atomic commit, zip order and safety, stale partial clean-up."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from digitize.bundle import (
    BundleWriter,
    bundle_file_name,
    remove_stale_partials,
    write_checksums,
    write_zip,
)
from digitize.errors import OutputError


def test_r31_file_names_are_safe_and_sort_in_component_order() -> None:
    names = [bundle_file_name("000.00.12.H62-201105-0004", i) for i in (1, 2, 10, 100)]
    assert names[0] == "000.00.12.H62-201105-0004.001.pdf"
    assert names == sorted(names)
    assert bundle_file_name("hồ sơ/Đắk Lắk 1", 3) == "ho_so_Dak_Lak_1.003.pdf"


def test_checksums_file_is_sha256sum_compatible(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.7 a")
    (tmp_path / "manifest.json").write_text("{}\n")
    write_checksums(tmp_path)
    done = subprocess.run(["sha256sum", "-c", "checksums.sha256"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.7 b")
    assert subprocess.run(["sha256sum", "-c", "--quiet", "checksums.sha256"], cwd=tmp_path,
                          capture_output=True).returncode != 0


def test_failed_run_leaves_no_bundle_and_no_staging(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with BundleWriter(tmp_path, "HS1") as writer:
            writer.path("HS1.001.pdf").write_bytes(b"partial")
            raise RuntimeError("crash in the middle")
    assert list(tmp_path.iterdir()) == []


def test_commit_renames_complete_bundle_and_refuses_to_clobber(tmp_path: Path) -> None:
    with BundleWriter(tmp_path, "HS1") as writer:
        writer.path("HS1.001.pdf").write_bytes(b"one")
        final, _ = writer.commit()
    assert final == tmp_path / "HS1"
    assert (final / "HS1.001.pdf").read_bytes() == b"one"
    assert [p.name for p in tmp_path.iterdir()] == ["HS1"]
    with pytest.raises(OutputError, match="already exists"):
        with BundleWriter(tmp_path, "HS1"):
            pass
    with BundleWriter(tmp_path, "HS1", overwrite=True) as writer:
        writer.path("HS1.001.pdf").write_bytes(b"two")
        writer.commit()
    assert (final / "HS1.001.pdf").read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["HS1"]


def test_stale_partials_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".HS1.partial-{dead.pid}-deadbeef"
    stale.mkdir()
    live = tmp_path / f".HS1.partial-{os.getpid()}-cafebabe"
    live.mkdir()
    removed = remove_stale_partials(tmp_path, "HS1")
    assert stale in removed and not stale.exists()
    assert live.exists()


def test_zip_has_fixed_order_relative_paths_and_same_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "HS1"
    folder.mkdir()
    for name in ("b.pdf", "a.pdf", "manifest.json"):
        (folder / name).write_bytes(name.encode() * 100)
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"
    write_zip(folder, first, "HS1")
    write_zip(folder, second, "HS1")
    assert first.read_bytes() == second.read_bytes()  # deterministic
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert names == ["HS1/a.pdf", "HS1/b.pdf", "HS1/manifest.json"]
        assert all(not n.startswith("/") and ".." not in n for n in names)
        assert archive.read("HS1/b.pdf") == b"b.pdf" * 100
