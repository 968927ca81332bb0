"""``digitize purge``: the retention command for a watch station (see ``digitize.purge``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from digitize.cli.commands_pipeline import load_cli_profile
from digitize.cli.main import handle_errors, main, out_console, profile_option, shown
from digitize.errors import ExitCode


@main.command("purge")
@click.argument("inbox", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="AGE",
    help="Retention period: 90d (days), 12h, 2w. Entries finished longer ago are removed.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The watch's output folder: also remove rejected bundles (.rejected-*) and staging "
    "folders left by dead processes of this host.",
)
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@profile_option
@handle_errors
def purge_cmd(
    inbox: Path,
    older_than: str,
    out_dir: Path | None,
    dry_run: bool,
    profile_name: str | None,
) -> None:
    """Remove done/, quarantine/ and duplicate/ inputs of INBOX (with their reason.json)
    finished longer ago than --older-than, and with --out the rejected bundles and dead
    staging folders of OUT: personal data is not kept forever.

    The age of an inbox entry is when the journal says the station finished with it (else
    its modification time). Verified bundles in OUT, dossiers waiting or in processing, and
    the journal are never touched; symbolic links are removed as links, never followed.
    Prints one line per entry. Exit code: 0 done (also when nothing was old enough), 80 when
    some entry could not be removed, 70 for an unreadable age, 16 when a folder is a link.
    """
    from digitize.purge import parse_age, plan_purge, purge

    age = parse_age(older_than)
    profile = load_cli_profile(profile_name, {})
    items = plan_purge(inbox, out_dir, age, profile.watch)
    results = items if dry_run else purge(items)
    failed = 0
    verb = "would remove" if dry_run else "removed"
    for item in results:
        days = f"{item.age_days:.0f} days"
        since = item.since.strftime("%Y-%m-%d")
        where = shown(item.path)
        if item.error:
            failed += 1
            out_console.print(f"not removed {item.kind} {where}: {shown(item.error)}")
        else:
            out_console.print(
                f"{verb} {item.kind} {where} (since {since}, {days}, {item.age_source})"
            )
    summary = f"{len(results) - failed} {'to remove' if dry_run else 'removed'}"
    if failed:
        summary += f", {failed} could not be removed"
    out_console.print(summary)
    sys.exit(int(ExitCode.OUTPUT) if failed else int(ExitCode.OK))
