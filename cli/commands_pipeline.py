"""Commands over whole dossiers: run, verify, profile."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from digitize.cli.main import (
    _json_dump,
    err_console,
    handle_errors,
    main,
    out_console,
    profile_option,
    shown,
)

if TYPE_CHECKING:  # the library modules are imported when a command runs: start-up stays fast
    from digitize.pipeline import DossierResult, Event
    from digitize.profiles import Profile

DEMO_WARNING = (
    "[bold yellow]DEMO SIGNATURE:[/] signed with the built-in demo identity (DEMO root CA). "
    "Not valid for real use: configure a real signer in a profile (sign.backend)."
)


def load_cli_profile(profile_name: str | None, overrides: dict | None = None) -> Profile:
    from digitize.profiles import load_profile

    return load_profile(profile_name, overrides or None)


def page_progress() -> Progress:
    """Progress bars on stderr (only on a terminal): one task per dossier, counted in the
    unit named by the task's ``unit`` field (pages or dossiers)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
        disable=not err_console.is_terminal,
    )


def summary_table(result: DossierResult) -> Table:
    table = Table(title=f"Bundle {shown(result.dossier_code)}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("component")
    table.add_column("file")
    table.add_column("pages", justify="right")
    table.add_column("OCR conf.", justify="right")
    table.add_column("PAdES")
    table.add_column("flags")
    for comp in result.components:
        doc = next(d for d in result.manifest.documents if d.doc_ordinal == comp.ordinal)
        flags = {f.code for f in doc.flags} | {f.code for p in doc.pages for f in p.flags}
        table.add_row(
            str(comp.ordinal),
            shown(comp.name),
            shown(comp.file) if comp.file else
            f"(not digitised: {doc.not_digitised_reason.value})"
            if doc.not_digitised_reason else "",
            str(comp.pages),
            f"{comp.mean_confidence:.1f}" if comp.mean_confidence is not None else "—",
            doc.signature.pades_level.value if doc.signature else "—",
            ", ".join(sorted(flags)) or "—",
        )
    return table


@main.command("run")
@click.argument("dossier_dir", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder that receives the bundle folder OUT/<dossier code>/.")
@profile_option
@click.option("--zip", "make_zip", is_flag=True, help="Also write OUT/<code>.zip.")
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle of the same name.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Page workers (default: number of cores).")
@click.option("--rescan", is_flag=True,
              help="Accept PDFs that already carry text or signatures: their page images are "
                   "processed as a fresh scan (the original is never modified).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@handle_errors
def run_cmd(dossier_dir: Path, out_dir: Path, profile_name: str | None, make_zip: bool,
            overwrite: bool, workers: int | None, rescan: bool, as_json: bool) -> None:
    """Digitise one dossier folder into a signed bundle.

    DOSSIER_DIR holds one sub-folder (or one file) per component, with the scans in it;
    an optional dossier.yaml gives codes, names and declared page counts. The bundle is
    OUT/<dossier code or folder name>/ with one signed PDF/A per component, manifest.json,
    manifest.json.p7s and checksums.sha256. Exit code 0 only when the bundle was written.
    """
    from digitize.pipeline import run_dossier

    overrides: dict = {}
    if make_zip:
        overrides.setdefault("bundle", {})["zip"] = True
    if workers is not None:
        overrides.setdefault("pipeline", {})["workers"] = workers
    if rescan:
        overrides.setdefault("ingest", {})["pdf_with_text"] = "rescan"
    profile = load_cli_profile(profile_name, overrides)

    with page_progress() as progress:
        task = progress.add_task(shown(dossier_dir.name), total=None, unit="pages")

        def on_event(event: Event) -> None:
            if event.kind == "dossier_started":
                progress.update(task, total=event.total_pages, description=shown(event.dossier))
            elif event.kind == "page_done":
                progress.update(task, completed=event.done_pages)
            elif event.kind == "notice":
                progress.console.print(f"[dim]notice:[/] {shown(event.message)}")

        result = run_dossier(dossier_dir, out_dir, profile=profile, on_event=on_event,
                             overwrite=overwrite)
    if as_json:
        from digitize.extract.present import masked_documents

        data = result.model_dump(mode="json")
        # Personal IDs and birth dates stay in the manifest file, masked on the console.
        data["manifest"]["documents"] = masked_documents(data["manifest"]["documents"])
        sys.stdout.write(_json_dump(data) + "\n")
        return
    out_console.print(summary_table(result))
    conf = f"{result.mean_confidence:.1f}" if result.mean_confidence is not None else "—"
    out_console.print(
        f"{result.pages} pages, mean OCR confidence {conf}, {result.seconds:.1f} s"
        + ("; [bold yellow]needs review[/] (see flags in manifest.json)"
           if result.needs_review else "")
    )
    if result.signed_with_demo_identity:
        out_console.print(DEMO_WARNING)
    out_console.print(f"Bundle: [bold]{shown(result.bundle_path)}[/]")
    if result.zip_path:
        out_console.print(f"Zip:    [bold]{shown(result.zip_path)}[/]")


@main.command("verify")
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("--trust", "trust", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Trusted root certificate (PEM/DER); repeatable. Default: DIGITIZE_TRUST_ROOTS.")
@click.option("--allow-demo", is_flag=True,
              help="Accept bundles signed with this machine's DEMO identity (testing only).")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True,
              help="Language of the report.")
@click.option("--online", is_flag=True, help="Allow fetching revocation data (default: offline).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def verify_cmd(target: Path, trust: tuple[Path, ...], allow_demo: bool, lang: str, online: bool,
               as_json: bool) -> None:
    """Verify a bundle folder or zip, or one signed PDF, offline.

    One verdict line per check; exit code 0 only when every check passes and every signer's
    certificate was shown unrevoked; 66 when everything passed but revocation could not be
    checked (no OCSP/CRL data: use --online, or sign at B-LT); otherwise the code of the first
    failure (61 hash, 62 signature, 63 trust or identity, 64 structure, 65 PDF/A).
    """
    from rich.markup import escape
    from rich.text import Text

    from digitize.util import escape_control
    from digitize.verify import revocation_unproven, verify_bundle, verify_signed_pdf

    roots = tuple(trust) if trust else None
    if target.is_file() and target.suffix.lower() == ".pdf":
        report = verify_signed_pdf(target, roots, lang=lang, offline=not online,
                                   allow_demo=allow_demo)
    else:
        report = verify_bundle(target, roots, lang=lang, offline=not online,
                               allow_demo=allow_demo)
    if as_json:
        sys.stdout.write(_json_dump({
            "path": str(target), "ok": report.ok, "exit_code": report.exit_code,
            "revocation_checked": report.revocation_checked,
            "signed_with_demo_identity": report.signed_with_demo_identity,
            "checks": [c.model_dump() for c in report.checks]}) + "\n")
        sys.exit(report.exit_code)
    # Names, certificate names and messages come from the bundle: shown as plain text, with
    # control characters escaped, so a crafted CN or file name cannot forge a verdict line.
    unproven = set(revocation_unproven(report.checks))
    for check in report.checks:
        if not check.ok:
            mark, style = "FAIL", "bold red"
        elif check.name in unproven:
            mark, style = "WARN", "yellow"
        else:
            mark, style = "PASS", "green"
        line = Text.assemble((mark, style), " ", escape_control(f"{check.name}: {check.message}"))
        # soft_wrap: one check, one output line; a long name cannot push text to a line start
        out_console.print(line, highlight=False, soft_wrap=True)
    target_text = escape(escape_control(str(target)))
    if not report.ok:
        verdict = "KHÔNG HỢP LỆ" if lang == "vi" else "INVALID"
    elif not report.revocation_checked:
        verdict = ("HỢP LỆ, CHƯA KIỂM TRA THU HỒI" if lang == "vi"
                   else "VALID EXCEPT REVOCATION: NOT CHECKED")
    else:
        verdict = "HỢP LỆ" if lang == "vi" else "VALID"
    out_console.print(f"[bold]{verdict}[/] {target_text} (exit {report.exit_code})", highlight=False,
                      soft_wrap=True)
    if report.signed_with_demo_identity:
        out_console.print(DEMO_WARNING)
    sys.exit(report.exit_code)


@main.group("profile")
def profile_group() -> None:
    """Show and list office profiles."""


@profile_group.command("list")
@handle_errors
def profile_list() -> None:
    """List the bundled profiles."""
    from digitize.profiles import list_profiles, load_profile

    for name in list_profiles():
        out_console.print(f"{shown(name)}: {shown(load_profile(name).description)}")


@profile_group.command("show")
@click.argument("name", default="default")
@handle_errors
def profile_show(name: str) -> None:
    """Print the merged settings of profile NAME (a bundled name or a YAML file)."""
    from digitize.profiles import load_profile, profile_as_yaml

    sys.stdout.write(profile_as_yaml(load_profile(name)))
