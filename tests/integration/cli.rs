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
    assert!(stderr.contains("18 bands × 7 rows"), "{stderr}");
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
    // One of --bands and --rows is a usage error, as clap reports them.
    for (given, missing) in [("--bands", "--rows <ROWS>"), ("--rows", "--bands <BANDS>")] {
        let out = run_in(
            dir.path(),
            &["clusters", "in.jsonl", "-o", "c.jsonl", given, "4"],
            b"",
        );
        assert_eq!(out.status.code(), Some(1), "{given}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(missing), "{given}: {stderr}");
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

/// Runs `args` in `dir`, asserts that the setting was refused as one (exit code 1, no panic, no
/// output file `k.jsonl`), and returns stderr.
fn refused(dir: &std::path::Path, args: &[&str]) -> String {
    let out = run_in(dir, args, b"");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(!dir.join("k.jsonl").exists(), "{args:?} wrote its output");
    stderr
}

/// Each refusal names the option and what it accepts.
fn assert_refusals(dir: &std::path::Path, command: &[&str], cases: &[(&[&str], &str, &str)]) {
    for &(args, option, allowed) in cases {
        let stderr = refused(dir, &[command, args].concat());
        assert!(
            stderr.contains(option),
            "{args:?} does not name {option}: {stderr}"
        );
        assert!(
            stderr.contains(allowed),
            "{args:?} does not say {allowed:?}: {stderr}"
        );
    }
}

/// A small corpus in `dir/in.jsonl`.
fn small_input(dir: &std::path::Path) {
    write(dir, "in.jsonl", (fixture().join("\n") + "\n").as_bytes());
}

const DEDUP: &[&str] = &["dedup", "in.jsonl", "-o", "k.jsonl"];

/// Issue 10: the string options are checked as they are parsed, the refusal names the option
/// and its values, and `-h` lists the values (`--unit sentence` was accepted before).
#[test]
fn issue10_string_options_are_checked_at_parse_time_naming_their_values() {
    let dir = tempfile::tempdir().unwrap();
    small_input(dir.path());
    assert_refusals(
        dir.path(),
        DEDUP,
        &[
            (
                &["--format", "xml"],
                "'--format <FORMAT>'",
                "[possible values: jsonl, lines, files, warc, wet, parquet]",
            ),
            (
                &["--mode", "fast"],
                "'--mode <MODE>'",
                "[possible values: auto, batch, stream]",
            ),
            (
                &["--verify", "full"],
                "'--verify <VERIFY>'",
                "[possible values: signature, borderline, exact]",
            ),
            (
                &["--measure", "cosine"],
                "'--measure <MEASURE>'",
                "[possible values: jaccard, containment]",
            ),
            (
                &["--unit", "sentence"],
                "'--unit <UNIT>'",
                "[possible values: line, paragraph]",
            ),
            (
                &["--keep", "biggest"],
                "'--keep ",
                "'first', 'longest' or 'max:FIELD'",
            ),
            (
                &["--keep", "max:"],
                "'--keep ",
                "'first', 'longest' or 'max:FIELD'",
            ),
            (
                &["--shingle", "byte:3"],
                "'--shingle ",
                "'word:N' or 'char:K'",
            ),
            (
                &["--shingle", "word:0"],
                "'--shingle ",
                "'word:N' or 'char:K'",
            ),
            (
                &["--memory", "12Q"],
                "'--memory <SIZE>'",
                "optional K, M, G or T suffix",
            ),
            (&["--memory", "10"], "'--memory <SIZE>'", "minimum of 1 MiB"),
        ],
    );
    assert_refusals(
        dir.path(),
        &["lines", "in.jsonl", "-o", "k.jsonl"],
        &[(
            &["--unit", "words"],
            "'--unit <UNIT>'",
            "[possible values: line, paragraph]",
        )],
    );
    let out = run_in(dir.path(), &["dedup", "-h"], b"");
    let help = String::from_utf8_lossy(&out.stdout);
    for values in [
        "[possible values: jsonl, lines, files, warc, wet, parquet]",
        "[possible values: auto, batch, stream]",
        "[possible values: signature, borderline, exact]",
        "[possible values: jaccard, containment]",
        "[possible values: line, paragraph]",
        "--keep <first|longest|max:FIELD>",
        "--shingle <word:N|char:K>",
    ] {
        assert!(help.contains(values), "dedup -h lacks {values}: {help}");
    }
}

/// Issue 10: thresholds are finite and in range when parsed (`stats --thresholds NaN` was
/// accepted before).
#[test]
fn issue10_thresholds_must_be_finite_and_in_range() {
    let dir = tempfile::tempdir().unwrap();
    small_input(dir.path());
    let options = [
        (
            "--threshold",
            "'--threshold <THRESHOLD>'",
            "(0, 1]",
            &["NaN", "inf", "-inf", "0", "1.5", "-0.5", "high"][..],
        ),
        (
            "--max-size-ratio",
            "'--max-size-ratio <MAX_SIZE_RATIO>'",
            ">= 1",
            &["NaN", "inf", "0.5", "0", "-3", "many"],
        ),
    ];
    for (option, named, allowed, values) in options {
        for bad in values {
            let arg = format!("{option}={bad}");
            let stderr = refused(dir.path(), &[DEDUP, &[arg.as_str()]].concat());
            assert!(stderr.contains(named), "{arg}: {stderr}");
            assert!(stderr.contains(allowed), "{arg}: {stderr}");
        }
    }
    let stats = ["stats", "in.jsonl", "--stats-json", "k.jsonl"];
    for bad in ["NaN", "0.5,NaN", "0.5,2", "0", "0.8,,0.9"] {
        let stderr = refused(dir.path(), &[&stats[..], &["--thresholds", bad]].concat());
        assert!(
            stderr.contains("'--thresholds <THRESHOLDS>'"),
            "{bad}: {stderr}"
        );
        assert!(stderr.contains("(0, 1]"), "{bad}: {stderr}");
    }
    ok(&run_in(
        dir.path(),
        &[&stats[..], &["--thresholds", "0.5,1", "-q"]].concat(),
        b"",
    ));
}

/// Issue 10: `--threads 99999999` started thousands of threads; now the cap (8 per core, at
/// least 64) refuses it and says what the cap is and where it comes from.
#[test]
fn issue10_threads_are_capped_with_a_message_naming_the_cap_and_the_cores() {
    let dir = tempfile::tempdir().unwrap();
    small_input(dir.path());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cap = (8 * cores).max(64);
    let over = (cap + 1).to_string();
    let cap_message = format!("cap of {cap} (8 per core on this machine's {cores} cores");
    assert_refusals(
        dir.path(),
        DEDUP,
        &[
            (
                &["--threads", "99999999"],
                "'--threads <THREADS>'",
                &cap_message,
            ),
            (&["--threads", &over], "'--threads <THREADS>'", &cap_message),
            (&["--threads", "0"], "'--threads <THREADS>'", "at least 1"),
            (
                &["--workers", "99999999"],
                "'--workers <WORKERS>'",
                &cap_message,
            ),
        ],
    );
    let out = run_in(
        dir.path(),
        &[DEDUP, &["--threads", &cap.to_string(), "-q"]].concat(),
        b"",
    );
    ok(&out);
    assert_eq!(read_lines(&dir.path().join("k.jsonl")).len(), 3);
}

/// Issue 10: counts that mean nothing are refused when parsed, naming the option (`--min-docs
/// 1` without `--strip-boilerplate` and an empty `--text-field` were accepted before).
#[test]
fn issue10_meaningless_counts_and_names_are_refused_at_parse_time() {
    let dir = tempfile::tempdir().unwrap();
    small_input(dir.path());
    assert_refusals(
        dir.path(),
        DEDUP,
        &[
            (
                &["--num-perm", "0"],
                "'--num-perm <NUM_PERM>'",
                "between 1 and 8192",
            ),
            (
                &["--num-perm", "9000"],
                "'--num-perm <NUM_PERM>'",
                "between 1 and 8192",
            ),
            (
                &["--bands", "0", "--rows", "4"],
                "'--bands <BANDS>'",
                "at least 1",
            ),
            (
                &["--bands", "4", "--rows", "0"],
                "'--rows <ROWS>'",
                "at least 1",
            ),
            (
                &["--max-doc-bytes", "0"],
                "'--max-doc-bytes <MAX_DOC_BYTES>'",
                "at least 1",
            ),
            (
                &["--min-docs", "1"],
                "'--min-docs <MIN_DOCS>'",
                "at least 2",
            ),
            (
                &["--min-docs", "0"],
                "'--min-docs <MIN_DOCS>'",
                "at least 2",
            ),
            (
                &["--text-field="],
                "'--text-field <TEXT_FIELD>'",
                "cannot be empty",
            ),
            (
                &["--id-field="],
                "'--id-field <ID_FIELD>'",
                "cannot be empty",
            ),
            (
                &["--processes", "0"],
                "'--processes <PROCESSES>'",
                "at least 1",
            ),
            (&["--workers", "0"], "'--workers <WORKERS>'", "at least 1"),
        ],
    );
}

/// Issue 10: a streaming run decides on the signature estimate only, so `--mode stream` with an
/// explicit `--verify borderline|exact` is refused (it was accepted and ignored before); the
/// default and `--verify signature` stream.
#[test]
fn issue10_stream_refuses_a_verify_it_cannot_honour() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture().join("\n") + "\n";
    let stream = ["dedup", "-", "-o", "-", "--mode", "stream"];
    for verify in ["borderline", "exact"] {
        let out = run_in(
            dir.path(),
            &[&stream[..], &["--verify", verify]].concat(),
            input.as_bytes(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{verify}: {stderr}");
        assert!(
            stderr.contains("--mode stream cannot honour these settings"),
            "{stderr}"
        );
        assert!(stderr.contains("signature estimate"), "{stderr}");
        assert!(stderr.contains("--mode batch"), "{stderr}");
        assert!(out.stdout.is_empty(), "{verify}: wrote records");
    }
    for verify in [&[][..], &["--verify", "signature"]] {
        let out = run_in(
            dir.path(),
            &[&stream[..], verify, &["-q"]].concat(),
            input.as_bytes(),
        );
        let kept = String::from_utf8(ok_stdout(&out)).unwrap();
        assert_eq!(kept.lines().count(), 3, "{verify:?}: {kept}");
    }
    // A distributed run is a batch run.
    let out = run_in(
        dir.path(),
        &[&stream[..], &["--workers", "2"]].concat(),
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be distributed"));
}

/// Issue 10: `--mode auto` from stdin to stdout streams only when the settings allow it; an
/// explicit `--verify exact` or `--keep longest` runs a batch (the latter failed before).
#[test]
fn issue10_auto_mode_runs_a_batch_for_settings_a_stream_cannot_honour() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture().join("\n") + "\n";
    let auto = ["dedup", "-", "-o", "-", "--stats-json", "s.json", "-q"];
    // Streaming never checks a pair exactly; a batch with --verify exact checks the near copy.
    let out = run_in(dir.path(), &auto, input.as_bytes());
    assert_eq!(
        String::from_utf8(ok_stdout(&out)).unwrap().lines().count(),
        3
    );
    assert_eq!(
        stats_adding_up(&dir.path().join("s.json"))["exact_checks"],
        0
    );
    let out = run_in(
        dir.path(),
        &[&auto[..], &["--verify", "exact"]].concat(),
        input.as_bytes(),
    );
    assert_eq!(
        String::from_utf8(ok_stdout(&out)).unwrap().lines().count(),
        3
    );
    let s = stats_adding_up(&dir.path().join("s.json"));
    assert!(s["exact_checks"].as_u64().unwrap() >= 1, "{s}");
    // The longer of two near copies stays.
    let short = story(5, 200);
    let long = format!("{short} and one more");
    let input = [record("short", &short), record("long", &long)].join("\n") + "\n";
    let out = run_in(
        dir.path(),
        &[&auto[..], &["--keep", "longest"]].concat(),
        input.as_bytes(),
    );
    let kept = String::from_utf8(ok_stdout(&out)).unwrap();
    assert_eq!(kept.lines().collect::<Vec<_>>(), [record("long", &long)]);
}

/// Every command and subcommand of the binary, as the words after `neardup`.
const COMMANDS: &[&[&str]] = &[
    &["dedup"],
    &["clusters"],
    &["merge"],
    &["stats"],
    &["lines"],
    &["index"],
    &["index", "build"],
    &["index", "add"],
    &["index", "info"],
    &["index", "compact"],
];

/// Issue 10: `-h` and `--help` of every command end with examples (comment lines and
/// `neardup` command lines), 2 to 4 of them, one at least running that command. That each
/// example parses is checked in the binary's unit tests (`args.rs`).
#[test]
fn issue10_help_of_every_command_ends_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    for command in COMMANDS {
        for flag in ["-h", "--help"] {
            let out = run_in(dir.path(), &[command, &[flag][..]].concat(), b"");
            let help = String::from_utf8(ok_stdout(&out)).unwrap();
            let (_, examples) = help
                .rsplit_once("\nExamples:\n")
                .unwrap_or_else(|| panic!("{command:?} {flag}: no examples: {help}"));
            let lines: Vec<&str> = examples.lines().filter(|l| !l.trim().is_empty()).collect();
            let runs: Vec<&&str> = lines
                .iter()
                .filter(|l| !l.trim_start().starts_with('#'))
                .collect();
            assert!(
                runs.iter().all(|l| l.contains("neardup ")),
                "{command:?} {flag}: not an example: {runs:?}"
            );
            assert!(
                (2..=4).contains(&runs.len()),
                "{command:?} {flag}: {runs:?}"
            );
            let own = format!("neardup {} ", command.join(" "));
            assert!(
                runs.iter().any(|l| l.contains(&own)),
                "{command:?}: {runs:?}"
            );
        }
    }
}

/// Issue 10: the top-level help ends with examples and the exit codes.
#[test]
fn issue10_top_level_help_documents_the_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["--help"], b"");
    let help = String::from_utf8(ok_stdout(&out)).unwrap();
    assert!(help.contains("\nExamples:\n  "), "{help}");
    let (_, codes) = help.rsplit_once("\nExit codes:\n").expect("exit codes");
    for line in [
        "0  the run completed and every input was read to its end",
        "1  a setting is invalid, --strict stopped at a bad record",
        "2  an input could not be opened or read to its end (no output is committed)",
        "3  a run with --keep-going finished, but some inputs were incomplete",
    ] {
        assert!(codes.contains(line), "{line:?} missing: {codes}");
    }
}

