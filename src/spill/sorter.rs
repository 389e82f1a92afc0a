//! [`Sorter`]: records pushed in any order and read back sorted, an external merge sort within a
//! budget; [`Sorted`] reads them back, [`Groups`] a group of equal key at a time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;

use super::{FixedRecord, SpillSpace};

/// Records pushed in any order and read back sorted; beyond `max_records` in memory, sorted runs
/// go to disk and are merged back.
#[derive(Debug)]
pub struct Sorter<T> {
    space: std::sync::Arc<SpillSpace>,
    memory: Vec<T>,
    max_records: usize,
    runs: Vec<SortedRun>,
    /// Runs are named `{name}-{number}` in a work directory.
    name: Option<String>,
}

/// What a resumed run needs to reopen a persisted [`Sorter`]: its runs' record counts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PersistedRuns {
    pub records: Vec<u64>,
}

/// One sorted run on disk.
#[derive(Debug)]
struct SortedRun {
    file: File,
    records: u64,
}

impl<T: FixedRecord + Ord + Copy + Send> Sorter<T> {
    /// A sorter keeping at most `max_bytes` of records in memory.
    pub fn new(space: std::sync::Arc<SpillSpace>, max_bytes: u64) -> Sorter<T> {
        let max_records = (max_bytes / std::mem::size_of::<T>().max(1) as u64).max(1024);
        Sorter {
            space,
            memory: Vec::new(),
            max_records: usize::try_from(max_records).unwrap_or(usize::MAX),
            runs: Vec::new(),
            name: None,
        }
    }

    /// A sorter whose runs, in a space with a work directory, are kept there as `{name}-N`.
    pub fn named(space: std::sync::Arc<SpillSpace>, name: &str, max_bytes: u64) -> Sorter<T> {
        Sorter {
            name: Some(name.to_string()),
            ..Sorter::new(space, max_bytes)
        }
    }

    fn run_name(&self, number: usize) -> Option<String> {
        self.name.as_ref().map(|name| format!("{name}-{number}"))
    }

    /// Writes what is in memory as a run and syncs every run, so that [`Sorter::reopen`] can
    /// give this sorter back after the process is gone.
    pub fn persist(&mut self) -> io::Result<PersistedRuns> {
        if !self.memory.is_empty() {
            self.spill()?;
        }
        for run in &self.runs {
            run.file.sync_data()?;
        }
        Ok(PersistedRuns {
            records: self.runs.iter().map(|r| r.records).collect(),
        })
    }

