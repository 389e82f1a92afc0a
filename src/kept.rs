//! Kept records written to one output: [`KeptWriter`] (JSON Lines or lines of text as read,
//! WARC records as read, Parquet rows copied from their files), and what `--annotate` adds.
//! [`Kept`] is the run's kept output: one writer, or shards mirroring the inputs
//! ([`MirroredOut`](crate::mirror::MirroredOut)).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;

use neardup::output::Output;
use neardup::parquet_write::{Annotations, ParquetRows, RowCopier, write_json_rows};
use neardup::report::{AnnotatedRecord, KeptRecord};
use neardup::{Error, Format, FormatChoice, InputSet};

use crate::mirror::MirroredOut;
use crate::sink::write_json;

/// The run's kept output.
pub enum Kept {
    /// One output.
    One(KeptWriter),
    /// Shards mirroring the inputs' (`-o DIR/`).
    Mirrored(MirroredOut),
}

impl Kept {
    pub fn kept(
        &mut self,
        record: &KeptRecord<'_>,
        parquet: &mut ParquetInputs,
    ) -> Result<(), Error> {
        match self {
            Kept::One(writer) => writer.kept(record, parquet),
            Kept::Mirrored(shards) => shards.kept(record, parquet),
        }
    }

    pub fn annotated(
        &mut self,
        record: &AnnotatedRecord<'_>,
        parquet: &mut ParquetInputs,
    ) -> Result<(), Error> {
        match self {
            Kept::One(writer) => writer.annotated(record, parquet),
            Kept::Mirrored(shards) => shards.annotated(record, parquet),
        }
    }

    pub fn flush(&mut self) -> Result<(), Error> {
        match self {
            Kept::One(writer) => writer.flush(),
            Kept::Mirrored(shards) => shards.flush(),
        }
    }

    /// Why this output cannot hold what `--annotate` adds, if it cannot.
    pub fn annotation_refusal(&self) -> Option<String> {
        match self {
            Kept::One(writer) if writer.warc.is_some() => Some(
                "--annotate adds fields to every record, which a WARC output cannot hold: name a \
                 .jsonl output (-o)"
                    .into(),
            ),
            Kept::One(_) => None,
            Kept::Mirrored(shards) => shards.annotation_refusal(),
        }
    }

    /// Hands the last copied rows over and commits the output (every shard, together).
    pub fn finish(self, parquet: &mut ParquetInputs) -> Result<(), Error> {
        match self {
            Kept::One(writer) => writer.finish(parquet),
            Kept::Mirrored(shards) => shards.finish(parquet),
        }
    }
}

/// Where kept records go (one per run: its size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum KeptOut {
    /// JSON Lines (or lines of text): records as read, Parquet rows as JSON objects.
    Records(Output),
    /// A Parquet file: the kept rows of Parquet inputs of one schema.
    Parquet(ParquetRows),
}

impl KeptOut {
    pub fn write_rows(&mut self, batch: &arrow_array::RecordBatch) -> Result<(), Error> {
        match self {
            KeptOut::Records(out) => write_json_rows(out, batch),
            KeptOut::Parquet(rows) => rows.write(batch),
        }
    }

    pub fn finish(self) -> Result<(), Error> {
        match self {
            KeptOut::Records(out) => out.finish(),
            KeptOut::Parquet(rows) => rows.finish(),
        }
    }
}

/// The Parquet inputs whose kept rows are copied, by the name their records' origins carry, and
/// the copier of the one being read.
#[derive(Default)]
pub struct ParquetInputs {
    pub paths: BTreeMap<String, PathBuf>,
    pub current: Option<(String, RowCopier)>,
    /// `--annotate`: the columns each row gets.
    pub annotations: Option<Annotations>,
}

