//! Probabilities that count the leads still open. A lead without an outcome has not decided
//! *yet*: leaving it out of the calibration makes every probability too high (the decided leads
//! over-represent buyers, who decide sooner than most leads that never buy), and counting it as
//! lost makes young leads' probabilities too low. Here an open lead is right-censored at its
//! age, in a mixture cure model with competing outcomes (Farewell 1982; Sy and Taylor 2000):
//!
//! - a lead is a buyer with probability `p`, and then converts after some delay; otherwise it may
//!   be lost (or disqualified) after some delay, or stay open for good;
//! - [`ConversionCurve`] estimates, from every lead's outcome and age, the cumulative incidence of
//!   conversion and of loss over time (Aalen–Johansen: open leads are censored at their age). Their
//!   plateaus give the share that ever converts; scaled by it, they give `S_b(t)`, the share of
//!   buyers not yet converted `t` days after creation, and `S_n(t)`, the share of the others not
//!   yet lost;
//! - [`calibrate_censored`] fits the calibration `p = σ(intercept + slope × total)` by maximum
//!   likelihood: a converted lead contributes `p`, a lost one `1 − p`, an open lead of age `t` the
//!   chance of being still open, `p S_b(t) + (1 − p) S_n(t)`.
//!
//! The points (the ranking) stay those learned from the decided leads; only the calibration
//! moves. Pure computation.

pub use leadscore_core::model::Calibration;

/// The time from creation to each outcome: cumulative incidences of conversion and of loss
/// (Aalen–Johansen), open leads censored at their age.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionCurve {
    /// Days at which outcomes happened, ascending, with the cumulative incidence of conversion
    /// and of loss just after each.
    times: Vec<f64>,
    converted: Vec<f64>,
    lost: Vec<f64>,
}

/// What happened to a lead, for [`ConversionCurve::estimate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mark {
    Converted,
    Lost,
    Open,
}

impl ConversionCurve {
    /// From the delays (days from creation) of converted leads, of lost or disqualified leads,
    /// and the ages (days) of open leads.
    pub fn estimate(converted: &[f64], lost: &[f64], open: &[f64]) -> ConversionCurve {
        let mut items: Vec<(f64, Mark)> = converted.iter().map(|&t| (t.max(0.0), Mark::Converted)).collect();
        items.extend(lost.iter().map(|&t| (t.max(0.0), Mark::Lost)));
        items.extend(open.iter().map(|&t| (t.max(0.0), Mark::Open)));
        // At equal times outcomes come before censoring, as usual.
        items.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut at_risk = items.len() as f64;
        let mut undecided = 1.0;
        let (mut cif_converted, mut cif_lost) = (0.0, 0.0);
        let mut curve = ConversionCurve { times: Vec::new(), converted: Vec::new(), lost: Vec::new() };
        let mut i = 0;
        while i < items.len() {
            let t = items[i].0;
            let (mut c, mut l, mut leaving) = (0.0, 0.0, 0.0);
            while i < items.len() && items[i].0 == t {
                match items[i].1 {
                    Mark::Converted => c += 1.0,
                    Mark::Lost => l += 1.0,
                    Mark::Open => {}
                }
                leaving += 1.0;
                i += 1;
            }
            if c + l > 0.0 && at_risk > 0.0 {
                cif_converted += undecided * c / at_risk;
                cif_lost += undecided * l / at_risk;
                undecided *= 1.0 - (c + l) / at_risk;
                curve.times.push(t);
                curve.converted.push(cif_converted);
                curve.lost.push(cif_lost);
            }
            at_risk -= leaving;
        }
        curve
    }

    /// The share of leads that ever convert (the plateau of conversion's incidence).
    pub fn rate(&self) -> f64 {
        self.converted.last().copied().unwrap_or(0.0)
    }

    /// `(S_b, S_n)` at `days` after creation: the share of buyers not yet converted, and of the
    /// other leads not yet lost.
    pub fn still_open(&self, days: f64) -> (f64, f64) {
        let at = self.times.partition_point(|&t| t <= days);
        let (converted, lost) = if at == 0 { (0.0, 0.0) } else { (self.converted[at - 1], self.lost[at - 1]) };
        let rate = self.rate();
        let buyers = if rate > 0.0 { 1.0 - converted / rate } else { 0.0 };
        let others = if rate < 1.0 { 1.0 - lost / (1.0 - rate) } else { 1.0 };
        (buyers.clamp(0.0, 1.0), others.clamp(0.0, 1.0))
    }

    /// The delay (days) by which half the buyers have converted.
    pub fn median_days(&self) -> Option<f64> {
        let rate = self.rate();
        self.times.iter().zip(&self.converted).find(|(_, c)| **c >= 0.5 * rate).map(|(t, _)| *t)
    }
}

/// The log-likelihood of a calibration with its gradient and Hessian in (intercept, slope).
fn likelihood(c: Calibration, decided: &[(f64, bool)], open: &[(f64, (f64, f64))]) -> (f64, [f64; 2], [[f64; 2]; 2]) {
    let mut value = 0.0;
    let mut gradient = [0.0; 2];
    let mut hessian = [[0.0; 2]; 2];
    let mut add = |total: f64, l: f64, d1: f64, d2: f64| {
        value += l;
        gradient[0] += d1;
        gradient[1] += d1 * total;
        hessian[0][0] += d2;
        hessian[0][1] += d2 * total;
        hessian[1][1] += d2 * total * total;
    };
    for &(total, converted) in decided {
        let p = c.probability(total).clamp(1e-15, 1.0 - 1e-15);
        let l = if converted { p.ln() } else { (1.0 - p).ln() };
        add(total, l, f64::from(u8::from(converted)) - p, -p * (1.0 - p));
    }
    for &(total, (buyers, others)) in open {
        // log(p S_b + (1 − p) S_n).
        let p = c.probability(total);
        let m = (p * buyers + (1.0 - p) * others).max(1e-15);
        let (v, d) = (p * (1.0 - p), buyers - others);
        add(total, m.ln(), v * d / m, v * d * ((1.0 - 2.0 * p) * m - v * d) / (m * m));
    }
    hessian[1][0] = hessian[0][1];
    (value, gradient, hessian)
}

