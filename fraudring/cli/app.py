"""The `fraudring` console command.

Each capability registers its subcommands from a module under `fraudring/cli/`; imports stay
lazy inside the commands so `fraudring --help` is fast and the API process never loads torch.
"""

from __future__ import annotations

import errno
import importlib
import os
import signal
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from fraudring import __version__
from fraudring.cli.demo.namespace import demo_environment
from fraudring.errors import FraudringError
from fraudring.logs import configure_logging
from fraudring.settings import SettingsError, get_settings

app = typer.Typer(
    name="fraudring",
    help="Fraud-ring detection: real-time decisions, transaction graph, rings, graph learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()

#: Modules under fraudring.cli that add subcommands; each defines `register(app)`.
COMMAND_MODULES: list[str] = [
    "doctor",
    "bench",
    "workers",
    "world",
    "serve",
    "graph",
    "learn",
    "demo",
    "rings",
    "workbench",
]


def _version(value: bool) -> None:
    if value:
        console.print(f"fraudring {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="Log level (DEBUG, INFO, WARNING).")] = "WARNING",
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Work on what `fraudring demo` left in var/demo (its data directory, key prefix "
            "and graph), e.g. `fraudring --demo rings`; also accepted after the command.",
        ),
    ] = False,
) -> None:
    configure_logging(level=log_level.upper())
    if demo:
        os.environ.update(demo_environment())
        get_settings.cache_clear()


for _name in COMMAND_MODULES:
    importlib.import_module(f"fraudring.cli.{_name}").register(app)


#: A data directory that cannot be written: one line, not a traceback.
UNWRITABLE = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR}
)


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def hoist_demo_flag(argv: list[str]) -> list[str]:
    """`fraudring rings --demo` means `fraudring --demo rings`: the flag is the root's, and
    every command takes it (arguments after `--` are left alone)."""
    end = argv.index("--") if "--" in argv else len(argv)
    if "--demo" not in argv[1:end]:
        return argv
    rest = [a for a in argv[1:end] if a != "--demo"]
    return [argv[0], "--demo", *rest, *argv[end:]]


def main() -> None:
    """Entry point: project errors become one readable line and exit code 2, never a traceback.

    SIGTERM (a process manager, `docker stop`, `kill`) unwinds like Ctrl-C, so the embedded
    servers, worker and API a command started are stopped by their context managers instead of
    outliving it; uvicorn and Celery install their own handlers where they run."""
    signal.signal(signal.SIGTERM, _terminate)
    sys.argv = hoist_demo_flag(sys.argv)
    try:
        get_settings()
        app()
    except (SettingsError, FraudringError) as exc:
        Console(stderr=True, soft_wrap=True).print(  # one line, whatever the terminal's width
            f"[red]error:[/red] {escape(str(exc))}", highlight=False, markup=True
        )
        sys.exit(2)
    except OSError as exc:
        if exc.errno not in UNWRITABLE:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        Console(stderr=True, soft_wrap=True).print(
            f"[red]error:[/red] cannot write{escape(where)}: {exc.strerror} (check "
            "FRAUDRING_DATA_DIR, its permissions and free space)",
            highlight=False,
            markup=True,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
