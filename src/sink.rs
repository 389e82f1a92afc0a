//! The command line's [`Sink`]: writes what the pipeline reports to the files the user named, and
//! drives the progress bar.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use neardup::error::{Origin, Rejection};
use neardup::report::{AnnotatedRecord, ClusterReport, DocId, KeptRecord, Progress, Removal, Sink};
use neardup::{Error, Format, FormatChoice, Input, InputSet};

use neardup::output::Output;
use neardup::parquet_write::{ParquetRows, ReportTable, RowCopier, write_json_rows};

/// Where kept records go (one per run: its size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum KeptOut {
    /// JSON Lines (or lines of text): records as read, Parquet rows as JSON objects.
    Records(Output),
    /// A Parquet file: the kept rows of Parquet inputs of one schema.
    Parquet(ParquetRows),
}

impl KeptOut {
    fn write_rows(&mut self, batch: &arrow_array::RecordBatch) -> Result<(), Error> {
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

/// Where removals or clusters go: JSON Lines, or a Parquet table (one each per run).
#[allow(clippy::large_enum_variant)]
pub enum TableOut {
    Json(Output),
    Parquet(ReportTable),
}

impl TableOut {
    fn push<T: serde::Serialize>(&mut self, value: &T) -> Result<(), Error> {
        match self {
            TableOut::Json(out) => write_json(out, value),
            TableOut::Parquet(table) => table.push(value),
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        match self {
            TableOut::Json(out) => out.flush().map_err(|e| out.error(e)),
            TableOut::Parquet(_) => Ok(()),
        }
    }

    pub fn finish(self) -> Result<(), Error> {
        match self {
            TableOut::Json(out) => out.finish(),
            TableOut::Parquet(table) => table.finish(),
        }
    }
}

/// The Parquet inputs whose kept rows are copied, by the name their records' origins carry, and
/// the copier of the one being read.
#[derive(Default)]
pub struct ParquetInputs {
    pub paths: BTreeMap<String, PathBuf>,
    pub current: Option<(String, RowCopier)>,
}

impl ParquetInputs {
    /// The copier of `file`, after the last rows of the one before were handed to `out`.
    fn copier(&mut self, file: &str, out: &mut KeptOut) -> Result<Option<&mut RowCopier>, Error> {
        let Some(path) = self.paths.get(file) else {
            return Ok(None);
        };
        if self.current.as_ref().is_none_or(|(name, _)| name != file) {
            let opened = RowCopier::open(path)?;
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

/// How many rejections are printed to stderr before the rest go only to --rejected.
const REJECTIONS_SHOWN: u64 = 10;

/// Writes what the pipeline reports to the files the user named.
pub struct CliSink {
    /// Which kept records are written as JSON objects rather than as read.
    pub kept_as_json: KeptAsJson,
    /// Set when the kept output is a WARC file: kept WARC records are written as records.
    pub kept_warc: Option<WarcOutput>,
    pub kept: Option<KeptOut>,
    /// The Parquet inputs, whose kept rows are copied from the files whole.
    pub parquet: ParquetInputs,
    pub removed: Option<TableOut>,
    pub clusters: Option<TableOut>,
    pub rejected: Option<Output>,
    /// --stats-json, written when the run ends.
    pub stats_json: Option<Output>,
    /// --report's page, written when the run ends.
    pub report_page: Option<Output>,
    pub rejections: u64,
    pub quiet: bool,
    pub bar: Option<ProgressBar>,
    /// Where each input ends in the byte count, for showing the shard being read.
    pub shards: Option<Shards>,
    /// What `--report` needs, gathered as clusters arrive.
    pub report: Option<ReportCollector>,
}

/// Clusters shown in full in a report.
pub const REPORT_CLUSTERS: usize = 10;

/// Cluster sizes and the largest clusters, for `--report`.
#[derive(Debug, Default)]
pub struct ReportCollector {
    pub sizes: BTreeMap<u64, u64>,
    pub top: Vec<TopEntry>,
}

/// One of the largest clusters: its kept document and its first other member.
#[derive(Debug)]
pub struct TopEntry {
    pub size: u64,
    pub kept_id: String,
    pub kept_doc: DocId,
    pub member_id: String,
    pub member_doc: DocId,
    pub similarity: f64,
}

impl ReportCollector {
    fn add(&mut self, cluster: &ClusterReport<'_>) {
        *self
            .sizes
            .entry(neardup::html::size_bucket(cluster.size as u64))
            .or_default() += 1;
        if self.top.len() >= REPORT_CLUSTERS {
            return;
        }
        let Some(kept_doc) = cluster.kept_doc else {
            return;
        };
        if let Some(member) = cluster.members.iter().find(|m| m.doc != kept_doc) {
            self.top.push(TopEntry {
                size: cluster.size as u64,
                kept_id: cluster.kept.to_string(),
                kept_doc,
                member_id: member.id.to_string(),
                member_doc: member.doc,
                similarity: member.similarity,
            });
        }
    }
}

pub fn write_json<T: serde::Serialize>(out: &mut Output, value: &T) -> Result<(), Error> {
    serde_json::to_writer(&mut *out, value).map_err(|e| out.error(e.into()))?;
    out.write_all(b"\n").map_err(|e| out.error(e))
}

impl Sink for CliSink {
    fn rejected(&mut self, rejection: &Rejection) -> Result<(), Error> {
        self.rejections += 1;
        if !self.quiet && self.rejections <= REJECTIONS_SHOWN {
            let message = format!("rejected {rejection}");
            match &self.bar {
                Some(bar) => bar.println(message),
                None => eprintln!("{message}"),
            }
            if self.rejections == REJECTIONS_SHOWN {
                eprintln!("(further rejections are counted, not shown; --rejected FILE lists all)");
            }
        }
        if let Some(out) = &mut self.rejected {
            #[derive(serde::Serialize)]
            struct Line<'a> {
                file: &'a str,
                line: u64,
                /// A WARC record's byte offset (its gzip member's).
                #[serde(skip_serializing_if = "Option::is_none")]
                offset: Option<u64>,
                reason: String,
            }
            let Origin { file, line, offset } = &rejection.origin;
            write_json(
                out,
                &Line {
                    file,
                    line: *line,
                    offset: *offset,
                    reason: rejection.reason.to_string(),
                },
            )?;
        }
        Ok(())
    }

    fn progress(&mut self, progress: &Progress) {
        if let Some(bar) = &self.bar {
            let shard = self
                .shards
                .as_ref()
                .map(|shards| shards.describe(progress.bytes))
                .unwrap_or_default();
            match progress.total_bytes {
                Some(total) => {
                    bar.set_length(total);
                    bar.set_position(progress.bytes);
                }
                None => bar.set_position(progress.bytes),
            }
            let seconds = bar.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{} docs {:.0}/s{shard}",
                progress.docs,
                progress.docs as f64 / seconds
            ));
        }
    }

    fn removed(&mut self, removal: &Removal<'_>) -> Result<(), Error> {
        match &mut self.removed {
            Some(out) => out.push(removal),
            None => Ok(()),
        }
    }

    fn cluster(&mut self, cluster: &ClusterReport<'_>) -> Result<(), Error> {
        if let Some(report) = &mut self.report {
            report.add(cluster);
        }
        match &mut self.clusters {
            Some(out) => out.push(cluster),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        if let Some(KeptOut::Records(out)) = &mut self.kept {
            out.flush().map_err(|e| out.error(e))?;
        }
        if let Some(out) = &mut self.removed {
            out.flush()?;
        }
        Ok(())
    }

    fn wants_kept_records(&self) -> bool {
        self.kept.is_some()
    }

    fn kept(&mut self, record: &KeptRecord<'_>) -> Result<(), Error> {
        let Some(kept) = &mut self.kept else {
            return Ok(());
        };
        // A Parquet row: copied, every column, from its file (rows of an input come in order).
        if let Some(copier) = self.parquet.copier(&record.origin.file, kept)? {
            let row = record.origin.line.saturating_sub(1);
            return copier.keep(row, &mut |batch| kept.write_rows(batch));
        }
        self.parquet.finish(kept)?;
        let KeptOut::Records(out) = kept else {
            // A Parquet output holds only Parquet rows (refused before the run otherwise).
            return Err(Error::Accounting(format!(
                "{} is not a Parquet input, but the kept output is Parquet",
                record.origin.file
            )));
        };
        if record.format.is_warc() {
            return match self.kept_warc {
                Some(warc) => warc.write(out, record),
                None => {
                    // Parsed when it was read; it parses the same unless the input changed.
                    let doc = neardup::read::warc_document(record.bytes)
                        .map_err(|_| Error::InputChanged)?;
                    let value = serde_json::json!({"id": doc.id, "url": doc.url, "text": doc.text});
                    write_json(out, &value)
                }
            };
        }
        if self.kept_as_json.applies(&record.origin.file) {
            // A file has no line of its own to copy, and a line of text among JSON records
            // would not be one: write it as a JSON record.
            let text = String::from_utf8_lossy(record.bytes);
            let value = serde_json::json!({"id": record.origin.to_string(), "text": text});
            return write_json(out, &value);
        }
        out.write_all(record.bytes).map_err(|e| out.error(e))?;
        out.write_all(b"\n").map_err(|e| out.error(e))
    }

    fn annotated(&mut self, record: &AnnotatedRecord<'_>) -> Result<(), Error> {
        let Some(kept) = &mut self.kept else {
            return Ok(());
        };
        // Parquet inputs and outputs are refused with --annotate before the run.
        let (KeptOut::Records(out), false) = (kept, record.format == Format::Parquet) else {
            return Err(Error::Accounting(
                "--annotate reached a Parquet record or output, which it refuses".into(),
            ));
        };
        let fields = annotation_fields(record);
        if record.format != Format::Jsonl || self.kept_as_json.applies(&record.origin.file) {
            // Written as a JSON record, with the fields after its own: a line of text or a file
            // as `{"id", "text"}`, a WARC document as `{"id", "url", "text"}`.
            let mut value = match record.format.is_warc() {
                true => {
                    let doc = neardup::read::warc_document(record.bytes)
                        .map_err(|_| Error::InputChanged)?;
                    serde_json::json!({"id": doc.id, "url": doc.url, "text": doc.text})
                }
                false => serde_json::json!({
                    "id": record.origin.to_string(),
                    "text": String::from_utf8_lossy(record.bytes),
                }),
            };
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
        if let Some(other) = (0..inputs.inputs().len()).find(|&i| !inputs.format_of(i).is_warc()) {
            return Err(refuse(format!(
                "a WARC output holds WARC records, but input {} is {}: write JSON Lines instead (-o kept.jsonl)",
                inputs.inputs()[other],
                inputs.format_of(other)
            )));
        }
        Ok(Some(WarcOutput { gzip }))
    }

    fn write(self, out: &mut Output, record: &KeptRecord<'_>) -> Result<(), Error> {
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

/// The inputs of a run of several, with where each ends in the bytes read as stored: the
/// progress bar's "shard k/N: name" is where the byte count stands (the reader runs a batch or
/// two ahead of the documents counted).
#[derive(Debug, Clone)]
pub struct Shards {
    ends: Vec<u64>,
    names: Vec<String>,
}

impl Shards {
    /// `None` for one input, or when a size is unknown (a stream).
    pub fn of(inputs: &InputSet) -> Option<Shards> {
        if inputs.inputs().len() < 2 {
            return None;
        }
        let sizes = inputs.sizes()?;
        let ends = sizes
            .iter()
            .scan(0u64, |end, size| {
                *end += size;
                Some(*end)
            })
            .collect();
        let names = inputs
            .inputs()
            .iter()
            .map(|input| match input {
                Input::Path(p) => p.file_name().map_or_else(
                    || p.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
                Input::Stdin => "<stdin>".to_string(),
            })
            .collect();
        Some(Shards { ends, names })
    }

    /// ` · shard k/N name` for the input being read after `bytes`, with the shards done.
    fn describe(&self, bytes: u64) -> String {
        // The first input not wholly read (an empty input ends where it starts).
        let done = self
            .ends
            .partition_point(|&end| end <= bytes)
            .min(self.ends.len());
        match self.names.get(done) {
            Some(name) => format!(" · shard {}/{} {name}", done + 1, self.names.len()),
            None => format!(" · {} shards read", self.names.len()),
        }
    }
}

pub fn progress_bar(quiet: bool, total: Option<u64>) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{bar:24} {percent:>3}% {binary_bytes_per_sec:>11} ETA {eta:>3} {msg}",
            )
            .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes:>10} {binary_bytes_per_sec:>11} {msg}")
                .expect("valid template"),
        ),
    };
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::Shards;

    #[test]
    fn issue12_the_shard_shown_is_where_the_byte_count_stands() {
        let shards = Shards {
            ends: vec![10, 10, 25],
            names: vec!["a".into(), "empty".into(), "c".into()],
        };
        assert_eq!(shards.describe(0), " · shard 1/3 a");
        assert_eq!(shards.describe(9), " · shard 1/3 a");
        // An empty shard is passed at once.
        assert_eq!(shards.describe(10), " · shard 3/3 c");
        assert_eq!(shards.describe(25), " · 3 shards read");
    }
}
