"""Derive the sample batch and meter data in data/ from SimBench (ODbL).

Run:  python data/make_sample.py            (needs the `data` extra: simbench, pandapower)

What it does, deterministically (no randomness outside a fixed seed):

1. Two real SimBench MV grids, each one DSO: ``1-MV-rural--0-sw`` (DSO ``dso-rural``) and
   ``1-MV-semiurb--0-sw`` (DSO ``dso-semiurb``). Each grid is split at its HV/MV substation
   busbar into radial feeders (pandapower topology, open switches respected). Every feeder
   is an area with a feeder-head constraint (thermal limit of the head line,
   ``LIMIT_SHARE * sqrt(3) * V * I_max``: open-ring MV feeders keep half their rating
   to re-supply the other half of the ring), every grid a ``*-substation`` area with the HV/MV transformer
   (``sn_mva``) as a second constraint. Sensitivities are radial: -1 for every node below
   the head (up activation = less import through it).
2. Base flows per interval are the feeder's net load (loads - generation) from the SimBench
   15-minute profiles, with loads scaled by ``LOAD_GROWTH`` (heat pumps, EVs) and
   generation by ``GEN_GROWTH`` (more PV and wind): the scenario a DSO buys flexibility
   for. The sample day is a weekday with both import and reverse-flow overloads under it.
   SimBench profile times (2016, German local time, one repeated hour in October) are
   converted to UTC; the sample day is the local day. Losses are ignored.
3. DER: the largest LV-equivalent loads (flexible demand: up = consume less, down =
   consume more) and the largest PV and wind in-feeds (down = curtail), per grid. A few loads
   offer all-or-nothing bids and one-hour blocks. Aggregators offer each registered resource
   (aggregator x DSO, loads and PV apart) at one price per direction, drawn once from a
   seeded generator in plausible ranges (EUR/MWh): a portfolio offer, so a resource's DER
   are dispatched together (before 2026-11-28 every DER drew its own price).
4. Needs: TSO balancing from the intra-hour deviation of the two grids' aggregate net
   load from its hourly mean (a proxy for the schedule imbalance the TSO balances), some of
   them elastic; DSO congestion needs where a feeder or transformer is over its limit
   (``up`` for import overloads, ``down`` for reverse-flow overloads).
5. Traffic lights per feeder and interval: red over the limit, amber above 80 % of it with
   the remaining headroom, green otherwise.
6. Meter data: 60 days of 15-minute net consumption (kWh) for every DER, ending on the
   sample day, from the same profiles; on the sample day the delivered flexibility of the
   ``single`` pay-as-clear run is taken out (event day).
"""

from __future__ import annotations

import shutil
import sys
import zlib
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from market.clearing.run import clear  # noqa: E402
from market.io.batch import BatchConfig  # noqa: E402
from market.io.read import batch_from_frames, load_batch  # noqa: E402
from market.io.write import write_batch  # noqa: E402

GRIDS = {"dso-rural": "1-MV-rural--0-sw", "dso-semiurb": "1-MV-semiurb--0-sw"}
SAMPLE_DAY = "2016-12-01"  # a Thursday with import and reverse-flow overloads (see below)
METER_DAYS = 60
LOAD_GROWTH = 2.5  # electrification scenario: heat pumps and EVs
GEN_GROWTH = 1.5  # more rooftop PV and wind on the same feeders
LIMIT_SHARE = 0.5  # open-ring MV feeders keep half their rating to re-supply the other half
TSO_SHARE = 1.0  # share of the intra-hour deviation the TSO balances with these DER
N_LOADS, N_PV = 22, 12  # DER per grid
SEED = 20161
INTERVAL_H = 0.25
LOCAL_TZ = "Europe/Berlin"  # SimBench profile times are German local time


