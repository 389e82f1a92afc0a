//! `neardup._neardup`: the Python bindings' native module, wrapped by `python/neardup/__init__.py`
//! (which users import). A thin layer over the Rust library and the command line's own code:
//!
//! - Settings arrive as the command line's flags (the wrapper turns `threshold=0.7` into
//!   `--threshold 0.7`) and are parsed by the command line's parser (`args::Cli`), so names,
//!   defaults, checks and messages are the CLI's.
//! - Texts arrive as Arrow arrays (the Arrow C data interface: no Python object per row) or as a
//!   Python iterator pulled a batch at a time. Either way they are staged as JSON Lines in a
//!   temporary file (one `{"id": POSITION, "text": ...}` per text, in bounded memory), which the
//!   engine reads like any input, and results come back by position.
//! - The engine works on a thread of its own with the GIL released; the calling thread checks for
//!   signals every 100 ms, and Ctrl-C sets the run's cancel flag ([`neardup::InputSet::cancel_on`]),
//!   waits for the run to stop and raises `KeyboardInterrupt`.

// The command line's own modules, compiled in so that settings and `dedup_files` are exactly
// the command line's (they refer to each other as `crate::args` and so on).
#[allow(dead_code)]
#[path = "../../src/args.rs"]
mod args;
#[allow(dead_code)]
#[path = "../../src/commands.rs"]
mod commands;
#[allow(dead_code)]
#[path = "../../src/kept.rs"]
mod kept;
#[allow(dead_code)]
#[path = "../../src/mirror.rs"]
mod mirror;
#[allow(dead_code)]
#[path = "../../src/pages.rs"]
mod pages;
#[allow(dead_code)]
#[path = "../../src/sink.rs"]
mod sink;

mod cli;
mod stage;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use neardup::error::Rejection;
use neardup::pipeline::RunOptions;
use neardup::report::{ClusterReport, Removal, Sink};
use neardup::{Error, Format, Input, InputSet};
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use serde_json::{Value, json};

use stage::{Staged, Texts};

pyo3::create_exception!(
    _neardup,
    NeardupError,
    pyo3::exceptions::PyRuntimeError,
    "A run that could not be completed (an input that cannot be read, an output that cannot be written, ...)."
);

/// Why a call failed, made into a Python exception on the calling thread.
enum Failure {
    /// A setting the command line refuses (`ValueError`).
    Setting(String),
    /// A bad record under `strict=True` (`ValueError`), at its position.
    Strict(String),
    /// Ctrl-C (`KeyboardInterrupt`).
    Interrupted,
    /// Anything else (`NeardupError`).
    Run(String),
    /// An exception raised by Python code (the iterable of texts).
    Python(PyErr),
}

impl Failure {
    fn of_error(error: &anyhow::Error) -> Failure {
        match error.downcast_ref::<Error>() {
            Some(Error::Interrupted) => Failure::Interrupted,
            Some(Error::Config(e)) => Failure::Setting(e.to_string()),
            _ => Failure::Run(format!("{error:#}")),
        }
    }

    fn into_py(self) -> PyErr {
        match self {
            Failure::Setting(m) | Failure::Strict(m) => PyValueError::new_err(m),
            Failure::Interrupted => PyKeyboardInterrupt::new_err("neardup run interrupted"),
            Failure::Run(m) => NeardupError::new_err(m),
            Failure::Python(e) => e,
        }
    }
}

impl From<PyErr> for Failure {
    fn from(e: PyErr) -> Failure {
        Failure::Python(e)
    }
}

/// Runs `work` on a thread of its own with the GIL released, checking for Ctrl-C every 100 ms:
/// on one, sets `cancel`, waits for `work` to stop and raises `KeyboardInterrupt`.
fn run_detached<T: Send + 'static>(
    py: Python<'_>,
    cancel: Arc<AtomicBool>,
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> PyResult<T> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let worker = std::thread::Builder::new()
        .name("neardup".into())
        .spawn(move || {
            let _ = sender.send(work());
        })
        .map_err(|e| NeardupError::new_err(format!("cannot start a thread: {e}")))?;
    let outcome = py.detach(move || {
        let mut signal = None;
        loop {
            match receiver.recv_timeout(Duration::from_millis(100)) {
                Ok(outcome) => break Some(outcome),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break None,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if signal.is_none()
                && let Err(e) = Python::attach(|py| py.check_signals())
            {
                signal = Some(e);
                cancel.store(true, Ordering::Relaxed);
            }
        }
        .map(|outcome| match signal {
            // Ctrl-C wins, even over a run that finished before it saw the flag.
            Some(e) => Err(Failure::Python(e)),
            None => outcome,
        })
    });
    let _ = worker.join();
    match outcome {
        Some(outcome) => outcome.map_err(Failure::into_py),
        None => Err(NeardupError::new_err("the run stopped without a result")),
    }
}

