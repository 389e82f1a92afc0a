//! # neardup: exact and near-duplicate detection for text corpora
//!
//! neardup reads documents (JSON Lines, plain text lines, or a directory of files; gzip and zstd
//! detected by magic bytes; stdin), finds exact and near duplicates, and reports clusters, the
//! deduplicated corpus and how redundant the corpus was.
//!
//! ## Data flow
//!
//! ```text
//!  read ─► normalize ─► exact hash ─┬─(first copy)─► shingle ─► minhash ─► lsh ─► verify ─► cluster ─► report
//!  Frame   Normalizer    u128        └─(copy)──────────────────────────────────────────────┘  UnionFind   Sink
//! ```
//!
//! - [`read`]: [`read::InputSet`] frames inputs into [`read::Frame`]s in bounded batches;
//!   [`read::Parser`] turns a record into a [`read::Document`] or a [`error::RejectReason`].
//! - [`normalize`]: [`normalize::Normalizer`]: NFKC, lowercase, punctuation out, whitespace collapsed.
//! - [`shingle`]: [`shingle::Shingler`] hashes word n-grams or character k-grams to `u64`.
//! - [`minhash`]: [`minhash::MinHasher`] signs a shingle list; [`minhash::SignatureStore`] keeps
//!   every distinct text's signature in one flat buffer.
//! - [`lsh`]: [`lsh::LshParams`] (bands × rows, chosen from the threshold) cuts signatures into
//!   [`lsh::BandKey`]s; [`lsh::BandTables`] sorts band records into candidate pairs.
//! - [`verify`]: what checking a candidate pair means ([`verify::VerifyMode`]: on the signature
//!   estimate, or on exact Jaccard for pairs near the threshold (default) or for all pairs;
//!   [`verify::Measure`]) and the exact check itself ([`verify::exact_similarities`]).
//! - [`cluster`]: [`cluster::UnionFind`] joins verified pairs; [`cluster::KeepPolicy`] picks the
//!   member each cluster keeps.
//! - [`report`]: everything leaves through a [`report::Sink`]; a run returns a [`report::Summary`].
//! - [`pipeline`]: [`DedupBuilder`] validates settings once and builds an immutable [`Dedup`] that
//!   runs the stages above ([`Dedup::run`], or [`Dedup::run_with`] against indexes). Parallel
//!   stages use rayon and collect in input order, so output is the same whatever the thread count.
//!   [`Dedup::run_streaming`] decides each document as it arrives instead (first seen wins).
//!   Every front-end (batch, streaming, `--against`, `stats`, distributed) takes its rules from
//!   one decision core inside `pipeline`: which bucket members pair, the call on a pair, cluster
//!   assembly and order, the kept document, each member's `kind` and similarity, the counts.
//! - [`boilerplate`]: lines repeated across documents ([`boilerplate::UnitCounter`],
//!   [`boilerplate::Boilerplate`]), stripped before shingling or by `neardup lines`;
//!   [`verify::Measure`] adds containment for stories inside pages.
//! - [`html`]: the self-contained `--report` page.
//! - [`pipeline::ClusterConfig`] and [`Dedup::run_distributed`]: the same job over several
//!   processes on timely dataflow; [`parts`] merges their part files.
//! - [`index`]: [`index::Index`], a persistent, appendable, checksummed index of documents seen
//!   before (segments of signatures, sorted band tables and ids), for `--against` and `--update`.
//!
//! Exact duplicates (same 128-bit hash of the normalized text) are found before any MinHash work;
//! only the first copy of a text is signed.
//!
//! ## Nothing is lost
//!
//! Every record read ends as kept, removed (with the kept document's id and the similarity) or
//! rejected (with its file, line and reason, through [`report::Sink::rejected`]); the
//! [`report::Summary`] counts are made where documents are decided or written and checked to add
//! up. An input that cannot be opened or read to its end fails the run with
//! [`Error::InputFailed`] (or, with [`InputSet::keep_going`], is listed in the summary's
//! `incomplete_inputs`); a run whose every record was rejected fails with [`Error::AllRejected`].
//! [`InputSet::check`] looks at every input before any work. Outputs ([`output::Output`]) are
//! committed atomically; [`output::check_distinct`] refuses an output that is an input or another
//! output.
//!
//! ## Example
//!
//! ```
//! use neardup::{DedupBuilder, Input, InputSet, Format, report::{Sink, Removal}, Error};
//! use std::io::Write;
//!
//! // Three documents: the second is a near copy of the first.
//! let mut file = tempfile::NamedTempFile::new()?;
//! let story = "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat";
//! writeln!(file, r#"{{"id":"a","text":"{story}"}}"#)?;
//! writeln!(file, r#"{{"id":"b","text":"{story}!"}}"#)?;
//! writeln!(file, r#"{{"id":"c","text":"something else entirely, nothing alike"}}"#)?;
//!
//! #[derive(Default)]
//! struct Removed(Vec<(String, String)>);
//! impl Sink for Removed {
//!     fn removed(&mut self, r: &Removal<'_>) -> Result<(), Error> {
//!         self.0.push((r.id.to_string(), r.duplicate_of.to_string()));
//!         Ok(())
//!     }
//! }
//!
//! let dedup = DedupBuilder::new().threshold(0.8).build()?;
//! let mut inputs = InputSet::new(vec![Input::Path(file.path().into())], Format::Jsonl, 1 << 20)?;
//! let mut sink = Removed::default();
//! let summary = dedup.run(&mut inputs, &mut sink)?;
//! assert_eq!(sink.0, [("b".to_string(), "a".to_string())]);
//! assert_eq!((summary.docs_read, summary.kept, summary.exact_duplicates), (3, 2, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! (The `!` is stripped by normalization, so `b` is an *exact* duplicate of `a`.)

pub mod boilerplate;
pub mod cluster;
pub mod error;
mod hash;
pub mod html;
pub mod index;
pub mod lsh;
pub mod minhash;
pub mod normalize;
pub mod output;
pub mod parquet_write;
pub mod parts;
pub mod pipeline;
pub mod read;
pub mod report;
pub mod shingle;
pub mod spill;
pub mod synth;
pub mod verify;

pub use error::{ConfigError, Error};
pub use pipeline::{Dedup, DedupBuilder, WorkDir};
pub use read::{FieldPath, Format, FormatChoice, Input, InputSet};
pub use verify::VerifyMode;
