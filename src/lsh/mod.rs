//! Locality-sensitive hashing: group signatures that agree on a whole band into candidate pairs.
//!
//! A signature of `num_perm` values is cut into `num_bands` bands of `rows_per_band` values; each band
//! hashes to a [`BandKey`]. Two documents become candidates when any band key is equal, which happens
//! with probability `1 - (1 - s^rows)^bands` at Jaccard `s` (the S-curve).
//!
//! [`LshParams::from_threshold`] picks bands × rows minimizing the weighted false-positive and
//! false-negative areas under that curve, as in datasketch and Mining of Massive Datasets ch. 3.
//!
//! [`BandTables`] holds band records as flat vectors of 12-byte `(BandKey, slot)` records, one per
//! band: sorting a band lines up its buckets. This is the same record a sharded run exchanges by
//! key, and what a spilling run writes as sorted runs. Which members of a bucket pair is the
//! decision core's anchor rule (`pipeline::core::anchors`).

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::ConfigError;
use crate::pipeline::core::anchors;

mod runs;

/// How a signature is cut into bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LshParams {
    pub num_bands: usize,
    pub rows_per_band: usize,
}

/// Weight of the false-negative area when choosing parameters (false positives weigh `1 - this`).
/// datasketch weighs both 0.5. neardup verifies every candidate, so a false positive costs one
/// signature comparison while a false negative loses a duplicate for good: it weighs misses 99×.
/// At 0.8 with 128 permutations that gives 18 bands × 7 rows (P(candidate | J = 0.8) = 0.986),
/// which keeps pair F1 ≥ 0.998 on corpora of six edit models (`scripts/gen-edit-models`, issue 15)
/// for 1-3% more time; the 14 × 9 that 0.9 gave missed 1.5-4.5% of the pairs of copies edited
/// in spans or uniformly (F1 0.978-0.990).
pub const DEFAULT_FALSE_NEGATIVE_WEIGHT: f64 = 0.99;

impl LshParams {
    /// Explicit bands × rows, checked against `num_perm`.
    pub fn new(
        num_bands: usize,
        rows_per_band: usize,
        num_perm: usize,
    ) -> Result<Self, ConfigError> {
        if num_bands == 0 {
            return Err(ConfigError::Zero("num_bands"));
        }
        if rows_per_band == 0 {
            return Err(ConfigError::Zero("rows_per_band"));
        }
        let product = num_bands.saturating_mul(rows_per_band);
        if product > num_perm {
            return Err(ConfigError::BandsExceedPerm {
                num_bands,
                rows_per_band,
                product,
                num_perm,
            });
        }
        Ok(LshParams {
            num_bands,
            rows_per_band,
        })
    }

    /// The bands × rows for `threshold`, weighing misses by [`DEFAULT_FALSE_NEGATIVE_WEIGHT`].
    pub fn from_threshold(threshold: f64, num_perm: usize) -> Result<Self, ConfigError> {
        Self::from_threshold_weighted(threshold, num_perm, DEFAULT_FALSE_NEGATIVE_WEIGHT)
    }

    /// The bands × rows (with bands × rows ≤ `num_perm`) minimizing
    /// `(1 − w) · ∫₀ᵗ P(s) ds + w · ∫ₜ¹ (1 − P(s)) ds` where `w` is `false_negative_weight`.
    pub fn from_threshold_weighted(
        threshold: f64,
        num_perm: usize,
        false_negative_weight: f64,
    ) -> Result<Self, ConfigError> {
        if !(0.0..=1.0).contains(&false_negative_weight) {
            return Err(ConfigError::Weight(false_negative_weight));
        }
        if !(threshold > 0.0 && threshold <= 1.0) {
            return Err(ConfigError::Threshold(threshold));
        }
        if num_perm == 0 || num_perm > crate::minhash::MAX_NUM_PERM {
            return Err(ConfigError::NumPerm(num_perm));
        }
        let mut best = (f64::INFINITY, LshParams::new(1, 1, num_perm)?);
        for num_bands in 1..=num_perm {
            for rows_per_band in 1..=num_perm / num_bands {
                let params = LshParams {
                    num_bands,
                    rows_per_band,
                };
                let false_positive = integrate(|s| params.probability(s), 0.0, threshold);
                let false_negative = integrate(|s| 1.0 - params.probability(s), threshold, 1.0);
                let error = (1.0 - false_negative_weight) * false_positive
                    + false_negative_weight * false_negative;
                if error < best.0 {
                    best = (error, params);
                }
            }
        }
        Ok(best.1)
    }

