//! Resumable runs: a work directory keeps what the first pass finished, so that the same command
//! started again after a crash or a `kill -9` goes on from there.
//!
//! A [`WorkDir`] holds a `MANIFEST` (JSON: the [`Fingerprint`] of the run's settings and inputs,
//! and the last [`Checkpoint`]) and the files of the run's named tables ([`crate::spill`]): the
//! document states, ids and scores, the signatures, the read-back locations, the text hashes, the
//! sorted runs of band records, of first copies and of id hashes. The first pass saves a
//! checkpoint every sixteenth of its input (at most every MiB) and when it ends: every table
//! writes what it holds in memory and syncs, then the manifest is replaced (written beside, synced,
//! renamed). Tables only ever append, so a checkpoint stays valid whatever a killed run wrote
//! after it.
//!
//! A run with the same fingerprint resumes from the checkpoint: it reopens the tables, reports the
//! rejections the checkpoint logged, frames the inputs again and skips the records the checkpoint
//! covers (framing them again counts their inputs' byte-order marks again), then goes on as usual. Its outputs are the same bytes. A run with another fingerprint
//! (a setting or an input changed, or a file the manifest lists is gone) clears the directory and
//! starts over, saying why. Outputs still appear only when the whole run is complete; after that
//! the caller clears the directory, manifest first, so that a run killed while clearing leaves
//! nothing a later run would resume from.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::Dedup;
use super::docs::PersistedDocs;
use super::exact::PersistedExact;
use super::fingerprint::{Fingerprint, Setting};
use crate::boilerplate::UnitCounts;
use crate::error::Error;
use crate::lsh::PersistedBands;
use crate::read::{Input, InputSet};
use crate::spill::Persisted;

/// The manifest's name in a work directory.
const MANIFEST: &str = "MANIFEST";
/// The next manifest, while it is written.
const MANIFEST_NEW: &str = "MANIFEST.new";
/// The boilerplate counts of a run that strips it.
const UNIT_COUNTS: &str = "unit-counts";
/// The lock held by the run using the directory.
const LOCK: &str = "LOCK";
/// What a work directory's manifest says it is.
const FORMAT: &str = "neardup-work-dir";
const VERSION: u32 = 1;

/// What the first pass had finished at a checkpoint.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Checkpoint {
    /// Records (frames) analysed.
    pub docs: u64,
    /// Slots given out.
    pub slots: u64,
    pub bytes_read: u64,
    pub stripped: (u64, u64),
    pub all_located: bool,
    pub docs_table: PersistedDocs,
    pub signatures: Persisted,
    pub locations: Persisted,
    pub text_hashes: Option<Persisted>,
    /// Per-slot set sizes (containment only).
    pub sizes: Option<Persisted>,
    pub exact: PersistedExact,
    pub bands: PersistedBands,
    /// Bytes of the `rejections` log the checkpoint covers.
    pub rejections: u64,
    /// Whether the first pass had read every input.
    pub complete: bool,
}

/// The manifest of a work directory.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    /// The run's fingerprint, hex-encoded.
    fingerprint: String,
    /// Each input's modification time (nanoseconds since the epoch, or why not known).
    modified: Vec<String>,
    /// Whether the boilerplate counts (of a run that strips it) are saved in `unit-counts`.
    #[serde(default)]
    units_counted: bool,
    checkpoint: Option<Checkpoint>,
    /// The files the saved state is in (every file of the directory when it was saved but the
    /// lock and the manifest): a resumed run checks they are all there.
    #[serde(default)]
    files: Vec<String>,
}

/// A run's work directory, locked while the value lives.
#[derive(Debug)]
pub struct WorkDir {
    dir: PathBuf,
    fingerprint: Fingerprint,
    modified: Vec<String>,
    saved: Option<Checkpoint>,
    /// Whether the boilerplate counts are saved (by this run or the one it resumes).
    units_counted: std::cell::Cell<bool>,
    /// Why an earlier run's state there was not resumed.
    restart: Option<String>,
    _lock: File,
}

