//! Output files written atomically: into a temporary file beside the target, compressed when the
//! name ends in `.gz` or `.zst`, flushed, synced, then renamed over the target. A run that fails
//! leaves no half-written file behind. `-` writes to stdout.
//!
//! Temporary files are named `.neardup-<pid>-<random>` and hold an exclusive advisory lock for as
//! long as their owner lives. They are registered in this process's [`uncommitted`] list until
//! committed or dropped, so that a signal handler (installed by the program, never by the library)
//! can remove them with [`remove_uncommitted`]. A process killed outright leaves its temporary
//! files unlocked: the next [`Output::create`] in the same directory removes them
//! ([`sweep_stale`]).
//!
//! [`OutputDir`] (in `dir.rs`) is a set of outputs in one directory (`-o DIR/`): its files are
//! written into a staging directory and moved into place together.

mod dir;

pub use dir::OutputDir;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, Stdout, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use crate::Error;
use tempfile::NamedTempFile;

/// The prefix of every temporary file and directory neardup creates beside its outputs.
pub const TEMP_PREFIX: &str = ".neardup-";

/// The file inside a temporary directory whose lock its owner holds.
pub const OWNER_LOCK: &str = ".neardup-owner";

/// Whether a file name is one of neardup's temporary names.
pub fn is_temporary_name(name: &OsStr) -> bool {
    name.as_encoded_bytes().starts_with(TEMP_PREFIX.as_bytes())
}

