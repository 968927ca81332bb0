"""The review page in a real Chromium (Debian ``chromium`` + ``chromium-driver``, driven by
Selenium with the system chromedriver: nothing is downloaded), as a clerk uses it.

A real scan from ``../shared/real-scans/`` (r01: handwritten number and day, flagged by the
extractor) is digitised with ``digitize run --rescan``; without ``../shared`` the sample
dossier with the same kind of doubts is used. On the page, with the keyboard only: Tab to the
first value to confirm, a wrong date is refused in place, a value is corrected (type + Enter),
another confirmed (Enter), a page accepted (arrow key in its radio group); then the form is
saved. ``digitize verify`` exits 0 and names the person's change; editing that value in
``manifest.json`` afterwards makes verify fail (TT 01/2023 Art 8–9, R36, R32).

Set ``DIGITIZE_SCREENSHOTS=DIR`` to keep screenshots of the page and of the report
(``docs/review-page.png`` and ``docs/report.png`` are made this way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from digitize.manifest import MANIFEST_FILE, Manifest
from tests.helpers_review import flagged_copy

REPO = Path(__file__).resolve().parents[1]
REAL_SCAN = REPO.parent / "shared" / "real-scans" / "r01"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
DIGITIZE = [sys.executable, "-m", "digitize"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="Debian chromium and chromium-driver are not installed "
                              "(scripts/setup.sh --test installs them)"),
]


def _verify_demo_too(path: Path):  # type: ignore[no-untyped-def]
    """The test bundles are signed with the DEMO identity: verify as ``--allow-demo`` does."""
    from digitize.verify import verify_bundle

    return verify_bundle(path, allow_demo=True)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    if args and args[0] == "verify":  # the bundle is signed with the DEMO identity
        args = ("verify", "--allow-demo", *args[1:])
    return subprocess.run([*DIGITIZE, *args], capture_output=True, text=True, timeout=900)


@pytest.fixture
def dossier(sample_run, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A bundle with fields the machine was unsure of: the real scan when ../shared is there."""
    out = tmp_path / "out"
    if REAL_SCAN.is_dir():
        done = run("run", str(REAL_SCAN), "--out", str(out), "--rescan")
        assert done.returncode == 0, done.stderr
        return out / "r01"
    result, _ = sample_run
    out.mkdir()
    return flagged_copy(result.bundle_path, out)


@pytest.fixture
def server(dossier: Path) -> Iterator[str]:
    from digitize.review.app import ReviewApp, ReviewSettings
    from digitize.review.server import make_review_server
    from digitize.settings import SigningSettings
    from digitize.sign import open_signer

    signer = open_signer(SigningSettings())
    app = ReviewApp(ReviewSettings(root=dossier.parent, signer=signer, verify=_verify_demo_too,
                                   allowed_hosts=frozenset()))
    httpd = make_review_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        signer.close()


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="digitize-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,2400",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _plan(bundle: Path) -> tuple[str, int, list[tuple[int, str, str | None]]]:
    """(file, ordinal, [(index, field, value to type or None to confirm)]) for the flagged
    fields of the first component, in page order: the date (or number) is corrected with the
    value read by eye, the next flagged field with a valid reading is confirmed."""
    from digitize.review.values import normalise_value

    manifest = Manifest.model_validate(json.loads((bundle / MANIFEST_FILE).read_bytes()))
    doc = next(d for d in manifest.documents if any(e.needs_review for e in d.extraction))
    truth = {"issued_date": "05/02/2025", "code_number": "04"} if REAL_SCAN.is_dir() else {
        "issued_date": "14/10/2025", "code_number": "215"}
    flagged = [e.field for e in doc.extraction if e.needs_review]
    target = "issued_date" if "issued_date" in flagged else "code_number"
    steps: list[tuple[int, str, str | None]] = []
    corrected = confirmed = False
    for index, entry in enumerate(doc.extraction):
        if not entry.needs_review:
            continue
        if entry.field == target:
            steps.append((index, entry.field, truth[entry.field]))
            corrected = True
            continue
        try:
            normalise_value(entry.field, entry.value)
            valid = True
        except Exception:  # noqa: BLE001 - an unreadable value is skipped, not confirmed
            valid = False
        if valid and not confirmed:
            steps.append((index, entry.field, None))
            confirmed = True
        else:
            steps.append((index, entry.field, ""))  # left for later: Tab past it
    assert corrected and confirmed, [(e.field, e.value, e.needs_review) for e in doc.extraction]
    return doc.file or "", doc.doc_ordinal, steps


