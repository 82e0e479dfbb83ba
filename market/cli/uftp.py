"""``uftp import`` / ``uftp export``: USEF UFTP messages in and out (see :mod:`market.io.uftp`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from market.cli.console import emit_json, exit_on_error, load_or_exit, log, say
from market.errors import BatchError
from market.io.place import publish_files


def uftp_import(
    messages: Annotated[Path, typer.Argument(help="folder of UFTP XML messages (FlexRequest, FlexOffer)")],
    base: Annotated[Path, typer.Option(help="batch whose areas, grid and horizon the messages refer to")],
    out: Annotated[Path, typer.Option(help="new batch folder to write (must not exist)")],
    as_json: Annotated[bool, typer.Option("--json", help="print what was imported as JSON")] = False,
) -> None:
    """Add the needs of FlexRequests and the bids of FlexOffers to a copy of a batch: every
    table of the base batch is kept, and so are the offers an earlier import added to it."""
    _needs_uftp("flexmarket uftp import")
    from market.io.place import check_target, publish_folder
    from market.io.uftp import OFFERS_FOLDER, import_messages, merge_import
    from market.io.write import write_batch

    b = load_or_exit(base)
    with exit_on_error():
        check_target(out, IMPORT_KIND, inputs=[messages, base])
        found = import_messages(messages, b.node_areas, b.config.interval_minutes)
        merged, offer_files = merge_import(b, base, messages, found)

    def build(tmp: Path) -> None:
        write_batch(merged, tmp)
        (tmp / OFFERS_FOLDER).mkdir()
        for name, data in offer_files.items():
            (tmp / OFFERS_FOLDER / name).write_bytes(data)

    with exit_on_error():
        publish_folder(out, IMPORT_KIND, build, inputs=[messages, base])
    log.info("imported %d needs and %d bids from %s into %s", len(found.needs), len(found.bids), messages, out)
    if as_json:
        emit_json({"batch": str(out), "needs": len(found.needs), "bids": len(found.bids), "offers": len(found.offers)})
    say(f"{len(found.needs)} needs and {len(found.bids)} bids from {messages} -> [bold]{out}[/]")


IMPORT_KIND = "uftp-import"  # no manifest: an existing folder is never replaced


def uftp_export(
    run: Annotated[Path, typer.Argument(help="clearing run folder of a batch made by uftp import")],
    out: Annotated[Path, typer.Option(help="folder to write FlexOrder XML files into")],
    batch: Annotated[Path | None, typer.Option(help="the batch that was cleared (default: the run's manifest)")] = None,
    time_stamp: Annotated[str | None, typer.Option(help="the orders' TimeStamp (default: the offer's)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """One FlexOrder per accepted offer option of the run (all files or none)."""
    _needs_uftp("flexmarket uftp export")
    import pandas as pd

    from market.io.uftp import orders_for_awards, to_xml

    with exit_on_error():
        folder, offers, _ = _run_offers(run, batch)
        orders = orders_for_awards(pd.read_parquet(run / "awards.parquet"), offers, time_stamp)
        files = {f"FlexOrder-{o.message_id}.xml": _writer(to_xml(o)) for o in orders}
        publish_files(out, files, inputs=[run, folder])
    if as_json:
        emit_json({"folder": str(out), "orders": sorted(files)})
    say(f"{len(orders)} FlexOrder(s) -> [bold]{out}[/]")


def uftp_settlement(
    settled: Annotated[Path, typer.Argument(help="output folder of flexmarket settle (lines.parquet)")],
    run: Annotated[Path, typer.Option(help="the clearing run that was settled")],
    out: Annotated[Path, typer.Option(help="folder to write FlexSettlement XML files into")],
    batch: Annotated[Path | None, typer.Option(help="the batch that was cleared (default: the run's manifest)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """One FlexSettlement per aggregator: the settled lines of its FlexOrders (all files or none)."""
    _needs_uftp("flexmarket uftp settlement")
    import pandas as pd

    from market.io.uftp import orders_for_awards, to_xml
    from market.io.uftp_settlement import settlements_for_lines

    with exit_on_error():
        folder, offers, minutes = _run_offers(run, batch)
        if not (settled / "lines.parquet").is_file():
            raise BatchError(f"{settled}: no lines.parquet (the output folder of flexmarket settle)")
        orders = orders_for_awards(pd.read_parquet(run / "awards.parquet"), offers)
        messages, left_out = settlements_for_lines(pd.read_parquet(settled / "lines.parquet"), orders, offers, minutes)
        files = {f"FlexSettlement-{m.message_id}.xml": _writer(to_xml(m)) for m in messages}
        publish_files(out, files, inputs=[settled, run, folder])
    for reference in left_out:
        log.warning("order %s left out of the settlement: a line has no meter data or baseline", reference)
    if as_json:
        emit_json({"folder": str(out), "settlements": sorted(files), "left_out": list(left_out)})
    say(f"{len(messages)} FlexSettlement(s) -> [bold]{out}[/]")


def _needs_uftp(what: str) -> None:
    from market.extras import Extra, require

    with exit_on_error():
        require(Extra.UFTP, what)


def _writer(text: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_text(text)

    return write


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
