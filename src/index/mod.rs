//! A persistent, appendable index of documents already seen: dedup new data against it without
//! reading the old data again.
//!
//! An index is a directory:
//! - `MANIFEST`: one JSON line (format name and version, the [`IndexParams`] every signature and
//!   band key depends on, and the list of segments with their length and checksum), then a line
//!   `xxh3:<hex>` checksumming the first. It is replaced atomically (temporary file, fsync,
//!   rename, directory fsync): that rename is the commit point of every change.
//! - `seg-NNNNNN.nds`: immutable [`segment`] files, one per `build`, `add` or `dedup --update`.
//! - `LOCK`: taken (advisory `flock`) by a writer, so two writers never interleave.
//!
//! A writer killed at any moment leaves either the old manifest (and perhaps an orphaned segment
//! file, removed by the next writer) or the new one: the index holds the old state or the new,
//! never a mix. Opening checks every checksum, so a flipped byte or a truncated file is reported,
//! never read as data.
//!
//! Documents are addressed by [`IndexDoc`] (segment, ordinal), which orders them by when they were
//! added. Lookups (text hash, band key, signature, id) go through memory maps and touch only the
//! pages they search.

pub mod segment;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::lsh::BandKey;
use crate::normalize::NormalizeOptions;
use crate::shingle::ShingleKind;
use crate::spill::SpillSpace;
pub use segment::{Segment, SegmentData};

/// Name and version of the index directory format (the manifest); segments carry their own.
/// Version 2: 64-bit band keys (`IndexParams::band_key_bits` 64, segment version 2). An index of
/// another version is refused ([`IndexError::OldFormat`], [`IndexError::NewerFormat`]).
pub const FORMAT_NAME: &str = "neardup-index";
pub const FORMAT_VERSION: u32 = 2;
const MANIFEST: &str = "MANIFEST";
const LOCK: &str = "LOCK";

pub use crate::error::IndexError;

/// Every setting a signature or band key depends on. Two runs can share an index only when these
/// are equal; `threshold` is recorded for information (it chose the bands × rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexParams {
    pub normalize: NormalizeOptions,
    pub shingle: ShingleKind,
    pub num_perm: usize,
    pub seed: u64,
    pub num_bands: usize,
    pub rows_per_band: usize,
    /// Bits kept per signature value.
    pub signature_bits: u32,
    /// Bits per band key (64 since format version 2).
    pub band_key_bits: u32,
    pub threshold: f64,
    /// Boilerplate stripped before shingling (`UNIT:MIN_DOCS`), if any.
    #[serde(default)]
    pub boilerplate: Option<String>,
}

impl IndexParams {
    /// A hash of every field but `threshold`, stored in each segment header.
    pub fn fingerprint(&self) -> u64 {
        let mut compared = self.clone();
        compared.threshold = 0.0;
        xxh3_64(
            serde_json::to_string(&compared)
                .expect("parameters serialize")
                .as_bytes(),
        )
    }

    /// The fields that differ from `other`, described for a person; empty when compatible.
    pub fn differences(&self, other: &IndexParams) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |name: &str, differs: bool, theirs: String, ours: String| {
            if differs {
                out.push(format!(
                    "{name} is {theirs} in the index, {ours} in this run"
                ));
            }
        };
        differ(
            "normalization",
            self.normalize != other.normalize,
            format!("{:?}", other.normalize),
            format!("{:?}", self.normalize),
        );
        differ(
            "shingling",
            self.shingle != other.shingle,
            format!("{:?}", other.shingle),
            format!("{:?}", self.shingle),
        );
        differ(
            "num_perm",
            self.num_perm != other.num_perm,
            other.num_perm.to_string(),
            self.num_perm.to_string(),
        );
        differ(
            "seed",
            self.seed != other.seed,
            other.seed.to_string(),
            self.seed.to_string(),
        );
        differ(
            "bands × rows",
            (self.num_bands, self.rows_per_band) != (other.num_bands, other.rows_per_band),
            format!(
                "{} × {} (chosen for threshold {})",
                other.num_bands, other.rows_per_band, other.threshold
            ),
            format!("{} × {}", self.num_bands, self.rows_per_band),
        );
        differ(
            "boilerplate stripping",
            self.boilerplate != other.boilerplate,
            format!("{:?}", other.boilerplate),
            format!("{:?}", self.boilerplate),
        );
        differ(
            "signature bits",
            self.signature_bits != other.signature_bits,
            other.signature_bits.to_string(),
            self.signature_bits.to_string(),
        );
        differ(
            "band key bits",
            self.band_key_bits != other.band_key_bits,
            other.band_key_bits.to_string(),
            self.band_key_bits.to_string(),
        );
        out
    }
}

