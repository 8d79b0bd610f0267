//! L2-regularised logistic regression on binary indicator features, solved by Newton's method
//! (IRLS) with a Cholesky factorisation. Each row is the list of its active features (value 1);
//! the intercept is separate and not penalised. Minimises
//! `-Σ log-likelihood + λ/2 Σ w_j²`.

/// A fitted model: `weights[j]` per feature and the intercept, on the log-odds scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub weights: Vec<f64>,
    pub intercept: f64,
}

impl Fit {
    pub fn logit(&self, active: &[u32]) -> f64 {
        self.intercept + active.iter().map(|&j| self.weights[j as usize]).sum::<f64>()
    }
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Fits `features` indicators to `labels` with penalty `lambda`, starting from `start` if given.
pub fn fit_logistic(rows: &[&[u32]], labels: &[bool], features: usize, lambda: f64, start: Option<&Fit>) -> Fit {
    let p = features + 1; // the intercept is the last coefficient
    let mut beta = vec![0.0; p];
    match start {
        Some(fit) if fit.weights.len() == features => {
            beta[..features].copy_from_slice(&fit.weights);
            beta[features] = fit.intercept;
        }
        _ => {
            let positives = labels.iter().filter(|&&y| y).count() as f64;
            let rate = ((positives + 0.5) / (labels.len() as f64 + 1.0)).clamp(1e-6, 1.0 - 1e-6);
            beta[features] = (rate / (1.0 - rate)).ln();
        }
    }
    let mut objective = penalised_loss(rows, labels, &beta, lambda);
    let mut hessian = vec![0.0; p * p];
    let mut gradient = vec![0.0; p];
    for _ in 0..50 {
        hessian.iter_mut().for_each(|h| *h = 0.0);
        gradient.iter_mut().for_each(|g| *g = 0.0);
        for (row, &y) in rows.iter().zip(labels) {
            let z = beta[features] + row.iter().map(|&j| beta[j as usize]).sum::<f64>();
            let prob = sigmoid(z);
            let w = (prob * (1.0 - prob)).max(1e-12);
            let r = f64::from(u8::from(y)) - prob;
            gradient[features] += r;
            hessian[features * p + features] += w;
            for (i, &a) in row.iter().enumerate() {
                let a = a as usize;
                gradient[a] += r;
                hessian[a * p + features] += w;
                for &b in &row[i..] {
                    let b = b as usize;
                    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                    hessian[lo * p + hi] += w;
                }
            }
        }
        for j in 0..features {
            gradient[j] -= lambda * beta[j];
            hessian[j * p + j] += lambda;
        }
        hessian[features * p + features] += 1e-9;
        // Mirror the upper triangle.
        for i in 0..p {
            for j in 0..i {
                hessian[i * p + j] = hessian[j * p + i];
            }
        }
        let Some(step) = solve_cholesky(&mut hessian, &gradient, p) else {
            break;
        };
        // Step halving keeps every iteration downhill.
        let mut scale = 1.0;
        let mut improved = false;
        for _ in 0..30 {
            let candidate: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + scale * s).collect();
            let value = penalised_loss(rows, labels, &candidate, lambda);
            if value <= objective + 1e-12 {
                let change = step.iter().map(|s| (scale * s).abs()).fold(0.0, f64::max);
                beta = candidate;
                objective = value;
                improved = change > 1e-7;
                break;
            }
            scale /= 2.0;
        }
        if !improved {
            break;
        }
    }
    let intercept = beta[features];
    beta.truncate(features);
    Fit { weights: beta, intercept }
}

fn penalised_loss(rows: &[&[u32]], labels: &[bool], beta: &[f64], lambda: f64) -> f64 {
    let features = beta.len() - 1;
    let mut loss = 0.0;
    for (row, &y) in rows.iter().zip(labels) {
        let z = beta[features] + row.iter().map(|&j| beta[j as usize]).sum::<f64>();
        // log(1 + e^z) - y z, computed stably.
        let softplus = if z > 0.0 { z + (-z).exp().ln_1p() } else { z.exp().ln_1p() };
        loss += softplus - if y { z } else { 0.0 };
    }
    loss + 0.5 * lambda * beta[..features].iter().map(|b| b * b).sum::<f64>()
}

/// Solves `A x = b` for a symmetric positive definite `A` (n × n, row-major; overwritten).
fn solve_cholesky(a: &mut [f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * y[k];
        }
        y[i] = s / a[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= a[k * n + i] * x[k];
        }
        x[i] = s / a[i * n + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intercept_only_fit_is_the_log_odds_of_the_rate() {
        let rows: Vec<&[u32]> = vec![&[]; 10];
        let labels = [true, true, true, false, false, false, false, false, false, false];
        let fit = fit_logistic(&rows, &labels, 0, 1.0, None);
        assert!((fit.intercept - (3.0f64 / 7.0).ln()).abs() < 1e-9, "{}", fit.intercept);
    }

    #[test]
    fn one_indicator_without_penalty_recovers_both_group_log_odds() {
        // Group A (feature 0 on): 8 of 10 convert; group B (off): 2 of 10.
        // Unpenalised: intercept = ln(2/8), weight = ln(8/2) - ln(2/8) = 2 ln 4.
        let on: &[u32] = &[0];
        let off: &[u32] = &[];
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..10 {
            rows.push(on);
            labels.push(i < 8);
            rows.push(off);
            labels.push(i < 2);
        }
        let fit = fit_logistic(&rows, &labels, 1, 0.0, None);
        assert!((fit.intercept - 0.25f64.ln()).abs() < 1e-6, "{}", fit.intercept);
        assert!((fit.weights[0] - 2.0 * 4.0f64.ln()).abs() < 1e-6, "{}", fit.weights[0]);
    }

    #[test]
    fn penalty_satisfies_the_stationarity_condition() {
        // With λ, the optimum has Σ_{rows with j} (y - p) = λ w_j.
        let on: &[u32] = &[0];
        let off: &[u32] = &[];
        let rows = [on, on, on, on, off, off, off, off];
        let labels = [true, true, true, false, false, false, true, false];
        let lambda = 2.0;
        let fit = fit_logistic(&rows, &labels, 1, lambda, None);
        let residual: f64 = rows
            .iter()
            .zip(&labels)
            .filter(|(r, _)| !r.is_empty())
            .map(|(r, &y)| f64::from(u8::from(y)) - sigmoid(fit.logit(r)))
            .sum();
        assert!((residual - lambda * fit.weights[0]).abs() < 1e-8);
        assert!(fit.weights[0] > 0.0 && fit.weights[0] < (3.0f64).ln() - (1.0f64 / 3.0).ln());
    }
}
