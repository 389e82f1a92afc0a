//! Issue 12, item 5: `-o DIR/` writes the kept records as shards mirroring the inputs', each in
//! its input's format, committed together.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{ok, python_fixture, read_json_lines, record, run_in, story, write};

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Every file below `dir`, relative to it, sorted; hidden ones too (none may be left).
fn files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            match entry.path() {
                p if p.is_dir() => walk(&p, out),
                p => out.push(p),
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    let mut names: Vec<String> = out
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    names.sort();
    names
}

fn ids(lines: &str) -> Vec<String> {
    lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Shards of JSON Lines (plain, gzip, zstd) and text lines, with copies across shards; every
/// record of `c.jsonl.gz` is a copy of an earlier one.
fn corpus(root: &Path) {
    let a = [
        record("x1", &story(1, 120)),
        record("y1", &story(2, 120)),
        record("u1", &story(3, 120)),
    ];
    let b = [record("x2", &story(1, 120)), record("y2", &story(2, 120))];
    let d = [record("u2", &story(3, 120)), record("z1", &story(4, 120))];
    write(root, "corpus/a.jsonl", (a.join("\n") + "\n").as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, (b.join("\n") + "\n").as_bytes()).unwrap();
    write(root, "corpus/c.jsonl.gz", &gz.finish().unwrap());
    write(
        root,
        "corpus/sub/d.jsonl.zst",
        &zstd::encode_all((d.join("\n") + "\n").as_bytes(), 1).unwrap(),
    );
    let lines = [story(5, 120), story(4, 120), story(6, 120)].join("\n");
    write(root, "corpus/sub/e.txt", lines.as_bytes());
}

#[test]
fn issue12_kept_shards_mirror_the_inputs_in_their_own_formats() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    corpus(root);
    ok(&run_in(
        root,
        &["dedup", "corpus", "-o", "one.jsonl", "-q"],
        b"",
    ));
    ok(&run_in(root, &["dedup", "corpus", "-o", "out/", "-q"], b""));
    // Every input has its shard, the one whose records were all removed too (empty).
    assert_eq!(
        files(&root.join("out")),
        ["a.jsonl", "c.jsonl.gz", "sub/d.jsonl.zst", "sub/e.txt"]
    );
    let a = std::fs::read_to_string(root.join("out/a.jsonl")).unwrap();
    let c = gunzip(&std::fs::read(root.join("out/c.jsonl.gz")).unwrap());
    let d =
        zstd::decode_all(&std::fs::read(root.join("out/sub/d.jsonl.zst")).unwrap()[..]).unwrap();
    let d = String::from_utf8(d).unwrap();
    let e = std::fs::read_to_string(root.join("out/sub/e.txt")).unwrap();
    assert_eq!(ids(&a), ["x1", "y1", "u1"]);
    assert_eq!(c, "");
    assert_eq!(ids(&d), ["z1"]);
    // Lines of text stay lines of text (in one JSON Lines output they are objects).
    assert_eq!(e, format!("{}\n{}\n", story(5, 120), story(6, 120)));
    // The records are the one-output run's, byte for byte, in the same order.
    let one = read_json_lines(&root.join("one.jsonl"));
    let json_shards = format!("{a}{d}");
    let from_shards: Vec<Value> = json_shards
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(from_shards[..], one[..4]);
    assert_eq!(one.len(), 6, "4 JSON records and 2 lines kept");

    // Again into the same directory, named without the slash now that it exists: the shards
    // are replaced and nothing else appears (no staging directory is left).
    ok(&run_in(
        root,
        &["dedup", "corpus/sub", "-o", "out", "-q"],
        b"",
    ));
    assert_eq!(
        files(&root.join("out")),
        [
            "a.jsonl",
            "c.jsonl.gz",
            "d.jsonl.zst",
            "e.txt",
            "sub/d.jsonl.zst",
            "sub/e.txt"
        ]
    );
    // A directory of kept shards inside the input directory is not read as input on a rerun.
    ok(&run_in(
        root,
        &["dedup", "corpus", "-o", "corpus/kept/", "-q"],
        b"",
    ));
    ok(&run_in(
        root,
        &["dedup", "corpus", "-o", "corpus/kept/", "-q"],
        b"",
    ));
    assert_eq!(
        files(&root.join("corpus/kept")),
        ["a.jsonl", "c.jsonl.gz", "sub/d.jsonl.zst", "sub/e.txt"]
    );
    // A glob names its shards below its part without wildcards.
    ok(&run_in(
        root,
        &["dedup", "corpus/s*/*.jsonl*", "-o", "globbed/", "-q"],
        b"",
    ));
    assert_eq!(files(&root.join("globbed")), ["sub/d.jsonl.zst"]);
}

