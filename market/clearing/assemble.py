"""From solved models to the run's tables (awards, prices, unmet, flows, ...)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from market.clearing.expost import evaluate, operator_id
from market.clearing.metrics import compute_metrics
from market.clearing.prepare import Prepared
from market.clearing.readback import AWARD_PARTS, NEED_PARTS, StepOutcome
from market.clearing.results import ClearingResult, ClearingStatus
from market.design.spec import Design
from market.enums import TSO_ID, Buyer, Pricing, Product
from market.io.batch import Batch, BatchConfig

PRICE_DECIMALS = 3
MW_DECIMALS = 6


def make_whole_eur(commitment: np.ndarray, shortfall_eur: np.ndarray, energy_mwh: np.ndarray) -> np.ndarray:
    """Make-whole (uplift) payment per award under pay-as-clear, in EUR.

    Integer bids (blocks, minimum quantities) are priced from the LP with their on/off
    decisions fixed (IP pricing), so an accepted unit can earn less at the clearing price
    than it bid (a paradoxically accepted bid). Its buyers then pay the difference: per
    commitment (a block over all its intervals, otherwise the bid), ``max(0, sum(bid price -
    clearing price) x MWh)``, shared over the commitment's awards pro rata to energy.
    Divisible bids never need it: LP prices never fall below an accepted divisible bid.
    """
    if not len(commitment):
        return np.zeros(0)
    keys, inverse = np.unique(commitment.astype(str), return_inverse=True)
    short = np.bincount(inverse, weights=shortfall_eur, minlength=len(keys))
    energy = np.bincount(inverse, weights=energy_mwh, minlength=len(keys))
    # below the price resolution (0.001 EUR/MWh, which also hides the tie nudge): none owed
    owed = np.where(short > 10.0**-PRICE_DECIMALS * energy + 1e-9, short, 0.0)
    share = np.divide(energy_mwh, energy[inverse], out=np.zeros(len(energy_mwh)), where=energy[inverse] > 0)
    return owed[inverse] * share


def assemble(
    batch: Batch,
    prep: Prepared,
    design: Design,
    pricing: Pricing,
    outcomes: list[StepOutcome],
    *,
    metrics: bool = True,
    sold_twice_mwh: float = 0.0,
    reservations: pd.DataFrame | None = None,
) -> ClearingResult:
    """The run's tables from every step's outcome, the physics after the last step, then its
    metrics (computed once; ``metrics=False`` for a stretch of a streamed run)."""
    cfg = batch.config
    aw = with_operators(_concat([o.awards for o in outcomes], AWARD_PARTS), design)
    if reservations is not None and "reservation_id" not in aw:
        aw["reservation_id"] = None  # a design that reserves: its awards say which call a reservation
    needs = needs_table(batch, outcomes)
    physics = evaluate(batch, prep, design, aw, needs)
    result = ClearingResult(
        design,
        pricing,
        ClearingStatus.OPTIMAL,
        awards_table(prep.bids, aw, pricing, cfg.interval_hours),
        prices_table(needs),
        node_prices_table(outcomes, cfg),
        unmet_table(needs, cfg.interval_hours),
        physics.flows,
        physics.imbalance,
        needs.drop(columns=["energy_eur_mwh", "congestion_eur_mwh", "t", "sign"], errors="ignore"),
        liquidity_table(outcomes),
        tuple(o.stats for o in outcomes),
        dso_delivery=physics.dso_delivery,
        signal_breaches=physics.signal_breaches,
        conflicts=physics.conflicts,
        blind_violations=physics.blind,
        sold_twice_mwh=sold_twice_mwh,
        reservations=reservations,
    )
    return replace(result, metrics=compute_metrics(batch, result)) if metrics else result


def with_operators(aw: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Each award with the operator that decided it and its instruction path."""
    steps = {s.name: s for s in design.steps}
    step_code, names = pd.factorize(aw["step"])  # the design's steps that awarded (a handful)
    part_code, parts = pd.factorize(aw["part"])
    tso = (aw["buyer_id"] == TSO_ID).to_numpy()
    direct = aw["direct"].fillna(False).astype(bool).to_numpy()
    ran = [steps[name] for name in names]

    def as_objects(values: list[str]) -> np.ndarray:
        return np.array(values, dtype=object)

    path = np.where(
        tso,
        as_objects([">".join(s.path_for(Buyer.TSO)) for s in ran])[step_code],
        as_objects([">".join(s.path_for(Buyer.DSO)) for s in ran])[step_code],
    )
    width = max(len(parts), 1)
    pair_code, pairs = pd.factorize(step_code * width + part_code)  # who decided: per (step, part)
    decided = as_objects([operator_id(ran[p // width], parts[p % width]) for p in pairs])
    return aw.assign(
        direct=direct,
        operator=as_objects([s.operator.value for s in ran])[step_code],
        path=np.where(direct, as_objects([">".join(s.direct_path) for s in ran])[step_code], path),
        operator_id=decided[pair_code],
    )


NODE_PRICE_PARTS = ["node_id", "t", "energy_eur_mwh", "congestion_eur_mwh", "step"]


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The non-empty frames stacked, or an empty frame with ``columns``."""
    parts = [f for f in frames if len(f)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def awards_table(bids: pd.DataFrame, aw: pd.DataFrame, pricing: Pricing, h: float) -> pd.DataFrame:
    """``awards``: one row per bid and buyer, with what is paid under ``pricing``."""
    b = bids.iloc[aw["pos"].astype(int).to_numpy()].reset_index(drop=True)
    clearing = aw["clearing_price_eur_mwh"].to_numpy().astype(float)
    paid = b["price_eur_mwh"].to_numpy() if pricing is Pricing.PAY_AS_BID else clearing
    # every amount from the published MW (solver noise below 1e-6 MW never moves a cent's digit)
    q = np.round(aw["quantity_mw"].to_numpy().astype(float), MW_DECIMALS)
    make_whole: np.ndarray | float = 0.0
    if pricing is Pricing.PAY_AS_CLEAR:
        make_whole = np.round(
            make_whole_eur(
                commitment=b["block_id"].fillna(b["bid_id"]).to_numpy(),
                shortfall_eur=(b["price_eur_mwh"].to_numpy() - paid) * q * h,
                energy_mwh=q * h,
            ),
            6,
        )
    awards = pd.DataFrame(
        {
            "bid_id": aw["bid_id"].to_numpy(),
            "der_id": b["der_id"],
            "aggregator_id": b["aggregator_id"],
            "dso_id": b["dso_id"],
            "node_id": b["node_id"],
            "buyer_id": aw["buyer_id"].to_numpy(),
            "service": aw["service"].to_numpy(),
            "need_id": aw["need_id"].to_numpy(),
            "area_id": aw["area_id"].to_numpy(),
            "interval_start": b["interval_start"],
            "direction": b["direction"],
            "quantity_mw": np.round(q, MW_DECIMALS),
            "bid_price_eur_mwh": b["price_eur_mwh"],
            "nominated_baseline_mw": b["nominated_baseline_mw"],
            "clearing_price_eur_mwh": np.round(clearing, PRICE_DECIMALS),
            "price_eur_mwh": np.round(paid, PRICE_DECIMALS),
            "pricing": pricing.value,
            "energy_mwh": np.round(q * h, MW_DECIMALS),
            "cost_eur": np.round(np.round(paid, PRICE_DECIMALS) * q * h, 6),
            "make_whole_eur": make_whole,
            "step": aw["step"].to_numpy(),
            "operator": aw["operator"].to_numpy(),
            "operator_id": aw["operator_id"].to_numpy(),
            "path": aw["path"].to_numpy(),
            "direct": aw["direct"].to_numpy().astype(bool),
            **product_columns(b, aw),
        }
    )
    return awards.sort_values(["interval_start", "bid_id", "buyer_id"]).reset_index(drop=True)


def product_columns(b: pd.DataFrame, aw: pd.DataFrame) -> dict[str, np.ndarray]:
    """The product columns of ``awards`` where the run trades more than energy: ``product``
    and ``reservation_id`` (the reservation an activation calls) when the design reserves,
    ``max_usage_mw`` when the batch has capped-power bids; none otherwise (the awards of an
    energy-only run keep the columns they always had)."""
    cols: dict[str, np.ndarray] = {}
    capped = "max_usage_mw" in b and bool(b["max_usage_mw"].notna().any())
    if "reservation_id" in aw or capped:
        is_capped = b["max_usage_mw"].notna().to_numpy() if "max_usage_mw" in b else np.zeros(len(b), bool)
        cols["product"] = np.where(is_capped, Product.CAPPED_POWER.value, Product.ENERGY.value).astype(object)
    if "reservation_id" in aw:
        cols["reservation_id"] = aw["reservation_id"].to_numpy(dtype=object)
    if capped:
        cols["max_usage_mw"] = b["max_usage_mw"].to_numpy(dtype=float)
    return cols


def needs_table(batch: Batch, outcomes: list[StepOutcome]) -> pd.DataFrame:
    """Every need of the batch with served and unmet MW (a need no step cleared is unmet
    if it must be met), plus its prices for :func:`prices_table`."""
    need_res = _concat([o.needs for o in outcomes], NEED_PARTS)
    needs = batch.needs.merge(need_res, on="need_id", how="left", validate="one_to_one")
    not_cleared = needs["served_mw"].isna()
    mm = needs["max_price_eur_mwh"].isna()
    needs["served_mw"] = needs["served_mw"].astype(float).fillna(0.0)  # object where no step cleared any
    needs["unmet_mw"] = np.where(not_cleared & mm, needs["quantity_mw"], needs["unmet_mw"].astype(float))
    needs["unmet_mw"] = needs["unmet_mw"].fillna(0.0)
    needs["cleared"] = ~not_cleared
    for c in ("served_mw", "unmet_mw"):
        needs[c] = np.round(needs[c].astype(float), MW_DECIMALS)
    return needs


def prices_table(needs: pd.DataFrame) -> pd.DataFrame:
    """``prices``: one row per cleared need, energy + congestion part."""
    cleared = needs["cleared"]
    prices = needs.loc[cleared, ["need_id", "buyer_id", "service", "area_id", "interval_start", "direction"]].copy()
    for c in ("energy_eur_mwh", "congestion_eur_mwh"):
        prices[c] = np.round(needs.loc[cleared, c].astype(float), PRICE_DECIMALS)
    prices["price_eur_mwh"] = np.round(prices["energy_eur_mwh"] + prices["congestion_eur_mwh"], PRICE_DECIMALS)
    return prices.sort_values(["interval_start", "buyer_id", "area_id", "direction"]).reset_index(drop=True)


def unmet_table(needs: pd.DataFrame, h: float) -> pd.DataFrame:
    """``unmet``: the needs left short, in MW and MWh."""
    columns = ["need_id", "buyer_id", "service", "area_id", "interval_start", "direction", "quantity_mw", "unmet_mw"]
    unmet = needs.loc[needs["unmet_mw"] > 0, columns].reset_index(drop=True)
    unmet["unmet_mwh"] = np.round(unmet["unmet_mw"] * h, MW_DECIMALS)
    return unmet


def node_prices_table(outcomes: list[StepOutcome], cfg: BatchConfig) -> pd.DataFrame:
    """``node_prices``: locational up-price per node, interval and step."""
    frames = [o.node_prices for o in outcomes if len(o.node_prices)]
    node_prices = _concat(frames, NODE_PRICE_PARTS)
    node_prices["interval_start"] = cfg.start + node_prices["t"].astype(int) * cfg.interval
    node_prices["price_up_eur_mwh"] = node_prices["energy_eur_mwh"] + node_prices["congestion_eur_mwh"]
    for c in ("energy_eur_mwh", "congestion_eur_mwh", "price_up_eur_mwh"):
        node_prices[c] = np.round(node_prices[c].astype(float), PRICE_DECIMALS)
    columns = ["node_id", "interval_start", "energy_eur_mwh", "congestion_eur_mwh", "price_up_eur_mwh", "step"]
    if len(frames) == 1:  # one model's grid is in this order already (see readback._node_prices)
        return node_prices[columns]
    return node_prices[columns].sort_values(["interval_start", "node_id"]).reset_index(drop=True)


def liquidity_table(outcomes: list[StepOutcome]) -> pd.DataFrame:
    """``liquidity``: bids and MW each buyer could use, per step."""
    return sum_liquidity([o.liquidity for o in outcomes])


def sum_liquidity(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Liquidity rows of several models (or stretches) summed per step and buyer."""
    liq = [f for f in frames if len(f)]
    if not liq:
        return pd.DataFrame(columns=["step", "buyer_id", "bids", "offered_mw"])
    return pd.concat(liq).groupby(["step", "buyer_id"], as_index=False).sum()
