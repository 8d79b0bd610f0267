#!/usr/bin/env bash
# The whole OpenAPI conformance check, from a built binary: starts a throwaway server (temporary
# SQLite database, one webhook pointing at a closed port so the delivery log has entries), loads a
# generated dataset through ingest, runs run_schemathesis.sh and lint_openapi.sh, stops the server.
#
#   tests/openapi/ci.sh [--bin target/release/leadscore] [run_schemathesis.sh options...]
#
# Needs schemathesis (pip install -r tests/openapi/requirements.txt) and Redocly CLI (npm ci --prefix
# tests/openapi); .ci/run installs both. Exit status 0 only if schemathesis and the linter both pass
# and the server is still running at the end (no crash) with no panic in its log; 77 (skipped) when
# a tool is missing.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

bin=""
if [ "${1:-}" = "--bin" ]; then bin="$2"; shift 2; fi
if [ -z "$bin" ]; then
  for candidate in "$root/target/release/leadscore" "$root/target/debug/leadscore"; do
    if [ -x "$candidate" ]; then bin="$candidate"; break; fi
  done
fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "ci.sh: no leadscore binary (build it, or pass --bin PATH)" >&2; exit 2; }

command -v schemathesis >/dev/null ||
  { echo "skipped: schemathesis is not installed (python3 -m pip install -r tests/openapi/requirements.txt)"; exit 77; }
[ -x "$here/node_modules/.bin/redocly" ] ||
  { echo "skipped: Redocly CLI is not installed (npm ci --prefix tests/openapi)"; exit 77; }

tmp="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
write_key=wk_openapi_ci
api_key=ak_openapi_ci
cat > "$tmp/leadscore.toml" <<EOF
[[webhooks]]
url = "http://127.0.0.1:9/leadscore-openapi-ci"
secret = "openapi-ci"
EOF

"$bin" serve --config "$tmp/leadscore.toml" --model "$root/examples/models/b2b-default.toml" \
  --db "sqlite://$tmp/leadscore.db" --listen "127.0.0.1:$port" \
  --write-key "$write_key" --api-key "$api_key" > "$tmp/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 1 150); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { echo "ci.sh: the server exited:" >&2; cat "$tmp/server.log" >&2; exit 1; }
  sleep 0.2
done

"$bin" gen --leads 100 --seed 1 --out "$tmp/gen" >/dev/null &&
  python3 "$here/seed.py" --base "$base" --write-key "$write_key" --api-key "$api_key" --data "$tmp/gen" ||
  { echo "ci.sh: seeding failed" >&2; exit 1; }

status=0
"$here/run_schemathesis.sh" --base "$base" --write-key "$write_key" --api-key "$api_key" "$@" || status=1
echo
"$here/lint_openapi.sh" --base "$base" || status=1

if ! kill -0 "$server" 2>/dev/null; then
  echo "ci.sh: the server died during the run; its log:" >&2
  tail -50 "$tmp/server.log" >&2
  status=1
elif grep -n "panicked" "$tmp/server.log" >&2; then
  echo "ci.sh: the server panicked (above)" >&2
  status=1
fi
exit "$status"
