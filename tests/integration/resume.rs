//! Issue 11: resumable runs. A `--work-dir` run killed (SIGKILL) at any moment and started again
//! with the same command finishes with the same bytes as a run that was never killed; outputs
//! appear only when the run is complete; a changed input or setting starts over and says why.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

const BIN: &str = env!("CARGO_BIN_EXE_neardup");

/// 30,000 generated documents (about 14 MB: the first pass saves a checkpoint every MiB), with
/// two bad lines (one early, one last) and a repeated id.
fn corpus(dir: &Path) {
    use neardup::synth::{Corpus, CorpusSpec};
    let mut docs = String::new();
    let generated = Corpus::new(CorpusSpec {
        docs: 30_000,
        seed: 12,
        dup_fraction: 0.4,
        mean_words: 40,
    });
    for (number, d) in generated.enumerate() {
        // A bad line early on: checkpoints cover it, and a resumed run reports it again.
        if number == 100 {
            docs.push_str("{broken early\n");
        }
        docs.push_str(&(record(&d.id, &d.text) + "\n"));
    }
    docs.push_str("{broken\n");
    docs.push_str(&record("d00000000", "an id given twice"));
    docs.push('\n');
    write(dir, "in.jsonl", docs.as_bytes());
}

fn dedup_args<'a>(input: &'a str, work: Option<&'a str>, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "dedup",
        input,
        "-o",
        "kept.jsonl",
        "--removed",
        "removed.jsonl",
        "--clusters",
        "clusters.jsonl",
        "--rejected",
        "rejected.jsonl",
        "--stats-json",
        "stats.json",
        "-q",
    ];
    if let Some(work) = work {
        args.extend(["--work-dir", work]);
    }
    args.extend_from_slice(extra);
    args
}

const OUTPUTS: [&str; 4] = [
    "kept.jsonl",
    "removed.jsonl",
    "clusters.jsonl",
    "rejected.jsonl",
];

fn outputs(dir: &Path) -> Vec<Vec<u8>> {
    OUTPUTS
        .iter()
        .map(|name| std::fs::read(dir.join(name)).unwrap())
        .collect()
}

/// Starts `args` and kills it with SIGKILL after `after` (if it has not finished); whether it
/// finished (a run that finished must have succeeded).
fn kill_after(dir: &Path, args: &[&str], after: Duration) -> bool {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let finished = child.try_wait().unwrap().is_some();
    if !finished {
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    assert!(
        !finished || status.success(),
        "a run that finished on its own failed ({status}) after {after:?}: {args:?}"
    );
    finished
}

#[test]
fn issue11_a_work_dir_run_killed_at_many_moments_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    killed_and_resumed(dir.path(), "in.jsonl", 2, &[]);
}

/// Gzipped WET (a member per record, a `warcinfo` record skipped): the skipped records and the
/// members' offsets survive the resume.
#[test]
fn issue12_a_gzipped_wet_run_killed_at_many_moments_resumes_to_the_same_bytes_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    generated(dir.path(), "src.jsonl", 30_000, 12, 0.4, 40);
    python_fixture(
        dir.path(),
        "warc_fixtures.py",
        "warcio",
        &["write", "wet", "--gzip", "src.jsonl", "in.warc.wet.gz"],
    );
    let stats = killed_and_resumed(dir.path(), "in.warc.wet.gz", 0, &[]);
    assert_eq!(stats["skipped_records"], 1, "{stats}");
}

/// A run that strips boilerplate saves its counts after the counting pass; resumed, it takes them.
#[test]
fn issue11_a_boilerplate_stripping_run_killed_at_many_moments_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    killed_and_resumed(
        dir.path(),
        "in.jsonl",
        2,
        &["--strip-boilerplate", "--min-docs", "4"],
    );
}

