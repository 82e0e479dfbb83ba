"""An independent implementation of the baseline rules of docs/contract.md ("Baselines"),
in plain pandas, day by day, written from the contract's text and not from the engine's
SQL: the test checks the engine's baseline of every line against it."""

from __future__ import annotations

import datetime as dt

import pandas as pd

# method -> (weekday pool, weekday keep, weekend pool, weekend keep, same weekday, low filter, adjustment)
RULES = {
    "caiso-10-in-10": (10, ("all", 10), 4, ("all", 4), False, 0.0, "mult"),
    "nyiso-high-5-of-10": (10, ("high", 5), 3, ("high", 2), True, 0.25, None),
    "pjm-high-4-of-5": (5, ("high", 4), 3, ("high", 2), True, 0.0, "add"),
    "mid-8-of-10": (10, ("mid", 8), 10, ("mid", 8), False, 0.0, None),
}
LOOKBACK_DAYS = 45


def _local(meter: pd.DataFrame, tz: str, minutes: int) -> pd.DataFrame:
    """Local calendar day and wall-clock slot (the repeated hour's readings share a slot)."""
    local = meter["interval_start"].dt.tz_convert(tz)
    return meter.assign(day=local.dt.date, slot=((local.dt.hour * 60 + local.dt.minute) // minutes).astype(int))


def _day_type(d: dt.date, holidays: set[dt.date]) -> str:
    return "weekend" if d.isoweekday() >= 6 or d in holidays else "weekday"


def _slot_values(m: pd.DataFrame) -> pd.DataFrame:
    """One value per day and slot: the repeated hour of the autumn clock change averaged."""
    return m.groupby(["day", "slot"], as_index=False)["consumption_kwh"].mean()


def baseline(
    meter: pd.DataFrame,
    der: str,
    event_day: dt.date,
    awarded: list[pd.Timestamp],
    event_days: set[dt.date],
    method: str,
    tz: str,
    holidays: set[dt.date],
    minutes: int = 15,
) -> dict[int, float]:
    """Baseline kWh per local slot of ``der`` on ``event_day`` (awards at ``awarded``, UTC)."""
    m = _local(meter[meter["der_id"] == der], tz, minutes)
    first = min(awarded)
    if method == "meter-before-meter-after":
        before = m.loc[m["interval_start"] == first - pd.Timedelta(minutes=minutes), "consumption_kwh"].iloc[0]
        return dict.fromkeys(range(0, 1440 // minutes + 4), float(before))
    wd_pool, wd_keep, we_pool, we_keep, same_weekday, low, adjust = RULES[method]
    target_type = _day_type(event_day, holidays)
    slots_of_day = m.groupby("day")["interval_start"].nunique()
    expected = {
        d: int(
            (pd.Timestamp(d + dt.timedelta(days=1)).tz_localize(tz) - pd.Timestamp(d).tz_localize(tz)).total_seconds()
            // 60
            // minutes
        )
        for d in slots_of_day.index
    }
    candidates = []
    for d in sorted(slots_of_day.index, reverse=True):
        if not (event_day - dt.timedelta(days=LOOKBACK_DAYS) <= d < event_day):
            continue
        if d in holidays or d in event_days or _day_type(d, holidays) != target_type:
            continue
        if slots_of_day[d] != expected[d]:
            continue
        if same_weekday and target_type == "weekend":
            wanted = 6 if event_day.isoweekday() == 6 else 7
            if d.isoweekday() != wanted:
                continue
        candidates.append(d)
    pool_size, (keep, n) = (wd_pool, wd_keep) if target_type == "weekday" else (we_pool, we_keep)
    pool = candidates[:pool_size]
    values = _slot_values(m[m["day"].isin(pool)])
    local_awarded = [
        _local(pd.DataFrame({"interval_start": [t], "der_id": der}), tz, minutes)["slot"].iloc[0] for t in awarded
    ]
    lo, hi = min(local_awarded), max(local_awarded)
    window = values[(values["slot"] >= lo) & (values["slot"] <= hi)].groupby("day")["consumption_kwh"].sum()
    energy = pd.Series({d: round(float(window.get(d, 0.0)), 6) for d in pool})
    if low > 0 and len(energy):
        mean = round(float(energy.mean()), 6)
        if mean > 0:
            energy = energy[energy >= low * mean]
    ranked = sorted(energy.index, key=lambda d: (-energy[d], -d.toordinal()))
    if keep == "high":
        kept = ranked[:n]
    elif keep == "mid":
        low_ranked = sorted(energy.index, key=lambda d: (energy[d], -d.toordinal()))
        kept = [d for d in ranked if d != ranked[0] and d != low_ranked[0]]
    else:
        kept = list(energy.index)
    base = values[values["day"].isin(kept)].groupby("slot")["consumption_kwh"].mean().round(6).to_dict()
    if adjust is None:
        return base
    win = m[
        (m["interval_start"] >= first - pd.Timedelta(hours=4)) & (m["interval_start"] < first - pd.Timedelta(hours=1))
    ]
    act = round(float(win["consumption_kwh"].sum()), 6)
    base_sum = round(float(sum(base[s] for s in win["slot"])), 6)
    if adjust == "mult":
        factor = min(max(act / base_sum, 0.8), 1.2) if base_sum > 0 else 1.0
        return {s: v * factor for s, v in base.items()}
    diff = round(float(sum(k - base[s] for k, s in zip(win["consumption_kwh"], win["slot"], strict=True))), 6)
    add = diff / len(win) if len(win) else 0.0
    return {s: v + add for s, v in base.items()}
