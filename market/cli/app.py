"""The ``flexmarket`` command line (typer + rich): every command registered in one place.

Exit codes: 0 done; 2 bad input (named file, row, column and reason; nothing written);
1 the inputs were fine but the job failed (solver, busy or unreachable store).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from market.cli.batch import forecasts_make, synth, validate
from market.cli.clearing import clear, compare, designs_list, designs_show, season, sweep
from market.cli.console import EXIT_INVALID, MODE, configure, emit_json, failure_document
from market.cli.demo import demo
from market.cli.network import network_import
from market.cli.scaling import scaling
from market.cli.settlement import baselines_evaluate, settle, settle_due
from market.cli.statements import (
    statements_diff,
    statements_dispute,
    statements_export,
    statements_list,
    statements_migrate,
    statements_resolve,
    statements_show,
)
from market.cli.uftp import uftp_export, uftp_import, uftp_settlement

GLOBAL_FLAGS = ("--quiet", "-q", "--verbose", "-v")


class GlobalOptionsAnywhere(TyperGroup):
    """The top-level group: ``--quiet``/``--verbose`` are accepted anywhere on the line (as
    in git, pip or ruff: ``flexmarket clear B --out R --quiet``), and with ``--json`` a usage
    error is a JSON document too."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
        rest = [a for a in args[:end] if a not in GLOBAL_FLAGS] + args[end:]
        MODE["json_wanted"] = "--json" in args[:end]
        return super().parse_args(ctx, flags + rest)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # click's UsageError (typer vendors its own click): duck-typed
            if MODE["json_wanted"] and not MODE["json"] and getattr(exc, "exit_code", None) == EXIT_INVALID:
                message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
                emit_json({**failure_document(exc, EXIT_INVALID), "error": message})
            raise


app = typer.Typer(
    cls=GlobalOptionsAnywhere,
    add_completion=False,
    no_args_is_help=True,
    help="Clear and settle distribution-level flexibility markets.",
)


def _version(value: bool) -> None:
    if value:
        import market

        typer.echo(f"flexmarket {market.__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="only warnings and errors (on stderr)")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug log lines and the solver's own log")] = False,
) -> None:
    """Clear and settle distribution-level flexibility markets."""
    configure(quiet=quiet, verbose=verbose)


designs_app = typer.Typer(no_args_is_help=True, help="List and show coordination designs.")
baselines_app = typer.Typer(no_args_is_help=True, help="M&V baseline methods.")
app.add_typer(designs_app, name="designs")
app.add_typer(baselines_app, name="baselines")

for command in (validate, clear, synth, settle, sweep, compare, season, demo):
    app.command()(command)
app.command("settle-due")(settle_due)
app.command("scaling")(scaling)
designs_app.command("list")(designs_list)
designs_app.command("show")(designs_show)
baselines_app.command("evaluate")(baselines_evaluate)
network_app = typer.Typer(no_args_is_help=True, help="Grid models in: pandapower, SimBench, PyPSA.")
app.add_typer(network_app, name="network")
network_app.command("import")(network_import)
uftp_app = typer.Typer(no_args_is_help=True, help="USEF UFTP (Shapeshifter) messages in and out.")
app.add_typer(uftp_app, name="uftp")
uftp_app.command("import")(uftp_import)
uftp_app.command("export")(uftp_export)
uftp_app.command("settlement")(uftp_settlement)
forecasts_app = typer.Typer(no_args_is_help=True, help="Forecasts of a batch's state (what was known before delivery).")
app.add_typer(forecasts_app, name="forecasts")
forecasts_app.command("make")(forecasts_make)
statements_app = typer.Typer(no_args_is_help=True, help="Read the settlement store: statements, lines, deltas.")
app.add_typer(statements_app, name="statements")
statements_app.command("list")(statements_list)
statements_app.command("show")(statements_show)
statements_app.command("export")(statements_export)
statements_app.command("diff")(statements_diff)
statements_app.command("migrate")(statements_migrate)
statements_app.command("dispute")(statements_dispute)
statements_app.command("resolve")(statements_resolve)


def main() -> None:
    """The ``flexmarket`` console script: run the command, then leave the way mypy does
    (``hard_exit``): flush what is buffered and exit without tearing the interpreter down.
    Every command has closed its files, stores and worker pools by then; what is left is
    freeing a large batch's millions of Python objects one by one, about 0.25 s of a 5 s
    clear at 10^6 bid-intervals. An error that escapes a command is raised as usual."""
    try:
        app()
        code = 0
    except MemoryError:
        print("error: the job ran out of memory (give it more, or a smaller batch)", file=sys.stderr)
        code = 1
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    hard_exit(code)


def hard_exit(code: int) -> NoReturn:
    """Flush the standard streams and the log handlers, then ``os._exit(code)``."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or broken pipe: nothing left to flush
            stream.flush()
    os._exit(code)
