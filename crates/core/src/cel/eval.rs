//! The compiled form of a condition (a tree of specialised nodes) and its evaluator.
//!
//! Variable field paths are pre-resolved into a slot and a key list and walked directly over the
//! borrowed JSON; comparisons against literals, `in` against literal lists, and string tests
//! against literal arguments (including pre-compiled regexes) are single fused nodes; values
//! borrow their strings from the JSON, so the common conditions evaluate without allocating.

use std::collections::HashSet;
use std::sync::Arc;

use super::functions::{self, FnvBuild, Func};
use super::value::{self, ArithOp, EvalError, Value, no_overload1};
use super::{Binding, CmpOp};
use crate::time::Millis;

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(Value<'static>),
    /// Stands for a subexpression that failed to compile; never present in a compiled program.
    Invalid,
    Path(Path),
    Select {
        operand: Box<Node>,
        field: Box<str>,
    },
    Index {
        operand: Box<Node>,
        index: Box<Node>,
    },
    /// `has()` over a static path (its last segment is the field tested).
    Has(Path),
    HasField {
        operand: Box<Node>,
        field: Box<str>,
    },
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Ternary {
        cond: Box<Node>,
        then: Box<Node>,
        otherwise: Box<Node>,
    },
    Cmp {
        op: CmpOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    /// `subject OP literal` (a literal on the left is mirrored to the right).
    CmpConst {
        subject: Box<Node>,
        op: CmpOp,
        /// The literal as written (for classification and the general comparison).
        literal: Value<'static>,
        /// The literal in the form the fast paths compare against.
        key: Key,
    },
    In {
        needle: Box<Node>,
        haystack: Box<Node>,
    },
    InConst {
        subject: Box<Node>,
        set: ConstSet,
    },
    Arith {
        op: ArithOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    StrTest {
        subject: Box<Node>,
        test: StrTest,
    },
    Call1 {
        func: Func,
        arg: Box<Node>,
    },
    Call2 {
        func: Func,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    List(Box<[Node]>),
    Map(Box<[(Node, Node)]>),
    /// A macro with a local variable in `slot` bound to each element (or key) of `range`.
    Comprehension {
        kind: Macro,
        range: Box<Node>,
        slot: usize,
        body: Box<Node>,
    },
}

impl Node {
    /// The same tree with every variable path passed through `f`, which is told whether the path
    /// is only tested for presence (`has(path)`).
    pub(crate) fn map_paths(&self, f: &mut impl FnMut(&Path, bool) -> Path) -> Node {
        match self {
            Node::Const(_) | Node::Invalid => self.clone(),
            Node::Path(path) => Node::Path(f(path, false)),
            Node::Has(path) => Node::Has(f(path, true)),
            Node::Select { operand, field } => {
                Node::Select { operand: Box::new(operand.map_paths(f)), field: field.clone() }
            }
            Node::Index { operand, index } => {
                let operand = Box::new(operand.map_paths(f));
                Node::Index { operand, index: Box::new(index.map_paths(f)) }
            }
            Node::HasField { operand, field } => {
                Node::HasField { operand: Box::new(operand.map_paths(f)), field: field.clone() }
            }
            Node::Not(operand) => Node::Not(Box::new(operand.map_paths(f))),
            Node::Neg(operand) => Node::Neg(Box::new(operand.map_paths(f))),
            Node::And(terms) => Node::And(terms.iter().map(|t| t.map_paths(f)).collect()),
            Node::Or(terms) => Node::Or(terms.iter().map(|t| t.map_paths(f)).collect()),
            Node::Ternary { cond, then, otherwise } => {
                let cond = Box::new(cond.map_paths(f));
                let then = Box::new(then.map_paths(f));
                Node::Ternary { cond, then, otherwise: Box::new(otherwise.map_paths(f)) }
            }
            Node::Cmp { op, lhs, rhs } => {
                let lhs = Box::new(lhs.map_paths(f));
                Node::Cmp { op: *op, lhs, rhs: Box::new(rhs.map_paths(f)) }
            }
            Node::CmpConst { subject, op, literal, key } => Node::CmpConst {
                subject: Box::new(subject.map_paths(f)),
                op: *op,
                literal: literal.clone(),
                key: key.clone(),
            },
            Node::In { needle, haystack } => {
                let needle = Box::new(needle.map_paths(f));
                Node::In { needle, haystack: Box::new(haystack.map_paths(f)) }
            }
            Node::InConst { subject, set } => {
                Node::InConst { subject: Box::new(subject.map_paths(f)), set: set.clone() }
            }
            Node::Arith { op, lhs, rhs } => {
                let lhs = Box::new(lhs.map_paths(f));
                Node::Arith { op: *op, lhs, rhs: Box::new(rhs.map_paths(f)) }
            }
            Node::StrTest { subject, test } => {
                Node::StrTest { subject: Box::new(subject.map_paths(f)), test: test.clone() }
            }
            Node::Call1 { func, arg } => Node::Call1 { func: *func, arg: Box::new(arg.map_paths(f)) },
            Node::Call2 { func, lhs, rhs } => {
                let lhs = Box::new(lhs.map_paths(f));
                Node::Call2 { func: *func, lhs, rhs: Box::new(rhs.map_paths(f)) }
            }
            Node::List(items) => Node::List(items.iter().map(|i| i.map_paths(f)).collect()),
            Node::Map(entries) => Node::Map(entries.iter().map(|(k, v)| (k.map_paths(f), v.map_paths(f))).collect()),
            Node::Comprehension { kind, range, slot, body } => {
                let range = Box::new(range.map_paths(f));
                Node::Comprehension { kind: *kind, range, slot: *slot, body: Box::new(body.map_paths(f)) }
            }
        }
    }

    /// Whether evaluating this node can depend on `as_of` (a `days_since` call).
    pub(crate) fn reads_clock(&self) -> bool {
        let mut found = false;
        self.visit(&mut |n| found |= matches!(n, Node::Call1 { func: Func::DaysSince, .. }));
        found
    }

    fn visit(&self, f: &mut impl FnMut(&Node)) {
        f(self);
        match self {
            Node::Const(_) | Node::Invalid | Node::Path(_) | Node::Has(_) => {}
            Node::Select { operand, .. }
            | Node::HasField { operand, .. }
            | Node::Not(operand)
            | Node::Neg(operand)
            | Node::CmpConst { subject: operand, .. }
            | Node::InConst { subject: operand, .. }
            | Node::StrTest { subject: operand, .. }
            | Node::Call1 { arg: operand, .. } => operand.visit(f),
            Node::Index { operand: a, index: b }
            | Node::Cmp { lhs: a, rhs: b, .. }
            | Node::In { needle: a, haystack: b }
            | Node::Arith { lhs: a, rhs: b, .. }
            | Node::Call2 { lhs: a, rhs: b, .. }
            | Node::Comprehension { range: a, body: b, .. } => {
                a.visit(f);
                b.visit(f);
            }
            Node::And(items) | Node::Or(items) | Node::List(items) => items.iter().for_each(|i| i.visit(f)),
            Node::Ternary { cond, then, otherwise } => {
                cond.visit(f);
                then.visit(f);
                otherwise.visit(f);
            }
            Node::Map(entries) => entries.iter().for_each(|(k, v)| {
                k.visit(f);
                v.visit(f);
            }),
        }
    }
}

/// A comparison literal prepared for the common cases: a JSON string, or a JSON number (a double)
/// against a number literal that a double represents exactly (so comparing as doubles is exact).
#[derive(Debug, Clone)]
pub(crate) enum Key {
    Str(Box<str>),
    Double(f64),
    Other,
}

impl Node {
    pub(crate) fn cmp_const(subject: Node, op: CmpOp, literal: Value<'static>) -> Node {
        let key = match &literal {
            Value::String(s) => Key::Str(s.as_ref().into()),
            Value::Double(d) => Key::Double(*d),
            Value::Int(i) if i.unsigned_abs() <= 1 << 53 => Key::Double(*i as f64),
            Value::UInt(u) if *u <= 1 << 53 => Key::Double(*u as f64),
            _ => Key::Other,
        };
        Node::CmpConst { subject: Box::new(subject), op, literal, key }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub(crate) root: Root,
    pub(crate) segs: Box<[Seg]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    Var(usize),
    Local(usize),
    /// Slot `1` of the flat binding of variable `0` (see [`super::FlatFields`]): the value at a
    /// field path extracted ahead of time; the path's remaining segments follow.
    Flat(usize, u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Field(Box<str>),
    Index(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Macro {
    All,
    Exists,
    ExistsOne,
    Map,
    Filter,
}

#[derive(Debug, Clone)]
pub(crate) enum StrTest {
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Contains(Box<str>),
    Matches(Pattern),
}

/// A compiled `matches` pattern with an id of its own (the key of the memo of its results).
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    regex: regex::Regex,
    id: u64,
}

impl Pattern {
    pub(crate) fn new(regex: regex::Regex) -> Pattern {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Pattern { regex, id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) }
    }

    /// Whether `s` matches. The same few long strings come back again and again (a site's user
    /// agents, in millions of messages), so results for strings of 32 bytes or more are
    /// remembered per thread, keyed by the pattern and a 128-bit hash of the string (seeded at
    /// random per process, so that nobody can craft a string that passes for another).
    pub(crate) fn is_match(&self, s: &str) -> bool {
        use std::hash::BuildHasher;
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        if s.len() < 32 {
            return self.regex.is_match(s);
        }
        let seed = *SEED.get_or_init(|| foldhash::quality::RandomState::default().hash_one(0u8));
        let first = foldhash::quality::FixedState::with_seed(seed ^ self.id).hash_one(s);
        let second = foldhash::quality::FixedState::with_seed(!seed ^ self.id).hash_one(s);
        let slot = (first % MEMO_SLOTS as u64) as usize;
        MATCHES.with(|memo| {
            let mut memo = memo.borrow_mut();
            if let Some(entry) = memo.get(slot)
                && entry.0 == self.id
                && entry.1 == first
                && entry.2 == second
            {
                return entry.3;
            }
            let matched = self.regex.is_match(s);
            if let Some(entry) = memo.get_mut(slot) {
                *entry = (self.id, first, second, matched);
            }
            matched
        })
    }
}

const MEMO_SLOTS: usize = 512;

thread_local! {
    /// Recent `matches` results: `(pattern id, hash, second hash, matched)`; id 0 is empty.
    static MATCHES: std::cell::RefCell<Vec<(u64, u64, u64, bool)>> =
        std::cell::RefCell::new(vec![(0, 0, 0, false); MEMO_SLOTS]);
}

impl StrTest {
    #[inline]
    fn test(&self, s: &str) -> bool {
        match self {
            StrTest::StartsWith(p) => s.starts_with(&**p),
            StrTest::EndsWith(p) => s.ends_with(&**p),
            StrTest::Contains(p) => s.contains(&**p),
            StrTest::Matches(re) => re.is_match(s),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            StrTest::StartsWith(_) => "startsWith",
            StrTest::EndsWith(_) => "endsWith",
            StrTest::Contains(_) => "contains",
            StrTest::Matches(_) => "matches",
        }
    }
}

/// A constant list on the right of `in`, indexed for membership tests.
#[derive(Debug, Clone)]
pub(crate) struct ConstSet {
    /// The list as written (for classification).
    pub(crate) items: Arc<Vec<Value<'static>>>,
    strings: StrSet,
    /// The non-string items, compared with `==`.
    others: Vec<Value<'static>>,
}

#[derive(Debug, Clone)]
enum StrSet {
    Small(Box<[Box<str>]>),
    Large(HashSet<Box<str>, FnvBuild>),
}

impl ConstSet {
    pub(crate) fn new(items: Arc<Vec<Value<'static>>>) -> ConstSet {
        let mut strings = Vec::new();
        let mut others = Vec::new();
        for item in items.iter() {
            match item {
                Value::String(s) => strings.push(Box::<str>::from(s.as_ref())),
                other => others.push(other.clone()),
            }
        }
        let strings = if strings.len() <= 8 {
            StrSet::Small(strings.into_boxed_slice())
        } else {
            StrSet::Large(strings.into_iter().collect())
        };
        ConstSet { items, strings, others }
    }

    #[inline]
    fn contains_str(&self, s: &str) -> bool {
        match &self.strings {
            StrSet::Small(strings) => strings.iter().any(|c| **c == *s),
            StrSet::Large(strings) => strings.contains(s),
        }
    }

    #[inline]
    fn contains(&self, value: &Value<'_>) -> bool {
        match value {
            Value::String(s) => self.contains_str(s),
            other => self.others.iter().any(|c| value::equal(c, other)),
        }
    }
}

/// The evaluation context: variable bindings, `as_of`, macro locals, and the reason for the last
/// failure.
pub(crate) struct Cx<'r> {
    vars: &'r [Binding<'r>],
    as_of: Millis,
    locals: Vec<Value<'r>>,
    error: Option<EvalError>,
}

/// Evaluation failed; the reason is in the context. Keeping the reason out of the return type
/// keeps results small (a `Result<bool, Failed>` is one byte), which matters on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failed;

type Res<T> = Result<T, Failed>;

impl<'r> Cx<'r> {
    pub(crate) fn new(vars: &'r [Binding<'r>], as_of: Millis) -> Cx<'r> {
        Cx { vars, as_of, locals: Vec::new(), error: None }
    }

    #[cold]
    #[inline(never)]
    fn fail(&mut self, error: EvalError) -> Failed {
        self.error = Some(error);
        Failed
    }

    /// The reason for the failure just returned.
    pub(crate) fn take_error(&mut self) -> EvalError {
        self.error.take().unwrap_or(EvalError::NoValue)
    }
}

trait OrFail<T> {
    fn or_fail(self, cx: &mut Cx<'_>) -> Res<T>;
}

impl<T> OrFail<T> for Result<T, EvalError> {
    #[inline(always)]
    fn or_fail(self, cx: &mut Cx<'_>) -> Res<T> {
        match self {
            Ok(value) => Ok(value),
            Err(error) => Err(cx.fail(error)),
        }
    }
}

impl<T> OrFail<T> for Result<T, PathError> {
    #[inline(always)]
    fn or_fail(self, cx: &mut Cx<'_>) -> Res<T> {
        match self {
            Ok(value) => Ok(value),
            Err(error) => Err(cx.fail(error.into())),
        }
    }
}

/// Evaluates a node to a value.
pub(crate) fn eval<'r>(node: &'r Node, cx: &mut Cx<'r>) -> Res<Value<'r>> {
    match node {
        Node::Const(v) => Ok(v.reborrow()),
        Node::Invalid => Err(cx.fail(EvalError::NoValue)),
        Node::Path(path) => resolve(path, cx),
        Node::Select { operand, field } => {
            let operand = eval(operand, cx)?;
            value::select(&operand, field).or_fail(cx)
        }
        Node::Index { operand, index } => {
            let operand = eval(operand, cx)?;
            let index = eval(index, cx)?;
            value::index(&operand, &index).or_fail(cx)
        }
        Node::Has(_)
        | Node::HasField { .. }
        | Node::Not(_)
        | Node::And(_)
        | Node::Or(_)
        | Node::Cmp { .. }
        | Node::CmpConst { .. }
        | Node::In { .. }
        | Node::InConst { .. }
        | Node::StrTest { .. } => eval_bool(node, cx).map(Value::Bool),
        Node::Neg(operand) => {
            let operand = eval(operand, cx)?;
            value::negate(operand).or_fail(cx)
        }
        Node::Ternary { cond, then, otherwise } => {
            if eval_bool(cond, cx)? {
                eval(then, cx)
            } else {
                eval(otherwise, cx)
            }
        }
        Node::Arith { op, lhs, rhs } => {
            let lhs = eval(lhs, cx)?;
            let rhs = eval(rhs, cx)?;
            value::arithmetic(*op, lhs, rhs).or_fail(cx)
        }
        Node::Call1 { func, arg } => {
            let arg = eval(arg, cx)?;
            functions::call1(*func, arg, cx.as_of).or_fail(cx)
        }
        Node::Call2 { func, lhs, rhs } => {
            let lhs = eval(lhs, cx)?;
            let rhs = eval(rhs, cx)?;
            functions::call2(*func, lhs, rhs).or_fail(cx)
        }
        Node::List(items) => {
            let items = items.iter().map(|item| eval(item, cx)).collect::<Res<Vec<_>>>()?;
            Ok(Value::List(Arc::new(items)))
        }
        Node::Map(entries) => {
            let mut map: Vec<(Value<'r>, Value<'r>)> = Vec::with_capacity(entries.len());
            for (key, val) in entries.iter() {
                let key = eval(key, cx)?;
                if !matches!(key, Value::Int(_) | Value::UInt(_) | Value::Bool(_) | Value::String(_)) {
                    return Err(cx.fail(no_overload1("map key", &key)));
                }
                if map.iter().any(|(k, _)| value::equal(k, &key)) {
                    return Err(cx.fail(EvalError::DuplicateKey));
                }
                let val = eval(val, cx)?;
                map.push((key, val));
            }
            Ok(Value::Map(Arc::new(map)))
        }
        Node::Comprehension { kind, range, slot, body } => comprehension(*kind, range, *slot, body, cx),
    }
}

/// Evaluates a node that must produce a bool (the fast path for conditions).
pub(crate) fn eval_bool<'r>(node: &'r Node, cx: &mut Cx<'r>) -> Res<bool> {
    match node {
        Node::Const(Value::Bool(b)) => Ok(*b),
        Node::CmpConst { subject, op, literal, key } => {
            if let Some(json) = var_json(subject, cx) {
                let json = json.or_fail(cx)?;
                return match (key, json) {
                    (Key::Str(key), serde_json::Value::String(s)) => {
                        Ok(test_ordering(*op, Some(s.as_bytes().cmp(key.as_bytes()))))
                    }
                    (Key::Double(key), serde_json::Value::Number(n)) => {
                        Ok(test_ordering(*op, n.as_f64().and_then(|n| n.partial_cmp(key))))
                    }
                    _ => compare(*op, &Value::from_json(json), literal).or_fail(cx),
                };
            }
            let subject = eval(subject, cx)?;
            match (key, &subject) {
                (Key::Str(key), Value::String(s)) => Ok(test_ordering(*op, Some(s.as_bytes().cmp(key.as_bytes())))),
                (Key::Double(key), Value::Double(d)) => Ok(test_ordering(*op, d.partial_cmp(key))),
                _ => compare(*op, &subject, literal).or_fail(cx),
            }
        }
        Node::StrTest { subject, test } => {
            if let Some(json) = var_json(subject, cx) {
                return match json.or_fail(cx)? {
                    serde_json::Value::String(s) => Ok(test.test(s)),
                    other => Err(cx.fail(no_overload1(test.name(), &Value::from_json(other)))),
                };
            }
            match eval(subject, cx)? {
                Value::String(s) => Ok(test.test(&s)),
                other => Err(cx.fail(no_overload1(test.name(), &other))),
            }
        }
        Node::And(terms) => logic(terms, true, cx),
        Node::Or(terms) => logic(terms, false, cx),
        Node::Not(operand) => Ok(!eval_bool(operand, cx)?),
        Node::InConst { subject, set } => {
            if let Some(json) = var_json(subject, cx) {
                return match json.or_fail(cx)? {
                    serde_json::Value::String(s) => Ok(set.contains_str(s)),
                    other => Ok(set.contains(&Value::from_json(other))),
                };
            }
            let subject = eval(subject, cx)?;
            Ok(set.contains(&subject))
        }
        Node::Has(path) => Ok(has_path(path, cx)),
        Node::HasField { operand, field } => {
            let operand = eval(operand, cx)?;
            Ok(matches!(value::select(&operand, field), Ok(v) if v != Value::Null))
        }
        Node::Cmp { op, lhs, rhs } => {
            let lhs = eval(lhs, cx)?;
            let rhs = eval(rhs, cx)?;
            compare(*op, &lhs, &rhs).or_fail(cx)
        }
        Node::In { needle, haystack } => {
            let needle = eval(needle, cx)?;
            let haystack = eval(haystack, cx)?;
            value::contains(&haystack, &needle).or_fail(cx)
        }
        _ => match eval(node, cx)? {
            Value::Bool(b) => Ok(b),
            other => Err(cx.fail(EvalError::NoOverload { op: "bool", lhs: other.type_name(), rhs: "" })),
        },
    }
}

/// `&&` (`is_and`) or `||` over terms: a decisive operand (false for `&&`, true for `||`) wins
/// even over errors; otherwise the first error, if any, is the result.
#[inline]
fn logic<'r>(terms: &'r [Node], is_and: bool, cx: &mut Cx<'r>) -> Res<bool> {
    let mut first_error: Option<Option<EvalError>> = None;
    for term in terms {
        match eval_bool(term, cx) {
            Ok(b) if b != is_and => return Ok(b),
            Ok(_) => {}
            Err(Failed) => {
                if first_error.is_none() {
                    first_error = Some(cx.error.take());
                }
            }
        }
    }
    match first_error {
        None => Ok(is_and),
        Some(error) => {
            cx.error = error;
            Err(Failed)
        }
    }
}

