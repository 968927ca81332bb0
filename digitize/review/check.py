"""The review part of ``digitize verify``: who changed what, and does the record hold together.

``check_review(manifest, signature_bytes, lang)`` returns verify's ``Check`` objects:

* nothing when the manifest has no review;
* ``review:signer`` — the manifest signature (``manifest.json.p7s``) was made with the
  certificate of the last reviewer (``reviews[-1].reviewer.cert_sha256``): the person named as
  reviewer is the one who signed the corrected manifest. Whether that certificate is valid and
  trusted is the manifest-signature check's job (same trust roots);
* ``review:record`` — every change names a component, field and page the manifest has; reviews
  are in time order and after the bundle was made; each field a person touched carries that
  person's name and time, and a corrected value equals the last correction with the machine
  reading kept beside it;
  An Art. 9 value a person touched equals the last change and is no longer flagged; one a
  person corrected is ``source: "manual"`` with ``entered_by`` that reviewer; a ``manual``
  Art. 9 value no review records fails;
* ``review:<file>:<field>`` — one line per field a person changed: machine reading → value,
  who and when (what ``digitize verify`` prints; personal ID numbers and dates of birth
  masked, as on every console). The integrity of all of it rests on the manifest signature:
  editing a value in ``manifest.json`` breaks that check;
* ``review:<file>:accepted`` — a component a reviewer accepted knowingly without a
  digitisation-result code (``review.art9``): who, when and why.

Failures carry ``ExitCode.VERIFY_REVIEW``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from digitize.errors import ExitCode
from digitize.manifest import Manifest, ReviewChange
from digitize.models import Check
from digitize.review.art9 import document_acceptances
from digitize.review.state import art9_values
from digitize.util import escape_control, format_vn_time, mask_date, mask_id

_TEXT = {
    "signer_ok": ("bản kê được ký lại bởi người rà soát {name}",
                  "the manifest was re-signed by the reviewer {name}"),
    "signer_bad": ("bản kê không được ký bởi người rà soát cuối cùng ({name})",
                   "the manifest is not signed by the last reviewer ({name})"),
    "signer_unreadable": ("không đọc được người ký bản kê", "cannot read the manifest signer"),
    "record_ok": ("{count} lần rà soát; lần cuối: {name} lúc {time}; sửa {corrected} trường, "
                  "xác nhận {confirmed}, chấp nhận {accepted} trang, {rescan} trang cần quét lại",
                  "{count} review(s); last: {name} at {time}; {corrected} field(s) corrected, "
                  "{confirmed} confirmed, {accepted} page(s) accepted, {rescan} to rescan"),
    "accepted": ("chấp nhận khi chưa có mã kết quả số hóa ({name}, {time}): {reason}",
                 "accepted without a digitisation-result code ({name}, {time}): {reason}"),
    "record_bad": ("hồ sơ rà soát không khớp bản kê: {detail}",
                   "the review record does not match the manifest: {detail}"),
    "changed": ("người sửa: {machine} → {value} ({name}, {time})",
                "changed by a person: {machine} → {value} ({name}, {time})"),
}


def _t(key: str, lang: str, **values: object) -> str:
    vi, en = _TEXT[key]
    return (en if lang == "en" else vi).format(**values)


def manifest_signer_sha256(signature: bytes) -> str | None:
    """SHA-256 of the certificate that made a detached CMS signature (None if unreadable)."""
    try:
        from asn1crypto import cms

        signed = cms.ContentInfo.load(signature)["content"]
        sid = signed["signer_infos"][0]["sid"]
        for choice in signed["certificates"] or []:
            cert = choice.chosen
            if sid.name == "issuer_and_serial_number":
                match = (cert.issuer == sid.chosen["issuer"]
                         and cert.serial_number == sid.chosen["serial_number"].native)
            else:
                match = cert.key_identifier == sid.chosen.native
            if match:
                return hashlib.sha256(cert.dump()).hexdigest()
    except Exception:  # noqa: BLE001 - any parse failure is "unreadable", reported as a check
        return None
    return None


def expected_manifest_signer_sha256(manifest: Manifest) -> str:
    """Whose certificate must have signed the manifest: the last reviewer, else the digitiser."""
    if manifest.reviews:
        return manifest.reviews[-1].reviewer.cert_sha256
    return manifest.digitiser.cert_sha256


def _record_problems(manifest: Manifest) -> list[str]:
    problems: list[str] = []
    docs = {d.file: d for d in manifest.documents if d.file}
    last: dict[tuple[str, str], tuple[ReviewChange, str, str]] = {}
    previous_time = manifest.created_at
    for number, record in enumerate(manifest.reviews, 1):
        if record.reviewed_at < previous_time:
            problems.append(f"review {number} is dated before what it reviewed")
        previous_time = record.reviewed_at
        when = record.reviewed_at.isoformat()
        for change in record.changes:
            doc = docs.get(change.file)
            if doc is None:
                problems.append(f"review {number} names an unknown file {change.file!r}")
                continue
            if change.page is not None and change.page not in {p.page_index for p in doc.pages}:
                problems.append(f"review {number}: {change.file} has no page {change.page}")
            if change.field is None:
                continue
            known = {e.field for e in doc.extraction} | {n for n, _ in art9_values(
                getattr(doc, "art9", None))}
            if change.field not in known:
                problems.append(f"review {number}: {change.file} has no field {change.field!r}")
                continue
            last[(change.file, change.field)] = (change, record.reviewer.full_name, when)
    for doc in manifest.documents:
        for name, item in art9_values(getattr(doc, "art9", None)):
            problems.extend(_art9_problems(doc.file or "", name, item, last.get(
                (doc.file or "", name))))
        for entry in doc.extraction:
            touched = last.get((doc.file or "", entry.field))
            if touched is None:
                if entry.reviewed_by is not None or entry.machine_value is not None:
                    problems.append(f"{doc.file} {entry.field}: marked reviewed, but no review "
                                    "records it")
                continue
            change, name, when = touched
            if entry.reviewed_by != name or (entry.reviewed_at and
                                             entry.reviewed_at.isoformat() != when):
                problems.append(f"{doc.file} {entry.field}: reviewer or time differs from the "
                                "review record")
            if entry.value != change.value:
                problems.append(f"{doc.file} {entry.field}: value differs from the review record")
            if entry.needs_review:
                problems.append(f"{doc.file} {entry.field}: reviewed but still flagged")
            if entry.source == "manual" and entry.machine_value is None and any(
                    c.machine_value is not None for r in manifest.reviews for c in r.changes
                    if (c.file, c.field) == (doc.file, entry.field)):
                problems.append(f"{doc.file} {entry.field}: the machine reading was dropped")
    return problems


def _art9_problems(file: str, name: str, item: dict[str, object],
                   touched: tuple[ReviewChange, str, str] | None) -> list[str]:
    value = item.get("value")
    shown = None if value is None else str(value)
    if touched is None:
        if item.get("source") == "manual" or item.get("entered_by"):
            return [f"{file} {name}: entered by hand, but no review records it"]
        return []
    change, reviewer, _ = touched
    problems = []
    if change.value != shown:
        problems.append(f"{file} {name}: value differs from the review record")
    if item.get("needs_review"):
        problems.append(f"{file} {name}: reviewed but still flagged")
    corrected = change.action == "correct"
    if corrected and (item.get("source") != "manual" or item.get("entered_by") != reviewer):
        problems.append(f"{file} {name}: a person's value must say manual and who entered it")
    return problems


def changed_fields(manifest: Manifest) -> list[tuple[ReviewChange, str, str]]:
    """Every correction by a person, latest per field: (change, reviewer name, ISO time)."""
    latest: dict[tuple[str, str], tuple[ReviewChange, str, str]] = {}
    for record in manifest.reviews:
        for change in record.changes:
            if change.action == "correct" and change.field is not None:
                latest[(change.file, change.field)] = (change, record.reviewer.full_name,
                                                       record.reviewed_at.isoformat())
    return list(latest.values())


def check_review(manifest: Manifest, signature: bytes | None, lang: str = "vi") -> list[Check]:
    """Verify's checks for the review record (see the module docstring)."""
    if not manifest.reviews:
        return []
    checks: list[Check] = []
    last = manifest.reviews[-1]
    name = escape_control(last.reviewer.full_name)
    signer = manifest_signer_sha256(signature) if signature is not None else None
    if signer is None:
        checks.append(Check(name="review:signer", ok=False,
                            message=_t("signer_unreadable", lang),
                            exit_code=int(ExitCode.VERIFY_REVIEW)))
    elif signer != last.reviewer.cert_sha256:
        checks.append(Check(name="review:signer", ok=False, message=_t("signer_bad", lang,
                                                                       name=name),
                            exit_code=int(ExitCode.VERIFY_REVIEW),
                            details={"signer_sha256": signer,
                                     "reviewer_sha256": last.reviewer.cert_sha256}))
    else:
        checks.append(Check(name="review:signer", ok=True,
                            message=_t("signer_ok", lang, name=name)))
    problems = _record_problems(manifest)
    if problems:
        checks.append(Check(name="review:record", ok=False,
                            message=_t("record_bad", lang, detail=escape_control(problems[0])),
                            exit_code=int(ExitCode.VERIFY_REVIEW),
                            details={str(i): escape_control(p) for i, p in enumerate(problems)}))
    else:
        changes = [c for r in manifest.reviews for c in r.changes]
        actions = [c.action for c in changes]
        checks.append(Check(name="review:record", ok=True, message=_t(
            "record_ok", lang, count=len(manifest.reviews), name=name,
            time=format_vn_time(last.reviewed_at), corrected=actions.count("correct"),
            confirmed=actions.count("confirm"),
            accepted=sum(c.action == "accept" and c.page is not None for c in changes),
            rescan=actions.count("rescan"))))
    for change, who, when in changed_fields(manifest):
        shown_time = format_vn_time(datetime.fromisoformat(when))
        field = change.field or ""
        machine, value = masked_value(field, change.machine_value), masked_value(field, change.value)
        checks.append(Check(
            name=f"review:{escape_control(change.file)}:{escape_control(field)}",
            ok=True,
            message=_t("changed", lang, machine=_quote(machine), value=_quote(value),
                       name=escape_control(who), time=shown_time),
            details={"machine_value": machine or "", "value": value or "",
                     "reviewer": who, "reviewed_at": when}))
    for file, acceptance in document_acceptances(manifest).items():
        checks.append(Check(
            name=f"review:{escape_control(file)}:accepted", ok=True,
            message=_t("accepted", lang, name=escape_control(acceptance.reviewer),
                       time=format_vn_time(acceptance.reviewed_at),
                       reason=escape_control(acceptance.change.reason or "")),
            details={"reviewer": acceptance.reviewer,
                     "reviewed_at": acceptance.reviewed_at.isoformat(),
                     "reason": acceptance.change.reason or ""}))
    return checks


_ID = re.compile(r"\d{12}")
_BIRTH_DATE = re.compile(r"(^|[._])(dob|date_of_birth|birth_date)($|_)")


def masked_value(field: str, value: str | None) -> str | None:
    """A value as a console shows it: 12-digit personal IDs and dates of birth masked (the
    manifest, the report and the review page keep them in full)."""
    if value is None:
        return None
    if _BIRTH_DATE.search(field):
        return mask_date(value)
    return _ID.sub(lambda m: mask_id(m.group(0)), value)


def _quote(value: str | None) -> str:
    if value is None:
        return "—"
    text = escape_control(value.replace("\n", "; "))
    return f"“{text if len(text) <= 80 else text[:77] + '…'}”"
