//! Runtime values of the condition language and the operators on them: equality, ordering,
//! arithmetic, membership, field access. Pure functions on [`Value`]; no knowledge of the tree.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::time::Millis;

/// A value produced while evaluating a condition.
///
/// Strings borrow from the JSON bindings (or the compiled program) whenever they can; JSON arrays
/// and objects are not copied but kept as [`Value::Json`]. JSON numbers are [`Value::Double`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    String(Cow<'a, str>),
    List(Arc<Vec<Value<'a>>>),
    /// Map entries in insertion order; keys are unique under `==`.
    Map(Arc<Vec<(Value<'a>, Value<'a>)>>),
    /// Epoch milliseconds.
    Timestamp(Millis),
    /// Milliseconds.
    Duration(Millis),
    /// A borrowed JSON array or object (scalars are always converted to the variants above).
    Json(&'a serde_json::Value),
}

/// Why an evaluation failed. A failed condition is false; the reason is for tests and debugging,
/// so it is small and never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("no such key")]
    NoSuchKey,
    #[error("variable has no value")]
    NoValue,
    #[error("index out of range")]
    IndexOutOfRange,
    #[error("{}", no_overload_message(op, lhs, rhs))]
    NoOverload { op: &'static str, lhs: &'static str, rhs: &'static str },
    #[error("division by zero")]
    DivisionByZero,
    #[error("integer overflow")]
    Overflow,
    #[error("invalid conversion to {0}")]
    Conversion(&'static str),
    #[error("invalid regex")]
    InvalidRegex,
    #[error("invalid argument to `{0}`")]
    InvalidArgument(&'static str),
    #[error("duplicate map key")]
    DuplicateKey,
}

fn no_overload_message(op: &str, lhs: &str, rhs: &str) -> String {
    if rhs.is_empty() {
        format!("no matching overload for `{op}` on {lhs}")
    } else {
        format!("no matching overload for `{op}` on {lhs} and {rhs}")
    }
}

pub(crate) fn no_overload(op: &'static str, lhs: &Value<'_>, rhs: &Value<'_>) -> EvalError {
    EvalError::NoOverload { op, lhs: lhs.type_name(), rhs: rhs.type_name() }
}

pub(crate) fn no_overload1(op: &'static str, operand: &Value<'_>) -> EvalError {
    EvalError::NoOverload { op, lhs: operand.type_name(), rhs: "" }
}

impl<'a> Value<'a> {
    /// Converts a JSON value: scalars become scalar variants (numbers are doubles, strings are
    /// borrowed), arrays and objects stay borrowed.
    #[inline]
    pub fn from_json(json: &'a serde_json::Value) -> Value<'a> {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(Cow::Borrowed(s.as_str())),
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => Value::Json(json),
        }
    }

    /// The CEL type name, as used in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::UInt(_) => "uint",
            Value::Double(_) => "double",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Timestamp(_) => "timestamp",
            Value::Duration(_) => "duration",
            Value::Json(serde_json::Value::Array(_)) => "list",
            Value::Json(serde_json::Value::Object(_)) => "map",
            Value::Json(json) => Value::from_json(json).type_name(),
        }
    }

    /// A copy that borrows this value's strings instead of cloning them (lists and maps share).
    #[inline]
    pub fn reborrow(&self) -> Value<'_> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::UInt(u) => Value::UInt(*u),
            Value::Double(d) => Value::Double(*d),
            Value::String(s) => Value::String(Cow::Borrowed(s.as_ref())),
            Value::List(items) => Value::List(Arc::clone(items)),
            Value::Map(entries) => Value::Map(Arc::clone(entries)),
            Value::Timestamp(t) => Value::Timestamp(*t),
            Value::Duration(d) => Value::Duration(*d),
            Value::Json(json) => Value::Json(json),
        }
    }

    /// A deep copy that borrows nothing (JSON arrays and objects become lists and maps).
    pub fn to_owned_value<'b>(&self) -> Value<'b> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::UInt(u) => Value::UInt(*u),
            Value::Double(d) => Value::Double(*d),
            Value::String(s) => Value::String(Cow::Owned(s.as_ref().to_owned())),
            Value::List(items) => Value::List(Arc::new(items.iter().map(Value::to_owned_value).collect())),
            Value::Map(entries) => {
                Value::Map(Arc::new(entries.iter().map(|(k, v)| (k.to_owned_value(), v.to_owned_value())).collect()))
            }
            Value::Timestamp(t) => Value::Timestamp(*t),
            Value::Duration(d) => Value::Duration(*d),
            Value::Json(serde_json::Value::Array(items)) => {
                Value::List(Arc::new(items.iter().map(|item| Value::from_json(item).to_owned_value()).collect()))
            }
            Value::Json(serde_json::Value::Object(fields)) => Value::Map(Arc::new(
                fields
                    .iter()
                    .map(|(k, v)| (Value::String(Cow::Owned(k.clone())), Value::from_json(v).to_owned_value()))
                    .collect(),
            )),
            Value::Json(json) => Value::from_json(json).to_owned_value(),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s.as_ref()),
            _ => None,
        }
    }

    fn number(&self) -> Option<Num> {
        match self {
            Value::Int(i) => Some(Num::Int(*i)),
            Value::UInt(u) => Some(Num::UInt(*u)),
            Value::Double(d) => Some(Num::Double(*d)),
            _ => None,
        }
    }

    /// A view of this value as a list, if it is one.
    pub(crate) fn list(&self) -> Option<ListRef<'_, 'a>> {
        match self {
            Value::List(items) => Some(ListRef::Values(items.as_slice())),
            Value::Json(serde_json::Value::Array(items)) => Some(ListRef::Json(items.as_slice())),
            _ => None,
        }
    }

    /// A view of this value as a map, if it is one.
    pub(crate) fn map(&self) -> Option<MapRef<'_, 'a>> {
        match self {
            Value::Map(entries) => Some(MapRef::Values(entries.as_slice())),
            Value::Json(serde_json::Value::Object(fields)) => Some(MapRef::Json(fields)),
            _ => None,
        }
    }
}