    /// Signature positions used by the bands.
    pub fn used_perm(&self) -> usize {
        self.num_bands * self.rows_per_band
    }

    /// Probability that two documents of Jaccard `s` share at least one band.
    pub fn probability(&self, s: f64) -> f64 {
        1.0 - (1.0 - s.powi(self.rows_per_band as i32)).powi(self.num_bands as i32)
    }

    /// The Jaccard at which the S-curve is steepest, about `(1/bands)^(1/rows)`.
    pub fn knee(&self) -> f64 {
        (1.0 / self.num_bands as f64).powf(1.0 / self.rows_per_band as f64)
    }

    /// `(s, P(s))` at s = 0.50, 0.55, … 0.95.
    pub fn s_curve(&self) -> Vec<(f64, f64)> {
        (10..=19)
            .map(|i| {
                let s = i as f64 * 0.05;
                (s, self.probability(s))
            })
            .collect()
    }

    /// The band keys of one signature, in band order.
    pub fn band_keys(&self, signature: &[u32], out: &mut Vec<BandKey>) {
        out.clear();
        for band in 0..self.num_bands {
            let rows = &signature[band * self.rows_per_band..(band + 1) * self.rows_per_band];
            let mut bytes = [0u8; 4 * 64];
            let key = if rows.len() <= 64 {
                for (chunk, v) in bytes.chunks_exact_mut(4).zip(rows) {
                    chunk.copy_from_slice(&v.to_le_bytes());
                }
                xxh3_64_with_seed(&bytes[..rows.len() * 4], band as u64)
            } else {
                let all: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
                xxh3_64_with_seed(&all, band as u64)
            };
            out.push(BandKey(key));
        }
    }
}

/// Simpson's rule with 200 intervals: smooth integrands, plenty for choosing parameters.
fn integrate(f: impl Fn(f64) -> f64, from: f64, to: f64) -> f64 {
    const STEPS: usize = 200;
    let h = (to - from) / STEPS as f64;
    let mut sum = f(from) + f(to);
    for i in 1..STEPS {
        let weight = if i % 2 == 1 { 4.0 } else { 2.0 };
        sum += weight * f(from + i as f64 * h);
    }
    sum * h / 3.0
}

/// The hash of one band of one signature: the full 64 bits of its xxh3.
///
/// Two unrelated bands share a key by chance with probability 2^-64, so `n` distinct texts give
/// about `n² / 2 · 2^-64` spurious candidate pairs per band: at 10^9 texts, 5 · 10^17 pairs of
/// documents times 5.4 · 10^-20 is 0.03 per band, under one for the whole run. With the 32-bit
/// keys neardup used before (index format version 1), the same run met 5 · 10^17 · 2^-32, about
/// 1.2 · 10^8 spurious pairs per band, each costing a signature comparison and the memory of a
/// pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BandKey(pub u64);

/// A band record: a key and the slot that has it, ordered by key then slot, so sorting a band
/// lines up its buckets with their members in slot order. Three 32-bit words, 12 bytes without
/// padding (a `u128` would take 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BandRecord {
    key_high: u32,
    key_low: u32,
    slot: u32,
}

impl BandRecord {
    /// Bytes of one record in memory and in a spilled run.
    const BYTES: usize = 12;

    #[inline]
    fn new(key: BandKey, slot: u32) -> Self {
        BandRecord {
            key_high: (key.0 >> 32) as u32,
            key_low: key.0 as u32,
            slot,
        }
    }

    #[inline]
    fn key(self) -> BandKey {
        BandKey((u64::from(self.key_high) << 32) | u64::from(self.key_low))
    }

    #[inline]
    fn slot(self) -> u32 {
        self.slot
    }

    /// The record as one number ordered as the records are: key, then slot.
    #[inline]
    fn sort_value(self) -> u128 {
        (u128::from(self.key().0) << 32) | u128::from(self.slot)
    }

