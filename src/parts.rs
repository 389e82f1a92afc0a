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
        })
    }

    fn next(&mut self) -> Result<Option<(u64, Vec<u8>)>, Error> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let path = self.path.clone();
        let truncated = |_| corrupt(&path, "truncated part file");
        let mut head = [0u8; 12];
        self.input.read_exact(&mut head).map_err(truncated)?;
        let position = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize;
        let mut line = vec![0u8; len];
        self.input.read_exact(&mut line).map_err(truncated)?;
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
    use crate::parts::{PartWriter, PathBuf, merge, part_name};

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
}
