//! Parquet and Arrow outputs.
//!
//! - [`RowCopier`]: the kept rows of one Parquet input, every column, in input order. It reads the
//!   file again row group by row group (the same batches framing read,
//!   [`RowGroupBatches`]) and filters each batch by the rows it was told are kept
//!   (`arrow_select::filter::filter_record_batch`), so no column but the ones a run reads ever
//!   goes through a record's bytes.
//! - [`ParquetRows`]: a Parquet output of such rows (zstd, row groups of at most
//!   [`MAX_ROW_GROUP_BYTES`], the input's schema and key-value metadata).
//! - [`write_json_rows`]: such rows as JSON Lines, one object a row with every column.
//! - [`ReportTable`]: removals or clusters as a Parquet table of a fixed schema, the fields of
//!   their JSON records.
//! - [`Annotations`]: the columns `--annotate` adds to every row (`cluster`, `duplicate_in`
//!   with an index, `duplicate_of`, `kind`, `similarity`), which a [`RowCopier`] appends.
//!
//! Every writer writes into an [`Output`], so its file is committed atomically like any other.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, UInt64Builder};
use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::error::Error;
use crate::output::Output;
use crate::read::parquet_read::{BatchAt, GroupEvent, RowGroupBatches, open_metadata};
use crate::report::AnnotatedRecord;

/// The largest row group a Parquet output buffers before writing it (the writer holds a whole
/// row group in memory).
pub const MAX_ROW_GROUP_BYTES: usize = 128 << 20;

/// Rows of a removals or clusters table gathered before they are written.
const REPORT_BATCH_ROWS: usize = 16 * 1024;

/// The key under which Arrow stores its schema in a Parquet file's metadata; the writer adds its
/// own, so the input's is not copied.
const ARROW_SCHEMA_KEY: &str = "ARROW:schema";

fn read_error(path: &Path, source: io::Error) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        source,
    }
}

/// A Parquet file's schema (with the schema's own metadata) and its key-value metadata (without
/// Arrow's copy of the schema).
#[derive(Debug, Clone)]
pub struct TableShape {
    pub schema: SchemaRef,
    pub key_value: Option<Vec<KeyValue>>,
}

impl TableShape {
    /// The shape of the Parquet file at `path`.
    pub fn of(path: &Path) -> Result<TableShape, Error> {
        let file = File::open(path).map_err(|e| read_error(path, e))?;
        let meta = open_metadata(&file).map_err(|e| read_error(path, e))?;
        Ok(Self::from_meta(&meta))
    }

    /// This shape with the columns of `annotations` after its own. Refuses a schema that has
    /// one of those columns already (`name` is the file, for the message).
    pub fn annotated(&self, annotations: Annotations, name: &str) -> Result<TableShape, Error> {
        let added = annotations.fields();
        if let Some(field) = added
            .iter()
            .find(|f| self.schema.field_with_name(f.name()).is_ok())
        {
            return Err(Error::Output {
                what: name.to_string(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "it has a column \"{}\" already, which the annotations would add again",
                        field.name()
                    ),
                ),
            });
        }
        let fields: Vec<Arc<Field>> = self
            .schema
            .fields()
            .iter()
            .cloned()
            .chain(added.into_iter().map(Arc::new))
            .collect();
        Ok(TableShape {
            schema: Arc::new(Schema::new_with_metadata(
                fields,
                self.schema.metadata().clone(),
            )),
            key_value: self.key_value.clone(),
        })
    }

    fn from_meta(meta: &parquet::arrow::arrow_reader::ArrowReaderMetadata) -> TableShape {
        let key_value = meta
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .map(|kv| {
                kv.iter()
                    .filter(|kv| kv.key != ARROW_SCHEMA_KEY)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .filter(|kv| !kv.is_empty());
        TableShape {
            schema: meta.schema().clone(),
            key_value,
        }
    }
}

/// The columns `--annotate` adds to each row, in this order (the order of the fields it adds
/// to a JSON record): `cluster` (uint64), `duplicate_in` (string, only when a run reads an
/// index), `duplicate_of` (string), `kind` (string: `exact`, `near`), `similarity` (float64);
/// null where they do not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Annotations {
    /// Whether the `duplicate_in` column is there: the run reads an index, whose documents a
    /// record may duplicate.
    pub duplicate_in: bool,
}

