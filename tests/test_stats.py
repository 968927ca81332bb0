"""``digitize stats`` over real signed bundles: every measure against values computed here from
what the test built, exclusions, copies, re-dos, the settlement, the index and the writers.

The bundles are made by the real pipeline (``run_dossier``) from small synthetic dossiers,
signed by three personal identities of the test PKI (hoa: RSA, en: ECDSA, chau: issued here
by the test CA) and one DEMO identity. Some manifests are re-signed by their own digitiser with
an earlier ``created_at`` (standing for work done that day) or with fields a person corrected
(R36, ``source: manual``). Trust comes only from the test PKI root passed explicitly.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from digitize.pipeline import run_dossier
from digitize.profiles import load_profile
from digitize.settings import SigningSettings, StatsSettings
from digitize.sign import open_signer
from digitize.stats import StatsRequest, TrustOptions, build_report, stats_trust_roots
from digitize.stats.export import to_csv, to_json_data, to_xlsx
from digitize.stats.html import to_html
from digitize.util import VN_TZ
from tests import helpers_pki
from tests.helpers_pki import PkiServices
from tests.helpers_stats import (
    DossierSpec,
    PageSpec,
    issue_person,
    open_pkcs12_signer,
    raw_manifest,
    resign_manifest,
    signing_clock,
    tamper_copy,
    write_dossier,
    zip_copy,
)

vn_pki = helpers_pki.vn_pki  # the session's test PKI (shared with other modules)

O1, O2 = "000.00.12.H62", "000.00.15.H62"
INJECTION = '=HYPERLINK("http://x.vn")'
NAMES = {"hoa": "Nguyễn Thị Hoa", "en": "Phạm Thị Én", "chau": "Vũ Minh Châu"}
JAN = datetime(2026, 1, 15, 10, 0, tzinfo=VN_TZ)
FEB_B2 = datetime(2026, 2, 3, 9, 0, tzinfo=VN_TZ)
FEB_B3 = datetime(2026, 2, 10, 14, 0, tzinfo=VN_TZ)


@dataclass
class Built:
    """What the test made: per counted bundle its known facts; the paths of the others."""

    root: Path
    bundles: dict[str, Path]  # B1..B5 (counted), B6 tampered, B7 zip of B2, B8 demo
    known: dict[str, dict[str, Any]]  # per counted bundle, the facts the test chose
    roots: tuple[Path, ...]  # the test PKI root (trusted)


# When each dossier was signed (its scans were captured the minutes of KNOWN before): B1..B3
# on earlier days, so the bundles fall on other days and months; the rest now.
SIGNED_EARLIER = {"B1": JAN - timedelta(minutes=30), "B2": FEB_B2 - timedelta(minutes=30),
                  "B3": FEB_B3 - timedelta(minutes=30)}


def _spec_pages(base: dict[str, datetime]) -> dict[str, DossierSpec]:
    def t(name: str, minutes: int) -> datetime:
        return base[name] - timedelta(minutes=minutes)

    return {
        "B1": DossierSpec("000.00.12.H62-260115-0001", "1.001612", O1, (
            (PageSpec("rgb", "A4", t("B1", 180)), PageSpec("rgb", "A4", t("B1", 179))),
            (PageSpec("gray", "A3", t("B1", 175)),),
        ), seed=10),
        "B2": DossierSpec("000.00.12.H62-260203-0002", "1.000001", O1, (
            (PageSpec("rgb", "A4", t("B2", 95), note_slip=True),),
        ), seed=20),
        "B3": DossierSpec("000.00.15.H62-260210-0003", "1.001612", O2, (
            (PageSpec("bilevel", "A5", t("B3", 61)),),
            (),
        ), seed=30),
        "B4": DossierSpec("HS-2026-0004", INJECTION, None, (
            (PageSpec("rgb", "A4", t("B4", 15)),),
        ), seed=40),
        "B8": DossierSpec("DEMO-0008", "1.001612", O1, (
            (PageSpec("rgb", "A4", t("B8", 5)),),
        ), seed=80),
    }


# What each counted bundle holds, by construction (sizes: class -> (physical pages, images)).
KNOWN: dict[str, dict[str, Any]] = {
    "B1": dict(who="hoa", office=O1, procedure="1.001612", components=2, not_digitised=0,
               pages=3, images=3, sizes={"A4": (2, 2), "A3": (1, 1)}, colour=(2, 1, 0),
               reviewed=0, docs_captured=[[180, 179], [175]]),
    "B2": dict(who="hoa", office=O1, procedure="1.000001", components=1, not_digitised=0,
               pages=1, images=2, sizes={"A4": (1, 2)}, colour=(2, 0, 0), reviewed=2,
               docs_captured=[[95]]),
    "B3": dict(who="en", office=O2, procedure="1.001612", components=2, not_digitised=1,
               pages=1, images=1, sizes={"other": (1, 1)}, colour=(0, 0, 1), reviewed=0,
               docs_captured=[[61]]),
    "B4": dict(who="chau", office="profile:buu-dien-chau", procedure=INJECTION, components=1,
               not_digitised=0, pages=1, images=1, sizes={"A4": (1, 1)}, colour=(1, 0, 0),
               reviewed=0, docs_captured=[[15]]),
    "B5": dict(who="en", office=O2, procedure="1.001612", components=2, not_digitised=1,
               pages=1, images=1, sizes={"other": (1, 1)}, colour=(0, 0, 1), reviewed=0,
               docs_captured=[[61]]),
}


@pytest.fixture(scope="module")
def built(vn_pki: PkiServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("stats")
    now = datetime.now(VN_TZ).replace(microsecond=0)
    p12 = {"hoa": vn_pki.pkcs12_path("hoa"), "en": vn_pki.pkcs12_path("en"),
           "chau": issue_person(vn_pki, "chau", NAMES["chau"], "001190000009")}
    # one open per identity, each with its own password in the environment (read once)
    signers = {who: open_pkcs12_signer(path, (vn_pki.root_cert,)) for who, path in p12.items()}
    signers["demo"] = open_signer(SigningSettings(backend="demo"))
    base = {name: SIGNED_EARLIER.get(name, now) for name in ("B1", "B2", "B3", "B4", "B8")}
    base["B5"] = base["B3"]  # the same scans, digitised again now
    specs = _spec_pages(base)
    dossiers = root / "dossiers"
    out = root / "bundles"
    bundles: dict[str, Path] = {}
    try:
        for name, who in (("B1", "hoa"), ("B2", "hoa"), ("B3", "en"), ("B4", "chau"),
                          ("B8", "demo")):
            folder = write_dossier(dossiers, specs[name])
            profile = load_profile(None, {"name": f"buu-dien-{who}", "pipeline": {"workers": 1}})
            # a bundle of an earlier day: its PDFs signed then, its manifest dated that day
            # below (verify requires the manifest to be made after the PDFs were signed)
            with signing_clock(SIGNED_EARLIER.get(name)):
                result = run_dossier(folder, out, profile=profile, signer=signers[who])
            bundles[name] = result.bundle_path
        # B5: the same dossier as B3 digitised again (a re-do), later than B3.
        redo = run_dossier(dossiers / specs["B3"].code, root / "redo",
                           profile=load_profile(None, {"name": "buu-dien-en",
                                                       "pipeline": {"workers": 1}}),
                           signer=signers["en"])
        bundles["B5"] = shutil.move(redo.bundle_path, out / "redo")
        resign_manifest(bundles["B1"], signers["hoa"],
                        lambda m: m.update(created_at=JAN.isoformat()))

        def reviewed(m: dict[str, Any]) -> None:
            m["created_at"] = FEB_B2.isoformat()
            doc = m["documents"][0]
            after = datetime.fromisoformat(doc["signature"]["signed_at"]) + timedelta(minutes=5)
            doc["extraction"] = [*doc["extraction"], *(
                {"field": f, "value": v, "page": 1, "confidence": 1.0, "source": "manual",
                 "started_at": after.isoformat()} for f, v in (("code_number", "05"),
                                                               ("code_notation", "QĐ-UBND")))]

        resign_manifest(bundles["B2"], signers["hoa"], reviewed)
        resign_manifest(bundles["B3"], signers["en"],
                        lambda m: m.update(created_at=FEB_B3.isoformat()))
        bundles["B6"] = tamper_copy(bundles["B1"], out / "tampered" / "B1-edited",
                                    lambda m: m.update(profile="forged"))
        bundles["B7"] = zip_copy(bundles["B2"], out / "B2-copy.zip")
    finally:
        for signer in signers.values():
            signer.close()
    known = {}
    for name, facts in KNOWN.items():
        raw = raw_manifest(bundles[name])
        captured_docs = [[base[name] - timedelta(minutes=m) for m in doc] for doc in
                         facts["docs_captured"]]
        signed = [datetime.fromisoformat(d["signature"]["signed_at"])
                  for d in raw["documents"] if d.get("signature")]
        confidences = [p["ocr_mean_confidence"] for d in raw["documents"] for p in d["pages"]]
        known[name] = {**facts, "digitiser": NAMES[facts["who"]],
                       "created_at": datetime.fromisoformat(raw["created_at"]).astimezone(VN_TZ),
                       "needs_review": raw["needs_review"], "confidences": confidences,
                       "durations": [(s - min(c)).total_seconds()
                                     for s, c in zip(signed, captured_docs, strict=True)]}
    yield Built(root=out, bundles=bundles, known=known, roots=(vn_pki.root_cert,))


def _report(built: Built, index_dir: Path | None = None, **kw: Any) -> Any:
    """The report of ``built``; verdicts shared through one index per module unless
    ``index_dir`` names another (the index has its own test below)."""
    trust = kw.pop("trust", TrustOptions(roots=built.roots, lang="en"))
    index = (index_dir or built.root.parent) / "index.sqlite"
    return build_report(StatsRequest(paths=(built.root,), trust=trust, index_path=index, **kw))


def _expected(known: dict[str, dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """The measures of a group of bundles, summed here from what the test built."""
    facts = [known[n] for n in names]
    durations = sorted(d for f in facts for d in f["durations"])
    confidences = [c for f in facts for c in f["confidences"]]
    size = lambda cls, i: sum(f["sizes"].get(cls, (0, 0))[i] for f in facts)  # noqa: E731
    return {
        "dossiers": len(facts),
        "redone": sum(n == "B5" for n in names),
        "components": sum(f["components"] for f in facts),
        "not_digitised": sum(f["not_digitised"] for f in facts),
        "pages": sum(f["pages"] for f in facts),
        "images": sum(f["images"] for f in facts),
        "note_slip_images": sum(f["images"] - f["pages"] for f in facts),
        "pages_a4": size("A4", 0), "pages_a3": size("A3", 0), "pages_other": size("other", 0),
        "images_a4": size("A4", 1), "images_a3": size("A3", 1), "images_other": size("other", 1),
        "images_colour": sum(f["colour"][0] for f in facts),
        "images_gray": sum(f["colour"][1] for f in facts),
        "images_bilevel": sum(f["colour"][2] for f in facts),
        "needs_review": sum(f["needs_review"] for f in facts),
        "needs_review_share": round(sum(f["needs_review"] for f in facts) / len(facts), 4),
        "reviewed_fields": sum(f["reviewed"] for f in facts),
        "ocr_mean_confidence": round(sum(confidences) / len(confidences), 2),
        "signed_documents": len(durations),
        "scan_to_signature_median_s": round(statistics.median(durations), 1),
        "scan_to_signature_p90_s": round(durations[math.ceil(0.9 * len(durations)) - 1], 1),
    }


def _row_dict(row: Any) -> dict[str, Any]:
    return {k: v for k, v in row.model_dump().items() if k not in ("group", "keys")}


def _assert_measures(row: Any, expected: dict[str, Any]) -> None:
    got = _row_dict(row)
    # a mean of two-decimal page values: summed in another order here, so not bit-identical
    assert got.pop("ocr_mean_confidence") == pytest.approx(expected["ocr_mean_confidence"],
                                                            abs=0.01)
    assert got == {k: v for k, v in expected.items() if k != "ocr_mean_confidence"}


def test_totals_match_what_was_built(built: Built) -> None:
    """R5/R6 images vs physical pages, R10 sizes, R11 colour, R15 review, R21 scan time,
    R36 manual fields; only verifying bundles count (B6 edited, B8 demo excluded; B7 a copy)."""
    report = _report(built)
    total = report.main.total
    _assert_measures(total, _expected(built.known, ["B1", "B2", "B3", "B4", "B5"]))
    # the same, literally, for the figures fixed by construction
    assert (total.dossiers, total.pages, total.images, total.note_slip_images) == (5, 7, 8, 1)
    assert (total.pages_a4, total.pages_a3, total.pages_other) == (4, 1, 2)
    assert (total.images_colour, total.images_gray, total.images_bilevel) == (5, 1, 2)
    assert (total.reviewed_fields, total.redone, total.not_digitised) == (2, 1, 2)
    excluded = {Path(e.path): e for e in report.excluded}
    assert set(excluded) == {built.bundles["B6"], built.bundles["B8"]}
    assert excluded[built.bundles["B6"]].exit_code in (61, 62)  # hash or signature: edited
    assert "manifest.json" in excluded[built.bundles["B6"]].reason
    assert "DEMO" in excluded[built.bundles["B8"]].reason
    assert [(Path(c.path), Path(c.copy_of)) for c in report.copies] == [
        (built.bundles["B7"], built.bundles["B2"])]
    assert report.verified and report.banner is None


@pytest.mark.parametrize("key", ["digitiser", "office", "procedure", "day", "month"])
def test_each_grouping_matches_what_was_built(built: Built, key: str) -> None:
    report = _report(built, by=(key,))

    def value(name: str) -> Any:
        k = built.known[name]
        return {"digitiser": k["digitiser"], "office": k["office"], "procedure": k["procedure"],
                "day": k["created_at"].date(),
                "month": k["created_at"].strftime("%Y-%m")}[key]

    members: dict[Any, list[str]] = {}
    for name in built.known:
        members.setdefault(value(name), []).append(name)
    rows = {dict(r.keys)[key]: r for r in report.main.rows}
    assert set(rows) == set(members)
    for val, names in members.items():
        _assert_measures(rows[val], _expected(built.known, names))
        assert rows[val].group == (val.isoformat() if isinstance(val, date) else val)


def test_combined_groups_join_their_values(built: Built) -> None:
    report = _report(built, by=("digitiser", "month"))
    groups = {r.group: r for r in report.main.rows}
    assert f"{NAMES['hoa']} / 2026-01" in groups and f"{NAMES['hoa']} / 2026-02" in groups
    _assert_measures(groups[f"{NAMES['hoa']} / 2026-02"], _expected(built.known, ["B2"]))
    # one extra grouping per key for the workbook
    assert [g.by for g in report.groupings] == [("digitiser", "month"), ("digitiser",),
                                                 ("month",)]


def test_period_is_inclusive_and_redo_status_comes_from_all_bundles(built: Built) -> None:
    report = _report(built, date_from=date(2026, 2, 1), date_to=date(2026, 2, 28))
    _assert_measures(report.main.total, _expected(built.known, ["B2", "B3"]))
    only_redo = _report(built, date_from=built.known["B5"]["created_at"].date(),
                        date_to=built.known["B5"]["created_at"].date(), by=("office",))
    o2 = {r.group: r for r in only_redo.main.rows}[O2]
    assert (o2.dossiers, o2.redone) == (1, 1)  # B3 (February) still makes B5 a re-do


def test_demo_bundles_count_only_when_allowed(built: Built) -> None:
    roots = stats_trust_roots(built.roots, ())
    assert roots == built.roots  # the demo root is never added: allow_demo decides
    report = _report(built, trust=TrustOptions(roots=roots, allow_demo=True, lang="en"))
    assert report.demo_bundles == 1
    assert report.main.total.dossiers == 6
    assert [Path(e.path) for e in report.excluded] == [built.bundles["B6"]]
    without = _report(built, trust=TrustOptions(roots=roots, lang="en"))
    assert without.demo_bundles == 0 and without.main.total.dossiers == 5


def test_no_trust_roots_excludes_everything(built: Built) -> None:
    report = _report(built, trust=TrustOptions(roots=(), lang="en"))
    assert report.main.total.dossiers == 0
    assert len(report.excluded) == report.bundles_found == 8
    codes = {Path(e.path): e.exit_code for e in report.excluded}
    assert codes.pop(built.bundles["B6"]) in (61, 62)  # edited: fails before trust
    assert set(codes.values()) == {63}  # untrusted


def test_settlement_multiplies_quantities_by_the_profile_rates(built: Built) -> None:
    rates = {"per_dossier": {"amount": 5000, "source": "QĐ 99/QĐ-UBND (thử nghiệm), mục 1"},
             "a4": {"amount": "1200.25", "source": "QĐ 99/QĐ-UBND, mục 2"},
             "a3": {"amount": 2000, "source": "QĐ 99/QĐ-UBND, mục 3"},
             "other": {"amount": 900, "source": "QĐ 99/QĐ-UBND, mục 4"}}
    settings = StatsSettings.model_validate({"rates": rates})
    s = _report(built, settings=settings).settlement
    lines = {(x.office, x.month): x for x in s.lines}
    now_month = built.known["B4"]["created_at"].strftime("%Y-%m")
    b1 = lines[(O1, "2026-01")]  # 1 dossier, 2 A4 images, 1 A3 image
    assert (b1.dossiers, b1.pages_a4, b1.pages_a3, b1.pages_other) == (1, 2, 1, 0)
    # 2 × 1200.25 = 2400.50 → 2401 (half up, whole đồng)
    assert (b1.amount_dossiers, b1.amount_a4, b1.amount_a3, b1.total) == (
        Decimal(5000), Decimal(2401), Decimal(2000), Decimal(9401))
    assert lines[(O1, "2026-02")].total == Decimal(7401)  # B2: note-slip page = 2 images
    assert lines[(O1, "")].total == Decimal(16802)  # office subtotal
    assert lines[(O2, "2026-02")].total == Decimal(5900)  # B3: 1 other page
    redo = lines[(O2, now_month)]  # B5 is a re-do: not paid again
    assert (redo.dossiers, redo.redone_unpaid, redo.total) == (0, 1, Decimal(0))
    assert lines[("profile:buu-dien-chau", now_month)].total == Decimal(6200)  # 5000 + 1200
    assert s.total.total == Decimal(16802 + 5900 + 6200)
    assert s.missing_rates == ()
    data = to_json_data(_report(built, settings=settings))
    assert data["settlement"]["total"]["total"] == 28902
    assert data["settlement"]["rates"]["a4"] == {"amount": "1200.25",
                                                 "source": "QĐ 99/QĐ-UBND, mục 2"}
    import openpyxl

    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(_report(built, settings=settings))))[
        "settlement"]
    last = [c for c in sheet[sheet.max_row]]
    assert last[-1].value == 28902 and last[-1].data_type == "n"
    physical = StatsSettings.model_validate({"rates": {**rates, "page_basis": "physical",
                                                       "pay_redone": True}})
    s2 = _report(built, settings=physical).settlement
    lines2 = {(x.office, x.month): x for x in s2.lines}
    assert lines2[(O1, "2026-02")].pages_a4 == 1  # the page with a note slip, once
    assert lines2[(O2, now_month)].dossiers == 1  # re-do paid when the profile says so


def test_settlement_without_rates_shows_quantities_only(built: Built) -> None:
    settings = StatsSettings.model_validate(
        {"rates": {"per_dossier": {"amount": 5000, "source": "QĐ 99"}}})
    s = _report(built, settings=settings).settlement
    assert s.missing_rates == ("a4", "a3", "other")
    assert s.total.amount_dossiers == Decimal(5000 * 4)  # 5 bundles, one re-do unpaid
    assert s.total.total is None and s.total.pages_a4 == 5
    default = _report(built).settlement
    assert default.missing_rates == ("per_dossier", "a4", "a3", "other")
    assert all(line.total is None for line in (*default.lines, default.total) if line.dossiers)


def test_csv_has_stable_columns_and_is_injection_safe(built: Built) -> None:
    """Another system reads the CSV: fixed leading columns; no cell can become a formula."""
    report = _report(built, by=("procedure",))
    text = to_csv(report).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[:9] == ["verified", "group", "procedure", "dossiers", "redone",
                                 "components", "not_digitised", "pages", "images"]
    assert {"needs_review", "reviewed_fields"} <= set(rows[0])
    injected = [r for r in rows if INJECTION in r["group"]]
    assert len(injected) == 1
    assert injected[0]["group"] == "'" + INJECTION and injected[0]["procedure"] == "'" + INJECTION
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@")), cell
    assert rows[-1]["group"] == "(all)" and rows[-1]["dossiers"] == "5"
    assert all(r["verified"] == "true" for r in rows)


def test_xlsx_opens_with_typed_cells_and_frozen_headers(built: Built, tmp_path: Path) -> None:
    import openpyxl

    report = _report(built, by=("digitiser", "month"))
    path = tmp_path / "stats.xlsx"
    path.write_bytes(to_xlsx(report))
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["about", "by digitiser+month", "by digitiser", "by month",
                             "settlement", "excluded", "copies"]
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2", ws.title
    ws = wb["by digitiser+month"]
    header = [c.value for c in ws[1]]
    col = {name: i for i, name in enumerate(header)}
    data = list(ws.iter_rows(min_row=2))
    hoa_feb = next(r for r in data if r[col["group"]].value == f"{NAMES['hoa']} / 2026-02")
    assert hoa_feb[col["images"]].value == 2 and hoa_feb[col["images"]].data_type == "n"
    month = hoa_feb[col["month"]]
    assert month.is_date and month.value.date() == date(2026, 2, 1)
    assert month.number_format == "yyyy-mm"
    assert hoa_feb[col["reviewed_fields"]].value == 2
    assert isinstance(hoa_feb[col["ocr_mean_confidence"]].value, float)
    assert hoa_feb[col["verified"]].value is True
    by_procedure = openpyxl.load_workbook(io.BytesIO(to_xlsx(_report(built, by=("procedure",)))))
    injected = [c for row in by_procedure["by procedure"].iter_rows() for c in row
                if c.value == INJECTION]
    assert injected and all(c.data_type == "s" for c in injected)  # text, not a formula
    excluded = wb["excluded"]
    assert excluded.max_row == 3 and isinstance(excluded.cell(2, 3).value, int)
    about = {r[0].value: r[1].value for r in wb["about"].iter_rows(min_row=2)}
    assert about["verified"] is True and isinstance(about["generated_at"], datetime)


def test_html_report_is_self_contained_with_three_charts(built: Built) -> None:
    page = to_html(_report(built, by=("digitiser",)))
    assert page.count("<svg") == 3
    for forbidden in ("<script", "<link", "src=\"http", "url(http", "@import"):
        assert forbidden not in page
    assert NAMES["hoa"] in page and NAMES["en"] in page
    # black-and-white: hatched bars (SVG patterns) and dash patterns, not colour alone
    assert "<pattern" in page and "stroke-dasharray" in page
    by_procedure = to_html(_report(built, by=("procedure",)))
    assert "<td>=HYPERLINK(&quot;http://x.vn&quot;)</td>" in by_procedure  # escaped text


def test_no_verify_counts_edited_manifests_and_says_so(built: Built) -> None:
    report = _report(built, verify=False, trust=TrustOptions(roots=(), lang="en"))
    assert report.banner is not None and "UNVERIFIED" in report.banner
    # B6 (edited) now counts: exactly why unverified figures are marked
    assert report.main.total.dossiers == 6
    assert to_json_data(report)["verified"] is False
    assert "UNVERIFIED" in to_html(report)
    rows = list(csv.DictReader(io.StringIO(to_csv(report).decode("utf-8-sig"))))
    assert {r["verified"] for r in rows} == {"false"}


def _edit_in_place_keeping_size_and_mtime(path: Path) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_index_reuses_verdicts_and_notices_every_change(built: Built, tmp_path: Path) -> None:
    """Unchanged bundles are not verified again; an edit that keeps size and mtime is still
    seen (ctime) and re-verified; another trust set verifies again."""
    root = tmp_path / "bundles"
    shutil.copytree(built.root, root)
    copy = Built(root=root, bundles={}, known=built.known, roots=built.roots)
    first = _report(copy, tmp_path)
    assert (first.verified_now, first.reused_verdicts) == (first.bundles_found, 0)
    assert first.bundles_found == 8
    index = tmp_path / "index.sqlite"
    assert (index.stat().st_mode & 0o777) == 0o600
    second = _report(copy, tmp_path)
    assert (second.verified_now, second.reused_verdicts) == (0, 8)
    assert _row_dict(second.main.total) == _row_dict(first.main.total)
    assert second.excluded == first.excluded
    b1 = root / built.bundles["B1"].name
    pdf = next(b1.glob("*.001.pdf"))
    _edit_in_place_keeping_size_and_mtime(pdf)
    third = _report(copy, tmp_path)
    assert (third.verified_now, third.reused_verdicts) == (1, 7)
    assert any(Path(e.path) == b1 and e.exit_code == 61 for e in third.excluded)
    assert third.main.total.dossiers == first.main.total.dossiers - 1
    other_trust = _report(copy, tmp_path, trust=TrustOptions(roots=built.roots, lang="vi"))
    assert other_trust.verified_now == 8
    shutil.rmtree(b1)
    gone = _report(copy, tmp_path)
    assert gone.bundles_found == 7 and gone.verified_now == 0


def test_bundle_changed_during_verification_is_not_remembered(
        built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: a file changes while the bundle is verified; the verdict must not be
    kept (the next run verifies again)."""
    from digitize.stats import collect as collect_module

    root = tmp_path / "bundles"
    shutil.copytree(built.bundles["B4"], root / "B4")
    real = collect_module._verify

    def verify_then_touch(path: str, trust: TrustOptions) -> Any:
        report = real(path, trust)
        os.utime(Path(path) / "checksums.sha256")  # a new mtime and ctime
        return report

    monkeypatch.setattr(collect_module, "_verify", verify_then_touch)
    request = StatsRequest(paths=(root,), trust=TrustOptions(roots=built.roots, lang="en"),
                           index_path=tmp_path / "index.sqlite", workers=1)
    first = build_report(request)
    assert first.main.total.dossiers == 0
    assert [e.reason for e in first.excluded] == [
        "the bundle changed while it was being verified: run again"]
    monkeypatch.undo()
    second = build_report(request)
    assert (second.verified_now, second.main.total.dossiers) == (1, 1)


