"""The settlement desk's calendar: which settlement runs are due on a day.

``settle.toml`` may hold a ``[calendar]`` table::

    [calendar]
    initial_after_business_days = 5              # initial statements at T+5
    recalculations_after_business_days = [20, 60] # scheduled recalculations at T+20, T+60

``T`` is a market session's last delivery day (local, the settlement time zone). Business
days are Monday to Friday except the configured ``holidays``. On a day ``D`` a session's
initial run is due when ``D`` is at or past its date and no initial run is recorded; its
j-th recalculation when ``D`` is at or past the j-th date and fewer than j recalculations
are recorded, so a cron job that missed a day catches up the next. Corrections are never
scheduled: the desk runs them (``settle --type correction --reason ...``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from market.errors import SettlementConfigError

CALENDAR_KEYS = ("initial_after_business_days", "recalculations_after_business_days")


@dataclass(frozen=True)
class Calendar:
    """Business-day offsets from a session's last delivery day."""

    initial_after: int = 5
    recalculations_after: tuple[int, ...] = (20,)

    def as_dict(self) -> dict[str, Any]:
        return {
            "initial_after_business_days": self.initial_after,
            "recalculations_after_business_days": list(self.recalculations_after),
        }


def parse_calendar(raw: Any, where: str) -> Calendar:
    """The ``[calendar]`` table of ``settle.toml`` (every value checked, unknown keys refused)."""
    if not isinstance(raw, dict):
        raise SettlementConfigError(f"{where}: calendar must be a table ([calendar])")
    unknown = sorted(set(raw) - set(CALENDAR_KEYS))
    if unknown:
        raise SettlementConfigError(f"{where}: calendar.{unknown[0]}: unknown key; known: {', '.join(CALENDAR_KEYS)}")
    initial = raw.get("initial_after_business_days", Calendar.initial_after)
    recalcs = raw.get("recalculations_after_business_days", list(Calendar.recalculations_after))
    if not _whole(initial) or not 0 <= initial <= 400:
        raise SettlementConfigError(f"{where}: calendar.initial_after_business_days must be 0-400, not {initial!r}")
    if not isinstance(recalcs, list) or not all(_whole(r) and initial < r <= 1000 for r in recalcs):
        raise SettlementConfigError(
            f"{where}: calendar.recalculations_after_business_days must list whole numbers after the initial's "
            f"{initial} (at most 1000)"
        )
    if sorted(set(recalcs)) != recalcs:
        raise SettlementConfigError(f"{where}: calendar.recalculations_after_business_days must be increasing")
    return Calendar(int(initial), tuple(int(r) for r in recalcs))


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def business_day(start: dt.date, offset: int, holidays: tuple[dt.date, ...]) -> dt.date:
    """The date ``offset`` business days (Mon-Fri, not a holiday) after ``start``; from a
    weekend or holiday, counting starts at the business day before it (T+1 of a Saturday is
    the Monday), never earlier than ``start`` itself."""
    day = np.busday_offset(np.datetime64(start), offset, roll="backward", holidays=list(holidays))
    return max(start, dt.date.fromisoformat(str(day)))


@dataclass(frozen=True)
class Due:
    """One settlement run the calendar asks for."""

    run_type: str  # initial | recalculation
    number: int  # 0 for the initial, j for the j-th recalculation
    due_on: dt.date
    reason: str


def due_runs(
    calendar: Calendar,
    last_delivery_day: dt.date,
    today: dt.date,
    recorded: dict[str, int],
    holidays: tuple[dt.date, ...] = (),
) -> list[Due]:
    """The runs due on ``today`` for a session whose last delivery day is ``last_delivery_day``,
    given the runs ``recorded`` per type: at most one (the earliest outstanding)."""
    initial_on = business_day(last_delivery_day, calendar.initial_after, holidays)
    if not recorded.get("initial"):
        if today >= initial_on:
            return [Due("initial", 0, initial_on, f"calendar: initial statements at T+{calendar.initial_after}")]
        return []
    done = recorded.get("recalculation", 0)
    for j, offset in enumerate(calendar.recalculations_after, start=1):
        on = business_day(last_delivery_day, offset, holidays)
        if j > done and today >= on:
            return [Due("recalculation", j, on, f"calendar: recalculation {j} at T+{offset}")]
    return []
