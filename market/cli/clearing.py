"""Commands that clear: ``clear``, ``compare``, ``sweep`` and ``designs list/show``."""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from market.clearing.options import BACKEND_OPTION, DEFAULT_HIGHS_OPTIONS, Backend
from market.cli.console import (
    EXIT_FAILED,
    emit_json,
    exit_on_error,
    load_or_exit,
    log,
    progress,
    say,
)
from market.enums import DEFAULT_PRICING, Pricing
from market.errors import BatchError, SolverError

if TYPE_CHECKING:  # imported where used: `flexmarket` starts (and spawns a worker) without pandas
    from market.clearing.results import ClearingResult
    from market.design.spec import Design
    from market.io.batch import Batch


def clear(
    batch: Annotated[Path, typer.Argument(help="batch folder")],
    design: Annotated[str, typer.Option(help="preset name or design .toml")] = "single",
    pricing: Annotated[Pricing, typer.Option(help="how awards are paid")] = DEFAULT_PRICING,
    out: Annotated[Path, typer.Option(help="run folder to write")] = Path("runs/run"),
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address: model parts, or the stretches of a large batch, run there"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the run's metrics as JSON")] = False,
    force: Annotated[bool, typer.Option(help="replace OUT even if it is not an earlier run")] = False,
    mip_gap: Annotated[
        float, typer.Option(help="relative MIP gap at which HiGHS stops (0 <= gap < 1; integer bids only)")
    ] = DEFAULT_HIGHS_OPTIONS["mip_rel_gap"],
    time_limit: Annotated[
        float, typer.Option(help="seconds per MILP; then the best feasible solution is kept and its gap reported")
    ] = DEFAULT_HIGHS_OPTIONS["time_limit"],
    backend: Annotated[
        Backend, typer.Option(help="how models reach HiGHS: straight through highspy, or through cvxpy")
    ] = Backend.HIGHSPY,
) -> None:
    """Clear a batch under one design and write the run folder.

    Batches of 500,000 bid-intervals or more are cleared stretch by stretch (the same run).
    """
    options = {**mip_limits(mip_gap, time_limit), BACKEND_OPTION: backend.value}
    t0 = time.perf_counter()
    stretches = streamed_stretches(batch, scheduler)
    with workers_ahead(stretches):
        # imported once the workers are on their way (they import the same meanwhile)
        from market.clearing.run import clear as do_clear
        from market.clearing.runfolder import RUN_KIND, write_run
        from market.design.spec import load_design
        from market.io.place import check_target

        b = load_or_exit(batch)
        t1 = time.perf_counter()
        with exit_on_error():
            spec = load_design(design)
            check_target(out, RUN_KIND, force, inputs=[batch, design if design.endswith(".toml") else None])
        with (
            progress(f"clearing {spec.name}", len(spec.steps)) as step_started,
            exit_on_error(EXIT_FAILED, invalid=(BatchError,)),
        ):
            result = do_clear(
                b,
                spec,
                pricing,
                scheduler=scheduler,
                progress=step_started,
                solver_options=options,
            )
    t2 = time.perf_counter()
    params = {
        "design": design,
        "pricing": pricing.value,
        "mip_gap": mip_gap,
        "time_limit_s": time_limit,
        "backend": backend.value,
    }
    with exit_on_error():
        write_run(out, b, result, params, {"load": t1 - t0, "clear": t2 - t1}, force)
    log.info("run written to %s", out)
    if as_json:
        emit_json({"run": str(out), "design": spec.name, "pricing": pricing.value, "metrics": result.metrics})
    from market.cli.render import metrics_table

    say(metrics_table(result.design.name, result.metrics), f"run written to [bold]{out}[/]")


