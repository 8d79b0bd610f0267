#!/usr/bin/env python3
"""Benchmark data for `leadscore score` with examples/models/b2b-default.toml.

    python3 bench/gen_bench_data.py --out bench/out [--leads 100000] [--events 5000000] [--seed 1]

Writes, deterministically (standard library only; same arguments, same bytes):
  OUT/leads.csv        the CRM export: id,email,first_name,title,department,employees,industry,
                       country,created_at (some cells empty)
  OUT/events.jsonl     Segment messages in time order, 2024-01-03 .. 2024-06-30: page views and
                       tracks that the b2b-default rules look for (pricing, product, blog, careers,
                       demo requests, forms, downloads, e-mail opens/clicks, webinars, trial and
                       product usage, unsubscribes), identify (progressive profiling, stitching
                       anonymous visits), group, alias, anonymous visits, crawler traffic, internal
                       staff, SDK retries (duplicate messageIds); each with messageId, context
                       (library, userAgent, ip, locale, page) and properties
  OUT/outcomes.csv     won / converted / lost / disqualified for some leads
  OUT/sample/...       the same three files for a 1% sample (every 100th lead and its events,
                       anonymous ones included), for the Python reference peer
Score it as of 2024-07-01T00:00:00Z.
"""

from __future__ import annotations

import argparse
import calendar
import json
import multiprocessing
import os
import random
import time

DAY = 86400
START = calendar.timegm((2024, 1, 3, 0, 0, 0))
DAYS = 180
AS_OF = "2024-07-01T00:00:00Z"

FIRST = ["Priya", "Daniel", "Sofia", "Tom", "Li", "Marco", "Kenji", "Fatima", "Omar", "Hannah",
         "Emily", "Peter", "George", "Mei", "Ryan", "Nina", "Michael", "Zoe", "Yuki", "Carlos",
         "Sarah", "Julia", "Laura", "Isabelle", "Deniz", "Ana", "Lars", "Chen", "Amara", "Raj"]
LAST = ["Raman", "Weber", "Lindqvist", "Okafor", "Wei", "Rossi", "Sato", "Khan", "Haddad",
        "Schmidt", "Clark", "Novak", "Brown", "Lin", "Cole", "Berg", "Jones", "Park", "Ito", "Diaz"]
TITLES = [("CEO", 2), ("Chief Technology Officer", 1), ("CFO", 1), ("Founder", 1),
          ("VP Marketing", 3), ("VP of Sales", 2), ("Head of Growth", 2), ("Head of IT", 1),
          ("Marketing Director", 4), ("Director of Sales Operations", 2), ("IT Director", 2),
          ("Marketing Manager", 8), ("Sales Manager", 5), ("Marketing Operations Manager", 3),
          ("Team Lead, Data", 2), ("Data Analyst", 5), ("Software Engineer", 6),
          ("Account Executive", 4), ("Executive Assistant to the CEO", 1), ("Marketing Intern", 1),
          ("Student", 1), ("Consultant", 3), ("Data Analyst | Open to work", 1), ("", 6)]
DEPARTMENTS = [("Marketing", 10), ("Sales", 6), ("Revenue Operations", 2), ("IT", 4),
               ("Engineering", 5), ("Data", 2), ("Finance", 2), ("Operations", 2), ("HR", 1),
               ("Legal", 1), ("", 5)]
INDUSTRIES = [("Software", 8), ("SaaS", 3), ("Financial Services", 4), ("Insurance", 1),
              ("E-commerce", 3), ("Retail", 3), ("Manufacturing", 4), ("Media", 1),
              ("Healthcare", 2), ("Consulting", 2), ("Education", 1), ("Government", 1),
              ("Non-profit", 1), ("", 4)]
COUNTRIES = [("US", 20), ("GB", 6), ("DE", 6), ("CA", 3), ("NL", 2), ("SE", 2), ("FR", 3),
             ("ES", 2), ("IT", 2), ("AU", 2), ("IN", 3), ("BR", 2), ("GH", 1), ("JP", 1), ("", 3)]
COMPANIES = ["contoso", "fabrikam", "northwind", "litware", "tailspin", "woodgrove", "adventure-works",
             "alpineski", "trey", "wingtip", "humongous", "blueyonder", "consolidated", "proseware",
             "lucerne", "margie", "fourthcoffee", "wideworld", "coho", "graphicdesign"]
