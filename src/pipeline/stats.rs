//! `neardup stats`: how redundant a corpus is, from one read.
//!
//! One pass reads every document, finds exact copies, signs the distinct texts, counts every line
//! (for boilerplate) and measures each document's own repetition (Gopher). Then LSH, tuned to the
//! lowest threshold asked for, gives candidate pairs once; each pair's similarity is estimated from
//! the signatures. At each threshold the decision core decides the pairs, joins them into sets,
//! assembles and ranks the clusters and counts what a deduplication at that threshold would
//! remove, as it does for `dedup`. No second read: `stats` cannot check a pair exactly, so the
//! core decides on the signature estimate (standard error about 0.035 at 128 permutations), which
//! `dedup` refines near the threshold.

use rayon::prelude::*;
use serde::Serialize;

use super::assemble;
use super::core::clusters::{self, Keep};
use super::core::counts::{Counts, Histogram, PairSamples};
use super::core::members::Relation;
use super::docs::DocState;
use super::sets::SetsBuilder;
use super::{Dedup, DocExtras};
use crate::boilerplate::BoilerplateOptions;
use crate::boilerplate::{Unit, UnitCounter};
use crate::error::{Error, RejectKind};
use crate::pipeline::{BTreeMap, Instant};
use crate::read::{InputReport, InputSet};
use crate::report::{CandidateSample, DocId, ReadTotals, Sink, tallied};
use crate::spill::{Column, FixedRecord};

/// What `stats` reports besides the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsOptions {
    /// Thresholds to report near-duplicate rates at (LSH is tuned to the lowest).
    pub thresholds: Vec<f64>,
    /// Clusters listed by size.
    pub top: usize,
    pub boilerplate: BoilerplateOptions,
}

impl Default for StatsOptions {
    fn default() -> Self {
        StatsOptions {
            thresholds: vec![0.5, 0.7, 0.8, 0.9],
            top: 10,
            boilerplate: BoilerplateOptions::default(),
        }
    }
}

/// Boilerplate and repetition counts gathered while reading.
#[derive(Debug)]
pub(super) struct CorpusProfile {
    counter: UnitCounter,
    docs: u64,
    duplicate_line_fraction: f64,
    duplicate_line_char_fraction: f64,
    /// Documents over Gopher's limits (0.30 of lines, 0.20 of characters in duplicate lines).
    over_line_limit: u64,
    over_char_limit: u64,
}

impl CorpusProfile {
    /// A profile whose unit counts keep at most `max_bytes` in memory, spilling to `space`.
    pub(super) fn new(space: std::sync::Arc<crate::spill::SpillSpace>, max_bytes: u64) -> Self {
        CorpusProfile {
            counter: UnitCounter::in_space(space, max_bytes),
            docs: 0,
            duplicate_line_fraction: 0.0,
            duplicate_line_char_fraction: 0.0,
            over_line_limit: 0,
            over_char_limit: 0,
        }
    }

    pub(super) fn add(&mut self, extras: &mut DocExtras) -> std::io::Result<()> {
        self.counter.add_document(&mut extras.units)?;
        let r = extras.repetition;
        self.docs += 1;
        self.duplicate_line_fraction += r.duplicate_line_fraction;
        self.duplicate_line_char_fraction += r.duplicate_line_char_fraction;
        self.over_line_limit += u64::from(r.duplicate_line_fraction > 0.30);
        self.over_char_limit += u64::from(r.duplicate_line_char_fraction > 0.20);
        Ok(())
    }
}

/// Near duplicates at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdStats {
    pub threshold: f64,
    /// Documents a dedup at this threshold removes (exact copies included).
    pub removed: u64,
    /// Of those, near (not exact) duplicates.
    pub near_duplicates: u64,
    /// `removed` over the documents not rejected, in percent.
    pub redundancy_percent: f64,
    /// Clusters of two or more, and the largest.
    pub clusters: u64,
    pub largest_cluster: u64,
}

/// Lines (or paragraphs) repeated across documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoilerplateStats {
    pub unit: Unit,
    pub min_docs: u32,
    /// Distinct units per document, summed over documents.
    pub units: u64,
    /// Of those, units that occur in at least `min_docs` documents.
    pub boilerplate_units: u64,
    pub boilerplate_percent: f64,
    /// Distinct units that are boilerplate.
    pub distinct_boilerplate_units: u64,
}

/// Repetition inside documents, as Gopher defines it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepetitionStats {
    /// Means over documents.
    pub mean_duplicate_line_fraction: f64,
    pub mean_duplicate_line_char_fraction: f64,
    /// Documents Gopher's filters would drop: over 30% duplicate lines, over 20% of characters
    /// in duplicate lines.
    pub docs_over_line_limit: u64,
    pub docs_over_char_limit: u64,
}

