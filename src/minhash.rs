//! MinHash signatures: `num_perm` minima of hashed shingles, whose agreement estimates Jaccard.
//!
//! Permutation `i` maps a shingle hash `x` to the top 32 bits of `a_i · x + b_i (mod 2^64)`, with
//! `a_i` odd and `a_i`, `b_i` drawn from the seed (multiply-add-shift hashing). A signature keeps the
//! minimum of each permutation over the shingles, as `u32`. The fraction of positions at which two
//! signatures agree is an unbiased estimate of the Jaccard similarity of the shingle sets, with
//! binomial standard error `sqrt(J(1-J)/num_perm)`.
//!
//! Signatures of a run live in one flat [`SignatureStore`] (no allocation per document).

use crate::error::ConfigError;

/// The largest `num_perm` accepted.
pub const MAX_NUM_PERM: usize = 8192;

/// An owned signature: `num_perm` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature(Vec<u32>);

impl Signature {
    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }
}

/// Computes signatures. Immutable once built; share it across threads freely.
#[derive(Debug, Clone)]
pub struct MinHasher {
    multipliers: Vec<u64>,
    increments: Vec<u64>,
}

impl MinHasher {
    pub fn new(num_perm: usize, seed: u64) -> Result<Self, ConfigError> {
        if num_perm == 0 || num_perm > MAX_NUM_PERM {
            return Err(ConfigError::NumPerm(num_perm));
        }
        let mut state = seed ^ 0x6e65_6172_6475_7030; // "neardup0"
        let mut multipliers = Vec::with_capacity(num_perm);
        let mut increments = Vec::with_capacity(num_perm);
        for _ in 0..num_perm {
            multipliers.push(splitmix64(&mut state) | 1);
            increments.push(splitmix64(&mut state));
        }
        Ok(MinHasher {
            multipliers,
            increments,
        })
    }

    pub fn num_perm(&self) -> usize {
        self.multipliers.len()
    }

    /// Writes the signature of `shingles` into `out` (length `num_perm`). An empty shingle list gives
    /// all `u32::MAX`; callers never match such a signature (empty documents are set aside earlier).
    pub fn sign_into(&self, shingles: &[u64], out: &mut [u32]) {
        assert_eq!(
            out.len(),
            self.num_perm(),
            "signature buffer has the wrong length"
        );
        out.fill(u32::MAX);
        for &x in shingles {
            for ((slot, &a), &b) in out.iter_mut().zip(&self.multipliers).zip(&self.increments) {
                let h = (a.wrapping_mul(x).wrapping_add(b) >> 32) as u32;
                *slot = (*slot).min(h);
            }
        }
    }

    pub fn sign(&self, shingles: &[u64]) -> Signature {
        let mut out = vec![0; self.num_perm()];
        self.sign_into(shingles, &mut out);
        Signature(out)
    }
}

