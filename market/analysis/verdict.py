"""What a comparison says, risk by risk: which designs are best and worst, by how much
against a reference design, and whether that is what the source report predicts.

Each risk of the report's Table 1 (and the money) is read from one measured quantity
(:data:`RISKS`). Differences within the risk's tolerance count as equal: nothing is
called better or worse on noise. A design's prediction (``predictions`` in its TOML,
``lower`` / ``higher`` / ``similar`` than today's TSO-centric model, from the report
section it cites) is checked against the sign of its measured difference to the
reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from market.clearing.results import ClearingResult
from market.design.predictions import Basis

REFERENCE_DESIGN = "tso-only"  # today's TSO-centric model
SIMILAR_SHARE = 0.1  # a "similar" prediction holds within 10 % of today's value


@dataclass(frozen=True)
class Risk:
    """One risk: its name, how it is measured, its unit, which way is better (-1 lower,
    +1 higher) and the tolerance below which two designs are equal on it."""

    key: str
    label: str
    unit: str
    better: int
    tolerance: float
    measure: Callable[[dict[str, Any]], float]
    # measured (from the physics or real model sizes) or structural (decided by the design's
    # wiring: its paths, links and labels): a structural difference is a property, not a finding
    kind: str = "measured"


def _sum(*keys: str) -> Callable[[dict[str, Any]], float]:
    return lambda m: float(sum(m.get(k, 0.0) for k in keys))


RISKS: tuple[Risk, ...] = (
    Risk("tier_bypassing", "Tier bypassing", "MWh", -1, 1e-3, _sum("tier_bypassing_mwh"), "structural"),
    Risk(
        "hidden_coupling",
        "Hidden coupling (DSO relief undone + violations by blind operators + MWh sold twice)",
        "MWh",
        -1,
        1e-3,
        _sum("hidden_coupling_undone_mwh", "hidden_coupling_blind_violation_mwh", "hidden_coupling_sold_twice_mwh"),
    ),
    Risk(
        "violations",
        "Network violations (distribution + transmission)",
        "MWh",
        -1,
        1e-3,
        _sum("distribution_violation_mwh", "transmission_violation_mwh"),
    ),
    Risk("observability", "DSO observability (worst DSO)", "share", +1, 5e-3, _sum("observability_min"), "structural"),
    Risk(
        "latency",
        "Latency (longest instruction incl. clearing stages)",
        "s",
        -1,
        0.5,
        _sum("latency_s_max"),
        "structural",
    ),
    Risk(
        "scalability",
        "Scalability (TSO's largest optimisation)",
        "variables",
        -1,
        0.5,
        _sum("scalability_tso_variables"),
    ),
    Risk(
        "cyber",
        "Cyber exposure (endpoints registered with a link into the TSO)",
        "endpoints",
        -1,
        0.5,
        _sum("cyber_exposure_registered_endpoints"),
        "structural",
    ),
    Risk(
        "fragmentation",
        "Fragmentation (markets per aggregator)",
        "markets",
        -1,
        1e-3,
        _sum("fragmentation_markets_per_aggregator"),
        "structural",
    ),
    Risk("cost", "System cost (bids, unmet need, imbalance, violations)", "EUR", -1, 1.0, _sum("system_cost_eur")),
)
RISK_KEYS = tuple(r.key for r in RISKS)  # the same as market.design.predictions.PREDICTION_RISKS (tested)


def risk_table(results: Sequence[ClearingResult], reference: str | None = None) -> pd.DataFrame:
    """One row per risk and design: value, difference to the reference (absolute and
    relative), whether it is better/worse beyond tolerance, and the report's prediction."""
    names = [r.design.name for r in results]
    ref = reference if reference in names else (REFERENCE_DESIGN if REFERENCE_DESIGN in names else names[0])
    base = next(r for r in results if r.design.name == ref)
    rows = []
    for risk in RISKS:
        ref_value = risk.measure(base.metrics)
        for r in results:
            value = risk.measure(r.metrics)
            diff = value - ref_value
            equal = abs(diff) <= risk.tolerance
            verdict = "equal" if equal else ("better" if np.sign(diff) == risk.better else "worse")
            expected = r.design.predictions.get(risk.key, "")
            similar_band = max(risk.tolerance, SIMILAR_SHARE * abs(ref_value))
            rows.append(
                {
                    "risk": risk.key,
                    "label": risk.label,
                    "unit": risk.unit,
                    "kind": risk.kind,
                    "design": r.design.name,
                    "value": value,
                    "reference": ref,
                    "diff": diff,
                    "rel_diff": diff / abs(ref_value) if ref_value else (0.0 if equal else np.inf),
                    "verdict": verdict,
                    "expected": expected,
                    "agrees": _agrees(expected, diff, risk.tolerance, similar_band) if r.design.name != ref else None,
                    "note": r.design.prediction_notes.get(risk.key, ""),
                    **_basis(r, risk.key, ref),
                }
            )
    return pd.DataFrame(rows)


