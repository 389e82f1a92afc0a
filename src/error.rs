//! Typed errors of the library.
//!
//! Two families:
//! - [`Error`]: something that stops a run (a bad setting, an output that cannot be written, a
//!   `--strict` run meeting bad input). `Display` shows one layer; `source()` links the cause.
//! - [`RejectReason`]: why one input record was set aside. A rejection is not an error of the run:
//!   the record is counted, reported with its file and line, and the run goes on.

use std::fmt;
use std::path::PathBuf;

/// An error that stops a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting was out of range or inconsistent; caught by a builder's `build()`.
    #[error("invalid setting")]
    Config(#[from] ConfigError),
    /// An input could not be opened or read to its end (missing, unreadable, a directory where a
    /// file was expected, a truncated or corrupt compressed stream). Nothing is committed.
    #[error("cannot read {0}")]
    InputFailed(InputFailure),
    /// A file other than an input of records (a part file, a hostfile) could not be read.
    #[error("cannot read {path}")]
    Input {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every record of the inputs was rejected: the settings do not fit the data.
    #[error("{0}")]
    AllRejected(Box<AllRejected>),
    /// Two paths of a run (inputs, outputs, index directories) are the same file.
    #[error("{first} and {second} name the same file ({path}); nothing was written")]
    SameFile {
        /// What each path is for, as the caller named them (e.g. "output", "input").
        first: String,
        second: String,
        path: String,
    },
    /// An output lies inside an index directory the run reads or writes.
    #[error("{output} ({path}) lies inside the index directory of {index}; nothing was written")]
    InsideIndex {
        output: String,
        index: String,
        path: String,
    },
    /// The counts of a run do not add up: a bug, reported instead of a wrong summary.
    #[error("internal accounting error: {0}")]
    Accounting(String),
    /// An output could not be written.
    #[error("cannot write {what}")]
    Output {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A work directory of a resumable run could not be used.
    #[error("cannot use the work directory {path}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Temporary files (spilled band runs) could not be written or read.
    #[error("cannot use temporary files in {path}")]
    Temp {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// More distinct documents than one run can index (2^32).
    #[error("more than 2^32 distinct documents in one run")]
    TooManyDocuments,
    /// An input gave a different number of records on the second read (it changed during the run).
    #[error("an input changed between the two passes of the run")]
    InputChanged,
    /// An index could not be opened, read, written, or does not match the run's parameters.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A distributed run could not start, or one of its workers failed.
    #[error("distributed run: {0}")]
    Distributed(String),
    /// The processes of a distributed run were started with different settings or inputs
    /// (found at start-up, before any work): which process, and the first difference seen from
    /// here, as "NAME is X there, Y here".
    #[error("process {process} differs: {difference}")]
    Disagreement { process: usize, difference: String },
    /// `strict` mode met a bad record.
    #[error("{0}")]
    Rejected(Rejection),
    /// The run was stopped from outside ([`crate::InputSet::cancel_on`]); nothing was committed.
    #[error("the run was interrupted")]
    Interrupted,
}

impl Error {
    /// True when an input could not be read to its end, or gave no acceptable record.
    pub fn is_input_failure(&self) -> bool {
        matches!(
            self,
            Error::InputFailed(_) | Error::Input { .. } | Error::AllRejected(_)
        )
    }

    /// True when the error is a closed pipe on an output (the reader went away, as `head` does).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// What went wrong with an index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot access index file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("index file {path} is corrupt: {what}")]
    Corrupt { path: PathBuf, what: String },
    /// An intact index file in an older format (version 1 stored 32-bit band keys): it is never
    /// read, and the index must be built again from its documents.
    #[error(
        "index file {path} was written in format version {found} by an older neardup; this one reads only version {supported}, so the index must be rebuilt from its documents"
    )]
    OldFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// An intact index file in a format newer than this build reads.
    #[error(
        "index file {path} was written in format version {found} by a newer neardup; this one reads only version {supported}"
    )]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("index {path} was built with other parameters: {differences}")]
    Mismatch {
        path: PathBuf,
        differences: String,
        /// The index's bands × rows, which a run must use to match it.
        num_bands: usize,
        rows_per_band: usize,
    },
    #[error("{path} already holds an index")]
    Exists { path: PathBuf },
    #[error("{path} is not an index (no MANIFEST)")]
    Missing { path: PathBuf },
    #[error("{path} is not empty and holds no index; give a new or empty directory")]
    NotEmpty { path: PathBuf },
    #[error("index {path} is being written by another neardup process")]
    Locked { path: PathBuf },
    #[error("index {path} would hold more than 2^32 segments or documents per segment")]
    TooLarge { path: PathBuf },
}

