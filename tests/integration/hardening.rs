//! Issue 10: never lose data, never exit 0 on a broken run. One test per reproduction in the
//! issue: each failed (exit 0 with empty or wrong output, or lost data) before the fix.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// A small corpus with a few duplicates, as JSON Lines.
fn corpus(records: u64) -> String {
    let mut out = String::new();
    for i in 0..records {
        // Every fifth record repeats the one before it.
        let seed = if i % 5 == 4 { i - 1 } else { i };
        out.push_str(&record(&format!("d{i}"), &story(seed, 60)));
        out.push('\n');
    }
    out
}

/// Names in `dir` that neardup uses for temporary files.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.starts_with(".neardup-").then_some(name)
        })
        .collect()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn issue10_missing_directory_and_misnamed_field_inputs_exit_2_and_commit_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "r.jsonl", corpus(20).as_bytes());
    std::fs::create_dir(dir.path().join("adir")).unwrap();
    for (args, expect) in [
        (
            vec!["dedup", "typo.jsonl", "-o", "kept.jsonl"],
            "cannot read typo.jsonl: no such file or directory",
        ),
        (
            // A directory is a folder of shards (issue 12): an empty one names no input.
            vec!["dedup", "adir", "-o", "kept.jsonl"],
            "adir: the directory holds no files",
        ),
        (
            vec!["dedup", "r.jsonl", "typo.jsonl", "-o", "kept.jsonl"],
            "typo.jsonl",
        ),
        (
            vec![
                "dedup",
                "r.jsonl",
                "-o",
                "kept.jsonl",
                "--text-field",
                "body",
            ],
            "all 20 records were rejected (every one): no record has a \"body\" field; fields seen: id, text",
        ),
        (
            vec!["index", "build", "typo.jsonl", "--index", "idx"],
            "cannot read typo.jsonl",
        ),
        (
            vec![
                "dedup",
                "r.jsonl",
                "-o",
                "kept.jsonl",
                "--text-field",
                "body",
                "--against",
                "idx",
                "--update",
            ],
            "no record has a \"body\" field",
        ),
    ] {
        let out = run_in(dir.path(), &args, b"");
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!dir.path().join("kept.jsonl").exists(), "{args:?}");
        assert!(!dir.path().join("idx").exists(), "{args:?}");
        assert!(temporaries(dir.path()).is_empty(), "{args:?}");
    }
    // The misnamed field gets a hint naming the option.
    let out = run_in(
        dir.path(),
        &[
            "dedup",
            "r.jsonl",
            "-o",
            "kept.jsonl",
            "--text-field",
            "body",
        ],
        b"",
    );
    assert!(stderr_of(&out).contains("hint: --text-field"));
}

#[test]
fn issue10_truncated_gzip_exits_2_or_3_with_keep_going() {
    let dir = tempfile::tempdir().unwrap();
    let plain = corpus(3000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, plain.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    write(dir.path(), "cut.jsonl.gz", &gz[..gz.len() * 4 / 10]);
    let args = [
        "dedup",
        "cut.jsonl.gz",
        "-o",
        "kept.jsonl",
        "--stats-json",
        "s.json",
    ];
    let out = run_in(dir.path(), &args, b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(!dir.path().join("kept.jsonl").exists());
    let mut keep_going = args.to_vec();
    keep_going.push("--keep-going");
    let out = run_in(dir.path(), &keep_going, b"");
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("incomplete inputs"), "{stderr}");
    let s = stats_adding_up(&dir.path().join("s.json"));
    let read = s["docs_read"].as_u64().unwrap();
    assert!(read > 100 && read < 3000, "{s}");
    assert_eq!(s["incomplete_inputs"][0]["records_read"], read);
}

#[test]
fn issue10_no_output_can_overwrite_an_input_or_another_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(30);
    write(dir.path(), "r.jsonl", data.as_bytes());
    std::fs::hard_link(dir.path().join("r.jsonl"), dir.path().join("link.jsonl")).unwrap();
    std::os::unix::fs::symlink("r.jsonl", dir.path().join("sym.jsonl")).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "dedup",
            "r.jsonl",
            "-o",
            "same.jsonl",
            "--removed",
            "same.jsonl",
        ],
        vec![
            "dedup",
            "r.jsonl",
            "-o",
            "same.jsonl",
            "--clusters",
            "./same.jsonl",
        ],
        vec![
            "dedup",
            "r.jsonl",
            "-o",
            "same.jsonl",
            "--rejected",
            "sub/../same.jsonl",
        ],
        vec![
            "dedup",
            "r.jsonl",
            "-o",
            "k.jsonl",
            "--stats-json",
            "r.jsonl",
        ],
        vec!["dedup", "r.jsonl", "-o", "k.jsonl", "--report", "r.jsonl"],
        vec!["dedup", "r.jsonl", "-o", "link.jsonl"],
        vec!["dedup", "r.jsonl", "-o", "sym.jsonl"],
        vec!["stats", "r.jsonl", "--report", "r.jsonl"],
        vec!["lines", "r.jsonl", "-o", "r.jsonl"],
        vec![
            "clusters",
            "r.jsonl",
            "-o",
            "c.jsonl",
            "--stats-json",
            "c.jsonl",
        ],
        vec!["dedup", "-", "-o", "-", "--removed", "-"],
    ];
    for args in &cases {
        let out = run_in(dir.path(), args, data.as_bytes());
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("name the same file"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("r.jsonl")).unwrap(),
            data
        );
        for name in ["same.jsonl", "k.jsonl", "c.jsonl"] {
            assert!(!dir.path().join(name).exists(), "{args:?} wrote {name}");
        }
    }
    // An output inside an index directory is refused too.
    let out = run_in(
        dir.path(),
        &["index", "build", "r.jsonl", "--index", "idx"],
        b"",
    );
    ok(&out);
    let out = run_in(
        dir.path(),
        &["dedup", "r.jsonl", "-o", "idx/k.jsonl", "--against", "idx"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("inside the index directory of --against"));
}

