//! Helpers shared by the integration tests: running the binary, writing fixtures, reading outputs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_neardup");

/// The repository's sample data.
pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// Runs `neardup` with `args` in `dir`, feeding `stdin`.
pub fn run_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    run_with_env(dir, args, stdin, &[])
}

pub fn run_with_env(dir: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("neardup starts");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("neardup runs");
    writer.join().unwrap();
    out
}

/// Asserts success and returns stderr as text.
pub fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "neardup failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Writes `name` (its directories made as needed) in `dir`.
pub fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, data).unwrap();
    path
}

pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn read_json_lines(path: &Path) -> Vec<serde_json::Value> {
    read_lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn stats(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Checks `read = kept + exact + near + rejected` in a stats file and returns it.
pub fn stats_adding_up(path: &Path) -> serde_json::Value {
    let s = stats(path);
    let n = |k: &str| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing in {s}"))
    };
    assert_eq!(
        n("docs_read"),
        n("kept") + n("exact_duplicates") + n("near_duplicates") + n("rejected"),
        "{s}"
    );
    s
}

/// A JSON Lines record.
pub fn record(id: &str, text: &str) -> String {
    serde_json::json!({"id": id, "text": text}).to_string()
}

/// A few hundred words of filler that differ per `seed`, for near-duplicate fixtures.
pub fn story(seed: u64, words: usize) -> String {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..words)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            format!("w{}", state % 5000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts success and returns stdout.
pub fn ok_stdout(out: &Output) -> Vec<u8> {
    ok(out);
    out.stdout.clone()
}

/// Writes `name` in `dir`: `docs` generated documents (the library's corpus generator) as JSON
/// Lines, a fraction `dup_fraction` of them copies (exact and near) of others.
pub fn generated(
    dir: &Path,
    name: &str,
    docs: usize,
    seed: u64,
    dup_fraction: f64,
    mean_words: usize,
) {
    use neardup::synth::{Corpus, CorpusSpec};
    let lines: String = Corpus::new(CorpusSpec {
        docs,
        seed,
        dup_fraction,
        mean_words,
    })
    .map(|d| record(&d.id, &d.text) + "\n")
    .collect();
    write(dir, name, lines.as_bytes());
}

/// Runs the Python fixture script `tests/SCRIPT` (which writes and reads files with an independent
/// implementation, pyarrow or warcio: `package`) with `args` in `dir`; its stdout. The Python is
/// `$NEARDUP_PYTHON`, else the virtual environment `.ci/run` makes (`target/pyenv`), else
/// `python3`. A script exits with 3 when its package is missing, and the test fails saying so.
pub fn python_fixture(dir: &Path, script: &str, package: &str, args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/pyenv/bin/python");
    let python = match std::env::var_os("NEARDUP_PYTHON") {
        Some(python) => PathBuf::from(python),
        None if venv.exists() => venv,
        None => PathBuf::from("python3"),
    };
    let out = std::process::Command::new(&python)
        .arg(root.join("tests").join(script))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(3),
        "{package} is missing: pip install {package} (or run .ci/run, which installs it into \
         target/pyenv; NEARDUP_PYTHON names another Python): {stderr}"
    );
    assert!(out.status.success(), "{script} {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}
