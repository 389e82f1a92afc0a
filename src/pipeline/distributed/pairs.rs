//! Steps 1 to 3 of a run: exact copies, candidate pairs, verification.
//!
//! 1. [`exact_copies`]: each owned document's text hash goes to the worker its hash routes to;
//!    the earliest position of each text is its representative, and every owner learns the
//!    representative of each of its documents.
//! 2. [`Dedup::candidate_pairs`]: representatives' band keys go, one band at a time, to the
//!    worker their key routes to; buckets give candidate pairs by the decision core's anchor rule,
//!    as in one process, and pairs go by pair to drop repeats.
//! 3. [`Dedup::verify`]: each pair visits the owner of its first document (collecting its 8-bit
//!    signature) and then the owner of its second, which asks the core's judge for the call on
//!    the estimate; the pairs to check are decided on exact Jaccard ([`Dedup::exact_pairs`]).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use timely::worker::Worker;

use super::exchange::exchange;
use super::owned::{Own, Owned};
use super::share::{Owners, Share};
use crate::error::Error;
use crate::hash::mix64;
use crate::minhash::estimate_jaccard_bbit;
use crate::pipeline::Dedup;
use crate::pipeline::core::anchors::bucket_pairs;
use crate::pipeline::core::counts::Histogram;
use crate::pipeline::core::judge::Call;
use crate::shingle::jaccard;

/// Two documents by position, the first earlier than the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(super) struct Pair {
    pub first: u64,
    pub second: u64,
}

/// A text's hash (its two halves) and a position that holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct TextHash {
    high: u64,
    low: u64,
    position: u64,
}

/// A position and its representative: the earliest position with the same text.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Representative {
    position: u64,
    representative: u64,
}

/// A representative's key in one band.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct BandRecord {
    key: u64,
    position: u64,
}

/// A pair on its way to its second's owner, with its first's signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WithSignature {
    pair: Pair,
    signature: Vec<u8>,
}

/// A pair on its way to its second's owner, with its first's shingle set (empty when it could
/// not be read).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WithSet {
    pair: Pair,
    set: Vec<u32>,
}

/// What verification found at this worker (the second documents' owner).
#[derive(Debug)]
pub(super) struct Verified {
    /// The pairs at or above the threshold.
    pub edges: Vec<Pair>,
    /// The exact Jaccard of the pairs checked exactly (NaN where a set could not be read).
    pub exact: HashMap<Pair, f64>,
    /// Candidate pairs by estimated similarity.
    pub histogram: Histogram,
    /// Pairs checked exactly.
    pub exact_checks: u64,
}

/// Step 1: the representative of every owned document, by position (a document that is no
/// exact copy represents itself). Collective.
pub(super) fn exact_copies(
    worker: &mut Worker,
    owners: &Owners,
    owned: &Owned,
) -> Result<HashMap<u64, u64>, Error> {
    let hashes: Vec<TextHash> = owned
        .iter()
        .filter_map(|(pos, own)| match own {
            Own::Doc { hash, .. } => Some(TextHash {
                high: hash.0,
                low: hash.1,
                position: *pos,
            }),
            _ => None,
        })
        .collect();
    let mut by_hash = exchange(worker, hashes, |h| h.high)?;
    by_hash.sort_unstable();
    let mut reps: Vec<Representative> = Vec::new();
    for group in by_hash.chunk_by(|a, b| (a.high, a.low) == (b.high, b.low)) {
        let representative = group[0].position;
        reps.extend(group.iter().map(|h| Representative {
            position: h.position,
            representative,
        }));
    }
    Ok(
        exchange(worker, reps, owners.by(|r: &Representative| r.position))?
            .into_iter()
            .map(|r| (r.position, r.representative))
            .collect(),
    )
}

impl Dedup {
    /// Step 2: the candidate pairs routed to this worker, sorted and distinct. Buckets are formed
    /// as one process forms them, one band at a time, so that only one band's records are in
    /// flight; the band keys are dropped afterwards. Collective.
    pub(super) fn candidate_pairs(
        &self,
        worker: &mut Worker,
        owned: &mut Owned,
        reps: &HashMap<u64, u64>,
    ) -> Result<Vec<Pair>, Error> {
        let mut pairs: Vec<Pair> = Vec::new();
        for band in 0..self.params.num_bands {
            let records: Vec<BandRecord> = owned
                .iter()
                .filter(|(pos, _)| reps.get(pos) == Some(pos))
                .filter_map(|(pos, own)| match own {
                    Own::Doc { keys, .. } => Some(BandRecord {
                        key: keys[band],
                        position: *pos,
                    }),
                    _ => None,
                })
                .collect();
            let mut buckets = exchange(worker, records, |r| mix64(r.key))?;
            buckets.sort_unstable();
            for bucket in buckets.chunk_by(|a, b| a.key == b.key) {
                bucket_pairs(bucket.len(), |earlier, later| {
                    pairs.push(Pair {
                        first: bucket[earlier].position,
                        second: bucket[later].position,
                    });
                });
            }
        }
        owned.forget_band_keys();
        let mut pairs = exchange(worker, pairs, |p| mix64(p.first ^ mix64(p.second)))?;
        pairs.sort_unstable();
        pairs.dedup();
        Ok(pairs)
    }

