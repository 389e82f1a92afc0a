//! What one input holds, as the start-up agreement compares it between processes: its size and
//! xxh3 hashes of its first and last MiB (a directory: its files' names, sizes and joined bytes),
//! read without consuming anything (standard input is not read), and how two views differ.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::{Xxh3, xxh3_64};

/// How much of each end of an input is hashed.
const MIB: u64 = 1 << 20;

/// What one input looks like from one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    /// A regular file: its size and the hashes of its first and last MiB (the whole file when
    /// it is smaller).
    File { size: u64, head: u64, tail: u64 },
    /// A directory (read as one document per file): its files, their total size, a hash of the
    /// relative names and sizes, and the hashes of the first and last MiB of the files' bytes
    /// one after the other.
    Dir {
        files: u64,
        size: u64,
        listing: u64,
        head: u64,
        tail: u64,
    },
    /// Standard input, or anything that is neither a regular file nor a directory (not read
    /// here: reading would consume it).
    Other(String),
    /// It could not be opened or read; why.
    Unreadable(String),
}

impl Content {
    fn describe(&self) -> String {
        match self {
            Content::File { size, .. } => format!("{} bytes", grouped(*size)),
            Content::Dir { files, size, .. } => {
                format!(
                    "a directory of {} files ({} bytes)",
                    grouped(*files),
                    grouped(*size)
                )
            }
            Content::Other(what) => what.clone(),
            Content::Unreadable(why) => format!("unreadable ({why})"),
        }
    }
}

/// How the same input differs between two processes, as a phrase after "input NAME".
pub(crate) fn content_difference(there: &Content, here: &Content) -> Option<String> {
    let other =
        |which: &str| format!("has other content there (same size; its {which} MiB differs)");
    match (there, here) {
        (a, b) if a == b => None,
        (
            Content::File {
                size: a,
                head: head_a,
                ..
            },
            Content::File {
                size: b,
                head: head_b,
                ..
            },
        ) => Some(if a != b {
            format!("is {} bytes there, {} here", grouped(*a), grouped(*b))
        } else if head_a != head_b {
            other("first")
        } else {
            other("last")
        }),
        (
            Content::Dir {
                files: files_a,
                size: size_a,
                listing: listing_a,
                head: head_a,
                ..
            },
            Content::Dir {
                files: files_b,
                size: size_b,
                listing: listing_b,
                head: head_b,
                ..
            },
        ) if (files_a, size_a) == (files_b, size_b) => Some(if listing_a != listing_b {
            "holds other file names or sizes there".to_string()
        } else if head_a != head_b {
            other("first")
        } else {
            other("last")
        }),
        (a, b) => Some(format!("is {} there, {} here", a.describe(), b.describe())),
    }
}

/// What `path` holds, hashed.
pub(crate) fn content(path: &Path) -> io::Result<Content> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        let size = meta.len();
        let mut file = std::fs::File::open(path)?;
        let head = xxh3_64(&read_at(&mut file, 0, size.min(MIB))?);
        let tail_len = size.min(MIB);
        let tail = xxh3_64(&read_at(&mut file, size - tail_len, tail_len)?);
        Ok(Content::File { size, head, tail })
    } else if meta.is_dir() {
        let files = walk(path)?;
        let size: u64 = files.iter().map(|f| f.1).sum();
        let mut listing = Xxh3::new();
        for (file, len) in &files {
            let relative = file.strip_prefix(path).unwrap_or(file);
            listing.update(relative.as_os_str().as_encoded_bytes());
            listing.update(&[0]);
            listing.update(&len.to_le_bytes());
        }
        let ends = size.min(MIB);
        Ok(Content::Dir {
            files: files.len() as u64,
            size,
            listing: listing.digest(),
            head: xxh3_64(&read_joined(&files, 0, ends)?),
            tail: xxh3_64(&read_joined(&files, size - ends, ends)?),
        })
    } else {
        Ok(Content::Other(
            "neither a regular file nor a directory".to_string(),
        ))
    }
}

/// `len` bytes of `file` from `start` (fewer when it is shorter now).
fn read_at(file: &mut std::fs::File, start: u64, len: u64) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `len` bytes from `start` of the files' bytes one after the other.
fn read_joined(files: &[(PathBuf, u64)], start: u64, len: u64) -> io::Result<Vec<u8>> {
    let end = start + len;
    let mut bytes = Vec::with_capacity(len as usize);
    let mut offset = 0;
    for (path, size) in files {
        let (from, to) = (start.max(offset), end.min(offset + size));
        if from < to {
            let mut file = std::fs::File::open(path)?;
            bytes.extend(read_at(&mut file, from - offset, to - from)?);
        }
        offset += size;
        if offset >= end {
            break;
        }
    }
    Ok(bytes)
}

/// The regular files under `root` with their sizes, in sorted order (as the reader walks a
/// directory input: symbolic links are not followed).
fn walk(root: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push((entry.path(), entry.metadata()?.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// An I/O error as a short reason (the same text on every machine for the same cause).
pub(crate) fn io_reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => "not found".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => error.to_string(),
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::pipeline::content::grouped;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(3_457_120), "3,457,120");
    }
}
