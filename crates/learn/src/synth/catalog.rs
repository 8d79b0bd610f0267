//! The fixed vocabulary of the synthetic world: the vendor's website, the markets, industries,
//! departments, names, browsers and bots. Weights are relative frequencies; `fit` values are the
//! ideal-customer-profile factors documented in docs/synthetic-data.md.

/// The fictional vendor: Opsgrid, an incident-response and IT-automation platform for engineering
/// and IT operations teams.
pub const SITE: &str = "https://www.opsgrid.example";

/// What a page is for, which decides who visits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    Home,
    Blog,
    Product,
    Integrations,
    Customers,
    Security,
    Docs,
    Pricing,
    Demo,
    Assessment,
    Careers,
    About,
    Webinars,
    Resources,
    Newsletter,
    Contact,
}

pub struct Page {
    pub path: &'static str,
    pub title: &'static str,
    pub kind: PageKind,
}

const fn page(path: &'static str, title: &'static str, kind: PageKind) -> Page {
    Page { path, title, kind }
}

pub const PAGES: &[Page] = &[
    page("/", "Opsgrid | Incident response and IT automation", PageKind::Home),
    page("/blog/what-is-incident-management", "What is incident management? | Opsgrid blog", PageKind::Blog),
    page("/blog/on-call-without-burnout", "On-call without burnout | Opsgrid blog", PageKind::Blog),
    page("/blog/postmortems-that-work", "Blameless postmortems that work | Opsgrid blog", PageKind::Blog),
    page("/blog/sre-metrics", "The four SRE metrics that matter | Opsgrid blog", PageKind::Blog),
    page("/blog/itil-vs-devops", "ITIL vs DevOps: a truce | Opsgrid blog", PageKind::Blog),
    page("/blog/runbook-automation", "Runbook automation in 5 steps | Opsgrid blog", PageKind::Blog),
    page("/blog/pci-incident-response", "Incident response for PCI DSS 4.0 | Opsgrid blog", PageKind::Blog),
    page("/product", "Product tour | Opsgrid", PageKind::Product),
    page("/product/on-call", "On-call scheduling | Opsgrid", PageKind::Product),
    page("/product/automation", "Runbook automation | Opsgrid", PageKind::Product),
    page("/product/status-pages", "Status pages | Opsgrid", PageKind::Product),
    page("/integrations", "Integrations | Opsgrid", PageKind::Integrations),
    page("/integrations/datadog", "Datadog integration | Opsgrid", PageKind::Integrations),
    page("/integrations/slack", "Slack integration | Opsgrid", PageKind::Integrations),
    page("/integrations/servicenow", "ServiceNow integration | Opsgrid", PageKind::Integrations),
    page("/customers", "Customer stories | Opsgrid", PageKind::Customers),
    page("/customers/woodgrove-bank", "How Woodgrove Bank cut MTTR by 60% | Opsgrid", PageKind::Customers),
    page("/security", "Security and compliance | Opsgrid", PageKind::Security),
    page("/docs/getting-started", "Getting started | Opsgrid docs", PageKind::Docs),
    page("/docs/api", "API reference | Opsgrid docs", PageKind::Docs),
    page("/pricing", "Pricing | Opsgrid", PageKind::Pricing),
    page("/pricing/enterprise", "Enterprise plan | Opsgrid", PageKind::Pricing),
    page("/demo", "Book a demo | Opsgrid", PageKind::Demo),
    page("/free-assessment", "Free incident-readiness assessment | Opsgrid", PageKind::Assessment),
    page("/careers", "Careers | Opsgrid", PageKind::Careers),
    page(
        "/careers/site-reliability-engineer",
        "Site Reliability Engineer (remote) | Opsgrid careers",
        PageKind::Careers,
    ),
    page("/careers/account-executive", "Account Executive, EMEA | Opsgrid careers", PageKind::Careers),
    page("/careers/product-designer", "Product Designer | Opsgrid careers", PageKind::Careers),
    page("/about", "About us | Opsgrid", PageKind::About),
    page("/webinars", "Webinars | Opsgrid", PageKind::Webinars),
    page(
        "/resources/incident-response-playbook",
        "E-book: The incident response playbook | Opsgrid",
        PageKind::Resources,
    ),
    page("/resources/state-of-on-call-2024", "Report: State of on-call 2024 | Opsgrid", PageKind::Resources),
    page("/resources/soc2-whitepaper", "Whitepaper: Opsgrid security architecture | Opsgrid", PageKind::Resources),
    page("/newsletter", "Newsletter | Opsgrid", PageKind::Newsletter),
    page("/contact", "Contact sales | Opsgrid", PageKind::Contact),
];