impl Annotations {
    fn fields(self) -> Vec<Field> {
        let mut fields = vec![Field::new("cluster", DataType::UInt64, true)];
        if self.duplicate_in {
            fields.push(Field::new("duplicate_in", DataType::Utf8, true));
        }
        fields.extend([
            Field::new("duplicate_of", DataType::Utf8, true),
            Field::new("kind", DataType::Utf8, true),
            Field::new("similarity", DataType::Float64, true),
        ]);
        fields
    }
}

/// The annotation columns of one batch's rows, built as rows are annotated.
struct NoteColumns {
    cluster: UInt64Builder,
    duplicate_in: Option<StringBuilder>,
    duplicate_of: StringBuilder,
    kind: StringBuilder,
    similarity: Float64Builder,
}

impl NoteColumns {
    fn new(annotations: Annotations) -> NoteColumns {
        NoteColumns {
            cluster: UInt64Builder::new(),
            duplicate_in: annotations.duplicate_in.then(StringBuilder::new),
            duplicate_of: StringBuilder::new(),
            kind: StringBuilder::new(),
            similarity: Float64Builder::new(),
        }
    }

    fn push(&mut self, record: &AnnotatedRecord<'_>) {
        let duplicate = record.duplicate.as_ref();
        self.cluster.append_option(record.cluster);
        if let Some(column) = &mut self.duplicate_in {
            column.append_option(duplicate.and_then(|d| d.of_index));
        }
        self.duplicate_of.append_option(duplicate.map(|d| d.of));
        self.kind.append_option(duplicate.map(|d| match d.kind {
            crate::report::DuplicateKind::Exact => "exact",
            crate::report::DuplicateKind::Near => "near",
        }));
        self.similarity
            .append_option(duplicate.map(|d| d.similarity));
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.cluster.finish())];
        if let Some(column) = &mut self.duplicate_in {
            columns.push(Arc::new(column.finish()));
        }
        columns.push(Arc::new(self.duplicate_of.finish()));
        columns.push(Arc::new(self.kind.finish()));
        columns.push(Arc::new(self.similarity.finish()));
        columns
    }
}

/// Copies the kept rows of one Parquet input, in order (or every row with its annotations).
pub struct RowCopier {
    path: std::path::PathBuf,
    batches: RowGroupBatches,
    /// The batch holding the rows asked for last, and which of its rows are kept.
    pending: Option<Pending>,
    /// Set when rows are annotated: the columns added, and the shape of the batches handed on.
    annotations: Option<(Annotations, SchemaRef)>,
}

struct Pending {
    at: BatchAt,
    batch: RecordBatch,
    kept: Vec<bool>,
    /// The annotations of the kept rows, in order, when rows are annotated.
    notes: Option<NoteColumns>,
}

impl RowCopier {
    /// Opens the Parquet file at `path` to copy rows of.
    pub fn open(path: &Path) -> Result<RowCopier, Error> {
        let file = File::open(path).map_err(|e| read_error(path, e))?;
        let meta = open_metadata(&file).map_err(|e| read_error(path, e))?;
        Ok(RowCopier {
            path: path.to_path_buf(),
            batches: RowGroupBatches::new(file, meta, ProjectionMask::all(), None)
                .map_err(|e| read_error(path, e))?,
            pending: None,
            annotations: None,
        })
    }

    /// Opens the Parquet file at `path` to copy rows of with the columns of `annotations`
    /// appended ([`RowCopier::annotate`]).
    pub fn open_annotating(path: &Path, annotations: Annotations) -> Result<RowCopier, Error> {
        let mut copier = Self::open(path)?;
        let shape = TableShape::of(path)?.annotated(annotations, &path.display().to_string())?;
        copier.annotations = Some((annotations, shape.schema));
        Ok(copier)
    }

    /// Row `row` is written with what `record` says of it (a copier opened with
    /// [`RowCopier::open_annotating`]); otherwise as [`RowCopier::keep`].
    pub fn annotate(
        &mut self,
        row: u64,
        record: &AnnotatedRecord<'_>,
        write: &mut dyn FnMut(&RecordBatch) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.keep(row, write)?;
        if let Some(notes) = self.pending.as_mut().and_then(|p| p.notes.as_mut()) {
            notes.push(record);
        }
        Ok(())
    }

