//! Sorted runs of band records on disk, for runs whose band tables outgrow their memory budget.
//!
//! A spill sorts every band in memory and appends them, band after band, to one temporary file
//! (a *run*), remembering where each band starts. Reading back merges the runs of one band (and
//! what is still in memory) in sorted order, through small buffers read with `pread`: an external
//! merge sort. The merged order is the same total order as sorting everything in memory, so the
//! buckets, and the candidate pairs made from them, are identical.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Records read at a time from one run.
const CHUNK_RECORDS: usize = 4096;

/// One spilled run: every band's sorted records, band after band.
#[derive(Debug)]
pub struct Run {
    file: File,
    /// Per band, the first record's index in the file; one more entry for the end.
    band_starts: Vec<u64>,
}

impl Run {
    /// Sorts each band of `bands` and writes them to a new temporary file in `dir`, clearing them.
    pub fn spill(bands: &mut [Vec<u64>], dir: &Path) -> std::io::Result<Run> {
        use rayon::prelude::*;
        bands.par_iter_mut().for_each(|band| band.sort_unstable());
        let file = tempfile::tempfile_in(dir)?;
        let mut out = BufWriter::with_capacity(1 << 20, &file);
        let mut band_starts = vec![0u64];
        for band in bands.iter_mut() {
            for record in band.iter() {
                out.write_all(&record.to_le_bytes())?;
            }
            band_starts.push(band_starts.last().expect("non-empty") + band.len() as u64);
            band.clear();
            band.shrink_to_fit();
        }
        out.flush()?;
        drop(out);
        Ok(Run { file, band_starts })
    }

    fn cursor(&self, band: usize) -> Cursor<'_> {
        Cursor {
            file: &self.file,
            next: self.band_starts[band],
            end: self.band_starts[band + 1],
            buffer: Vec::new(),
            at: 0,
        }
    }
}

/// Reads one band of one run in order.
struct Cursor<'a> {
    file: &'a File,
    /// Next record index in the file to load.
    next: u64,
    end: u64,
    buffer: Vec<u64>,
    at: usize,
}

impl Cursor<'_> {
    fn next_record(&mut self) -> std::io::Result<Option<u64>> {
        if self.at == self.buffer.len() {
            if self.next == self.end {
                return Ok(None);
            }
            let take = (self.end - self.next).min(CHUNK_RECORDS as u64) as usize;
            let mut bytes = vec![0u8; take * 8];
            self.file.read_exact_at(&mut bytes, self.next * 8)?;
            self.buffer.clear();
            self.buffer.extend(
                bytes
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
            );
            self.next += take as u64;
            self.at = 0;
        }
        self.at += 1;
        Ok(Some(self.buffer[self.at - 1]))
    }
}

/// Calls `each` with every record of `band`, from the runs and from `in_memory` (sorted), in
/// ascending order.
pub fn merge_band(
    runs: &[Run],
    band: usize,
    in_memory: &[u64],
    mut each: impl FnMut(u64),
) -> std::io::Result<()> {
    let mut cursors: Vec<Cursor<'_>> = runs.iter().map(|r| r.cursor(band)).collect();
    let mut memory = in_memory.iter().copied();
    // Heap of (record, source); source `cursors.len()` is the in-memory part.
    let mut heap = BinaryHeap::with_capacity(cursors.len() + 1);
    for (source, cursor) in cursors.iter_mut().enumerate() {
        if let Some(record) = cursor.next_record()? {
            heap.push(Reverse((record, source)));
        }
    }
    let memory_source = cursors.len();
    if let Some(record) = memory.next() {
        heap.push(Reverse((record, memory_source)));
    }
    while let Some(Reverse((record, source))) = heap.pop() {
        each(record);
        let next = if source == memory_source {
            memory.next()
        } else {
            cursors[source].next_record()?
        };
        if let Some(next) = next {
            heap.push(Reverse((next, source)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_runs_equal_one_sort() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = 7u64;
        let mut all: Vec<Vec<u64>> = vec![Vec::new(); 3];
        let mut runs = Vec::new();
        let mut bands: Vec<Vec<u64>> = vec![Vec::new(); 3];
        for round in 0..5 {
            for band in bands.iter_mut().zip(all.iter_mut()) {
                for _ in 0..(1000 * round + 3) {
                    state = crate::minhash::splitmix64(&mut state);
                    // Few distinct keys, so equal keys span runs.
                    let record = ((state % 50) << 32) | (state >> 40);
                    band.0.push(record);
                    band.1.push(record);
                }
            }
            if round < 4 {
                runs.push(Run::spill(&mut bands, dir.path()).unwrap());
                assert!(bands.iter().all(Vec::is_empty));
            }
        }
        for (band, expected) in all.iter_mut().enumerate() {
            expected.sort_unstable();
            bands[band].sort_unstable();
            let mut merged = Vec::new();
            merge_band(&runs, band, &bands[band], |r| merged.push(r)).unwrap();
            assert_eq!(&merged, expected);
        }
        assert_eq!(runs[1].band_starts[1], 1003);
    }
}