/// Issue 10: the options of a distributed run have their own heading in `dedup` and
/// `clusters` help, and no other option is under it.
#[test]
fn issue10_distributed_options_have_their_own_help_heading() {
    let dir = tempfile::tempdir().unwrap();
    let heading = "Distributed run (several processes or machines):";
    let distributed = [
        "--workers",
        "--processes",
        "--process ",
        "--hostfile",
        "--checkpoint",
    ];
    for command in ["dedup", "clusters"] {
        let out = run_in(dir.path(), &[command, "-h"], b"");
        let help = String::from_utf8(ok_stdout(&out)).unwrap();
        let (before, after) = help
            .split_once(&format!("\n{heading}\n"))
            .unwrap_or_else(|| panic!("{command}: no heading: {help}"));
        let (section, _) = after.split_once("\nExamples:\n").unwrap();
        let options: Vec<&str> = section
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("--"))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            options,
            ["workers", "processes", "process", "hostfile", "checkpoint"],
            "{command}"
        );
        for option in distributed {
            assert!(
                !before.contains(option),
                "{command}: {option} outside its heading"
            );
        }
    }
}

/// Issue 10: a usage error is a bad setting (exit code 1; clap's own 2 means an unreadable
/// input here); help and version print to stdout and exit 0.
#[test]
fn issue10_usage_errors_exit_one_and_help_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    small_input(dir.path());
    for args in [
        &["dedup", "in.jsonl"][..],
        &["dedup", "in.jsonl", "-o", "k.jsonl", "--no-such-option"],
        &["dedup", "in.jsonl", "-o", "k.jsonl", "--threshold"],
        &["no-such-command"],
        &[],
    ] {
        let out = run_in(dir.path(), args, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    for args in [
        &["--help"][..],
        &["--version"],
        &["help", "stats"],
        &["index", "add", "-h"],
    ] {
        let out = run_in(dir.path(), args, b"");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty() && out.stderr.is_empty(), "{args:?}");
    }
}

