//! Pass 1 (read, exact-hash, shingle, sign, band) and the reading helpers the later passes share.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_128;

use std::borrow::Cow;

use super::docs::{DocState, DocTable};
use super::exact::{ExactTable, LateCopies};
use super::signed::SignedBatch;
use super::stats::CorpusProfile;
use super::workdir::{Checkpoint, WorkDir};
use super::{Analysis, Dedup, DocExtras, Prepared};
use crate::boilerplate::{
    Boilerplate, BoilerplateOptions, Span, UnitCounter, UnitCounts, char_spans, group_seed,
    repetition, unit_hashes,
};
use crate::cluster::KeepPolicy;
use crate::error::{Error, Rejection};
use crate::lsh::{BandKey, BandTables};
use crate::minhash::SignatureStore;
use crate::read::{Document, Frame, InputSet, Parser};
use crate::report::{DocId, Progress, Sink, StageSeconds};
use crate::shingle::ShingleKind;
use crate::spill::{Column, SpillSpace};

/// A resumable first pass saves a checkpoint every sixteenth of its input, but no more often
/// than every this many bytes.
const CHECKPOINT_BYTES: u64 = 1 << 20;
use crate::verify::{Measure, compact_set};

impl Dedup {
    /// Pass 1: read, find exact copies, sign distinct texts, record band keys. With
    /// `keep_text_hashes`, each slot's normalized-text hash is kept too (for indexes). With a work
    /// directory, the pass saves checkpoints there and resumes from the one it holds.
    pub(super) fn analyse(
        &self,
        inputs: &mut InputSet,
        keep_text_hashes: bool,
        work: Option<&WorkDir>,
        sink: &mut dyn Sink,
    ) -> Result<(Analysis, BandTables), Error> {
        let parser = Parser::new(self.fields.clone());
        let total_bytes = inputs.total_bytes();
        let num_perm = self.num_perm();
        let space = self.spill_space(work);
        let saved = work.and_then(WorkDir::saved);
        let (mut analysis, mut tables, mut first_copy) = match saved {
            Some(checkpoint) => self.reopen_analysis(checkpoint, work, space.clone())?,
            None => {
                let analysis = Analysis {
                    docs: DocTable::new(&self.keep, self.spans, space.clone(), self.sort_budget()),
                    signatures: SignatureStore::in_space(num_perm, space.clone()),
                    locations: Column::named(space.clone(), "locations"),
                    all_located: true,
                    // A resumable run keeps them always: a later run may need them.
                    text_hashes: (keep_text_hashes || work.is_some())
                        .then(|| Column::named(space.clone(), "text-hashes")),
                    late: LateCopies::default(),
                    duplicate_ids: 0,
                    space: space.clone(),
                    bytes_read: 0,
                    stripped: (0, 0),
                    sizes: (self.measure == Measure::Containment)
                        .then(|| Column::named(space.clone(), "sizes")),
                    profile: self
                        .profile
                        .map(|_| CorpusProfile::new(space.clone(), self.sort_budget())),
                    seconds: StageSeconds::default(),
                };
                let tables = self.band_tables(space.clone(), work.is_some());
                let first_copy = ExactTable::new(self.exact_budget(), space.clone());
                (analysis, tables, first_copy)
            }
        };
        // Records the checkpoint covers: read again only to report their rejections again.
        let resumed_docs = saved.map_or(0, |c| c.docs);
        let interval = (total_bytes.unwrap_or(0) / 16).max(CHECKPOINT_BYTES);
        let mut next_checkpoint = saved.map_or(0, |c| c.bytes_read) + interval;
        let mut framed = 0u64;
        let temp = |e| space.error(e);
        // The rejections a checkpoint covers are reported again from its log, first; those since
        // the last checkpoint wait to be logged by the next.
        let mut rejection_log = match (work, saved) {
            (Some(work), Some(checkpoint)) => {
                let log = RejectionLog::reopen(work, checkpoint.rejections)?;
                for rejection in log.saved(work)? {
                    sink.rejected(&rejection)?;
                }
                Some(log)
            }
            (Some(work), None) => Some(RejectionLog::create(work)?),
            (None, _) => None,
        };
        let mut unsaved_rejections: Vec<Rejection> = Vec::new();
        let pass_started = Instant::now();
        let mut in_batches = 0.0;
        let with_sizes = analysis.sizes.is_some();
        // The sequential half of the pass, for one signed batch: exact copies and per-document
        // facts in input order, then the band records of the new distinct texts.
        let mut enter = |signed: SignedBatch, sink: &mut dyn Sink| -> Result<(), Error> {
            let mut clock = Instant::now();
            let mut lap = |stage: &mut f64| {
                let now = Instant::now();
                *stage += (now - clock).as_secs_f64();
                clock = now;
            };
            analysis.seconds.prepare += signed.prepare_seconds;
            analysis.seconds.sign += signed.sign_seconds;
            let num_bands = self.params.num_bands;
            // (slot, chunk, signed index) of each new distinct text, for the band records.
            let mut new_slots: Vec<(u32, usize, usize)> = Vec::new();
            let mut keys_of_chunk: Vec<Vec<BandKey>> = Vec::with_capacity(signed.chunks.len());
            for (chunk_index, chunk) in signed.chunks.into_iter().enumerate() {
                let mut signed_index = 0usize;
                for record in chunk.records {
                    let this = signed_index;
                    signed_index += usize::from(record.signed);
                    let mut item = record.prepared;
                    let mut spans = None;
                    if let Prepared::Doc {
                        stripped,
                        extras,
                        spans: doc_spans,
                        ..
                    } = &mut item
                    {
                        spans = doc_spans.take();
                        analysis.stripped.0 += stripped.0;
                        analysis.stripped.1 += stripped.1;
                        if let (Some(profile), Some(extras)) = (&mut analysis.profile, extras) {
                            profile.add(extras).map_err(temp)?;
                        }
                    }
                    match item {
                        Prepared::Rejected(rejection) => {
                            if self.strict {
                                return Err(Error::Rejected(rejection));
                            }
                            sink.rejected(&rejection)?;
                            if work.is_some() {
                                unsaved_rejections.push(rejection);
                            }
                            analysis
                                .docs
                                .push("", DocState::Rejected, f64::NEG_INFINITY)?;
                        }
                        Prepared::Doc { id, score, .. } if !record.signed => {
                            analysis.docs.push(&id, DocState::Empty, score)?;
                        }
                        Prepared::Doc {
                            id,
                            score,
                            text_hash,
                            location,
                            ..
                        } => {
                            let next_slot = u32::try_from(analysis.signatures.len())
                                .map_err(|_| Error::TooManyDocuments)?;
                            let state = match first_copy
                                .first_or_insert(text_hash, next_slot)
                                .map_err(temp)?
                            {
                                Some(first) => DocState::Exact(first),
                                None => {
                                    analysis.all_located &= location.is_some();
                                    analysis.locations.push(&location).map_err(temp)?;
                                    if let Some(hashes) = &mut analysis.text_hashes {
                                        hashes.push(&text_hash).map_err(temp)?;
                                    }
                                    let values = &chunk.signatures
                                        [this * self.num_perm()..(this + 1) * self.num_perm()];
                                    analysis.signatures.push(values)?;
                                    if let Some(sizes) = &mut analysis.sizes {
                                        sizes.push(&chunk.sizes[this]).map_err(temp)?;
                                    }
                                    new_slots.push((next_slot, chunk_index, this));
                                    DocState::Unique(next_slot)
                                }
                            };
                            analysis.docs.push(&id, state, score)?;
                        }
                    }
                    analysis
                        .docs
                        .push_spans(spans.as_deref().unwrap_or_default())?;
                }
                keys_of_chunk.push(chunk.keys);
            }
            lap(&mut analysis.seconds.exact);
            for &(slot, chunk, this) in &new_slots {
                let keys = &keys_of_chunk[chunk][this * num_bands..(this + 1) * num_bands];
                tables.insert(slot, keys);
            }
            tables
                .spill_if_over_budget()
                .map_err(|e| self.temp_error(e))?;
            lap(&mut analysis.seconds.band);
            analysis.bytes_read = signed.bytes_read;
            sink.progress(&Progress {
                docs: analysis.docs.len() as u64,
                bytes: analysis.bytes_read,
                total_bytes,
            });
            if let Some(work) = work
                && signed.bytes_read >= next_checkpoint
            {
                next_checkpoint = signed.bytes_read + interval;
                let log = rejection_log
                    .as_mut()
                    .expect("a resumable run logs rejections");
                let state = TablesState {
                    analysis: &mut analysis,
                    tables: &mut tables,
                    first_copy: &mut first_copy,
                    rejections: &mut unsaved_rejections,
                };
                self.checkpoint(work, state, log, false)?;
            }
            Ok(())
        };
        // One batch is entered while the next is signed: `waiting` is the signed batch not
        // entered yet.
        let mut waiting: Option<SignedBatch> = None;
        // The frames of the batch signed last, freed on a worker beside the next batch's work
        // instead of on this thread between two batches, when nothing else runs.
        let mut retired: Option<Vec<Frame>> = None;
        self.for_each_batch(inputs, |frames, bytes_read| {
            let batch = &frames;
            let batch_started = Instant::now();
            let first = framed;
            framed += batch.len() as u64;
            // Records the checkpoint covers are only framed again (which also counts their inputs'
            // byte-order marks again).
            let replayed = (resumed_docs.saturating_sub(first) as usize).min(batch.len());
            if replayed > 0 {
                sink.progress(&Progress {
                    docs: first + replayed as u64,
                    bytes: bytes_read,
                    total_bytes,
                });
            }
            let batch = &batch[replayed..];
            if batch.is_empty() {
                return Ok(());
            }
            let mut next = None;
            let to_free = retired.take();
            let entered = rayon::in_place_scope(|scope| {
                scope.spawn(|_| {
                    next = Some(self.sign_batch(&parser, batch, bytes_read, with_sizes));
                });
                scope.spawn(move |_| drop(to_free));
                match waiting.take() {
                    Some(signed) => enter(signed, &mut *sink),
                    None => Ok(()),
                }
            });
            waiting = next;
            retired = Some(frames);
            in_batches += batch_started.elapsed().as_secs_f64();
            entered
        })?;
        if let Some(signed) = waiting.take() {
            let started = Instant::now();
            enter(signed, &mut *sink)?;
            in_batches += started.elapsed().as_secs_f64();
        }
        analysis.seconds.read += (pass_started.elapsed().as_secs_f64() - in_batches).max(0.0);
        if let (Some(work), Some(log)) = (work, rejection_log.as_mut()) {
            let state = TablesState {
                analysis: &mut analysis,
                tables: &mut tables,
                first_copy: &mut first_copy,
                rejections: &mut unsaved_rejections,
            };
            self.checkpoint(work, state, log, true)?;
        }
        // Copies whose first copy the exact table had spilled become exact copies of it, as if
        // caught at once; their slots stay unused.
        let late = first_copy.finish().map_err(temp)?;
        if !late.is_empty() {
            analysis.docs.update_states(|state| {
                Ok(match state {
                    DocState::Unique(slot) if late.is_late(slot) => {
                        DocState::Exact(late.first(slot).map_err(temp)?)
                    }
                    DocState::Exact(slot) => DocState::Exact(late.first(slot).map_err(temp)?),
                    other => other,
                })
            })?;
        }
        analysis.late = late;
        analysis.duplicate_ids = analysis.docs.duplicate_ids()?;
        Ok((analysis, tables))
    }

