"""The baseline methods as data: each one's rules as parameters, its source and its rules in
words (the SQL that computes them is :mod:`settlement.baselines`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BaselineKind(StrEnum):
    """How a method forms its baseline."""

    DAY_MATCHING = "day-matching"  # "X of Y" earlier like days
    METER_BEFORE = "meter-before"  # last reading before the activation, held flat
    NOMINATED = "nominated"  # the aggregator's nominated baseline
    CONTROL_GROUP = "control-group"  # day matching plus the change of non-dispatched meters


class DayKeep(StrEnum):
    """Which of the pool days a day-matching method keeps."""

    ALL = "all"
    HIGH = "high"  # the n highest by event-window energy
    MID = "mid"  # without the highest and the lowest


class Adjustment(StrEnum):
    """Same-day adjustment from the target day's readings before the event."""

    MULTIPLICATIVE = "mult"
    ADDITIVE = "add"


@dataclass(frozen=True)
class Method:
    """One baseline method: its rules as parameters, its source and its rules in words."""

    name: str
    source: str
    rules: str
    kind: BaselineKind = BaselineKind.DAY_MATCHING
    weekday_pool: int = 10
    weekday_keep: DayKeep = DayKeep.ALL
    weekday_keep_n: int = 10
    weekend_pool: int = 4
    weekend_keep: DayKeep = DayKeep.ALL
    weekend_keep_n: int = 4
    weekend_same_weekday: bool = False  # weekend events: Saturdays for a Saturday, Sundays otherwise
    lookback_days: int = 45
    low_filter: float = 0.0  # drop pool days under this share of the pool mean
    adjustment: Adjustment | None = None
    cap: tuple[float, float] | None = None
    # [first award - a, first award - b): the readings the same-day adjustment compares
    adjustment_window: tuple[str, str] = ("4 HOUR", "1 HOUR")
    # relative error of recovered delivered energy where the method's assumptions hold
    # (like days look alike); tested on a real profile in tests/test_settlement.py
    recovery_tolerance: float = 0.05

    def pool_size_sql(self, day_type: str = "day_type") -> str:
        """The pool size (days wanted) for the day type held in column ``day_type``."""
        return f"CASE WHEN {day_type} = 'weekday' THEN {self.weekday_pool} ELSE {self.weekend_pool} END"


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "caiso-10-in-10",
            "CAISO Business Practice Manual for Demand Response (Load Impact Protocols), "
            "'10-in-10 with day-of adjustment'; weekend/holiday 4-in-4",
            "Weekdays: mean of the 10 most recent eligible weekdays within 45 days. Weekends and "
            "holidays: 4 most recent eligible weekend days. Multiplicative same-day adjustment "
            "actual/baseline over the 3 hours ending 1 hour before the first award (into the "
            "previous day when the award starts before 04:00), capped to [0.8, 1.2]; where the "
            "window's baseline energy is not positive (net export) the factor is 1, with a finding.",
            adjustment=Adjustment.MULTIPLICATIVE,
            cap=(0.8, 1.2),
        ),
        Method(
            "nyiso-high-5-of-10",
            "NYISO Emergency Demand Response Program Manual, Customer Baseline Load (CBL)",
            "Of the 10 most recent eligible weekdays, drop days whose event-window energy is "
            "under 25 % of the ten-day mean, then keep the 5 highest by event-window energy. "
            "Weekends: the 2 highest of the 3 most recent days of the same weekday (Saturdays for "
            "a Saturday event, Sundays for a Sunday or a holiday). Net exporters (pool mean window "
            "energy <= 0): the low-usage filter is not applied, and a finding says so.",
            weekday_keep=DayKeep.HIGH,
            weekday_keep_n=5,
            weekend_pool=3,
            weekend_keep=DayKeep.HIGH,
            weekend_keep_n=2,
            weekend_same_weekday=True,
            low_filter=0.25,
        ),
        Method(
            "pjm-high-4-of-5",
            "PJM Manual 11 (Energy & Ancillary Services Market Operations), section 10, "
            "Customer Baseline Load with symmetric additive adjustment",
            "Of the 5 most recent eligible weekdays keep the 4 highest by event-window energy "
            "(weekends: 2 highest of the 3 most recent days of the same weekday). Symmetric "
            "additive adjustment: mean(actual - baseline) over the 3 hours starting 4 hours "
            "before the first award (into the previous day when the award starts before 04:00).",
            weekday_pool=5,
            weekday_keep=DayKeep.HIGH,
            weekday_keep_n=4,
            weekend_pool=3,
            weekend_keep=DayKeep.HIGH,
            weekend_keep_n=2,
            weekend_same_weekday=True,
            adjustment=Adjustment.ADDITIVE,
        ),
        Method(
            "mid-8-of-10",
            "ERCOT Emergency Response Service baseline methodologies ('middle 8 of 10')",
            "Of the 10 most recent like days drop the highest and the lowest by event-window "
            "energy and average the middle 8 (weekends: the 10 most recent weekend days, middle 8).",
            weekday_keep=DayKeep.MID,
            weekday_keep_n=8,
            weekend_pool=10,
            weekend_keep=DayKeep.MID,
            weekend_keep_n=8,
        ),
        Method(
            "nodes-5-of-5",
            "NODES marketplace, baseline methodology for ShortFlex: the average of the same interval "
            "on the 5 preceding working days",
            "Weekdays: mean, per interval, of the 5 most recent eligible weekdays (no adjustment). "
            "Weekends and holidays (the source names working days only; flexmarket's choice): the 5 "
            "most recent eligible weekend days.",
            weekday_pool=5,
            weekday_keep_n=5,
            weekend_pool=5,
            weekend_keep_n=5,
        ),
        Method(
            "eso-dfs",
            "National Grid ESO, Demand Flexibility Service baseline methodology: the 10 most recent "
            "working days, same settlement period, with an in-day adjustment",
            "Weekdays: mean, per interval, of the 10 most recent eligible weekdays; weekends and holidays "
            "(flexmarket's choice where the source is silent): the 4 most recent eligible weekend days. "
            "Additive in-day adjustment: mean(actual - baseline) over the 3 hours before the first award "
            "(into the previous day when the award starts before 03:00).",
            adjustment=Adjustment.ADDITIVE,
            adjustment_window=("3 HOUR", "0 HOUR"),
        ),
        Method(
            "control-group",
            "Difference in differences with a comparison group of non-dispatched meters (as in the "
            "evaluations of CAISO, NYISO and UK DFS load-impact studies; e.g. CAISO Load Impact Protocols, "
            "Protocol 6: control groups)",
            "The DER's own day-matching baseline (mean, per interval, of the 10 most recent eligible "
            "weekdays, or the 4 most recent weekend days) plus the change of the control group: the mean "
            "reading of every meter with no award in the window on the event day, minus its mean over "
            "the DER's own baseline days, per interval. Without a control meter the change is left out, "
            "with a finding.",
            kind=BaselineKind.CONTROL_GROUP,
        ),
        Method(
            "meter-before-meter-after",
            "ENTSO-E / ACER balancing practice for fast reserves ('meter before, meter after')",
            "The last metered interval before the DER's first activation of the day, held flat.",
            kind=BaselineKind.METER_BEFORE,
            weekday_pool=0,
            weekend_pool=0,
        ),
        Method(
            "nominated",
            "USEF Flexibility Value Chain (settle phase): baseline nominated by the aggregator",
            "The baseline the aggregator nominated with the bid (nominated_baseline_mw).",
            kind=BaselineKind.NOMINATED,
            weekday_pool=0,
            weekend_pool=0,
        ),
    )
}
