//! Reading: inputs → framed records → parsed documents.
//!
//! Reading has two steps so that a second pass can reproduce the first one byte for byte:
//! - *framing* ([`InputSet::frames`], `frames.rs`) cuts the inputs into [`Frame`]s, one per record
//!   (a line, or a whole file), in input order, without interpreting them. gzip and zstd are detected
//!   by their magic bytes. A record over `max_doc_bytes` is skipped without being held in memory. An
//!   input that cannot be opened, or a compressed stream that breaks off, ends the pass with a
//!   [`Frame::Failed`] (or, when the set keeps going, is recorded in its [`InputReport`]).
//! - *parsing* ([`Parser::parse`], `parse.rs`) turns one record's bytes into a [`Document`] (id, text,
//!   keep value, group), or a [`RejectReason`].
//!
//! [`InputSet`] (`inputs.rs`) holds the inputs, checks them before a run, and copies any input that
//! is not a regular file (stdin, a pipe, a FIFO) to an anonymous spool file while it is read, so that
//! a second pass (writing the kept records) reads the very same bytes. `pieces.rs` shares the inputs
//! out among the workers of a distributed run.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::PathBuf;

use crate::error::{ConfigError, InputFailure, Origin, RejectReason, Rejection};

mod frames;
mod inputs;
mod members;
pub mod parquet_read;
mod parse;
mod path;
mod pieces;
mod shards;
mod warc;

pub use frames::Frames;
use frames::{Counting, Source};
pub use inputs::{InputReport, InputSet, duplicate_ids_text};
pub use parse::{Document, Fields, Parser};
pub use path::{FieldPath, FieldPathError};
pub use pieces::Piece;
pub use shards::{Expanded, expand, shard_root};
pub use warc::{WarcDocument, document as warc_document, html_text};

/// How records are laid out in an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// One document per line of plain text.
    Lines,
    /// A directory of text files (walked recursively, in sorted order), one document per file.
    Files,
    /// WARC records (plain, or one gzip member per record): `response` records with an HTML
    /// payload are documents, other records are skipped.
    Warc,
    /// WET: WARC `conversion` records, each a document. Read exactly as [`Format::Warc`] (the
    /// record's type decides what it is); the name says what the input holds.
    Wet,
    /// A Parquet file, one document per row (`read/parquet_read.rs`).
    Parquet,
}

impl Format {
    /// Whether records of this format are WARC records.
    pub fn is_warc(self) -> bool {
        matches!(self, Format::Warc | Format::Wet)
    }
}

impl std::str::FromStr for Format {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" | "json" => Ok(Format::Jsonl),
            "lines" | "text" => Ok(Format::Lines),
            "files" => Ok(Format::Files),
            "warc" => Ok(Format::Warc),
            "wet" => Ok(Format::Wet),
            "parquet" => Ok(Format::Parquet),
            other => Err(ConfigError::Format(other.to_string())),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jsonl => "jsonl",
            Format::Lines => "lines",
            Format::Files => "files",
            Format::Warc => "warc",
            Format::Wet => "wet",
            Format::Parquet => "parquet",
        })
    }
}

impl Format {
    /// The format an input's name says, or `None`: `.jsonl`, `.json`, `.ndjson` are JSON Lines,
    /// `.txt` is lines of text, `.warc` is WARC and `.wet` (`.warc.wet`) WET, each optionally
    /// followed by `.gz` or `.zst` (the compression itself is recognized by magic bytes when the
    /// input is read); `.parquet` is Parquet (never compressed as a whole: its pages are).
    ///
    /// This is the one place a format is told from a name; formats with magic numbers of their
    /// own add them in [`detect_format`].
    pub fn from_name(name: &str) -> Option<Format> {
        let name = name.to_ascii_lowercase();
        if name.ends_with(".parquet") {
            return Some(Format::Parquet);
        }
        let stem = [".gz", ".zst"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        let extension = stem.rsplit_once('.')?.1;
        match extension {
            "jsonl" | "json" | "ndjson" => Some(Format::Jsonl),
            "txt" => Some(Format::Lines),
            "warc" => Some(Format::Warc),
            "wet" => Some(Format::Wet),
            _ => None,
        }
    }
}

/// Which format each input is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FormatChoice {
    /// The same format for every input (`--format`).
    All(Format),
    /// Each input's own, told by [`detect_format`]: by its name, else JSON Lines.
    #[default]
    Detect,
}

