"""The batch types: :class:`BatchConfig` (``batch.toml``) and the validated :class:`Batch`.

A batch is built only by :mod:`market.io.read` (from a folder) or
:func:`market.io.read.batch_from_frames` (from memory), both through
:mod:`market.io.validate`, so a :class:`Batch` always satisfies the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from market.enums import TSO_ID
from market.io.schemas import BATCH_TABLES, TableSpec

DEFAULT_VOLL_EUR_MWH = 10_000.0
# seconds per tier an instruction passes, and per sequential clearing stage ("clearing_stage")
DEFAULT_HOP_LATENCY_S = {
    "tso": 4.0,
    "dso": 2.0,
    "idso": 1.0,
    "aggregator": 1.0,
    "coordinator": 1.0,
    "clearing_stage": 60.0,
}


@dataclass(frozen=True)
class BatchConfig:
    """The ``batch.toml`` of a batch: horizon ``[start, end)`` in UTC and interval length."""

    name: str
    start: pd.Timestamp
    end: pd.Timestamp
    interval_minutes: int = 15
    currency: str = "EUR"
    voll_eur_mwh: float = DEFAULT_VOLL_EUR_MWH
    hop_latency_s: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_HOP_LATENCY_S))
    # information paths (section 3a): seconds each tier adds when it relays state, and how
    # often it publishes (0: continuously); only a batch with forecasts or gates reads them
    relay_s: dict[str, float] = field(default_factory=dict)
    publish_every_s: dict[str, float] = field(default_factory=dict)
    # product -> gate closure (market.io.gate_closures); bids after it are refused
    gate_closures: dict[str, str] = field(default_factory=dict)

    @property
    def interval(self) -> pd.Timedelta:
        return pd.Timedelta(minutes=self.interval_minutes)

    @property
    def interval_hours(self) -> float:
        return self.interval_minutes / 60.0

    @property
    def intervals(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, self.end, freq=self.interval, inclusive="left")

    def slot_of(self, timestamps: pd.Series) -> np.ndarray:
        """0-based interval index of each (on-grid) UTC timestamp within the horizon."""
        return np.asarray((timestamps - self.start) // self.interval, dtype=int)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "interval_minutes": self.interval_minutes,
            "currency": self.currency,
            "voll_eur_mwh": self.voll_eur_mwh,
            "hop_latency_s": dict(self.hop_latency_s),
            # (only when given: a batch without them keeps the manifest it had before they existed)
            **(
                {"information": {"relay_s": self.relay_s, "publish_every_s": self.publish_every_s}}
                if self.relay_s or self.publish_every_s
                else {}
            ),
            **({"gate_closures": dict(self.gate_closures)} if self.gate_closures else {}),
        }


@dataclass(frozen=True)
class Batch:
    """A validated batch. Tables are sorted by their natural key; never mutate them."""

    config: BatchConfig
    bids: pd.DataFrame
    needs: pd.DataFrame
    node_areas: pd.DataFrame
    constraints: pd.DataFrame
    sensitivities: pd.DataFrame
    signals: pd.DataFrame
    aggregators: pd.DataFrame
    # what was known before delivery (section 3a): empty unless the batch has forecasts
    forecasts: pd.DataFrame = field(default_factory=lambda: _empty_forecasts())
    source: Path | None = None
    file_hashes: dict[str, str] = field(default_factory=dict)
    # a stretch of a streamed batch (market.clearing.stream) keeps the DSOs that buy anywhere
    # in the whole batch, so its fan-out steps run the same models as the whole run
    buying_dsos: tuple[str, ...] | None = None

    def table(self, name: str) -> pd.DataFrame:
        table: pd.DataFrame = getattr(self, name)
        return table

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a stretch sent to a worker process or a Dask worker) with its tables as
        Arrow tables: Arrow buffers instead of one pickled string per text cell (a 500k
        stretch: 0.65 s to pickle as pandas objects)."""
        state = dict(self.__dict__)
        for name in TABLE_NAMES:
            state[name] = _as_arrow(state[name])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        specs = {spec.name: spec for spec in BATCH_TABLES}
        for name in TABLE_NAMES:
            if isinstance(state[name], pa.Table):
                state[name] = arrow_to_pandas(state[name], unique_ids(specs[name]))
        for key, value in state.items():
            object.__setattr__(self, key, value)

    @property
    def dsos(self) -> list[str]:
        return sorted(self.node_areas["dso_id"].unique())

    @property
    def dso_buyers(self) -> list[str]:
        """The DSOs with a need in the batch (a fan-out step runs one model for each)."""
        if self.buying_dsos is not None:
            return list(self.buying_dsos)
        return sorted(self.needs.loc[self.needs["buyer_id"] != TSO_ID, "buyer_id"].unique())

    def replace(self, **tables: pd.DataFrame) -> Batch:
        """A copy with some tables replaced (used by sweeps); the original is untouched."""
        values = {name: getattr(self, name) for name in TABLE_NAMES}
        values.update(tables)
        return Batch(
            self.config, **values, source=self.source, file_hashes=self.file_hashes, buying_dsos=self.buying_dsos
        )

    def with_config(self, **changes: Any) -> Batch:
        cfg = BatchConfig(**{**self.config.__dict__, **changes})
        values = {name: getattr(self, name) for name in TABLE_NAMES}
        return Batch(cfg, **values, source=self.source, file_hashes=self.file_hashes, buying_dsos=self.buying_dsos)


TABLE_NAMES = tuple(t.name for t in BATCH_TABLES)


def _empty_forecasts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "quantity": pd.Series(dtype=object),
            "key": pd.Series(dtype=object),
            "interval_start": pd.Series(dtype="datetime64[ns, UTC]"),
            "issued_at": pd.Series(dtype="datetime64[ns, UTC]"),
            "value": pd.Series(dtype=float),
        }
    )


def unique_ids(spec: TableSpec) -> tuple[str, ...]:
    """The columns of a table that hold a distinct value per row: its id, when that is its key."""
    return (spec.id_column,) if spec.id_column and spec.key == (spec.id_column,) else ()


def arrow_to_pandas(table: pa.Table, unique: tuple[str, ...] = ()) -> pd.DataFrame:
    """The table in pandas, a block per column (no 2-D copy); repeated text shared as one
    object per distinct value, except in the ``unique`` columns, where pyarrow's
    de-duplication would only cost time (for 10^7 distinct ids, 6 s instead of 0.7 s)."""
    plain = [c for c in table.column_names if c in unique]
    rest = table.drop_columns(plain).to_pandas(split_blocks=True)  # an index pandas stored is restored
    if not plain:
        return rest
    ids = {name: table.column(name).to_pandas(deduplicate_objects=False).set_axis(rest.index) for name in plain}
    order = [c for c in table.column_names if c in ids or c in rest.columns]
    return pd.DataFrame({c: ids[c] if c in ids else rest[c] for c in order}, index=rest.index, copy=False)


def _as_arrow(df: pd.DataFrame) -> pa.Table | pd.DataFrame:
    """``df`` as an Arrow table that converts back to an equal frame (pandas metadata keeps
    dtypes and a non-default index), or ``df`` itself where Arrow cannot hold a column."""
    try:
        return pa.Table.from_pandas(df)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return df
