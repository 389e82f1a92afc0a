//! Issue 11 (items 1 and 6): every mode equals batch where their features overlap.
//!
//! Property tests over small generated corpora (up to 40 JSON Lines records of 20 to 80 words).
//! The corpora are made of **families**: a base text from a small vocabulary of its own and copies
//! of it (byte-identical, restyled so that only normalization makes them equal, or with one or two
//! words added, dropped or replaced at the ends). Every member of a family is within Jaccard
//! [`CLIQUE_JACCARD`] of every other member (members that would not be are left out when the corpus
//! is built, with the run's own normalizer and shingler), and two families share no word, so no
//! shingle. Unrelated documents (families of one), documents shorter than a shingle, empty texts and
//! rejected lines (blank, not JSON, no text, text not a string, too large) are mixed in, in an order
//! the strategy shuffles.
//!
//! The runs use thresholds of 0.5 and 0.6, where a pair at Jaccard ≥ 0.9 is a candidate except
//! with probability below 2·10⁻¹⁰ and its signature estimate lies more than ten standard errors
//! above the threshold; a pair of different families has Jaccard 0. So every mode must find the
//! same clusters, the families, and there are no chains (which streaming, comparing a document with
//! kept documents only, resolves differently by design): this is where the features of the modes
//! overlap. On such corpora batch itself is checked against the families first
//! ([`assert_batch_removes_families`]), so a property never holds vacuously.
//!
//! The properties: streaming equals batch; a run against an index of the first half equals batch
//! over the second half (in batch and streaming mode, the index built with `index build` or
//! collected with `--update`, whose segments streaming and batch collect byte for byte alike);
//! `stats` counts what batch removes; the summary counts agree across every mode. Distributed runs
//! (one process with 1 and 2 workers, in-process) and `lines` followed by batch (against batch
//! stripping boilerplate) promise identical outputs on any corpus; they are checked on looser
//! corpora (edits anywhere, chains, pairs near the threshold, every verification mode).
//! The regression tests at the end pin the drifts these properties found, on minimal corpora.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use neardup::boilerplate::{BoilerplateOptions, Unit};
use neardup::cluster::KeepPolicy;
use neardup::error::{IndexError, Rejection};
use neardup::index::{Index, SegmentData};
use neardup::normalize::Normalizer;
use neardup::pipeline::{ClusterConfig, DistributedOutputs, RunOptions, StatsOptions};
use neardup::report::{ClusterReport, DuplicateKind, KeptRecord, Removal, Sink, Summary};
use neardup::shingle::{ShingleKind, Shingler, jaccard};
use neardup::{ConfigError, Dedup, DedupBuilder, Error, Format, Input, InputSet, VerifyMode};
use proptest::prelude::*;

/// Words in a family's vocabulary.
const VOCABULARY: u64 = 12;
/// The record size limit of every run (the generator writes one larger record).
const MAX_DOC_BYTES: usize = 2048;
/// Every pair of members of a family is at least this similar (exact shingle Jaccard).
const CLIQUE_JACCARD: f64 = 0.9;
/// Cases per property: small corpora, several runs each.
const CASES: u32 = 32;

// ---------------------------------------------------------------------------------------------
// Corpus specifications (what proptest generates and shrinks) and the corpora built from them.

/// One change to a copy's words.
#[derive(Debug, Clone)]
enum Edit {
    Append(u8),
    Prepend(u8),
    ReplaceFirst(u8),
    ReplaceLast(u8),
    /// Replace the word at `position % len` (loose corpora only).
    ReplaceAt {
        position: u8,
        word: u8,
    },
    DropFirst,
    DropLast,
}

/// One copy of a family's base text.
#[derive(Debug, Clone)]
struct CopySpec {
    /// No edits: the same words (a byte-identical text unless restyled).
    edits: Vec<Edit>,
    /// Capitals and punctuation that normalization removes: byte-different, normalized-equal.
    restyle: bool,
    /// The same id as the base (with no edits and no restyle: a byte-identical line).
    same_id: bool,
}

#[derive(Debug, Clone)]
struct FamilySpec {
    words: usize,
    seed: u64,
    copies: Vec<CopySpec>,
}

/// Records that are not members of a family of several.
#[derive(Debug, Clone)]
enum Extra {
    /// A text of its own vocabulary: a family of one.
    Singleton {
        words: usize,
        seed: u64,
    },
    /// Fewer words than a shingle: one shingle, a family of one.
    Short {
        words: usize,
    },
    EmptyText,
    PunctuationOnly,
    BlankLine,
    NotJson,
    MissingText,
    NotAString,
    TooLarge,
}

#[derive(Debug, Clone)]
struct CorpusSpec {
    families: Vec<FamilySpec>,
    extras: Vec<Extra>,
    /// Sort keys of the records in generation order (cycled): the shuffle.
    order: Vec<u16>,
    /// The input starts with a UTF-8 byte-order mark.
    bom: bool,
}

/// What one record of a corpus is.
#[derive(Debug, Clone, PartialEq)]
enum Class {
    Rejected,
    /// Kept, never matched.
    Empty,
    Text {
        family: usize,
        normalized: String,
    },
}

#[derive(Debug, Clone)]
struct Line {
    bytes: String,
    /// The id in the record (documents only).
    id: String,
    class: Class,
}

#[derive(Debug, Clone)]
struct Corpus {
    lines: Vec<Line>,
    bom: bool,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn words_of(prefix: &str, count: usize, seed: u64) -> Vec<String> {
    let mut state = seed;
    (0..count)
        .map(|_| format!("{prefix}w{}", splitmix(&mut state) % VOCABULARY))
        .collect()
}

fn apply(words: &mut Vec<String>, edit: &Edit, prefix: &str) {
    let word = |w: u8| format!("{prefix}w{}", u64::from(w) % VOCABULARY);
    match *edit {
        Edit::Append(w) => words.push(word(w)),
        Edit::Prepend(w) => words.insert(0, word(w)),
        Edit::ReplaceFirst(w) => words[0] = word(w),
        Edit::ReplaceLast(w) => *words.last_mut().expect("words") = word(w),
        Edit::ReplaceAt { position, word: w } => {
            let at = usize::from(position) % words.len();
            words[at] = word(w);
        }
        Edit::DropFirst if words.len() > 1 => {
            words.remove(0);
        }
        Edit::DropLast if words.len() > 1 => {
            words.pop();
        }
        Edit::DropFirst | Edit::DropLast => {}
    }
}

/// Capitals and punctuation on every few words: the same text after normalization.
fn restyled(words: &[String]) -> String {
    let styled: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut w = w.clone();
            if i % 3 == 0 {
                w[..1].make_ascii_uppercase();
            }
            if i % 4 == 1 {
                w.push(',');
            }
            w
        })
        .collect();
    styled.join(" ") + "."
}

fn record(id: &str, text: &str) -> String {
    serde_json::json!({"id": id, "text": text}).to_string()
}

