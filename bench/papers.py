"""Score the Art. 9 block on ../shared/papers by running the real pipeline on each dossier.

    .venv/bin/python bench/papers.py [--dossiers pd-d01,pd-d05] [--out DIR] [--write-results]

For each dossier of ../shared/papers (citizens' papers with exact Art. 9 truth):
1. The scan files of each component are copied into a fresh dossier folder (c1/, c2/ …, nothing
   else: the truth files stay behind) and `digitize run` runs on it with the default profile
   (demo identity; grayscale allowed, the papers are photocopies).
2. Each document's `art9` block in the manifest is compared with the component's truth:
   - paper type: the block's `paper_type_key` against `paper_type.key`;
   - owner ID: right (equal, not flagged), flagged (needs review) or WRONG (confidently wrong);
   - every other Art. 9 value (paper name, number, date of issue, issuing body, summary,
     validity) and every key field of the type: right / flagged / wrong. A value the truth
     has and the block leaves out or null without a flag is wrong; a value the truth lacks
     (null) that the block fills without a flag is wrong too. When the paper's type itself is
     flagged (not recognised), the key fields of its true type count as flagged: a person
     re-reads the whole paper.
   Text compares case-insensitively with whitespace and edge punctuation collapsed; dates,
   IDs and years exactly.
3. Results per paper type: right rate, right-or-flagged rate, confidently wrong count.

Nothing here is used by the tool: the pipeline never sees component.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAPERS = REPO.parent / "shared" / "papers"
RESULTS = REPO / "bench" / "results" / "papers.md"
SCAN_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".pdf"}
ART9_KEYS = ("paper_name", "number_notation", "issued_date", "issuing_body", "summary",
             "valid_until", "validity_scope")


def norm(text: object) -> str:
    value = unicodedata.normalize("NFC", str(text or ""))
    value = value.replace("Ủy", "Uỷ").replace("ủy", "uỷ").replace("Hòa", "Hoà").replace("hòa", "hoà")
    value = re.sub(r"\s*([,.;:])\s*", r"\1 ", value)
    return re.sub(r"\s+", " ", value).strip(" .,;:").casefold()


def same(ours: object, truth: object, variants: list[str] | None = None) -> bool:
    if ours is None or truth is None:
        return ours is None and truth is None
    options = [truth, *(variants or [])]
    return any(norm(ours) == norm(option) for option in options)


def verdict(entry: dict | None, truth: object, variants: list[str] | None = None) -> str:
    """right / flagged / wrong for one value of the block against the truth."""
    value = entry.get("value") if entry else None
    flagged = bool(entry and entry.get("needs_review"))
    if same(value, truth, variants):
        return "flagged" if flagged and value is not None else "right"
    return "flagged" if flagged else "wrong"


def score_component(art9: dict | None, truth: dict) -> dict[str, str]:
    """Verdict per scored item: type, owner_id, the Art. 9 values, key fields."""
    out: dict[str, str] = {}
    ptype = truth["paper_type"]["key"]
    if art9 is None:
        out["type"] = "wrong"
        out["owner_id"] = "wrong"
        return out
    out["type"] = "right" if art9["paper_type_key"] == ptype else "wrong"
    out["owner_id"] = verdict(art9.get("owner_id"), truth["owner_id"])
    for key in ART9_KEYS:
        variants = truth.get("paper_name_variants") if key == "paper_name" else None
        out[key] = verdict(art9.get(key), truth.get(key), variants)
    fields = art9.get("fields", {})
    type_flagged = bool(art9.get("paper_type_name", {}).get("needs_review"))
    for name in truth.get("key_fields", []):
        if name not in fields and type_flagged:
            out[f"fields.{name}"] = "flagged"  # the whole paper goes to a person
            continue
        out[f"fields.{name}"] = verdict(fields.get(name), truth["fields"].get(name))
    return out


def prepare(dossier: Path, target: Path) -> None:
    """A dossier folder as a counter would scan it: one sub-folder per paper, scans only."""
    description = json.loads((dossier / "dossier.json").read_text(encoding="utf-8"))
    target.mkdir(parents=True)
    for component in description["components"]:
        out = target / f"c{component['component']}"
        out.mkdir()
        for scan in sorted((dossier / component["dir"]).iterdir()):
            if scan.suffix.lower() in SCAN_SUFFIXES:
                shutil.copy2(scan, out / scan.name)


def run_dossier(dossier: Path, work: Path, rescore: bool = False) -> dict:
    if rescore:  # score the bundles of an earlier run again
        path = work / "out" / dossier.name / "manifest.json"
        if not path.is_file():
            return {"error": [f"no bundle in {path.parent}"], "seconds": 0.0}
        return {"manifest": json.loads(path.read_text("utf-8")), "seconds": 0.0}
    source = work / "in" / dossier.name
    prepare(dossier, source)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "digitize", "run", str(source), "--out", str(work / "out")],
        capture_output=True, text=True, timeout=3600,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1:], "seconds": seconds}
    manifest = json.loads((work / "out" / dossier.name / "manifest.json").read_text("utf-8"))
    return {"manifest": manifest, "seconds": seconds, "stdout": result.stdout}


def tally(rows: list[tuple[str, dict[str, str]]]) -> dict[str, dict[str, dict[str, int]]]:
    """type → item group (type, owner_id, other) → verdict counts."""
    table: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: {"right": 0, "flagged": 0, "wrong": 0})
    )
    for ptype, verdicts in rows:
        for item, result in verdicts.items():
            group = item if item in ("type", "owner_id") else "other"
            table[ptype][group][result] += 1
            table["all"][group][result] += 1
    return table


def render(table: dict, wrong_items: list[str], meta: dict[str, str]) -> str:
    lines = ["# Art. 9 extraction on ../shared/papers (bench/papers.py)", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    lines += ["", "Right = equal to the truth and not flagged; flagged = needs review (a person "
              "checks it); wrong = confidently wrong (not flagged).", "",
              "| type | papers | type right | owner ID right / flagged / WRONG | other values "
              "right | other right or flagged | other WRONG |",
              "|---|---|---|---|---|---|---|"]
    for ptype in sorted(table, key=lambda k: (k == "all", k)):
        groups = table[ptype]
        papers = sum(groups["type"].values())
        t = groups["type"]
        o = groups["owner_id"]
        rest = groups["other"]
        total = sum(rest.values()) or 1
        lines.append(
            f"| {ptype} | {papers} | {t['right']}/{papers} | {o['right']} / {o['flagged']} / "
            f"{o['wrong']} | {rest['right'] / total:.0%} | "
            f"{(rest['right'] + rest['flagged']) / total:.1%} | {rest['wrong']} |"
        )
    lines += ["", "Wrong types and confidently wrong values:" if wrong_items else
              "No wrong type and no confidently wrong value."]
    lines += [f"- {item}" for item in wrong_items]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dossiers", default="", help="comma-separated, e.g. pd-d01,pd-d05")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rescore", action="store_true",
                        help="score the bundles already in --out again, without running")
    parser.add_argument("--write-results", action="store_true",
                        help=f"write the table to {RESULTS.relative_to(REPO)}")
    args = parser.parse_args()
    names = [n for n in args.dossiers.split(",") if n] or sorted(
        p.name for p in PAPERS.glob("pd-d*") if p.is_dir())
    work = args.out or Path(tempfile.mkdtemp(prefix="digitize-papers-"))
    rows: list[tuple[str, dict[str, str]]] = []
    wrong_items: list[str] = []
    seconds = 0.0
    for name in names:
        dossier = PAPERS / name
        outcome = run_dossier(dossier, work, args.rescore)
        seconds += outcome["seconds"]
        documents = {d["doc_ordinal"]: d for d in outcome.get("manifest", {}).get("documents", [])}
        for truth_file in sorted(dossier.glob("c*/component.json")):
            truth = json.loads(truth_file.read_text(encoding="utf-8"))
            document = documents.get(truth["component"])
            verdicts = score_component(document.get("art9") if document else None, truth)
            rows.append((truth["paper_type"]["key"], verdicts))
            for item, result in verdicts.items():
                ours_type = ((document or {}).get("art9") or {}).get("paper_type_key")
                if item == "type" and result == "wrong" and ours_type == "other":
                    wrong_items.append(f"{name}/c{truth['component']} type: not recognised "
                                       f"(type 'other', flagged for review)")
                    continue
                if result == "wrong":
                    ours = (document or {}).get("art9") or {}
                    value = (ours.get("fields", {}) if item.startswith("fields.") else ours).get(
                        item.removeprefix("fields."), {}) if item != "type" else {
                        "value": ours.get("paper_type_key")}
                    wrong_items.append(f"{name}/c{truth['component']} {item}: "
                                       f"{(value or {}).get('value')!r}")
            print(json.dumps({"paper": f"{name}/c{truth['component']}",
                              "type": truth["paper_type"]["key"], **verdicts,
                              "error": outcome.get("error")}, ensure_ascii=False), flush=True)
    table = tally(rows)
    import digitize

    tesseract = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
    meta = {
        "date": datetime.now().isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, {platform.system()} {platform.release()}, "
                   f"Python {platform.python_version()}",
        "digitize": digitize.__version__,
        "tesseract": (tesseract.stdout or tesseract.stderr).splitlines()[0],
        "dossiers": f"{len(names)} ({len(rows)} papers), pipeline time {seconds:.0f} s "
                    "(shared machine: re-run on a quiet one for timing)",
    }
    report = render(table, wrong_items, meta)
    print(report)
    if args.rescore:
        meta["dossiers"] += " (re-scored from an earlier run)"
    if args.write_results:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report, encoding="utf-8")
    print(f"outputs in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
