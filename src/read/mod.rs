//! Reading: inputs → framed records → parsed documents.
//!
//! Reading has two steps so that a second pass can reproduce the first one byte for byte:
//! - *framing* ([`InputSet::frames`]) cuts the inputs into [`Frame`]s, one per record (a line, or a
//!   whole file), in input order, without interpreting them. gzip and zstd are detected by their magic
//!   bytes. A record over `max_doc_bytes` is skipped without being held in memory. An input that cannot
//!   be opened, or a compressed stream that breaks off, becomes a rejected frame and reading goes on
//!   with the next input.
//! - *parsing* ([`Parser::parse`]) turns one record's bytes into a [`Document`] (id, text, keep value),
//!   or a [`RejectReason`].
//!
//! Standard input (`-`) is copied to an anonymous spool file while it is read, so that the second pass
//! (writing the kept records) reads the very same bytes.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::error::{ConfigError, Origin, RejectReason, Rejection};

mod pieces;

pub use pieces::Piece;

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
}

impl std::str::FromStr for Format {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" | "json" => Ok(Format::Jsonl),
            "lines" | "text" => Ok(Format::Lines),
            "files" => Ok(Format::Files),
            other => Err(ConfigError::Format(other.to_string())),
        }
    }
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
    /// Where the bytes sit in an uncompressed regular file, so they can be read again directly.
    pub location: Option<Location>,
}

/// A record's place in an uncompressed input file: input number, byte offset, length.
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
}

impl RecordReader {
    /// The bytes at `location`.
    pub fn read(&self, location: Location) -> io::Result<Vec<u8>> {
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
}

/// The ordered inputs of one run, and the spool that lets standard input be read twice.
#[derive(Debug)]
pub struct InputSet {
    inputs: Vec<Input>,
    format: Format,
    max_doc_bytes: usize,
    stdin_spool: Option<File>,
    stdin_consumed: bool,
    /// Whether stdin is copied to a temporary file so that a later pass can read it again.
    spool_stdin: bool,
    /// When set, passes read only these pieces (one worker's share of a distributed run).
    pieces: Option<Vec<Piece>>,
}

impl InputSet {
    /// Checks that there is at least one input and that stdin appears at most once.
    pub fn new(
        inputs: Vec<Input>,
        format: Format,
        max_doc_bytes: usize,
    ) -> Result<Self, ConfigError> {
        if inputs.is_empty() {
            return Err(ConfigError::NoInput);
        }
        if inputs.iter().filter(|i| **i == Input::Stdin).count() > 1 {
            return Err(ConfigError::StdinTwice);
        }
        if max_doc_bytes == 0 {
            return Err(ConfigError::MaxDocBytes);
        }
        Ok(InputSet {
            inputs,
            format,
            max_doc_bytes,
            stdin_spool: None,
            stdin_consumed: false,
            spool_stdin: true,
            pieces: None,
        })
    }

    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Total size in bytes of the inputs as stored, when every input is a regular file.
    pub fn total_bytes(&self) -> Option<u64> {
        let mut total = 0;
        for input in &self.inputs {
            match input {
                Input::Stdin => return None,
                Input::Path(p) => total += dir_or_file_size(p)?,
            }
        }
        Some(total)
    }

    /// Opens every path input for reading records back by [`Location`].
    pub fn record_reader(&self) -> RecordReader {
        RecordReader {
            files: self
                .inputs
                .iter()
                .map(|input| match input {
                    Input::Path(p) => File::open(p).ok(),
                    Input::Stdin => None,
                })
                .collect(),
        }
    }

    /// Starts a pass over all inputs. The first pass over stdin spools it; later passes replay the spool.
    pub fn frames(&mut self) -> Frames<'_> {
        Frames {
            set: self,
            next_input: 0,
            current: None,
            bytes_read: Arc::new(AtomicU64::new(0)),
        }
    }