def grid_parts(dso: str, code: str):  # type: ignore[no-untyped-def]
    import pandapower.topology as top
    import simbench as sb

    net = sb.get_simbench_net(code)
    prof = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    local = pd.to_datetime(net.profiles["load"]["time"], format="%d.%m.%Y %H:%M")
    times = local.dt.tz_localize(LOCAL_TZ, ambiguous="infer").dt.tz_convert("UTC")
    busbar = int(net.trafo.loc[net.trafo["sn_mva"].idxmax(), "lv_bus"])
    g = top.create_nxgraph(net, respect_switches=True, include_trafos=False)
    g.remove_node(busbar)
    feeder_of: dict[int, str] = {}
    heads = []
    for k, comp in enumerate(sorted(nx.connected_components(g), key=min)):
        lines = net.line[
            (net.line["from_bus"] == busbar) & net.line["to_bus"].isin(comp)
            | (net.line["to_bus"] == busbar) & net.line["from_bus"].isin(comp)
        ]
        lines = lines[lines["in_service"]]
        if lines.empty:
            continue
        fid = f"{dso}-f{k:02d}"
        for b in comp:
            feeder_of[int(b)] = fid
        vn = net.bus.loc[busbar, "vn_kv"]
        rating = LIMIT_SHARE * float((np.sqrt(3) * vn * lines["max_i_ka"]).sum())
        heads.append((fid, rating))
    load_p = prof[("load", "p_mw")] * LOAD_GROWTH
    sgen_p = prof[("sgen", "p_mw")] * GEN_GROWTH
    return net, times, feeder_of, heads, load_p, sgen_p, float(net.trafo["sn_mva"].max())


def node(dso: str, bus: int) -> str:
    return f"{dso}-b{bus:03d}"


def resource_offer(
    offers: dict[tuple[str, str, str], list[float]],
    rng: np.random.Generator,
    resource: tuple[str, str, str],
    ranges: list[tuple[float, float]],
) -> list[float]:
    """The prices (EUR/MWh) at which an aggregator offers one registered resource
    (aggregator x DSO x kind), drawn once from ``ranges`` on first use: a portfolio offer,
    so the resource's DER are dispatched together, as the programmes dispatch resources."""
    if resource not in offers:
        offers[resource] = [round(float(rng.uniform(lo, hi)), 2) for lo, hi in ranges]
    return offers[resource]


