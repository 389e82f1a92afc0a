//! The call on a candidate pair: clearly a duplicate, clearly not, or check exactly.
//!
//! A pair's signature estimate of the measure has a standard error of about
//! `sqrt(t (1 − t) / num_perm)` at the threshold `t` (widened for the b-bit correction). The
//! [`Judge`] trusts it outside a margin of three standard errors (at least 0.02) around the
//! threshold, where it is wrong about once in a thousand pairs; inside the margin it asks for the
//! exact measure of the two shingle sets. The verification mode says how far to go:
//! `signature` decides every pair on the estimate, `borderline` checks the pairs inside the
//! margin, `exact` checks every pair.
//!
//! Who can check exactly: a batch run, which reads the two documents' texts again
//! ([`Judge::verify`]), and a distributed run, whose workers send each other the shingle sets.
//! Who cannot: a streaming run (the texts of kept documents are gone), a link to an indexed
//! document (the index holds no text) and `stats` (one read, no second). Those ask
//! [`Judge::on_estimate`], which decides a pair it would have checked on the estimate: under
//! `borderline` that is what `signature` decides. A streaming run refuses `exact` and
//! `borderline` ([`Judge::check_streaming`]): it would check none of the pairs it promised to; a
//! batch run against an index checks its own pairs exactly and decides the links to indexed
//! documents on the estimate.

use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{ConfigError, Error};
use crate::lsh::CandidatePair;
use crate::minhash::SignatureStore;
use crate::pipeline::Dedup;
use crate::spill::{FixedRecord, KeyedColumn, SpillSpace};
use crate::verify::{LoadSets, Measure, VerifyMode, exact_similarities};

/// What the estimate says about a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// Clearly at or above the threshold.
    Duplicate,
    /// Clearly below it.
    Distinct,
    /// Too close to call (or every pair is checked): decide on the exact measure.
    CheckExactly,
}

/// A pair's estimated measure, and the distance from the threshold within which it is not
/// trusted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Estimate {
    pub value: f64,
    margin: f64,
}

/// The rules that decide a candidate pair, for one threshold, measure and verification mode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Judge {
    mode: VerifyMode,
    measure: Measure,
    threshold: f64,
    margin: f64,
}

/// The outcome of verifying a batch run's candidate pairs.
#[derive(Debug)]
pub(crate) struct Verified {
    /// Pairs that are duplicates, in candidate order.
    pub pairs: Vec<CandidatePair>,
    /// The exact measure of every pair checked (NaN where a set could not be loaded), used again
    /// for reported similarities.
    pub exact: ExactValues,
}

/// Exact measures of pairs, sorted by pair: 16 bytes a pair, looked up by binary search.
#[derive(Debug, Default)]
pub(crate) struct ExactValues {
    pairs: Vec<CandidatePair>,
    values: Vec<f64>,
}

impl ExactValues {
    /// The measures `values` of `pairs` (sorted and distinct).
    pub fn new(pairs: Vec<CandidatePair>, values: Vec<f64>) -> ExactValues {
        debug_assert!(pairs.windows(2).all(|w| w[0] < w[1]));
        debug_assert_eq!(pairs.len(), values.len());
        ExactValues { pairs, values }
    }

    pub fn get(&self, pair: &CandidatePair) -> Option<f64> {
        let at = self.pairs.binary_search(pair).ok()?;
        Some(self.values[at])
    }
}

/// Exact measures of a whole run's pairs, sorted by pair, in a spillable column (16 bytes a
/// pair) found by pair ([`KeyedColumn`]).
#[derive(Debug)]
pub(crate) struct ExactTable {
    records: KeyedColumn<ExactRecord, CandidatePair>,
}

/// A pair and its exact measure, as an [`ExactTable`] stores it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ExactRecord {
    pair: CandidatePair,
    value: f64,
}

