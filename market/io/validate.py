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
import pandera.pandas as pandera
import pyarrow as pa

from market.enums import SYSTEM_AREA, TSO_ID, Service
from market.errors import BatchValidationError, Finding, FindingCode
from market.io.batch import Batch, BatchConfig
from market.io.coerce import COMPLETE, EMPTY
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
    findings = list(findings)
    already = {(f.table, f.row, f.column) for f in findings}
    orders: dict[str, KeyOrder] = {}
    for spec in BATCH_TABLES:
        df = tables.get(spec.name)
        if df is not None:
            orders[spec.name] = key_order(spec, df, (arrow_keys or {}).get(spec.name))
            found = schema_findings(spec, df, orders[spec.name])
            findings += [f for f in found if (f.table, f.row, f.column) not in already]
            findings += grid_findings(spec, df, config)
    findings += foreign_key_findings(tables)
    findings += domain_findings(tables)
    if findings:
        raise BatchValidationError(findings)
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
            out["services"] = np.full(len(out), _canonical_services(None), dtype=object)
        else:
            out["services"] = per_unique(services, _canonical_services)
    return out


def _canonical_services(v: object) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ";".join(SERVICES)
    tokens = {t.strip() for t in str(v).split(";") if t.strip()}
    return ";".join(s for s in SERVICES if s in tokens)


def _ids(spec: TableSpec, df: pd.DataFrame) -> list[str | None]:
    if spec.id_column and spec.id_column in df.columns:
        return [None if v is None else f"{spec.id_column}={v}" for v in df[spec.id_column]]
    key = [k for k in spec.key if k in df.columns]
    label = "/".join(key)
    return [f"{label}={'/'.join(map(str, row))}" for row in df[key].itertuples(index=False)]


def _rows(
    spec: TableSpec,
    df: pd.DataFrame,
    mask: np.ndarray | pd.Series,
    column: str | None,
    reason: str | Callable[[int], str],
    code: FindingCode,
) -> list[Finding]:
    """Findings for each row where ``mask`` holds (vectorised mask, one finding per row)."""
    idx = np.flatnonzero(np.asarray(mask, dtype=bool))
    if not len(idx):
        return []
    ids = _ids(spec, df)
    out = []
    for i in (int(j) for j in idx):
        value = None if column is None else repr(_plain(df[column].iloc[i]))
        text = reason(i) if callable(reason) else reason
        out.append(Finding(spec.name, int(i), ids[int(i)], column, value, text, code))
    return out


def _plain(v: object) -> object:
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return v


def schema_findings(spec: TableSpec, df: pd.DataFrame, order: KeyOrder | None = None) -> list[Finding]:
    """Every failing cell of the pandera schema of one (coerced) table. ``order``: the rows
    in key order (:func:`key_order`), whose sorted pass may have settled the key's
    uniqueness already (pandera's hash check is then left out)."""
    if spec.name == "bids" and len(df) == 0:
        return [Finding("bids", None, None, None, None, "bids table is empty", FindingCode.EMPTY_TABLE)]
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
    ids = _ids(spec, df)
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
        value = None if row is None or column not in df.columns else repr(_plain(df[column].iloc[row]))
        out.append(Finding(spec.name, row, None if row is None else ids[row], column, value, reason, code))
    return out


