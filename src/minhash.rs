//! MinHash signatures: `num_perm` values whose agreement estimates Jaccard similarity.
//!
//! Signing uses *one-permutation hashing with optimal densification* (Li, Owen & Zhang 2012;
//! Shrivastava 2017) instead of `num_perm` independent hash functions: each shingle hash is mixed
//! with the seed once; its high bits pick one of `num_perm` bins and its low 32 bits are the value
//! kept if smaller than the bin's minimum. Bins no shingle fell into are then filled, for each empty
//! bin `i`, from the first non-empty bin in a pseudo-random probe sequence that depends only on `i`
//! and the seed, so two documents probe alike. Cost per document is O(shingles + num_perm) instead of
//! O(shingles × num_perm), and the estimator (fraction of agreeing positions) stays unbiased with an
//! error at or below the binomial `sqrt(J(1-J)/num_perm)` of classic MinHash (checked by the seeded
//! tests below).
//!
//! Signatures of a run live in one flat [`SignatureStore`] (no allocation per document), 8 bits per
//! value, with [`estimate_jaccard_bbit`] correcting for chance agreement.

use std::sync::Arc;

use crate::error::{ConfigError, Error};
use crate::hash::{mix64, splitmix64};
use crate::spill::{Persisted, SpillBytes, SpillSpace};

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
    num_perm: usize,
    key: u64,
}

impl MinHasher {
    pub fn new(num_perm: usize, seed: u64) -> Result<Self, ConfigError> {
        if num_perm == 0 || num_perm > MAX_NUM_PERM {
            return Err(ConfigError::NumPerm(num_perm));
        }
        let mut state = seed ^ 0x6e65_6172_6475_7030; // "neardup0"
        Ok(MinHasher {
            num_perm,
            key: splitmix64(&mut state),
        })
    }

    pub fn num_perm(&self) -> usize {
        self.num_perm
    }

