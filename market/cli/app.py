"""The ``flexmarket`` command line (typer + rich)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from market.errors import (
    FlexmarketError,
    StoreConflictError,
    StoreUnavailableError,
)
from market.io.batch import Batch
from market.io.read import load_batch, sha256_file
from market.io.write import output_manifest, write_batch, write_json

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Clear and settle distribution-level flexibility markets."
)
designs_app = typer.Typer(no_args_is_help=True, help="List and show coordination designs.")
app.add_typer(designs_app, name="designs")
baselines_app = typer.Typer(no_args_is_help=True, help="M&V baseline methods.")
app.add_typer(baselines_app, name="baselines")
_WIDTH = None if sys.stdout.isatty() else 160  # logs and pipes get wide, untruncated tables
console = Console(width=_WIDTH)
err = Console(stderr=True)

EXIT_INVALID = 2
EXIT_FAILED = 1


@contextlib.contextmanager
def _exit_on_error(code: int = EXIT_INVALID, failed: tuple[type[FlexmarketError], ...] = ()) -> Iterator[None]:
    """Report a flexmarket error as one red message (no traceback) and exit with ``code``,
    or with EXIT_FAILED for the ``failed`` kinds (the inputs were fine, the job was not)."""
    try:
        yield
    except FlexmarketError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_FAILED if isinstance(exc, failed) else code) from exc


def _load(folder: Path) -> Batch:
    with _exit_on_error():
        return load_batch(folder)


def summary_tables(batch: Batch) -> list[Table]:
    cfg = batch.config
    head = Table(title=f"batch {cfg.name}", show_header=False)
    head.add_row(
        "horizon",
        f"{cfg.start.isoformat()} to {cfg.end.isoformat()} ({len(cfg.intervals)} x {cfg.interval_minutes} min)",
    )
    head.add_row("DSOs", ", ".join(batch.dsos))
    head.add_row("areas", str(batch.node_areas["area_id"].nunique()))
    for name in ("bids", "needs", "node_areas", "constraints", "sensitivities", "signals"):
        head.add_row(f"rows: {name}", str(len(batch.table(name))))
    offered = Table(title="MW offered (sum over intervals)")
    offered.add_column("DSO")
    offered.add_column("up MW", justify="right")
    offered.add_column("down MW", justify="right")
    pivot = batch.bids.pivot_table(
        index="dso_id", columns="direction", values="quantity_mw", aggfunc="sum", fill_value=0.0
    )
    for dso, row in pivot.iterrows():
        offered.add_row(str(dso), f"{row.get('up', 0.0):.3f}", f"{row.get('down', 0.0):.3f}")
    needs = Table(title="needs per buyer")
    for c in ("buyer", "service", "rows", "MW"):
        needs.add_column(c)
    g = batch.needs.groupby(["buyer_id", "service"])["quantity_mw"].agg(["size", "sum"])
    for (buyer, service), row in g.iterrows():
        needs.add_row(str(buyer), str(service), str(int(row["size"])), f"{row['sum']:.3f}")
    if len(batch.signals):
        sig = batch.signals["state"].value_counts()
        head.add_row("signals", ", ".join(f"{k}: {v}" for k, v in sorted(sig.items())))
    return [head, offered, needs]


@app.command()
def validate(
    batch: Annotated[Path, typer.Argument(help="batch folder")],
    meter: Annotated[Path | None, typer.Option(help="also check a meter data file")] = None,
) -> None:
    """Check a batch (and meter data); print a summary, or every bad row (exit 2)."""
    from market.io.read import load_meter_table

    b = _load(batch)
    for t in summary_tables(b):
        console.print(t)
    if meter is not None:
        with _exit_on_error():
            m = load_meter_table(meter)
        dup = int(m.duplicated(["der_id", "interval_start"]).sum())
        console.print(
            f"meter: {len(m):,} rows, {m['der_id'].nunique()} DER, "
            f"{m['interval_start'].min().isoformat()} to "
            f"{m['interval_start'].max().isoformat()}; {dup} duplicate readings "
            "(settled as findings)"
        )
    console.print("[green]valid[/]")


@app.command()
def clear(
    batch: Annotated[Path, typer.Argument(help="batch folder")],
    design: Annotated[str, typer.Option(help="preset name or design .toml")] = "single",
    pricing: Annotated[str, typer.Option(help="pay-as-bid or pay-as-clear")] = "pay-as-bid",
    out: Annotated[Path, typer.Option(help="run folder to write")] = Path("runs/run"),
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address")] = None,
) -> None:
    """Clear a batch under one design and write the run folder."""
    from market.clearing.run import clear as do_clear
    from market.clearing.runfolder import write_run

    t0 = time.perf_counter()
    b = _load(batch)
    t1 = time.perf_counter()
    with _progress() as prog:
        task = prog.add_task("clearing", total=None)
        with _exit_on_error(EXIT_FAILED):
            result = do_clear(
                b, design, pricing, scheduler=scheduler, progress=lambda s: prog.update(task, description=s)
            )
    t2 = time.perf_counter()
    write_run(out, b, result, {"design": design, "pricing": pricing}, {"load": t1 - t0, "clear": t2 - t1})
    console.print(metrics_table(result.design.name, result.metrics))
    console.print(f"run written to [bold]{out}[/]")


def metrics_table(name: str, metrics: dict) -> Table:  # type: ignore[type-arg]
    t = Table(title=f"metrics: {name}")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in metrics.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b:.3f}" if isinstance(b, float) else f"{a}={b}" for a, b in v.items())
        elif isinstance(v, float):
            v = f"{v:,.3f}"
        t.add_row(k, str(v))
    return t


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True)


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="batch folder to write")],
    bids: Annotated[int, typer.Option(help="bids (DER) per interval")] = 200,
    intervals: Annotated[int, typer.Option()] = 96,
    dsos: Annotated[int, typer.Option()] = 2,
    seed: Annotated[int, typer.Option()] = 0,
    integer_share: Annotated[float, typer.Option(help="share of all-or-nothing DER")] = 0.0,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Write a deterministic synthetic batch of any size."""
    from market.io.synth import SynthSpec, synth_batch

    b = synth_batch(SynthSpec(bids=bids, intervals=intervals, dsos=dsos, seed=seed, integer_share=integer_share))
    write_batch(b, out, fmt)
    console.print(f"wrote {len(b.bids)} bids, {len(b.needs)} needs to {out}")


