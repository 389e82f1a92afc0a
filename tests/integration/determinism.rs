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
