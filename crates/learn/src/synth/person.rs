//! Who a lead is: persona, company (account), title, e-mail, what the CRM row shows, and the hidden
//! ideal-customer-profile fit, intent and conversion probability.

use leadscore_core::time::{MS_PER_DAY, Millis};
use serde_json::{Value, json};

use super::catalog::{
    COMPANY_ROOTS, COMPANY_STEMS, COMPANY_TLDS, COUNTRIES, DEPARTMENTS, FIRST_NAMES, FREE_MAIL, FREELANCER_TITLES,
    INDUSTRIES, JOB_SEEKER_TITLES, JUNK_TITLES, LAST_NAMES, SENIORITY_FIT, STUDENT_TITLES, TITLES, UNIVERSITIES,
};
use super::sample::{Rng, beta, chance, int, log_normal, pick, uniform, weighted};
use super::{ACCOUNT_STREAM, Config, LeadRow, Truth, lead_id, stream};

/// The kind of person behind a lead. Only the generator knows it (`truth.csv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persona {
    /// Executive, VP or director at a company: can buy.
    DecisionMaker,
    /// Manager or individual contributor at a company: evaluates and champions.
    Practitioner,
    /// Reads the blog and downloads content; rarely buys.
    Researcher,
    /// One-person consultancy or contractor.
    Freelancer,
    /// Looking for a job: visits /careers.
    JobSeeker,
    Student,
}

impl Persona {
    pub fn as_str(self) -> &'static str {
        match self {
            Persona::DecisionMaker => "decision_maker",
            Persona::Practitioner => "practitioner",
            Persona::Researcher => "researcher",
            Persona::Freelancer => "freelancer",
            Persona::JobSeeker => "job_seeker",
            Persona::Student => "student",
        }
    }

    /// Multiplies the conversion probability: job seekers and students do not buy.
    fn buying_factor(self) -> f64 {
        match self {
            Persona::JobSeeker => 0.02,
            Persona::Student => 0.01,
            _ => 1.0,
        }
    }
}

const PERSONAS: &[(Persona, f64)] = &[
    (Persona::DecisionMaker, 18.0),
    (Persona::Practitioner, 36.0),
    (Persona::Researcher, 22.0),
    (Persona::Freelancer, 8.0),
    (Persona::JobSeeker, 9.0),
    (Persona::Student, 7.0),
];

/// A company. Its `group` traits are always complete; the lead's CRM row may not be.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub domain: String,
    pub industry: &'static str,
    pub employees: u32,
    pub country: &'static str,
}

impl Account {
    pub fn traits(&self) -> Value {
        json!({
            "name": self.name,
            "website": format!("https://{}", self.domain),
            "industry": self.industry,
            "employees": self.employees,
            "country": self.country,
        })
    }
}

