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

use crate::error::{ConfigError, Error};
use crate::lsh::CandidatePair;
use crate::minhash::SignatureStore;
use crate::shingle::jaccard;

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

    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

/// The outcome of verification.
#[derive(Debug)]
pub struct Verified {
    /// Pairs that are duplicates, in candidate order.
    pub pairs: Vec<CandidatePair>,
    /// Pairs decided on exact Jaccard.
    pub exact_checks: u64,
    /// Sets loaded for those checks (used again for reported similarities).
    pub sets: ExactSets,
}

/// Checks candidate pairs against a threshold.
#[derive(Debug, Clone, Copy)]
pub struct Verifier {
    mode: VerifyMode,
    threshold: f64,
    margin: f64,
}

impl Verifier {
    pub fn new(mode: VerifyMode, threshold: f64, num_perm: usize) -> Self {
        // Standard error of the b-bit estimate at the threshold, widened for the 1/256 correction.
        let sigma = (threshold * (1.0 - threshold) / num_perm as f64).sqrt() / (1.0 - 1.0 / 256.0);
        Verifier {
            mode,
            threshold,
            margin: (3.0 * sigma).max(0.02),
        }
    }

    /// Estimates within this distance of the threshold are borderline.
    pub fn margin(&self) -> f64 {
        self.margin
    }

    /// Verifies `pairs`. `load` is called at most once, with a flag per slot saying which shingle
    /// sets are needed, and returns them.
    pub fn verify(
        &self,
        pairs: &[CandidatePair],
        signatures: &SignatureStore,
        load: impl FnOnce(&[bool]) -> Result<ExactSets, Error>,
    ) -> Result<Verified, Error> {
        #[derive(Clone, Copy, PartialEq)]
        enum Call {
            Yes,
            No,
            Exact,
        }
        let calls: Vec<Call> = pairs
            .par_iter()
            .map(|&(a, b)| {
                if self.mode == VerifyMode::Exact {
                    return Call::Exact;
                }
                let estimate = signatures.similarity(a as usize, b as usize);
                let clear = self.mode == VerifyMode::Signature
                    || (estimate - self.threshold).abs() > self.margin;
                match (clear, estimate >= self.threshold) {
                    (true, true) => Call::Yes,
                    (true, false) => Call::No,
                    (false, _) => Call::Exact,
                }
            })
            .collect();
        let mut needed = vec![false; signatures.len()];
        let mut exact_checks = 0;
        for (&(a, b), call) in pairs.iter().zip(&calls) {
            if *call == Call::Exact {
                needed[a as usize] = true;
                needed[b as usize] = true;
                exact_checks += 1;
            }
        }
        let sets = if exact_checks > 0 {
            load(&needed)?
        } else {
            ExactSets::default()
        };
        drop(needed);
        let keep: Vec<bool> = pairs
            .par_iter()
            .zip(&calls)
            .map(|(&(a, b), call)| match call {
                Call::Yes => true,
                Call::No => false,
                Call::Exact => match (sets.get(a), sets.get(b)) {
                    (Some(x), Some(y)) => jaccard(x, y) >= self.threshold,
                    // A set the loader could not find (the input changed): fall back on the estimate.
                    _ => signatures.similarity(a as usize, b as usize) >= self.threshold,
                },
            })
            .collect();
        let verified = pairs
            .iter()
            .zip(keep)
            .filter_map(|(&pair, keep)| keep.then_some(pair))
            .collect();
        Ok(Verified {
            pairs: verified,
            exact_checks,
            sets,
        })
    }
}

/// The similarity reported between two distinct texts: exact when both sets were loaded, the
/// signature estimate otherwise.
pub fn reported_similarity(signatures: &SignatureStore, sets: &ExactSets, a: u32, b: u32) -> f64 {
    match (sets.get(a), sets.get(b)) {
        (Some(x), Some(y)) => jaccard(x, y),
        _ => signatures.similarity(a as usize, b as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minhash::MinHasher;

    /// Three sets: 0 and 1 at Jaccard 0.81, 0 and 2 at 0.30.
    fn fixture() -> (SignatureStore, Vec<Vec<u64>>) {
        let base: Vec<u64> = (0..200).collect();
        let mut near = base[..181].to_vec();
        near.extend(1000..1019); // 181 shared of 219: 0.826
        let far: Vec<u64> = (100..300).collect();
        let hasher = MinHasher::new(128, 3).unwrap();
        let mut store = SignatureStore::new(128);
        for set in [&base, &near, &far] {
            store.push(hasher.sign(set).as_slice());
        }
        (store, vec![base, near, far])
    }

    fn loader(
        sets: &[Vec<u64>],
        calls: &mut usize,
    ) -> impl FnOnce(&[bool]) -> Result<ExactSets, Error> {
        *calls += 1;
        let sets = sets.to_vec();
        move |needed: &[bool]| {
            let mut out = ExactSets::default();
            for (slot, set) in sets.into_iter().enumerate() {
                if needed[slot] {
                    out.insert(slot as u32, &set);
                }
            }
            Ok(out)
        }
    }

    #[test]
    fn exact_mode_decides_on_exact_jaccard_and_loads_only_candidates() {
        let (store, sets) = fixture();
        let mut calls = 0;
        let v = Verifier::new(VerifyMode::Exact, 0.8, 128)
            .verify(&[(0, 1)], &store, loader(&sets, &mut calls))
            .unwrap();
        assert_eq!(v.pairs, [(0, 1)]);
        assert_eq!(v.exact_checks, 1);
        assert_eq!(v.sets.len(), 2, "slot 2 is in no pair and is not loaded");
        let v = Verifier::new(VerifyMode::Exact, 0.85, 128)
            .verify(&[(0, 1), (0, 2)], &store, loader(&sets, &mut calls))
            .unwrap();
        assert!(v.pairs.is_empty());
    }

    #[test]
    fn borderline_mode_checks_only_pairs_near_the_threshold() {
        let (store, sets) = fixture();
        let mut calls = 0;
        let verifier = Verifier::new(VerifyMode::Borderline, 0.8, 128);
        assert!((verifier.margin() - 0.107).abs() < 0.005);
        let v = verifier
            .verify(&[(0, 1), (0, 2)], &store, loader(&sets, &mut calls))
            .unwrap();
        // 0-2 is far below: decided on the estimate. 0-1 sits at 0.83: checked exactly.
        assert_eq!(v.exact_checks, 1);
        assert_eq!(v.pairs, [(0, 1)]);
        assert!(v.sets.get(2).is_none());
        let far_only = verifier.verify(
            &[(0, 2)],
            &store,
            |_: &[bool]| -> Result<ExactSets, Error> { panic!("nothing to load") },
        );
        assert!(far_only.unwrap().pairs.is_empty());
    }

    #[test]
    fn signature_mode_never_loads() {
        let (store, _) = fixture();
        let v = Verifier::new(VerifyMode::Signature, 0.8, 128)
            .verify(
                &[(0, 1), (0, 2)],
                &store,
                |_: &[bool]| -> Result<ExactSets, Error> { panic!("signature mode loads nothing") },
            )
            .unwrap();
        assert_eq!(v.exact_checks, 0);
        assert!(!v.pairs.contains(&(0, 2)));
    }
}
