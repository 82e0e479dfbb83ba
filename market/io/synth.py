"""Deterministic synthetic batches of any size, for tests and benchmarks.

Topology: ``dsos`` DSOs, each with radial feeders (one area and one feeder-head
constraint each, factor -1 for every node below it: up activation = more
injection = less import through the head). One bid per DER and interval; the
DER's direction, price and size are drawn once from a seeded generator, so the
same arguments always give the same batch, byte for byte.

The market is made interesting on purpose: some feeders are overloaded in some
intervals (a DSO congestion need for ``up`` plus an amber or red signal), a few
TSO intervals are short of offers (unmet at VoLL), and a share of the bids are
integer (``min_quantity_mw = quantity_mw``), in blocks or exclusive groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from market.errors import FlexmarketError
from market.io.batch import Batch, BatchConfig
from market.io.place import publish_folder
from market.io.read import batch_from_frames, empty_table
from market.io.schemas import BATCH_TABLES
from market.io.write import write_batch


@dataclass(frozen=True)
class SynthSpec:
    bids: int = 200  # bids (DER) per interval
    intervals: int = 96
    dsos: int = 2
    seed: int = 0
    feeders: int | None = None  # default: one per 50 DER, at least 2 per DSO
    integer_share: float = 0.0  # share of DER whose bids are all-or-nothing
    interval_minutes: int = 15
    start: str = "2026-03-02T00:00:00+00:00"


def synth_parts(spec: SynthSpec) -> tuple[BatchConfig, BidParts, dict[str, pd.DataFrame]]:
    """Everything drawn from the seeded generator: the config, the bids' numbers and the
    small tables (one draw order, so every writer gives the same batch)."""
    rng = np.random.default_rng(spec.seed)
    n_der, n_t = spec.bids, spec.intervals
    n_feed = min(spec.feeders or max(2 * spec.dsos, n_der // 50), n_der)
    start = pd.Timestamp(spec.start).tz_convert("UTC")
    times = pd.date_range(start, periods=n_t, freq=pd.Timedelta(minutes=spec.interval_minutes))
    cfg = BatchConfig(
        name=f"synth-b{n_der}-t{n_t}-d{spec.dsos}-s{spec.seed}",
        start=start,
        end=start + n_t * pd.Timedelta(minutes=spec.interval_minutes),
        interval_minutes=spec.interval_minutes,
    )

    feeder_dso = np.arange(n_feed) % spec.dsos
    feeder_ids = np.array([f"d{d}-f{f:04d}" for f, d in zip(range(n_feed), feeder_dso, strict=True)])
    dso_ids = np.array([f"dso{d}" for d in range(spec.dsos)])
    der_feeder = np.sort(rng.integers(0, n_feed, n_der))
    der_feeder[: min(n_feed, n_der)] = np.arange(min(n_feed, n_der))  # no empty feeder
    der_node = np.array([f"n{i:06d}" for i in range(n_der)])
    der_up = rng.random(n_der) < 0.6
    der_q = np.round(rng.uniform(0.05, 1.0, n_der), 3)
    der_price = np.where(der_up, rng.uniform(20, 150, n_der), rng.uniform(-20, 80, n_der))
    der_integer = rng.random(n_der) < spec.integer_share

    # Bids: DER x interval, vectorised (numbers for every bid now, text per chunk later).
    d_idx = np.repeat(np.arange(n_der), n_t)
    t_idx = np.tile(np.arange(n_t), n_der)
    shape = 0.8 + 0.4 * np.sin(2 * np.pi * t_idx / max(n_t, 1))
    q = np.round(der_q[d_idx] * shape, 3)
    price = np.round(der_price[d_idx] + rng.normal(0, 2, len(d_idx)), 2)
    bid_parts = BidParts(d_idx, t_idx, q, price, der_integer, der_up, der_node, dso_ids[feeder_dso[der_feeder]], times)

    node_areas = pd.DataFrame(
        {
            "area_id": feeder_ids[der_feeder],
            "node_id": der_node,
            "dso_id": dso_ids[feeder_dso[der_feeder]],
        }
    )

    # Feeder loading: rating from the DER under it; base import follows a daily shape.
    up_cap = np.bincount(der_feeder, weights=der_q * der_up, minlength=n_feed)
    rating = np.round(2.0 + 3.0 * rng.random(n_feed), 3)
    f_idx = np.repeat(np.arange(n_feed), n_t)
    ft_idx = np.tile(np.arange(n_t), n_feed)
    load_shape = 0.75 + 0.35 * np.sin(2 * np.pi * (ft_idx / max(n_t, 1) - 0.25))
    hot = rng.random(n_feed) < 0.25
    base = np.round(rating[f_idx] * load_shape * np.where(hot[f_idx], 1.15, 0.85), 3)
    constraints = pd.DataFrame(
        {
            "constraint_id": np.char.add("head-", feeder_ids[f_idx]),
            "owner_id": dso_ids[feeder_dso[f_idx]],
            "interval_start": times[ft_idx],
            "base_flow_mw": base,
            "max_flow_mw": rating[f_idx],
            "min_flow_mw": -rating[f_idx],
        }
    )
    sensitivities = pd.DataFrame(
        {
            "constraint_id": np.char.add("head-", feeder_ids[der_feeder]),
            "node_id": der_node,
            "factor": -1.0,
        }
    )

    ratio = base / rating[f_idx]
    state = np.select([ratio > 1.0, ratio > 0.85], ["red", "amber"], "green")
    signals = pd.DataFrame(
        {
            "dso_id": dso_ids[feeder_dso[f_idx]],
            "area_id": feeder_ids[f_idx],
            "interval_start": times[ft_idx],
            "state": state,
            "headroom_up_mw": np.where(state == "amber", np.round(0.5 * up_cap[f_idx], 3), np.nan),
            "headroom_down_mw": np.where(state == "amber", np.round(np.maximum(rating[f_idx] - base, 0), 3), np.nan),
        }
    )

    overload = np.maximum(base - rating[f_idx], 0)
    cong = overload > 0
    dso_needs = pd.DataFrame(
        {
            "need_id": np.char.add("dso-", np.char.add(feeder_ids[f_idx], np.char.add("-", ft_idx.astype(str))))[cong],
            "buyer_id": dso_ids[feeder_dso[f_idx]][cong],
            "service": "dso_congestion",
            "area_id": feeder_ids[f_idx][cong],
            "interval_start": times[ft_idx][cong],
            "direction": "up",
            "quantity_mw": np.round(overload[cong] + 0.01, 3),
            "max_price_eur_mwh": np.nan,
        }
    )

    up_total = np.bincount(t_idx, weights=q * der_up[d_idx], minlength=n_t)  # (the bids' q)
    down_total = np.bincount(t_idx, weights=q * ~der_up[d_idx], minlength=n_t)
    sign = np.where(rng.random(n_t) < 0.6, 1, -1)
    avail = np.where(sign > 0, up_total, down_total)
    scarce = rng.random(n_t) < 0.05
    need_q = np.round(np.where(scarce, 1.1, rng.uniform(0.1, 0.35, n_t)) * avail, 3)
    elastic = ~scarce & (rng.random(n_t) < 0.3)
    tso_needs = pd.DataFrame(
        {
            "need_id": np.char.add("tso-", np.arange(n_t).astype(str)),
            "buyer_id": "tso",
            "service": "tso_balancing",
            "area_id": "system",
            "interval_start": times,
            "direction": np.where(sign > 0, "up", "down"),
            "quantity_mw": np.maximum(need_q, 0.001),
            "max_price_eur_mwh": np.where(elastic, 120.0, np.nan),
        }
    )
    needs = pd.concat([tso_needs, dso_needs], ignore_index=True)
    small = {
        "needs": needs,
        "node_areas": node_areas,
        "constraints": constraints,
        "sensitivities": sensitivities,
        "signals": signals,
    }
    return cfg, bid_parts, small


def synth_batch(spec: SynthSpec) -> Batch:
    """The synthetic batch, validated, in memory."""
    cfg, parts, small = synth_parts(spec)
    return batch_from_frames(cfg, bids=parts.frame(0, len(parts.d_idx)), **small)


def write_synth(spec: SynthSpec, folder: str | Path, fmt: str = "parquet", chunk_rows: int = 2_000_000) -> int:
    """Write the synthetic batch straight to ``folder``, its bids ``chunk_rows`` at a time
    (so a 10^7-row book never sits in memory as text); returns the number of bids. The
    same data as :func:`synth_batch`; it is validated when it is loaded. The folder is built
    beside ``folder`` and moved into place whole; an existing, non-empty folder is refused."""
    if fmt not in ("parquet", "csv"):
        raise FlexmarketError(f"--format must be parquet or csv, not {fmt!r}")
    check_spec(spec)
    counted: list[int] = []
    publish_folder(folder, SYNTH_KIND, lambda tmp: counted.append(_write_synth(spec, tmp, fmt, chunk_rows)))
    return counted[0]


SYNTH_KIND = "synthetic-batch"  # no manifest: an existing folder is never replaced


def check_spec(spec: SynthSpec) -> None:
    """Refuse (:class:`FlexmarketError`, exit 2) sizes that make no batch."""
    limits = {"bids": (1, 10**8), "intervals": (1, 10**5), "dsos": (1, 10**4), "interval_minutes": (1, 1440)}
    for name, (lo, hi) in limits.items():
        value = getattr(spec, name)
        if not isinstance(value, int) or not lo <= value <= hi:
            raise FlexmarketError(f"--{name.replace('_', '-')} must be a whole number from {lo} to {hi}, not {value}")
    if spec.bids * spec.intervals > 2 * 10**8:
        raise FlexmarketError(f"--bids x --intervals = {spec.bids * spec.intervals:,} bid-intervals; at most 2e8")
    if not 0.0 <= spec.integer_share <= 1.0:
        raise FlexmarketError(f"--integer-share must be in [0, 1], not {spec.integer_share}")
    if spec.feeders is not None and spec.feeders < 1:
        raise FlexmarketError(f"feeders must be at least 1, not {spec.feeders}")


def _write_synth(spec: SynthSpec, folder: Path, fmt: str, chunk_rows: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg, parts, small = synth_parts(spec)
    empty = Batch(cfg, *(empty_table(t) for t in BATCH_TABLES))
    write_batch(empty.replace(**small), folder, fmt)  # batch.toml and the small tables
    target = folder / f"bids.{fmt}"
    n = len(parts.d_idx)
    writer = None
    try:
        for lo in range(0, max(n, 1), chunk_rows):
            chunk = parts.frame(lo, min(lo + chunk_rows, n))
            if fmt == "parquet":
                table = pa.Table.from_pandas(chunk, schema=BID_SCHEMA, preserve_index=False)
                writer = writer or pq.ParquetWriter(target, BID_SCHEMA)
                writer.write_table(table)
            else:
                chunk = chunk.assign(interval_start=chunk["interval_start"].map(lambda t: t.isoformat()))
                chunk.to_csv(target, mode="w" if lo == 0 else "a", header=lo == 0, index=False)
    finally:
        if writer is not None:
            writer.close()
    return n


def _bid_schema() -> Any:
    import pyarrow as pa

    text = ("bid_id", "aggregator_id", "der_id", "dso_id", "node_id")
    return pa.schema(
        [(c, pa.string()) for c in text]
        + [("interval_start", pa.timestamp("ns", tz="UTC")), ("direction", pa.string())]
        + [(c, pa.float64()) for c in ("quantity_mw", "min_quantity_mw", "price_eur_mwh")]
        + [(c, pa.string()) for c in ("block_id", "exclusive_group", "services")]
    )


BID_SCHEMA = _bid_schema()  # one schema for every chunk (a chunk without blocks has no block ids)


@dataclass(frozen=True)
class BidParts:
    """The numbers of every synthetic bid, turned into rows (text included) range by range."""

    d_idx: np.ndarray
    t_idx: np.ndarray
    q: np.ndarray
    price: np.ndarray
    der_integer: np.ndarray
    der_up: np.ndarray
    der_node: np.ndarray
    der_dso: np.ndarray
    times: pd.DatetimeIndex

    def frame(self, lo: int, hi: int) -> pd.DataFrame:
        """Rows ``lo..hi`` of the bids table; ids joined by Arrow string kernels."""
        import pyarrow as pa
        import pyarrow.compute as pc

        d, t = self.d_idx[lo:hi], self.t_idx[lo:hi]
        q = self.q[lo:hi]
        integer = self.der_integer[d]

        def text(values: np.ndarray) -> pa.Array:
            return pa.array(values).cast(pa.string())

        def join(*parts: object) -> pd.Series:
            return pd.Series(pc.binary_join_element_wise(*parts, "").to_numpy(zero_copy_only=False), dtype=object)

        node = pa.array(self.der_node[d])
        block = join("blk-", node, "-", text(t // 4)).where(integer & (d % 2 == 0), None)
        excl = join("ex-", text(d // 4)).where(integer & (d % 2 == 1), None)
        return pd.DataFrame(
            {
                "bid_id": join("b", text(d), "-", text(t)),
                "aggregator_id": join("agg", text(d % 7)),
                "der_id": join("der", text(d)),
                "dso_id": self.der_dso[d],
                "node_id": self.der_node[d],
                "interval_start": self.times[t],
                "direction": np.where(self.der_up[d], "up", "down"),
                "quantity_mw": q,
                "min_quantity_mw": np.where(integer, q, 0.0),
                "price_eur_mwh": self.price[lo:hi],
                "block_id": block.to_numpy(),
                "exclusive_group": excl.to_numpy(),
                "services": None,
            }
        )
