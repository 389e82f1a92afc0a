//! Streaming mode: decide each document as it arrives, first seen wins.
//!
//! A reader thread hands over frames one by one; the worker takes whatever has arrived (up to a
//! batch), prepares and signs it in parallel, then decides each document in input order against
//! everything kept so far (and the `--against` indexes): an exact copy or a near copy is removed,
//! as a duplicate of the earliest document it duplicates (this run's kept documents in input
//! order, then the indexes' in the order they were added, as a batch run keeps the earliest);
//! anything else is kept, written at once, and added to the online tables. After each batch the
//! sink is flushed, so a document waits at most one batch.
//!
//! The rules are the decision core's (`core`): a document's candidates are the anchors of the
//! buckets it falls in; the texts of kept documents are gone, so a candidate is decided as the
//! core's judge decides for a front-end that cannot check exactly (on the signature estimate;
//! `exact` verification is refused, see `Dedup::check_streaming`); `kind`, similarities, the
//! histogram, the counts and the order of the clusters reported at the end are the core's too.
//!
//! Unlike a batch run there are no chains: a document is compared with kept documents only, so a
//! removed document never pulls a later one into its cluster.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::mpsc::{TryRecvError, sync_channel};

use rayon::prelude::*;

use std::sync::Arc;

use super::core::anchors::{ANCHORS, is_anchor};
use super::core::clusters::Assembly;
use super::core::counts::{Counts, Histogram};
use super::core::judge::Judge;
use super::core::members::Relation;
use super::docs::Ids;
use super::{Dedup, Prepared, RunOptions, RunOutput};
use crate::error::{ConfigError, Error, Rejection};
use crate::index::{Index, IndexDoc, SegmentData};
use crate::lsh::BandKey;
use crate::minhash::{SignatureStore, estimate_jaccard_bbit};
use crate::pipeline::Instant;
use crate::read::{Frame, InputSet, Parser, Record};
use crate::report::{
    ClusterReport, DocId, KeptRecord, MemberReport, Progress, Removal, Sink, Summary, tallied,
};
use crate::spill::SpillSpace;

/// No further bucket mate.
const NONE: u32 = u32::MAX;

/// One band bucket of kept documents: the latest of its first `ANCHORS` members (the chain runs
/// back through `Online::previous`), and how many members it has.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    last_anchor: u32,
    members: u32,
}

/// What a streaming run keeps in memory: per kept document, its signature, its band records
/// (per band a hash map from key to the bucket's latest anchor, and per member and band a link to
/// the previous one) and its id; per removed document, its cluster entry; and what it counted.
struct Online {
    num_bands: usize,
    judge: Judge,
    counts: Counts,
    histogram: Histogram,
    exact: HashMap<u128, u32>,
    /// Normalized-text hashes of removed documents: what each duplicates and how closely, so a
    /// later identical copy is an exact duplicate of the same document.
    removed_texts: HashMap<u128, (Target, f64)>,
    /// Per band, key → the latest kept document in that bucket.
    buckets: Vec<HashMap<u64, Bucket>>,
    /// Per kept document and band, the previous kept document in the same bucket.
    previous: Vec<u32>,
    signatures: SignatureStore,
    ids: Ids,
    /// Per kept document, its position in the input.
    positions: Vec<u64>,
    /// Removed documents: (kept document or indexed node, position, id end in `removed_ids`,
    /// similarity).
    removed: Vec<(Target, u64, f64)>,
    removed_ids: Ids,
    /// Indexed documents that removed something, in order of first use.
    indexed: Vec<(u32, IndexDoc)>,
    indexed_node: HashMap<(u32, IndexDoc), u32>,
    segment: Option<SegmentData>,
    /// Hashes of the ids of the documents with text seen so far (for counting duplicate ids).
    id_hashes: std::collections::HashSet<u64>,
}

/// What a removed document duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Kept(u32),
    Indexed(u32),
}

/// One prepared and signed document of a batch.
enum Signed {
    Rejected(Rejection),
    Doc {
        id: String,
        text_hash: u128,
        /// Empty for a document without shingles.
        signature: Vec<u32>,
        keys: Vec<BandKey>,
    },
}

/// A member of a cluster reported at the end: the kept document, or a removed one.
#[derive(Debug, Clone, Copy)]
enum Entry {
    Kept(u32),
    /// Its place in `Online::removed`.
    Removed(usize),
}

