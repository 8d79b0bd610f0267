//! The built-in functions: what names exist (for the compiler) and what they compute.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use super::value::{EvalError, Value, format_duration, no_overload, no_overload1};
use crate::time::{self, MS_PER_DAY, MS_PER_SECOND, Millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Size,
    StartsWith,
    EndsWith,
    Contains,
    Matches,
    LowerAscii,
    UpperAscii,
    Trim,
    Int,
    UInt,
    Double,
    String,
    Bool,
    Timestamp,
    Duration,
    EmailDomain,
    IsFreeEmail,
    DaysSince,
}

/// How a function may be called: `name(args)` with `global` arguments, and/or
/// `receiver.name(args)` with `method` arguments after the receiver.
pub(crate) struct FuncDef {
    pub(crate) name: &'static str,
    pub(crate) func: Func,
    pub(crate) global: Option<usize>,
    pub(crate) method: Option<usize>,
}

const fn global(name: &'static str, func: Func, arity: usize) -> FuncDef {
    FuncDef { name, func, global: Some(arity), method: None }
}

const fn method(name: &'static str, func: Func, arity: usize) -> FuncDef {
    FuncDef { name, func, global: None, method: Some(arity) }
}

pub(crate) const FUNCTIONS: &[FuncDef] = &[
    FuncDef { name: "size", func: Func::Size, global: Some(1), method: Some(0) },
    method("startsWith", Func::StartsWith, 1),
    method("endsWith", Func::EndsWith, 1),
    method("contains", Func::Contains, 1),
    FuncDef { name: "matches", func: Func::Matches, global: Some(2), method: Some(1) },
    method("lowerAscii", Func::LowerAscii, 0),
    method("upperAscii", Func::UpperAscii, 0),
    method("trim", Func::Trim, 0),
    global("int", Func::Int, 1),
    global("uint", Func::UInt, 1),
    global("double", Func::Double, 1),
    global("string", Func::String, 1),
    global("bool", Func::Bool, 1),
    global("timestamp", Func::Timestamp, 1),
    global("duration", Func::Duration, 1),
    global("email_domain", Func::EmailDomain, 1),
    global("is_free_email", Func::IsFreeEmail, 1),
    global("days_since", Func::DaysSince, 1),
];

/// Macros the compiler expands: `has` is called like a function, the others like methods.
pub(crate) const MACROS: &[&str] = &["has", "all", "exists", "exists_one", "map", "filter"];

impl Func {
    /// Whether the result depends only on the arguments (so constant arguments fold).
    pub(crate) fn is_pure(self) -> bool {
        self != Func::DaysSince
    }

    pub(crate) fn name(self) -> &'static str {
        FUNCTIONS.iter().find(|d| d.func == self).map_or("?", |d| d.name)
    }
}

/// FNV-1a: a fast hash for short keys (domains, literal strings) that no user picks adversarially
/// against a fixed list.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = self.0;
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

pub(crate) type FnvBuild = BuildHasherDefault<Fnv>;

static FREE_EMAIL_DOMAINS: LazyLock<HashSet<&'static str, FnvBuild>> = LazyLock::new(|| {
    include_str!("free_email_domains.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// Whether `domain` (already trimmed) is a free or disposable mail provider.
pub(crate) fn is_free_domain(domain: &str) -> bool {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        FREE_EMAIL_DOMAINS.contains(domain.to_ascii_lowercase().as_str())
    } else {
        FREE_EMAIL_DOMAINS.contains(domain)
    }
}

fn string_arg<'r>(func: Func, value: Value<'r>) -> Result<Cow<'r, str>, EvalError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(no_overload1(func.name(), &other)),
    }
}

/// Applies `f` to a string, borrowing from the original when it was borrowed.
fn map_str<'r>(s: Cow<'r, str>, f: impl FnOnce(&str) -> &str) -> Cow<'r, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(f(b)),
        Cow::Owned(o) => Cow::Owned(f(&o).to_owned()),
    }
}

fn lower_ascii(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(s.to_ascii_lowercase()) } else { s }
}

