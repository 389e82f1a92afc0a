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
use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::error::{ConfigError, Error, InputFailure, Origin, RejectReason, Rejection};

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
    /// An input could not be opened or read to its end. Reading stops here unless the set keeps
    /// going past broken inputs ([`InputSet::keep_going`]), in which case the failure is recorded
    /// ([`InputSet::report`]) and never yielded.
    Failed(InputFailure),
}

impl Frame {
    /// The record, or why there is none. Passes stop at a failed input before its frame is
    /// processed; should one get this far, it reads as an unreadable record.
    pub fn record(&self) -> Result<&Record, Rejection> {
        match self {
            Frame::Record(record) => Ok(record),
            Frame::Rejected(rejection) => Err(rejection.clone()),
            Frame::Failed(failure) => Err(Rejection {
                origin: Origin {
                    file: failure.file.clone(),
                    line: 0,
                },
                reason: RejectReason::Unreadable(failure.reason.clone()),
            }),
        }
    }
}

/// The ordered inputs of one run, and the spools that let streams (stdin, pipes) be read twice.
#[derive(Debug)]
pub struct InputSet {
    inputs: Vec<Input>,
    format: Format,
    max_doc_bytes: usize,
    /// Per input: the copy of a stream input made while it was first read.
    spools: Vec<Option<File>>,
    /// Per input: whether a stream input has been read once.
    consumed: Vec<bool>,
    /// Whether streams are copied to a temporary file so that a later pass can read them again.
    spool_streams: bool,
    /// When set, passes read only these pieces (one worker's share of a distributed run).
    pieces: Option<Vec<Piece>>,
    /// Go on past an input that cannot be opened or read to its end (recording it).
    keep_going: bool,
    /// Files that are never read as documents of a directory input (the run's own outputs).
    exclude: Vec<PathBuf>,
    /// Per input of the files format that is a directory: its files, listed once.
    listings: Vec<Option<Arc<Vec<PathBuf>>>>,
    /// What reading found besides records: skipped byte-order marks, incomplete inputs.
    report: InputReport,
    /// (input, file within a directory input) of every byte-order mark skipped, counted once.
    marks_seen: BTreeSet<(usize, usize)>,
    /// Inputs whose failure is recorded, counted once.
    failed_seen: BTreeSet<usize>,
}

/// What reading the inputs found besides their records.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputReport {
    /// Inputs (or files of a directory input) that began with a UTF-8 byte-order mark, which was
    /// skipped.
    pub byte_order_marks: u64,
    /// Inputs that could not be opened or read to their end, when the run kept going past them.
    pub incomplete_inputs: Vec<InputFailure>,
}

impl InputReport {
    /// Lines for people: only what happened (nothing when every input was whole and unmarked).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.byte_order_marks > 0 {
            out.push_str(&format!(
                "byte-order marks   {:>12}  skipped at the start of inputs\n",
                self.byte_order_marks
            ));
        }
        if !self.incomplete_inputs.is_empty() {
            out.push_str(&format!(
                "incomplete inputs  {:>12}  (read up to where they broke off)\n",
                self.incomplete_inputs.len()
            ));
            for failure in &self.incomplete_inputs {
                out.push_str(&format!("  {failure}\n"));
            }
        }
        out
    }
}