TLDS = [".com", ".com", ".com", ".de", ".co.uk", ".io", ".se", ".fr"]
FREE = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "proton.me"]
UAS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
]
BOTS = ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36"]
# (path, page name, weight)
PAGES = [("/", "Home", 14), ("/pricing", "Pricing", 6), ("/pricing/enterprise", "Enterprise pricing", 2),
         ("/product", "Product", 5), ("/product/tour", "Product tour", 3),
         ("/integrations/salesforce", "Salesforce integration", 2),
         ("/integrations/hubspot", "HubSpot integration", 2), ("/security", "Security", 2),
         ("/customers/contoso", "Customer story: Contoso", 2), ("/blog/lead-scoring-101", "Lead scoring 101", 6),
         ("/blog/mql-vs-sql", "MQL vs SQL", 5), ("/blog/negative-scoring", "Negative scoring", 4),
         ("/resources/lead-scoring-ebook", "E-book: The lead scoring playbook", 3),
         ("/webinars/june-2024", "Webinar: Closed-loop reporting", 2), ("/careers", "Careers", 1),
         ("/careers/account-executive", "Account Executive", 1), ("/docs/api", "API docs", 3),
         ("/contact", "Contact", 1)]
# (event, weight, properties maker key)
TRACKS = [("Email Opened", 30), ("Email Link Clicked", 6), ("Email Delivered", 6),
          ("Logged In", 14), ("Report Created", 6), ("Integration Connected", 1), ("Invite Sent", 1),
          ("Content Downloaded", 3), ("Webinar Registered", 2), ("Webinar Attended", 1),
          ("Form Submitted", 2), ("Demo Requested", 0.5), ("Signed Up", 0.7), ("Trial Started", 0.5),
          ("Newsletter Subscribed", 1), ("Unsubscribed", 0.5), ("Email Marked as Spam", 0.1)]
FORMS = [("demo-request", 3), ("contact-sales", 2), ("free-consultation", 1), ("free-assessment", 1),
         ("newsletter", 3), ("ebook", 4), ("job-application", 0.5)]
CONTENT = ["lead-scoring-playbook", "b2b-benchmark-2024", "revops-checklist", "case-study-contoso"]


def weighted(pairs, whole=False):
    items = [p if whole else p[0] for p in pairs]
    cum, total = [], 0.0
    for p in pairs:
        total += p[-1]
        cum.append(total)
    return items, cum


def ts(sec: int, ms: int) -> str:
    t = time.gmtime(sec)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (t[0], t[1], t[2], t[3], t[4], t[5], ms)


class Gen:
    def __init__(self, seed: int, n_leads: int, n_events: int):
        self.rng = random.Random(seed)
        self.n_leads = n_leads
        self.n_events = n_events

    def leads(self):
        rng = self.rng
        titles = weighted(TITLES)
        depts = weighted(DEPARTMENTS)
        inds = weighted(INDUSTRIES)
        ctrs = weighted(COUNTRIES)
        out = []
        for i in range(self.n_leads):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            company = rng.choice(COMPANIES) + str(rng.randint(1, 400))
            domain = company + rng.choice(TLDS)
            if rng.random() < 0.15:
                domain = rng.choice(FREE)
            elif rng.random() < 0.005:
                domain = "relecloud.com"
            elif rng.random() < 0.01:
                domain = "state.edu"
            employees = int(rng.lognormvariate(5.3, 1.6)) + 1
            created = START - 30 * DAY + rng.randint(0, (DAYS + 20) * DAY)
            lead = {
                "id": f"L-{i + 1:06d}",
                "email": f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@{domain}",
                "first_name": first,
                "title": rng.choices(titles[0], cum_weights=titles[1])[0],
                "department": rng.choices(depts[0], cum_weights=depts[1])[0],
                "employees": str(employees) if rng.random() < 0.9 else "",
                "industry": rng.choices(inds[0], cum_weights=inds[1])[0],
                "country": rng.choices(ctrs[0], cum_weights=ctrs[1])[0],
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
                "_created": created,
                "_domain": domain,
                "_anon": "%032x" % rng.getrandbits(128),
                "_ua": rng.choice(UAS),
                "_ip": f"{rng.randint(11, 220)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                # activity: a few very active leads, a long tail of quiet ones
                "_w": min(rng.paretovariate(1.3), 40.0),
                # when a form fill identifies the visitor (before: anonymous visits only)
                "_identified": created + rng.choice([0, 0, 0, rng.randint(0, 40 * DAY)]),
            }
            out.append(lead)
        return out


