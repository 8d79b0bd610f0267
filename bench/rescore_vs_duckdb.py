#!/usr/bin/env python3
"""The full rescore after a model activation against its peer, DuckDB computing the same model
over the same messages, in the same run.

    python3 bench/rescore_vs_duckdb.py --data bench/out/duckdb/data-20000-400000-1 \
        [--binary target/release/leadscore] [--model bench/models/peer10.toml] [--keep]

1. Starts `leadscore serve` with the model on a fresh SQLite file and sends every message of
   DATA/events.jsonl (bench/gen_bench_data.py's output) through `/v1/batch` (500 a request,
   8 senders); reports that ingest rate too.
2. Uploads the same model under another name and activates it with `?wait=true`: the server
   rescores every stored lead from its stored messages (the rescore job a model activation
   runs). Wall time from the request to the answer; the server's RSS sampled every 50 ms.
3. The peer: bench/duckdb_score.py (the model as one SQL query, 2 threads) over the same
   events.jsonl, as of the same instant, with no leads file rows (the server has no leads file
   either: traits come from `identify` messages). Wall time of the process (Python start
   included, ~0.1 s).

Only bench/models/peer10.toml has a DuckDB translation. Standard library plus `duckdb`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from million_leads import RssPeak, free_port, rss_mib, wait_up  # noqa: E402

WRITE_KEY, API_KEY = "wk", "ak"


def request(port: int, method: str, path: str, body: bytes | None = None, auth: str = "api", timeout: float = 600):
    headers = {"Content-Type": "application/json"}
    if auth == "write":
        headers["Authorization"] = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    else:
        headers["Authorization"] = f"Bearer {API_KEY}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read() or b"null")


def ingest(port: int, path: str, senders: int = 8, per_request: int = 500) -> tuple[int, float]:
    with open(path, "rb") as f:
        lines = [line.rstrip(b"\n") for line in f if line.strip()]
    bodies = [b'{"batch":[' + b",".join(lines[i:i + per_request]) + b"]}" for i in range(0, len(lines), per_request)]
    queue = list(reversed(bodies))
    lock = threading.Lock()
    errors: list[str] = []

    def run():
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            while True:
                try:
                    request(port, "POST", "/v1/batch", body, auth="write")
                    break
                except urllib.error.HTTPError as e:
                    if e.code in (429, 503):
                        time.sleep(float(e.headers.get("Retry-After") or 1))
                        continue
                    errors.append(f"{e.code}: {e.read()[:200]!r}")
                    return

    t = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(senders)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise SystemExit(f"ingest failed: {errors[0]}")
    return len(lines), time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a directory with events.jsonl (bench/gen_bench_data.py)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/leadscore"))
    ap.add_argument("--model", default=os.path.join(ROOT, "bench/models/peer10.toml"))
    ap.add_argument("--duckdb-threads", type=int, default=2)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    events = os.path.join(a.data, "events.jsonl")
    work = tempfile.mkdtemp(prefix="leadscore-rescore-")
    log = open(os.path.join(work, "server.log"), "w")
    port = free_port()
    proc = subprocess.Popen(
        [a.binary, "serve", "--model", a.model, "--db", "sqlite://" + os.path.join(work, "leads.db"),
         "--listen", f"127.0.0.1:{port}", "--write-key", WRITE_KEY, "--api-key", API_KEY],
        stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_up(port, proc)
        n, took = ingest(port, events)
        print(f"ingest: {n} messages in {took:.1f} s ({n / took:,.0f} events/s)", file=sys.stderr)
        with open(a.model) as f:
            source = f.read().replace('name = "peer10"', 'name = "peer10-again"', 1)
        status, created = request(port, "POST", "/api/models", source.encode())
        version = created["version"]
        # The RSS sampled during the rescore, not the process's high-water mark, which ingest
        # may have set.
        after_ingest = rss_mib(proc.pid)
        as_of = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with RssPeak(proc.pid) as sampled:
            t = time.perf_counter()
            status, answer = request(port, "POST", f"/api/models/{version}/activate?wait=true")
            rescore = time.perf_counter() - t
        progress = request(port, "GET", "/api/models")[1]["rescore"]
        leads = progress["total"]
        if not progress["finished"] or progress.get("error"):
            raise SystemExit(f"the rescore did not finish: {progress}")
        # The peer, as of the same instant.
        header = os.path.join(work, "no-leads.csv")
        with open(header, "w") as f:
            f.write("id,title,employees,created_at\n")
        out = os.path.join(work, "duckdb.jsonl")
        t = time.perf_counter()
        subprocess.run([sys.executable, os.path.join(ROOT, "bench/duckdb_score.py"), "--leads", header, "--events",
                        events, "--as-of", as_of, "--out", out, "--threads", str(a.duckdb_threads)], check=True)
        duck = time.perf_counter() - t
        with open(out) as f:
            duck_leads = sum(1 for _ in f)
        print()
        print(f"| {n:,} stored messages, {leads:,} leads (`{os.path.basename(a.model)}`) | wall time | leads/s |")
        print("|---|---:|---:|")
        print(f"RSS before the activation {after_ingest[0]:.0f} MiB (high-water mark of the ingest "
              f"{after_ingest[1]:.0f} MiB)", file=sys.stderr)
        print(f"| server: full rescore after an activation (`?wait=true`), peak RSS {sampled.peak:.0f} MiB | "
              f"**{rescore:.2f} s** | {leads / rescore:,.0f} |")
        print(f"| peer: DuckDB, the same model as one query over events.jsonl, {a.duckdb_threads} threads "
              f"({duck_leads:,} leads) | **{duck:.2f} s** | {duck_leads / duck:,.0f} |")
        print(f"| server / DuckDB | {rescore / duck:.2f}x | |")
        return 0
    finally:
        proc.terminate()
        proc.wait()
        log.close()
        if a.keep:
            print("kept", work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
