"""Every baseline line of the engine against an independent implementation of the
contract's rules (tests/reference_baselines.py), on a meter history with a holiday, the
autumn clock change, earlier event days, a weekend event whose adjustment window crosses
midnight, and a net exporter."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from reference_baselines import baseline
from settle_helpers import make_run, write_meter

from settlement import settle
from settlement.config import parse_config

TZ = "Europe/Berlin"
HOLIDAYS = {dt.date(2025, 10, 3)}
AWARDS = [  # (der, UTC interval start)
    ("D1", "2025-11-11T09:00Z"),
    ("D1", "2025-11-20T16:00Z"),
    ("D1", "2025-11-20T16:15Z"),
    ("D2", "2025-11-02T00:30Z"),  # Sunday 01:30 local: the window starts the evening before
    ("D3", "2025-11-26T11:00Z"),
    ("D3", "2025-11-29T11:00Z"),  # a Saturday
]


def _meter() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    ts = pd.date_range("2025-09-15", "2025-12-01", freq="15min", inclusive="left", tz="UTC")
    local = ts.tz_convert(TZ)
    slot = (local.hour * 4 + local.minute // 15).to_numpy()
    frames = []
    for der, level in (("D1", 12.0), ("D2", 8.0), ("D3", -9.0)):
        day_factor = {d: rng.uniform(0.7, 1.3) for d in np.unique(local.date)}
        shape = 1 + 0.3 * np.sin(2 * np.pi * slot / 96)
        kwh = level * shape * np.array([day_factor[d] for d in local.date]) + rng.normal(0, 0.5, len(ts))
        frames.append(pd.DataFrame({"der_id": der, "interval_start": ts, "consumption_kwh": np.round(kwh, 3)}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize(
    "method", ["caiso-10-in-10", "nyiso-high-5-of-10", "pjm-high-4-of-5", "mid-8-of-10", "meter-before-meter-after"]
)
def test_every_baseline_line_equals_the_independent_implementation(tmp_path, method):
    meter = _meter()
    path = write_meter(meter, tmp_path / "m.parquet")
    awards = [{"bid_id": f"b{i}", "der_id": d, "t": t, "q": 0.004, "price": 50.0} for i, (d, t) in enumerate(AWARDS)]
    run = make_run(tmp_path / "run", awards)
    cfg = parse_config({"baseline": method, "timezone": TZ, "holidays": [d.isoformat() for d in HOLIDAYS]})
    lines = settle(run, path, cfg, db=f"duckdb:///{tmp_path / 's.duckdb'}").lines
    awarded = pd.DataFrame(AWARDS, columns=["der_id", "t"]).assign(t=lambda d: pd.to_datetime(d["t"], utc=True))
    awarded["day"] = awarded["t"].dt.tz_convert(TZ).dt.date
    event_days = awarded.groupby("der_id")["day"].agg(set).to_dict()
    checked = 0
    for (der, day), group in awarded.groupby(["der_id", "day"]):
        expected = baseline(meter, der, day, list(group["t"]), event_days[der] - {day}, method, TZ, HOLIDAYS)
        for t in group["t"]:
            local = t.tz_convert(TZ)
            slot = local.hour * 4 + local.minute // 15
            line = lines[(lines["der_id"] == der) & (pd.to_datetime(lines["interval_start"], utc=True) == t)]
            assert line["baseline_kwh"].iloc[0] == pytest.approx(expected[slot], abs=1e-6), (method, der, str(t))
            checked += 1
    assert checked == len(AWARDS)
