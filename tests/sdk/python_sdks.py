#!/usr/bin/env python3
"""Round-trip test of Leadscore's Segment-compatible ingest with the REAL Python SDKs, unmodified.

    pip install segment-analytics-python==2.4.0 rudder-sdk-python==2.1.9
    python3 tests/sdk/python_sdks.py --host http://127.0.0.1:18181 --write-key wk_test --api-key ak_test

The server must run with tests/sdk/sdk-model.toml (see tests/sdk/README.md). For each SDK
(Segment `segment.analytics`, RudderStack `rudderstack.analytics`) the script, with a fresh random
user id:

  phase 1  page (anonymousId only, /pricing), identify (title), group (employees), page (/pricing),
           track "Demo Requested", alias(previousId = the anonymousId) -> flush -> poll
           GET /api/leads/{id} and expect total 70, stage sql, fit 30, engagement 40, the four
           rules with exact points/matched, the account, the title trait, and the stitched
           anonymous page view among the lead's events;
  phase 2  resend the track and the anonymous page view with the SAME messageIds (what an SDK
           retry does) plus one new /pricing/enterprise page view as a marker -> flush -> poll
           until the marker is visible and expect total 75 (only the marker counted);
  phase 3  a separate client with a wrong write key: the SDK must get a 401 (which it does not
           retry) through its on_error callback.

Exit status: 0 all SDKs passed; 1 any failure (or server unreachable); 77 nothing failed but at
least one SDK was not installed (skipped), so a caller can tell "skipped" from "passed".
"""

import argparse
import json
import logging
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

SKIP = 77
POLL_SECONDS = 10.0

# What tests/sdk/sdk-model.toml gives for the phase-1 scenario (no decay, so exact).
EXPECTED_RULES = {
    # rule name: (dimension, points, matched)
    "Title: VP": ("fit", 20.0, 1),
    "Account: 100+ employees": ("fit", 10.0, 1),
    "Demo requested": ("engagement", 30.0, 1),
    "Pricing page": ("engagement", 10.0, 2),  # 1 identified + 1 anonymous view stitched by alias
}
EXPECTED_PHASE1 = {"total": 70.0, "stage": "sql", "scores": {"fit": 30.0, "engagement": 40.0}}
# Phase 2: the resent track and anonymous page must not count again; the marker page does (+5).
EXPECTED_RULES_PHASE2 = dict(EXPECTED_RULES, **{"Pricing page": ("engagement", 15.0, 3)})
EXPECTED_PHASE2 = {"total": 75.0, "stage": "sql", "scores": {"fit": 30.0, "engagement": 45.0}}


class Failure(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Read API helpers


def get_lead(host, api_key, lead_id):
    """GET /api/leads/{id} -> (status, parsed JSON or raw text)."""
    url = "%s/api/leads/%s" % (host.rstrip("/"), urllib.request.quote(lead_id, safe=""))
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + api_key})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            body = res.read()
            status = res.status
    except urllib.error.HTTPError as e:
        body = e.read()
        status = e.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode("utf-8", "replace")


def poll_lead(host, api_key, lead_id, done):
    """Poll until done(status, body) is true or POLL_SECONDS pass; return the last answer."""
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        status, body = get_lead(host, api_key, lead_id)
        if done(status, body) or time.monotonic() >= deadline:
            return status, body
        time.sleep(0.2)


def check_server(host, api_key):
    try:
        with urllib.request.urlopen(host.rstrip("/") + "/healthz", timeout=5) as res:
            if res.status != 200:
                raise Failure("GET /healthz answered %d" % res.status)
    except (urllib.error.URLError, OSError) as e:
        raise Failure("server not reachable at %s: %s" % (host, e))
    status, body = get_lead(host, api_key, "sdk-test-no-such-lead-" + uuid.uuid4().hex)
    if status == 401:
        raise Failure("the API key %r is rejected (401): %s" % (api_key, body))
    if status != 404:
        raise Failure("GET /api/leads/<unknown> answered %d, expected 404: %s" % (status, body))


def parse_time(s):
    """RFC 3339 with any number of fraction digits -> aware datetime (the minimum if unparsable)."""
    from datetime import datetime, timezone

    try:
        s = str(s).replace("Z", "+00:00")
        head, sep, rest = s.partition(".")
        if sep:  # normalise the fraction to 6 digits for fromisoformat on any Python 3
            i = 0
            while i < len(rest) and rest[i].isdigit():
                i += 1
            s = head + "." + (rest[:i] + "000000")[:6] + rest[i:]
        return datetime.fromisoformat(s)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=timezone.utc)