/// Issue 15: a batch run says where its time went, stage by stage: every stage in `--stats-json`,
/// none negative, together no more than the run's time; `-v` prints them.
#[test]
fn issue15_a_run_reports_its_time_by_stage() {
    let dir = tempfile::tempdir().unwrap();
    generated(dir.path(), "in.jsonl", 200, 3, 0.3, 80);
    let args = [
        "dedup",
        "in.jsonl",
        "-o",
        "k.jsonl",
        "--stats-json",
        "s.json",
        "-v",
        "--strip-boilerplate",
    ];
    let stderr = ok(&run_in(dir.path(), &args, b""));
    assert!(
        stderr.contains("time by stage") && stderr.contains("candidates, verify"),
        "{stderr}"
    );
    let s = stats_adding_up(&dir.path().join("s.json"));
    let stages = s["stage_seconds"].as_object().expect("stage_seconds");
    let names = [
        "count_boilerplate",
        "read",
        "prepare",
        "exact",
        "sign",
        "band",
        "pairs",
        "clusters",
        "write",
    ];
    assert_eq!(stages.len(), names.len(), "{stages:?}");
    let run = s["seconds"].as_f64().unwrap();
    // Exact copies and band records of one batch are entered beside the next batch's
    // preparing and signing: those two overlap the rest, which follow one another.
    let mut one_after_another = 0.0;
    for name in names {
        let seconds = stages[name].as_f64().unwrap_or(-1.0);
        assert!(
            seconds >= 0.0 && seconds <= run + 1e-6,
            "{name}: {seconds} of {run}"
        );
        if name != "exact" && name != "band" {
            one_after_another += seconds;
        }
    }
    assert!(
        one_after_another <= run + 1e-6,
        "stages {one_after_another} s of a {run} s run: counted twice"
    );
    assert!(stages["count_boilerplate"].as_f64().unwrap() > 0.0);
    assert!(
        stages["write"].as_f64().unwrap() > 0.0,
        "kept records were written"
    );
}

