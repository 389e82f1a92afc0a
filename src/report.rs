//! Reporting: what leaves a run, through one [`Sink`].
//!
//! The pipeline calls the sink with every rejected record (while reading), every removed document
//! (in input order), every cluster (largest first) and, when the sink asks for them, every kept
//! record's original bytes (in input order). The CLI's sink writes files; tests collect into
//! vectors. The run ends with a [`Summary`] whose counts always add up:
//! `docs_read = kept + exact_duplicates + near_duplicates + rejected`.

use serde::Serialize;

use std::collections::BTreeMap;

use crate::error::{Error, Origin, RejectKind, Rejection, RejectionTally};
use crate::lsh::LshParams;
use crate::read::{InputReport, InputSet};

/// Position of a record in the input stream, counting every record (rejected ones too) from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DocId(pub u64);

/// Why a removed document counts as a duplicate of the kept one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateKind {
    /// Same normalized text as the kept document.
    Exact,
    /// In the kept document's cluster of verified near-duplicate pairs.
    Near,
}

/// Under the containment measure, which side of the pair a document is, relative to the cluster's
/// kept document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// This document is (mostly) contained in the kept one: it is the copy.
    Copy,
    /// This document (mostly) contains the kept one: it is the container.
    Container,
}

/// One removed document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Removal<'a> {
    #[serde(skip)]
    pub doc: DocId,
    pub id: &'a str,
    pub duplicate_of: &'a str,
    /// The index holding `duplicate_of`, when it was kept by an earlier run (`--against`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_in: Option<&'a str>,
    /// Similarity to the kept document: 1 for exact duplicates; otherwise the signature estimate,
    /// or exact shingle Jaccard under `--verify exact`. A member that joined its cluster through a
    /// chain of verified pairs may lie below the threshold to the kept document itself.
    pub similarity: f64,
    pub kind: DuplicateKind,
    /// Under `--measure containment`: whether this document is the copy or the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// One member of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberReport<'a> {
    #[serde(skip)]
    pub doc: DocId,
    pub id: &'a str,
    pub similarity: f64,
    /// Under `--measure containment`: this member's side relative to the kept document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Where in the member's original text the content it was compared on is, as `[start,
    /// end]` character offsets (Unicode scalar values): what stripping boilerplate kept, or the
    /// whole text. Only when the run reports spans ([`DedupBuilder::spans`](crate::DedupBuilder::spans)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spans: Option<Vec<crate::boilerplate::Span>>,
}

/// One cluster of two or more documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterReport<'a> {
    /// 0 for the largest cluster, counting up.
    pub cluster: usize,
    pub kept: &'a str,
    /// The kept document's position, when it is a document of this run.
    #[serde(skip)]
    pub kept_doc: Option<DocId>,
    /// The index holding `kept`, when the cluster keeps a document of an earlier run; `members`
    /// then lists only this run's documents and `size` counts the kept one too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_in: Option<&'a str>,
    pub size: usize,
    /// All members of this run (the kept one included, with similarity 1), in input order.
    pub members: Vec<MemberReport<'a>>,
}

/// A kept record: its position, origin and original bytes (without the line terminator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptRecord<'a> {
    pub doc: DocId,
    pub origin: &'a Origin,
    pub bytes: &'a [u8],
    /// The format of the input it came from.
    pub format: crate::read::Format,
    /// The record as stored, when that differs from `bytes` and the inputs keep it: the gzip
    /// member a WARC record was the whole of.
    pub stored: Option<&'a [u8]>,
}

/// A record written in full under `--annotate` (kept or not), with what was decided about it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnnotatedRecord<'a> {
    pub doc: DocId,
    pub origin: &'a Origin,
    pub bytes: &'a [u8],
    /// The format of the input it came from.
    pub format: crate::read::Format,
    /// The number of the cluster it is in (as `clusters` numbers them), if it is in one.
    pub cluster: Option<u64>,
    /// What it duplicates, when it was removed.
    pub duplicate: Option<Duplicate<'a>>,
}

