#!/usr/bin/env python3
"""Random but valid scoring cases for the differential test (crates/cli/tests/differential.rs).

    python3 bench/random_case.py --seed 7 --out DIR

writes DIR/model.toml, DIR/leads.csv, DIR/events.jsonl, DIR/outcomes.csv and DIR/as_of (one RFC
3339 line). The same seed always gives the same bytes (standard library only).

The model has 1-3 dimensions (fit, engagement, intent in a random order, with random min / max /
weight / half_life), 3-12 rules of the four kinds with random options, 0-3 stages, and sometimes a
grade, an `[events] ignore`, `[accounts]` and `[calibration]`. The data: 20-200 leads with typed
and untyped traits (some cells empty), 0-3000 Segment messages (page, track, identify, group,
alias) including anonymous visits that are identified later (or never, or after as_of, or twice),
exact and shifted duplicates by messageId, bot user agents, timestamps given as `timestamp`,
offsets, `originalTimestamp` + `sentAt` / `receivedAt`, events exactly on window boundaries and
after as_of, and outcomes.

Conditions stay inside what the engine and the reference must agree on: field access,
`== != < <= > >=`, `&& || !`, `in [..]`, `has()`, `startsWith endsWith contains matches`, `size`,
`lowerAscii`, `email_domain`, `is_free_email`. Readings that SPEC.md leaves open and that the two
implementations need not share (e.g. `has()` on a null field, `!=` across types, has() on a
missing parent) are avoided on purpose.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import json
import os
import random
import time
import uuid

DAY = 86400 * 1000
HOUR = 3600 * 1000

TITLES = [
    "CEO", "Chief Technology Officer", "CFO", "Founder & CEO", "VP Marketing", "Vice President of Sales",
    "Head of Growth", "Head of IT", "Marketing Director", "Director of Engineering", "IT Director",
    "Project Manager", "Marketing Manager", "Sales Manager", "Team Lead, Data", "Data Analyst",
    "Software Engineer", "Executive Assistant to the CEO", "Marketing Intern", "Student",
    "Account Executive", "Operations Manager", "Senior Consultant", "Office Manager",
]
DEPARTMENTS = ["Marketing", "Sales", "IT", "Engineering", "Finance", "Operations", "HR", "marketing",
               "Revenue Operations", "Product", "Legal"]
INDUSTRIES = ["Software", "SaaS", "Financial Services", "Manufacturing", "Retail", "E-commerce",
              "Education", "Government", "Healthcare", "Media", "Consulting", "software"]
COUNTRIES = ["US", "DE", "GB", "FR", "SE", "NL", "CA", "IN", "BR", "GH", "JP", "AU", "ES", "IT"]
FIRST = ["Ana", "Bo", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kenji",
         "Lena", "Mia", "Noah", "Omar", "Priya", "Quinn", "Raj", "Sofia", "Tom", "Uma", "Vik",
         "Wen", "Xia", "Yuki", "Zoe", "Alexandra", "Maximilian"]
LAST = ["Smith", "Muller", "Okafor", "Lindqvist", "Raman", "Rossi", "Tanaka", "Garcia", "Weber",
        "Novak", "Kim", "Silva"]
COMPANIES = ["contoso.com", "fabrikam.de", "northwind.se", "litware.com", "tailspin.io",
             "woodgrove.com", "adventure-works.com", "alpineski.at", "trey.co.uk", "wingtip.com",
             "humongous.com", "blueyonder.aero", "consolidated.com", "relecloud.com",
             "state.edu"]
FREE = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com"]
PATHS = ["/", "/pricing", "/pricing/enterprise", "/product", "/product/tour", "/integrations/hubspot",
         "/security", "/customers/contoso", "/blog/lead-scoring-101", "/blog/mql-vs-sql",
         "/careers", "/careers/engineer", "/jobs/42", "/docs/api", "/internal/admin", "/contact",
         "/resources/ebook", "/webinars/june"]
TRACKS = ["Form Submitted", "Demo Requested", "Content Downloaded", "Email Opened",
          "Email Link Clicked", "Newsletter Subscribed", "Unsubscribed", "Webinar Registered",
          "Webinar Attended", "Signed Up", "Trial Started", "Logged In", "Report Created",
          "Integration Connected", "Invite Sent", "Email Delivered", "Email Marked as Spam"]
FORMS = ["demo-request", "contact-sales", "free-assessment", "newsletter", "job-application",
         "ebook"]
UAS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
]
BOT_UAS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0 Safari/537.36",
    "python-requests/2.31", "LinkScanBot/1.0 (crawler)",
]

# ---------------------------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------------------------

TRAIT_CONDS = [
    r'lead.title.matches("(?i)\\b(vp|vice president|head of)\\b")',
    r'lead.title.matches("(?i)\\b(ceo|cto|cfo|chief|founder)\\b") && !lead.title.matches("(?i)\\bassistant\\b")',
    r'lead.title.matches("(?i)^director|director$")',
    'lead.title.contains("Manager")',
    'lead.title.startsWith("Head") || lead.title.endsWith("Director")',
    'lead.department.lowerAscii() in ["marketing", "sales", "revenue operations"]',
    'lead.department == "IT" || lead.department == "Engineering"',
    'lead.employees >= {a} && lead.employees < {b}',
    'lead.employees > {a}',
    'lead.employees <= {a}',
    'lead.employees == 250',
    'lead.employees in [50, 100, 250, 500, 1000]',
    'lead.country in ["US", "DE", "GB", "CA"]',
    '!(lead.country in ["US", "CA", "GB"])',
    'has(lead.country) && lead.country != "US"',
    'has(lead.industry)',
    '!has(lead.title)',
    '!has(lead.employees) || lead.employees < 10',
    'lead.email.endsWith("@gmail.com")',
    'is_free_email(lead.email)',
    'email_domain(lead.email) == "contoso.com"',
    'email_domain(lead.email).endsWith(".edu") || email_domain(lead.email).endsWith(".co.uk")',
    'size(lead.first_name) > 4',
    'lead.first_name.size() <= 3',
    'lead.opt_in == true',
    'lead.score > 5',
    'lead.id.startsWith("L-1")',
    'lead.id.matches("^L-0*[0-9]?[02468]$")',
    'has(lead.account) && lead.account.industry == "Software"',
    'account.employees >= 500',
    'lead.account.id.endsWith(".com")',
    'lead.industry.lowerAscii().startsWith("soft") || lead.industry == "SaaS"',
    'lead.industry.lowerAscii() in ["education", "government"]',
    '(lead.title.contains("VP") || lead.title.contains("Director")) && lead.employees >= 100',
]

EVENT_CONDS = [
    'event.type == "page" && event.properties.path.startsWith("/pricing")',
    'event.type == "page" && event.properties.path == "/pricing"',
    'event.type == "page" && (event.properties.path.startsWith("/product") || event.properties.path.startsWith("/integrations") || event.properties.path.startsWith("/security"))',
    'event.type == "page" && event.properties.path.startsWith("/blog")',
    'event.type == "page" && event.properties.path.matches("^/(careers|jobs)")',
    'event.type == "page"',
    'event.type == "track"',
    'event.type == "identify"',
    'event.type == "group"',
    'event.type == "track" && event.event == "Email Opened" && event.properties.campaign_type == "marketing"',
    'event.type == "track" && event.event in ["Logged In", "Report Created", "Integration Connected", "Invite Sent"]',
    'event.type == "track" && (event.event == "Demo Requested" || (event.event == "Form Submitted" && event.properties.form in ["demo-request", "contact-sales"]))',
    'event.event == "Content Downloaded"',
    'event.event == "Unsubscribed" || event.event == "Email Marked as Spam"',
    'event.type == "track" && event.properties.value > {v}',
    'event.type == "track" && event.properties.value >= 10.5',
    'event.type == "track" && event.event.endsWith("Clicked")',
    'event.type == "track" && event.event.lowerAscii().contains("webinar")',
    'event.type == "page" && event.properties.path.contains("pricing") && lead.country == "US"',
    'event.type == "page" && lead.employees >= 100',
    'event.type == "track" && event.event == "Webinar Attended" && has(lead.title)',
    'event.context.userAgent.contains("Mobile")',
    'event.type == "page" && event.name.lowerAscii().contains("pricing")',
    'event.type == "page" && size(event.properties.path) > 10',
    'event.type == "track" && !(event.event in ["Email Opened", "Email Delivered"])',
    'event.type == "page" && has(event.properties.referrer) && event.properties.referrer.contains("google")',
    'event.type == "page" && account.industry == "Software"',
    'event.type == "track" && lead.account.employees > 200',
    'event.type == "page" && event.properties.path == "/" && is_free_email(lead.email)',
]

INACTIVE_CONDS = [
    'event.type == "page"',
    'event.type == "page" || event.type == "track"',
    'event.type == "page" || (event.type == "track" && !(event.event in ["Email Opened", "Email Delivered", "Unsubscribed"]))',
    'event.type == "track" && event.event == "Logged In"',
]

IGNORE_CONDS = [
    'has(event.context.userAgent) && event.context.userAgent.matches("(?i)(bot|crawler|spider|headlesschrome|python-requests)")',
    'event.context.userAgent.matches("(?i)bot")',
    'event.type == "page" && event.properties.path.startsWith("/internal")',
    'has(event.context.traits.email) && email_domain(event.context.traits.email) == "relecloud.com"',
    'event.context.userAgent.contains("python-requests") || (event.type == "track" && event.event == "Email Delivered")',
]

DURATIONS = ["12h", "36h", "3d", "7d", "14d", "30d", "60d", "90d", "2w"]


def toml_str(s: str) -> str:
    if "'" not in s and "\n" not in s:
        return "'" + s + "'"
    return json.dumps(s)


def fill(rng: random.Random, cond: str) -> str:
    a = rng.choice([10, 50, 100, 200, 250, 500, 1000])
    b = a * rng.choice([2, 5, 10])
    return cond.replace("{a}", str(a)).replace("{b}", str(b)).replace(
        "{v}", str(rng.choice([5, 20, 50, 99])))


def rfc3339(ms: int, offset_min: int = 0, frac: bool = True) -> str:
    local = ms + offset_min * 60000
    secs, milli = divmod(local, 1000)
    t = time.gmtime(secs)
    s = "%04d-%02d-%02dT%02d:%02d:%02d" % t[:6]
    if frac:
        s += ".%03d" % milli
    if offset_min == 0:
        return s + "Z"
    sign = "+" if offset_min > 0 else "-"
    return s + "%s%02d:%02d" % (sign, abs(offset_min) // 60, abs(offset_min) % 60)


def gen_model(rng: random.Random) -> tuple[str, list[str]]:
    names = rng.sample(["fit", "engagement", "intent"], rng.randint(1, 3))
    if len(names) >= 2 and rng.random() < 0.7:
        names = ["fit", "engagement"] + [n for n in names if n not in ("fit", "engagement")]
        if rng.random() < 0.3:
            rng.shuffle(names)
    lines = ["[model]", f'name = "random-{rng.randint(0, 10**6)}"', ""]
    typed = {"email": "string", "title": "string", "employees": "number", "country": "string"}
    if rng.random() < 0.5:
        typed["created_at"] = "timestamp"
    if rng.random() < 0.6:
        typed["opt_in"] = "bool"
    if rng.random() < 0.5:
        typed["department"] = "string"
    lines.append("[traits]")
    for k, v in typed.items():
        lines.append(f'{k} = "{v}"')
    lines.append("")
    for n in names:
        lines.append(f"[dimensions.{n}]")
        if rng.random() < 0.4:
            lines.append(f"min = {rng.choice([0, -50, -20, 5])}")
        if rng.random() < 0.4:
            lines.append(f"max = {rng.choice([30, 50, 100, 150])}")
        if rng.random() < 0.4:
            lines.append(f"weight = {rng.choice([0.5, 1.0, 1.5, 2, 0.25])}")
        if rng.random() < (0.2 if n == "fit" else 0.6):
            lines.append(f'half_life = "{rng.choice(["7d", "30d", "12h", "2w", "60d"])}"')
        lines.append("")
    for i in range(rng.randint(3, 12)):
        kind = rng.choices(["trait", "event", "count", "inactive"], [4, 5, 2, 1.5])[0]
        dim = rng.choice(names)
        pts = rng.choice([-30, -20, -10, -5, -1, 1, 2, 2.5, 3, 5, 8, 10, 15, 20, 25, 40])
        lines.append("[[rules]]")
        lines.append(f'name = "R{i} {kind}"')
        lines.append(f'dimension = "{dim}"')
        if kind == "trait":
            lines.append(f"if = {toml_str(fill(rng, rng.choice(TRAIT_CONDS)))}")
        elif kind == "event":
            lines.append(f"on = {toml_str(fill(rng, rng.choice(EVENT_CONDS)))}")
            if rng.random() < 0.4:
                lines.append(f"limit = {rng.randint(1, 10)}")
            if rng.random() < 0.3:
                lines.append(f'within = "{rng.choice(DURATIONS)}"')
            if rng.random() < 0.3:
                lines.append(f"per_day = {rng.randint(1, 3)}")
            if rng.random() < 0.3:
                lines.append(f"max_points = {rng.choice([5, 8, 20, 30, 40])}")
            if rng.random() < 0.35:
                lines.append(f'half_life = "{rng.choice(["none", "7d", "60d", "12h", "none"])}"')
        elif kind == "count":
            lines.append(f"on = {toml_str(fill(rng, rng.choice(EVENT_CONDS)))}")
            lines.append(f"at_least = {rng.randint(1, 6)}")
            lines.append(f'within = "{rng.choice(DURATIONS)}"')
            if rng.random() < 0.4:
                lines.append(f"per_day = {rng.randint(1, 2)}")
        else:
            lines.append(f"inactive = {toml_str(rng.choice(INACTIVE_CONDS))}")
            lines.append(f'for = "{rng.choice(["7d", "14d", "30d", "60d", "90d"])}"')
        lines.append(f"points = {pts}")
        lines.append("")
    dims_expr = names
    stage_pool = [
        f"total >= {rng.choice([10, 20, 30, 50])}",
        f"total >= {rng.choice([40, 60, 80])} && {rng.choice(dims_expr)} >= {rng.choice([5, 10, 20])}",
        f"{rng.choice(dims_expr)} > {rng.choice([15, 25, 40])} || total >= {rng.choice([90, 120])}",
        "total < 0",
        f"{rng.choice(dims_expr)} >= 10.5 && !({rng.choice(dims_expr)} < 0)",
    ]
    for sname in ["mql", "sql", "hot"][: rng.randint(0, 3)]:
        lines.append("[[stages]]")
        lines.append(f'name = "{sname}"')
        lines.append(f'when = "{rng.choice(stage_pool)}"')
        lines.append("")
    if "fit" in names and "engagement" in names and rng.random() < 0.6:
        letters = ["A", "B", "C", "D"][: rng.randint(1, 3)]
        thr = sorted(rng.sample(range(1, 45), len(letters)), reverse=True)
        digits = ["1", "2", "3"][: rng.randint(1, 3)]
        ethr = sorted(rng.sample(range(1, 40), len(digits)), reverse=True)
        lines.append("[grade]")
        lines.append("fit = { " + ", ".join(f"{k} = {v}" for k, v in zip(letters, thr)) + " }")
        lines.append("engagement = { " + ", ".join(f"{k} = {v}" for k, v in zip(digits, ethr))
                     + " }")
        lines.append("")
    if rng.random() < 0.6:
        lines.append("[events]")
        lines.append(f"ignore = {toml_str(rng.choice(IGNORE_CONDS))}")
        lines.append("")
    if rng.random() < 0.4:
        lines.append("[accounts]")
        lines.append(f'aggregate = "{rng.choice(["max", "sum", "mean"])}"')
        lines.append("")
    if rng.random() < 0.3:
        lines.append("[calibration]")
        lines.append(f"intercept = {rng.choice([-4.0, -2.5, -1.0, 0.5])}")
        lines.append(f"slope = {rng.choice([0.01, 0.03, 0.05, 0.1])}")
        lines.append("")
    return "\n".join(lines), list(typed)


class Ids:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def message_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def gen_case(seed: int, out: str) -> None:
    rng = random.Random(seed)
    ids = Ids(rng)
    model, typed = gen_model(rng)
    as_of = calendar.timegm((2024, 7, 1, 0, 0, 0)) * 1000 + rng.choice(
        [0, 0, rng.randint(0, 72) * HOUR + rng.randint(0, 3599) * 1000])
    start = as_of - 180 * DAY

    # ---- leads
    n_leads = rng.randint(20, 200)
    accounts = rng.sample(COMPANIES, rng.randint(3, len(COMPANIES)))
    lead_ids = []
    used = set()
    while len(lead_ids) < n_leads:
        i = rng.randint(1, 2999)
        lid = f"L-{i:04d}" if rng.random() < 0.9 else f"lead_{i}"
        if lid not in used:
            used.add(lid)
            lead_ids.append(lid)
    extra_cols = ["industry", "created_at", "account", "opt_in", "score", "department"]
    rng.shuffle(extra_cols)
    header = ["email", "first_name", "title", "employees", "country"] + extra_cols
    header.insert(rng.randint(0, 2), "id")
    score_mixed = rng.random() < 0.5
    created_dates = "created_at" not in typed and rng.random() < 0.5
    rows = []
    lead_info = {}
    for lid in lead_ids:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        acct = rng.choice(accounts)
        domain = rng.choice(FREE) if rng.random() < 0.2 else acct
        created = start + rng.randint(-60 * DAY, 170 * DAY)
        emp = rng.choice([3, 8, 20, 50, 99, 100, 150, 250, 500, 999, 1000, 1800, 5200])
        cell = {
            "id": lid,
            "email": f"{first.lower()}.{last.lower()}@{domain}",
            "first_name": first,
            "title": rng.choice(TITLES),
            "employees": str(emp) if rng.random() < 0.95 else f"{emp}.0",
            "country": rng.choice(COUNTRIES),
            "industry": rng.choice(INDUSTRIES),
            "created_at": (rfc3339(created, frac=False) if not created_dates or rng.random() < 0.5
                           else rfc3339(created)[:10]),
            "account": acct,
            "opt_in": rng.choice(["true", "false"]),
            "score": (str(rng.randint(0, 10)) if not score_mixed or rng.random() < 0.8
                      else rng.choice(["high", "low"])),
            "department": rng.choice(DEPARTMENTS),
        }
        for k in list(cell):
            if k not in ("id", "email") and rng.random() < 0.12:
                cell[k] = ""
        rows.append([cell[h] for h in header])
        lead_info[lid] = {"account": acct, "created": created, "email": cell["email"]}

    # ---- events
    target = rng.choice([0, rng.randint(1, 300), rng.randint(300, 3000)])
    events: list[dict] = []
    others = [f"U-{rng.randint(1, 999):03d}" for _ in range(rng.randint(0, 6))]
    users = lead_ids + others
    anon_pool = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(
        rng.randint(0, 40))]
    boundaries = [as_of - d * DAY for d in (1, 3, 7, 14, 30, 60, 90)] + [as_of, as_of - 12 * HOUR,
                                                                         as_of - 36 * HOUR]

    def when() -> int:
        r = rng.random()
        if r < 0.05:
            return rng.choice(boundaries)
        if r < 0.08:
            return as_of + rng.randint(1, 5 * DAY)  # after as_of
        if r < 0.5:
            return as_of - rng.randint(0, 30 * DAY)
        return start + rng.randint(0, 180 * DAY)

    def context(ua: str | None = None, email: str | None = None) -> dict:
        ctx = {"library": {"name": "analytics.js", "version": "next-1.64.0"},
               "userAgent": ua or rng.choice(UAS), "locale": "en-US"}
        if email:
            ctx["traits"] = {"email": email}
        return ctx

    def base(typ: str, t: int) -> dict:
        return {"type": typ, "messageId": ids.message_id(), "timestamp": t}

    def page(t: int) -> dict:
        path = rng.choice(PATHS)
        m = base("page", t)
        m["name"] = path.strip("/").split("/")[0].title() or "Home"
        m["properties"] = {"path": path, "url": "https://www.relecloud.com" + path,
                           "title": m["name"] + " | Relecloud",
                           "referrer": rng.choice(["https://www.google.com/", "https://www.linkedin.com/",
                                                   "", None])}
        return m

    def track(t: int) -> dict:
        m = base("track", t)
        name = rng.choice(TRACKS)
        m["event"] = name
        props: dict = {}
        if name == "Form Submitted":
            props["form"] = rng.choice(FORMS)
        if name.startswith("Email"):
            props["campaign_type"] = rng.choice(["marketing", "marketing", "transactional"])
        if rng.random() < 0.5:
            props["value"] = rng.choice([1, 5, 10, 10.5, 20, 50, 99, 120, 1.5])
        m["properties"] = props
        return m

    def identify(t: int, uid: str) -> dict:
        m = base("identify", t)
        m["userId"] = uid
        traits: dict = {}
        for k, gen in (("title", lambda: rng.choice(TITLES)),
                       ("employees", lambda: rng.choice([20, 250, 600, 1200.0, 75.5, "51-200"])),
                       ("country", lambda: rng.choice(COUNTRIES)),
                       ("department", lambda: rng.choice(DEPARTMENTS)),
                       ("industry", lambda: rng.choice(INDUSTRIES)),
                       ("first_name", lambda: rng.choice(FIRST)),
                       ("account", lambda: rng.choice(accounts)),
                       ("created_at", lambda: rfc3339(start + rng.randint(0, 100 * DAY)))):
            r = rng.random()
            if r < 0.25:
                traits[k] = gen()
            elif r < 0.30:
                traits[k] = None  # removes the trait
        m["traits"] = traits
        return m

    def group(t: int, uid: str, gid: str) -> dict:
        m = base("group", t)
        m["userId"] = uid
        m["groupId"] = gid
        tr = {"name": gid.split(".")[0].title()}
        if rng.random() < 0.7:
            tr["industry"] = rng.choice(INDUSTRIES)
        if rng.random() < 0.7:
            tr["employees"] = rng.choice([40, 150, 300, 800, 2500])
        if rng.random() < 0.1:
            tr["industry"] = None
        m["traits"] = tr
        return m

    while len(events) < target:
        r = rng.random()
        t = when()
        uid = rng.choice(users)
        if r < 0.40:
            m = page(t)
        elif r < 0.75:
            m = track(t)
        elif r < 0.82:
            m = identify(t, uid)
        elif r < 0.87:
            m = group(t, uid, lead_info[uid]["account"] if uid in lead_info and rng.random() < 0.8
                      else rng.choice(accounts))
        elif r < 0.95 and anon_pool:
            # an anonymous visit: page or track with only an anonymousId
            r2 = rng.random()
            if r2 < 0.05:
                m = identify(t, "")  # anonymous traits: the lead's once the id is linked
                del m["userId"]
            else:
                m = page(t) if r2 < 0.7 else track(t)
            m["anonymousId"] = rng.choice(anon_pool)
            m["context"] = context()
            events.append(m)
            continue
        elif anon_pool:
            # a link: identify with both ids, or alias
            anon = rng.choice(anon_pool)
            if rng.random() < 0.6:
                m = identify(t, uid)
                m["anonymousId"] = anon
            else:
                m = base("alias", t)
                m["userId"] = uid
                m["previousId"] = anon
            if rng.random() < 0.1 and events:
                # two links at the same instant: the smaller userId wins
                m["timestamp"] = events[-1]["timestamp"]
            m["context"] = context()
            events.append(m)
            continue
        else:
            m = page(t)
        if m["type"] not in ("identify", "group"):
            m["userId"] = uid
            if rng.random() < 0.2 and anon_pool:
                m["anonymousId"] = rng.choice(anon_pool)  # both ids: belongs to the user
        ua = rng.choice(BOT_UAS) if rng.random() < 0.05 else None
        email = lead_info[uid]["email"] if uid in lead_info and rng.random() < 0.3 else None
        m["context"] = context(ua, email)
        events.append(m)
    # bursts: a few leads very active on a few recent days (per_day, limit, count rules bite)
    budget = 3000 - len(events) - 200
    if events:
        for lid in rng.sample(users, rng.randint(0, max(1, len(users) // 4))):
            kind = rng.random()
            for _ in range(rng.randint(1, 5)):
                day0 = (as_of - rng.randint(0, 20) * DAY) // DAY * DAY
                for _ in range(rng.randint(3, 12)):
                    if budget <= 0:
                        break
                    budget -= 1
                    t = day0 + rng.randint(0, DAY - 1)
                    m = page(t) if kind < 0.5 else track(t)
                    if kind < 0.3:
                        m["properties"]["path"] = rng.choice(["/pricing", "/pricing/enterprise", "/product"])
                    elif kind >= 0.5 and kind < 0.8:
                        m["event"] = rng.choice(["Logged In", "Report Created", "Email Opened"])
                        m["properties"]["campaign_type"] = "marketing"
                    m["userId"] = lid
                    m["context"] = context()
                    events.append(m)
    # competing links: the same anonymous id linked to another user at the same instant
    links = [m for m in events if m["type"] in ("identify", "alias") and "userId" in m
             and ("anonymousId" in m or "previousId" in m)]
    for m in rng.sample(links, min(len(links), rng.randint(0, 3))):
        d = json.loads(json.dumps(m))
        d["userId"] = rng.choice(users)
        d["messageId"] = ids.message_id()
        events.append(d)
    # bots with only an anonymousId, and with a user id nobody else has
    if events and rng.random() < 0.5:
        for _ in range(rng.randint(1, 10)):
            m = page(when())
            if rng.random() < 0.5:
                m["anonymousId"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            else:
                m["userId"] = rng.choice(users)
            m["context"] = context(rng.choice(BOT_UAS))
            events.append(m)
    # duplicates: exact resends, resends with a later timestamp, a messageId shared by two users
    dups = []
    for m in events:
        r = rng.random()
        if r < 0.03:
            dups.append(dict(m))
        elif r < 0.04:
            d = json.loads(json.dumps(m))
            d["timestamp"] = m["timestamp"] + rng.randint(1, 3 * DAY)
            dups.append(d)
        elif r < 0.045 and "userId" in m:
            d = json.loads(json.dumps(m))
            d["userId"] = rng.choice(users)
            dups.append(d)
    events.extend(dups)
    rng.shuffle(events)

    # timestamps: mostly `timestamp`, some offsets, some from originalTimestamp/sentAt/receivedAt
    lines = []
    for m in events:
        t = m.pop("timestamp")
        r = rng.random()
        if r < 0.80:
            m["timestamp"] = rfc3339(t)
        elif r < 0.85:
            m["timestamp"] = rfc3339(t, offset_min=rng.choice([120, -300, 330]))
        elif r < 0.87:
            m["timestamp"] = rfc3339(t, frac=False) if t % 1000 == 0 else rfc3339(t)
        elif r < 0.93:
            skew = rng.randint(-120000, 120000)
            sent = t - rng.randint(0, 60000) + skew
            m["originalTimestamp"] = rfc3339(t + skew)
            m["sentAt"] = rfc3339(sent)
            m["receivedAt"] = rfc3339(sent - skew)
        elif r < 0.96:
            m["originalTimestamp"] = rfc3339(t)
        elif r < 0.98:
            m["receivedAt"] = rfc3339(t)
        else:
            m["timestamp"] = rfc3339(t)
            m["originalTimestamp"] = rfc3339(t - rng.randint(1, 10 * DAY))
        lines.append(json.dumps(m, separators=(",", ":") if rng.random() < 0.5 else (", ", ": ")))

    # ---- outcomes
    outcomes = []
    for lid in rng.sample(lead_ids, rng.randint(0, len(lead_ids) // 4)) + others[:1]:
        ts = rng.sample(range(-120, 10), rng.randint(1, 2))
        for d in ts:
            outcomes.append((lid, rng.choice(["converted", "won", "lost", "disqualified"]),
                             rfc3339(as_of + d * DAY + rng.randint(0, DAY - 1000) // 1000 * 1000,
                                     frac=False)))
    rng.shuffle(outcomes)

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model.toml"), "w", encoding="utf-8") as f:
        f.write(model)
    with open(os.path.join(out, "leads.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    with open(os.path.join(out, "events.jsonl"), "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    with open(os.path.join(out, "outcomes.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["lead_id", "outcome", "at"])
        w.writerows(outcomes)
    with open(os.path.join(out, "as_of"), "w", encoding="utf-8") as f:
        f.write(rfc3339(as_of, frac=False) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description="Write a random scoring case.")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    gen_case(a.seed, a.out)


if __name__ == "__main__":
    main()