/// A line warning of documents sharing an id, or nothing.
pub fn duplicate_ids_text(duplicate_ids: u64) -> String {
    if duplicate_ids == 0 {
        return String::new();
    }
    format!(
        "warning: duplicate ids {:>6}  documents whose id an earlier document already had (removals and clusters name documents by id)\n",
        duplicate_ids
    )
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
        let count = inputs.len();
        Ok(InputSet {
            inputs,
            format,
            max_doc_bytes,
            spools: (0..count).map(|_| None).collect(),
            consumed: vec![false; count],
            spool_streams: true,
            pieces: None,
            keep_going: false,
            exclude: Vec::new(),
            listings: vec![None; count],
            report: InputReport::default(),
            marks_seen: BTreeSet::new(),
            failed_seen: BTreeSet::new(),
        })
    }

    /// Go on past an input that cannot be opened or read to its end: the records read from it
    /// count, the failure is recorded in [`InputSet::report`] and the next input is read.
    /// Without it (the default), such an input ends the pass with a [`Frame::Failed`].
    pub fn keep_going(mut self, keep_going: bool) -> Self {
        self.keep_going = keep_going;
        self
    }

    /// Paths never read as documents of a directory input (the run's own outputs, which may be
    /// written inside it). Temporary files of neardup (`.neardup-*`) are never read either.
    pub fn exclude(mut self, paths: impl IntoIterator<Item = PathBuf>) -> Self {
        self.exclude = paths
            .into_iter()
            .map(|p| crate::output::resolved(&p))
            .collect();
        self
    }

    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// What reading has found so far besides records.
    pub fn report(&self) -> &InputReport {
        &self.report
    }

    /// Whether input `index` is a stream (stdin, a pipe, a device, a socket): read once, in
    /// order, and spooled when a later pass needs it again.
    fn is_stream(&self, index: usize) -> bool {
        match &self.inputs[index] {
            Input::Stdin => true,
            Input::Path(p) => std::fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir()),
        }
    }

    /// Checks every input before any work: that it exists, is of the right kind (a directory only
    /// for the files format) and can be opened (streams are not opened: a named pipe would block
    /// until its writer comes). Fails on the first bad input, or, when keeping going, records
    /// every bad input and returns `Ok`.
    pub fn check(&mut self) -> Result<(), Error> {
        for index in 0..self.inputs.len() {
            let Input::Path(path) = self.inputs[index].clone() else {
                continue;
            };
            let failure = |reason: String| InputFailure {
                file: path.display().to_string(),
                records_read: 0,
                reason,
            };
            let problem = match std::fs::metadata(&path) {
                Err(e) => Some(failure(io_reason(&e))),
                Ok(m) if m.is_dir() && self.format != Format::Files => Some(failure(
                    "is a directory (a directory of documents, one per file, is read with the files format)"
                        .to_string(),
                )),
                Ok(m) if m.is_dir() => match self.listing(index) {
                    Ok(_) => None,
                    Err(e) => Some(failure(io_reason(&e))),
                },
                Ok(m) if m.is_file() => match File::open(&path) {
                    Ok(_) => None,
                    Err(e) => Some(failure(io_reason(&e))),
                },
                Ok(_) => None,
            };
            if let Some(problem) = problem {
                self.failed(index, problem)?;
            }
        }
        Ok(())
    }

    /// Records a failed input when keeping going; otherwise returns it as the run's error.
    fn failed(&mut self, index: usize, failure: InputFailure) -> Result<(), Error> {
        match self.record_failure(index, failure) {
            None => Ok(()),
            Some(failure) => Err(Error::InputFailed(failure)),
        }
    }

    /// Records a failed input when keeping going (once per input) and returns `None`; otherwise
    /// gives the failure back.
    fn record_failure(&mut self, index: usize, failure: InputFailure) -> Option<InputFailure> {
        if !self.keep_going {
            return Some(failure);
        }
        if self.failed_seen.insert(index) {
            self.report.incomplete_inputs.push(failure);
        }
        None
    }

    /// The files of directory input `index`, sorted, listed once for every pass, without the
    /// run's own outputs and temporary files.
    fn listing(&mut self, index: usize) -> io::Result<Arc<Vec<PathBuf>>> {
        if let Some(files) = &self.listings[index] {
            return Ok(files.clone());
        }
        let Input::Path(root) = &self.inputs[index] else {
            return Ok(Arc::new(Vec::new()));
        };
        let mut files = walk_files(root)?;
        if !self.exclude.is_empty() {
            files.retain(|f| !self.exclude.contains(&crate::output::resolved(f)));
        }
        let files = Arc::new(files);
        self.listings[index] = Some(files.clone());
        Ok(files)
    }

    /// Total size in bytes of the inputs as stored, when every input is a regular file or directory.
    pub fn total_bytes(&self) -> Option<u64> {
        let mut total = 0;
        for (index, input) in self.inputs.iter().enumerate() {
            match input {
                Input::Path(p) if !self.is_stream(index) => total += dir_or_file_size(p)?,
                _ => return None,
            }
        }
        Some(total)
    }

    /// Opens every regular-file input for reading records back by [`Location`] (streams and
    /// directories are not opened: their records have no location).
    pub fn record_reader(&self) -> RecordReader {
        RecordReader {
            files: self
                .inputs
                .iter()
                .map(|input| match input {
                    Input::Path(p) if std::fs::metadata(p).is_ok_and(|m| m.is_file()) => {
                        File::open(p).ok()
                    }
                    _ => None,
                })
                .collect(),
        }
    }

    /// Starts a pass over all inputs. The first pass over a stream spools it; later passes replay
    /// the spool.
    pub fn frames(&mut self) -> Frames<'_> {
        Frames {
            set: self,
            next_input: 0,
            current: None,
            bytes_read: Arc::new(AtomicU64::new(0)),
            stopped: false,
        }
    }

    /// The reader of stream input `index`: the stream itself the first time (copied to a spool
    /// when streams are spooled), the spool afterwards.
    fn open_stream(&mut self, index: usize) -> io::Result<Box<dyn Read + Send>> {
        if self.consumed[index] {
            let mut spool = self.spools[index]
                .as_ref()
                .ok_or_else(|| io::Error::other("was already read (a single-pass run)"))?
                .try_clone()?;
            spool.rewind()?;
            return Ok(Box::new(spool));
        }
        let stream: Box<dyn Read + Send> = match &self.inputs[index] {
            Input::Stdin => Box::new(io::stdin()),
            Input::Path(p) => Box::new(File::open(p)?),
        };
        self.consumed[index] = true;
        if !self.spool_streams {
            return Ok(stream);
        }
        let spool = tempfile::tempfile()?;
        let writer = spool.try_clone()?;
        self.spools[index] = Some(spool);
        Ok(Box::new(Tee {
            inner: stream,
            copy: io::BufWriter::new(writer),
        }))
    }

    fn open(&mut self, index: usize, counter: &Arc<AtomicU64>) -> io::Result<Source> {
        let name = self.inputs[index].display_name();
        let stream = self.is_stream(index);
        let raw: Box<dyn Read + Send> = match &self.inputs[index] {
            _ if stream => self.open_stream(index)?,
            Input::Path(p) => {
                if self.format == Format::Files && p.is_dir() {
                    let root = p.clone();
                    let files = self.listing(index)?;
                    return Ok(Source::Dir {
                        root,
                        files,
                        next: 0,
                        marked: None,
                    });
                }
                Box::new(File::open(p)?)
            }
            Input::Stdin => unreachable!("stdin is a stream"),
        };
        let counted = Counting {
            inner: raw,
            counter: counter.clone(),
        };
        let (reader, compressed) = decompress(BufReader::with_capacity(1 << 16, counted))?;
        let seekable = !compressed && !stream;
        Ok(match self.format {
            Format::Files => Source::WholeFile {
                name,
                reader: Some(reader),
                marked: false,
            },
            Format::Jsonl | Format::Lines => Source::Lines {
                name,
                reader,
                line: 0,
                position: 0,
                input: seekable.then_some(index as u32),
                end: None,
                marked: false,
            },
        })
    }

    /// Notes a byte-order mark skipped at the start of input `index` (file `file` of a directory).
    fn mark_skipped(&mut self, index: usize, file: usize) {
        if self.marks_seen.insert((index, file)) {
            self.report.byte_order_marks += 1;
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

/// An iterator over the frames of all inputs, in order.
pub struct Frames<'a> {
    set: &'a mut InputSet,
    next_input: usize,
    /// The input being read (its number) and its source.
    current: Option<(usize, Source)>,
    bytes_read: Arc<AtomicU64>,
    /// Set once a failed input has been yielded: the pass ends there.
    stopped: bool,
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

    /// A failed input: recorded (and skipped) when the set keeps going, otherwise the last frame
    /// of the pass.
    fn fail(&mut self, index: usize, failure: InputFailure) -> Option<Frame> {
        let failure = self.set.record_failure(index, failure)?;
        self.stopped = true;
        Some(Frame::Failed(failure))
    }
}

impl Iterator for Frames<'_> {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        if self.stopped {
            return None;
        }
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
                    Ok(source) => self.current = Some((index, source)),
                    Err(e) => {
                        let failure = InputFailure {
                            file: self.set.inputs[index].display_name(),
                            records_read: 0,
                            reason: io_reason(&e),
                        };
                        match self.fail(index, failure) {
                            Some(frame) => return Some(frame),
                            None => continue,
                        }
                    }
                }
            }
            let max = self.set.max_doc_bytes;
            let (index, source) = self.current.as_mut()?;
            let index = *index;
            let frame = source.next_frame(max, &self.bytes_read);
            if let Some(file) = source.take_mark() {
                self.set.mark_skipped(index, file);
            }
            match frame {
                Some(Frame::Failed(failure)) => {
                    self.current = None;
                    if let Some(frame) = self.fail(index, failure) {
                        return Some(frame);
                    }
                }
                Some(frame) => return Some(frame),
                None => self.current = None,
            }
        }
    }
}

