"""Writing a clearing run folder (DESIGN.md section 4) with its manifest.

Tables are written to a temporary folder first and moved into place only when
everything succeeded, so a failed run never leaves a half-written folder.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from market.batch import Batch
from market.results import ClearingResult

VERSIONED = ("flexmarket", "cvxpy", "highspy", "pandas", "pyarrow", "numpy", "scipy", "pandera", "duckdb", "dask")


def package_versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["python"] = platform.python_version()
    return out


def manifest(
    batch: Batch, result: ClearingResult, options: dict[str, Any], timings: dict[str, float]
) -> dict[str, Any]:
    return {
        "kind": "clearing-run",
        "batch": batch.config.as_dict(),
        "batch_source": str(batch.source) if batch.source else None,
        "input_sha256": dict(sorted(batch.file_hashes.items())),
        "design": result.design.as_dict(),
        "pricing": result.pricing,
        "options": options,
        "solver": "HIGHS (via cvxpy)",
        "versions": package_versions(),
        "status": result.status.value,
        "models": [s.__dict__ for s in result.stats],
        "timings_s": timings,
    }


def write_json(path: Path, data: Any) -> None:
    """JSON as flexmarket writes it everywhere: sorted keys, indented, a final newline."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def output_manifest(kind: str, input_sha256: dict[str, str], options: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a job's output folder (sweep, comparison, baseline evaluation):
    what it read (SHA-256 per input file), how it was asked, and the package versions."""
    return {
        "kind": kind,
        "input_sha256": dict(sorted(input_sha256.items())),
        "options": options,
        "versions": package_versions(),
    }


def write_table(df: pd.DataFrame, path: Path) -> None:
    df.to_parquet(path, index=False)


def write_run(
    out: str | Path, batch: Batch, result: ClearingResult, options: dict[str, Any], timings: dict[str, float]
) -> Path:
    """Write the run folder atomically (replace ``out`` only once all files are written)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for name, df in result.tables().items():
            write_table(df, tmp / f"{name}.parquet")
        write_json(tmp / "metrics.json", result.metrics)
        write_json(tmp / "manifest.json", manifest(batch, result, options, timings))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
