//! Part files of a distributed run, and merging them.
//!
//! Each worker of a distributed run writes the lines it owns of an output (kept records, removals,
//! rejections) to its own part file, each line with its position in the input. `merge` reads all
//! parts of one output at once and writes their lines in position order: the file a
//! single-process run writes, byte for byte.
//!
//! A part is a sequence of records: position (`u64`, little-endian), length (`u32`), the line's
//! bytes (without its newline). It starts with the magic `NDPART01` and ends with the count of
//! records (`u64`) and the magic `NDPEND01`, so a truncated part (a worker that died) is refused.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

const MAGIC: &[u8; 8] = b"NDPART01";
const END: &[u8; 8] = b"NDPEND01";

/// The name of worker `worker`'s part of `output`.
pub fn part_name(output: &str, worker: usize, workers: usize) -> String {
    format!("{output}.part-{worker:04}-of-{workers:04}")
}

/// Writes one part, lines in increasing position.
pub struct PartWriter {
    path: PathBuf,
    out: BufWriter<File>,
    records: u64,
    last: Option<u64>,
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Output {
        what: path.display().to_string(),
        source,
    }
}

impl PartWriter {
    pub fn create(path: &Path) -> Result<PartWriter, Error> {
        let file = File::create(path).map_err(|e| io_error(path, e))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        out.write_all(MAGIC).map_err(|e| io_error(path, e))?;
        Ok(PartWriter {
            path: path.to_path_buf(),
            out,
            records: 0,
            last: None,
        })
    }

    /// Appends the line at `position` (positions must increase).
    pub fn push(&mut self, position: u64, line: &[u8]) -> Result<(), Error> {
        debug_assert!(self.last.is_none_or(|last| last < position));
        self.last = Some(position);
        let len = u32::try_from(line.len()).map_err(|_| {
            io_error(
                &self.path,
                std::io::Error::other("line longer than 4 GiB in a part file"),
            )
        })?;
        let path = &self.path;
        self.out
            .write_all(&position.to_le_bytes())
            .and_then(|_| self.out.write_all(&len.to_le_bytes()))
            .and_then(|_| self.out.write_all(line))
            .map_err(|e| io_error(path, e))?;
        self.records += 1;
        Ok(())
    }

    /// Writes the trailer. Not synced: a part is an intermediate file (the merged output is
    /// synced), and a part cut short by a crash is refused by `merge` (its trailer is missing).
    pub fn finish(mut self) -> Result<(), Error> {
        let path = self.path.clone();
        self.out
            .write_all(&self.records.to_le_bytes())
            .and_then(|_| self.out.write_all(END))
            .and_then(|_| self.out.flush())
            .map_err(|e| io_error(&path, e))
    }
}

/// Reads one part in order.
struct PartReader {
    path: PathBuf,
    input: BufReader<File>,
    remaining: u64,
    /// Bytes read so far, and where the records must end (the trailer's start).
    at: u64,
    end: u64,
    /// The last position read: positions must increase.
    last: Option<u64>,
}

fn corrupt(path: &Path, what: &str) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string()),
    }
}

impl PartReader {
    fn open(path: &Path) -> Result<PartReader, Error> {
        let read_error = |e| Error::Input {
            path: path.to_path_buf(),
            source: e,
        };
        let mut file = File::open(path).map_err(read_error)?;
        let len = file.metadata().map_err(read_error)?.len();
        if len < 24 {
            return Err(corrupt(path, "not a complete neardup part file"));
        }
        let mut head = [0u8; 8];
        file.read_exact(&mut head).map_err(read_error)?;
        let mut tail = [0u8; 16];
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::End(-16)).map_err(read_error)?;
        file.read_exact(&mut tail).map_err(read_error)?;
        if &head != MAGIC || &tail[8..] != END {
            return Err(corrupt(
                path,
                "not a complete neardup part file (its writer may have died)",
            ));
        }
        file.seek(SeekFrom::Start(8)).map_err(read_error)?;
        Ok(PartReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(1 << 16, file),
            remaining: u64::from_le_bytes(tail[..8].try_into().expect("8 bytes")),
            at: 8,
            end: len - 16,
            last: None,
        })
    }

    /// The next record; an error when the records do not end exactly where the trailer starts,
    /// are fewer or more than the trailer counts, or have positions that do not increase.
    fn next(&mut self) -> Result<Option<(u64, Vec<u8>)>, Error> {
        if self.remaining == 0 {
            if self.at != self.end {
                return Err(corrupt(
                    &self.path,
                    "damaged part file (its records and its trailer disagree)",
                ));
            }
            return Ok(None);
        }
        let path = self.path.clone();
        let truncated = |_| corrupt(&path, "truncated part file");
        let damaged = || corrupt(&self.path, "damaged part file (a record runs past its end)");
        if self.end - self.at < 12 {
            return Err(damaged());
        }
        let mut head = [0u8; 12];
        self.input.read_exact(&mut head).map_err(truncated)?;
        let position = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes"));
        self.at += 12;
        // Checked before allocating: a damaged length must not ask for gigabytes.
        if u64::from(len) > self.end - self.at {
            return Err(damaged());
        }
        if self.last.is_some_and(|last| position <= last) {
            return Err(corrupt(
                &self.path,
                "damaged part file (positions out of order)",
            ));
        }
        let mut line = vec![0u8; len as usize];
        self.input.read_exact(&mut line).map_err(truncated)?;
        self.at += u64::from(len);
        self.last = Some(position);
        self.remaining -= 1;
        Ok(Some((position, line)))
    }
}

