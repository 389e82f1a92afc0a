//! The pipeline: configure with [`DedupBuilder`], run with [`Dedup::run`].
//!
//! One run is two passes over the inputs:
//! 1. **Analyse.** Frames are read in bounded batches. Each batch is parsed, normalized,
//!    exact-hashed, shingled, MinHash-signed and band-keyed in parallel; meanwhile the batch before
//!    it goes through exact duplicates in input order (a map of 128-bit hashes), and only the first
//!    copy of each text has its signature and band records kept. What stays in memory per document is its id, a few bytes of state, and for each
//!    distinct text its signature and band records, never its text.
//! 2. **Cluster.** Band tables give candidate pairs; each pair is verified (signature estimate or exact
//!    Jaccard) in parallel; union-find joins verified pairs; exact copies join their first copy's set.
//!    The keep policy picks one member per cluster; clusters and removals go to the sink.
//! 3. **Write.** If the sink wants kept records, the inputs are framed again (stdin from its spool)
//!    and each kept record's original bytes are handed over in input order.
//!
//! Every parallel step collects in input order, so output does not depend on the thread count.

mod against;
mod analyse;
mod assemble;
mod checkpoint;
mod content;
pub(crate) mod core;
mod decide;
mod distributed;
mod docs;
mod exact;
mod fingerprint;
mod lines;
mod reload;
mod sets;
mod signed;
mod stats;
mod stream;
mod workdir;

pub use analyse::ShownText;
#[doc(hidden)]
pub use checkpoint::parse_checkpoint_for_fuzzing;
pub use distributed::{ClusterConfig, DistributedOutputs, DistributedResult, note_thread_panic};
use docs::{DocSet, DocState, DocTable, RankedSlots};
use exact::LateCopies;
pub use lines::LinesSummary;
use stats::CorpusProfile;
pub use stats::{CorpusStats, StatsOptions};
pub use workdir::WorkDir;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::boilerplate::{Boilerplate, BoilerplateOptions, Span, Unit};
use crate::cluster::KeepPolicy;
use crate::error::{ConfigError, Error, RejectKind, Rejection};
use crate::index::{Index, IndexParams, SegmentData};
use crate::lsh::{BandTables, LshParams};
use crate::minhash::{MinHasher, SignatureStore};
use crate::normalize::{NormalizeOptions, Normalizer};
use crate::read::{FieldPath, Fields, InputReport, InputSet, Location};
use crate::report::{ReadTotals, Sink, StageSeconds, Summary, tallied};
use crate::shingle::{ShingleKind, Shingler};
use crate::spill::{Column, SpillSpace};
use crate::verify::{MAX_SETS_PER_ROUND, Measure, VerifyMode};

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
    memory: Option<u64>,
    temp_dir: PathBuf,
    boilerplate: Option<BoilerplateOptions>,
    measure: Measure,
    max_size_ratio: f64,
    spans: bool,
}

