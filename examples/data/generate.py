#!/usr/bin/env python3
"""Generate the Leadscore example dataset in this directory.

    python3 examples/data/generate.py

writes leads.csv, events.jsonl and outcomes.csv beside this script. The output is deterministic
(a fixed random seed, no clock, no third-party packages): running it again gives byte-identical
files, so the files are committed and tests may rely on them.

The story (see README.md): Relecloud, a fictional B2B revenue-analytics SaaS, tracks its website,
e-mail, webinars and product trial with Segment from 2024-03-02 to 2024-06-30. Forty leads from
fictional companies (Microsoft's documentation names: Contoso, Fabrikam, Litware, ...) plus one
lead known only from events. The data follows the tracking plan of examples/models/b2b-default.toml
and the event names of m3.toml; each lead has a scripted persona below, with random noise on top.
"""

import csv
import datetime as dt
import json
import os
import random
import uuid

SEED = 20240701
START = dt.datetime(2024, 3, 2, tzinfo=dt.timezone.utc)
END = dt.datetime(2024, 6, 30, 23, 59, 59, tzinfo=dt.timezone.utc)
SITE = "https://www.relecloud.com"
HERE = os.path.dirname(os.path.abspath(__file__))

rng = random.Random(SEED)

# ------------------------------------------------------------------------------------------------
# The site
# ------------------------------------------------------------------------------------------------

PAGES = {
    "/": "Relecloud | Revenue analytics for B2B teams",
    "/product": "Product tour | Relecloud",
    "/product/lead-scoring": "Lead scoring | Relecloud",
    "/product/dashboards": "Dashboards | Relecloud",
    "/integrations": "Integrations | Relecloud",
    "/integrations/salesforce": "Salesforce integration | Relecloud",
    "/integrations/hubspot": "HubSpot integration | Relecloud",
    "/pricing": "Pricing | Relecloud",
    "/customers": "Customer stories | Relecloud",
    "/customers/northwind-traders": "How Northwind Traders doubled SQLs | Relecloud",
    "/security": "Security and compliance | Relecloud",
    "/blog/lead-scoring-basics": "Lead scoring basics: fit and engagement | Relecloud blog",
    "/blog/mql-vs-sql": "MQL vs SQL: where to draw the line | Relecloud blog",
    "/blog/negative-scoring": "Negative scoring: the points you forget to take away | Relecloud blog",
    "/blog/closed-loop-reporting": "Closed-loop reporting in 5 steps | Relecloud blog",
    "/blog/b2b-buyer-journey": "The B2B buyer journey in 2024 | Relecloud blog",
    "/resources/lead-scoring-ebook": "E-book: The lead scoring playbook | Relecloud",
    "/resources/state-of-revops-2024": "Report: State of RevOps 2024 | Relecloud",
    "/resources/security-whitepaper": "Whitepaper: Relecloud security architecture | Relecloud",
    "/resources/case-study-northwind": "Case study: Northwind Traders | Relecloud",
    "/webinars": "Webinars | Relecloud",
    "/demo": "Book a demo | Relecloud",
    "/free-consultation": "Free lead scoring consultation | Relecloud",
    "/free-assessment": "Free funnel assessment | Relecloud",
    "/newsletter": "Newsletter | Relecloud",
    "/about": "About us | Relecloud",
    "/careers": "Careers | Relecloud",
    "/careers/data-analyst": "Data Analyst (Berlin or remote) | Relecloud careers",
    "/careers/account-executive": "Account Executive, EMEA | Relecloud careers",
    "/docs/getting-started": "Getting started | Relecloud docs",
}
BLOG = [p for p in PAGES if p.startswith("/blog/")]
EVAL = ["/product", "/product/lead-scoring", "/product/dashboards", "/integrations",
        "/integrations/salesforce", "/integrations/hubspot", "/customers",
        "/customers/northwind-traders", "/security"]
ASSETS = {
    "lead-scoring-ebook": ("The lead scoring playbook", "ebook"),
    "state-of-revops-2024": ("State of RevOps 2024", "report"),
    "security-whitepaper": ("Relecloud security architecture", "whitepaper"),
    "case-study-northwind": ("Northwind Traders case study", "case-study"),
}
WEBINARS = {
    "lead-scoring-101": (dt.date(2024, 3, 21), "Lead scoring 101"),
    "mql-to-sql": (dt.date(2024, 4, 25), "From MQL to SQL: aligning sales and marketing"),
    "predictive-scoring": (dt.date(2024, 5, 30), "Predictive scoring in practice"),
    "closed-loop": (dt.date(2024, 6, 27), "Closed-loop reporting that sales trusts"),
}
# Marketing e-mails go out every Tuesday.
CAMPAIGNS = []
_d = dt.date(2024, 3, 5)
_subjects = ["5 signs your MQLs are not ready", "The lead scoring playbook is here",
             "Webinar: Lead scoring 101", "What 73% of B2B leads have in common",
             "March product update", "Negative scoring, explained",
             "Webinar: From MQL to SQL", "State of RevOps 2024: the numbers",
             "April product update", "How Northwind Traders doubled SQLs",
             "Closed-loop reporting in 5 steps", "Webinar: Predictive scoring in practice",
             "May product update", "Your funnel, audited for free",
             "The B2B buyer journey in 2024", "Webinar: Closed-loop reporting",
             "June product update"]
for _i, _subject in enumerate(_subjects):
    CAMPAIGNS.append({"date": _d, "id": f"cmp-2024-{_i + 1:02d}", "subject": _subject})
    _d += dt.timedelta(days=7)

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
]
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
MAIL_CLIENTS = {
    "gmail": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "outlook": "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17531; Pro)",
    "apple": "Mozilla/5.0",  # Apple Mail Privacy Protection: opens everything, says nothing
}
BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
]
LINK_SCANNER = "Mozilla/5.0 (compatible; LinkScanBot/1.0; e-mail security link checker)"
LIB_BROWSER = {"name": "analytics.js", "version": "next-1.84.3"}
LIB_SERVER = {"name": "@segment/analytics-node", "version": "3.1.0"}
LIB_ESP = {"name": "analytics-python", "version": "2.4.0"}
UA_SERVER = "analytics-python/2.4.0"

# ------------------------------------------------------------------------------------------------
# The leads (the CRM export). created_at is when the lead first gave us their e-mail.
# ------------------------------------------------------------------------------------------------