/// Whether an ordering satisfies `op`; an unordered pair (NaN) is only `!=`.
#[inline]
fn test_ordering(op: CmpOp, ordering: Option<std::cmp::Ordering>) -> bool {
    match ordering {
        Some(o) => match op {
            CmpOp::Eq => o.is_eq(),
            CmpOp::Ne => o.is_ne(),
            CmpOp::Lt => o.is_lt(),
            CmpOp::Le => o.is_le(),
            CmpOp::Gt => o.is_gt(),
            CmpOp::Ge => o.is_ge(),
        },
        None => op == CmpOp::Ne,
    }
}

#[inline]
fn compare(op: CmpOp, lhs: &Value<'_>, rhs: &Value<'_>) -> Result<bool, EvalError> {
    match op {
        CmpOp::Eq => Ok(value::equal(lhs, rhs)),
        CmpOp::Ne => Ok(!value::equal(lhs, rhs)),
        _ => Ok(test_ordering(op, value::compare(lhs, rhs, op.symbol())?)),
    }
}

#[inline]
fn resolve<'r>(path: &'r Path, cx: &mut Cx<'r>) -> Res<Value<'r>> {
    let result = match (path.root, cx.vars) {
        (Root::Var(slot), vars) => match vars.get(slot) {
            Some(Binding::Json(json)) => resolve_json(json, &path.segs).map(Value::from_json).map_err(EvalError::from),
            Some(Binding::Number(n)) if path.segs.is_empty() => Ok(Value::Double(*n)),
            Some(Binding::Number(_)) => Err(EvalError::NoOverload { op: ".", lhs: "double", rhs: "" }),
            Some(Binding::Absent | Binding::Flat(_)) | None => Err(EvalError::NoValue),
        },
        (Root::Flat(var, id), vars) => {
            resolve_flat(vars, var, id, &path.segs).map(Value::from_json).map_err(EvalError::from)
        }
        (Root::Local(slot), _) => resolve_local(slot, &path.segs, cx),
    };
    result.or_fail(cx)
}