def build() -> None:
    rng = np.random.default_rng(SEED)
    day = pd.Timestamp(SAMPLE_DAY, tz=LOCAL_TZ).tz_convert("UTC")
    bids, needs, areas, cons, sens, sigs, der_series = [], [], [], [], [], [], []
    net_total = None
    offers: dict[tuple[str, str, str], list[float]] = {}
    for dso, code in GRIDS.items():
        net, times, feeder_of, heads, load_p, sgen_p, trafo_mva = grid_parts(dso, code)
        in_day = (times >= day) & (times < day + pd.Timedelta(days=1))
        t_day = times[in_day].reset_index(drop=True)
        # Net load per bus over the year (MW): loads minus generation.
        bus_load = load_p.T.groupby(net.load["bus"].to_numpy()).sum().T
        bus_gen = sgen_p.T.groupby(net.sgen["bus"].to_numpy()).sum().T
        bus_net = bus_load.sub(bus_gen, fill_value=0.0)
        total = bus_net.sum(axis=1)
        net_total = total if net_total is None else net_total + total
        substation = f"{dso}-substation"
        fed_buses = sorted(b for b in bus_net.columns if int(b) in feeder_of)
        for b in fed_buses:
            areas.append((feeder_of[int(b)], node(dso, int(b)), dso))
            areas.append((substation, node(dso, int(b)), dso))
        limits = [(f"head-{fid}", fid, rating) for fid, rating in heads]
        limits.append((f"trafo-{dso}", substation, trafo_mva))
        for cid, area_id, rating in limits:
            members = fed_buses if area_id == substation else [b for b in fed_buses if feeder_of[int(b)] == area_id]
            base = bus_net[members].sum(axis=1)[in_day.to_numpy()].to_numpy()
            for i, ts in enumerate(t_day):
                cons.append((cid, dso, ts, round(float(base[i]), 4), round(rating, 4), round(-rating, 4)))
                over, under = base[i] - rating, -rating - base[i]
                if over > 0:
                    needs.append(
                        (
                            f"{cid}-{i:02d}",
                            dso,
                            "dso_congestion",
                            area_id,
                            ts,
                            "up",
                            round(float(over) * 1.05 + 0.01, 4),
                            np.nan,
                        )
                    )
                elif under > 0:
                    needs.append(
                        (
                            f"{cid}-{i:02d}",
                            dso,
                            "dso_congestion",
                            area_id,
                            ts,
                            "down",
                            round(float(under) * 1.05 + 0.01, 4),
                            np.nan,
                        )
                    )
                if area_id != substation:
                    ratio = base[i] / rating
                    state = "red" if abs(ratio) > 1 else "amber" if abs(ratio) > 0.8 else "green"
                    up = round(max(base[i] + rating, 0.0), 4) if state == "amber" else np.nan
                    down = round(max(rating - base[i], 0.0), 4) if state == "amber" else np.nan
                    sigs.append((dso, area_id, ts, state, up, down))
            sens += [(cid, node(dso, int(b)), -1.0) for b in members]
        # DER: the largest loads and PV in-feeds that sit on a feeder.
        loads = net.load[net.load["bus"].isin([int(b) for b in fed_buses])]
        loads = loads.sort_values(["p_mw", "name"], ascending=[False, True]).head(N_LOADS)
        pv = net.sgen[
            net.sgen["bus"].isin([int(b) for b in fed_buses]) & net.sgen["type"].isin(["lv_RES", "PV_MV", "Wind_MV"])
        ]
        pv = pv.sort_values(["p_mw", "name"], ascending=[False, True]).head(N_PV)
        for k, (idx, row) in enumerate(loads.iterrows()):
            der = f"{dso}-load{idx:03d}"
            series = load_p[idx]
            der_series.append((der, times, series.to_numpy()))
            p_day = series[in_day.to_numpy()].to_numpy()
            lumpy = k % 9 == 4
            block = k % 11 == 7
            agg = f"agg-{['north', 'south', 'volt'][k % 3]}"
            up_price, down_price = resource_offer(offers, rng, (agg, dso, "load"), [(70, 190), (5, 60)])
            for i, ts in enumerate(t_day):
                q_up = round(float(0.25 * p_day[i]), 4)
                q_dn = round(float(0.12 * p_day[i]), 4)
                bid_block = f"{der}-h{i // 4:02d}" if block and 68 <= i < 84 else None
                if q_up >= 0.001:
                    bids.append(
                        (
                            f"{der}-up-{i:02d}",
                            agg,
                            der,
                            dso,
                            node(dso, int(row["bus"])),
                            ts,
                            "up",
                            q_up,
                            q_up if lumpy else 0.0,
                            up_price,
                            bid_block,
                            None,
                            None,
                        )
                    )
                if q_dn >= 0.001 and not block:
                    bids.append(
                        (
                            f"{der}-dn-{i:02d}",
                            agg,
                            der,
                            dso,
                            node(dso, int(row["bus"])),
                            ts,
                            "down",
                            q_dn,
                            0.0,
                            down_price,
                            None,
                            None,
                            None,
                        )
                    )
        for k, (idx, row) in enumerate(pv.iterrows()):
            der = f"{dso}-pv{idx:03d}"
            series = -sgen_p[idx]
            der_series.append((der, times, series.to_numpy()))
            g_day = -series[in_day.to_numpy()].to_numpy()
            agg = f"agg-{['sun', 'volt'][k % 2]}"
            (price,) = resource_offer(offers, rng, (agg, dso, "pv"), [(-10, 45)])
            for i, ts in enumerate(t_day):
                q = round(float(0.8 * g_day[i]), 4)
                if q >= 0.001:
                    bids.append(
                        (
                            f"{der}-dn-{i:02d}",
                            agg,
                            der,
                            dso,
                            node(dso, int(row["bus"])),
                            ts,
                            "down",
                            q,
                            0.0,
                            price,
                            None,
                            None,
                            None,
                        )
                    )
    # TSO balancing: intra-hour deviation of the aggregate net load from its hourly mean.
    assert net_total is not None
    in_day = (times >= day) & (times < day + pd.Timedelta(days=1))
    agg_day = net_total[in_day.to_numpy()].to_numpy()
    hourly = np.repeat(agg_day.reshape(-1, 4).mean(axis=1), 4)
    dev = TSO_SHARE * (agg_day - hourly)
    for i, ts in enumerate(times[in_day]):
        q = round(float(abs(dev[i])), 4)
        if q < 0.01:
            continue
        direction = "up" if dev[i] > 0 else "down"
        elastic = 150.0 if i % 5 == 2 else np.nan
        needs.append((f"tso-{i:02d}", "tso", "tso_balancing", "system", ts, direction, q, elastic))

    cfg = BatchConfig(
        name=f"simbench-2mv-{SAMPLE_DAY}",
        start=day,
        end=day + pd.Timedelta(days=1),
        interval_minutes=15,
        voll_eur_mwh=10000.0,
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
                "block_id",
                "exclusive_group",
                "services",
            ],
        ),
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
        ),
        "node_areas": pd.DataFrame(areas, columns=["area_id", "node_id", "dso_id"]),
        "constraints": pd.DataFrame(
            cons, columns=["constraint_id", "owner_id", "interval_start", "base_flow_mw", "max_flow_mw", "min_flow_mw"]
        ),
        "sensitivities": pd.DataFrame(sens, columns=["constraint_id", "node_id", "factor"]),
        "signals": pd.DataFrame(
            sigs, columns=["dso_id", "area_id", "interval_start", "state", "headroom_up_mw", "headroom_down_mw"]
        ),
    }
    frames["bids"] = with_two_part_offers(frames["bids"])
    batch = batch_from_frames(cfg, **frames)
    out = HERE / "sample"
    if out.exists():
        shutil.rmtree(out)
    write_batch(batch, out, "parquet")
    batch = load_batch(out)
    run = clear(batch, "single", "pay-as-clear")
    write_meter(der_series, day, run.awards)
    print(
        f"sample: {len(batch.bids)} bids, {len(batch.needs)} needs, {batch.signals['state'].value_counts().to_dict()}"
    )


