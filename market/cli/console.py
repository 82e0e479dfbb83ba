"""Shared plumbing of the commands: consoles, exit codes, errors as one red line."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from market.errors import FlexmarketError
from market.io.batch import Batch
from market.io.read import load_batch

_WIDTH = None if sys.stdout.isatty() else 160  # logs and pipes get wide, untruncated tables


console = Console(width=_WIDTH)


err = Console(stderr=True)


EXIT_INVALID = 2


EXIT_FAILED = 1


@contextlib.contextmanager
def exit_on_error(code: int = EXIT_INVALID, failed: tuple[type[FlexmarketError], ...] = ()) -> Iterator[None]:
    """Report a flexmarket error as one red message (no traceback) and exit with ``code``,
    or with EXIT_FAILED for the ``failed`` kinds (the inputs were fine, the job was not)."""
    try:
        yield
    except FlexmarketError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_FAILED if isinstance(exc, failed) else code) from exc


def load_or_exit(folder: Path) -> Batch:
    with exit_on_error():
        return load_batch(folder)


def spinner() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True)
