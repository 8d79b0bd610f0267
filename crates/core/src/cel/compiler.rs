//! From syntax tree to evaluator tree: resolves names (variables, macro locals, functions),
//! expands macros, folds constants, fuses common shapes into specialised nodes, pre-compiles
//! literal regexes, and collects every error and every variable field path on the way.

use std::ops::Range;

use super::eval::{self, ConstSet, Cx, Macro, Node, Path, Root, Seg, StrTest};
use super::functions::{FUNCTIONS, Func, MACROS, parse_duration};
use super::lexer::tokenize;
use super::parser::{self, BinaryOp, Expr, ExprKind};
use super::value::{ArithOp, Value};
use super::{Atom, CelError, CmpOp, Compiled, FieldPath, Literal};

pub(crate) fn compile(src: &str, vars: &[&str]) -> Result<Compiled, Vec<CelError>> {
    let (tokens, mut errors) = tokenize(src);
    let expr = match parser::parse(src, &tokens) {
        Ok(expr) => expr,
        Err(error) => {
            errors.push(error);
            return Err(finish_errors(errors));
        }
    };
    let mut compiler = Compiler { vars, locals: Vec::new(), errors, field_paths: Vec::new() };
    let root = compiler.lower(&expr);
    if !compiler.errors.is_empty() {
        return Err(finish_errors(compiler.errors));
    }
    let mut field_paths = compiler.field_paths;
    field_paths.sort_by_key(|p| (p.span.start, p.span.end));
    Ok(Compiled { source: src.to_owned(), root, field_paths })
}

fn finish_errors(mut errors: Vec<CelError>) -> Vec<CelError> {
    errors.sort_by_key(|e| (e.span.start, e.span.end));
    errors.dedup();
    errors
}

/// Classifies one `&&` term for [`super::Program::conjuncts`].
pub(crate) fn classify(node: &Node) -> Atom {
    match node {
        Node::CmpConst { subject, op, literal, .. } => match (var_path(subject), Literal::from_value(literal)) {
            (Some((var, path)), Some(value)) => Atom::Compare { var, path, op: *op, value },
            _ => Atom::Other,
        },
        Node::InConst { subject, set } => {
            let values: Option<Vec<Literal>> = set.items.iter().map(Literal::from_value).collect();
            match (var_path(subject), values) {
                (Some((var, path)), Some(values)) => Atom::In { var, path, values },
                _ => Atom::Other,
            }
        }
        Node::StrTest { subject, test: StrTest::StartsWith(prefix) } => match var_path(subject) {
            Some((var, path)) => Atom::StartsWith { var, path, prefix: prefix.to_string() },
            None => Atom::Other,
        },
        Node::Or(terms) => Atom::AnyOf(terms.iter().map(classify).collect()),
        _ => Atom::Other,
    }
}

/// A variable-rooted path made of field names only.
fn var_path(node: &Node) -> Option<(usize, Vec<String>)> {
    let Node::Path(Path { root: Root::Var(var), segs }) = node else {
        return None;
    };
    let path = segs
        .iter()
        .map(|seg| match seg {
            Seg::Field(name) => Some(name.to_string()),
            Seg::Index(_) => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((*var, path))
}

struct Compiler<'v> {
    vars: &'v [&'v str],
    /// Macro variables in scope, innermost last; a local's slot is its index here.
    locals: Vec<String>,
    errors: Vec<CelError>,
    field_paths: Vec<FieldPath>,
}

/// Whether a node always yields a bool (or an error), never another type.
fn is_boolean(node: &Node) -> bool {
    matches!(
        node,
        Node::Const(Value::Bool(_))
            | Node::Has(_)
            | Node::HasField { .. }
            | Node::Not(_)
            | Node::And(_)
            | Node::Or(_)
            | Node::Cmp { .. }
            | Node::CmpConst { .. }
            | Node::In { .. }
            | Node::InConst { .. }
            | Node::StrTest { .. }
            | Node::Call1 { func: Func::IsFreeEmail, .. }
            | Node::Call2 { .. }
            | Node::Comprehension { kind: Macro::All | Macro::Exists | Macro::ExistsOne, .. }
    )
}

