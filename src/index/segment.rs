//! One immutable segment file of an index: the documents one `index build`, `index add` or
//! `dedup --update` contributed.
//!
//! Layout (little-endian, every section 8-byte aligned):
//!
//! | bytes | what |
//! |---|---|
//! | 64 | header: magic `NEARDUPS`, format version, num_perm, num_bands, rows_per_band, parameter fingerprint, document count, id bytes |
//! | 16 · n | text hashes (128-bit xxh3 of the normalized text), sorted |
//! | 4 · n | the ordinal of each sorted hash |
//! | num_perm · n | signatures (8-bit values), by ordinal |
//! | 12 · n per band (padded to 8) | band records sorted by (key, ordinal), band after band: the n 64-bit keys, then the n 32-bit ordinals in the same order |
//! | 8 · n | end offset of each id in the id bytes |
//! | id bytes | the ids, UTF-8, one after another |
//! | 16 | xxh3-64 of everything before, then magic `NDUPEND1` |
//!
//! Version 2 widened band keys from 32 to 64 bits (version 1 stored `key << 32 | ordinal` in one
//! `u64`); a segment of another version is refused, never read.
//!
//! The length of the file follows from the header, so truncation is caught before anything is
//! read; the checksum catches any flipped byte. The file is written to a temporary name, synced
//! and renamed, so it is never seen half-written. Lookups memory-map the file and touch only the
//! pages they search.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use xxhash_rust::xxh3::Xxh3;

use super::{IndexError, other_version};
use crate::lsh::BandKey;
use crate::spill::{Column, FixedRecord, Sorter, SpillBytes, SpillSpace};

const MAGIC: &[u8; 8] = b"NEARDUPS";
const END_MAGIC: &[u8; 8] = b"NDUPEND1";
const HEADER_BYTES: u64 = 64;
/// Version of the segment layout; bumped on any change (2: 64-bit band keys).
pub const SEGMENT_VERSION: u32 = 2;

/// What a new segment holds, by ordinal (0-based, in the order documents were added), gathered in
/// spillable tables of a [`SpillSpace`]: within its budget in memory, beyond it on disk, so that a
/// segment of any size is built in bounded memory. Written (and consumed) by [`write_segment`].
#[derive(Debug)]
pub struct SegmentData {
    pub num_perm: usize,
    pub num_bands: usize,
    space: Arc<SpillSpace>,
    /// Ids, one after another, and the end of each.
    id_bytes: SpillBytes,
    id_ends: Column<u64>,
    /// Text hashes with their ordinals, sorted as the segment stores them.
    by_hash: Sorter<HashOrdinal>,
    /// `num_perm` bytes per document.
    signatures: SpillBytes,
    /// Per band, the (key, ordinal) records, sorted as the segment stores them.
    bands: Vec<Sorter<KeyOrdinal>>,
}

/// A text hash and the ordinal of its document; sorts by hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct HashOrdinal {
    hash: u128,
    ordinal: u32,
}

impl FixedRecord for HashOrdinal {
    const LEN: usize = 20;
    fn encode(&self, out: &mut [u8]) {
        out[..16].copy_from_slice(&self.hash.to_le_bytes());
        out[16..20].copy_from_slice(&self.ordinal.to_le_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        HashOrdinal {
            hash: u128::from_le_bytes(bytes[..16].try_into().expect("16 bytes")),
            ordinal: le_u32(bytes, 16),
        }
    }
}

/// A band key and the ordinal of its document; sorts by key, then ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct KeyOrdinal {
    key: u64,
    ordinal: u32,
}

impl FixedRecord for KeyOrdinal {
    const LEN: usize = 12;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.key.to_le_bytes());
        out[8..12].copy_from_slice(&self.ordinal.to_le_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        KeyOrdinal {
            key: le_u64(bytes, 0),
            ordinal: le_u32(bytes, 8),
        }
    }
}

impl SegmentData {
    /// A segment gathered in memory.
    pub fn new(num_perm: usize, num_bands: usize) -> Self {
        Self::in_space(
            num_perm,
            num_bands,
            Arc::new(SpillSpace::unbounded()),
            u64::MAX,
        )
    }

    /// A segment gathered in `space` (its columns within the space's resident budget), each of
    /// its sorts keeping at most `sort_bytes` in memory.
    pub fn in_space(
        num_perm: usize,
        num_bands: usize,
        space: Arc<SpillSpace>,
        sort_bytes: u64,
    ) -> Self {
        let share = sort_bytes / (num_bands as u64 + 1);
        SegmentData {
            num_perm,
            num_bands,
            id_bytes: SpillBytes::new(space.clone()),
            id_ends: Column::new(space.clone()),
            by_hash: Sorter::new(space.clone(), share),
            signatures: SpillBytes::new(space.clone()),
            bands: (0..num_bands)
                .map(|_| Sorter::new(space.clone(), share))
                .collect(),
            space,
        }
    }

