//! Regression tests, named after the issue that asked for the behaviour.

use crate::util::*;

/// Issue 2: empty documents are kept and counted, never matched to each other.
#[test]
fn issue_2_empty_documents_are_never_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let input = [
        record("e1", ""),
        record("e2", "   "),
        record("e3", "!!! ..."),
        record("e4", ""),
    ]
    .join("\n");
    write(dir.path(), "in.jsonl", input.as_bytes());
    ok(&run_in(
        dir.path(),
        &[
            "dedup",
            "in.jsonl",
            "-o",
            "k.jsonl",
            "--stats-json",
            "s.json",
            "-q",
        ],
        b"",
    ));
    let s = stats_adding_up(&dir.path().join("s.json"));
    assert_eq!(
        (
            s["kept"].as_u64(),
            s["empty"].as_u64(),
            s["clusters"].as_u64()
        ),
        (Some(4), Some(4), Some(0))
    );
}

/// Issue 2: a document shorter than the shingle size still gets one shingle and can match.
#[test]
fn issue_2_short_documents_still_match() {
    let dir = tempfile::tempdir().unwrap();
    let input = [
        record("a", "Breaking news"),
        record("b", "breaking NEWS!"),
        record("c", "other news"),
    ]
    .join("\n");
    write(dir.path(), "in.jsonl", input.as_bytes());
    ok(&run_in(
        dir.path(),
        &[
            "dedup",
            "in.jsonl",
            "-o",
            "k.jsonl",
            "--removed",
            "r.jsonl",
            "-q",
        ],
        b"",
    ));
    let removed = read_json_lines(&dir.path().join("r.jsonl"));
    assert_eq!(removed.len(), 1);
    assert_eq!(
        (
            removed[0]["id"].as_str(),
            removed[0]["duplicate_of"].as_str()
        ),
        (Some("b"), Some("a"))
    );
}