    /// Saves what the first pass has finished to the work directory.
    fn checkpoint(
        &self,
        work: &WorkDir,
        state: TablesState<'_>,
        log: &mut RejectionLog,
        complete: bool,
    ) -> Result<(), Error> {
        let TablesState {
            analysis,
            tables,
            first_copy,
            rejections,
        } = state;
        log.append(work, rejections)?;
        let space = analysis.space.clone();
        let temp = |e| space.error(e);
        let checkpoint = Checkpoint {
            docs: analysis.docs.len() as u64,
            slots: analysis.signatures.len() as u64,
            bytes_read: analysis.bytes_read,
            stripped: analysis.stripped,
            all_located: analysis.all_located,
            docs_table: analysis.docs.persist()?,
            signatures: analysis.signatures.persist()?,
            locations: analysis.locations.persist().map_err(temp)?,
            text_hashes: match &mut analysis.text_hashes {
                Some(hashes) => Some(hashes.persist().map_err(temp)?),
                None => None,
            },
            sizes: match &mut analysis.sizes {
                Some(sizes) => Some(sizes.persist().map_err(temp)?),
                None => None,
            },
            exact: first_copy.persist().map_err(temp)?,
            bands: tables.persist().map_err(temp)?,
            rejections: log.saved_bytes,
            complete,
        };
        work.save(&checkpoint)
    }