/// A path over a flat binding: the extracted value in `id`, then the remaining segments.
#[inline]
fn resolve_flat<'r>(
    vars: &'r [Binding<'r>],
    var: usize,
    id: u32,
    segs: &[Seg],
) -> Result<&'r serde_json::Value, PathError> {
    match vars.get(var) {
        Some(Binding::Flat(slots)) => match slots.get(id as usize) {
            Some(Some(json)) => resolve_json(json, segs),
            _ => Err(PathError::NoSuchKey),
        },
        _ => Err(PathError::NoValue),
    }
}

fn resolve_local<'r>(slot: usize, segs: &[Seg], cx: &Cx<'r>) -> Result<Value<'r>, EvalError> {
    let mut current = cx.locals.get(slot).cloned().ok_or(EvalError::NoValue)?;
    for seg in segs {
        current = step(&current, seg)?;
    }
    Ok(current)
}

#[inline]
fn resolve_json<'r>(mut json: &'r serde_json::Value, segs: &[Seg]) -> Result<&'r serde_json::Value, PathError> {
    for seg in segs {
        json = match (seg, json) {
            (Seg::Field(name), serde_json::Value::Object(fields)) => fields.get(&**name).ok_or(PathError::NoSuchKey)?,
            (Seg::Index(i), serde_json::Value::Array(items)) => {
                usize::try_from(*i).ok().and_then(|i| items.get(i)).ok_or(PathError::IndexOutOfRange)?
            }
            (_, serde_json::Value::Null | serde_json::Value::Object(_)) => return Err(PathError::NoSuchKey),
            (Seg::Field(_), other) => return Err(PathError::Select(JsonKind::of(other))),
            (Seg::Index(_), other) => return Err(PathError::Index(JsonKind::of(other))),
        };
    }
    Ok(json)
}

