//! CEL conditions: parse the text users write, compile it once into a fast evaluator, evaluate it
//! against JSON bindings. Owns the condition language (SPEC §2.1) and nothing else: it knows no
//! rules, dimensions or events, only variables in numbered slots.
//!
//! CONTRACT (the engine and the model checker rely on exactly this API):
//!
//! ```ignore
//! let program = cel::compile(r#"event.type == "page" && lead.employees >= 50"#, &["event", "lead"])?;
//! let act = cel::Activation { vars: &[Binding::Json(&event_json), Binding::Json(&lead_json)], as_of };
//! program.matches(&act)   // true/false; any evaluation error (missing field, wrong type) is false
//! program.conjuncts()     // top-level `&&` terms, classified, for rule indexing and static checks
//! program.field_paths()   // every `var.a.b` path with its span, for trait warnings
//! program.constant()      // Some(b) when the condition folds to a constant
//! ```
//!
//! Spans are byte ranges into the condition text passed to `compile`.
//!
//! # The language
//!
//! Conditions are written in CEL (Common Expression Language) syntax:
//!
//! - Literals: `42`, `0x2A` (int), `42u` (uint), `1.5`, `1e3` (double), strings in single or
//!   double quotes with the usual escapes (`"a\n"`, `'\u00e9'`), triple-quoted strings
//!   (`"""…"""`), raw strings (`r"\d+"`, no escapes), `true`, `false`, `null`, lists `[1, 2]` and
//!   maps `{"k": v}`. Line comments start with `//`.
//! - Operators, loosest first: `c ? a : b`, `||`, `&&`, `== != < <= > >= in`, `+ -`, `* / %`,
//!   unary `! -`, then member access `a.f`, index `a[i]`, calls `f(x)` and methods `x.f(y)`.
//! - Macros: `has(x.f)`; `list.all(v, cond)`, `list.exists(v, cond)`, `list.exists_one(v, cond)`,
//!   `list.map(v, expr)`, `list.filter(v, cond)` with a local variable `v`; on a map they range
//!   over its keys.
//! - Functions: `size(x)` / `x.size()` (string length in code points, list or map size);
//!   `s.startsWith(p)`, `s.endsWith(p)`, `s.contains(p)`; `s.matches(re)` / `matches(s, re)` with
//!   RE2-style regular expressions (the `regex` crate: `(?i)` for case-insensitive, `\b` word
//!   boundaries; a match anywhere in `s` counts, anchor with `^…$`); `s.lowerAscii()`,
//!   `s.upperAscii()`, `s.trim()`; conversions `int(x) uint(x) double(x) string(x) bool(x)`;
//!   `timestamp("2024-05-01T12:00:00Z")` (RFC 3339 or a plain date) and `duration("90d")` (a number
//!   and one unit of `s m h d w`, optionally negative), which support `+ -` and comparisons.
//! - Leadscore functions: `email_domain(s)` is the lower-cased part after the last `@` (an error if
//!   there is none); `is_free_email(s)` takes an e-mail address or a bare domain and is true when
//!   the domain is a free or disposable mail provider (a shipped list of about 14,000 domains:
//!   gmail.com, yahoo.co.uk, gmx.de, mail.ru, qq.com, …); `days_since(t)` is the number of days
//!   (fractional, a double) from `t` to the time the score is computed for (`as_of`), where `t`
//!   is a timestamp or a string in a format `timestamp()` accepts.
//!
//! # Semantics
//!
//! - **Errors are false.** A condition that cannot be evaluated (a missing field or key, a wrong
//!   type, a failed conversion, a division by zero, an int overflow) does not match. Errors are
//!   absorbed the CEL way by `&&` and `||`: `false && error` is false and `error || true` is true,
//!   whichever side the error is on; `!error` is still an error (so `!lead.missing.startsWith("x")`
//!   does not match either); `error ? a : b` is an error. `exists` and `all` absorb errors in
//!   some elements the same way (`[1, "a"].exists(x, x > 0)` is true); `exists_one`, `map` and
//!   `filter` fail on any error. A condition whose value is not a bool does not match.
//! - **Numbers.** JSON numbers are doubles. Comparisons and equality work across int, uint and
//!   double, exactly (`lead.employees >= 500` holds for a JSON `500`, `1 == 1.0` is true).
//!   Arithmetic on two ints stays int (overflow is an error, division truncates toward zero);
//!   mixing int or uint with a double computes in doubles (an extension: CEL would reject it);
//!   mixing int with uint is an error. Division and remainder by zero are errors for doubles too
//!   (CEL gives infinity), and `%` works on doubles (an extension).
//! - **Equality.** `==` and `!=` between values of different kinds (a string and a number, a
//!   number and null) are false and true, never an error. Lists and maps are equal when their
//!   elements are. Ordering (`< <= > >=`) is defined between numbers, between strings (byte-wise,
//!   which is code-point order), between bools, between timestamps and between durations; anything
//!   else is an error. Comparisons involving NaN are false, except `!=`. A string holding an RFC
//!   3339 timestamp compares (`==` and ordering) with a timestamp as that instant (an extension:
//!   traits declared `timestamp` are RFC 3339 strings in the lead's JSON, so
//!   `lead.created_at < timestamp("2024-02-01T00:00:00Z")` works).
//! - **Fields.** `x.f` and `x["f"]` on a missing key, or on `null`, are errors (so the condition is
//!   false). `has(x.f)` is true if and only if the whole path resolves and the last value is not
//!   JSON `null` (a deviation from CEL, where `has` is true for an explicit null: SDKs send nulls
//!   for empty form fields, and users mean "has a value"); it is false, not an error, when a
//!   field along the path is missing or null. `x in list` is membership by `==`; `k in map` tests
//!   the keys.
//! - **Strings.** `size` counts code points; the string functions error on non-strings
//!   (`lead.employees.startsWith("1")` never matches); `lowerAscii`/`upperAscii` change ASCII
//!   letters only. `int("42")` and `double(" 1.5 ")` parse trimmed strings.
//! - **Static checks.** Unknown variables and functions (with a suggestion for near misses:
//!   `lowercase` → `lowerAscii`), wrong argument counts, functions called as methods or the other
//!   way round, invalid literal regexes, literal arguments of the wrong type
//!   (`x.startsWith(1)`), and constant subexpressions that always fail (`1 / 0`,
//!   `duration("90")`, `timestamp("yesterday")`, `x in "abc"`) are compile errors, all reported
//!   at once with byte spans. A literal regex is compiled once, at compile time; a pattern
//!   computed at run time is compiled on every evaluation (an invalid one makes the condition
//!   false).
//! - **Constant folding.** Constant subexpressions are computed once at compile time (`days_since`
//!   never is: it depends on `as_of`); `false && x` and `true || x` fold even when `x` is not
//!   constant. Folded-away parts are still checked and still report their field paths.

