"""Reading a batch folder (``batch.toml`` + one Parquet or CSV file per table).

:func:`load_batch` is the single entry point: it reads, coerces kinds, validates
(see :mod:`market.validate`) and returns a frozen :class:`Batch`, or raises
:class:`~market.errors.BatchValidationError` listing every bad row.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from market.errors import BatchError, BatchValidationError, Finding
from market.schemas import BATCH_TABLES, TableSpec

DEFAULT_VOLL_EUR_MWH = 10_000.0
DEFAULT_HOP_LATENCY_S = {"tso": 4.0, "dso": 2.0, "idso": 1.0, "aggregator": 1.0, "coordinator": 1.0}
_TZ_SUFFIX = re.compile(r"(Z|z|[+-]\d{2}(:?\d{2})?)$")


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

    @property
    def interval(self) -> pd.Timedelta:
        return pd.Timedelta(minutes=self.interval_minutes)

    @property
    def interval_hours(self) -> float:
        return self.interval_minutes / 60.0

    @property
    def intervals(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, self.end, freq=self.interval, inclusive="left")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "interval_minutes": self.interval_minutes,
            "currency": self.currency,
            "voll_eur_mwh": self.voll_eur_mwh,
            "hop_latency_s": dict(self.hop_latency_s),
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
    source: Path | None = None
    file_hashes: dict[str, str] = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame:
        return getattr(self, name)  # type: ignore[no-any-return]

    @property
    def dsos(self) -> list[str]:
        return sorted(self.node_areas["dso_id"].unique())

    def replace(self, **tables: pd.DataFrame) -> Batch:
        """A copy with some tables replaced (used by sweeps); the original is untouched."""
        values = {name: getattr(self, name) for name in _TABLE_NAMES}
        values.update(tables)
        return Batch(self.config, **values, source=self.source, file_hashes=self.file_hashes)

    def with_config(self, **changes: Any) -> Batch:
        cfg = BatchConfig(**{**self.config.__dict__, **changes})
        values = {name: getattr(self, name) for name in _TABLE_NAMES}
        return Batch(cfg, **values, source=self.source, file_hashes=self.file_hashes)


_TABLE_NAMES = tuple(t.name for t in BATCH_TABLES)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_config(folder: Path) -> BatchConfig:
    path = folder / "batch.toml"
    if not path.is_file():
        raise BatchError(f"{folder}: no batch.toml (a batch is a folder with batch.toml)")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise BatchError(f"{path}: not valid TOML: {exc}") from exc
    findings: list[Finding] = []

    def ts(key: str) -> pd.Timestamp:
        value = raw.get(key)
        if value is None:
            findings.append(Finding("batch.toml", None, None, key, None, "missing"))
            return pd.NaT
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        if not _TZ_SUFFIX.search(text):
            findings.append(Finding("batch.toml", None, None, key, text, "timestamp has no timezone"))
            return pd.NaT
        return pd.Timestamp(text).tz_convert("UTC")

    start, end = ts("start"), ts("end")
    minutes = raw.get("interval_minutes", 15)
    if not isinstance(minutes, int) or minutes <= 0 or 1440 % minutes:
        findings.append(
            Finding(
                "batch.toml",
                None,
                None,
                "interval_minutes",
                str(minutes),
                "must be a positive whole number of minutes dividing a day",
            )
        )
        minutes = 15
    voll = raw.get("voll_eur_mwh", DEFAULT_VOLL_EUR_MWH)
    if not isinstance(voll, int | float) or not np.isfinite(voll) or voll <= 0:
        findings.append(Finding("batch.toml", None, None, "voll_eur_mwh", str(voll), "must be > 0"))
        voll = DEFAULT_VOLL_EUR_MWH
    if raw.get("currency", "EUR") != "EUR":
        findings.append(
            Finding("batch.toml", None, None, "currency", str(raw.get("currency")), "only EUR is supported")
        )
    if start is not pd.NaT and end is not pd.NaT:
        if end <= start:
            findings.append(Finding("batch.toml", None, None, "end", str(end), "must be after start"))
        elif (end - start) % pd.Timedelta(minutes=minutes):
            findings.append(
                Finding("batch.toml", None, None, "end", str(end), "horizon is not a whole number of intervals")
            )
    hops = dict(DEFAULT_HOP_LATENCY_S)
    hops.update({str(k): float(v) for k, v in raw.get("hop_latency_s", {}).items()})
    if findings:
        raise BatchValidationError(findings)
    return BatchConfig(
        name=str(raw.get("name", folder.name)),
        start=start,
        end=end,
        interval_minutes=minutes,
        voll_eur_mwh=float(voll),
        hop_latency_s=hops,
    )


def find_table_file(folder: Path, table: str) -> Path | None:
    candidates = [folder / f"{table}.parquet", folder / f"{table}.csv"]
    present = [p for p in candidates if p.is_file()]
    if len(present) > 1:
        raise BatchError(f"{folder}: both {table}.parquet and {table}.csv exist; keep one")
    return present[0] if present else None


def read_raw_table(path: Path) -> pd.DataFrame:
    """Read one table file without interpreting kinds (CSV cells stay strings)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])


