"""Gates: when a step decides, relative to delivery (section 3a of the contract).

``"D-1 HH:MM"``  the day before the delivery interval's day, at HH:MM (UTC; a day-ahead
                 gate such as NODES' or the day-ahead auction's 12:00)
``"H-n"``        n hours before the start of the delivery interval's hour (rolling: one
                 window per delivery hour; intraday)
``"T-n min"``    n minutes before the delivery interval (rolling per interval; near real
                 time), also written ``"T-15min"``

A step without a gate decides at delivery with the state of delivery (``T-0``): a batch
without forecasts and without gates clears exactly as before gates existed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from market.errors import DesignError

_DAY_AHEAD = re.compile(r"D-(\d{1,2}) ([01]\d|2[0-3]):([0-5]\d)")
_HOURS = re.compile(r"H-(\d{1,3})")
_MINUTES = re.compile(r"T-(\d{1,4}) ?min")


@dataclass(frozen=True)
class Gate:
    """A parsed gate: ``kind`` (``day``, ``hour`` or ``interval``) and its offset."""

    text: str
    kind: str
    days: int = 0
    minutes_of_day: int = 0
    minutes_before: int = 0

    def decision_times(self, starts: pd.DatetimeIndex) -> np.ndarray:
        """The decision time (UTC, datetime64[ns]) of each delivery interval start."""
        if self.kind == "day":
            day = starts.floor("D") - pd.Timedelta(days=self.days)
            return np.asarray((day + pd.Timedelta(minutes=self.minutes_of_day)).asi8, dtype="datetime64[ns]")
        if self.kind == "hour":
            return np.asarray(
                (starts.floor("h") - pd.Timedelta(minutes=self.minutes_before)).asi8, dtype="datetime64[ns]"
            )
        return np.asarray((starts - pd.Timedelta(minutes=self.minutes_before)).asi8, dtype="datetime64[ns]")


def parse_gate(text: str, where: str) -> Gate:
    """A :class:`Gate` from its text, or a :class:`DesignError` naming ``where``."""
    if not isinstance(text, str):
        raise DesignError(f"{where}: gate must be text such as 'D-1 12:00', 'H-1' or 'T-15min', not {text!r}")
    t = text.strip()
    if m := _DAY_AHEAD.fullmatch(t):
        days = int(m.group(1))
        if not 1 <= days <= 14:
            raise DesignError(f"{where}: gate {text!r}: D-1 to D-14")
        return Gate(t, "day", days=days, minutes_of_day=int(m.group(2)) * 60 + int(m.group(3)))
    if m := _HOURS.fullmatch(t):
        return Gate(t, "hour", minutes_before=60 * int(m.group(1)))
    if m := _MINUTES.fullmatch(t):
        return Gate(t, "interval", minutes_before=int(m.group(1)))
    raise DesignError(f"{where}: gate {text!r} is not 'D-n HH:MM', 'H-n' or 'T-n min' (e.g. 'D-1 12:00', 'T-15min')")
