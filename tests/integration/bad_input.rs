//! Bad input: each kind is rejected with file, line and reason, the run goes on, counts add up;
//! `--strict` stops at the first with exit code 1.

use std::io::Write;

use crate::util::*;

/// One good record, then one of each kind of bad record, then another good one.
fn mixed_input() -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(record("good1", &story(1, 50)).as_bytes());
    data.extend_from_slice(b"\n{\"id\":\"bad-utf8\",\"text\":\"caf\xe9\"}\n");
    data.extend_from_slice(b"{\"id\":\"broken\",\"text\":\"unterminated\n");
    data.extend_from_slice(b"{\"id\":\"no-text\",\"body\":\"x\"}\n");
    data.extend_from_slice(b"{\"id\":\"not-string\",\"text\":[1,2]}\n");
    data.extend_from_slice(b"\n");
    data.extend_from_slice(b"[\"an array\"]\n");
    data.extend_from_slice(
        format!("{{\"id\":\"giant\",\"text\":\"{}\"}}\n", "x ".repeat(600)).as_bytes(),
    );
    data.extend_from_slice(record("good2", &story(2, 50)).as_bytes());
    data.extend_from_slice(b"\n");
    data
}

#[test]
fn every_kind_of_bad_record_is_rejected_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mixed.jsonl", &mixed_input());
    let out = run_in(
        dir.path(),
        &[
            "dedup",
            "mixed.jsonl",
            "-o",
            "k.jsonl",
            "--rejected",
            "rej.jsonl",
            "--stats-json",
            "s.json",
            "--max-doc-bytes",
            "1000",
        ],
        b"",
    );
    let stderr = ok(&out);
    let rejected = read_json_lines(&dir.path().join("rej.jsonl"));
    let seen: Vec<(String, u64, String)> = rejected
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_string(),
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [
        ("mixed.jsonl", 2, "invalid UTF-8"),
        ("mixed.jsonl", 3, "invalid JSON"),
        ("mixed.jsonl", 4, "missing field \"text\""),
        ("mixed.jsonl", 5, "field \"text\" is not a string"),
        ("mixed.jsonl", 6, "blank line"),
        ("mixed.jsonl", 7, "invalid JSON"),
        ("mixed.jsonl", 8, "larger than the limit of 1000 bytes"),
    ];
    assert_eq!(seen.len(), expect.len(), "{seen:?}");
    for ((file, line, reason), (ef, el, er)) in seen.iter().zip(expect) {
        assert_eq!((file.as_str(), *line), (ef, el));
        assert!(reason.contains(er), "line {line}: {reason}");
    }
    // The first rejections are shown on stderr with FILE:LINE.
    assert!(
        stderr.contains("rejected mixed.jsonl:2: invalid UTF-8"),
        "{stderr}"
    );
    let s = stats_adding_up(&dir.path().join("s.json"));
    assert_eq!(
        (
            s["docs_read"].as_u64(),
            s["rejected"].as_u64(),
            s["kept"].as_u64()
        ),
        (Some(9), Some(7), Some(2))
    );
    assert_eq!(read_lines(&dir.path().join("k.jsonl")).len(), 2);
}

#[test]
fn strict_stops_at_the_first_bad_record_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mixed.jsonl", &mixed_input());
    let out = run_in(
        dir.path(),
        &["dedup", "mixed.jsonl", "-o", "k.jsonl", "--strict"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mixed.jsonl:2: invalid UTF-8"), "{stderr}");
    assert!(!dir.path().join("k.jsonl").exists());
}

#[test]
fn truncated_compressed_input_fails_the_run_or_is_reported_incomplete_with_keep_going() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..2000)
        .map(|i| record(&format!("t{i}"), &story(i, 40)))
        .collect();
    let plain = lines.join("\n") + "\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(plain.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    write(dir.path(), "cut.jsonl.gz", &gz[..gz.len() / 2]);
    let zst = zstd::encode_all(plain.as_bytes(), 3).unwrap();
    write(dir.path(), "cut.jsonl.zst", &zst[..zst.len() / 2]);
    write(
        dir.path(),
        "after.jsonl",
        (record("after", &story(99_999, 40)) + "\n").as_bytes(),
    );
    let args = [
        "clusters",
        "cut.jsonl.gz",
        "cut.jsonl.zst",
        "after.jsonl",
        "-o",
        "c.jsonl",
        "--rejected",
        "rej.jsonl",
        "--stats-json",
        "s.json",
    ];
    // By default a broken input fails the run with exit code 2, naming the input and where it
    // broke off, and nothing is committed.
    let out = run_in(dir.path(), &args, b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cut.jsonl.gz to its end: it broke off after line"),
        "{stderr}"
    );
    for name in ["c.jsonl", "rej.jsonl", "s.json"] {
        assert!(!dir.path().join(name).exists(), "{name} was written");
    }
    // With --keep-going the records before each break count, the inputs are reported as
    // incomplete, the run goes on to the last input and exits with code 3.
    let mut keep_going = args.to_vec();
    keep_going.push("--keep-going");
    let out = run_in(dir.path(), &keep_going, b"");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = stats_adding_up(&dir.path().join("s.json"));
    let incomplete = s["incomplete_inputs"].as_array().unwrap();
    assert_eq!(incomplete.len(), 2, "{s}");
    for (r, file) in incomplete.iter().zip(["cut.jsonl.gz", "cut.jsonl.zst"]) {
        assert_eq!(r["file"], file);
        assert!(r["records_read"].as_u64().unwrap() > 1, "{r}");
    }
    // Records before the breaks were read; the last input was read after them.
    assert!(s["docs_read"].as_u64().unwrap() > 500);
    assert_eq!(s["rejected"], 0);
    assert!(read_lines(&dir.path().join("rej.jsonl")).is_empty());
}

#[test]
fn empty_input_file_gives_empty_output() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "empty.jsonl", b"");
    let out = run_in(
        dir.path(),
        &[
            "dedup",
            "empty.jsonl",
            "-o",
            "k.jsonl",
            "--stats-json",
            "s.json",
        ],
        b"",
    );
    ok(&out);
    let s = stats_adding_up(&dir.path().join("s.json"));
    assert_eq!(s["docs_read"], 0);
    assert_eq!(std::fs::read(dir.path().join("k.jsonl")).unwrap(), b"");
}
