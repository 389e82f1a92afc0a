//! The pipeline: configure with [`DedupBuilder`], run with [`Dedup::run`].
//!
//! One run is two passes over the inputs:
//! 1. **Analyse.** Frames are read in bounded batches. Each batch is parsed, normalized, exact-hashed
//!    and shingled in parallel; exact duplicates are then found in input order with a map of 128-bit
//!    hashes; only the first copy of each text is MinHash-signed (in parallel) and its band keys
//!    recorded. What stays in memory per document is its id, a few bytes of state, and for each
//!    distinct text its signature and band records, never its text.
//! 2. **Cluster.** Band tables give candidate pairs; each pair is verified (signature estimate or exact
//!    Jaccard) in parallel; union-find joins verified pairs; exact copies join their first copy's set.
//!    The keep policy picks one member per cluster; clusters and removals go to the sink.
//! 3. **Write.** If the sink wants kept records, the inputs are framed again (stdin from its spool)
//!    and each kept record's original bytes are handed over in input order.
//!
//! Every parallel step collects in input order, so output does not depend on the thread count.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_128;

use crate::cluster::{KeepPolicy, UnionFind};
use crate::error::Origin;
use crate::error::{ConfigError, Error, Rejection};
use crate::lsh::{BandKey, BandTables, LshParams};
use crate::minhash::{MinHasher, SignatureStore};
use crate::normalize::{NormalizeOptions, Normalizer};
use crate::read::{Fields, Frame, InputSet, Location, Parser, Record};
use crate::report::{
    ClusterReport, DocId, DuplicateKind, KeptRecord, MemberReport, Progress, Removal, Sink, Summary,
};
use crate::shingle::{ShingleKind, Shingler};
use crate::verify::{ExactSets, MAX_SETS_PER_ROUND, Verifier, VerifyMode, exact_jaccards};

/// Settings for a [`Dedup`]. Defaults: threshold 0.8, 128 permutations, word 5-grams, all
/// normalization steps, bands × rows derived from the threshold, borderline verification, keep first.
#[derive(Debug, Clone)]
pub struct DedupBuilder {
    threshold: f64,
    num_perm: usize,
    seed: u64,
    bands: Option<(usize, usize)>,
    shingle: ShingleKind,
    normalize: NormalizeOptions,
    verify: VerifyMode,
    keep: KeepPolicy,
    fields: Fields,
    strict: bool,
    batch_docs: usize,
    batch_bytes: usize,
}

impl Default for DedupBuilder {
    fn default() -> Self {
        DedupBuilder {
            threshold: 0.8,
            num_perm: 128,
            seed: 1,
            bands: None,
            shingle: ShingleKind::default(),
            normalize: NormalizeOptions::default(),
            verify: VerifyMode::default(),
            keep: KeepPolicy::default(),
            fields: Fields::default(),
            strict: false,
            batch_docs: 2048,
            batch_bytes: 8 << 20,
        }
    }
}

impl DedupBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Jaccard similarity at or above which two documents are duplicates.
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    pub fn num_perm(mut self, num_perm: usize) -> Self {
        self.num_perm = num_perm;
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets bands × rows instead of deriving them from the threshold.
    pub fn bands(mut self, num_bands: usize, rows_per_band: usize) -> Self {
        self.bands = Some((num_bands, rows_per_band));
        self
    }

    pub fn shingle(mut self, shingle: ShingleKind) -> Self {
        self.shingle = shingle;
        self
    }

    pub fn normalize(mut self, options: NormalizeOptions) -> Self {
        self.normalize = options;
        self
    }

    pub fn verify(mut self, verify: VerifyMode) -> Self {
        self.verify = verify;
        self
    }

    pub fn keep(mut self, keep: KeepPolicy) -> Self {
        self.keep = keep;
        self
    }

    /// JSON field names of the text and id (the keep field comes from the keep policy).
    pub fn fields(mut self, text_field: &str, id_field: &str) -> Self {
        self.fields.text = text_field.to_string();
        self.fields.id = id_field.to_string();
        self
    }

    /// Stop at the first rejected record with [`Error::Rejected`] instead of counting it.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Records per batch, and bytes of record text per batch, whichever is reached first.
    pub fn batch(mut self, docs: usize, bytes: usize) -> Self {
        self.batch_docs = docs;
        self.batch_bytes = bytes;
        self
    }

    /// Validates the settings once and returns the immutable worker.
    pub fn build(self) -> Result<Dedup, ConfigError> {
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(ConfigError::Threshold(self.threshold));
        }
        let hasher = MinHasher::new(self.num_perm, self.seed)?;
        let params = match self.bands {
            Some((num_bands, rows_per_band)) => {
                LshParams::new(num_bands, rows_per_band, self.num_perm)?
            }
            None => LshParams::from_threshold(self.threshold, self.num_perm)?,
        };
        if self.batch_docs == 0 {
            return Err(ConfigError::Zero("batch_docs"));
        }
        if self.batch_bytes == 0 {
            return Err(ConfigError::Zero("batch_bytes"));
        }
        let mut fields = self.fields;
        fields.keep = self.keep.field().map(str::to_string);
        Ok(Dedup {
            normalizer: Normalizer::new(self.normalize),
            shingler: Shingler::new(self.shingle, self.seed, self.normalize.strip_punctuation),
            hasher,
            params,
            threshold: self.threshold,
            verify: self.verify,
            keep: self.keep,
            fields,
            strict: self.strict,
            batch_docs: self.batch_docs,
            batch_bytes: self.batch_bytes,
        })
    }
}

