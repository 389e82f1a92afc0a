//! Issue 12, the input side: folders and globs of shards (sorted, formats mixed and detected by
//! name) and nested field paths.

use std::io::Write;
use std::path::Path;

use crate::util::{ok, read_json_lines, record, run_in, story, write};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Each cluster as (kept id, member ids with similarities), for comparing runs whose members
/// come from differently named files.
fn clusters(path: &Path) -> Vec<(String, Vec<(String, String)>)> {
    read_json_lines(path)
        .iter()
        .map(|c| {
            let members = c["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m["id"].to_string(), m["similarity"].to_string()))
                .collect();
            (c["kept"].to_string(), members)
        })
        .collect()
}

/// A corpus in shards of three formats, and the same records in one JSON Lines file, in the
/// order the shards are read (sorted by path bytes: `a.jsonl`, `b.jsonl.gz`, `d.jsonl.zst`,
/// `sub/c.txt`). The text lines' ids in the one file are what their shard names them.
fn mixed_corpus(root: &Path) -> Vec<String> {
    std::fs::create_dir_all(root.join("corpus/sub")).unwrap();
    std::fs::create_dir_all(root.join("corpus/.cache")).unwrap();
    let a = [
        record("x1", &story(1, 120)),
        record("y1", &story(2, 120)),
        record("u1", &story(3, 120)),
    ];
    let b = [
        record("x2", &format!("{} extra", story(1, 120))),
        record("z1", &story(4, 120)),
    ];
    let d = [record("y2", &story(2, 120)), record("u2", &story(5, 120))];
    let c_lines = [
        format!("{} tail words", story(4, 120)),
        story(6, 120),
        story(3, 120),
    ];
    write(root, "corpus/a.jsonl", (a.join("\n") + "\n").as_bytes());
    write(
        root,
        "corpus/b.jsonl.gz",
        &gzip((b.join("\n") + "\n").as_bytes()),
    );
    write(
        root,
        "corpus/d.jsonl.zst",
        &zstd::encode_all((d.join("\n") + "\n").as_bytes(), 1).unwrap(),
    );
    write(root, "corpus/sub/c.txt", c_lines.join("\n").as_bytes());
    // Hidden files are not shards: were they read, each would join a cluster.
    write(root, "corpus/.hidden.jsonl", a.join("\n").as_bytes());
    write(root, "corpus/.cache/x.jsonl", a.join("\n").as_bytes());
    let mut all: Vec<String> = a.iter().chain(&b).chain(&d).cloned().collect();
    for (i, line) in c_lines.iter().enumerate() {
        all.push(record(&format!("corpus/sub/c.txt:{}", i + 1), line));
    }
    all
}

#[test]
fn issue12_a_folder_or_glob_of_mixed_shards_clusters_like_the_concatenated_input() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let all = mixed_corpus(root);
    write(root, "all.jsonl", (all.join("\n") + "\n").as_bytes());
    ok(&run_in(
        root,
        &["clusters", "all.jsonl", "-o", "one.jsonl", "-q"],
        b"",
    ));
    let expected = clusters(&root.join("one.jsonl"));
    assert_eq!(
        expected.len(),
        4,
        "x, y, z and u each form a cluster across shards: {expected:?}"
    );
    for (inputs, out) in [
        (&["corpus"][..], "dir.jsonl"),
        (&["corpus/"][..], "slash.jsonl"),
        (&["corpus/**/*"][..], "glob.jsonl"),
        (&["corpus/*.jsonl*", "corpus/sub/*.txt"][..], "globs.jsonl"),
    ] {
        let args = [&["clusters"][..], inputs, &["-o", out, "-q"]].concat();
        ok(&run_in(root, &args, b""));
        assert_eq!(clusters(&root.join(out)), expected, "{inputs:?}");
    }

    // Kept records of a mixed run are JSON Lines throughout: the text lines become objects.
    let stats = root.join("stats.json");
    ok(&run_in(
        root,
        &[
            "dedup",
            "corpus",
            "-o",
            "kept.jsonl",
            "-q",
            "--stats-json",
            stats.to_str().unwrap(),
        ],
        b"",
    ));
    let kept = read_json_lines(&root.join("kept.jsonl"));
    let ids: Vec<&str> = kept.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["x1", "y1", "u1", "z1", "u2", "corpus/sub/c.txt:2"]);
    assert_eq!(kept[5]["text"], story(6, 120));
    assert_eq!(crate::util::stats_adding_up(&stats)["docs_read"], 10);
}

