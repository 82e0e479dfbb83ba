"""``network import``: a batch's network tables from a pandapower, SimBench or PyPSA grid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from market.cli.console import emit_json, exit_on_error, log, say
from market.errors import NetworkError

if TYPE_CHECKING:
    import pandas as pd

TABLES = ("constraints", "sensitivities", "node_areas")


def network_import(
    source: Annotated[
        str,
        typer.Argument(
            help="pandapower .json file, pandapower:<case> (e.g. pandapower:case30), SimBench code, or PyPSA .nc/.h5"
        ),
    ],
    out: Annotated[Path, typer.Option(help="batch folder to write the three tables into")],
    dso: Annotated[str, typer.Option(help="DSO id of the grid's distribution branches and nodes")] = "dso1",
    tso_min_kv: Annotated[float, typer.Option(help="branches at or above this voltage belong to the TSO")] = 110.0,
    start: Annotated[
        str | None, typer.Option(help="first interval (UTC ISO 8601) for base flows from profiles")
    ] = None,
    intervals: Annotated[int, typer.Option(help="number of intervals of base flows from profiles")] = 0,
    interval_minutes: Annotated[int, typer.Option(help="interval length of the profiles")] = 15,
    ac: Annotated[
        bool, typer.Option("--ac", help="base flows from an AC power flow (default: DC, as the PTDF)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the row counts as JSON")] = False,
) -> None:
    """Write constraints (branch limits, owner by voltage), PTDF sensitivities and node areas
    of a grid model; base flows from a DC power flow, per interval from SimBench profiles."""
    from market.extras import Extra, require

    with exit_on_error():
        require(Extra.GRIDS, "flexmarket network import")
    from market.io.grid import load_network_tables
    from market.io.place import check_new_files, publish_files

    source_file = source if Path(source).exists() else None
    with exit_on_error():
        # the three tables in either format would clash with what a batch folder already has
        check_new_files(out, [f"{t}.{ext}" for t in TABLES for ext in ("parquet", "csv")], inputs=[source_file])
        when = _utc(start) if start else None
        tables = load_network_tables(
            source, dso_id=dso, tso_min_kv=tso_min_kv, start=when, intervals=intervals, minutes=interval_minutes, ac=ac
        )
        writers = {f"{name}.parquet": _parquet_writer(df) for name, df in tables.items()}
        publish_files(out, writers, inputs=[source_file])
    counts = {name: len(df) for name, df in tables.items()}
    log.info("network tables of %s written to %s", source, out)
    if as_json:
        emit_json({"source": source, "folder": str(out), "rows": counts})
    say(f"{source}: " + ", ".join(f"{n} {k:,} rows" for n, k in counts.items()) + f" -> [bold]{out}[/]")


def _parquet_writer(df: pd.DataFrame) -> Callable[[Path], None]:
    return lambda path: df.to_parquet(path, index=False)


def _utc(text: str) -> pd.Timestamp:
    import pandas as pd

    try:
        ts = pd.Timestamp(text)
    except ValueError as exc:
        raise NetworkError(f"--start {text!r} is not a timestamp") from exc
    if ts.tzinfo is None:
        raise NetworkError(f"--start {text!r} has no timezone; give an offset such as +00:00")
    return ts.tz_convert("UTC")