/// Issue 2: on the shipped Clough & Stevenson sample, every answer whose exact word-5-gram Jaccard
/// to its task's original clears the threshold (with a margin for LSH misses) is clustered with it,
/// and independent answers (`non`) stay apart. Most `cut` answers copy only part of the
/// original and sit near Jaccard 0.3: finding those is containment's job, not Jaccard's.
#[test]
fn issue_2_clough_stevenson_copies_found_non_apart() {
    use neardup::normalize::Normalizer;
    use neardup::shingle::{ShingleKind, Shingler, jaccard};
    let threshold = 0.3;
    let dir = tempfile::tempdir().unwrap();
    let docs_path = sample("clough-stevenson/docs.jsonl");
    let out = run_in(
        dir.path(),
        &[
            "clusters",
            docs_path.to_str().unwrap(),
            "-o",
            "c.jsonl",
            "--threshold",
            "0.3",
            "-q",
        ],
        b"",
    );
    ok(&out);
    let docs = read_json_lines(&docs_path);
    let text = |id: &str| {
        docs.iter().find(|d| d["id"] == id).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let shingler = Shingler::new(ShingleKind::Words(5), 1, true);
    let set = |id: &str| shingler.shingle_set(&Normalizer::default().normalize(&text(id)));
    let mut mates = std::collections::HashMap::new();
    for c in read_json_lines(&dir.path().join("c.jsonl")) {
        let ids: Vec<String> = c["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        for id in &ids {
            mates.insert(id.clone(), ids.clone());
        }
    }
    let (mut expected, mut found_cut, mut cut_above) = (0, 0, 0);
    for d in &docs {
        let (id, category) = (d["id"].as_str().unwrap(), d["category"].as_str().unwrap());
        let original = format!("orig_{}", &id[id.len() - 5..]);
        let together = mates.get(id).is_some_and(|m| m.contains(&original));
        match category {
            "non" => assert!(
                !mates.contains_key(id),
                "{id} is independent but was clustered"
            ),
            "cut" | "light" | "heavy" => {
                let similarity = jaccard(&set(id), &set(&original));
                found_cut += usize::from(category == "cut" && together);
                cut_above += usize::from(category == "cut" && similarity >= threshold);
                if similarity >= threshold + 0.1 {
                    expected += 1;
                    assert!(together, "{id} ({category}) is a clear copy of {original}");
                }
            }
            _ => {}
        }
    }
    assert!(expected >= 5, "the sample has clear copies ({expected})");
    // Cut answers at or above the threshold are found (one may slip through LSH); the others copy
    // too little of the original for Jaccard, whatever the tool.
    assert!(
        found_cut + 1 >= cut_above,
        "cut: found {found_cut}, {cut_above} at or above 0.3"
    );
    assert!(cut_above >= 5);
}

/// Issue 4: under a tiny memory budget the band tables spill to several sorted runs, and every
/// output is byte-identical to the run without a budget.
#[test]
fn issue_4_tiny_memory_budget_spills_and_gives_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    generated(dir.path(), "in.jsonl", 12_000, 4, 0.4, 40);
    std::fs::create_dir(dir.path().join("tmp")).unwrap();
    let run = |tag: &str, extra: &[&str]| {
        let (kept, removed, clusters, stats) = (
            format!("k{tag}.jsonl"),
            format!("r{tag}.jsonl"),
            format!("c{tag}.jsonl"),
            format!("s{tag}.json"),
        );
        let mut args = vec![
            "dedup",
            "in.jsonl",
            "-o",
            &kept,
            "--removed",
            &removed,
            "--clusters",
            &clusters,
            "--stats-json",
            &stats,
            "-q",
        ];
        args.extend_from_slice(extra);
        ok(&run_in(dir.path(), &args, b""));
        let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
        (
            read(&kept),
            read(&removed),
            read(&clusters),
            stats_adding_up(&dir.path().join(&stats)),
        )
    };
    let free = run("free", &[]);
    let tight = run("tight", &["--memory", "1M", "--temp-dir", "tmp"]);
    assert_eq!(free.3["spilled_runs"], 0);
    assert!(
        tight.3["spilled_runs"].as_u64().unwrap() >= 3,
        "{}",
        tight.3
    );
    assert!(free.3["clusters"].as_u64().unwrap() > 100);
    assert_eq!(free.0, tight.0, "kept records differ");
    assert_eq!(free.1, tight.1, "removals differ");
    assert_eq!(free.2, tight.2, "clusters differ");
    // Runs live in a temporary directory that is gone after the run.
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    let out = run_in(
        dir.path(),
        &["dedup", "in.jsonl", "-o", "k.jsonl", "--memory", "12Q"],
        b"",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("memory size \"12Q\""));
}