@designs_app.command("list")
def designs_list() -> None:
    """The preset designs with the report sections they come from."""
    from market.design.spec import load_design, preset_names

    t = Table(title="designs")
    for c in ("name", "title", "steps", "report section"):
        t.add_column(c)
    for name in preset_names():
        d = load_design(name)
        t.add_row(name, d.title, " -> ".join(s.name for s in d.steps), d.report_section)
    console.print(t)


@designs_app.command("show")
def designs_show(name: Annotated[str, typer.Argument(help="preset or .toml path")]) -> None:
    """A design's steps and its coordination skeleton (who instructs whom)."""
    from market.design.skeleton import skeleton_text
    from market.design.spec import load_design

    with _exit_on_error():
        d = load_design(name)
    console.print(f"[bold]{d.title}[/] ({d.name}) — report section {d.report_section}")
    if d.description:
        console.print(d.description)
    console.print(skeleton_text(d), highlight=False, markup=False)


@app.command()
def settle(
    run: Annotated[Path, typer.Option(help="clearing run folder")],
    meter: Annotated[Path, typer.Option(help="meter data Parquet")],
    out: Annotated[Path, typer.Option(help="output folder")],
    config: Annotated[Path | None, typer.Option(help="settle.toml")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store (default: DuckDB file in OUT)")] = None,
) -> None:
    """Settle a clearing run against meter data; versioned statements into the store."""
    from settlement import settle as do_settle

    with _exit_on_error(failed=(StoreConflictError, StoreUnavailableError)), _progress() as prog:
        prog.add_task("settling", total=None)
        r = do_settle(run, meter, config, db=db, out=out)
    console.print(statements_rich(r))
    console.print(
        f"{len(r.new_versions)} new statement version(s); {len(r.findings)} finding(s); written to [bold]{out}[/]"
    )


def statements_rich(r) -> Table:  # type: ignore[no-untyped-def]
    t = Table(title=f"statements {r.period}")
    for c in (
        "aggregator",
        "buyer",
        "lines",
        "unverifiable",
        "awarded MWh",
        "allocated MWh",
        "shortfall MWh",
        "payment EUR",
        "make-whole EUR",
        "penalty EUR",
        "net EUR",
    ):
        t.add_column(c, justify="right")
    for s in r.statements.itertuples():
        t.add_row(
            s.aggregator_id,
            s.buyer_id,
            str(s.lines),
            str(s.unverifiable_lines),
            f"{s.awarded_mwh:.3f}",
            f"{s.allocated_mwh:.3f}",
            f"{s.shortfall_mwh:.3f}",
            f"{s.payment_eur:,.2f}",
            f"{s.make_whole_eur:,.2f}",
            f"{s.penalty_eur:,.2f}",
            f"{s.net_eur:,.2f}",
        )
    return t


@baselines_app.command("evaluate")
def baselines_evaluate(
    meter: Annotated[Path, typer.Option(help="meter data Parquet")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/baselines"),
    config: Annotated[Path | None, typer.Option(help="settle.toml (holidays, timezone)")] = None,
    window: Annotated[str, typer.Option(help="placebo event window, local HH:MM-HH:MM")] = ("17:00-20:00"),
    days: Annotated[int, typer.Option(help="placebo days per DER")] = 20,
) -> None:
    """Score every baseline method on placebo days: bias, NMAE, RRMSE; table and plot."""
    from settlement.config import load_config
    from settlement.evaluate import accuracy_figure, evaluate

    cfg = load_config(config)
    lo, hi = window.split("-")
    scores, summary = evaluate(meter, cfg, window=(lo, hi), placebo_days=days)
    out.mkdir(parents=True, exist_ok=True)
    inputs = {"meter": sha256_file(meter), **({"config": sha256_file(config)} if config else {})}
    write_json(
        out / "manifest.json",
        output_manifest(
            "baseline-evaluation", inputs, {"window": window, "placebo_days": days, "settle_config": cfg.as_dict()}
        ),
    )
    scores.to_parquet(out / "baseline_scores.parquet", index=False)
    summary.to_parquet(out / "baseline_summary.parquet", index=False)
    accuracy_figure(scores).write_html(out / "baseline_accuracy.html", include_plotlyjs="inline")
    t = Table(title="baseline accuracy on placebo days (median over DER)")
    for c in ("method", "DER", "bias", "NMAE", "RRMSE", "share within 20% RRMSE"):
        t.add_column(c, justify="right")
    for s in summary.itertuples():
        t.add_row(
            s.method,
            str(s.der),
            f"{s.median_bias:+.3f}",
            f"{s.median_nmae:.3f}",
            f"{s.median_rrmse:.3f}",
            f"{s.within_20pct:.0%}",
        )
    console.print(t)
    console.print(f"scores and plot in [bold]{out}[/]")


@app.command()
def sweep(
    batch: Annotated[Path, typer.Argument(help="batch folder")],
    grid: Annotated[Path, typer.Option(help="sweep.toml with a [grid] table")],
    designs: Annotated[str, typer.Option(help="comma-separated designs, or 'all'")] = ("single,dso-led,tso-only"),
    pricing: Annotated[str, typer.Option()] = "pay-as-clear",
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/sweep"),
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler, e.g. tcp://127.0.0.1:8786 (default: a local cluster)")
    ] = None,
) -> None:
    """Run designs over a grid of parameters, fanned out with Dask; one table, one report."""
    from market.analysis.sweep import load_grid, run_sweep, sweep_figure

    b = _load(batch)
    with _exit_on_error():
        points = load_grid(grid)
        with _progress() as prog:
            prog.add_task(f"{len(points)} grid points x designs on Dask", total=None)
            results = run_sweep(b, _design_list(designs), points, pricing, scheduler)
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "manifest.json",
        output_manifest(
            "sweep",
            {**_batch_inputs(b), "grid": sha256_file(grid)},
            {"designs": designs, "pricing": pricing, "points": len(points)},
        ),
    )
    results.to_parquet(out / "sweep.parquet", index=False)
    sweep_figure(results).write_html(out / "report.html", include_plotlyjs="inline")
    wide = results[results["metric"] == "system_cost_eur"].pivot_table(index="point", columns="design", values="value")
    t = Table(title="system cost (EUR) per grid point and design")
    t.add_column("point")
    for d in wide.columns:
        t.add_column(str(d), justify="right")
    for point, row in wide.iterrows():
        t.add_row(str(point), *[f"{v:,.0f}" for v in row])
    console.print(t)
    console.print(f"{len(results)} rows -> [bold]{out / 'sweep.parquet'}[/], report.html")


