//! Behaviour tests for the condition language: what users write and what it means.

use std::ops::Range;
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::time::{MS_PER_DAY, parse_timestamp};

const VARS: &[&str] = &["event", "lead"];

fn lead() -> serde_json::Value {
    json!({
        "id": "L-1",
        "title": "Chief Technology Officer",
        "email": "Jane.Doe@Acme.com",
        "employees": 500,
        "department": "IT",
        "country": "DE",
        "budget": null,
        "tags": ["vip", "trial"],
        "mixed": [1, "a"],
        "pattern": "(unclosed",
        "not_a_number": "abc",
        "created_at": "2024-01-01T00:00:00Z",
        "score": 12.5,
        "active": true,
        "first-name": "Jane",
        "account": {"industry": "Software", "employees": 1200, "domain": "acme.com"}
    })
}

fn event() -> serde_json::Value {
    json!({
        "type": "page",
        "event": null,
        "properties": {"path": "/careers/engineer", "title": "Jobs"},
        "context": {"userAgent": "Mozilla/5.0 (compatible; Googlebot/2.1)"},
        "timestamp": "2024-05-01T12:00:00Z"
    })
}

fn as_of() -> Millis {
    parse_timestamp("2024-01-11T12:00:00Z").unwrap()
}

fn program(src: &str) -> Program {
    compile(src, VARS).unwrap_or_else(|errors| panic!("`{src}` failed to compile: {errors:?}"))
}

