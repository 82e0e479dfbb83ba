"""Small runs and meter data for settlement tests."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

PG_BASE = os.environ.get("FLEXMARKET_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def make_run(folder: Path, awards: list[dict], minutes: int = 15, session: str = "day") -> Path:  # type: ignore[type-arg]
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for a in awards:
        rows.append(
            {
                "bid_id": a.get("bid_id", "b1"),
                "der_id": a.get("der_id", "D1"),
                "aggregator_id": a.get("aggregator_id", "agg"),
                "dso_id": "dso1",
                "node_id": "n1",
                "buyer_id": a.get("buyer_id", "tso"),
                "service": a.get("service", "tso_balancing"),
                "need_id": a.get("need_id"),
                "area_id": "system",
                "interval_start": pd.Timestamp(a["t"]),
                "direction": a.get("direction", "up"),
                "quantity_mw": a["q"],
                "bid_price_eur_mwh": a["price"],
                "price_eur_mwh": a["price"],
                "nominated_baseline_mw": a.get("nominated"),
                "pricing": "pay-as-bid",
            }
        )
    df = pd.DataFrame(rows)
    if any("make_whole" in a for a in awards):  # runs made before make-whole lack the column
        df["make_whole_eur"] = [float(a.get("make_whole", 0.0)) for a in awards]
    if any("product" in a or "reservation" in a for a in awards):  # two-part products (hand-made)
        df["product"] = [a.get("product", "energy") for a in awards]
        if any("max_usage" in a for a in awards):  # capped power: the consumption ceiling
            df["max_usage_mw"] = [a.get("max_usage") for a in awards]
            df["max_usage_mw"] = df["max_usage_mw"].astype(float)
        df["reservation_id"] = [a.get("reservation") for a in awards]
        df["availability_price_eur_mw_h"] = [a.get("availability_price") for a in awards]
        df["availability_price_eur_mw_h"] = df["availability_price_eur_mw_h"].astype(float)
    df["interval_start"] = pd.to_datetime(df["interval_start"], utc=True)
    df["nominated_baseline_mw"] = df["nominated_baseline_mw"].astype(float)
    df.to_parquet(folder / "awards.parquet", index=False)
    seal_run(folder, minutes, session)
    return folder


def seal_run(folder: Path, minutes: int = 15, session: str = "day") -> None:
    """A run manifest with the hash of the run's awards, as flexmarket clear writes it;
    ``session`` names the batch (its market session)."""
    digest = hashlib.sha256((folder / "awards.parquet").read_bytes()).hexdigest()
    batch = {"interval_minutes": minutes, "name": session, "start": None, "end": None}
    manifest = {"batch": batch, "design": {"name": "test"}, "pricing": "pay-as-bid"}
    (folder / "manifest.json").write_text(json.dumps({**manifest, "output_sha256": {"awards.parquet": digest}}))


def daily_meter(
    der: str,
    start: str,
    days: int,
    value_of_day,
    minutes: int = 15,  # type: ignore[no-untyped-def]
) -> pd.DataFrame:
    """Meter rows where every interval of day k (0-based) reads ``value_of_day(k, slot)``."""
    per_day = 1440 // minutes
    ts = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=days * per_day, freq=f"{minutes}min")
    k = np.arange(len(ts)) // per_day
    slot = np.arange(len(ts)) % per_day
    return pd.DataFrame(
        {
            "der_id": der,
            "interval_start": ts,
            "consumption_kwh": [float(value_of_day(a, b)) for a, b in zip(k, slot, strict=True)],
        }
    )


def write_meter(df: pd.DataFrame, path: Path) -> Path:
    df.to_parquet(path, index=False)
    return path