    fn open(&mut self, index: usize, counter: &Arc<AtomicU64>) -> Result<Source, RejectReason> {
        let unreadable = |e: io::Error| RejectReason::Unreadable(e.to_string());
        let name = self.inputs[index].display_name();
        let raw: Box<dyn Read + Send> = match &self.inputs[index] {
            Input::Stdin => {
                if self.stdin_consumed {
                    let mut spool = self
                        .stdin_spool
                        .as_ref()
                        .ok_or_else(|| {
                            RejectReason::Unreadable(
                                "stdin was already read (single-pass input)".into(),
                            )
                        })?
                        .try_clone()
                        .map_err(unreadable)?;
                    spool.rewind().map_err(unreadable)?;
                    Box::new(spool)
                } else if !self.spool_stdin {
                    self.stdin_consumed = true;
                    Box::new(io::stdin())
                } else {
                    let spool = tempfile::tempfile().map_err(unreadable)?;
                    let writer = spool.try_clone().map_err(unreadable)?;
                    self.stdin_spool = Some(spool);
                    self.stdin_consumed = true;
                    Box::new(Tee {
                        inner: io::stdin(),
                        copy: io::BufWriter::new(writer),
                    })
                }
            }
            Input::Path(p) => {
                if self.format == Format::Files && p.is_dir() {
                    let files = walk_files(p).map_err(unreadable)?;
                    return Ok(Source::Dir {
                        root: p.clone(),
                        files,
                        next: 0,
                    });
                }
                Box::new(File::open(p).map_err(unreadable)?)
            }
        };
        let counted = Counting {
            inner: raw,
            counter: counter.clone(),
        };
        let (reader, compressed) =
            decompress(BufReader::with_capacity(1 << 16, counted)).map_err(unreadable)?;
        let seekable = !compressed && matches!(self.inputs[index], Input::Path(_));
        Ok(match self.format {
            Format::Files => Source::WholeFile {
                name,
                reader: Some(reader),
            },
            Format::Jsonl | Format::Lines => Source::Lines {
                name,
                reader,
                line: 0,
                position: 0,
                input: seekable.then_some(index as u32),
                end: None,
            },
        })
    }
}

/// An iterator over the frames of all inputs, in order.
pub struct Frames<'a> {
    set: &'a mut InputSet,
    next_input: usize,
    current: Option<Source>,
    bytes_read: Arc<AtomicU64>,
}

impl Frames<'_> {
    /// A handle on the byte count, readable from another thread while this one reads.
    pub fn byte_counter(&self) -> Arc<AtomicU64> {
        self.bytes_read.clone()
    }

    /// Appends up to `max_records` frames, or fewer once `max_bytes` of record text is gathered.
    /// Returns false once every input is exhausted and nothing was appended.
    pub fn next_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<Frame>,
    ) -> bool {
        let mut bytes = 0;
        let start = out.len();
        while out.len() - start < max_records && bytes < max_bytes {
            match self.next() {
                Some(frame) => {
                    if let Frame::Record(r) = &frame {
                        bytes += r.bytes.len();
                    }
                    out.push(frame);
                }
                None => break,
            }
        }
        out.len() > start
    }
}

impl Iterator for Frames<'_> {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        loop {
            if self.current.is_none() {
                // With pieces, `next_input` counts pieces.
                let (index, range_piece) = match &self.set.pieces {
                    Some(pieces) => {
                        let piece = *pieces.get(self.next_input)?;
                        (piece.input, Some(piece))
                    }
                    None if self.next_input < self.set.inputs.len() => (self.next_input, None),
                    None => return None,
                };
                self.next_input += 1;
                let counter = self.bytes_read.clone();
                let opened = match range_piece {
                    Some(piece) => match piece.range {
                        Some(range) => self.set.open_range(&piece, range, &counter),
                        None => self.set.open(index, &counter),
                    },
                    None => self.set.open(index, &counter),
                };
                match opened {
                    Ok(source) => self.current = Some(source),
                    Err(reason) => {
                        let file = self.set.inputs[index].display_name();
                        return Some(Frame::Rejected(Rejection {
                            origin: Origin { file, line: 0 },
                            reason,
                        }));
                    }
                }
            }
            let max = self.set.max_doc_bytes;
            let source = self.current.as_mut().expect("set above");
            match source.next_frame(max, &self.bytes_read) {
                Some(frame) => return Some(frame),
                None => self.current = None,
            }
        }
    }
}

enum Source {
    Lines {
        name: String,
        reader: Box<dyn BufRead + Send>,
        line: u64,
        /// Bytes consumed so far, to locate each line.
        position: u64,
        /// The input's number when its lines can be read back by location.
        input: Option<u32>,
        /// Where a piece of a file ends: no line starts at or after it.
        end: Option<u64>,
    },
    WholeFile {
        name: String,
        reader: Option<Box<dyn BufRead + Send>>,
    },
    Dir {
        root: PathBuf,
        files: Vec<PathBuf>,
        next: usize,
    },
}

