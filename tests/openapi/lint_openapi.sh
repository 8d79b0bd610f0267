#!/usr/bin/env bash
# Lints the OpenAPI document a running Leadscore server serves, with Redocly CLI (pinned in
# package.json / package-lock.json; ruleset in redocly.yaml: recommended-strict).
#
#   tests/openapi/lint_openapi.sh --base http://127.0.0.1:8080     (or LEADSCORE_BASE=...)
#
# Needs Node.js >= 20.19 and `npm ci --prefix tests/openapi` (run here when node_modules is missing).
# Exit status: 0 clean, 1 lint problems, 2 usage or the document cannot be fetched.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
base="${LEADSCORE_BASE:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    *) echo "usage: $0 --base URL" >&2; exit 2 ;;
  esac
done
[ -n "$base" ] || { echo "usage: $0 --base URL (or LEADSCORE_BASE)" >&2; exit 2; }
base="${base%/}"

if [ ! -x "$here/node_modules/.bin/redocly" ]; then
  npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Pretty-printed (stable key order as served), so findings carry useful line numbers.
if ! curl -fsS "$base/openapi.json" -o "$work/served.json"; then
  echo "lint: cannot fetch $base/openapi.json" >&2
  exit 2
fi
python3 -m json.tool "$work/served.json" > "$work/openapi.json"
echo "== redocly lint $base/openapi.json ($("$here/node_modules/.bin/redocly" --version 2>/dev/null | head -1), ruleset: redocly.yaml)"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
cp "$here/.redocly.lint-ignore.yaml" "$here/redocly.yaml" "$work/"
cd "$work"
status=0
"$here/node_modules/.bin/redocly" lint --config "$work/redocly.yaml" --format codeframe openapi.json || status=$?
[ "$status" -eq 0 ] || status=1
exit "$status"
