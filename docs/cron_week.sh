#!/usr/bin/env bash
# A settlement desk's week on the sample, run the way cron would run it: one call of
# `flexmarket settle-due` per day, with one meter correction and one dispute in between.
# Every day prints what the calendar settled and what changed in the store.
#
#   bash docs/cron_week.sh [DATA_FOLDER] [WORK_FOLDER]     (defaults: data, runs/desk-week)
#
# The calendar is the [calendar] table of data/settle.toml: delivery on Thursday
# 2016-12-01, initial statements at T+1 (Friday), recalculations at T+3 and T+5 business days
# (Tuesday and Thursday of the next week). On Saturday the meter operator sends corrected
# readings for one DER and the desk runs a correction; on Monday an aggregator disputes its
# corrected statement; on Thursday, after the last recalculation, the desk resolves it.
set -euo pipefail
DATA=${1:-data}
WORK=${2:-runs/desk-week}
if [ -e "$WORK" ]; then
  echo "cron_week.sh: $WORK exists; give another work folder (nothing is overwritten)" >&2
  exit 2
fi
mkdir -p "$WORK/runs"
flexmarket --quiet clear "$DATA/sample" --out "$WORK/runs/day-2016-12-01"
cp "$DATA/meter.parquet" "$WORK/meter.parquet"   # the desk's copy of the newest meter data
DB="duckdb:///$WORK/settled/store.duckdb"

cat > "$WORK/say_changes.py" <<'PY'
"""The settle-due --json document on stdin: one line per run, one per statement version added."""
import json
import sys

doc = json.load(sys.stdin)
if not doc["settled"]:
    print("  nothing due")
for run in doc["settled"]:
    print(f"  {run['run_type']}: {run['reason']}: {len(run['changed'])} new version(s), {run['deltas']} changed line(s)")
    for c in run["changed"]:
        before = "new" if c["previous_version"] is None else f"v{c['previous_version']} {c['net_eur_before']:.2f}"
        print(f"    {c['aggregator_id']} / {c['buyer_id']}: {before} -> v{c['version']} {c['net_eur_after']:.2f} EUR")
PY

for day in 2016-12-01 2016-12-02 2016-12-03 2016-12-04 2016-12-05 2016-12-06 2016-12-07 2016-12-08; do
  echo "== $day"
  if [ "$day" = 2016-12-03 ]; then
    echo "  meter operator: corrected readings for one DER on the delivery day -> correction run"
    python3 - "$WORK/meter.parquet" <<'PY'
import sys
import pandas as pd
path = sys.argv[1]
m = pd.read_parquet(path)
der = sorted(m["der_id"].unique())[0]
day = (m["interval_start"] >= "2016-12-01T16:00:00+00:00") & (m["interval_start"] < "2016-12-01T20:00:00+00:00")
m.loc[day & (m["der_id"] == der), "consumption_kwh"] *= 1.25
m.to_parquet(path + ".new", index=False)
PY
    mv "$WORK/meter.parquet.new" "$WORK/meter.parquet"
    flexmarket --quiet settle --run "$WORK/runs/day-2016-12-01" --meter "$WORK/meter.parquet" \
      --config "$DATA/settle.toml" --out "$WORK/settled/day-2016-12-01" --db "$DB" \
      --type correction --reason "corrected meter readings received $day" --json \
      | python3 -c 'import json,sys; d=json.load(sys.stdin); print("  correction:", len(d["changed"]), "new version(s),", len(d["deltas"]), "changed line(s)")'
  fi
  if [ "$day" = 2016-12-05 ]; then
    ID=$(flexmarket statements list --db "$DB" --json | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["version"] > 1]
print(rows[0]["statement_id"] if rows else "")')
    if [ -n "$ID" ]; then
      flexmarket --quiet statements dispute "$ID" --db "$DB" --by aggregator --reason "corrected readings look too high"
      echo "  dispute raised on $ID"
    fi
  fi
  flexmarket --quiet settle-due --runs "$WORK/runs" --meter "$WORK/meter.parquet" --config "$DATA/settle.toml" \
    --out "$WORK/settled" --db "$DB" --date "$day" --json | python3 "$WORK/say_changes.py"
  if [ "$day" = 2016-12-08 ] && [ -n "${ID:-}" ]; then
    flexmarket --quiet statements resolve "$ID" --db "$DB" --by desk \
      --reason "the meter operator confirmed the corrected readings; the figures stand"
    echo "  dispute on $ID resolved by decision"
  fi
done
echo "== statements after the week"
flexmarket statements list --db "$DB" --all-versions
