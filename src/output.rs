//! Output files written atomically: into a temporary file beside the target, compressed when the
//! name ends in `.gz` or `.zst`, flushed, synced, then renamed over the target. A run that fails
//! leaves no half-written file behind. `-` writes to stdout.

use std::fs::File;
use std::io::{self, BufWriter, Stdout, Write};
use std::path::{Path, PathBuf};

use crate::Error;
use tempfile::NamedTempFile;

enum Encoder {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
    Stdout(BufWriter<Stdout>),
}

/// One output being written.
pub struct Output {
    name: String,
    target: Option<(PathBuf, NamedTempFile)>,
    encoder: Encoder,
}

impl Output {
    pub fn create(name: &str) -> Result<Output, Error> {
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
        // Only a regular file (or a new name) is replaced atomically. A device, a pipe or a
        // symbolic link (`/dev/null`, a FIFO, `/dev/stdout`) is written in place: renaming a
        // temporary file over it would replace it with a regular file.
        let in_place = std::fs::symlink_metadata(&path)
            .is_ok_and(|m| m.file_type().is_symlink() || (!m.is_file() && !m.is_dir()));
        if in_place {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .map_err(error)?;
            return Ok(Output {
                name: name.to_string(),
                target: None,
                encoder: Self::encoder(name, BufWriter::with_capacity(1 << 16, file))
                    .map_err(error)?,
            });
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        };
        let temp = tempfile::Builder::new()
            .prefix(".neardup-")
            // Like any new file: 0666 less the umask, not tempfile's private 0600.
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(&dir)
            .map_err(error)?;
        let file = BufWriter::with_capacity(1 << 16, temp.reopen().map_err(error)?);
        Ok(Output {
            name: name.to_string(),
            target: Some((path, temp)),
            encoder: Self::encoder(name, file).map_err(error)?,
        })
    }

    /// Compression chosen by the name's extension.
    fn encoder(name: &str, file: BufWriter<File>) -> io::Result<Encoder> {
        Ok(if name.ends_with(".gz") {
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
        if let Some((path, temp)) = self.target {
            file.sync_all().map_err(error)?;
            temp.persist(&path).map_err(|e| error(e.error))?;
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
