//! Pieces: the inputs shared out among the workers of a distributed run.
//!
//! Each plain JSON Lines or text file is cut into byte ranges at line starts, one per worker; an
//! input that cannot be cut (compressed, a directory, one document per file) goes whole to one
//! worker. A piece's records are counted without parsing them (its lines), so that with every
//! piece's count each record gets the position, and the line number, one process would give it.

use std::fs::File;
use std::io::{self, BufReader, Seek};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::{Counting, Format, Frame, Input, InputSet, Source};

/// A share of one input for one worker of a distributed run: a byte range of a plain file,
/// starting at a line, or a whole input (compressed files, directories).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub input: usize,
    /// Which of the input's pieces this is, from 0.
    pub part: usize,
    /// Byte range of a plain file; `None` for a whole input.
    pub range: Option<(u64, u64)>,
    /// Records of the input before this piece (its first record's line is this plus one).
    pub first_line: u64,
}

impl InputSet {
    /// Worker `part`'s pieces of every input when the inputs are shared among `parts` workers:
    /// each plain JSON Lines or text file is cut into `parts` byte ranges at line starts; any
    /// other input (compressed, a directory, one document per file) goes whole to worker
    /// `input mod parts`. Every worker computes the same cut. `first_line` is left at 0: the
    /// caller fills it in once every piece's records are counted ([`InputSet::count_records`]).
    pub fn pieces(&self, part: usize, parts: usize) -> Vec<Piece> {
        let mut out = Vec::new();
        for (input, source) in self.inputs.iter().enumerate() {
            match self.split_points(source, parts) {
                Some(points) => out.push(Piece {
                    input,
                    part,
                    range: Some((points[part], points[part + 1])),
                    first_line: 0,
                }),
                None if input % parts == part => out.push(Piece {
                    input,
                    part: 0,
                    range: None,
                    first_line: 0,
                }),
                None => {}
            }
        }
        out
    }

    /// Where a plain lines file splits into `parts` pieces (`parts + 1` offsets, each at a line
    /// start), or `None` when the input cannot be split.
    fn split_points(&self, input: &Input, parts: usize) -> Option<Vec<u64>> {
        use std::os::unix::fs::FileExt;
        let Input::Path(path) = input else {
            return None;
        };
        if self.format == Format::Files {
            return None;
        }
        let file = File::open(path).ok()?;
        let len = file.metadata().ok()?.len();
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut head = [0u8; 4];
        let n = file.read_at(&mut head, 0).ok()?;
        if head[..n].starts_with(&[0x1f, 0x8b]) || head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        {
            return None;
        }
        let mut points = vec![0u64];
        let mut chunk = vec![0u8; 1 << 16];
        for k in 1..parts {
            let raw = (len as u128 * k as u128 / parts as u128) as u64;
            // The first line start at or after `raw`: just after the newline at or after raw - 1.
            let mut at = raw
                .saturating_sub(1)
                .max(*points.last().expect("non-empty"));
            let start = loop {
                if at >= len {
                    break len;
                }
                let n = file.read_at(&mut chunk, at).ok()?;
                if n == 0 {
                    break len;
                }
                match memchr::memchr(b'\n', &chunk[..n]) {
                    Some(i) => break at + i as u64 + 1,
                    None => at += n as u64,
                }
            };
            let previous = *points.last().expect("non-empty");
            points.push(start.max(previous));
        }
        points.push(len);
        Some(points)
    }

    /// The number of records (frames) `piece` holds: its lines, or for a whole input, what
    /// reading it gives.
    pub fn count_records(&self, piece: &Piece) -> u64 {
        use std::os::unix::fs::FileExt;
        match (piece.range, &self.inputs[piece.input]) {
            (Some((start, end)), Input::Path(path)) => {
                let Ok(file) = File::open(path) else {
                    return 0;
                };
                let mut chunk = vec![0u8; 1 << 20];
                let (mut at, mut lines, mut last) = (start, 0u64, b'\n');
                while at < end {
                    let want = ((end - at) as usize).min(chunk.len());
                    let Ok(n) = file.read_at(&mut chunk[..want], at) else {
                        break;
                    };
                    if n == 0 {
                        break;
                    }
                    lines += memchr::memchr_iter(b'\n', &chunk[..n]).count() as u64;
                    last = chunk[n - 1];
                    at += n as u64;
                }
                // A last line without a newline is a record too.
                lines + u64::from(end > start && last != b'\n')
            }
            _ => {
                let Ok(one) = InputSet::new(
                    vec![self.inputs[piece.input].clone()],
                    self.format,
                    self.max_doc_bytes,
                ) else {
                    return 0;
                };
                let mut one = one.single_pass();
                one.frames()
                    .filter(|f| !matches!(f, Frame::Failed(_)))
                    .count() as u64
            }
        }
    }