#[test]
fn issue12_shards_are_read_in_sorted_byte_order_and_a_given_format_applies_to_all() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("s/b")).unwrap();
    // Written out of order; byte order puts `b-10` before `b-2`, and `b-2.jsonl` before the
    // directory `b/` ('-' < '/'), which component order would not.
    for (seed, (name, id)) in [
        ("s/b/x.jsonl", "bx"),
        ("s/b-2.jsonl", "b2"),
        ("s/b-10.jsonl", "b10"),
        ("s/a.jsonl", "a"),
    ]
    .into_iter()
    .enumerate()
    {
        let line = record(id, &story(seed as u64 + 1, 60));
        write(root, name, format!("{line}\n").as_bytes());
    }
    ok(&run_in(root, &["dedup", "s", "-o", "k.jsonl", "-q"], b""));
    let ids: Vec<String> = read_json_lines(&root.join("k.jsonl"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["a", "b10", "b2", "bx"]);

    // --format lines reads every shard as text, whatever its name.
    ok(&run_in(
        root,
        &["dedup", "s", "--format", "lines", "-o", "lines.txt", "-q"],
        b"",
    ));
    let lines = crate::util::read_lines(&root.join("lines.txt"));
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with(r#"{"id":"a""#), "{lines:?}");
}

#[test]
fn issue12_a_glob_matching_nothing_or_an_empty_folder_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "in.jsonl",
        format!("{}\n", record("a", "text")).as_bytes(),
    );
    std::fs::create_dir(root.join("empty")).unwrap();
    write(root, "empty/.hidden.jsonl", b"{\"text\":\"x\"}\n");
    for (input, reason) in [
        ("data/train-*.jsonl", "no file matches this pattern"),
        ("empty", "the directory holds no files"),
    ] {
        let out = run_in(
            root,
            &["dedup", "in.jsonl", input, "-o", "k.jsonl", "-q"],
            b"",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{input}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot read {input}: {reason}")),
            "{input}: {stderr}"
        );
        assert!(!root.join("k.jsonl").exists());
    }
    // A path that exists is read as it is, even with glob characters in its name.
    write(
        root,
        "odd[1]*.jsonl",
        format!("{}\n", record("odd", "t")).as_bytes(),
    );
    ok(&run_in(
        root,
        &["dedup", "odd[1]*.jsonl", "-o", "k.jsonl", "-q"],
        b"",
    ));
    assert_eq!(read_json_lines(&root.join("k.jsonl"))[0]["id"], "odd");
}

#[test]
fn issue12_an_output_that_is_a_shard_is_refused_and_index_files_are_not_shards() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("s")).unwrap();
    write(
        root,
        "s/a.jsonl",
        format!("{}\n", record("a", &story(1, 50))).as_bytes(),
    );
    write(
        root,
        "s/b.jsonl",
        format!("{}\n", record("b", &story(2, 50))).as_bytes(),
    );
    ok(&run_in(
        root,
        &["dedup", "s", "-o", "s/kept.jsonl", "-q"],
        b"",
    ));
    let first = std::fs::read(root.join("s/kept.jsonl")).unwrap();
    // Now the kept output is a shard of the folder: writing it again would replace an input.
    for args in [
        &["dedup", "s", "-o", "s/kept.jsonl"][..],
        &[
            "dedup",
            "s/*.jsonl",
            "-o",
            "k.jsonl",
            "--removed",
            "s/a.jsonl",
        ],
    ] {
        let out = run_in(root, args, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("name the same file"), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read(root.join("s/kept.jsonl")).unwrap(), first);
    std::fs::remove_file(root.join("s/kept.jsonl")).unwrap();
    // An index inside the folder holds no shards.
    ok(&run_in(
        root,
        &["index", "build", "s", "--index", "s/idx", "-q"],
        b"",
    ));
    let stats = root.join("stats.json");
    ok(&run_in(
        root,
        &[
            "dedup",
            "s",
            "--against",
            "s/idx",
            "-o",
            "k.jsonl",
            "-q",
            "--stats-json",
            stats.to_str().unwrap(),
        ],
        b"",
    ));
    assert_eq!(crate::util::stats(&stats)["docs_read"], 2);
}