#[test]
fn issue10_outputs_that_cannot_be_written_fail_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "r.jsonl", corpus(30).as_bytes());
    let out = run_in(
        dir.path(),
        &[
            "dedup",
            "r.jsonl",
            "-o",
            "kept.jsonl",
            "--stats-json",
            "nowhere/s.json",
        ],
        b"",
    );
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write nowhere/s.json: the directory does not exist"),
        "{stderr}"
    );
    // No summary was printed: the run never started; the kept output was never committed.
    assert!(!stderr.contains("documents read"), "{stderr}");
    assert!(!dir.path().join("kept.jsonl").exists());
    assert!(
        !stderr.contains(".neardup-"),
        "a temporary name leaked: {stderr}"
    );
    assert!(temporaries(dir.path()).is_empty());
}

/// Runs `script` with bash (process substitution, pipes) in `dir`.
fn bash(dir: &Path, script: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("N", BIN)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn issue10_process_substitution_pipes_and_dev_stdin_are_read_like_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "r.jsonl", corpus(200).as_bytes());
    let reference = run_in(
        dir.path(),
        &["dedup", "r.jsonl", "-o", "ref.jsonl", "-q"],
        b"",
    );
    ok(&reference);
    let expected = read_lines(&dir.path().join("ref.jsonl"));
    assert!(expected.len() > 100 && expected.len() < 200);
    for script in [
        "$N dedup <(cat r.jsonl) -o k.jsonl -q",
        "$N dedup <(cat r.jsonl) -o k.jsonl -q --verify exact",
        "$N dedup /dev/stdin -o k.jsonl -q < r.jsonl",
        "cat r.jsonl | $N dedup /dev/stdin -o k.jsonl -q",
        "$N dedup <(cat r.jsonl) -o k.jsonl -q --strip-boilerplate --min-docs 500",
    ] {
        let _ = std::fs::remove_file(dir.path().join("k.jsonl"));
        let out = bash(dir.path(), script);
        assert!(out.status.success(), "{script}: {}", stderr_of(&out));
        assert_eq!(
            read_lines(&dir.path().join("k.jsonl")),
            expected,
            "{script}"
        );
    }
    let out = bash(dir.path(), "$N lines <(cat r.jsonl) -o l.jsonl -q");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(read_lines(&dir.path().join("l.jsonl")).len(), 200);
    let out = bash(dir.path(), "$N stats <(cat r.jsonl) --json -q");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["docs_read"], 200);
    let out = bash(dir.path(), "$N index build <(cat r.jsonl) --index idx -q");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = run_in(
        dir.path(),
        &["index", "info", "--index", "idx", "--json"],
        b"",
    );
    let info: serde_json::Value = serde_json::from_slice(&ok_stdout(&out)).unwrap();
    assert_eq!(info["documents"].as_u64(), Some(expected.len() as u64));
}

