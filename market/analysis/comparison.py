"""Clearing one batch under several designs and tabulating their metrics side by side."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import pandas as pd

from market.clearing.parallel import parallel_map
from market.clearing.results import ClearingResult
from market.clearing.run import clear
from market.design.spec import Design, load_design
from market.enums import DEFAULT_PRICING, Pricing
from market.errors import DesignError
from market.io.batch import Batch

UNITS = (
    ("_mwh", "MWh"),
    ("_mw", "MW"),
    ("_eur", "EUR"),
    ("_s", "s"),
    ("_count", "count"),
    ("_parties", "count"),
    ("_variables", "count"),
    ("_constraints", "count"),
    ("_integer", "count"),
    ("_models", "count"),
    ("_intervals", "count"),
    ("_endpoints", "count"),
    ("_links", "count"),
    ("_stages", "count"),
    ("_tiers_max", "tiers"),
    ("_tiers_mean", "tiers"),
    ("_min", "share"),
    ("_by_dso", "share"),
)

# Which way is better, for colouring the report: -1 lower is better, +1 higher is better.
BETTER = {
    "tier_bypassing": -1,
    "hidden_coupling": -1,
    "violation": -1,
    "observability": 1,
    "latency": -1,
    "scalability": -1,
    "cyber": -1,
    "cost": -1,
    "unmet": -1,
    "imbalance": -1,
    "welfare": 1,
    "liquidity": 1,
    "make_whole": -1,
    "reserved_unused": -1,
    "signal_breach": -1,
    "value_served": 1,
    "shared_der": 0,
}


def unit_of(metric: str) -> str:
    base = metric.split(".", 1)[0]
    for suffix, unit in UNITS:
        if base.endswith(suffix) or f"{suffix}_" in base:
            return unit
    return ""


def flatten(metrics: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            for sub, x in v.items():
                out[f"{k}.{sub}"] = float(x)
        else:
            out[k] = float(v)
    return out


# metrics a design's wiring decides (its instruction paths, data links, observed_by_dso, hop
# latencies and stage count, markets): a difference in them is a property of the design,
# not a finding; every other metric is measured (physics, dispatch, money, model sizes)
STRUCTURAL_PREFIXES = ("tier_bypassing", "observability", "latency", "cyber_exposure", "fragmentation", "routes_")


MEASURED_INFORMATION = ("observability_error", "information_", "race_", "cost_of_information")


def kind_of(metric: str) -> str:
    """``structural`` or ``measured`` (see :data:`STRUCTURAL_PREFIXES`; the information metrics
    of an informed batch are measured)."""
    if metric.startswith(MEASURED_INFORMATION):
        return "measured"
    return "structural" if metric.startswith(STRUCTURAL_PREFIXES) else "measured"


def comparison_table(results: Sequence[ClearingResult]) -> pd.DataFrame:
    """One row per design and metric, with its unit and kind (``measured`` or ``structural``)."""
    rows = []
    for r in results:
        for metric, value in flatten(r.metrics).items():
            rows.append(
                {
                    "design": r.design.name,
                    "metric": metric,
                    "value": value,
                    "unit": unit_of(metric),
                    "pricing": r.pricing.value,
                    "kind": kind_of(metric),
                }
            )
    return pd.DataFrame(rows)


def clear_designs(
    batch: Batch,
    designs: Sequence[str | Design],
    pricing: str | Pricing = DEFAULT_PRICING,
    scheduler: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ClearingResult]:
    """Clear each design on the same batch, concurrently (Dask: threads, or a cluster).

    ``progress`` is called as each design's steps start (locally; a cluster reports nothing)."""
    loaded = [d if isinstance(d, Design) else load_design(d) for d in designs]
    names = [d.name for d in loaded]
    if len(set(names)) != len(names):
        raise DesignError(f"design names must be unique: {names}")
    one = partial(_clear_one, pricing=Pricing(pricing), progress=None if scheduler else progress)
    return parallel_map(one, batch, loaded, scheduler=scheduler)


def _clear_one(
    batch: Batch, design: Design, pricing: Pricing, progress: Callable[[str], None] | None = None
) -> ClearingResult:
    return clear(batch, design, pricing, progress=progress)
