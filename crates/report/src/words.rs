//! Points and reasons in words, as sales reads them in the dashboard and in CRM exports.

use leadscore_core::lead::round2;

/// Points for people: at most 2 decimals, none for whole numbers (`30`, `12.66`).
pub fn format_points(p: f64) -> String {
    let r = round2(p);
    if r.fract() == 0.0 { format!("{r:.0}") } else { format!("{r}") }
}

/// A lead's top reasons: of its contributions `(rule, points)`, the `n` with the most points
/// either way (what sales sees in the dashboard and a CRM gets in exports).
pub fn top_reasons<'a>(contributions: impl IntoIterator<Item = (&'a str, f64)>, n: usize) -> Vec<(String, f64)> {
    let mut list: Vec<(String, f64)> =
        contributions.into_iter().filter(|(_, p)| *p != 0.0).map(|(rule, p)| (rule.to_owned(), p)).collect();
    list.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(&b.0)));
    list.truncate(n);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_show_at_most_two_decimals_and_none_when_whole() {
        assert_eq!(format_points(30.0), "30");
        assert_eq!(format_points(12.6649), "12.66");
        assert_eq!(format_points(-10.0), "-10");
    }

    #[test]
    fn top_reasons_are_the_biggest_contributions_either_way_without_zeros() {
        let c = [("A", 5.0), ("B", -20.0), ("C", 30.0), ("D", 0.0)];
        let names: Vec<String> = top_reasons(c, 3).into_iter().map(|(r, _)| r).collect();
        assert_eq!(names, ["C", "B", "A"]);
    }
}
