//! Verification: what checking a candidate pair means, and the exact check itself.
//!
//! The rules that call a pair (on its estimate, or checked exactly) are the decision core's
//! (`pipeline::core::judge`); this module holds what they are about. Three modes
//! ([`VerifyMode`]):
//! - `signature`: the b-bit signature estimate must reach the threshold. No extra work, but the
//!   estimate's noise (standard error about 0.035 at 128 permutations and Jaccard 0.8) flips pairs
//!   that sit near the threshold, both ways.
//! - `borderline` (default): the estimate decides pairs far from the threshold (more than three
//!   standard errors away, where it is wrong about once in a thousand pairs); the pairs in between
//!   are decided on exact shingle Jaccard. Their documents' shingle sets are computed by reading the
//!   inputs once more, so memory holds only those sets, never every document's.
//! - `exact`: every candidate pair is decided on exact Jaccard (all candidates' sets are loaded).
//!
//! [`Measure`] says what similar means; [`exact_similarities`] computes the exact measure of pairs
//! in bounded rounds of loaded [`ExactSets`].

use std::collections::HashMap;

use rayon::prelude::*;

use crate::cluster::SparseUnionFind;
use crate::error::{ConfigError, Error};
use crate::lsh::CandidatePair;
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

/// The set an exact check compares: the shingles' low 32 bits, sorted and deduplicated.
pub(crate) fn compact_set(shingles: &[u64]) -> Vec<u32> {
    let mut small: Vec<u32> = shingles.iter().map(|&h| h as u32).collect();
    small.sort_unstable();
    small.dedup();
    small
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
        self.insert_compact(slot, compact_set(set));
    }

    /// Inserts a set already made by `compact_set` (in parallel, by the loader).
    pub fn insert_compact(&mut self, slot: u32, set: Vec<u32>) {
        self.sets.insert(slot, set.into_boxed_slice());
    }

    pub fn get(&self, slot: u32) -> Option<&[u32]> {
        self.sets.get(&slot).map(|s| &s[..])
    }
}

/// Loads the shingle sets of the slots flagged `true`.
pub type LoadSets<'a> = dyn FnMut(&[u32]) -> Result<ExactSets, Error> + 'a;

/// Most shingle sets held at once by [`exact_similarities`] when records can be read back cheaply:
/// 16,384 sets of ~400 shingles are about 26 MB. (65,536 sets, about 100 MB, were a fifth of a 1M
/// run's peak memory and no faster.)
pub const MAX_SETS_PER_ROUND: usize = 1 << 14;

/// Exact Jaccard of each pair (NaN where a set could not be loaded), holding at most `max_sets`
/// sets at a time: the pairs are split into connected components, and components are gathered into
/// rounds of at most `max_sets` slots (a larger component is a round of its own); each round loads
/// its sets, computes its pairs, and drops them. With `usize::MAX`, one round.
pub fn exact_similarities(
    pairs: &[CandidatePair],
    max_sets: usize,
    measure: Measure,
    load: &mut LoadSets<'_>,
) -> Result<Vec<f64>, Error> {
    let mut out = vec![f64::NAN; pairs.len()];
    if pairs.is_empty() {
        return Ok(out);
    }
    // Components over the slots of the pairs only: memory follows the pairs, not the corpus.
    let mut components = SparseUnionFind::new(pairs.iter().flat_map(|&(a, b)| [a, b]).collect());
    for &(a, b) in pairs {
        components.union(a, b);
    }
    // Round of each component, assigned in order of first appearance.
    let mut round_of_root: HashMap<u32, usize> = HashMap::new();
    let (mut rounds, mut open_size) = (0usize, 0usize);
    let mut round_of_pair = Vec::with_capacity(pairs.len());
    for &(a, _) in pairs {
        let root = components
            .find(a)
            .expect("every slot of a pair is a member");
        let size = components.set_size(a);
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

#[cfg(test)]
pub(crate) mod tests {
    use crate::Error;
    use crate::verify::{CandidatePair, ExactSets, Measure, exact_similarities};

    /// A loader over in-memory sets that records which slots each call loaded (also used by the
    /// decision core's tests).
    pub(crate) fn loader<'a>(
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
            usize::MAX,
            Measure::Jaccard,
            &mut loader(&sets, &mut one_call),
        )
        .unwrap();
        let mut calls = Vec::new();
        let rounds =
            exact_similarities(&pairs, 7, Measure::Jaccard, &mut loader(&sets, &mut calls))
                .unwrap();
        assert_eq!(once, rounds);
        assert_eq!(one_call.len(), 1);
        // Components are never split; at most 7 sets (two components of 3) per round.
        assert_eq!(calls.len(), 5);
        assert!(calls.iter().all(|c| c.len() <= 7));
        assert!((once[0] - 20.0 / 21.0).abs() < 1e-12);
    }
}