/// One segment as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentEntry {
    pub file: String,
    pub docs: u64,
    pub bytes: u64,
    pub checksum: String,
}

/// The manifest: what the index holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub params: IndexParams,
    /// Counts every committed change; names the next segment.
    pub generation: u64,
    pub segments: Vec<SegmentEntry>,
}

/// The fields of a manifest that say how to read the rest.
#[derive(Deserialize)]
struct ManifestHead {
    format: String,
    format_version: u32,
}

/// A document in an index: its segment (in order of addition) and its ordinal there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexDoc {
    pub segment: u32,
    pub ordinal: u32,
}

/// An open index: its manifest and its mapped, checked segments.
#[derive(Debug)]
pub struct Index {
    dir: PathBuf,
    manifest: Manifest,
    segments: Vec<Segment>,
}

/// Held while writing; released on drop.
struct WriteLock {
    _file: File,
}

impl Index {
    /// Creates an empty index in `dir` (created if needed; it must not hold an index already).
    pub fn create(dir: &Path, params: IndexParams) -> Result<Index, IndexError> {
        let io = |source| IndexError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let _lock = lock(dir)?;
        if dir.join(MANIFEST).exists() {
            return Err(IndexError::Exists {
                path: dir.to_path_buf(),
            });
        }
        let manifest = Manifest {
            format: FORMAT_NAME.to_string(),
            format_version: FORMAT_VERSION,
            params,
            generation: 0,
            segments: Vec::new(),
        };
        write_manifest(dir, &manifest)?;
        Ok(Index {
            dir: dir.to_path_buf(),
            manifest,
            segments: Vec::new(),
        })
    }

