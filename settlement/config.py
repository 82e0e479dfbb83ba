"""``settle.toml``: baseline method per buyer/service, allocation priority, penalties, calendar.

All keys are optional::

    baseline = "caiso-10-in-10"          # one method for everything, or a table:
    # [baseline]
    # tso_balancing = "pjm-high-4-of-5"
    # dso_congestion = "caiso-10-in-10"
    # "dso-rural" = "mid-8-of-10"         # a buyer's own choice wins over its service's
    priority = ["dso_congestion", "tso_balancing"]
    penalty_eur_mwh = 11.0               # flat rate on shortfall energy, or:
    # penalty_factor = 1.5               # times the award's price
    holidays = ["2016-10-03"]
    timezone = "Europe/Berlin"           # calendar days for day matching (default UTC)
    level = "portfolio"                  # baseline each registered resource (default "der")

``level``: ``"der"`` baselines and settles each DER's meter; ``"portfolio"`` the summed
meter data of each registered resource, as CAISO PDR, NYISO and USEF programmes do: by
default an aggregator's DER in one DSO's network (``<aggregator>/<dso>``), or the
``resource_id`` column of the meter data where it has one.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from market.enums import Service
from market.errors import SettlementConfigError
from market.io.schemas import PRICE_LIMIT_EUR_MWH, SERVICES
from market.io.strict import is_number, parse_toml, unknown_keys
from settlement.calendar import Calendar, parse_calendar

KEYS = ("timezone", "baseline", "priority", "penalty_eur_mwh", "penalty_factor", "holidays", "level", "calendar")
LEVELS = ("der", "portfolio")
DEFAULT_METHOD = "caiso-10-in-10"
# DSO reliability first, then TSO balancing (CPUC D.18-01-003 multi-use rules)
DEFAULT_PRIORITY: tuple[str, ...] = (Service.DSO_CONGESTION.value, Service.TSO_BALANCING.value)


@dataclass(frozen=True)
class SettleConfig:
    baseline: str = DEFAULT_METHOD
    baseline_by: dict[str, str] = field(default_factory=dict)  # service or buyer -> method
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    penalty_eur_mwh: float | None = None
    penalty_factor: float | None = 1.0
    holidays: tuple[dt.date, ...] = ()
    timezone: str = "UTC"
    level: str = "der"
    # when settlement runs are due (settle-due); scheduling only: not part of a run's inputs hash
    calendar: Calendar = field(default_factory=Calendar)

    def method_for(self, buyer_id: str, service: str) -> str:
        return self.baseline_by.get(buyer_id, self.baseline_by.get(service, self.baseline))

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "baseline_by": dict(sorted(self.baseline_by.items())),
            "priority": list(self.priority),
            "penalty_eur_mwh": self.penalty_eur_mwh,
            "penalty_factor": self.penalty_factor,
            "holidays": [d.isoformat() for d in self.holidays],
            "timezone": self.timezone,
            **({"level": self.level} if self.level != "der" else {}),  # (hashes of der-level runs unchanged)
        }


def load_config(path: str | Path | None) -> SettleConfig:
    """``settle.toml`` at ``path``; without one, the defaults, announced (never silent)."""
    if path is None:
        cfg = SettleConfig()
        logging.getLogger("flexmarket").warning(
            "no settle.toml given: using timezone %s, no holidays, baseline %s for every buyer and service, "
            "priority %s, penalty factor %s, level %s (docs/contract.md, settle.toml; give --config to choose)",
            cfg.timezone, cfg.baseline, " then ".join(cfg.priority), cfg.penalty_factor, cfg.level,
        )  # fmt: skip
        return cfg
    path = Path(path)
    try:
        raw = parse_toml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise SettlementConfigError(f"{path}: {exc}") from exc
    except ValueError as exc:
        raise SettlementConfigError(str(exc)) from exc
    return parse_config(raw, str(path))


def parse_config(raw: dict[str, Any], where: str = "settle.toml") -> SettleConfig:
    from settlement.baselines import METHODS

    for key, reason in unknown_keys(raw, KEYS):
        raise SettlementConfigError(f"{where}: {key}: {reason}")
    base = raw.get("baseline", DEFAULT_METHOD)
    by: dict[str, str] = {}
    if isinstance(base, dict):
        by = {str(k): v for k, v in base.items()}
        base = by.pop("default", DEFAULT_METHOD)
    for key, method in [("baseline", base), *by.items()]:
        if method not in METHODS:
            raise SettlementConfigError(f"{where}: baseline {key} = {method!r} is not one of {', '.join(METHODS)}")
    priority = raw.get("priority", DEFAULT_PRIORITY)
    if not isinstance(priority, list | tuple) or sorted(map(str, priority)) != sorted(SERVICES):
        raise SettlementConfigError(f"{where}: priority must order exactly {SERVICES}")
    pen, fac = raw.get("penalty_eur_mwh"), raw.get("penalty_factor")
    if pen is not None and fac is not None:
        raise SettlementConfigError(f"{where}: give penalty_eur_mwh or penalty_factor, not both")
    for name, v, limit in (("penalty_eur_mwh", pen, PRICE_LIMIT_EUR_MWH), ("penalty_factor", fac, 100.0)):
        if v is not None and (not is_number(v) or not 0 <= v <= limit):
            raise SettlementConfigError(f"{where}: {name} must be a finite number in [0, {limit:g}], not {v!r}")
    holidays_raw = raw.get("holidays", [])
    if not isinstance(holidays_raw, list):
        raise SettlementConfigError(f"{where}: holidays must be a list of ISO dates")
    try:
        holidays = tuple(sorted(d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)) for d in holidays_raw))
    except ValueError as exc:
        raise SettlementConfigError(f"{where}: holidays must be ISO dates: {exc}") from exc
    if not isinstance(raw.get("timezone", "UTC"), str):
        raise SettlementConfigError(f"{where}: timezone must be an IANA name such as Europe/Berlin")
    tz = str(raw.get("timezone", "UTC"))
    level = raw.get("level", "der")
    if level not in LEVELS:
        raise SettlementConfigError(f"{where}: level must be one of {', '.join(LEVELS)}, not {level!r}")
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(tz)
    except Exception as exc:
        raise SettlementConfigError(f"{where}: unknown timezone {tz!r}") from exc
    return SettleConfig(
        baseline=str(base),
        baseline_by=by,
        priority=tuple(str(p) for p in priority),
        penalty_eur_mwh=None if pen is None else float(pen),
        penalty_factor=(None if pen is not None else float(fac if fac is not None else 1.0)),
        holidays=holidays,
        timezone=tz,
        level=str(level),
        calendar=parse_calendar(raw["calendar"], where) if "calendar" in raw else Calendar(),
    )