/// What a removed record duplicates: the kept document's id (and the index holding it, when it
/// was kept by an earlier run), its similarity to it and the kind of copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Duplicate<'a> {
    pub of: &'a str,
    pub of_index: Option<&'a str>,
    pub similarity: f64,
    pub kind: DuplicateKind,
}

/// How far reading has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub docs: u64,
    /// Bytes read from the inputs as stored.
    pub bytes: u64,
    /// Total bytes of the inputs, when known (regular files).
    pub total_bytes: Option<u64>,
}

/// What a run reports of its reading: the summary types of every command.
pub(crate) trait ReadTotals {
    /// Documents read.
    fn docs_read(&self) -> u64;
    /// Takes in what reading found besides records, and the rejections by kind.
    fn record(&mut self, inputs: &InputReport, rejected_by_reason: BTreeMap<RejectKind, u64>);
}

impl ReadTotals for Summary {
    fn docs_read(&self) -> u64 {
        self.docs_read
    }
    fn record(&mut self, inputs: &InputReport, rejected_by_reason: BTreeMap<RejectKind, u64>) {
        self.inputs = inputs.clone();
        self.rejected_by_reason = rejected_by_reason;
    }
}

/// Runs `run` with a sink that tallies the rejections on their way to `sink`; then records in its
/// result what reading found, and fails when every record was rejected. Every public run
/// function goes through here, so all of them judge a run the same way.
pub(crate) fn tallied<T: ReadTotals>(
    inputs: &mut InputSet,
    sink: &mut dyn Sink,
    run: impl FnOnce(&mut InputSet, &mut dyn Sink) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut tallied = Tallied::new(sink);
    let mut totals = run(inputs, &mut tallied)?;
    totals.record(inputs.report(), tallied.tally.counts().collect());
    tallied.tally.check(totals.docs_read())?;
    Ok(totals)
}

/// A sink that counts the rejections passing through it on their way to another sink.
struct Tallied<'a> {
    pub inner: &'a mut dyn Sink,
    pub tally: RejectionTally,
}

impl<'a> Tallied<'a> {
    pub fn new(inner: &'a mut dyn Sink) -> Self {
        Tallied {
            inner,
            tally: RejectionTally::default(),
        }
    }
}

impl Sink for Tallied<'_> {
    fn rejected(&mut self, rejection: &Rejection) -> Result<(), Error> {
        self.tally.add(rejection);
        self.inner.rejected(rejection)
    }
    fn progress(&mut self, progress: &Progress) {
        self.inner.progress(progress)
    }
    fn removed(&mut self, removal: &Removal<'_>) -> Result<(), Error> {
        self.inner.removed(removal)
    }
    fn cluster(&mut self, cluster: &ClusterReport<'_>) -> Result<(), Error> {
        self.inner.cluster(cluster)
    }
    fn wants_kept_records(&self) -> bool {
        self.inner.wants_kept_records()
    }
    fn kept(&mut self, record: &KeptRecord<'_>) -> Result<(), Error> {
        self.inner.kept(record)
    }
    fn annotated(&mut self, record: &AnnotatedRecord<'_>) -> Result<(), Error> {
        self.inner.annotated(record)
    }
    fn flush(&mut self) -> Result<(), Error> {
        self.inner.flush()
    }
}

/// Where results go. Every method has a default that ignores its input.
pub trait Sink {
    /// A record was rejected (called while reading, in input order).
    fn rejected(&mut self, _rejection: &Rejection) -> Result<(), Error> {
        Ok(())
    }

    /// Reading progressed (called after each batch).
    fn progress(&mut self, _progress: &Progress) {}

    /// A document was removed (called in input order, after clustering).
    fn removed(&mut self, _removal: &Removal<'_>) -> Result<(), Error> {
        Ok(())
    }