    /// Creates the index in `dir` holding `data` as its first segment, atomically: the index is
    /// built in a temporary directory beside `dir` and renamed into place once complete, so a
    /// build that fails or is killed leaves no index (the same build can simply run again). `dir`
    /// must not exist yet, or be an empty directory.
    pub fn build(
        dir: &Path,
        params: IndexParams,
        data: &mut SegmentData,
    ) -> Result<Index, IndexError> {
        Self::check_buildable(dir)?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IndexError::Io { path, source }
        };
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Held until just before the rename: a stale-file sweep by another process leaves the
        // staging directory alone while this one lives.
        let (staging, registered, owner) =
            crate::output::temporary_dir_in(&parent, "index").map_err(io(&parent))?;
        let owner_path = staging.path().join(crate::output::OWNER_LOCK);
        let mut index = Index::create(staging.path(), params)?;
        index.append(data)?;
        drop(index);
        std::fs::set_permissions(
            staging.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777 & !current_umask_mask()),
        )
        .map_err(io(staging.path()))?;
        // Re-check just before committing: another build may have finished meanwhile.
        Self::check_buildable(dir)?;
        std::fs::remove_file(&owner_path).map_err(io(&owner_path))?;
        drop(owner);
        registered
            .commit(|| std::fs::rename(staging.path(), dir))
            .and_then(|renamed| renamed)
            .map_err(io(dir))?;
        // The directory is in place: nothing to clean up any more.
        let _ = staging.keep();
        File::open(&parent)
            .and_then(|d| d.sync_all())
            .map_err(io(&parent))?;
        Index::open(dir)
    }

    /// `dir` can receive a new index: it does not exist, or is an empty directory.
    pub fn can_build(dir: &Path) -> Result<(), IndexError> {
        Self::check_buildable(dir)
    }

    fn check_buildable(dir: &Path) -> Result<(), IndexError> {
        if dir.join(MANIFEST).exists() {
            return Err(IndexError::Exists {
                path: dir.to_path_buf(),
            });
        }
        match std::fs::read_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(IndexError::Io {
                path: dir.to_path_buf(),
                source,
            }),
            Ok(mut entries) => match entries.next() {
                None => Ok(()),
                Some(_) => Err(IndexError::NotEmpty {
                    path: dir.to_path_buf(),
                }),
            },
        }
    }

    /// Opens the index in `dir`, checking the manifest and every segment's checksum.
    pub fn open(dir: &Path) -> Result<Index, IndexError> {
        let manifest = read_manifest(dir)?;
        let fingerprint = manifest.params.fingerprint();
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for entry in &manifest.segments {
            let path = dir.join(&entry.file);
            let segment = Segment::open(&path)?;
            let corrupt = |what: String| IndexError::Corrupt {
                path: path.clone(),
                what,
            };
            if segment.fingerprint() != fingerprint {
                return Err(corrupt(
                    "built with parameters other than the manifest's".into(),
                ));
            }
            let (num_perm, num_bands, rows) = segment.shape();
            if (num_perm, num_bands, rows)
                != (
                    manifest.params.num_perm,
                    manifest.params.num_bands,
                    manifest.params.rows_per_band,
                )
            {
                return Err(corrupt("shape differs from the manifest's".into()));
            }
            if segment.len() != entry.docs || segment.file_len() != entry.bytes {
                return Err(corrupt(format!(
                    "holds {} documents in {} bytes; the manifest says {} in {}",
                    segment.len(),
                    segment.file_len(),
                    entry.docs,
                    entry.bytes
                )));
            }
            segments.push(segment);
        }
        Ok(Index {
            dir: dir.to_path_buf(),
            manifest,
            segments,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn params(&self) -> &IndexParams {
        &self.manifest.params
    }

    pub fn num_docs(&self) -> u64 {
        self.segments.iter().map(Segment::len).sum()
    }

    /// Bytes of all segment files.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(Segment::file_len).sum()
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Refuses a run whose parameters differ from the index's.
    pub fn check_params(&self, run: &IndexParams) -> Result<(), IndexError> {
        let differences = run.differences(&self.manifest.params);
        if differences.is_empty() {
            Ok(())
        } else {
            Err(IndexError::Mismatch {
                path: self.dir.clone(),
                differences: differences.join("; "),
                num_bands: self.manifest.params.num_bands,
                rows_per_band: self.manifest.params.rows_per_band,
            })
        }
    }

    /// The earliest indexed document with this normalized-text hash.
    pub fn find_text(&self, hash: u128) -> Option<IndexDoc> {
        self.segments.iter().enumerate().find_map(|(s, seg)| {
            seg.find_text(hash).map(|ordinal| IndexDoc {
                segment: s as u32,
                ordinal,
            })
        })
    }

    /// Appends the indexed documents whose band `band` has `key`, earliest first, at most `limit`.
    pub fn find_band(&self, band: usize, key: BandKey, limit: usize, out: &mut Vec<IndexDoc>) {
        let mut ordinals = Vec::new();
        for (s, seg) in self.segments.iter().enumerate() {
            if out.len() >= limit {
                break;
            }
            ordinals.clear();
            seg.find_band(band, key, limit - out.len(), &mut ordinals);
            out.extend(ordinals.iter().map(|&ordinal| IndexDoc {
                segment: s as u32,
                ordinal,
            }));
        }
    }

    /// Reads the signature of `doc` into `out`.
    pub fn signature_into(&self, doc: IndexDoc, out: &mut Vec<u8>) -> Result<(), IndexError> {
        self.segments[doc.segment as usize].signature_into(doc.ordinal, out)
    }

    pub fn id(&self, doc: IndexDoc) -> Result<String, IndexError> {
        self.segments[doc.segment as usize].id(doc.ordinal)
    }

    /// Writes `data` as a new segment and commits it. An empty `data` commits nothing. The
    /// documents are taken out of `data` once the write begins (they may be on disk, read once):
    /// after an error before it (the index locked by another writer, too large) `data` is as it
    /// was, and the call can be made again.
    pub fn append(&mut self, data: &mut SegmentData) -> Result<(), IndexError> {
        if data.is_empty() {
            return Ok(());
        }
        let _lock = lock(&self.dir)?;
        // Another writer may have committed since this index was opened.
        let mut manifest = read_manifest(&self.dir)?;
        remove_orphans(&self.dir, &manifest)?;
        if u32::try_from(data.len()).is_err() || u32::try_from(manifest.segments.len() + 1).is_err()
        {
            return Err(IndexError::TooLarge {
                path: self.dir.clone(),
            });
        }
        manifest.generation += 1;
        let entry = self.write_segment(&manifest, data.take())?;
        manifest.segments.push(entry);
        write_manifest(&self.dir, &manifest)?;
        *self = Index::open(&self.dir)?;
        Ok(())
    }

    /// Merges all segments into one and commits; the old segment files are removed after the
    /// commit. The merged documents are gathered within [`COMPACT_MEMORY`] bytes, beyond which
    /// they spill to a temporary directory beside the index.
    pub fn compact(&mut self) -> Result<(), IndexError> {
        let _lock = lock(&self.dir)?;
        let current = Index::open(&self.dir)?;
        let mut manifest = current.manifest.clone();
        if manifest.segments.len() < 2 {
            return Ok(());
        }
        let params = &manifest.params;
        let parent = match self.dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let space = std::sync::Arc::new(SpillSpace::new(parent, COMPACT_MEMORY / 2));
        let mut data =
            SegmentData::in_space(params.num_perm, params.num_bands, space, COMPACT_MEMORY / 2);
        for segment in &current.segments {
            segment.copy_into(&mut data)?;
        }
        if u32::try_from(data.len()).is_err() {
            return Err(IndexError::TooLarge {
                path: self.dir.clone(),
            });
        }
        manifest.generation += 1;
        let entry = self.write_segment(&manifest, data)?;
        manifest.segments = vec![entry];
        write_manifest(&self.dir, &manifest)?;
        drop(current);
        remove_orphans(&self.dir, &manifest)?;
        *self = Index::open(&self.dir)?;
        Ok(())
    }

    fn write_segment(
        &self,
        manifest: &Manifest,
        data: SegmentData,
    ) -> Result<SegmentEntry, IndexError> {
        let file = format!("seg-{:06}.nds", manifest.generation);
        let docs = data.len() as u64;
        let (bytes, checksum) = segment::write_segment(
            &self.dir.join(&file),
            data,
            manifest.params.fingerprint(),
            manifest.params.rows_per_band,
        )?;
        Ok(SegmentEntry {
            file,
            docs,
            bytes,
            checksum: format!("{checksum:016x}"),
        })
    }
}

/// Memory [`Index::compact`] gathers the merged segment in before it spills.
pub const COMPACT_MEMORY: u64 = 256 << 20;

/// The permission bits a new directory gets under this process's umask, as a mask of what is
/// removed (the umask is read from `/proc`, never changed; 022 when it cannot be read).
fn current_umask_mask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// The refusal of an intact file of format version `found` by a build that reads `supported`:
/// an older file must be rebuilt, a newer one needs a newer neardup. Neither is read as data.
fn other_version(path: &Path, found: u32, supported: u32) -> IndexError {
    let path = path.to_path_buf();
    if found < supported {
        IndexError::OldFormat {
            path,
            found,
            supported,
        }
    } else {
        IndexError::NewerFormat {
            path,
            found,
            supported,
        }
    }
}

fn lock(dir: &Path) -> Result<WriteLock, IndexError> {
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| IndexError::Io {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(WriteLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(IndexError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(IndexError::Io { path, source }),
    }
}

fn read_manifest(dir: &Path) -> Result<Manifest, IndexError> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(IndexError::Missing {
                path: dir.to_path_buf(),
            });
        }
        Err(source) => return Err(IndexError::Io { path, source }),
    };
    let corrupt = |what: &str| IndexError::Corrupt {
        path: path.clone(),
        what: what.to_string(),
    };
    let text = std::str::from_utf8(&text).map_err(|_| corrupt("not UTF-8"))?;
    let (body, trailer) = text
        .strip_suffix('\n')
        .and_then(|t| t.rsplit_once('\n'))
        .ok_or_else(|| corrupt("truncated (no checksum line)"))?;
    let stored = trailer
        .strip_prefix("xxh3:")
        .ok_or_else(|| corrupt("no checksum line"))?;
    if stored != format!("{:016x}", xxh3_64(body.as_bytes())) {
        return Err(corrupt("checksum mismatch: the file is damaged"));
    }
    // Name and version first: another version's manifest is refused as such, whatever else it
    // holds (an intact one: the checksum has passed).
    let head: ManifestHead =
        serde_json::from_str(body).map_err(|e| corrupt(&format!("bad JSON: {e}")))?;
    if head.format != FORMAT_NAME {
        return Err(corrupt("not a neardup index manifest"));
    }
    if head.format_version != FORMAT_VERSION {
        return Err(other_version(&path, head.format_version, FORMAT_VERSION));
    }
    let manifest: Manifest =
        serde_json::from_str(body).map_err(|e| corrupt(&format!("bad JSON: {e}")))?;
    // The shape must be one a run could have: a damaged but re-checksummed manifest must not make
    // the index allocate per band or per permutation what its numbers say.
    let params = &manifest.params;
    if params.num_perm > crate::minhash::MAX_NUM_PERM
        || crate::lsh::LshParams::new(params.num_bands, params.rows_per_band, params.num_perm)
            .is_err()
    {
        return Err(corrupt(&format!(
            "impossible shape: {} bands × {} rows of {} permutations",
            params.num_bands, params.rows_per_band, params.num_perm
        )));
    }
    // Segment files live in the index directory, under the names the index gives them: a name
    // reaching elsewhere (`../x`, an absolute path) is damage, never a file to read.
    for segment in &manifest.segments {
        let name = &segment.file;
        let ours = name
            .strip_prefix("seg-")
            .and_then(|n| n.strip_suffix(".nds"));
        if !ours.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
            return Err(corrupt(&format!(
                "segment name {name:?} is not an index segment's"
            )));
        }
    }
    Ok(manifest)
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), IndexError> {
    let path = dir.join(MANIFEST);
    let io = |source| IndexError::Io {
        path: path.clone(),
        source,
    };
    let body = serde_json::to_string(manifest).expect("manifest serializes");
    let text = format!("{body}\nxxh3:{:016x}\n", xxh3_64(body.as_bytes()));
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-manifest-")
        // Like any new file: 0666 less the umask, not tempfile's private 0600.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| io(crate::output::without_temp_name(e)))?;
    // Removed by a signal handler should the write be interrupted.
    let _registered = crate::output::Registered::new(temp.path().to_path_buf());
    temp.write_all(text.as_bytes()).map_err(io)?;
    temp.as_file().sync_all().map_err(io)?;
    temp.persist(&path).map_err(|e| io(e.error))?;
    // Make the rename itself durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| IndexError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// Removes segment and temporary files the manifest does not list (left by a killed writer or a
/// finished compaction). Called with the write lock held.
fn remove_orphans(dir: &Path, manifest: &Manifest) -> Result<(), IndexError> {
    let io = |source| IndexError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        let Some(name) = name.to_str() else { continue };
        let listed = manifest.segments.iter().any(|s| s.file == name);
        let ours = name.starts_with(".tmp-") || (name.starts_with("seg-") && !listed);
        if ours {
            std::fs::remove_file(dir.join(name)).map_err(io)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{SegmentEntry, read_manifest, write_manifest};
    use crate::index::segment::SEGMENT_VERSION;
    use crate::index::{
        FORMAT_VERSION, Index, IndexError, IndexParams, MANIFEST, Segment, SegmentData,
    };
    use crate::lsh::BandKey;
    use crate::normalize::NormalizeOptions;
    use crate::shingle::ShingleKind;

    pub(crate) fn params() -> IndexParams {
        IndexParams {
            normalize: NormalizeOptions::default(),
            shingle: ShingleKind::Words(5),
            num_perm: 4,
            seed: 1,
            num_bands: 2,
            rows_per_band: 2,
            signature_bits: 8,
            band_key_bits: 64,
            threshold: 0.8,
            boilerplate: None,
        }
    }

    fn data(ids: &[&str], first_hash: u128) -> SegmentData {
        let mut data = SegmentData::new(4, 2);
        for (i, id) in ids.iter().enumerate() {
            let h = first_hash + i as u128;
            data.push(id, h, &[i as u8; 4], &[BandKey(h as u64), BandKey(1)])
                .unwrap();
        }
        data
    }

    #[test]
    fn create_append_open_compact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idx");
        let mut index = Index::create(&path, params()).unwrap();
        assert!(matches!(
            Index::create(&path, params()),
            Err(IndexError::Exists { .. })
        ));
        index.append(&mut data(&["a", "b"], 100)).unwrap();
        index.append(&mut data(&["c"], 200)).unwrap();
        let index = Index::open(&path).unwrap();
        assert_eq!((index.num_docs(), index.segments().len()), (3, 2));
        let c = index.find_text(200).unwrap();
        assert_eq!(index.id(c).unwrap(), "c");
        let mut found = Vec::new();
        index.find_band(1, BandKey(1), 10, &mut found);
        let ids: Vec<String> = found.iter().map(|&d| index.id(d).unwrap()).collect();
        assert_eq!(ids, ["a", "b", "c"]);

        let mut index = Index::open(&path).unwrap();
        index.compact().unwrap();
        assert_eq!((index.num_docs(), index.segments().len()), (3, 1));
        let mut found = Vec::new();
        index.find_band(1, BandKey(1), 10, &mut found);
        let ids: Vec<String> = found.iter().map(|&d| index.id(d).unwrap()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(index.id(index.find_text(101).unwrap()).unwrap(), "b");
        let files: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("seg-"))
            .collect();
        assert_eq!(files.len(), 1, "old segments removed: {files:?}");
    }

    /// Found by the `index_open` fuzz target: a manifest re-checksummed with 10¹⁰ bands made
    /// compaction allocate a key list per band before any segment was read.
    #[test]
    fn issue11_impossible_shape_is_refused_as_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idx");
        Index::create(&path, params()).unwrap();
        let good = read_manifest(&path).unwrap();
        for (num_bands, rows_per_band, num_perm) in [
            (10_000_000_000, 1, 4),
            (0, 2, 4),
            (3, 2, 4),
            (1, 1, 1 << 40),
        ] {
            let mut manifest = good.clone();
            manifest.params.num_bands = num_bands;
            manifest.params.rows_per_band = rows_per_band;
            manifest.params.num_perm = num_perm;
            write_manifest(&path, &manifest).unwrap();
            let err = Index::open(&path).expect_err("refused");
            assert!(
                err.to_string().contains("impossible shape"),
                "{num_bands} × {rows_per_band} of {num_perm}: {err}"
            );
        }
    }

    #[test]
    fn other_parameters_are_refused_with_the_difference_named() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::create(dir.path(), params()).unwrap();
        let mut other = params();
        other.num_perm = 8;
        let message = index.check_params(&other).unwrap_err().to_string();
        assert!(
            message.contains("num_perm is 4 in the index, 8 in this run"),
            "{message}"
        );
        let mut threshold_only = params();
        threshold_only.threshold = 0.5;
        index.check_params(&threshold_only).unwrap();
    }

    #[test]
    fn damaged_manifest_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        Index::create(dir.path(), params()).unwrap();
        let path = dir.path().join(MANIFEST);
        let good = std::fs::read(&path).unwrap();
        let mut bad = good.clone();
        bad[20] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(matches!(
            Index::open(dir.path()),
            Err(IndexError::Corrupt { .. })
        ));
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        assert!(matches!(
            Index::open(dir.path()),
            Err(IndexError::Corrupt { .. })
        ));
        assert!(matches!(
            Index::open(&dir.path().join("nothing")),
            Err(IndexError::Missing { .. })
        ));
    }

    /// The index of `params()` holding `data(["a", "b"], 100)`, in `dir`.
    fn one_segment(dir: &std::path::Path) -> std::path::PathBuf {
        let mut index = Index::create(dir, params()).unwrap();
        index.append(&mut data(&["a", "b"], 100)).unwrap();
        dir.join(&index.manifest().segments[0].file)
    }

    /// Sets the format version of the segment at `path` to `version`, keeping it intact (its
    /// checksum recomputed) or not.
    fn set_segment_version(path: &std::path::Path, version: u32, intact: bool) {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        if intact {
            let end = bytes.len() - 16;
            let checksum = xxhash_rust::xxh3::xxh3_64(&bytes[..end]);
            bytes[end..end + 8].copy_from_slice(&checksum.to_le_bytes());
        }
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn issue11_an_index_of_the_old_format_is_refused_as_such() {
        // A real version 1 index (32-bit band keys), written by neardup before the change.
        let fixture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/index-format-1");
        match Index::open(&fixture) {
            Err(IndexError::OldFormat {
                path,
                found: 1,
                supported: FORMAT_VERSION,
            }) => assert_eq!(path, fixture.join(MANIFEST)),
            other => panic!("{other:?}"),
        }
        let old_segment = fixture.join("seg-000001.nds");
        assert!(matches!(
            Segment::open(&old_segment),
            Err(IndexError::OldFormat {
                found: 1,
                supported: SEGMENT_VERSION,
                ..
            })
        ));
        let message = Index::open(&fixture).unwrap_err().to_string();
        assert!(
            message.contains("format version 1 by an older neardup")
                && message.contains("must be rebuilt"),
            "{message}"
        );

        // An old manifest written now (the same fields, version 1, 32-bit keys).
        let dir = tempfile::tempdir().unwrap();
        one_segment(dir.path());
        let current = read_manifest(dir.path()).unwrap();
        let mut old = current.clone();
        old.format_version = 1;
        old.params.band_key_bits = 32;
        write_manifest(dir.path(), &old).unwrap();
        assert!(matches!(
            Index::open(dir.path()),
            Err(IndexError::OldFormat { found: 1, .. })
        ));
        let mut newer = current.clone();
        newer.format_version = FORMAT_VERSION + 1;
        write_manifest(dir.path(), &newer).unwrap();
        assert!(matches!(
            Index::open(dir.path()),
            Err(IndexError::NewerFormat { .. })
        ));
    }

    #[test]
    fn issue11_a_segment_of_another_version_is_refused_and_a_damaged_version_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let segment = one_segment(dir.path());
        let good = std::fs::read(&segment).unwrap();
        set_segment_version(&segment, 1, true);
        match Index::open(dir.path()) {
            Err(IndexError::OldFormat {
                path,
                found: 1,
                supported: SEGMENT_VERSION,
            }) => assert_eq!(path, segment),
            other => panic!("{other:?}"),
        }
        set_segment_version(&segment, SEGMENT_VERSION + 1, true);
        assert!(matches!(
            Index::open(dir.path()),
            Err(IndexError::NewerFormat { .. })
        ));
        // A version field changed by damage fails the checksum: corrupt, not another version.
        std::fs::write(&segment, &good).unwrap();
        set_segment_version(&segment, 1, false);
        assert!(matches!(
            Index::open(dir.path()),
            Err(IndexError::Corrupt { .. })
        ));
        std::fs::write(&segment, &good).unwrap();
        assert_eq!(Index::open(dir.path()).unwrap().num_docs(), 2);
    }

    #[test]
    fn orphans_of_a_killed_writer_are_ignored_then_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::create(dir.path(), params()).unwrap();
        std::fs::write(dir.path().join("seg-000009.nds"), b"half").unwrap();
        std::fs::write(dir.path().join(".tmp-segment-x"), b"half").unwrap();
        assert_eq!(Index::open(dir.path()).unwrap().num_docs(), 0);
        index.append(&mut data(&["a"], 1)).unwrap();
        assert!(!dir.path().join("seg-000009.nds").exists());
        assert!(!dir.path().join(".tmp-segment-x").exists());
        assert_eq!(index.num_docs(), 1);
    }

    #[test]
    fn issue10_fuzz_a_segment_name_reaching_outside_the_index_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let index_dir = dir.path().join("idx");
        Index::create(&index_dir, params()).unwrap();
        let good = read_manifest(&index_dir).unwrap();
        for name in ["../evil.nds", "/etc/passwd", "seg-.nds", "seg-12/../1.nds"] {
            let mut manifest = good.clone();
            manifest.segments = vec![SegmentEntry {
                file: name.to_string(),
                docs: 0,
                bytes: 0,
                checksum: String::new(),
            }];
            write_manifest(&index_dir, &manifest).unwrap();
            assert!(
                matches!(Index::open(&index_dir), Err(IndexError::Corrupt { .. })),
                "{name}"
            );
        }
    }
}