/// A bad setting, found once when a builder validates its configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("threshold must lie in (0, 1], got {0}")]
    Threshold(f64),
    #[error("num_perm must be between 1 and 8192, got {0}")]
    NumPerm(usize),
    #[error(
        "num_bands × rows_per_band = {num_bands} × {rows_per_band} = {product} exceeds num_perm = {num_perm}"
    )]
    BandsExceedPerm {
        num_bands: usize,
        rows_per_band: usize,
        product: usize,
        num_perm: usize,
    },
    #[error("false-negative weight must lie in [0, 1], got {0}")]
    Weight(f64),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("shingle spec {0:?} is not 'word:N' or 'char:K' (N, K ≥ 1)")]
    ShingleSpec(String),
    #[error("keep policy {0:?} is not 'first', 'longest' or 'max:FIELD'")]
    KeepPolicy(String),
    #[error("verify mode {0:?} is not 'signature', 'borderline' or 'exact'")]
    VerifyMode(String),
    #[error("format {0:?} is not 'jsonl', 'lines', 'files', 'warc' or 'wet'")]
    Format(String),
    #[error("stdin ('-') may be given only once")]
    StdinTwice,
    #[error("{pattern} is not a valid glob pattern: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error(transparent)]
    FieldPath(#[from] crate::read::FieldPathError),
    #[error("no input given")]
    NoInput,
    #[error("a streaming run keeps the first copy it sees; the keep policy must be 'first'")]
    StreamKeep,
    #[error(
        "stripping boilerplate needs a counting pass over the whole input, which a streaming run does not make"
    )]
    StreamStrip,
    #[error(
        "a streaming run writes each record as it is decided, before clusters are known: it cannot annotate records with their clusters; run a batch"
    )]
    StreamAnnotate,
    #[error(
        "a streaming run keeps no per-document record of where its compared text is, so it cannot report spans"
    )]
    StreamSpans,
    #[error(
        "a streaming run cannot check pairs exactly, borderline or all (the texts of kept documents are gone): it decides on the signature estimate; verify 'signature', or run a batch"
    )]
    StreamVerify,
    #[error("max_size_ratio must be a number ≥ 1, got {0}")]
    SizeRatio(f64),
    #[error(
        "containment needs each document's shingle count, which indexes and streaming do not keep; use the Jaccard measure there"
    )]
    ContainmentIndex,
    #[error(
        "a distributed run supports neither the containment measure nor boilerplate stripping yet; run them in one process"
    )]
    Distributed,
    #[error("a distributed run does not report spans yet; run it in one process")]
    DistributedSpans,
    #[error(
        "input {0} is WARC or WET, which a distributed run does not read yet (its pieces are byte ranges, which would cut records); run it in one process"
    )]
    DistributedWarc(String),
    #[error("input {0} is WARC or WET: rewriting the text of WARC records is not supported yet")]
    LinesWarc(String),
    #[error("process {process} is not among the {processes} processes of the hostfile")]
    Process { process: usize, processes: usize },
    #[error("memory size {0:?} is not a number of bytes with an optional K, M, G or T suffix")]
    MemorySize(String),
    #[error("min_docs must be at least 2 (a unit in one document is not repeated), got {0}")]
    MinDocs(u32),
    #[error("unit {0:?} is not 'line' or 'paragraph'")]
    Unit(String),
    #[error("measure {0:?} is not 'jaccard' or 'containment'")]
    Measure(String),
    #[error("memory budget of {0} bytes is below the minimum of 1 MiB")]
    MemoryTooSmall(u64),
    #[error("max_doc_bytes must be between 1 and 4 GiB (4294967295 bytes)")]
    MaxDocBytes,
}

/// An input that could not be opened or read to its end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputFailure {
    /// The input's display name.
    pub file: String,
    /// Records read from it before it failed (0 when it could not be opened).
    pub records_read: u64,
    pub reason: String,
}

impl fmt::Display for InputFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.records_read == 0 {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(
                f,
                "{} to its end: it broke off after line {}: {}",
                self.file, self.records_read, self.reason
            )
        }
    }
}

/// Every record was rejected: how many, the reason most of them had, and the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllRejected {
    pub records: u64,
    /// The most common reason's kind and how many records had it.
    pub reason: RejectKind,
    pub with_reason: u64,
    /// The first rejection with that reason.
    pub first: Rejection,
}