impl Corpus {
    /// Builds the corpus of `spec`. With `clique`, a copy joins its family only when it is within
    /// [`CLIQUE_JACCARD`] of every member already in (exact Jaccard of the run's shingles).
    fn new(spec: &CorpusSpec, clique: bool) -> Corpus {
        let normalizer = Normalizer::default();
        let shingler = Shingler::new(ShingleKind::default(), 1, true);
        let mut lines: Vec<Line> = Vec::new();
        let mut next_id = 0usize;
        let mut fresh_id = || {
            next_id += 1;
            format!("d{}", next_id - 1)
        };
        let text_line = |id: String, text: String, family: usize| {
            let normalized = normalizer.normalize(&text);
            Line {
                bytes: record(&id, &text),
                id,
                class: Class::Text { family, normalized },
            }
        };
        for (f, family) in spec.families.iter().enumerate() {
            let prefix = format!("f{f}");
            let base = words_of(&prefix, family.words, family.seed);
            let base_id = fresh_id();
            let mut sets = vec![shingler.shingle_set(&normalizer.normalize(&base.join(" ")))];
            lines.push(text_line(base_id.clone(), base.join(" "), f));
            for copy in &family.copies {
                let mut words = base.clone();
                for edit in &copy.edits {
                    apply(&mut words, edit, &prefix);
                }
                let text = if copy.restyle {
                    restyled(&words)
                } else {
                    words.join(" ")
                };
                let set = shingler.shingle_set(&normalizer.normalize(&text));
                if clique && sets.iter().any(|s| jaccard(s, &set) < CLIQUE_JACCARD) {
                    continue;
                }
                sets.push(set);
                let id = if copy.same_id {
                    base_id.clone()
                } else {
                    fresh_id()
                };
                lines.push(text_line(id, text, f));
            }
        }
        let mut family = spec.families.len();
        for (e, extra) in spec.extras.iter().enumerate() {
            let id = fresh_id();
            let rejected = |bytes: String| Line {
                bytes,
                id: String::new(),
                class: Class::Rejected,
            };
            let empty = |text: &str| Line {
                bytes: record(&id, text),
                id: id.clone(),
                class: Class::Empty,
            };
            let line = match extra {
                Extra::Singleton { words, seed } => {
                    family += 1;
                    text_line(
                        id.clone(),
                        words_of(&format!("s{e}"), *words, *seed).join(" "),
                        family,
                    )
                }
                Extra::Short { words } => {
                    family += 1;
                    text_line(
                        id.clone(),
                        words_of(&format!("t{e}"), *words, e as u64).join(" "),
                        family,
                    )
                }
                Extra::EmptyText => empty(""),
                Extra::PunctuationOnly => empty("!!! ... ?"),
                Extra::BlankLine => rejected(String::new()),
                Extra::NotJson => rejected("{not json".to_string()),
                Extra::MissingText => {
                    rejected(serde_json::json!({"id": id, "body": "no text"}).to_string())
                }
                Extra::NotAString => {
                    rejected(serde_json::json!({"id": id, "text": 17}).to_string())
                }
                Extra::TooLarge => rejected(record(&id, &"x".repeat(MAX_DOC_BYTES + 100))),
            };
            lines.push(line);
        }
        let mut keyed: Vec<(u16, Line)> = lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| (spec.order[i % spec.order.len()], line))
            .collect();
        keyed.sort_by_key(|(key, _)| *key);
        Corpus {
            lines: keyed.into_iter().map(|(_, line)| line).collect(),
            bom: spec.bom,
        }
    }

    /// The records from `from` to `to` as one input file's bytes.
    /// The records from `from` to `to` as one input file's bytes, laid out as `layout` says.
    fn bytes(&self, from: usize, to: usize, layout: &Layout) -> Vec<u8> {
        let mut out = String::new();
        if self.bom && from == 0 {
            out.push('\u{feff}');
        }
        for (i, line) in self.lines[from..to].iter().enumerate() {
            out.push_str(&line.bytes);
            if i + 1 < to - from || layout.final_newline {
                out.push_str(if layout.crlf { "\r\n" } else { "\n" });
            }
        }
        out.into_bytes()
    }

    /// Writes the records from `from` to `to` as JSON Lines, one a line.
    fn write(&self, path: &Path, from: usize, to: usize) -> PathBuf {
        self.write_as(path, from, to, &Layout::default())
    }

    fn write_as(&self, path: &Path, from: usize, to: usize, layout: &Layout) -> PathBuf {
        std::fs::write(path, self.bytes(from, to, layout)).unwrap();
        path.to_path_buf()
    }

    fn family(&self, doc: usize) -> Option<usize> {
        match &self.lines[doc].class {
            Class::Text { family, .. } => Some(*family),
            _ => None,
        }
    }

    fn normalized(&self, doc: usize) -> Option<&str> {
        match &self.lines[doc].class {
            Class::Text { normalized, .. } => Some(normalized),
            _ => None,
        }
    }

    /// The first record of `doc`'s family.
    fn first_of_family(&self, doc: usize) -> usize {
        let family = self.family(doc);
        (0..self.lines.len())
            .find(|&d| self.family(d) == family)
            .expect("doc is in its family")
    }

    /// Whether an earlier record has `doc`'s normalized text.
    fn is_exact_copy(&self, doc: usize) -> bool {
        let text = self.normalized(doc);
        (0..doc).any(|d| self.normalized(d) == text)
    }

    fn count(&self, from: usize, to: usize, class: &dyn Fn(&Class) -> bool) -> u64 {
        self.lines[from..to]
            .iter()
            .filter(|l| class(&l.class))
            .count() as u64
    }

    /// Whether some document of `from..to` has text.
    fn has_text(&self, from: usize, to: usize) -> bool {
        self.count(from, to, &|c| matches!(c, Class::Text { .. })) > 0
    }
}

/// How a corpus is written and read.
#[derive(Debug, Clone)]
struct Layout {
    /// JSON Lines, or each line (the JSON text included) read as a plain-text document.
    format: Format,
    crlf: bool,
    /// The last line ends with a line break.
    final_newline: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            format: Format::Jsonl,
            crlf: false,
            final_newline: true,
        }
    }
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        prop::sample::select(vec![Format::Jsonl, Format::Lines]),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(format, crlf, final_newline)| Layout {
            format,
            crlf,
            final_newline,
        })
}

fn edit(anywhere: bool) -> BoxedStrategy<Edit> {
    let ends = prop_oneof![
        any::<u8>().prop_map(Edit::Append),
        any::<u8>().prop_map(Edit::Prepend),
        any::<u8>().prop_map(Edit::ReplaceFirst),
        any::<u8>().prop_map(Edit::ReplaceLast),
        Just(Edit::DropFirst),
        Just(Edit::DropLast),
    ];
    if anywhere {
        prop_oneof![
            1 => ends,
            2 => (any::<u8>(), any::<u8>())
                .prop_map(|(position, word)| Edit::ReplaceAt { position, word }),
        ]
        .boxed()
    } else {
        ends.boxed()
    }
}

fn copy_spec(max_edits: usize, anywhere: bool) -> impl Strategy<Value = CopySpec> {
    (
        prop::collection::vec(edit(anywhere), 0..=max_edits),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(edits, restyle, same_id)| CopySpec {
            edits,
            restyle,
            same_id,
        })
}

fn extra() -> impl Strategy<Value = Extra> {
    prop_oneof![
        3 => (20usize..=80, any::<u64>()).prop_map(|(words, seed)| Extra::Singleton { words, seed }),
        1 => (1usize..=4).prop_map(|words| Extra::Short { words }),
        1 => Just(Extra::EmptyText),
        1 => Just(Extra::PunctuationOnly),
        1 => Just(Extra::BlankLine),
        1 => Just(Extra::NotJson),
        1 => Just(Extra::MissingText),
        1 => Just(Extra::NotAString),
        1 => Just(Extra::TooLarge),
    ]
}

/// Families of up to six members, at most six families, up to four extra records.
fn corpus_spec(max_edits: usize, anywhere: bool) -> impl Strategy<Value = CorpusSpec> {
    let family = (
        20usize..=80,
        any::<u64>(),
        prop::collection::vec(copy_spec(max_edits, anywhere), 0..=5),
    )
        .prop_map(|(words, seed, copies)| FamilySpec {
            words,
            seed,
            copies,
        });
    (
        prop::collection::vec(family, 1..=6),
        prop::collection::vec(extra(), 0..=4),
        prop::collection::vec(0u16..8, 1..=48),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(families, extras, order, bom)| CorpusSpec {
            families,
            extras,
            order,
            bom,
        })
}

/// Well-separated families of cliques (see the module documentation).
fn separated_corpus() -> impl Strategy<Value = Corpus> {
    corpus_spec(2, false).prop_map(|spec| Corpus::new(&spec, true))
}

