//! What a lead does over time: anonymous visits, the first form fill and `identify`, sessions whose
//! content follows intent and the buying journey, marketing e-mails, webinars, a product trial, going
//! cold, and the outcome. Also the unrelated traffic of the same period: anonymous visitors and bots.

use leadscore_core::time::{MS_PER_DAY, Millis};
use serde_json::{Value, json};

use super::catalog::{
    ASSETS, BOTS, BROWSERS, CAMPAIGN_SUBJECTS, FEATURES, LIBRARY_BROWSER, LIBRARY_SERVER, MAIL_CLIENTS, PAGES, Page,
    PageKind, REFERRERS, SITE, WEBINAR_TITLES,
};
use super::person::{Person, Persona};
use super::sample::{Rng, chance, exponential, gamma, int, pick, poisson, uniform, uuid, weighted};
use super::{Config, LeadRecord, Message, Outcome, OutcomeKind};

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_MINUTE: i64 = 60_000;
/// Days before the hand-raise over which behaviour intensifies.
const RAMP_DAYS: f64 = 30.0;
/// At most this many sessions per lead (bounds memory for the heaviest tail).
const MAX_SESSIONS: usize = 1_500;
/// Share of messages delivered twice (same line, same `messageId`).
const DUPLICATE_RATE: f64 = 0.01;

fn days(d: f64) -> Millis {
    (d * MS_PER_DAY as f64) as Millis
}

/// The buying journey of a lead that raises its hand: behaviour ramps up over the 30 days before
/// `peak` (when it requests a demo or an assessment) and stays high until the outcome.
#[derive(Debug, Clone, Copy)]
struct Journey {
    peak: Millis,
    outcome: OutcomeKind,
    outcome_at: Millis,
}

impl Journey {
    fn ramp(&self, at: Millis) -> f64 {
        let start = self.peak - days(RAMP_DAYS);
        if at < start {
            0.0
        } else if at <= self.peak {
            (at - start) as f64 / (self.peak - start) as f64
        } else {
            1.0
        }
    }
}

struct Sim<'a> {
    config: &'a Config,
    person: &'a Person,
    rng: &'a mut Rng,
    out: Vec<Message>,
    user_id: String,
    anonymous_id: String,
    user_agent: &'static str,
    ip: String,
    journey: Option<Journey>,
    /// Behaviour (visits, clicks, product use) stops here: the end date, going cold, or the outcome.
    active_until: Millis,
    /// Trait values not yet revealed by a form.
    hidden: Vec<(&'static str, Value)>,
}

fn random_ip(rng: &mut Rng) -> String {
    let mut first = int(rng, 1, 223);
    if first == 10 || first == 127 {
        first += 1;
    }
    format!("{first}.{}.{}.{}", int(rng, 0, 255), int(rng, 0, 255), int(rng, 1, 254))
}

fn page_name(page: &Page) -> &'static str {
    page.title.split(" | ").next().unwrap_or(page.title)
}

fn page_fields(page: &Page, url: &str, referrer: &str) -> Value {
    json!({"path": page.path, "url": url, "title": page.title, "referrer": referrer})
}