    /// Row `row` of the file (counted from 0) is kept. Rows are given in increasing order; every
    /// batch passed on the way is handed, filtered, to `write`.
    pub fn keep(
        &mut self,
        row: u64,
        write: &mut dyn FnMut(&RecordBatch) -> Result<(), Error>,
    ) -> Result<(), Error> {
        loop {
            if let Some(pending) = &mut self.pending {
                let start = pending.at.row_in_file;
                let end = start + pending.batch.num_rows() as u64;
                if (start..end).contains(&row) {
                    let seen = std::mem::replace(&mut pending.kept[(row - start) as usize], true);
                    if seen {
                        return Err(self.changed("a row was asked for twice"));
                    }
                    return Ok(());
                }
                if row < start {
                    return Err(self.changed("rows were asked for out of order"));
                }
            }
            self.flush(write)?;
            loop {
                match self.batches.next() {
                    Some(GroupEvent::Batch { at, batch }) => {
                        let kept = vec![false; batch.num_rows()];
                        let notes = self.annotations.as_ref().map(|(a, _)| NoteColumns::new(*a));
                        self.pending = Some(Pending {
                            at,
                            batch,
                            kept,
                            notes,
                        });
                        break;
                    }
                    // Framing decoded only the columns the run reads; when those rows were
                    // rejected none is kept here, but when a column the run does not read is
                    // what is damaged, a kept row cannot be copied whole.
                    Some(GroupEvent::Broken { at, rows, reason }) => {
                        if (at.row_in_file..at.row_in_file + rows).contains(&row) {
                            return Err(read_error(
                                &self.path,
                                io::Error::new(
                                    io::ErrorKind::InvalidData,
                                    format!(
                                        "row group {}, from its row {}, cannot be decoded in every column, so its kept rows cannot be copied whole ({reason})",
                                        at.row_group,
                                        at.row_in_group + 1
                                    ),
                                ),
                            ));
                        }
                    }
                    // Framing found the row in the columns the run reads; decoding every column
                    // ends before it: damaged pages in another column (or a file changed since).
                    None => {
                        return Err(read_error(
                            &self.path,
                            io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "row {} cannot be decoded in every column (decoding them all ends before it: a damaged column, or a file changed while it was read), so it cannot be copied whole",
                                    row + 1
                                ),
                            ),
                        ));
                    }
                }
            }
        }
    }

    fn changed(&self, what: &str) -> Error {
        read_error(
            &self.path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("changed while it was read: {what}"),
            ),
        )
    }

    /// Hands the kept rows of the pending batch to `write`.
    fn flush(
        &mut self,
        write: &mut dyn FnMut(&RecordBatch) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        if !pending.kept.contains(&true) {
            return Ok(());
        }
        let batch = if pending.kept.iter().all(|&k| k) {
            pending.batch
        } else {
            let mask = BooleanArray::from(pending.kept);
            arrow_select::filter::filter_record_batch(&pending.batch, &mask)
                .map_err(|e| read_error(&self.path, io::Error::other(e)))?
        };
        let batch = match (pending.notes, &self.annotations) {
            (Some(notes), Some((_, schema))) => {
                let columns: Vec<ArrayRef> = batch
                    .columns()
                    .iter()
                    .cloned()
                    .chain(notes.finish())
                    .collect();
                RecordBatch::try_new(schema.clone(), columns)
                    .map_err(|e| read_error(&self.path, io::Error::other(e)))?
            }
            _ => batch,
        };
        write(&batch)
    }

    /// Hands the last kept rows to `write`: no more rows of this file are kept.
    pub fn finish(
        mut self,
        write: &mut dyn FnMut(&RecordBatch) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.flush(write)
    }
}

fn writer_properties(key_value: Option<Vec<KeyValue>>) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("3 is a zstd level"),
        ))
        .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
        .set_key_value_metadata(key_value)
        .build()
}

/// A Parquet output of rows of one schema.
pub struct ParquetRows {
    name: String,
    writer: ArrowWriter<Output>,
}

