#!/usr/bin/env python3
"""The full rescore of a model activation on a database that already holds the leads, in a fresh
server (no ingest before it, so its RSS is the rescore's own): copies DB, starts `leadscore
serve` on the copy, uploads MODEL under a new name, activates it with `?wait=true`, and prints the
wall time and the server's RSS (VmRSS every 50 ms) before and during.

    python3 bench/rescore_vs_duckdb.py --data DIR --keep     # prints `kept WORK`
    python3 bench/reactivate.py WORK/leads.db [--binary B] [--model bench/models/peer10.toml]

Standard library only.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from million_leads import RssPeak, free_port, rss_mib, wait_up  # noqa: E402
from rescore_vs_duckdb import request  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--binary", default="target/release/leadscore")
    ap.add_argument("--model", default=os.path.join(ROOT, "bench/models/peer10.toml"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="leadscore-reactivate-")
    try:
        shutil.copy(a.db, os.path.join(work, "leads.db"))
        port = free_port()
        with open(os.path.join(work, "server.log"), "w") as log:
            proc = subprocess.Popen(
                [a.binary, "serve", "--model", a.model, "--db", f"sqlite://{work}/leads.db", "--listen",
                 f"127.0.0.1:{port}", "--write-key", "wk", "--api-key", "ak"], stdout=subprocess.DEVNULL, stderr=log)
            try:
                wait_up(port, proc)
                with open(a.model) as f:
                    source = f.read().replace('name = "', f'name = "again-{int(time.time())}-', 1)
                _, created = request(port, "POST", "/api/models", source.encode())
                before = rss_mib(proc.pid)[0]
                with RssPeak(proc.pid) as sampled:
                    t = time.perf_counter()
                    request(port, "POST", f"/api/models/{created['version']}/activate?wait=true", b"")
                    took = time.perf_counter() - t
            finally:
                proc.terminate()
                proc.wait()
        print(f"rescore {took:.2f} s; RSS before {before:.0f} MiB, peak during {sampled.peak:.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