def grid_findings(spec: TableSpec, df: pd.DataFrame, config: BatchConfig) -> list[Finding]:
    """Timestamps must lie on the batch's interval grid and inside ``[start, end)``."""
    out: list[Finding] = []
    for col in (c for c in spec.columns if c.kind == "ts"):
        ns = np.asarray(df[col.name].dt.as_unit("ns").array.asi8)  # UTC ns; NaT is the smallest int64
        ok = ns != np.iinfo(np.int64).min
        offset = ns - config.start.value
        off_grid = ok & (offset % config.interval.value != 0)
        outside = ok & ~off_grid & ((ns < config.start.value) | (ns >= config.end.value))
        out += _rows(
            spec,
            df,
            off_grid,
            col.name,
            f"not on the {config.interval_minutes}-minute grid from {config.start.isoformat()}",
            FindingCode.OFF_GRID,
        )
        out += _rows(
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
            if df is None or ref is None or not len(df):
                continue
            out += _rows(
                spec,
                df,
                _present(df, fk.columns) & ~_known(df, fk.columns, ref, fk.ref_columns),
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


def domain_findings(tables: Tables) -> list[Finding]:
    out: list[Finding] = []
    na = tables.get("node_areas")
    if na is not None:
        out += _node_area_rules(na)
    if (bids := tables.get("bids")) is not None:
        out += _bid_rules(bids, na)
    if (needs := tables.get("needs")) is not None:
        out += _need_rules(needs, na)
    if (cons := tables.get("constraints")) is not None:
        out += _constraint_rules(cons, na)
    if (sig := tables.get("signals")) is not None:
        out += _signal_rules(sig)
    return out


def _node_area_rules(na: pd.DataFrame) -> list[Finding]:
    spec = TABLES["node_areas"]
    dsos_per_area = na.groupby("area_id")["dso_id"].transform("nunique")
    out = _rows(spec, na, dsos_per_area > 1, "dso_id", "area belongs to more than one DSO", FindingCode.INCONSISTENT)
    out += _rows(
        spec,
        na,
        na["area_id"] == SYSTEM_AREA,
        "area_id",
        f"'{SYSTEM_AREA}' is reserved for TSO balancing",
        FindingCode.INCONSISTENT,
    )
    out += _rows(
        spec, na, na["dso_id"] == TSO_ID, "dso_id", f"'{TSO_ID}' is reserved for the TSO", FindingCode.INCONSISTENT
    )
    return out


def _bid_rules(bids: pd.DataFrame, na: pd.DataFrame | None) -> list[Finding]:
    spec = TABLES["bids"]
    out = _rows(
        spec,
        bids,
        bids["min_quantity_mw"] > bids["quantity_mw"],
        "min_quantity_mw",
        "min_quantity_mw exceeds quantity_mw",
        FindingCode.INCONSISTENT,
    )
    blocks = bids[bids["block_id"].notna()]
    if len(blocks):
        spans = blocks.groupby("block_id")["dso_id"].transform("nunique") > 1
        mask = np.zeros(len(bids), dtype=bool)
        mask[blocks.index[spans.to_numpy()]] = True
        out += _rows(spec, bids, mask, "block_id", "block spans more than one DSO", FindingCode.INCONSISTENT)
    if na is not None and len(bids):
        node_codes, nodes = pd.factorize(bids["node_id"])  # a bid's node and DSO, as codes
        dso_codes, dsos = pd.factorize(bids["dso_id"])
        known_dso = np.append(pd.Index(dsos).isin(na["dso_id"]), False)[dso_codes]  # code -1: missing
        known_node = np.append(pd.Index(nodes).isin(na["node_id"]), False)[node_codes]
        out += _rows(
            spec,
            bids,
            ~known_dso & (dso_codes >= 0),
            "dso_id",
            "unknown DSO: not in node_areas",
            FindingCode.UNKNOWN_REFERENCE,
        )
        # (node, DSO) pairs of node_areas as the same codes; a bid's pair is one integer
        allowed = na[["node_id", "dso_id"]].drop_duplicates()
        allowed_node = pd.Index(nodes).get_indexer(allowed["node_id"])
        allowed_dso = pd.Index(dsos).get_indexer(allowed["dso_id"])
        both = (allowed_node >= 0) & (allowed_dso >= 0)
        width = len(dsos) + 1
        ok_pair = pd.Index(allowed_node[both] * width + allowed_dso[both]).unique()
        ok = np.asarray(pd.Series(node_codes.astype(np.int64) * width + dso_codes).isin(ok_pair))
        out += _rows(
            spec,
            bids,
            known_node & known_dso & ~ok,
            "dso_id",
            "node is not in this DSO's areas (node_areas)",
            FindingCode.INCONSISTENT,
        )
    return out


def _need_rules(needs: pd.DataFrame, na: pd.DataFrame | None) -> list[Finding]:
    spec = TABLES["needs"]
    tso = needs["service"] == Service.TSO_BALANCING
    dso = needs["service"] == Service.DSO_CONGESTION
    out = _rows(
        spec,
        needs,
        tso & (needs["buyer_id"] != TSO_ID),
        "buyer_id",
        f"tso_balancing needs are bought by '{TSO_ID}'",
        FindingCode.INCONSISTENT,
    )
    out += _rows(
        spec,
        needs,
        tso & (needs["area_id"] != SYSTEM_AREA),
        "area_id",
        f"tso_balancing needs use area '{SYSTEM_AREA}'",
        FindingCode.INCONSISTENT,
    )
    if na is not None:
        areas = na[["area_id", "dso_id"]].drop_duplicates()
        known_area = needs["area_id"].isin(areas["area_id"])
        out += _rows(
            spec, needs, dso & ~known_area, "area_id", "unknown area: not in node_areas", FindingCode.UNKNOWN_REFERENCE
        )
        pair = pd.MultiIndex.from_frame(needs[["area_id", "buyer_id"]].astype(object))
        ok = pair.isin(pd.MultiIndex.from_frame(areas.astype(object)))
        out += _rows(
            spec,
            needs,
            dso & known_area & ~ok,
            "buyer_id",
            "dso_congestion need must be bought by the DSO owning the area",
            FindingCode.INCONSISTENT,
        )
    key = ["buyer_id", "service", "area_id", "interval_start", "direction"]
    dup = needs.duplicated(key, keep=False) & needs[key].notna().all(axis=1)
    out += _rows(
        spec,
        needs,
        dup,
        "need_id",
        "another need has the same buyer, area, interval and direction; merge them",
        FindingCode.INCONSISTENT,
    )
    return out


def _constraint_rules(cons: pd.DataFrame, na: pd.DataFrame | None) -> list[Finding]:
    spec = TABLES["constraints"]
    out = _rows(
        spec,
        cons,
        cons["min_flow_mw"] > cons["max_flow_mw"],
        "min_flow_mw",
        "min_flow_mw exceeds max_flow_mw",
        FindingCode.INCONSISTENT,
    )
    if na is not None:
        owners = set(na["dso_id"]) | {TSO_ID}
        out += _rows(
            spec,
            cons,
            ~cons["owner_id"].isin(owners) & cons["owner_id"].notna(),
            "owner_id",
            "unknown owner: must be 'tso' or a DSO in node_areas",
            FindingCode.UNKNOWN_REFERENCE,
        )
    every = cons["interval_start"].isna()
    mixed = cons.groupby("constraint_id")["interval_start"].transform(lambda s: s.isna().any() and s.notna().any())
    out += _rows(
        spec,
        cons,
        mixed.astype(bool) & ~every,
        "interval_start",
        "constraint has both an every-interval row and per-interval rows",
        FindingCode.INCONSISTENT,
    )
    owners_per = cons.groupby("constraint_id")["owner_id"].transform("nunique") > 1
    out += _rows(spec, cons, owners_per, "owner_id", "constraint has more than one owner", FindingCode.INCONSISTENT)
    return out


def _signal_rules(sig: pd.DataFrame) -> list[Finding]:
    spec = TABLES["signals"]
    amber = sig["state"] == "amber"
    out = _rows(
        spec,
        sig,
        amber & sig["headroom_up_mw"].isna(),
        "headroom_up_mw",
        "amber signal needs headroom_up_mw",
        FindingCode.INCONSISTENT,
    )
    out += _rows(
        spec,
        sig,
        amber & sig["headroom_down_mw"].isna(),
        "headroom_down_mw",
        "amber signal needs headroom_down_mw",
        FindingCode.INCONSISTENT,
    )
    return out
