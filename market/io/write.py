"""Writing what flexmarket produces: batch folders, JSON files, tables, manifests."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from market.io.batch import Batch
from market.io.schemas import BATCH_TABLES


def write_batch(batch: Batch, folder: str | Path, fmt: str = "parquet") -> Path:
    """Write a batch folder (``fmt`` = parquet or csv); timestamps as UTC ISO 8601."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = batch.config
    hops = "\n".join(f"{k} = {v}" for k, v in sorted(cfg.hop_latency_s.items()))
    info = "".join(
        f"\n[information.{name}]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(table.items()))
        for name, table in (("relay_s", cfg.relay_s), ("publish_every_s", cfg.publish_every_s))
        if table
    )
    (folder / "batch.toml").write_text(
        f'name = "{cfg.name}"\nstart = "{cfg.start.isoformat()}"\nend = "{cfg.end.isoformat()}"\n'
        f'interval_minutes = {cfg.interval_minutes}\ncurrency = "{cfg.currency}"\n'
        f"voll_eur_mwh = {cfg.voll_eur_mwh}\n\n[hop_latency_s]\n{hops}\n{info}"
    )
    for spec in BATCH_TABLES:
        df = batch.table(spec.name)
        if spec.name == "forecasts" and not len(df):  # a batch without forecasts keeps its files
            continue
        if fmt == "parquet":
            df.to_parquet(folder / f"{spec.name}.parquet", index=False)
        else:
            out = df.copy()
            for col in spec.columns:
                if col.kind == "ts":
                    out[col.name] = out[col.name].map(lambda t: "" if pd.isna(t) else t.isoformat())
            out.to_csv(folder / f"{spec.name}.csv", index=False)
    return folder


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