/// Downloadable assets: (slug, title, type).
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("incident-response-playbook", "The incident response playbook", "ebook"),
    ("state-of-on-call-2024", "State of on-call 2024", "report"),
    ("soc2-whitepaper", "Opsgrid security architecture", "whitepaper"),
];

pub const WEBINAR_TITLES: &[&str] = &[
    "Incident response 101",
    "On-call that engineers do not hate",
    "Automating the first five minutes of an incident",
    "Postmortems that change things",
    "Status pages and customer trust",
    "Runbooks as code",
    "From ITSM to SRE",
];

pub const CAMPAIGN_SUBJECTS: &[&str] = &[
    "5 signs your on-call rotation is broken",
    "The incident response playbook is here",
    "Webinar invite: Incident response 101",
    "What 200 SRE teams told us",
    "Product update: runbook automation",
    "Your postmortem template, upgraded",
    "How Woodgrove Bank cut MTTR by 60%",
    "State of on-call 2024: the numbers",
    "Datadog + Opsgrid in 10 minutes",
    "Is your team ready for PCI DSS 4.0?",
    "Free incident-readiness assessment",
    "Product update: status pages",
    "Runbooks as code, explained",
];

pub const REFERRERS: &[(&str, f64)] = &[
    ("", 30.0),
    ("https://www.google.com/", 35.0),
    ("https://www.bing.com/", 4.0),
    ("https://www.linkedin.com/", 12.0),
    ("https://duckduckgo.com/", 3.0),
    ("https://news.ycombinator.com/", 3.0),
    ("https://www.g2.com/products/opsgrid/reviews", 5.0),
    ("https://www.reddit.com/r/sre/", 3.0),
];

pub const FEATURES: &[&str] = &[
    "alerts",
    "on-call schedule",
    "escalation policy",
    "runbook",
    "status page",
    "postmortem",
    "integration",
    "api key",
];

/// Industries: (name, weight, ICP industry factor).
pub const INDUSTRIES: &[(&str, f64, f64)] = &[
    ("Software", 16.0, 1.0),
    ("Fintech", 6.0, 1.0),
    ("Financial Services", 8.0, 0.5),
    ("Telecommunications", 3.0, 0.5),
    ("E-commerce", 5.0, 0.5),
    ("Insurance", 4.0, 0.3),
    ("Manufacturing", 10.0, 0.15),
    ("Retail", 8.0, 0.15),
    ("Healthcare", 7.0, 0.15),
    ("Media", 4.0, 0.15),
    ("Logistics", 5.0, 0.15),
    ("Consulting", 6.0, 0.15),
    ("Education", 5.0, 0.05),
    ("Government", 3.0, 0.05),
    ("Non-profit", 2.0, 0.05),
    ("Travel & Hospitality", 4.0, 0.15),
    ("Energy", 3.0, 0.15),
];

/// Countries: (ISO code, weight, served by the vendor's sales team).
pub const COUNTRIES: &[(&str, f64, bool)] = &[
    ("US", 34.0, true),
    ("GB", 9.0, true),
    ("DE", 7.0, true),
    ("CA", 5.0, true),
    ("FR", 4.0, true),
    ("NL", 3.0, true),
    ("AU", 3.0, true),
    ("SE", 2.0, true),
    ("IE", 1.5, true),
    ("DK", 1.0, true),
    ("NO", 1.0, true),
    ("FI", 1.0, true),
    ("ES", 2.5, true),
    ("IT", 2.0, true),
    ("IN", 8.0, false),
    ("BR", 3.5, false),
    ("MX", 1.5, false),
    ("JP", 1.5, false),
    ("SG", 1.0, false),
    ("NG", 1.5, false),
    ("PH", 1.0, false),
    ("TR", 1.0, false),
    ("ZA", 1.0, false),
    ("AR", 0.8, false),
    ("PK", 0.8, false),
    ("EG", 0.6, false),
];