/// The temporary paths of this process not committed yet.
struct Registry {
    paths: Vec<PathBuf>,
    /// Set once [`remove_uncommitted`] ran: the process is going away.
    closed: bool,
    /// Directories already swept for stale temporary files.
    swept: BTreeSet<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    paths: Vec::new(),
    closed: false,
    swept: BTreeSet::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A registered temporary path; unregistered on drop.
#[derive(Debug)]
pub struct Registered(PathBuf);

impl Registered {
    /// Registers `path` (a temporary file or directory) as uncommitted.
    pub fn new(path: PathBuf) -> Registered {
        registry().paths.push(path.clone());
        Registered(path)
    }
}

impl Registered {
    /// Runs `commit` (the rename that puts the temporary in place) under the registry's lock and
    /// unregisters the path with it: a signal handler removing what is uncommitted runs before
    /// (the temporary goes, and so does the commit) or after (nothing left to remove), never
    /// while the rename moves a half-removed directory into place.
    pub fn commit<T>(mut self, commit: impl FnOnce() -> T) -> Result<T, io::Error> {
        let mut registry = registry();
        if registry.closed {
            return Err(io::Error::other("the process is exiting"));
        }
        let result = commit();
        let path = std::mem::take(&mut self.0);
        if let Some(i) = registry.paths.iter().rposition(|p| *p == path) {
            registry.paths.swap_remove(i);
        }
        drop(registry);
        // `self` now names no path: dropping it unregisters nothing.
        Ok(result)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if self.0.as_os_str().is_empty() {
            return;
        }
        let mut registry = registry();
        if let Some(i) = registry.paths.iter().rposition(|p| *p == self.0) {
            registry.paths.swap_remove(i);
        }
    }
}

/// The temporary paths not committed yet.
pub fn uncommitted() -> Vec<PathBuf> {
    registry().paths.clone()
}

/// Removes every uncommitted temporary file and directory of this process, and returns how many
/// it removed. Meant for a signal handler: the process is about to exit, and what it was writing
/// must not stay behind.
pub fn remove_uncommitted() -> usize {
    let mut registry = registry();
    registry.closed = true;
    let mut removed = 0;
    for path in registry.paths.drain(..) {
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed += usize::from(gone.is_ok());
    }
    removed
}

/// Removes the temporary files and directories in `dir` that no live process holds (their lock
/// can be taken): left by a process that was killed. Runs once per directory per process.
pub fn sweep_stale(dir: &Path) {
    {
        let mut registry = registry();
        if !registry.swept.insert(dir.to_path_buf()) {
            return;
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !is_temporary_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        // A directory (a staged index) is held through the lock file inside it.
        let lock_path = if kind.is_dir() {
            path.join(OWNER_LOCK)
        } else {
            path.clone()
        };
        // A live owner named in the file name keeps it, locked or not yet locked (the lock is
        // taken just after the file is made: another run's sweep must not fall into that gap).
        let named_owner = owner_pid(&entry.file_name());
        if named_owner.is_some_and(process_lives) {
            continue;
        }
        match File::open(&lock_path) {
            Ok(file) => {
                if file.try_lock().is_err() {
                    continue;
                }
            }
            // A directory whose owner was killed before it made its lock file: stale once that
            // process is gone.
            Err(_) if kind.is_dir() && named_owner.is_some() => {}
            Err(_) => continue,
        }
        let _ = if kind.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

/// The process id in a temporary name (`.neardup-[KIND-]PID-XXXXXX`).
fn owner_pid(name: &OsStr) -> Option<u32> {
    let name = name.to_str()?.strip_prefix(TEMP_PREFIX)?;
    name.split('-').find_map(|part| part.parse().ok())
}

/// Whether process `pid` exists (on Linux, its `/proc` entry).
fn process_lives(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// `path` made absolute with every link resolved, as far as it exists: two paths naming the same
/// place resolve alike (a file that does not exist yet, by its resolved directory and name).
pub fn resolved(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut clean = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    match (clean.parent(), clean.file_name()) {
        (Some(parent), Some(name)) => match std::fs::canonicalize(parent) {
            Ok(parent) => parent.join(name),
            Err(_) => clean,
        },
        _ => clean,
    }
}

/// A temporary directory in `parent`, registered, with its owner lock taken (held by the
/// returned file for as long as it lives), so that a stale-file sweep leaves it alone while its
/// owner lives and removes it once the owner is gone.
pub fn temporary_dir_in(
    parent: &Path,
    kind: &str,
) -> io::Result<(tempfile::TempDir, Registered, File)> {
    let (dir, registered) = create_registered(
        parent,
        |dir| {
            tempfile::Builder::new()
                .prefix(&format!("{TEMP_PREFIX}{kind}-{}-", std::process::id()))
                .tempdir_in(dir)
        },
        |dir| dir.path(),
    )?;
    let owner = File::create(dir.path().join(OWNER_LOCK))?;
    owner.try_lock().map_err(io::Error::other)?;
    Ok((dir, registered, owner))
}

/// Sweeps `dir`, then creates a temporary there with `create` and registers its path, under the
/// registry's lock: a signal handler removing what is uncommitted sees it, or runs before it
/// exists (and then nothing is created).
fn create_registered<T>(
    dir: &Path,
    create: impl FnOnce(&Path) -> io::Result<T>,
    path_of: impl Fn(&T) -> &Path,
) -> io::Result<(T, Registered)> {
    sweep_stale(dir);
    let mut registry = registry();
    if registry.closed {
        return Err(io::Error::other("the process is exiting"));
    }
    let made = create(dir).map_err(without_temp_name)?;
    let path = path_of(&made).to_path_buf();
    registry.paths.push(path.clone());
    Ok((made, Registered(path)))
}

/// The error of creating a temporary file or directory, without its random name (which the
/// `tempfile` crate adds to the message): people see what went wrong, not internal names.
pub fn without_temp_name(e: io::Error) -> io::Error {
    let message = match e.kind() {
        io::ErrorKind::NotFound => "the directory does not exist".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::NotADirectory => "not a directory".to_string(),
        io::ErrorKind::ReadOnlyFilesystem => "read-only file system".to_string(),
        io::ErrorKind::StorageFull => "no space left on device".to_string(),
        kind => kind.to_string(),
    };
    io::Error::new(e.kind(), message)
}

/// Creates a temporary file in `dir`, locked and registered.
fn temporary_in(dir: &Path) -> io::Result<(NamedTempFile, Registered)> {
    let (temp, registered) = create_registered(
        dir,
        |dir| {
            tempfile::Builder::new()
                .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
                // Like any new file: 0666 less the umask, not tempfile's private 0600.
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
                .tempfile_in(dir)
        },
        |temp| temp.path(),
    )?;
    temp.as_file().try_lock().map_err(io::Error::other)?;
    Ok((temp, registered))
}

enum Encoder {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
    Stdout(BufWriter<Stdout>),
}

/// One output being written.
pub struct Output {
    name: String,
    target: Option<Target>,
    encoder: Encoder,
}

/// Where a file output goes.
enum Target {
    /// The target path, and the temporary file written until commit renames it there.
    Replace {
        path: PathBuf,
        temp: NamedTempFile,
        _registered: Registered,
    },
    /// A file in an [`OutputDir`]'s staging directory, which moves it into place.
    Staged,
}

impl Output {
    /// An output compressed by its name's extension (`.gz`, `.zst`).
    pub fn create(name: &str) -> Result<Output, Error> {
        Self::create_as(name, true)
    }

    /// An output written as given whatever its name (for a writer that compresses its own
    /// units, such as one gzip member per WARC record).
    pub fn create_uncompressed(name: &str) -> Result<Output, Error> {
        Self::create_as(name, false)
    }

    fn create_as(name: &str, by_extension: bool) -> Result<Output, Error> {
        if name == "-" {
            return Ok(Output {
                name: "stdout".to_string(),
                target: None,
                encoder: Encoder::Stdout(BufWriter::with_capacity(1 << 16, io::stdout())),
            });
        }
        let path = PathBuf::from(name);
        let error = |source| Error::Output {
            what: name.to_string(),
            source,
        };
        if name.ends_with('/') {
            return Err(error(io::Error::new(
                io::ErrorKind::IsADirectory,
                "a name ending in / is a directory, and this output is one file",
            )));
        }
        // A symbolic link is followed: its target is replaced atomically and the link stays.
        let path = if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::canonicalize(&path).map_err(error)?
        } else {
            path
        };
        // Only a regular file (or a new name) is replaced atomically. A device or a pipe
        // (`/dev/null`, a FIFO, `/dev/stdout`) is written in place: renaming a temporary file
        // over it would replace it with a regular file.
        let in_place = std::fs::metadata(&path).is_ok_and(|m| !m.is_file() && !m.is_dir());
        if in_place {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .map_err(error)?;
            return Ok(Output {
                name: name.to_string(),
                target: None,
                encoder: Self::encoder(name, by_extension, BufWriter::with_capacity(1 << 16, file))
                    .map_err(error)?,
            });
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        };
        if path.is_dir() {
            return Err(error(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )));
        }
        let (temp, registered) = temporary_in(&dir).map_err(error)?;
        let file = BufWriter::with_capacity(1 << 16, temp.reopen().map_err(error)?);
        Ok(Output {
            name: name.to_string(),
            target: Some(Target::Replace {
                path,
                temp,
                _registered: registered,
            }),
            encoder: Self::encoder(name, by_extension, file).map_err(error)?,
        })
    }

    /// An output written to `file` (a new file of a staging directory), called `name` in
    /// messages; finishing it syncs it, and its [`OutputDir`] moves it into place.
    fn staged(name: String, file: File, by_extension: bool) -> Result<Output, Error> {
        let encoder = Self::encoder(&name, by_extension, BufWriter::with_capacity(1 << 16, file))
            .map_err(|source| Error::Output {
            what: name.clone(),
            source,
        })?;
        Ok(Output {
            name,
            target: Some(Target::Staged),
            encoder,
        })
    }

    /// Compression chosen by the name's extension.
    fn encoder(name: &str, by_extension: bool, file: BufWriter<File>) -> io::Result<Encoder> {
        Ok(if !by_extension {
            Encoder::Plain(file)
        } else if name.ends_with(".gz") {
            Encoder::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::default(),
            ))
        } else if name.ends_with(".zst") {
            Encoder::Zstd(zstd::stream::write::Encoder::new(file, 3)?)
        } else {
            Encoder::Plain(file)
        })
    }

    /// Writes `line` and a newline.
    pub fn write_line(&mut self, line: &[u8]) -> Result<(), Error> {
        self.write_all(line)
            .and_then(|_| self.write_all(b"\n"))
            .map_err(|e| self.error(e))
    }

    /// Wraps an I/O error with this output's name.
    pub fn error(&self, source: io::Error) -> Error {
        Error::Output {
            what: self.name.clone(),
            source,
        }
    }

    /// Finishes compression, syncs and moves the file into place.
    pub fn finish(self) -> Result<(), Error> {
        let name = self.name;
        let error = |source| Error::Output {
            what: name.clone(),
            source,
        };
        let file = match self.encoder {
            Encoder::Stdout(mut out) => return out.flush().map_err(error),
            Encoder::Plain(file) => file,
            Encoder::Gzip(gz) => gz.finish().map_err(error)?,
            Encoder::Zstd(z) => z.finish().map_err(error)?,
        };
        let file = file.into_inner().map_err(|e| error(e.into_error()))?;
        match self.target {
            Some(Target::Replace {
                path,
                temp,
                _registered: registered,
            }) => {
                file.sync_all().map_err(error)?;
                registered
                    .commit(|| temp.persist(&path))
                    .map_err(error)?
                    .map_err(|e| error(without_temp_name(e.error)))?;
            }
            Some(Target::Staged) => file.sync_all().map_err(error)?,
            None => {}
        }
        Ok(())
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.encoder {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(w) => w.write(buf),
            Encoder::Zstd(w) => w.write(buf),
            Encoder::Stdout(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
            Encoder::Stdout(w) => w.flush(),
        }
    }
}

/// What a path is to a run, for [`check_distinct`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathUse {
    /// Read: an input file or directory.
    Input,
    /// Written: an output file (`-` is stdout).
    Output,
    /// An index directory, read or written.
    Index,
}

/// One path of a run: what it is for (`role`, as the caller names it, e.g. an option), how it
/// is used, and the path as given.
#[derive(Debug, Clone)]
pub struct RunPath {
    pub role: String,
    pub usage: PathUse,
    pub path: String,
}

/// What identifies a file: its device and inode when it exists, else its resolved path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    Inode(u64, u64),
    Path(PathBuf),
    Stdout,
}

