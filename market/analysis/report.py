"""The comparison report: one self-contained HTML file (plotly inlined, no network needed)."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from market.analysis.comparison import BETTER, comparison_table, kind_of
from market.analysis.figures import (
    coordination_bars,
    cost_by_buyer,
    merit_order,
    price_heatmap,
    skeleton_figure,
    violations_heatmap,
)
from market.analysis.verdict import (
    REFERENCE_DESIGN,
    RISKS,
    agreement_tally,
    identical_dispatch,
    risk_table,
    sentences,
)
from market.clearing.results import ClearingResult
from market.io.batch import Batch

HEADLINE = [
    ("system_cost_eur", "System cost (bids + availability - value + VoLL x unmet + imbalance + violations)"),
    ("total_cost_eur", "Paid by buyers (incl. make-whole)"),
    ("make_whole_eur", "Make-whole for paradoxically accepted bids"),
    ("unmet_mwh", "Unmet need (TSO, and DSO relief physically short)"),
    ("availability_cost_eur", "Availability paid for reserved capacity"),
    ("reserved_unused_mwh", "Reserved but never activated (MWh)"),
    ("unmet_reserved_by_other_mwh", "Unmet need that capacity the other buyer reserved could have served (MWh)"),
    ("distribution_violation_mwh", "Distribution violations"),
    ("transmission_violation_mwh", "Transmission violations"),
    ("signal_breach_mw", "Traffic-light breaches by the TSO (MW)"),
    ("imbalance_mwh", "Imbalance left to the TSO"),
    ("tier_bypassing_mwh", "Tier bypassing (MWh)"),
    ("hidden_coupling_conflict_mw", "Hidden coupling: opposite instructions (MW)"),
    ("hidden_coupling_undone_mwh", "Hidden coupling: DSO relief undone (MWh)"),
    ("hidden_coupling_blind_violation_mwh", "Hidden coupling: violations by blind operators (MWh)"),
    ("shared_der_intervals", "Shared DER in one joint optimisation (visible, DER-intervals)"),
    ("observability_min", "Observability (worst DSO share)"),
    ("observability_error_mw", "Observability: worst DSO's flow error (MW, measured)"),
    ("latency_s_max", "Latency, longest instruction incl. clearing stages (s)"),
    ("information_age_s_max", "Age of the state decided on, longest (s, measured)"),
    ("information_age_s_mean", "Age of the state decided on, MWh-weighted mean (s, measured)"),
    ("race_conflict_mwh", "Race conditions: activated where operators held different versions (MWh)"),
    ("information_violation_mwh", "Violations caused by late information (MWh)"),
    ("cost_of_information_eur", "Cost of information (system cost above perfect information)"),
    ("scalability_tso_variables", "TSO's largest optimisation (variables)"),
    ("cyber_exposure_registered_endpoints", "Cyber exposure (endpoints registered with a link into the TSO)"),
    ("cyber_exposure_endpoints", "Cyber exposure (activated endpoints linked to the TSO)"),
    ("hidden_coupling_sold_twice_mwh", "MWh sold twice by blind markets (delivered once)"),
    ("tier_bypassing_information_links", "Data links that skip the DSO (information only)"),
    ("welfare_eur", "Welfare (value - cost - consequences)"),
]


def _better(metric: str) -> int:
    return next((v for k, v in BETTER.items() if k in metric), 0)


TOLERANCE = {"EUR": 1.0, "MWh": 1e-3, "MW": 1e-3, "share": 5e-3, "s": 0.5, "count": 0.5, "tiers": 0.5}


def comparison_html(results: Sequence[ClearingResult], reference: str | None = None) -> str:
    """Every headline metric per design; green / red where a design is better / worse than
    the reference design by more than the unit's tolerance (never on noise)."""
    table = comparison_table(results)
    wide = table.pivot_table(index="metric", columns="design", values="value", aggfunc="first")
    designs = [r.design.name for r in results]
    ref = reference if reference in designs else (REFERENCE_DESIGN if REFERENCE_DESIGN in designs else designs[0])
    rows = []
    for metric, label in HEADLINE:
        if metric not in wide.index:
            continue
        vals = wide.loc[metric, designs].to_numpy(dtype=float)
        structural = kind_of(metric) == "structural"
        sign = 0 if structural else _better(metric)  # a property of the wiring is never coloured a finding
        label = f"{label} (structural)" if structural else label
        unit = table.loc[table["metric"] == metric, "unit"].iloc[0]
        base = float(wide.loc[metric, ref])
        cells = []
        for v in vals:
            cls = ""
            if sign and abs(v - base) > TOLERANCE.get(unit, 1e-6):
                cls = "best" if np.sign(v - base) == sign else "worst"
            cells.append(f'<td class="{cls}">{_fmt(v)}</td>')
        rows.append(f"<tr><th>{html.escape(label)}</th><td class='unit'>{unit}</td>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{html.escape(d)}</th>" for d in designs)
    return (
        f'<table class="cmp"><thead><tr><th>metric</th><th>unit</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def verdict_html(results: Sequence[ClearingResult], reference: str | None = None) -> str:
    """Up top: one sentence per risk, the designs that dispatched identically, and the
    report's predictions against the measurement (each against today's TSO-centric model)."""
    table = risk_table(results, reference)
    ref = table["reference"].iloc[0]
    lines = "".join(f"<li>{html.escape(s)}</li>" for s in sentences(table))
    same = identical_dispatch(results)
    twins = (
        "; ".join(" = ".join(html.escape(n) for n in g) for g in same)
        if same
        else "no two designs dispatched identically"
    )
    names = [r.design.name for r in results if r.design.name != ref]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for risk in RISKS:
        t = table[table["risk"] == risk.key].set_index("design")
        cells = []
        for n in names:
            row = t.loc[n]
            measured = {"better": "better", "worse": "worse", "equal": "same"}[row["verdict"]]
            if row["expected"]:
                ok = bool(row["agrees"])
                mark, cls = ("agrees", "agree") if ok else ("differs", "differ")
                why = f"<br><small>{html.escape(row['note'])}</small>" if not ok and row["note"] else ""
                cells.append(
                    f'<td class="{cls}" title="{html.escape(row["source"])}">'
                    f"report: {row['expected']} <small>({html.escape(row['basis'])})</small><br>"
                    f"measured: {measured} ({mark}){why}</td>"
                )
            else:
                cells.append(
                    f'<td title="no prediction in the report">measured: {measured}<br><small>not in report</small></td>'
                )
        kind = " <small>(structural: decided by the design's wiring)</small>" if risk.kind == "structural" else ""
        rows.append(f"<tr><th>{html.escape(risk.label)}{kind}</th>{''.join(cells)}</tr>")
    tally = "predictions that agree with the measurement: " + agreement_tally(table)
    return (
        f"<h2>What the comparison says (against {html.escape(ref)}, today's TSO-centric model)</h2>"
        f"<ul class='verdict'>{lines}</ul>"
        f"<p><b>Identical dispatch:</b> {twins}. Differences within each risk's tolerance count as equal.</p>"
        f"<h3>The report's predictions against the measurement ({tally})</h3>"
        f'<table class="cmp pred"><thead><tr><th>risk</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if float(v).is_integer():
        return f"{int(v)}"
    return f"{v:,.3f}"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1200px;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:0} .sub{color:#666;margin-top:4px}
table.cmp{border-collapse:collapse;margin:16px 0;font-size:.92rem;width:100%}
table.cmp th,table.cmp td{padding:6px 10px;border-bottom:1px solid #e3e3e3;text-align:right}
table.cmp th:first-child{text-align:left} td.unit{color:#888;text-align:left}
td.best{background:#dff3e4;font-weight:600} td.worst{background:#fbe3e1}
td.agree{background:#eef8f0} td.differ{background:#fdf0e6} table.pred td{font-size:.8rem;text-align:center}
ul.verdict li{margin:4px 0}
.skeletons{display:flex;flex-wrap:wrap;gap:8px} .card{border:1px solid #e3e3e3;border-radius:6px}
.designs dt{font-weight:600;margin-top:8px} .designs dd{margin-left:16px;color:#444}
"""


def _reference(results: Sequence[ClearingResult]) -> str:
    names = [r.design.name for r in results]
    return REFERENCE_DESIGN if REFERENCE_DESIGN in names else names[0]


def render_report(
    batch: Batch, results: Sequence[ClearingResult], title: str | None = None, extra_figures: Sequence[go.Figure] = ()
) -> str:
    """The whole report as one HTML string; plotly.js is inlined once."""
    import plotly.io as pio

    figs: list[go.Figure] = [
        cost_by_buyer(results),
        coordination_bars(results),
        merit_order(batch, results),
        price_heatmap(results, batch.config.voll_eur_mwh),
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
{html.escape(results[0].pricing.value if results else "")}. Times are UTC.</p>
{verdict_html(results)}
<h2>Every metric</h2>
<p class="sub">Green / red: better / worse than {html.escape(_reference(results))} by more than the unit's
tolerance (1 EUR, 0.001 MWh or MW, 0.005 of a share, 0.5 s or count).</p>
{comparison_html(results)}
{parts[0]}{parts[1]}
<h2>Coordination skeletons</h2><div class="skeletons">{skel}</div>
{"".join(parts[2:])}
<h2>Designs</h2><dl class="designs">{defs}</dl>
</body></html>"""
