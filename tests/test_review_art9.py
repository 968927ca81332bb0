"""Review of the Art. 9 block (TT 01/2023 Art. 7 step 3, Art. 9; R36-R39) on a real bundle of
the pipeline: a person's value is ``source: manual`` with who entered it, what depends on the
values is recomputed (flags, the digitisation-result code), a component whose result code only
the configuration can give is accepted knowingly (and verify lists it), verify fails when an
Art. 9 value disagrees with the review record, and formats are checked by kind (owner ID 12
digits exactly, R39; dates; names).

The sample dossier's three papers are read by the real OCR; the values a person enters here
are the sample's fictitious data, given per field name below.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from digitize.errors import ExitCode, InvalidReviewValueError
from digitize.manifest import MANIFEST_FILE, Manifest
from tests.helpers_review import bundle_state, flagged_copy, resign_manifest

DIGITIZE = [sys.executable, "-m", "digitize"]
CODE = "000.00.12.H62-251125-0001"
DOC1, DOC2, DOC3 = (f"{CODE}.00{n}.pdf" for n in (1, 2, 3))
VERIFIED = (0, int(ExitCode.VERIFY_REVOCATION_UNKNOWN))  # DEMO: revocation cannot be shown

# What a clerk reads on the sample's papers (fictitious people), by Art. 9 field name.
OWNERS = {DOC1: "025190000012", DOC2: "025185000034", DOC3: "000.00.12.H62"}
PAPER_VALUES = {
    "art9.issued_date": "20/11/2025", "art9.validity_scope": "Toàn quốc",
    "art9.fields.child_dob": "02/11/2025", "art9.fields.child_sex": "Nữ",
    "art9.fields.date_signed": "20/11/2025", "art9.fields.father_name": "Trần Văn Bình",
    "art9.fields.mother_name": "Phạm Thị Lan", "art9.fields.requester_id": "025190000012",
    "art9.fields.requester_name": "Phạm Thị Lan", "art9.fields.grantor_id": "025185000034",
    "art9.fields.grantor_name": "Nguyễn Văn An", "art9.fields.grantee_id": "025190000012",
    "art9.fields.grantee_name": "Phạm Thị Lan", "art9.fields.scope": "Nộp hồ sơ khai sinh",
    "art9.fields.valid_from": "24/11/2015", "art9.fields.valid_until": "24/11/2016",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    if args and args[0] == "verify":
        args = ("verify", "--allow-demo", *args[1:])
    return subprocess.run([*DIGITIZE, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def flagged_template(sample_run, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    result, _ = sample_run
    return flagged_copy(result.bundle_path, tmp_path_factory.mktemp("art9"))


@pytest.fixture
def bundle(flagged_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "out" / flagged_template.name
    target.parent.mkdir()
    shutil.copytree(flagged_template, target)
    return target


def manifest_of(bundle: Path) -> Manifest:
    return Manifest.model_validate(json.loads((bundle / MANIFEST_FILE).read_bytes()))


def apply(bundle: Path, tmp_path: Path, data: dict[str, Any], *extra: str
          ) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "corrections.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return run("review", str(bundle), "--apply", str(path), *extra)


def doubtful(manifest: Manifest) -> list[tuple[str, str, Any]]:
    """Every Art. 9 value the machine flagged, as (file, field, value), read from the manifest."""
    out = []
    for doc in manifest.documents:
        if doc.art9 is None or doc.file is None:
            continue
        named = [(f"art9.{k}", v) for k, v in doc.art9.values().items()]
        named += [(f"art9.fields.{k}", v) for k, v in doc.art9.fields.items()]
        out += [(doc.file, name, v) for name, v in named if v.needs_review]
    return out


def settle_everything(manifest: Manifest) -> dict[str, Any]:
    """A person's decisions for every flagged Art. 9 value of the sample: a value read is
    confirmed unless the paper says otherwise, a value not read is typed; the paper-type code
    (configuration) is no field decision: each component is accepted knowingly instead."""
    fields = []
    for file, name, value in doubtful(manifest):
        if name == "art9.paper_type_code":
            continue
        typed = OWNERS[file] if name == "art9.owner_id" else PAPER_VALUES.get(name)
        if typed is None and value.value is not None:
            fields.append({"file": file, "field": name, "confirm": True})
            continue
        assert typed is not None, f"the test has no paper value for {name} of {file}"
        fields.append({"file": file, "field": name, "value": typed})
    documents = [{"file": f, "decision": "accept"} for f in (DOC1, DOC2, DOC3)]
    return {"fields": fields, "documents": documents}


# --- the whole review ------------------------------------------------------------------------
def test_settling_every_art9_value_and_accepting_knowingly_closes_the_dossier(
        bundle: Path, tmp_path: Path) -> None:
    before = manifest_of(bundle)
    assert {f.code for d in before.documents for f in d.flags} >= {"art9_review",
                                                                   "result_code_missing"}
    decisions = settle_everything(before)
    # the header fields and the cut-off edge the test bundle adds (helpers_review.flag_sample)
    decisions["fields"] += [{"file": DOC3, "field": "code_number", "value": "215"},
                            {"file": DOC3, "field": "issued_date", "value": "2025-10-14"},
                            {"file": DOC3, "field": "code_notation", "confirm": True}]
    decisions["pages"] = [{"file": DOC3, "page": 2, "decision": "accept"}]
    done = apply(bundle, tmp_path, decisions)
    assert done.returncode == 0, done.stderr
    assert "Nothing left to review" in done.stdout, done.stdout
    assert OWNERS[DOC1] not in done.stdout and "0251••••0012" in done.stdout  # masked

    after = manifest_of(bundle)
    reviewer = after.reviews[0].reviewer.full_name
    assert after.needs_review is False and doubtful(after) == [
        (d.file, "art9.paper_type_code", d.art9.paper_type_code)  # type: ignore[union-attr]
        for d in after.documents]  # only the configuration's gap stays flagged in the data
    for doc in after.documents:
        assert doc.art9 is not None
        owner = doc.art9.owner_id
        # R36: typed by a person, and who; the machine reading is kept in the review record
        assert (owner.value, owner.source, owner.entered_by) == (
            OWNERS[doc.file or ""], "manual", reviewer)
        codes = {f.code for f in doc.flags}
        # recomputed: the only value left in doubt is the paper-type code nobody configured
        assert next(f.message for f in doc.flags if f.code == "art9_review") == (
            "Art. 9 values to check: paper_type_code")
        # the code still cannot be made: the starter catalogue has no paper-type codes
        assert "result_code_missing" in codes and doc.digitization_result_code is None
        assert "the paper type has no code" in next(
            f.message for f in doc.flags if f.code == "result_code_missing")
    sex = after.documents[0].art9.fields["child_sex"]  # type: ignore[union-attr]
    change = next(c for c in after.reviews[0].changes if c.field == "art9.fields.child_sex")
    assert sex.value == "Nữ" and change.value == "Nữ"
    accepted = [c for c in after.reviews[0].changes if c.page is None and c.field is None]
    assert [c.file for c in accepted] == [DOC1, DOC2, DOC3]
    assert all("no paper-type code configured (extract.catalogue.codes)" in (c.reason or "")
               for c in accepted)

    verified = run("verify", str(bundle))
    assert verified.returncode in VERIFIED, verified.stdout
    assert f"review:{DOC1}:art9.owner_id" in verified.stdout
    assert "0251••••0012" in verified.stdout and OWNERS[DOC1] not in verified.stdout
    assert all(f"PASS review:{f}:accepted" in verified.stdout for f in (DOC1, DOC2, DOC3))


def test_configured_codes_give_the_result_code_after_the_review(bundle: Path,
                                                                tmp_path: Path) -> None:
    """With paper-type codes in the profile, confirming the owner's ID builds the code
    (default template ``<owner id>.<procedure code>.<paper-type code>.NN``, R38) and no
    acceptance is needed. The paper-type code in the bundle is the catalogue's at
    digitisation: the profile here only gives the template, so the code is built where the
    bundle carries a paper-type code (put there as the pipeline would with codes configured)."""
    paper_codes = {"to_khai_khai_sinh": "TKKS", "giay_uy_quyen": "GUQ",
                   "van_ban_hanh_chinh": "VBHC"}

    def configured(data: dict[str, Any]) -> None:
        for doc in data["documents"]:
            code = doc["art9"]["paper_type_code"]
            code.update(value=paper_codes[doc["art9"]["paper_type_key"]], needs_review=False,
                        doubts=[], note=None, confidence=1.0)

    resign_manifest(bundle, configured)
    manifest = manifest_of(bundle)
    decisions = settle_everything(manifest)
    decisions.pop("documents")
    done = apply(bundle, tmp_path, decisions)
    assert done.returncode == 0, done.stderr
    after = manifest_of(bundle)
    procedure = after.procedure_code
    assert procedure == "1.001193.000.00.00.H62"
    got = {d.file: d.digitization_result_code for d in after.documents}
    assert got == {DOC1: f"025190000012.{procedure}.TKKS.01",
                   DOC2: f"025185000034.{procedure}.GUQ.01",
                   DOC3: f"000.00.12.H62.{procedure}.VBHC.01"}
    assert not any(f.code == "result_code_missing" for d in after.documents for f in d.flags)


def test_accepting_knowingly_is_refused_while_the_owner_id_is_open(bundle: Path,
                                                                   tmp_path: Path) -> None:
    state = bundle_state(bundle)
    done = apply(bundle, tmp_path, {"documents": [{"file": DOC2, "decision": "accept"}]})
    assert done.returncode == int(ExitCode.REVIEW_INVALID_VALUE), done.stderr
    assert "owner" in done.stderr and "art9.owner_id" in done.stderr
    assert bundle_state(bundle) == state


def test_accepting_knowingly_leaves_the_flag_and_says_so(bundle: Path, tmp_path: Path) -> None:
    """The document with its owner settled and only the catalogue code missing: accepting it
    closes its configuration item but keeps the flag in the manifest; the report names who
    accepted it and why the code is missing."""
    done = apply(bundle, tmp_path, {
        "fields": [{"file": DOC3, "field": "art9.owner_id", "value": OWNERS[DOC3]}],
        "documents": [{"file": DOC3, "decision": "accept"}]})
    assert done.returncode == 0, done.stderr
    left = done.stdout.split("Still needs review:", 1)[1]
    doc3_lines = [ln for ln in left.splitlines() if DOC3 in ln]
    # the third paper's Art. 9 data is settled (its header fields, doubted by the test bundle,
    # are another matter)
    assert not any("mã kết quả" in ln or "định danh" in ln for ln in doc3_lines), doc3_lines
    assert DOC1 in left and DOC2 in left  # the other papers still wait for their owners
    doc3 = manifest_of(bundle).documents[2]
    assert any(f.code == "result_code_missing" for f in doc3.flags)

    report = run("report", str(bundle), "--json", "-", "--allow-demo", "--lang", "en")
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)["documents"][2]
    assert data["accepted_by"] and data["result_code"] is None
    assert data["config_gaps"] == ["no paper-type code configured (extract.catalogue.codes)"]
    owner = next(f for f in data["art9"] if f["name"] == "art9.owner_id")
    assert (owner["value"], owner["source"], owner["entered_by"], owner["state"]) == (
        OWNERS[DOC3], "manual", data["accepted_by"], "manual")


# --- what a person may not change, and formats --------------------------------------------
@pytest.mark.parametrize(("field", "value", "code"), [
    ("art9.paper_type_code", "X1", ExitCode.REVIEW_UNKNOWN_TARGET),  # the catalogue's
    ("art9.owner_id_kind", "organisation", ExitCode.REVIEW_UNKNOWN_TARGET),
    ("art9.owner_id", "02519000001", ExitCode.REVIEW_INVALID_VALUE),  # 11 digits (R39)
    ("art9.fields.requester_id", "0251900000xx", ExitCode.REVIEW_INVALID_VALUE),
    ("art9.fields.child_dob", "31/02/2025", ExitCode.REVIEW_INVALID_VALUE),
    ("art9.fields.father_name", "Trần 2 Bình", ExitCode.REVIEW_INVALID_VALUE),
    ("art9.fields.child_sex", "X", ExitCode.REVIEW_INVALID_VALUE),
    ("art9.fields.no_such_field", "x", ExitCode.REVIEW_UNKNOWN_TARGET),
])
def test_art9_decisions_that_are_refused(bundle: Path, tmp_path: Path, field: str, value: str,
                                         code: ExitCode) -> None:
    state = bundle_state(bundle)
    done = apply(bundle, tmp_path, {"fields": [{"file": DOC1, "field": field, "value": value}]})
    assert done.returncode == int(code), done.stderr
    assert bundle_state(bundle) == state


@pytest.mark.parametrize(("field", "kind", "typed", "stored"), [
    ("art9.owner_id", "personal_id", " 025190000012 ", "025190000012"),
    ("art9.owner_id", "organisation_id", "000.00.12.H62", "000.00.12.H62"),
    ("art9.fields.child_dob", "date", "2/11/2025", "2025-11-02"),
    ("art9.fields.father_name", "name", "Trần  Văn Bình", "Trần Văn Bình"),
    ("art9.fields.child_sex", "sex", "nữ", "Nữ"),
    ("art9.fields.mother_birth_year", "year", "1994", "1994"),
])
def test_art9_values_by_kind(field: str, kind: str, typed: str, stored: str) -> None:
    from digitize.review.values import normalise_value

    assert normalise_value(field, typed, kind=kind) == stored


@pytest.mark.parametrize(("kind", "typed"), [
    ("personal_id", "0251900000123"), ("personal_id", "02519000001a"), ("date", "2025-13-01"),
    ("name", "Bình"), ("name", "Trần V. 3"), ("sex", "male"), ("year", "94"),
])
def test_art9_values_that_break_their_kind(kind: str, typed: str) -> None:
    from digitize.review.values import normalise_value

    with pytest.raises(InvalidReviewValueError):
        normalise_value("art9.fields.x", typed, kind=kind)


# --- verify ----------------------------------------------------------------------------------
def test_verify_fails_when_an_art9_value_disagrees_with_the_review_record(
        bundle: Path, tmp_path: Path) -> None:
    done = apply(bundle, tmp_path, {"fields": [
        {"file": DOC1, "field": "art9.owner_id", "value": OWNERS[DOC1]}]})
    assert done.returncode == 0, done.stderr
    assert run("verify", str(bundle)).returncode in VERIFIED

    def other_owner(data: dict[str, Any]) -> None:
        data["documents"][0]["art9"]["owner_id"]["value"] = "025190000099"

    resign_manifest(bundle, other_owner)  # signed again by the same (DEMO) reviewer
    failed = run("verify", str(bundle))
    assert failed.returncode == int(ExitCode.VERIFY_REVIEW), failed.stdout
    assert re.search(r"FAIL review:record: .*art9\.owner_id", failed.stdout), failed.stdout


def test_verify_fails_for_a_manual_art9_value_no_review_records(bundle: Path) -> None:
    def typed_in(data: dict[str, Any]) -> None:
        data["documents"][0]["art9"]["owner_id"].update(
            value=OWNERS[DOC1], source="manual", entered_by="Ai Đó", needs_review=False)
        data["reviews"] = [{"reviewer": data["digitiser"], "reviewed_at": data["created_at"],
                            "previous_manifest_sha256": "0" * 64, "changes": []}]

    resign_manifest(bundle, typed_in)
    failed = run("verify", str(bundle))
    assert failed.returncode == int(ExitCode.VERIFY_REVIEW), failed.stdout
    assert "no review records it" in failed.stdout


def test_art9_values_read_from_the_header_follow_a_corrected_header_field(
        bundle: Path, tmp_path: Path) -> None:
    """The administrative paper's Art. 9 number/notation is read from its ND 30 header: when a
    person corrects the number, the Art. 9 value follows in the same review (a person's value,
    recorded as a change of its own) and verify accepts the record."""
    before = manifest_of(bundle)
    doc3 = before.documents[2]
    notation = next(e.value for e in doc3.extraction if e.field == "code_notation")
    done = apply(bundle, tmp_path, {"fields": [
        {"file": DOC3, "field": "code_number", "value": "216"},
        {"file": DOC3, "field": "code_notation", "confirm": True}]})
    assert done.returncode == 0, done.stderr
    after = manifest_of(bundle)
    follows = after.documents[2].art9.number_notation  # type: ignore[union-attr]
    reviewer = after.reviews[0].reviewer.full_name
    assert (follows.value, follows.source, follows.entered_by, follows.needs_review) == (
        f"216/{notation}", "manual", reviewer, False)
    change = next(c for c in after.reviews[0].changes if c.field == "art9.number_notation")
    assert (change.action, change.previous_value, change.value) == (
        "correct", doc3.art9.number_notation.value, f"216/{notation}")  # type: ignore[union-attr]
    verified = run("verify", str(bundle))
    assert verified.returncode in VERIFIED, verified.stdout
    assert f"review:{DOC3}:art9.number_notation" in verified.stdout