/// Default largest size ratio of a containment pair that LSH is tuned to find.
pub const DEFAULT_MAX_SIZE_RATIO: f64 = 3.0;

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
            memory: None,
            temp_dir: std::env::temp_dir(),
            boilerplate: None,
            measure: Measure::Jaccard,
            max_size_ratio: DEFAULT_MAX_SIZE_RATIO,
            spans: false,
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

    /// Where the text and id sit in a JSON record, as paths into nested objects (the keep field
    /// comes from the keep policy).
    pub fn fields(mut self, text_field: FieldPath, id_field: FieldPath) -> Self {
        self.fields.text = text_field;
        self.fields.id = id_field;
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

    /// Strip boilerplate units (counted over the inputs in one extra pass) from each text before
    /// it is normalized and shingled. Written records stay as they were.
    pub fn strip_boilerplate(mut self, options: BoilerplateOptions) -> Self {
        self.boilerplate = Some(options);
        self
    }

    /// Report, for each member of a cluster, where in its original text the content it was
    /// compared on is ([`MemberReport::spans`](crate::report::MemberReport::spans)): what
    /// stripping boilerplate kept, or the whole text. A batch run's option.
    pub fn spans(mut self, spans: bool) -> Self {
        self.spans = spans;
        self
    }

    /// What similarity means: Jaccard (default) or containment of the smaller document in the
    /// larger. With containment, LSH is tuned to the lowest Jaccard a pair at the threshold can
    /// have when the larger document has up to `max_size_ratio` times the smaller's shingles.
    pub fn measure(mut self, measure: Measure) -> Self {
        self.measure = measure;
        self
    }

    /// See [`DedupBuilder::measure`]; at least 1 (default 3).
    pub fn max_size_ratio(mut self, ratio: f64) -> Self {
        self.max_size_ratio = ratio;
        self
    }

    /// The JSON field naming each document's group (site, or URL) for counting boilerplate.
    pub fn group_field(mut self, field: FieldPath) -> Self {
        self.fields.group = Some(field);
        self
    }

    /// The JSON field holding each record's URL ([`Document::url`](crate::read::Document::url));
    /// without a group field, the URL's host is the group boilerplate is counted by.
    pub fn url_field(mut self, field: FieldPath) -> Self {
        self.fields.url = Some(field);
        self
    }

    /// A memory budget in bytes, shared out among the run's tables: a quarter bounds the band
    /// records in memory, a quarter the per-document and per-text columns (states, ids, scores,
    /// signatures, read-back locations, text hashes), an eighth the exact-duplicate map and a
    /// sixteenth each sort (the ids' hashes, cluster assembly, removals); beyond their share they
    /// spill to sorted runs or files under the temporary directory ([`crate::spill`]). While the
    /// pairs are verified, a sixteenth bounds each chunk of pairs and a quarter the shingle sets
    /// loaded per round; while clustering, a quarter bounds the in-memory union-find, beyond which
    /// sets are labelled on sorted runs. At least 1 MiB. Without a budget nothing spills.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// Where spilled tables go (default: the system's temporary directory).
    pub fn temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = dir.into();
        self
    }

    /// Takes every setting that signatures and band keys depend on from an index, so that this
    /// run's documents can be compared with (or added to) it.
    pub fn index_params(mut self, params: &IndexParams) -> Self {
        self.normalize = params.normalize;
        self.shingle = params.shingle;
        self.num_perm = params.num_perm;
        self.seed = params.seed;
        self.bands = Some((params.num_bands, params.rows_per_band));
        self.threshold = params.threshold;
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
            None => LshParams::from_threshold(
                self.measure
                    .jaccard_floor(self.threshold, self.max_size_ratio),
                self.num_perm,
            )?,
        };
        if self.batch_docs == 0 {
            return Err(ConfigError::Zero("batch_docs"));
        }
        if self.batch_bytes == 0 {
            return Err(ConfigError::Zero("batch_bytes"));
        }
        if !(self.max_size_ratio >= 1.0 && self.max_size_ratio.is_finite()) {
            return Err(ConfigError::SizeRatio(self.max_size_ratio));
        }
        if let Some(options) = self.boilerplate
            && options.min_docs < 2
        {
            return Err(ConfigError::MinDocs(options.min_docs));
        }
        if let Some(bytes) = self.memory
            && bytes < MIN_MEMORY
        {
            return Err(ConfigError::MemoryTooSmall(bytes));
        }
        let mut fields = self.fields;
        fields.keep = self.keep.field().cloned();
        Ok(Dedup {
            normalizer: Normalizer::new(self.normalize),
            shingler: Shingler::new(self.shingle, self.seed, self.normalize.strip_punctuation),
            hasher,
            seed: self.seed,
            params,
            threshold: self.threshold,
            verify: self.verify,
            keep: self.keep,
            fields,
            strict: self.strict,
            batch_docs: self.batch_docs,
            batch_bytes: self.batch_bytes,
            memory: self.memory,
            temp_dir: self.temp_dir,
            strip: self.boilerplate,
            boilerplate: None,
            spans: self.spans,
            measure: self.measure,
            profile: None,
            lsh_jaccard: self
                .measure
                .jaccard_floor(self.threshold, self.max_size_ratio),
        })
    }
}

/// A configured deduplicator. Immutable; one value can run many times.
#[derive(Debug, Clone)]
pub struct Dedup {
    normalizer: Normalizer,
    shingler: Shingler,
    hasher: MinHasher,
    seed: u64,
    params: LshParams,
    threshold: f64,
    verify: VerifyMode,
    keep: KeepPolicy,
    fields: Fields,
    strict: bool,
    batch_docs: usize,
    batch_bytes: usize,
    memory: Option<u64>,
    temp_dir: PathBuf,
    /// Strip boilerplate, recognized with these options.
    strip: Option<BoilerplateOptions>,
    /// The counted boilerplate of the current run (set on the run's own copy).
    boilerplate: Option<Arc<Boilerplate>>,
    measure: Measure,
    /// Gather boilerplate and repetition counts too, counting these units (`stats`, set on the
    /// run's own copy).
    profile: Option<BoilerplateOptions>,
    /// The Jaccard similarity LSH was tuned to find (the threshold itself under Jaccard).
    lsh_jaccard: f64,
    /// Keep each document's compared spans for the cluster reports.
    spans: bool,
}

/// The smallest memory budget accepted.
pub const MIN_MEMORY: u64 = 1 << 20;

/// Stage A's result for one frame.
enum Prepared {
    Rejected(Rejection),
    Doc {
        id: String,
        score: f64,
        text_hash: u128,
        shingles: Vec<u64>,
        location: Option<Location>,
        /// Boilerplate units and bytes stripped before shingling.
        stripped: (u64, u64),
        /// Where the compared content is in the text (when the run reports spans).
        spans: Option<Vec<Span>>,
        /// What `stats` profiles besides duplicates.
        extras: Option<Box<DocExtras>>,
    },
}

/// Per-document facts `stats` gathers besides duplicates.
#[derive(Debug)]
struct DocExtras {
    repetition: crate::boilerplate::Repetition,
    /// Hashes of the document's units, for counting boilerplate.
    units: Vec<u64>,
}

