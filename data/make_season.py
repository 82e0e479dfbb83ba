"""Many contested days from SimBench (ODbL), for `flexmarket season`: how sure a comparison is.

Run:  python data/make_season.py --first 2016-11-01 --days 90 --out runs/season-days

Each day is built exactly as data/contested is (data/make_contested.py: the same three MV
grids, feeders, limits, DER, prices and seed; that day's SimBench loads and generation, AC
base flows, the DSO needs and traffic lights they cause, TSO needs from the intra-hour
deviation of the day's net load), one batch folder per local day, named by its date. The
grids are loaded once. Nothing is downloaded: SimBench ships its grids and profiles. A day
whose power flows give no valid batch (a diverged AC flow: base flows of 10^5 MW) is
skipped and named.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_contested import GRIDS, build  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--first", default="2016-11-01", help="the first local day, YYYY-MM-DD (SimBench covers 2016)")
    args.add_argument("--days", type=int, default=90, help="how many consecutive days")
    args.add_argument("--out", type=Path, required=True, help="folder to write one batch folder per day into")
    a = args.parse_args(argv)
    if a.out.exists() and any(a.out.iterdir()):
        print(f"{a.out} exists and is not empty; nothing written", file=sys.stderr)
        return 2
    if not 1 <= a.days <= 366:
        print("--days must be 1 to 366", file=sys.stderr)
        return 2
    import simbench as sb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nets = {dso: sb.get_simbench_net(code) for dso, code in GRIDS.items()}
    from market.errors import BatchValidationError

    skipped = []
    for day in pd.date_range(a.first, periods=a.days, freq="D"):
        text = day.strftime("%Y-%m-%d")
        try:
            build(text, a.out / text, None, nets)
        except BatchValidationError as exc:  # a day whose power flows give no valid batch: said, not hidden
            skipped.append(text)
            print(f"{text}: skipped, its batch is invalid ({str(exc).splitlines()[1].strip()})", file=sys.stderr)
    if skipped:
        print(f"{len(skipped)} day(s) skipped: {', '.join(skipped)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
