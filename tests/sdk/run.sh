#!/usr/bin/env bash
# Start a throw-away Leadscore server with tests/sdk/sdk-model.toml, run the real-SDK client tests
# against it, stop it. Does not build anything: set LEADSCORE_BIN or build target/debug/leadscore
# first.
#
#   pip install segment-analytics-python==2.4.0 rudder-sdk-python==2.1.9
#   npm install --prefix tests/sdk
#   tests/sdk/run.sh            # PORT=18181 by default
#
# Exit status: 0 all passed, 1 a failure, 77 nothing failed but something was skipped.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="${LEADSCORE_BIN:-$ROOT/target/debug/leadscore}"
PORT="${PORT:-18181}"
HOST="http://127.0.0.1:$PORT"
WK="wk_sdk_test"
AK="ak_sdk_test"

[ -x "$BIN" ] || { echo "FAIL: no server binary at $BIN (build it or set LEADSCORE_BIN)"; exit 1; }
"$BIN" check "$HERE/sdk-model.toml" || { echo "FAIL: tests/sdk/sdk-model.toml does not check"; exit 1; }

WORK="$(mktemp -d)"
(cd "$WORK" && exec "$BIN" serve --model "$HERE/sdk-model.toml" --db "sqlite://$WORK/sdk.db" \
  --listen "127.0.0.1:$PORT" --write-key "$WK" --api-key "$AK" >"$WORK/server.log" 2>&1) &
SERVER_PID=$!
cleanup() { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl -fsS "$HOST/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "FAIL: the server exited:"; cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done

failed=0; skipped=0
run() {
  "$@" --host "$HOST" --write-key "$WK" --api-key "$AK"
  case $? in
    0) ;;
    77) skipped=1 ;;
    *) failed=1 ;;
  esac
}
run python3 "$HERE/python_sdks.py"
run node "$HERE/node_sdk.mjs"

if [ "$failed" = 1 ]; then echo "--- server log:"; tail -n 50 "$WORK/server.log"; exit 1; fi
[ "$skipped" = 1 ] && exit 77
exit 0
