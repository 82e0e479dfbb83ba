"""Commands that settle: ``settle`` and ``baselines evaluate`` (the CLI's only door into
:mod:`settlement`)."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from market.cli.console import emit_json, exit_on_error, log, say
from market.enums import RunType
from market.errors import OutOfMemoryError, StoreConflictError, StoreUnavailableError

if TYPE_CHECKING:
    import pandas as pd


class FailOn(StrEnum):
    """The finding severity from which ``settle --fail-on`` exits with EXIT_FINDINGS."""

    ERROR = "error"
    WARNING = "warning"
    NEVER = "never"


EXIT_FINDINGS = 3  # settled and stored, but findings at or above --fail-on (for cron)
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


def settle(
    run: Annotated[Path, typer.Option(help="clearing run folder")],
    meter: Annotated[Path, typer.Option(help="meter data Parquet")],
    out: Annotated[Path, typer.Option(help="output folder")],
    config: Annotated[Path | None, typer.Option(help="settle.toml")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store (default: DuckDB file in OUT)")] = None,
    scenario: Annotated[
        str, typer.Option(help="statements to settle into: actual, or a counterfactual's name (never touches actual)")
    ] = "actual",
    as_json: Annotated[
        bool, typer.Option("--json", help="print what changed, statements and findings as JSON")
    ] = False,
    fail_on: Annotated[
        FailOn, typer.Option(help=f"exit {EXIT_FINDINGS} (after storing) if a finding is this severe or worse")
    ] = FailOn.NEVER,
    run_type: Annotated[
        RunType | None,
        typer.Option("--type", help="initial, recalculation or correction (default: initial for a new period)"),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="why this run is made (recorded with it)")] = None,
) -> None:
    """Settle a clearing run against meter data; versioned statements into the store.
    A statement covers every market session settled into its scenario for its period.
    Prints what changed: every statement version added (with the version it replaced and
    the net before and after) and every changed line."""
    from market.cli.render import changes_rich, findings_rich, findings_summary, statements_rich
    from settlement import settle as do_settle

    log.info("settling %s against %s", run, meter)
    with exit_on_error(failed=(StoreConflictError, StoreUnavailableError, OutOfMemoryError)):
        r = do_settle(
            run, meter, config, db=db, out=out, scenario=scenario, run_type=run_type and run_type.value, reason=reason
        )
    counts = warn_findings(r.findings, out)
    if as_json:
        emit_json(
            {
                "folder": str(out),
                "period": r.period,
                "new_versions": len(r.new_versions),
                "changed": r.changes(),
                "deltas": r.deltas.to_dict(orient="records"),
                "statements": r.statements.to_dict(orient="records"),
                "findings": findings_summary(r.findings).to_dict(orient="records"),
                "findings_by_severity": counts,
            }
        )
    say(statements_rich(r), changes_rich(r), findings_rich(r.findings))
    say(f"{len(r.new_versions)} new statement version(s); {len(r.findings)} finding(s); written to [bold]{out}[/]")
    exit_for_findings(counts, fail_on)


def warn_findings(findings: pd.DataFrame, out: Path) -> dict[str, int]:
    """Log a warning per severity that has findings (errors and warnings); return the counts."""
    counts = severity_counts(findings)
    for severity in ("error", "warning"):
        if counts[severity]:
            log.warning(
                "%d finding(s) of severity %s (details in %s)", counts[severity], severity, out / "findings.parquet"
            )
    return counts


def exit_for_findings(counts: dict[str, int], fail_on: FailOn) -> None:
    """Exit with EXIT_FINDINGS when a finding is at least as severe as ``fail_on``."""
    if fail_on is not FailOn.NEVER and any(
        n and SEVERITY_RANK[sev] >= SEVERITY_RANK[fail_on.value] for sev, n in counts.items()
    ):
        raise typer.Exit(EXIT_FINDINGS)


def settle_due(
    runs: Annotated[Path, typer.Option(help="folder of clearing run folders (one per market session)")],
    meter: Annotated[Path, typer.Option(help="meter data Parquet (the newest)")],
    config: Annotated[Path, typer.Option(help="settle.toml with its [calendar]")],
    out: Annotated[Path, typer.Option(help="output folder: one folder per run, and the default store")],
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store (default: OUT/store.duckdb)")] = None,
    date: Annotated[
        str | None, typer.Option(help="the day to run for, YYYY-MM-DD (default: today in the settlement time zone)")
    ] = None,
    scenario: Annotated[str, typer.Option(help="statements to settle into")] = "actual",
    as_json: Annotated[bool, typer.Option("--json", help="print what was settled and what changed as JSON")] = False,
    fail_on: Annotated[FailOn, typer.Option(help=f"exit {EXIT_FINDINGS} if a finding is this severe")] = FailOn.NEVER,
) -> None:
    """The desk's daily job (call it from cron): settle every run the calendar in settle.toml
    has due today (initial at T+n business days, recalculations at fixed offsets, missed
    days caught up) and say what changed."""
    import datetime as dt

    from market.cli.render import changes_rich
    from settlement.desk import settle_due as do_due

    try:
        day = dt.date.fromisoformat(date) if date else None
    except ValueError as exc:
        raise typer.BadParameter(f"a date YYYY-MM-DD, not {date!r}", param_hint="--date") from exc
    with exit_on_error(failed=(StoreConflictError, StoreUnavailableError, OutOfMemoryError)):
        done = do_due(runs, meter, config, out, db=db, today=day, scenario=scenario)
    counts = {"error": 0, "warning": 0, "info": 0}
    for d in done:
        for sev, n in warn_findings(d.result.findings, out / d.run.name).items():
            counts[sev] += n
    if as_json:
        emit_json(
            {
                "date": str(day) if day else None,
                "settled": [
                    {
                        "run": str(d.run),
                        "run_type": d.run_type,
                        "reason": d.reason,
                        "due_on": d.due_on,
                        "period": d.result.period,
                        "changed": d.result.changes(),
                        "deltas": len(d.result.deltas),
                    }
                    for d in done
                ],
                "findings_by_severity": counts,
            }
        )
    for d in done:
        say(f"{d.run.name}: {d.run_type} ({d.reason}), period {d.result.period}", changes_rich(d.result))
    if not done:
        say("nothing due")
    exit_for_findings(counts, fail_on)


def severity_counts(findings: pd.DataFrame) -> dict[str, int]:
    """Findings per severity (every severity present, zero where none)."""
    found = findings["severity"].value_counts().to_dict() if len(findings) else {}
    return {sev: int(found.get(sev, 0)) for sev in SEVERITY_RANK}


BASELINES_KIND = "baseline-evaluation"


def baselines_evaluate(
    meter: Annotated[Path, typer.Option(help="meter data Parquet")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/baselines"),
    config: Annotated[Path | None, typer.Option(help="settle.toml (holidays, timezone)")] = None,
    window: Annotated[str, typer.Option(help="placebo event window, local HH:MM-HH:MM")] = ("17:00-20:00"),
    days: Annotated[int, typer.Option(help="placebo days per DER")] = 20,
    run: Annotated[
        Path | None, typer.Option(help="clearing run whose awards define the resources (aggregator x DSO)")
    ] = None,
    force: Annotated[bool, typer.Option(help="replace OUT even if it is not an earlier evaluation")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Score every baseline method on placebo days: bias, NMAE, RRMSE; table and plot.
    Per DER, and per resource (portfolio level) where a run or a resource_id column says
    which DER form one."""
    from market.cli.clearing import needs_report

    needs_report("flexmarket baselines evaluate (its plot)")
    from market.io.place import check_target, publish_folder
    from market.io.read import sha256_file
    from market.io.write import output_manifest, write_json
    from settlement.config import load_config
    from settlement.evaluate import accuracy_figure, evaluate_levels, recommend, recommendation_inputs

    if not re.fullmatch(r"\d{1,2}:\d{2}-\d{1,2}:\d{2}", window):
        raise typer.BadParameter(f"local HH:MM-HH:MM, e.g. 17:00-20:00, not {window!r}", param_hint="--window")
    lo, hi = window.split("-")
    with exit_on_error():
        cfg = load_config(config)
        check_target(out, BASELINES_KIND, force, inputs=[meter, config, run])  # refused before it runs
        scores, summary = evaluate_levels(meter, cfg, run, window=(lo, hi), placebo_days=days)
        advice = recommend(scores, *recommendation_inputs(meter, run))
    inputs = {"meter": sha256_file(meter), **({"config": sha256_file(config)} if config else {})}

    def build(tmp: Path) -> None:
        options = {"window": window, "placebo_days": days, "settle_config": cfg.as_dict()}
        write_json(tmp / "manifest.json", output_manifest(BASELINES_KIND, inputs, options))
        scores.to_parquet(tmp / "baseline_scores.parquet", index=False)
        summary.to_parquet(tmp / "baseline_summary.parquet", index=False)
        advice.to_parquet(tmp / "baseline_recommendations.parquet", index=False)
        accuracy_figure(scores).write_html(tmp / "baseline_accuracy.html", include_plotlyjs="inline")

    with exit_on_error():
        publish_folder(out, BASELINES_KIND, build, force, inputs=[meter, config, run])
    if as_json:
        emit_json(
            {
                "folder": str(out),
                "summary": summary.to_dict(orient="records"),
                "recommendations": advice.to_dict(orient="records"),
            }
        )
    t = Table(title="baseline accuracy on placebo days (median over DER or resources)")
    columns = ("level", "method", "units", "bias", "NMAE", "RRMSE", "within 20% RRMSE", "CV(RMSE) hourly")
    for c in (*columns, "within ASHRAE 14 (30%)"):
        t.add_column(c, justify="right")
    for s in summary.itertuples():
        t.add_row(
            s.level,
            s.method,
            str(s.der),
            f"{s.median_bias:+.3f}",
            f"{s.median_nmae:.3f}",
            f"{s.median_rrmse:.3f}",
            f"{s.within_20pct:.0%}",
            f"{s.median_cv_rmse:.3f}",
            f"{s.within_ashrae14:.0%}",
        )
    r = Table(title="recommended method per DER type and direction")
    for c in ("DER type", "direction", "DER", "method", "CV(RMSE)", "bias", "meets ASHRAE 14", "why"):
        r.add_column(c)
    for a in advice.itertuples():
        r.add_row(
            a.der_type,
            a.direction,
            str(a.der),
            a.method,
            f"{a.median_cv_rmse:.3f}",
            f"{a.median_bias:+.3f}",
            "yes" if a.meets_ashrae14 else "no",
            a.why,
        )
    say(t, r, f"scores, recommendations and plot in [bold]{out}[/]")