COMPANIES = {
    "contoso.com": ("Contoso Ltd", "Software", 1800, "US"),
    "fabrikam.de": ("Fabrikam GmbH", "Manufacturing", 650, "DE"),
    "northwindtraders.se": ("Northwind Traders AB", "E-commerce", 320, "SE"),
    "woodgrovebank.com": ("Woodgrove Bank", "Financial Services", 5200, "GB"),
    "litwareinc.com": ("Litware, Inc.", "Software", 240, "CA"),
    "tailspintoys.com": ("Tailspin Toys", "Retail", 140, "IT"),
    "proseware.com": ("Proseware, Inc.", "Software", 85, "NL"),
    "alpineskihouse.com": ("Alpine Ski House", "Travel & Hospitality", 410, "CA"),
    "relecloud.com": ("Relecloud", "Software", 120, "US"),
    "adventure-works.com": ("Adventure Works Cycles", "Manufacturing", 950, "US"),
    "margiestravel.com": ("Margie's Travel", "Travel & Hospitality", 60, "ES"),
    "lucernepublishing.com": ("Lucerne Publishing", "Media", 220, "DE"),
    "wideworldimporters.com": ("Wide World Importers", "Logistics", 2300, "GB"),
    "treyresearch.net": ("Trey Research", "Consulting", 35, "NL"),
    "cohowinery.com": ("Coho Winery", "Food & Beverage", 12, "AU"),
    "humongousinsurance.com": ("Humongous Insurance", "Insurance", 3400, "US"),
    "consolidatedmessenger.com": ("Consolidated Messenger", "Logistics", 780, "FR"),
    "blueyonderairlines.com": ("Blue Yonder Airlines", "Airlines", 12000, "US"),
    "fourthcoffee.com": ("Fourth Coffee", "Food & Beverage", 180, "PT"),
    "wingtiptoys.com": ("Wingtip Toys", "Retail", 520, "GB"),
    "bestforyouorganics.com": ("Best For You Organics Company", "Retail", 50, "US"),
    "southridgevideo.com": ("Southridge Video", "Media", 75, "GH"),
    "firstupconsultants.com": ("First Up Consultants", "Professional Services", 420, "BR"),
    "graphicdesigninstitute.com": ("Graphic Design Institute", "Design", 45, "TR"),
}

# id, first, last, email, title, department, employees, industry, country, created (date, hh:mm)
# Empty strings are missing cells (the lead did not say, or the form did not ask).
LEADS = [
    ("L-1001", "Priya", "Raman", "priya.raman@contoso.com", "VP Marketing", "Marketing", 1800, "Software", "US", "03-04 14:12"),
    ("L-1002", "Daniel", "Weber", "daniel.weber@fabrikam.de", "Head of Revenue Operations", "Revenue Operations", 650, "Manufacturing", "DE", "03-11 08:41"),
    ("L-1003", "Sofia", "Lindqvist", "sofia.lindqvist@northwindtraders.se", "Marketing Director", "Marketing", 320, "E-commerce", "SE", "03-06 09:05"),
    ("L-1004", "Tom", "Okafor", "tom.okafor@woodgrovebank.com", "Chief Information Officer", "IT", 5200, "Financial Services", "GB", "04-02 10:30"),
    ("L-1005", "Li", "Wei", "li.wei@litwareinc.com", "Director of IT", "IT", 240, "Software", "CA", "03-19 16:02"),
    ("L-1006", "Jake", "Miller", "jake.miller84@gmail.com", "Freelance Marketing Consultant", "Marketing", 1, "Professional Services", "US", "03-22 19:47"),
    ("L-1007", "Mei", "Ng", "mei.ng@student.adatum.edu", "Student", "", "", "Education", "SG", "03-08 03:15"),
    ("L-1008", "Chloé", "Martin", "chloe.martin.mba@outlook.com", "MBA Student", "", "", "Education", "FR", "04-10 17:20"),
    ("L-1009", "Ryan", "Patel", "ryan.patel.jobs@gmail.com", "Data Analyst | Open to work", "", "", "", "US", "04-03 15:33"),
    ("L-1010", "Marco", "Rossi", "marco.rossi@tailspintoys.com", "Head of Growth", "Marketing", 140, "Retail", "IT", "03-03 10:10"),
    ("L-1011", "Julia", "Novak", "julia.novak@proseware.com", "Marketing Manager", "Marketing", 85, "Software", "NL", "03-14 12:25"),
    ("L-1012", "Kenji", "Tanaka", "kenji.tanaka@alpineskihouse.com", "Director of Sales Operations", "Sales", 410, "Travel & Hospitality", "CA", "05-21 15:48"),
    ("L-1013", "Sam", "Reyes", "sam.qa@relecloud.com", "Sales Engineer", "Sales", 120, "Software", "US", "03-18 13:00"),
    ("L-1014", "Grace", "Kim", "grace.kim@adventure-works.com", "Chief Marketing Officer", "Marketing", 950, "Manufacturing", "US", "04-15 18:05"),
    ("L-1015", "Omar", "Haddad", "omar.haddad@adventure-works.com", "Marketing Operations Manager", "Marketing", 950, "Manufacturing", "US", "04-29 14:40"),
    ("L-1016", "Lucas", "Fernández", "lucas.fernandez@margiestravel.com", "Digital Marketing Specialist", "Marketing", 60, "Travel & Hospitality", "ES", "03-27 09:55"),
    ("L-1017", "Hannah", "Becker", "hannah.becker@lucernepublishing.com", "Head of Demand Generation", "Marketing", 220, "Media", "DE", "04-08 07:45"),
    ("L-1018", "Aisha", "Bello", "aisha.bello@wideworldimporters.com", "Supply Chain Analyst", "Operations", 2300, "Logistics", "GB", "03-29 11:11"),
    ("L-1019", "Peter", "Jansen", "peter@treyresearch.net", "CEO", "Management", 35, "Consulting", "NL", "04-12 08:20"),
    ("L-1020", "Olivia", "Brown", "olivia@cohowinery.com", "Owner", "Management", 12, "Food & Beverage", "AU", "05-06 23:30"),
    ("L-1021", "Nina", "Petrova", "nina.petrova@humongousinsurance.com", "Director, Marketing Analytics", "Marketing", 3400, "Insurance", "US", "04-22 16:16"),
    ("L-1022", "Ben", "Carter", "ben.carter@humongousinsurance.com", "IT Security Manager", "IT", 3400, "Insurance", "US", "05-13 15:05"),
    ("L-1023", "Fatima", "El Idrissi", "fatima.elidrissi@consolidatedmessenger.com", "VP of Sales", "Sales", 780, "Logistics", "FR", "03-12 10:02"),
    ("L-1024", "George", "White", "george.white@blueyonderairlines.com", "Procurement Specialist", "Procurement", 12000, "Airlines", "US", "04-05 14:50"),
    ("L-1025", "Yuki", "Sato", "yuki.sato.mktg@gmail.com", "Marketing Coordinator", "Marketing", "", "", "JP", "05-02 01:12"),
    ("L-1026", "Carlos", "Mendes", "carlos.mendes@fourthcoffee.com", "Marketing Manager", "Marketing", 180, "Food & Beverage", "PT", "03-07 11:38"),
    ("L-1027", "Emily", "Clarke", "emily.clarke@wingtiptoys.com", "Director of Finance", "Finance", 520, "Retail", "GB", "04-18 09:09"),
    ("L-1028", "Sven", "Olsen", "sven.olsen@fabrikam.de", "IT Project Manager", "IT", 650, "Manufacturing", "DE", "05-08 12:44"),
    ("L-1029", "Laura", "Gómez", "laura.gomez.admin@yahoo.com", "Administrative Assistant", "Administration", 40, "", "MX", "04-24 18:27"),
    ("L-1030", "Arjun", "Mehta", "arjun.mehta@contoso.com", "Data Engineer", "Engineering", 1800, "Software", "US", "05-10 17:03"),
    ("L-1031", "Isabelle", "Dubois", "isabelle.dubois@alpineskihouse.com", "Executive Assistant to the CEO", "Administration", 410, "Travel & Hospitality", "CA", "05-28 13:31"),
    ("L-1032", "Michael", "Chen", "michael.chen@litwareinc.com", "CTO", "Engineering", 240, "Software", "CA", "06-14 20:15"),
    ("L-1033", "Zoe", "Taylor", "zoe.t@proton.me", "", "", "", "", "GB", "06-03 08:08"),
    ("L-1034", "Ahmed", "Hassan", "ahmed.hassan@woodgrovebank.com", "Finance Manager", "Finance", 5200, "Financial Services", "AE", "05-20 06:50"),
    ("L-1035", "Katarzyna", "Nowak", "katarzyna.nowak@proseware.com", "Project Manager", "IT", 85, "Software", "PL", "04-16 10:21"),
    ("L-1036", "David", "Levi", "david.levi@tailspintoys.com", "Marketing Analyst", "Marketing", 140, "Retail", "IL", "03-21 14:00"),
    ("L-1037", "Sarah", "Johnson", "sarah.johnson@bestforyouorganics.com", "Head of Marketing", "Marketing", 50, "Retail", "US", "05-15 15:35"),
    ("L-1038", "Felix", "Wagner", "felix.wagner@fabrikam.de", "Marketing Intern", "Marketing", 650, "Manufacturing", "DE", "06-05 09:40"),
    ("L-1039", "Rebecca", "Owusu", "rebecca.owusu@southridgevideo.com", "Content Marketing Manager", "Marketing", 75, "Media", "GH", "04-26 12:12"),
    ("L-1040", "Mateo", "Silva", "mateo.silva@firstupconsultants.com", "Senior Consultant", "Consulting", 420, "Professional Services", "BR", "03-15 13:58"),
]
# Known only from events (a trial sign-up the CRM has not synced yet): not in leads.csv.
EVENTS_ONLY = [
    ("L-1041", "Deniz", "Yılmaz", "deniz.yilmaz@graphicdesigninstitute.com", "Creative Director", "Design", 45, "Design", "TR", "06-26 10:05"),
]

