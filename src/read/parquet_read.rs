//! Parquet input: a file's rows framed one row group (one batch of it) at a time, reading only
//! the columns a run uses.
//!
//! [`RowGroupBatches`] reads a Parquet file row group by row group in batches of [`BATCH_ROWS`]
//! rows, with a projection; a row group that cannot be decoded yields one [`GroupEvent::Broken`]
//! for its rows not read, and reading goes on with the next row group. Framing
//! (`ParquetSource`) and the kept-row copier ([`crate::parquet_write::RowCopier`]) both read through
//! it, so they see the same batches and fail at the same places.
//!
//! A framed row is a [`Record`] of [`Format::Parquet`] whose bytes are a compact layout of the
//! values the parser needs ([`encode_row`], decoded by [`decode_row`]): no JSON is built per row.
//! Its origin is the file and the row's number in the file, counted from 1 like a line, so a row
//! without an id column is named `FILE:ROW`.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::basic::Compression;

use super::parse::Fields;
use super::{FieldPath, Format, Frame, Record};
use crate::error::{Origin, RejectReason, Rejection};

/// Rows per batch read from a row group. Framing and the kept-row copier use the same size, so
/// a row group that breaks off does so after the same batches in both.
pub const BATCH_ROWS: usize = 1024;

/// The magic number at both ends of a Parquet file.
pub const MAGIC: &[u8; 4] = b"PAR1";

/// Reads the footer of a Parquet file: its schema (with the schema's metadata) and row groups.
/// Fails when the file is not Parquet, its footer is damaged, or a column uses a compression this
/// build does not read.
pub fn open_metadata(file: &File) -> io::Result<ArrowReaderMetadata> {
    let file = ParquetFile::new(file.try_clone()?)?;
    let not_readable = |e: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a readable Parquet file: {e}"),
        )
    };
    let meta = guarded(|| ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()))
        .map_err(not_readable)?
        .map_err(|e| not_readable(e.to_string()))?;
    for group in meta.metadata().row_groups() {
        for column in group.columns() {
            if matches!(column.compression(), Compression::BROTLI(_)) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "column {} is compressed with BROTLI, which is not supported",
                        column.column_path()
                    ),
                ));
            }
        }
    }
    Ok(meta)
}

/// A Parquet file as the decoder reads it, made to fail fast on damage: a read past the end of
/// the file is an error, not an empty read (the parquet crate skips a page header's unknown
/// fields with short reads that do not fail, so a header claiming a long list at the end of a
/// file took a read per element: a minute for a 3 KB file), and a byte range past the end is
/// refused before its buffer is allocated.
#[derive(Debug)]
struct ParquetFile {
    file: File,
    len: u64,
}

impl ParquetFile {
    fn new(file: File) -> io::Result<ParquetFile> {
        let len = file.metadata()?.len();
        Ok(ParquetFile { file, len })
    }

    fn try_clone(&self) -> io::Result<ParquetFile> {
        Ok(ParquetFile {
            file: self.file.try_clone()?,
            len: self.len,
        })
    }
}

impl parquet::file::reader::Length for ParquetFile {
    fn len(&self) -> u64 {
        self.len
    }
}

/// Reads a file from a position of its own with `pread`: clones of a file descriptor share one
/// offset, so two readers that each seek a clone would read each other's bytes.
#[derive(Debug)]
struct ReadAt {
    file: File,
    pos: u64,
}

impl io::Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl parquet::file::reader::ChunkReader for ParquetFile {
    type T = EndIsError<io::BufReader<ReadAt>>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let file = self.file.try_clone()?;
        Ok(EndIsError(io::BufReader::new(ReadAt { file, pos: start })))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        use std::os::unix::fs::FileExt;
        if start
            .checked_add(length as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "{length} bytes at {start} lie past the end of the file ({} bytes)",
                self.len
            )));
        }
        let mut buffer = vec![0; length];
        self.file.read_exact_at(&mut buffer, start)?;
        Ok(buffer.into())
    }
}

/// A reader for which reading at its end is an error.
struct EndIsError<R>(R);

impl<R: io::Read> io::Read for EndIsError<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the file",
            ));
        }
        Ok(n)
    }
}

/// Runs a call into the Parquet decoder, turning a panic on damaged input (the decoder is not
/// ours; some damage makes it index out of bounds) into an error, so that damage is a rejection
/// or an input failure, never a crash.
fn guarded<T>(call: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        format!("the Parquet decoder failed: {message}")
    })
}

