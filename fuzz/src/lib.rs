//! Helpers shared by the fuzz targets in `fuzz_targets/` (see docs/FUZZING.md).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A directory for this process's scratch files, made once: in `/dev/shm` when it is writable
/// (no disk traffic, fsync is free), else in the system's temporary directory. It is removed
/// when the process exits normally; libFuzzer ends with `exit`, so it may be left behind.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let made = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("neardup-fuzz-")
                .tempdir_in(shm)
        } else {
            Err(std::io::Error::other("no /dev/shm"))
        };
        made.or_else(|_| tempfile::Builder::new().prefix("neardup-fuzz-").tempdir())
            .expect("a scratch directory")
    })
    .path()
}

/// A path in the scratch directory.
pub fn scratch(name: &str) -> PathBuf {
    scratch_dir().join(name)
}

/// Removes everything inside `dir` (not `dir` itself).
pub fn clear_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// The first byte of a fuzz input (selecting a mode) and the rest (the payload).
pub fn split_mode(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&mode, rest)) => (mode, rest),
        None => (0, data),
    }
}

/// The settings of the fuzzed index: small signatures, so that a segment fits in a fuzz input.
pub fn index_dedup() -> neardup::Dedup {
    neardup::DedupBuilder::new()
        .num_perm(32)
        .bands(8, 4)
        .threshold(0.7)
        .build()
        .expect("valid settings")
}

/// Texts of the fuzzed index: the first three are its first segment, the next two its second.
pub const INDEX_TEXTS: [&str; 6] = [
    "the committee met on tuesday to discuss the budget for the coming year and agreed on most items",
    "shares of the company rose sharply after it reported quarterly earnings well above forecasts",
    "heavy rain flooded the valley overnight and the river broke its banks near the old mill bridge",
    "the new library opens next month with a reading room a cafe and a large collection of maps",
    "scientists found that the bees returned to the same flowers each morning at the same hour",
    "a completely different story about trains crossing the mountains in winter snow and ice",
];

/// Writes `texts` as JSON Lines records `{"id":"dN","text":...}`.
pub fn write_jsonl(path: &Path, texts: &[String]) {
    let body: String = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "{{\"id\":\"d{i}\",\"text\":{}}}\n",
                serde_json::to_string(t).expect("a string serializes")
            )
        })
        .collect();
    std::fs::write(path, body).expect("file written");
}

struct Quiet;
impl neardup::report::Sink for Quiet {}

/// Builds the fuzzed index in `dir` (which must not hold one) with the library: two segments
/// (`seg-000001.nds` with three documents, `seg-000002.nds` with two). `work` holds its inputs.
pub fn build_index(dir: &Path, work: &Path) -> neardup::index::Index {
    use neardup::{Format, Input, InputSet};
    let dedup = index_dedup();
    let mut index =
        neardup::index::Index::create(dir, dedup.index_params()).expect("index created");
    for (n, texts) in [&INDEX_TEXTS[..3], &INDEX_TEXTS[3..5]].iter().enumerate() {
        let input = work.join(format!("index-input-{n}.jsonl"));
        write_jsonl(
            &input,
            &texts.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        );
        let mut set = InputSet::new(vec![Input::Path(input)], Format::Jsonl, 1 << 20)
            .expect("valid input set");
        let (_, mut segment) = dedup
            .index_segment(&mut set, &mut Quiet)
            .expect("segment built");
        index.append(&mut segment).expect("segment appended");
    }
    index
}
