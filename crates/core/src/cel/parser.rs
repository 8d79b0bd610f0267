//! The syntax tree and a recursive-descent parser for CEL's expression grammar:
//!
//! ```text
//! Expr     = Or ["?" Or ":" Expr]
//! Or       = And {"||" And}
//! And      = Relation {"&&" Relation}
//! Relation = Add {("<" | "<=" | ">=" | ">" | "==" | "!=" | "in") Add}
//! Add      = Mul {("+" | "-") Mul}
//! Mul      = Unary {("*" | "/" | "%") Unary}
//! Unary    = Member | "!" {"!"} Member | "-" {"-"} Member
//! Member   = Primary {"." IDENT ["(" [Args] ")"] | "[" Expr "]"}
//! Primary  = IDENT ["(" [Args] ")"] | "(" Expr ")" | "[" [Args] [","] "]"
//!          | "{" [Entries] [","] "}" | LITERAL
//! ```
//!
//! Stops at the first syntax error (lexical errors are reported by the lexer and skipped).

use std::ops::Range;

use super::lexer::{RESERVED, Tok, Token};
use super::{CelError, Literal};

/// Deeper trees are rejected: evaluation and compilation recurse over them.
pub(crate) const MAX_DEPTH: u32 = 200;

/// Deeper nesting of parentheses, brackets and call arguments is rejected: the parser recurses
/// through a dozen functions per level.
const MAX_NESTING: u32 = 64;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    pub(crate) kind: ExprKind,
    pub(crate) span: Range<usize>,
    pub(crate) depth: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExprKind {
    Lit(Literal),
    Ident(String),
    Select {
        operand: Box<Expr>,
        field: String,
    },
    Index {
        operand: Box<Expr>,
        index: Box<Expr>,
    },
    Call {
        target: Option<Box<Expr>>,
        name: String,
        name_span: Range<usize>,
        args: Vec<Expr>,
    },
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    /// Two or more operands.
    And(Vec<Expr>),
    /// Two or more operands.
    Or(Vec<Expr>),
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Expr {
    fn new(kind: ExprKind, span: Range<usize>) -> Expr {
        let child = |e: &Expr| e.depth;
        let depth = 1 + match &kind {
            ExprKind::Lit(_) | ExprKind::Ident(_) => 0,
            ExprKind::Select { operand, .. } | ExprKind::Not(operand) | ExprKind::Neg(operand) => child(operand),
            ExprKind::Index { operand, index } => child(operand).max(child(index)),
            ExprKind::Call { target, args, .. } => {
                target.iter().map(|t| child(t)).chain(args.iter().map(child)).max().unwrap_or(0)
            }
            ExprKind::List(items) | ExprKind::And(items) | ExprKind::Or(items) => {
                items.iter().map(child).max().unwrap_or(0)
            }
            ExprKind::Map(entries) => entries.iter().map(|(k, v)| child(k).max(child(v))).max().unwrap_or(0),
            ExprKind::Binary { lhs, rhs, .. } => child(lhs).max(child(rhs)),
            ExprKind::Ternary { cond, then, otherwise } => child(cond).max(child(then)).max(child(otherwise)),
        };
        Expr { kind, span, depth }
    }
}

pub(crate) fn parse(src: &str, tokens: &[Token]) -> Result<Expr, CelError> {
    let mut parser = Parser { src, tokens, pos: 0, nesting: 0 };
    let expr = parser.expr()?;
    let token = parser.peek();
    if token.tok != Tok::Eof {
        return Err(parser.unexpected("end of input"));
    }
    Ok(expr)
}

struct Parser<'s, 't> {
    src: &'s str,
    tokens: &'t [Token],
    pos: usize,
    nesting: u32,
}

impl Parser<'_, '_> {
    fn peek(&self) -> &Token {
        // The lexer always ends the stream with `Eof`, and the parser never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_tok(&self) -> &Tok {
        &self.peek().tok
    }

    fn peek_second(&self) -> &Tok {
        &self.tokens[(self.pos + 1).min(self.tokens.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::Eof {
            self.pos += 1;
        }
        token
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek_tok() == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    fn describe(&self, token: &Token) -> String {
        match token.tok {
            Tok::Eof => "end of input".to_owned(),
            _ => format!("`{}`", &self.src[token.span.clone()]),
        }
    }

    /// "expected X, found Y", with a hint for words borrowed from other languages.
    fn unexpected(&self, expected: &str) -> CelError {
        let token = self.peek();
        let hint = match &token.tok {
            Tok::Ident(word) => match word.as_str() {
                "and" | "AND" => " (did you mean `&&`?)",
                "or" | "OR" => " (did you mean `||`?)",
                "not" | "NOT" => " (did you mean `!`?)",
                _ => "",
            },
            _ => "",
        };
        CelError {
            span: token.span.clone(),
            message: format!("expected {expected}, found {}{hint}", self.describe(token)),
        }
    }

    fn expect(&mut self, tok: &Tok, shown: &str) -> Result<Token, CelError> {
        if self.peek_tok() == tok { Ok(self.bump()) } else { Err(self.unexpected(&format!("`{shown}`"))) }
    }

    fn check_depth(&self, expr: Expr) -> Result<Expr, CelError> {
        if expr.depth > MAX_DEPTH {
            return Err(CelError {
                span: expr.span,
                message: format!("expression is nested too deeply (more than {MAX_DEPTH} levels)"),
            });
        }
        Ok(expr)
    }

    fn expr(&mut self) -> Result<Expr, CelError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            let span = self.peek().span.clone();
            return Err(CelError {
                span,
                message: format!("expression is nested too deeply (more than {MAX_NESTING} levels)"),
            });
        }
        let result = self.ternary();
        self.nesting -= 1;
        result
    }

    fn ternary(&mut self) -> Result<Expr, CelError> {
        let cond = self.or()?;
        if !self.eat(&Tok::Question) {
            return Ok(cond);
        }
        let then = self.or()?;
        self.expect(&Tok::Colon, ":")?;
        let otherwise = self.expr()?;
        let span = cond.span.start..otherwise.span.end;
        self.check_depth(Expr::new(
            ExprKind::Ternary { cond: Box::new(cond), then: Box::new(then), otherwise: Box::new(otherwise) },
            span,
        ))
    }

    fn or(&mut self) -> Result<Expr, CelError> {
        let mut operands = vec![self.and()?];
        while self.eat(&Tok::OrOr) {
            operands.push(self.and()?);
        }
        Ok(Self::chain(operands, ExprKind::Or))
    }

    fn and(&mut self) -> Result<Expr, CelError> {
        let mut operands = vec![self.relation()?];
        while self.eat(&Tok::AndAnd) {
            operands.push(self.relation()?);
        }
        Ok(Self::chain(operands, ExprKind::And))
    }

    fn chain(mut operands: Vec<Expr>, kind: fn(Vec<Expr>) -> ExprKind) -> Expr {
        if operands.len() == 1
            && let Some(only) = operands.pop()
        {
            return only;
        }
        let start = operands.first().map_or(0, |e| e.span.start);
        let end = operands.last().map_or(0, |e| e.span.end);
        Expr::new(kind(operands), start..end)
    }

    fn binary_level(
        &mut self,
        next: fn(&mut Self) -> Result<Expr, CelError>,
        op_of: fn(&Tok) -> Option<BinaryOp>,
    ) -> Result<Expr, CelError> {
        let mut lhs = next(self)?;
        while let Some(op) = op_of(self.peek_tok()) {
            self.bump();
            let rhs = next(self)?;
            let span = lhs.span.start..rhs.span.end;
            lhs = self.check_depth(Expr::new(ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span))?;
        }
        Ok(lhs)
    }

    fn relation(&mut self) -> Result<Expr, CelError> {
        self.binary_level(Self::addition, |tok| match tok {
            Tok::EqEq => Some(BinaryOp::Eq),
            Tok::Ne => Some(BinaryOp::Ne),
            Tok::Lt => Some(BinaryOp::Lt),
            Tok::Le => Some(BinaryOp::Le),
            Tok::Gt => Some(BinaryOp::Gt),
            Tok::Ge => Some(BinaryOp::Ge),
            Tok::In => Some(BinaryOp::In),
            _ => None,
        })
    }

    fn addition(&mut self) -> Result<Expr, CelError> {
        self.binary_level(Self::multiplication, |tok| match tok {
            Tok::Plus => Some(BinaryOp::Add),
            Tok::Minus => Some(BinaryOp::Sub),
            _ => None,
        })
    }

    fn multiplication(&mut self) -> Result<Expr, CelError> {
        self.binary_level(Self::unary, |tok| match tok {
            Tok::Star => Some(BinaryOp::Mul),
            Tok::Slash => Some(BinaryOp::Div),
            Tok::Percent => Some(BinaryOp::Rem),
            _ => None,
        })
    }

    fn unary(&mut self) -> Result<Expr, CelError> {
        let mut ops = Vec::new();
        while matches!(self.peek_tok(), Tok::Bang | Tok::Minus) {
            let token = self.bump();
            ops.push((token.tok == Tok::Bang, token.span.start));
        }
        // `-9223372036854775808` is the one int literal whose magnitude does not fit an int.
        let mut operand = match (ops.last(), self.peek_tok(), self.peek_second()) {
            (Some((false, minus_start)), Tok::Int(magnitude), next)
                if *magnitude == 1u64 << 63 && !matches!(next, Tok::Dot | Tok::LBracket) =>
            {
                let span = *minus_start..self.peek().span.end;
                ops.pop();
                self.bump();
                Expr::new(ExprKind::Lit(Literal::Int(i64::MIN)), span)
            }
            _ => self.member()?,
        };
        while let Some((is_not, op_start)) = ops.pop() {
            let span = op_start..operand.span.end;
            let kind = if is_not { ExprKind::Not(Box::new(operand)) } else { ExprKind::Neg(Box::new(operand)) };
            operand = self.check_depth(Expr::new(kind, span))?;
        }
        Ok(operand)
    }

    fn member(&mut self) -> Result<Expr, CelError> {
        let mut expr = self.primary()?;
        loop {
            if self.eat(&Tok::Dot) {
                let token = self.bump();
                let name = match &token.tok {
                    Tok::Ident(name) => name.clone(),
                    // Field names may be words the grammar otherwise reserves (`event.in` is rare,
                    // `properties.null` rarer, but neither is ambiguous after a dot).
                    Tok::True | Tok::False | Tok::Null | Tok::In => self.src[token.span.clone()].to_owned(),
                    _ => {
                        self.pos -= usize::from(token.tok != Tok::Eof);
                        return Err(self.unexpected("a field name after `.`"));
                    }
                };
                if self.peek_tok() == &Tok::LParen {
                    self.bump();
                    let args = self.args(&Tok::RParen, ")")?;
                    let end = self.tokens[self.pos - 1].span.end;
                    let span = expr.span.start..end;
                    expr = self.check_depth(Expr::new(
                        ExprKind::Call { target: Some(Box::new(expr)), name, name_span: token.span, args },
                        span,
                    ))?;
                } else {
                    let span = expr.span.start..token.span.end;
                    expr =
                        self.check_depth(Expr::new(ExprKind::Select { operand: Box::new(expr), field: name }, span))?;
                }
            } else if self.eat(&Tok::LBracket) {
                let index = self.expr()?;
                let close = self.expect(&Tok::RBracket, "]")?;
                let span = expr.span.start..close.span.end;
                expr = self.check_depth(Expr::new(
                    ExprKind::Index { operand: Box::new(expr), index: Box::new(index) },
                    span,
                ))?;
            } else {
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, CelError> {
        let token = self.peek().clone();
        let literal = match &token.tok {
            Tok::Int(magnitude) => Some(match i64::try_from(*magnitude) {
                Ok(i) => Literal::Int(i),
                Err(_) => {
                    let text = &self.src[token.span.clone()];
                    return Err(CelError {
                        message: format!("integer `{text}` is out of range (use a `u` suffix for a uint)"),
                        span: token.span,
                    });
                }
            }),
            Tok::UInt(u) => Some(Literal::UInt(*u)),
            Tok::Double(d) => Some(Literal::Double(*d)),
            Tok::Str(s) => Some(Literal::String(s.clone())),
            Tok::True => Some(Literal::Bool(true)),
            Tok::False => Some(Literal::Bool(false)),
            Tok::Null => Some(Literal::Null),
            _ => None,
        };
        if let Some(literal) = literal {
            self.bump();
            return Ok(Expr::new(ExprKind::Lit(literal), token.span));
        }
        match &token.tok {
            Tok::Ident(name) => {
                if RESERVED.contains(&name.as_str()) {
                    return Err(CelError { span: token.span, message: format!("`{name}` is a reserved word") });
                }
                self.bump();
                if self.eat(&Tok::LParen) {
                    let args = self.args(&Tok::RParen, ")")?;
                    let end = self.tokens[self.pos - 1].span.end;
                    let span = token.span.start..end;
                    return self.check_depth(Expr::new(
                        ExprKind::Call { target: None, name: name.clone(), name_span: token.span, args },
                        span,
                    ));
                }
                Ok(Expr::new(ExprKind::Ident(name.clone()), token.span))
            }
            Tok::LParen => {
                self.bump();
                let mut inner = self.expr()?;
                let close = self.expect(&Tok::RParen, ")")?;
                // The parenthesised expression's span includes its parentheses.
                inner.span = token.span.start..close.span.end;
                Ok(inner)
            }
            Tok::LBracket => {
                self.bump();
                let items = self.args(&Tok::RBracket, "]")?;
                let end = self.tokens[self.pos - 1].span.end;
                self.check_depth(Expr::new(ExprKind::List(items), token.span.start..end))
            }
            Tok::LBrace => {
                self.bump();
                let mut entries = Vec::new();
                while self.peek_tok() != &Tok::RBrace {
                    let key = self.expr()?;
                    self.expect(&Tok::Colon, ":")?;
                    let value = self.expr()?;
                    entries.push((key, value));
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
                let close = self.expect(&Tok::RBrace, "}")?;
                self.check_depth(Expr::new(ExprKind::Map(entries), token.span.start..close.span.end))
            }
            Tok::Dot => Err(CelError {
                span: token.span,
                message: "qualified names starting with `.` are not supported".to_owned(),
            }),
            _ => Err(self.unexpected("an expression")),
        }
    }

    /// Comma-separated expressions up to `close` (consumed); a trailing comma is allowed.
    fn args(&mut self, close: &Tok, shown: &str) -> Result<Vec<Expr>, CelError> {
        let mut items = Vec::new();
        while self.peek_tok() != close {
            items.push(self.expr()?);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(close, shown)?;
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    /// Renders the tree with explicit parentheses, to check precedence and associativity.
    fn show(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Lit(Literal::String(s)) => format!("{s:?}"),
            ExprKind::Lit(l) => format!("{l:?}"),
            ExprKind::Ident(name) => name.clone(),
            ExprKind::Select { operand, field } => format!("{}.{field}", show(operand)),
            ExprKind::Index { operand, index } => format!("{}[{}]", show(operand), show(index)),
            ExprKind::Call { target, name, args, .. } => {
                let args: Vec<_> = args.iter().map(show).collect();
                match target {
                    Some(t) => format!("{}.{name}({})", show(t), args.join(", ")),
                    None => format!("{name}({})", args.join(", ")),
                }
            }
            ExprKind::List(items) => {
                format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(", "))
            }
            ExprKind::Map(entries) => format!(
                "{{{}}}",
                entries.iter().map(|(k, v)| format!("{}: {}", show(k), show(v))).collect::<Vec<_>>().join(", ")
            ),
            ExprKind::Not(x) => format!("!{}", show(x)),
            ExprKind::Neg(x) => format!("-{}", show(x)),
            ExprKind::And(xs) => {
                format!("({})", xs.iter().map(show).collect::<Vec<_>>().join(" && "))
            }
            ExprKind::Or(xs) => {
                format!("({})", xs.iter().map(show).collect::<Vec<_>>().join(" || "))
            }
            ExprKind::Binary { op, lhs, rhs } => format!("({} {op:?} {})", show(lhs), show(rhs)),
            ExprKind::Ternary { cond, then, otherwise } => {
                format!("({} ? {} : {})", show(cond), show(then), show(otherwise))
            }
        }
    }

    fn parse_ok(src: &str) -> Expr {
        let (tokens, errors) = tokenize(src);
        assert!(errors.is_empty(), "{errors:?}");
        parse(src, &tokens).unwrap()
    }

    fn parse_err(src: &str) -> (Range<usize>, String) {
        let (tokens, _) = tokenize(src);
        let err = parse(src, &tokens).unwrap_err();
        (err.span, err.message)
    }

    #[test]
    fn precedence_follows_cel() {
        let cases = [
            ("a || b && c", "(a || (b && c))"),
            ("a && b || c && d", "((a && b) || (c && d))"),
            ("a == b && c", "((a Eq b) && c)"),
            ("1 + 2 * 3 == 7", "((Int(1) Add (Int(2) Mul Int(3))) Eq Int(7))"),
            ("1 - 2 - 3", "((Int(1) Sub Int(2)) Sub Int(3))"),
            ("a < b == c", "((a Lt b) Eq c)"),
            ("x in [1, 2]", "(x In [Int(1), Int(2)])"),
            ("!a.b", "!a.b"),
            ("-a.b[0]", "-a.b[Int(0)]"),
            ("a ? b : c ? d : e", "(a ? b : (c ? d : e))"),
            ("a || b ? c : d", "((a || b) ? c : d)"),
            ("(a || b) && c", "((a || b) && c)"),
            ("a.f(1, 'x').g", "a.f(Int(1), \"x\").g"),
            ("size(x) > 0", "(size(x) Gt Int(0))"),
            ("{'a': 1, 'b': [2,]}", "{\"a\": Int(1), \"b\": [Int(2)]}"),
            ("-9223372036854775808", "Int(-9223372036854775808)"),
            ("!!true", "!!Bool(true)"),
            ("a.in", "a.in"),
        ];
        for (src, want) in cases {
            assert_eq!(show(&parse_ok(src)), want, "{src}");
        }
    }

    #[test]
    fn spans_cover_the_source_text() {
        let e = parse_ok("  lead.title . startsWith ( 'x' )  ");
        assert_eq!(e.span, 2..33);
        let ExprKind::Call { name_span, target: Some(target), .. } = &e.kind else { panic!() };
        assert_eq!(*name_span, 15..25);
        assert_eq!(target.span, 2..12);
        assert_eq!(parse_ok("(a)").span, 0..3);
        assert_eq!(parse_ok("- 5").span, 0..3);
    }

    #[test]
    fn syntax_errors_name_what_was_expected() {
        assert_eq!(parse_err("size(x"), (6..6, "expected `)`, found end of input".into()));
        assert_eq!(parse_err("a + "), (4..4, "expected an expression, found end of input".into()));
        assert_eq!(parse_err("a b"), (2..3, "expected end of input, found `b`".into()));
        assert_eq!(parse_err("a and b"), (2..5, "expected end of input, found `and` (did you mean `&&`?)".into()));
        assert_eq!(parse_err("[1, 2"), (5..5, "expected `]`, found end of input".into()));
        assert_eq!(parse_err("a.(b)"), (2..3, "expected a field name after `.`, found `(`".into()));
        assert_eq!(parse_err("if(a)"), (0..2, "`if` is a reserved word".into()));
        assert_eq!(
            parse_err("9223372036854775808"),
            (0..19, "integer `9223372036854775808` is out of range (use a `u` suffix for a uint)".into())
        );
        assert_eq!(parse_err(""), (0..0, "expected an expression, found end of input".into()));
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowed() {
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(parse_err(&deep).1.contains("nested too deeply"));
        let long = vec!["1"; 500].join(" + ");
        assert!(parse_err(&long).1.contains("nested too deeply"));
        let ok = format!("{}1{}", "(".repeat(60), ")".repeat(60));
        assert_eq!(parse_ok(&ok).depth, 1);
        // Long `&&` / `||` chains are flat, not deep.
        let wide = vec!["a"; 1000].join(" || ");
        assert_eq!(parse_ok(&wide).depth, 2);
    }
}
