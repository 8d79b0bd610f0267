#!/usr/bin/env python3
"""A server with 1M stored leads: how long the full rescore takes and how much memory it uses.

Loading 1M leads through ingest would take hours, so this writes the SQLite database directly: it
lets `leadscore serve` create the schema, then inserts N leads, each with one `identify` message
(title, department, employees, industry, country, e-mail, created_at) and one track or page
message, exactly as ingest would have stored them, but unscored. On the next start the server
finds every lead unscored and rescores them all (the same code as a model activation); this
script times that from the server's own progress (`GET /api/models`) and samples the server's RSS.
The peer, in the same run: SQLite itself rewriting the same scored rows with new values
(`peer_rewrite`), the floor for any design that writes a row per lead into this table.

    python3 bench/million_leads.py --leads 1000000 [--binary target/release/leadscore] [--no-peer]
"""
import argparse
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.request

TITLES = ["VP Sales", "Marketing Manager", "CTO", "Analyst", "Director of IT", "Founder", "Engineer", "Student"]
DEPARTMENTS = ["Sales", "Marketing", "IT", "Finance", "Operations", "Engineering"]
INDUSTRIES = ["Software", "Financial Services", "Retail", "Education", "Manufacturing"]
COUNTRIES = ["US", "DE", "GB", "FR", "IN", "BR"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start(binary, model, db, port, log):
    return subprocess.Popen(
        [binary, "serve", "--model", model, "--db", f"sqlite://{db}", "--listen", f"127.0.0.1:{port}",
         "--write-key", "wk", "--api-key", "ak"],
        stdout=subprocess.DEVNULL, stderr=log)


def get(port, path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": "Bearer ak"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def wait_up(port, proc):
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit("the server exited")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def open_like_server(db):
    """A connection to a server's SQLite file with the server's pragmas."""
    con = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-16384", "secure_delete=ON"):
        con.execute(f"PRAGMA {pragma}")
    return con


def rewrite_lead_rows(con, blank=False):
    """Rewrites every lead row, the columns a rescore writes, with new values, in transactions of
    10,000 rows like the server's rescore (`blank`: empty JSON and state columns instead of the
    rows' own). Returns the rows and the seconds the rewrite took."""
    rows = [(updated + 1, (scored or 0) + 1, total + 0.5, "peer", (due or 0) + 1, scores, contributions, traits, state, lead)
            for lead, updated, scored, total, due, scores, contributions, traits, state in con.execute(
                "SELECT id, updated_at, scored_at, total, next_change_at, scores, contributions, current_traits, state "
                "FROM leads")]
    if blank:
        rows = [r[:5] + ("{}", "[]", "{}", b"", r[9]) for r in rows]
    t = time.time()
    for i in range(0, len(rows), 10_000):
        con.execute("BEGIN IMMEDIATE")
        con.executemany("UPDATE leads SET updated_at = ?, scored_at = ?, total = ?, stage = ?, next_change_at = ?, "
                        "scores = ?, contributions = ?, current_traits = ?, state = ? WHERE id = ?", rows[i:i + 10_000])
        con.execute("COMMIT")
    return len(rows), time.time() - t


class RssPeak:
    """Samples a process's current RSS (VmRSS) every 50 ms while the `with` block runs: `peak` in
    MiB. Unlike the high-water mark, it says what the block itself used."""

    def __init__(self, pid):
        self.pid, self.peak = pid, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self):
        while not self._done.is_set():
            self.peak = max(self.peak, rss_mib(self.pid)[0])
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


def peer_rewrite(db, took):
    """The peer: SQLite itself (Python's sqlite3) rewriting every scored lead row of the same file,
    the columns a rescore writes with new values, in transactions of 10,000 rows like the server's
    rescore (same schema and indexes, same row sizes). The floor for any design that writes a row
    per lead into this table."""
    con = open_like_server(db)
    n, el = rewrite_lead_rows(con)
    con.close()
    print(f"peer: SQLite rewriting the same {n} lead rows in transactions of 10,000: {el:.1f} s "
          f"({n / el:,.0f} rows/s); server / peer {took / el:.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--binary", default="target/release/leadscore")
    ap.add_argument("--model", default="examples/models/b2b-default.toml")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-peer", action="store_true", help="skip SQLite rewriting the same rows")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="leadscore-million-")
    db = os.path.join(work, "leads.db")
    log = open(os.path.join(work, "server.log"), "w")
    port = free_port()
    procs = []
    try:
        # 1. The schema, from the server itself.
        proc = start(a.binary, a.model, db, port, log)
        procs.append(proc)
        wait_up(port, proc)
        proc.terminate()
        proc.wait()
        # 2. N unscored leads with two messages each, as ingest stores them.
        t0 = time.time()
        rng = random.Random(1)
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=OFF")
        now_ms = int(time.time() * 1000)
        day = 86_400_000
        batch_events, batch_leads = [], []

        def iso(ms):
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"

        for i in range(a.leads):
            lead = f"M{i:07d}"
            created = now_ms - rng.randrange(1, 120) * day
            traits = {"email": f"p{i}@company{i % 5000}.example", "title": rng.choice(TITLES),
                      "department": rng.choice(DEPARTMENTS), "employees": rng.choice([8, 40, 120, 450, 2500, 9000]),
                      "industry": rng.choice(INDUSTRIES), "country": rng.choice(COUNTRIES), "created_at": iso(created)}
            ident = {"type": "identify", "userId": lead, "traits": traits, "timestamp": iso(created),
                     "messageId": f"i-{lead}", "receivedAt": iso(created)}
            at = created + rng.randrange(0, 20) * day
            if rng.random() < 0.5:
                other = {"type": "page", "userId": lead, "properties": {"path": "/pricing"}, "timestamp": iso(at),
                         "messageId": f"p-{lead}", "receivedAt": iso(at)}
            else:
                other = {"type": "track", "userId": lead, "event": "Demo Requested", "timestamp": iso(at),
                         "messageId": f"t-{lead}", "receivedAt": iso(at)}
            for m, ts in ((ident, created), (other, at)):
                # `person` is the message's userId (else its anonymousId): the dedupe key with messageId.
                batch_events.append(("wk", m["messageId"], lead, lead, None, None, m["type"], ts, ts, json.dumps(m)))
            batch_leads.append((lead, created, created))
            if len(batch_leads) >= 20_000:
                con.executemany("INSERT INTO events (write_key, message_id, person, lead_id, anonymous_id, group_id, event_type, at, received_at, body) VALUES (?,?,?,?,?,?,?,?,?,?)", batch_events)
                con.executemany("INSERT INTO leads (id, created_at, updated_at) VALUES (?,?,?)", batch_leads)
                con.commit()
                batch_events, batch_leads = [], []
        if batch_leads:
            con.executemany("INSERT INTO events (write_key, message_id, person, lead_id, anonymous_id, group_id, event_type, at, received_at, body) VALUES (?,?,?,?,?,?,?,?,?,?)", batch_events)
            con.executemany("INSERT INTO leads (id, created_at, updated_at) VALUES (?,?,?)", batch_leads)
            con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        size = os.path.getsize(db) / 2**20
        print(f"wrote {a.leads} leads / {2 * a.leads} messages in {time.time() - t0:.0f} s ({size:.0f} MiB)")
        # 3. Start: every lead is unscored, so the server rescores them all.
        t1 = time.time()
        proc = start(a.binary, a.model, db, port, log)
        procs.append(proc)
        wait_up(port, proc)
        started = time.time() - t1
        peak = 0.0
        while True:
            progress = get(port, "/api/models")["rescore"]
            rss, hwm = rss_mib(proc.pid)
            peak = max(peak, hwm)
            if progress["finished"]:
                if progress.get("error"):
                    raise SystemExit(f"the rescore stopped: {progress['error']}")
                break
            time.sleep(0.2)
        took = time.time() - t1
        rss, hwm = rss_mib(proc.pid)
        top = get(port, "/api/leads?sort=-total&limit=3")["leads"]
        t2 = time.time()
        get(port, "/api/leads?sort=-total&limit=50")
        list_ms = (time.time() - t2) * 1000
        proc.terminate()
        proc.wait()
        print(f"server up in {started:.1f} s; full rescore of {progress['total']} leads in {took:.1f} s "
              f"({progress['total'] / took:,.0f} leads/s)")
        print(f"RSS after the rescore {rss:.0f} MiB, peak {max(peak, hwm):.0f} MiB; "
              f"GET /api/leads?sort=-total&limit=50 in {list_ms:.0f} ms; top lead {top[0]['id']} {top[0]['total']}")
        if not a.no_peer:
            peer_rewrite(db, took)
    finally:
        # Never leave a server running or a database of several GB behind, even on a failure.
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept", work)


if __name__ == "__main__":
    main()