mod compiler;
mod eval;
pub(crate) mod functions;
mod lexer;
mod parser;
mod value;

#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

pub use value::{EvalError, Value};

use crate::time::Millis;
use eval::{Cx, Node};

/// A compile error: a byte span into the condition text and a message (lowercase, no final
/// period, user input in backticks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CelError {
    pub span: Range<usize>,
    pub message: String,
}

/// A compiled condition: compile once, evaluate many times. Cheap to clone (shared).
#[derive(Clone)]
pub struct Program {
    inner: Arc<Compiled>,
}

struct Compiled {
    source: String,
    root: Node,
    field_paths: Vec<FieldPath>,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program").field("source", &self.inner.source).finish_non_exhaustive()
    }
}

/// The values of a program's variables for one evaluation, in the order of the `vars` given to
/// [`compile`], and the instant `days_since` measures to.
#[derive(Debug, Clone, Copy)]
pub struct Activation<'a> {
    pub vars: &'a [Binding<'a>],
    pub as_of: Millis,
}

/// One variable's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Binding<'a> {
    Json(&'a serde_json::Value),
    /// A variable whose field paths were extracted ahead of time into numbered slots (see
    /// [`Program::flatten`]); `None` is a path that does not resolve.
    Flat(&'a [Option<serde_json::Value>]),
    Number(f64),
    /// The variable exists but has no value: any access to it is an error (so false).
    Absent,
}

/// A top-level `&&` term of a condition, classified for rule indexing and static checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Atom {
    /// `path OP literal`, or `literal OP path` with the operator mirrored. An empty path is the
    /// variable itself (`total >= 50`).
    Compare {
        var: usize,
        path: Vec<String>,
        op: CmpOp,
        value: Literal,
    },
    /// `path in [literal, …]`.
    In {
        var: usize,
        path: Vec<String>,
        values: Vec<Literal>,
    },
    /// `path.startsWith("literal")`.
    StartsWith {
        var: usize,
        path: Vec<String>,
        prefix: String,
    },
    /// `a || b || …`: true only if one of them is (each classified in turn).
    AnyOf(Vec<Atom>),
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub fn mirrored(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Eq,
            CmpOp::Ne => CmpOp::Ne,
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A literal value as written in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    String(String),
}

impl Literal {
    pub(crate) fn to_value(&self) -> Value<'static> {
        match self {
            Literal::Null => Value::Null,
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Int(i) => Value::Int(*i),
            Literal::UInt(u) => Value::UInt(*u),
            Literal::Double(d) => Value::Double(*d),
            Literal::String(s) => Value::String(s.clone().into()),
        }
    }

    pub(crate) fn from_value(value: &Value<'_>) -> Option<Literal> {
        Some(match value {
            Value::Null => Literal::Null,
            Value::Bool(b) => Literal::Bool(*b),
            Value::Int(i) => Literal::Int(*i),
            Value::UInt(u) => Literal::UInt(*u),
            Value::Double(d) => Literal::Double(*d),
            Value::String(s) => Literal::String(s.as_ref().to_owned()),
            _ => return None,
        })
    }
}

