"""``demo``: the main job on the contested sample (validate, clear every preset, compare,
settle). ``data/contested-forecast`` is ``data/contested`` (a day on which the designs must
disagree) with forecasts of its base flows and information paths: every preset decides at
its gates on what reached it, and the report measures the consequences; ``data/sample``
(the earlier, milder day) stays for the tests and as a second example."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import market
from market.cli.clearing import design_list, run_compare
from market.cli.console import EXIT_INVALID, err, exit_on_error, load_or_exit, log, say
from market.enums import DEFAULT_PRICING
from market.errors import SolverError

# the contested day with forecasts and information paths (data/make_contested_forecasts.py):
# every preset decides at its gates on what reached it
BATCH, METER = "contested-forecast", "contested_meter.parquet"
SAMPLE_FILES = (f"{BATCH}/batch.toml", METER, "settle.toml")


def find_sample(given: Path | None) -> Path:
    """The folder with ``contested/``, its meter data and ``settle.toml``: the one given, else
    ``./data``, else the ``data/`` folder beside the installed package (a source checkout)."""
    candidates = [given] if given else [Path("data"), Path(market.__file__).resolve().parents[1] / "data"]
    for folder in candidates:
        if folder is not None and all((folder / f).is_file() for f in SAMPLE_FILES):
            return folder
    tried = ", ".join(str(c) for c in candidates)
    err.print(
        f"[bold red]error:[/] no sample data in {tried} (it needs {', '.join(SAMPLE_FILES)}); "
        "run from a flexmarket checkout, or pass --data PATH/TO/data"
    )
    raise typer.Exit(EXIT_INVALID)


def demo(
    data: Annotated[
        Path | None, typer.Option(help="folder with contested/, contested_meter.parquet, settle.toml")
    ] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/sample"),
) -> None:
    """The main job on the contested sample: validate, clear every preset design, compare, settle."""
    # (the settlement store in OUT/settlement keeps versions across demo runs)
    from market.cli.clearing import needs_report
    from market.cli.render import comparison_rich, findings_rich, statements_rich, summary_tables

    needs_report("flexmarket demo (its report.html)")

    folder = find_sample(data)
    log.info("sample data from %s", folder)
    b = load_or_exit(folder / BATCH)
    say(*summary_tables(b))
    compared = out / "compare"  # replaced whole on a re-run; the settlement store beside it stays
    with exit_on_error(failed=(SolverError,)):
        results = run_compare(b, design_list("all"), DEFAULT_PRICING, compared, None)
    say(comparison_rich(results), f"report: [bold]{compared / 'report.html'}[/]")
    from settlement import settle as do_settle

    r = do_settle(compared / "runs" / "single", folder / METER, folder / "settle.toml", out=out / "settlement")
    say(statements_rich(r), findings_rich(r.findings))
    say(
        f"settlement of the single run: {len(r.new_versions)} new statement "
        f"version(s), {len(r.findings)} finding(s) -> {out / 'settlement'}"
    )
    say(
        "One day is an example, not a finding. Over a season: "
        "python3 data/make_season.py --first 2016-09-05 --days 90 --out runs/days && "
        "flexmarket season runs/days --out runs/season"
    )
