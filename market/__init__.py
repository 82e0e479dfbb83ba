"""flexmarket: clear distribution-level flexibility markets under switchable designs.

Public API::

    from market import load_batch, clear
    batch = load_batch("data/sample")
    result = clear(batch, design="dso-led", pricing="pay-as-clear")
    result.awards, result.prices, result.metrics
"""

from market.clearing.results import ClearingResult, ClearingStatus
from market.clearing.run import clear
from market.design.spec import Design, Step, load_design
from market.errors import (
    BatchError,
    BatchValidationError,
    DesignError,
    Finding,
    FlexmarketError,
    SolverError,
)
from market.io.batch import Batch, BatchConfig
from market.io.read import load_batch

__all__ = [
    "Batch",
    "BatchConfig",
    "load_batch",
    "clear",
    "Design",
    "Step",
    "load_design",
    "BatchError",
    "BatchValidationError",
    "DesignError",
    "Finding",
    "FlexmarketError",
    "SolverError",
    "ClearingResult",
    "ClearingStatus",
]