impl fmt::Display for AllRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = if self.with_reason == self.records {
            "every one".to_string()
        } else {
            format!("{} of them", self.with_reason)
        };
        let what = match (&self.reason, &self.first.reason) {
            (RejectKind::MissingField, RejectReason::MissingField { field, present }) => {
                let seen = if present.is_empty() {
                    "none".to_string()
                } else {
                    present.join(", ")
                };
                format!("no record has a {field:?} field; fields seen: {seen}")
            }
            _ => format!("{}: {}", self.reason, self.first),
        };
        write!(
            f,
            "all {} records were rejected ({share}): {what}",
            self.records
        )
    }
}

/// Where a record came from: the input's display name and its 1-based line (0 for a whole file;
/// for WARC, the record's number in its input, skipped records counted), and for WARC the byte
/// offset of the record (of its gzip member in a gzipped input).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    pub file: String,
    pub line: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Origin {
    /// A line of `file` (0 for a whole file).
    pub fn line(file: impl Into<String>, line: u64) -> Origin {
        Origin {
            file: file.into(),
            line,
            offset: None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(offset) = self.offset {
            write!(f, "{} record {} at byte {offset}", self.file, self.line)
        } else if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// Why a record was rejected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RejectReason {
    /// The record's bytes are not UTF-8; `offset` is the first bad byte within the record.
    InvalidUtf8 { offset: usize },
    /// The line is not a JSON object.
    InvalidJson(String),
    /// The text field is absent; `present` lists the record's fields (the first few).
    MissingField { field: String, present: Vec<String> },
    /// A field the run reads appears twice in the record, so its value is ambiguous.
    DuplicateField(String),
    /// The text field exists but is not a string.
    NotAString(String),
    /// A value on the path to `field`, at `at`, is neither an object nor null, so the field
    /// cannot be read.
    NotAnObject { field: String, at: String },
    /// The record is larger than the configured limit; it was skipped without being held in memory.
    TooLarge { limit: usize },
    /// A blank line in a JSON Lines input.
    BlankLine,
    /// The input could not be opened or read (including truncated or corrupt compressed streams).
    Unreadable(String),
    /// A WARC record that cannot be framed or read (no Content-Length, a truncated payload, a
    /// bad gzip member, an HTTP payload that cannot be decoded).
    Malformed(String),
    /// A row of a Parquet input (or the rest of its row group, when it could not be decoded):
    /// its row group (from 0, as the file's metadata numbers them), its row in the group (from
    /// 1, like a line) and why. Counted by the reason's kind.
    InRowGroup {
        row_group: u64,
        row: u64,
        reason: Box<RejectReason>,
    },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::InvalidUtf8 { offset } => write!(f, "invalid UTF-8 at byte {offset}"),
            RejectReason::InvalidJson(msg) => write!(f, "invalid JSON: {msg}"),
            RejectReason::MissingField { field, present } if present.is_empty() => {
                write!(f, "missing field {field:?}")
            }
            RejectReason::MissingField { field, present } => {
                write!(
                    f,
                    "missing field {field:?} (fields: {})",
                    present.join(", ")
                )
            }
            RejectReason::DuplicateField(name) => {
                write!(f, "field {name:?} appears twice, so its value is ambiguous")
            }
            RejectReason::NotAString(name) => write!(f, "field {name:?} is not a string"),
            RejectReason::NotAnObject { field, at } => write!(
                f,
                "field {field:?} cannot be read: {at:?} on its path is not an object"
            ),
            RejectReason::TooLarge { limit } => {
                write!(f, "document larger than the limit of {limit} bytes")
            }
            RejectReason::BlankLine => write!(f, "blank line, not a JSON object"),
            RejectReason::Unreadable(msg) => write!(f, "unreadable input: {msg}"),
            RejectReason::Malformed(msg) => write!(f, "malformed record: {msg}"),
            RejectReason::InRowGroup {
                row_group,
                row,
                reason,
            } => write!(f, "row group {row_group}, row {row} of it: {reason}"),
        }
    }
}

impl RejectReason {
    pub fn kind(&self) -> RejectKind {
        match self {
            RejectReason::InvalidUtf8 { .. } => RejectKind::InvalidUtf8,
            RejectReason::InvalidJson(_) => RejectKind::InvalidJson,
            RejectReason::MissingField { .. } => RejectKind::MissingField,
            RejectReason::DuplicateField(_) => RejectKind::DuplicateField,
            RejectReason::NotAString(_) => RejectKind::NotAString,
            RejectReason::NotAnObject { .. } => RejectKind::NotAnObject,
            RejectReason::TooLarge { .. } => RejectKind::TooLarge,
            RejectReason::BlankLine => RejectKind::BlankLine,
            RejectReason::Unreadable(_) => RejectKind::Unreadable,
            RejectReason::Malformed(_) => RejectKind::Malformed,
            RejectReason::InRowGroup { reason, .. } => reason.kind(),
        }
    }
}

