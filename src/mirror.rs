//! Kept records written as shards mirroring the inputs' (`-o DIR/`), as datatrove and Hugging Face
//! datasets users keep corpora: each input's kept records go to `DIR/<its relative name>` (below
//! the directory it was found in, below a pattern's part without wildcards, or its own file name),
//! in its own format and compression: JSON Lines and lines of text as read, WARC records as read
//! (a gzip member each in a `.gz` shard), Parquet rows with every column in the input's schema,
//! and with `--format files` one file per kept document. Every input gets its shard, an empty one
//! when nothing of it was kept (except documents of the files format, which are files of their
//! own). The shards are committed together ([`OutputDir`]): an interrupted run leaves none.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use neardup::output::{OutputDir, PathUse, RunPath};
use neardup::parquet_write::{Annotations, ParquetRows, TableShape};
use neardup::report::{AnnotatedRecord, KeptRecord};
use neardup::{Error, Format, Input, InputSet};

use crate::kept::{KeptAsJson, KeptOut, KeptWriter, ParquetInputs, WarcOutput};

/// Whether `-o NAME` asks for shards: the name ends in `/`, or names a directory.
pub fn is_mirror_name(name: &str) -> bool {
    name != "-" && (name.ends_with('/') || Path::new(name).is_dir())
}

/// How one input's shard is written.
#[derive(Debug, Clone)]
enum ShardKind {
    /// JSON Lines or lines of text: records as read, compressed as the name says.
    Records,
    /// WARC or WET: records as read.
    Warc(WarcOutput),
    /// Parquet: the kept rows, every column, in the input's schema.
    Parquet(TableShape),
    /// The files format: each kept document a file of its own, at the relative name (a file
    /// input) or below it (a directory input, whose files' names are kept).
    Files { directory: Option<String> },
}

/// One input's shard.
#[derive(Debug, Clone)]
struct Shard {
    /// The name its records' origins carry.
    name: String,
    relative: PathBuf,
    format: Format,
    kind: ShardKind,
}

impl Shard {
    /// Whether a record from `file` is of this input.
    fn holds(&self, file: &str) -> bool {
        match &self.kind {
            ShardKind::Files {
                directory: Some(dir),
            } => file
                .strip_prefix(dir.as_str())
                .is_some_and(|rest| rest.starts_with('/')),
            _ => file == self.name,
        }
    }
}

/// The plan of a mirrored output: a shard per input, checked before the run.
#[derive(Debug, Clone)]
pub struct MirrorPlan {
    name: String,
    shards: Vec<Shard>,
}