    /// Makes every later pass read only `pieces` (with their `first_line`s filled in).
    pub fn restrict_to(&mut self, pieces: Vec<Piece>) {
        self.pieces = Some(pieces);
    }

    /// Reads stdin once only, without copying it to a temporary file: for a streaming run, which
    /// never reads its input twice (and may read an endless stream).
    pub fn single_pass(mut self) -> Self {
        self.spool_streams = false;
        self
    }

    /// Opens one byte range of a plain file, its first record numbered `first_line + 1`.
    pub(super) fn open_range(
        &self,
        piece: &Piece,
        (start, end): (u64, u64),
        counter: &Arc<AtomicU64>,
    ) -> io::Result<Source> {
        let Input::Path(path) = &self.inputs[piece.input] else {
            return Err(io::Error::other("not a file"));
        };
        let mut file = File::open(path)?;
        file.seek(io::SeekFrom::Start(start))?;
        let counted = Counting {
            inner: Box::new(file),
            counter: counter.clone(),
        };
        Ok(Source::Lines {
            name: self.inputs[piece.input].display_name(),
            reader: Box::new(BufReader::with_capacity(1 << 16, counted)),
            line: piece.first_line,
            position: start,
            input: Some(piece.input as u32),
            end: Some(end),
            marked: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::read::Frame;

    /// Reading every worker's pieces, in order, gives the records of reading the inputs whole:
    /// same bytes, same line numbers; and each piece's count is what it yields.
    #[test]
    fn pieces_of_all_workers_read_the_same_records_as_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut texts = vec![
            "a\n\nbb\nccc\r\n dd \nlast-without-newline".to_string(),
            "x\n".repeat(37),
            String::new(),
            "one\n".to_string(),
        ];
        texts.push((0..200).map(|i| format!("{{\"id\":{i}}}\n")).collect());
        let mut inputs: Vec<Input> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let path = dir.path().join(format!("in{i}.jsonl"));
                std::fs::write(&path, t).unwrap();
                Input::Path(path)
            })
            .collect();
        // A compressed input goes whole to one worker.
        let gz = dir.path().join("z.jsonl.gz");
        let mut encoder =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        encoder.write_all(b"g1\ng2\n").unwrap();
        encoder.finish().unwrap();
        inputs.push(Input::Path(gz));
        let whole: Vec<(String, u64, Vec<u8>)> =
            InputSet::new(inputs.clone(), Format::Lines, 1 << 20)
                .unwrap()
                .frames()
                .map(|f| match f {
                    Frame::Record(r) => (r.origin.file, r.origin.line, r.bytes),
                    Frame::Rejected(r) => (r.origin.file, r.origin.line, Vec::new()),
                    Frame::Failed(f) => (f.file, 0, Vec::new()),
                })
                .collect();
        for parts in 1..=7 {
            let set = InputSet::new(inputs.clone(), Format::Lines, 1 << 20).unwrap();
            // Every worker's pieces, in input order, each counted, then read alone with its first
            // line numbered as a distributed run numbers it.
            let mut all: Vec<Piece> = (0..parts).flat_map(|p| set.pieces(p, parts)).collect();
            all.sort_by_key(|p| (p.input, p.part));
            let counts: Vec<u64> = all.iter().map(|p| set.count_records(p)).collect();
            let mut got = Vec::new();
            let mut previous_input = usize::MAX;
            let mut line_base = 0;
            for (piece, count) in all.iter().zip(&counts) {
                if piece.input != previous_input {
                    previous_input = piece.input;
                    line_base = 0;
                }
                let mut one = InputSet::new(inputs.clone(), Format::Lines, 1 << 20).unwrap();
                one.restrict_to(vec![Piece {
                    first_line: line_base,
                    ..*piece
                }]);
                let frames: Vec<(String, u64, Vec<u8>)> = one
                    .frames()
                    .map(|f| match f {
                        Frame::Record(r) => (r.origin.file, r.origin.line, r.bytes),
                        Frame::Rejected(r) => (r.origin.file, r.origin.line, Vec::new()),
                        Frame::Failed(f) => (f.file, 0, Vec::new()),
                    })
                    .collect();
                assert_eq!(frames.len() as u64, *count, "{parts} parts, {piece:?}");
                line_base += count;
                got.extend(frames);
            }
            assert_eq!(got, whole, "{parts} parts");
        }
    }
}
