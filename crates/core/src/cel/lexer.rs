//! Splits condition text into tokens with byte spans. Recovers from bad characters, escapes and
//! unterminated strings (reporting each) so that the parser can still look for more errors.

use std::ops::Range;

use super::CelError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A decimal or hex integer literal's magnitude (a leading `-` is a separate token).
    Int(u64),
    UInt(u64),
    Double(f64),
    Str(String),
    Ident(String),
    True,
    False,
    Null,
    In,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Dot,
    Comma,
    Colon,
    Question,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Bang,
    EqEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) span: Range<usize>,
}

/// Words CEL reserves; they cannot name variables or functions.
pub(crate) const RESERVED: &[&str] = &[
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

pub(crate) fn tokenize(src: &str) -> (Vec<Token>, Vec<CelError>) {
    let mut lexer = Lexer { src, bytes: src.as_bytes(), pos: 0, tokens: Vec::new(), errors: Vec::new() };
    lexer.run();
    (lexer.tokens, lexer.errors)
}

struct Lexer<'s> {
    src: &'s str,
    bytes: &'s [u8],
    pos: usize,
    tokens: Vec<Token>,
    errors: Vec<CelError>,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> u8 {
        self.bytes.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.tokens.push(Token { tok, span: start..self.pos });
    }

    fn error(&mut self, span: Range<usize>, message: String) {
        self.errors.push(CelError { span, message });
    }

    fn run(&mut self) {
        while self.pos < self.bytes.len() {
            let start = self.pos;
            let b = self.bytes[start];
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0c => self.pos += 1,
                b'/' if self.peek(1) == b'/' => {
                    while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                b'0'..=b'9' => self.number(),
                b'"' | b'\'' => self.string(start, false),
                b'r' | b'R' if matches!(self.peek(1), b'"' | b'\'') => {
                    self.pos += 1;
                    self.string(start, true);
                }
                b'b' | b'B'
                    if matches!(self.peek(1), b'"' | b'\'')
                        || (matches!(self.peek(1), b'r' | b'R') && matches!(self.peek(2), b'"' | b'\'')) =>
                {
                    self.pos += if matches!(self.peek(1), b'"' | b'\'') { 1 } else { 2 };
                    let raw = self.pos - start == 2;
                    self.string(start, raw);
                    self.error(start..self.pos, "bytes literals are not supported".to_owned());
                }
                _ if is_ident_start(b) => {
                    while self.pos < self.bytes.len() && is_ident_continue(self.bytes[self.pos]) {
                        self.pos += 1;
                    }
                    let word = &self.src[start..self.pos];
                    let tok = match word {
                        "true" => Tok::True,
                        "false" => Tok::False,
                        "null" => Tok::Null,
                        "in" => Tok::In,
                        _ => Tok::Ident(word.to_owned()),
                    };
                    self.push(tok, start);
                }
                _ => self.punct(start, b),
            }
        }
        let end = self.bytes.len();
        self.tokens.push(Token { tok: Tok::Eof, span: end..end });
    }

    fn punct(&mut self, start: usize, b: u8) {
        let next = self.peek(1);
        let (tok, len) = match (b, next) {
            (b'=', b'=') => (Tok::EqEq, 2),
            (b'!', b'=') => (Tok::Ne, 2),
            (b'<', b'=') => (Tok::Le, 2),
            (b'>', b'=') => (Tok::Ge, 2),
            (b'&', b'&') => (Tok::AndAnd, 2),
            (b'|', b'|') => (Tok::OrOr, 2),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b'{', _) => (Tok::LBrace, 1),
            (b'}', _) => (Tok::RBrace, 1),
            (b'.', _) => (Tok::Dot, 1),
            (b',', _) => (Tok::Comma, 1),
            (b':', _) => (Tok::Colon, 1),
            (b'?', _) => (Tok::Question, 1),
            (b'+', _) => (Tok::Plus, 1),
            (b'-', _) => (Tok::Minus, 1),
            (b'*', _) => (Tok::Star, 1),
            (b'/', _) => (Tok::Slash, 1),
            (b'%', _) => (Tok::Percent, 1),
            (b'!', _) => (Tok::Bang, 1),
            (b'<', _) => (Tok::Lt, 1),
            (b'>', _) => (Tok::Gt, 1),
            // Likely slips: report them, and carry on as if the intended operator was written.
            (b'=', _) => {
                self.pos += 1;
                self.error(start..self.pos, "unexpected `=` (did you mean `==`?)".to_owned());
                self.push(Tok::EqEq, start);
                return;
            }
            (b'&', _) => {
                self.pos += 1;
                self.error(start..self.pos, "unexpected `&` (did you mean `&&`?)".to_owned());
                self.push(Tok::AndAnd, start);
                return;
            }
            (b'|', _) => {
                self.pos += 1;
                self.error(start..self.pos, "unexpected `|` (did you mean `||`?)".to_owned());
                self.push(Tok::OrOr, start);
                return;
            }
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('\u{fffd}');
                self.pos += ch.len_utf8().max(1);
                let message = if ch == '`' {
                    "unexpected character ``` ` ```".to_owned()
                } else {
                    format!("unexpected character `{ch}`")
                };
                self.error(start..self.pos, message);
                return;
            }
        };
        self.pos += len;
        self.push(tok, start);
    }

    fn number(&mut self) {
        let start = self.pos;
        let mut bad = false;
        let tok = if self.peek(0) == b'0' && matches!(self.peek(1), b'x' | b'X') {
            self.pos += 2;
            let digits_start = self.pos;
            while self.peek(0).is_ascii_hexdigit() {
                self.pos += 1;
            }
            let digits = &self.src[digits_start..self.pos];
            bad = digits.is_empty();
            let value = u64::from_str_radix(digits, 16).ok();
            self.int_suffix(value)
        } else {
            while self.peek(0).is_ascii_digit() {
                self.pos += 1;
            }
            let mut is_double = false;
            if self.peek(0) == b'.' && self.peek(1).is_ascii_digit() {
                is_double = true;
                self.pos += 1;
                while self.peek(0).is_ascii_digit() {
                    self.pos += 1;
                }
            }
            if matches!(self.peek(0), b'e' | b'E') {
                let sign = usize::from(matches!(self.peek(1), b'+' | b'-'));
                if self.peek(1 + sign).is_ascii_digit() {
                    is_double = true;
                    self.pos += 1 + sign;
                    while self.peek(0).is_ascii_digit() {
                        self.pos += 1;
                    }
                }
            }
            let text = &self.src[start..self.pos];
            if is_double {
                match text.parse::<f64>() {
                    Ok(d) => Some(Tok::Double(d)),
                    Err(_) => None,
                }
            } else {
                let value = text.parse::<u64>().ok();
                self.int_suffix(value)
            }
        };
        // A number glued to letters (`12abc`, `1.5u`) is one bad token, not two good ones.
        while is_ident_continue(self.peek(0)) {
            self.pos += 1;
            bad = true;
        }
        let text = &self.src[start..self.pos];
        match tok {
            Some(tok) if !bad => self.push(tok, start),
            Some(_) | None if bad => {
                self.error(start..self.pos, format!("invalid number `{text}`"));
                self.push(Tok::Int(0), start);
            }
            _ => {
                self.error(start..self.pos, format!("number `{text}` is out of range"));
                self.push(Tok::Int(0), start);
            }
        }
    }

    fn int_suffix(&mut self, value: Option<u64>) -> Option<Tok> {
        if matches!(self.peek(0), b'u' | b'U') && !is_ident_continue(self.peek(1)) {
            self.pos += 1;
            value.map(Tok::UInt)
        } else {
            value.map(Tok::Int)
        }
    }

    /// A string literal; `self.pos` is at the opening quote, `start` at the prefix if any.
    fn string(&mut self, start: usize, raw: bool) {
        let quote = self.bytes[self.pos];
        let triple = self.peek(1) == quote && self.peek(2) == quote;
        self.pos += if triple { 3 } else { 1 };
        let mut text = String::new();
        loop {
            if self.pos >= self.bytes.len() {
                self.error(start..self.pos, "unterminated string".to_owned());
                break;
            }
            let b = self.bytes[self.pos];
            if b == quote && (!triple || (self.peek(1) == quote && self.peek(2) == quote)) {
                self.pos += if triple { 3 } else { 1 };
                break;
            }
            if !triple && (b == b'\n' || b == b'\r') {
                self.error(start..self.pos, "unterminated string".to_owned());
                break;
            }
            if b == b'\\' && !raw {
                self.escape(&mut text);
                continue;
            }
            let ch = self.src[self.pos..].chars().next().unwrap_or('\u{fffd}');
            text.push(ch);
            self.pos += ch.len_utf8();
        }
        self.push(Tok::Str(text), start);
    }

    /// One escape sequence; `self.pos` is at the backslash.
    fn escape(&mut self, text: &mut String) {
        let start = self.pos;
        self.pos += 1;
        let Some(ch) = self.src.get(self.pos..).and_then(|rest| rest.chars().next()) else {
            return;
        };
        self.pos += ch.len_utf8();
        let simple = match ch {
            'a' => Some('\u{07}'),
            'b' => Some('\u{08}'),
            'f' => Some('\u{0c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{0b}'),
            '\\' | '\'' | '"' | '`' | '?' => Some(ch),
            _ => None,
        };
        if let Some(c) = simple {
            text.push(c);
            return;
        }
        let (digits, radix) = match ch {
            'x' | 'X' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='3' => {
                self.pos -= 1;
                (3, 8)
            }
            _ => {
                let shown = &self.src[start..self.pos];
                self.error(start..self.pos, format!("invalid escape `{shown}`"));
                return;
            }
        };
        let digits_start = self.pos;
        let mut end = digits_start;
        while end - digits_start < digits && self.bytes.get(end).is_some_and(|b| (*b as char).is_digit(radix)) {
            end += 1;
        }
        self.pos = end;
        let shown = &self.src[start..self.pos];
        let code = if end - digits_start == digits {
            u32::from_str_radix(&self.src[digits_start..end], radix).ok().and_then(char::from_u32)
        } else {
            None
        };
        match code {
            Some(c) => text.push(c),
            None => self.error(start..self.pos, format!("invalid escape `{shown}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        let (tokens, errors) = tokenize(src);
        assert!(errors.is_empty(), "{errors:?}");
        tokens.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_of_every_form_lex() {
        assert_eq!(
            toks("42 0x2A 42u 0x2Au 1.5 1e3 2.5E-1"),
            vec![
                Tok::Int(42),
                Tok::Int(42),
                Tok::UInt(42),
                Tok::UInt(42),
                Tok::Double(1.5),
                Tok::Double(1000.0),
                Tok::Double(0.25),
                Tok::Eof
            ]
        );
        // `1.size()`: the dot is a member access, not a fraction.
        assert_eq!(toks("1.a")[..3], [Tok::Int(1), Tok::Dot, Tok::Ident("a".into())]);
    }

    #[test]
    fn strings_of_every_form_lex() {
        assert_eq!(
            toks(r#""a\n\"b" 'c\'d' """x"y""" '''p'q''' r"\d+" R'\w' "\x41\u00e9\U0001F600\101""#),
            vec![
                Tok::Str("a\n\"b".into()),
                Tok::Str("c'd".into()),
                Tok::Str("x\"y".into()),
                Tok::Str("p'q".into()),
                Tok::Str(r"\d+".into()),
                Tok::Str(r"\w".into()),
                Tok::Str("Aé😀A".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_and_operators_lex() {
        assert_eq!(
            toks("a<=b // note\n!= && || !c"),
            vec![
                Tok::Ident("a".into()),
                Tok::Le,
                Tok::Ident("b".into()),
                Tok::Ne,
                Tok::AndAnd,
                Tok::OrOr,
                Tok::Bang,
                Tok::Ident("c".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn lexical_errors_have_exact_spans() {
        let (_, errors) = tokenize(r#"a = "x\q" # 12ab "open"#);
        let found: Vec<_> = errors.iter().map(|e| (e.span.clone(), e.message.as_str())).collect();
        assert_eq!(
            found,
            vec![
                (2..3, "unexpected `=` (did you mean `==`?)"),
                (6..8, "invalid escape `\\q`"),
                (10..11, "unexpected character `#`"),
                (12..16, "invalid number `12ab`"),
                (17..22, "unterminated string"),
            ]
        );
        let (_, errors) = tokenize("99999999999999999999");
        assert_eq!(errors[0].message, "number `99999999999999999999` is out of range");
    }
}
