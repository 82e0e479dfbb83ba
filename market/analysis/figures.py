"""The comparison report's figures (plotly): every risk, costs per buyer, merit orders,
prices on an ordinary scale, violations and coordination skeletons. Times are UTC."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from market.analysis.verdict import RISKS
from market.clearing.results import ClearingResult
from market.design.skeleton import skeleton_edges
from market.design.spec import TIERS, Design
from market.enums import TSO_ID
from market.io.batch import Batch

PALETTE = [
    "#1b6ca8",
    "#e07a1f",
    "#3a9d5d",
    "#b8336a",
    "#7a5cc4",
    "#8c6d31",
    "#2a9d8f",
    "#d1495b",
    "#5e6472",
    "#00798c",
    "#edae49",
]


SYMBOLS = [
    "circle",
    "square",
    "diamond",
    "triangle-up",
    "x",
    "star",
    "cross",
    "triangle-down",
    "hexagon",
    "pentagon",
    "bowtie",
    "hourglass",
]


def cost_by_buyer(results: Sequence[ClearingResult]) -> go.Figure:
    """What each buyer paid, one panel per buyer with its own scale (a DSO's few hundred
    EUR stay readable beside the TSO's tens of thousands)."""
    buyers = sorted({b for r in results for b in r.metrics["cost_by_buyer_eur"]})
    fig = make_subplots(rows=1, cols=max(len(buyers), 1), subplot_titles=[f"{b} (EUR)" for b in buyers])
    for k, b in enumerate(buyers, start=1):
        fig.add_bar(
            x=[r.design.name for r in results],
            y=[r.metrics["cost_by_buyer_eur"].get(b, 0.0) for r in results],
            marker_color=[PALETTE[i % len(PALETTE)] for i in range(len(results))],
            showlegend=False,
            row=1,
            col=k,
        )
    fig.update_layout(title="Cost per buyer (EUR, as paid), each buyer on its own scale")
    return fig


def merit_order(batch: Batch, results: Sequence[ClearingResult]) -> go.Figure:
    """Offer curves (energy offered over the batch, by price) per buyer and direction,
    with each design's accepted energy from that buyer marked on the curve."""
    h = batch.config.interval_hours
    bids = batch.bids
    groups = [("tso", d) for d in ("up", "down")] + [(dso, d) for dso in batch.dsos for d in ("up", "down")]
    groups = [g for g in groups if ((bids["direction"] == g[1]) & ((bids["dso_id"] == g[0]) | (g[0] == TSO_ID))).any()]
    fig = make_subplots(rows=1, cols=len(groups), subplot_titles=[f"{b} {d}" for b, d in groups])
    for k, (buyer, direction) in enumerate(groups, start=1):
        sel = bids[(bids["direction"] == direction) & ((bids["dso_id"] == buyer) | (buyer == TSO_ID))].sort_values(
            ["price_eur_mwh", "bid_id"]
        )
        cum = np.cumsum(sel["quantity_mw"].to_numpy() * h)
        fig.add_scatter(
            x=np.r_[0, cum],
            y=np.r_[sel["price_eur_mwh"].iloc[:1], sel["price_eur_mwh"]],
            mode="lines",
            line_shape="vh",
            name="offers",
            line_color="#888",
            showlegend=k == 1,
            row=1,
            col=k,
        )
        for i, r in enumerate(results):
            aw = r.awards[(r.awards["buyer_id"] == buyer) & (r.awards["direction"] == direction)]
            if not len(aw):
                continue
            mwh = float(aw["energy_mwh"].sum())
            price = float(np.average(aw["bid_price_eur_mwh"], weights=aw["quantity_mw"]))
            fig.add_scatter(
                x=[mwh],
                y=[price],
                mode="markers",
                name=r.design.name,
                marker=dict(size=12, color=PALETTE[i % len(PALETTE)], symbol=SYMBOLS[i % len(SYMBOLS)], opacity=0.85),
                showlegend=k == 1,
                row=1,
                col=k,
            )
        fig.update_xaxes(title_text="MWh", row=1, col=k)
    fig.update_yaxes(title_text="EUR/MWh", row=1, col=1)
    fig.update_layout(
        title="Merit order per buyer: offers, and energy accepted per design (marker at mean accepted bid price)"
    )
    return fig


def price_heatmap(results: Sequence[ClearingResult], voll_eur_mwh: float) -> go.Figure:
    """Prices per area/direction and interval on a scale of the ordinary prices: the colour
    scale spans the 2nd-98th percentile of the prices below half of VoLL; intervals priced at
    VoLL level (unmet need) are counted in the title and shown at the top of the scale (the
    hover shows every real value)."""
    every = np.concatenate([r.prices["price_eur_mwh"].to_numpy(float) for r in results]) if results else np.zeros(0)
    ordinary = every[np.abs(every) < voll_eur_mwh / 2]
    scarce = int((np.abs(every) >= voll_eur_mwh / 2).sum())
    lo, hi = np.percentile(ordinary, [2, 98]) if len(ordinary) else (0.0, 1.0)
    fig = make_subplots(
        rows=len(results),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[r.design.name for r in results],
        vertical_spacing=0.06 if len(results) < 8 else 0.02,
    )
    for i, r in enumerate(results, start=1):
        p = r.prices.assign(label=lambda d: d["area_id"] + " " + d["direction"])
        _add_grid(
            fig, p.pivot_table(index="label", columns="interval_start", values="price_eur_mwh", aggfunc="first"), i
        )
    fig.update_xaxes(title_text="interval start (UTC)", row=len(results), col=1)
    fig.update_layout(
        title=(
            f"Cleared price by area, direction and interval (EUR/MWh; colours span the ordinary prices "
            f"{lo:,.1f}-{hi:,.1f}; {scarce} prices at VoLL level ({voll_eur_mwh:,.0f}) show at the top colour)"
        ),
        coloraxis=dict(colorscale="Viridis", cmin=float(lo), cmax=float(max(hi, lo + 1e-9))),
        height=160 * len(results) + 100,
    )
    return fig


def _add_grid(fig: go.Figure, grid: pd.DataFrame, row: int) -> None:
    """One design's rows x intervals (UTC clock times) on the shared colour axis."""
    fig.add_heatmap(
        z=grid.to_numpy(),
        x=[t.strftime("%H:%M") for t in grid.columns],
        y=list(grid.index),
        coloraxis="coloraxis",
        row=row,
        col=1,
    )


def violations_heatmap(results: Sequence[ClearingResult]) -> go.Figure:
    fig = make_subplots(
        rows=len(results),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[r.design.name for r in results],
        vertical_spacing=0.06,
    )
    zmax = max((float(r.flows["violation_mw"].max()) for r in results if len(r.flows)), default=0.0) or 1.0
    for i, r in enumerate(results, start=1):
        f = r.flows
        grid = (
            f.pivot_table(index="constraint_id", columns="interval_start", values="violation_mw", aggfunc="first")
            if len(f)
            else pd.DataFrame()
        )
        _add_grid(fig, grid, i)
    fig.update_xaxes(title_text="interval start (UTC)", row=len(results), col=1)
    fig.update_layout(
        title="Network violations by constraint and interval (MW over the limit)",
        coloraxis=dict(colorscale="Reds", cmin=0, cmax=zmax),
        height=220 * len(results) + 80,
    )
    return fig


def coordination_bars(results: Sequence[ClearingResult]) -> go.Figure:
    """Every risk of the verdict, one panel each with its unit."""
    names = [r.design.name for r in results]
    cols = 3
    rows = -(-len(RISKS) // cols)
    fig = make_subplots(
        rows=rows, cols=cols, subplot_titles=[f"{r.label} ({r.unit})" for r in RISKS], vertical_spacing=0.18
    )
    for k, risk in enumerate(RISKS):
        fig.add_bar(
            x=names,
            y=[risk.measure(r.metrics) for r in results],
            showlegend=False,
            marker_color=[PALETTE[i % len(PALETTE)] for i in range(len(names))],
            row=k // cols + 1,
            col=k % cols + 1,
        )
    fig.update_annotations(font_size=11)
    fig.update_layout(title="Every risk (report Table 1) and the cost, measured from the runs", height=330 * rows)
    return fig


def skeleton_figure(design: Design) -> go.Figure:
    """Coordination skeleton: tiers as boxes top-down, dispatch hops as arrows."""
    edges = skeleton_edges(design)
    used = [t for t in TIERS if any(t in (a, b) for a, b, _ in edges)]
    y = {t: -i for i, t in enumerate(used)}
    x = {t: 0.0 for t in used}
    fig = go.Figure()
    for n, (a, b, kind) in enumerate(edges):
        offset = 0.15 * ((n % 3) - 1)
        fig.add_annotation(
            x=x[b] + offset,
            y=y[b] + 0.18,
            ax=x[a] + offset,
            ay=y[a] - 0.18,
            xref="x",
            yref="y",
            axref="x",
            ayref="y",
            showarrow=True,
            arrowhead=3,
            arrowwidth=1.6,
            arrowcolor="#888" if kind == "data" else "#b8336a" if "tso" in a else "#1b6ca8",
            text="",
        )
    fig.add_scatter(
        x=[x[t] for t in used],
        y=[y[t] for t in used],
        mode="markers+text",
        text=[t.upper() for t in used],
        textposition="middle right",
        marker=dict(symbol="square", size=26, color="#e8eef5", line=dict(color="#333", width=1.5)),
        showlegend=False,
        hovertext=[t for t in used],
    )
    fig.update_xaxes(visible=False, range=[-0.6, 1.0])
    fig.update_yaxes(visible=False, range=[-len(used) + 0.4, 0.6])
    fig.update_layout(title=design.name, height=80 + 70 * len(used), width=260, margin=dict(l=10, r=10, t=40, b=10))
    return fig
