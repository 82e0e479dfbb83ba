"""Derive the contested sample in data/contested/ (and its meter data) from SimBench (ODbL).

Run:  python data/make_contested.py      (simbench and pandapower are flexmarket dependencies)

A day on which the coordination designs must disagree, from three real SimBench MV grids,
each one DSO: ``1-MV-rural--0-sw`` (``dso-rural``), ``1-MV-semiurb--0-sw`` (``dso-semiurb``)
and ``1-MV-comm--0-sw`` (``dso-comm``). Deterministic (one fixed seed).

1. **Network, from the grid itself.** Each grid is split at its two HV/MV busbars into
   its radial feeders (pandapower topology, open switches respected): 24 feeders, each an
   area with a feeder-head constraint owned by its DSO (``LIMIT_SHARE`` of the head lines'
   thermal rating: open-ring feeders keep half to re-supply the other half). The HV/MV
   transformers of each grid form a T-D interface with a **TSO-owned** limit
   (``INTERFACE_SHARE`` of their rating). Sensitivities are pandapower's DC PTDF rows of
   those branches (MW of import per MW injected at each bus). Base flows per interval come
   from pandapower's **AC power flow** of the grid with that interval's SimBench loads and
   generation (loads x ``LOAD_GROWTH``, generation x ``GEN_GROWTH``), losses included.
2. **DSO needs** where a DSO-owned head is over its limit (``up`` for import overloads,
   ``down`` for reverse flow), and the DSO's **traffic lights** from the same flows (red over
   the limit, amber above 80 % with the headroom left, green otherwise).
3. **TSO needs** from the intra-hour deviation of the three grids' net load from its hourly
   mean, scaled so that the TSO's needs over the day equal the DSOs' (``TSO_TO_DSO``): the
   two buyers contest the same flexibility. Every fifth is elastic at 150 EUR/MWh.
4. **DER and bids**, with tighter liquidity than data/sample: the ``N_LOADS`` largest loads
   and ``N_GEN`` largest PV/wind in-feeds per grid. DER on a feeder with DSO needs are the
   cheapest (the TSO wants them too). Four aggregators span the three DSOs, with **routes to
   market** (``aggregators`` table): ``agg-grid`` via the DSO only, ``agg-spot`` directly to
   the TSO, ``agg-flex`` and ``agg-sun`` both. A few loads bid all-or-nothing.
5. **Meter data**: 60 days of 15-minute net consumption per DER from the same profiles,
   with the ``single`` pay-as-clear run's delivered flexibility taken out on the day.
"""

from __future__ import annotations

import copy
import shutil
import sys
import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from market.clearing.run import clear  # noqa: E402
from market.io.batch import BatchConfig  # noqa: E402
from market.io.grid import pandapower_tables  # noqa: E402
from market.io.read import batch_from_frames, load_batch  # noqa: E402
from market.io.write import write_batch  # noqa: E402

sys.path.insert(0, str(HERE))
from make_sample import with_two_part_offers, write_meter  # noqa: E402  (as data/sample)

GRIDS = {"dso-rural": "1-MV-rural--0-sw", "dso-semiurb": "1-MV-semiurb--0-sw", "dso-comm": "1-MV-comm--0-sw"}
DAY = "2016-12-01"  # a Thursday (German local day)
METER_DAYS = 60
LOAD_GROWTH = 2.8  # electrification: heat pumps and EVs
GEN_GROWTH = 2.2  # a PV and wind build-out: reverse flow on some feeders
LIMIT_SHARE = 0.5  # open-ring MV feeders keep half their rating for re-supply
INTERFACE_SHARE = 0.38  # the TSO's limit at each HV/MV interface, share of the transformers' rating
TSO_TO_DSO = 1.0  # TSO needs over the day = this x the DSOs' needs over the day
MAX_TSO_NEED_MW = 20.0  # no TSO need above this (the three grids' DER offer a few tens of MW)
N_LOADS, N_GEN = 14, 6  # DER per grid
SEED = 20171
INTERVAL_H = 0.25
LOCAL_TZ = "Europe/Berlin"
AGGREGATORS = {"agg-grid": "via-dso", "agg-spot": "tso-direct", "agg-flex": "both", "agg-sun": "both"}