impl From<Format> for FormatChoice {
    fn from(format: Format) -> Self {
        FormatChoice::All(format)
    }
}

/// `jsonl`, `lines`, `files` for one format (as `--format` names them), `detect` otherwise.
impl fmt::Display for FormatChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatChoice::All(format) => format.fmt(f),
            FormatChoice::Detect => f.write_str("detect"),
        }
    }
}

impl FormatChoice {
    /// The format `input` is read in under this choice.
    pub fn format_of(&self, input: &Input) -> Format {
        match self {
            FormatChoice::All(format) => *format,
            FormatChoice::Detect => detect_format(input),
        }
    }
}

/// The format of an input whose format was not given: the one its name says
/// ([`Format::from_name`]); else, for a regular file, Parquet when it begins with Parquet's
/// magic number `PAR1`, WARC when its first bytes (after gzip or zstd decompression) are a WARC
/// version line (`WARC/1.`, `WARC/0.`); else JSON Lines. Standard input and other streams are
/// JSON Lines (their first bytes are not looked at, which would consume them).
///
/// JSON Lines and lines of text share their bytes (a JSON line and a text line look alike), so
/// for them the name decides.
pub fn detect_format(input: &Input) -> Format {
    match input {
        Input::Path(path) => path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(Format::from_name)
            .or_else(|| starts_with_parquet_magic(path).then_some(Format::Parquet))
            .or_else(|| warc_magic(path).then_some(Format::Warc))
            .unwrap_or(Format::Jsonl),
        Input::Stdin => Format::Jsonl,
    }
}

/// Whether a regular file starts with a WARC version line, after decompression.
fn warc_magic(path: &std::path::Path) -> bool {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok((reader, _)) = frames::decompress(io::BufReader::new(file)) else {
        return false;
    };
    let mut head = Vec::with_capacity(8);
    if reader.take(7).read_to_end(&mut head).is_err() {
        return false;
    }
    head.starts_with(b"WARC/1.") || head.starts_with(b"WARC/0.")
}

/// Whether `path` is a regular file whose first 4 bytes are `PAR1`.
fn starts_with_parquet_magic(path: &std::path::Path) -> bool {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == *parquet_read::MAGIC
}

/// One input: a path, or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Path(PathBuf),
    Stdin,
}

impl Input {
    /// `-` means standard input; anything else is a path.
    pub fn parse(arg: &str) -> Input {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::Path(PathBuf::from(arg))
        }
    }

    /// The name used in messages and in `FILE:LINE` ids.
    pub fn display_name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Stdin => "<stdin>".to_string(),
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_name())
    }
}

/// One framed record: its origin and its raw bytes (without the line terminator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub origin: Origin,
    pub bytes: Vec<u8>,
    /// The format of the input it came from, which says how to parse it.
    pub format: Format,
    /// Where the bytes sit in a regular file, so they can be read again directly: in an
    /// uncompressed file, or the gzip member of a gzipped WARC file that holds the record alone.
    pub location: Option<Location>,
    /// The record as stored, when that differs from `bytes` and the set keeps it
    /// ([`InputSet::keep_gzip_members`]): the gzip member a WARC record was the whole of.
    pub stored: Option<Vec<u8>>,
}

/// A record's place in an input file: input number, byte offset, length. In an uncompressed
/// file, the record's bytes; in a gzipped WARC file, the gzip member that holds it alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub input: u32,
    pub offset: u64,
    pub len: u32,
}

/// Reads records back by [`Location`], from any thread.
#[derive(Debug)]
pub struct RecordReader {
    files: Vec<Option<File>>,
    /// Each input's format: a WARC record located at a gzip member is inflated.
    formats: Vec<Format>,
}

impl RecordReader {
    /// The record at `location`: its bytes as framing read them.
    pub fn read(&self, location: Location) -> io::Result<Vec<u8>> {
        let bytes = self.read_stored(location)?;
        let warc = self
            .formats
            .get(location.input as usize)
            .is_some_and(|format| format.is_warc());
        match warc && bytes.starts_with(&members::GZIP_MAGIC) {
            true => warc::record_of_member(&bytes),
            false => Ok(bytes),
        }
    }