/// Departments: (CSV value, weight among company leads, ICP department factor).
pub const DEPARTMENTS: &[(&str, f64, f64)] = &[
    ("IT", 16.0, 1.0),
    ("Engineering", 18.0, 1.0),
    ("Operations", 10.0, 1.0),
    ("Product", 7.0, 0.5),
    ("Finance", 7.0, 0.5),
    ("Customer Support", 5.0, 0.3),
    ("Marketing", 14.0, 0.1),
    ("Sales", 12.0, 0.1),
    ("Human Resources", 6.0, 0.1),
    ("Legal", 3.0, 0.1),
];

/// Seniority levels (CSV value) with their ICP seniority factor.
pub const SENIORITY_FIT: &[(&str, f64)] = &[
    ("executive", 0.9),
    ("vp", 1.0),
    ("director", 1.0),
    ("manager", 0.7),
    ("individual", 0.35),
    ("intern", 0.0),
    ("student", 0.0),
];

/// (department, executive title, manager title, individual-contributor titles).
pub const TITLES: &[(&str, &str, &str, &[&str])] = &[
    (
        "IT",
        "CIO",
        "IT Manager",
        &["Systems Administrator", "IT Support Specialist", "Network Engineer", "Cloud Engineer"],
    ),
    (
        "Engineering",
        "CTO",
        "Engineering Manager",
        &[
            "Software Engineer",
            "Senior Software Engineer",
            "DevOps Engineer",
            "Site Reliability Engineer",
            "Data Engineer",
        ],
    ),
    (
        "Operations",
        "COO",
        "Operations Manager",
        &["Operations Analyst", "Business Operations Specialist", "NOC Analyst"],
    ),
    ("Product", "Chief Product Officer", "Product Manager", &["Associate Product Manager", "Product Designer"]),
    ("Finance", "CFO", "Finance Manager", &["Financial Analyst", "Accountant", "Procurement Specialist"]),
    (
        "Customer Support",
        "Chief Customer Officer",
        "Support Manager",
        &["Customer Support Specialist", "Support Engineer"],
    ),
    (
        "Marketing",
        "CMO",
        "Marketing Manager",
        &["Marketing Specialist", "Content Marketer", "Digital Marketing Specialist"],
    ),
    ("Sales", "Chief Revenue Officer", "Sales Manager", &["Account Executive", "Sales Development Representative"]),
    ("Human Resources", "Chief People Officer", "HR Manager", &["HR Generalist", "Recruiter"]),
    ("Legal", "General Counsel", "Legal Operations Manager", &["Paralegal", "Corporate Counsel"]),
];

pub const STUDENT_TITLES: &[&str] =
    &["Student", "MBA Student", "Computer Science Student", "PhD Candidate", "Graduate Student", "Undergraduate"];

pub const JOB_SEEKER_TITLES: &[&str] = &[
    "Open to work",
    "Software Engineer | Open to work",
    "DevOps Engineer, seeking new role",
    "Looking for opportunities",
    "Data Analyst | Open to work",
    "Recent graduate, looking for a job",
];

pub const FREELANCER_TITLES: &[&str] =
    &["Freelance IT Consultant", "Owner", "Independent DevOps Consultant", "Founder", "IT Contractor"];

/// Junk answers to a required form field (bad lead data).
pub const JUNK_TITLES: &[&str] = &["N/A", "x", "-", "test", "asdf", "none"];

pub const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Priya",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Sofia",
    "Mark",
    "Emma",
    "Lukas",
    "Hannah",
    "Mateo",
    "Chloé",
    "Arjun",
    "Aisha",
    "Kenji",
    "Yuki",
    "Omar",
    "Fatima",
    "Sven",
    "Ingrid",
    "Lars",
    "Anna",
    "Pierre",
    "Camille",
    "Giulia",
    "Marco",
    "Lucía",
    "Javier",
    "Wei",
    "Li",
    "Olivia",
    "Noah",
    "Liam",
    "Ava",
    "Ethan",
    "Mia",
    "Raj",
    "Ananya",
    "Tunde",
    "Chiamaka",
];

