"""Run the 15 real scans of ../shared/real-scans through the CLI and score what comes out.

    .venv/bin/python bench/real.py [--ids r01,r05] [--out DIR] [--no-verapdf]

For each document, as a clerk would meet it:
1. `digitize run rNN --out OUT` with the default profile. Already-signed or text PDFs are
   refused (exit 18), encrypted ones too (exit 17); then the same with `--rescan`.
   Below-floor scans must be refused with exit 21 naming the page and the resolution.
2. For a bundle: `digitize verify`, veraPDF on every PDF (if available), field accuracy
   against truth.json (issuing body, number/notation, date, document type, trích yếu; a field
   flagged for review counts as "not wrong"), the same figures inside the manifest's Art. 9
   block, and order-free word recall of page 1's text layer against body.gt.txt.
3. The originals' SHA-256 must be unchanged afterwards.

Prints one JSON line per document, then the table and the totals, which also go to
``bench/results/real.md`` (machine, versions, date).

Nothing here knows the documents: no file names, hashes or page numbers are used by the tool.
How to read it: a header field equal to the truth (normalised: NFC, spaces, case, the old/new
tone placement of "Uỷ"/"Hoà") is "right", flagged for review or not; one that is not equal
but flagged is "flagged" (a person will check it), otherwise "missing" or "confidently
wrong" (what the targets limit). In the Art. 9 block "right" also needs no review flag.
Fields the truth marks uncertain are skipped. Body recall is order-free word
recall of page 1 only. No comparison with another tool. Seconds per document include the CLI's
start-up and, for a refused PDF, the second run with ``--rescan``; the runs use the default
profile's workers (every core) one document at a time, and are indicative only on a shared
machine. Excluded from the seconds: verification, veraPDF and scoring.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "real-scans"
sys.path.insert(0, str(REPO))

from bench.results import write_results  # noqa: E402
from digitize.util import sha256_file  # noqa: E402

FIELDS = ("organ", "number", "notation", "date", "doc_type", "subject")


def norm(text: str | None) -> str:
    text = unicodedata.normalize("NFC", text or "")
    text = text.replace("Ủy", "Uỷ").replace("ỦY", "UỶ").replace("Hòa", "Hoà").replace("HÒA", "HOÀ")
    return re.sub(r"\s+", " ", text).strip().casefold()


def words(text: str) -> list[str]:
    return re.findall(r"\w+", unicodedata.normalize("NFC", text).casefold())


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "digitize", *args], capture_output=True,
                          text=True, timeout=1800)


def field_verdicts(manifest: dict, truth: dict) -> dict[str, str]:
    """'right', 'flagged' (needs review: not wrong), 'missing' or 'wrong' per field."""
    header = truth["header"]
    extraction: dict[str, dict] = {}
    for doc in manifest["documents"]:
        for entry in doc["extraction"]:
            extraction.setdefault(entry["field"], entry)
    uncertain = {u["field"].split(".")[-1] for u in truth.get("uncertain", [])}
    expected = {
        "organ": [norm(" ".join(header.get("issuer_lines") or [])),
                  norm((header.get("issuer_lines") or [""])[-1]),
                  # the issuer under a parent organ (e.g. a university under its ministry)
                  norm(" ".join((header.get("issuer_lines") or [])[1:]))],
        "number": [norm(header.get("number"))],
        "notation": [norm(header.get("notation"))],
        "date": [header.get("date") or ""],
        "doc_type": [norm(truth["document"]["doc_type"])],
        "subject": [norm(header.get("title"))],
    }
    ours = {"organ": "organ_name", "number": "code_number", "notation": "code_notation",
            "date": "issued_date", "doc_type": "type_name", "subject": "subject"}
    verdicts = {}
    for name in FIELDS:
        if name in uncertain:
            verdicts[name] = "skipped"
            continue
        entry = extraction.get(ours[name])
        if entry is None:
            verdicts[name] = "missing"
        elif norm(entry["value"]) in expected[name] or entry["value"] in expected[name]:
            verdicts[name] = "right"
        elif entry.get("needs_review"):
            verdicts[name] = "flagged"
        else:
            verdicts[name] = "wrong"
    return verdicts


ART9 = ("issuing_body", "number_notation", "issued_date", "summary")


def art9_verdicts(manifest: dict, truth: dict) -> dict[str, str]:
    """The header figures inside the Art. 9 block (TT 01/2023 Art. 9): right / flagged /
    missing / wrong per value, as for the header fields."""
    header = truth["header"]
    art9 = manifest["documents"][0].get("art9") or {}
    issuer = header.get("issuer_lines") or []
    number, notation = header.get("number"), header.get("notation")
    uncertain = {u["field"].split(".")[-1] for u in truth.get("uncertain", [])}
    expected = {
        "issuing_body": [norm(" ".join(issuer)), norm(issuer[-1] if issuer else ""),
                         norm(" ".join(issuer[1:]))],
        "number_notation": None if uncertain & {"number", "notation"} else (number, notation),
        "issued_date": None if "date" in uncertain else [header.get("date") or ""],
        "summary": [norm(header.get("title"))],
    }
    verdicts = {}
    for key in ART9:
        wanted = expected[key]
        value = art9.get(key) or {}
        ours = value.get("value")
        if wanted is None:
            verdicts[key] = "skipped"
            continue
        if ours is None:
            verdicts[key] = "flagged" if value.get("needs_review") else "missing"
            continue
        if key == "number_notation":
            n, no = wanted
            right = bool(n and no) and norm(ours).startswith(norm(n) + "/") and norm(
                ours).endswith("/" + norm(no))
        else:
            right = norm(ours) in wanted or ours in wanted
        verdicts[key] = ("right" if right and not value.get("needs_review") else
                         "flagged" if value.get("needs_review") else "wrong")
    return verdicts


def body_recall(pdf: Path, body_gt: Path) -> float:
    text = subprocess.run(["pdftotext", "-f", "1", "-l", "1", "-enc", "UTF-8", str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout
    ours: dict[str, int] = {}
    for word in words(text):
        ours[word] = ours.get(word, 0) + 1
    reference = words(body_gt.read_text(encoding="utf-8"))
    hit = 0
    for word in reference:
        if ours.get(word, 0) > 0:
            ours[word] -= 1
            hit += 1
    return hit / max(1, len(reference))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", default="", help="comma-separated ids, e.g. r01,r05")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-verapdf", action="store_true")
    args = parser.parse_args()
    ids = [i for i in args.ids.split(",") if i] or sorted(p.name for p in REAL.glob("r[0-9]*"))
    out = args.out or Path(tempfile.mkdtemp(prefix="digitize-real-"))
    rows = []
    totals = {"right": 0, "flagged": 0, "missing": 0, "wrong": 0, "skipped": 0}
    art9_totals = dict(totals)
    for doc_id in ids:
        folder = REAL / doc_id
        truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
        originals = {p: sha256_file(p) for p in folder.iterdir()}
        started = time.monotonic()
        first = run_cli("run", str(folder), "--out", str(out))
        outcome, code, rescanned = "bundle", first.returncode, False
        if first.returncode in (17, 18):
            rescanned = True
            second = run_cli("run", str(folder), "--out", str(out), "--rescan")
            code = second.returncode
            message = second.stderr.strip().splitlines()[-1] if second.returncode else ""
        else:
            message = first.stderr.strip().splitlines()[-1] if first.returncode else ""
        seconds = time.monotonic() - started
        row: dict = {"id": doc_id, "first_exit": first.returncode, "rescan": rescanned,
                     "exit": code, "seconds": round(seconds, 1)}
        if code != 0:
            outcome = "refused"
            row["message"] = message
        else:
            bundle = out / doc_id
            verify = run_cli("verify", str(bundle), "--lang", "en", "--allow-demo")
            # demo bundles are B-B: 66 = every check passed, revocation not checkable
            row["verify"] = verify.returncode in (0, 66)
            manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
            verdicts = field_verdicts(manifest, truth)
            for verdict in verdicts.values():
                totals[verdict] += 1
            row["fields"] = verdicts
            row["art9"] = art9_verdicts(manifest, truth)
            row["art9_type"] = (manifest["documents"][0].get("art9") or {}).get("paper_type_key")
            for verdict in row["art9"].values():
                art9_totals[verdict] += 1
            pdf = bundle / manifest["documents"][0]["file"]
            row["body_recall"] = round(body_recall(pdf, folder / "body.gt.txt"), 3)
            if not args.no_verapdf:
                from tests.helpers_verapdf import verapdf_validate

                ok, failed = verapdf_validate(pdf, "2u" if manifest["documents"][0]
                                              ["pdfa_profile"].endswith("2u") else "2b")
                row["verapdf"] = ok
        row["outcome"] = outcome
        row["originals_unchanged"] = all(sha256_file(p) == h for p, h in originals.items())
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)

    scored = sum(totals[k] for k in ("right", "flagged", "missing", "wrong"))
    table = ["| id | first exit | rescan | result | verify | veraPDF | fields right/flagged/"
             "missing/wrong | body recall | s |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        fields = row.get("fields", {})
        counts = "/".join(str(sum(1 for v in fields.values() if v == k))
                          for k in ("right", "flagged", "missing", "wrong")) if fields else "—"
        result = row["outcome"] if row["outcome"] == "bundle" else f"refused ({row['exit']})"
        table.append(f"| {row['id']} | {row['first_exit']} | {'yes' if row['rescan'] else 'no'} | "
                     f"{result} | {row.get('verify', '—')} | {row.get('verapdf', '—')} | "
                     f"{counts} | {row.get('body_recall', '—')} | {row['seconds']} |")  # fmt: skip
    summary = []
    if scored:
        summary.append(f"fields: {totals['right']} right, {totals['flagged']} flagged for review, "
                       f"{totals['missing']} missing, {totals['wrong']} confidently wrong "
                       f"(of {scored}; {totals['skipped']} skipped as uncertain in the truth)")
        summary.append(f"right or flagged: {(totals['right'] + totals['flagged']) / scored:.1%}; "
                       f"confidently wrong: {totals['wrong'] / scored:.1%}")
    art9_scored = sum(art9_totals[k] for k in ("right", "flagged", "missing", "wrong"))
    if art9_scored:
        types = sorted({r.get("art9_type") or "—" for r in rows if "art9" in r})
        summary.append(f"Art. 9 block (paper types {', '.join(types)}): {art9_totals['right']} "
                       f"right, {art9_totals['flagged']} flagged, {art9_totals['missing']} "
                       f"missing, {art9_totals['wrong']} confidently wrong (of {art9_scored}; "
                       f"{art9_totals['skipped']} skipped)")
    recalls = [r["body_recall"] for r in rows if "body_recall" in r]
    if recalls:
        summary.append(f"body word recall (page 1, order-free): mean "
                       f"{sum(recalls) / len(recalls):.1%}, min {min(recalls):.1%}")
    print("\n" + "\n".join(table))
    if summary:
        print("\n" + "\n".join(summary))
    unchanged = all(r["originals_unchanged"] for r in rows)
    path = write_results("real", "The real scans through the CLI (bench/real.py)", [
        ("Per document", "\n".join(table)),
        ("Totals", "\n".join(f"- {line}" for line in summary)
         + f"\n- originals unchanged: {'all' if unchanged else 'NOT ALL'} of {len(rows)}"),
    ])  # fmt: skip
    print(f"results: {path}")
    print(f"outputs in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
