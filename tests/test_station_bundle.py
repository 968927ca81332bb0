"""Writing bundles on a shared or crashing station (issue 15 point 10; security review P4,
P5, W8, §7).

* P4: staging folders carry the host: a run removes only THIS host's folders of dead
  processes, never another machine's (a pid means nothing across machines).
* P5: replacing a bundle never leaves a window that the next run turns into a loss: the new
  bundle is swapped in atomically (``renameat2``), and an ``.old-`` bundle left by a crash
  between two renames is renamed back, not deleted.
* W8: the zip is renamed into place only after its bundle; a commit that fails leaves no zip.
* §7: bundle files 0640, bundle folders 0750, whatever the umask.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from digitize.bundle import BundleWriter, host_token, remove_stale_partials
from digitize.errors import OutputError


def _dead_pid() -> int:
    dead = subprocess.Popen(["true"])
    dead.wait()
    return dead.pid


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_only_this_hosts_staging_of_dead_processes_is_removed(tmp_path: Path) -> None:
    """P4: a dead pid on this host → removed; the same pid under another host's name, and a
    live process of this host → kept."""
    dead = _dead_pid()
    me = host_token()
    mine_dead = tmp_path / f".HS1.partial-{me}-{dead}-deadbeef"
    mine_live = tmp_path / f".HS1.work-{me}-{os.getpid()}-cafebabe"
    other = tmp_path / f".HS1.partial-may-quet-2-{dead}-0badf00d"
    other_zip = tmp_path / f".HS1.zip.partial-may-quet-2-{dead}-0badf00d"
    for folder in (mine_dead, mine_live, other):
        folder.mkdir()
    other_zip.write_bytes(b"PK")
    removed = remove_stale_partials(tmp_path, "HS1")
    assert removed == [mine_dead] and not mine_dead.exists()
    assert mine_live.exists() and other.exists() and other_zip.exists()


def test_a_crash_between_the_two_renames_of_an_overwrite_is_undone(tmp_path: Path) -> None:
    """P5: the old bundle renamed aside, the process killed before the new one took its
    place: the next run renames the old one back (it was the only copy), never deletes it."""
    old = tmp_path / f".HS1.old-{host_token()}-{_dead_pid()}-deadbeef"
    old.mkdir()
    (old / "HS1.001.pdf").write_bytes(b"the signed original")
    with pytest.raises(OutputError, match="already exists"):
        with BundleWriter(tmp_path, "HS1"):
            pass
    assert (tmp_path / "HS1" / "HS1.001.pdf").read_bytes() == b"the signed original"
    assert not old.exists()


def test_overwrite_swaps_the_bundle_in_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """P5: with overwrite, the final name holds the old bundle until the new one replaces it
    in one step; no staging or old copy remains; modes are 0640/0750 (§7)."""
    with BundleWriter(tmp_path, "HS1") as writer:
        writer.path("HS1.001.pdf").write_bytes(b"one")
        writer.commit()
    previous = os.umask(0)
    try:
        with BundleWriter(tmp_path, "HS1", overwrite=True, zip_copy=True) as writer:
            writer.path("HS1.001.pdf").write_bytes(b"two")
            writer.commit()
    finally:
        os.umask(previous)
    assert (tmp_path / "HS1" / "HS1.001.pdf").read_bytes() == b"two"
    assert sorted(os.listdir(tmp_path)) == ["HS1", "HS1.zip"]
    assert _mode(tmp_path / "HS1") == 0o750
    assert _mode(tmp_path / "HS1" / "HS1.001.pdf") == 0o640
    assert _mode(tmp_path / "HS1.zip") == 0o640


def test_a_failed_commit_leaves_no_zip(tmp_path: Path) -> None:
    """W8: the zip used to be written before the bundle's rename, leaving a complete-looking
    zip without a bundle when the rename failed. Here the name is taken meanwhile: the commit
    fails and neither the zip nor its temporary remains."""
    with pytest.raises(OutputError):
        with BundleWriter(tmp_path, "HS1", zip_copy=True) as writer:
            writer.path("HS1.001.pdf").write_bytes(b"new")
            (tmp_path / "HS1").mkdir()  # another run got there first
            writer.commit()
    assert sorted(os.listdir(tmp_path)) == ["HS1"]
    assert os.listdir(tmp_path / "HS1") == []
