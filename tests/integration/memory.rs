//! Issue 11: memory set by `--memory`. Under a budget small enough that every table spills (band
//! records, document states, ids, scores, signatures, read-back locations, text hashes, the
//! exact-duplicate map, the sort of the ids' hashes), every output is byte-identical to the run
//! that spilled nothing, in every batch command and with the options that add tables.

use std::path::Path;

use crate::util::*;

/// 9,000 generated documents, 40% of them copies (exact and near), with a repeated id and a bad
/// line, so that every table of a run has something to hold.
fn corpus(dir: &Path) {
    use neardup::synth::{Corpus, CorpusSpec};
    let generated: Vec<_> = Corpus::new(CorpusSpec {
        docs: 9_000,
        seed: 11,
        dup_fraction: 0.4,
        mean_words: 40,
    })
    .collect();
    let mut docs: String = generated
        .iter()
        .map(|d| record(&d.id, &d.text) + "\n")
        .collect();
    docs.push_str("{not json\n");
    docs.push_str(&record(
        &generated[0].id,
        "an id given twice, with a text of its own",
    ));
    docs.push('\n');
    write(dir, "in.jsonl", docs.as_bytes());
}

/// Runs `args` (with `{tag}` in output names replaced) once without a budget and once with
/// `--memory 1M --temp-dir tmp`; returns the named outputs of both runs.
fn both(dir: &Path, args: &[&str], outputs: &[&str]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let run = |tag: &str, extra: &[&str]| {
        let mut full: Vec<String> = args.iter().map(|a| a.replace("{tag}", tag)).collect();
        full.extend(extra.iter().map(|a| a.to_string()));
        full.push("-q".to_string());
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        ok(&run_in(dir, &full, b""));
        outputs
            .iter()
            .map(|name| std::fs::read(dir.join(name.replace("{tag}", tag))).unwrap())
            .collect::<Vec<_>>()
    };
    let free = run("free", &[]);
    let tight = run("tight", &["--memory", "1M", "--temp-dir", "tmp"]);
    (free, tight)
}

/// The four outputs of [`dedup_args`], with `{tag}` for the run.
const DEDUP_OUTPUTS: [&str; 4] = [
    "k{tag}.jsonl",
    "r{tag}.jsonl",
    "c{tag}.jsonl",
    "s{tag}.json",
];

/// `dedup in.jsonl` writing [`DEDUP_OUTPUTS`], with `options`.
fn dedup_args<'a>(options: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "dedup",
        "in.jsonl",
        "-o",
        "k{tag}.jsonl",
        "--removed",
        "r{tag}.jsonl",
        "--clusters",
        "c{tag}.jsonl",
        "--stats-json",
        "s{tag}.json",
    ];
    args.extend_from_slice(options);
    args
}

/// A summary without the figures that describe the run rather than the data (time, spilling).
fn comparable(stats: &[u8]) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_slice(stats).unwrap();
    let object = value.as_object_mut().unwrap();
    for key in [
        "seconds",
        "docs_per_second",
        "stage_seconds",
        "spilled_runs",
        "temp_bytes",
        "label_rounds",
    ] {
        object.remove(key);
    }
    value
}