impl Sim<'_> {
    fn intent(&self) -> f64 {
        self.person.truth.intent
    }

    fn ramp(&self, at: Millis) -> f64 {
        self.journey.map_or(0.0, |j| j.ramp(at))
    }

    /// How "hot" the lead is at `at`: the journey ramp plus a little standing intent.
    fn heat(&self, at: Millis) -> f64 {
        self.ramp(at) + 0.3 * self.intent()
    }

    fn identified(&self, at: Millis) -> bool {
        at >= self.person.row.created_at
    }

    #[expect(clippy::too_many_arguments, reason = "one constructor for every Segment message shape")]
    fn push(
        &mut self,
        kind: &'static str,
        at: Millis,
        user: bool,
        anonymous: bool,
        event: Option<&'static str>,
        name: Option<String>,
        properties: Option<Value>,
        traits: Option<Value>,
        context: Value,
    ) {
        let message = Message {
            kind,
            message_id: uuid(self.rng),
            timestamp: at,
            user_id: user.then(|| self.user_id.clone()),
            anonymous_id: anonymous.then(|| self.anonymous_id.clone()),
            event,
            name,
            group_id: None,
            properties,
            traits,
            context,
        };
        self.out.push(message);
    }

    fn browser_context(&self, page: &Page, url: &str, referrer: &str) -> Value {
        json!({
            "ip": self.ip,
            "userAgent": self.user_agent,
            "library": {"name": LIBRARY_BROWSER.0, "version": LIBRARY_BROWSER.1},
            "page": page_fields(page, url, referrer),
        })
    }

    fn server_context(&self) -> Value {
        json!({"library": {"name": LIBRARY_SERVER.0, "version": LIBRARY_SERVER.1}})
    }

    fn page_view(&mut self, at: Millis, page: &Page, url: &str, referrer: &str) {
        let user = self.identified(at);
        let context = self.browser_context(page, url, referrer);
        self.push(
            "page",
            at,
            user,
            true,
            None,
            Some(page_name(page).to_owned()),
            Some(page_fields(page, url, referrer)),
            None,
            context,
        );
    }

    fn browser_track(&mut self, at: Millis, event: &'static str, properties: Value, page: &Page, url: &str) {
        let user = self.identified(at);
        let context = self.browser_context(page, url, "");
        self.push("track", at, user, true, Some(event), None, Some(properties), None, context);
    }

    fn server_track(&mut self, at: Millis, event: &'static str, properties: Value, context: Value) {
        self.push("track", at, true, false, Some(event), None, Some(properties), None, context);
    }

    fn choose_page(&mut self, at: Millis) -> &'static Page {
        let h = self.heat(at);
        let intent = self.intent();
        let persona = self.person.persona;
        let (blog, careers, docs) = match persona {
            Persona::JobSeeker => (2.0, 14.0, 0.2),
            Persona::Student => (8.0, 1.5, 0.5),
            Persona::Researcher => (10.0, 0.15, 0.4),
            Persona::Practitioner => (4.0, 0.15, 1.2),
            _ => (4.0, 0.15, 0.4),
        };
        let kinds = [
            (PageKind::Home, 3.0),
            (PageKind::Blog, blog),
            (PageKind::Product, 1.5 + 4.0 * h),
            (PageKind::Integrations, 0.8 + 2.0 * h),
            (PageKind::Customers, 0.6 + 1.5 * h),
            (PageKind::Security, 0.3 + 2.0 * h),
            (PageKind::Docs, docs + 1.5 * h),
            (PageKind::Pricing, 0.4 + 0.8 * intent + 4.0 * h),
            (PageKind::Demo, 0.1 + 1.2 * h),
            (PageKind::Assessment, 0.1 + 0.8 * h),
            (PageKind::Careers, careers),
            (PageKind::About, 0.5),
            (PageKind::Webinars, 0.4),
            (PageKind::Resources, 1.0),
            (PageKind::Newsletter, 0.3),
            (PageKind::Contact, 0.1 + 0.6 * h),
        ];
        let kind = *weighted(self.rng, &kinds);
        page_of_kind(self.rng, kind)
    }

    /// A visit of a few pages starting at `at`; forms only once the lead is identified.
    fn session(&mut self, at: Millis, first_page: Option<&'static Page>, entry_referrer: Option<String>) -> Millis {
        let heat = self.heat(at);
        let pages = 1 + poisson(self.rng, 1.5 + 2.0 * heat);
        let mut t = at;
        let mut referrer = entry_referrer.unwrap_or_else(|| (*weighted(self.rng, REFERRERS)).to_owned());
        for n in 0..pages {
            let page = match (n, first_page) {
                (0, Some(page)) => page,
                _ => self.choose_page(t),
            };
            let url = format!("{SITE}{}", page.path);
            self.page_view(t, page, &url, &referrer);
            t = self.after_page(t, page, &url);
            referrer = url;
            t += 15_000 + (exponential(self.rng, 70.0) * 1000.0) as Millis;
        }
        t
    }

    /// Forms and downloads a page can lead to; returns the time after them.
    fn after_page(&mut self, at: Millis, page: &'static Page, url: &str) -> Millis {
        if !self.identified(at) {
            return at;
        }
        let h = self.heat(at);
        let t = at + 20_000 + int(self.rng, 0, 90_000);
        let form = match page.kind {
            PageKind::Resources if chance(self.rng, 0.35) => "ebook",
            PageKind::Webinars if chance(self.rng, 0.3) => "webinar",
            PageKind::Newsletter if chance(self.rng, 0.4) => "newsletter",
            PageKind::Demo if chance(self.rng, 0.1 + 0.4 * h) => "demo-request",
            PageKind::Assessment if chance(self.rng, 0.1 + 0.3 * h) => "free-assessment",
            PageKind::Contact if chance(self.rng, 0.2 + 0.3 * h) => "contact",
            _ => return at,
        };
        self.submit_form(t, form, page, url)
    }

    fn submit_form(&mut self, at: Millis, form: &'static str, page: &'static Page, url: &str) -> Millis {
        let mut properties = json!({"form": form, "form_id": format!("{form}-form")});
        let mut t = at;
        match form {
            "ebook" => {
                let (slug, title, kind) = *pick(self.rng, ASSETS);
                properties["asset"] = json!(slug);
                self.browser_track(t, "Form Submitted", properties, page, url);
                t += 2_000;
                self.browser_track(
                    t,
                    "Content Downloaded",
                    json!({"asset": slug, "title": title, "content_type": kind}),
                    page,
                    url,
                );
            }
            "webinar" => {
                let title = *pick(self.rng, WEBINAR_TITLES);
                properties["webinar"] = json!(title);
                self.browser_track(t, "Form Submitted", properties, page, url);
                // The webinar takes place 3-14 days later at 16:00 UTC; about half of registrants attend.
                let day = (t / MS_PER_DAY + int(self.rng, 3, 14)) * MS_PER_DAY;
                let starts = day + 16 * MS_PER_HOUR;
                if starts < self.active_until && chance(self.rng, 0.45 + 0.3 * self.heat(starts)) {
                    let minutes = int(self.rng, 10, 60);
                    let context = self.server_context();
                    self.server_track(
                        starts + minutes * MS_PER_MINUTE,
                        "Webinar Attended",
                        json!({"webinar": title, "duration_minutes": minutes}),
                        context,
                    );
                }
            }
            _ => self.browser_track(t, "Form Submitted", properties, page, url),
        }
        // Progressive profiling: the form asked for one or two more fields.
        if !self.hidden.is_empty() && chance(self.rng, 0.5) {
            let mut traits = serde_json::Map::new();
            let reveal = int(self.rng, 1, 2) as usize;
            for _ in 0..reveal.min(self.hidden.len()) {
                let (key, value) = self.hidden.remove(0);
                traits.insert(key.to_owned(), value);
            }
            t += 1_000;
            let context = self.browser_context(page, url, "");
            self.push("identify", t, true, true, None, None, None, Some(Value::Object(traits)), context);
        }
        t
    }

    /// Sessions as a thinned Poisson process between `from` and `until`.
    fn sessions(&mut self, from: Millis, until: Millis) {
        let persona = self.person.persona;
        let base = match persona {
            Persona::JobSeeker => 0.10,
            Persona::Student => 0.06,
            _ => 0.055 + 0.13 * self.intent(),
        } * self.person.activity;
        let peak_rate = base * 4.0;
        if peak_rate <= 0.0 {
            return;
        }
        let mut t = from;
        let mut count = 0;
        while count < MAX_SESSIONS {
            t += days(exponential(self.rng, 1.0 / peak_rate));
            if t >= until {
                break;
            }
            let rate = base * (1.0 + 3.0 * self.ramp(t));
            if chance(self.rng, rate / peak_rate) {
                let end = self.session(t, None, None);
                t = t.max(end);
                count += 1;
            }
        }
    }

    /// The first form fill: the lead gets its id. Anonymous visitors are stitched by the `identify`.
    fn creation(&mut self, anonymous_first: bool) {
        let created = self.person.row.created_at;
        let traits = self.person.known.clone();
        if anonymous_first {
            let form = *weighted(
                self.rng,
                &[
                    ("ebook", 35.0),
                    ("newsletter", 20.0),
                    ("webinar", 15.0),
                    ("contact", 8.0),
                    ("free-assessment", 4.0 + 10.0 * self.person.truth.intent),
                    ("demo-request", 4.0 + 15.0 * self.person.truth.intent),
                ],
            );
            let kind = match form {
                "ebook" => PageKind::Resources,
                "newsletter" => PageKind::Newsletter,
                "webinar" => PageKind::Webinars,
                "contact" => PageKind::Contact,
                "free-assessment" => PageKind::Assessment,
                _ => PageKind::Demo,
            };
            let page = page_of_kind(self.rng, kind);
            let url = format!("{SITE}{}", page.path);
            let referrer = (*weighted(self.rng, REFERRERS)).to_owned();
            self.page_view(created - 40_000, page, &url, &referrer);
            let context = self.browser_context(page, &url, &referrer);
            self.push("identify", created, true, true, None, None, None, Some(traits), context);
            self.submit_form(created + 1_000, form, page, &url);
        } else {
            // Imported (trade show list, sales prospecting): the CRM identifies the lead server-side.
            let context = self.server_context();
            self.push("identify", created, true, false, None, None, None, Some(traits), context);
        }
        if let Some(account) = &self.person.account
            && chance(self.rng, 0.6)
        {
            let context =
                if anonymous_first { self.browser_context(&PAGES[0], SITE, "") } else { self.server_context() };
            let message = Message {
                kind: "group",
                message_id: uuid(self.rng),
                timestamp: created + 2_000,
                user_id: Some(self.user_id.clone()),
                anonymous_id: anonymous_first.then(|| self.anonymous_id.clone()),
                event: None,
                name: None,
                group_id: Some(account.id.clone()),
                properties: None,
                traits: Some(account.traits()),
                context,
            };
            self.out.push(message);
        }
    }

    /// The hand-raise at the peak of a journey: pricing, then the demo or assessment form.
    fn hand_raise(&mut self, journey: Journey) {
        let at = journey.peak;
        let pricing = page_of_kind(self.rng, PageKind::Pricing);
        let t = self.session(at, Some(pricing), None);
        let (kind, form) = if chance(self.rng, 0.7) {
            (PageKind::Demo, "demo-request")
        } else {
            (PageKind::Assessment, "free-assessment")
        };
        let page = page_of_kind(self.rng, kind);
        let url = format!("{SITE}{}", page.path);
        self.page_view(t, page, &url, &format!("{SITE}{}", pricing.path));
        self.submit_form(t + 45_000, form, page, &url);
    }

    /// Weekly marketing e-mails (Tuesdays 15:00 UTC) from creation until unsubscribe, purchase or end.
    fn emails(&mut self) {
        let created = self.person.row.created_at;
        let stop = match self.journey {
            Some(j) if j.outcome.is_conversion() => j.outcome_at.min(self.config.end),
            _ => self.config.end,
        };
        // 1970-01-01 was a Thursday: Tuesdays are days ≡ 5 (mod 7).
        let mut day = created / MS_PER_DAY + 1;
        while day.rem_euclid(7) != 5 {
            day += 1;
        }
        let persona = self.person.persona;
        let activity = (self.person.activity / 2.0).min(1.0);
        let mail_client = *pick(self.rng, MAIL_CLIENTS);
        loop {
            let sent = day * MS_PER_DAY + 15 * MS_PER_HOUR;
            if sent > stop {
                break;
            }
            let week = day / 7;
            let campaign_id = format!("cmp-{week}");
            let subject = CAMPAIGN_SUBJECTS[(week as usize) % CAMPAIGN_SUBJECTS.len()];
            let active = sent < self.active_until;
            let ramp = self.ramp(sent);
            let p_open = if active { 0.12 + 0.25 * activity + 0.35 * ramp } else { 0.04 };
            if chance(self.rng, p_open) {
                let opened = sent + (exponential(self.rng, 5.0) * MS_PER_HOUR as f64) as Millis;
                let context = json!({
                    "userAgent": mail_client,
                    "ip": random_ip(self.rng),
                    "library": {"name": LIBRARY_SERVER.0, "version": LIBRARY_SERVER.1},
                });
                self.server_track(
                    opened,
                    "Email Opened",
                    json!({"campaign_id": campaign_id, "campaign_name": subject, "email_subject": subject}),
                    context,
                );
                let p_click = if active { 0.06 + 0.2 * self.intent() + 0.4 * ramp } else { 0.01 };
                if chance(self.rng, p_click) {
                    let clicked = opened + int(self.rng, 5_000, 600_000);
                    let heat = self.heat(clicked);
                    let target = if chance(self.rng, 0.2 + 0.5 * heat) {
                        {
                            let kind = if chance(self.rng, 0.6) { PageKind::Pricing } else { PageKind::Product };
                            page_of_kind(self.rng, kind)
                        }
                    } else {
                        {
                            let kind = if chance(self.rng, 0.6) { PageKind::Blog } else { PageKind::Resources };
                            page_of_kind(self.rng, kind)
                        }
                    };
                    let link = format!(
                        "{SITE}{}?utm_source=newsletter&utm_medium=email&utm_campaign={campaign_id}",
                        target.path
                    );
                    let context = self.server_context();
                    self.server_track(
                        clicked,
                        "Email Clicked",
                        json!({"campaign_id": campaign_id, "campaign_name": subject, "link_url": link}),
                        context,
                    );
                    if chance(self.rng, 0.8) {
                        self.session(clicked + 3_000, Some(target), Some(String::new()));
                    }
                }
            }
            let p_unsubscribe = 0.004
                + if active { 0.0 } else { 0.02 }
                + if matches!(persona, Persona::JobSeeker | Persona::Student) { 0.02 } else { 0.0 };
            if chance(self.rng, p_unsubscribe) {
                let at = sent + (exponential(self.rng, 20.0) * MS_PER_HOUR as f64) as Millis;
                let context = self.server_context();
                self.server_track(
                    at,
                    "Unsubscribed",
                    json!({"campaign_id": campaign_id, "list": "newsletter"}),
                    context,
                );
                break;
            }
            day += 7;
        }
    }

    /// A free trial: `Signed Up`, then `Product Used` on some days for 14 days (or until the outcome).
    fn trial(&mut self, at: Millis) {
        let page = page_of_kind(self.rng, PageKind::Pricing);
        let url = format!("{SITE}/signup");
        self.browser_track(at, "Signed Up", json!({"plan": "trial", "method": "email"}), page, &url);
        let until = match self.journey {
            Some(j) if j.outcome.is_conversion() => j.outcome_at,
            _ => at + 14 * MS_PER_DAY,
        }
        .min(self.active_until);
        let context = json!({
            "ip": self.ip,
            "userAgent": self.user_agent,
            "library": {"name": LIBRARY_SERVER.0, "version": LIBRARY_SERVER.1},
        });
        let mut day = at / MS_PER_DAY;
        while day * MS_PER_DAY < until {
            let morning = day * MS_PER_DAY + 8 * MS_PER_HOUR;
            let p = 0.25 + 0.5 * self.ramp(morning).max(self.intent());
            if chance(self.rng, p) {
                let uses = (1 + poisson(self.rng, 2.0 * self.person.activity)).min(20);
                let mut t = morning.max(at + MS_PER_MINUTE) + int(self.rng, 0, 8 * MS_PER_HOUR);
                for _ in 0..uses {
                    if t >= until {
                        break;
                    }
                    let feature = *pick(self.rng, FEATURES);
                    self.server_track(t, "Product Used", json!({"feature": feature}), context.clone());
                    t += int(self.rng, 30_000, 1_800_000);
                }
            }
            day += 1;
        }
    }
}