/// Everything the first pass gathers. Per-document and per-slot facts live in spillable columns
/// of the run's [`SpillSpace`].
struct Analysis {
    space: Arc<SpillSpace>,
    docs: DocTable,
    signatures: SignatureStore,
    /// Per slot, where its first copy can be read again (when its input is a plain file).
    locations: Column<Option<Location>>,
    /// Whether every slot has a location.
    all_located: bool,
    /// Per slot, the 128-bit hash of its normalized text (only when matching or building an index).
    text_hashes: Option<Column<u128>>,
    /// Slots given to copies of a text whose first copy the exact table had spilled.
    late: LateCopies,
    /// Documents with text whose id an earlier one had.
    duplicate_ids: u64,
    bytes_read: u64,
    /// Boilerplate units and bytes stripped before shingling.
    stripped: (u64, u64),
    /// Per slot, its number of distinct shingles (containment only).
    sizes: Option<Column<u32>>,
    /// Boilerplate and repetition counts (`stats` only).
    profile: Option<CorpusProfile>,
    /// Where the first pass's time went.
    seconds: StageSeconds,
}

impl Analysis {
    /// Distinct normalized texts with shingles (slots that are not late copies).
    fn distinct_texts(&self) -> usize {
        self.signatures.len() - self.late.len()
    }

    /// The distinct shingles of `a` and of `b` (containment only; zeros otherwise).
    fn pair_sizes(&self, a: u32, b: u32) -> Result<(u32, u32), Error> {
        match &self.sizes {
            Some(sizes) => {
                let get = |slot: u32| sizes.get(slot as usize).map_err(|e| self.temp_error(e));
                Ok((get(a)?, get(b)?))
            }
            None => Ok((0, 0)),
        }
    }

    /// Where the first copy in `slot` can be read again.
    fn location(&self, slot: u32) -> Result<Option<Location>, Error> {
        self.locations
            .get(slot as usize)
            .map_err(|e| self.temp_error(e))
    }

    /// The normalized-text hash of `slot` (kept when matching or building an index).
    fn text_hash(&self, slot: usize) -> Result<u128, Error> {
        match &self.text_hashes {
            Some(hashes) => hashes.get(slot).map_err(|e| self.temp_error(e)),
            None => Ok(0),
        }
    }

    fn temp_error(&self, source: std::io::Error) -> Error {
        self.space.error(source)
    }
}

/// What a run is checked against, and what it gives back besides its reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunOptions<'a> {
    /// Documents already kept elsewhere: a document that duplicates one of them is removed, with
    /// `duplicate_of` naming the indexed id. Their parameters must match the run's
    /// ([`Dedup::check_index`]).
    pub against: &'a [Index],
    /// Return the kept documents as an index segment ([`RunOutput::kept`]), for `--update`.
    pub collect_kept: bool,
    /// Save checkpoints of the first pass here, and resume from the one it holds.
    pub work_dir: Option<&'a WorkDir>,
    /// Hand every record that is not rejected to [`Sink::annotated`], with what was decided about
    /// it, instead of only the kept ones to [`Sink::kept`] (`--annotate`).
    pub annotate: bool,
}

/// The names of indexes in what a run reports: their directories as given.
fn index_names(indexes: &[Index]) -> Vec<String> {
    indexes
        .iter()
        .map(|i| i.dir().display().to_string())
        .collect()
}

/// What `index_segment` builds, with its summary.
struct Built {
    summary: Summary,
    segment: SegmentData,
}

impl ReadTotals for Built {
    fn docs_read(&self) -> u64 {
        self.summary.docs_read
    }
    fn record(&mut self, inputs: &InputReport, by_reason: BTreeMap<RejectKind, u64>) {
        self.summary.record(inputs, by_reason);
    }
}

impl ReadTotals for RunOutput {
    fn docs_read(&self) -> u64 {
        self.summary.docs_read
    }
    fn record(&mut self, inputs: &InputReport, by_reason: BTreeMap<RejectKind, u64>) {
        self.summary.record(inputs, by_reason);
    }
}

/// The result of [`Dedup::run_with`].
#[derive(Debug)]
pub struct RunOutput {
    pub summary: Summary,
    /// The kept documents (distinct texts with shingles), ready to append to an index, when
    /// [`RunOptions::collect_kept`] was set.
    pub kept: Option<SegmentData>,
    /// The boilerplate the run counted and stripped, if it did: what [`Dedup::texts`] needs to
    /// show what the run compared of a document.
    pub boilerplate: Option<Arc<Boilerplate>>,
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

    /// When this run strips boilerplate and has not counted it yet: a copy of `self` holding the
    /// counts of `inputs` (one extra pass).
    fn counted(
        &self,
        inputs: &mut InputSet,
        work: Option<&WorkDir>,
    ) -> Result<Option<Dedup>, Error> {
        let Some(options) = self.strip else {
            return Ok(None);
        };
        if self.boilerplate.is_some() {
            return Ok(None);
        }
        // A resumed run takes the counts its work directory saved.
        let saved = work.map(WorkDir::saved_unit_counts).transpose()?.flatten();
        let counter = match saved {
            Some(counts) => counts,
            None => {
                let counts = self.count_units(inputs, options)?;
                if let Some(work) = work {
                    work.save_unit_counts(&counts)?;
                }
                counts
            }
        };
        let model = Boilerplate::new(counter, options, self.normalizer.clone());
        Ok(Some(Dedup {
            boilerplate: Some(Arc::new(model)),
            ..self.clone()
        }))
    }