impl Source {
    fn next_frame(&mut self, max: usize, counter: &Arc<AtomicU64>) -> Option<Frame> {
        match self {
            Source::Lines {
                name,
                reader,
                line,
                position,
                input,
                end,
            } => {
                if end.is_some_and(|end| *position >= end) {
                    return None;
                }
                let mut bytes = Vec::new();
                *line += 1;
                let origin = || Origin {
                    file: name.clone(),
                    line: *line,
                };
                let start = *position;
                let read = read_line_capped(reader.as_mut(), &mut bytes, max, position);
                match read {
                    Ok(LineRead::Eof) => None,
                    Ok(LineRead::Line) => Some(Frame::Record(Record {
                        origin: origin(),
                        location: input.map(|input| Location {
                            input,
                            offset: start,
                            len: bytes.len() as u32,
                        }),
                        bytes,
                    })),
                    Ok(LineRead::TooLong) => Some(Frame::Rejected(Rejection {
                        origin: origin(),
                        reason: RejectReason::TooLarge { limit: max },
                    })),
                    Err(e) => {
                        let frame = Frame::Rejected(Rejection {
                            origin: origin(),
                            reason: RejectReason::Unreadable(e.to_string()),
                        });
                        // A broken stream cannot be resumed: end this input after reporting it.
                        *reader = Box::new(io::empty());
                        Some(frame)
                    }
                }
            }
            Source::WholeFile { name, reader } => {
                let reader = reader.take()?;
                Some(read_whole(name.clone(), reader, max))
            }
            Source::Dir { root, files, next } => {
                let path = files.get(*next)?.clone();
                *next += 1;
                let name = display_relative(root, &path);
                let opened = File::open(&path).and_then(|f| {
                    decompress(BufReader::new(Counting {
                        inner: Box::new(f),
                        counter: counter.clone(),
                    }))
                    .map(|(reader, _)| reader)
                });
                Some(match opened {
                    Ok(reader) => read_whole(name, reader, max),
                    Err(e) => Frame::Rejected(Rejection {
                        origin: Origin {
                            file: name,
                            line: 0,
                        },
                        reason: RejectReason::Unreadable(e.to_string()),
                    }),
                })
            }
        }
    }
}

fn read_whole(name: String, reader: Box<dyn BufRead + Send>, max: usize) -> Frame {
    let origin = Origin {
        file: name,
        line: 0,
    };
    let mut bytes = Vec::new();
    match reader.take(max as u64 + 1).read_to_end(&mut bytes) {
        Ok(_) if bytes.len() > max => Frame::Rejected(Rejection {
            origin,
            reason: RejectReason::TooLarge { limit: max },
        }),
        Ok(_) => Frame::Record(Record {
            origin,
            bytes,
            location: None,
        }),
        Err(e) => Frame::Rejected(Rejection {
            origin,
            reason: RejectReason::Unreadable(e.to_string()),
        }),
    }
}

/// The display name of a file found under a `--format files` directory: the directory as given,
/// joined with the file's path below it, with `/` separators.
fn display_relative(root: &Path, path: &Path) -> String {
    let below = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = below
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    format!(
        "{}/{}",
        root.display().to_string().trim_end_matches('/'),
        parts.join("/")
    )
}

fn walk_files(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn dir_or_file_size(path: &Path) -> Option<u64> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() {
        Some(
            walk_files(path)
                .ok()?
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum(),
        )
    } else {
        Some(meta.len())
    }
}

/// Wraps a buffered reader in a decoder when its first bytes are a gzip or zstd magic number, and
/// says whether it did.
fn decompress<R: BufRead + Send + 'static>(
    mut reader: R,
) -> io::Result<(Box<dyn BufRead + Send>, bool)> {
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::bufread::MultiGzDecoder::new(reader);
        Ok((Box::new(BufReader::with_capacity(1 << 16, decoder)), true))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::stream::read::Decoder::with_buffer(reader)?;
        Ok((Box::new(BufReader::with_capacity(1 << 16, decoder)), true))
    } else {
        Ok((Box::new(reader), false))
    }
}

enum LineRead {
    Eof,
    Line,
    TooLong,
}

