"""Settlement errors: all derive from :class:`market.errors.SettlementError`."""

from market.errors import SettlementError, StoreConflictError, StoreUnavailableError


class SettlementConfigError(SettlementError):
    """``settle.toml`` is malformed."""


class SettlementInputError(SettlementError):
    """The run folder or meter data cannot be settled (missing files, bad columns)."""


__all__ = [
    "SettlementError",
    "StoreConflictError",
    "StoreUnavailableError",
    "SettlementConfigError",
    "SettlementInputError",
]