    /// The boilerplate options this run strips with, if any.
    pub fn strips_boilerplate(&self) -> Option<BoilerplateOptions> {
        self.strip
    }

    /// Band tables for one run: in memory, or keeping a quarter of the budget in memory and
    /// spilling sorted runs to `space`.
    fn band_tables(&self, space: Arc<SpillSpace>, resumable: bool) -> BandTables {
        match (self.memory, resumable) {
            (None, false) => BandTables::new(self.params),
            (memory, _) => BandTables::with_budget(
                self.params,
                memory.map_or(u64::MAX, |bytes| bytes / 4),
                space,
            ),
        }
    }

    /// The run's spillable tables: columns keep at most a quarter of the budget in memory; in
    /// a resumable run, the named ones keep their files in the work directory.
    fn spill_space(&self, work: Option<&WorkDir>) -> Arc<SpillSpace> {
        let resident = self.memory.map_or(u64::MAX, |bytes| bytes / 4);
        let space = SpillSpace::new(&self.temp_dir, resident);
        Arc::new(match work {
            Some(work) => space.with_work_dir(work.path()),
            None => space,
        })
    }

    /// Memory for the exact-duplicate map: an eighth of the budget.
    fn exact_budget(&self) -> Option<u64> {
        self.memory.map(|bytes| bytes / 8)
    }

    /// Memory for each small sort (ids' hashes): a sixteenth of the budget.
    fn sort_budget(&self) -> u64 {
        self.memory.map_or(u64::MAX, |bytes| bytes / 16)
    }

    /// Memory for the in-memory union-find of the sets of texts: a quarter of the budget (the
    /// band tables' share, free once their pairs are read). Beyond it, sets are labelled on
    /// sorted runs ([`sets`]).
    fn sets_budget(&self) -> u64 {
        self.memory.map_or(u64::MAX, |bytes| bytes / 4)
    }

    /// Candidate pairs verified at once: what a sixteenth of the budget holds at about 100 bytes
    /// a pair (the pair, its call, its exact measure, the components that group its checks).
    fn pairs_per_chunk(&self) -> usize {
        self.memory
            .map_or(usize::MAX, |bytes| ((bytes / 16 / 100) as usize).max(1024))
    }

    /// Shingle sets loaded per round of exact checks.
    fn max_sets_per_round(&self) -> usize {
        match self.memory {
            None => MAX_SETS_PER_ROUND,
            // About 2 KB per set (400 words as 32-bit hashes, plus slack).
            Some(bytes) => ((bytes / 4 / 2048) as usize).clamp(64, MAX_SETS_PER_ROUND),
        }
    }

    fn temp_error(&self, source: std::io::Error) -> Error {
        Error::Temp {
            path: self.temp_dir.clone(),
            source,
        }
    }

    /// The parameters an index must share with this deduplicator.
    pub fn index_params(&self) -> IndexParams {
        IndexParams {
            normalize: self.normalizer.options(),
            shingle: self.shingler.kind(),
            num_perm: self.num_perm(),
            seed: self.seed,
            num_bands: self.params.num_bands,
            rows_per_band: self.params.rows_per_band,
            signature_bits: 8,
            band_key_bits: 64,
            threshold: self.threshold,
            boilerplate: self.strip.map(|o| {
                let unit = match o.unit {
                    Unit::Line => "line",
                    Unit::Paragraph => "paragraph",
                };
                format!("{unit}:{}", o.min_docs)
            }),
        }
    }

    pub fn measure(&self) -> Measure {
        self.measure
    }

    /// The Jaccard similarity the LSH parameters were chosen for: the threshold under Jaccard,
    /// the lowest Jaccard of a pair at the threshold under containment.
    pub fn lsh_jaccard(&self) -> f64 {
        self.lsh_jaccard
    }

    /// The memory budget, if any ([`DedupBuilder::memory`]).
    pub fn memory(&self) -> Option<u64> {
        self.memory
    }

    /// The measure's value for two slots from their signatures (and sizes, for containment).
    fn estimate(&self, analysis: &Analysis, a: u32, b: u32) -> Result<f64, Error> {
        let j = analysis.signatures.similarity(a as usize, b as usize)?;
        Ok(match self.measure {
            Measure::Jaccard => j,
            Measure::Containment => {
                let (size_a, size_b) = analysis.pair_sizes(a, b)?;
                self.measure.from_jaccard(j, size_a, size_b)
            }
        })
    }

    /// Refuses an index whose parameters differ from this deduplicator's.
    pub fn check_index(&self, index: &Index) -> Result<(), Error> {
        if self.measure != Measure::Jaccard {
            return Err(Error::Config(ConfigError::ContainmentIndex));
        }
        Ok(index.check_params(&self.index_params())?)
    }

