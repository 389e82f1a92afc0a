//! [`OutputDir`]: outputs written as a set into one directory (`-o DIR/`), committed together.
//!
//! Each file is written into a staging directory (`.neardup-out-<pid>-…`, inside the target
//! directory when it exists, else beside it) and [`OutputDir::commit`] moves every one into
//! place under the registry's lock: a signal handler removing what is uncommitted runs before
//! (the staging directory goes, with every file, and the target directory is not even created)
//! or after (all are in place), never halfway. Files of the target directory that the set does
//! not name are left as they are; a file it names is replaced.

use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::{Output, Registered, temporary_dir_in};
use crate::Error;

/// A set of outputs in one directory, committed together.
#[derive(Debug)]
pub struct OutputDir {
    /// The directory as given, for messages.
    name: String,
    dir: PathBuf,
    staging: tempfile::TempDir,
    registered: Registered,
    /// Held while the staging directory lives, so that another run's sweep leaves it alone.
    _owner: File,
    /// The files written, relative to the directory.
    files: Vec<PathBuf>,
}

impl OutputDir {
    /// A set of outputs in the directory `name`, which is created at commit when it does not
    /// exist (its parent must). Refuses a path that exists and is not a directory.
    pub fn create(name: &str) -> Result<OutputDir, Error> {
        let dir = PathBuf::from(name);
        let error = |source| Error::Output {
            what: name.to_string(),
            source,
        };
        // `x/` of a file `x` is an error (ENOTDIR) to the system: look at `x` itself.
        let trimmed = match name.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        let stage_in = match std::fs::metadata(trimmed) {
            Ok(meta) if meta.is_dir() => dir.clone(),
            Ok(_) => {
                return Err(error(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "is not a directory (a name ending in / is a directory of outputs)",
                )));
            }
            Err(_) => match dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            },
        };
        let (staging, registered, owner) =
            temporary_dir_in(&stage_in, "out").map_err(|e| error(super::without_temp_name(e)))?;
        Ok(OutputDir {
            name: name.to_string(),
            dir,
            staging,
            registered,
            _owner: owner,
            files: Vec::new(),
        })
    }

    /// The directory as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where `relative` goes once committed.
    pub fn target(&self, relative: &Path) -> PathBuf {
        self.dir.join(relative)
    }

    /// A new output at `relative` in the directory (compressed by its name's extension when
    /// `by_extension`). `relative` must be a plain relative path (no `..`, no root), named once.
    pub fn file(&mut self, relative: &Path, by_extension: bool) -> Result<Output, Error> {
        let name = self.target(relative).display().to_string();
        let error = |source| Error::Output {
            what: name.clone(),
            source,
        };
        let plain = relative.components().next().is_some()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(error(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a name inside {}", relative.display(), self.name),
            )));
        }
        if self.files.iter().any(|f| f == relative) {
            return Err(error(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "is written twice",
            )));
        }
        let staged = self.staging.path().join(relative);
        if let Some(parent) = staged.parent() {
            std::fs::create_dir_all(parent).map_err(error)?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staged)
            .map_err(error)?;
        self.files.push(relative.to_path_buf());
        Output::staged(name, file, by_extension)
    }

    /// Moves every file written (each finished first) into the directory, creating it and the
    /// subdirectories the names need, and removes the staging directory.
    pub fn commit(self) -> Result<(), Error> {
        let OutputDir {
            name,
            dir,
            staging,
            registered,
            _owner,
            files,
        } = self;
        let error = |what: String, source| Error::Output { what, source };
        let moved = registered
            .commit(|| -> Result<(), Error> {
                std::fs::create_dir_all(&dir).map_err(|e| error(name.clone(), e))?;
                for relative in &files {
                    let target = dir.join(relative);
                    let what = || target.display().to_string();
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| error(what(), e))?;
                    }
                    std::fs::rename(staging.path().join(relative), &target)
                        .map_err(|e| error(what(), e))?;
                }
                Ok(())
            })
            .map_err(|e| error(name.clone(), e))?;
        moved?;
        // What is left is the staging directory's own tree and lock file.
        drop(_owner);
        staging.close().map_err(|e| error(name, e))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;

    use super::OutputDir;
    use crate::output::{TEMP_PREFIX, uncommitted};

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = walk(dir)
            .into_iter()
            .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
            .collect();
        names.sort();
        names
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    #[test]
    fn issue12_a_directory_of_outputs_appears_whole_at_commit() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("out");
        let mut set = OutputDir::create(&format!("{}/", target.display())).unwrap();
        for (name, text) in [("a.jsonl", "1\n"), ("sub/b.jsonl.zst", "2\n")] {
            let mut out = set.file(Path::new(name), true).unwrap();
            out.write_all(text.as_bytes()).unwrap();
            out.finish().unwrap();
        }
        // Nothing is in place before the commit: the directory does not exist yet.
        assert!(!target.exists());
        assert_eq!(
            uncommitted()
                .iter()
                .filter(|p| p.starts_with(root.path()))
                .count(),
            1
        );
        set.commit().unwrap();
        assert_eq!(listing(&target), ["a.jsonl", "sub/b.jsonl.zst"]);
        assert_eq!(
            std::fs::read_to_string(target.join("a.jsonl")).unwrap(),
            "1\n"
        );
        let zst = std::fs::read(target.join("sub/b.jsonl.zst")).unwrap();
        assert_eq!(zstd::decode_all(&zst[..]).unwrap(), b"2\n");
        // No staging directory is left beside it.
        let left: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(!uncommitted().iter().any(|p| p.starts_with(root.path())));

        // Into the directory that now exists: the staging directory is inside it, a file named
        // again is replaced, others stay; a set dropped uncommitted leaves nothing.
        let mut again = OutputDir::create(target.to_str().unwrap()).unwrap();
        let mut out = again.file(Path::new("a.jsonl"), true).unwrap();
        out.write_all(b"3\n").unwrap();
        out.finish().unwrap();
        assert!(again.file(Path::new("a.jsonl"), true).is_err());
        assert!(again.file(Path::new("../escape"), true).is_err());
        assert!(again.file(Path::new("/abs"), true).is_err());
        again.commit().unwrap();
        assert_eq!(listing(&target), ["a.jsonl", "sub/b.jsonl.zst"]);
        assert_eq!(
            std::fs::read_to_string(target.join("a.jsonl")).unwrap(),
            "3\n"
        );
        let mut dropped = OutputDir::create(target.to_str().unwrap()).unwrap();
        dropped.file(Path::new("c.jsonl"), true).unwrap();
        drop(dropped);
        assert_eq!(listing(&target), ["a.jsonl", "sub/b.jsonl.zst"]);

        // A file is not a directory of outputs.
        match OutputDir::create(target.join("a.jsonl").to_str().unwrap()) {
            Err(crate::Error::Output { source, .. }) => {
                assert!(
                    source.to_string().contains("is not a directory"),
                    "{source}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
