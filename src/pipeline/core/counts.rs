//! What a run counts of its decisions: the candidate-similarity histogram, the candidate pairs
//! sampled for the report's calibration view, and the summary counts.
//!
//! Every front-end adds its candidates' estimates to a [`Histogram`] (and, when it can show texts,
//! to [`PairSamples`]) and its removals and clusters to [`Counts`] as it decides them, and writes
//! them into its summary the same way.

use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use crate::report::{CandidateSample, DocId, DuplicateKind, Summary};

/// Bins of the histogram, each 0.05 wide.
const BINS: usize = 20;

/// Candidate pairs by estimated similarity, in 20 bins of 0.05 (1 falls in the last).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Histogram {
    bins: [u64; BINS],
}

impl Histogram {
    pub fn add(&mut self, similarity: f64) {
        self.bins[Self::bin_of(similarity)] += 1;
    }

    fn bin_of(similarity: f64) -> usize {
        ((similarity * BINS as f64) as usize).min(BINS - 1)
    }

    /// Both histograms' counts.
    pub fn merged(mut self, other: &Histogram) -> Histogram {
        for (bin, more) in self.bins.iter_mut().zip(&other.bins) {
            *bin += more;
        }
        self
    }

    pub fn to_vec(self) -> Vec<u64> {
        self.bins.to_vec()
    }
}

/// The calibration bands of the report: estimated similarity 0.5-0.6, …, 0.9-1.0.
pub(crate) const CALIBRATION_BANDS: usize = 5;

/// Candidate pairs sampled per calibration band.
const SAMPLES_PER_BAND: usize = 3;

/// A few candidate pairs of each calibration band, the same whatever the order pairs come in:
/// those whose pair of slots hashes lowest (a fixed, seedless hash), so any thread count or chunk
/// size samples the same pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PairSamples {
    bands: [Vec<SampledPair>; CALIBRATION_BANDS],
}

/// One sampled candidate pair of slots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SampledPair {
    key: u64,
    pub a: u32,
    pub b: u32,
    pub estimate: f64,
}

impl PairSamples {
    /// The band of `similarity`, if it is in one (≥ 0.5; 1 falls in the last): two bins of the
    /// [`Histogram`], so a band's samples are among the pairs its bins count.
    pub fn band_of(similarity: f64) -> Option<usize> {
        (Histogram::bin_of(similarity) / 2).checked_sub(BINS / 2 - CALIBRATION_BANDS)
    }

    /// Offers the candidate pair `(a, b)` with its estimated similarity.
    pub fn offer(&mut self, a: u32, b: u32, estimate: f64) {
        let Some(band) = Self::band_of(estimate) else {
            return;
        };
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&a.to_le_bytes());
        bytes[4..].copy_from_slice(&b.to_le_bytes());
        let sample = SampledPair {
            key: xxhash_rust::xxh3::xxh3_64(&bytes),
            a,
            b,
            estimate,
        };
        Self::keep_lowest(&mut self.bands[band], sample);
    }

    fn keep_lowest(kept: &mut Vec<SampledPair>, sample: SampledPair) {
        let at = kept.partition_point(|s| (s.key, s.a, s.b) < (sample.key, sample.a, sample.b));
        if at < SAMPLES_PER_BAND && kept.get(at) != Some(&sample) {
            kept.insert(at, sample);
            kept.truncate(SAMPLES_PER_BAND);
        }
    }

    /// Both samples' lowest pairs.
    pub fn merged(mut self, other: &PairSamples) -> PairSamples {
        for (kept, more) in self.bands.iter_mut().zip(&other.bands) {
            for &sample in more {
                Self::keep_lowest(kept, sample);
            }
        }
        self
    }

    /// The sampled pairs, band by band (lowest first), in sampling order within a band.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, SampledPair)> + '_ {
        self.bands
            .iter()
            .enumerate()
            .flat_map(|(band, pairs)| pairs.iter().map(move |&p| (band, p)))
    }

    /// The slots of the sampled pairs, sorted, each once.
    pub fn slots(&self) -> Vec<u32> {
        let mut slots: Vec<u32> = self.pairs().flat_map(|(_, p)| [p.a, p.b]).collect();
        slots.sort_unstable();
        slots.dedup();
        slots
    }

    /// The sampled pairs as pairs of documents, given the document holding each slot.
    pub fn documents(&self, doc_of: &HashMap<u32, DocId>) -> Vec<CandidateSample> {
        self.pairs()
            .filter_map(|(band, p)| {
                Some(CandidateSample {
                    band,
                    a: *doc_of.get(&p.a)?,
                    b: *doc_of.get(&p.b)?,
                    estimate: p.estimate,
                })
            })
            .collect()
    }
}