TWO_PART_EUR_MW_H = (15.0, 30.0)  # availability prices drawn in this range (see data/README.md)


def with_two_part_offers(bids: pd.DataFrame) -> pd.DataFrame:
    """Every second flexible-load DER (by id) offers its bids as two-part offers: an
    availability price in ``TWO_PART_EUR_MW_H`` per MW and hour, the same for all its bids,
    from a checksum of its id (no random draw: the other columns stay as they were). The
    range brackets the availability paid in National Grid DSO's worked example (a 0.5 MW
    battery paid GBP 2,440.80 for 228 h of availability, about GBP 21.4 or EUR 25 per MW/h)."""
    loads = sorted(d for d in bids["der_id"].unique() if "-load" in d)
    lo, hi = TWO_PART_EUR_MW_H
    price = {d: round(lo + (zlib.crc32(d.encode()) % 10_000) / 10_000 * (hi - lo), 2) for d in loads[::2]}
    return bids.assign(availability_price_eur_mw_h=bids["der_id"].map(price).astype(float))


def write_meter(der_series, day: pd.Timestamp, awards: pd.DataFrame, path: Path | None = None) -> None:  # type: ignore[no-untyped-def]
    """60 days of 15-minute net consumption (kWh) per DER, delivered flexibility removed
    (``path``: default ``data/meter.parquet``)."""
    first = (day.tz_convert(LOCAL_TZ) - pd.DateOffset(days=METER_DAYS - 1)).tz_convert("UTC")
    frames = []
    for der, times, mw in der_series:
        sel = np.asarray((times >= first) & (times < day + pd.Timedelta(days=1)))  # Series or Index
        frames.append(
            pd.DataFrame(
                {
                    "der_id": der,
                    "interval_start": np.asarray(times[sel]),
                    "consumption_kwh": np.asarray(mw)[sel] * 1000 * INTERVAL_H,
                }
            )
        )
    meter = pd.concat(frames, ignore_index=True)
    signed = np.where(awards["direction"] == "up", -1.0, 1.0) * awards["quantity_mw"] * 1000 * (INTERVAL_H)
    delivered = (
        awards.assign(kwh=signed).groupby(["der_id", "interval_start"])["kwh"].sum().rename("delta_kwh").reset_index()
    )
    meter = meter.merge(delivered, on=["der_id", "interval_start"], how="left", validate="one_to_one")
    meter["consumption_kwh"] = (meter["consumption_kwh"] + meter["delta_kwh"].fillna(0.0)).round(3)
    meter = meter.drop(columns="delta_kwh").sort_values(["der_id", "interval_start"])
    meter["interval_start"] = pd.to_datetime(meter["interval_start"], utc=True)
    meter.to_parquet(path or HERE / "meter.parquet", index=False)


if __name__ == "__main__":
    build()