def streamed_stretches(batch: Path, scheduler: str | None) -> int:
    """How many stretches a local clear of ``batch`` will stream, as its bids file's
    Parquet footer tells (0: not streamed, or on the cluster at ``scheduler``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from market.clearing.sizing import STREAM_FROM_BIDS, stretch_count

    path = batch / "bids.parquet"
    try:
        rows = pq.ParquetFile(path).metadata.num_rows if path.is_file() and not scheduler else 0
    except (OSError, pa.ArrowException):  # a broken file: loading names it
        rows = 0
    return stretch_count(rows) if rows >= STREAM_FROM_BIDS else 0


def workers_ahead(stretches: int) -> contextlib.AbstractContextManager[None]:
    """Start the local worker pool of a streamed clear of ``stretches`` (0: none) before the
    batch is read: its workers import the clearing code while this process reads the batch."""
    from market.clearing.parallel import warm_workers
    from market.clearing.sizing import WORKERS

    if not stretches:
        return contextlib.nullcontext()
    return warm_workers(WORKERS, preload=("market.clearing.run",))


def mip_limits(mip_gap: float, time_limit: float) -> dict[str, float]:
    """HiGHS options from ``--mip-gap`` and ``--time-limit``, refused unless sensible."""
    if not (math.isfinite(mip_gap) and 0.0 <= mip_gap < 1.0):
        raise typer.BadParameter(f"a relative gap in [0, 1), not {mip_gap}", param_hint="--mip-gap")
    if not (math.isfinite(time_limit) and time_limit > 0.0):
        raise typer.BadParameter(f"a positive number of seconds, not {time_limit}", param_hint="--time-limit")
    return {"mip_rel_gap": mip_gap, "time_limit": time_limit}


CORE_DESIGNS = "single,dso-led,tso-only"


def needs_report(what: str) -> None:
    """Exit 2, naming the extra, when plotly (the ``report`` extra) is missing."""
    from market.extras import Extra, require

    with exit_on_error():
        require(Extra.REPORT, what)


def design_list(designs: str) -> list[str]:
    from market.design.spec import preset_names

    names = [d.strip() for d in designs.split(",") if d.strip()]
    return preset_names() if names == ["all"] else names


def run_compare(
    b: Batch, designs: list[str], pricing: Pricing, out: Path, scheduler: str | None, force: bool = False
) -> list[ClearingResult]:
    """Clear every design, write each run folder, comparison.parquet and report.html."""
    from market.analysis.compare import compare as do_compare
    from market.design.spec import load_design

    with exit_on_error():
        specs = [load_design(d) for d in designs]
    with progress(f"clearing {len(specs)} designs", sum(len(s.steps) for s in specs)) as step_started:
        return do_compare(b, specs, pricing, out=out, scheduler=scheduler, progress=step_started, force=force)


def compare(
    batch: Annotated[Path, typer.Argument(help="batch folder")],
    designs: Annotated[
        str, typer.Option(help="comma-separated presets or .toml paths; 'all' for every preset")
    ] = CORE_DESIGNS,
    pricing: Annotated[Pricing, typer.Option(help="how awards are paid")] = DEFAULT_PRICING,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/compare"),
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print every design's metrics as JSON")] = False,
    force: Annotated[bool, typer.Option(help="replace OUT even if it is not an earlier comparison")] = False,
) -> None:
    """Clear the same batch under several designs; write comparison.parquet and report.html."""
    needs_report("flexmarket compare (its report.html)")
    b = load_or_exit(batch)
    with exit_on_error(failed=(SolverError,)):
        results = run_compare(b, design_list(designs), pricing, out, scheduler, force)
    if as_json:
        emit_json(
            {"folder": str(out), "pricing": pricing.value, "metrics": {r.design.name: r.metrics for r in results}}
        )
    from market.cli.render import comparison_rich

    say(comparison_rich(results), f"report: [bold]{out / 'report.html'}[/]")


SWEEP_KIND = "sweep"


def sweep(
    batch: Annotated[Path, typer.Argument(help="batch folder")],
    grid: Annotated[Path, typer.Option(help="sweep.toml with a \\[grid] table")],
    designs: Annotated[str, typer.Option(help="comma-separated designs, or 'all'")] = ("single,dso-led,tso-only"),
    pricing: Annotated[Pricing, typer.Option(help="how awards are paid")] = DEFAULT_PRICING,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/sweep"),
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler, e.g. tcp://127.0.0.1:8786 (default: a local cluster)")
    ] = None,
    force: Annotated[bool, typer.Option(help="replace OUT even if it is not an earlier sweep")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Run designs over a grid of parameters, fanned out with Dask; one table, one report."""
    needs_report("flexmarket sweep (its report.html)")
    from market.extras import Extra, require

    with exit_on_error():
        require(Extra.DASK, "flexmarket sweep")
    from market.analysis.compare import batch_input_hashes
    from market.analysis.sweep import load_grid, run_sweep, sweep_figure
    from market.io.place import check_target, publish_folder
    from market.io.read import sha256_file
    from market.io.write import output_manifest, write_json

    b = load_or_exit(batch)
    with exit_on_error(failed=(SolverError,)):
        check_target(out, SWEEP_KIND, force, inputs=[batch, grid])  # refused before the sweep runs, not after
        points = load_grid(grid)
        names = design_list(designs)
        log.info("sweep: %d grid points x %d designs on Dask", len(points), len(names))
        results = run_sweep(b, names, points, pricing, scheduler)

    def build(tmp: Path) -> None:
        write_json(
            tmp / "manifest.json",
            output_manifest(
                SWEEP_KIND,
                {**batch_input_hashes(b), "grid": sha256_file(grid)},
                {"designs": designs, "pricing": pricing.value, "points": len(points)},
            ),
        )
        results.to_parquet(tmp / "sweep.parquet", index=False)
        sweep_figure(results).write_html(tmp / "report.html", include_plotlyjs="inline")

    with exit_on_error():
        publish_folder(out, SWEEP_KIND, build, force, inputs=[batch, grid])
    if as_json:
        emit_json({"folder": str(out), "rows": results.to_dict(orient="records")})
    wide = results[results["metric"] == "system_cost_eur"].pivot_table(index="point", columns="design", values="value")
    t = Table(title="system cost (EUR) per grid point and design")
    t.add_column("point")
    for d in wide.columns:
        t.add_column(str(d), justify="right")
    for point, row in wide.iterrows():
        t.add_row(str(point), *[f"{v:,.0f}" for v in row])
    say(t, f"{len(results)} rows -> [bold]{out / 'sweep.parquet'}[/], report.html")


