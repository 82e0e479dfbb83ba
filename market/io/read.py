"""Reading a batch folder (``batch.toml`` + one file per table) or meter data, validated."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from market.errors import BatchError, BatchValidationError, Finding, FindingCode
from market.io.batch import DEFAULT_HOP_LATENCY_S, DEFAULT_VOLL_EUR_MWH, Batch, BatchConfig, arrow_to_pandas, unique_ids
from market.io.coerce import TZ_SUFFIX, coerce_table
from market.io.gate_closures import gate_closure_settings
from market.io.schemas import BATCH_TABLES, PRICE_LIMIT_EUR_MWH, TableSpec
from market.io.strict import is_number, parse_toml, unknown_keys
from market.io.validate import validate_tables

MAX_HORIZON_DAYS = 3660  # ten years: a batch is a day, a season or a year of market sessions
BATCH_TOML_KEYS = (
    "name",
    "start",
    "end",
    "interval_minutes",
    "currency",
    "voll_eur_mwh",
    "hop_latency_s",
    "information",
    "gate_closures",
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_config(folder: Path) -> tuple[BatchConfig, str]:
    """A folder's ``batch.toml``, checked, and the SHA-256 of the bytes read."""
    path = folder / "batch.toml"
    if not path.is_file():
        raise BatchError(f"{folder}: no batch.toml (a batch is a folder with batch.toml)")
    data = path.read_bytes()
    try:
        raw = parse_toml(data.decode("utf-8"), str(path))
    except UnicodeDecodeError as exc:
        raise BatchError(f"{path}: not UTF-8 text: {exc}") from exc
    except ValueError as exc:
        raise BatchError(str(exc)) from exc
    findings: list[Finding] = [
        Finding("batch.toml", None, None, key, None, reason, FindingCode.UNKNOWN_KEY)
        for key, reason in unknown_keys(raw, BATCH_TOML_KEYS)
    ]
    if "name" in raw and not isinstance(raw["name"], str):
        findings.append(
            Finding("batch.toml", None, None, "name", repr(raw["name"]), "must be text", FindingCode.WRONG_TYPE)
        )

    def ts(key: str) -> pd.Timestamp:
        value = raw.get(key)
        if value is None:
            findings.append(Finding("batch.toml", None, None, key, None, "missing", FindingCode.MISSING_KEY))
            return pd.NaT
        if not isinstance(value, str | dt.datetime):
            findings.append(
                Finding("batch.toml", None, None, key, repr(value), "must be a timestamp", FindingCode.NOT_A_TIMESTAMP)
            )
            return pd.NaT
        text = value.isoformat() if isinstance(value, dt.datetime) else value
        if not TZ_SUFFIX.search(text):
            findings.append(
                Finding("batch.toml", None, None, key, text, "timestamp has no timezone", FindingCode.NAIVE_TIMESTAMP)
            )
            return pd.NaT
        try:
            return pd.Timestamp(text).tz_convert("UTC")
        except (ValueError, TypeError) as exc:
            findings.append(
                Finding("batch.toml", None, None, key, text, f"not a timestamp ({exc})", FindingCode.NOT_A_TIMESTAMP)
            )
            return pd.NaT

    start, end = ts("start"), ts("end")
    minutes = raw.get("interval_minutes", 15)
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0 or 1440 % minutes:
        findings.append(
            Finding(
                "batch.toml",
                None,
                None,
                "interval_minutes",
                str(minutes),
                "must be a positive whole number of minutes dividing a day",
                FindingCode.INVALID_VALUE,
            )
        )
        minutes = 15
    voll = raw.get("voll_eur_mwh", DEFAULT_VOLL_EUR_MWH)
    if not is_number(voll) or not 0 < voll <= PRICE_LIMIT_EUR_MWH:
        findings.append(
            Finding(
                "batch.toml",
                None,
                None,
                "voll_eur_mwh",
                repr(voll),
                f"must be a number > 0 and <= {PRICE_LIMIT_EUR_MWH:g}",
                FindingCode.INVALID_VALUE,
            )
        )
        voll = DEFAULT_VOLL_EUR_MWH
    if raw.get("currency", "EUR") != "EUR":
        findings.append(
            Finding(
                "batch.toml",
                None,
                None,
                "currency",
                str(raw.get("currency")),
                "only EUR is supported",
                FindingCode.INVALID_VALUE,
            )
        )
    if start is not pd.NaT and end is not pd.NaT:
        span_days = (end.to_pydatetime() - start.to_pydatetime()).total_seconds() / 86400
        if end <= start:
            findings.append(_end_finding(end, "must be after start"))
        elif span_days > MAX_HORIZON_DAYS:
            findings.append(
                _end_finding(end, f"horizon of {span_days:,.0f} days; a batch covers at most {MAX_HORIZON_DAYS} days")
            )
        elif (end - start) % pd.Timedelta(minutes=minutes):
            findings.append(_end_finding(end, "horizon is not a whole number of intervals"))
    hops = {
        **DEFAULT_HOP_LATENCY_S,
        **_seconds_table(raw.get("hop_latency_s", {}), "hop_latency_s", tuple(DEFAULT_HOP_LATENCY_S), 86_400, findings),
    }
    relay, publish = information_settings(raw.get("information", {}), findings)
    closures = gate_closure_settings(raw.get("gate_closures", {}), findings)
    if findings:
        raise BatchValidationError(findings)
    config = BatchConfig(
        name=str(raw.get("name", folder.name)),
        start=start,
        end=end,
        interval_minutes=minutes,
        voll_eur_mwh=float(voll),
        hop_latency_s=hops,
        relay_s=relay,
        publish_every_s=publish,
        gate_closures=closures,
    )
    return config, hashlib.sha256(data).hexdigest()