/// Families with edits anywhere and no clique filter: chains and pairs near the threshold.
fn loose_corpus() -> impl Strategy<Value = Corpus> {
    corpus_spec(6, true).prop_map(|spec| Corpus::new(&spec, false))
}

// ---------------------------------------------------------------------------------------------
// Settings and runs.

#[derive(Debug, Clone)]
struct Settings {
    threshold: f64,
    verify: VerifyMode,
    keep: KeepPolicy,
    /// Records per batch (reading, signing, streaming decisions).
    batch_docs: usize,
}

impl Settings {
    fn builder(&self) -> DedupBuilder {
        DedupBuilder::new()
            .threshold(self.threshold)
            .verify(self.verify)
            .keep(self.keep.clone())
            .batch(self.batch_docs, 1 << 20)
    }

    fn dedup(&self) -> Dedup {
        self.builder().build().unwrap()
    }

    /// The same settings for a streaming run. A streaming run cannot check a pair exactly and
    /// refuses exact and borderline verification
    /// (`issue11_streaming_refuses_exact_and_borderline_verification`): it streams on the
    /// estimate (signature verification).
    fn streaming(&self) -> Dedup {
        Settings {
            verify: VerifyMode::Signature,
            keep: self.keep.clone(),
            ..*self
        }
        .dedup()
    }
}

/// Lines that pages share (menus, footers): boilerplate once in enough documents.
const BOILERPLATE: [&str; 3] = [
    "home news sport weather contact",
    "subscribe to our newsletter for more stories",
    "copyright all rights reserved",
];

/// The corpus's lines with boilerplate lines around each text: `pattern` (cycled) picks, per
/// record, a header and a footer (or none) from [`BOILERPLATE`].
fn with_boilerplate(corpus: &Corpus, pattern: &[u8]) -> Vec<String> {
    corpus
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let Ok(serde_json::Value::Object(mut object)) =
                serde_json::from_str::<serde_json::Value>(&line.bytes)
            else {
                return line.bytes.clone();
            };
            let Some(serde_json::Value::String(text)) = object.get("text").cloned() else {
                return line.bytes.clone();
            };
            let choice = pattern[i % pattern.len()];
            let header = BOILERPLATE.get(usize::from(choice % 4));
            let footer = BOILERPLATE.get(usize::from(choice / 4 % 4));
            let text = [header.copied(), Some(text.as_str()), footer.copied()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("\n");
            object.insert("text".into(), serde_json::Value::String(text));
            serde_json::Value::Object(object).to_string()
        })
        .collect()
}

fn verify_mode() -> impl Strategy<Value = VerifyMode> {
    prop::sample::select(vec![
        VerifyMode::Signature,
        VerifyMode::Borderline,
        VerifyMode::Exact,
    ])
}

/// Settings inside the overlap: thresholds far below the families' similarity, keep first (the
/// only policy streaming has).
fn separated_settings() -> impl Strategy<Value = Settings> {
    (
        prop::sample::select(vec![0.5, 0.6]),
        verify_mode(),
        prop::sample::select(vec![1usize, 3, 1000]),
    )
        .prop_map(|(threshold, verify, batch_docs)| Settings {
            threshold,
            verify,
            keep: KeepPolicy::First,
            batch_docs,
        })
}

/// Any settings a distributed run supports.
fn any_settings() -> impl Strategy<Value = Settings> {
    (
        prop::sample::select(vec![0.5, 0.6, 0.7, 0.8]),
        verify_mode(),
        prop::sample::select(vec![KeepPolicy::First, KeepPolicy::Longest]),
        prop::sample::select(vec![1usize, 3, 1000]),
    )
        .prop_map(|(threshold, verify, keep, batch_docs)| Settings {
            threshold,
            verify,
            keep,
            batch_docs,
        })
}

/// One removal as reported.
#[derive(Debug, Clone, PartialEq)]
struct Removed {
    doc: u64,
    id: String,
    duplicate_of: String,
    duplicate_in: Option<String>,
    similarity: f64,
    kind: DuplicateKind,
}

/// Everything a run reports, and the bytes the command line would write for it.
#[derive(Debug, Default)]
struct Recorded {
    /// Asks for no kept records (as `clusters` and `--removed`-only runs do).
    no_kept_records: bool,
    kept: Vec<(u64, Vec<u8>)>,
    removed: Vec<Removed>,
    removed_lines: Vec<String>,
    clusters: Vec<String>,
    /// Per cluster, its size, then the position of the document it keeps (when of this run) and
    /// of its other members in input order.
    cluster_docs: Vec<(usize, Vec<u64>)>,
    rejected: Vec<String>,
}

impl Sink for Recorded {
    fn rejected(&mut self, rejection: &Rejection) -> Result<(), Error> {
        // As the command line's sink writes --rejected.
        #[derive(serde::Serialize)]
        struct Line<'a> {
            file: &'a str,
            line: u64,
            reason: String,
        }
        self.rejected.push(
            serde_json::to_string(&Line {
                file: &rejection.origin.file,
                line: rejection.origin.line,
                reason: rejection.reason.to_string(),
            })
            .unwrap(),
        );
        Ok(())
    }

    fn removed(&mut self, removal: &Removal<'_>) -> Result<(), Error> {
        self.removed.push(Removed {
            doc: removal.doc.0,
            id: removal.id.to_string(),
            duplicate_of: removal.duplicate_of.to_string(),
            duplicate_in: removal.duplicate_in.map(str::to_string),
            similarity: removal.similarity,
            kind: removal.kind,
        });
        self.removed_lines
            .push(serde_json::to_string(removal).unwrap());
        Ok(())
    }

    fn cluster(&mut self, cluster: &ClusterReport<'_>) -> Result<(), Error> {
        self.clusters.push(serde_json::to_string(cluster).unwrap());
        let kept = cluster.kept_doc.map(|d| d.0);
        let others = cluster
            .members
            .iter()
            .map(|m| m.doc.0)
            .filter(|&d| Some(d) != kept);
        let docs = kept.into_iter().chain(others).collect();
        self.cluster_docs.push((cluster.size, docs));
        Ok(())
    }

    fn wants_kept_records(&self) -> bool {
        !self.no_kept_records
    }

    fn kept(&mut self, record: &KeptRecord<'_>) -> Result<(), Error> {
        self.kept.push((record.doc.0, record.bytes.to_vec()));
        Ok(())
    }
}

fn lines_bytes<T: AsRef<[u8]>>(lines: impl IntoIterator<Item = T>) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line.as_ref());
        out.push(b'\n');
    }
    out
}

impl Recorded {
    /// The files `dedup -o K --removed R --clusters C --rejected J` writes: K, R, C, J.
    fn files(&self) -> [Vec<u8>; 4] {
        [
            lines_bytes(self.kept.iter().map(|(_, bytes)| bytes)),
            lines_bytes(&self.removed_lines),
            lines_bytes(&self.clusters),
            lines_bytes(&self.rejected),
        ]
    }

    fn removal_of(&self, doc: u64) -> Option<&Removed> {
        self.removed.iter().find(|r| r.doc == doc)
    }

    /// Removals as (position, id, duplicate_of, kind): what every mode must agree on.
    fn decisions(&self) -> Vec<(u64, &str, &str, DuplicateKind)> {
        self.removed
            .iter()
            .map(|r| (r.doc, r.id.as_str(), r.duplicate_of.as_str(), r.kind))
            .collect()
    }
}

fn inputs(path: &Path) -> InputSet {
    inputs_as(path, Format::Jsonl)
}

fn inputs_as(path: &Path, format: Format) -> InputSet {
    InputSet::new(vec![Input::Path(path.to_path_buf())], format, MAX_DOC_BYTES).unwrap()
}

fn batch(dedup: &Dedup, path: &Path, against: &[Index]) -> (Summary, Recorded) {
    batch_as(dedup, path, Format::Jsonl, against)
}