    /// A cluster of two or more (called largest first, after clustering).
    fn cluster(&mut self, _cluster: &ClusterReport<'_>) -> Result<(), Error> {
        Ok(())
    }

    /// Whether the pipeline should read the inputs a second time to hand over kept records.
    fn wants_kept_records(&self) -> bool {
        false
    }

    /// A kept record (called in input order, during the second pass; at once in streaming mode).
    fn kept(&mut self, _record: &KeptRecord<'_>) -> Result<(), Error> {
        Ok(())
    }

    /// Under `--annotate` (`RunOptions::annotate`), instead of [`Sink::kept`]: every
    /// record that was not rejected, kept or removed, in input order, with what was decided.
    fn annotated(&mut self, _record: &AnnotatedRecord<'_>) -> Result<(), Error> {
        Ok(())
    }

    /// Everything decided so far has been handed over (streaming mode, after each batch): push
    /// buffered output on to its reader.
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// A candidate pair sampled for a report's calibration view: two documents of the run (the
/// first copies of their texts) and the similarity their signatures estimate. The samples of a
/// band are the same at any thread count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandidateSample {
    /// Its band: 0 for an estimate in 0.5-0.6, …, 4 for 0.9-1.0.
    pub band: usize,
    pub a: DocId,
    pub b: DocId,
    pub estimate: f64,
}

/// Where a batch run's time went, in seconds of wall time per stage. In the first pass, reading
/// runs beside everything (`read` counts only the waits for the next batch), and each batch is
/// prepared and signed in parallel while the previous one's exact copies and band records are
/// entered in input order: `exact` and `band` overlap `prepare` and `sign`, so the stages can add
/// up to more than the run. `prepare` and `sign` share their parallel stage's wall time by the CPU
/// time each took. Timings vary from run to run; nothing else depends on them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageSeconds {
    /// The counting pass of boilerplate stripping.
    pub count_boilerplate: f64,
    /// Waiting for records to be read and framed.
    pub read: f64,
    /// Parse, strip, normalize, hash and shingle each record (in parallel).
    pub prepare: f64,
    /// Exact copies and per-document facts, in input order (beside the next batch's `prepare`
    /// and `sign`).
    pub exact: f64,
    /// MinHash signatures and band keys of every record (in parallel, with `prepare`).
    pub sign: f64,
    /// Band records of the distinct texts into the band tables (beside the next batch's
    /// `prepare` and `sign`).
    pub band: f64,
    /// Candidate pairs from the band tables (and matches in `--against` indexes), their
    /// estimates and their verification, exact checks included.
    pub pairs: f64,
    /// Sets of texts, clusters, and the clusters and removals reported.
    pub clusters: f64,
    /// Kept records written (one more read of the inputs).
    pub write: f64,
}

