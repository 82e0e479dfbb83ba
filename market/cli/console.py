"""Shared plumbing of the commands: output, logging, progress, errors as one red line.

Exit codes (every command): 0 done; 2 bad input (a usage error, or a named file, row,
column and reason; nothing written); 1 the inputs were fine but the job failed (solver,
busy or unreachable store).

Output: tables and results go to stdout (``--json``: one JSON document instead);
progress, log lines and errors go to stderr, through the standard ``logging`` module
(logger ``flexmarket``). ``--quiet`` keeps only warnings and errors; ``--verbose`` adds
debug lines and the solver's own log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from market.errors import FlexmarketError

if TYPE_CHECKING:  # the commands import pandas and the contract only when they run
    from market.io.batch import Batch

log = logging.getLogger("flexmarket")
_WIDTH = None if sys.stdout.isatty() else 160  # logs and pipes get wide, untruncated tables
console = Console(width=_WIDTH)
err = Console(stderr=True)
MODE = {"quiet": False, "json": False, "json_wanted": False}

EXIT_INVALID = 2
EXIT_FAILED = 1
LOG_EVERY_S = 10.0  # off a terminal, a progress line at most this often (and at the end)


def configure(quiet: bool, verbose: bool) -> None:
    """Logging to stderr at the level the flags ask for; the solver's log with ``verbose``."""
    from market.clearing.options import SOLVER_OUTPUT

    MODE["quiet"] = quiet
    MODE["json"] = False  # set by emit_json, per command
    MODE["json_wanted"] = MODE.get("json_wanted", False) or any(a == "--json" for a in sys.argv[1:])
    SOLVER_OUTPUT["verbose"] = verbose
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    # the grid libraries log their own advice (e.g. "numba cannot be imported"): only with --verbose
    for name in ("pandapower", "pypsa", "linopy"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.ERROR)


def say(*items: RenderableType) -> None:
    """Print tables and messages on stdout, unless ``--quiet`` or ``--json``."""
    if not (MODE["quiet"] or MODE["json"]):
        for item in items:
            console.print(item)


def emit_json(data: Any) -> None:
    """The command's result as one JSON document on stdout (``--json``); nothing else is
    printed on stdout after it. A number that is not finite (a share of no days, a slope of
    one point) is written as ``null``: JSON has no NaN."""
    MODE["json"] = True
    sys.stdout.write(json.dumps(_finite(data), indent=2, sort_keys=True, default=str, allow_nan=False) + "\n")


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


@contextlib.contextmanager
def exit_on_error(
    code: int = EXIT_INVALID,
    failed: tuple[type[FlexmarketError], ...] = (),
    invalid: tuple[type[FlexmarketError], ...] = (),
) -> Iterator[None]:
    """Report a flexmarket error as one red message (no traceback) and exit with ``code``,
    with EXIT_FAILED for the ``failed`` kinds (the inputs were fine, the job was not) and
    EXIT_INVALID for the ``invalid`` kinds (bad input, found late)."""
    try:
        yield
    except FlexmarketError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        kind = EXIT_FAILED if isinstance(exc, failed) else EXIT_INVALID if isinstance(exc, invalid) else code
        if MODE["json_wanted"] and not MODE["json"]:
            emit_json(failure_document(exc, kind))
        raise typer.Exit(kind) from exc


def failure_document(exc: BaseException, code: int) -> dict[str, Any]:
    """The ``--json`` document of a failed command: the error, its exit code, and every
    finding of an invalid batch (table, row, id, column, value, reason, code)."""
    doc: dict[str, Any] = {"ok": False, "exit_code": code, "error": str(exc), "kind": type(exc).__name__}
    findings = getattr(exc, "findings", None)
    if findings is not None:
        doc["findings"] = [
            {
                "table": f.table,
                "row": f.row,
                "row_id": f.row_id,
                "column": f.column,
                "value": f.value,
                "reason": f.reason,
                "code": str(f.code),
            }
            for f in findings
        ]
    return doc


def load_or_exit(folder: Path) -> Batch:
    from market.io.read import load_batch

    with exit_on_error():
        return load_batch(folder)


@contextlib.contextmanager
def progress(label: str, total: int) -> Iterator[Callable[[str], None]]:
    """A callback to call once per unit of work started (``total`` units): a bar with counts
    and ETA on a terminal; elsewhere plain log lines with the count, elapsed time and ETA."""
    started = time.monotonic()
    if err.is_terminal and not MODE["quiet"]:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True) as bar:
            task = bar.add_task(label, total=total)

            def advance(message: str) -> None:
                bar.update(task, advance=1, description=f"{label}: {message}")

            yield advance
        return
    count, last = [0], [0.0]

    def log_line(message: str) -> None:
        count[0] += 1
        now = time.monotonic() - started
        if now - last[0] >= LOG_EVERY_S or count[0] in (1, total):
            last[0] = now
            eta = now / count[0] * (total - count[0]) if count[0] else 0.0
            log.info("%s [%d/%d] %s (%.0f s elapsed, about %.0f s left)", label, count[0], total, message, now, eta)

    yield log_line
    log.info("%s done in %.1f s", label, time.monotonic() - started)