/// A static field path rooted at a variable (`lead.title`, `event.properties.path`), with the span
/// of its text. Paths stop at the first dynamic or numeric index (`lead.tags[0].name` is
/// `lead.tags`); a bare variable has an empty path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    pub var: usize,
    pub path: Vec<String>,
    pub span: Range<usize>,
}

/// The field paths of one variable that flattened programs read, each in a numbered slot: the
/// caller extracts the value at each path (or `None`) and binds the slots with [`Binding::Flat`],
/// so conditions need no JSON tree of the whole variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlatFields {
    paths: Vec<Vec<String>>,
    /// Per slot: only tested with `has()`, so only presence matters (see [`FlatFields::marker`]).
    presence_only: Vec<bool>,
}

impl FlatFields {
    /// The slot of `path`, added if new; `presence_only` when this use is a `has()` test.
    pub fn slot(&mut self, path: &[String], presence_only: bool) -> u32 {
        match self.paths.iter().position(|p| p == path) {
            Some(i) => {
                self.presence_only[i] &= presence_only;
                u32::try_from(i).unwrap_or(u32::MAX)
            }
            None => {
                self.paths.push(path.to_vec());
                self.presence_only.push(presence_only);
                u32::try_from(self.paths.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    /// Whether slot `i` is only tested for presence: then any non-null stand-in
    /// ([`FlatFields::marker`]) can take the place of its value.
    pub fn presence_only(&self, i: usize) -> bool {
        self.presence_only.get(i).copied().unwrap_or(false)
    }

    /// What a presence-only slot holds for a value that is there: `null` stays `null` (`has()` is
    /// false for it), anything else is `true`.
    pub fn marker(value: &serde_json::Value) -> serde_json::Value {
        if value.is_null() { serde_json::Value::Null } else { serde_json::Value::Bool(true) }
    }

    /// The path of each slot.
    pub fn paths(&self) -> &[Vec<String>] {
        &self.paths
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The slots of a JSON value (a convenience for callers holding the whole variable).
    pub fn extract(&self, json: &serde_json::Value) -> Vec<Option<serde_json::Value>> {
        self.paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let mut current = json;
                for key in path {
                    current = current.as_object()?.get(key)?;
                }
                Some(if self.presence_only(i) { FlatFields::marker(current) } else { current.clone() })
            })
            .collect()
    }
}

/// Whether `name` is a CEL keyword or reserved word, so it cannot name a variable.
pub fn is_reserved_word(name: &str) -> bool {
    matches!(name, "true" | "false" | "null" | "in") || lexer::RESERVED.contains(&name)
}

/// Compiles a condition whose variables are `vars` (slot `i` of an [`Activation`] binds
/// `vars[i]`). Returns every error found, sorted by position.
pub fn compile(src: &str, vars: &[&str]) -> Result<Program, Vec<CelError>> {
    let compiled = compiler::compile(src, vars)?;
    Ok(Program { inner: Arc::new(compiled) })
}

impl Program {
    /// Whether the condition holds: true only if it evaluates to the bool `true`; errors and
    /// non-bool results are false.
    pub fn matches(&self, act: &Activation<'_>) -> bool {
        let mut cx = Cx::new(act.vars, act.as_of);
        matches!(eval::eval_bool(&self.inner.root, &mut cx), Ok(true))
    }

    /// The condition's value (for tests and debugging). The result owns its data: JSON arrays and
    /// objects come back as lists and maps.
    pub fn evaluate<'a>(&self, act: &Activation<'a>) -> Result<Value<'a>, EvalError> {
        let mut cx = Cx::new(act.vars, act.as_of);
        match eval::eval(&self.inner.root, &mut cx) {
            Ok(value) => Ok(value.to_owned_value()),
            Err(_) => Err(cx.take_error()),
        }
    }

    /// The top-level `&&` terms (after constant folding), each classified.
    pub fn conjuncts(&self) -> Vec<Atom> {
        match &self.inner.root {
            Node::And(terms) => terms.iter().map(compiler::classify).collect(),
            other => vec![compiler::classify(other)],
        }
    }

    /// Every static path rooted at a variable, in source order (including those inside `has()`,
    /// macros, and branches that constant folding removed).
    pub fn field_paths(&self) -> Vec<FieldPath> {
        self.inner.field_paths.clone()
    }

    /// `Some(b)` when the condition is constant: [`Program::matches`] is always `b`.
    pub fn constant(&self) -> Option<bool> {
        match &self.inner.root {
            Node::Const(Value::Bool(b)) => Some(*b),
            Node::Const(_) => Some(false),
            _ => None,
        }
    }

    /// The condition text as given to [`compile`].
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The same condition reading variable `var` from a [`Binding::Flat`]: every path rooted at
    /// `var` is registered in `fields` (its leading field names) and becomes a slot lookup. The
    /// flattened program matches exactly when the original does on a JSON binding whose slots
    /// were extracted with [`FlatFields`].
    pub fn flatten(&self, var: usize, fields: &mut FlatFields) -> Program {
        let root = self.inner.root.map_paths(&mut |path: &eval::Path, presence: bool| {
            if path.root != eval::Root::Var(var) {
                return path.clone();
            }
            let leading: Vec<String> = path
                .segs
                .iter()
                .map_while(|seg| match seg {
                    eval::Seg::Field(name) => Some(name.to_string()),
                    eval::Seg::Index(_) => None,
                })
                .collect();
            // A path with segments left after the slot reads its value, even under `has()`.
            let id = fields.slot(&leading, presence && leading.len() == path.segs.len());
            eval::Path { root: eval::Root::Flat(var, id), segs: path.segs[leading.len()..].into() }
        });
        Program {
            inner: Arc::new(Compiled {
                source: self.inner.source.clone(),
                root,
                field_paths: self.inner.field_paths.clone(),
            }),
        }
    }

    /// Whether the result can depend on `as_of` (the condition calls `days_since`).
    pub fn reads_clock(&self) -> bool {
        self.inner.root.reads_clock()
    }

    /// Whether the condition reads variable `var` at all.
    pub fn reads_var(&self, var: usize) -> bool {
        self.inner.field_paths.iter().any(|p| p.var == var)
    }
}
