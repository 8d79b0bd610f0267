//! When a lead's score next changes by the passing of time alone (SPEC §6.3): a window expiring,
//! an inactivity period completing, an event dated in the future arriving at its time, or a
//! decaying score crossing a stage or grade threshold. The server stores this instant per lead and
//! its scheduler rescores the lead then, so stages change on time without any new event.
//!
//! Pure like [`crate::evaluate`]: the answer is found by reading the lead's state
//! ([`LeadState`]) at candidate instants, so it can never disagree with what `evaluate` would say
//! at that time.

use crate::compact::LeadState;
use crate::engine::{AccountBook, LeadHistory, Score};
use crate::model::CheckedModel;
use crate::time::{Duration, Millis};

/// How far ahead a decaying or clock-dependent lead is looked at before it is simply rescored:
/// totals then stay fresh in lists even when no threshold is crossed.
pub const REFRESH: Duration = Duration::from_millis(86_400_000);

/// The earliest instant after `as_of` at which `lead`'s score can change without a new event, or
/// `None` if it never will: [`LeadState::next_change`] of the lead's state.
///
/// `now` is the lead's score at `as_of` (the caller has just computed it).
pub fn next_change(
    model: &CheckedModel,
    lead: &LeadHistory,
    accounts: &AccountBook,
    as_of: Millis,
    now: &Score,
) -> Option<Millis> {
    LeadState::of(model, lead).next_change(model, accounts, as_of, now)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::engine::{Event, evaluate};
    use crate::time::MS_PER_DAY;

    const MODEL: &str = r#"
[model]
name = "t"
[dimensions.fit]
[dimensions.engagement]
half_life = "10d"
[[rules]]
name = "Executive"
dimension = "fit"
if = 'lead.title == "VP"'
points = 40
[[rules]]
name = "Demo"
dimension = "engagement"
on = 'event.type == "track"'
points = 60
[[rules]]
name = "Recent visit"
dimension = "engagement"
on = 'event.type == "page"'
within = "3d"
points = 1
[[stages]]
name = "mql"
when = "total >= 50"
[[stages]]
name = "sql"
when = "total >= 80"
"#;

    fn nc(model: &CheckedModel, lead: &LeadHistory, accounts: &AccountBook, as_of: Millis) -> Option<Millis> {
        next_change(model, lead, accounts, as_of, &evaluate(model, lead, accounts, as_of))
    }

    fn lead(events: &[(&str, Millis)]) -> LeadHistory {
        let mut traits = serde_json::Map::new();
        traits.insert("title".into(), "VP".into());
        let events = events
            .iter()
            .enumerate()
            .map(|(i, (kind, at))| {
                Event::from_message(serde_json::json!({
                    "type": kind, "userId": "u", "event": "x", "messageId": format!("m{i}"),
                    "timestamp": crate::time::format_timestamp(*at),
                }))
                .unwrap()
            })
            .collect();
        LeadHistory { id: "u".into(), traits, events, ..LeadHistory::default() }
    }

    #[test]
    fn a_decaying_total_is_due_exactly_when_it_leaves_sql() {
        let model = CheckedModel::from_source(MODEL).unwrap();
        let t0 = 1_700_000_000_000;
        let history = lead(&[("track", t0)]);
        let accounts = AccountBook::default();
        // Within the first day nothing crosses: due for a refresh a day later.
        assert_eq!(nc(&model, &history, &accounts, t0), Some(t0 + MS_PER_DAY));
        // 40 + 60·2^(−t/10d) < 80 from t = 10d·log2(1.5).
        let crossing = t0 + (10.0 * MS_PER_DAY as f64 * 1.5f64.log2()).ceil() as Millis;
        let due = nc(&model, &history, &accounts, crossing - 3 * 3_600_000).unwrap();
        assert!((due - crossing).abs() <= 1, "{due} vs {crossing}");
        assert_eq!(evaluate(&model, &history, &accounts, due).stage, "mql");
        assert_eq!(evaluate(&model, &history, &accounts, due - 1).stage, "sql");
    }

    #[test]
    fn a_window_closing_is_due_at_its_exact_end() {
        let model = CheckedModel::from_source(&MODEL.replace("half_life = \"10d\"", "")).unwrap();
        let t0 = 1_700_000_000_000;
        let history = lead(&[("page", t0), ("page", t0 + 1000)]);
        let accounts = AccountBook::default();
        assert_eq!(nc(&model, &history, &accounts, t0 + 5000), Some(t0 + 3 * MS_PER_DAY));
        assert_eq!(nc(&model, &history, &accounts, t0 + 3 * MS_PER_DAY), Some(t0 + 1000 + 3 * MS_PER_DAY));
        assert_eq!(nc(&model, &history, &accounts, t0 + 4 * MS_PER_DAY), None, "nothing left to change");
        // An event dated in the future arrives at its time.
        let future = lead(&[("page", t0 + MS_PER_DAY)]);
        assert_eq!(nc(&model, &future, &accounts, t0), Some(t0 + MS_PER_DAY));
    }

    /// A `created_at` of 1e19 (sent by anyone with the write key) once overflowed the anchor of an
    /// inactivity rule and panicked in the scheduler; now it is no instant at all.
    #[test]
    fn an_absurd_created_at_is_ignored_not_a_panic() {
        let model = CheckedModel::from_source(&format!(
            "{MODEL}\n[[rules]]\nname = \"Cold\"\ndimension = \"engagement\"\ninactive = 'event.type == \"page\"'\nfor = \"60d\"\npoints = -20\n"
        ))
        .unwrap();
        let t0 = 1_700_000_000_000;
        for value in [serde_json::json!(1e19), serde_json::json!(i64::MAX), serde_json::json!(-1e30)] {
            let mut history = lead(&[("page", t0)]);
            history.traits.insert("created_at".into(), value.clone());
            let accounts = AccountBook::default();
            let due = nc(&model, &history, &accounts, t0 + 1000);
            assert!(due.is_some_and(|d| d > t0), "{value}: {due:?}");
        }
    }
}