/// Company number `index`: a pure function of `(seed, index)`, so leads of the same company agree
/// without the generator keeping a table.
pub fn account(config: &Config, index: u64) -> Account {
    let mut rng = stream(config.seed, ACCOUNT_STREAM, index);
    let stems = COMPANY_STEMS.len() as u64;
    let roots = COMPANY_ROOTS.len() as u64;
    let stem = COMPANY_STEMS[(index % stems) as usize];
    let root = COMPANY_ROOTS[((index / stems) % roots) as usize];
    let round = index / (stems * roots);
    let name = if round == 0 { format!("{stem} {root}") } else { format!("{stem} {root} {}", round + 1) };
    let slug: String = stem.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    let root_slug = root.to_ascii_lowercase();
    let tld = weighted(&mut rng, COMPANY_TLDS);
    let domain =
        if round == 0 { format!("{slug}{root_slug}.{tld}") } else { format!("{slug}{root_slug}{}.{tld}", round + 1) };
    let industry = match root {
        "Pay" | "Capital" => "Fintech",
        "Bank" => "Financial Services",
        "Software" | "Cloud" | "Labs" | "Data" | "Analytics" => "Software",
        "Health" => "Healthcare",
        "Logistics" => "Logistics",
        "Retail" => "Retail",
        "Media" | "Studios" => "Media",
        "Networks" => "Telecommunications",
        _ => {
            let items: Vec<(&'static str, f64)> = INDUSTRIES.iter().map(|(n, w, _)| (*n, *w)).collect();
            *weighted(&mut rng, &items)
        }
    };
    let raw = log_normal(&mut rng, 300f64.ln(), 1.5).clamp(3.0, 150_000.0);
    let employees = if raw < 100.0 {
        raw.round()
    } else if raw < 1000.0 {
        (raw / 10.0).round() * 10.0
    } else {
        (raw / 50.0).round() * 50.0
    } as u32;
    let countries: Vec<(&'static str, f64)> = COUNTRIES.iter().map(|(c, w, _)| (*c, *w)).collect();
    let country = *weighted(&mut rng, &countries);
    Account { id: domain.clone(), name, domain, industry, employees, country }
}

/// Everything about a lead that does not depend on time.
#[derive(Debug, Clone)]
pub struct Person {
    pub row: LeadRow,
    pub persona: Persona,
    pub account: Option<Account>,
    pub truth: Truth,
    /// Whether this lead buys (drawn with `truth.converted_probability`).
    pub buys: bool,
    /// How active the lead is (log-normal, mean about 1.6): drives the heavy tail of events per lead.
    pub activity: f64,
    /// True trait values missing from the CRM row, revealed by later forms (progressive profiling).
    pub hidden: Vec<(&'static str, Value)>,
    /// The traits the first form collected (what the CRM row shows), for the first `identify`.
    pub known: Value,
}

pub fn icp_factors(
    industry: Option<&str>,
    employees: Option<u32>,
    department: Option<&str>,
    seniority: &str,
    country: &str,
) -> f64 {
    let industry = industry.and_then(|i| INDUSTRIES.iter().find(|(n, _, _)| *n == i)).map_or(0.05, |(_, _, f)| *f);
    let size = match employees {
        Some(200..=2000) => 1.0,
        Some(50..=199 | 2001..=10_000) => 0.45,
        _ => 0.1,
    };
    let department = department.and_then(|d| DEPARTMENTS.iter().find(|(n, _, _)| *n == d)).map_or(0.1, |(_, _, f)| *f);
    let seniority = SENIORITY_FIT.iter().find(|(s, _)| *s == seniority).map_or(0.3, |(_, f)| *f);
    let country = if COUNTRIES.iter().any(|(c, _, served)| *c == country && *served) { 1.0 } else { 0.2 };
    0.30 * industry + 0.25 * size + 0.20 * department + 0.15 * seniority + 0.10 * country
}

/// The conversion probability: `buying_factor × σ(−8 + 5·fit + 6·intent + 3·fit·intent)`.
pub fn conversion_probability(persona: Persona, icp_fit: f64, intent: f64) -> f64 {
    let logit = -8.0 + 5.0 * icp_fit + 6.0 * intent + 3.0 * icp_fit * intent;
    persona.buying_factor() / (1.0 + (-logit).exp())
}

/// Lower-case ASCII letters and digits of a name, for e-mail addresses (`Chloé` -> `chloe`).
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'é' | 'è' => 'e',
            'ü' => 'u',
            'á' => 'a',
            'í' => 'i',
            c => c,
        })
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

fn email_local(rng: &mut Rng, first: &str, last: &str) -> String {
    let (first, last) = (slug(first), slug(last));
    match int(rng, 0, 9) {
        0..=5 => format!("{first}.{last}"),
        6 | 7 => format!("{}{last}", first.chars().next().unwrap_or('x')),
        _ => first,
    }
}

fn free_mail(rng: &mut Rng, first: &str, last: &str) -> String {
    let local = email_local(rng, first, last);
    let domain = weighted(rng, FREE_MAIL);
    if chance(rng, 0.5) { format!("{local}{}@{domain}", int(rng, 1, 99)) } else { format!("{local}@{domain}") }
}

fn title_for(rng: &mut Rng, department: &str, seniority: &str) -> String {
    let Some((_, exec, manager, individuals)) = TITLES.iter().find(|(d, ..)| *d == department) else {
        return "Consultant".to_owned();
    };
    let short = match department {
        "Human Resources" => "HR",
        "Customer Support" => "Support",
        d => d,
    };
    match seniority {
        "executive" => {
            if chance(rng, 0.15) {
                (*pick(rng, &["CEO", "Co-Founder & CEO", "Managing Director"])).to_owned()
            } else {
                (*exec).to_owned()
            }
        }
        "vp" => match int(rng, 0, 2) {
            0 => format!("VP of {department}"),
            1 => format!("Head of {department}"),
            _ => format!("SVP, {short}"),
        },
        "director" => match int(rng, 0, 2) {
            0 => format!("Director of {department}"),
            1 => format!("{short} Director"),
            _ => format!("Senior Director, {department}"),
        },
        "manager" => {
            if chance(rng, 0.25) {
                format!("{short} Team Lead")
            } else {
                (*manager).to_owned()
            }
        }
        "intern" => format!("{short} Intern"),
        _ => (*pick(rng, individuals)).to_owned(),
    }
}

/// Draws lead number `index`.
pub fn draw(config: &Config, index: u64, rng: &mut Rng) -> Person {
    let persona = *weighted(rng, PERSONAS);
    let first = (*pick(rng, FIRST_NAMES)).to_owned();
    let last = (*pick(rng, LAST_NAMES)).to_owned();
    let countries: Vec<(&'static str, f64)> = COUNTRIES.iter().map(|(c, w, _)| (*c, *w)).collect();
    let departments: Vec<(&'static str, f64)> = DEPARTMENTS.iter().map(|(d, w, _)| (*d, *w)).collect();

    let mut account_of_lead = None;
    let (email, title, department, seniority, employees, industry, country): (
        String,
        String,
        Option<&'static str>,
        &'static str,
        Option<u32>,
        Option<&'static str>,
        &'static str,
    ) = match persona {
        Persona::DecisionMaker | Persona::Practitioner | Persona::Researcher => {
            let acct = account(config, int(rng, 0, config.accounts() as i64 - 1) as u64);
            let seniority = *weighted(
                rng,
                match persona {
                    Persona::DecisionMaker => &[("executive", 25.0), ("vp", 30.0), ("director", 45.0)][..],
                    Persona::Practitioner => &[("manager", 45.0), ("individual", 55.0)][..],
                    _ => &[("director", 10.0), ("manager", 20.0), ("individual", 55.0), ("intern", 15.0)][..],
                },
            );
            let department = *weighted(rng, &departments);
            let title = title_for(rng, department, seniority);
            let email = if chance(rng, 0.08) {
                free_mail(rng, &first, &last)
            } else {
                format!("{}@{}", email_local(rng, &first, &last), acct.domain)
            };
            let result =
                (email, title, Some(department), seniority, Some(acct.employees), Some(acct.industry), acct.country);
            account_of_lead = Some(acct);
            result
        }
        Persona::Freelancer => {
            let email = if chance(rng, 0.7) {
                free_mail(rng, &first, &last)
            } else {
                format!("{}@{}consulting.com", slug(&first), slug(&last))
            };
            let title = (*pick(rng, FREELANCER_TITLES)).to_owned();
            let seniority =
                if title.contains("Owner") || title.contains("Founder") { "executive" } else { "individual" };
            let department = if chance(rng, 0.6) { Some("IT") } else { None };
            (
                email,
                title,
                department,
                seniority,
                Some(int(rng, 1, 9) as u32),
                Some("Consulting"),
                *weighted(rng, &countries),
            )
        }
        Persona::JobSeeker => {
            let email = free_mail(rng, &first, &last);
            let department = if chance(rng, 0.3) { Some("Engineering") } else { None };
            (
                email,
                (*pick(rng, JOB_SEEKER_TITLES)).to_owned(),
                department,
                "individual",
                None,
                None,
                *weighted(rng, &countries),
            )
        }
        Persona::Student => {
            let email = if chance(rng, 0.7) {
                format!("{}@{}", email_local(rng, &first, &last), pick(rng, UNIVERSITIES))
            } else {
                free_mail(rng, &first, &last)
            };
            let industry = if chance(rng, 0.5) { Some("Education") } else { None };
            (
                email,
                (*pick(rng, STUDENT_TITLES)).to_owned(),
                None,
                "student",
                None,
                industry,
                *weighted(rng, &countries),
            )
        }
    };

    let icp_fit = icp_factors(industry, employees, department, seniority, country);
    let intent = match persona {
        Persona::DecisionMaker => beta(rng, 1.3, 3.5),
        Persona::Practitioner => beta(rng, 1.1, 4.5),
        Persona::Researcher => beta(rng, 0.8, 7.0),
        Persona::Freelancer => beta(rng, 1.0, 5.0),
        Persona::JobSeeker => beta(rng, 0.5, 20.0),
        Persona::Student => beta(rng, 0.5, 15.0),
    };
    let converted_probability = conversion_probability(persona, icp_fit, intent);
    let buys = uniform(rng, 0.0, 1.0) < converted_probability;
    let activity = log_normal(rng, 0.0, 1.0);

    // The CRM row: what the first form asked for. Missing cells are missing data, not zeros.
    let created_at: Millis = config.start() + int(rng, 0, creation_span(config));
    let mut hidden: Vec<(&'static str, Value)> = Vec::new();
    let mut keep = |rng: &mut Rng, name: &'static str, value: Value, p_missing: f64| -> bool {
        if chance(rng, p_missing) {
            hidden.push((name, value));
            false
        } else {
            true
        }
    };
    let shown_title = if chance(rng, 0.03) {
        Some((*pick(rng, JUNK_TITLES)).to_owned())
    } else if keep(rng, "title", json!(title), 0.08) {
        Some(title.clone())
    } else {
        None
    };
    let shown_department = department.filter(|d| keep(rng, "department", json!(d), 0.25)).map(str::to_owned);
    let shown_seniority = if shown_title.is_some() && chance(rng, 0.85) { Some(seniority.to_owned()) } else { None };
    let shown_employees = employees.filter(|n| keep(rng, "employees", json!(n), 0.4));
    let shown_industry = industry.filter(|i| keep(rng, "industry", json!(i), 0.3)).map(str::to_owned);
    let shown_country = Some(country).filter(|c| keep(rng, "country", json!(c), 0.12)).map(str::to_owned);
    let shown_first = if chance(rng, 0.02) { None } else { Some(first) };
    let shown_last = if chance(rng, 0.12) { None } else { Some(last) };

    let row = LeadRow {
        id: lead_id(index),
        email,
        first_name: shown_first,
        last_name: shown_last,
        title: shown_title,
        department: shown_department,
        seniority: shown_seniority,
        employees: shown_employees,
        industry: shown_industry,
        country: shown_country,
        created_at,
    };
    let mut known = serde_json::Map::new();
    known.insert("email".into(), json!(row.email));
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            known.insert(key.into(), value);
        }
    };
    put("first_name", row.first_name.as_ref().map(|v| json!(v)));
    put("last_name", row.last_name.as_ref().map(|v| json!(v)));
    put("title", row.title.as_ref().map(|v| json!(v)));
    put("department", row.department.as_ref().map(|v| json!(v)));
    put("employees", row.employees.map(|v| json!(v)));
    put("industry", row.industry.as_ref().map(|v| json!(v)));
    put("country", row.country.as_ref().map(|v| json!(v)));
    put("company", account_of_lead.as_ref().map(|a| json!(a.name)));

    Person {
        row,
        persona,
        account: account_of_lead,
        truth: Truth { persona, icp_fit, intent, converted_probability },
        buys,
        activity,
        hidden,
        known: Value::Object(known),
    }
}

/// Leads are created from the start of the span up to an hour before the end.
fn creation_span(config: &Config) -> i64 {
    (config.end - config.start()) - MS_PER_DAY / 24
}