/// Why a path over JSON did not resolve. Two bytes, so that a `Result<&Value, PathError>`
/// travels in registers on the hot path; converted to [`EvalError`] at the edge.
#[derive(Clone, Copy)]
enum PathError {
    NoSuchKey,
    IndexOutOfRange,
    Select(JsonKind),
    Index(JsonKind),
    NoValue,
}

/// The kinds of JSON value that have no fields.
#[derive(Clone, Copy)]
enum JsonKind {
    Bool,
    Number,
    String,
    Array,
}

impl JsonKind {
    fn of(json: &serde_json::Value) -> JsonKind {
        match json {
            serde_json::Value::Bool(_) => JsonKind::Bool,
            serde_json::Value::Number(_) => JsonKind::Number,
            serde_json::Value::String(_) => JsonKind::String,
            _ => JsonKind::Array,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            JsonKind::Bool => "bool",
            JsonKind::Number => "double",
            JsonKind::String => "string",
            JsonKind::Array => "list",
        }
    }
}

const _: () = assert!(std::mem::size_of::<Option<Result<&serde_json::Value, PathError>>>() == 16);

impl From<PathError> for EvalError {
    #[cold]
    fn from(error: PathError) -> EvalError {
        match error {
            PathError::NoSuchKey => EvalError::NoSuchKey,
            PathError::IndexOutOfRange => EvalError::IndexOutOfRange,
            PathError::Select(kind) => EvalError::NoOverload { op: ".", lhs: kind.type_name(), rhs: "" },
            PathError::Index(kind) => EvalError::NoOverload { op: "[]", lhs: kind.type_name(), rhs: "" },
            PathError::NoValue => EvalError::NoValue,
        }
    }
}

