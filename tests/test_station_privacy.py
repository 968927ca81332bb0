"""Personal data at a station (issue 15 points 10 and 11; security review §7, W7, top-10 #8,
P8, P9).

* Bundles, journals, summaries, reason files, the lease: 0640 files in 0750 folders, whatever
  the umask (here 0000, the worst case).
* ``digitize purge --older-than 90d INBOX --out OUT``: removes done/quarantine/duplicate
  entries (with their reason.json), rejected bundles and dead staging older than the period;
  age from the journal's finish time, else the modification time; never follows a link,
  never touches a verified bundle, another host's staging or the only copy of a bundle;
  ``--dry-run`` changes nothing; exit codes 0, 16, 70.
* Names shown by purge are escaped: rich markup and control characters print literally.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from digitize.batch import JOURNAL_FILE, batch_run
from digitize.bundle import host_token
from digitize.errors import ExitCode
from digitize.jobs import Journal
from digitize.profiles import load_profile
from digitize.util import vn_now
from digitize.watch import WatchSettings
from tests.helpers_batch import run_cli, write_corrupt_dossier, write_tiny_dossier
from tests.helpers_station import RunningWatcher, entries, wait_for

PROFILE = load_profile(None, {"pipeline": {"workers": 1}, "bundle": {"zip": True}})
DAY = 86400


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def open_umask():  # type: ignore[no-untyped-def]
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_batch_files_are_0640_in_0750_folders_whatever_the_umask(
    tmp_path: Path, open_umask: None
) -> None:
    """§7/top-10 #8: with umask 0000 a bundle would have been world-readable (0666/0777)."""
    in_dir, out = tmp_path / "in", tmp_path / "out"
    write_tiny_dossier(in_dir, "hs-1", 1)
    assert batch_run(in_dir, out, PROFILE).exit_code == 0
    assert _mode(out) == 0o750
    assert _mode(out / "hs-1") == 0o750
    for path in (out / "hs-1").iterdir():
        assert _mode(path) == 0o640, path
    for name in ("hs-1.zip", JOURNAL_FILE, "summary.json", "summary.csv"):
        assert _mode(out / name) == 0o640, name


