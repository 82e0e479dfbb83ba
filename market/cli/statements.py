"""``statements list / show / export``: read the settlement store from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from market.cli.console import emit_json, exit_on_error, say
from market.errors import OutputError, StoreConflictError, StoreUnavailableError

if TYPE_CHECKING:
    import pandas as pd

DB = Annotated[str, typer.Option(help="SQLAlchemy URL of the store, e.g. duckdb:///runs/s/store.duckdb")]
STORE_FAILURES = (StoreConflictError, StoreUnavailableError)
LIST_COLUMNS = [
    "statement_id",
    "scenario",
    "period",
    "aggregator_id",
    "buyer_id",
    "version",
    "status",
    "sessions",
    "lines",
    "net_eur",
]
DELTA_SHOWN = ["bid_id", "interval_start", "delta_allocated_mwh", "delta_payment_eur", "delta_penalty_eur"]
DELTA_SHOWN += ["delta_net_eur"]
LINE_COLUMNS = ["bid_id", "interval_start", "allocated_mwh", "payment_eur", "penalty_eur", "net_eur", "status"]


def _table(title: str, df: pd.DataFrame, columns: list[str]) -> Table:
    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="right" if c.endswith(("_eur", "_mwh", "lines", "version")) else "left")
    for row in df[columns].itertuples(index=False):
        t.add_row(*[f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row])
    return t


def statements_list(
    db: DB,
    period: Annotated[str | None, typer.Option(help="only this period (e.g. 2016-12-01..2016-12-01)")] = None,
    all_versions: Annotated[bool, typer.Option("--all-versions", help="every version, not only the latest")] = False,
    scenario: Annotated[str | None, typer.Option(help="only this scenario (e.g. actual)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the statements as JSON")] = False,
) -> None:
    """The statements in the store (latest version of each scenario, aggregator, buyer and period)."""
    from settlement.query import list_statements

    with exit_on_error(failed=STORE_FAILURES):
        df = list_statements(db, period=period, all_versions=all_versions, scenario=scenario)
    if as_json:
        emit_json(df.to_dict(orient="records"))
    say(_table(f"statements in {db}", df, LIST_COLUMNS))


def statements_show(
    statement_id: Annotated[str, typer.Argument(help="a statement_id (statements list shows them)")],
    db: DB,
    as_json: Annotated[bool, typer.Option("--json", help="print the statement, lines and deltas as JSON")] = False,
) -> None:
    """One statement version with its lines and the deltas against the version before."""
    from settlement.query import statement_detail

    with exit_on_error(failed=STORE_FAILURES):
        head, lines, deltas = statement_detail(db, statement_id)
    if as_json:
        parts = {"statement": head, "lines": lines, "deltas": deltas}
        emit_json({k: v.to_dict(orient="records") for k, v in parts.items()})
    say(
        _table("statement", head, LIST_COLUMNS),
        _table("lines", lines, LINE_COLUMNS),
        _table(f"{len(deltas)} delta line(s) against the version before", deltas, DELTA_SHOWN),
    )


def statements_diff(
    old: Annotated[str, typer.Argument(help="a statement_id (the earlier version)")],
    new: Annotated[str, typer.Argument(help="a statement_id of the same statement (the later version)")],
    db: DB,
    as_json: Annotated[bool, typer.Option("--json", help="print the totals and changed lines as JSON")] = False,
) -> None:
    """What differs between two versions of one statement: totals and every changed line
    (new minus old, exactly), whether or not the versions are consecutive."""
    from settlement.query import diff_versions

    with exit_on_error(failed=STORE_FAILURES):
        totals, lines = diff_versions(db, old, new)
    if as_json:
        emit_json(
            {"old": old, "new": new, "totals": totals.to_dict(orient="records"), "lines": lines.to_dict("records")}
        )
    say(_table(f"{old} -> {new}", totals, list(totals.columns)), _table("changed lines", lines, list(lines.columns)))


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def statements_dispute(
    statement_id: Annotated[str, typer.Argument(help="the statement version disputed")],
    db: DB,
    reason: Annotated[str, typer.Option(help="why it is disputed (recorded)")],
    by: Annotated[str | None, typer.Option(help="who disputes it (default: the login name)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the dispute as JSON")] = False,
) -> None:
    """Record a dispute of a statement version (who, why, when): its status becomes disputed."""
    from settlement.disputes import raise_dispute

    with exit_on_error(failed=STORE_FAILURES):
        row = raise_dispute(db, statement_id, by or _user(), reason)
    if as_json:
        emit_json(row)
    say(f"{statement_id} disputed by {row['raised_by']}: {reason}")


def statements_resolve(
    statement_id: Annotated[str, typer.Argument(help="the disputed statement version")],
    db: DB,
    reason: Annotated[str, typer.Option(help="the decision or why the new version settles it (recorded)")],
    version: Annotated[
        str | None, typer.Option(help="a later version of the statement that resolves it (else: a decision)")
    ] = None,
    by: Annotated[str | None, typer.Option(help="who resolves it (default: the login name)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the closed disputes as JSON")] = False,
) -> None:
    """Close a statement version's open disputes, by a new version or by a decision."""
    from settlement.disputes import resolve_dispute

    with exit_on_error(failed=STORE_FAILURES):
        rows = resolve_dispute(db, statement_id, by or _user(), reason, version)
    if as_json:
        emit_json(rows)
    how = f"by version {version}" if version else "by decision"
    say(f"{statement_id}: {len(rows)} dispute(s) resolved {how}: {reason}")


def statements_migrate(db: DB) -> None:
    """Bring a store made by an earlier flexmarket up to date (additive: nothing dropped)."""
    from settlement.query import migrate_store

    with exit_on_error(failed=STORE_FAILURES):
        migrate_store(db)
    say(f"store {db} is up to date")


def statements_export(
    db: DB,
    out: Annotated[Path, typer.Option(help="folder to write statements, statement_lines and statement_deltas into")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Every statement version, line and delta of the store as CSV or JSON files (all or none)."""
    from market.io.place import check_new_files, publish_files
    from settlement.query import export_store, store_file

    names = ("statements", "statement_lines", "statement_deltas", "statement_disputes")
    with exit_on_error(failed=STORE_FAILURES):
        if fmt not in ("csv", "json"):
            raise OutputError(f"--format {fmt!r}: choose csv or json")
        check_new_files(out, [f"{n}.{fmt}" for n in names], inputs=[store_file(db)])
        tables = export_store(db)
        publish_files(out, {f"{n}.{fmt}": _table_writer(tables[n], fmt) for n in names}, inputs=[store_file(db)])
    if as_json:
        emit_json({"folder": str(out), "rows": {n: len(tables[n]) for n in names}})
    say(", ".join(f"{n} {len(tables[n]):,} rows" for n in names) + f" -> [bold]{out}[/]")


def _table_writer(df: pd.DataFrame, fmt: str) -> Callable[[Path], None]:
    if fmt == "csv":
        return lambda path: df.to_csv(path, index=False)

    def write(path: Path) -> None:
        path.write_text(json.dumps(df.to_dict(orient="records"), indent=2, default=str))

    return write