def dump(obj):
    return json.dumps(obj, indent=2, sort_keys=True, default=str)


def summarize(body):
    """The parts of a lead answer the assertions look at (for readable failure messages)."""
    if not isinstance(body, dict):
        return body
    keep = ("id", "total", "stage", "scores", "traits", "account", "contributions", "history")
    out = {k: body.get(k) for k in keep}
    out["events"] = [
        {k: e.get(k) for k in ("type", "messageId", "userId", "anonymousId", "event", "properties") if k in e}
        for e in body.get("events") or []
    ]
    return out


def check_lead(status, body, expected, expected_rules, ctx):
    """Return a list of human-readable mismatches (empty = OK)."""
    if status != 200 or not isinstance(body, dict):
        return ["GET /api/leads/%s answered %s, expected 200" % (ctx["user_id"], status)]
    problems = []

    def num(x):
        return round(float(x), 2) if isinstance(x, (int, float)) else x

    if num(body.get("total")) != expected["total"]:
        problems.append("total: expected %s, got %r" % (expected["total"], body.get("total")))
    if body.get("stage") != expected["stage"]:
        problems.append("stage: expected %r, got %r" % (expected["stage"], body.get("stage")))
    scores = {k: num(v) for k, v in (body.get("scores") or {}).items()}
    if scores != expected["scores"]:
        problems.append("scores: expected %s, got %s" % (expected["scores"], body.get("scores")))

    traits = body.get("traits") or {}
    if traits.get("title") != ctx["title"]:
        problems.append("traits.title: expected %r, got %r (traits %s)" % (ctx["title"], traits.get("title"), traits))
    account = body.get("account")
    if not isinstance(account, dict) or account.get("id") != ctx["group_id"]:
        problems.append("account.id: expected %r, got account %s" % (ctx["group_id"], json.dumps(account)))
    elif num((account.get("traits") or {}).get("employees")) != float(ctx["employees"]):
        problems.append("account.traits.employees: expected %s, got %s" % (ctx["employees"], account.get("traits")))

    contributions = body.get("contributions") or []
    got_rules = {}
    for c in contributions:
        name = c.get("rule")
        if name in got_rules:
            problems.append("rule %r reported twice in contributions" % name)
        got_rules[name] = (c.get("dimension"), num(c.get("points")), c.get("matched"))
    if set(got_rules) != set(expected_rules):
        problems.append(
            "contribution rules: expected %s, got %s" % (sorted(expected_rules), sorted(n for n in got_rules if n))
        )
    for name, want in expected_rules.items():
        if name in got_rules and got_rules[name] != want:
            problems.append(
                "contribution %r (dimension, points, matched): expected %s, got %s" % (name, want, got_rules[name])
            )

    # The anonymous page view must be among the lead's events once (stitched by alias), and every
    # messageId must appear only once (dedupe).
    events = body.get("events") or []
    ids = [e.get("messageId") for e in events]
    for mid, what in ((ctx["anon_page_mid"], "the stitched anonymous page view"), (ctx["track_mid"], "the track")):
        n = ids.count(mid)
        if n != 1:
            problems.append("%s (messageId %s) appears %d times in the lead's events, expected once" % (what, mid, n))
    dups = sorted({m for m in ids if m is not None and ids.count(m) > 1})
    if dups:
        problems.append("duplicate messageIds in events: %s" % dups)

    history = body.get("history") or []
    if not history:
        problems.append("history is empty, expected at least the change to %r" % expected["stage"])
    else:
        # by time, not by string: the fraction has a variable number of digits (.43Z vs .435Z)
        latest = max(history, key=lambda h: parse_time(h.get("at")))
        if latest.get("stage") != expected["stage"]:
            problems.append("latest history entry: expected stage %r, got %s" % (expected["stage"], latest))
    return problems


# ---------------------------------------------------------------------------------------------
# SDK driving


def run_with_timeout(fn, seconds, what):
    """SDK flush() is queue.join(): never let a stuck client hang the test."""
    err = []

    def target():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported below
            err.append(e)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise Failure("%s did not finish within %ds" % (what, seconds))
    if err:
        raise Failure("%s raised %r" % (what, err[0]))