#[test]
fn issue12_nested_text_and_id_fields() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let nested = |id: &str, text: &str| {
        serde_json::json!({"meta": {"id": id, "lang": "en"}, "content": {"text": text}, "text": "decoy"})
            .to_string()
    };
    let lines = [
        nested("n1", &story(1, 100)),
        nested("n2", &format!("{}!", story(1, 100))),
        nested("n3", &story(2, 100)),
        serde_json::json!({"meta": {"id": "bad"}, "content": "flat"}).to_string(),
        serde_json::json!({"meta": {"id": "none"}, "content": {"body": "x"}}).to_string(),
    ];
    write(root, "n.jsonl", (lines.join("\n") + "\n").as_bytes());
    let out = run_in(
        root,
        &[
            "clusters",
            "n.jsonl",
            "--text-field",
            "content.text",
            "--id-field",
            "$.meta.id",
            "-o",
            "c.jsonl",
            "--rejected",
            "rej.jsonl",
        ],
        b"",
    );
    ok(&out);
    let c = read_json_lines(&root.join("c.jsonl"));
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0]["kept"], "n1");
    assert_eq!(c[0]["members"][1]["id"], "n2");
    let rejected = read_json_lines(&root.join("rej.jsonl"));
    let reasons: Vec<&str> = rejected
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            r#"field "content.text" cannot be read: "content" on its path is not an object"#,
            r#"missing field "content.text" (fields: content, meta)"#,
        ]
    );
    // A bad path is refused before anything is read.
    let out = run_in(
        root,
        &[
            "clusters",
            "n.jsonl",
            "--text-field",
            r"content\",
            "-o",
            "c2.jsonl",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "a bad setting");
    assert!(String::from_utf8_lossy(&out.stderr).contains("escapes nothing"));
}

#[test]
fn issue12_a_distributed_run_over_a_folder_of_shards_equals_one_process() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("corpus")).unwrap();
    // Plain shards are cut into pieces among the workers; compressed ones go whole to one.
    let lines: Vec<String> = (0..120u64)
        .map(|i| record(&format!("d{i}"), &story(i % 45, 80)))
        .collect();
    let shard = |range: std::ops::Range<usize>| (lines[range].join("\n") + "\n").into_bytes();
    write(root, "corpus/part-0.jsonl", &shard(0..50));
    write(root, "corpus/part-1.jsonl.gz", &gzip(&shard(50..80)));
    write(
        root,
        "corpus/part-2.jsonl.zst",
        &zstd::encode_all(&shard(80..100)[..], 1).unwrap(),
    );
    write(root, "corpus/part-3.jsonl", &shard(100..120));
    let corpus = root.join("corpus").display().to_string();
    let outputs = ["kept.jsonl", "removed.jsonl", "clusters.jsonl"];
    let args = |out: &Path| {
        let at = |name: &str| out.join(name).display().to_string();
        vec![
            "dedup".to_string(),
            corpus.clone(),
            "-o".to_string(),
            at("kept.jsonl"),
            "--removed".to_string(),
            at("removed.jsonl"),
            "--clusters".to_string(),
            at("clusters.jsonl"),
            "-q".to_string(),
        ]
    };
    let single = root.join("single");
    std::fs::create_dir(&single).unwrap();
    let single_args = args(&single);
    let single_args: Vec<&str> = single_args.iter().map(String::as_str).collect();
    ok(&run_in(root, &single_args, b""));
    let expected: Vec<Vec<u8>> = outputs
        .iter()
        .map(|f| std::fs::read(single.join(f)).unwrap())
        .collect();
    assert!(expected[1].len() > 100, "the corpus has duplicates");

    let run = root.join("two");
    std::fs::create_dir(&run).unwrap();
    let hosts = {
        let listeners: Vec<std::net::TcpListener> = (0..2)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let text: String = listeners
            .iter()
            .map(|l| format!("{}\n", l.local_addr().unwrap()))
            .collect();
        write(&run, "hosts", text.as_bytes())
    };
    let children: Vec<std::process::Child> = (0..2)
        .map(|process| {
            Command::new("timeout")
                .arg("120")
                .arg(crate::util::BIN)
                .args(args(&run))
                .args(["--processes", "2", "--process", &process.to_string()])
                .args(["--workers", "2", "--hostfile", hosts.to_str().unwrap()])
                .current_dir(&run)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (name, expected) in outputs.iter().zip(&expected) {
        assert_eq!(
            &std::fs::read(run.join(name)).unwrap(),
            expected,
            "{name} differs from the single-process run"
        );
    }
}
