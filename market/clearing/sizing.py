"""How large a streamed batch's stretches are (:mod:`market.clearing.stream`), with nothing
heavy imported: the command line sizes a batch from its Parquet footer and starts its
workers before it imports pandas and the clearing code.
"""

from __future__ import annotations

BIDS_PER_STRETCH = 500_000  # bid-intervals a worker clears at once
STREAM_FROM_BIDS = 500_000  # smaller batches are cleared whole (a worker costs ~2 s to start)
WORKERS = 2


def stretch_count(rows: int, per_stretch: int = BIDS_PER_STRETCH, at_least: int = WORKERS) -> int:
    """How many stretches :func:`market.clearing.stream.stretches` aims at for ``rows``
    bid-intervals (fewer where blocks or exclusive groups leave fewer cuts)."""
    return max(at_least, -(-rows // per_stretch))
