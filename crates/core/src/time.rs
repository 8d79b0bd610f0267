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

/// Whether `ms` is an instant RFC 3339 can write (years 0000–9999), so that
/// [`format_timestamp`] and [`parse_timestamp`] round-trip it.
pub fn is_representable(ms: Millis) -> bool {
    jiff::Timestamp::from_millisecond(ms).is_ok_and(|ts| ts.to_zoned(jiff::tz::TimeZone::UTC).year() >= 0)
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
