//! Verification: decide which candidate pairs really are duplicates.
//!
//! Three modes ([`VerifyMode`]):
//! - `signature`: the b-bit signature estimate must reach the threshold. No extra work, but the
//!   estimate's noise (standard error about 0.035 at 128 permutations and Jaccard 0.8) flips pairs
//!   that sit near the threshold, both ways.
//! - `borderline` (default): the estimate decides pairs far from the threshold (more than three
//!   standard errors away, where it is wrong about once in a thousand pairs); the pairs in between
//!   are decided on exact shingle Jaccard. Their documents' shingle sets are computed by reading the
//!   inputs once more, so memory holds only those sets, never every document's.
//! - `exact`: every candidate pair is decided on exact Jaccard (all candidates' sets are loaded).
//!
//! [`ExactSets`] holds the loaded sets; reported similarities use them where both sides are loaded.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::cluster::UnionFind;
use crate::error::{ConfigError, Error};
use crate::lsh::CandidatePair;
use crate::minhash::SignatureStore;
use crate::shingle::{containment, jaccard};

/// What "similar" means for a pair of documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// `|A ∩ B| / |A ∪ B|`: the two documents are mostly the same text.
    #[default]
    Jaccard,
    /// `|A ∩ B| / min(|A|, |B|)`: the smaller document is mostly inside the larger (a syndicated
    /// story inside a page, an excerpt, a reprint inside a collection).
    Containment,
}

impl std::str::FromStr for Measure {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jaccard" => Ok(Measure::Jaccard),
            "containment" => Ok(Measure::Containment),
            other => Err(ConfigError::Measure(other.to_string())),
        }
    }
}

impl Measure {
    /// The measure for a pair with Jaccard `j` and `size_a`, `size_b` distinct shingles:
    /// containment is `j (|A| + |B|) / ((1 + j) min(|A|, |B|))`.
    pub fn from_jaccard(self, j: f64, size_a: u32, size_b: u32) -> f64 {
        match self {
            Measure::Jaccard => j,
            Measure::Containment => {
                let (a, b) = (f64::from(size_a), f64::from(size_b));
                (j * (a + b) / ((1.0 + j) * a.min(b).max(1.0))).min(1.0)
            }
        }
    }

    /// The exact measure of two sorted, deduplicated shingle sets.
    pub fn of_sets(self, a: &[u32], b: &[u32]) -> f64 {
        match self {
            Measure::Jaccard => jaccard(a, b),
            Measure::Containment => containment(a, b),
        }
    }

    /// The lowest Jaccard a pair at `threshold` can have when the larger document has at most
    /// `max_size_ratio` times the smaller's shingles: what LSH must be tuned to find.
    pub fn jaccard_floor(self, threshold: f64, max_size_ratio: f64) -> f64 {
        match self {
            Measure::Jaccard => threshold,
            Measure::Containment => threshold / (1.0 + max_size_ratio - threshold),
        }
    }
}

/// How a candidate pair is checked before it joins a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyMode {
    /// The signature estimate alone.
    Signature,
    /// The signature estimate where it is clear, exact Jaccard near the threshold.
    #[default]
    Borderline,
    /// Exact Jaccard for every candidate pair.
    Exact,
}

impl std::str::FromStr for VerifyMode {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "signature" | "sig" => Ok(VerifyMode::Signature),
            "borderline" => Ok(VerifyMode::Borderline),
            "exact" => Ok(VerifyMode::Exact),
            other => Err(ConfigError::VerifyMode(other.to_string())),
        }
    }
}

/// Exact shingle sets of some distinct documents, by signature slot. Each shingle hash is kept as
/// its low 32 bits: half the memory, and two different shingles of a pair collide with probability
/// about 800²/2³³ < 10⁻⁴, which moves that pair's Jaccard by one shingle in 800.
#[derive(Debug, Default)]
pub struct ExactSets {
    sets: HashMap<u32, Box<[u32]>>,
}

impl ExactSets {
    pub fn insert(&mut self, slot: u32, set: &[u64]) {
        let mut small: Vec<u32> = set.iter().map(|&h| h as u32).collect();
        small.sort_unstable();
        small.dedup();
        self.sets.insert(slot, small.into_boxed_slice());
    }

