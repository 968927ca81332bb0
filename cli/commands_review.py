"""Commands for people looking at bundles: report (a self-contained HTML/JSON report) and
review (a local web page, or ``--apply`` of a corrections file, re-signing the manifest)."""

from __future__ import annotations

import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from digitize.cli.main import err_console, handle_errors, main, out_console, profile_option
from digitize.errors import OutputError

TRUST_HELP = ("Trusted root certificate (PEM/DER); repeatable. Default: DIGITIZE_TRUST_ROOTS "
              "and the profile's sign.trust_roots.")
ALLOW_DEMO_HELP = ("Trust the built-in DEMO root (implied when the profile signs with the demo "
                   "identity).")


def _verifier(
    trust: tuple[Path, ...], profile: Any, lang: str, allow_demo: bool
) -> Callable[[Path], Any]:
    """The one trust decision of these commands: which roots a bundle must chain to, and
    whether the DEMO root counts (asked for, or the profile itself signs as DEMO)."""
    from digitize.verify import default_trust_roots, demo_allowed_for, verify_bundle

    roots = tuple(trust) if trust else (
        tuple(default_trust_roots()) + tuple(Path(p) for p in profile.sign.trust_roots))
    demo = allow_demo or demo_allowed_for(profile)
    return lambda bundle: verify_bundle(bundle, roots, lang=lang, allow_demo=demo)


@main.command("report")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option("--html", "html_path", type=click.Path(path_type=Path), default=None,
              help="Write the report as one self-contained HTML file (prints on A4).")
@click.option("--json", "json_path", type=str, default=None, metavar="FILE|-",
              help="Write the same content as JSON (to FILE, or stdout with -).")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
@click.option("--trust", "trust", multiple=True, type=click.Path(exists=True, path_type=Path),
              help=TRUST_HELP)
@click.option("--allow-demo", is_flag=True, help=ALLOW_DEMO_HELP)
@profile_option
@handle_errors
def report_cmd(bundle: Path, html_path: Path | None, json_path: str | None, lang: str,
               trust: tuple[Path, ...], allow_demo: bool, profile_name: str | None) -> None:
    """Report on a bundle folder or zip: codes, digitiser, verification, page thumbnails with
    flagged regions outlined, fields with their crops, every flag in plain words.

    Exit 0 when the report was written (the verification verdict is inside the report).
    """
    from digitize.profiles import load_profile
    from digitize.report import build_report, render_report_html
    from digitize.util import write_atomic

    if html_path is None and json_path is None:
        raise click.UsageError("give --html FILE and/or --json FILE|-")
    verify = _verifier(trust, load_profile(profile_name), lang, allow_demo)
    with tempfile.TemporaryDirectory(prefix="digitize-report-") as tmp:
        folder = bundle
        if bundle.is_file() and zipfile.is_zipfile(bundle):
            from digitize.verify import safe_extract_zip

            folder = safe_extract_zip(bundle, Path(tmp))
        report = build_report(folder, verify(bundle), lang)
        if json_path is not None:
            data = report.model_dump_json(indent=2) + "\n"
            if json_path == "-":
                sys.stdout.write(data)
            else:
                _write(Path(json_path), data.encode(), write_atomic)
        if html_path is not None:
            _write(html_path, render_report_html(report, folder).encode(), write_atomic)
    if html_path is not None:
        err_console.print(f"Report: [bold]{html_path}[/]", highlight=False)


def _write(path: Path, data: bytes, write_atomic: Callable[[Path, bytes], None]) -> None:
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror}", path=path) from None


@main.command("review")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--apply", "corrections_path", type=click.Path(exists=True, dir_okay=False,
                                                             path_type=Path),
              default=None, help="Apply a corrections JSON file to the bundle PATH and exit.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback unless --allow-remote).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port (0: any free port).")
@click.option("--allow-remote", is_flag=True,
              help="Allow listening on a non-loopback address (the page shows personal data).")