impl FixedRecord for ExactRecord {
    const LEN: usize = 16;
    fn encode(&self, out: &mut [u8]) {
        self.pair.encode(&mut out[..8]);
        self.value.encode(&mut out[8..]);
    }
    fn decode(bytes: &[u8]) -> Self {
        ExactRecord {
            pair: CandidatePair::decode(&bytes[..8]),
            value: f64::decode(&bytes[8..]),
        }
    }
}

impl ExactTable {
    pub fn new(space: &Arc<SpillSpace>) -> ExactTable {
        ExactTable {
            records: KeyedColumn::new(space.clone(), |record: &ExactRecord| record.pair),
        }
    }

    /// Pairs measured.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Adds `more`, whose pairs all sort after this table's (the next chunk of a sorted stream
    /// of pairs).
    pub fn append(&mut self, more: &ExactValues) -> std::io::Result<()> {
        for (&pair, &value) in more.pairs.iter().zip(&more.values) {
            self.records.push(&ExactRecord { pair, value })?;
        }
        Ok(())
    }

    /// The exact measure of `pair`, if it was measured.
    pub fn get(&self, pair: &CandidatePair) -> std::io::Result<Option<f64>> {
        Ok(self.records.get(pair)?.map(|record| record.value))
    }
}

impl Dedup {
    /// The judge of this run's pairs.
    pub(in crate::pipeline) fn judge(&self) -> Judge {
        Judge::new(self.verify, self.threshold, self.num_perm()).with_measure(self.measure)
    }
}

impl Judge {
    /// A judge of Jaccard at `threshold` for signatures of `num_perm` values.
    pub fn new(mode: VerifyMode, threshold: f64, num_perm: usize) -> Self {
        // Standard error of the b-bit estimate at the threshold, widened for the 1/256 correction.
        let sigma = (threshold * (1.0 - threshold) / num_perm as f64).sqrt() / (1.0 - 1.0 / 256.0);
        Judge {
            mode,
            measure: Measure::Jaccard,
            threshold,
            margin: (3.0 * sigma).max(0.02),
        }
    }

    /// Judges `measure` instead of Jaccard.
    pub fn with_measure(mut self, measure: Measure) -> Self {
        self.measure = measure;
        self
    }

    /// The same judge at another threshold (`stats` judges at several).
    pub fn at(self, threshold: f64, num_perm: usize) -> Self {
        Judge::new(self.mode, threshold, num_perm).with_measure(self.measure)
    }

    /// Whether the similarity a removed document reports to its kept one must be exact too (it
    /// may have joined its cluster through others and never been paired with it).
    pub fn reports_exact_similarity(&self) -> bool {
        self.mode == VerifyMode::Exact
    }

    /// Refuses what a streaming run cannot do: check a pair exactly, whether every pair
    /// (`exact`) or the borderline ones (`borderline`). It decides on the estimate alone.
    pub fn check_streaming(&self) -> Result<(), ConfigError> {
        match self.mode {
            VerifyMode::Exact | VerifyMode::Borderline => Err(ConfigError::StreamVerify),
            VerifyMode::Signature => Ok(()),
        }
    }

    /// The estimate of the measure for a pair whose signatures estimate Jaccard `jaccard`, with
    /// `sizes` distinct shingles (read under containment only).
    pub fn estimate(&self, jaccard: f64, sizes: impl FnOnce() -> (u32, u32)) -> Estimate {
        match self.measure {
            Measure::Jaccard => Estimate {
                value: jaccard,
                margin: self.margin,
            },
            Measure::Containment => {
                let (x, y) = sizes();
                let (fx, fy) = (f64::from(x), f64::from(y));
                // Delta method: dC/dJ = (|A| + |B|) / (min · (1 + J)²).
                let slope = (fx + fy) / (fx.min(fy).max(1.0) * (1.0 + jaccard).powi(2));
                Estimate {
                    value: self.measure.from_jaccard(jaccard, x, y),
                    margin: self.margin * slope,
                }
            }
        }
    }