def test_review_with_the_keyboard_then_verify(dossier: Path, server: str, browser,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    shots = os.environ.get("DIGITIZE_SCREENSHOTS")
    file, ordinal, steps = _plan(dossier)
    browser.get(server + "/")
    browser.find_element(By.LINK_TEXT, dossier.name).click()
    WebDriverWait(browser, 60).until(ec.presence_of_element_located((By.ID, "review-form")))
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "vi"
    assert "Cần rà soát" in browser.find_element(By.TAG_NAME, "body").text

    def active_id() -> str:
        return browser.switch_to.active_element.get_attribute("id") or ""

    def tab_to(wanted: str, limit: int = 300) -> None:
        for _ in range(limit):
            if active_id() == wanted:
                return
            browser.switch_to.active_element.send_keys(Keys.TAB)
        assert active_id() == wanted

    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    # The component has no digitisation-result code: the starter catalogue has no paper-type
    # codes, which the page says in plain words; the clerk accepts it knowingly (Space).
    accept_doc = f"accept-doc-{ordinal}"
    section = browser.find_element(By.ID, f"doc-{ordinal}").find_element(By.XPATH, "..")
    assert "chưa cấu hình mã loại giấy tờ (extract.catalogue.codes)" in section.text
    tab_to(accept_doc)
    browser.switch_to.active_element.send_keys(Keys.SPACE)
    assert browser.find_element(By.ID, accept_doc).is_selected()
    # Tab on to the first value to confirm.
    first = f"value-{ordinal}-{steps[0][0]}"
    tab_to(first)
    for index, field, typed in steps:
        box_id = f"value-{ordinal}-{index}"
        assert active_id() == box_id, (field, active_id())
        box = browser.switch_to.active_element
        if typed is None:
            box.send_keys(Keys.ENTER)  # confirm the machine's reading
            assert browser.find_element(By.ID, f"confirm-{ordinal}-{index}").is_selected()
        elif typed:
            if field == "issued_date":  # a day that does not exist is refused in place
                box.send_keys(Keys.CONTROL, "a")
                box.send_keys("31/02/2025", Keys.ENTER)
                assert active_id() == box_id
                assert box.get_attribute("aria-invalid") == "true"
                assert browser.find_element(By.ID, f"{box_id}-error").text
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(typed, Keys.ENTER)
            assert box.get_attribute("aria-invalid") == "false"
            assert browser.find_element(By.ID, f"{box_id}-status").text == "Đã sửa"
        else:
            box.send_keys(Keys.TAB, Keys.TAB)  # past its confirm box to the next value
    # The owner's identifier (Art. 9, not printed on an administrative paper): typed in. A
    # personal ID must have exactly 12 digits (R39): 11 are refused in place.
    owner_box = browser.find_element(
        By.XPATH, f"//section[@aria-labelledby='doc-{ordinal}']"
                  "//label[span[text()='art9.owner_id']]").get_attribute("for")
    tab_to(owner_box)
    box = browser.switch_to.active_element
    personal = box.get_attribute("data-kind") == "personal_id"
    owner = "025190000012" if personal else "000.00.12.H62"
    if personal:
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(owner[:11], Keys.ENTER)
        assert active_id() == owner_box and box.get_attribute("aria-invalid") == "true"
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(owner, Keys.ENTER)
    assert box.get_attribute("aria-invalid") == "false"
    assert browser.find_element(By.ID, f"{owner_box}-status").text == "Đã sửa"
    # After the values come the page decisions: Tab on to the first page's, and accept it.
    tab_to(f"decision-{ordinal}-1-none")
    browser.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert browser.find_element(By.ID, f"decision-{ordinal}-1-accept").is_selected()
    if shots:
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(Path(shots) / "review-page.png"))

    browser.find_element(By.ID, "save").send_keys(Keys.ENTER)
    WebDriverWait(browser, 120).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".notice"), "Đã lưu và ký lại"))

    corrected = next(s for s in steps if s[2])
    verified = run("verify", str(dossier))
    # Every check passes; a DEMO certificate names no OCSP/CRL service, so verify says
    # "valid, revocation not checked" (66) rather than claiming a revocation check.
    assert verified.returncode in (0, 66), verified.stdout
    assert "FAIL" not in verified.stdout
    assert f"review:{file}:{corrected[1]}" in verified.stdout
    manifest = Manifest.model_validate(json.loads((dossier / MANIFEST_FILE).read_bytes()))
    doc = next(d for d in manifest.documents if d.file == file)
    entry = next(e for e in doc.extraction if e.field == corrected[1])
    assert entry.source == "manual" and entry.machine_value is not None
    assert entry.reviewed_by == manifest.reviews[-1].reviewer.full_name
    assert any(c.action == "accept" and c.page == 1 for c in manifest.reviews[-1].changes)
    # R36: the owner's identifier a person typed, and who; the acceptance without a code
    assert doc.art9 is not None
    assert (doc.art9.owner_id.value, doc.art9.owner_id.source, doc.art9.owner_id.entered_by) \
        == (owner, "manual", manifest.reviews[-1].reviewer.full_name)
    assert f"review:{file}:art9.owner_id" in verified.stdout
    assert f"PASS review:{file}:accepted" in verified.stdout

    if shots:
        report = tmp_path / "report.html"
        assert run("report", str(dossier), "--html", str(report)).returncode == 0
        browser.set_window_size(1000, 2600)
        browser.get(report.as_uri())
        browser.save_screenshot(str(Path(shots) / "report.png"))

    raw = (dossier / MANIFEST_FILE).read_text(encoding="utf-8")
    assert f'"{entry.value}"' in raw
    (dossier / MANIFEST_FILE).write_text(raw.replace(f'"{entry.value}"', '"1999-01-01"', 1),
                                         encoding="utf-8")
    assert run("verify", str(dossier)).returncode != 0