fn batch_as(dedup: &Dedup, path: &Path, format: Format, against: &[Index]) -> (Summary, Recorded) {
    let mut sink = Recorded::default();
    let options = RunOptions {
        against,
        collect_kept: false,
        ..RunOptions::default()
    };
    let output = dedup
        .run_with(&mut inputs_as(path, format), options, &mut sink)
        .unwrap();
    (output.summary, sink)
}

fn stream(dedup: &Dedup, path: &Path, against: &[Index]) -> (Summary, Recorded) {
    let mut sink = Recorded::default();
    let options = RunOptions {
        against,
        collect_kept: false,
        ..RunOptions::default()
    };
    let output = dedup
        .run_streaming(&mut inputs(path), options, &mut sink)
        .unwrap();
    (output.summary, sink)
}

/// `index build` of `segment` into `dir` with `dedup`'s parameters. Tried again while the new
/// index is locked: `Index::build` takes the index's write lock (an advisory `flock`) twice, and
/// between the two a child process that another test of this binary spawns at that moment can
/// still share the first lock's open file (until it executes), so the second attempt fails with
/// `IndexError::Locked` although no one else writes the index.
fn build_index(dir: &Path, dedup: &Dedup, segment: &mut SegmentData) -> Index {
    let mut attempts = 0;
    loop {
        match Index::build(dir, dedup.index_params(), segment) {
            Err(IndexError::Locked { .. }) if attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            built => return built.unwrap(),
        }
    }
}

/// Distributed runs in this process one at a time: their stop flags are process-wide.
static DISTRIBUTED: Mutex<()> = Mutex::new(());

/// One process with `workers` workers, writing every output into `dir`; returns its summary and
/// the four files (as [`Recorded::files`]).
fn distributed(
    dedup: &Dedup,
    path: &Path,
    format: Format,
    workers: usize,
    dir: &Path,
) -> (Summary, [Vec<u8>; 4]) {
    let result = try_distributed(dedup, path, format, workers, dir, None).unwrap();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    (
        result,
        [
            read("kept.jsonl"),
            read("removed.jsonl"),
            read("clusters.jsonl"),
            read("rejected.jsonl"),
        ],
    )
}

/// One process with `workers` workers writing every output into `dir` (and its checkpoints into
/// `checkpoint`, if given).
fn try_distributed(
    dedup: &Dedup,
    path: &Path,
    format: Format,
    workers: usize,
    dir: &Path,
    checkpoint: Option<&Path>,
) -> Result<Summary, Error> {
    let _one_at_a_time = DISTRIBUTED.lock().unwrap_or_else(|p| p.into_inner());
    // One process never listens, but its address is a free port all the same.
    let address = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let cluster = ClusterConfig::new(workers, 0, vec![address]).unwrap();
    let file = |name: &str| dir.join(name).display().to_string();
    let outputs = DistributedOutputs {
        kept: Some(file("kept.jsonl")),
        removed: Some(file("removed.jsonl")),
        clusters: Some(file("clusters.jsonl")),
        rejected: Some(file("rejected.jsonl")),
        checkpoint: checkpoint.map(Path::to_path_buf),
    };
    let result = dedup
        .run_distributed(
            &[Input::Path(path.to_path_buf())],
            format,
            MAX_DOC_BYTES,
            &cluster,
            &outputs,
        )?
        .expect("process 0 returns the result");
    assert!(result.unmerged.is_empty(), "{:?}", result.unmerged);
    Ok(result.summary)
}

/// A summary as JSON without what depends on time or on how the bytes were read.
fn comparable(summary: &Summary) -> serde_json::Value {
    let mut value = serde_json::to_value(summary).unwrap();
    for key in ["seconds", "docs_per_second", "stage_seconds", "bytes_read"] {
        value.as_object_mut().unwrap().remove(key);
    }
    value
}

/// The counts every mode reports: (docs read, kept, exact, near, rejected, empty).
fn counts(s: &Summary) -> [u64; 6] {
    [
        s.docs_read,
        s.kept,
        s.exact_duplicates,
        s.near_duplicates,
        s.rejected,
        s.empty,
    ]
}

/// On a corpus of separated families, batch keeps the first member of each family and removes
/// every other one as a duplicate of it: `exact` when an earlier record has its normalized text.
fn assert_batch_removes_families(corpus: &Corpus, summary: &Summary, recorded: &Recorded) {
    let mut expected = Vec::new();
    for doc in 0..corpus.lines.len() {
        if corpus.family(doc).is_none() {
            continue;
        }
        let first = corpus.first_of_family(doc);
        if first != doc {
            let kind = if corpus.is_exact_copy(doc) {
                DuplicateKind::Exact
            } else {
                DuplicateKind::Near
            };
            expected.push((
                doc as u64,
                corpus.lines[doc].id.as_str(),
                corpus.lines[first].id.as_str(),
                kind,
            ));
        }
    }
    assert_eq!(recorded.decisions(), expected, "batch on the families");
    let all = corpus.lines.len();
    assert_eq!(
        summary.rejected,
        corpus.count(0, all, &|c| *c == Class::Rejected)
    );
    assert_eq!(summary.empty, corpus.count(0, all, &|c| *c == Class::Empty));
}

/// What a run of the second half against an index of the first half names, on separated
/// families (a family that starts in the first half), as the code decides today:
///
/// - a document whose normalized text the index holds links to that text's indexed copy only;
///   any other document links to every indexed member of its family (each within
///   [`CLIQUE_JACCARD`]), whose earliest is the family's first record;
/// - batch joins a family's second-half documents into one cluster with everything they link to
///   and keeps the earliest indexed document of it; streaming decides each document alone: the
///   indexed copy of its text, or else the earliest indexed document it duplicates.
struct AgainstModel<'a> {
    corpus: &'a Corpus,
    half: usize,
    /// The index holds only the documents a batch run of the first half keeps (`--update`), not
    /// every distinct text (`index build`).
    kept_only: bool,
}

impl AgainstModel<'_> {
    /// The indexed copy of `doc`'s normalized text, if the index holds that text.
    fn indexed_copy(&self, doc: usize) -> Option<usize> {
        let text = self.corpus.normalized(doc);
        let first = (0..self.half).find(|&d| self.corpus.normalized(d) == text)?;
        let indexed = !self.kept_only || first == self.corpus.first_of_family(first);
        indexed.then_some(first)
    }

    /// The earliest indexed document `doc` links to (its own text's copy, or its family's first).
    fn linked(&self, doc: usize) -> usize {
        self.indexed_copy(doc)
            .unwrap_or_else(|| self.corpus.first_of_family(doc))
    }

    fn streaming_kept(&self, doc: usize) -> usize {
        self.linked(doc)
    }

    /// The earliest document linked to by any second-half member of `doc`'s family.
    fn batch_kept(&self, doc: usize) -> usize {
        let family = self.corpus.family(doc);
        (self.half..self.corpus.lines.len())
            .filter(|&d| self.corpus.family(d) == family)
            .map(|d| self.linked(d))
            .min()
            .expect("doc is a member")
    }

    /// Whether `doc` is `exact` in the whole run but cannot be against the index: the first
    /// second-half copy of a first-half text that the index does not hold (an index of kept
    /// documents only, whose first-half copy of the text was removed).
    fn in_gap(&self, doc: usize) -> bool {
        let text = self.corpus.normalized(doc);
        let in_first = (0..self.half).any(|d| self.corpus.normalized(d) == text);
        let in_second = (self.half..doc).any(|d| self.corpus.normalized(d) == text);
        in_first && !in_second && self.indexed_copy(doc).is_none()
    }
}