fn is_const(node: &Node) -> bool {
    matches!(node, Node::Const(_))
}

/// Whether `node` depends on nothing but locals bound inside it (slots `>= first_free`).
fn is_closed(node: &Node, first_free: usize) -> bool {
    let closed = |n: &Node| is_closed(n, first_free);
    match node {
        Node::Const(_) => true,
        Node::Invalid => false,
        Node::Path(path) | Node::Has(path) => {
            matches!(path.root, Root::Local(slot) if slot >= first_free)
        }
        Node::Select { operand, .. }
        | Node::HasField { operand, .. }
        | Node::Not(operand)
        | Node::Neg(operand)
        | Node::CmpConst { subject: operand, .. }
        | Node::InConst { subject: operand, .. }
        | Node::StrTest { subject: operand, .. } => closed(operand),
        Node::Call1 { func, arg } => func.is_pure() && closed(arg),
        Node::Index { operand: a, index: b }
        | Node::Cmp { lhs: a, rhs: b, .. }
        | Node::In { needle: a, haystack: b }
        | Node::Arith { lhs: a, rhs: b, .. }
        | Node::Call2 { lhs: a, rhs: b, .. } => closed(a) && closed(b),
        Node::And(items) | Node::Or(items) | Node::List(items) => items.iter().all(closed),
        Node::Map(entries) => entries.iter().all(|(k, v)| closed(k) && closed(v)),
        Node::Ternary { cond, then, otherwise } => closed(cond) && closed(then) && closed(otherwise),
        Node::Comprehension { range, body, .. } => closed(range) && closed(body),
    }
}

fn literal_value(literal: &Literal) -> Value<'static> {
    literal.to_value()
}

fn is_scalar(value: &Value<'_>) -> bool {
    matches!(value, Value::Null | Value::Bool(_) | Value::Int(_) | Value::UInt(_) | Value::Double(_) | Value::String(_))
}

fn cmp_op(op: BinaryOp) -> Option<CmpOp> {
    Some(match op {
        BinaryOp::Eq => CmpOp::Eq,
        BinaryOp::Ne => CmpOp::Ne,
        BinaryOp::Lt => CmpOp::Lt,
        BinaryOp::Le => CmpOp::Le,
        BinaryOp::Gt => CmpOp::Gt,
        BinaryOp::Ge => CmpOp::Ge,
        _ => return None,
    })
}

fn arith_op(op: BinaryOp) -> Option<ArithOp> {
    Some(match op {
        BinaryOp::Add => ArithOp::Add,
        BinaryOp::Sub => ArithOp::Sub,
        BinaryOp::Mul => ArithOp::Mul,
        BinaryOp::Div => ArithOp::Div,
        BinaryOp::Rem => ArithOp::Rem,
        _ => return None,
    })
}

/// A chain of field selections and literal indexes ending at an identifier: `lead.a["b"][0]`.
struct StaticPath<'e> {
    root: &'e str,
    root_span: Range<usize>,
    /// Each segment with the end offset of the expression that selects it.
    segs: Vec<(Seg, usize)>,
}

fn static_path(expr: &Expr) -> Option<StaticPath<'_>> {
    let mut segs = Vec::new();
    let mut current = expr;
    loop {
        match &current.kind {
            ExprKind::Ident(name) => {
                segs.reverse();
                return Some(StaticPath { root: name, root_span: current.span.clone(), segs });
            }
            ExprKind::Select { operand, field } => {
                segs.push((Seg::Field(field.as_str().into()), current.span.end));
                current = operand;
            }
            ExprKind::Index { operand, index } => {
                let seg = match &index.kind {
                    ExprKind::Lit(Literal::String(key)) => Seg::Field(key.as_str().into()),
                    ExprKind::Lit(Literal::Int(i)) => Seg::Index(*i),
                    ExprKind::Lit(Literal::UInt(u)) => Seg::Index(i64::try_from(*u).unwrap_or(i64::MAX)),
                    _ => return None,
                };
                segs.push((seg, current.span.end));
                current = operand;
            }
            _ => return None,
        }
    }
}