impl ParquetRows {
    /// Writes rows of `shape` into `out` (named `name` in messages).
    pub fn create(out: Output, name: &str, shape: &TableShape) -> Result<ParquetRows, Error> {
        let writer = ArrowWriter::try_new(
            out,
            shape.schema.clone(),
            Some(writer_properties(shape.key_value.clone())),
        )
        .map_err(|e| output_error(name, e))?;
        Ok(ParquetRows {
            name: name.to_string(),
            writer,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), Error> {
        self.writer
            .write(batch)
            .map_err(|e| output_error(&self.name, e))
    }

    /// Writes the footer and commits the file.
    pub fn finish(self) -> Result<(), Error> {
        let out = self
            .writer
            .into_inner()
            .map_err(|e| output_error(&self.name, e))?;
        out.finish()
    }
}

fn output_error(name: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Output {
        what: name.to_string(),
        source: io::Error::other(e),
    }
}

/// Writes `batch` to `out` as JSON Lines: one object a row, every column (nulls written).
pub fn write_json_rows(out: &mut Output, batch: &RecordBatch) -> Result<(), Error> {
    let mut writer = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::LineDelimited>(&mut *out);
    writer
        .write(batch)
        .and_then(|()| writer.finish())
        .map_err(|e| io::Error::other(e.to_string()))
        .map_err(|e| out.error(e))
}

/// What a [`ReportTable`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Removals: `id`, `duplicate_of`, `duplicate_in`, `similarity`, `kind`, `role`.
    Removed,
    /// Clusters: `cluster`, `kept`, `kept_in`, `size`, `members` (a list of `id`,
    /// `similarity`, `role`, `spans`: a list of `[start, end]` lists).
    Clusters,
}

impl ReportKind {
    /// The table's schema: the fields of the JSON records, optional ones nullable.
    pub fn schema(self) -> SchemaRef {
        let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
        let fields = match self {
            ReportKind::Removed => vec![
                text("id", false),
                text("duplicate_of", false),
                text("duplicate_in", true),
                Field::new("similarity", DataType::Float64, false),
                text("kind", false),
                text("role", true),
            ],
            ReportKind::Clusters => {
                let offsets = Field::new("item", DataType::UInt64, false);
                let span = Field::new("item", DataType::List(Arc::new(offsets)), false);
                let member = Fields::from(vec![
                    text("id", false),
                    Field::new("similarity", DataType::Float64, false),
                    text("role", true),
                    Field::new("spans", DataType::List(Arc::new(span)), true),
                ]);
                vec![
                    Field::new("cluster", DataType::UInt64, false),
                    text("kept", false),
                    text("kept_in", true),
                    Field::new("size", DataType::UInt64, false),
                    Field::new(
                        "members",
                        DataType::List(Arc::new(Field::new(
                            "item",
                            DataType::Struct(member),
                            true,
                        ))),
                        false,
                    ),
                ]
            }
        };
        Arc::new(Schema::new(fields))
    }
}

/// Removals or clusters written as a Parquet table.
pub struct ReportTable {
    name: String,
    decoder: arrow_json::reader::Decoder,
    rows: ParquetRows,
}

impl ReportTable {
    pub fn create(out: Output, name: &str, kind: ReportKind) -> Result<ReportTable, Error> {
        let schema = kind.schema();
        let decoder = arrow_json::ReaderBuilder::new(schema.clone())
            .with_batch_size(REPORT_BATCH_ROWS)
            .build_decoder()
            .map_err(|e| output_error(name, e))?;
        let shape = TableShape {
            schema,
            key_value: None,
        };
        Ok(ReportTable {
            name: name.to_string(),
            decoder,
            rows: ParquetRows::create(out, name, &shape)?,
        })
    }

    /// Adds one row: a value serialized with the fields of the table's schema.
    pub fn push<T: serde::Serialize>(&mut self, row: &T) -> Result<(), Error> {
        self.decoder
            .serialize(std::slice::from_ref(row))
            .map_err(|e| output_error(&self.name, e))?;
        if self.decoder.len() >= REPORT_BATCH_ROWS {
            self.write_buffered()?;
        }
        Ok(())
    }

    fn write_buffered(&mut self) -> Result<(), Error> {
        if let Some(batch) = self
            .decoder
            .flush()
            .map_err(|e| output_error(&self.name, e))?
        {
            self.rows.write(&batch)?;
        }
        Ok(())
    }

    /// Writes what is buffered and commits the file.
    pub fn finish(mut self) -> Result<(), Error> {
        self.write_buffered()?;
        self.rows.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::ReportKind;

    #[test]
    fn issue12_report_tables_have_the_json_records_fields() {
        let names = |kind: ReportKind| -> Vec<String> {
            kind.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        };
        assert_eq!(
            names(ReportKind::Removed),
            [
                "id",
                "duplicate_of",
                "duplicate_in",
                "similarity",
                "kind",
                "role"
            ]
        );
        assert_eq!(
            names(ReportKind::Clusters),
            ["cluster", "kept", "kept_in", "size", "members"]
        );
    }
}