/// Runs a dedup of `input` in `dir` whole, then killed again and again and resumed, and checks
/// the outputs and counts are the same; the whole run's stats.
fn killed_and_resumed(dir: &Path, input: &str, rejected: u64, extra: &[&str]) -> serde_json::Value {
    ok(&run_in(dir, &dedup_args(input, None, extra), b""));
    let expected = outputs(dir);
    let expected_stats = stats_adding_up(&dir.join("stats.json"));
    assert!(expected_stats["near_duplicates"].as_u64().unwrap() > 1_000);
    assert_eq!(expected_stats["rejected"], rejected);
    for name in OUTPUTS.iter().chain(["stats.json"].iter()) {
        std::fs::remove_file(dir.join(name)).unwrap();
    }

    let args = dedup_args(input, Some("work"), extra);
    // Kill it again and again, each time a little later, each run resuming the last one.
    let mut resumed_some = false;
    let mut finished = false;
    for millis in [
        50, 150, 300, 450, 600, 800, 1_000, 1_300, 1_700, 2_200, 3_000,
    ] {
        if kill_after(dir, &args, Duration::from_millis(millis)) {
            finished = true;
            break;
        }
        // A killed run leaves no output, or (killed while committing them, when it was
        // complete) outputs that are whole.
        for (name, expected) in OUTPUTS.iter().zip(&expected) {
            if let Ok(bytes) = std::fs::read(dir.join(name)) {
                assert_eq!(&bytes, expected, "{name} after a kill at {millis} ms");
            }
        }
        let manifest = dir.join("work").join("MANIFEST");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            let saved: serde_json::Value = serde_json::from_str(&text).unwrap();
            resumed_some |= saved["checkpoint"]["docs"].as_u64().unwrap_or(0) > 0;
        }
    }
    if !finished {
        let out = run_in(dir, &args, b"");
        ok(&out);
    }
    assert!(resumed_some, "no kill landed after a checkpoint");
    assert_eq!(outputs(dir), expected, "outputs of the resumed run differ");
    let stats = stats_adding_up(&dir.join("stats.json"));
    for key in [
        "kept",
        "exact_duplicates",
        "near_duplicates",
        "rejected",
        "clusters",
        "duplicate_ids",
        "skipped_records",
        "skipped_by_reason",
    ] {
        assert_eq!(stats[key], expected_stats[key], "{key}");
    }
    // A finished run leaves its work directory empty.
    let left: Vec<_> = std::fs::read_dir(dir.join("work"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in the work directory: {left:?}");
    expected_stats
}

#[test]
fn issue11_a_changed_setting_or_input_starts_over_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    let args = dedup_args("in.jsonl", Some("work"), &[]);
    // Leave a checkpoint behind: kill the run once it has saved one.
    let manifest = dir.path().join("work").join("MANIFEST");
    for millis in [
        60, 100, 150, 220, 300, 450, 600, 1_000, 1_600, 2_500, 4_000, 6_000,
    ] {
        kill_after(dir.path(), &args, Duration::from_millis(millis));
        if manifest.exists() {
            break;
        }
    }
    assert!(manifest.exists(), "a checkpoint was saved");

    // Another threshold: the saved state is not used.
    let mut changed: Vec<&str> = args.iter().copied().filter(|a| *a != "-q").collect();
    changed.extend(["--threshold", "0.7"]);
    let out = run_in(dir.path(), &changed, b"");
    let stderr = ok(&out);
    assert!(
        stderr.contains("starting over in work: threshold is 0.8 there, 0.7 here"),
        "{stderr}"
    );
    let started_over = outputs(dir.path());
    ok(&run_in(
        dir.path(),
        &dedup_args("in.jsonl", None, &["--threshold", "0.7"]),
        b"",
    ));
    assert_eq!(started_over, outputs(dir.path()));

    // A changed input: kill a run after a checkpoint, change the input, run again.
    for millis in [
        60, 100, 150, 220, 300, 450, 600, 1_000, 1_600, 2_500, 4_000, 6_000,
    ] {
        kill_after(dir.path(), &args, Duration::from_millis(millis));
        if manifest.exists() {
            break;
        }
    }
    let mut text = std::fs::read(dir.path().join("in.jsonl")).unwrap();
    text.extend_from_slice(record("late", "one more document at the end").as_bytes());
    text.push(b'\n');
    write(dir.path(), "in.jsonl", &text);
    let loud: Vec<&str> = args.iter().copied().filter(|a| *a != "-q").collect();
    let stderr = ok(&run_in(dir.path(), &loud, b""));
    assert!(
        stderr.contains("starting over in work: input in.jsonl is ")
            && stderr.contains(" bytes there, "),
        "{stderr}"
    );
    let stats = stats(&dir.path().join("stats.json"));
    assert_eq!(stats["docs_read"], 30_004);
}

