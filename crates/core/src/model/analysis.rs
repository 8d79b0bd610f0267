//! Warnings about a model that checks: undeclared traits, comparisons against the wrong type,
//! rules whose condition can never match and stages that can never be reached. Warnings never
//! reject a model; they point at what is probably a mistake.

use super::check::condition_span;
use super::{CheckedModel, ModelFile, RawRule, RuleKind, Spanned, TraitType};
use crate::cel::{Atom, CmpOp, Literal, Program};
use crate::diagnostics::{Diagnostic, closest};

/// The message types the Segment spec defines.
const SEGMENT_TYPES: &[&str] = &["identify", "track", "page", "screen", "group", "alias"];

pub(super) fn warnings(source: &str, file: &ModelFile, model: &CheckedModel) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // Rules in the checked model are in file order (a model with errors never gets here).
    for (raw, rule) in file.rules.iter().zip(&model.rules) {
        let Some(text) = condition_text(raw) else { continue };
        let condition = rule.kind.condition();
        let lead_slot = if matches!(rule.kind, RuleKind::Trait { .. }) { 0 } else { 1 };
        if !model.traits.is_empty() {
            undeclared_traits(source, text, condition, lead_slot, model, &mut out);
        }
        never_matches(text, condition, &rule.kind, &rule.name, &mut out);
    }
    out.extend(unreachable_stages(file, model));
    out
}

fn condition_text(raw: &RawRule) -> Option<&Spanned<String>> {
    raw.condition_if.as_ref().or(raw.on.as_ref()).or(raw.inactive.as_ref())
}

fn undeclared_traits(
    source: &str,
    text: &Spanned<String>,
    condition: &Program,
    lead_slot: usize,
    model: &CheckedModel,
    out: &mut Vec<Diagnostic>,
) {
    let declared: Vec<&str> = model.traits.iter().map(|(n, _)| n.as_str()).collect();
    for path in condition.field_paths() {
        if path.var != lead_slot {
            continue;
        }
        let Some(first) = path.path.first() else { continue };
        if first == "id" || first == "account" || declared.contains(&first.as_str()) {
            continue;
        }
        let mut diag = Diagnostic::warning(
            "undeclared_trait",
            Some(condition_span(source, &text.span, &path.span)),
            format!("trait `{first}` is not declared in [traits]"),
        );
        diag = match closest(first, declared.iter().copied()) {
            Some(s) => diag.with_hint(format!("did you mean `{s}`?")),
            None => diag.with_hint(format!("declare it, e.g. `{first} = \"string\"`, or check the spelling")),
        };
        out.push(diag);
    }
    for atom in condition.conjuncts() {
        let Atom::Compare { var, path, value, .. } = atom else { continue };
        if var != lead_slot || path.len() != 1 {
            continue;
        }
        let Some((_, ty)) = model.traits.iter().find(|(n, _)| *n == path[0]) else { continue };
        let fits = matches!(
            (ty, &value),
            (_, Literal::Null)
                | (TraitType::Number, Literal::Int(_) | Literal::UInt(_) | Literal::Double(_))
                | (TraitType::String | TraitType::Timestamp, Literal::String(_))
                | (TraitType::Bool, Literal::Bool(_))
        );
        if !fits {
            out.push(
                Diagnostic::warning(
                    "type_mismatch",
                    Some(text.span.clone()),
                    format!(
                        "trait `{}` is declared `{}` but is compared with {}",
                        path[0],
                        ty.name(),
                        literal_kind(&value)
                    ),
                )
                .with_hint("a comparison between different types never holds"),
            );
        }
    }
}

fn literal_kind(literal: &Literal) -> &'static str {
    match literal {
        Literal::Null => "null",
        Literal::Bool(_) => "a bool",
        Literal::Int(_) | Literal::UInt(_) | Literal::Double(_) => "a number",
        Literal::String(_) => "a string",
    }
}