    pub fn len(&self) -> usize {
        self.id_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id_ends.is_empty()
    }

    /// Adds one document; `signature` has `num_perm` bytes and `keys` one key per band.
    pub fn push(
        &mut self,
        id: &str,
        text_hash: u128,
        signature: &[u8],
        keys: &[BandKey],
    ) -> std::io::Result<()> {
        debug_assert_eq!(keys.len(), self.num_bands);
        let ordinal = self.push_document(id, signature)?;
        self.push_text_hash(text_hash, ordinal)?;
        for (band, key) in keys.iter().enumerate() {
            self.push_band_key(band, *key, ordinal)?;
        }
        Ok(())
    }

    /// Adds one document's id and signature, and returns its ordinal; its text hash and band
    /// keys are given by [`SegmentData::push_text_hash`] and [`SegmentData::push_band_key`],
    /// once each, in any order.
    pub fn push_document(&mut self, id: &str, signature: &[u8]) -> std::io::Result<u32> {
        debug_assert_eq!(signature.len(), self.num_perm);
        let ordinal = u32::try_from(self.len()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a segment holds at most 2^32 documents",
            )
        })?;
        self.id_bytes.push(id.as_bytes())?;
        self.id_ends.push(&self.id_bytes.len())?;
        self.signatures.push(signature)?;
        Ok(ordinal)
    }

    /// The text hash of the document of `ordinal`.
    pub fn push_text_hash(&mut self, hash: u128, ordinal: u32) -> std::io::Result<()> {
        self.by_hash.push(HashOrdinal { hash, ordinal })
    }

    /// The key in `band` of the document of `ordinal`.
    pub fn push_band_key(
        &mut self,
        band: usize,
        key: BandKey,
        ordinal: u32,
    ) -> std::io::Result<()> {
        self.bands[band].push(KeyOrdinal {
            key: key.0,
            ordinal,
        })
    }

    /// Its documents, leaving it empty (in memory, of the same shape).
    pub fn take(&mut self) -> SegmentData {
        std::mem::replace(self, SegmentData::new(self.num_perm, self.num_bands))
    }

    /// The space its tables spill to.
    pub fn space(&self) -> &SpillSpace {
        &self.space
    }
}

/// Where each section starts, from the header's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    num_docs: u64,
    num_perm: u64,
    num_bands: u64,
    hashes: u64,
    hash_ordinals: u64,
    signatures: u64,
    bands: u64,
    /// Bytes of one band's records: the keys, then the ordinals, padded to 8.
    band_bytes: u64,
    id_ends: u64,
    id_bytes: u64,
    trailer: u64,
}

fn align8(n: u64) -> u64 {
    n.div_ceil(8) * 8
}

impl Layout {
    /// `None` when the counts overflow (a damaged header).
    fn new(num_docs: u64, num_perm: u64, num_bands: u64, id_bytes: u64) -> Option<Layout> {
        let hashes = HEADER_BYTES;
        let hash_ordinals = hashes.checked_add(num_docs.checked_mul(16)?)?;
        let signatures =
            hash_ordinals.checked_add(num_docs.checked_mul(4)?.checked_next_multiple_of(8)?)?;
        let bands = signatures.checked_add(
            num_docs
                .checked_mul(num_perm)?
                .checked_next_multiple_of(8)?,
        )?;
        let band_bytes = num_docs
            .checked_mul(8)?
            .checked_add(num_docs.checked_mul(4)?.checked_next_multiple_of(8)?)?;
        let id_ends = bands.checked_add(band_bytes.checked_mul(num_bands)?)?;
        let id_start = id_ends.checked_add(num_docs.checked_mul(8)?)?;
        let trailer = id_start.checked_add(id_bytes.checked_next_multiple_of(8)?)?;
        // The trailer's 16 bytes must fit too (`file_len`).
        trailer.checked_add(16)?;
        Some(Layout {
            num_docs,
            num_perm,
            num_bands,
            hashes,
            hash_ordinals,
            signatures,
            bands,
            band_bytes,
            id_ends,
            id_bytes: id_start,
            trailer,
        })
    }

    fn file_len(&self) -> u64 {
        self.trailer + 16
    }
}