def coerce_table(spec: TableSpec, raw: pd.DataFrame) -> tuple[pd.DataFrame | None, list[Finding]]:
    """Give each column its kind; report cells that cannot be read as that kind.

    Returns ``None`` for the frame when a required column is missing (nothing else
    of that table can be checked meaningfully).
    """
    findings: list[Finding] = []
    missing = [c.name for c in spec.columns if c.required and c.name not in raw.columns]
    for name in missing:
        findings.append(Finding(spec.name, None, None, name, None, "missing required column"))
    if missing:
        return None, findings
    df = raw.reset_index(drop=True).copy()
    ids = _row_ids(spec, df)
    for col in spec.columns:
        if col.name not in df.columns:
            df[col.name] = col.default if col.default is not None else None
            if col.kind == "float":
                df[col.name] = df[col.name].astype(float)
            continue
        series = df[col.name]
        if col.kind == "str":
            df[col.name] = _as_str(series)
        elif col.kind == "float":
            df[col.name], bad = _as_float(series)
            nan_text = bad & np.asarray(series.astype(str).str.strip().str.lower().isin(["nan", "-nan", "+nan"]))
            findings += _cell_findings(spec, series, nan_text, ids, col.name, "must be a finite number, not NaN")
            findings += _cell_findings(spec, series, bad & ~nan_text, ids, col.name, "not a number")
        else:
            df[col.name], naive, unreadable = _as_utc(series)
            findings += _cell_findings(
                spec, series, naive, ids, col.name, "timestamp has no timezone (naive); give UTC offset"
            )
            findings += _cell_findings(spec, series, unreadable, ids, col.name, "not a timestamp")
    return df, findings


def _row_ids(spec: TableSpec, df: pd.DataFrame) -> pd.Series:
    if spec.id_column and spec.id_column in df.columns:
        return df[spec.id_column].astype(str)
    key = [k for k in spec.key if k in df.columns]
    if key:
        return df[key].astype(str).agg("/".join, axis=1)
    return pd.Series([None] * len(df), index=df.index, dtype=object)


def _cell_findings(
    spec: TableSpec, series: pd.Series, bad: np.ndarray, ids: pd.Series, column: str, reason: str
) -> list[Finding]:
    rows = np.flatnonzero(bad)
    return [
        Finding(spec.name, int(i), _id_label(spec, ids.iloc[i]), column, repr(series.iloc[i]), reason) for i in rows
    ]


def _id_label(spec: TableSpec, value: object) -> str | None:
    if value is None:
        return None
    label = spec.id_column or "/".join(spec.key)
    return f"{label}={value}"


def _is_blank(series: pd.Series) -> np.ndarray:
    s = series.astype(object)
    return np.asarray(s.isna() | s.map(lambda v: isinstance(v, str) and v.strip() == ""))


def _as_str(series: pd.Series) -> pd.Series:
    blank = _is_blank(series)
    out = series.astype(object).map(_str_value)
    out[blank] = None
    return out


def _str_value(v: object) -> object:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return v if isinstance(v, str) else str(v)