impl WorkDir {
    /// Opens (creating it if needed) `dir` for a run of `dedup` over `inputs`. The directory must
    /// be empty or a neardup work directory; it is locked until the value is dropped. What an
    /// earlier run saved there is kept when its fingerprint is this run's; otherwise the
    /// directory is cleared and [`WorkDir::restart_reason`] says why.
    pub fn open(dir: &Path, dedup: &Dedup, inputs: &InputSet) -> Result<WorkDir, Error> {
        let io = |source: std::io::Error| Error::WorkDir {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let is_ours = dir.join(MANIFEST).exists() || dir.join(LOCK).exists();
        if !is_ours && std::fs::read_dir(dir).map_err(io)?.next().is_some() {
            return Err(io(std::io::Error::other(
                "it is not empty and is not a neardup work directory",
            )));
        }
        let lock = File::create(dir.join(LOCK)).map_err(io)?;
        lock.try_lock()
            .map_err(|_| io(std::io::Error::other("another neardup run is using it")))?;
        let mut work = WorkDir {
            dir: dir.to_path_buf(),
            fingerprint: fingerprint(dedup, inputs),
            modified: modified(inputs),
            saved: None,
            units_counted: std::cell::Cell::new(false),
            restart: None,
            _lock: lock,
        };
        match work.read_manifest() {
            Ok(None) => {}
            Ok(Some(manifest)) => {
                let there = hex_decode(&manifest.fingerprint).and_then(|b| Fingerprint::decode(&b));
                let difference = match &there {
                    Some(there) => there.difference(&work.fingerprint),
                    None => Some("its fingerprint cannot be read".to_string()),
                }
                .or_else(|| work.modified_since(&manifest.modified, inputs))
                .or_else(|| work.missing_file(&manifest.files));
                match difference {
                    None => {
                        work.saved = manifest.checkpoint;
                        work.units_counted.set(manifest.units_counted);
                    }
                    Some(difference) => work.restart = Some(difference),
                }
            }
            Err(reason) => work.restart = Some(reason),
        }
        // Starting over, or starting with no manifest (a run killed before its first checkpoint
        // or while clearing the directory): nothing there is of use.
        if work.restart.is_some() || work.saved.is_none() && !work.units_counted.get() {
            work.remove_files().map_err(io)?;
        }
        Ok(work)
    }

    /// The first of the saved state's `files` the directory lacks, as a phrase.
    fn missing_file(&self, files: &[String]) -> Option<String> {
        let missing = files.iter().find(|name| !self.dir.join(name).is_file())?;
        Some(format!("its saved table {missing} is missing"))
    }

    /// How the inputs' modification times differ from the saved run's, as a phrase.
    fn modified_since(&self, saved: &[String], inputs: &InputSet) -> Option<String> {
        let changed = self
            .modified
            .iter()
            .zip(saved)
            .position(|(now, then)| now != then)?;
        Some(format!(
            "input {} was modified since (same size and ends)",
            inputs.inputs()[changed].display_name()
        ))
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Why the state an earlier run left was not resumed (the run starts over), if it was not.
    pub fn restart_reason(&self) -> Option<&str> {
        self.restart.as_deref()
    }

    /// Records the checkpoint covers, when the run resumes from one.
    pub fn resumes_after(&self) -> Option<u64> {
        self.saved.as_ref().map(|c| c.docs)
    }

    pub(super) fn saved(&self) -> Option<&Checkpoint> {
        self.saved.as_ref()
    }

    /// The boilerplate counts the run (or the one it resumes) saved, if any.
    pub(super) fn saved_unit_counts(&self) -> Result<Option<UnitCounts>, Error> {
        if !self.units_counted.get() {
            return Ok(None);
        }
        let bytes = std::fs::read(self.file(UNIT_COUNTS)).map_err(|source| self.error(source))?;
        UnitCounts::from_bytes(&bytes).map(Some).ok_or_else(|| {
            self.error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "its saved boilerplate counts are damaged",
            ))
        })
    }

    /// Saves the boilerplate counts, then a manifest saying so.
    pub(super) fn save_unit_counts(&self, counts: &UnitCounts) -> Result<(), Error> {
        let saved = (|| {
            let path = self.file(UNIT_COUNTS);
            std::fs::write(&path, counts.to_bytes())?;
            File::open(&path)?.sync_all()
        })();
        saved.map_err(|source| self.error(source))?;
        self.units_counted.set(true);
        self.write_manifest(None)
    }