fn page_of_kind(rng: &mut Rng, kind: PageKind) -> &'static Page {
    let count = PAGES.iter().filter(|p| p.kind == kind).count();
    let n = int(rng, 0, count as i64 - 1) as usize;
    PAGES.iter().filter(|p| p.kind == kind).nth(n).unwrap_or(&PAGES[0])
}

/// A page view by a browser that never identified itself (a visitor or a crawler).
fn anonymous_page(
    message_id: String,
    anonymous_id: &str,
    page: &Page,
    timestamp: Millis,
    referrer: &str,
    ip: &str,
    agent: &str,
) -> Message {
    let url = format!("{SITE}{}", page.path);
    Message {
        kind: "page",
        message_id,
        timestamp,
        user_id: None,
        anonymous_id: Some(anonymous_id.to_owned()),
        event: None,
        name: Some(page_name(page).to_owned()),
        group_id: None,
        properties: Some(page_fields(page, &url, referrer)),
        traits: None,
        context: json!({
            "ip": ip,
            "userAgent": agent,
            "library": {"name": LIBRARY_BROWSER.0, "version": LIBRARY_BROWSER.1},
            "page": page_fields(page, &url, referrer),
        }),
    }
}

/// A crawler reading the site: a burst of page views with a bot user agent and a fresh anonymous id.
fn bot_crawl(config: &Config, rng: &mut Rng, out: &mut Vec<Message>) {
    let (agent, prefix) = *weighted(rng, BOTS);
    let anonymous_id = uuid(rng);
    let ip = format!("{prefix}{}", int(rng, 1, 254));
    let mut t = config.start() + int(rng, 0, config.end - config.start() - MS_PER_HOUR);
    for _ in 0..(5 + poisson(rng, 20.0)) {
        let page = pick(rng, PAGES);
        out.push(anonymous_page(uuid(rng), &anonymous_id, page, t, "", &ip, agent));
        t += int(rng, 500, 5_000);
    }
}