    /// Runs all passes over `inputs`, reporting to `sink`.
    pub fn run(&self, inputs: &mut InputSet, sink: &mut dyn Sink) -> Result<Summary, Error> {
        Ok(self.run_with(inputs, RunOptions::default(), sink)?.summary)
    }

    /// Runs all passes over `inputs` with `options`, reporting to `sink`. Fails when an input
    /// cannot be read to its end (unless the input set keeps going), and when every record was
    /// rejected.
    pub fn run_with(
        &self,
        inputs: &mut InputSet,
        options: RunOptions<'_>,
        sink: &mut dyn Sink,
    ) -> Result<RunOutput, Error> {
        tallied(inputs, sink, |inputs, sink| {
            self.run_all(inputs, options, sink)
        })
    }

    fn run_all(
        &self,
        inputs: &mut InputSet,
        options: RunOptions<'_>,
        sink: &mut dyn Sink,
    ) -> Result<RunOutput, Error> {
        let started = Instant::now();
        for index in options.against {
            self.check_index(index)?;
        }
        if let Some(counted) = self.counted(inputs, options.work_dir)? {
            let counting = started.elapsed().as_secs_f64();
            let mut output = counted.run_all(inputs, options, sink)?;
            output.summary.seconds = started.elapsed().as_secs_f64();
            output.summary.stage_seconds.count_boilerplate = counting;
            return Ok(output);
        }
        let for_index = options.collect_kept || !options.against.is_empty();
        let (analysis, tables) = self.analyse(inputs, for_index, options.work_dir, sink)?;
        let mut summary = Summary::empty(self.params, self.num_perm(), self.threshold);
        summary.resumed_docs = options
            .work_dir
            .and_then(WorkDir::resumes_after)
            .unwrap_or(0);
        summary.boilerplate_units_removed = analysis.stripped.0;
        summary.boilerplate_bytes_removed = analysis.stripped.1;
        summary.bytes_read = analysis.bytes_read;
        summary.duplicate_ids = analysis.duplicate_ids;
        summary.stage_seconds = analysis.seconds;
        let decided = self.cluster(inputs, &analysis, tables, options, sink, &mut summary)?;
        let docs = &analysis.docs;
        let index_names = index_names(options.against);
        let writing = Instant::now();
        summary.kept = if sink.wants_kept_records() || options.annotate {
            self.write_kept(inputs, docs, &decided, &index_names, sink)?
        } else {
            docs.count(|state| state != DocState::Rejected)? - decided.removed.len()
        };
        summary.stage_seconds.write = writing.elapsed().as_secs_f64();
        summary.docs_read = docs.len() as u64;
        summary.rejected = docs.count(|state| state == DocState::Rejected)?;
        summary.empty = docs.count(|state| state == DocState::Empty)?;
        summary.temp_bytes = analysis.space.bytes_on_disk() + decided.band_temp_bytes;
        summary.finish(started)?;
        Ok(RunOutput {
            summary,
            kept: decided.kept,
            boilerplate: self.boilerplate.clone(),
        })
    }

    /// Reads `inputs` and returns every distinct text with shingles as an index segment (the
    /// first copy's id), without clustering: what `index build` and `index add` store. Exact
    /// copies are counted as exact duplicates; nothing is counted as a near duplicate.
    pub fn index_segment(
        &self,
        inputs: &mut InputSet,
        sink: &mut dyn Sink,
    ) -> Result<(Summary, SegmentData), Error> {
        let output = tallied(inputs, sink, |inputs, sink| self.segment_all(inputs, sink))?;
        Ok((output.summary, output.segment))
    }

    fn segment_all(&self, inputs: &mut InputSet, sink: &mut dyn Sink) -> Result<Built, Error> {
        let started = Instant::now();
        if let Some(counted) = self.counted(inputs, None)? {
            return counted.segment_all(inputs, sink);
        }
        let (analysis, tables) = self.analyse(inputs, true, None, sink)?;
        let band_temp_bytes = tables.bytes_spilled();
        let segment =
            self.segment_of_kept(&analysis, &tables, &DocSet::new(analysis.space.clone()))?;
        drop(tables);
        let mut summary = Summary::empty(self.params, self.num_perm(), self.threshold);
        summary.bytes_read = analysis.bytes_read;
        summary.duplicate_ids = analysis.duplicate_ids;
        let docs = &analysis.docs;
        summary.docs_read = docs.len() as u64;
        summary.rejected = docs.count(|s| s == DocState::Rejected)?;
        summary.empty = docs.count(|s| s == DocState::Empty)?;
        summary.exact_duplicates = docs.count(|s| matches!(s, DocState::Exact(_)))?;
        summary.temp_bytes = analysis.space.bytes_on_disk() + band_temp_bytes;
        // Kept: the documents stored in the segment, and the empty ones (kept, never stored).
        summary.kept = segment.len() as u64 + summary.empty;
        summary.finish(started)?;
        Ok(Built { summary, segment })
    }

