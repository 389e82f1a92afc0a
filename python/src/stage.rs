//! Texts from Python, staged as JSON Lines in a temporary file: Arrow arrays read through the
//! Arrow C data interface (PyCapsules, no Python object per row), or an iterator of `str`
//! pulled a batch at a time with the GIL held only for the pull. A text that is not one (None,
//! a null, an int, a `str` with a lone surrogate) is staged as a null text, which the engine
//! rejects; [`Staged::reason`] gives the rejection a reason that says what it was.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyIterator, PyString};

use crate::Failure;

/// Texts pulled per hold of the GIL.
const PULL: usize = 4096;

/// Where the texts of one call come from.
pub enum Texts {
    /// String arrays (the chunks of a column), in order.
    Arrow(Vec<ArrayRef>),
    /// A Python iterator of `str`.
    Iter(Py<PyIterator>),
}

impl Texts {
    /// `kind` "arrow": a list of `(schema, array)` PyCapsule pairs (`__arrow_c_array__`);
    /// "iter": any iterable.
    pub fn from_python(kind: &str, texts: &Bound<'_, PyAny>) -> PyResult<Texts> {
        match kind {
            "arrow" => {
                let mut arrays = Vec::new();
                for pair in texts.try_iter()? {
                    let (schema, array): (Bound<'_, PyCapsule>, Bound<'_, PyCapsule>) =
                        pair?.extract()?;
                    arrays.push(import(&schema, &array)?);
                }
                Ok(Texts::Arrow(arrays))
            }
            "iter" => Ok(Texts::Iter(texts.try_iter()?.unbind())),
            other => Err(PyTypeError::new_err(format!(
                "unknown kind of texts {other:?}"
            ))),
        }
    }
}

/// Moves an Arrow array out of its PyCapsules and checks it holds strings.
fn import(schema: &Bound<'_, PyCapsule>, array: &Bound<'_, PyCapsule>) -> PyResult<ArrayRef> {
    let schema_ptr = schema
        .pointer_checked(Some(c"arrow_schema"))?
        .cast::<FFI_ArrowSchema>();
    let array_ptr = array
        .pointer_checked(Some(c"arrow_array"))?
        .cast::<FFI_ArrowArray>();
    // SAFETY: by the Arrow PyCapsule interface the capsules named `arrow_schema` and
    // `arrow_array` hold a valid ArrowSchema and ArrowArray. The array is moved out and a
    // released one left in its place, which the capsule's destructor then skips; the schema is
    // only borrowed while the capsule lives.
    let data = unsafe {
        let moved = std::ptr::replace(array_ptr.as_ptr(), FFI_ArrowArray::empty());
        arrow_array::ffi::from_ffi(moved, schema_ptr.as_ref())
    }
    .map_err(|e| PyTypeError::new_err(format!("cannot read the Arrow array: {e}")))?;
    let array = arrow_array::make_array(data);
    match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(array),
        other => Err(PyTypeError::new_err(format!(
            "texts must be strings (an Arrow string, large_string or string_view array), not {other}"
        ))),
    }
}

/// The staged JSON Lines file, removed when dropped.
pub struct Staged {
    file: tempfile::TempPath,
    count: u64,
    /// Why a text staged as null was not one, by position.
    reasons: HashMap<u64, String>,
}

/// Writes one staged line after another.
struct Writer {
    out: BufWriter<std::fs::File>,
    count: u64,
    reasons: HashMap<u64, String>,
    /// The ids to write, by position (else the position is the id).
    ids: Option<Vec<String>>,
}

impl Writer {
    /// The opening of the next line: `{"id":ID,"text":`.
    fn open(&mut self) -> std::io::Result<()> {
        self.out.write_all(b"{\"id\":")?;
        match self
            .ids
            .as_ref()
            .and_then(|ids| ids.get(self.count as usize))
        {
            Some(id) => serde_json::to_writer(&mut self.out, id)?,
            None => write!(self.out, "\"{}\"", self.count)?,
        }
        self.out.write_all(b",\"text\":")
    }

    fn text(&mut self, text: &str) -> std::io::Result<()> {
        self.open()?;
        serde_json::to_writer(&mut self.out, text)?;
        self.out.write_all(b"}\n")?;
        self.count += 1;
        Ok(())
    }

    fn not_a_text(&mut self, reason: String) -> std::io::Result<()> {
        self.open()?;
        self.out.write_all(b"null}\n")?;
        self.reasons.insert(self.count, reason);
        self.count += 1;
        Ok(())
    }
}