#[test]
fn issue11_a_budget_that_spills_every_table_gives_byte_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    std::fs::create_dir(dir.path().join("tmp")).unwrap();
    for options in [
        &[][..],
        &["--keep", "longest"][..],
        &["--verify", "exact"][..],
        &["--measure", "containment"][..],
    ] {
        let (free, tight) = both(dir.path(), &dedup_args(options), &DEDUP_OUTPUTS);
        let (free_stats, tight_stats) = (
            stats(&dir.path().join("sfree.json")),
            stats(&dir.path().join("stight.json")),
        );
        assert_eq!(free_stats["temp_bytes"], 0, "{options:?}");
        assert!(
            tight_stats["temp_bytes"].as_u64().unwrap() > 100_000,
            "{options:?}: {tight_stats}"
        );
        assert!(free_stats["near_duplicates"].as_u64().unwrap() > 500);
        assert!(free_stats["exact_duplicates"].as_u64().unwrap() > 500);
        assert_eq!(free_stats["duplicate_ids"], 1);
        assert_eq!(free[0], tight[0], "{options:?}: kept records differ");
        assert_eq!(free[1], tight[1], "{options:?}: removals differ");
        assert_eq!(free[2], tight[2], "{options:?}: clusters differ");
        assert_eq!(comparable(&free[3]), comparable(&tight[3]), "{options:?}");
    }
    // Spill files live in a temporary directory that is gone after the run.
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn issue11_stats_and_indexes_under_a_spilling_budget_match_the_unbudgeted_run() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    std::fs::create_dir(dir.path().join("tmp")).unwrap();
    let stats_json = |extra: &[&str]| {
        let mut args = vec!["stats", "in.jsonl", "--json", "-q"];
        args.extend_from_slice(extra);
        comparable(&ok_stdout(&run_in(dir.path(), &args, b"")))
    };
    let free = stats_json(&[]);
    let tight = stats_json(&["--memory", "1M", "--temp-dir", "tmp"]);
    assert!(free["exact_duplicates"].as_u64().unwrap() > 500, "{free}");
    assert_eq!(free, tight);

    // An index built under the budget holds the same documents, and a run against it removes
    // the same ones: the indexed texts again (exact links) and 3,000 of them with a few words
    // added (near links, found through band records read back from spilled runs).
    let original = std::fs::read_to_string(dir.path().join("in.jsonl")).unwrap();
    let mut new = String::new();
    for line in original.lines().take(3_000) {
        let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = format!("{} and a few words more", value["text"].as_str().unwrap());
        value["id"] = format!("edited-{}", value["id"].as_str().unwrap()).into();
        value["text"] = text.into();
        new.push_str(&format!("{value}\n"));
    }
    new.push_str(&original);
    write(dir.path(), "new.jsonl", new.as_bytes());
    let (free, tight) = both(
        dir.path(),
        &["index", "build", "in.jsonl", "--index", "ix{tag}"],
        &[],
    );
    assert_eq!((free.len(), tight.len()), (0, 0));
    let info = |name: &str| {
        let out = run_in(dir.path(), &["index", "info", "--index", name], b"");
        String::from_utf8(ok_stdout(&out)).unwrap()
    };
    let (free_info, tight_info) = (info("ixfree"), info("ixtight"));
    assert!(free_info.contains("documents"), "{free_info}");
    assert_eq!(
        free_info.replace("ixfree", "ix"),
        tight_info.replace("ixtight", "ix")
    );
    let (free, tight) = both(
        dir.path(),
        &[
            "dedup",
            "new.jsonl",
            "--against",
            "ix{tag}",
            "-o",
            "a{tag}.jsonl",
            "--removed",
            "ar{tag}.jsonl",
        ],
        &["a{tag}.jsonl", "ar{tag}.jsonl"],
    );
    let removed = String::from_utf8_lossy(&free[1]).to_string();
    let near_of_indexed = removed
        .lines()
        .filter(|l| l.contains("\"edited-") && l.contains("\"near\"") && l.contains("ixfree"))
        .count();
    assert!(
        removed.lines().count() > 8_000 && near_of_indexed > 1_000,
        "every document is in the index, and edited copies are near ones: {} removed, {near_of_indexed} edited",
        removed.lines().count()
    );
    assert_eq!(free[0], tight[0]);
    assert_eq!(
        String::from_utf8_lossy(&free[1]).replace("ixfree", "ix"),
        String::from_utf8_lossy(&tight[1]).replace("ixtight", "ix")
    );
}