/// Issue 14: `--spans` is refused where it cannot be given, with a message naming why.
#[test]
fn issue14_spans_are_refused_where_a_run_cannot_give_them() {
    let dir = tempfile::tempdir().unwrap();
    generated(dir.path(), "in.jsonl", 40, 3, 0.3, 40);
    let refusals: [(&[&str], &str); 3] = [
        (
            &["dedup", "in.jsonl", "-o", "k.jsonl", "--spans"],
            "--clusters FILE",
        ),
        (
            &[
                "dedup",
                "-",
                "-o",
                "-",
                "--clusters",
                "c.jsonl",
                "--spans",
                "--mode",
                "stream",
            ],
            "cannot report spans",
        ),
        (
            &[
                "clusters",
                "in.jsonl",
                "-o",
                "c.jsonl",
                "--spans",
                "--workers",
                "2",
            ],
            "does not support --spans",
        ),
    ];
    for (args, message) in refusals {
        let out = run_in(dir.path(), args, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(message),
            "{args:?}: {stderr}"
        );
        for name in ["k.jsonl", "c.jsonl"] {
            assert!(!dir.path().join(name).exists(), "{args:?} wrote {name}");
        }
    }
    // Chosen automatically, stdin to stdout with --spans runs a batch and gives them.
    let input = std::fs::read(dir.path().join("in.jsonl")).unwrap();
    let args = [
        "dedup",
        "-",
        "-o",
        "-",
        "--clusters",
        "c.jsonl",
        "--spans",
        "-q",
    ];
    ok(&run_in(dir.path(), &args, &input));
    let clusters = read_json_lines(&dir.path().join("c.jsonl"));
    assert!(
        clusters[0]["members"][0]["spans"].is_array(),
        "{clusters:?}"
    );
}