/// Where a batch sits: its row group, and its first row's place in the group and in the file
/// (both from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchAt {
    pub row_group: usize,
    pub row_in_group: u64,
    pub row_in_file: u64,
}

/// What reading a file's row groups yields.
#[derive(Debug)]
pub enum GroupEvent {
    Batch {
        at: BatchAt,
        batch: RecordBatch,
    },
    /// A row group broke off at `at`: its `rows` rows from there could not be decoded.
    Broken {
        at: BatchAt,
        rows: u64,
        reason: String,
    },
}

/// A Parquet file's batches, row group by row group.
pub struct RowGroupBatches {
    file: ParquetFile,
    meta: ArrowReaderMetadata,
    projection: ProjectionMask,
    group: usize,
    reader: Option<ParquetRecordBatchReader>,
    /// The current row group's first row in the file, and the rows read of it.
    group_start: u64,
    row_in_group: u64,
    /// Bytes as stored, counted a row group at a time for progress.
    counter: Option<Arc<AtomicU64>>,
}

impl RowGroupBatches {
    pub fn new(
        file: File,
        meta: ArrowReaderMetadata,
        projection: ProjectionMask,
        counter: Option<Arc<AtomicU64>>,
    ) -> io::Result<Self> {
        Ok(RowGroupBatches {
            file: ParquetFile::new(file)?,
            meta,
            projection,
            group: 0,
            reader: None,
            group_start: 0,
            row_in_group: 0,
            counter,
        })
    }

    fn group_rows(&self, group: usize) -> u64 {
        self.meta.metadata().row_group(group).num_rows().max(0) as u64
    }

    fn at(&self) -> BatchAt {
        BatchAt {
            row_group: self.group,
            row_in_group: self.row_in_group,
            row_in_file: self.group_start + self.row_in_group,
        }
    }

    /// Moves on to the next row group (past the rows it claims, or those read of it if more).
    fn next_group(&mut self) {
        self.reader = None;
        self.group_start += self.group_rows(self.group).max(self.row_in_group);
        self.group += 1;
        self.row_in_group = 0;
    }

    /// The rest of the current row group as broken, then the next row group. A group broken
    /// after all the rows it claims were read loses no row: nothing is reported.
    fn broken(&mut self, reason: String) -> Option<GroupEvent> {
        let at = self.at();
        let rows = self
            .group_rows(self.group)
            .saturating_sub(self.row_in_group);
        self.next_group();
        (rows > 0).then_some(GroupEvent::Broken { at, rows, reason })
    }
}

impl Iterator for RowGroupBatches {
    type Item = GroupEvent;

    fn next(&mut self) -> Option<GroupEvent> {
        loop {
            if self.group >= self.meta.metadata().num_row_groups() {
                return None;
            }
            if self.reader.is_none() {
                if let Some(counter) = &self.counter {
                    let size = self.meta.metadata().row_group(self.group).compressed_size();
                    counter.fetch_add(size.max(0) as u64, Ordering::Relaxed);
                }
                let built = self
                    .file
                    .try_clone()
                    .map_err(|e| e.to_string())
                    .and_then(|file| {
                        guarded(|| {
                            ParquetRecordBatchReaderBuilder::new_with_metadata(
                                file,
                                self.meta.clone(),
                            )
                            .with_row_groups(vec![self.group])
                            .with_projection(self.projection.clone())
                            .with_batch_size(BATCH_ROWS)
                            .build()
                        })?
                        .map_err(|e| e.to_string())
                    });
                match built {
                    Ok(reader) => self.reader = Some(reader),
                    Err(reason) => match self.broken(reason) {
                        Some(event) => return Some(event),
                        None => continue,
                    },
                }
            }
            let reader = self.reader.as_mut()?;
            let next = match guarded(|| reader.next()) {
                Ok(next) => next.map(|batch| batch.map_err(|e| e.to_string())),
                Err(reason) => Some(Err(reason)),
            };
            let reason = match next {
                Some(Ok(batch)) => {
                    let at = self.at();
                    self.row_in_group += batch.num_rows() as u64;
                    return Some(GroupEvent::Batch { at, batch });
                }
                Some(Err(reason)) => reason,
                None if self.row_in_group < self.group_rows(self.group) => {
                    "the row group ended early".to_string()
                }
                None => {
                    self.next_group();
                    continue;
                }
            };
            if let Some(event) = self.broken(reason) {
                return Some(event);
            }
        }
    }
}

