"""Batch runs: summary files, resume, exit codes, no dossier processed twice.

Covers: ``digitize.batch.batch_run`` and the ``digitize batch`` command — summary.json/csv
content (cells safe from spreadsheet formulas), exit code 90 when some dossiers fail, resume
that skips verified bundles and reports (never overwrites) a bundle that fails verification,
a new bundle that fails verification moved aside (the job layer's one policy, shared with
watch), two inputs with one bundle name, refusal of overlapping input/output folders (exit 16),
folder names printed literally on the console, the one page-workers setting, and an
interrupted batch (SIGKILL, then SIGINT) that ends, after a re-run, with every bundle verified
and the journal proving that no dossier finished twice. Every bundle is a real end-to-end run (R17–R19 signature, R31 names, R32
manifest signature) on tiny one-page dossiers from ``helpers_batch``.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from digitize.batch import JOURNAL_FILE, BatchRow, batch_run, write_summary
from digitize.errors import ConfigError, ExitCode
from digitize.jobs import StationOptions, read_journal
from digitize.profiles import load_profile
from digitize.sign import open_signer
from digitize.verify import verify_bundle
from tests.helpers_batch import (
    ManifestSignedOverOtherBytes,
    cli_command,
    rejected_bundles,
    run_cli,
    write_corrupt_dossier,
    write_tiny_dossier,
)

PROFILE = load_profile(None, {"pipeline": {"workers": 2}})


def _finished_ok(journal: Path) -> Counter[str]:
    return Counter(
        r["dossier"]
        for r in read_journal(journal)
        if r["event"] == "finished" and r["status"] == "ok"
    )


def test_batch_summary_exit_code_and_resume(tmp_path: Path) -> None:
    """Three good dossiers, one truncated scan, two folders claiming one dossier code."""
    in_dir, out = tmp_path / "in", tmp_path / "out"
    for n in (10, 2, 1):  # natural order must be hs-1, hs-2, hs-10
        write_tiny_dossier(in_dir, f"hs-{n}", n)
    write_corrupt_dossier(in_dir, "hs-3-hong")
    for name in ("trung-a", "trung-b"):
        folder = write_tiny_dossier(in_dir, name, 50 + len(name))
        (folder / "dossier.yaml").write_text("dossier_code: TRUNG-MA\n", encoding="utf-8")
    (in_dir / "ghi-chu.txt").write_text("not a dossier", encoding="utf-8")
    before = {p: p.read_bytes() for p in in_dir.rglob("*") if p.is_file()}

    result = batch_run(in_dir, out, PROFILE)

    assert result.exit_code == ExitCode.BATCH_PARTIAL
    assert [r.dossier for r in result.rows] == [
        "hs-1",
        "hs-2",
        "hs-3-hong",
        "hs-10",
        "trung-a",
        "trung-b",
    ]
    by_name = {r.dossier: r for r in result.rows}
    assert [by_name[n].status for n in ("hs-1", "hs-2", "hs-10", "trung-a")] == ["ok"] * 4
    assert by_name["hs-3-hong"].status == "failed"
    assert by_name["hs-3-hong"].exit_code == ExitCode.TRUNCATED_FILE
    assert "hs-3-hong/c1/p01.jpg" in by_name["hs-3-hong"].error
    assert by_name["trung-b"].status == "failed"
    assert by_name["trung-b"].exit_code == ExitCode.OUTPUT
    assert "trung-a" in by_name["trung-b"].error
    assert not (out / "hs-3-hong").exists()  # no bundle for a failed dossier
    for name in ("hs-1", "hs-2", "hs-10", "TRUNG-MA"):
        assert verify_bundle(out / name, allow_demo=True).ok, name

    data = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert data["counts"] == {"ok": 4, "skipped": 0, "failed": 2, "not_run": 0}
    rows = {d["dossier"]: d for d in data["dossiers"]}
    assert rows["hs-1"]["pages"] == 1 and rows["hs-1"]["bundle"] == "hs-1"
    assert "demo_signer" in rows["hs-1"]["flags"]
    assert rows["hs-1"]["seconds"] > 0
    with open(out / "summary.csv", encoding="utf-8-sig", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["dossier"] for r in table] == [r.dossier for r in result.rows]
    csv_row = next(r for r in table if r["dossier"] == "hs-3-hong")
    assert (csv_row["status"], csv_row["exit_code"]) == ("failed", "12")
    assert set(table[0]) >= {"dossier", "status", "pages", "flags", "seconds", "error"}

    # Inputs are never moved or changed by a batch.
    assert {p: p.read_bytes() for p in in_dir.rglob("*") if p.is_file()} == before

    # Re-run: verified bundles are skipped, failures are tried again and fail again.
    # One bundle is tampered with: it is reported, not overwritten.
    tampered = out / "hs-2" / "hs-2.001.pdf"
    data_before = bytearray(tampered.read_bytes())
    data_before[len(data_before) // 2] ^= 0x01
    tampered.write_bytes(bytes(data_before))
    again = batch_run(in_dir, out, PROFILE)
    status = {r.dossier: r.status for r in again.rows}
    assert status == {
        "hs-1": "skipped",
        "hs-2": "failed",
        "hs-3-hong": "failed",
        "hs-10": "skipped",
        "trung-a": "skipped",
        "trung-b": "failed",
    }
    hs2 = next(r for r in again.rows if r.dossier == "hs-2")
    assert hs2.exit_code == ExitCode.VERIFY_HASH and "verification" in hs2.error
    assert tampered.read_bytes() == bytes(data_before)  # left as found, for a human
    assert again.exit_code == ExitCode.BATCH_PARTIAL
    assert max(_finished_ok(out / JOURNAL_FILE).values()) == 1


def test_resume_refuses_bundle_made_from_other_scans(tmp_path: Path) -> None:
    """A verifying bundle of the same name but made from different scans is not 'done'."""
    in_dir, out = tmp_path / "in", tmp_path / "out"
    write_tiny_dossier(in_dir, "hs-1", 1)
    one_worker = load_profile(None, {"pipeline": {"workers": 1}})
    assert batch_run(in_dir, out, one_worker).exit_code == 0
    (in_dir / "hs-1" / "c1" / "p01.jpg").write_bytes(
        (in_dir / "hs-1" / "c1" / "p01.jpg").read_bytes() + b"\0"
    )  # a re-scan, same name
    again = batch_run(in_dir, out, one_worker)
    assert again.rows[0].status == "failed"
    assert "c1/p01.jpg changed" in again.rows[0].error


@pytest.mark.parametrize("layout", ["out_inside_in", "in_inside_out", "same"])
def test_overlapping_folders_refused(tmp_path: Path, layout: str) -> None:
    in_dir = tmp_path / "in"
    write_tiny_dossier(in_dir, "hs-1", 1)
    out = {"out_inside_in": in_dir / "out", "in_inside_out": tmp_path, "same": in_dir}[layout]
    proc = run_cli(["batch", str(in_dir), str(out)])
    assert proc.returncode == ExitCode.UNSAFE_PATH, proc.stderr
    assert "overlaps" in proc.stderr
    assert not (in_dir / "out").exists() and not (out / "summary.json").exists()


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_interrupted_batch_resumes_without_processing_twice(tmp_path: Path) -> None:
    """10 dossiers: SIGKILL mid-batch, then SIGINT mid-batch, then a full re-run."""
    in_dir, out = tmp_path / "in", tmp_path / "out"
    names = [f"hs-{n:02d}" for n in range(10)]
    for n, name in enumerate(names):
        write_tiny_dossier(in_dir, name, n)
    journal = out / JOURNAL_FILE
    args = [*cli_command(), "batch", str(in_dir), str(out), "--workers", "2"]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    # Run 1: killed like a power cut (the whole process group: parent and page workers).
    run1 = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True
    )
    _wait_for(lambda: sum(_finished_ok(journal).values()) >= 3, 60, "3 dossiers finished")
    os.killpg(run1.pid, signal.SIGKILL)
    run1.wait(timeout=10)
    done_in_run1 = set(_finished_ok(journal))

    # Run 2: SIGINT (Ctrl-C) — finishes what is in flight, starts nothing new, exit 130.
    run2 = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    _wait_for(
        lambda: sum(_finished_ok(journal).values()) >= len(done_in_run1) + 1,
        60,
        "one more dossier finished",
    )
    run2.send_signal(signal.SIGINT)
    _stdout, stderr2 = run2.communicate(timeout=60)
    records = read_journal(journal)
    run2_id = [r["run"] for r in records if r["event"] == "batch_started"][1]
    run2_records = [r for r in records if r.get("run") == run2_id]
    started2 = {r["dossier"] for r in run2_records if r["event"] == "started"}
    finished2 = {r["dossier"] for r in run2_records if r["event"] == "finished"}
    assert started2 == finished2, "SIGINT must let started dossiers finish"
    assert run2.returncode == ExitCode.INTERRUPTED, stderr2
    summary2 = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary2["interrupted"] is True and summary2["counts"]["not_run"] > 0
    assert not [
        p
        for p in out.iterdir()
        if (".partial-" in p.name or ".work-" in p.name) and f"-{run2.pid}-" in p.name
    ], "a graceful stop leaves no staging folder"

    # Run 3: completes the batch.
    run3 = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert run3.returncode == 0, run3.stderr

    records = read_journal(journal)
    runs = [r["run"] for r in records if r["event"] == "batch_started"]
    assert len(runs) == 3
    finished_ok = _finished_ok(journal)
    started_by_run = {
        run: Counter(
            r["dossier"] for r in records if r["event"] == "started" and r.get("run") == run
        )
        for run in runs
    }
    skipped = Counter(r["dossier"] for r in records if r["event"] == "skipped")
    for name in names:
        assert verify_bundle(out / name, allow_demo=True).ok, name
        # The journal's proof: each dossier finished with a bundle exactly once, and a
        # dossier finished in one run was skipped (never started) in the runs after it.
        assert finished_ok[name] <= 1, f"{name} finished twice"
        if finished_ok[name] == 0:
            # only possible when a SIGKILL fell between the bundle rename and the journal
            # line: the next run must have found the bundle and skipped it
            assert skipped[name] >= 1, f"{name} has a bundle nobody finished"
    for name in done_in_run1:
        assert started_by_run[runs[1]][name] == 0 and started_by_run[runs[2]][name] == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["failed"] == 0 and summary["counts"]["not_run"] == 0
    assert summary["counts"]["ok"] + summary["counts"]["skipped"] == 10
    assert (
        sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and p.is_dir()) == names
    )
    assert not [p for p in out.iterdir() if ".partial-" in p.name or ".work-" in p.name]
    print(
        f"\nbatch resume: run1 finished {len(done_in_run1)}, run2 finished "
        f"{len(finished2)}, run3 ok {summary['counts']['ok']} skipped "
        f"{summary['counts']['skipped']}; every dossier finished once"
    )


def test_new_bundle_that_fails_verification_is_moved_aside(tmp_path: Path) -> None:
    """One policy with watch: a new bundle that does not verify (here its manifest signature
    covers other bytes, R32) never stays under its final name; the dossier is failed, the
    bundle kept aside for a person, and a re-run with a sound signer makes the bundle."""
    in_dir, out = tmp_path / "in", tmp_path / "out"
    write_tiny_dossier(in_dir, "hs-1", 1)
    inner = open_signer(PROFILE.sign)
    try:
        result = batch_run(
            in_dir, out, PROFILE, station=StationOptions(signer=ManifestSignedOverOtherBytes(inner))
        )
    finally:
        inner.close()
    row = result.rows[0]
    assert (row.status, row.exit_code) == ("failed", ExitCode.VERIFY_SIGNATURE)
    assert "fails verification" in row.error
    assert not (out / "hs-1").exists()
    rejected = rejected_bundles(out, "hs-1")
    assert len(rejected) == 1 and (rejected[0] / "manifest.json").is_file()
    finished = [r for r in read_journal(out / JOURNAL_FILE) if r["event"] == "finished"]
    assert finished[-1]["rejected_bundle"] == str(rejected[0])

    again = batch_run(in_dir, out, PROFILE)
    assert again.rows[0].status == "ok" and verify_bundle(out / "hs-1", allow_demo=True).ok
    assert rejected_bundles(out, "hs-1") == rejected  # kept for a person, not reused


def test_summary_csv_cells_cannot_run_as_formulas(tmp_path: Path) -> None:
    """A folder name or an error starting with = + - @ opens in a spreadsheet as text."""
    rows = [
        BatchRow(dossier="=HYPERLINK(\"http://x\")", status="failed", error="-1+2", exit_code=12),
        BatchRow(dossier="hs-1", status="ok", pages=3, flags=("demo_signer",)),
    ]
    write_summary(tmp_path, {"run": "r"}, rows)
    with open(tmp_path / "summary.csv", encoding="utf-8-sig", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert table[0]["dossier"] == "'=HYPERLINK(\"http://x\")" and table[0]["error"] == "'-1+2"
    assert (table[1]["dossier"], table[1]["pages"], table[1]["flags"]) == ("hs-1", "3", "demo_signer")
    data = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert data["dossiers"][0]["dossier"] == "=HYPERLINK(\"http://x\")"  # JSON keeps the name


def test_console_shows_folder_names_as_they_are(tmp_path: Path) -> None:
    """A folder name with rich markup and a terminal escape is printed literally, escaped:
    it can neither restyle the table nor send control sequences to the terminal."""
    in_dir, out = tmp_path / "in", tmp_path / "out"
    name = "hs-[bold]x\x1b[31m"
    write_tiny_dossier(in_dir, name, 1)
    proc = run_cli(["batch", str(in_dir), str(out), "--workers", "1"])
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout
    assert "hs-[bold]x\\x1b[31m" in proc.stdout


def test_a_profile_still_setting_batch_workers_is_pointed_to_pipeline_workers(
    tmp_path: Path,
) -> None:
    """Page workers are one setting (pipeline.workers); the old batch/watch copies, which were
    ignored, are refused with a pointer instead of being ignored silently."""
    office = tmp_path / "office.yaml"
    office.write_text("batch:\n  workers: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_profile(office)
    assert "batch.workers" in info.value.one_line()
    assert "pipeline.workers" in info.value.one_line()
