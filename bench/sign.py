"""Signing time per component: B-B with a file key (target < 0.3 s), and B-T, B-LT, B-LTA
against the local test PKI (OCSP, CRL, TSA on 127.0.0.1), for each key source; and the two
halves of two-phase signing (prepare without the key, finish at the station with the token).

    .venv/bin/python bench/sign.py [--n 10] [--out bench/out/sign]

One signer is opened per configuration (as a dossier run does) and signs ``--n`` copies of a
one-page PDF/A-2b component; the table shows the open time and median/max seconds per
component. Writes ``bench/results/sign.md`` (machine, versions, date, the table) and, as
before, ``--out``/``sign-results.json``, ``stamp-page1.png`` (page 1 at 300 dpi) and
``stamp-crop.png`` (the top-left note) into ``--out``: the rendered Vietnamese note.

How the rows compare: every configuration signs the same one-page component the same number
of times, in one process, one after another (one core); no warm-up run, for any of them: the
first signature of each configuration is in its median and max (a dossier run pays it too),
and opening the signer (loading the key, logging in to the token, the CSC authorisation) is
its own column. Excluded: starting the test PKI, the SoftHSM token and the CSC dummy, and
network latency (every service is on 127.0.0.1; a real TSA/OCSP responder adds its round
trips to B-T and above). No comparison with another tool. Timings on a shared machine are
indicative only; re-run on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.results import markdown_table, write_results  # noqa: E402
from digitize.models import PadesLevel  # noqa: E402
from digitize.sign import SigningSettings, open_signer, prepare_pdf  # noqa: E402
from tests.helpers_pki import (  # noqa: E402
    PFX_PASSWORD,
    make_pdfa_sample,
    setup_softhsm_token,
    start_csc_dummy,
    start_test_pki,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10, help="components per configuration")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "sign")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-sign-"))
    pki = start_test_pki(work / "pki")
    csc = start_csc_dummy(pki)
    token = setup_softhsm_token(work / "hsm", pki)

    def put_secrets() -> None:  # an environment secret serves one open (it is removed once read)
        os.environ["DIGITIZE_PKCS12_PASSWORD"] = PFX_PASSWORD
        os.environ["DIGITIZE_PKCS11_PIN"] = token.pin

    src = make_pdfa_sample(work / "component.pdf", dpi=150)
    scan_time = datetime.now(UTC)
    common = {"tsa_url": pki.tsa_url, "trust_roots": (str(pki.root_cert),)}
    backends = {
        "demo (file)": {"backend": "demo"},
        "pkcs12 (file)": {"backend": "pkcs12", "pkcs12": {"path": str(pki.pkcs12_path("hoa"))},
                          **common},
        "pkcs11 (SoftHSM)": {"backend": "pkcs11", **common,
                             "pkcs11": {"module": token.module, "token_label": token.label,
                                        "key_label": "hoa"}},
        "csc (remote)": {"backend": "csc", **common,
                         "csc": {"url": csc.url, "credential_id": csc.credential_id("hoa")}},
    }  # fmt: skip
    rows = []
    for name, cfg in backends.items():
        levels = [PadesLevel.B_B] if cfg["backend"] == "demo" else list(PadesLevel)
        for level in levels:
            put_secrets()
            t0 = time.perf_counter()
            signer = open_signer(SigningSettings(**cfg, level=level), data_dir=work / "data")
            opened = time.perf_counter() - t0
            times = []
            try:
                for i in range(args.n):
                    t = time.perf_counter()
                    signer.sign_pdf(src, work / "out" / f"{i}.pdf", scan_time=scan_time)
                    times.append(time.perf_counter() - t)
            finally:
                signer.close()
            rows.append((name, level.value, opened, statistics.median(times), max(times)))
            print(f"  {name:18} {level.value:6} done", file=sys.stderr)
    # two-phase: prepare with the certificate only, finish at the "station" with the token
    hub = SigningSettings(**common)
    prep_times, preparations = [], []
    for i in range(args.n):
        t = time.perf_counter()
        preparations.append(prepare_pdf(src, work / "hub" / f"{i}.pdf", pki.cert_path("hoa"),
                                        scan_time, hub))  # fmt: skip
        prep_times.append(time.perf_counter() - t)
    rows.append(("prepare (no key)", "-", 0.0, statistics.median(prep_times), max(prep_times)))
    put_secrets()
    t0 = time.perf_counter()
    signer = open_signer(SigningSettings(**backends["pkcs11 (SoftHSM)"], level=PadesLevel.B_T))
    opened = time.perf_counter() - t0
    fin_times = []
    try:
        for i, preparation in enumerate(preparations):
            t = time.perf_counter()
            signer.finish_prepared(work / "hub" / f"{i}.pdf", work / "fin" / f"{i}.pdf", preparation)
            fin_times.append(time.perf_counter() - t)
    finally:
        signer.close()
    rows.append(("finish pkcs11", "B-T", opened, statistics.median(fin_times), max(fin_times)))
    # the rendered note, for the record
    put_secrets()
    signer = open_signer(SigningSettings(**backends["pkcs12 (file)"], level=PadesLevel.B_T))
    try:
        rec = signer.sign_pdf(src, args.out / "signed-B-T.pdf", scan_time=scan_time)
    finally:
        signer.close()
    subprocess.run(["pdftoppm", "-r", "300", "-f", "1", "-l", "1", "-png", "-singlefile",
                    str(args.out / "signed-B-T.pdf"), str(args.out / "stamp-page1")], check=True)  # fmt: skip
    from PIL import Image

    s = 300 / 72
    x0, y0, x1, y1 = rec.appearance_box_pt
    page = Image.open(args.out / "stamp-page1.png")
    h_pt = page.height / s
    page.crop((0, 0, int((x1 + 15) * s), int((h_pt - y0 + 15) * s))).save(
        args.out / "stamp-crop.png"
    )
    pki.stop()
    csc.stop()

    print(f"\nSigning time per component (n={args.n}, one-page PDF/A-2b, {os.cpu_count()} CPUs)")
    print(f"{'key source':18} {'level':6} {'open s':>7} {'median s':>9} {'max s':>7}")
    for name, level, opened, med, mx in rows:
        print(f"{name:18} {level:6} {opened:7.3f} {med:9.3f} {mx:7.3f}")
    results = [{"key_source": n, "level": lv, "open_s": round(o, 3), "median_s": round(m, 3),
                "max_s": round(x, 3)} for n, lv, o, m, x in rows]  # fmt: skip
    (args.out / "sign-results.json").write_text(json.dumps(
        {"n": args.n, "cpus": os.cpu_count(), "rows": results}, indent=2))  # fmt: skip
    table = markdown_table(
        ["key source", "level", "open s", "median s", "max s"],
        [[n, lv, f"{o:.3f}", f"{m:.3f}", f"{x:.3f}"] for n, lv, o, m, x in rows],
    )
    path = write_results("sign", "Signing time per component", [
        ("Setup", f"{args.n} signatures per configuration of a one-page PDF/A-2b component, one "
                  "signer opened per configuration, services of the test PKI on 127.0.0.1; "
                  "rules: the docstring of `bench/sign.py`."),
        ("Seconds per component", table),
    ])  # fmt: skip
    print(f"\nnote rendered: {args.out / 'stamp-crop.png'} (page: {args.out / 'stamp-page1.png'})")
    print(f"results: {args.out / 'sign-results.json'} and {path}")
    print(f"shown: Người số hóa: {rec.signer.full_name} / Thời gian sao chụp: "
          f"{rec.scan_time_shown.isoformat()} (note: {args.out / 'stamp-crop.png'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