    /// Writes the signature of `shingles` into `out` (length `num_perm`). An empty shingle list gives
    /// all `u32::MAX`; callers never match such a signature (empty documents are set aside earlier).
    pub fn sign_into(&self, shingles: &[u64], out: &mut [u32]) {
        assert_eq!(
            out.len(),
            self.num_perm,
            "signature buffer has the wrong length"
        );
        out.fill(u32::MAX);
        // One bit per bin (on the stack for up to 512 bins).
        with_scratch::<u64, 8, _>(self.num_perm.div_ceil(64), |filled| {
            let bins = self.num_perm as u64;
            for &x in shingles {
                let h = mix64(x ^ self.key);
                let bin = (((h >> 32) * bins) >> 32) as usize;
                // A branch-free minimum: whether a shingle lowers its bin's value is a coin toss
                // while the bins fill, which a branch would mispredict about half the time.
                out[bin] = out[bin].min(h as u32);
                filled[bin / 64] |= 1 << (bin % 64);
            }
            if shingles.is_empty() {
                return;
            }
            let occupied = |bin: usize| filled[bin / 64] & (1 << (bin % 64)) != 0;
            for bin in 0..self.num_perm {
                if occupied(bin) {
                    continue;
                }
                let mut probe = self.key ^ (bin as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                loop {
                    let source = (((splitmix64(&mut probe) >> 32) * bins) >> 32) as usize;
                    if occupied(source) {
                        out[bin] = out[source];
                        break;
                    }
                }
            }
        })
    }

    pub fn sign(&self, shingles: &[u64]) -> Signature {
        let mut out = vec![0; self.num_perm];
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

/// The estimated Jaccard similarity of two *b-bit* signatures (the low 8 bits of each value, as a
/// [`SignatureStore`] keeps them). Two different minima agree on 8 bits by chance with probability
/// 1/256, so the raw agreement `m` is corrected: `(m - 1/256) / (1 - 1/256)`, clamped to [0, 1].
/// The standard error stays within 1% of the full-width estimator's (Li & König 2010).
pub fn estimate_jaccard_bbit(a: &[u8], b: &[u8]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    const CHANCE: f64 = 1.0 / 256.0;
    let agree = a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64;
    ((agree - CHANCE) / (1.0 - CHANCE)).clamp(0.0, 1.0)
}

/// All signatures of a run, addressed by slot number. Each value is kept as its low 8 bits
/// (b-bit minwise hashing): 128 bytes per document at 128 permutations instead of 512. Band keys
/// are computed from the full values before they are stored.
///
/// The signatures live in a [`SpillBytes`] column: in memory while the run's tables fit their
/// budget, their oldest chunks on disk beyond it. Reads copy a signature into the caller's buffer.
#[derive(Debug)]
pub struct SignatureStore {
    num_perm: usize,
    bytes: SpillBytes,
    len: usize,
}

impl SignatureStore {
    /// A store that never spills.
    pub fn new(num_perm: usize) -> Self {
        Self::in_space(num_perm, Arc::new(SpillSpace::unbounded()))
    }

    /// A store whose signatures count against `space`'s budget and spill there (kept as
    /// `signatures` in a work directory).
    pub fn in_space(num_perm: usize, space: Arc<SpillSpace>) -> Self {
        SignatureStore {
            num_perm,
            bytes: SpillBytes::named(space, "signatures"),
            len: 0,
        }
    }

    /// Saves the store to its work directory (see [`SpillBytes::persist`]).
    pub fn persist(&mut self) -> Result<Persisted, Error> {
        self.bytes
            .persist()
            .map_err(|e| self.bytes.space().error(e))
    }

    /// The store as saved.
    pub fn reopen(
        num_perm: usize,
        space: Arc<SpillSpace>,
        saved: Persisted,
    ) -> Result<Self, Error> {
        let bytes =
            SpillBytes::reopen(space.clone(), "signatures", saved).map_err(|e| space.error(e))?;
        Ok(SignatureStore {
            num_perm,
            len: (bytes.len() / num_perm as u64) as usize,
            bytes,
        })
    }

    pub fn num_perm(&self) -> usize {
        self.num_perm
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a signature (keeping the low 8 bits of each value) and returns its slot.
    pub fn push(&mut self, signature: &[u32]) -> Result<usize, Error> {
        debug_assert_eq!(signature.len(), self.num_perm);
        with_scratch::<u8, 512, _>(self.num_perm, |low| {
            for (out, &v) in low.iter_mut().zip(signature) {
                *out = v as u8;
            }
            self.bytes.push(low)
        })
        .map_err(|e| self.bytes.space().error(e))?;
        self.len += 1;
        Ok(self.len - 1)
    }

    /// Copies the b-bit signature in `slot` into `out` (`num_perm` bytes).
    pub fn read_into(&self, slot: usize, out: &mut [u8]) -> Result<(), Error> {
        self.bytes
            .read_into((slot * self.num_perm) as u64, &mut out[..self.num_perm])
            .map_err(|e| self.bytes.space().error(e))
    }

    /// The b-bit signature in `slot`.
    pub fn get(&self, slot: usize) -> Result<Vec<u8>, Error> {
        let mut out = vec![0u8; self.num_perm];
        self.read_into(slot, &mut out)?;
        Ok(out)
    }

    /// The estimated Jaccard similarity of the signatures in two slots.
    pub fn similarity(&self, a: usize, b: usize) -> Result<f64, Error> {
        with_scratch::<u8, 512, _>(2 * self.num_perm, |both| {
            let (x, y) = both.split_at_mut(self.num_perm);
            self.read_into(a, x)?;
            self.read_into(b, y)?;
            Ok(estimate_jaccard_bbit(x, y))
        })
    }
}

/// Runs `f` on `len` zeroed scratch values: on the stack up to `ON_STACK` of them (sized for every
/// usual number of permutations), on the heap beyond. Buffers sized for [`MAX_NUM_PERM`] cost an
/// 8 KB memset for every signature stored and every pair estimated, and 1 KB for every document
/// signed (12% of a run's instructions).
fn with_scratch<T: Copy + Default, const ON_STACK: usize, R>(
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    if len <= ON_STACK {
        f(&mut [T::default(); ON_STACK][..len])
    } else {
        f(&mut vec![T::default(); len])
    }
}

#[cfg(test)]
mod tests {
    use crate::ConfigError;
    use crate::minhash::{MAX_NUM_PERM, MinHasher, SignatureStore, estimate_jaccard, splitmix64};
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

    /// What a seeded accuracy check demands of an estimator over 400 trials.
    struct Bounds {
        /// Largest single error, in binomial standard errors, plus a constant slack.
        sigmas: f64,
        slack: f64,
        /// Largest mean squared error, as a multiple of the binomial variance.
        variance_ratio: f64,
        /// Largest mean error.
        bias: f64,
    }

    /// Draws 400 pairs with `shape(trial) = (shared, private)` elements, estimates their Jaccard
    /// with `estimate`, and checks each error and the mean and mean squared errors against `bounds`.
    fn check_estimator(
        seed: u64,
        shape: impl Fn(usize) -> (usize, usize),
        estimate: impl Fn(&[u64], &[u64]) -> f64,
        bounds: Bounds,
    ) {
        let mut rng = seed;
        let (mut total_bias, mut squared_error, mut binomial_variance) = (0.0, 0.0, 0.0);
        let trials = 400;
        for t in 0..trials {
            let (shared, private) = shape(t);
            let (a, b) = pair(&mut rng, shared, private);
            let exact = jaccard(&a, &b);
            let est = estimate(&a, &b);
            let sigma = (exact * (1.0 - exact) / 128.0).sqrt();
            assert!(
                (est - exact).abs() <= bounds.sigmas * sigma + bounds.slack,
                "trial {t}: {shared} shared, {private} private, exact {exact:.3}, estimate {est:.3}"
            );
            total_bias += est - exact;
            squared_error += (est - exact).powi(2);
            binomial_variance += sigma * sigma;
        }
        let ratio = squared_error / binomial_variance;
        assert!(
            ratio < bounds.variance_ratio,
            "mean squared error is {ratio:.2}× the binomial variance"
        );
        let mean_bias = total_bias / trials as f64;
        assert!(mean_bias.abs() < bounds.bias, "mean bias {mean_bias}");
    }

    #[test]
    fn estimates_stay_within_binomial_error_of_exact_jaccard() {
        let hasher = MinHasher::new(128, 42).unwrap();
        // 4.5 sigma: with 400 trials a correct estimator fails this with probability < 0.3%.
        // One-permutation hashing samples without replacement: no worse than classic MinHash.
        // Unbiased: the mean error is far inside the standard error of the mean (≤ 0.044/sqrt(400)).
        check_estimator(
            7,
            |t| (20 + t % 380, 400 - (20 + t % 380)),
            |a, b| estimate_jaccard(hasher.sign(a).as_slice(), hasher.sign(b).as_slice()),
            Bounds {
                sigmas: 4.5,
                slack: 1e-9,
                variance_ratio: 1.1,
                bias: 0.007,
            },
        );
    }

    #[test]
    fn estimates_for_small_sets_stay_within_binomial_error() {
        // Fewer shingles than bins: most bins are filled by densification, whose copies add some
        // variance (measured 1.1 to 1.4× the binomial for sets of 10 to 60; 0.8 for sets of 400).
        let hasher = MinHasher::new(128, 11).unwrap();
        check_estimator(
            17,
            |t| {
                let size = 10 + t % 50;
                let shared = 1 + (t * 7) % size;
                (shared, size - shared)
            },
            |a, b| estimate_jaccard(hasher.sign(a).as_slice(), hasher.sign(b).as_slice()),
            Bounds {
                sigmas: 6.0,
                slack: 1e-9,
                variance_ratio: 1.7,
                bias: 0.01,
            },
        );
    }

    #[test]
    fn one_shingle_fills_every_bin() {
        let hasher = MinHasher::new(64, 1).unwrap();
        let sig = hasher.sign(&[42]);
        assert!(
            sig.as_slice()
                .iter()
                .all(|&v| v == sig.as_slice()[0] && v != u32::MAX)
        );
        assert_eq!(
            estimate_jaccard(sig.as_slice(), hasher.sign(&[42]).as_slice()),
            1.0
        );
        assert!(estimate_jaccard(sig.as_slice(), hasher.sign(&[43]).as_slice()) < 0.1);
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
    fn rejects_bad_num_perm() {
        assert_eq!(MinHasher::new(0, 1).unwrap_err(), ConfigError::NumPerm(0));
        assert!(MinHasher::new(MAX_NUM_PERM + 1, 1).is_err());
    }

    #[test]
    fn store_keeps_low_bytes() {
        let mut store = SignatureStore::new(3);
        assert_eq!(store.push(&[1, 2, 3]).unwrap(), 0);
        assert_eq!(store.push(&[0x104, 5, 0xffff_ff06]).unwrap(), 1);
        assert_eq!(store.get(1).unwrap(), [4, 5, 6]);
        assert_eq!(store.len(), 2);
        assert_eq!(store.similarity(0, 0).unwrap(), 1.0);
    }

    #[test]
    fn bbit_estimates_stay_within_binomial_error_of_exact_jaccard() {
        let hasher = MinHasher::new(128, 5).unwrap();
        check_estimator(
            23,
            |t| (5 + t % 390, 400 - (5 + t % 390)),
            |a, b| {
                let mut store = SignatureStore::new(128);
                store.push(hasher.sign(a).as_slice()).unwrap();
                store.push(hasher.sign(b).as_slice()).unwrap();
                store.similarity(0, 1).unwrap()
            },
            Bounds {
                sigmas: 4.5,
                slack: 0.02,
                variance_ratio: 1.15,
                bias: 0.007,
            },
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use crate::hash::mix64;
    use std::sync::Arc;

    use crate::minhash::{MinHasher, SignatureStore};
    use crate::spill::SpillSpace;

    /// A non-empty set of shingle hashes, from few values or from all.
    fn shingles() -> impl Strategy<Value = Vec<u64>> {
        prop::collection::vec(prop_oneof![0..64u64, any::<u64>()], 1..120)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// A signature depends on the set of shingles only: not on their order, nor on repeats.
        #[test]
        fn signature_ignores_order_and_repeats(
            (original, shuffled) in shingles().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
            repeats in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
            num_perm in prop_oneof![1..=16usize, 17..=300usize],
            seed in any::<u64>(),
        ) {
            let hasher = MinHasher::new(num_perm, seed).unwrap();
            let mut other = shuffled;
            other.extend(repeats.iter().map(|r| original[r.index(original.len())]));
            prop_assert_eq!(hasher.sign(&original), hasher.sign(&other));
        }

        /// Every value of a signature is the value of one of the set's shingles (densification
        /// only copies filled bins), and the smallest of them is the set's smallest value.
        #[test]
        fn signature_values_come_from_the_set(
            set in shingles(),
            num_perm in prop_oneof![1..=16usize, 17..=300usize],
            seed in any::<u64>(),
        ) {
            let hasher = MinHasher::new(num_perm, seed).unwrap();
            let values: Vec<u32> = set.iter().map(|&x| mix64(x ^ hasher.key) as u32).collect();
            let signature = hasher.sign(&set);
            prop_assert_eq!(signature.as_slice().len(), num_perm);
            for v in signature.as_slice() {
                prop_assert!(values.contains(v), "{} is no shingle's value", v);
            }
            prop_assert_eq!(signature.as_slice().iter().min(), values.iter().min());
        }

        /// A store gives back the low byte of every value pushed, at the slot `push` returned,
        /// across chunk boundaries, with every full chunk spilled to disk.
        #[test]
        fn store_gives_back_the_low_bytes_pushed(
            num_perm in 100..=200usize,
            near_boundary in prop_oneof![Just(false), Just(true)],
            offset in 0..6usize,
            signatures in prop::collection::vec(prop::collection::vec(any::<u32>(), 200), 0..12),
        ) {
            let space = Arc::new(SpillSpace::new(&std::env::temp_dir(), 0));
            let chunk_bytes = space.chunk_bytes();
            let mut store = SignatureStore::in_space(num_perm, space.clone());
            let before = if near_boundary { chunk_bytes / num_perm + offset - 3 } else { 0 };
            for slot in 0..before {
                let filler = vec![slot as u32; num_perm];
                prop_assert_eq!(store.push(&filler).unwrap(), slot);
            }
            for (i, signature) in signatures.iter().enumerate() {
                prop_assert_eq!(store.push(&signature[..num_perm]).unwrap(), before + i);
            }
            prop_assert_eq!(store.len(), before + signatures.len());
            prop_assert_eq!(space.bytes_on_disk() > 0, store.len() * num_perm > chunk_bytes);
            for slot in (0..before).step_by(97).chain(before.saturating_sub(1)..before) {
                prop_assert_eq!(store.get(slot).unwrap(), vec![slot as u8; num_perm]);
            }
            for (i, signature) in signatures.iter().enumerate() {
                let low: Vec<u8> = signature[..num_perm].iter().map(|&v| v as u8).collect();
                prop_assert_eq!(store.get(before + i).unwrap(), low);
            }
        }
    }
}