def node(dso: str, bus: int) -> str:
    return f"{dso}-b{bus:03d}"


def profiles(net):  # type: ignore[no-untyped-def]
    import simbench as sb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prof = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    local = pd.to_datetime(net.profiles["load"]["time"], format="%d.%m.%Y %H:%M")
    times = pd.DatetimeIndex(local.dt.tz_localize(LOCAL_TZ, ambiguous="infer").dt.tz_convert("UTC"))
    return prof, times


def feeders(net):  # type: ignore[no-untyped-def]
    """Per feeder: its id suffix, its buses, its head lines and their orientation (+1 where
    the line runs from the busbar into the feeder)."""
    import pandapower.topology as top

    busbars = set(net.trafo["lv_bus"].astype(int))
    g = top.create_nxgraph(net, respect_switches=True, include_trafos=False)
    for b in busbars:
        g.remove_node(b)
    out = []
    for comp in sorted(nx.connected_components(g), key=min):
        line = net.line
        head = line[
            line["in_service"]
            & ((line["from_bus"].isin(busbars) & line["to_bus"].isin(comp))
               | (line["to_bus"].isin(busbars) & line["from_bus"].isin(comp)))
        ]  # fmt: skip
        if len(head):
            orient = np.where(head["from_bus"].isin(busbars), 1.0, -1.0)
            out.append((sorted(int(b) for b in comp), head.index.to_numpy(), orient))
    return out


def ac_flows(net, prof, rows, head_sets):  # type: ignore[no-untyped-def]
    """Per interval (``rows`` of the profiles): each feeder head's import and the HV/MV
    import (MW) from pandapower's AC power flow; a DC flow where the AC one fails."""
    import pandapower as pp

    p_load = prof[("load", "p_mw")] * LOAD_GROWTH
    q_load = prof[("load", "q_mvar")] * LOAD_GROWTH
    p_gen = prof[("sgen", "p_mw")] * GEN_GROWTH
    heads, trafo, dc = [], [], 0
    for r in rows:
        net.load["p_mw"] = p_load.iloc[r].reindex(net.load.index).fillna(0.0).to_numpy()
        net.load["q_mvar"] = q_load.iloc[r].reindex(net.load.index).fillna(0.0).to_numpy()
        net.sgen["p_mw"] = p_gen.iloc[r].reindex(net.sgen.index).fillna(0.0).to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                pp.runpp(net, numba=False)
            except Exception:
                pp.rundcpp(net)
                dc += 1
        p_from = net.res_line["p_from_mw"]
        heads.append([float((orient * p_from.loc[idx].to_numpy()).sum()) for _, idx, orient in head_sets])
        trafo.append(float(net.res_trafo["p_hv_mw"].sum()))
    return np.asarray(heads), np.asarray(trafo), dc