/// The JSON a variable path points to, when the path is rooted at a variable bound to JSON
/// (`None` for locals and number bindings, which take the general route).
#[inline(always)]
fn var_json<'r>(node: &'r Node, cx: &Cx<'r>) -> Option<Result<&'r serde_json::Value, PathError>> {
    let Node::Path(Path { root, segs }) = node else {
        return None;
    };
    match *root {
        Root::Var(slot) => match cx.vars.get(slot) {
            Some(Binding::Json(json)) => Some(resolve_json(json, segs)),
            Some(Binding::Absent | Binding::Flat(_)) | None => Some(Err(PathError::NoValue)),
            Some(Binding::Number(_)) => None,
        },
        Root::Flat(var, id) => Some(resolve_flat(cx.vars, var, id, segs)),
        Root::Local(_) => None,
    }
}

fn step<'r>(current: &Value<'r>, seg: &Seg) -> Result<Value<'r>, EvalError> {
    match seg {
        Seg::Field(name) => value::select(current, name),
        Seg::Index(i) => value::index(current, &Value::Int(*i)),
    }
}

/// `has()` over a path: true iff every step resolves and the final value is not null.
fn has_path(path: &Path, cx: &Cx<'_>) -> bool {
    match path.root {
        Root::Var(slot) => match cx.vars.get(slot) {
            Some(Binding::Json(json)) => resolve_json(json, &path.segs).is_ok_and(|v| !v.is_null()),
            Some(Binding::Number(_)) => path.segs.is_empty(),
            Some(Binding::Absent | Binding::Flat(_)) | None => false,
        },
        Root::Flat(var, id) => resolve_flat(cx.vars, var, id, &path.segs).is_ok_and(|v| !v.is_null()),
        Root::Local(slot) => {
            let Some(mut current) = cx.locals.get(slot).cloned() else {
                return false;
            };
            for seg in path.segs.iter() {
                match step(&current, seg) {
                    Ok(next) => current = next,
                    Err(_) => return false,
                }
            }
            current != Value::Null
        }
    }
}