// ---------------------------------------------------------------------------------------------
// The properties.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Streaming keeps exactly the records batch keeps and removes the same ones, each as a
    /// duplicate of the same document with the same `kind`; the summary counts agree. Where batch
    /// decided nothing on exact Jaccard (no pair near the threshold, not `--verify exact`), the
    /// reported similarities, hence the removal and cluster lines, are byte-identical too.
    #[test]
    fn issue11_streaming_equals_batch_on_separated_families(
        corpus in separated_corpus(),
        settings in separated_settings(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = corpus.write(&dir.path().join("in.jsonl"), 0, corpus.lines.len());
        prop_assume!(corpus.has_text(0, corpus.lines.len()));
        let dedup = settings.dedup();
        let (batch_summary, batch) = batch(&dedup, &path, &[]);
        assert_batch_removes_families(&corpus, &batch_summary, &batch);
        let (stream_summary, streamed) = stream(&settings.streaming(), &path, &[]);

        prop_assert_eq!(&streamed.kept, &batch.kept);
        prop_assert_eq!(streamed.decisions(), batch.decisions());
        prop_assert_eq!(&streamed.rejected, &batch.rejected);
        prop_assert_eq!(counts(&stream_summary), counts(&batch_summary));
        prop_assert_eq!(
            (stream_summary.clusters, stream_summary.largest_cluster, stream_summary.duplicate_ids),
            (batch_summary.clusters, batch_summary.largest_cluster, batch_summary.duplicate_ids)
        );
        prop_assert_eq!(&stream_summary.rejected_by_reason, &batch_summary.rejected_by_reason);
        prop_assert_eq!(&stream_summary.inputs, &batch_summary.inputs);
        if settings.verify != VerifyMode::Exact && batch_summary.exact_checks == 0 {
            prop_assert_eq!(streamed.files(), batch.files());
        }
    }

    /// `--against`: an index of the first half (`index build`: every distinct text; or `--update`:
    /// the documents a batch run of the first half keeps), then the second half run against it,
    /// in batch and in streaming mode. On separated families:
    ///
    /// - it removes from the second half exactly what batch on the whole corpus removes from it,
    ///   and keeps the same records; the counts are the whole run's counts over the second half,
    ///   and the removals of a family that has first-half members name an indexed document
    ///   (`duplicate_in`, `indexed_duplicates`);
    /// - for a family that starts in the second half, `duplicate_of` and `kind` are batch's;
    /// - for a family that starts in the first half, `duplicate_of` names what [`AgainstModel`]
    ///   says: the family's first record (batch's choice) except where the index holds the
    ///   document's own text at another first-half record (`index build` indexes every distinct
    ///   text);
    /// - `kind` is batch's (a copy of a text the index holds is `exact`, whichever indexed
    ///   document its cluster keeps), except in the gap of an index of kept documents only
    ///   ([`AgainstModel::in_gap`]): a first second-half copy of a first-half text that was
    ///   removed is `exact` in the whole run, but the index does not hold its text. Such
    ///   documents lie outside the overlap: their kind is not compared. Against an index of every
    ///   distinct text (`index build`) the exact duplicates are the whole run's.
    #[test]
    fn issue11_against_an_index_of_the_first_half_removes_what_batch_removes(
        corpus in separated_corpus(),
        settings in separated_settings(),
        split in 0.2f64..0.8,
        index_kept_only in any::<bool>(),
    ) {
        let all = corpus.lines.len();
        prop_assume!(all >= 2);
        let half = ((all as f64 * split) as usize).clamp(1, all - 1);
        prop_assume!(corpus.has_text(0, half) && corpus.has_text(half, all));
        let dir = tempfile::tempdir().unwrap();
        let whole = corpus.write(&dir.path().join("whole.jsonl"), 0, all);
        let first = corpus.write(&dir.path().join("first.jsonl"), 0, half);
        let second = corpus.write(&dir.path().join("second.jsonl"), half, all);
        let dedup = settings.dedup();
        let (whole_summary, whole_run) = batch(&dedup, &whole, &[]);
        assert_batch_removes_families(&corpus, &whole_summary, &whole_run);

        let index_dir = dir.path().join("index");
        let mut segment = if index_kept_only {
            let options = RunOptions { collect_kept: true, ..RunOptions::default() };
            let output = dedup
                .run_with(&mut inputs(&first), options, &mut Recorded::default())
                .unwrap();
            // `--update` in streaming mode collects the same documents, byte for byte.
            let streamed = settings
                .streaming()
                .run_streaming(&mut inputs(&first), options, &mut Recorded::default())
                .unwrap();
            let built = |name: &str, segment: &mut SegmentData| {
                let dir = dir.path().join(name);
                build_index(&dir, &dedup, segment);
                std::fs::read(dir.join("seg-000001.nds")).unwrap()
            };
            // Each built twice: the second build of a run's segment is the first build's index.
            let streamed_bytes = built("streamed", &mut streamed.kept.expect("collected"));
            let mut kept = output.kept.expect("collected");
            let batch_bytes = built("batch", &mut kept);
            prop_assert!(
                streamed_bytes == batch_bytes,
                "streaming and batch collect other kept segments"
            );
            let batch_dir = dir.path().join("batch");
            let mut copy = SegmentData::new(dedup.num_perm(), dedup.params().num_bands);
            Index::open(&batch_dir).unwrap().segments()[0].copy_into(&mut copy).unwrap();
            copy
        } else {
            dedup
                .index_segment(&mut inputs(&first), &mut Recorded::default())
                .unwrap()
                .1
        };
        let index = build_index(&index_dir, &dedup, &mut segment);
        let indexes = [index];
        let index_name = index_dir.display().to_string();
        let offset = half as u64;
        let model = AgainstModel {
            corpus: &corpus,
            half,
            kept_only: index_kept_only,
        };
        for streaming in [false, true] {
            let mode = if streaming { "streaming" } else { "batch" };
            let (summary, run) = if streaming {
                stream(&settings.streaming(), &second, &indexes)
            } else {
                batch(&dedup, &second, &indexes)
            };
            // The same records kept and removed.
            let kept: Vec<(u64, Vec<u8>)> =
                run.kept.iter().map(|(d, b)| (d + offset, b.clone())).collect();
            let whole_kept: Vec<(u64, Vec<u8>)> =
                whole_run.kept.iter().filter(|(d, _)| *d >= offset).cloned().collect();
            prop_assert_eq!(kept, whole_kept, "{} against the index: kept", mode);
            let removed: Vec<u64> = run.removed.iter().map(|r| r.doc + offset).collect();
            let whole_removed: Vec<u64> =
                whole_run.removed.iter().map(|r| r.doc).filter(|&d| d >= offset).collect();
            prop_assert_eq!(&removed, &whole_removed, "{} against the index: removed", mode);

            // Counts over the second half.
            let second_half_exact = whole_run
                .removed
                .iter()
                .filter(|r| r.doc >= offset && r.kind == DuplicateKind::Exact)
                .count() as u64;
            prop_assert_eq!(summary.docs_read, (all - half) as u64);
            prop_assert_eq!(summary.kept, kept_len(&whole_run, offset));
            prop_assert_eq!(
                summary.exact_duplicates + summary.near_duplicates,
                whole_removed.len() as u64
            );
            prop_assert!(summary.exact_duplicates <= second_half_exact);
            if !index_kept_only {
                prop_assert_eq!(summary.exact_duplicates, second_half_exact, "{}", mode);
            }
            prop_assert_eq!(summary.rejected, corpus.count(half, all, &|c| *c == Class::Rejected));
            prop_assert_eq!(summary.empty, corpus.count(half, all, &|c| *c == Class::Empty));

            let mut indexed = 0u64;
            for removal in &run.removed {
                let doc = (removal.doc + offset) as usize;
                let whole = whole_run.removal_of(doc as u64).expect("removed in the whole run");
                if corpus.first_of_family(doc) >= half {
                    prop_assert_eq!(&removal.duplicate_of, &whole.duplicate_of, "{} doc {}", mode, doc);
                    prop_assert_eq!(removal.duplicate_in.as_deref(), None);
                    prop_assert_eq!(removal.kind, whole.kind, "{} doc {}", mode, doc);
                    continue;
                }
                indexed += 1;
                prop_assert_eq!(removal.duplicate_in.as_deref(), Some(index_name.as_str()));
                let kept = if streaming {
                    model.streaming_kept(doc)
                } else {
                    model.batch_kept(doc)
                };
                prop_assert_eq!(
                    &removal.duplicate_of, &corpus.lines[kept].id, "{} doc {}", mode, doc
                );
                if !model.in_gap(doc) {
                    prop_assert_eq!(removal.kind, whole.kind, "{} doc {}", mode, doc);
                }
            }
            prop_assert_eq!(summary.indexed_duplicates, indexed);
        }
    }

    /// `stats` at the run's threshold counts what batch removes: exact copies, near duplicates,
    /// clusters and the largest one, its top clusters are batch's (the document batch keeps
    /// first, under `--keep first` or `longest`, then up to five other members in input order),
    /// and its candidate pairs and their histogram are batch's.
    #[test]
    fn issue11_stats_counts_equal_batch_counts(
        corpus in separated_corpus(),
        settings in separated_settings(),
        keep_longest in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = corpus.write(&dir.path().join("in.jsonl"), 0, corpus.lines.len());
        prop_assume!(corpus.has_text(0, corpus.lines.len()));
        let settings = match keep_longest {
            true => Settings { keep: KeepPolicy::Longest, ..settings },
            false => settings,
        };
        let dedup = settings.dedup();
        let (summary, recorded) = batch(&dedup, &path, &[]);
        if !keep_longest {
            assert_batch_removes_families(&corpus, &summary, &recorded);
        }
        let options = StatsOptions {
            thresholds: vec![settings.threshold],
            ..StatsOptions::default()
        };
        let stats = dedup.stats(&mut inputs(&path), &options, &mut Recorded::default()).unwrap();
        prop_assert_eq!(stats.near.len(), 1);
        let near = &stats.near[0];
        prop_assert_eq!(
            [stats.docs_read, stats.exact_duplicates, near.near_duplicates, near.removed, stats.rejected, stats.empty],
            [summary.docs_read, summary.exact_duplicates, summary.near_duplicates,
             summary.exact_duplicates + summary.near_duplicates, summary.rejected, summary.empty]
        );
        prop_assert_eq!(
            (near.clusters, near.largest_cluster, stats.duplicate_ids),
            (summary.clusters, summary.largest_cluster, summary.duplicate_ids)
        );
        prop_assert_eq!(stats.candidate_pairs, summary.candidate_pairs);
        prop_assert_eq!(&stats.candidate_similarity_histogram, &summary.candidate_similarity_histogram);
        prop_assert_eq!(&stats.rejected_by_reason, &summary.rejected_by_reason);
        prop_assert_eq!(&stats.inputs, &summary.inputs);
        let top: Vec<(usize, Vec<u64>)> = recorded
            .cluster_docs
            .iter()
            .take(options.top)
            .map(|(size, docs)| (*size, docs.iter().copied().take(6).collect()))
            .collect();
        let stats_top: Vec<(usize, Vec<u64>)> = stats
            .top_clusters
            .iter()
            .map(|c| (c.size as usize, c.docs.iter().map(|d| d.0).collect()))
            .collect();
        prop_assert_eq!(stats_top, top);
    }

    /// A distributed run of one process, with 1 and 2 workers, writes byte-identical kept records,
    /// removals, clusters and rejections to batch's, with the same summary, on any corpus
    /// (chains and pairs near the threshold included; JSON Lines or plain lines, CRLF, no final
    /// line break) and any settings it supports.
    #[test]
    fn issue11_distributed_outputs_are_byte_identical_to_batch(
        corpus in loose_corpus(),
        settings in any_settings(),
        layout in layout(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = corpus.write_as(&dir.path().join("in.txt"), 0, corpus.lines.len(), &layout);
        let dedup = settings.dedup();
        let (summary, recorded) = batch_as(&dedup, &path, layout.format, &[]);
        let expected = recorded.files();
        for workers in [1, 2] {
            let out = dir.path().join(format!("workers-{workers}"));
            std::fs::create_dir(&out).unwrap();
            let (distributed_summary, files) =
                distributed(&dedup, &path, layout.format, workers, &out);
            for (name, (got, want)) in ["kept", "removed", "clusters", "rejected"]
                .iter()
                .zip(files.iter().zip(&expected))
            {
                prop_assert!(
                    got == want,
                    "{} differs with {} workers:\n{}\nbatch:\n{}",
                    name, workers, String::from_utf8_lossy(got), String::from_utf8_lossy(want)
                );
            }
            prop_assert_eq!(comparable(&distributed_summary), comparable(&summary), "{} workers", workers);
        }
    }

    /// `lines` then batch equals batch stripping the same boilerplate: `neardup lines` writes each
    /// record with its boilerplate lines removed, and a plain batch run of what it wrote makes the
    /// same decisions (removal and cluster lines byte-identical, same counts) as one batch run that
    /// strips boilerplate before comparing, which removes the same units and bytes; `stats` counts
    /// the same distinct boilerplate units. On any corpus and settings but `--keep longest`,
    /// which measures the text as read (boilerplate included), so not the same text in both.
    #[test]
    fn issue11_lines_then_batch_equals_batch_stripping_boilerplate(
        corpus in loose_corpus(),
        settings in any_settings().prop_map(|s| Settings { keep: KeepPolicy::First, ..s }),
        pattern in prop::collection::vec(0u8..16, 1..=8),
        min_docs in 2u32..=4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pages.jsonl");
        std::fs::write(&path, lines_bytes(with_boilerplate(&corpus, &pattern))).unwrap();
        let options = BoilerplateOptions { min_docs, unit: Unit::Line };
        let stripping = settings.builder().strip_boilerplate(options).build().unwrap();
        let (stripped_summary, stripped) = batch(&stripping, &path, &[]);

        let mut written = Recorded::default();
        let lines = stripping.strip_records(&mut inputs(&path), &mut written).unwrap();
        let cleaned = dir.path().join("cleaned.jsonl");
        std::fs::write(&cleaned, written.files()[0].clone()).unwrap();
        prop_assert_eq!(&written.rejected, &stripped.rejected);
        prop_assert_eq!(
            [lines.docs_read, lines.rejected, lines.docs_written, lines.units_removed, lines.bytes_removed],
            [stripped_summary.docs_read, stripped_summary.rejected,
             stripped_summary.docs_read - stripped_summary.rejected,
             stripped_summary.boilerplate_units_removed, stripped_summary.boilerplate_bytes_removed]
        );
        prop_assert_eq!(&lines.rejected_by_reason, &stripped_summary.rejected_by_reason);

        let (summary, plain) = batch(&settings.dedup(), &cleaned, &[]);
        prop_assert_eq!(&plain.removed_lines, &stripped.removed_lines);
        prop_assert_eq!(&plain.clusters, &stripped.clusters);
        prop_assert_eq!(
            [summary.kept, summary.exact_duplicates, summary.near_duplicates, summary.empty,
             summary.clusters, summary.largest_cluster, summary.duplicate_ids],
            [stripped_summary.kept, stripped_summary.exact_duplicates,
             stripped_summary.near_duplicates, stripped_summary.empty, stripped_summary.clusters,
             stripped_summary.largest_cluster, stripped_summary.duplicate_ids]
        );

        let stats_options = StatsOptions {
            thresholds: vec![settings.threshold],
            boilerplate: options,
            ..StatsOptions::default()
        };
        let stats = settings
            .dedup()
            .stats(&mut inputs(&path), &stats_options, &mut Recorded::default())
            .unwrap();
        prop_assert_eq!(stats.boilerplate.distinct_boilerplate_units, lines.boilerplate_units);
    }

    /// The summary counts (documents read, kept, exact and near duplicates, rejected, empty)
    /// agree across batch, streaming, `stats`, a distributed run, and a batch run of the first
    /// half followed by a run of the second half against the index of what it kept (`--update`
    /// then `--against`), which add up to the whole run's counts (exact and near together: a
    /// second-half copy of a first-half document that was removed is `exact` in the whole run
    /// and `near` against the index, which holds only kept documents).
    #[test]
    fn issue11_summary_counts_agree_across_modes(
        corpus in separated_corpus(),
        settings in separated_settings(),
        split in 0.2f64..0.8,
    ) {
        let all = corpus.lines.len();
        prop_assume!(all >= 2);
        let half = ((all as f64 * split) as usize).clamp(1, all - 1);
        prop_assume!(corpus.has_text(0, half) && corpus.has_text(half, all));
        let dir = tempfile::tempdir().unwrap();
        let whole = corpus.write(&dir.path().join("whole.jsonl"), 0, all);
        let dedup = settings.dedup();
        let (expected, recorded) = batch(&dedup, &whole, &[]);
        assert_batch_removes_families(&corpus, &expected, &recorded);
        let want = counts(&expected);

        let mut no_kept = Recorded { no_kept_records: true, ..Recorded::default() };
        let summary = dedup.run(&mut inputs(&whole), &mut no_kept).unwrap();
        prop_assert_eq!(counts(&summary), want, "batch without kept records");
        prop_assert_eq!(no_kept.decisions(), recorded.decisions());
        prop_assert_eq!(counts(&stream(&settings.streaming(), &whole, &[]).0), want, "streaming");
        let options = StatsOptions { thresholds: vec![settings.threshold], ..StatsOptions::default() };
        let stats = dedup.stats(&mut inputs(&whole), &options, &mut Recorded::default()).unwrap();
        prop_assert_eq!(
            [stats.docs_read, stats.docs_read - stats.rejected - stats.near[0].removed,
             stats.exact_duplicates, stats.near[0].near_duplicates, stats.rejected, stats.empty],
            want, "stats"
        );
        let out = dir.path().join("distributed");
        std::fs::create_dir(&out).unwrap();
        prop_assert_eq!(counts(&distributed(&dedup, &whole, Format::Jsonl, 1, &out).0), want, "distributed");

        let first = corpus.write(&dir.path().join("first.jsonl"), 0, half);
        let second = corpus.write(&dir.path().join("second.jsonl"), half, all);
        let options = RunOptions { collect_kept: true, ..RunOptions::default() };
        let first_run = dedup.run_with(&mut inputs(&first), options, &mut Recorded::default()).unwrap();
        let index = build_index(
            &dir.path().join("index"),
            &dedup,
            &mut first_run.kept.expect("collected"),
        );
        let (second_summary, _) = batch(&dedup, &second, &[index]);
        let [read, kept, exact, near, rejected, empty] = counts(&first_run.summary);
        let [read2, kept2, exact2, near2, rejected2, empty2] = counts(&second_summary);
        prop_assert_eq!(
            [read + read2, kept + kept2, exact + exact2 + near + near2, rejected + rejected2, empty + empty2],
            [want[0], want[1], want[2] + want[3], want[4], want[5]],
            "--update, then --against"
        );
    }
}

/// Records of the whole run kept at or after `offset`.
fn kept_len(run: &Recorded, offset: u64) -> u64 {
    run.kept.iter().filter(|(d, _)| *d >= offset).count() as u64
}

// ---------------------------------------------------------------------------------------------
// Regressions: the drifts the properties found, on minimal corpora.

/// The minimal corpus of the first two drifts: a byte-order mark, one document, one blank line.
fn bom_and_blank_line(dir: &Path) -> PathBuf {
    let text = "\u{feff}".to_string()
        + &record("d0", &words_of("f0w", 20, 1).join(" "))
        + "\n\n"
        + &record("d1", &words_of("f0w", 20, 1).join(" "))
        + "\n{not json\n";
    let path = dir.join("in.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// Issue 11: a distributed run's summary counted no rejections by reason (`rejected_by_reason`
/// was empty where one process gives `{"blank_line": 1}`) and no byte-order marks; now it counts
/// both as one process does, also when the signing is loaded from checkpoints.
#[test]
fn issue11_distributed_summary_counts_rejections_by_reason_and_byte_order_marks() {
    let dir = tempfile::tempdir().unwrap();
    let path = bom_and_blank_line(dir.path());
    let dedup = DedupBuilder::new().build().unwrap();
    let (expected, _) = batch(&dedup, &path, &[]);
    assert_eq!(expected.inputs.byte_order_marks, 1);
    assert_eq!(expected.rejected_by_reason.len(), 2);
    let without_checkpoints = |summary: &Summary| {
        let mut value = comparable(summary);
        value.as_object_mut().unwrap().remove("checkpointed_docs");
        value
    };
    for workers in [1, 2] {
        let out = dir.path().join(format!("workers-{workers}"));
        let checkpoints = out.join("checkpoints");
        std::fs::create_dir(&out).unwrap();
        for run in ["signs", "loads its checkpoints"] {
            let summary = try_distributed(
                &dedup,
                &path,
                Format::Jsonl,
                workers,
                &out,
                Some(&checkpoints),
            )
            .unwrap();
            assert_eq!(
                without_checkpoints(&summary),
                without_checkpoints(&expected),
                "{workers} workers, the run that {run}"
            );
            assert_eq!(
                summary.checkpointed_docs,
                if run == "signs" { 0 } else { summary.docs_read }
            );
        }
    }
}

/// Issue 11: a distributed run whose every record was rejected wrote its outputs and succeeded;
/// now it fails before writing anything, with the error one process gives
/// ([`Error::AllRejected`]: the most common reason and its first record).
#[test]
fn issue11_distributed_fails_like_batch_when_every_record_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.jsonl");
    let lines = [
        "{not json",
        r#"{"id":"a"}"#,
        "",
        r#"{"id":"b"}"#,
        "{also not json",
    ];
    std::fs::write(&path, lines.map(|l| format!("{l}\n")).concat()).unwrap();
    let dedup = DedupBuilder::new().build().unwrap();
    let expected = dedup
        .run(&mut inputs(&path), &mut Recorded::default())
        .unwrap_err();
    assert!(matches!(expected, Error::AllRejected(_)), "{expected}");
    for workers in [1, 2] {
        let out = dir.path().join(format!("workers-{workers}"));
        std::fs::create_dir(&out).unwrap();
        let error = try_distributed(&dedup, &path, Format::Jsonl, workers, &out, None).unwrap_err();
        assert!(matches!(error, Error::AllRejected(_)), "{error}");
        assert_eq!(error.to_string(), expected.to_string(), "{workers} workers");
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            0,
            "nothing written"
        );
    }
}

/// Issue 11: under `strict`, a distributed run failed with "distributed run: a record was
/// rejected: {json}" where one process fails with the rejection itself; now it fails as one
/// process does, with the first bad record.
#[test]
fn issue11_distributed_strict_fails_with_the_first_bad_record_like_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.jsonl");
    let good = |id: &str, seed: u64| record(id, &words_of("s", 30, seed).join(" "));
    let lines = [
        good("a", 1),
        "{not json".into(),
        good("b", 2),
        good("c", 3),
        String::new(),
    ];
    std::fs::write(&path, lines.map(|l| l + "\n").concat()).unwrap();
    let dedup = DedupBuilder::new().strict(true).build().unwrap();
    let expected = dedup
        .run(&mut inputs(&path), &mut Recorded::default())
        .unwrap_err();
    assert!(matches!(expected, Error::Rejected(_)), "{expected}");
    for workers in [1, 2] {
        let out = dir.path().join(format!("workers-{workers}"));
        std::fs::create_dir(&out).unwrap();
        let error = try_distributed(&dedup, &path, Format::Jsonl, workers, &out, None).unwrap_err();
        assert!(matches!(error, Error::Rejected(_)), "{error}");
        assert_eq!(error.to_string(), expected.to_string(), "{workers} workers");
    }
}

