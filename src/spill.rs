//! Spillable stage tables: what a run keeps per document, held within the memory budget.
//!
//! A batch run keeps a few facts per document (its state, id and read-back location) and per
//! distinct text (its signature, its set size, its text hash) until the run ends. At crawl scale
//! those columns outgrow any machine's memory, so each one is a [`SpillBytes`]: an append-only
//! byte array cut into chunks (a sixteenth of the resident budget, at most [`MAX_CHUNK_BYTES`]), of which the oldest move to an anonymous
//! temporary file once the columns of a run together hold more than their share of the budget.
//! Reads are positioned (`pread`), so any thread can read any record; sequential scans go through
//! a [`Cursor`] that reads a chunk at a time.
//!
//! [`Sorter`] is the other table: records pushed in any order, read back in sorted order. Beyond
//! its budget it writes sorted runs and merges them with a heap (an external merge sort); the
//! merged order equals sorting everything in memory, so results never depend on the budget.
//!
//! Every spill file of a run lives in one [`SpillSpace`]: a registered, owner-locked temporary
//! directory under the run's temporary directory, created on the first spill (a run that never
//! spills creates nothing), removed when the run ends or is interrupted. Its files are unnamed,
//! so even a killed run leaves no data behind, only the empty directory a later sweep removes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest chunk of a [`SpillBytes`]: the unit that is kept in memory or moved to disk. A
/// space's chunks are a sixteenth of its resident budget, between 4 KiB and this.
pub const MAX_CHUNK_BYTES: usize = 1 << 20;

/// The smallest chunk.
const MIN_CHUNK_BYTES: usize = 4 << 10;

/// The temporary space and the shared resident budget of one run's tables.
#[derive(Debug)]
pub struct SpillSpace {
    parent: PathBuf,
    /// Bytes the columns of this space may keep in memory together (`u64::MAX`: never spill).
    max_resident: u64,
    chunk_bytes: usize,
    resident: AtomicU64,
    on_disk: AtomicU64,
    dir: Mutex<Option<SpillDir>>,
    /// A work directory of a resumable run: files of named tables are kept there under their
    /// names, so that a later run can reopen them.
    work_dir: Option<PathBuf>,
}

/// The run's spill directory, held (registered and owner-locked) while the space lives.
#[derive(Debug)]
struct SpillDir {
    dir: tempfile::TempDir,
    _registered: crate::output::Registered,
    _owner: File,
}

impl SpillSpace {
    /// A space under `parent` whose columns keep at most `max_resident` bytes in memory.
    pub fn new(parent: &Path, max_resident: u64) -> SpillSpace {
        let chunk_bytes = usize::try_from(max_resident / 16)
            .unwrap_or(MAX_CHUNK_BYTES)
            .clamp(MIN_CHUNK_BYTES, MAX_CHUNK_BYTES);
        SpillSpace {
            parent: parent.to_path_buf(),
            max_resident,
            chunk_bytes,
            resident: AtomicU64::new(0),
            on_disk: AtomicU64::new(0),
            dir: Mutex::new(None),
            work_dir: None,
        }
    }

    /// A space whose named tables keep their files in `work_dir` (which must exist), so that
    /// they survive the process; unnamed files still go under `parent`.
    pub fn with_work_dir(mut self, work_dir: &Path) -> SpillSpace {
        self.work_dir = Some(work_dir.to_path_buf());
        self
    }

    /// Whether named tables keep their files (a resumable run).
    pub fn keeps_files(&self) -> bool {
        self.work_dir.is_some()
    }