/// Reads one line (without its `\n`) into `buf`, adding the bytes consumed to `position`. A line
/// longer than `max` bytes is consumed and dropped without being stored, and reported as `TooLong`.
fn read_line_capped(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
    position: &mut u64,
) -> io::Result<LineRead> {
    buf.clear();
    let mut seen_any = false;
    let mut too_long = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        seen_any = true;
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() + take > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        let consumed = if done { take + 1 } else { take };
        reader.consume(consumed);
        *position += consumed as u64;
        if done {
            break;
        }
    }
    Ok(match (seen_any, too_long) {
        (false, _) => LineRead::Eof,
        (true, true) => LineRead::TooLong,
        (true, false) => LineRead::Line,
    })
}

/// Counts the bytes read from the underlying input, for progress reporting.
struct Counting {
    inner: Box<dyn Read + Send>,
    counter: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Copies what it reads from stdin into the spool file.
struct Tee {
    inner: io::Stdin,
    copy: io::BufWriter<File>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        if n == 0 {
            self.copy.flush()?;
        }
        Ok(n)
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        let _ = self.copy.flush();
    }
}

/// Which fields of a JSON record to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub text: String,
    pub id: String,
    /// A numeric field whose value decides which cluster member is kept (`--keep max:FIELD`).
    pub keep: Option<String>,
    /// A field naming the document's group (a site, or a URL whose host is used) for counting
    /// boilerplate per group.
    pub group: Option<String>,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            text: "text".to_string(),
            id: "id".to_string(),
            keep: None,
            group: None,
        }
    }
}

/// One parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document<'a> {
    pub id: Cow<'a, str>,
    pub text: Cow<'a, str>,
    /// The keep field's value; `-inf` when absent or not a number.
    pub keep_value: f64,
    /// The group field's value, when asked for and a string.
    pub group: Option<Cow<'a, str>>,
}

/// Turns a record's bytes into a [`Document`].
#[derive(Debug, Clone)]
pub struct Parser {
    format: Format,
    fields: Fields,
}

impl Parser {
    pub fn new(format: Format, fields: Fields) -> Self {
        Parser { format, fields }
    }

    pub fn parse<'a>(&self, record: &'a Record) -> Result<Document<'a>, RejectReason> {
        let text = std::str::from_utf8(&record.bytes).map_err(|e| RejectReason::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        match self.format {
            Format::Lines | Format::Files => Ok(Document {
                id: Cow::Owned(record.origin.to_string()),
                text: Cow::Borrowed(text),
                keep_value: f64::NEG_INFINITY,
                group: None,
            }),
            Format::Jsonl => {
                if text.trim().is_empty() {
                    return Err(RejectReason::BlankLine);
                }
                let mut de = serde_json::Deserializer::from_str(text);
                let picked = PickFields {
                    fields: &self.fields,
                }
                .deserialize(&mut de)
                .and_then(|p| de.end().map(|_| p))
                .map_err(|e| RejectReason::InvalidJson(e.to_string()))?;
                let text = match picked.text {
                    Picked::Missing => {
                        return Err(RejectReason::MissingField(self.fields.text.clone()));
                    }
                    Picked::Text(t) => t,
                    Picked::Other(_) => {
                        return Err(RejectReason::NotAString(self.fields.text.clone()));
                    }
                };
                let id = match picked.id {
                    Picked::Text(t) => t,
                    Picked::Other(v) if !v.is_null() => Cow::Owned(v.to_string()),
                    _ => Cow::Owned(record.origin.to_string()),
                };
                let group = match picked.group {
                    Picked::Text(t) => Some(t),
                    _ => None,
                };
                Ok(Document {
                    id,
                    text,
                    keep_value: picked.keep.unwrap_or(f64::NEG_INFINITY),
                    group,
                })
            }
        }
    }
}