#[test]
fn issue10_a_named_fifo_is_read_once_and_spooled() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(100);
    write(dir.path(), "r.jsonl", data.as_bytes());
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let writer = std::thread::spawn({
        let fifo = fifo.clone();
        let data = data.clone();
        move || std::fs::write(fifo, data).unwrap()
    });
    let out = Command::new("timeout")
        .args([
            "60",
            BIN,
            "dedup",
            "fifo",
            "-o",
            "k.jsonl",
            "--removed",
            "rm.jsonl",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let kept = read_lines(&dir.path().join("k.jsonl")).len();
    let removed = read_lines(&dir.path().join("rm.jsonl")).len();
    assert_eq!(kept + removed, 100);
    assert!(removed >= 20, "{removed}");
}

/// Starts `neardup args` in `dir` and waits until one of its temporary files exists.
fn start_and_wait_for_temporary(dir: &Path, args: &[&str]) -> std::process::Child {
    let child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while temporaries(&dir.join("out")).is_empty() {
        assert!(Instant::now() < deadline, "no temporary file appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn issue10_sigterm_and_sigint_remove_uncommitted_outputs_and_sigkill_leftovers_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "big.jsonl", corpus(40_000).as_bytes());
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let args = [
        "dedup",
        "big.jsonl",
        "-o",
        "out/k.jsonl",
        "--removed",
        "out/r.jsonl",
        "--memory",
        "4M",
        "--temp-dir",
        "out",
    ];
    for (name, code) in [("TERM", 143), ("INT", 130)] {
        let child = start_and_wait_for_temporary(dir.path(), &args);
        signal(&child, name);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", stderr_of(&out));
        assert!(stderr_of(&out).contains("uncommitted output files removed"));
        assert!(temporaries(&dir.path().join("out")).is_empty());
        assert!(!dir.path().join("out/k.jsonl").exists());
    }
    // SIGKILL leaves the temporary files; the next run writing there removes them.
    let mut child = start_and_wait_for_temporary(dir.path(), &args);
    child.kill().unwrap();
    child.wait().unwrap();
    let left = temporaries(&dir.path().join("out"));
    assert!(!left.is_empty());
    write(dir.path(), "small.jsonl", corpus(10).as_bytes());
    let out = run_in(
        dir.path(),
        &["dedup", "small.jsonl", "-o", "out/k.jsonl"],
        b"",
    );
    ok(&out);
    let remaining = temporaries(&dir.path().join("out"));
    assert!(
        remaining.is_empty(),
        "left {left:?}, remaining {remaining:?}"
    );
}

#[test]
fn issue10_a_killed_index_build_leaves_no_index_and_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "r.jsonl", corpus(50).as_bytes());
    // A build that fails (here at a bad record under --strict) leaves no index behind, so the
    // same build can run again once the input is fixed.
    let mut bad = corpus(50);
    bad.push_str("{\"id\":\"broken\"\n");
    write(dir.path(), "bad.jsonl", bad.as_bytes());
    let build = [
        "index",
        "build",
        "bad.jsonl",
        "--index",
        "first",
        "--strict",
    ];
    let out = run_in(dir.path(), &build, b"");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(!dir.path().join("first").exists());
    write(dir.path(), "bad.jsonl", corpus(50).as_bytes());
    ok(&run_in(dir.path(), &build, b""));
    // What a build killed while writing leaves: its staging directory, whose owner is gone.
    let staging = dir.path().join(".neardup-index-99999-abcdef");
    std::fs::create_dir(&staging).unwrap();
    write(&staging, ".neardup-owner", b"");
    write(&staging, "MANIFEST", b"half");
    let out = run_in(
        dir.path(),
        &["index", "build", "r.jsonl", "--index", "idx"],
        b"",
    );
    ok(&out);
    assert!(!staging.exists(), "the stale staging directory was removed");
    assert!(temporaries(dir.path()).is_empty());
    let out = run_in(
        dir.path(),
        &["index", "info", "--index", "idx", "--json"],
        b"",
    );
    let info: serde_json::Value = serde_json::from_slice(&ok_stdout(&out)).unwrap();
    assert_eq!(info["documents"], 40);
    // A build into an existing empty directory works; into a non-empty one is refused.
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    ok(&run_in(
        dir.path(),
        &["index", "build", "r.jsonl", "--index", "empty"],
        b"",
    ));
    let out = run_in(
        dir.path(),
        &["index", "build", "r.jsonl", "--index", "idx"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("already holds an index"));
}

#[test]
fn issue10_files_format_never_reads_its_own_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    for i in 0..5 {
        write(&docs, &format!("d{i}.txt"), story(i, 80).as_bytes());
    }
    write(&docs, ".neardup-1-stale", story(0, 80).as_bytes());
    let args = [
        "dedup",
        "docs",
        "--format",
        "files",
        "-o",
        "docs/kept.jsonl",
        "--stats-json",
        "docs/s.json",
    ];
    for _ in 0..2 {
        ok(&run_in(dir.path(), &args, b""));
        let s = stats_adding_up(&docs.join("s.json"));
        assert_eq!(s["docs_read"], 5, "{s}");
        assert_eq!(read_lines(&docs.join("kept.jsonl")).len(), 5);
    }
}

#[test]
fn issue10_a_byte_order_mark_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"\xef\xbb\xbf".to_vec();
    data.extend_from_slice(corpus(5).as_bytes());
    write(dir.path(), "bom.jsonl", &data);
    let out = run_in(
        dir.path(),
        &[
            "dedup",
            "bom.jsonl",
            "-o",
            "k.jsonl",
            "--stats-json",
            "s.json",
        ],
        b"",
    );
    let stderr = ok(&out);
    assert!(stderr.contains("byte-order marks"), "{stderr}");
    let s = stats_adding_up(&dir.path().join("s.json"));
    assert_eq!(
        (s["rejected"].as_u64(), s["byte_order_marks"].as_u64()),
        (Some(0), Some(1))
    );
    let kept = read_json_lines(&dir.path().join("k.jsonl"));
    assert_eq!(kept[0]["id"], "d0");
    assert_eq!(kept.len(), 4);
}

