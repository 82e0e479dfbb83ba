"""The optional parts of flexmarket and the pip extra that installs each.

A core install (``pip install flexmarket``) clears, compares without a report, settles and
keeps the store. The rest comes with extras::

    grids   pandapower, SimBench, PyPSA       network import, grid samples
    uftp    shapeshifter-uftp                 uftp import / export / settlement
    dask    dask, distributed                 --scheduler, sweep
    report  plotly                            report.html of compare, demo, sweep; baseline plots
    docs    MkDocs Material, mkdocstrings     the documentation site
    dev     all of the above, and the test and lint tools

:func:`require` refuses, before anything runs (exit 2), a command whose extra is missing,
naming it and the pip command that installs it.
"""

from __future__ import annotations

import importlib.util
from enum import StrEnum

from market.errors import MissingExtraError


class Extra(StrEnum):
    """A pip extra of flexmarket."""

    GRIDS = "grids"
    UFTP = "uftp"
    DASK = "dask"
    REPORT = "report"


MODULES: dict[Extra, tuple[str, ...]] = {
    Extra.GRIDS: ("pandapower",),
    Extra.UFTP: ("shapeshifter_uftp",),
    Extra.DASK: ("dask", "distributed"),
    Extra.REPORT: ("plotly",),
}


def missing(extra: Extra) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    out = []
    for name in MODULES[extra]:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(name)
    return out


def require(extra: Extra, what: str) -> None:
    """Raise :class:`MissingExtraError` (exit 2) if ``extra`` is not installed."""
    absent = missing(extra)
    if absent:
        raise MissingExtraError(
            f"{what} needs flexmarket's '{extra.value}' extra ({', '.join(absent)} not installed): "
            f"pip install 'flexmarket[{extra.value}]'"
        )
