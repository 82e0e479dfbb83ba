"""Checks across cells, rows and tables; all bad rows are gathered, then raised at once.

Order: (1) kinds (done while reading, :mod:`market.io.coerce`), (2) each table's pandera
schema, lazily, (3) time grid and horizon, (4) foreign keys, (5) domain rules
(min <= max, a block within one DSO, needs addressed to the right buyer, ...).
Nothing is clamped, dropped or repaired: a batch is either valid as given or refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from market.errors import BatchValidationError, Finding, FindingCode
from market.io.batch import Batch, BatchConfig
from market.io.coerce import COMPLETE, EMPTY
from market.io.domain import domain_findings
from market.io.findings import RowIds, plain, row_findings
from market.io.gate_closures import gate_findings
from market.io.keys import KeyOrder, key_order
from market.io.schemas import BATCH_TABLES, SERVICES, TABLES, TableSpec, pandera_schema
from market.io.strict import per_unique

Tables = dict[str, pd.DataFrame | None]


def validate_tables(
    config: BatchConfig,
    tables: Tables,
    findings: list[Finding],
    *,
    source: Path | None = None,
    file_hashes: dict[str, str] | None = None,
    arrow_keys: dict[str, pa.Table] | None = None,
) -> Batch:
    """Run every check; raise :class:`BatchValidationError` or return the :class:`Batch`.
    ``arrow_keys``: per table, its key columns as read from Parquet (the key order then
    sorts them as they are, rather than converting the pandas column back to Arrow)."""
    batch, check = validate_tables_later(
        config, tables, findings, source=source, file_hashes=file_hashes, arrow_keys=arrow_keys
    )
    check()
    return batch


def validate_tables_later(
    config: BatchConfig,
    tables: Tables,
    findings: list[Finding],
    *,
    source: Path | None = None,
    file_hashes: dict[str, str] | None = None,
    arrow_keys: dict[str, pa.Table] | None = None,
) -> tuple[Batch, Callable[[], None]]:
    """:func:`validate_tables` with its checks left for later: the Batch a valid input
    gives, and ``check()``, which raises every finding (:func:`validate_tables` is this,
    checked at once) or returns. Problems found while reading and coercing
    (``findings``) are checked at once, so the Batch is always well-typed; nothing may be
    written from it before ``check()`` has returned. ``check()`` holds the tables as
    coerced (before sorting) until it has run."""
    orders = _key_orders(tables, arrow_keys)
    if findings:
        raise BatchValidationError(_all_findings(config, tables, findings, orders))
    batch = _batch(config, tables, orders, source, file_hashes)

    def check() -> None:
        late = _all_findings(config, tables, [], orders)
        if late:
            raise BatchValidationError(late)

    return batch, check


def _key_orders(tables: Tables, arrow_keys: dict[str, pa.Table] | None) -> dict[str, KeyOrder]:
    return {
        spec.name: key_order(spec, df, (arrow_keys or {}).get(spec.name))
        for spec in BATCH_TABLES
        if (df := tables.get(spec.name)) is not None
    }


def _all_findings(
    config: BatchConfig, tables: Tables, findings: list[Finding], orders: dict[str, KeyOrder]
) -> list[Finding]:
    """``findings`` (reading and coercing) and every check's, each cell named once."""
    findings = list(findings)
    already = {(f.table, f.row, f.column) for f in findings}
    for spec in BATCH_TABLES:
        df = tables.get(spec.name)
        if df is not None:
            found = schema_findings(spec, df, orders[spec.name])
            findings += [f for f in found if (f.table, f.row, f.column) not in already]
            findings += grid_findings(spec, df, config)
    findings += foreign_key_findings(tables)
    findings += domain_findings(tables)
    findings += gate_findings(tables.get("bids"), config.gate_closures)
    return findings


def _batch(
    config: BatchConfig,
    tables: Tables,
    orders: dict[str, KeyOrder],
    source: Path | None,
    file_hashes: dict[str, str] | None,
) -> Batch:
    clean = {name: _normalise(TABLES[name], df, orders[name].order) for name, df in tables.items() if df is not None}
    return Batch(config=config, source=source, file_hashes=dict(file_hashes or {}), **clean)


def _normalise(spec: TableSpec, df: pd.DataFrame, order: np.ndarray) -> pd.DataFrame:
    """The valid table in key order with a fresh index, its columns in contract order
    (bids' services lists canonical)."""
    names = {c.name for c in spec.columns}
    cols = [c.name for c in spec.columns] + [c for c in df.columns if c not in names]
    out = pd.DataFrame({c: df[c] for c in cols}, copy=False).take(order)
    out.index = pd.RangeIndex(len(out))
    if spec.name == "bids":
        services = out["services"]
        if services.isna().all():  # none given (the usual case): every service, without hashing a cell
            every = np.empty(len(out), dtype=object)
            every.fill(_canonical_services(None))  # one shared str (np.full would make one per row)
            out["services"] = every
        else:
            out["services"] = per_unique(services, _canonical_services)
    return out


def _canonical_services(v: object) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ";".join(SERVICES)
    tokens = {t.strip() for t in str(v).split(";") if t.strip()}
    return ";".join(s for s in SERVICES if s in tokens)