fn never_matches(text: &Spanned<String>, condition: &Program, kind: &RuleKind, name: &str, out: &mut Vec<Diagnostic>) {
    let mut reason = None;
    if condition.constant() == Some(false) {
        reason = Some("the condition is always false".to_owned());
    }
    let atoms = condition.conjuncts();
    let event_rule = !matches!(kind, RuleKind::Trait { .. });
    for (i, atom) in atoms.iter().enumerate() {
        let Atom::Compare { var, path, op: CmpOp::Eq, value } = atom else { continue };
        if event_rule
            && *var == 0
            && path.len() == 1
            && path[0] == "type"
            && let Literal::String(ty) = value
            && !SEGMENT_TYPES.contains(&ty.as_str())
        {
            reason = Some(format!(
                "event type `{ty}` does not exist{}",
                closest(ty, SEGMENT_TYPES.iter().copied()).map_or_else(
                    || format!(" (known: {})", SEGMENT_TYPES.join(", ")),
                    |s| format!(" (did you mean `{s}`?)")
                )
            ));
        }
        for other in &atoms[i + 1..] {
            if let Atom::Compare { var: v2, path: p2, op: CmpOp::Eq, value: value2 } = other
                && v2 == var
                && p2 == path
                && !literals_equal(value, value2)
            {
                let root = if event_rule { ["event", "lead", "account"] } else { ["lead", "account", ""] };
                let name = std::iter::once(root.get(*var).copied().unwrap_or(""))
                    .chain(path.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(".");
                reason = Some(format!("`{name}` cannot equal two different values at once"));
            }
        }
    }
    if let Some(reason) = reason {
        out.push(Diagnostic::warning(
            "never_matches",
            Some(text.span.clone()),
            format!("rule `{name}` can never match: {reason}"),
        ));
    }
}

fn literals_equal(a: &Literal, b: &Literal) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn number(literal: &Literal) -> Option<f64> {
    match literal {
        Literal::Int(i) => Some(*i as f64),
        Literal::UInt(u) => Some(*u as f64),
        Literal::Double(d) => Some(*d),
        _ => None,
    }
}

/// A closed-or-open interval of reals, from `var op number` constraints.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Interval {
    lo: f64,
    lo_open: bool,
    hi: f64,
    hi_open: bool,
}

impl Interval {
    const ALL: Interval = Interval { lo: f64::NEG_INFINITY, lo_open: true, hi: f64::INFINITY, hi_open: true };

    fn constrain(mut self, op: CmpOp, c: f64) -> Option<Self> {
        match op {
            CmpOp::Ge | CmpOp::Gt => {
                let open = op == CmpOp::Gt;
                if c > self.lo || (c == self.lo && open) {
                    self.lo = c;
                    self.lo_open = open;
                }
            }
            CmpOp::Le | CmpOp::Lt => {
                let open = op == CmpOp::Lt;
                if c < self.hi || (c == self.hi && open) {
                    self.hi = c;
                    self.hi_open = open;
                }
            }
            CmpOp::Eq => {
                self = self.constrain(CmpOp::Ge, c)?.constrain(CmpOp::Le, c)?;
            }
            CmpOp::Ne => return Some(self),
        }
        Some(self)
    }

    fn is_empty(self) -> bool {
        self.lo > self.hi || (self.lo == self.hi && (self.lo_open || self.hi_open))
    }

    fn intersects(self, other: Interval) -> bool {
        !self.meet(other).is_empty()
    }

    fn meet(self, other: Interval) -> Interval {
        let (lo, lo_open) = if self.lo > other.lo || (self.lo == other.lo && self.lo_open) {
            (self.lo, self.lo_open)
        } else {
            (other.lo, other.lo_open)
        };
        let (hi, hi_open) = if self.hi < other.hi || (self.hi == other.hi && self.hi_open) {
            (self.hi, self.hi_open)
        } else {
            (other.hi, other.hi_open)
        };
        Interval { lo, lo_open, hi, hi_open }
    }

    /// Whether every point of `self` is in `other`.
    fn within(self, other: Interval) -> bool {
        let lo_ok = self.lo > other.lo || (self.lo == other.lo && (!other.lo_open || self.lo_open));
        let hi_ok = self.hi < other.hi || (self.hi == other.hi && (!other.hi_open || self.hi_open));
        lo_ok && hi_ok
    }
}

/// The intervals a stage's `when` requires of each variable (dimensions, then `total`), if its
/// condition is a conjunction of comparisons with numbers; `None` if it has any other term.
fn stage_region(when: &Program, vars: usize) -> (Vec<Interval>, bool) {
    let mut region = vec![Interval::ALL; vars];
    let mut pure = true;
    for atom in when.conjuncts() {
        match atom {
            Atom::Compare { var, path, op, value } if path.is_empty() && var < vars => match number(&value) {
                Some(c) if op != CmpOp::Ne => {
                    if let Some(next) = region[var].constrain(op, c) {
                        region[var] = next;
                    }
                }
                _ => pure = false,
            },
            _ => pure = false,
        }
    }
    (region, pure)
}