#[test]
fn issue10_ids_objects_duplicates_and_ambiguous_text_keys() {
    let dir = tempfile::tempdir().unwrap();
    let text = story(7, 60);
    let data = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        serde_json::json!({"id": {"site": "a", "n": 1}, "text": text}),
        serde_json::json!({"id": [1, 2], "text": text}),
        format_args!(
            r#"{{"id":"twice","text":"{}","text":"other words"}}"#,
            story(8, 60)
        ),
        record("same", &story(9, 60)),
        record("same", &story(10, 60)),
    );
    write(dir.path(), "ids.jsonl", data.as_bytes());
    let out = run_in(
        dir.path(),
        &[
            "dedup",
            "ids.jsonl",
            "-o",
            "k.jsonl",
            "--removed",
            "rm.jsonl",
            "--rejected",
            "rej.jsonl",
            "--stats-json",
            "s.json",
        ],
        b"",
    );
    let stderr = ok(&out);
    let removed = read_json_lines(&dir.path().join("rm.jsonl"));
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["id"], "[1,2]");
    assert_eq!(removed[0]["duplicate_of"], r#"{"n":1,"site":"a"}"#);
    let rejected = read_json_lines(&dir.path().join("rej.jsonl"));
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["line"], 3);
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("\"text\" appears twice")
    );
    let s = stats_adding_up(&dir.path().join("s.json"));
    assert_eq!(s["duplicate_ids"], 1);
    assert!(stderr.contains("duplicate ids"), "{stderr}");
    // `lines` rejects the ambiguous record the same way, instead of splicing into the first key.
    let out = run_in(
        dir.path(),
        &[
            "lines",
            "ids.jsonl",
            "-o",
            "l.jsonl",
            "--rejected",
            "lrej.jsonl",
        ],
        b"",
    );
    ok(&out);
    let rejected = read_json_lines(&dir.path().join("lrej.jsonl"));
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["line"], 3);
    assert_eq!(read_lines(&dir.path().join("l.jsonl")).len(), 4);
}

#[test]
fn issue10_an_index_inside_a_files_input_is_never_read_as_documents() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    for i in 0..3 {
        write(&docs, &format!("d{i}.txt"), story(i, 80).as_bytes());
    }
    let build = [
        "index", "build", "--format", "files", "docs", "--index", "docs/idx",
    ];
    ok(&run_in(dir.path(), &build, b""));
    let add = [
        "index",
        "add",
        "--format",
        "files",
        "docs",
        "--index",
        "docs/idx",
        "--stats-json",
        "s.json",
    ];
    ok(&run_in(dir.path(), &add, b""));
    let s = stats_adding_up(&dir.path().join("s.json"));
    assert_eq!(
        (s["docs_read"].as_u64(), s["rejected"].as_u64()),
        (Some(3), Some(0))
    );
}

