//! The quality of a lead's answers (the seeds' "bad lead data"): a free or disposable mail
//! address on a B2B form, placeholder answers (`test`, `asdf`, `n/a`), and an e-mail domain that
//! does not match the company. Flags only: they change no score (a model can read the same
//! signals with `is_free_email`), but sales and marketing see them before they call.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::cel::functions::is_free_domain;

/// One problem with a lead's traits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QualityFlag {
    /// `free_email`, `disposable_email`, `placeholder`, `domain_mismatch`.
    pub code: &'static str,
    /// The trait at fault.
    #[serde(rename = "trait")]
    pub trait_name: String,
    pub message: String,
}

/// Throwaway-address providers (a short list of the common ones; the free-mail list behind
/// `is_free_email` has them too, but they deserve their own word).
const DISPOSABLE: [&str; 16] = [
    "mailinator.com",
    "guerrillamail.com",
    "guerrillamail.net",
    "sharklasers.com",
    "10minutemail.com",
    "temp-mail.org",
    "tempmail.com",
    "yopmail.com",
    "trashmail.com",
    "dispostable.com",
    "getnada.com",
    "maildrop.cc",
    "throwawaymail.com",
    "fakeinbox.com",
    "mailnesia.com",
    "mintemail.com",
];

/// Answers people type to get past a form.
const PLACEHOLDERS: [&str; 22] = [
    "test", "testing", "asdf", "asdfgh", "qwerty", "n/a", "na", "none", "null", "nil", "-", ".", "x", "xx", "xxx",
    "abc", "123", "1234", "unknown", "tbd", "no", "nothing",
];

/// Company name words that are no part of a domain.
const LEGAL: [&str; 12] =
    ["inc", "ltd", "llc", "gmbh", "corp", "corporation", "co", "company", "sa", "ag", "plc", "limited"];

pub(crate) fn is_placeholder(text: &str) -> bool {
    let t = text.trim().to_ascii_lowercase();
    PLACEHOLDERS.contains(&t.as_str()) || (t.len() >= 3 && t.chars().all(|c| c == t.chars().next().unwrap_or(' ')))
}

/// Letters and digits only, lower case.
fn squash(text: &str) -> String {
    text.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// The flags of a lead's traits, in a fixed order.
pub fn quality_flags(traits: &Map<String, Value>) -> Vec<QualityFlag> {
    let mut out = Vec::new();
    let email = traits.get("email").and_then(Value::as_str).map(str::trim).filter(|e| !e.is_empty());
    let domain = email.and_then(|e| e.rsplit_once('@')).map(|(local, domain)| (local, domain.to_ascii_lowercase()));
    if let (Some(email), Some((local, domain))) = (email, &domain) {
        if DISPOSABLE.contains(&domain.as_str()) {
            out.push(QualityFlag {
                code: "disposable_email",
                trait_name: "email".into(),
                message: format!("`{email}` is a throwaway address"),
            });
        } else if is_free_domain(domain) {
            out.push(QualityFlag {
                code: "free_email",
                trait_name: "email".into(),
                message: format!("`{email}` is a free mail address, not a company one"),
            });
        }
        if is_placeholder(local) {
            out.push(QualityFlag {
                code: "placeholder",
                trait_name: "email".into(),
                message: format!("`{email}` looks made up"),
            });
        }
    }
    for (name, value) in traits {
        if let Value::String(text) = value
            && name != "email"
            && is_placeholder(text)
        {
            out.push(QualityFlag {
                code: "placeholder",
                trait_name: name.clone(),
                message: format!("`{}` is a placeholder, not an answer", text.trim()),
            });
        }
    }
    let company = traits.get("company").and_then(Value::as_str).filter(|c| !is_placeholder(c));
    if let (Some(company), Some((_, domain))) = (company, &domain)
        && !is_free_domain(domain)
        && !DISPOSABLE.contains(&domain.as_str())
    {
        // The domain's name part (`acme` of `mail.acme.co.uk`: the longest label but the suffix).
        let labels: Vec<&str> = domain.split('.').collect();
        let name = labels.iter().take(labels.len().saturating_sub(1)).max_by_key(|l| l.len()).copied().unwrap_or("");
        let words: Vec<String> = company
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(str::to_ascii_lowercase)
            .filter(|w| !w.is_empty() && !LEGAL.contains(&w.as_str()))
            .collect();
        let joined = squash(&words.join(""));
        let name = squash(name);
        let matches = !joined.is_empty()
            && !name.is_empty()
            && (joined.contains(&name)
                || name.contains(&joined)
                || words.iter().any(|w| w.len() >= 3 && name.contains(w.as_str())));
        if !matches && !joined.is_empty() {
            out.push(QualityFlag {
                code: "domain_mismatch",
                trait_name: "email".into(),
                message: format!("`{domain}` does not look like {company}'s domain"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn codes(v: Value) -> Vec<(&'static str, String)> {
        quality_flags(v.as_object().unwrap()).into_iter().map(|f| (f.code, f.trait_name)).collect()
    }

    #[test]
    fn bad_answers_are_flagged_and_good_ones_are_not() {
        assert_eq!(codes(json!({"email": "ada@acme.com", "company": "Acme Inc.", "title": "CTO"})), vec![]);
        assert_eq!(codes(json!({"email": "ada@mail.acme-robotics.co.uk", "company": "Acme Robotics Ltd"})), vec![]);
        assert_eq!(codes(json!({"email": "ada@gmail.com", "company": "Acme"})), [("free_email", "email".to_owned())]);
        assert_eq!(codes(json!({"email": "sam@mailinator.com"})), [("disposable_email", "email".to_owned())]);
        assert_eq!(
            codes(json!({"email": "test@acme.com", "company": "Acme", "title": "asdf", "phone": "n/a"})),
            [
                ("placeholder", "email".to_owned()),
                ("placeholder", "phone".to_owned()),
                ("placeholder", "title".to_owned())
            ]
        );
        assert_eq!(
            codes(json!({"email": "bob@globex.com", "company": "Initech"})),
            [("domain_mismatch", "email".to_owned())]
        );
        assert_eq!(codes(json!({"title": "aaaa"})), [("placeholder", "title".to_owned())], "one key held down");
        assert_eq!(codes(json!({"employees": 12, "country": "US"})), vec![], "numbers and real answers pass");
    }
}