impl StageSeconds {
    /// The stages by name, in the order they run.
    pub fn named(&self) -> [(&'static str, f64); 9] {
        [
            ("count boilerplate", self.count_boilerplate),
            ("read (waits)", self.read),
            ("parse, normalize, shingle", self.prepare),
            ("exact copies", self.exact),
            ("sign", self.sign),
            ("band", self.band),
            ("candidates, verify", self.pairs),
            ("union-find, clusters", self.clusters),
            ("write", self.write),
        ]
    }

    /// One line per stage that took any time, with its share of `total`.
    pub fn to_text(&self, total: f64) -> String {
        let mut text = String::from("time by stage\n");
        for (name, seconds) in self.named() {
            if seconds > 0.0 {
                text += &format!(
                    "  {name:<26} {seconds:>8.2}s  {:>5.1}%\n",
                    100.0 * seconds / total.max(1e-9)
                );
            }
        }
        text
    }
}

/// The counts of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub docs_read: u64,
    pub kept: u64,
    pub exact_duplicates: u64,
    pub near_duplicates: u64,
    pub rejected: u64,
    /// Kept documents with no shingles (empty after normalization); never matched.
    pub empty: u64,
    pub clusters: u64,
    /// Documents in the largest cluster.
    pub largest_cluster: u64,
    /// Candidate pairs from LSH, and those that passed verification.
    pub candidate_pairs: u64,
    /// Candidate pairs decided on exact Jaccard (borderline or exact verification).
    pub exact_checks: u64,
    pub verified_pairs: u64,
    /// Candidate pairs by estimated similarity, in 20 bins of 0.05 (for reports).
    pub candidate_similarity_histogram: Vec<u64>,
    /// A few candidate pairs of each tenth of similarity from 0.5 up, for the calibration view
    /// of a report (a batch run's; empty otherwise).
    #[serde(skip)]
    pub candidate_samples: Vec<CandidateSample>,
    /// Where the time went (a batch run's; zeros otherwise).
    pub stage_seconds: StageSeconds,
    /// Removed documents whose kept copy is in an index (`--against`).
    pub indexed_duplicates: u64,
    /// Sorted runs of band records written to disk under a memory budget.
    pub spilled_runs: u64,
    /// Bytes of temporary files the run wrote (spilled tables), all removed when it ends.
    pub temp_bytes: u64,
    /// Rounds of labelling the sets of texts on sorted runs, when they did not fit their share
    /// of the budget in memory (0: joined in memory).
    pub label_rounds: u64,
    /// Records whose first-pass work a resumed run took from its work directory's checkpoint.
    pub resumed_docs: u64,
    /// Documents whose signing a distributed run loaded from its checkpoints.
    pub checkpointed_docs: u64,
    /// Boilerplate lines (or paragraphs) stripped before shingling, and their bytes.
    pub boilerplate_units_removed: u64,
    pub boilerplate_bytes_removed: u64,
    /// Duplicates removed as a share of the documents that were not rejected, in percent.
    pub redundancy_percent: f64,
    /// Documents whose id an earlier document already had (ids should name one document).
    pub duplicate_ids: u64,
    /// Rejected records by reason.
    pub rejected_by_reason: BTreeMap<RejectKind, u64>,
    /// Byte-order marks skipped, and inputs that could not be read to their end (when the run
    /// kept going past them).
    #[serde(flatten)]
    pub inputs: InputReport,
    pub bytes_read: u64,
    pub seconds: f64,
    pub docs_per_second: f64,
    pub num_perm: usize,
    pub num_bands: usize,
    pub rows_per_band: usize,
    pub threshold: f64,
}

impl Summary {
    pub(crate) fn empty(params: LshParams, num_perm: usize, threshold: f64) -> Self {
        Summary {
            docs_read: 0,
            kept: 0,
            exact_duplicates: 0,
            near_duplicates: 0,
            rejected: 0,
            empty: 0,
            clusters: 0,
            largest_cluster: 0,
            candidate_pairs: 0,
            exact_checks: 0,
            verified_pairs: 0,
            candidate_similarity_histogram: vec![0; 20],
            candidate_samples: Vec::new(),
            stage_seconds: StageSeconds::default(),
            indexed_duplicates: 0,
            spilled_runs: 0,
            temp_bytes: 0,
            label_rounds: 0,
            resumed_docs: 0,
            checkpointed_docs: 0,
            boilerplate_units_removed: 0,
            boilerplate_bytes_removed: 0,
            redundancy_percent: 0.0,
            duplicate_ids: 0,
            rejected_by_reason: BTreeMap::new(),
            inputs: InputReport::default(),
            bytes_read: 0,
            seconds: 0.0,
            docs_per_second: 0.0,
            num_perm,
            num_bands: params.num_bands,
            rows_per_band: params.rows_per_band,
            threshold,
        }
    }

    /// True when every document read is accounted for exactly once.
    pub fn adds_up(&self) -> bool {
        self.docs_read == self.kept + self.exact_duplicates + self.near_duplicates + self.rejected
    }

