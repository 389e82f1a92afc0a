//! Streaming mode (issue 4): `neardup dedup - -o -` decides each document as it arrives.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use crate::util::*;

fn corpus() -> Vec<String> {
    let mut records = Vec::new();
    for i in 0..60u64 {
        records.push(record(&format!("o{i}"), &story(i, 120)));
        if i % 3 == 0 {
            records.push(record(&format!("copy{i}"), &story(i, 120)));
        }
        if i % 4 == 0 {
            let mut words: Vec<String> = story(i, 120).split(' ').map(str::to_string).collect();
            words[110] = "edited".into();
            records.push(record(&format!("near{i}"), &words.join(" ")));
        }
    }
    records
}

/// Each record comes out before the next one goes in: the output is not held back until the
/// end of the input.
#[test]
fn issue_4_stream_decides_each_document_as_it_arrives() {
    let mut child = Command::new(BIN)
        .args(["dedup", "-", "-o", "-", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, arrived) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let fresh = [story(1, 100), story(2, 100), story(3, 100)];
    for (i, text) in fresh.iter().enumerate() {
        writeln!(stdin, "{}", record(&format!("d{i}"), text)).unwrap();
        stdin.flush().unwrap();
        // Generous: this waits for a decision, it does not time one.
        let line = arrived
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("record d{i} not written while the input is still open"));
        assert!(line.contains(&format!("\"d{i}\"")), "{line}");
    }
    // A duplicate produces nothing; the next fresh document comes through.
    writeln!(stdin, "{}", record("dup", &fresh[0])).unwrap();
    writeln!(stdin, "{}", record("d3", &story(4, 100))).unwrap();
    stdin.flush().unwrap();
    let line = arrived.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(line.contains("\"d3\""), "{line}");
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert!(arrived.recv_timeout(Duration::from_secs(10)).is_err());
}

#[test]
fn issue_4_stream_keeps_first_seen_and_counts_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let input = corpus().join("\n") + "\n";
    let out = run_in(
        dir.path(),
        &[
            "dedup",
            "-",
            "-o",
            "-",
            "--removed",
            "removed.jsonl",
            "--clusters",
            "clusters.jsonl",
            "--stats-json",
            "s.json",
            "-q",
        ],
        input.as_bytes(),
    );
    ok(&out);
    let kept: Vec<String> = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let s = stats_adding_up(&dir.path().join("s.json"));
    assert_eq!(s["kept"].as_u64().unwrap() as usize, kept.len());
    assert_eq!(kept.len(), 60, "{kept:?}");
    assert!(kept.iter().all(|id| id.starts_with('o')));
    let removed = read_json_lines(&dir.path().join("removed.jsonl"));
    assert_eq!(removed.len(), 20 + 15);
    let kept_set: HashSet<&str> = kept.iter().map(String::as_str).collect();
    for r in &removed {
        let id = r["id"].as_str().unwrap();
        let of = r["duplicate_of"].as_str().unwrap();
        assert!(kept_set.contains(of), "{r}");
        assert_eq!(&id[id.find(char::is_numeric).unwrap()..], &of[1..], "{r}");
        let kind = if id.starts_with("copy") {
            "exact"
        } else {
            "near"
        };
        assert_eq!(r["kind"], kind, "{r}");
    }
    let clusters = read_json_lines(&dir.path().join("clusters.jsonl"));
    assert_eq!(clusters[0]["size"], 3);
    assert_eq!(clusters[0]["kept"], "o0");
    // Same bytes when the same input is a file streamed by one thread, or by two.
    write(dir.path(), "in.jsonl", input.as_bytes());
    for threads in ["1", "2"] {
        let again = run_with_env(
            dir.path(),
            &["dedup", "in.jsonl", "-o", "-", "--mode", "stream", "-q"],
            b"",
            &[("RAYON_NUM_THREADS", threads)],
        );
        assert_eq!(ok_stdout(&again), out.stdout, "threads {threads}");
    }
}

#[test]
fn issue_4_stream_into_a_closed_pipe_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    // Far more distinct output than a pipe buffers.
    let input: String = (0..3000)
        .map(|i| record(&format!("d{i}"), &story(i, 120)) + "\n")
        .collect();
    write(dir.path(), "in.jsonl", input.as_bytes());
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {BIN} dedup - -o - -q < in.jsonl | head -n 2 > head.txt"
        ))
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "neardup exited non-zero into a closed pipe"
    );
    assert_eq!(read_lines(&dir.path().join("head.txt")).len(), 2);
}

#[test]
fn issue_4_stream_against_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let records = corpus();
    write(
        dir.path(),
        "old.jsonl",
        (records[..10].join("\n") + "\n").as_bytes(),
    );
    ok(&run_in(
        dir.path(),
        &["index", "build", "old.jsonl", "--index", "idx", "-q"],
        b"",
    ));
    let input = records.join("\n") + "\n";
    let out = run_in(
        dir.path(),
        &[
            "dedup",
            "-",
            "-o",
            "-",
            "--against",
            "idx",
            "--removed",
            "r.jsonl",
            "-q",
        ],
        input.as_bytes(),
    );
    let kept = String::from_utf8(ok_stdout(&out)).unwrap();
    let old: Vec<String> = records[..10]
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(r).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for id in &old {
        assert!(!kept.contains(&format!("\"{id}\"")), "{id} was kept");
    }
    let removed = read_json_lines(&dir.path().join("r.jsonl"));
    assert!(removed.iter().any(|r| r["duplicate_in"] == "idx"));
}
