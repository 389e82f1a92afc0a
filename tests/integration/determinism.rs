//! Same input and options give byte-identical output, whatever the thread count.

use crate::util::*;

#[test]
fn output_is_byte_identical_for_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let docs: Vec<String> = neardup::synth::Corpus::new(neardup::synth::CorpusSpec {
        docs: 3000,
        seed: 9,
        dup_fraction: 0.4,
        mean_words: 80,
    })
    .map(|d| record(&d.id, &d.text))
    .collect();
    write(dir.path(), "in.jsonl", docs.join("\n").as_bytes());
    let outputs = |tag: &str, env: &[(&str, &str)], extra: &[&str]| {
        let k = format!("k{tag}.jsonl");
        let r = format!("r{tag}.jsonl");
        let c = format!("c{tag}.jsonl");
        let mut args = vec![
            "dedup",
            "in.jsonl",
            "-o",
            &k,
            "--removed",
            &r,
            "--clusters",
            &c,
            "-q",
        ];
        // Small batches, so that batch boundaries fall inside families.
        args.extend_from_slice(extra);
        ok(&run_with_env(dir.path(), &args, b"", env));
        [k, r, c].map(|f| std::fs::read(dir.path().join(f)).unwrap())
    };
    let one = outputs("1", &[("RAYON_NUM_THREADS", "1")], &[]);
    let two = outputs("2", &[("RAYON_NUM_THREADS", "2")], &[]);
    let flag = outputs("t", &[], &["--threads", "2"]);
    assert!(!one[1].is_empty(), "the corpus has duplicates");
    assert_eq!(one, two);
    assert_eq!(one, flag);
}

#[test]
fn borderline_checks_give_the_same_clusters_from_plain_compressed_and_piped_input() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let docs: Vec<String> = neardup::synth::Corpus::new(neardup::synth::CorpusSpec {
        docs: 1500,
        seed: 12,
        dup_fraction: 0.5,
        mean_words: 120,
    })
    .map(|d| record(&d.id, &d.text))
    .collect();
    let text = docs.join("\n") + "\n";
    write(dir.path(), "in.jsonl", text.as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    write(dir.path(), "in.jsonl.gz", &gz.finish().unwrap());
    let run = |input: &str, stdin: &[u8], out: &str| {
        let args = ["clusters", input, "-o", out, "--stats-json", "s.json", "-q"];
        ok(&run_in(dir.path(), &args, stdin));
        let s = stats(&dir.path().join("s.json"));
        assert!(
            s["exact_checks"].as_u64().unwrap() > 0,
            "some pairs are borderline"
        );
        std::fs::read(dir.path().join(out)).unwrap()
    };
    // Plain files are read back by location; compressed files and stdin are read again in full.
    let plain = run("in.jsonl", b"", "plain.jsonl");
    assert_eq!(plain, run("in.jsonl.gz", b"", "gz.jsonl"));
    assert_eq!(plain, run("-", text.as_bytes(), "stdin.jsonl"));
}
