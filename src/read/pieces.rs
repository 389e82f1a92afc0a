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
        for input in 0..self.inputs.len() {
            match self.split_points(input, parts) {
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
    fn split_points(&self, input: usize, parts: usize) -> Option<Vec<u64>> {
        use std::os::unix::fs::FileExt;
        let Input::Path(path) = &self.inputs[input] else {
            return None;
        };
        if self.formats[input] == Format::Files {
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
                    self.formats[piece.input],
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
            format: self.formats[piece.input],
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
mod properties {
    use std::io::Write;
    use std::path::Path;

    use proptest::prelude::*;

    use crate::read::{Format, Frame, Input, InputSet, Piece};

    /// How an input file is stored.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Encoding {
        Plain,
        Gzip,
        Zstd,
    }

    /// One input: its lines (without newlines), whether the last one ends in a newline, and how
    /// the file is stored.
    #[derive(Debug, Clone)]
    struct InputFile {
        lines: Vec<Vec<u8>>,
        final_newline: bool,
        encoding: Encoding,
    }

    impl InputFile {
        fn contents(&self) -> Vec<u8> {
            let mut out = self.lines.join(&b'\n');
            if self.final_newline && !self.lines.is_empty() {
                out.push(b'\n');
            }
            out
        }

        fn write(&self, path: &Path) {
            let contents = self.contents();
            let stored = match self.encoding {
                Encoding::Plain => contents,
                Encoding::Gzip => {
                    let mut encoder =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    encoder.write_all(&contents).unwrap();
                    encoder.finish().unwrap()
                }
                Encoding::Zstd => zstd::encode_all(&contents[..], 1).unwrap(),
            };
            std::fs::write(path, stored).unwrap();
        }
    }

    /// One line: blank, short text (with `\r`, spaces, JSON-ish bytes), any bytes but `\n`, a
    /// line longer than a small record limit, or (rarely) one longer than a 64 KiB read chunk.
    fn line() -> impl Strategy<Value = Vec<u8>> {
        let text_byte = prop::sample::select(b"ab {}\":,\r\t\x00\xff".to_vec());
        prop_oneof![
            2 => Just(Vec::new()),
            4 => prop::collection::vec(text_byte, 1..12),
            2 => prop::collection::vec(any::<u8>().prop_map(|b| if b == b'\n' { b'.' } else { b }), 1..12),
            1 => (40..200usize).prop_map(|n| vec![b'l'; n]),
            1 => prop::sample::select(vec![65_535usize, 65_536, 65_537, 140_000]).prop_map(|n| vec![b'L'; n]),
        ]
    }

    fn input_file() -> impl Strategy<Value = InputFile> {
        (
            prop::collection::vec(line(), 0..24),
            any::<bool>(),
            prop_oneof![
                6 => Just(Encoding::Plain),
                1 => Just(Encoding::Gzip),
                1 => Just(Encoding::Zstd),
            ],
        )
            .prop_map(|(lines, final_newline, encoding)| InputFile {
                lines,
                final_newline,
                encoding,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// For any inputs and any number of workers: each plain input is cut into one range per
        /// worker, the ranges cover the file exactly once, in order, cut at line starts; any
        /// other input goes whole to exactly one worker. Each piece's count is what reading it
        /// yields, and reading every piece in order, each numbered from the records of the
        /// pieces before it, gives exactly the frames (bytes, line numbers, locations,
        /// rejections) of reading the inputs whole.
        #[test]
        fn pieces_cover_every_record_exactly_once_in_order(
            files in prop::collection::vec(input_file(), 1..5),
            parts in 1..=9usize,
            max_doc_bytes in prop_oneof![Just(1usize << 20), 1..64usize],
        ) {
            let dir = tempfile::tempdir().unwrap();
            let inputs: Vec<Input> = files
                .iter()
                .enumerate()
                .map(|(i, file)| {
                    let path = dir.path().join(format!("in{i}.jsonl"));
                    file.write(&path);
                    Input::Path(path)
                })
                .collect();
            let whole: Vec<Frame> = InputSet::new(inputs.clone(), Format::Lines, max_doc_bytes)
                .unwrap()
                .frames()
                .collect();
            let set = InputSet::new(inputs.clone(), Format::Lines, max_doc_bytes).unwrap();

            let mut all: Vec<(usize, Piece)> = Vec::new();
            for worker in 0..parts {
                let mine = set.pieces(worker, parts);
                prop_assert!(mine.windows(2).all(|w| w[0].input < w[1].input), "{:?}", mine);
                all.extend(mine.into_iter().map(|piece| (worker, piece)));
            }
            all.sort_by_key(|(_, p)| (p.input, p.part));
            for (input, file) in files.iter().enumerate() {
                let stored = std::fs::read(dir.path().join(format!("in{input}.jsonl"))).unwrap();
                let mine: Vec<&(usize, Piece)> =
                    all.iter().filter(|(_, p)| p.input == input).collect();
                let looks_compressed =
                    stored.starts_with(&[0x1f, 0x8b]) || stored.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
                if file.encoding == Encoding::Plain && !looks_compressed {
                    prop_assert_eq!(mine.len(), parts, "input {}", input);
                    let mut at = 0;
                    for (k, (worker, piece)) in mine.iter().enumerate() {
                        prop_assert_eq!((*worker, piece.part), (k, k));
                        let (start, end) = piece.range.expect("a plain file is cut");
                        prop_assert_eq!(start, at, "input {}: pieces {:?}", input, mine);
                        prop_assert!(start <= end);
                        prop_assert!(start == 0 || start == stored.len() as u64 || stored[start as usize - 1] == b'\n',
                            "input {}: piece {:?} starts inside a line", input, piece);
                        at = end;
                    }
                    prop_assert_eq!(at, stored.len() as u64, "input {}", input);
                } else {
                    prop_assert_eq!(mine.len(), 1, "input {}", input);
                    let (worker, piece) = mine[0];
                    prop_assert_eq!((*worker, piece.part, piece.range), (input % parts, 0, None));
                }
            }

            let mut got = Vec::new();
            let mut previous_input = usize::MAX;
            let mut line_base = 0;
            for (_, piece) in &all {
                if piece.input != previous_input {
                    previous_input = piece.input;
                    line_base = 0;
                }
                let count = set.count_records(piece);
                let mut one = InputSet::new(inputs.clone(), Format::Lines, max_doc_bytes).unwrap();
                one.restrict_to(vec![Piece { first_line: line_base, ..*piece }]);
                let frames: Vec<Frame> = one.frames().collect();
                prop_assert_eq!(frames.len() as u64, count, "{:?}", piece);
                line_base += count;
                got.extend(frames);
            }
            prop_assert_eq!(got, whole);
        }
    }
}