class ErrorSink:
    """The SDKs' on_error(exception, batch) callback: every upload failure is a test failure."""

    def __init__(self):
        self.errors = []

    def __call__(self, error, batch):
        status = getattr(error, "status", None)
        self.errors.append((status, str(error), [m.get("type") for m in batch or []]))


def configure_segment(host, write_key, sink):
    import segment.analytics as analytics

    analytics.write_key = write_key
    analytics.host = host
    analytics.on_error = sink
    analytics.max_retries = 2  # so that a broken server fails in seconds, not minutes
    analytics.default_client = None
    return analytics


def configure_rudder(host, write_key, sink):
    import rudderstack.analytics as rudder_analytics

    rudder_analytics.write_key = write_key
    rudder_analytics.dataPlaneUrl = host
    rudder_analytics.on_error = sink
    rudder_analytics.max_retries = 2
    rudder_analytics.default_client = None
    # gzip stays at its default (True): Leadscore must accept Content-Encoding: gzip.
    return rudder_analytics


def new_client(name, host, write_key, sink):
    if name == "segment":
        from segment.analytics.client import Client
    else:
        from rudderstack.analytics.client import Client
    return Client(write_key, host=host, on_error=sink, max_retries=2)


SDKS = [
    # name, label, module to import, pip line, configure
    ("segment", "segment-analytics-python 2.4.0", "segment.analytics", "segment-analytics-python==2.4.0", configure_segment),
    ("rudder", "rudder-sdk-python 2.1.9", "rudderstack.analytics", "rudder-sdk-python==2.1.9", configure_rudder),
]


def installed_version(dist):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001
        return None