impl ParquetInputs {
    /// The copier of `file`, after the last rows of the one before were handed to `out`.
    pub fn copier(
        &mut self,
        file: &str,
        out: &mut KeptOut,
    ) -> Result<Option<&mut RowCopier>, Error> {
        let Some(path) = self.paths.get(file) else {
            return Ok(None);
        };
        if self.current.as_ref().is_none_or(|(name, _)| name != file) {
            let opened = match self.annotations {
                Some(annotations) => RowCopier::open_annotating(path, annotations)?,
                None => RowCopier::open(path)?,
            };
            if let Some((_, copier)) = self.current.replace((file.to_string(), opened)) {
                copier.finish(&mut |batch| out.write_rows(batch))?;
            }
        }
        Ok(self.current.as_mut().map(|(_, copier)| copier))
    }

    /// Hands the last rows of the input being copied to `out`.
    pub fn finish(&mut self, out: &mut KeptOut) -> Result<(), Error> {
        match self.current.take() {
            Some((_, copier)) => copier.finish(&mut |batch| out.write_rows(batch)),
            None => Ok(()),
        }
    }
}

/// The JSON Lines (or text) output of a record that is not a Parquet row, after the rows copied
/// so far were handed to `kept`. A Parquet output holds only Parquet rows (refused before the
/// run otherwise).
fn records_out<'a>(
    kept: &'a mut KeptOut,
    parquet: &mut ParquetInputs,
    file: &str,
) -> Result<&'a mut Output, Error> {
    parquet.finish(kept)?;
    match kept {
        KeptOut::Records(out) => Ok(out),
        KeptOut::Parquet(_) => Err(Error::Accounting(format!(
            "{file} is not a Parquet input, but the kept output is Parquet"
        ))),
    }
}

/// A record that is not a JSON object, as one: a WARC document as `{"id", "url", "text"}`, a line
/// of text or a file as `{"id", "text"}` (its id is its origin).
fn json_record(
    origin: &neardup::error::Origin,
    bytes: &[u8],
    format: Format,
) -> Result<serde_json::Value, Error> {
    if format.is_warc() {
        // Parsed when it was read; it parses the same unless the input changed.
        let doc = neardup::read::warc_document(bytes).map_err(|_| Error::InputChanged)?;
        return Ok(serde_json::json!({"id": doc.id, "url": doc.url, "text": doc.text}));
    }
    let text = String::from_utf8_lossy(bytes);
    Ok(serde_json::json!({"id": origin.to_string(), "text": text}))
}

/// Kept records written to one output.
pub struct KeptWriter {
    pub out: KeptOut,
    /// Set when the output is a WARC file: kept WARC records are written as records.
    pub warc: Option<WarcOutput>,
    /// Which kept records are written as JSON objects rather than as read.
    pub as_json: KeptAsJson,
}

impl KeptWriter {
    /// Writes a kept record: a Parquet row copied from its file, a WARC record as read (or as
    /// JSON), a JSON Lines record as read, a line or file as a JSON record when it must be.
    pub fn kept(
        &mut self,
        record: &KeptRecord<'_>,
        parquet: &mut ParquetInputs,
    ) -> Result<(), Error> {
        let kept = &mut self.out;
        // A Parquet row: copied, every column, from its file (rows of an input come in order).
        if let Some(copier) = parquet.copier(&record.origin.file, kept)? {
            let row = record.origin.line.saturating_sub(1);
            return copier.keep(row, &mut |batch| kept.write_rows(batch));
        }
        let out = records_out(kept, parquet, &record.origin.file)?;
        if let (true, Some(warc)) = (record.format.is_warc(), self.warc) {
            return warc.write(out, record);
        }
        // A WARC document in a JSON Lines output; a file, which has no line of its own to copy;
        // a line of text among JSON records, which would not be one: written as a JSON record.
        if record.format.is_warc() || self.as_json.applies(&record.origin.file) {
            let value = json_record(record.origin, record.bytes, record.format)?;
            return write_json(out, &value);
        }
        out.write_all(record.bytes).map_err(|e| out.error(e))?;
        out.write_all(b"\n").map_err(|e| out.error(e))
    }

