"""The comparison report: one self-contained HTML file (plotly inlined, no network needed)."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from market.analysis.comparison import BETTER, comparison_table
from market.clearing.results import ClearingResult
from market.design.skeleton import skeleton_edges
from market.design.spec import TIERS, Design
from market.enums import TSO_ID
from market.io.batch import Batch

HEADLINE = [
    ("system_cost_eur", "System cost (bids - value + VoLL x unmet + imbalance + violations)"),
    ("total_cost_eur", "Paid by buyers (incl. make-whole)"),
    ("make_whole_eur", "Make-whole for paradoxically accepted bids"),
    ("unmet_mwh", "Unmet need (TSO, and DSO relief physically short)"),
    ("distribution_violation_mwh", "Distribution violations"),
    ("transmission_violation_mwh", "Transmission violations"),
    ("signal_breach_mw", "Traffic-light breaches by the TSO (MW)"),
    ("imbalance_mwh", "Imbalance left to the TSO"),
    ("tier_bypassing_mw", "Tier bypassing (MW)"),
    ("hidden_coupling_conflict_mw", "Hidden coupling: opposite instructions (MW)"),
    ("hidden_coupling_undone_mwh", "Hidden coupling: DSO relief undone (MWh)"),
    ("hidden_coupling_blind_violation_mwh", "Hidden coupling: violations by blind operators (MWh)"),
    ("shared_der_intervals", "Shared DER in one joint optimisation (visible, DER-intervals)"),
    ("observability_min", "Observability (worst DSO share)"),
    ("latency_s_max", "Latency, longest instruction incl. clearing stages (s)"),
    ("scalability_tso_variables", "TSO's largest optimisation (variables)"),
    ("cyber_exposure_endpoints", "Cyber exposure (activated endpoints linked to the TSO)"),
    ("welfare_eur", "Welfare (value - cost - consequences)"),
]
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


def _better(metric: str) -> int:
    return next((v for k, v in BETTER.items() if k in metric), 0)


def comparison_html(results: Sequence[ClearingResult]) -> str:
    table = comparison_table(results)
    wide = table.pivot_table(index="metric", columns="design", values="value", aggfunc="first")
    designs = [r.design.name for r in results]
    rows = []
    for metric, label in HEADLINE:
        if metric not in wide.index:
            continue
        vals = wide.loc[metric, designs].to_numpy(dtype=float)
        sign = _better(metric)
        best = float(np.nanmin(vals) if sign < 0 else np.nanmax(vals)) if sign else 0.0
        worst = float(np.nanmax(vals) if sign < 0 else np.nanmin(vals)) if sign else 0.0
        cells = []
        for v in vals:
            cls = ""
            if sign and not np.isclose(best, worst):
                cls = "best" if np.isclose(v, best) else "worst" if np.isclose(v, worst) else ""
            cells.append(f'<td class="{cls}">{_fmt(v)}</td>')
        unit = table.loc[table["metric"] == metric, "unit"].iloc[0]
        rows.append(f"<tr><th>{html.escape(label)}</th><td class='unit'>{unit}</td>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{html.escape(d)}</th>" for d in designs)
    return (
        f'<table class="cmp"><thead><tr><th>metric</th><th>unit</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if float(v).is_integer():
        return f"{int(v)}"
    return f"{v:,.3f}"


def cost_by_buyer(results: Sequence[ClearingResult]) -> go.Figure:
    fig = go.Figure()
    buyers = sorted({b for r in results for b in r.metrics["cost_by_buyer_eur"]})
    for i, r in enumerate(results):
        costs = r.metrics["cost_by_buyer_eur"]
        fig.add_bar(
            name=r.design.name, x=buyers, y=[costs.get(b, 0.0) for b in buyers], marker_color=PALETTE[i % len(PALETTE)]
        )
    fig.update_layout(barmode="group", title="Cost per buyer (EUR, as paid)", yaxis_title="EUR")
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
                marker=dict(size=11, color=PALETTE[i % len(PALETTE)]),
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


def price_heatmap(results: Sequence[ClearingResult]) -> go.Figure:
    """Prices per area/direction and interval; the colour scale spans the 2nd-98th percentile
    so a few VoLL-priced intervals do not wash out the rest (hover shows the real value)."""
    every = np.concatenate([r.prices["price_eur_mwh"].to_numpy(float) for r in results]) if results else np.zeros(1)
    lo, hi = np.percentile(every, [2, 98]) if len(every) else (0.0, 1.0)
    fig = make_subplots(
        rows=len(results),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[r.design.name for r in results],
        vertical_spacing=0.06,
    )
    for i, r in enumerate(results, start=1):
        p = r.prices.assign(label=lambda d: d["area_id"] + " " + d["direction"])
        grid = p.pivot_table(index="label", columns="interval_start", values="price_eur_mwh", aggfunc="first")
        fig.add_heatmap(
            z=grid.to_numpy(),
            x=[t.strftime("%H:%M") for t in grid.columns],
            y=list(grid.index),
            coloraxis="coloraxis",
            row=i,
            col=1,
        )
    fig.update_layout(
        title="Cleared price by area, direction and interval (EUR/MWh; colours clipped to the 2nd-98th percentile)",
        coloraxis=dict(colorscale="Viridis", cmin=float(lo), cmax=float(max(hi, lo + 1e-9))),
        height=200 * len(results) + 80,
    )
    return fig


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
        fig.add_heatmap(
            z=grid.to_numpy(),
            x=[t.strftime("%H:%M") for t in grid.columns],
            y=list(grid.index),
            coloraxis="coloraxis",
            row=i,
            col=1,
        )
    fig.update_layout(
        title="Network violations by constraint and interval (MW over the limit)",
        coloraxis=dict(colorscale="Reds", cmin=0, cmax=zmax),
        height=220 * len(results) + 80,
    )
    return fig


def coordination_bars(results: Sequence[ClearingResult]) -> go.Figure:
    names = [r.design.name for r in results]
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=[
            "tier bypassing (MW)",
            "hidden coupling: opposite instructions (MW)",
            "cyber exposure (endpoints)",
        ],
    )
    for k, metric in enumerate(
        ["tier_bypassing_mw", "hidden_coupling_conflict_mw", "cyber_exposure_endpoints"], start=1
    ):
        fig.add_bar(
            x=names,
            y=[r.metrics[metric] for r in results],
            showlegend=False,
            marker_color=[PALETTE[i % len(PALETTE)] for i in range(len(names))],
            row=1,
            col=k,
        )
    fig.update_layout(title="Coordination risks (report Table 1), measured from the runs")
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


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1200px;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:0} .sub{color:#666;margin-top:4px}
table.cmp{border-collapse:collapse;margin:16px 0;font-size:.92rem;width:100%}
table.cmp th,table.cmp td{padding:6px 10px;border-bottom:1px solid #e3e3e3;text-align:right}
table.cmp th:first-child{text-align:left} td.unit{color:#888;text-align:left}
td.best{background:#dff3e4;font-weight:600} td.worst{background:#fbe3e1}
.skeletons{display:flex;flex-wrap:wrap;gap:8px} .card{border:1px solid #e3e3e3;border-radius:6px}
.designs dt{font-weight:600;margin-top:8px} .designs dd{margin-left:16px;color:#444}
"""