/// Issue 11: streaming against an index removed a document as a duplicate of the indexed document
/// with the best signature estimate, where batch (against the index, and on the whole corpus)
/// names the earliest one; now streaming names the earliest too. The minimal corpus: the index
/// holds `a` and `b`, a near copy of `a`; the new document `c` is nearer `b` than `a`.
#[test]
fn issue11_streaming_against_an_index_names_the_earliest_indexed_duplicate_as_batch_does() {
    let dir = tempfile::tempdir().unwrap();
    let a = words_of("w", 40, 7);
    let mut b = a.clone();
    *b.last_mut().unwrap() = "other".into();
    let mut c = b.clone();
    c.push("more".into());
    let lines = |docs: &[(&str, &Vec<String>)]| -> String {
        docs.iter()
            .map(|(id, words)| record(id, &words.join(" ")) + "\n")
            .collect()
    };
    let first = dir.path().join("first.jsonl");
    std::fs::write(&first, lines(&[("a", &a), ("b", &b)])).unwrap();
    let second = dir.path().join("second.jsonl");
    std::fs::write(&second, lines(&[("c", &c)])).unwrap();
    let dedup = DedupBuilder::new().threshold(0.6).build().unwrap();
    let (_, mut segment) = dedup
        .index_segment(&mut inputs(&first), &mut Recorded::default())
        .unwrap();
    let index = [build_index(&dir.path().join("index"), &dedup, &mut segment)];
    let (_, batch_run) = batch(&dedup, &second, &index);
    // A streaming run verifies on the estimate; the index is the same.
    let streaming = DedupBuilder::new()
        .threshold(0.6)
        .verify(VerifyMode::Signature)
        .build()
        .unwrap();
    let (_, streamed) = stream(&streaming, &second, &index);
    assert_eq!(batch_run.decisions(), [(0, "c", "a", DuplicateKind::Near)]);
    assert_eq!(streamed.decisions(), batch_run.decisions());
    assert_eq!(streamed.files(), batch_run.files());
}