impl fmt::Display for Value<'_> {
    /// CEL-like source text (for debugging output).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}u"),
            Value::Double(d) => write!(f, "{d:?}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Timestamp(t) => write!(f, "timestamp({:?})", crate::time::format_timestamp(*t)),
            Value::Duration(d) => write!(f, "duration(\"{}\")", format_duration(*d)),
            Value::Json(json) => write!(f, "{json}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Formats a duration the way CEL's `string(duration)` does: seconds with an `s` suffix.
pub(crate) fn format_duration(ms: Millis) -> String {
    if ms % 1000 == 0 { format!("{}s", ms / 1000) } else { format!("{}s", ms as f64 / 1000.0) }
}

/// A list, whether built by the condition or borrowed from JSON.
#[derive(Clone, Copy)]
pub(crate) enum ListRef<'v, 'a> {
    Values(&'v [Value<'a>]),
    Json(&'a [serde_json::Value]),
}

impl<'v, 'a> ListRef<'v, 'a> {
    pub(crate) fn len(self) -> usize {
        match self {
            ListRef::Values(items) => items.len(),
            ListRef::Json(items) => items.len(),
        }
    }

    pub(crate) fn get(self, index: usize) -> Option<Value<'a>> {
        match self {
            ListRef::Values(items) => items.get(index).cloned(),
            ListRef::Json(items) => items.get(index).map(Value::from_json),
        }
    }

    pub(crate) fn contains(self, needle: &Value<'_>) -> bool {
        match self {
            ListRef::Values(items) => items.iter().any(|item| equal(item, needle)),
            ListRef::Json(items) => items.iter().any(|item| equal(&Value::from_json(item), needle)),
        }
    }
}

/// A map, whether built by the condition or borrowed from a JSON object.
#[derive(Clone, Copy)]
pub(crate) enum MapRef<'v, 'a> {
    Values(&'v [(Value<'a>, Value<'a>)]),
    Json(&'a serde_json::Map<String, serde_json::Value>),
}

impl<'v, 'a> MapRef<'v, 'a> {
    pub(crate) fn len(self) -> usize {
        match self {
            MapRef::Values(entries) => entries.len(),
            MapRef::Json(fields) => fields.len(),
        }
    }

    /// Looks a key up with `==` semantics (JSON objects only have string keys).
    pub(crate) fn get(self, key: &Value<'_>) -> Option<Value<'a>> {
        match self {
            MapRef::Values(entries) => entries.iter().find(|(k, _)| equal(k, key)).map(|(_, v)| v.clone()),
            MapRef::Json(fields) => match key {
                Value::String(s) => fields.get(s.as_ref()).map(Value::from_json),
                _ => None,
            },
        }
    }

    pub(crate) fn get_str(self, key: &str) -> Option<Value<'a>> {
        match self {
            MapRef::Values(entries) => {
                entries.iter().find(|(k, _)| matches!(k, Value::String(s) if s.as_ref() == key)).map(|(_, v)| v.clone())
            }
            MapRef::Json(fields) => fields.get(key).map(Value::from_json),
        }
    }

    fn all_entries_in(self, other: MapRef<'_, '_>) -> bool {
        match self {
            MapRef::Values(entries) => entries.iter().all(|(k, v)| other.get(k).is_some_and(|w| equal(v, &w))),
            MapRef::Json(fields) => {
                fields.iter().all(|(k, v)| other.get_str(k).is_some_and(|w| equal(&Value::from_json(v), &w)))
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    UInt(u64),
    Double(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::UInt(u) => u as f64,
            Num::Double(d) => d,
        }
    }
}

const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

fn cmp_int_double(i: i64, d: f64) -> Option<Ordering> {
    if d.is_nan() {
        return None;
    }
    if d >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if d < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let whole = d.trunc();
    match i.cmp(&(whole as i64)) {
        Ordering::Equal => 0.0_f64.partial_cmp(&(d - whole)),
        other => Some(other),
    }
}

fn cmp_uint_double(u: u64, d: f64) -> Option<Ordering> {
    if d.is_nan() {
        return None;
    }
    if d >= TWO_POW_64 {
        return Some(Ordering::Less);
    }
    if d < 0.0 {
        return Some(Ordering::Greater);
    }
    let whole = d.trunc();
    match u.cmp(&(whole as u64)) {
        Ordering::Equal => 0.0_f64.partial_cmp(&(d - whole)),
        other => Some(other),
    }
}

fn cmp_int_uint(i: i64, u: u64) -> Ordering {
    if i < 0 { Ordering::Less } else { (i as u64).cmp(&u) }
}

/// Numeric comparison across int, uint and double; `None` when a NaN is involved.
fn cmp_num(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::UInt(x), Num::UInt(y)) => Some(x.cmp(&y)),
        (Num::Double(x), Num::Double(y)) => x.partial_cmp(&y),
        (Num::Int(x), Num::UInt(y)) => Some(cmp_int_uint(x, y)),
        (Num::UInt(x), Num::Int(y)) => Some(cmp_int_uint(y, x).reverse()),
        (Num::Int(x), Num::Double(y)) => cmp_int_double(x, y),
        (Num::Double(x), Num::Int(y)) => cmp_int_double(y, x).map(Ordering::reverse),
        (Num::UInt(x), Num::Double(y)) => cmp_uint_double(x, y),
        (Num::Double(x), Num::UInt(y)) => cmp_uint_double(y, x).map(Ordering::reverse),
    }
}

/// CEL `==`: numbers compare across int, uint and double; lists and maps structurally; values of
/// different types are unequal (never an error).
pub(crate) fn equal(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        (Value::Timestamp(x), Value::Timestamp(y)) => x == y,
        // Traits declared `timestamp` are RFC 3339 strings in the lead's JSON.
        (Value::Timestamp(x), Value::String(y)) | (Value::String(y), Value::Timestamp(x)) => {
            crate::time::parse_timestamp(y) == Some(*x)
        }
        (Value::Duration(x), Value::Duration(y)) => x == y,
        _ => {
            if let (Some(x), Some(y)) = (a.number(), b.number()) {
                return cmp_num(x, y) == Some(Ordering::Equal);
            }
            if let (Some(x), Some(y)) = (a.list(), b.list()) {
                return x.len() == y.len()
                    && (0..x.len()).all(|i| match (x.get(i), y.get(i)) {
                        (Some(p), Some(q)) => equal(&p, &q),
                        _ => false,
                    });
            }
            if let (Some(x), Some(y)) = (a.map(), b.map()) {
                return x.len() == y.len() && x.all_entries_in(y);
            }
            false
        }
    }
}

/// CEL `<`, `<=`, `>`, `>=`: `Ok(None)` when unordered (NaN), an error for incomparable types.
pub(crate) fn compare(a: &Value<'_>, b: &Value<'_>, op: &'static str) -> Result<Option<Ordering>, EvalError> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(Some(x.as_bytes().cmp(y.as_bytes()))),
        (Value::Bool(x), Value::Bool(y)) => Ok(Some(x.cmp(y))),
        (Value::Timestamp(x), Value::Timestamp(y)) => Ok(Some(x.cmp(y))),
        // A string holding an RFC 3339 timestamp (a trait declared `timestamp`) orders as one.
        (Value::Timestamp(x), Value::String(y)) => match crate::time::parse_timestamp(y) {
            Some(y) => Ok(Some(x.cmp(&y))),
            None => Err(no_overload(op, a, b)),
        },
        (Value::String(x), Value::Timestamp(y)) => match crate::time::parse_timestamp(x) {
            Some(x) => Ok(Some(x.cmp(y))),
            None => Err(no_overload(op, a, b)),
        },
        (Value::Duration(x), Value::Duration(y)) => Ok(Some(x.cmp(y))),
        // The common case: a JSON number against an int literal that a double holds exactly.
        (Value::Double(x), Value::Int(y)) if y.unsigned_abs() <= 1 << 53 => Ok(x.partial_cmp(&(*y as f64))),
        _ => match (a.number(), b.number()) {
            (Some(x), Some(y)) => Ok(cmp_num(x, y)),
            _ => Err(no_overload(op, a, b)),
        },
    }
}

/// `x in container`: list membership with `==`, or map key presence.
pub(crate) fn contains(container: &Value<'_>, needle: &Value<'_>) -> Result<bool, EvalError> {
    if let Some(list) = container.list() {
        return Ok(list.contains(needle));
    }
    if let Some(map) = container.map() {
        return Ok(map.get(needle).is_some());
    }
    Err(no_overload("in", needle, container))
}

/// Field selection `x.f` (also `x["f"]` on maps).
#[inline]
pub(crate) fn select<'a>(operand: &Value<'a>, field: &str) -> Result<Value<'a>, EvalError> {
    match operand {
        Value::Json(serde_json::Value::Object(fields)) => {
            fields.get(field).map(Value::from_json).ok_or(EvalError::NoSuchKey)
        }
        Value::Map(entries) => MapRef::Values(entries).get_str(field).ok_or(EvalError::NoSuchKey),
        Value::Null => Err(EvalError::NoSuchKey),
        other => Err(EvalError::NoOverload { op: ".", lhs: other.type_name(), rhs: "" }),
    }
}

