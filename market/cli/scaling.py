"""``scaling``: how each operator's largest model grows with the DER and the DSOs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from market.cli.clearing import design_list
from market.cli.console import emit_json, exit_on_error, log, say
from market.errors import BatchError, SolverError

SCALING_KIND = "scaling"


def _counts(text: str, option: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise BatchError(f"{option} {text!r}: whole numbers separated by commas") from exc


def scaling(
    bids: Annotated[str, typer.Option(help="DER counts, comma-separated (synthetic batches)")] = "250,1000,4000",
    dsos: Annotated[str, typer.Option(help="DSO counts, comma-separated")] = "2,8",
    designs: Annotated[str, typer.Option(help="comma-separated presets or .toml paths; 'all' for every preset")] = (
        "all"
    ),
    intervals: Annotated[int, typer.Option(min=1, max=96, help="intervals per synthetic batch")] = 4,
    seed: Annotated[int, typer.Option(min=0, help="seed of the synthetic batches")] = 0,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/scaling"),
    force: Annotated[bool, typer.Option(help="replace OUT even if it is not an earlier scaling")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the growth table as JSON")] = False,
) -> None:
    """Scalability, measured: every design on synthetic batches of each DER and DSO count;
    per operator (TSO, platform, DSO, iDSO) the variables of its largest model and their
    growth (log-log slope) with the DER and with the DSOs."""
    from market.analysis.scaling import check_grid, growth, scaling_table
    from market.io.place import check_target, publish_folder
    from market.io.write import output_manifest, write_json

    with exit_on_error():
        der_counts, dso_counts = _counts(bids, "--bids"), _counts(dsos, "--dsos")
        check_grid(der_counts, dso_counts)
        check_target(out, SCALING_KIND, force)
    names = design_list(designs)
    log.info("scaling: %d sizes x %d designs", len(der_counts) * len(dso_counts), len(names))
    with exit_on_error(failed=(SolverError,)):
        table = scaling_table(names, der_counts, dso_counts, intervals, seed)
    grown = growth(table)
    options = {"designs": names, "bids": der_counts, "dsos": dso_counts, "intervals": intervals, "seed": seed}

    def build(tmp: Path) -> None:
        write_json(tmp / "manifest.json", output_manifest(SCALING_KIND, {}, options))
        table.to_parquet(tmp / "scaling.parquet", index=False)
        grown.to_parquet(tmp / "growth.parquet", index=False)

    with exit_on_error():
        publish_folder(out, SCALING_KIND, build, force)
    if as_json:
        emit_json({"folder": str(out), "growth": grown.to_dict(orient="records")})
    t = Table(title="largest model per operator: variables, and growth with DER and DSOs (log-log slope)")
    for c in ("design", "operator", "variables", "with DER", "with DSOs"):
        t.add_column(c, justify="left" if c in ("design", "operator") else "right")
    for r in grown.itertuples():
        t.add_row(
            str(r.design),
            str(r.operator),
            f"{r.variables_at_largest:,}",
            f"{r.growth_with_der:.2f}",
            f"{r.growth_with_dsos:.2f}",
        )
    say(t, f"tables: [bold]{out}[/]")