/// A field's path resolved against a file's schema: its root column's index and the keys
/// below it (struct children).
#[derive(Debug, Clone)]
struct ColumnPath {
    root: usize,
    keys: Vec<String>,
}

impl ColumnPath {
    /// The path's column in `schema`, when its root column exists and every key below it names
    /// a struct child.
    fn resolve(schema: &Schema, path: &FieldPath) -> Option<ColumnPath> {
        let keys = path.keys();
        let (root, mut field) = schema.column_with_name(&keys[0])?;
        for key in &keys[1..] {
            let DataType::Struct(children) = field.data_type() else {
                return None;
            };
            field = children.iter().find(|c| c.name() == key)?;
        }
        Some(ColumnPath {
            root,
            keys: keys.to_vec(),
        })
    }

    /// The array at this path in a projected batch, with the struct arrays above it (whose
    /// nulls hide it).
    fn array<'b>(&self, batch: &'b RecordBatch) -> Option<(Vec<&'b dyn Array>, &'b ArrayRef)> {
        let mut array = batch.column_by_name(&self.keys[0])?;
        let mut above = Vec::new();
        for key in &self.keys[1..] {
            let parent = array.as_struct_opt()?;
            above.push(array.as_ref());
            array = parent.column_by_name(key)?;
        }
        Some((above, array))
    }
}

/// The columns a run reads from a file.
#[derive(Debug, Clone)]
struct Columns {
    text: ColumnPath,
    id: Option<ColumnPath>,
    group: Option<ColumnPath>,
    keep: Option<ColumnPath>,
    url: Option<ColumnPath>,
}

impl Columns {
    fn resolve(schema: &Schema, fields: &Fields) -> Result<Columns, String> {
        let text = ColumnPath::resolve(schema, &fields.text).ok_or_else(|| {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            let whole = fields.text.keys().join(".");
            let hint = if fields.text.keys().len() > 1 && names.contains(&whole.as_str()) {
                format!(
                    "; a column is named {whole:?}: write it with escaped dots, {:?}",
                    whole.replace('.', "\\.")
                )
            } else {
                String::new()
            };
            format!(
                "no text column {:?} (columns: {}){hint}",
                fields.text.to_string(),
                names.join(", ")
            )
        })?;
        let optional = |path: &Option<FieldPath>| {
            path.as_ref()
                .and_then(|path| ColumnPath::resolve(schema, path))
        };
        Ok(Columns {
            text,
            id: ColumnPath::resolve(schema, &fields.id),
            group: optional(&fields.group),
            keep: optional(&fields.keep),
            url: optional(&fields.url),
        })
    }

    fn roots(&self) -> Vec<usize> {
        let mut roots: Vec<usize> = [
            Some(&self.text),
            self.id.as_ref(),
            self.group.as_ref(),
            self.keep.as_ref(),
            self.url.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|c| c.root)
        .collect();
        roots.sort_unstable();
        roots.dedup();
        roots
    }
}

/// A column of strings of any Arrow string type.
enum Strings<'b> {
    Utf8(&'b arrow_array::StringArray),
    Large(&'b arrow_array::LargeStringArray),
    View(&'b arrow_array::StringViewArray),
    Dictionary {
        keys: &'b dyn Array,
        /// The keys as value indices, computed once per batch.
        normalized: Vec<usize>,
        values: Box<Strings<'b>>,
    },
    /// Not a string column.
    Other,
}

impl<'b> Strings<'b> {
    fn of(array: &'b dyn Array) -> Strings<'b> {
        if let Some(a) = array.as_string_opt::<i32>() {
            Strings::Utf8(a)
        } else if let Some(a) = array.as_string_opt::<i64>() {
            Strings::Large(a)
        } else if let Some(a) = array.as_string_view_opt() {
            Strings::View(a)
        } else if let Some(d) = array.as_any_dictionary_opt() {
            match Strings::of(d.values().as_ref()) {
                Strings::Other => Strings::Other,
                values => Strings::Dictionary {
                    keys: d.keys(),
                    normalized: d.normalized_keys(),
                    values: Box::new(values),
                },
            }
        } else {
            Strings::Other
        }
    }

    fn is_string(&self) -> bool {
        !matches!(self, Strings::Other)
    }

    fn get(&self, i: usize) -> Option<&'b str> {
        match self {
            Strings::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strings::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strings::View(a) => (!a.is_null(i)).then(|| a.value(i)),
            Strings::Dictionary {
                keys,
                normalized,
                values,
            } => {
                if keys.is_null(i) {
                    None
                } else {
                    values.get(normalized[i])
                }
            }
            Strings::Other => None,
        }
    }
}

/// One field's column in a batch.
struct Column<'b> {
    above: Vec<&'b dyn Array>,
    array: &'b ArrayRef,
    strings: Strings<'b>,
}

impl<'b> Column<'b> {
    fn of(path: Option<&ColumnPath>, batch: &'b RecordBatch) -> Option<Column<'b>> {
        let (above, array) = path?.array(batch)?;
        Some(Column {
            above,
            strings: Strings::of(array.as_ref()),
            array,
        })
    }

    fn hidden(&self, i: usize) -> bool {
        self.above.iter().any(|a| a.is_null(i)) || self.array.is_null(i)
    }

    fn str(&self, i: usize) -> Option<&'b str> {
        if self.above.iter().any(|a| a.is_null(i)) {
            return None;
        }
        self.strings.get(i)
    }
}

/// An id column that is not a string: its values as text (numbers in decimal).
struct Formatted<'b> {
    formatter: Option<arrow_cast::display::ArrayFormatter<'b>>,
}