    /// Writes a record with what `--annotate` adds.
    pub fn annotated(
        &mut self,
        record: &AnnotatedRecord<'_>,
        parquet: &mut ParquetInputs,
    ) -> Result<(), Error> {
        let kept = &mut self.out;
        // A Parquet row: copied with the annotation columns after its own.
        if let Some(copier) = parquet.copier(&record.origin.file, kept)? {
            let row = record.origin.line.saturating_sub(1);
            return copier.annotate(row, record, &mut |batch| kept.write_rows(batch));
        }
        let out = records_out(kept, parquet, &record.origin.file)?;
        let fields = annotation_fields(record);
        if record.format != Format::Jsonl || self.as_json.applies(&record.origin.file) {
            // Written as a JSON record, with the fields after its own: a line of text or a file
            // as `{"id", "text"}`, a WARC document as `{"id", "url", "text"}`.
            let mut value = json_record(record.origin, record.bytes, record.format)?;
            if let Some(object) = value.as_object_mut() {
                object.extend(fields);
            }
            return write_json(out, &value);
        }
        // A JSON object: its bytes as read, the fields spliced in before its closing brace.
        let refuse = |why: String| Error::Output {
            what: format!("--annotate's record {}", record.origin),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, why),
        };
        let body = record.bytes.trim_ascii_end();
        let Some(inner) = body.strip_suffix(b"}") else {
            return Err(refuse("it is not a JSON object".into()));
        };
        if let Some(name) = field_already_there(record.bytes, &fields) {
            return Err(refuse(format!(
                "it has a field \"{name}\" already, which --annotate would add again"
            )));
        }
        let mut added = serde_json::to_vec(&fields).map_err(|e| out.error(e.into()))?;
        added.remove(0);
        let empty = inner.trim_ascii_end().ends_with(b"{");
        out.write_all(inner).map_err(|e| out.error(e))?;
        if !empty {
            out.write_all(b",").map_err(|e| out.error(e))?;
        }
        out.write_all(&added).map_err(|e| out.error(e))?;
        out.write_all(b"\n").map_err(|e| out.error(e))
    }

    pub fn flush(&mut self) -> Result<(), Error> {
        match &mut self.out {
            KeptOut::Records(out) => out.flush().map_err(|e| out.error(e)),
            KeptOut::Parquet(_) => Ok(()),
        }
    }

    /// Hands the last copied Parquet rows to the output and commits it.
    pub fn finish(mut self, parquet: &mut ParquetInputs) -> Result<(), Error> {
        parquet.finish(&mut self.out)?;
        self.out.finish()
    }
}

/// The fields `--annotate` adds, in order; null where they do not apply.
fn annotation_fields(record: &AnnotatedRecord<'_>) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let duplicate = record.duplicate.as_ref();
    let mut fields = serde_json::Map::new();
    let of = duplicate.map_or(Value::Null, |d| d.of.into());
    fields.insert("duplicate_of".into(), of);
    if let Some(index) = duplicate.and_then(|d| d.of_index) {
        fields.insert("duplicate_in".into(), index.into());
    }
    let similarity = duplicate.map_or(Value::Null, |d| d.similarity.into());
    fields.insert("similarity".into(), similarity);
    let kind = duplicate.map_or(Value::Null, |d| serde_json::json!(d.kind));
    fields.insert("kind".into(), kind);
    let cluster = record.cluster.map_or(Value::Null, Value::from);
    fields.insert("cluster".into(), cluster);
    fields
}

/// The first of `fields` that the JSON object `bytes` has at its top level already.
fn field_already_there(
    bytes: &[u8],
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    // Parsed only when a field's quoted name occurs at all, which is rare.
    let quoted = |name: &str| format!("\"{name}\"");
    let mentioned = fields.keys().any(|name| {
        let needle = quoted(name);
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    });
    if !mentioned {
        return None;
    }
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes).ok()?;
    fields
        .keys()
        .find(|name| object.contains_key(*name))
        .cloned()
}