INFORMATION_TIERS = ("tso", "dso", "idso", "platform", "aggregator", "coordinator")


def information_settings(given: Any, findings: list[Finding]) -> tuple[dict[str, float], dict[str, float]]:
    """``[information]`` of batch.toml: ``relay_s.<tier>`` (seconds the tier adds when it
    relays state) and ``publish_every_s.<tier>`` (how often it publishes; 0 = continuously)."""
    out: tuple[dict[str, float], dict[str, float]] = ({}, {})
    if not isinstance(given, dict):
        findings.append(
            Finding("batch.toml", None, None, "information", None, "must be a table", FindingCode.WRONG_TYPE)
        )
        return out
    for key, reason in unknown_keys(given, ("relay_s", "publish_every_s")):
        findings.append(Finding("batch.toml", None, None, f"information.{key}", None, reason, FindingCode.UNKNOWN_KEY))
    for name, target in zip(("relay_s", "publish_every_s"), out, strict=True):
        target.update(
            _seconds_table(given.get(name, {}), f"information.{name}", INFORMATION_TIERS, 7 * 86_400, findings)
        )
    return out


def _seconds_table(
    table: Any, where: str, keys: tuple[str, ...], limit: float, findings: list[Finding]
) -> dict[str, float]:
    """A batch.toml table of seconds per key (``hop_latency_s``, ``information.relay_s``, ...):
    the valid values, and a finding for anything else (not a table, an unknown key, a value
    outside ``[0, limit]``)."""
    if not isinstance(table, dict):
        findings.append(Finding("batch.toml", None, None, where, None, "must be a table", FindingCode.WRONG_TYPE))
        return {}
    for key, reason in unknown_keys(table, keys):
        findings.append(Finding("batch.toml", None, None, f"{where}.{key}", None, reason, FindingCode.UNKNOWN_KEY))
    out = {}
    for key, value in table.items():
        if key not in keys:
            continue
        if is_number(value) and 0 <= value <= limit:
            out[key] = float(value)
        else:
            findings.append(
                Finding("batch.toml", None, None, f"{where}.{key}", repr(value),
                        f"must be a number of seconds in [0, {limit:g}]", FindingCode.INVALID_VALUE)
            )  # fmt: skip
    return out


def _end_finding(end: pd.Timestamp, reason: str) -> Finding:
    return Finding("batch.toml", None, None, "end", str(end), reason, FindingCode.INCONSISTENT)


def find_table_file(folder: Path, table: str) -> Path | None:
    candidates = [folder / f"{table}.parquet", folder / f"{table}.csv"]
    present = [p for p in candidates if p.is_file()]
    if len(present) > 1:
        raise BatchError(f"{folder}: both {table}.parquet and {table}.csv exist; keep one")
    return present[0] if present else None