def build(
    day_text: str = DAY,
    out: Path = HERE / "contested",
    meter_path: Path | None = HERE / "contested_meter.parquet",
    nets: dict[str, object] | None = None,
) -> None:
    """The contested batch of the local day ``day_text`` into ``out`` (replaced), and its
    meter data into ``meter_path`` (none for None). ``nets``: SimBench nets by DSO, loaded
    once by a caller that builds many days (data/make_season.py)."""
    rng = np.random.default_rng(SEED)
    day = pd.Timestamp(day_text, tz=LOCAL_TZ).tz_convert("UTC")
    bids, needs, areas, cons, sens, sigs, der_series = [], [], [], [], [], [], []
    tso_raw = None
    k_load = k_gen = 0
    for dso, code in GRIDS.items():
        import simbench as sb

        # a fresh copy each day: the power flows below change a net's elements in place
        net = copy.deepcopy(nets[dso]) if nets is not None else sb.get_simbench_net(code)
        prof, times = profiles(net)
        rows = np.flatnonzero((times >= day) & (times < day + pd.Timedelta(days=1)))
        t_day = times[rows]
        head_sets = feeders(net)
        grid = pandapower_tables(net, dso_id=dso)
        ptdf = grid.ptdf  # lines, then transformers (net order) x buses (net.bus order)
        bus_pos = pd.Series(np.arange(len(net.bus)), index=net.bus.index)
        head_flow, trafo_flow, dc = ac_flows(net, prof, rows, head_sets)
        rating_kv = float(net.bus.loc[int(net.trafo["lv_bus"].iloc[0]), "vn_kv"])
        feeder_of: dict[int, str] = {}
        congested: set[str] = set()
        fed = sorted(b for buses, _, _ in head_sets for b in buses)
        interface = f"{dso}-interface"
        for k, (buses, idx, orient) in enumerate(head_sets):
            fid = f"{dso}-f{k:02d}"
            for b in buses:
                feeder_of[b] = fid
                areas.append((fid, node(dso, b), dso))
                areas.append((interface, node(dso, b), dso))
            rating = LIMIT_SHARE * float((np.sqrt(3) * rating_kv * net.line.loc[idx, "max_i_ka"]).sum())
            factor = (orient[:, None] * ptdf[net.line.index.get_indexer(idx)]).sum(axis=0)
            sens += [(f"head-{fid}", node(dso, b), round(float(factor[bus_pos[b]]), 6)) for b in buses]
            for i, ts in enumerate(t_day):
                base = float(head_flow[i, k])
                cons.append((f"head-{fid}", dso, ts, round(base, 4), round(rating, 4), round(-rating, 4)))
                over, under = base - rating, -rating - base
                if max(over, under) > 0:
                    congested.add(fid)
                    direction = "up" if over > 0 else "down"
                    q = round(float(max(over, under)) * 1.05 + 0.01, 4)
                    needs.append((f"head-{fid}-{i:02d}", dso, "dso_congestion", fid, ts, direction, q, np.nan))
                ratio = base / rating
                state = "red" if abs(ratio) > 1 else "amber" if abs(ratio) > 0.8 else "green"
                up = round(max(base + rating, 0.0), 4) if state == "amber" else np.nan
                down = round(max(rating - base, 0.0), 4) if state == "amber" else np.nan
                sigs.append((dso, fid, ts, state, up, down))
        # the T-D interface: the HV/MV transformers, a TSO limit (import positive)
        t_rows = len(net.line) + np.arange(len(net.trafo))
        t_factor = ptdf[t_rows].sum(axis=0)
        limit = INTERFACE_SHARE * float(net.trafo["sn_mva"].sum())
        sens += [(f"interface-{dso}", node(dso, b), round(float(t_factor[bus_pos[b]]), 6)) for b in fed]
        for i, ts in enumerate(t_day):
            cons.append(
                (f"interface-{dso}", "tso", ts, round(float(trafo_flow[i]), 4), round(limit, 4), round(-limit, 4))
            )
        tso_raw = trafo_flow if tso_raw is None else tso_raw + trafo_flow
        # DER: the largest loads and PV/wind on a feeder; the cheapest where the DSO needs them
        p_load = prof[("load", "p_mw")] * LOAD_GROWTH
        p_gen = prof[("sgen", "p_mw")] * GEN_GROWTH
        loads = net.load[net.load["bus"].isin(fed)].sort_values(["p_mw", "name"], ascending=[False, True]).head(N_LOADS)
        gens = net.sgen[net.sgen["bus"].isin(fed)].sort_values(["p_mw", "name"], ascending=[False, True]).head(N_GEN)
        for idx, row in loads.iterrows():
            der, at = f"{dso}-load{idx:03d}", node(dso, int(row["bus"]))
            cheap = feeder_of[int(row["bus"])] in congested
            series = p_load[idx]
            der_series.append((der, times, series.to_numpy()))
            p_day = series.iloc[rows].to_numpy()
            up_price = round(float(rng.uniform(30, 80) if cheap else rng.uniform(80, 190)), 2)
            down_price = round(float(rng.uniform(5, 40)), 2)
            agg = list(AGGREGATORS)[k_load % 3]
            lumpy = k_load % 7 == 3
            k_load += 1
            for i, ts in enumerate(t_day):
                q_up, q_dn = round(float(0.18 * p_day[i]), 4), round(float(0.10 * p_day[i]), 4)
                if q_up >= 0.001:
                    bids.append(
                        (f"{der}-up-{i:02d}", agg, der, dso, at, ts, "up", q_up, q_up if lumpy else 0.0, up_price)
                    )
                if q_dn >= 0.001:
                    bids.append((f"{der}-dn-{i:02d}", agg, der, dso, at, ts, "down", q_dn, 0.0, down_price))
        for idx, row in gens.iterrows():
            der, at = f"{dso}-gen{idx:03d}", node(dso, int(row["bus"]))
            cheap = feeder_of[int(row["bus"])] in congested
            series = -p_gen[idx]
            der_series.append((der, times, series.to_numpy()))
            g_day = -series.iloc[rows].to_numpy()
            price = round(float(rng.uniform(-10, 20) if cheap else rng.uniform(20, 60)), 2)
            agg = "agg-spot" if k_gen % 3 == 1 else "agg-sun"
            k_gen += 1
            for i, ts in enumerate(t_day):
                q = round(float(0.6 * g_day[i]), 4)
                if q >= 0.001:
                    bids.append((f"{der}-dn-{i:02d}", agg, der, dso, at, ts, "down", q, 0.0, price))
        print(f"{dso}: {len(head_sets)} feeders, {len(rows)} AC power flows ({dc} fell back to DC)")
    dso_mwh = sum(n[6] for n in needs) * INTERVAL_H
    assert tso_raw is not None
    hourly = np.repeat(tso_raw.reshape(-1, 4).mean(axis=1), 4)
    dev = tso_raw - hourly
    scale = TSO_TO_DSO * dso_mwh / max(float(np.abs(dev).sum()) * INTERVAL_H, 1e-9)
    for i, ts in enumerate(t_day):
        # (capped at MAX_TSO_NEED_MW: a day whose net load barely deviates within the hour would
        # otherwise scale a tiny deviation to an absurd need)
        q = round(min(float(abs(dev[i]) * scale), MAX_TSO_NEED_MW), 4)
        if q >= 0.01:
            direction = "up" if dev[i] > 0 else "down"
            needs.append(
                (f"tso-{i:02d}", "tso", "tso_balancing", "system", ts, direction, q, 150.0 if i % 5 == 2 else np.nan)
            )
    frames = {
        "bids": pd.DataFrame(
            bids,
            columns=[
                "bid_id",
                "aggregator_id",
                "der_id",
                "dso_id",
                "node_id",
                "interval_start",
                "direction",
                "quantity_mw",
                "min_quantity_mw",
                "price_eur_mwh",
            ],
        ),  # fmt: skip
        "needs": pd.DataFrame(
            needs,
            columns=[
                "need_id",
                "buyer_id",
                "service",
                "area_id",
                "interval_start",
                "direction",
                "quantity_mw",
                "max_price_eur_mwh",
            ],
        ),  # fmt: skip
        "node_areas": pd.DataFrame(areas, columns=["area_id", "node_id", "dso_id"]),
        "constraints": pd.DataFrame(
            cons, columns=["constraint_id", "owner_id", "interval_start", "base_flow_mw", "max_flow_mw", "min_flow_mw"]
        ),
        "sensitivities": pd.DataFrame(sens, columns=["constraint_id", "node_id", "factor"]),
        "signals": pd.DataFrame(
            sigs, columns=["dso_id", "area_id", "interval_start", "state", "headroom_up_mw", "headroom_down_mw"]
        ),
        # (the aggregators with bids that day: one without any, a PV aggregator on a dark day, is not listed)
        "aggregators": pd.DataFrame(
            [(a, r) for a, r in AGGREGATORS.items() if any(b[1] == a for b in bids)], columns=["aggregator_id", "route"]
        ),
    }
    cfg = BatchConfig(
        name=f"simbench-3mv-contested-{day_text}", start=day, end=day + pd.Timedelta(days=1), interval_minutes=15
    )
    frames["bids"] = with_two_part_offers(frames["bids"])
    batch = batch_from_frames(cfg, **frames)
    if out.exists():
        shutil.rmtree(out)
    write_batch(batch, out, "parquet")
    if meter_path is None:
        return
    batch = load_batch(out)
    run = clear(batch, "single", "pay-as-clear")
    write_meter(der_series, day, run.awards, meter_path)
    tso = batch.needs[batch.needs["buyer_id"] == "tso"]["quantity_mw"].sum() * INTERVAL_H
    print(f"contested: {len(batch.bids)} bids, DSO needs {dso_mwh:.2f} MWh, TSO needs {tso:.2f} MWh")


if __name__ == "__main__":
    build()