def designs_list(
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """The preset designs with the report sections they come from."""
    from market.design.spec import load_design, preset_names

    if as_json:
        emit_json(
            [
                {
                    "name": d.name,
                    "title": d.title,
                    "steps": [s.name for s in d.steps],
                    "report_section": d.report_section,
                }
                for d in (load_design(n) for n in preset_names())
            ]
        )

    t = Table(title="designs")
    for c in ("name", "title", "steps", "report section"):
        t.add_column(c)
    for name in preset_names():
        d = load_design(name)
        t.add_row(name, d.title, " -> ".join(s.name for s in d.steps), d.report_section)
    say(t)


def designs_show(name: Annotated[str, typer.Argument(help="preset or .toml path")]) -> None:
    """A design's steps and its coordination skeleton (who instructs whom)."""
    from market.design.skeleton import skeleton_text
    from market.design.spec import load_design

    with exit_on_error():
        d = load_design(name)
    say(f"[bold]{escape(d.title)}[/] ({escape(d.name)}) — report section {escape(d.report_section)}")
    if d.description:
        say(escape(d.description))
    say(step_table(d))
    say(Text(skeleton_text(d)))


def step_table(design: Design) -> Table:
    """Every setting of every step, one column per step (defaults included)."""
    steps = design.as_dict()["steps"]
    t = Table(title=f"steps of {design.name}")
    t.add_column("setting")
    for s in steps:
        t.add_column(escape(str(s["name"])))
    from dataclasses import fields

    from market.design.spec import Step

    keys = list(dict.fromkeys(k for s in steps for k in s))  # a flag a step leaves off is not in its dict
    defaults = {f.name: f.default for f in fields(Step)}
    for key in keys:
        if key == "name":
            continue
        t.add_row(key, *[escape(_setting(s.get(key, defaults.get(key)))) for s in steps])
    return t


def _setting(value: object) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {' > '.join(v)}" for k, v in value.items()) or "(default)"
    if isinstance(value, list | tuple):
        return " > ".join(str(v) for v in value) if value else "-"
    return "-" if value is None else str(value)


SEASON_KIND = "season"


def season(
    days: Annotated[Path, typer.Argument(help="folder of day batches (one batch folder per day)")],
    designs: Annotated[str, typer.Option(help="comma-separated presets or .toml paths; 'all' for every preset")] = (
        "all"
    ),
    pricing: Annotated[Pricing, typer.Option(help="how awards are paid")] = DEFAULT_PRICING,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/season"),
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (default: local worker processes)")
    ] = None,
    voll_factors: Annotated[
        str, typer.Option(help="comma-separated VoLL multipliers for a sensitivity, e.g. 0.1,1,10")
    ] = "1",
    force: Annotated[bool, typer.Option(help="replace OUT even if it is not an earlier season")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the rankings as JSON")] = False,
) -> None:
    """Compare designs over many days: each measured risk as median and range across the days,
    the share of days on which each design is best, and the ranking's sensitivity to VoLL."""
    from market.analysis.season import day_folders, run_season
    from market.analysis.season_report import season_html
    from market.io.place import check_target, publish_folder
    from market.io.read import sha256_file
    from market.io.write import output_manifest, write_json

    with exit_on_error():
        try:
            factors = [float(f) for f in voll_factors.split(",") if f.strip()]
        except ValueError as exc:
            raise BatchError(f"--voll-factors {voll_factors!r}: numbers separated by commas") from exc
        if not factors or not all(math.isfinite(f) and 0 < f <= 1000 for f in factors) or 1.0 not in factors:
            raise BatchError(f"--voll-factors {voll_factors!r}: positive numbers up to 1000, including 1")
        folders = day_folders(days)
        check_target(out, SEASON_KIND, force, inputs=[days])
    names = design_list(designs)
    log.info("season: %d days x %d designs x %d VoLL factor(s)", len(folders), len(names), len(factors))
    with exit_on_error(failed=(SolverError,)):
        per_day, summary, rankings = run_season(days, names, pricing, scheduler, factors)
    hashes = {f"{p.name}/batch.toml": sha256_file(p / "batch.toml") for p in folders}

    def build(tmp: Path) -> None:
        options = {"designs": names, "pricing": pricing.value, "days": len(folders), "voll_factors": factors}
        write_json(tmp / "manifest.json", output_manifest(SEASON_KIND, hashes, options))
        per_day.to_parquet(tmp / "days.parquet", index=False)
        summary.to_parquet(tmp / "summary.parquet", index=False)
        rankings.to_parquet(tmp / "rankings.parquet", index=False)
        (tmp / "report.html").write_text(season_html(summary, rankings, f"Designs over {len(folders)} days"))

    with exit_on_error():
        publish_folder(out, SEASON_KIND, build, force, inputs=[days])
    if as_json:
        emit_json({"folder": str(out), "days": len(folders), "rankings": rankings.to_dict(orient="records")})
    cost = rankings[(rankings["risk"] == "cost") & (rankings["voll_factor"] == 1.0)]
    t = Table(title=f"{len(folders)} days: share of days with the lowest system cost")
    t.add_column("design")
    t.add_column("share of days", justify="right")
    for row in cost.sort_values("share_best", ascending=False).itertuples():
        t.add_row(str(row.design), f"{row.share_best:.0%}")
    say(t, f"report: [bold]{out / 'report.html'}[/]")