/// The calibration of maximum likelihood over decided leads `(total, converted)` and open leads
/// `(total, (S_b, S_n))` at their ages ([`ConversionCurve::still_open`]), from `start` (damped Newton steps with a line search; the slope is kept
/// positive: if the best one is not, the intercept alone is fitted at `start`'s slope).
pub fn calibrate_censored(decided: &[(f64, bool)], open: &[(f64, (f64, f64))], start: Calibration) -> Calibration {
    let both = newton(decided, open, start, false);
    if both.slope > 1e-9 { both } else { newton(decided, open, start, true) }
}

fn newton(
    decided: &[(f64, bool)],
    open: &[(f64, (f64, f64))],
    start: Calibration,
    intercept_only: bool,
) -> Calibration {
    let mut c = start;
    let (mut value, mut gradient, mut hessian) = likelihood(c, decided, open);
    for _ in 0..100 {
        // The Newton direction where the Hessian is negative definite, else the gradient's.
        let (h00, h01, h11) = (hessian[0][0], hessian[0][1], hessian[1][1]);
        let det = h00 * h11 - h01 * h01;
        let step = if intercept_only {
            if h00 < 0.0 { [-gradient[0] / h00, 0.0] } else { [gradient[0] * 1e-3, 0.0] }
        } else if h00 < 0.0 && det > 0.0 {
            [-(h11 * gradient[0] - h01 * gradient[1]) / det, -(h00 * gradient[1] - h01 * gradient[0]) / det]
        } else {
            let scale = 1e-3 / (1.0 + gradient[0].abs() + gradient[1].abs());
            [gradient[0] * scale, gradient[1] * scale]
        };
        let mut size = 1.0;
        let mut moved = false;
        for _ in 0..40 {
            let next = Calibration { intercept: c.intercept + size * step[0], slope: c.slope + size * step[1] };
            let (v, g, h) = likelihood(next, decided, open);
            if v.is_finite() && v >= value {
                moved = (v - value) > 1e-12 * value.abs().max(1.0);
                (c, value, gradient, hessian) = (next, v, g, h);
                break;
            }
            size *= 0.5;
        }
        if !moved {
            break;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Lcg;

    fn uniform(rng: &mut Lcg) -> f64 {
        rng.next_value() as f64 / (1u64 << 31) as f64
    }

    #[test]
    fn open_leads_are_censored_at_their_age() {
        // Five leads: converted at day 10, lost at day 4, open at days 5, 20 and 30.
        let curve = ConversionCurve::estimate(&[10.0], &[4.0], &[5.0, 20.0, 30.0]);
        // Day 4: 1 of 5 lost. Day 10: 1 of the 3 still at risk converts, from 4/5 undecided.
        assert!((curve.rate() - 0.8 / 3.0).abs() < 1e-12);
        assert_eq!(curve.still_open(3.0), (1.0, 1.0));
        let (buyers, others) = curve.still_open(4.0);
        assert_eq!(buyers, 1.0);
        assert!((others - (1.0 - 0.2 / (1.0 - 0.8 / 3.0))).abs() < 1e-12);
        assert_eq!(curve.still_open(10.0).0, 0.0);
        assert_eq!(curve.median_days(), Some(10.0));
    }

    /// Known answer: leads are buyers with a probability that depends on their total; buyers
    /// convert after an exponential delay; the data is cut at a date, leaving young buyers open.
    /// The censored calibration recovers the true one; leaving the open leads out does not.
    #[test]
    fn censored_calibration_recovers_the_true_one_from_cut_data() {
        let truth = Calibration { intercept: -3.0, slope: 0.04 };
        let mut rng = Lcg::new(7);
        let (mut decided, mut open_rows) = (Vec::new(), Vec::new());
        let (mut delays, mut losses, mut ages) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..40_000 {
            let total = 100.0 * uniform(&mut rng);
            let age = 180.0 * uniform(&mut rng);
            let buyer = uniform(&mut rng) < truth.probability(total);
            // Buyers convert after 30 days on average; half the others are lost within 60 days,
            // the rest never decide.
            let decides_in = if buyer { -30.0 * (1.0 - uniform(&mut rng)).ln() } else { 60.0 * uniform(&mut rng) };
            let decides = buyer || uniform(&mut rng) < 0.5;
            if decides && decides_in <= age {
                decided.push((total, buyer));
                if buyer { delays.push(decides_in) } else { losses.push(decides_in) }
            } else {
                ages.push(age);
                open_rows.push((total, age));
            }
        }
        let curve = ConversionCurve::estimate(&delays, &losses, &ages);
        let open: Vec<(f64, (f64, f64))> = open_rows.iter().map(|&(t, age)| (t, curve.still_open(age))).collect();
        let start = Calibration { intercept: 0.0, slope: 0.01 };
        let fitted = calibrate_censored(&decided, &open, start);
        assert!((fitted.intercept - truth.intercept).abs() < 0.15, "{fitted:?}");
        assert!((fitted.slope - truth.slope).abs() < 0.004, "{fitted:?}");
        let decided_only = calibrate_censored(&decided, &[], start);
        assert!(decided_only.intercept > truth.intercept + 0.5, "{decided_only:?}");
    }
}
