"""The season's first screen, a regulator's minute: design x risk with the median and the
range over the days and the share of days each design is best; structural risks apart and
said to be properties; money split into bids, unmet energy, imbalance and violations."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from market.analysis.verdict import RISKS

# money and its consequences, in the order a reader needs them (bid cost first)
MONEY = [
    ("bid_cost_eur", "bid cost", "EUR"),
    ("unmet_mwh", "unmet energy", "MWh"),
    ("imbalance_mwh", "imbalance", "MWh"),
    ("distribution_violation_mwh", "distribution violations", "MWh"),
    ("transmission_violation_mwh", "transmission violations", "MWh"),
    ("system_cost_eur", "system cost (bids + VoLL x unmet, imbalance, violations)", "EUR"),
]


CSS = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{text-align:left}small{color:#555}"
)


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:,.3g}" if not float(v).is_integer() else f"{int(v)}"


def _range(row: pd.Series) -> str:
    if row["min"] == row["max"]:
        return _fmt(row["median"])
    return f"{_fmt(row['median'])} <small>[{_fmt(row['min'])} – {_fmt(row['max'])}]</small>"


def season_html(summary: pd.DataFrame, rankings: pd.DataFrame, title: str) -> str:
    """A self-contained HTML page (no scripts) of the season at VoLL factor 1."""
    s = summary[summary["voll_factor"] == 1.0].set_index(["design", "metric"])
    r = rankings[rankings["voll_factor"] == 1.0].set_index(["risk", "design"])
    designs = sorted(summary["design"].unique())
    days = int(summary["days"].max()) if len(summary) else 0
    head = "".join(f"<th>{html.escape(d)}</th>" for d in designs)

    def money_rows() -> str:
        out = []
        for metric, label, unit in MONEY:
            cells = "".join(
                f"<td>{_range(s.loc[(d, metric)])}</td>" if (d, metric) in s.index else "<td>–</td>" for d in designs
            )
            out.append(f"<tr><th>{html.escape(label)}</th><td>{unit}</td>{cells}</tr>")
        return "".join(out)

    def risk_rows(kind: str) -> str:
        out = []
        for risk in RISKS:
            if risk.kind != kind:
                continue
            cells = []
            for d in designs:
                if (risk.key, d) not in r.index:
                    cells.append("<td>–</td>")
                    continue
                row = r.loc[(risk.key, d)]
                value = _range(row) + "<br>"
                share = "best" if kind == "measured" else "lowest" if risk.better < 0 else "highest"
                cells.append(f"<td>{value}<small>{share} on {row['share_best']:.0%} of days</small></td>")
            out.append(f"<tr><th>{html.escape(risk.label)}</th><td>{risk.unit}</td>{''.join(cells)}</tr>")
        return "".join(out)

    judged = rankings[(rankings["voll_factor"] == 1.0) & rankings["share_prediction_holds"].notna()]
    tally = "; ".join(
        f"{basis}, {kind}: {len(k[k['share_prediction_holds'] >= 0.5])} of {len(k)} hold on most days"
        for (basis, kind), k in judged.groupby(["basis", "kind"])
    )

    def prediction_rows() -> str:
        out = []
        for risk in RISKS:
            cells = []
            for d in designs:
                if (risk.key, d) not in r.index or not r.loc[(risk.key, d)]["basis"]:
                    cells.append("<td>–</td>")  # the reference design
                    continue
                row = r.loc[(risk.key, d)]
                if not row["prediction"]:
                    cells.append("<td><small>not in report</small></td>")
                    continue
                holds = row["share_prediction_holds"]
                cells.append(
                    f'<td title="{html.escape(row["source"])}">{html.escape(row["prediction"])} '
                    f"<small>({html.escape(row['basis'])})</small><br>holds on {holds:.0%} of days</td>"
                )
            out.append(f"<tr><th>{html.escape(risk.label)}</th>{''.join(cells)}</tr>")
        return "".join(out)

    def citations() -> str:
        said = r[r["prediction"] != ""].reset_index().sort_values(["design", "risk"])
        return "".join(
            f"<li><b>{html.escape(x['design'])}</b>, {html.escape(x['risk'].replace('_', ' '))} "
            f"{html.escape(x['prediction'])} ({html.escape(x['basis'])}): {html.escape(x['source'])}</li>"
            for _, x in said.iterrows()
        )

    sens = ""
    factors = sorted(rankings["voll_factor"].unique())
    if len(factors) > 1:
        cost = rankings[rankings["risk"] == "cost"]
        rows = "".join(
            f"<tr><th>VoLL x {f:g}</th>"
            + "".join(
                f"<td>{float(cost[(cost['voll_factor'] == f) & (cost['design'] == d)]['share_best'].iloc[0]):.0%}</td>"
                for d in designs
            )
            + "</tr>"
            for f in factors
        )
        sens = (
            "<h2>Sensitivity to VoLL: share of days each design has the lowest system cost</h2>"
            f"<table><tr><th></th>{head}</tr>{rows}</table>"
        )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{days} days, every design cleared on each. Values are the median over the days, with the range in
brackets; each cell says on what share of the days the design is best on that risk. One day is an
example, not a finding.</p>
<h2>Money (bid cost first; the consequences apart)</h2>
<table><tr><th></th><th>unit</th>{head}</tr>{money_rows()}</table>
<h2>Measured risks</h2><table><tr><th></th><th>unit</th>{head}</tr>{risk_rows("measured")}</table>
<h2>Structural properties (decided by the designs' wiring: not findings)</h2>
<table><tr><th></th><th>unit</th>{head}</tr>{risk_rows("structural")}</table>
<h2>The report's predictions against today's TSO-centric model</h2>
<p>{html.escape(tally or "none judged")}. Each prediction's basis: the report's sentence (quote), a
reasoning from it (inference), or none (not in report).</p>
<table><tr><th></th>{head}</tr>{prediction_rows()}</table>
<ul>{citations()}</ul>
{sens}</body></html>
"""