/// A configured deduplicator. Immutable; one value can run many times.
#[derive(Debug, Clone)]
pub struct Dedup {
    normalizer: Normalizer,
    shingler: Shingler,
    hasher: MinHasher,
    params: LshParams,
    threshold: f64,
    verify: VerifyMode,
    keep: KeepPolicy,
    fields: Fields,
    strict: bool,
    batch_docs: usize,
    batch_bytes: usize,
}

/// What the first pass learned about one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DocState {
    Rejected,
    /// No shingles: kept, never matched.
    Empty,
    /// The first copy of its normalized text; its signature is in this slot.
    Unique(u32),
    /// Same normalized text as an earlier document, which holds the given slot.
    Exact(u32),
}

/// Per-document facts kept for the whole run: ids in one arena, states, and keep scores when the
/// keep policy uses them.
#[derive(Debug, Default)]
struct DocTable {
    id_bytes: String,
    id_ends: Vec<usize>,
    states: Vec<DocState>,
    keeps_scores: bool,
    scores: Vec<f64>,
}

impl DocTable {
    fn new(keep: &KeepPolicy) -> Self {
        DocTable {
            keeps_scores: *keep != KeepPolicy::First,
            ..DocTable::default()
        }
    }

    fn push(&mut self, id: &str, state: DocState, score: f64) {
        self.id_bytes.push_str(id);
        self.id_ends.push(self.id_bytes.len());
        self.states.push(state);
        if self.keeps_scores {
            self.scores.push(score);
        }
    }

    fn score(&self, doc: usize) -> f64 {
        self.scores.get(doc).copied().unwrap_or(0.0)
    }

    fn id(&self, doc: usize) -> &str {
        let start = if doc == 0 { 0 } else { self.id_ends[doc - 1] };
        &self.id_bytes[start..self.id_ends[doc]]
    }

    fn slot(&self, doc: usize) -> Option<u32> {
        match self.states[doc] {
            DocState::Unique(slot) | DocState::Exact(slot) => Some(slot),
            DocState::Rejected | DocState::Empty => None,
        }
    }
}

/// Stage A's result for one frame.
enum Prepared {
    Rejected(Rejection),
    Doc {
        id: String,
        score: f64,
        text_hash: u128,
        shingles: Vec<u64>,
        location: Option<Location>,
    },
}

/// Everything the first pass gathers.
struct Analysis {
    docs: DocTable,
    signatures: SignatureStore,
    /// Per slot, where its first copy can be read again (when its input is a plain file).
    locations: Vec<Option<Location>>,
    bytes_read: u64,
}

impl Dedup {
    pub fn params(&self) -> LshParams {
        self.params
    }