    /// The bytes stored at `location`.
    fn read_stored(&self, location: Location) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let file = self
            .files
            .get(location.input as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "input is not a plain file"))?;
        let mut bytes = vec![0; location.len as usize];
        file.read_exact_at(&mut bytes, location.offset)?;
        Ok(bytes)
    }
}

/// What framing yields, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Record(Record),
    Rejected(Rejection),
    /// An input could not be opened or read to its end. Reading stops here unless the set keeps
    /// going past broken inputs ([`InputSet::keep_going`]), in which case the failure is recorded
    /// ([`InputSet::report`]) and never yielded.
    Failed(InputFailure),
}

impl Frame {
    /// The failure of the first failed input among `frames`, as the run's error: a batch holding
    /// one ends the run (a set that keeps going past broken inputs never yields one).
    pub fn stop_at_failure(frames: &[Frame]) -> Result<(), crate::error::Error> {
        match frames.iter().find(|f| matches!(f, Frame::Failed(_))) {
            Some(Frame::Failed(failure)) => Err(crate::error::Error::InputFailed(failure.clone())),
            _ => Ok(()),
        }
    }

    /// The record, or why there is none. Passes stop at a failed input before its frame is
    /// processed; should one get this far, it reads as an unreadable record.
    pub fn record(&self) -> Result<&Record, Rejection> {
        match self {
            Frame::Record(record) => Ok(record),
            Frame::Rejected(rejection) => Err(rejection.clone()),
            Frame::Failed(failure) => Err(Rejection {
                origin: Origin::line(failure.file.clone(), 0),
                reason: RejectReason::Unreadable(failure.reason.clone()),
            }),
        }
    }
}

/// The reason of an I/O error, as shown to people (without the OS error code).
fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{Format, FormatChoice, Input, detect_format};

    #[test]
    fn issue12_formats_are_told_by_name_with_json_lines_as_the_fallback() {
        for (name, format) in [
            ("a.jsonl", Some(Format::Jsonl)),
            ("a.JSON", Some(Format::Jsonl)),
            ("train-00001.ndjson.zst", Some(Format::Jsonl)),
            ("a.jsonl.gz", Some(Format::Jsonl)),
            ("notes.txt", Some(Format::Lines)),
            ("notes.txt.gz", Some(Format::Lines)),
            ("a.gz", None),
            ("README", None),
            ("a.parquet", Some(Format::Parquet)),
            ("TRAIN-0001.PARQUET", Some(Format::Parquet)),
        ] {
            assert_eq!(Format::from_name(name), format, "{name}");
        }
        let path = |p: &str| Input::Path(PathBuf::from(p));
        assert_eq!(detect_format(&path("dir.txt/a.md")), Format::Jsonl);
        assert_eq!(detect_format(&path("x/notes.txt.zst")), Format::Lines);
        assert_eq!(detect_format(&Input::Stdin), Format::Jsonl);
        assert_eq!(
            FormatChoice::All(Format::Jsonl).format_of(&path("notes.txt")),
            Format::Jsonl
        );
        assert_eq!(FormatChoice::Detect.to_string(), "detect");
        assert_eq!(FormatChoice::All(Format::Files).to_string(), "files");
        assert_eq!("parquet".parse::<Format>().unwrap(), Format::Parquet);
    }

    #[test]
    fn issue12_parquet_is_told_by_its_magic_number_when_the_name_says_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let magic = dir.path().join("part-00000");
        std::fs::write(&magic, b"PAR1 and then the rest").unwrap();
        let text = dir.path().join("part-00001");
        std::fs::write(&text, b"{\"text\":\"PAR1\"}").unwrap();
        let short = dir.path().join("tiny");
        std::fs::write(&short, b"PA").unwrap();
        assert_eq!(detect_format(&Input::Path(magic)), Format::Parquet);
        assert_eq!(detect_format(&Input::Path(text)), Format::Jsonl);
        assert_eq!(detect_format(&Input::Path(short)), Format::Jsonl);
        // The name wins over the bytes.
        let named = dir.path().join("notes.txt");
        std::fs::write(&named, b"PAR1").unwrap();
        assert_eq!(detect_format(&Input::Path(named)), Format::Lines);
    }
}