/// Writes the lines of all `parts` to `out` in position order, each followed by a newline.
/// Returns the number of lines.
pub fn merge(parts: &[PathBuf], out: &mut dyn Write) -> Result<u64, Error> {
    let mut readers = parts
        .iter()
        .map(|p| PartReader::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut heap = BinaryHeap::new();
    for (i, reader) in readers.iter_mut().enumerate() {
        if let Some((position, line)) = reader.next()? {
            heap.push(Reverse((position, i, line)));
        }
    }
    let mut lines = 0;
    let mut last: Option<u64> = None;
    while let Some(Reverse((position, i, line))) = heap.pop() {
        if last == Some(position) {
            return Err(corrupt(
                &readers[i].path,
                "two parts hold the same position (parts of different runs?)",
            ));
        }
        last = Some(position);
        out.write_all(&line)
            .and_then(|_| out.write_all(b"\n"))
            .map_err(|e| Error::Output {
                what: "merged output".into(),
                source: e,
            })?;
        lines += 1;
        if let Some((position, line)) = readers[i].next()? {
            heap.push(Reverse((position, i, line)));
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use crate::parts::{END, MAGIC, PartWriter, PathBuf, merge, part_name};

    #[test]
    fn parts_merge_in_position_order_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..3)
            .map(|w| dir.path().join(part_name("out", w, 3)))
            .collect();
        for (w, path) in paths.iter().enumerate() {
            let mut part = PartWriter::create(path).unwrap();
            for p in (w as u64..10).step_by(3) {
                part.push(p, format!("line {p}").as_bytes()).unwrap();
            }
            part.finish().unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(merge(&paths, &mut out).unwrap(), 10);
        let expected: String = (0..10).map(|p| format!("line {p}\n")).collect();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        let bytes = std::fs::read(&paths[1]).unwrap();
        std::fs::write(&paths[1], &bytes[..bytes.len() - 3]).unwrap();
        assert!(merge(&paths, &mut Vec::new()).is_err());
        assert!(merge(&[paths[0].clone(), paths[0].clone()], &mut Vec::new()).is_err());
    }

    /// A part's bytes: the magic, `(position, line)` records, then `count` and the end magic.
    fn part_bytes(records: &[(u64, &[u8])], count: u64) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        for (position, line) in records {
            bytes.extend_from_slice(&position.to_le_bytes());
            bytes.extend_from_slice(&(line.len() as u32).to_le_bytes());
            bytes.extend_from_slice(line);
        }
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(END);
        bytes
    }

    /// Found by the fuzz target `part_merge`: damaged parts were merged without an error, their
    /// lines out of order or some of them dropped.
    #[test]
    fn issue10_fuzz_damaged_parts_are_refused_not_merged_wrongly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let merged = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            let mut out = Vec::new();
            merge(std::slice::from_ref(&path), &mut out).map(|n| (n, out))
        };
        let good = part_bytes(&[(2, b"a"), (5, b"b")], 2);
        assert_eq!(merged(&good).unwrap(), (2, b"a\nb\n".to_vec()));
        // Positions that go down: the output was "b\na\n", out of position order.
        assert!(merged(&part_bytes(&[(5, b"b"), (2, b"a")], 2)).is_err());
        assert!(merged(&part_bytes(&[(5, b"b"), (5, b"a")], 2)).is_err());
        // A trailer counting fewer records than the part holds: the rest were dropped.
        assert!(merged(&part_bytes(&[(2, b"a"), (5, b"b")], 1)).is_err());
        assert!(merged(&part_bytes(&[(2, b"a"), (5, b"b")], 0)).is_err());
        // A record that runs into the trailer, with a length of 4 GiB - 1: refused before a
        // buffer of that size is allocated.
        let mut long = part_bytes(&[(2, b"a")], 1);
        long[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(merged(&long).is_err());
        let mut into_trailer = part_bytes(&[(2, b"abc")], 1);
        into_trailer[16..20].copy_from_slice(&10u32.to_le_bytes());
        assert!(merged(&into_trailer).is_err());
        assert_eq!(merged(&part_bytes(&[], 0)).unwrap(), (0, Vec::new()));
    }
}