/// Removed documents by kind, those removed as duplicates of indexed documents, and clusters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counts {
    pub exact: u64,
    pub near: u64,
    /// Removed as duplicates of a document kept before (in an index).
    pub indexed: u64,
    /// Clusters of two or more documents (an indexed kept document included).
    pub clusters: u64,
    pub largest_cluster: u64,
}

impl Counts {
    /// One removed document.
    pub fn removed(&mut self, kind: DuplicateKind, of_indexed: bool) {
        match kind {
            DuplicateKind::Exact => self.exact += 1,
            DuplicateKind::Near => self.near += 1,
        }
        self.indexed += u64::from(of_indexed);
    }

    /// One cluster of `size` documents.
    pub fn cluster(&mut self, size: usize) {
        self.clusters += 1;
        self.largest_cluster = self.largest_cluster.max(size as u64);
    }

    /// Removed documents.
    pub fn removed_total(&self) -> u64 {
        self.exact + self.near
    }

    /// Both counts (the workers' removals of a distributed run); clusters are counted once, where
    /// they are assembled.
    pub fn add(&mut self, other: &Counts) {
        self.exact += other.exact;
        self.near += other.near;
        self.indexed += other.indexed;
        self.clusters += other.clusters;
        self.largest_cluster = self.largest_cluster.max(other.largest_cluster);
    }

    /// Writes the counts into `summary`.
    pub fn write_to(&self, summary: &mut Summary) {
        summary.exact_duplicates = self.exact;
        summary.near_duplicates = self.near;
        summary.indexed_duplicates = self.indexed;
        summary.clusters = self.clusters;
        summary.largest_cluster = self.largest_cluster;
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::core::counts::{Counts, Histogram, PairSamples};
    use crate::report::DuplicateKind;

    #[test]
    fn calibration_bands_are_a_tenth_wide_from_one_half() {
        let bands = [0.49, 0.5, 0.599, 0.6, 0.95, 1.0].map(PairSamples::band_of);
        assert_eq!(bands, [None, Some(0), Some(0), Some(1), Some(4), Some(4)]);
    }

    #[test]
    fn samples_are_the_same_whatever_order_and_grouping_pairs_come_in() {
        let pairs: Vec<(u32, u32, f64)> = (0..200u32)
            .map(|i| (i, i + 1 + i % 7, 0.4 + f64::from(i % 61) / 100.0))
            .collect();
        let mut forward = PairSamples::default();
        for &(a, b, s) in &pairs {
            forward.offer(a, b, s);
        }
        // Backwards, in two halves merged, and with every pair offered twice.
        let (mut left, mut right) = (PairSamples::default(), PairSamples::default());
        for (i, &(a, b, s)) in pairs.iter().enumerate().rev() {
            let half = if i % 2 == 0 { &mut left } else { &mut right };
            half.offer(a, b, s);
            half.offer(a, b, s);
        }
        let merged = left.merged(&right);
        assert_eq!(merged, forward);
        let sampled: Vec<_> = forward.pairs().collect();
        assert_eq!(sampled.len(), 15, "three pairs in each of five bands");
        for (band, pair) in sampled {
            assert_eq!(PairSamples::band_of(pair.estimate), Some(band));
        }
    }

    #[test]
    fn histogram_bins_are_a_twentieth_wide_and_one_falls_in_the_last() {
        let mut h = Histogram::default();
        for s in [0.0, 0.049, 0.05, 0.97, 1.0, -0.01] {
            h.add(s);
        }
        let bins = h.to_vec();
        assert_eq!(bins.len(), 20);
        assert_eq!((bins[0], bins[1], bins[19]), (3, 1, 2));
        assert_eq!(h.merged(&h).to_vec()[19], 4);
    }

    #[test]
    fn counts_add_up_removals_and_keep_the_largest_cluster() {
        let mut a = Counts::default();
        a.removed(DuplicateKind::Exact, false);
        a.removed(DuplicateKind::Near, true);
        a.cluster(3);
        let mut b = Counts::default();
        b.removed(DuplicateKind::Near, false);
        b.cluster(5);
        a.add(&b);
        assert_eq!(
            (a.exact, a.near, a.indexed, a.removed_total()),
            (1, 2, 1, 3)
        );
        assert_eq!((a.clusters, a.largest_cluster), (2, 5));
    }
}