def schema_findings(spec: TableSpec, df: pd.DataFrame, order: KeyOrder | None = None) -> list[Finding]:
    """Every failing cell of the pandera schema of one (coerced) table. ``order``: the rows
    in key order (:func:`key_order`), whose sorted pass may have settled the key's
    uniqueness already (pandera's hash check is then left out)."""
    if spec.name == "bids" and len(df) == 0:
        return [Finding("bids", None, None, None, None, "bids table is empty", FindingCode.EMPTY_TABLE)]
    import pandera.pandas as pandera  # here: loading a batch to clear it does not need it

    order = key_order(spec, df) if order is None else order
    try:
        schema = pandera_schema(
            spec,
            coerced=True,
            unique=not order.surely_unique,
            complete=df.attrs.get(COMPLETE, frozenset()),
            empty=df.attrs.get(EMPTY, frozenset()),
        )
        schema.validate(df, lazy=True, inplace=True)  # inplace: no copy (coerce=False: nothing is changed)
    except pandera.errors.SchemaErrors as exc:
        return _from_failure_cases(spec, df, exc.failure_cases)
    return []


def _from_failure_cases(spec: TableSpec, df: pd.DataFrame, cases: pd.DataFrame) -> list[Finding]:
    ids = RowIds(spec, df)
    out: list[Finding] = []
    for case in cases.itertuples(index=False):
        check = str(case.check)
        row = None if pd.isna(case.index) else int(case.index)
        if check == "multiple_fields_uniqueness":
            reason = f"duplicate {'/'.join(spec.key)}: another row has the same key"
            column, code = spec.key[0], FindingCode.DUPLICATE_KEY
        elif check == "not_nullable":
            column = str(case.column)
            kind = spec.column(column).kind if column in {c.name for c in spec.columns} else ""
            if kind == "float":
                reason, code = "must be a finite number (empty or NaN)", FindingCode.NOT_FINITE
            else:
                reason, code = "must not be empty", FindingCode.EMPTY_VALUE
        elif check.startswith("column_in_dataframe"):
            reason, column, code = "missing required column", str(case.failure_case), FindingCode.MISSING_COLUMN
            row = None
        elif check.startswith("dtype"):
            reason, column, code = f"wrong type: expected {check}", str(case.column), FindingCode.WRONG_TYPE
        else:
            reason, column, code = check, str(case.column), FindingCode.INVALID_VALUE
        value = None if row is None or column not in df.columns else repr(plain(df[column].iloc[row]))
        out.append(Finding(spec.name, row, None if row is None else ids[row], column, value, reason, code))
    return out


def grid_findings(spec: TableSpec, df: pd.DataFrame, config: BatchConfig) -> list[Finding]:
    """Interval starts must lie on the batch's interval grid and inside ``[start, end)`` (a
    forecast's ``issued_at`` is any instant)."""
    out: list[Finding] = []
    for col in (c for c in spec.columns if c.kind == "ts" and c.name == "interval_start"):
        ns = np.asarray(df[col.name].dt.as_unit("ns").array.asi8)  # UTC ns; NaT is the smallest int64
        ok = ns != np.iinfo(np.int64).min
        offset = ns - config.start.value
        off_grid = ok & (offset % config.interval.value != 0)
        outside = ok & ~off_grid & ((ns < config.start.value) | (ns >= config.end.value))
        out += row_findings(
            spec,
            df,
            off_grid,
            col.name,
            f"not on the {config.interval_minutes}-minute grid from {config.start.isoformat()}",
            FindingCode.OFF_GRID,
        )
        out += row_findings(
            spec,
            df,
            outside,
            col.name,
            f"outside the batch horizon [{config.start.isoformat()}, {config.end.isoformat()})",
            FindingCode.OUTSIDE_HORIZON,
        )
    return out


def foreign_key_findings(tables: Tables) -> list[Finding]:
    out: list[Finding] = []
    for spec in BATCH_TABLES:
        df = tables.get(spec.name)
        for fk in spec.foreign_keys:
            ref = tables.get(fk.ref_table)
            if df is None or not len(df):
                continue
            rows = _present(df, fk.columns)
            if fk.when is not None:
                rows &= np.asarray(df[fk.when[0]] == fk.when[1])
            if ref is None:  # an optional table that is absent: a reference to it is unknown
                ref = pd.DataFrame({c: pd.Series(dtype=object) for c in fk.ref_columns})
                if fk.when is None:
                    continue
            out += row_findings(
                spec,
                df,
                rows & ~_known(df, fk.columns, ref, fk.ref_columns),
                fk.columns[-1],
                f"unknown {'/'.join(fk.columns)}: not in {fk.ref_table}",
                FindingCode.UNKNOWN_REFERENCE,
            )
    return out


def _present(df: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """Rows where every one of ``columns`` has a value (columns read complete are not scanned)."""
    complete = df.attrs.get(COMPLETE, frozenset())
    mask = np.ones(len(df), dtype=bool)
    for c in (c for c in columns if c not in complete):
        mask &= np.asarray(df[c].notna())
    return mask


def _known(df: pd.DataFrame, columns: tuple[str, ...], ref: pd.DataFrame, ref_columns: tuple[str, ...]) -> np.ndarray:
    """Whether each row's ``columns`` appear together as ``ref_columns`` in ``ref``: one hash
    lookup per cell for a single column, tuples only for a composite key."""
    if len(columns) == 1:
        return np.asarray(df[columns[0]].isin(ref[ref_columns[0]]))
    known = pd.MultiIndex.from_frame(ref[list(ref_columns)].astype(object))
    return np.asarray(pd.MultiIndex.from_frame(df[list(columns)].astype(object)).isin(known))