def _as_float(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    blank = _is_blank(series)
    if pd.api.types.is_bool_dtype(series):
        return pd.Series(np.nan, index=series.index), ~blank
    values = pd.to_numeric(series.where(~blank, None), errors="coerce").astype(float)
    bad = np.asarray(values.isna()) & ~blank
    return values, bad


def _as_utc(series: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    n = len(series)
    no = np.zeros(n, dtype=bool)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC"), no, no
    if pd.api.types.is_datetime64_dtype(series.dtype):
        naive = np.asarray(series.notna())
        return pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]"), naive, no
    blank = _is_blank(series)
    text = series.astype(object).where(~blank, None)
    has_tz = np.asarray(text.map(lambda v: isinstance(v, str) and bool(_TZ_SUFFIX.search(v.strip()))))
    looks_like_ts = np.asarray(text.map(_parses_naive))
    naive = ~blank & ~has_tz & looks_like_ts
    parsed = pd.to_datetime(text.where(has_tz, None), utc=True, format="ISO8601", errors="coerce")
    unreadable = ~blank & ~naive & np.asarray(parsed.isna())
    return parsed.astype("datetime64[ns, UTC]"), naive, unreadable


def _parses_naive(v: object) -> bool:
    if not isinstance(v, str):
        return False
    try:
        pd.Timestamp(v)
    except (ValueError, TypeError):
        return False
    return True


def load_batch(folder: str | Path) -> Batch:
    """Read and validate a batch folder; raise listing every bad row, or return the Batch."""
    from market.validate import validate_tables

    folder = Path(folder)
    if not folder.is_dir():
        raise BatchError(f"{folder}: not a folder")
    config = read_config(folder)
    findings: list[Finding] = []
    tables: dict[str, pd.DataFrame | None] = {}
    hashes = {"batch.toml": sha256_file(folder / "batch.toml")}
    for spec in BATCH_TABLES:
        path = find_table_file(folder, spec.name)
        if path is None:
            if spec.required_table:
                findings.append(
                    Finding(spec.name, None, None, None, None, f"missing table ({spec.name}.parquet or .csv)")
                )
                tables[spec.name] = None
            else:
                tables[spec.name] = empty_table(spec)
            continue
        hashes[path.name] = sha256_file(path)
        df, bad = coerce_table(spec, read_raw_table(path))
        findings += bad
        tables[spec.name] = df
    return validate_tables(config, tables, findings, source=folder, file_hashes=hashes)


def load_meter_table(path: str | Path) -> pd.DataFrame:
    """Read and validate meter data (Parquet or CSV) with the ``meter`` schema; raise
    :class:`BatchValidationError` listing every bad row. For files that fit in memory;
    settlement checks the same rules in DuckDB at any size."""
    from market.schemas import METER
    from market.validate import schema_findings

    path = Path(path)
    if not path.is_file():
        raise BatchError(f"{path}: meter file not found")
    df, findings = coerce_table(METER, read_raw_table(path))
    if df is not None:
        seen = {(f.row, f.column) for f in findings}
        findings += [
            f for f in schema_findings(METER, df) if (f.row, f.column) not in seen and "duplicate" not in f.reason
        ]
    if findings:
        raise BatchValidationError(findings)
    assert df is not None
    return df


def empty_table(spec: TableSpec) -> pd.DataFrame:
    dtypes = {"str": object, "float": float, "ts": "datetime64[ns, UTC]"}
    return pd.DataFrame({c.name: pd.Series(dtype=dtypes[c.kind]) for c in spec.columns})


def batch_from_frames(config: BatchConfig, **frames: pd.DataFrame) -> Batch:
    """Build and validate a Batch from in-memory frames (same rules as :func:`load_batch`)."""
    from market.validate import validate_tables

    findings: list[Finding] = []
    tables: dict[str, pd.DataFrame | None] = {}
    for spec in BATCH_TABLES:
        raw = frames.get(spec.name)
        if raw is None:
            tables[spec.name] = None if spec.required_table else empty_table(spec)
            if spec.required_table:
                findings.append(Finding(spec.name, None, None, None, None, "missing table"))
            continue
        df, bad = coerce_table(spec, raw)
        findings += bad
        tables[spec.name] = df
    return validate_tables(config, tables, findings)


def write_batch(batch: Batch, folder: str | Path, fmt: str = "parquet") -> Path:
    """Write a batch folder (``fmt`` = parquet or csv); timestamps as UTC ISO 8601."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = batch.config
    hops = "\n".join(f"{k} = {v}" for k, v in sorted(cfg.hop_latency_s.items()))
    (folder / "batch.toml").write_text(
        f'name = "{cfg.name}"\nstart = "{cfg.start.isoformat()}"\nend = "{cfg.end.isoformat()}"\n'
        f'interval_minutes = {cfg.interval_minutes}\ncurrency = "{cfg.currency}"\n'
        f"voll_eur_mwh = {cfg.voll_eur_mwh}\n\n[hop_latency_s]\n{hops}\n"
    )
    for spec in BATCH_TABLES:
        df = batch.table(spec.name)
        if fmt == "parquet":
            df.to_parquet(folder / f"{spec.name}.parquet", index=False)
        else:
            out = df.copy()
            for col in spec.columns:
                if col.kind == "ts":
                    out[col.name] = out[col.name].map(lambda t: "" if pd.isna(t) else t.isoformat())
            out.to_csv(folder / f"{spec.name}.csv", index=False)
    return folder