/// Issue 5: `stats` agrees with what `dedup` removes, at every threshold, from one read.
#[test]
fn issue_5_stats_agree_with_dedup_at_each_threshold() {
    use neardup::synth::{Corpus, CorpusSpec};
    let dir = tempfile::tempdir().unwrap();
    let mut docs: String = Corpus::new(CorpusSpec {
        docs: 600,
        seed: 9,
        dup_fraction: 0.5,
        mean_words: 80,
    })
    .map(|d| record(&d.id, &d.text) + "\n")
    .collect();
    // A document repeating its own lines, and a line shared by many documents.
    docs += &(record("rep", "same line\nsame line\nsame line\nother") + "\n");
    write(dir.path(), "in.jsonl", docs.as_bytes());
    let bands = ["--bands", "32", "--rows", "4", "--verify", "signature"];
    let mut args = vec!["stats", "in.jsonl", "--json", "-q"];
    args.extend_from_slice(&bands);
    let out = run_in(dir.path(), &args, b"");
    let s: serde_json::Value = serde_json::from_slice(&ok_stdout(&out)).unwrap();
    let near = s["near"].as_array().unwrap();
    assert_eq!(near.len(), 4);
    let removed: Vec<u64> = near
        .iter()
        .map(|t| t["removed"].as_u64().unwrap())
        .collect();
    assert!(removed.windows(2).all(|w| w[0] >= w[1]), "{removed:?}");
    for t in near {
        let threshold = t["threshold"].as_f64().unwrap().to_string();
        let mut args = vec![
            "dedup",
            "in.jsonl",
            "-o",
            "k.jsonl",
            "--threshold",
            &threshold,
            "--stats-json",
            "d.json",
            "-q",
        ];
        args.extend_from_slice(&bands);
        ok(&run_in(dir.path(), &args, b""));
        let d = stats_adding_up(&dir.path().join("d.json"));
        let dedup_removed =
            d["exact_duplicates"].as_u64().unwrap() + d["near_duplicates"].as_u64().unwrap();
        assert_eq!(
            t["removed"].as_u64().unwrap(),
            dedup_removed,
            "at {threshold}"
        );
        // stats counts every repeated text as exact; dedup calls an exact copy of a document
        // that was itself removed a near duplicate of the kept one.
        assert!(s["exact_duplicates"].as_u64() >= d["exact_duplicates"].as_u64());
    }
    assert!(s["exact_duplicates"].as_u64().unwrap() > 0);
    assert!(s["repetition"]["docs_over_line_limit"].as_u64().unwrap() >= 1);
    let sizes: u64 = s["cluster_sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .sum();
    assert_eq!(sizes, near[2]["clusters"].as_u64().unwrap());
    let histogram: u64 = s["candidate_similarity_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(histogram, s["candidate_pairs"].as_u64().unwrap());
}

/// Issue 5 (found while checking reports): outputs get the permissions of any new file (umask),
/// not the temporary file's private 0600.
#[test]
fn issue_5_outputs_have_ordinary_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "in.jsonl",
        (record("a", "some text here") + "\n").as_bytes(),
    );
    ok(&run_in(
        dir.path(),
        &[
            "dedup", "in.jsonl", "-o", "k.jsonl", "--report", "r.html", "-q",
        ],
        b"",
    ));
    let mode = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    std::fs::write(dir.path().join("plain"), b"x").unwrap();
    assert_eq!(mode("k.jsonl"), mode("plain"));
    assert_eq!(mode("r.html"), mode("plain"));
}

/// Issue 5 (found while measuring): `-o` naming a device or a pipe writes into it; the atomic
/// rename must never replace it with a regular file (it once turned `/dev/null` into one).
#[test]
fn issue_5_output_to_a_fifo_writes_into_it_and_leaves_it_a_fifo() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "in.jsonl",
        (record("a", "one two three") + "\n").as_bytes(),
    );
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || std::fs::read(reader_path).unwrap());
    ok(&run_in(
        dir.path(),
        &["dedup", "in.jsonl", "-o", "pipe", "-q"],
        b"",
    ));
    // Checked before waiting for the reader, which would wait forever on a replaced pipe.
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    let received = reader.join().unwrap();
    assert_eq!(
        String::from_utf8(received).unwrap(),
        record("a", "one two three") + "\n"
    );
}

/// Issue 5 (found while checking edge cases): `-o` or `--stats-json` naming a symbolic link (as
/// `/dev/stdout` is) writes through it and leaves the link a link.
#[test]
fn issue_5_output_through_a_symlink_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "in.jsonl",
        (record("a", "one two three") + "\n").as_bytes(),
    );
    write(
        dir.path(),
        "target.json",
        b"old contents that are longer than the new ones ......",
    );
    std::os::unix::fs::symlink("target.json", dir.path().join("link.json")).unwrap();
    ok(&run_in(
        dir.path(),
        &[
            "dedup",
            "in.jsonl",
            "-o",
            "k.jsonl",
            "--stats-json",
            "link.json",
            "-q",
        ],
        b"",
    ));
    let link = std::fs::symlink_metadata(dir.path().join("link.json")).unwrap();
    assert!(link.file_type().is_symlink());
    let s = stats_adding_up(&dir.path().join("target.json"));
    assert_eq!(s["docs_read"], 1);
}