/// A kept output that is a WARC file (`.warc`, `.wet`, either with `.gz`): records are written
/// as read (headers, payload, CRLF CRLF), each its own gzip member when `gzip`: the member it
/// was read from when it was the whole of one, else compressed anew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarcOutput {
    pub gzip: bool,
}

impl WarcOutput {
    /// What a kept output named `name` is: `Ok(None)` for anything but a WARC name; an error for
    /// a WARC name when an input is not WARC, or for zstd.
    pub fn of(name: &str, inputs: &InputSet) -> Result<Option<WarcOutput>, Error> {
        let Some(warc) = Self::for_name(name)? else {
            return Ok(None);
        };
        if let Some(other) = (0..inputs.inputs().len()).find(|&i| !inputs.format_of(i).is_warc()) {
            return Err(Error::Output {
                what: name.to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "a WARC output holds WARC records, but input {} is {}: write JSON Lines instead (-o kept.jsonl)",
                        inputs.inputs()[other],
                        inputs.format_of(other)
                    ),
                ),
            });
        }
        Ok(Some(warc))
    }

    /// What an output named `name` is by its name alone: `Ok(None)` for anything but a WARC
    /// name; an error for a WARC name with zstd.
    pub fn for_name(name: &str) -> Result<Option<WarcOutput>, Error> {
        let lower = name.to_ascii_lowercase();
        let (stem, gzip, zstd) = match (lower.strip_suffix(".gz"), lower.strip_suffix(".zst")) {
            (Some(stem), _) => (stem, true, false),
            (_, Some(stem)) => (stem, false, true),
            _ => (lower.as_str(), false, false),
        };
        if !(stem.ends_with(".warc") || stem.ends_with(".wet")) {
            return Ok(None);
        }
        let refuse = |why: String| Error::Output {
            what: name.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
        };
        if zstd {
            return Err(refuse(
                "WARC output is written plain or gzipped (.warc, .warc.gz), not with zstd".into(),
            ));
        }
        Ok(Some(WarcOutput { gzip }))
    }

    pub fn write(self, out: &mut Output, record: &KeptRecord<'_>) -> Result<(), Error> {
        let written = match (self.gzip, record.stored) {
            (false, _) => out.write_all(record.bytes),
            (true, Some(member)) => out.write_all(member),
            (true, None) => {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(record.bytes)
                    .and_then(|()| gz.finish())
                    .and_then(|member| out.write_all(&member))
            }
        };
        written.map_err(|e| out.error(e))
    }
}

/// Which kept records are written as JSON objects `{"id", "text"}` rather than as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptAsJson {
    /// None: every input is JSON Lines (or Parquet), or every input is lines of text.
    Never,
    /// Every one: documents of the files format.
    Always,
    /// Records of these inputs (lines of text, when some inputs are JSON Lines).
    Inputs(BTreeSet<String>),
}

impl KeptAsJson {
    pub fn of(inputs: &InputSet) -> KeptAsJson {
        if inputs.format() == FormatChoice::All(Format::Files) {
            return KeptAsJson::Always;
        }
        let formats: Vec<Format> = (0..inputs.inputs().len())
            .map(|i| inputs.format_of(i))
            .collect();
        // WARC records and Parquet rows go into a JSON Lines output as objects: lines of text
        // beside them too.
        let objects =
            |format: &Format| matches!(format, Format::Jsonl | Format::Parquet) || format.is_warc();
        if !formats.iter().any(objects) {
            return KeptAsJson::Never;
        }
        let text: BTreeSet<String> = inputs
            .inputs()
            .iter()
            .zip(&formats)
            .filter(|(_, format)| !objects(format))
            .map(|(input, _)| input.display_name())
            .collect();
        if text.is_empty() {
            KeptAsJson::Never
        } else {
            KeptAsJson::Inputs(text)
        }
    }

    fn applies(&self, file: &str) -> bool {
        match self {
            KeptAsJson::Never => false,
            KeptAsJson::Always => true,
            KeptAsJson::Inputs(names) => names.contains(file),
        }
    }
}