/// The UTF-8 byte-order mark, skipped at the start of an input.
const BOM: &[u8] = b"\xef\xbb\xbf";

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
        /// Set when a byte-order mark was just skipped.
        marked: bool,
    },
    WholeFile {
        name: String,
        reader: Option<Box<dyn BufRead + Send>>,
        marked: bool,
    },
    Dir {
        root: PathBuf,
        files: Arc<Vec<PathBuf>>,
        next: usize,
        /// The file whose byte-order mark was just skipped.
        marked: Option<usize>,
    },
}

impl Source {
    /// Which file of the input just had its byte-order mark skipped (0 unless a directory).
    fn take_mark(&mut self) -> Option<usize> {
        match self {
            Source::Lines { marked, .. } | Source::WholeFile { marked, .. } => {
                std::mem::take(marked).then_some(0)
            }
            Source::Dir { marked, .. } => marked.take(),
        }
    }

    fn next_frame(&mut self, max: usize, counter: &Arc<AtomicU64>) -> Option<Frame> {
        match self {
            Source::Lines {
                name,
                reader,
                line,
                position,
                input,
                end,
                marked,
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
                let mut start = *position;
                let read = read_line_capped(reader.as_mut(), &mut bytes, max, position);
                if start == 0 && bytes.starts_with(BOM) {
                    bytes.drain(..BOM.len());
                    start += BOM.len() as u64;
                    *marked = true;
                }
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
                    // A broken stream (a truncated or corrupt compressed file, a failing disk)
                    // cannot be resumed: the input ends here.
                    Err(e) => Some(Frame::Failed(InputFailure {
                        file: name.clone(),
                        records_read: *line - 1,
                        reason: io_reason(&e),
                    })),
                }
            }
            Source::WholeFile {
                name,
                reader,
                marked,
            } => {
                let reader = reader.take()?;
                let (frame, mark) = read_whole(name.clone(), reader, max);
                *marked = mark;
                Some(match frame {
                    Frame::Rejected(Rejection {
                        reason: RejectReason::Unreadable(reason),
                        ..
                    }) => Frame::Failed(InputFailure {
                        file: name.clone(),
                        records_read: 0,
                        reason,
                    }),
                    frame => frame,
                })
            }
            Source::Dir {
                root,
                files,
                next,
                marked,
            } => {
                let path = files.get(*next)?.clone();
                let file = *next;
                *next += 1;
                let name = display_relative(root, &path);
                let opened = File::open(&path).and_then(|f| {
                    decompress(BufReader::new(Counting {
                        inner: Box::new(f),
                        counter: counter.clone(),
                    }))
                    .map(|(reader, _)| reader)
                });
                // One file of a directory is one document: a file that cannot be read is a
                // rejected document, and the directory goes on.
                Some(match opened {
                    Ok(reader) => {
                        let (frame, mark) = read_whole(name, reader, max);
                        *marked = mark.then_some(file);
                        frame
                    }
                    Err(e) => Frame::Rejected(Rejection {
                        origin: Origin {
                            file: name,
                            line: 0,
                        },
                        reason: RejectReason::Unreadable(io_reason(&e)),
                    }),
                })
            }
        }
    }
}