/// The elements of a list, or the keys of a map, that a macro ranges over.
enum Items<'v, 'r> {
    Json(std::slice::Iter<'r, serde_json::Value>),
    JsonKeys(serde_json::map::Keys<'r>),
    Values(std::slice::Iter<'v, Value<'r>>),
    Keys(std::slice::Iter<'v, (Value<'r>, Value<'r>)>),
}

impl<'v, 'r> Items<'v, 'r> {
    fn of(range: &'v Value<'r>) -> Result<Items<'v, 'r>, EvalError> {
        Ok(match range {
            Value::Json(serde_json::Value::Array(items)) => Items::Json(items.iter()),
            Value::Json(serde_json::Value::Object(fields)) => Items::JsonKeys(fields.keys()),
            Value::List(items) => Items::Values(items.iter()),
            Value::Map(entries) => Items::Keys(entries.iter()),
            other => return Err(no_overload1("macro range", other)),
        })
    }
}

impl<'r> Iterator for Items<'_, 'r> {
    type Item = Value<'r>;

    fn next(&mut self) -> Option<Value<'r>> {
        match self {
            Items::Json(items) => items.next().map(Value::from_json),
            Items::JsonKeys(keys) => keys.next().map(|k| Value::String(k.as_str().into())),
            Items::Values(items) => items.next().cloned(),
            Items::Keys(entries) => entries.next().map(|(k, _)| k.clone()),
        }
    }
}

fn comprehension<'r>(kind: Macro, range: &'r Node, slot: usize, body: &'r Node, cx: &mut Cx<'r>) -> Res<Value<'r>> {
    let range = eval(range, cx)?;
    let items = Items::of(&range).or_fail(cx)?;
    // Locals are a stack: this macro's variable sits at its nesting depth.
    cx.locals.truncate(slot);
    cx.locals.push(Value::Null);
    let result = run_comprehension(kind, items, slot, body, cx);
    cx.locals.truncate(slot);
    result
}