/// The kind of a [`RejectReason`], without its details: what rejections are counted by.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    InvalidUtf8,
    InvalidJson,
    MissingField,
    DuplicateField,
    NotAString,
    NotAnObject,
    TooLarge,
    BlankLine,
    Unreadable,
    Malformed,
}

impl fmt::Display for RejectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectKind::InvalidUtf8 => "invalid UTF-8",
            RejectKind::InvalidJson => "invalid JSON",
            RejectKind::MissingField => "missing text field",
            RejectKind::DuplicateField => "duplicate field",
            RejectKind::NotAString => "text field not a string",
            RejectKind::NotAnObject => "field path through a non-object",
            RejectKind::TooLarge => "too large",
            RejectKind::BlankLine => "blank line",
            RejectKind::Unreadable => "unreadable",
            RejectKind::Malformed => "malformed record",
        })
    }
}

/// Counts rejections by kind, keeping the first of each: what tells a run whose every record
/// was rejected (the settings do not fit the data) from one with a few bad records.
#[derive(Debug, Clone, Default)]
pub struct RejectionTally {
    by_kind: std::collections::BTreeMap<RejectKind, (u64, Rejection)>,
    total: u64,
}

impl RejectionTally {
    pub fn add(&mut self, rejection: &Rejection) {
        self.total += 1;
        self.by_kind
            .entry(rejection.reason.kind())
            .or_insert_with(|| (0, rejection.clone()))
            .0 += 1;
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Rejections per kind.
    pub fn counts(&self) -> impl Iterator<Item = (RejectKind, u64)> + '_ {
        self.by_kind
            .iter()
            .map(|(kind, (count, _))| (*kind, *count))
    }

    /// An error when `records` records were read and every one was rejected.
    pub fn check(&self, records: u64) -> Result<(), Error> {
        if records == 0 || self.total < records {
            return Ok(());
        }
        let Some((kind, (count, first))) = self.by_kind.iter().max_by_key(|(_, (n, _))| *n) else {
            return Ok(());
        };
        Err(Error::AllRejected(Box::new(AllRejected {
            records,
            reason: *kind,
            with_reason: *count,
            first: first.clone(),
        })))
    }
}

/// One rejected record: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejection {
    pub origin: Origin,
    pub reason: RejectReason,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, Origin, RejectKind, RejectReason, Rejection, RejectionTally};

    fn rejection(line: u64, reason: RejectReason) -> Rejection {
        Rejection {
            origin: Origin {
                file: "r.jsonl".into(),
                line,
                offset: None,
            },
            reason,
        }
    }

    fn missing(line: u64) -> Rejection {
        rejection(
            line,
            RejectReason::MissingField {
                field: "body".into(),
                present: vec!["id".into(), "text".into()],
            },
        )
    }

    #[test]
    fn issue10_a_run_whose_every_record_was_rejected_fails_naming_the_main_reason() {
        let mut tally = RejectionTally::default();
        for line in 1..=3 {
            tally.add(&missing(line));
        }
        tally.add(&rejection(4, RejectReason::BlankLine));
        // Some records were accepted: not an error.
        assert!(tally.check(5).is_ok());
        // Nothing read: not an error either.
        assert!(RejectionTally::default().check(0).is_ok());
        let Err(Error::AllRejected(all)) = tally.check(4) else {
            panic!("every record was rejected");
        };
        assert_eq!(
            (all.reason, all.with_reason, all.records),
            (RejectKind::MissingField, 3, 4)
        );
        assert_eq!(all.first.origin.line, 1);
        assert_eq!(
            all.to_string(),
            "all 4 records were rejected (3 of them): no record has a \"body\" field; fields seen: id, text"
        );
        let counts: Vec<(RejectKind, u64)> = tally.counts().collect();
        assert_eq!(
            counts,
            [(RejectKind::MissingField, 3), (RejectKind::BlankLine, 1)]
        );
    }

    #[test]
    fn input_failures_name_the_file_and_where_it_broke_off() {
        let failure = super::InputFailure {
            file: "cut.gz".into(),
            records_read: 12,
            reason: "incomplete deflate stream".into(),
        };
        assert_eq!(
            Error::InputFailed(failure).to_string(),
            "cannot read cut.gz to its end: it broke off after line 12: incomplete deflate stream"
        );
        assert!(!Error::Accounting(String::new()).is_input_failure());
    }
}