#[test]
fn issue12_kept_shards_are_refused_where_they_cannot_mirror_and_a_failed_run_leaves_none() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    corpus(root);
    let refused = |args: &[&str], stdin: &[u8], says: &str| {
        let out = run_in(root, args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    refused(
        &["dedup", "-", "-o", "out/"],
        b"{\"id\":\"1\",\"text\":\"a b c\"}\n",
        "standard input has no name",
    );
    refused(
        &["dedup", "corpus/a.jsonl", "corpus/a.jsonl", "-o", "out/"],
        b"",
        "would both be written to out/a.jsonl",
    );
    // Shards that would replace their inputs.
    refused(
        &["dedup", "corpus", "-o", "corpus/"],
        b"",
        "name the same file",
    );
    refused(
        &["dedup", "corpus", "-o", "out/", "--annotate"],
        b"",
        "corpus/sub/e.txt is lines, which cannot hold the added fields",
    );
    refused(
        &["dedup", "corpus", "-o", "corpus/a.jsonl/"],
        b"",
        "is not a directory",
    );
    // Outputs that are one file say so when named as a directory.
    refused(
        &["clusters", "corpus", "-o", "out/"],
        b"",
        "a name ending in / is a directory, and this output is one file",
    );
    refused(
        &["dedup", "corpus", "-o", "kept/", "--removed", "out/"],
        b"",
        "a name ending in / is a directory",
    );
    assert!(!root.join("out").exists() && !root.join("kept").exists());

    // A run that fails on a bad record (--strict) commits no shard and leaves nothing behind.
    write(
        root,
        "bad/a.jsonl",
        (record("k", &story(9, 50)) + "\n").as_bytes(),
    );
    write(root, "bad/b.jsonl", b"{\"id\": \"broken\n");
    let out = run_in(root, &["dedup", "bad", "-o", "out/", "--strict", "-q"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(!root.join("out").exists());
    let left: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".neardup"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A distributed run refuses it.
    let out = run_in(
        root,
        &["dedup", "corpus", "-o", "out/", "--workers", "2"],
        b"",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not supported in a distributed run"),
        "{stderr}"
    );
}

#[test]
fn issue12_documents_of_a_directory_are_mirrored_as_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "docs/one.txt", story(1, 80).as_bytes());
    write(root, "docs/deep/two.txt", story(2, 80).as_bytes());
    write(root, "docs/deep/copy.txt", story(1, 80).as_bytes());
    write(root, "docs/three.txt", story(3, 80).as_bytes());
    ok(&run_in(
        root,
        &["dedup", "--format", "files", "docs", "-o", "kept/", "-q"],
        b"",
    ));
    // `deep/copy.txt` is read first (byte order) and kept; `one.txt` is its copy.
    assert_eq!(
        files(&root.join("kept")),
        ["deep/copy.txt", "deep/two.txt", "three.txt"]
    );
    assert_eq!(
        std::fs::read_to_string(root.join("kept/deep/two.txt")).unwrap(),
        story(2, 80)
    );
}

#[test]
fn issue12_parquet_and_wet_shards_read_back_by_pyarrow_and_warcio() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let first: Vec<String> = (0..30u64)
        .map(|i| record(&format!("p{i}"), &story(i, 60)))
        .collect();
    // The second shard repeats every third story of the first.
    let second: Vec<String> = (20..50u64)
        .map(|i| {
            record(
                &format!("q{i}"),
                &story(if i % 3 == 0 { i - 20 } else { i + 100 }, 60),
            )
        })
        .collect();
    write(root, "a.jsonl", (first.join("\n") + "\n").as_bytes());
    write(root, "b.jsonl", (second.join("\n") + "\n").as_bytes());
    std::fs::create_dir_all(root.join("pq/part")).unwrap();
    std::fs::create_dir_all(root.join("wet")).unwrap();
    let pyarrow = |args: &[&str]| python_fixture(root, "parquet_fixtures.py", "pyarrow", args);
    pyarrow(&[
        "write",
        "a.jsonl",
        "pq/part/a.parquet",
        "--rows-per-group",
        "7",
    ]);
    pyarrow(&[
        "write",
        "b.jsonl",
        "pq/part/b.parquet",
        "--compression",
        "snappy",
    ]);
    ok(&run_in(
        root,
        &["dedup", "pq", "-o", "kept.jsonl", "-q"],
        b"",
    ));
    ok(&run_in(root, &["dedup", "pq", "-o", "kept/", "-q"], b""));
    assert_eq!(
        files(&root.join("kept")),
        ["part/a.parquet", "part/b.parquet"]
    );
    let one = read_json_lines(&root.join("kept.jsonl"));
    let mut shard_ids = Vec::new();
    for name in ["a", "b"] {
        let shard = format!("kept/part/{name}.parquet");
        let same = pyarrow(&["same-schema", &format!("pq/part/{name}.parquet"), &shard]);
        assert_eq!(same.trim(), "true", "{shard} keeps its input's schema");
        let table: Value = serde_json::from_str(&pyarrow(&["read", &shard])).unwrap();
        for row in table["rows"].as_array().unwrap() {
            shard_ids.push(row["id"].as_str().unwrap().to_string());
        }
    }
    let one_ids: Vec<&str> = one.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(shard_ids, one_ids);
    assert_eq!(
        one_ids.len(),
        50,
        "10 of the second shard's rows are copies"
    );

    // With --annotate every row is there, with the annotation columns after the input's.
    ok(&run_in(
        root,
        &["dedup", "pq", "-o", "notes/", "--annotate", "-q"],
        b"",
    ));
    let table: Value = serde_json::from_str(&pyarrow(&["read", "notes/part/b.parquet"])).unwrap();
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 30);
    let copy = rows.iter().find(|r| r["id"] == "q21").unwrap();
    assert_eq!(copy["duplicate_of"], "p1");
    assert_eq!(copy["kind"], "exact");
    assert_eq!(copy["similarity"], 1.0);
    let kept = rows.iter().find(|r| r["id"] == "q22").unwrap();
    assert!(kept["duplicate_of"].is_null() && kept["kind"].is_null());
    let schema = table["schema"].as_str().unwrap();
    for column in [
        "cluster: uint64",
        "duplicate_of: string",
        "kind: string",
        "similarity: double",
    ] {
        assert!(schema.contains(column), "{schema}");
    }
    assert!(
        !schema.contains("duplicate_in"),
        "no index, no duplicate_in: {schema}"
    );

    // WET shards, plain and gzipped (a member per record): warcio reads back the kept records.
    let warc = |args: &[&str]| python_fixture(root, "warc_fixtures.py", "warcio", args);
    let mut names = std::collections::BTreeMap::new();
    for args in [
        &["write", "wet", "--gzip", "a.jsonl", "wet/a.warc.wet.gz"][..],
        &["write", "wet", "b.jsonl", "wet/b.wet"][..],
    ] {
        for line in warc(args).lines() {
            let written: Value = serde_json::from_str(line).unwrap();
            names.insert(written["id"].to_string(), written["name"].to_string());
        }
    }
    ok(&run_in(
        root,
        &["dedup", "wet", "-o", "wet-kept/", "-q"],
        b"",
    ));
    assert_eq!(files(&root.join("wet-kept")), ["a.warc.wet.gz", "b.wet"]);
    let kept = |file: &str| -> Vec<String> {
        warc(&["index", file])
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["type"] == "conversion")
            .map(|r| names[&r["id"].to_string()].trim_matches('"').to_string())
            .collect()
    };
    let wet_ids: Vec<String> = [kept("wet-kept/a.warc.wet.gz"), kept("wet-kept/b.wet")].concat();
    assert_eq!(wet_ids, one_ids);
    // The gzipped shard's records are its input's gzip members, byte for byte: every one is
    // kept, so the shard is the input without its warcinfo record.
    let input = std::fs::read(root.join("wet/a.warc.wet.gz")).unwrap();
    let shard = std::fs::read(root.join("wet-kept/a.warc.wet.gz")).unwrap();
    assert!(shard.len() < input.len() && input.ends_with(&shard));
}