impl Parser {
    /// The record with its text replaced by `new_text`: for JSON Lines, only the text field's
    /// value is rewritten, every other byte stays; otherwise the record is the text.
    pub fn replace_text(&self, record: &Record, new_text: &str) -> Result<Vec<u8>, RejectReason> {
        if self.format != Format::Jsonl {
            return Ok(new_text.as_bytes().to_vec());
        }
        let text = std::str::from_utf8(&record.bytes).map_err(|e| RejectReason::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        let mut de = serde_json::Deserializer::from_str(text);
        let raw = de::Deserializer::deserialize_map(
            &mut de,
            FindRaw {
                field: &self.fields.text,
            },
        )
        .map_err(|e| RejectReason::InvalidJson(e.to_string()))?
        .ok_or_else(|| RejectReason::MissingField(self.fields.text.clone()))?;
        // The raw value borrows from `text`: its offset there is where to splice.
        let start = raw.as_ptr() as usize - text.as_ptr() as usize;
        let end = start + raw.len();
        let replacement = serde_json::to_string(new_text).expect("a string serializes");
        let mut out = Vec::with_capacity(text.len() - raw.len() + replacement.len());
        out.extend_from_slice(&text.as_bytes()[..start]);
        out.extend_from_slice(replacement.as_bytes());
        out.extend_from_slice(&text.as_bytes()[end..]);
        Ok(out)
    }
}

/// Finds the raw JSON of one field's value in an object.
struct FindRaw<'f> {
    field: &'f str,
}

impl<'de> Visitor<'de> for FindRaw<'_> {
    type Value = Option<&'de str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.field && found.is_none() {
                let raw: &'de serde_json::value::RawValue = map.next_value()?;
                found = Some(raw.get());
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

enum Picked<'a> {
    Missing,
    Text(Cow<'a, str>),
    Other(serde_json::Value),
}

struct PickedFields<'a> {
    text: Picked<'a>,
    id: Picked<'a>,
    keep: Option<f64>,
    group: Picked<'a>,
}

/// Deserializes only the fields we need from a JSON object, skipping the rest without building it.
struct PickFields<'f> {
    fields: &'f Fields,
}

impl<'de> DeserializeSeed<'de> for PickFields<'_> {
    type Value = PickedFields<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PickFields<'_> {
    type Value = PickedFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = PickedFields {
            text: Picked::Missing,
            id: Picked::Missing,
            keep: None,
            group: Picked::Missing,
        };
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.fields.text.as_str() {
                out.text = map.next_value::<StrOrValue>()?.0;
            } else if key == self.fields.id.as_str() {
                out.id = map.next_value::<StrOrValue>()?.0;
            } else if self.fields.group.as_deref() == Some(key.as_ref()) {
                out.group = map.next_value::<StrOrValue>()?.0;
            } else if self.fields.keep.as_deref() == Some(key.as_ref()) {
                let v: serde_json::Value = map.next_value()?;
                out.keep = v.as_f64();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

/// A string borrowed from the input when it has no escapes, or any other JSON value.
struct StrOrValue<'a>(Picked<'a>);