def render_report(
    batch: Batch, results: Sequence[ClearingResult], title: str | None = None, extra_figures: Sequence[go.Figure] = ()
) -> str:
    """The whole report as one HTML string; plotly.js is inlined once."""
    import plotly.io as pio

    figs: list[go.Figure] = [
        cost_by_buyer(results),
        coordination_bars(results),
        merit_order(batch, results),
        price_heatmap(results),
        violations_heatmap(results),
        *extra_figures,
    ]
    parts = []
    for i, fig in enumerate(figs):
        fig.update_layout(template="plotly_white")
        parts.append(
            pio.to_html(fig, full_html=False, include_plotlyjs="inline" if i == 0 else False, div_id=f"plot-{i}")
        )
    skel = "".join(
        f'<div class="card">{pio.to_html(skeleton_figure(r.design), full_html=False, include_plotlyjs=False, div_id=f"skeleton-{i}", config={"displayModeBar": False})}</div>'  # noqa: E501
        for i, r in enumerate(results)
    )
    defs = "".join(
        f"<dt>{html.escape(r.design.name)} — {html.escape(r.design.title)}</dt>"
        f"<dd>{html.escape(r.design.description)} <em>Report section "
        f"{html.escape(r.design.report_section)}.</em></dd>"
        for r in results
    )
    cfg = batch.config
    title = title or f"Design comparison — {cfg.name}"
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title><style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="sub">{len(batch.bids):,} bids, {len(batch.needs):,} needs, {len(batch.dsos)} DSOs,
{len(cfg.intervals)} x {cfg.interval_minutes} min from {cfg.start.isoformat()}; pricing
{html.escape(results[0].pricing.value if results else "")}. Green = best, red = worst per row.</p>
{comparison_html(results)}
{parts[0]}{parts[1]}
<h2>Coordination skeletons</h2><div class="skeletons">{skel}</div>
{"".join(parts[2:])}
<h2>Designs</h2><dl class="designs">{defs}</dl>
</body></html>"""