/// Writes `data` as a segment at `path` (through a temporary file in the same directory, synced
/// and renamed). Returns the file's length and checksum.
pub fn write_segment(
    path: &Path,
    data: SegmentData,
    fingerprint: u64,
    rows_per_band: usize,
) -> Result<(u64, u64), IndexError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-segment-")
        // Like any new file: 0666 less the umask, not tempfile's private 0600.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| io(crate::output::without_temp_name(e)))?;
    // Removed by a signal handler should the write be interrupted.
    let _registered = crate::output::Registered::new(temp.path().to_path_buf());
    let n = data.len() as u64;
    let mut out = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, temp.as_file_mut()),
        hasher: Xxh3::new(),
        written: 0,
    };
    let mut header = Vec::with_capacity(HEADER_BYTES as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header.extend_from_slice(&(data.num_perm as u32).to_le_bytes());
    header.extend_from_slice(&(data.num_bands as u32).to_le_bytes());
    header.extend_from_slice(&(rows_per_band as u32).to_le_bytes());
    header.extend_from_slice(&fingerprint.to_le_bytes());
    header.extend_from_slice(&n.to_le_bytes());
    header.extend_from_slice(&data.id_bytes.len().to_le_bytes());
    header.resize(HEADER_BYTES as usize, 0);
    out.put(&header).map_err(io)?;

    let SegmentData {
        space,
        id_bytes,
        id_ends,
        by_hash,
        signatures,
        bands,
        ..
    } = data;
    // Sorted records are written as two lists (the keys, then the ordinals): the ordinals wait
    // in a column while the keys go out.
    // Every section holds one record per document: anything else would write a segment its own
    // header contradicts.
    let short = |what: String| IndexError::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    let mut ordinals: Column<u32> = Column::new(space.clone());
    for record in by_hash.into_sorted().map_err(io)? {
        let record = record.map_err(io)?;
        out.put(&record.hash.to_le_bytes()).map_err(io)?;
        ordinals.push(&record.ordinal).map_err(io)?;
    }
    if ordinals.len() as u64 != n {
        return Err(short(format!(
            "{} text hashes given for {n} documents",
            ordinals.len()
        )));
    }
    put_ordinals(&mut out, ordinals).map_err(io)?;
    put_bytes(&mut out, &signatures).map_err(io)?;
    drop(signatures);
    out.pad8().map_err(io)?;
    for (number, band) in bands.into_iter().enumerate() {
        let mut ordinals: Column<u32> = Column::new(space.clone());
        for record in band.into_sorted().map_err(io)? {
            let record = record.map_err(io)?;
            out.put(&record.key.to_le_bytes()).map_err(io)?;
            ordinals.push(&record.ordinal).map_err(io)?;
        }
        if ordinals.len() as u64 != n {
            return Err(short(format!(
                "{} keys given in band {number} for {n} documents",
                ordinals.len()
            )));
        }
        put_ordinals(&mut out, ordinals).map_err(io)?;
    }
    for end in id_ends.iter() {
        out.put(&end.map_err(io)?.to_le_bytes()).map_err(io)?;
    }
    put_bytes(&mut out, &id_bytes).map_err(io)?;
    out.pad8().map_err(io)?;
    let checksum = out.hasher.digest();
    out.inner.write_all(&checksum.to_le_bytes()).map_err(io)?;
    out.inner.write_all(END_MAGIC).map_err(io)?;
    let len = out.written + 16;
    out.inner.flush().map_err(io)?;
    drop(out);
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(path).map_err(|e| io(e.error))?;
    Ok((len, checksum))
}

/// Writes a sorted section's ordinals after its keys, then pads to 8.
fn put_ordinals<W: Write>(
    out: &mut HashingWriter<W>,
    ordinals: Column<u32>,
) -> std::io::Result<()> {
    for ordinal in ordinals.iter() {
        out.put(&ordinal?.to_le_bytes())?;
    }
    out.pad8()
}

/// Writes every byte of `bytes`, a block at a time.
fn put_bytes<W: Write>(out: &mut HashingWriter<W>, bytes: &SpillBytes) -> std::io::Result<()> {
    let mut block = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < bytes.len() {
        let take = (bytes.len() - at).min(block.len() as u64) as usize;
        bytes.read_into(at, &mut block[..take])?;
        out.put(&block[..take])?;
        at += take as u64;
    }
    Ok(())
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Xxh3,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.inner.write_all(bytes)
    }

    fn pad8(&mut self) -> std::io::Result<()> {
        let pad = (align8(self.written) - self.written) as usize;
        self.put(&[0u8; 8][..pad])
    }
}