/// `None` for what never clashes: a character device (`/dev/null`, a terminal).
fn identity(path: &str) -> Option<Identity> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    // Stdout is whatever file descriptor 1 is: a file it is redirected to clashes like a path.
    let named = if path == "-" { "/dev/stdout" } else { path };
    match std::fs::metadata(named) {
        Ok(m) if m.file_type().is_char_device() => None,
        Ok(m) => Some(Identity::Inode(m.dev(), m.ino())),
        Err(_) if path == "-" => Some(Identity::Stdout),
        Err(_) => Some(Identity::Path(resolved(Path::new(path)))),
    }
}

/// Checks, before any work, that no output is an input, another output, or inside an index
/// directory, and that no index directory is an input: paths are compared as files (after
/// resolving links, hard links included). Two outputs to stdout clash too; stdin as an input
/// clashes with nothing.
pub fn check_distinct(paths: &[RunPath]) -> Result<(), Error> {
    let ids: Vec<Option<Identity>> = paths.iter().map(|p| identity(&p.path)).collect();
    let same = |i: usize, j: usize| ids[i].is_some() && ids[i] == ids[j];
    let inside = |output: &RunPath, dir: &RunPath| {
        output.path != "-"
            && resolved(Path::new(&output.path)).starts_with(resolved(Path::new(&dir.path)))
    };
    for (i, a) in paths.iter().enumerate() {
        for (j, b) in paths.iter().enumerate().skip(i + 1) {
            let within = match (a.usage, b.usage) {
                (PathUse::Output, PathUse::Index) => inside(a, b).then_some((a, b)),
                (PathUse::Index, PathUse::Output) => inside(b, a).then_some((b, a)),
                _ => None,
            };
            if let Some((output, index)) = within {
                return Err(Error::InsideIndex {
                    output: output.role.clone(),
                    index: index.role.clone(),
                    path: output.path.clone(),
                });
            }
            let clash = match (a.usage, b.usage) {
                (PathUse::Input, PathUse::Input) => false,
                // `-` as an input is stdin, which no output is.
                (PathUse::Input, _) if a.path == "-" => false,
                (_, PathUse::Input) if b.path == "-" => false,
                (PathUse::Input, _) | (_, PathUse::Input) => same(i, j),
                // The same index named twice (--against and --update's) is fine.
                (PathUse::Index, PathUse::Index) => false,
                (PathUse::Output, PathUse::Output) if a.path == "-" && b.path == "-" => true,
                _ => same(i, j),
            };
            if clash {
                return Err(Error::SameFile {
                    first: a.role.clone(),
                    second: b.role.clone(),
                    path: if a.path == "-" {
                        "stdout".to_string()
                    } else {
                        a.path.clone()
                    },
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Output, PathUse, RunPath, TEMP_PREFIX, check_distinct, sweep_stale, uncommitted};
    use crate::Error;

    fn path(role: &str, usage: PathUse, path: &Path) -> RunPath {
        RunPath {
            role: role.to_string(),
            usage,
            path: path.display().to_string(),
        }
    }

    #[test]
    fn issue10_outputs_are_compared_as_files() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        std::fs::write(&input, "x\n").unwrap();
        std::fs::hard_link(&input, dir.path().join("hard")).unwrap();
        std::os::unix::fs::symlink(&input, dir.path().join("soft")).unwrap();
        std::fs::create_dir(dir.path().join("idx")).unwrap();
        let i = path("input", PathUse::Input, &input);
        let clashes = [
            vec![
                i.clone(),
                path("-o", PathUse::Output, &dir.path().join("hard")),
            ],
            vec![
                i.clone(),
                path("-o", PathUse::Output, &dir.path().join("soft")),
            ],
            vec![
                path("-o", PathUse::Output, &dir.path().join("new")),
                path("--removed", PathUse::Output, &dir.path().join("idx/../new")),
            ],
            vec![
                path("-o", PathUse::Output, Path::new("-")),
                path("--removed", PathUse::Output, Path::new("-")),
            ],
        ];
        for paths in &clashes {
            assert!(
                matches!(check_distinct(paths), Err(Error::SameFile { .. })),
                "{paths:?}"
            );
        }
        let inside = [
            path("--against", PathUse::Index, &dir.path().join("idx")),
            path("-o", PathUse::Output, &dir.path().join("idx/k.jsonl")),
        ];
        assert!(matches!(
            check_distinct(&inside),
            Err(Error::InsideIndex { .. })
        ));
        let fine = [
            path("input", PathUse::Input, Path::new("-")),
            path("-o", PathUse::Output, Path::new("-")),
            i,
            path("--removed", PathUse::Output, &dir.path().join("r.jsonl")),
            path("--against", PathUse::Index, &dir.path().join("idx")),
            path("--update", PathUse::Index, &dir.path().join("idx")),
        ];
        assert!(check_distinct(&fine).is_ok());
    }

    #[test]
    fn issue10_stale_temporaries_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A killed process's file: nobody holds its lock.
        let stale = dir.path().join(format!("{TEMP_PREFIX}999999999-dead"));
        std::fs::write(&stale, "half").unwrap();
        // A live owner's file (locked), and one made by a live process a moment before it locks it.
        let live = dir.path().join(format!("{TEMP_PREFIX}999999998-live"));
        let unlocked_but_alive = dir
            .path()
            .join(format!("{TEMP_PREFIX}{}-new", std::process::id()));
        std::fs::write(&unlocked_but_alive, "").unwrap();
        let held = std::fs::File::create(&live).unwrap();
        held.lock().unwrap();
        // Not ours at all.
        let other = dir.path().join("notes.txt");
        std::fs::write(&other, "keep").unwrap();
        // Directories killed before their owner lock existed: gone with their process, or not.
        let orphan = dir.path().join(format!("{TEMP_PREFIX}bands-999999999-x"));
        std::fs::create_dir(&orphan).unwrap();
        let mine = dir
            .path()
            .join(format!("{TEMP_PREFIX}bands-{}-y", std::process::id()));
        std::fs::create_dir(&mine).unwrap();
        sweep_stale(dir.path());
        assert!(!stale.exists());
        assert!(live.exists());
        assert!(other.exists());
        assert!(!orphan.exists());
        assert!(mine.exists());
        assert!(unlocked_but_alive.exists());
        drop(held);
    }

    #[test]
    fn uncommitted_outputs_are_registered_until_committed_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        let out = Output::create(target.to_str().unwrap()).unwrap();
        let temps: Vec<_> = uncommitted()
            .into_iter()
            .filter(|p| p.starts_with(dir.path()))
            .collect();
        assert_eq!(temps.len(), 1);
        assert!(temps[0].exists());
        out.finish().unwrap();
        assert!(target.exists());
        assert!(!uncommitted().iter().any(|p| p.starts_with(dir.path())));
        let dropped = Output::create(dir.path().join("b").to_str().unwrap()).unwrap();
        drop(dropped);
        assert!(!uncommitted().iter().any(|p| p.starts_with(dir.path())));
        // `remove_uncommitted`, what a signal handler calls, closes the registry for good: it is
        // tested through the binary (tests/integration/hardening.rs), not in this process.
    }
}
