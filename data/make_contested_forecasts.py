"""The contested day with what was known before delivery: data/contested-forecast/.

Run:  python data/make_contested_forecasts.py   (after data/make_contested.py)

The batch of data/contested, plus:

- a ``forecasts`` table of every constraint's base flow made by ``flexmarket forecasts
  make``'s forecasters from the SimBench profiles: same time previous day, issued at 12:00
  UTC the day before (the previous day, 2016-11-30, is built exactly as the contested day
  is, from the same grids and profiles), and persistence issued 15 and 60 minutes before
  each interval (the last interval's actual then); and day-ahead forecasts of every need and
  every bid's available MW (same time previous day), which reservation steps read;
- information paths in ``batch.toml``: DSOs publish their state (and computed lights) every
  hour and it reaches another operator 10 minutes later; a coordinator tier adds 15 minutes;
  the TSO relays in 1 minute. Illustrative values, chosen to make the report's latency and
  race-condition concerns (3.3, 3.5, 3.6) measurable: change them in batch.toml.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from make_contested import build  # noqa: E402

from market.io.forecasts import make_forecasts  # noqa: E402
from market.io.read import load_batch  # noqa: E402
from market.io.write import write_batch  # noqa: E402

RELAY_S = {"dso": 600.0, "coordinator": 900.0, "tso": 60.0}
PUBLISH_EVERY_S = {"dso": 3600.0}


def main() -> None:
    day = load_batch(HERE / "contested")
    with tempfile.TemporaryDirectory() as tmp:
        build("2016-11-30", Path(tmp) / "previous", None)
        previous = load_batch(Path(tmp) / "previous")
    forecasts = make_forecasts(day, previous, (15, 60), "12:00")
    informed = day.replace(forecasts=forecasts).with_config(relay_s=RELAY_S, publish_every_s=PUBLISH_EVERY_S)
    out = HERE / "contested-forecast"
    if out.exists():
        shutil.rmtree(out)
    write_batch(informed, out, "parquet")
    print(f"contested-forecast: {len(forecasts)} forecasts")


if __name__ == "__main__":
    main()