    /// The error of this directory's files.
    pub(super) fn error(&self, source: std::io::Error) -> Error {
        Error::WorkDir {
            path: self.dir.clone(),
            source,
        }
    }

    /// Replaces the manifest with one naming `checkpoint`: written beside, synced, renamed.
    pub(super) fn save(&self, checkpoint: &Checkpoint) -> Result<(), Error> {
        self.write_manifest(Some(checkpoint))
    }

    fn write_manifest(&self, checkpoint: Option<&Checkpoint>) -> Result<(), Error> {
        let manifest = Manifest {
            format: FORMAT.to_string(),
            version: VERSION,
            fingerprint: hex_encode(&self.fingerprint.encode()),
            modified: self.modified.clone(),
            units_counted: self.units_counted.get(),
            checkpoint: checkpoint.cloned(),
            files: Vec::new(),
        };
        let saved = (|| {
            let mut manifest = manifest;
            manifest.files = self.saved_files()?;
            let temporary = self.dir.join(MANIFEST_NEW);
            let mut file = File::create(&temporary)?;
            file.write_all(&serde_json::to_vec(&manifest).map_err(std::io::Error::other)?)?;
            file.sync_all()?;
            std::fs::rename(&temporary, self.dir.join(MANIFEST))?;
            File::open(&self.dir)?.sync_all()
        })();
        saved.map_err(|source| self.error(source))
    }

    /// The file `name` of the directory (for tables saved whole).
    pub(super) fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Removes what the run kept (after its outputs are committed); the directory stays, empty.
    /// The manifest goes first (and that is synced), so that a run killed while clearing leaves
    /// no manifest naming files that are gone: the next run starts afresh.
    pub fn clear(self) -> Result<(), Error> {
        let cleared = (|| {
            match std::fs::remove_file(self.dir.join(MANIFEST)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            File::open(&self.dir)?.sync_all()?;
            self.remove_files()?;
            std::fs::remove_file(self.dir.join(LOCK))
        })();
        cleared.map_err(|source| self.error(source))
    }

    /// The names of the directory's files but the lock and the manifest (and its next version),
    /// sorted.
    fn saved_files(&self) -> std::io::Result<Vec<String>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_file() && ![LOCK, MANIFEST, MANIFEST_NEW].contains(&&*name) {
                files.push(name);
            }
        }
        files.sort();
        Ok(files)
    }

    /// The manifest an earlier run left, if any; why it cannot be used, if it cannot.
    fn read_manifest(&self) -> Result<Option<Manifest>, String> {
        let bytes = match std::fs::read(self.dir.join(MANIFEST)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("its manifest cannot be read ({e})")),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| format!("its manifest is damaged ({e})"))?;
        if manifest.format != FORMAT || manifest.version != VERSION {
            return Err(format!(
                "it was written in format {} version {} (this build writes version {VERSION})",
                manifest.format, manifest.version
            ));
        }
        Ok(Some(manifest))
    }

    /// Removes every file but the lock.
    fn remove_files(&self) -> std::io::Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_name() != LOCK && entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }
}

/// The fingerprint of a run: the settings that shape its output, whether it keeps going past
/// broken inputs, and each input's content (size and the hashes of its ends).
fn fingerprint(dedup: &Dedup, inputs: &InputSet) -> Fingerprint {
    let mut settings = dedup.output_settings(inputs.format(), inputs.max_doc_bytes());
    settings.push(Setting::new("keep going", inputs.keeps_going()));
    Fingerprint::new(settings, inputs.inputs())
}

/// Each input's modification time: a change within a file that keeps its size and its ends
/// shows there.
fn modified(inputs: &InputSet) -> Vec<String> {
    inputs
        .inputs()
        .iter()
        .map(|input| match input {
            Input::Path(path) => std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or("unknown".to_string(), |d| d.as_nanos().to_string()),
            Input::Stdin => "standard input".to_string(),
        })
        .collect()
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