/// The estimated Jaccard similarity of two signatures: the fraction of agreeing positions.
pub fn estimate_jaccard(a: &[u32], b: &[u32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let agree = a.iter().zip(b).filter(|(x, y)| x == y).count();
    agree as f64 / a.len() as f64
}

/// All signatures of a run, one after another, addressed by slot number.
#[derive(Debug, Clone)]
pub struct SignatureStore {
    num_perm: usize,
    values: Vec<u32>,
}

impl SignatureStore {
    pub fn new(num_perm: usize) -> Self {
        SignatureStore {
            num_perm,
            values: Vec::new(),
        }
    }

    pub fn num_perm(&self) -> usize {
        self.num_perm
    }

    pub fn len(&self) -> usize {
        self.values.len() / self.num_perm
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Appends a signature and returns its slot.
    pub fn push(&mut self, signature: &[u32]) -> usize {
        debug_assert_eq!(signature.len(), self.num_perm);
        self.values.extend_from_slice(signature);
        self.len() - 1
    }

    pub fn get(&self, slot: usize) -> &[u32] {
        &self.values[slot * self.num_perm..(slot + 1) * self.num_perm]
    }

    /// Bytes held by the signatures.
    pub fn heap_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<u32>()
    }
}

/// SplitMix64: a small, well-mixed generator for deriving per-permutation constants from a seed.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shingle::jaccard;

    /// Two sets with a chosen overlap: `shared` common elements and `only` private ones each.
    fn pair(rng: &mut u64, shared: usize, only: usize) -> (Vec<u64>, Vec<u64>) {
        let common: Vec<u64> = (0..shared).map(|_| splitmix64(rng)).collect();
        let mut a = common.clone();
        let mut b = common;
        a.extend((0..only).map(|_| splitmix64(rng)));
        b.extend((0..only).map(|_| splitmix64(rng)));
        a.sort_unstable();
        b.sort_unstable();
        (a, b)
    }

    #[test]
    fn estimates_stay_within_binomial_error_of_exact_jaccard() {
        let hasher = MinHasher::new(128, 42).unwrap();
        let mut rng = 7u64;
        let mut total_bias = 0.0;
        let trials = 400;
        for t in 0..trials {
            let shared = 20 + (t % 380);
            let (a, b) = pair(&mut rng, shared, 400 - shared);
            let exact = jaccard(&a, &b);
            let est = estimate_jaccard(hasher.sign(&a).as_slice(), hasher.sign(&b).as_slice());
            let sigma = (exact * (1.0 - exact) / 128.0).sqrt();
            // 4.5 sigma: with 400 trials a correct estimator fails this with probability < 0.3%.
            assert!(
                (est - exact).abs() <= 4.5 * sigma + 1e-9,
                "trial {t}: exact {exact:.3}, estimate {est:.3}, sigma {sigma:.3}"
            );
            total_bias += est - exact;
        }
        // Unbiased: the mean error is far inside the standard error of the mean (≤ 0.044/sqrt(400)).
        let mean_bias = total_bias / trials as f64;
        assert!(mean_bias.abs() < 0.007, "mean bias {mean_bias}");
    }

    #[test]
    fn identical_sets_agree_everywhere_and_disjoint_sets_almost_nowhere() {
        let hasher = MinHasher::new(64, 1).unwrap();
        let mut rng = 3u64;
        let (a, b) = pair(&mut rng, 0, 300);
        assert_eq!(
            estimate_jaccard(hasher.sign(&a).as_slice(), hasher.sign(&a).as_slice()),
            1.0
        );
        assert!(estimate_jaccard(hasher.sign(&a).as_slice(), hasher.sign(&b).as_slice()) < 0.1);
    }

    #[test]
    fn same_seed_same_signature_other_seed_other_signature() {
        let set = [1u64, 2, 3, 99, 12345];
        let a = MinHasher::new(32, 5).unwrap().sign(&set);
        let b = MinHasher::new(32, 5).unwrap().sign(&set);
        let c = MinHasher::new(32, 6).unwrap().sign(&set);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn order_and_repeats_of_shingles_do_not_matter() {
        let hasher = MinHasher::new(16, 9).unwrap();
        assert_eq!(hasher.sign(&[5, 1, 9]), hasher.sign(&[9, 9, 1, 5, 1]));
    }

    #[test]
    fn rejects_bad_num_perm() {
        assert_eq!(MinHasher::new(0, 1).unwrap_err(), ConfigError::NumPerm(0));
        assert!(MinHasher::new(MAX_NUM_PERM + 1, 1).is_err());
    }

    #[test]
    fn store_round_trips() {
        let mut store = SignatureStore::new(3);
        assert_eq!(store.push(&[1, 2, 3]), 0);
        assert_eq!(store.push(&[4, 5, 6]), 1);
        assert_eq!(store.get(1), &[4, 5, 6]);
        assert_eq!(store.len(), 2);
    }
}
