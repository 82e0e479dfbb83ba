"""flexmarket: clear distribution-level flexibility markets under switchable designs.

Public API::

    from market import load_batch, clear
    batch = load_batch("data/sample")
    result = clear(batch, design="dso-led", pricing="pay-as-clear")
    result.awards, result.prices, result.metrics
"""

from market.batch import Batch, BatchConfig, load_batch
from market.clearing import clear
from market.design import Design, Step, load_design
from market.errors import (
    BatchError,
    BatchValidationError,
    DesignError,
    Finding,
    FlexmarketError,
    SolverError,
)
from market.results import ClearingResult, ClearingStatus

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