#[test]
fn issue10_a_failed_run_never_truncates_a_symlinked_output_and_stdout_is_compared_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(40);
    write(dir.path(), "r.jsonl", data.as_bytes());
    write(dir.path(), "real.jsonl", b"precious\n");
    std::os::unix::fs::symlink("real.jsonl", dir.path().join("out.jsonl")).unwrap();
    // The run fails (a missing input): the link's target keeps its bytes.
    let out = run_in(
        dir.path(),
        &["dedup", "r.jsonl", "gone.jsonl", "-o", "out.jsonl"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read(dir.path().join("real.jsonl")).unwrap(),
        b"precious\n"
    );
    // A run that succeeds replaces the target; the link stays a link.
    ok(&run_in(
        dir.path(),
        &["dedup", "r.jsonl", "-o", "out.jsonl"],
        b"",
    ));
    assert!(
        std::fs::symlink_metadata(dir.path().join("out.jsonl"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(read_lines(&dir.path().join("real.jsonl")).len(), 32);
    // Stdout redirected to the file named by --removed is the same file.
    let out = bash(
        dir.path(),
        "$N dedup r.jsonl -o - --removed rm.jsonl > rm.jsonl",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("name the same file"));
    // Devices never clash.
    ok(&run_in(
        dir.path(),
        &[
            "dedup",
            "r.jsonl",
            "-o",
            "/dev/null",
            "--removed",
            "/dev/null",
        ],
        b"",
    ));
}

#[test]
fn issue10_a_broken_input_stops_every_worker_of_a_distributed_run() {
    let dir = tempfile::tempdir().unwrap();
    let plain = corpus(3000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, plain.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    write(dir.path(), "cut.jsonl.gz", &gz[..gz.len() / 2]);
    write(dir.path(), "r.jsonl", corpus(100).as_bytes());
    for inputs in [
        vec!["cut.jsonl.gz", "r.jsonl"],
        vec!["gone.jsonl", "r.jsonl"],
    ] {
        let mut args = vec!["60", BIN, "dedup"];
        args.extend(&inputs);
        args.extend(["-o", "k.jsonl", "--workers", "2"]);
        let out = Command::new("timeout")
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{inputs:?}: {}",
            stderr_of(&out)
        );
        assert!(!dir.path().join("k.jsonl").exists());
    }
    let out = bash(dir.path(), "$N dedup <(cat r.jsonl) -o k.jsonl --workers 2");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("not pipes"));
}

#[test]
fn issue10_options_a_distributed_run_does_not_support_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "r.jsonl", corpus(20).as_bytes());
    for (option, extra) in [
        ("--against", vec!["--against", "idx"]),
        ("--report", vec!["--report", "r.html"]),
        ("--keep-going", vec!["--keep-going"]),
        ("--memory", vec!["--memory", "64M"]),
        ("--temp-dir", vec!["--temp-dir", "."]),
    ] {
        let mut args = vec!["dedup", "r.jsonl", "-o", "k.jsonl", "--workers", "2"];
        args.extend(extra);
        let out = run_in(dir.path(), &args, b"");
        assert_eq!(out.status.code(), Some(1), "{option}");
        assert!(
            stderr_of(&out).contains(&format!("does not support {option}")),
            "{option}: {}",
            stderr_of(&out)
        );
        assert!(!dir.path().join("k.jsonl").exists());
    }
}

#[test]
fn issue10_streaming_refuses_a_memory_budget_it_cannot_apply_and_auto_mode_runs_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(30);
    for option in [["--memory", "64M"], ["--temp-dir", "."]] {
        let mut args = vec!["dedup", "-", "-o", "-", "--mode", "stream"];
        args.extend(option);
        let out = run_in(dir.path(), &args, data.as_bytes());
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr_of(&out).contains(&format!("cannot honour {}", option[0])));
        let auto = [&["dedup", "-", "-o", "-", "-q"][..], &option[..]].concat();
        let kept = ok_stdout(&run_in(dir.path(), &auto, data.as_bytes()));
        assert_eq!(String::from_utf8(kept).unwrap().lines().count(), 24);
    }
}
