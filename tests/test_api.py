"""Library API: thread-safe and re-entrant `run_dossier`, structured events, crash safety
(`kill -9` at any moment never leaves a partial bundle under the final name), review flags that
reach the dossier (pages, signature note, extracted fields) and fail a strict profile, and a
package that leaves its caller's process alone."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import digitize
from digitize.profiles import load_profile
from tests.conftest import SAMPLE_DOSSIER_2

pytestmark = pytest.mark.slow


def _small_dossier(root: Path, name: str, pages: int = 2) -> Path:
    """A real dossier made of sample pages (copied, never touched in place)."""
    dossier = root / name
    (dossier / "c1").mkdir(parents=True)
    sources = sorted((SAMPLE_DOSSIER_2 / "2-quyet-dinh").glob("*.jpg"))
    for index in range(pages):
        shutil.copy(sources[index % len(sources)], dossier / "c1" / f"p{index + 1}.jpg")
    return dossier


def test_two_dossiers_in_two_threads_both_verify(tmp_path: Path) -> None:
    first = _small_dossier(tmp_path / "in", "HS-A", 1)
    second = _small_dossier(tmp_path / "in", "HS-B", 1)
    profile = load_profile(None, {"pipeline": {"workers": 1}})
    results: dict[str, object] = {}
    errors: list[BaseException] = []
    events: dict[str, list[str]] = {"HS-A": [], "HS-B": []}

    def work(source: Path) -> None:
        try:
            results[source.name] = digitize.run_dossier(
                source, tmp_path / "out", profile=profile,
                on_event=lambda e: events[e.dossier].append(e.kind))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(d,)) for d in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    for name in ("HS-A", "HS-B"):
        report = digitize.verify_bundle(tmp_path / "out" / name, allow_demo=True)
        assert report.ok, [c.message for c in report.failures]
        assert events[name][0] == "dossier_started" and events[name][-1] == "bundle_written"


def test_kill_9_never_leaves_a_partial_bundle_and_rerun_completes(tmp_path: Path) -> None:
    dossier = _small_dossier(tmp_path / "in", "HS-KILL", 3)
    out = tmp_path / "out"
    final = out / "HS-KILL"

    def command(target: Path) -> list[str]:
        return [sys.executable, "-m", "digitize", "run", str(dossier), "--out", str(target),
                "--workers", "2"]

    # How long an undisturbed run takes, so the kills land anywhere inside one.
    started = time.monotonic()
    reference = subprocess.run(command(tmp_path / "ref"), capture_output=True, text=True,
                               timeout=600)
    assert reference.returncode == 0, reference.stderr
    duration = time.monotonic() - started

    rng = random.Random(20261125)
    for _attempt in range(5):
        process = subprocess.Popen(command(out), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.05, 0.95) * duration)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the whole group, like a power cut
        process.wait()
        # Either no bundle under the final name, or a complete one that verifies.
        if final.exists():
            assert digitize.verify_bundle(final, allow_demo=True).ok
            break
    if not final.exists():
        done = subprocess.run(command(out), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    assert digitize.verify_bundle(final, allow_demo=True).ok
    leftovers = [p.name for p in out.iterdir() if p.name != "HS-KILL"]
    assert leftovers == [], f"staging folders left behind: {leftovers}"


def test_masters_travel_hashed_and_are_checked(tmp_path: Path) -> None:
    """R14: with keep_masters the scan files are in the bundle, listed and verified."""
    dossier = _small_dossier(tmp_path / "in", "HS-M", 1)
    profile = load_profile(None, {"bundle": {"keep_masters": True},
                                  "pipeline": {"workers": 1}})
    result = digitize.run_dossier(dossier, tmp_path / "out", profile=profile)
    masters = result.manifest.documents[0].masters
    assert len(masters) == 1
    master = result.bundle_path / masters[0].file
    assert master.read_bytes() == (dossier / "c1" / "p1.jpg").read_bytes()
    assert digitize.verify_bundle(result.bundle_path, allow_demo=True).ok
    data = bytearray(master.read_bytes())
    data[-100] ^= 0xFF
    master.write_bytes(bytes(data))
    report = digitize.verify_bundle(result.bundle_path, allow_demo=True)
    assert not report.ok
    assert any(masters[0].file in c.name for c in report.failures)


def test_strict_profile_refuses_a_dossier_that_needs_review(tmp_path: Path) -> None:
    from digitize.errors import QualityError

    dossier = _small_dossier(tmp_path / "in", "HS-S", 1)
    shutil.copy(dossier / "c1" / "p1.jpg", dossier / "c1" / "p2.jpg")  # duplicate page: review
    profile = load_profile(None, {"pipeline": {"strict": True, "workers": 1}})
    with pytest.raises(QualityError, match="strict"):
        digitize.run_dossier(dossier, tmp_path / "out", profile=profile)
    assert not (tmp_path / "out" / "HS-S").exists()
    lenient = digitize.run_dossier(dossier, tmp_path / "out",
                                   profile=load_profile(None, {"pipeline": {"workers": 1}}))
    assert lenient.needs_review


def test_a_field_to_review_marks_its_document_and_fails_a_strict_dossier(tmp_path: Path) -> None:
    """R36, R15: an extracted field the reader is not sure of goes to a person — it marks its
    document (a ``field_review`` flag per field) and the dossier ``needs_review``, its value
    stays out of the document's header, and a strict profile refuses the dossier."""
    from digitize.errors import QualityError

    dossier = _small_dossier(tmp_path / "in", "HS-F", 1)
    sure = digitize.run_dossier(dossier, tmp_path / "out-sure",
                                profile=load_profile(None, {"pipeline": {"workers": 1}}))
    assert sure.manifest.documents[0].extraction, "the sample page has a header to read"
    # (The Art. 9 block may still ask for a person — an organisation's ID is never printed —
    # so the baseline is about the header fields only.)
    assert not any(e.needs_review for e in sure.manifest.documents[0].extraction)
    assert not any(f.code == "field_review" for f in sure.manifest.documents[0].flags)

    # Every field under the confidence floor: the reader is sure of none of them.
    doubtful = {"extract": {"min_confidence": 1.0}, "pipeline": {"workers": 1}}
    result = digitize.run_dossier(dossier, tmp_path / "out", profile=load_profile(None, doubtful))
    doc = result.manifest.documents[0]
    flagged = [entry for entry in doc.extraction if entry.needs_review]
    assert flagged
    review_flags = [f for f in doc.flags if f.code == "field_review"]
    assert sorted(f.page for f in review_flags) == sorted(e.page for e in flagged)
    assert all(any(repr(e.field) in f.message for f in review_flags) for e in flagged)
    assert result.needs_review and result.manifest.needs_review
    assert result.components[0].needs_review
    assert (doc.type_name, doc.code_number, doc.issued_date) == (None, None, None)

    strict = {**doubtful, "pipeline": {"workers": 1, "strict": True}}
    with pytest.raises(QualityError, match="strict"):
        digitize.run_dossier(dossier, tmp_path / "out-strict", profile=load_profile(None, strict))
    assert not (tmp_path / "out-strict" / "HS-F").exists()