#[test]
fn flattened_programs_read_extracted_slots() {
    let mut fields = FlatFields::default();
    let a = program(r#"event.type == "page" && event.properties.path.startsWith("/careers")"#).flatten(0, &mut fields);
    let b = program(r#"has(event.context.userAgent) && event.properties.path.size() > 3"#).flatten(0, &mut fields);
    assert_eq!(fields.len(), 3, "one slot per distinct path: {:?}", fields.paths());
    let mut presence = FlatFields::default();
    let _ = program("has(event.context) && has(event.context.userAgent) && event.context.userAgent.size() > 1")
        .flatten(0, &mut presence);
    assert!(presence.presence_only(0) && !presence.presence_only(1), "{:?}", presence.paths());
    let slots = fields.extract(&event());
    let vars = [Binding::Flat(&slots), Binding::Json(&lead())];
    let act = Activation { vars: &vars, as_of: as_of() };
    assert!(a.matches(&act) && b.matches(&act));
    assert!(!program("event.type == \"page\"").reads_clock());
    assert!(program("days_since(lead.created_at) > 1").reads_clock());
    assert!(program("event.type == lead.title").reads_var(1));
    assert!(!program("event.type == \"x\"").reads_var(1));
}

/// Evaluates against the fixture event and lead.
fn eval(src: &str) -> Result<Value<'static>, EvalError> {
    let (event, lead) = (event(), lead());
    let vars = [Binding::Json(&event), Binding::Json(&lead)];
    program(src).evaluate(&Activation { vars: &vars, as_of: as_of() }).map(|v| v.to_owned_value())
}

/// Whether the condition matches the fixture event and lead. Every call also checks that the
/// program flattened over `event` (slots extracted ahead of time) gives the same answer.
fn holds(src: &str) -> bool {
    let (event, lead) = (event(), lead());
    let vars = [Binding::Json(&event), Binding::Json(&lead)];
    let program = program(src);
    let json = program.matches(&Activation { vars: &vars, as_of: as_of() });
    let mut fields = FlatFields::default();
    let flat = program.flatten(0, &mut fields);
    let slots = fields.extract(&event);
    let flat_vars = [Binding::Flat(&slots), Binding::Json(&lead)];
    assert_eq!(flat.matches(&Activation { vars: &flat_vars, as_of: as_of() }), json, "flattened `{src}`");
    json
}

fn errors(src: &str, vars: &[&str]) -> Vec<(Range<usize>, String)> {
    match compile(src, vars) {
        Ok(_) => panic!("`{src}` compiled"),
        Err(errors) => errors.into_iter().map(|e| (e.span, e.message)).collect(),
    }
}

fn one_error(src: &str) -> (Range<usize>, String) {
    let mut all = errors(src, VARS);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn s(text: &str) -> Value<'static> {
    Value::String(text.to_owned().into())
}

fn list(items: Vec<Value<'static>>) -> Value<'static> {
    Value::List(Arc::new(items))
}

#[test]
fn literals_evaluate_to_their_values() {
    assert_eq!(eval("42"), Ok(Value::Int(42)));
    assert_eq!(eval("0x2A"), Ok(Value::Int(42)));
    assert_eq!(eval("42u"), Ok(Value::UInt(42)));
    assert_eq!(eval("1.5"), Ok(Value::Double(1.5)));
    assert_eq!(eval("1e3"), Ok(Value::Double(1000.0)));
    assert_eq!(eval("-9223372036854775808"), Ok(Value::Int(i64::MIN)));
    assert_eq!(eval(r#""a\tb""#), Ok(s("a\tb")));
    assert_eq!(eval(r"'it\'s'"), Ok(s("it's")));
    assert_eq!(eval(r#"r"\d+""#), Ok(s(r"\d+")));
    assert_eq!(eval("'''two\nlines'''"), Ok(s("two\nlines")));
    assert_eq!(eval("true"), Ok(Value::Bool(true)));
    assert_eq!(eval("null"), Ok(Value::Null));
    assert_eq!(eval("[1, 'a', [true]]"), Ok(list(vec![Value::Int(1), s("a"), list(vec![Value::Bool(true)])])));
    assert_eq!(eval("{'k': 1}"), Ok(Value::Map(Arc::new(vec![(s("k"), Value::Int(1))]))));
}

#[test]
fn operators_bind_with_cel_precedence() {
    assert!(holds("1 + 2 * 3 == 7"));
    assert!(holds("(1 + 2) * 3 == 9"));
    assert!(holds("10 - 2 - 3 == 5"));
    assert!(holds("-2 * 3 == -6"));
    assert!(holds("!false && true"));
    assert!(holds("true || false && false"));
    assert!(!holds("(true || false) && false"));
    assert!(holds("1 < 2 == true"));
    assert!(holds("false ? false : true ? true : false"));
    assert!(holds("lead.employees > 100 ? lead.department == 'IT' : false"));
    assert!(holds("!!true"));
}

#[test]
fn int_arithmetic_truncates_and_overflow_is_an_error() {
    assert_eq!(eval("7 / 2"), Ok(Value::Int(3)));
    assert_eq!(eval("-7 / 2"), Ok(Value::Int(-3)));
    assert_eq!(eval("-7 % 3"), Ok(Value::Int(-1)));
    assert_eq!(eval("7u / 2u"), Ok(Value::UInt(3)));
    assert_eq!(eval("lead.employees / 1000"), Ok(Value::Double(0.5)));
    assert_eq!(eval("lead.employees % 7.0"), Ok(Value::Double(3.0)));
    assert_eq!(eval("int(lead.employees) * 9223372036854775807"), Err(EvalError::Overflow));
    assert_eq!(eval("int(lead.employees) / 0"), Err(EvalError::DivisionByZero));
    assert_eq!(eval("lead.employees / 0"), Err(EvalError::DivisionByZero));
    assert_eq!(eval("lead.employees % 0"), Err(EvalError::DivisionByZero));
    assert!(matches!(eval("int(lead.employees) + 1u"), Err(EvalError::NoOverload { op: "+", .. })));
    assert_eq!(eval("int(lead.employees) - 1u + 0.5"), Err(EvalError::NoOverload { op: "-", lhs: "int", rhs: "uint" }));
    assert_eq!(eval("lead.country + '-' + lead.department"), Ok(s("DE-IT")));
    assert_eq!(eval("lead.tags + ['x']"), Ok(list(vec![s("vip"), s("trial"), s("x")])));
    assert_eq!(eval("-lead.score"), Ok(Value::Double(-12.5)));
    assert!(!holds("-lead.title == 'x'"));
}

#[test]
fn int_and_double_arithmetic_promotes_to_double() {
    assert_eq!(eval("1 + 1.5"), Ok(Value::Double(2.5)));
    assert_eq!(eval("lead.employees + 1"), Ok(Value::Double(501.0)));
    assert_eq!(eval("3 * 0.5"), Ok(Value::Double(1.5)));
    assert_eq!(eval("1u + 0.5"), Ok(Value::Double(1.5)));
}

#[test]
fn numbers_compare_across_int_uint_and_double() {
    assert!(holds("lead.employees >= 500"));
    assert!(holds("lead.employees == 500"));
    assert!(holds("lead.employees == 500u"));
    assert!(holds("lead.employees < 500.5"));
    assert!(!holds("lead.employees > 500"));
    assert!(holds("1 == 1.0"));
    assert!(holds("1u == 1"));
    assert!(holds("-1 < 0u"));
    assert!(holds("2 > 1.5"));
    assert!(holds("lead.score > 12 && lead.score < 13"));
    assert!(holds("lead.account.employees in [1200, 5000]"));
    assert!(holds("500 in [lead.employees]"));
}

#[test]
fn equality_between_different_types_is_false_not_an_error() {
    assert_eq!(eval("lead.title == 5"), Ok(Value::Bool(false)));
    assert_eq!(eval("lead.title != 5"), Ok(Value::Bool(true)));
    assert_eq!(eval("lead.employees == '500'"), Ok(Value::Bool(false)));
    assert_eq!(eval("lead.budget == null"), Ok(Value::Bool(true)));
    assert_eq!(eval("lead.title == null"), Ok(Value::Bool(false)));
    assert_eq!(eval("lead.tags == ['vip', 'trial']"), Ok(Value::Bool(true)));
    assert_eq!(eval("lead.tags == ['trial', 'vip']"), Ok(Value::Bool(false)));
    assert_eq!(
        eval("lead.account == {'employees': 1200, 'industry': 'Software', 'domain': 'acme.com'}"),
        Ok(Value::Bool(true))
    );
    assert_eq!(eval("lead.account == {'employees': 1200}"), Ok(Value::Bool(false)));
    assert!(matches!(eval("lead.title < 5"), Err(EvalError::NoOverload { op: "<", lhs: "string", rhs: "int" })));
    assert!(!holds("lead.title < 5"));
    assert!(!holds("lead.tags < lead.tags"));
}

#[test]
fn strings_bools_timestamps_and_durations_order() {
    assert!(holds("'a' < 'b' && 'B' < 'a' && 'ab' > 'a'"));
    assert!(holds("lead.country >= 'DE' && lead.country <= 'DE'"));
    assert!(holds("false < true"));
    assert!(holds("timestamp('2024-01-01') < timestamp('2024-01-02T00:00:00Z')"));
    assert!(holds("duration('1h') < duration('1d')"));
    assert!(holds("timestamp(lead.created_at) == timestamp('2024-01-01')"));
    assert!(!holds("timestamp(lead.created_at) < lead.created_at"));
}

#[test]
fn any_evaluation_error_makes_the_condition_false() {
    for src in [
        "lead.missing == 'x'",
        "lead.missing != 'x'",
        "lead.budget.amount > 10",
        "lead.title.startsWith(lead.employees) == false",
        "lead.employees.startsWith('5')",
        "int(lead.not_a_number) > 0",
        "lead.tags[5] == 'x'",
        "lead.tags['x'] == 'x'",
        "lead.employees / 0 > 1",
        "lead.title",
        "lead.employees",
        "lead.title.matches(lead.pattern)",
        "email_domain(lead.title) == ''",
        "days_since(lead.title) > 1",
        "lead.missing ? true : true",
    ] {
        assert!(!holds(src), "{src}");
    }
    assert_eq!(eval("lead.missing"), Err(EvalError::NoSuchKey));
    assert_eq!(eval("lead.budget.amount"), Err(EvalError::NoSuchKey));
    assert_eq!(eval("lead.tags[5]"), Err(EvalError::IndexOutOfRange));
    assert_eq!(eval("lead.title.matches(lead.pattern)"), Err(EvalError::InvalidRegex));
    assert_eq!(eval("int(lead.not_a_number)"), Err(EvalError::Conversion("int")));
}

#[test]
fn and_or_absorb_errors_the_cel_way_but_not_does_not() {
    assert_eq!(eval("false && lead.missing == 1"), Ok(Value::Bool(false)));
    assert_eq!(eval("lead.missing == 1 && false"), Ok(Value::Bool(false)));
    assert_eq!(eval("lead.missing == 1 || true"), Ok(Value::Bool(true)));
    assert_eq!(eval("true || lead.missing == 1"), Ok(Value::Bool(true)));
    assert_eq!(eval("lead.missing == 1 && lead.department == 'Sales'"), Ok(Value::Bool(false)));
    assert_eq!(eval("lead.missing == 1 || lead.department == 'IT'"), Ok(Value::Bool(true)));
    assert_eq!(eval("lead.missing == 1 && lead.department == 'IT'"), Err(EvalError::NoSuchKey));
    assert_eq!(eval("lead.missing == 1 || lead.department == 'Sales'"), Err(EvalError::NoSuchKey));
    assert_eq!(eval("!(lead.missing == 1)"), Err(EvalError::NoSuchKey));
    // The reported error is the first unabsorbed one.
    assert_eq!(eval("int(lead.not_a_number) > 0 && lead.missing == 1"), Err(EvalError::Conversion("int")));
    assert_eq!(eval("lead.missing == 1 && (int(lead.not_a_number) > 0 || true)"), Err(EvalError::NoSuchKey));
    assert_eq!(eval("lead.missing == 1 && lead.tags.all(t, int(t) > 0 || true)"), Err(EvalError::NoSuchKey));
    assert!(!holds("!(lead.missing == 1)"));
    assert!(!holds("!lead.missing.startsWith('x')"));
    // A non-bool operand is an error that a decisive operand absorbs, too.
    assert!(holds("lead.title || true"));
    assert!(!holds("lead.title && true"));
}

#[test]
fn has_is_true_only_for_present_non_null_fields() {
    assert!(holds("has(lead.title)"));
    assert!(holds("has(lead.account.industry)"));
    assert!(!holds("has(lead.budget)"), "explicit null counts as absent");
    assert!(!holds("has(lead.nope)"));
    assert!(!holds("has(lead.nope.deeper)"), "a missing parent is false, not an error");
    assert!(!holds("has(lead.budget.amount)"));
    assert!(!holds("has(lead.title.length)"));
    assert!(holds("!has(lead.nope.deeper)"));
    assert!(holds("has(event.context.userAgent) && event.context.userAgent.matches('(?i)bot|crawler|spider')"));
    assert!(!holds("has(event.event)"));
    assert!(holds("lead.tags.exists(t, has({'k': t}.k))"));
    assert!(!holds("[{'k': null}].exists(m, has(m.k))"));
    assert!(holds("has({'k': 1}.k)"));
}

#[test]
fn fields_are_reached_by_dot_and_by_index() {
    assert_eq!(eval("lead['first-name']"), Ok(s("Jane")));
    assert_eq!(eval("lead.account['industry']"), Ok(s("Software")));
    assert_eq!(eval("lead.tags[1]"), Ok(s("trial")));
    assert_eq!(eval("lead.tags[1u]"), Ok(s("trial")));
    assert_eq!(eval("lead.tags[size(lead.tags) - 1]"), Ok(s("trial")));
    assert_eq!(eval("{'a': {'b': 2}}.a.b"), Ok(Value::Int(2)));
    assert_eq!(eval("[[1, 2], [3]][0][1]"), Ok(Value::Int(2)));
    assert!(holds("lead.account == {'industry': 'Software', 'employees': 1200, 'domain': 'acme.com'}"));
}

#[test]
fn in_tests_list_membership_and_map_keys() {
    assert!(holds("lead.department in ['IT', 'Finance']"));
    assert!(!holds("lead.department in ['Sales', 'Finance']"));
    assert!(holds("'vip' in lead.tags"));
    assert!(holds("'industry' in lead.account"));
    assert!(!holds("'revenue' in lead.account"));
    assert!(holds("lead.country in ['AT', 'BE', 'CH', 'DE', 'DK', 'ES', 'FI', 'FR', 'IE', 'IT', 'NL', 'SE']"));
    assert!(holds("lead.active in [false, true]"));
    assert!(holds("[1, 2] in [[1, 2], [3]]"));
    assert!(!holds("lead.title in lead.title"));
}

#[test]
fn macros_bind_a_local_variable() {
    assert!(holds("lead.tags.exists(t, t == 'vip')"));
    assert!(!holds("lead.tags.all(t, t == 'vip')"));
    assert!(holds("lead.tags.all(t, size(t) >= 3)"));
    assert!(holds("lead.tags.exists_one(t, t.startsWith('v'))"));
    assert!(!holds("['a', 'ab'].exists_one(t, t.startsWith('a'))"));
    assert_eq!(eval("lead.tags.map(t, t.upperAscii())"), Ok(list(vec![s("VIP"), s("TRIAL")])));
    assert_eq!(eval("[1, 2, 3, 4].filter(n, n % 2 == 0)"), Ok(list(vec![Value::Int(2), Value::Int(4)])));
    assert!(holds("lead.account.exists(k, k == 'industry')"));
    assert!(holds("lead.account.all(k, k.size() > 3)"));
    // Nested macros, and a local that shadows a variable.
    assert!(holds("[[1, 2], [3]].exists(xs, xs.all(x, x > 2))"));
    assert!(holds("lead.tags.exists(lead, lead == 'trial')"));
    assert!(holds("lead.tags.exists(t, lead.tags.exists(u, u != t))"));
    // Errors inside `exists` / `all` are absorbed by a decisive element, like `||` / `&&`.
    assert!(holds("lead.mixed.exists(x, x > 0)"));
    assert!(!holds("lead.mixed.all(x, x > 0)"));
    assert_eq!(eval("lead.mixed.all(x, x > 0)"), Err(EvalError::NoOverload { op: ">", lhs: "string", rhs: "int" }));
    assert!(!holds("lead.title.exists(c, true)"));
    assert!(holds("[].all(x, false)"));
    assert!(!holds("[].exists(x, true)"));
}

#[test]
fn string_functions_work_on_strings_only() {
    assert_eq!(eval("size('héllo')"), Ok(Value::Int(5)));
    assert_eq!(eval("'héllo'.size()"), Ok(Value::Int(5)));
    assert_eq!(eval("size(lead.tags)"), Ok(Value::Int(2)));
    assert_eq!(eval("size(lead.account)"), Ok(Value::Int(3)));
    assert_eq!(eval("size({'a': 1})"), Ok(Value::Int(1)));
    assert!(holds("event.properties.path.startsWith('/careers')"));
    assert!(holds("event.properties.path.endsWith('engineer')"));
    assert!(holds("event.properties.path.contains('careers/')"));
    assert!(holds("lead.title.matches('(?i)\\\\b(ceo|cfo|cto|chief)\\\\b')"));
    assert!(holds(r#"lead.title.matches(r"(?i)\bchief\b")"#));
    assert!(holds("matches(lead.title, '^Chief')"));
    assert!(!holds("lead.title.matches('^Technology')"));
    assert!(holds("lead.title.matches(lead.country.lowerAscii() + '|Chief')"));
    assert_eq!(eval("lead.title.lowerAscii()"), Ok(s("chief technology officer")));
    assert_eq!(eval("'ÄbC'.lowerAscii()"), Ok(s("Äbc")));
    assert_eq!(eval("lead.country.upperAscii()"), Ok(s("DE")));
    assert_eq!(eval("'  x y \\n'.trim()"), Ok(s("x y")));
    assert!(holds("lead.title.startsWith(lead.title.lowerAscii()) == false"));
    assert!(!holds("lead.employees.startsWith('5')"));
    assert!(!holds("size(lead.employees) > 0"));
}

#[test]
fn conversions_convert_or_fail() {
    assert_eq!(eval("int('42')"), Ok(Value::Int(42)));
    assert_eq!(eval("int(3.9)"), Ok(Value::Int(3)));
    assert_eq!(eval("int(-3.9)"), Ok(Value::Int(-3)));
    assert_eq!(eval("int(lead.employees)"), Ok(Value::Int(500)));
    assert_eq!(eval("int(timestamp('1970-01-01T00:01:00Z'))"), Ok(Value::Int(60)));
    assert_eq!(eval("uint(lead.employees)"), Ok(Value::UInt(500)));
    assert_eq!(eval("double('1.5')"), Ok(Value::Double(1.5)));
    assert_eq!(eval("double(2)"), Ok(Value::Double(2.0)));
    assert_eq!(eval("string(42)"), Ok(s("42")));
    assert_eq!(eval("string(lead.employees)"), Ok(s("500")));
    assert_eq!(eval("string(1.5)"), Ok(s("1.5")));
    assert_eq!(eval("string(true)"), Ok(s("true")));
    assert_eq!(eval("string(timestamp('2024-05-01'))"), Ok(s("2024-05-01T00:00:00Z")));
    assert_eq!(eval("string(duration('90m'))"), Ok(s("5400s")));
    assert_eq!(eval("bool('true')"), Ok(Value::Bool(true)));
    assert_eq!(eval("bool('0')"), Ok(Value::Bool(false)));
    assert_eq!(eval("timestamp('2024-05-01')"), Ok(Value::Timestamp(parse_timestamp("2024-05-01").unwrap())));
    assert_eq!(eval("duration('90d')"), Ok(Value::Duration(90 * MS_PER_DAY)));
    assert_eq!(eval("duration('-1h')"), Ok(Value::Duration(-3_600_000)));
    assert_eq!(eval("int(lead.not_a_number)"), Err(EvalError::Conversion("int")));
    assert_eq!(eval("uint(-lead.employees)"), Err(EvalError::Conversion("uint")));
    assert_eq!(eval("bool(lead.title)"), Err(EvalError::Conversion("bool")));
    assert_eq!(eval("timestamp(lead.title)"), Err(EvalError::Conversion("timestamp")));
    assert_eq!(eval("duration(lead.title)"), Err(EvalError::Conversion("duration")));
}

#[test]
fn timestamps_and_durations_support_arithmetic() {
    assert!(holds("timestamp('2024-01-02') - timestamp('2024-01-01') == duration('1d')"));
    assert!(holds("timestamp(lead.created_at) + duration('90d') > timestamp('2024-03-01')"));
    assert!(holds("timestamp(lead.created_at) - duration('1d') == timestamp('2023-12-31')"));
    assert!(holds("duration('1h') + duration('30m') == duration('90m')"));
    assert!(holds("timestamp(event.timestamp) > timestamp(lead.created_at)"));
}

#[test]
fn email_domain_is_the_lowercased_part_after_the_last_at() {
    assert_eq!(eval("email_domain(lead.email)"), Ok(s("acme.com")));
    assert_eq!(eval("email_domain('a@b@Example.ORG ')"), Ok(s("example.org")));
    assert!(holds("email_domain(lead.email) == lead.account.domain"));
    assert_eq!(eval("email_domain(lead.title)"), Err(EvalError::InvalidArgument("email_domain")));
    assert_eq!(eval("email_domain(lead.title + '@')"), Err(EvalError::InvalidArgument("email_domain")));
}

#[test]
fn is_free_email_knows_the_big_providers_and_not_companies() {
    assert!(holds("is_free_email('gmail.com')"));
    assert!(holds("is_free_email('someone@yahoo.co.uk')"));
    assert!(holds("is_free_email('Someone@GMail.COM')"));
    for domain in [
        "hotmail.fr",
        "outlook.com",
        "gmx.de",
        "web.de",
        "mail.ru",
        "yandex.ru",
        "qq.com",
        "163.com",
        "protonmail.com",
        "icloud.com",
        "aol.com",
    ] {
        assert!(holds(&format!("is_free_email('x@{domain}')")), "{domain}");
    }
    assert!(!holds("is_free_email(lead.email)"));
    assert!(holds("!is_free_email(lead.email)"));
    assert!(!holds("is_free_email('acme.com')"));
    assert!(!holds("is_free_email('ceo@stripe.com')"));
    assert!(!holds("is_free_email(lead.title + '@')"), "no domain is an error");
}

#[test]
fn days_since_counts_fractional_days_to_as_of() {
    // as_of is 2024-01-11T12:00:00Z; the lead was created 2024-01-01T00:00:00Z.
    assert_eq!(eval("days_since(lead.created_at)"), Ok(Value::Double(10.5)));
    assert_eq!(eval("days_since(timestamp(lead.created_at))"), Ok(Value::Double(10.5)));
    assert_eq!(eval("days_since('2024-01-12')"), Ok(Value::Double(-0.5)));
    assert!(holds("days_since(lead.created_at) > 10 && days_since(lead.created_at) < 11"));
    let p = program("days_since(lead.created_at) >= 30");
    let lead = lead();
    let vars = [Binding::Absent, Binding::Json(&lead)];
    assert!(!p.matches(&Activation { vars: &vars, as_of: as_of() }));
    assert!(p.matches(&Activation { vars: &vars, as_of: as_of() + 20 * MS_PER_DAY }));
    assert_eq!(p.constant(), None, "days_since depends on as_of, so it never folds");
    assert_eq!(eval("days_since(lead.title)"), Err(EvalError::InvalidArgument("days_since")));
    assert!(matches!(eval("days_since(lead.employees)"), Err(EvalError::NoOverload { .. })));
}

#[test]
fn number_and_absent_bindings() {
    let p = compile("total >= 50 && fit >= 10", &["fit", "engagement", "total"]).unwrap();
    let act = |fit, total| [Binding::Number(fit), Binding::Number(0.0), Binding::Number(total)];
    assert!(p.matches(&Activation { vars: &act(10.0, 50.0), as_of: 0 }));
    assert!(!p.matches(&Activation { vars: &act(9.99, 80.0), as_of: 0 }));
    let nan = [Binding::Number(f64::NAN)];
    for (src, want) in [("x == 5", false), ("x != 5", true), ("x < 5", false), ("x >= 5", false), ("x != x", true)] {
        assert_eq!(compile(src, &["x"]).unwrap().matches(&Activation { vars: &nan, as_of: 0 }), want, "{src}");
    }
    let absent = compile("has(lead.title) || lead.title == 'x'", VARS).unwrap();
    let vars = [Binding::Absent, Binding::Absent];
    assert!(!absent.matches(&Activation { vars: &vars, as_of: 0 }));
    assert_eq!(absent.evaluate(&Activation { vars: &vars, as_of: 0 }), Err(EvalError::NoValue));
    let short: [Binding<'_>; 0] = [];
    assert!(!absent.matches(&Activation { vars: &short, as_of: 0 }));
    assert!(
        !compile("total.x == 1", &["total"]).unwrap().matches(&Activation { vars: &[Binding::Number(1.0)], as_of: 0 })
    );
}

#[test]
fn evaluate_returns_json_containers_as_owned_lists_and_maps() {
    assert_eq!(eval("lead.tags"), Ok(list(vec![s("vip"), s("trial")])));
    assert_eq!(eval("event.properties.title"), Ok(s("Jobs")));
    assert_eq!(eval("lead.budget"), Ok(Value::Null));
}

#[test]
fn syntax_errors_have_exact_spans() {
    assert_eq!(one_error("lead.title == 'x' &&"), (20..20, "expected an expression, found end of input".into()));
    assert_eq!(one_error("size(lead.title"), (15..15, "expected `)`, found end of input".into()));
    assert_eq!(one_error("lead.title == 'x')"), (17..18, "expected end of input, found `)`".into()));
    assert_eq!(one_error("lead.title = 'x'"), (11..12, "unexpected `=` (did you mean `==`?)".into()));
    assert_eq!(one_error("lead.title == 'x"), (14..16, "unterminated string".into()));
    assert_eq!(one_error("a ? b"), (5..5, "expected `:`, found end of input".into()));
}

#[test]
fn unknown_names_are_errors_naming_the_alternatives() {
    assert_eq!(one_error("evnt.type == 'page'"), (0..4, "unknown variable `evnt` (known: event, lead)".into()));
    assert_eq!(
        one_error("lead.title.lowercase() == 'x'"),
        (11..20, "unknown function `lowercase` (did you mean `lowerAscii`?)".into())
    );
    assert_eq!(
        one_error("lead.title.startswith('x')"),
        (11..21, "unknown function `startswith` (did you mean `startsWith`?)".into())
    );
    let (span, message) = one_error("frobnicate(lead)");
    assert_eq!(span, 0..10);
    assert!(message.starts_with("unknown function `frobnicate` (known: size, startsWith, "), "{message}");
    assert_eq!(one_error("total > 1"), (0..5, "unknown variable `total` (known: event, lead)".into()));
    assert_eq!(errors("x", &[]), vec![(0..1, "unknown variable `x` (known: none)".into())]);
    assert_eq!(
        one_error("lead.tags.exists(t, u == 1)"),
        (20..21, "unknown variable `u` (known: event, lead, t)".into())
    );
    assert_eq!(
        one_error("size == 1"),
        (0..4, "unknown variable `size` (known: event, lead); `size` is a function, call it with `(…)`".into())
    );
}

#[test]
fn calls_are_checked_for_arity_and_form() {
    assert_eq!(one_error("lead.title.startsWith()"), (0..23, "`startsWith` takes 1 argument, found 0".into()));
    assert_eq!(one_error("size(lead.title, 1)"), (0..19, "`size` takes 1 argument, found 2".into()));
    assert_eq!(
        one_error("startsWith(lead.title, 'x')"),
        (0..10, "`startsWith` is a method: write `x.startsWith(…)`".into())
    );
    assert_eq!(
        one_error("lead.email.email_domain()"),
        (11..23, "`email_domain` is a function: write `email_domain(x)`".into())
    );
    assert_eq!(one_error("has(lead)"), (4..8, "`has` needs a field selection like `has(lead.title)`".into()));
    assert_eq!(
        one_error("lead.tags.exists('t', true)"),
        (17..20, "the first argument of `exists` must be a variable name".into())
    );
    assert_eq!(
        one_error("lead.tags.all(t)"),
        (0..16, "`all` takes 2 arguments (a variable name and a condition), found 1".into())
    );
    assert_eq!(
        one_error("lead.title.startsWith(1)"),
        (22..23, "`startsWith` takes a string argument, found int".into())
    );
}

#[test]
fn invalid_literal_regexes_are_compile_errors_at_the_literal() {
    let (span, message) = one_error("lead.title.matches('(a')");
    assert_eq!(span, 19..23);
    assert_eq!(message, "invalid regex `(a`: unclosed group");
    let (span, message) = one_error("matches(lead.title, 'a{2,1}')");
    assert_eq!(span, 20..28);
    assert!(message.starts_with("invalid regex `a{2,1}`: "), "{message}");
    // A computed pattern is only checked when evaluated.
    assert!(compile("lead.title.matches(lead.pattern)", VARS).is_ok());
}

#[test]
fn constant_failures_are_compile_errors() {
    assert_eq!(one_error("lead.employees > 1 / 0"), (17..22, "this expression always fails: division by zero".into()));
    assert_eq!(
        one_error("int('abc') == lead.employees"),
        (0..10, "this expression always fails: invalid conversion to int".into())
    );
    assert_eq!(
        one_error("days_since(lead.created_at) < duration('90')"),
        (30..44, "duration `90` has no unit (use s, m, h, d or w, e.g. `90d`)".into())
    );
    assert_eq!(
        one_error("timestamp('yesterday') < timestamp(lead.created_at)"),
        (
            0..22,
            "invalid timestamp `yesterday` (use RFC 3339 like `2024-05-01T12:00:00Z` or a date like `2024-05-01`)"
                .into()
        )
    );
    assert_eq!(
        one_error("lead.x == 1 && 'a' < 1"),
        (15..22, "this expression always fails: no matching overload for `<` on string and int".into())
    );
    assert_eq!(one_error("lead.x == 1 && 5"), (15..16, "the operands of `&&` must be bools, found int".into()));
    assert_eq!(
        one_error("lead.title in 'Chief'"),
        (14..21, "the right side of `in` must be a list or a map, found string".into())
    );
    assert_eq!(one_error("{'a': 1, 'a': 2}.a == 1"), (0..16, "this expression always fails: duplicate map key".into()));
}

#[test]
fn all_errors_are_reported_at_once_in_source_order() {
    let found = errors("evnt.type == 'page' && lead.title.lowercase() == 'x' && lead.title.matches('[')", VARS);
    let spans: Vec<_> = found.iter().map(|(span, _)| span.clone()).collect();
    assert_eq!(spans, vec![0..4, 34..43, 75..78]);
    assert!(found[2].1.starts_with("invalid regex `[`: "), "{}", found[2].1);
    // Lexical errors are reported together with the errors found after them.
    let found = errors("lead.title = 'x' && nope", VARS);
    assert_eq!(found.len(), 2, "{found:?}");
}

#[test]
fn conjuncts_classify_each_top_level_term() {
    let p = program(
        "event.type == 'page' && event.properties.path.startsWith('/careers') && 'CTO' == lead.title \
         && 100 < lead.employees && lead.department in ['IT', 'Finance'] && size(lead.title) > 3 \
         && (lead.a == 1 && lead.b != null)",
    );
    let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        p.conjuncts(),
        vec![
            Atom::Compare { var: 0, path: path(&["type"]), op: CmpOp::Eq, value: Literal::String("page".into()) },
            Atom::StartsWith { var: 0, path: path(&["properties", "path"]), prefix: "/careers".into() },
            Atom::Compare { var: 1, path: path(&["title"]), op: CmpOp::Eq, value: Literal::String("CTO".into()) },
            Atom::Compare { var: 1, path: path(&["employees"]), op: CmpOp::Gt, value: Literal::Int(100) },
            Atom::In {
                var: 1,
                path: path(&["department"]),
                values: vec![Literal::String("IT".into()), Literal::String("Finance".into())]
            },
            Atom::Other,
            Atom::Compare { var: 1, path: path(&["a"]), op: CmpOp::Eq, value: Literal::Int(1) },
            Atom::Compare { var: 1, path: path(&["b"]), op: CmpOp::Ne, value: Literal::Null },
        ]
    );
    let stage = compile("total >= 50.5", &["fit", "total"]).unwrap();
    assert_eq!(
        stage.conjuncts(),
        vec![Atom::Compare { var: 1, path: vec![], op: CmpOp::Ge, value: Literal::Double(50.5) }]
    );
    assert_eq!(
        program("-5 >= lead.score").conjuncts()[0],
        Atom::Compare { var: 1, path: path(&["score"]), op: CmpOp::Le, value: Literal::Int(-5) }
    );
    assert_eq!(
        program("true && lead['first-name'] == 'x'").conjuncts(),
        vec![Atom::Compare { var: 1, path: path(&["first-name"]), op: CmpOp::Eq, value: Literal::String("x".into()) }]
    );
    assert_eq!(
        program("lead.a == 1 || lead.b == 2").conjuncts(),
        vec![Atom::AnyOf(vec![
            Atom::Compare { var: 1, path: path(&["a"]), op: CmpOp::Eq, value: Literal::Int(1) },
            Atom::Compare { var: 1, path: path(&["b"]), op: CmpOp::Eq, value: Literal::Int(2) },
        ])]
    );
    assert_eq!(program("lead.tags[0] == 'vip'").conjuncts(), vec![Atom::Other]);
    assert_eq!(program("lead.x in [1, [2]]").conjuncts(), vec![Atom::Other]);
    assert_eq!(program("lead.tags.exists(t, t == 'a')").conjuncts(), vec![Atom::Other]);
}

#[test]
fn field_paths_list_every_variable_path_with_its_span() {
    let src = "has(event.context.userAgent) && lead['first-name'] == 'x' && lead.tags[0].size() > 1 \
               && lead.tags.exists(lead, lead.size() > 0 && event.type == 'page') && false ? lead.a.b : lead";
    let p = program(src);
    let found: Vec<_> = p.field_paths().into_iter().map(|f| (f.var, f.path.join("."), &src[f.span])).collect();
    assert_eq!(
        found,
        vec![
            (0, "context.userAgent".to_owned(), "event.context.userAgent"),
            (1, "first-name".to_owned(), "lead['first-name']"),
            (1, "tags".to_owned(), "lead.tags"),
            (1, "tags".to_owned(), "lead.tags"),
            (0, "type".to_owned(), "event.type"),
            (1, "a.b".to_owned(), "lead.a.b"),
            (1, "".to_owned(), "lead"),
        ]
    );
}

#[test]
fn constant_conditions_fold() {
    assert_eq!(program("true").constant(), Some(true));
    assert_eq!(program("1 < 2 && 'a' + 'b' == 'ab'").constant(), Some(true));
    assert_eq!(program("false && lead.x == 1").constant(), Some(false));
    // Folded-away operands are still checked and still report their paths.
    assert_eq!(
        errors("false && evnt.x == 1", VARS),
        vec![(9..13, "unknown variable `evnt` (known: event, lead)".into())]
    );
    assert_eq!(program("true || lead.x == 1").field_paths().len(), 1);
    assert_eq!(program("lead.x == 1 || true").constant(), Some(true));
    assert_eq!(program("[1, 2, 3].exists(x, x > 2)").constant(), Some(true));
    assert_eq!(program("size('abc') == 3 ? false : true").constant(), Some(false));
    assert_eq!(program("'not a bool'").constant(), Some(false));
    assert_eq!(program("is_free_email('gmail.com')").constant(), Some(true));
    assert_eq!(program("lead.x == 1").constant(), None);
    assert_eq!(program("true && lead.x == 1").constant(), None);
    assert_eq!(program("lead.tags.exists(t, true)").constant(), None);
    // Folding keeps the semantics: `x && true` is not `x` when x is not a bool.
    assert!(!holds("lead.title && true"));
    assert!(holds("true && lead.title == 'Chief Technology Officer'"));
}

#[test]
fn the_deepest_accepted_expressions_compile_and_evaluate() {
    // 199 additions: the deepest left-leaning tree the parser accepts, evaluated without folding.
    let src = format!("int(a){}", " + int(a)".repeat(198));
    let p = compile(&src, &["a"]).unwrap();
    let vars = [Binding::Number(1.0)];
    assert_eq!(p.evaluate(&Activation { vars: &vars, as_of: 0 }), Ok(Value::Int(199)));
    let nested = format!("{}a{}", "[".repeat(60), "]".repeat(60));
    assert!(compile(&nested, &["a"]).is_ok());
}

#[test]
fn programs_are_shareable_and_remember_their_source() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<Program>();
    let p = program("lead.x == 1");
    assert_eq!(p.clone().source(), "lead.x == 1");
    assert!(format!("{p:?}").contains("lead.x == 1"));
}

#[test]
fn error_messages_follow_the_house_style() {
    for src in ["evnt.x", "lead.x.lowercase()", "lead.x.matches('(')", "1 +", "lead.x == 1 / 0", "'a", "#"] {
        for (_, message) in errors(src, VARS) {
            assert!(!message.ends_with('.'), "{message}");
            assert_eq!(message.chars().next(), message.chars().next().map(|c| c.to_ascii_lowercase()), "{message}");
        }
    }
}

/// Integer expressions for the property test: literals, variables bound to whole numbers and
/// read through `int()` (so some subtrees evaluate at run time, others fold), and operators.
#[derive(Debug, Clone)]
enum IntExpr {
    Lit(i64),
    Var(usize),
    Neg(Box<IntExpr>),
    Bin(usize, Box<IntExpr>, Box<IntExpr>),
}

const ARITH: [&str; 5] = ["+", "-", "*", "/", "%"];
const CMP: [&str; 6] = ["==", "!=", "<", "<=", ">", ">="];
const PROP_VARS: &[&str] = &["a", "b", "c"];

impl IntExpr {
    fn render(&self) -> String {
        match self {
            IntExpr::Lit(n) if *n < 0 => format!("({n})"),
            IntExpr::Lit(n) => n.to_string(),
            IntExpr::Var(i) => format!("int({})", PROP_VARS[*i]),
            IntExpr::Neg(e) => format!("-({})", e.render()),
            IntExpr::Bin(op, l, r) => format!("({} {} {})", l.render(), ARITH[*op], r.render()),
        }
    }

    fn compute(&self, vars: &[i64; 3]) -> Option<i64> {
        match self {
            IntExpr::Lit(n) => Some(*n),
            IntExpr::Var(i) => Some(vars[*i]),
            IntExpr::Neg(e) => e.compute(vars)?.checked_neg(),
            IntExpr::Bin(op, l, r) => {
                let (l, r) = (l.compute(vars)?, r.compute(vars)?);
                match *op {
                    0 => l.checked_add(r),
                    1 => l.checked_sub(r),
                    2 => l.checked_mul(r),
                    3 => l.checked_div(r),
                    _ => l.checked_rem(r),
                }
            }
        }
    }
}

fn int_expr() -> impl Strategy<Value = IntExpr> {
    let leaf = prop_oneof![(-20i64..20).prop_map(IntExpr::Lit), (0usize..3).prop_map(IntExpr::Var)];
    leaf.prop_recursive(5, 48, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| IntExpr::Neg(Box::new(e))),
            (0usize..5, inner.clone(), inner).prop_map(|(op, l, r)| IntExpr::Bin(op, Box::new(l), Box::new(r))),
        ]
    })
}

/// Compiles and evaluates; a compile error counts as an evaluation error (constant subtrees
/// that always fail are rejected at compile time).
fn run(src: &str, vars: &[i64; 3]) -> Result<Value<'static>, ()> {
    let program = match compile(src, PROP_VARS) {
        Ok(program) => program,
        Err(errors) => {
            assert!(errors.iter().all(|e| e.message.starts_with("this expression always fails")), "{src}: {errors:?}");
            return Err(());
        }
    };
    let bindings = vars.map(|v| Binding::Number(v as f64));
    program.evaluate(&Activation { vars: &bindings, as_of: 0 }).map(|v| v.to_owned_value()).map_err(|_| ())
}

proptest! {
    #[test]
    fn int_arithmetic_matches_rust(e in int_expr(), vars in proptest::array::uniform3(-20i64..20)) {
        let src = e.render();
        let want = e.compute(&vars).ok_or(());
        prop_assert_eq!(run(&src, &vars), want.map(Value::Int), "{}", src);
    }

    #[test]
    fn int_comparisons_match_rust(
        l in int_expr(), op in 0usize..6, r in int_expr(), vars in proptest::array::uniform3(-20i64..20)
    ) {
        let src = format!("{} {} {}", l.render(), CMP[op], r.render());
        let want = match (l.compute(&vars), r.compute(&vars)) {
            (Some(a), Some(b)) => Ok([a == b, a != b, a < b, a <= b, a > b, a >= b][op]),
            _ => Err(()),
        };
        prop_assert_eq!(run(&src, &vars), want.map(Value::Bool), "{}", src);
        // `matches` agrees: true exactly when the comparison evaluates to true.
        if let Ok(program) = compile(&src, PROP_VARS) {
            let bindings = vars.map(|v| Binding::Number(v as f64));
            prop_assert_eq!(program.matches(&Activation { vars: &bindings, as_of: 0 }), want == Ok(true));
        }
    }
}

#[test]
fn timestamp_strings_compare_with_timestamps() {
    let lead = serde_json::json!({"created_at": "2024-01-01T00:00:00Z", "note": "soon"});
    let holds = |src: &str| {
        let program = compile(src, &["lead"]).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        program.matches(&Activation { vars: &[Binding::Json(&lead)], as_of: 0 })
    };
    assert!(holds(r#"lead.created_at < timestamp("2024-02-01T00:00:00Z")"#));
    assert!(holds(r#"timestamp("2023-12-31T00:00:00Z") <= lead.created_at"#));
    assert!(holds(r#"lead.created_at == timestamp("2024-01-01T01:00:00+01:00")"#));
    assert!(!holds(r#"lead.created_at > timestamp("2024-02-01T00:00:00Z")"#));
    // A string that is not a timestamp: unequal, and unordered (an error, so false).
    assert!(!holds(r#"lead.note == timestamp("2024-01-01T00:00:00Z")"#));
    assert!(!holds(r#"lead.note < timestamp("2024-01-01T00:00:00Z")"#));
}

/// Remembered `matches` results are the regex's own, for repeated strings, for strings that
/// share a memo slot, and for two patterns over the same strings.
#[test]
fn remembered_matches_are_the_regex_results() {
    use super::eval::Pattern;
    let patterns = [
        regex::Regex::new("(?i)(bot|crawler|spider)").unwrap(),
        regex::Regex::new("Chrome/12[0-9]").unwrap(),
        regex::Regex::new("^Mozilla/5\\.0 \\(X11").unwrap(),
    ];
    let compiled: Vec<Pattern> = patterns.iter().cloned().map(Pattern::new).collect();
    let agents: Vec<String> = (0..3000u64)
        .map(|i| {
            let n = i * 2_654_435_761 % 1500;
            match n % 4 {
                0 => format!("Mozilla/5.0 (X11; Linux x86_64) Chrome/12{}.0 Safari/537.36 #{n}", n % 10),
                1 => format!("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) #{n}"),
                2 => format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/11{}.0.0.0 #{n}", n % 10),
                _ => format!("short{n}"),
            }
        })
        .collect();
    for _round in 0..2 {
        for agent in &agents {
            for (pattern, regex) in compiled.iter().zip(&patterns) {
                assert_eq!(pattern.is_match(agent), regex.is_match(agent), "{agent}");
            }
        }
    }
}