/// An open, checked segment.
#[derive(Debug)]
pub struct Segment {
    path: PathBuf,
    /// For reads of single records (signatures, ids), which would otherwise fault in a whole page
    /// (and its neighbours) each.
    file: File,
    /// For binary searches over the sorted tables.
    map: Mmap,
    layout: Layout,
    fingerprint: u64,
    rows_per_band: usize,
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

impl Segment {
    /// Opens the segment at `path`: checks magic, version, length, and the checksum of every byte
    /// (read in chunks, not mapped, so checking does not grow the process's memory), then maps it.
    pub fn open(path: &Path) -> Result<Segment, IndexError> {
        let corrupt = |what: String| IndexError::Corrupt {
            path: path.to_path_buf(),
            what,
        };
        let io = |source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let actual_len = file.metadata().map_err(io)?.len();
        let mut header = [0u8; HEADER_BYTES as usize];
        if actual_len < HEADER_BYTES {
            return Err(corrupt(format!(
                "file is {actual_len} bytes, shorter than a segment header"
            )));
        }
        file.read_exact(&mut header).map_err(io)?;
        if &header[..8] != MAGIC {
            return Err(corrupt("not a neardup segment (bad magic number)".into()));
        }
        let version = le_u32(&header, 8);
        if version != SEGMENT_VERSION {
            // An intact file of another version is refused as such; a damaged version field is
            // damage. The checksum covers every byte but the trailer in every version.
            verify_checksum(&mut file, &header, actual_len, path)?;
            return Err(other_version(path, version, SEGMENT_VERSION));
        }
        let num_perm = u64::from(le_u32(&header, 12));
        let num_bands = u64::from(le_u32(&header, 16));
        let rows_per_band = le_u32(&header, 20) as usize;
        let fingerprint = le_u64(&header, 24);
        let num_docs = le_u64(&header, 32);
        let id_bytes = le_u64(&header, 40);
        // Per-band and per-permutation lists are allocated from these: no run has more of either
        // than `MAX_NUM_PERM`, so a header saying so is damage, whatever its length agrees with.
        let limit = crate::minhash::MAX_NUM_PERM as u64;
        if num_perm > limit || num_bands > limit {
            return Err(corrupt(format!(
                "header says {num_perm} permutations and {num_bands} bands (at most {limit} each)"
            )));
        }
        let layout = Layout::new(num_docs, num_perm, num_bands, id_bytes)
            .ok_or_else(|| corrupt("header counts overflow".into()))?;
        if layout.file_len() != actual_len {
            return Err(corrupt(format!(
                "file is {actual_len} bytes but its header describes {} (truncated or damaged)",
                layout.file_len()
            )));
        }
        verify_checksum(&mut file, &header, actual_len, path)?;
        // SAFETY: the file is only ever written under a temporary name and renamed into place;
        // index files are never modified after that, so the mapping does not change under us.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        if map.len() as u64 != actual_len {
            return Err(corrupt("file changed while being opened".into()));
        }
        // Lookups jump around: read only the pages they touch, not the neighbours too.
        #[cfg(unix)]
        map.advise(memmap2::Advice::Random).map_err(io)?;
        Ok(Segment {
            path: path.to_path_buf(),
            file,
            map,
            layout,
            fingerprint,
            rows_per_band,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.layout.num_docs
    }

    pub fn is_empty(&self) -> bool {
        self.layout.num_docs == 0
    }

    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// `(num_perm, num_bands, rows_per_band)` as written in the header.
    pub fn shape(&self) -> (usize, usize, usize) {
        (
            self.layout.num_perm as usize,
            self.layout.num_bands as usize,
            self.rows_per_band,
        )
    }

    pub fn file_len(&self) -> u64 {
        self.layout.file_len()
    }

    fn hash_at(&self, i: u64) -> u128 {
        let at = (self.layout.hashes + 16 * i) as usize;
        u128::from_le_bytes(self.map[at..at + 16].try_into().expect("16 bytes"))
    }

    /// The ordinal of a document with this normalized-text hash, if any (the first added).
    pub fn find_text(&self, hash: u128) -> Option<u32> {
        let n = self.layout.num_docs;
        let first = partition_point(n, |i| self.hash_at(i) < hash);
        (first < n && self.hash_at(first) == hash)
            .then(|| le_u32(&self.map, (self.layout.hash_ordinals + 4 * first) as usize))
    }

    /// The key of the `i`-th record (in sorted order) of `band`.
    fn band_key(&self, band: u64, i: u64) -> u64 {
        let at = self.layout.bands + band * self.layout.band_bytes + 8 * i;
        le_u64(&self.map, at as usize)
    }

    /// The ordinal of the `i`-th record (in sorted order) of `band`.
    fn band_ordinal(&self, band: u64, i: u64) -> u32 {
        let keys = 8 * self.layout.num_docs;
        let at = self.layout.bands + band * self.layout.band_bytes + keys + 4 * i;
        le_u32(&self.map, at as usize)
    }

    /// Appends to `out` the ordinals whose band `band` has `key`, in ordinal order, at most `limit`.
    pub fn find_band(&self, band: usize, key: BandKey, limit: usize, out: &mut Vec<u32>) {
        let n = self.layout.num_docs;
        let band = band as u64;
        let mut i = partition_point(n, |i| self.band_key(band, i) < key.0);
        let mut taken = 0;
        while i < n && taken < limit && self.band_key(band, i) == key.0 {
            out.push(self.band_ordinal(band, i));
            taken += 1;
            i += 1;
        }
    }

    /// Reads `out.len()` bytes at `at`.
    fn read_at(&self, at: u64, out: &mut [u8]) -> Result<(), IndexError> {
        use std::os::unix::fs::FileExt;
        self.file
            .read_exact_at(out, at)
            .map_err(|source| IndexError::Io {
                path: self.path.clone(),
                source,
            })
    }

    fn check_ordinal(&self, ordinal: u32) -> Result<(), IndexError> {
        if u64::from(ordinal) < self.layout.num_docs {
            Ok(())
        } else {
            Err(IndexError::Corrupt {
                path: self.path.clone(),
                what: format!("ordinal {ordinal} out of range"),
            })
        }
    }

    /// Reads the signature (8-bit values) of `ordinal` into `out`.
    pub fn signature_into(&self, ordinal: u32, out: &mut Vec<u8>) -> Result<(), IndexError> {
        self.check_ordinal(ordinal)?;
        let width = self.layout.num_perm;
        out.resize(width as usize, 0);
        self.read_at(self.layout.signatures + u64::from(ordinal) * width, out)
    }

    /// Reads the id of `ordinal`.
    pub fn id(&self, ordinal: u32) -> Result<String, IndexError> {
        self.check_ordinal(ordinal)?;
        let mut ends = [0u8; 16];
        let (start, end) = if ordinal == 0 {
            self.read_at(self.layout.id_ends, &mut ends[8..])?;
            (0, le_u64(&ends, 8))
        } else {
            self.read_at(
                self.layout.id_ends + 8 * (u64::from(ordinal) - 1),
                &mut ends,
            )?;
            (le_u64(&ends, 0), le_u64(&ends, 8))
        };
        let limit = self.layout.trailer - self.layout.id_bytes;
        if start > end || end > limit {
            return Err(IndexError::Corrupt {
                path: self.path.clone(),
                what: format!("id {ordinal} out of range"),
            });
        }
        let mut bytes = vec![0u8; (end - start) as usize];
        self.read_at(self.layout.id_bytes + start, &mut bytes)?;
        String::from_utf8(bytes).map_err(|_| IndexError::Corrupt {
            path: self.path.clone(),
            what: format!("id {ordinal} is not UTF-8"),
        })
    }

    /// Appends this segment's documents to `data` (for compaction).
    pub fn copy_into(&self, data: &mut SegmentData) -> Result<(), IndexError> {
        let n = self.layout.num_docs;
        let io = |source| IndexError::Io {
            path: self.path.clone(),
            source,
        };
        let out_of_range = |what: &str| IndexError::Corrupt {
            path: self.path.clone(),
            what: format!("{what} ordinal out of range"),
        };
        let base = data.len() as u64;
        let ordinal_of = |ordinal: u32, what: &str| -> Result<u32, IndexError> {
            if u64::from(ordinal) >= n {
                return Err(out_of_range(what));
            }
            u32::try_from(base + u64::from(ordinal)).map_err(|_| out_of_range(what))
        };
        let width = self.layout.num_perm as usize;
        let signatures = self.layout.signatures as usize;
        for ordinal in 0..n as u32 {
            let at = signatures + ordinal as usize * width;
            data.push_document(&self.id(ordinal)?, &self.map[at..at + width])
                .map_err(io)?;
        }
        for i in 0..n {
            let ordinal = le_u32(&self.map, (self.layout.hash_ordinals + 4 * i) as usize);
            data.push_text_hash(self.hash_at(i), ordinal_of(ordinal, "hash")?)
                .map_err(io)?;
        }
        for band in 0..self.layout.num_bands {
            for i in 0..n {
                let ordinal = ordinal_of(self.band_ordinal(band, i), "band")?;
                let key = BandKey(self.band_key(band, i));
                data.push_band_key(band as usize, key, ordinal)
                    .map_err(io)?;
            }
        }
        Ok(())
    }
}

/// Checks the trailer of the file of `actual_len` bytes whose `header` has been read (the file
/// positioned just after it): its end marker, and its checksum of every byte before it (read in
/// chunks, not mapped, so checking does not grow the process's memory).
fn verify_checksum(
    file: &mut File,
    header: &[u8],
    actual_len: u64,
    path: &Path,
) -> Result<(), IndexError> {
    let corrupt = |what: String| IndexError::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    let io = |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    };
    let Some(mut remaining) = actual_len.checked_sub(header.len() as u64 + 16) else {
        return Err(corrupt(format!(
            "file is {actual_len} bytes, too short for a header and a trailer"
        )));
    };
    let mut hasher = Xxh3::new();
    hasher.update(header);
    let mut buffer = vec![0u8; (1 << 20).min(remaining) as usize];
    while remaining > 0 {
        let take = remaining.min(buffer.len() as u64) as usize;
        file.read_exact(&mut buffer[..take]).map_err(io)?;
        hasher.update(&buffer[..take]);
        remaining -= take as u64;
    }
    let mut trailer = [0u8; 16];
    file.read_exact(&mut trailer).map_err(io)?;
    if &trailer[8..] != END_MAGIC {
        return Err(corrupt("bad end marker (truncated or damaged)".into()));
    }
    let stored = le_u64(&trailer, 0);
    if stored != hasher.digest() {
        return Err(corrupt(format!(
            "checksum mismatch (stored {stored:016x}, computed {:016x}): the file is damaged",
            hasher.digest()
        )));
    }
    Ok(())
}

/// The first `i` in `0..n` for which `is_before(i)` is false (`is_before` is true then false).
fn partition_point(n: u64, is_before: impl Fn(u64) -> bool) -> u64 {
    let (mut low, mut high) = (0u64, n);
    while low < high {
        let mid = low + (high - low) / 2;
        if is_before(mid) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    low
}

#[cfg(test)]
mod tests {
    use crate::index::segment::{Layout, write_segment};
    use crate::index::{IndexError, Segment, SegmentData};
    use crate::lsh::BandKey;

    fn sample() -> SegmentData {
        let mut data = SegmentData::new(4, 2);
        data.push("a", 30, &[1, 2, 3, 4], &[BandKey(7), BandKey(9)])
            .unwrap();
        data.push("bb", 10, &[5, 6, 7, 8], &[BandKey(7), BandKey(1)])
            .unwrap();
        // Band 1's keys all agree in their top 32 bits (a 32-bit key kept only those).
        data.push(
            "",
            20,
            &[9, 9, 9, 9],
            &[BandKey(u64::MAX), BandKey(0x8000_0001)],
        )
        .unwrap();
        data
    }

    #[test]
    fn written_segment_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.nds");
        let (len, _) = write_segment(&path, sample(), 42, 2).unwrap();
        let seg = Segment::open(&path).unwrap();
        assert_eq!(seg.file_len(), len);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        assert_eq!(
            (seg.len(), seg.fingerprint(), seg.shape()),
            (3, 42, (4, 2, 2))
        );
        assert_eq!(seg.find_text(20), Some(2));
        assert_eq!(seg.find_text(10), Some(1));
        assert_eq!(seg.find_text(11), None);
        let mut out = Vec::new();
        seg.find_band(0, BandKey(7), 10, &mut out);
        assert_eq!(out, vec![0, 1]);
        out.clear();
        seg.find_band(0, BandKey(7), 1, &mut out);
        assert_eq!(out, vec![0]);
        out.clear();
        seg.find_band(0, BandKey(u64::MAX), 10, &mut out);
        seg.find_band(0, BandKey(u64::MAX - 1), 10, &mut out);
        seg.find_band(1, BandKey(8), 10, &mut out);
        assert_eq!(out, vec![2]);
        out.clear();
        seg.find_band(1, BandKey(1), 10, &mut out);
        assert_eq!(out, vec![1]);
        seg.find_band(1, BandKey(0x8000_0001), 10, &mut out);
        assert_eq!(out, vec![1, 2]);
        let mut signature = Vec::new();
        seg.signature_into(1, &mut signature).unwrap();
        assert_eq!(signature, [5, 6, 7, 8]);
        assert!(seg.signature_into(3, &mut signature).is_err());
        assert_eq!(
            [seg.id(0).unwrap(), seg.id(1).unwrap(), seg.id(2).unwrap()],
            ["a", "bb", ""]
        );
        // A copy written again is the same file.
        let mut copy = SegmentData::new(4, 2);
        seg.copy_into(&mut copy).unwrap();
        let again = dir.path().join("again.nds");
        write_segment(&again, copy, 42, 2).unwrap();
        assert_eq!(
            std::fs::read(&again).unwrap(),
            std::fs::read(&path).unwrap()
        );
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.nds");
        write_segment(&path, sample(), 1, 2).unwrap();
        let good = std::fs::read(&path).unwrap();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            std::fs::write(&path, &bad).unwrap();
            assert!(
                matches!(Segment::open(&path), Err(IndexError::Corrupt { .. })),
                "flip at {at} not detected"
            );
        }
        for len in 0..good.len() {
            std::fs::write(&path, &good[..len]).unwrap();
            assert!(
                matches!(Segment::open(&path), Err(IndexError::Corrupt { .. })),
                "truncation to {len} not detected"
            );
        }
    }