    /// The estimate of a pair whose signatures estimate Jaccard `jaccard`, in a front-end that
    /// judges Jaccard only (streaming, links to indexed documents, distributed runs: each refuses
    /// containment).
    pub fn of_jaccard(&self, jaccard: f64) -> Estimate {
        Estimate {
            value: jaccard,
            margin: self.margin,
        }
    }

    /// The call on a pair with this estimate.
    pub fn call(&self, estimate: Estimate) -> Call {
        let clear = match self.mode {
            VerifyMode::Signature => true,
            VerifyMode::Borderline => (estimate.value - self.threshold).abs() > estimate.margin,
            VerifyMode::Exact => false,
        };
        match (clear, estimate.value >= self.threshold) {
            (false, _) => Call::CheckExactly,
            (true, true) => Call::Duplicate,
            (true, false) => Call::Distinct,
        }
    }

    /// The decision on a pair called [`Call::CheckExactly`] from its exact measure; `None` when
    /// that is NaN (a set that could not be read), which leaves the pair to
    /// [`Judge::on_estimate`].
    pub fn checked(&self, exact: f64) -> Option<bool> {
        (!exact.is_nan()).then_some(exact >= self.threshold)
    }

    /// The decision of a front-end that cannot check a pair exactly (or could not): what the
    /// estimate says, a pair it would have checked included.
    pub fn on_estimate(&self, estimate: Estimate) -> bool {
        match self.call(estimate) {
            Call::Duplicate => true,
            Call::Distinct => false,
            Call::CheckExactly => estimate.value >= self.threshold,
        }
    }

    /// The estimate of a batch run's pair from its signatures (and, under containment, its
    /// texts' `sizes`).
    fn estimate_pair(
        &self,
        (a, b): CandidatePair,
        signatures: &SignatureStore,
        sizes: &(dyn Fn(u32, u32) -> Result<(u32, u32), Error> + Sync),
    ) -> Result<Estimate, Error> {
        let j = signatures.similarity(a as usize, b as usize)?;
        // Read only where the measure needs them.
        let pair_sizes = match self.measure {
            Measure::Containment => sizes(a, b)?,
            Measure::Jaccard => (0, 0),
        };
        Ok(self.estimate(j, || pair_sizes))
    }

    /// The calls on a batch run's `pairs`. Under exact verification every pair is checked: no
    /// estimate is needed to say so.
    fn calls(
        &self,
        pairs: &[CandidatePair],
        signatures: &SignatureStore,
        sizes: &(dyn Fn(u32, u32) -> Result<(u32, u32), Error> + Sync),
    ) -> Result<Vec<Call>, Error> {
        pairs
            .par_iter()
            .map(|&pair| match self.mode {
                VerifyMode::Exact => Ok(Call::CheckExactly),
                _ => Ok(self.call(self.estimate_pair(pair, signatures, sizes)?)),
            })
            .collect()
    }

    /// The pairs among `pairs` that [`Judge::verify`] will check exactly.
    pub fn pairs_to_check(
        &self,
        pairs: &[CandidatePair],
        signatures: &SignatureStore,
        sizes: &(dyn Fn(u32, u32) -> Result<(u32, u32), Error> + Sync),
    ) -> Result<Vec<CandidatePair>, Error> {
        Ok(checked_among(pairs, &self.calls(pairs, signatures, sizes)?))
    }

