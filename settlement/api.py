"""``settle()``: a clearing run's awards against meter data, into statements and the store."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from market.enums import RunType
from market.errors import SettlementInputError, StoreConflictError, StoreUnavailableError
from market.io.place import check_target
from market.io.read import sha256_file
from market.io.write import package_versions, write_json
from settlement.config import SettleConfig, load_config
from settlement.connection import open_duckdb, reading, sql_path
from settlement.inputs import validate_meter
from settlement.money import exact_lines
from settlement.pipeline import run_stages
from settlement.statements import OUTPUT_STATEMENT_COLUMNS, statements
from settlement.store import Saved, has_run, make_engine, resolve_url, save_run
from settlement.store_tables import ACTUAL
from settlement.store_url import check_store_url

log = logging.getLogger("flexmarket")


@dataclass(frozen=True)
class SettlementResult:
    run_id: str
    period: str
    lines: pd.DataFrame
    statements: pd.DataFrame  # the store's latest version of every statement of the run
    findings: pd.DataFrame
    new_versions: pd.DataFrame
    deltas: pd.DataFrame  # changed lines of every new version against the one before
    previous: pd.DataFrame  # per new version: the version it replaced and its net EUR

    def changes(self) -> list[dict[str, Any]]:
        """Every statement version the run added: id, version, the version it replaced and
        the net EUR before (0 for a first version) and after, and its changed lines."""
        new = self.new_versions.merge(self.previous, on="statement_id", how="left")
        out = []
        for row in new.itertuples(index=False):
            replaced = not pd.isna(row.previous_statement_id)
            out.append(
                {
                    "statement_id": row.statement_id,
                    "aggregator_id": row.aggregator_id,
                    "buyer_id": row.buyer_id,
                    "period": row.period,
                    "version": int(row.version),
                    "previous_statement_id": row.previous_statement_id if replaced else None,
                    "previous_version": int(row.previous_version) if replaced else None,
                    "net_eur_before": float(row.previous_net_eur) if replaced else 0.0,
                    "net_eur_after": float(row.net_eur),
                    "delta_lines": int((self.deltas["statement_id"] == row.statement_id).sum()),
                }
            )
        return out


def _run_info(run: Path) -> tuple[Path, int, dict[str, Any]]:
    awards_path = run / "awards.parquet"
    manifest_path = run / "manifest.json"
    if not awards_path.is_file() or not manifest_path.is_file():
        raise SettlementInputError(f"{run}: not a clearing run (needs awards.parquet and manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text())
        minutes = int(manifest["batch"]["interval_minutes"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SettlementInputError(f"{manifest_path}: not a clearing run manifest ({exc})") from exc
    recorded = (manifest.get("output_sha256") or {}).get("awards.parquet") if isinstance(manifest, dict) else None
    if recorded is None:
        raise SettlementInputError(
            f"{manifest_path}: no output hash for awards.parquet (made by an older flexmarket?): clear the batch again"
        )
    return awards_path, minutes, manifest


SETTLEMENT_KIND = "settlement-run"


def settle(
    run: str | Path,
    meter: str | Path,
    config: SettleConfig | str | Path | None = None,
    db: str | None = None,
    out: str | Path | None = None,
    fail_hook: Callable[[str], None] | None = None,
    wait_seconds: float = 60.0,
    memory_limit: str | None = "3GB",
    scenario: str = ACTUAL,
    run_type: RunType | str | None = None,
    reason: str | None = None,
) -> SettlementResult:
    """Settle ``run`` against ``meter``; store statements (new versions only) and write ``out``.
    ``scenario``: the statements it settles into (``actual``, or a counterfactual's name,
    which never touches the actual statements). A statement covers every market session
    (clearing run, by batch name and horizon) settled into its scenario for its period:
    settling a session adds or replaces that session's lines only.

    ``db``: SQLAlchemy URL (default: a DuckDB file ``store.duckdb`` in ``out``). When another
    run holds the store (DuckDB's file lock), wait up to ``wait_seconds``, then raise
    :class:`~market.errors.StoreConflictError`; PostgreSQL runs queue on an advisory lock.

    ``run_type`` (``initial``, ``recalculation``, ``correction``) and ``reason`` are recorded
    with the run; without a type, the first run of a scenario and period is ``initial`` and
    any later one a ``recalculation`` (logged, never silent).
    """
    run, meter = Path(run), Path(meter)
    if not meter.is_file():
        raise SettlementInputError(f"{meter}: meter file not found")
    cfg = config if isinstance(config, SettleConfig) else load_config(config)
    out_path = Path(out) if out else None
    if out_path is not None:  # never over the run, the meter file, the config, or a user's folder
        check_target(
            out_path, SETTLEMENT_KIND, inputs=[run, meter, None if isinstance(config, SettleConfig) else config]
        )
    url = (
        resolve_url(check_store_url(db).render_as_string(hide_password=False))
        if db
        else (f"duckdb:///{(out_path or Path('.')).resolve() / 'store.duckdb'}")
    )
    scenario = check_scenario(scenario)
    awards_path, minutes, run_manifest = _run_info(run)
    session = session_of(run_manifest)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="flexmarket-settle") as pool:
        # Bookkeeping that needs no DuckDB result runs while DuckDB computes: hashing the
        # inputs, reading package versions, importing the store's database driver.
        background = pool.submit(_bookkeeping, url, awards_path, meter)
        lines, stmts, findings, period = _compute(awards_path, meter, cfg, minutes, memory_limit)
        input_hashes, versions, driver_error = background.result()
    if input_hashes["awards.parquet"] != run_manifest["output_sha256"]["awards.parquet"]:
        raise SettlementInputError(
            f"{awards_path} was changed after the run was written (its SHA-256 does not match the run's manifest)"
        )
    if driver_error is not None:
        raise StoreUnavailableError(
            f"store {_shown(url)}: no usable database driver ({driver_error})"
        ) from driver_error
    kind = RunType(run_type) if run_type is not None else None
    inputs = {**input_hashes, "config": cfg.as_dict(), "scenario": scenario, "session": session}
    lines = lines.assign(session_id=session)
    inputs_sha = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    run_id = hashlib.sha256(f"{inputs_sha}|{pd.Timestamp.now('UTC').isoformat()}".encode()).hexdigest()[:32]
    manifest = {
        "kind": SETTLEMENT_KIND,
        "run_id": run_id,
        "period": period,
        "scenario": scenario,
        "session_id": session,
        "clearing_run": str(run),
        "clearing_design": run_manifest.get("design", {}).get("name"),
        "pricing": run_manifest.get("pricing"),
        "inputs": inputs,
        "versions": versions,
    }
    if out_path and db is None:  # the default store lives in OUT
        out_path.mkdir(parents=True, exist_ok=True)
    if out_path and out_path.is_dir():
        remove_stale_temporaries(out_path)
    staged: list[Path] = []

    def typed(engine: Any) -> Saved:  # the run's type and reason, decided inside the store's lock
        with engine.connect() as conn:
            chosen = kind or (RunType.RECALCULATION if has_run(conn, scenario, period) else RunType.INITIAL)
        if kind is None:
            log.info("settlement run type: %s (give --type to choose)", chosen.value)
        manifest["run_type"] = chosen.value
        manifest["reason"] = reason or f"{chosen.value} settlement"
        key = (scenario, period)
        return save_run(
            engine, run_id, key, inputs_sha, lines, stmts, findings, manifest, fail_hook, stage, kind is not None
        )

    def stage(saved: Saved) -> None:  # inside the store's transaction: no commit without the files
        if out_path:
            staged.append(_stage_outputs(out_path, lines, output_statements(saved.current), findings, saved, manifest))

    try:
        saved = _store_with_wait(url, typed, wait_seconds)
        if out_path:
            _move_into_place(staged[-1], out_path)
    finally:
        for tmp in staged:
            shutil.rmtree(tmp, ignore_errors=True)
    shown = output_statements(saved.current)
    return SettlementResult(run_id, period, lines, shown, findings, saved.new, saved.deltas, saved.previous)


def output_statements(current: pd.DataFrame) -> pd.DataFrame:
    """The store's latest versions as the output table ``statements`` (what the store shows)."""
    if not len(current):
        return pd.DataFrame(columns=OUTPUT_STATEMENT_COLUMNS)
    out = current[OUTPUT_STATEMENT_COLUMNS].reset_index(drop=True)
    return out.astype({"lines": "int64", "unverifiable_lines": "int64", "version": "int64"})


SCENARIO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_scenario(name: str) -> str:
    """A scenario name: letters, digits, '.', '_', '-', at most 100 characters."""
    if not isinstance(name, str) or not SCENARIO.fullmatch(name):
        raise SettlementInputError(
            f"scenario {name!r} must be 1-100 letters, digits, '.', '_' or '-' (e.g. actual, counterfactual-dso-led)"
        )
    return name


def session_of(manifest: dict[str, Any]) -> str:
    """The market session a clearing run settles: its batch name and horizon."""
    b = manifest.get("batch", {})
    return f"{b.get('name')}@{b.get('start')}/{b.get('end')}"


def check_meter(meter: str | Path, interval_minutes: int) -> dict[str, Any]:
    """Exactly the checks ``settle`` applies to meter data (raises
    :class:`~market.errors.SettlementInputError` naming the bad rows), and a summary."""
    meter = Path(meter)
    if not meter.is_file():
        raise SettlementInputError(f"{meter}: meter file not found")
    con = open_duckdb()
    try:
        validate_meter(con, meter, interval_minutes)
        with reading(meter, "meter data"):
            rows, der, first, last, distinct = con.execute(
                f"SELECT count(*), count(DISTINCT der_id), min(interval_start), max(interval_start), "
                f"count(DISTINCT (der_id, interval_start)) FROM read_parquet({sql_path(meter)})"
            ).fetchone() or (0, 0, None, None, 0)
    finally:
        con.close()
    return {"rows": rows, "der": der, "first": first, "last": last, "duplicate_readings": rows - distinct}


def _compute(
    awards_path: Path, meter: Path, cfg: SettleConfig, minutes: int, memory_limit: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """Lines, statements, findings and period label (the stages of :mod:`settlement.pipeline`)."""
    lines, findings, period = run_stages(awards_path, meter, cfg, minutes, memory_limit)
    lines = exact_lines(lines)
    return lines, statements(lines, period), findings, period


def _bookkeeping(url: str, awards_path: Path, meter: Path) -> tuple[dict[str, str], dict[str, str], Exception | None]:
    """Input file hashes and package versions for the manifest; also imports the store's
    SQLAlchemy dialect (its first import takes about 0.1 s) and returns what failed there."""
    driver_error: Exception | None = None
    try:
        sa.engine.make_url(url).get_dialect()
    except Exception as exc:  # any import or plugin failure: reported once settled
        driver_error = exc
    return ({"awards.parquet": sha256_file(awards_path), "meter": sha256_file(meter)}, package_versions(), driver_error)


def _shown(url: str) -> str:
    """The URL with any password masked, for messages."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "could not set lock" in text or "conflicting lock" in text


def _store_with_wait(url: str, work: Callable[[Any], pd.DataFrame], wait_seconds: float) -> pd.DataFrame:
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            engine = make_engine(url)
            try:
                return work(engine)
            finally:
                engine.dispose()
        except (OperationalError, StoreConflictError) as exc:
            if not _is_lock_error(exc) and not isinstance(exc, StoreConflictError):
                reason = getattr(exc, "orig", exc)
                raise StoreUnavailableError(
                    f"store {_shown(url)} cannot be reached or written: {reason}".strip()
                ) from exc
            if time.monotonic() > deadline:
                raise StoreConflictError(
                    f"store {_shown(url)} is held by another settlement run (waited {wait_seconds:.0f} s)"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Remove ``out/.settle-<pid>-*`` folders whose process no longer runs; return them."""
    removed = []
    for folder in out.glob(".settle-*-*"):
        pid = folder.name.split("-")[1]
        if not pid.isdigit() or not folder.is_dir() or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


OUTPUT_FILES = ("lines", "statements", "findings", "new_versions", "deltas")


def _stage_outputs(
    out: Path,
    lines: pd.DataFrame,
    stmts: pd.DataFrame,
    findings: pd.DataFrame,
    saved: Saved,
    manifest: dict[str, Any],
) -> Path:
    """The output files, written into a temporary folder ``.settle-<pid>-*`` in ``out`` (beside
    it while it does not exist), moved into place once the store has committed; a killed
    settle's folder is removed by the next."""
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".settle-{os.getpid()}-", dir=out if out.exists() else out.parent))
    tables = {"lines": lines, "statements": stmts, "findings": findings, "new_versions": saved.new}
    tables["deltas"] = saved.deltas
    for name in OUTPUT_FILES:
        tables[name].to_parquet(tmp / f"{name}.parquet", index=False)
    shown = stmts[["statement_id", "version"]].to_dict("records")
    write_json(tmp / "manifest.json", {**manifest, "recorded": saved.recorded, "statements_shown": shown})
    return tmp


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _move_into_place(tmp: Path, out: Path) -> None:
    """Each staged file replaces its namesake in ``out`` (a rename: never through a link);
    a new ``out`` is the staged folder itself."""
    if not os.path.lexists(out):
        os.chmod(tmp, 0o777 & ~_umask())
        tmp.rename(out)
        return
    for f in sorted(tmp.iterdir()):
        os.replace(f, out / f.name)
