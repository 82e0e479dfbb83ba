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
from market.io.place import check_target, publish_folder
from market.io.write import output_manifest, write_json

COMPARISON_KIND = "comparison"


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
    force: bool = False,
) -> list[ClearingResult]:
    """Clear ``batch`` under every design; with ``out``, write the comparison folder."""
    pricing = Pricing(pricing)
    if out is not None:
        check_target(Path(out), COMPARISON_KIND, force, inputs=[batch.source])  # refuse before clearing
    t0 = time.perf_counter()
    results = clear_designs(batch, designs, pricing, scheduler, progress=progress)
    seconds = time.perf_counter() - t0
    if out is not None:
        names = [d.name if isinstance(d, Design) else str(d) for d in designs]
        write_comparison(Path(out), batch, results, names, pricing, seconds, force)
    return results


def write_comparison(
    out: Path,
    batch: Batch,
    results: Sequence[ClearingResult],
    designs: list[str],
    pricing: Pricing,
    seconds: float,
    force: bool = False,
) -> Path:
    """Run folders, ``comparison.parquet``, ``report.html`` and ``manifest.json``, built beside
    ``out`` and moved into place whole: an interrupted compare leaves the earlier folder."""

    def build(tmp: Path) -> None:
        for r in results:
            run_options = {"design": r.design.name, "pricing": pricing.value}
            write_run(tmp / "runs" / r.design.name, batch, r, run_options, {"clear_all_designs": seconds})
        options = {"designs": designs, "pricing": pricing.value}
        write_json(tmp / "manifest.json", output_manifest(COMPARISON_KIND, batch_input_hashes(batch), options))
        comparison_table(results).to_parquet(tmp / "comparison.parquet", index=False)
        (tmp / "report.html").write_text(render_report(batch, results))

    return publish_folder(out, COMPARISON_KIND, build, force, inputs=[batch.source])
