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

mod column;
mod sorter;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub use column::{Column, ColumnIter, FixedRecord, KeyedColumn};
pub use sorter::{Groups, PersistedRuns, Sorted, Sorter};

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::spill::{Column, Sorter, SpillBytes, SpillSpace};

    /// A space whose tables spill at once (tests of every table here).
    pub(crate) fn tight_space() -> Arc<SpillSpace> {
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
}