    /// The documents that hold a slot (first copies) and were not removed, as a segment gathered
    /// in the run's space; their band keys are read from `tables`, band by band.
    fn segment_of_kept(
        &self,
        analysis: &Analysis,
        tables: &BandTables,
        removed: &DocSet,
    ) -> Result<SegmentData, Error> {
        let space = &analysis.space;
        let temp = |e| space.error(e);
        let mut segment = SegmentData::in_space(
            self.num_perm(),
            self.params.num_bands,
            space.clone(),
            self.sort_budget(),
        );
        // Kept first copies come in input order, so in slot order: a slot's rank among them is
        // its ordinal in the segment.
        let mut kept = RankedSlots::default();
        let mut signature = vec![0u8; self.num_perm()];
        let mut removed = removed.in_order();
        for (doc, state) in analysis.docs.states().enumerate() {
            if let DocState::Unique(slot) = state?
                && !removed.contains(doc as u64).map_err(temp)?
            {
                analysis
                    .signatures
                    .read_into(slot as usize, &mut signature)?;
                let ordinal = segment
                    .push_document(&analysis.docs.id(doc)?, &signature)
                    .map_err(temp)?;
                segment
                    .push_text_hash(analysis.text_hash(slot as usize)?, ordinal)
                    .map_err(temp)?;
                let rank = kept.push(slot);
                debug_assert_eq!(rank, ordinal);
            }
        }
        for band in 0..self.params.num_bands {
            let mut failed = None;
            tables
                .for_each_record(band, |key, slot| {
                    if let (None, Some(ordinal)) = (&failed, kept.rank(slot)) {
                        failed = segment.push_band_key(band, key, ordinal).err();
                    }
                })
                .map_err(temp)?;
            if let Some(e) = failed {
                return Err(temp(e));
            }
        }
        Ok(segment)
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::{Analysis, DocState, KeepPolicy, LshParams, MIN_MEMORY};
    use crate::read::FieldPath;
    use crate::{ConfigError, DedupBuilder};

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
            .keep(KeepPolicy::Max(FieldPath::key("q")))
            .build()
            .unwrap();
        assert_eq!(dedup.fields.keep, Some(FieldPath::key("q")));
    }

    /// Issue 11: under a 1 MiB budget every table of pass 1 spills (columns, band runs, the exact
    /// map, whose late copies are resolved), and the run decides exactly as without a budget.
    #[test]
    fn issue11_a_tiny_budget_spills_every_table_and_decides_the_same() {
        use crate::read::{Format, Input, InputSet};
        use crate::report::Sink;
        use crate::synth::CorpusSpec;
        struct Quiet;
        impl Sink for Quiet {}
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let text = crate::synth::json_lines(CorpusSpec {
            docs: 6_000,
            seed: 3,
            dup_fraction: 0.5,
            mean_words: 30,
        });
        std::fs::write(&path, text).unwrap();
        let inputs = || InputSet::new(vec![Input::Path(path.clone())], Format::Jsonl, 1 << 20);
        let free = DedupBuilder::new().build().unwrap();
        let tight = DedupBuilder::new()
            .memory(MIN_MEMORY)
            .temp_dir(dir.path())
            .build()
            .unwrap();
        let (a, _) = free
            .analyse(&mut inputs().unwrap(), true, None, &mut Quiet)
            .unwrap();
        let (b, tables) = tight
            .analyse(&mut inputs().unwrap(), true, None, &mut Quiet)
            .unwrap();
        assert_eq!(a.space.bytes_on_disk(), 0);
        assert!(b.space.bytes_on_disk() > 0);
        assert!(tables.runs_spilled() > 0);
        assert!(a.late.is_empty());
        assert!(b.late.len() > 100, "late copies: {}", b.late.len());
        assert_eq!(a.distinct_texts(), b.distinct_texts());
        assert_eq!(a.duplicate_ids, b.duplicate_ids);
        // Per document, the same state up to the numbering of slots (late slots are skipped).
        let live: Vec<u32> = (0..b.signatures.len() as u32)
            .filter(|&s| !b.late.is_late(s))
            .collect();
        let dense = |s: u32| live.binary_search(&s).unwrap() as u32;
        let states = |x: &Analysis| x.docs.states().collect::<Result<Vec<_>, _>>().unwrap();
        let renumbered: Vec<DocState> = states(&b)
            .into_iter()
            .map(|s| match s {
                DocState::Unique(slot) => DocState::Unique(dense(slot)),
                DocState::Exact(slot) => DocState::Exact(dense(slot)),
                other => other,
            })
            .collect();
        assert_eq!(states(&a), renumbered);
        for (doc, state) in states(&a).iter().enumerate().step_by(7) {
            assert_eq!(a.docs.id(doc).unwrap(), b.docs.id(doc).unwrap());
            if let Some(slot) = state.slot() {
                let other = live[slot as usize] as usize;
                let slot = slot as usize;
                assert_eq!(
                    a.signatures.get(slot).unwrap(),
                    b.signatures.get(other).unwrap()
                );
                assert_eq!(a.text_hash(slot).unwrap(), b.text_hash(other).unwrap());
                assert_eq!(
                    a.location(slot as u32).unwrap(),
                    b.location(other as u32).unwrap()
                );
            }
        }
    }
}