    /// The file of the table `name`: a new file in the work directory (replacing any of that
    /// name), or an unnamed one when the space has no work directory.
    pub fn named_file(&self, name: Option<&str>) -> io::Result<File> {
        match (&self.work_dir, name) {
            (Some(dir), Some(name)) => std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.join(name)),
            _ => self.new_file(),
        }
    }

    /// The kept file of the table `name`, to read and extend.
    pub fn reopen_file(&self, name: &str) -> io::Result<File> {
        let dir = self.work_dir.as_ref().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "no work directory to reopen from")
        })?;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(name))
    }

    /// A space that never spills (streaming runs and tests).
    pub fn unbounded() -> SpillSpace {
        SpillSpace::new(&std::env::temp_dir(), u64::MAX)
    }

    /// The directory spill files go under (the run's temporary directory).
    pub fn parent(&self) -> &Path {
        &self.parent
    }

    /// The error of a spill file that could not be written or read.
    pub fn error(&self, source: io::Error) -> crate::error::Error {
        crate::error::Error::Temp {
            path: self.parent.clone(),
            source,
        }
    }

    /// Bytes written to spill files so far (the temporary space the run used).
    pub fn bytes_on_disk(&self) -> u64 {
        self.on_disk.load(Ordering::Relaxed)
    }

    /// Bytes per chunk of this space's arrays.
    pub fn chunk_bytes(&self) -> usize {
        self.chunk_bytes
    }

    /// Bytes the columns hold in memory now.
    pub fn bytes_resident(&self) -> u64 {
        self.resident.load(Ordering::Relaxed)
    }

    fn over_budget(&self) -> bool {
        self.resident.load(Ordering::Relaxed) > self.max_resident
    }

    /// A new unnamed file in the run's spill directory (created on first use), counted in
    /// [`SpillSpace::bytes_on_disk`] only through what the caller reports; band runs are counted
    /// by their tables.
    pub fn new_file(&self) -> io::Result<File> {
        let mut dir = self.dir.lock().unwrap_or_else(|e| e.into_inner());
        if dir.is_none() {
            let (made, registered, owner) = crate::output::temporary_dir_in(&self.parent, "spill")?;
            *dir = Some(SpillDir {
                dir: made,
                _registered: registered,
                _owner: owner,
            });
        }
        let path = dir.as_ref().expect("just created").dir.path();
        tempfile::tempfile_in(path).map_err(crate::output::without_temp_name)
    }

    fn wrote(&self, bytes: usize) {
        self.on_disk.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// An append-only byte array whose oldest chunks move to disk when its space is over budget.
/// Chunks `0..spilled` are in `file` (at their own offsets), the rest in `resident`.
#[derive(Debug)]
pub struct SpillBytes {
    space: std::sync::Arc<SpillSpace>,
    resident: Vec<Vec<u8>>,
    spilled: usize,
    file: Option<File>,
    len: u64,
    chunk: usize,
    /// The table's name in a work directory, for arrays that a resumed run reopens.
    name: Option<String>,
    /// Bytes `persist` has written already (later ones only append after them).
    persisted: u64,
}

/// What a resumed run needs to reopen a [`SpillBytes`] that was persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Persisted {
    pub len: u64,
    pub chunk: usize,
}

impl SpillBytes {
    pub fn new(space: std::sync::Arc<SpillSpace>) -> SpillBytes {
        SpillBytes {
            chunk: space.chunk_bytes,
            space,
            resident: Vec::new(),
            spilled: 0,
            file: None,
            len: 0,
            name: None,
            persisted: 0,
        }
    }

    /// An array whose file, in a space with a work directory, is named `name` there.
    pub fn named(space: std::sync::Arc<SpillSpace>, name: &str) -> SpillBytes {
        let mut bytes = SpillBytes::new(space);
        bytes.name = Some(name.to_string());
        bytes
    }

    /// Writes every byte not written before to the array's file (the chunks in memory stay) and
    /// syncs it, so that
    /// [`SpillBytes::reopen`] can give this array back after the process is gone.
    pub fn persist(&mut self) -> io::Result<Persisted> {
        if self.file.is_none() {
            self.file = Some(self.space.named_file(self.name.as_deref())?);
        }
        let file = self.file.as_ref().expect("opened above");
        // Only the chunks holding bytes not persisted yet: the array only appends.
        for (i, chunk) in self.resident.iter().enumerate() {
            let start = ((self.spilled + i) * self.chunk) as u64;
            if start + chunk.len() as u64 > self.persisted {
                file.write_all_at(chunk, start)?;
            }
        }
        file.sync_data()?;
        self.persisted = self.len;
        Ok(Persisted {
            len: self.len,
            chunk: self.chunk,
        })
    }