/// Reads one whole file as one record, skipping a leading byte-order mark (and saying so).
fn read_whole(name: String, reader: Box<dyn BufRead + Send>, max: usize) -> (Frame, bool) {
    let origin = Origin {
        file: name,
        line: 0,
    };
    let mut bytes = Vec::new();
    let frame = match reader.take(max as u64 + 1).read_to_end(&mut bytes) {
        Ok(_) if bytes.len() > max => Frame::Rejected(Rejection {
            origin,
            reason: RejectReason::TooLarge { limit: max },
        }),
        Ok(_) if bytes.starts_with(BOM) => {
            bytes.drain(..BOM.len());
            return (
                Frame::Record(Record {
                    origin,
                    bytes,
                    location: None,
                }),
                true,
            );
        }
        Ok(_) => Frame::Record(Record {
            origin,
            bytes,
            location: None,
        }),
        Err(e) => Frame::Rejected(Rejection {
            origin,
            reason: RejectReason::Unreadable(io_reason(&e)),
        }),
    };
    (frame, false)
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
            if crate::output::is_temporary_name(&entry.file_name()) {
                continue;
            }
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

/// Copies what it reads from a stream into the spool file.
struct Tee {
    inner: Box<dyn Read + Send>,
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
                let duplicate = std::cell::Cell::new(None);
                let mut de = serde_json::Deserializer::from_str(text);
                let picked = PickFields {
                    fields: &self.fields,
                    duplicate: &duplicate,
                }
                .deserialize(&mut de)
                .and_then(|p| de.end().map(|_| p));
                if let Some(field) = duplicate.take() {
                    return Err(RejectReason::DuplicateField(field));
                }
                let picked = picked.map_err(|e| RejectReason::InvalidJson(e.to_string()))?;
                let text = match picked.text {
                    Picked::Missing => {
                        return Err(RejectReason::MissingField {
                            field: self.fields.text.clone(),
                            present: top_level_keys(text),
                        });
                    }
                    Picked::Text(t) => t,
                    Picked::Other(_) => {
                        return Err(RejectReason::NotAString(self.fields.text.clone()));
                    }
                };
                let id = match picked.id {
                    Picked::Text(t) => t,
                    // A number, a boolean, an object or an array: its compact JSON text.
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

/// The first keys of a JSON object, for saying which fields a record has (at most 12).
fn top_level_keys(text: &str) -> Vec<String> {
    const SHOWN: usize = 12;
    let Ok(map) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = map.keys().take(SHOWN).cloned().collect();
    if map.len() > SHOWN {
        keys.push(format!("… {} more", map.len() - SHOWN));
    }
    keys
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
        let duplicate = std::cell::Cell::new(None);
        let mut de = serde_json::Deserializer::from_str(text);
        let raw = de::Deserializer::deserialize_map(
            &mut de,
            FindRaw {
                field: &self.fields.text,
                duplicate: &duplicate,
            },
        );
        if let Some(field) = duplicate.take() {
            return Err(RejectReason::DuplicateField(field));
        }
        let raw = raw
            .map_err(|e| RejectReason::InvalidJson(e.to_string()))?
            .ok_or_else(|| RejectReason::MissingField {
                field: self.fields.text.clone(),
                present: top_level_keys(text),
            })?;
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

/// Finds the raw JSON of one field's value in an object (a field given twice is ambiguous).
struct FindRaw<'f> {
    field: &'f str,
    duplicate: &'f std::cell::Cell<Option<String>>,
}

impl<'de> Visitor<'de> for FindRaw<'_> {
    type Value = Option<&'de str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.field {
                if found.is_some() {
                    self.duplicate.set(Some(key.into_owned()));
                    return Err(de::Error::custom("duplicate field"));
                }
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
/// A field it reads that appears twice is ambiguous: it is named in `duplicate` and the object
/// is refused.
struct PickFields<'f> {
    fields: &'f Fields,
    duplicate: &'f std::cell::Cell<Option<String>>,
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
        let mut seen = [false; 4];
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let field = if key == self.fields.text.as_str() {
                0
            } else if key == self.fields.id.as_str() {
                1
            } else if self.fields.group.as_deref() == Some(key.as_ref()) {
                2
            } else if self.fields.keep.as_deref() == Some(key.as_ref()) {
                3
            } else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if std::mem::replace(&mut seen[field], true) {
                self.duplicate.set(Some(key.into_owned()));
                return Err(de::Error::custom("duplicate field"));
            }
            match field {
                0 => out.text = map.next_value::<StrOrValue>()?.0,
                1 => out.id = map.next_value::<StrOrValue>()?.0,
                2 => out.group = map.next_value::<StrOrValue>()?.0,
                _ => {
                    let v: serde_json::Value = map.next_value()?;
                    out.keep = v.as_f64();
                }
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
            // Objects and arrays are kept whole (an id may be one: it is then written as its
            // compact JSON text).
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let value =
                    de::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(StrOrValue(Picked::Other(value)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let value =
                    de::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(StrOrValue(Picked::Other(value)))
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
            Err(RejectReason::MissingField { .. })
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
            Err(RejectReason::MissingField {
                field: "text".into(),
                present: vec!["body".into()]
            })
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
                Frame::Rejected(_) | Frame::Failed(_) => None,
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

    #[test]
    fn issue10_a_byte_order_mark_is_skipped_counted_once_and_located_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bom.jsonl");
        std::fs::write(&path, b"\xef\xbb\xbf{\"text\":\"a\"}\n{\"text\":\"b\"}\n").unwrap();
        let mut set = InputSet::new(vec![Input::Path(path)], Format::Jsonl, 1 << 20).unwrap();
        for _ in 0..2 {
            let records: Vec<Record> = set
                .frames()
                .filter_map(|f| f.record().ok().cloned())
                .collect();
            assert_eq!(records[0].bytes, br#"{"text":"a"}"#);
            let reader = set.record_reader();
            assert_eq!(
                reader.read(records[0].location.unwrap()).unwrap(),
                records[0].bytes
            );
            assert_eq!(parser().parse(&records[0]).unwrap().text, "a");
        }
        assert_eq!(set.report().byte_order_marks, 1);
    }

    #[test]
    fn issue10_a_broken_input_ends_the_pass_unless_the_set_keeps_going() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.jsonl");
        std::fs::write(&good, "a\nb\n").unwrap();
        let missing = dir.path().join("missing.jsonl");
        let inputs = vec![Input::Path(missing.clone()), Input::Path(good.clone())];
        let mut set = InputSet::new(inputs.clone(), Format::Lines, 1 << 20).unwrap();
        assert!(matches!(set.check(), Err(Error::InputFailed(_))));
        let frames: Vec<Frame> = set.frames().collect();
        assert!(matches!(frames.as_slice(), [Frame::Failed(f)] if f.records_read == 0));
        let mut set = InputSet::new(inputs, Format::Lines, 1 << 20)
            .unwrap()
            .keep_going(true);
        assert!(set.check().is_ok());
        for _ in 0..2 {
            let frames: Vec<Frame> = set.frames().collect();
            assert_eq!(frames.len(), 2, "the good input is read: {frames:?}");
        }
        assert_eq!(set.report().incomplete_inputs.len(), 1, "recorded once");
        assert!(
            set.report().incomplete_inputs[0]
                .file
                .ends_with("missing.jsonl")
        );
    }

    #[test]
    fn issue10_a_field_given_twice_is_ambiguous_for_parse_and_splice_alike() {
        let p = parser();
        let twice = record(br#"{"id":"x","text":"a","text":"b"}"#);
        assert_eq!(
            p.parse(&twice),
            Err(RejectReason::DuplicateField("text".into()))
        );
        assert_eq!(
            p.replace_text(&twice, "c"),
            Err(RejectReason::DuplicateField("text".into()))
        );
        let id_twice = record(br#"{"id":"x","id":"y","text":"a"}"#);
        assert_eq!(
            p.parse(&id_twice),
            Err(RejectReason::DuplicateField("id".into()))
        );
        // A key inside a nested object is another field.
        let nested = record(br#"{"meta":{"text":"n"},"text":"a"}"#);
        assert_eq!(p.parse(&nested).unwrap().text, "a");
    }

    #[test]
    fn issue10_object_and_array_ids_are_their_compact_json() {
        let r = record(br#"{"id": {"site": "a", "n": [1, 2]}, "text": "t"}"#);
        assert_eq!(parser().parse(&r).unwrap().id, r#"{"n":[1,2],"site":"a"}"#);
        let r = record(br#"{"id": [1, "two"], "text": "t"}"#);
        assert_eq!(parser().parse(&r).unwrap().id, r#"[1,"two"]"#);
        let r = record(br#"{"id": true, "text": "t"}"#);
        assert_eq!(parser().parse(&r).unwrap().id, "true");
    }
}
