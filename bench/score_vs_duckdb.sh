#!/usr/bin/env bash
# Batch scoring against a peer: `leadscore score` and DuckDB running the same model as one SQL
# query (bench/duckdb_score.py), on the same files, in the same run, on JSON Lines and on Parquet.
# Checks that every lead agrees (every number within 0.01, same stage) and fails loudly if not;
# prints a markdown table for BENCHMARKS.md.
#
#   LEADSCORE_BIN=target/release/leadscore bash bench/score_vs_duckdb.sh
#
# Environment: LEADSCORE_BIN (default target/release/leadscore; this script does not build),
# BENCH_LEADS (250000), BENCH_EVENTS (5000000), BENCH_SEED (1), BENCH_AS_OF
# (2024-07-01T00:00:00Z), BENCH_OUT (bench/out/duckdb, gitignored), BENCH_RUNS (runs of each, best
# wall time kept; 1), DUCKDB_THREADS (2).
# Needs python3 with duckdb (pip install duckdb). Data come from bench/gen_bench_data.py (leads.csv,
# events.jsonl) and are converted to Parquet by DuckDB (events.parquet: Segment columns,
# properties/traits/context as JSON text, timestamp as a UTC timestamp); both are generated once
# per size and reused.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${LEADSCORE_BIN:-target/release/leadscore}
LEADS=${BENCH_LEADS:-250000}
EVENTS=${BENCH_EVENTS:-5000000}
SEED=${BENCH_SEED:-1}
AS_OF=${BENCH_AS_OF:-2024-07-01T00:00:00Z}
OUT=${BENCH_OUT:-bench/out/duckdb}
RUNS=${BENCH_RUNS:-1}
THREADS=${DUCKDB_THREADS:-2}
MODEL=bench/models/peer10.toml

[[ -x "$BIN" ]] || { echo "no leadscore binary at $BIN: cargo build --release -p leadscore, or set LEADSCORE_BIN" >&2; exit 2; }
python3 -c 'import duckdb' 2>/dev/null || { echo "needs DuckDB for Python: pip install duckdb" >&2; exit 2; }
"$BIN" check "$MODEL" >&2

DATA=$OUT/data-$LEADS-$EVENTS-$SEED
PARAMS="leads=$LEADS events=$EVENTS seed=$SEED generator=$(sha256sum bench/gen_bench_data.py | cut -c1-16)"
if [[ ! -f "$DATA/events.jsonl" || ! -f "$DATA/params" || "$(cat "$DATA/params")" != "$PARAMS" ]]; then
  echo "== generating $LEADS leads / $EVENTS messages into $DATA" >&2
  mkdir -p "$DATA"
  rm -f "$DATA/params" "$DATA/events.parquet"
  python3 bench/gen_bench_data.py --out "$DATA" --leads "$LEADS" --events "$EVENTS" --seed "$SEED" >&2
  echo "$PARAMS" >"$DATA/params"
fi
if [[ ! -f "$DATA/events.parquet" ]]; then
  echo "== converting the events to Parquet" >&2
  python3 bench/duckdb_score.py --to-parquet "$DATA/events.jsonl" "$DATA/events.parquet.tmp" >&2
  mv "$DATA/events.parquet.tmp" "$DATA/events.parquet"
fi

N_EVENTS=$(grep -c '' "$DATA/events.jsonl")
N_LEADS=$(($(grep -c '' "$DATA/leads.csv") - 1))
SIZE_JSONL=$(du -m "$DATA/events.jsonl" | cut -f1)
SIZE_PARQUET=$(du -m "$DATA/events.parquet" | cut -f1)
RES=$DATA/results
mkdir -p "$RES"

# shellcheck source=bench/measure.sh
source bench/measure.sh

