//! The binary end to end: formats, compression, stdin/stdout, outputs and keep policies.

use std::io::Write;

use crate::util::*;

/// Five records: a, its exact copy (case and punctuation differ), a near copy (one word changed
/// in 300), an unrelated story, and an empty text.
fn fixture() -> Vec<String> {
    let a = story(1, 300);
    let mut near: Vec<&str> = a.split(' ').collect();
    near[150] = "changed";
    vec![
        record("a", &a),
        record("a-copy", &format!("{}!!", a.to_uppercase())),
        record("a-near", &near.join(" ")),
        record("b", &story(2, 300)),
        record("empty", "  ...  "),
    ]
}

#[test]
fn dedup_writes_kept_records_byte_identical_and_reports_removals() {
    let dir = tempfile::tempdir().unwrap();
    let lines = fixture();
    // Odd spacing must survive byte for byte.
    let mut input = lines.clone();
    input[3] = input[3].replace("{\"id\"", "{ \"id\"");
    write(dir.path(), "in.jsonl", (input.join("\n") + "\n").as_bytes());
    let out = run_in(
        dir.path(),
        &[
            "dedup",
            "in.jsonl",
            "-o",
            "kept.jsonl",
            "--removed",
            "removed.jsonl",
            "--stats-json",
            "stats.json",
            "--clusters",
            "clusters.jsonl",
        ],
        b"",
    );
    let stderr = ok(&out);
    assert!(stderr.contains("documents read"), "{stderr}");
    assert_eq!(
        read_lines(&dir.path().join("kept.jsonl")),
        [input[0].clone(), input[3].clone(), input[4].clone()]
    );
    let removed = read_json_lines(&dir.path().join("removed.jsonl"));
    assert_eq!(removed.len(), 2);
    assert_eq!(removed[0]["id"], "a-copy");
    assert_eq!(removed[0]["duplicate_of"], "a");
    assert_eq!(removed[0]["kind"], "exact");
    assert_eq!(removed[0]["similarity"], 1.0);
    assert_eq!(removed[1]["id"], "a-near");
    assert_eq!(removed[1]["kind"], "near");
    let sim = removed[1]["similarity"].as_f64().unwrap();
    assert!(sim > 0.85 && sim < 1.0, "{sim}");
    let s = stats_adding_up(&dir.path().join("stats.json"));
    assert_eq!(s["docs_read"], 5);
    assert_eq!(s["exact_duplicates"], 1);
    assert_eq!(s["near_duplicates"], 1);
    assert_eq!(s["empty"], 1);
    assert_eq!(s["clusters"], 1);
    let clusters = read_json_lines(&dir.path().join("clusters.jsonl"));
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0]["size"], 3);
    assert_eq!(clusters[0]["kept"], "a");
}

#[test]
fn clusters_are_listed_largest_first_with_members() {
    let dir = tempfile::tempdir().unwrap();
    let x = story(10, 200);
    let y = story(11, 200);
    let input = [
        record("y1", &y),
        record("x1", &x),
        record("x2", &x),
        record("y2", &y),
        record("x3", &x),
        record("z", &story(12, 200)),
    ]
    .join("\n");
    write(dir.path(), "in.jsonl", input.as_bytes());
    ok(&run_in(
        dir.path(),
        &["clusters", "in.jsonl", "-o", "c.jsonl", "-q"],
        b"",
    ));
    let c = read_json_lines(&dir.path().join("c.jsonl"));
    assert_eq!(c.len(), 2);
    assert_eq!(
        (c[0]["cluster"].as_u64(), c[0]["size"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(c[0]["kept"], "x1");
    let ids: Vec<&str> = c[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["x1", "x2", "x3"]);
    assert_eq!(c[1]["kept"], "y1");
}

#[test]
fn keep_policies_longest_and_max_field() {
    let dir = tempfile::tempdir().unwrap();
    let base = story(20, 300);
    let longer = format!("{base} extra words at the end");
    let input = [
        serde_json::json!({"id": "short", "text": base, "score": 1}).to_string(),
        serde_json::json!({"id": "long", "text": longer, "score": 5}).to_string(),
        serde_json::json!({"id": "copy", "text": base, "score": 9}).to_string(),
    ]
    .join("\n");
    write(dir.path(), "in.jsonl", input.as_bytes());
    let kept_ids = |policy: &str| {
        ok(&run_in(
            dir.path(),
            &["dedup", "in.jsonl", "-o", "k.jsonl", "--keep", policy, "-q"],
            b"",
        ));
        read_json_lines(&dir.path().join("k.jsonl"))
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(kept_ids("first"), ["short"]);
    assert_eq!(kept_ids("longest"), ["long"]);
    assert_eq!(kept_ids("max:score"), ["copy"]);
}

#[test]
fn gzip_zstd_inputs_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let plain = fixture().join("\n") + "\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(plain.as_bytes()).unwrap();
    // Names without a telling extension: detection is by magic bytes.
    write(dir.path(), "in.gz.data", &gz.finish().unwrap());
    write(
        dir.path(),
        "in.zst.data",
        &zstd::encode_all(plain.as_bytes(), 3).unwrap(),
    );
    for (input, output) in [
        ("in.gz.data", "out.jsonl.gz"),
        ("in.zst.data", "out.jsonl.zst"),
    ] {
        ok(&run_in(
            dir.path(),
            &["dedup", input, "-o", output, "-q"],
            b"",
        ));
        let bytes = std::fs::read(dir.path().join(output)).unwrap();
        let text = if output.ends_with(".gz") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut s)
                .unwrap();
            s
        } else {
            String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap()
        };
        assert_eq!(text.lines().count(), 3, "{output}");
    }
}

#[test]
fn stdin_in_and_stdout_out_with_several_inputs_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let lines = fixture();
    write(
        dir.path(),
        "first.jsonl",
        (lines[3].clone() + "\n").as_bytes(),
    );
    let stdin = lines[..3].join("\n");
    let out = run_in(
        dir.path(),
        &["dedup", "first.jsonl", "-", "-o", "-", "-q"],
        stdin.as_bytes(),
    );
    ok(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    // b comes first (first input), then a from stdin; a's copies are removed.
    assert_eq!(stdout, format!("{}\n{}\n", lines[3], lines[0]));
}

#[test]
fn plain_lines_and_directory_of_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = story(30, 100);
    let text = format!("{a}\n{}\n{a}\n\n", story(31, 100));
    write(dir.path(), "docs.txt", text.as_bytes());
    ok(&run_in(
        dir.path(),
        &[
            "dedup",
            "docs.txt",
            "--format",
            "lines",
            "-o",
            "k.txt",
            "--removed",
            "r.jsonl",
            "-q",
        ],
        b"",
    ));
    assert_eq!(
        read_lines(&dir.path().join("k.txt")).len(),
        3,
        "two stories and the empty line"
    );
    let removed = read_json_lines(&dir.path().join("r.jsonl"));
    assert_eq!(removed[0]["id"], "docs.txt:3");
    assert_eq!(removed[0]["duplicate_of"], "docs.txt:1");

    std::fs::create_dir_all(dir.path().join("tree/sub")).unwrap();
    write(dir.path(), "tree/b.txt", a.as_bytes());
    write(dir.path(), "tree/sub/a.txt", a.as_bytes());
    write(dir.path(), "tree/c.txt", story(32, 100).as_bytes());
    ok(&run_in(
        dir.path(),
        &[
            "dedup",
            "tree",
            "--format",
            "files",
            "-o",
            "k.jsonl",
            "--removed",
            "r.jsonl",
            "-q",
        ],
        b"",
    ));
    let kept = read_json_lines(&dir.path().join("k.jsonl"));
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0]["id"], "tree/b.txt");
    assert_eq!(kept[0]["text"], a.as_str());
    let removed = read_json_lines(&dir.path().join("r.jsonl"));
    assert_eq!(removed[0]["id"], "tree/sub/a.txt");
}