def test_cli_writes_every_format(built: Built, tmp_path: Path) -> None:
    out = {ext: tmp_path / f"r.{ext}" for ext in ("csv", "xlsx", "html")}
    cmd = [sys.executable, "-m", "digitize", "stats", str(built.root), "--by", "digitiser",
           "--by", "month", "--from", "2026-01", "--to", "2026-02", "--trust",
           str(built.roots[0]), "--index", str(tmp_path / "i.sqlite"), "--json",
           "--csv", str(out["csv"]), "--xlsx", str(out["xlsx"]), "--html", str(out["html"])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["verified"] is True and data["by"] == ["digitiser", "month"]
    assert {r["group"] for r in data["rows"]} == {
        f"{NAMES['hoa']} / 2026-01", f"{NAMES['hoa']} / 2026-02", f"{NAMES['en']} / 2026-02"}
    assert data["total"]["dossiers"] == 3 and data["total"]["reviewed_fields"] == 2
    assert {e["path"] for e in data["excluded"]} == {str(built.bundles["B6"]),
                                                      str(built.bundles["B8"])}
    assert all(e["reason"] for e in data["excluded"])
    assert all(p.is_file() and p.stat().st_size > 0 for p in out.values())
    plain = subprocess.run([*cmd[:-7], "--no-verify"], capture_output=True, text=True,
                           timeout=600)
    assert plain.returncode == 0, plain.stderr
    assert "UNVERIFIED" in plain.stdout
    bad = subprocess.run([*cmd[:5], "--from", "2026-13"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "YYYY" in bad.stderr + bad.stdout


def test_cli_choices_are_the_library_keys() -> None:
    from digitize.cli.commands_stats import GROUP_CHOICES
    from digitize.stats import GROUP_KEYS

    assert GROUP_CHOICES == GROUP_KEYS


def test_fields_a_reviewer_corrected_are_counted_once_each(sample_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """R36: ``reviewed_fields`` counts the values a person corrected, from the review record
    of ``digitize review --apply`` (header fields and Art. 9 values alike), once per
    (file, field) over every review; confirmations are not corrections. Counted by hand:
    review 1 corrects code_number (to 215, what the Art. 9 number/notation already says),
    art9.owner_id (3rd paper) and art9.fields.child_sex (1st paper) and confirms two values;
    review 2 corrects code_number again (counted once) and so changes the Art. 9
    number/notation read from that header field (216/…, a value of its own) → 4."""
    from tests.helpers_review import flagged_copy

    result, _ = sample_run
    out = tmp_path / "out"
    out.mkdir()
    bundle = flagged_copy(result.bundle_path, out)
    code = bundle.name
    doc1, doc3 = f"{code}.001.pdf", f"{code}.003.pdf"
    reviews = [
        {"fields": [{"file": doc3, "field": "code_number", "value": "215"},
                    {"file": doc3, "field": "code_notation", "confirm": True},
                    {"file": doc3, "field": "art9.owner_id", "value": "000.00.12.H62"},
                    {"file": doc1, "field": "art9.fields.child_sex", "value": "Nữ"},
                    {"file": doc1, "field": "art9.fields.child_hometown", "confirm": True}]},
        {"fields": [{"file": doc3, "field": "code_number", "value": "216"}]},
    ]
    for number, corrections in enumerate(reviews):
        path = tmp_path / f"c{number}.json"
        path.write_text(json.dumps(corrections, ensure_ascii=False), encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "digitize", "review", str(bundle),
                               "--apply", str(path)], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
    stats = subprocess.run([sys.executable, "-m", "digitize", "stats", str(out), "--allow-demo",
                            "--no-index", "--json"], capture_output=True, text=True,
                           timeout=600)
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert data["excluded"] == [] and data["total"]["dossiers"] == 1
    assert data["total"]["reviewed_fields"] == 4


def test_manual_art9_values_without_a_review_record_count_too(sample_run) -> None:  # type: ignore[no-untyped-def]
    """A value another system entered by hand (``source: manual``, no review record) is a
    correction by a person as well: here one Art. 9 value and one template field → 2."""
    from digitize.manifest import Manifest
    from digitize.stats.facts import fields_corrected_by_person

    result, _ = sample_run
    data = json.loads((result.bundle_path / "manifest.json").read_bytes())
    assert fields_corrected_by_person(Manifest.model_validate(data)) == 0
    art9 = data["documents"][0]["art9"]
    art9["owner_id"].update(value="025190000012", source="manual", entered_by="Hệ thống khác")
    next(iter(art9["fields"].values())).update(source="manual")
    assert fields_corrected_by_person(Manifest.model_validate(data)) == 2