/// Index `x[i]`: list element or map value.
pub(crate) fn index<'a>(operand: &Value<'a>, key: &Value<'_>) -> Result<Value<'a>, EvalError> {
    if let Some(list) = operand.list() {
        let position = match key {
            Value::Int(i) => usize::try_from(*i).ok(),
            Value::UInt(u) => usize::try_from(*u).ok(),
            Value::Double(d) if d.fract() == 0.0 && *d >= 0.0 => Some(*d as usize),
            _ => return Err(no_overload("[]", operand, key)),
        };
        return position.and_then(|p| list.get(p)).ok_or(EvalError::IndexOutOfRange);
    }
    if let Some(map) = operand.map() {
        return map.get(key).ok_or(EvalError::NoSuchKey);
    }
    if let Value::Null = operand {
        return Err(EvalError::NoSuchKey);
    }
    Err(no_overload("[]", operand, key))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl ArithOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Rem => "%",
        }
    }
}

/// Binary arithmetic. Int and uint arithmetic is checked (overflow is an error) and division
/// truncates; mixing either with a double computes in doubles; mixing int with uint is an error.
/// Division or remainder by zero is an error for every numeric type.
pub(crate) fn arithmetic<'a>(op: ArithOp, a: Value<'a>, b: Value<'a>) -> Result<Value<'a>, EvalError> {
    let err = || no_overload(op.symbol(), &a, &b);
    match (a.number(), b.number()) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => {
            let result = match op {
                ArithOp::Add => x.checked_add(y),
                ArithOp::Sub => x.checked_sub(y),
                ArithOp::Mul => x.checked_mul(y),
                ArithOp::Div | ArithOp::Rem if y == 0 => return Err(EvalError::DivisionByZero),
                ArithOp::Div => x.checked_div(y),
                ArithOp::Rem => x.checked_rem(y),
            };
            return result.map(Value::Int).ok_or(EvalError::Overflow);
        }
        (Some(Num::UInt(x)), Some(Num::UInt(y))) => {
            let result = match op {
                ArithOp::Add => x.checked_add(y),
                ArithOp::Sub => x.checked_sub(y),
                ArithOp::Mul => x.checked_mul(y),
                ArithOp::Div | ArithOp::Rem if y == 0 => return Err(EvalError::DivisionByZero),
                ArithOp::Div => x.checked_div(y),
                ArithOp::Rem => x.checked_rem(y),
            };
            return result.map(Value::UInt).ok_or(EvalError::Overflow);
        }
        (Some(Num::Int(_)), Some(Num::UInt(_))) | (Some(Num::UInt(_)), Some(Num::Int(_))) => {
            return Err(err());
        }
        (Some(x), Some(y)) => {
            let (x, y) = (x.as_f64(), y.as_f64());
            return Ok(Value::Double(match op {
                ArithOp::Add => x + y,
                ArithOp::Sub => x - y,
                ArithOp::Mul => x * y,
                ArithOp::Div | ArithOp::Rem if y == 0.0 => return Err(EvalError::DivisionByZero),
                ArithOp::Div => x / y,
                ArithOp::Rem => x % y,
            }));
        }
        _ => {}
    }
    match (op, &a, &b) {
        (ArithOp::Add, Value::String(x), Value::String(y)) => {
            let mut joined = String::with_capacity(x.len() + y.len());
            joined.push_str(x);
            joined.push_str(y);
            Ok(Value::String(Cow::Owned(joined)))
        }
        (ArithOp::Add, Value::Timestamp(t), Value::Duration(d))
        | (ArithOp::Add, Value::Duration(d), Value::Timestamp(t)) => {
            t.checked_add(*d).map(Value::Timestamp).ok_or(EvalError::Overflow)
        }
        (ArithOp::Sub, Value::Timestamp(t), Value::Duration(d)) => {
            t.checked_sub(*d).map(Value::Timestamp).ok_or(EvalError::Overflow)
        }
        (ArithOp::Sub, Value::Timestamp(t), Value::Timestamp(u)) => {
            t.checked_sub(*u).map(Value::Duration).ok_or(EvalError::Overflow)
        }
        (ArithOp::Add, Value::Duration(d), Value::Duration(e)) => {
            d.checked_add(*e).map(Value::Duration).ok_or(EvalError::Overflow)
        }
        (ArithOp::Sub, Value::Duration(d), Value::Duration(e)) => {
            d.checked_sub(*e).map(Value::Duration).ok_or(EvalError::Overflow)
        }
        (ArithOp::Add, _, _) => match (a.list(), b.list()) {
            (Some(x), Some(y)) => {
                let mut items = Vec::with_capacity(x.len() + y.len());
                for list in [x, y] {
                    items.extend((0..list.len()).filter_map(|i| list.get(i)));
                }
                Ok(Value::List(Arc::new(items)))
            }
            _ => Err(err()),
        },
        _ => Err(err()),
    }
}