/// The bytes of a framed Parquet row: a flag byte (id, group, URL, keep value present), the
/// keep value (f64, little-endian), the lengths of id, group and URL (u32 each), then their
/// bytes and the text's.
pub fn encode_row(
    id: Option<&str>,
    group: Option<&str>,
    url: Option<&str>,
    keep: Option<f64>,
    text: &str,
) -> Vec<u8> {
    let parts = [id, group, url];
    let len: usize = parts.iter().flatten().map(|s| s.len()).sum::<usize>() + text.len();
    let mut out = Vec::with_capacity(HEADER + len);
    let mut flags = 0u8;
    for (bit, part) in parts.iter().enumerate() {
        if part.is_some() {
            flags |= 1 << bit;
        }
    }
    if keep.is_some() {
        flags |= 1 << 3;
    }
    out.push(flags);
    out.extend_from_slice(&keep.unwrap_or(f64::NEG_INFINITY).to_le_bytes());
    for part in parts {
        out.extend_from_slice(&(part.map_or(0, str::len) as u32).to_le_bytes());
    }
    for part in parts.into_iter().flatten() {
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(text.as_bytes());
    out
}

const HEADER: usize = 1 + 8 + 3 * 4;

/// A framed Parquet row's values, borrowed from its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RowValues<'a> {
    pub id: Option<&'a str>,
    pub group: Option<&'a str>,
    pub url: Option<&'a str>,
    pub keep: Option<f64>,
    pub text: &'a str,
}

/// Decodes [`encode_row`]'s layout; `None` when the bytes are not such a row.
pub fn decode_row(bytes: &[u8]) -> Option<RowValues<'_>> {
    let header = bytes.get(..HEADER)?;
    let flags = header[0];
    let keep = f64::from_le_bytes(header[1..9].try_into().ok()?);
    let mut at = HEADER;
    let mut parts = [None; 3];
    for (i, part) in parts.iter_mut().enumerate() {
        let len = u32::from_le_bytes(header[9 + 4 * i..13 + 4 * i].try_into().ok()?) as usize;
        let end = at.checked_add(len)?;
        let s = std::str::from_utf8(bytes.get(at..end)?).ok()?;
        if flags & (1 << i) != 0 {
            *part = Some(s);
        }
        at = end;
    }
    let text = std::str::from_utf8(bytes.get(at..)?).ok()?;
    let [id, group, url] = parts;
    Some(RowValues {
        id,
        group,
        url,
        keep: (flags & (1 << 3) != 0).then_some(keep),
        text,
    })
}

/// One Parquet input being framed.
pub(super) struct ParquetSource {
    name: String,
    columns: Columns,
    text_field: String,
    batches: RowGroupBatches,
    queue: VecDeque<Frame>,
    max: usize,
}

impl ParquetSource {
    /// Opens `file` (named `name` in messages) for framing the fields of `fields`. Fails when
    /// the file is not Parquet or has no text column.
    pub(super) fn open(
        name: String,
        file: File,
        fields: &Fields,
        max: usize,
        counter: &Arc<AtomicU64>,
    ) -> io::Result<ParquetSource> {
        let meta = open_metadata(&file)?;
        let columns = Columns::resolve(meta.schema(), fields)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let projection = ProjectionMask::roots(meta.parquet_schema(), columns.roots());
        Ok(ParquetSource {
            name,
            columns,
            text_field: fields.text.to_string(),
            batches: RowGroupBatches::new(file, meta, projection, Some(counter.clone()))?,
            queue: VecDeque::new(),
            max,
        })
    }

