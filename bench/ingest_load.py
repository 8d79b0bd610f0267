#!/usr/bin/env python3
"""Load test of `leadscore serve`'s Segment ingest (`POST /v1/batch`), against its peer, the raw
batched insert rate of SQLite on the same disk.

    python3 bench/ingest_load.py [--backend sqlite|postgres] [--binary target/release/leadscore]
        [--model examples/models/b2b-default.toml] [--leads 10000] [--seconds 20] [--threads 8]
        [--json FILE] [--smoke]

Standard library only (psutil is not needed). Starts the server itself against a fresh database
(a temporary SQLite file, or a throwaway PostgreSQL cluster made with initdb / pg_ctl), then:

  phase 1  sustained throughput: --threads senders, each with one keep-alive connection and one
           request in flight, for --seconds after --warmup; 429 -> sleep Retry-After, resend.
           Reports accepted events/s (200s x 100) and every non-200 by status.
  phase 2  latency at half load: open loop at 50% of phase 1's rate, requests on a fixed schedule
           picked up by --open-threads workers; latency counts from the scheduled send time (no
           coordinated omission). p50 / p90 / p99 / max.
  server   VmHWM / VmRSS from /proc/PID/status, CPU seconds, and the /metrics lines of
           leadscore_ingest_commit_events (group-commit sizes).
  raw      (sqlite only) Python's sqlite3 inserting the same messages into a table shaped like the
           server's `events` (same columns, UNIQUE, indexes, pragmas: WAL, synchronous=FULL) in
           transactions of 100 rows and of 5000 rows: rows/s.

Every batch holds exactly 100 messages and is pre-generated as ready-to-send bytes, so generation
is not measured. The pool holds --pool-batches batches, in time order over the last 30 days (6,000
batches last 20 s + 20 s at up to ~20k events/s); a run that needs more (it says so) reuses them with a
new round number spliced into every messageId (a fixed-width bytes.replace, ~0.1 ms a batch), so
every messageId sent is unique.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

BATCH = 100
DAY = 86400
WRITE_KEY = "bench-write-key"
API_KEY = "bench-api-key"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---- realistic Segment messages ------------------------------------------------------------------

TITLES = [("CEO", 2), ("Chief Technology Officer", 1), ("CFO", 1), ("Founder", 1), ("VP Marketing", 3),
          ("VP of Sales", 2), ("Head of Growth", 2), ("Head of IT", 1), ("Marketing Director", 4),
          ("IT Director", 2), ("Marketing Manager", 8), ("Sales Manager", 5), ("Data Analyst", 5),
          ("Software Engineer", 6), ("Account Executive", 4), ("Marketing Intern", 1), ("Student", 1),
          ("Consultant", 3)]
INDUSTRIES = [("Software", 8), ("SaaS", 3), ("Financial Services", 4), ("Insurance", 1), ("E-commerce", 3),
              ("Retail", 3), ("Manufacturing", 4), ("Media", 1), ("Healthcare", 2), ("Consulting", 2),
              ("Education", 1), ("Government", 1)]
FIRST = ["Priya", "Daniel", "Sofia", "Tom", "Li", "Marco", "Kenji", "Fatima", "Omar", "Hannah", "Emily",
         "Peter", "Mei", "Ryan", "Nina", "Zoe", "Yuki", "Carlos", "Sarah", "Lars", "Chen", "Amara", "Raj"]
LAST = ["Raman", "Weber", "Lindqvist", "Okafor", "Wei", "Rossi", "Sato", "Khan", "Haddad", "Schmidt",
        "Clark", "Novak", "Brown", "Lin", "Cole", "Berg", "Jones", "Park", "Ito", "Diaz"]
COMPANIES = ["contoso", "fabrikam", "northwind", "litware", "tailspin", "woodgrove", "adventure-works",
             "alpineski", "trey", "wingtip", "humongous", "blueyonder", "proseware", "lucerne", "coho"]
FREE = ["gmail.com", "yahoo.com", "outlook.com", "proton.me"]
TLDS = [".com", ".com", ".com", ".de", ".co.uk", ".io", ".se"]
UAS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
]
PAGES = [("/", "Home", 14), ("/pricing", "Pricing", 6), ("/pricing/enterprise", "Enterprise pricing", 2),
         ("/product", "Product", 5), ("/product/tour", "Product tour", 3),
         ("/integrations/salesforce", "Salesforce integration", 2), ("/security", "Security", 2),
         ("/customers/contoso", "Customer story: Contoso", 2), ("/blog/lead-scoring-101", "Lead scoring 101", 6),
         ("/blog/mql-vs-sql", "MQL vs SQL", 5), ("/blog/negative-scoring", "Negative scoring", 4),
         ("/resources/lead-scoring-ebook", "E-book: The lead scoring playbook", 3), ("/careers", "Careers", 1),
         ("/docs/api", "API docs", 3), ("/contact", "Contact", 1)]
REFERRERS = ["https://www.google.com/", "https://www.linkedin.com/", "https://news.ycombinator.com/", "", ""]
FORMS = [("demo-request", 3), ("contact-sales", 2), ("newsletter", 3), ("ebook", 4), ("job-application", 0.5)]
CAMPAIGNS = ["nurture-q3", "webinar-invite", "product-update", "newsletter-weekly", "trial-onboarding"]
BROWSER_LIBRARY = {"name": "analytics.js", "version": "next-1.64.0"}
SERVER_LIBRARY = {"name": "analytics-node", "version": "6.2.0"}


def pick(rng: random.Random, pairs):
    return rng.choices([p[0] for p in pairs], weights=[p[-1] for p in pairs])[0]


def iso(t: float) -> str:
    g = time.gmtime(t)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (g[0], g[1], g[2], g[3], g[4], g[5], int(t * 1000) % 1000)


class Lead:
    __slots__ = ("user_id", "anon", "email", "first", "title", "employees", "industry", "company", "ua", "ip")

    def __init__(self, i: int, seed: int):
        rng = random.Random(seed * 1_000_003 + i)
        self.user_id = f"user-{i:06d}"
        self.anon = "%032x" % rng.getrandbits(128)
        self.first, last = rng.choice(FIRST), rng.choice(LAST)
        company = rng.choice(COMPANIES) + str(rng.randint(1, 400))
        domain = rng.choice(FREE) if rng.random() < 0.15 else company + rng.choice(TLDS)
        self.email = f"{self.first.lower()}.{last.lower()}{rng.randint(1, 99)}@{domain}"
        self.title = pick(rng, TITLES)
        self.employees = int(rng.lognormvariate(5.3, 1.6)) + 1
        self.industry = pick(rng, INDUSTRIES)
        self.company = company
        self.ua = rng.choice(UAS)
        self.ip = f"{rng.randint(11, 220)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def make_message(rng: random.Random, lead: Lead, t: float, message_id: str) -> dict:
    """One Segment message: ~50% page views, ~35% tracks, ~15% identifies."""
    r = rng.random()
    browser = {"library": BROWSER_LIBRARY, "userAgent": lead.ua, "ip": lead.ip, "locale": "en-US"}
    base = {"messageId": message_id, "timestamp": iso(t), "anonymousId": lead.anon, "userId": lead.user_id}
    if r < 0.50:
        path, title, _ = rng.choices(PAGES, weights=[p[2] for p in PAGES])[0]
        url = "https://www.example-saas.com" + path
        ref = rng.choice(REFERRERS)
        props = {"path": path, "url": url, "title": title, "referrer": ref, "search": ""}
        if rng.random() < 0.05:  # an anonymous visit, before the visitor is known
            del base["userId"]
        ctx = dict(browser, page=dict(props))
        return dict(base, type="page", name=title, properties=props, context=ctx)
    if r < 0.85:
        k = rng.random()
        if k < 0.70:
            props = {"campaign_type": "marketing", "campaign": rng.choice(CAMPAIGNS),
                     "email_id": "em_%012x" % rng.getrandbits(48), "subject": "What's new this month"}
            ctx = {"library": SERVER_LIBRARY}
            base.pop("anonymousId")
            return dict(base, type="track", event="Email Opened", properties=props, context=ctx)
        if k < 0.80:
            props = {"form": "demo-request", "plan": rng.choice(["team", "business", "enterprise"]),
                     "seats": rng.randint(5, 500)}
            return dict(base, type="track", event="Demo Requested", properties=props, context=browser)
        props = {"form": pick(rng, FORMS), "page": "/contact", "utm_source": rng.choice(["google", "linkedin", "newsletter"])}
        return dict(base, type="track", event="Form Submitted", properties=props, context=browser)
    traits = {"email": lead.email, "first_name": lead.first, "title": lead.title, "employees": lead.employees,
              "industry": lead.industry, "company": {"name": lead.company}}
    return dict(base, type="identify", traits=traits, context=browser)


class Pool:
    """Pre-generated batches as ready-to-send bytes, and the same messages as rows for sqlite3."""

    def __init__(self, n_batches: int, n_leads: int, seed: int):
        rng = random.Random(seed)
        self.run = "%08x" % random.SystemRandom().getrandbits(32)
        leads = [Lead(i, seed) for i in range(n_leads)]
        self.leads = leads
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        now = time.time()
        start = now - 30 * DAY + 60
        span = (30 * DAY - 120) / n_batches  # batches roughly in time order, like a live stream
        self.batches: list[bytes] = []
        self.rows: list[tuple] = []
        self.message_bytes = 0
        for b in range(n_batches):
            msgs = []
            t0 = start + b * span
            sent_at = iso(min(now, t0 + span))
            for j in range(BATCH):
                lead = leads[rng.randrange(n_leads)]
                t = min(now - 1, t0 + rng.random() * span)
                m = make_message(rng, lead, t, f"lsb-{self.run}-0000-{b:07d}-{j:03d}")
                text = dumps(m)
                self.message_bytes += len(text)
                msgs.append(text)
                self.rows.append((WRITE_KEY, m["messageId"], m.get("userId"), m.get("anonymousId"), None,
                                  m["type"], int(t * 1000), text))
            self.batches.append(('{"batch":[' + ",".join(msgs) + '],"sentAt":"' + sent_at + '"}').encode())
        self.marker = f'"lsb-{self.run}-0000-'.encode()
        self.wrapped = False

    def history(self, per_lead: int, seed: int) -> "History":
        return History(self.leads, per_lead, seed, self.run)

    def batch(self, i: int) -> bytes:
        """Batch i of an endless stream; past the pool, the same batches with a new round number."""
        rnd, k = divmod(i, len(self.batches))
        body = self.batches[k]
        if rnd and not self.wrapped:
            self.wrapped = True
            loud("NOTE: the pool of batches wrapped around: its messages are sent again (new messageIds) with "
                 "times older than the leads' latest, which a server may treat as late; use a larger --pool-batches")
        if rnd:
            body = body.replace(self.marker, f'"lsb-{self.run}-{rnd:04d}-'.encode())
        return body


def run_threads(target, n: int, *others) -> None:
    """Runs `target` on n daemon threads (and each of `others` on one more), waits for all."""
    ts = [threading.Thread(target=target, daemon=True) for _ in range(n)] + [threading.Thread(target=o) for o in others]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


HISTORY_BATCH = 400  # messages a preload request carries (~220 KB, under Segment's 500 KB)


class History:
    """`per_lead` older messages for every lead (400 to 31 days ago, before the pool's), made on the
    fly in time-ordered batches of HISTORY_BATCH: every lead once per round, rounds in time order."""

    def __init__(self, leads: list, per_lead: int, seed: int, run: str):
        self.leads, self.per_lead, self.run = leads, per_lead, run
        self.rng = random.Random(seed * 7919 + 17)
        self.total = len(leads) * per_lead
        self.n_batches = -(-self.total // HISTORY_BATCH)
        self.start = time.time() - 400 * DAY
        self.step = (400 - 31) * DAY / max(1, self.total)
        self.lock = threading.Lock()
        self.next_message = 0
        self.order: list[int] = []
        self.dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    def next_batch(self) -> bytes | None:
        """The next request's body, or None when every message was handed out."""
        with self.lock:
            if self.next_message >= self.total:
                return None
            msgs = []
            end = min(self.total, self.next_message + HISTORY_BATCH)
            for g in range(self.next_message, end):
                k = g % len(self.leads)
                if k == 0:
                    self.order = list(range(len(self.leads)))
                    self.rng.shuffle(self.order)
                t = self.start + (g + self.rng.random()) * self.step
                m = make_message(self.rng, self.leads[self.order[k]], t, f"lsh-{self.run}-{g:09d}")
                msgs.append(self.dumps(m))
            self.next_message = end
            return ('{"batch":[' + ",".join(msgs) + ']}').encode()


def phase_preload(history: History, port: int, threads: int) -> dict:
    """Sends every history message (closed loop, `threads` senders), unmeasured but timed."""
    stats = Tally()
    start = time.monotonic()
    stop_at = start + 24 * 3600

    def run():
        s = Sender(port)
        while (body := history.next_batch()) is not None:
            send_until_accepted(s, body, stats, lambda _t: True, stop_at)
        s.close()

    run_threads(run, threads)
    wall = time.monotonic() - start
    ok = stats.statuses.get("200", 0)
    return {"per_lead": history.per_lead, "messages": history.total, "requests": history.n_batches,
            "accepted_requests": ok, "seconds": wall, "events_per_s": history.total / wall,
            "statuses": stats.statuses,
            "error_samples": {k: v.decode(errors="replace") for k, v in stats.samples.items()}}


# ---- machine, processes --------------------------------------------------------------------------


def machine_info() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1048576:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    return {"nproc": nproc, "cpu": cpu, "memory": mem, "kernel": platform.release(),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) / 1024  # MiB
    except OSError:
        pass
    return out


def cpu_seconds(pids) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def children_of(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def loud(msg: str) -> None:
    bar = "=" * min(100, max(40, len(msg)))
    print(f"\n{bar}\n{msg}\n{bar}\n", file=sys.stderr, flush=True)


class Postgres:
    """A throwaway cluster: initdb, pg_ctl start, createdb; stop() removes it."""

    def __init__(self, work: str):
        self.bins = {}
        for b in ("initdb", "pg_ctl", "psql"):
            self.bins[b] = shutil.which(b) or shutil.which(b, path="/usr/local/bin")
        self.dir = os.path.join(work, "pg")
        self.port = free_port()
        self.started = False
        self.as_user: list[str] = []

    def missing(self) -> list[str]:
        return [b for b, p in self.bins.items() if not p]

    def run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.as_user + args, check=True, capture_output=True, text=True, **kw)

    def start(self) -> str:
        os.mkdir(self.dir, 0o700)
        if os.geteuid() == 0:  # initdb refuses to run as root: run the cluster as `postgres`
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(os.path.dirname(self.dir), 0o755)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.run([self.bins["initdb"], "-A", "trust", "-D", self.dir, "-U", "postgres", "-E", "UTF8", "--no-sync"])
        log = os.path.join(self.dir, "server.log")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on"
        self.run([self.bins["pg_ctl"], "-D", self.dir, "-o", opts, "-l", log, "-w", "start"])
        self.started = True
        self.run([self.bins["psql"], "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q", "-c",
                  "create database bench"])
        self.version = self.run([self.bins["psql"], "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                                 "-At", "-c", "show server_version"]).stdout.strip()
        return f"postgres://postgres@127.0.0.1:{self.port}/bench"

    def pids(self) -> list[int]:
        try:
            with open(os.path.join(self.dir, "postmaster.pid")) as f:
                pm = int(f.readline())
        except (OSError, ValueError):
            return []
        return [pm] + children_of(pm)

    def stop(self) -> None:
        if self.started:
            try:
                self.run([self.bins["pg_ctl"], "-D", self.dir, "-m", "fast", "-w", "stop"], timeout=60)
            except (subprocess.SubprocessError, OSError) as e:
                print(f"warning: pg_ctl stop failed: {e}", file=sys.stderr)
            self.started = False


class Server:
    def __init__(self, binary: str, model: str, db: str, work: str):
        self.port = free_port()
        self.log_path = os.path.join(work, "server.log")
        self.log = open(self.log_path, "wb")
        self.cmd = [binary, "serve", "--model", model, "--db", db, "--listen", f"127.0.0.1:{self.port}",
                    "--write-key", WRITE_KEY, "--api-key", API_KEY]
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.get("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer /healthz in 60 s:\n{self.log_tail()}")
            time.sleep(0.1)

    def get(self, path: str, headers=None) -> tuple[int, bytes]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def log_tail(self, n: int = 30) -> str:
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode(errors="replace")

    def log_problems(self) -> list[str]:
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            lines = [ln.decode(errors="replace").rstrip() for ln in f]
        return [ln for ln in lines if re.search(r"\b(ERROR|WARN|panicked)\b", ln)]

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print("warning: the server did not stop within 30 s of SIGTERM; killing it", file=sys.stderr)
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


# ---- HTTP load -----------------------------------------------------------------------------------


class Sender:
    """One keep-alive connection posting batches; resends on 429 after Retry-After."""

    AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()

    def __init__(self, port: int):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> tuple[int | str, float, bytes]:
        """(status or "connection_error", Retry-After seconds, response body)."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request("POST", "/v1/batch", body=body,
                              headers={"Content-Type": "application/json", "Authorization": self.AUTH})
            r = self.conn.getresponse()
            data = r.read()
            retry = 1.0
            if r.status == 429:
                try:
                    retry = float(r.getheader("Retry-After", "1"))
                except ValueError:
                    retry = 1.0
            if r.will_close:
                self.conn.close()
                self.conn = None
            return r.status, retry, data
        except (OSError, http.client.HTTPException) as e:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return "connection_error", 0.1, repr(e).encode()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: dict[str, int] = {}
        self.samples: dict[str, bytes] = {}
        self.ok_all = 0  # every 200 of the run, in or out of a measuring window

    def add(self, status, body: bytes, counted: bool) -> None:
        with self.lock:
            if status == 200:
                self.ok_all += 1
            if counted:
                k = str(status)
                self.statuses[k] = self.statuses.get(k, 0) + 1
                if status != 200 and k not in self.samples:
                    self.samples[k] = body[:300]


def send_until_accepted(sender: Sender, body: bytes, tally: Tally, window, stop_at: float):
    """Posts until not 429 / connection error (or stop_at passes). Returns the final status and the
    time of the final answer. Every answer is tallied; `window(t)` says whether t counts."""
    while True:
        status, retry, data = sender.post(body)
        t = time.monotonic()
        tally.add(status, data, window(t))
        if status in (429, "connection_error") or (isinstance(status, int) and status >= 500 and status != 501):
            if t + retry >= stop_at:
                return status, t
            time.sleep(retry)
            continue
        return status, t


def pct(sorted_ms: list[float], p: float) -> float:
    if not sorted_ms:
        return float("nan")
    k = max(0, min(len(sorted_ms) - 1, int(round(p / 100 * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[k]


def phase_sustained(pool: Pool, port: int, threads: int, warmup: float, seconds: float, tally: Tally,
                    counter, cpu_pids) -> dict:
    stats = Tally()
    start = time.monotonic()
    t_begin, t_end = start + warmup, start + warmup + seconds
    lat_ms: list[float] = []
    lat_lock = threading.Lock()
    marks = {}

    def window(t):
        return t_begin <= t <= t_end

    def run():
        s = Sender(port)
        mine = []
        while time.monotonic() < t_end:
            body = pool.batch(next(counter))
            t0 = time.monotonic()
            status, t = send_until_accepted(s, body, _Both(tally, stats), window, t_end)
            if status == 200 and window(t) and t0 >= t_begin:
                mine.append((t - t0) * 1000)
        s.close()
        with lat_lock:
            lat_ms.extend(mine)

    def mark():  # CPU counters at the window's start and end
        time.sleep(max(0.0, t_begin - time.monotonic()))
        marks["begin"] = (cpu_seconds(cpu_pids()), time.process_time())
        time.sleep(max(0.0, t_end - time.monotonic()))
        marks["end"] = (cpu_seconds(cpu_pids()), time.process_time())

    run_threads(run, threads, mark)
    ok = stats.statuses.get("200", 0)
    lat_ms.sort()
    server_cpu = marks["end"][0] - marks["begin"][0]
    client_cpu = marks["end"][1] - marks["begin"][1]
    return {
        "threads": threads, "warmup_s": warmup, "seconds": seconds,
        "accepted_requests": ok, "accepted_events": ok * BATCH,
        "events_per_s": ok * BATCH / seconds, "requests_per_s": ok / seconds,
        "statuses": stats.statuses, "error_samples": {k: v.decode(errors="replace") for k, v in stats.samples.items()},
        "closed_loop_latency_ms": {"p50": pct(lat_ms, 50), "p99": pct(lat_ms, 99), "n": len(lat_ms)},
        "server_cpu_s": server_cpu, "client_cpu_s": client_cpu,
    }


class _Both:
    """Tallies into the run-wide and the phase's tally."""

    def __init__(self, run: Tally, phase: Tally):
        self.run, self.phase = run, phase

    def add(self, status, body, counted):
        self.run.add(status, body, False)
        self.phase.add(status, body, counted)


def phase_open_loop(pool: Pool, port: int, events_per_s: float, seconds: float, workers: int, tally: Tally,
                    counter) -> dict:
    rate = events_per_s / BATCH  # requests / s
    n = max(1, int(seconds * rate))
    interval = 1.0 / rate
    stats = Tally()
    sched = itertools.count()
    lat_ms: list[float] = []
    late = [0]
    lock = threading.Lock()
    start = time.monotonic() + 0.2
    stop_at = start + seconds + 120  # give up on resends two minutes after the schedule ends

    def run():
        s = Sender(port)
        mine, my_late = [], 0
        while True:
            i = next(sched)
            if i >= n:
                break
            t_sched = start + i * interval
            body = pool.batch(next(counter))
            d = t_sched - time.monotonic()
            if d > 0:
                time.sleep(d)
            elif d < -0.001:
                my_late += 1  # every worker was busy: this request starts late, its latency shows it
            status, t = send_until_accepted(s, body, _Both(tally, stats), lambda _t: True, stop_at)
            if status == 200:
                mine.append((t - t_sched) * 1000)
        s.close()
        with lock:
            lat_ms.extend(mine)
            late[0] += my_late

    run_threads(run, workers)
    wall = time.monotonic() - start
    lat_ms.sort()
    return {
        "offered_events_per_s": events_per_s, "offered_requests_per_s": rate, "requests": n, "workers": workers,
        "seconds": seconds, "wall_s": wall, "statuses": stats.statuses,
        "error_samples": {k: v.decode(errors="replace") for k, v in stats.samples.items()},
        "late_starts": late[0],
        "latency_ms": {"p50": pct(lat_ms, 50), "p90": pct(lat_ms, 90), "p99": pct(lat_ms, 99),
                       "max": lat_ms[-1] if lat_ms else float("nan"), "n": len(lat_ms)},
    }


# ---- raw SQLite ----------------------------------------------------------------------------------

RAW_SCHEMA = """
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    write_key    TEXT    NOT NULL,
    message_id   TEXT    NOT NULL,
    person       TEXT    NOT NULL,
    lead_id      TEXT,
    anonymous_id TEXT,
    group_id     TEXT,
    event_type   TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    body         TEXT    NOT NULL,
    UNIQUE (person, message_id)
);
CREATE INDEX events_group ON events (group_id) WHERE group_id IS NOT NULL;
"""


def raw_sqlite(pool: Pool, work: str, tx_rows: int, max_seconds: float) -> dict:
    path = os.path.join(work, f"raw-{tx_rows}.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; "
                     "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;")
    mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    sync = db.execute("PRAGMA synchronous").fetchone()[0]
    db.executescript(RAW_SCHEMA)
    sql = ("INSERT INTO events (write_key, message_id, person, lead_id, anonymous_id, group_id, event_type, at, "
           "received_at, body) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (person, message_id) DO NOTHING")
    rows = pool.rows
    done = txs = 0
    t0 = time.perf_counter()
    while done < len(rows):
        now_ms = int(time.time() * 1000)
        # (write key, messageId, person = userId else anonymousId, userId, anonymousId, …)
        chunk = [r[:2] + (r[2] or r[3],) + r[2:7] + (now_ms, r[7]) for r in rows[done:done + tx_rows]]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(sql, chunk)
        db.execute("COMMIT")
        done += len(chunk)
        txs += 1
        if time.perf_counter() - t0 >= max_seconds:
            break
    wall = time.perf_counter() - t0
    stored = db.execute("SELECT count(*) FROM events").fetchone()[0]
    db.close()
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except OSError:
            pass
    return {"tx_rows": tx_rows, "rows": done, "stored": stored, "transactions": txs, "seconds": wall,
            "rows_per_s": done / wall, "journal_mode": mode, "synchronous": sync}


# ---- report --------------------------------------------------------------------------------------


def num(x: float, digits: int = 0) -> str:
    if x != x:  # NaN
        return "–"
    s = f"{x:,.{digits}f}"
    return s.replace(",", " ")


def parse_metrics(text: str) -> dict:
    out = {"commit_events_lines": [], "values": {}}
    for line in text.splitlines():
        if line.startswith("leadscore_ingest_commit_events"):
            out["commit_events_lines"].append(line)
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith(("leadscore_ingest_", "leadscore_http_requests_total")):
            name, _, value = line.rpartition(" ")
            try:
                out["values"][name] = float(value)
            except ValueError:
                pass
    return out


def hsum(values: dict, name: str) -> tuple[float | None, float | None]:
    return values.get(f"{name}_sum"), values.get(f"{name}_count") or values.get(f'{name}_bucket{{le="+Inf"}}')


def markdown(r: dict) -> str:
    m, c = r["machine"], r["config"]
    lines = [f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory']}, Linux {m['kernel']}, Python {m['python']}, "
             f"SQLite {m['sqlite']}{', PostgreSQL ' + r['postgres_version'] if r.get('postgres_version') else ''}.",
             f"Binary `{c['binary']}`{' (DEBUG BUILD: numbers mean nothing)' if c['debug_build'] else ''}, "
             f"model `{c['model']}`, backend **{c['backend']}**, {num(c['leads'])} leads, "
             f"batches of {BATCH} messages (~{num(c['bytes_per_message'])} bytes a message).", "",
             "| measure | value |", "|---|---:|"]
    pre = r.get("preload")
    if pre:
        lines.append(f"| preload before phase 1 (unmeasured): {num(pre['messages'])} older messages, "
                     f"{pre['per_lead']} per lead | {num(pre['seconds'])} s, {num(pre['events_per_s'])} events/s |")
    p1 = r.get("phase1")
    if p1:
        errs = ", ".join(f"{k}: {v}" for k, v in sorted(p1["statuses"].items()) if k != "200") or "none"
        lines += [f"| sustained ingest, {p1['threads']} senders closed loop, {num(p1['seconds'])} s | "
                  f"**{num(p1['events_per_s'])} events/s** ({num(p1['requests_per_s'], 1)} req/s) |",
                  f"| … answers other than 200 | {errs} |",
                  f"| … closed-loop latency p50 / p99 | {num(p1['closed_loop_latency_ms']['p50'], 1)} / "
                  f"{num(p1['closed_loop_latency_ms']['p99'], 1)} ms |",
                  f"| … CPU used: server{' + PostgreSQL' if c['backend'] == 'postgres' else ''} / load generator | {num(p1['server_cpu_s'] / p1['seconds'], 2)} / "
                  f"{num(p1['client_cpu_s'] / p1['seconds'], 2)} cores |"]
    p2 = r.get("phase2")
    if p2:
        lt = p2["latency_ms"]
        errs = ", ".join(f"{k}: {v}" for k, v in sorted(p2["statuses"].items()) if k != "200") or "none"
        lines += [f"| latency at 50% load, open loop ({num(p2['offered_events_per_s'])} events/s offered), "
                  f"p50 / p90 / p99 / max | **{num(lt['p50'], 1)} / {num(lt['p90'], 1)} / {num(lt['p99'], 1)} / "
                  f"{num(lt['max'], 1)} ms** |",
                  f"| … answers other than 200; late starts | {errs}; {p2['late_starts']} |"]
    for raw in r.get("raw_sqlite", []):
        lines.append(f"| peer: raw SQLite insert (Python sqlite3), {raw['tx_rows']}-row transactions | "
                     f"{num(raw['rows_per_s'])} rows/s |")
    if p1 and r.get("raw_sqlite"):
        lines.append(f"| server ingest / raw {r['raw_sqlite'][0]['tx_rows']}-row rate | "
                     f"{p1['events_per_s'] / r['raw_sqlite'][0]['rows_per_s'] * 100:.0f}% |")
    srv = r.get("server", {})
    if srv.get("rss_mib"):
        lines.append(f"| server peak RSS (VmHWM) / at the end (VmRSS) | {num(srv['rss_mib'].get('VmHWM', float('nan')))} / "
                     f"{num(srv['rss_mib'].get('VmRSS', float('nan')))} MiB |")
    if srv.get("postgres_rss_mib_sum"):
        lines.append(f"| PostgreSQL processes' RSS at the end (sum, shared buffers counted per process) | "
                     f"{num(srv['postgres_rss_mib_sum'])} MiB |")
    if srv.get("commit_events_mean") is not None:
        lines.append(f"| group commit: mean events per commit ({num(srv['commits'])} commits) | "
                     f"{num(srv['commit_events_mean'], 1)} |")
    return "\n".join(lines)


# ---- main ----------------------------------------------------------------------------------------


def resolve(path: str) -> str:
    if os.path.isabs(path) or os.path.exists(path):
        return os.path.abspath(path)
    return os.path.join(ROOT, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/leadscore")
    ap.add_argument("--model", default="examples/models/b2b-default.toml")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--leads", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of phase 1 and of phase 2")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=8, help="phase 1 senders")
    ap.add_argument("--open-threads", type=int, default=32, help="phase 2 workers")
    ap.add_argument("--pool-batches", type=int, default=6000, help="pre-generated batches of 100 messages")
    ap.add_argument("--raw-seconds", type=float, default=10.0, help="time cap of each raw SQLite run")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--tmpdir", help="where the databases go (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (databases, server.log)")
    ap.add_argument("--smoke", action="store_true", help="a tiny run: 2 s phases, 500 leads")
    ap.add_argument("--history", type=int, default=0, metavar="N",
                    help="first store N older messages for every lead (unmeasured preload), so phases 1 and 2 "
                         "measure leads that already have a history")
    ap.add_argument("--sqlite-synchronous", choices=["full", "normal"], default="full",
                    help="the server's SQLite durability (default full: synced before 200)")
    a = ap.parse_args()
    if a.smoke:
        a.seconds, a.warmup, a.leads, a.raw_seconds = 2.0, 0.5, 500, 2.0
        a.pool_batches = min(a.pool_batches, 100)
        a.open_threads = min(a.open_threads, 8)
    a.binary, a.model = resolve(a.binary), resolve(a.model)
    if not os.access(a.binary, os.X_OK):
        print(f"error: no executable server binary at {a.binary} (build it, or pass --binary)", file=sys.stderr)
        return 2
    debug = f"{os.sep}debug{os.sep}" in a.binary
    if debug:
        loud("NOTE: a debug build: these numbers check the harness, they are not results.")

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)

    work = tempfile.mkdtemp(prefix="leadscore-ingest-", dir=a.tmpdir)
    report: dict = {"machine": machine_info(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    pg = server = None
    rc = 0
    try:
        if a.backend == "postgres":
            pg = Postgres(work)
            if pg.missing():
                msg = (f"skipped: PostgreSQL binaries not found ({', '.join(pg.missing())}); "
                       "--backend postgres was not measured")
                loud(msg)
                report["skipped"] = msg
                return 0

        t = time.perf_counter()
        print(f"generating {a.pool_batches} batches x {BATCH} messages over {a.leads} leads …", file=sys.stderr, flush=True)
        pool = Pool(a.pool_batches, a.leads, a.seed)
        print(f"  {time.perf_counter() - t:.1f} s, {pool.message_bytes / 1e6:.1f} MB of messages", file=sys.stderr)
        report["config"] = {
            "binary": os.path.relpath(a.binary, ROOT) if a.binary.startswith(ROOT) else a.binary,
            "model": os.path.relpath(a.model, ROOT) if a.model.startswith(ROOT) else a.model,
            "backend": a.backend, "leads": a.leads, "seconds": a.seconds, "warmup": a.warmup,
            "threads": a.threads, "open_threads": a.open_threads, "pool_batches": a.pool_batches,
            "bytes_per_message": pool.message_bytes / len(pool.rows), "debug_build": debug, "smoke": a.smoke,
            "seed": a.seed, "history_per_lead": a.history,
        }

        if pg:
            db_url = pg.start()
            report["postgres_version"] = pg.version
        else:
            db_url = "sqlite://" + os.path.join(work, "leadscore.db")
            if a.sqlite_synchronous != "full":
                db_url += "?synchronous=" + a.sqlite_synchronous
        server = Server(a.binary, a.model, db_url, work)
        report["config"]["command"] = " ".join(server.cmd)

        def cpu_pids():
            return [server.proc.pid] + (pg.pids() if pg else [])

        tally = Tally()
        counter = itertools.count()
        preloaded = 0
        if a.history > 0:
            history = pool.history(a.history, a.seed)
            print(f"preload: {history.total} older messages ({a.history} per lead) in {history.n_batches} requests …",
                  file=sys.stderr, flush=True)
            pre = phase_preload(history, server.port, a.threads)
            report["preload"] = pre
            preloaded = pre["accepted_requests"] * HISTORY_BATCH - (HISTORY_BATCH * history.n_batches - history.total)
            print(f"  {pre['seconds']:.0f} s, {pre['events_per_s']:.0f} events/s; statuses {pre['statuses']}",
                  file=sys.stderr)
        print(f"phase 1: {a.threads} senders, {a.warmup} s warm-up + {a.seconds} s …", file=sys.stderr, flush=True)
        p1 = phase_sustained(pool, server.port, a.threads, a.warmup, a.seconds, tally, counter, cpu_pids)
        report["phase1"] = p1
        print(f"  {p1['events_per_s']:.0f} events/s; statuses {p1['statuses']}", file=sys.stderr)

        time.sleep(1.0)
        if p1["accepted_requests"] > 0:
            half = p1["events_per_s"] / 2
            print(f"phase 2: open loop at {half:.0f} events/s for {a.seconds} s …", file=sys.stderr, flush=True)
            p2 = phase_open_loop(pool, server.port, half, a.seconds, a.open_threads, tally, counter)
            report["phase2"] = p2
            lt = p2["latency_ms"]
            print(f"  p50 {lt['p50']:.1f} p90 {lt['p90']:.1f} p99 {lt['p99']:.1f} max {lt['max']:.1f} ms; "
                  f"statuses {p2['statuses']}", file=sys.stderr)
        else:
            loud("phase 2 skipped: phase 1 got no 200 at all")

        # the server at the end
        srv: dict = {"rss_mib": proc_status(server.proc.pid)}
        if pg:
            srv["postgres_rss_mib_sum"] = sum(proc_status(p).get("VmRSS", 0) for p in pg.pids())
        status, body = server.get("/metrics")
        met = parse_metrics(body.decode(errors="replace")) if status == 200 else {"commit_events_lines": [], "values": {}}
        srv["metrics_status"] = status
        srv["commit_events_lines"] = met["commit_events_lines"]
        s, cnt = hsum(met["values"], "leadscore_ingest_commit_events")
        if s is not None and cnt:
            srv["commit_events_mean"], srv["commits"] = s / cnt, cnt
        vals = met["values"]
        stored = vals.get('leadscore_ingest_events_total{result="stored"}')
        dups = vals.get('leadscore_ingest_events_total{result="duplicate"}')
        srv["events_stored"], srv["events_duplicate"] = stored, dups
        srv["http_batch_statuses"] = {k: v for k, v in vals.items()
                                      if k.startswith("leadscore_http_requests_total") and "/v1/batch" in k}
        srv["ingest_rejected"] = {k: v for k, v in vals.items() if k.startswith("leadscore_ingest_rejected_total")}
        ls, lb = server.get("/api/leads?limit=1", {"Authorization": f"Bearer {API_KEY}"})
        srv["api_leads_status"] = ls
        srv["api_leads_sample"] = lb[:300].decode(errors="replace")
        report["server"] = srv
        checks = []
        sent_ok = tally.ok_all * BATCH + preloaded
        if stored is None:
            checks.append("leadscore_ingest_events_total{result=\"stored\"} missing from /metrics")
        elif stored + (dups or 0) != sent_ok:
            checks.append(f"accepted {sent_ok} events (200s x {BATCH}) but /metrics counts stored {stored:.0f} + "
                          f"duplicate {dups or 0:.0f}")
        if dups:
            checks.append(f"{dups:.0f} duplicates reported although every messageId sent was unique "
                          "(resends after connection errors can cause some)")
        if ls != 200:
            checks.append(f"GET /api/leads?limit=1 answered {ls}: {srv['api_leads_sample']}")
        for ph in ("preload", "phase1", "phase2"):
            for k, v in report.get(ph, {}).get("statuses", {}).items():
                if k not in ("200", "429"):
                    checks.append(f"{ph}: {v} answers {k}: {report[ph]['error_samples'].get(k, '')}")
        code = server.stop()
        srv["exit_code"] = code
        if code not in (0, None):
            checks.append(f"the server exited with {code} after SIGTERM")
        problems = server.log_problems()
        server_log_tail = server.log_tail(40)
        srv["log_problem_lines"] = len(problems)
        srv["log_problems_first"] = problems[:10]
        if problems:
            checks.append(f"{len(problems)} ERROR/WARN/panic lines in the server log, first: {problems[0]}")
        report["checks"] = checks
        server = None

        if a.backend == "sqlite":
            report["raw_sqlite"] = []
            for tx in (100, 5000):
                print(f"raw SQLite: {tx}-row transactions (≤ {a.raw_seconds} s) …", file=sys.stderr, flush=True)
                raw = raw_sqlite(pool, work, tx, a.raw_seconds)
                report["raw_sqlite"].append(raw)
                print(f"  {raw['rows_per_s']:.0f} rows/s ({raw['rows']} rows in {raw['transactions']} transactions)",
                      file=sys.stderr)

        print()
        print(markdown(report))
        print()
        print("`leadscore_ingest_commit_events` at the end:")
        print("```")
        print("\n".join(srv["commit_events_lines"]) or "(none)")
        print("```")
        if checks:
            if problems:
                print(f"server log, last lines ({server_log_tail.count(chr(10))}):\n{server_log_tail}", file=sys.stderr)
            loud("CHECKS FAILED:\n" + "\n".join("- " + c for c in checks))
            rc = 1
        else:
            print("checks: every accepted event is counted as stored; no errors in the server log.")
    except (RuntimeError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", None) or ""
        loud(f"error: {e}\n{detail}".rstrip())
        report["error"] = f"{e}\n{detail}".rstrip()
        rc = 2
    finally:
        if server is not None:
            server.stop()
            tail = server.log_tail()
            print(f"server log tail:\n{tail}", file=sys.stderr)
        if pg is not None:
            pg.stop()
        if a.keep:
            print(f"kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(report, f, indent=2, default=str)
    return rc


if __name__ == "__main__":
    sys.exit(main())
