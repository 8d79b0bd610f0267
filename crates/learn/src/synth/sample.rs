//! Random draws used by the generator, written out here (rather than taken from `rand_distr`) so
//! that the output for a seed only changes when this file changes.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

pub type Rng = ChaCha8Rng;

/// Uniform in `[0, 1)`.
pub fn unit(rng: &mut Rng) -> f64 {
    rng.random::<f64>()
}

/// True with probability `p` (clamped to `[0, 1]`).
pub fn chance(rng: &mut Rng, p: f64) -> bool {
    unit(rng) < p
}

/// Uniform in `[low, high)`; `low` when the range is empty.
pub fn uniform(rng: &mut Rng, low: f64, high: f64) -> f64 {
    if high <= low { low } else { low + (high - low) * unit(rng) }
}

/// Uniform integer in `[low, high]`.
pub fn int(rng: &mut Rng, low: i64, high: i64) -> i64 {
    if high <= low { low } else { rng.random_range(low..=high) }
}

/// Exponential with the given mean.
pub fn exponential(rng: &mut Rng, mean: f64) -> f64 {
    -mean * (1.0 - unit(rng)).ln()
}

/// Standard normal (Box–Muller).
pub fn normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - unit(rng);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Log-normal: `exp(mu + sigma * N(0, 1))`.
pub fn log_normal(rng: &mut Rng, mu: f64, sigma: f64) -> f64 {
    (mu + sigma * normal(rng)).exp()
}

/// Poisson count with mean `lambda` (Knuth for small means, a rounded normal above 30).
pub fn poisson(rng: &mut Rng, lambda: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        return (lambda + lambda.sqrt() * normal(rng)).round().max(0.0) as u64;
    }
    let limit = (-lambda).exp();
    let mut product = unit(rng);
    let mut count = 0;
    while product > limit {
        product *= unit(rng);
        count += 1;
    }
    count
}

/// Gamma(shape, 1) by Marsaglia and Tsang.
pub fn gamma(rng: &mut Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let boost = unit(rng).max(f64::MIN_POSITIVE).powf(1.0 / shape);
        return gamma(rng, shape + 1.0) * boost;
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = unit(rng);
        if u.max(f64::MIN_POSITIVE).ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// Beta(a, b).
pub fn beta(rng: &mut Rng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    if x + y <= 0.0 { 0.0 } else { x / (x + y) }
}

/// One of `items`, with probability proportional to its weight.
pub fn weighted<'a, T>(rng: &mut Rng, items: &'a [(T, f64)]) -> &'a T {
    let total: f64 = items.iter().map(|(_, w)| w.max(0.0)).sum();
    let mut target = unit(rng) * total;
    for (item, weight) in items {
        target -= weight.max(0.0);
        if target < 0.0 {
            return item;
        }
    }
    // Rounding, or all weights zero: the last item.
    &items[items.len() - 1].0
}

/// One of `items`, uniformly. `items` must not be empty.
pub fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A random version-4 UUID, as Segment libraries use for `messageId` and `anonymousId`.
pub fn uuid(rng: &mut Rng) -> String {
    let bits: u128 = rng.random();
    let bits = (bits & !(0xF000u128 << 64) & !(0xC000u128 << 48)) | (0x4000u128 << 64) | (0x8000u128 << 48);
    let hex = format!("{bits:032x}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let mut rng = Rng::seed_from_u64(1);
        for _ in 0..100 {
            let id = uuid(&mut rng);
            assert_eq!(id.len(), 36);
            assert_eq!(id.as_bytes()[14], b'4', "{id}");
            assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "{id}");
        }
    }

    #[test]
    fn samplers_have_the_documented_means() {
        let mut rng = Rng::seed_from_u64(7);
        let n = 20_000;
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        let p = mean((0..n).map(|_| poisson(&mut rng, 3.0) as f64).collect());
        assert!((p - 3.0).abs() < 0.1, "poisson {p}");
        let e = mean((0..n).map(|_| exponential(&mut rng, 5.0)).collect());
        assert!((e - 5.0).abs() < 0.2, "exponential {e}");
        let b = mean((0..n).map(|_| beta(&mut rng, 1.0, 4.0)).collect());
        assert!((b - 0.2).abs() < 0.01, "beta {b}");
        let g = mean((0..n).map(|_| gamma(&mut rng, 0.5)).collect());
        assert!((g - 0.5).abs() < 0.03, "gamma {g}");
    }
}
