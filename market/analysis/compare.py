"""``compare()``: what ``flexmarket compare`` does, callable from a notebook.

Clear one batch under several designs (concurrently) and, given ``out``, write one run
folder per design under ``out/runs/``, ``comparison.parquet``, ``report.html`` and a
``manifest.json`` with the input hashes and options.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from market.analysis.comparison import clear_designs, comparison_table
from market.analysis.report import render_report
from market.clearing.results import ClearingResult
from market.clearing.runfolder import write_run
from market.design.spec import Design
from market.enums import DEFAULT_PRICING, Pricing
from market.io.batch import Batch
from market.io.write import output_manifest, write_json


def batch_input_hashes(batch: Batch) -> dict[str, str]:
    """The batch's file hashes as manifest inputs (``batch/<file>``: SHA-256)."""
    return {f"batch/{name}": sha for name, sha in batch.file_hashes.items()}


def compare(
    batch: Batch,
    designs: Sequence[str | Design],
    pricing: str | Pricing = DEFAULT_PRICING,
    *,
    out: str | Path | None = None,
    scheduler: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ClearingResult]:
    """Clear ``batch`` under every design; with ``out``, write the comparison folder."""
    pricing = Pricing(pricing)
    t0 = time.perf_counter()
    results = clear_designs(batch, designs, pricing, scheduler, progress=progress)
    seconds = time.perf_counter() - t0
    if out is not None:
        names = [d.name if isinstance(d, Design) else str(d) for d in designs]
        write_comparison(Path(out), batch, results, names, pricing, seconds)
    return results


def write_comparison(
    out: Path,
    batch: Batch,
    results: Sequence[ClearingResult],
    designs: list[str],
    pricing: Pricing,
    seconds: float,
) -> Path:
    """Run folders, ``comparison.parquet``, ``report.html`` and ``manifest.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        run_options = {"design": r.design.name, "pricing": pricing.value}
        write_run(out / "runs" / r.design.name, batch, r, run_options, {"clear_all_designs": seconds})
    write_json(
        out / "manifest.json",
        output_manifest("comparison", batch_input_hashes(batch), {"designs": designs, "pricing": pricing.value}),
    )
    comparison_table(results).to_parquet(out / "comparison.parquet", index=False)
    (out / "report.html").write_text(render_report(batch, results))
    return out