SERVER_LIBRARY = {"name": "analytics-node", "version": "6.2.0"}
BROWSER_LIBRARY = {"name": "analytics.js", "version": "next-1.64.0"}
# E-mail events arrive from the e-mail platform and product events from the backend
# (server-side libraries: no user agent, no anonymousId); the rest from the browser.
SERVER_SIDE = {"Email Opened", "Email Link Clicked", "Email Delivered", "Logged In",
               "Report Created", "Integration Connected", "Invite Sent", "Unsubscribed",
               "Email Marked as Spam", "Signed Up", "Trial Started"}


def browser(lead: dict, ua: str | None = None) -> dict:
    ctx = {"library": BROWSER_LIBRARY, "userAgent": ua or lead["_ua"], "ip": lead["_ip"]}
    if lead["_domain"] == "relecloud.com":
        ctx["traits"] = {"email": lead["email"]}
    return ctx


# Shared with the worker processes (fork): set by main() before the pool starts.
STATE: dict = {}


def gen_day(day: int) -> tuple[str, str, int, int]:
    """One day of messages in time order, and the sample's part of it. Deterministic per day."""
    leads, lead_cum, a = STATE["leads"], STATE["lead_cum"], STATE["args"]
    pages, tracks, forms, titles = STATE["pages"], STATE["tracks"], STATE["forms"], STATE["titles"]
    rng = random.Random(a.seed * 1_000_003 + day)
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    def mid() -> str:
        h = "%032x" % rng.getrandbits(128)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    per_day = a.events // DAYS
    day_start = START + day * DAY
    n_today = per_day if day < DAYS - 1 else a.events - per_day * (DAYS - 1)
    picks = rng.choices(range(len(leads)), cum_weights=lead_cum, k=n_today)
    batch = []
    for li in picks:
        lead = leads[li]
        sec = day_start + rng.randint(0, DAY - 1)
        ms = rng.randint(0, 999)
        stamp = ts(sec, ms)
        known = sec >= lead["_identified"]  # after the form fill that stitched the visitor
        r = rng.random()
        if r < 0.42 or (r < 0.47 and not known):
            page = rng.choices(pages[0], cum_weights=pages[1])[0]
            m = {"type": "page", "messageId": mid(), "timestamp": stamp, "name": page[1],
                 "properties": {"path": page[0], "url": "https://www.relecloud.com" + page[0],
                                "referrer": rng.choice(["https://www.google.com/", "https://www.linkedin.com/",
                                                        "", "https://www.relecloud.com/"])},
                 "context": browser(lead)}
            if known:
                m["userId"] = lead["id"]
            m["anonymousId"] = lead["_anon"]  # before the form fill: an anonymous visit
        elif r < 0.93:
            name = rng.choices(tracks[0], cum_weights=tracks[1])[0]
            props: dict = {}
            if name == "Form Submitted":
                props["form"] = rng.choices(forms[0], cum_weights=forms[1])[0]
            elif name.startswith("Email"):
                props["campaign_type"] = "marketing" if rng.random() < 0.8 else "transactional"
                props["campaign_id"] = "cmp-%03d" % rng.randint(1, 60)
            elif name == "Content Downloaded":
                props["content"] = rng.choice(CONTENT)
            elif name.startswith("Webinar"):
                props["webinar"] = "closed-loop-reporting"
            elif name in ("Report Created", "Logged In"):
                props["plan"] = "trial"
            m = {"type": "track", "messageId": mid(), "timestamp": stamp, "userId": lead["id"],
                 "event": name, "properties": props,
                 "context": {"library": SERVER_LIBRARY} if name in SERVER_SIDE else browser(lead)}
        elif r < 0.97:
            traits = {"email": lead["email"]}
            for k in ("title", "department", "employees", "industry", "country"):
                if rng.random() < 0.3 and lead[k]:
                    traits[k] = int(lead[k]) if k == "employees" else lead[k]
            if rng.random() < 0.05:  # a promotion, or a title removed from the CRM
                traits["title"] = rng.choices(titles[0], cum_weights=titles[1])[0] or None
            m = {"type": "identify", "messageId": mid(), "timestamp": stamp, "userId": lead["id"],
                 "anonymousId": lead["_anon"], "traits": traits, "context": browser(lead)}
        elif r < 0.985:
            m = {"type": "group", "messageId": mid(), "timestamp": stamp, "userId": lead["id"],
                 "groupId": lead["_domain"],
                 "traits": {"name": lead["_domain"].split(".")[0].title(),
                            "industry": lead["industry"] or None,
                            "employees": int(lead["employees"]) if lead["employees"] else None},
                 "context": browser(lead)}
        elif r < 0.99:
            m = {"type": "alias", "messageId": mid(), "timestamp": stamp, "userId": lead["id"],
                 "previousId": lead["_anon"], "context": browser(lead)}
        else:
            # a crawler on the site, sometimes carrying the id from a tracked link
            page = rng.choices(pages[0], cum_weights=pages[1])[0]
            m = {"type": "page", "messageId": mid(), "timestamp": stamp, "name": page[1],
                 "properties": {"path": page[0], "url": "https://www.relecloud.com" + page[0]},
                 "context": browser(lead, ua=rng.choice(BOTS)),
                 "anonymousId": "%032x" % rng.getrandbits(128)}
            if rng.random() < 0.3:
                m["userId"] = lead["id"]
        line = dumps(m)
        batch.append((sec * 1000 + ms, line, li))
        if rng.random() < 0.003:  # an SDK retry: the same message again
            batch.append((sec * 1000 + ms, line, li))
    batch.sort(key=lambda x: x[0])
    every = a.sample_every
    sample = [b[1] for b in batch if b[2] % every == 0]
    text = "\n".join(b[1] for b in batch) + "\n" if batch else ""
    sample_text = "\n".join(sample) + "\n" if sample else ""
    return text, sample_text, len(batch), len(sample)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="bench/out")
    p.add_argument("--leads", type=int, default=100_000)
    p.add_argument("--events", type=int, default=5_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sample-every", type=int, default=100)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = p.parse_args()

    t0 = time.time()
    g = Gen(a.seed, a.leads, a.events)
    rng = g.rng
    leads = g.leads()
    sample_dir = os.path.join(a.out, "sample")
    os.makedirs(sample_dir, exist_ok=True)
    cols = ["id", "email", "first_name", "title", "department", "employees", "industry", "country",
            "created_at"]

    def csv_line(lead):
        return ",".join('"' + lead[c] + '"' if "," in lead[c] or '"' in lead[c] else lead[c]
                        for c in cols) + "\n"

    with open(os.path.join(a.out, "leads.csv"), "w") as f, \
            open(os.path.join(sample_dir, "leads.csv"), "w") as fs:
        f.write(",".join(cols) + "\n")
        fs.write(",".join(cols) + "\n")
        for i, lead in enumerate(leads):
            line = csv_line(lead)
            f.write(line)
            if i % a.sample_every == 0:
                fs.write(line)

    lead_cum = []
    total = 0.0
    for lead in leads:
        total += lead["_w"]
        lead_cum.append(total)
    STATE.update(leads=leads, lead_cum=lead_cum, args=a, pages=weighted(PAGES, whole=True),
                 tracks=weighted(TRACKS), forms=weighted(FORMS), titles=weighted(TITLES))

    n_written = n_sample = 0
    with open(os.path.join(a.out, "events.jsonl"), "w") as f, \
            open(os.path.join(sample_dir, "events.jsonl"), "w") as fs:
        if a.jobs > 1:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(a.jobs) as pool:
                days = pool.imap(gen_day, range(DAYS), chunksize=2)
                for text, sample_text, n, ns in days:
                    f.write(text)
                    fs.write(sample_text)
                    n_written += n
                    n_sample += ns
        else:
            for day in range(DAYS):
                text, sample_text, n, ns = gen_day(day)
                f.write(text)
                fs.write(sample_text)
                n_written += n
                n_sample += ns

    with open(os.path.join(a.out, "outcomes.csv"), "w") as f, \
            open(os.path.join(sample_dir, "outcomes.csv"), "w") as fs:
        f.write("lead_id,outcome,at\n")
        fs.write("lead_id,outcome,at\n")
        for i, lead in enumerate(leads):
            if rng.random() < 0.05:
                at = START + rng.randint(30 * DAY, DAYS * DAY - 1)
                kind = rng.choice(["won", "converted", "lost", "lost", "disqualified"])
                line = f"{lead['id']},{kind},{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(at))}\n"
                f.write(line)
                if i % a.sample_every == 0:
                    fs.write(line)
    with open(os.path.join(a.out, "as_of"), "w") as f:
        f.write(AS_OF + "\n")
    size = os.path.getsize(os.path.join(a.out, "events.jsonl"))
    print(f"wrote {len(leads)} leads and {n_written} messages ({size / 1e9:.2f} GB) to {a.out}; "
          f"sample: {len(leads[::a.sample_every])} leads, {n_sample} messages; {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
