//! Shards: input arguments that name many files, a directory or a glob pattern, expanded into
//! the files they name, in sorted path order.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Format, FormatChoice, Input, io_reason};
use crate::error::{ConfigError, Error, InputFailure};

/// One input of a run after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    pub input: Input,
    /// Whether it was found in a directory or by a pattern (rather than named itself).
    pub from_shards: bool,
    /// Its name relative to what was given: below the directory, below the pattern's part
    /// without wildcards, or the file's own name when it was named itself; `None` for stdin.
    /// A kept output of shards (`-o DIR/`) writes it to `DIR/<relative>`.
    pub relative: Option<PathBuf>,
}

/// The inputs `given` stands for, in order: a directory (except for the files format, where a
/// directory is one input of one document per file) stands for the files below it, a glob
/// pattern (`data/train-*.jsonl`, `crawl/**/*.jsonl.zst`) for the files it matches; each in
/// sorted order of the paths' bytes. Files are followed through symbolic links; hidden files and
/// directories (a name starting with `.`) are left out, and a directory walk does not follow
/// links to directories. A path that exists is taken as it is, even when it holds `*` or `[`.
/// A pattern that matches no file, or a directory without files, is an error naming it (an
/// input that cannot be read, [`Error::InputFailed`]); a pattern that is not one is a
/// [`ConfigError::Pattern`].
pub fn expand(given: Vec<Input>, choice: FormatChoice) -> Result<Vec<Expanded>, Error> {
    let mut out = Vec::with_capacity(given.len());
    for input in given {
        let Input::Path(path) = &input else {
            out.push(Expanded {
                input,
                from_shards: false,
                relative: None,
            });
            continue;
        };
        let (files, base) = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() && choice != FormatChoice::All(Format::Files) => {
                let files = walk_shards(path).map_err(|e| {
                    Error::InputFailed(InputFailure {
                        file: path.display().to_string(),
                        records_read: 0,
                        reason: format!("cannot list the directory: {}", io_reason(&e)),
                    })
                })?;
                (files, path.clone())
            }
            Ok(_) => (Vec::new(), PathBuf::new()),
            Err(_) if is_pattern(path) => (glob_files(path)?, pattern_base(path)),
            Err(_) => (Vec::new(), PathBuf::new()),
        };
        if files.is_empty() && !is_literal(path, choice) {
            let reason = if is_pattern(path) && std::fs::metadata(path).is_err() {
                "no file matches this pattern (hidden files are left out)"
            } else {
                "the directory holds no files (hidden files are left out)"
            };
            return Err(Error::InputFailed(InputFailure {
                file: path.display().to_string(),
                records_read: 0,
                reason: reason.to_string(),
            }));
        }
        if files.is_empty() {
            let relative = path.file_name().map(PathBuf::from);
            out.push(Expanded {
                input,
                from_shards: false,
                relative,
            });
        } else {
            out.extend(files.into_iter().map(|file| {
                let relative = file
                    .strip_prefix(&base)
                    .ok()
                    .filter(|r| !r.as_os_str().is_empty())
                    .map(Path::to_path_buf)
                    .or_else(|| file.file_name().map(PathBuf::from));
                Expanded {
                    input: Input::Path(file),
                    from_shards: true,
                    relative,
                }
            }));
        }
    }
    Ok(out)
}

/// Whether `path` is read as the input it names: it exists and is not a directory of shards, or
/// it does not exist and is no pattern (reading it then reports that it is missing).
fn is_literal(path: &Path, choice: FormatChoice) -> bool {
    match std::fs::metadata(path) {
        Ok(meta) => !meta.is_dir() || choice == FormatChoice::All(Format::Files),
        Err(_) => !is_pattern(path),
    }
}

fn is_pattern(path: &Path) -> bool {
    path.as_os_str()
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// The directory the shards of an input argument are named relative to
/// ([`Expanded::relative`]): a directory itself, or a pattern's part before its first component
/// with a wildcard (`crawl/**/*.gz` → `crawl`). `None` for a path that is neither.
pub fn shard_root(given: &Path) -> Option<PathBuf> {
    match std::fs::metadata(given) {
        Ok(meta) if meta.is_dir() => Some(given.to_path_buf()),
        Ok(_) => None,
        Err(_) => is_pattern(given).then(|| pattern_base(given)),
    }
}

/// The part of a pattern before its first component with a wildcard: `crawl/**/*.gz` → `crawl`.
fn pattern_base(pattern: &Path) -> PathBuf {
    pattern
        .components()
        .take_while(|c| !is_pattern(Path::new(c.as_os_str())))
        .collect()
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_bytes().starts_with(b".")
}

/// Sorts paths by their bytes (not component by component) and drops repeats.
fn sort_paths(paths: &mut Vec<PathBuf>) {
    paths.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    paths.dedup();
}

/// The files below `root`, recursively, without hidden entries and without following links to
/// directories, sorted.
fn walk_shards(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if is_hidden(&entry.file_name()) {
                continue;
            }
            let kind = entry.file_type()?;
            let is_file = kind.is_file()
                || (kind.is_symlink()
                    && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()));
            if kind.is_dir() {
                stack.push(entry.path());
            } else if is_file {
                out.push(entry.path());
            }
        }
    }
    sort_paths(&mut out);
    Ok(out)
}

