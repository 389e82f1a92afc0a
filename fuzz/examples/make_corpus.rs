//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/` from real inputs:
//! records of `data/`, a small JSON Lines file plain and compressed, an index built with the
//! library, part files written with `PartWriter`, and a checkpoint written by a distributed run.
//!
//! Run from `fuzz/`: `cargo run --example make_corpus` (not instrumented; see docs/FUZZING.md).
//! Every seed is one mode byte (see each target) followed by the bytes.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use neardup::parts::PartWriter;
use neardup::pipeline::{ClusterConfig, DistributedOutputs};
use neardup::{Format, Input};

fn seed(target: &str, name: &str, mode: u8, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    let mut out = vec![mode];
    out.extend_from_slice(bytes);
    std::fs::write(dir.join(name), out).unwrap();
}

/// The first `n` lines of a JSON Lines file in data/ of at most `max` bytes.
fn records(path: &str, n: usize, max: usize) -> Vec<Vec<u8>> {
    let file = std::fs::File::open(Path::new("..").join(path)).unwrap();
    std::io::BufReader::new(file)
        .split(b'\n')
        .map(Result::unwrap)
        .filter(|l| l.len() <= max)
        .take(n)
        .collect()
}

fn main() {
    let work = tempfile::tempdir().unwrap();

    // 1. Records.
    let mut all = records("data/reuters-sample/docs.jsonl", 3, 700);
    all.extend(records("data/clough-stevenson/docs.jsonl", 2, 1500));
    for (n, record) in all.iter().enumerate() {
        seed(
            "jsonl_record",
            &format!("data-{n}"),
            (n as u8) * 5 % 30,
            record,
        );
    }
    let extra: [(&str, u8, &[u8]); 4] = [
        (
            "keep-group",
            1,
            br#"{"id":7,"text":"caf\u00e9 \"q\"","score":2.5,"url":"http://a.example/x"}"#,
        ),
        (
            "body-fields",
            2,
            br#"{"url":"u","body":"text in body","n":-1e3,"site":null}"#,
        ),
        ("object-id", 0, br#"{"id":{"a":[1,2]},"text":"x"}"#),
        (
            "bom",
            0,
            b"\xef\xbb\xbf{\"text\":\"after a byte-order mark\"}",
        ),
    ];
    for (name, mode, bytes) in extra {
        seed("jsonl_record", name, mode, bytes);
    }

    // 2. Framing: a plain file, gzip and zstd of it, a truncated gzip.
    let mut plain = Vec::new();
    for record in all.iter().take(3) {
        plain.extend_from_slice(record);
        plain.push(b'\n');
    }
    plain.extend_from_slice(b"plain line\r\n\nlast line without newline");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&plain[..], 19).unwrap();
    seed("framing", "plain-jsonl", 6, &plain);
    seed(
        "framing",
        "plain-lines-max7",
        3,
        b"short\nthis one is longer\n\nok\n",
    );
    seed("framing", "gzip", 6, &gz);
    seed("framing", "zstd", 7, &zst);
    seed("framing", "gzip-truncated", 6, &gz[..gz.len() / 2]);
    seed(
        "framing",
        "zstd-small-max",
        4,
        &zstd::encode_all(&b"a\nbb\nccc\n"[..], 1).unwrap(),
    );

    // 3. Index: a real manifest and segment, raw and as the repair modes take them.
    let index_dir = work.path().join("index");
    neardup_fuzz::build_index(&index_dir, work.path());
    let manifest = std::fs::read(index_dir.join("MANIFEST")).unwrap();
    let segment = std::fs::read(index_dir.join("seg-000001.nds")).unwrap();
    let body = &manifest[..manifest[..manifest.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()];
    let segment_body = &segment[..segment.len() - 16];
    seed("index_open", "manifest", 0, &manifest);
    seed("index_open", "manifest-body", 4 | 16, body);
    seed("index_open", "segment", 1, &segment);
    seed("index_open", "segment-body", 5 | 16, segment_body);
    seed("index_open", "segment-both-compact", 6 | 8, segment_body);
    let mut both = body.to_vec();
    both.push(b'\n');
    both.extend_from_slice(segment_body);
    seed("index_open", "manifest-and-segment", 7 | 8 | 16, &both);

    // 4. Part files.
    let mut parts = Vec::new();
    for worker in 0..2u64 {
        let path = work.path().join(format!("part-{worker}"));
        let mut part = PartWriter::create(&path).unwrap();
        for (i, record) in all.iter().take(4).enumerate() {
            let position = i as u64 * 2 + worker;
            if i % 2 == 0 || worker == 0 {
                part.push(position, &record[..record.len().min(80)])
                    .unwrap();
            }
        }
        part.finish().unwrap();
        parts.push(std::fs::read(&path).unwrap());
    }
    let empty = work.path().join("part-empty");
    PartWriter::create(&empty).unwrap().finish().unwrap();
    seed("part_merge", "one-part", 0, &parts[0]);
    seed("part_merge", "two-parts", 0, &parts.concat());
    seed("part_merge", "twice", 1, &parts[1]);
    seed(
        "part_merge",
        "empty-part",
        0,
        &std::fs::read(&empty).unwrap(),
    );

    // 5. A checkpoint written by a one-process distributed run of a small corpus.
    let input = work.path().join("docs.jsonl");
    let texts: Vec<String> = neardup_fuzz::INDEX_TEXTS
        .iter()
        .map(|t| t.to_string())
        .collect();
    neardup_fuzz::write_jsonl(&input, &[texts.clone(), texts[..2].to_vec()].concat());
    let mut lines = std::fs::read(&input).unwrap();
    lines.extend_from_slice(b"not json\n{\"text\":\"\"}\n");
    std::fs::write(&input, lines).unwrap();
    let checkpoints = work.path().join("checkpoints");
    let dedup = neardup_fuzz::index_dedup();
    let kept = work.path().join("kept.jsonl").display().to_string();
    dedup
        .run_distributed(
            &[Input::Path(input)],
            Format::Jsonl,
            1 << 20,
            &ClusterConfig::new(1, 0, vec!["127.0.0.1:2101".into()]).unwrap(),
            &DistributedOutputs {
                kept: Some(kept),
                removed: None,
                clusters: None,
                rejected: None,
                checkpoint: Some(checkpoints.clone()),
            },
        )
        .unwrap();
    let files: Vec<PathBuf> = std::fs::read_dir(&checkpoints)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let checkpoint = std::fs::read(&files[0]).unwrap();
    seed("checkpoint", "checkpoint", 0, &checkpoint);
    seed(
        "checkpoint",
        "checkpoint-body",
        1,
        &checkpoint[..checkpoint.len() - 16],
    );
    seed("checkpoint", "checkpoint-other-fingerprint", 2, &checkpoint);
    println!("corpus written to fuzz/corpus/");
}
