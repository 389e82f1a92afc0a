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
    /// An input could not be opened or read at all.
    #[error("cannot read {path}")]
    Input {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An output could not be written.
    #[error("cannot write {what}")]
    Output {
        what: String,
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
    Index(#[from] crate::index::IndexError),
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
}

impl Error {
    /// True when the error is a closed pipe on an output (the reader went away, as `head` does).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Output { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
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
    #[error(
        "only one of --bands/--rows was given; give both, or neither to derive them from the threshold"
    )]
    HalfBands,
    #[error("shingle spec {0:?} is not 'word:N' or 'char:K' (N, K ≥ 1)")]
    ShingleSpec(String),
    #[error("keep policy {0:?} is not 'first', 'longest' or 'max:FIELD'")]
    KeepPolicy(String),
    #[error("verify mode {0:?} is not 'signature' or 'exact'")]
    VerifyMode(String),
    #[error("format {0:?} is not 'jsonl', 'lines' or 'files'")]
    Format(String),
    #[error("stdin ('-') may be given only once")]
    StdinTwice,
    #[error("no input given")]
    NoInput,
    #[error("a streaming run keeps the first copy it sees; the keep policy must be 'first'")]
    StreamKeep,
    #[error("stripping boilerplate needs a counting pass over the whole input; use --mode batch")]
    StreamStrip,
    #[error("max_size_ratio must be a number ≥ 1, got {0}")]
    SizeRatio(f64),
    #[error(
        "containment needs each document's shingle count, which indexes and streaming do not keep; use the Jaccard measure there"
    )]
    ContainmentIndex,
    #[error(
        "a distributed run supports the Jaccard measure without boilerplate stripping (for now): drop --measure containment and --strip-boilerplate"
    )]
    Distributed,
    #[error("process {process} is not among the {processes} processes of the hostfile")]
    Process { process: usize, processes: usize },
    #[error("mode {0:?} is not 'auto', 'batch' or 'stream'")]
    Mode(String),
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
    #[error("max_doc_bytes must be at least 1")]
    MaxDocBytes,
}

/// Where a record came from: the input's display name and its 1-based line (0 for a whole file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    pub file: String,
    pub line: u64,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// Why a record was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// The record's bytes are not UTF-8; `offset` is the first bad byte within the record.
    InvalidUtf8 { offset: usize },
    /// The line is not a JSON object.
    InvalidJson(String),
    /// The text field is absent.
    MissingField(String),
    /// The text field exists but is not a string.
    NotAString(String),
    /// The record is larger than the configured limit; it was skipped without being held in memory.
    TooLarge { limit: usize },
    /// A blank line in a JSON Lines input.
    BlankLine,
    /// The input could not be opened or read (including truncated or corrupt compressed streams).
    Unreadable(String),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::InvalidUtf8 { offset } => write!(f, "invalid UTF-8 at byte {offset}"),
            RejectReason::InvalidJson(msg) => write!(f, "invalid JSON: {msg}"),
            RejectReason::MissingField(name) => write!(f, "missing field {name:?}"),
            RejectReason::NotAString(name) => write!(f, "field {name:?} is not a string"),
            RejectReason::TooLarge { limit } => {
                write!(f, "document larger than the limit of {limit} bytes")
            }
            RejectReason::BlankLine => write!(f, "blank line, not a JSON object"),
            RejectReason::Unreadable(msg) => write!(f, "unreadable input: {msg}"),
        }
    }
}

/// One rejected record: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub origin: Origin,
    pub reason: RejectReason,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.reason)
    }
}