/// A validated configuration: the command line's `dedup` settings, parsed once.
#[pyclass(frozen, module = "neardup._neardup")]
struct Engine {
    /// The flags it was made from (for `stats`, which parses them as `neardup stats` does).
    flags: Vec<String>,
    dedup: Arc<neardup::Dedup>,
    against: Vec<PathBuf>,
    threads: Option<usize>,
    temp_dir: PathBuf,
    max_doc_bytes: usize,
}

/// What a run hands back, by position.
#[derive(Default)]
struct Collected {
    clusters: Vec<Value>,
    removed: Vec<Value>,
    rejected: Vec<(u64, String)>,
}

impl Sink for Collected {
    fn rejected(&mut self, rejection: &Rejection) -> Result<(), Error> {
        let position = rejection.origin.line.saturating_sub(1);
        self.rejected.push((position, rejection.reason.to_string()));
        Ok(())
    }

    fn removed(&mut self, removal: &Removal<'_>) -> Result<(), Error> {
        let mut value =
            serde_json::to_value(removal).map_err(|e| Error::Accounting(e.to_string()))?;
        value["id"] = json!(removal.doc.0);
        if removal.duplicate_in.is_none() {
            value["duplicate_of"] = position_of(removal.duplicate_of);
        }
        self.removed.push(value);
        Ok(())
    }

    fn cluster(&mut self, cluster: &ClusterReport<'_>) -> Result<(), Error> {
        let mut value =
            serde_json::to_value(cluster).map_err(|e| Error::Accounting(e.to_string()))?;
        if let Some(doc) = cluster.kept_doc {
            value["kept"] = json!(doc.0);
        }
        for (slot, member) in cluster.members.iter().enumerate() {
            value["members"][slot]["id"] = json!(member.doc.0);
        }
        self.clusters.push(value);
        Ok(())
    }
}

/// A staged text's id is its position; anything else (an indexed document's id) stays as it is.
fn position_of(id: &str) -> Value {
    match id.parse::<u64>() {
        Ok(position) => json!(position),
        Err(_) => json!(id),
    }
}

/// Runs `work` inside a pool of `threads` workers (the global pool when `None`).
fn in_pool<T: Send>(
    threads: Option<usize>,
    work: impl FnOnce() -> Result<T, Failure> + Send,
) -> Result<T, Failure> {
    match threads {
        None => work(),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Failure::Run(format!("cannot start the thread pool: {e}")))?
            .install(work),
    }
}

#[pymethods]
impl Engine {
    /// Parses `flags` as `neardup dedup` does (a bad one raises `ValueError` with the command
    /// line's message) and builds the engine.
    #[new]
    fn new(flags: Vec<String>) -> PyResult<Engine> {
        let parsed = cli::parse_dedup(&flags).map_err(Failure::into_py)?;
        Ok(Engine {
            flags,
            dedup: Arc::new(parsed.dedup),
            against: parsed.against,
            threads: parsed.threads,
            temp_dir: parsed.temp_dir,
            max_doc_bytes: parsed.max_doc_bytes,
        })
    }