/// Kills a run of `args` in `dir` again and again, each time a little later, until it has left a
/// checkpoint (its manifest) behind.
fn leave_a_checkpoint(dir: &Path, args: &[&str]) {
    let manifest = dir.join("work").join("MANIFEST");
    for millis in [
        60, 100, 150, 220, 300, 450, 600, 1_000, 1_600, 2_500, 4_000, 6_000,
    ] {
        kill_after(dir, args, Duration::from_millis(millis));
        if manifest.exists() {
            return;
        }
    }
    panic!("no checkpoint was saved");
}

/// CI caught a run killed while it cleared its work directory (outputs committed): the next run
/// found a manifest naming tables already removed and failed. Now the manifest goes first, a
/// directory without one is cleared and started afresh, and a manifest naming a missing table
/// starts over saying so.
#[test]
fn issue11_a_work_dir_missing_saved_tables_starts_over_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    ok(&run_in(dir.path(), &dedup_args("in.jsonl", None, &[]), b""));
    let expected = outputs(dir.path());
    let args = dedup_args("in.jsonl", Some("work"), &[]);
    let loud: Vec<&str> = args.iter().copied().filter(|a| *a != "-q").collect();
    let work = dir.path().join("work");
    let left = |work: &Path| std::fs::read_dir(work).unwrap().count();

    // A saved table removed under a manifest naming it.
    leave_a_checkpoint(dir.path(), &args);
    std::fs::remove_file(work.join("signatures")).unwrap();
    let stderr = ok(&run_in(dir.path(), &loud, b""));
    assert!(
        stderr.contains("starting over in work: its saved table signatures is missing"),
        "{stderr}"
    );
    assert_eq!(outputs(dir.path()), expected);
    assert_eq!(left(&work), 0);

    // A clear cut short after the manifest went: what is left is not resumed, and is cleared.
    leave_a_checkpoint(dir.path(), &args);
    std::fs::remove_file(work.join("MANIFEST")).unwrap();
    std::fs::remove_file(work.join("states")).unwrap();
    let stderr = ok(&run_in(dir.path(), &loud, b""));
    assert!(!stderr.contains("resum"), "{stderr}");
    assert_eq!(outputs(dir.path()), expected);
    assert_eq!(left(&work), 0);
}

#[test]
fn issue11_a_work_dir_must_be_empty_or_neardups_and_is_refused_where_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    std::fs::create_dir(dir.path().join("data")).unwrap();
    write(dir.path(), "data/keep-me.txt", b"precious");
    let out = run_in(dir.path(), &dedup_args("in.jsonl", Some("data"), &[]), b"");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not empty and is not a neardup work directory"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("data/keep-me.txt")).unwrap(),
        b"precious"
    );

    // An output inside the work directory would be cleared with it.
    let out = run_in(
        dir.path(),
        &[
            "dedup",
            "in.jsonl",
            "-o",
            "work/kept.jsonl",
            "--work-dir",
            "work",
        ],
        b"",
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for (args, what) in [
        (
            &["stats", "in.jsonl", "--work-dir", "w"][..],
            "stats does not take it",
        ),
        (
            &[
                "dedup",
                "in.jsonl",
                "-o",
                "-",
                "--mode",
                "stream",
                "--work-dir",
                "w",
            ][..],
            "--work-dir",
        ),
        (
            &[
                "index",
                "build",
                "in.jsonl",
                "--index",
                "ix",
                "--work-dir",
                "w",
            ][..],
            "index build",
        ),
    ] {
        let out = run_in(dir.path(), args, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(what), "{args:?}: {stderr}");
    }
}