impl MirrorPlan {
    /// The shards of `inputs` in the directory `name`. Refuses stdin and streams (no name to
    /// mirror), two inputs of one relative name, a zstd WARC shard, and a directory of documents
    /// (the files format) that holds the output directory or lies in it.
    /// With `annotations`, Parquet shards get those columns.
    pub fn new(
        name: &str,
        inputs: &InputSet,
        annotations: Option<Annotations>,
    ) -> anyhow::Result<MirrorPlan> {
        let mut shards = Vec::new();
        let mut seen: BTreeMap<PathBuf, String> = BTreeMap::new();
        let out_dir = neardup::output::resolved(Path::new(name));
        for (index, input) in inputs.inputs().iter().enumerate() {
            let Input::Path(path) = input else {
                anyhow::bail!(
                    "-o {name} writes a shard for each input file, and standard input has no name to give one; name a file (-o kept.jsonl)"
                );
            };
            let meta = std::fs::metadata(path).ok();
            let directory = meta.as_ref().is_some_and(|m| m.is_dir());
            if !meta.as_ref().is_some_and(|m| m.is_file() || m.is_dir()) {
                anyhow::bail!(
                    "-o {name} writes a shard for each input file, and {input} is not a regular file; name a file (-o kept.jsonl)"
                );
            }
            let Some(relative) = inputs.relative_name(index) else {
                anyhow::bail!("-o {name}: {input} has no name to give its shard");
            };
            let format = inputs.format_of(index);
            let kind = match format {
                Format::Jsonl | Format::Lines => ShardKind::Records,
                Format::Warc | Format::Wet => {
                    let shard = relative.display().to_string();
                    match WarcOutput::for_name(&shard)? {
                        Some(warc) => ShardKind::Warc(warc),
                        // A WARC input whose name says nothing: its records as read.
                        None => ShardKind::Warc(WarcOutput { gzip: false }),
                    }
                }
                Format::Parquet => {
                    let shape = TableShape::of(path)?;
                    ShardKind::Parquet(match annotations {
                        Some(annotations) => shape.annotated(annotations, &input.display_name())?,
                        None => shape,
                    })
                }
                Format::Files => {
                    if directory {
                        let dir = neardup::output::resolved(path);
                        if out_dir.starts_with(&dir) || dir.starts_with(&out_dir) {
                            anyhow::bail!(
                                "-o {name} and the directory of documents {input} hold one another: the kept documents would be written among the ones read; name another directory"
                            );
                        }
                    }
                    ShardKind::Files {
                        directory: directory.then(|| input.display_name()),
                    }
                }
            };
            let relative = match kind {
                // The documents of a directory keep their names below it.
                ShardKind::Files { directory: Some(_) } => PathBuf::new(),
                _ => relative.to_path_buf(),
            };
            let named = !relative.as_os_str().is_empty();
            if let Some(first) = named
                .then(|| seen.insert(relative.clone(), input.display_name()))
                .flatten()
            {
                anyhow::bail!(
                    "-o {name}: inputs {first} and {input} would both be written to {}; give each its own run or directory",
                    Path::new(name).join(&relative).display()
                );
            }
            shards.push(Shard {
                name: input.display_name(),
                relative,
                format,
                kind,
            });
        }
        Ok(MirrorPlan {
            name: name.to_string(),
            shards,
        })
    }

    /// The shards' paths, for the clash checks before the run (documents of a directory input
    /// are checked by directory: see [`MirrorPlan::new`]).
    pub fn paths(&self) -> impl Iterator<Item = RunPath> + '_ {
        self.shards
            .iter()
            .filter(|s| !s.relative.as_os_str().is_empty())
            .map(|shard| RunPath {
                role: format!("-o {}'s shard of {}", self.name, shard.name),
                usage: PathUse::Output,
                path: Path::new(&self.name)
                    .join(&shard.relative)
                    .display()
                    .to_string(),
            })
    }

    /// Whether a WARC shard is gzipped, so that records read from gzipped WARC inputs keep
    /// their members to copy.
    pub fn copies_gzip_members(&self) -> bool {
        self.shards
            .iter()
            .any(|s| matches!(s.kind, ShardKind::Warc(WarcOutput { gzip: true })))
    }

    /// Starts writing: the staging directory is made now.
    pub fn open(self) -> Result<MirroredOut, Error> {
        Ok(MirroredOut {
            dir: OutputDir::create(&self.name)?,
            shards: self.shards,
            open: None,
            next: 0,
        })
    }
}

/// Kept records being written as shards.
pub struct MirroredOut {
    dir: OutputDir,
    shards: Vec<Shard>,
    /// The shard being written, and its writer.
    open: Option<(usize, KeptWriter)>,
    /// The first shard not begun yet.
    next: usize,
}

impl MirroredOut {
    /// Why the shards cannot hold what `--annotate` adds, if they cannot: only JSON Lines (and
    /// Parquet) shards can.
    pub fn annotation_refusal(&self) -> Option<String> {
        self.shards
            .iter()
            .find(|s| !matches!(s.format, Format::Jsonl | Format::Parquet))
            .map(|s| {
                format!(
                    "--annotate with -o {}/ writes each shard in its input's format, and {} is {}, which cannot hold the added fields; name one output (-o annotated.jsonl)",
                    self.dir_name().trim_end_matches('/'),
                    s.name,
                    s.format
                )
            })
    }

    fn dir_name(&self) -> String {
        self.dir.name().to_string()
    }

    pub fn kept(
        &mut self,
        record: &KeptRecord<'_>,
        parquet: &mut ParquetInputs,
    ) -> Result<(), Error> {
        let index = self.shard_of(&record.origin.file)?;
        if let ShardKind::Files { directory } = &self.shards[index].kind {
            return self.write_document(index, directory.clone(), record, parquet);
        }
        self.writer(index, parquet)?.kept(record, parquet)
    }

