//! Instants and durations as the model language and the engine see them.
//!
//! An instant is `i64` milliseconds since the Unix epoch (UTC): the same integer the store keeps.
//! This module parses and formats; it never reads the clock (time is always an argument in core).

use std::fmt;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

pub const MS_PER_SECOND: i64 = 1_000;
pub const MS_PER_DAY: i64 = 86_400_000;

/// Parses an RFC 3339 timestamp (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.250+02:00`) or a
/// plain date (`2024-05-01`, taken as midnight UTC) into epoch milliseconds.
pub fn parse_timestamp(text: &str) -> Option<Millis> {
    let text = text.trim();
    if let Some(ms) = parse_utc(text.as_bytes()) {
        return Some(ms);
    }
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond());
    }
    // A space instead of `T` is common in CSV exports (`2024-05-01 12:00:00Z`).
    if text.len() > 10 && text.as_bytes().get(10) == Some(&b' ') {
        let mut fixed = text.to_owned();
        fixed.replace_range(10..11, "T");
        if let Ok(ts) = fixed.parse::<jiff::Timestamp>() {
            return Some(ts.as_millisecond());
        }
    }
    if text.len() == 10 {
        let date = text.parse::<jiff::civil::Date>().ok()?;
        let ts = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
        return Some(ts.as_millisecond());
    }
    None
}

/// The shape SDKs send, `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DDTHH:MM:SS.mmmZ`, read directly (a
/// general RFC 3339 parser costs several times more); `None` for anything else, which
/// [`parse_timestamp`] then reads the general way.
fn parse_utc(b: &[u8]) -> Option<Millis> {
    let n = b.len();
    if !(n == 20 || n == 24) || b[n - 1] != b'Z' || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' || (n == 24 && b[19] != b'.') {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let millis = if n == 24 { number(20, 23)? } else { 0 };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((((days * 24 + hour) * 60 + minute) * 60 + second) * MS_PER_SECOND + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// 0000-01-01T00:00:00Z.
const YEAR_ZERO: Millis = -62_167_219_200_000;

/// Whether `ms` is an instant RFC 3339 can write (years 0000–9999), so that
/// [`format_timestamp`] and [`parse_timestamp`] round-trip it.
pub fn is_representable(ms: Millis) -> bool {
    ms >= YEAR_ZERO && jiff::Timestamp::from_millisecond(ms).is_ok()
}

/// Formats epoch milliseconds as RFC 3339 in UTC (`2024-05-01T12:00:00Z`, milliseconds only when
/// non-zero).
pub fn format_timestamp(ms: Millis) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_string(),
        Err(_) => ms.to_string(),
    }
}

/// The UTC calendar day of an instant, as days since the epoch (for `per_day`).
pub fn utc_day(ms: Millis) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

/// A length of time written as `<number><unit>` with unit `s`, `m`, `h`, `d` or `w` (`90d`, `12h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(Millis);

impl Duration {
    pub const fn from_millis(ms: Millis) -> Self {
        Duration(ms)
    }

    pub const fn as_millis(self) -> Millis {
        self.0
    }