fn run_comprehension<'r>(
    kind: Macro,
    items: Items<'_, 'r>,
    slot: usize,
    body: &'r Node,
    cx: &mut Cx<'r>,
) -> Res<Value<'r>> {
    let mut first_error: Option<Option<EvalError>> = None;
    let mut count = 0usize;
    let mut out = Vec::new();
    for item in items {
        let keep = if kind == Macro::Filter { Some(item.clone()) } else { None };
        if let Some(local) = cx.locals.get_mut(slot) {
            *local = item;
        }
        match kind {
            // Like `&&` / `||`: a decisive element wins over errors in the others.
            Macro::All | Macro::Exists => match eval_bool(body, cx) {
                Ok(b) if b != (kind == Macro::All) => return Ok(Value::Bool(b)),
                Ok(_) => {}
                Err(Failed) => {
                    if first_error.is_none() {
                        first_error = Some(cx.error.take());
                    }
                }
            },
            Macro::ExistsOne => count += usize::from(eval_bool(body, cx)?),
            Macro::Map => out.push(eval(body, cx)?),
            Macro::Filter => {
                if eval_bool(body, cx)? {
                    out.extend(keep);
                }
            }
        }
    }
    if let Some(error) = first_error {
        cx.error = error;
        return Err(Failed);
    }
    match kind {
        Macro::All | Macro::Exists => Ok(Value::Bool(kind == Macro::All)),
        Macro::ExistsOne => Ok(Value::Bool(count == 1)),
        Macro::Map | Macro::Filter => Ok(Value::List(Arc::new(out))),
    }
}
