#!/usr/bin/env bash
# The closed loop on synthetic data: train a scorecard on one `leadscore gen` dataset (seed 1),
# then backtest it against the hand-written b2b-default model and the ground-truth-aware model on
# a second, independent dataset (seed 2). Prints the backtest comparison.
#
#   bash bench/learning_loop.sh            # LEADS=20000 by default
set -euo pipefail
cd "$(dirname "$0")/.."
LEADS=${LEADS:-20000}
OUT=${OUT:-bench/out/loop}
END=2024-06-30T00:00:00Z
cargo build --release -p leadscore >&2
BIN=target/release/leadscore
mkdir -p "$OUT"
[[ -f "$OUT/train/leads.csv" ]] || $BIN gen --leads "$LEADS" --seed 1 --end "$END" --out "$OUT/train" >&2
[[ -f "$OUT/test/leads.csv" ]] || $BIN gen --leads "$LEADS" --seed 2 --end "$END" --out "$OUT/test" >&2
echo "== train on seed 1 ($LEADS leads)" >&2
/usr/bin/time -f "train: %e s, %M KB peak RSS" $BIN train --leads "$OUT/train/leads.csv" --outcomes "$OUT/train/outcomes.csv" \
  --events "$OUT/train/events.jsonl" --as-of "$END" --out "$OUT/learned.toml" --report "$OUT/train-report.html"
echo "== backtest on seed 2 ($LEADS leads)" >&2
/usr/bin/time -f "backtest: %e s, %M KB peak RSS" $BIN backtest --model "$OUT/learned.toml" --model examples/models/b2b-default.toml \
  --model examples/models/synthetic-truth.toml --leads "$OUT/test/leads.csv" --events "$OUT/test/events.jsonl" \
  --outcomes "$OUT/test/outcomes.csv" --as-of "$END" --html "$OUT/backtest.html" | sed -n '1,6p'