OUTCOMES = [
    ("L-1013", "disqualified", "03-20 09:00"),  # internal test lead
    ("L-1007", "disqualified", "04-22 10:30"),  # student
    ("L-1009", "disqualified", "05-02 11:15"),  # job seeker
    ("L-1003", "converted", "05-10 16:00"),     # trial -> paid
    ("L-1019", "lost", "05-24 14:00"),          # 35 people, no budget
    ("L-1001", "won", "05-29 17:30"),
    ("L-1015", "converted", "06-05 12:00"),     # trial -> paid
    ("L-1010", "lost", "06-10 09:45"),          # went cold
    ("L-1023", "won", "06-12 15:20"),
    ("L-1004", "won", "06-18 11:00"),
    ("L-1027", "won", "06-20 16:40"),
    ("L-1024", "lost", "06-21 13:10"),          # procurement chose a competitor
    ("L-1012", "won", "06-27 18:05"),
]


def at(md, hm=None):
    """2024-MM-DD at HH:MM (UTC); a random business-hours time when hm is None."""
    month, day = (int(x) for x in md.split("-"))
    if hm is None:
        hour, minute = rng.randint(7, 18), rng.randint(0, 59)
    else:
        hour, minute = (int(x) for x in hm.split(":"))
    return dt.datetime(2024, month, day, hour, minute, rng.randint(0, 59),
                       rng.randint(0, 999) * 1000, tzinfo=dt.timezone.utc)


