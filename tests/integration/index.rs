//! The persistent index (issue 4): build, add, info, compact, `--against`, `--update`, refusal of
//! other parameters, corruption detection and crash safety.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// `story(seed, words)` with one word changed near the end: word-5-gram Jaccard about 0.97.
fn near_copy(seed: u64, words: usize) -> String {
    let mut words: Vec<String> = story(seed, words).split(' ').map(str::to_string).collect();
    let at = words.len() - 10;
    words[at] = "changed".into();
    words.join(" ")
}

fn jsonl(records: &[(&str, String)]) -> String {
    records
        .iter()
        .map(|(id, text)| record(id, text))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn index_docs(dir: &Path, index: &str) -> u64 {
    let out = run_in(dir, &["index", "info", "--index", index, "--json"], b"");
    ok(&out);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    info["documents"].as_u64().unwrap()
}

fn removed_by_id(path: &Path) -> Vec<(String, String, Option<String>, String)> {
    read_json_lines(path)
        .into_iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["duplicate_of"].as_str().unwrap().to_string(),
                r["duplicate_in"].as_str().map(str::to_string),
                r["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn issue_4_dedup_against_an_index_names_the_indexed_id() {
    let dir = tempfile::tempdir().unwrap();
    let old = jsonl(&[
        ("old1", story(1, 400)),
        ("old2", story(2, 400)),
        ("old3", story(3, 400)),
    ]);
    let new = jsonl(&[
        ("new-exact", story(2, 400)),
        ("new-near", near_copy(3, 400)),
        ("new-fresh", story(4, 400)),
        ("new-fresh-copy", story(4, 400)),
    ]);
    write(dir.path(), "old.jsonl", old.as_bytes());
    write(dir.path(), "new.jsonl", new.as_bytes());
    ok(&run_in(
        dir.path(),
        &["index", "build", "old.jsonl", "--index", "idx", "-q"],
        b"",
    ));
    assert_eq!(index_docs(dir.path(), "idx"), 3);
    ok(&run_in(
        dir.path(),
        &[
            "dedup",
            "new.jsonl",
            "-o",
            "kept.jsonl",
            "--removed",
            "removed.jsonl",
            "--clusters",
            "clusters.jsonl",
            "--against",
            "idx",
            "--stats-json",
            "s.json",
            "-q",
        ],
        b"",
    ));
    let kept: Vec<String> = read_json_lines(&dir.path().join("kept.jsonl"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, ["new-fresh"]);
    let idx = Some("idx".to_string());
    assert_eq!(
        removed_by_id(&dir.path().join("removed.jsonl")),
        [
            (
                "new-exact".into(),
                "old2".into(),
                idx.clone(),
                "exact".into()
            ),
            ("new-near".into(), "old3".into(), idx.clone(), "near".into()),
            (
                "new-fresh-copy".into(),
                "new-fresh".into(),
                None,
                "exact".into()
            ),
        ]
    );
    let s = stats_adding_up(&dir.path().join("s.json"));
    assert_eq!(s["indexed_duplicates"], 2);
    let clusters = read_json_lines(&dir.path().join("clusters.jsonl"));
    assert_eq!(clusters.len(), 3);
    assert!(
        clusters
            .iter()
            .any(|c| c["kept"] == "old3" && c["kept_in"] == "idx" && c["size"] == 2),
        "{clusters:?}"
    );
}

#[test]
fn issue_4_update_adds_what_was_kept_so_a_rerun_removes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let day1 = jsonl(&[("a", story(1, 300)), ("b", story(2, 300))]);
    let day2 = jsonl(&[("c", near_copy(1, 300)), ("d", story(5, 300))]);
    write(dir.path(), "day1.jsonl", day1.as_bytes());
    write(dir.path(), "day2.jsonl", day2.as_bytes());
    let dedup = |input: &str, out: &str| {
        ok(&run_in(
            dir.path(),
            &[
                "dedup",
                input,
                "-o",
                out,
                "--against",
                "seen",
                "--update",
                "-q",
            ],
            b"",
        ))
    };
    // The first run creates the index.
    dedup("day1.jsonl", "k1.jsonl");
    assert_eq!(read_lines(&dir.path().join("k1.jsonl")).len(), 2);
    assert_eq!(index_docs(dir.path(), "seen"), 2);
    dedup("day2.jsonl", "k2.jsonl");
    let kept2 = read_json_lines(&dir.path().join("k2.jsonl"));
    assert_eq!(kept2.len(), 1);
    assert_eq!(kept2[0]["id"], "d");
    assert_eq!(index_docs(dir.path(), "seen"), 3);
    // Everything seen before is removed now.
    dedup("day1.jsonl", "k3.jsonl");
    dedup("day2.jsonl", "k4.jsonl");
    assert!(read_lines(&dir.path().join("k3.jsonl")).is_empty());
    assert!(read_lines(&dir.path().join("k4.jsonl")).is_empty());
    assert_eq!(index_docs(dir.path(), "seen"), 3);
}

#[test]
fn issue_4_index_with_other_parameters_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.jsonl",
        jsonl(&[("a", story(1, 100))]).as_bytes(),
    );
    ok(&run_in(
        dir.path(),
        &[
            "index",
            "build",
            "a.jsonl",
            "--index",
            "idx",
            "--num-perm",
            "64",
            "-q",
        ],
        b"",
    ));
    let out = run_in(
        dir.path(),
        &["dedup", "a.jsonl", "-o", "k.jsonl", "--against", "idx"],
        b"",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("num_perm is 64 in the index, 128 in this run"),
        "{stderr}"
    );
    assert!(!dir.path().join("k.jsonl").exists());
    // Another threshold chooses other bands: refused, naming the flags that would fit.
    ok(&run_in(
        dir.path(),
        &["index", "build", "a.jsonl", "--index", "idx8", "-q"],
        b"",
    ));
    let out = run_in(
        dir.path(),
        &[
            "clusters",
            "a.jsonl",
            "-o",
            "c.jsonl",
            "--against",
            "idx8",
            "--threshold",
            "0.5",
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("bands × rows is 18 × 7 (chosen for threshold 0.8) in the index")
            && stderr.contains("hint: run with the index's settings")
            && stderr.contains("--bands 18 --rows 7"),
        "{stderr}"
    );
    // `index add` takes the index's own parameters.
    ok(&run_in(
        dir.path(),
        &["index", "add", "a.jsonl", "--index", "idx", "-q"],
        b"",
    ));
    assert_eq!(index_docs(dir.path(), "idx"), 2);
    let out = run_in(
        dir.path(),
        &["index", "build", "a.jsonl", "--index", "idx", "-q"],
        b"",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds an index"));
}

#[test]
fn issue_4_compaction_keeps_every_answer() {
    let dir = tempfile::tempdir().unwrap();
    let parts: Vec<String> = (0..3)
        .map(|p| {
            let records: Vec<(String, String)> = (0..20)
                .map(|i| (format!("p{p}-{i}"), story(100 * p + i, 200)))
                .collect();
            let refs: Vec<(&str, String)> = records
                .iter()
                .map(|(i, t)| (i.as_str(), t.clone()))
                .collect();
            jsonl(&refs)
        })
        .collect();
    for (p, part) in parts.iter().enumerate() {
        write(dir.path(), &format!("p{p}.jsonl"), part.as_bytes());
    }
    let queries: Vec<(String, String)> = (0..3)
        .flat_map(|p| {
            [
                (format!("q{p}-exact"), story(100 * p + 7, 200)),
                (format!("q{p}-near"), {
                    let mut w: Vec<String> = story(100 * p + 9, 200)
                        .split(' ')
                        .map(str::to_string)
                        .collect();
                    w[190] = "x".into();
                    w.join(" ")
                }),
            ]
        })
        .collect();
    let refs: Vec<(&str, String)> = queries
        .iter()
        .map(|(i, t)| (i.as_str(), t.clone()))
        .collect();
    write(dir.path(), "q.jsonl", jsonl(&refs).as_bytes());
    ok(&run_in(
        dir.path(),
        &["index", "build", "p0.jsonl", "--index", "idx", "-q"],
        b"",
    ));
    for p in ["p1.jsonl", "p2.jsonl"] {
        ok(&run_in(
            dir.path(),
            &["index", "add", p, "--index", "idx", "-q"],
            b"",
        ));
    }
    let query = |out: &str| {
        ok(&run_in(
            dir.path(),
            &[
                "dedup",
                "q.jsonl",
                "-o",
                "k.jsonl",
                "--removed",
                out,
                "--against",
                "idx",
                "-q",
            ],
            b"",
        ));
        std::fs::read(dir.path().join(out)).unwrap()
    };
    let before = query("r1.jsonl");
    assert_eq!(before.iter().filter(|&&b| b == b'\n').count(), 6);
    let info = run_in(dir.path(), &["index", "info", "--index", "idx"], b"");
    assert!(ok(&info).is_empty());
    assert!(String::from_utf8_lossy(&info.stdout).contains("segments     3"));
    ok(&run_in(
        dir.path(),
        &["index", "compact", "--index", "idx"],
        b"",
    ));
    let info = run_in(dir.path(), &["index", "info", "--index", "idx"], b"");
    assert!(String::from_utf8_lossy(&info.stdout).contains("segments     1"));
    assert_eq!(index_docs(dir.path(), "idx"), 60);
    assert_eq!(query("r2.jsonl"), before);
}

#[test]
fn issue_4_flipped_byte_and_truncation_are_reported_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let docs: Vec<(String, String)> = (0..30).map(|i| (format!("d{i}"), story(i, 100))).collect();
    let refs: Vec<(&str, String)> = docs.iter().map(|(i, t)| (i.as_str(), t.clone())).collect();
    write(dir.path(), "a.jsonl", jsonl(&refs).as_bytes());
    ok(&run_in(
        dir.path(),
        &["index", "build", "a.jsonl", "--index", "idx", "-q"],
        b"",
    ));
    let segment = dir.path().join("idx/seg-000001.nds");
    let good = std::fs::read(&segment).unwrap();
    let check = |what: &str| {
        let out = run_in(
            dir.path(),
            &["dedup", "a.jsonl", "-o", "k.jsonl", "--against", "idx"],
            b"",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: {stderr}");
        assert!(
            stderr.contains("seg-000001.nds is corrupt") && !stderr.contains("panicked"),
            "{what}: {stderr}"
        );
    };
    for at in [3, 70, good.len() / 2, good.len() - 3] {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        std::fs::write(&segment, &bad).unwrap();
        check(&format!("flip at {at}"));
    }
    std::fs::write(&segment, &good[..good.len() - 100]).unwrap();
    check("truncated");
    std::fs::write(&segment, &good).unwrap();
    ok(&run_in(
        dir.path(),
        &[
            "dedup",
            "a.jsonl",
            "-o",
            "k.jsonl",
            "--against",
            "idx",
            "-q",
        ],
        b"",
    ));
}

/// SIGKILLs `index add` at spread-out moments: after each kill the index opens, and holds either
/// the state before the add or the state after it, never a mix.
#[test]
fn issue_4_index_add_killed_at_any_moment_leaves_old_or_new_state() {
    let dir = tempfile::tempdir().unwrap();
    let docs: Vec<(String, String)> = (0..1500)
        .map(|i| (format!("d{i}"), story(i, 150)))
        .collect();
    let refs: Vec<(&str, String)> = docs.iter().map(|(i, t)| (i.as_str(), t.clone())).collect();
    write(dir.path(), "add.jsonl", jsonl(&refs).as_bytes());
    write(
        dir.path(),
        "first.jsonl",
        jsonl(&[("f", story(99_999, 150))]).as_bytes(),
    );
    ok(&run_in(
        dir.path(),
        &["index", "build", "first.jsonl", "--index", "idx", "-q"],
        b"",
    ));
    let add = || {
        Command::new(BIN)
            .args(["index", "add", "add.jsonl", "--index", "idx", "-q"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long one uninterrupted add takes (it commits, so the expected count moves on).
    let started = Instant::now();
    assert!(add().wait().unwrap().success());
    let full = started.elapsed();
    let mut expected = 1 + 1500;
    assert_eq!(index_docs(dir.path(), "idx"), expected);

    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut committed = 0;
    for round in 0..16 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Moments spread over the whole run, a little past its usual end.
        let delay = full.mul_f64((round as f64 + (state % 1000) as f64 / 1000.0) / 14.0);
        let mut child = add();
        std::thread::sleep(delay.min(Duration::from_secs(20)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let now = index_docs(dir.path(), "idx");
        assert!(
            now == expected || now == expected + 1500,
            "round {round}: {now} documents, expected {expected} or {}",
            expected + 1500
        );
        if now != expected {
            committed += 1;
        }
        expected = now;
        let _ = status;
    }
    // The index still answers, and the next writer clears what killed ones left behind.
    ok(&run_in(
        dir.path(),
        &["index", "add", "first.jsonl", "--index", "idx", "-q"],
        b"",
    ));
    let leftovers: Vec<String> = std::fs::read_dir(dir.path().join("idx"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(committed < 16, "no add was interrupted before its commit");
}
