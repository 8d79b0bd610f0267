#!/usr/bin/env python3
"""Load a `leadscore gen` dataset into a running server through its own API (stdlib only).

    seed.py --base URL --write-key WK --api-key AK --data DIR

Events (DIR/events.jsonl) go to POST /v1/batch in batches (Basic auth, write key as user name);
outcomes (DIR/outcomes.csv) to POST /api/leads/{id}/outcome (Bearer api key). Exits non-zero if
any request is refused, so a broken ingest path fails loudly instead of leaving an empty database.
"""
import argparse
import base64
import csv
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request


def post(url, body, headers):
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default=os.environ.get("LEADSCORE_BASE"))
    ap.add_argument("--write-key", default=os.environ.get("LEADSCORE_WRITE_KEY"))
    ap.add_argument("--api-key", default=os.environ.get("LEADSCORE_API_KEY"))
    ap.add_argument("--data", required=True, help="directory written by `leadscore gen`")
    ap.add_argument("--batch-size", type=int, default=200)
    args = ap.parse_args()
    if not (args.base and args.write_key and args.api_key):
        ap.error("--base, --write-key and --api-key are required")
    base = args.base.rstrip("/")
    basic = "Basic " + base64.b64encode(f"{args.write_key}:".encode()).decode()
    bearer = f"Bearer {args.api_key}"

    with open(os.path.join(args.data, "events.jsonl"), encoding="utf-8") as f:
        events = [json.loads(line) for line in f if line.strip()]
    for i in range(0, len(events), args.batch_size):
        body = json.dumps({"batch": events[i : i + args.batch_size]}).encode()
        status, answer = post(f"{base}/v1/batch", body, {"Authorization": basic, "Content-Type": "application/json"})
        if status != 200:
            sys.exit(f"seed: POST /v1/batch -> {status} {answer[:300]!r}")
    outcomes = 0
    path = os.path.join(args.data, "outcomes.csv")
    if os.path.exists(path):
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                lead = urllib.parse.quote(row["lead_id"], safe="")
                body = json.dumps({"outcome": row["outcome"], "at": row["at"]}).encode()
                status, answer = post(
                    f"{base}/api/leads/{lead}/outcome", body, {"Authorization": bearer, "Content-Type": "application/json"}
                )
                if status != 200:
                    sys.exit(f"seed: POST /api/leads/{lead}/outcome -> {status} {answer[:300]!r}")
                outcomes += 1
    print(f"seed: {len(events)} events, {outcomes} outcomes -> {base}")


if __name__ == "__main__":
    main()
