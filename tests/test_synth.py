"""The synthetic generator: the chunked writer gives the same batch as the in-memory one."""

from __future__ import annotations

import pandas as pd
import pytest

from market.errors import FlexmarketError
from market.io.read import load_batch
from market.io.schemas import BATCH_TABLES
from market.io.synth import SynthSpec, synth_batch, write_synth


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_chunked_writer_gives_the_in_memory_batch(tmp_path, fmt):
    spec = SynthSpec(bids=40, intervals=6, dsos=2, seed=3, integer_share=0.3)
    assert write_synth(spec, tmp_path / "b", fmt, chunk_rows=37) == 40 * 6  # chunks that cut a DER
    written, expected = load_batch(tmp_path / "b"), synth_batch(spec)
    for table in BATCH_TABLES:
        pd.testing.assert_frame_equal(written.table(table.name), expected.table(table.name), check_dtype=False)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(FlexmarketError, match="parquet or csv"):
        write_synth(SynthSpec(bids=2, intervals=1), tmp_path / "b", "xlsx")