/// A visitor who browses a little and never fills in a form.
fn anonymous_visit(config: &Config, rng: &mut Rng, out: &mut Vec<Message>) {
    let anonymous_id = uuid(rng);
    let ip = random_ip(rng);
    let agent = *weighted(rng, BROWSERS);
    let mut t = config.start() + int(rng, 0, config.end - config.start() - MS_PER_HOUR);
    let mut referrer = (*weighted(rng, REFERRERS)).to_owned();
    for _ in 0..(1 + poisson(rng, 1.5)) {
        let page = pick(rng, PAGES);
        out.push(anonymous_page(uuid(rng), &anonymous_id, page, t, &referrer, &ip, agent));
        referrer = format!("{SITE}{}", page.path);
        t += 15_000 + (exponential(rng, 70.0) * 1000.0) as Millis;
    }
}

/// Sorts by time (stably) and delivers about 1% of messages twice, right after the original.
fn deliver(mut messages: Vec<Message>, rng: &mut Rng) -> Vec<Message> {
    messages.sort_by_key(|m| m.timestamp);
    let mut out = Vec::with_capacity(messages.len() + messages.len() / 64 + 1);
    for message in messages {
        let twice = chance(rng, DUPLICATE_RATE);
        if twice {
            out.push(message.clone());
        }
        out.push(message);
    }
    out
}

