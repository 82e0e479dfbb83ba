"""Domain rules across rows and tables (min <= max, a block within one DSO, a node in its
DSO's areas, needs addressed to the right buyer, one owner per constraint, ...)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.enums import SYSTEM_AREA, TSO_ID, Service
from market.errors import Finding, FindingCode
from market.io.coerce import EMPTY
from market.io.findings import row_findings
from market.io.schemas import TABLES

Tables = dict[str, pd.DataFrame | None]


def domain_findings(tables: Tables) -> list[Finding]:
    out: list[Finding] = []
    na = tables.get("node_areas")
    if na is not None:
        out += _node_area_rules(na)
    if (bids := tables.get("bids")) is not None:
        out += _bid_rules(bids, na)
    if (needs := tables.get("needs")) is not None:
        out += _need_rules(needs, na)
    if (cons := tables.get("constraints")) is not None:
        out += _constraint_rules(cons, na)
    if (sig := tables.get("signals")) is not None:
        out += _signal_rules(sig)
    if (fc := tables.get("forecasts")) is not None and len(fc):
        out += _forecast_rules(fc, tables)
    return out


def _forecast_rules(fc: pd.DataFrame, tables: Tables) -> list[Finding]:
    """A need or an available quantity is not negative, and is forecast for the interval of
    the need or bid it names (a bid and a need each belong to one interval)."""
    spec = TABLES["forecasts"]
    amounts = fc["quantity"].isin(["need", "der_available"]).to_numpy() & (fc["value"] < 0).to_numpy()
    reason = "a need or an available quantity is not negative (MW >= 0)"
    out = row_findings(spec, fc, amounts, "value", reason, FindingCode.INVALID_VALUE)
    for quantity, table, key in (("need", "needs", "need_id"), ("der_available", "bids", "bid_id")):
        ref = tables.get(table)
        if ref is None:
            continue
        rows = (fc["quantity"] == quantity).to_numpy()
        when = ref.drop_duplicates(key).set_index(key)["interval_start"]
        theirs = when.reindex(fc["key"].to_numpy()).to_numpy()
        other = rows & pd.notna(theirs) & (np.asarray(fc["interval_start"].to_numpy()) != theirs)
        out += row_findings(spec, fc, other, "interval_start", f"not the interval of the {table[:-1]} it names",
                            FindingCode.INCONSISTENT)  # fmt: skip
    return out


def _node_area_rules(na: pd.DataFrame) -> list[Finding]:
    spec = TABLES["node_areas"]
    dsos_per_area = na.groupby("area_id")["dso_id"].transform("nunique")
    out = row_findings(
        spec, na, dsos_per_area > 1, "dso_id", "area belongs to more than one DSO", FindingCode.INCONSISTENT
    )
    out += row_findings(
        spec,
        na,
        na["area_id"] == SYSTEM_AREA,
        "area_id",
        f"'{SYSTEM_AREA}' is reserved for TSO balancing",
        FindingCode.INCONSISTENT,
    )
    out += row_findings(
        spec, na, na["dso_id"] == TSO_ID, "dso_id", f"'{TSO_ID}' is reserved for the TSO", FindingCode.INCONSISTENT
    )
    return out


def _bid_rules(bids: pd.DataFrame, na: pd.DataFrame | None) -> list[Finding]:
    spec = TABLES["bids"]
    out = row_findings(
        spec,
        bids,
        bids["min_quantity_mw"] > bids["quantity_mw"],
        "min_quantity_mw",
        "min_quantity_mw exceeds quantity_mw",
        FindingCode.INCONSISTENT,
    )
    out += _product_rules(bids)
    no_blocks = "block_id" in bids.attrs.get(EMPTY, frozenset())  # read with no block at all
    blocks = bids.iloc[:0] if no_blocks else bids[bids["block_id"].notna()]
    if len(blocks):
        spans = blocks.groupby("block_id")["dso_id"].transform("nunique") > 1
        mask = np.zeros(len(bids), dtype=bool)
        mask[blocks.index[spans.to_numpy()]] = True
        out += row_findings(spec, bids, mask, "block_id", "block spans more than one DSO", FindingCode.INCONSISTENT)
    if na is not None and len(bids):
        node_codes, nodes = pd.factorize(bids["node_id"])  # a bid's node and DSO, as codes
        dso_codes, dsos = pd.factorize(bids["dso_id"])
        known_dso = np.append(pd.Index(dsos).isin(na["dso_id"]), False)[dso_codes]  # code -1: missing
        known_node = np.append(pd.Index(nodes).isin(na["node_id"]), False)[node_codes]
        out += row_findings(
            spec,
            bids,
            ~known_dso & (dso_codes >= 0),
            "dso_id",
            "unknown DSO: not in node_areas",
            FindingCode.UNKNOWN_REFERENCE,
        )
        # (node, DSO) pairs of node_areas as the same codes; a bid's pair is one integer
        allowed = na[["node_id", "dso_id"]].drop_duplicates()
        allowed_node = pd.Index(nodes).get_indexer(allowed["node_id"])
        allowed_dso = pd.Index(dsos).get_indexer(allowed["dso_id"])
        both = (allowed_node >= 0) & (allowed_dso >= 0)
        width = len(dsos) + 1
        ok_pair = pd.Index(allowed_node[both] * width + allowed_dso[both]).unique()
        ok = np.asarray(pd.Series(node_codes.astype(np.int64) * width + dso_codes).isin(ok_pair))
        out += row_findings(
            spec,
            bids,
            known_node & known_dso & ~ok,
            "dso_id",
            "node is not in this DSO's areas (node_areas)",
            FindingCode.INCONSISTENT,
        )
    return out


def _product_rules(bids: pd.DataFrame) -> list[Finding]:
    """A capped-power (MaxUsage) bid relieves a DSO's congestion by holding consumption under
    its ceiling: up, bought for ``dso_congestion`` only, paid per MWh of relief (no
    availability part)."""
    if "max_usage_mw" not in bids.columns:
        return []
    spec = TABLES["bids"]
    capped = bids["max_usage_mw"].notna().to_numpy()
    rules = [
        (capped & (bids["direction"] != "up").to_numpy(), "direction", "a capped-power bid is up (less consumption)"),
        (
            capped & (bids["services"].astype(object).fillna("") != Service.DSO_CONGESTION.value).to_numpy()
            if "services" in bids.columns
            else capped,
            "services",
            "a capped-power bid is bought by a DSO: services must be dso_congestion",
        ),
    ]
    if "availability_price_eur_mw_h" in bids.columns:
        rules.append(
            (
                capped & bids["availability_price_eur_mw_h"].notna().to_numpy(),
                "availability_price_eur_mw_h",
                "a capped-power bid is paid per MWh of relief (price_eur_mwh), not for availability",
            )
        )
    out: list[Finding] = []
    for mask, column, reason in rules:
        out += row_findings(spec, bids, mask, column, reason, FindingCode.INCONSISTENT)
    return out


def _need_rules(needs: pd.DataFrame, na: pd.DataFrame | None) -> list[Finding]:
    spec = TABLES["needs"]
    tso = needs["service"] == Service.TSO_BALANCING
    dso = needs["service"] == Service.DSO_CONGESTION
    out = row_findings(
        spec,
        needs,
        tso & (needs["buyer_id"] != TSO_ID),
        "buyer_id",
        f"tso_balancing needs are bought by '{TSO_ID}'",
        FindingCode.INCONSISTENT,
    )
    out += row_findings(
        spec,
        needs,
        tso & (needs["area_id"] != SYSTEM_AREA),
        "area_id",
        f"tso_balancing needs use area '{SYSTEM_AREA}'",
        FindingCode.INCONSISTENT,
    )
    if na is not None:
        areas = na[["area_id", "dso_id"]].drop_duplicates()
        known_area = needs["area_id"].isin(areas["area_id"])
        out += row_findings(
            spec, needs, dso & ~known_area, "area_id", "unknown area: not in node_areas", FindingCode.UNKNOWN_REFERENCE
        )
        pair = pd.MultiIndex.from_frame(needs[["area_id", "buyer_id"]].astype(object))
        ok = pair.isin(pd.MultiIndex.from_frame(areas.astype(object)))
        out += row_findings(
            spec,
            needs,
            dso & known_area & ~ok,
            "buyer_id",
            "dso_congestion need must be bought by the DSO owning the area",
            FindingCode.INCONSISTENT,
        )
    key = ["buyer_id", "service", "area_id", "interval_start", "direction"]
    dup = needs.duplicated(key, keep=False) & needs[key].notna().all(axis=1)
    out += row_findings(
        spec,
        needs,
        dup,
        "need_id",
        "another need has the same buyer, area, interval and direction; merge them",
        FindingCode.INCONSISTENT,
    )
    return out


def _constraint_rules(cons: pd.DataFrame, na: pd.DataFrame | None) -> list[Finding]:
    spec = TABLES["constraints"]
    out = row_findings(
        spec,
        cons,
        cons["min_flow_mw"] > cons["max_flow_mw"],
        "min_flow_mw",
        "min_flow_mw exceeds max_flow_mw",
        FindingCode.INCONSISTENT,
    )
    if na is not None:
        owners = set(na["dso_id"]) | {TSO_ID}
        out += row_findings(
            spec,
            cons,
            ~cons["owner_id"].isin(owners) & cons["owner_id"].notna(),
            "owner_id",
            "unknown owner: must be 'tso' or a DSO in node_areas",
            FindingCode.UNKNOWN_REFERENCE,
        )
    every = cons["interval_start"].isna()
    # per constraint, whether it has both kinds of row; a row without a constraint_id (code -1,
    # the last entry) belongs to none: the not-null check names it
    group, ids = pd.factorize(cons["constraint_id"])
    known = group >= 0
    per = np.bincount(group[known], weights=every.to_numpy()[known], minlength=len(ids))  # every-interval rows
    size = np.bincount(group[known], minlength=len(ids))
    mixed = pd.Series(np.append((per > 0) & (per < size), False)[group], index=cons.index)
    out += row_findings(
        spec,
        cons,
        mixed.astype(bool) & ~every,
        "interval_start",
        "constraint has both an every-interval row and per-interval rows",
        FindingCode.INCONSISTENT,
    )
    owners_per = cons.groupby("constraint_id")["owner_id"].transform("nunique") > 1
    out += row_findings(
        spec, cons, owners_per, "owner_id", "constraint has more than one owner", FindingCode.INCONSISTENT
    )
    return out


def _signal_rules(sig: pd.DataFrame) -> list[Finding]:
    spec = TABLES["signals"]
    amber = sig["state"] == "amber"
    out = row_findings(
        spec,
        sig,
        amber & sig["headroom_up_mw"].isna(),
        "headroom_up_mw",
        "amber signal needs headroom_up_mw",
        FindingCode.INCONSISTENT,
    )
    out += row_findings(
        spec,
        sig,
        amber & sig["headroom_down_mw"].isna(),
        "headroom_down_mw",
        "amber signal needs headroom_down_mw",
        FindingCode.INCONSISTENT,
    )
    return out