    /// Parses `90d`, `12h`, `1.5d`, `30m`, `45s`, `2w`. The number must be positive.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let text = text.trim();
        let Some(unit) = text.chars().last() else {
            return Err(DurationError::Empty);
        };
        let unit_ms: f64 = match unit {
            's' => 1_000.0,
            'm' => 60_000.0,
            'h' => 3_600_000.0,
            'd' => 86_400_000.0,
            'w' => 7.0 * 86_400_000.0,
            _ => return Err(DurationError::Unit(text.to_owned())),
        };
        let number = &text[..text.len() - 1];
        let value: f64 = number.parse().map_err(|_| DurationError::Number(text.to_owned()))?;
        if !value.is_finite() || value <= 0.0 {
            return Err(DurationError::NotPositive(text.to_owned()));
        }
        let ms = (value * unit_ms).round();
        if !(1.0..=1e15).contains(&ms) {
            return Err(DurationError::NotPositive(text.to_owned()));
        }
        Ok(Duration(ms as i64))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        for (unit, size) in [("w", 7 * MS_PER_DAY), ("d", MS_PER_DAY), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
            if ms % size == 0 {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{}s", ms as f64 / 1000.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("duration `{0}` has no unit (use s, m, h, d or w, e.g. `90d`)")]
    Unit(String),
    #[error("duration `{0}` is not a number followed by one unit letter (e.g. `90d`)")]
    Number(String),
    #[error("duration `{0}` must be positive")]
    NotPositive(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The general way: what the fast path must agree with.
    fn jiff_millis(text: &str) -> Option<Millis> {
        text.parse::<jiff::Timestamp>().ok().map(|ts| ts.as_millisecond())
    }

    fn old_is_representable(ms: Millis) -> bool {
        jiff::Timestamp::from_millisecond(ms).is_ok_and(|ts| ts.to_zoned(jiff::tz::TimeZone::UTC).year() >= 0)
    }

    #[test]
    fn representable_instants_are_years_0000_to_9999() {
        for ms in [YEAR_ZERO - 1, YEAR_ZERO, 0, jiff::Timestamp::MAX.as_millisecond(), i64::MAX, i64::MIN] {
            assert_eq!(is_representable(ms), old_is_representable(ms), "{ms}");
        }
        let max = jiff::Timestamp::MAX.as_millisecond();
        for ms in max - 2..max + 2 {
            assert_eq!(is_representable(ms), old_is_representable(ms), "{ms}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// The direct reading of `YYYY-MM-DDTHH:MM:SS[.mmm]Z` gives what jiff gives, and reads
        /// nothing jiff would not.
        #[test]
        fn the_fast_path_agrees_with_jiff(
            year in 0u32..10_000, month in 0u32..14, day in 0u32..33, hour in 0u32..26, minute in 0u32..62,
            second in 0u32..62, millis in proptest::option::of(0u32..1000), junk in proptest::option::of((0usize..24, 0u8..128)),
        ) {
            let mut text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
            if let Some(ms) = millis {
                text.push_str(&format!(".{ms:03}"));
            }
            text.push('Z');
            let mut bytes = text.into_bytes();
            if let Some((at, byte)) = junk && at < bytes.len() {
                bytes[at] = byte;
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Some(fast) = parse_utc(text.as_bytes()) {
                proptest::prop_assert_eq!(Some(fast), jiff_millis(&text), "{}", text);
            } else if (1..=12).contains(&month) && (1..=28).contains(&day) && hour < 24 && minute < 60 && second < 60 && junk.is_none() {
                proptest::prop_assert!(false, "{text} should take the fast path");
            }
        }
    }

    #[test]
    fn parses_rfc3339_with_offset_and_fraction() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_timestamp("1970-01-01T02:00:01.5+02:00"), Some(1500));
        assert_eq!(parse_timestamp("1970-01-02"), Some(MS_PER_DAY));
        assert_eq!(parse_timestamp("1970-01-01 00:00:02Z"), Some(2000));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn representable_instants_round_trip_through_rfc3339() {
        for text in ["0000-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "9999-12-30T00:00:00Z"] {
            let ms = parse_timestamp(text).unwrap_or_else(|| panic!("{text}"));
            assert!(is_representable(ms), "{text}");
            assert_eq!(parse_timestamp(&format_timestamp(ms)), Some(ms), "{text}");
        }
        let past_9999 = parse_timestamp("9999-12-30T00:00:00Z").unwrap_or_default() + 365 * MS_PER_DAY;
        assert!(!is_representable(past_9999));
        assert!(!is_representable(i64::MAX));
        assert!(!is_representable(i64::MIN));
    }

    #[test]
    fn durations_parse_and_print_in_their_largest_unit() {
        assert_eq!(Duration::parse("90d").map(|d| d.as_millis()), Ok(90 * MS_PER_DAY));
        assert_eq!(Duration::parse("1.5h").map(|d| d.as_millis()), Ok(5_400_000));
        assert_eq!(Duration::parse("2w").map(|d| d.to_string()), Ok("2w".to_owned()));
        assert!(matches!(Duration::parse("90"), Err(DurationError::Unit(_))));
        assert!(matches!(Duration::parse("-1d"), Err(DurationError::NotPositive(_))));
        assert!(matches!(Duration::parse("xd"), Err(DurationError::Number(_))));
    }

    #[test]
    fn utc_day_splits_at_midnight() {
        assert_eq!(utc_day(MS_PER_DAY - 1), 0);
        assert_eq!(utc_day(MS_PER_DAY), 1);
        assert_eq!(utc_day(-1), -1);
    }
}
