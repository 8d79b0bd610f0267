//! A field-skipping JSON scanner for one message: walks the bytes once, checks that they are
//! JSON, and materialises only the values the engine and the plan's slots read; everything else
//! is skipped a word (8 bytes) at a time inside strings.
//!
//! It declines rather than decides anything hard: on any input it does not accept (not JSON, an
//! escape in a key, nesting deeper than [`MAX_DEPTH`], …) it returns [`Declined`] and the caller
//! reads the message with serde_json instead ([`super::read`]), which gives the same result or
//! the error message with its line and column. So whatever this scanner accepts must be JSON that
//! serde_json accepts, read the same way; the property tests hold it to that.

use std::borrow::Cow;

use serde_json::Value;

use super::read::{Field, FieldTree, Raw, Text};

/// The scanner does not accept this input; read it with serde_json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Declined;

type Scan<T> = Result<T, Declined>;

/// Nesting the scanner follows (serde_json's own limit is 128).
const MAX_DEPTH: u32 = 100;

/// Reads a message's top-level object from `text` (valid UTF-8) into `raw`.
pub(crate) fn scan_message<'a>(tree: &FieldTree, text: &'a str, raw: &mut Raw<'a>) -> Scan<()> {
    // Control characters are invalid in strings and only `\t`, `\n`, `\r` may separate tokens:
    // a line with any (other than its line ending) is left to serde_json, so strings need only
    // be searched for their closing quote and escapes.
    let text = text.trim_end_matches(['\n', '\r']);
    if has_control(text.as_bytes()) {
        return Err(Declined);
    }
    let mut s = Scanner { text, bytes: text.as_bytes(), at: 0 };
    s.whitespace();
    s.expect(b'{')?;
    s.whitespace();
    if s.peek() == Some(b'}') {
        s.at += 1;
    } else {
        loop {
            let key = s.key()?;
            s.whitespace();
            s.expect(b':')?;
            s.whitespace();
            let node = tree.child(key);
            match (Field::of(key), node) {
                (Some(Field::Traits), node) => raw.put(Field::Traits, node, s.value(1)?),
                (Some(field), None) => raw.texts[field as usize] = Some(s.text()?),
                (Some(field), Some(node)) => raw.put(field, Some(node), s.value(1)?),
                (None, Some(node)) => s.node(node, &mut raw.slots, 1)?,
                (None, None) => s.skip(1)?,
            }
            s.whitespace();
            match s.next() {
                Some(b',') => s.whitespace(),
                Some(b'}') => break,
                _ => return Err(Declined),
            }
        }
    }
    s.whitespace();
    if s.at == s.bytes.len() { Ok(()) } else { Err(Declined) }
}

/// Reads the JSON text of one field (`text`, a whole value) into the slots below its node of the
/// field tree.
pub(crate) fn scan_node(node: &FieldTree, text: &str, slots: &mut [Option<Value>]) -> Scan<()> {
    let trimmed = text.trim_matches([' ', '\n', '\r', '\t']);
    if has_control(trimmed.as_bytes()) {
        return Err(Declined);
    }
    let mut s = Scanner { text: trimmed, bytes: trimmed.as_bytes(), at: 0 };
    s.node(node, slots, 1)?;
    if s.at == s.bytes.len() { Ok(()) } else { Err(Declined) }
}

/// Whether any byte is a control character (below 0x20), 64 bytes at a time (a loop without
/// an early exit, which compiles to vector instructions).
fn has_control(bytes: &[u8]) -> bool {
    bytes.chunks(64).any(|chunk| chunk.iter().fold(u8::MAX, |least, &b| least.min(b)) < 0x20)
}

/// Per byte of `word`, the high bit set where the byte is `"` or `\`; the lowest set bit marks
/// the first such byte exactly (higher ones may be spurious).
fn quote_or_backslash(word: u64) -> u64 {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_at = |x: u64| x.wrapping_sub(LOW) & !x & HIGH;
    zero_at(word ^ (LOW * u64::from(b'"'))) | zero_at(word ^ (LOW * u64::from(b'\\')))
}

