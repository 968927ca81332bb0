"""A watch station that no file and no outage can stop (issue 15 point 8; security review W1,
W3–W6, P2, P3, top-10 #2, #4, #10).

* Poison pill (W1): a dossier that kills the watcher process every time it is processed is
  quarantined at the third start, after two unfinished attempts, BEFORE anything else runs;
  the next dossier is then processed. The real CLI in a subprocess, SIGKILLed from inside by
  a test-only wrapper (``helpers_station.poison_pill_watch_command``).
* Signer at start-up (W3): a wrong PIN stops the watcher with exit 54 before anything is
  claimed; the systemd unit does not restart on the codes that need a person.
* Retry later (W4): a time-stamp service outage keeps the dossier claimed, pauses, and
  finishes it once the service is back — never quarantined. A full disk (a real tmpfs) the
  same (W5: state writes that fail pause the watcher, they do not crash it).
* State files (P2, P3, W6): a lock planted as a symbolic link is refused and its target left
  intact; forged journal records move nothing outside their folders and crash nothing; a
  live lease of another host is respected, a stale one taken over.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from digitize.errors import ExitCode, UnsafePathError
from digitize.inbox import content_hash
from digitize.jobs import NO_RESTART_EXIT_CODES, Journal, read_journal
from digitize.jobs.classify import NEEDS_PERSON_CODES
from digitize.profiles import load_profile
from digitize.watch import InboxWatcher, WatchSettings
from tests import helpers_pki
from tests.helpers_batch import run_cli, write_tiny_dossier
from tests.helpers_pki import PFX_PASSWORD, PkiServices
from tests.helpers_station import (
    KILL_ON_ENV,
    RunningWatcher,
    bundle_verifies,
    entries,
    fill,
    poison_pill_watch_command,
    tmpfs,
    wait_for,
)

vn_pki = helpers_pki.vn_pki

PROFILE = load_profile(None, {"pipeline": {"workers": 1}})
FAST = WatchSettings(
    quiet_seconds=1.5,
    marker_settle_seconds=0.3,
    tick_ms=200,
    rescan_seconds=2,
    retry_backoff_s=0.5,
    retry_backoff_max_s=1.0,
)
UNIT = Path(__file__).resolve().parents[1] / "docs" / "systemd" / "digitize-watch.service"


def _journal(inbox: Path) -> list[dict]:
    return read_journal(inbox / ".digitize" / "journal.jsonl")


# --- poison pill ---------------------------------------------------------------------------------
def test_poison_pill_is_quarantined_after_two_crashes_and_the_next_dossier_runs(
    tmp_path: Path,
) -> None:
    """W1/top-10 #2 (acceptance of issue 15): kill -9 during a poison-pill dossier, twice; the
    third start quarantines it (106, with the attempt count) before running anything, then
    digitises the next dossier."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    write_tiny_dossier(inbox, "hs-1-doc", 1, marker=True)
    write_tiny_dossier(inbox, "hs-2", 2, marker=True)
    args = [
        *poison_pill_watch_command(),
        "watch", str(inbox), "--out", str(out), "--workers", "1", "--rescan-every", "2",
    ]
    env = {**os.environ, KILL_ON_ENV: "hs-1-doc", "OMP_THREAD_LIMIT": "1"}
    logs = []

    def start() -> subprocess.Popen[bytes]:
        log = tmp_path / f"watch-{len(logs)}.log"
        logs.append(log)
        with open(log, "wb") as handle:
            return subprocess.Popen(
                args, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    try:
        for attempt in (1, 2):
            proc = start()
            code = proc.wait(timeout=300)
            assert code == -signal.SIGKILL, (attempt, code, logs[-1].read_text())
            claims = [r for r in _journal(inbox) if r["event"] == "claimed"]
            assert [c["dossier"] for c in claims] == ["hs-1-doc"]  # hs-2 never taken
            started = [r for r in _journal(inbox) if r["event"] == "started"]
            assert len(started) == attempt and {r["dossier"] for r in started} == {"hs-1-doc"}
        proc = start()
        wait_for(lambda: "hs-2" in entries(inbox / "done"), 300, "hs-2 done")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        for log in logs:
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}")
    assert proc.returncode == 0

    assert entries(inbox / "quarantine") == {"hs-1-doc"}
    reason = json.loads((inbox / "quarantine" / "hs-1-doc.reason.json").read_text("utf-8"))
    assert reason["exit_code"] == ExitCode.DOSSIER_CRASHED
    assert reason["error"] == "DossierCrashedError" and reason["attempts"] == 2
    assert "stopped 2 times" in reason["message"]
    assert bundle_verifies(out / "hs-2")
    assert not (out / "hs-1-doc").exists()
    records = _journal(inbox)
    poison_started = [r for r in records if r["event"] == "started" and r["dossier"] == "hs-1-doc"]
    assert len(poison_started) == 2  # never a third attempt
    order = [
        (r["event"], r.get("dossier"))
        for r in records
        if r["event"] in ("finished", "claimed") and r.get("dossier") in ("hs-1-doc", "hs-2")
    ]
    assert order.index(("finished", "hs-1-doc")) < order.index(("claimed", "hs-2"))