/// Edit distance between two names, ignoring ASCII case.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Names people reach for from other languages, and what they mean here.
const ALIASES: &[(&str, &str)] = &[
    ("lower", "lowerAscii"),
    ("lowercase", "lowerAscii"),
    ("toLowerCase", "lowerAscii"),
    ("tolower", "lowerAscii"),
    ("downcase", "lowerAscii"),
    ("upper", "upperAscii"),
    ("uppercase", "upperAscii"),
    ("toUpperCase", "upperAscii"),
    ("toupper", "upperAscii"),
    ("upcase", "upperAscii"),
    ("len", "size"),
    ("length", "size"),
    ("count", "size"),
    ("includes", "contains"),
    ("match", "matches"),
    ("regex", "matches"),
    ("like", "matches"),
    ("strip", "trim"),
    ("any", "exists"),
    ("some", "exists"),
    ("every", "all"),
    ("now", "days_since"),
    ("domain", "email_domain"),
];

/// The known name closest to `name`, if one is close enough to be a likely typo.
fn suggest<'n>(name: &str, known: impl Iterator<Item = &'n str> + Clone) -> Option<&'n str> {
    let normalise = |s: &str| s.replace('_', "").to_ascii_lowercase();
    let wanted = normalise(name);
    if let Some(found) = known.clone().find(|k| normalise(k) == wanted) {
        return Some(found);
    }
    let alias = ALIASES.iter().find(|(alias, _)| alias.eq_ignore_ascii_case(name));
    if let Some((_, target)) = alias
        && let Some(found) = known.clone().find(|k| k == target)
    {
        return Some(found);
    }
    let limit = (name.chars().count() / 3).max(1);
    known.map(|k| (edit_distance(name, k), k)).filter(|(d, _)| *d <= limit).min_by_key(|(d, _)| *d).map(|(_, k)| k)
}