/// JSON Lines of `(id, words)` records.
fn records_of(docs: &[(&str, &Vec<String>)]) -> String {
    docs.iter()
        .map(|(id, words)| record(id, &words.join(" ")) + "\n")
        .collect()
}

/// Issue 11: against an `index build` index, a byte-identical copy of an indexed document was
/// `near` when its cluster kept another indexed document, where the whole run calls it `exact`
/// (batch looked only at the copy's link to the kept document). Now a copy of a text the index
/// holds is `exact` whichever document its cluster keeps, as the decision core says. The minimal
/// corpus: the first half `a` (40 words) and `b` (`a` with its last word replaced), the second
/// `c` (a copy of `b`) and `d` (`a` and one more word). The index holds `a` and `b`; `c` links to
/// `b` exactly, `d` to both, and their cluster keeps `a`.
#[test]
fn issue11_a_copy_of_an_indexed_text_is_exact_whichever_indexed_document_its_cluster_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let a = words_of("w", 40, 7);
    let mut b = a.clone();
    *b.last_mut().unwrap() = "other".into();
    let c = b.clone();
    let mut d = a.clone();
    d.push("more".into());
    let first = dir.path().join("first.jsonl");
    std::fs::write(&first, records_of(&[("a", &a), ("b", &b)])).unwrap();
    let second = dir.path().join("second.jsonl");
    std::fs::write(&second, records_of(&[("c", &c), ("d", &d)])).unwrap();
    let whole = dir.path().join("whole.jsonl");
    std::fs::write(
        &whole,
        records_of(&[("a", &a), ("b", &b), ("c", &c), ("d", &d)]),
    )
    .unwrap();
    let dedup = DedupBuilder::new().build().unwrap();
    let (_, whole_run) = batch(&dedup, &whole, &[]);
    assert_eq!(
        whole_run.decisions(),
        [
            (1, "b", "a", DuplicateKind::Near),
            (2, "c", "a", DuplicateKind::Exact),
            (3, "d", "a", DuplicateKind::Near)
        ]
    );
    let (_, mut segment) = dedup
        .index_segment(&mut inputs(&first), &mut Recorded::default())
        .unwrap();
    let index = [build_index(&dir.path().join("index"), &dedup, &mut segment)];
    let (summary, against) = batch(&dedup, &second, &index);
    assert_eq!(
        against.decisions(),
        [
            (0, "c", "a", DuplicateKind::Exact),
            (1, "d", "a", DuplicateKind::Near)
        ]
    );
    assert_eq!((summary.exact_duplicates, summary.near_duplicates), (1, 1));
    assert_eq!(summary.indexed_duplicates, 2);
    // The similarities to `a` are the whole run's (estimates of the same signatures).
    let similarities = |run: &Recorded, from: usize| -> Vec<f64> {
        run.removed[from..].iter().map(|r| r.similarity).collect()
    };
    assert_eq!(similarities(&against, 0), similarities(&whole_run, 1));
    // Streaming against the index names the indexed copy of `c`'s text itself.
    let streaming = DedupBuilder::new()
        .verify(VerifyMode::Signature)
        .build()
        .unwrap();
    let (_, streamed) = stream(&streaming, &second, &index);
    assert_eq!(
        streamed.decisions(),
        [
            (0, "c", "b", DuplicateKind::Exact),
            (1, "d", "a", DuplicateKind::Near)
        ]
    );
}