# --- the signer at start-up ----------------------------------------------------------------------
def test_wrong_pin_stops_the_watcher_before_anything_is_claimed(
    tmp_path: Path, vn_pki: PkiServices
) -> None:
    """W3/top-10 #4 (R27): the signer is opened at start-up; a refused PIN (here the PKCS#12
    password) exits 54 at once — nothing claimed, the dossier still in the inbox — and the
    systemd unit never restarts on 54, so the PIN is not tried again."""
    profile = tmp_path / "office.yaml"
    profile.write_text(
        "sign:\n"
        "  backend: pkcs12\n"
        f"  pkcs12:\n    path: {vn_pki.pkcs12_path('hoa')}\n"
        f"  trust_roots: [{vn_pki.root_cert}]\n"
        "  level: B-B\n",
        encoding="utf-8",
    )
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    write_tiny_dossier(inbox, "hs-1", 1, marker=True)
    proc = run_cli(
        ["watch", str(inbox), "--out", str(out), "--profile", str(profile)],
        env={"DIGITIZE_PKCS12_PASSWORD": "not-the-password"},
        timeout=180,
    )
    assert proc.returncode == ExitCode.BAD_PIN, (proc.stdout, proc.stderr)
    assert (inbox / "hs-1" / "READY").is_file()  # never claimed
    events = [r["event"] for r in _journal(inbox)]
    assert "claimed" not in events and "halted" in events
    halted = next(r for r in _journal(inbox) if r["event"] == "halted")
    assert halted["exit_code"] == ExitCode.BAD_PIN
    assert "not-the-password" not in proc.stdout + proc.stderr


def test_systemd_unit_does_not_restart_when_a_person_must_act() -> None:
    """W3/S6: RestartPreventExitStatus holds every code that needs a person (wrong PIN,
    certificate, signer set-up, trust) plus unsafe set-up and configuration; the unit sets the
    umask for personal data and the hardening of the review."""
    text = UNIT.read_text(encoding="utf-8")
    lines = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    prevent = {int(code) for code in lines["RestartPreventExitStatus"].split()}
    assert set(NEEDS_PERSON_CODES) | {ExitCode.UNSAFE_PATH, ExitCode.CONFIG} <= prevent
    assert prevent == set(NO_RESTART_EXIT_CODES)
    assert int(ExitCode.TSA_UNAVAILABLE) not in prevent  # an outage is waited out, not fatal
    for key, value in {
        "UMask": "0027",
        "LimitCORE": "0",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectSystem": "strict",
        "Type": "notify",
    }.items():
        assert lines[key] == value, key
    assert "ReadWritePaths" in lines and "MemoryMax" in lines and "WatchdogSec" in lines
    # docs/watch.md shows the same unit (without its first comment line)
    shown_in_docs = (UNIT.parents[1] / "watch.md").read_text(encoding="utf-8")
    assert text.split("\n", 1)[1] in shown_in_docs