CORE_DESIGNS = "single,dso-led,tso-only"


def _batch_inputs(b: Batch) -> dict[str, str]:
    return {f"batch/{name}": sha for name, sha in b.file_hashes.items()}


def _design_list(designs: str) -> list[str]:
    from market.design.spec import preset_names

    names = [d.strip() for d in designs.split(",") if d.strip()]
    return preset_names() if names == ["all"] else names


def run_compare(b: Batch, designs: list[str], pricing: str, out: Path, scheduler: str | None) -> list:  # type: ignore[type-arg]
    """Clear every design, write each run folder, comparison.parquet and report.html."""
    from market.analysis.comparison import clear_designs, comparison_table
    from market.analysis.report import render_report
    from market.clearing.runfolder import write_run

    t0 = time.perf_counter()
    with _progress() as prog:
        task = prog.add_task(f"clearing {len(designs)} designs", total=None)
        results = clear_designs(b, designs, pricing, scheduler, progress=lambda s: prog.update(task, description=s))
    t1 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        write_run(
            out / "runs" / r.design.name,
            b,
            r,
            {"design": r.design.name, "pricing": pricing},
            {"clear_all_designs": t1 - t0},
        )
    write_json(
        out / "manifest.json", output_manifest("comparison", _batch_inputs(b), {"designs": designs, "pricing": pricing})
    )
    table = comparison_table(results)
    table.to_parquet(out / "comparison.parquet", index=False)
    (out / "report.html").write_text(render_report(b, results))
    return results


