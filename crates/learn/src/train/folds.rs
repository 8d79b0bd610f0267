//! Deterministic stratified fold assignment, simple enough to reimplement exactly elsewhere
//! (`bench/peers.py` does): the rows of each class (negatives first, then positives), in input
//! order, are shuffled by a Fisher–Yates pass driven by one 64-bit LCG seeded with `seed`, and the
//! i-th row of each shuffled class goes to fold `i mod k`.

/// The 64-bit linear congruential generator of Knuth's MMIX.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }

    /// The next state's upper 31 bits.
    pub fn next_value(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// The fold (0..k) of each row.
pub fn fold_ids(labels: &[bool], k: usize, seed: u64) -> Vec<usize> {
    let k = k.max(1);
    let mut folds = vec![0; labels.len()];
    let mut rng = Lcg::new(seed);
    for class in [false, true] {
        let mut rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        for i in (1..rows.len()).rev() {
            let j = (rng.next_value() % (i as u64 + 1)) as usize;
            rows.swap(i, j);
        }
        for (position, &row) in rows.iter().enumerate() {
            folds[row] = position % k;
        }
    }
    folds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified_and_deterministic() {
        let labels: Vec<bool> = (0..103).map(|i| i % 3 == 0).collect();
        let a = fold_ids(&labels, 5, 42);
        assert_eq!(a, fold_ids(&labels, 5, 42));
        assert_ne!(a, fold_ids(&labels, 5, 43));
        for fold in 0..5 {
            let positives = (0..103).filter(|&i| a[i] == fold && labels[i]).count();
            assert!((6..=7).contains(&positives), "{positives}");
        }
    }

    #[test]
    fn lcg_matches_its_documented_first_values() {
        let mut rng = Lcg::new(42);
        // 42 * 6364136223846793005 + 1442695040888963407 mod 2^64, shifted right by 33.
        let expected = 42u64.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407) >> 33;
        assert_eq!(rng.next_value(), expected);
    }
}