# --- retry later ---------------------------------------------------------------------------------
def test_time_stamp_outage_keeps_the_dossier_and_finishes_it_afterwards(
    tmp_path: Path, vn_pki: PkiServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """W4 (R23, R25): with the TSA (and the revocation service) down the dossier is not
    quarantined: it stays claimed, the watcher pauses (exit 55 in the journal, no new dossier
    taken) and finishes it once the services answer again."""
    monkeypatch.setenv("DIGITIZE_PKCS12_PASSWORD", PFX_PASSWORD)
    sign = {
        "backend": "pkcs12",
        "pkcs12": {"path": str(vn_pki.pkcs12_path("hoa"))},
        "trust_roots": [str(vn_pki.root_cert)],
        "level": "B-T",
        "tsa_url": vn_pki.tsa_url,
    }
    profile = load_profile(None, {"pipeline": {"workers": 1}, "sign": sign})
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    with RunningWatcher(inbox, out, profile, FAST) as running:
        wait_for(running.ready, 120, "the start-up check")
        with vn_pki.services_stopped():
            write_tiny_dossier(inbox, "hs-1", 1, marker=True)
            wait_for(lambda: running.kinds().count("paused") >= 2, 180, "a pause")
            write_tiny_dossier(inbox, "hs-2", 2, marker=True)
            time.sleep(2 * FAST.marker_settle_seconds + 1)
            assert entries(inbox / ".digitize" / "processing") == {"hs-1"}
            assert entries(inbox / "quarantine") == set()
            assert (inbox / "hs-2").is_dir()  # no new dossier while paused
        wait_for(lambda: entries(inbox / "done") == {"hs-1", "hs-2"}, 240, "both done")
    assert "resumed" in running.kinds()
    deferred = [r for r in _journal(inbox) if r["event"] == "deferred"]
    assert deferred and deferred[0]["exit_code"] == ExitCode.TSA_UNAVAILABLE
    roots = (vn_pki.root_cert,)
    assert bundle_verifies(out / "hs-1", roots) and bundle_verifies(out / "hs-2", roots)


def test_full_disk_pauses_the_watcher_and_it_resumes_when_space_returns(tmp_path: Path) -> None:
    """W4/W5: a full disk (a real tmpfs filled to the last byte) is the station's fault: the
    dossier is neither quarantined nor lost, the watcher does not crash, and once space is
    freed the dossier is finished."""
    with tmpfs(tmp_path / "disk", "24m") as disk:
        inbox, out = disk / "inbox", disk / "out"
        inbox.mkdir()
        settings = FAST.model_copy(update={"require_marker": True})
        with RunningWatcher(inbox, out, PROFILE, settings) as running:
            wait_for(running.ready, 120, "the start-up check")
            folder = write_tiny_dossier(inbox, "hs-1", 1)
            filler = fill(disk)
            (folder / "READY").touch()
            wait_for(lambda: "paused" in running.kinds(), 180, "a pause")
            assert running.error is None and running.thread.is_alive()
            assert entries(inbox / "quarantine") == set()
            filler.unlink()
            wait_for(lambda: entries(inbox / "done") == {"hs-1"}, 240, "hs-1 done")
        assert "resumed" in running.kinds()
        assert bundle_verifies(out / "hs-1")


# --- state files ---------------------------------------------------------------------------------
def test_a_lock_planted_as_a_link_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    """P2: the lock file is opened without following links, so a link to any file the service
    can write cannot make it truncate that file; the watcher refuses to start (16)."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    (inbox / ".digitize").mkdir(parents=True)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n", encoding="utf-8")
    os.symlink(precious, inbox / ".digitize" / "lock")
    watcher = InboxWatcher(inbox, out, PROFILE, FAST)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        watcher.run(threading.Event())
    assert precious.read_text(encoding="utf-8") == "keep me\n"

    os.unlink(inbox / ".digitize" / "lock")
    os.symlink(precious, inbox / ".digitize" / "journal.jsonl")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        InboxWatcher(inbox, out, PROFILE, FAST).run(threading.Event())
    assert precious.read_text(encoding="utf-8") == "keep me\n"


def test_forged_journal_records_move_nothing_outside_and_crash_nothing(tmp_path: Path) -> None:
    """P3: records are checked before use. A ``finished`` record sending a leftover outside
    its folder, one with an unknown status, one whose reason is not an object and one marking
    a content as done without a bundle are ignored (and reported): the leftover is digitised
    where it is, nothing appears outside, and a dossier of the forged content is not taken for
    a duplicate."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    processing = inbox / ".digitize" / "processing"
    processing.mkdir(parents=True)
    outside = tmp_path / "elsewhere" / "stolen"
    outside.parent.mkdir()
    write_tiny_dossier(processing, "hs-1", 1)
    journal = Journal(inbox / ".digitize" / "journal.jsonl")
    journal.append("claimed", claim="c1", dossier="hs-1")
    journal.append(
        "finished", claim="c1", dossier="hs-1", status="done", destination=str(outside),
        reason={}, content_sha256="", bundle="",
    )
    elsewhere = tmp_path / "x-outside"
    journal.append(
        "finished", claim="c2", dossier="x", status="exploded", destination=str(elsewhere)
    )
    journal.append(
        "finished", claim="c3", dossier="x", status="quarantined",
        destination=str(inbox / "quarantine" / "x"), reason=["not", "an", "object"],
    )
    staged = write_tiny_dossier(tmp_path / "staging", "hs-2", 2)
    journal.append(
        "finished", claim="c4", dossier="hs-0", status="done",
        destination=str(inbox / "done" / "hs-0"), reason={},
        content_sha256=content_hash(staged, FAST.markers), bundle="khong-co",
    )
    with open(journal.path, "ab") as handle:
        handle.write(b'{"event": "finished", "claim": {"nested": 1}, "status": 3}\n')
    with RunningWatcher(inbox, out, PROFILE, FAST) as running:
        wait_for(lambda: entries(inbox / "done") == {"hs-1"}, 180, "hs-1 done in place")
        os.rename(staged, inbox / "hs-2")
        (inbox / "hs-2" / "READY").touch()
        wait_for(lambda: entries(inbox / "done") == {"hs-1", "hs-2"}, 180, "hs-2 done")
    assert not outside.exists() and not elsewhere.exists()
    assert bundle_verifies(out / "hs-1") and bundle_verifies(out / "hs-2")
    assert entries(inbox / "duplicate") == set()
    ignored = [e.message for e in running.events if "ignored journal record" in e.message]
    assert len(ignored) >= 4, ignored


def test_a_live_lease_of_another_host_is_respected_and_a_stale_one_taken_over(
    tmp_path: Path,
) -> None:
    """W6: flock does not work across machines on CIFS/NFS; the lease does. Another host's
    heartbeat younger than ``lease_expiry_s`` stops this watcher (16) naming the host; an
    old one is taken over, and the lease then names this host."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    (inbox / ".digitize").mkdir(parents=True)
    lease = inbox / ".digitize" / "lease.json"
    lease.write_text(
        json.dumps({"host": "may-quet-2", "pid": 4242, "heartbeat": time.time()}), "utf-8"
    )
    with pytest.raises(UnsafePathError, match="may-quet-2"):
        InboxWatcher(inbox, out, PROFILE, FAST).run(threading.Event())
    assert json.loads(lease.read_text("utf-8"))["host"] == "may-quet-2"

    lease.write_text(
        json.dumps({"host": "may-quet-2", "pid": 4242, "heartbeat": time.time() - 3600}), "utf-8"
    )
    with RunningWatcher(inbox, out, PROFILE, FAST) as running:
        wait_for(running.ready, 120, "start-up")
        held = json.loads(lease.read_text("utf-8"))
        assert (held["host"], held["pid"]) == (socket.gethostname(), os.getpid())
    assert not lease.exists()  # released on a clean stop


# --- systemd notification ------------------------------------------------------------------------
def test_systemd_hears_ready_status_and_watchdog_pings_only_while_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R1 (WatchdogSec): a real notify socket. The watcher says READY=1 once its signer is
    checked, then pings WATCHDOG=1; a ``Liveness`` whose owner stops beating stops pinging
    (what makes systemd restart a main thread stuck outside every deadline)."""
    from digitize.jobs import Liveness

    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(0.1)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # pings every 0.1 s

    def received(seconds: float) -> list[str]:
        messages, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                continue
        return messages

    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    with RunningWatcher(inbox, out, PROFILE, FAST) as running:
        wait_for(running.ready, 120, "the start-up check")
        messages = received(1.5)
    # datagrams queue in the socket until read: nothing sent before ``ready()`` is lost
    assert "READY=1" in messages and "WATCHDOG=1" in messages
    assert messages.index("STATUS=watching") < messages.index("READY=1")
    liveness = Liveness()
    liveness.beat(0.3)
    liveness.start()
    try:
        received(0.5)  # drain while alive
        assert received(1.0) == [], "pings went on although nobody beat"
        liveness.beat(5.0)
        assert "WATCHDOG=1" in received(0.5)
    finally:
        liveness.stop()
        sock.close()