def run_sdk(name, configure, args):
    suffix = uuid.uuid4().hex[:10]
    ctx = {
        "user_id": "sdk-py-%s-%s" % (name, suffix),
        "anon_id": "anon-py-%s-%s" % (name, suffix),
        "group_id": "acct-py-%s-%s" % (name, suffix),
        "title": "VP of Marketing" if name == "segment" else "VP Engineering",
        "employees": 250,
        "anon_page_mid": str(uuid.uuid4()),
        "track_mid": str(uuid.uuid4()),
        "marker_mid": str(uuid.uuid4()),
    }
    uid, anon = ctx["user_id"], ctx["anon_id"]

    status, body = get_lead(args.host, args.api_key, uid)
    if status != 404:
        raise Failure("before sending, GET /api/leads/%s answered %s (expected 404): %s" % (uid, status, body))

    sink = ErrorSink()
    sdk = configure(args.host, args.write_key, sink)

    # ---- phase 1: the scenario
    sdk.page(anonymous_id=anon, name="Pricing", properties={"path": "/pricing", "url": "https://example.com/pricing"},
             message_id=ctx["anon_page_mid"])
    sdk.identify(user_id=uid, traits={"title": ctx["title"], "email": "%s@example.com" % uid, "first_name": "Sam"})
    sdk.group(user_id=uid, group_id=ctx["group_id"], traits={"name": "Acme %s" % suffix, "employees": ctx["employees"]})
    sdk.page(user_id=uid, name="Pricing", properties={"path": "/pricing", "url": "https://example.com/pricing"})
    sdk.track(user_id=uid, event="Demo Requested", properties={"plan": "enterprise"}, message_id=ctx["track_mid"])
    sdk.alias(previous_id=anon, user_id=uid)
    run_with_timeout(sdk.flush, 60, "%s flush()" % name)
    if sink.errors:
        raise Failure("the SDK reported upload errors (status, error, message types): %s" % sink.errors)

    status, body = poll_lead(
        args.host, args.api_key, uid, lambda s, b: not check_lead(s, b, EXPECTED_PHASE1, EXPECTED_RULES, ctx)
    )
    problems = check_lead(status, body, EXPECTED_PHASE1, EXPECTED_RULES, ctx)
    if problems:
        raise Failure(
            "phase 1 (scenario) after %.0fs of polling:\n  - %s\nexpected: %s\nactual: %s"
            % (POLL_SECONDS, "\n  - ".join(problems), dump(dict(EXPECTED_PHASE1, rules=EXPECTED_RULES)), dump(summarize(body)))
        )

    # ---- phase 2: an SDK retry resends messages with the same messageId; they must count once
    sdk.track(user_id=uid, event="Demo Requested", properties={"plan": "enterprise"}, message_id=ctx["track_mid"])
    sdk.page(anonymous_id=anon, name="Pricing", properties={"path": "/pricing", "url": "https://example.com/pricing"},
             message_id=ctx["anon_page_mid"])
    sdk.page(user_id=uid, name="Enterprise pricing", properties={"path": "/pricing/enterprise"},
             message_id=ctx["marker_mid"])
    run_with_timeout(sdk.shutdown, 60, "%s shutdown()" % name)
    if sink.errors:
        raise Failure("the SDK reported upload errors on the resend (status, error, types): %s" % sink.errors)

    def marker_seen(s, b):
        return s == 200 and isinstance(b, dict) and any(
            e.get("messageId") == ctx["marker_mid"] for e in b.get("events") or []
        )

    status, body = poll_lead(args.host, args.api_key, uid, marker_seen)
    if not marker_seen(status, body):
        raise Failure(
            "phase 2: the marker page view (messageId %s) never showed up in the lead's events within %.0fs: %s"
            % (ctx["marker_mid"], POLL_SECONDS, dump(summarize(body)))
        )
    problems = check_lead(status, body, EXPECTED_PHASE2, EXPECTED_RULES_PHASE2, ctx)
    if problems:
        raise Failure(
            "phase 2 (same messageIds resent: must count once):\n  - %s\nexpected: %s\nactual: %s"
            % ("\n  - ".join(problems), dump(dict(EXPECTED_PHASE2, rules=EXPECTED_RULES_PHASE2)), dump(summarize(body)))
        )

    # ---- phase 3: a wrong write key -> 401, reported to on_error, nothing stored
    bad_sink = ErrorSink()
    bad_uid = "sdk-py-%s-badkey-%s" % (name, suffix)
    bad = new_client(name, args.host, "wk_wrong_" + suffix, bad_sink)
    bad.track(user_id=bad_uid, event="Demo Requested")
    started = time.monotonic()
    run_with_timeout(bad.shutdown, 60, "%s shutdown() with a wrong write key" % name)
    took = time.monotonic() - started
    statuses = [e[0] for e in bad_sink.errors]
    if statuses != [401]:
        raise Failure("wrong write key: expected the SDK's on_error to get exactly one 401, got %s" % bad_sink.errors)
    if took > 5:
        raise Failure("wrong write key: the SDK took %.1fs, i.e. it retried; 401 must not be retried" % took)
    status, body = get_lead(args.host, args.api_key, bad_uid)
    if status != 404:
        raise Failure("wrong write key: the event was stored anyway: GET /api/leads/%s -> %s %s" % (bad_uid, status, body))

    return ctx


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", required=True, help="e.g. http://127.0.0.1:18181")
    p.add_argument("--write-key", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--only", choices=[s[0] for s in SDKS], help="run one SDK only")
    args = p.parse_args()

    # The SDKs log upload errors through `logging`; the failures are reported through on_error.
    for logger in ("segment", "rudderstack", "backoff"):
        logging.getLogger(logger).addHandler(logging.NullHandler())
        logging.getLogger(logger).propagate = False

    try:
        check_server(args.host, args.api_key)
    except Failure as e:
        print("FAIL: %s" % e)
        return 1

    failed = skipped = 0
    for name, label, module, pip_line, configure in SDKS:
        if args.only and args.only != name:
            continue
        try:
            __import__(module)
        except ImportError as e:
            print("skipped: %s not installed (pip install %s): %s" % (label, pip_line, e))
            skipped += 1
            continue
        dist, want = pip_line.split("==")
        have = installed_version(dist)
        if have != want:
            print("FAIL %s: installed version is %s, the test is written for %s (pip install %s)" % (label, have, want, pip_line))
            failed += 1
            continue
        try:
            ctx = run_sdk(name, configure, args)
        except Failure as e:
            print("FAIL %s: %s" % (label, e))
            failed += 1
            continue
        except Exception as e:  # noqa: BLE001 - an SDK exception is a failure, not a crash
            import traceback

            traceback.print_exc()
            print("FAIL %s: unexpected %r" % (label, e))
            failed += 1
            continue
        print(
            "PASS %s: lead %s total 70 -> 75 stage sql; VP title, account employees, demo, 2 pricing views "
            "(1 stitched by alias); resent messageIds counted once; wrong write key -> 401" % (label, ctx["user_id"])
        )

    if failed:
        return 1
    if skipped:
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())
