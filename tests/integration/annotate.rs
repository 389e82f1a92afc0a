//! Issue 12, item 6: `dedup --annotate` writes every record that is not rejected, removed ones
//! too, with `duplicate_of`, `similarity`, `kind` and `cluster` added (null where they do not
//! apply), instead of dropping duplicates.

use std::collections::HashMap;

use serde_json::Value;

use crate::util::*;

const ADDED: [&str; 4] = ["duplicate_of", "similarity", "kind", "cluster"];

/// Every record annotated once, in input order: the kept ones are exactly `dedup`'s kept records
/// with nulls added, the removed ones carry what `--removed` says, and cluster numbers are those of
/// `--clusters`; under a budget that spills every table too.
#[test]
fn issue12_annotate_writes_every_record_with_what_was_decided() {
    let dir = tempfile::tempdir().unwrap();
    generated(dir.path(), "in.jsonl", 3_000, 21, 0.5, 30);
    let mut input = std::fs::read_to_string(dir.path().join("in.jsonl")).unwrap();
    input.push_str("{broken\n");
    write(dir.path(), "in.jsonl", input.as_bytes());
    std::fs::create_dir(dir.path().join("tmp")).unwrap();
    let plain = [
        "dedup",
        "in.jsonl",
        "-o",
        "kept.jsonl",
        "--removed",
        "removed.jsonl",
        "--clusters",
        "clusters.jsonl",
        "-q",
    ];
    ok(&run_in(dir.path(), &plain, b""));
    let kept = read_lines(&dir.path().join("kept.jsonl"));
    let removed: HashMap<String, Value> = read_json_lines(&dir.path().join("removed.jsonl"))
        .into_iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect();
    let mut cluster_of: HashMap<String, u64> = HashMap::new();
    for cluster in read_json_lines(&dir.path().join("clusters.jsonl")) {
        for member in cluster["members"].as_array().unwrap() {
            let id = member["id"].as_str().unwrap().to_string();
            cluster_of.insert(id, cluster["cluster"].as_u64().unwrap());
        }
    }
    assert!(removed.len() > 500 && cluster_of.len() > 1_000);
    for extra in [&[][..], &["--memory", "1M", "--temp-dir", "tmp"][..]] {
        let mut args = vec!["dedup", "in.jsonl", "-o", "all.jsonl", "--annotate", "-q"];
        args.extend_from_slice(extra);
        ok(&run_in(dir.path(), &args, b""));
        let written = read_lines(&dir.path().join("all.jsonl"));
        let originals: Vec<&str> = input.lines().take(3_000).collect();
        assert_eq!(
            written.len(),
            originals.len(),
            "every record but the broken one"
        );
        let mut kept_again = Vec::new();
        for (line, original) in written.iter().zip(&originals) {
            let value: Value = serde_json::from_str(line).unwrap();
            let id = value["id"].as_str().unwrap();
            // The record as read, then the fields.
            let cut = original.trim_end().strip_suffix('}').unwrap();
            assert!(line.starts_with(cut), "{line}");
            assert_eq!(
                value["cluster"].as_u64(),
                cluster_of.get(id).copied(),
                "{id}"
            );
            match removed.get(id) {
                Some(removal) => {
                    for key in ["duplicate_of", "similarity", "kind"] {
                        assert_eq!(value[key], removal[key], "{id}: {key}");
                    }
                }
                None => {
                    for key in ["duplicate_of", "similarity", "kind"] {
                        assert!(value[key].is_null(), "{id}: {key}");
                    }
                    kept_again.push(original.to_string());
                }
            }
            for key in ADDED {
                assert!(value.as_object().unwrap().contains_key(key), "{key}");
            }
        }
        assert_eq!(kept_again, kept);
    }
}

/// Lines of text become JSON records `{"id", "text"}` with the fields; a record that has one of
/// the fields already, a WARC output, a streaming run and a distributed run are refused, and a
/// refused run writes nothing.
#[test]
fn issue12_annotate_writes_text_as_json_and_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let text = "the same sentence about a fox that jumps over a lazy dog in the morning sun\n";
    write(
        dir.path(),
        "in.txt",
        format!("{text}{text}a line of its own with nothing like it\n").as_bytes(),
    );
    ok(&run_in(
        dir.path(),
        &["dedup", "in.txt", "-o", "out.jsonl", "--annotate", "-q"],
        b"",
    ));
    let written = read_json_lines(&dir.path().join("out.jsonl"));
    assert_eq!(written.len(), 3);
    assert_eq!(written[1]["id"], "in.txt:2");
    assert_eq!(written[1]["text"], text.trim_end());
    assert_eq!(written[1]["duplicate_of"], "in.txt:1");
    assert_eq!(written[1]["kind"], "exact");
    assert_eq!(written[0]["cluster"], written[1]["cluster"]);
    assert!(written[2]["cluster"].is_null() && written[2]["duplicate_of"].is_null());

    write(
        dir.path(),
        "has.jsonl",
        b"{\"id\":\"a\",\"cluster\":\"mine\",\"text\":\"x y z\"}\n",
    );
    let refusals: [(&[&str], &str); 4] = [
        (
            &["dedup", "has.jsonl", "-o", "o.jsonl", "--annotate"],
            "has a field \"cluster\" already",
        ),
        (&["dedup", "in.txt", "-o", "o.warc", "--annotate"], "WARC"),
        (
            &[
                "dedup",
                "in.txt",
                "-o",
                "o.jsonl",
                "--annotate",
                "--mode",
                "stream",
            ],
            "cannot --annotate",
        ),
        (
            &[
                "dedup",
                "in.txt",
                "-o",
                "o.jsonl",
                "--annotate",
                "--workers",
                "2",
            ],
            "--annotate is not supported in a distributed run",
        ),
    ];
    for (args, message) in refusals {
        let out = run_in(dir.path(), args, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!dir.path().join("o.jsonl").exists() && !dir.path().join("o.warc").exists());
    }
}