declare -A BEST_WALL BEST_RSS BEST_CPU
# run NAME OUTFILE cmd...: RUNS runs, the best wall time (and that run's RSS) kept.
run() {
  local name=$1 out=$2
  shift 2
  for ((i = 1; i <= RUNS; i++)); do
    echo "== $name (run $i/$RUNS)" >&2
    LOAD=$(cut -d' ' -f1 /proc/loadavg)
    measure "$RES/time-$name.log" "$@"
    echo "   ${WALL}s wall, ${CPU}s CPU, ${RSS} MiB (load average before: $LOAD)" >&2
    if [[ -z "${BEST_WALL[$name]:-}" ]] || awk -v a="$WALL" -v b="${BEST_WALL[$name]}" 'BEGIN {exit !(a < b)}'; then
      BEST_WALL[$name]=$WALL BEST_RSS[$name]=$RSS BEST_CPU[$name]=$CPU
    fi
  done
  [[ -s "$out" ]] || { echo "$name wrote no scores to $out" >&2; exit 1; }
}

# Both read the same files from the page cache.
cat "$DATA/leads.csv" "$DATA/events.jsonl" "$DATA/events.parquet" >/dev/null

for fmt in jsonl parquet; do
  events=$DATA/events.$fmt
  run "leadscore-$fmt" "$RES/leadscore-$fmt.jsonl" \
    "$BIN" score --model "$MODEL" --leads "$DATA/leads.csv" --events "$events" --as-of "$AS_OF" \
    --format jsonl --out "$RES/leadscore-$fmt.jsonl"
  run "duckdb-$fmt" "$RES/duckdb-$fmt.jsonl" \
    python3 bench/duckdb_score.py --leads "$DATA/leads.csv" --events "$events" --as-of "$AS_OF" \
    --threads "$THREADS" --out "$RES/duckdb-$fmt.jsonl"
done

echo "== comparing every lead" >&2
ok=1
for fmt in jsonl parquet; do
  python3 bench/compare_scores.py "$RES/leadscore-$fmt.jsonl" "$RES/duckdb-$fmt.jsonl" \
    --names "leadscore-$fmt,duckdb-$fmt" --show 5 >&2 || ok=0
done
python3 bench/compare_scores.py "$RES/leadscore-jsonl.jsonl" "$RES/leadscore-parquet.jsonl" \
  --names leadscore-jsonl,leadscore-parquet --show 5 >&2 || ok=0
if [[ $ok != 1 ]]; then
  echo "FAILED: leadscore and DuckDB disagree (see above); no table" >&2
  exit 1
fi
AGREE="every one of the $(grep -c '' "$RES/leadscore-jsonl.jsonl") leads agrees (each dimension and total within 0.01, same stage) between leadscore and DuckDB, on JSON Lines and on Parquet"

CPU_NAME=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
DUCK_VERSION=$(python3 -c 'import duckdb; print(duckdb.__version__)')
LS_VERSION=$("$BIN" --version 2>/dev/null || echo leadscore)
echo
echo "\`leadscore score\` against DuckDB $DUCK_VERSION running the same model as one SQL query, same files, same"
echo "run: \`bench/models/peer10.toml\` (10 rules), as of $AS_OF; $N_LEADS leads, $N_EVENTS Segment messages from"
echo "\`bench/gen_bench_data.py\` (seed $SEED): events.jsonl $SIZE_JSONL MiB, events.parquet $SIZE_PARQUET MiB (zstd);"
echo "DuckDB with $THREADS threads; $(nproc) cores ($CPU_NAME); $LS_VERSION; \`/usr/bin/time -v\`, best of $RUNS; by"
echo "\`bench/score_vs_duckdb.sh\`. Check: $AGREE."
echo
echo "| run | wall s | events/s | peak RSS MiB | CPU s (user+sys) | ratio to DuckDB (wall, same input) |"
echo "|---|---:|---:|---:|---:|---:|"
for fmt in jsonl parquet; do
  label=$([[ $fmt == jsonl ]] && echo "JSON Lines" || echo "Parquet")
  d=${BEST_WALL[duckdb-$fmt]}
  for who in leadscore duckdb; do
    w=${BEST_WALL[$who-$fmt]} r=${BEST_RSS[$who-$fmt]} c=${BEST_CPU[$who-$fmt]}
    awk -v who="$who" -v l="$label" -v w="$w" -v r="$r" -v c="$c" -v n="$N_EVENTS" -v d="$d" 'BEGIN {
      printf "| %s, %s | %.2f | %.0f | %d | %.1f | %.2f× |\n", who, l, w, n / w, r, c, w / d }'
  done
done
