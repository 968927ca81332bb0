"""The ``digitize`` command: a thin layer over the library.

It parses options, builds a profile, calls the library, renders progress and results with
rich, and maps ``DigitizeError`` subclasses to their exit codes (one line on stderr; the
traceback only with ``--debug``).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from digitize._version import __version__
from digitize.errors import DigitizeError, ExitCode
from digitize.util import escape_control

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
# Wide enough for the summary tables when stdout is a file or a pipe (rich assumes 80 there).
out_console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def shown(text: object) -> str:
    """Untrusted text (file and folder names, certificate names, messages that quote them)
    made safe for a rich console line: control and bidi characters escaped, and rich markup
    escaped so a folder named ``[bold]…`` prints as it is."""
    return escape(escape_control(str(text)))


def handle_errors(func: F) -> F:
    """Map library errors to one line and a stable exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug"))
        try:
            return func(*args, **kwargs)
        except DigitizeError as exc:
            if debug:
                err_console.print_exception()
            err_console.print(f"[bold red]digitize: error:[/] {shown(exc.one_line())}",
                              markup=True, highlight=False)
            sys.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            err_console.print("digitize: interrupted")
            sys.exit(int(ExitCode.INTERRUPTED))
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into exit 1
            if debug:
                err_console.print_exception()
            err_console.print(
                f"[bold red]digitize: internal error:[/] {type(exc).__name__}: {shown(exc)} "
                "(re-run with --debug for the traceback, and please report it)"
            )
            sys.exit(int(ExitCode.INTERNAL))

    return wrapper  # type: ignore[return-value]


def profile_option(func: F) -> F:
    return click.option(
        "--profile", "profile_name", metavar="NAME|FILE", default=None,
        help="Office profile: a bundled name (see `digitize profile list`) or a YAML file.",
    )(func)


EXIT_CODES_HELP = "Exit codes: see `digitize exit-codes`."


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="digitize")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def main(debug: bool) -> None:
    """Digitise paper dossiers of Vietnamese administrative procedures into signed,
    searchable PDF/A dossier bundles (Circular 01/2023/TT-VPCP).

    Typical use: `digitize run DOSSIER_DIR --out OUT_DIR`, then `digitize verify OUT_DIR/CODE`.
    """


@main.command("exit-codes")
def exit_codes() -> None:
    """Print the table of stable exit codes."""
    from rich.table import Table

    from digitize.errors import all_error_classes

    by_code: dict[int, list[str]] = {}
    for cls in all_error_classes():
        by_code.setdefault(int(cls.exit_code), []).append(cls.__name__)
    table = Table(title="digitize exit codes")
    table.add_column("code", justify="right")
    table.add_column("name")
    table.add_column("raised as")
    for code in ExitCode:
        table.add_row(str(int(code)), code.name.lower(), ", ".join(by_code.get(int(code), [])))
    out_console.print(table)


def _register() -> None:
    # Import the command modules so they attach themselves to `main`.
    from digitize.cli import (  # noqa: F401
        commands_batch,
        commands_hub,
        commands_pipeline,
        commands_purge,
        commands_review,
        commands_stages,
        commands_stats,
    )


def run_main() -> None:
    _register()
    main()


def _json_dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)


def resolve_path(value: str | Path) -> Path:
    return Path(value).expanduser()


__all__ = [
    "err_console",
    "handle_errors",
    "main",
    "out_console",
    "profile_option",
    "run_main",
    "shown",
]
