"""``demo``: the main job on the sample (validate, clear every preset, compare, settle)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from market.cli.clearing import design_list, run_compare
from market.cli.console import console, load_or_exit
from market.cli.render import comparison_rich, statements_rich, summary_tables
from market.enums import Pricing


def demo(
    data: Annotated[Path, typer.Option(help="folder with sample/ and meter.parquet")] = Path("data"),
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/sample"),
) -> None:
    """The main job on the sample: validate, clear every preset design, compare, settle."""
    # (the settlement store in OUT/settlement keeps versions across demo runs)
    b = load_or_exit(data / "sample")
    for t in summary_tables(b):
        console.print(t)
    results = run_compare(b, design_list("all"), Pricing.PAY_AS_CLEAR, out, None)
    console.print(comparison_rich(results))
    console.print(f"report: [bold]{out / 'report.html'}[/]")
    from settlement import settle as do_settle

    r = do_settle(out / "runs" / "single", data / "meter.parquet", data / "settle.toml", out=out / "settlement")
    console.print(statements_rich(r))
    console.print(
        f"settlement of the single run: {len(r.new_versions)} new statement "
        f"version(s), {len(r.findings)} finding(s) -> {out / 'settlement'}"
    )
