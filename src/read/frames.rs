//! Framing: [`Frames`] cuts the inputs into [`Frame`]s (records, rejected records, failed inputs)
//! in input order; the sources behind it (lines of a file or stream, a whole file, a directory) and
//! the byte-level helpers (decompression by magic bytes, capped line reading, the spool tee).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::inputs::InputSet;
use super::warc::{Skips, WarcSource};
use super::{Format, Frame, Location, Record, io_reason};
use crate::error::{InputFailure, Origin, RejectReason, Rejection};

/// An iterator over the frames of all inputs, in order.
pub struct Frames<'a> {
    pub(super) set: &'a mut InputSet,
    pub(super) next_input: usize,
    /// The input being read (its number) and its source.
    pub(super) current: Option<(usize, Source)>,
    pub(super) bytes_read: Arc<AtomicU64>,
    /// Set once a failed input has been yielded: the pass ends there.
    pub(super) stopped: bool,
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
            if matches!(frame, None | Some(Frame::Failed(_))) {
                let skipped = source.take_skipped();
                self.set.count_skipped(index, skipped);
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
pub(super) const BOM: &[u8] = b"\xef\xbb\xbf";

pub(super) enum Source {
    Lines {
        name: String,
        /// The input's format (JSON Lines or lines of text).
        format: Format,
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
    Parquet(Box<super::parquet_read::ParquetSource>),
    Dir {
        root: PathBuf,
        files: Arc<Vec<PathBuf>>,
        next: usize,
        /// The file whose byte-order mark was just skipped.
        marked: Option<usize>,
    },
    Warc(Box<WarcSource>),
}

impl Source {
    /// Which file of the input just had its byte-order mark skipped (0 unless a directory).
    fn take_mark(&mut self) -> Option<usize> {
        match self {
            Source::Lines { marked, .. } | Source::WholeFile { marked, .. } => {
                std::mem::take(marked).then_some(0)
            }
            Source::Dir { marked, .. } => marked.take(),
            Source::Parquet(_) => None,
            Source::Warc(_) => None,
        }
    }

    /// The records skipped so far (WARC records that are not documents), taken.
    fn take_skipped(&mut self) -> Skips {
        match self {
            Source::Warc(source) => source.take_skipped(),
            _ => Skips::new(),
        }
    }

    fn next_frame(&mut self, max: usize, counter: &Arc<AtomicU64>) -> Option<Frame> {
        match self {
            Source::Warc(source) => source.next_frame(max),
            Source::Parquet(source) => source.next_frame(),
            Source::Lines {
                name,
                format,
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
                    offset: None,
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
                        format: *format,
                        location: input.map(|input| Location {
                            input,
                            offset: start,
                            len: bytes.len() as u32,
                        }),
                        bytes,
                        stored: None,
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
                            offset: None,
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
        offset: None,
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
                    format: Format::Files,
                    location: None,
                    stored: None,
                }),
                true,
            );
        }
        Ok(_) => Frame::Record(Record {
            origin,
            bytes,
            format: Format::Files,
            location: None,
            stored: None,
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

pub(super) fn walk_files(root: &Path) -> io::Result<Vec<PathBuf>> {
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

pub(super) fn dir_or_file_size(path: &Path) -> Option<u64> {
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
pub(super) fn decompress<R: BufRead + Send + 'static>(
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
pub(super) struct Counting {
    pub(super) inner: Box<dyn Read + Send>,
    pub(super) counter: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Copies what it reads from a stream into the spool file.
pub(super) struct Tee {
    pub(super) inner: Box<dyn Read + Send>,
    pub(super) copy: io::BufWriter<File>,
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

#[cfg(test)]
mod tests {
    use std::io::{self, Read, Write};

    use super::{LineRead, decompress, read_line_capped};

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
