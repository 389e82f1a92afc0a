//! What a run counts of its decisions: the candidate-similarity histogram and the summary counts.
//!
//! Every front-end adds its candidates' estimates to a [`Histogram`] and its removals and
//! clusters to [`Counts`] as it decides them, and writes them into its summary the same way.

use serde::{Deserialize, Serialize};

use crate::report::{DuplicateKind, Summary};

/// Bins of the histogram, each 0.05 wide.
const BINS: usize = 20;

/// Candidate pairs by estimated similarity, in 20 bins of 0.05 (1 falls in the last).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Histogram {
    bins: [u64; BINS],
}

impl Histogram {
    pub fn add(&mut self, similarity: f64) {
        self.bins[((similarity * BINS as f64) as usize).min(BINS - 1)] += 1;
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
    use crate::pipeline::core::counts::{Counts, Histogram};
    use crate::report::DuplicateKind;

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