/// A `\u` escape's code unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    Plain,
    /// U+D800–U+DBFF.
    Leading,
    /// U+DC00–U+DFFF.
    Trailing,
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, b: u8) -> Scan<()> {
        if self.next() == Some(b) { Ok(()) } else { Err(Declined) }
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// A string whose opening quote is next: its contents' byte range, and whether it has escapes.
    /// (The text has no control characters: [`scan_message`] declined it otherwise.)
    fn string(&mut self) -> Scan<(usize, usize, bool)> {
        self.expect(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            // 32 bytes at a time (four words tested together; the first word with a find gives
            // its place), then eight, up to the next quote or backslash.
            while let Some(block) = self.bytes.get(self.at..self.at + 32) {
                let words: [u64; 4] = std::array::from_fn(|i| {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(&block[i * 8..i * 8 + 8]);
                    quote_or_backslash(u64::from_le_bytes(word))
                });
                if let Some(i) = words.iter().position(|&w| w != 0) {
                    self.at += i * 8 + (words[i].trailing_zeros() / 8) as usize;
                    break;
                }
                self.at += 32;
            }
            while let Some(chunk) = self.bytes.get(self.at..self.at + 8) {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                let found = quote_or_backslash(u64::from_le_bytes(word));
                if found != 0 {
                    self.at += (found.trailing_zeros() / 8) as usize;
                    break;
                }
                self.at += 8;
            }
            match self.next() {
                Some(b'"') => return Ok((start, self.at - 1, escaped)),
                Some(b'\\') => {
                    escaped = true;
                    match self.next() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => match self.hex_escape()? {
                            Escape::Plain => {}
                            // A leading surrogate must be followed by a trailing one.
                            Escape::Leading => {
                                if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                                    return Err(Declined);
                                }
                                self.at += 2;
                                if self.hex_escape()? != Escape::Trailing {
                                    return Err(Declined);
                                }
                            }
                            Escape::Trailing => return Err(Declined),
                        },
                        _ => return Err(Declined),
                    }
                }
                Some(_) => {}
                None => return Err(Declined),
            }
        }
    }

    /// The four hex digits of a `\u` escape (next), and what kind of code unit they are.
    fn hex_escape(&mut self) -> Scan<Escape> {
        let hex = self.bytes.get(self.at..self.at + 4).ok_or(Declined)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(Declined);
        }
        let kind = match (hex[0], hex[1]) {
            (b'd' | b'D', b'8' | b'9' | b'a' | b'b' | b'A' | b'B') => Escape::Leading,
            (b'd' | b'D', b'c'..=b'f' | b'C'..=b'F') => Escape::Trailing,
            _ => Escape::Plain,
        };
        self.at += 4;
        Ok(kind)
    }

    /// An object key (keys with escapes are left to serde_json).
    fn key(&mut self) -> Scan<&'a str> {
        let (start, end, escaped) = self.string()?;
        if escaped {
            return Err(Declined);
        }
        self.text.get(start..end).ok_or(Declined)
    }

    /// A number whose first byte is next (only its syntax is checked).
    fn number(&mut self) -> Scan<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Declined),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Scan<()> {
        let start = self.at;
        self.digits();
        if self.at > start { Ok(()) } else { Err(Declined) }
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        if self.bytes.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Declined)
        }
    }

    /// Skips the value that is next, checking that it is JSON.
    fn skip(&mut self, depth: u32) -> Scan<()> {
        match self.peek().ok_or(Declined)? {
            b'"' => self.string().map(|_| ()),
            b'{' => {
                self.enter(depth)?;
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.string()?;
                    self.whitespace();
                    self.expect(b':')?;
                    self.whitespace();
                    self.skip(depth + 1)?;
                    self.whitespace();
                    match self.next() {
                        Some(b',') => self.whitespace(),
                        Some(b'}') => return Ok(()),
                        _ => return Err(Declined),
                    }
                }
            }
            b'[' => {
                self.enter(depth)?;
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.skip(depth + 1)?;
                    self.whitespace();
                    match self.next() {
                        Some(b',') => self.whitespace(),
                        Some(b']') => return Ok(()),
                        _ => return Err(Declined),
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    /// Steps into an object or array (its opening byte is next), within the depth limit.
    fn enter(&mut self, depth: u32) -> Scan<()> {
        if depth >= MAX_DEPTH {
            return Err(Declined);
        }
        self.at += 1;
        self.whitespace();
        Ok(())
    }

    /// The value that is next (at nesting `depth`), materialised: parsed by serde_json from its
    /// bytes.
    fn value(&mut self, depth: u32) -> Scan<Value> {
        let start = self.at;
        // The common scalars directly; objects, arrays, escaped strings and numbers with a
        // fraction or exponent by serde_json (the same values it would build).
        match self.peek() {
            Some(b'"') => {
                let (from, to, escaped) = self.string()?;
                if !escaped {
                    return self.text.get(from..to).map(|s| Value::String(s.to_owned())).ok_or(Declined);
                }
            }
            Some(b't') => return self.literal(b"true").map(|()| Value::Bool(true)),
            Some(b'f') => return self.literal(b"false").map(|()| Value::Bool(false)),
            Some(b'n') => return self.literal(b"null").map(|()| Value::Null),
            Some(b'-' | b'0'..=b'9') => {
                self.number()?;
                let text = self.text.get(start..self.at).ok_or(Declined)?;
                // Integers as serde_json makes them: unsigned, or negative (`-0` is a float).
                if text.len() <= 18 && text.bytes().skip(1).all(|b| b.is_ascii_digit()) {
                    match text.parse::<i64>() {
                        Ok(n) if n > 0 || (n == 0 && !text.starts_with('-')) => {
                            return Ok(Value::Number((n as u64).into()));
                        }
                        Ok(n) if n < 0 => return Ok(Value::Number(n.into())),
                        _ => {}
                    }
                }
            }
            _ => self.skip(depth)?,
        }
        let text = self.text.get(start..self.at).ok_or(Declined)?;
        serde_json::from_str(text).map_err(|_| Declined)
    }

    /// A field the engine reads as text: strings borrowed unless they have escapes.
    fn text(&mut self) -> Scan<Text<'a>> {
        if self.peek() == Some(b'"') {
            let from = self.at;
            let (start, end, escaped) = self.string()?;
            return if escaped {
                let text = self.text.get(from..self.at).ok_or(Declined)?;
                serde_json::from_str::<String>(text).map(|s| Text::Str(Cow::Owned(s))).map_err(|_| Declined)
            } else {
                self.text.get(start..end).map(|s| Text::Str(Cow::Borrowed(s))).ok_or(Declined)
            };
        }
        self.value(1).map(|v| Text::of_value(&v))
    }

    /// The value below a node of the field tree that is not a slot read whole: objects are walked
    /// for the node's children; anything else only marks the node's presence.
    fn node(&mut self, node: &FieldTree, slots: &mut [Option<Value>], depth: u32) -> Scan<()> {
        node.clear(slots);
        if node.reads_whole() {
            let value = self.value(depth)?;
            node.fill(&value, slots);
            return Ok(());
        }
        match self.peek().ok_or(Declined)? {
            b'{' => {
                node.present(slots, true);
                self.enter(depth)?;
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    let key = self.key()?;
                    self.whitespace();
                    self.expect(b':')?;
                    self.whitespace();
                    match node.child(key) {
                        Some(child) => self.node(child, slots, depth + 1)?,
                        None => self.skip(depth + 1)?,
                    }
                    self.whitespace();
                    match self.next() {
                        Some(b',') => self.whitespace(),
                        Some(b'}') => return Ok(()),
                        _ => return Err(Declined),
                    }
                }
            }
            b'"' | b'[' | b't' | b'f' => {
                self.skip(depth)?;
                node.present(slots, true);
                Ok(())
            }
            b'n' => {
                self.literal(b"null")?;
                node.present(slots, false);
                Ok(())
            }
            // A number is parsed, as serde_json would (it rejects one out of range).
            _ => {
                let value = self.value(depth)?;
                node.present(slots, !value.is_null());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::compact::read::Raw;
    use crate::compact::{FieldValue, Message, read_fields, read_message, read_message_serde};
    use crate::model::CheckedModel;

    /// Conditions reading fields at several depths, a presence test, a number, the time and ids.
    const MODEL: &str = r#"
[model]
name = "scan"
[dimensions.engagement]
[[rules]]
name = "Pricing"
dimension = "engagement"
on = 'event.type == "page" && event.properties.path.startsWith("/pricing")'
points = 1
[[rules]]
name = "Deep"
dimension = "engagement"
on = 'event.properties.a.b.c == "x" || event.properties.n > 2'
points = 1
[[rules]]
name = "Ids"
dimension = "engagement"
on = 'event.userId == "7" || event.groupId == "g" || event.timestamp.startsWith("2024-01-05")'
points = 1
[[rules]]
name = "Whole"
dimension = "engagement"
on = 'event.context.page == {"path": "/x"} || event.traits.title == "CEO"'
points = 1
[events]
ignore = 'has(event.context.userAgent) && event.context.userAgent.matches("bot")'
"#;

    fn model() -> CheckedModel {
        CheckedModel::from_source(MODEL).unwrap_or_else(|d| panic!("{d:#?}"))
    }

    /// Messages with the shapes SDKs send and the corners of JSON the scanner must get right.
    fn messages() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            Just(r#""/pricing/teams""#),
            Just(r#""\/pricing""#),
            Just(r#""caf\u00e9 \ud83d\ude00""#),
            Just(r#""\ud800""#),
            Just(r#""tab\there""#),
            Just("-0.5e+3"),
            Just("1e400"),
            Just("18446744073709551616"),
            Just("3"),
            Just("-0"),
            Just("-7"),
            Just("0"),
            Just("123456789012345678"),
            Just("true"),
            Just("null"),
            Just("[]"),
            Just(r#"[1, {"a": [null, "x"]}, []]"#),
            Just("{}"),
            Just(r#"{"b": {"c": "x"}, "b": {"d": 1}}"#),
            Just(r#"{"b": {"c": "x"}}"#),
            Just(r#"{"path": "/x"}"#),
            Just(r#""Mozilla/5.0 (compatible; bot)""#),
            Just(r#""é ü ñ 😀""#),
        ];
        let key = prop_oneof![
            Just("path"),
            Just("a"),
            Just("n"),
            Just("userAgent"),
            Just("page"),
            Just("title"),
            Just("other"),
            Just(r"pa\u0074h"),
        ];
        let top = prop_oneof![
            Just("properties"),
            Just("context"),
            Just("traits"),
            Just("userId"),
            Just("groupId"),
            Just("event"),
            Just("messageId"),
            Just("integrations"),
            Just("timestamp"),
        ];
        let field = (top, proptest::collection::vec((key, value.clone()), 0..4), value, any::<bool>());
        let ws = prop_oneof![Just(""), Just(" "), Just("\n\t "), Just("\r\n")];
        (prop_oneof![Just("page"), Just("track"), Just("identify")], proptest::collection::vec(field, 0..5), ws)
            .prop_map(|(kind, fields, ws)| {
                let mut parts = vec![
                    format!(r#""type"{ws}:{ws}"{kind}""#),
                    r#""timestamp": "2024-01-05T10:00:00Z""#.to_owned(),
                    r#""userId": "u1""#.to_owned(),
                ];
                for (name, pairs, scalar, object) in fields {
                    let value = if object {
                        let inner: Vec<String> = pairs.iter().map(|(k, v)| format!(r#""{k}":{ws}{v}"#)).collect();
                        format!("{{{ws}{}{ws}}}", inner.join(&format!(",{ws}")))
                    } else {
                        scalar.to_owned()
                    };
                    parts.push(format!(r#""{name}":{ws}{value}"#));
                }
                format!("{ws}{{{ws}{}{ws}}}{ws}", parts.join(&format!("{ws},{ws}")))
            })
    }

    /// A message damaged: a byte removed or replaced, or a JSON-significant byte inserted, or
    /// cut short.
    fn damaged() -> impl Strategy<Value = Vec<u8>> {
        let significant = prop_oneof![
            Just(b'"'),
            Just(b'\\'),
            Just(b'{'),
            Just(b'}'),
            Just(b'['),
            Just(b']'),
            Just(b','),
            Just(b':'),
            Just(b'0'),
            Just(b'e'),
            Just(b'.'),
            Just(b'-'),
            Just(b'u'),
            Just(0x01u8),
            Just(0xffu8),
            Just(b' '),
        ];
        (messages(), any::<prop::sample::Index>(), 0u8..4, significant).prop_map(|(text, at, how, byte)| {
            let mut bytes = text.into_bytes();
            let i = at.index(bytes.len() + 1);
            match how {
                0 if i < bytes.len() => {
                    bytes.remove(i);
                }
                1 if i < bytes.len() => bytes[i] = byte,
                2 => bytes.truncate(i),
                _ => bytes.insert(i, byte),
            }
            bytes
        })
    }

    /// Whether serde_json reads the bytes as a message's JSON (skipped values are only checked for
    /// syntax: a number out of range there is fine).
    fn json_to_serde(bytes: &[u8]) -> bool {
        !matches!(read_message_serde(&model().plan, bytes), Err(crate::compact::ReadError::Json(_)))
    }

    fn same(a: &Message<'_>, b: &Message<'_>) -> bool {
        a.kind == b.kind
            && a.event == b.event
            && a.user_id == b.user_id
            && a.anonymous_id == b.anonymous_id
            && a.previous_id == b.previous_id
            && a.group_id == b.group_id
            && a.message_id == b.message_id
            && a.at == b.at
            && a.traits == b.traits
            && a.slots == b.slots
            && a.tie == b.tie
    }

    /// A message's fields as a Parquet row gives them (nulls left out, times as instants), and
    /// the JSON text of that row.
    fn as_fields(text: &str) -> Option<(Vec<(String, FieldValue<'static>)>, String)> {
        let serde_json::Value::Object(map) = serde_json::from_str::<serde_json::Value>(text).ok()? else { return None };
        let mut fields = Vec::new();
        let mut object = serde_json::Map::new();
        for (key, value) in map {
            let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
            let field = match &value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) if key.ends_with("imestamp") || key.ends_with("At") => {
                    match crate::time::parse_timestamp(s) {
                        Some(ms) => {
                            object.insert(key.clone(), serde_json::json!(crate::time::format_timestamp(ms)));
                            fields.push((key, FieldValue::Instant(ms)));
                            continue;
                        }
                        None => FieldValue::Text(leak(s.clone())),
                    }
                }
                serde_json::Value::String(s) => FieldValue::Text(leak(s.clone())),
                serde_json::Value::Number(n) => FieldValue::Number(n.clone()),
                serde_json::Value::Bool(b) => FieldValue::Bool(*b),
                other => FieldValue::Json(leak(other.to_string())),
            };
            object.insert(key.clone(), value);
            fields.push((key, field));
        }
        Some((fields, serde_json::Value::Object(object).to_string()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// A message read field by field (as from Parquet columns) is the message its JSON object
        /// gives.
        #[test]
        fn fields_read_as_their_json_object(text in messages()) {
            let model = model();
            if let Some((fields, json)) = as_fields(&text) {
                let fields: Vec<(&str, FieldValue<'_>)> = fields.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                let by_fields = read_fields(&model.plan, &fields, 0);
                let by_text = read_message(&model.plan, json.as_bytes());
                match (&by_fields, &by_text) {
                    (Ok(a), Ok(b)) => {
                        let mut b = b.clone();
                        b.tie = 0;
                        prop_assert!(same(a, &b), "{json}\n{a:?}\n{b:?}");
                    }
                    (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                    _ => prop_assert!(false, "{json}: {by_fields:?} vs {by_text:?}"),
                }
            }
        }

        /// The scanner reads every well-formed message itself, the same as serde_json does.
        #[test]
        fn the_scanner_reads_messages_as_serde_json_does(text in messages()) {
            let model = model();
            let mut raw = Raw { slots: vec![None; model.plan.fields.len()], ..Raw::default() };
            let scanned = super::scan_message(&model.plan.tree, &text, &mut raw);
            let valid = json_to_serde(text.as_bytes());
            // The only JSON it declines: keys with escapes, lone surrogates, numbers serde_json
            // rejects and whitespace other than spaces (all of them rare, all read by serde_json
            // instead).
            let unusual = text.contains(r"pa\u0074h")
                || text.contains(r"\ud800")
                || text.contains("1e400")
                || text.trim_end_matches(['\n', '\r']).bytes().any(|b| b < 0x20);
            if unusual {
                prop_assert!(scanned.is_err() || valid, "{}", text);
            } else {
                prop_assert_eq!(scanned.is_ok(), valid, "{}", text);
            }
            let read = read_message(&model.plan, text.as_bytes());
            let reference = read_message_serde(&model.plan, text.as_bytes());
            match (&read, &reference) {
                (Ok(a), Ok(b)) => prop_assert!(same(a, b), "{text}\n{a:?}\n{b:?}"),
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                _ => prop_assert!(false, "{text}: {read:?} vs {reference:?}"),
            }
        }

        /// Whatever the scanner accepts of damaged input is JSON serde_json reads the same way.
        #[test]
        fn the_scanner_accepts_only_what_serde_json_accepts(bytes in damaged()) {
            let model = model();
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let mut raw = Raw { slots: vec![None; model.plan.fields.len()], ..Raw::default() };
                if super::scan_message(&model.plan.tree, text, &mut raw).is_ok() {
                    prop_assert!(json_to_serde(&bytes), "{}", text);
                }
            }
            let read = read_message(&model.plan, &bytes);
            let reference = read_message_serde(&model.plan, &bytes);
            match (&read, &reference) {
                (Ok(a), Ok(b)) => prop_assert!(same(a, b), "{a:?}\n{b:?}"),
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                _ => prop_assert!(false, "{}: {read:?} vs {reference:?}", String::from_utf8_lossy(&bytes)),
            }
        }
    }
}