    pub fn get(&self, slot: u32) -> Option<&[u32]> {
        self.sets.get(&slot).map(|s| &s[..])
    }
}

/// The outcome of verification.
#[derive(Debug)]
pub struct Verified {
    /// Pairs that are duplicates, in candidate order.
    pub pairs: Vec<CandidatePair>,
    /// Pairs decided on exact Jaccard.
    pub exact_checks: u64,
    /// The exact Jaccard of every pair decided on it (used again for reported similarities).
    pub exact: HashMap<CandidatePair, f64>,
}

/// Loads the shingle sets of the slots flagged `true`.
pub type LoadSets<'a> = dyn FnMut(&[u32]) -> Result<ExactSets, Error> + 'a;

/// Most shingle sets held at once by [`exact_similarities`] when records can be read back cheaply:
/// 65,536 sets of ~400 shingles are about 100 MB.
pub const MAX_SETS_PER_ROUND: usize = 1 << 16;

/// Exact Jaccard of each pair (NaN where a set could not be loaded), holding at most `max_sets`
/// sets at a time: the pairs are split into connected components, and components are gathered into
/// rounds of at most `max_sets` slots (a larger component is a round of its own); each round loads
/// its sets, computes its pairs, and drops them. With `usize::MAX`, one round.
pub fn exact_similarities(
    pairs: &[CandidatePair],
    num_slots: usize,
    max_sets: usize,
    measure: Measure,
    load: &mut LoadSets<'_>,
) -> Result<Vec<f64>, Error> {
    let mut out = vec![f64::NAN; pairs.len()];
    if pairs.is_empty() {
        return Ok(out);
    }
    let mut components = UnionFind::new(num_slots);
    for &(a, b) in pairs {
        components.union(a, b);
    }
    // Round of each component, assigned in order of first appearance.
    let mut round_of_root: HashMap<u32, usize> = HashMap::new();
    let (mut rounds, mut open_size) = (0usize, 0usize);
    let mut round_of_pair = Vec::with_capacity(pairs.len());
    for &(a, _) in pairs {
        let root = components.find(a);
        let size = components.set_size(root);
        let round = *round_of_root.entry(root).or_insert_with(|| {
            if rounds == 0 || (open_size > 0 && open_size + size > max_sets) {
                rounds += 1;
                open_size = 0;
            }
            open_size += size;
            rounds - 1
        });
        round_of_pair.push(round);
    }
    // Each round's pairs, gathered once: a round costs time in its own pairs and sets only.
    let mut pairs_of_round: Vec<Vec<usize>> = vec![Vec::new(); rounds];
    for (i, &round) in round_of_pair.iter().enumerate() {
        pairs_of_round[round].push(i);
    }
    drop(round_of_pair);
    for members in pairs_of_round {
        let mut slots: Vec<u32> = members
            .iter()
            .flat_map(|&i| [pairs[i].0, pairs[i].1])
            .collect();
        slots.sort_unstable();
        slots.dedup();
        let sets = load(&slots)?;
        drop(slots);
        let values: Vec<(usize, f64)> = members
            .par_iter()
            .map(|&i| {
                let (a, b) = pairs[i];
                match (sets.get(a), sets.get(b)) {
                    (Some(x), Some(y)) => (i, measure.of_sets(x, y)),
                    _ => (i, f64::NAN),
                }
            })
            .collect();
        for (i, value) in values {
            out[i] = value;
        }
    }
    Ok(out)
}

/// Checks candidate pairs against a threshold.
#[derive(Debug, Clone, Copy)]
pub struct Verifier {
    mode: VerifyMode,
    measure: Measure,
    threshold: f64,
    margin: f64,
}

impl Verifier {
    pub fn new(mode: VerifyMode, threshold: f64, num_perm: usize) -> Self {
        // Standard error of the b-bit estimate at the threshold, widened for the 1/256 correction.
        let sigma = (threshold * (1.0 - threshold) / num_perm as f64).sqrt() / (1.0 - 1.0 / 256.0);
        Verifier {
            mode,
            measure: Measure::Jaccard,
            threshold,
            margin: (3.0 * sigma).max(0.02),
        }
    }

