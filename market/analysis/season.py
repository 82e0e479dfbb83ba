"""How sure a comparison is: the same designs over many days (a season of batches).

One day is an example, not a finding. :func:`run_season` clears every design on every day
(each day's batch in its own folder; days fan out on worker processes, or on the Dask
cluster at ``scheduler``) and returns three tables:

``days``      one row per day, design and metric: the value, its unit and kind, and the
              VoLL factor the day was cleared with (1 unless a sensitivity was asked for);
``summary``   per VoLL factor, design and metric: median, minimum and maximum over the
              days and how many days (a measured metric's range; a structural one's is
              its property on every day);
``rankings``  per VoLL factor, risk (the report's Table 1, :data:`market.analysis.verdict.RISKS`)
              and design: the risk's median and range over the days, the share of days
              on which the design is best on the risk (within
              its tolerance), the share on which it is better / worse than today's
              TSO-centric model, and the share on which the report's prediction holds.

A VoLL sensitivity (``voll_factors``) clears every day again with its VoLL scaled: where
the ranking of system cost moves with VoLL, the comparison is decided by the value put on
unserved energy, not by the bids.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from market.analysis.comparison import comparison_table
from market.analysis.verdict import RISKS, risk_table
from market.clearing.parallel import stream_map
from market.clearing.run import clear
from market.design.spec import Design, load_design
from market.enums import DEFAULT_PRICING, Pricing
from market.errors import BatchError

DAY_COLUMNS = ["day", "voll_factor", "design", "metric", "value", "unit", "kind"]
RISK_COLUMNS = [
    "day",
    "voll_factor",
    "risk",
    "kind",
    "design",
    "value",
    "verdict",
    "expected",
    "agrees",
    "basis",
    "source",
]
MAX_DAYS = 400


def day_folders(days: Path) -> list[Path]:
    """The batch folders under ``days`` (each with a ``batch.toml``), sorted by name."""
    if not days.is_dir():
        raise BatchError(f"{days}: not a folder of day batches")
    found = sorted(p for p in days.iterdir() if p.is_dir() and not p.is_symlink() and (p / "batch.toml").is_file())
    if not found:
        raise BatchError(f"{days}: no batch folders (each a folder with batch.toml) in it")
    if len(found) > MAX_DAYS:
        raise BatchError(f"{days}: {len(found)} days; at most {MAX_DAYS} in one season")
    return found


def _one_day(common: tuple[tuple[Design, ...], Pricing, tuple[float, ...]], folder: Path) -> tuple[pd.DataFrame, ...]:
    """Every design on one day (and each VoLL factor): its metric rows and risk rows."""
    from market.io.read import load_batch

    designs, pricing, factors = common
    batch = load_batch(folder)
    metric_parts, risk_parts = [], []
    for factor in factors:
        day = batch if factor == 1.0 else batch.with_config(voll_eur_mwh=batch.config.voll_eur_mwh * factor)
        results = [clear(day, d, pricing) for d in designs]
        table = comparison_table(results).drop(columns="pricing")
        metric_parts.append(table.assign(day=folder.name, voll_factor=factor))
        risks = risk_table(results)
        risk_parts.append(risks.assign(day=folder.name, voll_factor=factor))
    return pd.concat(metric_parts, ignore_index=True)[DAY_COLUMNS], pd.concat(risk_parts, ignore_index=True)[
        RISK_COLUMNS
    ]


def run_season(
    days: Path,
    designs: Sequence[str | Design],
    pricing: str | Pricing = DEFAULT_PRICING,
    scheduler: str | None = None,
    voll_factors: Sequence[float] = (1.0,),
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(days, summary, rankings)`` of every design over the day batches under ``days``."""
    folders = day_folders(Path(days))
    loaded = tuple(d if isinstance(d, Design) else load_design(d) for d in designs)
    common = (loaded, Pricing(pricing), tuple(float(f) for f in voll_factors))
    parts = stream_map(_one_day, common, iter(folders), scheduler=scheduler, count=len(folders))
    per_day = pd.concat([p[0] for p in parts], ignore_index=True)
    risks = pd.concat([p[1] for p in parts], ignore_index=True)
    return per_day, summarise(per_day), rank(risks)


def summarise(per_day: pd.DataFrame) -> pd.DataFrame:
    """Median, minimum, maximum and number of days per VoLL factor, design and metric."""
    g = per_day.groupby(["voll_factor", "design", "metric", "unit", "kind"], sort=True)["value"]
    out = g.agg(median="median", min="min", max="max", days="count").reset_index()
    return out


def rank(risks: pd.DataFrame) -> pd.DataFrame:
    """Per VoLL factor, risk and design: the shares of days it is best, better or worse than
    today's model, and on which the report's prediction holds (of the days it makes one)."""
    tolerance = {r.key: r.tolerance for r in RISKS}
    better = {r.key: r.better for r in RISKS}
    rows = []
    for (factor, risk), t in risks.groupby(["voll_factor", "risk"], sort=True):
        sign = better[risk]
        best_by_day = t.groupby("day")["value"].transform("min" if sign < 0 else "max")
        t = t.assign(best=(t["value"] - best_by_day).abs() <= tolerance[risk])
        for design, d in t.groupby("design", sort=True):
            judged = d["agrees"].dropna()
            rows.append(
                {
                    "voll_factor": factor,
                    "risk": risk,
                    "kind": d["kind"].iloc[0],
                    "design": design,
                    "days": int(d["day"].nunique()),
                    "median": float(d["value"].median()),
                    "min": float(d["value"].min()),
                    "max": float(d["value"].max()),
                    "share_best": float(d["best"].mean()),
                    "share_better_than_reference": float((d["verdict"] == "better").mean()),
                    "share_worse_than_reference": float((d["verdict"] == "worse").mean()),
                    "prediction": d["expected"].iloc[0] or "",
                    "basis": d["basis"].iloc[0],  # quote, inference, unstated or not-in-report
                    "source": d["source"].iloc[0],
                    "share_prediction_holds": float(judged.astype(bool).mean()) if len(judged) else np.nan,
                }
            )
    return pd.DataFrame(rows)
