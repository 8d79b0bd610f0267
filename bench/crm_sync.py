#!/usr/bin/env python3
"""CRM write-back throughput: N leads change score (three changes each within the debounce) and
the server writes them to the HubSpot contract server (tests/crm/hubspot_contract.py, every
request validated against HubSpot's OpenAPI documents) within its burst limit.

The peer is the rate limit itself: N leads in batches of 100 are ceil(N/100) requests, and at
R requests per W seconds the fastest any client can send them is ((requests - 1) // R) * W
seconds from the first (request k can go no earlier than k // R windows after the first). The run reports how close the server comes,
whether any window held more than R requests or any batch more than 100 inputs, how many writes
each contact got (coalescing: 1 is ideal), that every contact holds its lead's latest total and
stage, and the server's peak RSS.

    python3 bench/crm_sync.py --binary target/release/leadscore [--leads 100000] [--rate 190]
"""

import argparse
import base64
import http.client
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from ingest_load import free_port, proc_status  # noqa: E402

WRITE_KEY, API_KEY, TOKEN = "wk-bench", "ak-bench", "pat-bench"
MODEL = """
[model]
name = "crm-bench"
[traits]
title = "string"
email = "string"
[dimensions.fit]
[dimensions.engagement]
[[rules]]
name = "Executive"
dimension = "fit"
if = 'lead.title.contains("VP")'
points = 40
[[rules]]
name = "Pricing page"
dimension = "engagement"
on = 'event.type == "page" && event.properties.path.startsWith("/pricing")'
points = 5
[[rules]]
name = "Demo requested"
dimension = "engagement"
on = 'event.type == "track" && event.event == "Demo Requested"'
points = 30
[[stages]]
name = "mql"
when = "total >= 50"
[[stages]]
name = "sql"
when = "total >= 70"
"""