def test_watch_state_is_0640_in_0750_folders_whatever_the_umask(
    tmp_path: Path, open_umask: None
) -> None:
    """§7: journal, lease, reason.json, the state and outcome folders."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    settings = WatchSettings(quiet_seconds=1.5, marker_settle_seconds=0.3, tick_ms=200)
    with RunningWatcher(inbox, out, PROFILE, settings):
        write_corrupt_dossier(inbox, "hs-hong", marker=True)
        wait_for(lambda: entries(inbox / "quarantine") == {"hs-hong"}, 120, "quarantine")
        state = inbox / ".digitize"
        assert _mode(state / "lease.json") == 0o640
    for folder in (state, state / "processing", inbox / "done", inbox / "quarantine",
                   inbox / "duplicate", out):
        assert _mode(folder) == 0o750, folder
    assert _mode(state / "journal.jsonl") == 0o640
    assert _mode(inbox / "quarantine" / "hs-hong.reason.json") == 0o640


def _age(path: Path, days: float) -> None:
    moment = time.time() - days * DAY
    os.utime(path, (moment, moment), follow_symlinks=False)


def _dead_pid() -> int:
    dead = subprocess.Popen(["true"])
    dead.wait()
    return dead.pid


def _station(tmp_path: Path) -> tuple[Path, Path, Path]:
    """An inbox and OUT as a station leaves them after months of work (built on disk)."""
    inbox, out, outside = tmp_path / "inbox", tmp_path / "out", tmp_path / "outside"
    for folder in ("done", "quarantine", "duplicate", ".digitize/processing"):
        (inbox / folder).mkdir(parents=True)
    outside.mkdir()
    (outside / "keep.jpg").write_bytes(b"not the station's")
    journal = Journal(inbox / ".digitize" / "journal.jsonl")
    # finished 120 days ago by the journal, although the folder itself was touched recently
    write_tiny_dossier(inbox / "done", "hs-cu", 1)
    record = journal.append("moved", claim="a", dossier="hs-cu", status="done",
                            destination=str(inbox / "done" / "hs-cu"))
    lines = journal.path.read_text("utf-8").replace(
        record["time"], (vn_now() - timedelta(days=120)).isoformat(timespec="milliseconds")
    )
    journal.path.write_text(lines, "utf-8")
    # finished yesterday: kept
    write_tiny_dossier(inbox / "done", "hs-moi", 2)
    journal.append("moved", claim="b", dossier="hs-moi", status="done",
                   destination=str(inbox / "done" / "hs-moi"))
    _age(inbox / "done" / "hs-moi", 200)  # its mtime is old, but the journal knows better
    # no journal record: the modification time decides
    hostile = "hs-[bold]x\x1b[31m"
    write_corrupt_dossier(inbox / "quarantine", hostile)
    (inbox / "quarantine" / f"{hostile}.reason.json").write_text("{}", "utf-8")
    _age(inbox / "quarantine" / hostile, 100)
    orphan = inbox / "quarantine" / "hs-gone.reason.json"
    orphan.write_text("{}", "utf-8")
    _age(orphan, 100)
    os.symlink(outside, inbox / "duplicate" / "hs-link")
    _age(inbox / "duplicate" / "hs-link", 100)
    # waiting and in processing: never touched, however old
    write_tiny_dossier(inbox, "hs-cho", 3)
    _age(inbox / "hs-cho", 300)
    write_tiny_dossier(inbox / ".digitize" / "processing", "hs-dang", 4)
    _age(inbox / ".digitize" / "processing" / "hs-dang", 300)
    # OUT: a verified bundle (never), rejected bundles old and new, staging of all kinds
    (out / "hs-cu").mkdir(parents=True)
    _age(out / "hs-cu", 300)
    for name, days in ((".rejected-hs-9-abcd1234", 100), (".rejected-hs-8-abcd5678", 1)):
        (out / name).mkdir()
        _age(out / name, days)
    (out / ".rejected-hs-9-abcd1234.zip").write_bytes(b"PK")
    _age(out / ".rejected-hs-9-abcd1234.zip", 100)
    dead = _dead_pid()
    (out / f".hs-cu.partial-{host_token()}-{dead}-deadbeef").mkdir()
    (out / f".hs-cu.partial-may-quet-2-{dead}-deadbeef").mkdir()
    _age(out / f".hs-cu.partial-may-quet-2-{dead}-deadbeef", 300)
    (out / f".hs-mat.old-{host_token()}-{dead}-deadbeef").mkdir()  # the only copy of hs-mat
    return inbox, out, outside


def test_purge_removes_only_what_is_old_and_follows_no_link(tmp_path: Path) -> None:
    """top-10 #8/W7: retention. Dry run first (nothing changes), then the real run."""
    inbox, out, outside = _station(tmp_path)
    dead = next(p.name for p in out.iterdir() if p.name.startswith(".hs-cu.partial-" + host_token()))
    before = sorted(str(p) for p in tmp_path.rglob("*"))

    dry = run_cli(["purge", "--older-than", "90d", str(inbox), "--out", str(out), "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert "would remove" in dry.stdout and "8 to remove" in dry.stdout

    done = run_cli(["purge", "--older-than", "90d", str(inbox), "--out", str(out)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert entries(inbox / "done") == {"hs-moi"}
    assert os.listdir(inbox / "quarantine") == []
    assert os.listdir(inbox / "duplicate") == []
    assert (outside / "keep.jpg").read_bytes() == b"not the station's"  # the link's target
    assert (inbox / "hs-cho").is_dir() and (inbox / ".digitize" / "processing" / "hs-dang").is_dir()
    assert (inbox / ".digitize" / "journal.jsonl").is_file()
    left = sorted(os.listdir(out))
    assert "hs-cu" in left and ".rejected-hs-8-abcd5678" in left
    assert ".rejected-hs-9-abcd1234" not in left and ".rejected-hs-9-abcd1234.zip" not in left
    assert dead not in left
    assert any(".partial-may-quet-2-" in name for name in left)  # another host's
    assert any(name.startswith(".hs-mat.old-") for name in left)  # the only copy
    # the hostile name is printed literally: no markup applied, no escape sent
    assert "\x1b" not in done.stdout and "hs-[bold]x\\x1b[31m" in done.stdout
    assert "8 removed" in done.stdout


def test_purge_refuses_a_linked_folder_and_an_unreadable_age(tmp_path: Path) -> None:
    """A done/ that is a link is refused (16), not followed; '90 ngày' is not an age (70)."""
    inbox, elsewhere = tmp_path / "inbox", tmp_path / "elsewhere"
    inbox.mkdir()
    elsewhere.mkdir()
    (elsewhere / "old").mkdir()
    _age(elsewhere / "old", 400)
    os.symlink(elsewhere, inbox / "done")
    linked = run_cli(["purge", "--older-than", "90d", str(inbox)])
    assert linked.returncode == ExitCode.UNSAFE_PATH, linked.stdout + linked.stderr
    assert (elsewhere / "old").is_dir()
    bad = run_cli(["purge", "--older-than", "90 ngày", str(inbox)])
    assert bad.returncode == ExitCode.CONFIG and "90d" in bad.stderr

