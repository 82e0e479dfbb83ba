"""Scenario sweeps: designs x a grid of batch transformations, fanned out with Dask.

Grid parameters (``sweep.toml``, table ``[grid]``, each a list; the sweep is their
Cartesian product):

``bid_volume_scale``      multiply every bid's quantity (and minimum) by this
``amber_headroom_scale``  multiply amber headrooms by this
``voll_eur_mwh``          the batch's value of lost load
``need_scale``            multiply every need's quantity by this
``interface_steps``       price bands of every interface-offer step (``view = "interface"``)
                          of each design: the price of layered decomposition against
                          ``single`` as a function of the number of bands

Local by default (a ``LocalCluster`` of processes); a real cluster when a scheduler
address is given. Results are one row per grid point, design and metric.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from market.analysis.comparison import comparison_table
from market.clearing.parallel import parallel_map
from market.clearing.run import clear
from market.design.spec import Design, load_design
from market.enums import DEFAULT_PRICING, Pricing
from market.errors import FlexmarketError
from market.io.batch import Batch
from market.io.strict import is_number, parse_toml

PARAMETERS = ("bid_volume_scale", "amber_headroom_scale", "voll_eur_mwh", "need_scale", "interface_steps")


@dataclass(frozen=True)
class GridPoint:
    bid_volume_scale: float = 1.0
    amber_headroom_scale: float = 1.0
    voll_eur_mwh: float | None = None
    need_scale: float = 1.0
    interface_steps: float | None = None

    def label(self) -> str:
        return ", ".join(f"{k}={v:g}" for k, v in self.__dict__.items() if v is not None)


MAX_GRID_POINTS = 10_000  # each point clears every design: more is a mistake, not a sweep


def load_grid(path: str | Path) -> list[GridPoint]:
    """The grid points of a ``sweep.toml`` (refused, naming the file, if it is not TOML, is
    nested too deep, or expands to more than :data:`MAX_GRID_POINTS` points)."""
    try:
        raw = parse_toml(Path(path).read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise FlexmarketError(f"{path}: cannot be read ({exc})") from exc
    except ValueError as exc:
        raise FlexmarketError(str(exc)) from exc
    grid = raw.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise FlexmarketError(f"{path}: needs a [grid] table with lists of values")
    unknown = set(grid) - set(PARAMETERS)
    if unknown:
        raise FlexmarketError(f"{path}: unknown grid parameter(s) {sorted(unknown)}; known: {', '.join(PARAMETERS)}")
    for k, v in grid.items():
        if not isinstance(v, list) or not v or not all(is_number(x) and x > 0 for x in v):
            raise FlexmarketError(f"{path}: grid.{k} must be a non-empty list of numbers > 0")
    if not all(isinstance(x, int) and not isinstance(x, bool) and x <= 1000 for x in grid.get("interface_steps", [])):
        raise FlexmarketError(f"{path}: grid.interface_steps must list whole numbers in [1, 1000]")
    keys = sorted(grid)
    points = math.prod(len(grid[k]) for k in keys)
    if points > MAX_GRID_POINTS:
        raise FlexmarketError(f"{path}: the grid expands to {points:,} points; at most {MAX_GRID_POINTS:,}")
    return [
        GridPoint(**{k: float(v) for k, v in zip(keys, combo, strict=True)})
        for combo in itertools.product(*(grid[k] for k in keys))
    ]


def apply_point(batch: Batch, p: GridPoint) -> Batch:
    """The batch as it would be under ``p`` (a new object; the input is untouched)."""
    bids = batch.bids.copy()
    bids["quantity_mw"] = bids["quantity_mw"] * p.bid_volume_scale
    bids["min_quantity_mw"] = bids["min_quantity_mw"] * p.bid_volume_scale
    needs = batch.needs.copy()
    needs["quantity_mw"] = needs["quantity_mw"] * p.need_scale
    signals = batch.signals.copy()
    for c in ("headroom_up_mw", "headroom_down_mw"):
        signals[c] = signals[c] * p.amber_headroom_scale
    out = batch.replace(bids=bids, needs=needs, signals=signals)
    if p.voll_eur_mwh is not None:
        out = out.with_config(voll_eur_mwh=p.voll_eur_mwh)
    return out


def _run_point(batch: Batch, point: GridPoint, design: Design, pricing: str | Pricing) -> pd.DataFrame:
    if point.interface_steps is not None:
        design = design.with_interface_steps(int(point.interface_steps))
    r = clear(apply_point(batch, point), design, pricing)
    return (
        comparison_table([r])
        .drop(columns="pricing")
        .assign(**{k: getattr(point, k) for k in PARAMETERS}, point=point.label())
    )


def _run_task(batch: Batch, task: tuple[GridPoint, Design], pricing: Pricing) -> pd.DataFrame:
    return _run_point(batch, task[0], task[1], pricing)


def run_sweep(
    batch: Batch,
    designs: Sequence[str | Design],
    grid: Sequence[GridPoint],
    pricing: str | Pricing = DEFAULT_PRICING,
    scheduler: str | None = None,
    n_workers: int = 2,
) -> pd.DataFrame:
    loaded = [d if isinstance(d, Design) else load_design(d) for d in designs]
    tasks = [(p, d) for p in grid for d in loaded]
    run = partial(_run_task, pricing=Pricing(pricing))
    parts = parallel_map(run, batch, tasks, scheduler=scheduler, processes=True, workers=n_workers)
    columns = [*PARAMETERS, "design", "point", "metric", "value", "unit"]
    return (
        pd.concat(parts, ignore_index=True)[columns].sort_values(["point", "design", "metric"]).reset_index(drop=True)
    )


def sweep_figure(
    results: pd.DataFrame,
    metrics: Sequence[str] = ("system_cost_eur", "unmet_mwh", "distribution_violation_mwh", "tier_bypassing_count"),
) -> go.Figure:
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=list(metrics))
    for k, metric in enumerate(metrics, start=1):
        sub = results[results["metric"] == metric]
        for i, (design, g) in enumerate(sub.groupby("design")):
            fig.add_scatter(
                x=g["point"],
                y=g["value"],
                mode="markers+lines",
                name=str(design),
                legendgroup=str(design),
                showlegend=k == 1,
                row=1,
                col=k,
                marker_color=f"hsl({(i * 47) % 360},60%,45%)",
            )
    fig.update_layout(title="Sweep: metrics per grid point and design", template="plotly_white", height=520)
    fig.update_xaxes(tickangle=45)
    return fig
