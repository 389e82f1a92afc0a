//! [`InputSet`]: the inputs of a run, checked before it starts, spooled when they are streams, and
//! what reading them found besides records ([`InputReport`]).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use super::frames::{Counting, Frames, Source, Tee, decompress, dir_or_file_size, walk_files};
use super::parquet_read::ParquetSource;
use super::{Fields, Format, FormatChoice, Input, Piece, RecordReader, io_reason};
use crate::error::{ConfigError, Error, InputFailure};

/// The ordered inputs of one run, and the spools that let streams (stdin, pipes) be read twice.
#[derive(Debug)]
pub struct InputSet {
    /// The inputs as read: directories of shards and glob patterns expanded into their files.
    pub(super) inputs: Vec<Input>,
    pub(super) format: FormatChoice,
    /// Per input: its format (the given one, or the one its name says).
    pub(super) formats: Vec<Format>,
    /// Per input: whether it was found in a directory or by a pattern.
    pub(super) from_shards: Vec<bool>,
    /// Per input: its name relative to the argument it came from ([`Expanded::relative`](super::Expanded::relative)).
    pub(super) relative: Vec<Option<PathBuf>>,
    pub(super) max_doc_bytes: usize,
    /// Per input: the copy of a stream input made while it was first read.
    pub(super) spools: Vec<Option<File>>,
    /// Per input: whether a stream input has been read once.
    pub(super) consumed: Vec<bool>,
    /// Whether streams are copied to a temporary file so that a later pass can read them again.
    pub(super) spool_streams: bool,
    /// When set, passes read only these pieces (one worker's share of a distributed run).
    pub(super) pieces: Option<Vec<Piece>>,
    /// Go on past an input that cannot be opened or read to its end (recording it).
    pub(super) keep_going: bool,
    /// Files that are never read as documents of a directory input (the run's own outputs).
    pub(super) exclude: Vec<PathBuf>,
    /// Per input of the files format that is a directory: its files, listed once.
    pub(super) listings: Vec<Option<Arc<Vec<PathBuf>>>>,
    /// What reading found besides records: skipped byte-order marks, incomplete inputs.
    pub(super) report: InputReport,
    /// Whether WARC records keep the gzip member they were read from ([`Record::stored`](super::Record::stored)).
    pub(super) keep_members: bool,
    /// Inputs whose skipped records are counted (on the first pass that read them whole).
    pub(super) skips_seen: BTreeSet<usize>,
    /// The fields a run reads: the columns read from Parquet inputs.
    pub(super) fields: Fields,
    /// (input, file within a directory input) of every byte-order mark skipped, counted once.
    pub(super) marks_seen: BTreeSet<(usize, usize)>,
    /// Inputs whose failure is recorded, counted once.
    pub(super) failed_seen: BTreeSet<usize>,
    /// Set by another thread to stop the run ([`InputSet::cancel_on`]).
    pub(super) cancel: Option<Arc<AtomicBool>>,
}