impl Staged {
    /// Writes `texts` to a temporary file in `dir`, with `ids` (one per text) or their positions
    /// as ids, stopping with [`Failure::Interrupted`] once `cancel` is set.
    pub fn write(
        texts: Texts,
        ids: Option<Vec<String>>,
        dir: &Path,
        cancel: &Arc<AtomicBool>,
    ) -> Result<Staged, Failure> {
        let io = |e: std::io::Error| {
            Failure::Run(format!("cannot stage the texts in {}: {e}", dir.display()))
        };
        let file = tempfile::Builder::new()
            .prefix("neardup-texts-")
            .suffix(".jsonl")
            .tempfile_in(dir)
            .map_err(io)?;
        let (handle, path) = file.into_parts();
        let mut writer = Writer {
            out: BufWriter::with_capacity(1 << 20, handle),
            count: 0,
            reasons: HashMap::new(),
            ids,
        };
        let cancelled = || cancel.load(Ordering::Relaxed);
        match texts {
            Texts::Arrow(arrays) => {
                for array in arrays {
                    for_each_string(array.as_ref(), |text| match text {
                        Some(text) => writer.text(text),
                        None => writer.not_a_text("a null text".into()),
                    })
                    .map_err(io)?;
                    if cancelled() {
                        return Err(Failure::Interrupted);
                    }
                }
            }
            Texts::Iter(iterator) => loop {
                let done = Python::attach(|py| -> Result<bool, Failure> {
                    let mut iterator = iterator.bind(py).clone();
                    for _ in 0..PULL {
                        let Some(item) = iterator.next() else {
                            return Ok(true);
                        };
                        stage_item(&mut writer, &item?).map_err(io)?;
                    }
                    Ok(false)
                })?;
                if done {
                    break;
                }
                if cancelled() {
                    return Err(Failure::Interrupted);
                }
            },
        }
        writer.out.flush().map_err(io)?;
        if let Some(ids) = &writer.ids
            && ids.len() as u64 != writer.count
        {
            return Err(Failure::Setting(format!(
                "ids has {} items for {} texts",
                ids.len(),
                writer.count
            )));
        }
        Ok(Staged {
            file: path,
            count: writer.count,
            reasons: writer.reasons,
        })
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Texts staged.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The reason to give for the rejection at `position`: what the item was, when it was not a
    /// text, else the engine's.
    pub fn reason<'a>(&'a self, position: u64, engine: &'a str) -> &'a str {
        self.reasons.get(&position).map_or(engine, String::as_str)
    }

    /// The failure of a run over the staged texts: a bad record under `strict` names its
    /// position, not the staging file.
    pub fn failure(&self, error: neardup::Error) -> Failure {
        match error {
            neardup::Error::Rejected(rejection) => {
                let position = rejection.origin.line.saturating_sub(1);
                let reason = rejection.reason.to_string();
                Failure::Strict(format!(
                    "text {position}: {}",
                    self.reason(position, &reason)
                ))
            }
            other => Failure::of_error(&anyhow::Error::from(other)),
        }
    }
}

/// Stages one item of a Python iterable.
fn stage_item(writer: &mut Writer, item: &Bound<'_, PyAny>) -> std::io::Result<()> {
    match item.cast::<PyString>() {
        Ok(text) => match text.to_cow() {
            Ok(text) => writer.text(&text),
            Err(_) => {
                writer.not_a_text("a str that is not valid Unicode (a lone surrogate)".into())
            }
        },
        Err(_) if item.is_none() => writer.not_a_text("None, not a str".into()),
        Err(_) => {
            let kind = item
                .get_type()
                .name()
                .map_or_else(|_| "?".to_string(), |n| n.to_string());
            writer.not_a_text(format!("a value of type {kind}, not a str"))
        }
    }
}

/// Calls `each` with every value of a string array (`None` for a null), in order.
fn for_each_string(
    array: &dyn Array,
    mut each: impl FnMut(Option<&str>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    macro_rules! values {
        ($strings:expr) => {{
            let strings = $strings;
            for i in 0..strings.len() {
                each((!strings.is_null(i)).then(|| strings.value(i)))?;
            }
        }};
    }
    match array.data_type() {
        DataType::Utf8 => values!(array.as_string::<i32>()),
        DataType::LargeUtf8 => values!(array.as_string::<i64>()),
        DataType::Utf8View => values!(array.as_string_view()),
        _ => unreachable!("checked by import"),
    }
    Ok(())
}