/// One of the largest clusters at the main threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopCluster {
    /// Positions of the kept document and of the listed members.
    #[serde(skip)]
    pub docs: Vec<DocId>,
    pub size: u64,
    /// The member `dedup` keeps (the first, under the default keep policy).
    pub kept: String,
    /// Up to five other members, in input order.
    pub members: Vec<String>,
}

/// Everything `stats` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorpusStats {
    pub docs_read: u64,
    pub rejected: u64,
    pub empty: u64,
    pub distinct_texts: u64,
    pub exact_duplicates: u64,
    pub exact_duplicate_percent: f64,
    pub near: Vec<ThresholdStats>,
    /// The threshold cluster sizes and top clusters are given at.
    pub main_threshold: f64,
    /// Cluster sizes at the main threshold: `(smallest size of the bucket, clusters)` for
    /// 2, 3-4, 5-8, 9-16, …
    pub cluster_sizes: Vec<(u64, u64)>,
    pub top_clusters: Vec<TopCluster>,
    pub boilerplate: BoilerplateStats,
    pub repetition: RepetitionStats,
    /// Candidate pairs by estimated Jaccard, in 20 bins of 0.05.
    pub candidate_similarity_histogram: Vec<u64>,
    /// A few candidate pairs of each tenth of similarity from 0.5 up, for the report's
    /// calibration view.
    #[serde(skip)]
    pub candidate_samples: Vec<CandidateSample>,
    pub candidate_pairs: u64,
    pub num_perm: usize,
    pub num_bands: usize,
    pub rows_per_band: usize,
    /// Documents whose id an earlier document already had.
    pub duplicate_ids: u64,
    /// Rejected records by reason.
    pub rejected_by_reason: std::collections::BTreeMap<crate::error::RejectKind, u64>,
    #[serde(flatten)]
    pub inputs: crate::read::InputReport,
    pub bytes_read: u64,
    pub seconds: f64,
}

impl ReadTotals for CorpusStats {
    fn docs_read(&self) -> u64 {
        self.docs_read
    }
    fn record(&mut self, inputs: &InputReport, by_reason: BTreeMap<RejectKind, u64>) {
        self.inputs = inputs.clone();
        self.rejected_by_reason = by_reason;
    }
}