/// Unary minus.
pub(crate) fn negate(a: Value<'_>) -> Result<Value<'_>, EvalError> {
    match a {
        Value::Int(i) => i.checked_neg().map(Value::Int).ok_or(EvalError::Overflow),
        Value::Double(d) => Ok(Value::Double(-d)),
        Value::Duration(d) => d.checked_neg().map(Value::Duration).ok_or(EvalError::Overflow),
        other => Err(no_overload1("-", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_exactly_across_int_uint_and_double() {
        assert_eq!(cmp_num(Num::Int(3), Num::Double(3.5)), Some(Ordering::Less));
        assert_eq!(cmp_num(Num::Int(-3), Num::Double(-3.5)), Some(Ordering::Greater));
        assert_eq!(cmp_num(Num::Double(500.0), Num::Int(500)), Some(Ordering::Equal));
        assert_eq!(cmp_num(Num::Int(-1), Num::UInt(0)), Some(Ordering::Less));
        assert_eq!(cmp_num(Num::UInt(u64::MAX), Num::Int(i64::MAX)), Some(Ordering::Greater));
        assert_eq!(cmp_num(Num::Int(i64::MAX), Num::Double(TWO_POW_63)), Some(Ordering::Less));
        assert_eq!(cmp_num(Num::UInt(1), Num::Double(-0.5)), Some(Ordering::Greater));
        assert_eq!(cmp_num(Num::Double(f64::NAN), Num::Int(1)), None);
        // 2^53 + 1 is not representable as a double: the comparison must not round it.
        assert_eq!(
            cmp_num(Num::Int(9_007_199_254_740_993), Num::Double(9_007_199_254_740_992.0)),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn json_and_built_lists_and_maps_are_equal_structurally() {
        let json = serde_json::json!({"a": [1, "x"], "b": null});
        let built = Value::Map(Arc::new(vec![
            (Value::String("b".into()), Value::Null),
            (Value::String("a".into()), Value::List(Arc::new(vec![Value::Int(1), Value::String("x".into())]))),
        ]));
        assert!(equal(&Value::from_json(&json), &built));
        assert!(!equal(&Value::from_json(&json), &Value::Map(Arc::new(vec![]))));
        assert!(!equal(&Value::String("1".into()), &Value::Int(1)));
    }

    #[test]
    fn owned_copies_of_json_become_lists_and_maps() {
        let json = serde_json::json!({"a": [1.5]});
        let owned: Value<'static> = Value::from_json(&json).to_owned_value();
        assert_eq!(
            owned,
            Value::Map(Arc::new(vec![(Value::String("a".into()), Value::List(Arc::new(vec![Value::Double(1.5)])))]))
        );
    }
}