    /// The sorter `name` as persisted.
    pub fn reopen(
        space: std::sync::Arc<SpillSpace>,
        name: &str,
        max_bytes: u64,
        persisted: &PersistedRuns,
    ) -> io::Result<Sorter<T>> {
        let mut sorter = Sorter::named(space, name, max_bytes);
        for (number, &records) in persisted.records.iter().enumerate() {
            let file = sorter
                .space
                .reopen_file(&sorter.run_name(number).expect("named"))?;
            if file.metadata()?.len() < records * T::LEN as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{name}-{number} is shorter than when it was saved"),
                ));
            }
            sorter.runs.push(SortedRun { file, records });
        }
        Ok(sorter)
    }

    pub fn push(&mut self, record: T) -> io::Result<()> {
        self.memory.push(record);
        if self.memory.len() >= self.max_records {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorted runs written so far.
    pub fn runs_spilled(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> io::Result<()> {
        use rayon::slice::ParallelSliceMut;
        self.memory.par_sort_unstable();
        let file = self
            .space
            .named_file(self.run_name(self.runs.len()).as_deref())?;
        let mut out = BufWriter::with_capacity(1 << 20, &file);
        let mut buffer = [0u8; 64];
        for record in &self.memory {
            record.encode(&mut buffer[..T::LEN]);
            out.write_all(&buffer[..T::LEN])?;
        }
        out.flush()?;
        drop(out);
        self.space.wrote(self.memory.len() * T::LEN);
        self.runs.push(SortedRun {
            file,
            records: self.memory.len() as u64,
        });
        self.memory.clear();
        self.memory.shrink_to_fit();
        Ok(())
    }

    /// Every record pushed, in sorted order.
    pub fn into_sorted(mut self) -> io::Result<Sorted<T>> {
        use rayon::slice::ParallelSliceMut;
        self.memory.par_sort_unstable();
        // The runs' read buffers share the sorter's memory: many runs read smaller blocks.
        let block_records = (self.max_records / self.runs.len().max(1))
            .clamp(MIN_RUN_BLOCK_RECORDS, MAX_RUN_BLOCK_RECORDS) as u64;
        let mut sources: Vec<RunReader> = self
            .runs
            .into_iter()
            .map(|run| RunReader {
                run,
                next: 0,
                block_records,
                buffer: Vec::new(),
                at: 0,
            })
            .collect();
        let mut heap = BinaryHeap::new();
        for (number, source) in sources.iter_mut().enumerate() {
            if let Some(record) = source.next::<T>()? {
                heap.push(Reverse((record, number)));
            }
        }
        Ok(Sorted {
            memory: self.memory.into_iter().peekable(),
            sources,
            heap,
        })
    }
}

/// Reads one sorted run in order, a block at a time.
#[derive(Debug)]
struct RunReader {
    run: SortedRun,
    /// Next record index to load into the buffer.
    next: u64,
    /// Records read at a time.
    block_records: u64,
    buffer: Vec<u8>,
    at: usize,
}

/// Records per block read from a run, at most and at least (many runs, small budget).
const MAX_RUN_BLOCK_RECORDS: usize = 8192;
const MIN_RUN_BLOCK_RECORDS: usize = 64;

impl RunReader {
    fn next<T: FixedRecord>(&mut self) -> io::Result<Option<T>> {
        if self.at >= self.buffer.len() {
            if self.next >= self.run.records {
                return Ok(None);
            }
            let count = self.block_records.min(self.run.records - self.next);
            self.buffer.resize(count as usize * T::LEN, 0);
            self.run
                .file
                .read_exact_at(&mut self.buffer, self.next * T::LEN as u64)?;
            self.next += count;
            self.at = 0;
        }
        let record = T::decode(&self.buffer[self.at..self.at + T::LEN]);
        self.at += T::LEN;
        Ok(Some(record))
    }
}

/// The records of a [`Sorter`] in sorted order: the runs merged with what stayed in memory.
#[derive(Debug)]
pub struct Sorted<T: Ord> {
    memory: std::iter::Peekable<std::vec::IntoIter<T>>,
    sources: Vec<RunReader>,
    heap: BinaryHeap<Reverse<(T, usize)>>,
}

impl<T: FixedRecord + Ord + Copy> Sorted<T> {
    /// The records in groups of equal `key` (consecutive, as the order makes them).
    pub fn groups<K: PartialEq, F: Fn(&T) -> K>(self, key: F) -> Groups<T, F> {
        Groups {
            sorted: self,
            next: None,
            key,
        }
    }
}

/// The records of a [`Sorted`] stream a group of equal key at a time ([`Sorted::groups`]).
#[derive(Debug)]
pub struct Groups<T: Ord, F> {
    sorted: Sorted<T>,
    /// The first record of the next group, read past the end of the last one.
    next: Option<T>,
    key: F,
}

impl<T: FixedRecord + Ord + Copy, K: PartialEq, F: Fn(&T) -> K> Groups<T, F> {
    /// The next group's records in `group` (cleared first); false after the last group.
    pub fn next_group(&mut self, group: &mut Vec<T>) -> io::Result<bool> {
        group.clear();
        let first = match self.next.take() {
            Some(first) => first,
            None => match self.sorted.next() {
                Some(record) => record?,
                None => return Ok(false),
            },
        };
        let key = (self.key)(&first);
        group.push(first);
        for record in self.sorted.by_ref() {
            let record = record?;
            if (self.key)(&record) != key {
                self.next = Some(record);
                break;
            }
            group.push(record);
        }
        Ok(true)
    }
}

impl<T: FixedRecord + Ord + Copy> Iterator for Sorted<T> {
    type Item = io::Result<T>;
    fn next(&mut self) -> Option<io::Result<T>> {
        let from_runs = self.heap.peek().map(|Reverse((record, _))| *record);
        let take_memory = match (self.memory.peek(), from_runs) {
            (Some(m), Some(r)) => *m <= r,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        if take_memory {
            return self.memory.next().map(Ok);
        }
        let Reverse((record, number)) = self.heap.pop().expect("peeked");
        match self.sources[number].next::<T>() {
            Ok(Some(next)) => self.heap.push(Reverse((next, number))),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        Some(Ok(record))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::spill::Sorter;
    use crate::spill::tests::tight_space;

    proptest! {
        /// Groups of a sorted stream are its runs of equal key, in order, whatever spilled.
        #[test]
        fn groups_are_the_runs_of_equal_key(values in prop::collection::vec(0u64..50, 0..3_000)) {
            let mut sorter = Sorter::new(tight_space(), 0);
            for &v in &values {
                sorter.push(v).unwrap();
            }
            let mut groups = sorter.into_sorted().unwrap().groups(|v| v / 10);
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let mut expected: Vec<Vec<u64>> = Vec::new();
            for v in sorted {
                match expected.last_mut() {
                    Some(group) if group[0] / 10 == v / 10 => group.push(v),
                    _ => expected.push(vec![v]),
                }
            }
            let mut got = Vec::new();
            let mut group = Vec::new();
            while groups.next_group(&mut group).unwrap() {
                got.push(group.clone());
            }
            prop_assert_eq!(got, expected);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]


        /// Spilled sorted runs merge to the same order as sorting in memory.
        #[test]
        fn spilled_sort_equals_in_memory_sort(
            values in proptest::collection::vec(0u64..5000, 0..20_000),
            budget in 0u64..40_000,
        ) {
            let space = tight_space();
            let mut sorter = Sorter::<u64>::new(space, budget);
            for &v in &values {
                sorter.push(v).unwrap();
            }
            let merged: Vec<u64> = sorter.into_sorted().unwrap().map(Result::unwrap).collect();
            let mut expected = values.clone();
            expected.sort_unstable();
            prop_assert_eq!(merged, expected);
        }
    }
}