impl CorpusStats {
    /// A table for people.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "documents          {:>12}  ({} rejected, {} empty)\n\
             distinct texts     {:>12}\n\
             exact duplicates   {:>12}  ({:.2}%)\n\n\
             near duplicates (signature estimate, {} bands × {} rows)\n\
             threshold   removed   near dup   redundancy   clusters   largest\n",
            self.docs_read,
            self.rejected,
            self.empty,
            self.distinct_texts,
            self.exact_duplicates,
            self.exact_duplicate_percent,
            self.num_bands,
            self.rows_per_band,
        );
        for t in &self.near {
            out.push_str(&format!(
                "{:>9.2} {:>9} {:>10} {:>11.2}% {:>10} {:>9}\n",
                t.threshold,
                t.removed,
                t.near_duplicates,
                t.redundancy_percent,
                t.clusters,
                t.largest_cluster
            ));
        }
        let b = &self.boilerplate;
        let r = &self.repetition;
        out.push_str(&format!(
            "\nboilerplate {}s   {:>12}  of {} ({:.2}%; {} distinct, in ≥ {} documents)\n\
             repetition         mean duplicate lines {:.2}%, characters in them {:.2}%\n\
             Gopher limits      {} documents over 30% duplicate lines, {} over 20% of characters\n",
            match b.unit {
                Unit::Line => "line",
                Unit::Paragraph => "paragraph",
            },
            b.boilerplate_units,
            b.units,
            b.boilerplate_percent,
            b.distinct_boilerplate_units,
            b.min_docs,
            100.0 * r.mean_duplicate_line_fraction,
            100.0 * r.mean_duplicate_line_char_fraction,
            r.docs_over_line_limit,
            r.docs_over_char_limit,
        ));
        out.push_str(&format!("\ncluster sizes at {}: ", self.main_threshold));
        let sizes: Vec<String> = self
            .cluster_sizes
            .iter()
            .map(|(from, n)| {
                if *from == 2 {
                    format!("2: {n}")
                } else {
                    format!("{}-{}: {n}", from, from * 2 - 2)
                }
            })
            .collect();
        out.push_str(&sizes.join(", "));
        out.push('\n');
        for c in &self.top_clusters {
            out.push_str(&format!(
                "  {:>6}  {}  + {}{}\n",
                c.size,
                c.kept,
                c.members.join(", "),
                if c.size as usize > c.members.len() + 1 {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        out.push_str(&format!("time               {:>11.2}s\n", self.seconds));
        out.push_str(&self.inputs.to_text());
        out.push_str(&crate::read::duplicate_ids_text(self.duplicate_ids));
        out
    }
}

/// Percent of `part` in `whole` (0 for an empty whole).
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

impl Dedup {
    /// Profiles `inputs` in one read. Bands × rows come from this deduplicator (build it with the
    /// lowest threshold of `options`); cluster sizes and top clusters are at its threshold.
    pub fn stats(
        &self,
        inputs: &mut InputSet,
        options: &StatsOptions,
        sink: &mut dyn Sink,
    ) -> Result<CorpusStats, Error> {
        tallied(inputs, sink, |inputs, sink| {
            self.profile_all(inputs, options, sink)
        })
    }

    fn profile_all(
        &self,
        inputs: &mut InputSet,
        options: &StatsOptions,
        sink: &mut dyn Sink,
    ) -> Result<CorpusStats, Error> {
        let started = Instant::now();
        let profiler = Dedup {
            profile: Some(options.boilerplate),
            ..self.clone()
        };
        let (mut analysis, tables) = profiler.analyse(inputs, false, None, sink)?;
        let profile = analysis
            .profile
            .take()
            .expect("a profiling run gathers a profile");
        let docs = &analysis.docs;
        let mut pairs = tables
            .into_candidate_pairs_without(|slot| analysis.late.is_late(slot))
            .map_err(|e| self.temp_error(e))?;
        let space = &analysis.space;
        // Each pair with what its estimate is made of, read once, in a spillable column.
        let judge = self.judge();
        let mut estimated: Column<EstimatedPair> = Column::new(space.clone());
        let mut histogram = Histogram::default();
        let mut samples = PairSamples::default();
        let mut chunk = Vec::new();
        while pairs
            .next_chunk(self.pairs_per_chunk(), &mut chunk)
            .map_err(|e| self.temp_error(e))?
        {
            let of_chunk = chunk
                .par_iter()
                .map(|&(a, b)| {
                    Ok(EstimatedPair {
                        pair: (a, b),
                        jaccard: analysis.signatures.similarity(a as usize, b as usize)?,
                        // Distinct shingles, read under containment only.
                        sizes: match analysis.sizes {
                            Some(_) => analysis.pair_sizes(a, b)?,
                            None => (0, 0),
                        },
                    })
                })
                .collect::<Result<Vec<EstimatedPair>, Error>>()?;
            for pair in &of_chunk {
                let estimate = judge.estimate(pair.jaccard, || pair.sizes).value;
                histogram.add(estimate);
                samples.offer(pair.pair.0, pair.pair.1, estimate);
                estimated.push(pair).map_err(|e| space.error(e))?;
            }
        }
        drop(pairs);

        let rejected = docs.count(|s| s == DocState::Rejected)?;
        let empty = docs.count(|s| s == DocState::Empty)?;
        let exact = docs.count(|s| matches!(s, DocState::Exact(_)))?;
        let counted = docs.len() as u64 - rejected;

        let mut thresholds = options.thresholds.clone();
        if !thresholds.contains(&self.threshold) {
            thresholds.push(self.threshold);
        }
        thresholds.sort_by(f64::total_cmp);
        let mut near = Vec::new();
        let (mut cluster_sizes, mut top_clusters) = (Vec::new(), Vec::new());
        for &threshold in &thresholds {
            // One read: no pair can be checked exactly, so the judge decides on the estimate.
            let judge = judge.at(threshold, self.num_perm());
            let mut sets = SetsBuilder::new(space, self.sets_budget());
            for pair in estimated.iter() {
                let pair = pair.map_err(|e| space.error(e))?;
                if judge.on_estimate(judge.estimate(pair.jaccard, || pair.sizes)) {
                    sets.join(pair.pair.0, pair.pair.1)
                        .map_err(|e| space.error(e))?;
                }
            }
            clusters::for_each_copied_text(docs, |slot| {
                sets.add(slot).map_err(|e| space.error(e))
            })?;
            let mut sets = sets.finish().map_err(|e| space.error(e))?;
            // What `dedup` would remove: every member but the one each cluster keeps.
            let mut ranked = assemble::rank_clusters(
                docs,
                &mut sets,
                &analysis.space,
                self.sort_budget(),
                &mut |_| Ok(None),
                |_, members| {
                    let scores = members.iter().map(|m| docs.score(m.doc)).collect::<Result<
                        Vec<f64>,
                        Error,
                    >>(
                    )?;
                    Ok(Keep::Member(clusters::keep_among(
                        &self.keep,
                        scores.into_iter(),
                    )))
                },
            )?;
            drop(sets);
            let report = threshold == self.threshold;
            let mut counts = Counts::default();
            let mut buckets: Vec<(u64, u64)> = Vec::new();
            let mut top = Vec::new();
            while let Some(cluster) = ranked.next_cluster()? {
                counts.cluster(cluster.size);
                // Every cluster keeps one of its members (`choose` above): stats matches no index.
                let (Some(kept_doc), Some(kept_slot)) = (cluster.kept_doc(), cluster.kept_slot())
                else {
                    continue;
                };
                for member in &cluster.members {
                    if member.doc != kept_doc {
                        let relation = Relation {
                            same_text_as_kept: member.slot == kept_slot,
                            copy_of_earlier: member.copy,
                        };
                        counts.removed(relation.kind(), false);
                    }
                }
                if !report {
                    continue;
                }
                let from = crate::html::size_bucket(cluster.size as u64);
                match buckets.iter_mut().find(|(f, _)| *f == from) {
                    Some(bucket) => bucket.1 += 1,
                    None => buckets.push((from, 1)),
                }
                if top.len() < options.top {
                    // The kept member first, then the others in input order.
                    let others = cluster
                        .members
                        .iter()
                        .map(|m| m.doc)
                        .filter(|&d| d != kept_doc);
                    top.push(TopCluster {
                        docs: std::iter::once(kept_doc)
                            .chain(others.clone())
                            .take(6)
                            .map(|d| DocId(d as u64))
                            .collect(),
                        size: cluster.size as u64,
                        kept: docs.id(kept_doc)?,
                        members: others
                            .take(5)
                            .map(|d| docs.id(d))
                            .collect::<Result<_, _>>()?,
                    });
                }
            }
            if options.thresholds.contains(&threshold) {
                near.push(ThresholdStats {
                    threshold,
                    removed: counts.removed_total(),
                    near_duplicates: counts.near,
                    redundancy_percent: percent(counts.removed_total(), counted),
                    clusters: counts.clusters,
                    largest_cluster: counts.largest_cluster,
                });
            }
            if report {
                buckets.sort_unstable();
                cluster_sizes = buckets;
                top_clusters = top;
            }
        }

        let counter = profile
            .counter
            .finish()
            .map_err(|e| analysis.space.error(e))?;
        let boilerplate_units = counter.occurrences_at_least(options.boilerplate.min_docs);
        let profiled = profile.docs.max(1) as f64;
        Ok(CorpusStats {
            docs_read: docs.len() as u64,
            rejected,
            empty,
            distinct_texts: analysis.distinct_texts() as u64,
            exact_duplicates: exact,
            exact_duplicate_percent: percent(exact, counted),
            near,
            main_threshold: self.threshold,
            cluster_sizes,
            top_clusters,
            boilerplate: BoilerplateStats {
                unit: options.boilerplate.unit,
                min_docs: options.boilerplate.min_docs,
                units: counter.units(),
                boilerplate_units,
                boilerplate_percent: percent(boilerplate_units, counter.units()),
                distinct_boilerplate_units: counter.repeated(options.boilerplate.min_docs) as u64,
            },
            repetition: RepetitionStats {
                mean_duplicate_line_fraction: profile.duplicate_line_fraction / profiled,
                mean_duplicate_line_char_fraction: profile.duplicate_line_char_fraction / profiled,
                docs_over_line_limit: profile.over_line_limit,
                docs_over_char_limit: profile.over_char_limit,
            },
            candidate_similarity_histogram: histogram.to_vec(),
            candidate_samples: samples.documents(&docs.first_copies(&samples.slots())?),
            candidate_pairs: estimated.len() as u64,
            num_perm: self.num_perm(),
            num_bands: self.params.num_bands,
            rows_per_band: self.params.rows_per_band,
            duplicate_ids: analysis.duplicate_ids,
            rejected_by_reason: Default::default(),
            inputs: Default::default(),
            bytes_read: analysis.bytes_read,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// A candidate pair and what its estimate is made of: the signatures' Jaccard and, under
/// containment, the two texts' distinct shingles.
#[derive(Debug, Clone, Copy, PartialEq)]
struct EstimatedPair {
    pair: (u32, u32),
    jaccard: f64,
    sizes: (u32, u32),
}

impl FixedRecord for EstimatedPair {
    const LEN: usize = 24;
    fn encode(&self, out: &mut [u8]) {
        self.pair.encode(&mut out[..8]);
        self.jaccard.encode(&mut out[8..16]);
        self.sizes.encode(&mut out[16..]);
    }
    fn decode(bytes: &[u8]) -> Self {
        EstimatedPair {
            pair: <(u32, u32)>::decode(&bytes[..8]),
            jaccard: f64::decode(&bytes[8..16]),
            sizes: <(u32, u32)>::decode(&bytes[16..]),
        }
    }
}