    pub fn num_perm(&self) -> usize {
        self.hasher.num_perm()
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Runs both passes over `inputs`, reporting to `sink`.
    pub fn run(&self, inputs: &mut InputSet, sink: &mut dyn Sink) -> Result<Summary, Error> {
        let started = Instant::now();
        let (analysis, tables) = self.analyse(inputs, sink)?;
        let mut summary = Summary::empty(self.params, self.num_perm(), self.threshold);
        summary.bytes_read = analysis.bytes_read;
        let removed = self.cluster(inputs, &analysis, tables, sink, &mut summary)?;
        if sink.wants_kept_records() {
            self.write_kept(inputs, &analysis.docs, &removed, sink)?;
        }
        let docs = &analysis.docs;
        summary.docs_read = docs.states.len() as u64;
        summary.rejected = docs
            .states
            .iter()
            .filter(|s| **s == DocState::Rejected)
            .count() as u64;
        summary.empty = docs
            .states
            .iter()
            .filter(|s| **s == DocState::Empty)
            .count() as u64;
        summary.kept = summary.docs_read
            - summary.rejected
            - summary.exact_duplicates
            - summary.near_duplicates;
        let counted = summary.docs_read - summary.rejected;
        summary.redundancy_percent = if counted == 0 {
            0.0
        } else {
            100.0 * (summary.exact_duplicates + summary.near_duplicates) as f64 / counted as f64
        };
        summary.seconds = started.elapsed().as_secs_f64();
        summary.docs_per_second = summary.docs_read as f64 / summary.seconds.max(1e-9);
        Ok(summary)
    }

    /// Pass 1: read, find exact copies, sign distinct texts, record band keys.
    fn analyse(
        &self,
        inputs: &mut InputSet,
        sink: &mut dyn Sink,
    ) -> Result<(Analysis, BandTables), Error> {
        let parser = Parser::new(inputs.format(), self.fields.clone());
        let total_bytes = inputs.total_bytes();
        let num_perm = self.num_perm();
        let mut analysis = Analysis {
            docs: DocTable::new(&self.keep),
            signatures: SignatureStore::new(num_perm),
            locations: Vec::new(),
            bytes_read: 0,
        };
        let mut tables = BandTables::new(self.params);
        let mut first_copy: HashMap<u128, u32> = HashMap::new();
        self.for_each_batch(inputs, |batch, bytes_read| {
            {
                let prepared: Vec<Prepared> =
                    batch.par_iter().map(|f| self.prepare(&parser, f)).collect();

                // Exact duplicates, in input order; collect the new distinct texts to sign.
                let mut to_sign: Vec<Vec<u64>> = Vec::new();
                for item in prepared {
                    match item {
                        Prepared::Rejected(rejection) => {
                            if self.strict {
                                return Err(Error::Rejected(rejection));
                            }
                            sink.rejected(&rejection)?;
                            analysis
                                .docs
                                .push("", DocState::Rejected, f64::NEG_INFINITY);
                        }
                        Prepared::Doc {
                            id,
                            score,
                            shingles,
                            ..
                        } if shingles.is_empty() => {
                            analysis.docs.push(&id, DocState::Empty, score);
                        }
                        Prepared::Doc {
                            id,
                            score,
                            text_hash,
                            shingles,
                            location,
                        } => {
                            let next_slot = analysis.signatures.len() + to_sign.len();
                            let next_slot =
                                u32::try_from(next_slot).map_err(|_| Error::TooManyDocuments)?;
                            let state = match first_copy.entry(text_hash) {
                                Entry::Occupied(e) => DocState::Exact(*e.get()),
                                Entry::Vacant(e) => {
                                    e.insert(next_slot);
                                    analysis.locations.push(location);
                                    to_sign.push(shingles);
                                    DocState::Unique(next_slot)
                                }
                            };
                            analysis.docs.push(&id, state, score);
                        }
                    }
                }

                // Sign the new distinct texts in parallel, into one flat buffer, then band them.
                let mut signatures = vec![0u32; to_sign.len() * num_perm];
                signatures
                    .par_chunks_mut(num_perm)
                    .zip(&to_sign)
                    .for_each(|(out, shingles)| self.hasher.sign_into(shingles, out));
                let keys: Vec<Vec<BandKey>> = signatures
                    .par_chunks(num_perm)
                    .map(|sig| {
                        let mut keys = Vec::with_capacity(self.params.num_bands);
                        self.params.band_keys(sig, &mut keys);
                        keys
                    })
                    .collect();
                for (sig, keys) in signatures.chunks(num_perm).zip(&keys) {
                    let slot = analysis.signatures.push(sig) as u32;
                    tables.insert(slot, keys);
                }
                analysis.bytes_read = bytes_read;
                sink.progress(&Progress {
                    docs: analysis.docs.states.len() as u64,
                    bytes: analysis.bytes_read,
                    total_bytes,
                });
            }
            Ok(())
        })?;
        Ok((analysis, tables))
    }

    /// Frames `inputs` in batches on a reader thread, which reads ahead while `each` processes the
    /// current batch; `each` also gets the bytes read so far. Stops at the first error of `each`.
    fn for_each_batch(
        &self,
        inputs: &mut InputSet,
        mut each: impl FnMut(Vec<Frame>, u64) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut frames = inputs.frames();
        let counter = frames.byte_counter();
        std::thread::scope(|scope| {
            let (sender, batches) = sync_channel::<Vec<Frame>>(2);
            scope.spawn(move || {
                loop {
                    let mut batch = Vec::with_capacity(self.batch_docs);
                    if !frames.next_batch(self.batch_docs, self.batch_bytes, &mut batch)
                        || sender.send(batch).is_err()
                    {
                        break;
                    }
                }
            });
            // Returning early drops `batches`, which stops the reader.
            for batch in batches {
                each(batch, counter.load(Ordering::Relaxed))?;
            }
            Ok(())
        })
    }

    /// Stage A for one frame: parse, normalize, hash the normalized text, shingle.
    fn prepare(&self, parser: &Parser, frame: &Frame) -> Prepared {
        let record = match frame {
            Frame::Rejected(rejection) => return Prepared::Rejected(rejection.clone()),
            Frame::Record(record) => record,
        };
        let doc = match parser.parse(record) {
            Ok(doc) => doc,
            Err(reason) => {
                return Prepared::Rejected(Rejection {
                    origin: record.origin.clone(),
                    reason,
                });
            }
        };
        let score = match self.keep {
            KeepPolicy::First => 0.0,
            KeepPolicy::Longest => doc.text.len() as f64,
            KeepPolicy::Max(_) => doc.keep_value,
        };
        let (normalized, shingles) = self.normalize_and_shingle(&doc.text);
        Prepared::Doc {
            id: doc.id.into_owned(),
            score,
            text_hash: xxh3_128(normalized.as_bytes()),
            shingles,
            location: record.location,
        }
    }

    /// The normalized text and its shingle hashes (in text order, repeats included).
    fn normalize_and_shingle(&self, text: &str) -> (String, Vec<u64>) {
        let (mut normalized, mut words, mut shingles) = (String::new(), Vec::new(), Vec::new());
        if self
            .normalizer
            .normalize_words_into(text, &mut normalized, &mut words)
        {
            self.shingler
                .shingles_from_words(&normalized, &words, &mut shingles);
        } else {
            self.shingler.shingles_into(&normalized, &mut shingles);
        }
        (normalized, shingles)
    }

    /// Computes the shingle sets of the distinct documents whose slot is flagged in `needed` (for
    /// exact verification): by reading just those records back by location when every one of them
    /// sits in a plain file, otherwise by reading the inputs again from the start.
    fn load_sets(
        &self,
        inputs: &mut InputSet,
        analysis: &Analysis,
        needed: &[bool],
    ) -> Result<ExactSets, Error> {
        let wanted: Vec<u32> = (0..needed.len() as u32)
            .filter(|&s| needed[s as usize])
            .collect();
        let located: Option<Vec<(u32, Location)>> = wanted
            .iter()
            .map(|&slot| {
                Some((
                    slot,
                    analysis.locations.get(slot as usize).copied().flatten()?,
                ))
            })
            .collect();
        match located {
            Some(located) => self.load_sets_by_location(inputs, &located),
            None => self.load_sets_by_rereading(inputs, &analysis.docs, needed),
        }
    }

    fn load_sets_by_location(
        &self,
        inputs: &InputSet,
        located: &[(u32, Location)],
    ) -> Result<ExactSets, Error> {
        let parser = Parser::new(inputs.format(), self.fields.clone());
        let reader = inputs.record_reader();
        let mut sets = ExactSets::default();
        for chunk in located.chunks(self.batch_docs) {
            let loaded: Vec<(u32, Vec<u64>)> = chunk
                .par_iter()
                .filter_map(|&(slot, location)| {
                    let record = Record {
                        origin: Origin {
                            file: String::new(),
                            line: 0,
                        },
                        bytes: reader.read(location).ok()?,
                        location: Some(location),
                    };
                    let doc = parser.parse(&record).ok()?;
                    Some((slot, self.normalize_and_shingle(&doc.text).1))
                })
                .collect();
            for (slot, set) in loaded {
                sets.insert(slot, &set);
            }
        }
        Ok(sets)
    }

    fn load_sets_by_rereading(
        &self,
        inputs: &mut InputSet,
        docs: &DocTable,
        needed: &[bool],
    ) -> Result<ExactSets, Error> {
        let parser = Parser::new(inputs.format(), self.fields.clone());
        let mut sets = ExactSets::default();
        let mut next_doc = 0usize;
        self.for_each_batch(inputs, |batch, _| {
            let first = next_doc;
            next_doc += batch.len();
            let loaded: Vec<(u32, Vec<u64>)> = batch
                .par_iter()
                .enumerate()
                .filter_map(|(i, frame)| {
                    let slot = match docs.states.get(first + i)? {
                        DocState::Unique(slot) if needed[*slot as usize] => *slot,
                        _ => return None,
                    };
                    let Frame::Record(record) = frame else {
                        return None;
                    };
                    let doc = parser.parse(record).ok()?;
                    Some((slot, self.normalize_and_shingle(&doc.text).1))
                })
                .collect();
            for (slot, set) in loaded {
                sets.insert(slot, &set);
            }
            Ok(())
        })?;
        Ok(sets)
    }

    /// Pass 2: candidates → verified pairs → clusters → removals. Returns, per document, whether it
    /// was removed.
    fn cluster(
        &self,
        inputs: &mut InputSet,
        analysis: &Analysis,
        tables: BandTables,
        sink: &mut dyn Sink,
        summary: &mut Summary,
    ) -> Result<Vec<bool>, Error> {
        let docs = &analysis.docs;
        let pairs = tables.into_candidate_pairs();
        let verifier = Verifier::new(self.verify, self.threshold, self.num_perm());
        // Sets are loaded in bounded rounds when records can be read back by location; a round
        // that must re-read whole inputs (compressed files, stdin) is done once.
        let max_sets = if analysis.locations.iter().all(Option::is_some) {
            MAX_SETS_PER_ROUND
        } else {
            usize::MAX
        };
        let verified = verifier.verify(&pairs, &analysis.signatures, max_sets, &mut |needed| {
            self.load_sets(inputs, analysis, needed)
        })?;
        summary.candidate_pairs = pairs.len() as u64;
        summary.exact_checks = verified.exact_checks;
        summary.verified_pairs = verified.pairs.len() as u64;
        drop(pairs);
        let mut exact = verified.exact;

        let mut sets = UnionFind::new(analysis.signatures.len());
        for &(a, b) in &verified.pairs {
            sets.union(a, b);
        }

        // Group documents by their set's root, in input order.
        let mut cluster_of_root: HashMap<u32, usize> = HashMap::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut root_count = vec![0u32; analysis.signatures.len()];
        for doc in 0..docs.states.len() {
            if let Some(slot) = docs.slot(doc) {
                root_count[sets.find(slot) as usize] += 1;
            }
        }
        for doc in 0..docs.states.len() {
            let Some(slot) = docs.slot(doc) else { continue };
            let root = sets.find(slot);
            if root_count[root as usize] < 2 {
                continue;
            }
            let index = *cluster_of_root.entry(root).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            members[index].push(doc);
        }
        drop(root_count);
        // Largest first; ties by first member (input order).
        members.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
        summary.clusters = members.len() as u64;
        summary.largest_cluster = members.first().map_or(0, |m| m.len() as u64);

        // The kept member of each cluster, and, under exact verification, the exact similarity of
        // every member to it (a member joined through a chain was never paired with it).
        let kept_of: Vec<usize> = members
            .iter()
            .map(|c| c[self.keep.choose(c.iter().map(|&d| docs.score(d)))])
            .collect();
        if self.verify == VerifyMode::Exact {
            let mut report_pairs: Vec<(u32, u32)> = Vec::new();
            for (cluster, &kept) in members.iter().zip(&kept_of) {
                let kept_slot = docs.slot(kept).expect("cluster members have slots");
                for &doc in cluster {
                    let slot = docs.slot(doc).expect("cluster members have slots");
                    let pair = (slot.min(kept_slot), slot.max(kept_slot));
                    if slot != kept_slot && !exact.contains_key(&pair) {
                        report_pairs.push(pair);
                    }
                }
            }
            report_pairs.sort_unstable();
            report_pairs.dedup();
            let values = exact_jaccards(
                &report_pairs,
                analysis.signatures.len(),
                max_sets,
                &mut |needed| self.load_sets(inputs, analysis, needed),
            )?;
            exact.extend(report_pairs.into_iter().zip(values));
        }
        let similarity = |a: u32, b: u32| match exact.get(&(a.min(b), a.max(b))) {
            Some(j) if !j.is_nan() => *j,
            _ => analysis.signatures.similarity(a as usize, b as usize),
        };

        let mut removals: Vec<(usize, usize, f64, DuplicateKind)> = Vec::new();
        for (number, (cluster, &kept)) in members.iter().zip(&kept_of).enumerate() {
            let kept_slot = docs.slot(kept).expect("cluster members have slots");
            let mut reports = Vec::with_capacity(cluster.len());
            for &doc in cluster {
                let slot = docs.slot(doc).expect("cluster members have slots");
                let (similarity, kind) = if slot == kept_slot {
                    (1.0, DuplicateKind::Exact)
                } else {
                    (similarity(slot, kept_slot), DuplicateKind::Near)
                };
                if doc != kept {
                    removals.push((doc, kept, similarity, kind));
                }
                reports.push(MemberReport {
                    doc: DocId(doc as u64),
                    id: docs.id(doc),
                    similarity,
                });
            }
            sink.cluster(&ClusterReport {
                cluster: number,
                kept: docs.id(kept),
                size: cluster.len(),
                members: reports,
            })?;
        }

        removals.sort_by_key(|r| r.0);
        let mut removed = vec![false; docs.states.len()];
        for &(doc, kept, similarity, kind) in &removals {
            removed[doc] = true;
            match kind {
                DuplicateKind::Exact => summary.exact_duplicates += 1,
                DuplicateKind::Near => summary.near_duplicates += 1,
            }
            sink.removed(&Removal {
                doc: DocId(doc as u64),
                id: docs.id(doc),
                duplicate_of: docs.id(kept),
                similarity,
                kind,
            })?;
        }
        Ok(removed)
    }

    /// Pass 3: frame the inputs again and hand every kept record to the sink, in input order.
    fn write_kept(
        &self,
        inputs: &mut InputSet,
        docs: &DocTable,
        removed: &[bool],
        sink: &mut dyn Sink,
    ) -> Result<(), Error> {
        let mut doc = 0usize;
        self.for_each_batch(inputs, |batch, _| {
            for frame in &batch {
                if doc >= docs.states.len() {
                    return Err(Error::InputChanged);
                }
                if let Frame::Record(record) = frame
                    && docs.states[doc] != DocState::Rejected
                    && !removed[doc]
                {
                    sink.kept(&KeptRecord {
                        doc: DocId(doc as u64),
                        origin: &record.origin,
                        bytes: &record.bytes,
                    })?;
                }
                doc += 1;
            }
            Ok(())
        })?;
        if doc != docs.states.len() {
            return Err(Error::InputChanged);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_validates_once() {
        assert_eq!(
            DedupBuilder::new().threshold(0.0).build().unwrap_err(),
            ConfigError::Threshold(0.0)
        );
        assert!(matches!(
            DedupBuilder::new().num_perm(64).bands(10, 10).build(),
            Err(ConfigError::BandsExceedPerm { .. })
        ));
        let dedup = DedupBuilder::new().build().unwrap();
        assert_eq!(dedup.params(), LshParams::from_threshold(0.8, 128).unwrap());
        assert_eq!(dedup.fields.keep, None);
        let dedup = DedupBuilder::new()
            .keep(KeepPolicy::Max("q".into()))
            .build()
            .unwrap();
        assert_eq!(dedup.fields.keep.as_deref(), Some("q"));
    }

    #[test]
    fn doc_table_ids_round_trip() {
        let mut t = DocTable::new(&KeepPolicy::First);
        t.push("a", DocState::Empty, 0.0);
        t.push("", DocState::Rejected, 0.0);
        t.push("ccc", DocState::Unique(0), 0.0);
        assert_eq!((t.id(0), t.id(1), t.id(2)), ("a", "", "ccc"));
        assert_eq!(t.slot(2), Some(0));
        assert_eq!(t.slot(1), None);
    }
}