    /// The key (little-endian `u64`), then the slot (little-endian `u32`).
    fn to_le_bytes(self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        out[..8].copy_from_slice(&self.key().0.to_le_bytes());
        out[8..].copy_from_slice(&self.slot.to_le_bytes());
        out
    }

    fn from_le_bytes(bytes: &[u8; Self::BYTES]) -> Self {
        let key = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let slot = u32::from_le_bytes(bytes[8..].try_into().expect("4 bytes"));
        BandRecord::new(BandKey(key), slot)
    }
}

const _: () = assert!(std::mem::size_of::<BandRecord>() == BandRecord::BYTES);

impl Ord for BandRecord {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.sort_value().cmp(&other.sort_value())
    }
}

impl PartialOrd for BandRecord {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Sorts one band's records, into the order `sort_unstable` gives (key, then slot). Keys are
/// hashes, so the records are split into buckets by the top bits of their key, in place, twice
/// (256 buckets, then about 500 within each, small enough to stay in cache), and each final bucket
/// of about eight records is sorted alone: a few passes over memory instead of ~20 comparisons a
/// record, and no second band's worth of memory when the tables are at their largest. (One pass
/// into 2^17 buckets in place was slower than the comparison sort: every move missed the cache.)
/// Bands are sorted side by side, so this runs on one thread.
fn sort_band(records: &mut [BandRecord]) {
    const TOP_BITS: u32 = 8;
    const RECORDS_PER_BUCKET: usize = 8;
    if records.len() < 1 << 12 {
        records.sort_unstable();
        return;
    }
    let top = partition_by_key_bits(records, 32 - TOP_BITS, TOP_BITS);
    for outer in top.windows(2) {
        let part = &mut records[outer[0]..outer[1]];
        let bits = (part.len() / RECORDS_PER_BUCKET).max(1).ilog2().min(16);
        if bits == 0 {
            part.sort_unstable();
            continue;
        }
        let inner = partition_by_key_bits(part, 32 - TOP_BITS - bits, bits);
        for range in inner.windows(2) {
            part[range[0]..range[1]].sort_unstable();
        }
    }
}

/// Moves `records`, in place, into the `2^bits` buckets of `(key_high >> shift) % 2^bits`, in
/// bucket order (American flag sort); returns where each bucket starts, and the end.
fn partition_by_key_bits(records: &mut [BandRecord], shift: u32, bits: u32) -> Vec<usize> {
    let mask = (1usize << bits) - 1;
    let bucket = |record: &BandRecord| (record.key_high >> shift) as usize & mask;
    let mut starts = vec![0usize; (1 << bits) + 1];
    for record in records.iter() {
        starts[bucket(record) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    // next[b]: the first position of bucket b not yet holding one of its own records. Each swap
    // puts one record in its bucket for good.
    let mut next = starts.clone();
    for b in 0..starts.len() - 1 {
        while next[b] < starts[b + 1] {
            let home = bucket(&records[next[b]]);
            if home == b {
                next[b] += 1;
            } else {
                records.swap(next[b], next[home]);
                next[home] += 1;
            }
        }
    }
    starts
}

/// A candidate pair of signature slots, smaller slot first.
pub type CandidatePair = (u32, u32);

/// Band records of many signatures: per band, a vector of `(key, slot)` records. With a
/// byte budget ([`BandTables::with_budget`]), [`BandTables::spill_if_over_budget`] moves them to
/// sorted runs on disk whenever they outgrow it; reading them back merges the runs.
#[derive(Debug)]
pub struct BandTables {
    params: LshParams,
    bands: Vec<Vec<BandRecord>>,
    spill: Option<Spill>,
}

/// What reopens saved [`BandTables`]: each run's band starts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PersistedBands {
    pub runs: Vec<Vec<u64>>,
}

/// Where and when band records go to disk.
#[derive(Debug)]
struct Spill {
    /// The run's spill space: its directory is made on the first spill.
    space: std::sync::Arc<crate::spill::SpillSpace>,
    max_records: usize,
    runs: Vec<runs::Run>,
}

/// Appends the pairs of one bucket (records sorted, so members in slot order) that the decision
/// core's anchor rule gives.
fn bucket_pairs(bucket: &[BandRecord], pairs: &mut Vec<CandidatePair>) {
    anchors::bucket_pairs(bucket.len(), |earlier, later| {
        pairs.push((bucket[earlier].slot(), bucket[later].slot()));
    });
}

impl BandTables {
    pub fn new(params: LshParams) -> Self {
        BandTables {
            params,
            bands: vec![Vec::new(); params.num_bands],
            spill: None,
        }
    }

    /// Tables that keep at most `max_bytes` of records in memory (12 bytes a record), spilling
    /// sorted runs to files of `space` (its directory is made on the first spill).
    pub fn with_budget(
        params: LshParams,
        max_bytes: u64,
        space: std::sync::Arc<crate::spill::SpillSpace>,
    ) -> Self {
        BandTables {
            params,
            bands: vec![Vec::new(); params.num_bands],
            spill: Some(Spill {
                space,
                max_records: (max_bytes / BandRecord::BYTES as u64).max(1) as usize,
                runs: Vec::new(),
            }),
        }
    }

    pub fn params(&self) -> LshParams {
        self.params
    }

    /// Sorted runs written so far.
    pub fn runs_spilled(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| s.runs.len())
    }

    /// Bytes of the sorted runs written so far.
    pub fn bytes_spilled(&self) -> u64 {
        self.spill
            .as_ref()
            .map_or(0, |s| s.runs.iter().map(runs::Run::bytes).sum())
    }

    /// Records the band keys (in band order) of the signature at `slot`.
    pub fn insert(&mut self, slot: u32, keys: &[BandKey]) {
        for (band, key) in self.bands.iter_mut().zip(keys) {
            band.push(BandRecord::new(*key, slot));
        }
    }

    /// Writes the records in memory to a sorted run when they exceed the budget.
    pub fn spill_if_over_budget(&mut self) -> std::io::Result<()> {
        let Some(spill) = &mut self.spill else {
            return Ok(());
        };
        let in_memory: usize = self.bands.iter().map(Vec::len).sum();
        if in_memory > spill.max_records {
            let name = format!("bands-{}", spill.runs.len());
            let run = runs::Run::spill(&mut self.bands, spill.space.named_file(Some(&name))?)?;
            spill.runs.push(run);
        }
        Ok(())
    }

    /// Saves the tables to their space's work directory: what is in memory becomes a run, and
    /// every run is synced. Tables without a spill space have nothing to save to.
    pub fn persist(&mut self) -> std::io::Result<PersistedBands> {
        let Some(spill) = &mut self.spill else {
            return Err(std::io::Error::other("band tables without a spill space"));
        };
        if self.bands.iter().any(|band| !band.is_empty()) {
            let name = format!("bands-{}", spill.runs.len());
            let run = runs::Run::spill(&mut self.bands, spill.space.named_file(Some(&name))?)?;
            spill.runs.push(run);
        }
        for run in &spill.runs {
            run.sync()?;
        }
        Ok(PersistedBands {
            runs: spill
                .runs
                .iter()
                .map(|r| r.band_starts().to_vec())
                .collect(),
        })
    }

    /// Tables as saved (see [`BandTables::persist`]), spilling further runs to `space`.
    pub fn reopen(
        params: LshParams,
        max_bytes: u64,
        space: std::sync::Arc<crate::spill::SpillSpace>,
        saved: &PersistedBands,
    ) -> std::io::Result<Self> {
        let mut tables = BandTables::with_budget(params, max_bytes, space.clone());
        let spill = tables.spill.as_mut().expect("with a budget");
        for (number, band_starts) in saved.runs.iter().enumerate() {
            if band_starts.len() != params.num_bands + 1 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a saved band run has another number of bands",
                ));
            }
            let file = space.reopen_file(&format!("bands-{number}"))?;
            spill
                .runs
                .push(runs::Run::reopen(file, band_starts.clone())?);
        }
        Ok(tables)
    }

    /// Calls `each` with the records of `band` in sorted order (sorting what is in memory).
    fn for_each_sorted(
        &self,
        band: usize,
        sorted_memory: &[BandRecord],
        each: impl FnMut(BandRecord),
    ) -> std::io::Result<()> {
        let runs = self.spill.as_ref().map_or(&[][..], |s| &s.runs[..]);
        runs::merge_band(runs, band, sorted_memory, each)
    }

    /// Calls `each(key, slot)` for every record of `band`, in no particular order.
    pub fn for_each_record(
        &self,
        band: usize,
        mut each: impl FnMut(BandKey, u32),
    ) -> std::io::Result<()> {
        if self.runs_spilled() > 0 {
            self.for_each_sorted(band, &[], |r| each(r.key(), r.slot()))?;
        }
        self.bands[band]
            .iter()
            .for_each(|r| each(r.key(), r.slot()));
        Ok(())
    }

    /// Sorts every band and returns the distinct candidate pairs, sorted. Consumes the tables:
    /// after this, only pairs are needed.
    pub fn into_candidate_pairs(self) -> std::io::Result<Vec<CandidatePair>> {
        self.into_candidate_pairs_without(|_| false)?.collect_all()
    }

    /// [`BandTables::into_candidate_pairs`] with the slots for which `left_out` is true taken out
    /// of every bucket before it is paired (slots that turned out to be copies of earlier texts).
    ///
    /// The pairs of every band go through one sorter, which under a budget keeps at most half
    /// the band tables' share in memory and spills sorted runs beyond it; the distinct pairs are
    /// read from it a chunk at a time ([`CandidatePairs`]).
    pub fn into_candidate_pairs_without(
        mut self,
        left_out: impl Fn(u32) -> bool + Sync,
    ) -> std::io::Result<CandidatePairs> {
        self.pairs_without(left_out, false)
    }

    /// [`BandTables::into_candidate_pairs_without`] that keeps the records, the left-out slots
    /// taken out, for [`BandTables::for_each_record`] (writing the kept documents' index segment).
    pub fn candidate_pairs_without(
        &mut self,
        left_out: impl Fn(u32) -> bool + Sync,
    ) -> std::io::Result<CandidatePairs> {
        self.pairs_without(left_out, true)
    }

    fn pairs_without(
        &mut self,
        left_out: impl Fn(u32) -> bool + Sync,
        keep_records: bool,
    ) -> std::io::Result<CandidatePairs> {
        use crate::spill::{Sorter, SpillSpace};
        let mut bands = std::mem::take(&mut self.bands);
        let spilled = self.runs_spilled() > 0;
        let (space, sort_bytes) = match &self.spill {
            Some(spill) => (
                spill.space.clone(),
                (spill.max_records * BandRecord::BYTES / 2) as u64,
            ),
            None => (std::sync::Arc::new(SpillSpace::unbounded()), u64::MAX),
        };
        let sorter = std::sync::Mutex::new(Sorter::<CandidatePair>::new(space, sort_bytes));
        // A band's pairs, sorted and distinct, handed to the sorter a batch at a time.
        let hand_over = |pairs: &mut Vec<CandidatePair>| -> std::io::Result<()> {
            pairs.sort_unstable();
            pairs.dedup();
            let mut sorter = sorter.lock().unwrap_or_else(|e| e.into_inner());
            for &pair in pairs.iter() {
                sorter.push(pair)?;
            }
            pairs.clear();
            Ok(())
        };
        const BATCH: usize = 1 << 16;
        let tables = &*self;
        bands
            .par_iter_mut()
            .enumerate()
            .try_for_each(|(number, kept)| -> std::io::Result<()> {
                // Dropped once paired unless kept: memory goes down band by band.
                let mut owned = match keep_records {
                    true => None,
                    false => Some(std::mem::take(kept)),
                };
                let band = owned.as_mut().unwrap_or(kept);
                band.retain(|record| !left_out(record.slot()));
                sort_band(band);
                let band = &*band;
                let mut pairs = Vec::new();
                if !spilled {
                    for bucket in band.chunk_by(|x, y| x.key() == y.key()) {
                        bucket_pairs(bucket, &mut pairs);
                        if pairs.len() >= BATCH {
                            hand_over(&mut pairs)?;
                        }
                    }
                    return hand_over(&mut pairs);
                }
                let mut bucket: Vec<BandRecord> = Vec::new();
                let mut failed = None;
                tables.for_each_sorted(number, band, |record| {
                    if left_out(record.slot()) || failed.is_some() {
                        return;
                    }
                    if bucket.last().is_some_and(|last| last.key() != record.key()) {
                        bucket_pairs(&bucket, &mut pairs);
                        bucket.clear();
                        if pairs.len() >= BATCH
                            && let Err(e) = hand_over(&mut pairs)
                        {
                            failed = Some(e);
                        }
                    }
                    bucket.push(record);
                })?;
                if let Some(e) = failed {
                    return Err(e);
                }
                bucket_pairs(&bucket, &mut pairs);
                hand_over(&mut pairs)
            })?;
        if keep_records {
            self.bands = bands;
        } else {
            self.bands = vec![Vec::new(); self.params.num_bands];
        }
        let sorter = sorter.into_inner().unwrap_or_else(|e| e.into_inner());
        Ok(CandidatePairs::new(sorter.into_sorted()?))
    }
}