#[cfg(test)]
mod reread_tests {
    use crate::error::Error;
    use crate::pipeline::DedupBuilder;
    use crate::read::{Format, Input, InputSet};
    use crate::report::{ClusterReport, Progress, Sink};
    use crate::synth::{Corpus, CorpusSpec};
    use crate::verify::VerifyMode;

    /// Moves the input away once the first pass has begun (its file stays open there): any
    /// later pass that opens it again fails.
    struct MovesInput {
        from: std::path::PathBuf,
        to: std::path::PathBuf,
        clusters: usize,
    }

    impl Sink for MovesInput {
        fn progress(&mut self, _progress: &Progress) {
            if self.from.exists() {
                std::fs::rename(&self.from, &self.to).unwrap();
            }
        }
        fn cluster(&mut self, _cluster: &ClusterReport<'_>) -> Result<(), Error> {
            self.clusters += 1;
            Ok(())
        }
    }

    /// Issue 12 (throughput): a compressed input (whose records cannot be read back by location) was read
    /// again whole for exact checks even when there were none to make (`--verify signature`),
    /// and a third time for the members' exact measures of exact verification, which most runs
    /// have none of. A pass with no record to fetch now reads nothing, and a pass stops after the
    /// last record it needs.
    #[test]
    fn issue12_a_run_with_no_exact_check_reads_a_compressed_input_once() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        for d in Corpus::new(CorpusSpec {
            docs: 20_000,
            seed: 5,
            dup_fraction: 0.5,
            mean_words: 30,
        }) {
            let line = d.json_line();
            writeln!(gz, "{line}").unwrap();
        }
        gz.finish().unwrap();
        let run = |verify| {
            let moved = dir.path().join("moved.jsonl.gz");
            let mut sink = MovesInput {
                from: path.clone(),
                to: moved.clone(),
                clusters: 0,
            };
            let mut inputs =
                InputSet::new(vec![Input::Path(path.clone())], Format::Jsonl, 1 << 20).unwrap();
            let dedup = DedupBuilder::new()
                .verify(verify)
                .batch(1_000, 1 << 20)
                .build()
                .unwrap();
            let result = dedup.run(&mut inputs, &mut sink);
            std::fs::rename(&moved, &path).unwrap();
            result.map(|summary| (summary, sink.clusters))
        };
        let (summary, clusters) = run(VerifyMode::Signature).unwrap();
        assert!(clusters > 1_000, "{clusters} clusters");
        assert_eq!(summary.exact_checks, 0);
        // Exact checks need the records again: the input is opened once more, and is gone.
        assert!(run(VerifyMode::Borderline).is_err());
    }
}

#[cfg(test)]
mod cancel_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::error::Error;
    use crate::pipeline::{DedupBuilder, RunOptions};
    use crate::read::{Format, Input, InputSet};
    use crate::report::{Progress, Sink};
    use crate::synth::CorpusSpec;

    /// Sets the flag when the first batch has been read, and counts the batches after it.
    struct Cancels {
        flag: Arc<AtomicBool>,
        batches: usize,
    }

    impl Sink for Cancels {
        fn progress(&mut self, _progress: &Progress) {
            self.batches += 1;
            self.flag.store(true, Ordering::Relaxed);
        }
    }

    /// Issue 13 (Ctrl-C in Python): a run whose cancel flag is set stops at the next batch with
    /// `Error::Interrupted`, in batch and streaming runs; an unset flag changes nothing.
    #[test]
    fn issue13_a_cancelled_run_stops_at_the_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let text = crate::synth::json_lines(CorpusSpec {
            docs: 5_000,
            seed: 9,
            dup_fraction: 0.5,
            mean_words: 30,
        });
        std::fs::write(&path, text).unwrap();
        let inputs = |flag: &Arc<AtomicBool>| {
            InputSet::new(vec![Input::Path(path.clone())], Format::Jsonl, 1 << 20)
                .unwrap()
                .cancel_on(flag.clone())
        };
        let batch = DedupBuilder::new().batch(500, 1 << 20).build().unwrap();
        let stream = DedupBuilder::new()
            .batch(500, 1 << 20)
            .verify(crate::verify::VerifyMode::Signature)
            .build()
            .unwrap();
        for streaming in [false, true] {
            let dedup = if streaming { &stream } else { &batch };
            let flag = Arc::new(AtomicBool::new(false));
            let mut sink = Cancels {
                flag: flag.clone(),
                batches: 0,
            };
            let result = match streaming {
                false => dedup.run(&mut inputs(&flag), &mut sink),
                true => dedup
                    .run_streaming(&mut inputs(&flag), RunOptions::default(), &mut sink)
                    .map(|run| run.summary),
            };
            assert!(matches!(result, Err(Error::Interrupted)), "{result:?}");
            assert_eq!(sink.batches, 1, "streaming: {streaming}");
        }
        let flag = Arc::new(AtomicBool::new(false));
        struct Quiet;
        impl Sink for Quiet {}
        let summary = batch.run(&mut inputs(&flag), &mut Quiet).unwrap();
        assert_eq!(summary.docs_read, 5_000);
    }
}