    pub(super) fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.queue.pop_front() {
                return Some(frame);
            }
            match self.batches.next()? {
                GroupEvent::Batch { at, batch } => self.frame_batch(at, &batch),
                GroupEvent::Broken { at, rows, reason } => {
                    self.queue.push_back(Frame::Rejected(Rejection {
                        origin: self.origin(at.row_in_file),
                        reason: RejectReason::InRowGroup {
                            row_group: at.row_group as u64,
                            row: at.row_in_group + 1,
                            reason: Box::new(RejectReason::Unreadable(format!(
                                "{rows} rows of the row group from here could not be decoded: {reason}"
                            ))),
                        },
                    }))
                }
            }
        }
    }

    fn origin(&self, row_in_file: u64) -> Origin {
        Origin {
            file: self.name.clone(),
            line: row_in_file + 1,
            offset: None,
        }
    }

    fn frame_batch(&mut self, at: BatchAt, batch: &RecordBatch) {
        let columns = &self.columns;
        let Some(text) = Column::of(Some(&columns.text), batch) else {
            return;
        };
        let id = Column::of(columns.id.as_ref(), batch);
        let id_formatted = id
            .as_ref()
            .filter(|c| !c.strings.is_string())
            .map(|c| Formatted {
                formatter: arrow_cast::display::ArrayFormatter::try_new(
                    c.array.as_ref(),
                    &arrow_cast::display::FormatOptions::default(),
                )
                .ok(),
            });
        let group = Column::of(columns.group.as_ref(), batch);
        let url = Column::of(columns.url.as_ref(), batch);
        let keep = Column::of(columns.keep.as_ref(), batch);
        let keep_values = keep.as_ref().and_then(|k| {
            arrow_cast::cast(k.array.as_ref(), &DataType::Float64)
                .ok()
                .filter(|_| !k.strings.is_string())
        });
        let keep_values = keep_values
            .as_ref()
            .and_then(|a| a.as_primitive_opt::<arrow_array::types::Float64Type>());
        for i in 0..batch.num_rows() {
            let row_in_file = at.row_in_file + i as u64;
            let in_group = |reason| RejectReason::InRowGroup {
                row_group: at.row_group as u64,
                row: at.row_in_group + i as u64 + 1,
                reason: Box::new(reason),
            };
            let Some(text_value) = text.str(i) else {
                self.queue.push_back(Frame::Rejected(Rejection {
                    origin: self.origin(row_in_file),
                    reason: in_group(RejectReason::NotAString(self.text_field.clone())),
                }));
                continue;
            };
            if text_value.len() > self.max {
                self.queue.push_back(Frame::Rejected(Rejection {
                    origin: self.origin(row_in_file),
                    reason: in_group(RejectReason::TooLarge { limit: self.max }),
                }));
                continue;
            }
            let formatted;
            let id_value = match (&id, &id_formatted) {
                (Some(column), None) => column.str(i),
                (Some(column), Some(Formatted { formatter: Some(f) })) if !column.hidden(i) => {
                    formatted = f.value(i).to_string();
                    Some(formatted.as_str())
                }
                _ => None,
            };
            let keep_value = match (&keep, keep_values) {
                (Some(column), Some(values)) if !column.hidden(i) => Some(values.value(i)),
                _ => None,
            };
            let bytes = encode_row(
                id_value,
                group.as_ref().and_then(|c| c.str(i)),
                url.as_ref().and_then(|c| c.str(i)),
                keep_value,
                text_value,
            );
            self.queue.push_back(Frame::Record(Record {
                origin: self.origin(row_in_file),
                bytes,
                format: Format::Parquet,
                location: None,
                stored: None,
            }));
        }
    }
}