def call(port, method, path, body=None, headers=None, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        h = {"Content-Type": "application/json", **(headers or {})}
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wait_port(port, what, proc, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            call(port, "GET", "/healthz" if what == "server" else "/__control/summary", timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--leads", type=int, default=100_000)
    p.add_argument("--rate", type=int, default=190)
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--debounce", default="5s")
    p.add_argument("--json")
    args = p.parse_args()
    python = os.path.join(ROOT, "tests/crm/.venv/bin/python")
    if not os.path.exists(python):
        sys.exit("needs tests/crm/.venv (see tests/crm/README.md)")
    work = tempfile.mkdtemp(prefix="crm-bench-")
    procs = []
    try:
        hs = subprocess.Popen([python, os.path.join(ROOT, "tests/crm/hubspot_contract.py"), "--token", TOKEN,
                               "--rate", str(args.rate), "--window", str(args.window)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(hs)
        hs_port = int(hs.stdout.readline().split()[-1])
        emails = [f"lead{i}@example.com" for i in range(args.leads)]
        call(hs_port, "POST", "/__control/contacts", [{"email": e} for e in emails])
        names = ["leadscore_total", "leadscore_fit", "leadscore_engagement", "leadscore_stage", "leadscore_grade",
                 "leadscore_probability", "leadscore_reasons", "leadscore_updated_at"]
        types = {n: "number" for n in names if n.split("_", 1)[1] in ("total", "fit", "engagement", "probability")}
        types["leadscore_updated_at"] = "datetime"
        call(hs_port, "POST", "/__control/properties", {"objectType": "contacts", "names": names, "types": types})

        model = os.path.join(work, "model.toml")
        open(model, "w").write(MODEL)
        config = os.path.join(work, "leadscore.toml")
        open(config, "w").write(
            f'[[sync]]\ncrm = "hubspot"\nurl = "http://127.0.0.1:{hs_port}"\ndebounce = "{args.debounce}"\n'
            f'rate_limit = "{args.rate}/{int(args.window)}s"\n')
        port = free_port()
        log = open(os.path.join(work, "server.log"), "wb")
        server = subprocess.Popen([args.binary, "serve", "--config", config, "--model", model,
                                   "--db", f"sqlite://{work}/bench.db", "--listen", f"127.0.0.1:{port}",
                                   "--write-key", WRITE_KEY, "--api-key", API_KEY],
                                  stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HUBSPOT_TOKEN": TOKEN})
        procs.append(server)
        wait_port(port, "server", server)

        auth = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
        t0 = "2026-01-10T00:00:00Z"
        peak = [0.0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], proc_status(server.pid).get("VmRSS", 0.0))
                time.sleep(0.2)

        threading.Thread(target=sample, daemon=True).start()

        def batches():
            per = 160  # three messages a lead: 480 a request
            for start in range(0, args.leads, per):
                msgs = []
                for i in range(start, min(start + per, args.leads)):
                    u = f"u{i}"
                    msgs.append({"type": "identify", "userId": u, "messageId": f"{u}-i", "timestamp": t0,
                                 "traits": {"email": emails[i], "title": "VP Sales" if i % 3 == 0 else "Engineer"}})
                    msgs.append({"type": "page", "userId": u, "messageId": f"{u}-p", "timestamp": t0,
                                 "properties": {"path": "/pricing"}})
                    if i % 2 == 0:
                        msgs.append({"type": "track", "userId": u, "event": "Demo Requested", "messageId": f"{u}-d",
                                     "timestamp": t0})
                yield json.dumps({"batch": msgs}).encode()

        started = time.monotonic()
        lock = threading.Lock()
        gen = batches()

        def sender():
            while True:
                with lock:
                    body = next(gen, None)
                if body is None:
                    return
                while True:
                    status, text = call(port, "POST", "/v1/batch", body, auth)
                    if status == 200:
                        break
                    if status != 429:
                        raise RuntimeError(f"ingest answered {status}: {text[:200]!r}")
                    time.sleep(1)

        threads = [threading.Thread(target=sender) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ingested = time.monotonic() - started
        first_request = None
        while True:
            _, text = call(hs_port, "GET", "/__control/summary")
            s = json.loads(text)
            if first_request is None and s["requests"] > 0:
                first_request = time.monotonic()
            if s["written"] >= args.leads:
                finished = time.monotonic()
                break
            if time.monotonic() - started > 1800:
                raise RuntimeError(f"not every contact written after 30 minutes: {s}")
            time.sleep(0.5)
        synced = finished - started
        stop.set()
        requests = math.ceil(args.leads / 100)
        # The first R requests may go at once; request k (from 0) no earlier than (k // R) windows later.
        bound = ((requests - 1) // args.rate) * args.window
        _, text = call(hs_port, "GET", "/__control/state", timeout=600)
        state = json.loads(text)
        # Every contact holds its lead's latest total and stage.
        wrong = 0
        cursor = None
        seen = 0
        by_email = {c["email"]: c for c in state["contacts"].values()}
        while True:
            q = "/api/leads?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            _, text = call(port, "GET", q, headers={"Authorization": f"Bearer {API_KEY}"})
            page = json.loads(text)
            for lead in page["leads"]:
                i = int(lead["id"][1:])
                got = by_email[emails[i]]["properties"]
                total = lead["total"]
                want = f"{total:.0f}" if float(total).is_integer() else f"{total}"
                if got.get("leadscore_total") != want or got.get("leadscore_stage") != lead["stage"]:
                    wrong += 1
                seen += 1
            cursor = page.get("next_cursor")
            if not cursor:
                break
        writes = [c.get("writes", 0) for c in state["contacts"].values()]
        out = {
            "leads": args.leads, "rate": f"{args.rate}/{args.window:g}s", "debounce": args.debounce,
            "ingest_seconds": round(ingested, 1), "all_written_seconds": round(synced, 1),
            "sync_seconds_after_first_request": round(finished - first_request, 1) if first_request else None,
            "requests": len(state["requests"]), "min_requests": requests,
            "rate_bound_seconds": round(bound, 1),
            "writes_per_contact_max": max(writes), "writes_total": sum(writes),
            "max_inputs": state["max_inputs"], "max_in_window": state["max_in_window"],
            "violations": state["violations"][:5], "checked_leads": seen, "wrong_values": wrong,
            "server_peak_rss_mib": round(peak[0], 1),
            "statuses": {str(k): sum(1 for r in state["requests"] if r.get("status") == k)
                         for k in {r.get("status") for r in state["requests"]}},
        }
        print(json.dumps(out, indent=2))
        if args.json:
            open(args.json, "w").write(json.dumps(out, indent=2))
        ok = wrong == 0 and not state["violations"] and state["max_inputs"] <= 100 and seen == args.leads
        return 0 if ok else 1
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
