"""Resume and duplicates (issue 15 point 9; security review W2, top-10 #3): a dossier counts as
done only when its folder holds EXACTLY what its bundle was made from — the same scan files
with the same hashes and the same ``dossier.yaml`` (R8). A re-sent dossier with a page added,
a page removed or a changed ``dossier.yaml`` is never skipped or moved to ``done/``
unprocessed: batch reports a conflict, watch quarantines it, each saying what differs; the
signed bundle already there is left as it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from digitize.batch import batch_run
from digitize.errors import ExitCode
from digitize.manifest import Manifest
from digitize.profiles import load_profile
from digitize.util import sha256_file
from digitize.watch import WatchSettings
from tests.helpers_batch import page_jpeg
from tests.helpers_station import RunningWatcher, bundle_verifies, entries, wait_for

PROFILE = load_profile(None, {"pipeline": {"workers": 1}})
YAML = "dossier_code: HS-1\n"
YAML_CHANGED = "dossier_code: HS-1\nprocedure_code: 1.001234\n"


def _two_page_dossier(parent: Path, name: str, yaml: str = YAML) -> Path:
    folder = parent / name
    (folder / "c1").mkdir(parents=True)
    (folder / "c1" / "p01.jpg").write_bytes(page_jpeg(1))
    (folder / "c1" / "p02.jpg").write_bytes(page_jpeg(2))
    (folder / "dossier.yaml").write_text(yaml, encoding="utf-8")
    return folder


def test_manifest_records_exactly_what_the_bundle_was_made_from(tmp_path: Path) -> None:
    """The manifest (1.1, an added optional block) lists every scan file with its hash and
    the dossier.yaml hash: what resume compares with the folder."""
    in_dir, out = tmp_path / "in", tmp_path / "out"
    folder = _two_page_dossier(in_dir, "hs-1")
    (folder / "ghi-chu.txt").write_text("not a scan", encoding="utf-8")
    assert batch_run(in_dir, out, PROFILE).exit_code == 0
    manifest = Manifest.model_validate_json((out / "HS-1" / "manifest.json").read_bytes())
    assert manifest.inputs is not None
    assert [(f.file, f.sha256) for f in manifest.inputs.scans] == [
        ("c1/p01.jpg", sha256_file(folder / "c1" / "p01.jpg")),
        ("c1/p02.jpg", sha256_file(folder / "c1" / "p02.jpg")),
    ]
    assert manifest.inputs.dossier_yaml_sha256 == sha256_file(folder / "dossier.yaml")


def test_batch_resume_needs_the_same_inputs_not_a_subset(tmp_path: Path) -> None:
    """W2/top-10 #3: page added, page removed, dossier.yaml changed → failed (80, conflict)
    naming the difference, the bundle left untouched; the original inputs again → skipped."""
    in_dir, out = tmp_path / "in", tmp_path / "out"
    folder = _two_page_dossier(in_dir, "hs-1")
    assert batch_run(in_dir, out, PROFILE).exit_code == 0
    manifest_bytes = (out / "HS-1" / "manifest.json").read_bytes()

    def rerun() -> tuple[str, int, str]:
        row = batch_run(in_dir, out, PROFILE).rows[0]
        return row.status, row.exit_code, row.error

    (folder / "c1" / "p03.jpg").write_bytes(page_jpeg(3))
    status, code, error = rerun()
    assert (status, code) == ("failed", ExitCode.OUTPUT) and "c1/p03.jpg added" in error
    (folder / "c1" / "p03.jpg").unlink()

    aside = tmp_path / "p02.jpg"
    shutil.move(folder / "c1" / "p02.jpg", aside)
    status, code, error = rerun()
    assert (status, code) == ("failed", ExitCode.OUTPUT) and "c1/p02.jpg removed" in error
    shutil.move(aside, folder / "c1" / "p02.jpg")

    (folder / "dossier.yaml").write_text(YAML_CHANGED, encoding="utf-8")
    status, code, error = rerun()
    assert (status, code) == ("failed", ExitCode.OUTPUT) and "dossier.yaml changed" in error
    (folder / "dossier.yaml").write_text(YAML, encoding="utf-8")

    assert rerun()[0] == "skipped"
    assert (out / "HS-1" / "manifest.json").read_bytes() == manifest_bytes
    assert bundle_verifies(out / "HS-1")


def test_watch_quarantines_a_resent_dossier_whose_inputs_differ(tmp_path: Path) -> None:
    """W2/top-10 #3 under watch: the same dossier code re-sent with a page added, a page
    removed or a changed dossier.yaml goes to quarantine/ (kind ``conflict``, the difference
    in reason.json) — never to done/ unprocessed; an exact re-send is a duplicate."""
    inbox, out, staging = tmp_path / "inbox", tmp_path / "out", tmp_path / "staging"
    inbox.mkdir()
    settings = WatchSettings(
        quiet_seconds=1.5, marker_settle_seconds=0.3, tick_ms=200, rescan_seconds=2
    )
    with RunningWatcher(inbox, out, PROFILE, settings):
        first = _two_page_dossier(staging, "hs-1")
        shutil.copytree(first, staging / "hs-1-lai")
        (first / "READY").touch()
        first.rename(inbox / "hs-1")
        wait_for(lambda: entries(inbox / "done") == {"hs-1"}, 180, "hs-1 done")
        manifest_bytes = (out / "HS-1" / "manifest.json").read_bytes()

        added = _two_page_dossier(staging, "hs-1-them")
        (added / "c1" / "p03.jpg").write_bytes(page_jpeg(3))
        removed = _two_page_dossier(staging, "hs-1-bot")
        (removed / "c1" / "p02.jpg").unlink()
        changed = _two_page_dossier(staging, "hs-1-yaml", YAML_CHANGED)
        for folder in (added, removed, changed, staging / "hs-1-lai"):
            (folder / "READY").touch()
            folder.rename(inbox / folder.name)
        wait_for(
            lambda: len(entries(inbox / "quarantine")) == 3
            and entries(inbox / "duplicate") == {"hs-1-lai"},
            180,
            "three conflicts and a duplicate",
        )
    assert entries(inbox / "done") == {"hs-1"}
    expected = {
        "hs-1-them": "c1/p03.jpg added",
        "hs-1-bot": "c1/p02.jpg removed",
        "hs-1-yaml": "dossier.yaml changed",
    }
    for name, difference in expected.items():
        reason = json.loads((inbox / "quarantine" / f"{name}.reason.json").read_text("utf-8"))
        assert reason["kind"] == "conflict", name
        assert reason["exit_code"] == ExitCode.OUTPUT, name
        assert difference in reason["message"], (name, reason["message"])
    assert (out / "HS-1" / "manifest.json").read_bytes() == manifest_bytes
    assert bundle_verifies(out / "HS-1")