impl<'de> de::Deserialize<'de> for StrOrValue<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Text(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Text(Cow::Owned(v.to_string()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Text(Cow::Owned(v))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Other(v.into())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Other(v.into())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Other(v.into())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Other(v.into())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Other(serde_json::Value::Null)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StrOrValue(Picked::Other(serde_json::Value::Array(vec![]))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StrOrValue(Picked::Other(serde_json::Value::Object(
                    Default::default(),
                ))))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_text_rewrites_only_the_text_value() {
        let parser = Parser::new(Format::Jsonl, Fields::default());
        let record = Record {
            origin: Origin {
                file: "f".into(),
                line: 1,
            },
            bytes: br#"{"a": [1, {"text": 2}],  "text" : "old \"q\"\n", "z":"\u00e9"}"#.to_vec(),
            location: None,
        };
        let out = parser.replace_text(&record, "new \"text\"\nline").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a": [1, {"text": 2}],  "text" : "new \"text\"\nline", "z":"\u00e9"}"#
        );
        let missing = Record {
            bytes: br#"{"body": "x"}"#.to_vec(),
            ..record.clone()
        };
        assert!(matches!(
            parser.replace_text(&missing, "y"),
            Err(RejectReason::MissingField(_))
        ));
        let lines = Parser::new(Format::Lines, Fields::default());
        assert_eq!(lines.replace_text(&record, "plain").unwrap(), b"plain");
    }

    fn record(bytes: &[u8]) -> Record {
        Record {
            origin: Origin {
                file: "f.jsonl".into(),
                line: 7,
            },
            bytes: bytes.to_vec(),
            location: None,
        }
    }

    fn parser() -> Parser {
        Parser::new(Format::Jsonl, Fields::default())
    }

    #[test]
    fn parses_text_and_id_and_skips_other_fields() {
        let r = record(br#"{"meta":{"a":[1,2]},"id":"x1","text":"hello\nworld","n":3}"#);
        let d = parser().parse(&r).unwrap();
        assert_eq!(d.id, "x1");
        assert_eq!(d.text, "hello\nworld");
    }

    #[test]
    fn numeric_id_and_missing_id() {
        let r = record(br#"{"id":42,"text":"a"}"#);
        assert_eq!(parser().parse(&r).unwrap().id, "42");
        let r = record(br#"{"text":"a"}"#);
        assert_eq!(parser().parse(&r).unwrap().id, "f.jsonl:7");
    }

    #[test]
    fn bad_records_are_rejected_with_a_reason() {
        let p = parser();
        assert_eq!(
            p.parse(&record(b"{\"text\":\"a\xff\"}")),
            Err(RejectReason::InvalidUtf8 { offset: 10 })
        );
        assert!(matches!(
            p.parse(&record(br#"{"text":"a""#)),
            Err(RejectReason::InvalidJson(_))
        ));
        assert!(matches!(
            p.parse(&record(br#"[1,2]"#)),
            Err(RejectReason::InvalidJson(_))
        ));
        assert_eq!(
            p.parse(&record(br#"{"body":"a"}"#)),
            Err(RejectReason::MissingField("text".into()))
        );
        assert_eq!(
            p.parse(&record(br#"{"text":5}"#)),
            Err(RejectReason::NotAString("text".into()))
        );
        assert_eq!(p.parse(&record(b"   ")), Err(RejectReason::BlankLine));
        assert!(matches!(
            p.parse(&record(br#"{"text":"a"} trailing"#)),
            Err(RejectReason::InvalidJson(_))
        ));
    }

    #[test]
    fn keep_field_is_read_as_number() {
        let fields = Fields {
            keep: Some("score".into()),
            ..Fields::default()
        };
        let p = Parser::new(Format::Jsonl, fields);
        let r = record(br#"{"text":"a","score":2.5}"#);
        assert_eq!(p.parse(&r).unwrap().keep_value, 2.5);
        let r = record(br#"{"text":"a","score":"high"}"#);
        assert_eq!(p.parse(&r).unwrap().keep_value, f64::NEG_INFINITY);
    }

    #[test]
    fn capped_lines_drop_long_records_without_losing_sync() {
        let data = b"short\nthis line is far too long\nok\nlast-no-newline";
        let mut reader: &[u8] = data;
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        let mut position = 0;
        loop {
            match read_line_capped(&mut reader, &mut buf, 10, &mut position).unwrap() {
                LineRead::Eof => break,
                LineRead::Line => seen.push(String::from_utf8(buf.clone()).unwrap()),
                LineRead::TooLong => seen.push("<too long>".into()),
            }
        }
        assert_eq!(seen, ["short", "<too long>", "ok", "<too long>"]);
        assert_eq!(position, data.len() as u64);
    }

    #[test]
    fn records_of_plain_files_can_be_read_back_by_location() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.jsonl");
        std::fs::write(&plain, "first\n\nthird line\r\nlast").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"zipped\n").unwrap();
        let zipped = dir.path().join("b.gz");
        std::fs::write(&zipped, gz.finish().unwrap()).unwrap();
        let inputs = vec![Input::Path(plain), Input::Path(zipped)];
        let mut set = InputSet::new(inputs, Format::Lines, 1 << 20).unwrap();
        let records: Vec<Record> = set
            .frames()
            .filter_map(|f| match f {
                Frame::Record(r) => Some(r),
                Frame::Rejected(_) => None,
            })
            .collect();
        assert_eq!(records.len(), 5);
        let reader = set.record_reader();
        for r in &records[..4] {
            assert_eq!(reader.read(r.location.unwrap()).unwrap(), r.bytes);
        }
        assert_eq!(records[4].location, None, "compressed input");
    }

    #[test]
    fn gzip_and_zstd_are_detected_by_magic_bytes() {
        let plain = b"{\"text\":\"a\"}\n{\"text\":\"b\"}\n".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&plain[..], 1).unwrap();
        for data in [plain.clone(), gz, zst] {
            let mut out = Vec::new();
            decompress(io::Cursor::new(data))
                .unwrap()
                .0
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, plain);
        }
    }
}