    /// The array `name` as persisted: its full chunks stay on disk, the last partial chunk is
    /// read back into memory (bytes past `persisted.len` are ignored and later overwritten).
    pub fn reopen(
        space: std::sync::Arc<SpillSpace>,
        name: &str,
        persisted: Persisted,
    ) -> io::Result<SpillBytes> {
        let file = space.reopen_file(name)?;
        if file.metadata()?.len() < persisted.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name} is shorter than when it was saved"),
            ));
        }
        let chunk = persisted.chunk.max(1);
        let spilled = (persisted.len / chunk as u64) as usize;
        let tail = (persisted.len % chunk as u64) as usize;
        let mut resident = Vec::new();
        if tail > 0 {
            let mut last = Vec::with_capacity(chunk);
            last.resize(tail, 0);
            file.read_exact_at(&mut last, (spilled * chunk) as u64)?;
            resident.push(last);
            space.resident.fetch_add(chunk as u64, Ordering::Relaxed);
        }
        Ok(SpillBytes {
            space,
            resident,
            spilled,
            file: Some(file),
            len: persisted.len,
            chunk,
            name: Some(name.to_string()),
            persisted: persisted.len,
        })
    }

    /// Bytes appended so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The space this array counts against.
    pub fn space(&self) -> &SpillSpace {
        &self.space
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `bytes` and returns the offset they start at. May move old chunks to disk.
    pub fn push(&mut self, mut bytes: &[u8]) -> io::Result<u64> {
        let start = self.len;
        while !bytes.is_empty() {
            let full = self.resident.last().is_none_or(|c| c.len() == self.chunk);
            if full {
                self.resident.push(Vec::with_capacity(self.chunk));
                self.space
                    .resident
                    .fetch_add(self.chunk as u64, Ordering::Relaxed);
                self.spill_while_over_budget()?;
            }
            let chunk = self.resident.last_mut().expect("a chunk with room");
            let take = bytes.len().min(self.chunk - chunk.len());
            chunk.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.len += take as u64;
        }
        Ok(start)
    }

    /// Moves full chunks, oldest first, to disk while the space is over budget (the chunk being
    /// filled stays).
    fn spill_while_over_budget(&mut self) -> io::Result<()> {
        while self.space.over_budget() && self.resident.len() > 1 {
            if self.file.is_none() {
                self.file = Some(self.space.named_file(self.name.as_deref())?);
            }
            let chunk = self.resident.remove(0);
            let offset = (self.spilled * self.chunk) as u64;
            self.file
                .as_ref()
                .expect("opened above")
                .write_all_at(&chunk, offset)?;
            self.space.wrote(chunk.len());
            self.space
                .resident
                .fetch_sub(self.chunk as u64, Ordering::Relaxed);
            self.spilled += 1;
        }
        Ok(())
    }

    /// Fills `out` with the bytes at `offset..offset + out.len()`, from memory or disk.
    pub fn read_into(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        if offset + out.len() as u64 > self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of a spilled table",
            ));
        }
        let mut done = 0;
        while done < out.len() {
            let at = offset + done as u64;
            let chunk = (at / self.chunk as u64) as usize;
            let within = (at % self.chunk as u64) as usize;
            let take = (out.len() - done).min(self.chunk - within);
            let target = &mut out[done..done + take];
            if chunk < self.spilled {
                self.file
                    .as_ref()
                    .expect("spilled chunks have a file")
                    .read_exact_at(target, at)?;
            } else {
                target.copy_from_slice(&self.resident[chunk - self.spilled][within..within + take]);
            }
            done += take;
        }
        Ok(())
    }

    /// Reads the whole array from the start, a chunk at a time.
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor {
            bytes: self,
            at: 0,
            buffer: Vec::new(),
            consumed: 0,
        }
    }
}

impl Drop for SpillBytes {
    fn drop(&mut self) {
        self.space
            .resident
            .fetch_sub((self.resident.len() * self.chunk) as u64, Ordering::Relaxed);
    }
}

/// Sequential reads of a [`SpillBytes`] through a buffer of about one chunk.
#[derive(Debug)]
pub struct Cursor<'a> {
    bytes: &'a SpillBytes,
    /// Offset of the buffer's first byte.
    at: u64,
    buffer: Vec<u8>,
    /// Bytes of `buffer` already handed out.
    consumed: usize,
}