    /// The first pass's tables as a checkpoint saved them.
    fn reopen_analysis(
        &self,
        checkpoint: &Checkpoint,
        work: Option<&WorkDir>,
        space: Arc<SpillSpace>,
    ) -> Result<(Analysis, BandTables, ExactTable), Error> {
        let temp = |e| space.error(e);
        let work = work.expect("a checkpoint comes from a work directory");
        let analysis = Analysis {
            docs: DocTable::reopen(space.clone(), self.sort_budget(), &checkpoint.docs_table)?,
            signatures: SignatureStore::reopen(
                self.num_perm(),
                space.clone(),
                checkpoint.signatures,
            )?,
            locations: Column::reopen(space.clone(), "locations", checkpoint.locations)
                .map_err(temp)?,
            all_located: checkpoint.all_located,
            text_hashes: checkpoint
                .text_hashes
                .map(|saved| Column::reopen(space.clone(), "text-hashes", saved))
                .transpose()
                .map_err(temp)?,
            late: LateCopies::default(),
            duplicate_ids: 0,
            space: space.clone(),
            bytes_read: checkpoint.bytes_read,
            stripped: checkpoint.stripped,
            sizes: checkpoint
                .sizes
                .map(|saved| Column::reopen(space.clone(), "sizes", saved))
                .transpose()
                .map_err(temp)?,
            profile: None,
            seconds: StageSeconds::default(),
        };
        let slots = checkpoint.slots as usize;
        let adds_up = analysis.docs.len() as u64 == checkpoint.docs
            && analysis.signatures.len() == slots
            && analysis.locations.len() == slots
            && analysis
                .text_hashes
                .as_ref()
                .is_none_or(|h| h.len() == slots)
            && analysis.sizes.as_ref().is_none_or(|s| s.len() == slots)
            && analysis.docs.spans_len() == self.spans.then_some(checkpoint.docs as usize);
        if !adds_up {
            return Err(work.error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "its saved tables do not match its manifest",
            )));
        }
        let band_budget = self.memory.map_or(u64::MAX, |bytes| bytes / 4);
        let tables = BandTables::reopen(self.params, band_budget, space.clone(), &checkpoint.bands)
            .map_err(temp)?;
        let first_copy = ExactTable::reopen(self.exact_budget(), space.clone(), &checkpoint.exact)
            .map_err(temp)?;
        Ok((analysis, tables, first_copy))
    }

    /// Frames `inputs` in batches on a reader thread, which reads ahead while `each` processes the
    /// current batch; `each` also gets the bytes read so far. Stops at the first error of `each`.
    pub(super) fn for_each_batch(
        &self,
        inputs: &mut InputSet,
        mut each: impl FnMut(Vec<Frame>, u64) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.for_each_batch_until(inputs, |batch, bytes_read| {
            each(batch, bytes_read).map(ControlFlow::Continue)
        })
    }

    /// [`Dedup::for_each_batch`], stopping (and reading no further) when `each` breaks. Only a
    /// pass after the first may stop early: the first pass reads every input to its end (it
    /// counts what they hold and spools streams).
    pub(super) fn for_each_batch_until(
        &self,
        inputs: &mut InputSet,
        mut each: impl FnMut(Vec<Frame>, u64) -> Result<ControlFlow<()>, Error>,
    ) -> Result<(), Error> {
        inputs.set_fields(&self.fields);
        let cancel = inputs.cancel_flag();
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
                // An input that could not be read to its end fails the run (a set that keeps
                // going past broken inputs never yields one).
                Frame::stop_at_failure(&batch)?;
                if cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                    return Err(Error::Interrupted);
                }
                if each(batch, counter.load(Ordering::Relaxed))?.is_break() {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Stage A for one frame: parse, normalize, hash the normalized text, shingle.
    pub(super) fn prepare(&self, parser: &Parser, frame: &Frame) -> Prepared {
        let record = match frame.record() {
            Ok(record) => record,
            Err(rejection) => return Prepared::Rejected(rejection),
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
        let (content, stripped, spans) = compared(self.boilerplate.as_deref(), &doc, self.spans);
        let (text_hash, shingles) = self.normalize_and_shingle(&content);
        let extras = self.profile.map(|options| {
            let group = group_seed(doc.group.as_deref());
            Box::new(DocExtras {
                repetition: repetition(&doc.text),
                units: unit_hashes(&doc.text, options.unit, group, &self.normalizer)
                    .into_iter()
                    .map(|(_, hash)| hash)
                    .collect(),
            })
        });
        Prepared::Doc {
            id: doc.id.into_owned(),
            score,
            text_hash,
            shingles,
            location: record.location,
            stripped,
            spans,
            extras,
        }
    }

    /// The text that is compared: the document's text, without its boilerplate when the run
    /// strips it (with the units and bytes removed).
    pub(super) fn content<'a>(&self, doc: &'a Document<'a>) -> (Cow<'a, str>, (u64, u64)) {
        let (content, counts, _) = compared(self.boilerplate.as_deref(), doc, false);
        (content, counts)
    }

    /// The documents at `wanted` positions read again, for reports: each one's id and what a run
    /// that stripped `boilerplate` compared of it. Rejected or unreadable positions
    /// are left out.
    pub fn texts(
        &self,
        inputs: &mut InputSet,
        wanted: &[DocId],
        boilerplate: Option<&Boilerplate>,
    ) -> Result<HashMap<u64, ShownText>, Error> {
        let wanted: std::collections::HashSet<u64> = wanted.iter().map(|d| d.0).collect();
        let parser = Parser::new(self.fields.clone());
        let mut out = HashMap::new();
        let mut position = 0u64;
        if wanted.is_empty() {
            return Ok(out);
        }
        self.for_each_batch(inputs, |batch, _| {
            for frame in &batch {
                if wanted.contains(&position)
                    && let Frame::Record(record) = frame
                    && let Ok(doc) = parser.parse(record)
                {
                    let compared = compared(boilerplate, &doc, false).0.into_owned();
                    let id = doc.id.to_string();
                    out.insert(position, ShownText { id, compared });
                }
                position += 1;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The exact similarity, under this deduplicator's normalization, shingles and measure, of
    /// two texts as a run compares them (`compared` of [`ShownText`]); containment is of the
    /// smaller in the larger.
    pub fn similarity(&self, a: &str, b: &str) -> f64 {
        let set = |text: &str| compact_set(&self.normalize_and_shingle(text).1);
        self.measure.of_sets(&set(a), &set(b))
    }

    /// Pass 0 when stripping boilerplate: counts every unit of every document.
    pub(super) fn count_units(
        &self,
        inputs: &mut InputSet,
        options: BoilerplateOptions,
    ) -> Result<UnitCounts, Error> {
        let parser = Parser::new(self.fields.clone());
        // The counting pass runs alone: its sort may take half the budget.
        let space = self.spill_space(None);
        let mut counter = UnitCounter::in_space(
            space.clone(),
            self.memory.map_or(u64::MAX, |bytes| bytes / 2),
        );
        self.for_each_batch(inputs, |batch, _| {
            let hashes: Vec<Vec<u64>> = batch
                .par_iter()
                .filter_map(|frame| {
                    let Frame::Record(record) = frame else {
                        return None;
                    };
                    let doc = parser.parse(record).ok()?;
                    let group = group_seed(doc.group.as_deref());
                    Some(
                        unit_hashes(&doc.text, options.unit, group, &self.normalizer)
                            .into_iter()
                            .map(|(_, hash)| hash)
                            .collect(),
                    )
                })
                .collect();
            for mut doc in hashes {
                counter.add_document(&mut doc).map_err(|e| space.error(e))?;
            }
            Ok(())
        })?;
        counter.finish().map_err(|e| space.error(e))
    }

    /// The 128-bit hash of the normalized text, and its shingle hashes (in text order, repeats
    /// included). On the normalizer's fast path each word is hashed as it is written, so the words
    /// are read once. The normalized text and word hashes live in per-thread scratch buffers,
    /// reused from document to document; the shingle vector is allocated once at about its final
    /// size.
    pub(super) fn normalize_and_shingle(&self, text: &str) -> (u128, Vec<u64>) {
        thread_local! {
            static SCRATCH: std::cell::RefCell<(String, Vec<u64>)> =
                const { std::cell::RefCell::new((String::new(), Vec::new())) };
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let (normalized, word_hashes) = &mut *scratch;
            normalized.clear();
            word_hashes.clear();
            // About one shingle per six bytes of text.
            let mut shingles = Vec::with_capacity(text.len() / 6 + 1);
            let shingler = &self.shingler;
            let hashed_words = match shingler.kind() {
                // Fills `normalized` either way; hashes the words only on the fast path.
                ShingleKind::Words(_) => {
                    self.normalizer
                        .normalize_words_with(text, normalized, |_, word, padded| {
                            word_hashes.push(shingler.word_hash(word, padded));
                        })
                }
                ShingleKind::Chars(_) => {
                    self.normalizer.normalize_into(text, normalized);
                    false
                }
            };
            if !(hashed_words && shingler.shingles_from_word_hashes(word_hashes, &mut shingles)) {
                shingler.shingles_into(normalized, &mut shingles);
            }
            let hash = xxh3_128(normalized.as_bytes());
            // Do not keep a giant document's buffers for the rest of the run.
            if normalized.capacity() > 1 << 20 {
                *normalized = String::new();
                *word_hashes = Vec::new();
            }
            (hash, shingles)
        })
    }
}

/// What a run that strips `boilerplate` (if any) compares of `doc`: its text without the
/// boilerplate, the units and bytes removed, and, when `spans` is set, where the rest is.
fn compared<'a>(
    boilerplate: Option<&Boilerplate>,
    doc: &'a Document<'a>,
    spans: bool,
) -> (Cow<'a, str>, (u64, u64), Option<Vec<Span>>) {
    let text = doc.text.as_ref();
    match boilerplate {
        None => {
            let whole = 0..text.len();
            let spans = spans.then(|| char_spans(text, std::slice::from_ref(&whole)));
            (Cow::Borrowed(text), (0, 0), spans)
        }
        Some(model) => {
            let stripped = model.strip(text, group_seed(doc.group.as_deref()));
            let counts = (stripped.units_removed, stripped.bytes_removed);
            let spans = spans.then(|| stripped.char_spans(text));
            (Cow::Owned(stripped.text), counts, spans)
        }
    }
}

/// A document read again for a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownText {
    pub id: String,
    /// What the run compared: the text without its boilerplate, when the run stripped it.
    pub compared: String,
}

/// The first pass's tables, as a checkpoint saves them.
struct TablesState<'a> {
    analysis: &'a mut Analysis,
    tables: &'a mut BandTables,
    first_copy: &'a mut ExactTable,
    /// Rejections reported since the last checkpoint, to log.
    rejections: &'a mut Vec<Rejection>,
}