/// Issue 11: a streaming run ignored the verification mode: `exact` verification ran and decided
/// every pair on the signature estimate. Now a streaming run asks the decision core what it can
/// honour: it cannot check a pair exactly (the texts of kept documents are gone), so it refuses
/// `exact` and `borderline` with a typed error, as the command line does (issue 10); under
/// `signature` it says so (no exact checks). Its candidates' similarities now fill the histogram
/// (it stayed empty).
#[test]
fn issue11_streaming_refuses_exact_and_borderline_verification() {
    let dir = tempfile::tempdir().unwrap();
    // A base of 60 words and copies with one word in the middle replaced: Jaccard about 0.84,
    // inside the margin around 0.8 where a batch run checks pairs exactly.
    let base = words_of("v", 60, 11);
    let copies: Vec<Vec<String>> = (0..6)
        .map(|i| {
            let mut words = base.clone();
            words[20 + 3 * i] = format!("changed{i}");
            words
        })
        .collect();
    let ids: Vec<String> = (0..copies.len()).map(|i| format!("c{i}")).collect();
    let mut docs: Vec<(&str, &Vec<String>)> = vec![("base", &base)];
    docs.extend(ids.iter().map(String::as_str).zip(&copies));
    let path = dir.path().join("in.jsonl");
    std::fs::write(&path, records_of(&docs)).unwrap();
    let with = |verify| DedupBuilder::new().verify(verify).build().unwrap();

    let (batch_summary, _) = batch(&with(VerifyMode::Borderline), &path, &[]);
    assert!(batch_summary.exact_checks > 0, "{batch_summary:?}");
    let (signature, _) = stream(&with(VerifyMode::Signature), &path, &[]);
    assert!(signature.near_duplicates > 0);
    assert_eq!(signature.exact_checks, 0);
    let histogram: u64 = signature.candidate_similarity_histogram.iter().sum();
    assert_eq!(histogram, signature.candidate_pairs);
    assert!(histogram > 0);

    // Borderline pairs are here, and a streaming run would decide them on the estimate: it
    // refuses to promise checks it cannot make.
    for verify in [VerifyMode::Exact, VerifyMode::Borderline] {
        let refused = with(verify)
            .run_streaming(
                &mut inputs(&path),
                RunOptions::default(),
                &mut Recorded::default(),
            )
            .unwrap_err();
        assert!(
            matches!(refused, Error::Config(ConfigError::StreamVerify)),
            "{verify:?}: {refused}"
        );
    }
}