/// A run's candidate pairs, sorted and distinct, read a chunk at a time.
pub struct CandidatePairs {
    sorted: crate::spill::Sorted<CandidatePair>,
    last: Option<CandidatePair>,
}

impl CandidatePairs {
    /// The distinct pairs of a sorted stream.
    pub fn new(sorted: crate::spill::Sorted<CandidatePair>) -> CandidatePairs {
        CandidatePairs { sorted, last: None }
    }

    /// The next pairs, at most `max` of them, in `chunk` (cleared first); false after the last.
    pub fn next_chunk(
        &mut self,
        max: usize,
        chunk: &mut Vec<CandidatePair>,
    ) -> std::io::Result<bool> {
        chunk.clear();
        while chunk.len() < max.max(1) {
            let Some(pair) = self.sorted.next() else {
                break;
            };
            let pair = pair?;
            if self.last != Some(pair) {
                chunk.push(pair);
                self.last = Some(pair);
            }
        }
        Ok(!chunk.is_empty())
    }

    /// Every remaining pair.
    pub fn collect_all(mut self) -> std::io::Result<Vec<CandidatePair>> {
        let (mut all, mut chunk) = (Vec::new(), Vec::new());
        while self.next_chunk(1 << 20, &mut chunk)? {
            all.extend_from_slice(&chunk);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use crate::ConfigError;
    use crate::lsh::{BandKey, BandRecord, BandTables, LshParams, sort_band};
    use crate::pipeline::core::anchors::ANCHORS;

    #[test]
    fn equal_weights_at_0_8_with_128_perm_give_datasketchs_9_by_13() {
        // The pair datasketch's optimizer picks for equal weights (see shared NOTES).
        let p = LshParams::from_threshold_weighted(0.8, 128, 0.5).unwrap();
        assert_eq!((p.num_bands, p.rows_per_band), (9, 13));
    }

    #[test]
    fn default_weights_favour_recall() {
        let equal = LshParams::from_threshold_weighted(0.8, 128, 0.5).unwrap();
        let default = LshParams::from_threshold(0.8, 128).unwrap();
        assert!(default.used_perm() <= 128);
        assert!(default.probability(0.8) > equal.probability(0.8));
        assert!(default.probability(0.8) > 0.8, "{default:?}");
        assert!(LshParams::from_threshold_weighted(0.8, 128, 1.5).is_err());
    }

    #[test]
    fn lower_thresholds_use_more_bands_of_fewer_rows() {
        let low = LshParams::from_threshold(0.5, 128).unwrap();
        let high = LshParams::from_threshold(0.9, 128).unwrap();
        assert!(low.rows_per_band < high.rows_per_band);
        assert!(low.knee() < high.knee());
    }

    #[test]
    fn s_curve_is_increasing_and_crosses_near_the_threshold() {
        let p = LshParams::from_threshold(0.8, 128).unwrap();
        let curve = p.s_curve();
        assert!(curve.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(p.probability(0.5) < 0.15);
        assert!(p.probability(0.95) > 0.99);
        // Misses weigh 99× a false candidate, so the knee sits below the threshold.
        assert!((0.6..0.8).contains(&p.knee()), "{}", p.knee());
    }

    /// Issue 15: the default choice proposes nearly every pair sitting at the threshold (a miss is
    /// lost for good; a false candidate costs an estimate), with 18 bands × 7 rows at 0.8.
    #[test]
    fn issue15_defaults_propose_98_percent_of_pairs_at_the_threshold() {
        let p = LshParams::from_threshold(0.8, 128).unwrap();
        assert_eq!((p.num_bands, p.rows_per_band), (18, 7));
        assert!(p.probability(0.8) > 0.98, "{}", p.probability(0.8));
        assert!(p.probability(0.7) < 0.8, "{}", p.probability(0.7));
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        assert_eq!(
            LshParams::from_threshold(1.5, 128).unwrap_err(),
            ConfigError::Threshold(1.5)
        );
        assert!(LshParams::from_threshold(f64::NAN, 128).is_err());
        assert!(matches!(
            LshParams::new(20, 10, 128),
            Err(ConfigError::BandsExceedPerm { product: 200, .. })
        ));
        assert_eq!(
            LshParams::new(0, 4, 128).unwrap_err(),
            ConfigError::Zero("num_bands")
        );
    }

    #[test]
    fn equal_bands_make_candidates_and_pairs_are_distinct() {
        let p = LshParams::new(2, 2, 4).unwrap();
        let mut tables = BandTables::new(p);
        let mut keys = Vec::new();
        let sigs: [[u32; 4]; 4] = [[1, 2, 3, 4], [1, 2, 9, 9], [1, 2, 3, 4], [7, 7, 7, 7]];
        for (slot, sig) in sigs.iter().enumerate() {
            p.band_keys(sig, &mut keys);
            tables.insert(slot as u32, &keys);
        }
        // 0 and 2 share both bands (one pair, not two); 0-1 and 1-2 share band 0.
        assert_eq!(
            tables.into_candidate_pairs().unwrap(),
            vec![(0, 1), (0, 2), (1, 2)]
        );
    }

    /// Two one-value signatures whose band hashes agree in their top 32 bits and differ below
    /// (found by a birthday search: about 77,000 values give one such pair).
    fn top_half_collision() -> ([u32; 1], [u32; 1]) {
        let p = LshParams::new(1, 1, 1).unwrap();
        let mut seen = std::collections::HashMap::new();
        let mut keys = Vec::new();
        for value in 0u32.. {
            p.band_keys(&[value], &mut keys);
            if let Some(&other) = seen.get(&(keys[0].0 >> 32)) {
                return ([other], [value]);
            }
            seen.insert(keys[0].0 >> 32, value);
        }
        unreachable!("a collision of 32 bits within 2^32 values")
    }

    #[test]
    fn issue11_band_keys_are_64_bit() {
        let p = LshParams::new(1, 1, 1).unwrap();
        let (a, b) = top_half_collision();
        let (mut key_a, mut key_b) = (Vec::new(), Vec::new());
        p.band_keys(&a, &mut key_a);
        p.band_keys(&b, &mut key_b);
        // A 32-bit key (the top half, as before) would have made them one bucket.
        assert_eq!(key_a[0].0 >> 32, key_b[0].0 >> 32);
        assert_ne!(key_a, key_b, "{a:?} and {b:?}");
        let dir = tempfile::tempdir().unwrap();
        let spilling = BandTables::with_budget(
            p,
            1,
            std::sync::Arc::new(crate::spill::SpillSpace::new(dir.path(), u64::MAX)),
        );
        for mut tables in [BandTables::new(p), spilling] {
            // Slots 0 and 2 are equal signatures; 1 differs from both below the top 32 bits.
            for (slot, keys) in [&key_a, &key_b, &key_a].into_iter().enumerate() {
                tables.insert(slot as u32, keys);
                tables.spill_if_over_budget().unwrap();
            }
            let mut by_slot = vec![BandKey(0); 3];
            tables
                .for_each_record(0, |key, slot| by_slot[slot as usize] = key)
                .unwrap();
            assert_eq!(by_slot, vec![key_a[0], key_b[0], key_a[0]]);
            assert_eq!(tables.into_candidate_pairs().unwrap(), vec![(0, 2)]);
        }
    }

    #[test]
    fn the_budget_counts_twelve_bytes_a_record() {
        let p = LshParams::new(1, 1, 1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut tables = BandTables::with_budget(
            p,
            120,
            std::sync::Arc::new(crate::spill::SpillSpace::new(dir.path(), u64::MAX)),
        );
        for slot in 0..10 {
            tables.insert(slot, &[BandKey(u64::MAX - u64::from(slot % 2))]);
            tables.spill_if_over_budget().unwrap();
        }
        assert_eq!(tables.runs_spilled(), 0, "10 records fit in 120 bytes");
        tables.insert(10, &[BandKey(u64::MAX)]);
        tables.spill_if_over_budget().unwrap();
        assert_eq!(tables.runs_spilled(), 1, "11 records do not");
        let pairs = tables.into_candidate_pairs().unwrap();
        let evens = [0, 2, 4, 6, 8, 10];
        let odds = [1, 3, 5, 7, 9];
        let mut expected = Vec::new();
        for family in [&evens[..], &odds[..]] {
            for (i, &later) in family.iter().enumerate() {
                expected.extend(family[..i].iter().map(|&earlier| (earlier, later)));
            }
        }
        expected.sort_unstable();
        assert_eq!(pairs, expected);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Issue 15: the bucketed sort of a band gives the order of a plain sort, for bands
        /// large enough to take the bucketed path, with skewed keys and repeated records too.
        #[test]
        fn bucketed_band_sort_equals_a_plain_sort(
            records in proptest::collection::vec((0u32..4, proptest::prelude::any::<u32>(), 0u32..64), 4_096..9_000),
            spread in proptest::prelude::any::<bool>(),
        ) {
            let mut band: Vec<BandRecord> = records
                .iter()
                .map(|&(high, low, slot)| BandRecord {
                    // Either nearly all keys in a few top buckets, or keys spread over them all.
                    key_high: if spread { low.rotate_left(high * 8) } else { high },
                    key_low: low % 97,
                    slot,
                })
                .collect();
            let mut expected = band.clone();
            expected.sort_unstable();
            sort_band(&mut band);
            proptest::prop_assert_eq!(band, expected);
        }

        /// Issue 11: the candidate pairs of band tables that spill runs and sort their pairs on
        /// disk are those of tables that keep everything in memory, with slots left out too.
        #[test]
        fn spilled_tables_give_the_pairs_of_in_memory_ones(
            keys in proptest::collection::vec(proptest::collection::vec(0u64..40, 3), 0..3_000),
            left_out_mod in 2u32..9,
        ) {
            let p = LshParams::new(3, 1, 3).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let space = std::sync::Arc::new(crate::spill::SpillSpace::new(dir.path(), 0));
            let mut free = BandTables::new(p);
            let mut tight = BandTables::with_budget(p, 1_200, space);
            for (slot, row) in keys.iter().enumerate() {
                let row: Vec<BandKey> = row.iter().map(|&k| BandKey(k)).collect();
                free.insert(slot as u32, &row);
                tight.insert(slot as u32, &row);
                tight.spill_if_over_budget().unwrap();
            }
            // 1,200 bytes hold 100 records: 33 slots of 3 bands.
            proptest::prop_assert!(keys.len() <= 33 || tight.runs_spilled() > 0);
            let left_out = |slot: u32| slot % left_out_mod == 1;
            let want = free.into_candidate_pairs_without(left_out).unwrap().collect_all().unwrap();
            let got = tight.into_candidate_pairs_without(left_out).unwrap().collect_all().unwrap();
            proptest::prop_assert!(want.windows(2).all(|w| w[0] < w[1]));
            proptest::prop_assert!(want.iter().all(|&(a, b)| !left_out(a) && !left_out(b)));
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn large_buckets_pair_with_anchors_only() {
        let p = LshParams::new(1, 1, 1).unwrap();
        let mut tables = BandTables::new(p);
        let members = ANCHORS as u32 + 10;
        for slot in 0..members {
            tables.insert(slot, &[BandKey(5)]);
        }
        let pairs = tables.into_candidate_pairs().unwrap();
        let full = (ANCHORS * (ANCHORS + 1)) / 2;
        assert_eq!(pairs.len(), full + 9 * ANCHORS);
        assert!(pairs.iter().all(|&(a, b)| a < b && (a as usize) < ANCHORS));
    }
}