/// What reading the inputs found besides their records.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputReport {
    /// Inputs (or files of a directory input) that began with a UTF-8 byte-order mark, which was
    /// skipped.
    pub byte_order_marks: u64,
    /// Inputs that could not be opened or read to their end, when the run kept going past them.
    pub incomplete_inputs: Vec<InputFailure>,
    /// WARC records that are not documents (`warcinfo`, `request`, `metadata`, `revisit`,
    /// `resource`, responses that are not HTML), read and left out: every record read is a
    /// document (kept, removed or rejected) or one of these.
    pub skipped_records: u64,
    /// The skipped records by reason (the record's type, or `response (not HTML)`).
    pub skipped_by_reason: std::collections::BTreeMap<String, u64>,
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
        if self.skipped_records > 0 {
            let reasons: Vec<String> = self
                .skipped_by_reason
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            out.push_str(&format!(
                "skipped records    {:>12}  not documents: {}\n",
                self.skipped_records,
                reasons.join(", ")
            ));
        }
        if !self.incomplete_inputs.is_empty() {
            out.push_str(&format!(
                "incomplete inputs  {:>12}  (read up to where they broke off)\n",
                self.incomplete_inputs.len()
            ));
            for failure in &self.incomplete_inputs {
                out.push_str(&format!(
                    "  {}: after line {}: {}\n",
                    failure.file, failure.records_read, failure.reason
                ));
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
    /// The inputs of a run, read in `format` (one for all, or each its own by name: see
    /// [`FormatChoice`]). Checks that there is at least one input and that stdin appears at most
    /// once, and expands directories of shards and glob patterns into their files
    /// ([`expand`](super::expand)): a pattern that matches nothing, or a directory without files,
    /// is an error.
    pub fn new(
        inputs: Vec<Input>,
        format: impl Into<FormatChoice>,
        max_doc_bytes: usize,
    ) -> Result<Self, Error> {
        let format = format.into();
        if inputs.is_empty() {
            return Err(ConfigError::NoInput.into());
        }
        if inputs.iter().filter(|i| **i == Input::Stdin).count() > 1 {
            return Err(ConfigError::StdinTwice.into());
        }
        // A record's length is kept in 32 bits (`Location::len`).
        if max_doc_bytes == 0 || u32::try_from(max_doc_bytes).is_err() {
            return Err(ConfigError::MaxDocBytes.into());
        }
        let expanded = super::expand(inputs, format)?;
        let relative = expanded.iter().map(|e| e.relative.clone()).collect();
        let (inputs, from_shards): (Vec<Input>, Vec<bool>) = expanded
            .into_iter()
            .map(|e| (e.input, e.from_shards))
            .unzip();
        let formats = inputs.iter().map(|i| format.format_of(i)).collect();
        let count = inputs.len();
        Ok(InputSet {
            inputs,
            format,
            formats,
            from_shards,
            relative,
            max_doc_bytes,
            spools: (0..count).map(|_| None).collect(),
            consumed: vec![false; count],
            spool_streams: true,
            pieces: None,
            keep_going: false,
            exclude: Vec::new(),
            listings: vec![None; count],
            report: InputReport::default(),
            keep_members: false,
            skips_seen: BTreeSet::new(),
            fields: Fields::default(),
            marks_seen: BTreeSet::new(),
            failed_seen: BTreeSet::new(),
            cancel: None,
        })
    }

    /// Stops a run over these inputs once `flag` is set (by another thread: a Ctrl-C handler, a
    /// host that gives up): its passes end at the next batch with [`Error::Interrupted`], and
    /// nothing is committed.
    pub fn cancel_on(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// [`Error::Interrupted`] once the flag of [`InputSet::cancel_on`] is set.
    pub fn check_cancelled(&self) -> Result<(), Error> {
        match &self.cancel {
            Some(flag) if flag.load(std::sync::atomic::Ordering::Relaxed) => {
                Err(Error::Interrupted)
            }
            _ => Ok(()),
        }
    }

    /// The flag of [`InputSet::cancel_on`], for a pass that holds the set borrowed.
    pub(crate) fn cancel_flag(&self) -> Option<Arc<AtomicBool>> {
        self.cancel.clone()
    }

    /// Go on past an input that cannot be opened or read to its end: the records read from it
    /// count, the failure is recorded in [`InputSet::report`] and the next input is read.
    /// Without it (the default), such an input ends the pass with a [`Frame::Failed`](super::Frame::Failed).
    pub fn keep_going(mut self, keep_going: bool) -> Self {
        self.keep_going = keep_going;
        self
    }

    /// Paths never read as documents of a directory input: the run's own outputs, which may be
    /// written inside it, and directories (an index) whose files are never documents. Temporary files of neardup (`.neardup-*`) are never read either.
    pub fn exclude(mut self, paths: impl IntoIterator<Item = PathBuf>) -> Self {
        self.exclude = paths
            .into_iter()
            .map(|p| crate::output::resolved(&p))
            .collect();
        self
    }

    /// Leaves out the shards (files found in a directory or by a pattern) that lie in one of
    /// `dirs`: directories whose files are never documents (an index, a work directory). Files
    /// that are named outputs of the run are not left out: an output that is also a shard is a
    /// clash for [`check_distinct`](crate::output::check_distinct) to refuse, since writing it
    /// would replace an input. Call it before reading.
    pub fn skip_shards_in(mut self, dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        let dirs: Vec<PathBuf> = dirs
            .into_iter()
            .map(|p| crate::output::resolved(&p))
            .collect();
        if dirs.is_empty() || !self.from_shards.contains(&true) {
            return self;
        }
        let keep: Vec<bool> = (0..self.inputs.len())
            .map(|i| {
                !self.from_shards[i]
                    || match &self.inputs[i] {
                        Input::Path(p) => {
                            let p = crate::output::resolved(p);
                            !dirs.iter().any(|x| p.starts_with(x))
                        }
                        Input::Stdin => true,
                    }
            })
            .collect();
        let mut kept = keep.iter().copied();
        self.inputs.retain(|_| kept.next().unwrap_or(true));
        let mut kept = keep.iter().copied();
        self.formats.retain(|_| kept.next().unwrap_or(true));
        let mut kept = keep.iter().copied();
        self.from_shards.retain(|_| kept.next().unwrap_or(true));
        let mut kept = keep.iter().copied();
        self.relative.retain(|_| kept.next().unwrap_or(true));
        let count = self.inputs.len();
        self.spools = (0..count).map(|_| None).collect();
        self.consumed = vec![false; count];
        self.listings = vec![None; count];
        self
    }

    /// Whether WARC records read from a gzipped input keep the gzip member they were the whole
    /// of ([`Record::stored`](super::Record::stored)), so that a kept output can copy it byte for
    /// byte. Off by default (it holds the compressed bytes too).
    pub fn keep_gzip_members(&mut self, keep: bool) {
        self.keep_members = keep;
    }

    /// The fields a run reads, which say which columns of a Parquet input are read (the text,
    /// id, group, keep and URL columns). Runs of [`Dedup`](crate::Dedup) set them to theirs.
    pub fn with_fields(mut self, fields: Fields) -> Self {
        self.fields = fields;
        self
    }

    /// Sets the fields a run reads ([`InputSet::with_fields`]).
    pub fn set_fields(&mut self, fields: &Fields) {
        if self.fields != *fields {
            self.fields = fields.clone();
        }
    }

    /// Whether any input is read as Parquet.
    pub fn has_parquet(&self) -> bool {
        self.formats.contains(&Format::Parquet)
    }

    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// The largest record read.
    pub fn max_doc_bytes(&self) -> usize {
        self.max_doc_bytes
    }

    /// Whether reading goes on past an input that cannot be read to its end.
    pub fn keeps_going(&self) -> bool {
        self.keep_going
    }

    /// How the inputs' formats were chosen.
    pub fn format(&self) -> FormatChoice {
        self.format
    }

    /// The format input `index` is read in.
    pub fn format_of(&self, index: usize) -> Format {
        self.formats[index]
    }

    /// Whether input `index` was found in a directory or by a pattern, rather than named.
    pub fn is_shard(&self, index: usize) -> bool {
        self.from_shards[index]
    }

    /// Input `index`'s name relative to the argument it came from: below a directory of shards,
    /// below a pattern's part without wildcards, or its own file name; `None` for stdin.
    pub fn relative_name(&self, index: usize) -> Option<&std::path::Path> {
        self.relative[index].as_deref()
    }

    /// Per input, its size in bytes as stored, when every input is a regular file or directory.
    pub fn sizes(&self) -> Option<Vec<u64>> {
        (0..self.inputs.len())
            .map(|index| match &self.inputs[index] {
                Input::Path(p) if !self.is_stream(index) => dir_or_file_size(p),
                _ => None,
            })
            .collect()
    }

    /// What reading has found so far besides records.
    pub fn report(&self) -> &InputReport {
        &self.report
    }

    /// Whether input `index` is a stream (stdin, a pipe, a device, a socket): read once, in
    /// order, and spooled when a later pass needs it again.
    pub(super) fn is_stream(&self, index: usize) -> bool {
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
        // Every shard may have been left out (all of them in an index directory).
        if self.inputs.is_empty() {
            return Err(ConfigError::NoInput.into());
        }
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
                Ok(m) if m.is_dir() && self.formats[index] != Format::Files => Some(failure(
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
    pub(super) fn record_failure(
        &mut self,
        index: usize,
        failure: InputFailure,
    ) -> Option<InputFailure> {
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
    pub(super) fn listing(&mut self, index: usize) -> io::Result<Arc<Vec<PathBuf>>> {
        if let Some(files) = &self.listings[index] {
            return Ok(files.clone());
        }
        let Input::Path(root) = &self.inputs[index] else {
            return Ok(Arc::new(Vec::new()));
        };
        let mut files = walk_files(root)?;
        // Only paths under this directory can be among its files (resolving every file of a
        // large directory costs a system call each).
        let root = crate::output::resolved(root);
        if self.exclude.iter().any(|x| x.starts_with(&root)) {
            files.retain(|f| {
                let f = crate::output::resolved(f);
                !self.exclude.iter().any(|x| f.starts_with(x))
            });
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

    /// Opens every regular-file input for reading records back by [`Location`](super::Location) (streams and
    /// directories are not opened: their records have no location).
    pub fn record_reader(&self) -> RecordReader {
        RecordReader {
            formats: self.formats.clone(),
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
    pub(super) fn open_stream(&mut self, index: usize) -> io::Result<Box<dyn Read + Send>> {
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

    pub(super) fn open(&mut self, index: usize, counter: &Arc<AtomicU64>) -> io::Result<Source> {
        let name = self.inputs[index].display_name();
        let stream = self.is_stream(index);
        if self.formats[index] == Format::Parquet {
            let file = match &self.inputs[index] {
                _ if stream => self.spooled_whole(index)?,
                Input::Path(p) => File::open(p)?,
                Input::Stdin => unreachable!("stdin is a stream"),
            };
            let source =
                ParquetSource::open(name, file, &self.fields, self.max_doc_bytes, counter)?;
            return Ok(Source::Parquet(Box::new(source)));
        }
        let raw: Box<dyn Read + Send> = match &self.inputs[index] {
            _ if stream => self.open_stream(index)?,
            Input::Path(p) => {
                if self.formats[index] == Format::Files && p.is_dir() {
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
        if self.formats[index].is_warc() {
            return self.open_warc(index, name, stream, counted);
        }
        let (reader, compressed) = decompress(BufReader::with_capacity(1 << 16, counted))?;
        let seekable = !compressed && !stream;
        Ok(match self.formats[index] {
            Format::Files => Source::WholeFile {
                name,
                reader: Some(reader),
                marked: false,
            },
            Format::Warc | Format::Wet => unreachable!("opened above"),
            Format::Parquet => unreachable!("Parquet inputs are opened above"),
            format @ (Format::Jsonl | Format::Lines) => Source::Lines {
                name,
                format,
                reader,
                line: 0,
                position: 0,
                input: seekable.then_some(index as u32),
                end: None,
                marked: false,
            },
        })
    }

    /// A WARC or WET input: gzip is read one member at a time (a record's origin is its member's
    /// offset); zstd as one stream; a plain regular file's records can be read back by location.
    fn open_warc(
        &mut self,
        index: usize,
        name: String,
        stream: bool,
        counted: Counting,
    ) -> io::Result<Source> {
        use std::io::BufRead;
        let mut reader = BufReader::with_capacity(1 << 16, counted);
        let head = reader.fill_buf()?;
        let gzip = head.starts_with(&[0x1f, 0x8b]);
        let zstd = head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
        let raw: Box<dyn Read + Send> = if zstd {
            Box::new(zstd::stream::read::Decoder::with_buffer(reader)?)
        } else {
            Box::new(reader)
        };
        // A gzipped file's records are read back by their members, each the whole of one.
        let seekable = !zstd && !stream;
        Ok(Source::Warc(Box::new(super::warc::WarcSource::new(
            name,
            self.formats[index],
            super::warc::Window::new(raw),
            gzip,
            seekable.then_some(index as u32),
            self.keep_members,
        ))))
    }

    /// Counts the records input `index` skipped, once: on the first pass that read it to its end.
    pub(super) fn count_skipped(&mut self, index: usize, skipped: super::warc::Skips) {
        if !self.skips_seen.insert(index) {
            return;
        }
        for (reason, n) in skipped {
            self.report.skipped_records += n;
            *self.report.skipped_by_reason.entry(reason).or_default() += n;
        }
    }

    /// Stream input `index` as a file that can be read at any position (Parquet is read from
    /// its end): the spool, once the stream has been copied to it whole, or a temporary copy
    /// when streams are not spooled.
    fn spooled_whole(&mut self, index: usize) -> io::Result<File> {
        let first = !self.consumed[index];
        let mut reader = self.open_stream(index)?;
        if !first {
            return self.spools[index]
                .as_ref()
                .ok_or_else(|| io::Error::other("was already read (a single-pass run)"))?
                .try_clone();
        }
        match self.spools[index].as_ref() {
            Some(spool) => {
                let spool = spool.try_clone()?;
                io::copy(&mut reader, &mut io::sink())?;
                drop(reader);
                Ok(spool)
            }
            None => {
                let mut copy = tempfile::tempfile()?;
                io::copy(&mut reader, &mut copy)?;
                Ok(copy)
            }
        }
    }

    /// Notes a byte-order mark skipped at the start of input `index` (file `file` of a directory).
    pub(super) fn mark_skipped(&mut self, index: usize, file: usize) {
        if self.marks_seen.insert((index, file)) {
            self.report.byte_order_marks += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::InputSet;
    use crate::error::Error;
    use crate::read::{Fields, Format, FormatChoice, Frame, Input, Parser, Record};

    fn parser() -> Parser {
        Parser::new(Fields::default())
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
    fn issue12_records_of_gzipped_warc_files_are_located_by_their_members() {
        let dir = tempfile::tempdir().unwrap();
        let record = |id: usize, text: &str| {
            format!(
                "WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Record-ID: <urn:uuid:{id}>\r\nContent-Length: {}\r\n\r\n{text}\r\n\r\n",
                text.len()
            )
        };
        let member = |data: &str| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(data.as_bytes()).unwrap();
            gz.finish().unwrap()
        };
        // Two records a member each, then one member holding two records (not located: a
        // member is read back whole).
        let mut file = member(&record(1, "one text"));
        file.extend(member(&record(2, &"many words ".repeat(20_000))));
        file.extend(member(&(record(3, "three") + &record(4, "four"))));
        let path = dir.path().join("c.warc.wet.gz");
        std::fs::write(&path, &file).unwrap();
        let mut set =
            InputSet::new(vec![Input::Path(path)], FormatChoice::Detect, 1 << 20).unwrap();
        let records: Vec<Record> = set
            .frames()
            .filter_map(|f| f.record().ok().cloned())
            .collect();
        assert_eq!(records.len(), 4);
        let reader = set.record_reader();
        for r in &records[..2] {
            let location = r.location.expect("a record alone in its member is located");
            assert_eq!(reader.read(location).unwrap(), r.bytes);
        }
        assert_eq!(records[0].location.unwrap().offset, 0);
        assert_eq!(records[2].location, None);
        assert_eq!(records[3].location, None);
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
    fn issue12_each_shard_is_read_in_its_own_format_and_index_directories_hold_none() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        std::fs::create_dir_all(root.join("idx")).unwrap();
        std::fs::write(root.join("a.jsonl"), "{\"text\":\"json\"}\n").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"text\":\"zipped\"}\n").unwrap();
        std::fs::write(root.join("b.jsonl.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(root.join("c.txt"), "{\"text\":\"a line\"}\n").unwrap();
        std::fs::write(root.join("idx/MANIFEST"), "not a document").unwrap();
        let given = vec![Input::Path(root.clone())];
        let mut set = InputSet::new(given.clone(), FormatChoice::Detect, 1 << 20)
            .unwrap()
            .skip_shards_in([root.join("idx")]);
        assert_eq!(set.inputs().len(), 3);
        assert!((0..3).all(|i| set.is_shard(i)));
        assert_eq!(
            (0..3).map(|i| set.format_of(i)).collect::<Vec<_>>(),
            [Format::Jsonl, Format::Jsonl, Format::Lines]
        );
        for _ in 0..2 {
            let texts: Vec<String> = set
                .frames()
                .map(|f| {
                    let record = f.record().unwrap().clone();
                    parser().parse(&record).unwrap().text.into_owned()
                })
                .collect();
            assert_eq!(texts, ["json", "zipped", "{\"text\":\"a line\"}"]);
        }
        // Read back by location, a record keeps its input's format.
        let located: Vec<Record> = set
            .frames()
            .filter_map(|f| f.record().ok().cloned())
            .filter(|r| r.location.is_some())
            .collect();
        assert_eq!(located.len(), 2, "the plain shards");
        assert_eq!(located[1].format, Format::Lines);
        // A given format applies to every shard.
        let set = InputSet::new(given, Format::Lines, 1 << 20).unwrap();
        assert_eq!(
            set.inputs().len(),
            4,
            "without skipping, the index file is a shard"
        );
        assert!((0..4).all(|i| set.format_of(i) == Format::Lines));
    }
}