/// Issue 11: when the sets of texts do not fit their share of the budget, they are labelled on
/// sorted runs instead of joined in memory, and every output is the same as the in-memory join's.
#[test]
fn issue11_sets_beyond_their_share_are_labelled_on_disk_with_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    generated(dir.path(), "in.jsonl", 40_000, 5, 0.8, 20);
    std::fs::create_dir(dir.path().join("tmp")).unwrap();
    for options in [&[][..], &["--verify", "exact"][..]] {
        let (free, tight) = both(dir.path(), &dedup_args(options), &DEDUP_OUTPUTS);
        let free_stats = stats(&dir.path().join("sfree.json"));
        let tight_stats = stats(&dir.path().join("stight.json"));
        assert_eq!(free_stats["label_rounds"], 0, "{options:?}");
        assert!(
            tight_stats["label_rounds"].as_u64().unwrap() >= 2,
            "{options:?}: the sets were joined in memory: {tight_stats}"
        );
        assert!(free_stats["clusters"].as_u64().unwrap() > 3_000);
        assert_eq!(free[0], tight[0], "{options:?}: kept records differ");
        assert_eq!(free[1], tight[1], "{options:?}: removals differ");
        assert_eq!(free[2], tight[2], "{options:?}: clusters differ");
        assert_eq!(comparable(&free[3]), comparable(&tight[3]), "{options:?}");
    }
    let stats_json = |extra: &[&str]| {
        let mut args = vec!["stats", "in.jsonl", "--json", "-q"];
        args.extend_from_slice(extra);
        comparable(&ok_stdout(&run_in(dir.path(), &args, b"")))
    };
    assert_eq!(
        stats_json(&[]),
        stats_json(&["--memory", "1M", "--temp-dir", "tmp"])
    );
}

/// Issue 11: records of compressed inputs cannot be read back by location, so the texts a pair
/// is checked on are spooled by one more read; their sets then load in bounded rounds, and every
/// output equals the plain file's run without a budget.
#[test]
fn issue11_compressed_inputs_check_pairs_from_a_spool_within_the_budget() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    std::fs::create_dir(dir.path().join("tmp")).unwrap();
    let plain = std::fs::read(dir.path().join("in.jsonl")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    write(dir.path(), "in.jsonl.gz", &gz.finish().unwrap());
    for options in [
        &[][..],
        &["--verify", "exact"][..],
        &["--keep", "longest"][..],
    ] {
        let run = |input: &str, tag: &str, extra: &[&str]| {
            let (kept, removed, clusters, summary) = (
                format!("k{tag}.jsonl"),
                format!("r{tag}.jsonl"),
                format!("c{tag}.jsonl"),
                format!("s{tag}.json"),
            );
            let mut args = vec![
                "dedup",
                input,
                "-o",
                &kept,
                "--removed",
                &removed,
                "--clusters",
                &clusters,
                "--stats-json",
                &summary,
                "-q",
            ];
            args.extend_from_slice(options);
            args.extend_from_slice(extra);
            ok(&run_in(dir.path(), &args, b""));
            let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
            (
                read(&kept),
                read(&removed),
                read(&clusters),
                stats(&dir.path().join(&summary)),
            )
        };
        let free = run("in.jsonl", "free", &[]);
        let tight = run(
            "in.jsonl.gz",
            "gz",
            &["--memory", "1M", "--temp-dir", "tmp"],
        );
        assert!(
            free.3["exact_checks"].as_u64().unwrap() > 100,
            "{options:?}"
        );
        assert_eq!(free.0, tight.0, "{options:?}: kept records differ");
        assert_eq!(
            String::from_utf8_lossy(&free.1),
            String::from_utf8_lossy(&tight.1),
            "{options:?}: removals differ"
        );
        assert_eq!(free.2, tight.2, "{options:?}: clusters differ");
        for key in [
            "kept",
            "near_duplicates",
            "exact_checks",
            "verified_pairs",
            "clusters",
        ] {
            assert_eq!(free.3[key], tight.3[key], "{options:?}: {key}");
        }
        assert!(tight.3["temp_bytes"].as_u64().unwrap() > 0);
    }
}