const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// One-argument functions (for methods, the argument is the receiver).
pub(crate) fn call1(func: Func, arg: Value<'_>, as_of: Millis) -> Result<Value<'_>, EvalError> {
    match func {
        Func::Size => {
            if let Value::String(s) = &arg {
                return Ok(Value::Int(s.chars().count() as i64));
            }
            if let Some(list) = arg.list() {
                return Ok(Value::Int(list.len() as i64));
            }
            if let Some(map) = arg.map() {
                return Ok(Value::Int(map.len() as i64));
            }
            Err(no_overload1("size", &arg))
        }
        Func::LowerAscii => Ok(Value::String(lower_ascii(string_arg(func, arg)?))),
        Func::UpperAscii => {
            let s = string_arg(func, arg)?;
            Ok(Value::String(if s.bytes().any(|b| b.is_ascii_lowercase()) {
                Cow::Owned(s.to_ascii_uppercase())
            } else {
                s
            }))
        }
        Func::Trim => Ok(Value::String(map_str(string_arg(func, arg)?, str::trim))),
        Func::Int => to_int(arg),
        Func::UInt => to_uint(arg),
        Func::Double => match arg {
            Value::Double(d) => Ok(Value::Double(d)),
            Value::Int(i) => Ok(Value::Double(i as f64)),
            Value::UInt(u) => Ok(Value::Double(u as f64)),
            Value::String(s) => s.trim().parse::<f64>().map(Value::Double).map_err(|_| EvalError::Conversion("double")),
            other => Err(no_overload1("double", &other)),
        },
        Func::String => to_string(arg),
        Func::Bool => match arg {
            Value::Bool(b) => Ok(Value::Bool(b)),
            Value::String(s) => match s.as_ref() {
                "1" | "t" | "true" | "TRUE" | "True" => Ok(Value::Bool(true)),
                "0" | "f" | "false" | "FALSE" | "False" => Ok(Value::Bool(false)),
                _ => Err(EvalError::Conversion("bool")),
            },
            other => Err(no_overload1("bool", &other)),
        },
        Func::Timestamp => match arg {
            Value::Timestamp(t) => Ok(Value::Timestamp(t)),
            Value::String(s) => {
                time::parse_timestamp(&s).map(Value::Timestamp).ok_or(EvalError::Conversion("timestamp"))
            }
            Value::Int(seconds) => seconds.checked_mul(MS_PER_SECOND).map(Value::Timestamp).ok_or(EvalError::Overflow),
            other => Err(no_overload1("timestamp", &other)),
        },
        Func::Duration => match arg {
            Value::Duration(d) => Ok(Value::Duration(d)),
            Value::String(s) => parse_duration(&s).map(Value::Duration).ok_or(EvalError::Conversion("duration")),
            other => Err(no_overload1("duration", &other)),
        },
        Func::EmailDomain => {
            let s = string_arg(func, arg)?;
            let domain = map_str(s, |s| {
                let s = s.trim();
                s.rfind('@').map_or("", |at| s[at + 1..].trim())
            });
            if domain.is_empty() {
                return Err(EvalError::InvalidArgument("email_domain"));
            }
            Ok(Value::String(lower_ascii(domain)))
        }
        Func::IsFreeEmail => {
            let s = string_arg(func, arg)?;
            let s = s.trim();
            let domain = s.rfind('@').map_or(s, |at| s[at + 1..].trim());
            if domain.is_empty() {
                return Err(EvalError::InvalidArgument("is_free_email"));
            }
            Ok(Value::Bool(is_free_domain(domain)))
        }
        Func::DaysSince => {
            let then = match arg {
                Value::Timestamp(t) => t,
                Value::String(s) => time::parse_timestamp(&s).ok_or(EvalError::InvalidArgument("days_since"))?,
                other => return Err(no_overload1("days_since", &other)),
            };
            Ok(Value::Double((as_of as f64 - then as f64) / MS_PER_DAY as f64))
        }
        Func::StartsWith | Func::EndsWith | Func::Contains | Func::Matches => Err(no_overload1(func.name(), &arg)),
    }
}

/// Two-argument functions (for methods, the first argument is the receiver).
pub(crate) fn call2<'r>(func: Func, lhs: Value<'r>, rhs: Value<'r>) -> Result<Value<'r>, EvalError> {
    let (Value::String(s), Value::String(p)) = (&lhs, &rhs) else {
        return Err(no_overload(func.name(), &lhs, &rhs));
    };
    Ok(Value::Bool(match func {
        Func::StartsWith => s.starts_with(p.as_ref()),
        Func::EndsWith => s.ends_with(p.as_ref()),
        Func::Contains => s.contains(p.as_ref()),
        Func::Matches => regex::Regex::new(p).map_err(|_| EvalError::InvalidRegex)?.is_match(s),
        _ => return Err(no_overload(func.name(), &lhs, &rhs)),
    }))
}

/// `duration()` text: what `time::Duration::parse` accepts, optionally negated.
pub(crate) fn parse_duration(text: &str) -> Option<Millis> {
    let text = text.trim();
    match text.strip_prefix('-') {
        Some(rest) => time::Duration::parse(rest).ok().map(|d| -d.as_millis()),
        None => time::Duration::parse(text).ok().map(time::Duration::as_millis),
    }
}

fn to_int(arg: Value<'_>) -> Result<Value<'_>, EvalError> {
    match arg {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::UInt(u) => i64::try_from(u).map(Value::Int).map_err(|_| EvalError::Conversion("int")),
        Value::Double(d) if d.is_finite() && (-TWO_POW_63..TWO_POW_63).contains(&d) => Ok(Value::Int(d.trunc() as i64)),
        Value::Double(_) => Err(EvalError::Conversion("int")),
        Value::String(s) => s.trim().parse::<i64>().map(Value::Int).map_err(|_| EvalError::Conversion("int")),
        Value::Timestamp(t) => Ok(Value::Int(t.div_euclid(MS_PER_SECOND))),
        other => Err(no_overload1("int", &other)),
    }
}

fn to_uint(arg: Value<'_>) -> Result<Value<'_>, EvalError> {
    match arg {
        Value::UInt(u) => Ok(Value::UInt(u)),
        Value::Int(i) => u64::try_from(i).map(Value::UInt).map_err(|_| EvalError::Conversion("uint")),
        Value::Double(d) if d.is_finite() && d > -1.0 && d < TWO_POW_64 => Ok(Value::UInt(d.trunc() as u64)),
        Value::Double(_) => Err(EvalError::Conversion("uint")),
        Value::String(s) => s.trim().parse::<u64>().map(Value::UInt).map_err(|_| EvalError::Conversion("uint")),
        other => Err(no_overload1("uint", &other)),
    }
}

fn to_string(arg: Value<'_>) -> Result<Value<'_>, EvalError> {
    let text = match arg {
        Value::String(s) => return Ok(Value::String(s)),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Timestamp(t) => time::format_timestamp(t),
        Value::Duration(d) => format_duration(d),
        other => return Err(no_overload1("string", &other)),
    };
    Ok(Value::String(Cow::Owned(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_mail_list_is_loaded_and_skips_comments() {
        assert!(FREE_EMAIL_DOMAINS.len() > 10_000);
        assert!(!FREE_EMAIL_DOMAINS.iter().any(|d| d.starts_with('#') || d.contains(' ')));
        for domain in ["gmail.com", "yahoo.co.uk", "hotmail.fr", "gmx.de", "web.de", "mail.ru", "qq.com"] {
            assert!(is_free_domain(domain), "{domain}");
        }
        assert!(is_free_domain("GMail.com."));
        assert!(!is_free_domain("acme-corp.com"));
    }

    #[test]
    fn durations_accept_a_sign() {
        assert_eq!(parse_duration("90d"), Some(90 * MS_PER_DAY));
        assert_eq!(parse_duration(" -1h "), Some(-3_600_000));
        assert_eq!(parse_duration("90"), None);
    }
}
