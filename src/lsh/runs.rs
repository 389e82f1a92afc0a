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

use super::BandRecord;

/// Records read at a time from one run.
const CHUNK_RECORDS: usize = 4096;

/// One spilled run: every band's sorted records, band after band, each record 12 bytes (the key
/// as a little-endian `u64`, then the slot as a little-endian `u32`).
#[derive(Debug)]
pub struct Run {
    file: File,
    /// Per band, the first record's index in the file; one more entry for the end.
    band_starts: Vec<u64>,
}

impl Run {
    /// Sorts each band of `bands` and writes them to `file` (new and empty), clearing them.
    pub fn spill(bands: &mut [Vec<BandRecord>], file: File) -> std::io::Result<Run> {
        use rayon::prelude::*;
        bands.par_iter_mut().for_each(|band| band.sort_unstable());
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

    /// A run saved before (see [`Run::band_starts`]), checked against its file's length.
    pub fn reopen(file: File, band_starts: Vec<u64>) -> std::io::Result<Run> {
        let records = band_starts.last().copied().unwrap_or(0);
        if band_starts.windows(2).any(|w| w[0] > w[1])
            || file.metadata()?.len() < records * BandRecord::BYTES as u64
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a saved band run does not match its file",
            ));
        }
        Ok(Run { file, band_starts })
    }

    /// Per band, the first record's index in the file, and one more entry for the end: what
    /// [`Run::reopen`] needs.
    pub fn band_starts(&self) -> &[u64] {
        &self.band_starts
    }

    /// Flushes the run to disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Bytes this run takes on disk.
    pub fn bytes(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
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
    buffer: Vec<BandRecord>,
    at: usize,
}

impl Cursor<'_> {
    fn next_record(&mut self) -> std::io::Result<Option<BandRecord>> {
        if self.at == self.buffer.len() {
            if self.next == self.end {
                return Ok(None);
            }
            let take = (self.end - self.next).min(CHUNK_RECORDS as u64) as usize;
            let size = BandRecord::BYTES;
            let mut bytes = vec![0u8; take * size];
            self.file
                .read_exact_at(&mut bytes, self.next * size as u64)?;
            self.buffer.clear();
            self.buffer.extend(
                bytes
                    .chunks_exact(size)
                    .map(|c| BandRecord::from_le_bytes(c.try_into().expect("12 bytes"))),
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
    in_memory: &[BandRecord],
    mut each: impl FnMut(BandRecord),
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
mod properties {
    use proptest::prelude::*;

    use crate::hash::splitmix64;
    use crate::lsh::runs::{Run, merge_band};
    use crate::lsh::{BandKey, BandRecord};

    /// Keys that agree in their top 32 bits and differ below (and two that differ only on top).
    const NEAR_KEYS: [u64; 4] = [
        0xdead_beef_0000_0000,
        0xdead_beef_0000_0001,
        0xdead_beef_ffff_ffff,
        0xdead_bef0_0000_0000,
    ];

    /// A band record: mostly from a few keys (some alike in their top 32 bits), so that equal
    /// keys span runs and the in-memory part, and now and then any key and slot (the extremes
    /// included).
    fn record() -> impl Strategy<Value = BandRecord> {
        let key = prop_oneof![
            4 => 0..4u64,
            3 => prop::sample::select(&NEAR_KEYS[..]),
            2 => any::<u64>(),
            1 => Just(u64::MAX),
        ];
        let slot = prop_oneof![6 => 0..16u32, 1 => any::<u32>(), 1 => Just(u32::MAX)];
        prop_oneof![
            10 => (key, slot).prop_map(|(key, slot)| BandRecord::new(BandKey(key), slot)),
            1 => Just(BandRecord::new(BandKey(0), 0)),
            1 => Just(BandRecord::new(BandKey(u64::MAX), u32::MAX)),
        ]
    }

    /// One band's records in one round: a few chosen ones and, sometimes, thousands generated
    /// from a seed (more than one read buffer of a run), from few keys.
    #[derive(Debug, Clone)]
    struct BandRound {
        chosen: Vec<BandRecord>,
        bulk: usize,
        seed: u64,
    }

    impl BandRound {
        fn records(&self) -> Vec<BandRecord> {
            let mut state = self.seed;
            // 50 keys over the whole range, in pairs alike but for their lowest bit.
            let bulk = (0..self.bulk).map(|_| {
                let x = splitmix64(&mut state);
                let key = ((x % 50) / 2).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (x % 2);
                BandRecord::new(BandKey(key), (x >> 40) as u32)
            });
            self.chosen.iter().copied().chain(bulk).collect()
        }
    }

    fn band_round() -> impl Strategy<Value = BandRound> {
        (
            prop::collection::vec(record(), 0..40),
            prop_oneof![3 => Just(0usize), 1 => 0..9_000usize],
            any::<u64>(),
        )
            .prop_map(|(chosen, bulk, seed)| BandRound { chosen, bulk, seed })
    }

    /// Rounds of records for `bands` bands; each round but the last may be spilled as a run.
    fn rounds() -> impl Strategy<Value = Vec<(bool, Vec<BandRound>)>> {
        (1..=4usize).prop_flat_map(|bands| {
            prop::collection::vec(
                (any::<bool>(), prop::collection::vec(band_round(), bands)),
                1..6,
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Spilling rounds of records as runs and merging the runs with what stayed in memory
        /// gives, band by band, exactly one in-memory sort of everything (duplicates included).
        #[test]
        fn merged_runs_equal_one_sort(rounds in rounds()) {
            let dir = tempfile::tempdir().unwrap();
            let num_bands = rounds[0].1.len();
            let mut all: Vec<Vec<BandRecord>> = vec![Vec::new(); num_bands];
            let mut bands: Vec<Vec<BandRecord>> = vec![Vec::new(); num_bands];
            let mut runs = Vec::new();
            for (spill, round) in &rounds {
                let mut spilled_lengths = Vec::new();
                for (band, part) in round.iter().enumerate() {
                    let records = part.records();
                    all[band].extend_from_slice(&records);
                    bands[band].extend_from_slice(&records);
                    spilled_lengths.push(bands[band].len() as u64);
                }
                if *spill {
                    let run = Run::spill(&mut bands, tempfile::tempfile_in(dir.path()).unwrap()).unwrap();
                    prop_assert!(bands.iter().all(Vec::is_empty));
                    let lengths: Vec<u64> = run.band_starts.windows(2).map(|w| w[1] - w[0]).collect();
                    prop_assert_eq!(lengths, spilled_lengths);
                    runs.push(run);
                }
            }
            for (band, expected) in all.iter_mut().enumerate() {
                expected.sort_unstable();
                bands[band].sort_unstable();
                let mut merged = Vec::new();
                merge_band(&runs, band, &bands[band], |r| merged.push(r)).unwrap();
                prop_assert_eq!(&merged, expected, "band {}", band);
            }
        }
    }
}