    /// Completes the summary: checks that the counts, each made where its documents were
    /// decided or written, add up; then derives the redundancy and the rates since `started`.
    pub fn finish(&mut self, started: std::time::Instant) -> Result<(), Error> {
        if !self.adds_up() {
            return Err(Error::Accounting(format!(
                "{} documents read, but {} kept + {} exact + {} near duplicates + {} rejected",
                self.docs_read,
                self.kept,
                self.exact_duplicates,
                self.near_duplicates,
                self.rejected
            )));
        }
        self.redundancy_percent = self.redundancy();
        self.seconds = started.elapsed().as_secs_f64();
        self.docs_per_second = self.docs_read as f64 / self.seconds.max(1e-9);
        Ok(())
    }

    /// Duplicates as a share of the documents not rejected, in percent.
    pub fn redundancy(&self) -> f64 {
        let counted = self.docs_read - self.rejected;
        if counted == 0 {
            0.0
        } else {
            100.0 * (self.exact_duplicates + self.near_duplicates) as f64 / counted as f64
        }
    }

    pub fn to_text(&self) -> String {
        let stripped = if self.boilerplate_units_removed > 0 {
            format!(
                "boilerplate        {:>12}  lines stripped before comparing ({} bytes)\n",
                self.boilerplate_units_removed, self.boilerplate_bytes_removed
            )
        } else {
            String::new()
        };
        let indexed = if self.indexed_duplicates > 0 {
            format!("  of which in an index {:>6}\n", self.indexed_duplicates)
        } else {
            String::new()
        };
        format!(
            "documents read     {:>12}\n\
             kept               {:>12}  ({} empty)\n\
             exact duplicates   {:>12}\n\
             near duplicates    {:>12}\n\
             {}\
             rejected           {:>12}\n\
             clusters           {:>12}  (largest {})\n\
             redundancy         {:>11.2}%\n\
             {}\
             time               {:>11.2}s  ({:.0} docs/s)\n\
             {}{}",
            self.docs_read,
            self.kept,
            self.empty,
            self.exact_duplicates,
            self.near_duplicates,
            indexed,
            self.rejected,
            self.clusters,
            self.largest_cluster,
            self.redundancy_percent,
            stripped,
            self.seconds,
            self.docs_per_second,
            self.inputs.to_text(),
            crate::read::duplicate_ids_text(self.duplicate_ids),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::Error;
    use crate::report::{DocId, DuplicateKind, LshParams, Removal, Summary};

    #[test]
    fn removal_serializes_with_the_documented_keys() {
        let r = Removal {
            doc: DocId(3),
            id: "b",
            duplicate_of: "a",
            duplicate_in: None,
            similarity: 0.875,
            kind: DuplicateKind::Near,
            role: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"id":"b","duplicate_of":"a","similarity":0.875,"kind":"near"}"#
        );
    }

    #[test]
    fn issue10_finish_refuses_counts_that_do_not_add_up() {
        let mut s = Summary::empty(LshParams::new(9, 13, 128).unwrap(), 128, 0.8);
        s.docs_read = 10;
        s.kept = 7;
        s.exact_duplicates = 1;
        s.near_duplicates = 1;
        s.rejected = 1;
        assert!(s.finish(std::time::Instant::now()).is_ok());
        s.kept = 8;
        let error = s.finish(std::time::Instant::now()).unwrap_err();
        assert!(matches!(error, Error::Accounting(_)), "{error}");
        assert!(error.to_string().contains("10 documents read, but 8 kept"));
    }

    #[test]
    fn summary_text_names_every_count() {
        let mut s = Summary::empty(LshParams::new(9, 13, 128).unwrap(), 128, 0.8);
        s.docs_read = 10;
        s.kept = 7;
        s.exact_duplicates = 1;
        s.near_duplicates = 1;
        s.rejected = 1;
        assert!(s.adds_up());
        let text = s.to_text();
        for word in [
            "documents read",
            "kept",
            "exact",
            "near",
            "rejected",
            "clusters",
            "redundancy",
        ] {
            assert!(text.contains(word), "{word} missing from {text}");
        }
    }
}
