"""``uftp import`` / ``uftp export``: USEF UFTP messages in and out (see :mod:`market.io.uftp`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

from market.cli.console import emit_json, exit_on_error, load_or_exit, log, say
from market.errors import BatchError


def uftp_import(
    messages: Annotated[Path, typer.Argument(help="folder of UFTP XML messages (FlexRequest, FlexOffer)")],
    base: Annotated[Path, typer.Option(help="batch whose areas, grid and horizon the messages refer to")],
    out: Annotated[Path, typer.Option(help="new batch folder to write (must not exist)")],
    as_json: Annotated[bool, typer.Option("--json", help="print what was imported as JSON")] = False,
) -> None:
    """Add the needs of FlexRequests and the bids of FlexOffers to a copy of a batch."""
    import pandas as pd

    from market.io.read import batch_from_frames
    from market.io.uftp import OFFERS_FOLDER, import_messages
    from market.io.write import write_batch

    b = load_or_exit(base)
    with exit_on_error():
        if out.exists():
            raise BatchError(f"{out} exists; nothing written (choose a new --out)")
        found = import_messages(messages, b.node_areas, b.config.interval_minutes)
        tables = {name: b.table(name) for name in ("node_areas", "constraints", "sensitivities", "signals")}
        bids = pd.concat([b.bids, found.bids], ignore_index=True) if len(found.bids) else b.bids
        needs = pd.concat([b.needs, found.needs], ignore_index=True) if len(found.needs) else b.needs
        merged = batch_from_frames(b.config, bids=bids, needs=needs, **tables)
    write_batch(merged, out)
    (out / OFFERS_FOLDER).mkdir()
    for name, _ in found.offers.values():
        shutil.copyfile(messages / name, out / OFFERS_FOLDER / name)
    log.info("imported %d needs and %d bids from %s into %s", len(found.needs), len(found.bids), messages, out)
    if as_json:
        emit_json({"batch": str(out), "needs": len(found.needs), "bids": len(found.bids), "offers": len(found.offers)})
    say(f"{len(found.needs)} needs and {len(found.bids)} bids from {messages} -> [bold]{out}[/]")


def uftp_export(
    run: Annotated[Path, typer.Argument(help="clearing run folder of a batch made by uftp import")],
    out: Annotated[Path, typer.Option(help="folder to write FlexOrder XML files into")],
    batch: Annotated[Path | None, typer.Option(help="the batch that was cleared (default: the run's manifest)")] = None,
    time_stamp: Annotated[str | None, typer.Option(help="the orders' TimeStamp (default: the offer's)")] = None,
) -> None:
    """One FlexOrder per accepted offer option of the run."""
    import pandas as pd

    from market.io.uftp import orders_for_awards, to_xml

    with exit_on_error():
        _, offers, _ = _run_offers(run, batch)
        orders = orders_for_awards(pd.read_parquet(run / "awards.parquet"), offers, time_stamp)
        targets = [out / f"FlexOrder-{o.message_id}.xml" for o in orders]
        clash = [str(p) for p in targets if p.exists()]
        if clash:
            raise BatchError(f"{clash[0]} exists; nothing written")
    out.mkdir(parents=True, exist_ok=True)
    for order, path in zip(orders, targets, strict=True):
        path.write_text(to_xml(order))
    say(f"{len(orders)} FlexOrder(s) -> [bold]{out}[/]")


def uftp_settlement(
    settled: Annotated[Path, typer.Argument(help="output folder of flexmarket settle (lines.parquet)")],
    run: Annotated[Path, typer.Option(help="the clearing run that was settled")],
    out: Annotated[Path, typer.Option(help="folder to write FlexSettlement XML files into")],
    batch: Annotated[Path | None, typer.Option(help="the batch that was cleared (default: the run's manifest)")] = None,
) -> None:
    """One FlexSettlement per aggregator: the settled lines of its FlexOrders."""
    import pandas as pd

    from market.io.uftp import orders_for_awards, settlements_for_lines, to_xml

    with exit_on_error():
        folder, offers, minutes = _run_offers(run, batch)
        if not (settled / "lines.parquet").is_file():
            raise BatchError(f"{settled}: no lines.parquet (the output folder of flexmarket settle)")
        orders = orders_for_awards(pd.read_parquet(run / "awards.parquet"), offers)
        messages, left_out = settlements_for_lines(pd.read_parquet(settled / "lines.parquet"), orders, offers, minutes)
        targets = [out / f"FlexSettlement-{m.message_id}.xml" for m in messages]
        clash = [str(p) for p in targets if p.exists()]
        if clash:
            raise BatchError(f"{clash[0]} exists; nothing written")
    for reference in left_out:
        log.warning("order %s left out of the settlement: a line has no meter data or baseline", reference)
    out.mkdir(parents=True, exist_ok=True)
    for message, path in zip(messages, targets, strict=True):
        path.write_text(to_xml(message))
    say(f"{len(messages)} FlexSettlement(s) -> [bold]{out}[/]")


def _run_offers(run: Path, batch: Path | None) -> tuple[Path, dict[str, object], int]:
    """The batch folder of a run, its imported offers by message id, and its interval."""
    from market.io.uftp import OFFERS_FOLDER, read_messages

    manifest_path = run / "manifest.json"
    if not (run / "awards.parquet").is_file() or not manifest_path.is_file():
        raise BatchError(f"{run}: not a clearing run (needs awards.parquet and manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    folder = batch or Path(manifest.get("batch_source") or "")
    if not (folder / OFFERS_FOLDER).is_dir():
        raise BatchError(f"{folder / OFFERS_FOLDER}: no imported offers (give --batch, the uftp import output)")
    offers = {str(m.message_id): m for _, m in read_messages(folder / OFFERS_FOLDER)}
    return folder, offers, int(manifest["batch"]["interval_minutes"])