impl Cursor<'_> {
    /// The next `len` bytes, or `None` at the end.
    pub fn next_bytes(&mut self, len: usize) -> io::Result<Option<&[u8]>> {
        if self.buffer.len() - self.consumed < len {
            let from = self.at + self.consumed as u64;
            let remaining = self.bytes.len - from;
            if remaining < len as u64 {
                return Ok(None);
            }
            let want = (self.bytes.chunk.max(len) as u64).min(remaining) as usize;
            self.buffer.resize(want, 0);
            self.bytes.read_into(from, &mut self.buffer)?;
            self.at = from;
            self.consumed = 0;
        }
        let out = &self.buffer[self.consumed..self.consumed + len];
        self.consumed += len;
        Ok(Some(out))
    }
}

/// A record of fixed size, stored in a [`Column`] or sorted by a [`Sorter`].
pub trait FixedRecord: Sized {
    const LEN: usize;
    fn encode(&self, out: &mut [u8]);
    fn decode(bytes: &[u8]) -> Self;
}

/// Numbers are stored little-endian.
macro_rules! fixed_number {
    ($($t:ty),*) => {$(
        impl FixedRecord for $t {
            const LEN: usize = std::mem::size_of::<$t>();
            fn encode(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            fn decode(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("a number's bytes"))
            }
        }
    )*};
}

fixed_number!(u32, u64, u128, f64);

/// A pair of numbers (a candidate pair of slots), the first then the second.
impl FixedRecord for (u32, u32) {
    const LEN: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.0.to_le_bytes());
        out[4..8].copy_from_slice(&self.1.to_le_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        let half = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        (half(0), half(4))
    }
}

/// An append-only array of fixed-size records over a [`SpillBytes`].
#[derive(Debug)]
pub struct Column<T> {
    bytes: SpillBytes,
    len: usize,
    _records: PhantomData<T>,
}

impl<T: FixedRecord> Column<T> {
    pub fn new(space: std::sync::Arc<SpillSpace>) -> Column<T> {
        Column {
            bytes: SpillBytes::new(space),
            len: 0,
            _records: PhantomData,
        }
    }

    /// A column whose file, in a space with a work directory, is named `name` there.
    pub fn named(space: std::sync::Arc<SpillSpace>, name: &str) -> Column<T> {
        Column {
            bytes: SpillBytes::named(space, name),
            len: 0,
            _records: PhantomData,
        }
    }

    /// See [`SpillBytes::persist`].
    pub fn persist(&mut self) -> io::Result<Persisted> {
        self.bytes.persist()
    }

    /// See [`SpillBytes::reopen`].
    pub fn reopen(
        space: std::sync::Arc<SpillSpace>,
        name: &str,
        persisted: Persisted,
    ) -> io::Result<Column<T>> {
        let bytes = SpillBytes::reopen(space, name, persisted)?;
        Ok(Column {
            len: (bytes.len() / T::LEN as u64) as usize,
            bytes,
            _records: PhantomData,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, record: &T) -> io::Result<()> {
        let mut buffer = [0u8; 64];
        let encoded = &mut buffer[..T::LEN];
        record.encode(encoded);
        self.bytes.push(encoded)?;
        self.len += 1;
        Ok(())
    }

    /// The record at `index` (which must be below [`Column::len`]).
    pub fn get(&self, index: usize) -> io::Result<T> {
        let mut buffer = [0u8; 64];
        let encoded = &mut buffer[..T::LEN];
        self.bytes.read_into((index * T::LEN) as u64, encoded)?;
        Ok(T::decode(encoded))
    }

    /// Every record in order.
    pub fn iter(&self) -> ColumnIter<'_, T> {
        ColumnIter {
            cursor: self.bytes.cursor(),
            _records: PhantomData,
        }
    }
}

/// The records of a [`Column`] in order.
#[derive(Debug)]
pub struct ColumnIter<'a, T> {
    cursor: Cursor<'a>,
    _records: PhantomData<T>,
}