pub const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Patel",
    "Sharma",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Dubois",
    "Bernard",
    "Rossi",
    "Russo",
    "Fernández",
    "González",
    "Andersson",
    "Johansson",
    "Nielsen",
    "Hansen",
    "O'Brien",
    "Murphy",
    "Kim",
    "Chen",
    "Wang",
    "Tanaka",
    "Sato",
    "Nakamura",
    "Okafor",
    "Adeyemi",
    "Silva",
    "Santos",
    "Costa",
    "Novak",
    "Kowalski",
    "van Dijk",
    "de Vries",
    "Jansen",
    "Walsh",
    "Clarke",
    "Hughes",
    "Khan",
    "Haddad",
];

pub const COMPANY_STEMS: &[&str] = &[
    "Contoso",
    "Fabrikam",
    "Northwind",
    "Litware",
    "Proseware",
    "Tailspin",
    "Woodgrove",
    "Adatum",
    "Alpine",
    "Blue Yonder",
    "Coho",
    "Fourth Coffee",
    "Humongous",
    "Lucerne",
    "Margie",
    "Trey",
    "Wide World",
    "Wingtip",
    "Southridge",
    "Graphic",
    "Relay",
    "Bright",
    "Silver",
    "Granite",
    "Harbor",
    "Summit",
    "Pioneer",
    "Cobalt",
    "Quantum",
    "Vertex",
    "Nimbus",
    "Atlas",
    "Meridian",
    "Lumen",
    "Orbit",
    "Cascade",
    "Beacon",
    "Evergreen",
    "Ironclad",
    "Keystone",
];

pub const COMPANY_ROOTS: &[&str] = &[
    "Systems",
    "Labs",
    "Software",
    "Pay",
    "Bank",
    "Logistics",
    "Health",
    "Retail",
    "Media",
    "Works",
    "Networks",
    "Analytics",
    "Cloud",
    "Group",
    "Partners",
    "Digital",
    "Industries",
    "Capital",
    "Data",
    "Studios",
];

pub const COMPANY_TLDS: &[(&str, f64)] =
    &[("com", 70.0), ("io", 10.0), ("co.uk", 5.0), ("de", 5.0), ("net", 5.0), ("ai", 5.0)];

pub const FREE_MAIL: &[(&str, f64)] = &[
    ("gmail.com", 55.0),
    ("yahoo.com", 12.0),
    ("outlook.com", 10.0),
    ("hotmail.com", 10.0),
    ("icloud.com", 5.0),
    ("proton.me", 3.0),
    ("gmx.de", 3.0),
    ("aol.com", 2.0),
];

pub const UNIVERSITIES: &[&str] = &[
    "student.northbridge.edu",
    "lakeside.edu",
    "kingsford.ac.uk",
    "stud.tu-halden.de",
    "mackenzie.edu.au",
    "alumnos.sanlucas.edu.mx",
    "iit-varuna.ac.in",
];

pub const BROWSERS: &[(&str, f64)] = &[
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
        35.0,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
        22.0,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
        12.0,
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0", 8.0),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.2535.67",
        10.0,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 5.0),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        6.0,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36",
        2.0,
    ),
];

/// Mail clients as they appear on `Email Opened` (image-proxy fetches).
pub const MAIL_CLIENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17628; Pro)",
    "Mozilla/5.0",
];

/// Crawlers: ((user agent, IP prefix), weight).
pub const BOTS: &[((&str, &str), f64)] = &[
    (("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "66.249.66."), 40.0),
    (("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "157.55.39."), 20.0),
    (("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "54.36.148."), 15.0),
    (("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", "185.191.171."), 10.0),
    (
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
            "35.204.12.",
        ),
        10.0,
    ),
    (("python-requests/2.31.0", "34.118.40."), 5.0),
];

pub const LIBRARY_BROWSER: (&str, &str) = ("analytics.js", "next-1.70.0");
pub const LIBRARY_SERVER: (&str, &str) = ("analytics-node", "2.1.0");