#[test]
fn char_shingles_find_near_copies_in_unspaced_text() {
    // Thai is written without spaces between words; character shingles need no word boundaries.
    let dir = tempfile::tempdir().unwrap();
    let a = "กรุงเทพมหานครเป็นเมืองหลวงและนครที่มีประชากรมากที่สุดของประเทศไทยเป็นศูนย์กลางการปกครองการศึกษาการคมนาคมขนส่งการเงินการธนาคารการพาณิชย์การสื่อสารและความเจริญของประเทศ";
    let b = a.replace("การศึกษา", "การศาสนา");
    let input = [
        record("a", a),
        record("b", &b),
        record("c", "เชียงใหม่เป็นจังหวัดที่มีประชากรมากเป็นอันดับห้าของประเทศไทย"),
    ];
    write(dir.path(), "in.jsonl", input.join("\n").as_bytes());
    let args = [
        "clusters",
        "in.jsonl",
        "-o",
        "c.jsonl",
        "-q",
        "--threshold",
        "0.7",
    ];
    ok(&run_in(
        dir.path(),
        &[&args[..], &["--shingle", "char:4"]].concat(),
        b"",
    ));
    let clusters = read_json_lines(&dir.path().join("c.jsonl"));
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0]["size"], 2);
    assert_eq!(clusters[0]["kept"], "a");
}

#[test]
fn verbose_prints_the_parameters_and_s_curve() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in.jsonl", fixture().join("\n").as_bytes());
    let out = run_in(
        dir.path(),
        &["clusters", "in.jsonl", "-o", "c.jsonl", "-v"],
        b"",
    );
    let stderr = ok(&out);
    assert!(stderr.contains("14 bands × 9 rows"), "{stderr}");
    assert!(stderr.contains("0.95"), "{stderr}");
    let out = run_in(
        dir.path(),
        &[
            "clusters", "in.jsonl", "-o", "c.jsonl", "--bands", "4", "--rows", "8", "-v",
        ],
        b"",
    );
    assert!(ok(&out).contains("4 bands × 8 rows"));
}

#[test]
fn bad_settings_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in.jsonl", b"{\"text\":\"a\"}\n");
    for (args, expect) in [
        (vec!["--threshold", "1.5"], "threshold must lie in (0, 1]"),
        (vec!["--bands", "20", "--rows", "10"], "exceeds num_perm"),
        (vec!["--bands", "20"], "only one of --bands/--rows"),
        (vec!["--keep", "biggest"], "keep policy"),
        (vec!["--shingle", "byte:3"], "shingle spec"),
        (vec!["--format", "xml"], "format"),
        (vec!["--num-perm", "0"], "num_perm"),
    ] {
        let all = [&["clusters", "in.jsonl", "-o", "c.jsonl"], &args[..]].concat();
        let out = run_in(dir.path(), &all, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn closed_stdout_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let many: Vec<String> = (0..3000)
        .map(|i| record(&i.to_string(), &story(i, 20)))
        .collect();
    write(dir.path(), "in.jsonl", many.join("\n").as_bytes());
    let mut child = std::process::Command::new(BIN)
        .args(["dedup", "in.jsonl", "-o", "-", "-q"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once, as `head` would
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn failed_run_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in.jsonl", b"{\"text\":\"fine\"}\nnot json\n");
    let out = run_in(
        dir.path(),
        &["dedup", "in.jsonl", "-o", "k.jsonl", "--strict"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["in.jsonl"], "no output and no temporary file left");
}
