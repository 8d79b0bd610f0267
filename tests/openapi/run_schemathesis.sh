#!/usr/bin/env bash
# Property-based API tests of a running Leadscore server with schemathesis, driven by the server's own
# GET /openapi.json: every operation, every phase (examples, coverage, fuzzing, stateful), checks:
#   not_a_server_error, status_code_conformance, content_type_conformance,
#   response_schema_conformance, response_headers_conformance, ignored_auth,
#   use_after_free, ensure_resource_availability (the last two in stateful scenarios).
#
#   tests/openapi/run_schemathesis.sh --base http://127.0.0.1:8080 --write-key WK --api-key AK
#
# or LEADSCORE_BASE / LEADSCORE_WRITE_KEY / LEADSCORE_API_KEY. The server must hold some leads
# (seed.py); it is changed (leads deleted, outcomes recorded, models uploaded and activated, events
# ingested), so use a throwaway database. ci.sh does all of it from a binary.
#
# Runs, each with its own report (REPORT_DIR/<run>.ndjson, .xml):
#   valid    the right key per operation (hooks.py), all phases, MAX_EXAMPLES per operation;
#            the coverage phase also sends requests without Authorization
#   none     no Authorization header         } fuzzing only, AUTH_EXAMPLES per operation, the
#   wrong    an unknown key                  } operations that declare security: the refusals
#   swapped  api key on /v1, write key on /api}  (401/403) must be documented too
# then summarize.py prints the distinct failures with a curl command each (REPORT_DIR/summary.txt).
#
# Options (or environment): --max-examples N (LEADSCORE_ST_MAX_EXAMPLES, 100), --auth-examples N
# (LEADSCORE_ST_AUTH_EXAMPLES, 10), --seed S (LEADSCORE_ST_SEED, 20240601), --workers W
# (LEADSCORE_ST_WORKERS, 1), --report-dir D (LEADSCORE_ST_REPORT_DIR, tests/openapi/report).
# Exit status: 0 when every run passed, 1 on any failure or error, 2 on bad usage.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

base="${LEADSCORE_BASE:-}"
write_key="${LEADSCORE_WRITE_KEY:-}"
api_key="${LEADSCORE_API_KEY:-}"
max_examples="${LEADSCORE_ST_MAX_EXAMPLES:-100}"
auth_examples="${LEADSCORE_ST_AUTH_EXAMPLES:-10}"
seed="${LEADSCORE_ST_SEED:-20240601}"
workers="${LEADSCORE_ST_WORKERS:-1}"
report_dir="${LEADSCORE_ST_REPORT_DIR:-$here/report}"
usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --write-key) write_key="$2"; shift 2 ;;
    --api-key) api_key="$2"; shift 2 ;;
    --max-examples) max_examples="$2"; shift 2 ;;
    --auth-examples) auth_examples="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --report-dir) report_dir="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[ -n "$base" ] && [ -n "$write_key" ] && [ -n "$api_key" ] || usage
base="${base%/}"
schemathesis="${SCHEMATHESIS:-schemathesis}"
command -v "$schemathesis" >/dev/null || {
  echo "schemathesis not found: python3 -m pip install -r $here/requirements.txt" >&2
  exit 2
}

rm -rf "$report_dir"
mkdir -p "$report_dir"
report_dir="$(cd "$report_dir" && pwd)"
export LEADSCORE_BASE="$base" LEADSCORE_WRITE_KEY="$write_key" LEADSCORE_API_KEY="$api_key"
export SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
checks=$checks,response_headers_conformance,ignored_auth,use_after_free,ensure_resource_availability

status=0
run() { # NAME AUTH_MODE [schemathesis run options...]
  local name="$1" mode="$2"
  shift 2
  echo "== schemathesis: $name (auth: $mode); full output in $report_dir/$name.log"
  # From the report directory, so hypothesis' and schemathesis' working files land there.
  (cd "$report_dir" && LEADSCORE_ST_AUTH="$mode" "$schemathesis" --no-color run "$base/openapi.json" \
    --checks "$checks" \
    --seed "$seed" \
    --workers "$workers" \
    --continue-on-failure \
    --generation-database none \
    --output-sanitize false \
    --request-timeout 60 \
    --report ndjson,junit \
    --report-ndjson-path "$report_dir/$name.ndjson" \
    --report-junit-path "$report_dir/$name.xml" \
    "$@") > "$report_dir/$name.log" 2>&1
  local rc=$?
  # The whole log repeats every failing request (model bodies of 500 KB included); show its summary.
  sed -n '/^=* SUMMARY =*$/,$p' "$report_dir/$name.log" | grep -v '^$'
  [ "$rc" -eq 0 ] || [ -n "$(sed -n '/SUMMARY/p' "$report_dir/$name.log")" ] || tail -40 "$report_dir/$name.log"
  echo "== schemathesis: $name exit $rc"
  [ "$rc" -eq 0 ] || status=1
}

start=$(date +%s)
run valid valid --phases examples,coverage,fuzzing,stateful --max-examples "$max_examples"
for mode in none wrong swapped; do
  run "$mode" "$mode" --phases fuzzing --max-examples "$auth_examples" \
    --exclude-operation-id healthz --exclude-operation-id settings
done
echo
echo "== distinct failures (all runs; also in $report_dir/summary.txt), $(( $(date +%s) - start ))s"
python3 "$here/summarize.py" "$report_dir"
exit "$status"