def fmt(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def new_id():
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class Lead:
    def __init__(self, row):
        (self.id, self.first, self.last, self.email, self.title, self.department, self.employees,
         self.industry, self.country, created) = row
        self.created = at(*created.split(" "))
        self.anon = new_id()
        self.ua = rng.choice(BROWSERS)
        self.mail = rng.choice(["gmail", "outlook", "outlook", "apple"])
        self.identified = False
        self.unsubscribed = None
        self.domain = self.email.split("@")[1]
        self.company = COMPANIES.get(self.domain)

    def traits(self):
        t = {"email": self.email, "first_name": self.first, "last_name": self.last}
        for key in ("title", "department", "employees", "industry", "country"):
            value = getattr(self, key)
            if value != "":
                t[key] = value
        if self.company:
            t["company"] = self.company[0]
        return t


MESSAGES = []     # (time, order, message)
DUPLICATES = []   # messages delivered twice (an SDK retried a batch)


def emit(t, msg, duplicate=False):
    assert START <= t <= END, (t, msg)
    msg = {"type": msg.pop("type"), "messageId": new_id(), "timestamp": fmt(t), **msg}
    MESSAGES.append((t, len(MESSAGES), msg))
    if duplicate:
        DUPLICATES.append(msg)
    return msg


def browser_context(lead, path=None, ua=None, anonymous=False):
    ctx = {"library": LIB_BROWSER, "userAgent": ua or lead.ua}
    if path is not None:
        ctx["page"] = {"path": path, "url": SITE + path, "title": PAGES[path]}
    if not anonymous and lead.identified:
        # The site's SDK keeps the identified user's e-mail in context.traits on every call.
        ctx["traits"] = {"email": lead.email}
    return ctx


def ids(lead, anonymous=False, anon=None):
    out = {}
    if lead.identified and not anonymous:
        out["userId"] = lead.id
    out["anonymousId"] = anon or lead.anon
    return out


def page(lead, t, path, referrer="", ua=None, anon=None, duplicate=False):
    anonymous = anon is not None or not lead.identified
    return emit(t, {"type": "page", **ids(lead, anonymous, anon), "name": PAGES[path],
                    "properties": {"path": path, "url": SITE + path, "title": PAGES[path],
                                   "referrer": referrer},
                    "context": browser_context(lead, path, ua, anonymous)}, duplicate)


def session(lead, md, paths, hm=None, referrer="https://www.google.com/", ua=None, anon=None,
            duplicate_at=None):
    """A visit: page views a few seconds to minutes apart. Returns the time after the last view."""
    t = at(md, hm)
    if anon is None and lead.identified and t < lead.created:
        t = lead.created + dt.timedelta(minutes=rng.randint(5, 90))  # not before they were known
    for i, path in enumerate(paths):
        page(lead, t, path, referrer if i == 0 else SITE + paths[i - 1], ua, anon,
             duplicate=(duplicate_at == i))
        t += dt.timedelta(seconds=rng.randint(20, 300))
    return t


def track(lead, t, event, properties, source="browser", ua=None, duplicate=False):
    if source == "browser":
        ctx = browser_context(lead)
        msg = {"type": "track", **ids(lead), "event": event, "properties": properties,
               "context": ctx}
    else:
        lib, agent = {"server": (LIB_SERVER, lead.ua), "esp": (LIB_ESP, ua or UA_SERVER)}[source]
        msg = {"type": "track", "userId": lead.id, "event": event, "properties": properties,
               "context": {"library": lib, "userAgent": agent}}
    return emit(t, msg, duplicate)


def identify(lead, t, traits=None, anon=True):
    """The lead gives their e-mail (a form): identify links the browser's anonymousId to userId."""
    lead.identified = True
    msg = {"type": "identify", "userId": lead.id}
    if anon:
        msg["anonymousId"] = lead.anon
    msg["traits"] = traits if traits is not None else lead.traits()
    msg["context"] = browser_context(lead)
    emit(t, msg)
    if traits is None and lead.company:
        name, industry, employees, country = lead.company
        emit(t + dt.timedelta(seconds=1),
             {"type": "group", "userId": lead.id, "anonymousId": lead.anon,
              "groupId": lead.domain,
              "traits": {"name": name, "website": "https://" + lead.domain,
                         "industry": industry, "employees": employees, "country": country},
              "context": browser_context(lead)})


def form(lead, t, form_id, duplicate=False):
    path = {"demo-request": "/demo", "contact-sales": "/demo",
            "free-consultation": "/free-consultation", "free-assessment": "/free-assessment",
            "newsletter": "/newsletter", "job-application": "/careers/data-analyst"}.get(form_id)
    return track(lead, t, "Form Submitted", {"form": form_id, "path": path}, duplicate=duplicate)


def signup_by_form(lead, form_id, page_before):
    """First contact: the lead lands on a page, fills a form and becomes known."""
    t = lead.created - dt.timedelta(seconds=rng.randint(60, 400))
    page(lead, t, page_before, "https://www.linkedin.com/")
    identify(lead, lead.created)
    form(lead, lead.created + dt.timedelta(seconds=2), form_id)


def download(lead, md, asset, hm=None, first=False):
    path = "/resources/" + asset
    if first:
        t = lead.created - dt.timedelta(seconds=rng.randint(60, 400))
        page(lead, t, path, "https://www.linkedin.com/")
        identify(lead, lead.created)
        t = lead.created + dt.timedelta(seconds=2)
    else:
        t = session(lead, md, [path], hm)
    title, kind = ASSETS[asset]
    track(lead, t, "Content Downloaded", {"asset": asset, "title": title, "asset_type": kind})


def newsletter(lead, md=None, hm=None, first=False):
    if first:
        t = lead.created - dt.timedelta(seconds=rng.randint(30, 200))
        page(lead, t, "/newsletter", "https://www.google.com/")
        identify(lead, lead.created)
        t = lead.created + dt.timedelta(seconds=2)
    else:
        t = session(lead, md, ["/newsletter"], hm)
    track(lead, t, "Newsletter Subscribed", {"list": "monthly-newsletter"})


def webinar(lead, key, attend=True, registered_md=None, first=False):
    day, title = WEBINARS[key]
    if first:
        page(lead, lead.created - dt.timedelta(seconds=90), "/webinars", "https://www.linkedin.com/")
        identify(lead, lead.created)
        t = lead.created + dt.timedelta(seconds=2)
    else:
        md = registered_md or (day - dt.timedelta(days=rng.randint(2, 9))).strftime("%m-%d")
        t = session(lead, md, ["/webinars"])
    track(lead, t, "Webinar Registered", {"webinar": key, "title": title})
    if attend:
        t = dt.datetime(day.year, day.month, day.day, 15, 0, tzinfo=dt.timezone.utc)
        t += dt.timedelta(minutes=rng.randint(55, 70))
        track(lead, t, "Webinar Attended", {"webinar": key, "title": title,
                                            "minutes_watched": rng.randint(25, 58)}, source="esp")


def product_days(lead, start, end, share):
    """Trial usage: a login on `share` of the working days in [start, end], often with a report."""
    day = start
    while day <= end:
        if rng.random() < share and day.weekday() < 5:
            t = dt.datetime(day.year, day.month, day.day, rng.randint(7, 18), rng.randint(0, 59),
                            rng.randint(0, 59), tzinfo=dt.timezone.utc)
            track(lead, t, "Logged In", {"method": "password"}, source="server")
            if rng.random() < 0.5:
                track(lead, t + dt.timedelta(minutes=rng.randint(3, 40)), "Report Created",
                      {"report_type": rng.choice(["funnel", "lead-scores", "attribution"])},
                      source="server")
        day += dt.timedelta(days=1)


def trial(lead, md, first=False, hm=None):
    if first:
        page(lead, lead.created - dt.timedelta(seconds=200), "/pricing", "https://www.google.com/")
        identify(lead, lead.created)
        t = lead.created + dt.timedelta(seconds=5)
    else:
        t = session(lead, md, ["/pricing"], hm)
    track(lead, t, "Signed Up", {"plan": "trial", "trial_days": 14})
    transactional(lead, t.date(), [(0, "Welcome to your Relecloud trial"),
                                   (2, "Connect your CRM in 2 minutes"),
                                   (11, "Your trial ends in 3 days")])
    return t


def transactional(lead, day, mails):
    for offset, subject in mails:
        d = day + dt.timedelta(days=offset)
        t = dt.datetime(d.year, d.month, d.day, rng.randint(8, 20), rng.randint(0, 59),
                        tzinfo=dt.timezone.utc)
        if t <= END and rng.random() < 0.8:
            track(lead, t, "Email Opened", {"email_subject": subject, "campaign_type": "transactional"},
                  source="esp", ua=MAIL_CLIENTS[lead.mail])


def browse(lead, start, end, visits, pool, pages=(1, 3)):
    """Random visits between two dates (inclusive) to pages from `pool`."""
    s = max(dt.date(2024, *map(int, start.split("-"))), lead.created.date() + dt.timedelta(days=1))
    e = dt.date(2024, *map(int, end.split("-")))
    for _ in range(visits):
        d = s + dt.timedelta(days=rng.randint(0, (e - s).days))
        session(lead, d.strftime("%m-%d"), rng.sample(pool, min(len(pool), rng.randint(*pages))))


# ------------------------------------------------------------------------------------------------
# Personas
# ------------------------------------------------------------------------------------------------

L = {row[0]: Lead(row) for row in LEADS + EVENTS_ONLY}
OPEN_RATE = {lead_id: 0.25 for lead_id in L}
CLICK_RATE = {lead_id: 0.12 for lead_id in L}


def story():
    # L-1001 Priya, VP Marketing at Contoso: content -> webinar -> pricing -> demo -> won 05-29.
    p = L["L-1001"]
    download(p, None, "lead-scoring-ebook", first=True)
    session(p, "03-12", ["/blog/mql-vs-sql", "/blog/negative-scoring"])
    webinar(p, "lead-scoring-101")
    session(p, "03-26", ["/product", "/product/lead-scoring"])
    session(p, "04-09", ["/pricing", "/product/dashboards", "/pricing"])
    session(p, "04-16", ["/customers", "/customers/northwind-traders"])
    session(p, "04-23", ["/pricing"])
    session(p, "04-30", ["/integrations", "/integrations/salesforce", "/pricing"])
    t = session(p, "05-06", ["/pricing", "/demo"])
    form(p, t, "demo-request", duplicate=True)  # the SDK retried this batch: delivered twice
    session(p, "05-08", ["/pricing"])
    session(p, "05-14", ["/security"])
    session(p, "05-20", ["/pricing", "/customers"])
    OPEN_RATE[p.id], CLICK_RATE[p.id] = 0.35, 0.2

    # L-1030 Arjun, data engineer at Contoso: the technical evaluation, a trial from 05-10.
    a = L["L-1030"]
    trial(a, None, first=True)
    product_days(a, dt.date(2024, 5, 11), dt.date(2024, 6, 28), 0.55)
    track(a, at("05-13"), "Integration Connected", {"integration": "salesforce"}, source="server")
    browse(a, "05-10", "06-20", 4, ["/docs/getting-started", "/integrations/salesforce", "/security"])

    # L-1002 Daniel, Head of RevOps at Fabrikam: slow spring, then a June buying burst and a demo
    # request on 06-24. Open SQL: the lead to call on 2024-07-01.
    d = L["L-1002"]
    download(d, None, "state-of-revops-2024", first=True)
    browse(d, "03-15", "04-30", 2, BLOG)
    webinar(d, "predictive-scoring")
    session(d, "06-11", ["/pricing", "/product"])
    session(d, "06-13", ["/product/lead-scoring", "/product/dashboards"])
    session(d, "06-18", ["/integrations", "/integrations/hubspot", "/pricing"])
    t = session(d, "06-24", ["/pricing", "/demo"], duplicate_at=0)  # retried batch
    form(d, t, "demo-request")
    session(d, "06-26", ["/customers", "/customers/northwind-traders"])
    session(d, "06-28", ["/pricing", "/security"])
    OPEN_RATE[d.id], CLICK_RATE[d.id] = 0.4, 0.25

    # L-1028 Sven, IT project manager at Fabrikam: security review in June.
    s = L["L-1028"]
    download(s, None, "security-whitepaper", first=True)
    session(s, "06-19", ["/security", "/integrations"])
    session(s, "06-20", ["/integrations/hubspot", "/docs/getting-started"])

    # L-1038 Felix, marketing intern at Fabrikam: reads the blog, looks at jobs.
    f = L["L-1038"]
    download(f, None, "lead-scoring-ebook", first=True)
    browse(f, "06-06", "06-28", 4, BLOG + ["/careers"])

    # L-1003 Sofia, Marketing Director at Northwind Traders: ebook -> webinar -> trial 04-08 ->
    # integration, invites -> converted 05-10.
    s = L["L-1003"]
    download(s, None, "lead-scoring-ebook", first=True)
    session(s, "03-14", ["/blog/lead-scoring-basics"])
    webinar(s, "lead-scoring-101")
    session(s, "04-02", ["/pricing", "/product"])
    trial(s, "04-08")
    product_days(s, dt.date(2024, 4, 9), dt.date(2024, 5, 9), 0.75)
    track(s, at("04-10"), "Integration Connected", {"integration": "shopify"}, source="server")
    for md in ("04-11", "04-11", "04-16"):
        track(s, at(md), "Invite Sent", {"invitee_role": "editor"}, source="server")
    session(s, "04-29", ["/pricing"])
    session(s, "05-06", ["/pricing", "/security"])

    # L-1004 Tom, CIO at Woodgrove Bank: security-led evaluation, contact-sales 04-25, won 06-18.
    # Uses Apple Mail: every marketing e-mail is "opened" by Mail Privacy Protection.
    t_ = L["L-1004"]
    t_.mail = "apple"
    download(t_, None, "security-whitepaper", first=True)
    session(t_, "04-03", ["/security"])
    session(t_, "04-15", ["/security", "/customers"])
    webinar(t_, "mql-to-sql", attend=False, registered_md="04-18")
    t = session(t_, "04-25", ["/pricing", "/demo"])
    form(t_, t, "contact-sales")
    session(t_, "04-26", ["/pricing"])
    session(t_, "05-02", ["/customers/northwind-traders"])
    session(t_, "05-09", ["/integrations", "/integrations/salesforce"])
    session(t_, "05-22", ["/pricing"])
    OPEN_RATE[t_.id], CLICK_RATE[t_.id] = 1.0, 0.0

    # L-1034 Ahmed, finance manager at Woodgrove Bank (Dubai): checks the price, nothing more.
    h = L["L-1034"]
    newsletter(h, first=True)
    for md in ("05-20", "05-27", "06-03"):
        session(h, md, ["/pricing"])

    # L-1005 Li, Director of IT at Litware, promoted to VP of IT on 06-10 (a later identify).
    li = L["L-1005"]
    download(li, None, "lead-scoring-ebook", first=True)
    browse(li, "03-20", "05-31", 4, BLOG + ["/security", "/product"])
    session(li, "04-04", ["/about", "/careers"])  # curious, not a job seeker: one visit
    download(li, "05-16", "security-whitepaper")
    webinar(li, "predictive-scoring")
    li.title = "VP of IT"
    emit(at("06-10"), {"type": "identify", "userId": li.id, "anonymousId": li.anon,
                       "traits": {"title": "VP of IT"}, "context": browser_context(li)})
    session(li, "06-12", ["/pricing"])

    # L-1032 Michael, CTO at Litware: trial 06-14, activated, pricing: an SQL in the making.
    m = L["L-1032"]
    trial(m, None, first=True)
    product_days(m, dt.date(2024, 6, 15), dt.date(2024, 6, 29), 0.8)
    track(m, at("06-17"), "Integration Connected", {"integration": "hubspot"}, source="server")
    track(m, at("06-18"), "Invite Sent", {"invitee_role": "admin"}, source="server")
    session(m, "06-20", ["/pricing", "/security"])
    session(m, "06-27", ["/pricing"])

    # L-1006 Jake, freelancer on Gmail: enthusiastic reader, not a buyer.
    j = L["L-1006"]
    download(j, None, "lead-scoring-ebook", first=True)
    newsletter(j, "03-25")
    browse(j, "03-23", "06-28", 9, BLOG)
    webinar(j, "mql-to-sql")
    session(j, "05-02", ["/pricing"])
    OPEN_RATE[j.id], CLICK_RATE[j.id] = 0.6, 0.3

    # L-1007 Mei, student: downloads everything, attends webinars; disqualified 04-22.
    s = L["L-1007"]
    download(s, None, "lead-scoring-ebook", first=True)
    newsletter(s, "03-08")
    for md, asset in (("03-15", "state-of-revops-2024"), ("04-02", "case-study-northwind"),
                      ("04-19", "security-whitepaper")):
        download(s, md, asset)
    webinar(s, "lead-scoring-101")
    webinar(s, "mql-to-sql")
    webinar(s, "predictive-scoring")
    browse(s, "03-09", "06-25", 12, BLOG, pages=(2, 4))
    OPEN_RATE[s.id], CLICK_RATE[s.id] = 0.7, 0.3

    # L-1008 Chloé, MBA student on Outlook.com.
    c = L["L-1008"]
    download(c, None, "state-of-revops-2024", first=True)
    browse(c, "04-11", "06-20", 4, BLOG)
    webinar(c, "predictive-scoring", attend=False)
    session(c, "05-21", ["/careers"])

    # L-1009 Ryan, job seeker: careers pages, a job application; disqualified 05-02.
    r = L["L-1009"]
    page(r, r.created - dt.timedelta(minutes=6), "/careers", "https://www.linkedin.com/jobs/")
    page(r, r.created - dt.timedelta(minutes=4), "/careers/data-analyst", SITE + "/careers")
    identify(r, r.created)
    form(r, r.created + dt.timedelta(seconds=2), "job-application")
    for md in ("04-08", "04-15", "04-22", "05-06"):
        session(r, md, ["/careers", rng.choice(["/careers/data-analyst", "/careers/account-executive"])])
    session(r, "04-10", ["/about", "/blog/b2b-buyer-journey"])
    OPEN_RATE[r.id] = 0.1

    # L-1010 Marco, Head of Growth at Tailspin Toys: a hot March, then silence after 04-04
    # (only automatic e-mail opens). Went cold; lost 06-10.
    m = L["L-1010"]
    download(m, None, "lead-scoring-ebook", first=True)
    session(m, "03-05", ["/blog/lead-scoring-basics", "/blog/mql-vs-sql"])
    session(m, "03-07", ["/pricing"])
    session(m, "03-12", ["/product", "/product/lead-scoring"])
    session(m, "03-14", ["/pricing", "/customers"])
    webinar(m, "lead-scoring-101")
    session(m, "03-26", ["/pricing", "/integrations"])
    session(m, "03-28", ["/integrations/hubspot"])
    session(m, "04-04", ["/pricing"])
    OPEN_RATE[m.id], CLICK_RATE[m.id] = 0.45, 0.0

    # L-1036 David, analyst at Tailspin Toys.
    d = L["L-1036"]
    webinar(d, "lead-scoring-101", attend=False, first=True)
    browse(d, "03-22", "05-30", 3, BLOG)

    # L-1011 Julia, marketing manager at Proseware: newsletter reader who unsubscribes 05-15.
    j = L["L-1011"]
    newsletter(j, first=True)
    browse(j, "03-15", "05-10", 3, BLOG)
    j.unsubscribed = at("05-15", "08:12")
    track(j, j.unsubscribed, "Unsubscribed", {"list": "monthly-newsletter", "reason": "too many e-mails"},
          source="esp", ua=MAIL_CLIENTS[j.mail])
    OPEN_RATE[j.id] = 0.5

    # L-1035 Katarzyna, project manager at Proseware.
    k = L["L-1035"]
    download(k, None, "case-study-northwind", first=True)
    browse(k, "04-17", "06-25", 4, EVAL)

    # L-1012 Kenji, Director of Sales Ops at Alpine Ski House: six anonymous visits from 04-15,
    # then a demo request on 05-21 that identifies him (the earlier visits are stitched to him).
    # Won 06-27.
    k = L["L-1012"]
    for md, paths in (("04-15", ["/", "/product"]), ("04-22", ["/pricing"]),
                      ("04-30", ["/customers", "/customers/northwind-traders"]),
                      ("05-08", ["/integrations/salesforce", "/pricing"]),
                      ("05-14", ["/security"]), ("05-20", ["/pricing", "/product/lead-scoring"])):
        session(k, md, paths)
    page(k, k.created - dt.timedelta(minutes=3), "/pricing", "https://www.google.com/")
    page(k, k.created - dt.timedelta(minutes=1), "/demo", SITE + "/pricing")
    identify(k, k.created)
    form(k, k.created + dt.timedelta(seconds=3), "demo-request")
    session(k, "05-23", ["/pricing"])
    session(k, "05-28", ["/security", "/integrations"])
    session(k, "06-04", ["/customers"])
    session(k, "06-11", ["/pricing"])
    session(k, "06-18", ["/integrations/salesforce"])
    OPEN_RATE[k.id], CLICK_RATE[k.id] = 0.5, 0.2

    # L-1031 Isabelle, executive assistant to Alpine Ski House's CEO: books a free consultation
    # for her boss (an 80-point form under m3, yet not a buyer herself).
    i = L["L-1031"]
    signup_by_form(i, "free-consultation", "/free-consultation")
    session(i, "06-03", ["/about"])

    # L-1013 Sam, Relecloud's own sales engineer, testing the forms: all ignored.
    s = L["L-1013"]
    signup_by_form(s, "demo-request", "/demo")
    for md in ("04-09", "06-12"):
        t = session(s, md, ["/pricing", "/demo"])
        form(s, t, "demo-request")
    OPEN_RATE[s.id] = 0.0

    # L-1014 Grace, CMO at Adventure Works: webinar, pricing; her team runs the trial.
    g = L["L-1014"]
    webinar(g, "mql-to-sql", first=True)
    session(g, "05-20", ["/pricing"])
    session(g, "05-21", ["/customers", "/customers/northwind-traders"])
    OPEN_RATE[g.id] = 0.3

    # L-1015 Omar, marketing ops manager at Adventure Works: trial 05-02, heavy use, integration,
    # three invites -> converted 06-05.
    o = L["L-1015"]
    download(o, None, "lead-scoring-ebook", first=True)
    trial(o, "05-02")
    product_days(o, dt.date(2024, 5, 3), dt.date(2024, 6, 4), 0.85)
    track(o, at("05-03"), "Integration Connected", {"integration": "hubspot"}, source="server")
    for md in ("05-06", "05-06", "05-07"):
        track(o, at(md), "Invite Sent", {"invitee_role": "editor"}, source="server")
    for md in ("05-20", "05-29", "06-03"):
        session(o, md, ["/pricing"])

    # L-1016 Lucas, marketing specialist at Margie's Travel: newsletter only.
    lu = L["L-1016"]
    newsletter(lu, first=True)
    browse(lu, "03-28", "06-15", 2, BLOG)

    # L-1017 Hannah, Head of Demand Gen at Lucerne Publishing: webinars and content, pricing in
    # June: a marketing qualified lead, not asked for a demo yet.
    h = L["L-1017"]
    download(h, None, "lead-scoring-ebook", first=True)
    webinar(h, "mql-to-sql")
    download(h, "05-07", "state-of-revops-2024")
    webinar(h, "predictive-scoring")
    download(h, "06-12", "case-study-northwind")
    session(h, "06-14", ["/pricing", "/product", "/product/lead-scoring"])
    browse(h, "04-09", "06-28", 5, BLOG)
    OPEN_RATE[h.id], CLICK_RATE[h.id] = 0.5, 0.25

    # L-1018 Aisha, supply chain analyst at Wide World Importers: one report, a few visits.
    a = L["L-1018"]
    download(a, None, "state-of-revops-2024", first=True)
    browse(a, "04-01", "05-15", 2, BLOG)

    # L-1019 Peter, CEO of Trey Research (35 people): demo on day one; lost 05-24 (no budget).
    p = L["L-1019"]
    signup_by_form(p, "demo-request", "/pricing")
    session(p, "04-19", ["/pricing", "/customers"])
    session(p, "04-30", ["/pricing"])

    # L-1020 Olivia, owner of Coho Winery (12 people, Australia).
    o = L["L-1020"]
    newsletter(o, first=True)
    browse(o, "05-07", "06-20", 2, BLOG)

    # L-1021 Nina, Director of Marketing Analytics at Humongous Insurance: case study, webinar,
    # pricing three times in June, demo request 06-28. Open SQL.
    n = L["L-1021"]
    download(n, None, "case-study-northwind", first=True)
    webinar(n, "predictive-scoring")
    session(n, "06-05", ["/pricing", "/product/dashboards"])
    session(n, "06-10", ["/customers"])
    session(n, "06-17", ["/pricing", "/security"])
    session(n, "06-25", ["/pricing", "/integrations/salesforce"])
    t = session(n, "06-28", ["/pricing", "/demo"])
    form(n, t, "demo-request")
    OPEN_RATE[n.id], CLICK_RATE[n.id] = 0.4, 0.2

    # L-1022 Ben, IT security manager at Humongous Insurance.
    b = L["L-1022"]
    download(b, None, "security-whitepaper", first=True)
    session(b, "06-17", ["/security"])

    # L-1023 Fatima, VP of Sales at Consolidated Messenger: two anonymous visits on her phone,
    # then the ebook on her laptop; an `alias` joins the phone's anonymous id. Demo 04-17, won 06-12.
    f = L["L-1023"]
    phone = new_id()
    session(f, "03-08", ["/", "/pricing"], ua=IPHONE, anon=phone)
    session(f, "03-10", ["/product", "/customers"], ua=IPHONE, anon=phone)
    download(f, None, "lead-scoring-ebook", first=True)
    emit(f.created + dt.timedelta(seconds=30),
         {"type": "alias", "previousId": phone, "userId": f.id, "anonymousId": phone,
          "context": {"library": LIB_BROWSER, "userAgent": IPHONE}})
    webinar(f, "lead-scoring-101")
    session(f, "04-03", ["/pricing"])
    session(f, "04-10", ["/pricing", "/integrations"])
    t = session(f, "04-17", ["/demo"])
    form(f, t, "demo-request")
    session(f, "04-24", ["/customers/northwind-traders"])
    session(f, "05-08", ["/security"])
    session(f, "05-22", ["/pricing"])
    OPEN_RATE[f.id], CLICK_RATE[f.id] = 0.45, 0.2

    # L-1024 George, procurement at Blue Yonder Airlines: compares vendors (pricing, security),
    # contact-sales for an RFP; the mail gateway's link scanner "clicks" every link (a bot).
    # Lost 06-21.
    g = L["L-1024"]
    download(g, None, "security-whitepaper", first=True)
    for md in ("04-08", "04-11", "04-19", "05-02", "05-09", "05-13"):
        session(g, md, ["/pricing", rng.choice(["/security", "/integrations", "/product"])])
    t = session(g, "05-15", ["/pricing", "/demo"])
    form(g, t, "contact-sales")
    session(g, "06-04", ["/pricing"])
    OPEN_RATE[g.id], CLICK_RATE[g.id] = 0.3, 0.0

    # L-1025 Yuki, marketing coordinator on Gmail: progressive profiling fills in company size
    # and industry on 06-04.
    y = L["L-1025"]
    newsletter(y, first=True)
    browse(y, "05-03", "06-25", 3, BLOG)
    emit(at("06-04"), {"type": "identify", "userId": y.id, "anonymousId": y.anon,
                       "traits": {"employees": 25, "industry": "Media"},
                       "context": browser_context(y)})

    # L-1026 Carlos, marketing manager at Fourth Coffee: opens nearly every newsletter, visits
    # often in June, never raises a hand. m3 calls him an MQL (15 + 25 + 10 = 50).
    c = L["L-1026"]
    newsletter(c, first=True)
    browse(c, "03-08", "05-31", 4, BLOG)
    for md in ("06-04", "06-11", "06-19", "06-26"):
        session(c, md, [rng.choice(BLOG)])
    OPEN_RATE[c.id], CLICK_RATE[c.id] = 0.95, 0.15

    # L-1027 Emily, Director of Finance at Wingtip Toys: newsletter, then the free funnel
    # assessment (80 points in m3) on 05-14; won 06-20.
    e = L["L-1027"]
    newsletter(e, first=True)
    browse(e, "04-19", "05-10", 2, BLOG)
    t = session(e, "05-14", ["/free-assessment"])
    form(e, t, "free-assessment")
    session(e, "05-16", ["/pricing"])
    session(e, "05-21", ["/customers", "/customers/northwind-traders"])
    session(e, "05-27", ["/pricing", "/security"])
    OPEN_RATE[e.id], CLICK_RATE[e.id] = 0.6, 0.15

    # L-1029 Laura, administrative assistant on Yahoo: newsletter, then a spam complaint 06-11.
    la = L["L-1029"]
    newsletter(la, first=True)
    la.unsubscribed = at("06-11", "16:40")
    track(la, la.unsubscribed, "Email Marked as Spam", {"campaign_id": "cmp-2024-15"},
          source="esp", ua=MAIL_CLIENTS[la.mail])

    # L-1033 Zoe: only an e-mail address at first; title and department arrive on 06-20.
    z = L["L-1033"]
    newsletter(z, first=True)
    session(z, "06-12", ["/blog/negative-scoring"])
    emit(at("06-20"), {"type": "identify", "userId": z.id, "anonymousId": z.anon,
                       "traits": {"title": "Operations Manager", "department": "Operations"},
                       "context": browser_context(z)})

    # L-1037 Sarah, Head of Marketing at Best For You Organics: exactly 50 employees.
    s = L["L-1037"]
    download(s, None, "lead-scoring-ebook", first=True)
    webinar(s, "predictive-scoring")
    session(s, "06-06", ["/pricing", "/product"])
    browse(s, "05-16", "06-28", 2, BLOG)

    # L-1039 Rebecca (Ghana) and L-1040 Mateo (Brazil): outside the served regions.
    r = L["L-1039"]
    download(r, None, "state-of-revops-2024", first=True)
    browse(r, "04-27", "06-20", 3, BLOG)
    m = L["L-1040"]
    webinar(m, "lead-scoring-101", first=True)
    browse(m, "03-22", "05-20", 2, BLOG)

    # L-1041 Deniz: a trial on 06-26 that only the events know about.
    dz = L["L-1041"]
    trial(dz, None, first=True)
    product_days(dz, dt.date(2024, 6, 27), dt.date(2024, 6, 28), 1.0)


def campaigns():
    """Weekly marketing e-mails to every lead known by the send date and still subscribed."""
    for c in CAMPAIGNS:
        send = dt.datetime(c["date"].year, c["date"].month, c["date"].day, 9, 0,
                           tzinfo=dt.timezone.utc)
        for lead in L.values():
            if lead.id == "L-1041" or lead.created > send:
                continue
            if lead.unsubscribed is not None and lead.unsubscribed <= send:
                continue
            if rng.random() >= OPEN_RATE[lead.id]:
                continue
            delay = dt.timedelta(minutes=rng.randint(1, 20) if lead.mail == "apple"
                                 else rng.randint(20, 2880))
            t = send + delay
            if t > END:
                continue
            props = {"campaign_id": c["id"], "campaign_name": c["subject"],
                     "campaign_type": "marketing", "email_subject": c["subject"]}
            track(lead, t, "Email Opened", props, source="esp", ua=MAIL_CLIENTS[lead.mail])
            if rng.random() < CLICK_RATE[lead.id]:
                link = rng.choice(BLOG + ["/pricing", "/webinars", "/customers"])
                t2 = t + dt.timedelta(seconds=rng.randint(5, 120))
                track(lead, t2, "Email Link Clicked",
                      dict(props, link_url=SITE + link + "?utm_source=newsletter&utm_medium=email"),
                      source="esp", ua=MAIL_CLIENTS[lead.mail])
                page(lead, t2 + dt.timedelta(seconds=3), link, "")
        # George's mail gateway scans each link seconds after delivery: bot clicks and a headless
        # page view carrying his user id.
        g = L["L-1024"]
        if c["date"] >= dt.date(2024, 4, 9) and c["date"].toordinal() % 3 == 0:
            t = send + dt.timedelta(seconds=rng.randint(4, 30))
            track(g, t, "Email Link Clicked",
                  {"campaign_id": c["id"], "campaign_name": c["subject"], "campaign_type": "marketing",
                   "email_subject": c["subject"], "link_url": SITE + "/pricing?utm_source=newsletter"},
                  source="esp", ua=LINK_SCANNER)
            page(g, t + dt.timedelta(seconds=2), "/pricing", "", ua=BOTS[3])


def bots():
    """Search engines and SEO crawlers: anonymous page views, to be ignored."""
    crawler = Lead(("bot", "", "", "bot@example.invalid", "", "", "", "", "", "03-02 00:00"))
    for _ in range(14):
        d = START.date() + dt.timedelta(days=rng.randint(0, 119))
        anon = new_id()
        session(crawler, d.strftime("%m-%d"), rng.sample(list(PAGES), 2), hm=None, referrer="",
                ua=rng.choice(BOTS[:3]), anon=anon)


def write():
    story()
    campaigns()
    bots()
    ordered = [m for _, _, m in sorted(MESSAGES, key=lambda x: (x[0], x[1]))]
    # SDK retries deliver a batch again a little later: the same message, byte for byte.
    out = []
    for msg in ordered:
        out.append(msg)
        if any(msg is d for d in DUPLICATES):
            out.append(msg)
    with open(os.path.join(HERE, "events.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for msg in out:
            f.write(json.dumps(msg, ensure_ascii=False) + "\n")

    with open(os.path.join(HERE, "leads.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "email", "first_name", "title", "department", "employees", "industry",
                    "country", "created_at"])
        for row in LEADS:
            lead = L[row[0]]
            w.writerow([lead.id, lead.email, lead.first, row[4], lead.department, lead.employees,
                        lead.industry, lead.country, lead.created.strftime("%Y-%m-%dT%H:%M:%SZ")])

    with open(os.path.join(HERE, "outcomes.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["lead_id", "outcome", "at"])
        for lead_id, outcome, when in OUTCOMES:
            md, hm = when.split(" ")
            w.writerow([lead_id, outcome, f"2024-{md}T{hm}:00Z"])
    print(f"{len(LEADS)} leads, {len(out)} events ({len(DUPLICATES)} duplicated), "
          f"{len(OUTCOMES)} outcomes")


if __name__ == "__main__":
    write()
