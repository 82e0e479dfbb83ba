"""Strict UFTP: the hostile messages of the reliability issue, each refused with exit 2 and a
named reason (nothing written), and the id and ActivationFactor rules."""

from __future__ import annotations

import os
import re
import uuid
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from test_uftp import OFFER_ID, _base, _messages
from typer.testing import CliRunner

from market.cli.app import app
from market.io.uftp import activation_factor, uftp_id


def _import(msgs: Path, base: Path, out: Path) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["uftp", "import", str(msgs), "--base", str(base), "--out", str(out)])
    return res.exit_code, " ".join(res.output.split())


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    return _messages(tmp_path / "msgs"), _base(tmp_path / "base")


def _edit(msgs: Path, name: str, old: str, new: str, count: int = 1) -> None:
    text = (msgs / name).read_text()
    assert old in text, (old, text)
    (msgs / name).write_text(text.replace(old, new, count))


def _refused(folders: tuple[Path, Path], tmp_path: Path, says: str) -> None:
    code, text = _import(*folders, tmp_path / "b2")
    assert code == 2, text
    assert says in text and "Traceback" not in text
    assert not (tmp_path / "b2").exists()


def test_a_truncated_offer_is_refused_not_recovered(folders: tuple[Path, Path], tmp_path: Path) -> None:
    msgs, _ = folders
    text = (msgs / "offer.xml").read_text()
    cut = text.index('OptionReference="B"')
    (msgs / "offer.xml").write_text(text[:cut])
    _refused(folders, tmp_path, "not well-formed XML")


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (f'MessageID="{OFFER_ID}"', 'MessageID="a"', "does not match"),
        ('Price="30.0000"', 'Price="sNaN"', "not a"),
        ('TimeZone="Europe/Amsterdam"', 'TimeZone="Europe/Nowhere"', "not a known time zone"),
        ('MinActivationFactor="0.50"', 'MinActivationFactor="0"', "below 0.01"),
        ('MinActivationFactor="0.50"', 'MinActivationFactor="0.505"', "more than 2 decimals"),
        ('OptionReference="A"', 'OptionReference="A" Colour="red"', "not a valid UFTP message"),
        ('Start="5" Duration="2"', 'Start="5" Duration="99999999"', "outside the period"),
        ('Start="5" Duration="2"', 'Start="101" Duration="1"', "outside the period"),
        ('Start="5" Duration="2"', 'Start="0" Duration="1"', "outside the period"),
    ],
)
def test_invalid_offers_are_refused_by_name(
    folders: tuple[Path, Path], tmp_path: Path, old: str, new: str, says: str
) -> None:
    _edit(folders[0], "offer.xml", old, new)
    _refused(folders, tmp_path, says)


def test_an_unknown_disposition_is_refused_not_dropped(folders: tuple[Path, Path], tmp_path: Path) -> None:
    _edit(folders[0], "request.xml", 'Disposition="Requested"', 'Disposition="Maybe"')
    _refused(folders, tmp_path, "not a valid UFTP message")


def test_a_dtd_is_refused(folders: tuple[Path, Path], tmp_path: Path) -> None:
    msgs = folders[0]
    text = (msgs / "offer.xml").read_text()
    head, rest = text.split("\n", 1) if text.startswith("<?xml") else ("", text)
    (msgs / "offer.xml").write_text(head + '\n<!DOCTYPE x [<!ENTITY e "boom">]>\n' + rest)
    _refused(folders, tmp_path, "DOCTYPE")


def test_a_fifo_named_like_a_message_is_refused_without_hanging(folders: tuple[Path, Path], tmp_path: Path) -> None:
    os.mkfifo(folders[0] / "zz.xml")
    _refused(folders, tmp_path, "not a regular file")


def test_a_link_named_like_a_message_is_refused(folders: tuple[Path, Path], tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_text((folders[0] / "offer.xml").read_text())
    (folders[0] / "zz.xml").symlink_to(secret)
    _refused(folders, tmp_path, "not a regular file")


def test_an_oversized_message_is_refused(folders: tuple[Path, Path], tmp_path: Path) -> None:
    (folders[0] / "zz.xml").write_bytes(b"<x>" + b" " * 1_000_001 + b"</x>")
    _refused(folders, tmp_path, "a UFTP message is at most")


def test_an_option_reference_holding_the_separator_cannot_make_another_offers_id(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    """Before: MessageID ``a`` + OptionReference ``b/c`` and MessageID ``a/b`` + ``c`` made one
    block id. Now every part is escaped: options ``A`` (ISP 5) and ``A/5`` stay apart."""
    msgs, base = folders
    _edit(msgs, "offer.xml", 'OptionReference="B"', 'OptionReference="A/5"')
    code, text = _import(msgs, base, tmp_path / "b2")
    assert code == 0, text
    bids = pd.read_parquet(tmp_path / "b2" / "bids.parquet")
    blocks = sorted(bids["block_id"].dropna().unique())
    assert blocks == sorted([uftp_id(OFFER_ID, "A"), uftp_id(OFFER_ID, "A/5")])
    assert uftp_id("a", "b/c") != uftp_id("a/b", "c")
    assert bids["bid_id"].is_unique


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(1.0, Decimal("1.00")), (2 / 3, Decimal("0.66")), (0.5 + 1e-12, Decimal("0.50")), (0.004, None)],
)
def test_activation_factor_never_orders_more_than_cleared_nor_an_order_for_nothing(
    fraction: float, expected: Decimal | None
) -> None:
    assert activation_factor(fraction, str(uuid.UUID(int=1)), "A") == expected


def test_every_message_id_is_a_uuid_in_the_folder(folders: tuple[Path, Path], tmp_path: Path) -> None:
    msgs = folders[0]
    ids = re.findall(r'MessageID="([^"]+)"', (msgs / "offer.xml").read_text())
    assert all(uuid.UUID(i) for i in ids)
    _edit(msgs, "request.xml", f'MessageID="{uuid.UUID(int=2)}"', 'MessageID="not-a-uuid"')
    _refused(folders, tmp_path, "does not match")