/// Whether `schema` and `other` have the same fields (names, types, nullability, in order),
/// whatever their metadata.
pub fn same_fields(schema: &Schema, other: &Schema) -> bool {
    let strip = |f: &Arc<Field>| {
        f.as_ref()
            .clone()
            .with_metadata(std::collections::HashMap::<String, String>::new())
    };
    schema.fields().len() == other.fields().len()
        && schema
            .fields()
            .iter()
            .zip(other.fields().iter())
            .all(|(a, b)| strip(a) == strip(b))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{decode_row, encode_row};

    proptest! {
        #[test]
        fn issue12_rows_decode_to_what_was_encoded(
            id in proptest::option::of(".{0,8}"),
            group in proptest::option::of(".{0,8}"),
            url in proptest::option::of(".{0,8}"),
            keep in proptest::option::of(-1e9f64..1e9),
            text in ".{0,40}",
        ) {
            let bytes = encode_row(id.as_deref(), group.as_deref(), url.as_deref(), keep, &text);
            let row = decode_row(&bytes).unwrap();
            prop_assert_eq!(row.id, id.as_deref());
            prop_assert_eq!(row.group, group.as_deref());
            prop_assert_eq!(row.url, url.as_deref());
            prop_assert_eq!(row.keep, keep);
            prop_assert_eq!(row.text, text.as_str());
        }
    }

    /// A Parquet file of 3 row groups of 2 rows: `text` dictionary-encoded with a null, `id` an
    /// int column, `meta` a struct with a `url` child (null in one row).
    fn fixture(path: &std::path::Path) {
        use std::sync::Arc;

        use arrow_array::{
            ArrayRef, DictionaryArray, Int64Array, RecordBatch, StringArray, StructArray,
            types::Int32Type,
        };
        use arrow_schema::{DataType, Field};
        use parquet::arrow::ArrowWriter;
        use parquet::file::properties::WriterProperties;

        let text: DictionaryArray<Int32Type> = vec![
            Some("one"),
            Some("two"),
            None,
            Some("four"),
            Some("one"),
            Some("six"),
        ]
        .into_iter()
        .collect();
        let url: ArrayRef = Arc::new(StringArray::from(vec![
            Some("https://a.example/1"),
            None,
            Some("https://b.example/3"),
            Some("https://b.example/4"),
            Some("https://a.example/5"),
            Some("https://a.example/6"),
        ]));
        let meta = StructArray::from(vec![(
            Arc::new(Field::new("url", DataType::Utf8, true)),
            url,
        )]);
        let batch = RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(Int64Array::from(vec![10, 11, 12, 13, 14, 15])) as ArrayRef,
            ),
            ("text", Arc::new(text) as ArrayRef),
            ("meta", Arc::new(meta) as ArrayRef),
        ])
        .unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(2))
            .build();
        let file = std::fs::File::create(path).unwrap();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    #[test]
    fn issue12_rows_are_framed_by_row_group_with_their_columns() {
        use crate::error::RejectReason;
        use crate::read::{Fields, Format, FormatChoice, Frame, Input, InputSet, Parser};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        fixture(&path);
        let fields = Fields {
            url: Some("meta.url".parse().unwrap()),
            id: "id".parse().unwrap(),
            ..Fields::default()
        };
        let mut set = InputSet::new(vec![Input::Path(path)], FormatChoice::Detect, 1 << 20)
            .unwrap()
            .with_fields(fields.clone());
        assert_eq!(set.format_of(0), Format::Parquet);
        let parser = Parser::new(fields);
        for _ in 0..2 {
            let frames: Vec<Frame> = set.frames().collect();
            assert_eq!(frames.len(), 6);
            let Frame::Rejected(rejection) = &frames[2] else {
                panic!("the null text is rejected: {frames:?}");
            };
            assert_eq!(rejection.origin.line, 3);
            assert_eq!(
                rejection.reason,
                RejectReason::InRowGroup {
                    row_group: 1,
                    row: 1,
                    reason: Box::new(RejectReason::NotAString("text".to_string())),
                }
            );
            let docs: Vec<(String, String, Option<String>)> = frames
                .iter()
                .filter_map(|f| match f {
                    Frame::Record(r) => {
                        let d = parser.parse(r).unwrap();
                        Some((
                            d.id.into_owned(),
                            d.text.into_owned(),
                            d.group.map(|g| g.into_owned()),
                        ))
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(
                docs[..2],
                [
                    (
                        "10".into(),
                        "one".into(),
                        Some("https://a.example/1".into())
                    ),
                    ("11".into(), "two".into(), None),
                ]
            );
            assert_eq!(docs.len(), 5);
        }
    }

    #[test]
    fn issue12_bytes_that_are_not_a_row_decode_to_nothing() {
        assert_eq!(decode_row(b"short"), None);
        let mut bytes = encode_row(Some("id"), None, None, None, "text");
        bytes[9] = 200; // an id length past the end
        assert_eq!(decode_row(&bytes), None);
    }
}