    pub fn annotated(
        &mut self,
        record: &AnnotatedRecord<'_>,
        parquet: &mut ParquetInputs,
    ) -> Result<(), Error> {
        let index = self.shard_of(&record.origin.file)?;
        self.writer(index, parquet)?.annotated(record, parquet)
    }

    pub fn flush(&mut self) -> Result<(), Error> {
        match &mut self.open {
            Some((_, writer)) => writer.flush(),
            None => Ok(()),
        }
    }

    /// Writes the shards not begun yet (empty), then commits them all.
    pub fn finish(mut self, parquet: &mut ParquetInputs) -> Result<(), Error> {
        self.close(parquet)?;
        while self.next < self.shards.len() {
            let index = self.next;
            self.begin(index)?;
            self.close(parquet)?;
        }
        self.dir.commit()
    }

    /// The shard of the input `file` is read from: the one being written or a later one
    /// (records come in input order).
    fn shard_of(&self, file: &str) -> Result<usize, Error> {
        // The shard begun last may still be receiving (documents of the files format).
        let from = self
            .open
            .as_ref()
            .map_or(self.next.saturating_sub(1), |(index, _)| *index);
        (from..self.shards.len())
            .find(|&i| self.shards[i].holds(file))
            .ok_or_else(|| {
                Error::Accounting(format!(
                    "a kept record of {file} came after the shards of later inputs, or from no input"
                ))
            })
    }

    /// The writer of shard `index`, after the ones before it were finished (empty ones written).
    fn writer(
        &mut self,
        index: usize,
        parquet: &mut ParquetInputs,
    ) -> Result<&mut KeptWriter, Error> {
        if self.open.as_ref().is_none_or(|(open, _)| *open != index) {
            self.close(parquet)?;
            while self.next < index {
                let empty = self.next;
                self.begin(empty)?;
                self.close(parquet)?;
            }
            self.begin(index)?;
        }
        match &mut self.open {
            Some((_, writer)) => Ok(writer),
            None => Err(Error::Accounting("no shard is open".into())),
        }
    }

    /// Opens shard `index` (the next one): documents of the files format have no shard file.
    fn begin(&mut self, index: usize) -> Result<(), Error> {
        self.next = index + 1;
        let shard = &self.shards[index];
        let out = match &shard.kind {
            ShardKind::Files { .. } => return Ok(()),
            ShardKind::Records => KeptOut::Records(self.dir.file(&shard.relative, true)?),
            ShardKind::Warc(_) => KeptOut::Records(self.dir.file(&shard.relative, false)?),
            ShardKind::Parquet(shape) => {
                let out = self.dir.file(&shard.relative, false)?;
                let name = self.dir.target(&shard.relative).display().to_string();
                KeptOut::Parquet(ParquetRows::create(out, &name, shape)?)
            }
        };
        let warc = match shard.kind {
            ShardKind::Warc(warc) => Some(warc),
            _ => None,
        };
        self.open = Some((
            index,
            KeptWriter {
                out,
                warc,
                as_json: KeptAsJson::Never,
            },
        ));
        Ok(())
    }

    /// Finishes the open shard: its last copied rows, its footer or compression.
    fn close(&mut self, parquet: &mut ParquetInputs) -> Result<(), Error> {
        match self.open.take() {
            Some((_, writer)) => writer.finish(parquet),
            None => Ok(()),
        }
    }

    /// A kept document of the files format: a file of its own, named as the input names it.
    fn write_document(
        &mut self,
        index: usize,
        directory: Option<String>,
        record: &KeptRecord<'_>,
        parquet: &mut ParquetInputs,
    ) -> Result<(), Error> {
        self.close(parquet)?;
        while self.next <= index {
            let shard = self.next;
            self.begin(shard)?;
        }
        let relative = match directory {
            Some(dir) => PathBuf::from(record.origin.file[dir.len()..].trim_start_matches('/')),
            None => self.shards[index].relative.clone(),
        };
        let mut out = self.dir.file(&relative, true)?;
        out.write_all(record.bytes).map_err(|e| out.error(e))?;
        out.finish()
    }
}