impl Online {
    fn new(num_bands: usize, judge: Judge, num_perm: usize, collect_kept: bool) -> Self {
        Online {
            num_bands,
            judge,
            counts: Counts::default(),
            histogram: Histogram::default(),
            exact: HashMap::new(),
            removed_texts: HashMap::new(),
            buckets: vec![HashMap::new(); num_bands],
            previous: Vec::new(),
            signatures: SignatureStore::new(num_perm),
            ids: Ids::new(Arc::new(SpillSpace::unbounded())),
            positions: Vec::new(),
            removed: Vec::new(),
            removed_ids: Ids::new(Arc::new(SpillSpace::unbounded())),
            indexed: Vec::new(),
            indexed_node: HashMap::new(),
            segment: collect_kept.then(|| SegmentData::new(num_perm, num_bands)),
            id_hashes: std::collections::HashSet::new(),
        }
    }

    /// The kept documents sharing a band with `keys`: the anchors of each bucket (the core's
    /// anchor rule, as in batch mode).
    fn candidates(&self, keys: &[BandKey], out: &mut Vec<u32>) {
        out.clear();
        for (band, key) in keys.iter().enumerate() {
            let mut member = self.buckets[band]
                .get(&key.0)
                .map_or(NONE, |b| b.last_anchor);
            while member != NONE {
                out.push(member);
                member = self.previous[member as usize * self.num_bands + band];
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    fn keep(
        &mut self,
        id: &str,
        position: u64,
        text_hash: u128,
        signature: &[u32],
        keys: &[BandKey],
    ) -> Result<(), Error> {
        // Kept documents are numbered in 32 bits (NONE marks an empty bucket).
        let kept = u32::try_from(self.positions.len())
            .ok()
            .filter(|&kept| kept != NONE)
            .ok_or(Error::TooManyDocuments)?;
        self.exact.insert(text_hash, kept);
        for (band, key) in keys.iter().enumerate() {
            let bucket = self.buckets[band].entry(key.0).or_insert(Bucket {
                last_anchor: NONE,
                members: 0,
            });
            // Only a bucket's anchors are chained: the ones later members pair with.
            if is_anchor(bucket.members as usize) {
                self.previous.push(bucket.last_anchor);
                bucket.last_anchor = kept;
            } else {
                self.previous.push(NONE);
            }
            bucket.members = bucket.members.saturating_add(1);
        }
        let stored = self.signatures.push(signature)?;
        self.ids.push(id).map_err(in_memory)?;
        self.positions.push(position);
        if let Some(segment) = &mut self.segment {
            let low = self.signatures.get(stored)?;
            segment.push(id, text_hash, &low, keys).map_err(in_memory)?;
        }
        Ok(())
    }

    /// Frees what only deciding needs (the lookups of kept documents and their signatures), so
    /// that reporting the clusters at the end does not add to the run's peak memory.
    fn done_deciding(&mut self) {
        self.exact = HashMap::new();
        self.removed_texts = HashMap::new();
        self.buckets = Vec::new();
        self.previous = Vec::new();
        self.signatures = SignatureStore::new(self.signatures.num_perm());
        self.id_hashes = std::collections::HashSet::new();
    }

    fn node(&mut self, index: u32, doc: IndexDoc) -> u32 {
        let next = self.indexed.len() as u32;
        *self.indexed_node.entry((index, doc)).or_insert_with(|| {
            self.indexed.push((index, doc));
            next
        })
    }
}

impl Dedup {
    /// Decides each document as it arrives (first seen wins) and hands kept records to the sink
    /// at once, flushing it after each batch. `options.against` indexes are consulted per
    /// document. Pairs are decided on the signature estimate: under borderline verification (the
    /// default) a borderline pair too; exact verification is refused
    /// ([`ConfigError::StreamVerify`]), as are keep policies
    /// other than `first`, boilerplate stripping and containment.
    pub fn run_streaming(
        &self,
        inputs: &mut InputSet,
        options: RunOptions<'_>,
        sink: &mut dyn Sink,
    ) -> Result<RunOutput, Error> {
        if options.annotate {
            return Err(ConfigError::StreamAnnotate.into());
        }
        tallied(inputs, sink, |inputs, sink| {
            self.stream_all(inputs, options, sink)
        })
    }

    fn stream_all(
        &self,
        inputs: &mut InputSet,
        options: RunOptions<'_>,
        sink: &mut dyn Sink,
    ) -> Result<RunOutput, Error> {
        let started = Instant::now();
        self.check_streaming().map_err(Error::Config)?;
        for index in options.against {
            self.check_index(index)?;
        }
        let parser = Parser::new(self.fields.clone());
        let num_bands = self.params.num_bands;
        let mut online = Online::new(
            num_bands,
            self.judge(),
            self.num_perm(),
            options.collect_kept,
        );
        let mut summary = Summary::empty(self.params, self.num_perm(), self.threshold);
        let total_bytes = inputs.total_bytes();
        inputs.set_fields(&self.fields);
        let cancel = inputs.cancel_flag();
        let mut frames = inputs.frames();
        let counter = frames.byte_counter();
        let mut position = 0u64;
        std::thread::scope(|scope| -> Result<(), Error> {
            let (sender, arrivals) = sync_channel::<Frame>(self.batch_docs);
            scope.spawn(move || {
                for frame in frames.by_ref() {
                    if sender.send(frame).is_err() {
                        break;
                    }
                }
            });
            let mut batch: Vec<Frame> = Vec::with_capacity(self.batch_docs);
            // Block for the first frame, then take whatever else has arrived.
            while let Ok(first) = arrivals.recv() {
                batch.clear();
                batch.push(first);
                while batch.len() < self.batch_docs {
                    match arrivals.try_recv() {
                        Ok(frame) => batch.push(frame),
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                }
                Frame::stop_at_failure(&batch)?;
                if cancel
                    .as_ref()
                    .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
                {
                    return Err(Error::Interrupted);
                }
                let signed: Vec<Signed> = batch
                    .par_iter()
                    .map(|frame| self.sign_one(&parser, frame))
                    .collect();
                for (frame, item) in batch.iter().zip(signed) {
                    self.decide_one(
                        frame,
                        item,
                        position,
                        &mut online,
                        options.against,
                        sink,
                        &mut summary,
                    )?;
                    position += 1;
                }
                summary.bytes_read = counter.load(std::sync::atomic::Ordering::Relaxed);
                sink.progress(&Progress {
                    docs: position,
                    bytes: summary.bytes_read,
                    total_bytes,
                });
                sink.flush()?;
            }
            Ok(())
        })?;
        online.done_deciding();
        self.report_stream_clusters(&online, options.against, sink, &mut summary)?;
        summary.docs_read = position;
        summary.finish(started)?;
        Ok(RunOutput {
            summary,
            kept: online.segment,
            boilerplate: None,
        })
    }

    fn sign_one(&self, parser: &Parser, frame: &Frame) -> Signed {
        match self.prepare(parser, frame) {
            Prepared::Rejected(rejection) => Signed::Rejected(rejection),
            Prepared::Doc {
                id,
                text_hash,
                shingles,
                ..
            } => {
                let (mut signature, mut keys) = (Vec::new(), Vec::new());
                if !shingles.is_empty() {
                    signature = vec![0u32; self.num_perm()];
                    self.hasher.sign_into(&shingles, &mut signature);
                    self.params.band_keys(&signature, &mut keys);
                }
                Signed::Doc {
                    id,
                    text_hash,
                    signature,
                    keys,
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_one(
        &self,
        frame: &Frame,
        item: Signed,
        position: u64,
        online: &mut Online,
        against: &[Index],
        sink: &mut dyn Sink,
        summary: &mut Summary,
    ) -> Result<(), Error> {
        let (id, text_hash, signature, keys) = match item {
            Signed::Rejected(rejection) => {
                if self.strict {
                    return Err(Error::Rejected(rejection));
                }
                summary.rejected += 1;
                return sink.rejected(&rejection);
            }
            Signed::Doc {
                id,
                text_hash,
                signature,
                keys,
            } => (id, text_hash, signature, keys),
        };
        // A signed document comes from a record (a failed input stops the run before).
        let record = match frame.record() {
            Ok(record) => record,
            Err(rejection) => {
                summary.rejected += 1;
                return sink.rejected(&rejection);
            }
        };
        if signature.is_empty() {
            summary.empty += 1;
            summary.kept += 1;
            return self.keep_record(record, position, sink);
        }
        if !online
            .id_hashes
            .insert(xxhash_rust::xxh3::xxh3_64(id.as_bytes()))
        {
            summary.duplicate_ids += 1;
        }
        // Exact copies first, then near copies; this run's kept documents before indexed ones.
        let same_text = Relation {
            same_text_as_kept: true,
            copy_of_earlier: true,
        };
        let near = Relation {
            same_text_as_kept: false,
            copy_of_earlier: false,
        };
        let judge = online.judge;
        let mut found: Option<(Target, Relation, f64)> = None;
        if let Some(&kept) = online.exact.get(&text_hash) {
            found = Some((Target::Kept(kept), same_text, 1.0));
        } else if let Some(&(target, similarity)) = online.removed_texts.get(&text_hash) {
            // The same text as a document removed before: a copy of an earlier document, removed
            // as a duplicate of what that one duplicated, as closely.
            let copy = Relation {
                copy_of_earlier: true,
                ..near
            };
            found = Some((target, copy, similarity));
        }
        if found.is_none() {
            for (i, index) in against.iter().enumerate() {
                if let Some(doc) = index.find_text(text_hash) {
                    let node = online.node(i as u32, doc);
                    found = Some((Target::Indexed(node), same_text, 1.0));
                    break;
                }
            }
        }
        let bits: Vec<u8> = signature.iter().map(|&v| v as u8).collect();
        if found.is_none() {
            let mut candidates = Vec::new();
            online.candidates(&keys, &mut candidates);
            summary.candidate_pairs += candidates.len() as u64;
            // The earliest kept document it duplicates (candidates are in input order): what a
            // batch run's cluster keeps. Every candidate's estimate goes to the histogram.
            for &kept in &candidates {
                let kept_bits = online.signatures.get(kept as usize)?;
                let s = estimate_jaccard_bbit(&bits, &kept_bits);
                online.histogram.add(s);
                if found.is_none() && judge.on_estimate(judge.of_jaccard(s)) {
                    found = Some((Target::Kept(kept), near, s));
                }
            }
            summary.verified_pairs += u64::from(found.is_some());
        }
        if found.is_none() && !against.is_empty() {
            // The earliest indexed document it duplicates (indexes in the order given, each in
            // the order its documents were added): what a batch run against the indexes keeps.
            let mut earliest: Option<((u32, IndexDoc), f64)> = None;
            let (mut docs, mut indexed) = (Vec::new(), Vec::new());
            for (i, index) in against.iter().enumerate() {
                docs.clear();
                for (band, key) in keys.iter().enumerate() {
                    index.find_band(band, *key, ANCHORS, &mut docs);
                }
                docs.sort_unstable();
                docs.dedup();
                summary.candidate_pairs += docs.len() as u64;
                for &doc in &docs {
                    index.signature_into(doc, &mut indexed)?;
                    let s = estimate_jaccard_bbit(&bits, &indexed);
                    if judge.on_estimate(judge.of_jaccard(s)) {
                        earliest = Some(((i as u32, doc), s));
                        break;
                    }
                }
                if earliest.is_some() {
                    break;
                }
            }
            if let Some(((i, doc), s)) = earliest {
                summary.verified_pairs += 1;
                let node = online.node(i, doc);
                found = Some((Target::Indexed(node), near, s));
            }
        }

        let Some((target, relation, estimate)) = found else {
            online.keep(&id, position, text_hash, &signature, &keys)?;
            summary.kept += 1;
            return self.keep_record(record, position, sink);
        };
        let kind = relation.kind();
        let similarity = relation.similarity(None, || estimate);
        online
            .counts
            .removed(kind, matches!(target, Target::Indexed(_)));
        let (duplicate_of, duplicate_in) = match target {
            Target::Kept(kept) => (
                Cow::Owned(online.ids.get(kept as usize).map_err(in_memory)?),
                None,
            ),
            Target::Indexed(node) => {
                let (i, doc) = online.indexed[node as usize];
                let index = &against[i as usize];
                (
                    Cow::Owned(index.id(doc)?),
                    Some(index.dir().display().to_string()),
                )
            }
        };
        sink.removed(&Removal {
            doc: DocId(position),
            id: &id,
            duplicate_of: &duplicate_of,
            duplicate_in: duplicate_in.as_deref(),
            similarity,
            kind,
            role: None,
        })?;
        online.removed.push((target, position, similarity));
        online.removed_ids.push(&id).map_err(in_memory)?;
        online
            .removed_texts
            .entry(text_hash)
            .or_insert((target, similarity));
        Ok(())
    }

    fn keep_record(
        &self,
        record: &Record,
        position: u64,
        sink: &mut dyn Sink,
    ) -> Result<(), Error> {
        sink.kept(&KeptRecord {
            doc: DocId(position),
            origin: &record.origin,
            bytes: &record.bytes,
            format: record.format,
            stored: record.stored.as_deref(),
        })
    }

    /// At the end of a streaming run: every kept document with the documents removed as its
    /// duplicates, ranked as the core ranks clusters; and the run's counts into `summary`.
    fn report_stream_clusters(
        &self,
        online: &Online,
        against: &[Index],
        sink: &mut dyn Sink,
        summary: &mut Summary,
    ) -> Result<(), Error> {
        // A kept document comes before everything removed as its duplicate.
        let mut assembly = Assembly::new();
        for (r, &(target, _, _)) in online.removed.iter().enumerate() {
            if let Target::Kept(kept) = target
                && !assembly.contains(target)
            {
                assembly.add(target, Entry::Kept(kept));
            }
            assembly.add(target, Entry::Removed(r));
        }
        let position = |entry: &Entry| match *entry {
            Entry::Kept(kept) => online.positions[kept as usize],
            Entry::Removed(r) => online.removed[r].1,
        };
        let clusters = assembly.into_clusters(
            |target| usize::from(matches!(target, Target::Indexed(_))),
            position,
        );
        let mut counts = online.counts;
        for (number, cluster) in clusters.iter().enumerate() {
            counts.cluster(cluster.size);
            let ids = cluster
                .members
                .iter()
                .map(|entry| match *entry {
                    Entry::Kept(kept) => online.ids.get(kept as usize),
                    Entry::Removed(r) => online.removed_ids.get(r),
                })
                .collect::<Result<Vec<String>, _>>()
                .map_err(in_memory)?;
            let members = cluster
                .members
                .iter()
                .zip(&ids)
                .map(|(entry, id)| MemberReport {
                    doc: DocId(position(entry)),
                    id,
                    similarity: match *entry {
                        Entry::Kept(_) => 1.0,
                        Entry::Removed(r) => online.removed[r].2,
                    },
                    role: None,
                    spans: None,
                })
                .collect();
            let (kept, kept_doc, kept_in) = match cluster.set {
                Target::Kept(kept) => (
                    Cow::Borrowed(ids[0].as_str()),
                    Some(DocId(online.positions[kept as usize])),
                    None,
                ),
                Target::Indexed(node) => {
                    let (i, doc) = online.indexed[node as usize];
                    let index = &against[i as usize];
                    (
                        Cow::Owned(index.id(doc)?),
                        None,
                        Some(index.dir().display().to_string()),
                    )
                }
            };
            sink.cluster(&ClusterReport {
                cluster: number,
                kept: &kept,
                kept_doc,
                kept_in: kept_in.as_deref(),
                size: cluster.size,
                members,
            })?;
        }
        counts.write_to(summary);
        summary.candidate_similarity_histogram = online.histogram.to_vec();
        Ok(())
    }
}

/// Streaming keeps its tables in memory; an error reading them back cannot happen, but is typed.
fn in_memory(source: std::io::Error) -> Error {
    Error::Temp {
        path: std::env::temp_dir(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::Online;
    use crate::VerifyMode;
    use crate::lsh::BandKey;
    use crate::pipeline::core::anchors::ANCHORS;
    use crate::pipeline::core::judge::Judge;

    #[test]
    fn issue_11_a_bucket_pairs_with_its_first_members_as_in_batch_mode() {
        let judge = Judge::new(VerifyMode::Signature, 0.8, 4);
        let mut online = Online::new(2, judge, 4, false);
        // Every kept document shares band 0's key; band 1's keys are all different.
        for doc in 0..(ANCHORS as u32 + 10) {
            let keys = [BandKey(7), BandKey(1000 + u64::from(doc))];
            online
                .keep(
                    &format!("d{doc}"),
                    u64::from(doc),
                    u128::from(doc),
                    &[0; 4],
                    &keys,
                )
                .unwrap();
        }
        let mut found = Vec::new();
        online.candidates(&[BandKey(7), BandKey(5)], &mut found);
        let first: Vec<u32> = (0..ANCHORS as u32).collect();
        assert_eq!(found, first);
        online.candidates(
            &[BandKey(8), BandKey(1000 + ANCHORS as u64 + 3)],
            &mut found,
        );
        assert_eq!(found, [ANCHORS as u32 + 3]);
    }
}
