"""Review of a signed bundle: ``digitize review --apply``, the save (re-signed, atomic), the
review checks of ``digitize verify``, and the review web app's security (no browser here; see
test_review_browser.py for the page in Chromium).

Covers: TT 01/2023 Art 8–9 (the digitiser answers for the copy and the data; R36 manual values
come from a person and say so), R15 (doubts reach a person), R32 (signed manifest), the value
formats of requirements §6/§8, and the errors' exit codes (111–115, 69).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from digitize.errors import (
    ExitCode,
    InvalidReviewValueError,
    RemoteBindError,
)
from digitize.manifest import MANIFEST_FILE, Manifest
from tests.helpers_review import (
    bundle_state,
    flagged_copy,
    leftovers,
    pdf_hashes,
    resign_manifest,
)

DIGITIZE = [sys.executable, "-m", "digitize"]
DOC3 = "000.00.12.H62-251125-0001.003.pdf"


def _verify_demo_too(path: Path):  # type: ignore[no-untyped-def]
    """The test bundles are signed with the DEMO identity: verify as ``--allow-demo`` does."""
    from digitize.verify import verify_bundle

    return verify_bundle(path, allow_demo=True)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    if args and args[0] == "verify":  # the sample bundles are signed with the DEMO identity
        args = ("verify", "--allow-demo", *args[1:])
    return subprocess.run([*DIGITIZE, *args], capture_output=True, text=True, timeout=300)


# A DEMO certificate names no OCSP/CRL service: everything verifies but revocation cannot be
# shown, which verify reports as its own state (66), not as a failure.
VERIFIED = (0, int(ExitCode.VERIFY_REVOCATION_UNKNOWN))


@pytest.fixture(scope="module")
def flagged_template(sample_run, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    result, _ = sample_run
    return flagged_copy(result.bundle_path, tmp_path_factory.mktemp("flagged"))


@pytest.fixture
def flagged(flagged_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "out" / flagged_template.name
    target.parent.mkdir()
    shutil.copytree(flagged_template, target)
    return target


def write_corrections(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "corrections.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def manifest_of(bundle: Path) -> Manifest:
    return Manifest.model_validate(json.loads((bundle / MANIFEST_FILE).read_bytes()))


def entry(manifest: Manifest, file: str, field: str):  # type: ignore[no-untyped-def]
    doc = next(d for d in manifest.documents if d.file == file)
    return next(e for e in doc.extraction if e.field == field)


# --- --apply: the happy path ---------------------------------------------------------------
def test_apply_records_correction_confirmation_and_page_then_verifies(
        flagged: Path, tmp_path: Path) -> None:
    """A correction keeps the machine reading beside the person's value (R36: source manual,
    who and when from the reviewer's certificate), the PDFs are untouched, the manifest is
    re-signed and verify reports the person's change; editing that value afterwards breaks
    the signature."""
    before_pdfs = pdf_hashes(flagged)
    inode = (flagged / DOC3).stat().st_ino
    corrections = write_corrections(tmp_path, {
        "fields": [{"file": DOC3, "field": "issued_date", "value": "14/10/2025"},
                   {"file": DOC3, "field": "code_number", "value": "215"},
                   {"file": DOC3, "field": "code_notation", "confirm": True}],
        "pages": [{"file": DOC3, "page": 2, "decision": "accept"}]})
    done = run("review", str(flagged), "--apply", str(corrections))
    assert done.returncode == 0, done.stderr
    # The header fields and page 2 are settled; what stays open is the papers' Art. 9 data
    # (values the machine doubted, no paper-type code configured): see the Art. 9 tests.
    left = done.stdout.split("Still needs review:", 1)[1]
    assert "Ngày ban hành" not in left and "Số của" not in left and "trang 2" not in left
    assert "Số định danh chủ sở hữu" in left and "extract.catalogue.codes" in left

    manifest = manifest_of(flagged)
    date_entry = entry(manifest, DOC3, "issued_date")
    assert (date_entry.value, date_entry.machine_value, date_entry.source) == (
        "2025-10-14", "2025-10-??", "manual")
    assert date_entry.reviewed_by == manifest.reviews[0].reviewer.full_name
    assert date_entry.needs_review is False and date_entry.reviewed_at is not None
    notation = entry(manifest, DOC3, "code_notation")
    assert (notation.source, notation.machine_value, notation.reviewed_by) == (
        "ocr", None, manifest.reviews[0].reviewer.full_name)
    doc = next(d for d in manifest.documents if d.file == DOC3)
    assert doc.issued_date is not None and doc.issued_date.isoformat() == "2025-10-14"
    assert doc.code_number == "215"
    assert not any(e.needs_review for d in manifest.documents for e in d.extraction)
    art9_doubts = [(d.file, k) for d in manifest.documents if d.art9
                   for k, v in (*d.art9.values().items(), *d.art9.fields.items())
                   if v.needs_review]
    assert art9_doubts and manifest.needs_review is True
    review = manifest.reviews[0]
    assert {(c.field or c.page, c.action) for c in review.changes} == {
        ("issued_date", "correct"), ("code_number", "correct"), ("code_notation", "confirm"),
        (2, "accept")}
    assert review.reviewer.is_demo and review.reviewed_at.utcoffset().total_seconds() == 7 * 3600

    assert pdf_hashes(flagged) == before_pdfs
    assert (flagged / DOC3).stat().st_ino == inode  # hard-linked, never rewritten
    assert leftovers(flagged.parent) == []

    verified = run("verify", str(flagged))
    assert verified.returncode in VERIFIED, verified.stdout
    changed = [ln for ln in verified.stdout.splitlines() if f"review:{DOC3}:" in ln]
    assert any("issued_date" in ln and "2025-10-??" in ln and "2025-10-14" in ln
               for ln in changed), verified.stdout
    assert not any("code_notation" in ln for ln in changed)  # confirmed, not changed

    # A person's value edited afterwards: the signature no longer covers the manifest.
    raw = (flagged / MANIFEST_FILE).read_text(encoding="utf-8")
    (flagged / MANIFEST_FILE).write_text(raw.replace('"2025-10-14"', '"2025-10-15"'),
                                         encoding="utf-8")
    tampered = run("verify", str(flagged))
    assert tampered.returncode != 0
    assert re.search(r"FAIL (hash:manifest.json|manifest_signature)", tampered.stdout)


def test_edited_manifest_with_new_checksums_still_fails(flagged: Path, tmp_path: Path) -> None:
    from digitize.bundle import write_checksums

    corrections = write_corrections(tmp_path, {"fields": [
        {"file": DOC3, "field": "code_number", "value": "215"}]})
    assert run("review", str(flagged), "--apply", str(corrections)).returncode == 0
    raw = (flagged / MANIFEST_FILE).read_text(encoding="utf-8")
    (flagged / MANIFEST_FILE).write_text(raw.replace('"215"', '"216"'), encoding="utf-8")
    write_checksums(flagged)
    done = run("verify", str(flagged))
    assert done.returncode == int(ExitCode.VERIFY_SIGNATURE), done.stdout


def test_rescan_keeps_the_dossier_in_review_with_the_reason(flagged: Path,
                                                            tmp_path: Path) -> None:
    """R15: a page sent back for a new scan keeps the dossier open, and says why."""
    corrections = write_corrections(tmp_path, {
        "fields": [{"file": DOC3, "field": "issued_date", "value": "2025-10-14"},
                   {"file": DOC3, "field": "code_number", "value": "215"}],
        "pages": [{"file": DOC3, "page": 2, "decision": "rescan",
                   "reason": "mép phải bị cắt mất chữ"}]})
    done = run("review", str(flagged), "--apply", str(corrections))
    assert done.returncode == 0, done.stderr
    assert "mép phải bị cắt mất chữ" in done.stdout
    manifest = manifest_of(flagged)
    assert manifest.needs_review is True
    from digitize.review.state import open_items

    kinds = {(i.kind, i.page) for i in open_items(manifest)}
    assert ("rescan", 2) in kinds and ("flag", 2) in kinds


def test_second_review_keeps_the_first_machine_reading(flagged: Path, tmp_path: Path) -> None:
    first = write_corrections(tmp_path, {"fields": [
        {"file": DOC3, "field": "code_number", "value": "251"}]})
    assert run("review", str(flagged), "--apply", str(first)).returncode == 0
    second = tmp_path / "second.json"
    second.write_text(json.dumps({"fields": [
        {"file": DOC3, "field": "code_number", "value": "215"}]}), encoding="utf-8")
    assert run("review", str(flagged), "--apply", str(second)).returncode == 0
    manifest = manifest_of(flagged)
    number = entry(manifest, DOC3, "code_number")
    assert (number.value, number.machine_value) == ("215", "2l5")
    assert len(manifest.reviews) == 2
    assert manifest.reviews[1].changes[0].previous_value == "251"
    assert run("verify", str(flagged)).returncode in VERIFIED


# --- --apply: every error leaves the bundle as it was -----------------------------------------
BAD_CORRECTIONS = [
    ("unknown file", {"fields": [{"file": "nope.pdf", "field": "code_number", "value": "1"}]},
     ExitCode.REVIEW_UNKNOWN_TARGET),
    ("unknown field", {"fields": [{"file": DOC3, "field": "colour", "value": "red"}]},
     ExitCode.REVIEW_UNKNOWN_TARGET),
    ("unknown page", {"pages": [{"file": DOC3, "page": 9, "decision": "accept"}]},
     ExitCode.REVIEW_UNKNOWN_TARGET),
    ("impossible date", {"fields": [{"file": DOC3, "field": "issued_date",
                                     "value": "31/02/2025"}]}, ExitCode.REVIEW_INVALID_VALUE),
    ("number with letters (§8)", {"fields": [{"file": DOC3, "field": "code_number",
                                              "value": "2l5"}]}, ExitCode.REVIEW_INVALID_VALUE),
    ("notation shape (§8)", {"fields": [{"file": DOC3, "field": "code_notation",
                                         "value": "qđ/ubnd"}]}, ExitCode.REVIEW_INVALID_VALUE),
    ("confirming an unread day", {"fields": [{"file": DOC3, "field": "issued_date",
                                              "confirm": True}]}, ExitCode.REVIEW_INVALID_VALUE),
    ("value and confirm", {"fields": [{"file": DOC3, "field": "code_number", "value": "1",
                                       "confirm": True}]}, ExitCode.REVIEW_CORRECTIONS_FILE),
    ("rescan without reason", {"pages": [{"file": DOC3, "page": 1, "decision": "rescan"}]},
     ExitCode.REVIEW_CORRECTIONS_FILE),
    ("unknown key", {"fields": [], "notes": "x"}, ExitCode.REVIEW_CORRECTIONS_FILE),
    ("nothing to do", {"fields": [], "pages": []}, ExitCode.REVIEW_CORRECTIONS_FILE),
]


@pytest.mark.parametrize(("case", "data", "code"), BAD_CORRECTIONS, ids=[c[0] for c in BAD_CORRECTIONS])
def test_bad_corrections_exit_with_their_code_and_write_nothing(
        flagged: Path, tmp_path: Path, case: str, data: object, code: ExitCode) -> None:
    before = bundle_state(flagged)
    done = run("review", str(flagged), "--apply", str(write_corrections(tmp_path, data)))
    assert done.returncode == int(code), (case, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert bundle_state(flagged) == before
    assert leftovers(flagged.parent) == []


def test_corrections_file_that_is_not_json(flagged: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(b"{\"fields\": [\xff")
    done = run("review", str(flagged), "--apply", str(path))
    assert done.returncode == int(ExitCode.REVIEW_CORRECTIONS_FILE)
    assert "c.json" in done.stderr


def test_bundle_that_does_not_verify_is_not_reviewed(flagged: Path, tmp_path: Path) -> None:
    pdf = flagged / DOC3
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    pdf.write_bytes(bytes(data))
    before = bundle_state(flagged)
    corrections = write_corrections(tmp_path, {"fields": [
        {"file": DOC3, "field": "code_number", "value": "215"}]})
    done = run("review", str(flagged), "--apply", str(corrections))
    assert done.returncode == int(ExitCode.REVIEW_NOT_VERIFIED), done.stderr
    assert "nothing was changed" in done.stderr
    assert bundle_state(flagged) == before


# --- an interrupted save leaves the old manifest and signature ---------------------------------
@pytest.mark.parametrize("where", ["sign", "checksums", "staged_verify", "swap"])
def test_interrupted_save_keeps_the_old_bundle(flagged: Path, monkeypatch: pytest.MonkeyPatch,
                                               where: str) -> None:
    from digitize.review import parse_corrections, save, save_review
    from digitize.settings import SigningSettings
    from digitize.sign import open_signer
    from digitize.verify import verify_bundle

    class Crash(Exception):
        pass

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash(where)

    before = bundle_state(flagged)
    signer = open_signer(SigningSettings())
    calls = {"verify": 0}

    def verify(path: Path):  # type: ignore[no-untyped-def]
        calls["verify"] += 1
        if where == "staged_verify" and calls["verify"] == 2:
            raise Crash(where)
        return verify_bundle(path, allow_demo=True)

    if where == "sign":
        monkeypatch.setattr(signer, "sign_detached", crash)
    elif where == "checksums":
        monkeypatch.setattr(save, "write_checksums", crash)
    elif where == "swap":
        monkeypatch.setattr(save, "_exchange", crash)
    corrections = parse_corrections({"fields": [
        {"file": DOC3, "field": "code_number", "value": "215"}]})
    try:
        with pytest.raises(Crash):
            save_review(flagged, corrections, signer, verify)
    finally:
        signer.close()
    assert bundle_state(flagged) == before
    assert leftovers(flagged.parent) == []
    from digitize.verify import verify_bundle as verify_again

    assert verify_again(flagged, allow_demo=True).ok


def test_swap_cut_between_two_renames_is_put_back(flagged: Path) -> None:
    """Where the file system cannot exchange folders, a swap is two renames; a crash between
    them leaves the bundle at its set-aside name, and the next review puts it back."""
    from digitize.review.save import recover_interrupted_swap

    aside = flagged.parent / f".{flagged.name}.previous-999999-abcd1234"
    os.rename(flagged, aside)
    assert recover_interrupted_swap(flagged) is True
    assert (flagged / MANIFEST_FILE).is_file() and not aside.exists()


# --- verify's review checks -------------------------------------------------------------------
def test_verify_fails_when_the_named_reviewer_did_not_sign(flagged: Path, tmp_path: Path) -> None:
    corrections = write_corrections(tmp_path, {"fields": [
        {"file": DOC3, "field": "code_number", "value": "215"}]})
    assert run("review", str(flagged), "--apply", str(corrections)).returncode == 0

    def other_reviewer(data: dict) -> None:  # type: ignore[type-arg]
        data["reviews"][0]["reviewer"]["cert_sha256"] = "0" * 64
        data["reviews"][0]["reviewer"]["full_name"] = "Trần Thị Khác"

    resign_manifest(flagged, other_reviewer)
    done = run("verify", str(flagged))
    # V1: the manifest must be signed by the person the last review names.
    assert done.returncode == int(ExitCode.VERIFY_TRUST), done.stdout
    assert "FAIL identity:manifest.json.p7s" in done.stdout


def test_verify_fails_when_a_value_disagrees_with_the_review_record(flagged: Path,
                                                                      tmp_path: Path) -> None:
    corrections = write_corrections(tmp_path, {"fields": [
        {"file": DOC3, "field": "code_number", "value": "215"}]})
    assert run("review", str(flagged), "--apply", str(corrections)).returncode == 0

    def change_value(data: dict) -> None:  # type: ignore[type-arg]
        for entry_data in data["documents"][2]["extraction"]:
            if entry_data["field"] == "code_number":
                entry_data["value"] = "999"

    resign_manifest(flagged, change_value)
    done = run("verify", str(flagged))
    assert done.returncode == int(ExitCode.VERIFY_REVIEW), done.stdout
    assert "FAIL review:record" in done.stdout


# --- value rules (requirements §6, §7, §8) ------------------------------------------------------
@pytest.mark.parametrize(("field", "typed", "stored"), [
    ("issued_date", "05/02/2025", "2025-02-05"),
    ("issued_date", "5/2/2025", "2025-02-05"),
    ("issued_date", "2025-02-05", "2025-02-05"),
    ("code_number", " 05 ", "05"),
    ("code_notation", "QĐ-BCĐ138", "QĐ-BCĐ138"),
    ("code_notation", "TTr-UBND", "TTr-UBND"),
    ("art9.owner_id", "001234565678", "001234565678"),
    ("subject", "Về  việc\tgiao nhiệm vụ", "Về việc giao nhiệm vụ"),
])
def test_values_people_type_are_stored_in_their_standard_form(field: str, typed: str,
                                                              stored: str) -> None:
    from digitize.review.values import normalise_value

    assert normalise_value(field, typed) == stored


@pytest.mark.parametrize(("field", "typed"), [
    ("issued_date", "2025-02-??"), ("issued_date", "29/02/2025"), ("issued_date", "05-02-2025"),
    ("code_number", "123456789012"), ("code_notation", "-UBND"), ("code_notation", "QĐ/UBND"),
    ("art9.owner_id", "12345"), ("subject", "   "), ("organ_name", "A\x1b[31mB"),
])
def test_values_that_break_their_format_are_refused(field: str, typed: str) -> None:
    from digitize.review.values import normalise_value

    with pytest.raises(InvalidReviewValueError):
        normalise_value(field, typed)


def test_art9_values_are_read_generically() -> None:
    """The Art. 9 block (issue 19's model) is read as keys whose values carry ``value``."""
    from digitize.review.state import art9_values

    block = {"paper_type_code": {"value": "GKS", "needs_review": False},
             "owner_id": {"value": None, "needs_review": True, "page": 1},
             "fields": {"full_name": {"value": "Lê Văn A", "needs_review": True}},
             "note": "not a value"}
    names = [name for name, _ in art9_values(block)]
    assert names == ["art9.paper_type_code", "art9.owner_id", "art9.fields.full_name"]


# --- the web app: bind, escaping, cross-site posts ------------------------------------------------
def test_server_refuses_non_loopback_binds_unless_asked(flagged: Path) -> None:
    from digitize.review.server import allowed_hosts, check_bind

    for host in ("127.0.0.1", "localhost", "::1"):
        check_bind(host, allow_remote=False)
    for host in ("0.0.0.0", "192.0.2.10", "::"):
        with pytest.raises(RemoteBindError):
            check_bind(host, allow_remote=False)
        check_bind(host, allow_remote=True)
    assert "0.0.0.0:8000" not in allowed_hosts("0.0.0.0", 8000)
    done = run("review", str(flagged.parent), "--host", "0.0.0.0", "--port", "0")
    assert done.returncode == int(ExitCode.REVIEW_REMOTE_BIND), done.stderr
    assert "--allow-remote" in done.stderr


HOST = "127.0.0.1:5005"


@pytest.fixture
def app_client(flagged: Path):  # type: ignore[no-untyped-def]
    from werkzeug.test import Client

    from digitize.review.app import ReviewApp, ReviewSettings
    from digitize.review.server import allowed_hosts
    from digitize.settings import SigningSettings
    from digitize.sign import open_signer

    signer = open_signer(SigningSettings())
    app = ReviewApp(ReviewSettings(root=flagged.parent, signer=signer, verify=_verify_demo_too,
                                   allowed_hosts=allowed_hosts("127.0.0.1", 5005)))
    try:
        yield Client(app), flagged
    finally:
        signer.close()


def _get(client, path: str):  # type: ignore[no-untyped-def]
    return client.get(path, base_url=f"http://{HOST}")


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def test_every_untrusted_value_is_escaped(flagged: Path, tmp_path: Path) -> None:
    """File names and OCR text are untrusted: a planted tag shows as text, never as markup."""
    from werkzeug.test import Client

    from digitize.review.app import ReviewApp, ReviewSettings
    from digitize.review.server import allowed_hosts
    from digitize.settings import SigningSettings
    from digitize.sign import open_signer

    evil = '<img src=x onerror=alert(1)>'
    hostile = flagged.parent / f"ho-so{evil}"
    os.rename(flagged, hostile)

    def plant(data: dict) -> None:  # type: ignore[type-arg]
        doc = data["documents"][2]
        doc["component_name"] = "<script>alert('tên')</script>"
        for entry_data in doc["extraction"]:
            if entry_data["field"] == "code_number":
                entry_data["value"] = '"><script>alert(2)</script>'
        doc["flags"].append({"code": "<b>new_code</b>", "severity": "review",
                             "message": "<script>alert(3)</script>", "page": None})

    resign_manifest(hostile, plant)
    signer = open_signer(SigningSettings())
    try:
        app = ReviewApp(ReviewSettings(root=hostile.parent, signer=signer, verify=_verify_demo_too,
                                       allowed_hosts=allowed_hosts("127.0.0.1", 5005)))
        client = Client(app)
        listing = _get(client, "/").get_data(as_text=True)
        from urllib.parse import quote

        page = _get(client, "/b/" + quote(hostile.name)).get_data(as_text=True)
    finally:
        signer.close()
    for html in (listing, page):
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "<b>new_code" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in listing
    assert "&lt;script&gt;alert(&#39;tên&#39;)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in page
    # no script but our own file, no inline script or style attribute
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/review.js" defer>']
    assert " style=" not in page


def test_cross_site_posts_are_rejected(app_client) -> None:  # type: ignore[no-untyped-def]
    client, bundle = app_client
    before = bundle_state(bundle)
    page = _get(client, f"/b/{bundle.name}")
    assert page.status_code == 200
    assert "SameSite=Strict" in page.headers["Set-Cookie"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    token = _token(html)
    sha = re.search(r'name="manifest_sha256" value="([0-9a-f]+)"', html).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": token, "manifest_sha256": sha, "value-3-2": "215",
            "decision-3-2": "accept"}
    save = f"/b/{bundle.name}/save"
    origin = f"http://{HOST}"
    # a page elsewhere posting the form: foreign Origin, no token, no Origin/Referer, bad token
    for headers, data in (
        ({"Origin": "http://evil.example"}, form),
        ({"Origin": origin}, {k: v for k, v in form.items() if k != "csrf_token"}),
        ({}, form),
        ({"Origin": origin}, {**form, "csrf_token": "0" * 64}),
        ({"Referer": "http://evil.example/x"}, form),
    ):
        refused = client.post(save, base_url=origin, data=data, headers=headers)
        assert refused.status_code == 403, headers
    # a different browser (no session cookie) with a token copied from the page
    from werkzeug.test import Client

    stranger = Client(client.application)
    assert stranger.post(save, base_url=origin, data=form,
                         headers={"Origin": origin}).status_code == 403
    # DNS rebinding: any other Host is refused before anything runs
    assert client.get("/", base_url="http://evil.example:5005").status_code == 400
    assert bundle_state(bundle) == before

    accepted = client.post(save, base_url=origin, data=form, headers={"Origin": origin})
    assert accepted.status_code == 303, accepted.get_data(as_text=True)[:500]
    assert entry(manifest_of(bundle), DOC3, "code_number").value == "215"


def test_form_errors_are_shown_beside_the_field_and_nothing_is_saved(app_client) -> None:  # type: ignore[no-untyped-def]
    client, bundle = app_client
    before = bundle_state(bundle)
    html = _get(client, f"/b/{bundle.name}").get_data(as_text=True)
    data = {"csrf_token": _token(html),
            "manifest_sha256": re.search(r'name="manifest_sha256" value="([0-9a-f]+)"',  # type: ignore[union-attr]
                                         html).group(1),
            "value-3-4": "31/02/2025", "decision-3-1": "rescan", "reason-3-1": ""}
    response = client.post(f"/b/{bundle.name}/save", base_url=f"http://{HOST}", data=data,
                           headers={"Origin": f"http://{HOST}"})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert re.search(r'id="value-3-4"[^>]*aria-invalid="true"', body)
    assert "Ghi lý do cần quét lại" in body
    assert bundle_state(bundle) == before


def test_a_broken_bundle_in_the_folder_is_named_not_crashed(app_client) -> None:  # type: ignore[no-untyped-def]
    client, bundle = app_client
    broken = bundle.parent / "hong"
    broken.mkdir()
    (broken / MANIFEST_FILE).write_text("{", encoding="utf-8")
    listing = _get(client, "/")
    assert listing.status_code == 200
    assert "manifest.json is invalid" in listing.get_data(as_text=True)
    page = _get(client, "/b/hong")
    assert page.status_code == 409 and "manifest.json is invalid" in page.get_data(as_text=True)
    assert _get(client, "/b/..%2f..%2fetc").status_code == 404


def test_a_value_with_console_markup_is_printed_as_typed(flagged: Path, tmp_path: Path) -> None:
    """A person's value reaches verify's console line: brackets are text, never markup."""
    typed = "Về việc [/] giao [bold red]nhiệm vụ"
    corrections = write_corrections(tmp_path, {"fields": [
        {"file": DOC3, "field": "subject", "value": typed}]})
    assert run("review", str(flagged), "--apply", str(corrections)).returncode == 0
    done = run("verify", str(flagged))
    assert done.returncode in VERIFIED, done.stdout + done.stderr
    assert typed in done.stdout