@click.option("--allowed-host", "allowed_host", multiple=True, metavar="NAME",
              help="Extra name the browser may use in the Host header (with --allow-remote).")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
@click.option("--trust", "trust", multiple=True, type=click.Path(exists=True, path_type=Path),
              help=TRUST_HELP)
@click.option("--allow-demo", is_flag=True, help=ALLOW_DEMO_HELP)
@profile_option
@handle_errors
def review_cmd(path: Path, corrections_path: Path | None, lang: str, profile_name: str | None,
               **server_options: Any) -> None:
    """Review a bundle (or a folder of bundles) in the browser, or apply a corrections file.

    The reviewer signs with the profile's signer (sign.backend): the corrected manifest is
    re-signed with that certificate, whose holder is recorded as the reviewer. Component PDFs
    are never changed. With --apply the format is
    {"fields": [{"file", "field", "value" | "confirm": true}], "pages": [{"file", "page",
    "decision": "accept" | "rescan", "reason"}], "documents": [{"file", "decision":
    "accept"}]} (a document accepted knowingly without a digitisation-result code when only
    the configuration can give what is missing); exit 0 when applied, 111-114 otherwise
    (nothing written). Art. 9 fields are "art9.<key>" and "art9.fields.<key>"; the profile's
    extract.catalogue gives their kinds and the result-code template.
    """
    from digitize.profiles import load_profile
    from digitize.review.server import check_bind
    from digitize.sign import open_signer
    from digitize.util import escape_control

    profile = load_profile(profile_name)
    verify = _verifier(server_options["trust"], profile, lang, server_options["allow_demo"])
    if corrections_path is not None:
        from digitize.report.build import open_reason_text
        from digitize.review import load_corrections, save_review
        from digitize.review.check import masked_value
        from digitize.review.state import open_items

        corrections = load_corrections(corrections_path)
        signer = open_signer(profile.sign)
        try:
            outcome = save_review(path, corrections, signer, verify, extract=profile.extract)
        finally:
            signer.close()
        record = outcome.record
        out_console.print(f"Reviewed by {escape_control(record.reviewer.full_name)}: "
                          f"{len(record.changes)} decision(s) saved, manifest re-signed",
                          markup=False)
        for change in record.changes:
            what = change.field or (f"page {change.page}" if change.page else "document")
            # personal ID numbers and dates of birth are masked on a console (R37 data)
            shown = masked_value(change.field or "", change.value)
            detail = f" → {shown!r}" if change.action == "correct" else ""
            out_console.print(escape_control(f"  {change.file} {what}: {change.action}{detail}"),
                              markup=False)
        items = open_items(outcome.manifest)
        if items:
            out_console.print("Still needs review:", markup=False)
            for item in items:
                out_console.print(escape_control("  " + open_reason_text(item, lang)),
                                  markup=False)
        else:
            out_console.print("Nothing left to review.", markup=False)
        return

    from digitize.review.app import ReviewApp, ReviewSettings
    from digitize.review.server import make_review_server

    host, port = server_options["host"], server_options["port"]
    allow_remote = server_options["allow_remote"]
    check_bind(host, allow_remote)
    signer = open_signer(profile.sign)
    try:
        app = ReviewApp(ReviewSettings(root=path, signer=signer, verify=verify,
                                       allowed_hosts=frozenset(server_options["allowed_host"]), lang=lang,
                                       extract=profile.extract))
        server = make_review_server(app, host, port, allow_remote=allow_remote)
        shown = f"[{host}]" if ":" in host else host
        err_console.print(f"Review page: http://{shown}:{server.server_port}/  "
                          f"(reviewer: {escape_control(signer.identity.full_name)}; "
                          "Ctrl+C to stop)", markup=False, highlight=False)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            err_console.print("stopped", markup=False)
        finally:
            server.server_close()
    finally:
        signer.close()

