"""flexmarket: clear distribution-level flexibility markets under switchable designs.

Public API (what the ``flexmarket`` commands do, from a notebook)::

    from market import load_batch, clear, compare, render_report
    batch = load_batch("data/sample")
    result = clear(batch, design="dso-led", pricing="pay-as-clear")
    result.awards, result.prices, result.metrics
    results = compare(batch, ["single", "dso-led", "tso-only"], out="runs/compare")
    html = render_report(batch, results)

The layers, in the order the data flows (each imports only those before it):
``market.enums``/``market.errors`` -> ``market.io`` (contract, read, validate, write)
-> ``market.design`` (designs as data) -> ``market.clearing`` (prepare, formulate,
solve, read back, assemble, measure) -> ``market.analysis`` (compare, sweep, report)
-> ``market.cli``. Settlement lives in the ``settlement`` package.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from market.analysis.compare import compare
    from market.analysis.report import render_report
    from market.clearing.results import ClearingResult, ClearingStatus
    from market.clearing.run import clear
    from market.design.spec import Design, Step, load_design
    from market.enums import Buyer, ConstraintScope, Direction, Pricing, Service, SignalMode, SignalState, Tier
    from market.errors import (
        BatchError,
        BatchValidationError,
        DesignError,
        Finding,
        FindingCode,
        FlexmarketError,
        SettlementError,
        SolverError,
    )
    from market.io.batch import Batch, BatchConfig
    from market.io.read import load_batch

try:
    __version__ = metadata.version("flexmarket")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# where each public name lives: imported on first use, so that ``import market.cli`` (and
# the worker processes it spawns) start without pandas, pandera, scipy and HiGHS
_LAZY = {
    "compare": "market.analysis.compare",
    "render_report": "market.analysis.report",
    "ClearingResult": "market.clearing.results",
    "ClearingStatus": "market.clearing.results",
    "clear": "market.clearing.run",
    "Design": "market.design.spec",
    "Step": "market.design.spec",
    "load_design": "market.design.spec",
    **dict.fromkeys(
        ("Buyer", "ConstraintScope", "Direction", "Pricing", "Service", "SignalMode", "SignalState", "Tier"),
        "market.enums",
    ),
    **dict.fromkeys(
        (
            "BatchError",
            "BatchValidationError",
            "DesignError",
            "Finding",
            "FindingCode",
            "FlexmarketError",
            "SettlementError",
            "SolverError",
        ),
        "market.errors",
    ),
    "Batch": "market.io.batch",
    "BatchConfig": "market.io.batch",
    "load_batch": "market.io.read",
}


def __getattr__(name: str) -> Any:
    """The public names, each imported from its module on first use (see ``_LAZY``)."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module 'market' has no attribute {name!r}")


__all__ = [
    "__version__",
    "Batch",
    "BatchConfig",
    "load_batch",
    "clear",
    "compare",
    "render_report",
    "Design",
    "Step",
    "load_design",
    "ClearingResult",
    "ClearingStatus",
    "Direction",
    "Service",
    "SignalState",
    "Pricing",
    "Buyer",
    "ConstraintScope",
    "SignalMode",
    "Tier",
    "FlexmarketError",
    "BatchError",
    "BatchValidationError",
    "DesignError",
    "SolverError",
    "SettlementError",
    "Finding",
    "FindingCode",
]
