"""The desk's daily job: settle whatever the calendar (:mod:`settlement.calendar`) has due."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from market.errors import SettlementInputError
from settlement.api import SettlementResult, _run_info, session_of, settle
from settlement.config import load_config
from settlement.store import make_engine
from settlement.store_tables import ACTUAL


@dataclass(frozen=True)
class DueRun:
    """One run the calendar settled: the clearing run, why, and what it did."""

    run: Path
    run_type: str
    reason: str
    due_on: str
    result: SettlementResult


def last_delivery_day(manifest: dict[str, Any], timezone: str) -> dt.date:
    """T of a clearing run: the local date of its last delivery interval."""
    import zoneinfo

    batch = manifest.get("batch") or {}
    try:
        end = pd.Timestamp(batch["end"]) - pd.Timedelta(minutes=int(batch["interval_minutes"]))
        if pd.isna(end) or end.tzinfo is None:
            raise ValueError("no time-zone-aware end")
    except (KeyError, TypeError, ValueError) as exc:
        raise SettlementInputError(
            f"the run's manifest has no usable batch end ({exc}): it cannot be placed on the calendar"
        ) from exc
    day: dt.date = end.tz_convert(zoneinfo.ZoneInfo(timezone)).date()
    return day


def settle_due(
    runs: str | Path,
    meter: str | Path,
    config: str | Path,
    out: str | Path,
    db: str | None = None,
    today: dt.date | None = None,
    scenario: str = ACTUAL,
) -> list[DueRun]:
    """Settle every clearing run under ``runs`` (a folder of run folders) that the calendar of
    ``config`` has due on ``today`` (default: today in the settlement time zone), each into
    ``out/<run folder name>``, all into one store (default: ``out/store.duckdb``)."""
    import zoneinfo

    from market.io.place import check_apart
    from settlement.calendar import due_runs
    from settlement.store import session_runs

    cfg = load_config(config)
    runs, out = Path(runs), Path(out)
    if not runs.is_dir():
        raise SettlementInputError(f"{runs}: not a folder of clearing runs")
    check_apart(out, [runs, meter, config])  # never inside the runs, over the meter file or config
    folders = sorted(p for p in runs.iterdir() if p.is_dir() and (p / "manifest.json").is_file())
    if not folders:
        raise SettlementInputError(f"{runs}: no clearing run folders (each with manifest.json) in it")
    today = today or dt.datetime.now(zoneinfo.ZoneInfo(cfg.timezone)).date()
    url = db or f"duckdb:///{out.resolve() / 'store.duckdb'}"
    out.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        plans = []
        for folder in folders:
            _, _, manifest = _run_info(folder)
            with engine.connect() as conn:
                recorded = session_runs(conn, scenario, session_of(manifest))
            for due in due_runs(cfg.calendar, last_delivery_day(manifest, cfg.timezone), today, recorded, cfg.holidays):
                plans.append((folder, due))
    finally:
        engine.dispose()
    done = []
    for folder, due in plans:
        result = settle(
            folder, meter, cfg, db=url, out=out / folder.name, scenario=scenario, run_type=due.run_type,
            reason=f"{due.reason} (due {due.due_on.isoformat()}, run on {today.isoformat()})",
        )  # fmt: skip
        done.append(DueRun(folder, due.run_type, due.reason, due.due_on.isoformat(), result))
    return done