/// The rejections of a resumable run, as JSON lines in the work directory's `rejections` file:
/// appended at each checkpoint, which records the length it covers (a killed run may leave more).
struct RejectionLog {
    saved_bytes: u64,
}

impl RejectionLog {
    const FILE: &'static str = "rejections";

    fn error(work: &WorkDir, source: std::io::Error) -> Error {
        work.error(source)
    }

    fn create(work: &WorkDir) -> Result<RejectionLog, Error> {
        std::fs::write(work.file(Self::FILE), b"").map_err(|e| Self::error(work, e))?;
        Ok(RejectionLog { saved_bytes: 0 })
    }

    /// The log as a checkpoint left it (cut back to the length it covers).
    fn reopen(work: &WorkDir, saved_bytes: u64) -> Result<RejectionLog, Error> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(work.file(Self::FILE))
            .map_err(|e| Self::error(work, e))?;
        file.set_len(saved_bytes)
            .map_err(|e| Self::error(work, e))?;
        Ok(RejectionLog { saved_bytes })
    }

    /// The rejections the checkpoint covers, in input order.
    fn saved(&self, work: &WorkDir) -> Result<Vec<Rejection>, Error> {
        let bytes = std::fs::read(work.file(Self::FILE)).map_err(|e| Self::error(work, e))?;
        bytes[..(self.saved_bytes as usize).min(bytes.len())]
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                serde_json::from_slice(line)
                    .map_err(|e| Self::error(work, std::io::Error::other(e)))
            })
            .collect()
    }

    /// Appends `rejections` (emptying it) and syncs the log.
    fn append(&mut self, work: &WorkDir, rejections: &mut Vec<Rejection>) -> Result<(), Error> {
        use std::io::Write;
        let mut text = Vec::new();
        for rejection in rejections.drain(..) {
            serde_json::to_writer(&mut text, &rejection)
                .map_err(|e| Self::error(work, std::io::Error::other(e)))?;
            text.push(b'\n');
        }
        let appended = (|| {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(work.file(Self::FILE))?;
            file.write_all(&text)?;
            file.sync_data()
        })();
        appended.map_err(|e| Self::error(work, e))?;
        self.saved_bytes += text.len() as u64;
        Ok(())
    }
}
