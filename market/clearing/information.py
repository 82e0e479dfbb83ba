"""Who knows what, when (section 3a of the contract): each step decides at its gate on the
state that has reached its operator by then.

A batch is **informed** when it has forecasts, or delays on its information paths under a
design with gates (:func:`informed`); an uninformed batch clears exactly as before (every
step knows the actuals when it decides).

What a step knows, per network row (constraint and interval ``t``), at its decision time
``d(t)`` (:mod:`market.io.gates`):

- **grid state** (``base_flow`` forecasts): the owner of a constraint (the TSO, or a DSO)
  publishes its state every ``publish_every_s[owner tier]`` seconds (0: continuously) and
  the information reaches another operator ``relay_s[owner tier]`` seconds later (plus
  ``relay_s["coordinator"]`` where the step's instructions pass a coordinator tier); the
  step uses the newest forecast issued at or before the last publication that reached it
  (an operator reads its own state at ``d(t)`` directly). Before any forecast has been
  issued it has only the oldest; a constraint without forecasts is known exactly;
- **computed traffic lights**: the DSO computes them at its last publication that reached
  the step, from the forecast it had then;
- **earlier steps' activations** of interval ``t``: known once ``d_earlier(t)`` plus the
  relay from the earlier operator has passed ``d(t)``; an activation not yet known is
  neither seen as flow nor as used capacity (the step may sell the MW again: the DER then
  delivers only what it has, as for simultaneous markets).

The ex-post physics always uses the actuals. :func:`information_metrics` measures the
consequences against the same design cleared with perfect, instantaneous information.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from market.design.spec import Design, Step
from market.enums import TSO_ID, Operator, SignalMode, Tier
from market.io.batch import Batch
from market.io.gates import parse_gate

NAT = np.iinfo(np.int64).min


def informed(batch: Batch, design: Design) -> bool:
    """Whether timing and information change anything for ``batch`` under ``design``: it has
    forecasts, or information paths with delays (``[information]`` of batch.toml) and a
    design with gates. Without either, every operator knows the actuals whenever it decides
    and the run is exactly the run without gates."""
    delays = any(v > 0 for v in (*batch.config.relay_s.values(), *batch.config.publish_every_s.values()))
    return bool(len(batch.forecasts)) or (delays and any(s.gate for s in design.steps))


def perfect_information(batch: Batch, design: Design) -> tuple[Batch, Design]:
    """The same batch and design with every operator knowing the actuals at delivery."""
    steps = tuple(replace(s, gate=None) for s in design.steps)
    return batch.replace(forecasts=batch.forecasts.iloc[:0]), replace(design, steps=steps)


def decision_ns(step: Step, batch: Batch) -> np.ndarray:
    """The step's decision time (ns since the epoch, UTC) for each interval of the batch."""
    starts = pd.DatetimeIndex(batch.config.intervals)
    if step.gate is None:
        return np.asarray(starts.asi8)
    return parse_gate(step.gate, step.name).decision_times(starts).astype(np.int64)


def tier_of(step: Step) -> str:
    """The tier of the step's operator (a platform or iDSO is its own tier)."""
    return step.operator.value


def relay_s(batch: Batch, origin: str, to: Step) -> float:
    """Seconds state published by ``origin`` takes to reach ``to``'s operator."""
    if origin == tier_of(to):
        return 0.0
    seconds = batch.config.relay_s.get(origin, 0.0)
    paths = [p for p in to.dispatch.values()]
    if any(Tier.COORDINATOR in p for p in paths):
        seconds += batch.config.relay_s.get("coordinator", 0.0)
    return seconds