/// The range each dimension (and the total) can take, from rule points, caps and clamps.
fn reachable_ranges(model: &CheckedModel) -> Vec<Interval> {
    let n = model.dimensions.len();
    let mut lo = vec![0.0_f64; n];
    let mut hi = vec![0.0_f64; n];
    for rule in &model.rules {
        let magnitude = match &rule.kind {
            RuleKind::Event { max_points: Some(m), limit, .. } => {
                limit.map_or(*m, |l| m.min(l as f64 * rule.points.abs()))
            }
            RuleKind::Event { limit: Some(l), .. } => *l as f64 * rule.points.abs(),
            RuleKind::Event { .. } => f64::INFINITY,
            _ => rule.points.abs(),
        };
        if rule.points > 0.0 {
            hi[rule.dimension] += magnitude;
        } else if rule.points < 0.0 {
            lo[rule.dimension] -= magnitude;
        }
    }
    let mut ranges: Vec<Interval> = Vec::with_capacity(n + 1);
    let (mut total_lo, mut total_hi) = (0.0, 0.0);
    for (d, dim) in model.dimensions.iter().enumerate() {
        let mut l = lo[d];
        let mut h = hi[d];
        if let Some(min) = dim.min {
            l = l.max(min);
            h = h.max(min);
        }
        if let Some(max) = dim.max {
            h = h.min(max);
            l = l.min(max);
        }
        ranges.push(Interval { lo: l, lo_open: false, hi: h, hi_open: false });
        let (a, b) = (dim.weight * l, dim.weight * h);
        total_lo += a.min(b);
        total_hi += a.max(b);
    }
    if total_lo.is_nan() {
        total_lo = f64::NEG_INFINITY;
    }
    if total_hi.is_nan() {
        total_hi = f64::INFINITY;
    }
    ranges.push(Interval { lo: total_lo, lo_open: false, hi: total_hi, hi_open: false });
    ranges
}

fn unreachable_stages(file: &ModelFile, model: &CheckedModel) -> Vec<Diagnostic> {
    let vars = model.dimensions.len() + 1;
    let ranges = reachable_ranges(model);
    let regions: Vec<(Vec<Interval>, bool)> = model.stages.iter().map(|s| stage_region(&s.when, vars)).collect();
    let mut out = Vec::new();
    for (i, stage) in model.stages.iter().enumerate() {
        let span =
            file.stages.iter().find_map(|s| s.name.as_ref().filter(|n| n.value == stage.name)).map(|n| n.span.clone());
        let (region, _) = &regions[i];
        let names: Vec<&str> = model.dimensions.iter().map(|d| d.name.as_str()).chain(["total"]).collect();
        if stage.when.constant() == Some(false) {
            out.push(Diagnostic::warning(
                "unreachable_stage",
                span.clone(),
                format!("stage `{}` can never be reached: its condition is always false", stage.name),
            ));
            continue;
        }
        if let Some(v) = (0..vars).find(|&v| !region[v].intersects(ranges[v])) {
            let r = ranges[v];
            out.push(
                Diagnostic::warning(
                    "unreachable_stage",
                    span.clone(),
                    format!(
                        "stage `{}` can never be reached: `{}` can only range from {} to {}",
                        stage.name, names[v], r.lo, r.hi
                    ),
                )
                .with_hint("lower the threshold, or raise the points or the dimension's `max`"),
            );
            continue;
        }
        // A later stage wins whenever its condition holds; if it holds everywhere this one does,
        // this one is never the last that holds.
        for (j, later) in model.stages.iter().enumerate().skip(i + 1) {
            let (later_region, later_pure) = &regions[j];
            if *later_pure && (0..vars).all(|v| region[v].within(later_region[v])) {
                out.push(
                    Diagnostic::warning(
                        "unreachable_stage",
                        span.clone(),
                        format!(
                            "stage `{}` can never be reached: whenever it holds, the later stage `{}` holds too",
                            stage.name, later.name
                        ),
                    )
                    .with_hint("stages are ordered lowest first and the last one that holds wins"),
                );
                break;
            }
        }
    }
    out
}