    /// Found by the fuzz target `index_open`: a header whose id byte count rounds up past
    /// `u64::MAX` overflowed (a panic with overflow checks, a wrapped length without).
    #[test]
    fn issue10_fuzz_header_counts_that_overflow_when_aligned_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.nds");
        write_segment(&path, sample(), 1, 2).unwrap();
        let good = std::fs::read(&path).unwrap();
        for (at, value) in [(40, u64::MAX), (40, u64::MAX - 6), (32, u64::MAX / 4)] {
            let mut bad = good.clone();
            bad[at..at + 8].copy_from_slice(&value.to_le_bytes());
            std::fs::write(&path, &bad).unwrap();
            match Segment::open(&path) {
                Err(IndexError::Corrupt { what, .. }) => {
                    assert!(what.contains("overflow"), "{what}")
                }
                other => panic!("header {at} = {value}: {other:?}"),
            }
        }
        // The header, the ids and the trailer just past `u64::MAX`; `file_len` would overflow.
        assert_eq!(Layout::new(0, 0, 0, u64::MAX - 71), None);
        assert!(Layout::new(0, 0, 0, u64::MAX - 87).is_some());
    }

    #[test]
    fn empty_segment_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.nds");
        write_segment(&path, SegmentData::new(8, 2), 1, 4).unwrap();
        let seg = Segment::open(&path).unwrap();
        assert!(seg.is_empty());
        assert_eq!(seg.find_text(0), None);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use crate::index::IndexError;
    use crate::index::segment::{Segment, SegmentData, write_segment};
    use crate::lsh::BandKey;

    /// One document of a segment, by ordinal.
    #[derive(Debug, Clone)]
    struct Doc {
        id: String,
        text_hash: u128,
        signature: Vec<u8>,
        keys: Vec<BandKey>,
    }

    /// What one segment is written from.
    #[derive(Debug, Clone)]
    struct Spec {
        num_perm: usize,
        num_bands: usize,
        docs: Vec<Doc>,
        fingerprint: u64,
        rows_per_band: usize,
    }

    impl Spec {
        fn data(&self) -> SegmentData {
            self.data_in(SegmentData::new(self.num_perm, self.num_bands))
        }

        /// The documents pushed into `data`.
        fn data_in(&self, mut data: SegmentData) -> SegmentData {
            for doc in &self.docs {
                data.push(&doc.id, doc.text_hash, &doc.signature, &doc.keys)
                    .unwrap();
            }
            data
        }
    }

    /// Segments of up to 40 documents whose hashes and band keys often repeat (so lookups
    /// meet runs of equal entries), with any ids (empty, non-ASCII), and at the extremes.
    fn spec() -> impl Strategy<Value = Spec> {
        (1..=16usize, 0..=4usize).prop_flat_map(|(num_perm, num_bands)| {
            // Some keys agree in their top 32 bits and differ below.
            let near = [
                0xdead_beef_0000_0000,
                0xdead_beef_0000_0001,
                0xdead_beef_ffff_ffff,
            ];
            let key = prop_oneof![
                3 => (0..3u64).prop_map(BandKey),
                2 => prop::sample::select(near.to_vec()).prop_map(BandKey),
                1 => any::<u64>().prop_map(BandKey),
                1 => Just(BandKey(u64::MAX)),
            ];
            let doc = (
                crate::normalize::properties::unicode_text(8),
                prop_oneof![3 => 0..4u128, 1 => any::<u128>(), 1 => Just(u128::MAX)],
                prop::collection::vec(any::<u8>(), num_perm),
                prop::collection::vec(key, num_bands),
            )
                .prop_map(|(id, text_hash, signature, keys)| Doc {
                    id,
                    text_hash,
                    signature,
                    keys,
                });
            (
                prop::collection::vec(doc, 0..40),
                any::<u64>(),
                0..=u32::MAX as usize,
            )
                .prop_map(move |(docs, fingerprint, rows_per_band)| Spec {
                    num_perm,
                    num_bands,
                    docs,
                    fingerprint,
                    rows_per_band,
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Writing a segment and opening it gives back every field: header values, each id and
        /// signature, the first ordinal of each text hash, every band's ordinals for each key
        /// (in ordinal order, cut at the limit), and a copy equal to what was written.
        #[test]
        fn segment_write_then_read_round_trips(spec in spec()) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.nds");
            let (len, _) = write_segment(&path, spec.data(), spec.fingerprint, spec.rows_per_band).unwrap();
            let seg = Segment::open(&path).unwrap();
            let n = spec.docs.len();
            prop_assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
            prop_assert_eq!(seg.file_len(), len);
            prop_assert_eq!((seg.len(), seg.is_empty()), (n as u64, n == 0));
            prop_assert_eq!(seg.fingerprint(), spec.fingerprint);
            prop_assert_eq!(seg.shape(), (spec.num_perm, spec.num_bands, spec.rows_per_band));

            let mut signature = vec![1, 2, 3];
            for (ordinal, doc) in spec.docs.iter().enumerate() {
                prop_assert_eq!(&seg.id(ordinal as u32).unwrap(), &doc.id);
                seg.signature_into(ordinal as u32, &mut signature).unwrap();
                prop_assert_eq!(&signature, &doc.signature);
            }
            prop_assert!(seg.id(n as u32).is_err());
            prop_assert!(seg.signature_into(n as u32, &mut signature).is_err());

            let probes = spec
                .docs
                .iter()
                .flat_map(|d| [d.text_hash, d.text_hash.wrapping_add(1), d.text_hash.wrapping_sub(1)])
                .chain([0, u128::MAX]);
            for hash in probes {
                let first = spec.docs.iter().position(|d| d.text_hash == hash);
                prop_assert_eq!(seg.find_text(hash), first.map(|i| i as u32), "hash {}", hash);
            }

            for band in 0..spec.num_bands {
                let probes = spec
                    .docs
                    .iter()
                    .flat_map(|d| {
                        let key = d.keys[band].0;
                        [key, key.wrapping_add(1), key.wrapping_sub(1), key ^ (1 << 32)]
                    })
                    .chain([0, u64::from(u32::MAX), u64::MAX]);
                for key in probes {
                    let expected: Vec<u32> = (0..n as u32)
                        .filter(|&i| spec.docs[i as usize].keys[band].0 == key)
                        .collect();
                    for limit in [usize::MAX, expected.len(), expected.len().saturating_sub(1), 1, 0] {
                        let mut out = vec![u32::MAX];
                        seg.find_band(band, BandKey(key), limit, &mut out);
                        let wanted: Vec<u32> = std::iter::once(u32::MAX)
                            .chain(expected.iter().copied().take(limit))
                            .collect();
                        prop_assert_eq!(out, wanted, "band {} key {} limit {}", band, key, limit);
                    }
                }
            }

            // A copy written again is the same file, and so is the segment gathered in a space
            // with no memory, whose every table spills.
            let written = std::fs::read(&path).unwrap();
            let mut copy = SegmentData::new(spec.num_perm, spec.num_bands);
            seg.copy_into(&mut copy).unwrap();
            let again = dir.path().join("again.nds");
            write_segment(&again, copy, spec.fingerprint, spec.rows_per_band).unwrap();
            prop_assert_eq!(&std::fs::read(&again).unwrap(), &written);
            let space = std::sync::Arc::new(crate::spill::SpillSpace::new(dir.path(), 0));
            let spilled = spec.data_in(SegmentData::in_space(spec.num_perm, spec.num_bands, space, 0));
            let tight = dir.path().join("tight.nds");
            write_segment(&tight, spilled, spec.fingerprint, spec.rows_per_band).unwrap();
            prop_assert_eq!(&std::fs::read(&tight).unwrap(), &written);
        }
    }

    proptest! {
        // Each case writes and syncs a segment; the exhaustive test above covers one in full.
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Any flipped bits in any byte, and any truncation, of any segment are reported as
        /// corruption, never opened (several of each per segment, each alone).
        #[test]
        fn any_damage_to_a_segment_is_detected(
            spec in spec(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..8),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 1..4),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.nds");
            write_segment(&path, spec.data(), spec.fingerprint, spec.rows_per_band).unwrap();
            let good = std::fs::read(&path).unwrap();
            for (at, mask) in flips {
                let mut bad = good.clone();
                let at = at.index(good.len());
                bad[at] ^= mask;
                std::fs::write(&path, &bad).unwrap();
                prop_assert!(
                    matches!(Segment::open(&path), Err(IndexError::Corrupt { .. })),
                    "flip of {:#04x} at {} of {} not detected", mask, at, good.len()
                );
            }
            for cut in cuts {
                let cut = cut.index(good.len());
                std::fs::write(&path, &good[..cut]).unwrap();
                prop_assert!(
                    matches!(Segment::open(&path), Err(IndexError::Corrupt { .. })),
                    "truncation to {} of {} not detected", cut, good.len()
                );
            }
        }
    }
}