@app.command()
def compare(
    batch: Annotated[Path, typer.Argument(help="batch folder")],
    designs: Annotated[
        str, typer.Option(help="comma-separated presets or .toml paths; 'all' for every preset")
    ] = CORE_DESIGNS,
    pricing: Annotated[str, typer.Option(help="pay-as-bid or pay-as-clear")] = "pay-as-clear",
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/compare"),
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address")] = None,
) -> None:
    """Clear the same batch under several designs; write comparison.parquet and report.html."""
    b = _load(batch)
    with _exit_on_error(EXIT_FAILED):
        results = run_compare(b, _design_list(designs), pricing, out, scheduler)
    console.print(comparison_rich(results))
    console.print(f"report: [bold]{out / 'report.html'}[/]")


SHORT = [
    ("system_cost_eur", "system cost EUR"),
    ("unmet_mwh", "unmet MWh"),
    ("distribution_violation_mwh", "viol. MWh"),
    ("imbalance_mwh", "imbal. MWh"),
    ("tier_bypassing_count", "bypass"),
    ("hidden_coupling_der_intervals", "coupling"),
    ("observability_min", "observ."),
    ("latency_s_max", "latency s"),
    ("cyber_exposure_parties", "cyber"),
]


def comparison_rich(results: list) -> Table:  # type: ignore[type-arg]
    t = Table(title="design comparison (details in report.html)")
    t.add_column("design")
    for _, label in SHORT:
        t.add_column(label, justify="right")
    for r in results:
        t.add_row(r.design.name, *[_short(r.metrics.get(k, float("nan"))) for k, _ in SHORT])
    return t


def _short(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}".rstrip("0").rstrip(".") or "0"


@app.command()
def demo(
    data: Annotated[Path, typer.Option(help="folder with sample/ and meter.parquet")] = Path("data"),
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/sample"),
) -> None:
    """The main job on the sample: validate, clear every preset design, compare, settle."""
    # (the settlement store in OUT/settlement keeps versions across demo runs)
    b = _load(data / "sample")
    for t in summary_tables(b):
        console.print(t)
    results = run_compare(b, _design_list("all"), "pay-as-clear", out, None)
    console.print(comparison_rich(results))
    console.print(f"report: [bold]{out / 'report.html'}[/]")
    from settlement import settle as do_settle

    r = do_settle(out / "runs" / "single", data / "meter.parquet", data / "settle.toml", out=out / "settlement")
    console.print(statements_rich(r))
    console.print(
        f"settlement of the single run: {len(r.new_versions)} new statement "
        f"version(s), {len(r.findings)} finding(s) -> {out / 'settlement'}"
    )


def main() -> None:  # pragma: no cover
    app()