    /// Deduplicates `texts` (`kind` "arrow": a list of (schema, array) capsule pairs; "iter": an
    /// iterator of str) and returns the JSON of the clusters, removals, rejections and summary,
    /// with documents named by position.
    fn run(&self, py: Python<'_>, kind: &str, texts: Bound<'_, PyAny>) -> PyResult<String> {
        let texts = Texts::from_python(kind, &texts)?;
        let cancel = Arc::new(AtomicBool::new(false));
        let dedup = self.dedup.clone();
        let (against, threads) = (self.against.clone(), self.threads);
        let (temp_dir, max_doc_bytes) = (self.temp_dir.clone(), self.max_doc_bytes);
        let flag = cancel.clone();
        run_detached(py, cancel, move || {
            let staged = Staged::write(texts, None, &temp_dir, &flag)?;
            let mut inputs = InputSet::new(
                vec![Input::Path(staged.path().to_path_buf())],
                Format::Jsonl,
                max_doc_bytes,
            )
            .map_err(|e| Failure::Run(e.to_string()))?
            .cancel_on(flag);
            let indexes = against
                .iter()
                .map(|dir| {
                    let index = neardup::index::Index::open(dir)?;
                    dedup.check_index(&index)?;
                    Ok(index)
                })
                .collect::<Result<Vec<_>, Error>>()
                .map_err(|e| Failure::Run(format!("{:#}", anyhow::Error::from(e))))?;
            let mut collected = Collected::default();
            let output = in_pool(threads, || {
                let options = RunOptions {
                    against: &indexes,
                    ..RunOptions::default()
                };
                dedup
                    .run_with(&mut inputs, options, &mut collected)
                    .map_err(|e| staged.failure(e))
            })?;
            let rejected: Vec<Value> = collected
                .rejected
                .iter()
                .map(|(position, reason)| {
                    json!({"position": position, "reason": staged.reason(*position, reason)})
                })
                .collect();
            let result = json!({
                "texts": staged.count(),
                "clusters": collected.clusters,
                "removed": collected.removed,
                "rejected": rejected,
                "summary": output.summary,
            });
            Ok(result.to_string())
        })
    }

    /// The figures of `neardup stats --json` for `texts`, as JSON; `extra` are `stats`' own flags
    /// (`--thresholds`, `--top`).
    fn stats(
        &self,
        py: Python<'_>,
        kind: &str,
        texts: Bound<'_, PyAny>,
        extra: Vec<String>,
    ) -> PyResult<String> {
        let texts = Texts::from_python(kind, &texts)?;
        let cancel = Arc::new(AtomicBool::new(false));
        let mut flags: Vec<String> = self
            .flags
            .iter()
            .filter(|f| !f.starts_with("--against"))
            .cloned()
            .collect();
        flags.extend(extra);
        let (temp_dir, threads) = (self.temp_dir.clone(), self.threads);
        let flag = cancel.clone();
        run_detached(py, cancel, move || {
            let staged = Staged::write(texts, None, &temp_dir, &flag)?;
            let stats = in_pool(threads, || cli::stats(staged.path(), &flags))?;
            Ok(stats)
        })
    }

    /// How many worker threads the engine uses (its setting, else the machine's cores).
    #[getter]
    fn threads(&self) -> usize {
        self.threads.unwrap_or_else(rayon::current_num_threads)
    }
}

/// Runs `neardup ARGS` (the command line's own code, `-q` implied) and returns the run's
/// summary as JSON (what `--stats-json` writes). `dedup_files` calls it.
#[pyfunction]
fn run_command(py: Python<'_>, args: Vec<String>) -> PyResult<String> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    run_detached(py, cancel, move || cli::run_with_summary(args, flag))
}

/// Runs `neardup index build|add ARGS STAGED` over `texts` staged with `ids` (strings, or the
/// positions) and returns the run's summary as JSON. `Index.build` and `Index.add` call it.
#[pyfunction]
fn index_command(
    py: Python<'_>,
    args: Vec<String>,
    kind: &str,
    texts: Bound<'_, PyAny>,
    ids: Option<Vec<String>>,
    temp_dir: Option<PathBuf>,
) -> PyResult<String> {
    let texts = Texts::from_python(kind, &texts)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let temp_dir = temp_dir.unwrap_or_else(std::env::temp_dir);
    run_detached(py, cancel, move || {
        let staged = Staged::write(texts, ids, &temp_dir, &flag)?;
        let mut args = args;
        args.push(staged.path().display().to_string());
        cli::run_with_summary(args, flag)
    })
}

/// `neardup index info --json DIR`, as JSON.
#[pyfunction]
fn index_info(dir: PathBuf) -> PyResult<String> {
    cli::index_info(&dir).map_err(Failure::into_py)
}

#[pymodule]
fn _neardup(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Engine>()?;
    module.add_function(wrap_pyfunction!(run_command, module)?)?;
    module.add_function(wrap_pyfunction!(index_command, module)?)?;
    module.add_function(wrap_pyfunction!(index_info, module)?)?;
    module.add("NeardupError", module.py().get_type::<NeardupError>())?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