def test_import_and_profile_loading_leave_the_process_alone() -> None:
    """A library must not change its caller: importing digitize and loading a profile set no
    environment variable and import no heavy stage library."""
    code = (
        "import json, os, sys\n"
        "before = dict(os.environ)\n"
        "import digitize\n"
        "from digitize.profiles import load_profile\n"
        "load_profile('xa-mot-cua')\n"
        "heavy = sorted(m for m in ('cv2', 'pikepdf', 'tesserocr', 'pyhanko') if m in sys.modules)\n"
        "print(json.dumps({'env': dict(os.environ) == before, 'heavy': heavy}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"env": True, "heavy": []}


def test_not_digitised_component_is_listed_without_a_file(tmp_path: Path) -> None:
    """R9: a component marked not digitised gets a manifest entry and no PDF."""
    dossier = _small_dossier(tmp_path / "in", "HS-R9", 1)
    (dossier / "dossier.yaml").write_text(
        "dossier_code: 000.00.12.H62-251125-0009\n"
        "components:\n"
        "  - path: c1\n    name: Tờ khai\n    declared_pages: 1\n"
        "  - name: Bản chính nộp trực tuyến\n"
        "    not_digitised_reason: filed_online\n",
        encoding="utf-8",
    )
    result = digitize.run_dossier(dossier, tmp_path / "out",
                                  profile=load_profile(None, {"pipeline": {"workers": 1}}))
    docs = result.manifest.documents
    assert [d.doc_ordinal for d in docs] == [1, 2]
    assert docs[1].file is None and docs[1].not_digitised_reason.value == "filed_online"
    assert sorted(p.name for p in result.bundle_path.glob("*.pdf")) == [
        "000.00.12.H62-251125-0009.001.pdf"]
    assert digitize.verify_bundle(result.bundle_path, allow_demo=True).ok


def test_readme_library_example_runs(tmp_path: Path) -> None:
    """The 10-line example in README.md works as printed (run from the repository root)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\nimport digitize") + len("```python\n")
    code = readme[start:readme.index("```", start)]
    script = tmp_path / "example.py"
    script.write_text(code.replace('"out/"', repr(str(tmp_path / "out"))), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=600)
    assert done.returncode == 0, done.stderr
    assert "3/3 pages" in done.stdout
    assert (tmp_path / "out" / "ho-so-cap-ban-sao" / "manifest.json").is_file()


def _page_with_corner(tmp_path: Path, name: str, with_qr: bool) -> Path:
    """An A4 page at 200 dpi with text well below the note's corner, optionally a QR code
    printed in that corner (as system-issued papers have)."""
    import cv2
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    dpi = 200
    page = Image.new("RGB", (1654, 2339), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype("/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf", 36)
    for row in range(8):
        draw.text((240, 700 + row * 70), "Thủ tục hành chính được tiếp nhận tại Bộ phận Một cửa.",
                  font=font, fill="black")
    if with_qr:
        code = cv2.QRCodeEncoder.create().encode("https://dichvucong.gov.vn/hs/0001")
        size = int(22 / 25.4 * dpi)
        qr = cv2.resize(code, (size, size), interpolation=cv2.INTER_NEAREST)
        page.paste(Image.fromarray(np.dstack([qr] * 3)), (int(8 / 25.4 * dpi),
                                                          int(7 / 25.4 * dpi)))
    dossier = tmp_path / "in" / name
    (dossier / "c1").mkdir(parents=True)
    page.save(dossier / "c1" / "p1.jpg", quality=90, dpi=(dpi, dpi))
    return dossier


def test_qr_code_in_the_corner_shrinks_the_note_in_place(tmp_path: Path) -> None:
    """R20: a QR code where the note goes keeps the corner, shrinks the note, asks for review."""
    profile = load_profile(None, {"pipeline": {"workers": 1}})
    plain = digitize.run_dossier(_page_with_corner(tmp_path, "HS-PLAIN", False),
                                 tmp_path / "out", profile=profile)
    with_qr = digitize.run_dossier(_page_with_corner(tmp_path, "HS-QR", True),
                                   tmp_path / "out", profile=profile)
    plain_sig = plain.manifest.documents[0].signature
    qr_sig = with_qr.manifest.documents[0].signature
    assert plain_sig is not None and qr_sig is not None
    assert not plain_sig.appearance_shrunk
    assert qr_sig.appearance_shrunk
    assert "stamp_overlaps_text" in {f.code for f in with_qr.manifest.documents[0].flags}
    assert with_qr.needs_review
    # the note stays in the top-left corner
    box = with_qr.components[0].signature.appearance_box_pt
    assert box[0] < 20 and box[3] > 841 - 30


def test_dead_page_worker_is_a_typed_error_that_batch_and_watch_recover_from(
    tmp_path: Path,
) -> None:
    """A worker killed under a dossier (OOM killer) surfaces as PageWorkerDiedError, the type
    batch and watch catch to replace their pool, not as a raw BrokenProcessPool."""
    from digitize.errors import PageWorkerDiedError
    from digitize.workers import new_process_pool

    dossier = _small_dossier(tmp_path / "in", "HS-DEAD", 2)
    pool = new_process_pool(2)
    try:
        assert pool.submit(os.getpid).result(timeout=120) > 0  # workers are up
        for process in list(pool._processes.values()):  # noqa: SLF001 - simulate the OOM killer
            os.kill(process.pid, signal.SIGKILL)
        time.sleep(0.5)
        with pytest.raises(PageWorkerDiedError):
            digitize.run_dossier(dossier, tmp_path / "out", executor=pool,
                                 profile=load_profile(None, {"pipeline": {"workers": 2}}))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    assert not (tmp_path / "out" / "HS-DEAD").exists()