    /// Verifies on `measure` instead of Jaccard (containment needs each slot's set size).
    pub fn with_measure(mut self, measure: Measure) -> Self {
        self.measure = measure;
        self
    }

    /// The estimate of the measure for slots `a`, `b` from their signatures, and the margin
    /// around the threshold within which the estimate is not trusted.
    fn estimate(
        &self,
        signatures: &SignatureStore,
        sizes: &[u32],
        a: u32,
        b: u32,
    ) -> Result<(f64, f64), Error> {
        let j = signatures.similarity(a as usize, b as usize)?;
        Ok(match self.measure {
            Measure::Jaccard => (j, self.margin),
            Measure::Containment => {
                let (x, y) = (sizes[a as usize], sizes[b as usize]);
                let (fx, fy) = (f64::from(x), f64::from(y));
                // Delta method: dC/dJ = (|A| + |B|) / (min · (1 + J)²).
                let slope = (fx + fy) / (fx.min(fy).max(1.0) * (1.0 + j).powi(2));
                (self.measure.from_jaccard(j, x, y), self.margin * slope)
            }
        })
    }

    /// Estimates within this distance of the threshold are borderline.
    pub fn margin(&self) -> f64 {
        self.margin
    }

    /// Verifies `pairs`. Pairs that need exact Jaccard go through [`exact_similarities`] with `load`
    /// and at most `max_sets` sets held at once.
    pub fn verify(
        &self,
        pairs: &[CandidatePair],
        signatures: &SignatureStore,
        sizes: &[u32],
        max_sets: usize,
        load: &mut LoadSets<'_>,
    ) -> Result<Verified, Error> {
        // Some(decision) when the estimate decides; None when the exact measure must.
        let calls = pairs
            .par_iter()
            .map(|&(a, b)| {
                if self.mode == VerifyMode::Exact {
                    return Ok(None);
                }
                let (estimate, margin) = self.estimate(signatures, sizes, a, b)?;
                let clear = self.mode == VerifyMode::Signature
                    || (estimate - self.threshold).abs() > margin;
                Ok(clear.then_some(estimate >= self.threshold))
            })
            .collect::<Result<Vec<Option<bool>>, Error>>()?;
        let to_check: Vec<CandidatePair> = pairs
            .iter()
            .zip(&calls)
            .filter_map(|(&pair, call)| call.is_none().then_some(pair))
            .collect();
        let values = exact_similarities(&to_check, signatures.len(), max_sets, self.measure, load)?;
        let exact: HashMap<CandidatePair, f64> = to_check.iter().copied().zip(values).collect();
        let mut verified = Vec::new();
        for (&(a, b), call) in pairs.iter().zip(&calls) {
            let duplicate = match call {
                Some(decision) => *decision,
                None => match exact.get(&(a, b)) {
                    Some(j) if !j.is_nan() => *j >= self.threshold,
                    // A set that could not be loaded (the input changed): fall back on the estimate.
                    _ => signatures.similarity(a as usize, b as usize)? >= self.threshold,
                },
            };
            if duplicate {
                verified.push((a, b));
            }
        }
        Ok(Verified {
            pairs: verified,
            exact_checks: to_check.len() as u64,
            exact,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::minhash::MinHasher;
    use crate::verify::{
        CandidatePair, ExactSets, Measure, SignatureStore, Verifier, exact_similarities,
    };
    use crate::{Error, VerifyMode};

    /// Three sets: 0 and 1 at Jaccard 0.81, 0 and 2 at 0.30.
    fn fixture() -> (SignatureStore, Vec<Vec<u64>>) {
        let base: Vec<u64> = (0..200).collect();
        let mut near = base[..181].to_vec();
        near.extend(1000..1019); // 181 shared of 219: 0.826
        let far: Vec<u64> = (100..300).collect();
        let hasher = MinHasher::new(128, 3).unwrap();
        let mut store = SignatureStore::new(128);
        for set in [&base, &near, &far] {
            store.push(hasher.sign(set).as_slice()).unwrap();
        }
        (store, vec![base, near, far])
    }

    /// A loader over in-memory sets that records which slots each call loaded.
    fn loader<'a>(
        sets: &'a [Vec<u64>],
        calls: &'a mut Vec<Vec<u32>>,
    ) -> impl FnMut(&[u32]) -> Result<ExactSets, Error> + 'a {
        move |needed: &[u32]| {
            let mut out = ExactSets::default();
            let mut loaded = Vec::new();
            for &slot in needed {
                out.insert(slot, &sets[slot as usize]);
                loaded.push(slot);
            }
            calls.push(loaded);
            Ok(out)
        }
    }

    fn no_load(_: &[u32]) -> Result<ExactSets, Error> {
        panic!("nothing to load")
    }

    #[test]
    fn exact_mode_decides_on_exact_jaccard_and_loads_only_candidates() {
        let (store, sets) = fixture();
        let mut calls = Vec::new();
        let v = Verifier::new(VerifyMode::Exact, 0.8, 128)
            .verify(
                &[(0, 1)],
                &store,
                &[],
                usize::MAX,
                &mut loader(&sets, &mut calls),
            )
            .unwrap();
        assert_eq!(v.pairs, [(0, 1)]);
        assert_eq!(v.exact_checks, 1);
        assert_eq!(
            calls,
            [vec![0, 1]],
            "slot 2 is in no pair and is not loaded"
        );
        assert!((v.exact[&(0, 1)] - 181.0 / 219.0).abs() < 1e-12);
        let v = Verifier::new(VerifyMode::Exact, 0.85, 128)
            .verify(
                &[(0, 1), (0, 2)],
                &store,
                &[],
                usize::MAX,
                &mut loader(&sets, &mut Vec::new()),
            )
            .unwrap();
        assert!(v.pairs.is_empty());
    }

    #[test]
    fn borderline_mode_checks_only_pairs_near_the_threshold() {
        let (store, sets) = fixture();
        let verifier = Verifier::new(VerifyMode::Borderline, 0.8, 128);
        assert!((verifier.margin() - 0.107).abs() < 0.005);
        let mut calls = Vec::new();
        let v = verifier
            .verify(
                &[(0, 1), (0, 2)],
                &store,
                &[],
                usize::MAX,
                &mut loader(&sets, &mut calls),
            )
            .unwrap();
        // 0-2 is far below: decided on the estimate. 0-1 sits at 0.83: checked exactly.
        assert_eq!(v.exact_checks, 1);
        assert_eq!(v.pairs, [(0, 1)]);
        assert_eq!(calls, [vec![0, 1]]);
        let far_only = verifier.verify(&[(0, 2)], &store, &[], usize::MAX, &mut no_load);
        assert!(far_only.unwrap().pairs.is_empty());
    }

    #[test]
    fn signature_mode_never_loads() {
        let (store, _) = fixture();
        let v = Verifier::new(VerifyMode::Signature, 0.8, 128)
            .verify(&[(0, 1), (0, 2)], &store, &[], usize::MAX, &mut no_load)
            .unwrap();
        assert_eq!(v.exact_checks, 0);
        assert!(!v.pairs.contains(&(0, 2)));
    }

    #[test]
    fn exact_similarities_in_bounded_rounds_equal_one_round() {
        // Ten components of three slots each, joined by pairs.
        let sets: Vec<Vec<u64>> = (0..30u64)
            .map(|i| ((i / 3) * 100..(i / 3) * 100 + 20 + i % 3).collect())
            .collect();
        let pairs: Vec<CandidatePair> = (0..10u32)
            .flat_map(|c| [(3 * c, 3 * c + 1), (3 * c + 1, 3 * c + 2)])
            .collect();
        let mut one_call = Vec::new();
        let once = exact_similarities(
            &pairs,
            30,
            usize::MAX,
            Measure::Jaccard,
            &mut loader(&sets, &mut one_call),
        )
        .unwrap();
        let mut calls = Vec::new();
        let rounds = exact_similarities(
            &pairs,
            30,
            7,
            Measure::Jaccard,
            &mut loader(&sets, &mut calls),
        )
        .unwrap();
        assert_eq!(once, rounds);
        assert_eq!(one_call.len(), 1);
        // Components are never split; at most 7 sets (two components of 3) per round.
        assert_eq!(calls.len(), 5);
        assert!(calls.iter().all(|c| c.len() <= 7));
        assert!((once[0] - 20.0 / 21.0).abs() < 1e-12);
    }
}
