#!/usr/bin/env bash
# End-to-end benchmark of `leadscore score` on 100k leads / 5M Segment messages with
# examples/models/b2b-default.toml, and the Python reference (bench/reference_score.py) on a 1%
# sample of the same data as the peer. Prints a markdown table for BENCHMARKS.md.
#
#   bash bench/score_e2e.sh
#
# Environment: BENCH_OUT (default bench/out, gitignored), BENCH_LEADS (100000), BENCH_EVENTS
# (5000000), BENCH_SEED (1), BENCH_RUNS (runs of the engine on the full data, best kept; 1),
# BENCH_PROFILE (release; "debug" only to try the script out quickly).
# Needs python3 with cel-python for the peer (pip install cel-python==0.5.0); without it the peer
# row says so. Data are generated once (bench/gen_bench_data.py) and reused while the parameters
# match.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${BENCH_OUT:-bench/out}
LEADS=${BENCH_LEADS:-100000}
EVENTS=${BENCH_EVENTS:-5000000}
SEED=${BENCH_SEED:-1}
RUNS=${BENCH_RUNS:-1}
MODEL=examples/models/b2b-default.toml
AS_OF=2024-07-01T00:00:00Z
PROFILE=${BENCH_PROFILE:-release}
BIN=target/$PROFILE/leadscore

if [[ "$PROFILE" == release ]]; then
  echo "== cargo build --release -p leadscore" >&2
  cargo build --release -p leadscore >&2
else
  echo "== cargo build -p leadscore (debug: numbers not comparable)" >&2
  cargo build -p leadscore >&2
fi

PARAMS="leads=$LEADS events=$EVENTS seed=$SEED generator=$(sha256sum bench/gen_bench_data.py | cut -c1-16)"
if [[ ! -f "$OUT/events.jsonl" || ! -f "$OUT/params" || "$(cat "$OUT/params")" != "$PARAMS" ]]; then
  echo "== generating $LEADS leads / $EVENTS messages into $OUT" >&2
  rm -f "$OUT/params"
  python3 bench/gen_bench_data.py --out "$OUT" --leads "$LEADS" --events "$EVENTS" --seed "$SEED" >&2
  echo "$PARAMS" >"$OUT/params"
fi

messages() { grep -c '' "$1"; }
# shellcheck source=bench/measure.sh
source bench/measure.sh

N_FULL=$(messages "$OUT/events.jsonl")
N_LEADS_FULL=$(($(messages "$OUT/leads.csv") - 1))
SIZE_FULL=$(du -m "$OUT/events.jsonl" | cut -f1)
N_SAMPLE=$(messages "$OUT/sample/events.jsonl")
N_LEADS_SAMPLE=$(($(messages "$OUT/sample/leads.csv") - 1))

score_args() { # score_args DIR
  echo --model "$MODEL" --leads "$1/leads.csv" --events "$1/events.jsonl" --outcomes "$1/outcomes.csv" \
    --as-of "$AS_OF" --format csv
}

best_wall="" best_rss=""
for ((run = 1; run <= RUNS; run++)); do
  echo "== leadscore score, full data (run $run/$RUNS)" >&2
  # shellcheck disable=SC2046
  measure "$OUT/time-engine.log" "$BIN" score $(score_args "$OUT") --out "$OUT/scores.csv"
  wall=$WALL rss=$RSS
  echo "   ${wall}s, ${rss} MiB" >&2
  if [[ -z "$best_wall" ]] || awk -v a="$wall" -v b="$best_wall" 'BEGIN {exit !(a < b)}'; then
    best_wall=$wall best_rss=$rss
  fi
done

echo "== leadscore score, 1% sample" >&2
# shellcheck disable=SC2046
measure "$OUT/time-engine-sample.log" "$BIN" score $(score_args "$OUT/sample") --out "$OUT/sample/engine.csv"
s_wall=$WALL s_rss=$RSS

peer_row=""
if python3 -c "import celpy" 2>/dev/null; then
  echo "== python3 bench/reference_score.py, 1% sample (takes a few minutes)" >&2
  # shellcheck disable=SC2046
  measure "$OUT/time-reference.log" python3 bench/reference_score.py $(score_args "$OUT/sample") \
    --out "$OUT/sample/reference.csv"
  p_wall=$WALL p_rss=$RSS
  agree=$(python3 - "$OUT/sample/reference.csv" "$OUT/sample/engine.csv" <<'EOF'
import csv, sys
a = list(csv.reader(open(sys.argv[1])))
b = list(csv.reader(open(sys.argv[2])))
def same(x, y):
    try:
        return abs(float(x) - float(y)) <= 0.011
    except ValueError:
        return x == y
bad = sum(1 for r, s in zip(a, b) if len(r) != len(s) or not all(same(x, y) for x, y in zip(r, s)))
bad += abs(len(a) - len(b))
print("identical scores" if bad == 0 else f"{bad} rows differ")
EOF
)
  peer_row=$(awk -v n="$N_SAMPLE" -v l="$N_LEADS_SAMPLE" -v w="$p_wall" -v r="$p_rss" -v ag="$agree" 'BEGIN {
    printf "| Python reference (cel-python 0.5.0), 1%% sample | %d | %d | %.1f s | %.0f | %d MiB | %s |", l, n, w, n / w, r, ag }')
else
  peer_row="| Python reference, 1% sample | $N_LEADS_SAMPLE | $N_SAMPLE | skipped: needs python3 with cel-python (pip install cel-python) | | | |"
fi

CPU_NAME=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "\`leadscore score\` end to end (read leads, events and outcomes, score, write CSV), model"
echo "\`examples/models/b2b-default.toml\`, as of $AS_OF; data from \`bench/gen_bench_data.py\` (seed $SEED,"
echo "events file ${SIZE_FULL} MB); $(nproc) cores ($CPU_NAME); measured with \`/usr/bin/time -v\` by \`bench/score_e2e.sh\`."
echo
echo "| run | leads | events | wall time | events/s | peak RSS | note |"
echo "|---|---:|---:|---:|---:|---:|---|"
awk -v prof="$PROFILE" -v n="$N_FULL" -v l="$N_LEADS_FULL" -v w="$best_wall" -v r="$best_rss" -v runs="$RUNS" 'BEGIN {
  printf "| leadscore (" prof "), full data | %d | %d | %.1f s | %.0f | %d MiB | best of %d |\n", l, n, w, n / w, r, runs }'
awk -v prof="$PROFILE" -v n="$N_SAMPLE" -v l="$N_LEADS_SAMPLE" -v w="$s_wall" -v r="$s_rss" 'BEGIN {
  printf "| leadscore (" prof "), 1%% sample | %d | %d | %.2f s | %.0f | %d MiB | |\n", l, n, w, n / w, r }'
echo "$peer_row"