def read_raw_table(
    path: Path,
    unique: tuple[str, ...] = (),
    data: bytes | None = None,
) -> tuple[pd.DataFrame, pa.Table | None]:
    """Read one table file without interpreting kinds (CSV cells stay strings); for Parquet,
    the Arrow table too (its text columns are checked as they are, not converted back).
    ``unique``: columns expected to hold a distinct value per row (a table's id), turned
    into Python strings without pyarrow's de-duplication, which for 10^7 distinct ids costs
    6 s instead of 0.7 s. ``data``: the file's bytes, already read (``path`` names them)."""
    source = path if data is None else io.BytesIO(data)
    try:
        if path.suffix == ".parquet":
            table = pq.read_table(source)
            return arrow_to_pandas(table, unique), table
        return pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8"), None
    except UnicodeDecodeError as exc:
        raise BatchError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except Exception as exc:  # pyarrow and pandas raise many kinds for a broken file
        kind = "Parquet" if path.suffix == ".parquet" else "CSV"
        raise BatchError(f"{path}: cannot be read as {kind} ({type(exc).__name__}: {exc})") from exc


def load_batch(folder: str | Path) -> Batch:
    """Read and validate a batch folder; raise listing every bad row, or return the Batch.
    Its ``file_hashes`` are the SHA-256 of the very bytes read and validated."""
    config, tables, findings, hashes, keys = _read_folder(Path(folder))
    return validate_tables(config, tables, findings, source=Path(folder), file_hashes=hashes, arrow_keys=keys)


def _read_folder(
    folder: Path,
) -> tuple[BatchConfig, dict[str, pd.DataFrame | None], list[Finding], dict[str, str], dict[str, pa.Table]]:
    """A batch folder's config, coerced tables, findings so far, file hashes and key columns."""
    if not folder.is_dir():
        raise BatchError(f"{folder}: not a folder")
    config, config_hash = read_config(folder)
    findings: list[Finding] = []
    tables: dict[str, pd.DataFrame | None] = {}
    hashes = {"batch.toml": config_hash}
    keys: dict[str, pa.Table] = {}
    for spec in BATCH_TABLES:
        path = find_table_file(folder, spec.name)
        if path is None:
            if spec.required_table:
                findings.append(
                    Finding(
                        spec.name,
                        None,
                        None,
                        None,
                        None,
                        f"missing table ({spec.name}.parquet or .csv)",
                        FindingCode.MISSING_TABLE,
                    )
                )
                tables[spec.name] = None
            else:
                tables[spec.name] = empty_table(spec)
            continue
        data = path.read_bytes()
        hashes[path.name] = hashlib.sha256(data).hexdigest()
        raw, arrow = read_raw_table(path, unique_ids(spec), data)
        del data
        df, bad = coerce_table(spec, raw, arrow)
        findings += bad
        tables[spec.name] = df
        if arrow is not None and df is not None:  # the key's text as read, for the key order
            keys[spec.name] = arrow.select([k for k in spec.key if k in arrow.column_names])
    return config, tables, findings, hashes, keys


def empty_table(spec: TableSpec) -> pd.DataFrame:
    dtypes = {"str": object, "float": float, "ts": "datetime64[ns, UTC]"}
    return pd.DataFrame({c.name: pd.Series(dtype=dtypes[c.kind]) for c in spec.columns})


def batch_from_frames(config: BatchConfig, **frames: pd.DataFrame) -> Batch:
    """Build and validate a Batch from in-memory frames (same rules as :func:`load_batch`)."""

    findings: list[Finding] = []
    tables: dict[str, pd.DataFrame | None] = {}
    for spec in BATCH_TABLES:
        raw = frames.get(spec.name)
        if raw is None:
            tables[spec.name] = None if spec.required_table else empty_table(spec)
            if spec.required_table:
                findings.append(Finding(spec.name, None, None, None, None, "missing table", FindingCode.MISSING_TABLE))
            continue
        df, bad = coerce_table(spec, raw)
        findings += bad
        tables[spec.name] = df
    return validate_tables(config, tables, findings)