    /// Verifies a batch run's candidate `pairs`: the calls on their estimates, then the exact
    /// measure of the pairs to check, through [`exact_similarities`] with `load` and at most
    /// `max_sets` sets held at once.
    pub fn verify(
        &self,
        pairs: &[CandidatePair],
        signatures: &SignatureStore,
        sizes: &(dyn Fn(u32, u32) -> Result<(u32, u32), Error> + Sync),
        max_sets: usize,
        load: &mut LoadSets<'_>,
    ) -> Result<Verified, Error> {
        let calls = self.calls(pairs, signatures, sizes)?;
        let to_check = checked_among(pairs, &calls);
        let values = exact_similarities(&to_check, max_sets, self.measure, load)?;
        let exact = ExactValues::new(to_check, values);
        let mut verified = Vec::new();
        for (&pair, call) in pairs.iter().zip(&calls) {
            let duplicate = match call {
                Call::Duplicate => true,
                Call::Distinct => false,
                Call::CheckExactly => match exact.get(&pair).and_then(|j| self.checked(j)) {
                    Some(duplicate) => duplicate,
                    // A set that could not be loaded (the input changed): the estimate decides.
                    None => self.on_estimate(self.estimate_pair(pair, signatures, sizes)?),
                },
            };
            if duplicate {
                verified.push(pair);
            }
        }
        Ok(Verified {
            pairs: verified,
            exact,
        })
    }
}