#[test]
fn issue_11_a_byte_identical_copy_is_exact_whichever_member_is_kept() {
    // `a` is kept; `b` is a near copy of it; `c` is `b` again, so `c` is an exact duplicate even
    // though the cluster keeps `a` and `c`'s similarity to `a` is below 1.
    let dir = tempfile::tempdir().unwrap();
    let a = story(11, 200);
    let mut words: Vec<&str> = a.split(' ').collect();
    words[100] = "changed";
    let b = words.join(" ");
    let data = [record("a", &a), record("b", &b), record("c", &b)].join("\n") + "\n";
    write(dir.path(), "in.jsonl", data.as_bytes());
    ok(&run_in(
        dir.path(),
        &[
            "dedup",
            "in.jsonl",
            "-o",
            "k.jsonl",
            "--removed",
            "r.jsonl",
            "--stats-json",
            "s.json",
        ],
        b"",
    ));
    let removed = read_json_lines(&dir.path().join("r.jsonl"));
    let kinds: Vec<(&str, &str)> = removed
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("b", "near"), ("c", "exact")]);
    assert!(removed[1]["similarity"].as_f64().unwrap() < 1.0);
    assert_eq!(removed[1]["duplicate_of"], "a");
    let dedup = stats_adding_up(&dir.path().join("s.json"));
    let out = run_in(dir.path(), &["stats", "in.jsonl", "--json", "-q"], b"");
    let stats: serde_json::Value = serde_json::from_slice(&ok_stdout(&out)).unwrap();
    assert_eq!(dedup["exact_duplicates"], stats["exact_duplicates"]);
    assert_eq!(stats["exact_duplicates"], 1);
    // Streaming says the same: `c` is the text of the removed `b`.
    let out = run_in(
        dir.path(),
        &["dedup", "-", "-o", "-", "--removed", "rs.jsonl", "-q"],
        data.as_bytes(),
    );
    ok(&out);
    let streamed = read_json_lines(&dir.path().join("rs.jsonl"));
    let kinds: Vec<(&str, &str)> = streamed
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("b", "near"), ("c", "exact")]);
}

/// Issue 11: band keys are 64 bits since index format version 2. An index written before (32-bit
/// keys) is refused by every command that opens it, naming the older format and the rebuild, and
/// is left as it was; it is never read as data.
#[test]
fn issue11_an_index_of_the_old_format_is_refused_with_a_rebuild_hint() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/index-format-1");
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old");
    std::fs::create_dir(&old).unwrap();
    for name in ["MANIFEST", "seg-000001.nds"] {
        std::fs::copy(fixture.join(name), old.join(name)).unwrap();
    }
    std::fs::copy(fixture.join("docs.jsonl"), dir.path().join("docs.jsonl")).unwrap();
    let before: Vec<Vec<u8>> = ["MANIFEST", "seg-000001.nds"]
        .iter()
        .map(|name| std::fs::read(old.join(name)).unwrap())
        .collect();
    let commands: [&[&str]; 5] = [
        &["dedup", "docs.jsonl", "-o", "k.jsonl", "--against", "old"],
        &[
            "dedup",
            "docs.jsonl",
            "-o",
            "k.jsonl",
            "--against",
            "old",
            "--update",
        ],
        &["dedup", "-", "-o", "-", "--against", "old"],
        &["index", "add", "docs.jsonl", "--index", "old"],
        &["index", "info", "--index", "old"],
    ];
    for args in commands {
        let out = run_in(dir.path(), args, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("format version 1 by an older neardup")
                && stderr.contains("must be rebuilt")
                && stderr.contains("hint: an index is not converted in place")
                && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
        assert!(!dir.path().join("k.jsonl").exists(), "{args:?}");
    }
    let after: Vec<Vec<u8>> = ["MANIFEST", "seg-000001.nds"]
        .iter()
        .map(|name| std::fs::read(old.join(name)).unwrap())
        .collect();
    assert_eq!(before, after, "the old index is left as it was");
    // Rebuilt from its documents, it serves again: every document is an exact copy of itself.
    ok(&run_in(
        dir.path(),
        &["index", "build", "docs.jsonl", "--index", "new", "-q"],
        b"",
    ));
    ok(&run_in(
        dir.path(),
        &[
            "dedup",
            "docs.jsonl",
            "-o",
            "k.jsonl",
            "--against",
            "new",
            "-q",
        ],
        b"",
    ));
    assert!(read_lines(&dir.path().join("k.jsonl")).is_empty());
}
