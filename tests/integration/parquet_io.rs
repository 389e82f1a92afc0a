//! Issue 12: Parquet in and out, against pyarrow (an independent writer and reader). Fixtures are
//! written by `tests/parquet_fixtures.py`; pyarrow must be installed (`pip install pyarrow`;
//! `.ci/run` installs it into `target/pyenv`), and these tests fail, never skip, without it.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

/// Runs the fixture script with `args` in `dir` and returns its stdout.
fn pyarrow(dir: &Path, args: &[&str]) -> String {
    python_fixture(dir, "parquet_fixtures.py", "pyarrow", args)
}

/// A Parquet file as pyarrow reads it: schema, key-value metadata, row groups, rows.
fn read_parquet(dir: &Path, name: &str) -> Value {
    serde_json::from_str(&pyarrow(dir, &["read", name])).unwrap()
}

fn rows(table: &Value) -> Vec<Value> {
    table["rows"].as_array().unwrap().clone()
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// A JSON value without its null fields (JSON Lines outputs leave absent fields out; Parquet
/// tables have them as nulls).
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Records with exact copies, near copies and a null text, as JSON Lines.
fn corpus(dir: &Path) -> PathBuf {
    let mut lines = Vec::new();
    for i in 0..60u64 {
        let text = story(i, 60);
        lines.push(record(&format!("d{i}"), &text));
        if i % 4 == 0 {
            lines.push(record(&format!("d{i}-copy"), &text));
        }
        if i % 5 == 0 {
            let near = text.replacen("w", "x", 2);
            lines.push(record(&format!("d{i}-near"), &near));
        }
        if i == 10 {
            lines.push(r#"{"id":"null-text","text":null}"#.to_string());
        }
    }
    write(dir, "in.jsonl", (lines.join("\n") + "\n").as_bytes())
}

#[test]
fn issue12_parquet_clusters_and_kept_rows_equal_the_json_lines_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    corpus(d);
    ok(&run_in(
        d,
        &[
            "dedup",
            "in.jsonl",
            "-o",
            "kept.jsonl",
            "--removed",
            "removed.jsonl",
            "--clusters",
            "clusters.jsonl",
            "-q",
        ],
        b"",
    ));
    let kept_ids: Vec<String> = read_json_lines(&d.join("kept.jsonl"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let removed = read_json_lines(&d.join("removed.jsonl"));
    let clusters = read_json_lines(&d.join("clusters.jsonl"));
    assert!(!removed.is_empty() && kept_ids.len() > 40);
    for (name, compression, text_type) in [
        ("snappy.parquet", "snappy", "string"),
        ("zstd.parquet", "zstd", "dictionary"),
        ("large.parquet", "zstd", "large_string"),
        ("view.parquet", "snappy", "string_view"),
    ] {
        pyarrow(
            d,
            &[
                "write",
                "in.jsonl",
                name,
                "--rows-per-group",
                "7",
                "--compression",
                compression,
                "--text-type",
                text_type,
            ],
        );
        let input = read_parquet(d, name);
        assert!(input["num_row_groups"].as_u64().unwrap() > 5, "{name}");
        let stderr = ok(&run_in(
            d,
            &[
                "dedup",
                name,
                "-o",
                "kept.parquet",
                "--removed",
                "removed.parquet",
                "--clusters",
                "clusters.jsonl.out",
            ],
            b"",
        ));
        // The null text is rejected with its row group and row (row 18 of the file).
        assert!(
            stderr.contains(&format!(
                "{name}:18: row group 2, row 4 of it: field \"text\" is not a string"
            )),
            "{name}: {stderr}"
        );
        assert_eq!(
            read_lines(&d.join("clusters.jsonl.out")),
            read_lines(&d.join("clusters.jsonl")),
            "{name}: clusters equal the JSON Lines run's"
        );
        // pyarrow reads the kept rows back: the input's schema and metadata, exactly the rows
        // the JSON Lines run keeps, every column as it was.
        assert_eq!(
            pyarrow(d, &["same-schema", name, "kept.parquet"]).trim(),
            "true"
        );
        let kept = read_parquet(d, "kept.parquet");
        assert_eq!(kept["schema"], input["schema"], "{name}");
        assert_eq!(kept["metadata"]["origin"], "tests", "{name}");
        assert_eq!(ids(&rows(&kept)), kept_ids, "{name}");
        let expected: Vec<Value> = rows(&input)
            .into_iter()
            .filter(|r| {
                r["id"]
                    .as_str()
                    .is_some_and(|id| kept_ids.iter().any(|k| k == id))
            })
            .collect();
        assert_eq!(rows(&kept), expected, "{name}: whole rows, in input order");
        // Removals as a Parquet table: the JSON records' fields.
        let removed_table = read_parquet(d, "removed.parquet");
        let removed_rows: Vec<Value> = rows(&removed_table).iter().map(without_nulls).collect();
        assert_eq!(removed_rows, removed, "{name}");
    }
    // Clusters as Parquet; kept rows of Parquet as JSON Lines, one object a row, every column.
    ok(&run_in(
        d,
        &[
            "dedup",
            "zstd.parquet",
            "-o",
            "kept-rows.jsonl",
            "--clusters",
            "clusters.parquet",
            "-q",
        ],
        b"",
    ));
    let cluster_rows: Vec<Value> = rows(&read_parquet(d, "clusters.parquet"))
        .iter()
        .map(without_nulls)
        .collect();
    assert_eq!(cluster_rows, clusters);
    let kept_rows = read_json_lines(&d.join("kept-rows.jsonl"));
    assert_eq!(
        kept_rows
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        kept_ids
    );
    let first = kept_rows[0].as_object().unwrap();
    assert_eq!(first.len(), 5, "every column: {first:?}");
    // In the schema's order, as written.
    let line = &read_lines(&d.join("kept-rows.jsonl"))[0];
    let at = |key: &str| line.find(&format!("\"{key}\":")).unwrap();
    assert!(
        at("id") < at("text") && at("text") < at("lang") && at("meta") < at("n"),
        "{line}"
    );
    assert!(
        first["meta"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://site")
    );
}

#[test]
fn issue12_parquet_columns_nested_fields_ids_and_detection() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    corpus(d);
    pyarrow(
        d,
        &["write", "in.jsonl", "in.parquet", "--rows-per-group", "16"],
    );
    // No extension: told by its magic number, and read the same.
    std::fs::copy(d.join("in.parquet"), d.join("part-00000")).unwrap();
    ok(&run_in(
        d,
        &["clusters", "in.parquet", "-o", "a.jsonl", "-q"],
        b"",
    ));
    ok(&run_in(
        d,
        &["clusters", "part-00000", "-o", "b.jsonl", "-q"],
        b"",
    ));
    let a = read_lines(&d.join("a.jsonl"));
    assert!(!a.is_empty());
    assert_eq!(a, read_lines(&d.join("b.jsonl")));
    // An int column as the id (its decimal text), a struct child as the URL (the group for
    // boilerplate), no id column: FILE:ROW.
    ok(&run_in(
        d,
        &[
            "dedup",
            "in.parquet",
            "-o",
            "k.parquet",
            "--id-field",
            "n",
            "--url-field",
            "meta.url",
            "--strip-boilerplate",
            "--removed",
            "r.jsonl",
            "-q",
        ],
        b"",
    ));
    let removed = read_json_lines(&d.join("r.jsonl"));
    assert!(!removed.is_empty());
    assert!(
        removed
            .iter()
            .all(|r| r["id"].as_str().unwrap().parse::<u64>().is_ok()),
        "{removed:?}"
    );
    ok(&run_in(
        d,
        &[
            "dedup",
            "in.parquet",
            "-o",
            "k2.parquet",
            "--id-field",
            "missing",
            "--removed",
            "r2.jsonl",
            "-q",
        ],
        b"",
    ));
    let removed = read_json_lines(&d.join("r2.jsonl"));
    assert!(
        removed
            .iter()
            .all(|r| r["id"].as_str().unwrap().starts_with("in.parquet:")),
        "{removed:?}"
    );
    // A text column under a struct is read by its path.
    let out = run_in(
        d,
        &[
            "clusters",
            "in.parquet",
            "-o",
            "c.jsonl",
            "--text-field",
            "meta.url",
            "-q",
        ],
        b"",
    );
    ok(&out);
    // A text column that does not exist fails the input (exit 2), naming the columns.
    let out = run_in(
        d,
        &[
            "clusters",
            "in.parquet",
            "-o",
            "c.jsonl",
            "--text-field",
            "body",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no text column") && stderr.contains("id, text, lang, meta, n"),
        "{stderr}"
    );
    // Streaming reads Parquet through the same framing.
    ok(&run_in(
        d,
        &[
            "dedup",
            "in.parquet",
            "-o",
            "s.parquet",
            "--mode",
            "stream",
            "-q",
        ],
        b"",
    ));
    assert!(!rows(&read_parquet(d, "s.parquet")).is_empty());
}

#[test]
fn issue12_parquet_damage_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    corpus(d);
    pyarrow(
        d,
        &["write", "in.jsonl", "in.parquet", "--rows-per-group", "16"],
    );
    // A corrupt row group is one rejection naming it; the run goes on with the next.
    pyarrow(d, &["corrupt", "in.parquet", "corrupt.parquet", "1"]);
    let out = run_in(
        d,
        &[
            "dedup",
            "corrupt.parquet",
            "-o",
            "k.parquet",
            "--stats-json",
            "s.json",
            "--rejected",
            "rej.jsonl",
        ],
        b"",
    );
    ok(&out);
    let rejected = read_json_lines(&d.join("rej.jsonl"));
    let broken: Vec<&Value> = rejected
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .unwrap()
                .contains("could not be decoded")
        })
        .collect();
    assert_eq!(broken.len(), 1, "{rejected:?}");
    assert!(
        broken[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("row group 1, row 1 of it")
    );
    assert_eq!(broken[0]["line"], 17);
    let kept = rows(&read_parquet(d, "k.parquet"));
    let all = rows(&read_parquet(d, "in.parquet"));
    let second_group = ids(&all[16..32]);
    assert!(ids(&kept).iter().all(|id| !second_group.contains(id)));
    assert!(
        ids(&kept).iter().any(|id| ids(&all[32..]).contains(id)),
        "later groups are read"
    );
    let stats = stats_adding_up(&d.join("s.json"));
    assert_eq!(stats["docs_read"], (all.len() - 16 + 1) as u64);
    // A damaged column the run does not read: the rows frame (clusters are found), but kept
    // rows of that row group cannot be copied whole, so the kept output fails (exit 2), naming it.
    pyarrow(d, &["corrupt", "in.parquet", "lang.parquet", "1", "n"]);
    ok(&run_in(
        d,
        &["clusters", "lang.parquet", "-o", "c.jsonl", "-q"],
        b"",
    ));
    let out = run_in(d, &["dedup", "lang.parquet", "-o", "k2.parquet"], b"");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("row group 1, from its row 1, cannot be decoded in every column"),
        "{stderr}"
    );
    assert!(!d.join("k2.parquet").exists());
    // A truncated file (footer gone) is an input failure: exit 2, nothing written.
    pyarrow(d, &["truncate", "in.parquet", "trunc.parquet"]);
    let out = run_in(d, &["dedup", "trunc.parquet", "-o", "t.parquet"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("trunc.parquet"));
    assert!(!d.join("t.parquet").exists());
    // So is a file that is not Parquet at all, read as Parquet.
    let out = run_in(
        d,
        &["dedup", "--format", "parquet", "in.jsonl", "-o", "t.jsonl"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    // A binary (and partly not UTF-8) text column: every row rejected as not a string.
    pyarrow(d, &["binary-text", "bin.parquet"]);
    let out = run_in(d, &["dedup", "bin.parquet", "-o", "b.jsonl"], b"");
    assert_eq!(out.status.code(), Some(2), "every record rejected");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bin.parquet:2: row group 0, row 2 of it: field \"text\" is not a string"),
        "{stderr}"
    );
    // A Parquet output holds Parquet rows of one schema.
    let out = run_in(d, &["dedup", "in.jsonl", "-o", "x.parquet"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("write JSON Lines"));
    pyarrow(d, &["binary-text", "other.parquet"]);
    let out = run_in(
        d,
        &["dedup", "in.parquet", "other.parquet", "-o", "x.parquet"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in.parquet and other.parquet have different schemas"),
        "{stderr}"
    );
    assert!(!d.join("x.parquet").exists());
    // Distributed runs share inputs out by byte ranges: Parquet is refused, naming the option.
    let out = run_in(
        d,
        &["dedup", "in.parquet", "-o", "x.jsonl", "--workers", "2"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers"));
    // lines rewrites texts, which it does not do in Parquet rows yet.
    let out = run_in(d, &["lines", "in.parquet", "-o", "l.jsonl"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(!d.join("l.jsonl").exists());
}

/// The fields `--annotate` adds, by record id.
fn annotations(records: &[Value]) -> Vec<(String, Value)> {
    records
        .iter()
        .map(|r| {
            let fields: serde_json::Map<String, Value> =
                ["cluster", "duplicate_of", "kind", "similarity"]
                    .iter()
                    .map(|k| (k.to_string(), r.get(*k).cloned().unwrap_or(Value::Null)))
                    .collect();
            (r["id"].as_str().unwrap().to_string(), Value::Object(fields))
        })
        .collect()
}

#[test]
fn issue12_annotate_adds_columns_to_parquet_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    corpus(d);
    pyarrow(
        d,
        &["write", "in.jsonl", "in.parquet", "--rows-per-group", "9"],
    );
    ok(&run_in(
        d,
        &["dedup", "in.jsonl", "-o", "notes.jsonl", "--annotate", "-q"],
        b"",
    ));
    let expected = annotations(&read_json_lines(&d.join("notes.jsonl")));
    assert!(expected.iter().any(|(_, a)| a["kind"] == "near"));
    assert!(expected.iter().any(|(_, a)| a["kind"] == "exact"));

    // A Parquet output: every column of the input, then the annotations; every row but the
    // rejected one (its text is null), with the JSON Lines run's values.
    ok(&run_in(
        d,
        &[
            "dedup",
            "in.parquet",
            "-o",
            "notes.parquet",
            "--annotate",
            "-q",
        ],
        b"",
    ));
    let table = read_parquet(d, "notes.parquet");
    assert_eq!(annotations(&rows(&table)), expected);
    let schema = table["schema"].as_str().unwrap();
    let names: Vec<&str> = schema
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter(|n| !n.starts_with(' ') && !n.starts_with('-'))
        .collect();
    assert_eq!(
        names,
        [
            "id",
            "text",
            "lang",
            "meta",
            "n",
            "cluster",
            "duplicate_of",
            "kind",
            "similarity"
        ],
        "{schema}"
    );
    // JSON Lines from Parquet rows: one object a row, every column, the same annotations.
    ok(&run_in(
        d,
        &[
            "dedup",
            "in.parquet",
            "-o",
            "rows.jsonl",
            "--annotate",
            "-q",
        ],
        b"",
    ));
    let rows_json = read_json_lines(&d.join("rows.jsonl"));
    assert_eq!(annotations(&rows_json), expected);
    assert_eq!(rows_json[0]["meta"]["url"], "https://site0.example/p/0");

    // An input that has one of the columns already is refused before the run.
    write(
        d,
        "taken.jsonl",
        b"{\"id\":\"a\",\"text\":\"some words here\",\"kind\":\"x\"}\n",
    );
    pyarrow(d, &["convert", "taken.jsonl", "taken.parquet"]);
    for out in ["taken-out.parquet", "taken-out.jsonl"] {
        let run = run_in(d, &["dedup", "taken.parquet", "-o", out, "--annotate"], b"");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("has a column \"kind\" already"), "{stderr}");
        assert!(!d.join(out).exists());
    }
}

/// Issue 14: `--spans` in every place clusters are written: `clusters` and `dedup --clusters`
/// give the same spans, in JSON Lines and in a Parquet table (as pyarrow reads it); without
/// stripping a member's span is its whole text trimmed; a resumable run gives the same file.
#[test]
fn issue14_spans_are_the_same_in_every_clusters_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A text with blanks around it and characters of several bytes before its words.
    let text = format!("  «Zürich» {}  \n", story(3, 60));
    let lines = [record("a", &text), record("b", &text.replace("  \n", "\n"))];
    write(d, "in.jsonl", (lines.join("\n") + "\n").as_bytes());
    let runs: [&[&str]; 4] = [
        &["clusters", "in.jsonl", "-o", "c1.jsonl", "--spans"],
        &[
            "dedup",
            "in.jsonl",
            "-o",
            "k.jsonl",
            "--clusters",
            "c2.jsonl",
            "--spans",
        ],
        &["clusters", "in.jsonl", "-o", "c3.parquet", "--spans"],
        &[
            "clusters",
            "in.jsonl",
            "-o",
            "c4.jsonl",
            "--spans",
            "--work-dir",
            "work",
        ],
    ];
    for args in runs {
        let mut args = args.to_vec();
        args.push("-q");
        ok(&run_in(d, &args, b""));
    }
    let c1 = read_json_lines(&d.join("c1.jsonl"));
    let trimmed = text.trim().chars().count() as u64;
    assert_eq!(
        c1[0]["members"][0]["spans"],
        serde_json::json!([[2, 2 + trimmed]])
    );
    assert_eq!(read_json_lines(&d.join("c2.jsonl")), c1);
    assert_eq!(read_json_lines(&d.join("c4.jsonl")), c1);
    let parquet: Vec<Value> = rows(&read_parquet(d, "c3.parquet"))
        .iter()
        .map(without_nulls)
        .collect();
    assert_eq!(parquet, c1);
    // Without --spans, no spans.
    ok(&run_in(
        d,
        &["clusters", "in.jsonl", "-o", "c5.jsonl", "-q"],
        b"",
    ));
    assert!(
        read_json_lines(&d.join("c5.jsonl"))[0]["members"][0]
            .get("spans")
            .is_none()
    );
}