#[cfg(test)]
mod annotate_tests {
    use crate::error::Error;
    use crate::pipeline::{DedupBuilder, MIN_MEMORY, RunOptions};
    use crate::read::{Format, Input, InputSet};
    use crate::report::{AnnotatedRecord, ClusterReport, DuplicateKind, KeptRecord, Removal, Sink};
    use crate::synth::CorpusSpec;

    /// What a record was annotated with: its cluster, and what it duplicates.
    type Annotated = (u64, Option<u64>, Option<(String, f64, DuplicateKind)>);

    /// What a run reports, gathered.
    #[derive(Default)]
    struct Gathered {
        kept: Vec<u64>,
        removed: Vec<(u64, String, String, f64, DuplicateKind)>,
        clusters: Vec<(usize, Vec<u64>)>,
        annotated: Vec<Annotated>,
    }

    impl Sink for Gathered {
        fn wants_kept_records(&self) -> bool {
            true
        }
        fn kept(&mut self, record: &KeptRecord<'_>) -> Result<(), Error> {
            self.kept.push(record.doc.0);
            Ok(())
        }
        fn removed(&mut self, removal: &Removal<'_>) -> Result<(), Error> {
            self.removed.push((
                removal.doc.0,
                removal.id.to_string(),
                removal.duplicate_of.to_string(),
                removal.similarity,
                removal.kind,
            ));
            Ok(())
        }
        fn cluster(&mut self, cluster: &ClusterReport<'_>) -> Result<(), Error> {
            let docs = cluster.members.iter().map(|m| m.doc.0).collect();
            self.clusters.push((cluster.cluster, docs));
            Ok(())
        }
        fn annotated(&mut self, record: &AnnotatedRecord<'_>) -> Result<(), Error> {
            let duplicate = record
                .duplicate
                .map(|d| (d.of.to_string(), d.similarity, d.kind));
            self.annotated
                .push((record.doc.0, record.cluster, duplicate));
            Ok(())
        }
    }

    /// Issue 12: `--annotate` hands every record that is not rejected to the sink once, in input
    /// order: a removed one with the id it duplicates, its similarity and kind (as its removal
    /// says), every cluster member with its cluster's number, and the others with neither; under
    /// a budget that spills every table too. Nothing goes to `kept`, and the kept count is the same.
    #[test]
    fn issue12_annotate_hands_every_record_with_its_decision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let mut text = crate::synth::json_lines(CorpusSpec {
            docs: 3_000,
            seed: 9,
            dup_fraction: 0.5,
            mean_words: 30,
        });
        text.push_str("{broken\n");
        std::fs::write(&path, text).unwrap();
        let run = |memory: Option<u64>, annotate: bool| {
            let mut builder = DedupBuilder::new().temp_dir(dir.path());
            if let Some(bytes) = memory {
                builder = builder.memory(bytes);
            }
            let dedup = builder.build().unwrap();
            let mut inputs =
                InputSet::new(vec![Input::Path(path.clone())], Format::Jsonl, 1 << 20).unwrap();
            let mut gathered = Gathered::default();
            let options = RunOptions {
                annotate,
                ..RunOptions::default()
            };
            let summary = dedup
                .run_with(&mut inputs, options, &mut gathered)
                .unwrap()
                .summary;
            (gathered, summary)
        };
        let (plain, plain_summary) = run(None, false);
        for memory in [None, Some(MIN_MEMORY)] {
            let (annotated, summary) = run(memory, true);
            assert!(
                annotated.kept.is_empty(),
                "annotated records are not also kept"
            );
            assert_eq!(summary.kept, plain_summary.kept);
            assert_eq!(annotated.removed, plain.removed);
            // Every document but the rejected one, once, in input order.
            let docs: Vec<u64> = annotated.annotated.iter().map(|a| a.0).collect();
            assert_eq!(docs, (0..3_000).collect::<Vec<u64>>());
            let mut cluster_of = std::collections::HashMap::new();
            for (number, members) in &plain.clusters {
                for &doc in members {
                    cluster_of.insert(doc, *number as u64);
                }
            }
            let removed: std::collections::HashMap<u64, _> =
                plain.removed.iter().map(|r| (r.0, r)).collect();
            let mut kept = Vec::new();
            for (doc, cluster, duplicate) in &annotated.annotated {
                assert_eq!(*cluster, cluster_of.get(doc).copied(), "doc {doc}");
                match (duplicate, removed.get(doc)) {
                    (Some((of, similarity, kind)), Some(r)) => {
                        assert_eq!((of, *similarity, *kind), (&r.2, r.3, r.4));
                    }
                    (None, None) => kept.push(*doc),
                    other => panic!("doc {doc}: {other:?}"),
                }
            }
            assert_eq!(kept, plain.kept);
            assert!(plain.removed.len() > 500 && plain.clusters.len() > 300);
        }
    }
}