impl Compiler<'_> {
    fn error(&mut self, span: Range<usize>, message: String) -> Node {
        self.errors.push(CelError { span, message });
        Node::Invalid
    }

    fn lower(&mut self, expr: &Expr) -> Node {
        let span = expr.span.clone();
        match &expr.kind {
            ExprKind::Lit(literal) => Node::Const(literal_value(literal)),
            ExprKind::Ident(_) | ExprKind::Select { .. } | ExprKind::Index { .. } => {
                if let Some(path) = static_path(expr) {
                    return self.lower_path(path);
                }
                match &expr.kind {
                    ExprKind::Select { operand, field } => {
                        let operand = self.lower(operand);
                        self.fold(Node::Select { operand: Box::new(operand), field: field.as_str().into() }, span)
                    }
                    ExprKind::Index { operand, index } => {
                        let operand = self.lower(operand);
                        let index = self.lower(index);
                        self.fold(Node::Index { operand: Box::new(operand), index: Box::new(index) }, span)
                    }
                    _ => Node::Invalid,
                }
            }
            ExprKind::Call { target, name, name_span, args } => {
                self.lower_call(target.as_deref(), name, name_span.clone(), args, span)
            }
            ExprKind::List(items) => {
                let items: Vec<Node> = items.iter().map(|item| self.lower(item)).collect();
                self.fold(Node::List(items.into_boxed_slice()), span)
            }
            ExprKind::Map(entries) => {
                let entries: Vec<(Node, Node)> = entries.iter().map(|(k, v)| (self.lower(k), self.lower(v))).collect();
                self.fold(Node::Map(entries.into_boxed_slice()), span)
            }
            ExprKind::Not(operand) => {
                let operand = self.lower(operand);
                self.fold(Node::Not(Box::new(operand)), span)
            }
            ExprKind::Neg(operand) => {
                let operand = self.lower(operand);
                self.fold(Node::Neg(Box::new(operand)), span)
            }
            ExprKind::And(operands) => self.lower_logic(operands, true),
            ExprKind::Or(operands) => self.lower_logic(operands, false),
            ExprKind::Binary { op, lhs, rhs } => {
                let rhs_span = rhs.span.clone();
                let lhs = self.lower(lhs);
                let rhs = self.lower(rhs);
                self.lower_binary(*op, lhs, rhs, span, rhs_span)
            }
            ExprKind::Ternary { cond, then, otherwise } => {
                let cond_span = cond.span.clone();
                let cond = self.lower(cond);
                let then = self.lower(then);
                let otherwise = self.lower(otherwise);
                match cond {
                    Node::Const(Value::Bool(true)) => then,
                    Node::Const(Value::Bool(false)) => otherwise,
                    Node::Const(other) => self.error(
                        cond_span,
                        format!("the condition of `? :` must be a bool, found {}", other.type_name()),
                    ),
                    cond => {
                        Node::Ternary { cond: Box::new(cond), then: Box::new(then), otherwise: Box::new(otherwise) }
                    }
                }
            }
        }
    }

    /// Resolves an identifier: a macro local (innermost first) or a variable.
    fn resolve(&mut self, name: &str, span: Range<usize>) -> Option<Root> {
        if let Some(slot) = self.locals.iter().rposition(|local| local == name) {
            return Some(Root::Local(slot));
        }
        if let Some(var) = self.vars.iter().position(|v| *v == name) {
            return Some(Root::Var(var));
        }
        let mut known: Vec<&str> = self.vars.to_vec();
        for local in self.locals.iter().rev() {
            if !known.contains(&local.as_str()) {
                known.push(local);
            }
        }
        let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
        let hint = if FUNCTIONS.iter().any(|d| d.name == name) || MACROS.contains(&name) {
            format!("; `{name}` is a function, call it with `(…)`")
        } else {
            String::new()
        };
        self.error(span, format!("unknown variable `{name}` (known: {known}){hint}"));
        None
    }

    fn lower_path(&mut self, path: StaticPath<'_>) -> Node {
        let Some(root) = self.resolve(path.root, path.root_span.clone()) else {
            return Node::Invalid;
        };
        if let Root::Var(var) = root {
            let mut names = Vec::new();
            let mut end = path.root_span.end;
            for (seg, seg_end) in &path.segs {
                match seg {
                    Seg::Field(name) => {
                        names.push(name.to_string());
                        end = *seg_end;
                    }
                    Seg::Index(_) => break,
                }
            }
            self.field_paths.push(FieldPath { var, path: names, span: path.root_span.start..end });
        }
        Node::Path(Path { root, segs: path.segs.into_iter().map(|(seg, _)| seg).collect() })
    }

    fn lower_logic(&mut self, operands: &[Expr], is_and: bool) -> Node {
        let op = if is_and { "&&" } else { "||" };
        let mut terms = Vec::with_capacity(operands.len());
        let mut absorbed = false;
        for operand in operands {
            let operand_span = operand.span.clone();
            // Operands after an absorbing constant are still lowered, for their errors and paths.
            match self.lower(operand) {
                // `(a && b) && c` is one chain.
                Node::And(inner) if is_and => terms.extend(inner.into_vec()),
                Node::Or(inner) if !is_and => terms.extend(inner.into_vec()),
                Node::Const(Value::Bool(b)) if b == is_and => {} // the identity: `true &&`, `false ||`
                Node::Const(Value::Bool(_)) => absorbed = true,  // `false &&`, `true ||`
                Node::Const(other) => {
                    self.error(
                        operand_span,
                        format!("the operands of `{op}` must be bools, found {}", other.type_name()),
                    );
                    terms.push(Node::Invalid);
                }
                node => terms.push(node),
            }
        }
        if absorbed {
            return Node::Const(Value::Bool(!is_and));
        }
        match terms.len() {
            0 => Node::Const(Value::Bool(is_and)),
            1 if is_boolean(&terms[0]) => terms.pop().unwrap_or(Node::Invalid),
            _ if is_and => Node::And(terms.into_boxed_slice()),
            _ => Node::Or(terms.into_boxed_slice()),
        }
    }

    fn lower_binary(&mut self, op: BinaryOp, lhs: Node, rhs: Node, span: Range<usize>, rhs_span: Range<usize>) -> Node {
        if let Some(cmp) = cmp_op(op) {
            return match (lhs, rhs) {
                (subject, Node::Const(literal)) if !is_const(&subject) && is_scalar(&literal) => {
                    Node::cmp_const(subject, cmp, literal)
                }
                (Node::Const(literal), subject) if !is_const(&subject) && is_scalar(&literal) => {
                    Node::cmp_const(subject, cmp.mirrored(), literal)
                }
                (lhs, rhs) => self.fold(Node::Cmp { op: cmp, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span),
            };
        }
        if let Some(arith) = arith_op(op) {
            return self.fold(Node::Arith { op: arith, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span);
        }
        // `in`
        match (lhs, rhs) {
            (subject, Node::Const(Value::List(items))) if !is_const(&subject) => {
                Node::InConst { subject: Box::new(subject), set: ConstSet::new(items) }
            }
            (_, Node::Const(haystack)) if !matches!(haystack, Value::List(_) | Value::Map(_)) => self.error(
                rhs_span,
                format!("the right side of `in` must be a list or a map, found {}", haystack.type_name()),
            ),
            (needle, haystack) => self.fold(Node::In { needle: Box::new(needle), haystack: Box::new(haystack) }, span),
        }
    }

    fn lower_call(
        &mut self,
        target: Option<&Expr>,
        name: &str,
        name_span: Range<usize>,
        args: &[Expr],
        span: Range<usize>,
    ) -> Node {
        let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
        // Macros.
        match (target, name) {
            (None, "has") => {
                if args.len() != 1 {
                    return self.error(span, format!("`has` takes 1 argument, found {}", args.len()));
                }
                return self.lower_has(&args[0]);
            }
            (Some(_), "has") => {
                return self.error(name_span, "`has` is a macro: write `has(x.field)`".to_owned());
            }
            (Some(range), "all" | "exists" | "exists_one" | "map" | "filter") => {
                let kind = match name {
                    "all" => Macro::All,
                    "exists" => Macro::Exists,
                    "exists_one" => Macro::ExistsOne,
                    "map" => Macro::Map,
                    _ => Macro::Filter,
                };
                return self.lower_comprehension(kind, name, range, args, span);
            }
            (None, "all" | "exists" | "exists_one" | "map" | "filter") => {
                self.lower_all(args);
                return self.error(name_span, format!("`{name}` is a method: write `list.{name}(x, condition)`"));
            }
            _ => {}
        }
        let Some(def) = FUNCTIONS.iter().find(|d| d.name == name) else {
            if let Some(target) = target {
                self.lower(target);
            }
            self.lower_all(args);
            let known = FUNCTIONS.iter().map(|d| d.name).chain(MACROS.iter().copied());
            let message = match suggest(name, known.clone()) {
                Some(close) => format!("unknown function `{name}` (did you mean `{close}`?)"),
                None => format!("unknown function `{name}` (known: {})", known.collect::<Vec<_>>().join(", ")),
            };
            return self.error(name_span, message);
        };
        let arity = match (target, def.global, def.method) {
            (None, Some(n), _) | (Some(_), _, Some(n)) => n,
            (None, None, _) => {
                self.lower_all(args);
                return self.error(name_span, format!("`{name}` is a method: write `x.{name}(…)`"));
            }
            (Some(target), _, None) => {
                self.lower(target);
                self.lower_all(args);
                return self.error(name_span, format!("`{name}` is a function: write `{name}(x)`"));
            }
        };
        if args.len() != arity {
            if let Some(target) = target {
                self.lower(target);
            }
            self.lower_all(args);
            return self.error(span, format!("`{name}` takes {arity} {}, found {}", plural(arity), args.len()));
        }
        let arg_exprs: Vec<&Expr> = target.into_iter().chain(args.iter()).collect();
        let mut nodes: Vec<Node> = arg_exprs.iter().map(|e| self.lower(e)).collect();
        if nodes.iter().any(|n| matches!(n, Node::Invalid)) {
            return Node::Invalid;
        }
        let func = def.func;
        match nodes.len() {
            1 => {
                let arg = nodes.pop().unwrap_or(Node::Invalid);
                if !self.check_constant_conversion(func, &arg, span.clone()) {
                    return Node::Invalid;
                }
                self.fold(Node::Call1 { func, arg: Box::new(arg) }, span)
            }
            _ => {
                let rhs = nodes.pop().unwrap_or(Node::Invalid);
                let lhs = nodes.pop().unwrap_or(Node::Invalid);
                let rhs_span = arg_exprs.last().map_or(span.clone(), |e| e.span.clone());
                self.lower_string_test(func, lhs, rhs, span, rhs_span)
            }
        }
    }

    fn lower_all(&mut self, exprs: &[Expr]) {
        for expr in exprs {
            self.lower(expr);
        }
    }

    /// `timestamp("…")`, `days_since("…")` and `duration("…")` with a bad literal get a specific
    /// message. Returns whether the argument is fine.
    fn check_constant_conversion(&mut self, func: Func, arg: &Node, span: Range<usize>) -> bool {
        let Node::Const(Value::String(text)) = arg else {
            return true;
        };
        match func {
            Func::Timestamp | Func::DaysSince if crate::time::parse_timestamp(text).is_none() => {
                self.error(
                    span,
                    format!(
                        "invalid timestamp `{text}` (use RFC 3339 like `2024-05-01T12:00:00Z` or a date like `2024-05-01`)"
                    ),
                );
            }
            Func::Duration if parse_duration(text).is_none() => {
                let message = match crate::time::Duration::parse(text.trim().trim_start_matches('-')) {
                    Err(e) => e.to_string(),
                    Ok(_) => format!("invalid duration `{text}`"),
                };
                self.error(span, message);
            }
            _ => return true,
        }
        false
    }

    /// Two-argument string functions: fused with a literal argument, regexes compiled once.
    fn lower_string_test(
        &mut self,
        func: Func,
        lhs: Node,
        rhs: Node,
        span: Range<usize>,
        rhs_span: Range<usize>,
    ) -> Node {
        let Node::Const(arg) = &rhs else {
            return Node::Call2 { func, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        };
        let Value::String(text) = arg else {
            return self
                .error(rhs_span, format!("`{}` takes a string argument, found {}", func.name(), arg.type_name()));
        };
        let test = match func {
            Func::StartsWith => StrTest::StartsWith(text.as_ref().into()),
            Func::EndsWith => StrTest::EndsWith(text.as_ref().into()),
            Func::Contains => StrTest::Contains(text.as_ref().into()),
            _ => match regex::Regex::new(text) {
                Ok(re) => StrTest::Matches(eval::Pattern::new(re)),
                Err(e) => {
                    return self.error(rhs_span, format!("invalid regex `{text}`: {}", regex_summary(&e)));
                }
            },
        };
        self.fold(Node::StrTest { subject: Box::new(lhs), test }, span)
    }

    fn lower_has(&mut self, arg: &Expr) -> Node {
        let ExprKind::Select { operand, field } = &arg.kind else {
            self.lower(arg);
            return self.error(arg.span.clone(), "`has` needs a field selection like `has(lead.title)`".to_owned());
        };
        if let Some(path) = static_path(arg) {
            return match self.lower_path(path) {
                Node::Path(path) => Node::Has(path),
                other => other,
            };
        }
        let operand = self.lower(operand);
        self.fold(Node::HasField { operand: Box::new(operand), field: field.as_str().into() }, arg.span.clone())
    }

    fn lower_comprehension(
        &mut self,
        kind: Macro,
        name: &str,
        range: &Expr,
        args: &[Expr],
        span: Range<usize>,
    ) -> Node {
        let range_node = self.lower(range);
        let [var, body] = args else {
            let what = if kind == Macro::Map { "an expression" } else { "a condition" };
            return self
                .error(span, format!("`{name}` takes 2 arguments (a variable name and {what}), found {}", args.len()));
        };
        let ExprKind::Ident(var_name) = &var.kind else {
            self.lower(body);
            return self.error(var.span.clone(), format!("the first argument of `{name}` must be a variable name"));
        };
        let slot = self.locals.len();
        self.locals.push(var_name.clone());
        let body = self.lower(body);
        self.locals.pop();
        let node = Node::Comprehension { kind, range: Box::new(range_node), slot, body: Box::new(body) };
        if is_closed(&node, slot) {
            return self.fold_now(node, span);
        }
        node
    }

    /// Folds a node whose children are all constants (and whose function, if any, is pure).
    fn fold(&mut self, node: Node, span: Range<usize>) -> Node {
        let foldable = match &node {
            Node::Select { operand, .. }
            | Node::HasField { operand, .. }
            | Node::Not(operand)
            | Node::Neg(operand)
            | Node::StrTest { subject: operand, .. } => is_const(operand),
            Node::Call1 { func, arg } => func.is_pure() && is_const(arg),
            Node::Index { operand: a, index: b }
            | Node::Cmp { lhs: a, rhs: b, .. }
            | Node::In { needle: a, haystack: b }
            | Node::Arith { lhs: a, rhs: b, .. }
            | Node::Call2 { lhs: a, rhs: b, .. } => is_const(a) && is_const(b),
            Node::List(items) => items.iter().all(is_const),
            Node::Map(entries) => entries.iter().all(|(k, v)| is_const(k) && is_const(v)),
            _ => false,
        };
        if foldable { self.fold_now(node, span) } else { node }
    }

    fn fold_now(&mut self, node: Node, span: Range<usize>) -> Node {
        let mut cx = Cx::new(&[], 0);
        let result = match eval::eval(&node, &mut cx) {
            Ok(value) => Ok(value.to_owned_value()),
            Err(_) => Err(cx.take_error()),
        };
        match result {
            Ok(value) => Node::Const(value),
            Err(e) => self.error(span, format!("this expression always fails: {e}")),
        }
    }
}

/// The last line of a `regex` error ("error: unclosed group"), lowercase, without a final period.
fn regex_summary(error: &regex::Error) -> String {
    let text = error.to_string();
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&text)
        .trim()
        .trim_start_matches("error: ")
        .trim_end_matches('.');
    let mut chars = line.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "invalid pattern".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_aliases_and_spelling_variants() {
        let known = || FUNCTIONS.iter().map(|d| d.name).chain(MACROS.iter().copied());
        assert_eq!(suggest("lowercase", known()), Some("lowerAscii"));
        assert_eq!(suggest("startswith", known()), Some("startsWith"));
        assert_eq!(suggest("starts_with", known()), Some("startsWith"));
        assert_eq!(suggest("emailDomain", known()), Some("email_domain"));
        assert_eq!(suggest("lowerAsci", known()), Some("lowerAscii"));
        assert_eq!(suggest("length", known()), Some("size"));
        assert_eq!(suggest("frobnicate", known()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
