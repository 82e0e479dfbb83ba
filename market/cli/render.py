"""Rich tables the commands print (data in, a :class:`rich.table.Table` out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.table import Table

from market.clearing.results import ClearingResult
from market.io.batch import Batch

if TYPE_CHECKING:
    from settlement.api import SettlementResult


def summary_tables(batch: Batch) -> list[Table]:
    cfg = batch.config
    head = Table(title=f"batch {cfg.name}", show_header=False)
    head.add_row(
        "horizon",
        f"{cfg.start.isoformat()} to {cfg.end.isoformat()} ({len(cfg.intervals)} x {cfg.interval_minutes} min)",
    )
    head.add_row("DSOs", ", ".join(batch.dsos))
    head.add_row("areas", str(batch.node_areas["area_id"].nunique()))
    for name in ("bids", "needs", "node_areas", "constraints", "sensitivities", "signals"):
        head.add_row(f"rows: {name}", str(len(batch.table(name))))
    offered = Table(title="MW offered (sum over intervals)")
    offered.add_column("DSO")
    offered.add_column("up MW", justify="right")
    offered.add_column("down MW", justify="right")
    pivot = batch.bids.pivot_table(
        index="dso_id", columns="direction", values="quantity_mw", aggfunc="sum", fill_value=0.0
    )
    for dso, row in pivot.iterrows():
        offered.add_row(str(dso), f"{row.get('up', 0.0):.3f}", f"{row.get('down', 0.0):.3f}")
    needs = Table(title="needs per buyer")
    for c in ("buyer", "service", "rows", "MW"):
        needs.add_column(c)
    g = batch.needs.groupby(["buyer_id", "service"])["quantity_mw"].agg(["size", "sum"])
    for (buyer, service), row in g.iterrows():
        needs.add_row(str(buyer), str(service), str(int(row["size"])), f"{row['sum']:.3f}")
    if len(batch.signals):
        sig = batch.signals["state"].value_counts()
        head.add_row("signals", ", ".join(f"{k}: {v}" for k, v in sorted(sig.items())))
    return [head, offered, needs]


def metrics_table(name: str, metrics: dict[str, Any]) -> Table:
    t = Table(title=f"metrics: {name}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in metrics.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b:.3f}" if isinstance(b, float) else f"{a}={b}" for a, b in v.items())
        elif isinstance(v, float):
            v = f"{v:,.3f}"
        t.add_row(k, str(v))
    return t


def statements_rich(r: SettlementResult) -> Table:
    t = Table(title=f"statements {r.period}")
    for c in (
        "aggregator",
        "buyer",
        "lines",
        "unverifiable",
        "awarded MWh",
        "allocated MWh",
        "shortfall MWh",
        "payment EUR",
        "make-whole EUR",
        "penalty EUR",
        "net EUR",
    ):
        t.add_column(c, justify="right")
    for s in r.statements.itertuples():
        t.add_row(
            s.aggregator_id,
            s.buyer_id,
            str(s.lines),
            str(s.unverifiable_lines),
            f"{s.awarded_mwh:.3f}",
            f"{s.allocated_mwh:.3f}",
            f"{s.shortfall_mwh:.3f}",
            f"{s.payment_eur:,.2f}",
            f"{s.make_whole_eur:,.2f}",
            f"{s.penalty_eur:,.2f}",
            f"{s.net_eur:,.2f}",
        )
    return t


# (metric key exactly as metrics.json and comparison.parquet name it, label with its unit)
SHORT = [
    ("bid_cost_eur", "bid cost EUR"),
    ("system_cost_eur", "system cost EUR"),
    ("unmet_mwh", "unmet MWh"),
    ("distribution_violation_mwh", "dist. viol. MWh"),
    ("transmission_violation_mwh", "trans. viol. MWh"),
    ("imbalance_mwh", "imbal. MWh"),
    ("tier_bypassing_mwh", "bypass MWh"),
    ("hidden_coupling_conflict_mw", "conflict MW"),
    ("signal_breach_mw", "breach MW"),
    ("observability_min", "observ. share"),
    ("latency_s_max", "latency s"),
    ("scalability_tso_variables", "TSO vars"),
    ("cyber_exposure_endpoints", "cyber endpoints"),
]


def findings_summary(findings: pd.DataFrame) -> pd.DataFrame:
    """Settlement findings counted per kind and severity."""
    if not len(findings):
        return pd.DataFrame({"kind": [], "severity": [], "count": []})
    return findings.groupby(["kind", "severity"]).size().rename("count").reset_index()


def changes_rich(r: SettlementResult) -> Table:
    """What the run changed in the store: each new version with the one it replaced, the
    net before and after, and how many lines changed (the lines in deltas.parquet)."""
    t = Table(title="what changed in the store (changed lines in deltas.parquet)")
    for c in ("statement", "aggregator", "buyer", "version", "replaces", "net EUR before", "net EUR after", "lines"):
        t.add_column(c, justify="right" if c.startswith(("net", "lines", "version")) else "left")
    for ch in r.changes():
        t.add_row(
            str(ch["statement_id"]),
            str(ch["aggregator_id"]),
            str(ch["buyer_id"]),
            str(ch["version"]),
            str(ch["previous_statement_id"] or "(new)"),
            f"{ch['net_eur_before']:,.2f}",
            f"{ch['net_eur_after']:,.2f}",
            str(ch["delta_lines"]),
        )
    return t


def findings_rich(findings: pd.DataFrame) -> Table:
    """Settlement findings per kind and severity (details in findings.parquet)."""
    t = Table(title="findings (details in findings.parquet)")
    for c in ("kind", "severity", "count"):
        t.add_column(c, justify="right" if c == "count" else "left")
    for row in findings_summary(findings).itertuples(index=False):
        t.add_row(str(row.kind), str(row.severity), str(row.count))
    return t


# shown where a compared design reserves capacity (two-part products)
AVAILABILITY = [
    ("availability_cost_eur", "avail. cost EUR"),
    ("reserved_unused_mwh", "reserved unused MWh"),
    ("unmet_reserved_by_other_mwh", "unmet, held by other MWh"),
]


def comparison_rich(results: Sequence[ClearingResult]) -> Table:
    t = Table(title="design comparison (details in report.html)")
    t.add_column("design")
    shown = SHORT + (AVAILABILITY if any(r.design.reserves for r in results) else [])
    for _, label in shown:
        t.add_column(label, justify="right")
    for r in results:
        t.add_row(r.design.name, *[_short(r.metrics.get(k, float("nan"))) for k, _ in shown])
    return t


def _short(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}".rstrip("0").rstrip(".") or "0"