    /// Step 3: collects each pair's first signature and decides the pair at its second's owner
    /// as one process does, by the core's judge: on the estimate where it is clear, on exact
    /// Jaccard where it says to check. Collective.
    pub(super) fn verify(
        &self,
        worker: &mut Worker,
        share: &mut Share,
        owned: &Owned,
        pairs: Vec<Pair>,
    ) -> Result<Verified, Error> {
        let at_first = exchange(worker, pairs, share.owners.by(|p: &Pair| p.first))?;
        let with_first: Vec<WithSignature> = at_first
            .into_iter()
            .map(|pair| WithSignature {
                pair,
                signature: owned.signature(pair.first).to_vec(),
            })
            .collect();
        let route = share.owners.by(|w: &WithSignature| w.pair.second);
        let at_second = exchange(worker, with_first, route)?;
        let judge = self.judge();
        let judged: Vec<(Pair, f64)> = at_second
            .par_iter()
            .map(|w| {
                let estimate = estimate_jaccard_bbit(&w.signature, owned.signature(w.pair.second));
                (w.pair, estimate)
            })
            .collect();
        drop(at_second);
        let mut histogram = Histogram::default();
        for (_, estimate) in &judged {
            histogram.add(*estimate);
        }
        let mut edges: Vec<Pair> = Vec::new();
        let mut to_check: Vec<Pair> = Vec::new();
        let mut estimate_of: HashMap<Pair, f64> = HashMap::new();
        for (pair, estimate) in judged {
            match judge.call(judge.of_jaccard(estimate)) {
                Call::Duplicate => edges.push(pair),
                Call::Distinct => {}
                Call::CheckExactly => {
                    to_check.push(pair);
                    estimate_of.insert(pair, estimate);
                }
            }
        }
        let checked = self.exact_pairs(worker, share, to_check)?;
        let exact_checks = checked.len() as u64;
        let mut exact: HashMap<Pair, f64> = HashMap::new();
        for (pair, j) in checked {
            let estimate = || judge.on_estimate(judge.of_jaccard(estimate_of[&pair]));
            if judge.checked(j).unwrap_or_else(estimate) {
                edges.push(pair);
            }
            exact.insert(pair, j);
        }
        Ok(Verified {
            edges,
            exact,
            histogram,
            exact_checks,
        })
    }

    /// Exact Jaccard of `pairs`, each listed at its second's owner; returns `(pair, jaccard)`
    /// there (NaN where a set could not be read). Both owners read their documents' sets once
    /// more; the first's set travels to the second's owner. Collective.
    pub(super) fn exact_pairs(
        &self,
        worker: &mut Worker,
        share: &mut Share,
        pairs: Vec<Pair>,
    ) -> Result<Vec<(Pair, f64)>, Error> {
        let at_first = exchange(worker, pairs.clone(), share.owners.by(|p: &Pair| p.first))?;
        let needed: HashSet<u64> = at_first
            .iter()
            .map(|p| p.first)
            .chain(pairs.iter().map(|p| p.second))
            .collect();
        let sets = if needed.is_empty() {
            HashMap::new()
        } else {
            self.owned_sets(share, &needed)?
        };
        let with_set: Vec<WithSet> = at_first
            .into_iter()
            .map(|pair| WithSet {
                pair,
                set: sets.get(&pair.first).cloned().unwrap_or_default(),
            })
            .collect();
        let at_second = exchange(
            worker,
            with_set,
            share.owners.by(|w: &WithSet| w.pair.second),
        )?;
        Ok(at_second
            .into_iter()
            .map(|w| {
                let j = match sets.get(&w.pair.second) {
                    Some(set_b) if !w.set.is_empty() => jaccard(&w.set, set_b),
                    _ => f64::NAN,
                };
                (w.pair, j)
            })
            .collect())
    }
}