/// The files `pattern` matches (through links), without hidden ones, sorted.
fn glob_files(pattern: &Path) -> Result<Vec<PathBuf>, Error> {
    let written = pattern.display().to_string();
    let bad = |reason: String| {
        Error::Config(ConfigError::Pattern {
            pattern: written.clone(),
            reason,
        })
    };
    let text = pattern
        .to_str()
        .ok_or_else(|| bad("it is not UTF-8".to_string()))?;
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let matches = glob::glob_with(text, options).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for entry in matches {
        // A directory on the way that cannot be read holds no match.
        let Ok(path) = entry else { continue };
        if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            out.push(path);
        }
    }
    sort_paths(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::expand;
    use crate::error::{ConfigError, Error};
    use crate::read::{Format, FormatChoice, Input};

    fn names(expanded: &[super::Expanded], root: &std::path::Path) -> Vec<String> {
        expanded
            .iter()
            .map(|e| match &e.input {
                Input::Path(p) => p.strip_prefix(root).unwrap_or(p).display().to_string(),
                Input::Stdin => "-".to_string(),
            })
            .collect()
    }

    #[test]
    fn directories_and_patterns_expand_to_sorted_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("d/sub")).unwrap();
        std::fs::create_dir_all(root.join("d/.cache")).unwrap();
        for name in [
            "d/b.jsonl",
            "d/a-1.jsonl",
            "d/sub/c.txt",
            "d/.hidden.jsonl",
            "d/.cache/x.jsonl",
            "lit[1].jsonl",
        ] {
            std::fs::write(root.join(name), "x\n").unwrap();
        }
        std::os::unix::fs::symlink(root.join("d/b.jsonl"), root.join("d/link.jsonl")).unwrap();
        let given = vec![
            Input::Path(root.join("d")),
            Input::Stdin,
            Input::Path(root.join("d/*.jsonl")),
            Input::Path(root.join("lit[1].jsonl")),
        ];
        let expanded = expand(given, FormatChoice::Detect).unwrap();
        // Byte order: `a-1` before `b`, and `link` before `sub/` ('l' < 's').
        assert_eq!(
            names(&expanded, root),
            [
                "d/a-1.jsonl",
                "d/b.jsonl",
                "d/link.jsonl",
                "d/sub/c.txt",
                "-",
                "d/a-1.jsonl",
                "d/b.jsonl",
                "d/link.jsonl",
                "lit[1].jsonl",
            ]
        );
        assert!(expanded[0].from_shards && !expanded[4].from_shards && !expanded[8].from_shards);
        // Names below the directory, below the pattern's literal part, or the file's own.
        let relative: Vec<Option<String>> = expanded
            .iter()
            .map(|e| e.relative.as_ref().map(|r| r.display().to_string()))
            .collect();
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            relative,
            [
                some("a-1.jsonl"),
                some("b.jsonl"),
                some("link.jsonl"),
                some("sub/c.txt"),
                None,
                some("a-1.jsonl"),
                some("b.jsonl"),
                some("link.jsonl"),
                some("lit[1].jsonl"),
            ]
        );
        let recursive = expand(
            vec![Input::Path(root.join("d/**/*.txt"))],
            FormatChoice::Detect,
        )
        .unwrap();
        assert_eq!(recursive[0].relative, Some(PathBuf::from("sub/c.txt")));

        // The files format keeps a directory as one input.
        let files = expand(
            vec![Input::Path(root.join("d"))],
            FormatChoice::All(Format::Files),
        )
        .unwrap();
        assert_eq!(files[0].input, Input::Path(root.join("d")));
        // A missing plain path is left for reading to report.
        let missing = root.join("missing.jsonl");
        assert_eq!(
            expand(vec![Input::Path(missing.clone())], FormatChoice::Detect).unwrap()[0].input,
            Input::Path(missing)
        );
    }

    #[test]
    fn a_pattern_without_matches_or_an_empty_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        std::fs::write(dir.path().join("empty/.only-hidden"), "x").unwrap();
        for name in ["nothing-*.jsonl", "empty"] {
            let path: PathBuf = dir.path().join(name);
            match expand(vec![Input::Path(path.clone())], FormatChoice::Detect) {
                Err(Error::InputFailed(failure)) => {
                    assert_eq!(failure.file, path.display().to_string())
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(matches!(
            expand(
                vec![Input::Path(dir.path().join("[z-a"))],
                FormatChoice::Detect
            ),
            Err(Error::Config(ConfigError::Pattern { .. }))
        ));
    }
}
