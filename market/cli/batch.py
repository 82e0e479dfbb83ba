"""Commands on batches: ``validate`` and ``synth``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from market.cli.console import emit_json, exit_on_error, load_or_exit, say
from market.errors import FlexmarketError


def validate(
    batch: Annotated[Path, typer.Argument(help="batch folder")],
    meter: Annotated[Path | None, typer.Option(help="also check a meter data file (Parquet)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the row counts as JSON")] = False,
) -> None:
    """Check a batch (and meter data, exactly as settle does); print a summary, or every bad
    row (exit 2)."""
    from market.cli.render import summary_tables
    from market.io.batch import TABLE_NAMES

    b = load_or_exit(batch)
    lines: list[str] = []
    summary: dict[str, object] = {"batch": str(batch), "valid": True, "rows": {n: len(b.table(n)) for n in TABLE_NAMES}}
    if meter is not None:
        from settlement import check_meter

        with exit_on_error():
            m = check_meter(meter, b.config.interval_minutes)  # exactly what settle checks
        summary["meter"] = m
        lines.append(
            f"meter: {m['rows']:,} rows, {m['der']} DER, {m['first']} to {m['last']}; "
            f"{m['duplicate_readings']} duplicate readings (settled as findings)"
        )
    if as_json:
        emit_json(summary)
    say(*summary_tables(b), *lines, "[green]valid[/]")


def synth(
    out: Annotated[Path, typer.Option(help="batch folder to write")],
    bids: Annotated[int, typer.Option(help="bids (DER) per interval")] = 200,
    intervals: Annotated[int, typer.Option()] = 96,
    dsos: Annotated[int, typer.Option()] = 2,
    seed: Annotated[int, typer.Option()] = 0,
    integer_share: Annotated[float, typer.Option(help="share of all-or-nothing DER")] = 0.0,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Write a deterministic synthetic batch of any size (the bids in chunks: a 10^7 book
    never sits in memory as text; it is validated when it is loaded)."""
    from market.io.synth import SynthSpec, write_synth

    spec = SynthSpec(bids=bids, intervals=intervals, dsos=dsos, seed=seed, integer_share=integer_share)
    with exit_on_error():
        n = write_synth(spec, out, fmt)
    if as_json:
        emit_json({"batch": str(out), "bids": n, "intervals": intervals, "dsos": dsos, "seed": seed})
    say(f"wrote {n} bids to {out}")


FORECAST_KIND = "forecast-batch"  # no manifest: an existing folder is never replaced


def forecasts_make(
    batch: Annotated[Path, typer.Argument(help="batch folder whose actual state is forecast")],
    out: Annotated[Path, typer.Option(help="new batch folder: the batch with its forecasts table")],
    history: Annotated[
        Path | None, typer.Option(help="a batch of the days before (for the first day's day-ahead forecast)")
    ] = None,
    lead_minutes: Annotated[str, typer.Option(help="persistence lead times, minutes, comma-separated")] = "15,60",
    day_ahead_at: Annotated[str, typer.Option(help="when day-ahead forecasts are issued, UTC HH:MM")] = "12:00",
    as_json: Annotated[bool, typer.Option("--json", help="print the row counts as JSON")] = False,
) -> None:
    """Forecasts of a batch's state from its actuals: base flows the same time previous day
    (issued the day before at --day-ahead-at) and by persistence at each lead time; needs and
    bids' available MW the same time previous day; written with the batch."""
    import re

    from market.io.forecasts import make_forecasts
    from market.io.place import check_target, publish_folder
    from market.io.write import write_batch

    b = load_or_exit(batch)
    h = load_or_exit(history) if history is not None else None
    with exit_on_error():
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", day_ahead_at):
            raise FlexmarketError(f"--day-ahead-at {day_ahead_at!r}: UTC HH:MM, e.g. 12:00")
        try:
            leads = [int(x) for x in lead_minutes.split(",") if x.strip()]
        except ValueError as exc:
            raise FlexmarketError(f"--lead-minutes {lead_minutes!r}: whole minutes, comma-separated") from exc
        if not leads or not all(1 <= x <= 7 * 1440 for x in leads):
            raise FlexmarketError(f"--lead-minutes {lead_minutes!r}: each from 1 to 10080")
        check_target(out, FORECAST_KIND, inputs=[batch, history])
        table = make_forecasts(b, h, leads, day_ahead_at)
        with_forecasts = b.replace(forecasts=table)

        def build(tmp: Path) -> None:
            write_batch(with_forecasts, tmp)

        publish_folder(out, FORECAST_KIND, build, inputs=[batch, history])
    if as_json:
        emit_json({"batch": str(out), "forecasts": len(table)})
    say(f"{len(table):,} forecasts -> [bold]{out}[/]")