def last_publication(ns: np.ndarray, every_s: float) -> np.ndarray:
    """The last publication at or before each instant, publishing every ``every_s`` seconds."""
    if every_s <= 0:
        return ns
    step = np.int64(round(every_s * 1e9))
    return (ns // step) * step


@dataclass(frozen=True)
class StepKnowledge:
    """What one step knows: its decision time per interval, and per network row the base
    flow and the issue time of the version it uses (``NAT``: the actual, known exactly),
    for the step's own view and for the DSO lights it reads."""

    decision: np.ndarray  # ns, per interval
    base_mw: np.ndarray  # per network row
    version_ns: np.ndarray  # per network row
    light_base_mw: np.ndarray  # per network row: what the owner published for its lights
    light_version_ns: np.ndarray


def known_versions(network: pd.DataFrame, forecasts: pd.DataFrame, visible_ns: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per network row: the base flow known at ``visible_ns`` and the issue time of that
    version (the actual and ``NAT`` where the row has no forecast)."""
    return forecast_known(
        forecasts, "base_flow", network["constraint_id"], network["interval_start"], visible_ns, network["base_mw"]
    )


def forecast_known(
    forecasts: pd.DataFrame,
    quantity: str,
    keys: pd.Series,
    starts: pd.Series,
    visible_ns: np.ndarray,
    actual: pd.Series,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row (key, interval): the value of ``quantity`` known at ``visible_ns`` — the
    newest forecast issued by then; where none was yet, the oldest (no better knowledge
    yet); the actual where the row has no forecast — and the issue time of that version
    (``NAT``: the actual)."""
    value = actual.to_numpy(dtype=float).copy()
    version = np.full(len(value), NAT, dtype=np.int64)
    f = forecasts[forecasts["quantity"] == quantity]
    if not len(f):
        return value, version
    rows = pd.DataFrame(
        {
            "row": np.arange(len(value)),
            "key": keys.to_numpy(),
            "interval_start": starts.to_numpy(),
            "visible": visible_ns,
        }
    )
    cand = rows.merge(f[["key", "interval_start", "issued_at", "value"]], on=["key", "interval_start"])
    if not len(cand):
        return value, version
    cand["issued"] = pd.to_datetime(cand["issued_at"], utc=True).astype("int64").to_numpy()
    cand["ok"] = cand["issued"] <= cand["visible"]
    cand["rank"] = np.where(cand["ok"], cand["issued"], -cand["issued"] - 1)
    chosen = cand.sort_values(["row", "ok", "rank"]).groupby("row").tail(1)
    idx = chosen["row"].to_numpy()
    value[idx] = chosen["value"].to_numpy(dtype=float)
    version[idx] = chosen["issued"].to_numpy()
    return value, version


def step_knowledge(batch: Batch, network: pd.DataFrame, step: Step) -> StepKnowledge:
    """What ``step`` knows of the grid state (see the module docstring)."""
    cfg = batch.config
    decision = decision_ns(step, batch)
    d_row = decision[network["t"].to_numpy(dtype=int)]
    owner_tier = np.where(network["owner_id"].to_numpy() == TSO_ID, Tier.TSO.value, Tier.DSO.value)
    visible = d_row.copy()
    light_visible = d_row.copy()
    for origin in (Tier.TSO.value, Tier.DSO.value):
        rows = owner_tier == origin
        delay = np.int64(round(relay_s(batch, origin, step) * 1e9))
        published = last_publication(d_row[rows] - delay, cfg.publish_every_s.get(origin, 0.0))
        light_visible[rows] = published
        if origin != tier_of(step):
            visible[rows] = published
    base, version = known_versions(network, batch.forecasts, visible)
    light_base, light_version = known_versions(network, batch.forecasts, light_visible)
    return StepKnowledge(decision, base, version, light_base, light_version)


def activation_known(
    batch: Batch, earlier: Step, earlier_decision: np.ndarray, step: Step, decision: np.ndarray
) -> np.ndarray:
    """Per interval: whether ``earlier``'s activations have reached ``step`` by its decision."""
    delay = np.int64(round(relay_s(batch, tier_of(earlier), step) * 1e9))
    return earlier_decision + delay <= decision


def information_metrics(
    batch: Batch,
    network: pd.DataFrame,
    design: Design,
    knowledge: dict[str, StepKnowledge],
    result: Any,
    perfect: Any,
) -> dict[str, Any]:
    """The measured information metrics of an informed run (see docs/contract.md)."""
    aw = result.awards
    age = np.zeros(len(aw))
    if len(aw):
        slots = batch.config.slot_of(aw["interval_start"])
        for name, k in knowledge.items():
            sel = (aw["step"] == name).to_numpy()
            if not sel.any():
                continue
            oldest = (
                pd.Series(np.where(k.version_ns == NAT, np.iinfo(np.int64).max, k.version_ns))
                .groupby(network["t"].to_numpy())
                .min()
            )
            per_t = np.full(len(k.decision), np.iinfo(np.int64).max)
            per_t[oldest.index.to_numpy(dtype=int)] = oldest.to_numpy()
            used = per_t[slots[sel]]
            age[sel] = np.where(used == np.iinfo(np.int64).max, 0.0, (k.decision[slots[sel]] - used) / 1e9)
    energy = aw["energy_mwh"].to_numpy(dtype=float) if len(aw) else np.zeros(0)
    total = float(energy.sum())
    viol = _violations(result.metrics)
    perfect_viol = _violations(perfect.metrics)
    error = observability_error(batch, network, design, knowledge, result)
    return {
        "information_age_s_mean": float((age * energy).sum() / total) if total > 0 else 0.0,
        "information_age_s_max": float(age.max()) if len(age) else 0.0,
        "cost_of_information_eur": float(result.metrics["system_cost_eur"] - perfect.metrics["system_cost_eur"]),
        "information_violation_mwh": max(viol - perfect_viol, 0.0),
        "race_conflict_mwh": race_conflict_mwh(batch, network, design, knowledge, result),
        "observability_error_mw": max(error.values()) if error else 0.0,
        "observability_error_by_dso": error,
    }


def _violations(metrics: dict[str, Any]) -> float:
    return float(metrics.get("distribution_violation_mwh", 0.0)) + float(metrics.get("transmission_violation_mwh", 0.0))


def _award_flows(batch: Batch, network: pd.DataFrame, aw: pd.DataFrame, absolute: bool = False) -> np.ndarray:
    """Per network row: the flow change the awards ``aw`` cause (up = +MW x factor), or with
    ``absolute`` the MW that move it (|MW x factor|, summed)."""
    if not len(aw):
        return np.zeros(len(network))
    sign = np.where(aw["direction"].to_numpy() == "up", 1.0, -1.0)
    moved = pd.DataFrame(
        {
            "node_id": aw["node_id"].to_numpy(),
            "t": batch.config.slot_of(aw["interval_start"]),
            "mw": sign * aw["quantity_mw"].to_numpy(),
        }
    ).merge(batch.sensitivities, on="node_id")
    moved["push"] = moved["mw"] * moved["factor"]
    if absolute:
        moved["push"] = moved["push"].abs()
    push = moved.groupby(["constraint_id", "t"])["push"].sum()
    key = pd.MultiIndex.from_arrays([network["constraint_id"], network["t"].astype(int)])
    return push.reindex(key).fillna(0.0).to_numpy()


def observability_error(
    batch: Batch, network: pd.DataFrame, design: Design, knowledge: dict[str, StepKnowledge], result: Any
) -> dict[str, float]:
    """Per DSO: the mean absolute error (MW) between the flows it expected on its own
    constraints (the base it knew at its gate, plus the activations it knew of: its own,
    those instructed through it, and those it is sent) and the actual flows after dispatch."""
    out: dict[str, float] = {}
    flows = result.flows.set_index(["constraint_id", "interval_start"])["flow_mw"]
    own_steps = [s for s in design.steps if s.operator is Operator.DSO]
    dso_view = knowledge[own_steps[0].name] if own_steps else None
    aw = result.awards
    steps = {s.name: s for s in design.steps}
    known = aw["operator"].eq(Operator.DSO.value) | aw["path"].str.contains(Tier.DSO.value, regex=False)
    known |= aw["step"].map({name: s.observed_by_dso for name, s in steps.items()}).fillna(False).astype(bool)
    expected_push = _award_flows(batch, network, aw[known.to_numpy()])
    base = dso_view.base_mw if dso_view is not None else network["base_mw"].to_numpy(dtype=float)
    expected = base + expected_push
    actual = flows.reindex(pd.MultiIndex.from_arrays([network["constraint_id"], network["interval_start"]])).to_numpy()
    for dso in sorted(set(network["owner_id"]) - {TSO_ID}):
        rows = (network["owner_id"] == dso).to_numpy()
        out[str(dso)] = round(float(np.nanmean(np.abs(expected[rows] - actual[rows]))), 6) if rows.any() else 0.0
    return out


def race_conflict_mwh(
    batch: Batch, network: pd.DataFrame, design: Design, knowledge: dict[str, StepKnowledge], result: Any
) -> float:
    """Energy of the activations on each DSO constraint row (constraint and interval) where
    the steps decided on different versions of its state (a step reading the DSO's computed
    lights used the published version, any other its own) and the flow broke the limit:
    report 3.3's race condition (the same information arriving at different times)."""
    aw = result.awards
    if not len(aw) or len(knowledge) < 2:
        return 0.0
    steps = {s.name: s for s in design.steps}
    used = np.stack(
        [
            k.light_version_ns if steps[name].signals is SignalMode.COMPUTED else k.version_ns
            for name, k in knowledge.items()
        ]
    )
    differ = (used != used[0]).any(axis=0)
    viol = result.flows.set_index(["constraint_id", "interval_start"])["violation_mw"]
    key = pd.MultiIndex.from_arrays([network["constraint_id"], network["interval_start"]])
    broken = viol.reindex(key).fillna(0.0).to_numpy() > 1e-9
    dso_row = (network["owner_id"] != TSO_ID).to_numpy()
    push = _award_flows(batch, network, aw, absolute=True)
    hours = batch.config.interval_minutes / 60.0
    return round(float(push[differ & broken & dso_row].sum()) * hours, 6)