/// The pairs among `pairs` whose `calls` say to check exactly.
fn checked_among(pairs: &[CandidatePair], calls: &[Call]) -> Vec<CandidatePair> {
    pairs
        .iter()
        .zip(calls)
        .filter_map(|(&pair, &call)| (call == Call::CheckExactly).then_some(pair))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::error::{ConfigError, Error};
    use crate::minhash::{MinHasher, SignatureStore};
    use crate::pipeline::core::judge::{Call, ExactTable, ExactValues, Judge};
    use crate::verify::tests::loader;
    use crate::verify::{ExactSets, Measure, VerifyMode};

    proptest::proptest! {
        /// Exact measures appended a chunk at a time (to a table that spills at once) are
        /// looked up as a map of them would be.
        #[test]
        fn issue11_an_exact_table_looks_up_like_a_map(
            pairs in proptest::collection::btree_map((0u32..60, 0u32..60), 0.0f64..1.0, 0..400),
            chunk in 1usize..50,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let space = std::sync::Arc::new(crate::spill::SpillSpace::new(dir.path(), 0));
            let mut table = ExactTable::new(&space);
            let all: Vec<((u32, u32), f64)> = pairs.iter().map(|(&p, &v)| (p, v)).collect();
            for part in all.chunks(chunk) {
                let (p, v): (Vec<(u32, u32)>, Vec<f64>) = part.iter().copied().unzip();
                table.append(&ExactValues::new(p, v)).unwrap();
            }
            proptest::prop_assert_eq!(table.len(), pairs.len());
            for a in 0..60 {
                for b in 0..60 {
                    proptest::prop_assert_eq!(table.get(&(a, b)).unwrap(), pairs.get(&(a, b)).copied());
                }
            }
        }
    }

    /// Sizes of no pair: the tests judge Jaccard.
    fn no_sizes(_: u32, _: u32) -> Result<(u32, u32), Error> {
        Ok((0, 0))
    }

    /// Three sets: 0 and 1 at Jaccard 0.83, 0 and 2 at 0.30.
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

    fn no_load(_: &[u32]) -> Result<ExactSets, Error> {
        panic!("nothing to load")
    }

    #[test]
    fn exact_mode_decides_on_exact_jaccard_and_loads_only_candidates() {
        let (store, sets) = fixture();
        let mut calls = Vec::new();
        let v = Judge::new(VerifyMode::Exact, 0.8, 128)
            .verify(
                &[(0, 1)],
                &store,
                &no_sizes,
                usize::MAX,
                &mut loader(&sets, &mut calls),
            )
            .unwrap();
        assert_eq!(v.pairs, [(0, 1)]);
        assert_eq!(v.exact.pairs.len(), 1);
        assert_eq!(
            calls,
            [vec![0, 1]],
            "slot 2 is in no pair and is not loaded"
        );
        assert!((v.exact.get(&(0, 1)).unwrap() - 181.0 / 219.0).abs() < 1e-12);
        let v = Judge::new(VerifyMode::Exact, 0.85, 128)
            .verify(
                &[(0, 1), (0, 2)],
                &store,
                &no_sizes,
                usize::MAX,
                &mut loader(&sets, &mut Vec::new()),
            )
            .unwrap();
        assert!(v.pairs.is_empty());
    }

    #[test]
    fn borderline_mode_checks_only_pairs_near_the_threshold() {
        let (store, sets) = fixture();
        let judge = Judge::new(VerifyMode::Borderline, 0.8, 128);
        assert!((judge.margin - 0.107).abs() < 0.005);
        let mut calls = Vec::new();
        let v = judge
            .verify(
                &[(0, 1), (0, 2)],
                &store,
                &no_sizes,
                usize::MAX,
                &mut loader(&sets, &mut calls),
            )
            .unwrap();
        // 0-2 is far below: decided on the estimate. 0-1 sits at 0.83: checked exactly.
        assert_eq!(v.exact.pairs.len(), 1);
        assert_eq!(v.pairs, [(0, 1)]);
        assert_eq!(calls, [vec![0, 1]]);
        let far_only = judge.verify(&[(0, 2)], &store, &no_sizes, usize::MAX, &mut no_load);
        assert!(far_only.unwrap().pairs.is_empty());
    }

    #[test]
    fn signature_mode_never_loads() {
        let (store, _) = fixture();
        let v = Judge::new(VerifyMode::Signature, 0.8, 128)
            .verify(
                &[(0, 1), (0, 2)],
                &store,
                &no_sizes,
                usize::MAX,
                &mut no_load,
            )
            .unwrap();
        assert!(v.exact.pairs.is_empty());
        assert!(!v.pairs.contains(&(0, 2)));
    }

    /// The calls on estimates around the threshold, per mode, and what a front-end that cannot
    /// check exactly decides: the estimate against the threshold, inside the margin too.
    #[test]
    fn issue11_calls_and_what_a_front_end_without_texts_decides() {
        let borderline = Judge::new(VerifyMode::Borderline, 0.8, 128);
        let signature = Judge::new(VerifyMode::Signature, 0.8, 128);
        let exact = Judge::new(VerifyMode::Exact, 0.8, 128);
        let margin = borderline.margin;
        for (value, clear) in [
            (0.8 + margin + 0.01, Call::Duplicate),
            (0.8 - margin - 0.01, Call::Distinct),
            (0.81, Call::CheckExactly),
            (0.79, Call::CheckExactly),
        ] {
            let e = borderline.estimate(value, || unreachable!("Jaccard reads no sizes"));
            assert_eq!(borderline.call(e), clear, "{value}");
            assert_eq!(exact.call(e), Call::CheckExactly);
            assert_ne!(signature.call(e), Call::CheckExactly);
            for judge in [borderline, signature, exact] {
                assert_eq!(judge.on_estimate(e), value >= 0.8, "{value}");
            }
            assert_eq!(borderline.checked(0.8), Some(true));
            assert_eq!(borderline.checked(0.79), Some(false));
            assert_eq!(borderline.checked(f64::NAN), None);
        }
        assert_eq!(exact.check_streaming(), Err(ConfigError::StreamVerify));
        assert_eq!(borderline.check_streaming(), Err(ConfigError::StreamVerify));
        assert_eq!(signature.check_streaming(), Ok(()));
        assert!(exact.reports_exact_similarity() && !borderline.reports_exact_similarity());
    }

    /// Under containment the estimate is converted from Jaccard and the margin widened by the
    /// delta method.
    #[test]
    fn containment_estimates_widen_the_margin() {
        let judge = Judge::new(VerifyMode::Borderline, 0.8, 128).with_measure(Measure::Containment);
        let e = judge.estimate(0.5, || (100, 300));
        assert!((e.value - Measure::Containment.from_jaccard(0.5, 100, 300)).abs() < 1e-12);
        assert!(e.margin > judge.margin);
    }
}