def _basis(result: ClearingResult, risk: str, reference: str) -> dict[str, str]:
    """The prediction's basis (quote, inference, unstated; ``not-in-report`` where the design
    predicts nothing for the risk; empty for the reference design) and its citation."""
    if result.design.name == reference:
        return {"basis": "", "source": ""}
    source = result.design.prediction_sources.get(risk)
    if risk not in result.design.predictions or source is None:
        return {"basis": str(Basis.NOT_IN_REPORT), "source": ""}
    return {"basis": str(source.basis), "source": source.cite()}


def _agrees(expected: str, diff: float, tolerance: float, similar_band: float) -> bool | None:
    """Whether the measured difference to today's model has the predicted direction
    (``similar``: within the risk's tolerance or ``SIMILAR_SHARE`` of today's value)."""
    if not expected:
        return None
    if expected == "similar":
        return abs(diff) <= similar_band
    return diff < -tolerance if expected == "lower" else diff > tolerance


def agreement_tally(table: pd.DataFrame) -> str:
    """How many of the report's predictions the measurement bears out, by basis (the
    report's sentence quoted, or an inference from it) and kind (measured or structural)."""
    judged = table[table["agrees"].notna() & (table["expected"] != "")]
    parts = []
    for basis in ("quote", "inference", "unstated"):
        b = judged[judged["basis"] == basis]
        if not len(b):
            continue
        kinds = [
            f"{int(k['agrees'].astype(bool).sum())} of {len(k)} {name}" for name, k in b.groupby("kind", sort=True)
        ]
        parts.append(f"{basis}: " + ", ".join(kinds))
    return "; ".join(parts) if parts else "none judged"


STRUCTURAL_NOTE = " (structural: a property of the designs' wiring, not a finding)"


def sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per risk: best and worst designs and by how much against the reference;
    the measured risks first, then the structural ones, each said to be a property of the
    wiring (never called better as a finding)."""
    measured = [s for s in _sentences(table) if not s.endswith(STRUCTURAL_NOTE)]
    return measured + [s for s in _sentences(table) if s.endswith(STRUCTURAL_NOTE)]


def _sentences(table: pd.DataFrame) -> list[str]:
    out = []
    for risk in RISKS:
        t = table[table["risk"] == risk.key]
        if not len(t):
            continue
        ref = t["reference"].iloc[0]
        ordered = t.sort_values("value", ascending=risk.better < 0)
        best_v, worst_v = ordered["value"].iloc[0], ordered["value"].iloc[-1]
        note = STRUCTURAL_NOTE if risk.kind == "structural" else ""
        if abs(best_v - worst_v) <= risk.tolerance:
            out.append(f"{risk.label}: every design measures the same ({_fmt(best_v)} {risk.unit}).{note}")
            continue
        best = t[(t["value"] - best_v).abs() <= risk.tolerance]
        worst = t[(t["value"] - worst_v).abs() <= risk.tolerance]
        extremes = ("lowest", "highest") if risk.better < 0 else ("highest", "lowest")
        words = extremes if note else ("best", "worst")  # a property is no ranking: its extremes by value
        first = f"{words[0]} {_names(best)} ({_fmt(best_v)} {risk.unit}, {_vs(best.iloc[0], risk.unit, ref)})"
        last = f"{words[1]} {_names(worst)} ({_fmt(worst_v)} {risk.unit}, {_vs(worst.iloc[0], risk.unit, ref)})"
        out.append(f"{risk.label}: {first}; {last}.{note}")
    return out


def identical_dispatch(results: Sequence[ClearingResult]) -> list[list[str]]:
    """Groups of designs (two or more) whose awards are identical (bid, buyer, MW)."""
    keys: dict[str, list[str]] = {}
    for r in results:
        a = r.awards.groupby(["bid_id", "buyer_id"])["quantity_mw"].sum().round(6)
        digest = pd.util.hash_pandas_object(a[a > 0].reset_index(), index=False).sum()
        keys.setdefault(str(digest), []).append(r.design.name)
    return [g for g in keys.values() if len(g) > 1]


def _names(rows: pd.DataFrame) -> str:
    names = list(rows["design"])
    return ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:4])} and {len(names) - 4} more"


def _vs(row: pd.Series, unit: str, ref: str) -> str:
    """The difference to the reference design, absolute and relative, in words."""
    if row["diff"] == 0:
        return f"the same as {ref}"
    rel = "" if not np.isfinite(row["rel_diff"]) else f", {row['rel_diff']:+.0%}"
    return f"{row['diff']:+,.3g} {unit}{rel} against {ref}"


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.3g}"