impl<T: FixedRecord> Iterator for ColumnIter<'_, T> {
    type Item = io::Result<T>;
    fn next(&mut self) -> Option<io::Result<T>> {
        match self.cursor.next_bytes(T::LEN) {
            Ok(Some(bytes)) => Some(Ok(T::decode(bytes))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Keys of a [`KeyedColumn`] per entry of its in-memory index.
const KEY_INDEX_STEP: usize = 64;

/// Records appended in increasing order of a key and found by key: a [`Column`] (spilled beyond
/// the budget like any other) with every 64th key in memory. A lookup is a binary search of that
/// index, then of one block of 64 records (a few positioned reads when the block is on disk).
#[derive(Debug)]
pub struct KeyedColumn<T, K> {
    records: Column<T>,
    index: Vec<K>,
    key: fn(&T) -> K,
    last: Option<K>,
}

impl<T: FixedRecord, K: Ord + Copy> KeyedColumn<T, K> {
    /// An empty column whose records are keyed by `key`.
    pub fn new(space: std::sync::Arc<SpillSpace>, key: fn(&T) -> K) -> KeyedColumn<T, K> {
        KeyedColumn {
            records: Column::new(space),
            index: Vec::new(),
            key,
            last: None,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Appends `record`, whose key must be above every key appended before.
    pub fn push(&mut self, record: &T) -> io::Result<()> {
        let key = (self.key)(record);
        if self.last.is_some_and(|last| last >= key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "keyed records must come in increasing order of key",
            ));
        }
        if self.records.len().is_multiple_of(KEY_INDEX_STEP) {
            self.index.push(key);
        }
        self.records.push(record)?;
        self.last = Some(key);
        Ok(())
    }

    /// The record of `key`, if there is one.
    pub fn get(&self, key: &K) -> io::Result<Option<T>> {
        Ok(self.find(key)?.map(|(_, record)| record))
    }

    /// The position of the record of `key` (its rank among the keys), if there is one.
    pub fn position(&self, key: &K) -> io::Result<Option<usize>> {
        Ok(self.find(key)?.map(|(at, _)| at))
    }

    /// The record at `position` (below [`KeyedColumn::len`]).
    pub fn at(&self, position: usize) -> io::Result<T> {
        self.records.get(position)
    }

    /// The position and record of `key`: the block that can hold it is read in one go (one
    /// positioned read when it is on disk) and searched in memory.
    fn find(&self, key: &K) -> io::Result<Option<(usize, T)>> {
        let block = self.index.partition_point(|first| first <= key);
        if block == 0 {
            return Ok(None);
        }
        let start = (block - 1) * KEY_INDEX_STEP;
        let end = (start + KEY_INDEX_STEP).min(self.records.len());
        let mut bytes = [0u8; 64 * KEY_INDEX_STEP];
        let bytes = &mut bytes[..(end - start) * T::LEN];
        self.records
            .bytes
            .read_into((start * T::LEN) as u64, bytes)?;
        let record = |at: usize| T::decode(&bytes[at * T::LEN..(at + 1) * T::LEN]);
        let (mut low, mut high) = (0, end - start);
        while low < high {
            let middle = (low + high) / 2;
            let found = record(middle);
            match (self.key)(&found).cmp(key) {
                std::cmp::Ordering::Equal => return Ok(Some((start + middle, found))),
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
            }
        }
        Ok(None)
    }

    /// Every record in key order.
    pub fn iter(&self) -> ColumnIter<'_, T> {
        self.records.iter()
    }
}

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
    use std::sync::Arc;

    use proptest::prelude::*;

    use crate::spill::{Column, KeyedColumn, Sorter, SpillBytes, SpillSpace};

    proptest! {
        /// A keyed column that spills at once finds every record by its key, and nothing else.
        #[test]
        fn a_keyed_column_finds_records_by_key(keys in prop::collection::btree_set(0u32..5_000, 0..2_000)) {
            let mut column = KeyedColumn::new(tight_space(), |record: &(u32, u32)| record.0);
            for &key in &keys {
                column.push(&(key, key.wrapping_mul(7))).unwrap();
            }
            prop_assert_eq!(column.len(), keys.len());
            for probe in 0..5_001u32 {
                let want = keys.contains(&probe).then(|| (probe, probe.wrapping_mul(7)));
                prop_assert_eq!(column.get(&probe).unwrap(), want);
                let rank = keys.range(..probe).count();
                prop_assert_eq!(column.position(&probe).unwrap(), want.map(|_| rank));
                if want.is_some() {
                    prop_assert_eq!(column.at(rank).unwrap(), want.unwrap());
                }
            }
            if let Some(&last) = keys.iter().next_back() {
                prop_assert!(column.push(&(last, 0)).is_err(), "keys must increase");
            }
        }
    }

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

    fn tight_space() -> Arc<SpillSpace> {
        Arc::new(SpillSpace::new(&std::env::temp_dir(), 0))
    }

    #[test]
    fn bytes_spill_and_read_back_across_chunks() {
        let space = tight_space();
        let chunk = space.chunk_bytes();
        let mut bytes = SpillBytes::new(space.clone());
        let data: Vec<u8> = (0..3 * chunk + 777).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(1000) {
            bytes.push(piece).unwrap();
        }
        assert!(space.bytes_on_disk() >= 3 * chunk as u64);
        assert_eq!(space.bytes_resident(), chunk as u64);
        let mut out = vec![0u8; 5000];
        let from = chunk - 2000;
        bytes.read_into(from as u64, &mut out).unwrap();
        assert_eq!(out, data[from..from + 5000]);
        assert!(bytes.read_into(data.len() as u64 - 10, &mut out).is_err());
        let mut cursor = bytes.cursor();
        let mut seen = Vec::new();
        while let Some(piece) = cursor.next_bytes(999).unwrap() {
            seen.extend_from_slice(piece);
        }
        assert_eq!(seen, data[..data.len() / 999 * 999]);
        drop(bytes);
        assert_eq!(space.bytes_resident(), 0);
    }

    #[test]
    fn an_unbounded_space_never_writes() {
        let space = Arc::new(SpillSpace::unbounded());
        let mut column = Column::<u64>::new(space.clone());
        for i in 0..300_000u64 {
            column.push(&i).unwrap();
        }
        assert_eq!(space.bytes_on_disk(), 0);
        assert_eq!(column.get(123_456).unwrap(), 123_456);
        assert_eq!(
            column.iter().map(Result::unwrap).sum::<u64>(),
            299_999 * 150_000
        );
    }

    /// A persisted column and sorter come back in a new space over the same work directory as
    /// they were when persisted, whatever was pushed after, and go on growing from there.
    #[test]
    fn persisted_tables_reopen_as_they_were_saved() {
        let dir = tempfile::tempdir().unwrap();
        let space =
            || Arc::new(SpillSpace::new(&std::env::temp_dir(), 0).with_work_dir(dir.path()));
        let first = space();
        let mut column = Column::<u64>::named(first.clone(), "values");
        let mut sorter = Sorter::<u64>::named(first.clone(), "sorted", 0);
        for v in 0..10_000u64 {
            column.push(&(v * 3)).unwrap();
            sorter.push(10_000 - v).unwrap();
        }
        let saved = column.persist().unwrap();
        let saved_runs = sorter.persist().unwrap();
        // Pushed after the save: a killed run would lose these.
        for v in 0..5_000u64 {
            column.push(&v).unwrap();
        }
        drop((column, sorter));
        let second = space();
        let mut column = Column::<u64>::reopen(second.clone(), "values", saved).unwrap();
        assert_eq!(column.len(), 10_000);
        assert_eq!(column.get(9_999).unwrap(), 29_997);
        column.push(&7).unwrap();
        let back: Vec<u64> = column.iter().map(Result::unwrap).collect();
        assert_eq!(back.len(), 10_001);
        assert_eq!((back[0], back[5_000], back[10_000]), (0, 15_000, 7));
        let mut sorter = Sorter::<u64>::reopen(second, "sorted", 0, &saved_runs).unwrap();
        sorter.push(0).unwrap();
        let sorted: Vec<u64> = sorter.into_sorted().unwrap().map(Result::unwrap).collect();
        assert_eq!(sorted, (0..=10_000).collect::<Vec<u64>>());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// A column reads back what was pushed, by index and in order, whatever spilled.
        #[test]
        fn column_reads_back_what_was_pushed(values in proptest::collection::vec(any::<u128>(), 0..200_000)) {
            let mut column = Column::<u128>::new(tight_space());
            for v in &values {
                column.push(v).unwrap();
            }
            prop_assert_eq!(column.len(), values.len());
            let back: Vec<u128> = column.iter().map(Result::unwrap).collect();
            prop_assert_eq!(&back, &values);
            for i in (0..values.len()).step_by(997) {
                prop_assert_eq!(column.get(i).unwrap(), values[i]);
            }
        }

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
