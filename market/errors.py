"""The exceptions flexmarket raises.

Every error a user can cause or meet derives from :class:`FlexmarketError`::

    FlexmarketError
    ├── BatchError                 the batch folder cannot be read at all
    │   └── BatchValidationError   rows break the contract (lists every bad row)
    ├── DesignError                a design file is malformed or names unknown steps
    ├── NetworkError               a grid model cannot be read or imported
    ├── OutputError                an output would replace something flexmarket did not make
    ├── OutOfMemoryError           the job ran out of memory (said as such, exit 1)
    ├── MissingExtraError          a command needs a pip extra that is not installed
    ├── SolverError                the solver failed, is missing, or returned values
    │   │                          that break the model's own constraints
    │   ├── SolverNotInstalledError
    │   ├── WorkerLostError        a worker process of a streamed run died (memory, signal)
    │   └── SchedulerUnavailableError  a Dask scheduler did not answer in time
    └── SettlementError            settlement inputs or store state are inconsistent
        ├── SettlementConfigError  settle.toml is malformed
        ├── SettlementInputError   the run folder or the meter data cannot be settled
        ├── StoreConflictError     another settlement run holds the same period
        └── StoreUnavailableError  the store URL is unusable or the store cannot be reached

Exit codes of the CLI: a user's bad input (BatchError, DesignError, SettlementConfigError,
SettlementInputError, ...) exits 2; a job that could not finish with good inputs
(SolverError, StoreConflictError, StoreUnavailableError) exits 1.

Validation problems are collected as :class:`Finding` objects and raised together,
never one at a time, so a user fixes a whole file in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FindingCode(StrEnum):
    """What kind of problem a :class:`Finding` is (machine-readable; match on this, never
    on the message text)."""

    MISSING_TABLE = "missing_table"
    EMPTY_TABLE = "empty_table"
    MISSING_COLUMN = "missing_column"
    MISSING_KEY = "missing_key"  # a required key of a TOML file
    UNKNOWN_KEY = "unknown_key"  # a key a TOML file may not have (a typo, most often)
    NOT_A_NUMBER = "not_a_number"
    NOT_FINITE = "not_finite"  # NaN or empty where a finite number is required
    NOT_A_TIMESTAMP = "not_a_timestamp"
    NAIVE_TIMESTAMP = "naive_timestamp"
    WRONG_TYPE = "wrong_type"
    EMPTY_VALUE = "empty_value"
    INVALID_VALUE = "invalid_value"  # a value check of the column failed (range, choices)
    DUPLICATE_KEY = "duplicate_key"
    OFF_GRID = "off_grid"
    OUTSIDE_HORIZON = "outside_horizon"
    UNKNOWN_REFERENCE = "unknown_reference"  # a foreign key not found
    INCONSISTENT = "inconsistent"  # a rule across columns, rows or tables
    GATE_CLOSED = "gate_closed"  # a bid submitted after its product's gate closure
    NOMINATION_LATE = "nomination_late"  # a nominated baseline submitted after its deadline


@dataclass(frozen=True, order=True)
class Finding:
    """One bad row (or whole-table problem) found while validating a batch.

    ``row`` is the 0-based position of the row in the table as read
    (``None`` for whole-table problems); ``row_id`` is its natural key
    (e.g. the ``bid_id``) where the table has one.
    """

    table: str
    row: int | None
    row_id: str | None
    column: str | None
    value: str | None
    reason: str
    code: FindingCode

    def __str__(self) -> str:
        where = f"{self.table}"
        if self.row is not None:
            where += f" row {self.row}"
        if self.row_id is not None:
            where += f" ({self.row_id})"
        if self.column is not None:
            where += f" column {self.column}"
        if self.value is not None:
            where += f" = {self.value}"
        return f"{where}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "row": self.row,
            "row_id": self.row_id,
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
            "code": self.code.value,
        }


class FlexmarketError(Exception):
    """Base class of every error flexmarket raises on purpose."""


class BatchError(FlexmarketError):
    """The batch folder cannot be read (missing folder, missing batch.toml, bad TOML)."""


class BatchValidationError(BatchError):
    """One or more rows of the batch break the data contract.

    ``findings`` holds every bad row; the message lists them all.
    """

    def __init__(self, findings: Iterable[Finding], max_listed: int = 200) -> None:
        self.findings: Sequence[Finding] = sorted(set(findings), key=_finding_key)
        lines = [str(f) for f in self.findings[:max_listed]]
        more = len(self.findings) - len(lines)
        if more > 0:
            lines.append(f"... and {more} more")
        n = len(self.findings)
        header = f"batch is invalid: {n} problem{'s' if n != 1 else ''}"
        super().__init__(header + "\n  " + "\n  ".join(lines))


def _finding_key(f: Finding) -> tuple[str, int, str, str]:
    return (f.table, -1 if f.row is None else f.row, f.column or "", f.reason)


class DesignError(FlexmarketError):
    """A design definition is malformed."""


class NetworkError(FlexmarketError):
    """A grid model (pandapower, SimBench, PyPSA) cannot be read or imported."""


class MissingExtraError(FlexmarketError):
    """A command needs an optional part of flexmarket (a pip extra) that is not installed."""


class OutOfMemoryError(FlexmarketError):
    """The job ran out of memory (the inputs may be fine: give it more, or less at once)."""


class OutputError(FlexmarketError):
    """An output folder would replace a folder the user made, the current folder or a
    parent of it (nothing is written)."""


class SolverError(FlexmarketError):
    """The solver failed or returned a solution that breaks the model."""


class SolverNotInstalledError(SolverError):
    """The named solver is not available in this environment."""


class WorkerLostError(SolverError):
    """A worker process of a streamed run died before it finished (killed for memory, or
    by a signal); nothing of the run is written."""


class SchedulerUnavailableError(SolverError):
    """The Dask scheduler given with ``--scheduler`` did not answer within the timeout."""


class SettlementError(FlexmarketError):
    """Settlement inputs are inconsistent or the store refused the run."""


class SettlementConfigError(SettlementError):
    """``settle.toml`` is malformed."""


class SettlementInputError(SettlementError):
    """The run folder or meter data cannot be settled (missing files, bad columns)."""


class StoreConflictError(SettlementError):
    """Another settlement run for the same period holds the lock."""


class StoreUnavailableError(SettlementError):
    """The store's URL names no usable database driver, or the database cannot be reached
    or written (nothing of the run was stored)."""