/// Simulates one lead's history.
pub fn simulate(config: &Config, person: &Person, rng: &mut Rng) -> LeadRecord {
    let created = person.row.created_at;
    let end = config.end;
    let intent = person.truth.intent;
    let persona = person.persona;
    let poor_fit = person.truth.icp_fit < 0.35 || matches!(persona, Persona::JobSeeker | Persona::Student);

    // Buyers always raise their hands; some others do too and are lost or disqualified.
    let journey = if person.buys {
        Some(if chance(rng, 0.1) { OutcomeKind::Converted } else { OutcomeKind::Won })
    } else if chance(rng, if poor_fit { 0.25 * intent + 0.02 } else { 0.6 * intent }) {
        Some(if poor_fit { OutcomeKind::Disqualified } else { OutcomeKind::Lost })
    } else {
        None
    }
    .map(|outcome| {
        let peak = created + days(2.0 + 18.0 * gamma(rng, 2.0));
        let delay = match outcome {
            OutcomeKind::Won | OutcomeKind::Converted => 7.0 + exponential(rng, 14.0),
            OutcomeKind::Lost => 10.0 + exponential(rng, 20.0),
            OutcomeKind::Disqualified => 1.0 + exponential(rng, 2.0),
        };
        Journey { peak, outcome, outcome_at: peak + days(delay) }
    });

    let mut outcome = journey.filter(|j| j.outcome_at <= end).map(|j| Outcome { kind: j.outcome, at: j.outcome_at });
    if journey.is_none() && matches!(persona, Persona::JobSeeker | Persona::Student) && chance(rng, 0.4) {
        let at = created + days(1.0 + exponential(rng, 5.0));
        if at <= end {
            outcome = Some(Outcome { kind: OutcomeKind::Disqualified, at });
        }
    }

    // Going cold: many leads stop engaging a few weeks after their first form.
    let cold_at =
        if journey.is_none() && chance(rng, 0.5 - 0.4 * intent) { created + days(exponential(rng, 21.0)) } else { end };
    let stops_at_outcome =
        journey.filter(|j| matches!(j.outcome, OutcomeKind::Won | OutcomeKind::Converted | OutcomeKind::Lost));
    let active_until = stops_at_outcome.map_or(end, |j| j.outcome_at.min(end)).min(cold_at);

    let mut sim = Sim {
        config,
        person,
        rng,
        out: Vec::new(),
        user_id: person.row.id.clone(),
        anonymous_id: String::new(),
        user_agent: "",
        ip: String::new(),
        journey,
        active_until,
        hidden: person.hidden.clone(),
    };
    sim.anonymous_id = uuid(sim.rng);
    sim.user_agent = *weighted(sim.rng, BROWSERS);
    sim.ip = random_ip(sim.rng);

    // Anonymous research before the first form (stitched later by the `identify`).
    let anonymous_first = chance(sim.rng, 0.65);
    if anonymous_first {
        let first_seen = created - days(exponential(sim.rng, 9.0).min(45.0));
        sim.sessions(first_seen, created - 5 * MS_PER_MINUTE);
    }
    sim.creation(anonymous_first);
    sim.sessions(created + MS_PER_HOUR, active_until);
    if let Some(j) = journey
        && j.peak <= active_until
    {
        sim.hand_raise(j);
    }
    let trial_at = match journey {
        Some(j) => {
            let p = match j.outcome {
                OutcomeKind::Won | OutcomeKind::Converted => 0.55,
                OutcomeKind::Lost => 0.3,
                OutcomeKind::Disqualified => 0.1,
            };
            chance(sim.rng, p).then(|| (j.peak - days(uniform(sim.rng, 0.0, 10.0))).max(created + MS_PER_HOUR))
        }
        None => chance(sim.rng, if persona == Persona::Student { 0.1 } else { 0.04 })
            .then(|| created + int(sim.rng, MS_PER_HOUR, (active_until - created).max(2 * MS_PER_HOUR))),
    };
    if let Some(at) = trial_at
        && at < active_until
    {
        sim.trial(at);
    }
    sim.emails();

    let rng = sim.rng;
    let mut lead_events: Vec<Message> = sim.out;
    lead_events.retain(|m| m.timestamp <= end);
    let mut events = deliver(lead_events, rng);

    // Unrelated traffic of the same period.
    let mut other = Vec::new();
    if chance(rng, 0.06) {
        bot_crawl(config, rng, &mut other);
    }
    if chance(rng, 0.35) {
        anonymous_visit(config, rng, &mut other);
    }
    events.extend(deliver(other, rng));

    LeadRecord { lead: person.row.clone(), events, outcome, truth: person.truth }
}
